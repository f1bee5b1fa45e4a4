//! A real machine loss, end to end, with a real `systemd --user` and a real restic
//! repository in a sandbox: an old host is made and backed up, thrown away whole
//! (HOME's content, the state folder, the units), a brand-new HOME is set up, and the
//! documented order runs: the services step, then `bootstrap-data restore`. Each early
//! writer of a fresh host is covered: a service that creates its database at start, an
//! undeclared writer of salts, a managed block in a backed-up `~/.bashrc`, a skeleton
//! file, genuinely newer data that was there before pi-bootstrap ran (and a snapshot
//! asked for over it), an env file only the backup holds; the backup that refuses to
//! make a fresh state the newest snapshot, and the snapshots that hold a path. A second
//! run of both steps changes nothing, and the restic password shows nowhere.

#![allow(clippy::disallowed_methods, clippy::print_stderr)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::engine::{Ctx, RunOptions};
use common::sandbox::{self, Machine};
use serde_json::Value;
use support::{differences, files};
use test_support::json::{commands, detail, item};
use test_support::sandbox::systemctl;
use test_support::{Error, TestResult, tree};

/// The restic password of every test here: it must never show in any output.
const CANARY: &str = "canary-fresh-host-pw-Zq81Lx";

/// The host name every snapshot is tagged with.
const HOST: &str = "fresh-host-test";

/// The password file, relative to HOME.
const PASSWORD_FILE: &str = ".config/pi-bootstrap/restic-password";

/// The state folder, relative to HOME.
const STATE: &str = ".local/state/pi-bootstrap";

/// The skeleton a fresh account's HOME is copied from: `SKEL=` of
/// `/etc/default/useradd`, else `/etc/skel`, as the product reads it.
fn skel() -> PathBuf {
    common::durable::provenance::skeleton_folder()
}

/// What a run of the built `bootstrap-data` left.
struct Run {
    code: Option<i32>,
    json: Value,
    text: String,
}

/// One sandboxed machine with its manifest (outside HOME: it survives the loss, as a
/// clone of the pi-config repo would be made again).
struct Host {
    machine: Machine,
    manifest: PathBuf,
}

impl Host {
    /// A host whose manifest declares `body` (services, paths, shell) and the sandbox's
    /// restic repository, with HOME holding the password file and the repo files.
    fn new(machine: Machine, body: &str, repo_files: &[(String, String)]) -> Result<Host, Error> {
        let manifest = machine.layout.root.join("pi-bootstrap.yaml");
        let text = format!(
            "version: 1
host: {HOST}
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
{body}backup:
  repository: {}
  password_file: ~/{PASSWORD_FILE}
  max_age: 26h
",
            machine.layout.backup_repo().display()
        );
        fs::write(&manifest, text)?;
        let host = Host { machine, manifest };
        host.set_up_home(repo_files)?;
        Ok(host)
    }

    fn home(&self) -> PathBuf {
        self.machine.layout.home()
    }

    fn runtime(&self, name: &str) -> PathBuf {
        self.machine.runtime_dir.join(name)
    }

    /// What the user brings to any HOME: the password (from where it is kept outside
    /// the host), and the pi-config repo (cloned: its files as committed).
    fn set_up_home(&self, repo_files: &[(String, String)]) -> TestResult {
        let password = self.home().join(PASSWORD_FILE);
        fs::create_dir_all(password.parent().ok_or("no parent")?)?;
        fs::write(&password, format!("{CANARY}\n"))?;
        fs::set_permissions(&password, fs::Permissions::from_mode(0o600))?;
        self.write_repo(repo_files)
    }

    fn write_repo(&self, repo_files: &[(String, String)]) -> TestResult {
        let repo = self.home().join("pi-config");
        for (rel, text) in repo_files {
            let path = repo.join(rel);
            fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            fs::write(&path, text)?;
        }
        Ok(())
    }

    /// The services step, in-process through the library, with the run lock held.
    fn services_step(&self) -> Result<Value, Error> {
        let manifest = common::manifest::load(&self.manifest)?;
        let ctx = Ctx::new(&common::state::home_from_env()?);
        assert_eq!(ctx.home, self.home(), "the test does not run as the sandbox's user");
        let _lock = ctx.state.lock()?;
        // As the binary does before it runs the step (`common::step::main`).
        common::durable::note_first_sight(&manifest, &ctx.state, &ctx.home)?;
        let report = bootstrap_services::run(&manifest, &ctx, &RunOptions { check: false, ..RunOptions::default() })?;
        let json = serde_json::to_value(&report)?;
        assert!(!json.to_string().contains(CANARY), "the password showed in the services report: {json}");
        assert_eq!(json["summary"]["failed"], 0, "the services step failed: {json:#}");
        Ok(json)
    }

