//! What the manifest declares and what a run writes, computed once per audit, in the
//! shapes the scans look things up in (sets and maps, never a list searched per item).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::manifest::{BackupClass, Manifest};

/// Where the steps keep their state, under HOME.
pub const STATE_DIR: &str = ".local/state/pi-bootstrap";

/// A place inside the repo that holds what git must never track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoData {
    /// Relative to the repo root, `/`-separated.
    pub relative: String,
    /// What it is, for messages: "the data path of service agents-database".
    pub what: String,
    /// Whether `.gitignore` must cover it (the places services write at run time, and
    /// env files); declared paths are only checked for tracked files.
    pub must_ignore: bool,
    /// Known (or declared) to be a folder.
    pub folder: bool,
}

/// The manifest, seen from the scans.
#[derive(Debug, Clone)]
pub struct Declared {
    pub home: PathBuf,
    pub repo: PathBuf,
    /// Every unit file name the services install (`alpha.service`, `alpha.timer`), and
    /// the scheduled backup's own (`pi-bootstrap-backup.service`, `.timer`) when
    /// `backup.schedule` is set.
    pub units: BTreeSet<String>,
    /// The nginx site names.
    pub sites: BTreeSet<String>,
    /// Shell file -> the names of the blocks declared in it.
    pub blocks: BTreeMap<PathBuf, BTreeSet<String>>,
    /// The declared env files.
    pub env_files: BTreeSet<PathBuf>,
    /// Everything with a declared role or written by a run, with why.
    pub accounted: Vec<(PathBuf, String)>,
    /// What must not be tracked inside the repo.
    pub repo_data: Vec<RepoData>,
    /// Services with a TCP port.
    pub ports: Vec<(String, u16)>,
    /// HOME itself (or a folder above it) is declared under `paths`: everything in it
    /// has a class.
    pub home_declared: bool,
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

impl Declared {
    pub fn new(manifest: &Manifest, home: &Path) -> Declared {
        let repo = manifest.repo.path.path().to_path_buf();
        let mut accounted: Vec<(PathBuf, String)> = Vec::new();
        let mut account = |path: &Path, why: String| accounted.push((path.to_path_buf(), why));
        account(&repo, "the pi-config repo".to_owned());
        account(&home.join(STATE_DIR), "pi-bootstrap's state".to_owned());
        for dep in &manifest.repo.deps {
            if let Some(installed) = &dep.installed {
                account(installed.path(), format!("installed by dep:{}", dep.name));
            }
        }
        for link in &manifest.links {
            account(link.target.path(), format!("link:{}", link.name));
        }
        for dir in &manifest.dirs {
            account(dir.path.path(), format!("dir:{}", dir.name));
        }
        for block in &manifest.shell {
            account(block.file.path(), format!("shell:{}", block.name));
        }
        for env in &manifest.env {
            account(env.path.path(), format!("env:{}", env.name));
        }
        for path in &manifest.paths {
            account(path.path.path(), format!("path:{} ({})", path.name, path.backup.value.as_str()));
        }
        let backup_units = bootstrap_services::backup_timer::backup_units(manifest);
        if !manifest.services.is_empty() || !backup_units.is_empty() {
            account(&home.join(bootstrap_services::USER_UNIT_DIR), "the user units".to_owned());
        }
        for service in &manifest.services {
            for (what, path) in
                [("data", &service.data_path), ("runtime", &service.runtime_path), ("log", &service.log_path)]
            {
                if let Some(path) = path {
                    account(path.path(), format!("the {what} path of service:{}", service.name));
                }
            }
        }
        if let Some(nginx) = &manifest.nginx {
            account(nginx.prefix.path(), "nginx".to_owned());
            account(nginx.sites_available.path(), "nginx".to_owned());
            if let Some(enabled) = &nginx.sites_enabled {
                account(enabled.path(), "nginx".to_owned());
            }
        }
        if let Some(backup) = &manifest.backup {
            account(backup.password_file.path(), "the backup password".to_owned());
        }

        let mut repo_data = Vec::new();
        let relative = |path: &Path| {
            path.strip_prefix(&repo)
                .ok()
                .filter(|r| !r.as_os_str().is_empty())
                .map(|r| r.to_string_lossy().into_owned())
        };
        for service in &manifest.services {
            for (what, path, folder) in [
                ("data", &service.data_path, true),
                ("runtime", &service.runtime_path, true),
                ("log", &service.log_path, false),
            ] {
                if let Some(rel) = path.as_ref().and_then(|p| relative(p.path())) {
                    repo_data.push(RepoData {
                        relative: rel,
                        what: format!("the {what} path of service {}", service.name),
                        must_ignore: true,
                        folder,
                    });
                }
            }
        }
        for env in &manifest.env {
            if let Some(rel) = relative(env.path.path()) {
                repo_data.push(RepoData {
                    relative: rel,
                    what: format!("env file {}", env.name),
                    must_ignore: true,
                    folder: false,
                });
            }
        }
        for path in &manifest.paths {
            let class = path.backup.value;
            if matches!(class, BackupClass::Backup | BackupClass::Disposable)
                && let Some(rel) = relative(path.path.path())
            {
                repo_data.push(RepoData {
                    relative: rel,
                    what: format!("the `{}` path, class {}", path.name, class.as_str()),
                    must_ignore: false,
                    folder: false,
                });
            }
        }

        let mut blocks: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        for block in &manifest.shell {
            blocks.entry(block.file.path().to_path_buf()).or_default().insert(block.name.as_str().to_owned());
        }
        Declared {
            home: home.to_path_buf(),
            repo,
            units: bootstrap_services::unit_files(manifest, home)
                .iter()
                .map(|u| file_name(&u.target))
                .chain(backup_units)
                .collect(),
            sites: manifest.nginx.iter().flat_map(|n| n.sites.iter().map(|s| s.name.as_str().to_owned())).collect(),
            blocks,
            env_files: manifest.env.iter().map(|e| e.path.path().to_path_buf()).collect(),
            accounted,
            repo_data,
            ports: manifest.services.iter().filter_map(|s| Some((s.name.as_str().to_owned(), s.port?))).collect(),
            home_declared: manifest.paths.iter().any(|p| home.starts_with(p.path.path())),
        }
    }

    /// The names of the entries of `root` that are, or hold, something accounted for,
    /// with why (the first reason found).
    pub fn accounted_children(&self, root: &Path) -> BTreeMap<String, String> {
        let mut children = BTreeMap::new();
        for (path, why) in &self.accounted {
            if let Ok(rel) = path.strip_prefix(root)
                && let Some(first) = rel.components().next()
            {
                children.entry(first.as_os_str().to_string_lossy().into_owned()).or_insert_with(|| why.clone());
            }
        }
        children
    }
}
