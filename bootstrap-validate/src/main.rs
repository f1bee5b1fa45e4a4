//! `bootstrap-validate`: does the host work? Every prerequisite, service, nginx route and
//! declared check, in parallel, each with its own timeout.

use std::process::ExitCode;

use bootstrap_validate::Args;
use clap::Parser;
use common::cli::{self, Failure};
use common::output;

fn run(args: &Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = common::state::home_from_env()?;
    let checks = bootstrap_validate::select(bootstrap_validate::plan(&manifest, args.timeout), &args.common.only)?;
    let run = bootstrap_validate::run(checks, args.common.verbosity());
    let code = cli::print(&run.report(args.common.check), &home, &args.common);
    if !args.common.json && !args.common.quiet {
        output::note(&run.recap());
    }
    if let Some(path) = &args.junit {
        run.write_junit(path, manifest.host.as_deref())
            .map_err(|e| Failure::Run(format!("cannot write the JUnit file {}: {e}", path.display())))?;
    }
    Ok(code)
}

fn main() -> ExitCode {
    let args = Args::parse();
    cli::finish(bootstrap_validate::STEP, run(&args))
}
