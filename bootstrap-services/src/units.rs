//! systemd user units from the repo into `~/.config/systemd/user/`, checked with
//! `systemd-analyze verify --user` before they are installed (one call for every unit a
//! run is about to install, see [`verify_pending`]), and what the step remembers of
//! them: the fingerprint of each service as last started (unit, timers, env file, code)
//! and the restarts that are due.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::engine::{self, Ctx, Difference, EngineError, Observed, Resource, unified_diff};
use common::exec::Cmd;
use common::fsx;
use common::manifest::{ItemId, Manifest, Service};
use common::staging;
use common::state::StateDir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backup_timer::GeneratedUnit;

/// Where user units are installed, under HOME.
pub const USER_UNIT_DIR: &str = ".config/systemd/user";

/// The state file of this step.
const STATE_FILE: &str = "services.json";

/// One unit file (service or timer) from the repo.
#[derive(Debug, Clone)]
pub struct UnitFile {
    pub id: ItemId,
    /// The repo file.
    pub source: PathBuf,
    /// Where it is installed.
    pub target: PathBuf,
    /// The other units of the same service, verified together (a timer and its service).
    pub companions: Vec<PathBuf>,
    /// What [`verify_pending`] found, for `apply`.
    verdict: OnceLock<Verdict>,
}

impl UnitFile {
    fn wanted(&self) -> Result<Vec<u8>, EngineError> {
        fs::read(&self.source).map_err(EngineError::io("read", &self.source))
    }
}

impl Verify for UnitFile {
    fn unit_name(&self) -> String {
        file_name(&self.source)
    }
    fn staged(&self) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        std::iter::once(&self.source)
            .chain(&self.companions)
            .map(|file| Ok((file_name(file), fs::read(file).map_err(EngineError::io("stage", file))?)))
            .collect()
    }
    fn verdict(&self) -> &OnceLock<Verdict> {
        &self.verdict
    }
}

impl Resource for UnitFile {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "unit"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.target)
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        let Some(wanted) = engine::read_source(&self.source)? else {
            return Ok(Observed::Differs(engine::awaiting_repo(&self.source)));
        };
        let now = match fs::read(&self.target) {
            Ok(now) => now,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let diff = unified_diff(&self.target.display().to_string(), b"", &wanted);
                return Ok(Observed::Differs(Difference::new("missing").with_diff(diff)));
            }
            Err(e) => return Err(EngineError::io("read", &self.target)(e)),
        };
        if now == wanted {
            return Ok(Observed::InSync);
        }
        let diff = unified_diff(&self.target.display().to_string(), &now, &wanted);
        Ok(Observed::Differs(Difference::new("differs from the repo").with_diff(diff)))
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        verify(self, ctx)?;
        if self.target.exists() {
            ctx.state.keep(&self.target)?;
        }
        fsx::write_atomic(&self.target, &self.wanted()?, Some(0o644)).map_err(EngineError::io("write", &self.target))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The unit files of every service.
pub fn unit_files(manifest: &Manifest, home: &Path) -> Vec<UnitFile> {
    let dir = home.join(USER_UNIT_DIR);
    let mut files = Vec::new();
    for service in &manifest.services {
        let all: Vec<PathBuf> = std::iter::once(service.unit.path().to_path_buf())
            .chain(service.timers.iter().map(|t| t.path().to_path_buf()))
            .collect();
        for source in &all {
            let name = file_name(source);
            files.push(UnitFile {
                id: ItemId::new("unit", &name),
                source: source.clone(),
                target: dir.join(&name),
                companions: all.iter().filter(|p| *p != source).cloned().collect(),
                verdict: OnceLock::new(),
            });
        }
    }
    files
}

/// What `systemd-analyze verify` said of one unit: `Err` holds the refusal.
pub(crate) type Verdict = Result<(), String>;

/// A unit file the step verifies before it installs it: the repo's, or one it writes
/// for the scheduled backup.
pub(crate) trait Verify {
    /// Its file name, such as `web.service`.
    fn unit_name(&self) -> String;
    /// The files to stage, by name: the unit first, then the units it is verified
    /// beside (a timer and its service).
    fn staged(&self) -> Result<Vec<(String, Vec<u8>)>, EngineError>;
    /// A line of systemd-analyze's answer that does not count against the unit.
    fn excused(&self, _line: &str) -> bool {
        false
    }
    /// Where [`verify_pending`] leaves its verdict for `apply`.
    fn verdict(&self) -> &OnceLock<Verdict>;
}

