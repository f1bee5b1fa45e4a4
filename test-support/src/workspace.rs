//! The workspace the tests run in: its root, and its binaries built once per test
//! process for the tests that run several of them (or the chain with its steps beside
//! it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace's root folder.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The folder of the built binaries of every crate but xtask (`pi-bootstrap-restore`
/// and the steps beside it); builds them the first time it is asked.
pub fn built_binaries() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--workspace", "--bins", "--exclude", "xtask"])
            .current_dir(root())
            .status();
        assert!(status.is_ok_and(|s| s.success()), "cargo build --bins failed");
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from).join("debug")
    })
}
