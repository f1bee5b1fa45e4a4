//! `pi-bootstrap-restore` as a process, with stand-in step binaries (small shell
//! scripts) in a temporary HOME: the order and the flags each step gets, the run lock
//! held across the chain and handed to its steps (not with `--check`), what each exit
//! code of a step makes of the chain (0, 1, 2, a signal), the resume record (written on
//! a failure, never on exit 2, a corrupt one named), `--from`, the JSON document, and
//! the step binaries found beside the program itself. The real steps run in
//! `xtask/tests/restore.rs`, in a sandbox with systemd and restic.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use test_support::TestResult;
use test_support::process::clean_command;

const STEPS: [&str; 5] =
    ["bootstrap-prereqs", "bootstrap-pi-config", "bootstrap-services", "bootstrap-data", "bootstrap-validate"];

/// A stand-in step: it writes down how it was run and whether the run lock was held
/// meanwhile, prints a small report, and exits as `$HOME/behave/NAME` says (a code, or
/// `kill` to die by a signal).
const FAKE_STEP: &str = r#"#!/bin/sh
name=$(basename "$0")
lock="$HOME/.local/state/pi-bootstrap/lock"
if [ -e "$lock" ] && ! flock -n "$lock" true; then held=held; else held=free; fi
echo "$name $* lock=$held handover=${PI_BOOTSTRAP_LOCK_HANDOVER:-}" >> "$HOME/ran"
case " $* " in *" --json "*) ;; *) echo "$name says hello" ;; esac
printf '{"step": "%s", "summary": {"changed": 0}}\n' "$name"
echo "$name on stderr" >&2
behave=$(cat "$HOME/behave/$name" 2>/dev/null)
case "$behave" in
  kill) kill -9 $$ ;;
  "") exit 0 ;;
  *) exit "$behave" ;;
esac
"#;

struct Host {
    dir: tempfile::TempDir,
}

