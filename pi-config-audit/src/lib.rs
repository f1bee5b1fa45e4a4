//! The audit: every difference between the manifest and the host, and what is on the
//! host but not in the manifest. Read-only: it takes no lock and writes nothing (with
//! `--fetch`, the pi-config repo's remote-tracking ref, as `git fetch` does).
//!
//! Two halves, run side by side:
//!
//! - every step's plan observed with the same code as `--check` (prerequisites,
//!   pi-config, services), so the audit never disagrees with what a run would do:
//!   what a run would change is reported as `drift`, with its diff (env files show
//!   names, never values);
//! - scans for what the manifest does not declare ([`scan`]): unit files, drop-ins and
//!   enabled or running services, enabled nginx sites, managed blocks, entries of HOME
//!   and of the repo with no role and backup class, declared ports nothing listens on,
//!   env files units read that are not declared, the backup password's mode, what the
//!   repo tracks or fails to ignore; and backup freshness, the last verification of
//!   the backup and the last scheduled backup through [`BackupStatus`].
//!
//! Every item belongs to a [`Category`]; the report is ordered by category. The cost is
//! fixed, not per item: one read of the user manager for every loaded unit (besides the
//! services step's own: `common::systemd::look_once`), two git calls, one netlink dump of the listening sockets, one listing per
//! folder; lookups go through sets built once ([`declared::Declared`]).

pub mod backup;
pub mod category;
pub mod declared;
pub mod render;
pub mod scan;

use common::engine::{self, Ctx, RunOptions, UnknownItem};
use common::manifest::Manifest;
use common::output::Verbosity;
use common::report::{Item, Report, Status};

pub use backup::{BackupStatus, BootstrapData};
pub use category::Category;
use declared::Declared;

/// The step's name in reports.
pub const STEP: &str = "pi-config-audit";

/// Reports every difference between the manifest and the host, and what is on the host
/// but not declared; changes nothing.
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
    /// Fetch the pi-config repo's branch first (the only thing the audit writes: the
    /// remote-tracking ref); without it, the repo is compared with its remote as last
    /// fetched, offline.
    #[arg(long)]
    pub fetch: bool,
    /// Ask the restic repository for backup freshness, and run every prerequisite's
    /// check command; without it, the local record that bootstrap-data backup, restore
    /// and verify write answers when there is one (a snapshot made by anything else
    /// since shows only with --deep), and a version found before is taken from the
    /// cache while its binary is unchanged.
    #[arg(long)]
    pub deep: bool,
}

common::common_args!(Args);

/// The audit, as its binary runs it (`common::step::main`): it changes nothing (no
/// lock), and its ids are known only once it ran, so it checks `--only` itself.
pub struct AuditStep;

impl common::step::Step for AuditStep {
    const NAME: &'static str = STEP;
    type Args = Args;

    fn item_ids(_: &Manifest, _: &Ctx, _: &Args) -> common::step::Ids {
        Ok(None)
    }

    fn applies(_: &Args) -> bool {
        false
    }

    fn start_early(_: &Args) {
        look_at_units();
    }

    fn run(manifest: &Manifest, ctx: &Ctx, args: &Args) -> common::step::Ran {
        let mut options = Options::new(args.common.verbosity());
        if args.fetch {
            options.fetch = bootstrap_pi_config::Fetch::Yes;
        }
        if args.deep {
            options.backup = &BootstrapData { deep: true };
            options.deep_prereqs = true;
        }
        let audit = audit(manifest, ctx, &options)?.only(&args.common.only)?;
        let rendered = common::step::Rendered {
            human: render::render_human(&audit, &ctx.home, args.common.verbosity(), render::colour_allowed()),
            json: render::render_json(&audit),
        };
        Ok(common::step::Outcome { report: audit.report, rendered: Some(rendered), note: None, failure: None })
    }
}

/// How to audit.
pub struct Options<'a> {
    pub verbosity: Verbosity,
    /// Where backup freshness comes from (`--deep`: [`BootstrapData`] asking the
    /// repository).
    pub backup: &'a dyn BackupStatus,
    /// Where the listening sockets are read from (the kernel).
    pub sockets: scan::ports::Sockets,
    /// Observe the prerequisites (each check command in parallel, or its cached
    /// answer while the binary is unchanged).
    pub prereqs: bool,
    /// Run every prerequisite's check command, whatever the cache holds (`--deep`).
    pub deep_prereqs: bool,
    /// Whether the repo is fetched before it is compared with its remote.
    pub fetch: bootstrap_pi_config::Fetch,
}

