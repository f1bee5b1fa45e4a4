//! Whose is what lies at a path: what any fresh host gets, or data.
//!
//! A fresh host already holds things inside `backup`-class paths before any data comes
//! back, none of which is anybody's data:
//!
//! - folders (the `dirs` step makes them; a folder holds nothing by itself);
//! - the files `useradd -m` copies from the skeleton folder (`/etc/skel`, or `SKEL=` in
//!   `/etc/default/useradd`), unchanged;
//! - pi-bootstrap's own managed blocks, alone in their file or on top of a skeleton
//!   copy;
//! - files of the pi-config repo as committed (a `.gitkeep` in a data folder), from
//!   one `git status` for every path asked about, run only when a file needs it;
//! - links the manifest declares, and what every backup of the path leaves out (a
//!   path of another class inside it, the restic password file, a local repository).
//!
//! Everything else is [`Origin::Data`].

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::{class_of, never_in_snapshot, within};
use crate::engine::without_blocks;
use crate::exec::Cmd;
use crate::manifest::{BackupClass, Manifest};

/// The largest file compared with its skeleton copy or read for managed blocks.
const MAX_COMPARED: u64 = 1 << 20;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Folder,
    File,
    Link,
    /// A socket, fifo or device.
    Other,
}

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A folder: it holds nothing by itself.
    Folder,
    /// A copy of the skeleton file a fresh account gets, perhaps with managed blocks.
    Skel,
    /// Nothing but pi-bootstrap's managed blocks.
    Blocks,
    /// A file of the pi-config repo as committed.
    Repo,
    /// A link the manifest declares.
    Link,
    /// Left out of every backup of the path.
    LeftOut,
    /// Anything else: somebody's data.
    Data,
}

/// One entry under a scanned path (the path itself included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    /// The size of a file (0 for the rest).
    pub size: u64,
    pub modified: Option<SystemTime>,
    /// Permission bits.
    pub mode: u32,
    pub origin: Origin,
}

/// What is at a path, as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    Missing,
    /// Only what a fresh host gets (folders, skeleton files, blocks, repo files).
    Fresh(String),
    /// Somebody's data: how many entries are data, and the newest modification time
    /// among them.
    Data {
        entries: usize,
        newest: Option<SystemTime>,
    },
}

impl Held {
    /// Sums up a scan.
    pub fn of(entries: &[Entry]) -> Held {
        if entries.is_empty() {
            return Held::Missing;
        }
        let data: Vec<&Entry> = entries.iter().filter(|e| e.origin == Origin::Data).collect();
        if data.is_empty() {
            return Held::Fresh(describe_fresh(entries));
        }
        Held::Data { entries: data.len(), newest: data.iter().filter_map(|e| e.modified).max() }
    }

    pub fn is_data(&self) -> bool {
        matches!(self, Held::Data { .. })
    }

    /// The newest modification time among the data entries, if any.
    pub fn newest(&self) -> Option<SystemTime> {
        match self {
            Held::Data { newest, .. } => *newest,
            _ => None,
        }
    }

    /// A few words for reports: "missing", "only empty folders", "3 files of data".
    pub fn describe(&self) -> String {
        match self {
            Held::Missing => "missing".to_owned(),
            Held::Fresh(what) => what.clone(),
            Held::Data { entries, .. } => {
                format!("{entries} {} of data", if *entries == 1 { "entry" } else { "entries" })
            }
        }
    }
}

fn describe_fresh(entries: &[Entry]) -> String {
    let mut kinds: Vec<&str> = Vec::new();
    for entry in entries {
        let kind = match entry.origin {
            Origin::Folder | Origin::Data => continue,
            Origin::Skel => "the skeleton files of a new account",
            Origin::Blocks => "pi-bootstrap's managed blocks",
            Origin::Repo => "files of the repo as committed",
            Origin::Link => "declared links",
            Origin::LeftOut => "what a backup leaves out",
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        if entries.len() == 1 { "an empty folder".to_owned() } else { "only empty folders".to_owned() }
    } else {
        format!("only what a fresh host gets ({})", kinds.join(", "))
    }
}

/// The facts a scan needs, gathered once for every path to scan.
#[derive(Debug)]
pub struct Provenance<'m> {
    manifest: &'m Manifest,
    home: PathBuf,
    skel: PathBuf,
    block_files: Vec<PathBuf>,
    links: Vec<PathBuf>,
    never: Vec<PathBuf>,
    backup_paths: Vec<PathBuf>,
    repo: PathBuf,
    /// The paths asked about that lie in the repo (relative to it).
    in_repo: Vec<String>,
    /// Paths `git status` lists under `in_repo` (relative to the repo, folders ending in
    /// `/`): changed, untracked or ignored; asked once, when a scan first needs it.
    /// `None` when git could not tell.
    not_committed: OnceCell<Option<BTreeSet<String>>>,
}

