//! bootstrap-services against a real `systemd --user` and a real nginx, each test in
//! its own sandbox (fresh namespaces, private loopback): restarts of exactly what
//! changed, invalid units refused before install, a broken nginx site refused with the
//! live configuration untouched, a restart that survives a crash, env files that name
//! what is missing and never show a value.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::item;
use test_support::manifest::nginx_section;
use test_support::process::text;
use test_support::sandbox::{get, show, systemctl};

const CANARY: &str = "canary-token-5e1d7c";

/// A pi-config repo with two small web services, one site, one env file.
struct Fixture {
    machine: Machine,
}

fn unit(name: &str, port: u16, env: bool) -> String {
    let env_line = if env { "EnvironmentFile=%h/.config/demo/demo.env\n" } else { "" };
    format!(
        "[Unit]\nDescription={name}\n[Service]\nType=simple\n{env_line}WorkingDirectory=%h/pi-config\nExecStart=/usr/bin/python3 -m http.server {port} --bind 127.0.0.1 --directory %h/pi-config/services/{name}\nRestart=on-failure\n[Install]\nWantedBy=default.target\n"
    )
}

const SITE: &str =
    "server {\n    listen 127.0.0.1:8080;\n    location /alpha/ { proxy_pass http://127.0.0.1:7401/; }\n}\n";

impl Fixture {
    fn new(machine: Machine) -> Result<Fixture, Box<dyn std::error::Error>> {
        let home = machine.layout.home();
        let repo = home.join("pi-config");
        for name in ["alpha", "beta"] {
            fs::create_dir_all(repo.join("services").join(name))?;
            fs::write(repo.join("services").join(name).join("index.html"), format!("{name} v1\n"))?;
        }
        fs::create_dir_all(repo.join("systemd"))?;
        fs::write(repo.join("systemd/alpha.service"), unit("alpha", 7401, true))?;
        fs::write(repo.join("systemd/beta.service"), unit("beta", 7402, false))?;
        fs::create_dir_all(repo.join("nginx"))?;
        fs::write(repo.join("nginx/demo.conf"), SITE)?;
        fs::create_dir_all(repo.join("shell"))?;
        fs::write(repo.join("shell/demo.sh"), "alias demo='echo demo'\n")?;
        sandbox::write_nginx_main_conf(&machine.layout.nginx_prefix())?;
        let manifest = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
services:
  - name: alpha
    purpose: the first demo service
    source: services/alpha
    unit: systemd/alpha.service
    env_file: demo
  - name: beta
    purpose: the second demo service
    source: services/beta
    unit: systemd/beta.service
{}shell:
  - name: demo
    file: ~/.bashrc
    source: shell/demo.sh
env:
  - name: demo
    path: ~/.config/demo/demo.env
    vars: [DEMO_TOKEN]
",
            nginx_section(&[("demo", "nginx/demo.conf")])
        );
        fs::write(machine.layout.root.join("pi-bootstrap.yaml"), manifest)?;
        Ok(Fixture { machine })
    }

    fn repo(&self) -> PathBuf {
        self.machine.layout.home().join("pi-config")
    }

    /// Runs the step with the canary exported (or not), returns the output and its JSON.
    fn run(
        &self,
        token: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        self.run_with(&[], token, extra_env)
    }

    /// `--check` with the canary exported.
    fn check(&self) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        self.run_with(&["--check"], Some(CANARY), &[])
    }

    fn run_with(
        &self,
        args: &[&str],
        token: Option<&str>,
        extra_env: &[(&str, &str)],
    ) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let manifest = self.machine.layout.root.join("pi-bootstrap.yaml");
        let mut cmd = self.machine.command(env!("CARGO_BIN_EXE_bootstrap-services"));
        cmd.args(["--manifest", &manifest.display().to_string(), "--json"]).args(args);
        match token {
            Some(token) => cmd.env("DEMO_TOKEN", token),
            None => cmd.env_remove("DEMO_TOKEN"),
        };
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let out = cmd.output()?;
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        Ok((out, json))
    }

    fn main_pid(&self, unit: &str) -> Result<String, Box<dyn std::error::Error>> {
        show(&self.machine, "MainPID", unit)
    }

    fn active(&self, unit: &str) -> Result<String, Box<dyn std::error::Error>> {
        systemctl(&self.machine, &["is-active", unit])
    }

    fn get(&self, url: &str) -> Result<String, Box<dyn std::error::Error>> {
        get(&self.machine, url)
    }
}

