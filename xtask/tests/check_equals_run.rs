//! `--check` computes what is due with the same inputs the run will use (issue 15, item
//! 4): for every step of the restore chain, on several drifted hosts, the `--check
//! --json` report equals the run's `--json` report with `changed` in place of
//! `would_change` (the JSON's status of what the human report calls "would change").
//!
//! The host, in a sandbox with a real `systemd --user`, nginx, restic and git (no
//! network, no package manager), is a smaller cousin of `interrupt.rs`'s: two
//! prerequisites (`sh`, and a marker file in HOME installed by a script of the repo),
//! a pi-config "remote" with two links, two folders, a dependency
//! install, the unit of a small web service (`python3 -m http.server` on loopback,
//! serving its data path) with its env file (its secret exported as `WEB_TOKEN`, a
//! canary), an nginx site proxying to it, a managed block in a `~/.bashrc` that holds
//! the user's own lines, and a `backup`-class data path backed up with restic by the
//! old host beforehand (the restic password is a canary too).
//!
//! The states, in this order, each reached from the one before (every state but the
//! first starts from the host the previous state's runs converged):
//!
//! - `fresh`: a fresh HOME with only what the user brings (their `~/.bashrc`, their own
//!   file where a link goes, the restic password); nothing done yet (the marker cannot
//!   be installed: its script comes with the repo, cloned by a later step);
//! - `second-run`: nothing drifted, but the marker is still missing (its script is
//!   there now);
//! - `prereq-missing`: the marker removed;
//! - `link-removed-folder-mode`: a link removed and a folder's mode changed;
//! - `unit-edited-in-repo`: the service's unit file edited in the repo's work tree (the
//!   service must restart);
//! - `env-file-missing`: the env file removed;
//! - `service-stopped`: the service stopped;
//! - `disabled-but-running`: the service disabled, still running;
//! - `shell-block-edited`: a line inside the managed block of `~/.bashrc` edited;
//! - `nginx-site-changed`: the installed nginx site edited;
//! - `data-emptied-after-backup`: a `bootstrap-data backup` taken, then the data path
//!   emptied;
//! - `converged-again`: nothing drifted, at the end.
//!
//! For each state and each step in chain order (`bootstrap_restore::STEPS`), the step
//! runs with `--check --json`, then right after for real with `--json` (the steps
//! before it have already run for real, as in a real restore), and the two reports must
//! match: the same item ids in the same order; each check status the run's, with
//! `would_change` for `changed`; the same `kind`, `path` and `diff`; a `would_change`
//! item with a detail that says what; the check marked `"check": true` with no
//! `commands`. Details are otherwise not compared (ages, timings, "would X" against
//! "X-ed"); every pair that is not ok is shown with `--nocapture`, and a run's
//! `changed` detail that still says "would ..." is shown as `WORDING` (not a
//! failure). Each state also
//! names the items its drift must show (not ok in the check or the run), so a drift
//! that silently did nothing cannot pass for agreement.
//!
//! Known discrepancies in code this test may not change are listed in [`KNOWN`], each
//! with a `// KNOWN:` comment; they are shown and skipped, and one no longer seen is
//! said so (so it can be removed). Every other mismatch is collected over all states
//! and steps and fails the test at the end, one line each (state, step, id, check
//! status and detail against run status and detail). Neither canary may appear in any
//! output of any run.

#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bootstrap_restore::{ChainStep, STEPS};
use common::sandbox::Machine;
use serde_json::Value;
use test_support::git::git;
use test_support::process::{no_canary, text};
use test_support::sandbox::{isolated_shown, progress as show};
use test_support::tree::{set_mode, write_file as write};
use test_support::workspace::built_binaries;

type Error = Box<dyn std::error::Error>;
type TestResult = Result<(), Error>;

/// The env file's secret, exported as `WEB_TOKEN`: never printed.
const TOKEN: &str = "canary-check-token-5d2a71";
/// The restic password: never printed.
const PASSWORD: &str = "canary-check-password-e40c";
const CANARIES: [&str; 2] = [TOKEN, PASSWORD];

/// The manifest's host name, under which the old host's data was backed up.
const HOST: &str = "check-host";

