//! The scans for what is on the host but not in the manifest, each reading the host
//! once: a folder listing, one file, one `systemctl --user show`, one `git ls-files`.
//! They never write.

pub mod blocks;
pub mod home;
pub mod nginx;
pub mod ports;
pub mod repo;
pub mod secrets;
pub mod units;

use std::fs;
use std::path::{Path, PathBuf};

use common::report::{Item, Status};

/// An item of a scan.
pub fn item(id: String, kind: &str, status: Status, path: Option<PathBuf>, detail: String) -> Item {
    Item::new(id, kind, status, detail).at_maybe(path)
}

/// What is at `path`, in one word, without following a symlink.
pub fn kind_of(path: &Path) -> &'static str {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => "symlink",
        Ok(meta) if meta.is_dir() => "folder",
        Ok(_) => "file",
        Err(_) => "missing",
    }
}

/// The entries of a folder, sorted by name; empty when it cannot be read (missing).
pub fn sorted_entries(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let listing = match fs::read_dir(dir) {
        Ok(listing) => listing,
        // A folder that is not there (a fresh host) holds nothing undeclared.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut entries: Vec<(String, PathBuf)> =
        listing.flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), e.path())).collect();
    entries.sort();
    Ok(entries)
}

/// The permission bits of `path` (following a symlink), if it exists.
pub fn mode(path: &Path) -> Option<u32> {
    common::fsx::mode_of(path).ok().flatten()
}

/// "0644"-style, and whether group or others may read or write it.
pub fn open_to_others(mode: u32) -> bool {
    mode & 0o077 != 0
}
