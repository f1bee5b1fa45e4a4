//! `bootstrap-pi-config`: links the Pi config from the repo into place and makes the
//! declared folders. Run it with `--check` to see what it would do.

fn main() -> std::process::ExitCode {
    common::step::main::<bootstrap_pi_config::PiConfigStep>()
}
