//! bootstrap-data with a real restic repository: backup then restore gives identical
//! trees, restore over data needs `--force` and keeps it aside, wrong passwords and
//! unreachable repositories are clear errors that change nothing, disposable paths are
//! not in the snapshot, the password shows nowhere, a second restore changes nothing
//! and asks nothing of the repository (no restic on its PATH), an empty folder included;
//! the restore kit rides in the snapshot without becoming a path of the manifest.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{CANARY, Host, PATHS, differences, files, tree};
use test_support::TestResult;
use test_support::json::{detail, item};

/// The paths that come back from the backup, relative to HOME.
const RESTORED: &[&str] =
    &["pi-config/agents-database", "pi-config/work", "pi-config/empty", ".pi/agent/auth.json", ".config/pi-telegram"];

/// What a lost host looks like after the earlier steps: the data gone, some folders
/// made again (empty) by bootstrap-pi-config.
fn lose_the_data(host: &Host) -> TestResult {
    let h = host.home();
    for rel in RESTORED {
        let path = h.join(rel);
        if path.is_dir() { fs::remove_dir_all(&path)? } else { fs::remove_file(&path)? }
    }
    // bootstrap-pi-config made these again, empty, a declared folder inside a data
    // path too: a tree of empty folders is no data of this host.
    fs::create_dir_all(h.join("pi-config/work/tasks"))?;
    fs::create_dir_all(h.join(".config/pi-telegram"))?;
    Ok(())
}

#[test]
fn backup_then_restore_gives_identical_trees_and_a_second_restore_changes_nothing() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let h = host.home();
    let before: Vec<_> = RESTORED.iter().map(|rel| tree(&h.join(rel))).collect::<Result<_, _>>()?;

    let backup = host.run(&["backup", "--json"])?;
    assert_eq!(backup.code, Some(0), "{}{}", backup.stdout, backup.stderr);
    let report = backup.json()?;
    assert_eq!(item(&report, "data:repository")["status"], "changed", "the repository is created");
    assert_eq!(report["summary"]["changed"], 7, "{report}");
    assert!(detail(&report, "data:path:work").contains("without ~/pi-config/work/cache (disposable)"), "{report}");
    let commands = report["commands"].to_string();
    assert!(commands.contains("restic init") && commands.contains("restic backup"), "{commands}");

    // Disposable paths and the password file are not in the snapshot; the rest is.
    let listed = host.restic(&["ls", "latest"])?;
    assert!(!listed.contains("work/cache"), "a disposable path is in the snapshot:\n{listed}");
    assert!(!listed.contains("restic-password"), "the password file is in the snapshot:\n{listed}");
    assert!(listed.contains("pi-config/work/tasks/t1.json") && listed.contains("telegram.env"), "{listed}");
    assert!(!listed.contains("README.md"), "a git path is in the snapshot:\n{listed}");
    let snapshots: serde_json::Value = serde_json::from_str(&host.restic(&["snapshots", "--json"])?)?;
    assert_eq!(snapshots[0]["hostname"], "test-host");
    assert_eq!(snapshots[0]["tags"], serde_json::json!(["pi-bootstrap", "test-host"]));

    lose_the_data(&host)?;
    let restore = host.run(&["restore", "--json"])?;
    assert_eq!(restore.code, Some(0), "{}{}", restore.stdout, restore.stderr);
    let report = restore.json()?;
    for id in [
        "data:path:agents-database",
        "data:path:work",
        "data:path:empty",
        "data:path:pi-auth",
        "data:path:telegram-config",
    ] {
        assert_eq!(item(&report, id)["status"], "changed", "{id}: {report}");
    }
    assert_eq!(item(&report, "data:path:bootstrap-config")["status"], "ok", "{report}");
    // Five paths of one snapshot, in three folders: one restic restore for them all.
    let restores: Vec<String> =
        test_support::json::commands(&report).into_iter().filter(|c| c.starts_with("restic restore")).collect();
    assert_eq!(restores.len(), 1, "{restores:?}");
    for rel in RESTORED {
        assert!(restores[0].contains(&format!("--include {}", h.join(rel).display())), "{rel}: {restores:?}");
    }
    let after: Vec<_> = RESTORED.iter().map(|rel| tree(&h.join(rel))).collect::<Result<_, _>>()?;
    for ((rel, mut want), got) in RESTORED.iter().zip(before).zip(after) {
        if *rel == "pi-config/work" {
            want.retain(|path, _| !path.starts_with("cache"));
        }
        assert_eq!(got, want, "{rel} did not come back identical (content, modes, links)");
    }
    assert!(!h.join("pi-config/work/cache").exists(), "a disposable path came back");
    for folder in ["pi-config", ".pi/agent", ".config"] {
        let leftovers: Vec<_> = fs::read_dir(h.join(folder))?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".pi-bootstrap-restore"))
            .collect();
        assert!(leftovers.is_empty(), "staging folders left behind in ~/{folder}: {leftovers:?}");
    }
    // The local record says where each path restored came from.
    let record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(h.join(".local/state/pi-bootstrap/backup-record.json"))?)?;
    assert_eq!(record["by"], "restore");
    for rel in RESTORED {
        let from = &record["paths"][h.join(rel).display().to_string()]["restored_from"]["short_id"];
        assert_eq!(*from, snapshots[0]["short_id"], "{rel}: {record:#}");
    }

    // The second restore has nothing to ask of the repository, the folder empty on
    // purpose included: it runs with no restic on PATH.
    let nothing_on_path = tempfile::tempdir()?;
    let mut host = host;
    host.env.push(("PATH".into(), nothing_on_path.path().display().to_string()));
    let again = host.run(&["restore", "--json"])?;
    assert_eq!(again.code, Some(0), "{}{}", again.stdout, again.stderr);
    let report = again.json()?;
    assert_eq!(report["summary"]["changed"], 0, "{report}");
    assert_eq!(report["commands"], serde_json::json!([]), "{report}");
    let empty = detail(&report, "data:path:empty");
    assert!(empty.starts_with("empty, as when restored from snapshot "), "{empty}");
    Ok(())
}

