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

mod swap;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::durable::provenance::{Entry, Held, Provenance};
use common::durable::{self, How, Ledger, SnapshotRef, Standing};
use common::engine::{self, Ctx};
use common::manifest::Manifest;
use common::output;
use common::report::{Item, Report, Status, tilde};
use common::step::StepError;

use crate::decide::{self, Against, Unsettled, Verdict, Why};
use crate::paths::{self, DataPath, within};
use crate::restic::{self, InSnapshot, Node, Restic, ResticError, Snapshot};
use crate::status::describe;
use crate::{Options, STEP, backup_section, clock, host_name, item, repository_item, services};

/// What is at a path on the host, roughly (for settled paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Local {
    Missing,
    /// A folder with nothing in it.
    Empty,
    /// A file, a link, or a folder with something in it.
    Data,
}

fn local_state(path: &Path) -> io::Result<Local> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Local::Missing),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => Ok(if fs::read_dir(path)?.next().is_none() { Local::Empty } else { Local::Data }),
        Ok(_) => Ok(Local::Data),
    }
}

/// Why the repository is asked about a path.
#[derive(Debug, Clone)]
enum Need {
    /// Settled, but missing or an empty folder now.
    Gone(Local),
    /// Not settled: what is here, and whose.
    Unsettled { standing: Unsettled, held: Held, entries: Vec<Entry> },
    /// `--force` or `--snapshot`.
    Asked,
}

/// What to do with one path.
#[derive(Debug, Clone)]
enum Decision {
    /// Nothing to do: ok, with why.
    Ok(String),
    Skipped(String),
    Failed(String),
    /// To look up in the repository.
    Needed(Need),
    /// Decided from the repository: settle it without restoring.
    Settle {
        how: How,
        status: Status,
        detail: String,
        snapshot: usize,
    },
    /// `--check` without restic installed yet: what it would do.
    WouldRestoreSomehow(String),
    /// Restore from this snapshot (an index into the snapshots looked up).
    Restore {
        snapshot: usize,
        why: Why,
    },
    /// Comes with the restore of another path (its index in the plan).
    With {
        outer: usize,
        snapshot: usize,
    },
}

