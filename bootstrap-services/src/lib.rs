//! Restore steps 4 and 5: the host integration layer, from the repo, exactly and
//! safely, restarting only what changed.
//!
//! In order: env files (`env:NAME`), unit files (`unit:FILE`, verified before they are
//! installed; with `backup.schedule`, also the scheduled backup's own
//! `unit:pi-bootstrap-backup.service` and `unit:pi-bootstrap-backup.timer`, see
//! [`backup_timer`]), one `daemon-reload` when any changed, the services
//! (`service:NAME`: enabled and active; restarted when their unit, env file or code
//! changed), the backup timer (`timer:pi-bootstrap-backup`: enabled and active,
//! restarted when its unit changed), linger (`linger:USER`), nginx sites (`nginx:SITE`,
//! checked as a whole before anything live changes), managed shell blocks
//! (`shell:NAME`).
//!
//! A restart that is due is written to the state folder before any file changes, so a
//! run that dies halfway restarts it on the next run. The state of every unit comes
//! from one read of the user manager (`common::systemd::show`).
//!
//! On a fresh host, a service that writes to data still awaiting its restore waits:
//! installed, not enabled, not started, until `bootstrap-data restore` has put its data
//! back and starts it (see [`waiting`]).

pub mod backup_timer;
pub mod decide;
mod env_file;
mod linger;
mod nginx;
mod units;
pub mod waiting;

use std::collections::{BTreeMap, BTreeSet};

use backup_timer::{BackupTimer, GeneratedUnit};

use common::durable::Ledger;
use common::engine::{self, Ctx, EngineError, Observed, Resource, RunOptions};
use common::manifest::{ItemId, Manifest, Service};
use common::report::{Item, Report, Status, tilde};
use common::step::{Step, StepError};
use common::systemd::{self, UnitState};
use decide::{Actions, Facts, Plan, Tense, UnitNow};
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

/// Every item id of the step, in order (for `--only` and for the audit).
pub fn item_ids(manifest: &Manifest, ctx: &Ctx) -> Vec<String> {
    let mut ids: Vec<String> = manifest.env.iter().map(|e| ItemId::new("env", e.name.as_str()).0).collect();
    ids.extend(unit_files(manifest, &ctx.home).iter().map(|u| u.id.0.clone()));
    let backup = BackupTimer::from_manifest(manifest, &ctx.home);
    if let Some(backup) = &backup {
        ids.extend(backup.units().iter().map(|u| u.id.0.clone()));
    }
    ids.extend(manifest.services.iter().map(|s| ItemId::new("service", s.name.as_str()).0));
    if let Some(backup) = &backup {
        ids.push(backup.id.0.clone());
    }
    if !manifest.services.is_empty() || backup.is_some() {
        ids.push(Linger::new().id.0);
    }
    if let Some(nginx) = &manifest.nginx {
        ids.extend(nginx.sites.iter().map(|s| ItemId::new("nginx", s.name.as_str()).0));
    }
    ids.extend(manifest.shell.iter().map(|s| ItemId::new("shell", s.name.as_str()).0));
    ids
}

/// The step, as its binary runs it (`common::step::main`).
pub struct ServicesStep;

impl Step for ServicesStep {
    const NAME: &'static str = STEP;
    type Args = Args;

    fn item_ids(manifest: &Manifest, ctx: &Ctx, _: &Args) -> common::step::Ids {
        Ok(Some(item_ids(manifest, ctx)))
    }

    fn run(manifest: &Manifest, ctx: &Ctx, args: &Args) -> common::step::Ran {
        Ok(run(manifest, ctx, &args.common.run_options())?.into())
    }
}

common::common_args!(Args);

/// Runs the step (or only observes it, with `options.check`). Without `check`, the
/// caller holds the run lock and has noted the first sight of the data paths
/// (`common::step::main` does both).
pub fn run(manifest: &Manifest, ctx: &Ctx, options: &RunOptions) -> Result<Report, StepError> {
    common::step::check_only(&options.only, &item_ids(manifest, ctx))?;
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
    let backup = BackupTimer::from_manifest(manifest, &ctx.home);
    if !manifest.services.is_empty() || backup.is_some() {
        let units = Units { manifest, backup: backup.as_ref() };
        services(&units, ctx, options.check, &wanted, &awaiting, &mut ledger, &mut report);
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
        return Item::new(resource.id.0.clone(), "env", status, detail).at(resource.path.clone());
    }
    engine::run_one(resource, ctx, check)
}

