//! `--check` tests an nginx site as the run would, with a real nginx in a sandbox: a
//! site that `nginx -t` refuses on its staged copy is a failed item of the check (not a
//! "would change"), and both the check and the run name the repo file and line of the
//! mistake (`~/pi-config/nginx/web.conf:4`) with nginx's own message, never the staged
//! path; the run leaves the live site and the running nginx as they were, the check
//! changes nothing at all (not even the state folder on a fresh host), and once the
//! file is fixed both converge and a second run changes nothing.

#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::sandbox::{self, Machine};

type TestResult = Result<(), Box<dyn std::error::Error>>;

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
        let manifest = "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
nginx:
  prefix: ${NGINX_PREFIX}
  conf: ${NGINX_PREFIX}/nginx.conf
  sites_available: ${NGINX_PREFIX}/sites-available
  sites_enabled: ${NGINX_PREFIX}/sites-enabled
  sites:
    - name: web
      source: nginx/web.conf
";
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
        let script = format!(
            "import urllib.request\ntry:\n    print(urllib.request.urlopen('{url}', timeout=5).read().decode().strip())\nexcept Exception as e:\n    print('error', e)"
        );
        let out = self.machine.command("python3").args(["-c", &script]).output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
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
    /// them): type, and a file's content or a link's target.
    fn tree(&self) -> BTreeMap<PathBuf, String> {
        let mut tree = BTreeMap::new();
        walk(&self.machine.layout.home(), &mut tree);
        walk(&self.prefix(), &mut tree);
        tree.retain(|path, _| !path.starts_with(self.prefix().join("logs")));
        tree
    }

    /// The state folder's staging folders.
    fn staging(&self) -> Vec<String> {
        fs::read_dir(self.machine.layout.home().join(".local/state/pi-bootstrap/tmp"))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    fn redact(&self, text: &str) -> String {
        text.replace(&self.machine.layout.root.display().to_string(), "[SANDBOX]")
    }
}

fn walk(dir: &Path, tree: &mut BTreeMap<PathBuf, String>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        if meta.file_type().is_symlink() {
            let to = fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
            tree.insert(path, format!("link -> {to}"));
        } else if meta.is_dir() {
            tree.insert(path.clone(), "folder".to_owned());
            walk(&path, tree);
        } else {
            let content = fs::read(&path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            tree.insert(path, format!("file {content}"));
        }
    }
}

fn item<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["id"] == id))
        .unwrap_or(&serde_json::Value::Null)
}

fn detail(report: &serde_json::Value, id: &str) -> String {
    item(report, id)["detail"].as_str().unwrap_or_default().to_owned()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What the tree gained, lost or changed.
fn changes(before: &BTreeMap<PathBuf, String>, after: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => out.push(format!("removed {}", path.display())),
            Some(now) if now != was => out.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    out.extend(after.keys().filter(|p| !before.contains_key(*p)).map(|p| format!("added {}", p.display())));
    out
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
    let outside_state = |tree: &BTreeMap<PathBuf, String>| {
        tree.iter().filter(|(p, _)| !p.starts_with(&state)).map(|(p, c)| (p.clone(), c.clone())).collect()
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
