//! The state folder (`~/.local/state/pi-bootstrap/`): files kept before they were
//! replaced, stamps and due work of the steps, and the run lock.
//!
//! Everything is derived from HOME, never from XDG variables, so a temporary HOME holds
//! all the state of a sandboxed run.
//!
//! The lock can be handed to a child: a process that holds it (the restore chain) runs
//! its step binaries with [`LOCK_HANDOVER_ENV`] set to `PID:LOCKFILE`
//! ([`StateDir::handover`]), and a step taking the lock with
//! [`StateDir::lock_as_step`] accepts the held lock only when that variable names its
//! own parent process and this lock file, and the lock file names that process as its
//! holder. The same variable inherited further down, or set by anyone else, opens
//! nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
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
    /// A state file is there but is not what pi-bootstrap writes there: never read as
    /// empty, which would forget the work it records.
    #[error("{} is corrupt ({why}): look at it, then move it away to start afresh", path.display())]
    Corrupt { path: PathBuf, why: String },
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

    /// Writes a state file atomically; one that already holds `content` (with the
    /// state's mode) is left as it is: a run that changes nothing writes nothing.
    pub fn write(&self, name: &str, content: &[u8]) -> Result<(), StateError> {
        let path = self.file(name);
        let same_mode =
            fs::symlink_metadata(&path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o777 == 0o600);
        if same_mode && fs::read(&path).is_ok_and(|now| now == content) {
            return Ok(());
        }
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

    /// Reads a JSON state file: `None` when it does not exist; one that does not read as
    /// a `T` is [`StateError::Corrupt`], naming the file.
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>, StateError> {
        let Some(bytes) = self.read(name)? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt { path: self.file(name), why: e.to_string() })
    }

    /// Writes a JSON state file atomically (mode 0600), readable by people.
    pub fn write_json<T: serde::Serialize>(&self, name: &str, value: &T) -> Result<(), StateError> {
        let mut json = serde_json::to_vec_pretty(value)
            .map_err(|e| StateError::Corrupt { path: self.file(name), why: e.to_string() })?;
        json.push(b'\n');
        self.write(name, &json)
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
        self.lock_with_handover(None, 0)
    }

    /// Takes the run lock as a step binary does: [`StateDir::lock`], except that a step
    /// run by the process that holds the lock (its parent, named in
    /// [`LOCK_HANDOVER_ENV`]) works under the parent's lock.
    pub fn lock_as_step(&self) -> Result<RunLock, StateError> {
        let handed = std::env::var(LOCK_HANDOVER_ENV).ok();
        self.lock_with_handover(handed.as_deref(), std::os::unix::process::parent_id())
    }

    /// What a process holding this folder's lock sets in the environment of the step
    /// binaries it runs, so that their [`StateDir::lock_as_step`] accepts its lock.
    pub fn handover(&self) -> (&'static str, String) {
        (LOCK_HANDOVER_ENV, format!("{}:{}", std::process::id(), self.file("lock").display()))
    }

    /// Takes the lock; when another process holds it, accepts it only as `handed`
    /// (the value of [`LOCK_HANDOVER_ENV`]) to a child of `parent`.
    fn lock_with_handover(&self, handed: Option<&str>, parent: u32) -> Result<RunLock, StateError> {
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
                if let Some(pid) = handed.and_then(|handed| handed_to_child(handed, parent, &path, holder)) {
                    // Nothing is written: the file goes on naming the parent.
                    return Ok(RunLock { _file: file, handed_over_by: Some(pid) });
                }
                let holder = if holder.is_empty() { String::new() } else { format!(" ({holder})") };
                return Err(StateError::Locked { lock: path, holder });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io_err("cannot lock", &path)(e)),
        }
        let who = format!("pid {}, {}", std::process::id(), std::env::args().next().unwrap_or_default());
        file.set_len(0).and_then(|()| file.write_all(who.as_bytes())).map_err(io_err("cannot write", &path))?;
        Ok(RunLock { _file: file, handed_over_by: None })
    }
}

/// The variable through which the holder of the run lock hands it to the step
/// binaries it runs: `PID:LOCKFILE` (see the module's documentation).
pub const LOCK_HANDOVER_ENV: &str = "PI_BOOTSTRAP_LOCK_HANDOVER";

/// The holder's pid, when a lock held by someone (`try_lock` said so) is the one
/// `handed` over: it names `parent` and this lock file `path`, and the lock file's
/// `holder` line (`pid N, PROGRAM`, written by whoever took the lock) names `parent`.
fn handed_to_child(handed: &str, parent: u32, path: &Path, holder: &str) -> Option<u32> {
    let (pid, file) = handed.split_once(':')?;
    let pid: u32 = pid.parse().ok()?;
    let named: u32 = holder.strip_prefix("pid ")?.split(',').next()?.parse().ok()?;
    (pid == parent && named == pid && Path::new(file) == path).then_some(pid)
}

/// Holds the run lock while alive; or, handed over, stands for the parent's lock (which
/// the parent holds for as long as its child runs).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    handed_over_by: Option<u32>,
}

impl RunLock {
    /// The pid of the parent whose lock this run works under, when it was handed over.
    pub fn handed_over_by(&self) -> Option<u32> {
        self.handed_over_by
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
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
    fn a_held_lock_is_handed_only_to_a_child_of_its_holder() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        let me = std::process::id();
        let lock_file = state.file("lock");
        let holding = state.lock()?;
        let written = fs::read_to_string(&lock_file)?;
        let (name, handed) = state.handover();
        assert_eq!(name, LOCK_HANDOVER_ENV);
        assert_eq!(handed, format!("{me}:{}", lock_file.display()));

        // The holder's own child: it works under the held lock and writes nothing.
        let child = state.lock_with_handover(Some(&handed), me)?;
        assert_eq!(child.handed_over_by(), Some(me));
        assert_eq!(fs::read_to_string(&lock_file)?, written, "the lock file still names the holder");

        let refused = |handed: &str, parent: u32| match state.lock_with_handover(Some(handed), parent) {
            Err(StateError::Locked { holder, .. }) => holder.contains(&format!("pid {me}")),
            _ => false,
        };
        // Not the holder's child (a grandchild, or a process that copied the variable).
        assert!(refused(&handed, me + 1));
        // A variable naming another lock file, or a process that is not the holder.
        assert!(refused(&format!("{me}:{}", home.path().join("elsewhere/lock").display()), me));
        assert!(refused(&format!("{}:{}", me + 1, lock_file.display()), me + 1));
        assert!(refused("", me));
        assert!(refused(&me.to_string(), me));
        assert!(state.lock().is_err(), "without the variable the lock stays held");

        // Once the holder let go, the variable is moot: the step takes the lock itself.
        drop(child);
        drop(holding);
        let taken = state.lock_with_handover(Some(&handed), me)?;
        assert_eq!(taken.handed_over_by(), None);
        assert!(state.lock().is_err(), "taken for real");
        Ok(())
    }

    #[test]
    fn a_corrupt_state_file_is_an_error_naming_it_never_read_as_empty() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        assert_eq!(state.read_json::<Vec<String>>("units.json")?, None);
        state.write_json("units.json", &vec!["a.service".to_owned()])?;
        assert_eq!(state.read_json::<Vec<String>>("units.json")?, Some(vec!["a.service".to_owned()]));
        state.write("units.json", b"[\"a.serv")?;
        let message = state.read_json::<Vec<String>>("units.json").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains(&state.file("units.json").display().to_string()) && message.contains("corrupt"),
            "{message}"
        );
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
