//! Resources whose declaration cannot be turned into a desired state: [`Unavailable`]
//! fails at observe with the reason, so the rest of the plan runs; [`AwaitingRepo`]
//! waits for a repo file that the pi-config step has not cloned yet.

use std::path::{Path, PathBuf};

use super::{Ctx, Difference, EngineError, Observed, Resource};
use crate::manifest::ItemId;

/// Always fails with `reason`.
#[derive(Debug, Clone)]
pub struct Unavailable {
    pub id: ItemId,
    pub kind: &'static str,
    pub path: Option<PathBuf>,
    pub reason: String,
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
        Err(EngineError::Refused(self.reason.clone()))
    }
    fn apply(&self, _: &Ctx) -> Result<(), EngineError> {
        Err(EngineError::Refused(self.reason.clone()))
    }
}

/// What a resource whose source file is not there yet waits for: the repo, cloned by
/// `bootstrap-pi-config`. On a fresh host `--check` says so instead of failing.
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

/// A resource built from a repo file that does not exist yet: it differs (so `--check`
/// on a fresh host says what will happen) and cannot be applied until the file is there.
#[derive(Debug, Clone)]
pub struct AwaitingRepo {
    pub id: ItemId,
    pub kind: &'static str,
    pub path: Option<PathBuf>,
    pub source: PathBuf,
}

impl Resource for AwaitingRepo {
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
        Ok(Observed::Differs(awaiting_repo(&self.source)))
    }
    fn apply(&self, _: &Ctx) -> Result<(), EngineError> {
        Err(EngineError::Refused(format!(
            "{} does not exist: run bootstrap-pi-config first, it clones the repo",
            self.source.display()
        )))
    }
}
