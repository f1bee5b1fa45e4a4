//! `bootstrap-data restore` (what `cargo xtask restore` runs as step 6).
//!
//! Observe: each selected path is missing, an empty folder, or holds data (a file is
//! data whatever its size). Data is left alone unless `--force`. For the others, one
//! `restic snapshots` call gives the newest snapshot of this host that covers each
//! path, and one `restic ls` per snapshot tells what it holds there: nothing (the path
//! did not exist then: skipped), an empty folder (an empty folder here is then in
//! sync), or data (to restore). The repository is not read, nor the password file,
//! when nothing is missing or empty.
//!
//! Apply, outermost path first, with the running owners stopped around it all: restic
//! restores the path into a staging folder next to it, then what is in place is kept
//! aside (only with `--force`; an empty folder is simply replaced) and the restored
//! path is renamed in. A path inside another one restored from the same snapshot
//! comes with it. Then observe again: a path still missing is a failure, never a
//! silent "changed".

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::cli::Failure;
use common::engine::Ctx;
use common::manifest::Manifest;
use common::output;
use common::report::{Item, Report, Status, tilde};
use common::state::StateDir;

use crate::paths::{self, DataPath, within};
use crate::restic::{self, InSnapshot, Restic, ResticError, Snapshot};
use crate::status::describe;
use crate::{Options, STEP, backup_section, clock, host_name, item, repository_item, services};

/// What is at a path on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Missing,
    /// A folder with nothing in it.
    Empty,
    /// A file, a link, or a folder with something in it.
    Data,
}

fn local_state(path: &Path) -> io::Result<Local> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Local::Missing),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => Ok(if fs::read_dir(path)?.next().is_none() { Local::Empty } else { Local::Data }),
        Ok(_) => Ok(Local::Data),
    }
}

/// What to do with one path.
#[derive(Debug, Clone)]
enum Decision {
    /// Nothing to do: ok, with why.
    Ok(String),
    Skipped(String),
    Failed(String),
    /// Missing or empty (or `--force`): to look up in the repository.
    Needed,
    /// `--check` without restic installed yet: what it would do.
    WouldRestoreSomehow(String),
    /// Restore from this snapshot (an index into the host's snapshots).
    Restore {
        snapshot: usize,
    },
    /// Comes with the restore of another path (its index in the plan).
    With {
        outer: usize,
        snapshot: usize,
    },
}

struct Plan<'a> {
    path: &'a DataPath,
    local: Local,
    decision: Decision,
}

const LEFT_ALONE: &str =
    "holds data: left alone (restore --force puts the newest snapshot in its place, keeping this aside first)";

/// Restores the selected paths that are missing or empty (every one with `--force`).
pub fn restore(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, Failure> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    let mut report = Report::new(STEP, options.check);
    let _lock = if options.check { None } else { Some(ctx.state.lock()?) };
    let pending = services::pending(&ctx.state)?;

    let mut plans: Vec<Plan<'_>> = selected
        .iter()
        .map(|path| match local_state(&path.path) {
            Ok(Local::Data) if !options.force => {
                Plan { path, local: Local::Data, decision: Decision::Ok(LEFT_ALONE.into()) }
            }
            Ok(local) => Plan { path, local, decision: Decision::Needed },
            Err(e) => Plan { path, local: Local::Data, decision: Decision::Failed(format!("cannot read it: {e}")) },
        })
        .collect();
    let needed: Vec<usize> = (0..plans.len()).filter(|&i| matches!(plans[i].decision, Decision::Needed)).collect();
    let (repo_item, snapshots, restic) = if needed.is_empty() {
        (None, Vec::new(), None)
    } else {
        let found = look_up(manifest, ctx, options, &mut plans, &needed);
        (Some(found.item), found.snapshots, found.restic)
    };
    mark_nested(&mut plans);

    if let Some(item) = repo_item {
        report.push(item);
    }
    if options.check {
        if !pending.is_empty() {
            report.push(pending_item(Status::WouldChange, &pending, "would start them again"));
        }
        for plan in &plans {
            report.push(would(plan, &plans, &snapshots, ctx));
        }
        return Ok(report);
    }
    let Some(restic) = restic else {
        // Nothing needed the repository, or it could not be used.
        let started = services::start(&pending, &ctx.state, &mut report);
        if !pending.is_empty() {
            report.push(pending_started(&pending, started));
        }
        for plan in &plans {
            report.push(would(plan, &plans, &snapshots, ctx));
        }
        return Ok(report);
    };
    apply(manifest, &restic, &mut plans, &snapshots, &pending, ctx, options, &mut report);
    if ctx.state.kept_root().exists() {
        report.kept = Some(ctx.state.kept_root());
    }
    Ok(report)
}

