//! `bootstrap-data`: backs up, restores and checks the durable data with restic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::cli::{self, CommonArgs, Failure};
use common::engine::Ctx;
use common::state;

/// Backs up, restores and checks the durable data with restic.
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
    /// Per must-back-up path, its newest snapshot and its age (exit 1 if stale or missing).
    Status,
}

fn run(args: &Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let ctx = Ctx::new(&home);
    let force = matches!(args.action, Action::Restore { force: true });
    let c = &args.common;
    let options = bootstrap_data::Options { check: c.check, force, only: c.only.clone(), verbosity: c.verbosity() };
    let report = match args.action {
        Action::Backup => bootstrap_data::backup(&manifest, &ctx, &options)?,
        Action::Restore { .. } => bootstrap_data::restore(&manifest, &ctx, &options)?,
        Action::Status => bootstrap_data::status(&manifest, &ctx, &options)?,
    };
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_data::STEP, run(&args))
}
