//! bootstrap-pi-config with real git and a bare remote: the clone, a dirty work tree
//! reported and left alone, a wrong remote refused, `--check` on a fresh host, a
//! dependency install that runs again only when the lockfile changed, and the clone
//! kept current: new commits on the remote fast-forwarded (the install and the links
//! follow), unpushed commits, a diverged branch and edits the host uses reported and
//! left alone.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::TestResult;
use test_support::git::{Remote, git};
use test_support::json::{from_output, item};

/// A temporary HOME and a pi-config "remote" with a lockfile and an install command
/// that records each run (the same mechanism as `bun install`, without the network).
struct Host {
    dir: tempfile::TempDir,
    remote: Remote,
}

impl Host {
    fn new() -> Result<Host, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let remote = Remote::new(
            dir.path(),
            &[
                ("pi/settings.json", "{}\n"),
                ("deps.lock", "left-pad 1.0.0\n"),
                ("README.md", "pi-config\n"),
                (".gitignore", "installed/\ninstall.log\n"),
            ],
        )?;
        let manifest = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: {}
  deps:
    - name: deps
      run: {{shell: 'echo ran >> install.log && mkdir -p installed'}}
      lockfile: deps.lock
      installed: installed
links:
  - name: pi-settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
",
            remote.url()
        );
        fs::write(dir.path().join("pi-bootstrap.yaml"), manifest)?;
        fs::create_dir_all(dir.path().join("home"))?;
        Ok(Host { dir, remote })
    }
    fn repo(&self) -> PathBuf {
        self.dir.path().join("home/pi-config")
    }
    /// A commit made on the host and never pushed.
    fn commit_here(&self, path: &str, content: &str) -> TestResult {
        fs::write(self.repo().join(path), content)?;
        git(&self.repo(), &["commit", "--quiet", "--all", "-m", &format!("local edit of {path}")])
    }
    fn detail(report: &serde_json::Value) -> String {
        item(report, "repo:pi-config")["detail"].as_str().unwrap_or_default().to_owned()
    }
    fn run(&self, args: &[&str]) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let out = Command::new(env!("CARGO_BIN_EXE_bootstrap-pi-config"))
            .args(["--manifest", &self.dir.path().join("pi-bootstrap.yaml").display().to_string(), "--json"])
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("NO_COLOR", "1")
            .output()?;
        let json = from_output(&out)?;
        Ok((out, json))
    }
    fn installs(&self) -> usize {
        fs::read_to_string(self.repo().join("install.log")).map_or(0, |t| t.lines().count())
    }
}

#[test]
fn check_on_a_fresh_host_says_what_it_would_do_without_failing() -> TestResult {
    let host = Host::new()?;
    let (out, report) = host.run(&["--check"])?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    assert_eq!(item(&report, "repo:pi-config")["status"], "would_change");
    assert!(item(&report, "dep:deps")["detail"].as_str().unwrap_or_default().contains("would run `sh -c"));
    assert!(!host.repo().exists(), "--check cloned the repo");
    Ok(())
}

#[test]
fn clones_installs_once_and_again_only_when_the_lockfile_changes() -> TestResult {
    let host = Host::new()?;
    let (out, first) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{first}");
    assert_eq!(item(&first, "repo:pi-config")["status"], "changed");
    assert_eq!(item(&first, "dep:deps")["status"], "changed");
    assert_eq!(host.installs(), 1);

    let (_, second) = host.run(&[])?;
    assert_eq!(second["summary"]["changed"], 0, "{second}");
    assert_eq!(host.installs(), 1, "an unchanged lockfile must not run the install again");

    fs::write(host.repo().join("deps.lock"), "left-pad 1.0.1\n")?;
    let (_, third) = host.run(&[])?;
    assert_eq!(item(&third, "dep:deps")["status"], "changed");
    assert_eq!(
        item(&third, "dep:deps")["detail"]
            .as_str()
            .map(|d| d.starts_with("the lockfile changed since the last install")),
        Some(true)
    );
    assert_eq!(host.installs(), 2);

    fs::remove_dir_all(host.repo().join("installed"))?;
    let (_, fourth) = host.run(&[])?;
    assert_eq!(item(&fourth, "dep:deps")["status"], "changed");
    assert_eq!(host.installs(), 3, "a missing installed tree runs the install again");
    Ok(())
}

#[test]
fn a_dirty_work_tree_is_reported_and_left_alone() -> TestResult {
    let host = Host::new()?;
    host.run(&[])?;
    fs::write(host.repo().join("pi/settings.json"), "{\"edited\": true}\n")?;
    let (out, report) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(0));
    let repo = item(&report, "repo:pi-config");
    assert_eq!(repo["status"], "ok");
    assert_eq!(
        repo["detail"],
        "1 edited file the host uses (pi/settings.json): commit and push them, a restore from the remote would lose them"
    );
    assert_eq!(fs::read_to_string(host.repo().join("pi/settings.json"))?, "{\"edited\": true}\n");

    // An edit the host does not use is only mentioned.
    git(&host.repo(), &["checkout", "--quiet", "--", "pi/settings.json"])?;
    fs::write(host.repo().join("README.md"), "my notes\n")?;
    let (_, report) = host.run(&[])?;
    assert_eq!(
        Host::detail(&report),
        "up to date with origin/main, fetched just now; 1 changed file the host does not use (left alone)"
    );
    Ok(())
}

