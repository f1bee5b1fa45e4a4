//! The report every step produces: one item per resource and a summary. Its JSON form
//! is the stable contract documented in README.md.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// What happened to one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already in the declared state.
    Ok,
    /// Was changed and is now in the declared state.
    Changed,
    /// Differs; a run without `--check` would change it.
    WouldChange,
    /// Could not be observed or applied, or did not converge.
    Failed,
    /// Differs from the manifest (the audit's word for it).
    Drift,
    /// Not looked at (for instance its tool is not installed yet, under `--check`).
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::WouldChange => "would change",
            Status::Failed => "failed",
            Status::Drift => "drift",
            Status::Skipped => "skipped",
        }
    }
}

/// One item of a report.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The stable id, `section:name`.
    pub id: String,
    /// The resource kind: `folder`, `file`, `symlink`, `block`, ...
    pub kind: String,
    pub status: Status,
    /// The file or folder concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// One line saying what is (or was) the matter.
    pub detail: String,
    /// A unified diff of what differs, when it can be shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

impl Item {
    /// An item with no path and no diff: `Item::new("dir:logs", "folder", Status::Ok, "")`.
    pub fn new(id: impl Into<String>, kind: impl Into<String>, status: Status, detail: impl Into<String>) -> Item {
        Item { id: id.into(), kind: kind.into(), status, path: None, detail: detail.into(), diff: None }
    }

    /// The same item about `path`.
    pub fn at(self, path: impl Into<PathBuf>) -> Item {
        Item { path: Some(path.into()), ..self }
    }

    /// The same item about `path`, when there is one.
    pub fn at_maybe(self, path: Option<PathBuf>) -> Item {
        Item { path, ..self }
    }

    /// The same item with `diff`, when there is one.
    pub fn with_diff(self, diff: Option<String>) -> Item {
        Item { diff, ..self }
    }
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub ok: usize,
    pub changed: usize,
    pub would_change: usize,
    pub failed: usize,
    pub drift: usize,
    pub skipped: usize,
}

impl Summary {
    /// Counts one more item of `status`.
    pub fn count(&mut self, status: Status) {
        match status {
            Status::Ok => self.ok += 1,
            Status::Changed => self.changed += 1,
            Status::WouldChange => self.would_change += 1,
            Status::Failed => self.failed += 1,
            Status::Drift => self.drift += 1,
            Status::Skipped => self.skipped += 1,
        }
    }

    /// The counts of `statuses`.
    pub fn of(statuses: impl IntoIterator<Item = Status>) -> Summary {
        let mut summary = Summary::default();
        statuses.into_iter().for_each(|s| summary.count(s));
        summary
    }
}

/// The whole report of a step.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The step's name, such as `bootstrap-pi-config`.
    pub step: String,
    /// Whether this was an observe-only run.
    pub check: bool,
    pub items: Vec<Item>,
    pub summary: Summary,
    /// Where files replaced by this run were kept, if any were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// The commands this run ran to change the host (installs, restarts), in order.
    pub commands: Vec<String>,
}

impl Report {
    pub fn new(step: &str, check: bool) -> Report {
        Report {
            step: step.to_owned(),
            check,
            items: Vec::new(),
            summary: Summary::default(),
            kept: None,
            commands: Vec::new(),
        }
    }

    pub fn push(&mut self, item: Item) {
        self.summary.count(item.status);
        self.items.push(item);
    }

    /// 0 when done or in sync; 1 when something failed, drifted, or would change.
    pub fn exit_code(&self) -> i32 {
        let s = &self.summary;
        if s.failed > 0 || s.drift > 0 || s.would_change > 0 { 1 } else { 0 }
    }

    /// The items this run changed, for "what it changed so far" after a failure.
    pub fn changed(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.status == Status::Changed)
    }
}

/// A time for people, in UTC to the second: `2024-05-01 08:00:00 UTC`.
pub fn show_time(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string().replace('T', " ").replace('Z', " UTC")
}

/// An age for people: `40s`, `12m`, `3h 12m`, `2d 4h`.
pub fn show_age(age: std::time::Duration) -> String {
    let secs = age.as_secs();
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{minutes}m"),
        3600..86_400 => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// Shows `path` with HOME written as `~`, for human output.
pub fn tilde(path: &Path, home: &Path) -> String {
    match path.strip_prefix(home) {
        Ok(rest) if rest.as_os_str().is_empty() => "~".to_owned(),
        Ok(rest) => format!("~/{}", rest.display()),
        Err(_) => path.display().to_string(),
    }
}
