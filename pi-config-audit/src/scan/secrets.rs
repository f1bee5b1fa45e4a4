//! Secrets the steps do not already check: env files that units read but the manifest
//! does not declare (`undeclared-env:PATH`, with their mode), and the backup password
//! file (`secret-mode:backup-password`), which must be readable by its owner only.
//! Declared env files are the `env:NAME` items of bootstrap-services (variables and
//! mode). Only modes and names are read here, never a value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::manifest::Manifest;
use common::report::{Item, Status, tilde};

use super::{item, mode, open_to_others};
use crate::declared::Declared;

/// `read_by`: the env files units read, with the unit (from [`super::units::env_files_read`]).
pub fn scan_secrets(manifest: &Manifest, declared: &Declared, read_by: &[(&str, &Path)]) -> Vec<Item> {
    let home = &declared.home;
    let mut undeclared: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
    for (unit, file) in read_by {
        if !declared.env_files.contains(*file) {
            undeclared.entry(file).or_default().push(unit);
        }
    }
    let mut items = Vec::new();
    for (file, units) in &undeclared {
        let shown = tilde(file, home);
        let how = match mode(file) {
            None => "; it does not exist".to_owned(),
            Some(m) if open_to_others(m) => format!("; mode {m:04o}: readable by others, chmod 600 it"),
            Some(m) => format!("; mode {m:04o}"),
        };
        items.push(item(
            format!("undeclared-env:{shown}"),
            "env",
            Status::Drift,
            Some(file.to_path_buf()),
            format!(
                "read by {} (EnvironmentFile=) but not declared under `env`: a restore will not recreate it{how}",
                units.join(", ")
            ),
        ));
    }
    let files: BTreeSet<&Path> = read_by.iter().map(|(_, f)| *f).collect();
    if items.is_empty() && !files.is_empty() {
        let detail = match files.len() {
            1 => "the env file the units read is declared".to_owned(),
            n => format!("the {n} env files the units read are declared"),
        };
        items.push(item("scan:env-files".into(), "scan", Status::Ok, None, detail));
    }
    if let Some(backup) = &manifest.backup {
        let file = backup.password_file.path();
        let (status, detail) = match mode(file) {
            None => (Status::Skipped, "not on this host (bootstrap-data needs it to reach the backup)".to_owned()),
            Some(m) if open_to_others(m) => {
                (Status::Drift, format!("mode {m:04o}: readable by others; chmod 600 {}", tilde(file, home)))
            }
            Some(m) => (Status::Ok, format!("mode {m:04o}")),
        };
        items.push(item("secret-mode:backup-password".into(), "secret", status, Some(file.to_path_buf()), detail));
    }
    items
}
