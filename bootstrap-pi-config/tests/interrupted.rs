//! A clone interrupted at any point converges with one rerun, with real git: a clone
//! killed before it was moved into place leaves only a staging folder the rerun
//! removes; an empty folder, a `git init` with no commit, a checkout that did not
//! finish are half-made repos: the manifest still loads (they are not a bad
//! manifest), the step moves them aside into the kept copies and clones again.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::TestResult;
use test_support::git::{git, init_repo};
use test_support::json::item;
use test_support::process::text;
use test_support::tree;

/// A HOME, a pi-config remote, and a manifest that links a file of the repo (so a
/// missing repo file would be a meaning problem, were the repo complete).
struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Result<Host, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let origin = dir.path().join("origin");
        init_repo(&origin, &[("pi/settings.json", "{}\n")])?;
        let manifest = format!(
            "version: 1\nrepo:\n  path: ~/pi-config\n  url: file://{}\nlinks:\n  - name: pi-settings\n    source: pi/settings.json\n    target: ~/.pi/agent/settings.json\n",
            origin.display()
        );
        fs::write(dir.path().join("pi-bootstrap.yaml"), manifest)?;
        fs::create_dir_all(dir.path().join("home"))?;
        Ok(Host { dir })
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn repo(&self) -> PathBuf {
        self.home().join("pi-config")
    }
    fn run(
        &self,
        args: &[&str],
        crash_at: Option<&str>,
    ) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap-pi-config"));
        cmd.args(["--manifest", &self.dir.path().join("pi-bootstrap.yaml").display().to_string(), "--json"])
            .args(args)
            .env("HOME", self.home())
            .env("NO_COLOR", "1");
        match crash_at {
            Some(point) => cmd.env("PI_BOOTSTRAP_CRASH_AT", point),
            None => cmd.env_remove("PI_BOOTSTRAP_CRASH_AT"),
        };
        let out = cmd.output()?;
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        Ok((out, json))
    }
    /// Staging folders beside the repo's place.
    fn staging(&self) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        Ok(tree::names(&self.home()).into_iter().filter(|n| n.starts_with(".pi-bootstrap")).collect())
    }
}

/// The rerun converged: exit 0, the repo a clone with the linked file, nothing staged,
/// and a further run changes nothing.
fn converges(host: &Host) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let (out, report) = host.run(&[], None)?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(host.repo().join("pi/settings.json").is_file(), "not cloned: {report:#}");
    assert!(host.home().join(".pi/agent/settings.json").exists(), "{report:#}");
    assert_eq!(host.staging()?, Vec::<String>::new(), "a staging folder is left");
    let (again, second) = host.run(&[], None)?;
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(second["summary"]["changed"], 0, "{second:#}");
    Ok(report)
}

#[test]
fn a_clone_killed_before_it_was_moved_in_leaves_only_staging_the_rerun_removes() -> TestResult {
    let host = Host::new()?;
    let (out, _) = host.run(&[], Some("after-clone"))?;
    assert_eq!(out.status.code(), None, "the step was to die at the crash point: {}", text(&out));
    assert!(!host.repo().exists(), "a half-made repo is in place");
    let staged = host.staging()?;
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert!(staged[0].starts_with(".pi-bootstrap-clone."), "{staged:?}");
    // --check sees the repo missing and does not fail.
    let (check, _) = host.run(&["--check"], None)?;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let report = converges(&host)?;
    let swept = item(&report, "staging:leftovers");
    assert_eq!(swept["status"], "changed", "{report:#}");
    assert!(swept["detail"].as_str().unwrap_or_default().contains(".pi-bootstrap-clone."), "{report:#}");
    Ok(())
}

#[test]
fn half_made_repos_are_repaired_not_refused_as_a_bad_manifest() -> TestResult {
    type Make = fn(&Path) -> TestResult;
    let cases: [(&str, Make, bool); 3] = [
        ("an empty folder", |repo| Ok(fs::create_dir_all(repo)?), false),
        (
            "git init, no commit",
            |repo| {
                fs::create_dir_all(repo)?;
                fs::write(repo.join("notes.txt"), "mine\n")?;
                git(repo, &["init", "--quiet"])
            },
            true,
        ),
        (
            "a checkout that did not finish",
            |repo| {
                let origin = repo.parent().and_then(Path::parent).map(|d| d.join("origin")).ok_or("no origin")?;
                git(
                    repo.parent().ok_or("no parent")?,
                    &["clone", "--quiet", &origin.display().to_string(), "pi-config"],
                )?;
                fs::remove_file(repo.join(".git/index"))?;
                fs::remove_file(repo.join("pi/settings.json"))?;
                Ok(())
            },
            true,
        ),
    ];
    for (what, make, kept) in cases {
        let host = Host::new()?;
        make(&host.repo())?;
        let (check, report) = host.run(&["--check"], None)?;
        assert_eq!(check.status.code(), Some(1), "{what}: a half-made repo is not a bad manifest: {}", text(&check));
        assert_eq!(item(&report, "repo:pi-config")["status"], "would_change", "{what}: {report:#}");
        let report = converges(&host)?;
        assert_eq!(item(&report, "repo:pi-config")["status"], "changed", "{what}: {report:#}");
        if kept {
            let kept_root = report["kept"].as_str().ok_or("nothing was kept")?;
            let kept_repo = Path::new(kept_root).join(host.repo().strip_prefix("/")?);
            assert!(kept_repo.join(".git").exists(), "{what}: the half-made repo is not in kept/");
        }
        if what == "git init, no commit" {
            let kept_root = report["kept"].as_str().unwrap_or_default();
            let notes = Path::new(kept_root).join(host.repo().strip_prefix("/")?).join("notes.txt");
            assert_eq!(fs::read_to_string(notes)?, "mine\n", "a file that could be the user's was lost");
        }
    }
    Ok(())
}
