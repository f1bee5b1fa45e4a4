//! Restore steps 4 and 5: the host integration layer, from the repo, exactly and
//! safely, restarting only what changed.
//!
//! In order: env files (`env:NAME`), unit files (`unit:FILE`, verified before they are
//! installed), one `daemon-reload` when any changed, the services (`service:NAME`:
//! enabled and active; restarted when their unit, env file or code changed), linger
//! (`linger:USER`), nginx sites (`nginx:SITE`, checked as a whole before anything live
//! changes), managed shell blocks (`shell:NAME`).
//!
//! A restart that is due is written to the state folder before any file changes, so a
//! run that dies halfway restarts it on the next run. The state of every unit comes
//! from one `systemctl --user show` call.
//!
//! On a fresh host, a service that writes to data still awaiting its restore waits:
//! installed, not enabled, not started, until `bootstrap-data restore` has put its data
//! back and starts it (see [`waiting`]).

mod env_file;
mod linger;
mod nginx;
mod units;
pub mod waiting;

use std::collections::{BTreeMap, BTreeSet};

use common::durable::{self, Ledger};
use common::engine::{self, Ctx, Observed, Resource, RunOptions, UnknownItem};
use common::manifest::{ItemId, Manifest, Service};
use common::report::{Item, Report, Status, tilde};
use common::systemd::{self, UnitState};
use waiting::{Awaiting, Wait};

pub use env_file::EnvFileResource;
pub use linger::Linger;
pub use nginx::{NginxSites, nginx_program};
pub use units::{ServicesState, USER_UNIT_DIR, UnitFile, fingerprint, unit_files};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-services";

/// Installs env files, systemd user units (restarting what changed), linger, nginx sites and shell blocks from the repo.
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
}

/// Fault injection for tests: `PI_BOOTSTRAP_CRASH_AT=NAME` kills the process at the
/// named point, as a power cut or a `kill -9` would.
fn crash_point(name: &str) {
    if std::env::var("PI_BOOTSTRAP_CRASH_AT").is_ok_and(|at| at == name) {
        std::process::abort();
    }
}

/// Every item id of the step, in order (for `--only` and for the audit).
pub fn item_ids(manifest: &Manifest, ctx: &Ctx) -> Vec<String> {
    let mut ids: Vec<String> = manifest.env.iter().map(|e| ItemId::new("env", e.name.as_str()).0).collect();
    ids.extend(unit_files(manifest, &ctx.home).iter().map(|u| u.id.0.clone()));
    ids.extend(manifest.services.iter().map(|s| ItemId::new("service", s.name.as_str()).0));
    if !manifest.services.is_empty() {
        ids.push(Linger::new().id.0);
    }
    if let Some(nginx) = &manifest.nginx {
        ids.extend(nginx.sites.iter().map(|s| ItemId::new("nginx", s.name.as_str()).0));
    }
    ids.extend(manifest.shell.iter().map(|s| ItemId::new("shell", s.name.as_str()).0));
    ids
}

/// Runs the step (or only observes it, with `options.check`). Without `check`, the
/// caller holds the run lock.
pub fn run(manifest: &Manifest, ctx: &Ctx, options: &RunOptions) -> Result<Report, StepError> {
    let all = item_ids(manifest, ctx);
    for id in &options.only {
        if !all.contains(id) {
            return Err(UnknownItem { id: id.clone(), known: all.join(", ") }.into());
        }
    }
    if !options.check {
        durable::note_first_sight(manifest, &ctx.state, &ctx.home)?;
    }
    let mut ledger = Ledger::load(&ctx.state, &ctx.home)?;
    let awaiting = Awaiting::of(manifest, &ledger, &ctx.home);
    let wanted = |id: &str| options.only.is_empty() || options.only.iter().any(|o| o == id);
    let mut report = Report::new(STEP, options.check);

    for env in &manifest.env {
        let resource = EnvFileResource::from_manifest(env);
        if wanted(&resource.id.0) {
            report.push(env_item(&resource, &awaiting, ctx, options.check));
        }
    }
    if !manifest.services.is_empty() {
        services(manifest, ctx, options.check, &wanted, &awaiting, &mut ledger, &mut report);
        let linger = Linger::new();
        if wanted(&linger.id.0) {
            report.push(engine::run_one(&linger, ctx, options.check));
        }
    }
    if let Some(nginx) = &manifest.nginx {
        nginx_sites(&NginxSites::from_manifest(nginx), ctx, options.check, &wanted, &mut report);
    }
    for block in &manifest.shell {
        let resource = engine::shell_block(block);
        if wanted(&resource.id().0) {
            report.push(engine::run_one(resource.as_ref(), ctx, options.check));
        }
    }
    if !options.check && ctx.state.kept_root().exists() {
        report.kept = Some(ctx.state.kept_root());
    }
    Ok(report)
}

