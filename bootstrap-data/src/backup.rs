//! `bootstrap-data backup`: one restic snapshot of every existing `backup`-class path,
//! the repository created when there is none.
//!
//! A path that does not exist is `skipped` (nothing to back up; `status` will say it is
//! in no snapshot). Each path that went into the snapshot is `changed`, with the
//! snapshot's id and what was left out inside it; the repository's item carries the
//! snapshot's totals. `--check` says the same without running restic's backup (it
//! still asks whether the repository exists, read-only).
//!
//! On a host where a path still waits for its restore (`common::durable`: it held
//! nothing of its own when pi-bootstrap first ran here, and no restore has settled it)
//! while a snapshot of this host holds data for it, the backup is refused: its fresh,
//! empty state would become the newest snapshot. The refusal names the paths and the
//! command that settles them (`bootstrap-data restore`); `--force` backs up anyway.
//! Every path a backup took is settled, and the local record of the backup
//! (`crate::record`) is written from one listing of the repository right after the
//! snapshot (a query: not among the report's commands).
//!
//! The restore kit (`~/.local/lib/pi-bootstrap/kit`, `common::install::KIT_DIR`), when
//! it is there, goes into the same snapshot as one more path of restic's (item
//! `kit:restore-kit`; not with `--only`): the bare-machine path of the runbook
//! restores it from there; when it is not there the item is `skipped` and says the
//! snapshot cannot serve that path. It is not a path of the manifest: no ledger entry, no
//! record, no status, and restores, forgets and the audit never ask about it.

use std::path::Path;

use std::collections::BTreeMap;

use common::durable::provenance::Provenance;
use common::durable::{self, How, Ledger, SnapshotRef};
use common::engine::Ctx;
use common::manifest::Manifest;
use common::output;
use common::report::{Item, Report, Status, tilde};
use common::step::StepError;

use crate::capture;
use crate::paths::{self, BackupSet, DataPath, within};
use crate::record;
use crate::restic::{self, BackupOutcome, InSnapshot, Restic, ResticError};
use crate::{Options, STEP, backup_section, clock, host_name, item, never_in_snapshot, repository_item, show_paths};

