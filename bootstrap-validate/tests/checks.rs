//! The checks against real programs on this machine, no sandbox needed: commands (exit
//! code, output pattern, folder, environment, a hanging one killed), HTTP against a
//! real server on loopback (status, body, refused, no answer), files and links,
//! prerequisite versions; the checks derived from the example manifest; the report's
//! human and JSON forms; the JUnit file against a JUnit schema.

#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use bootstrap_validate::{Check, CommandProbe, Finding, Health, HttpProbe, PrereqProbe, Probe, Run};
use common::output::Verbosity;
use test_support::TestResult;
use test_support::redact::Redactions;

const SECOND: Duration = Duration::from_secs(1);

fn check(id: &str, kind: &'static str, timeout: Duration, probe: Probe) -> Check {
    Check { id: id.to_owned(), kind, timeout, probe }
}

fn command(argv: &[&str]) -> CommandProbe {
    CommandProbe::argv(argv)
}

/// Runs the checks (all at once) and gives each finding by id.
fn run(checks: Vec<Check>) -> (Run, BTreeMap<String, Finding>) {
    let run = bootstrap_validate::run(checks, Verbosity::Quiet);
    let findings = run.checks.iter().zip(&run.outcomes).map(|(c, o)| (c.id.clone(), o.finding.clone())).collect();
    (run, findings)
}

fn finding<'a>(findings: &'a BTreeMap<String, Finding>, id: &str) -> Result<&'a Finding, String> {
    findings.get(id).ok_or_else(|| format!("no finding for {id}"))
}

/// What a finding says, in one line, for assertions.
fn said(f: &Finding) -> String {
    let evidence = f.evidence.as_ref().map(|e| format!(" [{}: {}]", e.label, e.text)).unwrap_or_default();
    format!("{}{}{}", if f.ok { "ok: " } else { "failed: " }, f.summary, evidence)
}

#[test]
fn commands_report_what_was_expected_and_what_came_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let folder = dir.path().display().to_string();
    let checks = vec![
        check(
            "check:ok",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe { output: Some("^hello$".into()), ..command(&["sh", "-c", "echo hello"]) }),
        ),
        check(
            "check:wrong-exit",
            "command",
            SECOND * 5,
            Probe::Command(command(&["sh", "-c", "echo started; echo broken pipe dream >&2; exit 3"])),
        ),
        check(
            "check:expected-exit",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe { exit: 3, ..command(&["sh", "-c", "exit 3"]) }),
        ),
        check(
            "check:wrong-output",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe { output: Some("^1\\.".into()), ..command(&["echo", "0.9.3"]) }),
        ),
        check(
            "check:hangs",
            "command",
            Duration::from_millis(500),
            Probe::Command(command(&["sh", "-c", "echo working on it; exec sleep 30"])),
        ),
        check("check:missing", "command", SECOND * 5, Probe::Command(command(&["no-such-program-pi-validate"]))),
        check(
            "check:dir-and-env",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe {
                dir: Some(dir.path().to_path_buf()),
                env: vec![("WHO".into(), "validate".into())],
                output: Some(format!("^{}$", regex_escape(&folder))),
                ..command(&["sh", "-c", "pwd; echo \"hello $WHO\" >&2"])
            }),
        ),
        check(
            "check:stderr-matches",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe {
                env: vec![("WHO".into(), "validate".into())],
                output: Some("^hello validate$".into()),
                ..command(&["sh", "-c", "echo \"hello $WHO\" >&2"])
            }),
        ),
        check(
            "check:no-dir",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe { dir: Some(dir.path().join("nope")), ..command(&["true"]) }),
        ),
        check(
            "check:bad-pattern",
            "command",
            SECOND * 5,
            Probe::Command(CommandProbe { output: Some("(".into()), ..command(&["true"]) }),
        ),
    ];
    let (_, found) = run(checks);
    assert_eq!(said(finding(&found, "check:ok")?), "ok: `sh -c 'echo hello'`: exit 0, output matches /^hello$/");
    assert_eq!(
        said(finding(&found, "check:wrong-exit")?),
        "failed: `sh -c 'echo started; echo broken pipe dream >&2; exit 3'`: expected exit 0, got exit 3 [output ends: started\nbroken pipe dream]"
    );
    assert_eq!(said(finding(&found, "check:expected-exit")?), "ok: `sh -c 'exit 3'`: exit 3");
    assert_eq!(
        said(finding(&found, "check:wrong-output")?),
        "failed: `echo 0.9.3`: exit 0, but the output does not match /^1\\./ [output ends: 0.9.3]"
    );
    let hangs = finding(&found, "check:hangs")?;
    assert!(hangs.timed_out, "{hangs:?}");
    assert_eq!(
        said(hangs),
        "failed: `sh -c 'echo working on it; exec sleep 30'`: timed out after 500ms and was stopped [output so far: working on it]"
    );
    assert_eq!(
        said(finding(&found, "check:missing")?),
        "failed: `no-such-program-pi-validate`: no-such-program-pi-validate is not installed (not found on PATH)"
    );
    assert!(finding(&found, "check:dir-and-env")?.ok, "{:?}", found.get("check:dir-and-env"));
    assert!(finding(&found, "check:stderr-matches")?.ok, "{:?}", found.get("check:stderr-matches"));
    assert_eq!(said(finding(&found, "check:no-dir")?), "failed: `true`: its folder does not exist");
    assert!(said(finding(&found, "check:bad-pattern")?).starts_with("failed: the pattern /(/ cannot be read"));
    Ok(())
}

