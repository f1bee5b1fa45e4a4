//! The cached Python venv of the Ansible side: ansible-core and ansible-lint from PyPI,
//! at the versions pinned in `ansible/requirements.txt`, in `target/ansible-venv/`.
//!
//! The venv is made once and made again only when the requirements file changes (its
//! bytes are kept in the venv as `requirements.installed`, written last), so a second
//! test run, or the benchmark after the tests, installs nothing, and a venv left half
//! made by a killed run is made again.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::workspace;

/// The pinned requirements, as committed.
pub fn requirements_file() -> PathBuf {
    workspace::root().join("ansible/requirements.txt")
}

/// The folder of the venv (it may not exist yet).
pub fn venv_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace::root().join("target"), PathBuf::from)
        .join("ansible-venv")
}

/// The venv's `bin/` folder, with `ansible-playbook`, `ansible-lint` and their
/// `python`; the venv is made or updated first when needed. Safe to call from many
/// tests of one process: the first one makes it.
pub fn ansible_bin() -> Result<PathBuf, String> {
    static LOCK: OnceLock<Mutex<()>> = OnceLock::new();
    let _one_at_a_time = LOCK.get_or_init(|| Mutex::new(())).lock().unwrap_or_else(|e| e.into_inner());
    ensure_venv(&venv_dir(), &requirements_file()).map(|venv| venv.join("bin"))
}

fn ensure_venv(venv: &Path, requirements: &Path) -> Result<PathBuf, String> {
    let wanted = std::fs::read(requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    let stamp = venv.join("requirements.installed");
    if std::fs::read(&stamp).is_ok_and(|had| had == wanted) && venv.join("bin/ansible-playbook").is_file() {
        return Ok(venv.to_path_buf());
    }
    // Made in place (a venv's scripts name their interpreter by absolute path, so it
    // cannot be built elsewhere and renamed); the stamp, written last, says it is whole.
    let _ = std::fs::remove_dir_all(venv);
    run(Command::new(python()).args(["-m", "venv"]).arg(venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(requirements))?;
    std::fs::write(&stamp, &wanted).map_err(|e| format!("{}: {e}", stamp.display()))?;
    Ok(venv.to_path_buf())
}

/// The Python that makes the venv: `$PI_BOOTSTRAP_PYTHON`, else `python3` on PATH.
fn python() -> String {
    std::env::var("PI_BOOTSTRAP_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let out = command.output().map_err(|e| format!("{shown}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}