impl Options<'static> {
    /// Everything, backup freshness from `bootstrap-data status`.
    pub fn new(verbosity: Verbosity) -> Options<'static> {
        Options {
            verbosity,
            backup: &BootstrapData { deep: false },
            sockets: scan::ports::Sockets::Kernel,
            prereqs: true,
            deep_prereqs: false,
            fetch: bootstrap_pi_config::Fetch::No,
        }
    }
}

/// The audit's result: a report (the JSON contract of `common::report`) whose items
/// are ordered by category, and the category of each item.
#[derive(Debug, Clone)]
pub struct Audit {
    pub report: Report,
    /// `categories[i]` is the category of `report.items[i]`.
    pub categories: Vec<Category>,
}

impl Audit {
    /// Builds the audit from items, ordered by category (stable within one).
    pub fn from_items(mut items: Vec<(Category, Item)>) -> Audit {
        items.sort_by_key(|(category, _)| *category);
        let mut report = Report::new(STEP, true);
        let mut categories = Vec::with_capacity(items.len());
        for (category, item) in items {
            categories.push(category);
            report.push(item);
        }
        Audit { report, categories }
    }

    /// The items and their categories.
    pub fn entries(&self) -> impl Iterator<Item = (Category, &Item)> {
        self.categories.iter().copied().zip(&self.report.items)
    }

    /// Only the items `only` names (all when empty); an id that is not in the audit is
    /// an error of the command line.
    pub fn only(self, only: &[String]) -> Result<Audit, UnknownItem> {
        if only.is_empty() {
            return Ok(self);
        }
        if let Some(id) = only.iter().find(|id| !self.report.items.iter().any(|i| i.id == **id)) {
            let known = self.report.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(UnknownItem { id: id.clone(), known });
        }
        let kept = self.categories.into_iter().zip(self.report.items).filter(|(_, i)| only.contains(&i.id)).collect();
        Ok(Audit::from_items(kept))
    }

    /// 0 when the host matches the manifest; 1 on any drift or failure.
    pub fn exit_code(&self) -> i32 {
        self.report.exit_code()
    }
}

/// The steps' items, observed like `--check`; what a run would change is drift.
fn observe_steps(manifest: &Manifest, ctx: &Ctx, options: &Options<'_>) -> Result<Vec<Item>, UnknownItem> {
    let check = RunOptions { check: true, only: Vec::new(), verbosity: options.verbosity, audit: true };
    let (prereqs, pi_config, services) = std::thread::scope(|scope| {
        let prereqs = scope.spawn(|| {
            let prereqs: Vec<_> = manifest.prereqs.iter().collect();
            let observe =
                bootstrap_prereqs::Options { check: true, deep: options.deep_prereqs, verbosity: options.verbosity };
            options.prereqs.then(|| bootstrap_prereqs::run(&prereqs, &ctx.state, observe))
        });
        let services = scope.spawn(|| bootstrap_services::run(manifest, ctx, &check));
        let plan = bootstrap_pi_config::plan(manifest, options.fetch);
        let plan: Vec<&dyn engine::Resource> = plan.iter().map(|r| r.as_ref()).collect();
        let pi_config = engine::run(bootstrap_pi_config::STEP, &plan, ctx, &check);
        (joined(prereqs), pi_config, joined(services))
    });
    let services = match services.unwrap_or_else(|| Ok(crashed(bootstrap_services::STEP))) {
        Ok(report) => report,
        Err(common::step::StepError::UnknownItem(e)) => return Err(e),
        Err(e) => failed(bootstrap_services::STEP, e.to_string()),
    };
    let prereqs = prereqs.unwrap_or_else(|| Some(crashed(bootstrap_prereqs::STEP)));
    let mut items = Vec::new();
    for report in prereqs.into_iter().chain([pi_config, services]) {
        for mut item in report.items {
            if item.status == Status::WouldChange {
                item.status = Status::Drift;
            }
            items.push(item);
        }
    }
    Ok(items)
}

fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, T>) -> Option<T> {
    handle.join().ok()
}

fn crashed(step: &str) -> Report {
    failed(step, "observing this step crashed".to_owned())
}

fn failed(step: &str, detail: String) -> Report {
    let mut report = Report::new(step, true);
    report.push(Item::new(format!("{step}:observe"), "step", Status::Failed, detail));
    report
}