fn regex_escape(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '/' { c.to_string() } else { format!("\\{c}") }).collect()
}

/// A small HTTP server on loopback (a free port): `/hang` never answers, the paths of
/// `answers` answer their status and body, anything else 404.
fn serve(answers: &'static [(&'static str, u16, &'static str)]) -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || answer(stream, answers));
        }
    });
    Ok(port)
}

fn answer(mut stream: TcpStream, answers: &[(&str, u16, &str)]) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    if path == "/hang" {
        std::thread::sleep(Duration::from_secs(30));
        return Ok(());
    }
    let (status, body) = answers.iter().find(|(p, _, _)| *p == path).map_or((404, "not found"), |(_, s, b)| (*s, *b));
    write!(stream, "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
}

/// A loopback port nothing listens on.
fn closed_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    listener.local_addr().map(|a| a.port())
}

fn http(url: String, status: u16, body: Option<&str>) -> Probe {
    Probe::Http(HttpProbe { url, status, body: body.map(str::to_owned) })
}

#[test]
fn http_checks_compare_status_and_body_through_a_real_client() -> TestResult {
    const ANSWERS: &[(&str, u16, &str)] = &[
        ("/health", 200, "ok\n"),
        ("/status", 200, "{\"memories\": 12}"),
        ("/broken", 500, "database is locked\nTraceback ..."),
        ("/moved", 301, ""),
    ];
    let port = serve(ANSWERS)?;
    let closed = closed_port()?;
    let url = |path: &str| format!("http://127.0.0.1:{port}{path}");
    let checks = vec![
        check("check:health", "http", SECOND * 5, http(url("/health"), 200, Some("^ok$"))),
        check("check:status", "http", SECOND * 5, http(url("/status"), 200, Some("\"memories\": \\d+"))),
        check("check:broken", "http", SECOND * 5, http(url("/broken"), 200, None)),
        check("check:wrong-body", "http", SECOND * 5, http(url("/health"), 200, Some("^healthy"))),
        check("check:not-found", "http", SECOND * 5, http(url("/nope"), 404, None)),
        check("check:redirect-is-not-followed", "http", SECOND * 5, http(url("/moved"), 301, None)),
        check("check:refused", "http", SECOND * 5, http(format!("http://127.0.0.1:{closed}/"), 200, None)),
        check("check:hangs", "http", Duration::from_millis(500), http(url("/hang"), 200, None)),
        check("check:not-a-url", "http", SECOND * 5, http("127.0.0.1 health".into(), 200, None)),
    ];
    let (_, found) = run(checks);
    let base = format!("http://127.0.0.1:{port}");
    let got = |id: &str| finding(&found, id).map(|f| said(f).replace(&base, "URL"));
    assert_eq!(got("check:health")?, "ok: GET URL/health: 200, body matches /^ok$/");
    assert_eq!(got("check:status")?, "ok: GET URL/status: 200, body matches /\"memories\": \\d+/");
    assert_eq!(
        got("check:broken")?,
        "failed: GET URL/broken: expected status 200, got 500 [body starts: database is locked\nTraceback ...]"
    );
    assert_eq!(
        got("check:wrong-body")?,
        "failed: GET URL/health: 200, but the body does not match /^healthy/ [body starts: ok\n]"
    );
    assert_eq!(got("check:not-found")?, "ok: GET URL/nope: 404");
    assert_eq!(got("check:redirect-is-not-followed")?, "ok: GET URL/moved: 301");
    assert_eq!(got("check:refused")?, format!("failed: GET http://127.0.0.1:{closed}/: connection refused"));
    let hangs = finding(&found, "check:hangs")?;
    assert!(hangs.timed_out, "{hangs:?}");
    assert_eq!(got("check:hangs")?, "failed: GET URL/hang: no answer within 500ms");
    assert!(got("check:not-a-url")?.starts_with("failed: GET 127.0.0.1 health: "), "{}", got("check:not-a-url")?);
    Ok(())
}

