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
//!   `pi-bootstrap`; the repository is created when there is none. Refused (exit 1)
//!   while a path still waits for its restore on this host and a snapshot holds data
//!   for it, so a fresh host's empty state never silently becomes the newest snapshot
//!   (`--force` to back up anyway). What it backed up is settled in the ledger.
//! - [`restore`]: each path whose data is not this host's yet comes back from the
//!   newest snapshot of this host that holds it, decided from evidence (see
//!   [`decide`] and `common::durable`): a fresh host's own writes (a database a
//!   service made at its first start, a `~/.bashrc` of skeleton lines and managed
//!   blocks) are kept aside and replaced; data that was here before is left alone, and
//!   said so. `--force` or `--snapshot ID` restores over anything, keeping it aside
//!   first (`~/.local/state/pi-bootstrap/kept/RUN/...`). restic restores into a
//!   staging folder next to the path, which is then renamed into place: the path
//!   appears whole or not at all, and restic never touches the folders above it. The
//!   running services that own a path are stopped around the restore and started again
//!   after, failure or not; then the services that waited for their data are started.
//!   Observe, apply, observe again: a second restore reports zero changes and runs no
//!   command that changes anything (the repository is only read when a path is not
//!   settled, or missing).
//! - [`status`] / [`status_report`]: per path, the newest snapshot that covers it and
//!   its age against the manifest's `max_age`; stale, in no snapshot, or still waiting
//!   for its restore on this host is `drift` (exit 1). The answer comes from the local
//!   record of the backup ([`record`]: what backup, restore, verify and forget last
//!   read of the repository), without restic; the repository is asked when there is
//!   no record this host can trust, and with `--deep`. The audit reuses
//!   [`status_report`].
//! - [`snapshots`]: per path, every snapshot of this host that holds it (one `restic
//!   find`), and which one it was restored from.
//! - [`verify()`]: reads the backup back: `restic check --read-data-subset` of the
//!   repository, and per path a few files unchanged since its newest snapshot
//!   restored into a temporary folder and compared byte for byte with the live ones;
//!   the result is recorded in the state folder (`verify.json`), which the audit reads
//!   through [`verify_status`]. `--if-due` verifies only when `backup.verify.every`
//!   has passed since the last success.
//! - [`forget()`]: applies `backup.keep` to this host's snapshots (what `restic forget`
//!   keeps, and the newest snapshot of every path besides), then prunes.
//!
//! The password comes from the manifest's password file through
//! `RESTIC_PASSWORD_FILE` (never a command line), and is registered for redaction. See
//! [`restic`] for how restic is called and [`paths`] for what a snapshot holds.

mod backup;
mod capture;
mod clock;
pub mod decide;
mod forget;
pub mod paths;
pub mod record;
pub mod restic;
mod restore;
mod services;
mod snapshots;
mod status;
mod verify;

use std::path::Path;

use common::engine::Ctx;
use common::manifest::{Backup, Manifest};
use common::output::Verbosity;
use common::report::{Item, Status, tilde};
use common::step::{Step, StepError};

pub use backup::backup;
pub use common::durable::{DataPath, Owner, data_paths, never_in_snapshot};
pub use forget::forget;
pub use restore::restore;
pub use snapshots::snapshots;
pub use status::{status, status_report};
pub use verify::{verify, verify_status};

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
    /// One restic snapshot of every `backup`-class path (refused while a path still
    /// waits for its restore on this host).
    Backup {
        /// Back up even paths that still wait for their restore (their fresh state
        /// becomes the newest snapshot).
        #[arg(long)]
        force: bool,
    },
    /// Brings back each must-back-up path whose data is not this host's yet, from the
    /// newest snapshot, and starts the services that waited for it.
    Restore {
        /// Restore over whatever is there (kept aside first).
        #[arg(long, conflicts_with = "snapshot")]
        force: bool,
        /// Restore from this snapshot (an id or its start), over whatever is there
        /// (kept aside first).
        #[arg(long, value_name = "ID")]
        snapshot: Option<String>,
        /// Leave the services that waited for their data stopped (to look at the data
        /// first); `bootstrap-services` or another `restore` starts them.
        #[arg(long)]
        no_start: bool,
    },
    /// Per must-back-up path, its newest snapshot and its age (exit 1 if stale or missing).
    ///
    /// From the local record that backup, restore, verify and forget write (no restic);
    /// the repository is asked when there is no record of this machine, host and
    /// repository that knows every path. A snapshot made or forgotten by anything else
    /// since the record was written shows only with --deep.
    Status {
        /// Ask the repository, whatever the local record says.
        #[arg(long)]
        deep: bool,
    },
    /// Per must-back-up path, every snapshot of this host that holds it.
    Snapshots,
    /// Reads the backup back, and records the result for the audit.
    ///
    /// `restic check` reads part of the repository's data (`backup.verify.read_data`,
    /// default 2%), and a few files of each path that have not changed since its newest
    /// snapshot (`backup.verify.files`, default 5) are restored into a temporary folder
    /// and compared byte for byte with the live ones. With --check: only lists what it
    /// would read back (no restic check, no restore).
    Verify {
        /// Only when due: when `backup.verify.every` has passed since the last
        /// successful verification (and never without `backup.verify`). For the
        /// scheduled run.
        #[arg(long)]
        if_due: bool,
    },
    /// Forgets the snapshots of this host that `backup.keep` does not keep, and prunes.
    ///
    /// What restic's keep policy keeps stays, and so does the newest snapshot of every
    /// must-back-up path; the data only the others held is pruned. With --check: only
    /// says what would go.
    Forget,
}

