//! The scheduled backup: when the manifest declares `backup.schedule`, two user units
//! that pi-bootstrap writes for itself (no repo file), in `~/.config/systemd/user/`:
//!
//! - `pi-bootstrap-backup.service` (`unit:pi-bootstrap-backup.service`): a oneshot
//!   that runs the installed `bootstrap-data backup` (from `common::install::bin_dir`,
//!   where `cargo xtask install` puts it), then `forget` when `backup.keep` is declared
//!   and `verify --if-due` when `backup.verify` is; each with `--manifest` naming the
//!   manifest file; the first that fails stops the rest;
//! - `pi-bootstrap-backup.timer` (`unit:pi-bootstrap-backup.timer`): `OnCalendar=` the
//!   schedule, `Persistent=true` so a run missed while the machine was off happens at
//!   the next boot. The schedule is checked with `systemd-analyze calendar` when the
//!   installed timer is missing or differs (one installed as the manifest gives it was
//!   checked before it was written): a schedule systemd cannot read fails that item,
//!   with its place in the manifest.
//!
//! Both are observed and applied as the repo's unit files are: a diff when they differ,
//! `systemd-analyze verify --user` on a staged copy of the pair before they are
//! installed (in the run's one call for every unit file it installs), a replaced file
//! kept first. The step then enables and starts the timer
//! (`timer:pi-bootstrap-backup`), restarting it only when its unit changed. The item
//! fails while the installed `bootstrap-data` is missing (the timer would fail at every
//! run); the units are written and the timer started all the same, so the backup runs
//! as soon as the binaries are installed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::engine::{Ctx, Difference, EngineError, Observed, Resource, unified_diff};
use common::exec::Cmd;
use common::fsx;
use common::install::{self, BACKUP_UNIT};
use common::manifest::{Backup, ItemId, Manifest};
use common::report::tilde;

use crate::units::{USER_UNIT_DIR, Verdict, Verify, verify};

/// The id of the timer's item: enabled and started.
pub const TIMER_ID: &str = "timer:pi-bootstrap-backup";

/// The binary the backup service runs, in [`install::bin_dir`].
pub const DATA_BINARY: &str = "bootstrap-data";

/// The PATH of the backup service: restic where a user or the system put it.
const SERVICE_PATH: &str = "%h/.local/bin:/usr/local/bin:/usr/bin:/bin";

/// `pi-bootstrap-backup.service`.
pub fn service_unit() -> String {
    format!("{BACKUP_UNIT}.service")
}

/// `pi-bootstrap-backup.timer`.
pub fn timer_unit() -> String {
    format!("{BACKUP_UNIT}.timer")
}

/// The unit files the step writes for the scheduled backup (none without a schedule).
pub fn backup_units(manifest: &Manifest) -> Vec<String> {
    match manifest.backup.as_ref().and_then(|b| b.schedule.as_ref()) {
        Some(_) => vec![service_unit(), timer_unit()],
        None => Vec::new(),
    }
}

