//! `bootstrap-data`: backs up, restores and checks the durable data with restic.

fn main() -> std::process::ExitCode {
    common::step::main::<bootstrap_data::DataStep>()
}
