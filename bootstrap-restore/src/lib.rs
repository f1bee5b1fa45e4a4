//! The ordered restore: every step binary in the documented order, each as its own
//! process, under one run lock held across the whole chain, resumable from the step
//! that failed. `pi-bootstrap-restore` is a step like the others ([`RestoreChain`] goes
//! through `common::step::main`: the manifest, the secrets, the lock, the exit codes):
//!
//! ```text
//! manifest loaded (exit 2 when wrong), secrets registered, the run lock taken and held
//! to the end (not with --check), the first sight of the data paths noted
//!   -> the first step: the first of STEPS, the recorded one (--resume), or --from STEP;
//!      the last: the last of STEPS, or --to STEP
//!   -> each step binary run from the bin folder with --manifest FILE [--check] [--json]
//!      [-v | -q], the lock handed over to it (common::state::LOCK_HANDOVER_ENV)
//!   -> its exit: 0 next; 1 with --check (would change) next; 2 (the manifest or the
//!      command line is wrong) stop, nothing recorded; 1, another code or a signal:
//!      failed, stop, recorded in ~/.local/state/pi-bootstrap/restore.json for --resume
//!   -> the recap (each step's own output went to the terminal as it came) or one JSON
//!      document with every step's report, exit code and time
//!   -> exit 2 when a step said 2; 1 when one failed or (--check) would change; else 0
//! ```
//!
//! The step binaries are found beside `pi-bootstrap-restore` itself (its
//! `current_exe()` folder), so an installed set (`~/.local/lib/pi-bootstrap/bin`) runs
//! itself; `--bin-dir DIR` names another folder.

mod chain;
mod record;

use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use common::cli::CommonArgs;
use common::engine::Ctx;
use common::manifest::Manifest;
use common::step::{Step, StepError};

pub use chain::{StepRun, Verdict, verdict};
pub use record::RECORD_FILE;

/// The program's name in reports and messages.
pub const NAME: &str = "pi-bootstrap-restore";

/// One step of the restore order: a step binary and the arguments before the shared
/// flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainStep {
    pub bin: &'static str,
    pub args: &'static [&'static str],
    /// Whether it needs the package registries (the drill runs it before cutting the
    /// network).
    pub online: bool,
}

impl ChainStep {
    /// The binary and its own arguments, as a user types them.
    pub fn label(&self) -> String {
        std::iter::once(self.bin).chain(self.args.iter().copied()).collect::<Vec<_>>().join(" ")
    }
}

/// The restore order of `docs/architecture.md` (step 1, the clone, is the user's).
pub const STEPS: &[ChainStep] = &[
    ChainStep { bin: "bootstrap-prereqs", args: &[], online: true },
    ChainStep { bin: "bootstrap-pi-config", args: &[], online: true },
    ChainStep { bin: "bootstrap-services", args: &[], online: false },
    ChainStep { bin: "bootstrap-data", args: &["restore"], online: false },
    ChainStep { bin: "bootstrap-validate", args: &[], online: false },
];

/// A step's number in the documented order (step 1 is the clone).
pub fn number(bin: &str) -> &'static str {
    match bin {
        "bootstrap-prereqs" => "2",
        "bootstrap-pi-config" => "3",
        "bootstrap-services" => "4-5",
        "bootstrap-data" => "6",
        "bootstrap-validate" => "7",
        _ => "-",
    }
}

/// The index in [`STEPS`] of the step whose binary is `bin`.
pub fn position(bin: &str) -> Option<usize> {
    STEPS.iter().position(|s| s.bin == bin)
}

/// The names of the steps, for messages.
fn step_names() -> String {
    STEPS.iter().map(|s| s.bin).collect::<Vec<_>>().join(", ")
}

