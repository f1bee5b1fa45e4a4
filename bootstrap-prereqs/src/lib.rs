//! Restore step 2: the tools the host needs, installed and version-checked.
//!
//! Every prerequisite is observed first (its check command, in parallel), then all that
//! are missing or too old are installed with one call per package manager (one
//! `apt-get install` for every Debian package after at most one `apt-get update`, one
//! `npm install -g`, one `cargo install`; pipx takes one package per call), in an order
//! where a manager installed by apt is there for the next. Then everything is observed
//! again: a tool still missing or at the wrong version is a failure that names the
//! command that ran and what it printed.
//!
//! A check whose binary is unchanged since it last answered is not run again: its
//! answer comes from the cache in the state folder ([`cache`]: by the identity of the
//! binary, the whole check and its environment; the version requirement is applied
//! afresh), and its item says so. `--deep` runs every check (and refreshes the cache);
//! `--check` and the audit read the cache and never write it.

pub mod cache;
mod install;
mod version;

use std::time::{Duration, SystemTime};

use common::exec::{Cmd, ExecError};
use common::manifest::{Install, ItemId, Manifest, Prereq};
use common::output::Verbosity;
use common::report::{Item, Report, Status};
use common::state::StateDir;

use cache::{Answer, Cache, Entry, Probe, Trouble};
pub use install::{Manager, install_commands};
pub use version::{extract_version, satisfies};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-prereqs";

/// The id of the item that says what was wrong with the cache, when something was.
pub const CACHE_ID: &str = "state:prereqs-cache";

/// Installs and version-checks the tools the host needs (apt, npm, pipx, cargo, scripts).
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
    /// Run every check command, even for a tool whose binary is unchanged since its
    /// version was last read (the cache in the state folder is still refreshed).
    #[arg(long)]
    pub deep: bool,
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

    fn run(manifest: &Manifest, ctx: &common::engine::Ctx, args: &Args) -> common::step::Ran {
        let prereqs = select(manifest, &args.common.only)?;
        let options = Options { check: args.common.check, deep: args.deep, verbosity: args.common.verbosity() };
        Ok(run(&prereqs, &ctx.state, options).into())
    }
}

/// How [`run`] runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Observe only: install nothing and write nothing (the cache is read, not written).
    pub check: bool,
    /// Run every check command, whatever the cache holds (a run still refreshes it).
    pub deep: bool,
    pub verbosity: Verbosity,
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

/// What observing one prerequisite found, and where the answer came from.
#[derive(Debug, Clone)]
pub struct Observation {
    pub found: Found,
    /// The cached answer used instead of running the check.
    pub cached: Option<Entry>,
    /// The answer to keep: the check ran and succeeded, and its binary is identified.
    fresh: Option<Entry>,
}

impl Observation {
    /// What was found, and, when the answer was cached, since when its binary is
    /// unchanged (with `verbose`, naming the binary).
    fn describe(&self, verbose: bool) -> String {
        let mut text = self.found.describe();
        if let Some(entry) = &self.cached {
            let since = entry.checked_at().map_or_else(|| "its last check".to_owned(), common::report::show_time);
            let binary = if verbose { entry.binary.path.display().to_string() } else { "the binary".to_owned() };
            text.push_str(&format!(" (cached: {binary} is unchanged since {since})"));
        }
        text
    }
}

fn check_cmd(prereq: &Prereq) -> Cmd {
    let mut cmd = Cmd::from_argv(&prereq.check.0).timeout(CHECK_TIMEOUT);
    for (key, value) in &prereq.env {
        cmd = cmd.env(key, value);
    }
    cmd
}

/// Runs the prerequisite's check command: what it printed, or why there is no answer.
fn ask(prereq: &Prereq) -> Result<Answer, Found> {
    let cmd = check_cmd(prereq);
    let output = match cmd.output() {
        Ok(out) => out,
        Err(ExecError::NotFound { program }) => {
            return Err(Found::Missing { why: format!("{program} is not installed") });
        }
        Err(e) => return Err(Found::Missing { why: e.to_string() }),
    };
    if !output.success() {
        return Err(Found::Missing {
            why: format!("`{cmd}` failed (exit code {})", output.code.map_or("none".to_owned(), |c| c.to_string())),
        });
    }
    let text = format!("{}\n{}", output.stdout, output.stderr);
    Ok(Answer { version: extract_version(&text).map(|v| v.to_string()), first_line: first_line(&text).to_owned() })
}

