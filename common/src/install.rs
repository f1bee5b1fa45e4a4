//! Where pi-bootstrap's own programs live on a host, and the units it makes for itself.
//!
//! The step binaries are installed into `~/.local/lib/pi-bootstrap/bin` (by `cargo
//! xtask install`, which `cargo xtask restore` runs first), a place a `cargo clean`
//! does not touch, so the backup timer's unit can run them from there.

use std::path::{Path, PathBuf};

/// The installed binaries' folder, relative to HOME.
pub const BIN_DIR: &str = ".local/lib/pi-bootstrap/bin";

/// The folder of the installed binaries.
pub fn bin_dir(home: &Path) -> PathBuf {
    home.join(BIN_DIR)
}

/// The name (without `.service` / `.timer`) of the user units that run the scheduled
/// backup.
pub const BACKUP_UNIT: &str = "pi-bootstrap-backup";
