//! Putting restored paths in place: restic restores the paths of one snapshot (on one
//! filesystem) in one call into a staging folder next to the first of them; each path
//! is then moved into a staging folder of its own next to it (the same folder for the
//! first's neighbours), where the online copies of databases go back to their own
//! paths (`crate::capture::put_back`); then what is there is kept aside (a tree of
//! empty folders is simply removed: it holds nothing), the staged path is renamed in,
//! and what must stay is moved back: what the backup leaves out of the path (other
//! classes inside, the password file) and the env files in place (their values came
//! from this host's environment; a copy kept aside would put secrets in the state
//! folder). A path whose staging folder is on another filesystem than the batch's (a
//! bind mount the device numbers did not tell) is restored alone, by its own restic
//! restore.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use common::manifest::Manifest;
use common::report::Report;
use common::state::{StateDir, StateError};

use crate::paths;
use crate::restic::{Restic, ResticError, Snapshot};

/// Why a restored path could not be put in place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SwapError {
    /// A file operation failed.
    #[error("cannot {action} {}: {source}", path.display())]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// restic restored nothing at the path.
    #[error("snapshot {snapshot} holds nothing at {}", path.display())]
    NothingThere { snapshot: String, path: PathBuf },
    /// The batch's staging folder is on another filesystem than the path's: nothing
    /// was touched at the path, and it can be restored alone.
    #[error("the staging folder of {} is on another filesystem than the restore's", path.display())]
    OtherFilesystem { path: PathBuf },
    /// What was there could not be kept aside: nothing was replaced.
    #[error("not restored: {0}")]
    Keep(#[from] StateError),
    /// restic failed.
    #[error(transparent)]
    Restic(#[from] ResticError),
    /// An online copy of a database could not go back to its path.
    #[error("{0}")]
    Capture(String),
}

fn io_error<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> SwapError + 'p {
    move |source| SwapError::Io { action, path: path.to_path_buf(), source }
}

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

/// The folder a restored `path` is staged in: its parent.
fn parent_of(path: &Path) -> &Path {
    path.parent().unwrap_or(Path::new("/"))
}

/// The filesystem (device) the staging folder of `path` would be on: that of the
/// nearest folder above it that exists.
pub fn staging_device(path: &Path) -> Option<u64> {
    parent_of(path).ancestors().find_map(|dir| fs::metadata(dir).ok()).map(|meta| meta.dev())
}

/// A staging folder named for this process in `parent`, made first when missing.
fn staging_folder(parent: &Path) -> Result<tempfile::TempDir, SwapError> {
    fs::create_dir_all(parent).map_err(io_error("create", parent))?;
    tempfile::Builder::new()
        .prefix(&common::staging::prefix(STAGE_PREFIX))
        .tempdir_in(parent)
        .map_err(io_error("make a staging folder in", parent))
}

/// Removes a staging folder, whatever modes the snapshot gave what is in it.
fn remove_staging(stage: tempfile::TempDir) {
    common::staging::make_removable(stage.path());
    drop(stage);
}

/// What one `restic restore` of several paths of one snapshot left in its staging
/// folder, next to the first of them; removed when dropped.
pub struct Batch {
    stage: Option<tempfile::TempDir>,
}

/// restic restores `paths` of `snapshot` (none inside another) in one call, into a
/// staging folder next to the first of them; the command run goes into the report.
pub fn restore_batch(
    restic: &Restic,
    snapshot: &Snapshot,
    paths: &[&Path],
    report: &mut Report,
) -> Result<Batch, SwapError> {
    let Some(first) = paths.first() else {
        return Err(SwapError::Capture("nothing to restore".to_owned()));
    };
    let stage = staging_folder(parent_of(first))?;
    match restic.restore(&snapshot.id, stage.path(), paths) {
        Ok(command) => {
            report.commands.push(command);
            common::sys::crash_point("after-restic-restore");
            Ok(Batch { stage: Some(stage) })
        }
        Err(e) => {
            remove_staging(stage);
            Err(e.into())
        }
    }
}

