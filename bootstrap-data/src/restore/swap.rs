//! Putting a restored path in place: restic restores it into a staging folder next to
//! it (where the online copies of databases go back to their own paths,
//! `crate::capture::put_back`), then what is there is kept aside (a tree of empty
//! folders is simply removed: it holds nothing), the staged path is renamed in, and
//! what must stay is moved back:
//! what the backup leaves out of the path (other classes inside, the password file)
//! and the env files in place (their values came from this host's environment; a copy
//! kept aside would put secrets in the state folder).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::manifest::Manifest;
use common::report::Report;
use common::state::StateDir;

use crate::paths;
use crate::restic::{Restic, Snapshot};

/// The prefix of a restore's staging folder, next to the path it restores.
pub const STAGE_PREFIX: &str = ".pi-bootstrap-restore.";

/// What a backup of `path` leaves out inside it, as the host is now: other classes
/// (the most specific path wins), the password file, a local repository. A restore
/// over data leaves these where they are.
pub fn left_in_place(manifest: &Manifest, path: &Path) -> Vec<PathBuf> {
    let never = manifest.backup.as_ref().map(crate::never_in_snapshot).unwrap_or_default();
    paths::backup_set(manifest, &[path], &never).excludes.into_iter().map(|e| e.path).collect()
}

/// The declared env files inside `path` that are there now: they stay as they are.
pub fn env_files_in_place(manifest: &Manifest, path: &Path) -> Vec<PathBuf> {
    manifest
        .env
        .iter()
        .map(|e| e.path.path().to_path_buf())
        .filter(|e| e.starts_with(path) && e.as_path() != path && fs::symlink_metadata(e).is_ok())
        .collect()
}

/// What stays in place through a restore of one path.
pub struct Stays {
    /// Left out of the backup: moved back when the snapshot has nothing there.
    pub left_out: Vec<PathBuf>,
    /// Env files in place: moved back over the snapshot's copy.
    pub env_files: Vec<PathBuf>,
}

/// restic restores `path` of `snapshot` into a staging folder next to it; what is in
/// place is put aside, the restored path is renamed in, and what stays is moved back.
/// Returns where the old data was kept, if any was.
pub fn restore_one(
    restic: &Restic,
    snapshot: &Snapshot,
    path: &Path,
    stays: &Stays,
    state: &StateDir,
    report: &mut Report,
) -> Result<Option<PathBuf>, String> {
    let parent = path.parent().ok_or_else(|| format!("{} has no parent folder", path.display()))?;
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let stage = tempfile::Builder::new()
        .prefix(STAGE_PREFIX)
        .tempdir_in(parent)
        .map_err(|e| format!("cannot make a staging folder in {}: {e}", parent.display()))?;
    let result = restic.restore(&snapshot.id, stage.path(), path).map_err(|e| e.to_string()).and_then(|command| {
        report.commands.push(command);
        let relative = path.strip_prefix("/").unwrap_or(path);
        let staged = stage.path().join(relative);
        // Databases captured online come back at their own paths.
        crate::capture::put_back(&staged)?;
        swap(&staged, path, stays, snapshot, state)
    });
    make_removable(stage.path());
    drop(stage);
    result
}

/// Does `path` hold nothing but folders?
fn only_folders(path: &Path) -> io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(false);
    }
    for entry in fs::read_dir(path)? {
        if !only_folders(&entry?.path())? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Removes a tree of empty folders, deepest first (`remove_dir` refuses anything else).
fn remove_empty_folders(path: &Path) -> io::Result<()> {
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_empty_folders(&entry.path())?;
        }
    }
    fs::remove_dir(path)
}

/// Puts `staged` at `path`.
fn swap(
    staged: &Path,
    path: &Path,
    stays: &Stays,
    snapshot: &Snapshot,
    state: &StateDir,
) -> Result<Option<PathBuf>, String> {
    let staged_meta = fs::symlink_metadata(staged)
        .map_err(|_| format!("snapshot {} holds nothing at {}", snapshot.short_id, path.display()))?;
    let here = fs::symlink_metadata(path).ok();
    let kept = match &here {
        None => None,
        // Folders alone hold nothing: they go (a folder is renamed over an empty one).
        Some(meta) if meta.is_dir() && only_folders(path).unwrap_or(false) => {
            if staged_meta.is_dir() && fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false) {
                None
            } else {
                remove_empty_folders(path).map_err(|e| format!("cannot clear {}: {e}", path.display()))?;
                None
            }
        }
        Some(_) => {
            let kept = state.keep(path).map_err(|e| format!("not restored: {e}"))?;
            // A file or link is copied aside; it goes when a folder takes its place.
            let left = fs::symlink_metadata(path).ok();
            if left.is_some_and(|m| !m.is_dir()) && staged_meta.is_dir() {
                fs::remove_file(path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
            }
            Some(kept)
        }
    };
    if let Err(e) = fs::rename(staged, path) {
        // Put back what was moved aside.
        if let Some(kept) = &kept
            && fs::symlink_metadata(path).is_err()
        {
            let _ = fs::rename(kept, path);
        }
        return Err(format!("cannot move the restored {} into place: {e}", path.display()));
    }
    if let Some(kept) = &kept {
        move_back(kept, path, &stays.left_out, false)?;
        move_back(kept, path, &stays.env_files, true)?;
    }
    Ok(kept)
}

/// Moves `stays` (inside `path`) back from the folder `kept` (where `path` was moved
/// whole) into the restored `path`; over what the snapshot has there only when `over`.
fn move_back(kept: &Path, path: &Path, stays: &[PathBuf], over: bool) -> Result<(), String> {
    if !fs::symlink_metadata(kept).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    for stay in stays {
        let Ok(relative) = stay.strip_prefix(path) else { continue };
        let from = kept.join(relative);
        if fs::symlink_metadata(&from).is_err() || (!over && fs::symlink_metadata(stay).is_ok()) {
            continue;
        }
        if let Some(parent) = stay.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        if fs::symlink_metadata(stay).is_ok_and(|m| m.is_dir()) {
            // A folder where the file was: never merged, the snapshot's stays.
            continue;
        }
        fs::rename(&from, stay).map_err(|e| format!("cannot move {} back into place: {e}", stay.display()))?;
    }
    Ok(())
}

/// Gives the owner write access to every folder under `dir` (restic restores the
/// snapshot's modes, read-only folders included), so the staging folder can go.
fn make_removable(dir: &Path) {
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
    fn empty_folder_trees_are_removed_and_anything_else_is_refused() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let tree = dir.path().join("d");
        fs::create_dir_all(tree.join("a/b"))?;
        fs::create_dir_all(tree.join("c"))?;
        assert!(only_folders(&tree)?);
        remove_empty_folders(&tree)?;
        assert!(!tree.exists());
        fs::create_dir_all(tree.join("a"))?;
        fs::write(tree.join("a/f"), "data")?;
        assert!(!only_folders(&tree)?);
        assert!(remove_empty_folders(&tree).is_err());
        assert!(tree.join("a/f").exists(), "a file was removed");
        Ok(())
    }
}
