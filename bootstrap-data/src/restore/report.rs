//! What the restore says of each path: what it would do (`--check`, or nothing to
//! apply), what it did, and the services an earlier restore left stopped.

use std::time::SystemTime;

use common::engine::Ctx;
use common::report::{Item, Status, tilde};

use super::apply::Outcome;
use super::plan::{Decision, Local, Plan, local_state};
use crate::decide::Why;
use crate::paths::DataPath;
use crate::restic::Snapshot;
use crate::{clock, item};

pub(super) fn ledger_item(note: &str) -> Item {
    Item::new("data:ledger", "state", Status::Ok, note)
}

pub(super) fn of_snapshot(snapshot: &Snapshot) -> String {
    match snapshot.when() {
        Some(when) => format!(
            "snapshot {} of {} ({} old)",
            snapshot.short_id,
            clock::show_time(when),
            clock::show_age(clock::age(when, SystemTime::now()))
        ),
        None => format!("snapshot {}", snapshot.short_id),
    }
}

pub(super) fn owners_shown(path: &DataPath) -> String {
    path.owners.iter().map(|o| o.service.as_str()).collect::<Vec<_>>().join(", ")
}

/// Why a path is restored, as the start of its detail.
pub(super) fn why_shown(why: &Why) -> String {
    match why {
        Why::Missing | Why::Asked => String::new(),
        // `what` says "only ..." itself ("only empty folders", "only what a fresh host gets").
        Why::Fresh(what) => format!("held only {}: ", what.strip_prefix("only ").unwrap_or(what)),
        Why::WrittenHere { since } => format!(
            "held only what was written on this host since pi-bootstrap first ran here ({}), before its data came back: ",
            clock::show_time(*since)
        ),
    }
}

/// The item of a plan that is not applied (`--check`, or nothing to apply).
pub(super) fn would(plan: &Plan<'_>, plans: &[Plan<'_>], snapshots: &[Snapshot], ctx: &Ctx) -> Item {
    let path = plan.path;
    match &plan.decision {
        Decision::Ok(why) => item(path, Status::Ok, why.clone()),
        Decision::Skipped(why) => item(path, Status::Skipped, why.clone()),
        Decision::Failed(why) => item(path, Status::Failed, why.clone()),
        Decision::Settle { status, detail, .. } => item(path, *status, detail.clone()),
        Decision::Needed(_) => item(path, Status::Failed, "not looked up in the repository"),
        Decision::WouldRestoreSomehow(why) => item(path, Status::WouldChange, why.clone()),
        Decision::Restore { snapshot, why } => {
            let Some(snapshot) = snapshots.get(*snapshot) else {
                return item(path, Status::Failed, "no snapshot was looked up");
            };
            let mut detail = format!("{}would restore it from {}", why_shown(why), of_snapshot(snapshot));
            if matches!(why, Why::Asked | Why::WrittenHere { .. } | Why::Fresh(_))
                && local_state(&path.path).is_ok_and(|l| l == Local::Data)
            {
                detail.push_str(&format!(
                    ", keeping what is there aside first (under {})",
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

pub(super) fn pending_item(status: Status, units: &[String], detail: &str) -> Item {
    let detail = format!("{} stopped by an earlier restore that did not finish: {detail}", units.join(", "));
    Item::new("data:stopped-services", "services", status, detail)
}

pub(super) fn pending_started(pending: &[String], started: Result<(), String>) -> Item {
    match started {
        Ok(()) => pending_item(Status::Changed, pending, "started again"),
        Err(e) => pending_item(Status::Failed, pending, &e),
    }
}

/// The item of one plan after applying.
pub(super) fn finished(
    plan: &Plan<'_>,
    i: usize,
    plans: &[Plan<'_>],
    snapshots: &[Snapshot],
    outcome: &Outcome,
    started: &Result<(), String>,
    ctx: &Ctx,
) -> Item {
    let owned = plan.path.owners.iter().any(|o| o.units.iter().any(|u| outcome.stopped.contains(u)));
    let done = |detail: String| match (started, owned) {
        (Err(e), true) => item(plan.path, Status::Failed, format!("{detail}, but {e}")),
        _ => item(plan.path, Status::Changed, detail),
    };
    match (&plan.decision, outcome.restored.get(&i)) {
        (Decision::Restore { .. }, Some(Err(e))) => item(plan.path, Status::Failed, e.clone()),
        (Decision::Restore { snapshot, .. }, Some(Ok(detail))) => match local_state(&plan.path.path) {
            Ok(Local::Missing) => {
                let short = snapshots.get(*snapshot).map_or("?", |s| s.short_id.as_str());
                item(
                    plan.path,
                    Status::Failed,
                    format!("did not converge: still missing after restoring snapshot {short}"),
                )
            }
            Err(e) => item(plan.path, Status::Failed, format!("cannot read it after restoring: {e}")),
            Ok(_) => done(detail.clone()),
        },
        (Decision::With { outer, snapshot }, _) => {
            let with = &plans[*outer].path.id;
            let short = snapshots.get(*snapshot).map_or("?", |s| s.short_id.as_str());
            match (outcome.restored.get(outer), local_state(&plan.path.path)) {
                (Some(Err(_)) | None, _) => item(plan.path, Status::Failed, format!("not restored, as {with} was not")),
                (_, Ok(Local::Missing) | Err(_)) => {
                    item(plan.path, Status::Failed, format!("did not come back with {with} from snapshot {short}"))
                }
                _ => done(format!("came back with {with} from snapshot {short}")),
            }
        }
        _ => would(plan, plans, snapshots, ctx),
    }
}
