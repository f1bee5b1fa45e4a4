//! The pi-config repo: cloned when missing (beside its place, then renamed in, so a
//! clone killed halfway leaves no half-made repo); when present, checked to be the
//! declared remote and branch, and kept current: fetched (unless [`Fetch::No`], the
//! audit's offline look), then fast-forwarded when the work tree has no edits to
//! tracked files and the branch has no commits of its own. An empty folder is cloned
//! into; a clone that did not finish (no commit checked out) is moved aside into the
//! kept copies and cloned again.
//!
//! What a restore from the remote would lose is the user's to settle, so it is reported
//! and left alone ([`Observed::LeftAlone`]: `ok` in the step, drift in the audit):
//! commits not on the remote (ahead), a branch that diverged, edits to files the host
//! uses (linked sources, services' code and units, nginx sites, shell sources). Nothing
//! here discards local changes, merges or forces anything.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use common::engine::{Ctx, Difference, EngineError, Observed, Resource};
use common::exec::Cmd;
use common::manifest::{ItemId, Manifest, repo_is_complete};
use common::report::show_age;

const GIT_TIMEOUT: Duration = Duration::from_secs(600);

/// How many file names a report lists before "and N more".
const NAMES_SHOWN: usize = 5;

fn is_empty_folder(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// Whether observing the repo asks its remote first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetch {
    /// `git fetch` the declared branch once, then compare (the step, `--check`,
    /// `pi-config-audit --fetch`).
    Yes,
    /// Compare with the remote-tracking ref as last fetched (the audit, offline).
    No,
}

/// The repo's work tree at `path`, cloned from `url` at `branch`.
#[derive(Debug)]
pub struct GitRepo {
    pub id: ItemId,
    pub path: PathBuf,
    pub url: String,
    pub branch: String,
    /// The repo-relative files and folders the host uses: edits there are drift.
    pub used: Vec<String>,
    pub fetch: Fetch,
    /// The fetch's outcome, once (a run observes twice): `Err` with git's reason.
    fetched: OnceLock<Result<(), String>>,
}

impl GitRepo {
    pub fn from_manifest(manifest: &Manifest, fetch: Fetch) -> GitRepo {
        let repo = &manifest.repo;
        let name = repo.path.path().file_name().map_or("repo".into(), |n| n.to_string_lossy().into_owned());
        GitRepo {
            id: ItemId::new("repo", &name),
            path: repo.path.path().to_path_buf(),
            url: repo.url.value.clone(),
            branch: repo.branch.clone(),
            used: used_by_host(manifest),
            fetch,
            fetched: OnceLock::new(),
        }
    }

    fn git(&self) -> Cmd {
        // Reading must not write: without this, `git status` refreshes .git/index.
        // Never a prompt for credentials: a restore runs unattended.
        Cmd::new("git")
            .arg("--no-optional-locks")
            .arg("-C")
            .arg(self.path.display().to_string())
            .env("GIT_TERMINAL_PROMPT", "0")
            .timeout(GIT_TIMEOUT)
    }

    /// The remote-tracking ref of the declared branch.
    fn tracking(&self) -> String {
        format!("refs/remotes/origin/{}", self.branch)
    }

    /// `git fetch` of the declared branch into its remote-tracking ref, once. Without
    /// git's automatic maintenance: a fetch that brings nothing has nothing to pack, and
    /// the fast-forward that follows a fetch that brings commits runs it anyway.
    fn fetch_once(&self) -> &Result<(), String> {
        self.fetched.get_or_init(|| {
            let refspec = format!("+refs/heads/{}:{}", self.branch, self.tracking());
            self.git()
                .args(["fetch", "--quiet", "--no-tags", "--no-auto-maintenance", "origin", refspec.as_str()])
                .run()
                .map(|_| ())
                .map_err(|e| match e {
                    // git's first line says it: "fatal: unable to access ...".
                    common::exec::ExecError::Failed { tail, .. } => {
                        tail.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("git fetch failed").to_owned()
                    }
                    other => other.to_string(),
                })
        })
    }

