//! `bootstrap-validate`: Runs the restore checklist: versions, service health, routes, the manifest's checks.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs, Failure};

/// Runs the restore checklist: versions, service health, routes, the manifest's checks.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &Args) -> Result<i32, Failure> {
    args.common.load_manifest()?;
    Err(Failure::Run(bootstrap_validate::NOT_BUILT.to_owned()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_validate::STEP, run(&args))
}
