//! `cargo xtask kit` as a user runs it: the release binaries in the tarball need no
//! library beyond the base system's (glibc and libgcc) and no glibc newer than Debian
//! 12's 2.36, read by binutils' `readelf` (a second reader beside the task's own ELF
//! check); they run from the unpacked kit; the checksum file holds; the tarball holds
//! what the runbook names; the same build gives the same bytes. That the kit in a
//! backup is the current build's is the drill's to prove (`drill.rs`, the kit host).

#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const BASE_LIBRARIES: &[&str] =
    &["libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"];

const BINARIES: &[&str] = &[
    "bootstrap-data",
    "bootstrap-pi-config",
    "bootstrap-prereqs",
    "bootstrap-services",
    "bootstrap-validate",
    "pi-bootstrap-restore",
    "pi-config-audit",
];

fn run(program: &str, args: &[&str], dir: &Path) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new(program).args(args).current_dir(dir).output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("{program} {args:?} failed:\n{text}").into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn build_kit(_root: &Path, out: &Path, home: &Path) -> TestResult {
    test_support::workspace::build_kit(Path::new(env!("CARGO_BIN_EXE_xtask")), out, home)
}

/// The newest `GLIBC_x.y` that `readelf --version-info` lists as needed.
fn newest_glibc(version_info: &str) -> Option<(u32, u32)> {
    version_info
        .split(|c: char| c.is_whitespace())
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut parts = v.split('.');
            Some((parts.next()?.parse().ok()?, parts.next().map_or(Some(0), |m| m.parse().ok())?))
        })
        .max()
}

#[test]
fn the_kit_runs_on_a_bare_debian_12_and_is_the_same_bytes_every_build() -> TestResult {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().ok_or("no workspace root")?;
    let dir = tempfile::tempdir()?;
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home)?;
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    build_kit(root, &first, &home)?;
    build_kit(root, &second, &home)?;
    assert!(!home.join(".local").exists(), "--no-install installed the kit");

    let name = test_support::workspace::kit_file_name();
    let bytes = std::fs::read(first.join(&name))?;
    assert!(bytes == std::fs::read(second.join(&name))?, "two builds gave two different tarballs");
    run("sha256sum", &["-c", &format!("{name}.sha256")], &first)?;

    let listed = run("tar", &["-tzvf", &name], &first)?;
    let mut paths: Vec<&str> = listed.lines().filter_map(|l| l.split_whitespace().last()).collect();
    paths.sort_unstable();
    let mut expected =
        vec!["VERSION", "bin/", "bin/SHA256SUMS", "share/", "share/bootstrap.md", "share/manifest.schema.json"];
    let bins: Vec<String> = BINARIES.iter().map(|b| format!("bin/{b}")).collect();
    expected.extend(bins.iter().map(String::as_str));
    expected.sort_unstable();
    assert_eq!(paths, expected);
    assert!(listed.lines().all(|l| l.contains("root/root") && l.contains("1970-01-01")), "{listed}");

    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir_all(&unpacked)?;
    run("tar", &["-xzf", &first.join(&name).display().to_string(), "-C", &unpacked.display().to_string()], root)?;
    run("sha256sum", &["--check", "--strict", "--quiet", "SHA256SUMS"], &unpacked.join("bin"))?;
    let runbook = std::fs::read_to_string(unpacked.join("share/bootstrap.md"))?;
    assert!(runbook.contains("## On a bare machine: three commands, no toolchain"), "{runbook}");
    for bin in BINARIES {
        let path = unpacked.join("bin").join(bin);
        let path_text = path.display().to_string();
        let dynamic = run("readelf", &["--dynamic", "--wide", &path_text], root)?;
        let needed: Vec<&str> = dynamic
            .lines()
            .filter(|l| l.contains("(NEEDED)"))
            .filter_map(|l| l.split('[').nth(1)?.split(']').next())
            .collect();
        assert!(needed.contains(&"libc.so.6"), "{bin}: {needed:?}");
        for lib in &needed {
            assert!(BASE_LIBRARIES.contains(lib), "{bin} needs {lib}, beyond the base system");
        }
        let versions = run("readelf", &["--version-info", "--wide", &path_text], root)?;
        let glibc = newest_glibc(&versions).ok_or(format!("{bin}: no GLIBC_ version needed"))?;
        assert!(glibc <= (2, 36), "{bin} needs glibc {glibc:?}, newer than Debian 12's 2.36");
        // It runs from the kit, with nothing but the base system's PATH.
        let version = Command::new(&path).arg("--version").env_clear().env("PATH", "/usr/bin:/bin").output()?;
        assert!(version.status.success(), "{bin} --version failed from the kit");
        assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")), "{bin}");
    }
    Ok(())
}
