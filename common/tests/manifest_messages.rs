//! Messages stay readable whatever the input: huge values, generated here rather than
//! committed as fixtures, are shown cut with their length, and no line of a message
//! grows with them. A type error in valid YAML is never called a YAML syntax error.

#![allow(clippy::disallowed_methods)]

use std::path::Path;

use common::manifest::{Fault, LoadError, LoadErrorKind, load_str};

/// The longest line a message may have, whatever the input.
const MAX_LINE: usize = 500;

const BASE: &str = "version: 1\nrepo:\n  path: ~/pi-config\n  url: https://example.org/pi-config.git\n";

fn refused(text: &str) -> LoadError {
    let home = tempfile::TempDir::new().unwrap_or_else(|e| panic!("no temporary HOME: {e}"));
    match load_str(Path::new("big.yaml"), text, home.path(), &|_| None) {
        Ok(_) => panic!("accepted:\n{}", &text[..text.len().min(500)]),
        Err(err) => err,
    }
}

/// Refused as YAML of the wrong shape, with every line short and the length said.
fn short_with_length(what: &str, text: &str, length: usize) {
    let err = refused(text);
    let message = err.to_string();
    for line in message.lines() {
        assert!(line.chars().count() <= MAX_LINE, "{what}: a line of {} characters:\n{line}", line.chars().count());
    }
    assert!(message.contains(&format!("({length} bytes)")), "{what}: the length is not said:\n{message}");
    match &err.kind {
        LoadErrorKind::Parse(e) => assert_eq!(e.fault, Fault::Shape, "{what}: {message}"),
        other => panic!("{what}: not a parse error: {other:?}"),
    }
    assert!(message.contains("is valid YAML but does not fit"), "{what}:\n{message}");
    assert!(!message.contains("not valid YAML"), "{what}:\n{message}");
}

#[test]
fn an_unknown_key_with_a_huge_name_is_cut() {
    // A key that long is YAML only as an explicit key (`? KEY`).
    let name = "k".repeat(100_000);
    short_with_length("top level", &format!("{BASE}? {name}\n: 1\n"), 100_000);
    let nested = format!("{BASE}dirs:\n  - name: work\n    path: ~/work\n    ? {name}\n    : 1\n");
    short_with_length("nested", &nested, 100_000);
}

#[test]
fn a_huge_enum_variant_is_cut() {
    let variant = "v".repeat(100_000);
    let class = format!(
        "{BASE}services:\n  - name: m\n    purpose: p\n    source: s\n    unit: u.service\n    class: {variant}\n"
    );
    short_with_length("unit variant", &class, 100_000);
    let install =
        format!("{BASE}prereqs:\n  - name: jq\n    check: [jq]\n    install:\n      ? {variant}\n      : jq\n");
    short_with_length("choice", &install, 100_000);
}

#[test]
fn a_huge_string_where_a_list_is_expected_is_cut() {
    let value = "s".repeat(300_000);
    let plain = format!("{BASE}prereqs:\n  - name: jq\n    check: {value}\n    install: {{apt: jq}}\n");
    short_with_length("plain", &plain, 300_000);
    let quoted = format!("{BASE}prereqs:\n  - name: jq\n    check: \"{value}\"\n    install: {{apt: jq}}\n");
    short_with_length("quoted", &quoted, 300_000);
}

#[test]
fn huge_values_of_the_wrong_kind_are_cut() {
    let value = "x".repeat(300_000);
    // A number expected.
    short_with_length("version", &format!("version: {value}\nrepo: {{path: ~/p, url: u}}\n"), 300_000);
    // A mode: serde's own "invalid value" message.
    let mode = format!("{BASE}dirs:\n  - name: work\n    path: ~/work\n    mode: \"{value}\"\n");
    short_with_length("mode", &mode, 300_000);
    // A duration: the manifest type's own message quotes what it found.
    let duration = format!("{BASE}backup:\n  repository: /srv/restic\n  password_file: ~/pw\n  max_age: \"{value}\"\n");
    short_with_length("duration", &duration, 300_000);
    // A key of `vars` in the key path.
    let key = "K".repeat(100_000);
    short_with_length("key path", &format!("{BASE}vars:\n  ? {key}\n  : [x]\n"), 100_000);
}

