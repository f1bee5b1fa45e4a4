//! The cached venv of the Ansible side is made from the pinned requirements, and a
//! second call installs nothing.

// Test code: it runs the venv's programs directly.
#![allow(clippy::disallowed_methods)]
use std::process::Command;

use test_support::TestResult;

#[test]
fn the_venv_runs_the_pinned_ansible_and_is_made_once() -> TestResult {
    let bin = test_support::python::ansible_bin()?;
    let stamp = test_support::python::venv_dir().join("requirements.installed");
    let made = std::fs::metadata(&stamp)?.modified()?;
    let out = Command::new(bin.join("ansible-playbook")).arg("--version").output()?;
    let version = String::from_utf8_lossy(&out.stdout);
    let pinned = std::fs::read_to_string(test_support::python::requirements_file())?;
    let core = pinned.lines().find_map(|l| l.strip_prefix("ansible-core==")).ok_or("no ansible-core pin")?;
    assert!(version.contains(&format!("core {core}")), "{version}");
    assert!(Command::new(bin.join("ansible-lint")).arg("--version").output()?.status.success());
    test_support::python::ansible_bin()?;
    assert_eq!(std::fs::metadata(&stamp)?.modified()?, made, "the second call made the venv again");
    Ok(())
}
