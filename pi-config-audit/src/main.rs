//! `pi-config-audit`: reports every difference between the manifest and the host.
//! Changes nothing; exit 1 on any drift.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs, Failure};
use common::engine::{self, Ctx};
use common::state;

/// Reports every difference between the manifest and the host; changes nothing.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let resources = pi_config_audit::plan(&manifest);
    let selected = engine::select(&resources, &args.common.only)?;
    let report = pi_config_audit::audit(&selected, &Ctx::new(&home), args.common.verbosity());
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(pi_config_audit::STEP, run(&args))
}
