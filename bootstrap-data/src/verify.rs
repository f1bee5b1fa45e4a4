//! `bootstrap-data verify`: reads the backup back, so a backup that cannot be restored
//! is found before the day it is needed; and [`verify_status`], the audit's view of
//! the last verification.
//!
//! Two checks, each its own item:
//!
//! - `data:repository`: `restic check --read-data-subset=N` (`backup.verify.read_data`,
//!   default 2%): the repository's structure, and that part of its data read back and
//!   checked against its hashes; restic's own words when it finds something.
//! - a spot check per `backup`-class path (`data:path:NAME`, `data:service:NAME`): from
//!   the newest snapshot of this host that covers the path, up to `backup.verify.files`
//!   (default 5) of its files whose live copy is unchanged since the snapshot (same
//!   size, modification time to the microsecond) are restored into a temporary folder
//!   of the state folder (one `restic restore` per snapshot, with an `--include` per
//!   file) and compared byte for byte with the live files. Chosen deterministically
//!   and spread over the path: the largest, then evenly spaced in path order. A file
//!   restic cannot restore (a damaged pack), one missing from the restore, or one
//!   whose bytes differ fails the path, naming the file. A path in no snapshot, or with
//!   no file unchanged since it, is `skipped`. The temporary folder is removed in every
//!   case; restic restores only into it, and live files are only read.
//!
//! The result (when, ok or not, what failed, the snapshots read) is recorded in the
//! state folder (`verify.json`, under the run lock). `--if-due` does nothing while the
//! last successful verification is younger than `backup.verify.every`, nor when the
//! manifest has no `backup.verify`; without it, verify runs with the defaults. A run
//! limited by `--only` is not recorded: it verified only part of the backup. The
//! listing of the repository it reads brings the local record of the backup up to date
//! (`crate::record`), `--only` or not.
//!
//! `--check` runs only the read-only parts: it lists the snapshots and their files
//! (`--no-lock`, `--no-cache`) and says what it would check and which files it would
//! read back (`would change`); it runs no `restic check` (which locks the repository)
//! and no restore, and records nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::durable;
use common::engine::Ctx;
use common::manifest::{Backup, Manifest};
use common::output;
use common::report::{Item, Report, Status, tilde};
use common::state::StateDir;
use common::step::StepError;
use serde::{Deserialize, Serialize};

use crate::paths::{self, DataPath, within};
use crate::record::machine_id;
use crate::restic::{self, Node, Restic, Snapshot};
use crate::{Options, REPOSITORY_ID, STEP, backup_section, clock, host_name, item, repository_item};

/// The state file of the last verification.
pub const STATE_FILE: &str = "verify.json";
/// The id of the verification's item (its record, and the audit's view of it).
pub const VERIFY_ID: &str = "data:verify";
/// How much of the data `restic check` reads when the manifest does not say.
pub const DEFAULT_READ_DATA: &str = "2%";
/// Files per path read back when the manifest does not say.
pub const DEFAULT_FILES: u32 = 5;

/// What `verify.json` records of the last verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// When it ran (RFC 3339, UTC).
    pub time: String,
    /// Whether nothing failed.
    pub ok: bool,
    /// The items that failed.
    #[serde(default)]
    pub failed: Vec<Failed>,
    /// The snapshots whose files were read back (short ids).
    #[serde(default)]
    pub snapshots: Vec<String>,
    /// The part of the data `restic check` read (`2%`).
    #[serde(default)]
    pub read_data: String,
    /// How many files were read back and compared.
    #[serde(default)]
    pub files_compared: usize,
    /// When a verification last succeeded (this one, when it did).
    #[serde(default)]
    pub last_ok: Option<String>,
    /// restic's host name of the snapshots.
    #[serde(default)]
    pub host: String,
    /// The machine it ran on (`/etc/machine-id`): a record that comes back with a
    /// backup of the state folder onto another machine says nothing of this one.
    #[serde(default)]
    pub machine_id: String,
    /// The repository, without a password its url may hold.
    #[serde(default)]
    pub repository: String,
}

/// A failed item of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub id: String,
    pub detail: String,
}

