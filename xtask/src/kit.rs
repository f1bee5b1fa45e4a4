//! `cargo xtask kit`: the restore kit, what a bare machine needs to restore the host
//! without a Rust toolchain. A release build (target `x86_64-unknown-linux-gnu`) of
//! every step binary, the audit and `pi-bootstrap-restore` (the ordered restore), the
//! manifest schema and the host's rendered runbook, in one versioned tarball
//! (`target/kit/pi-bootstrap-kit-VERSION-TARGET.tar.gz`) with its checksum file, then
//! installed into `~/.local/lib/pi-bootstrap/kit/` (`common::install::KIT_DIR`), where
//! `bootstrap-data backup` takes it into every snapshot.
//!
//! The tarball unpacks into `~/.local/lib/pi-bootstrap`: `bin/` (the binaries, where
//! `cargo xtask install` puts them and the backup timer runs them from, and their
//! `SHA256SUMS`, which the Ansible role checks each host's copies against), `share/`
//! (`bootstrap.md`, `manifest.schema.json`) and `VERSION`. It is deterministic: entries
//! sorted, every time 0, owner root, modes fixed, gzip without a time or name, so the
//! same build gives the same bytes (restic stores it once; a test compares the kit in
//! the backup with the current build's by its hash).
//!
//! Every binary is checked before it is packed, from its ELF (`goblin`): each `NEEDED`
//! library is one of the base system's ([`BASE_LIBRARIES`]: glibc's and libgcc's, on
//! every Debian), the interpreter is glibc's loader, and no symbol needs a glibc newer
//! than Debian 12's 2.36 ([`GLIBC_MAX`]). A binary that fails the check fails the task.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::fsx;
use sha2::{Digest, Sha256};
use xshell::{Shell, cmd};

use crate::install::{self, Outcome};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The one target the kit is built for (the one toolchain target installed).
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// The libraries a bare Debian 12 or 13 has: glibc's (`libpthread`, `libdl`, `librt`
/// are part of it) and libgcc's unwinder, both in the base system.
pub const BASE_LIBRARIES: &[&str] =
    &["libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"];

/// glibc's loader, the interpreter of every binary.
pub const INTERPRETER: &str = "/lib64/ld-linux-x86-64.so.2";

/// The newest glibc symbol version a kit binary may need: Debian 12's glibc.
pub const GLIBC_MAX: (u32, u32) = (2, 36);

#[derive(Debug, clap::Args)]
pub struct KitArgs {
    /// The host manifest whose runbook goes into the kit.
    #[arg(long, env = "PI_BOOTSTRAP_MANIFEST", default_value = "examples/pi-host/pi-bootstrap.yaml")]
    manifest: PathBuf,
    /// Where to write the tarball and its checksum file (default: target/kit).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Build the kit only; do not install it into ~/.local/lib/pi-bootstrap/kit.
    #[arg(long)]
    no_install: bool,
}

/// A built kit.
#[derive(Debug, Clone)]
pub struct Kit {
    /// The versioned tarball.
    pub tarball: PathBuf,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Their SHA-256, in hex.
    pub sha256: String,
}

/// The versioned name of the tarball.
pub fn file_name() -> String {
    format!("pi-bootstrap-kit-{}-{TARGET}.tar.gz", env!("CARGO_PKG_VERSION"))
}

/// The folder of the release binaries.
pub fn release_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("release")
}

/// The kit's default output folder.
pub fn out_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("kit")
}

/// What a binary's ELF says about what it needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfNeeds {
    /// `DT_NEEDED`: the shared libraries, by soname.
    pub libraries: Vec<String>,
    /// `PT_INTERP`: the loader, when dynamically linked.
    pub interpreter: Option<String>,
    /// The newest `GLIBC_x.y` among the symbol versions it needs.
    pub glibc: Option<(u32, u32)>,
}

