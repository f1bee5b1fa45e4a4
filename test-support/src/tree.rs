//! Folder trees in tests: a listing of everything under a folder and what changed
//! between two listings (to prove a check or an audit wrote nothing), the names in a
//! folder, files written from a list, and a tree copied.

use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::TestResult;

/// Every entry under a folder, by path relative to it: `dir 0755`, `file 0644 HASH`
/// (a hash of the content), `link -> TARGET`, `other 0600` (a socket, a fifo).
pub type Listing = BTreeMap<String, String>;

/// Every entry under `root` (not `root` itself). What cannot be read, or vanishes
/// while it is listed (a sandbox's runtime files), is passed over.
pub fn listing(root: &Path) -> Listing {
    let mut out = Listing::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Listing) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(&path).map(|p| p.display().to_string()).unwrap_or_default())
        } else if meta.is_dir() {
            walk(root, &path, out);
            format!("dir {mode:04o}")
        } else if meta.is_file() {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            fs::read(&path).unwrap_or_default().hash(&mut hasher);
            format!("file {mode:04o} {:016x}", hasher.finish())
        } else {
            format!("other {mode:04o}")
        };
        out.insert(relative, what);
    }
}

/// The entries removed, changed or added between two listings, for a readable
/// failure (none when nothing changed).
pub fn changes(before: &Listing, after: &Listing) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {path} ({was})")),
            Some(now) if now != was => out.push(format!("changed {path}: {was} -> {now}")),
            _ => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            out.push(format!("added {path} ({now})"));
        }
    }
    out
}

/// The names in `dir`, sorted (none when it is missing).
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Writes `files` (relative path, content) under `root`, making their folders.
pub fn write(root: &Path, files: &[(&str, &str)]) -> TestResult {
    for (relative, content) in files {
        write_file(&root.join(relative), content)?;
    }
    Ok(())
}

/// Writes `content` to the file at `path`, making its folders.
pub fn write_file(path: &Path, content: &str) -> TestResult {
    fs::create_dir_all(path.parent().ok_or("a file needs a folder")?)?;
    fs::write(path, content)?;
    Ok(())
}

/// Gives the file or folder at `path` the permission bits `mode`.
pub fn set_mode(path: &Path, mode: u32) -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Copies the folders and files under `from` into `to`, each file with its mode (as
/// `useradd -m` copies a skeleton); links are left out.
pub fn copy(from: &Path, to: &Path) -> TestResult {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy(&entry.path(), &target)?;
        } else if entry.file_type()?.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
