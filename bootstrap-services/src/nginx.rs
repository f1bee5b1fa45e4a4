//! nginx sites from the repo. Before anything live changes, the whole configuration is
//! copied to a staging folder (paths into the prefix rewritten to the copy), the new
//! site files are put into the copy, and `nginx -t` checks the copy, includes and all.
//! Only then are the files swapped in and nginx reloaded. When the check fails,
//! nothing live changes and nginx's own message is reported, its positions in the
//! staged site files told as the repo files and lines they came from (`explain`).
//!
//! `--check` stages and tests the same way (`NginxSites::check` calls the same
//! `test_staged` as the run), so a site a run would refuse is a failure of the check,
//! not a "would change"; the staging folder goes when the test is done, and the check
//! changes nothing else.

use std::fs;
use std::path::{Path, PathBuf};

use common::engine::{self, Ctx, Difference, EngineError, Observed, unified_diff};
use common::exec::Cmd;
use common::fsx;
use common::manifest::{ItemId, Nginx};
use common::report::tilde;

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
        let tested = self.test_staged(due, ctx)?;
        match tested.verdict {
            Ok(test) => commands.push(test),
            Err(message) => {
                return Err(EngineError::Refused(format!(
                    "nginx -t refused the new configuration; nothing live was changed:\n{message}"
                )));
            }
        }
        // Written down before anything live changes: a run that dies between the swap
        // and the reload leaves the reload due, and the next run does it.
        ctx.state.write_json(RELOAD_DUE, &true)?;
        // What was tested goes in, even if a repo file changed since.
        for (site, content) in due.iter().zip(&tested.contents) {
            if site.available.exists() {
                ctx.state.keep(&site.available)?;
            }
            write_live(&site.available, content)?;
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

    /// What a run would find when it tests the configuration with `due` installed
    /// (the same staging and test as [`NginxSites::apply`] runs before anything live
    /// changes): refused, with nginx's message, when `nginx -t` refuses it. Changes
    /// nothing: the staging folder is removed, and so are the folders of the state
    /// folder made for it. Nothing is tested while nginx, its prefix or a site's repo
    /// file is not there yet (a fresh host: the steps before this one bring them, and
    /// the run tests then).
    pub fn check(&self, due: &[&Site], ctx: &Ctx) -> Result<(), EngineError> {
        let testable = !due.is_empty()
            && self.prefix.is_dir()
            && common::exec::is_installed(&nginx_program())
            && due.iter().all(|site| site.source.is_file());
        if !testable {
            return Ok(());
        }
        let made = missing_folders(&ctx.state.file(common::staging::TMP));
        let tested = self.test_staged(due, ctx);
        for dir in made {
            // Only the empty folders this check made: anything another run put there stays.
            let _ = fs::remove_dir(dir);
        }
        match tested?.verdict {
            Ok(_) => Ok(()),
            Err(message) => Err(EngineError::Refused(format!(
                "nginx -t refused the new configuration, so a run would change nothing live:\n{message}"
            ))),
        }
    }

    /// The configuration as it would be with `due` installed, staged in a folder of the
    /// state folder named for this process (the whole prefix copied, paths into it
    /// rewritten to the copy, each due site's repo file put in its place), and `nginx -t`
    /// run on the copy. The staging folder is gone when this returns.
    fn test_staged(&self, due: &[&Site], ctx: &Ctx) -> Result<Tested, EngineError> {
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
        // Where each due site is in the copy, and the repo file it is staged from.
        let mut sources: Vec<(String, String)> = Vec::new();
        let mut contents = Vec::new();
        for site in due {
            let content = fs::read(&site.source).map_err(EngineError::io("read", &site.source))?;
            let repo_file = tilde(&site.source, &ctx.home);
            let available = in_stage(&site.available)?;
            fsx::write_atomic(&available, &content, Some(0o644)).map_err(EngineError::io("stage", &available))?;
            sources.push((available.display().to_string(), repo_file.clone()));
            if let Some(enabled) = &site.enabled {
                let link = in_stage(enabled)?;
                fsx::symlink_atomic(&available, &link).map_err(EngineError::io("stage", &link))?;
                sources.push((link.display().to_string(), repo_file));
            }
            contents.push(content);
        }
        let staged_conf = in_stage(&self.conf)?;
        let test = Cmd::new(nginx_program())
            .args(["-t", "-q", "-p"])
            .arg(staged_prefix.display().to_string())
            .arg("-c")
            .arg(staged_conf.display().to_string());
        let out = test.output()?;
        let verdict = if out.success() {
            Ok(format!("{} (on a staged copy of {})", test, self.prefix.display()))
        } else {
            let said: Vec<&str> = out.stdout.lines().chain(out.stderr.lines()).collect();
            let live_prefix = self.prefix.display().to_string();
            Err(explain(&said.join("\n"), &staged_prefix.display().to_string(), &live_prefix, &sources))
        };
        Ok(Tested { contents, verdict })
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

/// A configuration staged and tested (`NginxSites::test_staged`).
struct Tested {
    /// Each due site's repo file as it was staged and tested, in the order of the due
    /// sites: what the swap puts in place.
    contents: Vec<Vec<u8>>,
    /// The test as it ran when nginx accepted the configuration; nginx's message,
    /// `explain`ed, when it refused it.
    verdict: Result<String, String>,
}

/// The folders that making `dir` would create: `dir` and its missing parents, deepest
/// first.
fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect()
}

/// nginx's complaint about a staged configuration, told in the host's terms. A
/// position in a staged site file (`STAGED/sites-enabled/web:3`) becomes the position
/// in the repo file it was staged from (`~/pi-config/nginx/web.conf:3`: the same line,
/// since a due site is staged exactly as the repo has it); `sources` pairs each staged
/// path with its repo file. Any other mention of the staged prefix becomes the live
/// prefix. The time and process that nginx puts before a line it logs
/// (`2026/01/02 03:04:05 [emerg] 12#12: ...`) give way to `nginx: [emerg] ...`, as
/// nginx writes it before it has an error log. nginx's own words are kept.
fn explain(said: &str, staged_prefix: &str, live_prefix: &str, sources: &[(String, String)]) -> String {
    let lines: Vec<String> = said
        .lines()
        .map(|line| {
            let line = without_log_prefix(line).unwrap_or_else(|| line.to_owned());
            at_repo_lines(&line, sources).replace(staged_prefix, live_prefix)
        })
        .collect();
    lines.join("\n").trim().to_owned()
}

/// `nginx: [LEVEL] MESSAGE` for a line nginx logged as `YYYY/MM/DD HH:MM:SS [LEVEL]
/// PID#TID: MESSAGE`; `None` for any other line.
fn without_log_prefix(line: &str) -> Option<String> {
    let (stamp, rest) = line.split_at_checked(19)?;
    let shape = stamp.bytes().enumerate().all(|(i, b)| match i {
        4 | 7 => b == b'/',
        10 => b == b' ',
        13 | 16 => b == b':',
        _ => b.is_ascii_digit(),
    });
    let (level, rest) = rest.strip_prefix(" [")?.split_once("] ")?;
    let (process, message) = rest.split_once(": ")?;
    let process_shape = process
        .split_once('#')
        .is_some_and(|(pid, tid)| [pid, tid].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())));
    (shape && process_shape && level.bytes().all(|b| b.is_ascii_lowercase()))
        .then(|| format!("nginx: [{level}] {message}"))
}