/// What the repository gave: its item, the host's snapshots, restic itself (none when
/// the repository cannot be used).
struct Found {
    item: Item,
    snapshots: Vec<Snapshot>,
    restic: Option<Restic>,
}

/// Finds, for each needed path, the newest snapshot of the host that covers it and
/// what it holds there. On a repository error, the repository's item fails and the
/// needed paths point to it.
fn look_up(manifest: &Manifest, ctx: &Ctx, options: &Options, plans: &mut [Plan<'_>], needed: &[usize]) -> Found {
    let failed = |item: Item| Found { item, snapshots: Vec::new(), restic: None };
    let Ok(backup) = backup_section(manifest) else {
        for &i in needed {
            plans[i].decision = Decision::Failed("the manifest has no `backup` section".into());
        }
        return failed(Item {
            id: crate::REPOSITORY_ID.into(),
            kind: "repository".into(),
            status: Status::Failed,
            path: None,
            detail: "the manifest has no `backup` section".into(),
            diff: None,
        });
    };
    let fail = |plans: &mut [Plan<'_>], why: String| {
        for &i in needed {
            plans[i].decision = Decision::Failed("not restored: see data:repository".into());
        }
        repository_item(backup, Status::Failed, why)
    };
    let host = match host_name(manifest) {
        Ok(host) => host,
        Err(e) => return failed(fail(plans, e.to_string())),
    };
    let opened = Restic::open(backup, &ctx.home, options.check).and_then(|r| Ok((r.snapshots()?, r)));
    let (all, restic) = match opened {
        Ok(opened) => opened,
        Err(e) if options.check && e.is_not_installed() => {
            let would = format!("would restore it from the newest snapshot of host {host} that covers it");
            for &i in needed {
                plans[i].decision = Decision::WouldRestoreSomehow(would.clone());
            }
            return failed(repository_item(backup, Status::WouldChange, format!("{e}; then would read it")));
        }
        Err(e) => {
            let hint = match e {
                ResticError::Missing { .. } => ": a restore needs the repository the lost host was backed up to",
                _ => "",
            };
            return failed(fail(plans, format!("{e}{hint}")));
        }
    };
    let snapshots: Vec<Snapshot> = all.iter().filter(|s| s.hostname == host).cloned().collect();
    let description = describe(restic.remote_shown().as_deref(), &host, &all, &snapshots, std::time::SystemTime::now());
    if snapshots.is_empty() {
        return failed(fail(plans, format!("nothing to restore from: {description}")));
    }

    // The newest covering snapshot of each path, then one `ls` per snapshot.
    let mut by_snapshot: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &i in needed {
        let newest = restic::newest_covering(&snapshots, &plans[i].path.path)
            .and_then(|s| snapshots.iter().position(|o| o.id == s.id));
        match newest {
            Some(s) => by_snapshot.entry(s).or_default().push(i),
            None => {
                plans[i].decision =
                    Decision::Skipped(format!("in no snapshot of host {host}: nothing to restore it from"))
            }
        }
    }
    for (s, members) in by_snapshot {
        let asked: Vec<PathBuf> = members.iter().map(|&i| plans[i].path.path.clone()).collect();
        let held = match restic.ls(&snapshots[s].id, &asked) {
            Ok(held) => held,
            Err(e) => {
                for &i in &members {
                    plans[i].decision =
                        Decision::Failed(format!("cannot list snapshot {}: {e}", snapshots[s].short_id));
                }
                continue;
            }
        };
        for i in members {
            let plan = &mut plans[i];
            let short = &snapshots[s].short_id;
            plan.decision = match held.get(&plan.path.path).copied().unwrap_or(InSnapshot::Absent) {
                InSnapshot::Absent => Decision::Skipped(format!(
                    "not in snapshot {short}, the newest of host {host} that covers it: it did not exist when that snapshot was made"
                )),
                InSnapshot::EmptyFolder if plan.local == Local::Empty && !options.force => {
                    Decision::Ok(format!("empty, as in snapshot {short}"))
                }
                _ => Decision::Restore { snapshot: s },
            };
        }
    }
    Found { item: repository_item(backup, Status::Ok, description), snapshots, restic: Some(restic) }
}

/// A path inside another one restored from the same snapshot comes with it.
fn mark_nested(plans: &mut [Plan<'_>]) {
    let restoring: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.decision {
            Decision::Restore { snapshot } => Some((i, snapshot)),
            _ => None,
        })
        .collect();
    for &(i, snapshot) in &restoring {
        let path = &plans[i].path.path;
        // The outermost other path restored from the same snapshot, the first declared
        // when two are the same path.
        let outer = restoring
            .iter()
            .filter(|&&(o, s)| o != i && s == snapshot)
            .filter(|&&(o, _)| {
                let other = &plans[o].path.path;
                within(path, other) && (other != path || o < i)
            })
            .min_by_key(|&&(o, _)| (plans[o].path.path.components().count(), o));
        if let Some(&(outer, _)) = outer {
            plans[i].decision = Decision::With { outer, snapshot };
        }
    }
}

fn of_snapshot(snapshot: &Snapshot) -> String {
    match snapshot.when() {
        Some(when) => format!(
            "snapshot {} of {} ({} old)",
            snapshot.short_id,
            clock::show_time(when),
            clock::show_age(clock::age(when, std::time::SystemTime::now()))
        ),
        None => format!("snapshot {}", snapshot.short_id),
    }
}

fn owners_shown(path: &DataPath) -> String {
    path.owners.iter().map(|o| o.service.as_str()).collect::<Vec<_>>().join(", ")
}

/// The item of a plan that is not applied (`--check`, or nothing to apply).
fn would(plan: &Plan<'_>, plans: &[Plan<'_>], snapshots: &[Snapshot], ctx: &Ctx) -> Item {
    let path = plan.path;
    match &plan.decision {
        Decision::Ok(why) => item(path, Status::Ok, why.clone()),
        Decision::Skipped(why) => item(path, Status::Skipped, why.clone()),
        Decision::Failed(why) => item(path, Status::Failed, why.clone()),
        Decision::Needed => item(path, Status::Failed, "not looked up in the repository"),
        Decision::WouldRestoreSomehow(why) => item(path, Status::WouldChange, why.clone()),
        Decision::Restore { snapshot } => {
            let Some(snapshot) = snapshots.get(*snapshot) else {
                return item(path, Status::Failed, "no snapshot was looked up");
            };
            let mut detail = format!("would restore it from {}", of_snapshot(snapshot));
            if plan.local == Local::Data {
                detail.push_str(&format!(
                    ", over the data there (kept aside first, under {})",
                    tilde(&ctx.state.root().join("kept"), &ctx.home)
                ));
            }
            if !path.owners.is_empty() {
                detail.push_str(&format!(", stopping {} meanwhile if running", owners_shown(path)));
            }
            item(path, Status::WouldChange, detail)
        }
        Decision::With { outer, snapshot } => {
            let short = snapshots.get(*snapshot).map_or("?", |s| s.short_id.as_str());
            item(
                path,
                Status::WouldChange,
                format!("would come back with {} from snapshot {short}", plans[*outer].path.id),
            )
        }
    }
}

