//! `bootstrap-data snapshots`: per `backup` path, every snapshot of this host that
//! holds it, newest first, with the one it was restored from (or found the same as)
//! marked; `restore --snapshot ID` takes any of these ids.
//!
//! Read-only: one `restic snapshots` and one `restic find` for every path at once
//! (`--no-lock`, `--no-cache`). A path in no snapshot is `skipped`.

use std::time::SystemTime;

use common::durable::Ledger;
use common::engine::Ctx;
use common::manifest::Manifest;
use common::report::{Report, Status};
use common::step::StepError;

use crate::paths;
use crate::restic::{Restic, Snapshot};
use crate::status::describe;
use crate::{Options, STEP, backup_section, clock, host_name, item, repository_item};

/// Lists, per selected path, the snapshots of this host that hold it.
pub fn snapshots(manifest: &Manifest, ctx: &Ctx, options: &Options) -> Result<Report, StepError> {
    let selected = paths::select(paths::data_paths(manifest), &options.only)?;
    let mut report = Report::new(STEP, true);
    if selected.is_empty() {
        return Ok(report);
    }
    let backup = backup_section(manifest)?;
    let host = host_name(manifest)?;
    let ledger = Ledger::load(&ctx.state, &ctx.home)?;
    let asked: Vec<std::path::PathBuf> = selected.iter().map(|p| p.path.clone()).collect();
    let listed = Restic::open(backup, &ctx.home, true)
        .and_then(|r| Ok((r.snapshots()?, r.holding(&host, &asked)?, r.remote_shown())));
    let (all, holding, shown) = match listed {
        Ok(listed) => listed,
        Err(e) => {
            report.push(repository_item(backup, Status::Failed, e.to_string()));
            for path in &selected {
                report.push(item(path, Status::Skipped, "not listed: see data:repository"));
            }
            return Ok(report);
        }
    };
    let now = SystemTime::now();
    let mut mine: Vec<&Snapshot> = all.iter().filter(|s| s.hostname == host).collect();
    mine.sort_by_key(|s| std::cmp::Reverse(s.when()));
    let owned: Vec<Snapshot> = mine.iter().map(|s| (*s).clone()).collect();
    report.push(repository_item(backup, Status::Ok, describe(shown.as_deref(), &host, &all, &owned, now)));
    for path in &selected {
        let here = ledger.settled.get(&path.path).and_then(|s| s.snapshot.as_ref()).map(|s| s.id.as_str());
        let with: Vec<String> = mine
            .iter()
            .filter(|s| holding.get(&s.id).is_some_and(|held| held.contains(&path.path)))
            .map(|s| {
                let when = s
                    .when()
                    .map(|t| format!(" of {} ({} old)", clock::show_time(t), clock::show_age(clock::age(t, now))))
                    .unwrap_or_default();
                let mark = if here == Some(s.short_id.as_str()) { ", this host's data came from it" } else { "" };
                format!("{}{when}{mark}", s.short_id)
            })
            .collect();
        let it = match with.len() {
            0 => item(path, Status::Skipped, format!("in no snapshot of host {host}")),
            n => item(path, Status::Ok, format!("{n} snapshot{}: {}", if n == 1 { "" } else { "s" }, with.join("; "))),
        };
        report.push(it);
    }
    Ok(report)
}
