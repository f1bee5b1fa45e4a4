//! Command execution: the only module that spawns processes.
//!
//! Commands are argv lists (`sh -c` only where the manifest says `shell:`), every run
//! has a timeout, output is captured and comes back in errors, secrets are redacted
//! from everything shown, and privileged commands go through `sudo` when not root.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::secret;

/// The timeout of a command that does not set one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// How many bytes of output an error shows (the end of it).
const TAIL: usize = 2000;

/// A command to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    env_remove: Vec<String>,
    cwd: Option<PathBuf>,
    timeout: Duration,
    privileged: bool,
    stdin: Option<Vec<u8>>,
}

/// What a finished command left.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Standard output, secrets redacted.
    pub stdout: String,
    /// Standard error, secrets redacted.
    pub stderr: String,
    pub duration: Duration,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// The end of stdout and stderr together, for messages.
    pub fn tail(&self) -> String {
        let both = format!("{}{}", self.stdout, self.stderr);
        tail(&both, TAIL)
    }
}

/// The end of `text`, at most `max` bytes, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> String {
    let text = text.trim_end();
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &text[start..])
}

/// Why a command did not give an answer, or (with [`Cmd::run`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The program is not installed (not on PATH).
    #[error("`{program}` is not installed (not found on PATH)")]
    NotFound { program: String },
    /// The program could not be started.
    #[error("cannot run `{command}`: {source}")]
    Spawn { command: String, source: std::io::Error },
    /// It ran longer than its timeout and was killed.
    #[error("`{command}` did not finish within {}s and was stopped{}", timeout.as_secs(), show_tail(tail))]
    TimedOut { command: String, timeout: Duration, tail: String },
    /// It exited with an error.
    #[error("`{command}` failed ({}){}", status_text(*code), show_tail(tail))]
    Failed { command: String, code: Option<i32>, tail: String },
}

fn show_tail(tail: &str) -> String {
    if tail.is_empty() { String::new() } else { format!(":\n{}", indent(tail)) }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

fn status_text(code: Option<i32>) -> String {
    match code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_owned(),
    }
}

/// Shows an argv the way a user would type it (quoted where needed).
pub fn display_argv(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c));
            if plain { arg.clone() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Cmd {
    /// A command from its program; add arguments with [`Cmd::arg`] and [`Cmd::args`].
    pub fn new(program: impl Into<String>) -> Cmd {
        Cmd {
            argv: vec![program.into()],
            env: Vec::new(),
            env_remove: Vec::new(),
            cwd: None,
            timeout: DEFAULT_TIMEOUT,
            privileged: false,
            stdin: None,
        }
    }

    /// A command from a whole argv list (from the manifest).
    pub fn from_argv(argv: &[String]) -> Cmd {
        let mut cmd = Cmd::new(argv.first().cloned().unwrap_or_default());
        cmd.argv.extend(argv.iter().skip(1).cloned());
        cmd
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Cmd {
        self.argv.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Cmd {
        self.argv.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets a variable whose value is a secret: it is redacted from all output.
    pub fn secret_env(self, key: impl Into<String>, value: impl Into<String>) -> Cmd {
        let value = value.into();
        secret::register(&value);
        self.env(key, value)
    }

    pub fn env_remove(mut self, key: impl Into<String>) -> Cmd {
        self.env_remove.push(key.into());
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// Needs root: runs through `sudo` when the current user is not root.
    pub fn privileged(mut self) -> Cmd {
        self.privileged = true;
        self
    }

    /// The argv that will really run (with `sudo` in front where needed).
    pub fn effective_argv(&self) -> Vec<String> {
        self.argv_as(crate::sys::is_root())
    }

    fn argv_as(&self, root: bool) -> Vec<String> {
        if self.privileged && !root {
            let mut argv = vec!["sudo".to_owned(), "--".to_owned()];
            argv.extend(self.argv.iter().cloned());
            argv
        } else {
            self.argv.clone()
        }
    }

    /// Runs the command and fails unless it exits 0.
    pub fn run(&self) -> Result<Output, ExecError> {
        let output = self.output()?;
        if output.success() {
            Ok(output)
        } else {
            Err(ExecError::Failed { command: self.to_string(), code: output.code, tail: output.tail() })
        }
    }

    /// Runs the command and returns its output whatever its exit code; fails only when
    /// it cannot start or times out.
    pub fn output(&self) -> Result<Output, ExecError> {
        self.output_with_lines(&mut |_| {})
    }

    /// [`Cmd::output`], handing each line of standard output (redacted) to `on_line` as
    /// it comes, for progress from a long command (restic's `--json` status lines).
    pub fn output_with_lines(&self, on_line: &mut dyn FnMut(&str)) -> Result<Output, ExecError> {
        let argv = self.effective_argv();
        let program = &argv[0];
        if which::which(program).is_err() && !Path::new(program).is_file() {
            return Err(ExecError::NotFound { program: program.clone() });
        }
        #[allow(clippy::disallowed_methods, reason = "the one door for spawning processes")]
        let mut command = Command::new(program);
        command
            .args(&argv[1..])
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for key in &self.env_remove {
            command.env_remove(key);
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if let Some(dir) = &self.cwd {
            command.current_dir(dir);
        }
        let started = Instant::now();
        let mut child = command.spawn().map_err(|source| ExecError::Spawn { command: self.to_string(), source })?;
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = pipe.write_all(&bytes);
            });
        }
        let (line_tx, lines) = mpsc::channel();
        let stdout = read_in_background(child.stdout.take(), Some(line_tx));
        let stderr = read_in_background(child.stderr.take(), None);
        let mut status = None;
        while status.is_none() && started.elapsed() < self.timeout {
            let slice = self.timeout.saturating_sub(started.elapsed()).min(Duration::from_millis(100));
            status =
                child.wait_timeout(slice).map_err(|source| ExecError::Spawn { command: self.to_string(), source })?;
            lines.try_iter().for_each(|line: String| on_line(&secret::redact(&line)));
        }
        let Some(status) = status else {
            // The whole tree: a `sh -c` whose `sleep` outlives it would keep running
            // and hold the output pipes open.
            for pid in crate::sys::descendants(child.id()) {
                crate::sys::kill(pid);
            }
            let _ = child.kill();
            let _ = child.wait();
            // The tree is dead, so the pipes close at once; the grace only bounds a
            // process that escaped into its own session.
            let grace = Duration::from_secs(2);
            let seen = format!("{}{}", collect(stdout, grace), collect(stderr, grace));
            return Err(ExecError::TimedOut {
                command: self.to_string(),
                timeout: self.timeout,
                tail: tail(&secret::redact(&seen), TAIL),
            });
        };
        // A grandchild that outlives the command may hold the pipes open: do not wait
        // for it longer than a moment.
        let grace = Duration::from_secs(2);
        let stdout = collect(stdout, grace);
        lines.try_iter().for_each(|line| on_line(&secret::redact(&line)));
        Ok(Output {
            code: status.code(),
            stdout: secret::redact(&stdout),
            stderr: secret::redact(&collect(stderr, grace)),
            duration: started.elapsed(),
        })
    }
}

type Pending = mpsc::Receiver<Vec<u8>>;

/// Reads a pipe to its end on a thread; with `lines`, each complete line is also sent
/// as soon as it is read.
fn read_in_background<R: Read + Send + 'static>(
    pipe: Option<R>,
    lines: Option<mpsc::Sender<String>>,
) -> Option<Pending> {
    let mut pipe = pipe?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let mut line_start = 0;
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            if let Some(lines) = &lines {
                while let Some(end) = buf[line_start..].iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&buf[line_start..line_start + end]).into_owned();
                    let _ = lines.send(line);
                    line_start += end + 1;
                }
            }
        }
        let _ = tx.send(buf);
    });
    Some(rx)
}

