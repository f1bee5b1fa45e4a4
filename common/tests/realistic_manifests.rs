//! No meaning check fires on a correct manifest: realistic hosts, each the way a user
//! writes one, load with the repo absent and with the repo cloned (where every repo
//! file is looked up). Each manifest uses what the checks look at closely and a
//! correct host does: several managed blocks in one rc file, a folder above a link, a
//! service's data path also declared in `paths` with the same class, vars built from
//! vars and the environment, a remote and a local repository outside what is backed
//! up, URLs and TCP targets with `${NAME}`, units and timers, a route per site.

#![allow(clippy::disallowed_methods)]

use std::path::Path;

use common::manifest::load_str;

use test_support::TestResult;

fn env(name: &str) -> Option<String> {
    match name {
        "PI_DOMAIN" => Some("pi.example.org".to_owned()),
        "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_owned()),
        "BACKUP_DISK" => Some("/mnt/backup".to_owned()),
        _ => None,
    }
}

/// A desktop with the agent, a database sidecar with a sweep timer, a web UI behind
/// nginx, backed up to a local disk.
const WORKSTATION: &str = r#"
version: 1
host: pi-workstation
vars:
  PI_USER: pi
  RESTIC_ROOT: ${BACKUP_DISK}/restic/${PI_USER}
  MEMORY_PORT: "8080"
prereqs:
  - {name: bun, check: [bun, --version], version: ">=1.1", install: {script: scripts/install-bun.sh}}
  - {name: jq, check: [jq, --version], install: {apt: jq}}
  - {name: pi, check: [pi, --version], version: "^0.50", install: {npm: "@mariozechner/pi-coding-agent"}}
repo:
  path: ~/pi-config
  url: https://${PI_DOMAIN}/${PI_USER}/pi-config.git
  branch: main
  deps:
    - {name: extensions, run: [bun, install], dir: extensions, lockfile: extensions/bun.lock, installed: extensions/node_modules, timeout: 10m}
links:
  - {name: settings, source: pi/settings.json, target: ~/.pi/agent/settings.json}
  - {name: prompts, source: pi/prompts, target: ~/.pi/agent/prompts}
  - {name: pitmux, source: bin/pitmux, target: ~/.local/bin/pitmux}
dirs:
  - {name: agent, path: ~/.pi/agent, mode: "0700"}
  - {name: sessions, path: ~/.pi/agent/sessions, mode: "0700"}
  - {name: bin, path: ~/.local/bin}
services:
  - name: memory
    purpose: The agents' memory database.
    class: sidecar
    source: services/memory
    install: [bun, install]
    unit: units/memory.service
    env_file: memory
    runtime_path: ${XDG_RUNTIME_DIR}/memory
    data_path: ~/.local/share/memory
    log_path: ~/.local/state/memory
    port: 8080
    health: {http: {url: "http://127.0.0.1:${MEMORY_PORT}/health", status: 200, body: ok}}
    backup: backup
    capture: sqlite
  - name: sweeper
    purpose: Sweeps old sessions every night.
    class: job
    source: services/sweeper
    unit: units/sweeper.service
    timers: [units/sweeper.timer]
  - name: ui
    purpose: The web UI of the agent.
    class: web
    source: services/ui
    unit: units/ui.service
    port: 3000
    health: {tcp: "127.0.0.1:3000"}
nginx:
  prefix: ~/.local/nginx
  conf: ~/.local/nginx/nginx.conf
  sites_available: ~/.local/nginx/sites-available
  sites_enabled: ~/.local/nginx/sites-enabled
  sites:
    - name: ui
      source: nginx/ui.conf
      routes:
        - {url: "http://127.0.0.1:8081/", status: 200}
shell:
  - {name: path, file: ~/.bashrc, source: shell/path.sh}
  - {name: pitmux, file: ~/.bashrc, source: shell/pitmux.sh}
  - {name: prompt, file: ~/.profile, source: shell/prompt.sh}
env:
  - {name: memory, path: ~/.config/pi/memory.env, vars: [MEMORY_TOKEN], mode: "0600"}
