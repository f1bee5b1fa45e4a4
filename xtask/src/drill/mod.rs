//! `cargo xtask drill`: rehearses the loss of a whole host and its restore, in a
//! throwaway sandbox, the way it happens in the world.
//!
//! Outside the namespaces it builds the binaries, makes the sandbox folder and the
//! pi-config "remote" (a git repo made from the example's fixture), then re-runs xtask
//! inside fresh namespaces ([`inside`]) four times:
//!
//! 1. the old host, online (mount and PID namespaces): a fresh account (the skeleton
//!    folder copied into HOME), the clone, prerequisites and pi-config, with user-level
//!    installs from the package registries into the sandbox's `~/.local`;
//! 2. the old host, offline (a private network with only a loopback, a private `/run`,
//!    a real `systemd --user` and nginx): the services, the first backup of a new host
//!    and the restore that starts the services that waited; then its life: data made
//!    through the running services, by Pi, and by the user's own lines in
//!    `~/.bashrc`; the backup; a record of every `backup`-class path's content (kinds,
//!    modes, digests: no secret);
//! 3. the loss: HOME, the user manager's state and the nginx prefix are thrown away;
//!    only the restic repository and the git remote survive;
//! 4. the new host, online then offline, on a brand-new HOME (a fresh account again)
//!    with a fresh user manager and nginx: the documented order (clone, prereqs,
//!    pi-config, services, data restore, validate), knowing nothing but the restic
//!    password (the secrets come back from the backup). Every `backup`-class path must
//!    then be identical to the old host's; every step runs again and must report zero
//!    changes and run no command (read from `--json`); the audit must be clean; the
//!    canary secrets must appear in no output, log or state file.
//!
//! Each step's report and time is printed, then the recovery time of the new host,
//! split by step. Afterwards the sandbox folder is removed and nothing of it is left
//! running.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

use crate::host_packages;
use common::sandbox::{Layout, Machine};

use crate::restore::{self, STEPS};
use crate::sandbox;

mod data;

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

/// Which half of a host's life runs inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Online,
    Offline,
}

/// The host before the loss, or its replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    Old,
    New,
}

