//! What each kind of check does, bounded by its deadline: commands through
//! `common::exec` (killed at the deadline), HTTP through `ureq` (a timeout on the whole
//! call), TCP with a connect timeout, files with one `stat`. Each finding says what was
//! expected and what came back.

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use common::exec::tail;
use common::exec::{Cmd, ExecError, Output};
use common::systemd::UnitState;
use regex::{Regex, RegexBuilder};

use crate::plan::{CommandProbe, Health, HttpProbe, PrereqProbe, ServiceProbe};

/// How much of a body is read (a body pattern sees at most this much).
const BODY_LIMIT: u64 = 1024 * 1024;
/// How much of a body a failure shows (its start).
const BODY_SHOWN: usize = 200;
/// How much of a command's output a failure shows (its end).
const OUTPUT_SHOWN: usize = 400;
/// The pause between connection attempts to a service that is active but not yet
/// listening.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    /// It ran out of time (and its command was killed).
    pub timed_out: bool,
    /// One line: what was found, or what was expected and what came back.
    pub summary: String,
    /// What came back, when it helps: the end of a command's output, the start of a
    /// body.
    pub evidence: Option<Evidence>,
}

/// What came back, labelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// `output ends`, `output so far`, `body starts`.
    pub label: &'static str,
    pub text: String,
}

impl Finding {
    pub fn ok(summary: impl Into<String>) -> Finding {
        Finding { ok: true, timed_out: false, summary: summary.into(), evidence: None }
    }
    pub fn failed(summary: impl Into<String>) -> Finding {
        Finding { ok: false, timed_out: false, summary: summary.into(), evidence: None }
    }
    pub fn timed_out(summary: impl Into<String>) -> Finding {
        Finding { ok: false, timed_out: true, summary: summary.into(), evidence: None }
    }
    fn with(mut self, label: &'static str, text: &str) -> Finding {
        if !text.trim().is_empty() {
            self.evidence = Some(Evidence { label, text: text.to_owned() });
        }
        self
    }
}

/// A duration as people write it: `10s`, `1.5s`, `250ms`.
pub fn human(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))
}

/// A pattern where `^` and `$` match at line starts and ends (so `^ok$` matches the
/// body "ok\n").
fn pattern(re: &str) -> Result<Regex, String> {
    RegexBuilder::new(re).multi_line(true).build().map_err(|e| format!("the pattern /{re}/ cannot be read: {e}"))
}

