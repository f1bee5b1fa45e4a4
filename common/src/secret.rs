//! Secret values known to this process, redacted from everything it shows.
//!
//! Whoever reads a secret (an env file value, a password) registers it here; the exec
//! module redacts command lines and captured output, and the output module redacts
//! every line it prints, so a secret cannot reach a terminal, a log or a report.

use std::sync::{Mutex, PoisonError};

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
}
