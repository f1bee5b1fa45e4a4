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

mod env_file;
mod linger;
mod nginx;
mod units;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::engine::{self, Cause, Ctx, ManagedBlock, Observed, Resource, RunOptions, Unavailable, UnknownItem};
use common::manifest::{ItemId, Manifest, Service, ShellBlock};
use common::report::{Item, Report, Status};
use common::systemd::{self, UnitState};

pub use env_file::EnvFileResource;
pub use linger::Linger;
pub use nginx::{NginxSites, nginx_program};
pub use units::{ServicesState, USER_UNIT_DIR, UnitFile, fingerprint, unit_files, units_to_run};

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

fn shell_block(block: &ShellBlock) -> Box<dyn Resource + '_> {
    let id = ItemId::new("shell", block.name.as_str());
    let file = block.file.path().to_path_buf();
    let source = block.source.path();
    let unreadable = |reason: String| -> Box<dyn Resource> {
        Box::new(Unavailable { id: id.clone(), kind: "block", path: Some(file.clone()), cause: Cause::Broken(reason) })
    };
    match engine::read_source(source) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(content) => Box::new(ManagedBlock { id, file, name: block.name.as_str().to_owned(), content }),
            Err(_) => unreadable(format!("the block's source {} is not UTF-8 text", source.display())),
        },
        Ok(None) => Box::new(Unavailable {
            id,
            kind: "block",
            path: Some(file),
            cause: Cause::AwaitingRepo(source.to_path_buf()),
        }),
        Err(e) => unreadable(format!("cannot read the block's source: {e}")),
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

/// Runs the step (or only observes it, with `options.check`).
pub fn run(manifest: &Manifest, ctx: &Ctx, options: &RunOptions) -> Result<Report, UnknownItem> {
    let all = item_ids(manifest, ctx);
    for id in &options.only {
        if !all.contains(id) {
            return Err(UnknownItem { id: id.clone(), known: all.join(", ") });
        }
    }
    let wanted = |id: &str| options.only.is_empty() || options.only.iter().any(|o| o == id);
    let mut report = Report::new(STEP, options.check);

    for env in &manifest.env {
        let resource = EnvFileResource::from_manifest(env);
        if wanted(&resource.id.0) {
            report.push(engine::run_one(&resource, ctx, options.check));
        }
    }
    if !manifest.services.is_empty() {
        services(manifest, ctx, options.check, &wanted, &mut report);
        let linger = Linger::new();
        if wanted(&linger.id.0) {
            report.push(engine::run_one(&linger, ctx, options.check));
        }
    }
    if let Some(nginx) = &manifest.nginx {
        nginx_sites(&NginxSites::from_manifest(nginx), ctx, options.check, &wanted, &mut report);
    }
    for block in &manifest.shell {
        let resource = shell_block(block);
        if wanted(&resource.id().0) {
            report.push(engine::run_one(resource.as_ref(), ctx, options.check));
        }
    }
    if !options.check && ctx.state.kept_root().exists() {
        report.kept = Some(ctx.state.kept_root());
    }
    Ok(report)
}

fn item(id: &str, kind: &str, status: Status, detail: String) -> Item {
    Item { id: id.to_owned(), kind: kind.to_owned(), status, path: None, detail, diff: None }
}

/// Unit files, daemon-reload, enable and start, restarts that are due.
fn services(manifest: &Manifest, ctx: &Ctx, check: bool, wanted: &dyn Fn(&str) -> bool, report: &mut Report) {
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
        let (unit, timers) = (service.unit_name(), service.timer_names());
        observed.iter().any(|(i, o)| {
            let name = files[*i].target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            matches!(o, Observed::Differs(_)) && (name == unit || timers.contains(&name))
        })
    };
    let names: Vec<String> = chosen.iter().flat_map(|s| units_to_run(s)).collect();
    let before = match systemd::show(&names, &[]) {
        Ok(states) => states,
        Err(e) => {
            report.push(item("service:state", "service", Status::Failed, e.to_string()));
            return;
        }
    };
    let is_running = |service: &Service, states: &[UnitState]| {
        units_to_run(service).iter().all(|u| states.iter().any(|s| s.id == *u && s.is_active()))
    };
    let mut due: BTreeSet<String> = state.restart_due.clone();
    for service in &chosen {
        let name = service.name.as_str().to_owned();
        let recorded = state.started.get(&name);
        let env_or_code_changed = recorded.is_some_and(|r| *r != fingerprint(service, manifest));
        if is_running(service, &before) && (env_or_code_changed || unit_differs(service)) {
            due.insert(name);
        }
    }
    if !check && due != state.restart_due {
        state.restart_due = due.clone();
        if let Err(e) = state.save(&ctx.state) {
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
    if check {
        for service in &chosen {
            let name = service.name.as_str();
            let (status, detail) = if due.contains(name) {
                (Status::WouldChange, "would restart: its unit, env file or code changed".to_owned())
            } else if !is_running(service, &before) {
                (Status::WouldChange, format!("would enable and start {}", units_to_run(service).join(" ")))
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
    for service in &chosen {
        for unit in units_to_run(service) {
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
    let after = settle(&names, to_start.iter().chain(&to_restart).cloned().collect());
    for service in &chosen {
        let name = service.name.as_str();
        let id = ItemId::new("service", name).0;
        let run_units = units_to_run(service);
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

/// The state of `names` once the units just started or restarted have settled
/// (active, or failed), waiting at most a few seconds; one `show` call per look.
fn settle(names: &[String], touched: Vec<String>) -> Vec<UnitState> {
    let started = Instant::now();
    loop {
        let states = systemd::show(names, &[]).unwrap_or_default();
        let settling = touched
            .iter()
            .any(|u| states.iter().find(|s| s.id == *u).is_none_or(|s| !s.is_active() && s.active_state != "failed"));
        if !settling || started.elapsed() > Duration::from_secs(5) {
            // A service that dies right after starting shows active for a moment: look
            // once more after a short pause before calling it running.
            if touched.is_empty() || started.elapsed() > Duration::from_millis(600) {
                return states;
            }
        }
        std::thread::sleep(Duration::from_millis(150));
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