impl<'m> Provenance<'m> {
    /// Gathers what scanning `paths` needs; the one `git status` for those of them in
    /// the repo runs when a scan first needs it.
    pub fn new(manifest: &'m Manifest, home: &Path, paths: &[&Path]) -> Provenance<'m> {
        let repo = manifest.repo.path.path().to_path_buf();
        let in_repo: Vec<String> = paths
            .iter()
            .filter(|p| within(p, &repo))
            .filter_map(|p| p.strip_prefix(&repo).ok())
            .map(|p| if p.as_os_str().is_empty() { ".".to_owned() } else { p.display().to_string() })
            .collect();
        Provenance {
            manifest,
            home: home.to_path_buf(),
            skel: skeleton_folder(),
            block_files: manifest.shell.iter().map(|b| b.file.path().to_path_buf()).collect(),
            links: manifest.links.iter().map(|l| l.target.path().to_path_buf()).collect(),
            never: manifest.backup.iter().flat_map(never_in_snapshot).map(|(p, _)| p).collect(),
            backup_paths: manifest
                .classified_paths()
                .into_iter()
                .filter(|(_, c, _)| *c == BackupClass::Backup)
                .map(|(p, _, _)| p.path().to_path_buf())
                .collect(),
            repo,
            in_repo,
            not_committed: OnceCell::new(),
        }
    }

    /// Every entry at and under `path`, with its origin; empty when the path is missing.
    pub fn scan(&self, path: &Path) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        self.walk(path, &mut out)?;
        Ok(out)
    }

    fn walk(&self, path: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
        let meta = fs::symlink_metadata(path)?;
        let kind = if meta.file_type().is_symlink() {
            Kind::Link
        } else if meta.is_dir() {
            Kind::Folder
        } else if meta.is_file() {
            Kind::File
        } else {
            Kind::Other
        };
        let left_out = self.is_left_out(path);
        let origin = if left_out {
            Origin::LeftOut
        } else {
            match kind {
                Kind::Folder => Origin::Folder,
                Kind::Link if self.links.iter().any(|l| l == path) => Origin::Link,
                Kind::File => self.file_origin(path, meta.len()),
                Kind::Link | Kind::Other => Origin::Data,
            }
        };
        out.push(Entry {
            path: path.to_path_buf(),
            kind,
            size: if kind == Kind::File { meta.len() } else { 0 },
            modified: meta.modified().ok(),
            mode: meta.permissions().mode() & 0o7777,
            origin,
        });
        // A folder left out is not looked into, unless a backup path lies inside it.
        let descend = kind == Kind::Folder
            && (!left_out || self.backup_paths.iter().any(|b| within(b, path) && b.as_path() != path));
        if descend {
            let mut children: Vec<PathBuf> =
                fs::read_dir(path)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
            children.sort();
            for child in children {
                self.walk(&child, out)?;
            }
        }
        Ok(())
    }

    fn is_left_out(&self, path: &Path) -> bool {
        self.never.iter().any(|n| within(path, n)) || class_of(self.manifest, path) != Some(BackupClass::Backup)
    }

    fn file_origin(&self, path: &Path, size: u64) -> Origin {
        if self.is_committed(path) {
            return Origin::Repo;
        }
        let block_file = self.block_files.iter().any(|b| b == path);
        let skel = path.strip_prefix(&self.home).ok().map(|rel| self.skel.join(rel));
        let skel_text = skel.as_deref().and_then(|s| read_small(s).ok());
        if (!block_file && skel_text.is_none()) || size > MAX_COMPARED * 2 {
            return Origin::Data;
        }
        let Ok(text) = read_small(path) else { return Origin::Data };
        let (text, had_blocks) = if block_file {
            let stripped = without_blocks(&text);
            let had = stripped != text;
            (stripped, had)
        } else {
            (text, false)
        };
        if let Some(skel_text) = skel_text
            && text.trim_end() == skel_text.trim_end()
        {
            return Origin::Skel;
        }
        if had_blocks && text.trim().is_empty() { Origin::Blocks } else { Origin::Data }
    }

    fn is_committed(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.repo) else { return false };
        let listed = self.not_committed.get_or_init(|| {
            let existing: Vec<String> =
                self.in_repo.iter().filter(|p| fs::symlink_metadata(self.repo.join(p)).is_ok()).cloned().collect();
            if existing.is_empty() { None } else { remembered_or(&self.repo, &existing, git_not_committed) }
        });
        let Some(listed) = listed else { return false };
        let rel = rel.display().to_string();
        if rel.is_empty() || listed.contains(&rel) {
            return false;
        }
        // A listed folder covers everything under it.
        !rel.match_indices('/').any(|(i, _)| listed.contains(&rel[..=i]))
    }
}

