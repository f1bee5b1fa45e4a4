//! Paths in the manifest: `~`, `$HOME` and `${NAME}` expansion, and files in the repo.
//!
//! HOME always comes from the environment, never from the password database, so a
//! temporary HOME is a complete sandbox for file-level work.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::check::Problem;
use super::types::{Health, Install, Manifest, Pos};

/// A path as written in the manifest (`raw`, with its position) and what it resolves
/// to, with its JSON Schema: the two kinds of path the manifest has.
macro_rules! written_path {
    ($(#[$doc:meta])* $name:ident, resolved: $resolved:literal, raw: $raw:literal, schema: $schema:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize)]
        #[serde(transparent)]
        pub struct $name {
            raw: Spanned<String>,
            #[serde(skip)]
            resolved: PathBuf,
        }

        impl $name {
            #[doc = $resolved]
            pub fn path(&self) -> &Path {
                &self.resolved
            }
            #[doc = $raw]
            pub fn raw(&self) -> &str {
                &self.raw.value
            }
            pub fn pos(&self) -> Pos {
                Pos::of(&self.raw)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "description": $schema })
            }
        }
    };
}

written_path!(
    /// A path on the host as written in the manifest, and where it points once expanded.
    HostPath,
    resolved: "The expanded, absolute path.",
    raw: "The path as written in the manifest.",
    schema: "An absolute path; may start with ~ or $HOME and use ${NAME} from vars or the environment."
);

written_path!(
    /// A file or folder in the pi-config repo, relative to its root.
    RepoFile,
    resolved: "The absolute path inside the repo's work tree on the host.",
    raw: "The path relative to the repo, as written.",
    schema: "A path relative to the root of the pi-config repo, without '..'."
);

/// What expansion needs from the outside world.
pub(crate) struct Expander<'a> {
    pub home: &'a Path,
    pub vars: &'a BTreeMap<String, String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Expander<'_> {
    /// Expands `~`, `$HOME`, `$NAME` and `${NAME}`; the environment wins over `vars`.
    pub fn expand(&self, text: &str) -> Result<String, String> {
        let mut out = String::with_capacity(text.len());
        let rest = if text == "~" {
            out.push_str(&self.home.to_string_lossy());
            ""
        } else if let Some(rest) = text.strip_prefix("~/") {
            out.push_str(&self.home.to_string_lossy());
            out.push('/');
            rest
        } else if text.starts_with('~') {
            return Err(format!("{text:?}: only ~ and ~/ are understood, not ~user"));
        } else {
            text
        };
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != '$' {
                out.push(c);
                continue;
            }
            let (name, braced) = match chars.peek() {
                Some((_, '{')) => {
                    let start = i + 2;
                    let end = rest[start..]
                        .find('}')
                        .map(|e| start + e)
                        .ok_or_else(|| format!("{text:?}: unclosed ${{ in a variable reference"))?;
                    (&rest[start..end], true)
                }
                Some(_) => {
                    let start = i + 1;
                    let len = rest[start..]
                        .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                        .unwrap_or(rest.len() - start);
                    (&rest[start..start + len], false)
                }
                None => ("", false),
            };
            if name.is_empty() || !name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_') {
                return Err(format!("{text:?}: expected a variable name after $"));
            }
            let value = if name == "HOME" {
                self.home.to_string_lossy().into_owned()
            } else {
                (self.env)(name)
                    .or_else(|| self.vars.get(name).cloned())
                    .ok_or_else(|| format!("{text:?}: ${name} is not set in the environment nor in `vars`"))?
            };
            out.push_str(&value);
            let skip = if braced { name.len() + 2 } else { name.len() };
            for _ in 0..skip {
                chars.next();
            }
        }
        Ok(out)
    }

    fn host_path(&self, key: &str, path: &mut HostPath, problems: &mut Vec<Problem>) {
        match self.expand(&path.raw.value) {
            Ok(expanded) => {
                let expanded = PathBuf::from(expanded);
                let shown = if expanded.as_os_str() == path.raw() {
                    format!("{:?}", path.raw())
                } else {
                    format!("{:?} (expanded: {:?})", path.raw(), expanded.display())
                };
                if !expanded.is_absolute() {
                    problems.push(Problem::new(
                        path.pos(),
                        key,
                        format!("expected an absolute path (starting with /, ~ or $HOME), found {shown}"),
                    ));
                } else if expanded.components().any(|c| c == Component::ParentDir) {
                    problems.push(Problem::new(
                        path.pos(),
                        key,
                        format!("{:?} contains '..': write the path it means", path.raw()),
                    ));
                }
                path.resolved = expanded;
            }
            Err(message) => problems.push(Problem::new(path.pos(), key, message)),
        }
    }
}

