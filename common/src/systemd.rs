//! The user's systemd manager: the state of many units in one call (read on the
//! manager's bus, [`bus`], or asked of `systemctl --user show`), and the few verbs the
//! steps need (start, stop, restart, enable, daemon-reload), through `systemctl` and
//! `exec`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::exec::{Cmd, ExecError};

pub mod bus;

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

/// Fails with a clear message when the user manager cannot be reached: a connection to
/// its private socket, else `systemctl --user is-system-running`.
pub fn ensure_reachable() -> Result<(), SystemdError> {
    let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) else {
        return Err(SystemdError::NoRuntimeDir);
    };
    // The manager's private socket, which `systemctl --user` itself connects to first:
    // a manager that accepts a connection there is up, and no process is spawned.
    if std::os::unix::net::UnixStream::connect(Path::new(&runtime).join("systemd/private")).is_ok() {
        return Ok(());
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

/// One look at every loaded unit matching some patterns, with some properties, taken
/// by [`look_once`] and answering [`show`] and [`show_all`] for the rest of the process
/// (until something acts on a unit).
#[derive(Debug)]
struct Look {
    patterns: BTreeSet<String>,
    properties: BTreeSet<String>,
    units: BTreeMap<String, UnitState>,
}

static LOOK: Mutex<Option<Look>> = Mutex::new(None);

/// The look [`look_once`] started, until a reader needs it.
static LOOK_UNDER_WAY: Mutex<Option<std::thread::JoinHandle<Option<Look>>>> = Mutex::new(None);

/// The look held, once the one under way (if any) is done: it is awaited with [`LOOK`]
/// held, so no reader finds it empty meanwhile.
fn look() -> std::sync::MutexGuard<'static, Option<Look>> {
    let mut held = LOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let under_way = LOOK_UNDER_WAY.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    if let Some(taken) = under_way.and_then(|thread| thread.join().ok().flatten()) {
        *held = Some(taken);
    }
    held
}

/// Starts one look at every loaded unit matching `patterns` (such as `*.service`) with
/// the base properties and `extra`, in the background, and returns: the later [`show`]
/// and [`show_all`] calls of this process that it covers wait for it and are answered
/// from it, and only the units it does not hold (not loaded) are asked by name. For a
/// reader that changes nothing and asks from several places, such as the audit, which
/// starts it before it reads the manifest; [`act`], [`daemon_reload`] and
/// [`forget_look`] forget it.
/// While a look is held or under way, another call does nothing. When systemd cannot be
/// asked, nothing is kept and each call asks (and fails) on its own.
///
/// What the look read is redacted with the secrets registered by then; every line
/// printed is redacted again (`output`), once they are all known.
pub fn look_once(patterns: &[&str], extra: &[&str]) {
    if !patterns.iter().all(|p| is_kind_pattern(p)) {
        return;
    }
    // Locked in the order `look` locks them.
    let held = LOOK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut under_way = LOOK_UNDER_WAY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if held.is_some() || under_way.is_some() {
        return;
    }
    let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
    let extra: Vec<String> = extra.iter().map(|p| (*p).to_owned()).collect();
    *under_way = Some(std::thread::spawn(move || {
        ensure_reachable().ok()?;
        let asked: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let more: Vec<&str> = extra.iter().map(String::as_str).collect();
        let units = read_all(&asked, &more).ok()?;
        Some(Look {
            properties: BASE_PROPERTIES.iter().copied().chain(more).map(str::to_owned).collect(),
            patterns: patterns.into_iter().collect(),
            units: units.into_iter().map(|u| (u.id.clone(), u)).collect(),
        })
    }));
}

/// Forgets the look [`look_once`] took (waiting for one under way): the next reads ask
/// the manager.
pub fn forget_look() {
    *look() = None;
}