    /// The built `bootstrap-data` with `--json`, in the sandbox's environment.
    fn data(&self, args: &[&str]) -> Result<Run, Error> {
        let out = self
            .machine
            .command(env!("CARGO_BIN_EXE_bootstrap-data"))
            .args(args)
            .arg("--json")
            .arg("--manifest")
            .arg(&self.manifest)
            .output()?;
        let text = test_support::process::text(&out);
        assert!(!text.contains(CANARY), "the password showed in the output of bootstrap-data {args:?}:\n{text}");
        let json = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("bootstrap-data {args:?} printed no JSON report ({e}):\n{text}"))?;
        Ok(Run { code: out.status.code(), json, text })
    }

    /// The built `bootstrap-data`, which must exit 0.
    fn data_ok(&self, args: &[&str]) -> Result<Value, Error> {
        let run = self.data(args)?;
        assert_eq!(run.code, Some(0), "bootstrap-data {args:?} did not exit 0:\n{}", run.text);
        Ok(run.json)
    }

    fn systemctl(&self, args: &[&str]) -> Result<String, Error> {
        systemctl(&self.machine, args)
    }

    /// `is-active` and `is-enabled` of a unit.
    fn unit_state(&self, unit: &str) -> Result<(String, String), Error> {
        Ok((self.systemctl(&["is-active", unit])?, self.systemctl(&["is-enabled", unit])?))
    }

    /// restic itself, on the sandbox's repository (no cache, nothing written to HOME).
    fn restic(&self, args: &[&str]) -> Result<String, Error> {
        let out = self
            .machine
            .command("restic")
            .args(args)
            .args(["--no-cache", "--no-lock"])
            .env("RESTIC_REPOSITORY", self.machine.layout.backup_repo())
            .env("RESTIC_PASSWORD_FILE", self.home().join(PASSWORD_FILE))
            .output()?;
        let text = test_support::process::text(&out);
        assert!(!text.contains(CANARY), "the password showed in restic's output: {text}");
        if !out.status.success() {
            return Err(format!("restic {args:?}: {text}").into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The short ids of the repository's snapshots, oldest first.
    fn snapshot_ids(&self) -> Result<Vec<String>, Error> {
        let listed: Value = serde_json::from_str(&self.restic(&["snapshots", "--json"])?)?;
        let mut snapshots: Vec<(String, String)> = listed
            .as_array()
            .ok_or("restic snapshots printed no list")?
            .iter()
            .map(|s| {
                (
                    s["time"].as_str().unwrap_or_default().to_owned(),
                    s["short_id"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        snapshots.sort();
        Ok(snapshots.into_iter().map(|(_, id)| id).collect())
    }

    /// The ledger the steps keep in the state folder.
    fn ledger(&self) -> Result<Value, Error> {
        Ok(serde_json::from_slice(&fs::read(self.home().join(STATE).join("durable.json"))?)?)
    }

    /// The machine is lost: every unit stopped and forgotten by the manager, HOME's
    /// whole content gone (the state folder and the installed units with it).
    fn lose_the_machine(&self, units: &[&str]) -> TestResult {
        if !units.is_empty() {
            let mut stop = vec!["stop"];
            stop.extend(units);
            self.systemctl(&stop)?;
        }
        let home = self.home();
        for entry in fs::read_dir(&home)? {
            let path = entry?.path();
            if fs::symlink_metadata(&path)?.is_dir() { fs::remove_dir_all(&path)? } else { fs::remove_file(&path)? }
        }
        self.systemctl(&["daemon-reload"])?;
        self.systemctl(&["reset-failed"])?;
        assert_eq!(fs::read_dir(&home)?.count(), 0, "HOME is not empty after the loss");
        for unit in units {
            let (active, enabled) = self.unit_state(unit)?;
            assert_eq!(active, "inactive", "{unit} survived the loss");
            assert_ne!(enabled, "enabled", "{unit} is still enabled after the loss");
        }
        for name in fs::read_dir(&self.machine.runtime_dir)? {
            let path = name?.path();
            if path.extension().is_some_and(|e| e == "seen") {
                fs::remove_file(path)?;
            }
        }
        Ok(())
    }

    /// The brand-new HOME: the skeleton a fresh account gets (when `skeleton`), then
    /// what the user brings (the password, the cloned repo).
    fn new_home(&self, skeleton: bool, repo_files: &[(String, String)]) -> TestResult {
        if skeleton && skel().is_dir() {
            tree::copy(&skel(), &self.home())?;
        }
        self.set_up_home(repo_files)
    }

    /// Every file in the state folder: the password must be in none.
    fn assert_no_canary_in_state(&self) -> TestResult {
        for (path, bytes) in files(&self.home().join(STATE))? {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(CANARY),
                "the password is in the state file {}",
                path.display()
            );
        }
        Ok(())
    }

    /// A second run of both steps: zero changes, no command.
    fn assert_second_runs_change_nothing(&self) -> TestResult {
        let services = self.services_step()?;
        assert_no_changes(&services, "the second bootstrap-services")?;
        let restore = self.data_ok(&["restore"])?;
        assert_no_changes(&restore, "the second bootstrap-data restore")?;
        self.assert_no_canary_in_state()
    }
}

fn assert_no_changes(report: &Value, what: &str) -> TestResult {
    assert_eq!(report["summary"]["changed"], 0, "{what} changed something: {report:#}");
    assert_eq!(report["summary"]["failed"], 0, "{what} failed: {report:#}");
    assert_eq!(report["commands"], serde_json::json!([]), "{what} ran commands: {report:#}");
    Ok(())
}

fn status(report: &Value, id: &str) -> String {
    item(report, id)["status"].as_str().unwrap_or("(no such item)").to_owned()
}

/// Where a restore's report kept what was at `path` (under the state folder's `kept/RUN/`).
fn kept_copy(report: &Value, path: &Path) -> Result<PathBuf, Error> {
    let root = report["kept"].as_str().ok_or_else(|| format!("the report names no kept folder: {report:#}"))?;
    let home = common::state::home_from_env()?;
    assert!(Path::new(root).starts_with(home.join(STATE).join("kept")), "kept outside the state folder: {root}");
    Ok(Path::new(root).join(path.strip_prefix("/")?))
}

/// Waits until `path` holds exactly `expected` (a service writes it at its start).
fn wait_for_content(path: &Path, expected: &[u8]) -> TestResult {
    let started = Instant::now();
    loop {
        let now = fs::read(path).ok();
        if now.as_deref() == Some(expected) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(format!(
                "{} holds {:?} after 15s, want {:?}",
                path.display(),
                now.map(|b| String::from_utf8_lossy(&b).into_owned()),
                String::from_utf8_lossy(expected)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` exists and returns what it holds.
fn wait_for_file(path: &Path) -> Result<Vec<u8>, Error> {
    let started = Instant::now();
    loop {
        if let Ok(bytes) = fs::read(path)
            && !bytes.is_empty()
        {
            return Ok(bytes);
        }
        if started.elapsed() > Duration::from_secs(15) {
            return Err(format!("{} was not written within 15s", path.display()).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A small service that keeps one file in `dir`: when the file is missing at its start
/// it makes a fresh one (`fresh` is the shell command that prints its content); either
/// way it copies what it found into `%t/NAME.seen` (what it read at start), then runs.
fn keeper_unit(name: &str, dir: &str, file: &str, fresh: &str) -> String {
    format!(
        "[Unit]
Description={name}, which makes its {file} when it finds none
[Service]
Type=simple
ExecStart=/bin/sh -c 'mkdir -p %h/{dir} && {{ test -e %h/{dir}/{file} || {fresh} > %h/{dir}/{file}; }} && cp %h/{dir}/{file} %t/{name}.seen && exec sleep infinity'
[Install]
WantedBy=default.target
"
    )
}

/// The repo files of one service: its unit and its code folder.
fn service_files(name: &str, unit: String) -> Vec<(String, String)> {
    vec![
        (format!("systemd/{name}.service"), unit),
        (format!("services/{name}/README"), format!("{name}: the service's code\n")),
    ]
}

fn write_file(path: &Path, bytes: &[u8]) -> TestResult {
    fs::create_dir_all(path.parent().ok_or("no parent")?)?;
    fs::write(path, bytes)?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// 1. A declared owner (its data path) that creates its database at start.

const NOTES_DB: &str = ".local/share/notes-db";
const OLD_DB: &[u8] = b"SQLite format 3\0the old host's memories\n";

fn notes_db_manifest() -> &'static str {
    "services:
  - name: notes-db
    purpose: the memory database, made empty at start when missing
    source: services/notes-db
    unit: systemd/notes-db.service
    data_path: ~/.local/share/notes-db
    backup: backup
"
}

fn notes_db_files() -> Vec<(String, String)> {
    service_files("notes-db", keeper_unit("notes-db", NOTES_DB, "notes.db", "echo fresh-empty-database"))
}

/// The old host: its database in use by the running service, backed up.
fn old_host_with_notes_db(host: &Host) -> TestResult {
    let db = host.home().join(NOTES_DB).join("notes.db");
    write_file(&db, OLD_DB)?;
    let services = host.services_step()?;
    assert_eq!(status(&services, "service:notes-db"), "changed", "{services:#}");
    wait_for_content(&host.runtime("notes-db.seen"), OLD_DB)?;
    let backup = host.data_ok(&["backup"])?;
    assert_eq!(status(&backup, "data:service:notes-db"), "changed", "{backup:#}");
    Ok(())
}

#[test]
fn a_service_that_makes_its_database_at_start_waits_for_it_and_starts_once_it_is_back() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_service_that_makes_its_database_at_start_waits_for_it_and_starts_once_it_is_back")
    else {
        return Ok(());
    };
    let host = Host::new(machine, notes_db_manifest(), &notes_db_files())?;
    old_host_with_notes_db(&host)?;

    host.lose_the_machine(&["notes-db.service"])?;
    host.new_home(true, &notes_db_files())?;
    let db = host.home().join(NOTES_DB).join("notes.db");

    // Step 4-5: installed, but neither enabled nor started: a first start would make a
    // fresh, empty database.
    let services = host.services_step()?;
    let waiting = item(&services, "service:notes-db");
    assert_eq!(waiting["status"], "skipped", "{services:#}");
    assert!(waiting["detail"].as_str().unwrap_or_default().starts_with("waits for its data"), "{services:#}");
    assert_eq!(status(&services, "unit:notes-db.service"), "changed", "the unit is installed: {services:#}");
    assert!(host.home().join(".config/systemd/user/notes-db.service").is_file());
    assert_eq!(host.unit_state("notes-db.service")?, ("inactive".to_owned(), "disabled".to_owned()));
    assert!(!db.exists() && !host.home().join(NOTES_DB).exists(), "the service made a fresh database");
    assert!(!host.runtime("notes-db.seen").exists(), "the service ran");
    let ledger = host.ledger()?;
    assert_eq!(ledger["waiting"]["notes-db"], serde_json::json!([host.home().join(NOTES_DB)]), "{ledger:#}");
    // What the audit and `--check` see meanwhile: a service waiting, data not restored.
    let manifest = common::manifest::load(&host.manifest)?;
    let ctx = Ctx::new(&host.home());
    let check = bootstrap_services::run(&manifest, &ctx, &RunOptions { check: true, ..RunOptions::default() })?;
    let check = serde_json::to_value(&check)?;
    assert_eq!(item(&check, "service:notes-db")["status"], "skipped", "{check:#}");
    assert!(detail(&check, "service:notes-db").starts_with("would wait for its data"), "{check:#}");
    let freshness = bootstrap_data::status_report(&manifest, &host.home(), std::time::SystemTime::now(), false);
    let freshness = serde_json::to_value(&freshness)?;
    assert_eq!(item(&freshness, "data:service:notes-db")["status"], "drift", "{freshness:#}");
    assert!(detail(&freshness, "data:service:notes-db").starts_with("waits for its restore"), "{freshness:#}");

    // Step 6: the database comes back, then the service starts.
    let restore = host.data_ok(&["restore"])?;
    assert_eq!(status(&restore, "data:service:notes-db"), "changed", "{restore:#}");
    assert!(detail(&restore, "data:service:notes-db").contains("restored from snapshot"), "{restore:#}");
    let started = item(&restore, "service:notes-db");
    assert_eq!(started["status"], "changed", "{restore:#}");
    assert!(
        started["detail"].as_str().unwrap_or_default().starts_with("enabled and started notes-db.service")
            && started["detail"].as_str().unwrap_or_default().contains("its data is back"),
        "{restore:#}"
    );
    assert_eq!(fs::read(&db)?, OLD_DB, "the old database is not back byte for byte");
    wait_for_content(&host.runtime("notes-db.seen"), OLD_DB)?;
    assert_eq!(fs::read(&db)?, OLD_DB, "the service wrote over its database at start");
    assert_eq!(host.unit_state("notes-db.service")?, ("active".to_owned(), "enabled".to_owned()));
    let ledger = host.ledger()?;
    assert_eq!(ledger["waiting"], serde_json::json!({}), "the service still waits: {ledger:#}");
    assert_eq!(ledger["settled"][host.home().join(NOTES_DB).display().to_string()]["how"], "restored", "{ledger:#}");

    host.assert_second_runs_change_nothing()?;
    assert_eq!(host.unit_state("notes-db.service")?, ("active".to_owned(), "enabled".to_owned()));
    Ok(())
}

// ---------------------------------------------------------------------------------
// 2. An undeclared writer: salts written at start into a `backup` path that does not
// name it in `owners`.

const SALTS_DIR: &str = ".config/salty";
const OLD_SALTS: &[u8] = b"old-salts-7a1f3c9e0b2d\n";

fn salty_manifest() -> &'static str {
    "services:
  - name: salty
    purpose: signs sessions with salts it makes at first start
    source: services/salty
    unit: systemd/salty.service
paths:
  - {name: salts, path: ~/.config/salty, role: the salts sessions are signed with, backup: backup}
"
}

fn salty_files() -> Vec<(String, String)> {
    service_files("salty", keeper_unit("salty", SALTS_DIR, "salts", "cat /proc/sys/kernel/random/uuid"))
}

#[test]
fn an_undeclared_writer_s_fresh_salts_are_kept_aside_and_the_old_ones_come_back() -> TestResult {
    let Some(machine) =
        sandbox::isolated("an_undeclared_writer_s_fresh_salts_are_kept_aside_and_the_old_ones_come_back")
    else {
        return Ok(());
    };
    let host = Host::new(machine, salty_manifest(), &salty_files())?;
    let salts = host.home().join(SALTS_DIR).join("salts");
    write_file(&salts, OLD_SALTS)?;
    let old = host.services_step()?;
    assert_eq!(status(&old, "service:salty"), "changed", "{old:#}");
    wait_for_content(&host.runtime("salty.seen"), OLD_SALTS)?;
    let backup = host.data_ok(&["backup"])?;
    assert_eq!(status(&backup, "data:path:salts"), "changed", "{backup:#}");

    host.lose_the_machine(&["salty.service"])?;
    host.new_home(true, &salty_files())?;

    // Nothing says it writes there: it starts, and makes fresh salts.
    let services = host.services_step()?;
    assert_eq!(status(&services, "service:salty"), "changed", "{services:#}");
    let fresh = wait_for_file(&host.runtime("salty.seen"))?;
    assert_ne!(fresh, OLD_SALTS);
    assert_eq!(fs::read(&salts)?, fresh, "the service read other salts than it wrote");
    assert_eq!(host.unit_state("salty.service")?, ("active".to_owned(), "enabled".to_owned()));

    let restore = host.data_ok(&["restore"])?;
    let restored = detail(&restore, "data:path:salts");
    assert_eq!(status(&restore, "data:path:salts"), "changed", "{restore:#}");
    assert!(
        restored.starts_with("held only what was written on this host since pi-bootstrap first ran here"),
        "{restore:#}"
    );
    assert!(restored.contains("salty.service stopped meanwhile too"), "{restore:#}");
    assert!(restored.contains("`owners`"), "the detail does not say how to declare the writer: {restored}");
    assert_eq!(fs::read(&salts)?, OLD_SALTS, "the old salts are not back byte for byte");
    let kept = kept_copy(&restore, &host.home().join(SALTS_DIR))?;
    assert_eq!(fs::read(kept.join("salts"))?, fresh, "the fresh salts were not kept aside at {}", kept.display());

    // Stopped before the restore, started after it: it read the old salts at start.
    let ran = commands(&restore);
    let at = |needle: &str| ran.iter().position(|c| c.starts_with(needle));
    let (stop, restic, start) =
        (at("systemctl --user stop salty.service"), at("restic restore"), at("systemctl --user start salty.service"));
    assert!(
        stop.is_some() && restic.is_some() && start.is_some() && stop < restic && restic < start,
        "not stopped around the restore: {ran:#?}"
    );
    wait_for_content(&host.runtime("salty.seen"), OLD_SALTS)?;
    assert_eq!(host.unit_state("salty.service")?, ("active".to_owned(), "enabled".to_owned()));

    host.assert_second_runs_change_nothing()?;
    assert_eq!(fs::read(&salts)?, OLD_SALTS);
    Ok(())
}

// ---------------------------------------------------------------------------------
// 3. A managed block in a backed-up `~/.bashrc`.

const USER_LINES: &str =
    "# my own settings, written by hand over the years\nexport EDITOR=vim\nalias gs='git status'\n";
const BLOCK_V1: &str = "alias pi-logs='journalctl --user -f'\n";
const BLOCK_V2: &str = "alias pi-logs='journalctl --user -f -n 100'\nexport PI_HOME=~/pi-config\n";

fn bashrc_manifest() -> &'static str {
    "paths:
  - {name: bashrc, path: ~/.bashrc, role: the user's shell settings, backup: backup}
shell:
  - name: pi-aliases
    file: ~/.bashrc
    source: shell/pi-aliases.sh
"
}

fn block_files(block: &str) -> Vec<(String, String)> {
    vec![("shell/pi-aliases.sh".to_owned(), block.to_owned())]
}

fn block_text(lines: &str) -> String {
    format!("# >>> pi-bootstrap: pi-aliases >>>\n{lines}# <<< pi-bootstrap: pi-aliases <<<\n")
}

/// The old host's `~/.bashrc` (the user's lines, the block v1 on top) is backed up; the
/// new host starts from a skeleton copy and gets `new_block` from the services step.
fn managed_block_case(host: &Host, new_block: &str) -> TestResult {
    let bashrc = host.home().join(".bashrc");
    fs::write(&bashrc, USER_LINES)?;
    let old = host.services_step()?;
    assert_eq!(status(&old, "shell:pi-aliases"), "changed", "{old:#}");
    let old_content = fs::read_to_string(&bashrc)?;
    assert!(
        old_content.starts_with(USER_LINES) && old_content.contains(&block_text(BLOCK_V1)),
        "the old host's ~/.bashrc: {old_content:?}"
    );
    host.data_ok(&["backup"])?;

    host.lose_the_machine(&[])?;
    host.new_home(true, &block_files(new_block))?;
    let skeleton = fs::read(skel().join(".bashrc")).ok();
    assert_eq!(fs::read(&bashrc).ok(), skeleton, "the new HOME's ~/.bashrc is not the skeleton's");

    let services = host.services_step()?;
    assert_eq!(status(&services, "shell:pi-aliases"), "changed", "{services:#}");
    let fresh = fs::read_to_string(&bashrc)?;
    assert!(fresh.contains(&block_text(new_block)) && !fresh.contains(USER_LINES), "{fresh:?}");

    let restore = host.data_ok(&["restore"])?;
    let restored = detail(&restore, "data:path:bashrc");
    assert_eq!(status(&restore, "data:path:bashrc"), "changed", "{restore:#}");
    assert!(restored.starts_with("held only what a fresh host gets ("), "{restore:#}");
    assert!(restored.contains("its managed block pi-aliases applied on top"), "{restore:#}");
    let expected = old_content.replace(&block_text(BLOCK_V1), &block_text(new_block));
    assert_eq!(fs::read_to_string(&bashrc)?, expected, "~/.bashrc is not the old one with the block on top");
    assert_eq!(fs::read_to_string(kept_copy(&restore, &bashrc)?)?, fresh, "the fresh ~/.bashrc was not kept aside");

    host.assert_second_runs_change_nothing()?;
    assert_eq!(fs::read_to_string(&bashrc)?, expected);
    Ok(())
}

#[test]
fn a_managed_block_in_a_backed_up_bashrc_comes_back_on_top_of_the_user_s_lines() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_managed_block_in_a_backed_up_bashrc_comes_back_on_top_of_the_user_s_lines")
    else {
        return Ok(());
    };
    let host = Host::new(machine, bashrc_manifest(), &block_files(BLOCK_V1))?;
    managed_block_case(&host, BLOCK_V1)
}

#[test]
fn a_block_changed_in_the_repo_since_the_backup_is_applied_new_on_the_restored_bashrc() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_block_changed_in_the_repo_since_the_backup_is_applied_new_on_the_restored_bashrc")
    else {
        return Ok(());
    };
    let host = Host::new(machine, bashrc_manifest(), &block_files(BLOCK_V1))?;
    managed_block_case(&host, BLOCK_V2)
}

#[test]
fn a_snapshot_asked_for_over_a_newer_bashrc_keeps_the_newer_one_though_its_block_changed() -> TestResult {
    let Some(machine) =
        sandbox::isolated("a_snapshot_asked_for_over_a_newer_bashrc_keeps_the_newer_one_though_its_block_changed")
    else {
        return Ok(());
    };
    let host = Host::new(machine, bashrc_manifest(), &block_files(BLOCK_V1))?;
    let bashrc = host.home().join(".bashrc");
    fs::write(&bashrc, USER_LINES)?;
    host.services_step()?;
    let old_content = fs::read_to_string(&bashrc)?;
    host.data_ok(&["backup"])?;
    let [snapshot] = host.snapshot_ids()?.try_into().map_err(|ids| format!("not one snapshot: {ids:?}"))?;

    host.lose_the_machine(&[])?;
    host.new_home(true, &block_files(BLOCK_V2))?;
    // The user's newer ~/.bashrc, there before pi-bootstrap ran; the block changed too.
    let newer_lines = format!("{USER_LINES}export LANG=C.UTF-8\n");
    fs::write(&bashrc, &newer_lines)?;
    host.services_step()?;
    let newer = fs::read_to_string(&bashrc)?;
    assert_eq!(newer, format!("{newer_lines}\n{}", block_text(BLOCK_V2)), "the block was not added to the newer file");

    let restore = host.data_ok(&["restore"])?;
    assert_eq!(status(&restore, "data:path:bashrc"), "ok", "{restore:#}");
    assert_eq!(fs::read_to_string(&bashrc)?, newer, "the newer ~/.bashrc was touched");

    let asked = host.data_ok(&["restore", "--snapshot", &snapshot])?;
    assert_eq!(status(&asked, "data:path:bashrc"), "changed", "{asked:#}");
    let expected = old_content.replace(&block_text(BLOCK_V1), &block_text(BLOCK_V2));
    assert_eq!(fs::read_to_string(&bashrc)?, expected, "not the snapshot's ~/.bashrc with the new block on top");
    // What was here is kept aside, not overwritten by the snapshot's copy when the new
    // block went on top.
    assert_eq!(
        fs::read_to_string(kept_copy(&asked, &bashrc)?)?,
        newer,
        "the newer ~/.bashrc was not kept aside: it is lost"
    );

    host.assert_second_runs_change_nothing()?;
    assert_eq!(fs::read_to_string(&bashrc)?, expected);
    Ok(())
}

// ---------------------------------------------------------------------------------
// 4. A fresh account's skeleton file.

#[test]
fn a_fresh_account_s_skeleton_bashrc_is_replaced_by_the_backup_s() -> TestResult {
    let skeleton = skel().join(".bashrc");
    if !skeleton.is_file() {
        eprintln!("SKIPPED: {} is not on this machine: no skeleton file to test with", skeleton.display());
        return Ok(());
    }
    let Some(machine) = sandbox::isolated("a_fresh_account_s_skeleton_bashrc_is_replaced_by_the_backup_s") else {
        return Ok(());
    };
    let manifest = "paths:\n  - {name: bashrc, path: ~/.bashrc, role: the user's shell settings, backup: backup}\n";
    let host = Host::new(machine, manifest, &[])?;
    let bashrc = host.home().join(".bashrc");
    let skel_bytes = fs::read(&skeleton)?;
    let old = [skel_bytes.as_slice(), b"\n# added on the old host\nexport HISTSIZE=100000\n"].concat();
    fs::write(&bashrc, &old)?;
    host.services_step()?;
    host.data_ok(&["backup"])?;

    host.lose_the_machine(&[])?;
    host.new_home(true, &[])?;
    assert_eq!(fs::read(&bashrc)?, skel_bytes, "the new HOME's ~/.bashrc is not a skeleton copy");
    let profile_before = fs::read(host.home().join(".profile")).ok();
    host.services_step()?;

    let restore = host.data_ok(&["restore"])?;
    let restored = detail(&restore, "data:path:bashrc");
    assert_eq!(status(&restore, "data:path:bashrc"), "changed", "{restore:#}");
    assert!(
        restored.starts_with(
            "held only what a fresh host gets (the skeleton files of a new account): restored from snapshot"
        ),
        "the detail does not say it held only a skeleton copy: {restored}"
    );
    assert_eq!(fs::read(&bashrc)?, old, "the old ~/.bashrc is not back byte for byte");
    assert_eq!(fs::read(kept_copy(&restore, &bashrc)?)?, skel_bytes, "the skeleton copy was not kept aside");
    assert_eq!(fs::read(host.home().join(".profile")).ok(), profile_before, "another skeleton file was touched");

    host.assert_second_runs_change_nothing()
}

// ---------------------------------------------------------------------------------
// 5. Genuinely newer data, there before pi-bootstrap first ran on the new host.

const NOTES_MANIFEST: &str = "paths:\n  - {name: notes, path: ~/notes, role: the user's notes, backup: backup}\n";

#[test]
fn newer_data_that_was_here_first_is_left_alone_until_a_snapshot_is_asked_for() -> TestResult {
    let Some(machine) = sandbox::isolated("newer_data_that_was_here_first_is_left_alone_until_a_snapshot_is_asked_for")
    else {
        return Ok(());
    };
    let host = Host::new(machine, NOTES_MANIFEST, &[])?;
    let todo = host.home().join("notes/todo.md");
    let old = b"- the old host's notes\n".as_slice();
    write_file(&todo, old)?;
    host.services_step()?;
    host.data_ok(&["backup"])?;
    let [snapshot] = host.snapshot_ids()?.try_into().map_err(|ids| format!("not one snapshot: {ids:?}"))?;

    host.lose_the_machine(&[])?;
    host.new_home(true, &[])?;
    // The user copies newer notes in before running anything of pi-bootstrap.
    let newer = b"- the old notes\n- and what I wrote on the new machine since\n".as_slice();
    write_file(&todo, newer)?;
    host.services_step()?;
    let ledger = host.ledger()?;
    let first = &ledger["first_seen"][host.home().join("notes").display().to_string()];
    assert_eq!(first["fresh"], false, "the first sight did not see data: {ledger:#}");

    let restore = host.data_ok(&["restore"])?;
    let left = detail(&restore, "data:path:notes");
    assert_eq!(status(&restore, "data:path:notes"), "ok", "{restore:#}");
    assert!(left.contains("holds data that was here before pi-bootstrap first ran"), "{left}");
    assert!(left.contains(&format!("newer than snapshot {snapshot}")), "{left}");
    assert!(left.contains("left alone") && left.contains(&format!("restore --snapshot {snapshot}")), "{left}");
    assert_eq!(fs::read(&todo)?, newer, "the newer notes were touched");
    assert!(!commands(&restore).iter().any(|c| c.contains("restic restore")), "{restore:#}");

    // The ids the user would pick from.
    let listed = host.data_ok(&["snapshots"])?;
    assert!(detail(&listed, "data:path:notes").starts_with(&format!("1 snapshot: {snapshot}")), "{listed:#}");

    let asked = host.data_ok(&["restore", "--snapshot", &snapshot])?;
    assert_eq!(status(&asked, "data:path:notes"), "changed", "{asked:#}");
    assert!(detail(&asked, "data:path:notes").contains(&format!("restored from snapshot {snapshot}")), "{asked:#}");
    assert_eq!(fs::read(&todo)?, old, "the snapshot's notes are not back byte for byte");
    let kept = kept_copy(&asked, &host.home().join("notes"))?;
    assert_eq!(fs::read(kept.join("todo.md"))?, newer, "the newer notes were not kept aside at {}", kept.display());

    host.assert_second_runs_change_nothing()?;
    assert_eq!(fs::read(&todo)?, old);
    Ok(())
}

// ---------------------------------------------------------------------------------
// 6. The backup refuses to make a fresh host's state the newest snapshot.

#[test]
fn a_backup_before_the_restore_is_refused_until_forced() -> TestResult {
    let Some(machine) = sandbox::isolated("a_backup_before_the_restore_is_refused_until_forced") else {
        return Ok(());
    };
    let body = format!(
        "{}paths:\n  - {{name: notes, path: ~/notes, role: the user's notes, backup: backup}}\n",
        notes_db_manifest()
    );
    let host = Host::new(machine, &body, &notes_db_files())?;
    write_file(&host.home().join("notes/todo.md"), b"- old notes\n")?;
    old_host_with_notes_db(&host)?;
    let [old_snapshot] = host.snapshot_ids()?.try_into().map_err(|ids| format!("not one snapshot: {ids:?}"))?;

    host.lose_the_machine(&["notes-db.service"])?;
    host.new_home(true, &notes_db_files())?;
    // Notes of the new machine, there before pi-bootstrap: this host's own.
    write_file(&host.home().join("notes/todo.md"), b"- notes of the new machine\n")?;
    let services = host.services_step()?;
    assert_eq!(status(&services, "service:notes-db"), "skipped", "{services:#}");

    let repository = host.machine.layout.backup_repo();
    let before = files(&repository)?;
    let refused = host.data(&["backup"])?;
    assert_eq!(refused.code, Some(1), "the backup was not refused:\n{}", refused.text);
    let waits = detail(&refused.json, "data:service:notes-db");
    assert_eq!(status(&refused.json, "data:service:notes-db"), "failed", "{:#}", refused.json);
    assert!(waits.contains("waits for its restore"), "{waits}");
    assert!(waits.contains(&format!("snapshot {old_snapshot}")), "{waits}");
    assert!(waits.contains("`bootstrap-data restore`") && waits.contains("--force"), "{waits}");
    assert_eq!(status(&refused.json, "data:path:notes"), "skipped", "{:#}", refused.json);
    assert!(detail(&refused.json, "data:path:notes").contains("~/.local/share/notes-db"), "{:#}", refused.json);
    assert!(!commands(&refused.json).iter().any(|c| c.contains("restic backup")), "{:#}", refused.json);
    assert_eq!(host.snapshot_ids()?, std::slice::from_ref(&old_snapshot), "the refused backup made a snapshot");
    assert_eq!(differences(&before, &files(&repository)?), "", "the refused backup changed the repository");

    // The status says the same.
    let status_run = host.data(&["status"])?;
    assert_eq!(status_run.code, Some(1), "{}", status_run.text);
    assert_eq!(status(&status_run.json, "data:service:notes-db"), "drift", "{:#}", status_run.json);
    assert!(
        detail(&status_run.json, "data:service:notes-db").contains("waits for its restore"),
        "{:#}",
        status_run.json
    );

    let forced = host.data_ok(&["backup", "--force"])?;
    assert_eq!(status(&forced, "data:path:notes"), "changed", "{forced:#}");
    assert!(commands(&forced).iter().any(|c| c.contains("restic backup")), "{forced:#}");
    let after = host.snapshot_ids()?;
    assert_eq!(after.len(), 2, "the forced backup made no snapshot: {after:?}");

    // The forced snapshot did not have the database: it still comes back from the old
    // one, and the service starts.
    let restore = host.data_ok(&["restore"])?;
    assert_eq!(status(&restore, "data:service:notes-db"), "changed", "{restore:#}");
    assert!(detail(&restore, "data:service:notes-db").contains(&format!("snapshot {old_snapshot}")), "{restore:#}");
    assert_eq!(fs::read(host.home().join(NOTES_DB).join("notes.db"))?, OLD_DB);
    assert_eq!(fs::read(host.home().join("notes/todo.md"))?, b"- notes of the new machine\n");
    assert_eq!(status(&restore, "service:notes-db"), "changed", "{restore:#}");
    assert_eq!(host.unit_state("notes-db.service")?, ("active".to_owned(), "enabled".to_owned()));
    host.assert_second_runs_change_nothing()
}

// ---------------------------------------------------------------------------------
// An env file whose values are only in the backup.

/// The bridge's token: a secret that only the backup holds on the new host.
const TOKEN: &str = "canary-bridge-token-4Ew9";

#[test]
fn an_env_file_only_the_backup_holds_waits_for_it_with_its_service() -> TestResult {
    let Some(machine) = sandbox::isolated("an_env_file_only_the_backup_holds_waits_for_it_with_its_service") else {
        return Ok(());
    };
    let body = "services:
  - name: bridge
    purpose: the chat bridge, which needs its token
    source: services/bridge
    unit: systemd/bridge.service
    env_file: bridge
env:
  - name: bridge
    path: ~/.config/bridge/bridge.env
    vars: [BRIDGE_TOKEN]
paths:
  - {name: bridge-config, path: ~/.config/bridge, role: the bridge's env file, backup: backup}
";
    let unit = "[Unit]
Description=the bridge, which reads its token at start
[Service]
Type=simple
EnvironmentFile=%h/.config/bridge/bridge.env
ExecStart=/bin/sh -c 'printenv BRIDGE_TOKEN > %t/bridge.seen && exec sleep infinity'
[Install]
WantedBy=default.target
"
    .to_owned();
    let repo = service_files("bridge", unit);
    let host = Host::new(machine, body, &repo)?;
    assert!(std::env::var_os("BRIDGE_TOKEN").is_none(), "the test's environment holds the token");
    let env_file = host.home().join(".config/bridge/bridge.env");
    let old = format!("BRIDGE_TOKEN={TOKEN}\n");
    write_file(&env_file, old.as_bytes())?;
    fs::set_permissions(&env_file, fs::Permissions::from_mode(0o600))?;
    let services = host.services_step()?;
    assert_eq!(status(&services, "service:bridge"), "changed", "{services:#}");
    wait_for_content(&host.runtime("bridge.seen"), format!("{TOKEN}\n").as_bytes())?;
    host.data_ok(&["backup"])?;

    host.lose_the_machine(&["bridge.service"])?;
    host.new_home(true, &repo)?;
    // Nobody can fill the env file here: it waits for the restore, and so does its
    // service (neither fails).
    let services = host.services_step()?;
    assert_eq!(status(&services, "env:bridge"), "skipped", "{services:#}");
    assert!(detail(&services, "env:bridge").starts_with("waits for its data"), "{services:#}");
    assert_eq!(status(&services, "service:bridge"), "skipped", "{services:#}");
    assert!(detail(&services, "service:bridge").starts_with("waits for its data"), "{services:#}");
    assert!(!env_file.exists(), "an env file was written without its values");
    assert_eq!(host.unit_state("bridge.service")?, ("inactive".to_owned(), "disabled".to_owned()));

    let restore = host.data_ok(&["restore"])?;
    assert!(!restore.to_string().contains(TOKEN), "the token showed: {restore:#}");
    assert_eq!(status(&restore, "data:path:bridge-config"), "changed", "{restore:#}");
    assert_eq!(status(&restore, "service:bridge"), "changed", "{restore:#}");
    assert_eq!(fs::read_to_string(&env_file)?, old, "the env file is not back byte for byte");
    assert_eq!(fs::metadata(&env_file)?.permissions().mode() & 0o777, 0o600);
    wait_for_content(&host.runtime("bridge.seen"), format!("{TOKEN}\n").as_bytes())?;
    assert_eq!(host.unit_state("bridge.service")?, ("active".to_owned(), "enabled".to_owned()));

    let services = host.services_step()?;
    assert_eq!(status(&services, "env:bridge"), "ok", "{services:#}");
    assert!(!services.to_string().contains(TOKEN), "the token showed: {services:#}");
    host.assert_second_runs_change_nothing()
}

// ---------------------------------------------------------------------------------
// 7. The snapshots that hold a path.

#[test]
fn snapshots_lists_every_snapshot_that_holds_a_path_newest_first() -> TestResult {
    let Some(machine) = sandbox::isolated("snapshots_lists_every_snapshot_that_holds_a_path_newest_first") else {
        return Ok(());
    };
    let host = Host::new(machine, NOTES_MANIFEST, &[])?;
    let todo = host.home().join("notes/todo.md");
    write_file(&todo, b"- first\n")?;
    host.services_step()?;
    host.data_ok(&["backup"])?;
    write_file(&todo, b"- first\n- second\n")?;
    host.data_ok(&["backup"])?;
    let [first, second] = host.snapshot_ids()?.try_into().map_err(|ids| format!("not two snapshots: {ids:?}"))?;

    host.lose_the_machine(&[])?;
    host.new_home(true, &[])?;
    host.services_step()?;
    let restore = host.data_ok(&["restore"])?;
    assert!(detail(&restore, "data:path:notes").contains(&format!("restored from snapshot {second}")), "{restore:#}");
    assert_eq!(fs::read(&todo)?, b"- first\n- second\n");

    let listed = host.data_ok(&["snapshots"])?;
    let line = detail(&listed, "data:path:notes");
    assert_eq!(status(&listed, "data:path:notes"), "ok", "{listed:#}");
    assert!(line.starts_with(&format!("2 snapshots: {second} of ")), "{line}");
    let (newest, oldest) = (line.find(&second), line.find(&first));
    assert!(newest.is_some() && oldest.is_some() && newest < oldest, "not newest first: {line}");
    let marked = line.split("; ").find(|part| part.contains("this host's data came from it")).unwrap_or_default();
    assert!(marked.contains(&second) && !marked.contains(&first), "the source is not marked, or the wrong one: {line}");
    host.assert_second_runs_change_nothing()
}
