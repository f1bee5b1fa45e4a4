//! Values that can never work, refused at load: URLs that do not parse (or are not
//! http/https with a host), TCP targets without a port, HTTP statuses and exit codes
//! out of range, ports shared by two services or zero, unit files that are not
//! `.service` and timers that are not `.timer`, version requirements semver cannot
//! read, durations of zero, empty programs, packages, scripts, urls, branches,
//! purposes and roles, variable names the environment cannot hold, names too long,
//! folder and env file modes their owner cannot use.

use std::collections::HashMap;

use super::super::tree::LazyTree;
use super::super::types::{CommandSpec, Health, HumanDuration, Install, Manifest, Name, Pos};
use super::{Problem, shown};

/// Longest name an item may have (it is part of ids, file names, unit names).
pub(crate) const MAX_NAME: usize = 64;

/// Where to report a value the types keep no position of: its key, else `fallback`.
fn at(tree: &LazyTree<'_>, key: &str, fallback: Pos) -> Pos {
    tree.pos(key).unwrap_or(fallback)
}

/// Runs every value check.
pub(super) fn check_values(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    check_strings(m, tree, p);
    check_commands(m, tree, p);
    check_urls(m, tree, p);
    check_units_and_ports(m, tree, p);
    check_durations(m, tree, p);
    check_modes(m, tree, p);
}

/// A name as the names check wants it, but not too long.
pub(super) fn name_too_long(name: &Name) -> Option<String> {
    let len = name.as_str().chars().count();
    (len > MAX_NAME).then(|| format!("{} is too long ({len} characters): at most {MAX_NAME}", shown(name.as_str())))
}

fn blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// A variable name the environment can hold: letters, digits and `_`, not starting
/// with a digit.
pub(super) fn is_var_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A branch name git accepts (the rules of `git check-ref-format --branch` that a typo
/// breaks): no spaces or control characters, none of `~^:?*[\`, no `..`, `@{` or `//`,
/// not starting with `-` or `/`, not ending with `/`, `.` or `.lock`.
fn is_branch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.chars().any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c))
        && !name.contains("..")
        && !name.contains("@{")
        && !name.contains("//")
        && !name.starts_with(['-', '/'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && name != "@"
}

/// A host name as restic tags a snapshot with it: letters, digits, `.`, `_`, `-`.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
        && !name.starts_with(['-', '.'])
}

fn check_strings(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    if let Some(host) = &m.host
        && !is_host_name(host)
    {
        p.push(Problem::new(
            at(tree, "host", Pos::default()),
            "host",
            format!("{} is not a host name: use letters, digits, '.', '_' and '-'", shown(host)),
        ));
    }
    if blank(&m.repo.url.value) {
        p.push(Problem::new(Pos::of(&m.repo.url), "repo.url", "the repo's url is empty: give the url to clone from"));
    }
    if !is_branch_name(&m.repo.branch) {
        p.push(Problem::new(
            at(tree, "repo.branch", Pos::of(&m.repo.url)),
            "repo.branch",
            format!("{} is not a branch name git accepts", shown(&m.repo.branch)),
        ));
    }
    for (i, prereq) in m.prereqs.iter().enumerate() {
        let package = match &prereq.install {
            Install::Apt(name) => Some(("apt", name)),
            Install::Npm(name) => Some(("npm", name)),
            Install::Pip(name) => Some(("pip", name)),
            Install::Cargo(name) => Some(("cargo", name)),
            Install::Script(_) => None,
        };
        if let Some((manager, name)) = package
            && (blank(name) || name.chars().any(char::is_whitespace))
        {
            let key = format!("prereqs[{i}].install.{manager}");
            let why = if blank(name) { "is empty" } else { "has spaces: give one package" };
            p.push(Problem::new(
                at(tree, &key, prereq.name.pos()),
                key,
                format!("the package name {} {why}", shown(name)),
            ));
        }
        if let Some(requirement) = &prereq.version
            && let Err(e) = semver::VersionReq::parse(requirement)
        {
            let key = format!("prereqs[{i}].version");
            p.push(Problem::new(
                at(tree, &key, prereq.name.pos()),
                key,
                format!(
                    "{} is not a version requirement ({e}): write one such as \">=1.1\" or \"^20\"",
                    shown(requirement)
                ),
            ));
        }
        env_names(&format!("prereqs[{i}].env"), prereq.env.keys(), prereq.name.pos(), tree, p);
    }
    for (i, service) in m.services.iter().enumerate() {
        if blank(&service.purpose) {
            let key = format!("services[{i}].purpose");
            p.push(Problem::new(
                at(tree, &key, service.name.pos()),
                key,
                "the purpose is empty: say in a sentence what the service is for (it goes into the runbook)",
            ));
        }
    }
    for (i, path) in m.paths.iter().enumerate() {
        if blank(&path.role) {
            let key = format!("paths[{i}].role");
            p.push(Problem::new(
                at(tree, &key, path.name.pos()),
                key,
                "the role is empty: say what the path holds (it goes into the backup policy)",
            ));
        }
    }
    for (i, check) in m.validate.iter().enumerate() {
        env_names(&format!("validate[{i}].env"), check.env.keys(), check.name.pos(), tree, p);
        if let Some(exit) = check.exit
            && !(0..=255).contains(&exit)
        {
            let key = format!("validate[{i}].exit");
            p.push(Problem::new(
                at(tree, &key, check.name.pos()),
                key,
                format!("{exit} is not an exit status: a process exits with 0 to 255"),
            ));
        }
    }
    if let Some(backup) = &m.backup
        && blank(&backup.repository.value)
    {
        p.push(Problem::new(
            Pos::of(&backup.repository),
            "backup.repository",
            "the repository is empty: give a restic repository (an absolute path, or sftp:, rest:, s3:, ...)",
        ));
    }
}

