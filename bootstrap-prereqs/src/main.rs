//! `bootstrap-prereqs`: Installs and version-checks the tools the host needs.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs, Failure};

/// Installs and version-checks the tools the host needs.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &Args) -> Result<i32, Failure> {
    args.common.load_manifest()?;
    Err(Failure::Run(bootstrap_prereqs::NOT_BUILT.to_owned()))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_prereqs::STEP, run(&args))
}
