//! Restore step 2: the tools the host needs, installed and version-checked.
//!
//! Every prerequisite is observed first (its check command, in parallel), then all that
//! are missing or too old are installed with one call per package manager (one
//! `apt-get install` for every Debian package after at most one `apt-get update`, one
//! `npm install -g`, one `cargo install`; pipx takes one package per call), in an order
//! where a manager installed by apt is there for the next. Then everything is observed
//! again: a tool still missing or at the wrong version is a failure that names the
//! command that ran and what it printed.

mod install;
mod version;

use std::time::Duration;

use common::exec::{Cmd, ExecError};
use common::manifest::{Install, ItemId, Manifest, Prereq};
use common::output::Verbosity;
use common::report::{Item, Report, Status};

pub use install::{Manager, install_commands};
pub use version::{extract_version, satisfies};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-prereqs";

/// Installs and version-checks the tools the host needs (apt, npm, pipx, cargo, scripts).
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
}

common::common_args!(Args);

/// The step, as its binary runs it (`common::step::main`).
pub struct PrereqsStep;

impl common::step::Step for PrereqsStep {
    const NAME: &'static str = STEP;
    type Args = Args;

    fn item_ids(manifest: &Manifest, _: &common::engine::Ctx, _: &Args) -> common::step::Ids {
        Ok(Some(manifest.prereqs.iter().map(|p| ItemId::new("prereq", p.name.as_str()).0).collect()))
    }

    fn run(manifest: &Manifest, _: &common::engine::Ctx, args: &Args) -> common::step::Ran {
        let prereqs = select(manifest, &args.common.only)?;
        Ok(run(&prereqs, args.common.check, args.common.verbosity()).into())
    }
}

/// How long a check command may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// What observing one prerequisite found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Installed, at this version (when one could be read), meeting the requirement.
    Ok { version: Option<String> },
    /// Not installed, or its check failed.
    Missing { why: String },
    /// Installed at a version that does not meet the requirement.
    WrongVersion { version: String, want: String },
    /// The manifest's version requirement cannot be read.
    BadRequirement { why: String },
}

impl Found {
    fn needs_install(&self) -> bool {
        matches!(self, Found::Missing { .. } | Found::WrongVersion { .. })
    }
    fn describe(&self) -> String {
        match self {
            Found::Ok { version: Some(v) } => v.clone(),
            Found::Ok { version: None } => "installed".to_owned(),
            Found::Missing { why } => why.clone(),
            Found::WrongVersion { version, want } => format!("version {version} does not satisfy {want}"),
            Found::BadRequirement { why } => why.clone(),
        }
    }
}

/// Runs the prerequisite's check command and compares its version.
pub fn observe(prereq: &Prereq) -> Found {
    let mut cmd = Cmd::from_argv(&prereq.check.0).timeout(CHECK_TIMEOUT);
    for (key, value) in &prereq.env {
        cmd = cmd.env(key, value);
    }
    let output = match cmd.output() {
        Ok(out) => out,
        Err(ExecError::NotFound { program }) => return Found::Missing { why: format!("{program} is not installed") },
        Err(e) => return Found::Missing { why: e.to_string() },
    };
    if !output.success() {
        return Found::Missing {
            why: format!("`{cmd}` failed (exit code {})", output.code.map_or("none".to_owned(), |c| c.to_string())),
        };
    }
    let text = format!("{}\n{}", output.stdout, output.stderr);
    let version = extract_version(&text);
    match (&prereq.version, version) {
        (None, version) => Found::Ok { version: version.map(|v| v.to_string()) },
        (Some(want), None) => Found::Missing {
            why: format!("no version in the output of `{cmd}` to compare with {want}: {}", first_line(&text)),
        },
        (Some(want), Some(version)) => match satisfies(&version, want) {
            Ok(true) => Found::Ok { version: Some(version.to_string()) },
            Ok(false) => Found::WrongVersion { version: version.to_string(), want: want.clone() },
            Err(why) => Found::BadRequirement { why },
        },
    }
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").trim()
}

