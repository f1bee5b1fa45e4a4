//! `bootstrap-prereqs` installs and version-checks the prerequisites. Not built yet: issue #3.

/// The step's name in reports.
pub const STEP: &str = "bootstrap-prereqs";

/// Why the step does nothing yet, for its binary to report as a failure.
pub const NOT_BUILT: &str = "this step is not built yet (issue #3): nothing was checked or changed";