/// A pattern for every unit of one kind, such as `*.service`: the only patterns a
/// [`look_once`] answers for.
fn is_kind_pattern(pattern: &str) -> bool {
    pattern.strip_prefix("*.").is_some_and(|kind| !kind.is_empty() && kind.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// The pattern of `unit`'s kind, `*.service` for `web.service`.
fn kind_pattern(unit: &str) -> Option<String> {
    unit.rsplit_once('.').map(|(_, kind)| format!("*.{kind}"))
}

/// The state of every unit in `units`, in order: one read of the manager (two
/// when many units are asked for and some that are not loaded have a unit file; none
/// for those the [`look_once`] holds). `extra` names more properties to read (e.g.
/// `MainPID`).
pub fn show(units: &[String], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    let known: Option<BTreeMap<String, UnitState>> = look().as_ref().and_then(|look| {
        let covered = extra.iter().all(|p| look.properties.contains(*p))
            && units.iter().all(|u| kind_pattern(u).is_some_and(|k| look.patterns.contains(&k)));
        covered.then(|| units.iter().filter_map(|u| look.units.get(u).map(|s| (u.clone(), s.clone()))).collect())
    });
    if let Some(by_name) = known {
        return with_not_loaded(units, by_name, extra);
    }
    if units.len() <= BY_PATTERN_ABOVE {
        return show_named(units, extra);
    }
    let patterns: BTreeSet<String> = units.iter().filter_map(|u| kind_pattern(u)).collect();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let by_name = show_all(&patterns, extra)?.into_iter().map(|u| (u.id.clone(), u)).collect();
    with_not_loaded(units, by_name, extra)
}

/// `units` in order, from `loaded` (the units a pattern's answer held) and, for those it
/// does not hold (not loaded), [`not_loaded`].
fn with_not_loaded(
    units: &[String],
    mut loaded: BTreeMap<String, UnitState>,
    extra: &[&str],
) -> Result<Vec<UnitState>, SystemdError> {
    let missing: Vec<String> = units.iter().filter(|u| !loaded.contains_key(*u)).cloned().collect();
    for state in not_loaded(&missing, extra)? {
        loaded.insert(state.id.clone(), state);
    }
    Ok(units
        .iter()
        .map(|u| loaded.get(u).cloned().unwrap_or_else(|| UnitState { id: u.clone(), ..UnitState::default() }))
        .collect())
}

/// Every loaded unit matching `patterns` (such as `*.service`), in one call (none when
/// the [`look_once`] holds them).
pub fn show_all(patterns: &[&str], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    if let Some(look) = look().as_ref()
        && patterns.iter().all(|p| is_kind_pattern(p) && look.patterns.contains(*p))
        && extra.iter().all(|p| look.properties.contains(*p))
    {
        return Ok(look
            .units
            .values()
            .filter(|u| kind_pattern(&u.id).is_some_and(|k| patterns.contains(&k.as_str())))
            .cloned()
            .collect());
    }
    read_all(patterns, extra)
}

/// [`show_all`] asked of the manager: on the bus, or of `systemctl` when the bus cannot
/// answer.
fn read_all(patterns: &[&str], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    match bus::show_all(patterns, extra) {
        Some(states) => Ok(states),
        None => show_all_by_systemctl(patterns, extra),
    }
}

/// [`show_all`] asked of `systemctl --user show --all`, never of the bus.
pub fn show_all_by_systemctl(patterns: &[&str], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    let out = systemctl().arg("show").arg("--all").arg(properties(extra)).args(patterns.iter().copied()).run()?;
    Ok(parse_show(&out.stdout))
}

fn properties(extra: &[&str]) -> String {
    let mut props: Vec<&str> = BASE_PROPERTIES.to_vec();
    props.extend_from_slice(extra);
    format!("--property={}", props.join(","))
}

/// The state of units known not to be loaded (absent from a pattern's answer): those
/// with no unit file in the user manager's search path are not found, without asking
/// (systemd takes about a millisecond a name to say so); the others are asked by name
/// (systemd loads them to answer).
fn not_loaded(units: &[String], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    // One listing of each folder of the search path, not a stat per unit and folder.
    let files = user_unit_dirs().map(UnitFiles::list);
    let (on_disk, nowhere): (Vec<String>, Vec<String>) =
        units.iter().cloned().partition(|u| files.as_ref().is_none_or(|files| files.has(u)));
    let mut states = show_named(&on_disk, extra)?;
    states.extend(nowhere.into_iter().map(|id| UnitState {
        id,
        load_state: "not-found".into(),
        active_state: "inactive".into(),
        sub_state: "dead".into(),
        ..UnitState::default()
    }));
    Ok(states)
}

/// The names in the folders of a unit search path (files and links alike).
struct UnitFiles(BTreeSet<std::ffi::OsString>);

impl UnitFiles {
    fn list(dirs: &[std::path::PathBuf]) -> UnitFiles {
        let entries = dirs.iter().filter_map(|dir| std::fs::read_dir(dir).ok()).flatten().flatten();
        UnitFiles(entries.map(|entry| entry.file_name()).collect())
    }

    /// Whether `unit` (or its template, for `name@instance.kind`) has a file, or a
    /// link, in one of the folders.
    fn has(&self, unit: &str) -> bool {
        let template = unit
            .split_once('@')
            .and_then(|(name, rest)| rest.rsplit_once('.').map(|(_, kind)| format!("{name}@.{kind}")));
        self.0.contains(std::ffi::OsStr::new(unit))
            || template.is_some_and(|t| self.0.contains(std::ffi::OsStr::new(&t)))
    }
}

/// The user manager's unit search path (systemd.unit(5)), from this process's
/// environment; `None` when it cannot be known here (`$SYSTEMD_UNIT_PATH` set, no HOME
/// or no runtime folder): then every unit is asked.
fn user_unit_dirs() -> Option<&'static [std::path::PathBuf]> {
    static DIRS: std::sync::OnceLock<Option<Vec<std::path::PathBuf>>> = std::sync::OnceLock::new();
    DIRS.get_or_init(|| {
        use std::path::PathBuf;
        if std::env::var_os("SYSTEMD_UNIT_PATH").is_some() {
            return None;
        }
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = var("HOME")?;
        let runtime = var("XDG_RUNTIME_DIR")?;
        let config = var("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config"));
        let data = var("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share"));
        let list = |name: &str, default: &str| -> Vec<PathBuf> {
            let value = std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_owned());
            value.split(':').filter(|d| !d.is_empty()).map(|d| Path::new(d).join("systemd/user")).collect()
        };
        let mut dirs = vec![
            config.join("systemd/user.control"),
            runtime.join("systemd/user.control"),
            runtime.join("systemd/transient"),
            runtime.join("systemd/generator.early"),
            config.join("systemd/user"),
        ];
        dirs.extend(list("XDG_CONFIG_DIRS", "/etc/xdg"));
        dirs.extend(["/etc/systemd/user".into(), runtime.join("systemd/user"), "/run/systemd/user".into()]);
        dirs.extend([runtime.join("systemd/generator"), data.join("systemd/user")]);
        dirs.extend(list("XDG_DATA_DIRS", "/usr/local/share:/usr/share"));
        dirs.extend(["/usr/local/lib/systemd/user".into(), "/usr/lib/systemd/user".into(), "/lib/systemd/user".into()]);
        dirs.push(runtime.join("systemd/generator.late"));
        Some(dirs)
    })
    .as_deref()
}