paths:
  - {name: memory, path: ~/.local/share/memory, role: The memory database., backup: backup, owners: [memory]}
  - {name: sessions, path: ~/.pi/agent/sessions, role: Agent sessions., backup: backup}
  - {name: cache, path: ~/.cache, role: Caches., backup: disposable}
  - {name: pi-config, path: ~/pi-config, role: The pi-config work tree., backup: git}
backup:
  repository: ${RESTIC_ROOT}
  password_file: ~/.config/restic/password
  max_age: 26h
  schedule: daily
  keep: {daily: 7, weekly: 4}
  verify: {read_data: 5%, files: 3, every: 7d, max_age: 8d}
validate:
  - {name: memory-up, command: [curl, -fsS, "http://127.0.0.1:8080/health"], exit: 0, output: "ok", timeout: 5s}
  - {name: ui, http: {url: "https://${PI_DOMAIN}/", status: 200}}
  - {name: settings, file: ~/.pi/agent/settings.json}
"#;

/// A small server: one bridge, a remote repository, no nginx.
const SERVER: &str = r#"
version: 1
repo:
  path: $HOME/src/pi-config
  url: git@github.com:someone/pi-config.git
  branch: release/2026
links:
  - {name: agents, source: AGENTS.md, target: ~/.pi/agent/AGENTS.md}
services:
  - name: telegram
    purpose: The Telegram bridge.
    class: bridge
    source: services/telegram
    unit: units/telegram.service
    env_file: telegram
    data_path: ~/.local/share/telegram
    backup: backup
    health: {command: {shell: "systemctl --user is-active telegram.service"}}
env:
  - {name: telegram, path: ~/.config/telegram/telegram.env, vars: [TELEGRAM_TOKEN, TELEGRAM_CHAT]}
backup:
  repository: sftp:backup@backup.example.org:/srv/restic/pi
  password_file: ~/.config/restic/password
  max_age: 2d
"#;

/// The least a host declares.
const MINIMAL: &str = "version: 1\nrepo:\n  path: ~/pi-config\n  url: file:///srv/git/pi-config.git\n";

/// `repo_dir` under HOME as a complete clone holding `files`.
fn clone_with(home: &Path, repo_dir: &str, files: &[&str]) -> TestResult {
    let files: Vec<(&str, &str)> = files.iter().map(|file| (*file, "# fixture\n")).collect();
    test_support::git::init_repo(&home.join(repo_dir), &files)
}

fn loads(name: &str, text: &str, home: &Path) -> TestResult {
    load_str(Path::new(name), text, home, &env).map(|_| ()).map_err(|e| format!("{name} was refused:\n{e}").into())
}

#[test]
fn realistic_hosts_load_without_their_repo() -> TestResult {
    for (name, text) in [("workstation.yaml", WORKSTATION), ("server.yaml", SERVER), ("minimal.yaml", MINIMAL)] {
        let home = tempfile::tempdir()?;
        loads(name, text, home.path())?;
    }
    Ok(())
}

#[test]
fn realistic_hosts_load_with_their_repo_cloned() -> TestResult {
    let home = tempfile::tempdir()?;
    clone_with(
        home.path(),
        "pi-config",
        &[
            "scripts/install-bun.sh",
            "extensions/bun.lock",
            "pi/settings.json",
            "pi/prompts/review.md",
            "bin/pitmux",
            "services/memory/index.ts",
            "services/sweeper/sweep.sh",
            "services/ui/index.html",
            "units/memory.service",
            "units/sweeper.service",
            "units/sweeper.timer",
            "units/ui.service",
            "nginx/ui.conf",
            "shell/path.sh",
            "shell/pitmux.sh",
            "shell/prompt.sh",
        ],
    )?;
    loads("workstation.yaml", WORKSTATION, home.path())?;

    let home = tempfile::tempdir()?;
    clone_with(home.path(), "src/pi-config", &["AGENTS.md", "services/telegram/bot.py", "units/telegram.service"])?;
    loads("server.yaml", SERVER, home.path())
}
