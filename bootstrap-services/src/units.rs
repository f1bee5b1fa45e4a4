//! systemd user units from the repo into `~/.config/systemd/user/`, each checked with
//! `systemd-analyze verify --user` before it is installed, and what the step remembers
//! of them: the fingerprint of each service as last started (unit, timers, env file,
//! code) and the restarts that are due.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use common::engine::{self, Ctx, Difference, EngineError, Observed, Resource, unified_diff};
use common::exec::Cmd;
use common::fsx;
use common::manifest::{ItemId, Manifest, Service};
use common::state::StateDir;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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
}

impl UnitFile {
    fn wanted(&self) -> Result<Vec<u8>, EngineError> {
        fs::read(&self.source).map_err(EngineError::io("read", &self.source))
    }

    /// `systemd-analyze verify --user` on a staged copy, with its companions beside it.
    fn verify(&self, ctx: &Ctx) -> Result<(), EngineError> {
        let stage = common::staging::scratch(&ctx.state, "units")
            .map_err(EngineError::io("create a staging folder for", &self.source))?;
        let mut staged = Vec::new();
        for file in std::iter::once(&self.source).chain(&self.companions) {
            let name = file.file_name().unwrap_or_default();
            let dest = stage.path().join(name);
            fs::copy(file, &dest).map_err(EngineError::io("stage", file))?;
            staged.push(dest);
        }
        common::sys::crash_point("units-staged");
        let out =
            Cmd::new("systemd-analyze").args(["verify", "--user"]).arg(staged[0].display().to_string()).output()?;
        if out.success() {
            return Ok(());
        }
        let stage_text = stage.path().display().to_string();
        let message = format!("{}{}", out.stdout, out.stderr).replace(&stage_text, "…").trim().to_owned();
        Err(EngineError::Refused(format!("systemd-analyze verify refused the unit, nothing was installed:\n{message}")))
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
        self.verify(ctx)?;
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
            });
        }
    }
    files
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
