//! The local record of the backup, with a real restic repository: `status` after a
//! backup answers from it and runs no restic (a wrapper on PATH records every call, and
//! a PATH without restic answers the same); `--deep` asks the repository; a record of
//! another repository or host name, an unreadable one, or one that does not know a
//! path is not trusted; a snapshot made outside pi-bootstrap shows only with `--deep`
//! until a step that reads the repository (here `verify`) writes the record again.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;

use support::{Host, PATHS};
use test_support::json::{detail, item};
use test_support::redact::Redactions;
use test_support::sandbox::CallLog;
use test_support::{Error, TestResult};

/// Every `backup`-class item of the test host.
const PATH_IDS: &[&str] = &[
    "data:path:agents-database",
    "data:path:work",
    "data:path:empty",
    "data:path:pi-auth",
    "data:path:telegram-config",
    "data:path:bootstrap-config",
];

fn record(host: &Host) -> Result<serde_json::Value, Error> {
    let file = host.home().join(".local/state/pi-bootstrap/backup-record.json");
    Ok(serde_json::from_str(&fs::read_to_string(file)?)?)
}

/// Runs `status` (with `args`) with the wrapper on PATH: its report and the restic calls.
fn status(host: &mut Host, wrapper: &CallLog, args: &[&str]) -> Result<(serde_json::Value, Vec<String>), Error> {
    host.env = vec![("PATH".into(), wrapper.path()?.to_string_lossy().into_owned())];
    let run = host.run(&[&["status", "--json"][..], args].concat())?;
    host.env.clear();
    let report = run.json()?;
    assert_eq!(report["summary"]["failed"], 0, "{report:#}");
    // Each call's arguments (the log names the program first).
    let calls = wrapper.take().iter().map(|c| c.strip_prefix("restic ").unwrap_or(c).to_owned()).collect();
    Ok((report, calls))
}

#[test]
fn status_after_a_backup_runs_no_restic_and_deep_asks_the_repository() -> TestResult {
    let mut host = Host::new()?;
    host.seed()?;
    let wrapper = CallLog::install_in(host.dir.path(), &["restic"])?;
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    let snapshots: serde_json::Value = serde_json::from_str(&host.restic(&["snapshots", "--json"])?)?;
    let (id, short) = (snapshots[0]["id"].as_str().unwrap_or("?"), snapshots[0]["short_id"].as_str().unwrap_or("?"));

    // The record: this host, this repository, the snapshot restic made, every path.
    let written = record(&host)?;
    assert_eq!(written["by"], "backup");
    assert_eq!(written["host"], "test-host");
    assert_eq!(written["repository"], host.repo().display().to_string());
    assert_eq!(written["snapshots"], 1);
    assert_eq!(written["newest"]["id"], id);
    assert_eq!(written["newest"]["time"], snapshots[0]["time"], "the snapshot's own time, as restic has it");
    let work = host.home().join("pi-config/work").display().to_string();
    assert_eq!(written["paths"][&work]["newest"]["short_id"], short, "{written:#}");

    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert_eq!(calls, Vec::<String>::new(), "status after a backup ran restic");
    assert_eq!(report["summary"]["ok"], 7, "{report:#}");
    let repository = detail(&report, "data:repository");
    assert!(repository.starts_with(&format!("1 snapshot of host test-host, the newest {short} of ")), "{repository}");
    assert!(repository.contains("; from the local record of "), "{repository}");
    assert!(repository.ends_with(", which bootstrap-data backup wrote (--deep asks the repository)"), "{repository}");
    for id in PATH_IDS {
        let it = detail(&report, id);
        assert!(it.starts_with(&format!("snapshot {short} of ")) && it.contains("; from the local record of "), "{it}");
    }

    // Without restic on PATH at all, the same answer.
    host.env = vec![("PATH".into(), host.dir.path().join("no-programs-here").display().to_string())];
    let bare = host.run(&["status", "--json"])?;
    host.env.clear();
    assert_eq!(bare.code, Some(0), "{}{}", bare.stdout, bare.stderr);
    let aged = |items: &serde_json::Value| Redactions::new().ages().apply(items.to_string());
    assert_eq!(aged(&bare.json()?["items"]), aged(&report["items"]), "the answer depends on restic being installed");

    // --deep asks the repository: one listing, read-only.
    let (deep, calls) = status(&mut host, &wrapper, &["--deep"])?;
    assert_eq!(calls, ["snapshots --no-cache --json --no-lock"], "--deep did not ask the repository once");
    assert_eq!(deep["summary"]["ok"], 7, "{deep:#}");
    assert!(detail(&deep, "data:repository").ends_with("; asked the repository (--deep)"), "{deep:#}");
    assert!(detail(&deep, "data:path:work").ends_with("; asked the repository"), "{deep:#}");
    Ok(())
}