struct Plan<'a> {
    path: &'a DataPath,
    decision: Decision,
}

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
    let (snapshots, restic) = if needed.is_empty() {
        (Vec::new(), None)
    } else {
        let found = look_up(manifest, ctx, options, &mut plans, &needed);
        report.push(found.item);
        (found.snapshots, found.restic)
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
        report.push(Item {
            id: "data:ledger".into(),
            kind: "state".into(),
            status: Status::Failed,
            path: Some(ctx.state.file(durable::LEDGER_FILE)),
            detail: format!("cannot write down what was settled: {e}"),
            diff: None,
        });
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

fn ledger_item(note: &str) -> Item {
    Item {
        id: "data:ledger".into(),
        kind: "state".into(),
        status: Status::Ok,
        path: None,
        detail: note.to_owned(),
        diff: None,
    }
}

fn snapshot_ref(snapshot: &Snapshot) -> SnapshotRef {
    SnapshotRef { id: snapshot.short_id.clone(), time: snapshot.time.clone() }
}

/// What is known of a path before the repository is asked.
fn first_look(path: &DataPath, ledger: &Ledger, provenance: &Provenance<'_>, asked: bool) -> Decision {
    let local = match local_state(&path.path) {
        Ok(local) => local,
        Err(e) => return Decision::Failed(format!("cannot read it: {e}")),
    };
    if asked {
        return Decision::Needed(Need::Asked);
    }
    let standing = match ledger.standing(&path.path, provenance) {
        Standing::Settled(settled) => {
            return match local {
                Local::Data => Decision::Ok(format!("this host's data: {}", settled.describe())),
                _ if settled.how == How::NothingToRestore => Decision::Ok(format!(
                    "{}: {}",
                    if local == Local::Missing { "missing" } else { "empty" },
                    settled.describe()
                )),
                gone => Decision::Needed(Need::Gone(gone)),
            };
        }
        Standing::Awaiting { since } => Unsettled::Awaiting { since },
        Standing::Preexisting { since, held } => Unsettled::Preexisting { since, held },
    };
    match provenance.scan(&path.path) {
        Ok(entries) => Decision::Needed(Need::Unsettled { standing, held: Held::of(&entries), entries }),
        Err(e) => Decision::Failed(format!("cannot read it: {e}")),
    }
}

/// What the repository gave: its item, the snapshots asked about, restic itself (none
/// when the repository cannot be used).
struct Found {
    item: Item,
    snapshots: Vec<Snapshot>,
    restic: Option<Restic>,
}

/// Finds, for each needed path, its snapshot (the newest of the host that covers it,
/// or the one asked for), what it holds there, and the verdict. On a repository error,
/// the repository's item fails and the needed paths point to it.
fn look_up(manifest: &Manifest, ctx: &Ctx, options: &Options, plans: &mut [Plan<'_>], needed: &[usize]) -> Found {
    let failed = |item: Item| Found { item, snapshots: Vec::new(), restic: None };
    let Ok(backup) = backup_section(manifest) else {
        for &i in needed {
            plans[i].decision = Decision::Failed("the manifest has no `backup` section".into());
        }
        return failed(Item {
            id: crate::REPOSITORY_ID.into(),
            kind: "repository".into(),
            status: Status::Failed,
            path: None,
            detail: "the manifest has no `backup` section".into(),
            diff: None,
        });
    };
    let fail = |plans: &mut [Plan<'_>], why: String| {
        for &i in needed {
            plans[i].decision = Decision::Failed("not restored: see data:repository".into());
        }
        repository_item(backup, Status::Failed, why)
    };
    let host = match host_name(manifest) {
        Ok(host) => host,
        Err(e) => return failed(fail(plans, e.to_string())),
    };
    let opened = Restic::open(backup, &ctx.home, options.check).and_then(|r| Ok((r.snapshots()?, r)));
    let (all, restic) = match opened {
        Ok(opened) => opened,
        Err(e) if options.check && e.is_not_installed() => {
            let would = format!("would restore it from the newest snapshot of host {host} that covers it");
            for &i in needed {
                plans[i].decision = Decision::WouldRestoreSomehow(would.clone());
            }
            return failed(repository_item(backup, Status::WouldChange, format!("{e}; then would read it")));
        }
        Err(e) => {
            let hint = match e {
                ResticError::Missing { .. } => {
                    ": a restore needs the repository the lost host was backed up to (on a host that was never backed up, `bootstrap-data backup` creates it)"
                }
                _ => "",
            };
            return failed(fail(plans, format!("{e}{hint}")));
        }
    };
    let mine: Vec<Snapshot> = all.iter().filter(|s| s.hostname == host).cloned().collect();
    let description = describe(restic.remote_shown().as_deref(), &host, &all, &mine, SystemTime::now());

    // The snapshot each path is restored from or compared with.
    let chosen: Vec<Snapshot>;
    let mut by_snapshot: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    if let Some(id) = &options.snapshot {
        let matching: Vec<&Snapshot> = all.iter().filter(|s| s.id.starts_with(id.as_str())).collect();
        let [snapshot] = matching.as_slice() else {
            let why = if matching.is_empty() {
                format!("no snapshot {id} in the repository (bootstrap-data snapshots lists them)")
            } else {
                format!("{id} names {} snapshots: give more of its id", matching.len())
            };
            return failed(fail(plans, why));
        };
        chosen = vec![(*snapshot).clone()];
        by_snapshot.insert(0, needed.to_vec());
    } else {
        if mine.is_empty() && !all.is_empty() {
            return failed(fail(plans, format!("nothing to restore from: {description}")));
        }
        chosen = mine;
        for &i in needed {
            match restic::newest_covering(&chosen, &plans[i].path.path)
                .and_then(|s| chosen.iter().position(|o| o.id == s.id))
            {
                Some(s) => by_snapshot.entry(s).or_default().push(i),
                None => plans[i].decision = nothing_anywhere(&plans[i].decision, &host, chosen.is_empty()),
            }
        }
    }

    for (s, members) in by_snapshot {
        let snapshot = &chosen[s];
        let asked: Vec<PathBuf> = members.iter().map(|&i| plans[i].path.path.clone()).collect();
        let held = match restic.ls(&snapshot.id, &asked) {
            Ok(held) => held,
            Err(e) => {
                for &i in &members {
                    plans[i].decision = Decision::Failed(format!("cannot list snapshot {}: {e}", snapshot.short_id));
                }
                continue;
            }
        };
        let in_snapshot = |path: &Path| held.get(path).copied().unwrap_or(InSnapshot::Absent);
        // Files to compare: data here and there, on a path not settled.
        let compare: Vec<PathBuf> = members
            .iter()
            .filter(|&&i| {
                in_snapshot(&plans[i].path.path) == InSnapshot::Data
                    && matches!(&plans[i].decision, Decision::Needed(Need::Unsettled { held, .. }) if held.is_data())
            })
            .map(|&i| plans[i].path.path.clone())
            .collect();
        let trees: Option<Vec<Node>> =
            if compare.is_empty() { None } else { restic.ls_tree(&snapshot.id, &compare).ok() };
        let against = Against { short_id: &snapshot.short_id, time: snapshot.when(), host: &host };
        for i in members {
            let path = &plans[i].path.path;
            let inside = in_snapshot(path);
            let tree: Option<Vec<Node>> =
                trees.as_ref().map(|t| t.iter().filter(|n| within(&n.path, path)).cloned().collect());
            plans[i].decision = match &plans[i].decision {
                Decision::Needed(Need::Unsettled { standing, held, entries }) => {
                    match decide::verdict(standing, held, entries, inside, tree.as_deref(), against) {
                        Verdict::Restore(why) => Decision::Restore { snapshot: s, why },
                        Verdict::Settle { how, status, detail } => {
                            Decision::Settle { how, status, detail, snapshot: s }
                        }
                    }
                }
                Decision::Needed(Need::Asked) if inside == InSnapshot::Absent => {
                    Decision::Skipped(format!("not in snapshot {}: nothing to restore it from", snapshot.short_id))
                }
                Decision::Needed(Need::Asked) => Decision::Restore { snapshot: s, why: Why::Asked },
                Decision::Needed(Need::Gone(local)) => match inside {
                    InSnapshot::Absent => Decision::Skipped(format!(
                        "not in snapshot {}, the newest of host {host} that covers it: it did not exist when that snapshot was made",
                        snapshot.short_id
                    )),
                    InSnapshot::EmptyFolder if *local == Local::Empty => {
                        Decision::Ok(format!("empty, as in snapshot {}", snapshot.short_id))
                    }
                    _ => Decision::Restore { snapshot: s, why: Why::Missing },
                },
                other => other.clone(),
            };
        }
    }
    Found { item: repository_item(backup, Status::Ok, description), snapshots: chosen, restic: Some(restic) }
}

/// The decision for a path no snapshot of the host covers.
fn nothing_anywhere(decision: &Decision, host: &str, no_snapshot_at_all: bool) -> Decision {
    let why = if no_snapshot_at_all {
        "the repository has no snapshot yet: nothing to restore".to_owned()
    } else {
        format!("in no snapshot of host {host}: nothing to restore it from")
    };
    match decision {
        Decision::Needed(Need::Unsettled { held, .. }) => Decision::Settle {
            how: How::NothingToRestore,
            status: if held.is_data() { Status::Ok } else { Status::Skipped },
            detail: if held.is_data() {
                format!("holds {}; {why}: this host's copy is the only one", held.describe())
            } else {
                why
            },
            snapshot: usize::MAX,
        },
        _ => Decision::Skipped(why),
    }
}

/// A path inside another one restored from the same snapshot comes with it.
fn mark_nested(plans: &mut [Plan<'_>]) {
    let restoring: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.decision {
            Decision::Restore { snapshot, .. } => Some((i, snapshot)),
            _ => None,
        })
        .collect();
    for &(i, snapshot) in &restoring {
        let path = &plans[i].path.path;
        // The outermost other path restored from the same snapshot, the first declared
        // when two are the same path.
        let outer = restoring
            .iter()
            .filter(|&&(o, s)| o != i && s == snapshot)
            .filter(|&&(o, _)| {
                let other = &plans[o].path.path;
                within(path, other) && (other != path || o < i)
            })
            .min_by_key(|&&(o, _)| (plans[o].path.path.components().count(), o));
        if let Some(&(outer, _)) = outer {
            plans[i].decision = Decision::With { outer, snapshot };
        }
    }
}

fn of_snapshot(snapshot: &Snapshot) -> String {
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

fn owners_shown(path: &DataPath) -> String {
    path.owners.iter().map(|o| o.service.as_str()).collect::<Vec<_>>().join(", ")
}

/// Why a path is restored, as the start of its detail.
fn why_shown(why: &Why) -> String {
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
fn would(plan: &Plan<'_>, plans: &[Plan<'_>], snapshots: &[Snapshot], ctx: &Ctx) -> Item {
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

fn pending_item(status: Status, units: &[String], detail: &str) -> Item {
    Item {
        id: "data:stopped-services".into(),
        kind: "services".into(),
        status,
        path: None,
        detail: format!("{} stopped by an earlier restore that did not finish: {detail}", units.join(", ")),
        diff: None,
    }
}

fn pending_started(pending: &[String], started: Result<(), String>) -> Item {
    match started {
        Ok(()) => pending_item(Status::Changed, pending, "started again"),
        Err(e) => pending_item(Status::Failed, pending, &e),
    }
}

/// What applying did.
#[derive(Debug, Default)]
struct Outcome {
    /// The units stopped, to start again.
    stopped: Vec<String>,
    /// Per restored plan: its detail, or why it failed.
    restored: BTreeMap<usize, Result<String, String>>,
}

/// Restores every path planned for it, with the owners stopped around it all, settling
/// each in the ledger as soon as it is in place.
#[allow(clippy::too_many_arguments)]
fn apply(
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
fn restore_and_settle(
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
    let kept = swap::restore_one(restic, snapshot, &path.path, &stays, &ctx.state, report)?;
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

/// The item of one plan after applying.
fn finished(
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
