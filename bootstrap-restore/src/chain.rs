//! Running the chain: which step comes first, each step binary as a process (through
//! `common::exec`, with no timeout: a step bounds its own commands, and installing the
//! prerequisites may take long), what its exit code means, the resume record, the
//! chain's own report, its recap and its JSON document.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cli::CommonArgs;
use common::engine::Ctx;
use common::exec::Cmd;
use common::manifest::Manifest;
use common::output;
use common::report::{Item, Report, Status, tilde};
use common::state::{LOCK_HANDOVER_ENV, StateDir};
use common::step::{Outcome, Rendered, StepError};

use crate::{Args, ChainError, ChainStep, NAME, STEPS, number, position, record};

/// How long a step may run: without end. Each step has timeouts on the commands it
/// runs; the chain must not kill one that is installing for a long time.
const NO_TIMEOUT: Duration = Duration::MAX;

/// What a step's exit means for the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Exit 0: done, or in sync. The chain goes on.
    Done,
    /// Exit 1 under `--check`: it would change something. The chain goes on.
    WouldChange,
    /// Exit 1 (or any code but 0 and 2, or killed by a signal, or it could not start):
    /// the chain stops and records where, for `--resume`.
    Failed,
    /// Exit 2: the manifest or the command line is wrong. The chain stops, exits 2 and
    /// records nothing (resuming would only meet the same refusal).
    Refused,
}

/// What a step's exit code (`None`: killed by a signal) means, with `--check` or not.
pub fn verdict(code: Option<i32>, check: bool) -> Verdict {
    match (code, check) {
        (Some(0), _) => Verdict::Done,
        (Some(2), _) => Verdict::Refused,
        (Some(1), true) => Verdict::WouldChange,
        _ => Verdict::Failed,
    }
}

/// One step as it ran.
#[derive(Debug, Clone)]
pub struct StepRun {
    pub step: ChainStep,
    /// Its exit code; `None` when a signal ended it or it did not start.
    pub code: Option<i32>,
    /// Why it could not be run at all.
    pub error: Option<String>,
    pub took: Duration,
    /// Its standard output, kept with `--json` (otherwise it went to the terminal).
    pub stdout: String,
    pub stderr: String,
    pub verdict: Verdict,
}

impl StepRun {
    /// The recap's word for it.
    fn outcome(&self) -> String {
        match (self.verdict, self.code) {
            (Verdict::Done, _) => "ok".to_owned(),
            (Verdict::WouldChange, _) => "would change".to_owned(),
            (Verdict::Refused, _) => "refused (exit 2)".to_owned(),
            (Verdict::Failed, Some(1)) => "failed".to_owned(),
            (Verdict::Failed, Some(code)) => format!("failed (exit {code})"),
            (Verdict::Failed, None) if self.error.is_some() => "could not start".to_owned(),
            (Verdict::Failed, None) => "killed by a signal".to_owned(),
        }
    }
}

/// The whole chain (see the crate's documentation).
pub(crate) fn run(manifest: &Manifest, ctx: &Ctx, args: &Args) -> Result<Outcome, StepError> {
    let common = &args.common;
    let bin_dir = match &args.bin_dir {
        Some(dir) => dir.clone(),
        None => own_folder()?,
    };
    let start = first_step(args, &ctx.state)?;
    let end = last_step(args, start)?;
    // Every binary before any runs: a missing one stops nothing half-way.
    if let Some(missing) = STEPS[start..=end].iter().map(|s| bin_dir.join(s.bin)).find(|p| !p.is_file()) {
        return Err(ChainError::MissingBinary { path: missing }.into());
    }
    let flags = step_flags(manifest, common);
    // main holds the lock unless --check: the steps work under it.
    let handover = (!common.check).then(|| ctx.state.handover());
    let mut runs: Vec<StepRun> = Vec::new();
    for step in &STEPS[start..=end] {
        let run = run_step(step, &bin_dir, &flags, handover.as_ref(), common);
        let stop = matches!(run.verdict, Verdict::Failed | Verdict::Refused);
        runs.push(run);
        if stop {
            break;
        }
    }
    let stopped = runs.last().filter(|r| matches!(r.verdict, Verdict::Failed | Verdict::Refused));
    if !common.check {
        match stopped {
            Some(run) if run.verdict == Verdict::Failed => record::write(&ctx.state, start + runs.len() - 1)?,
            Some(_) => {}
            None => settle_record(&ctx.state, start, end, args)?,
        }
    }
    let report = report(&runs, start, end, common.check);
    let json = json_document(&report, &runs, stopped, &bin_dir)?;
    let human = recap(&runs, start, common.check);
    let note = note(&runs, common.check);
    let failure = stopped.filter(|r| r.verdict == Verdict::Refused).map(|r| {
        StepError::Usage(format!(
            "{} says the manifest or the command line is wrong (exit 2); nothing is recorded for --resume",
            r.step.label()
        ))
    });
    Ok(Outcome { report, rendered: Some(Rendered { human, json }), note, failure })
}

