//! What a snapshot of the `backup`-class paths holds and leaves out. (The paths
//! themselves and the services that own them are `common::durable`'s.)
//!
//! Every `backup`-class path is one item: a declared path (`data:path:NAME`) or a
//! service's data path (`data:service:NAME`). Classes nest, and the most specific
//! path wins: a `disposable` (or `git`, `bootstrap`) path inside a backed-up folder is
//! left out of the snapshot, and a `backup` path inside that one is kept in it again
//! (restic has no "include again", so its siblings are excluded one by one, read from
//! the disk at backup time). The restic password file, and a local repository, are
//! never in a snapshot.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::engine::UnknownItem;
use common::manifest::{BackupClass, Manifest};

pub use common::durable::{DataPath, Owner, data_paths, within};

/// The paths `--only` asks for (all when it is empty); an unknown id is an error of
/// the command line.
pub fn select(paths: Vec<DataPath>, only: &[String]) -> Result<Vec<DataPath>, UnknownItem> {
    for id in only {
        if !paths.iter().any(|p| p.id == *id) {
            let known = paths.iter().map(|p| p.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(UnknownItem { id: id.clone(), known });
        }
    }
    Ok(paths.into_iter().filter(|p| only.is_empty() || only.contains(&p.id)).collect())
}

/// What one `restic backup` is given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupSet {
    /// The outermost paths, each once.
    pub targets: Vec<PathBuf>,
    /// What is left out inside them, with why.
    pub excludes: Vec<Exclude>,
}

/// A path left out of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exclude {
    pub path: PathBuf,
    /// `disposable`, `bootstrap`, `git`, `the restic password file`, ...
    pub why: String,
}

/// What to back up for `paths` (the existing ones), given every classified path of
/// the manifest and the files that must never be in a snapshot (`never`, with why).
/// Reads the disk only to exclude the siblings of a `backup` path that lies inside a
/// path of another class.
pub fn backup_set(manifest: &Manifest, paths: &[&Path], never: &[(PathBuf, String)]) -> BackupSet {
    let mut targets: Vec<PathBuf> = Vec::new();
    let mut sorted: Vec<&Path> = paths.to_vec();
    sorted.sort_by_key(|p| p.components().count());
    for path in sorted {
        if !targets.iter().any(|t| within(path, t)) {
            targets.push(path.to_path_buf());
        }
    }
    let classified = manifest.classified_paths();
    let backup: Vec<&Path> =
        classified.iter().filter(|(_, c, _)| *c == BackupClass::Backup).map(|(p, _, _)| p.path()).collect();
    let mut excludes: BTreeSet<Exclude> = BTreeSet::new();
    for (path, class, _) in &classified {
        let path = path.path();
        let inside_a_target = targets.iter().any(|t| within(path, t) && path != t);
        // A path declared twice, once as `backup`: backed up (the safer reading).
        if *class == BackupClass::Backup || !inside_a_target || backup.contains(&path) {
            continue;
        }
        let keep: Vec<&Path> = backup.iter().copied().filter(|b| within(b, path) && *b != path).collect();
        for excluded in exclude_around(path, &keep) {
            excludes.insert(Exclude { path: excluded, why: class.as_str().to_owned() });
        }
    }
    for (path, why) in never {
        if targets.iter().any(|t| within(path, t)) {
            excludes.insert(Exclude { path: path.clone(), why: why.clone() });
        }
    }
    // An exclude inside another exclude adds nothing.
    let all: Vec<Exclude> = excludes.into_iter().collect();
    let excludes =
        all.iter().filter(|e| !all.iter().any(|o| o.path != e.path && within(&e.path, &o.path))).cloned().collect();
    BackupSet { targets, excludes }
}

/// `path` left out, except the `keep` paths inside it: then each entry of `path` that
/// is not on the way to a kept path is left out instead, recursively.
fn exclude_around(path: &Path, keep: &[&Path]) -> Vec<PathBuf> {
    if keep.is_empty() {
        return vec![path.to_path_buf()];
    }
    let Ok(entries) = std::fs::read_dir(path) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let child = entry.path();
        if keep.contains(&child.as_path()) {
            continue;
        }
        let deeper: Vec<&Path> = keep.iter().copied().filter(|k| within(k, &child)).collect();
        if deeper.is_empty() {
            out.push(child);
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(exclude_around(&child, &deeper));
        }
    }
    out.sort();
    out
}

/// A path as a restic pattern (for `--include` and `--exclude`): glob characters are
/// escaped, so the pattern means exactly this path.
pub fn pattern(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The path a pattern of [`pattern`] stands for (restic keeps the patterns of a
/// snapshot in its `excludes`).
pub fn unpattern(pattern: &str) -> PathBuf {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    PathBuf::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn manifest(home: &Path, paths: &str, services: &str) -> Result<Manifest, Box<dyn std::error::Error>> {
        let text = format!(
            "version: 1\nrepo:\n  path: ~/repo\n  url: https://example.invalid/r.git\n{services}paths:\n{paths}backup:\n  repository: /nowhere\n  password_file: ~/pw\n  max_age: 26h\n"
        );
        Ok(common::manifest::load_str(Path::new("/m.yaml"), &text, home, &|_| None)?)
    }

    #[test]
    fn the_most_specific_class_wins() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let h = home.path();
        for dir in ["data/cache/keep", "data/cache/other", "data/cache/mid/deep", "data/cache/mid/x", "data/real"] {
            fs::create_dir_all(h.join(dir))?;
        }
        let m = manifest(
            h,
            "  - {name: data, path: ~/data, role: r, backup: backup}
  - {name: cache, path: ~/data/cache, role: r, backup: disposable}
  - {name: keep, path: ~/data/cache/keep, role: r, backup: backup}
  - {name: deep, path: ~/data/cache/mid/deep, role: r, backup: backup}
  - {name: real, path: ~/data/real, role: r, backup: backup}
",
            "",
        )?;
        let paths = data_paths(&m);
        let ids: Vec<&str> = paths.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["data:path:data", "data:path:keep", "data:path:deep", "data:path:real"]);
        let all: Vec<&Path> = paths.iter().map(|p| p.path.as_path()).collect();
        let set = backup_set(&m, &all, &[(h.join("data/pw"), "the restic password file".into())]);
        assert_eq!(set.targets, [h.join("data")]);
        let excluded: Vec<PathBuf> = set.excludes.iter().map(|e| e.path.clone()).collect();
        assert_eq!(excluded, [h.join("data/cache/mid/x"), h.join("data/cache/other"), h.join("data/pw")]);
        Ok(())
    }

    #[test]
    fn an_unknown_only_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let m = manifest(home.path(), "  - {name: out, path: ~/out, role: r, backup: backup}\n", "")?;
        assert!(select(data_paths(&m), &["data:path:nope".into()]).is_err());
        assert_eq!(select(data_paths(&m), &["data:path:out".into()])?.len(), 1);
        Ok(())
    }

    #[test]
    fn patterns_mean_exactly_the_path() {
        let path = Path::new("/h/we[ir]d*?\\x");
        assert_eq!(pattern(path), "/h/we\\[ir\\]d\\*\\?\\\\x");
        assert_eq!(unpattern(&pattern(path)), path);
    }
}
