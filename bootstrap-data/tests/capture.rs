//! Consistent capture with a real SQLite database and real restic: written to by
//! several writers in a loop all through the backup, the database restores whole
//! (`PRAGMA integrity_check`), with every transaction committed before the backup
//! started, each writer's rows without a gap, its `user_version` kept, and no journal
//! of another moment beside it; a database in a `live` path is named as one that may
//! come back torn.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;
use support::Host;
use test_support::TestResult;
use test_support::json::{detail, item};

const WRITERS: i64 = 3;

fn paths(capture: &str) -> String {
    format!(
        "paths:\n  - {{name: db, path: ~/pi-config/db, role: a live database, backup: backup, capture: {capture}}}\n"
    )
}

fn open(db: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    Ok(conn)
}

/// The writer threads, each ending with what went wrong, if anything.
type Writers = Vec<std::thread::JoinHandle<Result<(), String>>>;
/// Every commit (writer, n), in the order they returned.
type Commits = Arc<Mutex<Vec<(i64, i64)>>>;

/// Starts `WRITERS` threads that insert rows in a loop, each its own connection and
/// transactions of two statements, recording every commit once it returned.
fn start_writers(db: &Path, stop: &Arc<AtomicBool>) -> (Writers, Commits) {
    let committed = Arc::new(Mutex::new(Vec::new()));
    let handles = (0..WRITERS)
        .map(|writer| {
            let (db, stop, committed) = (db.to_path_buf(), stop.clone(), committed.clone());
            std::thread::spawn(move || -> Result<(), String> {
                let mut conn = open(&db).map_err(|e| e.to_string())?;
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let tx = conn.transaction().map_err(|e| e.to_string())?;
                    tx.execute("INSERT INTO rows (writer, n, payload) VALUES (?1, ?2, randomblob(512))", (writer, n))
                        .map_err(|e| e.to_string())?;
                    tx.execute("UPDATE counts SET total = total + 1 WHERE writer = ?1", [writer])
                        .map_err(|e| e.to_string())?;
                    tx.commit().map_err(|e| e.to_string())?;
                    if let Ok(mut done) = committed.lock() {
                        done.push((writer, n));
                    }
                    n += 1;
                }
                Ok(())
            })
        })
        .collect();
    (handles, committed)
}

