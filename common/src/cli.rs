//! The command-line flags every binary shares, and loading the manifest they name. The
//! life of a binary (exit codes 0 done or in sync, 1 failed, drifted or would change,
//! 2 the manifest or the command line is wrong) is [`crate::step::main`].

use std::path::PathBuf;

use crate::engine::RunOptions;
use crate::manifest::{self, Manifest};
use crate::output::Verbosity;
use crate::step::StepError;

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

impl AsRef<CommonArgs> for CommonArgs {
    fn as_ref(&self) -> &CommonArgs {
        self
    }
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
    pub fn load_manifest(&self) -> Result<Manifest, StepError> {
        let cwd =
            std::env::current_dir().map_err(|e| StepError::Usage(format!("cannot read the current folder: {e}")))?;
        let env_value = std::env::var(manifest::MANIFEST_ENV).ok();
        let path = manifest::find_manifest(self.manifest.as_deref(), env_value.as_deref(), &cwd)?;
        Ok(manifest::load(&path)?)
    }

    pub fn run_options(&self) -> RunOptions {
        RunOptions { check: self.check, only: self.only.clone(), verbosity: self.verbosity(), audit: false }
    }
}
