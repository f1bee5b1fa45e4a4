//! `cargo xtask install`: builds the step binaries (the profile `cargo xtask restore`
//! uses, see [`restore::build`]) and copies every step binary, `pi-config-audit` and
//! `pi-bootstrap-restore` (which runs the steps beside it) into
//! `~/.local/lib/pi-bootstrap/bin/` (`common::install::bin_dir`, HOME from the
//! environment), where a `cargo clean` does not reach them and the backup timer runs
//! them from. Each copy is atomic (a temp file in the same folder, mode 0755, then a
//! rename, so a running binary is never half-written); a binary whose bytes are there
//! already is left alone.

use std::path::{Path, PathBuf};

use fs_err as fs;

use common::fsx;
use common::report::tilde;
use common::state::home_from_env;
use xshell::Shell;

use crate::restore::{self, STEPS};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The binaries that are installed: every step, the audit, and the restore chain.
pub fn binaries() -> Vec<&'static str> {
    STEPS.iter().map(|s| s.bin).chain(["pi-config-audit", bootstrap_restore::NAME]).collect()
}

/// What happened to one binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was not there, or differed, and was copied.
    Installed,
    /// It is not there, or differs (`--check`: nothing was copied).
    WouldInstall,
    /// The same bytes (and mode) were there already.
    Unchanged,
}

/// One installed binary.
#[derive(Debug, Clone)]
pub struct Installed {
    pub name: &'static str,
    pub outcome: Outcome,
}

/// Copies every binary of [`binaries`] from `from` into `home`'s bin folder (with
/// `check`, only says which it would copy): the folder and what happened to each.
pub fn install_binaries(from: &Path, home: &Path, check: bool) -> Result<(PathBuf, Vec<Installed>)> {
    let dir = common::install::bin_dir(home);
    // Every binary is read before any is copied: a missing one installs nothing.
    let mut built = Vec::new();
    for name in binaries() {
        let source = from.join(name);
        // The error names the file already.
        let bytes = fs::read(&source).map_err(|e| format!("{e}: build it first (cargo build --workspace --bins)"))?;
        built.push((name, bytes));
    }
    let mut done = Vec::new();
    for (name, bytes) in built {
        let target = dir.join(name);
        let mode = fsx::mode_of(&target).map_err(|e| format!("cannot read the mode of {}: {e}", target.display()))?;
        let same = fs::read(&target).is_ok_and(|now| now == bytes) && mode.is_some_and(|m| m == 0o755);
        if !same && !check {
            fsx::write_atomic(&target, &bytes, Some(0o755))
                .map_err(|e| format!("cannot install {} ({e})", target.display()))?;
        }
        let outcome = match (same, check) {
            (true, _) => Outcome::Unchanged,
            (false, true) => Outcome::WouldInstall,
            (false, false) => Outcome::Installed,
        };
        done.push(Installed { name, outcome });
    }
    Ok((dir, done))
}

/// One line per binary: what was done.
pub fn describe(done: &[Installed]) -> String {
    done.iter()
        .map(|i| {
            let what = match i.outcome {
                Outcome::Installed => "installed",
                Outcome::WouldInstall => "would install",
                Outcome::Unchanged => "unchanged",
            };
            format!("   {what:<14} {}\n", i.name)
        })
        .collect()
}

/// Builds the binaries and installs them for the user of `$HOME` (with `check`, only
/// says what it would install); the lines go to stdout (`to_stderr`: to stderr, when
/// stdout carries JSON). Returns the bin folder.
pub fn build_and_install(sh: &Shell, root: &Path, check: bool, to_stderr: bool) -> Result<PathBuf> {
    let home = home_from_env()?;
    restore::build(sh)?;
    let (dir, done) = install_binaries(&restore::bin_dir(root), &home, check)?;
    let changed = done.iter().filter(|i| i.outcome != Outcome::Unchanged).count();
    let verb = if check { "would install" } else { "installed" };
    let text = format!(
        "== install into {}: {changed} {verb}, {} unchanged\n{}",
        tilde(&dir, &home),
        done.len() - changed,
        describe(&done)
    );
    if to_stderr {
        eprint!("{text}");
    } else {
        print!("{text}");
    }
    Ok(dir)
}

/// The task.
pub fn run(sh: &Shell, root: &Path) -> Result<()> {
    build_and_install(sh, root, false, false).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_each_binary_once_with_its_mode() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let built = dir.path().join("target");
        let home = dir.path().join("home");
        fs::create_dir_all(&built)?;
        for name in binaries() {
            fs::write(built.join(name), format!("#!/bin/sh\necho {name}\n"))?;
        }
        let (_, checked) = install_binaries(&built, &home, true)?;
        assert!(checked.iter().all(|i| i.outcome == Outcome::WouldInstall));
        assert!(!home.exists(), "--check writes nothing");
        let (bin, first) = install_binaries(&built, &home, false)?;
        assert_eq!(bin, home.join(".local/lib/pi-bootstrap/bin"));
        assert!(first.iter().all(|i| i.outcome == Outcome::Installed));
        assert_eq!(first.len(), 7);
        for name in binaries() {
            assert_eq!(fsx::mode_of(&bin.join(name))?, Some(0o755), "{name}");
        }
        let (_, second) = install_binaries(&built, &home, false)?;
        assert!(second.iter().all(|i| i.outcome == Outcome::Unchanged), "{second:?}");

        fs::write(built.join("bootstrap-data"), "#!/bin/sh\necho new\n")?;
        let (_, third) = install_binaries(&built, &home, false)?;
        let installed: Vec<&str> = third.iter().filter(|i| i.outcome == Outcome::Installed).map(|i| i.name).collect();
        assert_eq!(installed, ["bootstrap-data"]);
        assert_eq!(fs::read_to_string(bin.join("bootstrap-data"))?, "#!/bin/sh\necho new\n");
        let leftovers = fs::read_dir(&bin)?.count();
        assert_eq!(leftovers, 7, "no temp file is left behind");

        fs::remove_file(built.join("bootstrap-validate"))?;
        let err = install_binaries(&built, &home, false).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains(&built.join("bootstrap-validate").display().to_string()), "{err}");
        assert!(err.contains("build it first"), "{err}");
        Ok(())
    }
}