#[test]
fn a_database_written_to_all_through_the_backup_restores_whole_with_every_commit_before_it() -> TestResult {
    let host = Host::new()?;
    host.write_manifest("", &paths("sqlite"), &host.repo().display().to_string(), "26h")?;
    let folder = host.home().join("pi-config/db");
    fs::create_dir_all(&folder)?;
    fs::write(folder.join("notes.txt"), "not a database\n")?;
    let db = folder.join("agents.db");
    {
        let conn = open(&db)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(
            "CREATE TABLE rows (id INTEGER PRIMARY KEY, writer INTEGER, n INTEGER, payload BLOB);
             CREATE TABLE counts (writer INTEGER PRIMARY KEY, total INTEGER);
             INSERT INTO counts VALUES (0, 0), (1, 0), (2, 0);
             PRAGMA user_version = 7;",
        )?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (writers, committed) = start_writers(&db, &stop);
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<(i64, i64)> = committed.lock().map(|c| c.clone()).unwrap_or_default();
    let backup = host.run(&["backup", "--json"]);
    // The writers go on a little after the snapshot too.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        let outcome = writer.join().map_err(|_| "a writer panicked")?;
        outcome.map_err(|e| format!("a writer failed while the backup ran: {e}"))?;
    }
    let backup = backup?;
    assert_eq!(backup.code, Some(0), "{}{}", backup.stdout, backup.stderr);
    let report = backup.json()?;
    assert!(detail(&report, "data:path:db").contains("1 SQLite database copied online"), "{report}");
    assert!(!folder.join(".pi-bootstrap-capture").exists(), "the online copy stayed beside the database");
    assert!(before.len() > 10, "the writers wrote too little before the backup: {}", before.len());
    let all = committed.lock().map(|c| c.len()).unwrap_or_default();
    assert!(all > before.len() + 10, "the writers did not write while the backup ran: {} then {all}", before.len());

    // The snapshot holds the copy, never the live database nor its journals.
    let listed = host.restic(&["ls", "--json", "--recursive", "latest", &folder.display().to_string()])?;
    let names: Vec<String> = listed
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["path"].as_str().map(str::to_owned))
        .collect();
    let live = db.display().to_string();
    for journal in ["", "-wal", "-shm", "-journal"] {
        assert!(!names.contains(&format!("{live}{journal}")), "the snapshot holds {live}{journal}: {names:?}");
    }
    assert!(names.iter().any(|n| n.ends_with(".pi-bootstrap-capture/agents.db")), "{names:?}");

    // verify reads the copy back and finds it whole.
    let verify = host.run(&["verify", "--json"])?;
    assert_eq!(verify.code, Some(0), "{}{}", verify.stdout, verify.stderr);
    let verified = verify.json()?;
    assert!(
        detail(&verified, "data:path:db").contains("1 database copied online read back whole (integrity_check ok)"),
        "{verified}"
    );

    // The machine is lost; the restore puts the database back at its own path.
    fs::remove_dir_all(&folder)?;
    let restore = host.run(&["restore", "--json"])?;
    assert_eq!(restore.code, Some(0), "{}{}", restore.stdout, restore.stderr);
    assert_eq!(item(&restore.json()?, "data:path:db")["status"], "changed");
    assert!(db.is_file(), "the database is not back at its own path");
    assert!(!folder.join(".pi-bootstrap-capture").exists());
    for journal in ["-wal", "-shm", "-journal"] {
        assert!(!PathBuf::from(format!("{live}{journal}")).exists(), "a {journal} came back beside the database");
    }
    assert_eq!(fs::read_to_string(folder.join("notes.txt"))?, "not a database\n");

    let back = open(&db)?;
    let check: String = back.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok", "the restored database is damaged");
    let version: i64 = back.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    assert_eq!(version, 7, "PRAGMA user_version did not survive");
    let mut rows = back.prepare("SELECT writer, n FROM rows")?;
    let restored: Vec<(i64, i64)> = rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    let missing: Vec<&(i64, i64)> = before.iter().filter(|c| !restored.contains(c)).collect();
    assert!(missing.is_empty(), "{} transactions committed before the backup are missing: {missing:?}", missing.len());
    for writer in 0..WRITERS {
        let mut ns: Vec<i64> = restored.iter().filter(|(w, _)| *w == writer).map(|(_, n)| *n).collect();
        ns.sort_unstable();
        let total: i64 = back.query_row("SELECT total FROM counts WHERE writer = ?1", [writer], |r| r.get(0))?;
        assert_eq!(ns, (0..ns.len() as i64).collect::<Vec<_>>(), "writer {writer} has a gap: a torn copy");
        assert_eq!(total, ns.len() as i64, "writer {writer}'s count and rows disagree: a torn copy");
    }
    Ok(())
}

#[test]
fn a_database_in_a_live_path_is_named_as_one_that_may_come_back_torn() -> TestResult {
    let host = Host::new()?;
    host.write_manifest("", &paths("live"), &host.repo().display().to_string(), "26h")?;
    let folder = host.home().join("pi-config/db");
    fs::create_dir_all(&folder)?;
    open(&folder.join("live.db"))?.execute_batch("CREATE TABLE t (x INTEGER);")?;
    let backup = host.run(&["backup", "--json"])?;
    assert_eq!(backup.code, Some(0), "{}{}", backup.stdout, backup.stderr);
    let report = backup.json()?;
    let said = detail(&report, "data:path:db");
    assert!(said.contains("may come back torn") && said.contains("capture: sqlite"), "{report}");
    Ok(())
}
