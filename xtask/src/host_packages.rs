//! Installs the Debian packages the tests and the drill need, on a fresh machine:
//! `apt-get update` once, and only when something is missing.

use std::path::Path;

use xshell::{Shell, cmd};

/// A command the tests run, and the Debian package that brings it.
pub struct Needed {
    pub command: &'static str,
    pub package: &'static str,
}

const fn need(command: &'static str, package: &'static str) -> Needed {
    Needed { command, package }
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
    // The kit test reads each release binary's ELF with readelf.
    need("readelf", "binutils"),
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

fn on_path(command: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(Into::into))
        .any(|dir| Path::new(&dir).join(command).is_file())
}

/// Installs the packages of the commands that are missing.
pub fn ensure(sh: &Shell, needed: &[Needed]) -> Result<(), xshell::Error> {
    let missing: Vec<&str> = needed.iter().filter(|n| !on_path(n.command)).map(|n| n.package).collect();
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
