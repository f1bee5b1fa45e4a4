//! The state folder (`~/.local/state/pi-bootstrap/`): files kept before they were
//! replaced, stamps and due work of the steps, and the run lock.
//!
//! Everything is derived from HOME, never from XDG variables, so a temporary HOME holds
//! all the state of a sandboxed run.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use crate::fsx;

/// An error of the state folder or the lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Another run holds the lock.
    #[error(
        "another pi-bootstrap run holds the lock {lock}{holder}: wait for it to finish, or remove the file if no such run exists"
    )]
    Locked { lock: PathBuf, holder: String },
    /// A file of the state folder could not be read or written.
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: io::Error },
    /// HOME is not set.
    #[error("HOME is not set: pi-bootstrap keeps its state under $HOME/.local/state/pi-bootstrap")]
    NoHome,
}

fn io_err<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StateError + 'p {
    move |source| StateError::Io { action, path: path.to_path_buf(), source }
}

/// The HOME of this run, from the environment.
pub fn home_from_env() -> Result<PathBuf, StateError> {
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from).ok_or(StateError::NoHome)
}

/// The state folder of one HOME.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
    run_id: String,
}

impl StateDir {
    /// The state folder under `home`; nothing is created until something is written.
    pub fn new(home: &Path) -> StateDir {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string().replace(':', "");
        let nth = RUNS.fetch_add(1, Ordering::Relaxed);
        StateDir { root: home.join(".local/state/pi-bootstrap"), run_id: format!("{now}-{}-{nth}", std::process::id()) }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file of the state folder, such as `restarts.json`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Where this run keeps the files it replaces.
    pub fn kept_root(&self) -> PathBuf {
        self.root.join("kept").join(&self.run_id)
    }

    /// Moves or copies what is at `path` aside before it is replaced, and returns where
    /// it went. Files and symlinks are copied (the caller then replaces them
    /// atomically); a folder is moved whole. A file kept twice in one run keeps its
    /// first copy (what was there before the run); a folder kept twice goes beside the
    /// first (`NAME.2`, ...).
    pub fn keep(&self, path: &Path) -> Result<PathBuf, StateError> {
        let relative = path.strip_prefix("/").unwrap_or(path);
        let mut dest = self.kept_root().join(relative);
        let parent = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent).map_err(io_err("cannot create", &parent))?;
        let meta = fs::symlink_metadata(path).map_err(io_err("cannot read", path))?;
        if fs::symlink_metadata(&dest).is_ok() {
            if !meta.is_dir() || meta.file_type().is_symlink() {
                return Ok(dest);
            }
            let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let mut n = 2;
            while fs::symlink_metadata(&dest).is_ok() {
                dest = parent.join(format!("{name}.{n}"));
                n += 1;
            }
        }
        if meta.file_type().is_symlink() {
            let to = fs::read_link(path).map_err(io_err("cannot read the link", path))?;
            std::os::unix::fs::symlink(to, &dest).map_err(io_err("cannot keep a copy at", &dest))?;
        } else if meta.is_dir() {
            fs::rename(path, &dest).map_err(io_err("cannot move aside", path))?;
        } else {
            fs::copy(path, &dest).map_err(io_err("cannot keep a copy at", &dest))?;
        }
        Ok(dest)
    }

    /// Writes a state file atomically.
    pub fn write(&self, name: &str, content: &[u8]) -> Result<(), StateError> {
        let path = self.file(name);
        fsx::write_atomic(&path, content, Some(0o600)).map_err(io_err("cannot write", &path))
    }

    /// Reads a state file; `None` when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.file(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("cannot read", &path)(e)),
        }
    }

    /// Removes a state file once the work it records is done.
    pub fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.file(name);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("cannot remove", &path)(e)),
            _ => Ok(()),
        }
    }

    /// Takes the run lock, or says who holds it. The lock is released when the returned
    /// value is dropped (or the process dies).
    pub fn lock(&self) -> Result<RunLock, StateError> {
        let path = self.file("lock");
        fs::create_dir_all(&self.root).map_err(io_err("cannot create", &self.root))?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("cannot open", &path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { String::new() } else { format!(" ({holder})") };
                return Err(StateError::Locked { lock: path, holder });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("cannot lock", &path)(e)),
        }
        let who = format!("pid {}, {}", std::process::id(), std::env::args().next().unwrap_or_default());
        file.set_len(0).and_then(|()| file.write_all(who.as_bytes())).map_err(io_err("cannot write", &path))?;
        Ok(RunLock { _file: file })
    }
}

/// Holds the run lock while alive.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        let first = state.lock()?;
        let second = state.lock();
        let message = second.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("another pi-bootstrap run holds the lock"), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        drop(first);
        state.lock()?;
        Ok(())
    }

    #[test]
    fn keep_copies_files_and_links_and_moves_folders() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        let file = home.path().join("f");
        fs::write(&file, "old")?;
        let kept = state.keep(&file)?;
        assert_eq!(fs::read_to_string(&kept)?, "old");
        assert!(file.exists());
        let dir = home.path().join("d");
        fs::create_dir(&dir)?;
        fs::write(dir.join("x"), "x")?;
        let kept = state.keep(&dir)?;
        assert!(!dir.exists());
        assert_eq!(fs::read_to_string(kept.join("x"))?, "x");
        // Kept twice in one run: the first copy of a file stays, a folder goes beside.
        fs::write(&file, "newer")?;
        assert_eq!(fs::read_to_string(state.keep(&file)?)?, "old");
        fs::create_dir(&dir)?;
        fs::write(dir.join("y"), "y")?;
        let again = state.keep(&dir)?;
        assert_ne!(again, kept);
        assert_eq!(fs::read_to_string(again.join("y"))?, "y");
        assert_eq!(fs::read_to_string(kept.join("x"))?, "x");
        Ok(())
    }
}
