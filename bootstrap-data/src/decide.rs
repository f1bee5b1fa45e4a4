//! What a restore does with one path that is not settled on this host yet, from the
//! evidence: where the path stands (`common::durable`), what is at it now and whose
//! that is ([`Held`], the scan's entries), and what the snapshot holds there.
//!
//! | here                                        | snapshot holds data | result            |
//! |---------------------------------------------|---------------------|-------------------|
//! | missing, or only what a fresh host gets      | yes                 | restore           |
//! | data, the same files as the snapshot         | yes                 | settle: the same  |
//! | data written on this host since pi-bootstrap first ran here, where nothing was before | yes | restore, keeping it aside |
//! | data that was here before, or came with older times (copied in) | yes | left alone, said so |
//! | anything                                    | no (not in it)      | settle: nothing to restore |
//!
//! "The same" compares every file's size and modification time with the snapshot's
//! listing (what restic restores exactly), and the set of entries: never sizes alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::durable::How;
use common::durable::provenance::{Entry, Held, Kind, Origin};
use common::report::Status;

use crate::clock;
use crate::restic::{InSnapshot, Node};

/// Where an unsettled path stands (owned: the ledger is changed while plans live).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsettled {
    /// Held nothing but what a fresh host gets when pi-bootstrap first saw it.
    Awaiting { since: Option<SystemTime> },
    /// Held data when pi-bootstrap first saw it.
    Preexisting { since: Option<SystemTime>, held: String },
}

/// Why a path is restored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// Missing (or an empty folder of a settled path).
    Missing,
    /// It held only what a fresh host gets (described).
    Fresh(String),
    /// It held only what was written on this host since pi-bootstrap first ran here.
    WrittenHere { since: SystemTime },
    /// `--force` or `--snapshot`.
    Asked,
}

/// What to do with an unsettled path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Restore(Why),
    /// Nothing to restore: settle it with `how`, reported with `status` and `detail`.
    Settle {
        how: How,
        status: Status,
        detail: String,
    },
}

/// The snapshot a path is compared with.
#[derive(Debug, Clone, Copy)]
pub struct Against<'a> {
    pub short_id: &'a str,
    pub time: Option<SystemTime>,
    pub host: &'a str,
}

impl Against<'_> {
    fn named(&self) -> String {
        match self.time {
            Some(time) => format!("snapshot {} of {}", self.short_id, clock::show_time(time)),
            None => format!("snapshot {}", self.short_id),
        }
    }
}