fn env_names<'a>(
    section: &str,
    names: impl Iterator<Item = &'a String>,
    fallback: Pos,
    tree: &LazyTree<'_>,
    p: &mut Vec<Problem>,
) {
    for name in names.filter(|n| !is_var_name(n)) {
        let key = format!("{section}.{name}");
        p.push(Problem::new(
            at(tree, &key, at(tree, section, fallback)),
            key,
            format!("{} is not a variable name: use letters, digits and '_', not starting with a digit", shown(name)),
        ));
    }
}

/// Every command must name a program (or, through `shell`, have a script).
fn check_commands(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    let mut commands: Vec<(String, &CommandSpec, Pos)> = Vec::new();
    for (i, prereq) in m.prereqs.iter().enumerate() {
        if prereq.check.0.first().is_none_or(|program| blank(program)) {
            let key = format!("prereqs[{i}].check");
            p.push(Problem::new(
                at(tree, &format!("{key}[0]"), prereq.name.pos()),
                format!("{key}[0]"),
                "the program is empty: give the program and its arguments, such as [bun, --version]",
            ));
        }
    }
    for (i, dep) in m.repo.deps.iter().enumerate() {
        commands.push((format!("repo.deps[{i}].run"), &dep.run, dep.name.pos()));
    }
    for (i, service) in m.services.iter().enumerate() {
        if let Some(install) = &service.install {
            commands.push((format!("services[{i}].install"), install, service.name.pos()));
        }
        if let Some(Health::Command(command)) = &service.health {
            commands.push((format!("services[{i}].health.command"), command, service.name.pos()));
        }
    }
    for (i, check) in m.validate.iter().enumerate() {
        if let Some(command) = &check.command {
            commands.push((format!("validate[{i}].command"), command, check.name.pos()));
        }
    }
    for (key, command, fallback) in commands {
        let (key, message) = match command {
            CommandSpec::Argv(args) if args.first().is_none_or(|program| blank(program)) => {
                (format!("{key}[0]"), "the program is empty: give the program and its arguments".to_owned())
            }
            CommandSpec::Shell(script) if blank(script) => {
                (format!("{key}.shell"), "the shell script is empty: give the commands to run".to_owned())
            }
            _ => continue,
        };
        p.push(Problem::new(at(tree, &key, fallback), key, message));
    }
}

