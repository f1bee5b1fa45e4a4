//! Restore steps 4 and 5: the host integration layer. Today: the managed blocks in
//! shell rc files (such as `pitmux` and PATH). Units, nginx sites and env files come
//! with issue #4.

use common::engine::{ManagedBlock, Resource, Unavailable};
use common::manifest::{ItemId, Manifest, ShellBlock};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-services";

/// The resources of this step, in order.
pub fn plan(manifest: &Manifest) -> Vec<Box<dyn Resource + '_>> {
    manifest.shell.iter().map(shell_block).collect()
}

fn shell_block(block: &ShellBlock) -> Box<dyn Resource + '_> {
    let id = ItemId::new("shell", block.name.as_str());
    let file = block.file.path().to_path_buf();
    match std::fs::read_to_string(block.source.path()) {
        Ok(content) => Box::new(ManagedBlock { id, file, name: block.name.as_str().to_owned(), content }),
        Err(e) => Box::new(Unavailable {
            id,
            kind: "block",
            path: Some(file),
            reason: format!("cannot read the block's source {}: {e}", block.source.path().display()),
        }),
    }
}
