//! `pi-config-audit`: reports every difference between the manifest and the host.
//! Changes nothing; exit 1 on any drift.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, CommonArgs, Failure};
use common::engine::Ctx;
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
    let mut report = pi_config_audit::audit(&manifest, &Ctx::new(&home), args.common.verbosity())?;
    if !args.common.only.is_empty() {
        let known: Vec<String> = report.items.iter().map(|i| i.id.clone()).collect();
        if let Some(id) = args.common.only.iter().find(|id| !known.contains(id)) {
            return Err(Failure::Usage(format!("--only {id}: no such item (its items: {})", known.join(", "))));
        }
        let mut only = common::report::Report::new(pi_config_audit::STEP, true);
        report.items.into_iter().filter(|i| args.common.only.contains(&i.id)).for_each(|i| only.push(i));
        report = only;
    }
    Ok(cli::print(&report, &home, &args.common))
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(pi_config_audit::STEP, run(&args))
}