/// The start of `text`, at most `max` bytes, cut at a character boundary.
pub fn head(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn output_text(out: &Output) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

fn exit_text(code: Option<i32>) -> String {
    code.map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"))
}

/// Runs `cmd` until `deadline`; a failure to start or a timeout is already a finding.
fn run_cmd(cmd: Cmd, shown: &str, timeout: Duration) -> Result<Output, Finding> {
    match cmd.output() {
        Ok(out) => Ok(out),
        Err(ExecError::NotFound { program }) => {
            Err(Finding::failed(format!("`{shown}`: {program} is not installed (not found on PATH)")))
        }
        Err(ExecError::TimedOut { tail: seen, .. }) => {
            Err(Finding::timed_out(format!("`{shown}`: timed out after {} and was stopped", human(timeout)))
                .with("output so far", &tail(&seen, OUTPUT_SHOWN)))
        }
        Err(e) => Err(Finding::failed(format!("`{shown}`: {e}"))),
    }
}

/// A command: exit code, then output pattern (stdout or stderr).
pub fn command(probe: &CommandProbe, deadline: Instant, timeout: Duration) -> Finding {
    let shown = &probe.shown;
    let Some(program) = probe.argv.first() else { return Finding::failed("an empty command") };
    if let Some(dir) = &probe.dir
        && !dir.is_dir()
    {
        return Finding::failed(format!("`{shown}`: its folder does not exist"));
    }
    let re = match probe.output.as_deref().map(pattern).transpose() {
        Ok(re) => re,
        Err(why) => return Finding::failed(why),
    };
    let mut cmd = Cmd::new(program.clone()).args(probe.argv.iter().skip(1).cloned()).timeout(remaining(deadline));
    for (key, value) in &probe.env {
        cmd = cmd.env(key, value);
    }
    if let Some(dir) = &probe.dir {
        cmd = cmd.current_dir(dir);
    }
    let out = match run_cmd(cmd, shown, timeout) {
        Ok(out) => out,
        Err(finding) => return finding,
    };
    let seen = tail(&output_text(&out), OUTPUT_SHOWN);
    if out.code != Some(probe.exit) {
        return Finding::failed(format!("`{shown}`: expected exit {}, got {}", probe.exit, exit_text(out.code)))
            .with("output ends", &seen);
    }
    match (&re, &probe.output) {
        (Some(re), Some(text)) if !(re.is_match(&out.stdout) || re.is_match(&out.stderr)) => {
            let got = if seen.is_empty() { ", got no output" } else { "" };
            Finding::failed(format!("`{shown}`: {}, but the output does not match /{text}/{got}", exit_text(out.code)))
                .with("output ends", &seen)
        }
        (Some(_), Some(text)) => Finding::ok(format!("`{shown}`: {}, output matches /{text}/", exit_text(out.code))),
        _ => Finding::ok(format!("`{shown}`: {}", exit_text(out.code))),
    }
}

/// A prerequisite: its check command runs and its version meets the requirement (the
/// version logic of `bootstrap-prereqs`).
pub fn prereq(probe: &PrereqProbe, deadline: Instant, timeout: Duration) -> Finding {
    let shown = common::exec::display_argv(&probe.argv);
    let mut cmd = Cmd::from_argv(&probe.argv).timeout(remaining(deadline));
    for (key, value) in &probe.env {
        cmd = cmd.env(key, value);
    }
    let out = match run_cmd(cmd, &shown, timeout) {
        Ok(out) => out,
        Err(finding) => return finding,
    };
    let text = output_text(&out);
    if !out.success() {
        return Finding::failed(format!("`{shown}`: expected exit 0, got {}", exit_text(out.code)))
            .with("output ends", &tail(&text, OUTPUT_SHOWN));
    }
    let version = bootstrap_prereqs::extract_version(&text);
    match (&probe.version, version) {
        (None, Some(version)) => Finding::ok(format!("`{shown}`: {version}")),
        (None, None) => Finding::ok(format!("`{shown}`: exit 0")),
        (Some(want), None) => {
            Finding::failed(format!("`{shown}`: expected a version meeting {want}, found no version in its output"))
                .with("output ends", &tail(&text, OUTPUT_SHOWN))
        }
        (Some(want), Some(version)) => match bootstrap_prereqs::satisfies(&version, want) {
            Ok(true) => Finding::ok(format!("`{shown}`: {version}, meets {want}")),
            Ok(false) => Finding::failed(format!("`{shown}`: expected a version meeting {want}, got {version}")),
            Err(why) => Finding::failed(why),
        },
    }
}

fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else { return false };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

fn is_refused(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        ureq::Error::ConnectionFailed => true,
        _ => false,
    }
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::ConnectionFailed => "connection refused".to_owned(),
        ureq::Error::HostNotFound => "host not found".to_owned(),
        ureq::Error::BadUri(why) => format!("not a url: {why}"),
        other => other.to_string(),
    }
}

