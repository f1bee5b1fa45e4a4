//! `bootstrap-data restore` (what `cargo xtask restore` runs as step 6).
//!
//! Observe. Each selected path stands somewhere on this host (`common::durable`):
//!
//! - *settled* (its data is this host's): left alone, said how it was settled; only
//!   when it is missing or an empty folder is it looked up again (unless it was
//!   settled as "nothing to restore");
//! - *not settled*: what is at it is scanned and its origin told apart (what a fresh
//!   host gets, or data), and the snapshot is asked; [`crate::decide`] gives the
//!   verdict: restore, or settle (the same as the snapshot, nothing to restore, or this
//!   host's own data left alone, and said so);
//! - `--force` or `--snapshot ID`: restored from the newest (or that) snapshot whatever
//!   is there, which is kept aside first.
//!
//! The repository is read only when some path needs it: one `restic snapshots`, one
//! `restic ls` per snapshot asked, one `restic ls --recursive` per snapshot for the
//! paths whose files must be compared.
//!
//! Apply, outermost path first, with the running owners stopped around it all (every
//! declared service when something wrote into a path before its data came back): see
//! [`swap`]. The managed blocks of a restored file are applied again on top, the
//! user's own lines intact. Each path is settled in the ledger as soon as it is in
//! place. Then observe again (a path still missing is a failure, never a silent
//! "changed"), start again what was stopped, and start the services that waited for
//! their data (enabled and started; they are in the ledger's `waiting`).

mod apply;
mod plan;
mod report;
mod swap;

use std::path::{Path, PathBuf};

use common::durable::provenance::Provenance;
use common::durable::{self, Ledger, SnapshotRef};
use common::engine::Ctx;
use common::manifest::Manifest;
use common::report::{Item, Report, Status};
use common::step::StepError;

use apply::{Outcome, apply};
use plan::{Decision, Plan, first_look, look_up, mark_nested};
use report::{finished, ledger_item, pending_item, pending_started, would};

use crate::paths;
use crate::record::{self, Seen};
use crate::restic::Snapshot;
use crate::{Options, STEP, backup_section, host_name, services};

/// Restores what the evidence says must come back (every selected path with `--force`
/// or `--snapshot`), settles the rest, and starts the services that waited.
pub fn restore(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    let mut report = Report::new(STEP, options.check);
    // The caller holds the run lock unless --check (`common::step::main`).
    let mut ledger = Ledger::load(&ctx.state, &ctx.home)?;
    if let Some(note) = &ledger.note {
        report.push(ledger_item(note));
    }
    let pending = services::pending(&ctx.state)?;

    let asked = options.force || options.snapshot.is_some();
    let unsettled: Vec<&Path> =
        selected.iter().filter(|p| !ledger.settled.contains_key(&p.path)).map(|p| p.path.as_path()).collect();
    let provenance = Provenance::new(manifest, &ctx.home, &unsettled);
    let mut plans: Vec<Plan<'_>> =
        selected.iter().map(|path| Plan { path, decision: first_look(path, &ledger, &provenance, asked) }).collect();

    let needed: Vec<usize> = (0..plans.len()).filter(|&i| matches!(plans[i].decision, Decision::Needed(_))).collect();
    let (snapshots, restic, all) = if needed.is_empty() {
        (Vec::new(), None, Vec::new())
    } else {
        let found = look_up(manifest, ctx, options, &mut plans, &needed);
        report.push(found.item);
        (found.snapshots, found.restic, found.all)
    };
    mark_nested(&mut plans);

    if options.check {
        if !pending.is_empty() {
            report.push(pending_item(Status::WouldChange, &pending, "would start them again"));
        }
        for plan in &plans {
            report.push(would(plan, &plans, &snapshots, ctx));
        }
        let settled_after = |path: &Path| {
            ledger.settled.contains_key(path)
                || plans.iter().any(|p| {
                    p.path.path == path
                        && matches!(
                            p.decision,
                            Decision::Restore { .. } | Decision::With { .. } | Decision::Settle { .. }
                        )
                })
        };
        services::would_start_waiting(manifest, &ledger, &settled_after, &mut report);
        return Ok(report);
    }

    let mut outcome = Outcome::default();
    if let Some(restic) = &restic {
        outcome = apply(manifest, restic, &plans, &snapshots, ctx, options, &mut ledger, &mut report);
    }
    // Settle what was decided without a restore.
    for plan in &plans {
        if let Decision::Settle { how, snapshot, .. } = &plan.decision {
            ledger.settle(&plan.path.path, *how, snapshots.get(*snapshot).map(snapshot_ref));
        }
    }
    if let Err(e) = ledger.save(&ctx.state) {
        let detail = format!("cannot write down what was settled: {e}");
        report.push(Item::new("data:ledger", "state", Status::Failed, detail).at(ctx.state.file(durable::LEDGER_FILE)));
    }
    // The repository was read: the local record of the backup, with what each path
    // restored came from.
    if restic.is_some()
        && let (Ok(backup), Ok(host)) = (backup_section(manifest), host_name(manifest))
    {
        let restored = restored_from(&plans, &snapshots, &outcome);
        if let Some(failed) = record::write(&ctx.state, manifest, backup, &host, &all, "restore", &restored) {
            report.push(failed);
        }
    }

    // Start again what was stopped (and what an earlier restore left stopped), even
    // after a failure.
    let mut to_start = outcome.stopped.clone();
    for unit in &pending {
        if !to_start.contains(unit) {
            to_start.push(unit.clone());
        }
    }
    let started = services::start(&to_start, &ctx.state, &mut report);
    if !pending.is_empty() {
        report.push(pending_started(&pending, started.clone()));
    }
    for (i, plan) in plans.iter().enumerate() {
        report.push(finished(plan, i, &plans, &snapshots, &outcome, &started, ctx));
    }
    if options.no_start {
        services::leave_waiting(manifest, &ledger, &mut report);
    } else {
        services::start_waiting(manifest, &mut ledger, &ctx.state, &mut report);
    }
    if ctx.state.kept_root().exists() {
        report.kept = Some(ctx.state.kept_root());
    }
    Ok(report)
}

/// Each path restored (or come back with an outer one), with its snapshot.
fn restored_from(plans: &[Plan<'_>], snapshots: &[Snapshot], outcome: &Outcome) -> Vec<(PathBuf, Seen)> {
    let done = |i: usize| matches!(outcome.restored.get(&i), Some(Ok(_)));
    plans
        .iter()
        .enumerate()
        .filter_map(|(i, plan)| {
            let snapshot = match plan.decision {
                Decision::Restore { snapshot, .. } if done(i) => snapshot,
                Decision::With { outer, snapshot } if done(outer) => snapshot,
                _ => return None,
            };
            let there = plan::local_state(&plan.path.path).is_ok_and(|l| l != plan::Local::Missing);
            snapshots.get(snapshot).filter(|_| there).map(|s| (plan.path.path.clone(), Seen::of(s)))
        })
        .collect()
}

pub(super) fn snapshot_ref(snapshot: &Snapshot) -> SnapshotRef {
    SnapshotRef { id: snapshot.short_id.clone(), time: snapshot.time.clone() }
}