fn pending_item(status: Status, units: &[String], detail: &str) -> Item {
    Item {
        id: "data:stopped-services".into(),
        kind: "services".into(),
        status,
        path: None,
        detail: format!("{} stopped by an earlier restore that did not finish: {detail}", units.join(", ")),
        diff: None,
    }
}

fn pending_started(pending: &[String], started: Result<(), String>) -> Item {
    match started {
        Ok(()) => pending_item(Status::Changed, pending, "started again"),
        Err(e) => pending_item(Status::Failed, pending, &e),
    }
}

/// Restores every path planned for it, with the owners stopped around it all.
#[allow(clippy::too_many_arguments)]
fn apply(
    manifest: &Manifest,
    restic: &Restic,
    plans: &mut [Plan<'_>],
    snapshots: &[Snapshot],
    pending: &[String],
    ctx: &Ctx,
    options: &Options,
    report: &mut Report,
) {
    let mut order: Vec<usize> =
        (0..plans.len()).filter(|&i| matches!(plans[i].decision, Decision::Restore { .. })).collect();
    order.sort_by_key(|&i| (plans[i].path.path.components().count(), i));

    // Stop the running owners of everything to restore, in one call.
    let mut units: Vec<String> = Vec::new();
    for &i in &order {
        for unit in plans[i].path.owners.iter().flat_map(|o| &o.units) {
            if !units.contains(unit) {
                units.push(unit.clone());
            }
        }
    }
    let stopped = services::stop(&units, &ctx.state, report);
    let mut outcome: BTreeMap<usize, Result<String, String>> = BTreeMap::new();
    let bar = output::progress(order.len() as u64, "restic restore", options.verbosity);
    for &i in &order {
        let plan = &plans[i];
        bar.set_message(tilde(&plan.path.path, &ctx.home));
        let result = match (&stopped.error, plan.path.owners.is_empty()) {
            (Some(e), false) => Err(format!("not restored: {e}")),
            _ => match plan.decision {
                Decision::Restore { snapshot } => match snapshots.get(snapshot) {
                    Some(snapshot) => {
                        let stays = left_in_place(manifest, &plan.path.path);
                        restore_one(restic, snapshot, &plan.path.path, &stays, &ctx.state, report)
                            .map(|kept| restored(snapshot, kept.as_deref(), &stopped.units, plan.path, ctx))
                    }
                    None => Err("no snapshot was looked up".to_owned()),
                },
                _ => Err("not planned".to_owned()),
            },
        };
        outcome.insert(i, result);
        bar.inc(1);
    }
    bar.finish_and_clear();

    // Start again what was stopped (and what an earlier restore left stopped), even
    // after a failure.
    let mut to_start = stopped.units.clone();
    for unit in pending {
        if !to_start.contains(unit) {
            to_start.push(unit.clone());
        }
    }
    let started = services::start(&to_start, &ctx.state, report);
    if !pending.is_empty() {
        report.push(pending_started(pending, started.clone()));
    }

    for (i, plan) in plans.iter().enumerate() {
        let owned = plan.path.owners.iter().any(|o| o.units.iter().any(|u| stopped.units.contains(u)));
        let finished = |detail: String| match (&started, owned) {
            (Err(e), true) => item(plan.path, Status::Failed, format!("{detail}, but {e}")),
            _ => item(plan.path, Status::Changed, detail),
        };
        let it = match (&plan.decision, outcome.get(&i)) {
            (Decision::Restore { .. }, Some(Err(e))) => item(plan.path, Status::Failed, e.clone()),
            (Decision::Restore { snapshot }, Some(Ok(detail))) => match observe_again(plan, snapshots.get(*snapshot)) {
                Ok(()) => finished(detail.clone()),
                Err(e) => item(plan.path, Status::Failed, e),
            },
            (Decision::With { outer, snapshot }, _) => {
                let with = &plans[*outer].path.id;
                let short = snapshots.get(*snapshot).map_or("?", |s| s.short_id.as_str());
                match (outcome.get(outer), local_state(&plan.path.path)) {
                    (Some(Err(_)), _) => item(plan.path, Status::Failed, format!("not restored, as {with} was not")),
                    (_, Ok(Local::Missing) | Err(_)) => {
                        item(plan.path, Status::Failed, format!("did not come back with {with} from snapshot {short}"))
                    }
                    _ => finished(format!("came back with {with} from snapshot {short}")),
                }
            }
            _ => would(plan, plans, snapshots, ctx),
        };
        report.push(it);
    }
}

/// The detail of a restored path.
fn restored(snapshot: &Snapshot, kept: Option<&Path>, stopped: &[String], path: &DataPath, ctx: &Ctx) -> String {
    let mut detail = format!("restored from {}", of_snapshot(snapshot));
    if let Some(kept) = kept {
        detail.push_str(&format!(", over the data that was there (kept at {})", tilde(kept, &ctx.home)));
    }
    let own: Vec<&str> =
        path.owners.iter().flat_map(|o| &o.units).filter(|u| stopped.contains(u)).map(String::as_str).collect();
    if !own.is_empty() {
        detail.push_str(&format!(", with {} stopped meanwhile", own.join(", ")));
    }
    detail
}

/// Observe again: the path is there, and holds something when the snapshot did.
fn observe_again(plan: &Plan<'_>, snapshot: Option<&Snapshot>) -> Result<(), String> {
    let short = snapshot.map_or("?", |s| s.short_id.as_str());
    match local_state(&plan.path.path) {
        Ok(Local::Missing) => Err(format!("did not converge: still missing after restoring snapshot {short}")),
        Err(e) => Err(format!("cannot read it after restoring: {e}")),
        Ok(_) => Ok(()),
    }
}

/// What a backup of `path` leaves out inside it, as the host is now: other classes
/// (the most specific path wins), the password file, a local repository. A restore
/// over data leaves these where they are.
fn left_in_place(manifest: &Manifest, path: &Path) -> Vec<PathBuf> {
    let never = manifest.backup.as_ref().map(crate::never_in_snapshot).unwrap_or_default();
    paths::backup_set(manifest, &[path], &never).excludes.into_iter().map(|e| e.path).collect()
}

/// restic restores `path` of `snapshot` into a staging folder next to it; what is in
/// place is kept aside (an empty folder is simply replaced), then the restored path is
/// renamed in, and what the backup left out of it (`stays`) is moved back from what
/// was kept. Returns where the old data was kept, if any.
fn restore_one(
    restic: &Restic,
    snapshot: &Snapshot,
    path: &Path,
    stays: &[PathBuf],
    state: &StateDir,
    report: &mut Report,
) -> Result<Option<PathBuf>, String> {
    let parent = path.parent().ok_or_else(|| format!("{} has no parent folder", path.display()))?;
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let stage = tempfile::Builder::new()
        .prefix(".pi-bootstrap-restore.")
        .tempdir_in(parent)
        .map_err(|e| format!("cannot make a staging folder in {}: {e}", parent.display()))?;
    let result = restic.restore(&snapshot.id, stage.path(), path).map_err(|e| e.to_string()).and_then(|command| {
        report.commands.push(command);
        let relative = path.strip_prefix("/").unwrap_or(path);
        swap(&stage.path().join(relative), path, stays, snapshot, state)
    });
    make_removable(stage.path());
    drop(stage);
    result
}

/// Puts `staged` at `path`.
fn swap(
    staged: &Path,
    path: &Path,
    stays: &[PathBuf],
    snapshot: &Snapshot,
    state: &StateDir,
) -> Result<Option<PathBuf>, String> {
    let staged_meta = fs::symlink_metadata(staged)
        .map_err(|_| format!("snapshot {} holds nothing at {}", snapshot.short_id, path.display()))?;
    let here = local_state(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kept = match here {
        Local::Missing => None,
        // rename(2) replaces an empty folder with a folder.
        Local::Empty if staged_meta.is_dir() => None,
        _ => {
            let kept = state.keep(path).map_err(|e| format!("not restored: {e}"))?;
            // A file or link is copied aside; it goes when a folder takes its place.
            let left = fs::symlink_metadata(path).ok();
            if left.is_some_and(|m| !m.is_dir()) && staged_meta.is_dir() {
                fs::remove_file(path).map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
            }
            Some(kept)
        }
    };
    if let Err(e) = fs::rename(staged, path) {
        // Put back what was moved aside.
        if let Some(kept) = &kept
            && fs::symlink_metadata(path).is_err()
        {
            let _ = fs::rename(kept, path);
        }
        return Err(format!("cannot move the restored {} into place: {e}", path.display()));
    }
    if let Some(kept) = &kept {
        move_back(kept, path, stays)?;
    }
    Ok(kept)
}

/// Moves what the backup left out of `path` (`stays`) back from the folder `kept`
/// (where `path` was moved whole) into the restored `path`.
fn move_back(kept: &Path, path: &Path, stays: &[PathBuf]) -> Result<(), String> {
    if !fs::symlink_metadata(kept).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    for stay in stays {
        let Ok(relative) = stay.strip_prefix(path) else { continue };
        let from = kept.join(relative);
        if fs::symlink_metadata(&from).is_err() || fs::symlink_metadata(stay).is_ok() {
            continue;
        }
        if let Some(parent) = stay.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::rename(&from, stay).map_err(|e| format!("cannot move {} back into place: {e}", stay.display()))?;
    }
    Ok(())
}

/// Gives the owner write access to every folder under `dir` (restic restores the
/// snapshot's modes, read-only folders included), so the staging folder can go.
fn make_removable(dir: &Path) {
    let Ok(meta) = fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let mode = meta.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_removable(&entry.path());
        }
    }
}
