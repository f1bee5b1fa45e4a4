//! serde-saphyr's errors in words for the person editing the manifest: where the
//! problem is (the value itself where possible), under which key, what was expected and
//! what was found.

use serde_saphyr::Error;

use super::check::Problem;
use super::tree::Tree;
use super::types::Pos;

/// The problem for a failed parse; `raw_key` is the key path `serde_path_to_error`
/// reached.
pub(crate) fn problem(err: &Error, raw_key: &str, text: &str) -> Problem {
    let err = original(err);
    // Read the text again only for errors about a value, to point at it and say what it
    // is; never for syntax errors (it would fail again).
    let tree = match err {
        Error::Unexpected { .. }
        | Error::InvalidScalar { .. }
        | Error::NullIntoString { .. }
        | Error::SerdeInvalidType { .. }
        | Error::SerdeInvalidValue { .. }
        | Error::SerdeInvalidLength { .. }
        | Error::SerdeMissingField { .. }
        | Error::ExpectedStringKeyForExternallyTaggedEnum { .. }
        | Error::ExternallyTaggedEnumExpectedScalarOrMapping { .. }
        | Error::Message { .. } => Tree::parse(text),
        _ => Tree::default(),
    };
    let mut key = match err {
        // The path ends with the unknown key itself, which may well be called `value`.
        Error::SerdeUnknownField { field, .. } if raw_key.ends_with(field.as_str()) => raw_key.to_owned(),
        _ => clean_key(raw_key, &tree),
    };
    let at_error = err.location().map(|l| Pos { line: l.line(), column: l.column() }).filter(|pos| pos.line > 0);
    // Type and value errors point at the value itself; the parser sometimes points at
    // its key, or past the end of a mapping.
    let at_value = tree.pos(&key).or(at_error);
    let found = |key: &str| tree.get(key).map(|spot| format!(", found {}", spot.found)).unwrap_or_default();
    // `install: apt` where `install: {apt: NAME}` is meant: the choice has no value.
    if let Some((parent, choice)) = key.rsplit_once('.')
        && tree.get(&key).is_none()
        && tree.get(parent).is_some_and(|spot| spot.found == format!("{choice:?}"))
        && matches!(err, Error::Unexpected { .. } | Error::NullIntoString { .. } | Error::InvalidScalar { .. })
    {
        return Problem::new(
            tree.pos(parent).or(at_error).unwrap_or(Pos { line: 1, column: 1 }),
            parent,
            format!("`{choice}` needs a value: write it as `{choice}: VALUE`"),
        );
    }
    let (pos, message) = match err {
        _ if is_blank(text) => {
            (at_error, "the file is empty: a manifest needs at least `version: 1` and a `repo` section".to_owned())
        }
        Error::Eof { .. } => (at_error, "the file ends in the middle of a value".to_owned()),
        Error::MultipleDocuments { .. } => {
            (at_error, "a second YAML document starts here, after `---`: the manifest is one document".to_owned())
        }
        Error::Unexpected { .. } if raw_key.ends_with('?') => {
            (at_error, "expected a key name here, such as `name:`".to_owned())
        }
        Error::Unexpected { expected, .. } => (at_value, format!("expected {}{}", shape(expected), found(&key))),
        Error::InvalidScalar { ty, .. } => (at_value, format!("expected {}{}", scalar(ty), found(&key))),
        Error::NullIntoString { .. } => (at_value, "expected a value, found nothing".to_owned()),
        Error::SerdeInvalidType { unexpected, expected, .. }
        | Error::SerdeInvalidValue { unexpected, expected, .. } => {
            let found = tree.get(&key).map_or_else(|| unexpected.clone(), |spot| spot.found.clone());
            (at_value, format!("expected {expected}, found {found}"))
        }
        Error::SerdeInvalidLength { len, expected, .. } => {
            let found = tree.get(&key).map_or_else(|| format!("{len} items"), |spot| spot.found.clone());
            (at_value, format!("expected {expected}, found {found}"))
        }
        Error::SerdeUnknownVariant { variant, expected, .. } => {
            (at_error, format!("`{variant}` is not one of {}{}", list(expected), did_you_mean(variant, expected)))
        }
        Error::SerdeUnknownField { field, expected, .. } => {
            let allowed = match expected.as_slice() {
                [] => "no keys are allowed here".to_owned(),
                [only] => format!("the only key here is `{only}`"),
                many => format!("the keys here are {}", list(many)),
            };
            (at_error, format!("unknown key `{field}`{}; {allowed}", did_you_mean(field, expected)))
        }
        Error::SerdeMissingField { field, .. } => (at_value, format!("the required key `{field}` is missing")),
        Error::DuplicateMappingKey { key: Some(dup), .. } => {
            key = join(&key, dup);
            (at_error, format!("`{dup}` is given twice in the same mapping; keep one"))
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            (at_error, "a key is given twice in the same mapping; keep one".to_owned())
        }
        Error::ExpectedMappingEndAfterEnumVariantValue { .. } => {
            if let Some((parent, _)) = key.rsplit_once('.') {
                key = parent.to_owned();
            }
            (at_error, "give only one choice here: this mapping takes a single key".to_owned())
        }
        Error::ExpectedStringKeyForExternallyTaggedEnum { .. }
        | Error::ExternallyTaggedEnumExpectedScalarOrMapping { .. } => {
            (at_value, format!("expected one choice written as `kind: value`{}", found(&key)))
        }
        Error::UnknownAnchor { .. } => {
            (at_error, "this alias (`*name`) refers to an anchor (`&name`) that is not defined before it".to_owned())
        }
        Error::Message { msg, .. } => (at_value, msg.clone()),
        Error::ExternalMessage { msg, .. } => (at_error, syntax(msg, at_error, text)),
        other => (at_error, plain(other)),
    };
    let key = if key.is_empty() { "(top level)".to_owned() } else { key };
    Problem::new(pos.unwrap_or(Pos { line: 1, column: 1 }), key, message)
}

