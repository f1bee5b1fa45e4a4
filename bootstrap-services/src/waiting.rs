//! What waits for its data on a fresh host.
//!
//! A service that writes to a `backup`-class path still awaiting its restore (see
//! `common::durable`) would create a fresh, empty copy of its data at its first start
//! (a database, salts) before the data step runs. So while one of its paths awaits, a
//! service that is not running already is installed but neither enabled nor started;
//! the services step writes it down in the ledger's `waiting`, and `bootstrap-data
//! restore` starts it once its paths are settled. A service that runs already is left
//! alone: what it writes is this host's.
//!
//! The same for a service whose env file is missing and lies in an awaiting path (the
//! backup holds it), and for that env file itself when the environment cannot fill it:
//! it waits for the restore instead of failing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::durable::{self, DataPath, Ledger, provenance::Provenance};
use common::manifest::{Manifest, Service};
use common::report::tilde;

/// The awaiting data paths of a manifest, by path.
pub struct Awaiting {
    paths: Vec<DataPath>,
    awaiting: Vec<PathBuf>,
}

impl Awaiting {
    /// Reads where each data path stands (scanning only paths the ledger has not seen).
    pub fn of(manifest: &Manifest, ledger: &Ledger, home: &Path) -> Awaiting {
        let paths = durable::data_paths(manifest);
        let unseen: Vec<&Path> = paths
            .iter()
            .filter(|p| !ledger.first_seen.contains_key(&p.path) && !ledger.settled.contains_key(&p.path))
            .map(|p| p.path.as_path())
            .collect();
        let provenance = Provenance::new(manifest, home, &unseen);
        let awaiting = paths
            .iter()
            .filter(|p| ledger.standing(&p.path, &provenance).is_awaiting())
            .map(|p| p.path.clone())
            .collect();
        Awaiting { paths, awaiting }
    }

    /// The awaiting data path that holds `path`, if any.
    pub fn holding(&self, path: &Path) -> Option<&Path> {
        durable::holding(&self.paths, path).map(|d| d.path.as_path()).filter(|p| self.awaiting.iter().any(|a| a == p))
    }

    /// What `service` waits for: the awaiting paths it writes to, and the one that holds
    /// its env file when that file is missing. Empty when it waits for nothing.
    pub fn waited_for(&self, service: &Service, manifest: &Manifest) -> Wait {
        let mut data: Vec<PathBuf> = Vec::new();
        for d in self.paths.iter().filter(|d| d.owners.iter().any(|o| o.service == service.name.as_str())) {
            if self.awaiting.contains(&d.path) && !data.contains(&d.path) {
                data.push(d.path.clone());
            }
        }
        // A path inside another one it waits for says nothing more.
        let outer: Vec<PathBuf> =
            data.iter().filter(|p| !data.iter().any(|o| o != *p && p.starts_with(o))).cloned().collect();
        let env = service
            .env_file
            .as_deref()
            .and_then(|name| manifest.env_file(name))
            .filter(|env| std::fs::symlink_metadata(env.path.path()).is_err())
            .and_then(|env| Some((env.path.path().to_path_buf(), self.holding(env.path.path())?.to_path_buf())));
        Wait { data: outer, env }
    }
}

/// What a service waits for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wait {
    /// Awaiting paths it writes to.
    pub data: Vec<PathBuf>,
    /// Its missing env file, and the awaiting path that holds it.
    pub env: Option<(PathBuf, PathBuf)>,
}

impl Wait {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty() && self.env.is_none()
    }

    /// Every path it waits for (what the ledger keeps).
    pub fn paths(&self) -> Vec<PathBuf> {
        let mut all = self.data.clone();
        if let Some((_, held)) = &self.env
            && !all.contains(held)
        {
            all.push(held.clone());
        }
        all
    }

    /// Why, for reports: "~/a not restored on this host yet (...)".
    pub fn describe(&self, home: &Path) -> String {
        let mut why = Vec::new();
        if !self.data.is_empty() {
            why.push(format!(
                "{} not restored on this host yet (a first start would make a fresh, empty copy)",
                shown(&self.data, home)
            ));
        }
        if let Some((env, held)) = &self.env {
            why.push(format!(
                "its env file {} is missing, and comes back with {}",
                tilde(env, home),
                tilde(held, home)
            ));
        }
        why.join("; ")
    }
}

/// "~/a, ~/b".
pub fn shown(paths: &[PathBuf], home: &Path) -> String {
    paths.iter().map(|p| tilde(p, home)).collect::<Vec<_>>().join(", ")
}

/// The ledger's `waiting` for the services `chosen`, replaced by `now` (the other
/// services' entries stay). Returns whether anything changed.
pub fn record(ledger: &mut Ledger, chosen: &[&Service], now: &BTreeMap<String, Wait>) -> bool {
    let before = ledger.waiting.clone();
    for service in chosen {
        let name = service.name.as_str();
        match now.get(name) {
            Some(wait) => {
                ledger.waiting.insert(name.to_owned(), wait.paths());
            }
            None => {
                ledger.waiting.remove(name);
            }
        }
    }
    ledger.waiting != before
}
