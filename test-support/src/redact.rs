//! Outputs made stable for snapshots: one [`Redactions`] builder, with a test's own
//! paths replaced by labels and the standard rules for what changes from run to run
//! (snapshot ids, times, ages of any length, measured durations, the kept folder's run
//! ids). Rules apply in the order they were added.

use std::path::Path;

use regex::Regex;

/// An age as the steps print it, of any length: `40s`, `12m`, `3h 12m`, `2d 4h`.
pub const AGE: &str = r"\b\d+[smhd](?: \d+[smhd])*";

enum Rule {
    /// A literal text (a temporary path) and its label.
    Literal(String, String),
    /// A pattern and its replacement (`$name` for a group).
    Pattern(Regex, String),
}

/// The rules that turn an output into its snapshot.
#[derive(Default)]
pub struct Redactions {
    rules: Vec<Rule>,
}

impl Redactions {
    pub fn new() -> Redactions {
        Redactions::default()
    }

    /// `path` (a temporary folder) replaced by `label`, such as `[TMP]`.
    pub fn path(mut self, path: impl AsRef<Path>, label: &str) -> Redactions {
        self.rules.push(Rule::Literal(path.as_ref().display().to_string(), label.to_owned()));
        self
    }

    /// A rule of the test's own: `pattern` (a regex) replaced by `with`.
    pub fn rule(mut self, pattern: &str, with: &str) -> Redactions {
        let regex = Regex::new(pattern).unwrap_or_else(|e| panic!("the redaction /{pattern}/ does not compile: {e}"));
        self.rules.push(Rule::Pattern(regex, with.to_owned()));
        self
    }

    /// restic's snapshot ids: the full one as `[SNAPSHOT-ID]`, the short one (eight hex
    /// digits) as `[SNAPSHOT]`.
    pub fn snapshot_ids(self) -> Redactions {
        self.rule(r"\b[0-9a-f]{64}\b", "[SNAPSHOT-ID]").rule(r"\b[0-9a-f]{8}\b", "[SNAPSHOT]")
    }

    /// Times as people read them, `2024-05-01 08:00:00 UTC`, as `[TIME]`.
    pub fn times(self) -> Redactions {
        self.rule(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", "[TIME]")
    }

    /// Ages of any length ([`AGE`]) before `old` or `ago` (`3s old`, `2d 4h ago`, `as
    /// last fetched 3h 2m ago`) as `[AGE]`, the word kept; and `next due in 6d 23h` as
    /// `next due in [AGE]`.
    pub fn ages(self) -> Redactions {
        self.rule(&format!(r"{AGE} (?P<word>old|ago)\b"), "[AGE] ${word}")
            .rule(&format!(r"next due in {AGE}"), "next due in [AGE]")
    }

    /// Measured durations, seconds with a fraction (`0.42s`, `1.25s`), as `[TIME]` (the
    /// label the validate step's snapshots have). Whole seconds and milliseconds are
    /// left alone: the steps print them for configured values, such as `timed out after
    /// 300ms`, which a snapshot keeps.
    pub fn durations(self) -> Redactions {
        self.rule(r"\d+\.\d+s\b", "[TIME]")
    }

    /// The run id of a kept folder (`kept/2024-05-01T080000Z-4242-0`) as `kept/[RUN]`.
    pub fn kept_runs(self) -> Redactions {
        self.rule(r"kept/\d{4}-\d{2}-\d{2}T\d{6}Z-\d+-\d+", "kept/[RUN]")
    }

    /// `text` (an output's bytes, or a string) with every rule applied, in order.
    pub fn apply(&self, text: impl AsRef<[u8]>) -> String {
        let text = String::from_utf8_lossy(text.as_ref()).into_owned();
        self.rules.iter().fold(text, |text, rule| match rule {
            Rule::Literal(from, to) => text.replace(from.as_str(), to),
            Rule::Pattern(regex, with) => regex.replace_all(&text, with.as_str()).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_of_any_length_keep_their_word() {
        let r = Redactions::new().ages();
        assert_eq!(r.apply("(3s old)"), "([AGE] old)");
        assert_eq!(r.apply("is 2d 4h old, more"), "is [AGE] old, more");
        assert_eq!(r.apply("as last fetched 3h 2m ago:"), "as last fetched [AGE] ago:");
        assert_eq!(r.apply("last verified 12m ago; next due in 6d 23h"), "last verified [AGE] ago; next due in [AGE]");
        assert_eq!(r.apply("more than the 1s allowed"), "more than the 1s allowed");
    }

    #[test]
    fn paths_times_ids_and_durations() {
        let r = Redactions::new().path("/tmp/x1", "[TMP]").snapshot_ids().times().durations().kept_runs();
        assert_eq!(
            r.apply(b"/tmp/x1/backup: snapshot 0a1b2c3d of 2024-05-01 08:00:00 UTC took 0.25s, timed out after 300ms"),
            "[TMP]/backup: snapshot [SNAPSHOT] of [TIME] took [TIME], timed out after 300ms"
        );
        assert_eq!(r.apply(format!("id {}", "ab".repeat(32))), "id [SNAPSHOT-ID]");
        assert_eq!(
            r.apply("~/.local/state/pi-bootstrap/kept/2024-05-01T080000Z-4242-0"),
            "~/.local/state/pi-bootstrap/kept/[RUN]"
        );
    }

    #[test]
    fn rules_apply_in_order() {
        let r = Redactions::new().rule(&format!("{AGE} old"), "[AGE]").ages();
        assert_eq!(r.apply("(1m old) as last fetched 5s ago"), "([AGE]) as last fetched [AGE] ago");
    }
}
