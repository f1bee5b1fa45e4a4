//! What the tests ask of a sandboxed machine (`common::sandbox::Machine`): its user
//! manager through `systemctl --user`, a unit's property, and an HTTP answer from
//! inside it (its loopback is private: the test process outside cannot reach it), and
//! a log of the calls a binary makes to some programs ([`CallLog`]).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::sandbox::{Machine, SHOWN, isolated_passing_on};

use crate::{Error, TestResult};

/// `systemctl --user ARGS` in the sandbox: its stdout, trimmed, whatever the exit code
/// (`is-active` says `inactive` with exit 3).
pub fn systemctl(machine: &Machine, args: &[&str]) -> Result<String, Error> {
    let out = machine.command("systemctl").arg("--user").args(args).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `systemctl --user ARGS` in the sandbox, which must succeed (its stderr in the error).
pub fn systemctl_ok(machine: &Machine, args: &[&str]) -> TestResult {
    let out = machine.command("systemctl").arg("--user").args(args).output()?;
    if !out.status.success() {
        return Err(format!("systemctl --user {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// One property of a unit: `systemctl --user show -p PROPERTY --value UNIT`.
pub fn show(machine: &Machine, property: &str, unit: &str) -> Result<String, Error> {
    systemctl(machine, &["show", "-p", property, "--value", unit])
}

/// The body of `GET url` from inside the sandbox, trimmed; `error ...` when there is
/// no answer.
pub fn get(machine: &Machine, url: &str) -> Result<String, Error> {
    let script = format!(
        "import urllib.request\ntry:\n    print(urllib.request.urlopen('{url}', timeout=5).read().decode().strip())\nexcept Exception as e:\n    print('error', e)"
    );
    let out = machine.command("python3").args(["-c", &script]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `common::sandbox::isolated`, with the lines the child writes with [`progress`] passed on to the
/// parent's output as they come (the harness shows them with `--nocapture`).
pub fn isolated_shown(test_name: &str) -> Option<Machine> {
    #[allow(clippy::print_stdout, reason = "a test's progress, through the harness")]
    isolated_passing_on(test_name, &mut |line| println!("{line}"))
}

/// Inside [`isolated_shown`]: a line for the parent's output, as soon as it is written.
#[allow(clippy::print_stdout, reason = "a test's progress, through the harness")]
pub fn progress(line: &str) {
    println!("{SHOWN}{line}");
}

/// Programs of the sandbox run through scripts that write down each call, so a test
/// can say what a binary asked of the system and how often: put [`CallLog::path`]
/// first on the binary's `PATH`, then read [`CallLog::take`].
pub struct CallLog {
    shims: PathBuf,
    log: PathBuf,
}

impl CallLog {
    /// Shims for `programs` (each found on this process's `PATH`) in the sandbox's root.
    pub fn install(machine: &Machine, programs: &[&str]) -> Result<CallLog, Error> {
        CallLog::install_in(&machine.layout.root, programs)
    }

    /// Shims for `programs` in `dir` (a test's own temporary folder), its log beside them.
    pub fn install_in(dir: &Path, programs: &[&str]) -> Result<CallLog, Error> {
        let shims = dir.join("shim");
        fs::create_dir_all(&shims)?;
        let log = dir.join("calls.log");
        for program in programs {
            let real = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(|dir| dir.join(program))
                .find(|p| p.is_file())
                .ok_or(format!("{program} is not on PATH"))?;
            let script =
                format!("#!/bin/sh\necho \"{program} $*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real.display());
            fs::write(shims.join(program), script)?;
            fs::set_permissions(shims.join(program), fs::Permissions::from_mode(0o755))?;
        }
        Ok(CallLog { shims, log })
    }

    /// A `PATH` with the shims first, then this process's.
    pub fn path(&self) -> Result<OsString, Error> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        Ok(std::env::join_paths(std::iter::once(self.shims.clone()).chain(std::env::split_paths(&path)))?)
    }

    /// Every call so far, as `PROGRAM ARGS...`; the log starts again empty.
    pub fn take(&self) -> Vec<String> {
        let calls = fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect();
        let _ = fs::remove_file(&self.log);
        calls
    }

    /// The calls so far, without emptying the log.
    pub fn peek(&self) -> Vec<String> {
        fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_owned).collect()
    }
}
