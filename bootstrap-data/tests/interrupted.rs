//! A data restore killed while it works converges with one rerun, with real restic:
//! killed once restic restored a path into its staging folder (before the folder was
//! renamed into place), it leaves that staging folder, which the audit's scan lists as
//! a dead run's; the rerun removes it, restores the path and says so; a further run
//! changes nothing. The same with several paths restored by one restic restore: its
//! one staging folder, beside the first of them, is what is left.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;

use common::manifest;
use common::state::StateDir;
use support::{Host, differences, files, tree};
use test_support::TestResult;
use test_support::json::item;

#[test]
fn a_restore_killed_after_restic_wrote_its_staging_folder_converges_with_one_rerun() -> TestResult {
    let mut host = Host::new()?;
    host.seed()?;
    let h = host.home();
    let work = h.join("pi-config/work");
    let before = tree(&work)?;
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    fs::remove_dir_all(&work)?;

    host.env = vec![("PI_BOOTSTRAP_CRASH_AT".into(), "after-restic-restore".into())];
    let killed = host.run(&["restore", "--only", "data:path:work"])?;
    assert_eq!(killed.code, None, "the restore was to die at the crash point: {}{}", killed.stdout, killed.stderr);
    assert!(!work.exists(), "a path half restored is in place");
    let staged: Vec<String> = fs::read_dir(h.join("pi-config"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pi-bootstrap-restore."))
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    // What the audit's scan sees: a staging folder of a dead run.
    let loaded = manifest::load_str(&host.manifest(), &fs::read_to_string(host.manifest())?, &h, &|_| None)?;
    let leftovers = common::staging::leftovers(&loaded, &StateDir::new(&h), &h);
    assert_eq!(leftovers, [h.join("pi-config").join(&staged[0])]);

    host.env.clear();
    let rerun = host.run(&["restore", "--json"])?;
    assert_eq!(rerun.code, Some(0), "{}{}", rerun.stdout, rerun.stderr);
    let report = rerun.json()?;
    assert_eq!(item(&report, "data:path:work")["status"], "changed", "{report}");
    let swept = item(&report, "staging:leftovers");
    assert_eq!(swept["status"], "changed", "{report}");
    assert!(swept["detail"].as_str().unwrap_or_default().contains(&staged[0]), "{report}");
    let mut want = before;
    want.retain(|path, _| !path.starts_with("cache"));
    assert_eq!(tree(&work)?, want, "the data did not come back identical");
    assert!(common::staging::leftovers(&loaded, &StateDir::new(&h), &h).is_empty());

    let snapshot = files(&h)?;
    let again = host.run(&["restore", "--json"])?;
    assert_eq!(again.code, Some(0));
    let report = again.json()?;
    assert_eq!(report["summary"]["changed"], 0, "{report}");
    assert_eq!(differences(&snapshot, &files(&h)?), "", "a further run changed the host");
    Ok(())
}

#[test]
fn a_restore_of_several_paths_killed_after_its_one_restic_restore_converges_with_one_rerun() -> TestResult {
    let mut host = Host::new()?;
    host.seed()?;
    let h = host.home();
    let (work, auth) = (h.join("pi-config/work"), h.join(".pi/agent/auth.json"));
    let (work_before, auth_before) = (tree(&work)?, fs::read(&auth)?);
    assert_eq!(host.run(&["backup"])?.code, Some(0));
    fs::remove_dir_all(&work)?;
    fs::remove_file(&auth)?;

    // Both paths come from one restic restore, into a staging folder beside the first
    // (outermost first: ~/pi-config/work); killed before either is in place.
    host.env = vec![("PI_BOOTSTRAP_CRASH_AT".into(), "after-restic-restore".into())];
    let killed = host.run(&["restore", "--only", "data:path:work", "--only", "data:path:pi-auth"])?;
    assert_eq!(killed.code, None, "the restore was to die at the crash point: {}{}", killed.stdout, killed.stderr);
    assert!(!work.exists() && !auth.exists(), "a path half restored is in place");
    let loaded = manifest::load_str(&host.manifest(), &fs::read_to_string(host.manifest())?, &h, &|_| None)?;
    let leftovers = common::staging::leftovers(&loaded, &StateDir::new(&h), &h);
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    assert_eq!(leftovers[0].parent(), Some(h.join("pi-config").as_path()), "{leftovers:?}");

    host.env.clear();
    let rerun = host.run(&["restore", "--json"])?;
    assert_eq!(rerun.code, Some(0), "{}{}", rerun.stdout, rerun.stderr);
    let report = rerun.json()?;
    assert_eq!(item(&report, "data:path:work")["status"], "changed", "{report}");
    assert_eq!(item(&report, "data:path:pi-auth")["status"], "changed", "{report}");
    assert_eq!(item(&report, "staging:leftovers")["status"], "changed", "{report}");
    let mut want = work_before;
    want.retain(|path, _| !path.starts_with("cache"));
    assert_eq!(tree(&work)?, want, "the data did not come back identical");
    assert_eq!(fs::read(&auth)?, auth_before);
    assert!(common::staging::leftovers(&loaded, &StateDir::new(&h), &h).is_empty());
    Ok(())
}
