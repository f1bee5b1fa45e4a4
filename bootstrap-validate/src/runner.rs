//! Runs the checks in parallel, one thread each, so the run takes about as long as the
//! slowest check (the checks that go through the services start once the services have
//! answered). Each check is bounded by its own timeout (commands are killed, HTTP and
//! TCP calls give up); the runner itself stops waiting for a check a moment after its
//! deadline and reports it as timed out, so nothing is ever waited on forever.
//!
//! The state of every service comes from one batched `systemctl --user show` call,
//! made in its own thread while the other checks already run.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

use common::output::{self, Verbosity};
use common::systemd::{self, UnitState};

use crate::plan::{Check, Probe};
use crate::probe::{self, Finding, human};

/// How long after a check's deadline the runner still waits for it: a killed command
/// needs a moment to be reaped and its pipes drained.
const GRACE: Duration = Duration::from_secs(3);

/// What one check found, and how long it took.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub finding: Finding,
    pub duration: Duration,
}

/// A whole run: the checks, in order, with what each found.
#[derive(Debug, Clone)]
pub struct Run {
    pub checks: Vec<Check>,
    pub outcomes: Vec<Outcome>,
    /// When the run started (for the JUnit timestamp).
    pub started: SystemTime,
    /// The wall time of the whole run.
    pub took: Duration,
}

type Done = (usize, Outcome);

/// Runs `check` in a thread of its own; its finding is sent on `tx`.
fn spawn(
    index: usize,
    check: Check,
    started: Instant,
    states: Option<Arc<Result<Vec<UnitState>, String>>>,
    tx: Sender<Done>,
) {
    let fallback = tx.clone();
    let spawned = std::thread::Builder::new().name(check.id.clone()).spawn(move || {
        let deadline = later(started, check.timeout);
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match (&check.probe, &states) {
            (Probe::Prereq(p), _) => probe::prereq(p, deadline, check.timeout),
            (Probe::Service(p), Some(states)) => probe::service(p, states, deadline, check.timeout),
            (Probe::Service(_), None) => Finding::failed("no systemd state was read"),
            (Probe::Http(p), _) => probe::http(p, deadline, check.timeout, false),
            (Probe::Command(p), _) => probe::command(p, deadline, check.timeout),
            (Probe::File(path), _) => probe::file(path),
            (Probe::Invalid(why), _) => Finding::failed(why.clone()),
        }));
        let finding = found.unwrap_or_else(|_| Finding::failed("the check crashed (a bug in bootstrap-validate)"));
        let _ = tx.send((index, Outcome { finding, duration: started.elapsed() }));
    });
    if let Err(e) = spawned {
        let finding = Finding::failed(format!("cannot start a thread for the check: {e}"));
        let _ = fallback.send((index, Outcome { finding, duration: started.elapsed() }));
    }
}

/// The state of `units` from one `systemctl --user show` call, each under the name it
/// was asked by (systemd answers in the order asked).
fn unit_states(units: &[String]) -> Result<Vec<UnitState>, String> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty()) {
        return Err(systemd::SystemdError::NoRuntimeDir.to_string());
    }
    let mut states = systemd::show(units, &["Result"]).map_err(|e| format!("systemd: {e}"))?;
    if states.len() == units.len() {
        for (state, unit) in states.iter_mut().zip(units) {
            state.id.clone_from(unit);
        }
    }
    Ok(states)
}

/// Does the check go through the services (HTTP, commands), so that it runs once
/// they have answered?
fn needs_services(check: &Check) -> bool {
    matches!(check.probe, Probe::Http(_) | Probe::Command(_))
}