/// `line` with every `STAGED:LINE` of `sources` written `REPO:LINE`. A staged path
/// counts only followed by `:` and a digit, so `.../web` is not found in `.../web2:4`.
fn at_repo_lines(line: &str, sources: &[(String, String)]) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    'scan: while !rest.is_empty() {
        for (staged, repo) in sources {
            if let Some(after) = rest.strip_prefix(staged.as_str())
                && after.strip_prefix(':').is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            {
                out.push_str(repo);
                rest = after;
                continue 'scan;
            }
        }
        let mut chars = rest.chars();
        out.extend(chars.next());
        rest = chars.as_str();
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    const STAGED: &str = "/home/pi/.local/state/pi-bootstrap/tmp/nginx.41.Xy7/prefix";
    const LIVE: &str = "/etc/nginx";

    /// The web site, staged from `~/pi-config/nginx/web.conf`, enabled through a link.
    fn web() -> Vec<(String, String)> {
        vec![
            (format!("{STAGED}/sites-available/web"), "~/pi-config/nginx/web.conf".to_owned()),
            (format!("{STAGED}/sites-enabled/web"), "~/pi-config/nginx/web.conf".to_owned()),
        ]
    }

    #[test]
    fn a_position_in_a_staged_site_is_told_as_its_repo_file_and_line() {
        let said = format!(
            "2026/12/01 12:36:35 [emerg] 25606#25606: unknown directive \"foo\" in {STAGED}/sites-enabled/web:3\n\
             nginx: configuration file {STAGED}/nginx.conf test failed\n"
        );
        assert_eq!(
            explain(&said, STAGED, LIVE, &web()),
            "nginx: [emerg] unknown directive \"foo\" in ~/pi-config/nginx/web.conf:3\n\
             nginx: configuration file /etc/nginx/nginx.conf test failed"
        );
    }

    #[test]
    fn a_position_in_the_site_file_itself_maps_too() {
        let said =
            format!("nginx: [emerg] unexpected end of file, expecting \"}}\" in {STAGED}/sites-available/web:14");
        assert_eq!(
            explain(&said, STAGED, LIVE, &web()),
            "nginx: [emerg] unexpected end of file, expecting \"}\" in ~/pi-config/nginx/web.conf:14"
        );
    }

    #[test]
    fn a_file_not_staged_from_the_repo_is_named_by_its_live_path() {
        let said = format!(
            "nginx: [emerg] unknown directive \"x\" in {STAGED}/sites-enabled/web2:4\n\
             nginx: [emerg] duplicate listen options for 127.0.0.1:80 in {STAGED}/nginx.conf:12\n\
             nginx: [emerg] open() \"{STAGED}/sites-enabled/web\" failed (13: Permission denied)"
        );
        assert_eq!(
            explain(&said, STAGED, LIVE, &web()),
            "nginx: [emerg] unknown directive \"x\" in /etc/nginx/sites-enabled/web2:4\n\
             nginx: [emerg] duplicate listen options for 127.0.0.1:80 in /etc/nginx/nginx.conf:12\n\
             nginx: [emerg] open() \"/etc/nginx/sites-enabled/web\" failed (13: Permission denied)",
            "a longer name, the main file and a path without a line are not the repo's"
        );
    }

    #[test]
    fn several_sites_each_keep_their_own_repo_file() {
        let mut sources = web();
        sources.push((format!("{STAGED}/sites-available/api"), "~/pi-config/nginx/api.conf".to_owned()));
        let said = format!(
            "nginx: [emerg] \"proxy_pass\" directive is duplicate in {STAGED}/sites-available/api:7\n\
             nginx: [warn] conflicting server name \"x\" on 0.0.0.0:80, ignored in {STAGED}/sites-enabled/web:2"
        );
        assert_eq!(
            explain(&said, STAGED, LIVE, &sources),
            "nginx: [emerg] \"proxy_pass\" directive is duplicate in ~/pi-config/nginx/api.conf:7\n\
             nginx: [warn] conflicting server name \"x\" on 0.0.0.0:80, ignored in ~/pi-config/nginx/web.conf:2"
        );
    }

    #[test]
    fn only_the_log_prefix_of_nginx_is_taken_off() {
        assert_eq!(
            without_log_prefix("2026/12/01 12:36:35 [emerg] 7#7: host not found in upstream \"a\" in /x:3").as_deref(),
            Some("nginx: [emerg] host not found in upstream \"a\" in /x:3")
        );
        assert_eq!(without_log_prefix("nginx: [emerg] unknown directive \"foo\""), None);
        assert_eq!(without_log_prefix("2026/12/01 12:36:35 something else: entirely"), None);
        assert_eq!(without_log_prefix("2026-12-01 12:36:35 [emerg] 7#7: dashes"), None);
        assert_eq!(without_log_prefix("2026/12/01 12:36:35 [emerg] seven: no pid"), None);
        assert_eq!(without_log_prefix("short"), None);
        assert_eq!(without_log_prefix("2026/12/01 12:36:3é [emerg] 7#7: x"), None);
    }

    #[test]
    fn the_folders_a_staging_folder_would_make_are_the_missing_ones() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let tmp = dir.path().join(".local/state/pi-bootstrap/tmp");
        assert_eq!(
            missing_folders(&tmp),
            vec![
                tmp.clone(),
                dir.path().join(".local/state/pi-bootstrap"),
                dir.path().join(".local/state"),
                dir.path().join(".local"),
            ]
        );
        fs::create_dir_all(dir.path().join(".local/state"))?;
        assert_eq!(missing_folders(&tmp), vec![tmp.clone(), dir.path().join(".local/state/pi-bootstrap")]);
        fs::create_dir_all(&tmp)?;
        assert_eq!(missing_folders(&tmp), Vec::<PathBuf>::new());
        Ok(())
    }
}