/// The user's own lines in `~/.bashrc`, there before the first step.
const USER_BASHRC: &str = "# my own bashrc\nexport EDITOR=vi\n";
/// The JSON status of an item a run would change (`Status::WouldChange`, serialized
/// snake_case; the human report says "would change").
const WOULD: &str = "would_change";

/// How many files the data path holds.
const DATA_FILES: usize = 20;

/// A discrepancy known in code this test may not change: in `state`, the item `id` of
/// `step` is `check` under `--check` and `run` in the run (`"-"`: absent).
struct Known {
    state: &'static str,
    step: &'static str,
    id: &'static str,
    check: &'static str,
    run: &'static str,
}

/// The known discrepancies, skipped (and shown) until their step is fixed.
const KNOWN: &[Known] = &[];

/// Replaces `from` by `to` in the file at `path`, which must hold it.
fn edit(path: &Path, from: &str, to: &str) -> TestResult {
    let text = fs::read_to_string(path)?;
    if !text.contains(from) {
        return Err(format!("{} does not hold {from:?}:\n{text}", path.display()).into());
    }
    fs::write(path, text.replacen(from, to, 1))?;
    Ok(())
}

/// The sandbox and the host in it.
struct Host {
    machine: Machine,
    manifest: PathBuf,
}

/// One drifted state: its name, how the host is brought into it, and the items its
/// drift must show (`step`, `id`: not ok in the check or the run).
struct State {
    name: &'static str,
    drift: fn(&Host) -> TestResult,
    shows: &'static [(&'static str, &'static str)],
}

impl Host {
    fn home(&self) -> PathBuf {
        self.machine.layout.home()
    }

