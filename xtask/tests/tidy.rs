//! Tidiness checks on the whole workspace: every Rust file says what it is for, no test
//! is ignored, the committed JSON Schema matches the manifest's types.

#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use test_support::workspace::root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "node_modules" {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_doc_comment() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    assert!(files.len() > 20, "found only {} Rust files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(missing.is_empty(), "these files need a `//!` line saying what they are for:\n{}", missing.join("\n"));
}

#[test]
fn no_test_is_ignored() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    let marker = ["#[", "ignore"].concat();
    let ignored: Vec<String> = files
        .iter()
        .filter(|f| std::fs::read_to_string(f).unwrap_or_default().contains(&marker))
        .map(|f| f.display().to_string())
        .collect();
    assert!(ignored.is_empty(), "ignored tests hide failures; fix or delete them:\n{}", ignored.join("\n"));
}

#[test]
fn the_committed_json_schema_matches_the_manifest_types() -> Result<(), Box<dyn std::error::Error>> {
    let committed = std::fs::read_to_string(root().join("docs/manifest.schema.json")).unwrap_or_default();
    let schema = common::manifest::json_schema();
    let generated = format!("{}\n", serde_json::to_string_pretty(&schema)?);
    assert!(committed == generated, "docs/manifest.schema.json is stale: run `cargo xtask schema` and commit it");
    Ok(())
}

#[test]
fn the_committed_host_docs_match_the_example_manifest() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["docs", "--check"])
        .current_dir(root())
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

#[test]
fn the_docs_check_fails_when_the_manifest_changes_and_the_docs_do_not() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let text = std::fs::read_to_string(root().join("examples/pi-host/pi-bootstrap.yaml"))?;
    let changed = text.replace("max_age: \"26h\"", "max_age: \"12h\"");
    assert_ne!(text, changed, "the example manifest no longer has the line this test edits");
    let manifest = dir.path().join("pi-bootstrap.yaml");
    std::fs::write(&manifest, changed)?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["docs", "--check", "--manifest", &manifest.display().to_string(), "--out", "docs"])
        .current_dir(root())
        .output()?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stale, run `cargo xtask docs` and commit"), "{stderr}");
    assert!(stderr.contains("backup-policy.md"), "{stderr}");
    Ok(())
}

#[test]
fn the_committed_man_pages_and_completions_match_the_flags() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["man", "--check"])
        .current_dir(root())
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}

/// The product crates' Rust sources (not tests, benches or xtask).
fn product_sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in [
        "common",
        "bootstrap-prereqs",
        "bootstrap-pi-config",
        "bootstrap-services",
        "bootstrap-data",
        "bootstrap-validate",
        "pi-config-audit",
        "bootstrap-restore",
    ] {
        rust_files(&root().join(krate).join("src"), &mut files);
    }
    files
}

/// Files of the product crates that contain `needle`, outside `allowed`.
fn offenders(needle: &str, allowed: &[&str]) -> Vec<String> {
    product_sources()
        .into_iter()
        .map(|f| f.strip_prefix(root()).map(Path::to_path_buf).unwrap_or(f))
        .filter(|rel| !allowed.iter().any(|a| rel.ends_with(a)))
        .filter(|rel| std::fs::read_to_string(root().join(rel)).unwrap_or_default().contains(needle))
        .map(|rel| rel.display().to_string())
        .collect()
}

#[test]
fn architecture_invariants_hold() {
    let spawn = ["Command", "::new("].concat();
    assert_eq!(
        offenders(&spawn, &["common/src/exec.rs", "common/src/sandbox.rs"]),
        Vec::<String>::new(),
        "only common::exec spawns processes"
    );
    for print in [["print", "ln!("].concat(), ["eprint", "ln!("].concat(), ["print", "!("].concat()] {
        assert_eq!(offenders(&print, &[]), Vec::<String>::new(), "only common::output prints ({print})");
    }
    let yaml = ["serde_saphyr", "::"].concat();
    assert_eq!(
        offenders(
            &yaml,
            &[
                "common/src/manifest/load.rs",
                "common/src/manifest/types.rs",
                "common/src/manifest/expand.rs",
                "common/src/manifest/tree.rs",
                "common/src/manifest/explain.rs"
            ]
        ),
        Vec::<String>::new(),
        "only common::manifest parses YAML"
    );
}
