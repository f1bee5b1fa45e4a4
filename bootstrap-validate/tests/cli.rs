//! The binary's contract outside a sandbox: exit codes (0 all pass, 1 any fails, 2 a
//! wrong command line), `--timeout` for checks that set none, `--junit` written or a
//! clear failure, and a host without a user manager told so instead of hanging.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(rest: &str) -> Result<Host, std::io::Error> {
        let dir = tempfile::tempdir()?;
        fs::create_dir_all(dir.path().join("home"))?;
        let manifest =
            format!("version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\n{rest}");
        fs::write(dir.path().join("pi-bootstrap.yaml"), manifest)?;
        Ok(Host { dir })
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn run(&self, args: &[&str]) -> Result<Output, std::io::Error> {
        Command::new(env!("CARGO_BIN_EXE_bootstrap-validate"))
            .arg("--manifest")
            .arg(self.path("pi-bootstrap.yaml"))
            .args(args)
            .env("HOME", self.path("home"))
            .env_remove("XDG_RUNTIME_DIR")
            .env("NO_COLOR", "1")
            .output()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_manifest_with_nothing_to_check_passes() -> TestResult {
    let host = Host::new("")?;
    let out = host.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "bootstrap-validate: ok=0 changed=0 failed=0\n");
    Ok(())
}

#[test]
fn without_a_user_manager_the_services_fail_with_the_reason_and_the_rest_still_runs() -> TestResult {
    let host = Host::new(
        "services:
  - name: web
    purpose: a web service
    source: services/web
    unit: systemd/web.service
  - name: worker
    purpose: a worker
    source: services/worker
    unit: systemd/worker.service
validate:
  - name: home
    file: ~/
",
    )?;
    let out = host.run(&["--json"])?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(report["items"][0]["id"], "service:web");
    assert_eq!(report["items"][0]["status"], "failed");
    let detail = report["items"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("XDG_RUNTIME_DIR is not set, so the systemd user manager cannot be reached"), "{detail}");
    // The reason once; the other services point to it.
    let other = report["items"][1]["detail"].as_str().unwrap_or_default();
    assert!(other.ends_with(", no systemd state (see service:web)"), "{other}");
    assert_eq!(report["items"][2]["status"], "ok");
    Ok(())
}

#[test]
fn the_default_timeout_applies_to_checks_that_set_none() -> TestResult {
    let host = Host::new(
        "validate:
  - name: slow
    command: [sleep, '5']
  - name: slow-but-allowed
    command: [sleep, '0.5']
    timeout: 3s
",
    )?;
    let out = host.run(&["--timeout", "300ms", "--json"])?;
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let detail = report["items"][0]["detail"].as_str().unwrap_or_default();
    assert!(detail.ends_with("`sleep 5`: timed out after 300ms and was stopped"), "{detail}");
    assert_eq!(report["items"][1]["status"], "ok");
    let bad = host.run(&["--timeout", "soon"])?;
    assert_eq!(bad.status.code(), Some(2));
    // Absurd, but not a panic: a usage error.
    let absurd = host.run(&["--timeout", "500000000000y"])?;
    assert_eq!(absurd.status.code(), Some(2), "{}", text(&absurd.stderr));
    assert!(text(&absurd.stderr).contains("too long"), "{}", text(&absurd.stderr));
    Ok(())
}

#[test]
fn junit_is_written_or_its_failure_is_said() -> TestResult {
    let host = Host::new("validate:\n  - name: echo\n    command: [echo, hi]\n")?;
    let file = host.path("out/validate.xml");
    let out = host.run(&["--junit", &file.display().to_string()])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let xml = fs::read_to_string(&file)?;
    assert!(xml.contains("<testcase name=\"check:echo\" classname=\"bootstrap-validate.check\""), "{xml}");
    // A file where its folder should be: the report is still printed, then the failure.
    fs::write(host.path("blocked"), "a file\n")?;
    let out = host.run(&["--junit", &host.path("blocked/validate.xml").display().to_string()])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("ok           check:echo"), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("bootstrap-validate: error: cannot write the JUnit file"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn an_unknown_only_is_a_command_line_error() -> TestResult {
    let host = Host::new("validate:\n  - name: echo\n    command: [echo, hi]\n")?;
    let out = host.run(&["--only", "check:nope"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--only check:nope: no such item in this step (its items: check:echo)"),
        "{}",
        text(&out.stderr)
    );
    Ok(())
}

#[test]
fn a_check_that_prints_an_env_file_shows_its_secret_nowhere() -> TestResult {
    const CANARY: &str = "canary-validate-token-9c1e7a";
    let host = Host::new(
        "env:
  - name: bridge
    path: ~/.config/bridge/bridge.env
    vars: [BRIDGE_TOKEN]
validate:
  - name: cat-env
    command: [cat, .config/bridge/bridge.env]
    dir: ~/
    output: BRIDGE_TOKEN
  - name: fails-with-it
    command: {shell: 'cat .config/bridge/bridge.env; exit 3'}
    dir: ~/
",
    )?;
    let env = host.path("home/.config/bridge/bridge.env");
    fs::create_dir_all(env.parent().ok_or("no parent")?)?;
    fs::write(&env, format!("BRIDGE_TOKEN={CANARY}\n"))?;
    let junit = host.path("validate.xml");
    for args in [vec!["-v"], vec!["--json"]] {
        let mut args = args.clone();
        let junit_arg = junit.display().to_string();
        args.extend(["--junit", &junit_arg]);
        let out = host.run(&args)?;
        assert_eq!(out.status.code(), Some(1), "the failing check must fail: {}", text(&out.stdout));
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        assert!(!shown.contains(CANARY), "the token showed with {args:?}:\n{shown}");
        assert!(shown.contains("BRIDGE_TOKEN=<redacted>"), "the output it printed is not there: {shown}");
        let xml = fs::read_to_string(&junit)?;
        assert!(!xml.contains(CANARY), "the token is in the JUnit file:\n{xml}");
        assert!(xml.contains("BRIDGE_TOKEN=&lt;redacted&gt;") || xml.contains("BRIDGE_TOKEN=<redacted>"), "{xml}");
    }
    Ok(())
}