/// One word of a systemd command line (`ExecStart=`): as it is when it is plain, else
/// in double quotes with `\`, `"` and control characters escaped, and `%` and `$`
/// doubled so systemd takes them literally (specifiers, variables).
pub fn systemd_word(word: &str) -> String {
    let plain = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@+,".contains(c));
    if plain {
        return word.to_owned();
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The text of `pi-bootstrap-backup.service` for `backup`, run against `manifest_file`.
pub fn render_service(backup: &Backup, manifest_file: &Path) -> String {
    let program = format!("%h/{}/{DATA_BINARY}", install::BIN_DIR);
    let manifest = systemd_word(&manifest_file.display().to_string());
    let mut runs = vec![format!("{program} backup --manifest {manifest}")];
    if backup.keep.is_some() {
        runs.push(format!("{program} forget --manifest {manifest}"));
    }
    if backup.verify.is_some() {
        runs.push(format!("{program} verify --if-due --manifest {manifest}"));
    }
    let exec: String = runs.iter().map(|r| format!("ExecStart={r}\n")).collect();
    format!(
        "# Written by bootstrap-services for `backup.schedule` of the manifest; a change made
# here is replaced at its next run: change the manifest instead.
[Unit]
Description=pi-bootstrap: back up the durable data with restic

[Service]
Type=oneshot
Environment=\"PATH={SERVICE_PATH}\"
{exec}Nice=10
IOSchedulingClass=idle
"
    )
}

/// The text of `pi-bootstrap-backup.timer` for a schedule (systemd calendar syntax).
pub fn render_timer(schedule: &str) -> String {
    let service = service_unit();
    let calendar = schedule.trim().replace('%', "%%");
    format!(
        "# Written by bootstrap-services for `backup.schedule` of the manifest; a change made
# here is replaced at its next run: change the manifest instead.
[Unit]
Description=pi-bootstrap: the scheduled backup ({service})

[Timer]
OnCalendar={calendar}
Persistent=true

[Install]
WantedBy=timers.target
"
    )
}

/// Where the schedule is written in the manifest, checked once with
/// `systemd-analyze calendar`.
#[derive(Debug)]
struct Schedule {
    text: String,
    /// `file:line:col` of the value.
    at: String,
    checked: OnceLock<Result<(), String>>,
}

impl Schedule {
    /// Whether systemd reads the schedule; the answer is remembered for the run.
    fn check(&self) -> Result<(), EngineError> {
        let answer = self.checked.get_or_init(|| {
            let out = Cmd::new("systemd-analyze").args(["calendar", "--"]).arg(self.text.clone()).output();
            match out {
                Ok(out) if out.success() => Ok(()),
                Ok(out) => {
                    let said = format!("{}{}", out.stdout, out.stderr).trim().to_owned();
                    Err(format!(
                        "{}: backup.schedule: systemd cannot read {:?} as a calendar ({said}): give one such as \"daily\" or \"*-*-* 03:00\" (see man systemd.time)",
                        self.at, self.text
                    ))
                }
                Err(e) => Err(format!("{}: backup.schedule: cannot check it with systemd-analyze: {e}", self.at)),
            }
        });
        answer.clone().map_err(EngineError::Refused)
    }
}

/// A unit file the step writes from the manifest (not from the repo).
#[derive(Debug)]
pub struct GeneratedUnit {
    pub id: ItemId,
    /// Where it is installed.
    pub target: PathBuf,
    /// What it must hold.
    pub content: String,
    /// The other unit of the pair (name, content), staged beside it for verification.
    companion: (String, String),
    /// For the timer: the schedule, checked before anything else.
    schedule: Option<Schedule>,
    /// The program its `ExecStart=` runs, installed apart (by `cargo xtask install`):
    /// verification does not hold its absence against the unit.
    program: PathBuf,
    /// Why it cannot be written at all.
    problem: Option<String>,
    /// What `units::verify_pending` found, for `apply`.
    verdict: OnceLock<Verdict>,
}

impl GeneratedUnit {
    fn name(&self) -> String {
        self.target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// Verified on a staged copy, beside its companion. The one complaint
/// `systemd-analyze verify` may make that does not count: the installed program is
/// missing (the timer's item says so).
impl Verify for GeneratedUnit {
    fn unit_name(&self) -> String {
        self.name()
    }
    fn staged(&self) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        Ok(vec![
            (self.name(), self.content.clone().into_bytes()),
            (self.companion.0.clone(), self.companion.1.clone().into_bytes()),
        ])
    }
    fn excused(&self, line: &str) -> bool {
        // Only while the program is really missing: "Command PATH is not executable".
        !runnable(&self.program) && line.contains(&format!("{} is not executable", self.program.display()))
    }
    fn verdict(&self) -> &OnceLock<Verdict> {
        &self.verdict
    }
}

impl Resource for GeneratedUnit {
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
        if let Some(problem) = &self.problem {
            return Err(EngineError::Refused(problem.clone()));
        }
        let wanted = self.content.as_bytes();
        let now = match fs::read(&self.target) {
            // Installed as the manifest gives it: the schedule was checked before it was
            // written, and the timer's own item says whether systemd runs it.
            Ok(now) if now == wanted => return Ok(Observed::InSync),
            Ok(now) => now,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(schedule) = &self.schedule {
                    schedule.check()?;
                }
                let diff = unified_diff(&self.target.display().to_string(), b"", wanted);
                return Ok(Observed::Differs(Difference::new("missing").with_diff(diff)));
            }
            Err(e) => return Err(EngineError::io("read", &self.target)(e)),
        };
        if let Some(schedule) = &self.schedule {
            schedule.check()?;
        }
        let diff = unified_diff(&self.target.display().to_string(), &now, wanted);
        Ok(Observed::Differs(Difference::new("differs from what the manifest's backup section gives").with_diff(diff)))
    }

    fn apply(&self, ctx: &Ctx) -> Result<(), EngineError> {
        verify(self, ctx)?;
        if self.target.exists() {
            ctx.state.keep(&self.target)?;
        }
        fsx::write_atomic(&self.target, self.content.as_bytes(), Some(0o644))
            .map_err(EngineError::io("write", &self.target))
    }
}

/// Is `path` a file someone may run?
fn runnable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The scheduled backup of a manifest: its two units and the timer to run.
#[derive(Debug)]
pub struct BackupTimer {
    /// `timer:pi-bootstrap-backup`.
    pub id: ItemId,
    pub service: GeneratedUnit,
    pub timer: GeneratedUnit,
    /// The installed `bootstrap-data` the service runs.
    pub program: PathBuf,
}

impl BackupTimer {
    /// The scheduled backup, when the manifest declares `backup.schedule`.
    pub fn from_manifest(manifest: &Manifest, home: &Path) -> Option<BackupTimer> {
        let backup = manifest.backup.as_ref()?;
        let schedule = backup.schedule.as_ref()?;
        let dir = home.join(USER_UNIT_DIR);
        let program = install::bin_dir(home).join(DATA_BINARY);
        let service_text = render_service(backup, &manifest.file);
        let timer_text = render_timer(&schedule.value);
        let problem = (!manifest.file.is_absolute()).then(|| {
            format!(
                "the manifest's own path is not known ({:?}), so the backup service cannot name it: load it from a file",
                manifest.file
            )
        });
        let at = format!("{}:{}:{}", manifest.file.display(), schedule.referenced.line(), schedule.referenced.column());
        let unit = |name: String, content: &str, companion: (String, &str), schedule: Option<Schedule>| GeneratedUnit {
            id: ItemId::new("unit", &name),
            target: dir.join(&name),
            content: content.to_owned(),
            companion: (companion.0, companion.1.to_owned()),
            schedule,
            program: program.clone(),
            problem: problem.clone(),
            verdict: OnceLock::new(),
        };
        Some(BackupTimer {
            id: ItemId(TIMER_ID.to_owned()),
            service: unit(service_unit(), &service_text, (timer_unit(), &timer_text), None),
            timer: unit(
                timer_unit(),
                &timer_text,
                (service_unit(), &service_text),
                Some(Schedule { text: schedule.value.trim().to_owned(), at, checked: OnceLock::new() }),
            ),
            program,
        })
    }

    /// Its two unit files, the service first.
    pub fn units(&self) -> [&GeneratedUnit; 2] {
        [&self.service, &self.timer]
    }

    /// What is wrong with the installed program the service runs, with what to do.
    pub fn program_problem(&self, home: &Path) -> Option<String> {
        if runnable(&self.program) {
            return None;
        }
        Some(format!(
            "{} is not installed, so every scheduled backup would fail: run `cargo xtask install` in the pi-bootstrap repo (it copies the step binaries into {})",
            tilde(&self.program, home),
            tilde(&install::bin_dir(home), home)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::manifest::load_str;

    fn manifest(file: &Path, backup_extra: &str) -> Result<Manifest, Box<dyn std::error::Error>> {
        let text = format!(
            "version: 1
repo:
  path: ~/pi-config
  url: https://example.invalid/pi-config.git
backup:
  repository: /srv/restic
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
{backup_extra}"
        );
        Ok(load_str(file, &text, Path::new("/home/me"), &|_| None)?)
    }

    #[test]
    fn words_are_quoted_the_systemd_way() {
        for (word, quoted) in [
            ("/home/me/pi-config/pi-bootstrap.yaml", "/home/me/pi-config/pi-bootstrap.yaml"),
            ("/home/me/my host/pi-bootstrap.yaml", "\"/home/me/my host/pi-bootstrap.yaml\""),
            ("/a/100%/b", "\"/a/100%%/b\""),
            ("/a/$HOME/b", "\"/a/$$HOME/b\""),
            ("/a/\"q\"\\b", "\"/a/\\\"q\\\"\\\\b\""),
            ("/a/it's", "\"/a/it's\""),
            ("", "\"\""),
        ] {
            assert_eq!(systemd_word(word), quoted, "{word}");
        }
    }

    #[test]
    fn the_service_runs_backup_then_forget_and_verify_when_declared() -> Result<(), Box<dyn std::error::Error>> {
        let file = Path::new("/home/me/my host/pi-bootstrap.yaml");
        let only_backup = manifest(file, "  schedule: daily\n")?;
        let text = render_service(only_backup.backup.as_ref().ok_or("no backup")?, &only_backup.file);
        let exec: Vec<&str> = text.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        assert_eq!(
            exec,
            [
                "ExecStart=%h/.local/lib/pi-bootstrap/bin/bootstrap-data backup --manifest \"/home/me/my host/pi-bootstrap.yaml\""
            ]
        );
        assert!(text.contains("\nType=oneshot\n"), "{text}");
        assert!(text.contains("\nEnvironment=\"PATH=%h/.local/bin:/usr/local/bin:/usr/bin:/bin\"\n"), "{text}");

        let all = manifest(
            Path::new("/home/me/pi-config/pi-bootstrap.yaml"),
            "  schedule: '*-*-* 03:00'\n  keep: {daily: 7}\n  verify: {max_age: 8d}\n",
        )?;
        let text = render_service(all.backup.as_ref().ok_or("no backup")?, &all.file);
        let exec: Vec<&str> = text.lines().filter(|l| l.starts_with("ExecStart=")).collect();
        let bin = "%h/.local/lib/pi-bootstrap/bin/bootstrap-data";
        let m = "--manifest /home/me/pi-config/pi-bootstrap.yaml";
        assert_eq!(
            exec,
            [
                format!("ExecStart={bin} backup {m}"),
                format!("ExecStart={bin} forget {m}"),
                format!("ExecStart={bin} verify --if-due {m}")
            ]
        );
        Ok(())
    }

    #[test]
    fn the_timer_catches_up_and_is_wanted_by_the_timers_target() {
        let text = render_timer(" *-*-* 03:00 ");
        assert!(text.contains("\n[Timer]\nOnCalendar=*-*-* 03:00\nPersistent=true\n"), "{text}");
        assert!(text.contains("\n[Install]\nWantedBy=timers.target\n"), "{text}");
    }

    #[test]
    fn no_schedule_no_units() -> Result<(), Box<dyn std::error::Error>> {
        let file = Path::new("/home/me/pi-config/pi-bootstrap.yaml");
        let without = manifest(file, "")?;
        assert!(BackupTimer::from_manifest(&without, Path::new("/home/me")).is_none());
        assert!(backup_units(&without).is_empty());
        let with = manifest(file, "  schedule: daily\n")?;
        let timer = BackupTimer::from_manifest(&with, Path::new("/home/me")).ok_or("no timer")?;
        assert_eq!(timer.timer.id.0, "unit:pi-bootstrap-backup.timer");
        assert_eq!(timer.service.target, Path::new("/home/me/.config/systemd/user/pi-bootstrap-backup.service"));
        assert_eq!(timer.program, Path::new("/home/me/.local/lib/pi-bootstrap/bin/bootstrap-data"));
        assert_eq!(backup_units(&with), ["pi-bootstrap-backup.service", "pi-bootstrap-backup.timer"]);
        Ok(())
    }
}
