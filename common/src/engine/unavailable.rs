//! A resource whose declaration cannot be turned into a desired state yet: a source
//! file that cannot be read fails at observe with the reason, so the rest of the plan
//! runs; a repo file the pi-config step has not cloned yet differs, so `--check` on a
//! fresh host says what will happen instead of failing.

use std::path::{Path, PathBuf};

use super::{Ctx, Difference, EngineError, Observed, Resource};
use crate::manifest::ItemId;

/// Why the desired state is not known.
#[derive(Debug, Clone)]
pub enum Cause {
    /// It cannot be: the reason is reported as a failure.
    Broken(String),
    /// Its source is a repo file that is not there yet.
    AwaitingRepo(PathBuf),
}

/// A resource whose desired state is not known, and why.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub id: ItemId,
    pub kind: &'static str,
    pub path: Option<PathBuf>,
    pub cause: Cause,
}

impl Resource for Unavailable {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        match &self.cause {
            Cause::Broken(reason) => Err(EngineError::Refused(reason.clone())),
            Cause::AwaitingRepo(source) => Ok(Observed::Differs(awaiting_repo(source))),
        }
    }
    fn apply(&self, _: &Ctx) -> Result<(), EngineError> {
        Err(EngineError::Refused(match &self.cause {
            Cause::Broken(reason) => reason.clone(),
            Cause::AwaitingRepo(source) => {
                format!("{} does not exist: run bootstrap-pi-config first, it clones the repo", source.display())
            }
        }))
    }
}

/// What a resource whose source file is not there yet waits for: the repo, cloned by
/// `bootstrap-pi-config`.
pub fn awaiting_repo(source: &Path) -> Difference {
    Difference::new(format!(
        "its source {} is not there yet: bootstrap-pi-config clones the repo first",
        source.display()
    ))
}

/// Reads a file the declared state comes from; `None` when it does not exist (yet).
pub fn read_source(source: &Path) -> Result<Option<Vec<u8>>, EngineError> {
    match std::fs::read(source) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io("read", source)(e)),
    }
}
