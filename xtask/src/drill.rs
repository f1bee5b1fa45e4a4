//! `cargo xtask drill`: rehearses a full restore of a host in a throwaway sandbox.
//!
//! Outside the namespaces it builds the binaries, makes the sandbox folder and the
//! pi-config "remote" (a git repo made from the example's fixture), then re-runs xtask
//! inside fresh namespaces ([`inside`]) twice, one phase after the other, on the same
//! sandbox HOME:
//!
//! - online (mount and PID namespaces): the steps that fetch from package registries
//!   (prereqs, pi-config with its dependency installs), with user-level installs in
//!   the sandbox's `~/.local`;
//! - offline (a private network with only a loopback, a private `/run`, a real
//!   `systemd --user`): the steps that run the host, then every step a second time,
//!   which must report zero changes (read from `--json`), and a clean audit.
//!
//! Each step's report and time is printed, then the recovery time split by step.
//! Afterwards the sandbox folder is removed and nothing of it is left running.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

use crate::host_packages;
use common::sandbox::{Layout, Machine};

use crate::restore::{self, STEPS};
use crate::sandbox;

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
    /// After the restore, time N no-op runs of every step and of the audit.
    #[arg(long, value_name = "N", default_value_t = 0)]
    bench: u32,
}

impl DrillArgs {
    /// The example host, with `n` no-op runs of every step timed after the restore.
    pub fn bench(n: u32) -> DrillArgs {
        DrillArgs {
            manifest: "examples/pi-host/pi-bootstrap.yaml".into(),
            fixture: "examples/pi-host/pi-config".into(),
            keep: false,
            bench: n,
        }
    }
}

/// Which half of the drill runs inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Online,
    Offline,
}

#[derive(Debug, clap::Args)]
pub struct InsideArgs {
    #[arg(long)]
    sandbox: PathBuf,
    #[arg(long)]
    bin_dir: PathBuf,
    #[arg(long)]
    manifest: PathBuf,
    #[arg(long, value_enum)]
    phase: Phase,
    #[arg(long, default_value_t = 0)]
    bench: u32,
}

/// The secrets the drill exports, each a canary that must never leak.
const CANARIES: &[(&str, &str)] = &[
    ("RESTIC_PASSWORD", RESTIC_PASSWORD),
    ("TELEGRAM_BOT_TOKEN", "canary-telegram-token-3f9a1c"),
    ("TELEGRAM_CHAT_ID", "canary-chat-id-77d2e0"),
    ("ANTHROPIC_API_KEY", "canary-anthropic-key-b61e48"),
];

/// Where the canaries were found: in `output` (everything the steps printed), or in a
/// file of the sandbox other than the env files that must hold them.
fn canary_leaks(sandbox: &Layout, output: &str) -> Vec<String> {
    let mut leaks = Vec::new();
    if CANARIES.iter().any(|(_, v)| output.contains(v)) {
        leaks.push("the steps' output".to_owned());
    }
    let home = sandbox.home();
    let allowed = [
        home.join(".config/pi-telegram/telegram.env"),
        home.join(".config/pi/providers.env"),
        home.join(".config/pi-bootstrap/restic-password"),
    ];
    let mut files = Vec::new();
    walk_files(&sandbox.root, &mut files);
    for file in files {
        if allowed.contains(&file) || file.starts_with(home.join("pi-config/node_modules")) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&file) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        if CANARIES.iter().any(|(_, v)| text.contains(v)) {
            leaks.push(file.display().to_string());
        }
    }
    leaks
}

fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk_files(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// The restic password the drill's user keeps in a password manager: a canary too.
const RESTIC_PASSWORD: &str = "canary-restic-password-c4e2f1";

/// The example's durable data, as the old host would have had it: a real database
/// written through the agents-database service, a task file written through the
/// phase-runner, outputs, a Pi session and credentials.
fn seed_data(sh: &Shell, home: &Path) -> Result<()> {
    cmd!(sh, "agents-db add planner --role plans").quiet().ignore_stdout().run()?;
    cmd!(sh, "agents-db add reviewer --role reviews").quiet().ignore_stdout().run()?;
    cmd!(sh, "phase-run new restore-drill plan build review").quiet().ignore_stdout().run()?;
    cmd!(sh, "phase-run advance restore-drill").quiet().ignore_stdout().run()?;
    let files = [
        ("pi-config/outputs/report.md", "# What the agents made\n"),
        (".pi/agent/sessions/2026-11-25T10-00-00.jsonl", "{\"role\": \"user\", \"content\": \"hello\"}\n"),
        (".pi/agent/auth.json", "{\"anthropic\": {\"type\": \"api_key\"}}\n"),
    ];
    for (rel, content) in files {
        let path = home.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
    }
    common::fsx::set_mode(&home.join(".pi/agent/auth.json"), 0o600)?;
    Ok(())
}

/// Every path the example must back up, expanded in the sandbox.
fn backup_paths(sandbox: &Layout) -> Vec<PathBuf> {
    let home = sandbox.home();
    [
        "pi-config/agents-database",
        "pi-config/work",
        "pi-config/outputs",
        ".pi/agent/sessions",
        ".pi/agent/auth.json",
        ".config/pi-telegram",
        ".config/pi",
    ]
    .iter()
    .map(|rel| home.join(rel))
    .collect()
}

/// Mode and content of every file, by path.
type DataPrint = std::collections::BTreeMap<PathBuf, (u32, Vec<u8>)>;

/// Content and mode of every file under `paths`.
fn data_fingerprint(paths: &[PathBuf]) -> DataPrint {
    use std::os::unix::fs::PermissionsExt;
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk_files(path, &mut files);
        } else if path.is_file() {
            files.push(path.clone());
        }
    }
    files
        .into_iter()
        .filter_map(|f| {
            let mode = std::fs::metadata(&f).ok()?.permissions().mode() & 0o7777;
            Some((f.clone(), (mode, std::fs::read(&f).ok()?)))
        })
        .collect()
}

/// Seeds the data, backs it up with `bootstrap-data backup`, and throws it away.
/// Returns the fingerprint of the data as backed up, and what the backup printed.
fn data_round_trip_start(sh: &Shell, sandbox: &Layout, bin_dir: &Path, manifest: &Path) -> Result<(DataPrint, String)> {
    let home = sandbox.home();
    println!("\n== the old host's data: seeded, backed up, then lost");
    seed_data(sh, &home)?;
    let password = home.join(".config/pi-bootstrap/restic-password");
    common::fsx::write_atomic(&password, format!("{RESTIC_PASSWORD}\n").as_bytes(), Some(0o600))?;
    let bin = bin_dir.join("bootstrap-data");
    let out = cmd!(sh, "{bin} backup --manifest {manifest}").ignore_status().output()?;
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    print!("{shown}");
    if !out.status.success() {
        return Err("bootstrap-data backup failed".into());
    }
    let paths = backup_paths(sandbox);
    let before = data_fingerprint(&paths);
    for path in &paths {
        if path.is_dir() {
            for entry in std::fs::read_dir(path)?.flatten() {
                let p = entry.path();
                if p.is_dir() { std::fs::remove_dir_all(&p)? } else { std::fs::remove_file(&p)? }
            }
        } else if path.exists() {
            std::fs::remove_file(path)?;
        }
    }
    println!("backed up {} files, then removed them", before.len());
    Ok((before, shown))
}

/// Where the inner halves write each step's time, for the outer recap.
const TIMES_FILE: &str = "drill-times.tsv";

fn absolute(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { root.join(path) }
}

