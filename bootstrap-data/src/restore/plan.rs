//! The restore's plan: where each path stands, what the repository holds for it (one
//! lookup for every path that needs one), and the decision for each, before anything
//! changes.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::durable::provenance::{Entry, Held, Provenance};
use common::durable::{How, Ledger, Standing};
use common::engine::Ctx;
use common::manifest::Manifest;
use common::report::{Item, Status};

use crate::decide::{self, Against, Unsettled, Verdict, Why};
use crate::paths::{DataPath, within};
use crate::restic::{self, InSnapshot, Node, Restic, ResticError, Snapshot};
use crate::status::describe;
use crate::{Options, backup_section, host_name, repository_item};

/// What is at a path on the host, roughly (for settled paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Local {
    Missing,
    /// A folder with nothing in it but empty folders (which other steps make: a
    /// declared folder inside a data path is made before the data comes back).
    Empty,
    /// A file, a link, or a folder with one somewhere inside it.
    Data,
}

pub(super) fn local_state(path: &Path) -> io::Result<Local> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Local::Missing),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => Ok(if super::swap::only_folders(path)? { Local::Empty } else { Local::Data }),
        Ok(_) => Ok(Local::Data),
    }
}

/// Why the repository is asked about a path.
#[derive(Debug, Clone)]
pub(super) enum Need {
    /// Settled, but missing or an empty folder now.
    Gone(Local),
    /// Not settled: what is here, and whose.
    Unsettled { standing: Unsettled, held: Held, entries: Vec<Entry> },
    /// `--force` or `--snapshot`.
    Asked,
}

/// What to do with one path.
#[derive(Debug, Clone)]
pub(super) enum Decision {
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

pub(super) struct Plan<'a> {
    pub(super) path: &'a DataPath,
    pub(super) decision: Decision,
}

/// What is known of a path before the repository is asked.
pub(super) fn first_look(path: &DataPath, ledger: &Ledger, provenance: &Provenance<'_>, asked: bool) -> Decision {
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
                // Empty when it was settled, and still: nothing of it was lost since.
                Local::Empty if settled.empty => Decision::Ok(format!("empty, as when {}", settled.describe())),
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
/// when the repository cannot be used), and every snapshot it listed (for the local
/// record; empty when it could not be listed).
pub(super) struct Found {
    pub(super) item: Item,
    pub(super) snapshots: Vec<Snapshot>,
    pub(super) restic: Option<Restic>,
    pub(super) all: Vec<Snapshot>,
}

/// Finds, for each needed path, its snapshot (the newest of the host that covers it,
/// or the one asked for), what it holds there, and the verdict. On a repository error,
/// the repository's item fails and the needed paths point to it.
pub(super) fn look_up(
    manifest: &Manifest,
    ctx: &Ctx,
    options: &Options,
    plans: &mut [Plan<'_>],
    needed: &[usize],
) -> Found {
    let failed = |item: Item| Found { item, snapshots: Vec::new(), restic: None, all: Vec::new() };
    let Ok(backup) = backup_section(manifest) else {
        for &i in needed {
            plans[i].decision = Decision::Failed("the manifest has no `backup` section".into());
        }
        return failed(Item::new(
            crate::REPOSITORY_ID,
            "repository",
            Status::Failed,
            "the manifest has no `backup` section",
        ));
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
    Found { item: repository_item(backup, Status::Ok, description), snapshots: chosen, restic: Some(restic), all }
}

/// The decision for a path no snapshot of the host covers.
pub(super) fn nothing_anywhere(decision: &Decision, host: &str, no_snapshot_at_all: bool) -> Decision {
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
pub(super) fn mark_nested(plans: &mut [Plan<'_>]) {
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

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_of_empty_folders_is_empty_and_anything_else_is_data() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data");
        assert_eq!(local_state(&path)?, Local::Missing);
        fs::create_dir_all(path.join("uploads/thumbs"))?;
        fs::create_dir_all(path.join("sessions"))?;
        assert_eq!(local_state(&path)?, Local::Empty, "folders another step made are no data");
        fs::write(path.join("uploads/thumbs/a.png"), "x")?;
        assert_eq!(local_state(&path)?, Local::Data);
        fs::remove_file(path.join("uploads/thumbs/a.png"))?;
        std::os::unix::fs::symlink("/nowhere", path.join("sessions/link"))?;
        assert_eq!(local_state(&path)?, Local::Data, "a link is something");
        Ok(())
    }
}
