//! restic, the backup engine: the one module that knows its command line, its JSON
//! and its error messages.
//!
//! The repository is any restic repository (a folder, `sftp:`, `s3:`, `rest:`); it is
//! given through `RESTIC_REPOSITORY` and the password through `RESTIC_PASSWORD_FILE`,
//! never on a command line, so neither shows in a process list or in the commands a
//! report lists. The password is read once to check the file and to register it for
//! redaction; a password inside a repository url is registered too. Queries run with
//! `--no-lock` (they never write to the repository) and, for observe-only runs, with
//! `--no-cache` (they never write to HOME). The cache is `~/.cache/restic` unless
//! `RESTIC_CACHE_DIR` says otherwise, so a temporary HOME holds everything. `check`
//! and `forget --prune` take restic's exclusive lock (restic 0.14 has no other for
//! them); `restore` and `backup` its shared one.
//!
//! Written for restic 0.14 (Debian 12); nothing newer is needed.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::exec::{self, Cmd, ExecError, Output};
use common::manifest::{Backup, Keep};
use common::report::tilde;
use common::secret::{self, url_password};
use serde::Deserialize;

use crate::clock;
use crate::paths::{self, BackupSet, within};

/// How long a query (snapshots, ls, cat, init) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// How long a backup or a restore may take: a first backup to a remote repository
/// can take hours.
const DATA_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why restic could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResticError {
    /// restic is not on PATH.
    #[error("restic is not installed (not found on PATH): bootstrap-prereqs installs it")]
    NotInstalled,
    /// The password file is missing, open to others, empty or unreadable.
    #[error("{0}")]
    PasswordFile(String),
    /// The repository does not open with this password.
    #[error("the restic repository {repo} does not open with the password in {file}: wrong password ({restic})")]
    WrongPassword { repo: String, file: String, restic: String },
    /// There is no repository at that location.
    #[error("there is no restic repository at {repo} ({restic})")]
    Missing { repo: String, restic: String },
    /// Anything else restic refused: unreachable, locked, ... (restic's own words).
    #[error("restic failed on the repository {repo}: {restic}")]
    Failed { repo: String, restic: String },
    /// restic could not run or did not finish in time.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl ResticError {
    /// Could a later step (prereqs) make this go away? Then `--check` on a fresh host
    /// says what it would do instead of failing.
    pub fn is_not_installed(&self) -> bool {
        matches!(self, ResticError::NotInstalled | ResticError::Exec(ExecError::NotFound { .. }))
    }
}

/// A snapshot, from `restic snapshots --json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    /// RFC 3339 with the offset of the machine that made it.
    pub time: String,
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// The exclude patterns it was made with.
    #[serde(default)]
    pub excludes: Option<Vec<String>>,
}

impl Snapshot {
    /// When it was made; `None` when restic wrote a time this cannot read.
    pub fn when(&self) -> Option<SystemTime> {
        clock::parse_rfc3339(&self.time)
    }

    /// Does it cover `path`: one of its paths holds it and none of its excludes does?
    /// (Whether the path existed when the snapshot was made is for `ls` to say.)
    pub fn covers(&self, path: &Path) -> bool {
        self.paths.iter().any(|p| within(path, p))
            && !self.excludes.iter().flatten().any(|e| within(path, &paths::unpattern(e)))
    }
}

/// The newest of `snapshots` that covers `path`.
pub fn newest_covering<'s>(snapshots: &'s [Snapshot], path: &Path) -> Option<&'s Snapshot> {
    snapshots.iter().filter(|s| s.covers(path)).max_by_key(|s| s.when())
}

/// A file or folder of a snapshot, from `restic ls --json` (and `find --json`).
#[derive(Debug, Clone, Deserialize)]
pub struct Node {
    pub path: PathBuf,
    /// `file`, `dir`, `symlink`, ...
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub size: u64,
    /// restic's mode: the permission bits, with Go's flags for the type above them.
    #[serde(default)]
    pub mode: u64,
    /// RFC 3339.
    #[serde(default)]
    pub mtime: String,
}

impl Node {
    pub fn modified(&self) -> Option<SystemTime> {
        clock::parse_rfc3339(&self.mtime)
    }
    pub fn permissions(&self) -> u32 {
        u32::try_from(self.mode & 0o7777).unwrap_or_default()
    }
}

