//! The local record of the backup (`backup-record.json` in the state folder): what the
//! repository held for this host the last time a step that changes things read it, so
//! that `bootstrap-data status` and the audit answer without restic (no process, no key
//! derivation, no repository read).
//!
//! It names the machine (`/etc/machine-id`), restic's host name and the repository
//! (without a password its url may hold) it is of, the moment the repository was read,
//! the command that read it, how many snapshots of this host there were and the newest,
//! the other hosts of the repository, and for every `backup`-class path of the
//! manifest then the newest snapshot of this host that covers it (none: in no snapshot)
//! and, once a restore put it in place, the snapshot its data came from.
//!
//! Written atomically, under the run lock, from one full `restic snapshots` listing
//! (and left as it is when it would say the same again):
//! after a successful `backup` (a listing right after the snapshot, so its id and time
//! are restic's own), after a `restore` that read the repository, after `verify`, and
//! after `forget` forgot something. Trusted only when it is of this machine, host and
//! repository and knows every path asked about ([`Record::usable_for`]); otherwise,
//! and with `--deep`, the repository is asked (read-only; the answer is not written:
//! status and the audit write nothing).
//!
//! What it cannot know: what was done to the repository by anything else since it was
//! read, such as a snapshot made by another tool or host name, or a `restic forget`
//! run by hand. Such a change shows with `--deep`, and the record is brought up to date
//! by the next backup, restore or verify.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::durable;
use common::manifest::{Backup, Manifest};
use common::report::{Item, Status, tilde};
use common::state::StateDir;
use serde::{Deserialize, Serialize};

use crate::clock;
use crate::restic::{self, Snapshot};

/// The record's file in the state folder.
pub const RECORD_FILE: &str = "backup-record.json";

/// The id of the record's item (only there when it cannot be written).
pub const RECORD_ID: &str = "data:record";

/// A snapshot, as the record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// restic's full id.
    pub id: String,
    pub short_id: String,
    /// When it was made (RFC 3339, as restic wrote it).
    pub time: String,
}

impl Seen {
    pub fn of(snapshot: &Snapshot) -> Seen {
        Seen { id: snapshot.id.clone(), short_id: snapshot.short_id.clone(), time: snapshot.time.clone() }
    }

    /// When it was made; `None` when restic wrote a time this cannot read.
    pub fn when(&self) -> Option<SystemTime> {
        clock::parse_rfc3339(&self.time)
    }
}

/// What the record knows of one path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRecord {
    /// The newest snapshot of this host that covers it; `None`: in no snapshot.
    pub newest: Option<Seen>,
    /// The snapshot its data came from, when a restore on this host put it in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from: Option<Seen>,
}

/// The local record of the backup (see the module's documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The machine it was written on (`/etc/machine-id`).
    pub machine_id: String,
    /// restic's host name of this host's snapshots.
    pub host: String,
    /// The repository, without a password its url may hold.
    pub repository: String,
    /// When the repository was read (RFC 3339, UTC).
    pub time: String,
    /// The command that read it: `backup`, `restore`, `verify`, `forget` (or `status`
    /// for an answer that was not written).
    pub by: String,
    /// How many snapshots of this host the repository held.
    pub snapshots: usize,
    /// The newest of them.
    pub newest: Option<Seen>,
    /// The hosts of the repository's other snapshots.
    #[serde(default)]
    pub other_hosts: Vec<String>,
    /// Every `backup`-class path of the manifest when it was written.
    pub paths: BTreeMap<PathBuf, PathRecord>,
}

/// Why the record does not answer, as the detail says it ("asked the repository: ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unusable {
    /// `--deep`.
    Deep,
    /// There is none yet.
    Missing,
    /// It cannot be read.
    Unreadable(String),
    /// It is of another machine, host name or repository.
    Foreign(&'static str),
    /// It does not know a path the manifest declares now.
    NewPath(PathBuf),
}

impl Unusable {
    /// For the repository's detail.
    pub fn describe(&self, home: &Path) -> String {
        match self {
            Unusable::Deep => "--deep".to_owned(),
            Unusable::Missing => "no local record yet: bootstrap-data backup, restore or verify writes it".to_owned(),
            Unusable::Unreadable(why) => format!("the local record cannot be read: {why}"),
            Unusable::Foreign(what) => format!("the local record is of another {what}"),
            Unusable::NewPath(path) => format!("the local record does not know {} yet", tilde(path, home)),
        }
    }
}

/// This machine's id, as the ledger names machines.
pub fn machine_id() -> String {
    ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.trim().to_owned())
        .find(|t| !t.is_empty())
        .unwrap_or_default()
}

