//! The observe/apply engine that every step and the audit share.
//!
//! A [`Resource`] can `observe` (in sync, or what differs, as a diff) and `apply` (make
//! it so). [`run`] does the same for every step:
//!
//! ```text
//! observe -> in sync: ok
//!         -> differs, --check: would change (with the diff)
//!         -> differs: apply, then observe again
//!                     (still differs: failed, never a silent "changed")
//! ```
//!
//! So `--check` and the audit can never disagree with what a run would do.

mod block;
mod diff;
mod file;
mod folder;
mod symlink;
mod unavailable;

use std::path::{Path, PathBuf};

pub use block::{ManagedBlock, begin_marker, end_marker, opened_block, shell_block, without_blocks};
pub use diff::unified_diff;
pub use file::FileContent;
pub use folder::Folder;
pub use symlink::Symlink;
pub use unavailable::{Cause, Unavailable, awaiting_repo, read_source};

use crate::manifest::ItemId;
use crate::output::{self, Verbosity};
use crate::report::{Item, Report, Status};
use crate::state::{StateDir, StateError};

/// What an observation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// In the declared state.
    InSync,
    /// In the declared state, with something the user should know (edits to files the
    /// host does not use).
    Note(String),
    /// Not what a restore from the declared sources would give, but the user's to
    /// settle, so a run leaves it alone and says why (unpushed commits, edited files the
    /// host uses, a diverged branch): `ok` with the reason in a step, `drift` in the
    /// audit ([`RunOptions::audit`]).
    LeftAlone(String),
    /// Not in the declared state.
    Differs(Difference),
}

/// How a resource differs from its declared state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// One line: "missing", "mode 0644, want 0600", ...
    pub summary: String,
    /// A unified diff, when content differs and may be shown.
    pub diff: Option<String>,
}

impl Difference {
    pub fn new(summary: impl Into<String>) -> Difference {
        Difference { summary: summary.into(), diff: None }
    }
    pub fn with_diff(mut self, diff: Option<String>) -> Difference {
        self.diff = diff;
        self
    }
}

/// Why a resource could not be observed or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// The host is in a state the resource will not touch by itself.
    #[error("{0}")]
    Refused(String),
    /// The state folder failed (keeping a file, the lock).
    #[error(transparent)]
    State(#[from] StateError),
    /// A command failed.
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
}

impl EngineError {
    pub fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> EngineError + 'p {
        move |source| EngineError::Io { action, path: path.to_path_buf(), source }
    }
}

/// What resources need from the run: HOME and the state folder.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub home: PathBuf,
    pub state: StateDir,
}

impl Ctx {
    pub fn new(home: &Path) -> Ctx {
        Ctx { home: home.to_path_buf(), state: StateDir::new(home) }
    }
}

/// Something on the host with a declared state.
pub trait Resource {
    /// The stable id, such as `link:pi-settings`.
    fn id(&self) -> &ItemId;
    /// The kind shown in reports: `folder`, `file`, `symlink`, `block`, ...
    fn kind(&self) -> &'static str;
    /// The file or folder concerned, if any.
    fn path(&self) -> Option<&Path> {
        None
    }
    /// Reads the host, changes nothing.
    fn observe(&self, ctx: &Ctx) -> Result<Observed, EngineError>;
    /// Makes the host match; only called after `observe` found a difference. A file
    /// that is replaced is kept first with `ctx.state.keep`.
    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError>;
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Observe only.
    pub check: bool,
    /// Only these ids (all when empty).
    pub only: Vec<String>,
    pub verbosity: Verbosity,
    /// Observed for the audit (with `check`): what a run leaves alone
    /// ([`Observed::LeftAlone`]) is drift.
    pub audit: bool,
}

/// `--only` named an id that is not in the plan.
#[derive(Debug, thiserror::Error)]
#[error("--only {id}: no such item in this step (its items: {known})")]
pub struct UnknownItem {
    pub id: String,
    pub known: String,
}

/// Keeps the resources `--only` asks for; an unknown id is an error of the command line.
pub fn select<'a>(
    resources: &'a [Box<dyn Resource + 'a>],
    only: &[String],
) -> Result<Vec<&'a dyn Resource>, UnknownItem> {
    for id in only {
        if !resources.iter().any(|r| r.id().0 == *id) {
            let known = resources.iter().map(|r| r.id().0.as_str()).collect::<Vec<_>>().join(", ");
            return Err(UnknownItem { id: id.clone(), known });
        }
    }
    Ok(resources.iter().filter(|r| only.is_empty() || only.contains(&r.id().0)).map(|r| r.as_ref()).collect())
}

/// Observes, and applies where needed, every resource in order, recording one item each.
pub fn run(step: &str, resources: &[&dyn Resource], ctx: &Ctx, options: &RunOptions) -> Report {
    let mut report = Report::new(step, options.check);
    let bar = output::progress(resources.len() as u64, step, options.verbosity);
    for resource in resources {
        bar.set_message(resource.id().to_string());
        report.push(observe_and_apply(*resource, ctx, options.check, options.audit));
        bar.inc(1);
    }
    bar.finish_and_clear();
    if !options.check && ctx.state.kept_root().exists() {
        report.kept = Some(ctx.state.kept_root());
    }
    report
}

/// The item for one resource: observe, apply, observe again.
pub fn run_one(resource: &dyn Resource, ctx: &Ctx, check: bool) -> Item {
    observe_and_apply(resource, ctx, check, false)
}

/// [`run_one`] from an observation the caller already made (`resource.observe(ctx)`,
/// with nothing changed since): apply, observe again.
pub fn run_observed(resource: &dyn Resource, observed: Result<Observed, EngineError>, ctx: &Ctx, check: bool) -> Item {
    apply_observed(resource, observed, ctx, check, false)
}

/// [`run_one`], where `audit` makes what a run leaves alone drift.
fn observe_and_apply(resource: &dyn Resource, ctx: &Ctx, check: bool, audit: bool) -> Item {
    apply_observed(resource, resource.observe(ctx), ctx, check, audit)
}

fn apply_observed(
    resource: &dyn Resource,
    observed: Result<Observed, EngineError>,
    ctx: &Ctx,
    check: bool,
    audit: bool,
) -> Item {
    let item = |status, detail: String, diff| {
        Item::new(resource.id().to_string(), resource.kind(), status, detail)
            .at_maybe(resource.path().map(Path::to_path_buf))
            .with_diff(diff)
    };
    let difference = match observed {
        Ok(Observed::InSync) => return item(Status::Ok, String::new(), None),
        Ok(Observed::Note(note)) => return item(Status::Ok, note, None),
        Ok(Observed::LeftAlone(why)) => return item(if audit { Status::Drift } else { Status::Ok }, why, None),
        Ok(Observed::Differs(difference)) => difference,
        Err(e) => return item(Status::Failed, format!("cannot observe: {e}"), None),
    };
    if check {
        return item(Status::WouldChange, difference.summary, difference.diff);
    }
    if let Err(e) = resource.apply(ctx) {
        return item(Status::Failed, format!("{}: {e}", difference.summary), difference.diff);
    }
    match resource.observe(ctx) {
        // What is left alone after the change was already said in its summary.
        Ok(Observed::InSync | Observed::Note(_) | Observed::LeftAlone(_)) => {
            item(Status::Changed, difference.summary, difference.diff)
        }
        Ok(Observed::Differs(after)) => {
            item(Status::Failed, format!("did not converge: still {} after applying", after.summary), after.diff)
        }
        Err(e) => item(Status::Failed, format!("cannot observe after applying: {e}"), None),
    }
}
