//! The one shape of a step: what every binary is, and the error every library returns.
//!
//! A step is a [`Step`]: its name, its command line (`Args`, holding the shared
//! [`CommonArgs`]), the item ids `--only` may name, and `run`. [`main`] does the rest,
//! the same for every binary:
//!
//! ```text
//! parse the flags -> load the manifest (exit 2 with file:line:col when it is wrong)
//!   -> register every declared secret (env file values, the restic password)
//!   -> check --only against the step's ids (exit 2)
//!   -> when the run may change the host: take the run lock (or, in a step the restore
//!      chain runs, work under the chain's: state::LOCK_HANDOVER_ENV), note the first
//!      sight of the data paths (common::durable)
//!   -> run -> print the report (human or JSON) -> exit 0 / 1
//! ```
//!
//! So every `main.rs` is one line, and a step cannot forget the lock, the secrets or
//! the exit codes.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::CommonArgs;
use crate::durable::{self, LedgerError};
use crate::engine::{Ctx, UnknownItem};
use crate::manifest::{LoadError, Manifest};
use crate::output;
use crate::report::{Item, Report, Status};
use crate::secret;
use crate::staging;
use crate::state::{self, StateError};

/// Why a step could not run (or not to its end): exit 2 for a wrong command line or
/// manifest, 1 for the rest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The command line is wrong: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The manifest is wrong: exit 2.
    #[error(transparent)]
    Manifest(#[from] LoadError),
    /// `--only` names no item of the step: exit 2.
    #[error(transparent)]
    UnknownItem(#[from] UnknownItem),
    /// The state folder (the lock, a state file): exit 1.
    #[error(transparent)]
    State(#[from] StateError),
    /// The ledger of the data paths: exit 1.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The run could not go on: exit 1.
    #[error("{0}")]
    Run(String),
}

impl StepError {
    pub fn exit_code(&self) -> u8 {
        match self {
            StepError::Usage(_) | StepError::Manifest(_) | StepError::UnknownItem(_) => 2,
            StepError::State(_) | StepError::Ledger(_) | StepError::Run(_) => 1,
        }
    }
}

/// What a step's run gives back.
#[derive(Debug)]
pub struct Outcome {
    /// The report: its items decide the exit code.
    pub report: Report,
    /// A rendering of its own instead of the usual one (the audit groups by category):
    /// the human text and the JSON document.
    pub rendered: Option<Rendered>,
    /// A line for people after the report (on stderr; not with `--json` or `-q`).
    pub note: Option<String>,
    /// What went wrong once the report was made (writing a JUnit file): said after
    /// the report, and the exit code is then the error's.
    pub failure: Option<StepError>,
}

/// A step's own rendering of its report.
#[derive(Debug)]
pub struct Rendered {
    pub human: String,
    pub json: String,
}

impl From<Report> for Outcome {
    fn from(report: Report) -> Outcome {
        Outcome { report, rendered: None, note: None, failure: None }
    }
}

/// What [`Step::item_ids`] gives.
pub type Ids = Result<Option<Vec<String>>, StepError>;
/// What [`Step::run`] gives.
pub type Ran = Result<Outcome, StepError>;

/// Implements `AsRef<CommonArgs>` for a step's `Args` that holds the shared flags in
/// its field `common` (what [`Step::Args`] needs).
#[macro_export]
macro_rules! common_args {
    ($args:ty) => {
        impl ::core::convert::AsRef<$crate::cli::CommonArgs> for $args {
            fn as_ref(&self) -> &$crate::cli::CommonArgs {
                &self.common
            }
        }
    };
}

/// One step of pi-bootstrap.
pub trait Step {
    /// Its name in reports, and its binary's name.
    const NAME: &'static str;
    /// Its command line; the shared flags are in it.
    type Args: Parser + AsRef<CommonArgs>;

    /// The ids `--only` may name in this invocation (`None`: only known once the step
    /// ran, and it checks `--only` itself, as the audit does); an error when `--only`
    /// does not apply to it at all.
    fn item_ids(manifest: &Manifest, ctx: &Ctx, args: &Self::Args) -> Ids;

    /// Whether this invocation may change the host: then [`main`] holds the run lock
    /// around [`Step::run`] and notes the first sight of the data paths before it.
    fn applies(args: &Self::Args) -> bool {
        !args.as_ref().check
    }

    /// Starts, in the background, what does not need the manifest, before it is read
    /// (the audit's one look at the user manager). Nothing by default.
    fn start_early(_: &Self::Args) {}

    /// Runs the step.
    fn run(manifest: &Manifest, ctx: &Ctx, args: &Self::Args) -> Ran;
}

/// The whole life of a step binary (see the module's documentation).
pub fn main<S: Step>() -> ExitCode {
    let args = S::Args::parse();
    match run::<S>(&args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => fail(S::NAME, &e),
    }
}

/// Prints why a step stopped, and the exit code that says so.
pub fn fail(program: &str, e: &StepError) -> ExitCode {
    // `file:line:col:` lines stay at the start of their line, for editors; the last
    // line says what it all means.
    let text = e.to_string();
    let (located, last) = text.rsplit_once('\n').unwrap_or(("", &text));
    if !located.is_empty() {
        output::note(located);
    }
    output::error(program, last);
    ExitCode::from(e.exit_code())
}

/// Checks `--only` against the ids a step knows.
pub fn check_only(only: &[String], ids: &[String]) -> Result<(), UnknownItem> {
    match only.iter().find(|id| !ids.contains(id)) {
        Some(id) => Err(UnknownItem { id: id.clone(), known: ids.join(", ") }),
        None => Ok(()),
    }
}

fn run<S: Step>(args: &S::Args) -> Result<u8, StepError> {
    let outcome = outcome::<S>(args)?;
    match outcome {
        (code, None) => Ok(code),
        (_, Some(failure)) => Err(failure),
    }
}

/// Runs the step and prints its report: the exit code of the report, and what failed
/// after it was made.
fn outcome<S: Step>(args: &S::Args) -> Result<(u8, Option<StepError>), StepError> {
    let common = args.as_ref();
    S::start_early(args);
    let manifest = common.load_manifest()?;
    let home = state::home_from_env()?;
    let ctx = Ctx::new(&home);
    secret::register_declared(&manifest);
    if let Some(ids) = S::item_ids(&manifest, &ctx, args)? {
        check_only(&common.only, &ids)?;
    }
    let applies = S::applies(args);
    let _lock = if applies { Some(ctx.state.lock_as_step()?) } else { None };
    let swept = if applies {
        durable::note_first_sight(&manifest, &ctx.state, &home)?;
        staging::sweep(&manifest, &ctx.state, &home)
    } else {
        Vec::new()
    };
    let mut outcome = S::run(&manifest, &ctx, args)?;
    if !swept.is_empty() {
        let shown: Vec<String> = swept.iter().map(|p| crate::report::tilde(p, &home)).collect();
        outcome.report.push(Item::new(
            "staging:leftovers",
            "staging",
            Status::Changed,
            format!("removed what an interrupted run left: {}", shown.join(", ")),
        ));
    }
    print(&outcome, &home, common);
    Ok((u8::try_from(outcome.report.exit_code()).unwrap_or(1), outcome.failure))
}

/// Prints an outcome as the flags ask.
fn print(outcome: &Outcome, home: &Path, common: &CommonArgs) {
    match &outcome.rendered {
        Some(rendered) if common.json => output::print_text(&format!("{}\n", rendered.json)),
        Some(rendered) => output::print_text(&rendered.human),
        None => output::print_report(&outcome.report, home, common.json, common.verbosity()),
    }
    if let Some(note) = &outcome.note
        && !common.json
        && !common.quiet
    {
        output::note(note);
    }
}
