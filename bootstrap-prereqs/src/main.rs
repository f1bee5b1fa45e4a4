//! `bootstrap-prereqs`: installs and version-checks the tools the host needs.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs, Failure};
use common::state;

/// Installs and version-checks the tools the host needs (apt, npm, pipx, cargo, scripts).
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let prereqs = bootstrap_prereqs::select(&manifest, &args.common.only)?;
    let _lock = if args.common.check { None } else { Some(state::StateDir::new(&home).lock()?) };
    let report = bootstrap_prereqs::run(&prereqs, args.common.check, args.common.verbosity());
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_prereqs::STEP, run(&args))
}
