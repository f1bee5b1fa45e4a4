//! The ledger (`~/.local/state/pi-bootstrap/durable.json`): what this host's steps know
//! of each `backup`-class path. Written only under the run lock, atomically.
//!
//! - `first_seen`: what a path held before pi-bootstrap changed anything on this HOME,
//!   and when (the first step that changes things writes it, before it changes them);
//! - `settled`: the paths whose data is this host's now, how and when that was decided;
//! - `waiting`: the services the services step left stopped until their data is
//!   settled, with the paths each waits for.
//!
//! The ledger names the machine (`/etc/machine-id`) and HOME (device and inode) it
//! belongs to: one that comes back with a backup of the state folder onto a new machine
//! is not this host's, and counts for nothing (it is kept aside first).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::DataPath;
use super::provenance::{Held, Provenance};
use crate::manifest::Manifest;
use crate::state::{StateDir, StateError};

/// The ledger's file in the state folder.
pub const LEDGER_FILE: &str = "durable.json";

/// Why the ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    #[error(transparent)]
    State(#[from] StateError),
    /// A path could not be looked at.
    #[error("cannot look at {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Which machine and HOME a ledger belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    machine_id: String,
    home_device: u64,
    home_inode: u64,
}

impl Identity {
    fn of(home: &Path) -> Identity {
        let machine_id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .map(|t| t.trim().to_owned())
            .find(|t| !t.is_empty())
            .unwrap_or_default();
        let (home_device, home_inode) = std::fs::metadata(home).map(|m| (m.dev(), m.ino())).unwrap_or_default();
        Identity { machine_id, home_device, home_inode }
    }
}

/// What a path held when pi-bootstrap first saw it on this HOME.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSight {
    /// When (RFC 3339).
    pub at: String,
    /// Only what a fresh host gets (or nothing): no data.
    pub fresh: bool,
    /// In a few words: "missing", "only empty folders", "12 entries of data".
    pub held: String,
}

impl FirstSight {
    pub fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.at).ok()
    }
}

/// How a path was settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum How {
    /// Restored from a snapshot.
    Restored,
    /// It already held what the snapshot holds.
    SameAsSnapshot,
    /// No snapshot of this host holds it.
    NothingToRestore,
    /// It holds this host's own data, which differs from the snapshot: left alone.
    KeptHere,
    /// Backed up from this host.
    BackedUp,
}

/// A snapshot, as the ledger names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// restic's short id.
    pub id: String,
    /// When it was made (RFC 3339).
    pub time: String,
}

/// A settled path: its data is this host's now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// When (RFC 3339).
    pub at: String,
    pub how: How,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRef>,
    /// It was a tree of empty folders when it was settled: one that still is has lost
    /// nothing since, and the repository need not be asked again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty: bool,
}

impl Settled {
    pub fn time(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339_weak(&self.at).ok()
    }

    /// For reports: "restored from snapshot 1a2b3c4d on 2026-11-30 10:00:00 UTC".
    pub fn describe(&self) -> String {
        let on = self.time().map(|t| format!(" on {}", crate::report::show_time(t))).unwrap_or_default();
        let snapshot = self.snapshot.as_ref().map_or_else(|| "a snapshot".to_owned(), |s| format!("snapshot {}", s.id));
        match self.how {
            How::Restored => format!("restored from {snapshot}{on}"),
            How::SameAsSnapshot => format!("found the same as {snapshot}{on}"),
            How::NothingToRestore => format!("nothing to restore when looked up{on}"),
            How::KeptHere => format!("this host's own data, kept over {snapshot}{on}"),
            How::BackedUp => format!("backed up in {snapshot}{on}"),
        }
    }
}

/// Where a path stands on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing<'l> {
    /// Its data is this host's.
    Settled(&'l Settled),
    /// It held nothing but what a fresh host gets when pi-bootstrap first saw it
    /// (`since`; `None` when no step has changed anything here yet), and it is not
    /// settled: its data may still come back from the backup.
    Awaiting { since: Option<SystemTime> },
    /// It held data when pi-bootstrap first saw it, and is not settled.
    Preexisting { since: Option<SystemTime>, held: String },
}

impl Standing<'_> {
    pub fn is_awaiting(&self) -> bool {
        matches!(self, Standing::Awaiting { .. })
    }
}

/// What the steps know of the `backup`-class paths of this host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ledger {
    #[serde(default)]
    host: Identity,
    #[serde(default)]
    pub first_seen: BTreeMap<PathBuf, FirstSight>,
    #[serde(default)]
    pub settled: BTreeMap<PathBuf, Settled>,
    /// Services left stopped until their data is settled, with the paths each waits for.
    #[serde(default)]
    pub waiting: BTreeMap<String, Vec<PathBuf>>,
    /// Said once, for the report: why the file on disk was not used.
    #[serde(skip)]
    pub note: Option<String>,
}

/// Now, as the ledger writes times.
pub fn now_text() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

impl Ledger {
    /// The ledger of this HOME (empty when there is none yet, or when the one there
    /// belongs to another machine or HOME).
    pub fn load(state: &StateDir, home: &Path) -> Result<Ledger, LedgerError> {
        let me = Identity::of(home);
        let Some(ledger) = state.read_json::<Ledger>(LEDGER_FILE)? else {
            return Ok(Ledger { host: me, ..Ledger::default() });
        };
        if ledger.host != me {
            return Ok(Ledger {
                host: me,
                note: Some(format!(
                    "{} was written for another machine or HOME (restored from a backup?): it counts for nothing here",
                    state.file(LEDGER_FILE).display()
                )),
                ..Ledger::default()
            });
        }
        Ok(ledger)
    }

