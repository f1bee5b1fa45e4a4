//! Restore step 6: the durable data of the host (Tier C), which never comes back from
//! git, backed up to and restored from a restic repository.
//!
//! Every `backup`-class path of the manifest (declared paths and services' data paths)
//! is one item of the report, `data:path:NAME` or `data:service:NAME`; the repository
//! is the item `data:repository`.
//!
//! - [`backup`]: one restic snapshot of every existing `backup` path, without what is
//!   declared with another class inside them (the most specific path wins), tagged with
//!   the host's name (`--host`, from the manifest's `host` or the machine's name) and
//!   `pi-bootstrap`; the repository is created when there is none.
//! - [`restore`]: each path that is missing or an empty folder comes back from the
//!   newest snapshot of this host that covers it. A path holding data is left alone
//!   (ok, and said so) unless `--force`, and then it is kept aside first
//!   (`~/.local/state/pi-bootstrap/kept/RUN/...`). restic restores into a staging
//!   folder next to the path, which is then renamed into place: the path appears whole
//!   or not at all, and restic never touches the folders above it (restoring to `/`
//!   would reset their modes and times from the snapshot). The running services that
//!   own a path are stopped around the restore and started again after, failure or
//!   not. Observe, apply, observe again: a second restore reports zero changes and runs
//!   no command that changes anything (the repository is only read when a path is
//!   missing or empty).
//! - [`status`] / [`status_report`]: per path, the newest snapshot that covers it and
//!   its age against the manifest's `max_age`; stale or in no snapshot is `drift`
//!   (exit 1). The audit reuses [`status_report`].
//!
//! The password comes from the manifest's password file through
//! `RESTIC_PASSWORD_FILE` (never a command line), and is registered for redaction. See
//! [`restic`] for how restic is called and [`paths`] for what a snapshot holds.

mod backup;
mod clock;
pub mod paths;
pub mod restic;
mod restore;
mod services;
mod status;

use std::path::{Path, PathBuf};

use common::cli::Failure;
use common::manifest::{Backup, Manifest};
use common::output::Verbosity;
use common::report::{Item, Status, tilde};

pub use backup::backup;
pub use paths::{DataPath, Owner, data_paths};
pub use restore::restore;
pub use status::{status, status_report};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-data";

/// Backs up, restores and checks the durable data with restic.
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
}

/// What `bootstrap-data` does.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// One restic snapshot of every `backup`-class path.
    Backup,
    /// Restores each must-back-up path that is missing or empty from the newest snapshot.
    Restore {
        /// Also restore over data that is there (kept aside first).
        #[arg(long)]
        force: bool,
    },
    /// Per must-back-up path, its newest snapshot and its age (exit 1 if stale or missing).
    Status,
}

/// The tag of every snapshot this step makes (besides restic's `--host`).
pub const TAG: &str = "pi-bootstrap";

/// The id of the repository's item.
pub const REPOSITORY_ID: &str = "data:repository";

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Observe only: say what would be done.
    pub check: bool,
    /// `restore --force`: also restore over data that is there (kept aside first).
    pub force: bool,
    /// Only these items (all when empty).
    pub only: Vec<String>,
    pub verbosity: Verbosity,
}

/// The host's name for restic's `--host`: the manifest's `host`, else the machine's.
pub fn host_name(manifest: &Manifest) -> Result<String, Failure> {
    if let Some(host) = manifest.host.as_deref().filter(|h| !h.trim().is_empty()) {
        return Ok(host.trim().to_owned());
    }
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .ok_or_else(|| Failure::Run("cannot tell this machine's name: set `host:` in the manifest".to_owned()))
}

/// The manifest's `backup` section; the manifest checks make sure it is there
/// whenever a path must be backed up.
fn backup_section(manifest: &Manifest) -> Result<&Backup, Failure> {
    manifest.backup.as_ref().ok_or_else(|| {
        Failure::Run("the manifest has `backup`-class paths but no `backup` section to say where they go".to_owned())
    })
}

/// What may never be in a snapshot, with why: the password file (the backup cannot
/// hold its own key) and a local repository (it would back itself up).
fn never_in_snapshot(backup: &Backup) -> Vec<(PathBuf, String)> {
    let mut never = vec![(backup.password_file.path().to_path_buf(), "the restic password file".to_owned())];
    if let Some(folder) = restic::local_folder(&backup.repository.value) {
        never.push((folder, "the restic repository".to_owned()));
    }
    never
}

/// The item of one data path.
fn item(path: &DataPath, status: Status, detail: impl Into<String>) -> Item {
    Item {
        id: path.id.clone(),
        kind: "data".into(),
        status,
        path: Some(path.path.clone()),
        detail: detail.into(),
        diff: None,
    }
}

/// The item of the repository (with its folder as path when it is a local one).
fn repository_item(backup: &Backup, status: Status, detail: impl Into<String>) -> Item {
    Item {
        id: REPOSITORY_ID.into(),
        kind: "repository".into(),
        status,
        path: restic::local_folder(&backup.repository.value),
        detail: detail.into(),
        diff: None,
    }
}

/// `~`-relative paths joined for a detail.
fn show_paths<'a>(paths: impl IntoIterator<Item = &'a Path>, home: &Path) -> String {
    paths.into_iter().map(|p| tilde(p, home)).collect::<Vec<_>>().join(", ")
}
