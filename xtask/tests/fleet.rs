//! Many hosts through Ansible, over real SSH: the collection `pi_bootstrap.host`
//! (`ansible/ansible_collections/`) driven by the pinned ansible-core of the cached venv
//! against three hosts in one sandbox (`test_support::fleet`: an account, a HOME and a
//! private `systemd --user` each, reached through a real sshd on the private loopback).
//! From one inventory, with the secret from vault: a host without its secret fails at
//! its step while the other two are restored; then all three are; a second run changes
//! nothing on any host (the play recap); after drift on one host, `--check --diff`
//! shows that host's diff only and changes nothing; the audit fails that host alone.
//! The canary secret is in no output of Ansible and not in its log. Also: the collection
//! is ansible-lint clean, and the role's binaries are the restore order's.

#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::sandbox::Machine;
use test_support::fleet::{Fleet, Host};
use test_support::git::init_repo;
use test_support::process::{PLAIN_PATH, no_canary};
use test_support::python::ansible_bin;
use test_support::sandbox::{get, isolated_shown, progress};
use test_support::workspace::{build_kit, kit_file_name, root};
use test_support::{Error, TestResult};

const CANARY: &str = "canary-fleet-token-9c41";

/// The collections folder of the repo (`ansible_collections/pi_bootstrap/host` in it).
fn collections() -> PathBuf {
    root().join("ansible")
}

/// The fleet's manifest: folders, a link, an env file with a secret, a unit, a service
/// with a health check; `${FLEET_ORIGIN}` and `${FLEET_ADDRESS}` differ per host.
const MANIFEST: &str = "version: 1
prereqs:
  - name: python3
    check: [python3, --version]
    install: {apt: python3}
repo:
  path: ~/pi-config
  url: file://${FLEET_ORIGIN}
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
dirs:
  - name: notes
    path: ~/notes
    mode: \"0700\"
services:
  - name: web
    purpose: the host's small page
    source: services/web
    unit: systemd/fleet-web.service
    env_file: web
    port: 8080
    health:
      http: {url: 'http://${FLEET_ADDRESS}:8080/', status: 200}
env:
  - name: web
    path: ~/.config/fleet/web.env
    vars: [FLEET_ADDRESS, FLEET_TOKEN]
";

const UNIT: &str = "[Unit]
Description=the fleet's small page
[Service]
EnvironmentFile=%h/.config/fleet/web.env
ExecStart=/usr/bin/python3 -m http.server 8080 --bind ${FLEET_ADDRESS} --directory %h/pi-config/services/web
[Install]
WantedBy=default.target
";

/// The controller's side: the venv, the inventory, the kit, and every output so far.
struct Controller {
    bin: PathBuf,
    dir: PathBuf,
    seen: String,
}

/// One `ansible-playbook` run: its exit code, its output and its recap per host.
struct PlayRun {
    code: Option<i32>,
    text: String,
    recap: BTreeMap<String, BTreeMap<String, u64>>,
}

impl PlayRun {
    fn count(&self, host: &str, what: &str) -> u64 {
        self.recap.get(host).and_then(|c| c.get(what)).copied().unwrap_or(u64::MAX)
    }
}

impl Controller {
    fn playbook(&mut self, playbook: &str, args: &[&str]) -> Result<PlayRun, Error> {
        self.ansible("ansible-playbook", &[&["-v", playbook], args].concat())
    }

    /// `PROGRAM ARGS` of the venv (`ansible-playbook`, `ansible`) with the fleet's
    /// inventory, vault password and log.
    fn ansible(&mut self, program: &str, args: &[&str]) -> Result<PlayRun, Error> {
        let started = Instant::now();
        let out = Command::new(self.bin.join(program))
            .env_clear()
            .env("HOME", self.dir.join("home"))
            .env("PATH", format!("{}:{PLAIN_PATH}", self.bin.display()))
            .env("LC_ALL", "C.UTF-8")
            .env("ANSIBLE_COLLECTIONS_PATH", collections())
            .env("ANSIBLE_INVENTORY", self.dir.join("inventory"))
            .env("ANSIBLE_VAULT_PASSWORD_FILE", self.dir.join("vault-password"))
            .env("ANSIBLE_LOG_PATH", self.dir.join("ansible.log"))
            .env("ANSIBLE_LOCAL_TEMP", self.dir.join("ansible-tmp"))
            .env("ANSIBLE_FORKS", "3")
            .env("ANSIBLE_PIPELINING", "true")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "false")
            .args(args)
            .current_dir(&self.dir)
            .output()?;
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        progress(&format!("{program} {}: {:.1}s", args.join(" "), started.elapsed().as_secs_f64()));
        self.seen.push_str(&text);
        Ok(PlayRun { code: out.status.code(), recap: recap(&text), text })
    }
}

