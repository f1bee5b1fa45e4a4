//! The human output of `bootstrap-data backup`, `restore` and `status`, snapshot-tested
//! on a real restic repository, with temporary paths, snapshot ids, times, ages and
//! sizes redacted.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;

use support::{Host, TestResult};

/// What changes from run to run, after the temporary folder (`Host::redact`).
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"\b[0-9a-f]{64}\b", "[SNAPSHOT-ID]"),
        (r"\b[0-9a-f]{8}\b", "[SNAPSHOT]"),
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[TIME]"),
        (r"\b\d+[smhd]( \d+[mh])? old", "[AGE] old"),
        (r"\.pi-bootstrap-restore\.[\w.]+", ".pi-bootstrap-restore.[STAGE]"),
        (r"kept/\d{4}-\d{2}-\d{2}T\d{6}Z-\d+-\d+", "kept/[RUN]"),
        (r"\d+(\.\d)? (B|KiB|MiB) added", "[SIZE] added"),
    ]
}

#[test]
fn human_output_of_backup_restore_and_status() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let mut outputs = Vec::new();
    let mut step = |name: &str, args: &[&str]| -> TestResult {
        let run = host.run(args)?;
        outputs.push((
            name.to_owned(),
            format!("exit {:?}\n{}{}", run.code, host.redact(&run.stdout), host.redact(&run.stderr)),
        ));
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
    insta::with_settings!({ filters => filters() }, {
        for (name, text) in outputs {
            insta::assert_snapshot!(name, text);
        }
    });
    Ok(())
}
