//! User units and services on the host but not in the manifest.
//!
//! - `undeclared-unit:NAME`: a unit file in `~/.config/systemd/user` that no service
//!   declares (with its state: enabled, running, masked), and `undeclared-unit:NAME.d/FILE`
//!   for a drop-in (`systemctl --user edit`) that changes a unit in place;
//! - `undeclared-service:NAME`: a service or timer that is enabled or running but not
//!   declared: enabled by this user (a link in `~/.config/systemd/user/*.wants`), a unit
//!   of `/etc/systemd/user` or `~/.local/share/systemd/user`, or a transient unit
//!   (`systemd-run --user`) that runs. Units shipped by packages (under `/usr` or
//!   `/lib`) and started by activation (dbus, gpg-agent) come back with their package
//!   and are not named, unless this user enabled them.
//!
//! The state of every loaded service and timer comes from one
//! `systemctl --user show --all '*.service' '*.timer'` (`common::systemd::show_all`);
//! the unit folder is listed once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::report::{Item, Status, tilde};
use common::systemd::UnitState;

use super::{item, sorted_entries};
use crate::declared::Declared;

/// Unit file suffixes.
const UNIT_SUFFIXES: &[&str] =
    &[".service", ".timer", ".socket", ".path", ".target", ".mount", ".automount", ".swap", ".slice"];

/// Folders of enablement links.
const LINK_DIRS: &[&str] = &[".wants", ".requires", ".upholds"];

/// What the user manager said, once.
#[derive(Debug, Clone)]
pub enum Manager {
    /// It could not be asked; why.
    Unreachable(String),
    /// Every loaded service and timer, by name.
    Units(BTreeMap<String, UnitState>),
}

/// What the scan reads of each unit besides the base properties.
pub const PROPERTIES: &[&str] = &["EnvironmentFiles"];

/// Asks the user manager once for every loaded service and timer.
pub fn query_manager() -> Manager {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty()) {
        return Manager::Unreachable(
            "XDG_RUNTIME_DIR is not set, so the systemd user manager cannot be reached".into(),
        );
    }
    match common::systemd::show_all(&["*.service", "*.timer"], PROPERTIES) {
        Ok(units) => Manager::Units(units.into_iter().map(|u| (u.id.clone(), u)).collect()),
        Err(e) => Manager::Unreachable(format!("the systemd user manager cannot be asked: {e}")),
    }
}

fn has_suffix(name: &str, suffixes: &[&str]) -> bool {
    suffixes.iter().any(|s| name.len() > s.len() && name.ends_with(s))
}

/// The unit files, drop-ins and enablement links of `~/.config/systemd/user`, and the
/// undeclared services the manager runs.
pub fn scan_units(declared: &Declared, manager: &Manager) -> Vec<Item> {
    let home = &declared.home;
    let dir = home.join(bootstrap_services::USER_UNIT_DIR);
    let units = match manager {
        Manager::Units(units) => Some(units),
        Manager::Unreachable(_) => None,
    };
    // What the manager says of a unit, or that it could not be asked.
    let state_of = |name: &str| match units {
        Some(units) => units.get(name).map_or_else(|| "not loaded".to_owned(), UnitState::describe),
        None => "state unknown".to_owned(),
    };
    let entries = match sorted_entries(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return vec![item(
                "scan:unit-files".into(),
                "scan",
                Status::Failed,
                Some(dir),
                format!("cannot list: {e}"),
            )];
        }
    };
    // id -> item, so a unit named twice (a file and a link) is one item.
    let mut found: BTreeMap<String, Item> = BTreeMap::new();
    let mut unit_files = 0;
    let mut enabled_links: Vec<(String, String)> = Vec::new();
    // name -> (path, state, the link folders that enable it)
    let mut undeclared_files: BTreeMap<String, (PathBuf, String, Vec<String>)> = BTreeMap::new();
    for (name, path) in &entries {
        if name.starts_with('.') {
            continue;
        }
        let is_dir = path.is_dir() && !path.is_symlink();
        if is_dir && let Some(unit) = name.strip_suffix(".d").filter(|u| has_suffix(u, UNIT_SUFFIXES)) {
            for (file, drop_in) in sorted_entries(path).unwrap_or_default() {
                if file.starts_with('.') {
                    continue;
                }
                let id = format!("undeclared-unit:{name}/{file}");
                let detail = format!(
                    "a drop-in that changes {unit} in place (systemctl --user edit, or by hand): move its lines into the unit in the repo"
                );
                found.insert(id.clone(), item(id, "unit", Status::Drift, Some(drop_in), detail));
            }
        } else if is_dir && has_suffix(name, LINK_DIRS) {
            for (link, _) in sorted_entries(path).unwrap_or_default() {
                enabled_links.push((name.clone(), link));
            }
        } else if !is_dir && has_suffix(name, UNIT_SUFFIXES) {
            unit_files += 1;
            if declared.units.contains(name) {
                continue;
            }
            let masked = std::fs::read_link(path).is_ok_and(|to| to == Path::new("/dev/null"));
            let state = if masked { "masked (-> /dev/null)".to_owned() } else { state_of(name) };
            undeclared_files.insert(name.clone(), (path.clone(), state, Vec::new()));
        }
    }
    for (link_dir, name) in &enabled_links {
        if declared.units.contains(name) {
            continue;
        }
        let in_dir = format!("{}/{link_dir}", tilde(&dir, home));
        if let Some((_, _, enabled_in)) = undeclared_files.get_mut(name) {
            enabled_in.push(in_dir);
            continue;
        }
        let id = format!("undeclared-service:{name}");
        let state = state_of(name);
        let detail = format!(
            "enabled by this user (in {in_dir}) but not declared ({state}): declare it under `services`, or systemctl --user disable {name}"
        );
        found.insert(id.clone(), item(id, "service", Status::Drift, Some(dir.join(link_dir).join(name)), detail));
    }
    for (name, (path, state, enabled_in)) in undeclared_files {
        let enabled =
            if enabled_in.is_empty() { String::new() } else { format!("linked in {}; ", enabled_in.join(", ")) };
        let id = format!("undeclared-unit:{name}");
        let detail = format!(
            "no service of the manifest installs it ({enabled}{state}): declare it under `services` with its unit in the repo, or disable and remove it"
        );
        found.insert(id.clone(), item(id, "unit", Status::Drift, Some(path), detail));
    }
    let mut manager_items = Vec::new();
    match units {
        None => {
            if let Manager::Unreachable(why) = manager {
                manager_items.push(item("scan:user-services".into(), "scan", Status::Skipped, None, why.clone()));
            }
        }
        Some(units) => {
            for unit in units.values() {
                if declared.units.contains(&unit.id) || unit.load_state == "not-found" {
                    continue;
                }
                let fragment = Path::new(&unit.fragment_path);
                if fragment.starts_with(&dir) || found.contains_key(&format!("undeclared-service:{}", unit.id)) {
                    continue;
                }
                let transient = unit.unit_file_state == "transient" || fragment.starts_with("/run");
                let vendor = fragment.starts_with("/usr") || fragment.starts_with("/lib");
                let flagged =
                    if transient { unit.is_running() } else { !vendor && (unit.is_running() || unit.is_enabled()) };
                if !flagged {
                    continue;
                }
                let from = if transient {
                    "a transient unit (systemd-run --user)".to_owned()
                } else {
                    format!("from {}", unit.fragment_path)
                };
                let id = format!("undeclared-service:{}", unit.id);
                let detail = format!(
                    "{} but not declared, {from}: declare it under `services`, or stop and disable it",
                    unit.describe()
                );
                let path = (!unit.fragment_path.is_empty()).then(|| PathBuf::from(&unit.fragment_path));
                found.insert(id.clone(), item(id, "service", Status::Drift, path, detail));
            }
            if !found.keys().any(|id| id.starts_with("undeclared-service:")) {
                manager_items.push(item(
                    "scan:user-services".into(),
                    "scan",
                    Status::Ok,
                    None,
                    "every service or timer that is enabled or running is declared".to_owned(),
                ));
            }
        }
    }
    let mut items: Vec<Item> = Vec::new();
    if !found.keys().any(|id| id.starts_with("undeclared-unit:")) {
        let detail = if unit_files == 0 {
            "no unit files installed".to_owned()
        } else {
            format!("{unit_files} unit file{}, each installed by a service", if unit_files == 1 { "" } else { "s" })
        };
        items.push(item("scan:unit-files".into(), "scan", Status::Ok, Some(dir.clone()), detail));
    }
    items.extend(found.into_values());
    items.extend(manager_items);
    items
}

