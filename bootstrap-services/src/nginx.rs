//! nginx sites from the repo. Before anything live changes, the whole configuration is
//! copied to a staging folder (paths into the prefix rewritten to the copy), the new
//! site files are put into the copy, and `nginx -t` checks the copy, includes and all.
//! Only then are the files swapped in and nginx reloaded. When the check fails,
//! nothing live changes and nginx's own message is reported.

use std::fs;
use std::path::{Path, PathBuf};

use common::engine::{self, Ctx, Difference, EngineError, Observed, unified_diff};
use common::exec::Cmd;
use common::fsx;
use common::manifest::{ItemId, Nginx};

/// One site: its file in `sites_available`, and its link in `sites_enabled` when the
/// host enables sites that way.
#[derive(Debug, Clone)]
pub struct Site {
    pub id: ItemId,
    pub source: PathBuf,
    pub available: PathBuf,
    pub enabled: Option<PathBuf>,
}

/// The nginx of the host and the sites to install.
#[derive(Debug, Clone)]
pub struct NginxSites {
    pub prefix: PathBuf,
    pub conf: PathBuf,
    pub sites: Vec<Site>,
}

/// nginx's path: `/usr/sbin` is not on every user's PATH.
pub fn nginx_program() -> String {
    if common::exec::is_installed("nginx") { "nginx".to_owned() } else { "/usr/sbin/nginx".to_owned() }
}

impl NginxSites {
    pub fn from_manifest(nginx: &Nginx) -> NginxSites {
        let sites = nginx
            .sites
            .iter()
            .map(|site| Site {
                id: ItemId::new("nginx", site.name.as_str()),
                source: site.source.path().to_path_buf(),
                available: nginx.sites_available.path().join(site.name.as_str()),
                enabled: nginx.sites_enabled.as_ref().map(|e| e.path().join(site.name.as_str())),
            })
            .collect();
        NginxSites { prefix: nginx.prefix.path().to_path_buf(), conf: nginx.conf.path().to_path_buf(), sites }
    }

    /// What differs for one site.
    pub fn observe(&self, site: &Site) -> Result<Observed, EngineError> {
        let Some(wanted) = engine::read_source(&site.source)? else {
            return Ok(Observed::Differs(engine::awaiting_repo(&site.source)));
        };
        let label = site.available.display().to_string();
        let mut what = Vec::new();
        let mut diff = None;
        match fs::read(&site.available) {
            Ok(now) if now == wanted => {}
            Ok(now) => {
                what.push("differs from the repo".to_owned());
                diff = unified_diff(&label, &now, &wanted);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                what.push("missing".to_owned());
                diff = unified_diff(&label, b"", &wanted);
            }
            Err(e) => return Err(EngineError::io("read", &site.available)(e)),
        }
        if let Some(enabled) = &site.enabled
            && fs::read_link(enabled).ok().as_deref() != Some(site.available.as_path())
        {
            what.push(format!("not enabled ({} -> {})", enabled.display(), site.available.display()));
        }
        Ok(if what.is_empty() {
            Observed::InSync
        } else {
            Observed::Differs(Difference::new(what.join("; ")).with_diff(diff))
        })
    }

    /// Installs the sites that differ: stage, `nginx -t` the staged copy, swap, reload.
    pub fn apply(&self, due: &[&Site], ctx: &Ctx) -> Result<Vec<String>, EngineError> {
        let mut commands = Vec::new();
        let stage = common::staging::scratch(&ctx.state, "nginx")
            .map_err(EngineError::io("create a staging folder for", &self.prefix))?;
        let staged_prefix = stage.path().join("prefix");
        copy_tree(&self.prefix, &staged_prefix, &self.prefix, &staged_prefix)?;
        let in_stage = |live: &Path| -> Result<PathBuf, EngineError> {
            live.strip_prefix(&self.prefix).map(|rel| staged_prefix.join(rel)).map_err(|_| {
                EngineError::Refused(format!(
                    "{} is outside the nginx prefix {}: the configuration cannot be checked as a whole",
                    live.display(),
                    self.prefix.display()
                ))
            })
        };
        for site in due {
            let content = fs::read(&site.source).map_err(EngineError::io("read", &site.source))?;
            let available = in_stage(&site.available)?;
            fsx::write_atomic(&available, &content, Some(0o644)).map_err(EngineError::io("stage", &available))?;
            if let Some(enabled) = &site.enabled {
                let link = in_stage(enabled)?;
                fsx::symlink_atomic(&available, &link).map_err(EngineError::io("stage", &link))?;
            }
        }
        let staged_conf = in_stage(&self.conf)?;
        let test = Cmd::new(nginx_program())
            .args(["-t", "-q", "-p"])
            .arg(staged_prefix.display().to_string())
            .arg("-c")
            .arg(staged_conf.display().to_string());
        let out = test.output()?;
        if !out.success() {
            let message = format!("{}{}", out.stdout, out.stderr)
                .replace(&staged_prefix.display().to_string(), &self.prefix.display().to_string());
            return Err(EngineError::Refused(format!(
                "nginx -t refused the new configuration; nothing live was changed:\n{}",
                message.trim()
            )));
        }
        commands.push(format!("{} (on a staged copy of {})", test, self.prefix.display()));
        // Written down before anything live changes: a run that dies between the swap
        // and the reload leaves the reload due, and the next run does it.
        ctx.state.write_json(RELOAD_DUE, &true)?;
        for site in due {
            let content = fs::read(&site.source).map_err(EngineError::io("read", &site.source))?;
            if site.available.exists() {
                ctx.state.keep(&site.available)?;
            }
            write_live(&site.available, &content)?;
            if let Some(enabled) = &site.enabled {
                if fs::symlink_metadata(enabled).is_ok() {
                    ctx.state.keep(enabled)?;
                }
                link_live(&site.available, enabled)?;
            }
        }
        common::sys::crash_point("after-nginx-swap");
        self.reload(ctx, &mut commands)?;
        Ok(commands)
    }

