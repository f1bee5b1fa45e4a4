//! The meaning checks that run after parsing: every problem is collected, none stops
//! the others. Here: the version, names, repo files, where the tool writes, references
//! between sections, patterns and the backup policy; in [`owners`] one owner per host
//! path, in [`classes`] backup classes and the repository, in [`values`] the values
//! that can never work.

mod classes;
mod owners;
mod values;

use std::collections::HashMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

pub(crate) use super::shown::shown;
use super::tree::LazyTree;
use super::types::{Manifest, Name, Pos};

/// One thing wrong with a manifest that parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where in the file; line 0 when the problem has no single place.
    pub pos: Pos,
    /// The key path, such as `links[2].target`.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub(crate) fn new(pos: Pos, key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { pos, key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Runs every meaning check; `home` is where the tool may write, `tree` gives the
/// positions of values the manifest's types do not keep.
pub(crate) fn check_manifest(m: &Manifest, home: &Path, tree: &LazyTree<'_>) -> Vec<Problem> {
    let mut p = Vec::new();
    if m.version != 1 {
        p.push(Problem::new(
            tree.pos("version").unwrap_or_default(),
            "version",
            format!("this tool reads manifest version 1, not version {}", m.version),
        ));
    }
    check_names(m, &mut p);
    check_repo_files(m, &mut p);
    check_write_targets(m, home, &mut p);
    owners::check_owners(m, home, &mut p);
    classes::check_backup_classes(m, &mut p);
    classes::check_one_class(m, &mut p);
    classes::check_repository(m, &mut p);
    check_references(m, tree, &mut p);
    check_patterns(m, tree, &mut p);
    check_backup_policy(m, tree, &mut p);
    values::check_values(m, tree, &mut p);
    p.sort_by_key(|problem| (problem.pos.line, problem.pos.column));
    p
}

fn check_names(m: &Manifest, p: &mut Vec<Problem>) {
    let sections: [(&str, Vec<&Name>); 10] = [
        ("prereqs", m.prereqs.iter().map(|x| &x.name).collect()),
        ("repo.deps", m.repo.deps.iter().map(|x| &x.name).collect()),
        ("links", m.links.iter().map(|x| &x.name).collect()),
        ("dirs", m.dirs.iter().map(|x| &x.name).collect()),
        ("services", m.services.iter().map(|x| &x.name).collect()),
        ("nginx.sites", m.nginx.iter().flat_map(|n| n.sites.iter().map(|x| &x.name)).collect()),
        ("shell", m.shell.iter().map(|x| &x.name).collect()),
        ("env", m.env.iter().map(|x| &x.name).collect()),
        ("paths", m.paths.iter().map(|x| &x.name).collect()),
        ("validate", m.validate.iter().map(|x| &x.name).collect()),
    ];
    for (section, names) in sections {
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let key = format!("{section}[{i}].name");
            let valid = name.as_str().chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
                && name.as_str().chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid {
                p.push(Problem::new(
                    name.pos(),
                    &key,
                    format!("{} is not a valid name: use letters, digits, '.', '_' and '-'", shown(name.as_str())),
                ));
            } else if let Some(message) = values::name_too_long(name) {
                p.push(Problem::new(name.pos(), &key, message));
            }
            if let Some(first) = seen.get(name.as_str()) {
                p.push(Problem::new(
                    name.pos(),
                    &key,
                    format!("duplicate name {:?} in {section}: first used at line {}", name.as_str(), first.line),
                ));
            } else {
                seen.insert(name.as_str(), name.pos());
            }
        }
    }
}