impl Record {
    fn when(&self) -> Option<SystemTime> {
        clock::parse_rfc3339(&self.time)
    }
    fn last_ok_time(&self) -> Option<SystemTime> {
        self.last_ok.as_deref().and_then(clock::parse_rfc3339)
    }
    /// Is it a record of this machine, host and repository?
    fn is_of(&self, backup: &Backup, host: Option<&str>) -> bool {
        self.machine_id == machine_id()
            && host.is_none_or(|h| h == self.host)
            && self.repository == restic::without_password(&backup.repository.value)
    }
}

/// The last verification recorded in `state`; `None` when there is none.
pub fn read_record(state: &StateDir) -> Result<Option<Record>, String> {
    state.read_json(STATE_FILE).map_err(|e| format!("{e}; the next bootstrap-data verify writes it again"))
}

/// The item of the verification record.
fn verify_item(state: &StateDir, status: Status, detail: impl Into<String>) -> Item {
    Item::new(VERIFY_ID, "verify", status, detail).at(state.file(STATE_FILE))
}

/// How the manifest says to verify, with the defaults filled in.
struct Policy {
    read_data: String,
    files: usize,
    every: Option<Duration>,
}

impl Policy {
    fn of(backup: &Backup) -> Policy {
        let verify = backup.verify.as_ref();
        Policy {
            read_data: verify
                .and_then(|v| v.read_data.as_ref())
                .map(|r| r.value.trim().to_owned())
                .unwrap_or_else(|| DEFAULT_READ_DATA.to_owned()),
            files: verify.and_then(|v| v.files).unwrap_or(DEFAULT_FILES) as usize,
            every: verify.and_then(|v| v.every).map(|e| e.0),
        }
    }
}

/// Verifies the backup (see the module's documentation), or with `--if-due` only when
/// it is due.
pub fn verify(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    let mut report = Report::new(STEP, options.check);
    let declared = manifest.backup.as_ref().and_then(|b| b.verify.as_ref());
    if options.if_due && declared.is_none() {
        report.push(verify_item(
            &ctx.state,
            Status::Ok,
            "no `backup.verify` in the manifest: nothing is due (`bootstrap-data verify` without --if-due verifies with the defaults)",
        ));
        return Ok(report);
    }
    let backup = backup_section(manifest)?;
    let policy = Policy::of(backup);
    let host = host_name(manifest)?;
    // `--only`: the repository's check and the paths it names; such a partial run is
    // not recorded.
    let partial = !options.only.is_empty();
    let check_repository = !partial || options.only.iter().any(|id| id == REPOSITORY_ID);
    let only_paths: Vec<String> = options.only.iter().filter(|id| *id != REPOSITORY_ID).cloned().collect();
    let selected = match (partial, only_paths.is_empty()) {
        (true, true) => Vec::new(),
        _ => paths::select(paths::data_paths(manifest), &only_paths)?,
    };

    if options.if_due
        && let Some(every) = policy.every
    {
        let last = read_record(&ctx.state).ok().flatten().filter(|r| r.is_of(backup, Some(&host)));
        let now = SystemTime::now();
        if let Some(when) = last.as_ref().and_then(Record::last_ok_time)
            && clock::age(when, now) < every
        {
            let age = clock::age(when, now);
            let since = match last.as_ref().filter(|r| !r.ok).and_then(Record::when) {
                Some(failed) => format!(" (a later one, {} ago, failed)", clock::show_age(clock::age(failed, now))),
                None => String::new(),
            };
            report.push(verify_item(
                &ctx.state,
                Status::Ok,
                format!(
                    "last verified {} ago{since}; next due in {}",
                    clock::show_age(age),
                    clock::show_age(every.saturating_sub(age))
                ),
            ));
            return Ok(report);
        }
    }

    // The caller holds the run lock unless --check (`common::step::main`).
    let mut run = Run {
        ctx,
        options,
        policy: &policy,
        host: &host,
        report,
        snapshots_read: Vec::new(),
        compared: 0,
        listed: None,
    };
    run.verify(backup, check_repository, &selected);
    let Run { mut report, snapshots_read, compared, listed, .. } = run;
    if !options.check && !partial {
        record(&mut report, &ctx.state, backup, &policy, &host, snapshots_read, compared);
    }
    // The repository was listed whole, even for a run limited by --only: the local
    // record of the backup (what status and the audit read).
    if !options.check
        && let Some(all) = listed
        && let Some(failed) = crate::record::write(&ctx.state, manifest, backup, &host, &all, "verify", &[])
    {
        report.push(failed);
    }
    Ok(report)
}