/// One GET: the status and the start of the body, or what went wrong.
fn get(url: &str, deadline: Instant) -> Result<(u16, String), ureq::Error> {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .user_agent("pi-bootstrap-validate")
        .timeout_global(Some(remaining(deadline)));
    // A health check of this machine never goes through a proxy.
    if is_loopback_url(url) {
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config.build().into();
    let mut response = agent.get(url).call()?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    response.body_mut().as_reader().take(BODY_LIMIT).read_to_end(&mut body).map_err(ureq::Error::Io)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// An HTTP GET: the status, then the body pattern. With `retry_refused` (a service
/// systemd says is active, that may not listen yet), a refused connection is tried
/// again until the deadline.
pub fn http(probe: &HttpProbe, deadline: Instant, timeout: Duration, retry_refused: bool) -> Finding {
    let url = &probe.url;
    let re = match probe.body.as_deref().map(pattern).transpose() {
        Ok(re) => re,
        Err(why) => return Finding::failed(why),
    };
    let mut tries = 0u32;
    let (status, body) = loop {
        tries += 1;
        match get(url, deadline) {
            Ok(answer) => break answer,
            Err(e) if retry_refused && is_refused(&e) && Instant::now() + RETRY_PAUSE < deadline => {
                std::thread::sleep(RETRY_PAUSE);
            }
            Err(ureq::Error::Timeout(_)) => {
                return Finding::timed_out(format!("GET {url}: no answer within {}", human(timeout)));
            }
            Err(e) => {
                let again = if tries > 1 { format!(" (tried for {})", human(timeout)) } else { String::new() };
                return Finding::failed(format!("GET {url}: {}{again}", describe(&e)));
            }
        }
    };
    let start = head(&body, BODY_SHOWN);
    if status != probe.status {
        return Finding::failed(format!("GET {url}: expected status {}, got {status}", probe.status))
            .with("body starts", &start);
    }
    match (&re, &probe.body) {
        (Some(re), Some(text)) if !re.is_match(&body) => {
            let got = if body.is_empty() { ", got an empty body" } else { "" };
            Finding::failed(format!("GET {url}: {status}, but the body does not match /{text}/{got}"))
                .with("body starts", &start)
        }
        (Some(_), Some(text)) => Finding::ok(format!("GET {url}: {status}, body matches /{text}/")),
        _ => Finding::ok(format!("GET {url}: {status}")),
    }
}

/// A TCP connect to `host:port`.
pub fn tcp(addr: &str, deadline: Instant, timeout: Duration, retry_refused: bool) -> Finding {
    let addrs: Vec<_> = match addr.to_socket_addrs() {
        Ok(addrs) => addrs.collect(),
        Err(e) => return Finding::failed(format!("TCP {addr}: cannot resolve it: {e}")),
    };
    let mut tries = 0u32;
    loop {
        tries += 1;
        let mut last = None;
        for socket in &addrs {
            match TcpStream::connect_timeout(socket, remaining(deadline)) {
                Ok(_) => return Finding::ok(format!("TCP {addr}: connected")),
                Err(e) => last = Some(e),
            }
        }
        let Some(e) = last else { return Finding::failed(format!("TCP {addr}: no address to connect to")) };
        match e.kind() {
            std::io::ErrorKind::ConnectionRefused if retry_refused && Instant::now() + RETRY_PAUSE < deadline => {
                std::thread::sleep(RETRY_PAUSE);
            }
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                return Finding::timed_out(format!("TCP {addr}: no answer within {}", human(timeout)));
            }
            std::io::ErrorKind::ConnectionRefused => {
                let again = if tries > 1 { format!(" (tried for {})", human(timeout)) } else { String::new() };
                return Finding::failed(format!("TCP {addr}: connection refused{again}"));
            }
            _ => return Finding::failed(format!("TCP {addr}: {e}")),
        }
    }
}

/// A file or folder that must exist; a link must resolve.
pub fn file(path: &Path) -> Finding {
    match (std::fs::symlink_metadata(path), std::fs::metadata(path)) {
        (Ok(link), Ok(meta)) => {
            let what = if meta.is_dir() { "a folder" } else { "a file" };
            if link.file_type().is_symlink() {
                let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
                Finding::ok(format!("exists: a link to {to}, {what}"))
            } else {
                Finding::ok(format!("exists: {what}"))
            }
        }
        (Ok(link), Err(_)) if link.file_type().is_symlink() => {
            let to = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
            Finding::failed(format!("expected it to exist, got a link to {to}, which does not exist"))
        }
        (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Finding::failed("expected it to exist, got nothing"),
        (Err(e), _) | (_, Err(e)) => Finding::failed(format!("cannot read it: {e}")),
    }
}

/// What systemd says of a unit, in words: `active (running)`.
fn state_text(state: &UnitState) -> String {
    let mut text = format!("{} ({})", state.active_state, state.sub_state);
    match state.properties.get("Result").map(String::as_str) {
        Some(result) if !result.is_empty() && result != "success" && state.active_state == "failed" => {
            text.push_str(&format!(", result {result}"));
        }
        _ => {}
    }
    text
}

/// Is the unit's state what it should be? `Ok(summary)` or `Err(summary)`.
fn judge_state(probe: &ServiceProbe, state_of: &dyn Fn(&str) -> Option<UnitState>) -> Result<String, String> {
    let get = |unit: &str| -> Result<UnitState, String> {
        let state = state_of(unit).ok_or_else(|| format!("systemd said nothing of {unit}"))?;
        if state.exists() {
            Ok(state)
        } else {
            Err(format!("expected {unit} to be installed, got {} (is bootstrap-services done?)", state.load_state))
        }
    };
    let service = get(&probe.unit)?;
    if !probe.job {
        return if service.is_active() {
            Ok(state_text(&service))
        } else {
            Err(format!("expected {} active, got {}", probe.unit, state_text(&service)))
        };
    }
    let mut fine = Vec::new();
    for timer in &probe.timers {
        let state = get(timer)?;
        if !state.is_active() {
            return Err(format!("expected {timer} active, got {}", state_text(&state)));
        }
        fine.push(format!("{timer} {}", state_text(&state)));
    }
    if service.active_state == "failed" {
        return Err(format!("its last run failed: {} {}", probe.unit, state_text(&service)));
    }
    if fine.is_empty() {
        fine.push(format!("{} {} (a job without a timer)", probe.unit, state_text(&service)));
    }
    Ok(fine.join(", "))
}

/// A service: its state from the batched systemd query (`states`, or why there is
/// none), then its health check. Both are reported; both must pass.
pub fn service(
    probe: &ServiceProbe,
    states: &Result<Vec<UnitState>, String>,
    deadline: Instant,
    timeout: Duration,
) -> Finding {
    let judged = match states {
        Err(why) => Err(why.clone()),
        Ok(states) => judge_state(probe, &|unit| states.iter().find(|s| s.id == unit).cloned()),
    };
    // An active service (not a job) may still be opening its port.
    let retry = judged.is_ok() && !probe.job;
    let health = probe.health.as_ref().map(|health| match health {
        Health::Http(http_probe) => http(http_probe, deadline, timeout, retry),
        Health::Tcp(addr) => tcp(addr, deadline, timeout, retry),
        Health::Command(cmd) => command(cmd, deadline, timeout),
    });
    let (state_ok, state_summary) = match judged {
        Ok(summary) => (true, summary),
        Err(summary) => (false, summary),
    };
    match health {
        None => Finding { ok: state_ok, timed_out: false, summary: state_summary, evidence: None },
        Some(health) => Finding {
            ok: state_ok && health.ok,
            timed_out: health.timed_out,
            summary: format!("{state_summary}; {}", health.summary),
            evidence: health.evidence,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_secs(10)), "10s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
    }

    #[test]
    fn tails_and_heads_cut_at_character_boundaries() {
        assert_eq!(tail("ab\n", 10), "ab");
        assert_eq!(tail("héllo", 4), "...llo");
        assert_eq!(head("héllo", 2), "h...");
    }

    #[test]
    fn patterns_match_at_line_ends() -> Result<(), String> {
        assert!(pattern("^ok$")?.is_match("ok\n"));
        assert!(pattern("^1\\.")?.is_match("warning\n1.4.2\n"));
        assert!(pattern("(").is_err_and(|e| e.contains("the pattern /(/ cannot be read")));
        Ok(())
    }

    #[test]
    fn only_loopback_urls_skip_the_proxy() {
        assert!(is_loopback_url("http://127.0.0.1:8080/healthz"));
        assert!(is_loopback_url("http://localhost/"));
        assert!(is_loopback_url("http://[::1]:7301/health"));
        assert!(!is_loopback_url("https://example.com/"));
    }

    fn unit(id: &str, load: &str, active: &str, sub: &str) -> UnitState {
        UnitState {
            id: id.into(),
            load_state: load.into(),
            active_state: active.into(),
            sub_state: sub.into(),
            ..UnitState::default()
        }
    }

    #[test]
    fn a_job_needs_its_timers_active_and_no_failed_run() {
        let job = ServiceProbe { unit: "s.service".into(), timers: vec!["s.timer".into()], job: true, health: None };
        let states = [unit("s.service", "loaded", "inactive", "dead"), unit("s.timer", "loaded", "active", "waiting")];
        let of = |u: &str| states.iter().find(|s| s.id == u).cloned();
        assert_eq!(judge_state(&job, &of), Ok("s.timer active (waiting)".to_owned()));
        let stopped = [unit("s.service", "loaded", "inactive", "dead"), unit("s.timer", "loaded", "inactive", "dead")];
        let of = |u: &str| stopped.iter().find(|s| s.id == u).cloned();
        assert_eq!(judge_state(&job, &of), Err("expected s.timer active, got inactive (dead)".to_owned()));
        let failed = [unit("s.service", "loaded", "failed", "failed"), unit("s.timer", "loaded", "active", "waiting")];
        let of = |u: &str| failed.iter().find(|s| s.id == u).cloned();
        assert_eq!(judge_state(&job, &of), Err("its last run failed: s.service failed (failed)".to_owned()));
    }

    #[test]
    fn a_missing_unit_is_named() {
        let svc = ServiceProbe { unit: "x.service".into(), timers: vec![], job: false, health: None };
        let states = [unit("x.service", "not-found", "inactive", "dead")];
        let of = |u: &str| states.iter().find(|s| s.id == u).cloned();
        assert_eq!(
            judge_state(&svc, &of),
            Err("expected x.service to be installed, got not-found (is bootstrap-services done?)".to_owned())
        );
    }
}
