//! The host manifest: one YAML file that declares the whole host.
//!
//! Every section is a list of named items, so every item has a stable id such as
//! `link:pi-settings` or `unit:agents-database` (see [`ItemId`]). The types here are the
//! complete model; behaviour lives in the step crates. Loading goes through
//! [`load`](crate::manifest::load), which parses (one door: [`parse_yaml`]), expands
//! paths, and runs the meaning checks of [`check`].

mod check;
mod expand;
mod load;
mod types;

pub use check::Problem;
pub use expand::{HostPath, RepoFile};
pub use load::{
    LoadError, LoadErrorKind, MANIFEST_ENV, MANIFEST_FILE_NAME, find_manifest, load, load_str,
    parse_yaml,
};
pub use types::*;

/// JSON Schema of the manifest, generated from the Rust types, for editors.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(Manifest);
    serde_json::to_value(&schema).unwrap_or(serde_json::Value::Null)
}
