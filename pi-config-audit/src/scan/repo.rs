//! Repo hygiene, as the plan asks ("do not commit databases, logs, runtime jobs,
//! outputs with user data, local secrets"): the pi-config repo tracks nothing under a
//! service's data, runtime or log path or a declared `backup` or `disposable` path, no
//! env file, no database and no log file; and its `.gitignore` covers the places the
//! services write at run time (data, runtime and log paths inside the repo) and the
//! env files inside it, so a `git add -A` cannot pick them up.
//!
//! Two git calls: `git ls-files -z` for what is tracked, and one
//! `git check-ignore --no-index --stdin` for every path to test (patterns only: a
//! tracked file is still tested against `.gitignore`). Items are
//! `repo-hygiene:RELATIVE-PATH`, one per path with every reason.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use common::exec::{Cmd, ExecError};
use common::report::{Item, Status};

use super::item;
use crate::declared::{Declared, RepoData};

const GIT_TIMEOUT: Duration = Duration::from_secs(60);

/// What git knows of the repo.
#[derive(Debug, Clone, Default)]
pub struct Tracked {
    pub files: Vec<String>,
}

impl Tracked {
    /// The first component of every tracked path.
    pub fn top_level(&self) -> BTreeSet<String> {
        self.files.iter().map(|f| super::home::top_level(f).to_owned()).collect()
    }
}

fn git(declared: &Declared) -> Cmd {
    Cmd::new("git").arg("--no-optional-locks").arg("-C").arg(declared.repo.display().to_string()).timeout(GIT_TIMEOUT)
}

/// Why the repo cannot be looked at: `None` when it can.
pub fn unavailable(declared: &Declared) -> Option<String> {
    if !declared.repo.join(".git").exists() {
        return Some(format!("no git work tree at {} (see the repo item)", declared.repo.display()));
    }
    if !common::exec::is_installed("git") {
        return Some("git is not installed".to_owned());
    }
    None
}

/// `git ls-files -z`: every tracked path.
pub fn ls_files(declared: &Declared) -> Result<Tracked, ExecError> {
    let out = git(declared).args(["ls-files", "-z"]).run()?;
    Ok(Tracked { files: out.stdout.split('\0').filter(|f| !f.is_empty()).map(str::to_owned).collect() })
}

/// Which of `paths` no `.gitignore` pattern matches, in one `git check-ignore` call.
pub fn not_ignored(declared: &Declared, paths: &[String]) -> Result<BTreeSet<String>, ExecError> {
    if paths.is_empty() {
        return Ok(BTreeSet::new());
    }
    let mut input = paths.join("\0");
    input.push('\0');
    let out = git(declared).args(["check-ignore", "--no-index", "--verbose", "--non-matching", "-z", "--stdin"]);
    let out = out.stdin(input).output()?;
    // Exit 1 means "none matched", still with the records; 128 is an error.
    if !matches!(out.code, Some(0 | 1)) {
        return Err(ExecError::Failed { command: "git check-ignore".into(), code: out.code, tail: out.tail() });
    }
    Ok(parse_check_ignore(&out.stdout))
}

/// The paths of `git check-ignore -v -n -z` records (source, line, pattern, path)
/// that no pattern matched.
pub fn parse_check_ignore(text: &str) -> BTreeSet<String> {
    let fields: Vec<&str> = text.split('\0').collect();
    fields
        .chunks(4)
        .filter(|record| record.len() == 4 && record[0].is_empty() && record[2].is_empty())
        .map(|record| record[3].to_owned())
        .collect()
}

/// Why a tracked file must not be tracked by its name, if it must not.
pub fn kind_by_name(path: &str) -> Option<&'static str> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let lower = name.to_ascii_lowercase();
    let template = [".example", ".sample", ".template", ".dist"].iter().any(|s| lower.ends_with(s));
    if !template && (lower == ".env" || lower.starts_with(".env.") || lower.ends_with(".env")) {
        return Some("an env file (secrets)");
    }
    let database = [".db", ".sqlite", ".sqlite3", ".db-wal", ".db-shm", ".db-journal", ".sqlite-wal", ".sqlite-shm"];
    if database.iter().any(|s| lower.ends_with(s)) {
        return Some("a database file");
    }
    if lower.ends_with(".log") {
        return Some("a log file");
    }
    None
}

/// The path a declared place is tested as: folders with a trailing `/`, as
/// `.gitignore` patterns such as `logs/` only match folders.
fn as_tested(declared: &Declared, data: &RepoData) -> String {
    let on_disk = declared.repo.join(&data.relative);
    if on_disk.is_dir() || (!on_disk.exists() && data.folder) {
        format!("{}/", data.relative)
    } else {
        data.relative.clone()
    }
}