    /// When the remote-tracking ref was last written (a fetch, or the clone).
    fn last_fetched(&self) -> Option<SystemTime> {
        let git_dir = self.path.join(".git");
        let tracking = git_dir.join(self.tracking());
        // A fetch that failed leaves FETCH_HEAD empty: then the ref's own time.
        [git_dir.join("FETCH_HEAD"), tracking, git_dir.join("packed-refs")]
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok())
            .find(|m| m.len() > 0)
            .and_then(|m| m.modified().ok())
    }

    /// Commits on the branch not on the remote, and on the remote not on the branch;
    /// `None` when there is no remote-tracking ref.
    fn ahead_behind(&self) -> Result<Option<(usize, usize)>, EngineError> {
        let tracking = self.tracking();
        let exists = self.git().args(["rev-parse", "--verify", "--quiet", tracking.as_str()]).output()?;
        if !exists.success() {
            return Ok(None);
        }
        let range = format!("HEAD...{tracking}");
        let counts = self.git().args(["rev-list", "--left-right", "--count", range.as_str()]).run()?;
        Ok(parse_left_right(&counts.stdout))
    }

    /// The state of a complete clone on the declared remote and branch.
    fn observe_clone(&self) -> Result<Observed, EngineError> {
        let fetch_failed = match self.fetch {
            Fetch::Yes => self.fetch_once().as_ref().err().cloned(),
            Fetch::No => None,
        };
        let status = self.git().args(["status", "--porcelain=v2", "--branch", "--untracked-files=all"]).run()?;
        let tree = parse_status(&status.stdout);
        if tree.branch != self.branch {
            return Err(EngineError::Refused(format!(
                "the repo is on branch {:?}, the manifest says {:?}: switch by hand (nothing is forced)",
                tree.branch, self.branch
            )));
        }
        let age = match (fetch_failed.as_ref(), self.fetch) {
            (None, Fetch::Yes) => "fetched just now".to_owned(),
            _ => self.last_fetched().map_or("never fetched".to_owned(), |t| {
                let age = SystemTime::now().duration_since(t).unwrap_or_default();
                format!("as last fetched {} ago", show_age(age))
            }),
        };
        let remote = format!("origin/{}", self.branch);
        let facts = Facts {
            age,
            fetch_failed,
            ahead_behind: match tree.ahead_behind {
                // git status counted them against the declared remote's branch already.
                Some(counts) if tree.upstream.as_deref() == Some(remote.as_str()) => Some(counts),
                _ => self.ahead_behind()?,
            },
            remote,
            edited: tree.edited,
            untracked: tree.untracked,
            used: &self.used,
        };
        Ok(facts.judge())
    }
}

/// The repo-relative paths the host uses: linked sources, services' code, units and
/// timers, nginx sites, shell sources, dependency lockfiles.
fn used_by_host(manifest: &Manifest) -> Vec<String> {
    let mut used = BTreeSet::new();
    let mut add = |raw: &str| {
        let path = raw.trim_start_matches("./").trim_end_matches('/');
        if !path.is_empty() && path != "." {
            used.insert(path.to_owned());
        }
    };
    for link in &manifest.links {
        add(link.source.raw());
    }
    for service in &manifest.services {
        add(service.source.raw());
        add(service.unit.raw());
        for timer in &service.timers {
            add(timer.raw());
        }
    }
    for site in manifest.nginx.iter().flat_map(|n| &n.sites) {
        add(site.source.raw());
    }
    for block in &manifest.shell {
        add(block.source.raw());
    }
    for dep in &manifest.repo.deps {
        if let Some(lockfile) = &dep.lockfile {
            add(lockfile.raw());
        }
    }
    used.into_iter().collect()
}