/// The matches of one snapshot in `restic find --json`.
#[derive(Debug, Deserialize)]
struct FindMatches {
    #[serde(default)]
    matches: Vec<Node>,
    #[serde(default)]
    snapshot: String,
}

/// What `restic ls` says of one path of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InSnapshot {
    /// The snapshot has nothing at the path (it did not exist then).
    Absent,
    /// A folder with nothing in it.
    EmptyFolder,
    /// A file, a link, or a folder with something in it.
    Data,
}

/// What one `restic backup` made.
#[derive(Debug, Clone, Default)]
pub struct BackupOutcome {
    /// The new snapshot's short id.
    pub snapshot: String,
    pub files_new: u64,
    pub files_changed: u64,
    pub files_unmodified: u64,
    pub data_added: u64,
    /// Files restic could not read (the snapshot was made without them): path, why.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// A `status` line of `restic backup --json`: how far it is.
#[derive(Debug, Deserialize)]
struct BackupStatusLine {
    message_type: String,
    #[serde(default)]
    percent_done: f64,
}

#[derive(Debug, Deserialize)]
struct BackupMessage {
    message_type: String,
    #[serde(default)]
    snapshot_id: String,
    #[serde(default)]
    files_new: u64,
    #[serde(default)]
    files_changed: u64,
    #[serde(default)]
    files_unmodified: u64,
    #[serde(default)]
    data_added: u64,
    #[serde(default)]
    item: String,
    #[serde(default)]
    during: String,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// What `restic restore` of chosen files left behind.
#[derive(Debug, Clone, Default)]
pub struct FilesRestored {
    /// The files restic said it could not restore, with its words ("ignoring error
    /// for FILE: ...").
    pub errors: Vec<(PathBuf, String)>,
    /// restic's own words when it did not finish cleanly (it exits non-zero after
    /// restoring what it could).
    pub failure: Option<String>,
}

/// What `restic check` said of a repository with no errors.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// restic's line about the data it read, such as "read 2.0% of data packs" or
    /// "read group #3 of 1 data packs (out of total 4 packs in 256 groups)".
    pub read: String,
    /// The command run, for the report.
    pub command: String,
}

/// What `restic forget --dry-run` would do to the snapshots of one host.
#[derive(Debug, Clone, Default)]
pub struct ForgetPlan {
    /// The snapshots the policy keeps, each with restic's reasons ("daily snapshot").
    pub keep: Vec<(Snapshot, Vec<String>)>,
    /// The snapshots the policy would forget.
    pub remove: Vec<Snapshot>,
}

/// One group of `restic forget --dry-run --json` (restic 0.14: `keep`, `remove` and
/// `reasons`, the reasons in the order of `keep`, their snapshots without an id).
#[derive(Debug, Deserialize)]
struct ForgetGroup {
    #[serde(default)]
    keep: Option<Vec<Snapshot>>,
    #[serde(default)]
    remove: Option<Vec<Snapshot>>,
    #[serde(default)]
    reasons: Option<Vec<KeepReason>>,
}

#[derive(Debug, Deserialize)]
struct KeepReason {
    #[serde(default)]
    snapshot: ReasonSnapshot,
    #[serde(default)]
    matches: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ReasonSnapshot {
    #[serde(default)]
    time: String,
}

/// The `--keep-*` flags of a keep policy (counts of 0 are left out: they keep nothing).
pub fn keep_flags(keep: &Keep) -> Vec<String> {
    [
        ("--keep-last", keep.last),
        ("--keep-daily", keep.daily),
        ("--keep-weekly", keep.weekly),
        ("--keep-monthly", keep.monthly),
    ]
    .into_iter()
    .filter_map(|(flag, n)| n.filter(|n| *n > 0).map(|n| [flag.to_owned(), n.to_string()]))
    .flatten()
    .collect()
}

/// One restic repository, with its password file checked and registered.
#[derive(Debug, Clone)]
pub struct Restic {
    repository: String,
    password_file: PathBuf,
    home: PathBuf,
    no_cache: bool,
}

impl Restic {
    /// Checks that restic is installed and the password file is usable (a file, not
    /// open to others, not empty), and registers the password (and any password in the
    /// repository url) as a secret. `observe_only` runs use no cache.
    pub fn open(backup: &Backup, home: &Path, observe_only: bool) -> Result<Restic, ResticError> {
        if !exec::is_installed("restic") {
            return Err(ResticError::NotInstalled);
        }
        let restic = Restic::unchecked(backup, home, observe_only);
        restic.check_password_file()?;
        Ok(restic)
    }

