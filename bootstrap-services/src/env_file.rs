//! Env files (`KEY=value` lines, as systemd's `EnvironmentFile=` reads them): every
//! required variable present, mode 0600. A value already in the file is kept as it is;
//! a missing one is taken from the process environment when it is exported at run
//! time; otherwise the run fails naming the missing variables, and writes nothing.
//! Values are secrets: they are registered for redaction, and diffs show names only.

use std::path::{Path, PathBuf};

use common::engine::{Ctx, Difference, EngineError, Observed, Resource, unified_diff};
use common::fsx;
use common::manifest::{EnvFile, ItemId};
use common::secret;

/// The default (and recommended) mode of an env file.
pub const DEFAULT_MODE: u32 = 0o600;

/// One env file of the manifest.
#[derive(Debug, Clone)]
pub struct EnvFileResource {
    pub id: ItemId,
    pub path: PathBuf,
    pub vars: Vec<String>,
    pub mode: u32,
}

impl EnvFileResource {
    pub fn from_manifest(env: &EnvFile) -> EnvFileResource {
        EnvFileResource {
            id: ItemId::new("env", env.name.as_str()),
            path: env.path.path().to_path_buf(),
            vars: env.vars.clone(),
            mode: env.mode.map_or(DEFAULT_MODE, |m| m.0),
        }
    }
}

pub use common::secret::env_values as parse;

/// A value as a line systemd and sh both read back unchanged.
fn line(name: &str, value: &str) -> String {
    let plain = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@%+,=".contains(c));
    if plain {
        format!("{name}={value}\n")
    } else {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`");
        format!("{name}=\"{escaped}\"\n")
    }
}

/// What the file needs: the variables to add (with values from the environment) and
/// the ones nobody can provide.
struct Needs {
    text: String,
    mode: Option<u32>,
    add: Vec<(String, String)>,
    unavailable: Vec<String>,
}

impl EnvFileResource {
    fn needs(&self) -> Result<Needs, EngineError> {
        let (text, mode) = match std::fs::read_to_string(&self.path) {
            Ok(text) => (text, fsx::mode_of(&self.path).map_err(EngineError::io("read", &self.path))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
            Err(e) => return Err(EngineError::io("read", &self.path)(e)),
        };
        let present = parse(&text);
        for value in present.values() {
            secret::register(value);
        }
        let mut add = Vec::new();
        let mut unavailable = Vec::new();
        for name in &self.vars {
            if present.get(name).is_some_and(|v| !v.is_empty()) {
                continue;
            }
            match std::env::var(name) {
                Ok(value) if !value.is_empty() => {
                    secret::register(&value);
                    add.push((name.clone(), value));
                }
                _ => unavailable.push(name.clone()),
            }
        }
        Ok(Needs { text, mode, add, unavailable })
    }
}

impl EnvFileResource {
    /// The variables neither the file nor the environment holds (a run would fail on them).
    pub fn unavailable(&self) -> Result<Vec<String>, EngineError> {
        Ok(self.needs()?.unavailable)
    }

    /// The text the file holds once a run has written it: what is there with the
    /// variables from the environment added (as [`Resource::apply`] writes it); what
    /// is there when a run would write nothing (a variable nobody provides). So a
    /// service's fingerprint is the same under `--check` as in the run.
    pub fn text_after_run(&self) -> Result<String, EngineError> {
        let needs = self.needs()?;
        Ok(if needs.unavailable.is_empty() { with_added(needs.text, &needs.add) } else { needs.text })
    }
}

/// `text` with a line for each of `add`, as the file is written.
fn with_added(mut text: String, add: &[(String, String)]) -> String {
    if add.is_empty() {
        return text;
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for (name, value) in add {
        text.push_str(&line(name, value));
    }
    text
}

impl Resource for EnvFileResource {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "env"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        let needs = self.needs()?;
        let mut what = Vec::new();
        if needs.mode.is_none() {
            what.push("missing".to_owned());
        }
        if !needs.add.is_empty() {
            what.push(format!("{} to add from the environment", names(needs.add.iter().map(|(n, _)| n))));
        }
        if !needs.unavailable.is_empty() {
            what.push(format!(
                "{} not set: export {} when running this step",
                names(needs.unavailable.iter()),
                if needs.unavailable.len() == 1 { "it" } else { "them" }
            ));
        }
        if let Some(mode) = needs.mode
            && mode != self.mode
        {
            what.push(format!("mode {mode:04o}, want {:04o}", self.mode));
        }
        if what.is_empty() {
            return Ok(Observed::InSync);
        }
        // A unified diff of names only: every value is masked, before and after.
        let diff = (!needs.add.is_empty())
            .then(|| {
                let now = names_only(&needs.text);
                let mut declared = now.clone();
                for (name, _) in &needs.add {
                    declared.push_str(&format!("{name}=<value from the environment>\n"));
                }
                unified_diff(&self.path.display().to_string(), now.as_bytes(), declared.as_bytes())
            })
            .flatten();
        Ok(Observed::Differs(Difference::new(what.join("; ")).with_diff(diff)))
    }

    fn apply(&self, _: &Ctx) -> Result<(), EngineError> {
        let needs = self.needs()?;
        if !needs.unavailable.is_empty() {
            return Err(EngineError::Refused(format!(
                "{} {} not set in the environment and not in {}: nothing was written",
                names(needs.unavailable.iter()),
                if needs.unavailable.len() == 1 { "is" } else { "are" },
                self.path.display()
            )));
        }
        if needs.add.is_empty() {
            return fsx::set_mode(&self.path, self.mode).map_err(EngineError::io("set the mode of", &self.path));
        }
        // No copy is kept: the new file is the old one with lines added (nothing is
        // lost), and a copy would put secrets in the state folder.
        let text = with_added(needs.text, &needs.add);
        fsx::write_atomic(&self.path, text.as_bytes(), Some(self.mode)).map_err(EngineError::io("write", &self.path))
    }
}

/// An env file's text with every value masked: `NAME=<value>` lines, comments and
/// other lines named but not shown. What a diff may show of it.
fn names_only(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let shown = if trimmed.is_empty() {
            String::new()
        } else if trimmed.starts_with('#') {
            "# (a comment)".to_owned()
        } else {
            match trimmed.strip_prefix("export ").unwrap_or(trimmed).split_once('=') {
                Some((name, _)) => format!("{}=<value>", name.trim()),
                None => "(a line that is not NAME=value)".to_owned(),
            }
        };
        out.push_str(&shown);
        out.push('\n');
    }
    out
}

fn names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names.map(String::as_str).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_names_only() {
        let masked = names_only("# token rotated\nA=s3cret\nexport B=\"x y\"\n\nnonsense\n");
        assert_eq!(masked, "# (a comment)\nA=<value>\nB=<value>\n\n(a line that is not NAME=value)\n");
        assert!(!masked.contains("s3cret") && !masked.contains("rotated"));
    }

    #[test]
    fn writes_values_that_read_back_unchanged() {
        assert_eq!(line("A", "abc:123"), "A=abc:123\n");
        assert_eq!(line("A", "a \"b\" $c"), "A=\"a \\\"b\\\" \\$c\"\n");
        assert_eq!(parse(&line("A", "plain")).get("A").map(String::as_str), Some("plain"));
    }
}