/// The folder this program is in.
fn own_folder() -> Result<PathBuf, ChainError> {
    let exe = std::env::current_exe().map_err(ChainError::NoOwnFolder)?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| ChainError::NoOwnFolder(std::io::Error::other(format!("{} has no folder", exe.display()))))
}

/// The index in [`STEPS`] of the first step to run.
fn first_step(args: &Args, state: &StateDir) -> Result<usize, StepError> {
    if args.resume {
        return record::read(state)?
            .ok_or_else(|| ChainError::NoRecord { path: state.file(record::RECORD_FILE) }.into());
    }
    match &args.from {
        Some(from) => position(from).ok_or_else(|| StepError::Usage(format!("no step named {from:?}"))),
        None => Ok(0),
    }
}

/// The index in [`STEPS`] of the last step to run (`--to`), not before the first.
fn last_step(args: &Args, start: usize) -> Result<usize, StepError> {
    let Some(to) = &args.to else { return Ok(STEPS.len() - 1) };
    match position(to) {
        Some(end) if end >= start => Ok(end),
        Some(_) => Err(StepError::Usage(format!(
            "--to {to} comes before the first step to run, {}",
            STEPS.get(start).map_or("", |s| s.bin)
        ))),
        None => Err(StepError::Usage(format!("no step named {to:?}"))),
    }
}

/// A run that got to its last step removes the record, unless it started after the
/// step that stopped, or `--to` ended it before that one (that step has still not run
/// to its end).
fn settle_record(state: &StateDir, start: usize, end: usize, args: &Args) -> Result<(), StepError> {
    let to_the_end = end + 1 == STEPS.len();
    let settled = (to_the_end && (args.resume || start == 0))
        || record::read(state)?.is_none_or(|stopped| stopped >= start && stopped <= end);
    if settled { record::remove(state) } else { Ok(()) }
}

/// The flags every step gets: the manifest the chain loaded (so every step reads the
/// same file), and `--check`, `--json`, `-v` / `-q` as given.
fn step_flags(manifest: &Manifest, common: &CommonArgs) -> Vec<String> {
    let mut flags = vec!["--manifest".to_owned(), manifest.file.display().to_string()];
    for (on, flag) in
        [(common.check, "--check"), (common.json, "--json"), (common.verbose, "--verbose"), (common.quiet, "--quiet")]
    {
        if on {
            flags.push(flag.to_owned());
        }
    }
    flags
}

