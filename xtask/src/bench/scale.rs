//! The generated large host: manifests of 100, 1,000 and 5,000 services (each with a
//! unit, an env file, runtime and log paths and a port), the repo committed in git,
//! on the sandbox's HOME with its real user manager. Each size is audited three times:
//! declared but not installed yet (no unit file: a fresh host before
//! `bootstrap-services`); installed but not enabled (every unit file in
//! `~/.config/systemd/user`; nothing references them, so systemd has not loaded them);
//! and enabled (loaded, as on a host `bootstrap-services` set up, not started). The
//! audit's median at each size is shown beside the goal (1,000 services: <= 300 ms) with the time per service, which stays
//! flat when the audit is linear.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use xshell::{Shell, cmd};

use super::figures::Figure;
use super::measure::{self, median, ms};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The sizes of the generated host.
pub const SIZES: &[usize] = &[100, 1_000, 5_000];

/// The goal of the 1,000-service audit (issue 17).
const GOAL_1000: Duration = Duration::from_millis(300);

/// Writes the repo (one folder, unit and program per service), commits it, and the
/// manifest declaring it; returns the manifest's path. The env files are written with
/// their values, as `bootstrap-services` would have made them.
fn generate(sh: &Shell, root: &Path, home: &Path, services: usize) -> Result<std::path::PathBuf> {
    let repo = home.join("pi-config");
    if repo.exists() {
        fs_err::remove_dir_all(&repo)?;
    }
    fs_err::create_dir_all(repo.join("systemd"))?;
    fs_err::create_dir_all(home.join(".config/svc"))?;
    fs_err::write(repo.join(".gitignore"), "runtime/\nlogs/\n")?;
    let mut text = String::from(
        "version: 1\nhost: bench\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\n  branch: main\nservices:\n",
    );
    let mut env = String::from("env:\n");
    for n in 0..services {
        let name = format!("svc-{n:04}");
        let source = repo.join("services").join(&name);
        fs_err::create_dir_all(&source)?;
        fs_err::write(source.join("main.py"), format!("print('{name}')\n"))?;
        let unit = format!(
            "[Unit]\nDescription={name}\n[Service]\nEnvironmentFile=%h/.config/svc/{name}.env\nExecStart=/usr/bin/python3 %h/pi-config/services/{name}/main.py\n[Install]\nWantedBy=default.target\n"
        );
        fs_err::write(repo.join("systemd").join(format!("{name}.service")), &unit)?;
        let _ = write!(
            text,
            "  - name: {name}\n    purpose: generated service {n}\n    source: services/{name}\n    unit: systemd/{name}.service\n    env_file: {name}\n    runtime_path: ~/pi-config/runtime/{name}\n    log_path: ~/pi-config/logs/{name}.log\n    port: {}\n",
            20_000 + n
        );
        let _ = write!(
            env,
            "  - name: {name}\n    path: ~/.config/svc/{name}.env\n    vars: [TOKEN]\n    mode: \"0600\"\n"
        );
        let env_file = home.join(format!(".config/svc/{name}.env"));
        common::fsx::write_atomic(&env_file, format!("TOKEN=bench-{n:05}\n").as_bytes(), Some(0o600))?;
    }
    text.push_str(&env);
    let _dir = sh.push_dir(&repo);
    let git =
        ["-c", "user.name=pi-bootstrap bench", "-c", "user.email=bench@localhost", "-c", "init.defaultBranch=main"];
    cmd!(sh, "git {git...} init --quiet").run()?;
    cmd!(sh, "git {git...} remote add origin https://example.invalid/pi-config.git").run()?;
    cmd!(sh, "git {git...} add --all").run()?;
    cmd!(sh, "git {git...} commit --quiet -m generated").run()?;
    let manifest = root.join(format!("scale-{services}.yaml"));
    fs_err::write(&manifest, text)?;
    Ok(manifest)
}

/// What the generated host's units are when it is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Units {
    /// No unit file yet: a fresh host before `bootstrap-services`.
    Declared,
    /// Unit files in `~/.config/systemd/user`, not enabled: nothing references them, so
    /// systemd has not loaded them and loads each one it is asked about.
    Installed,
    /// Installed and enabled (`default.target` wants them), so loaded; not started.
    Enabled,
}

impl Units {
    const ALL: [Units; 3] = [Units::Declared, Units::Installed, Units::Enabled];

