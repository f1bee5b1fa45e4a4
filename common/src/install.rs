//! Where pi-bootstrap's own programs live on a host, and the units it makes for itself.
//!
//! The step binaries are installed into `~/.local/lib/pi-bootstrap/bin` (by `cargo
//! xtask install`, which `cargo xtask restore` runs first), a place a `cargo clean`
//! does not touch, so the backup timer's unit can run them from there. The restore kit
//! (`cargo xtask kit`: release binaries, schema and runbook in one tarball) lives beside
//! them, in `~/.local/lib/pi-bootstrap/kit`, and travels with every backup.

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

/// The restore kit's folder, relative to HOME: `cargo xtask kit` installs the current
/// kit there, `bootstrap-data backup` puts it in every snapshot, and the runbook's
/// bare-machine path restores it from the repository by this path.
pub const KIT_DIR: &str = ".local/lib/pi-bootstrap/kit";

/// The kit's tarball, in [`KIT_DIR`]: its contents unpack into `~/.local/lib/pi-bootstrap`
/// (`bin/` beside it).
pub const KIT_FILE: &str = "pi-bootstrap-kit.tar.gz";

/// The kit's checksum file, in [`KIT_DIR`] (`sha256sum -c` reads it).
pub const KIT_SUM_FILE: &str = "pi-bootstrap-kit.tar.gz.sha256";

/// The folder of the installed restore kit.
pub fn kit_dir(home: &Path) -> PathBuf {
    home.join(KIT_DIR)
}