/// The play recap: `HOST : ok=N changed=N unreachable=N failed=N ...` per host.
fn recap(text: &str) -> BTreeMap<String, BTreeMap<String, u64>> {
    let Some((_, after)) = text.rsplit_once("PLAY RECAP") else { return BTreeMap::new() };
    after
        .lines()
        .filter_map(|line| {
            let (host, counts) = line.split_once(" : ")?;
            let counts = counts
                .split_whitespace()
                .filter_map(|c| c.split_once('='))
                .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
                .collect();
            Some((host.trim().to_owned(), counts))
        })
        .collect()
}

/// The lines of `text` that start a diff's new side (`+++ `), each with the host of
/// the task result that follows it (the default callback shows a diff just before it).
fn diff_hosts(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let result_host = |line: &str| {
        ["ok: [", "changed: [", "failed: [", "fatal: [", "skipping: ["]
            .iter()
            .find_map(|start| line.strip_prefix(start))
            .and_then(|rest| rest.split(']').next())
            .map(str::to_owned)
    };
    (0..lines.len())
        .filter(|&i| lines[i].starts_with("+++ "))
        .map(|i| lines[i..].iter().find_map(|l| result_host(l)).unwrap_or_default())
        .collect()
}

/// The restore kit of the current build, as a controller hands it to the role: the
/// tarball `cargo xtask kit` makes (the binaries in `bin/`, with their `SHA256SUMS`),
/// and the folder of its binaries once unpacked. Returns both.
fn make_kit(dir: &Path) -> Result<(PathBuf, PathBuf), Error> {
    let out = dir.join("kit");
    build_kit(Path::new(env!("CARGO_BIN_EXE_xtask")), &out, &dir.join("home"))?;
    let tarball = out.join(kit_file_name());
    let unpacked = out.join("unpacked");
    fs::create_dir_all(&unpacked)?;
    let done = Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&unpacked).output()?;
    assert!(done.status.success(), "tar: {}", String::from_utf8_lossy(&done.stderr));
    Ok((tarball, unpacked.join("bin")))
}

/// Each host's pi-config remote, owned by its account (git refuses a repository of
/// another user).
fn make_origin(machine: &Machine, host: &Host) -> Result<PathBuf, Error> {
    let origin = machine.layout.root.join("origins").join(&host.name);
    init_repo(
        &origin,
        &[
            ("pi/settings.json", "{\"theme\": \"dark\"}\n"),
            ("services/web/index.html", "the fleet's page\n"),
            ("systemd/fleet-web.service", UNIT),
        ],
    )?;
    let out = Command::new("chown").arg("-R").arg(format!("{0}:{0}", host.uid)).arg(&origin).output()?;
    assert!(out.status.success());
    Ok(origin)
}

/// The inventory: the three hosts, their variables, the secret in a vault file, and
/// `laptop` without it (`host_vars/laptop.yml`) until the test removes that file.
fn write_inventory(controller: &Controller, fleet: &Fleet, origins: &[PathBuf]) -> TestResult {
    let dir = &controller.dir;
    let inventory = dir.join("inventory");
    fs::create_dir_all(inventory.join("group_vars/pi_hosts"))?;
    fs::create_dir_all(inventory.join("host_vars"))?;
    let mut hosts = String::from("pi_hosts:\n  hosts:\n");
    for (host, origin) in fleet.hosts.iter().zip(origins) {
        hosts.push_str(&format!(
            "    {}:\n      ansible_host: {}\n      ansible_user: {}\n      fleet_origin: {}\n",
            host.name,
            host.address,
            host.user,
            origin.display()
        ));
    }
    fs::write(inventory.join("hosts.yml"), hosts)?;
    fs::write(
        inventory.join("group_vars/pi_hosts/vars.yml"),
        format!(
            "ansible_python_interpreter: /usr/bin/python3
ansible_ssh_private_key_file: {key}
ansible_ssh_common_args: -o UserKnownHostsFile={known} -o StrictHostKeyChecking=yes
pi_bootstrap_kit: {kit}
pi_bootstrap_manifest: {manifest}
pi_bootstrap_env:
  FLEET_ORIGIN: \"{{{{ fleet_origin }}}}\"
  FLEET_ADDRESS: \"{{{{ ansible_host }}}}\"
pi_bootstrap_secrets:
  FLEET_TOKEN: \"{{{{ vault_fleet_token }}}}\"
",
            key = fleet.key.display(),
            known = fleet.known_hosts.display(),
            kit = dir.join("kit").join(kit_file_name()).display(),
            manifest = dir.join("pi-bootstrap.yaml").display(),
        ),
    )?;
    let vault = inventory.join("group_vars/pi_hosts/vault.yml");
    fs::write(&vault, format!("vault_fleet_token: {CANARY}\n"))?;
    fs::write(dir.join("vault-password"), "the fleet's vault password\n")?;
    let out = Command::new(controller.bin.join("ansible-vault"))
        .env("LC_ALL", "C.UTF-8")
        .arg("encrypt")
        .arg("--vault-password-file")
        .arg(dir.join("vault-password"))
        .arg(&vault)
        .output()?;
    assert!(out.status.success(), "ansible-vault: {}", String::from_utf8_lossy(&out.stderr));
    assert!(!fs::read_to_string(&vault)?.contains(CANARY), "the vault file is encrypted");
    // This host's secret is missing from the vault: its services step must fail.
    fs::write(inventory.join("host_vars/laptop.yml"), "pi_bootstrap_secrets: {}\n")?;
    Ok(())
}