/// Before the unit files are installed (not under `--check`): one
/// `systemd-analyze verify --user` for every unit file about to be installed (`files`
/// and `generated`, observed to differ by the caller), staged
/// together; each verdict is kept for the unit's `apply`, so a refused unit fails alone,
/// with what systemd said of it, and the others are installed. A unit that cannot be
/// staged with the others (unreadable, or a name another one stages with different
/// content) is verified alone when it is applied, as is every unit when the call cannot
/// run.
pub(crate) fn verify_pending(files: &[&UnitFile], generated: &[&GeneratedUnit], ctx: &Ctx) {
    let mut pending: Vec<&dyn Verify> = Vec::new();
    pending.extend(files.iter().map(|f| *f as &dyn Verify));
    pending.extend(generated.iter().map(|g| *g as &dyn Verify));
    if pending.len() < 2 {
        return;
    }
    if let Ok(verdicts) = verify_together(&pending, ctx) {
        for (unit, verdict) in pending.iter().zip(verdicts) {
            if let Some(verdict) = verdict {
                let _ = unit.verdict().set(verdict);
            }
        }
    }
}

/// The verdict [`verify_pending`] left for `unit`, or `systemd-analyze verify` of it
/// alone, on a staged copy beside its companions.
pub(crate) fn verify(unit: &dyn Verify, ctx: &Ctx) -> Result<(), EngineError> {
    let verdict = match unit.verdict().get() {
        Some(verdict) => verdict.clone(),
        None => verify_together(&[unit], ctx)?.pop().flatten().unwrap_or(Ok(())),
    };
    verdict.map_err(EngineError::Refused)
}

/// One `systemd-analyze verify --user` of `units`, staged in one folder: a verdict for
/// each, `None` for a unit left to be verified alone (it could not be staged with the
/// others). When the call fails, each line of its answer goes to the unit it names;
/// when a line names none of them, or more than one unit has something to say, or a
/// line was excused, those units are verified again one by one, since systemd also
/// warns about units it does not refuse.
fn verify_together(units: &[&dyn Verify], ctx: &Ctx) -> Result<Vec<Option<Verdict>>, EngineError> {
    let first = PathBuf::from(units.first().map(|u| u.unit_name()).unwrap_or_default());
    let stage =
        staging::scratch(&ctx.state, "units").map_err(EngineError::io("create a staging folder for", &first))?;
    let mut content: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut together: Vec<usize> = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let files = match unit.staged() {
            Ok(files) => files,
            Err(e) if units.len() == 1 => return Err(e),
            Err(_) => continue,
        };
        if files.iter().any(|(name, bytes)| content.get(name).is_some_and(|b| b != bytes)) {
            continue;
        }
        for (name, bytes) in files {
            if let Entry::Vacant(slot) = content.entry(name) {
                let dest = stage.path().join(slot.key());
                fsx::write_atomic(&dest, &bytes, None).map_err(EngineError::io("stage", &dest))?;
                slot.insert(bytes);
            }
        }
        together.push(i);
    }
    let mut verdicts: Vec<Option<Verdict>> = vec![None; units.len()];
    if together.is_empty() {
        return Ok(verdicts);
    }
    common::sys::crash_point("units-staged");
    let paths = together.iter().map(|i| stage.path().join(units[*i].unit_name()).display().to_string());
    let out = Cmd::new("systemd-analyze").args(["verify", "--user"]).args(paths).output()?;
    if out.success() {
        for i in &together {
            verdicts[*i] = Some(Ok(()));
        }
        return Ok(verdicts);
    }
    let stage_text = stage.path().display().to_string();
    let said = format!("{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = said.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let names: Vec<String> = together.iter().map(|i| units[*i].unit_name()).collect();
    let shown = |line: &str| line.replace(&stage_text, "…");
    let refused = |lines: &[&str]| {
        let message = lines.iter().map(|l| shown(l)).collect::<Vec<_>>().join("\n");
        format!("systemd-analyze verify refused the unit, nothing was installed:\n{message}")
    };
    if let [only] = together[..] {
        // Alone: every line is about it (or its companions), as systemd said it.
        let rest: Vec<&str> = lines.iter().copied().filter(|l| !units[only].excused(l)).collect();
        let excused_all = !lines.is_empty() && rest.is_empty();
        verdicts[only] = Some(if excused_all { Ok(()) } else { Err(refused(&rest)) });
        return Ok(verdicts);
    }
    let mut by_unit: Vec<Vec<&str>> = vec![Vec::new(); together.len()];
    let mut stray = lines.is_empty();
    let mut excused = false;
    for line in &lines {
        match names.iter().position(|name| names_unit(line, name, &stage_text)) {
            Some(k) if units[together[k]].excused(line) => excused = true,
            Some(k) => by_unit[k].push(line),
            None => stray = true,
        }
    }
    let speaking: Vec<usize> = (0..together.len()).filter(|k| !by_unit[*k].is_empty()).collect();
    let alone: Vec<usize> = match speaking[..] {
        // Only one unit has anything to say: the call failed for it.
        [k] if !stray && !excused => {
            for (j, i) in together.iter().enumerate() {
                verdicts[*i] = Some(if j == k { Err(refused(&by_unit[k])) } else { Ok(()) });
            }
            return Ok(verdicts);
        }
        _ if stray => (0..together.len()).collect(),
        _ => speaking,
    };
    for (j, i) in together.iter().enumerate() {
        verdicts[*i] =
            if alone.contains(&j) { verify_together(&[units[*i]], ctx)?.pop().flatten() } else { Some(Ok(())) };
    }
    Ok(verdicts)
}

