//! Staging files and folders, named for the process that made them, so what a killed
//! run left is found, reported and removed by a later one.
//!
//! Every temporary the steps make beside what they change carries `.PID.` in its name
//! after a fixed prefix: an atomic write's temp file (`.pi-bootstrap.PID.*`, see
//! `fsx`), a restore's staging folder (`.pi-bootstrap-restore.PID.*`), a clone's
//! (`.pi-bootstrap-clone.PID.*`); and the staging folders that need no particular
//! place are in the state folder's `tmp/` (`NAME.PID.*`). One whose process is gone is
//! a leftover: [`leftovers`] lists them (the audit, `--check`), [`sweep`] removes them
//! (a step that applies, under the run lock). A process that still runs is never
//! touched, whoever it is.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::manifest::Manifest;
use crate::state::StateDir;

/// The prefixes of staging names that sit beside what they change.
pub const PREFIXES: [&str; 3] = [".pi-bootstrap.", ".pi-bootstrap-restore.", ".pi-bootstrap-clone."];

/// The folder of the state folder that holds staging folders with no place of their own.
pub const TMP: &str = "tmp";

/// `PREFIX` followed by this process's pid and a dot: the start of a staging name.
pub fn prefix(prefix: &str) -> String {
    format!("{prefix}{}.", std::process::id())
}

/// The state folder's `tmp/`, made when missing.
pub fn tmp_dir(state: &StateDir) -> std::io::Result<PathBuf> {
    let dir = state.file(TMP);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A staging folder in the state folder's `tmp/`, named for this process
/// (`NAME.PID.*`); removed when dropped.
pub fn scratch(state: &StateDir, name: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new().prefix(&format!("{name}.{}.", std::process::id())).tempdir_in(tmp_dir(state)?)
}

/// The pid a staging name carries, if it is one (after one of [`PREFIXES`], or any
/// `NAME.PID.` inside `tmp/`).
fn pid_of(name: &str, in_tmp: bool) -> Option<u32> {
    let rest = if in_tmp {
        name.split_once('.').map(|(_, rest)| rest)?
    } else {
        PREFIXES.iter().find_map(|p| name.strip_prefix(p))?
    };
    rest.split('.').next()?.parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The folders staging may be in: beside every target the manifest declares, the
/// repo, the data paths, the installed units, nginx's folders, and the state folder.
fn places(manifest: &Manifest, state: &StateDir, home: &Path) -> Vec<PathBuf> {
    let mut targets: Vec<PathBuf> = Vec::new();
    targets.extend(manifest.links.iter().map(|l| l.target.path().to_path_buf()));
    targets.extend(manifest.dirs.iter().map(|d| d.path.path().join("x")));
    targets.extend(manifest.env.iter().map(|e| e.path.path().to_path_buf()));
    targets.extend(manifest.shell.iter().map(|b| b.file.path().to_path_buf()));
    targets.push(manifest.repo.path.path().to_path_buf());
    targets.extend(crate::durable::data_paths(manifest).into_iter().map(|d| d.path));
    targets.push(home.join(".config/systemd/user/x"));
    if let Some(nginx) = &manifest.nginx {
        targets.push(nginx.sites_available.path().join("x"));
        targets.extend(nginx.sites_enabled.iter().map(|e| e.path().join("x")));
    }
    targets.push(state.file("x"));
    targets.push(state.file("deps/x"));
    let mut out: Vec<PathBuf> = Vec::new();
    for target in targets {
        if let Some(parent) = target.parent()
            && !out.iter().any(|p| p == parent)
        {
            out.push(parent.to_path_buf());
        }
    }
    out
}

/// What killed runs left: staging files and folders whose process is gone.
pub fn leftovers(manifest: &Manifest, state: &StateDir, home: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let tmp = state.file(TMP);
    for place in places(manifest, state, home).into_iter().chain(std::iter::once(tmp.clone())) {
        let in_tmp = place == tmp;
        let Ok(entries) = fs::read_dir(&place) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if pid_of(&name, in_tmp).is_some_and(|pid| pid != std::process::id() && !alive(pid)) {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Removes what killed runs left (see [`leftovers`]); returns what went. Staging holds
/// only copies of what was being put in place, never the only copy of anything.
pub fn sweep(manifest: &Manifest, state: &StateDir, home: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for path in leftovers(manifest, state, home) {
        let gone = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {
                make_removable(&path);
                fs::remove_dir_all(&path).is_ok()
            }
            Ok(_) => fs::remove_file(&path).is_ok(),
            Err(_) => false,
        };
        if gone {
            removed.push(path);
        }
    }
    removed
}

/// Gives the owner write access to every folder under `dir` (a restore's staging
/// folder holds the snapshot's modes, read-only folders included), so it can go.
pub fn make_removable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_removable(&entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_names_carry_their_pid() {
        assert_eq!(pid_of(".pi-bootstrap.123.abcd", false), Some(123));
        assert_eq!(pid_of(".pi-bootstrap-restore.45.x", false), Some(45));
        assert_eq!(pid_of(".pi-bootstrap-clone.6.x", false), Some(6));
        assert_eq!(pid_of("units.77.x", true), Some(77));
        assert_eq!(pid_of("units.77.x", false), None, "outside tmp/ only the fixed prefixes count");
        assert_eq!(pid_of(".pi-bootstrap.abc", false), None);
        assert_eq!(pid_of(".bashrc", false), None);
        assert!(prefix(".pi-bootstrap.").starts_with(&format!(".pi-bootstrap.{}.", std::process::id())));
    }
}
