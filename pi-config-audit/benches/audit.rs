//! The audit's speed: the example host, and a generated host of 1,000 services (each
//! with a unit, an env file, data, runtime and log paths and a port), on a temporary
//! HOME with the repo committed in git. The systemd user manager is not needed: the
//! benchmark measures the observe path and the scans (a host without a manager gets
//! skipped systemd items, as it would without one), whole and piece by piece.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::engine::{self, Ctx, RunOptions};
use common::manifest::{self, Manifest};
use common::output::Verbosity;
use criterion::{Criterion, criterion_group, criterion_main};
use pi_config_audit::declared::Declared;
use pi_config_audit::{BackupStatus, Options, render, scan};
use test_support::git::git;
use test_support::tree;

type Error = Box<dyn std::error::Error>;

/// Backup freshness asks restic, which is not what these benchmarks measure.
struct NoBackupCheck;

impl BackupStatus for NoBackupCheck {
    fn status(&self, _: &common::manifest::Manifest, _: &common::engine::Ctx) -> common::report::Report {
        common::report::Report::new("bootstrap-data", true)
    }
}

/// The folders and links of pi-config, as `bootstrap-pi-config` makes them.
fn install_files(manifest: &Manifest, home: &Path) -> Result<(), Error> {
    let ctx = Ctx::new(home);
    let plan = bootstrap_pi_config::plan(manifest, bootstrap_pi_config::Fetch::No);
    let files: Vec<&dyn engine::Resource> = plan
        .iter()
        .map(|r| r.as_ref())
        .filter(|r| r.id().0.starts_with("dir:") || r.id().0.starts_with("link:"))
        .collect();
    let installed = engine::run("bench", &files, &ctx, &RunOptions::default());
    if installed.summary.failed > 0 {
        return Err(format!("the bench host did not install: {:?}", installed.items).into());
    }
    Ok(())
}

/// A HOME with the repo committed, its manifest loaded, and the folders and links of
/// pi-config in place (the rest as a fresh host would have it).
struct Host {
    _dir: tempfile::TempDir,
    home: PathBuf,
    manifest: Manifest,
}

impl Host {
    fn load(dir: tempfile::TempDir, text: &str, url: &str) -> Result<Host, Error> {
        let home = dir.path().join("home");
        let repo = home.join("pi-config");
        git(&repo, &["init", "--quiet"])?;
        git(&repo, &["remote", "add", "origin", url])?;
        git(&repo, &["add", "--all"])?;
        git(&repo, &["commit", "--quiet", "-m", "bench"])?;
        let nginx = dir.path().join("nginx");
        let backup = dir.path().join("backup");
        let env = move |name: &str| match name {
            "NGINX_PREFIX" => Some(nginx.display().to_string()),
            "PI_BACKUP_REPO" => Some(backup.display().to_string()),
            _ => None,
        };
        let manifest = manifest::load_str(&dir.path().join("pi-bootstrap.yaml"), text, &home, &env)?;
        install_files(&manifest, &home)?;
        Ok(Host { _dir: dir, home, manifest })
    }

