//! Real git for fixtures: git with a fixed identity (commits need one, and the
//! machine's own must not matter), a repo made from files, and a remote to clone: a
//! bare repository with the work tree it was pushed from.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, TestResult, tree};

/// Runs git in `dir` with a fixed identity and `main` as the first branch; fails with
/// git's stderr on a non-zero exit.
pub fn git(dir: &Path, args: &[&str]) -> TestResult {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(
            format!("git {} in {}: {}", args.join(" "), dir.display(), String::from_utf8_lossy(&out.stderr)).into()
        );
    }
    Ok(())
}

/// A repo at `dir` holding `files` (relative path, content), all committed on `main`.
pub fn init_repo(dir: &Path, files: &[(&str, &str)]) -> TestResult {
    tree::write(dir, files)?;
    git(dir, &["init", "--quiet"])?;
    git(dir, &["add", "--all"])?;
    git(dir, &["commit", "--quiet", "-m", "fixture"])
}

/// A remote to clone from `file://`: the bare repository `origin.git` and `upstream`,
/// the work tree of another machine that pushes to it.
pub struct Remote {
    /// The bare repository.
    pub bare: PathBuf,
    /// Another machine's clone, with `origin` set to [`Remote::bare`].
    pub upstream: PathBuf,
}

impl Remote {
    /// Under `dir`: `upstream` holding `files`, committed and pushed to `origin.git`'s
    /// `main`.
    pub fn new(dir: &Path, files: &[(&str, &str)]) -> Result<Remote, Error> {
        let remote = Remote { bare: dir.join("origin.git"), upstream: dir.join("upstream") };
        std::fs::create_dir_all(&remote.bare)?;
        git(&remote.bare, &["init", "--quiet", "--bare"])?;
        init_repo(&remote.upstream, files)?;
        git(&remote.upstream, &["remote", "add", "origin", &remote.url()])?;
        git(&remote.upstream, &["push", "--quiet", "origin", "main"])?;
        Ok(remote)
    }

    /// `file://` and the bare repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// A commit made on the other machine and pushed: `path` written with `content`.
    pub fn push(&self, path: &str, content: &str) -> TestResult {
        tree::write(&self.upstream, &[(path, content)])?;
        git(&self.upstream, &["commit", "--quiet", "--all", "-m", &format!("edit {path}")])?;
        git(&self.upstream, &["push", "--quiet", "origin", "main"])
    }
}
