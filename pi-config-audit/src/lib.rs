//! The audit: every difference between the manifest and the host, read-only.
//!
//! It observes every step's plan with the same engine as `--check`, so the audit never
//! disagrees with what a run would do; a resource that would change is reported as
//! `drift`. Scans for what is on the host but not declared come with issue #7.

use common::engine::{self, Ctx, Resource};
use common::manifest::Manifest;
use common::output::Verbosity;
use common::report::{Report, Status};

/// The step's name in reports.
pub const STEP: &str = "pi-config-audit";

/// Every step's resources, in restore order.
pub fn plan(manifest: &Manifest) -> Vec<Box<dyn Resource + '_>> {
    let mut plan = bootstrap_pi_config::plan(manifest);
    plan.extend(bootstrap_services::plan(manifest));
    plan
}

/// Observes every resource and reports what differs as drift. Changes nothing.
pub fn audit(resources: &[&dyn Resource], ctx: &Ctx, verbosity: Verbosity) -> Report {
    let options = engine::RunOptions { check: true, only: Vec::new(), verbosity };
    let observed = engine::run(STEP, resources, ctx, &options);
    let mut audited = Report::new(STEP, true);
    for mut item in observed.items {
        if item.status == Status::WouldChange {
            item.status = Status::Drift;
        }
        audited.push(item);
    }
    audited
}