/// The verdict on an answer: its version against the manifest's requirement.
fn judge(prereq: &Prereq, version: Option<semver::Version>, first_line: &str) -> Found {
    match (&prereq.version, version) {
        (None, version) => Found::Ok { version: version.map(|v| v.to_string()) },
        (Some(want), None) => Found::Missing {
            why: format!("no version in the output of `{}` to compare with {want}: {first_line}", check_cmd(prereq)),
        },
        (Some(want), Some(version)) => match satisfies(&version, want) {
            Ok(true) => Found::Ok { version: Some(version.to_string()) },
            Ok(false) => Found::WrongVersion { version: version.to_string(), want: want.clone() },
            Err(why) => Found::BadRequirement { why },
        },
    }
}

/// The version of an answer; `Err` when the cache holds one that does not read.
fn version_of(answer: &Answer) -> Result<Option<semver::Version>, semver::Error> {
    answer.version.as_deref().map(semver::Version::parse).transpose()
}

/// Runs the prerequisite's check command and compares its version (no cache).
pub fn observe(prereq: &Prereq) -> Found {
    match ask(prereq) {
        Ok(answer) => judge(prereq, version_of(&answer).ok().flatten(), &answer.first_line),
        Err(found) => found,
    }
}

/// Observes one prerequisite: from `cache` when it holds the answer of this check for
/// the binary as it is now, otherwise by running the check.
fn observe_with(prereq: &Prereq, cache: Option<&Cache>) -> Observation {
    // Before the check runs: a binary replaced while it runs is found changed next time.
    let probe = Probe::of(prereq);
    if let (Some(cache), Some(probe)) = (cache, &probe)
        && let Some(entry) = cache.answer(prereq.name.as_str(), probe)
        && let Ok(version) = version_of(&entry.answer)
    {
        let found = judge(prereq, version, &entry.answer.first_line);
        return Observation { found, cached: Some(entry.clone()), fresh: None };
    }
    match ask(prereq) {
        Ok(answer) => Observation {
            found: judge(prereq, version_of(&answer).ok().flatten(), &answer.first_line),
            cached: None,
            fresh: probe.map(|p| p.entry(answer, SystemTime::now())),
        },
        Err(found) => Observation { found, cached: None, fresh: None },
    }
}

fn first_line(text: &str) -> &str {
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("(no output)").trim()
}

/// Observes every prerequisite, in parallel: the run takes as long as the slowest check
/// that runs. Those marked in `deep` run their check whatever the cache holds.
fn observe_all(prereqs: &[Prereq], cache: &Cache, deep: &[bool]) -> Vec<Observation> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = prereqs
            .iter()
            .zip(deep)
            .map(|(p, deep)| scope.spawn(move || observe_with(p, (!deep).then_some(cache))))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| Observation {
                    found: Found::Missing { why: "the check crashed".to_owned() },
                    cached: None,
                    fresh: None,
                })
            })
            .collect()
    })
}

/// Keeps in `cache` what `observed` says: fresh answers, cached ones as they were, and
/// nothing for a check that failed or is never cached.
fn remember(cache: &mut Cache, prereqs: &[Prereq], observed: &[Observation]) {
    for (prereq, observation) in prereqs.iter().zip(observed) {
        let name = prereq.name.as_str();
        match (&observation.fresh, &observation.cached) {
            (Some(entry), _) => cache.insert(name, entry.clone()),
            (None, Some(_)) => {}
            (None, None) => cache.remove(name),
        }
    }
}