impl Batch {
    /// Puts `path`, one of the batch's, in place: moved into a staging folder of its
    /// own next to it (unless the batch's is there already), its databases captured
    /// online put back, then swapped in (see [`swap`]). Returns where the old data was
    /// kept, if any was.
    pub fn put_in_place(
        &self,
        path: &Path,
        stays: &Stays,
        snapshot: &Snapshot,
        state: &StateDir,
    ) -> Result<Option<PathBuf>, SwapError> {
        let Some(stage) = &self.stage else { return Err(SwapError::Capture("the restore was removed".to_owned())) };
        let relative = path.strip_prefix("/").unwrap_or(path);
        let restored = stage.path().join(relative);
        let parent = parent_of(path);
        if stage.path().parent() == Some(parent) {
            return put_staged(&restored, path, stays, snapshot, state);
        }
        if fs::symlink_metadata(&restored).is_err() {
            return Err(SwapError::NothingThere { snapshot: snapshot.short_id.clone(), path: path.to_path_buf() });
        }
        let own = staging_folder(parent)?;
        let staged = own.path().join(path.file_name().unwrap_or(relative.as_os_str()));
        let result = match fs::rename(&restored, &staged) {
            Ok(()) => put_staged(&staged, path, stays, snapshot, state),
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                Err(SwapError::OtherFilesystem { path: path.to_path_buf() })
            }
            Err(e) => {
                Err(SwapError::Io { action: "move into its staging folder the restored", path: staged, source: e })
            }
        };
        remove_staging(own);
        result
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        if let Some(stage) = self.stage.take() {
            remove_staging(stage);
        }
    }
}

/// The databases captured online put back in the staged path, then the swap.
fn put_staged(
    staged: &Path,
    path: &Path,
    stays: &Stays,
    snapshot: &Snapshot,
    state: &StateDir,
) -> Result<Option<PathBuf>, SwapError> {
    crate::capture::put_back(staged).map_err(SwapError::Capture)?;
    swap(staged, path, stays, snapshot, state)
}

/// restic restores `path` of `snapshot` alone into a staging folder next to it; what is
/// in place is put aside, the restored path is renamed in, and what stays is moved
/// back. Returns where the old data was kept, if any was.
pub fn restore_one(
    restic: &Restic,
    snapshot: &Snapshot,
    path: &Path,
    stays: &Stays,
    state: &StateDir,
    report: &mut Report,
) -> Result<Option<PathBuf>, SwapError> {
    let batch = restore_batch(restic, snapshot, &[path], report)?;
    batch.put_in_place(path, stays, snapshot, state)
}

