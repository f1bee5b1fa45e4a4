//! The command-line contract every binary keeps, tested on the built binaries in a
//! temporary HOME with a cleaned environment: exit codes 0/1/2, `file:line:col` for a
//! bad manifest, manifest discovery, `--check`, `--only`, `--json`, the lock.

#![allow(clippy::disallowed_methods)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::TestResult;
use test_support::git::{git, init_repo};
use test_support::json::from_output;
use test_support::process::clean_command;
use test_support::redact::Redactions;
use test_support::workspace::{built_binaries, root};

const BINARIES: &[(&str, &[&str])] = &[
    ("bootstrap-prereqs", &[]),
    ("bootstrap-pi-config", &[]),
    ("bootstrap-services", &[]),
    ("bootstrap-data", &["status"]),
    ("bootstrap-validate", &[]),
    ("pi-config-audit", &[]),
    ("pi-bootstrap-restore", &[]),
];

/// The manifest's repo url; git reaches it in a local bare repository.
const REMOTE: &str = "https://example.invalid/pi-config.git";

/// A temporary HOME with a small pi-config repo and a manifest.
struct Host {
    dir: tempfile::TempDir,
}

const MANIFEST: &str = "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
dirs:
  - name: pi-agent
    path: ~/.pi/agent
    mode: \"0700\"
links:
  - name: pi-settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
  - name: pi-agents-md
    source: AGENTS.md
    target: ~/.pi/agent/AGENTS.md
shell:
  - name: pitmux
    file: ~/.bashrc
    source: shell/pitmux.sh
";