#[test]
fn the_restore_kit_rides_in_the_snapshot_and_restore_and_status_never_ask_about_it() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let kit = host.home().join(".local/lib/pi-bootstrap/kit");
    fs::create_dir_all(&kit)?;
    fs::write(kit.join("pi-bootstrap-kit.tar.gz"), b"the kit's bytes")?;
    fs::write(kit.join("pi-bootstrap-kit.tar.gz.sha256"), b"0123  pi-bootstrap-kit.tar.gz\n")?;

    // Asked for one path only: the kit stays out.
    let only = host.run(&["backup", "--only", "data:path:work", "--json"])?;
    assert_eq!(only.code, Some(0), "{}{}", only.stdout, only.stderr);
    let report = only.json()?;
    assert!(report["items"].as_array().is_some_and(|items| items.iter().all(|i| i["id"] != "kit:restore-kit")));
    assert!(!host.restic(&["ls", "latest"])?.contains("pi-bootstrap-kit"), "--only took the kit");

    let check = host.run(&["backup", "--check", "--json"])?;
    assert_eq!(item(&check.json()?, "kit:restore-kit")["status"], "would_change");
    let backup = host.run(&["backup", "--json"])?;
    assert_eq!(backup.code, Some(0), "{}{}", backup.stdout, backup.stderr);
    let report = backup.json()?;
    assert_eq!(item(&report, "kit:restore-kit")["status"], "changed", "{report}");
    assert_eq!(report["summary"]["failed"], 0, "{report}");
    let dumped = host.restic(&["dump", "latest", &kit.join("pi-bootstrap-kit.tar.gz").display().to_string()])?;
    assert_eq!(dumped, "the kit's bytes");
    let snapshots: serde_json::Value = serde_json::from_str(&host.restic(&["snapshots", "--json"])?)?;
    let newest = &snapshots[snapshots.as_array().map_or(0, Vec::len).saturating_sub(1)];
    assert!(newest["paths"].to_string().contains("/.local/lib/pi-bootstrap/kit"), "{newest}");

    // Status, the deep one too, and the restore treat the manifest's paths as before.
    for args in [&["status", "--json"][..], &["status", "--deep", "--json"], &["restore", "--json"]] {
        let run = host.run(args)?;
        assert_eq!(run.code, Some(0), "{args:?}: {}{}", run.stdout, run.stderr);
        let report = run.json()?;
        let ids: Vec<&str> =
            report["items"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str()).collect();
        assert!(ids.iter().all(|id| !id.starts_with("kit:")), "{args:?}: {ids:?}");
        assert_eq!(report["summary"]["changed"], 0, "{args:?}: {report}");
        assert_eq!(report["summary"]["drift"], 0, "{args:?}: {report}");
    }
    Ok(())
}

