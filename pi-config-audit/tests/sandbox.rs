//! The audit against a real `systemd --user` in a sandbox (fresh namespaces, private
//! loopback, temporary HOME): a host installed by hand is clean, and its audit reads the
//! user manager on its bus, starts no process of systemd's or logind's and asks git
//! nothing twice; then a deleted link, an
//! edited unit, an undeclared unit, an undeclared nginx site, an unclassified folder,
//! an env file made 0644, a stopped service, a disabled running service, an undeclared
//! block, a tracked database and an unpushed commit are each found and named; without
//! a reachable user manager the unit files are still compared and the services'
//! states are said to be unknown (exit 1); the audit changes nothing on disk, and
//! never prints a secret. A second audit in the same process asks afresh.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Output;

use common::sandbox::{self, Machine};
use support::{install_files, manifest, unit};
use test_support::TestResult;
use test_support::git::git;
use test_support::json::item;
use test_support::sandbox::{CallLog, systemctl_ok};
use test_support::tree::{changes, listing};

const CANARY: &str = "canary-audit-token-93be1f";

struct Host {
    machine: Machine,
}

impl Host {
    /// The repo, the manifest and everything installed as the steps would, services
    /// enabled and started.
    fn install(machine: Machine) -> Result<Host, Box<dyn std::error::Error>> {
        let home = machine.layout.home();
        support::make_repo(&home.join("pi-config"))?;
        fs::write(machine.layout.root.join("pi-bootstrap.yaml"), manifest(true))?;
        install_files(&home, &machine.layout.nginx_prefix(), CANARY)?;
        support::backup_now(&home, &machine.layout.backup_repo())?;
        let units = home.join(".config/systemd/user");
        fs::create_dir_all(&units)?;
        fs::write(units.join("alpha.service"), unit("alpha", 7401, true))?;
        fs::write(units.join("beta.service"), unit("beta", 7402, false))?;
        let host = Host { machine };
        host.systemctl(&["daemon-reload"])?;
        host.systemctl(&["enable", "--now", "alpha.service", "beta.service"])?;
        host.wait_for_port(7401)?;
        host.wait_for_port(7402)?;
        Ok(host)
    }

    fn systemctl(&self, args: &[&str]) -> TestResult {
        systemctl_ok(&self.machine, args)
    }

    fn wait_for_port(&self, port: u16) -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err(format!("nothing listens on {port}").into())
    }

    fn audit(&self, args: &[&str]) -> Result<Output, std::io::Error> {
        self.audit_command(args).output()
    }

    fn audit_command(&self, args: &[&str]) -> std::process::Command {
        let manifest = self.machine.layout.root.join("pi-bootstrap.yaml");
        let mut command = self.machine.command(env!("CARGO_BIN_EXE_pi-config-audit"));
        command.args(["--manifest", &manifest.display().to_string()]).args(args);
        command
    }

    /// The output with what changes from run to run made stable.
    fn redact(&self, bytes: &[u8]) -> String {
        support::redactions(&self.machine.layout.root, "[SANDBOX]").apply(bytes)
    }
}

fn json(out: &Output) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_slice(&out.stdout)
}