/// Why the step could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    UnknownItem(#[from] UnknownItem),
    #[error(transparent)]
    Ledger(#[from] durable::LedgerError),
}

impl From<StepError> for common::cli::Failure {
    fn from(e: StepError) -> common::cli::Failure {
        match e {
            StepError::UnknownItem(e) => e.into(),
            StepError::Ledger(e) => e.into(),
        }
    }
}

/// An env file: as the engine runs it, unless it lies in a path awaiting its restore
/// and the environment cannot fill it; then it waits for the data step to bring it back.
fn env_item(resource: &EnvFileResource, awaiting: &Awaiting, ctx: &Ctx, check: bool) -> Item {
    if let Some(held) = awaiting.holding(&resource.path)
        && let Ok(missing) = resource.unavailable()
        && !missing.is_empty()
    {
        let detail = format!(
            "waits for its data: {} is not restored on this host yet, and its backup may hold this file; \
             bootstrap-data restore brings it back (or export {} and run this step again)",
            tilde(held, &ctx.home),
            missing.join(", ")
        );
        let status = if check { Status::WouldChange } else { Status::Skipped };
        return Item {
            id: resource.id.0.clone(),
            kind: "env".into(),
            status,
            path: Some(resource.path.clone()),
            detail,
            diff: None,
        };
    }
    engine::run_one(resource, ctx, check)
}

fn item(id: &str, kind: &str, status: Status, detail: String) -> Item {
    Item { id: id.to_owned(), kind: kind.to_owned(), status, path: None, detail, diff: None }
}

