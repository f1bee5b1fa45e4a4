//! Helpers shared by the audit's integration tests: a listing of a whole tree (to prove
//! the audit changes nothing), git with a fixed identity, the unit and site fixtures.

#![allow(dead_code, clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Every entry under `root`: its kind, mode and a hash of its content (or its link
/// target), by path relative to `root`.
pub fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).unwrap_or(&path).display().to_string();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let mode = meta.permissions().mode() & 0o7777;
        let what = if meta.file_type().is_symlink() {
            format!("link -> {}", fs::read_link(&path).map(|p| p.display().to_string()).unwrap_or_default())
        } else if meta.is_dir() {
            walk(root, &path, out);
            format!("dir {mode:04o}")
        } else if meta.is_file() {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            fs::read(&path).unwrap_or_default().hash(&mut hasher);
            format!("file {mode:04o} {:016x}", hasher.finish())
        } else {
            format!("other {mode:04o}")
        };
        out.insert(relative, what);
    }
}

/// The entries that differ between two listings, for a readable failure.
pub fn changes(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {path} ({was})")),
            Some(now) if now != was => out.push(format!("changed {path}: {was} -> {now}")),
            _ => {}
        }
    }
    for (path, now) in after {
        if !before.contains_key(path) {
            out.push(format!("added {path} ({now})"));
        }
    }
    out
}

