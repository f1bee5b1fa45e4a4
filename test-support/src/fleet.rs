//! Hosts of a fleet inside one sandbox (`common::sandbox::Machine`), reached over real
//! SSH: accounts that exist only in the sandbox's mount namespace (copies of
//! `/etc/passwd`, `/etc/group` and `/etc/shadow` bind-mounted over the real ones), each
//! with its own HOME and its own `systemd --user` (in a cgroup delegated to the account,
//! as logind's `user@.service` does), and one real `sshd` (Debian's `openssh-server`)
//! listening on the sandbox's private loopback, each host at its own address
//! (`127.0.0.11`, `127.0.0.12`, ...), with keys made for the run.
//!
//! The real machine's accounts, `/etc` and `~/.ssh` are never touched: the bind mounts
//! and the network vanish with the sandbox's namespaces. The only thing made outside
//! them is each account's cgroup (`pi-bootstrap-fleet-SANDBOX/USER` in the cgroup
//! hierarchies systemd uses), removed when the [`Fleet`] is dropped.

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::sandbox::Machine;

use crate::Error;

/// The first uid (and gid) tried for the fleet's accounts.
const FIRST_ID: u32 = 2900;

/// One host of the fleet: an account with its HOME, user manager and address.
pub struct Host {
    /// The inventory name (`home`, `vps`, ...).
    pub name: String,
    /// The account's name (`fleet-home`).
    pub user: String,
    pub uid: u32,
    pub home: PathBuf,
    /// Its address on the sandbox's loopback, where sshd answers for it.
    pub address: String,
    /// `XDG_RUNTIME_DIR` of its user manager (`/run/user/UID`).
    pub runtime_dir: PathBuf,
    manager: Child,
}

/// The hosts, the sshd that lets the controller in, and the controller's key.
pub struct Fleet {
    pub hosts: Vec<Host>,
    /// The controller's private key (its `.pub` is every account's authorized key).
    pub key: PathBuf,
    /// A known_hosts file with the sshd's host key for every host's address.
    pub known_hosts: PathBuf,
    /// sshd's own log.
    pub sshd_log: PathBuf,
    sshd: Child,
    cgroups: Vec<PathBuf>,
}

impl Fleet {
    /// Inside the booted `machine`: one account per name, their user managers, sshd.
    pub fn start(machine: &Machine, names: &[&str]) -> Result<Fleet, Error> {
        let root = &machine.layout.root;
        // The accounts reach their HOME and their repo's remote under the sandbox.
        crate::tree::set_mode(root, 0o755)?;
        let ssh_dir = root.join("ssh");
        fs::create_dir_all(&ssh_dir)?;
        let accounts = add_accounts(root, names)?;
        let mut fleet = Fleet {
            hosts: Vec::new(),
            key: ssh_dir.join("controller"),
            known_hosts: ssh_dir.join("known_hosts"),
            sshd_log: ssh_dir.join("sshd.log"),
            sshd: start_sshd(&ssh_dir, &accounts)?,
            cgroups: Vec::new(),
        };
        let sandbox_name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for (i, (name, user, uid)) in accounts.into_iter().enumerate() {
            let home = root.join("hosts").join(&name);
            fs::create_dir_all(&home)?;
            crate::tree::set_mode(&home, 0o700)?;
            let runtime_dir = PathBuf::from(format!("/run/user/{uid}"));
            fs::create_dir_all(&runtime_dir)?;
            crate::tree::set_mode(&runtime_dir, 0o700)?;
            chown(uid, &[&home, &runtime_dir])?;
            let cgroups = delegate_cgroups(&format!("pi-bootstrap-fleet-{sandbox_name}"), &user, uid)?;
            fleet.cgroups.extend(cgroups.iter().filter_map(|c| c.parent().map(Path::to_path_buf)));
            fleet.cgroups.extend(cgroups.iter().cloned());
            let manager = start_manager(root, &user, uid, &home, &runtime_dir, &cgroups)?;
            let host = Host { name, user, uid, home, address: format!("127.0.0.{}", 11 + i), runtime_dir, manager };
            fleet.hosts.push(host);
        }
        fleet.cgroups.sort();
        fleet.cgroups.dedup();
        for host in &fleet.hosts {
            fleet.wait_for_manager(host)?;
        }
        fleet.wait_for_sshd()?;
        let host_key = fs::read_to_string(ssh_dir.join("host_key.pub"))?;
        let addresses: Vec<&str> = fleet.hosts.iter().map(|h| h.address.as_str()).collect();
        fs::write(&fleet.known_hosts, format!("{} {}", addresses.join(","), host_key))?;
        Ok(fleet)
    }

