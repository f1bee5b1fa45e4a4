//! The restore applied: the owners stopped around it all, the paths of each snapshot
//! restored by one `restic restore` (one per filesystem their staging folders are on),
//! each path put in place in its turn, outermost first (see [`super::swap`]), with its
//! managed blocks applied again on top, and settled in the ledger as soon as it is in
//! place. A path inside another one restored from another snapshot is restored alone,
//! once that one is in place.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::durable::{How, Ledger};
use common::engine::{self, Ctx};
use common::manifest::Manifest;
use common::output;
use common::report::{Report, Status, tilde};
use common::state::StateDir;

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
    // Not restored when its owners (or, when something wrote into a path early, any
    // service) could not be stopped.
    let blocked = |i: usize| stopped.error.is_some() && (someone_wrote || !plans[i].path.owners.is_empty());
    let mut batches = Batches::plan(plans, &order, &blocked);
    let bar = output::progress(order.len() as u64, "restic restore", options.verbosity);
    for &i in &order {
        let plan = &plans[i];
        bar.set_message(tilde(&plan.path.path, &ctx.home));
        let result = match (&stopped.error, blocked(i), &plan.decision) {
            (Some(e), true, _) => Err(format!("not restored: {e}")),
            (_, _, Decision::Restore { snapshot, why }) => match snapshots.get(*snapshot) {
                Some(snapshot) => {
                    let mut put = |stays: &swap::Stays| {
                        batches.put(i, restic, snapshot, &plan.path.path, stays, &ctx.state, report)
                    };
                    restore_and_settle(manifest, snapshot, why, plan.path, &stopped.units, ctx, ledger, &mut put)
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

/// The restic restores of one restore: per snapshot and filesystem, the paths it
/// restores in one call, made at the turn of the first of them and removed once the
/// last is in place.
struct Batches {
    /// Per plan: the index of its batch; a plan without one is restored alone.
    of: BTreeMap<usize, usize>,
    batches: Vec<Batch>,
}

struct Batch {
    snapshot: usize,
    /// The filesystem of its paths' staging folders.
    device: Option<u64>,
    paths: Vec<PathBuf>,
    /// Its paths not put in place yet.
    left: usize,
    /// restic's restore, once made.
    restored: Option<Result<swap::Batch, String>>,
}

impl Batches {
    /// The batches of the paths to restore (`order`, outermost first), but those
    /// `blocked`, and those inside another path restored (from another snapshot: one
    /// inside a path restored from the same comes with it), which are restored alone in
    /// their turn, once the outer one is in place.
    fn plan(plans: &[Plan<'_>], order: &[usize], blocked: &dyn Fn(usize) -> bool) -> Batches {
        let mut out = Batches { of: BTreeMap::new(), batches: Vec::new() };
        for &i in order {
            let Decision::Restore { snapshot, .. } = plans[i].decision else { continue };
            let path = &plans[i].path.path;
            if blocked(i) || order.iter().any(|&o| o != i && within(path, &plans[o].path.path)) {
                continue;
            }
            let device = swap::staging_device(path);
            let at = match out.batches.iter().position(|b| b.snapshot == snapshot && b.device == device) {
                Some(at) => at,
                None => {
                    out.batches.push(Batch { snapshot, device, paths: Vec::new(), left: 0, restored: None });
                    out.batches.len() - 1
                }
            };
            out.batches[at].paths.push(path.clone());
            out.batches[at].left += 1;
            out.of.insert(i, at);
        }
        out
    }

    /// Puts plan `i`'s `path` in place from `snapshot`: from its batch's restore (made
    /// now when it is the first of it), or restored alone (without a batch, or when the
    /// batch's staging folder turns out to be on another filesystem).
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        i: usize,
        restic: &Restic,
        snapshot: &Snapshot,
        path: &Path,
        stays: &swap::Stays,
        state: &StateDir,
        report: &mut Report,
    ) -> Result<Option<PathBuf>, String> {
        let alone = |report: &mut Report| {
            swap::restore_one(restic, snapshot, path, stays, state, report).map_err(|e| e.to_string())
        };
        let Some(batch) = self.of.get(&i).and_then(|&at| self.batches.get_mut(at)) else { return alone(report) };
        let restored = batch.restored.get_or_insert_with(|| {
            let paths: Vec<&Path> = batch.paths.iter().map(PathBuf::as_path).collect();
            swap::restore_batch(restic, snapshot, &paths, report).map_err(|e| e.to_string())
        });
        let result = match restored {
            Ok(restored) => match restored.put_in_place(path, stays, snapshot, state) {
                Err(swap::SwapError::OtherFilesystem { .. }) => alone(report),
                other => other.map_err(|e| e.to_string()),
            },
            Err(e) => Err(e.clone()),
        };
        batch.left = batch.left.saturating_sub(1);
        if batch.left == 0 {
            // Its staging folder goes as soon as its last path is in place.
            batch.restored = None;
        }
        result
    }
}

/// Restores one path (`put` puts it in place, given what stays), applies the managed
/// blocks inside it again, and settles it.
#[allow(clippy::too_many_arguments)]
pub(super) fn restore_and_settle(
    manifest: &Manifest,
    snapshot: &Snapshot,
    why: &Why,
    path: &DataPath,
    stopped: &[String],
    ctx: &Ctx,
    ledger: &mut Ledger,
    put: &mut dyn FnMut(&swap::Stays) -> Result<Option<PathBuf>, String>,
) -> Result<String, String> {
    let stays = swap::Stays {
        left_out: swap::left_in_place(manifest, &path.path),
        env_files: swap::env_files_in_place(manifest, &path.path),
    };
    let kept = put(&stays)?;
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
