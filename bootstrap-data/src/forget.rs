//! `bootstrap-data forget`: applies the manifest's `backup.keep` to this host's
//! snapshots, never forgetting the last copy of a path.
//!
//! What the policy keeps comes from restic itself (`restic forget --dry-run --json
//! --host H --group-by host --keep-...`, a query: no lock). Out of what it would
//! forget, the newest snapshot that covers each `backup`-class path (by its paths and
//! excludes) is kept too: a path that later snapshots lack (it did not exist when they
//! were made, or was dropped from the manifest) keeps its last copy. The rest goes in
//! one `restic forget --prune ID...`, and the snapshots are listed again to see it
//! done (that listing brings the local record of the backup up to date,
//! `crate::record`).
//!
//! One item per snapshot forgotten (`data:snapshot:SHORTID`: its time and why it goes);
//! the kept ones are summed up on `data:repository` with why each stays (restic's
//! reasons, "newest of PATH"). Nothing to forget is ok; no `backup.keep` forgets
//! nothing, and says so. Under the run lock; `--check` runs only the dry run
//! (`--no-cache` too) and says what would go.

use std::time::SystemTime;

use common::engine::Ctx;
use common::manifest::{Keep, Manifest};
use common::output;
use common::report::{Item, Report, Status, tilde};
use common::step::StepError;

use crate::paths;
use crate::restic::{self, Restic, Snapshot};
use crate::{Options, STEP, backup_section, clock, host_name, repository_item};

/// Forgets what `backup.keep` does not keep (see the module's documentation).
pub fn forget(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    if !options.only.is_empty() {
        return Err(StepError::Usage(
            "forget applies the whole `backup.keep` policy to the host's snapshots: --only does not apply to it".into(),
        ));
    }
    let mut report = Report::new(STEP, options.check);
    let backup = backup_section(manifest)?;
    let Some(keep) = &backup.keep else {
        report.push(repository_item(
            backup,
            Status::Ok,
            "no `backup.keep` in the manifest: every snapshot is kept, nothing forgotten",
        ));
        return Ok(report);
    };
    let host = host_name(manifest)?;
    // The caller holds the run lock unless --check (`common::step::main`).
    let home = &ctx.home;
    let planned = Restic::open(backup, home, options.check).and_then(|r| {
        let plan = r.forget_plan(&host, keep)?;
        Ok((r, plan))
    });
    let (restic, plan) = match planned {
        Ok(planned) => planned,
        Err(e) => {
            report.push(repository_item(backup, Status::Failed, e.to_string()));
            return Ok(report);
        }
    };
    let shown = restic.remote_shown().map(|r| format!("{r}: ")).unwrap_or_default();

    // The newest snapshot of each path stays, whatever the policy says.
    let all: Vec<Snapshot> = plan.keep.iter().map(|(s, _)| s.clone()).chain(plan.remove.iter().cloned()).collect();
    let mut kept: Vec<(Snapshot, Vec<String>)> = plan.keep;
    let mut remove: Vec<Snapshot> = plan.remove;
    for path in paths::data_paths(manifest) {
        let Some(newest) = restic::newest_covering(&all, &path.path) else { continue };
        let reason = format!("newest of {}", tilde(&path.path, home));
        if let Some(i) = remove.iter().position(|s| s.id == newest.id) {
            kept.push((remove.remove(i), vec![reason]));
        } else if let Some((_, reasons)) =
            kept.iter_mut().find(|(s, r)| s.id == newest.id && r.iter().all(|r| r.starts_with("newest of ")))
        {
            reasons.push(reason);
        }
    }
    kept.sort_by_key(|(s, _)| std::cmp::Reverse(s.when()));
    remove.sort_by_key(|s| std::cmp::Reverse(s.when()));

    let policy = describe_policy(keep);
    let kept_text = describe_kept(&kept, all.len(), &host, &policy);
    let now = SystemTime::now();
    let why = format!("kept by none of {policy}, and the newest of no path");
    let snapshot_item = |s: &Snapshot, status: Status, what: &str| {
        Item::new(
            format!("data:snapshot:{}", s.short_id),
            "snapshot",
            status,
            format!("{what}: {}, {why}", when(s, now)),
        )
    };
    if all.is_empty() {
        report.push(repository_item(
            backup,
            Status::Ok,
            format!("{shown}no snapshot of host {host}: nothing to forget"),
        ));
        return Ok(report);
    }
    if remove.is_empty() {
        report.push(repository_item(backup, Status::Ok, format!("{shown}nothing to forget: {kept_text}")));
        return Ok(report);
    }
    if options.check {
        report.push(repository_item(
            backup,
            Status::Ok,
            format!("{shown}would forget {}: {kept_text}", count(remove.len())),
        ));
        for s in &remove {
            report.push(snapshot_item(s, Status::WouldChange, "would forget it"));
        }
        return Ok(report);
    }

    let ids: Vec<String> = remove.iter().map(|s| s.id.clone()).collect();
    let spinner = output::spinner(&format!("restic forget --prune of {}", count(ids.len())), options.verbosity);
    let forgotten = restic.forget(&ids);
    spinner.finish_and_clear();
    // Observe again: which of them are gone.
    let listed = restic.snapshots();
    // The repository as forget left it: the local record of the backup.
    let recorded = match &listed {
        Ok(all) => crate::record::write(&ctx.state, manifest, backup, &host, all, "forget", &[]),
        // What the record counts may be gone: status asks the repository instead.
        Err(_) => crate::record::forget(&ctx.state),
    };
    let left = listed.map(|all| all.into_iter().map(|s| s.id).collect::<Vec<String>>());
    let repo = match (&forgotten, &left) {
        (Ok(command), Ok(_)) => {
            report.commands.push(command.clone());
            repository_item(backup, Status::Ok, format!("{shown}{kept_text}; forgot {} and pruned", count(ids.len())))
        }
        (Err(e), _) => repository_item(backup, Status::Failed, format!("restic forget --prune: {e}")),
        (Ok(_), Err(e)) => repository_item(
            backup,
            Status::Failed,
            format!("restic forget --prune ran, but the snapshots cannot be listed again: {e}"),
        ),
    };
    report.push(repo);
    for s in &remove {
        let it = match &left {
            Ok(left) if !left.contains(&s.id) => snapshot_item(s, Status::Changed, "forgotten"),
            Ok(_) => snapshot_item(s, Status::Failed, "still in the repository after restic forget"),
            Err(_) => snapshot_item(s, Status::Failed, "not known to be forgotten: see data:repository"),
        };
        report.push(it);
    }
    if let Some(failed) = recorded {
        report.push(failed);
    }
    Ok(report)
}

