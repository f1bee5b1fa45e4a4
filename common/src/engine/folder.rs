//! A folder that must exist with a mode.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Ctx, Difference, EngineError, Observed, Resource};
use crate::fsx;
use crate::manifest::ItemId;

/// A folder with a mode.
#[derive(Debug, Clone)]
pub struct Folder {
    pub id: ItemId,
    pub path: PathBuf,
    pub mode: u32,
}

impl Resource for Folder {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "folder"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(Observed::Differs(Difference::new(format!("missing (mode {:04o})", self.mode))))
            }
            Err(e) => Err(EngineError::io("read", &self.path)(e)),
            Ok(meta) if meta.is_dir() => {
                let mode = fsx::mode_of(&self.path).map_err(EngineError::io("read", &self.path))?.unwrap_or(0);
                if mode == self.mode {
                    Ok(Observed::InSync)
                } else {
                    Ok(Observed::Differs(Difference::new(format!("mode {mode:04o}, want {:04o}", self.mode))))
                }
            }
            Ok(_) => Ok(Observed::Differs(Difference::new(
                "something else is in the way (it will be kept, then replaced by the folder)",
            ))),
        }
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        let meta = fs::symlink_metadata(&self.path).ok();
        if meta.as_ref().is_some_and(|m| !m.is_dir()) {
            ctx.state.keep(&self.path)?;
            fs::remove_file(&self.path).map_err(EngineError::io("remove", &self.path))?;
        }
        fs::create_dir_all(&self.path).map_err(EngineError::io("create", &self.path))?;
        fsx::set_mode(&self.path, self.mode).map_err(EngineError::io("set the mode of", &self.path))
    }
}
