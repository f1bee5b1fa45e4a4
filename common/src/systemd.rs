//! The user's systemd manager, through `systemctl --user`: the state of many units in
//! one call, and the few verbs the steps need (start, stop, restart, enable,
//! daemon-reload), all through `exec`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::exec::{Cmd, ExecError};

/// How long a `systemctl` call may take.
const TIMEOUT: Duration = Duration::from_secs(90);

/// Why the user manager cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SystemdError {
    /// `XDG_RUNTIME_DIR` is not set, so `systemctl --user` cannot find the manager.
    #[error(
        "XDG_RUNTIME_DIR is not set, so the systemd user manager cannot be reached: log in through a session (ssh or a console login sets it), or export XDG_RUNTIME_DIR=/run/user/$(id -u) when the manager runs (enable linger: loginctl enable-linger $USER)"
    )]
    NoRuntimeDir,
    /// The manager does not answer.
    #[error(
        "the systemd user manager does not answer ({0}): is it running? With linger enabled (loginctl enable-linger $USER) it starts at boot; check `systemctl --user status`"
    )]
    Unreachable(String),
    /// A systemctl command failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// What systemd says of one unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitState {
    /// The unit name, such as `agents-database.service`.
    pub id: String,
    /// `loaded`, `not-found`, `bad-setting`, ...
    pub load_state: String,
    /// `active`, `inactive`, `failed`, `activating`, ...
    pub active_state: String,
    /// `running`, `dead`, `exited`, ...
    pub sub_state: String,
    /// `enabled`, `disabled`, `static`, ... (empty for units that do not exist)
    pub unit_file_state: String,
    /// The file the unit was loaded from.
    pub fragment_path: String,
    /// Its `EnvironmentFile=` paths, when the `EnvironmentFiles` property is asked for
    /// (systemd repeats it, one line per file).
    pub env_files: Vec<std::path::PathBuf>,
    /// Every property asked for, by name.
    pub properties: BTreeMap<String, String>,
}

impl UnitState {
    pub fn is_active(&self) -> bool {
        self.active_state == "active"
    }
    pub fn exists(&self) -> bool {
        self.load_state != "not-found"
    }
    /// Running or on its way to or from it.
    pub fn is_running(&self) -> bool {
        matches!(self.active_state.as_str(), "active" | "activating" | "reloading" | "deactivating")
    }
    /// Enabled by a link (in the user's or the runtime's configuration).
    pub fn is_enabled(&self) -> bool {
        matches!(self.unit_file_state.as_str(), "enabled" | "enabled-runtime" | "linked" | "linked-runtime")
    }
    /// "enabled, active (running)", or "not loaded".
    pub fn describe(&self) -> String {
        if self.load_state == "not-found" || self.load_state.is_empty() {
            return "not loaded".to_owned();
        }
        let mut parts = Vec::new();
        if !self.unit_file_state.is_empty() {
            parts.push(self.unit_file_state.clone());
        }
        parts.push(format!("{} ({})", self.active_state, self.sub_state));
        parts.join(", ")
    }
}

/// The properties [`show`] always asks for.
pub const BASE_PROPERTIES: &[&str] = &["Id", "LoadState", "ActiveState", "SubState", "UnitFileState", "FragmentPath"];

/// A `systemctl --user` command with a timeout.
pub fn systemctl() -> Cmd {
    Cmd::new("systemctl").arg("--user").timeout(TIMEOUT)
}

/// Fails with a clear message when the user manager cannot be reached.
pub fn ensure_reachable() -> Result<(), SystemdError> {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty()) {
        return Err(SystemdError::NoRuntimeDir);
    }
    let out = systemctl().arg("is-system-running").output()?;
    let state = out.stdout.trim();
    match state {
        "running" | "degraded" | "starting" | "initializing" | "maintenance" => Ok(()),
        _ => Err(SystemdError::Unreachable(format!("{} {}", state, out.stderr.trim()).trim().to_owned())),
    }
}

/// Above this many units, [`show`] asks for every loaded unit by pattern instead of
/// naming each one: systemd answers a long list of names much more slowly (about 2 s
/// for 1,000 names, 0.4 s by pattern).
const BY_PATTERN_ABOVE: usize = 64;

