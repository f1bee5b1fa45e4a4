//! Unified diffs of text, through the `similar` crate.

use similar::TextDiff;

/// A unified diff from `old` to `new` with 3 lines of context, or `None` when either
/// side is not text (binary content is described, not shown).
pub fn unified_diff(label: &str, old: &[u8], new: &[u8]) -> Option<String> {
    let old = std::str::from_utf8(old).ok()?;
    let new = std::str::from_utf8(new).ok()?;
    let diff = TextDiff::from_lines(old, new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("{label} (now)"), &format!("{label} (declared)"))
        .to_string();
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_changed_lines_with_headers() {
        let diff = unified_diff("f", b"a\nb\nc\n", b"a\nB\nc\n").unwrap_or_default();
        insta::assert_snapshot!(diff, @r"
        --- f (now)
        +++ f (declared)
        @@ -1,3 +1,3 @@
         a
        -b
        +B
         c
        ");
    }

    #[test]
    fn binary_is_not_shown() {
        assert_eq!(unified_diff("f", &[0xff, 0xfe], b"x"), None);
    }
}