/// One verification's work.
struct Run<'a> {
    ctx: &'a Ctx,
    options: &'a Options,
    policy: &'a Policy,
    host: &'a str,
    report: Report,
    /// The snapshots whose files were read back.
    snapshots_read: Vec<String>,
    /// Files read back and compared.
    compared: usize,
    /// Every snapshot of the repository, once listed.
    listed: Option<Vec<Snapshot>>,
}

impl Run<'_> {
    fn verify(&mut self, backup: &Backup, check_repository: bool, selected: &[DataPath]) {
        let home = &self.ctx.home;
        let opened = Restic::open(backup, home, self.options.check).and_then(|r| {
            let all = r.snapshots()?;
            Ok((r, all))
        });
        let (restic, all) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                self.report.push(repository_item(backup, Status::Failed, e.to_string()));
                for path in selected {
                    self.report.push(item(path, Status::Skipped, "not verified: see data:repository"));
                }
                return;
            }
        };
        let mine: Vec<Snapshot> = all.iter().filter(|s| s.hostname == self.host).cloned().collect();
        self.listed = Some(all);
        if check_repository {
            let it = self.check_repository(backup, &restic);
            self.report.push(it);
        }
        // The paths grouped by the snapshot they are read back from.
        let mut by_snapshot: BTreeMap<&str, (&Snapshot, Vec<&DataPath>)> = BTreeMap::new();
        let mut items: BTreeMap<String, Item> = BTreeMap::new();
        for path in selected {
            match restic::newest_covering(&mine, &path.path) {
                Some(s) => by_snapshot.entry(s.id.as_str()).or_insert_with(|| (s, Vec::new())).1.push(path),
                None => {
                    let detail = format!("in no snapshot of host {}: nothing to read back", self.host);
                    items.insert(path.id.clone(), item(path, Status::Skipped, detail));
                }
            }
        }
        let plans: Vec<(&Snapshot, Vec<PathPlan<'_>>)> = by_snapshot
            .into_values()
            .map(|(snapshot, paths)| (snapshot, self.plan(&restic, snapshot, &paths)))
            .collect();
        let total: usize = plans.iter().flat_map(|(_, p)| p).map(|p| p.chosen.len()).sum();
        let bar = output::progress(total as u64, "verify", self.options.verbosity);
        let progress = Progress { message: &|m| bar.set_message(m), file_done: &|| bar.inc(1) };
        for (snapshot, plan) in &plans {
            for (id, it) in self.spot_check(&restic, snapshot, plan, &progress) {
                items.insert(id, it);
            }
        }
        bar.finish_and_clear();
        for path in selected {
            if let Some(it) = items.remove(&path.id) {
                self.report.push(it);
            }
        }
    }

    /// `data:repository`: `restic check` of the repository (only said under `--check`).
    fn check_repository(&mut self, backup: &Backup, restic: &Restic) -> Item {
        let subset = &self.policy.read_data;
        if self.options.check {
            let detail = format!(
                "would run restic check --read-data-subset={subset} (the repository's structure, and {subset} of its data read back; it locks the repository meanwhile)"
            );
            return repository_item(backup, Status::WouldChange, detail);
        }
        let spinner = output::spinner(&format!("restic check --read-data-subset={subset}"), self.options.verbosity);
        let checked = restic.check(subset);
        spinner.finish_and_clear();
        let remote = restic.remote_shown().map(|r| format!("{r}: ")).unwrap_or_default();
        match checked {
            Ok(checked) => {
                self.report.commands.push(checked.command);
                repository_item(backup, Status::Ok, format!("{remote}restic check: {}, no errors found", checked.read))
            }
            Err(e) => repository_item(backup, Status::Failed, format!("restic check --read-data-subset={subset}: {e}")),
        }
    }

    /// What to read back of each path from `snapshot`: one listing of the snapshot for
    /// all of them.
    fn plan<'p>(&self, restic: &Restic, snapshot: &Snapshot, paths: &[&'p DataPath]) -> Vec<PathPlan<'p>> {
        let asked: Vec<PathBuf> = paths.iter().map(|p| p.path.clone()).collect();
        let listed = restic.ls_tree(&snapshot.id, &asked);
        paths
            .iter()
            .map(|path| match &listed {
                Err(e) => PathPlan { path, listing: Some(e.to_string()), ..PathPlan::new(path) },
                Ok(nodes) => {
                    let all: Vec<&Node> =
                        nodes.iter().filter(|n| n.kind == "file" && within(&n.path, &path.path)).collect();
                    // Online copies of databases have no live file at their path: each is
                    // read back and checked whole instead.
                    let (databases, files): (Vec<&Node>, Vec<&Node>) = all.into_iter().partition(|n| is_online_copy(n));
                    let unchanged: Vec<&Node> = files.iter().copied().filter(|n| unchanged_since(n)).collect();
                    let chosen = choose(&unchanged, self.policy.files).into_iter().cloned().collect();
                    PathPlan {
                        path,
                        files: files.len(),
                        changed: files.len() - unchanged.len(),
                        chosen,
                        databases: databases.into_iter().cloned().collect(),
                        listing: None,
                    }
                }
            })
            .collect()
    }

    /// Reads back the chosen files of `snapshot`'s paths and compares them with the
    /// live ones; one item per path.
    fn spot_check(
        &mut self,
        restic: &Restic,
        snapshot: &Snapshot,
        plans: &[PathPlan<'_>],
        progress: &Progress<'_>,
    ) -> Vec<(String, Item)> {
        let home = self.ctx.home.clone();
        let short = snapshot.short_id.as_str();
        let mut out = Vec::new();
        let mut to_read: Vec<&PathPlan<'_>> = Vec::new();
        for plan in plans {
            if let Some(why) = &plan.listing {
                out.push((
                    plan.path.id.clone(),
                    item(plan.path, Status::Failed, format!("cannot list snapshot {short}: {why}")),
                ));
            } else if plan.chosen.is_empty() && plan.databases.is_empty() {
                let detail = if plan.files == 0 {
                    format!("snapshot {short} holds no file of it: nothing to read back")
                } else {
                    format!("no file unchanged since snapshot {short}: {} changed since, none to compare", plan.files)
                };
                out.push((plan.path.id.clone(), item(plan.path, Status::Skipped, detail)));
            } else if self.options.check {
                let detail = format!(
                    "would read back {} from snapshot {short} and compare {} with the live {} ({})",
                    count(plan.chosen.len(), "file"),
                    if plan.chosen.len() == 1 { "it" } else { "them" },
                    if plan.chosen.len() == 1 { "one" } else { "ones" },
                    changed_since(plan.changed)
                );
                out.push((plan.path.id.clone(), item(plan.path, Status::WouldChange, detail)));
            } else {
                to_read.push(plan);
            }
        }
        if to_read.is_empty() {
            return out;
        }
        self.snapshots_read.push(snapshot.short_id.clone());
        let fail_all = |to_read: &[&PathPlan<'_>], why: String| -> Vec<(String, Item)> {
            to_read.iter().map(|p| (p.path.id.clone(), item(p.path, Status::Failed, why.clone()))).collect()
        };
        let scratch = match Scratch::new(&self.ctx.state) {
            Ok(scratch) => scratch,
            Err(e) => {
                out.extend(fail_all(&to_read, format!("cannot make a folder to restore into: {e}")));
                return out;
            }
        };
        let files: Vec<PathBuf> =
            to_read.iter().flat_map(|p| p.chosen.iter().chain(&p.databases).map(|n| n.path.clone())).collect();
        (progress.message)(format!("restic restore of {} from snapshot {short}", count(files.len(), "file")));
        let restored = match restic.restore_files(&snapshot.id, scratch.path(), &files) {
            Ok((restored, command)) => {
                self.report.commands.push(command);
                restored
            }
            Err(e) => {
                out.extend(fail_all(&to_read, format!("cannot restore from snapshot {short}: {e}")));
                return out;
            }
        };
        for plan in to_read {
            (progress.message)(tilde(&plan.path.path, &home));
            let mut wrong: Vec<String> = Vec::new();
            let mut compared = 0;
            let mut changed = plan.changed;
            for node in &plan.chosen {
                let outcome = compare(node, scratch.path(), &restored);
                (progress.file_done)();
                match outcome {
                    Compared::Same => compared += 1,
                    Compared::ChangedMeanwhile => changed += 1,
                    Compared::Wrong(why) => {
                        compared += 1;
                        wrong.push(format!("{} ({why})", tilde(&node.path, &home)));
                    }
                }
            }
            let mut whole = 0;
            for node in &plan.databases {
                (progress.file_done)();
                match check_database(node, scratch.path(), &restored) {
                    Ok(()) => whole += 1,
                    Err(why) => wrong.push(format!("{} ({why})", tilde(&node.path, &home))),
                }
            }
            self.compared += compared + plan.databases.len();
            let databases = match whole {
                0 => String::new(),
                n => format!("; {} copied online read back whole (integrity_check ok)", count(n, "database")),
            };
            let it = if !wrong.is_empty() {
                let mut detail = format!(
                    "{} of {} read back from snapshot {short} {}: {}",
                    wrong.len(),
                    count(compared, "file"),
                    if wrong.len() == 1 { "does not match" } else { "do not match" },
                    wrong.join(", ")
                );
                if let Some(failure) = restored.failure.as_ref().filter(|_| restored.errors.is_empty()) {
                    detail.push_str(&format!("; {failure}"));
                }
                item(plan.path, Status::Failed, detail)
            } else if compared == 0 && whole == 0 {
                item(
                    plan.path,
                    Status::Skipped,
                    format!("every file chosen changed while it was read back from snapshot {short}: none compared"),
                )
            } else if compared == 0 {
                item(
                    plan.path,
                    Status::Ok,
                    format!(
                        "read back {} copied online from snapshot {short}: whole (integrity_check ok) ({})",
                        count(whole, "database"),
                        changed_since(changed)
                    ),
                )
            } else {
                item(
                    plan.path,
                    Status::Ok,
                    format!(
                        "read back {} from snapshot {short}: identical to the live {}{databases} ({})",
                        count(compared, "file"),
                        if compared == 1 { "one" } else { "ones" },
                        changed_since(changed)
                    ),
                )
            };
            out.push((plan.path.id.clone(), it));
        }
        out
    }
}

