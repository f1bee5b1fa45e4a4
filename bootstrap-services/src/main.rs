//! `bootstrap-services`: installs the host integration layer from the repo: env files,
//! systemd user units, linger, nginx sites and shell blocks. Run it with `--check` to
//! see what it would do.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs, Failure};
use common::engine::Ctx;
use common::state;

/// Installs env files, systemd user units (restarting what changed), linger, nginx
/// sites and shell blocks from the repo.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

fn run(args: &Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let ctx = Ctx::new(&home);
    let _lock = if args.common.check { None } else { Some(ctx.state.lock()?) };
    let report = bootstrap_services::run(&manifest, &ctx, &args.common.run_options())?;
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_services::STEP, run(&args))
}
