//! bootstrap-validate against real services in a throwaway host: a private
//! `systemd --user` running small Python services and a timer, a private nginx on a
//! private loopback. A working host passes every check (exit 0); a broken one has each
//! failure reported with what was expected and what came back (exit 1): a stopped
//! service, a crashed one, one not installed, a wrong HTTP status, a job whose timer is
//! stopped, a route nginx cannot serve, a command with the wrong output, a hanging
//! command, a missing file. The JUnit file passes a JUnit schema.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::from_output;
use test_support::redact::Redactions;
use test_support::sandbox::systemctl_ok;

/// A stand-in service: answers every GET with the status and body it is given.
const SERVER: &str = r#"import http.server, sys
port, status, body = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        data = (body + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

/// The site: a health route, the web service behind /web/, a backend nobody runs
/// behind /gone/, 404 for the rest.
const SITE: &str = "server {
    listen 127.0.0.1:8080;
    server_tokens off;
    access_log off;
    location = /healthz { default_type text/plain; return 200 \"ok\\n\"; }
    location /web/ { proxy_pass http://127.0.0.1:7401/; }
    location /gone/ { proxy_pass http://127.0.0.1:7409/; }
    location / { return 404; }
}
";

fn server_unit(what: &str, port: u16, status: u16, body: &str) -> String {
    format!(
        "[Unit]\nDescription={what}\n\n[Service]\nExecStart=/usr/bin/python3 %h/pi-config/services/server.py {port} {status} '{body}'\n"
    )
}

/// Every unit the repo has, by name.
fn units() -> Vec<(&'static str, String)> {
    vec![
        ("web.service", server_unit("answers ok", 7401, 200, "ok")),
        ("raw.service", server_unit("listens on 7402", 7402, 200, "raw")),
        ("stopped.service", server_unit("never started", 7403, 200, "ok")),
        ("wrong-status.service", server_unit("answers 500", 7404, 500, "database is locked")),
        ("crashed.service", "[Unit]\nDescription=exits 1 at once\n\n[Service]\nExecStart=/bin/false\n".to_owned()),
        ("absent.service", server_unit("in the repo, never installed", 7405, 200, "ok")),
        ("tick.service", "[Unit]\nDescription=a job\n\n[Service]\nType=oneshot\nExecStart=/bin/true\n".to_owned()),
        ("tick.timer", "[Unit]\nDescription=runs tick\n\n[Timer]\nOnCalendar=hourly\n".to_owned()),
    ]
}

/// Writes the pi-config repo, installs its units (all but `absent`) into the user
/// manager, starts `start`, starts nginx with the site, writes the manifest.
fn host(machine: &mut Machine, manifest: &str, start: &[&str]) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let home = machine.layout.home();
    let repo = home.join("pi-config");
    for dir in ["services/web", "systemd", "nginx"] {
        fs::create_dir_all(repo.join(dir))?;
    }
    fs::write(repo.join("services/server.py"), SERVER)?;
    fs::write(repo.join("settings.json"), "{}\n")?;
    fs::write(repo.join("nginx/front.conf"), SITE)?;
    let installed = home.join(".config/systemd/user");
    fs::create_dir_all(&installed)?;
    for (name, text) in units() {
        fs::write(repo.join("systemd").join(name), &text)?;
        if name != "absent.service" {
            fs::write(installed.join(name), &text)?;
        }
    }
    systemctl_ok(machine, &["daemon-reload"])?;
    let mut args = vec!["start"];
    args.extend_from_slice(start);
    systemctl_ok(machine, &args)?;
    let prefix = machine.layout.nginx_prefix();
    fs::create_dir_all(prefix.join("sites-enabled"))?;
    fs::write(prefix.join("sites-enabled/front"), SITE)?;
    machine.start_nginx()?;
    let file = machine.layout.root.join("pi-bootstrap.yaml");
    fs::write(&file, manifest)?;
    Ok(file)
}

fn validate(machine: &Machine, manifest: &Path, args: &[&str]) -> std::io::Result<Output> {
    machine.command(env!("CARGO_BIN_EXE_bootstrap-validate")).arg("--manifest").arg(manifest).args(args).output()
}

/// The items of a JSON report by id: (status, detail).
fn items(report: &serde_json::Value) -> Vec<(String, String, String)> {
    report["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    let text = |key: &str| i[key].as_str().unwrap_or_default().to_owned();
                    (text("id"), text("status"), text("detail"))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn schema_accepts(file: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit.xsd");
    let out = Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(file).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("xmllint refused {}:\n{}", file.display(), String::from_utf8_lossy(&out.stderr)).into())
    }
}

const MANIFEST_HEAD: &str = "version: 1
host: sandbox-host
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
nginx:
  prefix: \"${NGINX_PREFIX}\"
  conf: \"${NGINX_PREFIX}/nginx.conf\"
  sites_available: \"${NGINX_PREFIX}/sites-available\"
  sites_enabled: \"${NGINX_PREFIX}/sites-enabled\"
  sites:
    - name: front
      source: nginx/front.conf
      routes:
        - url: http://127.0.0.1:8080/healthz
          body: '^ok$'
        - url: http://127.0.0.1:8080/web/health
          body: '^ok$'
        - url: http://127.0.0.1:8080/
          status: 404
";

const WORKING: &str = "prereqs:
  - name: python3
    check: [/usr/bin/python3, --version]
    version: \">=3.9\"
    install: {apt: python3}
  - name: tool
    # The check's env is honoured (as PI_OFFLINE=1 is for pi).
    check: [sh, -c, 'echo \"tool $TOOL_VERSION\"']
    version: \">=2.1\"
    env: {TOOL_VERSION: \"2.1.0\"}
    install: {apt: tool}
services:
  - name: web
    purpose: answers ok
    source: services/web
    unit: systemd/web.service
    health: {http: {url: \"http://127.0.0.1:7401/health\", body: \"^ok$\"}}
  - name: raw
    purpose: listens
    source: services/web
    unit: systemd/raw.service
    health: {tcp: \"127.0.0.1:7402\"}
  - name: tick
    purpose: a timer-driven job
    class: job
    source: services/web
    unit: systemd/tick.service
    timers: [systemd/tick.timer]
    health: {command: [systemctl, --user, is-active, --quiet, tick.timer]}
validate:
  - name: greeting
    command: {shell: 'echo \"hello $WHO from $(pwd)\"'}
    dir: ~/pi-config
    env: {WHO: validate}
    output: '^hello validate from .*/pi-config$'
  - name: settings
    file: ~/pi-config/settings.json
  - name: web-through-nginx
    http: {url: \"http://127.0.0.1:8080/web/status\", status: 200, body: '^ok$'}
";

#[test]
fn a_working_host_passes_every_check() -> TestResult {
    let Some(mut machine) = sandbox::isolated("a_working_host_passes_every_check") else { return Ok(()) };
    let manifest =
        host(&mut machine, &format!("{MANIFEST_HEAD}{WORKING}"), &["web.service", "raw.service", "tick.timer"])?;
    let junit = machine.layout.root.join("reports/validate.xml");
    let out = validate(&machine, &manifest, &["--json", "--junit", &junit.display().to_string()])?;
    let report = from_output(&out)?;
    let found = items(&report);
    let not_ok: Vec<_> = found.iter().filter(|(_, status, _)| status != "ok").collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let ids: Vec<&str> = found.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "prereq:python3",
            "prereq:tool",
            "service:web",
            "service:raw",
            "service:tick",
            "route:front:1",
            "route:front:2",
            "route:front:3",
            "check:greeting",
            "check:settings",
            "check:web-through-nginx",
        ]
    );
    let detail = |id: &str| found.iter().find(|(i, _, _)| i == id).map(|(_, _, d)| d.clone()).unwrap_or_default();
    assert!(detail("prereq:tool").ends_with("`sh -c 'echo \"tool $TOOL_VERSION\"'`: 2.1.0, meets >=2.1"));
    assert!(
        detail("service:web").ends_with("active (running); GET http://127.0.0.1:7401/health: 200, body matches /^ok$/")
    );
    assert!(detail("service:raw").ends_with("active (running); TCP 127.0.0.1:7402: connected"));
    assert!(
        detail("service:tick")
            .ends_with("tick.timer active (waiting); `systemctl --user is-active --quiet tick.timer`: exit 0")
    );
    assert!(detail("route:front:3").ends_with("GET http://127.0.0.1:8080/: 404"));
    schema_accepts(&junit)?;
    let xml = fs::read_to_string(&junit)?;
    assert!(xml.contains("tests=\"11\" failures=\"0\""), "{xml}");
    assert!(xml.contains("hostname=\"sandbox-host\""), "{xml}");
    // --only runs only what it names; the human form has a line per check and a recap.
    let out = validate(&machine, &manifest, &["--only", "service:web", "--only", "route:front:1"])?;
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.ends_with("bootstrap-validate: ok=2 changed=0 failed=0\n"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("bootstrap-validate: 2 checks in parallel took "), "{stderr}");
    Ok(())
}

const BROKEN: &str = "prereqs:
  - name: old
    check: [sh, -c, 'echo \"tool 1.2.0\"']
    version: \">=1.4\"
    install: {apt: tool}
  - name: missing
    check: [no-such-tool-pi-validate, --version]
    install: {apt: tool}
services:
  - name: web
    purpose: answers ok
    source: services/web
    unit: systemd/web.service
    health: {http: {url: \"http://127.0.0.1:7401/health\", body: \"^ok$\"}}
  - name: stopped
    purpose: installed, never started
    source: services/web
    unit: systemd/stopped.service
    health: {http: {url: \"http://127.0.0.1:7403/health\"}}
  - name: crashed
    purpose: exits at once
    source: services/web
    unit: systemd/crashed.service
  - name: absent
    purpose: never installed
    source: services/web
    unit: systemd/absent.service
  - name: wrong-status
    purpose: answers 500
    source: services/web
    unit: systemd/wrong-status.service
    health: {http: {url: \"http://127.0.0.1:7404/health\", status: 200}}
  - name: tick
    purpose: a job whose timer is stopped
    class: job
    source: services/web
    unit: systemd/tick.service
    timers: [systemd/tick.timer]
validate:
  - name: bun-version
    command: [echo, '0.9.3']
    output: '^1\\.'
  - name: hangs
    command: {shell: 'echo waiting for the database; sleep 30'}
    timeout: 1s
  - name: agents-db-file
    file: ~/pi-config/agents-database/data/agents.db
  - name: memories
    http: {url: \"http://127.0.0.1:7401/status\", body: '\"memories\": \\d+'}
  - name: gone
    http: {url: \"http://127.0.0.1:8080/gone/status\"}
";

#[test]
fn each_failure_says_what_was_expected_and_what_came_back() -> TestResult {
    let Some(mut machine) = sandbox::isolated("each_failure_says_what_was_expected_and_what_came_back") else {
        return Ok(());
    };
    let manifest = host(
        &mut machine,
        &format!("{MANIFEST_HEAD}{BROKEN}"),
        &["web.service", "wrong-status.service", "crashed.service"],
    )?;
    // Let crashed.service fail.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let junit = machine.layout.root.join("validate.xml");
    let out = validate(&machine, &manifest, &["--junit", &junit.display().to_string()])?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    insta::assert_snapshot!(Redactions::new().durations().apply(&stdout));
    schema_accepts(&junit)?;
    let xml = fs::read_to_string(&junit)?;
    assert!(xml.contains("tests=\"16\" failures=\"12\""), "{xml}");
    assert!(xml.contains("type=\"timeout\""), "{xml}");
    // The same in JSON.
    let report = from_output(&validate(&machine, &manifest, &["--json"])?)?;
    assert_eq!(report["summary"]["failed"], 12);
    assert_eq!(report["summary"]["ok"], 4);
    Ok(())
}