/// Runs the restore steps in order on this host, under one run lock; stops at the first
/// failure; resumes from it later.
#[derive(Debug, clap::Parser)]
#[command(name = NAME, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Continue from the step where the last restore stopped (recorded in
    /// ~/.local/state/pi-bootstrap/restore.json).
    #[arg(long, conflicts_with = "from")]
    pub resume: bool,
    /// Start from this step; the ones before it are taken as done.
    #[arg(long, value_name = "STEP", value_parser = PossibleValuesParser::new(STEPS.iter().map(|s| s.bin)))]
    pub from: Option<String>,
    /// Stop after this step; the ones after it are left for a later run (`--from` the
    /// next one), as when the first steps need the network and the rest run elsewhere.
    #[arg(long, value_name = "STEP", value_parser = PossibleValuesParser::new(STEPS.iter().map(|s| s.bin)))]
    pub to: Option<String>,
    /// The folder of the step binaries. Default: the folder this program is in, so an
    /// installed set runs itself.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
}

common::common_args!(Args);

/// Why the chain could not run (the steps' own failures are in its report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// `--resume`, and no restore stopped.
    #[error(
        "no interrupted restore to resume: {} does not exist (run without --resume, or name a step with --from)",
        path.display()
    )]
    NoRecord { path: PathBuf },
    /// The resume record is there but says no step.
    #[error(
        "the resume record {} is corrupt ({reason}): remove it and run again, or name a step with --from",
        path.display()
    )]
    CorruptRecord { path: PathBuf, reason: String },
    /// A step binary is not in the bin folder.
    #[error(
        "the step binary {} is missing: install the step binaries beside {NAME} (cargo xtask install), or name their folder with --bin-dir",
        path.display()
    )]
    MissingBinary { path: PathBuf },
    /// This program's own folder cannot be told.
    #[error("cannot tell which folder {NAME} is in ({0}): name the folder of the step binaries with --bin-dir")]
    NoOwnFolder(std::io::Error),
    /// `--only` names items of one step, not of the chain.
    #[error("--only names items of one step: run that step's binary with --only instead")]
    Only,
    /// The JSON document could not be made.
    #[error("cannot render the JSON report: {0}")]
    Json(#[from] serde_json::Error),
}

impl From<ChainError> for StepError {
    fn from(e: ChainError) -> StepError {
        match e {
            ChainError::Only => StepError::Usage(e.to_string()),
            other => StepError::Run(other.to_string()),
        }
    }
}

/// The chain, as its binary runs it (`common::step::main`).
pub struct RestoreChain;

impl Step for RestoreChain {
    const NAME: &'static str = NAME;
    type Args = Args;

    fn item_ids(_: &Manifest, _: &Ctx, args: &Args) -> common::step::Ids {
        if args.common.only.is_empty() { Ok(Some(Vec::new())) } else { Err(ChainError::Only.into()) }
    }

    fn run(manifest: &Manifest, ctx: &Ctx, args: &Args) -> common::step::Ran {
        chain::run(manifest, ctx, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_number_and_the_order_is_the_documented_one() {
        let numbered: Vec<String> = STEPS.iter().map(|s| format!("{} {}", number(s.bin), s.label())).collect();
        assert_eq!(
            numbered,
            [
                "2 bootstrap-prereqs",
                "3 bootstrap-pi-config",
                "4-5 bootstrap-services",
                "6 bootstrap-data restore",
                "7 bootstrap-validate"
            ]
        );
        assert_eq!(number("pi-config-audit"), "-");
        assert_eq!(position("bootstrap-data"), Some(3));
        assert_eq!(position("bootstrap-data restore"), None);
    }

    #[test]
    fn from_takes_only_a_step_name_and_not_with_resume() {
        use clap::Parser;
        let ok = Args::try_parse_from([NAME, "--from", "bootstrap-services"]);
        assert_eq!(ok.ok().and_then(|a| a.from), Some("bootstrap-services".to_owned()));
        let unknown = Args::try_parse_from([NAME, "--from", "bootstrap-nothing"]).err();
        let message = unknown.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("bootstrap-validate"), "the steps are listed: {message}");
        assert!(Args::try_parse_from([NAME, "--from", "bootstrap-data", "--resume"]).is_err());
        let to = Args::try_parse_from([NAME, "--to", "bootstrap-pi-config"]);
        assert_eq!(to.ok().and_then(|a| a.to), Some("bootstrap-pi-config".to_owned()));
        assert!(Args::try_parse_from([NAME, "--to", "bootstrap-nothing"]).is_err());
    }
}
