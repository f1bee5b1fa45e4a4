//! What the workspace's tests share, so that each test file keeps only what is its
//! own: redactions that make outputs stable for snapshots ([`redact`]), git with a fixed
//! identity and repos to clone ([`git`]), lookups in a JSON report ([`json`]), listings
//! of a folder tree to prove nothing changed ([`tree`]), runs of a binary with a clean
//! environment ([`process`]), the manifest pieces the sandbox's layout fixes
//! ([`manifest`]), helpers for a sandboxed machine ([`sandbox`]), the workspace's
//! built binaries ([`workspace`]), the cached venv of ansible-core ([`python`]) and hosts
//! of a fleet reached over real SSH inside a sandbox ([`fleet`]).
//!
//! A dev-dependency only, never one of a product crate. It is test code: like the test
//! files, it spawns processes and writes files directly, hence the one `allow` below.

#![allow(clippy::disallowed_methods)]

pub mod fleet;
pub mod git;
pub mod json;
pub mod manifest;
pub mod process;
pub mod python;
pub mod redact;
pub mod sandbox;
pub mod tree;
pub mod workspace;

/// The error of a test helper: anything, with its message.
pub type Error = Box<dyn std::error::Error>;

/// What a test returns, so that it can use `?`.
pub type TestResult = Result<(), Error>;