#[test]
fn installs_everything_then_a_second_run_changes_and_restarts_nothing() -> TestResult {
    let Some(machine) = sandbox::isolated("installs_everything_then_a_second_run_changes_and_restarts_nothing") else {
        return Ok(());
    };
    let mut fx = Fixture::new(machine)?;
    fx.machine.start_nginx()?;
    let (out, first) = fx.run(Some(CANARY), &[])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for id in [
        "env:demo",
        "unit:alpha.service",
        "unit:beta.service",
        "service:alpha",
        "service:beta",
        "nginx:demo",
        "shell:demo",
    ] {
        assert_eq!(item(&first, id)["status"], "changed", "{id}: {first}");
    }
    assert_eq!(fx.active("alpha.service")?, "active");
    assert_eq!(fx.active("beta.service")?, "active");
    assert_eq!(fx.get("http://127.0.0.1:8080/alpha/")?, "alpha v1", "the route answers through nginx");
    let env = fx.machine.layout.home().join(".config/demo/demo.env");
    assert_eq!(fs::metadata(&env).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)?, 0o600);

    let pids = (fx.main_pid("alpha.service")?, fx.main_pid("beta.service")?);
    let (out, second) = fx.run(Some(CANARY), &[])?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(second["summary"]["changed"], 0, "{second}");
    assert_eq!(second["commands"], serde_json::json!([]), "a second run runs nothing");
    assert_eq!((fx.main_pid("alpha.service")?, fx.main_pid("beta.service")?), pids, "nothing restarted");
    Ok(())
}