/// `systemctl --user show` naming each unit (its answer read from the bus when it can).
fn show_named(units: &[String], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
    if units.is_empty() {
        return Ok(Vec::new());
    }
    match bus::show(units, extra) {
        Some(states) => Ok(states),
        None => show_by_systemctl(units, extra),
    }
}

/// The state of each of `units`, asked of `systemctl --user show` by name, never of the
/// bus.
pub fn show_by_systemctl(units: &[String], extra: &[&str]) -> Result<Vec<UnitState>, SystemdError> {
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
    forget_look();
    systemctl().arg(verb).args(units.iter().cloned()).run()?;
    Ok(())
}

/// How long [`wait_settled`] waits at most for the units it watches.
const SETTLE_DEADLINE: Duration = Duration::from_secs(5);

/// How long a service must have stayed up, without a restart, before it counts as
/// running: systemd calls a service active as soon as its process is forked (or has
/// said it is ready), and one that dies right after starting shows active for a moment.
const STAY_UP: Duration = Duration::from_millis(600);

/// The first pause between two looks while a unit is on its way (activating,
/// deactivating, not answering), doubled after each look up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(20);
const LONGEST_PAUSE: Duration = Duration::from_millis(200);

/// What [`wait_settled`] reads of every unit besides what its caller asks for.
const SETTLE_PROPERTIES: &[&str] = &["Type", "NRestarts", "ActiveEnterTimestampMonotonic"];

/// The state of `names` once the units just started or restarted (`touched`) have
/// settled, waiting at most a few seconds; one `show` call per look. A touched unit has
/// settled when it is failed or inactive, when it is active and cannot die right after
/// starting (a timer, a socket, a oneshot service that has finished), or when it is a
/// service that has stayed active for [`STAY_UP`] since it was started, with no restart
/// in between (a crash and an automatic restart start that time again). While a unit is
/// on its way (activating, an automatic restart pending), the looks come every 20 ms at
/// first, then less often, up to every 200 ms; while only the time a service must stay
/// up is left, there is no look until it ends. At the deadline, the states are as they
/// are.
pub fn wait_settled(names: &[String], touched: &[String]) -> Vec<UnitState> {
    wait_settled_with(names, touched, &[])
}

