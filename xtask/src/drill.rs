//! `cargo xtask drill`: rehearses a full restore of a host in a throwaway sandbox.
//!
//! Outside the namespaces it builds the binaries, makes the sandbox folder and the
//! pi-config "remote" (a git repo made from the example's fixture), then re-runs
//! xtask inside fresh namespaces ([`inside`]). Inside, it boots the private user
//! manager, runs the restore steps that exist in the documented order with each
//! step's report and time, runs them all a second time to prove they report zero
//! changes (read from their JSON), and ends with a clean audit. Afterwards the sandbox
//! folder is removed and nothing of it is left running.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

use crate::host_packages;
use crate::sandbox::{self, Sandbox};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// The manifest of the host to restore.
    #[arg(long, default_value = "examples/pi-host/pi-bootstrap.yaml")]
    manifest: PathBuf,
    /// The pi-config repo fixture that becomes the sandbox's remote.
    #[arg(long, default_value = "examples/pi-host/pi-config")]
    fixture: PathBuf,
    /// Keep the sandbox folder afterwards (for a look at what the restore made).
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, clap::Args)]
pub struct InsideArgs {
    #[arg(long)]
    sandbox: PathBuf,
    #[arg(long)]
    bin_dir: PathBuf,
    #[arg(long)]
    manifest: PathBuf,
}

/// One restore step in the documented order.
struct Step {
    bin: &'static str,
    args: &'static [&'static str],
    /// `None` when built; the issue that builds it otherwise.
    not_built: Option<u32>,
}

/// The restore order of `docs/architecture.md` (step 1, the clone, is the user's).
const STEPS: &[Step] = &[
    Step { bin: "bootstrap-prereqs", args: &[], not_built: Some(3) },
    Step { bin: "bootstrap-pi-config", args: &[], not_built: None },
    Step { bin: "bootstrap-services", args: &[], not_built: None },
    Step { bin: "bootstrap-data", args: &["restore"], not_built: Some(5) },
    Step { bin: "bootstrap-validate", args: &[], not_built: Some(6) },
];

fn absolute(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { root.join(path) }
}

/// The outer half: build, prepare, enter the namespaces, clean up.
pub fn run(sh: &Shell, root: &Path, args: &DrillArgs) -> Result<()> {
    host_packages::ensure(sh, host_packages::FOR_DRILL)?;
    cmd!(sh, "cargo build --quiet --workspace --bins").run()?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin_dir = target.join("debug");
    let manifest = absolute(root, &args.manifest);
    let fixture = absolute(root, &args.fixture);

    let dir = tempfile::Builder::new().prefix("pi-drill-").tempdir()?;
    let sandbox = Sandbox::new(dir.path());
    println!("drill: sandbox {} (private mount, network and PID namespaces)", sandbox.root.display());
    make_origin(sh, &fixture, &sandbox.origin())?;

    let me = std::env::current_exe()?;
    let inner = [
        me.display().to_string(),
        "drill-inside".into(),
        "--sandbox".into(),
        sandbox.root.display().to_string(),
        "--bin-dir".into(),
        bin_dir.display().to_string(),
        "--manifest".into(),
        manifest.display().to_string(),
    ];
    let argv = Sandbox::enter(&inner);
    let (program, rest) = argv.split_first().ok_or("empty unshare command")?;
    let status = succeeds(cmd!(sh, "{program} {rest...}"));

    let leftovers = sandbox::processes_mentioning(&sandbox.root.display().to_string());
    if args.keep {
        println!("drill: sandbox kept at {}", dir.keep().display());
    } else {
        dir.close()?;
    }
    if !leftovers.is_empty() {
        return Err(format!("the drill left processes running:\n{}", leftovers.join("\n")).into());
    }
    if !status {
        return Err("the drill failed (see above)".into());
    }
    println!(
        "drill: ok; nothing of the sandbox is left running{}",
        if args.keep { "" } else { ", its folder is removed" }
    );
    Ok(())
}

/// Runs `cmd` with the terminal attached and says whether it exited 0.
fn succeeds(cmd: xshell::Cmd<'_>) -> bool {
    let mut cmd: std::process::Command = cmd.into();
    match cmd.status() {
        Ok(status) => status.success(),
        Err(e) => {
            eprintln!("drill: cannot start {cmd:?}: {e}");
            false
        }
    }
}

