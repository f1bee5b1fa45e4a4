//! `bootstrap-validate` runs the restore checklist. Not built yet: issue #6.

/// The step's name in reports.
pub const STEP: &str = "bootstrap-validate";

/// Why the step does nothing yet, for its binary to report as a failure.
pub const NOT_BUILT: &str = "this step is not built yet (issue #6): nothing was checked or changed";
