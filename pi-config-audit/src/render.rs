//! The audit's two outputs: for people, items grouped under their category with a
//! recap per category and the usual last line (`pi-config-audit: ok=.. drift=..`);
//! for programs, the JSON report of `common::report` with a `category` on each item and
//! a `categories` recap. Both pass through secret redaction.

use std::path::Path;

use common::output::{Verbosity, paint, render_item};
use common::report::{Item, Status, Summary};
use common::secret::redact;
use serde::Serialize;

use crate::{Audit, Category};

/// Colour only on a terminal, never with `NO_COLOR` or `TERM=dumb`.
pub fn colour_allowed() -> bool {
    common::output::stdout_colour()
}

/// Counts per status of one category.
fn summary<'a>(items: impl Iterator<Item = &'a Item>) -> Summary {
    Summary::of(items.map(|item| item.status))
}

fn counts(s: &Summary) -> String {
    let mut out = Vec::new();
    for (name, n) in [("ok", s.ok), ("drift", s.drift), ("failed", s.failed), ("skipped", s.skipped)] {
        if n > 0 || name == "ok" {
            out.push(format!("{name}={n}"));
        }
    }
    out.join(" ")
}

/// The report for people: a heading per category that has something to show, its
/// items (only what is not ok with `-q`), a recap per category, the total.
pub fn render_human(audit: &Audit, home: &Path, verbosity: Verbosity, colour: bool) -> String {
    let mut out = String::new();
    let mut recap = Vec::new();
    for category in Category::ALL {
        let items: Vec<&Item> = audit.entries().filter(|(c, _)| *c == category).map(|(_, i)| i).collect();
        if items.is_empty() {
            continue;
        }
        let s = summary(items.iter().copied());
        let shown: Vec<&Item> =
            items.iter().copied().filter(|i| verbosity != Verbosity::Quiet || i.status != Status::Ok).collect();
        if !shown.is_empty() {
            out.push_str(&paint(&format!("== {}: {}", category.name(), category.title()), "1", colour));
            out.push('\n');
            for item in shown {
                render_item(item, home, colour, &mut out);
            }
        }
        if verbosity != Verbosity::Quiet || s.ok != items.len() {
            recap.push(format!("  {:<10} {}", category.name(), counts(&s)));
        }
    }
    if !recap.is_empty() {
        out.push_str("recap:\n");
        for line in recap {
            out.push_str(&line);
            out.push('\n');
        }
    }
    let s = &audit.report.summary;
    let mut total = format!("{}: ok={} changed={} failed={}", audit.report.step, s.ok, s.changed, s.failed);
    for (name, n) in [("would_change", s.would_change), ("drift", s.drift), ("skipped", s.skipped)] {
        if n > 0 {
            total.push_str(&format!(" {name}={n}"));
        }
    }
    out.push_str(&total);
    out.push('\n');
    redact(&out)
}

#[derive(Serialize)]
struct JsonItem<'a> {
    #[serde(flatten)]
    item: &'a Item,
    category: Category,
}

#[derive(Serialize)]
struct JsonCategory {
    name: Category,
    title: &'static str,
    #[serde(flatten)]
    summary: Summary,
}

#[derive(Serialize)]
struct JsonAudit<'a> {
    step: &'a str,
    check: bool,
    items: Vec<JsonItem<'a>>,
    summary: Summary,
    commands: &'a [String],
    categories: Vec<JsonCategory>,
}

/// The report as one JSON document: `common::report`'s shape, plus `category` on
/// every item and a `categories` recap (every category that has items, in order).
pub fn render_json(audit: &Audit) -> String {
    let categories = Category::ALL
        .iter()
        .filter(|c| audit.categories.contains(c))
        .map(|c| JsonCategory {
            name: *c,
            title: c.title(),
            summary: summary(audit.entries().filter(|(i, _)| i == c).map(|(_, item)| item)),
        })
        .collect();
    let doc = JsonAudit {
        step: &audit.report.step,
        check: audit.report.check,
        items: audit.entries().map(|(category, item)| JsonItem { item, category }).collect(),
        summary: audit.report.summary,
        commands: &audit.report.commands,
        categories,
    };
    let json = serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    redact(&json)
}
