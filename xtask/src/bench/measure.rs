//! One program run, measured: its exit code, its wall time and, when asked, its peak
//! memory (the maximum resident set size, from GNU time's `%M`: what `wait4` reports
//! for a child that GNU time forked, so it is the program's own peak and the programs
//! it waited for, not this process's).
//!
//! Why GNU time and not `wait4` here: std starts a child with `vfork`-like
//! `posix_spawn`, and Linux carries the parent's high-water mark into the child's
//! `ru_maxrss` at `exec`; the drill's xtask process holds hundreds of MiB, which every
//! step would then seem to use (measured: 327 MiB for each binary).

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xshell::{Shell, cmd};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// GNU time (Debian package `time`).
pub const GNU_TIME: &str = "/usr/bin/time";

/// What one run of a program did.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub took: Duration,
    /// Peak resident memory of the program and the descendants it waited for, in KiB
    /// (with [`run_with_memory`]).
    pub max_rss_kib: Option<u64>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end; with `capture` its stdout and stderr are kept (read on
/// threads, so a chatty child never blocks), otherwise they go to the terminal.
pub fn run(mut command: Command, capture: bool) -> Result<Measured> {
    if capture {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let shown = format!("{command:?}");
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("cannot start {shown}: {e}"))?;
    let stdout = read_on_a_thread(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = read_on_a_thread(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let status = child.wait().map_err(|e| format!("cannot wait for {shown}: {e}"))?;
    let took = started.elapsed();
    Ok(Measured {
        code: status.code(),
        took,
        max_rss_kib: None,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// [`run`] under GNU time, which writes the peak memory to a file of its own (the
/// program's stderr stays the program's). The time includes GNU time's own start
/// (about a millisecond).
pub fn run_with_memory(sh: &Shell, command: Command, capture: bool) -> Result<Measured> {
    let report = tempfile::NamedTempFile::new()?;
    let file = report.path();
    let program = command.get_program();
    let args: Vec<&std::ffi::OsStr> = command.get_args().collect();
    let mut wrapped: Command = cmd!(sh, "{GNU_TIME} --format %M --output {file} {program} {args...}").into();
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(name, value),
            None => wrapped.env_remove(name),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        wrapped.current_dir(dir);
    }
    let mut run = run(wrapped, capture)?;
    let text = fs_err::read_to_string(file)?;
    // GNU time writes "Command exited with non-zero status N" before the figure.
    run.max_rss_kib = text.lines().rev().find_map(|l| l.trim().parse::<u64>().ok());
    Ok(run)
}

fn read_on_a_thread(pipe: Option<Box<dyn std::io::Read + Send>>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The median of `times` (the upper one of an even count).
pub fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Milliseconds, for the tables.
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms >= 100.0 { format!("{ms:.0} ms") } else { format!("{ms:.1} ms") }
}

/// KiB as MiB, for the tables.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
