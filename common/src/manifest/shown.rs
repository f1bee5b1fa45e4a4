//! A value from the manifest as a message shows it: quoted, and cut to a readable
//! length, so a huge value never floods a message.

/// How wide a value is shown: its quoted form holds at most this many characters
/// between the quotes (an escape such as `\n` counts as its two characters).
pub(crate) const SHOWN_WIDTH: usize = 60;

/// `value` quoted as Rust quotes it (`"~/pi config"`), whole when it is short, else its
/// beginning, `…` and its full length: `"aaaa…" (300000 bytes)`.
pub(crate) fn shown(value: &str) -> String {
    let mut width = 0;
    let mut end = value.len();
    for (at, c) in value.char_indices() {
        width += c.escape_debug().count();
        if width > SHOWN_WIDTH {
            end = at;
            break;
        }
    }
    if end == value.len() {
        return format!("{value:?}");
    }
    let quoted = format!("{:?}", &value[..end]);
    let open = quoted.strip_suffix('"').unwrap_or(&quoted);
    format!("{open}…\" ({} bytes)", value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_quoted_whole() {
        assert_eq!(shown("~/pi-config"), "\"~/pi-config\"");
        assert_eq!(shown(""), "\"\"");
        assert_eq!(shown("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        let exact = "a".repeat(SHOWN_WIDTH);
        assert_eq!(shown(&exact), format!("\"{exact}\""));
    }

    #[test]
    fn long_values_are_cut_with_their_length() {
        let long = "a".repeat(300_000);
        assert_eq!(shown(&long), format!("\"{}…\" (300000 bytes)", "a".repeat(SHOWN_WIDTH)));
    }

    #[test]
    fn cuts_on_a_char_boundary_and_counts_escapes() {
        let crabs = "🦀".repeat(100);
        assert_eq!(shown(&crabs), format!("\"{}…\" (400 bytes)", "🦀".repeat(SHOWN_WIDTH)));
        // Control characters are escaped: the shown text stays as wide, not wider.
        let bells = "\u{7}".repeat(1000);
        let cut = shown(&bells);
        assert!(cut.chars().count() < SHOWN_WIDTH + 20, "{cut}");
        assert!(cut.ends_with("…\" (1000 bytes)"), "{cut}");
    }
}