/// The state of every unit in `units`, in order: one `systemctl --user show` call (two
/// when many units are asked for and some are not loaded). `extra` names more
/// properties to read (e.g. `MainPID`).
pub fn show(units: &[String], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    if units.len() <= BY_PATTERN_ABOVE {
        return show_named(units, extra);
    }
    let patterns: std::collections::BTreeSet<String> =
        units.iter().filter_map(|u| u.rsplit_once('.')).map(|(_, kind)| format!("*.{kind}")).collect();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let mut by_name: BTreeMap<String, UnitState> =
        show_all(&patterns, extra)?.into_iter().map(|u| (u.id.clone(), u)).collect();
    // A unit that is not loaded is not in a pattern's answer: ask for those by name.
    let missing: Vec<String> = units.iter().filter(|u| !by_name.contains_key(*u)).cloned().collect();
    for state in show_named(&missing, extra)? {
        by_name.insert(state.id.clone(), state);
    }
    Ok(units
        .iter()
        .map(|u| by_name.get(u).cloned().unwrap_or_else(|| UnitState { id: u.clone(), ..UnitState::default() }))
        .collect())
}

/// Every loaded unit matching `patterns` (such as `*.service`), in one call.
pub fn show_all(patterns: &[&str], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    let out = systemctl().arg("show").arg("--all").arg(properties(extra)).args(patterns.iter().copied()).run()?;
    Ok(parse_show(&out.stdout))
}

fn properties(extra: &[&str]) -> String {
    let mut props: Vec<&str> = BASE_PROPERTIES.to_vec();
    props.extend_from_slice(extra);
    format!("--property={}", props.join(","))
}

/// `systemctl --user show` naming each unit.
fn show_named(units: &[String], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    let out = systemctl().arg("show").arg(properties(extra)).args(units.iter().cloned()).run()?;
    Ok(parse_show(&out.stdout))
}

/// Parses `systemctl show` output: one block of `Key=Value` lines per unit, blocks
/// separated by an empty line.
pub fn parse_show(text: &str) -> Vec<UnitState> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut unit = UnitState::default();
            for (key, value) in block.lines().filter_map(|line| line.split_once('=')) {
                match key {
                    "Id" => unit.id = value.to_owned(),
                    "LoadState" => unit.load_state = value.to_owned(),
                    "ActiveState" => unit.active_state = value.to_owned(),
                    "SubState" => unit.sub_state = value.to_owned(),
                    "UnitFileState" => unit.unit_file_state = value.to_owned(),
                    "FragmentPath" => unit.fragment_path = value.to_owned(),
                    "EnvironmentFiles" => {
                        // "/path (ignore_errors=yes)"
                        let path = value.rsplit_once(" (").map_or(value, |(p, _)| p);
                        if !path.is_empty() {
                            unit.env_files.push(path.into());
                        }
                    }
                    _ => {}
                }
                unit.properties.insert(key.to_owned(), value.to_owned());
            }
            unit
        })
        .filter(|unit| !unit.id.is_empty())
        .collect()
}

/// Runs `systemctl --user VERB UNITS...` (start, stop, restart, enable, ...), one call
/// for all units.
pub fn act(verb: &str, units: &[String]) -> Result<(), SystemdError> {
    if units.is_empty() {
        return Ok(());
    }
    systemctl().arg(verb).args(units.iter().cloned()).run()?;
    Ok(())
}

/// The state of `names` once the units just started or restarted (`touched`) have
/// settled (active, or failed), waiting at most a few seconds; one `show` call per look.
/// A service that dies right after starting shows active for a moment, so it looks
/// once more after a short pause before calling it running.
pub fn wait_settled(names: &[String], touched: &[String]) -> Vec<UnitState> {
    use std::time::{Duration, Instant};
    let started = Instant::now();
    loop {
        let states = show(names, &[]).unwrap_or_default();
        let settling = touched
            .iter()
            .any(|u| states.iter().find(|s| s.id == *u).is_none_or(|s| !s.is_active() && s.active_state != "failed"));
        if (!settling || started.elapsed() > Duration::from_secs(5))
            && (touched.is_empty() || started.elapsed() > Duration::from_millis(600))
        {
            return states;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}

/// `systemctl --user daemon-reload`.
pub fn daemon_reload() -> Result<(), SystemdError> {
    systemctl().arg("daemon-reload").run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_block_per_unit() {
        let text = "Id=a.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nFragmentPath=/h/.config/systemd/user/a.service\n\nId=b.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nFragmentPath=\n";
        let units = parse_show(text);
        assert_eq!(units.len(), 2);
        assert!(units[0].is_active());
        assert_eq!(units[0].unit_file_state, "enabled");
        assert!(!units[1].exists());
        assert_eq!(units[0].describe(), "enabled, active (running)");
        assert!(units[0].is_running() && units[0].is_enabled());
    }

    #[test]
    fn keeps_every_environment_file() {
        let text = "Id=a.service\nEnvironmentFiles=/h/x.env (ignore_errors=no)\nEnvironmentFiles=/etc/y.env (ignore_errors=yes)\n";
        let units = parse_show(text);
        assert_eq!(units[0].env_files, [std::path::PathBuf::from("/h/x.env"), std::path::PathBuf::from("/etc/y.env")]);
    }
}
