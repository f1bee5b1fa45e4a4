//! The example host (`examples/pi-host/`) is a real manifest: it loads on its own, and
//! with its pi-config fixture in place, where every repo file it names is checked.

use std::error::Error;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::manifest::{BackupClass, Manifest, ServiceClass, load_str};

type TestResult = Result<(), Box<dyn Error>>;

fn example_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pi-host")
}

/// Loads the example with HOME at `home` and the given environment.
fn load_example(home: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Manifest, Box<dyn Error>> {
    let file = example_dir().join("pi-bootstrap.yaml");
    let text = fs::read_to_string(&file)?;
    // The error's Display lists every problem with file:line:col; keep it readable.
    load_str(&file, &text, home, env).map_err(|e| e.to_string().into())
}

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn loads_without_the_repo() -> TestResult {
    let home = tempfile::tempdir()?;
    let manifest = load_example(home.path(), &no_env)?;
    assert_eq!(manifest.repo.path.path(), home.path().join("pi-config"));
    Ok(())
}

#[test]
fn loads_with_the_fixture_as_the_repo() -> TestResult {
    let home = tempfile::tempdir()?;
    let repo = home.path().join("pi-config");
    test_support::tree::copy(&example_dir().join("pi-config"), &repo)?;
    let manifest = load_example(home.path(), &no_env)?;

    // Loading checked that they exist; check they are inside the fixture too.
    let mut repo_files: Vec<&Path> = manifest.links.iter().map(|l| l.source.path()).collect();
    for service in &manifest.services {
        repo_files.extend([service.source.path(), service.unit.path()]);
        repo_files.extend(service.timers.iter().map(|t| t.path()));
    }
    repo_files.extend(manifest.shell.iter().map(|b| b.source.path()));
    repo_files.extend(manifest.nginx.iter().flat_map(|n| n.sites.iter().map(|s| s.source.path())));
    for file in repo_files {
        assert!(file.starts_with(&repo), "{} is not in the repo", file.display());
        assert!(file.exists(), "{} is missing from the fixture", file.display());
    }

    // Helper CLIs must stay executable in the fixture, or their links are useless.
    for link in manifest.links.iter().filter(|l| l.source.raw().starts_with("bin/")) {
        let mode = fs::metadata(link.source.path())?.permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{} is not executable ({mode:o})", link.source.raw());
    }
    Ok(())
}

#[test]
fn vars_are_defaults_the_environment_overrides() -> TestResult {
    let home = tempfile::tempdir()?;
    let manifest = load_example(home.path(), &no_env)?;
    let nginx = manifest.nginx.as_ref().ok_or("no nginx section")?;
    assert_eq!(nginx.conf.path(), Path::new("/etc/nginx/nginx.conf"));
    assert_eq!(manifest.repo.url.value, "https://github.com/example/pi-config.git");
    let backup = manifest.backup.as_ref().ok_or("no backup section")?;
    assert_eq!(backup.repository.value, "/var/backups/pi-host-restic");

    let env = |name: &str| match name {
        "NGINX_PREFIX" => Some("/tmp/sandbox/nginx".to_owned()),
        "PI_BACKUP_REPO" => Some("/tmp/sandbox/restic".to_owned()),
        _ => None,
    };
    let manifest = load_example(home.path(), &env)?;
    let nginx = manifest.nginx.as_ref().ok_or("no nginx section")?;
    assert_eq!(nginx.sites_available.path(), Path::new("/tmp/sandbox/nginx/sites-available"));
    let backup = manifest.backup.as_ref().ok_or("no backup section")?;
    assert_eq!(backup.repository.value, "/tmp/sandbox/restic");
    Ok(())
}

#[test]
fn the_host_is_the_one_the_plan_describes() -> TestResult {
    let home = tempfile::tempdir()?;
    let manifest = load_example(home.path(), &no_env)?;

    let services: Vec<(&str, ServiceClass, Option<u16>)> =
        manifest.services.iter().map(|s| (s.name.as_str(), s.class, s.port)).collect();
    assert_eq!(
        services,
        [
            ("agents-database", ServiceClass::Sidecar, Some(7301)),
            ("session-memory-dispatcher", ServiceClass::Sidecar, Some(7302)),
            ("session-memory-sweeper", ServiceClass::Job, None),
            ("session-memory-analyzer", ServiceClass::Job, None),
            ("pi-telegram", ServiceClass::Bridge, None),
            ("phase-runner", ServiceClass::Sidecar, Some(7303)),
            ("tool-usage-telemetry", ServiceClass::Job, None),
            ("copyparty", ServiceClass::Web, Some(3923)),
        ]
    );
    for service in &manifest.services {
        let name = service.name.as_str();
        assert!(service.health.is_some(), "{name} has no health check");
        assert!(service.log_path.is_some(), "{name} has no log path");
        assert_eq!(
            service.class == ServiceClass::Job,
            !service.timers.is_empty(),
            "{name}: jobs, and only jobs, come with timers"
        );
    }
    let bridge = manifest.services.iter().find(|s| s.name.as_str() == "pi-telegram").ok_or("no pi-telegram")?;
    assert_eq!(bridge.env_file.as_deref(), Some("telegram"));

    // Every env file is private, and every durable path is backed up.
    assert!(manifest.env.iter().all(|e| e.mode.is_some_and(|m| m.0 == 0o600)));
    let classes = manifest.classified_paths();
    let class_of = |path: &Path| classes.iter().find(|(p, _, _)| p.path() == path).map(|(_, c, _)| *c);
    let h = home.path();
    for durable in ["pi-config/agents-database", "pi-config/work", "pi-config/outputs", ".pi/agent/sessions"] {
        assert_eq!(class_of(&h.join(durable)), Some(BackupClass::Backup), "{durable}");
    }
    assert_eq!(class_of(&h.join("pi-config")), Some(BackupClass::Git));
    assert_eq!(class_of(&h.join("pi-config/runtime")), Some(BackupClass::Disposable));
    Ok(())
}
