//! Where every node of a manifest is, by key path, and what it holds: read again from
//! the text as plain YAML (no manifest types), through the one YAML door
//! ([`parse_yaml`]), so messages can point at the exact value and say what was found
//! there. serde-saphyr has no value tree to deserialize the manifest from, so this is
//! a second parse, made only when a message needs a position.

use std::cell::{Cell, OnceCell};
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::load::parse_yaml;
use super::types::Pos;

/// One node: where it starts and a short description of it for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spot {
    pub pos: Pos,
    /// What the node is, for "found ...": `a list`, `a mapping`, `"text"`, `70000`.
    pub found: String,
}

/// Every node of a document by key path: `` (the document), `repo`, `services[1].port`.
/// Empty when the text is not well-formed YAML.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    spots: HashMap<String, Spot>,
}

impl Tree {
    pub fn parse(text: &str) -> Tree {
        let mut tree = Tree::default();
        // `parse_yaml` explains its errors with a tree: when reading the tree itself
        // fails, that explanation gets an empty one instead of reading it again.
        let Some(_reading) = Reading::start() else { return tree };
        DEPTH.with(|depth| depth.set(0));
        if let Ok(root) = parse_yaml::<Spanned<Node>>(text) {
            tree.add(String::new(), &root);
        }
        tree
    }

    /// The node at a key path as `serde_path_to_error` writes it.
    pub fn get(&self, key: &str) -> Option<&Spot> {
        self.spots.get(key)
    }

    /// The position of the node at `key`, if there is one.
    pub fn pos(&self, key: &str) -> Option<Pos> {
        self.get(key).map(|spot| spot.pos).filter(|pos| pos.line > 0)
    }

    fn add(&mut self, key: String, node: &Spanned<Node>) {
        let pos = Pos::of(node);
        let found = match &node.value {
            Node::Map(entries) if entries.is_empty() => "an empty mapping".to_owned(),
            Node::Map(_) => "a mapping".to_owned(),
            Node::Seq(items) if items.is_empty() => "an empty list".to_owned(),
            Node::Seq(_) => "a list".to_owned(),
            Node::Scalar(text) => text.clone(),
        };
        match &node.value {
            Node::Map(entries) => {
                for (name, child) in entries {
                    let child_key = if key.is_empty() { name.clone() } else { format!("{key}.{name}") };
                    self.add(child_key, child);
                }
            }
            Node::Seq(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.add(format!("{key}[{i}]"), child);
                }
            }
            Node::Scalar(_) => {}
        }
        self.spots.entry(key).or_insert(Spot { pos, found });
    }
}

/// A [`Tree`] read from the text only when a position is first asked for: loading a
/// manifest without problems does not read it twice.
pub(crate) struct LazyTree<'a> {
    text: &'a str,
    tree: OnceCell<Tree>,
}

impl<'a> LazyTree<'a> {
    pub fn new(text: &'a str) -> LazyTree<'a> {
        LazyTree { text, tree: OnceCell::new() }
    }

    pub fn get(&self) -> &Tree {
        self.tree.get_or_init(|| Tree::parse(self.text))
    }

    pub fn pos(&self, key: &str) -> Option<Pos> {
        self.get().pos(key)
    }
}

/// A YAML node with nothing but its shape and, for scalars, a short rendering.
enum Node {
    Map(Vec<(String, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar(String),
}

/// Longest scalar quoted in a message.
const MAX_SHOWN: usize = 40;

fn quoted(text: &str) -> String {
    if text.chars().count() > MAX_SHOWN {
        let cut: String = text.chars().take(MAX_SHOWN).collect();
        format!("{cut:?}...")
    } else {
        format!("{text:?}")
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(format!("{v:?}")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(quoted(v)))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar("binary data".to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar("nothing".to_owned()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar("nothing".to_owned()))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(Key(name)) = map.next_key::<Key>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((name, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Deeper than any manifest; a deeper text is not worth a tree (and could exhaust the
/// stack, the parser's own limit being much higher).
const MAX_DEPTH: usize = 24;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static READING: Cell<bool> = const { Cell::new(false) };
}

/// A tree being read on this thread; `None` when one already is.
struct Reading;

impl Reading {
    fn start() -> Option<Reading> {
        (!READING.with(|reading| reading.replace(true))).then_some(Reading)
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READING.with(|reading| reading.set(false));
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let depth = DEPTH.with(|depth| {
            depth.set(depth.get() + 1);
            depth.get()
        });
        let node =
            if depth > MAX_DEPTH { Err(de::Error::custom("nested too deep")) } else { d.deserialize_any(NodeVisitor) };
        DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
        node
    }
}

/// A mapping key as `serde_path_to_error` would name it; `?` for keys that are not
/// scalars.
struct Key(String);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Key, E> {
        Ok(Key(v.to_string()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key(v.to_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Key, E> {
        Ok(Key("?".to_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Key, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Key("?".to_owned()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Key, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Key("?".to_owned()))
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key, D::Error> {
        d.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nodes_by_key_path() {
        let tree = Tree::parse(
            "# comment\nversion: 1\nservices:\n  - name: a\n    port: [1, 2]\n  - {name: b, mode: '0700'}\n",
        );
        let spot = |key: &str| tree.get(key).map(|s| (s.pos.line, s.pos.column, s.found.clone()));
        assert_eq!(spot(""), Some((2, 1, "a mapping".to_owned())));
        assert_eq!(spot("version"), Some((2, 10, "1".to_owned())));
        assert_eq!(spot("services[0]"), Some((4, 5, "a mapping".to_owned())));
        assert_eq!(spot("services[0].port"), Some((5, 11, "a list".to_owned())));
        assert_eq!(spot("services[0].port[1]"), Some((5, 15, "2".to_owned())));
        assert_eq!(spot("services[1].mode"), Some((6, 21, "\"0700\"".to_owned())));
        assert_eq!(spot("services[2]"), None);
    }

    #[test]
    fn is_empty_for_broken_yaml() {
        assert_eq!(Tree::parse("a: [1, 2\nb: c\n").get(""), None);
    }

    #[test]
    fn is_empty_for_deep_nesting_and_recovers() {
        let deep = format!("a: {}{}\n", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(Tree::parse(&deep).get(""), None);
        assert!(Tree::parse("a: [[1]]\n").get("a[0][0]").is_some());
    }
}
