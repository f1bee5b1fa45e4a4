//! `cargo xtask bench`: the figures of issue 17, each beside its goal, measured on
//! this machine (medians; never a timed test).
//!
//! - `--criterion`: the criterion benchmarks of the workspace (`cargo bench`).
//! - `--noop`: the drill (`cargo xtask drill --bench N`) restores the example host,
//!   then times N no-op runs of every step and of the audit; every step run of the
//!   drill also reports its peak memory (GNU time), collected here per binary.
//! - `--vs-ansible`: [`ansible`], our steps and the Ansible playbook side by side.
//! - `--scale`: [`scale`], the audit of a generated 100 / 1,000 / 5,000-service host.
//!
//! Without any of them, all four run. The binaries are release builds unless
//! `--debug`; every figure says its build. `--readme` writes the table of figures into
//! README.md between the markers of [`figures`]. `--vs-ansible` and `--scale` run in
//! one sandbox (private mount, network and PID namespaces, a real `systemd --user`
//! and nginx): xtask runs itself there as the hidden `bench-inside` task.

pub mod ansible;
pub mod figures;
pub mod measure;
pub mod scale;

use std::io::BufRead as _;
use std::path::{Path, PathBuf};

use common::sandbox::{Layout, Machine};
use xshell::{Shell, cmd};

use crate::{host_packages, restore};
use figures::Figure;

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// The goal of every binary's peak memory (issue 17).
const MEMORY_GOAL_KIB: u64 = 20 * 1024;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The criterion benchmarks of the workspace.
    #[arg(long)]
    criterion: bool,
    /// The drill's no-op runs of every step on the restored example host, and the peak
    /// memory of every binary over the drill.
    #[arg(long)]
    noop: bool,
    /// Our steps and the equivalent Ansible playbook, side by side in one sandbox.
    #[arg(long)]
    vs_ansible: bool,
    /// The audit of a generated host of 100, 1,000 and 5,000 services.
    #[arg(long)]
    scale: bool,
    /// Runs per figure (the median is shown); rounds per side with --vs-ansible.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Time the debug build of the binaries instead of the release build.
    #[arg(long)]
    debug: bool,
    /// Write the table of figures into README.md, between its figures markers.
    #[arg(long)]
    readme: bool,
}

#[derive(Debug, clap::Args)]
pub struct InsideArgs {
    #[arg(long)]
    sandbox: PathBuf,
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    bin_dir: PathBuf,
    /// The venv's bin/ (with --vs-ansible).
    #[arg(long)]
    ansible_bin: Option<PathBuf>,
    #[arg(long)]
    scale: bool,
    #[arg(long)]
    runs: u32,
    #[arg(long)]
    build: String,
    /// Where the figures are appended (JSON lines).
    #[arg(long)]
    figures: PathBuf,
}

/// The drill with its no-op benchmark, run as its own process so the benchmark reads
/// its output (`cargo xtask bench-drill`, hidden).
#[derive(Debug, clap::Args)]
pub struct DrillRunArgs {
    #[arg(long)]
    runs: u32,
}

/// The drill of the example host with `args.runs` no-op runs of every step after it.
pub fn drill(sh: &Shell, root: &Path, args: &DrillRunArgs) -> Result<()> {
    crate::drill::run(sh, root, &crate::drill::DrillArgs::bench(args.runs))
}

fn build_name(args: &BenchArgs) -> &'static str {
    if args.debug { "debug" } else { "release" }
}