/// Writes the cache when this run changed it (never under `check`), and says what was
/// wrong with the one read, if anything was.
fn finish_cache(report: &mut Report, state: &StateDir, read: &Cache, cache: &Cache, trouble: Option<Trouble>) {
    let check = report.check;
    let path = state.file(cache::FILE);
    let item = |status, detail: String| Item::new(CACHE_ID, "state", status, detail).at(path.clone());
    let corrupt = |is: &str, why: &str| {
        format!("the cache of the checks' answers {is} corrupt ({why}): not used, every check ran")
    };
    match trouble {
        Some(Trouble::Unreadable(why)) => {
            report.push(item(Status::Failed, format!("{why}; the cache of the checks' answers is not used")))
        }
        Some(Trouble::Corrupt(why)) if check => report.push(item(
            Status::WouldChange,
            format!("{}; a run keeps it aside and writes a new one", corrupt("is", &why)),
        )),
        Some(Trouble::Corrupt(why)) => match cache::save(state, cache, true) {
            Ok(_) => {
                report.kept = Some(state.kept_root());
                report.push(item(Status::Changed, format!("{}; kept aside and written anew", corrupt("was", &why))));
            }
            Err(e) => report.push(item(Status::Failed, format!("{}; it cannot be replaced: {e}", corrupt("is", &why)))),
        },
        None if check || cache == read => {}
        None => {
            if let Err(e) = cache::save(state, cache, false) {
                report.push(item(Status::Failed, format!("cannot write the cache of the checks' answers: {e}")));
            }
        }
    }
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

/// Observes only, with the cached answers, and writes nothing: what `--check` and the
/// audit do.
pub fn check(prereqs: &[&Prereq], state: &StateDir, verbosity: Verbosity) -> Report {
    run(prereqs, state, Options { check: true, deep: false, verbosity })
}

/// Observes (through the cache in `state`), installs what is missing (unless
/// `options.check`), observes again, and writes the cache back (unless `check`).
pub fn run(prereqs: &[&Prereq], state: &StateDir, options: Options) -> Report {
    let verbose = options.verbosity == Verbosity::Verbose;
    let owned: Vec<Prereq> = prereqs.iter().map(|p| (*p).clone()).collect();
    let (read, trouble) = cache::load(state);
    let mut cache = read.clone();
    let before = observe_all(&owned, &cache, &vec![options.deep; owned.len()]);
    remember(&mut cache, &owned, &before);
    let mut report = Report::new(STEP, options.check);
    // What cannot be installed is known before anything runs: the same failure for
    // `--check` and the run.
    let blocked: Vec<Option<String>> = owned
        .iter()
        .zip(&before)
        .map(|(p, o)| if o.found.needs_install() { install::cannot_install(p) } else { None })
        .collect();
    let is_due: Vec<bool> = before.iter().zip(&blocked).map(|(o, b)| o.found.needs_install() && b.is_none()).collect();
    let due: Vec<&Prereq> = owned.iter().zip(&is_due).filter(|(_, due)| **due).map(|(p, _)| p).collect();
    if options.check || due.is_empty() {
        for ((prereq, seen), blocked) in owned.iter().zip(&before).zip(&blocked) {
            let (status, detail) = match (&seen.found, blocked) {
                (Found::Ok { .. }, _) => (Status::Ok, seen.describe(verbose)),
                (Found::BadRequirement { .. }, _) => (Status::Failed, seen.describe(verbose)),
                (_, Some(why)) => (Status::Failed, format!("{}; {why}", seen.describe(verbose))),
                (_, None) => (
                    Status::WouldChange,
                    format!("{}; would install ({})", seen.describe(verbose), install_label(&prereq.install)),
                ),
            };
            report.push(item(prereq, status, detail));
        }
        finish_cache(&mut report, state, &read, &cache, trouble);
        return report;
    }
    let outcome = install::install(&due, options.verbosity);
    report.commands = outcome.commands.clone();
    // What was installed is asked again, whatever its binary: an install is when the
    // answer is to change.
    let deep: Vec<bool> = is_due.iter().map(|due| *due || options.deep).collect();
    let after = observe_all(&owned, &cache, &deep);
    remember(&mut cache, &owned, &after);
    for (((prereq, was), now), blocked) in owned.iter().zip(&before).zip(&after).zip(&blocked) {
        let (status, detail) = match (&was.found, &now.found, blocked) {
            (Found::BadRequirement { .. }, _, _) => (Status::Failed, was.describe(verbose)),
            (_, _, Some(why)) => (Status::Failed, format!("{}; {why}", was.describe(verbose))),
            (Found::Ok { .. }, Found::Ok { .. }, _) => (Status::Ok, now.describe(verbose)),
            (_, Found::Ok { .. }, _) => {
                (Status::Changed, format!("installed ({}): {}", install_label(&prereq.install), now.describe(verbose)))
            }
            (_, _, None) => {
                let why = outcome.failure_for(prereq).map_or_else(
                    || {
                        format!(
                            "still not right after installing ({}): {}",
                            install_label(&prereq.install),
                            now.describe(verbose)
                        )
                    },
                    |f| format!("{}; {f}", now.describe(verbose)),
                );
                (Status::Failed, why)
            }
        };
        report.push(item(prereq, status, detail));
    }
    finish_cache(&mut report, state, &read, &cache, trouble);
    report
}