fn read_small(path: &Path) -> io::Result<String> {
    let meta = fs::metadata(path)?;
    if !meta.is_file() || meta.len() > MAX_COMPARED * 2 {
        return Err(io::Error::other("not a small file"));
    }
    String::from_utf8(fs::read(path)?).map_err(io::Error::other)
}

/// The skeleton folder `useradd -m` copies into a new HOME: `SKEL=` of
/// `/etc/default/useradd`, else `/etc/skel`.
pub fn skeleton_folder() -> PathBuf {
    let configured = fs::read_to_string("/etc/default/useradd").ok().and_then(|text| {
        text.lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("SKEL="))
            .map(|v| v.trim().trim_matches('"').to_owned())
            .find(|v| v.starts_with('/'))
    });
    PathBuf::from(configured.unwrap_or_else(|| "/etc/skel".to_owned()))
}

/// `git status` answers by repo and paths, kept once [`remember_answers`] was called.
type Answers = BTreeMap<(PathBuf, Vec<String>), Option<BTreeSet<String>>>;

static REMEMBERED: std::sync::Mutex<Option<Answers>> = std::sync::Mutex::new(None);

/// From now on in this process, the same `git status` of the same paths is asked once
/// and its answer kept: for a reader that changes nothing and builds several
/// `Provenance`s over the same paths (the audit: the services step's waits and the
/// backup status). A process that writes in the repo never calls it.
pub fn remember_answers() {
    let mut remembered = REMEMBERED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    remembered.get_or_insert_with(BTreeMap::new);
}

/// Forgets the answers kept since [`remember_answers`], and keeps none from now on.
pub fn forget_answers() {
    *REMEMBERED.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
}

/// `ask(repo, paths)`, or its kept answer (see [`remember_answers`]). The lock is held
/// while git runs, so a second thread asking the same waits for the first answer.
fn remembered_or(
    repo: &Path,
    paths: &[String],
    ask: fn(&Path, &[String]) -> Option<BTreeSet<String>>,
) -> Option<BTreeSet<String>> {
    let mut remembered = REMEMBERED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(answers) = remembered.as_mut() else {
        drop(remembered);
        return ask(repo, paths);
    };
    let key = (repo.to_path_buf(), paths.to_vec());
    answers.entry(key).or_insert_with(|| ask(repo, paths)).clone()
}

/// What `git status` lists under `paths` (relative to the repo): changed, untracked and
/// ignored entries. `None` when git cannot tell (not installed, not a repo).
fn git_not_committed(repo: &Path, paths: &[String]) -> Option<BTreeSet<String>> {
    if !repo.join(".git").exists() {
        return None;
    }
    let out = Cmd::new("git")
        .arg("-C")
        .arg(repo.display().to_string())
        .args(["--no-optional-locks", "status", "--porcelain=v1", "-z", "--untracked-files=all", "--ignored=matching"])
        .arg("--")
        .args(paths.iter().cloned())
        .timeout(Duration::from_secs(60))
        .output()
        .ok()
        .filter(|o| o.success())?;
    let mut listed = BTreeSet::new();
    let mut fields = out.stdout.split('\0');
    while let Some(field) = fields.next() {
        if field.len() < 4 {
            continue;
        }
        let (status, path) = field.split_at(3);
        listed.insert(path.to_owned());
        // A rename or copy names where it came from next.
        if status.starts_with('R') || status.starts_with('C') {
            fields.next();
        }
    }
    Some(listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_alone_are_fresh_and_a_file_is_data() {
        let entry = |path: &str, kind, origin| Entry {
            path: PathBuf::from(path),
            kind,
            size: 0,
            modified: None,
            mode: 0o700,
            origin,
        };
        let folders = [entry("/h/d", Kind::Folder, Origin::Folder), entry("/h/d/e", Kind::Folder, Origin::Folder)];
        assert_eq!(Held::of(&folders), Held::Fresh("only empty folders".into()));
        assert_eq!(Held::of(&folders[..1]).describe(), "an empty folder");
        assert_eq!(Held::of(&[]), Held::Missing);
        let skel = [entry("/h/.bashrc", Kind::File, Origin::Skel)];
        assert!(Held::of(&skel).describe().contains("skeleton"), "{:?}", Held::of(&skel));
        let data = [folders[0].clone(), entry("/h/d/db", Kind::File, Origin::Data)];
        assert!(Held::of(&data).is_data());
        assert_eq!(Held::of(&data).describe(), "1 entry of data");
    }
}