    /// The checks of [`Restic::open`] on the password file alone, without restic (for
    /// what answers from the local record): a file, not open to others, not empty; the
    /// password registered as a secret.
    pub fn check_password(backup: &Backup, home: &Path) -> Result<(), ResticError> {
        Restic::unchecked(backup, home, true).check_password_file()
    }

    fn unchecked(backup: &Backup, home: &Path, observe_only: bool) -> Restic {
        let repository = backup.repository.value.clone();
        if let Some(password) = url_password(&repository) {
            secret::register(password);
        }
        let password_file = backup.password_file.path().to_path_buf();
        Restic { repository, password_file, home: home.to_path_buf(), no_cache: observe_only }
    }

    fn check_password_file(&self) -> Result<(), ResticError> {
        let shown = self.file_shown();
        fn fail<T>(why: String) -> Result<T, ResticError> {
            Err(ResticError::PasswordFile(why))
        }
        let meta = match std::fs::metadata(&self.password_file) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return fail(format!(
                    "the restic password file {shown} does not exist: put the repository's password in it (mode 0600), from where you keep it outside this host"
                ));
            }
            Err(e) => return fail(format!("cannot read the restic password file {shown}: {e}")),
        };
        if !meta.is_file() {
            return fail(format!("the restic password file {shown} is not a file"));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return fail(format!(
                "the restic password file {shown} is open to others (mode {mode:04o}): chmod 600 {shown}"
            ));
        }
        let text = std::fs::read_to_string(&self.password_file)
            .or_else(|e| fail(format!("cannot read the restic password file {shown}: {e}")))?;
        // restic takes the whole file, trimmed; each line is registered too, so no
        // part of a password of several lines can show.
        let password = text.trim();
        if password.is_empty() {
            return fail(format!("the restic password file {shown} is empty: put the repository's password in it"));
        }
        secret::register(password);
        text.lines().map(str::trim).for_each(secret::register);
        Ok(())
    }

    /// The repository as it may be shown: a password in its url is hidden.
    pub fn repository_shown(&self) -> String {
        secret::redact(&self.repository)
    }

    /// The repository as it may be shown, unless it is a local folder (which reports
    /// show as the item's path).
    pub fn remote_shown(&self) -> Option<String> {
        remote_shown(&self.repository)
    }

    /// The repository's folder, when it is a local one.
    pub fn local_folder(&self) -> Option<PathBuf> {
        local_folder(&self.repository)
    }

    fn file_shown(&self) -> String {
        tilde(&self.password_file, &self.home)
    }

    fn cmd(&self, subcommand: &str) -> Cmd {
        let mut cmd = Cmd::new("restic")
            .arg(subcommand)
            .env("RESTIC_REPOSITORY", &self.repository)
            .env("RESTIC_PASSWORD_FILE", self.password_file.display().to_string())
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_COMMAND")
            .env_remove("RESTIC_REPOSITORY_FILE")
            .timeout(QUERY_TIMEOUT);
        if self.no_cache {
            cmd = cmd.arg("--no-cache");
        } else if std::env::var_os("RESTIC_CACHE_DIR").is_none_or(|v| v.is_empty()) {
            cmd = cmd.env("RESTIC_CACHE_DIR", self.home.join(".cache/restic").display().to_string());
        }
        cmd
    }

