//! The audit: every difference between the manifest and the host, read-only.
//!
//! It observes every step's plan with the same code as `--check` (prereqs, pi-config,
//! services), so the audit never disagrees with what a run would do; what a run would
//! change is reported as `drift`. Scans for what is on the host but not declared, and
//! backup freshness, come with issue #7.

use common::engine::{self, Ctx, RunOptions, UnknownItem};
use common::manifest::Manifest;
use common::output::Verbosity;
use common::report::{Report, Status};

/// The step's name in reports.
pub const STEP: &str = "pi-config-audit";

/// Observes every step's items and reports what differs as drift. Changes nothing.
pub fn audit(manifest: &Manifest, ctx: &Ctx, verbosity: Verbosity) -> Result<Report, UnknownItem> {
    let check = RunOptions { check: true, only: Vec::new(), verbosity };
    let prereqs: Vec<_> = manifest.prereqs.iter().collect();
    let pi_config = bootstrap_pi_config::plan(manifest);
    let pi_config: Vec<&dyn engine::Resource> = pi_config.iter().map(|r| r.as_ref()).collect();
    let observed = [
        bootstrap_prereqs::run(&prereqs, true, verbosity),
        engine::run(bootstrap_pi_config::STEP, &pi_config, ctx, &check),
        bootstrap_services::run(manifest, ctx, &check)?,
    ];
    let mut audited = Report::new(STEP, true);
    for report in observed {
        for mut item in report.items {
            if item.status == Status::WouldChange {
                item.status = Status::Drift;
            }
            audited.push(item);
        }
    }
    Ok(audited)
}