/// Is the git work tree at `path` complete: a `.git` whose HEAD names a commit (a
/// branch that exists, or a detached commit) and an index, which a clone writes once
/// its checkout is done? Files only, no git: a clone killed halfway, an empty folder
/// or an unborn HEAD is not complete.
pub fn repo_is_complete(path: &Path) -> bool {
    // `.git` is a folder, or a file naming it (a linked work tree, a submodule).
    let dot_git = path.join(".git");
    let git = match std::fs::read_to_string(&dot_git) {
        Ok(text) => match text.trim().strip_prefix("gitdir: ") {
            Some(dir) => path.join(dir),
            None => return false,
        },
        Err(_) => dot_git,
    };
    // Refs live in the common folder of linked work trees.
    let common = std::fs::read_to_string(git.join("commondir")).map_or_else(|_| git.clone(), |c| git.join(c.trim()));
    let Ok(head) = std::fs::read_to_string(git.join("HEAD")) else { return false };
    if !git.join("index").is_file() {
        return false;
    }
    match head.trim().strip_prefix("ref: ") {
        None => head.trim().len() >= 40,
        Some(reference) => {
            [&git, &common].iter().any(|dir| dir.join(reference).is_file())
                || std::fs::read_to_string(common.join("packed-refs"))
                    .is_ok_and(|packed| packed.lines().any(|l| l.split_whitespace().nth(1) == Some(reference)))
        }
    }
}

/// Files the manifest takes from the repo must exist there, once the repo is complete
/// (a clone that did not finish is `bootstrap-pi-config`'s to repair, not a mistake of
/// the manifest).
fn check_repo_files(m: &Manifest, p: &mut Vec<Problem>) {
    if !repo_is_complete(m.repo.path.path()) {
        return;
    }
    let mut files = Vec::new();
    for (i, link) in m.links.iter().enumerate() {
        files.push((format!("links[{i}].source"), &link.source));
    }
    for (i, svc) in m.services.iter().enumerate() {
        files.push((format!("services[{i}].source"), &svc.source));
        files.push((format!("services[{i}].unit"), &svc.unit));
        for (t, timer) in svc.timers.iter().enumerate() {
            files.push((format!("services[{i}].timers[{t}]"), timer));
        }
    }
    for (i, site) in m.nginx.iter().flat_map(|n| n.sites.iter()).enumerate() {
        files.push((format!("nginx.sites[{i}].source"), &site.source));
    }
    for (i, block) in m.shell.iter().enumerate() {
        files.push((format!("shell[{i}].source"), &block.source));
    }
    for (i, prereq) in m.prereqs.iter().enumerate() {
        if let super::types::Install::Script(script) = &prereq.install {
            files.push((format!("prereqs[{i}].install.script"), script));
        }
    }
    for (i, dep) in m.repo.deps.iter().enumerate() {
        // The installed tree is what the install makes: it need not be there yet.
        for (field, file) in [("dir", &dep.dir), ("lockfile", &dep.lockfile)] {
            if let Some(file) = file {
                files.push((format!("repo.deps[{i}].{field}"), file));
            }
        }
    }
    for (key, file) in files {
        if std::fs::symlink_metadata(file.path()).is_err() {
            p.push(Problem::new(
                file.pos(),
                key,
                format!("{} does not exist in the repo at {}", shown(file.raw()), m.repo.path.path().display()),
            ));
        }
    }
}

/// Where the tool writes must stay inside HOME, also through symlinks.
fn check_write_targets(m: &Manifest, home: &Path, p: &mut Vec<Problem>) {
    let mut targets = Vec::new();
    for (i, link) in m.links.iter().enumerate() {
        targets.push((format!("links[{i}].target"), &link.target));
    }
    for (i, dir) in m.dirs.iter().enumerate() {
        targets.push((format!("dirs[{i}].path"), &dir.path));
    }
    for (i, block) in m.shell.iter().enumerate() {
        targets.push((format!("shell[{i}].file"), &block.file));
    }
    for (i, env) in m.env.iter().enumerate() {
        targets.push((format!("env[{i}].path"), &env.path));
    }
    let real_home = home.canonicalize().unwrap_or_else(|_| home.to_path_buf());
    // Targets share folders (a thousand env files in one): each is resolved once.
    let mut real_parents: HashMap<&Path, Option<PathBuf>> = HashMap::new();
    for (key, target) in targets {
        let path = target.path();
        if path.as_os_str().is_empty() || !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            continue; // expansion already failed and said why
        }
        if path == home {
            p.push(Problem::new(
                target.pos(),
                key,
                format!("{} is HOME itself: name a file or folder inside HOME", path.display()),
            ));
            continue;
        }
        if !path.starts_with(home) {
            p.push(Problem::new(
                target.pos(),
                key,
                format!("{} is outside HOME ({}): this step only writes inside HOME", path.display(), home.display()),
            ));
            continue;
        }
        // The item itself may be a symlink the tool manages; its folder may not lead out.
        if let Some(parent) = path.parent()
            && let Some(real_parent) = real_parents
                .entry(parent)
                .or_insert_with(|| nearest_existing(parent, home).and_then(|a| a.canonicalize().ok()))
            && !real_parent.starts_with(&real_home)
        {
            p.push(Problem::new(
                target.pos(),
                key,
                format!("{} leads out of HOME through a symlink (to {})", path.display(), real_parent.display()),
            ));
        }
    }
}

