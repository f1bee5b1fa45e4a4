//! serde-saphyr's errors in words for the person editing the manifest: where the
//! problem is (the value itself where possible), under which key, what was expected and
//! what was found, and whether the text is not YAML at all or YAML that does not fit the
//! manifest. Every value a message echoes is cut to a readable length ([`shown`]).

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Error, Spanned};

use super::check::Problem;
use super::load::parse_yaml;
use super::shown::{SHOWN_WIDTH, shown};
use super::tree::Tree;
use super::types::Pos;

/// What kind of mistake kept a manifest from being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The text is not valid YAML: an unclosed quote or bracket, a bad indentation, a
    /// tab, a key given twice.
    Syntax,
    /// The text is valid YAML but does not fit the manifest's format: an unknown key, a
    /// value of the wrong type, a missing key, an empty file.
    Shape,
}

/// Why YAML text could not be read into the type asked for: the problem, and whether the
/// text is YAML at all.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub problem: Problem,
    pub fault: Fault,
}

/// The longest message, in characters, whatever the input: anything longer is cut.
const MAX_MESSAGE: usize = 400;

/// The problem for a failed parse; `raw_key` is the key path `serde_path_to_error`
/// reached.
pub(crate) fn problem(err: &Error, raw_key: &str, text: &str) -> ParseError {
    let err = original(err);
    let fault = fault(err, text);
    // The text is read again (its tree, its syntax, its long values) only by the
    // outermost explanation: one made while those are read is thrown away, except a
    // syntax error's, which needs none of them.
    let busy = Busy::start();
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
        | Error::Message { .. }
            if busy.is_some() =>
        {
            Tree::parse(text)
        }
        _ => Tree::default(),
    };
    // The parser reads as it goes: a value of the wrong type can come before a syntax
    // error further on. The text is valid YAML when its tree was read, or when it reads
    // as YAML at all; else the syntax error is the problem.
    if fault == Fault::Shape
        && busy.is_some()
        && tree.get("").is_none()
        && !is_blank(text)
        && let Err(syntax) = parse_yaml::<IgnoredAny>(text)
        && syntax.fault == Fault::Syntax
    {
        return syntax;
    }
    let mut key = match err {
        // The path ends with the unknown key itself, which may well be called `value`.
        Error::SerdeUnknownField { field, .. } if raw_key.ends_with(field.as_str()) => raw_key.to_owned(),
        _ => clean_key(raw_key, &tree),
    };
    let at_error = err.location().map(|l| Pos { line: l.line(), column: l.column() }).filter(|pos| pos.line > 0);
    // Type and value errors point at the value itself; the parser sometimes points at
    // its key, or past the end of a mapping.
    let at_value = tree.pos(&key).or(at_error);
    // What is at a key path, for "found ...": the tree keeps the beginning of a long
    // string only, so its whole value is read again, to show it with its length.
    let long = OnceCell::new();
    let found_at = |key: &str| {
        let spot = tree.get(key)?;
        if spot.found.starts_with('"') && spot.found.ends_with("\"...") {
            let long = long.get_or_init(|| long_strings(text));
            if let Some(value) = long.get(&(spot.pos.line, spot.pos.column)) {
                return Some(shown(value));
            }
        }
        Some(spot.found.clone())
    };
    let found = |key: &str| found_at(key).map(|found| format!(", found {found}")).unwrap_or_default();
    // `install: apt` where `install: {apt: NAME}` is meant: the choice has no value.
    let needs_value = key
        .rsplit_once('.')
        .filter(|(parent, choice)| {
            matches!(err, Error::Unexpected { .. } | Error::NullIntoString { .. } | Error::InvalidScalar { .. })
                && tree.get(&key).is_none()
                && tree.get(parent).is_some_and(|spot| spot.found == format!("{choice:?}"))
        })
        .map(|(parent, choice)| (parent.to_owned(), choice.to_owned()));
    let (pos, message) = if let Some((parent, choice)) = needs_value {
        key = parent;
        (tree.pos(&key).or(at_error), format!("`{choice}` needs a value: write it as `{choice}: VALUE`"))
    } else {
        match err {
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
            Error::NullIntoString { .. } => (at_value, "expected a string, found nothing".to_owned()),
            Error::SerdeInvalidType { unexpected, expected, .. }
            | Error::SerdeInvalidValue { unexpected, expected, .. } => {
                let found = found_at(&key).unwrap_or_else(|| unexpected.clone());
                (at_value, format!("expected {expected}, found {found}"))
            }
            Error::SerdeInvalidLength { len, expected, .. } => {
                let found = found_at(&key).unwrap_or_else(|| format!("{len} items"));
                (at_value, format!("expected {expected}, found {found}"))
            }
            Error::SerdeUnknownVariant { variant, expected, .. } => (
                at_error,
                format!("{} is not one of {}{}", code(variant), list(expected), did_you_mean(variant, expected)),
            ),
            Error::SerdeUnknownField { field, expected, .. } => {
                let allowed = match expected.as_slice() {
                    [] => "no keys are allowed here".to_owned(),
                    [only] => format!("the only key here is `{only}`"),
                    many => format!("the keys here are {}", list(many)),
                };
                (at_error, format!("unknown key {}{}; {allowed}", code(field), did_you_mean(field, expected)))
            }
            Error::SerdeMissingField { field, .. } => (at_value, format!("the required key `{field}` is missing")),
            Error::DuplicateMappingKey { key: Some(dup), .. } => {
                key = join(&key, dup);
                (at_error, format!("{} is given twice in the same mapping; keep one", code(dup)))
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
            Error::UnknownAnchor { .. } => (
                at_error,
                "this alias (`*name`) refers to an anchor (`&name`) that is not defined before it".to_owned(),
            ),
            Error::Message { msg, .. } => (at_value, msg.clone()),
            Error::ExternalMessage { msg, .. } => (at_error, syntax(msg, at_error, text)),
            other => (at_error, plain(other)),
        }
    };
    let key = if key.is_empty() { "(top level)".to_owned() } else { short_key(&key) };
    let problem = Problem::new(pos.unwrap_or(Pos { line: 1, column: 1 }), key, readable(&message));
    ParseError { problem, fault }
}