/// [`wait_settled`], reading the `extra` properties too (as [`show`] does).
pub fn wait_settled_with(names: &[String], touched: &[String], extra: &[&str]) -> Vec<UnitState> {
    let mut props: Vec<&str> = extra.to_vec();
    if !touched.is_empty() {
        props.extend(SETTLE_PROPERTIES.iter().filter(|p| !extra.contains(p)));
    }
    let mut watch = Watch::new(Instant::now());
    let deadline = watch.started + SETTLE_DEADLINE;
    let mut pause = FIRST_PAUSE;
    loop {
        let states = show(names, &props).unwrap_or_default();
        let now = Instant::now();
        let Some(next) = watch.next_look(touched, &states, now, pause) else {
            return states;
        };
        if now >= deadline {
            return states;
        }
        std::thread::sleep(next.min(deadline).saturating_duration_since(now));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// Where one touched unit stands at a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Failed, inactive, or up for good.
    Settled,
    /// A service that is up, but not for long enough yet: settled at that instant if it
    /// stays up.
    UpUntil(Instant),
    /// On its way (activating, deactivating, an automatic restart pending), or not in
    /// the answer.
    Moving,
}

/// What [`wait_settled`] remembers from one look to the next: since when each service
/// has been seen up in its current activation.
#[derive(Debug)]
struct Watch {
    /// When the wait began: the touched units were started before it.
    started: Instant,
    /// For each service seen active: the `ActiveEnterTimestampMonotonic` of that
    /// activation, and since when it counts as up.
    up: BTreeMap<String, (String, Instant)>,
}

impl Watch {
    fn new(started: Instant) -> Watch {
        Watch { started, up: BTreeMap::new() }
    }

    /// When to look again, or `None` when every touched unit has settled. `pause` is the
    /// wait while a unit is on its way.
    fn next_look(
        &mut self,
        touched: &[String],
        states: &[UnitState],
        now: Instant,
        pause: Duration,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for unit in touched {
            let at = match self.standing(unit, states.iter().find(|s| s.id == *unit), now) {
                Standing::Settled => continue,
                Standing::UpUntil(at) => at,
                Standing::Moving => now + pause,
            };
            next = Some(next.map_or(at, |n| n.min(at)));
        }
        next
    }

    fn standing(&mut self, unit: &str, state: Option<&UnitState>, now: Instant) -> Standing {
        let Some(state) = state else { return Standing::Moving };
        match state.active_state.as_str() {
            "active" if !may_die_after_start(state) => Standing::Settled,
            "active" => {
                let entered = state.properties.get("ActiveEnterTimestampMonotonic").cloned().unwrap_or_default();
                // systemd counts the automatic restarts since the last start it was asked for.
                let restarted = state.properties.get("NRestarts").is_some_and(|n| !n.is_empty() && n != "0");
                let since = match self.up.get(unit) {
                    Some((seen, since)) if *seen == entered => *since,
                    // Up again since the last look: it died and was restarted.
                    Some(_) => now,
                    // Already restarted before the first look.
                    None if restarted => now,
                    // Up since it was started, before the wait began.
                    None => self.started,
                };
                self.up.insert(unit.to_owned(), (entered, since));
                let until = since + STAY_UP;
                if now >= until { Standing::Settled } else { Standing::UpUntil(until) }
            }
            "failed" | "inactive" => {
                self.up.remove(unit);
                Standing::Settled
            }
            _ => {
                self.up.remove(unit);
                Standing::Moving
            }
        }
    }
}

/// Can this active unit still die of a failed start? Any service but a oneshot one
/// (which is active only once its commands have finished); not a timer, socket, path
/// or target.
fn may_die_after_start(state: &UnitState) -> bool {
    state.id.ends_with(".service") && state.properties.get("Type").is_none_or(|t| t != "oneshot")
}

/// `systemctl --user daemon-reload`.
pub fn daemon_reload() -> Result<(), SystemdError> {
    forget_look();
    systemctl().arg("daemon-reload").run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_file_is_found_by_its_name_or_its_template() -> Result<(), std::io::Error> {
        let dir = tempfile::tempdir()?;
        let dirs = [dir.path().join("none"), dir.path().to_path_buf()];
        crate::fsx::write_atomic(&dir.path().join("web.service"), b"", None)?;
        crate::fsx::write_atomic(&dir.path().join("worker@.service"), b"", None)?;
        std::os::unix::fs::symlink("/nowhere", dir.path().join("alias.service"))?;
        let files = UnitFiles::list(&dirs);
        for there in ["web.service", "worker@1.service", "alias.service"] {
            assert!(files.has(there), "{there}");
        }
        for absent in ["other.service", "web.timer", "worker.service", "web@1.service"] {
            assert!(!files.has(absent), "{absent}");
        }
        Ok(())
    }

    #[test]
    fn only_patterns_of_a_whole_kind_are_looked_at_once() {
        assert!(is_kind_pattern("*.service") && is_kind_pattern("*.timer"));
        for other in ["pi-*.service", "*", "*.", "web.service", "*.ser*"] {
            assert!(!is_kind_pattern(other), "{other}");
        }
        assert_eq!(kind_pattern("web.service").as_deref(), Some("*.service"));
        assert_eq!(kind_pattern("nodot"), None);
    }

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

    fn unit(id: &str, active: &str, props: &[(&str, &str)]) -> UnitState {
        UnitState {
            id: id.to_owned(),
            load_state: "loaded".to_owned(),
            active_state: active.to_owned(),
            properties: props.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..UnitState::default()
        }
    }

    fn simple(active: &str, entered: &str, restarts: &str) -> UnitState {
        unit(
            "web.service",
            active,
            &[("Type", "simple"), ("ActiveEnterTimestampMonotonic", entered), ("NRestarts", restarts)],
        )
    }

    #[test]
    fn a_timer_a_finished_oneshot_and_a_failed_or_stopped_unit_settle_at_once() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0);
        for state in [
            unit("backup.timer", "active", &[]),
            unit("job.service", "active", &[("Type", "oneshot")]),
            simple("failed", "0", "0"),
            simple("inactive", "0", "0"),
        ] {
            assert_eq!(watch.standing(&state.id.clone(), Some(&state), t0), Standing::Settled, "{state:?}");
        }
        let names = ["backup.timer".to_owned(), "job.service".to_owned()];
        let states = [unit("backup.timer", "active", &[]), unit("job.service", "active", &[("Type", "oneshot")])];
        assert_eq!(watch.next_look(&names, &states, t0, FIRST_PAUSE), None);
    }

    #[test]
    fn a_service_counts_as_running_once_it_stayed_up_since_its_start() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0);
        let up = simple("active", "100", "0");
        assert_eq!(watch.standing("web.service", Some(&up), t0), Standing::UpUntil(t0 + STAY_UP));
        let names = ["web.service".to_owned()];
        // Nothing to look at until then: the next look is when the time is up.
        assert_eq!(watch.next_look(&names, std::slice::from_ref(&up), t0, FIRST_PAUSE), Some(t0 + STAY_UP));
        assert_eq!(watch.standing("web.service", Some(&up), t0 + STAY_UP), Standing::Settled);
    }

    #[test]
    fn a_service_that_died_and_was_restarted_must_stay_up_again() {
        let t0 = Instant::now();
        let mut watch = Watch::new(t0);
        assert_eq!(
            watch.standing("web.service", Some(&simple("active", "100", "0")), t0),
            Standing::UpUntil(t0 + STAY_UP)
        );
        // Seen up again in a new activation at the next look: the time starts again.
        let later = t0 + STAY_UP;
        assert_eq!(
            watch.standing("web.service", Some(&simple("active", "900", "1")), later),
            Standing::UpUntil(later + STAY_UP)
        );
        // Between two restarts, it is on its way.
        let state = simple("activating", "900", "1");
        assert_eq!(watch.standing("web.service", Some(&state), later), Standing::Moving);
        let names = ["web.service".to_owned()];
        assert_eq!(watch.next_look(&names, &[state], later, FIRST_PAUSE), Some(later + FIRST_PAUSE));
        // Restarted before the first look of another wait: counted from that look.
        let mut fresh = Watch::new(t0);
        let seen = t0 + Duration::from_millis(20);
        assert_eq!(
            fresh.standing("web.service", Some(&simple("active", "900", "2")), seen),
            Standing::UpUntil(seen + STAY_UP)
        );
        // Not in the answer: looked for again.
        assert_eq!(fresh.standing("web.service", None, seen), Standing::Moving);
    }

    #[test]
    fn keeps_every_environment_file() {
        let text = "Id=a.service\nEnvironmentFiles=/h/x.env (ignore_errors=no)\nEnvironmentFiles=/etc/y.env (ignore_errors=yes)\n";
        let units = parse_show(text);
        assert_eq!(units[0].env_files, [std::path::PathBuf::from("/h/x.env"), std::path::PathBuf::from("/etc/y.env")]);
    }
}
