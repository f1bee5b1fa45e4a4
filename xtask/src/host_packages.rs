//! Installs the Debian packages the tests and the drill need, on a fresh machine:
//! `apt-get update` once, and only when something is missing.

use std::path::Path;

use xshell::{Shell, cmd};

/// Something the tests use, and the Debian package that brings it.
pub struct Needed {
    pub what: Probe,
    pub package: &'static str,
}

/// How to tell whether it is there.
pub enum Probe {
    /// A command on PATH (or in /usr/sbin, /sbin).
    Command(&'static str),
    /// A module `python3` imports (Debian splits `venv`'s `ensurepip` into its own
    /// package).
    PythonModule(&'static str),
}

const fn need(command: &'static str, package: &'static str) -> Needed {
    Needed { what: Probe::Command(command), package }
}

const fn need_python_module(module: &'static str, package: &'static str) -> Needed {
    Needed { what: Probe::PythonModule(module), package }
}

impl Needed {
    fn is_there(&self, sh: &Shell) -> bool {
        match self.what {
            Probe::Command(command) => on_path(command),
            Probe::PythonModule(module) => {
                let import = format!("import {module}");
                cmd!(sh, "python3 -c {import}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
            }
        }
    }
}

/// What `cargo xtask test` needs: the drill's needs and the real tools of the tests.
pub const FOR_TESTS: &[Needed] = &[
    need("git", "git"),
    need("unshare", "util-linux"),
    need("ip", "iproute2"),
    need("systemctl", "systemd"),
    need("python3", "python3"),
    need("nginx", "nginx-light"),
    need("restic", "restic"),
    need("tmux", "tmux"),
    // bootstrap-validate's tests check the JUnit file against a JUnit schema.
    need("xmllint", "libxml2-utils"),
    // The fleet test: a real sshd (with the ssh client) for the hosts Ansible reaches,
    // and the kit's binaries stripped as a release kit's are; the kit test reads each
    // release binary's ELF with readelf (binutils too).
    need("sshd", "openssh-server"),
    need("ssh", "openssh-client"),
    need("strip", "binutils"),
    need("readelf", "binutils"),
    // The venv of ansible-core and ansible-lint (test_support::python).
    need_python_module("ensurepip", "python3-venv"),
];

/// What `cargo xtask drill` needs.
pub const FOR_DRILL: &[Needed] = &[
    need("git", "git"),
    need("unshare", "util-linux"),
    need("ip", "iproute2"),
    need("systemctl", "systemd"),
    need("python3", "python3"),
    need("restic", "restic"),
    need("nginx", "nginx-light"),
];

/// What `cargo xtask bench` needs beyond [`FOR_DRILL`] (it runs the drill): GNU time
/// (peak memory) and the venv of ansible-core (`--vs-ansible`).
pub const FOR_BENCH: &[Needed] = &[need("time", "time"), need_python_module("ensurepip", "python3-venv")];

fn on_path(command: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(Into::into))
        .any(|dir| Path::new(&dir).join(command).is_file())
}

/// Installs the packages of the commands that are missing.
pub fn ensure(sh: &Shell, needed: &[Needed]) -> Result<(), xshell::Error> {
    ensure_all(sh, &[needed])
}

/// [`ensure`] for several lists at once: one `apt-get update` for all.
pub fn ensure_all(sh: &Shell, lists: &[&[Needed]]) -> Result<(), xshell::Error> {
    let mut missing: Vec<&str> =
        lists.iter().flat_map(|l| l.iter()).filter(|n| !n.is_there(sh)).map(|n| n.package).collect();
    missing.sort_unstable();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    // `env` first, so that `sudo env ...` and `env ...` read alike.
    let (program, env): (&str, &[&str]) = if is_root(sh) { ("env", &[]) } else { ("sudo", &["env"]) };
    cmd!(sh, "{program} {env...} apt-get update -qq").run()?;
    cmd!(
        sh,
        "{program} {env...} DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends {missing...}"
    )
    .run()
}

fn is_root(sh: &Shell) -> bool {
    cmd!(sh, "id -u").quiet().read().is_ok_and(|uid| uid.trim() == "0")
}