#[test]
fn restore_over_data_needs_force_and_keeps_the_data_aside() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let task = host.home().join("pi-config/work/tasks/t1.json");
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    fs::write(&task, "{\"phase\": 3, \"newer\": true}\n")?;

    let plain = host.run(&["restore", "--json"])?;
    assert_eq!(plain.code, Some(0));
    let report = plain.json()?;
    assert_eq!(item(&report, "data:path:work")["status"], "ok");
    assert!(detail(&report, "data:path:work").starts_with("this host's data: backed up in snapshot"), "{report}");
    assert_eq!(fs::read_to_string(&task)?, "{\"phase\": 3, \"newer\": true}\n", "restore touched data that was there");

    let check = host.run(&["restore", "--force", "--check", "--only", "data:path:work", "--json"])?;
    assert_eq!(check.code, Some(1));
    assert!(detail(&check.json()?, "data:path:work").contains("keeping what is there aside first"));
    assert_eq!(fs::read_to_string(&task)?, "{\"phase\": 3, \"newer\": true}\n", "--check changed something");

    let forced = host.run(&["restore", "--force", "--only", "data:path:work", "--json"])?;
    assert_eq!(forced.code, Some(0), "{}{}", forced.stdout, forced.stderr);
    let report = forced.json()?;
    assert_eq!(item(&report, "data:path:work")["status"], "changed");
    assert_eq!(report["items"].as_array().map(Vec::len), Some(2), "only the repository and the path: {report}");
    assert_eq!(fs::read_to_string(&task)?, "{\"phase\": 2}\n");
    let kept = report["kept"].as_str().ok_or("no kept folder in the report")?;
    let relative = task.strip_prefix("/")?;
    assert_eq!(fs::read_to_string(Path::new(kept).join(relative))?, "{\"phase\": 3, \"newer\": true}\n");
    assert!(
        detail(&report, "data:path:work").contains("over what was there (kept at ~/.local/state/pi-bootstrap/kept/")
    );
    // What the backup leaves out stays where it is: the disposable cache in place, not kept.
    let cache = host.home().join("pi-config/work/cache/big.tmp");
    assert_eq!(fs::read_to_string(&cache)?, "scratch, can be lost\n");
    assert!(!Path::new(kept).join(cache.strip_prefix("/")?).exists());

    // Over the folder that holds the password file: the password file stays in place.
    let forced = host.run(&["restore", "--force", "--only", "data:path:bootstrap-config", "--json"])?;
    assert_eq!(forced.code, Some(0), "{}{}", forced.stdout, forced.stderr);
    assert_eq!(fs::read_to_string(host.password_file())?, format!("{CANARY}\n"));
    let kept = forced.json()?["kept"].as_str().map(Path::new).ok_or("nothing kept")?.to_path_buf();
    assert!(!kept.join(host.password_file().strip_prefix("/")?).exists(), "the password file was kept aside");
    assert_eq!(host.run(&["status"])?.code, Some(0), "the repository no longer opens");
    Ok(())
}

