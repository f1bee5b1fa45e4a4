//! A throwaway host on this machine, for the restore drill and for tests that need the
//! real programs: private mount, network and PID namespaces, a temporary HOME, a
//! private `/run` with a real `systemd --user`, a private loopback, and a private nginx
//! under the sandbox. See `../shared/notes/sandbox.md`.
//!
//! Only built with the `sandbox` feature (xtask and the tests turn it on); the product
//! binaries never contain it. It is the one place besides `exec` that spawns processes:
//! `unshare`, and the long-running `systemd --user` and nginx of the sandbox.
//!
//! Two ways in:
//! - [`enter_argv`] builds the `unshare` command line that runs a program inside fresh
//!   namespaces (the drill re-runs xtask that way);
//! - [`isolated`] runs the calling `#[test]` again inside fresh namespaces and returns
//!   the booted [`Machine`] there (in the parent it waits and returns `None`).
//!
//! With `--pid --fork --kill-child` every process of the sandbox dies when the program
//! inside exits, and the mounts vanish with the namespace.

#![allow(
    clippy::disallowed_methods,
    reason = "a test harness behind the `sandbox` feature, never in a product binary: it spawns unshare, \
              systemd --user and nginx directly, and writes its throwaway files plainly"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that tells a re-run test it is inside its sandbox.
const INSIDE: &str = "PI_BOOTSTRAP_SANDBOX";

type Error = Box<dyn std::error::Error>;

/// The `unshare` argv that runs `inner` in fresh mount and PID namespaces, and a fresh
/// network namespace (only a loopback) when `private_network`. Variables of the
/// caller's session (bus, XDG folders) are removed.
pub fn enter_argv(private_network: bool, inner: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = vec!["unshare".into()];
    if !crate::sys::is_root() {
        // Without root, a user namespace maps us to root inside it.
        argv.extend(["--user".into(), "--map-root-user".into()]);
    }
    argv.push("--mount".into());
    if private_network {
        argv.push("--net".into());
    }
    argv.extend(["--pid", "--fork", "--mount-proc", "--kill-child", "--propagation", "private"].map(String::from));
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

/// The folders of one sandbox, all under `root`.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout { root: root.to_path_buf() }
    }
    /// The temporary HOME.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    /// The prefix of the private nginx (its `nginx.conf`, `sites-*`, logs, pid).
    pub fn nginx_prefix(&self) -> PathBuf {
        self.root.join("nginx")
    }
    /// A restic repository inside the sandbox.
    pub fn backup_repo(&self) -> PathBuf {
        self.root.join("backup")
    }
    pub fn systemd_log(&self) -> PathBuf {
        self.root.join("systemd-user.log")
    }
}

/// A booted sandbox: its layout, its user manager and, once started, its nginx. The
/// processes stop when it is dropped (and with the PID namespace in any case).
pub struct Machine {
    pub layout: Layout,
    /// `XDG_RUNTIME_DIR` of the user manager.
    pub runtime_dir: PathBuf,
    manager: Child,
    nginx_started: bool,
}

