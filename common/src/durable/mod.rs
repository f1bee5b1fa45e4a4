//! Durable data on this host: the `backup`-class paths of the manifest, the services
//! that write to them, and where each one stands on this host.
//!
//! The restore order is fixed (services, step 4-5, before the data, step 6), and a
//! service creates its database on first start when it finds none; a shell block goes
//! into `~/.bashrc` before its backup comes back. So the steps themselves know what is
//! still waiting for its data, from the [`Ledger`] in the state folder:
//!
//! - the first time a step that changes things runs on this HOME, it writes down what
//!   each `backup`-class path held before anything of pi-bootstrap touched it
//!   ([`Ledger::note_first_sight`]): nothing, or only what a fresh host gets (empty
//!   folders, `/etc/skel` files, managed blocks, files of the repo as committed; see
//!   [`provenance`]), or real data;
//! - a path that held nothing real then, and has not been *settled* since, is
//!   [`Standing::Awaiting`] its restore: the services that write to it wait
//!   (installed, not enabled, not started), and `bootstrap-data backup` refuses to make
//!   its fresh state the newest snapshot;
//! - `bootstrap-data restore` settles each path ([`Settled`]): restored from a snapshot,
//!   found the same as the snapshot, nothing to restore, or this host's data kept;
//!   `bootstrap-data backup` settles what it backed up. Then it starts the services
//!   that were waiting.
//!
//! A path that held real data at first sight is [`Standing::Preexisting`]: a restore
//! never puts a snapshot over it without being asked (`--force`, `--snapshot`).

mod ledger;
pub mod provenance;

use std::path::{Path, PathBuf};

use crate::manifest::{Backup, BackupClass, Capture, Manifest, Service};

pub use ledger::{
    FirstSight, How, LEDGER_FILE, Ledger, LedgerError, Settled, SnapshotRef, Standing, note_first_sight, now_text,
};

/// One `backup`-class path of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPath {
    /// `data:path:NAME` or `data:service:NAME`.
    pub id: String,
    /// The absolute path on the host.
    pub path: PathBuf,
    /// The services that write inside it or to a folder that holds it: their data path,
    /// or a declared path that names them in `owners`.
    pub owners: Vec<Owner>,
    /// How a backup captures it: as declared, else `stop` when services write to it and
    /// `live` when none does.
    pub capture: Capture,
}

/// A service that writes to a data path: stopped while the path is restored, and on a
/// fresh host not started before the path is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub service: String,
    /// Its unit and its timers (`agents-database.service`, `x.timer`).
    pub units: Vec<String>,
}

/// Is `inner` the same path as `outer` or inside it (by components)?
pub fn within(inner: &Path, outer: &Path) -> bool {
    inner.starts_with(outer)
}

/// Do two paths overlap (one holds the other)?
pub fn overlap(a: &Path, b: &Path) -> bool {
    within(a, b) || within(b, a)
}

/// The paths a service writes to: its data path and the declared paths that name it
/// as an owner.
pub fn owned_paths<'m>(manifest: &'m Manifest, service: &'m Service) -> Vec<&'m Path> {
    let declared =
        manifest.paths.iter().filter(|p| p.owners.iter().any(|o| o == service.name.as_str())).map(|p| p.path.path());
    service.data_path.iter().map(|d| d.path()).chain(declared).collect()
}

/// Every `backup`-class path of the manifest, in manifest order (declared paths, then
/// services' data paths), each with the services that write to it.
pub fn data_paths(manifest: &Manifest) -> Vec<DataPath> {
    let owned: Vec<(&Service, Vec<&Path>)> = manifest.services.iter().map(|s| (s, owned_paths(manifest, s))).collect();
    manifest
        .classified_paths()
        .into_iter()
        .filter(|(_, class, _)| *class == BackupClass::Backup)
        .map(|(path, _, owner_id)| {
            let path = path.path().to_path_buf();
            let owners: Vec<Owner> = owned
                .iter()
                .filter(|(_, paths)| paths.iter().any(|p| overlap(p, &path)))
                .map(|(s, _)| Owner { service: s.name.as_str().to_owned(), units: s.unit_names() })
                .collect();
            let declared = match owner_id.split_once(':') {
                Some(("path", name)) => manifest.paths.iter().find(|p| p.name.as_str() == name).and_then(|p| p.capture),
                Some(("service", name)) => {
                    manifest.services.iter().find(|s| s.name.as_str() == name).and_then(|s| s.capture)
                }
                _ => None,
            };
            let capture = declared.unwrap_or(if owners.is_empty() { Capture::Live } else { Capture::Stop });
            DataPath { id: format!("data:{owner_id}"), path, owners, capture }
        })
        .collect()
}