/// The outer half: build, run each part, show and keep the figures.
pub fn run(sh: &Shell, root: &Path, args: &BenchArgs) -> Result<()> {
    let all = !(args.criterion || args.noop || args.vs_ansible || args.scale);
    host_packages::ensure_all(sh, &[host_packages::FOR_DRILL, host_packages::FOR_BENCH])?;
    let build = build_name(args);
    let _profile = sh.push_env(restore::PROFILE_VAR, build);
    // The binaries as the drill builds them (the drill runs with the same variable).
    let release = (!args.debug).then_some("--release");
    cmd!(sh, "cargo build --quiet {release...} --workspace --bins --exclude xtask").run()?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin_dir = target.join(build);

    let work = tempfile::Builder::new().prefix("pi-bench-").tempdir()?;
    let figures_file = work.path().join("figures.jsonl");
    if all || args.criterion {
        cmd!(sh, "cargo bench --workspace --quiet").run()?;
    }
    if all || args.noop {
        noop_and_memory(sh, args, work.path(), &figures_file)?;
    }
    if all || args.vs_ansible || args.scale {
        let ansible_bin = if all || args.vs_ansible {
            println!(
                "bench: the Ansible venv (ansible/requirements.txt) in {}",
                test_support::python::venv_dir().display()
            );
            Some(test_support::python::ansible_bin()?)
        } else {
            None
        };
        let sandbox = work.path().join("sandbox");
        fs_err::create_dir_all(&sandbox)?;
        let mut inner = vec![
            std::env::current_exe()?.display().to_string(),
            "bench-inside".into(),
            "--sandbox".into(),
            sandbox.display().to_string(),
            "--root".into(),
            root.display().to_string(),
            "--bin-dir".into(),
            bin_dir.display().to_string(),
            "--runs".into(),
            args.runs.to_string(),
            "--build".into(),
            build.into(),
            "--figures".into(),
            figures_file.display().to_string(),
        ];
        if let Some(bin) = ansible_bin {
            inner.extend(["--ansible-bin".into(), bin.display().to_string()]);
        }
        if all || args.scale {
            inner.push("--scale".into());
        }
        let argv = common::sandbox::enter_argv(true, &inner);
        let (program, rest) = argv.split_first().ok_or("empty unshare command")?;
        let mut command: std::process::Command = cmd!(sh, "{program} {rest...}").into();
        if !command.status()?.success() {
            return Err("the benchmark failed in its sandbox (see above)".into());
        }
        let leftovers = crate::sandbox::processes_mentioning(&sandbox.display().to_string());
        if !leftovers.is_empty() {
            return Err(format!("the benchmark left processes running:\n{}", leftovers.join("\n")).into());
        }
    }

    let figures = figures::read(&figures_file)?;
    println!("\n== figures (medians), each beside its goal");
    print!("{}", figures::text(&figures));
    if args.readme {
        let readme = root.join("README.md");
        let text = fs_err::read_to_string(&readme)?;
        let new = figures::write_tables(&text, &figures)?;
        fs_err::write(&readme, new)?;
        println!("bench: README.md's tables of the parts that ran written from this run");
    }
    Ok(())
}

/// The drill with its no-op benchmark, on the chosen build, every step's peak memory
/// collected; its figures appended to `figures_file`.
fn noop_and_memory(sh: &Shell, args: &BenchArgs, work: &Path, figures_file: &Path) -> Result<()> {
    let memory_file = work.join("peak-memory.tsv");
    let build = build_name(args);
    let me = std::env::current_exe()?;
    let runs = args.runs.to_string();
    let mut command: std::process::Command = cmd!(sh, "{me} bench-drill --runs {runs}")
        .env(restore::PEAK_MEMORY_FILE_VAR, &memory_file)
        .env(restore::PROFILE_VAR, build)
        .into();
    command.stdout(std::process::Stdio::piped());
    let mut child = command.spawn()?;
    let mut seen = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        for line in std::io::BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            println!("{line}");
            seen.push(line);
        }
    }
    if !child.wait()?.success() {
        return Err("the drill failed (see above)".into());
    }
    let mut figures = drill_figures(&seen, build, args.runs);
    let text = fs_err::read_to_string(&memory_file)?;
    figures.extend(memory_figures(&text, build, args.runs as usize));
    figures::append(figures_file, &figures)
}

