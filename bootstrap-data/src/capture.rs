//! Consistent capture of data that services write to while a backup runs.
//!
//! Each `backup`-class path has a capture mode (`common::durable::DataPath::capture`;
//! a file belongs to the most specific path that holds it):
//!
//! - `sqlite`: every SQLite database in the folder (found by its 16-byte header) is
//!   copied online through SQLite's backup API, every page in one step, that is in one
//!   read transaction: the copy is the database as it was at one instant, and writers
//!   keep going (in WAL mode they are not even held up). The copy goes into
//!   [`CAPTURE_DIR`] beside the database; the snapshot takes it and leaves the live
//!   database and its `-wal`, `-shm` and `-journal` out, so a restore never pairs a
//!   database with a journal of another moment. A restore moves the copy back to the
//!   database's own path ([`put_back`]). The copies go once the snapshot is made.
//! - `stop`: the running services that write to the path are stopped while the snapshot
//!   is made and started again after, failure or not (recorded first, as a restore's
//!   are, so a backup killed meanwhile leaves them for the next run to start).
//! - `live`: read as it is. A database found in a live path is named in the report: it
//!   may come back torn.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::durable::{self, DataPath};
use common::manifest::{BackupClass, Capture, Manifest};
use common::report::{Report, tilde};
use common::state::StateDir;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::paths::{BackupSet, Exclude, within};
use crate::services;

/// The folder, beside a database, that holds its online copy in a snapshot.
pub const CAPTURE_DIR: &str = ".pi-bootstrap-capture";

/// Why a live database is left out of a snapshot.
pub const COPIED_ONLINE: &str = "copied online through SQLite's backup API, with its journals";
/// Why its journals are (not shown in reports: the database's line says it).
pub const JOURNAL: &str = "the journal of a database copied online";

/// How long a copy waits for a lock held by a writer before giving up.
const BUSY_FOR: Duration = Duration::from_secs(60);

/// What was done before the snapshot, to undo after it.
#[derive(Debug, Default)]
pub struct Prepared {
    /// The capture folders made (removed by [`finish`]).
    folders: Vec<PathBuf>,
    /// The units stopped, to start again.
    stopped: Vec<String>,
    /// Per data path id: how it was captured, for its item.
    pub notes: BTreeMap<String, Vec<String>>,
    /// Per data path id: why it could not be captured as declared (the backup does not
    /// go on: a torn copy must not pass for a good one).
    pub errors: BTreeMap<String, String>,
}

/// Does `path` start with SQLite's header?
fn is_sqlite(path: &Path) -> bool {
    let mut head = [0u8; 16];
    fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && &head == b"SQLite format 3\0"
}

