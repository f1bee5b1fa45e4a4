//! `bootstrap-prereqs`: installs and version-checks the tools the host needs.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, Failure};
use common::state;

fn run(args: &bootstrap_prereqs::Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let prereqs = bootstrap_prereqs::select(&manifest, &args.common.only)?;
    let state = state::StateDir::new(&home);
    let _lock = if args.common.check { None } else { Some(state.lock()?) };
    if !args.common.check {
        common::durable::note_first_sight(&manifest, &state, &home)?;
    }
    let report = bootstrap_prereqs::run(&prereqs, args.common.check, args.common.verbosity());
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = bootstrap_prereqs::Args::parse();
    cli::finish(bootstrap_prereqs::STEP, run(&args))
}