/// The outer half: build, prepare, run both phases in their namespaces, clean up.
pub fn run(sh: &Shell, root: &Path, args: &DrillArgs) -> Result<()> {
    host_packages::ensure(sh, host_packages::FOR_DRILL)?;
    restore::build(sh)?;
    let bin_dir = restore::bin_dir(root);
    let manifest = absolute(root, &args.manifest);
    let fixture = absolute(root, &args.fixture);

    let dir = tempfile::Builder::new().prefix("pi-drill-").tempdir()?;
    let sandbox = Layout::new(dir.path());
    println!("drill: sandbox {} (private mount, network and PID namespaces)", sandbox.root.display());
    make_origin(sh, &fixture, &sandbox::origin(&sandbox))?;

    let me = std::env::current_exe()?;
    let mut ok = true;
    for phase in [Phase::Online, Phase::Offline] {
        let inner = [
            me.display().to_string(),
            "drill-inside".into(),
            "--sandbox".into(),
            sandbox.root.display().to_string(),
            "--bin-dir".into(),
            bin_dir.display().to_string(),
            "--manifest".into(),
            manifest.display().to_string(),
            "--phase".into(),
            format!("{phase:?}").to_lowercase(),
            "--bench".into(),
            args.bench.to_string(),
        ];
        let argv = common::sandbox::enter_argv(phase == Phase::Offline, &inner);
        let (program, rest) = argv.split_first().ok_or("empty unshare command")?;
        ok = succeeds(cmd!(sh, "{program} {rest...}"));
        if !ok {
            break;
        }
    }
    print!("{}", recovery_time(&sandbox.root.join(TIMES_FILE)));

    let leftovers = sandbox::processes_mentioning(&sandbox.root.display().to_string());
    if args.keep {
        println!("drill: sandbox kept at {}", dir.keep().display());
    } else {
        dir.close()?;
    }
    if !leftovers.is_empty() {
        return Err(format!("the drill left processes running:\n{}", leftovers.join("\n")).into());
    }
    if !ok {
        return Err("the drill failed (see above)".into());
    }
    println!(
        "drill: ok; nothing of the sandbox is left running{}",
        if args.keep { "" } else { ", its folder is removed" }
    );
    Ok(())
}

/// The recap: the whole restore's time, split by step.
fn recovery_time(times_file: &Path) -> String {
    let text = std::fs::read_to_string(times_file).unwrap_or_default();
    let times: Vec<(&str, f64)> = text
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter_map(|(name, secs)| Some((name, secs.parse::<f64>().ok()?)))
        .collect();
    let total: f64 = times.iter().map(|(_, t)| t).sum();
    let mut out = format!("\n== recovery time {total:.2}s (bare sandbox to restored host)\n");
    for (name, secs) in times {
        let _ = writeln!(out, "   {name:<22} {secs:>7.2}s");
    }
    out
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

fn record_time(sandbox: &Layout, name: &str, took: Duration) -> Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(sandbox.root.join(TIMES_FILE))?;
    writeln!(file, "{name}\t{:.3}", took.as_secs_f64())?;
    Ok(())
}

