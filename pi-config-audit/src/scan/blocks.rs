//! Managed-block markers the manifest no longer declares
//! (`undeclared-block:~/.bashrc:NAME`), in the declared shell files and the usual rc
//! files of HOME. Each file is read once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::report::{Item, Status, tilde};

use super::item;
use crate::declared::Declared;

/// The rc files looked at besides the declared shell files: a block the manifest
/// dropped from all of them is still found.
pub const RC_FILES: &[&str] = &[".bashrc", ".bash_profile", ".profile", ".zshrc"];

/// The names of the blocks opened in `text`, with their line numbers (1-based).
pub fn block_names(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .enumerate()
        .filter_map(|(n, line)| {
            let name = common::engine::opened_block(line)?;
            Some((name.to_owned(), n + 1))
        })
        .collect()
}

/// The blocks in the shell files that the manifest does not declare for that file.
pub fn scan_blocks(declared: &Declared) -> Vec<Item> {
    let home = &declared.home;
    let mut files: BTreeMap<PathBuf, Option<&BTreeSet<String>>> =
        RC_FILES.iter().map(|f| (home.join(f), None)).collect();
    for (file, names) in &declared.blocks {
        files.insert(file.clone(), Some(names));
    }
    let mut items = Vec::new();
    let mut read = 0;
    for (file, names) in &files {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        read += 1;
        for (name, line) in block_names(&text) {
            if names.is_some_and(|n| n.contains(&name)) {
                continue;
            }
            items.push(undeclared(file, home, &name, line));
        }
    }
    if items.is_empty() {
        items.push(item(
            "scan:shell-blocks".into(),
            "scan",
            Status::Ok,
            None,
            format!("{read} shell file{}: every pi-bootstrap block is declared", if read == 1 { "" } else { "s" }),
        ));
    }
    items
}

fn undeclared(file: &Path, home: &Path, name: &str, line: usize) -> Item {
    item(
        format!("undeclared-block:{}:{name}", tilde(file, home)),
        "block",
        Status::Drift,
        Some(file.to_path_buf()),
        format!("block {name:?} (line {line}) is not declared for this file: remove it, or declare it under `shell`"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_opening_markers_only() {
        let text = "export A=1\n# >>> pi-bootstrap: path >>>\nx\n# <<< pi-bootstrap: path <<<\n# >>> pi-bootstrap: old >>>  \n";
        assert_eq!(block_names(text), [("path".to_owned(), 2), ("old".to_owned(), 5)]);
        assert!(block_names("# >>> something else >>>\n").is_empty());
    }
}
