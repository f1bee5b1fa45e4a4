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
//! Between the old host and that new one, unless `--no-kit`, the same loss is lived
//! on the kit path ([`Host::Kit`]): a brand-new HOME whose PATH has no `cargo` and no
//! `rustc` (proved: `command -v` fails), the restore kit (`cargo xtask kit`, built
//! before the drill and installed on the old host, so its backups hold it) restored
//! out of the repository with restic itself as the runbook says, its checksum checked
//! and its hash compared with the current build's; the clone; then the kit's own
//! `pi-bootstrap-restore` against the manifest in the cloned repo (`--to
//! bootstrap-pi-config` online, the rest offline, the data compared byte for byte
//! before the services that waited start), validate, the second run with zero
//! changes, a verification of the backup, the clean audit and the canary scan, all
//! with the kit's binaries. It takes no backup, so the cargo path after it restores
//! the old host's last snapshot.
//! `--bench` then times the kit's (release) binaries.
//!
//! Each step's report and time is printed, then the recovery time of each path, split
//! by step. Afterwards the sandbox folder is removed and nothing of it is left
//! running.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

use crate::host_packages;
use crate::kit;
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
    /// Only the cargo path: no restore kit is built, and no host restores from one.
    #[arg(long)]
    no_kit: bool,
}

impl DrillArgs {
    /// The example host, with `n` no-op runs of every step timed after the restore.
    pub fn bench(n: u32) -> DrillArgs {
        DrillArgs {
            manifest: "examples/pi-host/pi-bootstrap.yaml".into(),
            fixture: "examples/pi-host/pi-config".into(),
            keep: false,
            bench: n,
            no_kit: false,
        }
    }
}

/// Which half of a host's life runs inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    Online,
    Offline,
}

