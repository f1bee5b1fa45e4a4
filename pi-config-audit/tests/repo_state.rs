//! The repo's state in the audit, with real git and a bare remote: offline, the clone is
//! compared with its remote as last fetched (a new commit on the remote is not seen, and
//! nothing is fetched); `--fetch` fetches first, and from then on the clone is behind,
//! also offline; unpushed commits and edits to files the host uses are drift, edits to
//! other files are not.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::path::PathBuf;

use test_support::TestResult;
use test_support::git::{Remote, git};
use test_support::json::item;
use test_support::process::clean_command;
use test_support::tree::{changes, listing};

struct Host {
    dir: tempfile::TempDir,
    remote: Remote,
}

impl Host {
    fn new() -> Result<Host, Box<dyn std::error::Error>> {
        let dir = tempfile::Builder::new().prefix("pi-audit-repo-").tempdir()?;
        let remote = Remote::new(dir.path(), &[("pi/settings.json", "{}\n"), ("README.md", "pi-config\n")])?;
        let host = Host { dir, remote };
        fs::create_dir_all(host.home())?;
        git(&host.home(), &["clone", "--quiet", &host.remote.url(), "pi-config"])?;
        fs::create_dir_all(host.home().join(".pi/agent"))?;
        std::os::unix::fs::symlink(host.repo().join("pi/settings.json"), host.home().join(".pi/agent/settings.json"))?;
        let manifest = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: {}
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
",
            host.remote.url()
        );
        fs::write(host.dir.path().join("pi-bootstrap.yaml"), manifest)?;
        Ok(host)
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn repo(&self) -> PathBuf {
        self.home().join("pi-config")
    }
    /// The repo item of an audit: its status and detail.
    fn repo_item(&self, args: &[&str]) -> Result<(String, String), Box<dyn std::error::Error>> {
        let out = clean_command(env!("CARGO_BIN_EXE_pi-config-audit"), &self.home())
            .args(["--manifest", &self.dir.path().join("pi-bootstrap.yaml").display().to_string(), "--json"])
            .args(args)
            .output()?;
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&out.stderr)))?;
        let repo = item(&report, "repo:pi-config");
        let field = |name: &str| repo[name].as_str().unwrap_or_default().to_owned();
        Ok((field("status"), field("detail")))
    }
}

#[test]
fn offline_the_clone_is_compared_with_its_remote_as_last_fetched_and_fetch_looks_first() -> TestResult {
    let host = Host::new()?;
    let (status, detail) = host.repo_item(&[])?;
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.starts_with("up to date with origin/main, as last fetched "), "{detail}");

    // A commit on the remote: offline, nothing is known of it, and nothing is fetched.
    host.remote.push("pi/settings.json", "{\"theme\": \"light\"}\n")?;
    let before = listing(&host.repo());
    let (status, _) = host.repo_item(&[])?;
    assert_eq!(status, "ok");
    assert_eq!(changes(&before, &listing(&host.repo())), Vec::<String>::new(), "the offline audit wrote to the repo");

    let (status, detail) = host.repo_item(&["--fetch"])?;
    assert_eq!(status, "drift");
    assert_eq!(detail, "behind origin/main by 1 commit, fetched just now: would fast-forward 1 commit");
    assert_eq!(fs::read_to_string(host.repo().join("pi/settings.json"))?, "{}\n", "the audit fast-forwarded");
    // The fetched ref stays: offline, the clone is now known to be behind.
    let (status, detail) = host.repo_item(&[])?;
    assert_eq!(status, "drift");
    assert!(detail.starts_with("behind origin/main by 1 commit, as last fetched "), "{detail}");
    Ok(())
}

#[test]
fn unpushed_commits_and_edits_the_host_uses_are_drift_other_edits_are_not() -> TestResult {
    let host = Host::new()?;
    fs::write(host.repo().join("README.md"), "my notes\n")?;
    let (status, detail) = host.repo_item(&[])?;
    assert_eq!(status, "ok", "{detail}");
    assert!(detail.ends_with("; 1 changed file the host does not use (left alone)"), "{detail}");

    fs::write(host.repo().join("pi/settings.json"), "{\"edited\": true}\n")?;
    let (status, detail) = host.repo_item(&[])?;
    assert_eq!(status, "drift");
    assert_eq!(
        detail,
        "1 edited file the host uses (pi/settings.json): commit and push them, a restore from the remote would lose them"
    );

    git(
        &host.repo(),
        &["-c", "user.name=me", "-c", "user.email=me@localhost", "commit", "--quiet", "--all", "-m", "mine"],
    )?;
    let (status, detail) = host.repo_item(&[])?;
    assert_eq!(status, "drift");
    assert!(detail.starts_with("1 commit not on origin/main, as last fetched "), "{detail}");
    assert!(detail.ends_with(": a restore from the remote would lose them; push them"), "{detail}");
    Ok(())
}