/// Reads an ELF binary's needs.
pub fn elf_needs(bytes: &[u8]) -> Result<ElfNeeds> {
    let elf = goblin::elf::Elf::parse(bytes)?;
    let mut glibc = None;
    if let Some(verneed) = &elf.verneed {
        for need in verneed.iter() {
            for aux in need.iter() {
                let version = elf.dynstrtab.get_at(aux.vna_name).and_then(|n| n.strip_prefix("GLIBC_"));
                if let Some(v) = version.and_then(parse_version) {
                    glibc = glibc.max(Some(v));
                }
            }
        }
    }
    Ok(ElfNeeds {
        libraries: elf.libraries.iter().map(|l| (*l).to_owned()).collect(),
        interpreter: elf.interpreter.map(str::to_owned),
        glibc,
    })
}

/// `2.34` as (2, 34); `PRIVATE` and the like are not versions.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    Some((major, minor))
}

/// What keeps a binary from running on a bare Debian 12: empty when nothing does.
pub fn problems(name: &str, needs: &ElfNeeds) -> Vec<String> {
    let mut out = Vec::new();
    for lib in needs.libraries.iter().filter(|l| !BASE_LIBRARIES.contains(&l.as_str())) {
        out.push(format!("{name} needs {lib}, which a bare Debian does not have"));
    }
    if let Some(interp) = needs.interpreter.as_deref().filter(|i| *i != INTERPRETER) {
        out.push(format!("{name} is loaded by {interp}, not {INTERPRETER}"));
    }
    if let Some((major, minor)) = needs.glibc.filter(|v| *v > GLIBC_MAX) {
        out.push(format!("{name} needs glibc {major}.{minor}, newer than Debian 12's {}.{}", GLIBC_MAX.0, GLIBC_MAX.1));
    }
    out
}

/// The packages of the kit's binaries: named one by one, so that no test harness's
/// features (`common`'s `sandbox`, which `test-support` turns on) reach a product
/// binary.
const PACKAGES: &[&str] = &[
    "bootstrap-prereqs",
    "bootstrap-pi-config",
    "bootstrap-services",
    "bootstrap-data",
    "bootstrap-validate",
    "pi-config-audit",
    "bootstrap-restore",
];

/// Release build of every binary the kit holds.
pub fn build_release(sh: &Shell) -> Result<()> {
    let packages: Vec<String> = PACKAGES.iter().map(|p| format!("--package={p}")).collect();
    cmd!(sh, "cargo build --release --quiet {packages...} --bins").run()?;
    Ok(())
}

/// One entry of the tarball: its path and, for a file, its mode and bytes.
struct Entry {
    path: String,
    mode: u32,
    data: Option<Vec<u8>>,
}