    /// Writes the ledger (keeping a foreign one aside first).
    pub fn save(&self, state: &StateDir) -> Result<(), LedgerError> {
        if self.note.is_some() && state.file(LEDGER_FILE).exists() {
            state.keep(&state.file(LEDGER_FILE))?;
        }
        state.write_json(LEDGER_FILE, self)?;
        Ok(())
    }

    /// Where `path` stands; `provenance` tells what a path not seen yet holds now.
    pub fn standing(&self, path: &Path, provenance: &Provenance<'_>) -> Standing<'_> {
        if let Some(settled) = self.settled.get(path) {
            return Standing::Settled(settled);
        }
        match self.first_seen.get(path) {
            Some(first) if first.fresh => Standing::Awaiting { since: first.time() },
            Some(first) => Standing::Preexisting { since: first.time(), held: first.held.clone() },
            None => match provenance.scan(path).map(|entries| Held::of(&entries)) {
                Ok(held) if !held.is_data() => Standing::Awaiting { since: None },
                Ok(held) => Standing::Preexisting { since: None, held: held.describe() },
                // Unreadable: treat it as data, never as something to restore over.
                Err(e) => Standing::Preexisting { since: None, held: format!("unreadable ({e})") },
            },
        }
    }

    /// Writes down what each data path not seen yet holds now. Returns whether
    /// anything was added.
    pub fn note_first_sight(&mut self, paths: &[DataPath], provenance: &Provenance<'_>) -> bool {
        let at = now_text();
        let mut added = false;
        for path in paths {
            if self.first_seen.contains_key(&path.path) {
                continue;
            }
            // An unreadable path counts as data: never something to restore over.
            let sight = match provenance.scan(&path.path) {
                Ok(entries) => {
                    let held = Held::of(&entries);
                    FirstSight { at: at.clone(), fresh: !held.is_data(), held: held.describe() }
                }
                Err(e) => FirstSight { at: at.clone(), fresh: false, held: format!("unreadable ({e})") },
            };
            self.first_seen.insert(path.path.clone(), sight);
            added = true;
        }
        added
    }

    /// Settles `path` now; a path already settled the same way keeps the time it was
    /// first (so a run that finds nothing new writes nothing).
    pub fn settle(&mut self, path: &Path, how: How, snapshot: Option<SnapshotRef>) {
        let empty = crate::fsx::only_folders(path).unwrap_or(false);
        if self.settled.get(path).is_some_and(|s| s.how == how && s.snapshot == snapshot && s.empty == empty) {
            return;
        }
        self.settled.insert(path.to_path_buf(), Settled { at: now_text(), how, snapshot, empty });
    }
}

/// Before a step changes anything: writes down, for every data path the ledger has not
/// seen yet, what it holds (see [`Ledger::note_first_sight`]). Cheap once every path
/// has been seen: one read of the ledger. Call it with the run lock held.
pub fn note_first_sight(manifest: &Manifest, state: &StateDir, home: &Path) -> Result<(), LedgerError> {
    let paths = super::data_paths(manifest);
    if paths.is_empty() {
        return Ok(());
    }
    let mut ledger = Ledger::load(state, home)?;
    if paths.iter().all(|p| ledger.first_seen.contains_key(&p.path)) && ledger.note.is_none() {
        return Ok(());
    }
    let unseen: Vec<&Path> =
        paths.iter().filter(|p| !ledger.first_seen.contains_key(&p.path)).map(|p| p.path.as_path()).collect();
    let provenance = Provenance::new(manifest, home, &unseen);
    ledger.note_first_sight(&paths, &provenance);
    ledger.save(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_paths_describe_how() {
        let settled = Settled {
            at: "2026-11-30T10:00:00.5Z".into(),
            how: How::Restored,
            snapshot: Some(SnapshotRef { id: "1a2b3c4d".into(), time: "2026-11-29T10:00:00Z".into() }),
            empty: false,
        };
        assert_eq!(settled.describe(), "restored from snapshot 1a2b3c4d on 2026-11-30 10:00:00 UTC");
        let nothing = Settled { how: How::NothingToRestore, snapshot: None, ..settled };
        assert_eq!(nothing.describe(), "nothing to restore when looked up on 2026-11-30 10:00:00 UTC");
    }

    #[test]
    fn a_ledger_of_another_home_counts_for_nothing() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        let mut ledger = Ledger::load(&state, home.path())?;
        ledger.settle(Path::new("/x"), How::BackedUp, None);
        ledger.save(&state)?;
        assert_eq!(Ledger::load(&state, home.path())?.settled.len(), 1);
        // The same state folder seen from another HOME (a restored backup of it).
        let other = tempfile::tempdir()?;
        let moved = StateDir::new(other.path());
        std::fs::create_dir_all(moved.root())?;
        std::fs::copy(state.file(LEDGER_FILE), moved.file(LEDGER_FILE))?;
        let foreign = Ledger::load(&moved, other.path())?;
        assert!(foreign.settled.is_empty());
        assert!(foreign.note.is_some());
        Ok(())
    }
}