/// The nearest folder of `path` that exists, up to `home` (a HOME that does not exist
/// yet leads nowhere).
fn nearest_existing(path: &Path, home: &Path) -> Option<PathBuf> {
    path.ancestors()
        .take_while(|a| a.starts_with(home))
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .map(Path::to_path_buf)
}

fn check_references(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    for (i, svc) in m.services.iter().enumerate() {
        if let Some(env) = &svc.env_file
            && m.env_file(env).is_none()
        {
            let key = format!("services[{i}].env_file");
            let known: Vec<&str> = m.env.iter().map(|e| e.name.as_str()).collect();
            let known = if known.is_empty() {
                "the `env` section declares none".to_owned()
            } else {
                format!("the `env` section declares {}", known.join(", "))
            };
            p.push(Problem::new(
                tree.pos(&key).unwrap_or_else(|| svc.name.pos()),
                key,
                format!("no env file named {env:?}: {known}"),
            ));
        }
    }
    for (i, path) in m.paths.iter().enumerate() {
        for (o, owner) in path.owners.iter().enumerate() {
            if m.services.iter().any(|s| s.name.as_str() == owner) {
                continue;
            }
            let key = format!("paths[{i}].owners[{o}]");
            let known: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
            let known = if known.is_empty() {
                "the `services` section declares none".to_owned()
            } else {
                format!("the services are {}", known.join(", "))
            };
            p.push(Problem::new(
                tree.pos(&key).unwrap_or_else(|| path.name.pos()),
                key,
                format!("no service named {owner:?}: {known}"),
            ));
        }
    }
    for (i, env) in m.env.iter().enumerate() {
        for (v, var) in env.vars.iter().enumerate() {
            let valid = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                let key = format!("env[{i}].vars[{v}]");
                p.push(Problem::new(
                    tree.pos(&key).unwrap_or_else(|| env.name.pos()),
                    key,
                    format!("{var:?} is not a variable name: use letters, digits and '_', not starting with a digit"),
                ));
            }
        }
        if let Some(mode) = env.mode
            && mode.0 & 0o077 != 0
        {
            let key = format!("env[{i}].mode");
            p.push(Problem::new(
                tree.pos(&key).unwrap_or_else(|| env.name.pos()),
                key,
                format!("env files hold secrets: mode {mode} lets others read them; use \"0600\""),
            ));
        }
    }
    for (i, check) in m.validate.iter().enumerate() {
        let kinds: Vec<&str> =
            [("command", check.command.is_some()), ("http", check.http.is_some()), ("file", check.file.is_some())]
                .into_iter()
                .filter_map(|(kind, given)| given.then_some(kind))
                .collect();
        let message = match kinds.as_slice() {
            [_] => continue,
            [] => "the check has none of `command`, `http` or `file`: give exactly one".to_owned(),
            several => format!(
                "the check has {}: give exactly one of `command`, `http` or `file`",
                several.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(" and ")
            ),
        };
        let key = format!("validate[{i}]");
        p.push(Problem::new(tree.pos(&key).unwrap_or_else(|| check.name.pos()), key, message));
    }
}

