//! The services that own a path, with a real `systemd --user` in a sandbox: stopped
//! while the path is backed up (its capture is `stop` by default) and while it is
//! restored, running after, their timers too; a job that was idle stays idle; a second
//! restore changes nothing and runs nothing.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::Path;
use std::process::Command;

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::item;
use test_support::process::text;
use test_support::sandbox::systemctl;

const CANARY: &str = "canary-restic-pw-sandbox-41Xq";

fn run(machine: &Machine, manifest: &Path, args: &[&str]) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let out = Command::new(env!("CARGO_BIN_EXE_bootstrap-data"))
        .args(args)
        .arg("--json")
        .arg("--manifest")
        .arg(manifest)
        .envs(machine.env())
        .output()?;
    let text = text(&out);
    assert!(!text.contains(CANARY), "the password showed: {text}");
    assert_eq!(out.status.code(), Some(0), "{args:?}: {text}");
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn the_owning_service_is_stopped_during_the_restore_and_running_after() -> TestResult {
    let Some(machine) = sandbox::isolated("the_owning_service_is_stopped_during_the_restore_and_running_after") else {
        return Ok(());
    };
    let home = machine.layout.home();
    let data = home.join("pi-config/agents-database/data");
    let events = machine.layout.root.join("events.log");

    // The pi-config repo's files the manifest names, and the installed units: the
    // service writes what it finds in its data folder when it starts, and "stop" after.
    fs::create_dir_all(home.join("pi-config/services/agents-database"))?;
    fs::create_dir_all(home.join("pi-config/systemd"))?;
    let service = format!(
        "[Service]\nExecStartPre=/bin/sh -c 'echo \"start: $(ls -A {data})\" >> {events}'\nExecStart=/bin/sleep infinity\nExecStopPost=/bin/sh -c 'echo stop >> {events}'\n",
        data = data.display(),
        events = events.display()
    );
    let timer = "[Timer]\nOnActiveSec=1h\n";
    let units = home.join(".config/systemd/user");
    fs::create_dir_all(&units)?;
    for (dir, name, text) in [
        (home.join("pi-config/systemd"), "agents-database.service", service.as_str()),
        (home.join("pi-config/systemd"), "agents-database.timer", timer),
        (units.clone(), "agents-database.service", service.as_str()),
        (units.clone(), "agents-database.timer", timer),
    ] {
        fs::write(dir.join(name), text)?;
    }
    fs::create_dir_all(&data)?;
    fs::write(data.join("agents.db"), "SQLite format 3\0memories")?;
    fs::create_dir_all(home.join("notes"))?;
    fs::write(home.join("notes/todo.md"), "- restore drill\n")?;
    let password_file = home.join(".config/pi-bootstrap/restic-password");
    fs::create_dir_all(password_file.parent().ok_or("no parent")?)?;
    fs::write(&password_file, CANARY)?;
    fs::set_permissions(&password_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let manifest = machine.layout.root.join("pi-bootstrap.yaml");
    fs::write(
        &manifest,
        "version: 1
host: sandbox-host
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
services:
  - name: agents-database
    purpose: the memory database
    source: services/agents-database
    unit: systemd/agents-database.service
    timers: [systemd/agents-database.timer]
    data_path: ~/pi-config/agents-database/data
    backup: backup
paths:
  - {name: agents-database, path: ~/pi-config/agents-database, role: the database and its config, backup: backup}
  - {name: notes, path: ~/notes, role: no service owns it, backup: backup}
backup:
  repository: ${PI_BACKUP_REPO}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
",
    )?;
    systemctl(&machine, &["daemon-reload"])?;
    systemctl(&machine, &["start", "agents-database.service", "agents-database.timer"])?;
    assert_eq!(systemctl(&machine, &["is-active", "agents-database.service"])?, "active");

    // The default capture of a path services write to: they stop for the snapshot.
    let backup = run(&machine, &manifest, &["backup"])?;
    let captured = item(&backup, "data:path:agents-database");
    assert!(
        captured["detail"]
            .as_str()
            .unwrap_or_default()
            .ends_with("with agents-database.service, agents-database.timer stopped meanwhile"),
        "{backup}"
    );
    let commands: Vec<&str> = backup["commands"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.as_str())
        .filter(|c| *c != "restic init")
        .collect();
    assert_eq!(commands.first(), Some(&"systemctl --user stop agents-database.service agents-database.timer"));
    assert!(commands.get(1).is_some_and(|c| c.starts_with("restic backup")), "{commands:?}");
    assert_eq!(commands.last(), Some(&"systemctl --user start agents-database.service agents-database.timer"));
    assert_eq!(systemctl(&machine, &["is-active", "agents-database.service"])?, "active");
    assert_eq!(fs::read_to_string(&events)?, "start: agents.db\nstop\nstart: agents.db\n");
    fs::write(&events, "start: agents.db\n")?;
    // The disaster: the data is gone while the service runs on.
    fs::remove_dir_all(home.join("pi-config/agents-database"))?;
    fs::remove_dir_all(home.join("notes"))?;

    let report = run(&machine, &manifest, &["restore"])?;
    let restored = item(&report, "data:path:agents-database");
    assert_eq!(restored["status"], "changed", "{report}");
    assert!(
        restored["detail"]
            .as_str()
            .unwrap_or_default()
            .ends_with("with agents-database.service, agents-database.timer stopped meanwhile"),
        "{report}"
    );
    let inner = item(&report, "data:service:agents-database");
    assert_eq!(inner["status"], "changed");
    assert!(inner["detail"].as_str().unwrap_or_default().starts_with("came back with data:path:agents-database"));
    assert_eq!(item(&report, "data:path:notes")["status"], "changed");
    let commands: Vec<&str> = report["commands"].as_array().into_iter().flatten().filter_map(|c| c.as_str()).collect();
    assert_eq!(commands.first(), Some(&"systemctl --user stop agents-database.service agents-database.timer"));
    assert_eq!(commands.last(), Some(&"systemctl --user start agents-database.service agents-database.timer"));
    // Both paths (~/pi-config/agents-database and ~/notes) from one restic restore.
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(commands[1].starts_with("restic restore "), "{commands:?}");

    // Stopped before the data came back, started after it: the restart saw it.
    assert_eq!(fs::read_to_string(&events)?, "start: agents.db\nstop\nstart: agents.db\n");
    assert_eq!(systemctl(&machine, &["is-active", "agents-database.service"])?, "active");
    assert_eq!(systemctl(&machine, &["is-active", "agents-database.timer"])?, "active");
    assert!(!home.join(".local/state/pi-bootstrap/data-stopped-units.json").exists(), "due work left behind");

    let again = run(&machine, &manifest, &["restore"])?;
    assert_eq!(again["summary"]["changed"], 0, "{again}");
    assert_eq!(again["commands"], serde_json::json!([]));

    // A job that was idle stays idle: only its running timer is stopped and started.
    systemctl(&machine, &["stop", "agents-database.service"])?;
    fs::remove_dir_all(home.join("pi-config/agents-database"))?;
    let report = run(&machine, &manifest, &["restore"])?;
    let commands = report["commands"].to_string();
    assert!(commands.contains("systemctl --user stop agents-database.timer\""), "{commands}");
    assert!(commands.contains("systemctl --user start agents-database.timer\""), "{commands}");
    assert_eq!(systemctl(&machine, &["is-active", "agents-database.service"])?, "inactive");
    assert_eq!(systemctl(&machine, &["is-active", "agents-database.timer"])?, "active");
    assert!(data.join("agents.db").is_file());
    Ok(())
}
