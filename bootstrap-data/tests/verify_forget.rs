//! `bootstrap-data verify` and `forget` with a real restic repository: a good backup
//! verifies (files read back and compared) and is recorded, `--if-due` then does
//! nothing; a damaged pack fails the path that holds it, even when `restic check`
//! reads none of it; a live file whose bytes differ while its size and time say
//! unchanged fails its path; `forget` keeps exactly what `backup.keep` says and the
//! newest snapshot of every path, `--check` forgets nothing; the human output of both.

#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::{Host, PATHS};
use test_support::json::{commands, detail, item};
use test_support::redact::Redactions;
use test_support::{Error, TestResult};

/// The verify policy of these tests: every file of the small test paths, all of the
/// data, every 7 days.
const VERIFY: &str = "  verify:\n    read_data: 100%\n    files: 5\n    every: 7d\n    max_age: 8d\n";

fn verify_host(verify: &str) -> Result<Host, Error> {
    let host = Host::new()?;
    host.write_manifest_with("", PATHS, &host.repo().display().to_string(), "26h", verify)?;
    host.seed()?;
    let backup = host.run(&["backup"])?;
    assert_eq!(backup.code, Some(0), "{}{}", backup.stdout, backup.stderr);
    Ok(host)
}

fn state(host: &Host) -> std::path::PathBuf {
    host.home().join(".local/state/pi-bootstrap")
}

/// The verification's temporary folders left in the state folder (none, ever).
fn leftovers(host: &Host) -> Result<Vec<String>, Error> {
    Ok(fs::read_dir(state(host))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("verify.") && n != "verify.json")
        .collect())
}

#[test]
fn a_good_backup_verifies_is_recorded_and_is_not_due_again() -> TestResult {
    let host = verify_host(VERIFY)?;
    let run = host.run(&["verify", "--json"])?;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let report = run.json()?;
    assert_eq!(item(&report, "data:repository")["status"], "ok", "{report}");
    assert!(detail(&report, "data:repository").contains("read 100.0% of data packs, no errors found"), "{report}");
    for (id, files) in [
        ("data:path:agents-database", 2),
        ("data:path:work", 2),
        ("data:path:pi-auth", 1),
        ("data:path:telegram-config", 1),
    ] {
        assert_eq!(item(&report, id)["status"], "ok", "{id}: {report}");
        let want = format!("read back {files} file{} from snapshot", if files == 1 { "" } else { "s" });
        assert!(detail(&report, id).starts_with(&want), "{id}: {report}");
        assert!(detail(&report, id).ends_with("(none changed since the snapshot)"), "{id}: {report}");
    }
    // An empty folder, and a folder whose only file (the password) is never backed up.
    assert_eq!(item(&report, "data:path:empty")["status"], "skipped", "{report}");
    assert!(detail(&report, "data:path:bootstrap-config").contains("holds no file of it"), "{report}");
    assert_eq!(item(&report, "data:verify")["status"], "ok", "{report}");
    let ran = commands(&report);
    assert!(ran.iter().any(|c| c.starts_with("restic check --read-data-subset=100%")), "{ran:?}");
    assert_eq!(ran.iter().filter(|c| c.starts_with("restic restore")).count(), 1, "one restore per snapshot: {ran:?}");
    assert!(leftovers(&host)?.is_empty(), "{:?}", leftovers(&host)?);

    let record_file = state(&host).join("verify.json");
    let recorded: serde_json::Value = serde_json::from_slice(&fs::read(&record_file)?)?;
    assert_eq!(recorded["ok"], true, "{recorded}");
    assert_eq!(recorded["files_compared"], 6, "{recorded}");
    assert_eq!(recorded["snapshots"].as_array().map(Vec::len), Some(1), "{recorded}");
    assert_eq!(recorded["failed"], serde_json::json!([]), "{recorded}");
    assert_eq!(fs::metadata(&record_file)?.permissions().mode() & 0o777, 0o600);
    assert!(!String::from_utf8_lossy(&fs::read(&record_file)?).contains(support::CANARY), "the password leaked");
    let before = fs::read(&record_file)?;

    // Not due: nothing is read, nothing is written.
    let due = host.run(&["verify", "--if-due", "--json"])?;
    assert_eq!(due.code, Some(0), "{}{}", due.stdout, due.stderr);
    let report = due.json()?;
    assert_eq!(report["items"].as_array().map(Vec::len), Some(1), "{report}");
    assert_eq!(item(&report, "data:verify")["status"], "ok");
    let said = detail(&report, "data:verify");
    assert!(said.starts_with("last verified ") && said.contains("; next due in 6d 23h"), "{said}");
    assert_eq!(commands(&report), Vec::<String>::new());
    assert_eq!(fs::read(&record_file)?, before);

    // --check says what it would read, and reads and records nothing.
    let check = host.run(&["verify", "--check", "--json"])?;
    assert_eq!(check.code, Some(1), "{}{}", check.stdout, check.stderr);
    let report = check.json()?;
    assert_eq!(item(&report, "data:repository")["status"], "would_change", "{report}");
    assert!(detail(&report, "data:path:work").starts_with("would read back 2 files from snapshot"), "{report}");
    assert_eq!(commands(&report), Vec::<String>::new());
    assert_eq!(fs::read(&record_file)?, before);

    // Without `backup.verify`, --if-due does nothing, and says so.
    host.write_manifest("", PATHS, &host.repo().display().to_string(), "26h")?;
    let undeclared = host.run(&["verify", "--if-due", "--json"])?;
    assert_eq!(undeclared.code, Some(0));
    assert!(detail(&undeclared.json()?, "data:verify").starts_with("no `backup.verify` in the manifest"));
    Ok(())
}

