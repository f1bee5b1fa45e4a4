//! The cache of the checks' answers, with real programs in a temporary HOME: a small
//! tool on PATH that writes down every time it runs, so that a run that does not run it
//! is proved, not assumed. An unchanged tool is not run again (nor by `--check`, which
//! writes nothing); `--deep` runs it; an upgrade (a new file, or the same file
//! rewritten), a link pointed elsewhere, another argv or env, a removal are all seen; a
//! raised requirement is judged on the cached version; shells and shell scripts are run
//! every time; a corrupt cache is reported, not used, kept aside and rebuilt; and the
//! audit's read-only observation uses the cache and writes nothing (with `--deep`, it
//! runs the tool and still writes nothing).

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;
use test_support::TestResult;
use test_support::json::{detail, from_output, item};
use test_support::process::{PLAIN_PATH, clean_command, text};
use test_support::redact::Redactions;

const ID: &str = "prereq:tool";
const CACHED: &str = "(cached: the binary is unchanged since [TIME])";

/// The prerequisite: the tool, found on PATH, at `>=1.0`; its install script installs
/// nothing.
fn tool_prereq(version: &str) -> String {
    format!(
        "  - name: tool\n    check: [pi-cache-tool, --version]\n    version: '{version}'\n    install: {{script: scripts/nothing.sh}}\n"
    )
}

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Result<Host, std::io::Error> {
        let dir = tempfile::tempdir()?;
        fs::create_dir_all(dir.path().join("bin"))?;
        let scripts = dir.path().join("home/pi-config/scripts");
        fs::create_dir_all(&scripts)?;
        executable(&scripts.join("nothing.sh"), "#!/bin/sh\necho 'this script installs nothing'\n")?;
        Ok(Host { dir })
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    fn cache_file(&self) -> PathBuf {
        self.home().join(".local/state/pi-bootstrap/prereqs-cache.json")
    }
    fn manifest_path(&self) -> PathBuf {
        self.dir.path().join("pi-bootstrap.yaml")
    }
    fn manifest(&self, prereqs: &str) -> Result<(), std::io::Error> {
        let manifest = format!(
            "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\nprereqs:\n{prereqs}"
        );
        fs::write(self.manifest_path(), manifest)
    }
    /// The script of a tool printing `version` and writing a line to `runs` each time.
    fn script(&self, version: &str) -> String {
        let runs = self.dir.path().join("runs");
        format!(
            "#!/usr/bin/perl\nopen(my $runs, '>>', '{}') or die \"runs: $!\";\nprint $runs \"{version}\\n\";\nclose($runs);\nprint \"pi-cache-tool {version}\\n\";\n",
            runs.display()
        )
    }
    /// Installs the tool at `version` as a package manager does: a new file renamed over
    /// the old one (a new inode).
    fn install(&self, version: &str) -> Result<(), std::io::Error> {
        let staged = self.bin().join(".pi-cache-tool.new");
        executable(&staged, &self.script(version))?;
        fs::rename(staged, self.bin().join("pi-cache-tool"))
    }
    /// How many times the tool ran.
    fn runs(&self) -> usize {
        fs::read_to_string(self.dir.path().join("runs")).map(|t| t.lines().count()).unwrap_or(0)
    }
    fn run(&self, args: &[&str]) -> Output {
        let out = clean_command(env!("CARGO_BIN_EXE_bootstrap-prereqs"), &self.home())
            .env("PATH", format!("{}:{PLAIN_PATH}", self.bin().display()))
            .arg("--manifest")
            .arg(self.manifest_path())
            .args(args)
            .output();
        out.unwrap_or_else(|e| panic!("cannot run bootstrap-prereqs: {e}"))
    }
    /// A `--json` run that exits with `code`: its report.
    fn json(&self, args: &[&str], code: i32) -> Result<Value, test_support::Error> {
        let out = self.run(&[&["--json"], args].concat());
        if out.status.code() != Some(code) {
            return Err(
                format!("bootstrap-prereqs {args:?} exited {:?}, not {code}:\n{}", out.status, text(&out)).into()
            );
        }
        from_output(&out)
    }
    /// The prerequisite names the cache file holds answers for.
    fn cached_names(&self) -> Result<Vec<String>, test_support::Error> {
        let Ok(bytes) = fs::read(self.cache_file()) else { return Ok(Vec::new()) };
        let cache: Value = serde_json::from_slice(&bytes)?;
        Ok(cache["entries"].as_object().map(|e| e.keys().cloned().collect()).unwrap_or_default())
    }
}

