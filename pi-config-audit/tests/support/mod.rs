//! What the audit's integration tests share: the repo, manifest and installed files of
//! the test host, a backup of its data, and the redactions of the audit's output.

#![allow(dead_code, clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use test_support::git::{git, init_repo};
use test_support::manifest::nginx_section;
use test_support::redact::{AGE, Redactions};

/// The audit's output with what changes from run to run made stable: `root` (the
/// temporary folder, as `label`), the machine's host name, snapshot ids, times and ages.
pub fn redactions(root: &Path, label: &str) -> Redactions {
    Redactions::new()
        .path(root, label)
        .rule(r"of host \S+,", "of host [HOST],")
        .snapshot_ids()
        .times()
        // The audit's snapshots were written with an age and its "old" as one `[AGE]`.
        .rule(&format!("{AGE} old"), "[AGE]")
        .ages()
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
    let (alpha, beta) = (unit("alpha", 7401, true), unit("beta", 7402, false));
    init_repo(
        repo,
        &[
            ("services/alpha/index.html", "alpha\n"),
            ("services/beta/index.html", "beta\n"),
            ("pi/settings.json", "{}\n"),
            ("systemd/alpha.service", &alpha),
            ("systemd/beta.service", &beta),
            ("nginx/demo.conf", SITE),
            ("shell/demo.sh", BLOCK),
            (".gitignore", GITIGNORE),
        ],
    )?;
    git(repo, &["remote", "add", "origin", "https://example.invalid/pi-config.git"])?;
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
    text.push_str(&nginx_section(&[("demo", "nginx/demo.conf")]));
    text.push_str(
        "shell:
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