/// Observes every prerequisite, in parallel: the run takes as long as the slowest check.
pub fn observe_all(prereqs: &[Prereq]) -> Vec<Found> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = prereqs.iter().map(|p| scope.spawn(move || observe(p))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Found::Missing { why: "the check crashed".to_owned() }))
            .collect()
    })
}

fn install_label(install: &Install) -> String {
    match install {
        Install::Apt(p) => format!("apt: {p}"),
        Install::Npm(p) => format!("npm: {p}"),
        Install::Pip(p) => format!("pipx: {p}"),
        Install::Cargo(p) => format!("cargo: {p}"),
        Install::Script(f) => format!("script: {}", f.raw()),
    }
}

fn item(prereq: &Prereq, status: Status, detail: String) -> Item {
    Item::new(ItemId::new("prereq", prereq.name.as_str()).to_string(), "prereq", status, detail)
}

/// Only the prerequisites `--only` names (all when empty); an unknown id is an error.
pub fn select<'m>(manifest: &'m Manifest, only: &[String]) -> Result<Vec<&'m Prereq>, common::engine::UnknownItem> {
    let id = |p: &Prereq| ItemId::new("prereq", p.name.as_str()).0;
    for wanted in only {
        if !manifest.prereqs.iter().any(|p| id(p) == *wanted) {
            let known = manifest.prereqs.iter().map(id).collect::<Vec<_>>().join(", ");
            return Err(common::engine::UnknownItem { id: wanted.clone(), known });
        }
    }
    Ok(manifest.prereqs.iter().filter(|p| only.is_empty() || only.contains(&id(p))).collect())
}

/// Observes, installs what is missing (unless `check`), observes again.
pub fn run(prereqs: &[&Prereq], check: bool, verbosity: Verbosity) -> Report {
    let owned: Vec<Prereq> = prereqs.iter().map(|p| (*p).clone()).collect();
    let before = observe_all(&owned);
    let mut report = Report::new(STEP, check);
    // What cannot be installed is known before anything runs: the same failure for
    // `--check` and the run.
    let blocked: Vec<Option<String>> = owned
        .iter()
        .zip(&before)
        .map(|(p, f)| if f.needs_install() { install::cannot_install(p) } else { None })
        .collect();
    let due: Vec<&Prereq> = owned
        .iter()
        .zip(&before)
        .zip(&blocked)
        .filter(|((_, f), b)| f.needs_install() && b.is_none())
        .map(|((p, _), _)| p)
        .collect();
    if check || due.is_empty() {
        for ((prereq, found), blocked) in owned.iter().zip(&before).zip(&blocked) {
            let (status, detail) = match (found, blocked) {
                (Found::Ok { .. }, _) => (Status::Ok, found.describe()),
                (Found::BadRequirement { .. }, _) => (Status::Failed, found.describe()),
                (_, Some(why)) => (Status::Failed, format!("{}; {why}", found.describe())),
                (_, None) => (
                    Status::WouldChange,
                    format!("{}; would install ({})", found.describe(), install_label(&prereq.install)),
                ),
            };
            report.push(item(prereq, status, detail));
        }
        return report;
    }
    let outcome = install::install(&due, verbosity);
    report.commands = outcome.commands.clone();
    let after = observe_all(&owned);
    for (((prereq, was), now), blocked) in owned.iter().zip(&before).zip(&after).zip(&blocked) {
        let (status, detail) = match (was, now, blocked) {
            (Found::BadRequirement { .. }, _, _) => (Status::Failed, was.describe()),
            (_, _, Some(why)) => (Status::Failed, format!("{}; {why}", was.describe())),
            (Found::Ok { .. }, Found::Ok { .. }, _) => (Status::Ok, now.describe()),
            (_, Found::Ok { .. }, _) => {
                (Status::Changed, format!("installed ({}): {}", install_label(&prereq.install), now.describe()))
            }
            (_, _, None) => {
                let why = outcome.failure_for(prereq).map_or_else(
                    || {
                        format!(
                            "still not right after installing ({}): {}",
                            install_label(&prereq.install),
                            now.describe()
                        )
                    },
                    |f| format!("{}; {f}", now.describe()),
                );
                (Status::Failed, why)
            }
        };
        report.push(item(prereq, status, detail));
    }
    report
}
