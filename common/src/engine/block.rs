//! A managed block in a text file: lines between two markers, the rest of the file
//! untouched.

use std::fs;
use std::path::{Path, PathBuf};

use super::{Cause, Ctx, Difference, EngineError, Observed, Resource, Unavailable, read_source, unified_diff};
use crate::fsx;
use crate::manifest::{ItemId, ShellBlock};

/// The block `name` in `file` must hold exactly `content`.
#[derive(Debug, Clone)]
pub struct ManagedBlock {
    pub id: ItemId,
    pub file: PathBuf,
    pub name: String,
    pub content: String,
}

/// The line that opens the block `name`.
pub fn begin_marker(name: &str) -> String {
    format!("# >>> pi-bootstrap: {name} >>>")
}

/// The name of the block a line opens, if it is an opening marker.
pub fn opened_block(line: &str) -> Option<&str> {
    line.trim_end().strip_prefix("# >>> pi-bootstrap: ")?.strip_suffix(" >>>")
}

/// The line that closes the block `name`.
pub fn end_marker(name: &str) -> String {
    format!("# <<< pi-bootstrap: {name} <<<")
}

/// `text` without any of pi-bootstrap's managed blocks (markers included); a block
/// whose end marker is missing stays, so broken markers never pass for nothing.
pub fn without_blocks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let Some(name) = opened_block(line) else {
            out.push_str(line);
            continue;
        };
        let end = end_marker(name);
        let mut inside = vec![line];
        let mut closed = false;
        for next in lines.by_ref() {
            inside.push(next);
            if next.trim_end() == end {
                closed = true;
                break;
            }
        }
        if !closed {
            out.extend(inside);
        }
    }
    out
}

/// The resource of a shell block of the manifest: its source from the repo in a
/// [`ManagedBlock`], or [`Unavailable`] when the source cannot be read yet.
pub fn shell_block(block: &ShellBlock) -> Box<dyn Resource + '_> {
    let id = ItemId::new("shell", block.name.as_str());
    let file = block.file.path().to_path_buf();
    let source = block.source.path();
    let unreadable = |reason: String| -> Box<dyn Resource> {
        Box::new(Unavailable { id: id.clone(), kind: "block", path: Some(file.clone()), cause: Cause::Broken(reason) })
    };
    match read_source(source) {
        Ok(Some(bytes)) => match String::from_utf8(bytes) {
            Ok(content) => Box::new(ManagedBlock { id, file, name: block.name.as_str().to_owned(), content }),
            Err(_) => unreadable(format!("the block's source {} is not UTF-8 text", source.display())),
        },
        Ok(None) => Box::new(Unavailable {
            id,
            kind: "block",
            path: Some(file),
            cause: Cause::AwaitingRepo(source.to_path_buf()),
        }),
        Err(e) => unreadable(format!("cannot read the block's source: {e}")),
    }
}

impl ManagedBlock {
    /// The file to write: a symlinked rc file (dotfiles) is edited where it really lives.
    fn real_file(&self) -> PathBuf {
        fs::canonicalize(&self.file).unwrap_or_else(|_| self.file.clone())
    }

    fn read(&self) -> Result<String, EngineError> {
        match fs::read(self.real_file()) {
            Ok(bytes) => String::from_utf8(bytes)
                .map_err(|_| EngineError::Refused(format!("{} is not UTF-8 text", self.file.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(EngineError::io("read", &self.file)(e)),
        }
    }

    /// The whole file as it should be.
    fn desired(&self, now: &str) -> Result<String, EngineError> {
        let begin = begin_marker(&self.name);
        let end = end_marker(&self.name);
        let mut block = format!("{begin}\n{}", self.content);
        if !block.ends_with('\n') {
            block.push('\n');
        }
        block.push_str(&end);
        block.push('\n');
        let lines: Vec<&str> = now.split_inclusive('\n').collect();
        let is = |line: &str, marker: &str| line.trim_end() == marker;
        let starts: Vec<usize> = (0..lines.len()).filter(|&i| is(lines[i], &begin)).collect();
        let ends: Vec<usize> = (0..lines.len()).filter(|&i| is(lines[i], &end)).collect();
        match (starts.as_slice(), ends.as_slice()) {
            ([], []) => {
                let mut out = now.to_owned();
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(&block);
                Ok(out)
            }
            ([s], [e]) if s < e => {
                let mut out: String = lines[..*s].concat();
                out.push_str(&block);
                out.push_str(&lines[e + 1..].concat());
                Ok(out)
            }
            _ => Err(EngineError::Refused(format!(
                "the markers of block {:?} in {} are broken ({} begin, {} end): fix them by hand, nothing was changed",
                self.name,
                self.file.display(),
                starts.len(),
                ends.len()
            ))),
        }
    }
}

impl Resource for ManagedBlock {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "block"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.file)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        let now = self.read()?;
        let desired = self.desired(&now)?;
        if desired == now {
            return Ok(Observed::InSync);
        }
        let summary = if now.contains(&begin_marker(&self.name)) { "block differs" } else { "block missing" };
        let label = self.file.display().to_string();
        Ok(Observed::Differs(Difference::new(summary).with_diff(unified_diff(
            &label,
            now.as_bytes(),
            desired.as_bytes(),
        ))))
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        let now = self.read()?;
        let desired = self.desired(&now)?;
        let real = self.real_file();
        if real.exists() {
            ctx.state.keep(&real)?;
        }
        fsx::write_atomic(&real, desired.as_bytes(), None).map_err(EngineError::io("write", &real))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(content: &str) -> ManagedBlock {
        ManagedBlock {
            id: ItemId::new("shell", "b"),
            file: PathBuf::from("/x"),
            name: "b".into(),
            content: content.into(),
        }
    }

    #[test]
    fn appends_replaces_and_keeps_the_rest() -> Result<(), EngineError> {
        let b = block("alias x=y\n");
        let first = b.desired("export A=1")?;
        assert_eq!(first, "export A=1\n\n# >>> pi-bootstrap: b >>>\nalias x=y\n# <<< pi-bootstrap: b <<<\n");
        assert_eq!(b.desired(&first)?, first, "in sync once written");
        let edited = first.replace("alias x=y", "alias x=z") + "tail\n";
        let again = b.desired(&edited)?;
        assert_eq!(again, format!("{first}tail\n"));
        Ok(())
    }

    #[test]
    fn without_blocks_leaves_the_rest_and_broken_blocks() -> Result<(), EngineError> {
        let b = block("alias x=y\n");
        let skel = "# ~/.bashrc\nexport A=1\n";
        let with = b.desired(skel)?;
        assert_eq!(without_blocks(&with).trim_end(), skel.trim_end());
        assert_eq!(without_blocks(&b.desired("")?), "");
        let broken = "# >>> pi-bootstrap: b >>>\nmine\n";
        assert_eq!(without_blocks(broken), broken);
        Ok(())
    }

    #[test]
    fn opening_markers_name_their_block() {
        assert_eq!(opened_block(&begin_marker("pitmux")), Some("pitmux"));
        assert_eq!(opened_block(&end_marker("pitmux")), None);
        assert_eq!(opened_block("# >>> conda initialize >>>"), None);
    }

    #[test]
    fn broken_markers_are_refused() {
        let b = block("x\n");
        assert!(b.desired("# >>> pi-bootstrap: b >>>\nno end\n").is_err());
        let twice = "# >>> pi-bootstrap: b >>>\n# <<< pi-bootstrap: b <<<\n".repeat(2);
        assert!(b.desired(&twice).is_err());
    }
}