/// The status and detail of `id` in `report`.
fn said(report: &serde_json::Value, id: &str) -> (String, String) {
    let found = item(report, id);
    (found["status"].as_str().unwrap_or_default().to_owned(), found["detail"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn enablement_is_checked_and_said_the_way_the_run_applies_it() -> TestResult {
    let Some(machine) = sandbox::isolated("enablement_is_checked_and_said_the_way_the_run_applies_it") else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    fx.run(Some(CANARY), &[])?;
    let systemctl = |args: &[&str]| fx.machine.command("systemctl").arg("--user").args(args).output();

    // Disabled but running: it would not come back after a reboot.
    systemctl(&["disable", "beta.service"])?;
    let pid = fx.main_pid("beta.service")?;
    let (out, check) = fx.check()?;
    assert_eq!(out.status.code(), Some(1), "{check}");
    assert_eq!(
        said(&check, "service:beta"),
        ("would_change".into(), "would enable beta.service (it runs, but would not start again after a reboot)".into())
    );
    assert_eq!(said(&check, "service:alpha").0, "ok");
    let (_, run) = fx.run(Some(CANARY), &[])?;
    assert_eq!(
        said(&run, "service:beta"),
        ("changed".into(), "enabled beta.service (it ran, but would not have started again after a reboot)".into())
    );
    assert_eq!(run["commands"], serde_json::json!(["systemctl --user enable beta.service"]), "{run}");
    assert_eq!(fx.main_pid("beta.service")?, pid, "enabling does not restart it");

    // Stopped but enabled: started, nothing more.
    systemctl(&["stop", "alpha.service"])?;
    let (_, check) = fx.check()?;
    assert_eq!(said(&check, "service:alpha"), ("would_change".into(), "would start alpha.service".into()));
    let (_, run) = fx.run(Some(CANARY), &[])?;
    assert_eq!(said(&run, "service:alpha"), ("changed".into(), "started alpha.service".into()));
    assert_eq!(run["commands"], serde_json::json!(["systemctl --user start alpha.service"]), "{run}");
    let (_, again) = fx.run(Some(CANARY), &[])?;
    assert_eq!(again["summary"]["changed"], 0, "{again}");
    Ok(())
}

#[test]
fn a_missing_env_file_is_checked_with_the_file_the_run_will_write() -> TestResult {
    let Some(machine) = sandbox::isolated("a_missing_env_file_is_checked_with_the_file_the_run_will_write") else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    fx.run(Some(CANARY), &[])?;
    let pid = fx.main_pid("alpha.service")?;
    fs::remove_file(fx.machine.layout.home().join(".config/demo/demo.env"))?;
    // The run writes the same file again: nothing that reads it restarts.
    let (_, check) = fx.check()?;
    assert_eq!(said(&check, "env:demo").0, "would_change");
    assert_eq!(said(&check, "service:alpha"), ("ok".into(), String::new()), "{check}");
    let (_, run) = fx.run(Some(CANARY), &[])?;
    assert_eq!(said(&run, "env:demo").0, "changed");
    assert_eq!(said(&run, "service:alpha"), ("ok".into(), String::new()), "{run}");
    assert_eq!(fx.main_pid("alpha.service")?, pid);

    // A new value: the check and the run both restart exactly the service that reads it.
    fs::remove_file(fx.machine.layout.home().join(".config/demo/demo.env"))?;
    let (_, check) = fx.run_with(&["--check"], Some("another-canary-token-1b2c"), &[])?;
    assert_eq!(
        said(&check, "service:alpha"),
        ("would_change".into(), "would restart: its unit, env file or code changed".into())
    );
    assert_eq!(said(&check, "service:beta").0, "ok");
    let (_, run) = fx.run(Some("another-canary-token-1b2c"), &[])?;
    assert_eq!(said(&run, "service:alpha"), ("changed".into(), "restarted: its unit, env file or code changed".into()));
    assert_eq!(said(&run, "service:beta").0, "ok");
    Ok(())
}

#[test]
fn a_changed_unit_or_code_restarts_only_its_service() -> TestResult {
    let Some(machine) = sandbox::isolated("a_changed_unit_or_code_restarts_only_its_service") else { return Ok(()) };
    let fx = Fixture::new(machine)?;
    fx.run(Some(CANARY), &[])?;
    let (alpha, beta) = (fx.main_pid("alpha.service")?, fx.main_pid("beta.service")?);
    fs::write(
        fx.repo().join("systemd/beta.service"),
        unit("beta", 7402, false).replace("Restart=on-failure", "Restart=always"),
    )?;
    let (_, report) = fx.run(Some(CANARY), &[])?;
    assert_eq!(item(&report, "unit:beta.service")["status"], "changed");
    assert_eq!(item(&report, "service:beta")["status"], "changed");
    assert_eq!(item(&report, "service:beta")["detail"], "restarted: its unit, env file or code changed");
    assert_eq!(item(&report, "service:alpha")["status"], "ok");
    assert_eq!(fx.main_pid("alpha.service")?, alpha, "alpha must not restart");
    assert_ne!(fx.main_pid("beta.service")?, beta, "beta must restart");
    assert_eq!(
        report["commands"],
        serde_json::json!(["systemctl --user daemon-reload", "systemctl --user restart beta.service"])
    );

    // Code changed: only its service restarts.
    let beta = fx.main_pid("beta.service")?;
    fs::write(fx.repo().join("services/alpha/index.html"), "alpha v2\n")?;
    let (_, report) = fx.run(Some(CANARY), &[])?;
    assert_eq!(item(&report, "service:alpha")["status"], "changed");
    assert_eq!(fx.main_pid("beta.service")?, beta);
    assert_eq!(report["commands"], serde_json::json!(["systemctl --user restart alpha.service"]));
    Ok(())
}

#[test]
fn an_invalid_unit_is_refused_before_it_is_installed() -> TestResult {
    let Some(machine) = sandbox::isolated("an_invalid_unit_is_refused_before_it_is_installed") else { return Ok(()) };
    let fx = Fixture::new(machine)?;
    fx.run(Some(CANARY), &[])?;
    let installed = fx.machine.layout.home().join(".config/systemd/user/beta.service");
    let before = fs::read_to_string(&installed)?;
    // A mistake seen in the wild: $HOME is not expanded in WorkingDirectory=.
    let broken = unit("beta", 7402, false).replace("WorkingDirectory=%h/pi-config", "WorkingDirectory=$HOME/pi-config");
    fs::write(fx.repo().join("systemd/beta.service"), broken)?;
    let (out, report) = fx.run(Some(CANARY), &[])?;
    assert_eq!(out.status.code(), Some(1));
    let beta = item(&report, "unit:beta.service");
    assert_eq!(beta["status"], "failed");
    let detail = beta["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("systemd-analyze verify refused the unit, nothing was installed"), "{detail}");
    assert!(detail.contains("WorkingDirectory= path is not absolute: $HOME/pi-config"), "{detail}");
    assert_eq!(fs::read_to_string(&installed)?, before, "the installed unit is untouched");
    assert_eq!(fx.active("beta.service")?, "active");
    Ok(())
}

#[test]
fn a_broken_nginx_site_is_refused_and_nginx_keeps_serving() -> TestResult {
    let Some(machine) = sandbox::isolated("a_broken_nginx_site_is_refused_and_nginx_keeps_serving") else {
        return Ok(());
    };
    let mut fx = Fixture::new(machine)?;
    fx.machine.start_nginx()?;
    fx.run(Some(CANARY), &[])?;
    assert_eq!(fx.get("http://127.0.0.1:8080/alpha/")?, "alpha v1");
    let live = fx.machine.layout.nginx_prefix().join("sites-available/demo");
    let before = fs::read_to_string(&live)?;
    fs::write(fx.repo().join("nginx/demo.conf"), SITE.replace("proxy_pass", "proxy_pas"))?;
    let (out, report) = fx.run(Some(CANARY), &[])?;
    assert_eq!(out.status.code(), Some(1));
    let site = item(&report, "nginx:demo");
    assert_eq!(site["status"], "failed");
    let detail = site["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("nginx -t refused the new configuration; nothing live was changed"), "{detail}");
    assert!(detail.contains("unknown directive \"proxy_pas\""), "nginx's own message is passed on: {detail}");
    assert_eq!(fs::read_to_string(&live)?, before, "the live site is untouched");
    assert_eq!(fx.get("http://127.0.0.1:8080/alpha/")?, "alpha v1", "nginx still serves");
    Ok(())
}

#[test]
fn a_run_killed_before_the_restart_restarts_on_the_next_run() -> TestResult {
    let Some(machine) = sandbox::isolated("a_run_killed_before_the_restart_restarts_on_the_next_run") else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    fx.run(Some(CANARY), &[])?;
    let beta = fx.main_pid("beta.service")?;
    fs::write(
        fx.repo().join("systemd/beta.service"),
        unit("beta", 7402, false).replace("Restart=on-failure", "Restart=always"),
    )?;
    let (out, _) = fx.run(Some(CANARY), &[("PI_BOOTSTRAP_CRASH_AT", "after-units")])?;
    assert!(!out.status.success(), "the run was meant to die");
    assert_eq!(fx.main_pid("beta.service")?, beta, "the crash came before the restart");
    // The unit file is in place now: only the recorded due restart knows beta must restart.
    let (_, report) = fx.run(Some(CANARY), &[])?;
    assert_eq!(item(&report, "unit:beta.service")["status"], "ok");
    assert_eq!(item(&report, "service:beta")["status"], "changed", "{report}");
    assert_ne!(fx.main_pid("beta.service")?, beta);
    let (_, again) = fx.run(Some(CANARY), &[])?;
    assert_eq!(again["summary"]["changed"], 0, "{again}");
    Ok(())
}

#[test]
fn a_missing_env_var_is_named_and_nothing_half_written_is_left() -> TestResult {
    let Some(machine) = sandbox::isolated("a_missing_env_var_is_named_and_nothing_half_written_is_left") else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    let (out, report) = fx.run(None, &[])?;
    assert_eq!(out.status.code(), Some(1));
    let env = item(&report, "env:demo");
    assert_eq!(env["status"], "failed");
    let detail = env["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("DEMO_TOKEN is not set in the environment"), "{detail}");
    let home = fx.machine.layout.home();
    assert!(!home.join(".config/demo/demo.env").exists(), "no half-written env file");
    let leftovers: Vec<_> = fs::read_dir(home.join(".config/demo")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");
    Ok(())
}

#[test]
fn the_canary_secret_appears_in_no_output_log_or_state_file() -> TestResult {
    let Some(machine) = sandbox::isolated("the_canary_secret_appears_in_no_output_log_or_state_file") else {
        return Ok(());
    };
    let mut fx = Fixture::new(machine)?;
    fx.machine.start_nginx()?;
    let mut seen = String::new();
    let (out, _) = fx.run(Some(CANARY), &[])?;
    seen.push_str(&text(&out));
    // A value present in the file and a changed one in the environment: still no value shown.
    let (out, _) = fx.run(Some("canary-other-value-91ab"), &[])?;
    seen.push_str(&text(&out));
    let check = fx
        .machine
        .command(env!("CARGO_BIN_EXE_bootstrap-services"))
        .args(["--manifest", &fx.machine.layout.root.join("pi-bootstrap.yaml").display().to_string(), "--check", "-v"])
        .output()?;
    seen.push_str(&text(&check));
    assert!(!seen.contains(CANARY), "the canary was printed:\n{seen}");
    let env = fx.machine.layout.home().join(".config/demo/demo.env");
    assert!(fs::read_to_string(&env)?.contains(CANARY), "the env file holds the value");
    let mut leaks = Vec::new();
    scan(&fx.machine.layout.root, &env, &mut leaks);
    assert!(leaks.is_empty(), "the canary leaked into {leaks:?}");
    Ok(())
}

fn scan(dir: &Path, allowed: &Path, leaks: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            scan(&path, allowed, leaks);
        } else if path != allowed && fs::read(&path).is_ok_and(|b| String::from_utf8_lossy(&b).contains(CANARY)) {
            leaks.push(path);
        }
    }
}