#[test]
fn a_clean_host_then_every_kind_of_drift_is_named_and_nothing_changes() -> TestResult {
    let Some(machine) = sandbox::isolated("a_clean_host_then_every_kind_of_drift_is_named_and_nothing_changes") else {
        return Ok(());
    };
    let host = Host::install(machine)?;
    let root = host.machine.layout.root.clone();
    let home = host.machine.layout.home();
    let mut printed = String::new();

    let before = listing(&root);
    let clean = host.audit(&["--json"])?;
    let report = json(&clean)?;
    assert_eq!(clean.status.code(), Some(0), "the installed host is clean:\n{}", host.redact(&clean.stdout));
    assert_eq!(report["summary"]["drift"], 0, "{report}");
    for id in ["service:alpha", "service:beta", "port:alpha", "port:beta", "unit:alpha.service", "env:demo"] {
        assert_eq!(item(&report, id)["status"], "ok", "{id}: {report}");
    }
    let quiet = host.audit(&["--quiet"])?;
    assert_eq!(quiet.status.code(), Some(0));
    insta::assert_snapshot!("clean_host_quiet", host.redact(&quiet.stdout));
    printed.push_str(&String::from_utf8_lossy(&clean.stdout));
    assert_eq!(changes(&before, &listing(&root)), Vec::<String>::new(), "the audit of a clean host changed files");
    // The whole audit reads the user manager from its bus, and starts no process of
    // systemd's or logind's.
    let calls = CallLog::install(&host.machine, &["systemctl", "systemd-analyze", "loginctl", "id", "git"])?;
    let traced = host.audit_command(&["--json"]).env("PATH", calls.path()?).env_remove("USER").output()?;
    assert_eq!(traced.status.code(), Some(0), "{}", host.redact(&traced.stdout));
    let asked = calls.take();
    let systemd: Vec<&String> = asked.iter().filter(|c| !c.starts_with("git ")).collect();
    assert_eq!(systemd, Vec::<&String>::new(), "no systemctl, systemd-analyze, loginctl or id");
    let mut distinct = asked.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), asked.len(), "no question asked twice: {asked:#?}");

    // Every kind of drift at once.
    fs::remove_file(home.join(".pi/agent/settings.json"))?;
    let units = home.join(".config/systemd/user");
    fs::write(units.join("beta.service"), unit("beta", 7402, false).replace("Restart=on-failure", "Restart=always"))?;
    fs::write(
        units.join("gamma.service"),
        "[Service]\nExecStart=/bin/sleep 600\n[Install]\nWantedBy=default.target\n",
    )?;
    host.systemctl(&["daemon-reload"])?;
    host.systemctl(&["enable", "--now", "gamma.service"])?;
    host.systemctl(&["stop", "alpha.service"])?;
    // Still running, but it would not come back after a reboot.
    host.systemctl(&["disable", "beta.service"])?;
    let nginx = host.machine.layout.nginx_prefix();
    fs::write(nginx.join("sites-enabled/extra"), "server { listen 127.0.0.1:8081; }\n")?;
    fs::create_dir(home.join("scratch"))?;
    let env = home.join(".config/demo/demo.env");
    fs::set_permissions(&env, fs::Permissions::from_mode(0o644))?;
    let rc = home.join(".bashrc");
    fs::write(
        &rc,
        format!("{}# >>> pi-bootstrap: old >>>\nalias old=x\n# <<< pi-bootstrap: old <<<\n", support::bashrc()),
    )?;
    let repo = home.join("pi-config");
    fs::create_dir_all(repo.join("data/alpha"))?;
    fs::write(repo.join("data/alpha/alpha.db"), "not really sqlite\n")?;
    git(&repo, &["add", "--force", "data/alpha/alpha.db"])?;
    git(&repo, &["commit", "--quiet", "-m", "oops"])?;
    // A backup that stopped: the policy now wants a snapshot younger than the last one.
    let manifest = root.join("pi-bootstrap.yaml");
    fs::write(&manifest, fs::read_to_string(&manifest)?.replace("max_age: 26h", "max_age: 1s"))?;
    std::thread::sleep(std::time::Duration::from_millis(1100));

    let before = listing(&root);
    let drifted = host.audit(&["--json"])?;
    let after = listing(&root);
    assert_eq!(changes(&before, &after), Vec::<String>::new(), "the audit changed files");
    assert_eq!(drifted.status.code(), Some(1));
    let report = json(&drifted)?;
    let expected = [
        ("link:settings", "files", "missing"),
        ("unit:beta.service", "services", "differs from the repo"),
        ("undeclared-unit:gamma.service", "services", "enabled, active (running)"),
        // Stopped, still enabled: a run would start it, nothing more.
        ("service:alpha", "services", "would start alpha.service"),
        // Its installed unit differs from the repo: a run would restart it, and enable it.
        ("service:beta", "services", "would restart: its unit, env file or code changed; enable beta.service"),
        // The "oops" commit was never pushed.
        ("repo:pi-config", "files", "1 commit not on origin/main"),
        ("port:alpha", "services", "nothing listens on port 7401"),
        ("undeclared-site:extra", "nginx", "enabled in nginx"),
        ("undeclared-block:~/.bashrc:old", "shell", "block \"old\""),
        ("env:demo", "secrets", "mode 0644, want 0600"),
        ("unclassified:~/scratch", "paths", "no declared role or backup class"),
        ("repo-hygiene:data/alpha/alpha.db", "repo", "a database file"),
        ("data:path:data", "backup", "more than the 1s allowed"),
        ("data:service:alpha", "backup", "more than the 1s allowed"),
    ];
    for (id, category, detail) in expected {
        let found = item(&report, id);
        assert_eq!(found["status"], "drift", "{id} must be drift: {report:#}");
        assert_eq!(found["category"], category, "{id}");
        let shown = found["detail"].as_str().unwrap_or_default();
        assert!(shown.contains(detail), "{id}: {shown:?} should say {detail:?}");
    }
    let diff = item(&report, "unit:beta.service")["diff"].as_str().unwrap_or_default();
    assert!(diff.contains("-Restart=always") && diff.contains("+Restart=on-failure"), "the unit's diff: {diff}");
    assert_eq!(item(&report, "port:beta")["status"], "ok", "beta still runs");
    let drift_count = report["summary"]["drift"].as_u64().unwrap_or_default();
    assert_eq!(drift_count, expected.len() as u64, "nothing else drifts: {report:#}");
    printed.push_str(&String::from_utf8_lossy(&drifted.stdout));

    // Without a reachable user manager (cron, ssh without a login session): the unit
    // files are still compared, what systemd runs is unknown, and the audit says so.
    let manifest = root.join("pi-bootstrap.yaml");
    let blind = host
        .machine
        .command(env!("CARGO_BIN_EXE_pi-config-audit"))
        .args(["--manifest", &manifest.display().to_string(), "--json"])
        .env_remove("XDG_RUNTIME_DIR")
        .output()?;
    assert_eq!(blind.status.code(), Some(1));
    let report = json(&blind)?;
    assert_eq!(item(&report, "unit:beta.service")["status"], "drift", "{report:#}");
    assert_eq!(item(&report, "unit:alpha.service")["status"], "ok", "{report:#}");
    for id in ["service:alpha", "service:beta"] {
        let found = item(&report, id);
        assert_eq!(found["status"], "failed", "{id}: {report:#}");
        let shown = found["detail"].as_str().unwrap_or_default();
        assert!(
            shown.starts_with("whether it is enabled and running is unknown: XDG_RUNTIME_DIR is not set"),
            "{shown}"
        );
        assert!(shown.contains("export XDG_RUNTIME_DIR=/run/user/$(id -u)"), "{shown}");
    }
    printed.push_str(&String::from_utf8_lossy(&blind.stdout));

    let human = host.audit(&[])?;
    printed.push_str(&String::from_utf8_lossy(&human.stdout));
    printed.push_str(&String::from_utf8_lossy(&human.stderr));
    insta::assert_snapshot!("drifted_host_human", host.redact(&human.stdout));
    insta::assert_snapshot!("drifted_host_json", host.redact(&drifted.stdout));
    assert!(!printed.contains(CANARY), "a secret was printed");
    assert!(!printed.contains("canary-restic-password"), "the backup password was printed");
    Ok(())
}

