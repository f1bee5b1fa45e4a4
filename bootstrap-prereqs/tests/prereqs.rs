//! bootstrap-prereqs against real package managers: a real npm install from the npm
//! registry into a temporary prefix, a real failing install, version requirements,
//! `--check` on a host where the tools are absent, and a second run that installs
//! nothing (read from the JSON report).

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use test_support::TestResult;
use test_support::json::{from_output, item};

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new(prereqs: &str) -> Result<Host, std::io::Error> {
        let dir = tempfile::tempdir()?;
        let scripts = dir.path().join("home/pi-config/scripts");
        fs::create_dir_all(&scripts)?;
        fs::write(scripts.join("nothing.sh"), "#!/bin/sh\necho 'this script installs nothing'\n")?;
        let mut perms = fs::metadata(scripts.join("nothing.sh"))?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        fs::set_permissions(scripts.join("nothing.sh"), perms)?;
        let manifest = format!(
            "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\nprereqs:\n{prereqs}"
        );
        fs::write(dir.path().join("pi-bootstrap.yaml"), manifest)?;
        Ok(Host { dir })
    }
    fn prefix(&self) -> PathBuf {
        self.dir.path().join("npm-prefix")
    }
    fn run(&self, args: &[&str]) -> Output {
        let path = format!("{}/bin:/usr/local/bin:/usr/bin:/bin", self.prefix().display());
        let out = Command::new(env!("CARGO_BIN_EXE_bootstrap-prereqs"))
            .args(["--manifest", &self.dir.path().join("pi-bootstrap.yaml").display().to_string(), "--json"])
            .args(args)
            // The machine's proxy and certificate settings stay: npm must reach its registry.
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("NPM_CONFIG_USERCONFIG")
            .env("HOME", self.dir.path().join("home"))
            .env("PATH", path)
            .env("NPM_CONFIG_PREFIX", self.prefix())
            .env("NPM_CONFIG_CACHE", self.dir.path().join("npm-cache"))
            .env("NO_COLOR", "1")
            .output();
        match out {
            Ok(out) => out,
            Err(e) => panic!("cannot run bootstrap-prereqs: {e}"),
        }
    }
}

const SEMVER_FROM_NPM: &str = "  - name: semver
    check: [semver, --help]
    install: {npm: semver}
";

#[test]
fn a_missing_tool_is_installed_then_a_second_run_installs_nothing() -> TestResult {
    let host = Host::new(&format!(
        "{SEMVER_FROM_NPM}  - name: sh\n    check: [sh, -c, 'echo sh 5.2.15']\n    version: '>=5'\n    install: {{apt: dash}}\n"
    ))?;
    let check = host.run(&["--check"]);
    assert_eq!(check.status.code(), Some(1), "--check exits 1 when something would be installed");
    let check = from_output(&check)?;
    assert_eq!(item(&check, "prereq:semver")["status"], "would_change");
    assert_eq!(item(&check, "prereq:semver")["detail"], "semver is not installed; would install (npm: semver)");
    assert_eq!(check["commands"], serde_json::json!([]));
    assert!(!host.prefix().join("bin/semver").exists(), "--check installed something");

    let first = host.run(&[]);
    let first_report = from_output(&first)?;
    assert_eq!(first.status.code(), Some(0), "{first_report}");
    assert_eq!(item(&first_report, "prereq:semver")["status"], "changed");
    assert_eq!(item(&first_report, "prereq:sh")["status"], "ok");
    assert_eq!(first_report["commands"], serde_json::json!(["npm install --global --no-fund --no-audit semver"]));
    assert!(host.prefix().join("bin/semver").exists());

    let second = from_output(&host.run(&[]))?;
    assert_eq!(second["summary"]["changed"], 0);
    assert_eq!(second["summary"]["ok"], 2);
    assert_eq!(second["commands"], serde_json::json!([]), "a second run must run no install command");
    Ok(())
}

#[test]
fn a_failing_install_names_the_command_and_its_output_and_the_rest_is_still_observed() -> TestResult {
    let host = Host::new(
        "  - name: ghost
    check: [pi-bootstrap-ghost-tool, --version]
    install: {npm: pi-bootstrap-no-such-package-7f3a9c}
  - name: sh
    check: [sh, -c, 'echo 1.0.0']
    install: {apt: dash}
",
    )?;
    let out = host.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let report = from_output(&out)?;
    let ghost = item(&report, "prereq:ghost");
    assert_eq!(ghost["status"], "failed");
    let detail = ghost["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(
            "`npm install --global --no-fund --no-audit pi-bootstrap-no-such-package-7f3a9c` failed (exit code"
        ),
        "{detail}"
    );
    assert!(detail.contains("404"), "npm's own message is passed on: {detail}");
    assert_eq!(item(&report, "prereq:sh")["status"], "ok");
    Ok(())
}

#[test]
fn a_version_below_the_requirement_is_reported() -> TestResult {
    let host = Host::new(
        "  - name: old-tool
    check: [sh, -c, 'echo old-tool v1.2.3']
    version: '>=2.0'
    install: {script: scripts/nothing.sh}
",
    )?;
    let check = from_output(&host.run(&["--check"]))?;
    assert_eq!(
        item(&check, "prereq:old-tool")["detail"],
        "version 1.2.3 does not satisfy >=2.0; would install (script: scripts/nothing.sh)"
    );
    let out = host.run(&[]);
    assert_eq!(out.status.code(), Some(1));
    let report = from_output(&out)?;
    let tool = item(&report, "prereq:old-tool");
    assert_eq!(tool["status"], "failed");
    assert_eq!(
        tool["detail"],
        "still not right after installing (script: scripts/nothing.sh): version 1.2.3 does not satisfy >=2.0"
    );
    let script = Path::new(&host.dir.path().join("home/pi-config/scripts/nothing.sh")).display().to_string();
    assert_eq!(report["commands"], serde_json::json!([script]));
    Ok(())
}

#[test]
fn a_bad_version_requirement_is_refused_at_load_before_anything_runs() -> TestResult {
    let host = Host::new(
        "  - name: odd\n    check: [sh, -c, 'echo 1.0.0']\n    version: 'about one'\n    install: {apt: dash}\n",
    )?;
    let out = host.run(&[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("prereqs[0].version: \"about one\" is not a version requirement"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing ran");
    Ok(())
}