/// Runs one step binary. Without `--json` its output goes to the terminal as it comes
/// (standard output line by line, standard error when it ends); with `--json` it is
/// kept for the document.
fn run_step(
    step: &ChainStep,
    bin_dir: &Path,
    flags: &[String],
    handover: Option<&(&'static str, String)>,
    common: &CommonArgs,
) -> StepRun {
    let program = bin_dir.join(step.bin);
    let cmd = Cmd::new(program.display().to_string())
        .args(step.args.iter().copied())
        .args(flags.iter().cloned())
        .timeout(NO_TIMEOUT);
    let cmd = match handover {
        Some((name, value)) => cmd.env(*name, value.clone()),
        None => cmd.env_remove(LOCK_HANDOVER_ENV),
    };
    let stream = !common.json;
    if stream {
        output::print_text(&format!("\n== {}. {}\n", number(step.bin), step.label()));
    }
    let spinner = (!stream).then(|| output::spinner(&step.label(), common.verbosity()));
    let started = Instant::now();
    let result = cmd.output_with_lines(&mut |line| {
        if stream {
            output::print_text(&format!("{line}\n"));
        }
    });
    let took = started.elapsed();
    if let Some(spinner) = spinner {
        spinner.finish_and_clear();
    }
    let (code, error, stdout, stderr) = match result {
        Ok(out) => (out.code, None, out.stdout, out.stderr),
        Err(e) => (None, Some(e.to_string()), String::new(), String::new()),
    };
    if stream {
        // The last line, when it has no newline, was not handed over as a line.
        if let Some(rest) = stdout.rsplit('\n').next().filter(|rest| !rest.is_empty()) {
            output::print_text(&format!("{rest}\n"));
        }
        if !stderr.trim().is_empty() {
            output::note(stderr.trim_end());
        }
        if let Some(error) = &error {
            output::error(NAME, error);
        }
    }
    let verdict = if error.is_some() { Verdict::Failed } else { verdict(code, common.check) };
    let stdout = if stream { String::new() } else { stdout };
    StepRun { step: *step, code, error, took, stdout, stderr, verdict }
}

/// The one item constructor of the crate: a step's line in the chain's report.
fn item(step: &ChainStep, status: Status, detail: String) -> Item {
    Item { id: format!("step:{}", step.bin), kind: "step".to_owned(), status, path: None, detail, diff: None }
}

/// The chain's report: one item per step of the order, run or not.
fn report(runs: &[StepRun], start: usize, end: usize, check: bool) -> Report {
    let mut report = Report::new(NAME, check);
    let first = STEPS.get(start).map_or("", |s| s.bin);
    for (i, step) in STEPS.iter().enumerate() {
        let item = match runs.iter().find(|r| r.step.bin == step.bin) {
            Some(run) => {
                let status = match run.verdict {
                    Verdict::Done => Status::Ok,
                    Verdict::WouldChange => Status::WouldChange,
                    Verdict::Failed | Verdict::Refused => Status::Failed,
                };
                let mut detail = format!("{} in {:.2}s", run.outcome(), run.took.as_secs_f64());
                if let Some(error) = &run.error {
                    let _ = write!(detail, ": {error}");
                }
                item(step, status, detail)
            }
            None if i < start => item(step, Status::Skipped, format!("done before: the restore starts at {first}")),
            None if i > end && runs.len() == end + 1 - start => {
                let last = STEPS.get(end).map_or("", |s| s.bin);
                item(step, Status::Skipped, format!("left for a later run: the restore ends at {last} (--to)"))
            }
            None => {
                let at = runs.last().map_or("", |r| r.step.bin);
                item(step, Status::Skipped, format!("not run: the restore stopped at {at}"))
            }
        };
        report.push(item);
    }
    report
}

/// The human recap: each step's outcome and time.
fn recap(runs: &[StepRun], start: usize, check: bool) -> String {
    let mut out = format!("\n== restore recap{}\n", if check { " (--check: nothing was changed)" } else { "" });
    for (i, step) in STEPS.iter().enumerate() {
        let label = format!("{:<5} {:<24}", format!("{}.", number(step.bin)), step.label());
        match runs.iter().find(|r| r.step.bin == step.bin) {
            Some(run) => {
                let _ = writeln!(out, "   {label} {:<20} {:>8.2}s", run.outcome(), run.took.as_secs_f64());
            }
            None if i < start => {
                let _ = writeln!(out, "   {label} done before");
            }
            None => {
                let _ = writeln!(out, "   {label} not run");
            }
        }
    }
    let total: Duration = runs.iter().map(|r| r.took).sum();
    let _ = writeln!(out, "   {:<30} {:<20} {:>8.2}s", "total", "", total.as_secs_f64());
    out
}

/// What to do next, for people (after the recap; not with `--json` or `-q`).
fn note(runs: &[StepRun], check: bool) -> Option<String> {
    let last = runs.last()?;
    match last.verdict {
        Verdict::Failed => Some(format!(
            "{} failed; fix it, then continue with: {NAME} --resume (what is in place is reported ok)",
            last.step.label()
        )),
        _ if check => {
            let due: Vec<&str> =
                runs.iter().filter(|r| r.verdict == Verdict::WouldChange).map(|r| r.step.bin).collect();
            (!due.is_empty())
                .then(|| format!("would change something: {}; run without --check to apply", due.join(", ")))
        }
        _ => None,
    }
}

/// The JSON document: the chain's report, and every step's report (its own JSON, as
/// it printed it), exit code, time and standard error.
fn json_document(
    report: &Report,
    runs: &[StepRun],
    stopped: Option<&StepRun>,
    bin_dir: &Path,
) -> Result<String, ChainError> {
    let steps: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| {
            let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
            let mut step = serde_json::json!({
                "step": r.step.bin,
                "args": r.step.args,
                "exit_code": r.code,
                "seconds": (r.took.as_secs_f64() * 1000.0).round() / 1000.0,
                "report": report,
                "stderr": r.stderr,
            });
            if report.is_null() && !r.stdout.trim().is_empty() {
                step["stdout"] = r.stdout.clone().into();
            }
            if let Some(error) = &r.error {
                step["error"] = error.clone().into();
            }
            step
        })
        .collect();
    let mut doc = serde_json::to_value(report)?;
    doc["steps"] = steps.into();
    doc["stopped_at"] = stopped.map(|r| r.step.bin).into();
    let home = common::state::home_from_env().unwrap_or_default();
    doc["bin_dir"] = tilde(bin_dir, &home).into();
    Ok(serde_json::to_string_pretty(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_mean_the_same_for_every_step() {
        let table = [
            (Some(0), false, Verdict::Done),
            (Some(0), true, Verdict::Done),
            (Some(1), false, Verdict::Failed),
            (Some(1), true, Verdict::WouldChange),
            (Some(2), false, Verdict::Refused),
            (Some(2), true, Verdict::Refused),
            (Some(3), false, Verdict::Failed),
            (Some(101), true, Verdict::Failed),
            (None, false, Verdict::Failed),
            (None, true, Verdict::Failed),
        ];
        for (code, check, expected) in table {
            assert_eq!(verdict(code, check), expected, "exit {code:?}, check {check}");
        }
    }

    fn ran(bin: &str, code: Option<i32>, check: bool) -> StepRun {
        let step = STEPS[position(bin).unwrap_or(0)];
        StepRun {
            step,
            code,
            error: None,
            took: Duration::from_millis(1250),
            stdout: String::new(),
            stderr: String::new(),
            verdict: verdict(code, check),
        }
    }

    #[test]
    fn the_report_has_every_step_run_or_not() {
        let runs = [ran("bootstrap-services", Some(0), false), ran("bootstrap-data", None, false)];
        let report = report(&runs, 2, STEPS.len() - 1, false);
        let lines: Vec<String> =
            report.items.iter().map(|i| format!("{} {} {}", i.status.as_str(), i.id, i.detail)).collect();
        assert_eq!(
            lines,
            [
                "skipped step:bootstrap-prereqs done before: the restore starts at bootstrap-services",
                "skipped step:bootstrap-pi-config done before: the restore starts at bootstrap-services",
                "ok step:bootstrap-services ok in 1.25s",
                "failed step:bootstrap-data killed by a signal in 1.25s",
                "skipped step:bootstrap-validate not run: the restore stopped at bootstrap-data",
            ]
        );
        assert_eq!(report.exit_code(), 1);
        let recap = recap(&runs, 2, false);
        assert!(recap.contains("6.    bootstrap-data restore   killed by a signal       1.25s"), "{recap}");
        assert!(recap.contains("2.    bootstrap-prereqs        done before"), "{recap}");
        assert!(recap.contains("7.    bootstrap-validate       not run"), "{recap}");
        assert_eq!(
            note(&runs, false).as_deref(),
            Some(
                "bootstrap-data restore failed; fix it, then continue with: pi-bootstrap-restore --resume (what is in place is reported ok)"
            )
        );
    }

    #[test]
    fn under_check_a_step_that_would_change_makes_the_chain_exit_1_and_says_so() {
        let runs: Vec<StepRun> =
            STEPS.iter().map(|s| ran(s.bin, Some(if s.bin == "bootstrap-services" { 1 } else { 0 }), true)).collect();
        let report = report(&runs, 0, STEPS.len() - 1, true);
        assert_eq!(report.summary.would_change, 1);
        assert_eq!(report.exit_code(), 1);
        assert_eq!(
            note(&runs, true).as_deref(),
            Some("would change something: bootstrap-services; run without --check to apply")
        );
        let in_sync: Vec<StepRun> = STEPS.iter().map(|s| ran(s.bin, Some(0), true)).collect();
        assert_eq!(super::report(&in_sync, 0, STEPS.len() - 1, true).exit_code(), 0);
        assert_eq!(note(&in_sync, true), None);
    }
}