/// The verdict for an unsettled path. `tree` is the snapshot's listing at and under the
/// path, when it was asked for (the path holds data here and there).
pub fn verdict(
    standing: &Unsettled,
    held: &Held,
    entries: &[Entry],
    in_snapshot: InSnapshot,
    tree: Option<&[Node]>,
    snapshot: Against<'_>,
) -> Verdict {
    let settle = |how, status, detail: String| Verdict::Settle { how, status, detail };
    let here = held.describe();
    match (in_snapshot, held) {
        (InSnapshot::Absent, Held::Missing) => settle(
            How::NothingToRestore,
            Status::Skipped,
            format!(
                "not in {}, the newest of host {} that covers it: nothing to restore (it did not exist then)",
                snapshot.named(),
                snapshot.host
            ),
        ),
        (InSnapshot::Absent, _) => settle(
            How::NothingToRestore,
            Status::Ok,
            format!(
                "holds {here}; {}, the newest of host {} that covers it, does not have it: this host's copy is the only one",
                snapshot.named(),
                snapshot.host
            ),
        ),
        (InSnapshot::EmptyFolder, Held::Missing) | (InSnapshot::Data, Held::Missing) => Verdict::Restore(Why::Missing),
        (InSnapshot::EmptyFolder, Held::Fresh(_)) => settle(
            How::SameAsSnapshot,
            Status::Ok,
            format!("holds {here}, and {} has an empty folder here", snapshot.named()),
        ),
        (InSnapshot::EmptyFolder, Held::Data { newest, .. }) => settle(
            How::KeptHere,
            Status::Ok,
            format!(
                "holds {here}{}, where {} has an empty folder: left alone",
                newest.map(|t| format!(" (newest modified {})", clock::show_time(t))).unwrap_or_default(),
                snapshot.named()
            ),
        ),
        (InSnapshot::Data, Held::Fresh(what)) => Verdict::Restore(Why::Fresh(what.clone())),
        (InSnapshot::Data, Held::Data { newest, .. }) => {
            if tree.is_some_and(|tree| same_as_snapshot(entries, tree)) {
                return settle(
                    How::SameAsSnapshot,
                    Status::Ok,
                    format!("already holds what {} holds (the same files, sizes and times)", snapshot.named()),
                );
            }
            let data: Vec<&Entry> = entries.iter().filter(|e| e.origin == Origin::Data).collect();
            if let Unsettled::Awaiting { since: Some(since) } = standing
                && data.iter().all(|e| e.modified.is_some_and(|m| m >= *since))
            {
                return Verdict::Restore(Why::WrittenHere { since: *since });
            }
            let newer = match (newest, snapshot.time) {
                (Some(newest), Some(made)) if *newest > made => {
                    format!(", newer than {} (modified {})", snapshot.named(), clock::show_time(*newest))
                }
                _ => format!(", which differs from {}", snapshot.named()),
            };
            let whose = match standing {
                Unsettled::Preexisting { since: Some(since), held } => format!(
                    "holds data that was here before pi-bootstrap first ran on this host ({}: {held})",
                    clock::show_time(*since)
                ),
                Unsettled::Preexisting { since: None, held } => {
                    format!("holds data that was here before pi-bootstrap changed anything on this host ({held})")
                }
                Unsettled::Awaiting { since } => format!(
                    "holds data put here since pi-bootstrap first ran on this host{} with times from before (copied in from elsewhere?): {here}",
                    since.map(|s| format!(" ({})", clock::show_time(s))).unwrap_or_default()
                ),
            };
            settle(
                How::KeptHere,
                Status::Ok,
                format!(
                    "{whose}{newer}: left alone (restore --snapshot {} puts the snapshot's in its place, keeping this aside first)",
                    snapshot.short_id
                ),
            )
        }
    }
}

/// What a scan and a snapshot's listing are compared on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Folder,
    File { size: u64, modified: Option<Duration>, mode: u32 },
    Link,
    Other,
}

fn since_epoch(time: Option<SystemTime>) -> Option<Duration> {
    time.and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
}