    /// `program` run as the host's account, with its HOME and user manager and nothing
    /// else of the caller's environment.
    pub fn command(&self, host: &Host, program: &str) -> Command {
        let mut cmd = Command::new("setpriv");
        cmd.args([&format!("--reuid={}", host.uid), &format!("--regid={}", host.uid), "--init-groups", "env", "-i"])
            .arg(format!("HOME={}", host.home.display()))
            .arg(format!("XDG_RUNTIME_DIR={}", host.runtime_dir.display()))
            .arg(format!("PATH={}", crate::process::PLAIN_PATH))
            .arg("NO_COLOR=1")
            .arg(program);
        cmd
    }

    /// `systemctl --user ARGS` of the host: its stdout, trimmed, whatever the exit code.
    pub fn systemctl(&self, host: &Host, args: &[&str]) -> Result<String, Error> {
        let out = self.command(host, "systemctl").arg("--user").args(args).stderr(Stdio::null()).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    fn wait_for_manager(&self, host: &Host) -> Result<(), Error> {
        let started = Instant::now();
        loop {
            let state = self.systemctl(host, &["is-system-running"])?;
            if state == "running" || state == "degraded" {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(
                    format!("the user manager of {} did not start within 30s (state {state:?})", host.user).into()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for_sshd(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let first = self.hosts.first().map_or_else(|| "127.0.0.11".to_owned(), |h| h.address.clone());
        while TcpStream::connect((first.as_str(), 22)).is_err() {
            if let Some(status) = self.sshd.try_wait()? {
                let log = fs::read_to_string(&self.sshd_log).unwrap_or_default();
                return Err(format!("sshd exited ({status}):\n{log}").into());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err("sshd did not listen within 30s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self.sshd.kill();
        let _ = self.sshd.wait();
        // SIGTERM: each manager stops its units and leaves its cgroups empty.
        for host in &mut self.hosts {
            let _ = Command::new("kill").args(["-TERM", &host.manager.id().to_string()]).status();
        }
        for host in &mut self.hosts {
            let started = Instant::now();
            while host.manager.try_wait().ok().flatten().is_none() && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = host.manager.kill();
            let _ = host.manager.wait();
        }
        for top in self.cgroups.iter().rev() {
            remove_cgroup_tree(top);
        }
    }
}

/// Appends one account per name to copies of the account files and bind-mounts them
/// over the real ones (in this mount namespace only). Returns (name, user, uid).
fn add_accounts(root: &Path, names: &[&str]) -> Result<Vec<(String, String, u32)>, Error> {
    let etc = root.join("etc");
    fs::create_dir_all(&etc)?;
    let mut passwd = fs::read_to_string("/etc/passwd")?;
    let mut group = fs::read_to_string("/etc/group")?;
    let mut shadow = fs::read_to_string("/etc/shadow").unwrap_or_default();
    let taken = |text: &str, id: u32| text.lines().any(|l| l.split(':').nth(2) == Some(id.to_string().as_str()));
    let mut id = FIRST_ID;
    let mut accounts = Vec::new();
    for name in names {
        while taken(&passwd, id) || taken(&group, id) {
            id += 1;
        }
        let user = format!("fleet-{name}");
        let home = root.join("hosts").join(name);
        passwd.push_str(&format!("{user}:x:{id}:{id}:fleet host {name}:{}:/bin/sh\n", home.display()));
        group.push_str(&format!("{user}:x:{id}:\n"));
        // `*`: no password, and not locked (sshd refuses a locked account without PAM).
        shadow.push_str(&format!("{user}:*:19000:0:99999:7:::\n"));
        accounts.push(((*name).to_owned(), user, id));
        id += 1;
    }
    for (file, text, mode) in [("passwd", passwd, 0o644), ("group", group, 0o644), ("shadow", shadow, 0o640)] {
        let copy = etc.join(file);
        fs::write(&copy, text)?;
        crate::tree::set_mode(&copy, mode)?;
        run(Command::new("mount").arg("--bind").arg(&copy).arg(Path::new("/etc").join(file)))?;
    }
    Ok(accounts)
}

/// Host and controller keys, the config and a running `sshd -D` for the accounts.
fn start_sshd(dir: &Path, accounts: &[(String, String, u32)]) -> Result<Child, Error> {
    for (key, comment) in [("host_key", "fleet-sshd"), ("controller", "fleet-controller")] {
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(dir.join(key)))?;
    }
    let authorized = dir.join("authorized_keys");
    fs::copy(dir.join("controller.pub"), &authorized)?;
    crate::tree::set_mode(&authorized, 0o644)?;
    // sshd wants its privilege separation folder; /run is the sandbox's own.
    fs::create_dir_all("/run/sshd")?;
    crate::tree::set_mode(Path::new("/run/sshd"), 0o755)?;
    let users: Vec<&str> = accounts.iter().map(|(_, user, _)| user.as_str()).collect();
    let d = dir.display();
    let config = dir.join("sshd_config");
    fs::write(
        &config,
        format!(
            "# The fleet's sshd, on the sandbox's private loopback only.
ListenAddress 0.0.0.0:22
HostKey {d}/host_key
PidFile {d}/sshd.pid
AuthorizedKeysFile {d}/authorized_keys
AllowUsers {users}
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
# The sandbox lies under /tmp, which everyone may write to.
StrictModes no
X11Forwarding no
MaxStartups 30:30:60
MaxSessions 30
Subsystem sftp internal-sftp
",
            users = users.join(" ")
        ),
    )?;
    let sshd = which_sbin("sshd");
    run(Command::new(&sshd).arg("-t").arg("-f").arg(&config))?;
    Ok(Command::new(&sshd)
        .arg("-D")
        .arg("-f")
        .arg(&config)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

/// The cgroup hierarchies a systemd manager uses here: the unified one (cgroup v2, on
/// its own or beside v1) and v1's named `systemd` one.
fn cgroup_hierarchies() -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    if base.join("cgroup.procs").exists() {
        return vec![base.to_path_buf()];
    }
    ["unified", "systemd"].iter().map(|h| base.join(h)).filter(|h| h.join("cgroup.procs").exists()).collect()
}

/// `GROUP/USER` made in every hierarchy and given to the account, so that its
/// `systemd --user` can run its units in cgroups below it.
fn delegate_cgroups(group: &str, user: &str, uid: u32) -> Result<Vec<PathBuf>, Error> {
    let mut made = Vec::new();
    for hierarchy in cgroup_hierarchies() {
        let cgroup = hierarchy.join(group).join(user);
        fs::create_dir_all(&cgroup)?;
        run(Command::new("chown").arg("-R").arg(format!("{uid}:{uid}")).arg(&cgroup))?;
        made.push(cgroup);
    }
    if made.is_empty() {
        return Err("no cgroup hierarchy for the user managers under /sys/fs/cgroup".into());
    }
    Ok(made)
}

/// The account's `systemd --user`, started in its delegated cgroups.
fn start_manager(
    root: &Path,
    user: &str,
    uid: u32,
    home: &Path,
    runtime_dir: &Path,
    cgroups: &[PathBuf],
) -> Result<Child, Error> {
    let log = fs::File::create(root.join(format!("{user}-systemd.log")))?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            "uid=$1 home=$2 runtime=$3; shift 3
             for procs in \"$@\"; do echo $$ > \"$procs\"; done
             exec setpriv --reuid=$uid --regid=$uid --init-groups env -i HOME=\"$home\" \
               XDG_RUNTIME_DIR=\"$runtime\" PATH=/usr/bin:/bin /lib/systemd/systemd --user",
        )
        .arg("sh")
        .arg(uid.to_string())
        .arg(home)
        .arg(runtime_dir)
        .args(cgroups.iter().map(|c| c.join("cgroup.procs")))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(cmd.spawn()?)
}

/// Removes a cgroup and the ones below it, deepest first (each must be empty).
fn remove_cgroup_tree(top: &Path) {
    let mut dirs = Vec::new();
    let mut stack = vec![top.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(entries.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        dirs.push(dir);
    }
    for dir in dirs.iter().rev() {
        let _ = fs::remove_dir(dir);
    }
}

fn chown(uid: u32, paths: &[&Path]) -> Result<(), Error> {
    run(Command::new("chown").arg(format!("{uid}:{uid}")).args(paths))
}

/// A program of `/usr/sbin` (not on every PATH).
fn which_sbin(program: &str) -> PathBuf {
    let sbin = Path::new("/usr/sbin").join(program);
    if sbin.is_file() { sbin } else { PathBuf::from(program) }
}

fn run(cmd: &mut Command) -> Result<(), Error> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}
