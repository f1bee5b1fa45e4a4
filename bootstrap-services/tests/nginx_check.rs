//! `--check` tests an nginx site as the run would, with a real nginx in a sandbox: a
//! site that `nginx -t` refuses on its staged copy is a failed item of the check (not a
//! "would change"), and both the check and the run name the repo file and line of the
//! mistake (`~/pi-config/nginx/web.conf:4`) with nginx's own message, never the staged
//! path; the run leaves the live site and the running nginx as they were, the check
//! changes nothing at all (not even the state folder on a fresh host), and once the
//! file is fixed both converge and a second run changes nothing.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::sandbox::{self, Machine};
use test_support::TestResult;
use test_support::json::{detail, item};
use test_support::manifest::nginx_section;
use test_support::process::text;
use test_support::redact::Redactions;
use test_support::tree::{self, Listing, changes};

/// A site answering `/version` with `answer`; `fourth` is its fourth line.
fn site(answer: &str, fourth: &str) -> String {
    format!(
        "server {{\n    listen 127.0.0.1:8080;\n    location = /version {{ return 200 \"{answer}\"; }}\n{fourth}\n}}\n"
    )
}

/// The mistake, on line 4: a directive nginx does not know.
const TYPO: &str = "    add_headr X-Site web;";
const FIXED: &str = "    add_header X-Site web;";

/// One nginx site from a pi-config repo, nothing else, and nginx running.
struct Fixture {
    machine: Machine,
}