/// Whether `file` (repo-relative) is one of `used` or lies in one of them.
fn is_used(file: &str, used: &[String]) -> bool {
    used.iter().any(|u| file == u || file.strip_prefix(u.as_str()).is_some_and(|rest| rest.starts_with('/')))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `names`, at most [`NAMES_SHOWN`] of them, then "and N more".
fn listed(names: &[&str]) -> String {
    let mut shown = names.iter().take(NAMES_SHOWN).copied().collect::<Vec<_>>().join(", ");
    if names.len() > NAMES_SHOWN {
        shown.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    shown
}

/// What was observed of a complete clone, judged without touching git (so the
/// wording of every case is tested as pure logic).
#[derive(Debug)]
struct Facts<'a> {
    /// `origin/BRANCH`.
    remote: String,
    /// "fetched just now", "as last fetched 3h 2m ago".
    age: String,
    /// Why the fetch failed, when it did.
    fetch_failed: Option<String>,
    /// (ahead, behind) the remote-tracking ref; `None` when there is none.
    ahead_behind: Option<(usize, usize)>,
    /// Tracked files with edits (staged or not), repo-relative.
    edited: Vec<String>,
    /// Untracked, not ignored files, repo-relative.
    untracked: Vec<String>,
    used: &'a [String],
}

impl Facts<'_> {
    fn judge(&self) -> Observed {
        let used_edited: Vec<&str> = self.edited.iter().filter(|f| is_used(f, self.used)).map(String::as_str).collect();
        let used_new: Vec<&str> = self.untracked.iter().filter(|f| is_used(f, self.used)).map(String::as_str).collect();
        let mut alone = Vec::new();
        match (&self.fetch_failed, self.ahead_behind) {
            (Some(why), None) => alone.push(format!(
                "cannot fetch origin ({why}), and nothing was fetched before: whether the remote has what is here is unknown"
            )),
            (Some(why), Some(_)) => {
                alone.push(format!("cannot fetch origin ({why}); compared with {}, {}", self.remote, self.age))
            }
            (None, _) => {}
        }
        let mut differs = None;
        match self.ahead_behind {
            None if self.fetch_failed.is_some() => {}
            None => alone.push(format!(
                "no {} to compare with (never fetched): run bootstrap-pi-config or pi-config-audit --fetch",
                self.remote
            )),
            Some((0, 0)) => {}
            Some((0, behind)) if self.edited.is_empty() => {
                differs = Some(format!(
                    "behind {} by {}, {}: would fast-forward {}",
                    self.remote,
                    plural(behind, "commit", "commits"),
                    self.age,
                    plural(behind, "commit", "commits"),
                ));
            }
            Some((0, behind)) => alone.push(format!(
                "behind {} by {}, {}; not fast-forwarded: {} edited ({}); commit or stash them, then run again",
                self.remote,
                plural(behind, "commit", "commits"),
                self.age,
                plural(self.edited.len(), "tracked file is", "tracked files are"),
                listed(&self.edited.iter().map(String::as_str).collect::<Vec<_>>()),
            )),
            Some((ahead, 0)) => alone.push(format!(
                "{} not on {}, {}: a restore from the remote would lose them; push them",
                plural(ahead, "commit", "commits"),
                self.remote,
                self.age
            )),
            Some((ahead, behind)) => alone.push(format!(
                "diverged from {}, {}: {} here, {} there; merge or rebase by hand, then push",
                self.remote,
                self.age,
                plural(ahead, "commit", "commits"),
                plural(behind, "commit", "commits"),
            )),
        }
        if !used_edited.is_empty() {
            alone.push(format!(
                "{} the host uses ({}): commit and push them, a restore from the remote would lose them",
                plural(used_edited.len(), "edited file", "edited files"),
                listed(&used_edited)
            ));
        }
        if !used_new.is_empty() {
            alone.push(format!(
                "{} in places the host uses ({}): commit and push them, or ignore them",
                plural(used_new.len(), "untracked file", "untracked files"),
                listed(&used_new)
            ));
        }
        if let Some(summary) = differs {
            // Behind with no edits: the fast-forward is due, whatever else is said.
            let summary = if alone.is_empty() { summary } else { format!("{summary}; {}", alone.join("; ")) };
            return Observed::Differs(Difference::new(summary));
        }
        if !alone.is_empty() {
            return Observed::LeftAlone(alone.join("; "));
        }
        let others = self.edited.len() + self.untracked.len();
        if others > 0 {
            return Observed::Note(format!(
                "up to date with {}, {}; {} the host does not use (left alone)",
                self.remote,
                self.age,
                plural(others, "changed file", "changed files")
            ));
        }
        Observed::Note(format!("up to date with {}, {}", self.remote, self.age))
    }
}

