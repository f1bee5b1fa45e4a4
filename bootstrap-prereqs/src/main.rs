//! `bootstrap-prereqs`: installs and version-checks the tools the host needs.

fn main() -> std::process::ExitCode {
    common::step::main::<bootstrap_prereqs::PrereqsStep>()
}
