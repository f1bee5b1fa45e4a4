//! The audit binary on a temporary HOME with a clean environment (no user manager, so
//! the systemd parts are skipped and everything else is exact): the CLI contract (exit
//! 0 clean, 1 on drift, 2 on a bad manifest or an unknown `--only`), the file-level
//! drift it names, secrets never printed, nothing changed on disk, and snapshots of
//! both outputs.

#![allow(clippy::disallowed_methods)]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::{install_files, manifest};
use test_support::TestResult;
use test_support::git::git;
use test_support::json::item;
use test_support::process::clean_command;
use test_support::tree::{changes, listing};

const CANARY: &str = "canary-audit-file-token-4d21aa";

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Result<Host, Box<dyn std::error::Error>> {
        let dir = tempfile::Builder::new().prefix("pi-audit-").tempdir()?;
        let host = Host { dir };
        fs::create_dir_all(host.home())?;
        support::make_repo(&host.home().join("pi-config"))?;
        fs::write(host.manifest(), manifest(false))?;
        install_files(&host.home(), &host.nginx(), CANARY)?;
        support::backup_now(&host.home(), &host.dir.path().join("backup"))?;
        Ok(host)
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn nginx(&self) -> PathBuf {
        self.dir.path().join("nginx")
    }
    fn manifest(&self) -> PathBuf {
        self.dir.path().join("pi-bootstrap.yaml")
    }
    fn audit(&self, args: &[&str]) -> Result<Output, std::io::Error> {
        clean_command(env!("CARGO_BIN_EXE_pi-config-audit"), &self.home())
            .args(["--manifest", &self.manifest().display().to_string()])
            .args(args)
            .current_dir(self.dir.path())
            .env("NGINX_PREFIX", self.nginx())
            .env("PI_BACKUP_REPO", self.dir.path().join("backup"))
            .output()
    }
    /// The output with what changes from run to run made stable.
    fn redact(&self, bytes: &[u8]) -> String {
        support::redactions(self.dir.path(), "[TMP]").apply(bytes)
    }
}

fn json(out: &Output) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_slice(&out.stdout)
}

fn ids_with(report: &serde_json::Value, status: &str) -> Vec<String> {
    report["items"]
        .as_array()
        .map(|items| {
            items.iter().filter(|i| i["status"] == status).filter_map(|i| i["id"].as_str().map(str::to_owned)).collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_clean_host_exits_0_and_changes_nothing() -> TestResult {
    let host = Host::new()?;
    let before = listing(host.dir.path());
    let out = host.audit(&[])?;
    assert_eq!(out.status.code(), Some(0), "{}", host.redact(&out.stdout));
    assert_eq!(changes(&before, &listing(host.dir.path())), Vec::<String>::new());
    insta::assert_snapshot!("clean_human", host.redact(&out.stdout));
    let report = json(&host.audit(&["--json"])?)?;
    assert_eq!(ids_with(&report, "drift"), Vec::<String>::new());
    assert_eq!(ids_with(&report, "skipped"), ["scan:user-services"]);
    Ok(())
}

#[test]
fn file_level_drift_is_named_in_its_category() -> TestResult {
    let host = Host::new()?;
    let home = host.home();
    fs::remove_file(home.join(".pi/agent/settings.json"))?;
    fs::create_dir(home.join("scratch"))?;
    fs::write(home.join("notes.db"), "x")?;
    fs::set_permissions(home.join(".config/demo/demo.env"), fs::Permissions::from_mode(0o644))?;
    fs::set_permissions(home.join(".config/pi-bootstrap/restic-password"), fs::Permissions::from_mode(0o644))?;
    fs::write(host.nginx().join("sites-enabled/default"), "server { listen 80; }\n")?;
    let rc = home.join(".bashrc");
    fs::write(&rc, format!("{}# >>> pi-bootstrap: old >>>\n# <<< pi-bootstrap: old <<<\n", support::bashrc()))?;
    fs::write(home.join(".profile"), "# >>> pi-bootstrap: gone >>>\n# <<< pi-bootstrap: gone <<<\n")?;
    let units = home.join(".config/systemd/user");
    fs::create_dir_all(units.join("default.target.wants"))?;
    fs::create_dir_all(units.join("demo.service.d"))?;
    fs::write(units.join("demo.service.d/override.conf"), "[Service]\nRestart=no\n")?;
    fs::write(units.join("stray.timer"), "[Timer]\nOnCalendar=daily\n")?;
    std::os::unix::fs::symlink(
        "/usr/lib/systemd/user/syncthing.service",
        units.join("default.target.wants/syncthing.service"),
    )?;
    let repo = home.join("pi-config");
    fs::create_dir(repo.join("scratch-data"))?;
    fs::write(repo.join("local.env"), format!("TOKEN={CANARY}\n"))?;
    fs::create_dir_all(repo.join("data/x"))?;
    fs::write(repo.join("data/x/state.json"), "{}")?;
    git(&repo, &["add", "--force", "local.env", "data/x/state.json"])?;
    git(&repo, &["commit", "--quiet", "-m", "oops"])?;

    let before = listing(host.dir.path());
    let out = host.audit(&["--json"])?;
    assert_eq!(changes(&before, &listing(host.dir.path())), Vec::<String>::new(), "the audit changed files");
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out)?;
    let expected = [
        ("link:settings", "files"),
        ("undeclared-unit:demo.service.d/override.conf", "services"),
        ("undeclared-unit:stray.timer", "services"),
        ("undeclared-service:syncthing.service", "services"),
        ("undeclared-site:default", "nginx"),
        ("undeclared-block:~/.bashrc:old", "shell"),
        ("undeclared-block:~/.profile:gone", "shell"),
        ("env:demo", "secrets"),
        ("secret-mode:backup-password", "secrets"),
        ("unclassified:~/notes.db", "paths"),
        ("unclassified:~/scratch", "paths"),
        ("unclassified:~/pi-config/scratch-data", "paths"),
        ("repo-hygiene:data/x/state.json", "repo"),
        ("repo-hygiene:local.env", "repo"),
        // The "oops" commit was never pushed.
        ("repo:pi-config", "files"),
    ];
    let mut drifted = ids_with(&report, "drift");
    drifted.sort();
    let mut want: Vec<String> = expected.iter().map(|(id, _)| (*id).to_owned()).collect();
    want.sort();
    assert_eq!(drifted, want, "{report:#}");
    for (id, category) in expected {
        assert_eq!(item(&report, id)["category"], category, "{id}");
    }
    assert!(item(&report, "env:demo")["detail"].as_str().unwrap_or_default().contains("mode 0644, want 0600"));
    let human = host.audit(&[])?;
    let shown = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&human.stdout));
    assert!(!shown.contains(CANARY), "a secret was printed");
    assert!(!shown.contains("canary-restic-password"), "the backup password was printed");
    insta::assert_snapshot!("drifted_human", host.redact(&human.stdout));
    insta::assert_snapshot!("drifted_json", host.redact(&out.stdout));
    let quiet = host.audit(&["--quiet"])?;
    insta::assert_snapshot!("drifted_quiet", host.redact(&quiet.stdout));
    Ok(())
}

