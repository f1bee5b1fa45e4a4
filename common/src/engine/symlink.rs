//! A symlink that points at a given source (a file in the repo, usually).

use std::fs;
use std::path::{Path, PathBuf};

use super::{Ctx, Difference, EngineError, Observed, Resource};
use crate::fsx;
use crate::manifest::ItemId;

/// `path` must be a symlink to `to`.
#[derive(Debug, Clone)]
pub struct Symlink {
    pub id: ItemId,
    pub path: PathBuf,
    pub to: PathBuf,
}

impl Resource for Symlink {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "symlink"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        let want = format!("-> {}", self.to.display());
        let differs = |what: String| Ok(Observed::Differs(Difference::new(what)));
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => differs(format!("missing ({want})")),
            Err(e) => Err(EngineError::io("read", &self.path)(e)),
            Ok(meta) if meta.file_type().is_symlink() => {
                let now = fs::read_link(&self.path).map_err(EngineError::io("read the link", &self.path))?;
                if now == self.to {
                    Ok(Observed::InSync)
                } else {
                    differs(format!("links to {}, want {}", now.display(), self.to.display()))
                }
            }
            Ok(meta) if meta.is_dir() => {
                differs(format!("a folder is in the way (it will be moved aside), want {want}"))
            }
            Ok(_) => differs(format!("a file is in the way (it will be kept), want {want}")),
        }
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        if fs::symlink_metadata(&self.path).is_ok() {
            // A folder is moved aside by `keep`; a file or link is copied, then
            // replaced atomically below.
            ctx.state.keep(&self.path)?;
        }
        fsx::symlink_atomic(&self.to, &self.path).map_err(EngineError::io("create the link", &self.path))
    }
}
