//! The old host's durable data in the drill: made the way a real host makes it
//! (through the running services, by Pi, by the user's own hand in a managed file),
//! and compared, byte for byte, with what the new host has after its restore.
//!
//! What is compared is derived from the manifest, not listed here: every
//! `backup`-class path (`common::durable::data_paths`), everything at and under it
//! that a backup takes (what the most specific class leaves out, the password file
//! and a local repository are not compared). Each entry is its kind, its mode and the
//! SHA-256 of its content (or its link target), by path relative to HOME, so the
//! record kept between the two hosts holds no secret. An SQLite database is compared
//! page for page but for the header fields SQLite sets in every file it writes to, an
//! online copy too: the change counter, the schema cookie, the version-valid-for
//! number and the version of the SQLite library (bytes 24-27, 40-43 and 92-99).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::durable::{self, DataPath};
use common::manifest::{BackupClass, Manifest};
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Every entry of the durable data, by path relative to HOME: "kind mode digest".
pub type DataPrint = BTreeMap<String, String>;

/// The manifest as the sandbox's steps read it: HOME and the variables the drill sets.
pub fn load_manifest(manifest: &Path, home: &Path, vars: &[(&str, String)]) -> Result<Manifest> {
    let text = std::fs::read_to_string(manifest).map_err(|e| format!("{}: {e}", manifest.display()))?;
    let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
    Ok(common::manifest::load_str(manifest, &text, home, &lookup)?)
}

/// What a backup of the data paths takes, entry by entry.
pub fn fingerprint(manifest: &Manifest, home: &Path) -> Result<DataPrint> {
    let never: Vec<PathBuf> = manifest.backup.iter().flat_map(durable::never_in_snapshot).map(|(p, _)| p).collect();
    let taken = |path: &Path| {
        !never.iter().any(|n| path.starts_with(n)) && durable::class_of(manifest, path) == Some(BackupClass::Backup)
    };
    let mut print = DataPrint::new();
    for data in durable::data_paths(manifest) {
        walk(&data.path, home, &taken, &mut print)?;
    }
    Ok(print)
}

fn walk(path: &Path, home: &Path, taken: &dyn Fn(&Path) -> bool, print: &mut DataPrint) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let rel = path.strip_prefix(home).unwrap_or(path).display().to_string();
    let mode = meta.permissions().mode() & 0o7777;
    if meta.is_dir() {
        if taken(path) {
            print.insert(rel, format!("folder {mode:04o}"));
        }
        let mut children: Vec<PathBuf> = fs_err::read_dir(path)?.flatten().map(|e| e.path()).collect();
        children.sort();
        for child in children {
            walk(&child, home, taken, print)?;
        }
        return Ok(());
    }
    if !taken(path) {
        return Ok(());
    }
    let entry = if meta.file_type().is_symlink() {
        format!("link -> {}", fs_err::read_link(path)?.display())
    } else {
        let mut bytes = fs_err::read(path)?;
        let sqlite = bytes.len() >= 100 && bytes.starts_with(b"SQLite format 3\0");
        if sqlite {
            // An online copy (`capture: sqlite`) is the database page for page, but for
            // what SQLite writes in the header of every file it writes to: the change
            // counter, the schema cookie (the backup API moves it on, so that readers
            // of the copy reload the schema), the version-valid-for number and the
            // version of SQLite.
            bytes[24..28].fill(0);
            bytes[40..44].fill(0);
            bytes[92..100].fill(0);
        }
        let digest = Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("{} {mode:04o} {hex}", if sqlite { "sqlite" } else { "file" })
    };
    print.insert(rel, entry);
    Ok(())
}

/// The differences between the old host's data and the new host's, one line each.
pub fn differences(old: &DataPrint, new: &DataPrint) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in old {
        match new.get(path) {
            None => out.push(format!("~/{path}: missing (was {was})")),
            Some(now) if now != was => out.push(format!("~/{path}: {now}, was {was}")),
            Some(_) => {}
        }
    }
    for (path, now) in new.iter().filter(|(p, _)| !old.contains_key(*p)) {
        out.push(format!("~/{path}: not on the old host ({now})"));
    }
    out
}