    /// The old host's pi-config remote and its backup (made with restic itself, then
    /// removed: the machine is lost), the manifest, nginx running, and what the user
    /// brings to the fresh HOME.
    fn prepare(mut machine: Machine) -> Result<Host, Error> {
        machine.start_nginx()?;
        let layout = machine.layout.clone();
        let origin = layout.root.join("origin");
        write(&origin.join(".gitignore"), "data/\nvendor/\n")?;
        write(&origin.join("pi/settings.json"), "{\"theme\": \"dark\"}\n")?;
        write(&origin.join("pi/prompts/review.md"), "Review the change.\n")?;
        write(&origin.join("services/web/README"), "The web service serves ~/pi-config/data/web.\n")?;
        write(&origin.join("vendor.lock"), "left-pad 1.3.0\n")?;
        write(
            &origin.join("systemd/web.service"),
            "[Unit]\nDescription=the check test's web service\n[Service]\nType=simple\n\
             EnvironmentFile=%h/.config/web/web.env\n\
             ExecStart=/usr/bin/python3 -m http.server 7621 --bind 127.0.0.1 --directory %h/pi-config/data/web\n\
             Restart=on-failure\n[Install]\nWantedBy=default.target\n",
        )?;
        write(
            &origin.join("nginx/web.conf"),
            "server {\n    listen 127.0.0.1:8621;\n    location /web/ { proxy_pass http://127.0.0.1:7621/; }\n}\n",
        )?;
        let script = origin.join("scripts/install-marker.sh");
        write(
            &script,
            "#!/bin/sh\nmkdir -p \"$HOME/.local/share/check\"\necho 'marker 1.2.0' > \"$HOME/.local/share/check/marker\"\n",
        )?;
        set_mode(&script, 0o755)?;
        write(&origin.join("shell/check.sh"), "export PI_CHECK=1\nalias pic='echo check'\n")?;
        git(&origin, &["init", "--quiet"])?;
        git(&origin, &["add", "--all"])?;
        git(&origin, &["commit", "--quiet", "-m", "pi-config"])?;

        // The old host's data, backed up under the manifest's host name.
        let home = layout.home();
        let data = home.join("pi-config/data/web");
        write(&data.join("hello.txt"), "hello from the old host\n")?;
        for i in 0..DATA_FILES {
            write(&data.join(format!("files/f{i:02}.txt")), &format!("file {i} of the old host\n"))?;
        }
        let password = layout.root.join("restic-password");
        fs::write(&password, format!("{PASSWORD}\n"))?;
        let out = Command::new("restic")
            .args(["init"])
            .env("RESTIC_REPOSITORY", layout.backup_repo())
            .env("RESTIC_PASSWORD_FILE", &password)
            .env("RESTIC_CACHE_DIR", layout.root.join("restic-cache"))
            .output()?;
        if !out.status.success() {
            return Err(format!("restic init: {}", text(&out)).into());
        }
        let out = Command::new("restic")
            .args(["backup", "--host", HOST, "--tag", "pi-bootstrap", &data.display().to_string()])
            .env("RESTIC_REPOSITORY", layout.backup_repo())
            .env("RESTIC_PASSWORD_FILE", &password)
            .env("RESTIC_CACHE_DIR", layout.root.join("restic-cache"))
            .output()?;
        if !out.status.success() {
            return Err(format!("restic backup: {}", text(&out)).into());
        }
        fs::remove_dir_all(home.join("pi-config"))?;

        let manifest = layout.root.join("pi-bootstrap.yaml");
        fs::write(
            &manifest,
            format!(
                "version: 1
host: {HOST}
prereqs:
  - name: sh
    check: [sh, -c, 'echo sh 5.2']
    install: {{apt: dash}}
  - name: marker
    check: [sh, -c, 'cat \"$HOME/.local/share/check/marker\"']
    version: '>=1.0'
    install: {{script: scripts/install-marker.sh}}
repo:
  path: ~/pi-config
  url: file://{}
  deps:
    - name: vendor
      run: [sh, -c, 'mkdir -p vendor && cp vendor.lock vendor/installed.lock']
      lockfile: vendor.lock
      installed: vendor/installed.lock
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
  - name: prompts
    source: pi/prompts
    target: ~/.pi/agent/prompts
dirs:
  - name: pi-agent
    path: ~/.pi/agent
    mode: \"0700\"
  - name: web-config
    path: ~/.config/web
    mode: \"0700\"
services:
  - name: web
    purpose: serves the restored data over HTTP, behind nginx at /web/
    class: web
    source: services/web
    unit: systemd/web.service
    env_file: web
    data_path: ~/pi-config/data/web
    port: 7621
    health:
      http: {{url: 'http://127.0.0.1:7621/hello.txt', status: 200, body: '^hello'}}
    backup: backup
nginx:
  prefix: ${{NGINX_PREFIX}}
  conf: ${{NGINX_PREFIX}}/nginx.conf
  sites_available: ${{NGINX_PREFIX}}/sites-available
  sites_enabled: ${{NGINX_PREFIX}}/sites-enabled
  sites:
    - name: web
      source: nginx/web.conf
      routes:
        - url: http://127.0.0.1:8621/web/hello.txt
          status: 200
          body: '^hello from the old host'
shell:
  - name: check
    file: ~/.bashrc
    source: shell/check.sh
env:
  - name: web
    path: ~/.config/web/web.env
    vars: [WEB_TOKEN]
paths:
  - name: pi-config
    path: ~/pi-config
    role: the pi-config work tree
    backup: git
backup:
  repository: ${{PI_BACKUP_REPO}}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
validate:
  - name: every-file-back
    command: [sh, -c, 'ls \"$HOME/pi-config/data/web/files\" | wc -l']
    output: '^\\s*{DATA_FILES}\\s*$'
",
                origin.display()
            ),
        )?;
        for (path, content, mode) in [
            (".bashrc", USER_BASHRC.to_owned(), 0o644),
            (".pi/agent/settings.json", "{\"mine\": true}\n".to_owned(), 0o644),
            (".config/pi-bootstrap/restic-password", format!("{PASSWORD}\n"), 0o600),
        ] {
            let path = home.join(path);
            write(&path, &content)?;
            set_mode(&path, mode)?;
        }
        Ok(Host { machine, manifest })
    }

