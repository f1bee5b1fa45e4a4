//! The ordered restore on a small host in a sandbox with a real `systemd --user` and a
//! real restic repository. Through `cargo xtask restore` (build, install, run the
//! installed `pi-bootstrap-restore`): a failing step stops the chain and `--resume`
//! continues from it; a second restore reports zero changes in the JSON of every step.
//! Through the built `pi-bootstrap-restore` (the steps beside it), one test per exit
//! code of the chain: 0 for a clean restore, 1 for a failing step (recorded, resumed),
//! 1 for `--check` with changes due, 0 for `--check` in sync, 2 for a bad manifest
//! (nothing recorded); and the run lock held across the chain: a step started by hand
//! meanwhile is refused, with or without a forged hand-over variable, while the
//! chain's own steps run under it.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::git::init_repo;
use test_support::workspace::{built_binaries, root};

fn run(cmd: &mut Command) -> Result<Output, Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into())
    }
}

/// The old host's pi-config remote, its backup, and the manifest.
fn prepare(machine: &Machine) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let layout = &machine.layout;
    let origin = layout.root.join("origin");
    init_repo(
        &origin,
        &[
            ("pi/settings.json", "{}\n"),
            ("services/alpha/index.html", "alpha\n"),
            (".gitignore", "data/\n"),
            (
                "systemd/alpha.service",
                "[Service]\nEnvironmentFile=%h/.config/demo/demo.env\nExecStart=/usr/bin/python3 -m http.server 7401 --bind 127.0.0.1 --directory %h/pi-config/services/alpha\n[Install]\nWantedBy=default.target\n",
            ),
        ],
    )?;

    // The old host's backup of the service's data, made with restic itself.
    let home = layout.home();
    let data = home.join("pi-config/data/alpha");
    fs::create_dir_all(&data)?;
    fs::write(data.join("records.txt"), "what alpha remembers\n")?;
    let password = home.join(".config/pi-bootstrap/restic-password");
    fs::create_dir_all(home.join(".config/pi-bootstrap"))?;
    fs::write(&password, "canary-restore-password-51f0\n")?;
    common::fsx::set_mode(&password, 0o600)?;
    let restic = |args: &[&str]| {
        run(Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", layout.backup_repo())
            .env("RESTIC_PASSWORD_FILE", &password)
            .env("RESTIC_CACHE_DIR", layout.root.join("restic-cache")))
    };
    restic(&["init"])?;
    restic(&["backup", "--host", "restore-test", "--tag", "pi-bootstrap", &data.display().to_string()])?;
    // The machine is lost: only the password (from the password manager) comes back.
    fs::remove_dir_all(home.join("pi-config"))?;

    let manifest = layout.root.join("pi-bootstrap.yaml");
    fs::write(
        &manifest,
        format!(
            "version: 1
host: restore-test
prereqs:
  - name: sh
    check: [sh, -c, 'if [ -e $HOME/pause ]; then : > $HOME/paused; while [ -e $HOME/pause ]; do sleep 0.05; done; fi; echo sh 5.2']
    install: {{apt: dash}}
repo:
  path: ~/pi-config
  url: file://{}
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
services:
  - name: alpha
    purpose: a demo service
    source: services/alpha
    unit: systemd/alpha.service
    env_file: demo
    data_path: ~/pi-config/data/alpha
    port: 7401
    health:
      http: {{url: 'http://127.0.0.1:7401/', status: 200}}
    backup: backup
env:
  - name: demo
    path: ~/.config/demo/demo.env
    vars: [DEMO_TOKEN]
backup:
  repository: ${{PI_BACKUP_REPO}}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
",
            origin.display()
        ),
    )?;
    Ok(manifest)
}

