//! The services step killed at each point where it changes two things in a row
//! converges with one rerun, with a real `systemd --user` and a real nginx: killed
//! between an nginx site's swap and the reload, the reload is due (`--check` says so,
//! the rerun does it, the route serves the new site); killed after a unit file changed
//! but before the daemon-reload, `--check` says systemd runs the old definition and
//! the rerun reloads and restarts; killed with a unit staged for verification, the
//! staging folder is the rerun's to remove.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::item;
use test_support::manifest::nginx_section;
use test_support::process::text;
use test_support::sandbox::{get, show};
use test_support::tree;

/// One web service behind one nginx site.
struct Fixture {
    machine: Machine,
}

fn unit(port: u16, restart: &str) -> String {
    format!(
        "[Unit]\nDescription=web\n[Service]\nType=simple\nWorkingDirectory=%h/pi-config\nExecStart=/usr/bin/python3 -m http.server {port} --bind 127.0.0.1 --directory %h/pi-config/services/web\nRestart={restart}\n[Install]\nWantedBy=default.target\n"
    )
}

fn site(answer: &str) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:8080;\n    location /web/ {{ proxy_pass http://127.0.0.1:7501/; }}\n    location = /version {{ return 200 \"{answer}\"; }}\n}}\n"
    )
}

impl Fixture {
    fn new(mut machine: Machine) -> Result<Fixture, Box<dyn std::error::Error>> {
        let repo = machine.layout.home().join("pi-config");
        fs::create_dir_all(repo.join("services/web"))?;
        fs::write(repo.join("services/web/index.html"), "web\n")?;
        fs::create_dir_all(repo.join("systemd"))?;
        fs::write(repo.join("systemd/web.service"), unit(7501, "on-failure"))?;
        fs::create_dir_all(repo.join("nginx"))?;
        fs::write(repo.join("nginx/web.conf"), site("v1"))?;
        let manifest = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
services:
  - name: web
    purpose: a web service
    source: services/web
    unit: systemd/web.service
{}",
            nginx_section(&[("web", "nginx/web.conf")])
        );
        fs::write(machine.layout.root.join("pi-bootstrap.yaml"), manifest)?;
        machine.start_nginx()?;
        Ok(Fixture { machine })
    }

    fn repo(&self) -> PathBuf {
        self.machine.layout.home().join("pi-config")
    }

    fn run(
        &self,
        args: &[&str],
        crash_at: Option<&str>,
    ) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let manifest = self.machine.layout.root.join("pi-bootstrap.yaml");
        let mut cmd = self.machine.command(env!("CARGO_BIN_EXE_bootstrap-services"));
        cmd.args(["--manifest", &manifest.display().to_string(), "--json"]).args(args);
        if let Some(point) = crash_at {
            cmd.env("PI_BOOTSTRAP_CRASH_AT", point);
        }
        let out = cmd.output()?;
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        Ok((out, json))
    }

    fn get(&self, url: &str) -> Result<String, Box<dyn std::error::Error>> {
        get(&self.machine, url)
    }

    fn show(&self, property: &str, unit: &str) -> Result<String, Box<dyn std::error::Error>> {
        show(&self.machine, property, unit)
    }

    /// The state folder's staging folders.
    fn tmp(&self) -> Vec<String> {
        tree::names(&self.machine.layout.home().join(".local/state/pi-bootstrap/tmp"))
    }

    /// A run that changes nothing.
    fn settled(&self) -> TestResult {
        let (out, report) = self.run(&[], None)?;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert_eq!(report["summary"]["changed"], 0, "{report:#}");
        assert_eq!(report["commands"], serde_json::json!([]), "{report:#}");
        Ok(())
    }
}

#[test]
fn killed_between_the_site_swap_and_the_reload_the_reload_is_done_by_the_rerun() -> TestResult {
    let Some(machine) =
        sandbox::isolated("killed_between_the_site_swap_and_the_reload_the_reload_is_done_by_the_rerun")
    else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    assert_eq!(fx.run(&[], None)?.0.status.code(), Some(0));
    assert_eq!(fx.get("http://127.0.0.1:8080/version")?, "v1");

    fs::write(fx.repo().join("nginx/web.conf"), site("v2"))?;
    let (killed, _) = fx.run(&[], Some("after-nginx-swap"))?;
    assert_eq!(killed.status.code(), None, "the step was to die at the crash point: {}", text(&killed));
    assert_eq!(fx.get("http://127.0.0.1:8080/version")?, "v1", "nginx still serves the old site");
    let (check, report) = fx.run(&["--check"], None)?;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert_eq!(item(&report, "nginx:web")["status"], "ok", "the site file is in place: {report:#}");
    assert_eq!(item(&report, "nginx:reload")["status"], "would_change", "{report:#}");

    let (out, report) = fx.run(&[], None)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(item(&report, "nginx:reload")["status"], "changed", "{report:#}");
    assert_eq!(fx.get("http://127.0.0.1:8080/version")?, "v2", "the rerun did not reload nginx");
    fx.settled()
}

#[test]
fn killed_before_the_daemon_reload_the_old_definition_is_seen_and_replaced() -> TestResult {
    let Some(machine) = sandbox::isolated("killed_before_the_daemon_reload_the_old_definition_is_seen_and_replaced")
    else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    assert_eq!(fx.run(&[], None)?.0.status.code(), Some(0));
    let pid = fx.show("MainPID", "web.service")?;

    fs::write(fx.repo().join("systemd/web.service"), unit(7501, "always"))?;
    let (killed, _) = fx.run(&[], Some("before-daemon-reload"))?;
    assert_eq!(killed.status.code(), None, "{}", text(&killed));
    assert_eq!(fx.show("NeedDaemonReload", "web.service")?, "yes");
    let (check, report) = fx.run(&["--check"], None)?;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert_eq!(item(&report, "service:daemon-reload")["status"], "would_change", "{report:#}");
    assert_eq!(item(&report, "service:web")["status"], "would_change", "the restart is due: {report:#}");

    let (out, report) = fx.run(&[], None)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(item(&report, "service:web")["status"], "changed", "{report:#}");
    assert_eq!(fx.show("NeedDaemonReload", "web.service")?, "no");
    assert_eq!(fx.show("Restart", "web.service")?, "always", "systemd runs the new definition");
    assert_ne!(fx.show("MainPID", "web.service")?, pid, "the service was restarted");
    fx.settled()
}

#[test]
fn killed_with_a_unit_staged_for_verification_the_staging_folder_is_swept() -> TestResult {
    let Some(machine) = sandbox::isolated("killed_with_a_unit_staged_for_verification_the_staging_folder_is_swept")
    else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    let (killed, _) = fx.run(&[], Some("units-staged"))?;
    assert_eq!(killed.status.code(), None, "{}", text(&killed));
    let left = fx.tmp();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("units."), "{left:?}");

    let (out, report) = fx.run(&[], None)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(item(&report, "staging:leftovers")["status"], "changed", "{report:#}");
    assert_eq!(fx.tmp(), Vec::<String>::new(), "staging left behind");
    assert_eq!(item(&report, "service:web")["status"], "changed", "{report:#}");
    fx.settled()
}