/// Backs up every selected `backup` path in one snapshot.
pub fn backup(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    let mut report = Report::new(STEP, options.check);
    if selected.is_empty() {
        return Ok(report);
    }
    let backup = backup_section(manifest)?;
    // The caller holds the run lock unless --check (`common::step::main`).
    let mut ledger = Ledger::load(&ctx.state, &ctx.home)?;
    let host = host_name(manifest)?;
    let home = &ctx.home;

    let exists = |p: &DataPath| std::fs::symlink_metadata(&p.path).is_ok();
    let present: Vec<&Path> = selected.iter().filter(|p| exists(p)).map(|p| p.path.as_path()).collect();
    let mut set = paths::backup_set(manifest, &present, &never_in_snapshot(backup));
    // The repository's item, then one item per path in manifest order.
    let finish = |mut report: Report, repo: Item, each: &dyn Fn(&DataPath) -> Item| {
        report.push(repo);
        for path in &selected {
            let it = if exists(path) {
                each(path)
            } else {
                item(path, Status::Skipped, "does not exist: nothing to back up")
            };
            report.push(it);
        }
        Ok(report)
    };
    let not_backed_up = |p: &DataPath| item(p, Status::Failed, "not backed up: see data:repository");
    let would = |p: &DataPath| item(p, Status::WouldChange, would_back_up(&set, p, home));
    let all_paths = paths::data_paths(manifest);

    let restic = match Restic::open(backup, home, options.check) {
        Ok(restic) => restic,
        Err(e) if options.check && e.is_not_installed() => {
            let repo = repository_item(backup, Status::WouldChange, format!("{e}; then would back up to it"));
            return finish(report, repo, &would);
        }
        Err(e) => return finish(report, repository_item(backup, Status::Failed, e.to_string()), &not_backed_up),
    };
    let shown = restic.repository_shown();
    let mut repo = match restic.exists() {
        Ok(true) => repository_item(backup, Status::Ok, restic.remote_shown().unwrap_or_default()),
        Ok(false) if options.check => {
            repository_item(backup, Status::WouldChange, format!("would create a restic repository at {shown}"))
        }
        Ok(false) => match restic.init() {
            Ok(command) => {
                report.commands.push(command);
                repository_item(backup, Status::Changed, format!("created a restic repository at {shown}"))
            }
            Err(e) => return finish(report, repository_item(backup, Status::Failed, e.to_string()), &not_backed_up),
        },
        Err(e) => return finish(report, repository_item(backup, Status::Failed, e.to_string()), &not_backed_up),
    };
    let unsettled: Vec<&Path> =
        selected.iter().filter(|p| !ledger.settled.contains_key(&p.path)).map(|p| p.path.as_path()).collect();
    let provenance = Provenance::new(manifest, home, &unsettled);
    let awaiting: Vec<&DataPath> =
        selected.iter().filter(|p| ledger.standing(&p.path, &provenance).is_awaiting()).collect();
    if !awaiting.is_empty() && !options.force && repo.status == Status::Ok {
        match waiting_for_restore(&restic, &host, &awaiting) {
            Ok(waiting) if !waiting.is_empty() => return Ok(refused(report, repo, &selected, &waiting, home)),
            Ok(_) => {}
            Err(e) => return finish(report, repository_item(backup, Status::Failed, e.to_string()), &not_backed_up),
        }
    }
    let kit = kit_path(home, options);
    if options.check || set.targets.is_empty() {
        let mut report = finish(report, repo, &would)?;
        if options.check && !set.targets.is_empty() {
            match &kit {
                Some(kit) => report.push(kit_item(
                    kit,
                    Status::WouldChange,
                    "would back up the restore kit into the new snapshot",
                )),
                None => {
                    if let Some(item) = no_kit_item(home, options) {
                        report.push(item);
                    }
                }
            }
        }
        return Ok(report);
    }

    // Consistent capture first: online copies of databases, owners stopped.
    let present_paths: Vec<DataPath> = selected.iter().filter(|p| exists(p)).cloned().collect();
    let prepared = capture::prepare(manifest, &present_paths, &all_paths, &mut set, &ctx.state, home, &mut report);
    if !prepared.errors.is_empty() {
        let undone = capture::finish(&prepared, &ctx.state, &mut report).err();
        let why = format!(
            "not backed up: {} could not be captured consistently{}",
            prepared.errors.keys().cloned().collect::<Vec<_>>().join(", "),
            undone.map(|e| format!("; {e}")).unwrap_or_default()
        );
        repo.status = Status::Failed;
        repo.detail = why;
        return finish(report, repo, &|p| match prepared.errors.get(&p.id) {
            Some(e) => item(p, Status::Failed, format!("not backed up: {e}")),
            None => item(p, Status::Skipped, "not backed up: see data:repository"),
        });
    }
    // The kit rides along, unless a target holds it already.
    if let Some(kit) = &kit
        && !set.targets.iter().any(|t| within(kit, t))
    {
        set.targets.push(kit.clone());
    }
    // restic's own "percent done", in thousandths.
    let bar = output::progress_fraction("restic backup", options.verbosity);
    bar.set_message(format!("of {} to {shown}", show_paths(set.targets.iter().map(|t| t.as_path()), home)));
    let result = restic.backup(&host, &set, &mut |done| bar.set_position((done.clamp(0.0, 1.0) * 1000.0) as u64));
    bar.finish_and_clear();
    // The commands in the order they ran: the backup's before the restarts.
    if let Ok((_, command)) = &result {
        report.commands.push(command.clone());
    }
    let undone = capture::finish(&prepared, &ctx.state, &mut report).err();
    let with_notes = |mut it: Item, p: &DataPath| {
        if let Some(notes) = prepared.notes.get(&p.id) {
            it.detail = format!("{}, {}", it.detail, notes.join(", "));
        }
        if let Some(e) = &undone
            && p.capture == common::manifest::Capture::Stop
            && !p.owners.is_empty()
        {
            it.status = Status::Failed;
            it.detail = format!("{}, but {e}", it.detail);
        }
        it
    };
    match result {
        Ok((outcome, _)) => {
            let taken = SnapshotRef { id: outcome.snapshot.clone(), time: durable::now_text() };
            let newly: Vec<&DataPath> =
                selected.iter().filter(|p| exists(p) && !ledger.settled.contains_key(&p.path)).collect();
            for path in newly {
                ledger.settle(&path.path, How::BackedUp, Some(taken.clone()));
            }
            if let Err(e) = ledger.save(&ctx.state) {
                repo.status = Status::Failed;
                repo.detail = format!("{}; but cannot write down what it backed up: {e}", repo.detail);
            }
            let sep = if repo.detail.is_empty() { "" } else { "; " };
            repo.detail =
                format!("{}{sep}snapshot {} of host {host}: {}", repo.detail, outcome.snapshot, totals(&outcome));
            // The local record of the backup, from the repository as the snapshot left
            // it (restic's own id and time of it); status and the audit read it.
            let recorded = match restic.snapshots() {
                Ok(all) => record::write(&ctx.state, manifest, backup, &host, &all, "backup", &[]),
                Err(e) => {
                    // What the record says is no longer the newest: status asks instead.
                    repo.detail.push_str(&format!(
                        "; the snapshots cannot be listed for the local record ({e}): status asks the repository until the next backup"
                    ));
                    record::forget(&ctx.state)
                }
            };
            let mut report = finish(report, repo, &|p| with_notes(backed_up(&set, p, &outcome, home), p))?;
            match &kit {
                Some(kit) => report.push(kit_item(kit, Status::Changed, format!("in snapshot {}", outcome.snapshot))),
                None => {
                    if let Some(item) = no_kit_item(home, options) {
                        report.push(item);
                    }
                }
            }
            if let Some(failed) = recorded {
                report.push(failed);
            }
            Ok(report)
        }
        Err(e) => {
            finish(report, repository_item(backup, Status::Failed, e.to_string()), &|p| with_notes(not_backed_up(p), p))
        }
    }
}

