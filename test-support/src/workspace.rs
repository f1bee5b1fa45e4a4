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

/// `cargo xtask kit --no-install --out OUT` with `xtask` (the built binary, which only
/// xtask's own tests know: `env!("CARGO_BIN_EXE_xtask")`) and HOME at `home`: the
/// restore kit of the current build, as a user makes it; fails with its output.
pub fn build_kit(xtask: &Path, out: &Path, home: &Path) -> crate::TestResult {
    let built = Command::new(xtask)
        .args(["kit", "--no-install", "--out"])
        .arg(out)
        .current_dir(root())
        .env("HOME", home)
        .env_remove("PI_BOOTSTRAP_MANIFEST")
        .output()?;
    if !built.status.success() {
        return Err(format!(
            "cargo xtask kit failed:\n{}{}",
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        )
        .into());
    }
    Ok(())
}

/// The file name of the kit's tarball in the folder [`build_kit`] wrote.
pub fn kit_file_name() -> String {
    format!("pi-bootstrap-kit-{}-x86_64-unknown-linux-gnu.tar.gz", env!("CARGO_PKG_VERSION"))
}
