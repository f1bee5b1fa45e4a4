//! The pi-config repo: cloned when missing (beside its place, then renamed in, so a
//! clone killed halfway leaves no half-made repo); when present, checked to be the
//! declared remote and branch. An empty folder is cloned into; a clone that did not
//! finish (no commit checked out) is moved aside into the kept copies and cloned again.
//! A dirty work tree is reported and left alone: nothing here discards local changes
//! or forces anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::engine::{Ctx, Difference, EngineError, Observed, Resource};
use common::exec::Cmd;
use common::manifest::{ItemId, Repo, repo_is_complete};

const GIT_TIMEOUT: Duration = Duration::from_secs(600);

fn is_empty_folder(path: &Path) -> bool {
    std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none())
}

/// The repo's work tree at `path`, cloned from `url` at `branch`.
#[derive(Debug, Clone)]
pub struct GitRepo {
    pub id: ItemId,
    pub path: PathBuf,
    pub url: String,
    pub branch: String,
}

impl GitRepo {
    pub fn from_manifest(repo: &Repo) -> GitRepo {
        let name = repo.path.path().file_name().map_or("repo".into(), |n| n.to_string_lossy().into_owned());
        GitRepo {
            id: ItemId::new("repo", &name),
            path: repo.path.path().to_path_buf(),
            url: repo.url.value.clone(),
            branch: repo.branch.clone(),
        }
    }

    fn git(&self) -> Cmd {
        // Reading must not write: without this, `git status` refreshes .git/index.
        Cmd::new("git").arg("--no-optional-locks").arg("-C").arg(self.path.display().to_string()).timeout(GIT_TIMEOUT)
    }
}

/// What `git status` says of a work tree.
#[derive(Debug, Default, PartialEq, Eq)]
struct WorkTree {
    branch: String,
    changed: usize,
}

fn parse_status(porcelain: &str) -> WorkTree {
    let mut tree = WorkTree::default();
    for line in porcelain.lines() {
        if let Some(head) = line.strip_prefix("# branch.head ") {
            tree.branch = head.trim().to_owned();
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            tree.changed += 1;
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
        let remote = self.git().args(["config", "--get", "remote.origin.url"]).output()?;
        let remote = remote.stdout.trim();
        if remote != self.url {
            return Err(EngineError::Refused(format!(
                "the repo's origin is {remote:?}, the manifest says {:?}: fix one of them by hand (nothing is forced)",
                self.url
            )));
        }
        let status = self.git().args(["status", "--porcelain=v2", "--branch"]).run()?;
        let tree = parse_status(&status.stdout);
        if tree.branch != self.branch {
            return Err(EngineError::Refused(format!(
                "the repo is on branch {:?}, the manifest says {:?}: switch by hand (nothing is forced)",
                tree.branch, self.branch
            )));
        }
        if tree.changed > 0 {
            return Ok(Observed::Note(format!(
                "dirty work tree: {} changed file{} (left alone)",
                tree.changed,
                if tree.changed == 1 { "" } else { "s" }
            )));
        }
        Ok(Observed::InSync)
    }

    /// Clones beside the target, then renames the clone in: the repo appears whole or
    /// not at all. What was there (an empty folder, a clone that did not finish) is
    /// moved aside first, never deleted.
    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
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
        std::fs::rename(&clone, &self.path).map_err(EngineError::io("move the clone into place at", &self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_branch_and_changes_from_porcelain_v2() {
        let clean = "# branch.oid abc\n# branch.head main\n# branch.upstream origin/main\n";
        assert_eq!(parse_status(clean), WorkTree { branch: "main".into(), changed: 0 });
        let dirty = "# branch.head dev\n1 .M N... 100644 100644 100644 a b settings.json\n? new.txt\n";
        assert_eq!(parse_status(dirty), WorkTree { branch: "dev".into(), changed: 2 });
    }
}