impl Host {
    fn new() -> Result<Host, test_support::Error> {
        let dir = tempfile::tempdir()?;
        let repo = dir.path().join("home/pi-config");
        init_repo(
            &repo,
            &[
                ("pi/settings.json", "{}\n"),
                ("AGENTS.md", "# Agents\n"),
                ("shell/pitmux.sh", "pitmux() { tmux new -A -s pi; }\n"),
            ],
        )?;
        git(&repo, &["remote", "add", "origin", REMOTE])?;
        // The remote, reached through `url.<bare>.insteadOf` (see `run_in`): a clone
        // in step with it, as last fetched.
        let bare = dir.path().join("origin.git");
        fs::create_dir_all(&bare)?;
        git(&bare, &["init", "--quiet", "--bare"])?;
        git(&repo, &["push", "--quiet", &format!("file://{}", bare.display()), "main"])?;
        git(&repo, &["update-ref", "refs/remotes/origin/main", "HEAD"])?;
        fs::write(dir.path().join("pi-bootstrap.yaml"), MANIFEST)?;
        Ok(Host { dir })
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn manifest(&self) -> PathBuf {
        self.dir.path().join("pi-bootstrap.yaml")
    }
    /// Runs a binary in this HOME with a clean environment, from `cwd`.
    fn run_in(&self, cwd: &Path, bin: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = clean_command(built_binaries().join(bin), &self.home());
        cmd.args(args).current_dir(cwd);
        // The manifest's remote is this folder's bare repository, for git alone.
        let bare = format!("file://{}", self.dir.path().join("origin.git").display());
        cmd.env("GIT_CONFIG_COUNT", "1")
            .env("GIT_CONFIG_KEY_0", format!("url.{bare}.insteadOf"))
            .env("GIT_CONFIG_VALUE_0", REMOTE);
        for (k, v) in env {
            cmd.env(k, v);
        }
        match cmd.output() {
            Ok(out) => out,
            Err(e) => panic!("cannot run {bin}: {e}"),
        }
    }
    fn run(&self, bin: &str, args: &[&str]) -> Output {
        let manifest = self.manifest().display().to_string();
        let mut all = vec!["--manifest", manifest.as_str()];
        all.extend_from_slice(args);
        self.run_in(self.dir.path(), bin, &all, &[])
    }
    fn redact(&self, text: &[u8]) -> String {
        Redactions::new().path(self.dir.path(), "[TMP]").apply(text)
    }
}

#[test]
fn every_binary_rejects_a_broken_manifest_with_exit_2_and_a_position() -> TestResult {
    let host = Host::new()?;
    fs::write(host.manifest(), MANIFEST.replace("    mode: \"0700\"", "    mode: \"0700\"\n    colour: blue"))?;
    for (bin, sub) in BINARIES {
        let out = host.run(bin, sub);
        let stderr = host.redact(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bin}: {stderr}");
        assert!(
            stderr.contains("[TMP]/pi-bootstrap.yaml:9:5: dirs[0].colour: unknown key `colour`"),
            "{bin}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{bin} printed on stdout: {}", host.redact(&out.stdout));
    }
    let out = host.run("bootstrap-pi-config", &[]);
    insta::assert_snapshot!(host.redact(&out.stderr));
    Ok(())
}

#[test]
fn a_meaning_problem_is_exit_2_with_every_problem_listed() -> TestResult {
    let host = Host::new()?;
    let broken = MANIFEST
        .replace("source: AGENTS.md", "source: NOPE.md")
        .replace("target: ~/.pi/agent/AGENTS.md", "target: /etc/AGENTS.md");
    fs::write(host.manifest(), broken)?;
    let out = host.run("bootstrap-pi-config", &[]);
    assert_eq!(out.status.code(), Some(2));
    insta::assert_snapshot!(host.redact(&out.stderr));
    Ok(())
}

#[test]
fn a_bad_command_line_is_exit_2() -> TestResult {
    let host = Host::new()?;
    for (bin, _) in BINARIES {
        let out = host.run(bin, &["--no-such-flag"]);
        assert_eq!(out.status.code(), Some(2), "{bin}");
    }
    let out = host.run("bootstrap-pi-config", &["--only", "link:nope"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = host.redact(&out.stderr);
    assert!(
        stderr.contains(
            "--only link:nope: no such item in this step (its items: repo:pi-config, dir:pi-agent, link:pi-settings, link:pi-agents-md)"
        ),
        "{stderr}"
    );
    Ok(())
}

#[test]
fn the_manifest_is_found_from_the_env_then_the_nearest_folder() -> TestResult {
    let host = Host::new()?;
    let sub = host.dir.path().join("a/b");
    fs::create_dir_all(&sub)?;
    // Nearest pi-bootstrap.yaml in a folder above the current one.
    let out = host.run_in(&sub, "bootstrap-pi-config", &["--check", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", host.redact(&out.stderr));
    assert_eq!(from_output(&out)?["summary"]["would_change"], 3);
    // $PI_BOOTSTRAP_MANIFEST wins over the nearest file.
    let other = host.dir.path().join("a/other.yaml");
    fs::write(
        &other,
        MANIFEST.replace("  - name: pi-agents-md\n    source: AGENTS.md\n    target: ~/.pi/agent/AGENTS.md\n", ""),
    )?;
    let other_text = other.display().to_string();
    let out =
        host.run_in(&sub, "bootstrap-pi-config", &["--check", "--json"], &[("PI_BOOTSTRAP_MANIFEST", &other_text)]);
    assert_eq!(from_output(&out)?["summary"]["would_change"], 2);
    // None anywhere: exit 2 and what to do.
    let nowhere = tempfile::tempdir()?;
    let out = host.run_in(nowhere.path(), "bootstrap-pi-config", &[], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(host.redact(&out.stderr).contains("no manifest: pass --manifest PATH, set $PI_BOOTSTRAP_MANIFEST"));
    Ok(())
}

#[test]
fn a_step_converges_then_reports_zero_changes() -> TestResult {
    let host = Host::new()?;
    let first = host.run("bootstrap-pi-config", &[]);
    assert_eq!(first.status.code(), Some(0));
    insta::assert_snapshot!(host.redact(&first.stdout));
    let second = host.run("bootstrap-pi-config", &["--json"]);
    assert_eq!(second.status.code(), Some(0));
    let report = from_output(&second)?;
    assert_eq!(report["summary"]["changed"], 0);
    assert_eq!(report["summary"]["ok"], 4);
    let services = host.run("bootstrap-services", &["--json"]);
    assert_eq!(from_output(&services)?["summary"]["changed"], 1);
    let again = host.run("bootstrap-services", &["--json"]);
    assert_eq!(from_output(&again)?["summary"]["changed"], 0);
    let audit = host.run("pi-config-audit", &[]);
    assert_eq!(audit.status.code(), Some(0), "{}", host.redact(&audit.stdout));
    Ok(())
}

#[test]
fn check_and_audit_report_drift_and_change_nothing() -> TestResult {
    let host = Host::new()?;
    host.run("bootstrap-pi-config", &[]);
    host.run("bootstrap-services", &[]);
    fs::remove_file(host.home().join(".pi/agent/AGENTS.md"))?;
    let rc = host.home().join(".bashrc");
    fs::write(&rc, fs::read_to_string(&rc)?.replace("tmux new -A -s pi", "tmux attach"))?;
    let check = host.run("bootstrap-pi-config", &["--check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(!host.home().join(".pi/agent/AGENTS.md").exists(), "--check must not change anything");
    let audit = host.run("pi-config-audit", &["--quiet"]);
    assert_eq!(audit.status.code(), Some(1));
    insta::assert_snapshot!(host.redact(&audit.stdout));
    let audit_json = from_output(&host.run("pi-config-audit", &["--json"]))?;
    assert_eq!(audit_json["summary"]["drift"], 2);
    Ok(())
}

#[test]
fn only_runs_the_named_items() -> TestResult {
    let host = Host::new()?;
    let out = host.run("bootstrap-pi-config", &["--only", "dir:pi-agent", "--json"]);
    let report = from_output(&out)?;
    assert_eq!(report["items"].as_array().map(Vec::len), Some(1));
    assert!(host.home().join(".pi/agent").is_dir());
    assert!(!host.home().join(".pi/agent/settings.json").exists());
    Ok(())
}

#[test]
fn a_held_lock_is_reported_and_nothing_runs() -> TestResult {
    let host = Host::new()?;
    let state = host.home().join(".local/state/pi-bootstrap");
    fs::create_dir_all(&state)?;
    let lock = File::create(state.join("lock"))?;
    lock.try_lock()?;
    let out = host.run("bootstrap-pi-config", &[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = host.redact(&out.stderr);
    assert!(
        stderr.contains("another pi-bootstrap run holds the lock [TMP]/home/.local/state/pi-bootstrap/lock"),
        "{stderr}"
    );
    assert!(!host.home().join(".pi").exists(), "nothing may run while the lock is held");
    // --check only reads, and works while another run holds the lock.
    let check = host.run("bootstrap-pi-config", &["--check"]);
    assert_eq!(check.status.code(), Some(1));
    Ok(())
}

#[test]
fn a_failing_item_says_what_changed_before_and_how_to_resume() -> TestResult {
    let host = Host::new()?;
    // A file where a folder should be: the link under it cannot be made.
    fs::write(host.home().join("notes"), "a file, not a folder\n")?;
    let manifest = MANIFEST.replace("target: ~/.pi/agent/AGENTS.md", "target: ~/notes/AGENTS.md");
    fs::write(host.manifest(), manifest)?;
    let out = host.run("bootstrap-pi-config", &[]);
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(host.redact(&out.stdout));
    // After the cause is fixed, the same command finishes the job.
    fs::remove_file(host.home().join("notes"))?;
    let out = host.run("bootstrap-pi-config", &["--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(from_output(&out)?["summary"]["changed"], 1);
    Ok(())
}

#[test]
fn check_on_a_fresh_host_says_what_each_step_would_do_without_failing() -> TestResult {
    // A bare machine: no HOME content, nothing on PATH but git and systemd-analyze, no
    // user manager.
    let dir = tempfile::tempdir()?;
    let bin = dir.path().join("bin");
    fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(which("git")?, bin.join("git"))?;
    // systemd's own tools come with systemd, there on any Debian host.
    std::os::unix::fs::symlink(which("systemd-analyze")?, bin.join("systemd-analyze"))?;
    let manifest = root().join("examples/pi-host/pi-bootstrap.yaml").display().to_string();
    for (step, args) in [
        ("bootstrap-prereqs", &[][..]),
        ("bootstrap-pi-config", &[][..]),
        ("bootstrap-services", &[][..]),
        ("bootstrap-data", &["restore"][..]),
    ] {
        let out = Command::new(built_binaries().join(step))
            .args(args)
            .args(["--check", "--json", "--manifest", &manifest])
            .env_clear()
            .env("HOME", dir.path().join("home"))
            .env("PATH", &bin)
            .output()?;
        let report = from_output(&out).map_err(|e| format!("{step}: {e}"))?;
        assert_eq!(out.status.code(), Some(1), "{step} --check exits 1 when something would change: {report:#}");
        // Without a user manager, what systemd runs is unknown (and a run could not
        // start it either): the services' items say so; nothing else fails.
        let failed: Vec<&serde_json::Value> =
            report["items"].as_array().into_iter().flatten().filter(|i| i["status"] == "failed").collect();
        for item in failed {
            let unknown = item["detail"].as_str().is_some_and(|d| {
                d.starts_with("whether it is enabled and running is unknown: XDG_RUNTIME_DIR is not set")
            });
            assert!(step == "bootstrap-services" && unknown, "{step} --check failed on a fresh host: {item:#}");
        }
        assert!(report["summary"]["would_change"].as_u64().unwrap_or(0) > 0, "{step}: {report:#}");
    }
    assert!(!dir.path().join("home").exists(), "--check wrote into HOME");
    Ok(())
}

fn which(program: &str) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{program} is not on PATH").into())
}