    fn systemctl(&self, args: &[&str]) -> TestResult {
        let out = self.machine.command("systemctl").arg("--user").args(args).output()?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("systemctl --user {}: {}", args.join(" "), text(&out)).into())
        }
    }

    /// A step binary with the sandbox's environment and the secret exported, run with
    /// `args` (the step's own, then `--json`, `--check` if asked): its exit code and
    /// its JSON report.
    fn json(&self, bin: &str, args: &[&str]) -> Result<(Option<i32>, Value), Error> {
        let mut cmd = self.machine.command(&built_binaries().join(bin).display().to_string());
        cmd.args(args).args(["--manifest", &self.manifest.display().to_string()]);
        cmd.env("WEB_TOKEN", TOKEN).env_remove("PI_BOOTSTRAP_CRASH_AT").env_remove("PI_BOOTSTRAP_LOCK_HANDOVER");
        let out = cmd.output()?;
        let label = format!("{bin} {}", args.join(" "));
        no_canary(&label, &text(&out), &CANARIES)?;
        let json = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{label} gave no JSON report ({e}), exit {:?}:\n{}", out.status.code(), text(&out)))?;
        Ok((out.status.code(), json))
    }

    /// Every step in chain order, its check right before its run: the mismatches, and
    /// the lines to show.
    fn check_then_run(&self, state: &State, seen_known: &mut BTreeSet<usize>) -> Result<Vec<String>, Error> {
        let mut mismatches = Vec::new();
        let mut not_ok: BTreeSet<(String, String)> = BTreeSet::new();
        for step in STEPS {
            let started = Instant::now();
            let (check_code, check) = self.json(step.bin, &[step.args, &["--check", "--json"]].concat())?;
            let (run_code, run) = self.json(step.bin, &[step.args, &["--json"]].concat())?;
            let items = |report: &Value| report["items"].as_array().cloned().unwrap_or_default();
            for item in items(&check).iter().chain(&items(&run)) {
                if item["status"] != "ok" {
                    not_ok.insert((step.bin.to_owned(), item["id"].as_str().unwrap_or("?").to_owned()));
                }
            }
            let (shown, found) = compare(state.name, step, &check, &run);
            for line in shown {
                show(&format!("  {line}"));
            }
            for m in found {
                match KNOWN.iter().position(|k| m.is(k, state.name, step.bin)) {
                    Some(k) => {
                        seen_known.insert(k);
                        show(&format!("  KNOWN (skipped): {}", m.line));
                    }
                    None => mismatches.push(m.line),
                }
            }
            show(&format!(
                "  {} check exit {check_code:?}, run exit {run_code:?}, {:.1} s",
                step.label(),
                started.elapsed().as_secs_f64()
            ));
        }
        for (step, id) in state.shows {
            if !not_ok.contains(&((*step).to_owned(), (*id).to_owned())) {
                mismatches.push(format!(
                    "{} / {step} / {id}: the drift shows nowhere: ok in both the check and the run",
                    state.name
                ));
            }
        }
        Ok(mismatches)
    }
}

/// One mismatch between a check and its run.
struct Mismatch {
    id: String,
    check: String,
    run: String,
    line: String,
}

impl Mismatch {
    fn is(&self, known: &Known, state: &str, step: &str) -> bool {
        known.state == state
            && known.step == step
            && known.id == self.id
            && known.check == self.check
            && known.run == self.run
    }
}

fn field<'a>(item: Option<&'a Value>, key: &str) -> &'a Value {
    item.map_or(&Value::Null, |i| &i[key])
}

fn status_of(item: Option<&Value>) -> String {
    item.map_or("-".to_owned(), |i| i["status"].as_str().unwrap_or("?").to_owned())
}

fn said(item: Option<&Value>) -> String {
    match item {
        None => "absent".to_owned(),
        Some(i) => format!("{} {:?}", i["status"].as_str().unwrap_or("?"), i["detail"].as_str().unwrap_or("")),
    }
}

