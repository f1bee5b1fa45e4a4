//! The services that own a path being restored: stopped first, started again after,
//! also when the restore fails.
//!
//! Only the units that are running are stopped, and exactly those are started again
//! (a timer-driven job that was idle stays idle). Their timers are stopped too, so a
//! timer cannot start the job halfway through. Before anything is stopped, the units to
//! start again are written to the state folder (`data-stopped-units.json`): a restore
//! that dies halfway leaves that due work behind, and the next restore starts them.
//!
//! And the services that waited for their data (the ledger's `waiting`, written by the
//! services step on a fresh host): started once every path they wait for is settled.

use std::path::{Path, PathBuf};

use common::durable::Ledger;
use common::manifest::{Manifest, Service};
use common::report::{Item, Report, Status};
use common::state::{StateDir, StateError};
use common::systemd;

/// The state file of units stopped by a restore and not started again yet.
const PENDING: &str = "data-stopped-units.json";

/// Units an earlier restore stopped and did not start again.
pub fn pending(state: &StateDir) -> Result<Vec<String>, StateError> {
    Ok(state.read_json(PENDING)?.unwrap_or_default())
}

fn record(state: &StateDir, units: &[String]) -> Result<(), StateError> {
    let mut all = pending(state)?;
    for unit in units {
        if !all.contains(unit) {
            all.push(unit.clone());
        }
    }
    state.write_json(PENDING, &all)
}

/// What stopping did.
#[derive(Debug, Default)]
pub struct Stopped {
    /// The units to start again afterwards (those that were running).
    pub units: Vec<String>,
    /// Why they could not all be stopped: the paths they own must not be restored.
    pub error: Option<String>,
}

fn shown(verb: &str, units: &[String]) -> String {
    systemd::systemctl().arg(verb).args(units.iter().cloned()).to_string()
}

/// Stops the running units among `units`, in one call, after recording them.
pub fn stop(units: &[String], state: &StateDir, report: &mut Report) -> Stopped {
    if units.is_empty() {
        return Stopped::default();
    }
    if let Err(e) = systemd::ensure_reachable() {
        return Stopped { units: Vec::new(), error: Some(format!("cannot stop the services that own it: {e}")) };
    }
    let running: Vec<String> = match systemd::show(units, &[]) {
        Ok(states) => states
            .into_iter()
            .filter(|u| matches!(u.active_state.as_str(), "active" | "activating" | "reloading"))
            .map(|u| u.id)
            .collect(),
        Err(e) => {
            return Stopped {
                units: Vec::new(),
                error: Some(format!("cannot ask systemd about {}: {e}", units.join(", "))),
            };
        }
    };
    if running.is_empty() {
        return Stopped::default();
    }
    if let Err(e) = record(state, &running) {
        return Stopped { units: Vec::new(), error: Some(format!("cannot record the units to start again: {e}")) };
    }
    report.commands.push(shown("stop", &running));
    let error = systemd::act("stop", &running).err().map(|e| format!("cannot stop {}: {e}", running.join(", ")));
    Stopped { units: running, error }
}

/// Starts `units` again, in one call; forgets them once they started.
pub fn start(units: &[String], state: &StateDir, report: &mut Report) -> Result<(), String> {
    if units.is_empty() {
        return Ok(());
    }
    report.commands.push(shown("start", units));
    systemd::act("start", units).map_err(|e| format!("cannot start {} again: {e}", units.join(", ")))?;
    state.remove(PENDING).map_err(|e| e.to_string())
}

/// The item of a service that waited for its data.
fn waited_item(service: &str, status: Status, detail: String) -> Item {
    Item::new(format!("service:{service}"), "service", status, detail)
}

/// The services that wait for their data (the ledger's `waiting`) and whether this
/// restore would start them: when every path each waits for would be settled by it.
pub fn would_start_waiting(
    manifest: &Manifest,
    ledger: &Ledger,
    settled_after: &dyn Fn(&Path) -> bool,
    report: &mut Report,
) {
    for service in &manifest.services {
        let Some(paths) = ledger.waiting.get(service.name.as_str()) else { continue };
        let left: Vec<&PathBuf> = paths.iter().filter(|p| !settled_after(p)).collect();
        let item = if left.is_empty() {
            waited_item(
                service.name.as_str(),
                Status::WouldChange,
                format!("would enable and start {} once its data is back", service.units_to_run().join(" ")),
            )
        } else {
            let left: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
            waited_item(service.name.as_str(), Status::Skipped, format!("would still wait for {}", left.join(", ")))
        };
        report.push(item);
    }
}