/// The restore kit's folder when it is there and the whole backup was asked for.
fn kit_path(home: &Path, options: &Options) -> Option<std::path::PathBuf> {
    let kit = common::install::kit_dir(home);
    (options.only.is_empty() && kit.join(common::install::KIT_FILE).is_file()).then_some(kit)
}

/// Without a restore kit in place (and the whole backup asked for): the snapshot holds
/// none, so the runbook's bare-machine path cannot restore from it; said, not failed
/// (a host restored with cargo does not need it).
fn no_kit_item(home: &Path, options: &Options) -> Option<Item> {
    let kit = common::install::kit_dir(home);
    options.only.is_empty().then(|| {
        kit_item(
            &kit,
            Status::Skipped,
            format!(
                "no restore kit at {}: this snapshot cannot restore a machine without a Rust toolchain (the runbook's bare-machine path); run `cargo xtask kit` once, and every backup after takes it",
                common::report::tilde(&kit.join(common::install::KIT_FILE), home)
            ),
        )
    })
}

/// The item of the restore kit.
fn kit_item(kit: &Path, status: Status, detail: impl Into<String>) -> Item {
    Item::new(KIT_ID, "kit", status, detail).at(kit.to_path_buf())
}

/// The id of the restore kit's item.
pub const KIT_ID: &str = "kit:restore-kit";

