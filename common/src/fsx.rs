//! File writes that never leave a half-written file: temp file in the same folder,
//! fsync, rename; and the few questions about a file tree the steps share.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Writes `content` to `path` atomically, with `mode` (or the mode of the file being
/// replaced, or 0644). Parent folders are created.
pub fn write_atomic(path: &Path, content: &[u8], mode: Option<u32>) -> io::Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let mode = match mode {
        Some(mode) => mode,
        None => fs::metadata(path).map(|m| m.permissions().mode() & 0o7777).unwrap_or(0o644),
    };
    let mut tmp = tempfile::Builder::new().prefix(&crate::staging::prefix(".pi-bootstrap.")).tempfile_in(parent)?;
    // Set the mode before the content goes in, so a secret is never readable by others.
    tmp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(content)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Makes `link` a symlink to `to`, atomically replacing a file or link already there.
pub fn symlink_atomic(to: &Path, link: &Path) -> io::Result<()> {
    let parent = link.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let tmp = tempfile::Builder::new()
        .prefix(&crate::staging::prefix(".pi-bootstrap."))
        .make_in(parent, |p| std::os::unix::fs::symlink(to, p))?;
    tmp.persist(link).map_err(|e| e.error)?;
    Ok(())
}

/// The permission bits of a file, or `None` when it does not exist.
pub fn mode_of(path: &Path) -> io::Result<Option<u32>> {
    match fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.permissions().mode() & 0o7777)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Sets the permission bits of a file.
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Does `path` hold nothing but folders (a tree of empty folders: no data)?
pub fn only_folders(path: &Path) -> io::Result<bool> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Ok(false);
    }
    for entry in fs::read_dir(path)? {
        if !only_folders(&entry?.path())? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_sets_mode_and_replaces() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a/b/secret.env");
        write_atomic(&path, b"one", Some(0o600))?;
        assert_eq!(mode_of(&path)?, Some(0o600));
        write_atomic(&path, b"two", None)?;
        assert_eq!(fs::read_to_string(&path)?, "two");
        assert_eq!(mode_of(&path)?, Some(0o600), "the replaced file's mode is kept");
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap_or(dir.path()))?.collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
        Ok(())
    }

    #[test]
    fn symlink_atomic_replaces_a_link() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let link = dir.path().join("l");
        symlink_atomic(Path::new("/one"), &link)?;
        symlink_atomic(Path::new("/two"), &link)?;
        assert_eq!(fs::read_link(&link)?, Path::new("/two"));
        assert_eq!(fs::read_dir(dir.path())?.count(), 1);
        Ok(())
    }
}