/// The check and the run of one step compared: the lines to show (every pair not ok),
/// and the mismatches.
fn compare(state: &str, step: &ChainStep, check: &Value, run: &Value) -> (Vec<String>, Vec<Mismatch>) {
    let mut shown = Vec::new();
    let mut found = Vec::new();
    let at = format!("{state} / {}", step.bin);
    let mut whole = |what: String| {
        found.push(Mismatch {
            id: "(report)".into(),
            check: String::new(),
            run: String::new(),
            line: format!("{at}: {what}"),
        })
    };
    if check["check"] != true || run["check"] != false {
        whole(format!("\"check\" is {} under --check and {} in the run", check["check"], run["check"]));
    }
    if check["commands"] != serde_json::json!([]) {
        whole(format!("--check ran commands: {}", check["commands"]));
    }
    let empty = Vec::new();
    let check_items = check["items"].as_array().unwrap_or(&empty);
    let run_items = run["items"].as_array().unwrap_or(&empty);
    let ids = |items: &[Value]| items.iter().map(|i| i["id"].as_str().unwrap_or("?").to_owned()).collect::<Vec<_>>();
    let (check_ids, run_ids) = (ids(check_items), ids(run_items));
    let mut all: Vec<String> = check_ids.clone();
    all.extend(run_ids.iter().filter(|id| !check_ids.contains(id)).cloned());
    let common_order =
        |ids: &[String], other: &[String]| ids.iter().filter(|i| other.contains(i)).cloned().collect::<Vec<_>>();
    if common_order(&check_ids, &run_ids) != common_order(&run_ids, &check_ids) {
        whole(format!("the items come in another order: check {check_ids:?}, run {run_ids:?}"));
    }
    for id in all {
        let c = check_items.iter().find(|i| i["id"] == id.as_str());
        let r = run_items.iter().find(|i| i["id"] == id.as_str());
        let (cs, rs) = (status_of(c), status_of(r));
        let mut why = Vec::new();
        let want = if cs == WOULD { "changed".to_owned() } else { cs.clone() };
        if c.is_none() || r.is_none() {
            why.push(if c.is_none() { "only in the run" } else { "only in the check" }.to_owned());
        } else if rs != want {
            why.push(format!("status: check {cs:?} means {want:?} in the run"));
        }
        if c.is_some() && r.is_some() {
            for key in ["kind", "path"] {
                if field(c, key) != field(r, key) {
                    why.push(format!("{key}: check {} vs run {}", field(c, key), field(r, key)));
                }
            }
            if cs == WOULD && rs == "changed" && field(c, "diff") != field(r, "diff") {
                why.push(format!("diff: check {} vs run {}", field(c, "diff"), field(r, "diff")));
            }
        }
        if cs == WOULD && field(c, "detail").as_str().is_none_or(|d| d.trim().is_empty()) {
            why.push("a `would_change` with no detail".to_owned());
        }
        if cs != "ok" || rs != "ok" {
            shown.push(format!("{id}: check {} -> run {}", said(c), said(r)));
        }
        // Wording only (not a mismatch): what a run did, said as what it would do.
        if rs == "changed"
            && field(r, "detail").as_str().is_some_and(|d| d.starts_with("would ") || d.contains("; would "))
        {
            shown.push(format!("WORDING {id}: the run's `changed` detail still says \"would\": {}", said(r)));
        }
        if !why.is_empty() {
            let line = format!("{at} / {id}: check {} vs run {} ({})", said(c), said(r), why.join("; "));
            found.push(Mismatch { id, check: cs, run: rs, line });
        }
    }
    (shown, found)
}

fn prereq_missing(host: &Host) -> TestResult {
    fs::remove_file(host.home().join(".local/share/check/marker"))?;
    Ok(())
}

fn link_removed_folder_mode(host: &Host) -> TestResult {
    fs::remove_file(host.home().join(".pi/agent/prompts"))?;
    set_mode(&host.home().join(".config/web"), 0o755)
}

fn unit_edited_in_repo(host: &Host) -> TestResult {
    edit(
        &host.home().join("pi-config/systemd/web.service"),
        "Restart=on-failure\n",
        "Restart=on-failure\nEnvironment=PI_CHECK_EDITED=1\n",
    )
}

fn env_file_missing(host: &Host) -> TestResult {
    fs::remove_file(host.home().join(".config/web/web.env"))?;
    Ok(())
}

fn service_stopped(host: &Host) -> TestResult {
    host.systemctl(&["stop", "web.service"])
}

fn disabled_but_running(host: &Host) -> TestResult {
    host.systemctl(&["disable", "web.service"])
}

fn shell_block_edited(host: &Host) -> TestResult {
    edit(&host.home().join(".bashrc"), "alias pic='echo check'", "alias pic='echo edited'")
}