impl Record {
    /// The record a full listing of the repository (`all`, every host) gives for the
    /// `backup`-class paths of `manifest`; what `previous` (when of this machine, host
    /// and repository) says each path was restored from is kept.
    pub fn from_listing(
        manifest: &Manifest,
        backup: &Backup,
        host: &str,
        all: &[Snapshot],
        by: &str,
        previous: Option<&Record>,
    ) -> Record {
        let repository = restic::without_password(&backup.repository.value);
        let previous = previous.filter(|p| p.is_of(&repository, host));
        let mine: Vec<Snapshot> = all.iter().filter(|s| s.hostname == host).cloned().collect();
        let newest = mine.iter().filter_map(|s| Some((s.when()?, s))).max_by_key(|(when, _)| *when).map(|(_, s)| s);
        let mut other_hosts: Vec<String> =
            all.iter().filter(|s| s.hostname != host).map(|s| s.hostname.clone()).collect();
        other_hosts.sort_unstable();
        other_hosts.dedup();
        let paths = durable::data_paths(manifest)
            .into_iter()
            .map(|path| {
                let restored_from =
                    previous.and_then(|p| p.paths.get(&path.path)).and_then(|p| p.restored_from.clone());
                let newest = restic::newest_covering(&mine, &path.path).map(Seen::of);
                (path.path, PathRecord { newest, restored_from })
            })
            .collect();
        Record {
            machine_id: machine_id(),
            host: host.to_owned(),
            repository,
            time: durable::now_text(),
            by: by.to_owned(),
            snapshots: mine.len(),
            newest: newest.map(Seen::of),
            other_hosts,
            paths,
        }
    }

    /// Is it of this machine, host and repository (the repository without password)?
    fn is_of(&self, repository: &str, host: &str) -> bool {
        self.machine_id == machine_id() && self.host == host && self.repository == repository
    }

    /// When the repository was read for it.
    pub fn when(&self) -> Option<SystemTime> {
        clock::parse_rfc3339(&self.time)
    }

    /// The newest snapshot of this host that covers `path`, as recorded.
    pub fn newest_of(&self, path: &Path) -> Option<&Seen> {
        self.paths.get(path).and_then(|p| p.newest.as_ref())
    }

    /// Whether it answers for `paths` of `host` in the manifest's repository: of this
    /// machine, host and repository, and knowing every one of them.
    pub fn usable_for(&self, backup: &Backup, host: &str, paths: &[&Path]) -> Result<(), Unusable> {
        if self.machine_id != machine_id() {
            return Err(Unusable::Foreign("machine"));
        }
        if self.repository != restic::without_password(&backup.repository.value) {
            return Err(Unusable::Foreign("repository"));
        }
        if self.host != host {
            return Err(Unusable::Foreign("host name"));
        }
        match paths.iter().find(|p| !self.paths.contains_key(**p)) {
            Some(path) => Err(Unusable::NewPath(path.to_path_buf())),
            None => Ok(()),
        }
    }

    /// "from the local record of 2026-11-30 10:00:00 UTC".
    pub fn source(&self) -> String {
        match self.when() {
            Some(when) => format!("from the local record of {}", clock::show_time(when)),
            None => format!("from the local record of {:?}", self.time),
        }
    }
}

/// The record in `state`, when it answers for `paths` of `host` (see
/// [`Record::usable_for`]); `deep` never takes it.
pub fn usable(state: &StateDir, backup: &Backup, host: &str, paths: &[&Path], deep: bool) -> Result<Record, Unusable> {
    if deep {
        return Err(Unusable::Deep);
    }
    let record = match state.read_json::<Record>(RECORD_FILE) {
        Ok(Some(record)) => record,
        Ok(None) => return Err(Unusable::Missing),
        Err(e) => return Err(Unusable::Unreadable(e.to_string())),
    };
    record.usable_for(backup, host, paths)?;
    Ok(record)
}

/// The record in `state` as it is, when it can be read (for what it says paths were
/// restored from).
fn previous(state: &StateDir) -> Option<Record> {
    state.read_json::<Record>(RECORD_FILE).ok().flatten()
}

/// Writes the record of a full listing `all`, marking `restored` (each path with the
/// snapshot it was just restored from). Call it with the run lock held. Returns the
/// failed item that says why it could not be written, if it could not.
pub fn write(
    state: &StateDir,
    manifest: &Manifest,
    backup: &Backup,
    host: &str,
    all: &[Snapshot],
    by: &str,
    restored: &[(PathBuf, Seen)],
) -> Option<Item> {
    let previous = previous(state);
    let mut record = Record::from_listing(manifest, backup, host, all, by, previous.as_ref());
    for (path, seen) in restored {
        if let Some(entry) = record.paths.get_mut(path) {
            entry.restored_from = Some(seen.clone());
        }
    }
    // What it says unchanged: left as it is (a run that changes nothing writes nothing).
    if previous.is_some_and(|p| Record { time: record.time.clone(), by: record.by.clone(), ..p } == record) {
        return None;
    }
    state.write_json(RECORD_FILE, &record).err().map(|e| failed_item(state, e.to_string()))
}

