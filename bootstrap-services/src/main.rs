//! `bootstrap-services`: installs the host integration layer from the repo (today the
//! managed shell blocks). Run it with `--check` to see what it would do.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs};

/// Installs the host integration layer from the repo: managed shell blocks.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = cli::run_step(bootstrap_services::STEP, &args.common, bootstrap_services::plan);
    cli::finish(bootstrap_services::STEP, result)
}
