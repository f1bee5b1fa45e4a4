//! Restore step 7: does the host work? One answer from every check the manifest
//! implies, without writing any of them twice:
//!
//! - `prereq:NAME`: the prerequisite's check command runs (with its `env`) and its
//!   version meets the requirement;
//! - `service:NAME`: systemd's state (one batched query for all units; a `job`'s timers
//!   must be active and its last run must not have failed) and the declared HTTP, TCP
//!   or command health check;
//! - `route:SITE:N`: each nginx route answers with its status and body (N from 1);
//! - `check:NAME`: the manifest's `validate` list (commands with an exit code and an
//!   output pattern, run in a folder with an environment; HTTP with a status and a body
//!   pattern; files that must exist).
//!
//! The checks run in parallel, each with its own timeout, so a run takes about as long
//! as the slowest check; a hanging check is killed and reported as timed out.
//! Prerequisites, files and services start at once; routes and the `validate` commands
//! and HTTP checks, which go through the services, start as soon as every service has
//! answered (a service just started is given until its deadline to listen). Nothing is
//! changed: `--check` is accepted and means the same.

mod junit;
mod plan;
mod probe;
mod runner;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::report::{Item, Report, Status};

pub use plan::{
    Check, CommandProbe, DEFAULT_TIMEOUT, Health, HttpProbe, PrereqProbe, Probe, ServiceProbe, plan, select,
};
pub use probe::{Evidence, Finding};
pub use runner::{Outcome, Run, run};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-validate";

/// Runs the restore checklist: versions, service health, routes, the manifest's checks.
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
    /// Also write the results as JUnit XML to FILE (for CI).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// How long a check may take when the manifest sets no timeout for it.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = common::manifest::parse_duration_flag)]
    pub timeout: Duration,
}

common::common_args!(Args);

/// The step, as its binary runs it (`common::step::main`). It changes nothing: no lock.
pub struct ValidateStep;

impl common::step::Step for ValidateStep {
    const NAME: &'static str = STEP;
    type Args = Args;

    fn item_ids(manifest: &common::manifest::Manifest, _: &common::engine::Ctx, args: &Args) -> common::step::Ids {
        Ok(Some(plan(manifest, args.timeout).into_iter().map(|c| c.id).collect()))
    }

    fn applies(_: &Args) -> bool {
        false
    }

    fn run(manifest: &common::manifest::Manifest, _: &common::engine::Ctx, args: &Args) -> common::step::Ran {
        let checks = select(plan(manifest, args.timeout), &args.common.only)?;
        let run = run(checks, args.common.verbosity());
        let failure = args.junit.as_ref().and_then(|path| {
            run.write_junit(path, manifest.host.as_deref())
                .err()
                .map(|e| common::step::StepError::Run(format!("cannot write the JUnit file {}: {e}", path.display())))
        });
        Ok(common::step::Outcome {
            report: run.report(args.common.check),
            rendered: None,
            note: Some(run.recap()),
            failure,
        })
    }
}

/// How long a check took, as the human report and `detail` show it.
fn took(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

impl Run {
    /// The report: one item per check, `detail` = its time, then what it found (for a
    /// failure: what was expected, what came back).
    pub fn report(&self, check: bool) -> Report {
        let mut report = Report::new(STEP, check);
        for (c, outcome) in self.checks.iter().zip(&self.outcomes) {
            let finding = &outcome.finding;
            let mut detail = format!("{}, {}", took(outcome.duration), finding.summary);
            if let Some(evidence) = &finding.evidence {
                detail.push_str(&format!("; {}: {:?}", evidence.label, evidence.text));
            }
            let status = if finding.ok { Status::Ok } else { Status::Failed };
            report.push(Item::new(c.id.clone(), c.kind, status, detail).at_maybe(c.path().map(Path::to_path_buf)));
        }
        report
    }

    /// One line for the end of a run: how many checks, how long, the slowest.
    pub fn recap(&self) -> String {
        let slowest = self
            .checks
            .iter()
            .zip(&self.outcomes)
            .max_by_key(|(_, o)| o.duration)
            .map(|(c, o)| format!("; slowest {} ({})", c.id, took(o.duration)))
            .unwrap_or_default();
        format!("{STEP}: {} checks in parallel took {}{slowest}", self.checks.len(), took(self.took))
    }

    /// Did every check pass?
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.finding.ok)
    }

    /// The results as JUnit XML: a testsuite, a testcase per check, a failure per check
    /// that did not pass.
    pub fn junit(&self, host: Option<&str>) -> String {
        junit::render(self, host)
    }

    /// Writes the JUnit XML to `path`, atomically.
    pub fn write_junit(&self, path: &Path, host: Option<&str>) -> std::io::Result<()> {
        common::fsx::write_atomic(path, self.junit(host).as_bytes(), None)
    }
}
