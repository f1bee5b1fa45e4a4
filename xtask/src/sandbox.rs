//! A throwaway host on this machine: private mount, network and PID namespaces, a
//! temporary HOME, a private `/run` with a real `systemd --user` manager, a private
//! loopback. See `../shared/notes/sandbox.md`.
//!
//! The outer half ([`Sandbox::enter`]) builds the `unshare` command that re-runs xtask
//! inside the namespaces; the inner half ([`Sandbox::user_env`], [`Sandbox::boot`])
//! runs there. With
//! `--pid --fork --kill-child`, every process of the sandbox (services included) dies
//! when the inner xtask exits, and the mounts vanish with the namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

/// The folders of one sandbox, all under `root`.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub root: PathBuf,
}

impl Sandbox {
    pub fn new(root: &Path) -> Sandbox {
        Sandbox { root: root.to_path_buf() }
    }
    /// The temporary HOME.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    /// Where the "remote" of the pi-config repo lives.
    pub fn origin(&self) -> PathBuf {
        self.root.join("origin/pi-config")
    }
    /// The prefix of the private nginx.
    pub fn nginx_prefix(&self) -> PathBuf {
        self.root.join("nginx")
    }
    /// The restic repository of the sandbox.
    pub fn backup_repo(&self) -> PathBuf {
        self.root.join("backup")
    }
    pub fn systemd_log(&self) -> PathBuf {
        self.root.join("systemd-user.log")
    }

    /// The argv that runs `inner` inside fresh mount and PID namespaces, and a fresh
    /// network namespace (only a loopback) when `private_network`.
    pub fn enter(private_network: bool, inner: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = vec!["unshare".into()];
        if !is_root() {
            // Without root, a user namespace maps us to root inside it.
            argv.extend(["--user".into(), "--map-root-user".into()]);
        }
        argv.push("--mount".into());
        if private_network {
            argv.push("--net".into());
        }
        argv.extend(["--pid", "--fork", "--mount-proc", "--kill-child", "--propagation", "private"].map(String::from));
        // Nothing of the caller's session may leak in: no bus, no XDG folders of its own.
        argv.push("env".into());
        for var in [
            "DBUS_SESSION_BUS_ADDRESS",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
        ] {
            argv.push("-u".into());
            argv.push(var.into());
        }
        argv.extend(inner.iter().cloned());
        argv
    }

    /// The environment of the restored host's user: HOME, user-level installs in
    /// `~/.local` (npm's global prefix too, so nothing lands in /usr), `~/.local/bin`
    /// first on PATH.
    pub fn user_env(&self, sh: &Shell) -> Result<(), Box<dyn std::error::Error>> {
        std::fs::create_dir_all(self.home())?;
        sh.set_var("HOME", self.home());
        let local = self.home().join(".local");
        sh.set_var("NPM_CONFIG_PREFIX", &local);
        let path = std::env::var("PATH").unwrap_or_default();
        sh.set_var("PATH", format!("{}:{path}", local.join("bin").display()));
        Ok(())
    }

    /// Inside the private network: loopback up, a private `/run` and a user manager.
    /// The environment of `sh` is set for the steps.
    pub fn boot(&self, sh: &Shell) -> Result<UserManager, Box<dyn std::error::Error>> {
        cmd!(sh, "ip link set lo up").quiet().run()?;
        // A private /run: systemd --user wants /run/systemd/system, and nothing of the
        // machine's /run is touched or seen.
        cmd!(sh, "mount -t tmpfs -o mode=755 tmpfs /run").quiet().run()?;
        let uid = cmd!(sh, "id -u").read()?;
        let runtime = PathBuf::from(format!("/run/user/{}", uid.trim()));
        std::fs::create_dir_all("/run/systemd/system")?;
        std::fs::create_dir_all(&runtime)?;
        cmd!(sh, "chmod 700 {runtime}").quiet().run()?;
        sh.set_var("XDG_RUNTIME_DIR", &runtime);
        let log = std::fs::File::create(self.systemd_log())?;
        let child = Command::new("/lib/systemd/systemd")
            .arg("--user")
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let manager = UserManager { child };
        let started = Instant::now();
        loop {
            let state =
                cmd!(sh, "systemctl --user is-system-running").ignore_status().quiet().read().unwrap_or_default();
            if state == "running" || state == "degraded" {
                break;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let log = std::fs::read_to_string(self.systemd_log()).unwrap_or_default();
                return Err(
                    format!("the sandbox's systemd --user did not start within 30s (state {state:?}):\n{log}").into()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(manager)
    }
}

/// The sandbox's `systemd --user`; stopped when dropped.
pub struct UserManager {
    child: Child,
}

impl Drop for UserManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn is_root() -> bool {
    common::sys::is_root()
}

/// Processes of this machine whose command line mentions `needle` (to prove the
/// sandbox left nothing running).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let own = std::process::id().to_string();
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| e.file_name().to_string_lossy() != own)
        .filter_map(|e| {
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            line.contains(needle).then(|| format!("{}: {}", e.file_name().to_string_lossy(), line.trim()))
        })
        .collect()
}