/// Copies a repository (folders and files) to `to`, writable.
fn copy_tree(from: &Path, to: &Path) -> TestResult {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), &dest)?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

#[test]
fn a_damaged_pack_fails_the_path_it_holds() -> TestResult {
    let host = verify_host("")?;
    // A second snapshot whose only new data is one file: it goes into a pack of its own.
    let blob = host.home().join("pi-config/agents-database/data/blob.bin");
    let bytes: Vec<u8> = (0u32..65_536).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    fs::write(&blob, &bytes)?;
    let again = host.run(&["backup"])?;
    assert_eq!(again.code, Some(0), "{}{}", again.stdout, again.stderr);
    let packs = host.restic(&["list", "packs", "--no-lock"])?;
    let pack = packs
        .lines()
        .map(str::trim)
        .find(|p| host.restic(&["find", "--no-lock", "--pack", p]).is_ok_and(|found| found.contains("blob.bin")))
        .ok_or("no pack holds blob.bin")?
        .to_owned();

    // A copy of the repository, with bytes of that pack flipped.
    let damaged = host.dir.path().join("damaged-repo");
    copy_tree(&host.repo(), &damaged)?;
    let file = damaged.join("data").join(&pack[..2]).join(&pack);
    let mut content = fs::read(&file)?;
    for b in content.iter_mut().take(64) {
        *b ^= 0xff;
    }
    fs::write(&file, content)?;
    // restic check reads only the packs whose id starts with another byte than this one:
    // the spot check alone must find the damage.
    let first = u8::from_str_radix(&pack[..2], 16)?;
    let subset = format!("{}/256", (u32::from(first) + 1) % 256 + 1);
    let repository = damaged.display().to_string();
    let policy = format!("  verify:\n    read_data: {subset}\n    max_age: 8d\n");
    host.write_manifest_with("", PATHS, &repository, "26h", &policy)?;

    let run = host.run(&["verify", "--json"])?;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let report = run.json()?;
    assert_eq!(item(&report, "data:repository")["status"], "ok", "restic check read no damaged pack: {report}");
    assert_eq!(item(&report, "data:path:agents-database")["status"], "failed", "{report}");
    let said = detail(&report, "data:path:agents-database");
    assert!(said.contains("~/pi-config/agents-database/data/blob.bin (restic could not restore it"), "{said}");
    assert_eq!(item(&report, "data:path:work")["status"], "ok", "{report}");
    assert!(leftovers(&host)?.is_empty(), "{:?}", leftovers(&host)?);
    let recorded: serde_json::Value = serde_json::from_slice(&fs::read(state(&host).join("verify.json"))?)?;
    assert_eq!(recorded["ok"], false);
    assert_eq!(recorded["failed"][0]["id"], "data:path:agents-database", "{recorded}");
    assert!(recorded["failed"][0]["detail"].as_str().unwrap_or_default().contains("blob.bin"), "{recorded}");

    // restic check, when it reads the pack, says so in its own words.
    let policy = "  verify:\n    read_data: 100%\n    max_age: 8d\n";
    host.write_manifest_with("", PATHS, &repository, "26h", policy)?;
    let run = host.run(&["verify", "--json", "--only", "data:repository"])?;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let report = run.json()?;
    assert_eq!(item(&report, "data:repository")["status"], "failed", "{report}");
    assert!(detail(&report, "data:repository").contains("Pack ID does not match"), "{report}");

    // The original repository is still whole.
    host.write_manifest_with("", PATHS, &host.repo().display().to_string(), "26h", policy)?;
    let good = host.run(&["verify", "--json"])?;
    assert_eq!(good.code, Some(0), "{}{}", good.stdout, good.stderr);
    Ok(())
}