/// `remote.origin.url` in the text of a repo's `.git/config`, when the file says it
/// plainly: `None` when it has an include, or the value is quoted, escaped or followed by
/// a comment (git itself is asked then). The last value wins, as with `git config --get`.
fn origin_url(config: &str) -> Option<String> {
    let mut in_origin = false;
    let mut url = None;
    for line in config.lines().map(str::trim) {
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.strip_suffix(']')?.trim();
            if header.to_ascii_lowercase().starts_with("include") {
                return None;
            }
            in_origin = header == "remote \"origin\"";
            continue;
        }
        if !in_origin {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else { continue };
        if key.trim().eq_ignore_ascii_case("url") {
            let value = value.trim();
            if value.contains(['"', '\\', '#', ';']) {
                return None;
            }
            url = Some(value.to_owned());
        }
    }
    url
}

/// `git rev-list --left-right --count A...B`: "AHEAD\tBEHIND".
fn parse_left_right(text: &str) -> Option<(usize, usize)> {
    let mut counts = text.split_whitespace().map(str::parse::<usize>);
    match (counts.next(), counts.next()) {
        (Some(Ok(ahead)), Some(Ok(behind))) => Some((ahead, behind)),
        _ => None,
    }
}

/// What `git status --porcelain=v2 --branch` says of a work tree.
#[derive(Debug, Default, PartialEq, Eq)]
struct WorkTree {
    branch: String,
    /// The branch's upstream (`origin/main`), when it has one.
    upstream: Option<String>,
    /// Commits ahead of and behind the upstream, when git could count them.
    ahead_behind: Option<(usize, usize)>,
    /// Tracked files with edits, staged or not (renames by their new path).
    edited: Vec<String>,
    /// Untracked files (not ignored).
    untracked: Vec<String>,
}

