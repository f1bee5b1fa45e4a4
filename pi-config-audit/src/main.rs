//! `pi-config-audit`: reports every difference between the manifest and the host, and
//! what is on the host but not declared, grouped by category. Changes nothing; exit 0
//! when the host matches, 1 on any drift, 2 on a bad manifest or command line.

fn main() -> std::process::ExitCode {
    common::step::main::<pi_config_audit::AuditStep>()
}
