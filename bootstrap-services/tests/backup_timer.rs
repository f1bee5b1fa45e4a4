//! The scheduled backup's units against a real `systemd --user`, in a sandbox: `--check`
//! writes nothing; the units are written and the timer enabled and started, its item
//! failing while the installed `bootstrap-data` is missing; the service runs the
//! installed program with the manifest's path quoted the systemd way; a second run
//! changes nothing; a changed schedule restarts the timer (also after a run that died
//! before it could); a schedule systemd cannot read fails with its place in the
//! manifest and leaves the installed timer alone.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::{detail, from_output, item};
use test_support::tree::{changes, listing};

/// A host with a backup schedule and nothing else to run, its manifest in a folder
/// whose name has a space.
struct Fixture {
    machine: Machine,
}

/// The manifest, with `schedule` on line 11, its value at column 13.
fn manifest_text(schedule: &str) -> String {
    format!(
        "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
paths:
  - name: notes
    path: ~/notes
    role: the user's notes
    backup: backup
backup:
  schedule: {schedule}
  repository: /srv/restic
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
"
    )
}

impl Fixture {
    fn new(machine: Machine) -> Result<Fixture, Box<dyn std::error::Error>> {
        let fx = Fixture { machine };
        fs::create_dir_all(fx.manifest().parent().ok_or("no folder")?)?;
        fx.set_schedule("daily")?;
        Ok(fx)
    }

    fn home(&self) -> PathBuf {
        self.machine.layout.home()
    }

    fn manifest(&self) -> PathBuf {
        self.machine.layout.root.join("my host/pi-bootstrap.yaml")
    }

    fn set_schedule(&self, schedule: &str) -> std::io::Result<()> {
        fs::write(self.manifest(), manifest_text(schedule))
    }

    fn unit(&self, name: &str) -> PathBuf {
        self.home().join(".config/systemd/user").join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.machine.command(env!("CARGO_BIN_EXE_bootstrap-services"));
        cmd.args(["--manifest", &self.manifest().display().to_string(), "--json"]).args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let out = self.command(args).output()?;
        let json = from_output(&out)?;
        Ok((out, json))
    }

    fn systemctl(&self, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
        test_support::sandbox::systemctl(&self.machine, args)
    }

    /// A stand-in for the installed `bootstrap-data` that writes down its arguments and PATH.
    fn install_stand_in(&self) -> TestResult {
        let bin = self.home().join(".local/lib/pi-bootstrap/bin/bootstrap-data");
        fs::create_dir_all(bin.parent().ok_or("no folder")?)?;
        fs::write(&bin, "#!/bin/sh\nprintf '%s\\n' \"$@\" >> \"$HOME/ran\"\necho \"PATH=$PATH\" >> \"$HOME/ran\"\n")?;
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755))?;
        Ok(())
    }
}

const SERVICE: &str = "unit:pi-bootstrap-backup.service";
const TIMER_UNIT: &str = "unit:pi-bootstrap-backup.timer";
const TIMER: &str = "timer:pi-bootstrap-backup";