impl Host {
    fn new() -> Result<Host, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let host = Host { dir };
        fs::create_dir_all(host.home().join("behave"))?;
        fs::create_dir_all(host.bin())?;
        for step in STEPS {
            let path = host.bin().join(step);
            fs::write(&path, FAKE_STEP)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
        }
        fs::write(host.manifest(), "version: 1\nrepo:\n  path: ~/pi-config\n  url: file:///nowhere\n")?;
        Ok(host)
    }
    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }
    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }
    fn manifest(&self) -> PathBuf {
        self.dir.path().join("pi-bootstrap.yaml")
    }
    fn record(&self) -> PathBuf {
        self.home().join(".local/state/pi-bootstrap/restore.json")
    }
    fn lock(&self) -> PathBuf {
        self.home().join(".local/state/pi-bootstrap/lock")
    }
    /// The next run of `step` exits with `how` (a code, or `kill`).
    fn behave(&self, step: &str, how: &str) -> TestResult {
        Ok(fs::write(self.home().join("behave").join(step), how)?)
    }
    /// What ran since the last call: one line per step.
    fn ran(&self) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let path = self.home().join("ran");
        let text = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        Ok(text.lines().map(str::to_owned).collect())
    }
    /// The chain, run as `program` with `args`; its pid and what it left.
    fn run_as(&self, program: &Path, args: &[&str]) -> Result<(u32, Output), Box<dyn std::error::Error>> {
        let child = clean_command(program, &self.home())
            .args(args)
            // The stand-in steps (shell scripts) find their tools on this machine's PATH.
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let pid = child.id();
        Ok((pid, child.wait_with_output()?))
    }
    /// The chain with `--manifest` and `--bin-dir`, then `args`.
    fn run(&self, args: &[&str]) -> Result<(u32, Output), Box<dyn std::error::Error>> {
        let manifest = self.manifest().display().to_string();
        let bin = self.bin().display().to_string();
        let mut all = vec!["--manifest", &manifest, "--bin-dir", &bin];
        all.extend_from_slice(args);
        self.run_as(Path::new(env!("CARGO_BIN_EXE_pi-bootstrap-restore")), &all)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn names(ran: &[String]) -> Vec<&str> {
    ran.iter().filter_map(|l| l.split(' ').next()).collect()
}

#[test]
fn every_step_runs_in_order_under_the_chains_lock_and_the_json_has_each_report() -> TestResult {
    let host = Host::new()?;
    let (pid, out) = host.run(&["--json"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let ran = host.ran()?;
    assert_eq!(names(&ran), STEPS);
    let manifest = host.manifest().display().to_string();
    let handover = format!("handover={pid}:{}", host.lock().display());
    assert_eq!(ran[3], format!("bootstrap-data restore --manifest {manifest} --json lock=held {handover}"));
    for line in &ran {
        assert!(line.contains("lock=held") && line.ends_with(&handover), "{line}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["step"], "pi-bootstrap-restore");
    assert_eq!(doc["summary"]["ok"], 5);
    assert_eq!(doc["stopped_at"], serde_json::Value::Null);
    let steps = doc["steps"].as_array().cloned().unwrap_or_default();
    assert_eq!(steps.len(), 5);
    for (step, name) in steps.iter().zip(STEPS) {
        assert_eq!(step["step"], name);
        assert_eq!(step["exit_code"], 0);
        assert_eq!(step["report"]["step"], name, "its own JSON, parsed: {step:#}");
        assert!(step["seconds"].as_f64().is_some(), "{step:#}");
        assert_eq!(step["stderr"], format!("{name} on stderr\n"));
    }
    assert_eq!(steps[3]["args"], serde_json::json!(["restore"]));
    assert!(!host.record().exists(), "a restore that got to its end leaves no record");
    // The steps worked under the chain's lock and wrote nothing into its file.
    assert!(fs::read_to_string(host.lock())?.starts_with(&format!("pid {pid},")), "the chain held it");
    Ok(())
}

#[test]
fn without_json_each_steps_output_comes_in_order_then_the_recap() -> TestResult {
    let host = Host::new()?;
    let (_, out) = host.run(&["-q"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let positions: Vec<Option<usize>> = [
        "== 2. bootstrap-prereqs\nbootstrap-prereqs says hello",
        "== 3. bootstrap-pi-config\n",
        "== 4-5. bootstrap-services\n",
        "== 6. bootstrap-data restore\nbootstrap-data says hello",
        "== 7. bootstrap-validate\n",
        "== restore recap\n",
    ]
    .iter()
    .map(|s| stdout.find(s))
    .collect();
    assert!(positions.iter().all(Option::is_some) && positions.is_sorted(), "{positions:?}\n{stdout}");
    assert!(stdout.contains("6.    bootstrap-data restore   ok"), "{stdout}");
    assert!(text(&out.stderr).contains("bootstrap-services on stderr"), "{}", text(&out.stderr));
    assert!(host.ran()?.iter().all(|l| l.contains(" --quiet lock=held")), "-q goes to every step");
    Ok(())
}

#[test]
fn a_failing_step_stops_the_chain_with_1_and_resume_starts_at_it() -> TestResult {
    let host = Host::new()?;
    host.behave("bootstrap-services", "1")?;
    let (_, out) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(names(&host.ran()?), &STEPS[..3]);
    let record: serde_json::Value = serde_json::from_str(&fs::read_to_string(host.record())?)?;
    assert_eq!(record, serde_json::json!({"stopped_at": "bootstrap-services"}));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("4-5.  bootstrap-services       failed"), "{stdout}");
    assert!(stdout.contains("7.    bootstrap-validate       not run"), "{stdout}");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bootstrap-services failed; fix it, then continue with: pi-bootstrap-restore --resume"));

    host.behave("bootstrap-services", "0")?;
    let (_, out) = host.run(&["--resume"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(names(&host.ran()?), &STEPS[2..]);
    assert!(text(&out.stdout).contains("3.    bootstrap-pi-config      done before"));
    assert!(!host.record().exists(), "the resumed restore got to its end");
    Ok(())
}

#[test]
fn a_step_killed_by_a_signal_is_a_failure() -> TestResult {
    let host = Host::new()?;
    host.behave("bootstrap-data", "kill")?;
    let (_, out) = host.run(&["--json"])?;
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["stopped_at"], "bootstrap-data");
    assert_eq!(doc["steps"][3]["exit_code"], serde_json::Value::Null);
    assert_eq!(doc["items"][3]["status"], "failed");
    assert!(doc["items"][3]["detail"].as_str().unwrap_or_default().starts_with("killed by a signal"), "{doc:#}");
    let record: serde_json::Value = serde_json::from_str(&fs::read_to_string(host.record())?)?;
    assert_eq!(record, serde_json::json!({"stopped_at": "bootstrap-data"}));
    Ok(())
}

#[test]
fn a_step_that_says_2_stops_the_chain_with_2_and_records_nothing() -> TestResult {
    let host = Host::new()?;
    host.behave("bootstrap-pi-config", "2")?;
    let (_, out) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(names(&host.ran()?), &STEPS[..2]);
    assert!(!host.record().exists(), "no resume record after exit 2");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bootstrap-pi-config says the manifest or the command line is wrong (exit 2)"), "{stderr}");

    // A record of an earlier failure is left as it was.
    host.behave("bootstrap-pi-config", "0")?;
    host.behave("bootstrap-data", "1")?;
    assert_eq!(host.run(&[])?.1.status.code(), Some(1));
    let recorded = fs::read_to_string(host.record())?;
    host.behave("bootstrap-data", "2")?;
    let (_, out) = host.run(&["--resume", "--json"])?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(fs::read_to_string(host.record())?, recorded);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(doc["stopped_at"], "bootstrap-data", "the JSON document is printed all the same");
    Ok(())
}

#[test]
fn a_bad_manifest_exits_2_before_any_step_runs() -> TestResult {
    let host = Host::new()?;
    fs::write(host.manifest(), "version: 1\nrepo:\n  path: ~/pi-config\n  url: file:///nowhere\nbogus: 1\n")?;
    let (_, out) = host.run(&[])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pi-bootstrap.yaml:5:1: bogus: unknown key"), "{}", text(&out.stderr));
    assert!(host.ran()?.is_empty());
    assert!(!host.record().exists());
    let (_, out) = host.run(&["--only", "link:x"])?;
    assert_eq!(out.status.code(), Some(2), "--only is a step's flag");
    assert!(host.ran()?.is_empty());
    Ok(())
}

#[test]
fn with_check_no_lock_is_taken_and_a_step_that_would_change_makes_it_exit_1() -> TestResult {
    let host = Host::new()?;
    host.behave("bootstrap-prereqs", "1")?;
    let (_, out) = host.run(&["--check"])?;
    assert_eq!(out.status.code(), Some(1));
    let ran = host.ran()?;
    assert_eq!(names(&ran), STEPS, "would change: the chain goes on");
    for line in &ran {
        assert!(line.contains(" --check lock=free handover=") && line.ends_with("handover="), "{line}");
    }
    assert!(text(&out.stdout).contains("2.    bootstrap-prereqs        would change"));
    assert!(text(&out.stderr).contains("would change something: bootstrap-prereqs; run without --check to apply"));
    assert!(!host.record().exists() && !host.lock().exists(), "--check writes nothing");

    host.behave("bootstrap-prereqs", "0")?;
    let (_, out) = host.run(&["--check"])?;
    assert_eq!(out.status.code(), Some(0), "in sync");
    assert_eq!(names(&host.ran()?), STEPS);
    Ok(())
}

#[test]
fn a_corrupt_or_missing_record_is_an_error_naming_the_file() -> TestResult {
    let host = Host::new()?;
    let (_, out) = host.run(&["--resume"])?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("no interrupted restore to resume: {} does not exist", host.record().display())));
    for corrupt in ["", "{\"stopped_at\": \"bootstrap-everything\"}", "not json"] {
        fs::create_dir_all(host.record().parent().ok_or("no folder")?)?;
        fs::write(host.record(), corrupt)?;
        let (_, out) = host.run(&["--resume"])?;
        assert_eq!(out.status.code(), Some(1), "{corrupt:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(&format!("the resume record {} is corrupt", host.record().display())), "{stderr}");
        assert!(host.ran()?.is_empty(), "nothing runs from a record that says nothing");
        assert_eq!(fs::read_to_string(host.record())?, corrupt, "and it is left for a look");
    }
    Ok(())
}

#[test]
fn from_starts_at_a_step_and_keeps_the_record_of_an_earlier_one() -> TestResult {
    let host = Host::new()?;
    host.behave("bootstrap-pi-config", "1")?;
    assert_eq!(host.run(&[])?.1.status.code(), Some(1));
    host.ran()?;
    let (_, out) = host.run(&["--from", "bootstrap-data"])?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(names(&host.ran()?), &STEPS[3..]);
    assert!(host.record().exists(), "bootstrap-pi-config has still not run to its end");
    let (_, out) = host.run(&["--from", "bootstrap-nothing"])?;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("bootstrap-validate"), "the steps are listed");
    host.behave("bootstrap-pi-config", "0")?;
    assert_eq!(host.run(&["--from", "bootstrap-pi-config"])?.1.status.code(), Some(0));
    assert!(!host.record().exists(), "it ran from the recorded step to the end");
    Ok(())
}

#[test]
fn to_ends_at_a_step_and_from_the_next_one_finishes_the_restore() -> TestResult {
    let host = Host::new()?;
    let (_, out) = host.run(&["--to", "bootstrap-pi-config", "--json"])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(names(&host.ran()?), &STEPS[..2]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let services =
        doc["items"].as_array().and_then(|items| items.iter().find(|i| i["id"] == "step:bootstrap-services"));
    let detail = services.and_then(|i| i["detail"].as_str()).unwrap_or_default();
    assert!(detail.contains("left for a later run: the restore ends at bootstrap-pi-config (--to)"), "{doc}");
    assert!(!host.record().exists(), "nothing failed: nothing to resume");
    let (_, out) = host.run(&["--from", "bootstrap-services"])?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(names(&host.ran()?), &STEPS[2..]);

    // A record of a step after --to's is left for the run that reaches it.
    host.behave("bootstrap-data", "1")?;
    assert_eq!(host.run(&[])?.1.status.code(), Some(1));
    host.ran()?;
    assert_eq!(host.run(&["--to", "bootstrap-services"])?.1.status.code(), Some(0));
    assert!(host.record().exists(), "bootstrap-data has still not run to its end");
    let (_, out) = host.run(&["--from", "bootstrap-data", "--to", "bootstrap-pi-config"])?;
    assert_eq!(out.status.code(), Some(2), "--to before --from is a usage error");
    assert!(text(&out.stderr).contains("--to bootstrap-pi-config comes before"), "{}", text(&out.stderr));
    Ok(())
}

#[test]
fn the_step_binaries_are_found_beside_the_program_and_a_missing_one_is_named() -> TestResult {
    let host = Host::new()?;
    let installed = host.bin().join("pi-bootstrap-restore");
    fs::copy(env!("CARGO_BIN_EXE_pi-bootstrap-restore"), &installed)?;
    let manifest = host.manifest().display().to_string();
    let (_, out) = host.run_as(&installed, &["--manifest", &manifest])?;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(names(&host.ran()?), STEPS);

    fs::remove_file(host.bin().join("bootstrap-validate"))?;
    let (_, out) = host.run_as(&installed, &["--manifest", &manifest])?;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let missing = host.bin().join("bootstrap-validate");
    assert!(stderr.contains(&format!("the step binary {} is missing", missing.display())), "{stderr}");
    assert!(host.ran()?.is_empty(), "nothing runs when a step is missing");
    assert!(!host.record().exists());
    Ok(())
}