#[test]
fn a_wrong_password_or_an_unreachable_repository_is_a_clear_error_and_changes_nothing() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    lose_the_data(&host)?;

    host.set_password("not-the-password")?;
    let before = files(host.dir.path())?;
    // Status answers from the local record without opening the repository: only
    // --deep finds the password wrong.
    let recorded = host.run(&["status"])?;
    assert_eq!(recorded.code, Some(0), "{}", recorded.stdout);
    assert!(recorded.stdout.contains("from the local record of"), "{}", recorded.stdout);
    for args in [&["restore"][..], &["backup"], &["status", "--deep"], &["restore", "--check"]] {
        let run = host.run(args)?;
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stdout);
        assert!(
            run.stdout.contains("does not open with the password in ~/.config/pi-bootstrap/restic-password: wrong password (restic: Fatal: wrong password or no key found)"),
            "{args:?}: {}",
            run.stdout
        );
        assert_eq!(differences(&before, &files(host.dir.path())?), "", "{args:?} changed something on disk");
    }

    host.set_password(CANARY)?;
    host.write_manifest("", PATHS, "rest:http://127.0.0.1:1/", "26h")?;
    let before = files(host.dir.path())?;
    for args in [&["restore"][..], &["backup"], &["status"]] {
        let run = host.run(args)?;
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stdout);
        assert!(
            run.stdout.contains(
                "restic failed on the repository rest:http://127.0.0.1:1/: restic: Fatal: unable to open config file"
            ),
            "{args:?}: {}",
            run.stdout
        );
        assert!(run.stdout.contains("connection refused"), "{}", run.stdout);
        assert_eq!(differences(&before, &files(host.dir.path())?), "", "{args:?} changed something on disk");
    }

    // No repository at all: restore and status say so and do not create one.
    let nowhere = host.dir.path().join("no-repo-here");
    host.write_manifest("", PATHS, &nowhere.display().to_string(), "26h")?;
    for args in [&["restore"][..], &["status"]] {
        let run = host.run(args)?;
        assert_eq!(run.code, Some(1));
        assert!(run.stdout.contains("there is no restic repository at"), "{}", run.stdout);
        assert!(!nowhere.exists(), "{args:?} created a repository");
    }

    // A password file others can read is refused before restic runs.
    fs::set_permissions(host.password_file(), fs::Permissions::from_mode(0o644))?;
    let run = host.run(&["status"])?;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("is open to others (mode 0644): chmod 600 ~/.config/pi-bootstrap/restic-password"),
        "{}",
        run.stdout
    );
    Ok(())
}

#[test]
fn the_password_is_nowhere_but_in_its_file() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let mut outputs = Vec::new();
    for args in [
        &["backup", "-v"][..],
        &["backup", "--json"],
        &["status", "-v"],
        &["status", "--json"],
        &["restore", "--check", "-v"],
        &["restore", "--force", "-v", "--json"],
        &["restore", "--force", "-v"],
    ] {
        let run = host.run(args)?;
        outputs.push(format!("{}{}", run.stdout, run.stderr));
    }
    assert!(outputs.iter().all(|o| !o.contains(CANARY)));
    // Nor in any file of the host, the state folder, restic's cache or the repository.
    let all = files(host.dir.path())?;
    assert!(all.keys().any(|p| p.starts_with(host.home().join(".local/state/pi-bootstrap"))), "no state folder");
    assert!(all.keys().any(|p| p.starts_with(host.home().join(".cache/restic"))), "no restic cache");
    let holding: Vec<_> = all
        .iter()
        .filter(|(path, bytes)| {
            **path != host.password_file() && bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes())
        })
        .map(|(path, _)| path.clone())
        .collect();
    assert!(holding.is_empty(), "the password is written in {holding:?}");
    Ok(())
}