/// Where the spot check tells how far it is (a progress bar on a terminal).
struct Progress<'b> {
    message: &'b dyn Fn(String),
    file_done: &'b dyn Fn(),
}

/// What to read back of one path.
struct PathPlan<'p> {
    path: &'p DataPath,
    /// The files of the snapshot in it.
    files: usize,
    /// Those whose live copy changed since (or is gone).
    changed: usize,
    /// The files to read back.
    chosen: Vec<Node>,
    /// The online copies of databases in it (`capture: sqlite`), each checked whole.
    databases: Vec<Node>,
    /// Why the snapshot could not be listed.
    listing: Option<String>,
}

impl<'p> PathPlan<'p> {
    fn new(path: &'p DataPath) -> PathPlan<'p> {
        PathPlan { path, files: 0, changed: 0, chosen: Vec::new(), databases: Vec::new(), listing: None }
    }
}

/// Is a snapshot's file the online copy of a database (in a capture folder)?
fn is_online_copy(node: &Node) -> bool {
    node.path.parent().and_then(|p| p.file_name()).is_some_and(|n| n == crate::capture::CAPTURE_DIR)
}

/// A database copy read back: there, and whole (`PRAGMA integrity_check` says ok).
fn check_database(node: &Node, target: &Path, restored: &restic::FilesRestored) -> Result<(), String> {
    let copy = target.join(node.path.strip_prefix("/").unwrap_or(&node.path));
    if std::fs::symlink_metadata(&copy).is_err() {
        return Err(match restored.errors.iter().find(|(f, _)| *f == node.path) {
            Some((_, why)) => format!("restic could not restore it: {why}"),
            None => "missing from what restic restored".into(),
        });
    }
    let db = rusqlite::Connection::open_with_flags(&copy, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("the copy does not open as a database: {e}"))?;
    let verdict: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("the copy cannot be checked: {e}"))?;
    if verdict == "ok" { Ok(()) } else { Err(format!("the copy is damaged: {verdict}")) }
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn changed_since(n: usize) -> String {
    match n {
        0 => "none changed since the snapshot".to_owned(),
        n => format!("{} changed since the snapshot, not compared", count(n, "file")),
    }
}

/// Microseconds since the epoch (negative before it).
fn micros(time: SystemTime) -> i128 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_micros()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_micros()).unwrap_or(i128::MAX),
    }
}

