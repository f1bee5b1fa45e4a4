//! Dependency installs inside the repo (`bun install`): due when the installed tree is
//! missing, or when the lockfile changed since the last successful install. The
//! lockfile as it was then is kept in the state folder (`deps/NAME.lock`), so the
//! comparison needs no hashing and survives any tool version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::engine::{Ctx, Difference, EngineError, Observed, Resource};
use common::exec::Cmd;
use common::manifest::{CommandSpec, Dep, ItemId};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// One dependency install.
#[derive(Debug, Clone)]
pub struct DepInstall {
    pub id: ItemId,
    pub name: String,
    pub run: CommandSpec,
    /// Where the command runs.
    pub dir: PathBuf,
    pub lockfile: Option<PathBuf>,
    pub installed: Option<PathBuf>,
    pub timeout: Duration,
}

impl DepInstall {
    pub fn from_manifest(dep: &Dep, repo: &Path) -> DepInstall {
        DepInstall {
            id: ItemId::new("dep", dep.name.as_str()),
            name: dep.name.as_str().to_owned(),
            run: dep.run.clone(),
            dir: dep.dir.as_ref().map_or_else(|| repo.to_path_buf(), |d| d.path().to_path_buf()),
            lockfile: dep.lockfile.as_ref().map(|f| f.path().to_path_buf()),
            installed: dep.installed.as_ref().map(|f| f.path().to_path_buf()),
            timeout: dep.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
        }
    }

    fn stamp(&self) -> String {
        format!("deps/{}.lock", self.name)
    }

    fn lockfile_now(&self) -> Result<Option<Vec<u8>>, EngineError> {
        let Some(lockfile) = &self.lockfile else { return Ok(Some(Vec::new())) };
        match std::fs::read(lockfile) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io("read", lockfile)(e)),
        }
    }
}

impl Resource for DepInstall {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "dep"
    }
    fn path(&self) -> Option<&Path> {
        Some(&self.dir)
    }

    fn observe(&self, ctx: &Ctx) -> Result<Observed, EngineError> {
        let would = format!("would run `{}` in {}", self.run, self.dir.display());
        if !self.dir.is_dir() {
            return Ok(Observed::Differs(Difference::new(format!(
                "{} does not exist yet; {would}",
                self.dir.display()
            ))));
        }
        if let Some(installed) = &self.installed
            && !installed.exists()
        {
            return Ok(Observed::Differs(Difference::new(format!("{} is missing; {would}", installed.display()))));
        }
        let Some(now) = self.lockfile_now()? else {
            return Ok(Observed::Differs(Difference::new(format!(
                "the lockfile {} is missing; {would} (it writes one)",
                self.lockfile.as_deref().unwrap_or(Path::new("?")).display()
            ))));
        };
        match ctx.state.read(&self.stamp())? {
            None => Ok(Observed::Differs(Difference::new(format!("never installed by pi-bootstrap; {would}")))),
            Some(stamp) if stamp != now => {
                Ok(Observed::Differs(Difference::new(format!("the lockfile changed since the last install; {would}"))))
            }
            Some(_) => Ok(Observed::InSync),
        }
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        Cmd::from_argv(&self.run.argv()).current_dir(&self.dir).timeout(self.timeout).run()?;
        // The install may write or rewrite the lockfile: stamp what it left.
        let now = self.lockfile_now()?.unwrap_or_default();
        ctx.state.write(&self.stamp(), &now)?;
        Ok(())
    }
}