pub(super) use common::fsx::only_folders;

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
) -> Result<Option<PathBuf>, SwapError> {
    let staged_meta = fs::symlink_metadata(staged)
        .map_err(|_| SwapError::NothingThere { snapshot: snapshot.short_id.clone(), path: path.to_path_buf() })?;
    let here = fs::symlink_metadata(path).ok();
    let kept = match &here {
        None => None,
        // Folders alone hold nothing: they go (a folder is renamed over an empty one).
        Some(meta) if meta.is_dir() && only_folders(path).unwrap_or(false) => {
            if staged_meta.is_dir() && fs::read_dir(path).map(|mut d| d.next().is_none()).unwrap_or(false) {
                None
            } else {
                remove_empty_folders(path).map_err(io_error("clear", path))?;
                None
            }
        }
        Some(_) => {
            let kept = state.keep(path)?;
            // A file or link is copied aside; it goes when a folder takes its place.
            let left = fs::symlink_metadata(path).ok();
            if left.is_some_and(|m| !m.is_dir()) && staged_meta.is_dir() {
                fs::remove_file(path).map_err(io_error("replace", path))?;
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
        return Err(SwapError::Io { action: "move into place the restored", path: path.to_path_buf(), source: e });
    }
    if let Some(kept) = &kept {
        move_back(kept, path, &stays.left_out, false)?;
        move_back(kept, path, &stays.env_files, true)?;
    }
    Ok(kept)
}

/// Moves `stays` (inside `path`) back from the folder `kept` (where `path` was moved
/// whole) into the restored `path`; over what the snapshot has there only when `over`.
fn move_back(kept: &Path, path: &Path, stays: &[PathBuf], over: bool) -> Result<(), SwapError> {
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
            fs::create_dir_all(parent).map_err(io_error("create", parent))?;
        }
        if fs::symlink_metadata(stay).is_ok_and(|m| m.is_dir()) {
            // A folder where the file was: never merged, the snapshot's stays.
            continue;
        }
        fs::rename(&from, stay).map_err(io_error("move back into place", stay))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests make their fixtures plainly")]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            id: "1a2b3c4d5e".into(),
            short_id: "1a2b3c4d".into(),
            time: "2026-11-30T10:00:00Z".into(),
            paths: Vec::new(),
            hostname: "h".into(),
            tags: None,
            excludes: None,
        }
    }

    #[test]
    fn a_restored_folder_takes_the_place_of_what_was_there_and_what_stays_comes_back()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let state = StateDir::new(&home);
        let path = home.join("data");
        let staged = dir.path().join("stage/data");
        fs::create_dir_all(staged.join("sub"))?;
        fs::write(staged.join("db"), "from the snapshot")?;
        fs::write(staged.join("app.env"), "TOKEN=old")?;
        // What is there: a fresh copy, a scratch folder the backup leaves out, the env
        // file written from this host's environment.
        fs::create_dir_all(path.join("cache"))?;
        fs::write(path.join("db"), "fresh")?;
        fs::write(path.join("cache/tmp"), "scratch")?;
        fs::write(path.join("app.env"), "TOKEN=new")?;
        let stays = Stays { left_out: vec![path.join("cache")], env_files: vec![path.join("app.env")] };
        let kept = swap(&staged, &path, &stays, &snapshot(), &state)?.ok_or("nothing was kept")?;
        assert_eq!(fs::read_to_string(path.join("db"))?, "from the snapshot");
        assert!(path.join("sub").is_dir());
        assert_eq!(fs::read_to_string(path.join("cache/tmp"))?, "scratch", "what the backup leaves out stays");
        assert_eq!(fs::read_to_string(path.join("app.env"))?, "TOKEN=new", "the env file in place stays");
        assert_eq!(fs::read_to_string(kept.join("db"))?, "fresh", "what was there is kept aside");
        assert!(!kept.join("app.env").exists(), "a secret was kept in the state folder");
        assert!(!staged.exists());
        Ok(())
    }

    #[test]
    fn empty_folders_are_replaced_and_nothing_restored_is_an_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let state = StateDir::new(dir.path());
        let path = dir.path().join("data");
        fs::create_dir_all(path.join("a/b"))?;
        let staged = dir.path().join("stage/data");
        fs::create_dir_all(&staged)?;
        fs::write(staged.join("f"), "x")?;
        let none = Stays { left_out: Vec::new(), env_files: Vec::new() };
        assert_eq!(swap(&staged, &path, &none, &snapshot(), &state)?, None, "empty folders are not kept");
        assert_eq!(fs::read_to_string(path.join("f"))?, "x");
        let missing = swap(&dir.path().join("stage/nothing"), &dir.path().join("other"), &none, &snapshot(), &state);
        assert!(matches!(missing, Err(SwapError::NothingThere { .. })), "{missing:?}");
        Ok(())
    }

    #[test]
    fn each_path_of_a_batch_goes_through_a_staging_folder_of_its_own_beside_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let state = StateDir::new(&home);
        let (first, other) = (home.join("a/first"), home.join("b/c/other"));
        fs::create_dir_all(home.join("a"))?;
        // What one restic restore of both left beside the first.
        let stage =
            tempfile::Builder::new().prefix(&common::staging::prefix(STAGE_PREFIX)).tempdir_in(home.join("a"))?;
        let staged = |p: &Path| stage.path().join(p.strip_prefix("/").unwrap_or(p));
        fs::create_dir_all(staged(&first))?;
        fs::write(staged(&first).join("f"), "first")?;
        fs::create_dir_all(staged(&other).parent().ok_or("no parent")?)?;
        fs::write(staged(&other), "other")?;
        let stage_path = stage.path().to_path_buf();
        let batch = Batch { stage: Some(stage) };
        let none = Stays { left_out: Vec::new(), env_files: Vec::new() };

        assert_eq!(batch.put_in_place(&other, &none, &snapshot(), &state)?, None);
        assert_eq!(fs::read_to_string(&other)?, "other");
        let beside: Vec<_> = fs::read_dir(home.join("b/c"))?.flatten().map(|e| e.file_name()).collect();
        assert_eq!(beside, [std::ffi::OsString::from("other")], "its own staging folder is left");
        assert_eq!(batch.put_in_place(&first, &none, &snapshot(), &state)?, None);
        assert_eq!(fs::read_to_string(first.join("f"))?, "first");
        let missing = batch.put_in_place(&home.join("b/gone"), &none, &snapshot(), &state);
        assert!(matches!(missing, Err(SwapError::NothingThere { .. })), "{missing:?}");
        assert!(!home.join("b/gone").exists());
        drop(batch);
        assert!(!stage_path.exists(), "the batch's staging folder is left");
        Ok(())
    }

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
