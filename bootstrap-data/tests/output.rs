//! The human output of `bootstrap-data backup`, `restore` and `status`, snapshot-tested
//! on a real restic repository, with temporary paths, snapshot ids, times, ages and
//! sizes redacted.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;

use support::Host;
use test_support::TestResult;
use test_support::redact::Redactions;

/// What changes from run to run: the temporary folder, snapshot ids, times, ages, the
/// names of staging folders and kept folders, sizes.
fn redactions(host: &Host) -> Redactions {
    host.redactions()
        .snapshot_ids()
        .times()
        .ages()
        .rule(r"\.pi-bootstrap-restore\.[\w.]+", ".pi-bootstrap-restore.[STAGE]")
        .kept_runs()
        .rule(r"\d+(\.\d)? (B|KiB|MiB) added", "[SIZE] added")
}

#[test]
fn human_output_of_backup_restore_and_status() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let mut outputs = Vec::new();
    let mut step = |name: &str, args: &[&str]| -> TestResult {
        let run = host.run(args)?;
        let text = format!("exit {:?}\n{}{}", run.code, run.stdout, run.stderr);
        outputs.push((name.to_owned(), redactions(&host).apply(text)));
        Ok(())
    };
    step("backup_first", &["backup", "-v"])?;
    step("status_fresh", &["status"])?;
    let h = host.home();
    fs::remove_dir_all(h.join("pi-config/work"))?;
    fs::remove_file(h.join(".pi/agent/auth.json"))?;
    fs::write(h.join("pi-config/agents-database/data/agents.db"), "newer than the backup")?;
    step("restore_check", &["restore", "--check"])?;
    step("restore", &["restore", "-v"])?;
    step("restore_again", &["restore"])?;
    step("restore_force_one", &["restore", "--force", "--only", "data:path:agents-database", "-v"])?;
    host.set_password("not-the-password")?;
    fs::remove_dir_all(h.join("pi-config/work"))?;
    step("restore_wrong_password", &["restore"])?;
    for (name, text) in outputs {
        insta::assert_snapshot!(name, text);
    }
    Ok(())
}
