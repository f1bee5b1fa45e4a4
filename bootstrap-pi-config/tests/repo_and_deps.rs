//! bootstrap-pi-config with real git: the clone, a dirty work tree reported and left
//! alone, a wrong remote refused, `--check` on a fresh host, and a dependency install
//! that runs again only when the lockfile changed.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn git(dir: &Path, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let status = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .status()?;
    if status.success() { Ok(()) } else { Err(format!("git {args:?} failed").into()) }
}

/// A temporary HOME and a pi-config "remote" with a lockfile and an install command
/// that records each run (the same mechanism as `bun install`, without the network).
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Result<Host, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let origin = dir.path().join("origin");
        fs::create_dir_all(origin.join("pi"))?;
        fs::write(origin.join("pi/settings.json"), "{}\n")?;
        fs::write(origin.join("deps.lock"), "left-pad 1.0.0\n")?;
        fs::write(origin.join(".gitignore"), "installed/\ninstall.log\n")?;
        git(&origin, &["init", "--quiet"])?;
        git(&origin, &["add", "--all"])?;
        git(&origin, &["commit", "--quiet", "-m", "fixture"])?;
        let manifest = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: file://{}
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
            origin.display()
        );
        fs::write(dir.path().join("pi-bootstrap.yaml"), manifest)?;
        fs::create_dir_all(dir.path().join("home"))?;
        Ok(Host { dir })
    }
    fn repo(&self) -> PathBuf {
        self.dir.path().join("home/pi-config")
    }
    fn run(&self, args: &[&str]) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let out = Command::new(env!("CARGO_BIN_EXE_bootstrap-pi-config"))
            .args(["--manifest", &self.dir.path().join("pi-bootstrap.yaml").display().to_string(), "--json"])
            .args(args)
            .env("HOME", self.dir.path().join("home"))
            .env("NO_COLOR", "1")
            .output()?;
        let json = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!("{e}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
        })?;
        Ok((out, json))
    }
    fn installs(&self) -> usize {
        fs::read_to_string(self.repo().join("install.log")).map_or(0, |t| t.lines().count())
    }
}

fn item<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .unwrap_or(&serde_json::Value::Null)
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
    assert_eq!(repo["detail"], "dirty work tree: 1 changed file (left alone)");
    assert_eq!(fs::read_to_string(host.repo().join("pi/settings.json"))?, "{\"edited\": true}\n");
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
    git(
        &host.repo(),
        &["remote", "set-url", "origin", &format!("file://{}", host.dir.path().join("origin").display())],
    )?;
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
