//! The scheduled backup end to end, in a sandbox with a real `systemd --user` and real
//! restic: `cargo xtask install` puts the binaries into the sandbox HOME (a second
//! install copies nothing), the installed `bootstrap-services` installs and starts the
//! backup timer, the backup service run by the user manager makes a real snapshot, a
//! second run of the step changes nothing, and a failing backup shows as a failed
//! service and in the audit's `data:schedule`.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::process::{Command, Output};

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::{from_output, item};
use test_support::process::text;
use test_support::sandbox::show;
use test_support::workspace::root;

const PASSWORD: &str = "canary-timer-password-7c3e";

/// `cargo xtask install` in the sandbox (cargo and rustup from the machine).
fn xtask_install(machine: &Machine) -> Result<Output, Box<dyn std::error::Error>> {
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut cmd = machine.command(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("install").current_dir(root());
    cmd.env("CARGO_HOME", std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo")));
    cmd.env("RUSTUP_HOME", std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup")));
    let out = cmd.output()?;
    assert!(out.status.success(), "cargo xtask install failed:\n{}", text(&out));
    Ok(out)
}

fn systemctl(machine: &Machine, args: &[&str]) -> Result<Output, Box<dyn std::error::Error>> {
    Ok(machine.command("systemctl").arg("--user").args(args).output()?)
}

#[test]
fn the_timer_runs_the_installed_backup_and_a_failed_run_shows() -> TestResult {
    let Some(machine) = sandbox::isolated("the_timer_runs_the_installed_backup_and_a_failed_run_shows") else {
        return Ok(());
    };
    let layout = &machine.layout;
    let home = layout.home();
    // The user's data is there before any step runs: it is this host's, nothing waits.
    fs::create_dir_all(home.join("notes"))?;
    fs::write(home.join("notes/todo.txt"), "back up every night\n")?;
    let password = home.join(".config/pi-bootstrap/restic-password");
    fs::create_dir_all(home.join(".config/pi-bootstrap"))?;
    fs::write(&password, format!("{PASSWORD}\n"))?;
    common::fsx::set_mode(&password, 0o600)?;
    // The repository is named in full: the user manager's environment has no PI_BACKUP_REPO.
    let repository = layout.backup_repo();
    let manifest = layout.root.join("pi-bootstrap.yaml");
    fs::write(
        &manifest,
        format!(
            "version: 1
host: timer-test
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
paths:
  - name: notes
    path: ~/notes
    role: the user's notes
    backup: backup
backup:
  repository: {}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
  schedule: '*-*-* 03:00'
",
            repository.display()
        ),
    )?;

    // The binaries go where the timer runs them from; a second install copies nothing.
    let out = xtask_install(&machine)?;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("== install into ~/.local/lib/pi-bootstrap/bin: 7 installed, 0 unchanged"), "{said}");
    let bin = home.join(".local/lib/pi-bootstrap/bin");
    let names = [
        "bootstrap-prereqs",
        "bootstrap-pi-config",
        "bootstrap-services",
        "bootstrap-data",
        "bootstrap-validate",
        "pi-config-audit",
        "pi-bootstrap-restore",
    ];
    let mut installed = Vec::new();
    for name in names {
        assert_eq!(common::fsx::mode_of(&bin.join(name))?, Some(0o755), "{name}");
        installed.push(fs::read(bin.join(name))?);
    }
    // Again: a binary whose bytes are there is left alone. (Only one rebuilt meanwhile,
    // by another build sharing target/, is copied again.)
    let out = xtask_install(&machine)?;
    let said = String::from_utf8_lossy(&out.stdout);
    for (name, before) in names.iter().zip(&installed) {
        let now = fs::read(bin.join(name))?;
        let verb = if now == *before { "unchanged" } else { "installed" };
        assert!(said.lines().any(|l| l.split_whitespace().eq([verb, name])), "{name} should be {verb}: {said}");
    }
    let services = |extra: &[&str]| -> Result<Output, Box<dyn std::error::Error>> {
        Ok(machine
            .command(&bin.join("bootstrap-services").display().to_string())
            .args(["--manifest", &manifest.display().to_string(), "--json"])
            .args(extra)
            .output()?)
    };
    let out = services(&[])?;
    let first = from_output(&out)?;
    assert_eq!(out.status.code(), Some(0), "{first:#}");
    for id in ["unit:pi-bootstrap-backup.service", "unit:pi-bootstrap-backup.timer", "timer:pi-bootstrap-backup"] {
        assert_eq!(item(&first, id)["status"], "changed", "{id}: {first:#}");
    }
    assert_eq!(show(&machine, "UnitFileState", "pi-bootstrap-backup.timer")?, "enabled");
    assert_eq!(show(&machine, "ActiveState", "pi-bootstrap-backup.timer")?, "active");
    let next = show(&machine, "NextElapseUSecRealtime", "pi-bootstrap-backup.timer")?;
    assert!(next.contains("03:00:00"), "the timer is scheduled at 03:00: {next:?}");
    let timers = String::from_utf8_lossy(&systemctl(&machine, &["list-timers", "--all"])?.stdout).into_owned();
    assert!(timers.contains("pi-bootstrap-backup.timer"), "{timers}");

    // The scheduled run, started by hand: oneshot, so start waits for the backup.
    let out = systemctl(&machine, &["start", "pi-bootstrap-backup.service"])?;
    assert!(out.status.success(), "the backup service failed: {}\n{}", text(&out), journal(&machine));
    assert_eq!(show(&machine, "Result", "pi-bootstrap-backup.service")?, "success");
    let out = Command::new("restic")
        .args(["snapshots", "--json", "--no-lock"])
        .env("RESTIC_REPOSITORY", &repository)
        .env("RESTIC_PASSWORD_FILE", &password)
        .env("RESTIC_CACHE_DIR", layout.root.join("restic-cache"))
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let snapshots: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let snapshots = snapshots.as_array().cloned().unwrap_or_default();
    assert_eq!(snapshots.len(), 1, "one snapshot: {snapshots:?}");
    assert_eq!(snapshots[0]["hostname"], "timer-test");
    let notes = home.join("notes").display().to_string();
    assert!(snapshots[0]["paths"].as_array().is_some_and(|p| p.iter().any(|p| *p == *notes)), "{snapshots:?}");

    // A second run of the step changes nothing.
    let out = services(&[])?;
    let second = from_output(&out)?;
    assert_eq!(out.status.code(), Some(0), "{second:#}");
    assert_eq!(second["summary"]["changed"], 0, "{second:#}");
    assert_eq!(second["commands"], serde_json::json!([]));

    // The scheduled run fails (a wrong password): systemd says so.
    fs::write(&password, "not-the-password\n")?;
    let out = systemctl(&machine, &["start", "pi-bootstrap-backup.service"])?;
    assert!(!out.status.success(), "the backup was meant to fail");
    assert_eq!(show(&machine, "Result", "pi-bootstrap-backup.service")?, "exit-code");
    assert_eq!(show(&machine, "ActiveState", "pi-bootstrap-backup.service")?, "failed");

    // The audit: the units are declared, the timer is in place, the failed run is its
    // `data:schedule` item.
    let out = machine
        .command(&bin.join("pi-config-audit").display().to_string())
        .args(["--manifest", &manifest.display().to_string(), "--json"])
        .output()?;
    let audit = from_output(&out)?;
    assert_eq!(out.status.code(), Some(1), "{audit:#}");
    assert_eq!(item(&audit, "timer:pi-bootstrap-backup")["status"], "ok", "{audit:#}");
    let ids: Vec<&str> = audit["items"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str()).collect();
    assert!(!ids.iter().any(|id| id.contains("undeclared-unit:pi-bootstrap-backup")), "{ids:?}");
    let schedule = item(&audit, "data:schedule");
    assert_eq!(schedule["status"], "failed", "{audit:#}");
    let said = schedule["detail"].as_str().unwrap_or_default();
    assert!(said.contains("the last scheduled backup") && said.contains("failed: exit-code"), "{said}");
    let everything = format!("{first}{second}{audit}");
    assert!(!everything.contains(PASSWORD), "the password was printed");
    Ok(())
}

/// The backup service's journal is not kept in the sandbox; its manager's log is.
fn journal(machine: &Machine) -> String {
    fs::read_to_string(machine.layout.systemd_log()).unwrap_or_default()
}
