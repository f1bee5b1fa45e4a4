//! `bootstrap-services`: installs the host integration layer from the repo: env files,
//! systemd user units, linger, nginx sites and shell blocks. Run it with `--check` to
//! see what it would do.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, Failure};
use common::engine::Ctx;
use common::state;

fn run(args: &bootstrap_services::Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let ctx = Ctx::new(&home);
    let _lock = if args.common.check { None } else { Some(ctx.state.lock()?) };
    let report = bootstrap_services::run(&manifest, &ctx, &args.common.run_options())?;
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = bootstrap_services::Args::parse();
    cli::finish(bootstrap_services::STEP, run(&args))
}