fn executable(path: &Path, text: &str) -> Result<(), std::io::Error> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

/// The detail of `id`, its time redacted.
fn said(report: &Value, id: &str) -> String {
    Redactions::new().times().apply(detail(report, id))
}

#[test]
fn an_unchanged_tool_is_not_run_again_and_an_upgraded_rewritten_or_removed_one_is() -> TestResult {
    let host = Host::new()?;
    host.manifest(&tool_prereq(">=1.0"))?;
    host.install("1.2.3")?;

    let first = host.json(&[], 0)?;
    assert_eq!(said(&first, ID), "1.2.3");
    assert_eq!(host.runs(), 1);
    assert_eq!(host.cached_names()?, ["tool"]);

    let second = host.json(&[], 0)?;
    assert_eq!(said(&second, ID), format!("1.2.3 {CACHED}"));
    assert_eq!(item(&second, ID)["status"], "ok");
    assert_eq!(host.runs(), 1, "an unchanged tool must not run again");

    // --check reads the cache and writes nothing.
    let written = fs::read(host.cache_file())?;
    let check = host.json(&["--check"], 0)?;
    assert_eq!(said(&check, ID), format!("1.2.3 {CACHED}"));
    assert_eq!(host.runs(), 1);
    assert_eq!(fs::read(host.cache_file())?, written, "--check wrote the cache");

    // --deep runs every check, and the answer is cached again.
    let deep = host.json(&["--deep"], 0)?;
    assert_eq!(said(&deep, ID), "1.2.3");
    assert_eq!(host.runs(), 2, "--deep must run the check");
    assert_eq!(said(&host.json(&[], 0)?, ID), format!("1.2.3 {CACHED}"));
    assert_eq!(host.runs(), 2);

    // Upgraded: a new file in its place.
    host.install("2.0.0")?;
    assert_eq!(said(&host.json(&[], 0)?, ID), "2.0.0");
    assert_eq!(host.runs(), 3);
    assert_eq!(said(&host.json(&[], 0)?, ID), format!("2.0.0 {CACHED}"));
    assert_eq!(host.runs(), 3);

    // Rewritten in place: the same inode and size, other times.
    let tool = host.bin().join("pi-cache-tool");
    let was = fs::metadata(&tool)?;
    std::thread::sleep(std::time::Duration::from_millis(20));
    fs::write(&tool, host.script("2.1.0"))?;
    let now = fs::metadata(&tool)?;
    assert_eq!((now.ino(), now.len()), (was.ino(), was.len()), "the test must rewrite the same file");
    assert_eq!(said(&host.json(&[], 0)?, ID), "2.1.0");
    assert_eq!(host.runs(), 4);

    // A requirement raised in the manifest is judged on the cached version: the verdict
    // is not what is cached.
    host.manifest(&tool_prereq(">=3"))?;
    let raised = host.json(&["--check"], 1)?;
    assert_eq!(
        said(&raised, ID),
        format!("version 2.1.0 does not satisfy >=3 {CACHED}; would install (script: scripts/nothing.sh)")
    );
    assert_eq!(host.runs(), 4);
    host.manifest(&tool_prereq(">=1.0"))?;

    // Removed: missing, and its answer forgotten by the run.
    fs::remove_file(&tool)?;
    let check = host.json(&["--check"], 1)?;
    assert_eq!(said(&check, ID), "pi-cache-tool is not installed; would install (script: scripts/nothing.sh)");
    let removed = host.json(&[], 1)?;
    assert_eq!(item(&removed, ID)["status"], "failed");
    assert_eq!(host.cached_names()?, Vec::<String>::new(), "the answer of a missing tool is not kept");

    // Installed again (the same script): asked again.
    host.install("2.1.0")?;
    assert_eq!(said(&host.json(&[], 0)?, ID), "2.1.0");
    assert_eq!(host.runs(), 5);
    Ok(())
}