/// The drill's no-op lines (`   NAME  MIN ms  MEDIAN ms   GOAL`) and its recovery
/// time, as figures.
fn drill_figures(lines: &[String], build: &str, runs: u32) -> Vec<Figure> {
    let mut figures = Vec::new();
    let Some(start) = lines.iter().position(|l| l.starts_with("== benchmark:")) else { return figures };
    for line in &lines[start + 1..] {
        if !line.starts_with("   ") || !line.contains(" ms") {
            break;
        }
        let together = line.trim_start().starts_with("steps before validate");
        let rest = line.trim_start().trim_start_matches("steps before validate");
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let (name, min, median, tail) = if together {
            (
                "the no-op steps before validate, together (medians summed)".to_owned(),
                None,
                tokens.first(),
                &tokens[2.min(tokens.len())..],
            )
        } else {
            let Some(name) = tokens.first() else { continue };
            (
                format!("no-op `{name}` on the restored example host"),
                tokens.get(1),
                tokens.get(3),
                &tokens[5.min(tokens.len())..],
            )
        };
        let Some(median) = median else { continue };
        let tail = tail.join(" ");
        let met = if tail.contains("NOT MET") {
            Some(false)
        } else if tail.contains("met") {
            Some(true)
        } else {
            None
        };
        let goal = tail.split(" met").next().unwrap_or_default().split(" NOT MET").next().unwrap_or_default();
        let min = min.map(|m| format!(", min {m} ms")).unwrap_or_default();
        figures.push(Figure::new(
            "noop",
            format!("{name} ({build}, median of {runs}{min})"),
            format!("{median} ms"),
            goal,
            met,
        ));
    }
    // "== recovery time 56.93s, the kit path: ... (brand-new HOME to restored host)",
    // one line per path the drill lived.
    for line in lines.iter().filter_map(|l| l.strip_prefix("== recovery time ")) {
        let (took, path) = line.split_once(", ").map_or((line, ""), |(t, rest)| (t, rest));
        let took = took.split_whitespace().next().unwrap_or_default();
        let path = path.split_once(" (").map_or(path, |(p, _)| p);
        let which = if path.is_empty() { String::new() } else { format!(", {path}") };
        figures.push(Figure::new(
            "noop",
            format!(
                "the whole restore drill{which}, brand-new HOME to restored and validated host ({build}; mostly npm and pipx downloads)"
            ),
            took,
            "",
            None,
        ));
    }
    figures
}

/// Peak memory per binary from the drill's `NAME<TAB>KiB` lines: over the whole drill
/// (installs included, so the package managers it waited for count too) and over its
/// last `runs` runs of each binary (the no-op benchmark).
fn memory_figures(text: &str, build: &str, runs: usize) -> Vec<Figure> {
    // (binary, every run, the no-op runs between the drill's markers)
    let mut per_bin: Vec<(String, Vec<u64>, Vec<u64>)> = Vec::new();
    let marked = text.lines().any(|l| l == restore::NOOP_BEGIN);
    let mut in_noop = false;
    for line in text.lines() {
        if line == restore::NOOP_BEGIN || line == restore::NOOP_END {
            in_noop = line == restore::NOOP_BEGIN;
            continue;
        }
        let Some((bin, kib)) = line.split_once('\t') else { continue };
        let Ok(kib) = kib.trim().parse::<u64>() else { continue };
        let entry = match per_bin.iter().position(|(b, _, _)| b == bin) {
            Some(i) => &mut per_bin[i],
            None => {
                per_bin.push((bin.to_owned(), Vec::new(), Vec::new()));
                per_bin.last_mut().expect("just pushed")
            }
        };
        entry.1.push(kib);
        if in_noop {
            entry.2.push(kib);
        }
    }
    let goal = format!("<= {}", measure::mib(MEMORY_GOAL_KIB));
    let mut figures = Vec::new();
    for (bin, all, noops) in per_bin {
        // Without the markers (an older drill): its last `runs` runs were the no-op ones.
        let noop =
            if marked { noops.iter().copied().max() } else { all.iter().rev().take(runs).copied().max() }.unwrap_or(0);
        let whole = all.iter().copied().max().unwrap_or(0);
        figures.push(Figure::new(
            "noop",
            format!(
                "peak memory of `{bin}`, no-op runs on the restored example host ({build}; GNU time: the process and what it waited for; over the whole drill, installs included, {})",
                measure::mib(whole)
            ),
            measure::mib(noop),
            goal.clone(),
            Some(noop <= MEMORY_GOAL_KIB),
        ));
    }
    figures
}