#[test]
fn a_live_file_that_differs_while_unchanged_since_the_snapshot_fails_its_path() -> TestResult {
    let host = verify_host(VERIFY)?;
    let h = host.home();
    // Other bytes of the same size, with the time it had: unchanged by every sign but
    // its bytes.
    let task = h.join("pi-config/work/tasks/t1.json");
    let mtime = fs::metadata(&task)?.modified()?;
    fs::write(&task, "{\"phase\": 9}\n")?;
    fs::File::options().write(true).open(&task)?.set_modified(mtime)?;
    // A file that really changed is not compared.
    fs::write(h.join("pi-config/agents-database/README"), "the agents database, edited since\n")?;

    let run = host.run(&["verify", "--json"])?;
    assert_eq!(run.code, Some(1), "{}{}", run.stdout, run.stderr);
    let report = run.json()?;
    assert_eq!(item(&report, "data:path:work")["status"], "failed", "{report}");
    let said = detail(&report, "data:path:work");
    assert!(said.starts_with("1 of 2 files read back from snapshot"), "{said}");
    assert!(said.contains("~/pi-config/work/tasks/t1.json (its bytes differ from the snapshot's"), "{said}");
    assert_eq!(item(&report, "data:path:agents-database")["status"], "ok", "{report}");
    let said = detail(&report, "data:path:agents-database");
    assert!(said.starts_with("read back 1 file from snapshot"), "{said}");
    assert!(said.ends_with("(1 file changed since the snapshot, not compared)"), "{said}");
    assert_eq!(item(&report, "data:repository")["status"], "ok", "{report}");
    assert!(leftovers(&host)?.is_empty());
    Ok(())
}

/// The paths of the forget tests: `old` is only in the oldest snapshots.
const FORGET_PATHS: &str = "paths:
  - {name: work, path: ~/work, role: work, backup: backup}
  - {name: old, path: ~/old, role: gone since, backup: backup}
";