/// Runs git in `dir` with a fixed identity; fails on a non-zero exit.
pub fn git(dir: &Path, args: &[&str]) -> Result<(), Box<dyn std::error::Error>> {
    let out = Command::new("git")
        .args(["-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(dir)
        .output()?;
    if !out.status.success() {
        return Err(format!("git {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A small web service: python's http.server on loopback.
pub fn unit(name: &str, port: u16, env: bool) -> String {
    let env_line = if env { "EnvironmentFile=%h/.config/demo/demo.env\n" } else { "" };
    format!(
        "[Unit]\nDescription={name}\n[Service]\nType=simple\n{env_line}ExecStart=/usr/bin/python3 -m http.server {port} --bind 127.0.0.1 --directory %h/pi-config/services/{name}\nRestart=on-failure\n[Install]\nWantedBy=default.target\n"
    )
}

pub const SITE: &str =
    "server {\n    listen 127.0.0.1:8080;\n    location /alpha/ { proxy_pass http://127.0.0.1:7401/; }\n}\n";

pub const BLOCK: &str = "alias demo='echo demo'\n";

/// `.bashrc` holding exactly the declared block, as bootstrap-services writes it.
pub fn bashrc() -> String {
    format!("# >>> pi-bootstrap: demo >>>\n{BLOCK}# <<< pi-bootstrap: demo <<<\n")
}

pub const GITIGNORE: &str = "data/\nlogs/\n*.env\n";

/// Writes the pi-config repo of the tests at `repo` and commits it.
pub fn make_repo(repo: &Path) -> Result<(), Box<dyn std::error::Error>> {
    for name in ["alpha", "beta"] {
        fs::create_dir_all(repo.join("services").join(name))?;
        fs::write(repo.join("services").join(name).join("index.html"), format!("{name}\n"))?;
    }
    for dir in ["pi", "systemd", "nginx", "shell"] {
        fs::create_dir_all(repo.join(dir))?;
    }
    fs::write(repo.join("pi/settings.json"), "{}\n")?;
    fs::write(repo.join("systemd/alpha.service"), unit("alpha", 7401, true))?;
    fs::write(repo.join("systemd/beta.service"), unit("beta", 7402, false))?;
    fs::write(repo.join("nginx/demo.conf"), SITE)?;
    fs::write(repo.join("shell/demo.sh"), BLOCK)?;
    fs::write(repo.join(".gitignore"), GITIGNORE)?;
    git(repo, &["init", "--quiet"])?;
    git(repo, &["remote", "add", "origin", "https://example.invalid/pi-config.git"])?;
    git(repo, &["add", "--all"])?;
    git(repo, &["commit", "--quiet", "-m", "fixture"])?;
    // As a clone has it: the remote's branch as last fetched, here equal to HEAD.
    git(repo, &["update-ref", "refs/remotes/origin/main", "HEAD"])?;
    Ok(())
}

/// The manifest of the tests; `services: false` leaves out services (no systemd).
pub fn manifest(services: bool) -> String {
    let mut text = String::from(
        "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
dirs:
  - name: pi-agent
    path: ~/.pi/agent
    mode: \"0700\"
",
    );
    if services {
        text.push_str(
            "services:
  - name: alpha
    purpose: the first demo service
    source: services/alpha
    unit: systemd/alpha.service
    env_file: demo
    data_path: ~/pi-config/data/alpha
    log_path: ~/pi-config/logs/alpha.log
    port: 7401
    backup: backup
  - name: beta
    purpose: the second demo service
    source: services/beta
    unit: systemd/beta.service
    port: 7402
",
        );
    }
    text.push_str(
        "nginx:
  prefix: ${NGINX_PREFIX}
  conf: ${NGINX_PREFIX}/nginx.conf
  sites_available: ${NGINX_PREFIX}/sites-available
  sites_enabled: ${NGINX_PREFIX}/sites-enabled
  sites:
    - name: demo
      source: nginx/demo.conf
shell:
  - name: demo
    file: ~/.bashrc
    source: shell/demo.sh
env:
  - name: demo
    path: ~/.config/demo/demo.env
    vars: [DEMO_TOKEN]
paths:
  - name: data
    path: ~/pi-config/data
    role: the services' durable data
    backup: backup
backup:
  repository: ${PI_BACKUP_REPO}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
",
    );
    text
}

/// Writes what the steps would have installed for the files of the manifest (not the
/// units): the link and folder, the nginx site, the shell block, the env file, the
/// backup password.
pub fn install_files(home: &Path, nginx: &Path, token: &str) -> Result<(), Box<dyn std::error::Error>> {
    let repo = home.join("pi-config");
    fs::create_dir_all(home.join(".pi/agent"))?;
    fs::set_permissions(home.join(".pi/agent"), fs::Permissions::from_mode(0o700))?;
    std::os::unix::fs::symlink(repo.join("pi/settings.json"), home.join(".pi/agent/settings.json"))?;
    for dir in ["sites-available", "sites-enabled"] {
        fs::create_dir_all(nginx.join(dir))?;
    }
    fs::write(nginx.join("nginx.conf"), "events {}\nhttp { include sites-enabled/*; }\n")?;
    fs::write(nginx.join("sites-available/demo"), SITE)?;
    std::os::unix::fs::symlink(nginx.join("sites-available/demo"), nginx.join("sites-enabled/demo"))?;
    fs::write(home.join(".bashrc"), bashrc())?;
    let env = home.join(".config/demo/demo.env");
    fs::create_dir_all(home.join(".config/demo"))?;
    fs::write(&env, format!("DEMO_TOKEN={token}\n"))?;
    fs::set_permissions(&env, fs::Permissions::from_mode(0o600))?;
    let password = home.join(".config/pi-bootstrap/restic-password");
    fs::create_dir_all(home.join(".config/pi-bootstrap"))?;
    fs::write(&password, "canary-restic-password-0c4e\n")?;
    fs::set_permissions(&password, fs::Permissions::from_mode(0o600))?;
    Ok(())
}

/// A fresh restic backup of the manifest's data (`~/pi-config/data`) in `repo`, as
/// `bootstrap-data backup` would have made it: the audit's backup category is clean.
pub fn backup_now(home: &Path, repo: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let data = home.join("pi-config/data/alpha");
    fs::create_dir_all(&data)?;
    fs::write(data.join("records.db"), "not really sqlite\n")?;
    let restic = |args: &[&str]| -> Result<(), Box<dyn std::error::Error>> {
        let out = std::process::Command::new("restic")
            .args(args)
            .env("RESTIC_REPOSITORY", repo)
            .env("RESTIC_PASSWORD_FILE", home.join(".config/pi-bootstrap/restic-password"))
            .env("RESTIC_CACHE_DIR", home.join(".cache/restic"))
            .output()?;
        if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned().into()) }
    };
    restic(&["init"])?;
    restic(&["backup", "--tag", "pi-bootstrap", &home.join("pi-config/data").display().to_string()])
}

/// The item of `id` in a JSON report (null when absent).
pub fn item<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .unwrap_or(&serde_json::Value::Null)
}
