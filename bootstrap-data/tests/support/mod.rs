//! What the bootstrap-data tests share: a temporary host (HOME, a pi-config folder, a
//! local restic repository, a canary password), runs of the built binary that always
//! check the canary is nowhere in their output, and trees to compare byte for byte.

#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::redact::Redactions;
use test_support::{Error, TestResult};

/// The restic password of every test: it must never show anywhere.
pub const CANARY: &str = "canary-restic-pw-7Hq2xZ";

/// The paths of the test host; `REPO` is replaced with the repository.
pub const PATHS: &str = "paths:
  - {name: pi-config, path: ~/pi-config, role: the work tree, backup: git}
  - {name: agents-database, path: ~/pi-config/agents-database, role: the agents database, backup: backup}
  - {name: work, path: ~/pi-config/work, role: work in progress, backup: backup}
  - {name: work-cache, path: ~/pi-config/work/cache, role: scratch files, backup: disposable}
  - {name: empty, path: ~/pi-config/empty, role: nothing in it yet, backup: backup}
  - {name: pi-auth, path: ~/.pi/agent/auth.json, role: credentials, backup: backup}
  - {name: telegram-config, path: ~/.config/pi-telegram, role: the bridge's env file, backup: backup}
  - {name: bootstrap-config, path: ~/.config/pi-bootstrap, role: holds the restic password file, backup: backup}
";

/// What a run left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        serde_json::from_str(&self.stdout).map_err(|e| format!("{e}: {}{}", self.stdout, self.stderr).into())
    }
}

/// A temporary host.
pub struct Host {
    pub dir: tempfile::TempDir,
    /// Extra environment for every run.
    pub env: Vec<(String, String)>,
}

impl Host {
    /// A host with the test paths, a repository folder (not created yet) and the
    /// canary password in its password file.
    pub fn new() -> Result<Host, Error> {
        let host = Host { dir: tempfile::tempdir()?, env: Vec::new() };
        fs::create_dir_all(host.home())?;
        host.write_manifest("", PATHS, &host.repo().display().to_string(), "26h")?;
        host.set_password(CANARY)?;
        Ok(host)
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("restic-repo")
    }

    pub fn manifest(&self) -> PathBuf {
        self.dir.path().join("pi-bootstrap.yaml")
    }

    pub fn password_file(&self) -> PathBuf {
        self.home().join(".config/pi-bootstrap/restic-password")
    }

    pub fn write_manifest(&self, services: &str, paths: &str, repository: &str, max_age: &str) -> TestResult {
        self.write_manifest_with(services, paths, repository, max_age, "")
    }

    /// [`Host::write_manifest`] with more lines for the `backup` section (`keep`,
    /// `verify`, ... indented by two spaces).
    pub fn write_manifest_with(
        &self,
        services: &str,
        paths: &str,
        repository: &str,
        max_age: &str,
        backup: &str,
    ) -> TestResult {
        let text = format!(
            "version: 1
host: test-host
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
{services}{paths}backup:
  repository: {repository}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: {max_age}
{backup}"
        );
        fs::write(self.manifest(), text)?;
        Ok(())
    }

