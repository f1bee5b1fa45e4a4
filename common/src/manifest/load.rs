//! Finding, reading and parsing the manifest. [`parse_yaml`] is the only place in the
//! workspace that parses YAML.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::check::{Problem, check_manifest};
use super::expand::{Expander, expand_manifest, resolve_vars};
use super::explain::{self, Fault, ParseError};
use super::tree::LazyTree;
use super::types::Manifest;

/// The file name looked for in the current folder and its parents.
pub const MANIFEST_FILE_NAME: &str = "pi-bootstrap.yaml";
/// The environment variable that names the manifest when `--manifest` is not given.
pub const MANIFEST_ENV: &str = "PI_BOOTSTRAP_MANIFEST";

/// Why a manifest could not be used. Its `Display` is the full message for the user,
/// one `file:line:col: key: message` line per problem.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    /// The manifest file concerned (empty when none was found).
    pub file: PathBuf,
    pub kind: LoadErrorKind,
}

/// What went wrong while loading.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadErrorKind {
    /// No manifest was named and none was found from the current folder up.
    NotFound { searched_from: PathBuf },
    /// The file could not be read.
    Read(std::io::Error),
    /// The YAML is malformed, or does not fit the manifest's types ([`ParseError::fault`]
    /// says which).
    Parse(ParseError),
    /// The manifest parsed but means something impossible or unsafe.
    Invalid(Vec<Problem>),
    /// HOME is not set, so no path can be expanded.
    NoHome,
}

impl LoadError {
    /// The problems with a position, for tests and JSON output.
    pub fn problems(&self) -> Vec<Problem> {
        match &self.kind {
            LoadErrorKind::Parse(e) => vec![e.problem.clone()],
            LoadErrorKind::Invalid(problems) => problems.clone(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        let located = |f: &mut fmt::Formatter<'_>, p: &Problem| {
            if p.pos.line == 0 {
                writeln!(f, "{file}: {p}")
            } else {
                writeln!(f, "{file}:{}:{}: {p}", p.pos.line, p.pos.column)
            }
        };
        match &self.kind {
            LoadErrorKind::NotFound { searched_from } => write!(
                f,
                "no manifest: pass --manifest PATH, set ${MANIFEST_ENV}, or put a {MANIFEST_FILE_NAME} in {} or a folder above it",
                searched_from.display()
            ),
            LoadErrorKind::Read(e) => write!(f, "{file}: cannot read the manifest: {e}"),
            LoadErrorKind::NoHome => write!(f, "HOME is not set: it is needed to expand ~ and $HOME in {file}"),
            LoadErrorKind::Parse(e) => {
                located(f, &e.problem)?;
                match e.fault {
                    Fault::Syntax => {
                        write!(f, "the manifest is not valid YAML (see the manifest reference in README.md)")
                    }
                    Fault::Shape => write!(
                        f,
                        "the manifest is valid YAML but does not fit pi-bootstrap's format (see the manifest reference in README.md)"
                    ),
                }
            }
            LoadErrorKind::Invalid(problems) => {
                for p in problems {
                    located(f, p)?;
                }
                let n = problems.len();
                write!(f, "{n} problem{} in the manifest", if n == 1 { "" } else { "s" })
            }
        }
    }
}

/// Parses YAML text into `T`: the one door for YAML in the workspace (clippy denies the
/// parser's entry points everywhere else). Unknown keys, wrong types and syntax errors
/// come back as a [`ParseError`]: a [`Problem`] with the position, the key path and what
/// was expected and found, in words for the person editing the file, and whether the
/// text is not YAML at all ([`Fault::Syntax`]) or YAML that does not fit `T`
/// ([`Fault::Shape`]). The positions of the manifest's nodes (`tree.rs`) are read
/// through here too, as plain YAML.
#[allow(clippy::disallowed_methods, reason = "the one door for YAML")]
pub fn parse_yaml<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    let options = serde_saphyr::options! { with_snippet: false };
    // Without the key path first: tracking it costs a third of the parse (20 ms of a
    // 1,000-service manifest). Text that does not parse is parsed again with it, to
    // the same error, which then names its key.
    if let Ok(parsed) = serde_saphyr::from_str_with_options(text, options.clone()) {
        return Ok(parsed);
    }
    let mut key = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            key = e.path().to_string();
            e.into_inner()
        })
    });
    parsed.map_err(|e| explain::problem(&e, &key, text))
}

/// Finds the manifest: `--manifest`, then `$PI_BOOTSTRAP_MANIFEST`, then the nearest
/// `pi-bootstrap.yaml` in `cwd` or a folder above it.
pub fn find_manifest(flag: Option<&Path>, env_value: Option<&str>, cwd: &Path) -> Result<PathBuf, LoadError> {
    if let Some(path) = flag {
        return Ok(path.to_path_buf());
    }
    if let Some(path) = env_value.filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    cwd.ancestors().map(|dir| dir.join(MANIFEST_FILE_NAME)).find(|candidate| candidate.is_file()).ok_or_else(|| {
        LoadError { file: PathBuf::new(), kind: LoadErrorKind::NotFound { searched_from: cwd.to_path_buf() } }
    })
}

/// Reads, parses, expands and checks the manifest at `file`, with HOME and variables
/// from the process environment.
pub fn load(file: &Path) -> Result<Manifest, LoadError> {
    let err = |kind| LoadError { file: file.to_path_buf(), kind };
    let text = std::fs::read_to_string(file).map_err(|e| err(LoadErrorKind::Read(e)))?;
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).ok_or_else(|| err(LoadErrorKind::NoHome))?;
    load_str(file, &text, Path::new(&home), &|name| std::env::var(name).ok())
}

/// [`load`] from text already read, with HOME and the environment given.
pub fn load_str(
    file: &Path,
    text: &str,
    home: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, LoadError> {
    let err = |kind| LoadError { file: file.to_path_buf(), kind };
    let mut manifest: Manifest = parse_yaml(text).map_err(|p| err(LoadErrorKind::Parse(p)))?;
    manifest.file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    let tree = LazyTree::new(text);
    let pos = |key: &str| tree.pos(key).unwrap_or_default();
    let (vars, mut problems) = resolve_vars(&manifest.vars, home, env, &pos);
    let expander = Expander { home, vars: &vars, env };
    problems.extend(expand_manifest(&mut manifest, &expander, &pos));
    // A value that could not be expanded is said once: the checks of its meaning
    // would only repeat it in other words.
    let unexpanded: std::collections::HashSet<String> = problems.iter().map(|p| p.key.clone()).collect();
    problems.extend(check_manifest(&manifest, home, &tree).into_iter().filter(|p| !unexpanded.contains(&p.key)));
    problems.sort_by_key(|problem| (problem.pos.line, problem.pos.column));
    if problems.is_empty() { Ok(manifest) } else { Err(err(LoadErrorKind::Invalid(problems))) }
}