/// Why `url` cannot be fetched by the HTTP checks, if it cannot.
fn url_problem(url: &str) -> Option<String> {
    let parsed = match url::Url::parse(url.trim()) {
        Ok(parsed) => parsed,
        Err(e) => {
            return Some(format!("{} is not a URL ({e}): write one such as http://127.0.0.1:8080/health", shown(url)));
        }
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Some(format!("{} is not an http or https URL (the checks speak HTTP)", shown(url)));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Some(format!("{} has no host", shown(url)));
    }
    if parsed.port() == Some(0) {
        return Some(format!("{} has port 0, which nothing listens on", shown(url)));
    }
    None
}

/// Why a TCP health target (`HOST:PORT`, `[::1]:PORT`) cannot be connected to, if it cannot.
fn tcp_problem(target: &str) -> Option<String> {
    let Some((host, port)) = target.trim().rsplit_once(':') else {
        return Some(format!("{} has no port: write HOST:PORT, such as 127.0.0.1:9000", shown(target)));
    };
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() || host.contains(':') && host.parse::<std::net::Ipv6Addr>().is_err() {
        return Some(format!("{} has no host: write HOST:PORT, such as 127.0.0.1:9000", shown(target)));
    }
    match port.parse::<u16>() {
        Ok(port) if port > 0 => None,
        _ => Some(format!("{} has no port from 1 to 65535: write HOST:PORT, such as 127.0.0.1:9000", shown(target))),
    }
}

fn status_problem(status: u16) -> Option<String> {
    (!(100..=599).contains(&status)).then(|| format!("{status} is not an HTTP status: give one from 100 to 599"))
}

fn check_urls(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    let mut push = |key: String, fallback: Pos, problem: Option<String>| {
        if let Some(message) = problem {
            p.push(Problem::new(at(tree, &key, fallback), key, message));
        }
    };
    for (i, service) in m.services.iter().enumerate() {
        match &service.health {
            Some(Health::Http(http)) => {
                push(format!("services[{i}].health.http.url"), service.name.pos(), url_problem(&http.url));
                push(format!("services[{i}].health.http.status"), service.name.pos(), status_problem(http.status));
            }
            Some(Health::Tcp(target)) => {
                push(format!("services[{i}].health.tcp"), service.name.pos(), tcp_problem(target))
            }
            _ => {}
        }
    }
    for (i, site) in m.nginx.iter().flat_map(|n| n.sites.iter()).enumerate() {
        for (r, route) in site.routes.iter().enumerate() {
            let key = format!("nginx.sites[{i}].routes[{r}]");
            push(format!("{key}.url"), site.name.pos(), url_problem(&route.url));
            push(format!("{key}.status"), site.name.pos(), status_problem(route.status));
        }
    }
    for (i, check) in m.validate.iter().enumerate() {
        if let Some(http) = &check.http {
            push(format!("validate[{i}].http.url"), check.name.pos(), url_problem(&http.url));
            push(format!("validate[{i}].http.status"), check.name.pos(), status_problem(http.status));
        }
    }
}

fn check_units_and_ports(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    // The first service of each port. A position is looked up only for a problem: the
    // keys' positions need a second parse of the whole file.
    let mut ports: HashMap<u16, usize> = HashMap::new();
    let port_at = |i: usize| at(tree, &format!("services[{i}].port"), m.services[i].name.pos());
    for (i, service) in m.services.iter().enumerate() {
        let unit = service.unit_name();
        if !unit.ends_with(".service") || unit == ".service" {
            p.push(Problem::new(
                service.unit.pos(),
                format!("services[{i}].unit"),
                format!(
                    "{} is not a service unit: its file name must end in .service (the timers go in `timers`)",
                    shown(service.unit.raw())
                ),
            ));
        }
        for (t, (timer, name)) in service.timers.iter().zip(service.timer_names()).enumerate() {
            if !name.ends_with(".timer") || name == ".timer" {
                p.push(Problem::new(
                    timer.pos(),
                    format!("services[{i}].timers[{t}]"),
                    format!("{} is not a timer unit: its file name must end in .timer", shown(timer.raw())),
                ));
            }
        }
        if let Some(port) = service.port {
            let key = format!("services[{i}].port");
            if port == 0 {
                p.push(Problem::new(port_at(i), key, "port 0 is not a port a service listens on: give 1 to 65535"));
            } else if let Some(&first) = ports.get(&port) {
                p.push(Problem::new(
                    port_at(i),
                    key,
                    format!(
                        "port {port} is also the port of service {:?} (line {}): two services cannot listen on one port",
                        m.services[first].name.as_str(),
                        port_at(first).line
                    ),
                ));
            } else {
                ports.insert(port, i);
            }
        }
    }
}