/// Is the live copy of a snapshot's file the same regular file size and modification
/// time (to the microsecond)?
fn unchanged_since(node: &Node) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(&node.path) else { return false };
    let (Ok(live), Some(then)) = (meta.modified(), node.modified()) else { return false };
    meta.file_type().is_file() && meta.len() == node.size && micros(live) == micros(then)
}

/// Up to `n` of `files`, spread over them: the largest (the first of equals), then
/// evenly spaced in path order; returned in path order.
pub(crate) fn choose<'n>(files: &[&'n Node], n: usize) -> Vec<&'n Node> {
    let mut sorted: Vec<&Node> = files.to_vec();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    if sorted.len() <= n {
        return sorted;
    }
    if n == 0 {
        return Vec::new();
    }
    let largest = sorted.iter().enumerate().max_by(|(i, a), (j, b)| a.size.cmp(&b.size).then(j.cmp(i))).map(|(i, _)| i);
    let mut chosen: Vec<&Node> = Vec::with_capacity(n);
    if let Some(i) = largest {
        chosen.push(sorted.remove(i));
    }
    let wanted = n - chosen.len();
    // sorted.len() >= n > wanted: the steps are at least 1, so no file is taken twice.
    for k in 0..wanted {
        chosen.push(sorted[k * sorted.len() / wanted]);
    }
    chosen.sort_by(|a, b| a.path.cmp(&b.path));
    chosen
}

