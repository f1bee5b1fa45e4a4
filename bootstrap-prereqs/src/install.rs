//! Installing what is missing: one command per package manager, in an order where a
//! manager that apt installs (npm, pipx, cargo) is there for the commands after it.

use std::collections::BTreeMap;
use std::time::Duration;

use common::exec::Cmd;
use common::manifest::{Install, Prereq};
use common::output::{self, Verbosity};

/// The package managers, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Manager {
    Apt,
    Npm,
    Pipx,
    Cargo,
    Script,
}

impl Manager {
    fn of(install: &Install) -> Manager {
        match install {
            Install::Apt(_) => Manager::Apt,
            Install::Npm(_) => Manager::Npm,
            Install::Pip(_) => Manager::Pipx,
            Install::Cargo(_) => Manager::Cargo,
            Install::Script(_) => Manager::Script,
        }
    }
    fn timeout(self) -> Duration {
        let minutes = match self {
            Manager::Apt | Manager::Script => 30,
            Manager::Npm | Manager::Pipx => 15,
            Manager::Cargo => 60,
        };
        Duration::from_secs(minutes * 60)
    }
}

/// One install command and the prerequisites it is for.
#[derive(Debug, Clone)]
pub struct InstallCommand {
    pub manager: Manager,
    pub cmd: Cmd,
    pub for_prereqs: Vec<String>,
}

/// The commands that install `due`: `apt-get update` (once) and one `apt-get install`
/// for all Debian packages, one `npm install -g`, one `pipx install` per package (pipx
/// takes one at a time), one `cargo install`, each script on its own.
pub fn install_commands(due: &[&Prereq]) -> Vec<InstallCommand> {
    let mut by_manager: BTreeMap<Manager, Vec<&Prereq>> = BTreeMap::new();
    for prereq in due {
        by_manager.entry(Manager::of(&prereq.install)).or_default().push(prereq);
    }
    let mut commands = Vec::new();
    for (manager, prereqs) in by_manager {
        let names: Vec<String> = prereqs.iter().map(|p| p.name.as_str().to_owned()).collect();
        let packages: Vec<String> = prereqs
            .iter()
            .filter_map(|p| match &p.install {
                Install::Apt(x) | Install::Npm(x) | Install::Pip(x) | Install::Cargo(x) => Some(x.clone()),
                Install::Script(_) => None,
            })
            .collect();
        let timeout = manager.timeout();
        let mut push = |cmd: Cmd, for_prereqs: Vec<String>| {
            commands.push(InstallCommand { manager, cmd: cmd.timeout(timeout), for_prereqs });
        };
        match manager {
            Manager::Apt => {
                push(Cmd::new("apt-get").args(["update", "-qq"]).privileged(), names.clone());
                push(
                    Cmd::new("apt-get")
                        .args(["install", "-y", "-qq", "--no-install-recommends"])
                        .args(packages)
                        .env("DEBIAN_FRONTEND", "noninteractive")
                        .privileged(),
                    names,
                );
            }
            Manager::Npm => {
                push(Cmd::new("npm").args(["install", "--global", "--no-fund", "--no-audit"]).args(packages), names)
            }
            Manager::Pipx => {
                for (package, name) in packages.into_iter().zip(names) {
                    push(Cmd::new("pipx").args(["install", package.as_str()]), vec![name]);
                }
            }
            Manager::Cargo => push(Cmd::new("cargo").args(["install", "--locked"]).args(packages), names),
            Manager::Script => {
                for prereq in prereqs {
                    if let Install::Script(file) = &prereq.install {
                        let script = file.path().display().to_string();
                        push(Cmd::new(script), vec![prereq.name.as_str().to_owned()]);
                    }
                }
            }
        }
    }
    commands
}

/// Why `prereq` cannot be installed now, known before anything runs: its install
/// script is not there (it lives in the pi-config repo, which `bootstrap-pi-config`
/// clones after this step). `--check` and the run both say so, as a failure, so the
/// check never promises an install the run cannot do.
pub fn cannot_install(prereq: &Prereq) -> Option<String> {
    let Install::Script(file) = &prereq.install else { return None };
    match std::fs::symlink_metadata(file.path()) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
            "cannot install: its script {} is not there (it comes with the pi-config repo: on a host \
             where the repo is not cloned yet, bootstrap-pi-config clones it; then run this step again)",
            file.path().display()
        )),
        Err(e) => Some(format!("cannot install: cannot read its script {}: {e}", file.path().display())),
    }
}

/// What the installs did: the commands run and, per prerequisite, why its install failed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub commands: Vec<String>,
    failures: BTreeMap<String, String>,
}

impl Outcome {
    /// Why the install of `prereq` failed, if it did.
    pub fn failure_for(&self, prereq: &Prereq) -> Option<&str> {
        self.failures.get(prereq.name.as_str()).map(String::as_str)
    }
}

/// Runs the install commands of `due`; a failure is recorded for its prerequisites and
/// the other managers still run.
pub fn install(due: &[&Prereq], verbosity: Verbosity) -> Outcome {
    let mut outcome = Outcome::default();
    for command in install_commands(due) {
        if command.for_prereqs.iter().all(|name| outcome.failures.contains_key(name)) {
            continue; // apt-get update failed: its install would fail the same way
        }
        let shown = command.cmd.to_string();
        if command.cmd.effective_argv().first().is_some_and(|p| p == "sudo") {
            output::note(&format!("{}: running as root: {shown}", crate::STEP));
        }
        let spinner = output::spinner(&format!("{:?}: {shown}", command.manager), verbosity);
        let result = command.cmd.run();
        spinner.finish_and_clear();
        outcome.commands.push(shown);
        if let Err(e) = result {
            for name in &command.for_prereqs {
                outcome.failures.insert(name.clone(), e.to_string());
            }
        }
    }
    outcome
}