fn nginx_site_changed(host: &Host) -> TestResult {
    edit(&host.machine.layout.nginx_prefix().join("sites-available/web"), "location /web/", "location /old/")
}

fn data_emptied_after_backup(host: &Host) -> TestResult {
    let (code, report) = host.json("bootstrap-data", &["backup", "--json"])?;
    if code != Some(0) {
        return Err(format!("bootstrap-data backup exited {code:?}: {report:#}").into());
    }
    let data = host.home().join("pi-config/data/web");
    for entry in fs::read_dir(&data)? {
        let path = entry?.path();
        if path.is_dir() { fs::remove_dir_all(&path)? } else { fs::remove_file(&path)? }
    }
    Ok(())
}

fn nothing(_: &Host) -> TestResult {
    Ok(())
}

const STATES: &[State] = &[
    State {
        name: "fresh",
        drift: nothing,
        shows: &[
            ("bootstrap-prereqs", "prereq:marker"),
            ("bootstrap-pi-config", "repo:pi-config"),
            ("bootstrap-services", "unit:web.service"),
            ("bootstrap-data", "data:service:web"),
        ],
    },
    State { name: "second-run", drift: nothing, shows: &[("bootstrap-prereqs", "prereq:marker")] },
    State { name: "prereq-missing", drift: prereq_missing, shows: &[("bootstrap-prereqs", "prereq:marker")] },
    State {
        name: "link-removed-folder-mode",
        drift: link_removed_folder_mode,
        shows: &[("bootstrap-pi-config", "link:prompts"), ("bootstrap-pi-config", "dir:web-config")],
    },
    State {
        name: "unit-edited-in-repo",
        drift: unit_edited_in_repo,
        shows: &[("bootstrap-services", "unit:web.service"), ("bootstrap-services", "service:web")],
    },
    State { name: "env-file-missing", drift: env_file_missing, shows: &[("bootstrap-services", "env:web")] },
    State { name: "service-stopped", drift: service_stopped, shows: &[("bootstrap-services", "service:web")] },
    State {
        name: "disabled-but-running",
        drift: disabled_but_running,
        shows: &[("bootstrap-services", "service:web")],
    },
    State { name: "shell-block-edited", drift: shell_block_edited, shows: &[("bootstrap-services", "shell:check")] },
    State { name: "nginx-site-changed", drift: nginx_site_changed, shows: &[("bootstrap-services", "nginx:web")] },
    State {
        name: "data-emptied-after-backup",
        drift: data_emptied_after_backup,
        shows: &[("bootstrap-data", "data:service:web")],
    },
    State { name: "converged-again", drift: nothing, shows: &[] },
];

#[test]
fn every_steps_check_reports_what_its_run_then_does_on_drifted_hosts() -> TestResult {
    // Built here, outside the sandbox, so the child's build is a quick no-op.
    built_binaries();
    let Some(machine) = isolated_shown("every_steps_check_reports_what_its_run_then_does_on_drifted_hosts") else {
        return Ok(());
    };
    let started = Instant::now();
    let host = Host::prepare(machine)?;
    let mut mismatches = Vec::new();
    let mut seen_known = BTreeSet::new();
    for state in STATES {
        let began = Instant::now();
        show(&format!("state {}", state.name));
        (state.drift)(&host).map_err(|e| format!("cannot bring the host into {}: {e}", state.name))?;
        mismatches.extend(host.check_then_run(state, &mut seen_known)?);
        show(&format!("state {} done in {:.1} s", state.name, began.elapsed().as_secs_f64()));
    }
    for (i, known) in KNOWN.iter().enumerate() {
        if !seen_known.contains(&i) {
            show(&format!(
                "KNOWN case no longer seen (remove it from KNOWN): {} / {} / {}: check {:?}, run {:?}",
                known.state, known.step, known.id, known.check, known.run
            ));
        }
    }
    show(&format!("{} states in {:.1} s", STATES.len(), started.elapsed().as_secs_f64()));
    if !mismatches.is_empty() {
        return Err(format!(
            "--check and the run disagree ({} mismatches; state / step / id: check status \"detail\" vs run status \"detail\"):\n{}",
            mismatches.len(),
            mismatches.join("\n")
        )
        .into());
    }
    Ok(())
}