/// Whether the error says the text is not YAML, or YAML that does not fit.
fn fault(err: &Error, text: &str) -> Fault {
    match err {
        // An empty file is an empty YAML document.
        _ if is_blank(text) => Fault::Shape,
        Error::ExternalMessage { msg, .. } if msg.contains("recursion limit") => Fault::Shape,
        Error::ExternalMessage { .. }
        | Error::Eof { .. }
        | Error::InvalidUtf8Input
        | Error::UnknownAnchor { .. }
        // YAML wants the keys of a mapping unique.
        | Error::DuplicateMappingKey { .. }
        | Error::UnexpectedSequenceEnd { .. }
        | Error::UnexpectedMappingEnd { .. }
        | Error::ContainerEndMismatch { .. }
        | Error::UnexpectedContainerEndWhileSkippingNode { .. }
        | Error::UnexpectedContainerEndWhileReadingKeyNode { .. }
        | Error::FoldedBlockScalarMustIndentContent { .. } => Fault::Syntax,
        _ => Fault::Shape,
    }
}

/// Only one explanation on this thread reads the text again; `None` while one does.
struct Busy;

thread_local! {
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

impl Busy {
    fn start() -> Option<Busy> {
        (!BUSY.with(|busy| busy.replace(true))).then_some(Busy)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        BUSY.with(|busy| busy.set(false));
    }
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

/// A name the user wrote (a key, a choice), for a message: `` `name` `` when it is short
/// and plain, else quoted and cut as [`shown`] shows it.
fn code(name: &str) -> String {
    if name.chars().count() <= SHOWN_WIDTH && !name.contains('`') && !name.chars().any(char::is_control) {
        format!("`{name}`")
    } else {
        shown(name)
    }
}

/// The key path with every part the user wrote that is long or holds control
/// characters cut as [`shown`] shows it, so the `file:line:col: key:` stays one short line.
fn short_key(key: &str) -> String {
    if key.len() <= SHOWN_WIDTH && !key.chars().any(char::is_control) {
        return key.to_owned();
    }
    let parts: Vec<String> = key
        .split('.')
        .map(|part| {
            let plain = part.chars().count() <= SHOWN_WIDTH && !part.chars().any(char::is_control);
            if plain { part.to_owned() } else { shown(part) }
        })
        .collect();
    parts.join(".")
}

/// The message readable whatever the input: every quoted value in it (serde's own
/// messages and the manifest types' quote the value they found, whole) cut as [`shown`]
/// cuts it, and the whole at most [`MAX_MESSAGE`] characters.
fn readable(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = closing_quote(after) else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let inner = &after[..close];
        // What `shown` gives (at most SHOWN_WIDTH characters and `…`) is kept.
        if inner.chars().count() <= SHOWN_WIDTH + 1 {
            out.push_str(&rest[open..open + close + 2]);
        } else if let Some(value) = unescape(inner) {
            out.push_str(&shown(&value));
        } else {
            let cut: String = inner.chars().take(SHOWN_WIDTH).collect();
            out.push_str(&format!("\"{cut}…\""));
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    if out.chars().count() > MAX_MESSAGE {
        out = out.chars().take(MAX_MESSAGE).chain(['…']).collect();
    }
    out
}

/// Where the quoted text that starts `text` (after its opening `"`) ends: the byte
/// offset of the closing `"`, escapes skipped.
fn closing_quote(text: &str) -> Option<usize> {
    let mut escaped = false;
    for (at, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(at),
            _ => {}
        }
    }
    None
}

/// The text a Rust `{:?}` quoting came from; `None` when it is not one.
fn unescape(quoted: &str) -> Option<String> {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '0' => '\0',
            c @ ('\\' | '"' | '\'') => c,
            'u' => {
                if chars.next()? != '{' {
                    return None;
                }
                let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// Strings longer than the tree keeps whole, by where they start: the tree shows their
/// first characters only, a message their length too. Read only when a message shows
/// one (the third read of the text, after the manifest and its tree).
fn long_strings(text: &str) -> HashMap<(u64, u64), String> {
    WALK_DEPTH.with(|depth| depth.set(0));
    LONG.with(|long| long.borrow_mut().clear());
    if let Ok(root) = parse_yaml::<Spanned<Walk>>(text) {
        keep(root);
    }
    LONG.with(|long| std::mem::take(&mut *long.borrow_mut()))
}

/// The tree's longest string kept whole (`tree.rs`): longer ones are worth reading again.
const TREE_SHOWN: usize = 40;

/// As deep as the tree reads (`tree.rs`), which read this text already.
const MAX_WALK_DEPTH: usize = 24;

thread_local! {
    static LONG: RefCell<HashMap<(u64, u64), String>> = RefCell::new(HashMap::new());
    static WALK_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// One node of the text on the walk for long strings: the string, when it is one and
/// long.
struct Walk(Option<String>);

fn keep(node: Spanned<Walk>) {
    let pos = Pos::of(&node);
    if let Some(value) = node.value.0 {
        LONG.with(|long| long.borrow_mut().insert((pos.line, pos.column), value));
    }
}

impl<'de> Deserialize<'de> for Walk {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Walk, D::Error> {
        let depth = WALK_DEPTH.with(|depth| {
            depth.set(depth.get() + 1);
            depth.get()
        });
        let node = if depth > MAX_WALK_DEPTH {
            Err(de::Error::custom("nested too deep"))
        } else {
            d.deserialize_any(WalkVisitor)
        };
        WALK_DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
        node
    }
}

struct WalkVisitor;

impl<'de> Visitor<'de> for WalkVisitor {
    type Value = Walk;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Walk, E> {
        Ok(Walk((v.chars().count() > TREE_SHOWN).then(|| v.to_owned())))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Walk, E> {
        Ok(Walk(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Walk, D::Error> {
        d.deserialize_any(WalkVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Walk, A::Error> {
        while let Some(item) = seq.next_element::<Spanned<Walk>>()? {
            keep(item);
        }
        Ok(Walk(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Walk, A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            keep(map.next_value::<Spanned<Walk>>()?);
        }
        Ok(Walk(None))
    }
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
        // Said for any scalar, a number as well as a string.
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
    let length = word.chars().count();
    candidates
        .iter()
        // A word far longer or shorter than a candidate is no typo of it (and a huge
        // word is not compared at all).
        .filter(|c| length.abs_diff(c.chars().count()) <= 2.max(c.len() / 4))
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
    // The parser says these at the end of the text, at the quote or bracket left open.
    if let Some(pos) = at {
        let (line, column) = (pos.line, pos.column);
        if msg == "unclosed quote" {
            let quote = char_at(text, pos).filter(|c| *c == '\'').unwrap_or('"');
            return format!(
                "the file ends in the middle of the quoted value opened with `{quote}` at line {line}, column {column}: close it with `{quote}`"
            );
        }
        if let Some(open) = msg.strip_prefix("unclosed bracket '").and_then(|rest| rest.chars().next()) {
            let (what, close) = if open == '{' { ("mapping", '}') } else { ("list", ']') };
            let after_key = if text.trim_end().ends_with(':') { ", right after a key with no value" } else { "" };
            return format!(
                "the file ends in the middle of the {what} opened with `{open}` at line {line}, column {column}{after_key}: close it with `{close}`"
            );
        }
    }
    let base = if at.is_some_and(|pos| long_implicit_key(text, pos)) {
        format!(
            "a key longer than {MAX_IMPLICIT_KEY} characters: YAML reads one that long only as an explicit key, `? KEY` on a line of its own and `: VALUE` on the next"
        )
    } else if msg.contains("tabs disallowed") {
        "a tab is used for indentation: YAML indents with spaces only".to_owned()
    } else if msg.contains("mapping values are not allowed") {
        "a `key: value` where none can start: check the indentation of this line against the lines above".to_owned()
    } else if msg.contains("did not find expected key") {
        "this line does not line up with the keys above it: check its indentation".to_owned()
    } else if msg.contains("invalid trailing content after") {
        "text after the closing quote of a quoted value: put all of the value inside the quotes, or close a quote left open above".to_owned()
    } else if msg.contains("recursion limit") {
        "the values are nested too deeply to be read".to_owned()
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

/// The longest key YAML reads without `?` in front of it.
const MAX_IMPLICIT_KEY: usize = 1024;

/// Whether the line at `pos` starts with a key longer than YAML allows without `?`: its
/// first `: ` (or `:` at its end) comes that far in.
fn long_implicit_key(text: &str, pos: Pos) -> bool {
    let Some(line) = usize::try_from(pos.line).ok().and_then(|n| text.lines().nth(n.checked_sub(1)?)) else {
        return false;
    };
    let colon = line.find(": ").or_else(|| line.strip_suffix(':').map(str::len));
    colon.is_some_and(|at| line[..at].chars().count() > MAX_IMPLICIT_KEY)
}

/// The character at a position of the text (1-based line and column, in characters).
fn char_at(text: &str, pos: Pos) -> Option<char> {
    let line = text.lines().nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    line.chars().nth(usize::try_from(pos.column).ok()?.checked_sub(1)?)
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
    fn cuts_long_quoted_values_in_messages() {
        let long = "x".repeat(1000);
        let message = format!("expected a duration, found {long:?}: it is too long");
        assert_eq!(
            readable(&message),
            format!("expected a duration, found \"{}…\" (1000 bytes): it is too long", "x".repeat(60))
        );
        // Short values, and what `shown` gave already, are kept as they are.
        let short = "expected an octal mode in quotes, such as \"0700\", found \"0999\"";
        assert_eq!(readable(short), short);
        let cut = format!("found {}", shown(&long));
        assert_eq!(readable(&cut), cut);
        // Escapes count as what they stand for.
        let escaped = format!("found {:?}", "\n".repeat(500));
        assert!(readable(&escaped).ends_with("(500 bytes)"), "{}", readable(&escaped));
        // Whatever the message, it stays short.
        assert!(readable(&"`".repeat(10_000)).chars().count() <= MAX_MESSAGE + 1);
    }

    #[test]
    fn cuts_long_parts_of_key_paths() {
        assert_eq!(short_key("services[1].port"), "services[1].port");
        let long = "k".repeat(100);
        assert_eq!(short_key(&format!("vars.{long}")), format!("vars.\"{}…\" (100 bytes)", "k".repeat(60)));
        assert_eq!(short_key("vars.a\nb"), "vars.\"a\\nb\"");
    }

    #[test]
    fn finds_the_unclosed_bracket() {
        let text = "a: [b, c\nd: {e: f}\n";
        assert_eq!(unclosed_bracket(text, Pos { line: 2, column: 2 }), Some(('[', 1, 4)));
        let closed = "a: [b, c]\nd: e # [\n";
        assert_eq!(unclosed_bracket(closed, Pos { line: 3, column: 1 }), None);
    }
}