/// The scans for what the manifest does not declare, and backup freshness.
fn scan_host(manifest: &Manifest, ctx: &Ctx, options: &Options<'_>) -> Vec<(Category, Item)> {
    let declared = Declared::new(manifest, &ctx.home);
    let mut found: Vec<(Category, Item)> = Vec::new();
    let mut add = |category: Category, items: Vec<Item>| found.extend(items.into_iter().map(|i| (category, i)));

    let manager = scan::units::query_manager();
    add(Category::Services, scan::units::scan_units(&declared, &manager));
    add(Category::Services, scan::ports::scan_ports(&declared.ports, &options.sockets));
    if let Some(nginx) = &manifest.nginx {
        add(Category::Nginx, scan::nginx::scan_sites(nginx, &declared));
    }
    add(Category::Shell, scan::blocks::scan_blocks(&declared));
    let read_by = scan::units::env_files_read(&declared, &manager);
    add(Category::Secrets, scan::secrets::scan_secrets(manifest, &declared, &read_by));
    add(Category::Paths, scan::home::scan_home(&declared));
    match scan::repo::unavailable(&declared) {
        Some(why) => add(
            Category::Repo,
            vec![scan::item("scan:repo-tracked".into(), "scan", Status::Skipped, Some(declared.repo.clone()), why)],
        ),
        None => match scan::repo::ls_files(&declared) {
            Ok(tracked) => {
                add(Category::Paths, scan::home::scan_repo_root(&declared, &tracked.top_level()));
                add(Category::Repo, scan::repo::scan_hygiene(&declared, &tracked));
            }
            Err(e) => add(
                Category::Repo,
                vec![scan::item(
                    "scan:repo-tracked".into(),
                    "scan",
                    Status::Failed,
                    Some(declared.repo.clone()),
                    format!("cannot ask git what the repo tracks: {e}"),
                )],
            ),
        },
    }
    add(Category::Backup, backup::backup_items(manifest, ctx, options.backup));
    let leftovers = common::staging::leftovers(manifest, &ctx.state, &ctx.home);
    add(
        Category::Files,
        leftovers
            .into_iter()
            .map(|path| {
                let id = format!("staging:{}", common::report::tilde(&path, &ctx.home));
                let detail =
                    "left by an interrupted run (its process is gone): the next run that changes things removes it";
                scan::item(id, "staging", Status::Drift, Some(path), detail.to_owned())
            })
            .collect(),
    );
    found
}

/// Starts the audit's one look at the user manager's services and timers, with what
/// the parts that read every unit ask of them (the declared services, the undeclared
/// units), instead of a read each; the binary starts it before it reads the manifest
/// (systemd answers a thousand units in some 150 ms of its own time). The scheduled
/// backup's two units are read apart, by name: on the bus each property is a message,
/// and its three would be asked of every unit.
pub fn look_at_units() {
    let properties: Vec<&str> =
        bootstrap_services::UNIT_PROPERTIES.iter().chain(scan::units::PROPERTIES).copied().collect();
    common::systemd::look_once(&["*.service", "*.timer"], &properties);
}

/// What one audit keeps of its reads (the look at the manager, git's answers),
/// forgotten when it ends: a process that audits again asks afresh.
struct KeptForOneAudit;

impl Drop for KeptForOneAudit {
    fn drop(&mut self) {
        common::systemd::forget_look();
        common::durable::provenance::forget_answers();
    }
}

/// Audits the host against the manifest. Changes nothing.
pub fn audit(manifest: &Manifest, ctx: &Ctx, options: &Options<'_>) -> Result<Audit, UnknownItem> {
    look_at_units();
    // The services step and the backup status ask git the same of the same data paths.
    common::durable::provenance::remember_answers();
    let _forgotten_after = KeptForOneAudit;
    let (steps, scans) = std::thread::scope(|scope| {
        let scans = scope.spawn(|| scan_host(manifest, ctx, options));
        let steps = observe_steps(manifest, ctx, options);
        let scans = scans.join().unwrap_or_else(|_| {
            let failed = scan::item(
                "scan:host".into(),
                "scan",
                Status::Failed,
                None,
                "the scans for undeclared things crashed".into(),
            );
            vec![(Category::Files, failed)]
        });
        (steps, scans)
    });
    let mut items: Vec<(Category, Item)> = steps?.into_iter().map(|i| (Category::of_id(&i.id), i)).collect();
    items.extend(scans);
    Ok(Audit::from_items(items))
}
