//! Secret values known to this process, redacted from everything it shows.
//!
//! Every step binary registers every secret the manifest declares before it runs
//! ([`register_declared`]: the values in the env files and in the environment under
//! their declared names, the restic password), so even a step that never reads them (a
//! validate check whose command prints an env file) cannot show them; whoever reads a
//! secret later registers it too. The exec module redacts command lines and captured
//! output, and the output module redacts every line it prints, so a secret cannot
//! reach a terminal, a log or a report.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use aho_corasick::AhoCorasick;

use crate::manifest::Manifest;

/// The registered values, and the automaton that finds all of them in one pass over a
/// text (built again on the first redaction after a new value).
struct Registry {
    values: BTreeSet<String>,
    finder: Option<AhoCorasick>,
}

static SECRETS: Mutex<Registry> = Mutex::new(Registry { values: BTreeSet::new(), finder: None });

/// What a redacted secret looks like.
pub const REDACTED: &str = "<redacted>";

/// Registers a secret value. Values shorter than 4 characters are not registered:
/// redacting them would garble ordinary text and they protect nothing.
pub fn register(value: &str) {
    if value.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if secrets.values.insert(value.to_owned()) {
        secrets.finder = None;
    }
}

/// The variables of an env file's text (`KEY=value` lines, as systemd's
/// `EnvironmentFile=` and sh read them), by name, with their raw values.
pub fn env_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("export ").unwrap_or(l).split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), unquote(v.trim())))
        .collect()
}

fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(quote) && value.ends_with(quote) {
            return value[1..value.len() - 1].to_owned();
        }
    }
    value.to_owned()
}

/// Registers every secret the manifest declares: the values of its env files (what
/// they hold, and what the environment holds under their variable names) and the
/// restic password (its file, each of its lines, and one in the repository's url).
/// What cannot be read is skipped: the step that needs it says why.
pub fn register_declared(manifest: &Manifest) {
    for env in &manifest.env {
        if let Ok(text) = std::fs::read_to_string(env.path.path()) {
            env_values(&text).values().for_each(|v| register(v));
        }
        for name in &env.vars {
            if let Ok(value) = std::env::var(name) {
                register(&value);
            }
        }
    }
    if let Some(backup) = &manifest.backup {
        if let Ok(text) = std::fs::read_to_string(backup.password_file.path()) {
            register(text.trim());
            text.lines().map(str::trim).for_each(register);
        }
        if let Some(password) = url_password(&backup.repository.value) {
            register(password);
        }
    }
}

/// The password of a url such as `rest:https://user:password@host/`, if any.
pub fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    Some(password).filter(|p| !p.is_empty())
}

/// `text` with every registered secret replaced by `<redacted>`: every byte that lies
/// in some occurrence of some secret (overlapping ones too, so no part of a secret
/// shows beside another) is covered, each covered run by one `<redacted>`. One pass
/// over the text whatever the number of secrets (an audit of a thousand env files
/// redacts every line systemctl prints against each of their values).
pub fn redact(text: &str) -> String {
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if secrets.values.is_empty() {
        return text.to_owned();
    }
    if secrets.finder.is_none() {
        // Standard semantics: the only ones that report overlapping matches.
        secrets.finder = AhoCorasick::new(&secrets.values).ok();
    }
    let Some(finder) = &secrets.finder else {
        // Too many secrets for an automaton (never seen): nothing is shown rather than
        // something that might hold one.
        return REDACTED.to_owned();
    };
    // The covered runs, disjoint and in order. Matches come in order of their end, so
    // a match can only reach back over the runs before it: those merge into it.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for found in finder.find_overlapping_iter(text) {
        let (mut start, mut end) = (found.start(), found.end());
        while let Some(&(run_start, run_end)) = runs.last().filter(|&&(_, run_end)| run_end >= start) {
            runs.pop();
            (start, end) = (start.min(run_start), end.max(run_end));
        }
        runs.push((start, end));
    }
    if runs.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in runs {
        out.push_str(&text[at..start]);
        out.push_str(REDACTED);
        at = end;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_registered_values_longest_first() {
        register("canary-secret-b1");
        register("canary-secret-b1-longer");
        register("abc");
        assert_eq!(redact("x canary-secret-b1-longer y canary-secret-b1 abc"), "x <redacted> y <redacted> abc");
    }

    #[test]
    fn overlapping_secrets_leave_no_part_of_either() {
        register("canary-overlap-head");
        register("overlap-head-tail-canary");
        register("canary-adjacent-1");
        register("canary-adjacent-2");
        assert_eq!(redact("[canary-overlap-head-tail-canary]"), "[<redacted>]");
        assert_eq!(redact("a canary-adjacent-1canary-adjacent-2 b"), "a <redacted> b");
        assert_eq!(redact("é canary-adjacent-1 ü"), "é <redacted> ü");
        assert_eq!(redact("nothing secret here"), "nothing secret here");
    }

    #[test]
    fn env_files_are_read_as_systemd_and_sh_read_them() {
        let vars = env_values("# c\nA=1\nexport B=\"two words\"\nC='x'\n\nbroken line\n");
        assert_eq!(vars.get("A").map(String::as_str), Some("1"));
        assert_eq!(vars.get("B").map(String::as_str), Some("two words"));
        assert_eq!(vars.get("C").map(String::as_str), Some("x"));
        assert_eq!(vars.len(), 3);
        assert_eq!(url_password("rest:https://me:s3cret-pw@host:8000/repo"), Some("s3cret-pw"));
        assert_eq!(url_password("rest:https://me@host/"), None);
    }
}