/// `keep daily 2, weekly 2`.
fn describe_policy(keep: &Keep) -> String {
    let parts: Vec<String> =
        [("last", keep.last), ("daily", keep.daily), ("weekly", keep.weekly), ("monthly", keep.monthly)]
            .into_iter()
            .filter_map(|(name, n)| n.filter(|n| *n > 0).map(|n| format!("{name} {n}")))
            .collect();
    format!("keep {}", parts.join(", "))
}

/// `keeps 4 of 7 snapshots of host h (keep daily 2, weekly 2): 1a2b3c4d (daily
/// snapshot, weekly snapshot), ...`.
fn describe_kept(kept: &[(Snapshot, Vec<String>)], total: usize, host: &str, policy: &str) -> String {
    let each: Vec<String> = kept
        .iter()
        .map(|(s, reasons)| {
            let why = if reasons.is_empty() { "kept by restic".to_owned() } else { reasons.join(", ") };
            format!("{} ({why})", s.short_id)
        })
        .collect();
    format!("keeps {} of {} of host {host} ({policy}): {}", kept.len(), count(total), each.join("; "))
}

fn count(n: usize) -> String {
    format!("{n} snapshot{}", if n == 1 { "" } else { "s" })
}

/// `of 2026-01-05 10:00:00 UTC (47d 2h old)`.
fn when(s: &Snapshot, now: SystemTime) -> String {
    match s.when() {
        Some(t) => format!("of {} ({} old)", clock::show_time(t), clock::show_age(clock::age(t, now))),
        None => format!("of {:?}", s.time),
    }
}
