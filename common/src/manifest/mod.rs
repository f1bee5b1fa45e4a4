//! The host manifest: one YAML file that declares the whole host.
//!
//! Every section is a list of named items, so every item has a stable id such as
//! `link:pi-settings` or `unit:agents-database` (see [`ItemId`]). The types here are the
//! complete model; behaviour lives in the step crates. Loading goes through
//! [`load`](crate::manifest::load), which parses (one door: [`parse_yaml`]), expands
//! paths, and runs the meaning checks of [`check`].

mod check;
mod expand;
mod explain;
mod load;
mod shown;
mod tree;
mod types;

pub use check::{Problem, repo_is_complete};
pub use expand::{HostPath, RepoFile};
pub use explain::{Fault, ParseError};
pub use load::{LoadError, LoadErrorKind, MANIFEST_ENV, MANIFEST_FILE_NAME, find_manifest, load, load_str, parse_yaml};
pub use types::*;

/// JSON Schema of the manifest, generated from the Rust types, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_value(&schema).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::json_schema;

    #[test]
    fn the_schema_has_every_section_and_refuses_unknown_keys() {
        let schema = json_schema();
        let properties = schema
            .get("properties")
            .and_then(|p| p.as_object())
            .map(|p| p.keys().map(String::as_str).collect::<Vec<_>>())
            .unwrap_or_default();
        for section in [
            "version", "host", "vars", "prereqs", "repo", "links", "dirs", "services", "nginx", "shell", "env",
            "paths", "backup", "validate",
        ] {
            assert!(properties.contains(&section), "no `{section}` in the schema's properties: {properties:?}");
        }
        assert_eq!(
            schema.get("additionalProperties"),
            Some(&serde_json::Value::Bool(false)),
            "the top level must refuse unknown keys"
        );
        let required = schema.get("required").and_then(|r| r.as_array());
        assert!(
            required.is_some_and(|r| r.iter().any(|v| v == "repo") && r.iter().any(|v| v == "version")),
            "version and repo must be required: {required:?}"
        );
        // Nested sections refuse unknown keys too.
        let definitions = schema.get("$defs").and_then(|d| d.as_object());
        for name in ["Service", "Repo", "Link", "Backup", "Check"] {
            let def = definitions.and_then(|d| d.get(name));
            assert_eq!(
                def.and_then(|d| d.get("additionalProperties")),
                Some(&serde_json::Value::Bool(false)),
                "{name} must refuse unknown keys"
            );
        }
    }
}