#[test]
fn files_must_exist_and_links_must_resolve() -> TestResult {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("settings.json"), "{}\n")?;
    std::os::unix::fs::symlink(dir.path().join("settings.json"), dir.path().join("linked.json"))?;
    std::os::unix::fs::symlink(dir.path().join("gone.json"), dir.path().join("dangling.json"))?;
    let file = |name: &str| Probe::File(dir.path().join(name));
    let checks = vec![
        check("check:file", "file", SECOND, file("settings.json")),
        check("check:folder", "file", SECOND, file("")),
        check("check:link", "file", SECOND, file("linked.json")),
        check("check:dangling", "file", SECOND, file("dangling.json")),
        check("check:missing", "file", SECOND, file("missing.json")),
    ];
    let (run, found) = run(checks);
    let root = dir.path().display().to_string();
    let got = |id: &str| finding(&found, id).map(|f| said(f).replace(&root, "DIR"));
    assert_eq!(got("check:file")?, "ok: exists: a file");
    assert_eq!(got("check:folder")?, "ok: exists: a folder");
    assert_eq!(got("check:link")?, "ok: exists: a link to DIR/settings.json, a file");
    assert_eq!(
        got("check:dangling")?,
        "failed: expected it to exist, got a link to DIR/gone.json, which does not exist"
    );
    assert_eq!(got("check:missing")?, "failed: expected it to exist, got nothing");
    assert_eq!(run.report(false).items[0].path.as_deref(), Some(dir.path().join("settings.json").as_path()));
    Ok(())
}

fn prereq(script: &str, version: Option<&str>, env: &[(&str, &str)]) -> Probe {
    Probe::Prereq(PrereqProbe {
        argv: vec!["sh".into(), "-c".into(), script.into()],
        env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        version: version.map(str::to_owned),
    })
}

