//! Backup freshness through the [`BackupStatus`] hook: a stale path reported by the
//! status source is named as drift in the backup category and fails the audit; a
//! manifest with no backup has no backup items; the last verification (`data:verify`,
//! from the state file) and the last scheduled run (`data:schedule`, from the units'
//! state) are items of the backup category when the manifest declares them; with real
//! restic, freshness comes from the local record `bootstrap-data backup` wrote (the
//! repository not read, and a snapshot made outside it not seen) unless `--deep`.

#![allow(clippy::disallowed_methods)]

mod support;

use std::path::Path;

use common::engine::Ctx;
use common::manifest::Manifest;
use common::output::Verbosity;
use common::report::{Item, Report, Status};
use pi_config_audit::backup::backup_items;
use pi_config_audit::{Audit, BackupStatus, Category, render};
use test_support::TestResult;

/// Stands in for `bootstrap-data status`: `work` is three days old, `data` fresh.
struct Stale;

impl BackupStatus for Stale {
    fn status(&self, _: &Manifest, _: &Ctx) -> Report {
        let mut report = Report::new("bootstrap-data", true);
        let item = |id: &str, status, detail: &str| Item::new(id, "backup", status, detail);
        report.push(item("data:repository", Status::Ok, "3 snapshots"));
        report.push(item("data:path:data", Status::Ok, "newest snapshot 2h ago"));
        report.push(item("data:path:work", Status::WouldChange, "newest snapshot 3 days ago, older than 26h"));
        report
    }
}

fn load(services: bool, backup: bool) -> Result<(Manifest, tempfile::TempDir), Box<dyn std::error::Error>> {
    let home = tempfile::tempdir()?;
    let mut text = support::manifest(services);
    if !backup {
        let start = text.find("paths:").unwrap_or(text.len());
        text.truncate(start);
    }
    let env = |name: &str| (name == "NGINX_PREFIX" || name == "PI_BACKUP_REPO").then(|| "/nowhere".to_owned());
    let manifest = common::manifest::load_str(Path::new("m.yaml"), &text, home.path(), &env)?;
    Ok((manifest, home))
}

#[test]
fn a_stale_backup_is_drift_in_the_backup_category() -> TestResult {
    let (manifest, home) = load(false, true)?;
    let items = backup_items(&manifest, &Ctx::new(home.path()), &Stale);
    let audit = Audit::from_items(items.into_iter().map(|i| (Category::of_id(&i.id), i)).collect());
    assert_eq!(audit.exit_code(), 1);
    let stale: Vec<(&str, Status)> = audit.report.items.iter().map(|i| (i.id.as_str(), i.status)).collect();
    assert_eq!(
        stale,
        [("data:repository", Status::Ok), ("data:path:data", Status::Ok), ("data:path:work", Status::Drift)]
    );
    assert!(audit.categories.iter().all(|c| *c == Category::Backup));
    let text = render::render_human(&audit, home.path(), Verbosity::Quiet, false);
    assert_eq!(
        text,
        "== backup: backup freshness\ndrift        data:path:work  (newest snapshot 3 days ago, older than 26h)\nrecap:\n  backup     ok=2 drift=1\npi-config-audit: ok=2 changed=0 failed=0 drift=1\n"
    );
    Ok(())
}

#[test]
fn without_a_backup_section_there_are_no_backup_items() -> TestResult {
    let (manifest, home) = load(false, false)?;
    assert!(backup_items(&manifest, &Ctx::new(home.path()), &Stale).is_empty());
    Ok(())
}

/// Runs restic with the test's repository and password file.
fn restic(repo: &Path, password: &Path, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let out = std::process::Command::new("restic")
        .args(args)
        .env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD_FILE", password)
        .env("RESTIC_CACHE_DIR", repo.with_extension("cache"))
        .output()?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned().into()) }
}

#[test]
fn a_real_stale_backup_is_found_through_bootstrap_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    let data = home.join("data");
    std::fs::create_dir_all(&data)?;
    std::fs::write(data.join("notes.txt"), "kept\n")?;
    let password = home.join("restic-password");
    std::fs::write(&password, "canary-audit-restic-9d1\n")?;
    common::fsx::set_mode(&password, 0o600)?;
    let repo = dir.path().join("repo");
    restic(&repo, &password, &["init"])?;
    let data_text = data.display().to_string();
    restic(&repo, &password, &["backup", "--host", "audit-host", "--tag", "pi-bootstrap", &data_text])?;
    let text = format!(
        "version: 1\nhost: audit-host\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/r.git\npaths:\n  - name: data\n    path: ~/data\n    role: notes\n    backup: backup\nbackup:\n  repository: {}\n  password_file: ~/restic-password\n  max_age: 1s\n",
        repo.display()
    );
    let manifest = common::manifest::load_str(Path::new("m.yaml"), &text, &home, &|_| None)?;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let items = backup_items(&manifest, &Ctx::new(&home), &pi_config_audit::BootstrapData::default());
    let data_item = items.iter().find(|i| i.id == "data:path:data").ok_or("no item for the data path")?;
    assert_eq!(data_item.status, Status::Drift, "{data_item:?}");
    assert!(items.iter().all(|i| !i.detail.contains("canary-audit-restic")), "the password leaked");
    Ok(())
}