/// The tarball of `entries` (sorted here), gzip-compressed, the same bytes every time.
fn pack(mut entries: Vec<Entry>) -> Result<Vec<u8>> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for entry in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_username("root")?;
        header.set_groupname("root")?;
        header.set_mode(entry.mode);
        match &entry.data {
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, &entry.path, data.as_slice())?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, &entry.path, std::io::empty())?;
            }
        }
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    Ok(gz.finish()?)
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The checksum file's line for `name` (what `sha256sum -c` reads).
fn sum_line(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

/// Builds the kit from the release binaries in `release`: every binary checked, the
/// runbook of `manifest` rendered (`manifest_arg` as its commands name it), packed
/// into `out` with its checksum file.
pub fn assemble(release: &Path, manifest: &Path, manifest_arg: &str, out: &Path) -> Result<Kit> {
    let mut entries = vec![
        Entry { path: "bin/".into(), mode: 0o755, data: None },
        Entry { path: "share/".into(), mode: 0o755, data: None },
    ];
    let mut refused = Vec::new();
    let mut sums = String::new();
    for name in install::binaries() {
        let path = release.join(name);
        let bytes = fs_err::read(&path).map_err(|e| format!("{e}: build it first (cargo xtask kit builds it)"))?;
        refused.extend(problems(name, &elf_needs(&bytes).map_err(|e| format!("{}: {e}", path.display()))?));
        sums.push_str(&sum_line(&sha256_hex(&bytes), name));
        entries.push(Entry { path: format!("bin/{name}"), mode: 0o755, data: Some(bytes) });
    }
    // The binaries' own checksums, as `sha256sum` writes them: what the Ansible role
    // checks the copies on each host against.
    entries.push(Entry { path: "bin/SHA256SUMS".into(), mode: 0o644, data: Some(sums.into_bytes()) });
    if !refused.is_empty() {
        return Err(format!("the kit would not run on a bare Debian 12:\n  {}", refused.join("\n  ")).into());
    }
    let loaded = crate::docs::load(manifest)?;
    let runbook = crate::docs::render(&loaded, manifest_arg)
        .into_iter()
        .find(|(name, _)| *name == "bootstrap.md")
        .map(|(_, text)| text)
        .ok_or("no runbook rendered")?;
    entries.push(Entry { path: "share/bootstrap.md".into(), mode: 0o644, data: Some(runbook.into_bytes()) });
    let schema = crate::schema_text().into_bytes();
    entries.push(Entry { path: "share/manifest.schema.json".into(), mode: 0o644, data: Some(schema) });
    let version = format!("pi-bootstrap-kit {} {TARGET}\n", env!("CARGO_PKG_VERSION"));
    entries.push(Entry { path: "VERSION".into(), mode: 0o644, data: Some(version.into_bytes()) });

    let bytes = pack(entries)?;
    let sha256 = sha256_hex(&bytes);
    let tarball = out.join(file_name());
    fsx::write_atomic(&tarball, &bytes, Some(0o644)).map_err(|e| format!("cannot write {}: {e}", tarball.display()))?;
    let sum = out.join(format!("{}.sha256", file_name()));
    fsx::write_atomic(&sum, sum_line(&sha256, &file_name()).as_bytes(), Some(0o644))
        .map_err(|e| format!("cannot write {}: {e}", sum.display()))?;
    Ok(Kit { tarball, bytes, sha256 })
}

/// Installs `kit` into `home`'s kit folder under its fixed names (with `check`, only
/// says whether it would): atomic, left alone when the same bytes are there.
pub fn install_kit(kit: &Kit, home: &Path, check: bool) -> Result<(PathBuf, Outcome)> {
    let dir = common::install::kit_dir(home);
    let files = [
        (common::install::KIT_FILE, kit.bytes.clone()),
        (common::install::KIT_SUM_FILE, sum_line(&kit.sha256, common::install::KIT_FILE).into_bytes()),
    ];
    let same = files.iter().all(|(name, bytes)| std::fs::read(dir.join(name)).is_ok_and(|now| now == *bytes));
    if same {
        return Ok((dir, Outcome::Unchanged));
    }
    if check {
        return Ok((dir, Outcome::WouldInstall));
    }
    // The tarball first: a checksum file never names bytes that are not there yet.
    for (name, bytes) in files {
        let target = dir.join(name);
        fsx::write_atomic(&target, &bytes, Some(0o644))
            .map_err(|e| format!("cannot install {} ({e})", target.display()))?;
    }
    Ok((dir, Outcome::Installed))
}

/// Release build, then the kit assembled from it into `out`.
pub fn build(sh: &Shell, root: &Path, manifest: &Path, manifest_arg: &str, out: &Path) -> Result<Kit> {
    build_release(sh)?;
    assemble(&release_dir(root), manifest, manifest_arg, out)
}

/// The task.
pub fn run(sh: &Shell, root: &Path, args: &KitArgs) -> Result<()> {
    let manifest = if args.manifest.is_absolute() { args.manifest.clone() } else { root.join(&args.manifest) };
    let out = args.out.clone().unwrap_or_else(|| out_dir(root));
    let kit = build(sh, root, &manifest, &args.manifest.display().to_string(), &out)?;
    println!(
        "== kit {} ({:.1} MB, sha256 {})\n   every binary needs only the base system's libraries and glibc <= {}.{}",
        kit.tarball.display(),
        kit.bytes.len() as f64 / 1e6,
        kit.sha256,
        GLIBC_MAX.0,
        GLIBC_MAX.1
    );
    if !args.no_install {
        let home = common::state::home_from_env()?;
        let (dir, outcome) = install_kit(&kit, &home, false)?;
        let what = if outcome == Outcome::Unchanged { "unchanged in" } else { "installed into" };
        println!("   {what} {} (bootstrap-data backup takes it into every snapshot)", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<Entry> {
        vec![
            Entry { path: "share/".into(), mode: 0o755, data: None },
            Entry { path: "VERSION".into(), mode: 0o644, data: Some(b"v\n".to_vec()) },
            Entry { path: "bin/".into(), mode: 0o755, data: None },
            Entry { path: "bin/b".into(), mode: 0o755, data: Some(b"b".to_vec()) },
            Entry { path: "bin/a".into(), mode: 0o755, data: Some(b"a".to_vec()) },
        ]
    }

    #[test]
    fn the_tarball_is_the_same_bytes_every_time_with_sorted_entries_and_fixed_metadata() -> Result<()> {
        let first = pack(entries())?;
        let mut shuffled = entries();
        shuffled.reverse();
        assert_eq!(first, pack(shuffled)?, "the order given does not matter");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(first.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries()? {
            let entry = entry?;
            let header = entry.header();
            assert_eq!((header.mtime()?, header.uid()?, header.gid()?), (0, 0, 0));
            seen.push((entry.path()?.display().to_string(), header.mode()?));
        }
        let expected = [("VERSION", 0o644), ("bin/", 0o755), ("bin/a", 0o755), ("bin/b", 0o755), ("share/", 0o755)];
        let expected: Vec<(String, u32)> = expected.iter().map(|(p, m)| ((*p).to_owned(), *m)).collect();
        assert_eq!(seen, expected);
        Ok(())
    }

    #[test]
    fn a_library_beyond_the_base_system_or_a_newer_glibc_is_refused() {
        let fine = ElfNeeds {
            libraries: vec!["libc.so.6".into(), "libgcc_s.so.1".into()],
            interpreter: Some(INTERPRETER.into()),
            glibc: Some((2, 34)),
        };
        assert!(problems("x", &fine).is_empty());
        let bad = ElfNeeds {
            libraries: vec!["libc.so.6".into(), "libssl.so.3".into()],
            interpreter: Some("/nix/store/ld.so".into()),
            glibc: Some((2, 38)),
        };
        let found = problems("x", &bad);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].contains("libssl.so.3"), "{found:?}");
        assert!(found[2].contains("glibc 2.38, newer than Debian 12's 2.36"), "{found:?}");
        assert_eq!(parse_version("2.2.5"), Some((2, 2)));
        assert_eq!(parse_version("PRIVATE"), None);
    }

    #[test]
    fn installing_the_same_kit_again_changes_nothing() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let bytes = pack(entries())?;
        let kit = Kit { tarball: dir.path().join("k.tar.gz"), sha256: sha256_hex(&bytes), bytes };
        let home = dir.path().join("home");
        assert_eq!(install_kit(&kit, &home, true)?.1, Outcome::WouldInstall);
        assert!(!home.exists(), "--check writes nothing");
        let (at, outcome) = install_kit(&kit, &home, false)?;
        assert_eq!(outcome, Outcome::Installed);
        let sum = fs_err::read_to_string(at.join(common::install::KIT_SUM_FILE))?;
        assert_eq!(sum, format!("{}  pi-bootstrap-kit.tar.gz\n", kit.sha256));
        assert_eq!(install_kit(&kit, &home, false)?.1, Outcome::Unchanged);
        Ok(())
    }
}