/// How one file read back compared with its live copy.
enum Compared {
    Same,
    /// The live file changed while it was read back (a service wrote to it): not
    /// compared.
    ChangedMeanwhile,
    Wrong(String),
}

fn compare(node: &Node, target: &Path, restored: &restic::FilesRestored) -> Compared {
    let copy = target.join(node.path.strip_prefix("/").unwrap_or(&node.path));
    let restic_said = restored.errors.iter().find(|(f, _)| *f == node.path).map(|(_, why)| why.as_str());
    let meta = match std::fs::symlink_metadata(&copy) {
        Ok(meta) if meta.file_type().is_file() => meta,
        Ok(_) => return Compared::Wrong("restic restored something other than a file".into()),
        Err(_) => {
            return Compared::Wrong(match restic_said {
                Some(why) => format!("restic could not restore it: {why}"),
                None => "missing from what restic restored".into(),
            });
        }
    };
    let same = if meta.len() == node.size { same_bytes(&copy, &node.path) } else { Ok(false) };
    // The same bytes are what counts: an error restic reported for the file's metadata
    // alone (an owner it may not set) does not make the backup wrong.
    match same {
        Ok(true) => Compared::Same,
        _ if !unchanged_since(node) => Compared::ChangedMeanwhile,
        Ok(false) => Compared::Wrong(match restic_said {
            Some(why) => format!("restic could not restore it: {why}"),
            None => "its bytes differ from the snapshot's, though its size and modification time are the same".into(),
        }),
        Err(e) => Compared::Wrong(format!("cannot compare it: {e}")),
    }
}

/// Do two files hold the same bytes? Read in chunks: a file may be large.
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The temporary folder files are restored into (mode 0700, in the state folder, on
/// HOME's disk rather than a memory-backed /tmp). Removed when dropped, whatever
/// happened, folders restored without write permission included.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new(state: &common::state::StateDir) -> io::Result<Scratch> {
        Ok(Scratch(common::staging::scratch(state, "verify")?))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        fn writable(dir: &Path) {
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    writable(&entry.path());
                }
            }
        }
        writable(self.0.path());
        // The TempDir removes the folder as it drops, next.
    }
}