/// Stands in for `bootstrap-data status` (all fresh) and for the user manager: the
/// last scheduled backup failed with exit status 1.
struct FailedRun;

impl BackupStatus for FailedRun {
    fn status(&self, _: &Manifest, _: &Ctx) -> Report {
        let mut report = Report::new("bootstrap-data", true);
        report.push(Item::new("data:repository", "repository", Status::Ok, "1 snapshot"));
        report
    }

    fn backup_units(&self) -> Result<Vec<common::systemd::UnitState>, String> {
        let unit = |id: &str, active: &str, file: &str, props: &[(&str, &str)]| common::systemd::UnitState {
            id: id.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: "dead".into(),
            unit_file_state: file.into(),
            properties: props.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..Default::default()
        };
        Ok(vec![
            unit(
                "pi-bootstrap-backup.service",
                "failed",
                "static",
                &[("Result", "exit-code"), ("ExecMainStatus", "1")],
            ),
            unit(
                "pi-bootstrap-backup.timer",
                "active",
                "enabled",
                &[("LastTriggerUSec", "Tue 2026-12-01 03:00:04 UTC")],
            ),
        ])
    }
}

/// A manifest with a backup schedule and a verify policy.
fn scheduled(home: &Path) -> Result<Manifest, Box<dyn std::error::Error>> {
    let text = "version: 1\nhost: audit-host\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/r.git\npaths:\n  - {name: data, path: ~/data, role: notes, backup: backup}\nbackup:\n  repository: /srv/restic\n  password_file: ~/restic-password\n  max_age: 26h\n  schedule: daily\n  verify:\n    max_age: 8d\n";
    Ok(common::manifest::load_str(Path::new("m.yaml"), text, home, &|_| None)?)
}

#[test]
fn a_failed_scheduled_run_and_a_missing_verification_are_in_the_backup_category() -> TestResult {
    let home = tempfile::tempdir()?;
    let manifest = scheduled(home.path())?;
    let items = backup_items(&manifest, &Ctx::new(home.path()), &FailedRun);
    let audit = Audit::from_items(items.into_iter().map(|i| (Category::of_id(&i.id), i)).collect());
    let got: Vec<(&str, Status)> = audit.report.items.iter().map(|i| (i.id.as_str(), i.status)).collect();
    assert_eq!(
        got,
        [("data:repository", Status::Ok), ("data:verify", Status::Drift), ("data:schedule", Status::Failed)]
    );
    assert!(audit.categories.iter().all(|c| *c == Category::Backup));
    assert_eq!(audit.exit_code(), 1);
    let text = render::render_human(&audit, home.path(), Verbosity::Quiet, false);
    assert!(
        text.contains(
            "data:verify  ~/.local/state/pi-bootstrap/verify.json  (never verified on this host: bootstrap-data verify)"
        ),
        "{text}"
    );
    assert!(
        text.contains("the last scheduled backup (started Tue 2026-12-01 03:00:04 UTC) failed: exit-code, exit status 1; see journalctl --user -u pi-bootstrap-backup.service"),
        "{text}"
    );

    // Without a schedule and a verify policy, neither item is there.
    let (plain, home) = load(false, true)?;
    let ids: Vec<String> = backup_items(&plain, &Ctx::new(home.path()), &FailedRun).into_iter().map(|i| i.id).collect();
    assert_eq!(ids, ["data:repository"]);
    Ok(())
}