/// The class of `path`: that of the most specific classified path that holds it (a
/// path declared twice, once as `backup`, is backed up: the safer reading).
pub fn class_of(manifest: &Manifest, path: &Path) -> Option<BackupClass> {
    let classified = manifest.classified_paths();
    let deepest = classified
        .iter()
        .filter(|(p, _, _)| within(path, p.path()))
        .map(|(p, _, _)| p.path().components().count())
        .max()?;
    let classes = classified
        .iter()
        .filter(|(p, _, _)| within(path, p.path()) && p.path().components().count() == deepest)
        .map(|(_, c, _)| *c);
    let mut found = None;
    for class in classes {
        if class == BackupClass::Backup {
            return Some(class);
        }
        found = Some(class);
    }
    found
}

/// What may never be in a snapshot, with why: the password file (the backup cannot
/// hold its own key) and a local repository (it would back itself up).
pub fn never_in_snapshot(backup: &Backup) -> Vec<(PathBuf, String)> {
    let mut never = vec![(backup.password_file.path().to_path_buf(), "the restic password file".to_owned())];
    if let Some(folder) = local_repository(&backup.repository.value) {
        never.push((folder, "the restic repository".to_owned()));
    }
    never
}

/// The folder of a local restic repository (`/path` or `local:/path`).
pub fn local_repository(repository: &str) -> Option<PathBuf> {
    let path = repository.strip_prefix("local:").unwrap_or(repository);
    path.starts_with('/').then(|| PathBuf::from(path))
}

/// The data path that holds `path` most specifically, if any.
pub fn holding<'p>(paths: &'p [DataPath], path: &Path) -> Option<&'p DataPath> {
    paths.iter().filter(|d| within(path, &d.path)).max_by_key(|d| d.path.components().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(home: &Path, text: &str) -> Result<Manifest, Box<dyn std::error::Error>> {
        let text = format!(
            "version: 1\nrepo:\n  path: ~/repo\n  url: https://example.invalid/r.git\n{text}backup:\n  repository: /nowhere\n  password_file: ~/pw\n  max_age: 26h\n"
        );
        Ok(crate::manifest::load_str(Path::new("/m.yaml"), &text, home, &|_| None)?)
    }

    #[test]
    fn owners_are_the_services_whose_data_path_or_declared_paths_overlap() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let service = |name: &str, data: &str| {
            format!(
                "  - {{name: {name}, purpose: p, source: s, unit: systemd/{name}.service, timers: [systemd/{name}.timer], data_path: {data}, backup: backup}}\n"
            )
        };
        let text = format!(
            "services:\n{}{}paths:\n  - {{name: out, path: ~/out, role: r, backup: backup}}\n  - {{name: salts, path: ~/.config/x, role: r, backup: backup, owners: [other]}}\n",
            service("inner", "~/out/inner"),
            service("other", "~/elsewhere")
        );
        let m = manifest(home.path(), &text)?;
        let paths = data_paths(&m);
        let ids: Vec<&str> = paths.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["data:path:out", "data:path:salts", "data:service:inner", "data:service:other"]);
        assert_eq!(
            paths[0].owners,
            [Owner { service: "inner".into(), units: vec!["inner.service".into(), "inner.timer".into()] }]
        );
        let salts: Vec<&str> = paths[1].owners.iter().map(|o| o.service.as_str()).collect();
        assert_eq!(salts, ["other"]);
        assert_eq!(
            holding(&paths, &home.path().join("out/inner/db")).map(|d| d.id.as_str()),
            Some("data:service:inner")
        );
        assert_eq!(holding(&paths, &home.path().join("else")).map(|d| d.id.as_str()), None);
        Ok(())
    }

    #[test]
    fn the_most_specific_class_holds() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let m = manifest(
            home.path(),
            "paths:\n  - {name: d, path: ~/d, role: r, backup: backup}\n  - {name: c, path: ~/d/cache, role: r, backup: disposable}\n  - {name: k, path: ~/d/cache/k, role: r, backup: backup}\n",
        )?;
        let h = home.path();
        assert_eq!(class_of(&m, &h.join("d/x")), Some(BackupClass::Backup));
        assert_eq!(class_of(&m, &h.join("d/cache/y")), Some(BackupClass::Disposable));
        assert_eq!(class_of(&m, &h.join("d/cache/k/z")), Some(BackupClass::Backup));
        assert_eq!(class_of(&m, &h.join("elsewhere")), None);
        assert_eq!(local_repository("local:/r"), Some(PathBuf::from("/r")));
        assert_eq!(local_repository("s3:host/b"), None);
        Ok(())
    }
}
