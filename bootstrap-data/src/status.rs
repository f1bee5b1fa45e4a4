//! `bootstrap-data status`, and the same check for the audit: per `backup` path, the
//! newest snapshot of this host that covers it and its age against `max_age`.
//!
//! Fresh enough is `ok`; older than `max_age`, in no snapshot at all, or still waiting
//! for its restore on this host (see `common::durable`: the backup holds its data, this
//! host does not yet) is `drift` (exit 1).
//!
//! The answer comes from the local record of the backup ([`crate::record`]), which
//! `backup`, `restore`, `verify` and `forget` write from the repository as they leave
//! it: no restic at all. The repository is asked instead (one `restic snapshots`,
//! read-only: `--no-lock`, `--no-cache`, so it changes nothing, not even restic's
//! cache) when there is no record, when it cannot be read, is of another machine, host
//! name or repository, or does not know a path the manifest declares now, and with
//! `--deep`. Every item says which: "from the local record of TIME" or "asked the
//! repository". What the record cannot know, a snapshot made by anything else since it
//! was written (another tool, another host name) or one forgotten by hand, shows only
//! with `--deep`. A repository that cannot be read is a failed `data:repository` item,
//! and the paths are then `skipped` (not checked).

use std::path::Path;
use std::time::SystemTime;

use common::durable::provenance::Provenance;
use common::durable::{self, Ledger};
use common::engine::Ctx;
use common::manifest::{Backup, Manifest};
use common::report::{Item, Report, Status};
use common::state::StateDir;
use common::step::StepError;

use crate::paths::{self, DataPath};
use crate::record::{self, Record, Seen};
use crate::restic::{self, Restic, ResticError, Snapshot};
use crate::{Options, STEP, clock, host_name, item, repository_item};

/// The status of the selected paths (`--only`), as the binary reports it.
pub fn status(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    Ok(check(manifest, &selected, &ctx.home, SystemTime::now(), options.deep))
}

/// The status of every `backup` path at `now`: for the audit; `deep` asks the
/// repository even when the local record answers. Never fails: what cannot be read is
/// a failed item.
pub fn status_report(manifest: &Manifest, home: &Path, now: SystemTime, deep: bool) -> Report {
    check(manifest, &paths::data_paths(manifest), home, now, deep)
}

/// Where the answer came from, as the items say it.
enum Source {
    /// The local record (its "from the local record of TIME").
    Record(String),
    /// The repository, and why it was asked.
    Asked(String),
}

impl Source {
    /// The end of a path's detail; a drift from the record says how to ask the
    /// repository.
    fn of_path(&self, status: Status) -> String {
        match self {
            Source::Record(from) if status == Status::Drift => {
                format!("; {from} (bootstrap-data status --deep asks the repository)")
            }
            Source::Record(from) => format!("; {from}"),
            Source::Asked(_) => "; asked the repository".to_owned(),
        }
    }
}

fn check(manifest: &Manifest, selected: &[DataPath], home: &Path, now: SystemTime, deep: bool) -> Report {
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
    let state = StateDir::new(home);
    let asked: Vec<&Path> = selected.iter().map(|p| p.path.as_path()).collect();
    let answer = match record::usable(&state, backup, &host, &asked, deep) {
        // The record needs no restic; the password file is checked all the same (what
        // a backup would refuse).
        Ok(record) => Restic::check_password(backup, home).map(|()| {
            let from = record.source();
            (record, Source::Record(from))
        }),
        Err(why) => ask(manifest, backup, &host, home).map(|view| (view, Source::Asked(why.describe(home)))),
    };
    let (view, source) = match answer {
        Ok(answer) => answer,
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
    let shown = restic::remote_shown(&backup.repository.value);
    let others: Vec<&str> = view.other_hosts.iter().map(String::as_str).collect();
    let mut repository = describe_counts(shown.as_deref(), &host, view.snapshots, view.newest.as_ref(), &others, now);
    match &source {
        Source::Record(from) => repository
            .push_str(&format!("; {from}, which bootstrap-data {} wrote (--deep asks the repository)", view.by)),
        Source::Asked(why) => repository.push_str(&format!("; asked the repository ({why})")),
    }
    report.push(repository_item(backup, Status::Ok, repository));
    let max_age = backup.max_age.0;
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
    let mut push = |path: &DataPath, status: Status, detail: String| {
        let detail = format!("{detail}{}", source.of_path(status));
        report.push(item(path, status, detail));
    };
    for path in selected {
        let newest = view.newest_of(&path.path);
        if ledger.as_ref().is_some_and(|l| l.standing(&path.path, &provenance).is_awaiting())
            && let Some(newest) = newest
        {
            let detail = format!(
                "waits for its restore: not restored on this host yet, while snapshot {} may hold its data (bootstrap-data restore settles it)",
                newest.short_id
            );
            push(path, Status::Drift, detail);
            continue;
        }
        let Some(newest) = newest else {
            push(path, Status::Drift, format!("in no snapshot of host {host}"));
            continue;
        };
        let Some(when) = newest.when() else {
            let detail = format!("snapshot {} has a time this cannot read: {:?}", newest.short_id, newest.time);
            push(path, Status::Drift, detail);
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
            push(path, Status::Drift, detail);
        } else {
            push(path, Status::Ok, format!("{of}, {} old", clock::show_age(age)));
        }
    }
    report
}

/// The repository asked: one `restic snapshots`, read into a record that is not
/// written (status writes nothing).
fn ask(manifest: &Manifest, backup: &Backup, host: &str, home: &Path) -> Result<Record, ResticError> {
    let all = Restic::open(backup, home, true)?.snapshots()?;
    Ok(Record::from_listing(manifest, backup, host, &all, "status", None))
}

/// The repository's line from a listing: how many snapshots of this host, the newest;
/// the other hosts when there is none of this one (a host renamed?). `shown` is the
/// repository when it is not a local folder (a local one is the item's path already).
pub(crate) fn describe(
    shown: Option<&str>,
    host: &str,
    all: &[Snapshot],
    mine: &[Snapshot],
    now: SystemTime,
) -> String {
    let newest = mine.iter().filter_map(|s| Some((s.when()?, s))).max_by_key(|(when, _)| *when).map(|(_, s)| s);
    let mut others: Vec<&str> = all.iter().map(|s| s.hostname.as_str()).filter(|h| *h != host).collect();
    others.sort_unstable();
    others.dedup();
    describe_counts(shown, host, mine.len(), newest.map(Seen::of).as_ref(), &others, now)
}

/// The repository's line from what is known of it: `count` snapshots of `host`, the
/// `newest`, and the `others` hosts of the repository.
fn describe_counts(
    shown: Option<&str>,
    host: &str,
    count: usize,
    newest: Option<&Seen>,
    others: &[&str],
    now: SystemTime,
) -> String {
    let shown = shown.map(|s| format!("{s}: ")).unwrap_or_default();
    match newest.and_then(|s| Some((s.when()?, s))) {
        Some((when, snapshot)) => format!(
            "{shown}{count} snapshot{} of host {host}, the newest {} of {} ({} old)",
            if count == 1 { "" } else { "s" },
            snapshot.short_id,
            clock::show_time(when),
            clock::show_age(clock::age(when, now))
        ),
        None if others.is_empty() => format!("{shown}no snapshot yet"),
        None => format!(
            "{shown}no snapshot of host {host} (it has snapshots of {}: set `host:` in the manifest to the name the backups were made with)",
            others.join(", ")
        ),
    }
}