    /// What restic said, in its own words, as the error it means.
    fn error(&self, out: &Output) -> ResticError {
        let text = if out.stderr.trim().is_empty() { out.stdout.as_str() } else { out.stderr.as_str() };
        let mut lines: Vec<&str> = Vec::new();
        let mut skip_next = false;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if skip_next {
                skip_next = false;
            } else if line.starts_with("Is there a repository at the following location?") {
                // restic echoes the location on the next line: it is in the message already.
                skip_next = true;
            } else {
                lines.push(line);
            }
        }
        let tail = lines.len().saturating_sub(6);
        let restic = format!("restic: {}", lines[tail..].join("; "));
        let restic = if lines.is_empty() { format!("restic exited with {:?}", out.code) } else { restic };
        let repo = self.repository_shown();
        if text.contains("wrong password or no key found") {
            ResticError::WrongPassword { repo, file: self.file_shown(), restic }
        } else if text.contains("Is there a repository at the following location?")
            && ["no such file or directory", "does not exist", "404", "NoSuchKey", "NoSuchBucket", "Not Found"]
                .iter()
                .any(|m| text.contains(m))
        {
            ResticError::Missing { repo, restic }
        } else {
            ResticError::Failed { repo, restic }
        }
    }

    fn query(&self, cmd: &Cmd) -> Result<Output, ResticError> {
        let out = cmd.output()?;
        if out.success() { Ok(out) } else { Err(self.error(&out)) }
    }

    /// Is there a repository, and does it open with the password? `Ok(false)` only when
    /// restic says there is no repository at all.
    pub fn exists(&self) -> Result<bool, ResticError> {
        match self.query(&self.cmd("cat").args(["config", "--no-lock"])) {
            Ok(_) => Ok(true),
            Err(ResticError::Missing { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the repository; returns the command run, for the report.
    pub fn init(&self) -> Result<String, ResticError> {
        let cmd = self.cmd("init");
        self.query(&cmd)?;
        Ok(cmd.to_string())
    }

    /// Every snapshot of the repository, in one call.
    pub fn snapshots(&self) -> Result<Vec<Snapshot>, ResticError> {
        let out = self.query(&self.cmd("snapshots").args(["--json", "--no-lock"]))?;
        let text = out.stdout.trim();
        if text.is_empty() || text == "null" {
            return Ok(Vec::new());
        }
        serde_json::from_str(text).map_err(|e| ResticError::Failed {
            repo: self.repository_shown(),
            restic: format!("cannot read the snapshot list restic printed: {e}"),
        })
    }

    /// What `snapshot` holds at each of `paths`, in one call (`restic ls` lists each
    /// folder and what is directly in it).
    pub fn ls(&self, snapshot: &str, paths: &[PathBuf]) -> Result<BTreeMap<PathBuf, InSnapshot>, ResticError> {
        let cmd =
            self.cmd("ls").args(["--json", "--no-lock", snapshot]).args(paths.iter().map(|p| p.display().to_string()));
        let out = self.query(&cmd)?;
        let nodes: Vec<Node> = out
            .stdout
            .lines()
            .filter(|l| l.contains("\"struct_type\":\"node\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let found = paths
            .iter()
            .map(|path| {
                let Some(node) = nodes.iter().find(|n| n.path == *path) else {
                    return (path.clone(), InSnapshot::Absent);
                };
                let has_children = nodes.iter().any(|n| n.path.parent() == Some(path.as_path()));
                let what = if node.kind == "dir" && !has_children { InSnapshot::EmptyFolder } else { InSnapshot::Data };
                (path.clone(), what)
            })
            .collect();
        Ok(found)
    }

    /// Every file and folder at and under `paths` in `snapshot`, in one call
    /// (`restic ls --recursive`).
    pub fn ls_tree(&self, snapshot: &str, paths: &[PathBuf]) -> Result<Vec<Node>, ResticError> {
        let cmd = self
            .cmd("ls")
            .args(["--json", "--no-lock", "--recursive", snapshot])
            .args(paths.iter().map(|p| p.display().to_string()));
        let out = self.query(&cmd)?;
        Ok(out
            .stdout
            .lines()
            .filter(|l| l.contains("\"struct_type\":\"node\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|n: &Node| paths.iter().any(|p| within(&n.path, p)))
            .collect())
    }

    /// For each snapshot of `host`, which of `paths` it holds, in one call
    /// (`restic find`, which lists what is under them too: only the paths themselves
    /// are kept). Keys are full snapshot ids.
    pub fn holding(&self, host: &str, paths: &[PathBuf]) -> Result<BTreeMap<String, Vec<PathBuf>>, ResticError> {
        let cmd = self
            .cmd("find")
            .args(["--json", "--no-lock", "--host", host])
            .args(paths.iter().map(|p| paths::pattern(p)));
        let out = self.query(&cmd)?;
        let text = out.stdout.trim();
        if text.is_empty() || text == "null" {
            return Ok(BTreeMap::new());
        }
        let found: Vec<FindMatches> = serde_json::from_str(text).map_err(|e| ResticError::Failed {
            repo: self.repository_shown(),
            restic: format!("cannot read what restic find printed: {e}"),
        })?;
        Ok(found
            .into_iter()
            .map(|f| {
                let held = paths.iter().filter(|p| f.matches.iter().any(|n| n.path == **p)).cloned().collect();
                (f.snapshot, held)
            })
            .collect())
    }

    /// One snapshot of `set`, for `host`. `progress` gets restic's fraction done (0 to 1)
    /// as it works. Returns what it made and the command run.
    pub fn backup(
        &self,
        host: &str,
        set: &BackupSet,
        progress: &mut dyn FnMut(f64),
    ) -> Result<(BackupOutcome, String), ResticError> {
        // Tagged with the tool and the host name; restore and status select by the host.
        let mut cmd = self
            .cmd("backup")
            .args(["--json", "--host", host, "--tag", crate::TAG, "--tag", host])
            .timeout(DATA_TIMEOUT);
        for exclude in &set.excludes {
            cmd = cmd.arg("--exclude").arg(paths::pattern(&exclude.path));
        }
        cmd = cmd.args(set.targets.iter().map(|t| t.display().to_string()));
        let out = cmd.output_with_lines(&mut |line| {
            if let Ok(status) = serde_json::from_str::<BackupStatusLine>(line)
                && status.message_type == "status"
            {
                progress(status.percent_done);
            }
        })?;
        // 0: done; 3: the snapshot was made, but some files could not be read.
        if !matches!(out.code, Some(0 | 3)) {
            return Err(self.error(&out));
        }
        let mut outcome = BackupOutcome::default();
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            let Ok(message) = serde_json::from_str::<BackupMessage>(line) else { continue };
            match message.message_type.as_str() {
                "summary" => {
                    outcome.snapshot = message.snapshot_id;
                    outcome.files_new = message.files_new;
                    outcome.files_changed = message.files_changed;
                    outcome.files_unmodified = message.files_unmodified;
                    outcome.data_added = message.data_added;
                }
                "error" => {
                    let why = match message.error {
                        Some(serde_json::Value::String(text)) => text,
                        _ => format!("cannot read it (during {})", message.during),
                    };
                    outcome.unreadable.push((PathBuf::from(message.item), why));
                }
                _ => {}
            }
        }
        if outcome.snapshot.is_empty() {
            return Err(ResticError::Failed {
                repo: self.repository_shown(),
                restic: format!("restic backup printed no summary: {}", out.tail()),
            });
        }
        if out.code == Some(3) && outcome.unreadable.is_empty() {
            outcome.unreadable.push((PathBuf::new(), out.stderr.trim().to_owned()));
        }
        Ok((outcome, cmd.to_string()))
    }

    /// Restores `paths` of `snapshot` (each with what is under it) under `target`, each
    /// at its absolute location inside it, in one call (`--include` for each). Returns
    /// the command run.
    pub fn restore(&self, snapshot: &str, target: &Path, paths: &[&Path]) -> Result<String, ResticError> {
        let mut cmd =
            self.cmd("restore").arg(snapshot).arg("--target").arg(target.display().to_string()).timeout(DATA_TIMEOUT);
        for path in paths {
            cmd = cmd.arg("--include").arg(paths::pattern(path));
        }
        self.query(&cmd)?;
        Ok(cmd.to_string())
    }

    /// Restores `files` (regular files) of `snapshot` under `target`, in one call
    /// (`--include` for each). A file restic could not restore (a damaged pack) is in
    /// the outcome with restic's words; only a restore that could not start at all (the
    /// repository does not open, the snapshot is not there) is an error. Returns the
    /// command run too.
    pub fn restore_files(
        &self,
        snapshot: &str,
        target: &Path,
        files: &[PathBuf],
    ) -> Result<(FilesRestored, String), ResticError> {
        let mut cmd =
            self.cmd("restore").arg(snapshot).arg("--target").arg(target.display().to_string()).timeout(DATA_TIMEOUT);
        for file in files {
            cmd = cmd.arg("--include").arg(paths::pattern(file));
        }
        let out = cmd.output()?;
        let command = cmd.to_string();
        if out.success() {
            return Ok((FilesRestored::default(), command));
        }
        let mut restored = FilesRestored::default();
        for line in out.stderr.lines().chain(out.stdout.lines()) {
            let Some(rest) = line.trim().strip_prefix("ignoring error for ") else { continue };
            // The longest file whose name the line starts with (a name may hold ": ").
            let file = files
                .iter()
                .filter(|f| rest.strip_prefix(&*f.to_string_lossy()).is_some_and(|r| r.starts_with(": ")))
                .max_by_key(|f| f.as_os_str().len());
            if let Some(file) = file {
                let why = rest[file.to_string_lossy().len() + 2..].trim().to_owned();
                restored.errors.push((file.clone(), why));
            }
        }
        if restored.errors.is_empty() {
            return Err(self.error(&out));
        }
        restored.failure = Some(match self.error(&out) {
            ResticError::Failed { restic, .. } => restic,
            other => other.to_string(),
        });
        Ok((restored, command))
    }

    /// `restic check --read-data-subset=SUBSET`: the repository's structure, and the
    /// data of that part of its packs read back and checked against their hashes.
    /// restic 0.14 takes an exclusive lock for it (never `--no-lock`: a check must not
    /// run beside a prune) and uses a temporary cache of its own under the cache folder.
    /// Any error it finds is a [`ResticError::Failed`] in restic's words.
    pub fn check(&self, read_data: &str) -> Result<Checked, ResticError> {
        let cmd = self.cmd("check").arg(format!("--read-data-subset={}", read_data.trim())).timeout(DATA_TIMEOUT);
        let out = self.query(&cmd)?;
        let read =
            out.stdout.lines().map(str::trim).find(|l| l.starts_with("read ")).unwrap_or("read no data").to_owned();
        Ok(Checked { read, command: cmd.to_string() })
    }

    /// What `keep` would keep and forget of `host`'s snapshots (grouped by host alone,
    /// so every snapshot of the host counts against one policy), from `restic forget
    /// --dry-run --json`: a query, it takes no lock and forgets nothing.
    pub fn forget_plan(&self, host: &str, keep: &Keep) -> Result<ForgetPlan, ResticError> {
        let cmd = self
            .cmd("forget")
            .args(["--dry-run", "--json", "--no-lock", "--host", host, "--group-by", "host"])
            .args(keep_flags(keep));
        let out = self.query(&cmd)?;
        // restic prints the JSON list on one line; nothing at all when the host has no
        // snapshot.
        let text = out.stdout.lines().map(str::trim).find(|l| l.starts_with('[')).unwrap_or("[]");
        parse_forget(text).map_err(|e| ResticError::Failed {
            repo: self.repository_shown(),
            restic: format!("cannot read what restic forget --dry-run printed: {e}"),
        })
    }

    /// Forgets the snapshots `ids` (full ids) and prunes the data only they held, in
    /// one call (`restic forget --prune`, which takes restic's exclusive lock). Returns
    /// the command run.
    pub fn forget(&self, ids: &[String]) -> Result<String, ResticError> {
        let cmd = self.cmd("forget").arg("--prune").args(ids.iter().cloned()).timeout(DATA_TIMEOUT);
        self.query(&cmd)?;
        Ok(cmd.to_string())
    }
}

/// The plan in the JSON of `restic forget --dry-run --json`.
fn parse_forget(text: &str) -> Result<ForgetPlan, serde_json::Error> {
    let groups: Vec<ForgetGroup> = serde_json::from_str(text)?;
    let mut plan = ForgetPlan::default();
    for group in groups {
        let reasons = group.reasons.unwrap_or_default();
        for (i, snapshot) in group.keep.unwrap_or_default().into_iter().enumerate() {
            // In keep's order; matched by time should a restic list them otherwise.
            let reason = reasons
                .get(i)
                .filter(|r| r.snapshot.time == snapshot.time)
                .or_else(|| reasons.iter().find(|r| r.snapshot.time == snapshot.time));
            plan.keep.push((snapshot, reason.map(|r| r.matches.clone()).unwrap_or_default()));
        }
        plan.remove.extend(group.remove.unwrap_or_default());
    }
    Ok(plan)
}

/// The repository with any password of its url left out, as a state file may keep it
/// (to tell whether what it records was of this repository).
pub fn without_password(repository: &str) -> String {
    match url_password(repository) {
        Some(password) => repository.replacen(&format!(":{password}@"), ":@", 1),
        None => repository.to_owned(),
    }
}

/// `repository` as a report may show it, unless it is a local folder (which reports
/// show as the item's path): a password in its url is registered as a secret, and
/// hidden.
pub fn remote_shown(repository: &str) -> Option<String> {
    if local_folder(repository).is_some() {
        return None;
    }
    if let Some(password) = url_password(repository) {
        secret::register(password);
    }
    Some(secret::redact(repository))
}

/// The folder of a local repository (`/path` or `local:/path`).
pub fn local_folder(repository: &str) -> Option<PathBuf> {
    common::durable::local_repository(repository)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(id: &str, time: &str, paths: &[&str], excludes: &[&str]) -> Snapshot {
        Snapshot {
            id: id.into(),
            short_id: id.into(),
            time: time.into(),
            paths: paths.iter().map(PathBuf::from).collect(),
            hostname: "h".into(),
            tags: None,
            excludes: Some(excludes.iter().map(|e| (*e).to_owned()).collect()),
        }
    }

    #[test]
    fn the_newest_snapshot_that_covers_a_path_wins() {
        let snapshots = [
            snapshot("old", "2024-01-01T10:00:00Z", &["/h/data"], &[]),
            snapshot("new", "2024-01-02T10:00:00.5+02:00", &["/h/other"], &[]),
            snapshot("excl", "2024-01-03T10:00:00Z", &["/h"], &["/h/data/cache"]),
        ];
        assert_eq!(newest_covering(&snapshots, Path::new("/h/data")).map(|s| s.id.as_str()), Some("excl"));
        assert_eq!(newest_covering(&snapshots, Path::new("/h/data/cache/x")).map(|s| s.id.as_str()), Some("old"));
        assert_eq!(newest_covering(&snapshots, Path::new("/elsewhere")).map(|s| s.id.as_str()), None);
        assert_eq!(newest_covering(&snapshots, Path::new("/h/datax")).map(|s| s.id.as_str()), Some("excl"));
    }

    #[test]
    fn reads_what_restic_0_14_forget_dry_run_prints() -> Result<(), serde_json::Error> {
        // As restic 0.14 prints it (shortened): the reasons' snapshots carry no id.
        let text = r#"[{"tags":null,"host":"H","paths":null,"keep":[{"time":"2026-01-20T10:00:00Z","tree":"46c6","paths":["/d"],"hostname":"H","username":"root","tags":["pi-bootstrap"],"id":"fb305dca1035","short_id":"fb305dca"},{"time":"2026-01-13T10:00:00Z","tree":"1905","paths":["/d"],"hostname":"H","id":"de2b486bf103","short_id":"de2b486b"}],"remove":[{"time":"2026-01-06T12:00:00Z","tree":"eb30","paths":["/d"],"hostname":"H","id":"6a8f95959183","short_id":"6a8f9595"}],"reasons":[{"snapshot":{"time":"2026-01-20T10:00:00Z","tree":"46c6","paths":["/d"],"hostname":"H"},"matches":["daily snapshot","weekly snapshot"],"counters":{"daily":1,"weekly":1}},{"snapshot":{"time":"2026-01-13T10:00:00Z","tree":"1905","paths":["/d"],"hostname":"H"},"matches":["weekly snapshot"],"counters":{}}]}]"#;
        let plan = parse_forget(text)?;
        let kept: Vec<(&str, Vec<String>)> = plan.keep.iter().map(|(s, r)| (s.short_id.as_str(), r.clone())).collect();
        assert_eq!(
            kept,
            [
                ("fb305dca", vec!["daily snapshot".to_owned(), "weekly snapshot".to_owned()]),
                ("de2b486b", vec!["weekly snapshot".to_owned()])
            ]
        );
        assert_eq!(plan.remove.iter().map(|s| s.short_id.as_str()).collect::<Vec<_>>(), ["6a8f9595"]);
        assert!(parse_forget("[]")?.keep.is_empty());
        let flags = keep_flags(&Keep { last: Some(3), daily: Some(0), weekly: None, monthly: Some(6) });
        assert_eq!(flags, ["--keep-last", "3", "--keep-monthly", "6"]);
        Ok(())
    }

    #[test]
    fn repository_urls_give_up_their_password_and_local_folders() {
        assert_eq!(url_password("rest:https://me:s3cret-pw@host:8000/repo"), Some("s3cret-pw"));
        assert_eq!(url_password("rest:https://me@host/"), None);
        assert_eq!(url_password("sftp:me@host:/srv/restic"), None);
        assert_eq!(without_password("rest:https://me:s3cret-pw@host:8000/repo"), "rest:https://me:@host:8000/repo");
        assert_eq!(without_password("/var/backups/r"), "/var/backups/r");
        assert_eq!(local_folder("/var/backups/r"), Some(PathBuf::from("/var/backups/r")));
        assert_eq!(local_folder("local:/var/backups/r"), Some(PathBuf::from("/var/backups/r")));
        assert_eq!(local_folder("s3:s3.amazonaws.com/bucket"), None);
    }
}
