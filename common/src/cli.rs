//! The command-line contract every binary keeps: the shared flags, loading the
//! manifest they name, and the exit codes 0 (done, in sync), 1 (failed, drift, or would
//! change) and 2 (the manifest or the command line is wrong).

use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::{self, Ctx, Resource, RunOptions};
use crate::manifest::{self, LoadError, Manifest};
use crate::output::{self, Verbosity};
use crate::report::Report;
use crate::state::{self, StateError};

/// The flags every step shares.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// The host manifest. Default: $PI_BOOTSTRAP_MANIFEST, then the nearest
    /// pi-bootstrap.yaml in the current folder or a folder above it.
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest: Option<PathBuf>,
    /// Observe only: change nothing, show what would change (exit 1 if anything would).
    #[arg(long, global = true)]
    pub check: bool,
    /// Print one JSON document on stdout instead of the human report.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only this item (an id such as link:pi-settings); repeatable.
    #[arg(long, value_name = "ID", global = true)]
    pub only: Vec<String>,
    /// Also list the commands the run ran.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Show only what is not ok, and the recap.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

impl CommonArgs {
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }

    /// Finds and loads the manifest these flags name.
    pub fn load_manifest(&self) -> Result<Manifest, Failure> {
        let cwd =
            std::env::current_dir().map_err(|e| Failure::Usage(format!("cannot read the current folder: {e}")))?;
        let env_value = std::env::var(manifest::MANIFEST_ENV).ok();
        let path = manifest::find_manifest(self.manifest.as_deref(), env_value.as_deref(), &cwd)?;
        Ok(manifest::load(&path)?)
    }

    pub fn run_options(&self) -> RunOptions {
        RunOptions { check: self.check, only: self.only.clone(), verbosity: self.verbosity() }
    }
}

/// Why a binary stops before (or instead of) producing a report.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The command line is wrong: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The manifest is wrong: exit 2.
    #[error(transparent)]
    Manifest(#[from] LoadError),
    /// The run could not go on: exit 1.
    #[error("{0}")]
    Run(String),
}

impl From<StateError> for Failure {
    fn from(e: StateError) -> Failure {
        Failure::Run(e.to_string())
    }
}

impl From<crate::durable::LedgerError> for Failure {
    fn from(e: crate::durable::LedgerError) -> Failure {
        Failure::Run(e.to_string())
    }
}

impl From<engine::UnknownItem> for Failure {
    fn from(e: engine::UnknownItem) -> Failure {
        Failure::Usage(e.to_string())
    }
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Manifest(_) => 2,
            Failure::Run(_) => 1,
        }
    }
}

/// Maps a binary's result to its exit code, printing the failure on stderr.
pub fn finish(program: &str, result: Result<i32, Failure>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(failure) => {
            // `file:line:col:` lines stay at the start of their line, for editors; the
            // last line says what it all means.
            let text = failure.to_string();
            let (located, last) = text.rsplit_once('\n').unwrap_or(("", &text));
            if !located.is_empty() {
                output::note(located);
            }
            output::error(program, last);
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The whole life of a step that is a list of resources: load the manifest, plan,
/// take the lock (not for `--check`), observe and apply, print the report. Returns the
/// exit code.
pub fn run_step<F>(step: &str, args: &CommonArgs, plan: F) -> Result<i32, Failure>
where
    F: for<'m> FnOnce(&'m Manifest) -> Vec<Box<dyn Resource + 'm>>,
{
    let manifest = args.load_manifest()?;
    let home = state::home_from_env()?;
    let ctx = Ctx::new(&home);
    let resources = plan(&manifest);
    let selected = engine::select(&resources, &args.only)?;
    let _lock = if args.check { None } else { Some(ctx.state.lock()?) };
    if !args.check {
        crate::durable::note_first_sight(&manifest, &ctx.state, &home)?;
    }
    let report = engine::run(step, &selected, &ctx, &args.run_options());
    Ok(print(&report, &home, args))
}

/// Prints a report as the flags ask and returns its exit code.
pub fn print(report: &Report, home: &std::path::Path, args: &CommonArgs) -> i32 {
    output::print_report(report, home, args.json, args.verbosity());
    report.exit_code()
}
