//! `bootstrap-data`: backs up and restores the durable data with restic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::cli::{self, CommonArgs, Failure};

/// Backs up and restores the durable data with restic.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// One restic snapshot of every `backup`-class path.
    Backup,
    /// Restores each must-back-up path that is missing or empty from the newest snapshot.
    Restore {
        /// Also restore over data that is there (kept aside first).
        #[arg(long)]
        force: bool,
    },
    /// Per must-back-up path, its newest snapshot and its age.
    Status,
}

fn run(args: &Args) -> Result<i32, Failure> {
    args.common.load_manifest()?;
    let _ = &args.action;
    Err(Failure::Run(bootstrap_data::NOT_BUILT.to_owned()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_data::STEP, run(&args))
}
