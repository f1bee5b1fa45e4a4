//! One owner per host path: every place a step writes (or reads, for the backup's
//! password) is claimed by one item, and no item replaces what another needs. Two
//! claims on one path make every run flip it; a link over the repo moves the repo into
//! the kept copies and points into itself; a folder where a link goes is written into
//! the repo; a shell block in an env file puts its secrets in the kept copies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::super::types::{Manifest, Pos};
use super::Problem;

/// The folder user units are installed into, under HOME (`bootstrap-services`).
const USER_UNIT_DIR: &str = ".config/systemd/user";

/// What an item does with its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Use {
    Repo,
    Link,
    Folder,
    EnvFile,
    ShellFile,
    Unit,
    NginxConf,
    NginxFolder,
    NginxSite,
    PasswordFile,
}

impl Use {
    fn what(self) -> &'static str {
        match self {
            Use::Repo => "the pi-config repo",
            Use::Link => "a link",
            Use::Folder => "a folder",
            Use::EnvFile => "an env file",
            Use::ShellFile => "a shell rc file with managed blocks",
            Use::Unit => "a user unit file",
            Use::NginxConf => "nginx's main configuration",
            Use::NginxFolder => "an nginx sites folder",
            Use::NginxSite => "an nginx site file",
            Use::PasswordFile => "the backup's password file",
        }
    }

    /// Whether making this path replaces what is there (a folder above it included):
    /// a folder is only made or given its mode, never replaced.
    fn replaces(self) -> bool {
        !matches!(self, Use::Folder | Use::Repo | Use::NginxFolder)
    }
}

/// One item's claim on a host path.
#[derive(Debug)]
struct Claim {
    path: PathBuf,
    key: String,
    pos: Pos,
    how: Use,
}

/// Every claim of the manifest, in file order within each section.
fn claims(m: &Manifest, home: &Path) -> Vec<Claim> {
    let mut out = Vec::new();
    let mut claim = |path: &Path, key: String, pos: Pos, how: Use| {
        // A path expansion refused is reported there already.
        if path.is_absolute() {
            out.push(Claim { path: path.to_path_buf(), key, pos, how });
        }
    };
    claim(m.repo.path.path(), "repo.path".into(), m.repo.path.pos(), Use::Repo);
    for (i, link) in m.links.iter().enumerate() {
        claim(link.target.path(), format!("links[{i}].target"), link.target.pos(), Use::Link);
    }
    for (i, dir) in m.dirs.iter().enumerate() {
        claim(dir.path.path(), format!("dirs[{i}].path"), dir.path.pos(), Use::Folder);
    }
    for (i, env) in m.env.iter().enumerate() {
        claim(env.path.path(), format!("env[{i}].path"), env.path.pos(), Use::EnvFile);
    }
    for (i, block) in m.shell.iter().enumerate() {
        claim(block.file.path(), format!("shell[{i}].file"), block.file.pos(), Use::ShellFile);
    }
    let units = home.join(USER_UNIT_DIR);
    for (i, service) in m.services.iter().enumerate() {
        claim(&units.join(service.unit_name()), format!("services[{i}].unit"), service.unit.pos(), Use::Unit);
        for (t, timer) in service.timers.iter().enumerate() {
            let name = Path::new(timer.raw()).file_name().map(Path::new).unwrap_or(Path::new(""));
            claim(&units.join(name), format!("services[{i}].timers[{t}]"), timer.pos(), Use::Unit);
        }
    }
    if let Some(nginx) = &m.nginx {
        claim(nginx.conf.path(), "nginx.conf".into(), nginx.conf.pos(), Use::NginxConf);
        claim(
            nginx.sites_available.path(),
            "nginx.sites_available".into(),
            nginx.sites_available.pos(),
            Use::NginxFolder,
        );
        if let Some(enabled) = &nginx.sites_enabled {
            claim(enabled.path(), "nginx.sites_enabled".into(), enabled.pos(), Use::NginxFolder);
        }
        for (i, site) in nginx.sites.iter().enumerate() {
            let key = format!("nginx.sites[{i}].name");
            claim(&nginx.sites_available.path().join(site.name.as_str()), key.clone(), site.name.pos(), Use::NginxSite);
            if let Some(enabled) = &nginx.sites_enabled {
                claim(&enabled.path().join(site.name.as_str()), key, site.name.pos(), Use::NginxSite);
            }
        }
    }
    if let Some(backup) = &m.backup {
        claim(
            backup.password_file.path(),
            "backup.password_file".into(),
            backup.password_file.pos(),
            Use::PasswordFile,
        );
    }
    out
}

