//! `bootstrap-data status`, and the same check for the audit: per `backup` path, the
//! newest snapshot of this host that covers it and its age against `max_age`.
//!
//! Fresh enough is `ok`; older than `max_age`, in no snapshot at all, or still waiting
//! for its restore on this host (see `common::durable`: the backup holds its data, this
//! host does not yet) is `drift` (exit 1). A repository that cannot be read is a failed `data:repository` item, and
//! the paths are then `skipped` (not checked). One `restic snapshots` call, read-only
//! (`--no-lock`, `--no-cache`): it changes nothing, not even restic's cache.

use std::path::Path;
use std::time::SystemTime;

use common::durable::provenance::Provenance;
use common::durable::{self, Ledger};
use common::engine::Ctx;
use common::manifest::Manifest;
use common::report::{Item, Report, Status};
use common::state::StateDir;
use common::step::StepError;

use crate::paths::{self, DataPath};
use crate::restic::{self, Restic, ResticError, Snapshot};
use crate::{Options, STEP, clock, host_name, item, repository_item};

/// The status of the selected paths (`--only`), as the binary reports it.
pub fn status(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    Ok(check(manifest, &selected, &ctx.home, SystemTime::now()))
}

/// The status of every `backup` path at `now`: for the audit. Never fails: what
/// cannot be read is a failed item.
pub fn status_report(manifest: &Manifest, home: &Path, now: SystemTime) -> Report {
    check(manifest, &paths::data_paths(manifest), home, now)
}

fn check(manifest: &Manifest, selected: &[DataPath], home: &Path, now: SystemTime) -> Report {
    let mut report = Report::new(STEP, true);
    let Some(backup) = &manifest.backup else { return report };
    if selected.is_empty() {
        return report;
    }
    let not_checked = |report: &mut Report| {
        for path in selected {
            report.push(item(path, Status::Skipped, "not checked: see data:repository"));
        }
    };
    let host = match host_name(manifest) {
        Ok(host) => host,
        Err(e) => {
            report.push(repository_item(backup, Status::Failed, e.to_string()));
            not_checked(&mut report);
            return report;
        }
    };
    let listed = Restic::open(backup, home, true).and_then(|r| Ok((r.snapshots()?, r.remote_shown())));
    let (all, shown) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            let hint = match e {
                ResticError::Missing { .. } => ": `bootstrap-data backup` creates it",
                _ => "",
            };
            report.push(repository_item(backup, Status::Failed, format!("{e}{hint}")));
            not_checked(&mut report);
            return report;
        }
    };
    let snapshots: Vec<Snapshot> = all.iter().filter(|s| s.hostname == host).cloned().collect();
    report.push(repository_item(backup, Status::Ok, describe(shown.as_deref(), &host, &all, &snapshots, now)));
    let max_age = backup.max_age.0;
    let state = StateDir::new(home);
    let ledger = match Ledger::load(&state, home) {
        Ok(ledger) => Some(ledger),
        Err(e) => {
            report.push(
                Item::new("data:ledger", "state", Status::Failed, e.to_string()).at(state.file(durable::LEDGER_FILE)),
            );
            None
        }
    };
    let unsettled: Vec<&Path> = selected
        .iter()
        .filter(|p| ledger.as_ref().is_some_and(|l| !l.settled.contains_key(&p.path)))
        .map(|p| p.path.as_path())
        .collect();
    let provenance = Provenance::new(manifest, home, &unsettled);
    for path in selected {
        if ledger.as_ref().is_some_and(|l| l.standing(&path.path, &provenance).is_awaiting())
            && let Some(newest) = restic::newest_covering(&snapshots, &path.path)
        {
            let detail = format!(
                "waits for its restore: not restored on this host yet, while snapshot {} may hold its data (bootstrap-data restore settles it)",
                newest.short_id
            );
            report.push(item(path, Status::Drift, detail));
            continue;
        }
        let Some(newest) = restic::newest_covering(&snapshots, &path.path) else {
            report.push(item(path, Status::Drift, format!("in no snapshot of host {host}")));
            continue;
        };
        let Some(when) = newest.when() else {
            report.push(item(
                path,
                Status::Drift,
                format!("snapshot {} has a time this cannot read: {:?}", newest.short_id, newest.time),
            ));
            continue;
        };
        let age = clock::age(when, now);
        let of = format!("snapshot {} of {}", newest.short_id, clock::show_time(when));
        if age > max_age {
            let detail = format!(
                "stale: the newest, {of}, is {} old, more than the {} allowed",
                clock::show_age(age),
                clock::show_age(max_age)
            );
            report.push(item(path, Status::Drift, detail));
        } else {
            report.push(item(path, Status::Ok, format!("{of}, {} old", clock::show_age(age))));
        }
    }
    report
}

/// The repository's line: how many snapshots of this host, the newest; the other
/// hosts when there is none of this one (a host renamed?). `shown` is the repository
/// when it is not a local folder (a local one is the item's path already).
pub(crate) fn describe(
    shown: Option<&str>,
    host: &str,
    all: &[Snapshot],
    mine: &[Snapshot],
    now: SystemTime,
) -> String {
    let shown = shown.map(|s| format!("{s}: ")).unwrap_or_default();
    let newest = mine.iter().filter_map(|s| Some((s.when()?, s))).max_by_key(|(when, _)| *when);
    match newest {
        Some((when, snapshot)) => format!(
            "{shown}{} snapshot{} of host {host}, the newest {} of {} ({} old)",
            mine.len(),
            if mine.len() == 1 { "" } else { "s" },
            snapshot.short_id,
            clock::show_time(when),
            clock::show_age(clock::age(when, now))
        ),
        None => {
            let mut others: Vec<&str> = all.iter().map(|s| s.hostname.as_str()).collect();
            others.sort_unstable();
            others.dedup();
            if others.is_empty() {
                format!("{shown}no snapshot yet")
            } else {
                format!(
                    "{shown}no snapshot of host {host} (it has snapshots of {}: set `host:` in the manifest to the name the backups were made with)",
                    others.join(", ")
                )
            }
        }
    }
}
