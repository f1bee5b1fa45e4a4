//! What the step asks of the system, and how often, against a real `systemd --user` in
//! a sandbox: the unit files of a run verified in one `systemd-analyze verify` call, a
//! broken unit among valid ones failing alone with its own message after that one call;
//! when more than one unit has something to say (a refusal, a mere warning, the
//! backup's program not installed yet), those verified again one by one, each with its
//! own verdict; a service that dies right after it starts, or keeps dying and being
//! restarted, not reported running; a run with nothing to do asking each question once
//! (the units read on the manager's bus, and no process started).

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::{detail, from_output, item};
use test_support::process::text;
use test_support::sandbox::{CallLog, systemctl};

/// A repo with one unit file per service, each service running `exec`.
struct Fixture {
    machine: Machine,
    calls: CallLog,
}

/// A unit that runs `exec`, with `extra` lines in its `[Service]` section.
fn unit(name: &str, exec: &str, extra: &str) -> String {
    format!(
        "[Unit]\nDescription={name}\n[Service]\nType=simple\nWorkingDirectory=%h/pi-config\nExecStart={exec}\n{extra}[Install]\nWantedBy=default.target\n"
    )
}

/// A service that runs for good.
fn steady(name: &str) -> String {
    unit(name, "/bin/sleep infinity", "")
}

impl Fixture {
    /// The services `units` (name, unit text), and `backup_schedule` when given.
    fn new(
        machine: Machine,
        units: &[(&str, String)],
        backup_schedule: Option<&str>,
    ) -> Result<Fixture, Box<dyn std::error::Error>> {
        let repo = machine.layout.home().join("pi-config");
        fs::create_dir_all(repo.join("systemd"))?;
        let mut services = String::new();
        for (name, text) in units {
            fs::create_dir_all(repo.join("services").join(name))?;
            fs::write(repo.join("services").join(name).join("README"), format!("{name}\n"))?;
            fs::write(repo.join("systemd").join(format!("{name}.service")), text)?;
            services.push_str(&format!(
                "  - name: {name}\n    purpose: the {name} service\n    source: services/{name}\n    unit: systemd/{name}.service\n"
            ));
        }
        let backup = backup_schedule
            .map(|schedule| {
                format!(
                    "backup:\n  schedule: {schedule}\n  repository: /srv/restic\n  password_file: ~/.config/pi-bootstrap/restic-password\n  max_age: 26h\n"
                )
            })
            .unwrap_or_default();
        let manifest = format!(
            "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\nservices:\n{services}{backup}"
        );
        fs::write(machine.layout.root.join("pi-bootstrap.yaml"), manifest)?;
        // The programs the step asks, through scripts that write down each call.
        let calls = CallLog::install(&machine, &["systemd-analyze", "systemctl", "loginctl", "id"])?;
        Ok(Fixture { machine, calls })
    }

    /// A run, without `$USER` (so the step asks `id -un`), its calls written down.
    fn run(&self) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let manifest = self.machine.layout.root.join("pi-bootstrap.yaml");
        let path = self.calls.path()?;
        let out = self
            .machine
            .command(env!("CARGO_BIN_EXE_bootstrap-services"))
            .args(["--manifest", &manifest.display().to_string(), "--json"])
            .env("PATH", path)
            .env_remove("USER")
            .output()?;
        let json = from_output(&out)?;
        Ok((out, json))
    }

    /// Every call so far, as `PROGRAM ARGS...`; the log starts again empty.
    fn take_calls(&self) -> Vec<String> {
        self.calls.take()
    }

    /// The `systemd-analyze verify` calls so far, each as the unit files it named.
    fn verify_calls(&self) -> Vec<Vec<String>> {
        self.calls
            .peek()
            .iter()
            .filter(|line| line.starts_with("systemd-analyze verify "))
            .map(|line| {
                line.split_whitespace()
                    .filter(|w| w.starts_with('/'))
                    .filter_map(|w| PathBuf::from(w).file_name().map(|n| n.to_string_lossy().into_owned()))
                    .collect()
            })
            .collect()
    }

    fn installed(&self, unit: &str) -> bool {
        self.machine.layout.home().join(".config/systemd/user").join(unit).exists()
    }

    fn active(&self, unit: &str) -> Result<String, Box<dyn std::error::Error>> {
        systemctl(&self.machine, &["is-active", unit])
    }
}