#[test]
fn only_keeps_the_named_items_and_refuses_unknown_ones() -> TestResult {
    let host = Host::new()?;
    fs::create_dir(host.home().join("scratch"))?;
    let out = host.audit(&["--json", "--only", "unclassified:~/scratch", "--only", "link:settings"])?;
    assert_eq!(out.status.code(), Some(1));
    let report = json(&out)?;
    let ids: Vec<&str> =
        report["items"].as_array().map(|i| i.iter().filter_map(|i| i["id"].as_str()).collect()).unwrap_or_default();
    assert_eq!(ids, ["link:settings", "unclassified:~/scratch"]);
    let unknown = host.audit(&["--only", "link:nope"])?;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--only link:nope"));
    Ok(())
}

#[test]
fn a_bad_manifest_exits_2_with_its_position() -> TestResult {
    let host = Host::new()?;
    fs::write(host.manifest(), manifest(false).replace("version: 1", "version: 1\nsurprise: true"))?;
    let out = host.audit(&[])?;
    assert_eq!(out.status.code(), Some(2));
    let stderr = host.redact(&out.stderr);
    assert!(stderr.contains("[TMP]/pi-bootstrap.yaml:2:1"), "{stderr}");
    assert!(out.stdout.is_empty());
    Ok(())
}

#[test]
fn hygiene_names_a_data_path_gitignore_does_not_cover() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    let repo = home.join("pi-config");
    support::make_repo(&repo)?;
    fs::write(repo.join(".gitignore"), "data/\n")?;
    let env = |name: &str| (name == "NGINX_PREFIX" || name == "PI_BACKUP_REPO").then(|| "/nowhere".to_owned());
    let manifest = common::manifest::load_str(Path::new("m.yaml"), &manifest(true), &home, &env)?;
    let declared = pi_config_audit::declared::Declared::new(&manifest, &home);
    let tracked = pi_config_audit::scan::repo::ls_files(&declared)?;
    let items = pi_config_audit::scan::repo::scan_hygiene(&declared, &tracked);
    let found: Vec<(&str, &str)> = items.iter().map(|i| (i.id.as_str(), i.detail.as_str())).collect();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "repo-hygiene:logs/alpha.log");
    assert!(found[0].1.contains("not covered by .gitignore (the log path of service alpha)"), "{found:?}");
    fs::write(repo.join(".gitignore"), support::GITIGNORE)?;
    let items = pi_config_audit::scan::repo::scan_hygiene(&declared, &tracked);
    assert_eq!(items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), ["scan:repo-tracked"]);
    Ok(())
}
