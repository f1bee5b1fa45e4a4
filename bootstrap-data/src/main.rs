//! `bootstrap-data`: backs up, restores and checks the durable data with restic.

use std::process::ExitCode;

use bootstrap_data::{Action, Args};
use clap::Parser;
use common::cli::{self, Failure};
use common::engine::Ctx;
use common::state;

fn run(args: &Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let ctx = Ctx::new(&home);
    let options = args.action.options(&args.common);
    let report = match args.action {
        Action::Backup { .. } => bootstrap_data::backup(&manifest, &ctx, &options)?,
        Action::Restore { .. } => bootstrap_data::restore(&manifest, &ctx, &options)?,
        Action::Status => bootstrap_data::status(&manifest, &ctx, &options)?,
        Action::Snapshots => bootstrap_data::snapshots(&manifest, &ctx, &options)?,
        Action::Verify { .. } => bootstrap_data::verify(&manifest, &ctx, &options)?,
        Action::Forget => bootstrap_data::forget(&manifest, &ctx, &options)?,
    };
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_data::STEP, run(&args))
}
