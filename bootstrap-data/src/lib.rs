//! `bootstrap-data`: durable data backed up and restored with restic (restore step 6).
//! Not built yet: issue #5.

/// The step's name in reports.
pub const STEP: &str = "bootstrap-data";

/// Why the step does nothing yet, for its binary to report as a failure.
pub const NOT_BUILT: &str = "this step is not built yet (issue #5): nothing was backed up or restored";