/// The inner half, in the sandbox: the machine booted with its nginx, then Ansible
/// side by side, then the large host.
pub fn inside(sh: &Shell, args: &InsideArgs) -> Result<()> {
    let layout = Layout::new(&args.sandbox);
    let mut machine = Machine::boot(layout.clone())?;
    machine.start_nginx()?;
    for (name, value) in machine.env() {
        sh.set_var(name, value);
    }
    let home = layout.home();
    let mut all = Vec::new();
    if let Some(ansible_bin) = &args.ansible_bin {
        let origin = layout.root.join("origin/pi-config");
        ansible::make_origin(sh, &args.root, &origin)?;
        ansible::environment(sh, &layout.root, &origin);
        let programs = ansible::Programs {
            bin_dir: args.bin_dir.clone(),
            ansible_bin: ansible_bin.clone(),
            manifest: ansible::manifest(&args.root),
            playbook: ansible::playbook(&args.root),
        };
        all.extend(ansible::run(sh, &programs, &home, &layout.nginx_prefix(), args.runs, &args.build)?);
    }
    if args.scale {
        all.extend(scale::run(sh, &layout.root, &home, &args.bin_dir, &args.build, args.runs)?);
    }
    figures::append(&args.figures, &all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drills_noop_lines_become_figures() {
        let lines: Vec<String> = [
            "== benchmark: 5 no-op runs of each step on the restored host (min / median / goal)",
            "   bootstrap-prereqs          70.1 ms     81.9 ms   <=   30 ms  NOT MET (2.7x)",
            "   bootstrap-validate       1700.0 ms   1750.0 ms   (slowest check + 20 ms)",
            "   pi-config-audit            40.0 ms     45.0 ms   <=   50 ms  met",
            "   steps before validate                  444.0 ms   <=  150 ms  NOT MET (3.0x)",
            "drill: ok",
            "== recovery time 56.93s, the kit path: no toolchain, the kit out of the backup (brand-new HOME to restored host)",
            "== recovery time 45.41s, the cargo path: cargo xtask install from a clone (brand-new HOME to restored host)",
        ]
        .map(String::from)
        .to_vec();
        let figures = drill_figures(&lines, "release", 5);
        let shown: Vec<(String, Option<bool>)> =
            figures.iter().map(|f| (format!("{} | {} | {}", f.what, f.value, f.goal), f.met)).collect();
        assert_eq!(
            shown,
            vec![
                ("no-op `bootstrap-prereqs` on the restored example host (release, median of 5, min 70.1 ms) | 81.9 ms | <= 30 ms".to_owned(), Some(false)),
                ("no-op `bootstrap-validate` on the restored example host (release, median of 5, min 1700.0 ms) | 1750.0 ms | (slowest check + 20 ms)".to_owned(), None),
                ("no-op `pi-config-audit` on the restored example host (release, median of 5, min 40.0 ms) | 45.0 ms | <= 50 ms".to_owned(), Some(true)),
                ("the no-op steps before validate, together (medians summed) (release, median of 5) | 444.0 ms | <= 150 ms".to_owned(), Some(false)),
                ("the whole restore drill, the kit path: no toolchain, the kit out of the backup, brand-new HOME to restored and validated host (release; mostly npm and pipx downloads) | 56.93s | ".to_owned(), None),
                ("the whole restore drill, the cargo path: cargo xtask install from a clone, brand-new HOME to restored and validated host (release; mostly npm and pipx downloads) | 45.41s | ".to_owned(), None),
            ]
        );
    }

    #[test]
    fn peak_memory_of_the_no_op_runs_is_read_between_the_drills_markers() {
        let text = format!(
            "bootstrap-prereqs\t90000\n{}\nbootstrap-prereqs\t9000\n{}\nbootstrap-prereqs\t500000\n",
            restore::NOOP_BEGIN,
            restore::NOOP_END
        );
        let figures = memory_figures(&text, "release", 5);
        assert_eq!((figures[0].value.as_str(), figures[0].met), ("8.8 MiB", Some(true)));
        assert!(figures[0].what.contains("installs included, 488.3 MiB"), "{}", figures[0].what);
    }

    #[test]
    fn peak_memory_is_the_largest_of_the_last_runs() {
        let text =
            "bootstrap-prereqs\t90000\nbootstrap-prereqs\t9000\nbootstrap-prereqs\t8000\npi-config-audit\t30000\n";
        let figures = memory_figures(text, "release", 2);
        assert_eq!(figures.len(), 2);
        assert_eq!((figures[0].value.as_str(), figures[0].met), ("8.8 MiB", Some(true)));
        assert!(figures[0].what.contains("over the whole drill, installs included, 87.9 MiB"), "{}", figures[0].what);
        assert_eq!((figures[1].value.as_str(), figures[1].met), ("29.3 MiB", Some(false)));
    }
}