/// The inner half, inside the namespaces.
pub fn inside(sh: &Shell, args: &InsideArgs) -> Result<()> {
    let sandbox = Layout::new(&args.sandbox);
    let origin = format!("file://{}", sandbox::origin(&sandbox).display());
    sh.set_var("PI_CONFIG_URL", &origin);
    let manifest = &args.manifest;
    // The secrets the restore is given, as a user would export them: canaries that
    // must never show up anywhere but in the env files.
    for (name, value) in CANARIES.iter().filter(|(name, _)| *name != "RESTIC_PASSWORD") {
        sh.set_var(name, value);
    }
    let mut seen = String::new();
    let mut data_before = None;
    let _machine = if args.phase == Phase::Offline {
        let booted = Instant::now();
        let mut machine = Machine::boot(sandbox.clone())?;
        // The machine's own nginx, running before the restore reaches it.
        machine.start_nginx()?;
        sandbox::user_env(sh, &sandbox, Some(&machine))?;
        println!(
            "\ndrill: offline phase: private network, nginx and systemd --user running after {}",
            secs(booted.elapsed())
        );
        Some(machine)
    } else {
        sandbox::user_env(sh, &sandbox, None)?;
        println!("\ndrill: online phase: the steps that fetch from package registries");
        // Step 1 of the restore order is the user's: clone the repo to get the tool.
        let started = Instant::now();
        let repo = sandbox.home().join("pi-config");
        println!("\n== 1. git clone (by hand, to get the tool)");
        cmd!(sh, "git clone --quiet --branch main {origin} {repo}").run()?;
        record_time(&sandbox, "git clone", started.elapsed())?;
        None
    };

    let flags = vec!["--manifest".to_owned(), manifest.display().to_string()];
    for (n, step) in STEPS.iter().enumerate().filter(|(_, s)| s.online == (args.phase == Phase::Online)) {
        println!("\n== {}. {} {}", n + 2, step.bin, step.args.join(" "));
        let run = restore::run_step(sh, &args.bin_dir, step, &flags, true)?;
        let shown = format!("{}{}", run.stdout, run.stderr);
        print!("{shown}");
        seen.push_str(&shown);
        println!("-- {} took {}", step.bin, secs(run.took));
        record_time(&sandbox, step.bin, run.took)?;
        if run.code != Some(0) {
            return Err(format!(
                "{} failed; the restore stops here (fix it, then run the step again: what is in place is reported ok)",
                step.bin
            )
            .into());
        }
        if step.bin == "bootstrap-services" {
            // The host runs: give it the data a real one has, back it up, and lose it,
            // so the data restore that follows has real work to do.
            let (before, shown) = data_round_trip_start(sh, &sandbox, &args.bin_dir, manifest)?;
            seen.push_str(&shown);
            data_before = Some(before);
        }
    }
    if let Some(before) = &data_before {
        println!("\n== the data is back, byte for byte");
        let after = data_fingerprint(&backup_paths(&sandbox));
        let lost: Vec<String> = before
            .iter()
            .filter(|(path, print)| after.get(*path) != Some(print))
            .map(|(path, _)| path.display().to_string())
            .collect();
        if !lost.is_empty() {
            return Err(format!("after the restore these differ from the backup: {}", lost.join(", ")).into());
        }
        println!("{} files identical (content and mode)", before.len());
    }
    if args.phase == Phase::Online {
        return Ok(());
    }

    let mut failed = Vec::new();
    println!("\n== rerun: every step again, expecting zero changes");
    let json_flags = vec!["--manifest".to_owned(), manifest.display().to_string(), "--json".to_owned()];
    for step in STEPS {
        let run = restore::run_step(sh, &args.bin_dir, step, &json_flags, true)?;
        seen.push_str(&run.stdout);
        seen.push_str(&run.stderr);
        let json: serde_json::Value = serde_json::from_str(&run.stdout)
            .map_err(|e| format!("{} printed no JSON report ({e}): {}{}", step.bin, run.stdout, run.stderr))?;
        let changed = json["summary"]["changed"].as_u64().unwrap_or(u64::MAX);
        let failures = json["summary"]["failed"].as_u64().unwrap_or(u64::MAX);
        let commands = json["commands"].as_array().map_or(0, Vec::len);
        println!("{}: changed={changed} failed={failures} commands={commands}", step.bin);
        if changed != 0 || failures != 0 || commands != 0 || run.code != Some(0) {
            failed.push(step.bin);
        }
    }
    println!("\n== audit: the host must match the manifest");
    let audit = args.bin_dir.join("pi-config-audit");
    let out = cmd!(sh, "{audit} --manifest {manifest} --quiet").ignore_status().output()?;
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    print!("{shown}");
    seen.push_str(&shown);
    if !out.status.success() {
        failed.push("pi-config-audit");
    }

    println!("\n== secrets: the canary values appear in no output, log or state file");
    let leaks = canary_leaks(&sandbox, &seen);
    if leaks.is_empty() {
        println!("no canary found outside the env files");
    } else {
        println!("canary secrets leaked into: {}", leaks.join(", "));
        failed.push("secrets");
    }
    if failed.is_empty() && args.bench > 0 {
        bench_noop(sh, args, &json_flags)?;
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("drill failed: {}", failed.join(", ")).into()) }
}

/// Times `args.bench` no-op runs of every step and of the audit on the restored host.
fn bench_noop(sh: &Shell, args: &InsideArgs, flags: &[String]) -> Result<()> {
    println!("\n== benchmark: {} no-op runs of each step on the restored host (min / mean)", args.bench);
    let audit = restore::Step { bin: "pi-config-audit", args: &[], online: false };
    let mut total_min = Duration::ZERO;
    for step in STEPS.iter().chain(std::iter::once(&audit)) {
        let mut times = Vec::new();
        for _ in 0..args.bench {
            let run = restore::run_step(sh, &args.bin_dir, step, flags, true)?;
            if run.code != Some(0) {
                return Err(format!("{} was not a no-op: {}{}", step.bin, run.stdout, run.stderr).into());
            }
            times.push(run.took);
        }
        let min = times.iter().min().copied().unwrap_or_default();
        let mean = times.iter().sum::<Duration>() / args.bench.max(1);
        if step.bin != audit.bin {
            total_min += min;
        }
        println!("   {:<22} {:>8.1} ms {:>8.1} ms", step.bin, min.as_secs_f64() * 1e3, mean.as_secs_f64() * 1e3);
    }
    println!("   {:<22} {:>8.1} ms", "no-op restore (sum)", total_min.as_secs_f64() * 1e3);
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