/// The host before the loss, or its replacement: from the kit out of the backup with
/// no toolchain, or as a clone of this repo installs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Host {
    Old,
    Kit,
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
    /// The current build's restore kit (installed on the old host; the kit host's must
    /// be the same bytes).
    #[arg(long)]
    kit: Option<PathBuf>,
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
    let kit = if args.no_kit {
        None
    } else {
        let started = Instant::now();
        let built = kit::build(sh, root, &manifest, &args.manifest.display().to_string(), &kit::out_dir(root))?;
        println!(
            "drill: restore kit {} (sha256 {}) built and checked in {}",
            built.tarball.display(),
            built.sha256,
            secs(started.elapsed())
        );
        Some(built.tarball)
    };

    let dir = tempfile::Builder::new().prefix("pi-drill-").tempdir()?;
    let sandbox = Layout::new(dir.path());
    println!("drill: sandbox {} (private mount, network and PID namespaces)", sandbox.root.display());
    make_origin(sh, &fixture, &manifest, &sandbox::origin(&sandbox))?;

    let me = std::env::current_exe()?;
    let mut ok = true;
    let mut lives = vec![(Host::Old, Phase::Online), (Host::Old, Phase::Offline)];
    if kit.is_some() {
        lives.extend([(Host::Kit, Phase::Online), (Host::Kit, Phase::Offline)]);
    }
    lives.extend([(Host::New, Phase::Online), (Host::New, Phase::Offline)]);
    for (host, phase) in lives {
        if host != Host::Old && phase == Phase::Online {
            lose_the_machine(&sandbox)?;
        }
        // The kit host reads the manifest in its cloned repo, as the runbook says.
        let manifest = match host {
            Host::Kit => sandbox.home().join(IN_REPO_MANIFEST),
            _ => manifest.clone(),
        };
        // The benchmark times the kit's release binaries when the kit path runs.
        let bench = if host == Host::Kit || kit.is_none() { args.bench } else { 0 };
        let mut inner = vec![
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
            bench.to_string(),
        ];
        if let Some(kit) = &kit {
            inner.extend(["--kit".to_owned(), kit.display().to_string()]);
        }
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

/// The recap: the old host's set-up time, then each new host's whole restore, split by
/// step: the kit path's and the cargo path's.
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
    let mut out = format!("\n== old host set up and backed up in {old:.2}s\n");
    for (host, path) in [
        ("kit", "the kit path: no toolchain, the kit out of the backup"),
        ("new", "the cargo path: cargo xtask install from a clone"),
    ] {
        let new: Vec<&(&str, &str, f64)> = times.iter().filter(|(h, _, _)| *h == host).collect();
        if new.is_empty() {
            continue;
        }
        let total: f64 = new.iter().map(|(_, _, t)| t).sum();
        let _ = writeln!(out, "== recovery time {total:.2}s, {path} (brand-new HOME to restored host)");
        for (_, name, secs) in new {
            let _ = writeln!(out, "   {name:<38} {secs:>7.2}s");
        }
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

/// Where the manifest lies in a clone of the pi-config repo (the README's advice: at
/// its root), relative to HOME.
const IN_REPO_MANIFEST: &str = "pi-config/pi-bootstrap.yaml";

/// Makes the sandbox's pi-config remote: the fixture and the host's manifest (at the
/// root, as the README advises) committed into a fresh repo.
fn make_origin(sh: &Shell, fixture: &Path, manifest: &Path, origin: &Path) -> Result<()> {
    fs_err::create_dir_all(origin)?;
    cmd!(sh, "cp -a {fixture}/. {origin}").run()?;
    fs_err::copy(manifest, origin.join("pi-bootstrap.yaml"))?;
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
        if args.host == Host::Kit {
            without_toolchain(sh)?;
        }
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
        if args.host == Host::Kit {
            without_toolchain(sh)?;
        } else {
            // Getting the tool: `cargo xtask install` puts the binaries in HOME, where
            // the steps and the backup timer run them from.
            println!("\n== 1. cargo xtask install (the step binaries into ~/{})", common::install::BIN_DIR);
            let (_, done) = crate::install::install_binaries(&args.bin_dir, &home, false)?;
            print!("{}", crate::install::describe(&done));
        }
        if let Some(built) = args.kit.as_ref().filter(|_| args.host == Host::Old) {
            // The old host's user ran `cargo xtask kit`: every backup holds the kit.
            println!("\n== cargo xtask kit (the restore kit into ~/{})", common::install::KIT_DIR);
            let bytes = fs_err::read(built)?;
            let built = kit::Kit { tarball: built.clone(), sha256: kit::sha256_hex(&bytes), bytes };
            let (_, outcome) = kit::install_kit(&built, &home, false)?;
            println!("   {outcome:?} {} (sha256 {})", common::install::KIT_FILE, built.sha256);
        }
        // From the password manager, before anything: the one thing the user knows.
        let password = home.join(".config/pi-bootstrap/restic-password");
        common::fsx::write_atomic(&password, format!("{RESTIC_PASSWORD}\n").as_bytes(), Some(0o600))?;
        if args.host == Host::Kit {
            kit_from_the_backup(sh, args, &sandbox)?;
        }
        // Step 1 of the restore order is the user's: clone the repo to get the tool.
        let started = Instant::now();
        let repo = home.join("pi-config");
        let origin = format!("file://{}", sandbox::origin(&sandbox).display());
        println!("\n== 1. git clone (by hand, to get the tool)");
        cmd!(sh, "git clone --quiet --branch main {origin} {repo}").run()?;
        record_time(&sandbox, args.host, "git clone", started.elapsed())?;
        None
    };

    match (args.host, args.phase) {
        (Host::Kit, Phase::Online) => {
            let label =
                "2-3. the kit's pi-bootstrap-restore --to bootstrap-pi-config (the steps that need the network)";
            chain(sh, args, &sandbox, &["--to", "bootstrap-pi-config"], &mut seen, label)?;
        }
        (Host::Kit, Phase::Offline) => {
            let label = "4-5. the kit's pi-bootstrap-restore --from bootstrap-services --to bootstrap-services";
            let services = ["--from", "bootstrap-services", "--to", "bootstrap-services"];
            chain(sh, args, &sandbox, &services, &mut seen, label)?;
            let label =
                "6. the kit's bootstrap-data restore --no-start (every byte compared before a service writes to it)";
            step(sh, args, &sandbox, "bootstrap-data", &["restore", "--no-start"], &mut seen, label)?;
            compare_with_the_old_host(&sandbox, args)?;
            let label = "6-7. the kit's pi-bootstrap-restore --from bootstrap-data (starts the services that waited)";
            chain(sh, args, &sandbox, &["--from", "bootstrap-data"], &mut seen, label)?;
            rewritten_at_start(&sandbox, args)?;
        }
        _ => {}
    }
    let steps = STEPS.iter().filter(|_| args.host != Host::Kit);
    for one in steps.filter(|s| s.online == (args.phase == Phase::Online)) {
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
    }
    // The kit host takes no backup: the cargo path after it restores the old host's
    // last snapshot, and is compared with the old host's data. It reads the backup
    // back from here, as its first night would (the audit asks for a verification).
    if args.phase == Phase::Offline && args.host == Host::Kit {
        println!("\n== the kit host's first verification of the backup (bootstrap-data verify; no backup from it)");
        let verify = restore::Step { bin: "bootstrap-data", args: &["verify"], online: false };
        let flags = vec!["--manifest".to_owned(), args.manifest.display().to_string()];
        let run = restore::run_step(sh, &installed(args), &verify, &flags, true)?;
        seen.show(&format!("{}{}", run.stdout, run.stderr));
        if run.code != Some(0) {
            return Err("the kit host cannot verify the backup".into());
        }
    }
    if args.phase == Phase::Offline && args.host != Host::Old {
        rerun_and_audit(sh, args, &mut seen, &mut failed)?;
    }
    if CANARIES.iter().any(|(_, v)| seen.0.contains(v)) {
        failed.push("secrets in the output");
    }
    if args.phase == Phase::Offline && args.host != Host::Old {
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

/// The kit host's PATH: without every folder that holds `cargo` or `rustc`; proved by
/// `command -v` failing for both inside the sandbox.
fn without_toolchain(sh: &Shell) -> Result<()> {
    let path = sh.var("PATH").unwrap_or_default();
    let kept: Vec<&str> = path
        .split(':')
        .filter(|dir| !["cargo", "rustc"].iter().any(|tool| Path::new(dir).join(tool).exists()))
        .collect();
    sh.set_var("PATH", kept.join(":"));
    let found = cmd!(sh, "sh -c 'command -v cargo || command -v rustc'").ignore_status().output()?;
    if found.status.success() {
        return Err(format!("a toolchain is still on PATH: {}", String::from_utf8_lossy(&found.stdout)).into());
    }
    println!("no toolchain: `command -v cargo` and `command -v rustc` fail (PATH={})", kept.join(":"));
    Ok(())
}

/// The runbook's bare-machine path: the kit out of the repository with restic itself
/// (`restic dump` of the kit's folder, unpacked in place), its checksum file checked,
/// its hash compared with the current build's kit, then unpacked beside `bin/`.
fn kit_from_the_backup(sh: &Shell, args: &InsideArgs, sandbox: &Layout) -> Result<()> {
    let started = Instant::now();
    let home = sandbox.home();
    // The manifest as the user knows it: from the repo (not cloned yet).
    let manifest =
        data::load_manifest(&sandbox::origin(sandbox).join("pi-bootstrap.yaml"), &home, &sandbox_vars(sandbox))?;
    let backup = manifest.backup.as_ref().ok_or("the manifest declares no backup: no kit can travel in it")?;
    let kit = common::install::kit_dir(&home);
    let lib = kit.parent().ok_or("the kit's folder has no parent")?.to_path_buf();
    let host: Vec<String> = manifest.host.iter().flat_map(|h| ["--host".to_owned(), h.clone()]).collect();
    println!("\n== the restore kit out of the backup: restic dump of ~/{} | tar -x -C /", common::install::KIT_DIR);
    let repository = backup.repository.value.to_string();
    let password = backup.password_file.path().to_path_buf();
    let _env = (sh.push_env("RESTIC_REPOSITORY", repository), sh.push_env("RESTIC_PASSWORD_FILE", password));
    let script = "set -o pipefail; restic dump \"$@\" | tar -x -C /";
    cmd!(sh, "bash -c {script} restic-dump {host...} --path {kit} latest {kit}").run()?;
    {
        let _dir = sh.push_dir(&kit);
        let sums = common::install::KIT_SUM_FILE;
        cmd!(sh, "sha256sum -c {sums}").run()?;
    }
    let restored = kit::sha256_hex(&fs_err::read(kit.join(common::install::KIT_FILE))?);
    let built = args.kit.as_ref().ok_or("no --kit: the current build's kit is not known")?;
    let current = kit::sha256_hex(&fs_err::read(built)?);
    if restored != current {
        return Err(format!("the kit in the backup ({restored}) is not the current build's ({current})").into());
    }
    println!("the kit in the backup is the current build's (sha256 {current})");
    let tarball = kit.join(common::install::KIT_FILE);
    cmd!(sh, "tar -xzf {tarball} -C {lib}").run()?;
    let version = fs_err::read_to_string(lib.join("VERSION"))?;
    println!("unpacked into ~/.local/lib/pi-bootstrap: {}", version.trim());
    record_time(sandbox, args.host, "the kit out of the backup", started.elapsed())?;
    Ok(())
}

/// Runs the kit's `pi-bootstrap-restore` (`range`: `--from`, `--to`) with `--json`,
/// shows each step's items, records each step's time (the chain's own measure); a
/// chain that does not exit 0 stops the drill.
fn chain(sh: &Shell, args: &InsideArgs, sandbox: &Layout, range: &[&str], seen: &mut Seen, label: &str) -> Result<()> {
    println!("\n== {label}");
    let program = installed(args).join(bootstrap_restore::NAME);
    let manifest = &args.manifest;
    let out = cmd!(sh, "{program} --manifest {manifest} {range...} --json").ignore_status().output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    seen.add(&stdout);
    seen.add(&stderr);
    let doc: serde_json::Value = serde_json::from_str(&stdout)
        .map_err(|e| format!("{} printed no JSON document ({e}): {stdout}{stderr}", bootstrap_restore::NAME))?;
    for ran in doc["steps"].as_array().into_iter().flatten() {
        let name = std::iter::once(ran["step"].as_str().unwrap_or("?"))
            .chain(ran["args"].as_array().into_iter().flatten().filter_map(|a| a.as_str()))
            .collect::<Vec<_>>()
            .join(" ");
        println!("-- {name}");
        for item in ran["report"]["items"].as_array().into_iter().flatten() {
            let status = item["status"].as_str().unwrap_or("?");
            println!("{status:<13} {} {}", item["id"].as_str().unwrap_or("?"), item["detail"].as_str().unwrap_or(""));
        }
        let summary = &ran["report"]["summary"];
        println!(
            "-- {name}: exit {} in {:.2}s (changed={} failed={})",
            ran["exit_code"],
            ran["seconds"].as_f64().unwrap_or(0.0),
            summary["changed"],
            summary["failed"]
        );
        let took = Duration::from_secs_f64(ran["seconds"].as_f64().unwrap_or(0.0).max(0.0));
        record_time(sandbox, args.host, &name, took)?;
    }
    if out.status.code() != Some(0) {
        return Err(format!(
            "the kit's {} failed (exit {:?}, stopped at {}): {stderr}",
            bootstrap_restore::NAME,
            out.status.code(),
            doc["stopped_at"]
        )
        .into());
    }
    Ok(())
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
    restore::mark_noop_runs(true)?;
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
    restore::mark_noop_runs(false)?;
    Ok(())
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