impl Action {
    /// The options these flags give.
    pub fn options(&self, common: &common::cli::CommonArgs) -> Options {
        let (force, snapshot, no_start) = match self {
            Action::Backup { force } => (*force, None, false),
            Action::Restore { force, snapshot, no_start } => (*force, snapshot.clone(), *no_start),
            Action::Status { .. } | Action::Snapshots | Action::Verify { .. } | Action::Forget => (false, None, false),
        };
        let if_due = matches!(self, Action::Verify { if_due: true });
        let deep = matches!(self, Action::Status { deep: true });
        Options {
            check: common.check,
            force,
            snapshot,
            no_start,
            if_due,
            deep,
            only: common.only.clone(),
            verbosity: common.verbosity(),
        }
    }
}

common::common_args!(Args);

/// The step, as its binary runs it (`common::step::main`).
pub struct DataStep;

impl Step for DataStep {
    const NAME: &'static str = STEP;
    type Args = Args;

    fn item_ids(manifest: &Manifest, _: &Ctx, args: &Args) -> common::step::Ids {
        let mut ids: Vec<String> = data_paths(manifest).into_iter().map(|p| p.id).collect();
        match args.action {
            Action::Forget if !args.common.only.is_empty() => Err(StepError::Usage(
                "forget applies the whole `backup.keep` policy to the host's snapshots: --only does not apply to it"
                    .into(),
            )),
            Action::Forget => Ok(Some(Vec::new())),
            Action::Verify { .. } => {
                ids.push(REPOSITORY_ID.to_owned());
                Ok(Some(ids))
            }
            _ => Ok(Some(ids)),
        }
    }

    /// Backup, restore, verify and forget change things; status and snapshots only read.
    fn applies(args: &Args) -> bool {
        !args.common.check && !matches!(args.action, Action::Status { .. } | Action::Snapshots)
    }

    fn run(manifest: &Manifest, ctx: &Ctx, args: &Args) -> common::step::Ran {
        let options = args.action.options(&args.common);
        let report = match args.action {
            Action::Backup { .. } => backup(manifest, ctx, &options)?,
            Action::Restore { .. } => restore(manifest, ctx, &options)?,
            Action::Status { .. } => status(manifest, ctx, &options)?,
            Action::Snapshots => snapshots(manifest, ctx, &options)?,
            Action::Verify { .. } => verify(manifest, ctx, &options)?,
            Action::Forget => forget(manifest, ctx, &options)?,
        };
        Ok(report.into())
    }
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
    /// `restore --force`: also restore over data that is there (kept aside first);
    /// `backup --force`: back up even what still waits for its restore.
    pub force: bool,
    /// `restore --snapshot ID`: restore from this snapshot (kept aside first).
    pub snapshot: Option<String>,
    /// `restore --no-start`: leave the services that waited for their data stopped.
    pub no_start: bool,
    /// `verify --if-due`: verify only when `backup.verify.every` has passed since the
    /// last successful verification.
    pub if_due: bool,
    /// `status --deep`: ask the repository even when the local record answers.
    pub deep: bool,
    /// Only these items (all when empty).
    pub only: Vec<String>,
    pub verbosity: Verbosity,
}

/// The host's name for restic's `--host`: the manifest's `host`, else the machine's.
pub fn host_name(manifest: &Manifest) -> Result<String, StepError> {
    if let Some(host) = manifest.host.as_deref().filter(|h| !h.trim().is_empty()) {
        return Ok(host.trim().to_owned());
    }
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|name| name.trim().to_owned())
        .find(|name| !name.is_empty())
        .ok_or_else(|| StepError::Run("cannot tell this machine's name: set `host:` in the manifest".to_owned()))
}

/// The manifest's `backup` section; the manifest checks make sure it is there
/// whenever a path must be backed up.
fn backup_section(manifest: &Manifest) -> Result<&Backup, StepError> {
    manifest.backup.as_ref().ok_or_else(|| {
        StepError::Run("the manifest has `backup`-class paths but no `backup` section to say where they go".to_owned())
    })
}

/// The item of one data path.
fn item(path: &DataPath, status: Status, detail: impl Into<String>) -> Item {
    Item::new(path.id.clone(), "data", status, detail).at(path.path.clone())
}

/// The item of the repository (with its folder as path when it is a local one).
fn repository_item(backup: &Backup, status: Status, detail: impl Into<String>) -> Item {
    Item::new(REPOSITORY_ID, "repository", status, detail).at_maybe(restic::local_folder(&backup.repository.value))
}

/// `~`-relative paths joined for a detail.
fn show_paths<'a>(paths: impl IntoIterator<Item = &'a Path>, home: &Path) -> String {
    paths.into_iter().map(|p| tilde(p, home)).collect::<Vec<_>>().join(", ")
}
