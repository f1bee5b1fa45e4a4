//! A file with a given content and mode.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Ctx, Difference, EngineError, Observed, Resource, unified_diff};
use crate::fsx;
use crate::manifest::ItemId;

/// A file with exact content and mode. A file that holds secrets shows no diff.
#[derive(Debug, Clone)]
pub struct FileContent {
    pub id: ItemId,
    pub path: PathBuf,
    pub content: Vec<u8>,
    pub mode: u32,
    /// Never show the content in a diff.
    pub secret: bool,
}

enum Found {
    Missing,
    NotAFile,
    File { content: Vec<u8>, mode: u32 },
}

impl FileContent {
    fn found(&self) -> Result<Found, EngineError> {
        match fs::symlink_metadata(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Found::Missing),
            Err(e) => Err(EngineError::io("read", &self.path)(e)),
            Ok(meta) if !meta.is_file() => Ok(Found::NotAFile),
            Ok(_) => {
                let content = fs::read(&self.path).map_err(EngineError::io("read", &self.path))?;
                let mode = fsx::mode_of(&self.path).map_err(EngineError::io("read", &self.path))?.unwrap_or(0);
                Ok(Found::File { content, mode })
            }
        }
    }
}

impl Resource for FileContent {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "file"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        let label = self.path.display().to_string();
        let diff = |old: &[u8]| {
            if self.secret { None } else { unified_diff(&label, old, &self.content) }
        };
        Ok(match self.found()? {
            Found::Missing => Observed::Differs(Difference::new("missing").with_diff(diff(b""))),
            Found::NotAFile => Observed::Differs(Difference::new(
                "something other than a file is in the way (it will be kept, then replaced)",
            )),
            Found::File { content, mode } => {
                let mut what = Vec::new();
                if content != self.content {
                    what.push(if self.secret {
                        "content differs (not shown: secret)".to_owned()
                    } else {
                        "content differs".to_owned()
                    });
                }
                if mode != self.mode {
                    what.push(format!("mode {mode:04o}, want {:04o}", self.mode));
                }
                if what.is_empty() {
                    Observed::InSync
                } else {
                    let shown = if content != self.content { diff(&content) } else { None };
                    Observed::Differs(Difference::new(what.join(", ")).with_diff(shown))
                }
            }
        })
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        match self.found()? {
            Found::File { content, .. } if content == self.content => {
                return fsx::set_mode(&self.path, self.mode).map_err(EngineError::io("set the mode of", &self.path));
            }
            Found::File { .. } => {
                ctx.state.keep(&self.path)?;
            }
            Found::NotAFile => {
                ctx.state.keep(&self.path)?;
                if self.path.is_dir() {
                    // `keep` moved the folder away already.
                } else {
                    fs::remove_file(&self.path).map_err(EngineError::io("remove", &self.path))?;
                }
            }
            Found::Missing => {}
        }
        fsx::write_atomic(&self.path, &self.content, Some(self.mode)).map_err(EngineError::io("write", &self.path))
    }
}
