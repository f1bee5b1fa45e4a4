//! Backup freshness: must-back-up paths whose newest snapshot is older than the
//! manifest's `max_age`, or in no snapshot.
//!
//! The audit does not talk to restic itself: it takes the report of
//! `bootstrap-data status` through [`BackupStatus`], so the audit and `bootstrap-data
//! status` cannot disagree ([`BootstrapData`]); tests of the audit's side (categories,
//! drift, exit code) can put a stand-in in its place.

use common::engine::Ctx;
use common::manifest::Manifest;
use common::report::{Item, Report, Status};

/// Where the audit gets backup freshness from: the report of `bootstrap-data status`
/// (`bootstrap_data::status_report`), one item per must-back-up path (`data:path:NAME`,
/// `data:service:NAME`) and the repository (`data:repository`); a path that is stale
/// or in no snapshot is `drift` (or `would_change`).
pub trait BackupStatus: Sync {
    fn status(&self, manifest: &Manifest, ctx: &Ctx) -> Report;
}

/// The backup freshness of `bootstrap-data status`, from its library.
#[derive(Debug, Clone, Copy, Default)]
pub struct BootstrapData;

impl BackupStatus for BootstrapData {
    fn status(&self, manifest: &Manifest, ctx: &Ctx) -> Report {
        bootstrap_data::status_report(manifest, &ctx.home, std::time::SystemTime::now())
    }
}

/// The backup items of the audit: none when the manifest declares no backup.
pub fn backup_items(manifest: &Manifest, ctx: &Ctx, source: &dyn BackupStatus) -> Vec<Item> {
    if manifest.backup.is_none() {
        return Vec::new();
    }
    source
        .status(manifest, ctx)
        .items
        .into_iter()
        .map(|mut item| {
            if item.status == Status::WouldChange {
                item.status = Status::Drift;
            }
            item
        })
        .collect()
}