/// `cargo xtask restore ARGS --json` in the sandbox (cargo and rustup from the machine).
fn restore(
    machine: &Machine,
    manifest: &Path,
    args: &[&str],
    token: Option<&str>,
) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
    let real_home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let mut cmd = machine.command(env!("CARGO_BIN_EXE_xtask"));
    cmd.arg("restore").args(["--manifest", &manifest.display().to_string(), "--json"]).args(args).current_dir(root());
    cmd.env("CARGO_HOME", std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{real_home}/.cargo")));
    cmd.env("RUSTUP_HOME", std::env::var("RUSTUP_HOME").unwrap_or_else(|_| format!("{real_home}/.rustup")));
    match token {
        Some(token) => cmd.env("DEMO_TOKEN", token),
        None => cmd.env_remove("DEMO_TOKEN"),
    };
    let out = cmd.output()?;
    let json = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("no JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })?;
    Ok((out, json))
}

fn steps(json: &serde_json::Value) -> Vec<String> {
    json["steps"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["step"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[test]
fn a_failed_restore_resumes_from_its_step_and_a_second_restore_changes_nothing() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_failed_restore_resumes_from_its_step_and_a_second_restore_changes_nothing")
    else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;

    // The secret is not exported: the services step fails and the chain stops there.
    let (out, first) = restore(&machine, &manifest, &[], None)?;
    assert!(!out.status.success());
    assert_eq!(steps(&first), ["bootstrap-prereqs", "bootstrap-pi-config", "bootstrap-services"], "{first:#}");
    assert_eq!(first["stopped_at"], "bootstrap-services");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cargo xtask restore --resume"), "{stderr}");

    // Fixed: --resume starts at the failed step, not before.
    let (out, resumed) = restore(&machine, &manifest, &["--resume"], Some("canary-demo-token-0b7e"))?;
    assert!(out.status.success(), "{resumed:#}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(steps(&resumed), ["bootstrap-services", "bootstrap-data", "bootstrap-validate"]);
    let records = machine.layout.home().join("pi-config/data/alpha/records.txt");
    assert_eq!(fs::read_to_string(records)?, "what alpha remembers\n", "the data came back from the backup");

    // A restore run twice reports zero changes the second time, in every step's JSON.
    let (out, again) = restore(&machine, &manifest, &[], Some("canary-demo-token-0b7e"))?;
    assert!(out.status.success());
    assert_eq!(steps(&again).len(), 5);
    for step in again["steps"].as_array().into_iter().flatten() {
        assert_eq!(step["report"]["summary"]["changed"], 0, "{} changed something: {step:#}", step["step"]);
        assert_eq!(step["report"]["commands"], serde_json::json!([]), "{} ran a command", step["step"]);
    }
    let all = format!("{first}{resumed}{again}");
    assert!(!all.contains("canary-demo-token") && !all.contains("canary-restore-password"), "a secret was printed");
    Ok(())
}

/// `pi-bootstrap-restore --manifest M ARGS` in the sandbox, the secret exported or not.
fn chain(machine: &Machine, manifest: &Path, args: &[&str], token: Option<&str>) -> Command {
    let mut cmd = machine.command(&built_binaries().join("pi-bootstrap-restore").display().to_string());
    cmd.args(["--manifest", &manifest.display().to_string()]).args(args);
    match token {
        Some(token) => cmd.env("DEMO_TOKEN", token),
        None => cmd.env_remove("DEMO_TOKEN"),
    };
    cmd
}

/// The chain with `--json`: its exit code and its document.
fn chain_json(
    machine: &Machine,
    manifest: &Path,
    args: &[&str],
    token: Option<&str>,
) -> Result<(Option<i32>, serde_json::Value), Box<dyn std::error::Error>> {
    let out = chain(machine, manifest, &[&["--json"], args].concat(), token).output()?;
    let json = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("no JSON ({e}): {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    })?;
    Ok((out.status.code(), json))
}

fn exit_codes(json: &serde_json::Value) -> Vec<i64> {
    json["steps"]
        .as_array()
        .map(|s| s.iter().map(|s| s["exit_code"].as_i64().unwrap_or(-1)).collect())
        .unwrap_or_default()
}

fn record(machine: &Machine) -> PathBuf {
    machine.layout.home().join(".local/state/pi-bootstrap/restore.json")
}

const TOKEN: &str = "canary-demo-token-0b7e";

const ALL: [&str; 5] =
    ["bootstrap-prereqs", "bootstrap-pi-config", "bootstrap-services", "bootstrap-data", "bootstrap-validate"];

#[test]
fn a_clean_restore_exits_0_and_leaves_no_record() -> TestResult {
    let Some(machine) = sandbox::isolated("a_clean_restore_exits_0_and_leaves_no_record") else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;
    let (code, json) = chain_json(&machine, &manifest, &[], Some(TOKEN))?;
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(steps(&json), ALL);
    assert_eq!(exit_codes(&json), [0, 0, 0, 0, 0]);
    assert_eq!(json["summary"]["ok"], 5);
    let records = machine.layout.home().join("pi-config/data/alpha/records.txt");
    assert_eq!(fs::read_to_string(records)?, "what alpha remembers\n", "the data came back from the backup");
    assert!(!record(&machine).exists());
    Ok(())
}

#[test]
fn a_failing_step_exits_1_is_recorded_and_resume_continues_from_it() -> TestResult {
    let Some(machine) = sandbox::isolated("a_failing_step_exits_1_is_recorded_and_resume_continues_from_it") else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;
    // The secret is not exported: the services step fails.
    let out = chain(&machine, &manifest, &[], None).output()?;
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("== 4-5. bootstrap-services"), "each step's output, as it came: {stdout}");
    assert!(stdout.contains("4-5.  bootstrap-services       failed"), "the recap: {stdout}");
    assert!(stdout.contains("DEMO_TOKEN"), "the step says what is missing: {stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("continue with: pi-bootstrap-restore --resume"), "{stderr}");
    let written: serde_json::Value = serde_json::from_str(&fs::read_to_string(record(&machine))?)?;
    assert_eq!(written, serde_json::json!({"stopped_at": "bootstrap-services"}));

    let (code, json) = chain_json(&machine, &manifest, &["--resume"], Some(TOKEN))?;
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(steps(&json), &ALL[2..], "from the failed step, not before");
    assert_eq!(json["items"][0]["status"], "skipped");
    assert!(!record(&machine).exists(), "the resumed restore got to its end");
    Ok(())
}

#[test]
fn check_with_changes_due_exits_1_and_changes_nothing() -> TestResult {
    let Some(machine) = sandbox::isolated("check_with_changes_due_exits_1_and_changes_nothing") else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;
    let (code, json) = chain_json(&machine, &manifest, &["--check"], Some(TOKEN))?;
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(steps(&json), ALL, "would change: every step still says what it would do");
    assert_eq!(json["steps"][1]["report"]["summary"]["would_change"].as_u64().map(|n| n > 0), Some(true));
    let home = machine.layout.home();
    assert!(!home.join("pi-config").exists() && !home.join(".pi").exists(), "--check changed the host");
    assert!(!home.join(".local/state/pi-bootstrap/lock").exists(), "--check takes no lock");
    assert!(!record(&machine).exists());
    Ok(())
}

#[test]
fn check_in_sync_exits_0() -> TestResult {
    let Some(machine) = sandbox::isolated("check_in_sync_exits_0") else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;
    assert_eq!(chain_json(&machine, &manifest, &[], Some(TOKEN))?.0, Some(0));
    let (code, json) = chain_json(&machine, &manifest, &["--check"], Some(TOKEN))?;
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(exit_codes(&json), [0, 0, 0, 0, 0]);
    assert_eq!(json["check"], true);
    Ok(())
}

#[test]
fn a_bad_manifest_exits_2_and_writes_no_record() -> TestResult {
    let Some(machine) = sandbox::isolated("a_bad_manifest_exits_2_and_writes_no_record") else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;
    fs::write(&manifest, format!("{}bogus: 1\n", fs::read_to_string(&manifest)?))?;
    let out = chain(&machine, &manifest, &[], Some(TOKEN)).output()?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pi-bootstrap.yaml:") && stderr.contains("bogus: unknown key `bogus`"), "{stderr}");
    assert!(out.stdout.is_empty(), "no step ran: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!machine.layout.home().join("pi-config").exists());
    assert!(!record(&machine).exists(), "no resume record after exit 2");
    Ok(())
}

#[test]
fn a_step_started_by_hand_meanwhile_finds_the_lock_held_while_the_chains_steps_run() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_step_started_by_hand_meanwhile_finds_the_lock_held_while_the_chains_steps_run")
    else {
        return Ok(());
    };
    let manifest = prepare(&machine)?;
    let home = machine.layout.home();
    // The prerequisite's check waits while `pause` exists: the chain is then inside
    // its first step, holding the lock.
    fs::write(home.join("pause"), "")?;
    let mut running =
        chain(&machine, &manifest, &["--json"], Some(TOKEN)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let pid = running.id();
    let started = Instant::now();
    while !home.join("paused").exists() {
        if running.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(60) {
            let out = running.wait_with_output()?;
            return Err(
                format!("the chain did not reach its first step: {}", String::from_utf8_lossy(&out.stderr)).into()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let lock = home.join(".local/state/pi-bootstrap/lock");
    let by_hand = |forged: Option<String>| -> Result<Output, Box<dyn std::error::Error>> {
        let mut cmd = machine.command(&built_binaries().join("bootstrap-pi-config").display().to_string());
        cmd.args(["--manifest", &manifest.display().to_string()]);
        if let Some(value) = forged {
            cmd.env("PI_BOOTSTRAP_LOCK_HANDOVER", value);
        }
        Ok(cmd.output()?)
    };
    let held = format!("another pi-bootstrap run holds the lock {} (pid {pid},", lock.display());
    for forged in [None, Some(format!("{pid}:{}", lock.display()))] {
        let out = by_hand(forged.clone())?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{forged:?}: {stderr}");
        assert!(stderr.contains(&held), "{forged:?}: {stderr}");
    }
    assert!(!home.join("pi-config").exists(), "the step started by hand changed nothing");

    fs::remove_file(home.join("pause"))?;
    let out = running.wait_with_output()?;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(out.status.code(), Some(0), "{json:#}");
    assert_eq!(exit_codes(&json), [0, 0, 0, 0, 0], "the chain's own steps ran under its lock");
    assert!(home.join("pi-config/data/alpha/records.txt").exists());
    Ok(())
}
