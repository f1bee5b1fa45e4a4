//! Entries of HOME, and of the pi-config work tree, with no declared role and backup
//! class (`unclassified:~/NAME`).
//!
//! The rule, for each top-level entry of HOME:
//!
//! - it is classified when the manifest declares it or something inside it: a `paths`
//!   entry (any class), a service's data, runtime or log path, the repo, a link target,
//!   a folder of `dirs`, an env file, a shell file, the user unit folder (when there
//!   are services), the nginx folders, the backup password file, the dependency
//!   installs, and pi-bootstrap's own state folder (`~/.local/state/pi-bootstrap`);
//! - or it is one of the well-known entries every Linux account has, that tools fill
//!   and refill by themselves ([`WELL_KNOWN`]: caches, histories, the login files of
//!   `/etc/skel`);
//! - anything else (`~/scratch`, `~/.ssh`, `~/notes.db`) is unclassified: after the
//!   machine is lost it is either gone or comes back by luck. Declare it under `paths`
//!   with its role and backup class (`disposable` when it may be lost).
//!
//! The repo's work tree is scanned the same way, one level deep: an entry is
//! classified when git tracks something in it, when it is `.git`, or when the manifest
//! declares it or something inside it (data, runtime and log paths, `node_modules`).
//! Only the top level is looked at: an entry that is classified covers what is in it.
//! HOME declared as a whole under `paths` classifies everything.

use std::collections::{BTreeMap, BTreeSet};

use common::report::{Item, Status, tilde};

use super::{item, kind_of, sorted_entries};
use crate::declared::Declared;

/// Entries of HOME every account has, refilled by their tools: never unclassified.
pub const WELL_KNOWN: &[&str] = &[
    // Caches and package-manager stores, refilled on use.
    ".cache",
    ".npm",
    ".bun",
    ".node-gyp",
    ".cargo",
    ".rustup",
    ".pki",
    // Ansible's remote temporary folder (`~/.ansible/tmp`), made again by every run.
    ".ansible",
    // Histories and small tool state.
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".node_repl_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
    ".sudo_as_admin_successful",
    ".selected_editor",
    // Login files from /etc/skel.
    ".profile",
    ".bashrc",
    ".bash_logout",
];

/// The unclassified entries of HOME; one ok item when there are none.
pub fn scan_home(declared: &Declared) -> Vec<Item> {
    let home = &declared.home;
    if declared.home_declared {
        return vec![item(
            "scan:home".into(),
            "scan",
            Status::Ok,
            Some(home.clone()),
            "HOME is declared as a whole under `paths`".into(),
        )];
    }
    let accounted = declared.accounted_children(home);
    let known: BTreeSet<&str> = WELL_KNOWN.iter().copied().collect();
    let entries = match sorted_entries(home) {
        Ok(entries) => entries,
        Err(e) => {
            return vec![item(
                "scan:home".into(),
                "scan",
                Status::Failed,
                Some(home.clone()),
                format!("cannot list: {e}"),
            )];
        }
    };
    let mut items = Vec::new();
    for (name, path) in &entries {
        if accounted.contains_key(name) || known.contains(name.as_str()) {
            continue;
        }
        items.push(item(
            format!("unclassified:{}", tilde(path, home)),
            kind_of(path),
            Status::Drift,
            Some(path.clone()),
            "no declared role or backup class: declare it under `paths` (role, and backup: backup, bootstrap, git or disposable)"
                .into(),
        ));
    }
    if items.is_empty() {
        items.push(item(
            "scan:home".into(),
            "scan",
            Status::Ok,
            Some(home.clone()),
            format!("{} entries, each declared, written by a step or well known", entries.len()),
        ));
    }
    items
}

/// The top-level entries of the repo's work tree that git does not track and the
/// manifest does not declare. `tracked` holds the first path component of every
/// tracked file.
pub fn scan_repo_root(declared: &Declared, tracked: &BTreeSet<String>) -> Vec<Item> {
    let repo = &declared.repo;
    let accounted: BTreeMap<String, String> = declared.accounted_children(repo);
    let entries = match sorted_entries(repo) {
        Ok(entries) => entries,
        Err(e) => {
            return vec![item(
                "scan:repo-root".into(),
                "scan",
                Status::Failed,
                Some(repo.clone()),
                format!("cannot list: {e}"),
            )];
        }
    };
    let mut items = Vec::new();
    for (name, path) in &entries {
        if name == ".git" || tracked.contains(name) || accounted.contains_key(name) {
            continue;
        }
        items.push(item(
            format!("unclassified:{}", tilde(path, &declared.home)),
            kind_of(path),
            Status::Drift,
            Some(path.clone()),
            "in the repo's work tree, but git does not track it and the manifest does not declare it: commit it, or declare it under `paths`"
                .into(),
        ));
    }
    if items.is_empty() {
        items.push(item(
            "scan:repo-root".into(),
            "scan",
            Status::Ok,
            Some(repo.clone()),
            format!("{} entries, each tracked by git or declared", entries.len()),
        ));
    }
    items
}

/// The first component of a `/`-separated repo path.
pub fn top_level(relative: &str) -> &str {
    relative.split('/').next().unwrap_or(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_is_the_first_component() {
        assert_eq!(top_level("a/b/c"), "a");
        assert_eq!(top_level("file"), "file");
    }
}