    fn describe(self) -> &'static str {
        match self {
            Units::Declared => "declared, not installed yet",
            Units::Installed => "installed, not enabled (not loaded)",
            Units::Enabled => "installed and enabled (loaded), not started",
        }
    }
}

/// Puts the generated unit files in the state `units` (removing, copying, enabling in
/// one call) and reloads the user manager.
fn install_units(sh: &Shell, home: &Path, services: usize, units: Units) -> Result<()> {
    let dir = home.join(".config/systemd/user");
    fs_err::create_dir_all(&dir)?;
    let names: Vec<String> = (0..services).map(|n| format!("svc-{n:04}.service")).collect();
    let wants = dir.join("default.target.wants");
    if wants.exists() {
        fs_err::remove_dir_all(&wants)?;
    }
    for name in &names {
        let target = dir.join(name);
        if units == Units::Declared {
            if target.exists() {
                fs_err::remove_file(&target)?;
            }
        } else {
            fs_err::copy(home.join("pi-config/systemd").join(name), &target)?;
        }
    }
    if units == Units::Enabled {
        cmd!(sh, "systemctl --user enable --quiet {names...}").run()?;
    }
    cmd!(sh, "systemctl --user daemon-reload").run()?;
    Ok(())
}

/// The first audit of `manifest` after the units were put in place (and the manager
/// reloaded), then the median of `runs` more. The first is shown apart: after a
/// `daemon-reload` systemd works out each unit's enablement again on the first ask,
/// which on a large host takes it far longer than any later audit. An audit that
/// refuses the manifest (exit 2) stops the benchmark.
fn time_audit(sh: &Shell, bin_dir: &Path, manifest: &Path, runs: u32) -> Result<(Duration, Duration)> {
    let audit = bin_dir.join("pi-config-audit");
    let mut first = Duration::ZERO;
    let mut times = Vec::new();
    for i in 0..=runs {
        let command: std::process::Command = cmd!(sh, "{audit} --manifest {manifest} --quiet").into();
        let run = measure::run(command, true)?;
        if !matches!(run.code, Some(0 | 1)) {
            return Err(format!(
                "the audit of {} failed ({:?}): {}{}",
                manifest.display(),
                run.code,
                run.stdout,
                run.stderr
            )
            .into());
        }
        if i == 0 {
            first = run.took;
        } else {
            times.push(run.took);
        }
    }
    Ok((first, median(&times)))
}

/// Runs at `services`: above 1,000 one run after the first (an audit there takes
/// seconds on this machine kind).
fn runs_of(services: usize, runs: u32) -> u32 {
    if services > 1_000 { 1 } else { runs }
}

/// The generated hosts, each size in each state of its units; the figures.
pub fn run(sh: &Shell, root: &Path, home: &Path, bin_dir: &Path, build: &str, runs: u32) -> Result<Vec<Figure>> {
    println!(
        "\n== the generated large host: pi-config-audit, median of {runs} runs ({build} build, real user manager)"
    );
    println!("   {:<9} {:<44} {:>10} {:>12} {:>14}", "services", "units", "median", "per service", "first audit");
    let mut figures = Vec::new();
    for &services in SIZES {
        let manifest = generate(sh, root, home, services)?;
        for units in Units::ALL {
            install_units(sh, home, services, units)?;
            let (first, took) = time_audit(sh, bin_dir, &manifest, runs_of(services, runs))?;
            let per = took / u32::try_from(services).unwrap_or(u32::MAX);
            let state = units.describe();
            println!(
                "   {services:<9} {state:<44} {:>10} {:>9.1} µs {:>14}",
                ms(took),
                per.as_secs_f64() * 1e6,
                ms(first)
            );
            let (goal, met) = if services == 1_000 {
                (format!("<= {}", ms(GOAL_1000)), Some(took <= GOAL_1000))
            } else {
                (String::new(), None)
            };
            figures.push(Figure::new(
                "scale",
                format!(
                    "`pi-config-audit` of a generated {services}-service host, units {state} ({build}, median of {} after the first; {:.0} µs per service; the first after the daemon-reload: {})",
                    runs_of(services, runs),
                    per.as_secs_f64() * 1e6,
                    ms(first)
                ),
                ms(took),
                goal,
                met,
            ));
        }
        install_units(sh, home, services, Units::Declared)?;
    }
    Ok(figures)
}