#[test]
fn another_argv_env_or_link_target_is_asked_again_and_verbose_names_the_binary() -> TestResult {
    let host = Host::new()?;
    let prereq = |argv: &str, flavour: &str| {
        format!(
            "  - name: tool\n    check: [{argv}]\n    install: {{apt: pi-cache-tool}}\n    env: {{PI_CACHE_FLAVOUR: {flavour}}}\n"
        )
    };
    host.manifest(&prereq("pi-cache-tool, --version", "a"))?;
    // The tool on PATH is a link to a versioned file, as alternatives and pipx make them.
    let opt = host.dir.path().join("opt");
    fs::create_dir_all(&opt)?;
    executable(&opt.join("tool-1.2.3"), &host.script("1.2.3"))?;
    executable(&opt.join("tool-2.0.0"), &host.script("2.0.0"))?;
    std::os::unix::fs::symlink(opt.join("tool-1.2.3"), host.bin().join("pi-cache-tool"))?;

    assert_eq!(said(&host.json(&[], 0)?, ID), "1.2.3");
    assert_eq!(said(&host.json(&[], 0)?, ID), format!("1.2.3 {CACHED}"));
    assert_eq!(host.runs(), 1);

    // -v names the binary, after links.
    let verbose = host.run(&["-v"]);
    let shown = Redactions::new().times().apply(&verbose.stdout);
    let binary = fs::canonicalize(opt.join("tool-1.2.3"))?;
    assert!(shown.contains(&format!("1.2.3 (cached: {} is unchanged since [TIME])", binary.display())), "{shown}");
    assert_eq!(host.runs(), 1);

    host.manifest(&prereq("pi-cache-tool, --version", "b"))?;
    assert_eq!(said(&host.json(&[], 0)?, ID), "1.2.3");
    assert_eq!(host.runs(), 2, "another env is another check");

    host.manifest(&prereq("pi-cache-tool, --version, --verbose", "b"))?;
    assert_eq!(said(&host.json(&[], 0)?, ID), "1.2.3");
    assert_eq!(host.runs(), 3, "another argv is another check");
    assert_eq!(said(&host.json(&[], 0)?, ID), format!("1.2.3 {CACHED}"));

    // The link pointed at another version; the old file is untouched.
    fs::remove_file(host.bin().join("pi-cache-tool"))?;
    std::os::unix::fs::symlink(opt.join("tool-2.0.0"), host.bin().join("pi-cache-tool"))?;
    assert_eq!(said(&host.json(&[], 0)?, ID), "2.0.0");
    assert_eq!(host.runs(), 4);
    Ok(())
}

#[test]
fn a_shell_check_and_a_shell_script_run_every_time() -> TestResult {
    let host = Host::new()?;
    let runs = host.dir.path().join("runs");
    executable(
        &host.bin().join("pi-cache-shim"),
        &format!("#!/bin/sh\necho shim >> '{}'\necho 'shim 1.0.0'\n", runs.display()),
    )?;
    host.manifest(&format!(
        "  - name: inline\n    check: [sh, -c, 'echo inline >> {}; echo 1.0.0']\n    install: {{apt: dash}}\n  - name: shim\n    check: [pi-cache-shim, --version]\n    install: {{apt: dash}}\n",
        runs.display()
    ))?;
    for _ in 0..2 {
        let report = host.json(&[], 0)?;
        assert_eq!(said(&report, "prereq:inline"), "1.0.0");
        assert_eq!(said(&report, "prereq:shim"), "1.0.0");
    }
    assert_eq!(host.runs(), 4, "both ran both times");
    assert_eq!(host.cached_names()?, Vec::<String>::new());
    Ok(())
}

