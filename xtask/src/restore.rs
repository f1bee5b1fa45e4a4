//! `cargo xtask restore`: builds the step binaries, installs them into
//! `~/.local/lib/pi-bootstrap/bin` (`cargo xtask install`) and runs the installed ones
//! as separate processes in the documented order, passing `--manifest`, `--check` and
//! `--json` through (with `--check` nothing is installed: the built binaries run). A
//! failing step stops the chain; the state folder records where
//! (`~/.local/state/pi-bootstrap/restore.json`), so `--resume` (or `--from STEP`)
//! continues from there. A recap shows each step's outcome and time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::state::{StateDir, home_from_env};
use xshell::{Shell, cmd};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// One restore step in the documented order.
pub struct Step {
    pub bin: &'static str,
    pub args: &'static [&'static str],
    /// Whether it needs the package registries (the drill runs it before cutting the network).
    pub online: bool,
}

/// The restore order of `docs/architecture.md` (step 1, the clone, is the user's).
pub const STEPS: &[Step] = &[
    Step { bin: "bootstrap-prereqs", args: &[], online: true },
    Step { bin: "bootstrap-pi-config", args: &[], online: true },
    Step { bin: "bootstrap-services", args: &[], online: false },
    Step { bin: "bootstrap-data", args: &["restore"], online: false },
    Step { bin: "bootstrap-validate", args: &[], online: false },
];

/// A step's number in the documented order (step 1 is the clone).
pub fn number(bin: &str) -> &'static str {
    match bin {
        "bootstrap-prereqs" => "2",
        "bootstrap-pi-config" => "3",
        "bootstrap-services" => "4-5",
        "bootstrap-data" => "6",
        "bootstrap-validate" => "7",
        _ => "-",
    }
}

/// The state file that records an interrupted restore.
const STATE_FILE: &str = "restore.json";

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The host manifest (default: $PI_BOOTSTRAP_MANIFEST, then the nearest pi-bootstrap.yaml).
    #[arg(long, value_name = "PATH")]
    manifest: Option<PathBuf>,
    /// Observe only: every step says what it would do; nothing changes.
    #[arg(long)]
    check: bool,
    /// One JSON document on stdout: every step's report, exit code and time.
    #[arg(long)]
    json: bool,
    /// Continue from the step where the last restore stopped.
    #[arg(long, conflicts_with = "from")]
    resume: bool,
    /// Start from this step (e.g. bootstrap-services).
    #[arg(long, value_name = "STEP")]
    from: Option<String>,
}

/// What one step did.
pub struct StepRun {
    pub bin: &'static str,
    pub code: Option<i32>,
    pub took: Duration,
    pub stdout: String,
    pub stderr: String,
}

/// Runs one step binary from `bin_dir` with `flags`; with `capture` its output is
/// returned, otherwise it goes to the terminal.
pub fn run_step(sh: &Shell, bin_dir: &Path, step: &Step, flags: &[String], capture: bool) -> Result<StepRun> {
    let bin = bin_dir.join(step.bin);
    let args = step.args;
    let command = cmd!(sh, "{bin} {args...} {flags...}").ignore_status();
    let started = Instant::now();
    let (code, stdout, stderr) = if capture {
        let out = command.output()?;
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    } else {
        let mut command: std::process::Command = command.into();
        (command.status()?.code(), String::new(), String::new())
    };
    Ok(StepRun { bin: step.bin, code, took: started.elapsed(), stdout, stderr })
}

/// The folder of the built step binaries (what `cargo xtask install` copies from).
pub fn bin_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("debug")
}

/// Builds the step binaries.
pub fn build(sh: &Shell) -> Result<()> {
    // Not xtask itself: it is running, and a rebuild would pull the file from under it.
    cmd!(sh, "cargo build --quiet --workspace --bins --exclude xtask").run()?;
    Ok(())
}