/// With `restore --no-start`: the services that waited, left stopped, and why.
pub fn leave_waiting(manifest: &Manifest, ledger: &Ledger, report: &mut Report) {
    let settled = |path: &Path| ledger.settled.contains_key(path);
    for service in &manifest.services {
        let Some(paths) = ledger.waiting.get(service.name.as_str()) else { continue };
        let detail = if paths.iter().all(|p| settled(p)) {
            "its data is back; left stopped (--no-start): bootstrap-services or another restore starts it".to_owned()
        } else {
            "still waits for its data".to_owned()
        };
        report.push(waited_item(service.name.as_str(), Status::Skipped, detail));
    }
}

/// Starts the services that waited for their data (the ledger's `waiting`) once every
/// path each waits for is settled: enabled and started in one call each, then forgotten
/// by the ledger once running.
pub fn start_waiting(manifest: &Manifest, ledger: &mut Ledger, state: &StateDir, report: &mut Report) {
    let ready: Vec<&Service> = manifest
        .services
        .iter()
        .filter(|s| {
            ledger
                .waiting
                .get(s.name.as_str())
                .is_some_and(|paths| paths.iter().all(|p| ledger.settled.contains_key(p)))
        })
        .collect();
    if ready.is_empty() {
        return;
    }
    // Its env file must be there: writing it is the services step's work.
    let mut startable = Vec::new();
    for service in ready {
        let missing = service
            .env_file
            .as_deref()
            .and_then(|name| manifest.env_file(name))
            .filter(|env| std::fs::symlink_metadata(env.path.path()).is_err());
        match missing {
            Some(env) => report.push(waited_item(
                service.name.as_str(),
                Status::Failed,
                format!(
                    "its data is back, but its env file {} is neither in the backup nor written: export {} and run bootstrap-services",
                    env.path.raw(),
                    env.vars.join(", ")
                ),
            )),
            None => startable.push(service),
        }
    }
    if startable.is_empty() {
        return;
    }
    let units: Vec<String> = startable.iter().flat_map(|s| s.units_to_run()).collect();
    let failure = systemd::ensure_reachable()
        .err()
        .map(|e| e.to_string())
        .or_else(|| {
            report.commands.push(shown("enable", &units));
            systemd::act("enable", &units).err().map(|e| format!("cannot enable {}: {e}", units.join(" ")))
        })
        .or_else(|| {
            report.commands.push(shown("start", &units));
            systemd::act("start", &units).err().map(|e| format!("cannot start {}: {e}", units.join(" ")))
        });
    let after = systemd::wait_settled(&units, &units);
    for service in startable {
        let run = service.units_to_run();
        let running = run.iter().all(|u| after.iter().any(|s| s.id == *u && s.is_active()));
        let name = service.name.as_str();
        if running {
            ledger.waiting.remove(name);
            report.push(waited_item(
                name,
                Status::Changed,
                format!("enabled and started {}: its data is back", run.join(" ")),
            ));
        } else {
            let states: Vec<String> = run
                .iter()
                .map(|u| {
                    let s = after.iter().find(|s| s.id == *u).cloned().unwrap_or_default();
                    format!("{u} is {} ({})", s.active_state, s.sub_state)
                })
                .collect();
            let why = failure.as_deref().map(|f| format!("; {f}")).unwrap_or_default();
            report.push(waited_item(
                name,
                Status::Failed,
                format!(
                    "its data is back, but it is not running: {}{why}; see systemctl --user status {}",
                    states.join(", "),
                    run.join(" ")
                ),
            ));
        }
    }
    if let Err(e) = ledger.save(state) {
        report.push(waited_item("waiting", Status::Failed, format!("cannot write down which services started: {e}")));
    }
}