/// Records the verification in the state file, and says so in its item.
fn record(
    report: &mut Report,
    state: &StateDir,
    backup: &Backup,
    policy: &Policy,
    host: &str,
    snapshots: Vec<String>,
    files_compared: usize,
) {
    let failed: Vec<Failed> = report
        .items
        .iter()
        .filter(|i| i.status == Status::Failed)
        .map(|i| Failed { id: i.id.clone(), detail: i.detail.clone() })
        .collect();
    let ok = failed.is_empty();
    let time = durable::now_text();
    let previous = read_record(state).ok().flatten().filter(|r| r.is_of(backup, Some(host)));
    let last_ok = if ok { Some(time.clone()) } else { previous.and_then(|r| r.last_ok) };
    let record = Record {
        time,
        ok,
        failed,
        snapshots,
        read_data: policy.read_data.clone(),
        files_compared,
        last_ok,
        host: host.to_owned(),
        machine_id: machine_id(),
        repository: restic::without_password(&backup.repository.value),
    };
    let written = state.write_json(STATE_FILE, &record).map_err(|e| e.to_string());
    let it = match written {
        Err(e) => verify_item(state, Status::Failed, format!("cannot record the verification: {e}")),
        Ok(()) if !ok => {
            verify_item(state, Status::Ok, "recorded: the verification failed; the audit reports it until one passes")
        }
        Ok(()) => {
            let next = policy
                .every
                .map(|every| format!("; the scheduled run verifies again in {}", clock::show_age(every)))
                .unwrap_or_default();
            verify_item(state, Status::Ok, format!("recorded: verified{next}"))
        }
    };
    report.push(it);
}