fn first_step(args: &RestoreArgs, state: &StateDir) -> Result<usize> {
    let name = if args.resume {
        let Some(bytes) = state.read(STATE_FILE)? else {
            return Err(format!(
                "no interrupted restore to resume ({} does not exist)",
                state.file(STATE_FILE).display()
            )
            .into());
        };
        let json: serde_json::Value = serde_json::from_slice(&bytes)?;
        json["stopped_at"].as_str().ok_or("restore.json names no step")?.to_owned()
    } else if let Some(from) = &args.from {
        from.clone()
    } else {
        return Ok(0);
    };
    STEPS.iter().position(|s| s.bin == name).ok_or_else(|| {
        let names: Vec<&str> = STEPS.iter().map(|s| s.bin).collect();
        format!("no step named {name:?}: the steps are {}", names.join(", ")).into()
    })
}

/// The outer task.
pub fn run(sh: &Shell, root: &Path, args: &RestoreArgs) -> Result<()> {
    let state = StateDir::new(&home_from_env()?);
    let start = first_step(args, &state)?;
    // The installed binaries, not target/: the same ones the backup timer runs. With
    // --check nothing is installed: the built ones say what they would do.
    let installed = crate::install::build_and_install(sh, root, args.check, args.json)?;
    let bin_dir = if args.check { bin_dir(root) } else { installed };
    let mut flags = Vec::new();
    if let Some(manifest) = &args.manifest {
        flags.extend(["--manifest".to_owned(), manifest.display().to_string()]);
    }
    if args.check {
        flags.push("--check".into());
    }
    if args.json {
        flags.push("--json".into());
    }
    let mut runs = Vec::new();
    let mut stopped_at = None;
    for step in &STEPS[start..] {
        if !args.json {
            println!("\n== {} {}", step.bin, step.args.join(" "));
        }
        let run = run_step(sh, &bin_dir, step, &flags, args.json)?;
        // Exit 2: the manifest or the command line is wrong, for every step alike.
        // Exit 1 without --check: the step failed. With --check, 1 means "would change".
        let failed = run.code == Some(2) || run.code.is_none() || (!args.check && run.code != Some(0));
        runs.push(run);
        if failed {
            stopped_at = Some(step.bin);
            break;
        }
    }
    if !args.check {
        match stopped_at {
            Some(bin) => state.write(STATE_FILE, serde_json::json!({ "stopped_at": bin }).to_string().as_bytes())?,
            None => state.remove(STATE_FILE)?,
        }
    }
    if args.json {
        println!("{}", json_recap(&runs, stopped_at)?);
    } else {
        print!("{}", recap(&runs, stopped_at, args.check));
    }
    match stopped_at {
        Some(bin) => Err(format!("{bin} failed; fix it, then continue with: cargo xtask restore --resume").into()),
        None => Ok(()),
    }
}

fn outcome(run: &StepRun, check: bool) -> &'static str {
    match (run.code, check) {
        (Some(0), _) => "ok",
        (Some(1), true) => "would change",
        (Some(2), _) => "bad manifest or command line",
        _ => "failed",
    }
}

/// The human recap: each step's outcome and time.
pub fn recap(runs: &[StepRun], stopped_at: Option<&str>, check: bool) -> String {
    let mut out = String::from("\n== restore recap\n");
    let total: Duration = runs.iter().map(|r| r.took).sum();
    for run in runs {
        out.push_str(&format!("   {:<22} {:<14} {:>7.2}s\n", run.bin, outcome(run, check), run.took.as_secs_f64()));
    }
    let first = runs.first().and_then(|r| STEPS.iter().position(|s| s.bin == r.bin)).unwrap_or(0);
    let ran: Vec<&str> = runs.iter().map(|r| r.bin).collect();
    for (i, step) in STEPS.iter().enumerate().filter(|(_, s)| !ran.contains(&s.bin)) {
        let why = if i < first {
            "done before"
        } else if stopped_at.is_some() {
            "not run"
        } else {
            continue;
        };
        out.push_str(&format!("   {:<22} {:<14}\n", step.bin, why));
    }
    out.push_str(&format!("   {:<22} {:<14} {:>7.2}s\n", "total", "", total.as_secs_f64()));
    out
}

fn json_recap(runs: &[StepRun], stopped_at: Option<&str>) -> Result<String> {
    let steps: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
            serde_json::json!({
                "step": r.bin,
                "exit_code": r.code,
                "seconds": (r.took.as_secs_f64() * 1000.0).round() / 1000.0,
                "report": report,
                "stderr": r.stderr,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({ "steps": steps, "stopped_at": stopped_at }))?)
}