/// Snapshots of test-host at these times (UTC), of `~/work`, and of `~/old` too for
/// the first two; returns their short ids in this order.
fn snapshots_at(host: &Host, times: &[&str]) -> Result<Vec<String>, Error> {
    let h = host.home();
    fs::create_dir_all(h.join("work"))?;
    fs::create_dir_all(h.join("old"))?;
    fs::write(h.join("work/notes.txt"), "notes\n")?;
    fs::write(h.join("old/archive.txt"), "archive\n")?;
    host.restic(&["init"])?;
    let (work, old) = (h.join("work").display().to_string(), h.join("old").display().to_string());
    for (i, time) in times.iter().enumerate() {
        let mut args = vec!["backup", "-q", "--time", time, "--host", "test-host", "--tag", "pi-bootstrap", &work];
        if i < 2 {
            args.push(&old);
        }
        host.restic(&args)?;
    }
    let listed: Vec<serde_json::Value> = serde_json::from_str(&host.restic(&["snapshots", "--json", "--no-lock"])?)?;
    let mut by_time: Vec<(String, String)> = listed
        .iter()
        .map(|s| {
            (s["time"].as_str().unwrap_or_default().to_owned(), s["short_id"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    by_time.sort();
    Ok(by_time.into_iter().map(|(_, id)| id).collect())
}

fn left(host: &Host) -> Result<BTreeSet<String>, Error> {
    let listed: Vec<serde_json::Value> = serde_json::from_str(&host.restic(&["snapshots", "--json", "--no-lock"])?)?;
    Ok(listed.iter().filter_map(|s| s["short_id"].as_str()).map(str::to_owned).collect())
}

/// Three ISO weeks: 2026-01-05 and -12 and -19 are Mondays.
const TIMES: [&str; 7] = [
    "2026-01-05 10:00:00",
    "2026-01-06 10:00:00",
    "2026-01-12 10:00:00",
    "2026-01-13 09:00:00",
    "2026-01-13 18:00:00",
    "2026-01-19 10:00:00",
    "2026-01-20 10:00:00",
];

fn forget_host() -> Result<(Host, Vec<String>), Error> {
    let host = Host::new()?;
    let keep = "  keep:\n    daily: 2\n    weekly: 2\n";
    host.write_manifest_with("", FORGET_PATHS, &host.repo().display().to_string(), "26h", keep)?;
    let ids = snapshots_at(&host, &TIMES)?;
    assert_eq!(ids.len(), 7);
    Ok((host, ids))
}

#[test]
fn forget_keeps_what_the_policy_says_and_the_newest_snapshot_of_every_path() -> TestResult {
    let (host, s) = forget_host()?;
    let all: BTreeSet<String> = s.iter().cloned().collect();
    // daily 2: the 20th and the 19th; weekly 2: the week of the 19th (the 20th) and of
    // the 12th (the 13th at 18:00). The newest of ~/old, the 6th, stays too.
    let kept: BTreeSet<String> = [&s[6], &s[5], &s[4], &s[1]].into_iter().cloned().collect();
    let gone: Vec<String> = [&s[3], &s[2], &s[0]].into_iter().map(|id| format!("data:snapshot:{id}")).collect();

    let check = host.run(&["forget", "--check", "--json"])?;
    assert_eq!(check.code, Some(1), "{}{}", check.stdout, check.stderr);
    let report = check.json()?;
    let would: Vec<String> = report["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"] == "would_change")
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(would, gone, "{report}");
    assert_eq!(left(&host)?, all, "--check forgot something");
    assert_eq!(commands(&report), Vec::<String>::new());

    let run = host.run(&["forget", "--json"])?;
    assert_eq!(run.code, Some(0), "{}{}", run.stdout, run.stderr);
    let report = run.json()?;
    let changed: Vec<String> = report["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["status"] == "changed")
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(changed, gone, "{report}");
    assert_eq!(left(&host)?, kept, "{report}");
    let repo = detail(&report, "data:repository");
    assert!(repo.contains(&format!("{} (newest of ~/old)", s[1])), "{repo}");
    assert!(repo.contains("keeps 4 of 7 snapshots of host test-host (keep daily 2, weekly 2)"), "{repo}");
    assert!(repo.ends_with("forgot 3 snapshots and pruned"), "{repo}");
    assert!(detail(&report, &gone[0]).starts_with("forgotten: of 2026-01-13 09:00:00 UTC ("), "{report}");
    assert!(commands(&report).iter().any(|c| c.starts_with("restic forget --prune")), "{report}");

    // Again: nothing to forget, though the policy alone would still drop the 6th.
    let again = host.run(&["forget", "--json"])?;
    assert_eq!(again.code, Some(0));
    let report = again.json()?;
    assert!(detail(&report, "data:repository").starts_with("nothing to forget: keeps 4 of 4"), "{report}");
    assert_eq!(commands(&report), Vec::<String>::new());
    assert_eq!(left(&host)?, kept);

    // No policy: nothing is forgotten, and restic is not asked.
    host.write_manifest("", FORGET_PATHS, &host.repo().display().to_string(), "26h")?;
    let none = host.run(&["forget", "--json"])?;
    assert_eq!(none.code, Some(0));
    assert!(detail(&none.json()?, "data:repository").starts_with("no `backup.keep` in the manifest"));
    assert_eq!(left(&host)?, kept);
    Ok(())
}

/// What changes from run to run: the temporary folder, snapshot ids, ages, and times
/// unless the snapshots were made at given times (`forget`).
fn redactions(host: &Host, times: bool) -> Redactions {
    let redactions = host.redactions().snapshot_ids().ages();
    if times { redactions.times() } else { redactions }
}

#[test]
fn human_output_of_verify_and_forget() -> TestResult {
    let host = verify_host(VERIFY)?;
    let show = |host: &Host, args: &[&str], times: bool| -> Result<String, Error> {
        let run = host.run(args)?;
        Ok(redactions(host, times).apply(format!("exit {:?}\n{}{}", run.code, run.stdout, run.stderr)))
    };
    let verify = show(&host, &["verify"], true)?;
    let not_due = show(&host, &["verify", "--if-due"], true)?;
    let verify_check = show(&host, &["verify", "--check"], true)?;
    insta::assert_snapshot!("verify", verify);
    insta::assert_snapshot!("verify_not_due", not_due);
    insta::assert_snapshot!("verify_check", verify_check);

    let (host, _) = forget_host()?;
    let forget_check = show(&host, &["forget", "--check"], false)?;
    let forget = show(&host, &["forget"], false)?;
    insta::assert_snapshot!("forget_check", forget_check);
    insta::assert_snapshot!("forget", forget);
    Ok(())
}
