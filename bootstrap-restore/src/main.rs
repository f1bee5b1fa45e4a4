//! `pi-bootstrap-restore`: the step binaries in the restore order, under one run lock,
//! resumable from the step that failed.

fn main() -> std::process::ExitCode {
    common::step::main::<bootstrap_restore::RestoreChain>()
}
