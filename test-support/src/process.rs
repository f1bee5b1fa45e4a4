//! Runs of a built binary: with nothing of the test's own environment, and what a run
//! printed, for a failure message.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};

/// The `PATH` of a clean run: the system's programs only.
pub const PLAIN_PATH: &str = "/usr/bin:/bin:/usr/local/bin";

/// `program` with a clean environment: `HOME` as given, [`PLAIN_PATH`] and `NO_COLOR=1`,
/// nothing else (no user manager, no XDG variables, no secret of the test's own).
pub fn clean_command(program: impl AsRef<OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().env("HOME", home).env("PATH", PLAIN_PATH).env("NO_COLOR", "1");
    cmd
}

/// What a run printed: stdout, then stderr.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A failure when any of `canaries` (secrets a test planted) is in `what`, the output
/// of `label`; the failure shows the output with every canary masked.
pub fn no_canary(label: &str, what: &str, canaries: &[&str]) -> crate::TestResult {
    if !canaries.iter().any(|canary| what.contains(canary)) {
        return Ok(());
    }
    let shown = canaries.iter().fold(what.to_owned(), |shown, canary| shown.replace(canary, "<CANARY>"));
    Err(format!("a canary secret was printed by {label}:\n{shown}").into())
}