/// Unit files, daemon-reload, enable and start, restarts that are due; services whose
/// data is awaiting its restore are installed but wait (see [`waiting`]).
#[allow(clippy::too_many_arguments)]
fn services(
    manifest: &Manifest,
    ctx: &Ctx,
    check: bool,
    wanted: &dyn Fn(&str) -> bool,
    awaiting: &Awaiting,
    ledger: &mut Ledger,
    report: &mut Report,
) {
    let files: Vec<UnitFile> = unit_files(manifest, &ctx.home).into_iter().filter(|u| wanted(&u.id.0)).collect();
    let chosen: Vec<&Service> =
        manifest.services.iter().filter(|s| wanted(&ItemId::new("service", s.name.as_str()).0)).collect();
    if let Err(e) = systemd::ensure_reachable() {
        let status = if check { Status::Skipped } else { Status::Failed };
        for file in &files {
            report.push(item(&file.id.0, "unit", status, e.to_string()));
        }
        for service in &chosen {
            report.push(item(&ItemId::new("service", service.name.as_str()).0, "service", status, e.to_string()));
        }
        return;
    }
    let mut state = match ServicesState::load(&ctx.state) {
        Ok(state) => state,
        Err(e) => {
            report.push(item("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    };

    // What is due, decided and written down before anything changes.
    let observed: Vec<(usize, Observed)> =
        files.iter().enumerate().filter_map(|(i, f)| f.observe(ctx).ok().map(|o| (i, o))).collect();
    let unit_differs = |service: &Service| {
        let units = service.unit_names();
        observed.iter().any(|(i, o)| {
            let name = files[*i].target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            matches!(o, Observed::Differs(_)) && units.contains(&name)
        })
    };
    let names: Vec<String> = chosen.iter().flat_map(|s| s.units_to_run()).collect();
    let before = match systemd::show(&names, &[]) {
        Ok(states) => states,
        Err(e) => {
            report.push(item("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    };
    let is_running = |service: &Service, states: &[UnitState]| {
        service.units_to_run().iter().all(|u| states.iter().any(|s| s.id == *u && s.is_active()))
    };
    // A service that is not running and writes to a path awaiting its restore waits.
    let waits: BTreeMap<String, Wait> = chosen
        .iter()
        .filter(|s| !is_running(s, &before))
        .map(|s| (s.name.as_str().to_owned(), awaiting.waited_for(s, manifest)))
        .filter(|(_, wait)| !wait.is_empty())
        .collect();
    let active: Vec<&Service> = chosen.iter().copied().filter(|s| !waits.contains_key(s.name.as_str())).collect();
    let mut due: BTreeSet<String> = state.restart_due.clone();
    for service in &active {
        let name = service.name.as_str().to_owned();
        let recorded = state.started.get(&name);
        let env_or_code_changed = recorded.is_some_and(|r| *r != fingerprint(service, manifest));
        if is_running(service, &before) && (env_or_code_changed || unit_differs(service)) {
            due.insert(name);
        }
    }
    if !check {
        if due != state.restart_due {
            state.restart_due = due.clone();
            if let Err(e) = state.save(&ctx.state) {
                report.push(item("service:state", "service", Status::Failed, e.to_string()));
                return;
            }
        }
        if waiting::record(ledger, &chosen, &waits)
            && let Err(e) = ledger.save(&ctx.state)
        {
            report.push(item("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    }

    let mut units_changed = false;
    for file in &files {
        let unit_item = engine::run_one(file, ctx, check);
        units_changed |= unit_item.status == Status::Changed;
        report.push(unit_item);
    }
    let waiting_item = |service: &Service, wait: &Wait| {
        let (status, verb) = if check { (Status::WouldChange, "would wait") } else { (Status::Skipped, "waits") };
        let detail = format!(
            "{verb} for its data: {}; bootstrap-data restore starts it once its data is back",
            wait.describe(&ctx.home)
        );
        item(&ItemId::new("service", service.name.as_str()).0, "service", status, detail)
    };
    if check {
        for service in &chosen {
            let name = service.name.as_str();
            if let Some(paths) = waits.get(name) {
                report.push(waiting_item(service, paths));
                continue;
            }
            let (status, detail) = if due.contains(name) {
                (Status::WouldChange, "would restart: its unit, env file or code changed".to_owned())
            } else if !is_running(service, &before) {
                (Status::WouldChange, format!("would enable and start {}", service.units_to_run().join(" ")))
            } else {
                (Status::Ok, String::new())
            };
            report.push(item(&ItemId::new("service", name).0, "service", status, detail));
        }
        return;
    }
    if units_changed {
        match systemd::daemon_reload() {
            Ok(()) => report.commands.push("systemctl --user daemon-reload".to_owned()),
            Err(e) => report.push(item("service:daemon-reload", "service", Status::Failed, e.to_string())),
        }
    }
    crash_point("after-units");

    let current = systemd::show(&names, &[]).unwrap_or_default();
    let mut to_enable = Vec::new();
    let mut to_start = Vec::new();
    let mut to_restart = Vec::new();
    for service in &active {
        for unit in service.units_to_run() {
            let now = current.iter().find(|s| s.id == unit).cloned().unwrap_or_default();
            if !matches!(now.unit_file_state.as_str(), "enabled" | "static" | "enabled-runtime" | "linked") {
                to_enable.push(unit.clone());
            }
            if due.contains(service.name.as_str()) {
                to_restart.push(unit);
            } else if !now.is_active() {
                to_start.push(unit);
            }
        }
    }
    let mut failures: Vec<String> = Vec::new();
    for (verb, units) in [("enable", &to_enable), ("start", &to_start), ("restart", &to_restart)] {
        if units.is_empty() {
            continue;
        }
        report.commands.push(format!("systemctl --user {verb} {}", units.join(" ")));
        if let Err(e) = systemd::act(verb, units) {
            failures.push(e.to_string());
        }
    }
    let touched: Vec<String> = to_start.iter().chain(&to_restart).cloned().collect();
    let after = systemd::wait_settled(&names, &touched);
    for service in &chosen {
        let name = service.name.as_str();
        let id = ItemId::new("service", name).0;
        if let Some(paths) = waits.get(name) {
            report.push(waiting_item(service, paths));
            continue;
        }
        let run_units = service.units_to_run();
        let touched = run_units.iter().any(|u| to_start.contains(u) || to_restart.contains(u) || to_enable.contains(u));
        if is_running(service, &after) {
            state.started.insert(name.to_owned(), fingerprint(service, manifest));
            state.restart_due.remove(name);
            let detail = if to_restart.iter().any(|u| run_units.contains(u)) {
                "restarted: its unit, env file or code changed".to_owned()
            } else if touched {
                format!("enabled and started {}", run_units.join(" "))
            } else {
                String::new()
            };
            report.push(item(&id, "service", if touched { Status::Changed } else { Status::Ok }, detail));
        } else {
            let states: Vec<String> = run_units
                .iter()
                .map(|u| {
                    let s = after.iter().find(|s| s.id == *u).cloned().unwrap_or_default();
                    format!("{u} is {} ({})", s.active_state, s.sub_state)
                })
                .collect();
            let mut detail = format!("not running: {}", states.join(", "));
            if !failures.is_empty() {
                detail.push_str(&format!("; {}", failures.join("; ")));
            }
            detail.push_str(&format!("; see systemctl --user status {}", run_units.join(" ")));
            report.push(item(&id, "service", Status::Failed, detail));
        }
    }
    if let Err(e) = state.save(&ctx.state) {
        report.push(item("service:state", "service", Status::Failed, e.to_string()));
    }
}

/// nginx sites: observed one by one, installed together.
fn nginx_sites(sites: &NginxSites, ctx: &Ctx, check: bool, wanted: &dyn Fn(&str) -> bool, report: &mut Report) {
    let chosen: Vec<&nginx::Site> = sites.sites.iter().filter(|s| wanted(&s.id.0)).collect();
    let mut due = Vec::new();
    let mut items = Vec::new();
    for site in &chosen {
        let base = Item {
            id: site.id.0.clone(),
            kind: "nginx-site".to_owned(),
            status: Status::Ok,
            path: Some(site.available.clone()),
            detail: String::new(),
            diff: None,
        };
        match sites.observe(site) {
            Ok(Observed::InSync | Observed::Note(_)) => items.push(base),
            Ok(Observed::Differs(d)) => {
                due.push(*site);
                items.push(Item { status: Status::WouldChange, detail: d.summary, diff: d.diff, ..base });
            }
            Err(e) => items.push(Item { status: Status::Failed, detail: format!("cannot observe: {e}"), ..base }),
        }
    }
    if !check && !due.is_empty() {
        let outcome = sites.apply(&due, ctx);
        for item in items.iter_mut().filter(|i| i.status == Status::WouldChange) {
            match &outcome {
                Ok(_) => item.status = Status::Changed,
                Err(e) => {
                    item.status = Status::Failed;
                    item.detail = format!("{}: {e}", item.detail);
                }
            }
        }
        if let Ok(commands) = outcome {
            report.commands.extend(commands);
            // Observe again: an install that did not converge is a failure.
            for item in items.iter_mut().filter(|i| i.status == Status::Changed) {
                if let Some(site) = due.iter().find(|s| s.id.0 == item.id)
                    && !matches!(sites.observe(site), Ok(Observed::InSync))
                {
                    item.status = Status::Failed;
                    item.detail = format!("did not converge: {}", item.detail);
                }
            }
        }
    }
    for item in items {
        report.push(item);
    }
}