impl Fixture {
    fn new(mut machine: Machine) -> Result<Fixture, Box<dyn std::error::Error>> {
        let repo = machine.layout.home().join("pi-config");
        fs::create_dir_all(repo.join("nginx"))?;
        fs::write(repo.join("nginx/web.conf"), site("v1", FIXED))?;
        let manifest = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
{}",
            nginx_section(&[("web", "nginx/web.conf")])
        );
        fs::write(machine.layout.root.join("pi-bootstrap.yaml"), manifest)?;
        machine.start_nginx()?;
        Ok(Fixture { machine })
    }

    fn repo_site(&self) -> PathBuf {
        self.machine.layout.home().join("pi-config/nginx/web.conf")
    }

    fn prefix(&self) -> PathBuf {
        self.machine.layout.nginx_prefix()
    }

    /// The step with `args`, `--json` unless `human`.
    fn step(&self, args: &[&str], human: bool) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        let manifest = self.machine.layout.root.join("pi-bootstrap.yaml");
        let mut cmd = self.machine.command(env!("CARGO_BIN_EXE_bootstrap-services"));
        cmd.args(["--manifest", &manifest.display().to_string()]).args(args);
        if !human {
            cmd.arg("--json");
        }
        let out = cmd.output()?;
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        Ok((out, json))
    }

    fn run(&self) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        self.step(&[], false)
    }

    fn check(&self) -> Result<(Output, serde_json::Value), Box<dyn std::error::Error>> {
        self.step(&["--check"], false)
    }

    fn get(&self, url: &str) -> Result<String, Box<dyn std::error::Error>> {
        test_support::sandbox::get(&self.machine, url)
    }

    /// nginx's master and its workers: a reload replaces the workers.
    fn nginx_processes(&self) -> Result<(String, Vec<String>), Box<dyn std::error::Error>> {
        let master = fs::read_to_string(self.prefix().join("nginx.pid"))?.trim().to_owned();
        let mut workers = Vec::new();
        for entry in fs::read_dir("/proc")?.flatten() {
            let status = fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            if status.lines().any(|l| l.strip_prefix("PPid:").is_some_and(|p| p.trim() == master)) {
                workers.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        workers.sort();
        Ok((master, workers))
    }

    /// Everything under HOME and the nginx prefix (its logs left out: requests write
    /// them), by path under the sandbox's folder.
    fn tree(&self) -> Listing {
        let mut tree = tree::listing(&self.machine.layout.root);
        tree.retain(|path, _| {
            (path.starts_with("home/") || path.starts_with("nginx/")) && !path.starts_with("nginx/logs")
        });
        tree
    }

    /// The state folder's staging folders.
    fn staging(&self) -> Vec<String> {
        tree::names(&self.machine.layout.home().join(".local/state/pi-bootstrap/tmp"))
    }

    fn redact(&self, text: &str) -> String {
        Redactions::new().path(&self.machine.layout.root, "[SANDBOX]").apply(text)
    }
}

#[test]
fn check_and_run_refuse_a_site_nginx_rejects_naming_the_repo_file_and_line() -> TestResult {
    let Some(machine) = sandbox::isolated("check_and_run_refuse_a_site_nginx_rejects_naming_the_repo_file_and_line")
    else {
        return Ok(());
    };
    let fx = Fixture::new(machine)?;
    let state = fx.machine.layout.home().join(".local/state/pi-bootstrap");

    // A fresh host: the check tests the working site on a staged copy and leaves
    // nothing behind, not even the state folder it staged in.
    let before = fx.tree();
    let (check, report) = fx.check()?;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert_eq!(item(&report, "nginx:web")["status"], "would_change", "{report:#}");
    assert_eq!(changes(&before, &fx.tree()), Vec::<String>::new(), "the check changed the host");
    assert!(!state.exists(), "the check left the state folder behind");

    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(item(&report, "nginx:web")["status"], "changed", "{report:#}");
    assert_eq!(fx.get("http://127.0.0.1:8080/version")?, "v1");

    // The mistake, on line 4 of the repo's file.
    fs::write(fx.repo_site(), site("v2", TYPO))?;
    let live_site = fx.prefix().join("sites-available/web");
    let live = fx.tree();
    let nginx = fx.nginx_processes()?;
    assert!(!nginx.1.is_empty(), "nginx has no workers: {nginx:?}");
    let mistake = "unknown directive \"add_headr\" in ~/pi-config/nginx/web.conf:4";

    let (check, report) = fx.check()?;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    let web = item(&report, "nginx:web");
    assert_eq!(web["status"], "failed", "the check must fail what the run refuses: {report:#}");
    let said = detail(&report, "nginx:web");
    assert!(said.contains("nginx -t refused the new configuration, so a run would change nothing live"), "{said}");
    assert!(said.contains(&format!("nginx: [emerg] {mistake}")), "the repo file and line, nginx's words: {said}");
    assert!(!said.contains("pi-bootstrap/tmp") && !said.contains("sites-enabled/web:"), "a staged path: {said}");
    assert!(web["diff"].as_str().is_some_and(|d| d.contains("+    add_headr X-Site web;")), "{report:#}");
    assert_eq!(report["summary"]["failed"], 1, "{report:#}");
    assert_eq!(changes(&live, &fx.tree()), Vec::<String>::new(), "the check changed the host");
    assert_eq!(fx.staging(), Vec::<String>::new(), "the check left its staging folder");
    let (human, _) = fx.step(&["--check"], true)?;
    assert_eq!(human.status.code(), Some(1), "{}", text(&human));
    insta::assert_snapshot!("refused_check_human", fx.redact(&String::from_utf8_lossy(&human.stdout)));

    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(item(&report, "nginx:web")["status"], "failed", "{report:#}");
    let said = detail(&report, "nginx:web");
    assert!(said.contains("nginx -t refused the new configuration; nothing live was changed"), "{said}");
    assert!(said.contains(&format!("nginx: [emerg] {mistake}")), "the repo file and line, nginx's words: {said}");
    assert!(!said.contains("pi-bootstrap/tmp") && !said.contains("sites-enabled/web:"), "a staged path: {said}");
    insta::assert_snapshot!("refused_run_detail", fx.redact(&said));
    assert_eq!(report["commands"], serde_json::json!([]), "nothing ran that changes the host: {report:#}");
    assert!(fs::read_to_string(&live_site)?.contains("\"v1\""), "the live site was replaced");
    let outside_state = |tree: &Listing| -> Listing {
        tree.iter()
            .filter(|(p, _)| !Path::new(p).starts_with("home/.local/state/pi-bootstrap"))
            .map(|(p, c)| (p.clone(), c.clone()))
            .collect()
    };
    assert_eq!(
        changes(&outside_state(&live), &outside_state(&fx.tree())),
        Vec::<String>::new(),
        "the refused run changed the host outside its state folder"
    );
    assert_eq!(fx.nginx_processes()?, nginx, "nginx was reloaded or restarted");
    assert_eq!(fx.get("http://127.0.0.1:8080/version")?, "v1", "nginx stopped serving the live site");
    assert_eq!(fx.staging(), Vec::<String>::new(), "the run left its staging folder");

    // Fixed: the check would change it, the run does, and a second run changes nothing.
    fs::write(fx.repo_site(), site("v2", FIXED))?;
    let (check, report) = fx.check()?;
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert_eq!(item(&report, "nginx:web")["status"], "would_change", "{report:#}");
    assert_eq!(detail(&report, "nginx:web"), "differs from the repo", "{report:#}");
    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(item(&report, "nginx:web")["status"], "changed", "{report:#}");
    assert_eq!(fx.get("http://127.0.0.1:8080/version")?, "v2", "nginx does not serve the fixed site");
    assert_ne!(fx.nginx_processes()?.1, nginx.1, "nginx was not reloaded");
    let (out, report) = fx.run()?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(report["summary"]["changed"], 0, "{report:#}");
    assert_eq!(report["commands"], serde_json::json!([]), "{report:#}");
    let (check, report) = fx.check()?;
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert_eq!(item(&report, "nginx:web")["status"], "ok", "{report:#}");
    Ok(())
}
