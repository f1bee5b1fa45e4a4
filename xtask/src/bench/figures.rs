//! The benchmark's figures: each one measured, beside its goal, printed as a table and
//! written into the README (`cargo xtask bench --readme`), one table per part of the
//! benchmark between that part's two markers, so the README's "Latest figures" are
//! always a run's output, never typed by hand; a part that did not run keeps its table
//! from the run that last measured it.
//!
//! The inner halves (in the sandbox) append their figures to a file as JSON lines; the
//! outer half reads them back and renders the table.

use std::path::Path;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Where the table of `part` begins in the README.
pub fn begin(part: &str) -> String {
    format!("<!-- bench:{part}:begin (cargo xtask bench --readme writes this table) -->")
}

/// Where it ends.
pub fn end(part: &str) -> String {
    format!("<!-- bench:{part}:end -->")
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The part of the benchmark that measured it (`noop`, `vs-ansible`, `scale`): its
    /// table in the README.
    pub part: String,
    /// What was measured, and how (the build, the host).
    pub what: String,
    /// The figure, formatted (`12.3 ms`, `4.1 MiB`, `310x`).
    pub value: String,
    /// The goal, formatted (`<= 50 ms`), empty when there is none.
    pub goal: String,
    /// Whether the goal is met; `None` without a goal.
    pub met: Option<bool>,
}

impl Figure {
    pub fn new(
        part: &str,
        what: impl Into<String>,
        value: impl Into<String>,
        goal: impl Into<String>,
        met: Option<bool>,
    ) -> Figure {
        Figure { part: part.to_owned(), what: what.into(), value: value.into(), goal: goal.into(), met }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"part": self.part, "what": self.what, "value": self.value, "goal": self.goal, "met": self.met})
    }

    fn from_json(value: &serde_json::Value) -> Option<Figure> {
        Some(Figure {
            part: value["part"].as_str()?.to_owned(),
            what: value["what"].as_str()?.to_owned(),
            value: value["value"].as_str()?.to_owned(),
            goal: value["goal"].as_str()?.to_owned(),
            met: value["met"].as_bool(),
        })
    }

    /// The figure's column: the value, then met or not.
    fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "",
        }
    }
}

/// Appends `figures` to `file` (JSON lines).
pub fn append(file: &Path, figures: &[Figure]) -> Result<()> {
    use std::io::Write as _;
    let mut out = fs_err::OpenOptions::new().create(true).append(true).open(file)?;
    for figure in figures {
        writeln!(out, "{}", figure.to_json())?;
    }
    Ok(())
}

/// The figures `file` holds, in order (none when it does not exist).
pub fn read(file: &Path) -> Result<Vec<Figure>> {
    let text = match fs_err::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let value: serde_json::Value = serde_json::from_str(l)?;
            Figure::from_json(&value).ok_or_else(|| format!("{}: not a figure: {l}", file.display()).into())
        })
        .collect()
}

/// The figures as a Markdown table.
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::from("| what | figure | goal |\n|---|---|---|\n");
    for f in figures {
        let goal = if f.goal.is_empty() { String::new() } else { format!("{} {}", f.goal, f.verdict()) };
        out.push_str(&format!("| {} | {} | {} |\n", f.what.replace('|', "\\|"), f.value, goal.trim_end()));
    }
    out
}

/// The figures as aligned text for the terminal.
pub fn text(figures: &[Figure]) -> String {
    let width = figures.iter().map(|f| f.what.chars().count()).max().unwrap_or(0).min(90);
    let mut out = String::new();
    for f in figures {
        out.push_str(&format!("   {:<width$}  {:>10}   {} {}\n", f.what, f.value, f.goal, f.verdict()));
    }
    out
}

/// `readme` with the table of each part that has figures replaced by theirs (the
/// other parts' tables stay); an error when a part's markers are missing or out of
/// order (a table is never put somewhere guessed).
pub fn write_tables(readme: &str, figures: &[Figure]) -> Result<String> {
    let mut parts: Vec<&str> = Vec::new();
    for f in figures {
        if !parts.contains(&f.part.as_str()) {
            parts.push(&f.part);
        }
    }
    let mut text = readme.to_owned();
    for part in parts {
        let of_part: Vec<Figure> = figures.iter().filter(|f| f.part == part).cloned().collect();
        text = replace_between_markers(&text, part, &table(&of_part))?;
    }
    Ok(text)
}

fn replace_between_markers(readme: &str, part: &str, table: &str) -> Result<String> {
    let (begin, end) = (begin(part), end(part));
    let start = readme.find(&begin).ok_or_else(|| format!("the README has no {begin} marker"))?;
    let after_begin = start + begin.len();
    let stop = readme[after_begin..]
        .find(&end)
        .map(|i| i + after_begin)
        .ok_or_else(|| format!("the README has no {end} marker after its begin"))?;
    Ok(format!("{}\n\n{}\n{}", &readme[..after_begin], table, &readme[stop..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_part_replaces_only_its_own_table() {
        let readme =
            format!("intro\n{}\nold a\n{}\nmiddle\n{}\nold b\n{}\noutro\n", begin("a"), end("a"), begin("b"), end("b"));
        let figures =
            [Figure::new("a", "audit", "12.0 ms", "<= 50 ms", Some(true)), Figure::new("a", "x", "1 s", "", None)];
        let new = write_tables(&readme, &figures).expect("markers are there");
        assert_eq!(
            new,
            format!(
                "intro\n{}\n\n| what | figure | goal |\n|---|---|---|\n| audit | 12.0 ms | <= 50 ms met |\n| x | 1 s |  |\n\n{}\nmiddle\n{}\nold b\n{}\noutro\n",
                begin("a"),
                end("a"),
                begin("b"),
                end("b")
            )
        );
        // Again: the same README.
        assert_eq!(write_tables(&new, &figures).expect("markers"), new);
    }

    #[test]
    fn a_readme_without_markers_is_refused() {
        let figures = [Figure::new("a", "x", "1 s", "", None)];
        assert!(write_tables("no markers\n", &figures).is_err());
        assert!(write_tables(&format!("{}\n{}\n", end("a"), begin("a")), &figures).is_err());
    }

    #[test]
    fn figures_survive_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.jsonl");
        let figures =
            vec![Figure::new("a", "a", "1 ms", "<= 2 ms", Some(true)), Figure::new("scale", "b", "3 MiB", "", None)];
        append(&file, &figures[..1]).expect("append");
        append(&file, &figures[1..]).expect("append");
        assert_eq!(read(&file).expect("read"), figures);
    }
}
