//! What the tests ask of a sandboxed machine (`common::sandbox::Machine`): its user
//! manager through `systemctl --user`, a unit's property, and an HTTP answer from
//! inside it (its loopback is private: the test process outside cannot reach it).

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
