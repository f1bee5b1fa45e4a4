//! The results as JUnit XML, for CI: one `testsuite` named after the step, one
//! `testcase` per check (`name` its id, `classname` `bootstrap-validate.SECTION`,
//! `time` in seconds), and a `failure` (`type` `failed` or `timeout`, `message` the one
//! line, the text with what came back) for each check that did not pass. The shape
//! of the Jenkins/Ant schema, checked against `tests/junit.xsd`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::runner::Run;

/// Text made safe for XML 1.0: markup escaped, characters XML cannot hold (control
/// characters such as the ESC of colour codes) replaced by U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// The JUnit XML of a run. `host` (the manifest's host name) becomes the suite's
/// `hostname`. Secrets are redacted.
pub fn render(run: &Run, host: Option<&str>) -> String {
    let step = crate::STEP;
    let tests = run.checks.len();
    let failures = run.outcomes.iter().filter(|o| !o.finding.ok).count();
    let time = seconds(run.took);
    // Ant's form: UTC, without a zone suffix.
    let timestamp = humantime::format_rfc3339_seconds(run.started).to_string().trim_end_matches('Z').to_owned();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{step}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" time=\"{time}\">"
    );
    let hostname = host.map(|h| format!(" hostname=\"{}\"", escape(h))).unwrap_or_default();
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{step}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\" timestamp=\"{timestamp}\"{hostname}>"
    );
    for (check, outcome) in run.checks.iter().zip(&run.outcomes) {
        let section = check.id.split(':').next().unwrap_or("check");
        let head = format!(
            "    <testcase name=\"{}\" classname=\"{step}.{}\" time=\"{}\"",
            escape(&check.id),
            escape(section),
            seconds(outcome.duration)
        );
        let finding = &outcome.finding;
        if finding.ok {
            let _ = writeln!(xml, "{head}/>");
            continue;
        }
        let kind = if finding.timed_out { "timeout" } else { "failed" };
        let mut text = finding.summary.clone();
        if let Some(evidence) = &finding.evidence {
            let _ = write!(text, "\n{}:\n{}", evidence.label, evidence.text);
        }
        let _ = writeln!(xml, "{head}>");
        let _ = writeln!(
            xml,
            "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
            escape(&finding.summary),
            escape(&text)
        );
        let _ = writeln!(xml, "    </testcase>");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    common::secret::redact(&xml)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup_and_characters_xml_cannot_hold() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(escape("\x1b[31mred\x1b[0m\n"), "\u{FFFD}[31mred\u{FFFD}[0m\n");
    }
}