#[test]
fn prerequisites_meet_their_version_with_their_env() -> TestResult {
    let checks = vec![
        check("prereq:ok", "prereq", SECOND * 5, prereq("echo tool 1.2.3", Some(">=1.0"), &[])),
        check("prereq:old", "prereq", SECOND * 5, prereq("echo tool 1.2.3", Some(">=1.4"), &[])),
        check("prereq:any", "prereq", SECOND * 5, prereq("echo tool 1.2.3", None, &[])),
        check(
            "prereq:env",
            "prereq",
            SECOND * 5,
            prereq("echo \"v$TOOL_VERSION\"", Some(">=2.1"), &[("TOOL_VERSION", "2.1.0")]),
        ),
        check("prereq:fails", "prereq", SECOND * 5, prereq("echo cannot load settings >&2; exit 1", None, &[])),
        check("prereq:silent", "prereq", SECOND * 5, prereq("true", Some(">=1"), &[])),
        check(
            "prereq:missing",
            "prereq",
            SECOND * 5,
            Probe::Prereq(PrereqProbe {
                argv: vec!["no-such-tool-pi".into(), "--version".into()],
                env: vec![],
                version: None,
            }),
        ),
        check("prereq:hangs", "prereq", Duration::from_millis(300), prereq("sleep 30", None, &[])),
    ];
    let (_, found) = run(checks);
    let got = |id: &str| finding(&found, id).map(said);
    assert_eq!(got("prereq:ok")?, "ok: `sh -c 'echo tool 1.2.3'`: 1.2.3, meets >=1.0");
    assert_eq!(got("prereq:old")?, "failed: `sh -c 'echo tool 1.2.3'`: expected a version meeting >=1.4, got 1.2.3");
    assert_eq!(got("prereq:any")?, "ok: `sh -c 'echo tool 1.2.3'`: 1.2.3");
    assert_eq!(got("prereq:env")?, "ok: `sh -c 'echo \"v$TOOL_VERSION\"'`: 2.1.0, meets >=2.1");
    assert_eq!(
        got("prereq:fails")?,
        "failed: `sh -c 'echo cannot load settings >&2; exit 1'`: expected exit 0, got exit 1 [output ends: cannot load settings]"
    );
    assert_eq!(
        got("prereq:silent")?,
        "failed: `sh -c true`: expected a version meeting >=1, found no version in its output"
    );
    assert_eq!(
        got("prereq:missing")?,
        "failed: `no-such-tool-pi --version`: no-such-tool-pi is not installed (not found on PATH)"
    );
    assert_eq!(got("prereq:hangs")?, "failed: `sh -c 'sleep 30'`: timed out after 300ms and was stopped");
    Ok(())
}

fn example() -> Result<(common::manifest::Manifest, tempfile::TempDir), Box<dyn std::error::Error>> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pi-host/pi-bootstrap.yaml");
    let text = std::fs::read_to_string(&file)?;
    let home = tempfile::tempdir()?;
    let manifest = common::manifest::load_str(&file, &text, home.path(), &|_| None)?;
    Ok((manifest, home))
}

#[test]
fn the_checks_come_from_the_manifest() -> TestResult {
    let (manifest, home) = example()?;
    let checks = bootstrap_validate::plan(&manifest, bootstrap_validate::DEFAULT_TIMEOUT);
    let listed: Vec<String> = checks
        .iter()
        .map(|c| {
            let what = match &c.probe {
                Probe::Prereq(p) => format!("{} env={:?} version={:?}", p.argv.join(" "), p.env, p.version),
                Probe::Service(s) => format!(
                    "{} timers={:?} job={} health={}",
                    s.unit,
                    s.timers,
                    s.job,
                    match &s.health {
                        Some(Health::Http(h)) => format!("GET {} {} {:?}", h.url, h.status, h.body),
                        Some(Health::Tcp(a)) => format!("TCP {a}"),
                        Some(Health::Command(c)) => c.shown.clone(),
                        None => "none".into(),
                    }
                ),
                Probe::Http(h) => format!("GET {} {} {:?}", h.url, h.status, h.body),
                Probe::Command(c) => format!(
                    "{} dir={:?} env={:?} exit={} output={:?}",
                    c.shown,
                    c.dir.as_ref().map(|d| d.strip_prefix(home.path()).unwrap_or(d).display().to_string()),
                    c.env,
                    c.exit,
                    c.output
                ),
                Probe::File(f) => format!("{}", f.strip_prefix(home.path()).unwrap_or(f).display()),
                Probe::Invalid(why) => why.clone(),
            };
            format!("{:<40} {:<8} {:>4}s  {what}", c.id, c.kind, c.timeout.as_secs())
        })
        .collect();
    insta::assert_snapshot!(listed.join("\n"));
    let only = bootstrap_validate::select(checks.clone(), &["service:copyparty".into(), "route:pi-host:2".into()])?;
    assert_eq!(only.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["service:copyparty", "route:pi-host:2"]);
    let unknown = bootstrap_validate::select(checks, &["service:nope".into()]).err().map(|e| e.to_string());
    assert!(
        unknown
            .is_some_and(|e| e.starts_with("--only service:nope: no such item in this step (its items: prereq:git, "))
    );
    Ok(())
}