#[test]
fn a_record_of_another_repository_or_host_or_one_that_does_not_read_is_not_trusted() -> TestResult {
    let mut host = Host::new()?;
    host.seed()?;
    let wrapper = CallLog::install_in(host.dir.path(), &["restic"])?;
    assert_eq!(host.run(&["backup"])?.code, Some(0));

    // The same snapshots in another repository (a copy): the record is not of it.
    let copy = host.dir.path().join("restic-copy");
    let copied = std::process::Command::new("cp").arg("-a").arg(host.repo()).arg(&copy).status()?;
    assert!(copied.success());
    host.write_manifest("", PATHS, &copy.display().to_string(), "26h")?;
    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(report["summary"]["ok"], 7, "{report:#}");
    assert!(
        detail(&report, "data:repository")
            .ends_with("; asked the repository (the local record is of another repository)"),
        "{report:#}"
    );

    // Another host name: the record is not of it either.
    host.write_manifest("", PATHS, &host.repo().display().to_string(), "26h")?;
    let manifest = fs::read_to_string(host.manifest())?.replace("host: test-host", "host: renamed-host");
    fs::write(host.manifest(), manifest)?;
    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(item(&report, "data:path:work")["status"], "drift", "{report:#}");
    assert_eq!(detail(&report, "data:path:work"), "in no snapshot of host renamed-host; asked the repository");
    let repository = detail(&report, "data:repository");
    assert!(repository.contains("no snapshot of host renamed-host (it has snapshots of test-host"), "{repository}");
    assert!(repository.ends_with("(the local record is of another host name)"), "{repository}");

    // A record that does not read as one: asked, and said so.
    host.write_manifest("", PATHS, &host.repo().display().to_string(), "26h")?;
    let file = host.home().join(".local/state/pi-bootstrap/backup-record.json");
    fs::write(&file, "{ half a record")?;
    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(report["summary"]["ok"], 7, "{report:#}");
    assert!(
        detail(&report, "data:repository").contains("; asked the repository (the local record cannot be read: "),
        "{report:#}"
    );
    assert!(detail(&report, "data:repository").contains("backup-record.json is corrupt"), "{report:#}");
    assert_eq!(fs::read_to_string(&file)?, "{ half a record", "status wrote the record");
    Ok(())
}

/// restic's `--time` format, in the UTC the test's restic runs in.
const LONG_AGO: &str = "2020-01-01 00:00:00";

#[test]
fn a_snapshot_made_outside_the_record_shows_only_with_deep() -> TestResult {
    let mut host = Host::new()?;
    host.seed()?;
    let wrapper = CallLog::install_in(host.dir.path(), &["restic"])?;
    let h = host.home();
    // A snapshot of long ago, made by restic itself, then a restore that reads it (the
    // data here is the same: nothing comes back, every path is settled).
    host.restic(&["init"])?;
    let data: Vec<String> = [
        "pi-config/agents-database",
        "pi-config/work",
        "pi-config/empty",
        ".pi/agent/auth.json",
        ".config/pi-telegram",
    ]
    .iter()
    .map(|rel| h.join(rel).display().to_string())
    .collect();
    let mut args = vec!["backup", "--host", "test-host", "--tag", "pi-bootstrap", "--time", LONG_AGO];
    args.extend(data.iter().map(String::as_str));
    host.restic(&args)?;
    let restore = host.run(&["restore", "--json"])?;
    assert_eq!(restore.code, Some(0), "{}{}", restore.stdout, restore.stderr);
    assert_eq!(record(&host)?["by"], "restore");

    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(item(&report, "data:path:work")["status"], "drift", "{report:#}");
    let stale = detail(&report, "data:path:work");
    assert!(stale.starts_with("stale: the newest, snapshot "), "{stale}");
    assert!(
        stale.contains("; from the local record of ")
            && stale.ends_with("(bootstrap-data status --deep asks the repository)"),
        "{stale}"
    );

    // A backup made outside pi-bootstrap: the record does not know it.
    host.restic(&["backup", "--host", "test-host", &data[1]])?;
    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(item(&report, "data:path:work")["status"], "drift", "the record cannot know it: {report:#}");
    let (deep, calls) = status(&mut host, &wrapper, &["--deep"])?;
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(item(&deep, "data:path:work")["status"], "ok", "{deep:#}");
    assert_eq!(item(&deep, "data:path:pi-auth")["status"], "drift", "{deep:#}");
    assert!(detail(&deep, "data:repository").starts_with("2 snapshots of host test-host"), "{deep:#}");

    // A step that reads the repository writes the record again (verify, here of one
    // path): status then knows the new snapshot without restic.
    let verify = host.run(&["verify", "--only", "data:path:work"])?;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    assert_eq!(record(&host)?["by"], "verify");
    let (report, calls) = status(&mut host, &wrapper, &[])?;
    assert!(calls.is_empty(), "{calls:?}");
    assert_eq!(item(&report, "data:path:work")["status"], "ok", "{report:#}");
    assert_eq!(item(&report, "data:path:pi-auth")["status"], "drift", "{report:#}");
    assert!(detail(&report, "data:repository").starts_with("2 snapshots of host test-host"), "{report:#}");
    Ok(())
}
