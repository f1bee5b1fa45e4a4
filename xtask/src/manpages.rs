//! `cargo xtask man`: a man page (`docs/man/NAME.1`) and bash, zsh and fish completions
//! (`docs/completions/`) for every binary, from the same clap definitions its `--help`
//! comes from. `--check` fails when the committed files are stale.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell as CompletionShell;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write nothing; fail when a committed file differs from what the flags give.
    #[arg(long)]
    check: bool,
}

/// Every binary's clap command.
fn commands() -> Vec<clap::Command> {
    vec![
        bootstrap_prereqs::Args::command(),
        bootstrap_pi_config::Args::command(),
        bootstrap_services::Args::command(),
        bootstrap_data::Args::command(),
        bootstrap_validate::Args::command(),
        pi_config_audit::Args::command(),
        bootstrap_restore::Args::command(),
    ]
}

/// Every generated file: its path under `docs/` and its content.
pub fn render() -> Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for command in commands() {
        let name = command.get_name().to_owned();
        let mut page = Vec::new();
        clap_mangen::Man::new(command.clone()).render(&mut page)?;
        files.push((PathBuf::from(format!("man/{name}.1")), page));
        for (shell, file) in [
            (CompletionShell::Bash, format!("{name}.bash")),
            (CompletionShell::Zsh, format!("_{name}")),
            (CompletionShell::Fish, format!("{name}.fish")),
        ] {
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), &name, &mut text);
            files.push((PathBuf::from(format!("completions/{file}")), text));
        }
    }
    Ok(files)
}

pub fn run(root: &Path, args: &ManArgs) -> Result<()> {
    let docs = root.join("docs");
    let mut stale = Vec::new();
    for (rel, content) in render()? {
        let path = docs.join(&rel);
        if args.check {
            if std::fs::read(&path).ok().as_deref() != Some(content.as_slice()) {
                stale.push(rel.display().to_string());
            }
        } else {
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
            }
            fs_err::write(&path, content)?;
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("stale, run `cargo xtask man` and commit: {}", stale.join(", ")).into())
    }
}