#[test]
fn a_recent_verification_of_this_host_is_ok_and_an_old_one_is_drift() -> TestResult {
    let home = tempfile::tempdir()?;
    let manifest = scheduled(home.path())?;
    let machine = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .map(|t| t.trim().to_owned())
        .find(|t| !t.is_empty())
        .unwrap_or_default();
    let state = home.path().join(".local/state/pi-bootstrap");
    std::fs::create_dir_all(&state)?;
    let record = |age: std::time::Duration| -> Result<(), Box<dyn std::error::Error>> {
        let time = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - age).to_string();
        let json = serde_json::json!({
            "time": time, "ok": true, "failed": [], "snapshots": ["1a2b3c4d"], "read_data": "2%",
            "files_compared": 5, "last_ok": time, "host": "audit-host", "machine_id": machine,
            "repository": "/srv/restic"
        });
        std::fs::write(state.join("verify.json"), serde_json::to_vec(&json)?)?;
        Ok(())
    };
    let verify = |manifest: &Manifest| -> Option<Item> {
        backup_items(manifest, &Ctx::new(home.path()), &FailedRun).into_iter().find(|i| i.id == "data:verify")
    };
    record(std::time::Duration::from_secs(2 * 86_400))?;
    let it = verify(&manifest).ok_or("no data:verify")?;
    assert_eq!(it.status, Status::Ok, "{it:?}");
    assert!(it.detail.starts_with("last verified 2d 0h ago ("), "{it:?}");
    assert!(it.detail.ends_with("(restic check of 2%, 5 files read back), within the 8d 0h allowed"), "{it:?}");
    record(std::time::Duration::from_secs(9 * 86_400))?;
    let it = verify(&manifest).ok_or("no data:verify")?;
    assert_eq!(it.status, Status::Drift, "{it:?}");
    Ok(())
}

#[test]
fn the_audit_reads_the_local_record_and_deep_asks_the_repository() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join("data"))?;
    std::fs::write(home.join("data/notes.txt"), "kept\n")?;
    let password = home.join("restic-password");
    std::fs::write(&password, "canary-audit-restic-4f7\n")?;
    common::fsx::set_mode(&password, 0o600)?;
    let repo = dir.path().join("repo");
    let text = format!(
        "version: 1\nhost: audit-host\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/r.git\npaths:\n  - {{name: data, path: ~/data, role: notes, backup: backup}}\nbackup:\n  repository: {}\n  password_file: ~/restic-password\n  max_age: 26h\n",
        repo.display()
    );
    let manifest = common::manifest::load_str(Path::new("m.yaml"), &text, &home, &|_| None)?;
    let ctx = Ctx::new(&home);
    // bootstrap-data backup, as its binary runs it: the repository, a snapshot, the record.
    let backed_up = bootstrap_data::backup(&manifest, &ctx, &bootstrap_data::Options::default())?;
    assert_eq!(backed_up.summary.failed, 0, "{:?}", backed_up.items);
    let find = |items: &[Item], id: &str| items.iter().find(|i| i.id == id).cloned().ok_or(format!("no {id}"));

    let recorded = backup_items(&manifest, &ctx, &pi_config_audit::BootstrapData::default());
    let data = find(&recorded, "data:path:data")?;
    assert_eq!(data.status, Status::Ok, "{data:?}");
    assert!(data.detail.contains("; from the local record of "), "{data:?}");
    let repository = find(&recorded, "data:repository")?;
    assert!(
        repository.detail.contains("which bootstrap-data backup wrote (--deep asks the repository)"),
        "{repository:?}"
    );

    // The repository out of reach: the record answers all the same (it is not read),
    // --deep asks it and says it is not there.
    std::fs::rename(&repo, dir.path().join("repo-away"))?;
    let offline = backup_items(&manifest, &ctx, &pi_config_audit::BootstrapData::default());
    let still = find(&offline, "data:path:data")?;
    assert_eq!(still.status, Status::Ok, "the record's answer read the repository: {still:?}");
    assert!(still.detail.contains("; from the local record of "), "{still:?}");
    let deep = backup_items(&manifest, &ctx, &pi_config_audit::BootstrapData { deep: true });
    let repository = find(&deep, "data:repository")?;
    assert_eq!(repository.status, Status::Failed, "{repository:?}");
    assert!(repository.detail.contains("there is no restic repository at"), "{repository:?}");
    assert_eq!(find(&deep, "data:path:data")?.status, Status::Skipped);

    // Back in place, a snapshot made outside pi-bootstrap shows only with --deep.
    std::fs::rename(dir.path().join("repo-away"), &repo)?;
    let data_text = home.join("data").display().to_string();
    restic(&repo, &password, &["backup", "--host", "audit-host", &data_text])?;
    let recorded = backup_items(&manifest, &ctx, &pi_config_audit::BootstrapData::default());
    assert!(find(&recorded, "data:repository")?.detail.starts_with("1 snapshot of host audit-host"));
    let deep = backup_items(&manifest, &ctx, &pi_config_audit::BootstrapData { deep: true });
    let repository = find(&deep, "data:repository")?;
    assert!(repository.detail.starts_with("2 snapshots of host audit-host"), "{repository:?}");
    assert!(repository.detail.ends_with("; asked the repository (--deep)"), "{repository:?}");
    assert!(find(&deep, "data:path:data")?.detail.ends_with("; asked the repository"));
    assert!(deep.iter().chain(&recorded).all(|i| !i.detail.contains("canary-audit-restic")), "the password leaked");
    Ok(())
}
