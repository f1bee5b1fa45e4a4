//! The only module that prints. Data (a JSON report) goes to stdout; messages and
//! progress go to stderr. Colour and progress bars only on a terminal, never with
//! `NO_COLOR` or `TERM=dumb`. Every line passes through secret redaction.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Item, Report, Status, tilde};
use crate::secret::redact;

/// Standard output: the one door to it (clippy keeps every other module away).
#[allow(clippy::disallowed_methods, reason = "the one module that prints")]
fn stdout() -> std::io::Stdout {
    std::io::stdout()
}

/// Standard error: the one door to it (clippy keeps every other module away).
#[allow(clippy::disallowed_methods, reason = "the one module that prints")]
fn stderr() -> std::io::Stderr {
    std::io::stderr()
}

/// How much to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verbosity {
    /// Only what is not ok, and the recap.
    Quiet,
    /// Every item and the recap.
    #[default]
    Normal,
    /// Also the commands the run ran.
    Verbose,
}

/// Colour only on a terminal, never with `NO_COLOR` or `TERM=dumb`.
pub fn colour_allowed(is_terminal: bool) -> bool {
    is_terminal
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

/// Whether stdout may be coloured.
pub fn stdout_colour() -> bool {
    colour_allowed(stdout().is_terminal())
}

/// Paint `text` with an ANSI colour (an SGR code such as "31") when `colour`.
pub fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

/// The colour of a status word.
pub fn status_colour(status: Status) -> &'static str {
    match status {
        Status::Ok => "32",
        Status::Changed => "33",
        Status::WouldChange => "36",
        Status::Failed | Status::Drift => "31",
        Status::Skipped => "2",
    }
}

/// Appends one item for people to `out`: its status word, id, path (`~` for HOME; left
/// out when the id already ends with it, as in `unclassified:~/scratch`) and detail on
/// one line, then its diff indented. Not redacted: the caller redacts the whole text.
pub fn render_item(item: &Item, home: &Path, colour: bool, out: &mut String) {
    let status = paint(&format!("{:<12}", item.status.as_str()), status_colour(item.status), colour);
    let mut line = format!("{status} {}", item.id);
    if let Some(path) = &item.path {
        let shown = tilde(path, home);
        if !item.id.ends_with(&shown) {
            line.push_str(&format!("  {shown}"));
        }
    }
    if !item.detail.is_empty() {
        line.push_str(&format!("  ({})", item.detail));
    }
    out.push_str(line.trim_end());
    out.push('\n');
    if let Some(diff) = &item.diff {
        for diff_line in diff.lines() {
            let code = match diff_line.chars().next() {
                Some('+') => "32",
                Some('-') => "31",
                Some('@') => "36",
                _ => "0",
            };
            out.push_str(&format!("    {}\n", paint(diff_line, code, colour)));
        }
    }
}

/// Renders a report for people: one line per item, diffs indented, a recap.
pub fn render_human(report: &Report, home: &Path, verbosity: Verbosity, colour: bool) -> String {
    let mut out = String::new();
    for item in &report.items {
        if verbosity == Verbosity::Quiet && item.status == Status::Ok {
            continue;
        }
        render_item(item, home, colour, &mut out);
    }
    let s = &report.summary;
    let mut recap = format!("{}: ok={} changed={} failed={}", report.step, s.ok, s.changed, s.failed);
    for (name, n) in [("would_change", s.would_change), ("drift", s.drift), ("skipped", s.skipped)] {
        if n > 0 {
            recap.push_str(&format!(" {name}={n}"));
        }
    }
    out.push_str(&recap);
    out.push('\n');
    if verbosity == Verbosity::Verbose {
        for command in &report.commands {
            out.push_str(&format!("ran: {command}\n"));
        }
    }
    if let Some(kept) = &report.kept {
        out.push_str(&format!("replaced files were kept under {}\n", tilde(kept, home)));
    }
    if s.failed > 0 {
        let changed: Vec<&str> = report.changed().map(|i| i.id.as_str()).collect();
        if changed.is_empty() {
            out.push_str("nothing was changed before the failure\n");
        } else {
            out.push_str(&format!("changed before the failure: {}\n", changed.join(", ")));
        }
        out.push_str(&format!(
            "fix what failed and run {} again: what is already in place is reported ok\n",
            report.step
        ));
    }
    redact(&out)
}