/// The audit's item of the last verification, when the manifest declares
/// `backup.verify`: ok when it succeeded and is younger than `verify.max_age`; drift
/// when it is older, or there is none of this host; failed when it failed (naming what
/// failed). Reads only the state file: no restic.
pub fn verify_status(manifest: &Manifest, home: &Path, now: SystemTime) -> Vec<Item> {
    let Some(backup) = &manifest.backup else { return Vec::new() };
    let Some(declared) = &backup.verify else { return Vec::new() };
    let state = StateDir::new(home);
    let max_age = declared.max_age.0;
    let host = host_name(manifest).ok();
    let record = match read_record(&state) {
        Ok(record) => record,
        Err(e) => return vec![verify_item(&state, Status::Failed, e)],
    };
    let never = "never verified on this host: bootstrap-data verify";
    let it = match record {
        None => verify_item(&state, Status::Drift, never),
        Some(r) if !r.is_of(backup, host.as_deref()) => verify_item(
            &state,
            Status::Drift,
            format!("{never} (the verification recorded is of another machine, host or repository)"),
        ),
        Some(r) => {
            let Some(when) = r.when() else {
                return vec![verify_item(
                    &state,
                    Status::Drift,
                    format!("the last verification has a time this cannot read ({:?}): bootstrap-data verify", r.time),
                )];
            };
            let age = clock::age(when, now);
            let at = format!("{} ago ({})", clock::show_age(age), clock::show_time(when));
            if !r.ok {
                let what: Vec<String> = r.failed.iter().map(|f| format!("{}: {}", f.id, f.detail)).collect();
                verify_item(
                    &state,
                    Status::Failed,
                    format!(
                        "the last verification, {at}, failed: {}; once it is fixed, bootstrap-data verify",
                        if what.is_empty() { "see bootstrap-data verify".to_owned() } else { what.join("; ") }
                    ),
                )
            } else if age > max_age {
                verify_item(
                    &state,
                    Status::Drift,
                    format!(
                        "last verified {at}, more than the {} allowed: bootstrap-data verify",
                        clock::show_age(max_age)
                    ),
                )
            } else {
                let files = count(r.files_compared, "file");
                verify_item(
                    &state,
                    Status::Ok,
                    format!(
                        "last verified {at} (restic check of {}, {files} read back), within the {} allowed",
                        r.read_data,
                        clock::show_age(max_age)
                    ),
                )
            }
        }
    };
    vec![it]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, size: u64) -> Node {
        Node { path: PathBuf::from(path), kind: "file".into(), size, mode: 0o644, mtime: String::new() }
    }

    #[test]
    fn files_are_chosen_spread_out_with_the_largest() {
        let nodes: Vec<Node> = (0..10).map(|i| node(&format!("/d/f{i}"), if i == 7 { 100 } else { 1 })).collect();
        let refs: Vec<&Node> = nodes.iter().collect();
        let names = |chosen: Vec<&Node>| chosen.iter().map(|n| n.path.display().to_string()).collect::<Vec<_>>();
        assert_eq!(names(choose(&refs, 3)), ["/d/f0", "/d/f4", "/d/f7"]);
        assert_eq!(names(choose(&refs, 1)), ["/d/f7"]);
        assert_eq!(choose(&refs, 0).len(), 0);
        assert_eq!(choose(&refs, 10).len(), 10);
        assert_eq!(choose(&refs[..2], 5).len(), 2);
        // The same every time, whatever the order of the listing.
        let mut reversed = refs.clone();
        reversed.reverse();
        assert_eq!(names(choose(&reversed, 5)), names(choose(&refs, 5)));
        assert_eq!(choose(&refs, 5).len(), 5);
    }

    fn manifest(home: &Path, verify: &str) -> Result<Manifest, Box<dyn std::error::Error>> {
        let text = format!(
            "version: 1\nhost: h1\nrepo:\n  path: ~/repo\n  url: https://example.invalid/r.git\npaths:\n  - {{name: d, path: ~/d, role: r, backup: backup}}\nbackup:\n  repository: /srv/restic\n  password_file: ~/pw\n  max_age: 26h\n{verify}"
        );
        Ok(common::manifest::load_str(Path::new("/m.yaml"), &text, home, &|_| None)?)
    }

    fn write(home: &Path, record: &Record) -> Result<(), Box<dyn std::error::Error>> {
        StateDir::new(home).write(STATE_FILE, &serde_json::to_vec(record)?)?;
        Ok(())
    }

    fn ours(time: SystemTime, ok: bool) -> Record {
        Record {
            time: humantime::format_rfc3339(time).to_string(),
            ok,
            failed: if ok {
                Vec::new()
            } else {
                vec![Failed { id: "data:path:d".into(), detail: "1 of 2 files ... does not match: ~/d/x".into() }]
            },
            read_data: "2%".into(),
            files_compared: 2,
            host: "h1".into(),
            machine_id: machine_id(),
            repository: "/srv/restic".into(),
            ..Record::default()
        }
    }

    #[test]
    fn the_audit_sees_the_last_verification() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let h = home.path();
        let now = SystemTime::now();
        let status = |m: &Manifest| -> Vec<(Status, String)> {
            verify_status(m, h, now).into_iter().map(|i| (i.status, i.detail)).collect()
        };
        assert!(status(&manifest(h, "")?).is_empty(), "no backup.verify, no item");
        let m = manifest(h, "  verify:\n    max_age: 8d\n")?;
        assert_eq!(status(&m), [(Status::Drift, "never verified on this host: bootstrap-data verify".to_owned())]);

        write(h, &ours(now - Duration::from_secs(3600), true))?;
        let got = status(&m);
        assert_eq!(got[0].0, Status::Ok, "{got:?}");
        assert!(got[0].1.starts_with("last verified 1h 0m ago ("), "{got:?}");
        assert!(got[0].1.ends_with("within the 8d 0h allowed"), "{got:?}");

        write(h, &ours(now - Duration::from_secs(9 * 86_400), true))?;
        let got = status(&m);
        assert_eq!(got[0].0, Status::Drift, "{got:?}");
        assert!(got[0].1.contains("more than the 8d 0h allowed: bootstrap-data verify"), "{got:?}");

        write(h, &ours(now - Duration::from_secs(60), false))?;
        let got = status(&m);
        assert_eq!(got[0].0, Status::Failed, "{got:?}");
        assert!(got[0].1.contains("failed: data:path:d: 1 of 2 files"), "{got:?}");

        // Another machine's record (a state folder restored from a backup) is none.
        write(h, &Record { machine_id: "another-machine".into(), ..ours(now, true) })?;
        assert_eq!(status(&m)[0].0, Status::Drift);
        // ... and so is one of another repository.
        write(h, &Record { repository: "/elsewhere".into(), ..ours(now, true) })?;
        assert_eq!(status(&m)[0].0, Status::Drift);

        StateDir::new(h).write(STATE_FILE, b"not json")?;
        assert_eq!(status(&m)[0].0, Status::Failed);
        Ok(())
    }
}