#[test]
fn the_timer_is_installed_and_started_and_fails_until_the_binaries_are_installed() -> TestResult {
    let Some(machine) =
        sandbox::isolated("the_timer_is_installed_and_started_and_fails_until_the_binaries_are_installed")
    else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    fs::create_dir_all(fx.home().join("notes"))?;
    fs::write(fx.home().join("notes/todo.txt"), "write the tests\n")?;

    // --check: what it would do, nothing written.
    let before = listing(&fx.home());
    let (out, check) = fx.run(&["--check"])?;
    assert_eq!(out.status.code(), Some(1), "{check:#}");
    assert_eq!(item(&check, SERVICE)["status"], "would_change", "{check:#}");
    assert_eq!(item(&check, TIMER_UNIT)["status"], "would_change");
    assert_eq!(item(&check, TIMER)["status"], "failed", "the timer would fail at every run: {check:#}");
    assert!(detail(&check, TIMER).contains("would enable and start pi-bootstrap-backup.timer"), "{check:#}");
    assert!(detail(&check, TIMER).contains("cargo xtask install"), "{check:#}");
    assert_eq!(changes(&before, &listing(&fx.home())), Vec::<String>::new(), "--check wrote something");

    // A run: the units are written and the timer runs, but its item says what is missing.
    let (out, first) = fx.run(&[])?;
    assert_eq!(out.status.code(), Some(1), "{first:#}");
    assert_eq!(item(&first, SERVICE)["status"], "changed", "{first:#}");
    assert_eq!(item(&first, TIMER_UNIT)["status"], "changed");
    assert_eq!(item(&first, TIMER)["status"], "failed");
    let timer_detail = detail(&first, TIMER);
    assert!(timer_detail.starts_with("enabled and started pi-bootstrap-backup.timer"), "{timer_detail}");
    assert!(
        timer_detail.contains("~/.local/lib/pi-bootstrap/bin/bootstrap-data is not installed")
            && timer_detail.contains("run `cargo xtask install`"),
        "{timer_detail}"
    );
    let service = fs::read_to_string(fx.unit("pi-bootstrap-backup.service"))?;
    let quoted = format!("\"{}\"", fx.manifest().display());
    assert!(
        service
            .contains(&format!("ExecStart=%h/.local/lib/pi-bootstrap/bin/bootstrap-data backup --manifest {quoted}\n")),
        "{service}"
    );
    assert!(fs::read_to_string(fx.unit("pi-bootstrap-backup.timer"))?.contains("OnCalendar=daily\nPersistent=true\n"));
    assert_eq!(fx.systemctl(&["is-enabled", "pi-bootstrap-backup.timer"])?, "enabled");
    assert_eq!(fx.systemctl(&["is-active", "pi-bootstrap-backup.timer"])?, "active");
    let next = fx.systemctl(&["show", "-p", "NextElapseUSecRealtime", "--value", "pi-bootstrap-backup.timer"])?;
    assert!(!next.is_empty() && next != "n/a", "scheduled: {next:?}");

    // Installed: nothing changes, the item is ok, and the service runs the program with
    // the manifest's path as one argument.
    fx.install_stand_in()?;
    let (out, second) = fx.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{second:#}");
    assert_eq!(second["summary"]["changed"], 0, "{second:#}");
    assert_eq!(second["commands"], serde_json::json!([]), "a second run runs nothing");
    assert_eq!(item(&second, TIMER)["status"], "ok");
    assert!(detail(&second, TIMER).starts_with("next run "), "{second:#}");
    let (out, only) = fx.run(&["--only", TIMER])?;
    assert_eq!(out.status.code(), Some(0), "{only:#}");
    assert_eq!(only["items"].as_array().map(Vec::len), Some(1));

    // Disabled while it runs: the timer would not come back after a reboot.
    fx.systemctl(&["disable", "pi-bootstrap-backup.timer"])?;
    let (_, check) = fx.run(&["--check"])?;
    assert_eq!(item(&check, TIMER)["status"], "would_change", "{check:#}");
    assert_eq!(
        detail(&check, TIMER),
        "would enable pi-bootstrap-backup.timer (it runs, but would not start again after a reboot)"
    );
    let (_, enabled) = fx.run(&[])?;
    assert_eq!(item(&enabled, TIMER)["status"], "changed", "{enabled:#}");
    assert_eq!(enabled["commands"], serde_json::json!(["systemctl --user enable pi-bootstrap-backup.timer"]));
    assert_eq!(fx.systemctl(&["is-enabled", "pi-bootstrap-backup.timer"])?, "enabled");

    fx.systemctl(&["start", "pi-bootstrap-backup.service"])?;
    let ran = fs::read_to_string(fx.home().join("ran"))?;
    let home = fx.home().display().to_string();
    assert_eq!(
        ran,
        format!(
            "backup\n--manifest\n{}\nPATH={home}/.local/bin:/usr/local/bin:/usr/bin:/bin\n",
            fx.manifest().display()
        )
    );
    Ok(())
}

#[test]
fn a_changed_schedule_restarts_the_timer_and_a_bad_one_names_its_place() -> TestResult {
    let Some(machine) = sandbox::isolated("a_changed_schedule_restarts_the_timer_and_a_bad_one_names_its_place") else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    fx.install_stand_in()?;
    let (out, first) = fx.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{first:#}");
    assert_eq!(item(&first, TIMER)["status"], "changed");

    // A new schedule: the timer restarts and runs on it.
    fx.set_schedule("'*-*-* 03:00'")?;
    let (out, changed) = fx.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{changed:#}");
    assert_eq!(item(&changed, TIMER_UNIT)["status"], "changed");
    assert_eq!(item(&changed, SERVICE)["status"], "ok");
    assert_eq!(item(&changed, TIMER)["status"], "changed");
    assert!(detail(&changed, TIMER).starts_with("restarted: its unit changed"), "{changed:#}");
    assert_eq!(
        changed["commands"],
        serde_json::json!(["systemctl --user daemon-reload", "systemctl --user restart pi-bootstrap-backup.timer"])
    );
    let calendar = fx.systemctl(&["show", "-p", "TimersCalendar", "--value", "pi-bootstrap-backup.timer"])?;
    assert!(calendar.contains("*-*-* 03:00:00"), "{calendar}");

    // A run that dies after writing the unit: the next run reloads and restarts all the same.
    fx.set_schedule("'*-*-* 04:00'")?;
    let out = fx.command(&[]).env("PI_BOOTSTRAP_CRASH_AT", "after-units").output()?;
    assert!(!out.status.success(), "the run was meant to die");
    let (out, resumed) = fx.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{resumed:#}");
    assert_eq!(item(&resumed, TIMER_UNIT)["status"], "ok");
    assert_eq!(item(&resumed, TIMER)["status"], "changed", "{resumed:#}");
    let calendar = fx.systemctl(&["show", "-p", "TimersCalendar", "--value", "pi-bootstrap-backup.timer"])?;
    assert!(calendar.contains("*-*-* 04:00:00"), "{calendar}");
    let (_, again) = fx.run(&[])?;
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");

    // A schedule systemd cannot read: a failed item at its place; the timer is left alone.
    let installed = fs::read_to_string(fx.unit("pi-bootstrap-backup.timer"))?;
    fx.set_schedule("dayly")?;
    for args in [&["--check"][..], &[]] {
        let (out, bad) = fx.run(args)?;
        assert_eq!(out.status.code(), Some(1), "{bad:#}");
        let unit = item(&bad, TIMER_UNIT);
        assert_eq!(unit["status"], "failed", "{bad:#}");
        let said = unit["detail"].as_str().unwrap_or_default();
        let at =
            format!("{}:11:13: backup.schedule: systemd cannot read \"dayly\" as a calendar", fx.manifest().display());
        assert!(said.contains(&at), "{said}");
        assert_eq!(item(&bad, TIMER)["status"], "skipped", "{bad:#}");
        assert!(detail(&bad, TIMER).contains("see unit:pi-bootstrap-backup.timer"), "{bad:#}");
    }
    assert_eq!(
        fs::read_to_string(fx.unit("pi-bootstrap-backup.timer"))?,
        installed,
        "the installed timer is untouched"
    );
    assert_eq!(fx.systemctl(&["is-active", "pi-bootstrap-backup.timer"])?, "active");
    Ok(())
}