/// What is wrong with one path of the repo.
#[derive(Default)]
struct Problems {
    tracked: Vec<String>,
    not_ignored: Option<String>,
}

impl Problems {
    fn detail(&self, path: &str) -> String {
        let mut parts = Vec::new();
        if !self.tracked.is_empty() {
            parts.push(format!(
                "tracked by git, but {}: untrack it (git rm --cached) and keep it out of git",
                self.tracked.join(" and ")
            ));
        }
        if let Some(what) = &self.not_ignored {
            parts.push(format!("not covered by .gitignore ({what}): add `{path}` to .gitignore"));
        }
        parts.join("; ")
    }
}

/// The repo hygiene items, from what git tracks and one `check-ignore` call.
pub fn scan_hygiene(declared: &Declared, tracked: &Tracked) -> Vec<Item> {
    let mut problems: BTreeMap<String, Problems> = BTreeMap::new();
    let places: HashMap<&str, &RepoData> = declared.repo_data.iter().map(|d| (d.relative.as_str(), d)).collect();
    for file in &tracked.files {
        // The declared place the file lies in, looked up by each of its ancestors.
        let mut at = file.as_str();
        let mut inside = None;
        loop {
            if let Some(place) = places.get(at) {
                inside = Some(*place);
                break;
            }
            match at.rsplit_once('/') {
                Some((parent, _)) => at = parent,
                None => break,
            }
        }
        let mut why = Vec::new();
        if let Some(place) = inside {
            why.push(format!("it lies in {}/ ({})", place.relative, place.what));
        }
        if let Some(kind) = kind_by_name(file) {
            why.push(format!("it is {kind}"));
        }
        if !why.is_empty() {
            problems.entry(file.clone()).or_default().tracked.extend(why);
        }
    }
    // Each place once (several services may share a runtime folder).
    let mut tested: BTreeMap<String, &RepoData> = BTreeMap::new();
    for data in declared.repo_data.iter().filter(|d| d.must_ignore) {
        tested.entry(as_tested(declared, data)).or_insert(data);
    }
    let mut items = Vec::new();
    let paths: Vec<String> = tested.keys().cloned().collect();
    match not_ignored(declared, &paths) {
        Ok(missing) => {
            for (path, data) in &tested {
                if missing.contains(path) {
                    problems.entry(path.clone()).or_default().not_ignored = Some(data.what.clone());
                }
            }
        }
        Err(e) => items.push(item(
            "scan:gitignore".into(),
            "scan",
            Status::Failed,
            Some(declared.repo.join(".gitignore")),
            format!("cannot ask git: {e}"),
        )),
    }
    for (path, problem) in &problems {
        let on_disk = declared.repo.join(path.trim_end_matches('/'));
        items.push(item(
            format!("repo-hygiene:{path}"),
            "repo-file",
            Status::Drift,
            Some(on_disk),
            problem.detail(path),
        ));
    }
    if items.is_empty() {
        let mut detail =
            format!("{} tracked files, none of them data, runtime, logs, env files or databases", tracked.files.len());
        if !paths.is_empty() {
            detail.push_str(&format!(
                "; .gitignore covers the {} place{} services write to and env files in the repo",
                paths.len(),
                if paths.len() == 1 { "" } else { "s" }
            ));
        }
        items.push(item("scan:repo-tracked".into(), "scan", Status::Ok, Some(declared.repo.clone()), detail));
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_must_not_be_tracked() {
        assert_eq!(kind_by_name("config/.env"), Some("an env file (secrets)"));
        assert_eq!(kind_by_name("telegram.env"), Some("an env file (secrets)"));
        assert_eq!(kind_by_name(".env.example"), None);
        assert_eq!(kind_by_name("data/agents.db"), Some("a database file"));
        assert_eq!(kind_by_name("x.sqlite3"), Some("a database file"));
        assert_eq!(kind_by_name("logs/a.log"), Some("a log file"));
        assert_eq!(kind_by_name("bun.lock"), None);
        assert_eq!(kind_by_name("environment.ts"), None);
    }

    #[test]
    fn reads_the_records_nothing_matched() {
        let out = ".gitignore\x001\x00work/\x00work/\x00\x00\x00\x00agents-database/\x00.gitignore\x004\x00*.env\x00a.env\x00";
        assert_eq!(parse_check_ignore(out), BTreeSet::from(["agents-database/".to_owned()]));
    }
}