#[test]
fn three_hosts_are_restored_checked_and_audited_through_ansible_over_ssh() -> TestResult {
    let Some(machine) = isolated_shown("three_hosts_are_restored_checked_and_audited_through_ansible_over_ssh") else {
        return Ok(());
    };
    let started = Instant::now();
    let bin = ansible_bin()?;
    let fleet = Fleet::start(&machine, &["home", "vps", "laptop"])?;
    progress(&format!("fleet up: {:.1}s", started.elapsed().as_secs_f64()));
    let dir = machine.layout.root.join("controller");
    fs::create_dir_all(dir.join("home"))?;
    let mut controller = Controller { bin, dir: dir.clone(), seen: String::new() };
    let (_, kit_bin) = make_kit(&dir)?;
    progress(&format!("kit made: {:.1}s", started.elapsed().as_secs_f64()));
    fs::write(dir.join("pi-bootstrap.yaml"), MANIFEST)?;
    let origins = fleet.hosts.iter().map(|h| make_origin(&machine, h)).collect::<Result<Vec<_>, _>>()?;
    write_inventory(&controller, &fleet, &origins)?;
    let page = |host: &Host| get(&machine, &format!("http://{}:8080/", host.address));
    let [home, vps, laptop] = [&fleet.hosts[0], &fleet.hosts[1], &fleet.hosts[2]];

    // laptop's secret is not in the vault: it fails at its step, the other two finish.
    let first = controller.playbook("pi_bootstrap.host.restore", &[])?;
    assert_ne!(first.code, Some(0), "{}", first.text);
    assert_eq!(first.count("laptop", "failed"), 1, "{}", first.text);
    for host in [home, vps] {
        assert_eq!(first.count(&host.name, "failed"), 0, "{}: {}", host.name, first.text);
        assert!(first.count(&host.name, "changed") >= 1, "{}: {}", host.name, first.text);
        assert_eq!(page(host)?, "the fleet's page", "{} serves its page", host.name);
        assert!(host.home.join(".pi/agent/settings.json").is_symlink());
        assert!(host.home.join("notes").is_dir());
    }
    assert!(first.text.contains("env:web"), "the failure names the env file: {}", first.text);
    assert_ne!(fleet.systemctl(laptop, &["is-active", "fleet-web.service"])?, "active");

    // With its secret, laptop is restored too, from the same inventory.
    fs::remove_file(dir.join("inventory/host_vars/laptop.yml"))?;
    let second = controller.playbook("pi_bootstrap.host.restore", &[])?;
    assert_eq!(second.code, Some(0), "{}", second.text);
    assert!(second.count("laptop", "changed") >= 1, "{}", second.text);
    for host in &fleet.hosts {
        assert_eq!(second.count(&host.name, "failed"), 0, "{}", second.text);
        assert_eq!(fleet.systemctl(host, &["is-active", "fleet-web.service"])?, "active", "{}", host.name);
        assert_eq!(page(host)?, "the fleet's page", "{} serves its page", host.name);
        let env = fs::read_to_string(host.home.join(".config/fleet/web.env"))?;
        assert!(env.contains(CANARY) && env.contains(&host.address), "{}'s env file has its values", host.name);
    }

    // A second run changes nothing anywhere.
    let again = controller.playbook("pi_bootstrap.host.restore", &[])?;
    assert_eq!(again.code, Some(0), "{}", again.text);
    for host in &fleet.hosts {
        assert_eq!(again.count(&host.name, "changed"), 0, "{} changed: {}", host.name, again.text);
        assert_eq!(again.count(&host.name, "failed"), 0, "{}", again.text);
    }

    // Drift on vps: --check --diff shows vps's diff only and changes nothing.
    let unit = vps.home.join(".config/systemd/user/fleet-web.service");
    let edited = format!("{}# edited by hand on vps\n", fs::read_to_string(&unit)?);
    fs::write(&unit, &edited)?;
    let check = controller.playbook("pi_bootstrap.host.restore", &["--check", "--diff"])?;
    assert_eq!(check.code, Some(0), "{}", check.text);
    assert_eq!(check.count("vps", "changed"), 1, "{}", check.text);
    for host in [home, laptop] {
        assert_eq!(check.count(&host.name, "changed"), 0, "{}: {}", host.name, check.text);
    }
    let shown = diff_hosts(&check.text);
    assert!(!shown.is_empty() && shown.iter().all(|h| h == "vps"), "diffs of {shown:?}: {}", check.text);
    assert!(check.text.contains("-# edited by hand on vps"), "{}", check.text);
    assert_eq!(fs::read_to_string(&unit)?, edited, "--check changed nothing");

    // The audit: never changed; with fail_on_drift, vps alone fails. The kit as an
    // unpacked folder this time: the same binaries, nothing copied.
    let kit_dir = format!("pi_bootstrap_kit={}", kit_bin.display());
    let audit =
        controller.playbook("pi_bootstrap.host.audit", &["-e", "pi_bootstrap_fail_on_drift=true", "-e", &kit_dir])?;
    assert_ne!(audit.code, Some(0), "{}", audit.text);
    assert_eq!(audit.count("vps", "failed"), 1, "{}", audit.text);
    assert!(audit.text.contains("unit:fleet-web.service"), "{}", audit.text);
    for host in &fleet.hosts {
        assert_eq!(audit.count(&host.name, "changed"), 0, "{}", audit.text);
    }
    for host in [home, laptop] {
        assert_eq!(audit.count(&host.name, "failed"), 0, "{}: {}", host.name, audit.text);
    }

    // A manifest that cannot be read is exit 2: the module fails and says so.
    let refused = controller.ansible(
        "ansible",
        &["home", "-m", "pi_bootstrap.host.step", "-a", "step=bootstrap-validate manifest=~/no-such-manifest.yaml"],
    )?;
    assert_ne!(refused.code, Some(0), "{}", refused.text);
    assert!(refused.text.contains("the manifest or the command line is wrong"), "{}", refused.text);
    assert!(refused.text.contains("\"exit_code\": 2"), "{}", refused.text);

    let log = fs::read_to_string(dir.join("ansible.log"))?;
    assert!(log.contains("PLAY RECAP"), "Ansible wrote its log");
    no_canary("ansible-playbook", &controller.seen, &[CANARY])?;
    no_canary("Ansible's log", &log, &[CANARY])?;
    progress(&format!("the fleet test: {:.1}s", started.elapsed().as_secs_f64()));
    Ok(())
}