/// The databases under `root` that `root`'s capture decides for: not inside a more
/// specific data path, nor in what the backup leaves out.
fn databases(manifest: &Manifest, root: &DataPath, all: &[DataPath]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![root.path.clone()];
    while let Some(dir) = stack.pop() {
        let meta = fs::symlink_metadata(&dir)?;
        if !meta.is_dir() {
            continue;
        }
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_name() == CAPTURE_DIR
                || durable::class_of(manifest, &path) != Some(BackupClass::Backup)
                || durable::holding(all, &path).is_some_and(|d| d.path != root.path && d.capture != Capture::Sqlite)
            {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() && is_sqlite(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The online copy of `db` at `copy`: all pages in one step (one read transaction),
/// retried while a writer holds the lock, at most [`BUSY_FOR`].
fn copy_online(db: &Path, copy: &Path) -> Result<(), String> {
    // Read-write without create: our connection closing last cleans up the `-wal` and
    // `-shm` files it made, as any SQLite client does; it never writes pages.
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| format!("cannot open {}: {e}", db.display()))?;
    source.busy_timeout(BUSY_FOR).map_err(|e| e.to_string())?;
    let partial = copy.with_extension("partial");
    let _ = fs::remove_file(&partial);
    let mut target = Connection::open(&partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    let started = Instant::now();
    {
        let backup = Backup::new(&source, &mut target).map_err(|e| format!("cannot copy {}: {e}", db.display()))?;
        loop {
            match backup.step(-1) {
                Ok(StepResult::Done) => break,
                Ok(_) if started.elapsed() < BUSY_FOR => std::thread::sleep(Duration::from_millis(50)),
                Ok(_) => return Err(format!("{} stayed locked by a writer for {}s", db.display(), BUSY_FOR.as_secs())),
                Err(e) => return Err(format!("cannot copy {}: {e}", db.display())),
            }
        }
    }
    drop(target);
    drop(source);
    if let Ok(meta) = fs::metadata(db) {
        let _ = fs::set_permissions(&partial, meta.permissions());
    }
    fs::rename(&partial, copy).map_err(|e| format!("cannot put the copy of {} in place: {e}", db.display()))
}

/// Prepares the snapshot of `present` (the data paths that exist): online copies of
/// the databases of `sqlite` paths (their live files excluded from `set`), the owners
/// of `stop` paths stopped, the databases of `live` paths named.
pub fn prepare(
    manifest: &Manifest,
    present: &[DataPath],
    all: &[DataPath],
    set: &mut BackupSet,
    state: &StateDir,
    home: &Path,
    report: &mut Report,
) -> Prepared {
    let mut prepared = Prepared::default();
    let mut done: Vec<PathBuf> = Vec::new();
    for path in present {
        match path.capture {
            Capture::Sqlite => {
                let found = match databases(manifest, path, all) {
                    Ok(found) => found,
                    Err(e) => {
                        prepared.errors.insert(path.id.clone(), format!("cannot look for its databases: {e}"));
                        continue;
                    }
                };
                let mut copied = 0;
                for db in &found {
                    if done.contains(db) {
                        continue;
                    }
                    match capture_one(db, &mut prepared, set) {
                        Ok(()) => copied += 1,
                        Err(e) => {
                            prepared.errors.insert(path.id.clone(), e);
                        }
                    }
                    done.push(db.clone());
                }
                if copied > 0 {
                    let shown: Vec<String> = found.iter().map(|d| tilde(d, home)).collect();
                    let note = format!(
                        "{} SQLite database{} copied online ({})",
                        copied,
                        if copied == 1 { "" } else { "s" },
                        shown.join(", ")
                    );
                    prepared.notes.entry(path.id.clone()).or_default().push(note);
                }
            }
            Capture::Live => {
                if let Ok(found) = databases(manifest, path, all)
                    && !found.is_empty()
                {
                    let shown: Vec<String> = found.iter().map(|d| tilde(d, home)).collect();
                    prepared.notes.entry(path.id.clone()).or_default().push(format!(
                        "captured live with SQLite databases in it ({}), which may come back torn: declare `capture: sqlite`",
                        shown.join(", ")
                    ));
                }
            }
            Capture::Stop => {}
        }
    }
    // The owners of `stop` paths, stopped in one call.
    let mut units: Vec<String> = Vec::new();
    let stops: BTreeMap<&str, Vec<String>> = present
        .iter()
        .filter(|p| p.capture == Capture::Stop)
        .map(|p| (p.id.as_str(), stopping(manifest, p, all)))
        .collect();
    for unit in stops.values().flatten() {
        if !units.contains(unit) {
            units.push(unit.clone());
        }
    }
    let stopped = services::stop(&units, state, report);
    if let Some(e) = &stopped.error {
        for path in present.iter().filter(|p| stops.get(p.id.as_str()).is_some_and(|u| !u.is_empty())) {
            prepared.errors.insert(path.id.clone(), e.clone());
        }
    }
    for path in present.iter().filter(|p| p.capture == Capture::Stop) {
        let own: Vec<&str> = stops
            .get(path.id.as_str())
            .into_iter()
            .flatten()
            .filter(|u| stopped.units.contains(u))
            .map(String::as_str)
            .collect();
        if !own.is_empty() {
            prepared
                .notes
                .entry(path.id.clone())
                .or_default()
                .push(format!("with {} stopped meanwhile", own.join(", ")));
        }
    }
    prepared.stopped = stopped.units;
    prepared
}

/// The units to stop for a `stop` path: those of the services that write to it, but
/// not of one that writes only inside a more specific path captured another way (its
/// database copied online, say).
fn stopping(manifest: &Manifest, path: &DataPath, all: &[DataPath]) -> Vec<String> {
    let mut units = Vec::new();
    for service in &manifest.services {
        let decided_here = durable::owned_paths(manifest, service).into_iter().any(|owned| {
            durable::overlap(owned, &path.path)
                && !all.iter().any(|inner| {
                    inner.path != path.path
                        && within(&inner.path, &path.path)
                        && within(owned, &inner.path)
                        && inner.capture != Capture::Stop
                })
        });
        if decided_here {
            units.extend(service.unit_names());
        }
    }
    units
}

/// One database: its online copy beside it, its live files left out of the snapshot.
fn capture_one(db: &Path, prepared: &mut Prepared, set: &mut BackupSet) -> Result<(), String> {
    let folder = db.parent().map(|p| p.join(CAPTURE_DIR)).ok_or_else(|| format!("{} has no folder", db.display()))?;
    if !prepared.folders.contains(&folder) {
        // One left by a backup that was killed: ours, and stale.
        if folder.exists() {
            fs::remove_dir_all(&folder).map_err(|e| format!("cannot clear {}: {e}", folder.display()))?;
        }
        fs::create_dir(&folder).map_err(|e| format!("cannot create {}: {e}", folder.display()))?;
        prepared.folders.push(folder.clone());
    }
    let name = db.file_name().ok_or_else(|| format!("{} has no name", db.display()))?;
    copy_online(db, &folder.join(name))?;
    set.excludes.push(Exclude { path: db.to_path_buf(), why: COPIED_ONLINE.to_owned() });
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut live = db.as_os_str().to_owned();
        live.push(suffix);
        set.excludes.push(Exclude { path: PathBuf::from(live), why: JOURNAL.to_owned() });
    }
    Ok(())
}

/// After the snapshot (made or not): the copies go, the stopped units start again.
pub fn finish(prepared: &Prepared, state: &StateDir, report: &mut Report) -> Result<(), String> {
    for folder in &prepared.folders {
        // Only what this run made: the folder holds copies of databases that are in place.
        let _ = fs::remove_dir_all(folder);
    }
    services::start(&prepared.stopped, state, report)
}

/// In a restored tree at `root`: every capture folder's copies moved to their
/// databases' own paths (the snapshot has no live database there), then the folder
/// removed.
pub fn put_back(root: &Path) -> Result<(), String> {
    let Ok(meta) = fs::symlink_metadata(root) else { return Ok(()) };
    if !meta.is_dir() {
        return Ok(());
    }
    let entries = fs::read_dir(root).map_err(|e| format!("cannot read {}: {e}", root.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if entry.file_name() == CAPTURE_DIR {
            let copies = fs::read_dir(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for copy in copies.flatten() {
                let to = root.join(copy.file_name());
                if copy.file_name().to_string_lossy().ends_with(".partial") {
                    continue;
                }
                fs::rename(copy.path(), &to).map_err(|e| format!("cannot put {} back: {e}", to.display()))?;
            }
            fs::remove_dir_all(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
        } else {
            put_back(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests make their fixtures plainly")]
mod tests {
    use super::*;

    #[test]
    fn copies_go_back_to_their_databases_and_the_folder_goes() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        fs::create_dir_all(data.join(CAPTURE_DIR))?;
        fs::create_dir_all(data.join("sub").join(CAPTURE_DIR))?;
        fs::write(data.join(CAPTURE_DIR).join("a.db"), "copy of a")?;
        fs::write(data.join("sub").join(CAPTURE_DIR).join("b.db"), "copy of b")?;
        fs::write(data.join("notes.txt"), "notes")?;
        put_back(&data).map_err(io::Error::other)?;
        assert_eq!(fs::read_to_string(data.join("a.db"))?, "copy of a");
        assert_eq!(fs::read_to_string(data.join("sub/b.db"))?, "copy of b");
        assert!(!data.join(CAPTURE_DIR).exists() && !data.join("sub").join(CAPTURE_DIR).exists());
        Ok(())
    }

    #[test]
    fn an_online_copy_holds_what_was_committed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("live.db");
        let live = Connection::open(&db)?;
        live.pragma_update(None, "journal_mode", "WAL")?;
        live.execute_batch("CREATE TABLE t (x INTEGER); PRAGMA user_version = 7;")?;
        for i in 0..50 {
            live.execute("INSERT INTO t VALUES (?1)", [i])?;
        }
        let copy = dir.path().join("copy.db");
        copy_online(&db, &copy).map_err(io::Error::other)?;
        let back = Connection::open(&copy)?;
        let rows: i64 = back.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        let version: i64 = back.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let check: String = back.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!((rows, version, check.as_str()), (50, 7, "ok"));
        assert!(is_sqlite(&db) && !is_sqlite(&dir.path().join("nothing")));
        Ok(())
    }
}
