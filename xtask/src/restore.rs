//! `cargo xtask restore`: the dev wrapper of `pi-bootstrap-restore` (the
//! `bootstrap-restore` crate, where the ordered restore lives). It builds the binaries,
//! installs them into `~/.local/lib/pi-bootstrap/bin` (`cargo xtask install`), then runs
//! the installed `pi-bootstrap-restore` with the flags passed through, which runs the
//! installed steps beside it, and exits with its code. With `--check` nothing is
//! installed: the built `pi-bootstrap-restore` runs the built steps beside it.
//!
//! The drill runs single steps with [`run_step`] and builds with [`build`]; the step
//! list and its numbering are the product's, re-exported here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use common::state::{StateDir, home_from_env};
use xshell::{Shell, cmd};

pub use bootstrap_restore::{ChainStep as Step, STEPS, number};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct RestoreArgs {
    /// The flags of pi-bootstrap-restore (`cargo xtask restore --help` shows them):
    /// --manifest, --check, --json, --resume, --from STEP, --bin-dir, -v, -q.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "FLAGS")]
    flags: Vec<String>,
}

/// What one step did.
pub struct StepRun {
    pub code: Option<i32>,
    pub took: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// The variable naming a file where every step run appends its binary and peak memory
/// (`NAME<TAB>KiB`): how `cargo xtask bench` learns the drill's figures.
pub const PEAK_MEMORY_FILE_VAR: &str = "PI_BOOTSTRAP_BENCH_MEMORY_FILE";

/// The variable that makes the drill build and run the release binaries
/// (`PI_BOOTSTRAP_PROFILE=release`, as `cargo xtask bench` does); the debug ones
/// otherwise.
pub const PROFILE_VAR: &str = "PI_BOOTSTRAP_PROFILE";

fn release() -> bool {
    std::env::var(PROFILE_VAR).is_ok_and(|p| p == "release")
}

/// Runs one step binary from `bin_dir` with `flags`; with `capture` its output is
/// returned, otherwise it goes to the terminal. When `$PI_BOOTSTRAP_BENCH_MEMORY_FILE`
/// names a file, the step runs under GNU time and its peak memory is appended there.
pub fn run_step(sh: &Shell, bin_dir: &Path, step: &Step, flags: &[String], capture: bool) -> Result<StepRun> {
    let bin = bin_dir.join(step.bin);
    let args = step.args;
    let command: std::process::Command = cmd!(sh, "{bin} {args...} {flags...}").into();
    let Some(file) = std::env::var_os(PEAK_MEMORY_FILE_VAR) else {
        let run = crate::bench::measure::run(command, capture)?;
        return Ok(StepRun { code: run.code, took: run.took, stdout: run.stdout, stderr: run.stderr });
    };
    let run = crate::bench::measure::run_with_memory(sh, command, capture)?;
    if let Some(kib) = run.max_rss_kib {
        use std::io::Write as _;
        let mut file = fs_err::OpenOptions::new().create(true).append(true).open(file)?;
        writeln!(file, "{}\t{kib}", step.bin)?;
    }
    Ok(StepRun { code: run.code, took: run.took, stdout: run.stdout, stderr: run.stderr })
}

/// The line that marks, in the peak-memory file, where the drill's no-op benchmark
/// begins (`true`) or ends: the runs between the two are the no-op figures.
pub fn mark_noop_runs(begin: bool) -> Result<()> {
    let Some(file) = std::env::var_os(PEAK_MEMORY_FILE_VAR) else { return Ok(()) };
    use std::io::Write as _;
    let mut file = fs_err::OpenOptions::new().create(true).append(true).open(file)?;
    writeln!(file, "{}", if begin { NOOP_BEGIN } else { NOOP_END })?;
    Ok(())
}

/// The peak-memory file's markers of the no-op runs ([`mark_noop_runs`]).
pub const NOOP_BEGIN: &str = "# no-op runs begin";
pub const NOOP_END: &str = "# no-op runs end";

/// The folder of the built step binaries (what `cargo xtask install` copies from).
pub fn bin_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    target.join(if release() { "release" } else { "debug" })
}

/// Builds the step binaries and `pi-bootstrap-restore`.
pub fn build(sh: &Shell) -> Result<()> {
    // Not xtask itself: it is running, and a rebuild would pull the file from under it.
    let release = release().then_some("--release");
    cmd!(sh, "cargo build --quiet {release...} --workspace --bins --exclude xtask").run()?;
    Ok(())
}

/// The task: build, install (not with `--check`), run `pi-bootstrap-restore`; its exit
/// code.
pub fn run(sh: &Shell, root: &Path, args: &RestoreArgs) -> Result<u8> {
    let flags = &args.flags;
    let parsed = bootstrap_restore::Args::try_parse_from(
        std::iter::once(bootstrap_restore::NAME.to_owned()).chain(flags.iter().cloned()),
    );
    // With --check, or flags it will refuse (its message and exit code are the answer),
    // nothing is installed.
    let install = parsed.as_ref().is_ok_and(|a| !a.common.check);
    let json = parsed.as_ref().is_ok_and(|a| a.common.json);
    let dir = if install {
        crate::install::build_and_install(sh, root, false, json)?
    } else {
        build(sh)?;
        bin_dir(root)
    };
    let program = dir.join(bootstrap_restore::NAME);
    let mut command: std::process::Command = cmd!(sh, "{program} {flags...}").quiet().into();
    let status = command.status().map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let code = status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1));
    // A step failed and the chain recorded it: say how to resume from here.
    let record = StateDir::new(&home_from_env()?).file(bootstrap_restore::RECORD_FILE);
    if code == 1 && install && record.exists() {
        eprintln!("xtask: after the fix, from this repo: cargo xtask restore --resume");
    }
    Ok(code)
}