/// A run of checks whose findings do not depend on the machine, for the output shapes.
fn sample_run(dir: &Path) -> Run {
    let with_output = CommandProbe { output: Some("^1\\.".into()), ..command(&["echo", "0.9.3"]) };
    let checks = vec![
        check("check:greeting", "command", SECOND * 5, Probe::Command(command(&["echo", "hello"]))),
        check("check:bun-version", "command", SECOND * 5, Probe::Command(with_output)),
        check(
            "check:typecheck",
            "command",
            Duration::from_millis(300),
            Probe::Command(CommandProbe {
                dir: Some(dir.to_path_buf()),
                ..command(&[
                    "sh",
                    "-c",
                    "printf 'src/a.ts(3,1): error <TS2322> & \\033[31mred\\033[0m\\n'; exec sleep 30",
                ])
            }),
        ),
        check("check:settings", "file", SECOND, Probe::File(dir.join("settings.json"))),
    ];
    bootstrap_validate::run(checks, Verbosity::Quiet)
}

#[test]
fn the_report_shows_each_check_with_its_time_and_what_came_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = sample_run(dir.path());
    let report = run.report(false);
    assert_eq!(report.exit_code(), 1);
    assert_eq!((report.summary.ok, report.summary.failed), (1, 3));
    let redactions = Redactions::new().durations().path(dir.path(), "[TMP]");
    let human = common::output::render_human(&report, dir.path(), Verbosity::Normal, false);
    insta::assert_snapshot!("human", redactions.apply(&human));
    let json = common::output::render_json(&report);
    insta::assert_snapshot!("json", redactions.apply(&json));
    let recap = redactions.apply(run.recap());
    assert_eq!(recap, "bootstrap-validate: 4 checks in parallel took [TIME]; slowest check:typecheck ([TIME])");
    Ok(())
}

#[test]
fn the_junit_file_is_valid_against_a_junit_schema() -> TestResult {
    let dir = tempfile::tempdir()?;
    let run = sample_run(dir.path());
    let file = dir.path().join("reports/validate.xml");
    run.write_junit(&file, Some("pi-host & co"))?;
    let xsd = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/junit.xsd");
    let out = Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(&file).output()?;
    let said = test_support::process::text(&out);
    assert!(out.status.success(), "xmllint refused the JUnit file:\n{said}\n{}", std::fs::read_to_string(&file)?);
    assert!(said.contains("validates"), "{said}");
    // A file the schema refuses is refused: the check is not vacuous.
    let broken = dir.path().join("broken.xml");
    std::fs::write(&broken, std::fs::read_to_string(&file)?.replace("tests=\"4\"", "tests=\"four\""))?;
    let out = Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(&broken).output()?;
    assert!(!out.status.success(), "xmllint accepted tests=\"four\"");
    let xml = std::fs::read_to_string(&file)?;
    let redactions = Redactions::new()
        .durations()
        .path(dir.path(), "[TMP]")
        .rule(r#"time="[0-9.]+""#, r#"time="[TIME]""#)
        .rule(r#"timestamp="[0-9T:-]+""#, r#"timestamp="[WHEN]""#);
    insta::assert_snapshot!(redactions.apply(&xml));
    Ok(())
}