#[test]
fn a_corrupt_cache_is_reported_not_used_kept_aside_and_rebuilt() -> TestResult {
    let host = Host::new()?;
    host.manifest(&tool_prereq(">=1.0"))?;
    host.install("1.2.3")?;
    host.json(&[], 0)?;
    let garbage = b"{\"format\": 1, \"entr";
    fs::write(host.cache_file(), garbage)?;

    let check = host.json(&["--check"], 1)?;
    let state = item(&check, "state:prereqs-cache");
    assert_eq!(state["status"], "would_change", "{check:#}");
    assert_eq!(state["path"], host.cache_file().display().to_string());
    let said_check = state["detail"].as_str().unwrap_or_default();
    assert!(said_check.starts_with("the cache of the checks' answers is corrupt (EOF while parsing"), "{said_check}");
    assert!(
        said_check.ends_with("not used, every check ran; a run keeps it aside and writes a new one"),
        "{said_check}"
    );
    assert_eq!(said(&check, ID), "1.2.3", "a corrupt cache is not trusted");
    assert_eq!(host.runs(), 2);
    assert_eq!(fs::read(host.cache_file())?, garbage, "--check wrote the cache");

    let run = host.json(&[], 0)?;
    let state = item(&run, "state:prereqs-cache");
    assert_eq!(state["status"], "changed", "{run:#}");
    assert!(state["detail"].as_str().is_some_and(|d| d.ends_with("; kept aside and written anew")), "{state}");
    assert_eq!(said(&run, ID), "1.2.3");
    assert_eq!(host.runs(), 3);
    let kept = PathBuf::from(run["kept"].as_str().unwrap_or_default())
        .join(host.cache_file().strip_prefix("/").unwrap_or(&host.cache_file()));
    assert_eq!(fs::read(&kept)?, garbage, "the corrupt file is kept at {}", kept.display());

    // Reported once: the next run finds a good cache, and uses it.
    let next = host.json(&[], 0)?;
    assert_eq!(item(&next, "state:prereqs-cache"), &Value::Null, "{next:#}");
    assert_eq!(said(&next, ID), format!("1.2.3 {CACHED}"));
    assert_eq!(host.runs(), 3);
    Ok(())
}

#[test]
fn the_audits_read_only_observation_uses_the_cache_and_writes_nothing() -> TestResult {
    use bootstrap_prereqs::{Options, check, run};
    use common::output::Verbosity;
    use common::state::StateDir;

    let host = Host::new()?;
    host.install("1.2.3")?;
    // In process, PATH is the test's own: the check names the tool by its path.
    let tool = host.bin().join("pi-cache-tool");
    let text = format!(
        "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.invalid/pi-config.git\nprereqs:\n  - name: tool\n    check: [{}, --version]\n    install: {{apt: pi-cache-tool}}\n",
        tool.display()
    );
    let manifest = common::manifest::load_str(&host.manifest_path(), &text, &host.home(), &|_| None)?;
    let prereqs: Vec<_> = manifest.prereqs.iter().collect();
    let state = StateDir::new(&host.home());
    let detail = |report: &common::report::Report| {
        Redactions::new().times().apply(report.items.first().map(|i| i.detail.as_str()).unwrap_or_default())
    };

    // Nothing cached yet: the check runs, and nothing is written.
    assert_eq!(detail(&check(&prereqs, &state, Verbosity::Normal)), "1.2.3");
    assert_eq!(host.runs(), 1);
    assert!(!state.root().exists(), "the read-only observation wrote into the state folder");

    let ran = run(&prereqs, &state, Options { check: false, deep: false, verbosity: Verbosity::Normal });
    assert_eq!(detail(&ran), "1.2.3");
    assert_eq!(host.runs(), 2);
    let written = fs::read(host.cache_file())?;

    let audit = check(&prereqs, &state, Verbosity::Normal);
    assert_eq!(detail(&audit), format!("1.2.3 {CACHED}"));
    assert_eq!(host.runs(), 2, "the audit ran a tool whose answer is cached");
    assert_eq!(fs::read(host.cache_file())?, written);

    // The audit's --deep: the check runs whatever the cache holds, and writes nothing.
    let deep = run(&prereqs, &state, Options { check: true, deep: true, verbosity: Verbosity::Normal });
    assert_eq!(detail(&deep), "1.2.3");
    assert_eq!(host.runs(), 3, "--deep did not run the tool");
    assert_eq!(fs::read(host.cache_file())?, written);
    Ok(())
}
