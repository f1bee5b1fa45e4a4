//! The services that own a path being restored: stopped first, started again after,
//! also when the restore fails.
//!
//! Only the units that are running are stopped, and exactly those are started again
//! (a timer-driven job that was idle stays idle). Their timers are stopped too, so a
//! timer cannot start the job halfway through. Before anything is stopped, the units to
//! start again are written to the state folder (`data-stopped-units.json`): a restore
//! that dies halfway leaves that due work behind, and the next restore starts them.

use common::report::Report;
use common::state::{StateDir, StateError};
use common::systemd;

/// The state file of units stopped by a restore and not started again yet.
const PENDING: &str = "data-stopped-units.json";

/// Units an earlier restore stopped and did not start again.
pub fn pending(state: &StateDir) -> Result<Vec<String>, StateError> {
    let Some(bytes) = state.read(PENDING)? else { return Ok(Vec::new()) };
    Ok(serde_json::from_slice(&bytes).unwrap_or_default())
}

fn record(state: &StateDir, units: &[String]) -> Result<(), StateError> {
    let mut all = pending(state)?;
    for unit in units {
        if !all.contains(unit) {
            all.push(unit.clone());
        }
    }
    let json = serde_json::to_vec(&all).unwrap_or_default();
    state.write(PENDING, &json)
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
