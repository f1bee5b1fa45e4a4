//! A resource whose declaration cannot be turned into a desired state (its source file
//! is missing, say): it fails at observe with the reason, so the rest of the plan runs.

use std::path::{Path, PathBuf};

use super::{Ctx, EngineError, Observed, Resource};
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