    /// Is a reload due from a run that died after it changed the sites?
    pub fn reload_due(&self, ctx: &Ctx) -> Result<bool, EngineError> {
        Ok(ctx.state.read_json::<bool>(RELOAD_DUE)?.unwrap_or(false))
    }

    /// `nginx -s reload`, then the journal's due reload forgotten.
    pub fn reload(&self, ctx: &Ctx, commands: &mut Vec<String>) -> Result<(), EngineError> {
        let reload = Cmd::new(nginx_program())
            .arg("-p")
            .arg(self.prefix.display().to_string())
            .arg("-c")
            .arg(self.conf.display().to_string())
            .args(["-s", "reload"]);
        let reload = if needs_root(&self.prefix) { reload.privileged() } else { reload };
        commands.push(reload.to_string());
        reload.run().map_err(|e| {
            EngineError::Refused(format!("the sites are in place, but nginx did not reload (is it running?): {e}"))
        })?;
        ctx.state.remove(RELOAD_DUE)?;
        Ok(())
    }
}

/// The journal of a reload that is due (written before the live sites change).
const RELOAD_DUE: &str = "nginx-reload-due.json";

fn needs_root(path: &Path) -> bool {
    !common::sys::is_root() && fs::metadata(path).is_ok_and(|m| m.permissions().readonly())
}

/// Writes a live file; through `sudo install` when the folder is root's.
fn write_live(path: &Path, content: &[u8]) -> Result<(), EngineError> {
    match fsx::write_atomic(path, content, Some(0o644)) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !common::sys::is_root() => {
            let tmp = tempfile::NamedTempFile::new().map_err(EngineError::io("write", path))?;
            fsx::write_atomic(tmp.path(), content, None).map_err(EngineError::io("write", tmp.path()))?;
            Cmd::new("install")
                .args(["-m", "0644"])
                .arg(tmp.path().display().to_string())
                .arg(path.display().to_string())
                .privileged()
                .run()?;
            Ok(())
        }
        other => other.map_err(EngineError::io("write", path)),
    }
}

/// Makes a live symlink; through `sudo ln` when the folder is root's.
fn link_live(to: &Path, link: &Path) -> Result<(), EngineError> {
    match fsx::symlink_atomic(to, link) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied && !common::sys::is_root() => {
            Cmd::new("ln")
                .args(["-sfn"])
                .arg(to.display().to_string())
                .arg(link.display().to_string())
                .privileged()
                .run()?;
            Ok(())
        }
        other => other.map_err(EngineError::io("link", link)),
    }
}

/// Copies the configuration tree `from` into `to`, rewriting every mention of the live
/// prefix (in files and symlink targets) to the staged one. Logs, pid files and
/// anything that is not a regular file, folder or link are left out.
fn copy_tree(from: &Path, to: &Path, live: &Path, staged: &Path) -> Result<(), EngineError> {
    fs::create_dir_all(to).map_err(EngineError::io("create", to))?;
    let entries = fs::read_dir(from).map_err(EngineError::io("read", from))?;
    let live_text = live.display().to_string();
    let staged_text = staged.display().to_string();
    for entry in entries.flatten() {
        let path = entry.path();
        let dest = to.join(entry.file_name());
        let Ok(meta) = fs::symlink_metadata(&path) else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(EngineError::io("read the link", &path))?;
            let target = PathBuf::from(target.display().to_string().replace(&live_text, &staged_text));
            std::os::unix::fs::symlink(target, &dest).map_err(EngineError::io("stage", &dest))?;
        } else if meta.is_dir() {
            copy_tree(&path, &dest, live, staged)?;
        } else if meta.is_file() && !name.ends_with(".pid") && !name.ends_with(".log") && meta.len() < 4 << 20 {
            let content = fs::read(&path).map_err(EngineError::io("read", &path))?;
            let content = match String::from_utf8(content) {
                Ok(text) => text.replace(&live_text, &staged_text).into_bytes(),
                Err(e) => e.into_bytes(),
            };
            fsx::write_atomic(&dest, &content, None).map_err(EngineError::io("stage", &dest))?;
        }
    }
    Ok(())
}