#[test]
fn new_commits_on_the_remote_are_fast_forwarded_and_the_install_and_links_follow() -> TestResult {
    let host = Host::new()?;
    host.run(&[])?;
    assert_eq!(host.installs(), 1);
    host.remote.push("pi/settings.json", "{\"theme\": \"light\"}\n")?;
    host.remote.push("deps.lock", "left-pad 1.0.2\n")?;

    let (out, check) = host.run(&["--check"])?;
    assert_eq!(out.status.code(), Some(1), "{check}");
    assert_eq!(item(&check, "repo:pi-config")["status"], "would_change");
    assert_eq!(Host::detail(&check), "behind origin/main by 2 commits, fetched just now: would fast-forward 2 commits");
    assert_eq!(fs::read_to_string(host.repo().join("pi/settings.json"))?, "{}\n", "--check changed the work tree");

    let (out, run) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{run}");
    assert_eq!(item(&run, "repo:pi-config")["status"], "changed");
    let linked = host.dir.path().join("home/.pi/agent/settings.json");
    assert_eq!(fs::read_to_string(linked)?, "{\"theme\": \"light\"}\n", "the link shows what arrived");
    assert_eq!(item(&run, "dep:deps")["status"], "changed", "the new lockfile runs the install: {run}");
    assert_eq!(host.installs(), 2);

    let (_, again) = host.run(&[])?;
    assert_eq!(again["summary"]["changed"], 0, "{again}");
    assert_eq!(Host::detail(&again), "up to date with origin/main, fetched just now");
    Ok(())
}

#[test]
fn unpushed_diverged_and_edited_clones_are_reported_and_left_alone() -> TestResult {
    let host = Host::new()?;
    host.run(&[])?;

    // Ahead: a commit never pushed.
    host.commit_here("README.md", "a local note\n")?;
    let (out, report) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(item(&report, "repo:pi-config")["status"], "ok");
    assert_eq!(
        Host::detail(&report),
        "1 commit not on origin/main, fetched just now: a restore from the remote would lose them; push them"
    );

    // Diverged: the remote moved on too; nothing is merged.
    host.remote.push("pi/settings.json", "{\"remote\": 1}\n")?;
    let head = |dir: &Path| -> Result<String, Box<dyn std::error::Error>> {
        let out = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(dir).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let before = head(&host.repo())?;
    let (_, report) = host.run(&[])?;
    assert_eq!(item(&report, "repo:pi-config")["status"], "ok");
    assert_eq!(
        Host::detail(&report),
        "diverged from origin/main, fetched just now: 1 commit here, 1 commit there; merge or rebase by hand, then push"
    );
    assert_eq!(head(&host.repo())?, before, "a diverged branch was moved");

    // Behind with an edit to a tracked file: not fast-forwarded, the edit kept.
    git(&host.repo(), &["reset", "--quiet", "--hard", "origin/main~1"])?;
    fs::write(host.repo().join("README.md"), "edited, not committed\n")?;
    let (_, report) = host.run(&[])?;
    assert_eq!(item(&report, "repo:pi-config")["status"], "ok");
    assert_eq!(
        Host::detail(&report),
        "behind origin/main by 1 commit, fetched just now; not fast-forwarded: 1 tracked file is edited (README.md); commit or stash them, then run again"
    );
    assert_eq!(fs::read_to_string(host.repo().join("README.md"))?, "edited, not committed\n");

    // An unreachable remote: said, and compared with the refs as last fetched.
    git(&host.repo(), &["checkout", "--quiet", "--", "README.md"])?;
    let (_, report) = host.run(&[])?;
    assert_eq!(item(&report, "repo:pi-config")["status"], "changed", "{report}");
    fs::rename(host.dir.path().join("origin.git"), host.dir.path().join("gone.git"))?;
    let (out, report) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(0), "{report}");
    let detail = Host::detail(&report);
    assert_eq!(item(&report, "repo:pi-config")["status"], "ok");
    assert!(detail.starts_with("cannot fetch origin (fatal: "), "{detail}");
    assert!(!detail.contains('\n'), "{detail}");
    assert!(detail.contains("compared with origin/main, as last fetched"), "{detail}");
    Ok(())
}

#[test]
fn a_different_remote_or_branch_is_refused_not_forced() -> TestResult {
    let host = Host::new()?;
    host.run(&[])?;
    git(&host.repo(), &["remote", "set-url", "origin", "https://example.invalid/other.git"])?;
    let (out, report) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(1));
    let detail = item(&report, "repo:pi-config")["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("the repo's origin is \"https://example.invalid/other.git\""), "{detail}");
    git(&host.repo(), &["remote", "set-url", "origin", &host.remote.url()])?;
    git(&host.repo(), &["checkout", "--quiet", "-b", "experiment"])?;
    let (_, report) = host.run(&[])?;
    let detail = item(&report, "repo:pi-config")["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("the repo is on branch \"experiment\", the manifest says \"main\""), "{detail}");
    Ok(())
}

#[test]
fn a_folder_that_is_not_a_repo_is_refused_and_kept() -> TestResult {
    let host = Host::new()?;
    fs::create_dir_all(host.repo().join("pi"))?;
    fs::write(host.repo().join("pi/settings.json"), "{}\n")?;
    fs::write(host.repo().join("notes.txt"), "mine\n")?;
    let (out, report) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(1));
    assert!(item(&report, "repo:pi-config")["detail"].as_str().unwrap_or_default().contains("is not a git work tree"));
    assert_eq!(fs::read_to_string(host.repo().join("notes.txt"))?, "mine\n");
    Ok(())
}
