//! `pi-config-audit`: reports every difference between the manifest and the host, and
//! what is on the host but not declared, grouped by category. Changes nothing; exit 0
//! when the host matches, 1 on any drift, 2 on a bad manifest or command line.

use std::process::ExitCode;

use clap::Parser;
use common::cli::{self, Failure};
use common::engine::Ctx;
use common::state;
use pi_config_audit::{Options, render};

fn run(args: &pi_config_audit::Args) -> Result<i32, Failure> {
    let manifest = args.common.load_manifest()?;
    let home = state::home_from_env()?;
    let options = Options::new(args.common.verbosity());
    let audit = pi_config_audit::audit(&manifest, &Ctx::new(&home), &options)?.only(&args.common.only)?;
    let text = if args.common.json {
        format!("{}\n", render::render_json(&audit))
    } else {
        render::render_human(&audit, &home, args.common.verbosity(), render::colour_allowed())
    };
    common::output::print_text(&text);
    Ok(audit.exit_code())
}

fn main() -> ExitCode {
    let args = pi_config_audit::Args::parse();
    cli::finish(pi_config_audit::STEP, run(&args))
}