/// Makes the sandbox's pi-config remote: the fixture committed into a fresh repo.
fn make_origin(sh: &Shell, fixture: &Path, origin: &Path) -> Result<()> {
    std::fs::create_dir_all(origin)?;
    cmd!(sh, "cp -a {fixture}/. {origin}").run()?;
    let _dir = sh.push_dir(origin);
    let git =
        ["-c", "user.name=pi-bootstrap drill", "-c", "user.email=drill@localhost", "-c", "init.defaultBranch=main"];
    cmd!(sh, "git {git...} init --quiet").run()?;
    cmd!(sh, "git {git...} add --all").run()?;
    cmd!(sh, "git {git...} commit --quiet -m 'pi-config fixture'").run()?;
    Ok(())
}

/// The inner half, inside the namespaces.
pub fn inside(sh: &Shell, args: &InsideArgs) -> Result<()> {
    let sandbox = Sandbox::new(&args.sandbox);
    let booted = Instant::now();
    let _manager = sandbox.boot(sh)?;
    println!("drill: private systemd --user running after {}", secs(booted.elapsed()));
    sh.set_var("PI_CONFIG_URL", format!("file://{}", sandbox.origin().display()));
    sh.set_var("NGINX_PREFIX", sandbox.nginx_prefix());
    sh.set_var("PI_BACKUP_REPO", sandbox.backup_repo());
    sh.set_var("NO_COLOR", "1");
    let manifest = &args.manifest;

    let mut times: Vec<(String, Duration)> = Vec::new();
    let mut failed = Vec::new();

    // Step 1 of the restore order is the user's: clone the repo to get the tool.
    let started = Instant::now();
    let origin = format!("file://{}", sandbox.origin().display());
    let repo = sandbox.home().join("pi-config");
    println!("\n== 1. git clone (by hand, to get the tool)");
    cmd!(sh, "git clone --quiet --branch main {origin} {repo}").run()?;
    times.push(("git clone".into(), started.elapsed()));

    for (n, step) in STEPS.iter().enumerate() {
        let title = format!("{}. {} {}", n + 2, step.bin, step.args.join(" "));
        if let Some(issue) = step.not_built {
            println!("\n== {} : not built yet (issue #{issue}), skipped", title.trim_end());
            continue;
        }
        println!("\n== {}", title.trim_end());
        let bin = args.bin_dir.join(step.bin);
        let step_args = step.args;
        let started = Instant::now();
        let ok = succeeds(cmd!(sh, "{bin} {step_args...} --manifest {manifest}"));
        let took = started.elapsed();
        println!("-- {} took {}", step.bin, secs(took));
        times.push((step.bin.into(), took));
        if !ok {
            failed.push(step.bin);
            println!("drill: {} failed; the restore stops here (resume with the same step)", step.bin);
            break;
        }
    }

    if failed.is_empty() {
        println!("\n== rerun: every step again, expecting zero changes");
        for step in STEPS.iter().filter(|s| s.not_built.is_none()) {
            let bin = args.bin_dir.join(step.bin);
            let step_args = step.args;
            let out = cmd!(sh, "{bin} {step_args...} --manifest {manifest} --json").ignore_status().output()?;
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let changed = json["summary"]["changed"].as_u64().unwrap_or(u64::MAX);
            let failures = json["summary"]["failed"].as_u64().unwrap_or(u64::MAX);
            println!("{}: changed={changed} failed={failures}", step.bin);
            if changed != 0 || failures != 0 || !out.status.success() {
                failed.push(step.bin);
            }
        }
        println!("\n== audit: the host must match the manifest");
        let audit = args.bin_dir.join("pi-config-audit");
        if !succeeds(cmd!(sh, "{audit} --manifest {manifest} --quiet")) {
            failed.push("pi-config-audit");
        }
    }

    let total: Duration = times.iter().map(|(_, t)| *t).sum();
    println!("\n== recovery time {} (bare sandbox to restored host)", secs(total));
    for (name, took) in &times {
        println!("   {name:<22} {}", secs(*took));
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("drill failed: {}", failed.join(", ")).into()) }
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
