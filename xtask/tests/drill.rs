//! The restore drill end to end, as a user runs it: `cargo xtask drill` on the example
//! host, with a real private `systemd --user`: an old host lives, is backed up and lost
//! whole; a new one on a brand-new HOME is restored in the documented order and must
//! hold every byte of the old one's durable data, once from the restore kit out of the
//! backup with no toolchain on PATH (the kit the current build's), once from a clone
//! with cargo. It must pass, and leave nothing behind: no process of the sandbox, no
//! sandbox folder, nothing in the machine's `/run`.

#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_drill_restores_the_example_host_and_leaves_nothing_behind() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?;
    let run_before =
        std::fs::read_dir("/run/systemd").map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()).ok();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask")).arg("drill").current_dir(root).output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the drill failed:\n{stdout}\n{stderr}");

    let sandbox = stdout
        .lines()
        .find_map(|l| l.strip_prefix("drill: sandbox "))
        .and_then(|l| l.split_whitespace().next())
        .ok_or("the drill did not say where its sandbox was")?;
    assert!(!Path::new(sandbox).exists(), "the sandbox folder {sandbox} was left behind");
    assert!(stdout.contains("systemd --user running after"), "{stdout}");
    assert!(stdout.contains("== the machine is lost"), "the drill did not lose the old host:\n{stdout}");
    // The services that write to data waited on the new host, and the restore started them.
    assert!(stdout.contains("waits for its data"), "{stdout}");
    assert!(stdout.contains("enabled and started agents-database.service: its data is back"), "{stdout}");
    assert!(
        stdout.contains("~/.bashrc") && stdout.contains("its managed blocks path, pitmux applied on top"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("entries identical (kind, mode, content)").count(), 2, "both paths: {stdout}");
    for step in ["bootstrap-prereqs", "bootstrap-pi-config", "bootstrap-services"] {
        assert_eq!(
            stdout.matches(&format!("{step}: changed=0 failed=0 commands=0")).count(),
            2,
            "{step} changed something on its second run:\n{stdout}"
        );
    }
    assert_eq!(stdout.matches("pi-config-audit: ok=").count(), 2, "{stdout}");
    // The kit path: no toolchain, the kit out of the backup the current build's.
    assert!(stdout.contains("no toolchain: `command -v cargo` and `command -v rustc` fail"), "{stdout}");
    assert!(stdout.contains("the kit in the backup is the current build's (sha256 "), "{stdout}");
    assert!(stdout.contains("== recovery time") && stdout.contains(", the kit path: no toolchain"), "{stdout}");
    assert!(stdout.contains(", the cargo path: cargo xtask install from a clone"), "{stdout}");
    assert!(stdout.contains("drill: ok; nothing of the sandbox is left running, its folder is removed"), "{stdout}");
    let run_after =
        std::fs::read_dir("/run/systemd").map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()).ok();
    assert_eq!(run_before, run_after, "the drill changed the machine's /run/systemd");
    Ok(())
}