impl Machine {
    /// Inside fresh namespaces: loopback up, a private `/run` (so
    /// `/run/systemd/system` exists and nothing of the machine's `/run` is touched), a
    /// HOME and a real `systemd --user`, waited for until it runs.
    pub fn boot(layout: Layout) -> Result<Machine, Error> {
        run_quietly("ip", &["link", "set", "lo", "up"])?;
        run_quietly("mount", &["-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"])?;
        let runtime_dir = PathBuf::from(format!("/run/user/{}", crate::sys::euid()));
        fs::create_dir_all("/run/systemd/system")?;
        fs::create_dir_all(&runtime_dir)?;
        crate::fsx::set_mode(&runtime_dir, 0o700)?;
        fs::create_dir_all(layout.home())?;
        let log = fs::File::create(layout.systemd_log())?;
        // The manager, and what it runs (the backup timer's service), sees the sandbox's
        // variables as a user's manager sees the user's environment.d.
        let manager = Command::new("/lib/systemd/systemd")
            .arg("--user")
            .env("HOME", layout.home())
            .env("XDG_RUNTIME_DIR", &runtime_dir)
            .env("NGINX_PREFIX", layout.nginx_prefix())
            .env("PI_BACKUP_REPO", layout.backup_repo())
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let machine = Machine { layout, runtime_dir, manager, nginx_started: false };
        let started = Instant::now();
        loop {
            let state =
                machine.command("systemctl").args(["--user", "is-system-running"]).stderr(Stdio::null()).output()?;
            let state = String::from_utf8_lossy(&state.stdout).trim().to_owned();
            if state == "running" || state == "degraded" {
                return Ok(machine);
            }
            if started.elapsed() > Duration::from_secs(30) {
                let log = fs::read_to_string(machine.layout.systemd_log()).unwrap_or_default();
                return Err(format!("systemd --user did not start within 30s (state {state:?}):\n{log}").into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The environment a step needs in this sandbox.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HOME".into(), self.layout.home().display().to_string()),
            ("XDG_RUNTIME_DIR".into(), self.runtime_dir.display().to_string()),
            ("NGINX_PREFIX".into(), self.layout.nginx_prefix().display().to_string()),
            ("PI_BACKUP_REPO".into(), self.layout.backup_repo().display().to_string()),
            ("NO_COLOR".into(), "1".into()),
        ]
    }

    /// A command with this sandbox's environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.envs(self.env());
        cmd
    }

    /// Writes a main nginx configuration under the prefix, in Debian's layout
    /// (`sites-available`, `sites-enabled` included from the `http` block), and starts
    /// nginx from it, as the machine's own nginx would be running.
    pub fn start_nginx(&mut self) -> Result<(), Error> {
        let prefix = self.layout.nginx_prefix();
        write_nginx_main_conf(&prefix)?;
        let conf = prefix.join("nginx.conf");
        let out = Command::new(nginx_program())
            .args(["-p", &prefix.display().to_string(), "-c", &conf.display().to_string()])
            .output()?;
        if !out.status.success() {
            return Err(format!("nginx did not start: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        self.nginx_started = true;
        Ok(())
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        if self.nginx_started {
            let prefix = self.layout.nginx_prefix();
            let conf = prefix.join("nginx.conf").display().to_string();
            let _ = Command::new(nginx_program())
                .args(["-p", &prefix.display().to_string(), "-c", &conf, "-s", "stop"])
                .output();
        }
        let _ = self.manager.kill();
        let _ = self.manager.wait();
    }
}

/// nginx's path: `/usr/sbin` is not on every PATH.
pub fn nginx_program() -> PathBuf {
    which::which("nginx").unwrap_or_else(|_| PathBuf::from("/usr/sbin/nginx"))
}

/// A main nginx configuration that runs entirely under `prefix`.
pub fn write_nginx_main_conf(prefix: &Path) -> Result<(), Error> {
    for dir in ["sites-available", "sites-enabled", "logs", "tmp"] {
        fs::create_dir_all(prefix.join(dir))?;
    }
    let p = prefix.display();
    let conf = format!(
        "# The sandbox's nginx: everything under {p}.
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {p}/logs/access.log;
    client_body_temp_path {p}/tmp/client_body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    default_type application/octet-stream;
    include {p}/sites-enabled/*;
}}
"
    );
    fs::write(prefix.join("nginx.conf"), conf)?;
    Ok(())
}

/// Runs `argv`, handing `pass_on` what follows [`SHOWN`] in each stdout line (the
/// harness may put `test NAME ... ` first) as it comes; its exit status and all it
/// printed, stdout then stderr.
fn run_passing_on_shown(
    argv: &[String],
    pass_on: &mut dyn FnMut(&str),
) -> Result<(std::process::ExitStatus, String), Error> {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut text = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, shown)) = line.split_once(SHOWN) {
                pass_on(shown);
            }
            text.push_str(&line);
            text.push('\n');
        }
    }
    let status = child.wait()?;
    text.push_str(&errors.join().unwrap_or_default());
    Ok((status, text))
}

fn run_quietly(program: &str, args: &[&str]) -> Result<(), Error> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)).into())
    }
}

/// What starts a line a sandboxed test writes for its parent to pass on as it comes
/// (see [`isolated_passing_on`]).
pub const SHOWN: &str = "sandbox| ";

/// Runs the calling test inside a fresh sandbox. In the parent, it re-runs this test
/// binary with `--exact test_name` under `unshare`, fails the test if the child failed
/// (with its output), and returns `None`: the caller then returns. Inside, it boots the
/// [`Machine`] and returns it. The sandbox folder is removed afterwards.
pub fn isolated(test_name: &str) -> Option<Machine> {
    isolated_passing_on(test_name, &mut |_| {})
}

/// [`isolated`], where the parent hands `pass_on` each line the child writes after
/// [`SHOWN`], as it comes (a long test's progress).
pub fn isolated_passing_on(test_name: &str, pass_on: &mut dyn FnMut(&str)) -> Option<Machine> {
    if let Ok(root) = std::env::var(INSIDE) {
        return match Machine::boot(Layout::new(Path::new(&root))) {
            Ok(machine) => Some(machine),
            Err(e) => panic!("the sandbox did not boot: {e}"),
        };
    }
    let dir = match tempfile::Builder::new().prefix("pi-sandbox-").tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot make a sandbox folder: {e}"),
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => panic!("cannot find the test binary: {e}"),
    };
    // The test itself runs as the sandbox's user: library calls in it (not only the
    // commands it spawns through `Machine::command`) reach the sandbox's HOME and manager.
    let inner = [
        "env".to_owned(),
        format!("{INSIDE}={}", dir.path().display()),
        format!("HOME={}", Layout::new(dir.path()).home().display()),
        format!("XDG_RUNTIME_DIR=/run/user/{}", crate::sys::euid()),
        exe.display().to_string(),
        "--exact".into(),
        test_name.into(),
        "--nocapture".into(),
        "--test-threads=1".into(),
    ];
    let argv = enter_argv(true, &inner);
    let (status, text) = match run_passing_on_shown(&argv, pass_on) {
        Ok(ran) => ran,
        Err(e) => panic!("cannot run unshare: {e}"),
    };
    assert!(
        status.success() && text.contains("1 passed"),
        "{test_name} failed inside its sandbox:\n{text}\nsystemd log:\n{}",
        fs::read_to_string(Layout::new(dir.path()).systemd_log()).unwrap_or_default()
    );
    None
}