/// The awaiting paths that a snapshot of `host` holds data for, with that snapshot
/// (restic's short id and time): their restore is still due on this host.
fn waiting_for_restore(
    restic: &Restic,
    host: &str,
    awaiting: &[&DataPath],
) -> Result<Vec<(DataPath, String)>, ResticError> {
    let snapshots: Vec<restic::Snapshot> = restic.snapshots()?.into_iter().filter(|s| s.hostname == host).collect();
    let mut by_snapshot: BTreeMap<usize, Vec<&DataPath>> = BTreeMap::new();
    for path in awaiting {
        if let Some(s) =
            restic::newest_covering(&snapshots, &path.path).and_then(|s| snapshots.iter().position(|o| o.id == s.id))
        {
            by_snapshot.entry(s).or_default().push(path);
        }
    }
    let mut waiting = Vec::new();
    for (s, members) in by_snapshot {
        let snapshot = &snapshots[s];
        let asked: Vec<std::path::PathBuf> = members.iter().map(|p| p.path.clone()).collect();
        let held = restic.ls(&snapshot.id, &asked)?;
        for path in members {
            if held.get(&path.path) == Some(&InSnapshot::Data) {
                let when = snapshot.when().map(|t| format!(" of {}", clock::show_time(t))).unwrap_or_default();
                waiting.push(((*path).clone(), format!("snapshot {}{when}", snapshot.short_id)));
            }
        }
    }
    Ok(waiting)
}

/// The report of a refused backup.
fn refused(
    mut report: Report,
    repo: Item,
    selected: &[DataPath],
    waiting: &[(DataPath, String)],
    home: &Path,
) -> Report {
    report.push(repo);
    let names: Vec<String> = waiting.iter().map(|(p, _)| tilde(&p.path, home)).collect();
    for path in selected {
        let it = match waiting.iter().find(|(p, _)| p.id == path.id) {
            Some((_, snapshot)) => item(
                path,
                Status::Failed,
                format!(
                    "waits for its restore: {snapshot} holds data for it, and this host has not restored it yet; \
                     a backup now would make this host's fresh state the newest snapshot. \
                     `bootstrap-data restore` settles it; `bootstrap-data backup --force` backs up what is here anyway"
                ),
            ),
            None => item(
                path,
                Status::Skipped,
                format!("not backed up: the backup waits for the restore of {}", names.join(", ")),
            ),
        };
        report.push(it);
    }
    report
}

fn totals(outcome: &BackupOutcome) -> String {
    let files = outcome.files_new + outcome.files_changed + outcome.files_unmodified;
    format!(
        "{files} files ({} new, {} changed), {} added",
        outcome.files_new,
        outcome.files_changed,
        clock::show_bytes(outcome.data_added)
    )
}

/// What is left out inside `path`, for its detail.
fn left_out(set: &BackupSet, path: &DataPath, home: &Path) -> String {
    let inside: Vec<String> = set
        .excludes
        .iter()
        .filter(|e| within(&e.path, &path.path) && e.why != capture::JOURNAL)
        .map(|e| format!("{} ({})", tilde(&e.path, home), e.why))
        .collect();
    if inside.is_empty() { String::new() } else { format!(", without {}", inside.join(", ")) }
}

fn would_back_up(set: &BackupSet, path: &DataPath, home: &Path) -> String {
    format!("would back up into a new snapshot{}", left_out(set, path, home))
}

fn backed_up(set: &BackupSet, path: &DataPath, outcome: &BackupOutcome, home: &Path) -> Item {
    let unreadable: Vec<String> = outcome
        .unreadable
        .iter()
        .filter(|(file, _)| file.as_os_str().is_empty() || within(file, &path.path))
        .map(
            |(file, why)| {
                if file.as_os_str().is_empty() { why.clone() } else { format!("{}: {why}", tilde(file, home)) }
            },
        )
        .collect();
    let detail = format!("in snapshot {}{}", outcome.snapshot, left_out(set, path, home));
    if unreadable.is_empty() {
        item(path, Status::Changed, detail)
    } else {
        item(path, Status::Failed, format!("{detail}, but restic could not read {}", unreadable.join("; ")))
    }
}