    fn example() -> Result<Host, Error> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pi-host");
        let dir = tempfile::tempdir()?;
        tree::copy(&root.join("pi-config"), &dir.path().join("home/pi-config"))?;
        let text = fs::read_to_string(root.join("pi-bootstrap.yaml"))?;
        Host::load(dir, &text, "https://github.com/example/pi-config.git")
    }

    /// 1,000 services, their units installed, their env files written.
    fn generated(services: usize) -> Result<Host, Error> {
        let dir = tempfile::tempdir()?;
        let home = dir.path().join("home");
        let repo = home.join("pi-config");
        let units = home.join(".config/systemd/user");
        fs::create_dir_all(repo.join("systemd"))?;
        fs::create_dir_all(&units)?;
        fs::write(repo.join(".gitignore"), "data/\nruntime/\nlogs/\n*.env\n")?;
        let mut text = String::from(
            "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\nservices:\n",
        );
        let mut env = String::from("env:\n");
        for n in 0..services {
            let name = format!("svc-{n:04}");
            fs::create_dir_all(repo.join("services").join(&name))?;
            fs::write(repo.join("services").join(&name).join("main.py"), format!("print('{name}')\n"))?;
            let unit = format!(
                "[Unit]\nDescription={name}\n[Service]\nEnvironmentFile=%h/.config/svc/{name}.env\nExecStart=/usr/bin/python3 %h/pi-config/services/{name}/main.py\n[Install]\nWantedBy=default.target\n"
            );
            fs::write(repo.join("systemd").join(format!("{name}.service")), &unit)?;
            fs::write(units.join(format!("{name}.service")), &unit)?;
            text.push_str(&format!(
                "  - name: {name}\n    purpose: generated service {n}\n    source: services/{name}\n    unit: systemd/{name}.service\n    env_file: {name}\n    data_path: ~/pi-config/data/{name}\n    runtime_path: ~/pi-config/runtime/{name}\n    log_path: ~/pi-config/logs/{name}.log\n    port: {}\n    backup: backup\n",
                20000 + n
            ));
            env.push_str(&format!("  - name: {name}\n    path: ~/.config/svc/{name}.env\n    vars: [TOKEN]\n"));
            let env_file = home.join(format!(".config/svc/{name}.env"));
            fs::create_dir_all(home.join(".config/svc"))?;
            fs::write(&env_file, format!("TOKEN=bench-secret-{n:05}\n"))?;
            fs::set_permissions(&env_file, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
        text.push_str(&env);
        text.push_str(
            "paths:\n  - name: data\n    path: ~/pi-config/data\n    role: the services' data\n    backup: backup\nbackup:\n  repository: ${PI_BACKUP_REPO}\n  password_file: ~/.config/pi-bootstrap/restic-password\n  max_age: 26h\n",
        );
        Host::load(dir, &text, "https://example.invalid/pi-config.git")
    }

    fn ctx(&self) -> Ctx {
        Ctx::new(&self.home)
    }
}

fn audit(host: &Host, prereqs: bool) -> usize {
    let options = Options {
        verbosity: Verbosity::Quiet,
        backup: &NoBackupCheck,
        sockets: scan::ports::Sockets::Kernel,
        prereqs,
        deep_prereqs: false,
        fetch: bootstrap_pi_config::Fetch::No,
    };
    match pi_config_audit::audit(&host.manifest, &host.ctx(), &options) {
        Ok(audit) => audit.report.items.len(),
        Err(e) => panic!("the audit refused: {e}"),
    }
}

fn benches(c: &mut Criterion) {
    let (example, generated) = match (Host::example(), Host::generated(1000)) {
        (Ok(example), Ok(generated)) => (example, generated),
        (Err(e), _) | (_, Err(e)) => panic!("cannot build the bench hosts: {e}"),
    };
    let mut group = c.benchmark_group("audit");
    group.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    group.bench_function("example host, with prereq checks", |b| b.iter(|| audit(&example, true)));
    group.bench_function("example host, without prereq checks", |b| b.iter(|| audit(&example, false)));
    group.bench_function("1000 services", |b| b.iter(|| audit(&generated, false)));
    let declared = Declared::new(&generated.manifest, &generated.home);
    group.bench_function("1000 services: what the manifest declares", |b| {
        b.iter(|| Declared::new(&generated.manifest, &generated.home))
    });
    let manager = scan::units::Manager::Unreachable("bench".into());
    group
        .bench_function("1000 services: unit folder scan", |b| b.iter(|| scan::units::scan_units(&declared, &manager)));
    group.bench_function("1000 services: ports", |b| {
        b.iter(|| scan::ports::scan_ports(&declared.ports, &scan::ports::Sockets::Kernel))
    });
    group.bench_function("1000 services: HOME and repo root", |b| b.iter(|| scan::home::scan_home(&declared)));
    group.bench_function("1000 services: repo hygiene (2 git calls)", |b| {
        b.iter(|| match scan::repo::ls_files(&declared) {
            Ok(tracked) => scan::repo::scan_hygiene(&declared, &tracked),
            Err(e) => panic!("git ls-files: {e}"),
        })
    });
    group.bench_function("1000 services: services step (--check)", |b| {
        let check = RunOptions { check: true, only: Vec::new(), verbosity: Verbosity::Quiet, audit: true };
        b.iter(|| bootstrap_services::run(&generated.manifest, &generated.ctx(), &check).map(|r| r.items.len()))
    });
    // The audit registered the 1,000 env values as secrets: every output is redacted.
    let options = Options {
        verbosity: Verbosity::Normal,
        backup: &NoBackupCheck,
        sockets: scan::ports::Sockets::Kernel,
        prereqs: false,
        deep_prereqs: false,
        fetch: bootstrap_pi_config::Fetch::No,
    };
    let audited = match pi_config_audit::audit(&generated.manifest, &generated.ctx(), &options) {
        Ok(audited) => audited,
        Err(e) => panic!("the audit refused: {e}"),
    };
    group.bench_function("1000 services: human output (1000 secrets to redact)", |b| {
        b.iter(|| render::render_human(&audited, &generated.home, Verbosity::Normal, false).len())
    });
    group.bench_function("1000 services: JSON output (1000 secrets to redact)", |b| {
        b.iter(|| render::render_json(&audited).len())
    });
    group.finish();
}

criterion_group!(audit_benches, benches);
criterion_main!(audit_benches);