/// A process that audits twice (a library caller) asks the manager and git afresh the
/// second time: what one audit kept of its reads does not answer the next.
#[test]
fn a_second_audit_in_the_same_process_sees_what_changed_since_the_first() -> TestResult {
    let Some(machine) = sandbox::isolated("a_second_audit_in_the_same_process_sees_what_changed_since_the_first")
    else {
        return Ok(());
    };
    let host = Host::install(machine)?;
    let file = host.machine.layout.root.join("pi-bootstrap.yaml");
    let env = host.machine.env();
    let var = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let home = host.machine.layout.home();
    let manifest = common::manifest::load_str(&file, &fs::read_to_string(&file)?, &home, &var)?;
    let ctx = common::engine::Ctx::new(&home);
    let mut options = pi_config_audit::Options::new(common::output::Verbosity::Quiet);
    options.prereqs = false;
    let status =
        |audit: &pi_config_audit::Audit| audit.report.items.iter().find(|i| i.id == "service:beta").map(|i| i.status);
    let first = pi_config_audit::audit(&manifest, &ctx, &options)?;
    assert_eq!(status(&first), Some(common::report::Status::Ok), "{:#?}", first.report.items);
    host.systemctl(&["stop", "beta.service"])?;
    let second = pi_config_audit::audit(&manifest, &ctx, &options)?;
    assert_eq!(status(&second), Some(common::report::Status::Drift), "stopped after the first audit");
    Ok(())
}