/// The env files the declared units and the units of `~/.config/systemd/user` read,
/// by unit.
pub fn env_files_read<'m>(declared: &Declared, manager: &'m Manager) -> Vec<(&'m str, &'m Path)> {
    let Manager::Units(units) = manager else { return Vec::new() };
    let dir = declared.home.join(bootstrap_services::USER_UNIT_DIR);
    units
        .values()
        .filter(|u| declared.units.contains(&u.id) || Path::new(&u.fragment_path).starts_with(&dir))
        .flat_map(|u| u.env_files.iter().map(move |f| (u.id.as_str(), f.as_path())))
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests make their fixtures plainly")]
mod tests {
    use super::*;

    /// The scheduled backup's units in the unit folder: declared with a schedule,
    /// leftovers like any other without one.
    #[test]
    fn the_backup_units_are_declared_by_the_schedule() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let units = home.join(bootstrap_services::USER_UNIT_DIR);
        std::fs::create_dir_all(units.join("timers.target.wants"))?;
        for name in ["pi-bootstrap-backup.service", "pi-bootstrap-backup.timer"] {
            std::fs::write(units.join(name), "[Unit]\n")?;
        }
        std::os::unix::fs::symlink(
            units.join("pi-bootstrap-backup.timer"),
            units.join("timers.target.wants/pi-bootstrap-backup.timer"),
        )?;
        let manifest = |schedule: &str| {
            let text = format!(
                "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/p.git\nbackup:\n  repository: /srv/restic\n  password_file: ~/.restic-password\n  max_age: 26h\n{schedule}"
            );
            common::manifest::load_str(&dir.path().join("pi-bootstrap.yaml"), &text, &home, &|_| None)
        };
        let manager = Manager::Unreachable("not asked".into());
        let undeclared = |items: Vec<Item>| -> Vec<String> {
            items
                .into_iter()
                .filter(|i| i.status != Status::Ok && i.id.starts_with("undeclared"))
                .map(|i| i.id)
                .collect()
        };
        let with = Declared::new(&manifest("  schedule: daily\n")?, &home);
        assert_eq!(undeclared(scan_units(&with, &manager)), Vec::<String>::new());
        let without = Declared::new(&manifest("")?, &home);
        assert_eq!(
            undeclared(scan_units(&without, &manager)),
            ["undeclared-unit:pi-bootstrap-backup.service", "undeclared-unit:pi-bootstrap-backup.timer"]
        );
        Ok(())
    }

    #[test]
    fn unit_names_need_a_stem() {
        assert!(has_suffix("a.service", UNIT_SUFFIXES));
        assert!(!has_suffix(".service", UNIT_SUFFIXES));
        assert!(has_suffix("default.target.wants", LINK_DIRS));
    }
}