/// Do the entries here hold what the snapshot holds: the same paths, and every file of
/// the same size, mode and modification time (to the microsecond)? What a backup leaves
/// out is not compared.
pub fn same_as_snapshot(entries: &[Entry], tree: &[Node]) -> bool {
    let left_out: Vec<&Path> =
        entries.iter().filter(|e| e.origin == Origin::LeftOut).map(|e| e.path.as_path()).collect();
    let micros = |d: Option<Duration>| d.map(|d| d.as_micros());
    let here: BTreeMap<&PathBuf, Shape> = entries
        .iter()
        .filter(|e| e.origin != Origin::LeftOut)
        .map(|e| {
            let shape = match e.kind {
                Kind::Folder => Shape::Folder,
                Kind::File => Shape::File { size: e.size, modified: since_epoch(e.modified), mode: e.mode },
                Kind::Link => Shape::Link,
                Kind::Other => Shape::Other,
            };
            (&e.path, shape)
        })
        .collect();
    let there: BTreeMap<&PathBuf, Shape> = tree
        .iter()
        .filter(|n| !left_out.iter().any(|l| n.path.starts_with(l)))
        .map(|n| {
            let shape = match n.kind.as_str() {
                "dir" => Shape::Folder,
                "file" => Shape::File { size: n.size, modified: since_epoch(n.modified()), mode: n.permissions() },
                "symlink" => Shape::Link,
                _ => Shape::Other,
            };
            (&n.path, shape)
        })
        .collect();
    here.len() == there.len()
        && here.iter().all(|(path, shape)| match (shape, there.get(path)) {
            (
                Shape::File { size, modified, mode },
                Some(Shape::File { size: size2, modified: modified2, mode: mode2 }),
            ) => size == size2 && mode == mode2 && micros(*modified) == micros(*modified2),
            (shape, Some(other)) => shape == other,
            (_, None) => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn entry(path: &str, kind: Kind, origin: Origin, modified: u64) -> Entry {
        Entry { path: PathBuf::from(path), kind, size: 3, modified: Some(at(modified)), mode: 0o600, origin }
    }

    fn node(path: &str, kind: &str, modified: &str) -> Node {
        Node { path: PathBuf::from(path), kind: kind.into(), size: 3, mode: 0o600, mtime: modified.into() }
    }

    const SNAP: Against<'static> = Against { short_id: "1a2b3c4d", time: None, host: "h" };

    fn data_here(modified: u64) -> Vec<Entry> {
        vec![entry("/h/d", Kind::Folder, Origin::Folder, 1), entry("/h/d/db", Kind::File, Origin::Data, modified)]
    }

    #[test]
    fn a_fresh_copy_written_since_the_first_run_is_restored_over() {
        let entries = data_here(2_000);
        let held = Held::of(&entries);
        let standing = Unsettled::Awaiting { since: Some(at(1_000)) };
        let v = verdict(&standing, &held, &entries, InSnapshot::Data, Some(&[]), SNAP);
        assert_eq!(v, Verdict::Restore(Why::WrittenHere { since: at(1_000) }));
    }

    #[test]
    fn data_from_before_the_first_run_is_left_alone_and_said_so() {
        let entries = data_here(500);
        let held = Held::of(&entries);
        for standing in [
            Unsettled::Awaiting { since: Some(at(1_000)) },
            Unsettled::Preexisting { since: Some(at(1_000)), held: "1 entry of data".into() },
        ] {
            let snapshot = Against { time: Some(at(400)), ..SNAP };
            let Verdict::Settle { how, status, detail } =
                verdict(&standing, &held, &entries, InSnapshot::Data, Some(&[]), snapshot)
            else {
                panic!("restored over data from before the first run");
            };
            assert_eq!((how, status), (How::KeptHere, Status::Ok));
            assert!(detail.contains("newer than snapshot 1a2b3c4d") && detail.contains("left alone"), "{detail}");
        }
    }

    #[test]
    fn the_same_files_as_the_snapshot_settle_without_a_restore() {
        let entries = data_here(2_000);
        let tree = [node("/h/d", "dir", "1970-01-01T00:00:01Z"), node("/h/d/db", "file", "1970-01-01T00:33:20Z")];
        assert!(same_as_snapshot(&entries, &tree));
        let v = verdict(
            &Unsettled::Awaiting { since: Some(at(1_000)) },
            &Held::of(&entries),
            &entries,
            InSnapshot::Data,
            Some(&tree),
            SNAP,
        );
        assert!(matches!(v, Verdict::Settle { how: How::SameAsSnapshot, .. }), "{v:?}");
        let older = [tree[0].clone(), node("/h/d/db", "file", "1970-01-01T00:33:19Z")];
        assert!(!same_as_snapshot(&entries, &older));
        assert!(!same_as_snapshot(&entries, &tree[..1]));
    }

    #[test]
    fn nothing_in_the_snapshot_settles_and_fresh_content_is_restored_over() {
        let v = verdict(&Unsettled::Awaiting { since: None }, &Held::Missing, &[], InSnapshot::Absent, None, SNAP);
        assert!(matches!(v, Verdict::Settle { how: How::NothingToRestore, status: Status::Skipped, .. }), "{v:?}");
        let skel = [entry("/h/.bashrc", Kind::File, Origin::Skel, 5)];
        let held = Held::of(&skel);
        let v = verdict(&Unsettled::Awaiting { since: Some(at(1)) }, &held, &skel, InSnapshot::Data, None, SNAP);
        assert!(matches!(v, Verdict::Restore(Why::Fresh(_))), "{v:?}");
    }
}