fn repo_file(repo: &Path, key: &str, file: &mut RepoFile, problems: &mut Vec<Problem>) {
    let relative = Path::new(&file.raw.value);
    if file.raw.value.is_empty() || relative.is_absolute() {
        problems.push(Problem::new(
            file.pos(),
            key,
            format!("expected a path relative to the repo root, found {:?}", file.raw()),
        ));
    } else if relative.components().any(|c| c == Component::ParentDir) {
        problems.push(Problem::new(file.pos(), key, format!("{:?} leaves the repo through '..'", file.raw())));
    }
    file.resolved = repo.join(relative);
}

/// The `vars` with `${NAME}` in their values expanded (from the environment, HOME and
/// the other vars); a var the environment sets is the environment's value. A cycle
/// (`A: ${B}`, `B: ${A}`) or a name nobody sets is a problem at that var, and the var
/// is left out. `pos` finds a var's position (`vars.NAME`).
pub(crate) fn resolve_vars(
    vars: &BTreeMap<String, String>,
    home: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    pos: &dyn Fn(&str) -> Pos,
) -> (BTreeMap<String, String>, Vec<Problem>) {
    /// Where a var stands while it is resolved.
    enum State {
        Resolving,
        Done(Option<String>),
    }
    fn resolve(
        name: &str,
        vars: &BTreeMap<String, String>,
        home: &Path,
        env: &dyn Fn(&str) -> Option<String>,
        states: &mut BTreeMap<String, State>,
        chain: &mut Vec<String>,
    ) -> Result<Option<String>, String> {
        if let Some(value) = env(name) {
            return Ok(Some(value));
        }
        let Some(raw) = vars.get(name) else { return Ok(None) };
        match states.get(name) {
            Some(State::Done(value)) => return Ok(value.clone()),
            Some(State::Resolving) => {
                chain.push(name.to_owned());
                let start = chain.iter().position(|n| n == name).unwrap_or(0);
                return Err(format!("${{{name}}} refers to itself: {}", chain[start..].join(" -> ")));
            }
            None => {}
        }
        states.insert(name.to_owned(), State::Resolving);
        chain.push(name.to_owned());
        // The names this value uses, resolved first.
        let mut known = BTreeMap::new();
        for used in referenced(raw) {
            if used == "HOME" {
                continue;
            }
            if let Some(value) = resolve(&used, vars, home, env, states, chain)? {
                known.insert(used, value);
            }
        }
        chain.pop();
        let none = |_: &str| None;
        let value = Expander { home, vars: &known, env: &none }.expand(raw)?;
        states.insert(name.to_owned(), State::Done(Some(value.clone())));
        Ok(Some(value))
    }
    let mut states = BTreeMap::new();
    let mut resolved = BTreeMap::new();
    let mut problems = Vec::new();
    for name in vars.keys() {
        let mut chain = Vec::new();
        match resolve(name, vars, home, env, &mut states, &mut chain) {
            Ok(Some(value)) => {
                resolved.insert(name.clone(), value);
            }
            Ok(None) => {}
            Err(message) => {
                // The cycle is said once, at the var it was found from.
                for state in states.values_mut() {
                    if matches!(state, State::Resolving) {
                        *state = State::Done(None);
                    }
                }
                problems.push(Problem::new(pos(&format!("vars.{name}")), format!("vars.{name}"), message));
            }
        }
    }
    (resolved, problems)
}

/// The names `text` refers to with `$NAME` or `${NAME}` (what [`Expander::expand`]
/// looks up), in order; malformed references are the expander's to report.
fn referenced(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        rest = &rest[at + 1..];
        let name: String = if let Some(braced) = rest.strip_prefix('{') {
            braced.split('}').next().unwrap_or_default().to_owned()
        } else {
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
        };
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(name);
        }
    }
    names
}

