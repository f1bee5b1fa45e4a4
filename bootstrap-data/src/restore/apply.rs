//! The restore applied: the owners stopped around it all, each path restored in its
//! turn (see [`super::swap`]) with its managed blocks applied again on top, and settled
//! in the ledger as soon as it is in place.

use std::collections::BTreeMap;

use common::durable::{How, Ledger};
use common::engine::{self, Ctx};
use common::manifest::Manifest;
use common::output;
use common::report::{Report, Status, tilde};

use super::plan::{Decision, Local, Plan, local_state};
use super::report::{of_snapshot, why_shown};
use super::{snapshot_ref, swap};
use crate::decide::Why;
use crate::paths::{DataPath, within};
use crate::restic::{Restic, Snapshot};
use crate::{Options, services};

/// What applying did.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    /// The units stopped, to start again.
    pub(super) stopped: Vec<String>,
    /// Per restored plan: its detail, or why it failed.
    pub(super) restored: BTreeMap<usize, Result<String, String>>,
}

/// Restores every path planned for it, with the owners stopped around it all, settling
/// each in the ledger as soon as it is in place.
#[allow(clippy::too_many_arguments)]
pub(super) fn apply(
    manifest: &Manifest,
    restic: &Restic,
    plans: &[Plan<'_>],
    snapshots: &[Snapshot],
    ctx: &Ctx,
    options: &Options,
    ledger: &mut Ledger,
    report: &mut Report,
) -> Outcome {
    let mut order: Vec<usize> =
        (0..plans.len()).filter(|&i| matches!(plans[i].decision, Decision::Restore { .. })).collect();
    order.sort_by_key(|&i| (plans[i].path.path.components().count(), i));
    if order.is_empty() {
        return Outcome::default();
    }

    // Stop the running owners of everything to restore, in one call; every declared
    // service when something already wrote into a path before its data came back (it
    // may not be declared as an owner, and holds what it wrote in memory).
    let someone_wrote =
        order.iter().any(|&i| matches!(plans[i].decision, Decision::Restore { why: Why::WrittenHere { .. }, .. }));
    let mut units: Vec<String> = Vec::new();
    let owners = order.iter().flat_map(|&i| plans[i].path.owners.iter().flat_map(|o| o.units.iter().cloned()));
    let everyone = manifest.services.iter().filter(|_| someone_wrote).flat_map(|s| s.unit_names());
    for unit in owners.chain(everyone) {
        if !units.contains(&unit) {
            units.push(unit);
        }
    }
    let stopped = services::stop(&units, &ctx.state, report);
    let mut outcome = Outcome { stopped: stopped.units.clone(), restored: BTreeMap::new() };
    let bar = output::progress(order.len() as u64, "restic restore", options.verbosity);
    for &i in &order {
        let plan = &plans[i];
        bar.set_message(tilde(&plan.path.path, &ctx.home));
        let result = match (&stopped.error, plan.path.owners.is_empty() && !someone_wrote, &plan.decision) {
            (Some(e), false, _) => Err(format!("not restored: {e}")),
            (_, _, Decision::Restore { snapshot, why }) => match snapshots.get(*snapshot) {
                Some(snapshot) => {
                    restore_and_settle(manifest, restic, snapshot, why, plan.path, &stopped.units, ctx, ledger, report)
                }
                None => Err("no snapshot was looked up".to_owned()),
            },
            _ => Err("not planned".to_owned()),
        };
        outcome.restored.insert(i, result);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // What came with an outer path is settled with it.
    for (i, plan) in plans.iter().enumerate() {
        if let Decision::With { outer, snapshot } = plan.decision
            && matches!(outcome.restored.get(&outer), Some(Ok(_)))
            && local_state(&plan.path.path).is_ok_and(|l| l != Local::Missing)
            && let Some(snapshot) = snapshots.get(snapshot)
        {
            ledger.settle(&plans[i].path.path, How::Restored, Some(snapshot_ref(snapshot)));
        }
    }
    outcome
}

/// Restores one path, applies the managed blocks inside it again, and settles it.
#[allow(clippy::too_many_arguments)]
pub(super) fn restore_and_settle(
    manifest: &Manifest,
    restic: &Restic,
    snapshot: &Snapshot,
    why: &Why,
    path: &DataPath,
    stopped: &[String],
    ctx: &Ctx,
    ledger: &mut Ledger,
    report: &mut Report,
) -> Result<String, String> {
    let stays = swap::Stays {
        left_out: swap::left_in_place(manifest, &path.path),
        env_files: swap::env_files_in_place(manifest, &path.path),
    };
    let kept =
        swap::restore_one(restic, snapshot, &path.path, &stays, &ctx.state, report).map_err(|e| e.to_string())?;
    let mut detail = format!("{}restored from {}", why_shown(why), of_snapshot(snapshot));
    if let Some(kept) = kept {
        detail.push_str(&format!(", over what was there (kept at {})", tilde(&kept, &ctx.home)));
    }
    if !stays.env_files.is_empty() {
        detail.push_str(&format!(
            ", with the env file{} in place kept as {} ({})",
            if stays.env_files.len() == 1 { "" } else { "s" },
            if stays.env_files.len() == 1 { "it was" } else { "they were" },
            stays.env_files.iter().map(|e| tilde(e, &ctx.home)).collect::<Vec<_>>().join(", ")
        ));
    }
    let own: Vec<&str> =
        path.owners.iter().flat_map(|o| &o.units).filter(|u| stopped.contains(u)).map(String::as_str).collect();
    let others: Vec<&str> = stopped.iter().filter(|u| !own.contains(&u.as_str())).map(String::as_str).collect();
    if !own.is_empty() {
        detail.push_str(&format!(", with {} stopped meanwhile", own.join(", ")));
    }
    if matches!(why, Why::WrittenHere { .. }) && !others.is_empty() {
        detail.push_str(&format!(
            "; {} stopped meanwhile too, as something wrote here before its data came back (declare the service that writes here in the path's `owners`, so it waits for its data)",
            others.join(", ")
        ));
    }
    // The managed blocks of files inside the path, on top of the restored content.
    let mut blocks = Vec::new();
    for block in manifest.shell.iter().filter(|b| within(b.file.path(), &path.path)) {
        let resource = engine::shell_block(block);
        // Applying a block keeps the file first; a copy kept earlier in this run (what
        // was here before the restore) stays: `StateDir::keep` keeps the first copy.
        let applied = engine::run_one(resource.as_ref(), ctx, false);
        match applied.status {
            Status::Failed => {
                return Err(format!(
                    "{detail}, but its managed block {} was not applied again: {}",
                    block.name, applied.detail
                ));
            }
            _ => blocks.push(block.name.as_str()),
        }
    }
    if !blocks.is_empty() {
        detail.push_str(&format!(
            ", its managed block{} {} applied on top",
            if blocks.len() == 1 { "" } else { "s" },
            blocks.join(", ")
        ));
    }
    if local_state(&path.path).is_ok_and(|l| l != Local::Missing) {
        ledger.settle(&path.path, How::Restored, Some(snapshot_ref(snapshot)));
        // Written at once: a run that dies after this does not restore it again.
        ledger.save(&ctx.state).map_err(|e| format!("{detail}, but cannot write down that it was: {e}"))?;
    }
    Ok(detail)
}