fn check_durations(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    let mut durations: Vec<(String, &HumanDuration, Pos)> = Vec::new();
    for (i, dep) in m.repo.deps.iter().enumerate() {
        if let Some(timeout) = &dep.timeout {
            durations.push((format!("repo.deps[{i}].timeout"), timeout, dep.name.pos()));
        }
    }
    if let Some(backup) = &m.backup {
        durations.push(("backup.max_age".into(), &backup.max_age, Pos::of(&backup.repository)));
        if let Some(verify) = &backup.verify {
            durations.push(("backup.verify.max_age".into(), &verify.max_age, Pos::of(&backup.repository)));
            if let Some(every) = &verify.every {
                durations.push(("backup.verify.every".into(), every, Pos::of(&backup.repository)));
            }
        }
    }
    for (i, check) in m.validate.iter().enumerate() {
        if let Some(timeout) = &check.timeout {
            durations.push((format!("validate[{i}].timeout"), timeout, check.name.pos()));
        }
    }
    for (key, duration, fallback) in durations {
        if duration.0.is_zero() {
            p.push(Problem::new(
                at(tree, &key, fallback),
                key,
                "a duration of 0 can never be met: give one above 0, such as \"10s\"",
            ));
        }
    }
}

fn check_modes(m: &Manifest, tree: &LazyTree<'_>, p: &mut Vec<Problem>) {
    for (i, dir) in m.dirs.iter().enumerate() {
        if let Some(mode) = dir.mode
            && mode.0 & 0o700 != 0o700
        {
            let key = format!("dirs[{i}].mode");
            p.push(Problem::new(
                at(tree, &key, dir.path.pos()),
                key,
                format!(
                    "mode {mode} leaves the folder's owner unable to list, enter or write it (the steps write inside it): give the owner rwx, such as \"0700\" or \"0755\""
                ),
            ));
        }
    }
    for (i, env) in m.env.iter().enumerate() {
        if let Some(mode) = env.mode
            && mode.0 & 0o600 != 0o600
        {
            let key = format!("env[{i}].mode");
            p.push(Problem::new(
                at(tree, &key, env.path.pos()),
                key,
                format!("mode {mode} leaves the env file's owner unable to read or update it: use \"0600\""),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_tcp_targets_are_read_as_the_checks_use_them() {
        assert_eq!(url_problem("http://127.0.0.1:8080/health"), None);
        assert_eq!(url_problem("https://pi.example.org/files/"), None);
        assert!(
            url_problem("127.0.0.1:8080/health")
                .is_some_and(|m| m.contains("is not an http or https URL") || m.contains("is not a URL"))
        );
        assert!(url_problem("ftp://x/").is_some_and(|m| m.contains("not an http or https URL")));
        assert!(url_problem("http://").is_some());
        assert!(url_problem("http://127.0.0.1:0/").is_some_and(|m| m.contains("port 0")));
        assert!(url_problem("http://127.0.0.1:99999/").is_some());
        assert_eq!(tcp_problem("127.0.0.1:9000"), None);
        assert_eq!(tcp_problem("[::1]:9000"), None);
        assert_eq!(tcp_problem("localhost:22"), None);
        assert!(tcp_problem("127.0.0.1").is_some_and(|m| m.contains("has no port")));
        assert!(tcp_problem(":80").is_some_and(|m| m.contains("has no host")));
        assert!(tcp_problem("127.0.0.1:http").is_some());
        assert!(tcp_problem("127.0.0.1:0").is_some());
    }

    #[test]
    fn branch_and_host_names_are_what_git_and_restic_take() {
        for good in ["main", "release/1.2", "feature-x", "v1.0"] {
            assert!(is_branch_name(good), "{good}");
        }
        for bad in ["", "my branch", "a..b", "-x", "x/", "x.lock", "a:b", "@", "x."] {
            assert!(!is_branch_name(bad), "{bad:?}");
        }
        assert!(is_host_name("pi-host.example.org"));
        assert!(!is_host_name("my host") && !is_host_name("") && !is_host_name("-x"));
    }
}