/// What [`services`] installs and runs: the declared services, and the scheduled
/// backup when there is one.
struct Units<'a> {
    manifest: &'a Manifest,
    backup: Option<&'a BackupTimer>,
}

/// The properties asked of every unit besides the base ones: whether systemd holds an
/// older version than the file (a run that died between writing and reloading), and
/// when a timer fires next.
pub const UNIT_PROPERTIES: &[&str] = &["NeedDaemonReload", "NextElapseUSecRealtime"];

/// Unit files, daemon-reload, enable and start, restarts that are due; services whose
/// data is awaiting its restore are installed but wait (see [`waiting`]); the backup
/// timer (see [`backup_timer`]).
#[allow(clippy::too_many_arguments)]
fn services(
    units: &Units<'_>,
    ctx: &Ctx,
    check: bool,
    wanted: &dyn Fn(&str) -> bool,
    awaiting: &Awaiting,
    ledger: &mut Ledger,
    report: &mut Report,
) {
    let manifest = units.manifest;
    let files: Vec<UnitFile> = unit_files(manifest, &ctx.home).into_iter().filter(|u| wanted(&u.id.0)).collect();
    let generated: Vec<&GeneratedUnit> =
        units.backup.map(|b| b.units().into_iter().filter(|u| wanted(&u.id.0)).collect()).unwrap_or_default();
    let timer = units.backup.filter(|b| wanted(&b.id.0));
    let chosen: Vec<&Service> =
        manifest.services.iter().filter(|s| wanted(&ItemId::new("service", s.name.as_str()).0)).collect();
    if let Err(e) = systemd::ensure_reachable() {
        if check {
            unreachable_check(&files, &generated, &chosen, timer, ctx, &e, report);
            return;
        }
        let status = Status::Failed;
        for file in &files {
            report.push(Item::new(&file.id.0, "unit", status, e.to_string()));
        }
        for unit in &generated {
            report.push(Item::new(&unit.id.0, "unit", status, e.to_string()));
        }
        for service in &chosen {
            report.push(Item::new(&ItemId::new("service", service.name.as_str()).0, "service", status, e.to_string()));
        }
        if let Some(timer) = timer {
            report.push(Item::new(&timer.id.0, "timer", status, e.to_string()));
        }
        return;
    }
    let mut state = match ServicesState::load(&ctx.state) {
        Ok(state) => state,
        Err(e) => {
            report.push(Item::new("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    };

    // What is due, decided and written down before anything changes. Each unit file is
    // observed once: the same observation decides, is verified and is run.
    let observed: Vec<Result<Observed, EngineError>> = files.iter().map(|f| f.observe(ctx)).collect();
    let generated_observed: Vec<Result<Observed, EngineError>> = generated.iter().map(|u| u.observe(ctx)).collect();
    let differs = |o: &Result<Observed, EngineError>| matches!(o, Ok(Observed::Differs(_)));
    let pending: Vec<&UnitFile> = files.iter().zip(&observed).filter(|(_, o)| differs(o)).map(|(f, _)| f).collect();
    let generated_pending: Vec<&GeneratedUnit> =
        generated.iter().zip(&generated_observed).filter(|(_, o)| differs(o)).map(|(u, _)| *u).collect();
    // The unit files that differ from the repo's, by name: looked up per service.
    let differing: BTreeSet<String> =
        pending.iter().filter_map(|f| f.target.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    let unit_differs = |service: &Service| service.unit_names().iter().any(|u| differing.contains(u));
    let timer_unit = backup_timer::timer_unit();
    let mut names: Vec<String> = chosen.iter().flat_map(|s| s.units_to_run()).collect();
    if timer.is_some() {
        names.push(timer_unit.clone());
    }
    // What each service runs, read from its files before systemd is asked (the audit's
    // look at the manager may still be under way).
    let fingerprints: Vec<String> = chosen.iter().map(|s| fingerprint(s, manifest)).collect();
    let before = match systemd::show(&names, UNIT_PROPERTIES) {
        Ok(states) => States::of(states),
        Err(e) => {
            report.push(Item::new("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    };
    let is_running = |service: &Service, states: &States| {
        service.units_to_run().iter().all(|u| states.0.get(u).is_some_and(UnitState::is_active))
    };
    // Decided from what was observed and what the journal says (`decide`), before
    // anything changes.
    let mut waits: BTreeMap<String, Wait> = BTreeMap::new();
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    let mut due: BTreeSet<String> = state.restart_due.clone();
    for (service, fingerprint) in chosen.iter().zip(fingerprints) {
        let name = service.name.as_str().to_owned();
        let running = is_running(service, &before);
        let wait = if running { Wait::default() } else { awaiting.waited_for(service, manifest) };
        let facts = Facts {
            running,
            waits_for_data: !wait.is_empty(),
            unit_changed: unit_differs(service),
            started_with: state.started.get(&name).cloned(),
            fingerprint,
            restart_due: state.restart_due.contains(&name),
        };
        let plan = decide::plan(&facts);
        match plan {
            Plan::Wait => {
                waits.insert(name.clone(), wait);
            }
            Plan::Restart => {
                due.insert(name.clone());
            }
            Plan::Ensure => {}
        }
        plans.insert(name, plan);
    }
    // The timer restarts when its own unit changed while it runs (the service it
    // starts is read afresh at each run).
    if let Some(timer) = timer {
        let differs = generated_pending.iter().any(|u| u.id == timer.timer.id);
        if differs && before.get(&timer_unit).is_active() {
            due.insert(timer.id.0.clone());
        }
    }
    if !check {
        if due != state.restart_due {
            state.restart_due = due.clone();
            if let Err(e) = state.save(&ctx.state) {
                report.push(Item::new("service:state", "service", Status::Failed, e.to_string()));
                return;
            }
        }
        if waiting::record(ledger, &chosen, &waits)
            && let Err(e) = ledger.save(&ctx.state)
        {
            report.push(Item::new("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    }

    if !check {
        units::verify_pending(&pending, &generated_pending, ctx);
    }
    let mut units_changed = false;
    for (file, observed) in files.iter().zip(observed) {
        let unit_item = engine::run_observed(file, observed, ctx, check);
        units_changed |= unit_item.status == Status::Changed;
        report.push(unit_item);
    }
    // The backup's units that could not be observed or installed: the timer is left as it is.
    let mut broken: Vec<String> = Vec::new();
    for (unit, observed) in generated.iter().zip(generated_observed) {
        let unit_item = engine::run_observed(*unit, observed, ctx, check);
        units_changed |= unit_item.status == Status::Changed;
        if unit_item.status == Status::Failed {
            broken.push(unit_item.id.clone());
        }
        report.push(unit_item);
    }
    let waiting_item = |service: &Service, wait: &Wait| {
        // The run leaves it as it is: skipped in both, the check saying what the run would do.
        let verb = if check { "would wait" } else { "waits" };
        let status = Status::Skipped;
        let detail = format!(
            "{verb} for its data: {}; bootstrap-data restore starts it once its data is back",
            wait.describe(&ctx.home)
        );
        Item::new(&ItemId::new("service", service.name.as_str()).0, "service", status, detail)
    };
    if check {
        for service in &chosen {
            let name = service.name.as_str();
            if let Some(paths) = waits.get(name) {
                report.push(waiting_item(service, paths));
                continue;
            }
            // What the run would do, from the same plan and the same unit states.
            let plan = plans.get(name).copied().unwrap_or(Plan::Ensure);
            let run_units = service.units_to_run();
            let mut actions = Actions::default();
            actions.add(plan, &run_units.iter().map(|u| unit_now(&before, u)).collect::<Vec<_>>());
            let detail = actions.describe(&run_units, RESTART_WHY, Tense::Would);
            let status = if detail.is_empty() { Status::Ok } else { Status::WouldChange };
            report.push(Item::new(&ItemId::new("service", name).0, "service", status, detail));
        }
        if let Some(timer) = timer {
            report.push(timer_check_item(timer, &before.get(&timer_unit), &due, &broken, &ctx.home));
        }
        // A unit file that changed after the last daemon-reload (an interrupted run):
        // systemd still runs the old definition.
        let stale: Vec<&str> = before
            .0
            .values()
            .filter(|s| s.properties.get("NeedDaemonReload").is_some_and(|v| v == "yes"))
            .map(|s| s.id.as_str())
            .collect();
        if !stale.is_empty() && !units_changed {
            report.push(Item::new(
                "service:daemon-reload",
                "service",
                Status::WouldChange,
                format!(
                    "systemd still runs an older definition of {} (its file changed after the last daemon-reload): would reload",
                    stale.join(", ")
                ),
            ));
        }
        return;
    }
    let stale = before.0.values().any(|s| s.properties.get("NeedDaemonReload").is_some_and(|v| v == "yes"));
    common::sys::crash_point("before-daemon-reload");
    if units_changed || stale {
        match systemd::daemon_reload() {
            Ok(()) => report.commands.push("systemctl --user daemon-reload".to_owned()),
            Err(e) => report.push(Item::new("service:daemon-reload", "service", Status::Failed, e.to_string())),
        }
    }
    common::sys::crash_point("after-units");

    // Without a reload, systemd has them as they were before.
    let reloaded = units_changed || stale;
    let current =
        if reloaded { States::of(systemd::show(&names, UNIT_PROPERTIES).unwrap_or_default()) } else { before.clone() };
    let mut actions = Actions::default();
    for service in &chosen {
        let plan = plans.get(service.name.as_str()).copied().unwrap_or(Plan::Ensure);
        let units: Vec<(String, UnitNow)> = service.units_to_run().iter().map(|u| unit_now(&current, u)).collect();
        actions.add(plan, &units);
    }
    let done = actions.clone();
    let Actions { enable: mut to_enable, start: mut to_start, restart: mut to_restart } = actions;
    // The timer, once its units are in place (or as they were, when they failed).
    let act_on_timer = timer.filter(|_| broken.is_empty() && current.get(&timer_unit).exists());
    let timer_done = act_on_timer
        .map(|timer| timer_actions(&timer_unit, &current.get(&timer_unit), due.contains(&timer.id.0)))
        .unwrap_or_default();
    to_enable.extend(timer_done.enable.iter().cloned());
    to_start.extend(timer_done.start.iter().cloned());
    to_restart.extend(timer_done.restart.iter().cloned());
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
    let acted = !(to_enable.is_empty() && touched.is_empty());
    let after =
        if acted { States::of(systemd::wait_settled_with(&names, &touched, UNIT_PROPERTIES)) } else { current.clone() };
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
            let detail = done.describe(&run_units, RESTART_WHY, Tense::Done);
            report.push(Item::new(&id, "service", if touched { Status::Changed } else { Status::Ok }, detail));
        } else {
            let states: Vec<String> = run_units
                .iter()
                .map(|u| {
                    let s = after.get(u);
                    format!("{u} is {} ({})", s.active_state, s.sub_state)
                })
                .collect();
            let mut detail = format!("not running: {}", states.join(", "));
            if !failures.is_empty() {
                detail.push_str(&format!("; {}", failures.join("; ")));
            }
            detail.push_str(&format!("; see systemctl --user status {}", run_units.join(" ")));
            report.push(Item::new(&id, "service", Status::Failed, detail));
        }
    }
    if let Some(timer) = timer {
        let acted = act_on_timer.is_some();
        let restarted = to_restart.contains(&timer_unit);
        let touched = restarted || to_start.contains(&timer_unit) || to_enable.contains(&timer_unit);
        let mut now = after.get(&timer_unit);
        if now.is_active() && !now.properties.contains_key("NextElapseUSecRealtime") {
            // The next elapse is only known once the timer runs.
            now = systemd::show(std::slice::from_ref(&timer_unit), UNIT_PROPERTIES)
                .ok()
                .and_then(|s| s.into_iter().next())
                .unwrap_or(now);
        }
        let timer_item = if !acted {
            timer_left_item(timer, &now, &broken)
        } else if now.is_active() && now.is_enabled() {
            state.restart_due.remove(&timer.id.0);
            let done = timer_done.describe(std::slice::from_ref(&timer_unit), TIMER_RESTART_WHY, Tense::Done);
            let next = next_run(&now);
            let detail = [done, next].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join("; ");
            let status = if touched { Status::Changed } else { Status::Ok };
            with_program(timer, Item::new(&timer.id.0, "timer", status, detail), &ctx.home)
        } else {
            let mut detail = format!("{timer_unit} is not running: {}", now.describe());
            if !failures.is_empty() {
                detail.push_str(&format!("; {}", failures.join("; ")));
            }
            detail.push_str(&format!("; see systemctl --user status {timer_unit}"));
            with_program(timer, Item::new(&timer.id.0, "timer", Status::Failed, detail), &ctx.home)
        };
        report.push(timer_item);
    }
    if let Err(e) = state.save(&ctx.state) {
        report.push(Item::new("service:state", "service", Status::Failed, e.to_string()));
    }
}

/// `--check` (and the audit) without a reachable user manager: the unit files are
/// still compared with the repo (they are files), but what systemd runs is unknown, so
/// every service and the timer fail with the reason and its fix: the check cannot say
/// the host is right.
fn unreachable_check(
    files: &[UnitFile],
    generated: &[&GeneratedUnit],
    chosen: &[&Service],
    timer: Option<&BackupTimer>,
    ctx: &Ctx,
    why: &systemd::SystemdError,
    report: &mut Report,
) {
    for file in files {
        report.push(engine::run_one(file, ctx, true));
    }
    for unit in generated {
        report.push(engine::run_one(*unit, ctx, true));
    }
    let unknown = format!("whether it is enabled and running is unknown: {why}");
    for service in chosen {
        report.push(Item::new(&ItemId::new("service", service.name.as_str()).0, "service", Status::Failed, &unknown));
    }
    if let Some(timer) = timer {
        report.push(Item::new(&timer.id.0, "timer", Status::Failed, &unknown));
    }
}

/// Why a service restarts, in its item.
const RESTART_WHY: &str = "its unit, env file or code changed";
/// Why the backup timer restarts, in its item.
const TIMER_RESTART_WHY: &str = "its unit changed";

/// What the backup timer needs, as systemd has it now: enabled, and started (or
/// restarted, when its unit changed while it ran).
fn timer_actions(unit: &str, now: &UnitState, restart_due: bool) -> Actions {
    let mut actions = Actions::default();
    if !now.is_enabled() {
        actions.enable.push(unit.to_owned());
    }
    if restart_due {
        actions.restart.push(unit.to_owned());
    } else if !now.is_active() {
        actions.start.push(unit.to_owned());
    }
    actions
}

/// `unit` as systemd has it in `states`, for the plan's actions: enabled (or with
/// nothing to enable: static, linked), active.
/// What systemd said of some units, by name.
#[derive(Debug, Clone)]
struct States(BTreeMap<String, UnitState>);

impl States {
    fn of(states: Vec<UnitState>) -> States {
        States(states.into_iter().map(|s| (s.id.clone(), s)).collect())
    }

    /// The unit's state; empty when systemd did not answer for it.
    fn get(&self, unit: &str) -> UnitState {
        self.0.get(unit).cloned().unwrap_or_default()
    }
}

fn unit_now(states: &States, unit: &str) -> (String, UnitNow) {
    let now = states.0.get(unit).cloned().unwrap_or_default();
    let enabled = matches!(now.unit_file_state.as_str(), "enabled" | "static" | "enabled-runtime" | "linked");
    (unit.to_owned(), UnitNow { enabled, active: now.is_active() })
}

/// "next run Wed 2026-12-02 03:00:00 UTC", when systemd says.
fn next_run(state: &UnitState) -> String {
    match state.properties.get("NextElapseUSecRealtime").map(|v| v.trim()) {
        Some(next) if !next.is_empty() && next != "n/a" && next != "0" => format!("next run {next}"),
        _ => String::new(),
    }
}

/// The timer's item, failed when the program it runs is not installed: what was done
/// stays in the detail, then what to do.
fn with_program(timer: &BackupTimer, mut it: Item, home: &std::path::Path) -> Item {
    if let Some(problem) = timer.program_problem(home) {
        it.status = Status::Failed;
        it.detail = if it.detail.is_empty() { problem } else { format!("{}; but {problem}", it.detail) };
    }
    it
}

/// The timer's item when its units could not be put in place: it is left as it is.
fn timer_left_item(timer: &BackupTimer, now: &UnitState, broken: &[String]) -> Item {
    let left = if now.exists() {
        format!("{} was left as it is ({})", backup_timer::timer_unit(), now.describe())
    } else {
        format!("{} is not installed", backup_timer::timer_unit())
    };
    let why = if broken.is_empty() { String::new() } else { format!(": see {}", broken.join(", ")) };
    Item::new(&timer.id.0, "timer", Status::Skipped, format!("{left}, its units could not be put in place{why}"))
}

/// The timer's item under `--check`: what a run would do.
fn timer_check_item(
    timer: &BackupTimer,
    now: &UnitState,
    due: &BTreeSet<String>,
    broken: &[String],
    home: &std::path::Path,
) -> Item {
    if !broken.is_empty() {
        return timer_left_item(timer, now, broken);
    }
    let unit = backup_timer::timer_unit();
    let would = timer_actions(&unit, now, due.contains(&timer.id.0)).describe(
        std::slice::from_ref(&unit),
        TIMER_RESTART_WHY,
        Tense::Would,
    );
    let it = if would.is_empty() {
        Item::new(&timer.id.0, "timer", Status::Ok, next_run(now))
    } else {
        Item::new(&timer.id.0, "timer", Status::WouldChange, would)
    };
    with_program(timer, it, home)
}

/// nginx sites: observed one by one, installed together.
fn nginx_sites(sites: &NginxSites, ctx: &Ctx, check: bool, wanted: &dyn Fn(&str) -> bool, report: &mut Report) {
    let chosen: Vec<&nginx::Site> = sites.sites.iter().filter(|s| wanted(&s.id.0)).collect();
    let mut due = Vec::new();
    let mut items = Vec::new();
    for site in &chosen {
        let site_item = |status, detail: String| {
            Item::new(site.id.0.clone(), "nginx-site", status, detail).at(site.available.clone())
        };
        match sites.observe(site) {
            Ok(Observed::InSync | Observed::Note(_) | Observed::LeftAlone(_)) => {
                items.push(site_item(Status::Ok, String::new()))
            }
            Ok(Observed::Differs(d)) => {
                due.push(*site);
                items.push(site_item(Status::WouldChange, d.summary).with_diff(d.diff));
            }
            Err(e) => items.push(site_item(Status::Failed, format!("cannot observe: {e}"))),
        }
    }
    // A reload an interrupted run left due (the sites changed, nginx still runs the
    // old ones): done now, unless an install below reloads anyway.
    let reload_due = sites.reload_due(ctx).unwrap_or(true);
    if reload_due && due.is_empty() {
        let detail = "the sites changed but nginx was not reloaded since (an interrupted run)";
        let it = if check {
            Item::new("nginx:reload", "nginx", Status::WouldChange, format!("{detail}: would reload it"))
        } else {
            let mut commands = Vec::new();
            match sites.reload(ctx, &mut commands) {
                Ok(()) => {
                    report.commands.extend(commands);
                    Item::new("nginx:reload", "nginx", Status::Changed, format!("{detail}: reloaded"))
                }
                Err(e) => Item::new("nginx:reload", "nginx", Status::Failed, format!("{detail}: {e}")),
            }
        };
        items.push(it);
    }
    // `nginx -t` on the configuration a run would put in place: what it would refuse fails.
    if check && let Err(e) = sites.check(&due, ctx) {
        for item in items.iter_mut().filter(|i| i.status == Status::WouldChange) {
            item.status = Status::Failed;
            item.detail = format!("{}: {e}", item.detail);
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