/// The error under alias and snippet wrappers.
fn original(mut err: &Error) -> &Error {
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = err {
        err = error;
    }
    err
}

/// The error's own text without its location suffix.
fn plain(err: &Error) -> String {
    let mut message = err.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    message
}

/// The key path without the steps a user did not write: the inner `value` of spanned
/// values and the `?` of a key not read yet.
fn clean_key(raw: &str, tree: &Tree) -> String {
    let mut key = if raw == "." { String::new() } else { raw.to_owned() };
    loop {
        if key == "?" {
            key.clear();
        } else if let Some(parent) = key.strip_suffix(".?") {
            key = parent.to_owned();
        } else if let Some(parent) = key.strip_suffix(".value")
            && tree.get(&key).is_none()
        {
            key = parent.to_owned();
        } else {
            return key;
        }
    }
}

fn join(parent: &str, child: &str) -> String {
    if parent.is_empty() { child.to_owned() } else { format!("{parent}.{child}") }
}

/// Nothing but blank lines and comments.
fn is_blank(text: &str) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

/// What the parser expected, in words.
fn shape(expected: &str) -> String {
    match expected {
        "mapping start" => "a mapping (`key: value` lines)".to_owned(),
        "sequence start" => "a list".to_owned(),
        "string scalar" | "scalar" | "plain scalar" => "a single value".to_owned(),
        other => other.to_owned(),
    }
}

/// The values a scalar type accepts, in words.
fn scalar(ty: &str) -> String {
    let range = |min: i128, max: i128| format!("a whole number from {min} to {max}");
    match ty {
        "u8" => range(0, u8::MAX.into()),
        "u16" => range(0, u16::MAX.into()),
        "u32" | "u64" | "usize" => "a whole number (0 or more)".to_owned(),
        "i8" => range(i8::MIN.into(), i8::MAX.into()),
        "i16" => range(i16::MIN.into(), i16::MAX.into()),
        "i32" => range(i32::MIN.into(), i32::MAX.into()),
        "i64" | "isize" | "i128" | "u128" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "bool" => "true or false".to_owned(),
        "char" => "a single character".to_owned(),
        other => format!("a value of type {other}"),
    }
}

fn list(items: &[&str]) -> String {
    items.join(", ")
}

/// ` (did you mean `port`?)` when one of `candidates` is a likely typo of `word`.
fn did_you_mean(word: &str, candidates: &[&str]) -> String {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d > 0 && *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb { diagonal } else { 1 + diagonal.min(above).min(row[j]) };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A syntax error from the YAML parser, in words, with the unclosed `[` or `{` that
/// usually causes it.
fn syntax(msg: &str, at: Option<Pos>, text: &str) -> String {
    let base = if msg.contains("tabs disallowed") {
        "a tab is used for indentation: YAML indents with spaces only".to_owned()
    } else if msg.contains("mapping values are not allowed") {
        "a `key: value` where none can start: check the indentation of this line against the lines above".to_owned()
    } else if msg.contains("did not find expected key") {
        "this line does not line up with the keys above it: check its indentation".to_owned()
    } else {
        format!("YAML syntax: {msg}")
    };
    match at.and_then(|pos| unclosed_bracket(text, pos)) {
        Some((open, line, column)) => {
            let close = if open == '[' { ']' } else { '}' };
            format!("the `{open}` at line {line}, column {column} is not closed with `{close}` ({base})")
        }
        None => base,
    }
}

/// The innermost `[` or `{` still open at `pos`, when it was opened on an earlier line.
/// A rough scan (quotes and comments only), good enough for a hint.
fn unclosed_bracket(text: &str, pos: Pos) -> Option<(char, u64, u64)> {
    let mut stack: Vec<(char, u64, u64)> = Vec::new();
    let mut quote: Option<char> = None;
    let mut comment = false;
    let mut previous = '\n';
    let (mut line, mut column) = (1u64, 0u64);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 0;
            comment = false;
        } else {
            column += 1;
        }
        if (line, column) >= (pos.line, pos.column) {
            break;
        }
        let token_start = previous.is_whitespace() || "[{,:".contains(previous);
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if comment => {}
            None if c == '#' && previous.is_whitespace() => comment = true,
            None if (c == '"' || c == '\'') && token_start => quote = Some(c),
            None if (c == '[' || c == '{') && (token_start || !stack.is_empty()) => {
                stack.push((c, line, column));
            }
            None if (c == ']' || c == '}') && !stack.is_empty() => {
                stack.pop();
            }
            None => {}
        }
        previous = c;
    }
    stack.pop().filter(|(_, open_line, _)| *open_line < pos.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(did_you_mean("prot", &["name", "port"]), " (did you mean `port`?)");
        assert_eq!(did_you_mean("service", &["services", "shell"]), " (did you mean `services`?)");
        assert_eq!(did_you_mean("brew", &["apt", "npm", "pip"]), "");
    }

    #[test]
    fn finds_the_unclosed_bracket() {
        let text = "a: [b, c\nd: {e: f}\n";
        assert_eq!(unclosed_bracket(text, Pos { line: 2, column: 2 }), Some(('[', 1, 4)));
        let closed = "a: [b, c]\nd: e # [\n";
        assert_eq!(unclosed_bracket(closed, Pos { line: 3, column: 1 }), None);
    }
}