/// Output and body patterns are regexes: one that does not compile is a mistake in the
/// manifest, found now rather than as a failing check after a restore.
fn check_patterns(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    let mut patterns: Vec<(String, &str, Pos)> = Vec::new();
    for (i, svc) in m.services.iter().enumerate() {
        if let Some(super::types::Health::Http(http)) = &svc.health
            && let Some(body) = &http.body
        {
            patterns.push((format!("services[{i}].health.http.body"), body, svc.name.pos()));
        }
    }
    for (i, site) in m.nginx.iter().flat_map(|n| n.sites.iter()).enumerate() {
        for (r, route) in site.routes.iter().enumerate() {
            if let Some(body) = &route.body {
                patterns.push((format!("nginx.sites[{i}].routes[{r}].body"), body, site.name.pos()));
            }
        }
    }
    for (i, check) in m.validate.iter().enumerate() {
        if let Some(output) = &check.output {
            patterns.push((format!("validate[{i}].output"), output, check.name.pos()));
        }
        if let Some(body) = check.http.as_ref().and_then(|h| h.body.as_ref()) {
            patterns.push((format!("validate[{i}].http.body"), body, check.name.pos()));
        }
    }
    for (key, pattern, fallback) in patterns {
        // The same parser the `regex` crate compiles with, without the compiling.
        if let Err(e) = regex_syntax::Parser::new().parse(pattern) {
            let why = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
            p.push(Problem::new(
                tree.pos(&key).unwrap_or(fallback),
                key,
                format!("{pattern:?} is not a valid regular expression ({why})"),
            ));
        }
    }
}

/// The backup's schedule, verification and retention: a schedule on one line (and no
/// service unit taking the name of the schedule's own units), a read-data subset restic
/// understands, a keep policy that keeps something.
fn check_backup_policy(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    let Some(backup) = &m.backup else { return };
    if let Some(schedule) = &backup.schedule {
        let text = schedule.value.trim();
        if text.is_empty() || text.contains(['\n', '\r']) {
            p.push(Problem::new(
                Pos::of(schedule),
                "backup.schedule",
                format!(
                    "{:?} is not a schedule: give a systemd calendar such as \"daily\" or \"*-*-* 03:00\"",
                    schedule.value
                ),
            ));
        }
    }
    if backup.schedule.is_some() {
        // The scheduled backup's own units: a service may not install one of the same name.
        let own =
            [format!("{}.service", crate::install::BACKUP_UNIT), format!("{}.timer", crate::install::BACKUP_UNIT)];
        for (i, service) in m.services.iter().enumerate() {
            let files = std::iter::once(("unit".to_owned(), service.unit_name()))
                .chain(service.timer_names().into_iter().enumerate().map(|(t, n)| (format!("timers[{t}]"), n)));
            for (key, name) in files.filter(|(_, name)| own.contains(name)) {
                let key = format!("services[{i}].{key}");
                p.push(Problem::new(
                    tree.pos(&key).unwrap_or_else(|| service.name.pos()),
                    key,
                    format!("{name} is the unit bootstrap-services writes for `backup.schedule`: give this unit another name"),
                ));
            }
        }
    }
    if let Some(subset) = backup.verify.as_ref().and_then(|v| v.read_data.as_ref())
        && !is_read_data_subset(&subset.value)
    {
        p.push(Problem::new(
            Pos::of(subset),
            "backup.verify.read_data",
            format!("{:?} is not a part of the data to read: give a percentage such as \"5%\" (more than 0, at most 100) or a fraction such as \"1/7\"", subset.value),
        ));
    }
    if let Some(keep) = &backup.keep
        && [keep.last, keep.daily, keep.weekly, keep.monthly].iter().all(|n| n.unwrap_or(0) == 0)
    {
        p.push(Problem::new(
            tree.pos("backup.keep").unwrap_or_default(),
            "backup.keep",
            "a keep policy that keeps nothing: give at least one of last, daily, weekly, monthly above 0 (or leave `keep` out to keep every snapshot)",
        ));
    }
}

/// `5%`, `2.5%`, `100%`, or `n/m` with 1 <= n <= m, as `restic check --read-data-subset` reads it.
fn is_read_data_subset(text: &str) -> bool {
    let text = text.trim();
    if let Some(percent) = text.strip_suffix('%') {
        return percent.trim().parse::<f64>().is_ok_and(|v| v > 0.0 && v <= 100.0);
    }
    match text.split_once('/') {
        Some((n, m)) => match (n.trim().parse::<u32>(), m.trim().parse::<u32>()) {
            (Ok(n), Ok(m)) => n >= 1 && n <= m,
            _ => false,
        },
        None => false,
    }
}