#[derive(Debug, clap::Args)]
pub struct InsideArgs {
    #[arg(long)]
    sandbox: PathBuf,
    /// Where the built binaries are (installed from there into the sandbox's HOME).
    #[arg(long)]
    bin_dir: PathBuf,
    #[arg(long)]
    manifest: PathBuf,
    #[arg(long, value_enum)]
    host: Host,
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

/// Where the inner halves write each step's time, for the outer recap.
const TIMES_FILE: &str = "drill-times.tsv";

fn absolute(root: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { root.join(path) }
}

/// Where the old host's data record waits for the new host (digests only).
const OLD_DATA_FILE: &str = "old-host-data.json";

/// The outer half: build, prepare, run each host's phases in their namespaces, lose
/// the machine in between, clean up.
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
    let lives = [
        (Host::Old, Phase::Online),
        (Host::Old, Phase::Offline),
        (Host::New, Phase::Online),
        (Host::New, Phase::Offline),
    ];
    for (host, phase) in lives {
        if host == Host::New && phase == Phase::Online {
            lose_the_machine(&sandbox)?;
        }
        let inner = [
            me.display().to_string(),
            "drill-inside".into(),
            "--sandbox".into(),
            sandbox.root.display().to_string(),
            "--bin-dir".into(),
            bin_dir.display().to_string(),
            "--manifest".into(),
            manifest.display().to_string(),
            "--host".into(),
            format!("{host:?}").to_lowercase(),
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

/// The machine is lost: its HOME (state folder, units, data, all of it) and its nginx
/// go. The user manager's runtime state went with the namespace that ran it. Only the
/// restic repository and the git remote are left, and the record of the old data.
fn lose_the_machine(sandbox: &Layout) -> Result<()> {
    println!(
        "\n== the machine is lost: HOME, the user manager's state and nginx are gone; the backup and the git remote remain"
    );
    for gone in [sandbox.home(), sandbox.nginx_prefix()] {
        if gone.exists() {
            std::fs::remove_dir_all(&gone).map_err(|e| format!("cannot remove {}: {e}", gone.display()))?;
        }
    }
    Ok(())
}

/// The recap: the old host's set-up time, then the new host's whole restore, split by
/// step.
fn recovery_time(times_file: &Path) -> String {
    let text = std::fs::read_to_string(times_file).unwrap_or_default();
    let times: Vec<(&str, &str, f64)> = text
        .lines()
        .filter_map(|l| {
            let mut fields = l.split('\t');
            Some((fields.next()?, fields.next()?, fields.next()?.parse::<f64>().ok()?))
        })
        .collect();
    let old: f64 = times.iter().filter(|(h, _, _)| *h == "old").map(|(_, _, t)| t).sum();
    let new: Vec<&(&str, &str, f64)> = times.iter().filter(|(h, _, _)| *h == "new").collect();
    let total: f64 = new.iter().map(|(_, _, t)| t).sum();
    let mut out = format!("\n== old host set up and backed up in {old:.2}s\n");
    let _ = writeln!(out, "== recovery time {total:.2}s (brand-new HOME to restored host)");
    for (_, name, secs) in new {
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
    fs_err::create_dir_all(origin)?;
    cmd!(sh, "cp -a {fixture}/. {origin}").run()?;
    let _dir = sh.push_dir(origin);
    let git =
        ["-c", "user.name=pi-bootstrap drill", "-c", "user.email=drill@localhost", "-c", "init.defaultBranch=main"];
    cmd!(sh, "git {git...} init --quiet").run()?;
    cmd!(sh, "git {git...} add --all").run()?;
    cmd!(sh, "git {git...} commit --quiet -m 'pi-config fixture'").run()?;
    Ok(())
}

fn record_time(sandbox: &Layout, host: Host, name: &str, took: Duration) -> Result<()> {
    use std::io::Write as _;
    let mut file = fs_err::OpenOptions::new().create(true).append(true).open(sandbox.root.join(TIMES_FILE))?;
    let host = format!("{host:?}").to_lowercase();
    writeln!(file, "{host}\t{name}\t{:.3}", took.as_secs_f64())?;
    Ok(())
}

/// What one inner half saw, for the canary scan.
struct Seen(String);

impl Seen {
    fn add(&mut self, text: &str) {
        self.0.push_str(text);
    }
    fn show(&mut self, text: &str) {
        print!("{text}");
        self.add(text);
    }
}

/// Where the sandbox's user has the step binaries: installed into HOME, as `cargo
/// xtask install` puts them (the backup timer runs them from there).
fn installed(args: &InsideArgs) -> PathBuf {
    common::install::bin_dir(&Layout::new(&args.sandbox).home())
}

/// Starts the backup timer's service by hand, as the timer would at night (oneshot:
/// `start` waits for it), and says whether it succeeded.
fn nightly_backup(sh: &Shell, seen: &mut Seen) -> Result<()> {
    let service = format!("{}.service", common::install::BACKUP_UNIT);
    println!(
        "\n== the nightly backup: {service}, started by hand as its timer would (backup, forget, verify when due)"
    );
    let started = Instant::now();
    let run = cmd!(sh, "systemctl --user start {service}").ignore_status().output()?;
    seen.show(&format!("{}{}", String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr)));
    let result = cmd!(sh, "systemctl --user show -p Result --value {service}").read()?;
    println!("{service}: Result={result} after {}", secs(started.elapsed()));
    if !run.status.success() || result.trim() != "success" {
        return Err(format!("the scheduled backup failed (Result={result})").into());
    }
    Ok(())
}

/// The variables the manifest reads in the sandbox.
fn sandbox_vars(sandbox: &Layout) -> Vec<(&'static str, String)> {
    vec![
        ("NGINX_PREFIX", sandbox.nginx_prefix().display().to_string()),
        ("PI_BACKUP_REPO", sandbox.backup_repo().display().to_string()),
        ("PI_CONFIG_URL", format!("file://{}", sandbox::origin(sandbox).display())),
    ]
}

/// Runs one step binary (`args` after the step's own), shows its output, records its
/// time; a step that fails stops the drill.
fn step(
    sh: &Shell,
    args: &InsideArgs,
    sandbox: &Layout,
    bin: &'static str,
    extra: &'static [&'static str],
    seen: &mut Seen,
    label: &str,
) -> Result<()> {
    println!("\n== {label}");
    let flags = vec!["--manifest".to_owned(), args.manifest.display().to_string()];
    let one = restore::Step { bin, args: extra, online: false };
    let run = restore::run_step(sh, &installed(args), &one, &flags, true)?;
    seen.show(&format!("{}{}", run.stdout, run.stderr));
    println!("-- {bin} took {}", secs(run.took));
    let name = std::iter::once(bin).chain(extra.iter().copied()).collect::<Vec<_>>().join(" ");
    record_time(sandbox, args.host, &name, run.took)?;
    if run.code != Some(0) {
        return Err(format!(
            "{bin} failed; the restore stops here (fix it, then run the step again: what is in place is reported ok)"
        )
        .into());
    }
    Ok(())
}

/// The inner half, inside the namespaces.
pub fn inside(sh: &Shell, args: &InsideArgs) -> Result<()> {
    let sandbox = Layout::new(&args.sandbox);
    sh.set_var("PI_CONFIG_URL", format!("file://{}", sandbox::origin(&sandbox).display()));
    let home = sandbox.home();
    // The old host was set up by someone who exported its secrets; on the new host the
    // user remembers nothing but the restic password: the secrets come from the backup.
    if args.host == Host::Old {
        for (name, value) in CANARIES.iter().filter(|(name, _)| *name != "RESTIC_PASSWORD") {
            sh.set_var(name, value);
        }
    }
    let mut seen = Seen(String::new());
    let _machine = if args.phase == Phase::Offline {
        let booted = Instant::now();
        let mut machine = Machine::boot(sandbox.clone())?;
        // The machine's own nginx, running before the restore reaches it.
        machine.start_nginx()?;
        sandbox::user_env(sh, &sandbox, Some(&machine))?;
        println!(
            "\ndrill: {:?} host, offline: private network, nginx and systemd --user running after {}",
            args.host,
            secs(booted.elapsed())
        );
        Some(machine)
    } else {
        println!(
            "\ndrill: {:?} host, online: a fresh account, then the steps that fetch from package registries",
            args.host
        );
        data::fresh_account(sh, &home)?;
        sandbox::user_env(sh, &sandbox, None)?;
        // Getting the tool: `cargo xtask install` puts the binaries in HOME, where the
        // steps and the backup timer run them from.
        println!("\n== 1. cargo xtask install (the step binaries into ~/{})", common::install::BIN_DIR);
        let (_, done) = crate::install::install_binaries(&args.bin_dir, &home, false)?;
        print!("{}", crate::install::describe(&done));
        // From the password manager, before anything: the one thing the user knows.
        let password = home.join(".config/pi-bootstrap/restic-password");
        common::fsx::write_atomic(&password, format!("{RESTIC_PASSWORD}\n").as_bytes(), Some(0o600))?;
        // Step 1 of the restore order is the user's: clone the repo to get the tool.
        let started = Instant::now();
        let repo = home.join("pi-config");
        let origin = format!("file://{}", sandbox::origin(&sandbox).display());
        println!("\n== 1. git clone (by hand, to get the tool)");
        cmd!(sh, "git clone --quiet --branch main {origin} {repo}").run()?;
        record_time(&sandbox, args.host, "git clone", started.elapsed())?;
        None
    };

    for one in STEPS.iter().filter(|s| s.online == (args.phase == Phase::Online)) {
        let n = restore::number(one.bin);
        let label = format!("{n}. {} {}", one.bin, one.args.join(" "));
        match (args.host, one.bin) {
            (Host::Old, "bootstrap-data") => {
                // A new host that was never backed up: the first backup makes the
                // repository, and the restore then starts the services that waited.
                let first = "old host: its first backup (a new host: it creates the repository)";
                step(sh, args, &sandbox, "bootstrap-data", &["backup"], &mut seen, first)?;
                step(sh, args, &sandbox, one.bin, one.args, &mut seen, &label)?;
            }
            (Host::New, "bootstrap-data") => {
                // The data back, looked at before any service writes to it; then the
                // restore again, which starts the services that waited for it.
                let label = format!("{label} --no-start (every byte compared before a service writes to it)");
                step(sh, args, &sandbox, "bootstrap-data", &["restore", "--no-start"], &mut seen, &label)?;
                compare_with_the_old_host(&sandbox, args)?;
                let again = format!("{n}. bootstrap-data restore (starts the services that waited)");
                step(sh, args, &sandbox, one.bin, one.args, &mut seen, &again)?;
                rewritten_at_start(&sandbox, args)?;
            }
            _ => step(sh, args, &sandbox, one.bin, one.args, &mut seen, &label)?,
        }
    }
    let mut failed = Vec::new();
    if args.phase == Phase::Offline && args.host == Host::Old {
        println!("\n== the old host's life: data through its services, by Pi, and the user's own lines in ~/.bashrc");
        data::live_on_the_old_host(sh, &home)?;
        step(sh, args, &sandbox, "bootstrap-data", &["backup"], &mut seen, "old host: a backup by hand")?;
        step(sh, args, &sandbox, "bootstrap-data", &["verify"], &mut seen, "old host: the backup read back")?;
        step(
            sh,
            args,
            &sandbox,
            "bootstrap-data",
            &["forget"],
            &mut seen,
            "old host: old snapshots forgotten, as `keep` says",
        )?;
        nightly_backup(sh, &mut seen)?;
        step(
            sh,
            args,
            &sandbox,
            "bootstrap-data",
            &["snapshots"],
            &mut seen,
            "old host: its snapshots, the last before the loss",
        )?;
        let manifest = data::load_manifest(&args.manifest, &home, &sandbox_vars(&sandbox))?;
        let print = data::fingerprint(&manifest, &home)?;
        fs_err::write(sandbox.root.join(OLD_DATA_FILE), serde_json::to_vec_pretty(&print)?)?;
        println!("recorded {} entries of durable data (digests only)", print.len());
    }
    if args.phase == Phase::Offline && args.host == Host::New {
        // The new host's first night: its own backup, and a verification from here.
        nightly_backup(sh, &mut seen)?;
        rerun_and_audit(sh, args, &mut seen, &mut failed)?;
    }
    if CANARIES.iter().any(|(_, v)| seen.0.contains(v)) {
        failed.push("secrets in the output");
    }
    if args.phase == Phase::Offline && args.host == Host::New {
        println!("\n== secrets: the canary values appear in no output, log or state file");
        let leaks = canary_leaks(&sandbox, &seen.0);
        if leaks.is_empty() {
            println!("no canary found outside the env files");
        } else {
            println!("canary secrets leaked into: {}", leaks.join(", "));
            failed.push("secrets");
        }
        if failed.is_empty() && args.bench > 0 {
            let json_flags = vec!["--manifest".to_owned(), args.manifest.display().to_string(), "--json".to_owned()];
            bench_noop(sh, args, &json_flags)?;
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(format!("drill failed: {}", failed.join(", ")).into()) }
}

/// Every `backup`-class path of the manifest, entry by entry, against the old host's.
fn compare_with_the_old_host(sandbox: &Layout, args: &InsideArgs) -> Result<()> {
    println!("\n== the data is back, byte for byte: every backup-class path of the manifest");
    let home = sandbox.home();
    let old: data::DataPrint = serde_json::from_slice(&fs_err::read(sandbox.root.join(OLD_DATA_FILE))?)?;
    let manifest = data::load_manifest(&args.manifest, &home, &sandbox_vars(sandbox))?;
    let new = data::fingerprint(&manifest, &home)?;
    let paths = common::durable::data_paths(&manifest);
    for (path, n) in data::per_path(&old, &paths, &home) {
        println!("   {path:<40} {n:>4} {}", if n == 1 { "entry" } else { "entries" });
    }
    let differences = data::differences(&old, &new);
    if !differences.is_empty() {
        return Err(format!(
            "after the restore the durable data differs from the old host's:\n{}",
            differences.join("\n")
        )
        .into());
    }
    println!("{} paths, {} entries identical (kind, mode, content)", paths.len(), old.len());
    Ok(())
}

/// After the services that waited started: the files they rewrote at their start
/// (copyparty writes its pid and start time into `sessions.db`), for the record.
fn rewritten_at_start(sandbox: &Layout, args: &InsideArgs) -> Result<()> {
    let home = sandbox.home();
    let old: data::DataPrint = serde_json::from_slice(&fs_err::read(sandbox.root.join(OLD_DATA_FILE))?)?;
    let manifest = data::load_manifest(&args.manifest, &home, &sandbox_vars(sandbox))?;
    let differences = data::differences(&old, &data::fingerprint(&manifest, &home)?);
    if differences.is_empty() {
        println!("the services that started wrote nothing to their restored data yet");
    } else {
        println!("written by the services since they started (their own work, not the restore's):");
        for line in differences {
            println!("   {line}");
        }
    }
    Ok(())
}

/// Every step again (zero changes, no command), then the audit.
fn rerun_and_audit(sh: &Shell, args: &InsideArgs, seen: &mut Seen, failed: &mut Vec<&'static str>) -> Result<()> {
    let manifest = &args.manifest;
    println!("\n== rerun: every step again, expecting zero changes");
    let json_flags = vec!["--manifest".to_owned(), manifest.display().to_string(), "--json".to_owned()];
    for one in STEPS {
        let run = restore::run_step(sh, &installed(args), one, &json_flags, true)?;
        seen.add(&run.stdout);
        seen.add(&run.stderr);
        let json: serde_json::Value = serde_json::from_str(&run.stdout)
            .map_err(|e| format!("{} printed no JSON report ({e}): {}{}", one.bin, run.stdout, run.stderr))?;
        let changed = json["summary"]["changed"].as_u64().unwrap_or(u64::MAX);
        let failures = json["summary"]["failed"].as_u64().unwrap_or(u64::MAX);
        let commands = json["commands"].as_array().map_or(0, Vec::len);
        println!("{}: changed={changed} failed={failures} commands={commands}", one.bin);
        if changed != 0 || failures != 0 || commands != 0 || run.code != Some(0) {
            println!("{}", run.stdout);
            failed.push(one.bin);
        }
    }
    println!("\n== audit: the host must match the manifest");
    let audit = installed(args).join("pi-config-audit");
    let out = cmd!(sh, "{audit} --manifest {manifest} --quiet").ignore_status().output()?;
    seen.show(&format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)));
    if !out.status.success() {
        failed.push("pi-config-audit");
    }
    Ok(())
}

/// The goal of a no-op step's median on the restored example host (issue 17): each step
/// 30 ms, the audit 50 ms; validate is bounded by its slowest check, so it has none here.
fn noop_goal(bin: &str) -> Option<Duration> {
    match bin {
        "pi-config-audit" => Some(Duration::from_millis(50)),
        "bootstrap-validate" => None,
        _ => Some(Duration::from_millis(30)),
    }
}

/// The goal of the no-op steps before validate, together.
const NOOP_CHAIN_GOAL: Duration = Duration::from_millis(150);

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn against(figure: Duration, goal: Option<Duration>) -> String {
    match goal {
        Some(goal) if figure <= goal => format!("<= {:>4} ms  met", goal.as_millis()),
        Some(goal) => {
            format!("<= {:>4} ms  NOT MET ({:.1}x)", goal.as_millis(), figure.as_secs_f64() / goal.as_secs_f64())
        }
        None => "(slowest check + 20 ms)".to_owned(),
    }
}

/// Times `args.bench` no-op runs of every step and of the audit on the restored host:
/// the minimum, the median and the goal of each, and of the steps before validate
/// together (their medians summed).
fn bench_noop(sh: &Shell, args: &InsideArgs, flags: &[String]) -> Result<()> {
    println!("\n== benchmark: {} no-op runs of each step on the restored host (min / median / goal)", args.bench);
    let audit = restore::Step { bin: "pi-config-audit", args: &[], online: false };
    let mut chain = Duration::ZERO;
    for step in STEPS.iter().chain(std::iter::once(&audit)) {
        let mut times = Vec::new();
        for _ in 0..args.bench {
            let run = restore::run_step(sh, &installed(args), step, flags, true)?;
            if run.code != Some(0) {
                return Err(format!("{} was not a no-op: {}{}", step.bin, run.stdout, run.stderr).into());
            }
            times.push(run.took);
        }
        let min = times.iter().min().copied().unwrap_or_default();
        let median = median(&mut times);
        if step.bin != audit.bin && step.bin != "bootstrap-validate" {
            chain += median;
        }
        println!(
            "   {:<22} {:>8.1} ms {:>8.1} ms   {}",
            step.bin,
            min.as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            against(median, noop_goal(step.bin))
        );
    }
    println!(
        "   {:<22} {:>8} {:>11.1} ms   {}",
        "steps before validate",
        "",
        chain.as_secs_f64() * 1e3,
        against(chain, Some(NOOP_CHAIN_GOAL))
    );
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