/// Runs the services' checks: one systemd query for all their units, then a thread
/// per service.
fn spawn_services(services: Vec<(usize, Check)>, started: Instant, tx: &Sender<Done>) {
    if services.is_empty() {
        return;
    }
    let mut units: Vec<String> = Vec::new();
    for unit in services.iter().flat_map(|(_, c)| c.units()) {
        if !units.contains(&unit) {
            units.push(unit);
        }
    }
    let service_tx = tx.clone();
    let fallback = services.clone();
    let query = std::thread::Builder::new().name("systemd".into()).spawn(move || {
        let states = Arc::new(unit_states(&units));
        // When systemd cannot answer, the first service says why; the others point to it.
        let first = services.first().map(|(_, c)| c.id.clone()).unwrap_or_default();
        let see_first = Arc::new(Err(format!("no systemd state (see {first})")));
        for (n, (index, check)) in services.into_iter().enumerate() {
            let mine = if n > 0 && states.is_err() { Arc::clone(&see_first) } else { Arc::clone(&states) };
            spawn(index, check, started, Some(mine), service_tx.clone());
        }
    });
    if let Err(e) = query {
        let states = Arc::new(Err(format!("cannot start a thread for the systemd query: {e}")));
        for (index, check) in fallback {
            spawn(index, check, started, Some(Arc::clone(&states)), tx.clone());
        }
    }
}

/// Runs every check in parallel and waits for each until its deadline (plus a grace);
/// a check still running then is reported as timed out.
///
/// Prerequisites, files and services start at once. HTTP and command checks (the nginx
/// routes, the `validate` list) go through the services, so they start as soon as every
/// service has answered: a service that was just started and is active but not yet
/// listening is retried until it listens, instead of its routes failing with a 502.
pub fn run(checks: Vec<Check>, verbosity: Verbosity) -> Run {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let (tx, rx) = mpsc::channel::<Done>();
    let mut began: Vec<Option<Instant>> = vec![None; checks.len()];
    let mut services = Vec::new();
    for (index, check) in checks.iter().enumerate() {
        if matches!(check.probe, Probe::Service(_)) {
            services.push((index, check.clone()));
            began[index] = Some(started);
        } else if !needs_services(check) {
            spawn(index, check.clone(), started, None, tx.clone());
            began[index] = Some(started);
        }
    }
    let service_indices: Vec<usize> = services.iter().map(|(i, _)| *i).collect();
    spawn_services(services, started, &tx);

    let bar = output::progress(checks.len() as u64, crate::STEP, verbosity);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; checks.len()];
    let mut second_phase = false;
    loop {
        if !second_phase && service_indices.iter().all(|&i| outcomes[i].is_some()) {
            second_phase = true;
            let now = Instant::now();
            for (index, check) in checks.iter().enumerate().filter(|(_, c)| needs_services(c)) {
                spawn(index, check.clone(), now, None, tx.clone());
                began[index] = Some(now);
            }
        }
        let deadline = |i: usize| began[i].map(|b| later(b, checks[i].timeout.saturating_add(GRACE)));
        let pending: Vec<usize> = (0..checks.len()).filter(|&i| outcomes[i].is_none() && began[i].is_some()).collect();
        let Some(next) = pending.iter().filter_map(|&i| deadline(i)).min() else { break };
        match rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
            Ok((index, outcome)) => {
                bar.set_message(checks[index].id.clone());
                bar.inc(1);
                outcomes[index] = Some(outcome);
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                let now = Instant::now();
                for index in pending.into_iter().filter(|&i| deadline(i).is_some_and(|d| d <= now)) {
                    let finding = Finding::timed_out(format!(
                        "did not finish within {} (stopped waiting for it)",
                        human(checks[index].timeout)
                    ));
                    let duration = began[index].map_or(Duration::ZERO, |b| b.elapsed());
                    outcomes[index] = Some(Outcome { finding, duration });
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome { finding: Finding::failed("no answer"), duration: Duration::ZERO }))
        .collect();
    Run { checks, outcomes, started: started_at, took: started.elapsed() }
}

/// `start + after`, never overflowing the clock (durations are bounded at load; this
/// keeps an absurd one from panicking all the same).
fn later(start: Instant, after: Duration) -> Instant {
    start.checked_add(after).unwrap_or_else(|| start.checked_add(common::manifest::MAX_DURATION).unwrap_or(start))
}