/// Two claims on the same path that may share it: managed blocks of several items in
/// one rc file, and a site's file claimed by its one item in both nginx folders.
fn may_share(a: &Claim, b: &Claim) -> bool {
    (a.how == Use::ShellFile && b.how == Use::ShellFile) || (a.key == b.key)
}

/// Why `later` may not take the path `first` holds, in words (`first` is the other
/// claim: for a shell block over a secret, the secret's).
fn same_path(first: &Claim, later: &Claim) -> String {
    let path = later.path.display();
    let line = first.pos.line;
    match (first.how, later.how) {
        (Use::NginxFolder, Use::NginxFolder) => format!(
            "{path} is also nginx.sites_available (line {line}): each site file would become a link to itself; \
             leave sites_enabled out when this nginx has no such folder"
        ),
        (Use::EnvFile | Use::PasswordFile, Use::ShellFile) => format!(
            "{path} is {} ({}, line {line}): a shell block there would copy its secrets into the state folder's \
             kept copies; put the block in a shell rc file",
            first.how.what(),
            first.key
        ),
        (Use::Repo, how) => format!(
            "{path} is the pi-config repo (repo.path, line {line}): {} there would replace the repo",
            how.what()
        ),
        _ => format!(
            "{path} is also {} ({}, line {line}): one path, one owner (otherwise every run changes it back)",
            first.how.what(),
            first.key
        ),
    }
}

/// One owner per host path (see the module's documentation).
pub(super) fn check_owners(m: &Manifest, home: &Path, p: &mut Vec<Problem>) {
    let claims = claims(m, home);
    // The claims on each path, in file order: one map, not every pair of claims.
    let mut by_path: BTreeMap<&Path, Vec<&Claim>> = BTreeMap::new();
    for later in &claims {
        let earlier = by_path.entry(later.path.as_path()).or_default();
        if let Some(first) = earlier.iter().find(|c| !may_share(c, later)) {
            // A shell block over a secret is the block's mistake: said at the block.
            let (at, other) = if first.how == Use::ShellFile { (*first, later) } else { (later, *first) };
            p.push(Problem::new(at.pos, &at.key, same_path(other, at)));
        }
        earlier.push(later);
    }
    let repo = m.repo.path.path();
    for claim in &claims {
        // Above the repo: made, it would replace the folder the repo is in.
        if claim.how.replaces() && repo.starts_with(&claim.path) && claim.path != repo {
            p.push(Problem::new(
                claim.pos,
                &claim.key,
                format!(
                    "{} holds the pi-config repo ({}): {} there would replace the repo",
                    claim.path.display(),
                    repo.display(),
                    claim.how.what()
                ),
            ));
        }
    }
    for (i, link) in m.links.iter().enumerate() {
        let (target, source) = (link.target.path(), link.source.path());
        // (A target over the repo was said above.)
        if target.is_absolute() && source.starts_with(target) && !repo.starts_with(target) {
            p.push(Problem::new(
                link.target.pos(),
                format!("links[{i}].target"),
                format!(
                    "{} is where its own source {} lies: the link would replace its source and point at itself",
                    target.display(),
                    source.display()
                ),
            ));
        }
        // What lies inside a link's target would be written into the repo through it.
        if repo.starts_with(target) {
            continue; // said above: the link would replace the repo, and everything in it
        }
        // Paths order by component, so what lies inside `target` follows it in the map.
        let inside = by_path.range(target..).skip_while(|(path, _)| **path == target);
        let inside = inside.take_while(|(path, _)| path.starts_with(target)).flat_map(|(_, claims)| claims.iter());
        for inner in inside {
            p.push(Problem::new(
                inner.pos,
                &inner.key,
                format!(
                    "{} lies inside links[{i}].target ({}), which becomes a link into the repo: {} there would be \
                     written into the repo; declare a link for the file itself, or no link for the folder",
                    inner.path.display(),
                    target.display(),
                    inner.how.what()
                ),
            ));
        }
    }
}