/// Does this line of systemd-analyze's answer speak of the unit `name`? It does when it
/// starts with the staged file (`/stage/web.service:4: ...`), with the unit
/// (`web.service: ...`), or with `Unit web.service `.
fn names_unit(line: &str, name: &str, stage: &str) -> bool {
    let starts = |prefix: &str| line.strip_prefix(prefix).and_then(|rest| rest.strip_prefix(name));
    starts(&format!("{stage}/")).is_some_and(|rest| rest.starts_with(':'))
        || starts("").is_some_and(|rest| rest.starts_with(':'))
        || starts("Unit ").is_some_and(|rest| rest.starts_with(' '))
}

/// A digest of everything whose change means a service must restart: its unit and
/// timers, its env file (as a run leaves it), and its code.
pub fn fingerprint(service: &Service, manifest: &Manifest) -> String {
    let mut hash = Sha256::new();
    let mut add = |label: &str, bytes: &[u8]| {
        hash.update(label.as_bytes());
        hash.update([0]);
        hash.update(bytes);
        hash.update([0]);
    };
    add("unit", &fs::read(service.unit.path()).unwrap_or_default());
    for timer in &service.timers {
        add("timer", &fs::read(timer.path()).unwrap_or_default());
    }
    if let Some(env) = service.env_file.as_deref().and_then(|name| manifest.env_file(name)) {
        // As a run leaves it, so `--check` decides restarts from what the run will see.
        let text = crate::env_file::EnvFileResource::from_manifest(env).text_after_run().unwrap_or_default();
        add("env", text.as_bytes());
    }
    let mut code = Vec::new();
    walk(service.source.path(), &mut code);
    code.sort();
    for file in code {
        let label = file.strip_prefix(service.source.path()).unwrap_or(&file).display().to_string();
        add(&label, &fs::read(&file).unwrap_or_default());
    }
    let digest = hash.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The files of a code folder (or the one file), without dependencies and caches.
fn walk(path: &Path, out: &mut Vec<PathBuf>) {
    let Ok(meta) = fs::symlink_metadata(path) else { return };
    if meta.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    if !meta.is_dir() {
        return;
    }
    let Ok(entries) = fs::read_dir(path) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if matches!(name.to_str(), Some("node_modules" | "__pycache__" | ".git")) {
            continue;
        }
        walk(&entry.path(), out);
    }
}

/// What the step remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ServicesState {
    /// The fingerprint of each service when it was last started or restarted.
    pub started: BTreeMap<String, String>,
    /// Services whose restart is due: written before anything changes, cleared once
    /// they restarted, so a run that dies halfway restarts them next time.
    pub restart_due: BTreeSet<String>,
}

impl ServicesState {
    pub fn load(state: &StateDir) -> Result<ServicesState, EngineError> {
        Ok(state.read_json(STATE_FILE)?.unwrap_or_default())
    }

    pub fn save(&self, state: &StateDir) -> Result<(), EngineError> {
        Ok(state.write_json(STATE_FILE, self)?)
    }
}