/// ansible-lint (production profile) passes on the collection: a finding fails the
/// suite.
#[test]
fn the_collection_is_ansible_lint_clean() -> TestResult {
    let bin = ansible_bin()?;
    let collection = collections().join("ansible_collections/pi_bootstrap/host");
    let home = tempfile::tempdir()?;
    let out = Command::new(bin.join("ansible-lint"))
        .env_clear()
        .env("HOME", home.path())
        .env("PATH", format!("{}:{PLAIN_PATH}", bin.display()))
        .env("LC_ALL", "C.UTF-8")
        .env("ANSIBLE_COLLECTIONS_PATH", collections())
        .env("NO_COLOR", "1")
        .args(["--offline", "--profile", "production", "--nocolor"])
        .current_dir(&collection)
        .output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "ansible-lint found problems:\n{text}");
    // A module whose documentation does not parse is an error beside a passing lint.
    assert!(!text.contains("[ERROR]") && !text.contains("[WARNING]"), "ansible-lint:\n{text}");
    Ok(())
}

/// The role installs every binary of the restore chain (`STEPS`), the chain itself
/// and the audit.
#[test]
fn the_role_installs_the_binaries_of_the_restore_order() -> TestResult {
    let defaults = fs::read_to_string(
        collections().join("ansible_collections/pi_bootstrap/host/roles/pi_bootstrap/defaults/main.yml"),
    )?;
    let listed: Vec<&str> = defaults
        .split_once("pi_bootstrap_binaries:")
        .map(|(_, rest)| rest.lines().filter_map(|l| l.trim().strip_prefix("- ")).collect())
        .unwrap_or_default();
    let mut wanted: Vec<&str> = vec![bootstrap_restore::NAME];
    wanted.extend(bootstrap_restore::STEPS.iter().map(|s| s.bin));
    wanted.push("pi-config-audit");
    assert_eq!(listed, wanted);
    Ok(())
}
