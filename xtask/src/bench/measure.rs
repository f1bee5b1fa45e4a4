//! One program run, measured: its exit code, its wall time and its peak memory (the
//! maximum resident set size the kernel reports through `wait4` for the process and
//! the programs it waited for), with its output captured or passed to the terminal.
//!
//! `wait4` is the one way to get a child's own `rusage` (`getrusage(RUSAGE_CHILDREN)`
//! would mix every child this process ever reaped), so the child is reaped here rather
//! than by `std::process::Child::wait`.

use std::io::Read as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// What one run of a program did.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub took: Duration,
    /// Peak resident memory of the process and the descendants it waited for, in KiB.
    pub max_rss_kib: u64,
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
    let read = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = read(child.stdout.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let stderr = read(child.stderr.take().map(|p| Box::new(p) as Box<dyn std::io::Read + Send>));
    let pid = i32::try_from(child.id()).map_err(|_| format!("{shown}: a process id out of range"))?;
    let (status, usage) = wait4(pid).map_err(|e| format!("cannot wait for {shown}: {e}"))?;
    let took = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Ok(Measured {
        code,
        took,
        // Linux reports ru_maxrss in KiB.
        max_rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// Waits for `pid` (retrying on EINTR) and returns its wait status and resource usage.
#[allow(unsafe_code, reason = "wait4 has no safe wrapper in std or xshell; the structs are plain data")]
fn wait4(pid: i32) -> std::io::Result<(i32, libc::rusage)> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain old data, all zeroes is a valid value; both pointers
        // point to locals that outlive the call.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: as above; pid is our own child, not reaped yet.
        let got = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if got == pid {
            return Ok((status, usage));
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
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
