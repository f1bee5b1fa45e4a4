//! Project tasks, run as `cargo xtask TASK` (the alias is in `.cargo/config.toml`).
//!
//! - `test`: installs what the tests need on a fresh machine, then runs fmt, clippy and
//!   the whole test suite (the drill included). This is the README's test command and
//!   what `.ci/run` runs. `--soak N` runs only the randomized interruption test, with N
//!   trials.
//! - `install`: builds the step binaries and installs them into
//!   `~/.local/lib/pi-bootstrap/bin`, where the backup timer runs them from.
//! - `restore`: installs the step binaries, then runs the installed
//!   `pi-bootstrap-restore` (the steps in the documented order, resumable) with the
//!   flags passed through, and exits with its code.
//! - `kit`: the restore kit (release binaries checked to run on a bare Debian 12, the
//!   schema and the runbook in one deterministic tarball with its checksum), installed
//!   into `~/.local/lib/pi-bootstrap/kit`, where every backup takes it.
//! - `drill`: rehearses a full restore of the example host in a throwaway sandbox, on
//!   the cargo path and on the kit's.
//! - `docs`: renders the host's runbook, service manifest and backup policy.
//! - `schema`: writes `docs/manifest.schema.json` from the manifest's Rust types.
//! - `man`: man pages and shell completions of every binary, from their clap flags.
//! - `bench`: the figures of issue 17 beside their goals: the criterion benchmarks,
//!   no-op runs and peak memory of every step on a restored host, the steps side by
//!   side with Ansible, the audit of a generated large host; `--readme` writes them
//!   into the README.
//!
//! `main` builds one `xshell::Shell` at the project root and hands it to each task.

// A dev tool: it prints, as any command-line tool of the workspace does through xshell.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod docs;
mod drill;
mod host_packages;
mod install;
mod kit;
mod manpages;
mod restore;
mod sandbox;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use xshell::{Shell, cmd};

#[derive(Debug, Parser)]
#[command(about = "pi-bootstrap project tasks")]
struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install what the tests need (apt), then run fmt, clippy and every test.
    Test(TestArgs),
    /// Build the step binaries and install them into ~/.local/lib/pi-bootstrap/bin.
    Install,
    /// Install the step binaries, then run pi-bootstrap-restore with these flags: the restore steps in order on this host; stop at a failure; resume later.
    Restore(restore::RestoreArgs),
    /// Build the restore kit (release binaries, schema, runbook: one tarball and its
    /// checksum) and install it into ~/.local/lib/pi-bootstrap/kit.
    Kit(kit::KitArgs),
    /// Rehearse a full restore of the example host in a throwaway sandbox.
    Drill(drill::DrillArgs),
    /// Render docs/bootstrap.md, docs/service-manifest.md, docs/backup-policy.md from a manifest.
    Docs(docs::DocsArgs),
    /// Inside the sandbox: the part of the drill that runs in the namespaces.
    #[command(hide = true)]
    DrillInside(drill::InsideArgs),
    /// Write docs/manifest.schema.json from the manifest's Rust types.
    Schema,
    /// Write man pages and shell completions of every binary under docs/.
    Man(manpages::ManArgs),
    /// Measure the figures of issue 17, each beside its goal: criterion, no-op runs and
    /// peak memory on a restored example host, side by side with Ansible, a generated
    /// large host (all without a flag naming some).
    Bench(bench::BenchArgs),
    /// Inside the sandbox: the part of the benchmark that runs in the namespaces.
    #[command(hide = true)]
    BenchInside(bench::InsideArgs),
    /// The drill with its no-op benchmark, for the benchmark to read.
    #[command(hide = true)]
    BenchDrill(bench::DrillRunArgs),
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// Run only the randomized interruption test, with N trials (a step killed with
    /// SIGKILL at a random moment, then the whole chain once more); the suite runs 3.
    /// Replay one trial with the PI_BOOTSTRAP_SOAK_SEED and PI_BOOTSTRAP_SOAK_TRIAL it
    /// prints.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    soak: Option<u64>,
}

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The path of the committed JSON Schema.
pub fn schema_path(root: &Path) -> PathBuf {
    root.join("docs/manifest.schema.json")
}

/// The JSON Schema as committed: pretty JSON with a final newline.
pub fn schema_text() -> String {
    let schema = common::manifest::json_schema();
    format!("{}\n", serde_json::to_string_pretty(&schema).unwrap_or_default())
}

fn run_tests(sh: &Shell, args: &TestArgs) -> Result<()> {
    host_packages::ensure(sh, host_packages::FOR_TESTS)?;
    if let Some(trials) = args.soak {
        let trials = trials.to_string();
        let _soak = sh.push_env("PI_BOOTSTRAP_SOAK", trials);
        cmd!(sh, "cargo test -p xtask --test interrupt -- --nocapture").run()?;
        return Ok(());
    }
    cmd!(sh, "cargo fmt --all -- --check").run()?;
    cmd!(sh, "cargo clippy --workspace --all-targets --quiet -- -D warnings").run()?;
    cmd!(sh, "cargo test --workspace --no-fail-fast").run()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let sh = match Shell::new() {
        Ok(sh) => sh,
        Err(e) => {
            eprintln!("xtask: {e}");
            return ExitCode::FAILURE;
        }
    };
    let root = project_root();
    sh.change_dir(&root);
    let result = match args.task {
        Task::Test(test_args) => run_tests(&sh, &test_args),
        Task::Install => install::run(&sh, &root),
        // pi-bootstrap-restore's exit code (0, 1, 2) is the task's.
        Task::Restore(restore_args) => match restore::run(&sh, &root, &restore_args) {
            Ok(code) => return ExitCode::from(code),
            Err(e) => Err(e),
        },
        Task::Kit(kit_args) => kit::run(&sh, &root, &kit_args),
        Task::Drill(drill_args) => drill::run(&sh, &root, &drill_args),
        Task::Docs(docs_args) => docs::run(&root, &docs_args),
        Task::DrillInside(inside) => drill::inside(&sh, &inside),
        Task::Man(man_args) => manpages::run(&root, &man_args),
        Task::Bench(bench_args) => bench::run(&sh, &root, &bench_args),
        Task::BenchInside(inside) => bench::inside(&sh, &inside),
        Task::BenchDrill(drill_args) => bench::drill(&sh, &root, &drill_args),
        Task::Schema => fs_err::write(schema_path(&root), schema_text()).map_err(Into::into),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