/// Expands every host path and resolves every repo file of the manifest; URLs and TCP
/// targets of health checks, routes and validate checks are expanded too. `pos` finds
/// the position of a value the types keep none of.
pub(crate) fn expand_manifest(
    manifest: &mut Manifest,
    expander: &Expander<'_>,
    pos: &dyn Fn(&str) -> Pos,
) -> Vec<Problem> {
    let mut p = Vec::new();
    let x = expander;
    let text = |key: String, value: &mut String, p: &mut Vec<Problem>| match x.expand(value) {
        Ok(expanded) => *value = expanded,
        Err(message) => p.push(Problem::new(pos(&key), key, message)),
    };
    for (i, svc) in manifest.services.iter_mut().enumerate() {
        match &mut svc.health {
            Some(Health::Http(http)) => text(format!("services[{i}].health.http.url"), &mut http.url, &mut p),
            Some(Health::Tcp(target)) => text(format!("services[{i}].health.tcp"), target, &mut p),
            _ => {}
        }
    }
    if let Some(nginx) = &mut manifest.nginx {
        for (i, site) in nginx.sites.iter_mut().enumerate() {
            for (r, route) in site.routes.iter_mut().enumerate() {
                text(format!("nginx.sites[{i}].routes[{r}].url"), &mut route.url, &mut p);
            }
        }
    }
    for (i, check) in manifest.validate.iter_mut().enumerate() {
        if let Some(http) = &mut check.http {
            text(format!("validate[{i}].http.url"), &mut http.url, &mut p);
        }
    }
    x.host_path("repo.path", &mut manifest.repo.path, &mut p);
    let url = &mut manifest.repo.url;
    match x.expand(&url.value) {
        Ok(expanded) => url.value = expanded,
        Err(message) => p.push(Problem::new(Pos::of(url), "repo.url", message)),
    }
    let repo = manifest.repo.path.path().to_path_buf();
    for (i, dep) in manifest.repo.deps.iter_mut().enumerate() {
        for (field, file) in [("dir", &mut dep.dir), ("lockfile", &mut dep.lockfile), ("installed", &mut dep.installed)]
        {
            if let Some(file) = file {
                repo_file(&repo, &format!("repo.deps[{i}].{field}"), file, &mut p);
            }
        }
    }
    for (i, prereq) in manifest.prereqs.iter_mut().enumerate() {
        if let Install::Script(file) = &mut prereq.install {
            repo_file(&repo, &format!("prereqs[{i}].install.script"), file, &mut p);
        }
    }
    for (i, link) in manifest.links.iter_mut().enumerate() {
        repo_file(&repo, &format!("links[{i}].source"), &mut link.source, &mut p);
        x.host_path(&format!("links[{i}].target"), &mut link.target, &mut p);
    }
    for (i, dir) in manifest.dirs.iter_mut().enumerate() {
        x.host_path(&format!("dirs[{i}].path"), &mut dir.path, &mut p);
    }
    for (i, svc) in manifest.services.iter_mut().enumerate() {
        let key = |field: &str| format!("services[{i}].{field}");
        repo_file(&repo, &key("source"), &mut svc.source, &mut p);
        repo_file(&repo, &key("unit"), &mut svc.unit, &mut p);
        for (t, timer) in svc.timers.iter_mut().enumerate() {
            repo_file(&repo, &key(&format!("timers[{t}]")), timer, &mut p);
        }
        for (field, path) in [
            ("runtime_path", &mut svc.runtime_path),
            ("data_path", &mut svc.data_path),
            ("log_path", &mut svc.log_path),
        ] {
            if let Some(path) = path {
                x.host_path(&key(field), path, &mut p);
            }
        }
    }
    if let Some(nginx) = &mut manifest.nginx {
        x.host_path("nginx.prefix", &mut nginx.prefix, &mut p);
        x.host_path("nginx.conf", &mut nginx.conf, &mut p);
        x.host_path("nginx.sites_available", &mut nginx.sites_available, &mut p);
        if let Some(enabled) = &mut nginx.sites_enabled {
            x.host_path("nginx.sites_enabled", enabled, &mut p);
        }
        for (i, site) in nginx.sites.iter_mut().enumerate() {
            repo_file(&repo, &format!("nginx.sites[{i}].source"), &mut site.source, &mut p);
        }
    }
    for (i, block) in manifest.shell.iter_mut().enumerate() {
        x.host_path(&format!("shell[{i}].file"), &mut block.file, &mut p);
        repo_file(&repo, &format!("shell[{i}].source"), &mut block.source, &mut p);
    }
    for (i, env) in manifest.env.iter_mut().enumerate() {
        x.host_path(&format!("env[{i}].path"), &mut env.path, &mut p);
    }
    for (i, path) in manifest.paths.iter_mut().enumerate() {
        x.host_path(&format!("paths[{i}].path"), &mut path.path, &mut p);
    }
    if let Some(backup) = &mut manifest.backup {
        x.host_path("backup.password_file", &mut backup.password_file, &mut p);
        let repository = &mut backup.repository;
        match x.expand(&repository.value) {
            Ok(expanded) => repository.value = expanded,
            Err(message) => p.push(Problem::new(Pos::of(repository), "backup.repository", message)),
        }
    }
    for (i, check) in manifest.validate.iter_mut().enumerate() {
        for (field, path) in [("file", &mut check.file), ("dir", &mut check.dir)] {
            if let Some(path) = path {
                x.host_path(&format!("validate[{i}].{field}"), path, &mut p);
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(text: &str) -> Result<String, String> {
        let vars = BTreeMap::from([("FROM_VARS".to_owned(), "v".to_owned()), ("BOTH".to_owned(), "vars".to_owned())]);
        let env = |name: &str| match name {
            "BOTH" => Some("env".to_owned()),
            "HOME" => Some("/wrong".to_owned()),
            _ => None,
        };
        Expander { home: Path::new("/h"), vars: &vars, env: &env }.expand(text)
    }

    #[test]
    fn expands_home_vars_and_env() {
        assert_eq!(expand("~").as_deref(), Ok("/h"));
        assert_eq!(expand("~/a/b").as_deref(), Ok("/h/a/b"));
        assert_eq!(expand("$HOME/x").as_deref(), Ok("/h/x"));
        assert_eq!(expand("${HOME}/x").as_deref(), Ok("/h/x"));
        assert_eq!(expand("/a/${FROM_VARS}/$FROM_VARS.d").as_deref(), Ok("/a/v/v.d"));
        assert_eq!(expand("${BOTH}").as_deref(), Ok("env"));
        assert_eq!(expand("no-vars/é").as_deref(), Ok("no-vars/é"));
    }

    #[test]
    fn vars_are_expanded_from_each_other_and_cycles_refused() {
        let vars: BTreeMap<String, String> = [
            ("ROOT", "/srv/${USER_DIR}"),
            ("USER_DIR", "pi"),
            ("REPO", "${ROOT}/restic"),
            ("A", "${B}/a"),
            ("B", "${A}/b"),
            ("SELF", "$SELF"),
            ("FROM_ENV", "${NOT_SET}"),
            ("HOMELY", "$HOME/x"),
            ("MISSING", "${NOBODY}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let env = |name: &str| (name == "FROM_ENV").then(|| "from-env".to_owned());
        let (resolved, problems) = resolve_vars(&vars, Path::new("/h"), &env, &|_| Pos::default());
        assert_eq!(resolved.get("REPO").map(String::as_str), Some("/srv/pi/restic"));
        assert_eq!(resolved.get("FROM_ENV").map(String::as_str), Some("from-env"), "the environment wins");
        assert_eq!(resolved.get("HOMELY").map(String::as_str), Some("/h/x"));
        let said: Vec<(String, String)> = problems.iter().map(|p| (p.key.clone(), p.message.clone())).collect();
        assert_eq!(
            said,
            [
                ("vars.A".to_owned(), "${A} refers to itself: A -> B -> A".to_owned()),
                (
                    "vars.MISSING".to_owned(),
                    "\"${NOBODY}\": $NOBODY is not set in the environment nor in `vars`".to_owned()
                ),
                ("vars.SELF".to_owned(), "${SELF} refers to itself: SELF -> SELF".to_owned()),
            ]
        );
    }

    #[test]
    fn rejects_what_it_cannot_expand() {
        assert!(expand("~bob/x").is_err());
        assert!(expand("${UNSET}").is_err_and(|e| e.contains("$UNSET is not set")));
        assert!(expand("${OPEN").is_err());
        assert!(expand("a$").is_err());
        assert!(expand("${}").is_err());
    }
}
