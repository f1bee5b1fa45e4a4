//! `bootstrap-services`: installs the host integration layer from the repo: env files,
//! systemd user units, linger, nginx sites and shell blocks. Run it with `--check` to
//! see what it would do.

fn main() -> std::process::ExitCode {
    common::step::main::<bootstrap_services::ServicesStep>()
}
