//! Secret values known to this process, redacted from everything it shows.
//!
//! Every step binary registers every secret the manifest declares before it runs
//! ([`register_declared`]: the values in the env files and in the environment under
//! their declared names, the restic password), so even a step that never reads them (a
//! validate check whose command prints an env file) cannot show them; whoever reads a
//! secret later registers it too. The exec module redacts command lines and captured
//! output, and the output module redacts every line it prints, so a secret cannot
//! reach a terminal, a log or a report.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::manifest::Manifest;

static SECRETS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// What a redacted secret looks like.
pub const REDACTED: &str = "<redacted>";

/// Registers a secret value. Values shorter than 4 characters are not registered:
/// redacting them would garble ordinary text and they protect nothing.
pub fn register(value: &str) {
    if value.len() < 4 {
        return;
    }
    let mut secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_owned());
        // Longest first, so a secret that contains another is redacted whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
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

/// `text` with every registered secret replaced by `<redacted>`.
pub fn redact(text: &str) -> String {
    let secrets = SECRETS.lock().unwrap_or_else(PoisonError::into_inner);
    let mut out = text.to_owned();
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), REDACTED);
        }
    }
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