    pub fn set_password(&self, password: &str) -> TestResult {
        let file = self.password_file();
        fs::create_dir_all(file.parent().ok_or("no parent")?)?;
        fs::write(&file, format!("{password}\n"))?;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o600))?;
        Ok(())
    }

    /// Seeds every `backup` path with files of several modes, a link, an empty folder,
    /// and scratch files in the disposable folder.
    pub fn seed(&self) -> TestResult {
        let h = self.home();
        let file = |rel: &str, content: &str, mode: u32| -> TestResult {
            let path = h.join(rel);
            fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            fs::write(&path, content)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            Ok(())
        };
        file("pi-config/agents-database/data/agents.db", "SQLite format 3\0agents and memories", 0o600)?;
        file("pi-config/agents-database/README", "the agents database\n", 0o644)?;
        file("pi-config/work/tasks/t1.json", "{\"phase\": 2}\n", 0o640)?;
        file("pi-config/work/tasks/bin/run.sh", "#!/bin/sh\necho run\n", 0o755)?;
        file("pi-config/work/cache/big.tmp", "scratch, can be lost\n", 0o644)?;
        file("pi-config/README.md", "in git\n", 0o644)?;
        std::os::unix::fs::symlink("tasks/t1.json", h.join("pi-config/work/current"))?;
        fs::create_dir_all(h.join("pi-config/work/inbox"))?;
        fs::set_permissions(h.join("pi-config/work/inbox"), fs::Permissions::from_mode(0o700))?;
        fs::set_permissions(h.join("pi-config/work"), fs::Permissions::from_mode(0o700))?;
        fs::create_dir_all(h.join("pi-config/empty"))?;
        fs::set_permissions(h.join("pi-config/empty"), fs::Permissions::from_mode(0o750))?;
        file(".pi/agent/auth.json", "{\"token\": \"pi-auth-token\"}\n", 0o600)?;
        file(".config/pi-telegram/telegram.env", "TELEGRAM_BOT_TOKEN=123:abc\nTELEGRAM_CHAT_ID=42\n", 0o600)?;
        fs::set_permissions(h.join(".config/pi-telegram"), fs::Permissions::from_mode(0o700))?;
        Ok(())
    }

    /// Runs the built binary with this host's manifest and HOME, and a cleaned
    /// environment (no user manager); the canary password must not be in its output.
    pub fn run(&self, args: &[&str]) -> Result<Run, Error> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap-data"));
        cmd.args(args)
            .arg("--manifest")
            .arg(self.manifest())
            .env("HOME", self.home())
            .env("NO_COLOR", "1")
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("RESTIC_CACHE_DIR")
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_REPOSITORY");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        let out = cmd.output()?;
        let run = Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        assert!(
            !run.stdout.contains(CANARY) && !run.stderr.contains(CANARY),
            "the password showed in the output of {args:?}:\n{}{}",
            run.stdout,
            run.stderr
        );
        Ok(run)
    }

    /// Runs restic itself on the repository (for what a snapshot holds).
    pub fn restic(&self, args: &[&str]) -> Result<String, Error> {
        self.restic_on(&self.repo(), args)
    }

    /// Runs restic itself on `repo` (with this host's password), in UTC: a `--time`
    /// means the same on every machine.
    pub fn restic_on(&self, repo: &Path, args: &[&str]) -> Result<String, Error> {
        let out = Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", repo)
            .env("RESTIC_PASSWORD_FILE", self.password_file())
            .env("RESTIC_CACHE_DIR", self.dir.path().join("test-cache"))
            .env("TZ", "UTC")
            .output()?;
        if !out.status.success() {
            return Err(format!("restic {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The temporary folder as `[TMP]`, for snapshots (the tests add their rules).
    pub fn redactions(&self) -> Redactions {
        Redactions::new().path(self.dir.path(), "[TMP]")
    }
}

/// One entry of a tree: kind, mode, and content or link target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub mode: u32,
    pub content: Vec<u8>,
}

/// Every entry under `root` (itself included, as ""), by relative path.
pub fn tree(root: &Path) -> Result<BTreeMap<String, Entry>, Error> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, path: &Path, out: &mut BTreeMap<String, Entry>) -> TestResult {
    let meta = fs::symlink_metadata(path)?;
    let rel = path.strip_prefix(root)?.display().to_string();
    let mode = meta.permissions().mode() & 0o7777;
    if meta.file_type().is_symlink() {
        out.insert(
            rel,
            Entry { kind: "link", mode: 0, content: fs::read_link(path)?.into_os_string().into_encoded_bytes() },
        );
    } else if meta.is_dir() {
        out.insert(rel, Entry { kind: "dir", mode, content: Vec::new() });
        for entry in fs::read_dir(path)? {
            walk(root, &entry?.path(), out)?;
        }
    } else {
        out.insert(rel, Entry { kind: "file", mode, content: fs::read(path)? });
    }
    Ok(())
}

/// Every file under `root` with its kind, mode and bytes (for "nothing changed" and
/// for the canary), but the run lock, which names the last run that held it.
pub fn files(root: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>, Error> {
    let mut out = BTreeMap::new();
    for (rel, entry) in tree(root)? {
        if rel.ends_with(".local/state/pi-bootstrap/lock") {
            continue;
        }
        out.insert(root.join(rel), [entry.kind.as_bytes(), &entry.mode.to_be_bytes(), &entry.content].concat());
    }
    Ok(out)
}

/// The paths added, removed or changed between two [`files`] listings ("" when none).
pub fn differences(before: &BTreeMap<PathBuf, Vec<u8>>, after: &BTreeMap<PathBuf, Vec<u8>>) -> String {
    let mut out = Vec::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => out.push(format!("removed {}", path.display())),
            Some(now) if now != bytes => out.push(format!("changed {}", path.display())),
            _ => {}
        }
    }
    out.extend(after.keys().filter(|p| !before.contains_key(*p)).map(|p| format!("added {}", p.display())));
    out.join("\n")
}
