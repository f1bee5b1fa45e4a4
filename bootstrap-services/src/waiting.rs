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

    /// The awaiting paths `service` waits for: those it writes to, and the one that
    /// holds its env file when that file is missing.
    pub fn waited_for(&self, service: &Service, manifest: &Manifest) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .paths
            .iter()
            .filter(|d| d.owners.iter().any(|o| o.service == service.name.as_str()))
            .filter(|d| self.awaiting.contains(&d.path))
            .map(|d| d.path.clone())
            .collect();
        if let Some(env) = service.env_file.as_deref().and_then(|name| manifest.env_file(name))
            && std::fs::symlink_metadata(env.path.path()).is_err()
            && let Some(held) = self.holding(env.path.path())
            && !out.iter().any(|p| p == held)
        {
            out.push(held.to_path_buf());
        }
        out
    }
}

/// "~/a, ~/b".
pub fn shown(paths: &[PathBuf], home: &Path) -> String {
    paths.iter().map(|p| tilde(p, home)).collect::<Vec<_>>().join(", ")
}

/// The ledger's `waiting` for the services `chosen`, replaced by `now` (the other
/// services' entries stay). Returns whether anything changed.
pub fn record(ledger: &mut Ledger, chosen: &[&Service], now: &BTreeMap<String, Vec<PathBuf>>) -> bool {
    let before = ledger.waiting.clone();
    for service in chosen {
        let name = service.name.as_str();
        match now.get(name) {
            Some(paths) => {
                ledger.waiting.insert(name.to_owned(), paths.clone());
            }
            None => {
                ledger.waiting.remove(name);
            }
        }
    }
    ledger.waiting != before
}