/// The status of `id` in `report`.
fn status(report: &serde_json::Value, id: &str) -> String {
    item(report, id)["status"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn a_broken_unit_among_valid_ones_fails_alone_with_its_message_after_one_verify_call() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_broken_unit_among_valid_ones_fails_alone_with_its_message_after_one_verify_call")
    else {
        return Ok(());
    };
    // A mistake seen in the wild: $HOME is not expanded in WorkingDirectory=.
    let broken = steady("gamma").replace("WorkingDirectory=%h/pi-config", "WorkingDirectory=$HOME/pi-config");
    let units = [("alpha", steady("alpha")), ("beta", steady("beta")), ("gamma", broken), ("delta", steady("delta"))];
    let fx = Fixture::new(machine, &units, None)?;
    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    assert_eq!(
        fx.verify_calls(),
        [["alpha.service", "beta.service", "gamma.service", "delta.service"]],
        "one call for all the units: {report:#}"
    );
    assert_eq!(status(&report, "unit:gamma.service"), "failed", "{report:#}");
    let said = detail(&report, "unit:gamma.service");
    assert!(said.starts_with("missing: systemd-analyze verify refused the unit, nothing was installed:\n"), "{said}");
    assert!(said.contains("gamma.service:5: WorkingDirectory= path is not absolute: $HOME/pi-config"), "{said}");
    for other in ["alpha", "beta", "delta"] {
        assert!(!said.contains(other), "gamma's message is its own: {said}");
        assert_eq!(status(&report, &format!("unit:{other}.service")), "changed", "{report:#}");
        assert_eq!(status(&report, &format!("service:{other}")), "changed", "{report:#}");
        assert_eq!(fx.active(&format!("{other}.service"))?, "active");
    }
    assert!(!fx.installed("gamma.service"), "nothing was installed for gamma");
    assert_eq!(status(&report, "service:gamma"), "failed", "{report:#}");

    // Fixed: a run verifies and installs only what is left, in one call.
    let units_dir = fx.machine.layout.home().join("pi-config/systemd");
    fs::write(units_dir.join("gamma.service"), steady("gamma"))?;
    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(status(&report, "unit:gamma.service"), "changed", "{report:#}");
    assert_eq!(fx.verify_calls().len(), 2, "a single unit to install is verified alone: {:?}", fx.verify_calls());
    assert_eq!(fx.verify_calls()[1], ["gamma.service"]);
    let (_, again) = fx.run()?;
    assert_eq!(again["summary"]["changed"], 0, "{again:#}");
    assert_eq!(fx.verify_calls().len(), 2, "nothing to install, nothing verified");
    Ok(())
}

#[test]
fn units_that_all_have_something_to_say_are_verified_again_one_by_one() -> TestResult {
    let Some(machine) = sandbox::isolated("units_that_all_have_something_to_say_are_verified_again_one_by_one") else {
        return Ok(());
    };
    let units = [
        ("alpha", steady("alpha")),
        // Refused: a relative working directory.
        ("beta", steady("beta").replace("WorkingDirectory=%h/pi-config", "WorkingDirectory=$HOME/pi-config")),
        // Refused: a section header that does not close.
        ("gamma", steady("gamma").replace("[Service]", "[Service")),
        // Only a warning, which systemd does not refuse: installed and started.
        ("delta", unit("delta", "/bin/sleep infinity", "NoSuchSetting=1\n")),
    ];
    // The scheduled backup too, while the bootstrap-data it runs is not installed: a
    // complaint that does not count against its units.
    let fx = Fixture::new(machine, &units, Some("daily"))?;
    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let calls = fx.verify_calls();
    assert_eq!(
        calls[0],
        [
            "alpha.service",
            "beta.service",
            "gamma.service",
            "delta.service",
            "pi-bootstrap-backup.service",
            "pi-bootstrap-backup.timer"
        ],
        "{calls:?}"
    );
    let mut again: Vec<String> = calls[1..].iter().flatten().cloned().collect();
    again.sort();
    assert_eq!(
        again,
        ["beta.service", "delta.service", "gamma.service"],
        "the units that spoke, one by one: {calls:?}"
    );

    let beta = detail(&report, "unit:beta.service");
    assert_eq!(status(&report, "unit:beta.service"), "failed", "{report:#}");
    assert!(beta.contains("WorkingDirectory= path is not absolute: $HOME/pi-config"), "{beta}");
    assert!(!beta.contains("gamma") && !beta.contains("delta"), "{beta}");
    let gamma = detail(&report, "unit:gamma.service");
    assert_eq!(status(&report, "unit:gamma.service"), "failed", "{report:#}");
    assert!(gamma.contains("Invalid section header '[Service'"), "{gamma}");
    assert!(!gamma.contains("beta") && !gamma.contains("delta"), "{gamma}");
    for ok in ["alpha", "delta"] {
        assert_eq!(status(&report, &format!("unit:{ok}.service")), "changed", "{report:#}");
        assert_eq!(status(&report, &format!("service:{ok}")), "changed", "{report:#}");
    }
    for generated in ["pi-bootstrap-backup.service", "pi-bootstrap-backup.timer"] {
        assert_eq!(status(&report, &format!("unit:{generated}")), "changed", "{report:#}");
    }
    let timer = detail(&report, "timer:pi-bootstrap-backup");
    assert!(timer.contains("bootstrap-data is not installed"), "{timer}");
    assert!(!fx.installed("beta.service") && !fx.installed("gamma.service"));
    Ok(())
}

#[test]
fn a_service_that_dies_right_after_it_starts_is_not_reported_running() -> TestResult {
    let Some(machine) = sandbox::isolated("a_service_that_dies_right_after_it_starts_is_not_reported_running") else {
        return Ok(());
    };
    let dies = "/bin/sh -c 'sleep 0.2; exit 1'";
    let units = [
        ("steady", steady("steady")),
        // Dies once, for good.
        ("dies", unit("dies", dies, "")),
        // Dies, is restarted, dies again, until systemd gives up on it.
        (
            "flaps",
            unit("flaps", dies, "Restart=on-failure\nRestartSec=100ms\nStartLimitBurst=3\nStartLimitIntervalSec=60\n"),
        ),
    ];
    let fx = Fixture::new(machine, &units, None)?;
    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(status(&report, "service:steady"), "changed", "{report:#}");
    assert_eq!(fx.active("steady.service")?, "active");
    for name in ["dies", "flaps"] {
        assert_eq!(status(&report, &format!("service:{name}")), "failed", "{report:#}");
        let said = detail(&report, &format!("service:{name}"));
        assert!(said.starts_with(&format!("not running: {name}.service is failed")), "{said}");
    }
    Ok(())
}

#[test]
fn a_run_with_nothing_to_do_asks_each_question_once() -> TestResult {
    let Some(machine) = sandbox::isolated("a_run_with_nothing_to_do_asks_each_question_once") else {
        return Ok(());
    };
    let units = [("alpha", steady("alpha")), ("beta", steady("beta"))];
    let fx = Fixture::new(machine, &units, Some("daily"))?;
    let (out, _) = fx.run()?;
    assert_eq!(out.status.code(), Some(1), "the timer's program is not installed: {}", text(&out));
    let first = fx.take_calls();
    assert_eq!(first.iter().filter(|c| c.starts_with("systemd-analyze verify ")).count(), 1, "{first:#?}");
    // The user is named by /etc/passwd, the manager found at its socket.
    for program in ["id ", "systemctl --user is-system-running"] {
        assert!(!first.iter().any(|c| c.starts_with(program)), "{program}: {first:#?}");
    }

    let (out, report) = fx.run()?;
    assert_eq!(report["summary"]["changed"], 0, "{}", text(&out));
    // Nothing changed, so no process at all: the units are read from the manager's bus
    // (no `systemctl`), the timer's schedule was checked before it was written (no
    // `systemd-analyze`), no logind runs in the sandbox (no /run/systemd/users), so
    // there is none to ask of linger (no `loginctl`).
    let calls = fx.take_calls();
    assert_eq!(calls, Vec::<String>::new(), "a no-op run starts no process");
    Ok(())
}
