//! `bootstrap-data backup`: one restic snapshot of every existing `backup`-class path,
//! the repository created when there is none.
//!
//! A path that does not exist is `skipped` (nothing to back up; `status` will say it is
//! in no snapshot). Each path that went into the snapshot is `changed`, with the
//! snapshot's id and what was left out inside it; the repository's item carries the
//! snapshot's totals. `--check` says the same without running restic's backup (it
//! still asks whether the repository exists, read-only).

use std::path::Path;

use common::cli::Failure;
use common::engine::Ctx;
use common::manifest::Manifest;
use common::output;
use common::report::{Item, Report, Status, tilde};

use crate::paths::{self, BackupSet, DataPath, within};
use crate::restic::{BackupOutcome, Restic};
use crate::{Options, STEP, backup_section, clock, host_name, item, never_in_snapshot, repository_item, show_paths};

/// Backs up every selected `backup` path in one snapshot.
pub fn backup(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, Failure> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    let mut report = Report::new(STEP, options.check);
    if selected.is_empty() {
        return Ok(report);
    }
    let backup = backup_section(manifest)?;
    let _lock = if options.check { None } else { Some(ctx.state.lock()?) };
    let host = host_name(manifest)?;
    let home = &ctx.home;

    let exists = |p: &DataPath| std::fs::symlink_metadata(&p.path).is_ok();
    let present: Vec<&Path> = selected.iter().filter(|p| exists(p)).map(|p| p.path.as_path()).collect();
    let set = paths::backup_set(manifest, &present, &never_in_snapshot(backup));
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
    if options.check || set.targets.is_empty() {
        return finish(report, repo, &would);
    }

    // restic's own "percent done", in thousandths.
    let bar = output::progress_fraction("restic backup", options.verbosity);
    bar.set_message(format!("of {} to {shown}", show_paths(set.targets.iter().map(|t| t.as_path()), home)));
    let result = restic.backup(&host, &set, &mut |done| bar.set_position((done.clamp(0.0, 1.0) * 1000.0) as u64));
    bar.finish_and_clear();
    match result {
        Ok((outcome, command)) => {
            report.commands.push(command);
            let sep = if repo.detail.is_empty() { "" } else { "; " };
            repo.detail =
                format!("{}{sep}snapshot {} of host {host}: {}", repo.detail, outcome.snapshot, totals(&outcome));
            finish(report, repo, &|p| backed_up(&set, p, &outcome, home))
        }
        Err(e) => finish(report, repository_item(backup, Status::Failed, e.to_string()), &not_backed_up),
    }
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
        .filter(|e| within(&e.path, &path.path))
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