#[test]
fn a_huge_duplicate_key_is_cut() {
    let key = "K".repeat(100_000);
    let err = refused(&format!("{BASE}vars:\n  ? {key}\n  : a\n  ? {key}\n  : b\n"));
    let message = err.to_string();
    assert!(message.lines().all(|line| line.chars().count() <= MAX_LINE), "{}", &message[..message.len().min(2000)]);
    assert!(message.contains("(100000 bytes) is given twice"), "{message}");
}

#[test]
fn a_huge_value_left_open_at_the_end_is_said_short() {
    let value = "q".repeat(300_000);
    let err = refused(&format!("{BASE}host: \"{value}\n"));
    let message = err.to_string();
    assert!(message.lines().all(|line| line.chars().count() <= MAX_LINE), "{}", &message[..message.len().min(2000)]);
    assert!(
        message.contains("ends in the middle of the quoted value opened with `\"` at line 5, column 7"),
        "{message}"
    );
    assert!(matches!(&err.kind, LoadErrorKind::Parse(e) if e.fault == Fault::Syntax), "{message}");
}

/// A type error that the parser meets before a syntax error further on is not the
/// problem: the text is not YAML.
#[test]
fn a_syntax_error_after_a_type_error_is_the_problem() {
    let err = refused(&format!("{BASE}prereqs: [jq, bun\n"));
    let message = err.to_string();
    assert!(matches!(&err.kind, LoadErrorKind::Parse(e) if e.fault == Fault::Syntax), "{message}");
    assert!(
        message.contains("the file ends in the middle of the list opened with `[` at line 5, column 10"),
        "{message}"
    );
    let unknown_then_broken = format!("servce: 1\n{BASE}vars: {{a: b\n");
    let err = refused(&unknown_then_broken);
    assert!(matches!(&err.kind, LoadErrorKind::Parse(e) if e.fault == Fault::Syntax), "{err}");
}

/// Every type error in valid YAML says what was expected and what was found.
#[test]
fn type_errors_say_what_was_expected_and_found() {
    let service = |port: &str| {
        format!("{BASE}services:\n  - name: m\n    purpose: p\n    source: s\n    unit: u.service\n    port: {port}\n")
    };
    for (what, text, says) in [
        ("list for a string", format!("{BASE}host: [a, b]\n"), "host: expected a single value, found a list"),
        ("mapping for a string", format!("{BASE}host: {{a: b}}\n"), "host: expected a single value, found a mapping"),
        ("nothing for a string", format!("{BASE}vars:\n  A:\n"), "vars.A: expected a string, found nothing"),
        (
            "list for a mapping",
            format!("{BASE}vars: [a, b]\n"),
            "expected a mapping (`key: value` lines), found a list",
        ),
        ("number for a list", format!("{BASE}services: 3\n"), "services: expected a list, found 3"),
        ("word for a port", service("eighty"), "expected a whole number from 0 to 65535, found \"eighty\""),
        ("list for a port", service("[80]"), "port: expected a single value, found a list"),
    ] {
        let err = refused(&text);
        let message = err.to_string();
        assert!(message.contains(says), "{what}: {message}");
        assert!(matches!(&err.kind, LoadErrorKind::Parse(e) if e.fault == Fault::Shape), "{what}: {message}");
    }
}

/// A key longer than YAML reads without `?` is a syntax error, said as such.
#[test]
fn a_key_too_long_for_yaml_says_so() {
    let key = "k".repeat(2_000);
    for text in [format!("{BASE}{key}: 1\n"), format!("{BASE}vars:\n  {key}: a\n")] {
        let err = refused(&text);
        let message = err.to_string();
        assert!(message.lines().all(|line| line.chars().count() <= MAX_LINE), "{message}");
        assert!(message.contains("a key longer than 1024 characters"), "{message}");
        assert!(matches!(&err.kind, LoadErrorKind::Parse(e) if e.fault == Fault::Syntax), "{message}");
    }
}