fn collect(pending: Option<Pending>, grace: Duration) -> String {
    let bytes = pending.and_then(|rx| rx.recv_timeout(grace).ok()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

impl fmt::Display for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&secret::redact(&display_argv(&self.effective_argv())))
    }
}

/// Is `program` on PATH (or a path to an existing file)?
pub fn is_installed(program: &str) -> bool {
    which::which(program).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_exit_code() -> Result<(), ExecError> {
        let out = Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output()?;
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        Ok(())
    }

    #[test]
    fn lines_arrive_while_the_command_runs() -> Result<(), ExecError> {
        let mut seen = Vec::new();
        let out = Cmd::new("sh")
            .args(["-c", "echo one; sleep 0.3; echo two; printf three"])
            .output_with_lines(&mut |line| seen.push(line.to_owned()))?;
        assert_eq!(seen, ["one", "two"], "complete lines only, in order");
        assert_eq!(out.stdout, "one\ntwo\nthree");
        Ok(())
    }

    #[test]
    fn a_failure_carries_the_command_and_its_output() {
        let err = Cmd::new("sh").args(["-c", "echo broken pipe dream >&2; exit 4"]).run().err();
        let message = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("`sh -c 'echo broken pipe dream >&2; exit 4'` failed (exit code 4)"), "{message}");
        assert!(message.contains("    broken pipe dream"), "{message}");
    }

    #[test]
    fn a_hanging_shell_and_its_children_are_killed_at_the_timeout() {
        let err = Cmd::new("sh")
            .args(["-c", "echo started; sleep 30; echo never"])
            .timeout(Duration::from_millis(300))
            .output()
            .err();
        match err {
            Some(ExecError::TimedOut { tail, .. }) => assert_eq!(tail, "started"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_program_is_named() {
        let err = Cmd::new("no-such-program-pi-bootstrap").output().err();
        assert!(matches!(err, Some(ExecError::NotFound { ref program }) if program == "no-such-program-pi-bootstrap"));
    }

    #[test]
    fn secrets_are_redacted_from_output_and_display() -> Result<(), ExecError> {
        let canary = "canary-exec-7f3a9";
        let cmd = Cmd::new("sh").args(["-c", "echo \"token=$TOKEN\""]).secret_env("TOKEN", canary);
        let out = cmd.output()?;
        assert_eq!(out.stdout, "token=<redacted>\n");
        let shown = Cmd::new("echo").arg(canary).to_string();
        assert_eq!(shown, "echo <redacted>");
        Ok(())
    }

    #[test]
    fn privileged_commands_go_through_sudo_only_when_not_root() {
        let cmd = Cmd::new("apt-get").args(["install", "-y", "nginx-light"]).privileged();
        assert_eq!(cmd.argv_as(false), ["sudo", "--", "apt-get", "install", "-y", "nginx-light"]);
        assert_eq!(cmd.argv_as(true), ["apt-get", "install", "-y", "nginx-light"]);
        assert_eq!(Cmd::new("git").arg("status").argv_as(false), ["git", "status"]);
    }

    #[test]
    fn argv_display_quotes_what_a_shell_would_split() {
        let argv = ["a".to_owned(), "b c".to_owned(), "it's".to_owned(), String::new()];
        assert_eq!(display_argv(&argv), r"a 'b c' 'it'\''s' ''");
    }
}
