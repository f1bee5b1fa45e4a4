//! `cargo xtask restore` on a small host in a sandbox with a real `systemd --user` and
//! a real restic repository: a failing step stops the chain and `--resume` continues
//! from it; a second restore reports zero changes in the JSON of every step.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::sandbox::{self, Machine};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result<Output, Box<dyn std::error::Error>> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into())
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    run(Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir))?;
    Ok(())
}

/// The old host's pi-config remote, its backup, and the manifest.
fn prepare(machine: &Machine) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let layout = &machine.layout;
    let origin = layout.root.join("origin");
    fs::create_dir_all(origin.join("pi"))?;
    fs::create_dir_all(origin.join("services/alpha"))?;
    fs::create_dir_all(origin.join("systemd"))?;
    fs::write(origin.join("pi/settings.json"), "{}\n")?;
    fs::write(origin.join("services/alpha/index.html"), "alpha\n")?;
    fs::write(origin.join(".gitignore"), "data/\n")?;
    fs::write(
        origin.join("systemd/alpha.service"),
        "[Service]\nEnvironmentFile=%h/.config/demo/demo.env\nExecStart=/usr/bin/python3 -m http.server 7401 --bind 127.0.0.1 --directory %h/pi-config/services/alpha\n[Install]\nWantedBy=default.target\n",
    )?;
    git(&origin, &["init", "--quiet"])?;
    git(&origin, &["add", "--all"])?;
    git(&origin, &["commit", "--quiet", "-m", "pi-config"])?;

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
    check: [sh, -c, 'echo sh 5.2']
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
