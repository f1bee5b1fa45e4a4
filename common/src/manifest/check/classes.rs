//! Backup classes that agree: a service with data has a class and a `backup` path has
//! data; one path, one class; what must be backed up has a `backup` section to say
//! where; and the restic repository is a place restic can use that is not itself
//! backed up into itself, nor inside the git work tree.

use std::path::{Path, PathBuf};

use super::super::types::{BackupClass, Manifest, Pos};
use super::{Problem, shown};

/// The schemes restic takes besides a local path (`restic init --help`).
const REMOTE_SCHEMES: &[&str] = &["sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:"];

/// Where a restic repository is on this machine: `Ok(Some(path))` for a local one,
/// `Ok(None)` for a remote one, `Err` when restic would not understand it (or would
/// make it relative to wherever the step runs).
pub(super) fn local_repository(repository: &str) -> Result<Option<PathBuf>, String> {
    let repository = repository.trim();
    if REMOTE_SCHEMES.iter().any(|scheme| repository.starts_with(scheme)) {
        return Ok(None);
    }
    let path = repository.strip_prefix("local:").unwrap_or(repository);
    if path.starts_with('/') {
        return Ok(Some(Path::new(path).to_path_buf()));
    }
    Err(format!(
        "{} is neither an absolute path nor a repository restic reaches remotely ({}): a relative path would be made wherever the step runs",
        shown(repository),
        REMOTE_SCHEMES.join(", ")
    ))
}

/// A service's data path and backup class go together; what must be backed up needs a
/// `backup` section.
pub(super) fn check_backup_classes(m: &Manifest, p: &mut Vec<Problem>) {
    for (i, svc) in m.services.iter().enumerate() {
        match (&svc.data_path, &svc.backup) {
            (Some(data), None) => p.push(Problem::new(
                data.pos(),
                format!("services[{i}].data_path"),
                format!(
                    "service {:?} has a data path but no backup class: add `backup: backup` (or git, bootstrap, disposable)",
                    svc.name.as_str()
                ),
            )),
            (None, Some(class)) if class.value == BackupClass::Backup => p.push(Problem::new(
                Pos::of(class),
                format!("services[{i}].backup"),
                format!("service {:?} must be backed up but declares no data_path", svc.name.as_str()),
            )),
            _ => {}
        }
    }
    if m.backup.is_none() {
        let paths = m.paths.iter().enumerate().map(|(i, x)| (format!("paths[{i}].backup"), &x.path, Some(&x.backup)));
        let services = m.services.iter().enumerate().filter_map(|(i, svc)| {
            let data = svc.data_path.as_ref()?;
            Some((format!("services[{i}].backup"), data, svc.backup.as_ref()))
        });
        for (key, path, class) in paths.chain(services) {
            if let Some(class) = class
                && class.value == BackupClass::Backup
            {
                p.push(Problem::new(
                    Pos::of(class),
                    key,
                    format!("{} must be backed up, but the manifest has no `backup` section to say where", path.raw()),
                ));
            }
        }
    }
}

/// The repository must be a place restic can use, outside what is backed up into it
/// and outside the git work tree.
pub(super) fn check_repository(m: &Manifest, p: &mut Vec<Problem>) {
    let Some(backup) = &m.backup else { return };
    let repository = &backup.repository;
    if repository.value.trim().is_empty() {
        return; // said by the value checks
    }
    let local = match local_repository(&repository.value) {
        Ok(Some(path)) => path,
        Ok(None) => return,
        Err(message) => {
            p.push(Problem::new(Pos::of(repository), "backup.repository", message));
            return;
        }
    };
    for (path, class, owner) in m.classified_paths() {
        if class == BackupClass::Backup && local.starts_with(path.path()) {
            p.push(Problem::new(
                Pos::of(repository),
                "backup.repository",
                format!(
                    "{} lies inside {} ({owner}, class backup): each backup would back the repository up into itself; put the repository elsewhere (another disk, another machine)",
                    local.display(),
                    path.path().display()
                ),
            ));
        }
    }
    if local.starts_with(m.repo.path.path()) {
        p.push(Problem::new(
            Pos::of(repository),
            "backup.repository",
            format!(
                "{} lies inside the pi-config repo ({}): the backup would sit in the git work tree and go with it; put it elsewhere",
                local.display(),
                m.repo.path.path().display()
            ),
        ));
    }
}

/// One path, one backup class: the same path declared twice with two classes cannot
/// be both backed up and not.
pub(super) fn check_one_class(m: &Manifest, p: &mut Vec<Problem>) {
    let mut seen: Vec<(&Path, BackupClass, String, Pos)> = Vec::new();
    let classified = m.paths.iter().enumerate().map(|(i, x)| {
        (format!("paths[{i}].backup"), &x.path, x.backup.value, Pos::of(&x.backup), format!("path:{}", x.name))
    });
    let services = m.services.iter().enumerate().filter_map(|(i, s)| {
        let (data, class) = (s.data_path.as_ref()?, s.backup.as_ref()?);
        Some((format!("services[{i}].backup"), data, class.value, Pos::of(class), format!("service:{}", s.name)))
    });
    for (key, path, class, pos, owner) in classified.chain(services) {
        if let Some((_, first_class, first_owner, first_pos)) =
            seen.iter().find(|(seen_path, seen_class, _, _)| *seen_path == path.path() && *seen_class != class)
        {
            p.push(Problem::new(
                pos,
                key,
                format!(
                    "{} is class {} here ({owner}) and class {} at line {} ({first_owner}): one path, one class",
                    path.path().display(),
                    class.as_str(),
                    first_class.as_str(),
                    first_pos.line
                ),
            ));
        } else {
            seen.push((path.path(), class, owner, pos));
        }
    }
}