fn parse_status(porcelain: &str) -> WorkTree {
    let mut tree = WorkTree::default();
    for line in porcelain.lines() {
        if let Some(head) = line.strip_prefix("# branch.head ") {
            tree.branch = head.trim().to_owned();
        } else if let Some(upstream) = line.strip_prefix("# branch.upstream ") {
            tree.upstream = Some(upstream.trim().to_owned());
        } else if let Some(counts) = line.strip_prefix("# branch.ab ") {
            // "+AHEAD -BEHIND"
            let mut counts = counts.split_whitespace().map(|c| c.trim_start_matches(['+', '-']).parse::<usize>());
            if let (Some(Ok(ahead)), Some(Ok(behind))) = (counts.next(), counts.next()) {
                tree.ahead_behind = Some((ahead, behind));
            }
        } else if let Some(path) = line.strip_prefix("? ") {
            tree.untracked.push(path.to_owned());
        } else if let Some(rest) = line.strip_prefix("1 ") {
            // 1 XY sub mH mI mW hH hI path
            if let Some(path) = rest.splitn(8, ' ').nth(7) {
                tree.edited.push(path.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("2 ") {
            // 2 XY sub mH mI mW hH hI Xscore path<TAB>origPath
            if let Some(paths) = rest.splitn(9, ' ').nth(8) {
                tree.edited.push(paths.split('\t').next().unwrap_or(paths).to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("u ") {
            // u XY sub m1 m2 m3 mW h1 h2 h3 path
            if let Some(path) = rest.splitn(10, ' ').nth(9) {
                tree.edited.push(path.to_owned());
            }
        }
    }
    tree
}

impl Resource for GitRepo {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "repo"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        if std::fs::symlink_metadata(&self.path).is_err() {
            return Ok(Observed::Differs(Difference::new(format!(
                "not cloned (git clone --branch {} {})",
                self.branch, self.url
            ))));
        }
        if is_empty_folder(&self.path) {
            return Ok(Observed::Differs(Difference::new("an empty folder: would clone into it")));
        }
        if !self.path.join(".git").exists() {
            return Err(EngineError::Refused(format!(
                "{} exists but is not a git work tree: move it away (nothing is deleted) or change repo.path",
                self.path.display()
            )));
        }
        if !repo_is_complete(&self.path) {
            return Ok(Observed::Differs(Difference::new(
                "a clone that did not finish (no commit checked out): would move it aside into the state folder's kept copies and clone again",
            )));
        }
        // The repo's own config, read directly when it plainly says the declared URL;
        // git is asked otherwise (and always before a refusal).
        let plain = std::fs::read_to_string(self.path.join(".git/config")).ok().and_then(|c| origin_url(&c));
        let remote = match plain {
            Some(url) if url == self.url => url,
            _ => self.git().args(["config", "--get", "remote.origin.url"]).output()?.stdout.trim().to_owned(),
        };
        if remote != self.url {
            return Err(EngineError::Refused(format!(
                "the repo's origin is {remote:?}, the manifest says {:?}: fix one of them by hand (nothing is forced)",
                self.url
            )));
        }
        self.observe_clone()
    }

    /// A complete clone is fast-forwarded to the fetched remote-tracking ref (git
    /// refuses, changing nothing, if that would overwrite an untracked file). Anything
    /// else is cloned beside the target, then renamed in: the repo appears whole or not
    /// at all. What was there (an empty folder, a clone that did not finish) is moved
    /// aside first, never deleted.
    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        if repo_is_complete(&self.path) {
            let tracking = self.tracking();
            self.git().args(["merge", "--ff-only", "--quiet", tracking.as_str()]).run()?;
            return Ok(());
        }
        let parent = self.path.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(parent).map_err(EngineError::io("create", parent))?;
        let stage = tempfile::Builder::new()
            .prefix(&common::staging::prefix(".pi-bootstrap-clone."))
            .tempdir_in(parent)
            .map_err(EngineError::io("make a staging folder in", parent))?;
        let clone = stage.path().join("repo");
        Cmd::new("git")
            .args(["clone", "--quiet", "--branch", self.branch.as_str(), self.url.as_str()])
            .arg(clone.display().to_string())
            .env("GIT_TERMINAL_PROMPT", "0")
            .timeout(GIT_TIMEOUT)
            .run()?;
        common::sys::crash_point("after-clone");
        if std::fs::symlink_metadata(&self.path).is_ok() {
            if is_empty_folder(&self.path) {
                std::fs::remove_dir(&self.path).map_err(EngineError::io("replace", &self.path))?;
            } else {
                ctx.state.keep(&self.path)?;
            }
        }
        std::fs::rename(&clone, &self.path).map_err(EngineError::io("move the clone into place at", &self.path))?;
        // The clone's fetch stands for this run's: the ref is as new as it gets.
        let _ = self.fetched.set(Ok(()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_branch_and_changes_from_porcelain_v2() {
        let clean = "# branch.oid abc\n# branch.head main\n# branch.upstream origin/main\n# branch.ab +0 -0\n";
        assert_eq!(
            parse_status(clean),
            WorkTree {
                branch: "main".into(),
                upstream: Some("origin/main".into()),
                ahead_behind: Some((0, 0)),
                ..WorkTree::default()
            }
        );
        let diverged = "# branch.head main\n# branch.upstream origin/main\n# branch.ab +2 -5\n";
        assert_eq!(parse_status(diverged).ahead_behind, Some((2, 5)));
        let gone = "# branch.head main\n# branch.upstream origin/main\n";
        assert_eq!(parse_status(gone).ahead_behind, None);
        let dirty = "# branch.head dev\n\
                     1 .M N... 100644 100644 100644 a b pi/settings.json\n\
                     2 R. N... 100644 100644 100644 a b R100 pi/new name.md\tpi/old.md\n\
                     u UU N... 100644 100644 100644 100644 a b c conflict.txt\n\
                     ? notes/new file.txt\n";
        assert_eq!(
            parse_status(dirty),
            WorkTree {
                branch: "dev".into(),
                edited: vec!["pi/settings.json".into(), "pi/new name.md".into(), "conflict.txt".into()],
                untracked: vec!["notes/new file.txt".into()],
                ..WorkTree::default()
            }
        );
    }

    #[test]
    fn reads_the_origin_url_only_when_the_config_says_it_plainly() {
        let config = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://x/other.git\n\
                      [remote \"origin\"]\n\turl = https://example.com/pi-config.git\n\
                      \tfetch = +refs/heads/*:refs/remotes/origin/*\n[branch \"main\"]\n\tremote = origin\n";
        assert_eq!(origin_url(config).as_deref(), Some("https://example.com/pi-config.git"));
        assert_eq!(origin_url("[remote \"origin\"]\n  URL=/srv/a\n  url = /srv/b\n").as_deref(), Some("/srv/b"));
        assert_eq!(origin_url("[core]\n\tbare = false\n"), None);
        assert_eq!(origin_url("[include]\n\tpath = more\n[remote \"origin\"]\n\turl = /a\n"), None);
        assert_eq!(origin_url("[remote \"origin\"]\n\turl = \"/a b\"\n"), None);
        assert_eq!(origin_url("[remote \"origin\"]\n\turl = /a # old\n"), None);
        assert_eq!(origin_url("[remote \"Origin\"]\n\turl = /a\n"), None);
    }

    #[test]
    fn reads_ahead_and_behind() {
        assert_eq!(parse_left_right("2\t5\n"), Some((2, 5)));
        assert_eq!(parse_left_right(""), None);
    }

    #[test]
    fn a_used_path_covers_what_lies_inside_it() {
        let used = vec!["pi/prompts".to_owned(), "systemd/web.service".to_owned()];
        assert!(is_used("pi/prompts/review.md", &used));
        assert!(is_used("systemd/web.service", &used));
        assert!(!is_used("pi/prompts-old/x.md", &used));
        assert!(!is_used("README.md", &used));
    }

    fn facts<'a>(ahead_behind: Option<(usize, usize)>, edited: &[&str], used: &'a [String]) -> Facts<'a> {
        Facts {
            remote: "origin/main".into(),
            age: "fetched just now".into(),
            fetch_failed: None,
            ahead_behind,
            edited: edited.iter().map(|s| (*s).to_owned()).collect(),
            untracked: Vec::new(),
            used,
        }
    }

    fn said(observed: Observed) -> (&'static str, String) {
        match observed {
            Observed::InSync => ("in sync", String::new()),
            Observed::Note(n) => ("note", n),
            Observed::LeftAlone(n) => ("left alone", n),
            Observed::Differs(d) => ("differs", d.summary),
        }
    }

    #[test]
    fn judges_every_case_of_a_clone() {
        let used = vec!["pi/settings.json".to_owned(), "systemd".to_owned()];
        let cases = [
            (facts(Some((0, 0)), &[], &used), "note", "up to date with origin/main, fetched just now"),
            (
                facts(Some((0, 3)), &[], &used),
                "differs",
                "behind origin/main by 3 commits, fetched just now: would fast-forward 3 commits",
            ),
            (
                facts(Some((0, 1)), &["README.md"], &used),
                "left alone",
                "behind origin/main by 1 commit, fetched just now; not fast-forwarded: 1 tracked file is edited (README.md); commit or stash them, then run again",
            ),
            (
                facts(Some((2, 0)), &[], &used),
                "left alone",
                "2 commits not on origin/main, fetched just now: a restore from the remote would lose them; push them",
            ),
            (
                facts(Some((1, 4)), &[], &used),
                "left alone",
                "diverged from origin/main, fetched just now: 1 commit here, 4 commits there; merge or rebase by hand, then push",
            ),
            (
                facts(Some((0, 0)), &["systemd/web.service", "README.md"], &used),
                "left alone",
                "1 edited file the host uses (systemd/web.service): commit and push them, a restore from the remote would lose them",
            ),
            (
                facts(Some((0, 0)), &["README.md"], &used),
                "note",
                "up to date with origin/main, fetched just now; 1 changed file the host does not use (left alone)",
            ),
            (
                facts(None, &[], &used),
                "left alone",
                "no origin/main to compare with (never fetched): run bootstrap-pi-config or pi-config-audit --fetch",
            ),
        ];
        for (facts, kind, text) in cases {
            assert_eq!(said(facts.judge()), (kind, text.to_owned()), "{facts:?}");
        }
        let mut offline = facts(Some((0, 0)), &[], &used);
        offline.fetch_failed = Some("fatal: unable to access".into());
        offline.age = "as last fetched 2d 1h ago".into();
        assert_eq!(
            said(offline.judge()),
            (
                "left alone",
                "cannot fetch origin (fatal: unable to access); compared with origin/main, as last fetched 2d 1h ago"
                    .to_owned()
            )
        );
    }
}
