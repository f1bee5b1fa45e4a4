//! `bootstrap-pi-config`: links the Pi config from the repo into place and makes the
//! declared folders. Run it with `--check` to see what it would do.

use std::process::ExitCode;

use clap::Parser;
use common::cli;

fn main() -> ExitCode {
    let args = bootstrap_pi_config::Args::parse();
    let result = cli::run_step(bootstrap_pi_config::STEP, &args.common, bootstrap_pi_config::plan);
    cli::finish(bootstrap_pi_config::STEP, result)
}