/// Removes the record (when what it says may no longer be true and it cannot be
/// brought up to date): status then asks the repository.
pub fn forget(state: &StateDir) -> Option<Item> {
    state.remove(RECORD_FILE).err().map(|e| failed_item(state, e.to_string()))
}

fn failed_item(state: &StateDir, why: String) -> Item {
    Item::new(
        RECORD_ID,
        "state",
        Status::Failed,
        format!("cannot write the local record of the backup, which status and the audit read: {why}"),
    )
    .at(state.file(RECORD_FILE))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests write their fixtures plainly")]
mod tests {
    use super::*;

    fn manifest(home: &Path, repository: &str, extra: &str) -> Result<Manifest, Box<dyn std::error::Error>> {
        let text = format!(
            "version: 1\nhost: h1\nrepo:\n  path: ~/repo\n  url: https://example.invalid/r.git\npaths:\n  - {{name: d, path: ~/d, role: r, backup: backup}}\n  - {{name: e, path: ~/e, role: r, backup: backup}}\n{extra}backup:\n  repository: {repository}\n  password_file: ~/pw\n  max_age: 26h\n"
        );
        Ok(common::manifest::load_str(Path::new("/m.yaml"), &text, home, &|_| None)?)
    }

    fn snapshot(id: &str, host: &str, time: &str, paths: &[&Path]) -> Snapshot {
        Snapshot {
            id: format!("{id}full"),
            short_id: id.into(),
            time: time.into(),
            paths: paths.iter().map(|p| p.to_path_buf()).collect(),
            hostname: host.into(),
            tags: None,
            excludes: None,
        }
    }

    #[test]
    fn a_listing_gives_each_path_its_newest_snapshot_of_this_host() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let h = home.path();
        let m = manifest(h, "/srv/restic", "")?;
        let backup = m.backup.as_ref().ok_or("no backup")?;
        let (d, e) = (h.join("d"), h.join("e"));
        let all = [
            snapshot("old", "h1", "2026-01-01T10:00:00Z", &[&d, &e]),
            snapshot("new", "h1", "2026-01-02T10:00:00+02:00", &[&d]),
            snapshot("other", "h2", "2026-01-03T10:00:00Z", &[&d, &e]),
        ];
        let record = Record::from_listing(&m, backup, "h1", &all, "backup", None);
        assert_eq!(record.snapshots, 2);
        assert_eq!(record.newest.as_ref().map(|s| s.short_id.as_str()), Some("new"));
        assert_eq!(record.other_hosts, ["h2"]);
        assert_eq!(record.newest_of(&d).map(|s| s.short_id.as_str()), Some("new"));
        assert_eq!(record.newest_of(&e).map(|s| s.short_id.as_str()), Some("old"));
        assert_eq!(record.usable_for(backup, "h1", &[&d, &e]), Ok(()));

        // Another repository, host or machine, or a path it does not know: not trusted.
        let elsewhere = manifest(h, "/srv/other", "")?;
        let other = elsewhere.backup.as_ref().ok_or("no backup")?;
        assert_eq!(record.usable_for(other, "h1", &[&d]), Err(Unusable::Foreign("repository")));
        assert_eq!(record.usable_for(backup, "h2", &[&d]), Err(Unusable::Foreign("host name")));
        let moved = Record { machine_id: "another-machine".into(), ..record.clone() };
        assert_eq!(moved.usable_for(backup, "h1", &[&d]), Err(Unusable::Foreign("machine")));
        let f = h.join("f");
        assert_eq!(record.usable_for(backup, "h1", &[&d, &f]), Err(Unusable::NewPath(f.clone())));

        // What a path was restored from survives a later listing.
        let state = StateDir::new(h);
        let restored = [(d.clone(), Seen::of(&all[0]))];
        assert_eq!(write(&state, &m, backup, "h1", &all, "restore", &restored).map(|i| i.detail), None);
        assert_eq!(write(&state, &m, backup, "h1", &all[1..], "backup", &[]).map(|i| i.detail), None);
        let read = usable(&state, backup, "h1", &[&d, &e], false).map_err(|u| u.describe(h))?;
        assert_eq!(read.by, "backup");
        assert_eq!(read.paths.get(&d).and_then(|p| p.restored_from.as_ref()).map(|s| s.short_id.as_str()), Some("old"));
        assert_eq!(read.newest_of(&e), None, "no snapshot of h1 covers it any more");
        assert_eq!(usable(&state, backup, "h1", &[&d], true).err(), Some(Unusable::Deep));
        assert_eq!(forget(&state).map(|i| i.detail), None);
        assert_eq!(usable(&state, backup, "h1", &[&d], false).err(), Some(Unusable::Missing));
        state.write(RECORD_FILE, b"{not json")?;
        assert!(matches!(usable(&state, backup, "h1", &[&d], false), Err(Unusable::Unreadable(_))));
        Ok(())
    }
}