#[test]
fn status_says_how_old_each_path_is_and_fails_when_stale_or_missing() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    let fresh = host.run(&["status", "--json"])?;
    assert_eq!(fresh.code, Some(0), "{}", fresh.stdout);
    let report = fresh.json()?;
    assert_eq!(report["summary"]["ok"], 7, "{report}");
    assert!(detail(&report, "data:repository").starts_with("1 snapshot of host test-host, the newest "), "{report}");

    let paths = format!("{PATHS}  - {{name: later, path: ~/later, role: declared after the backup, backup: backup}}\n");
    host.write_manifest("", &paths, &host.repo().display().to_string(), "1s")?;
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let stale = host.run(&["status", "--json"])?;
    assert_eq!(stale.code, Some(1));
    let report = stale.json()?;
    assert_eq!(item(&report, "data:path:work")["status"], "drift");
    assert!(detail(&report, "data:path:work").starts_with("stale: the newest, snapshot "), "{report}");
    assert!(
        detail(&report, "data:path:work").ends_with("old, more than the 1s allowed; asked the repository"),
        "{report}"
    );
    assert!(
        detail(&report, "data:repository")
            .ends_with("; asked the repository (the local record does not know ~/later yet)"),
        "a path new to the manifest is asked about: {report}"
    );
    assert_eq!(item(&report, "data:path:later")["status"], "drift");
    assert_eq!(detail(&report, "data:path:later"), "in no snapshot of host test-host; asked the repository");
    Ok(())
}

#[test]
fn a_path_in_no_snapshot_is_skipped_and_an_unknown_only_is_a_usage_error() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    fs::remove_file(host.home().join(".pi/agent/auth.json"))?;
    let backup = host.run(&["backup", "--json"])?;
    assert_eq!(backup.code, Some(0));
    assert_eq!(item(&backup.json()?, "data:path:pi-auth")["status"], "skipped");
    let restore = host.run(&["restore", "--json"])?;
    assert_eq!(restore.code, Some(0));
    let report = restore.json()?;
    assert_eq!(detail(&report, "data:path:pi-auth"), "in no snapshot of host test-host: nothing to restore it from");
    assert_eq!(report["summary"]["changed"], 0);
    let only = host.run(&["restore", "--only", "data:path:nope"])?;
    assert_eq!(only.code, Some(2));
    assert!(only.stderr.contains("--only data:path:nope: no such item in this step"), "{}", only.stderr);
    Ok(())
}

#[test]
fn a_service_that_owns_a_path_cannot_be_stopped_without_its_manager() -> TestResult {
    let host = Host::new()?;
    host.seed()?;
    let repo = host.home().join("pi-config");
    fs::create_dir_all(repo.join("services/agents-database"))?;
    fs::create_dir_all(repo.join("systemd"))?;
    fs::write(repo.join("systemd/agents-database.service"), "[Service]\nExecStart=/bin/true\n")?;
    let services = "services:
  - name: agents-database
    purpose: the memory database
    source: services/agents-database
    unit: systemd/agents-database.service
    data_path: ~/pi-config/agents-database/data
    backup: backup
";
    host.write_manifest(services, PATHS, &host.repo().display().to_string(), "26h")?;
    // Its data is captured with the service stopped (the default): without the manager
    // that cannot be done, and nothing is backed up rather than a torn copy.
    let refused = host.run(&["backup", "--json"])?;
    assert_eq!(refused.code, Some(1), "{}{}", refused.stdout, refused.stderr);
    let report = refused.json()?;
    assert!(
        detail(&report, "data:service:agents-database")
            .starts_with("not backed up: cannot stop the services that own it: XDG_RUNTIME_DIR is not set"),
        "{report}"
    );
    assert!(host.restic(&["snapshots", "--json"]).map_or(true, |s| s.trim() == "[]"), "a snapshot was made");
    // Read as it is, then.
    let live = services.replace("    backup: backup\n", "    backup: backup\n    capture: live\n");
    host.write_manifest(&live, PATHS, &host.repo().display().to_string(), "26h")?;
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    lose_the_data(&host)?;
    let run = host.run(&["restore", "--json"])?;
    assert_eq!(run.code, Some(1));
    let report = run.json()?;
    let db = detail(&report, "data:path:agents-database");
    assert!(
        db.starts_with("not restored: cannot stop the services that own it: XDG_RUNTIME_DIR is not set"),
        "{report}"
    );
    assert_eq!(item(&report, "data:service:agents-database")["status"], "failed", "{report}");
    assert!(!host.home().join("pi-config/agents-database").exists(), "restored while its service could not be stopped");
    assert_eq!(item(&report, "data:path:work")["status"], "changed", "paths without a service are restored: {report}");
    Ok(())
}
