//! `bootstrap-validate`: does the host work? Every prerequisite, service, nginx route and
//! declared check, in parallel, each with its own timeout.

fn main() -> std::process::ExitCode {
    common::step::main::<bootstrap_validate::ValidateStep>()
}