/// How many entries of `print` lie under each data path, for the report.
pub fn per_path(print: &DataPrint, paths: &[DataPath], home: &Path) -> Vec<(String, usize)> {
    let mut seen = Vec::new();
    paths
        .iter()
        .filter(|d| {
            let first = !seen.contains(&d.path);
            seen.push(d.path.clone());
            first
        })
        .map(|d| {
            let rel = d.path.strip_prefix(home).unwrap_or(&d.path).display().to_string();
            let n = print.keys().filter(|k| **k == rel || k.starts_with(&format!("{rel}/"))).count();
            (format!("~/{rel}"), n)
        })
        .collect()
}

/// Runs `check` until it succeeds, at most `limit` (a service that just started may
/// not listen yet).
pub fn wait_until(what: &str, limit: Duration, check: &mut dyn FnMut() -> bool) -> Result<()> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > limit {
            return Err(format!("{what} did not happen within {}s", limit.as_secs()).into());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// The old host's life: agents and a long task through the running services, outputs
/// and a Pi session with credentials as Pi writes them, the user's own lines in
/// `~/.bashrc` (which holds managed blocks too), and copyparty's salts, which it wrote
/// itself at its first start.
pub fn live_on_the_old_host(sh: &Shell, home: &Path) -> Result<()> {
    wait_until("agents-database answering", Duration::from_secs(20), &mut || {
        cmd!(sh, "agents-db status").quiet().ignore_stdout().ignore_stderr().run().is_ok()
    })?;
    cmd!(sh, "agents-db add planner --role plans").quiet().ignore_stdout().run()?;
    cmd!(sh, "agents-db add reviewer --role reviews").quiet().ignore_stdout().run()?;
    wait_until("phase-runner answering", Duration::from_secs(20), &mut || {
        cmd!(sh, "phase-run list").quiet().ignore_stdout().ignore_stderr().run().is_ok()
    })?;
    cmd!(sh, "phase-run new restore-drill plan build review").quiet().ignore_stdout().run()?;
    cmd!(sh, "phase-run advance restore-drill").quiet().ignore_stdout().run()?;
    let files = [
        ("pi-config/outputs/report.md", "# What the agents made\n"),
        (".pi/agent/sessions/2026-11-25T10-00-00.jsonl", "{\"role\": \"user\", \"content\": \"hello\"}\n"),
        (".pi/agent/auth.json", "{\"anthropic\": {\"type\": \"api_key\"}}\n"),
    ];
    for (rel, content) in files {
        let path = home.join(rel);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&path, content)?;
    }
    common::fsx::set_mode(&home.join(".pi/agent/auth.json"), 0o600)?;
    // The user's own lines, below the managed blocks, as people add them.
    let bashrc = home.join(".bashrc");
    let mut text = std::fs::read_to_string(&bashrc).unwrap_or_default();
    text.push_str("\n# mine\nalias ll='ls -la'\nexport EDITOR=vim\n");
    fs_err::write(&bashrc, text)?;
    let salts = home.join(".config/copyparty");
    wait_until("copyparty writing its salts", Duration::from_secs(30), &mut || {
        std::fs::read_dir(&salts).is_ok_and(|mut d| d.next().is_some())
    })?;
    Ok(())
}

/// A fresh account, as `useradd -m` makes it: the skeleton folder copied into HOME.
pub fn fresh_account(sh: &Shell, home: &Path) -> Result<()> {
    fs_err::create_dir_all(home)?;
    let skel = durable::provenance::skeleton_folder();
    if skel.is_dir() {
        cmd!(sh, "cp -a {skel}/. {home}").run()?;
    }
    Ok(())
}