/// Renders a report as one JSON document.
pub fn render_json(report: &Report) -> String {
    let json = serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    redact(&json)
}

/// Prints a report: JSON on stdout with `--json`, otherwise the human form on stdout.
pub fn print_report(report: &Report, home: &Path, json: bool, verbosity: Verbosity) {
    let text = if json {
        let mut t = render_json(report);
        t.push('\n');
        t
    } else {
        render_human(report, home, verbosity, stdout_colour())
    };
    let mut out = stdout().lock();
    // A closed stdout (`| head`) is not an error worth a panic.
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// A spinner on stderr for a long command, drawn only on a terminal and never when quiet.
pub fn spinner(message: &str, verbosity: Verbosity) -> ProgressBar {
    let visible = verbosity != Verbosity::Quiet && colour_allowed(stderr().is_terminal());
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(redact(message));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Prints text a caller rendered (a report in its own layout) on stdout, redacted.
pub fn print_text(text: &str) {
    let mut out = stdout().lock();
    // A closed stdout (`| head`) is not an error worth a panic.
    let _ = out.write_all(redact(text).as_bytes());
    let _ = out.flush();
}

/// A message for the user on stderr.
pub fn note(message: &str) {
    let _ = writeln!(stderr().lock(), "{}", redact(message));
}

/// An error on stderr, prefixed with the program's name.
pub fn error(program: &str, message: &str) {
    let colour = colour_allowed(stderr().is_terminal());
    let label = paint("error", "31;1", colour);
    let _ = writeln!(stderr().lock(), "{program}: {label}: {}", redact(message));
}

/// A progress bar on stderr, drawn only on a terminal and never when quiet.
pub fn progress(len: u64, label: &str, verbosity: Verbosity) -> ProgressBar {
    bar(Some(len), label, "{prefix} [{bar:30}] {pos}/{len} {msg}", verbosity)
}

/// A progress bar of a fraction done (set its position in thousandths), shown as a
/// percentage; on stderr, only on a terminal and never when quiet.
pub fn progress_fraction(label: &str, verbosity: Verbosity) -> ProgressBar {
    bar(Some(1000), label, "{prefix} [{bar:30}] {percent:>3}% {msg} ({elapsed})", verbosity)
}

fn bar(len: Option<u64>, label: &str, template: &str, verbosity: Verbosity) -> ProgressBar {
    let visible = verbosity != Verbosity::Quiet && colour_allowed(stderr().is_terminal());
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(len, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn an_item_is_one_line_then_its_diff_indented() {
        let home = Path::new("/home/u");
        let item = Item::new("file:motd", "file", Status::WouldChange, "content differs")
            .at("/home/u/motd")
            .with_diff(Some("-old\n+new\n".to_owned()));
        let mut out = String::new();
        render_item(&item, home, false, &mut out);
        assert_eq!(out, "would change file:motd  ~/motd  (content differs)\n    -old\n    +new\n");
    }

    #[test]
    fn an_id_that_ends_with_its_path_does_not_repeat_it() {
        let home = Path::new("/home/u");
        let mut out = String::new();
        render_item(
            &Item::new("unclassified:~/scratch", "folder", Status::Drift, "").at("/home/u/scratch"),
            home,
            false,
            &mut out,
        );
        render_item(&Item::new("dir:scratch", "folder", Status::Ok, "").at("/home/u/scratch"), home, false, &mut out);
        assert_eq!(out, "drift        unclassified:~/scratch\nok           dir:scratch  ~/scratch\n");
    }
}
