//! Backup freshness: must-back-up paths whose newest snapshot is older than the
//! manifest's `max_age`, or in no snapshot; the last verification of the backup
//! (`data:verify`, when `backup.verify` is declared); and the last scheduled backup
//! (`data:schedule`, when `backup.schedule` is declared).
//!
//! The audit does not talk to restic itself: it takes the report of
//! `bootstrap-data status` through [`BackupStatus`], so the audit and `bootstrap-data
//! status` cannot disagree ([`BootstrapData`]): from the local record of the backup that
//! `bootstrap-data backup`, `restore`, `verify` and `forget` write (no restic), or,
//! when there is none this host can trust and with `--deep`, from the repository;
//! `data:repository` and each path's item say which. A snapshot made by anything else
//! since the record was written (another tool or host name) shows only with `--deep`.
//! The verification's record comes through `bootstrap_data::verify_status` (the state
//! file only). The scheduled backup's units
//! come from one `systemctl --user show` ([`BackupStatus::backup_units`]). Tests of the
//! audit's side (categories, drift, exit code) can put a stand-in in its place.

use std::time::SystemTime;

use common::engine::Ctx;
use common::install::BACKUP_UNIT;
use common::manifest::Manifest;
use common::report::{Item, Report, Status};
use common::systemd::{self, SystemdError, UnitState};

/// The id of the scheduled backup's item.
pub const SCHEDULE_ID: &str = "data:schedule";

/// The properties read of the scheduled backup's units, besides systemd's base ones.
pub const SCHEDULE_PROPERTIES: &[&str] = &["Result", "ExecMainStatus", "LastTriggerUSec"];

/// Where the audit gets backup freshness from: the report of `bootstrap-data status`
/// (`bootstrap_data::status_report`), one item per must-back-up path (`data:path:NAME`,
/// `data:service:NAME`) and the repository (`data:repository`); a path that is stale
/// or in no snapshot is `drift` (or `would_change`).
pub trait BackupStatus: Sync {
    fn status(&self, manifest: &Manifest, ctx: &Ctx) -> Report;

    /// The state of the scheduled backup's units (`pi-bootstrap-backup.service` and
    /// `.timer`, with [`SCHEDULE_PROPERTIES`]), from one read of the manager; why
    /// not, when the user manager cannot be reached.
    fn backup_units(&self) -> Result<Vec<UnitState>, String> {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty()) {
            return Err(SystemdError::NoRuntimeDir.to_string());
        }
        systemd::show(&schedule_units(), SCHEDULE_PROPERTIES).map_err(|e| e.to_string())
    }
}

/// The backup freshness of `bootstrap-data status`, from its library.
#[derive(Debug, Clone, Copy, Default)]
pub struct BootstrapData {
    /// Ask the repository even when the local record of the backup answers (`--deep`).
    pub deep: bool,
}

impl BackupStatus for BootstrapData {
    fn status(&self, manifest: &Manifest, ctx: &Ctx) -> Report {
        bootstrap_data::status_report(manifest, &ctx.home, SystemTime::now(), self.deep)
    }
}

/// The scheduled backup's service and timer.
pub fn schedule_units() -> Vec<String> {
    vec![format!("{BACKUP_UNIT}.service"), format!("{BACKUP_UNIT}.timer")]
}

/// The backup items of the audit: none when the manifest declares no backup.
pub fn backup_items(manifest: &Manifest, ctx: &Ctx, source: &dyn BackupStatus) -> Vec<Item> {
    let Some(backup) = &manifest.backup else { return Vec::new() };
    let mut items: Vec<Item> = source
        .status(manifest, ctx)
        .items
        .into_iter()
        .map(|mut item| {
            if item.status == Status::WouldChange {
                item.status = Status::Drift;
            }
            item
        })
        .collect();
    items.extend(bootstrap_data::verify_status(manifest, &ctx.home, SystemTime::now()));
    if backup.schedule.is_some() {
        items.push(schedule_item(source.backup_units()));
    }
    items
}

/// `data:schedule`: failed when the scheduled backup's last run failed, drift when its
/// timer is not installed, enabled and active, ok otherwise; skipped when the user
/// manager cannot be asked.
pub fn schedule_item(units: Result<Vec<UnitState>, String>) -> Item {
    let [service_name, timer_name] = [format!("{BACKUP_UNIT}.service"), format!("{BACKUP_UNIT}.timer")];
    let it = |status, path: Option<&str>, detail: String| {
        Item::new(SCHEDULE_ID, "schedule", status, detail).at_maybe(path.filter(|p| !p.is_empty()).map(Into::into))
    };
    let units = match units {
        Ok(units) => units,
        Err(why) => {
            return it(
                Status::Skipped,
                None,
                format!("not looked at: the systemd user manager cannot be reached ({why})"),
            );
        }
    };
    let find = |name: &str| units.iter().find(|u| u.id == name).filter(|u| u.exists() && !u.load_state.is_empty());
    let (service, timer) = (find(&service_name), find(&timer_name));
    let Some(timer) = timer else {
        return it(
            Status::Drift,
            None,
            format!(
                "{timer_name} is not installed, though `backup.schedule` is declared: bootstrap-services installs it"
            ),
        );
    };
    let path = Some(timer.fragment_path.as_str());
    let prop = |unit: &UnitState, key: &str| unit.properties.get(key).cloned().unwrap_or_default();
    let last = prop(timer, "LastTriggerUSec");
    let last = if last.is_empty() || last == "n/a" || last == "0" { None } else { Some(last) };
    let timer_ok = timer.is_enabled() && timer.is_active();
    let timer_state = if timer_ok {
        String::new()
    } else {
        format!(
            "; and {timer_name} is {}: systemctl --user enable --now {timer_name} (bootstrap-services does)",
            timer.describe()
        )
    };
    let result = service.map(|s| prop(s, "Result")).unwrap_or_default();
    if let Some(service) = service
        && !result.is_empty()
        && result != "success"
    {
        let status = prop(service, "ExecMainStatus");
        let when = last.as_deref().map(|l| format!(" (started {l})")).unwrap_or_default();
        return it(
            Status::Failed,
            path,
            format!(
                "the last scheduled backup{when} failed: {result}, exit status {}; see journalctl --user -u {service_name}{timer_state}",
                if status.is_empty() { "unknown" } else { &status }
            ),
        );
    }
    if !timer_ok {
        return it(
            Status::Drift,
            path,
            format!(
                "{timer_name} is {}, so no backup runs on schedule: systemctl --user enable --now {timer_name} (bootstrap-services does)",
                timer.describe()
            ),
        );
    }
    let ran = match last {
        Some(last) => format!("the last run, started {last}, succeeded"),
        None => "it has not run yet".to_owned(),
    };
    it(Status::Ok, path, format!("{timer_name} is {}; {ran}", timer.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(id: &str, active: &str, file: &str, props: &[(&str, &str)]) -> UnitState {
        UnitState {
            id: id.into(),
            load_state: "loaded".into(),
            active_state: active.into(),
            sub_state: if active == "active" { "waiting".into() } else { "dead".into() },
            unit_file_state: file.into(),
            fragment_path: format!("/h/.config/systemd/user/{id}"),
            properties: props.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..UnitState::default()
        }
    }

    const LAST: (&str, &str) = ("LastTriggerUSec", "Tue 2026-12-01 03:00:04 UTC");

    #[test]
    fn the_last_scheduled_run_and_the_timer_decide_the_item() {
        let service = |result: &str, status: &str| {
            unit("pi-bootstrap-backup.service", "inactive", "static", &[("Result", result), ("ExecMainStatus", status)])
        };
        let timer = |active: &str, file: &str| unit("pi-bootstrap-backup.timer", active, file, &[LAST]);

        let ok = schedule_item(Ok(vec![service("success", "0"), timer("active", "enabled")]));
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert_eq!(
            ok.detail,
            "pi-bootstrap-backup.timer is enabled, active (waiting); the last run, started Tue 2026-12-01 03:00:04 UTC, succeeded"
        );
        assert_eq!(ok.path.as_deref(), Some(std::path::Path::new("/h/.config/systemd/user/pi-bootstrap-backup.timer")));

        let failed = schedule_item(Ok(vec![service("exit-code", "1"), timer("active", "enabled")]));
        assert_eq!(failed.status, Status::Failed);
        assert!(failed.detail.contains("failed: exit-code, exit status 1"), "{failed:?}");
        assert!(failed.detail.contains("journalctl --user -u pi-bootstrap-backup.service"), "{failed:?}");

        let disabled = schedule_item(Ok(vec![service("success", "0"), timer("inactive", "disabled")]));
        assert_eq!(disabled.status, Status::Drift);
        assert!(disabled.detail.starts_with("pi-bootstrap-backup.timer is disabled, inactive (dead)"), "{disabled:?}");

        let missing = UnitState {
            id: "pi-bootstrap-backup.timer".into(),
            load_state: "not-found".into(),
            ..UnitState::default()
        };
        let absent = schedule_item(Ok(vec![missing]));
        assert_eq!(absent.status, Status::Drift);
        assert!(absent.detail.contains("is not installed"), "{absent:?}");

        let never = schedule_item(Ok(vec![
            service("success", "0"),
            unit("pi-bootstrap-backup.timer", "active", "enabled", &[("LastTriggerUSec", "n/a")]),
        ]));
        assert_eq!(never.status, Status::Ok);
        assert!(never.detail.ends_with("it has not run yet"), "{never:?}");

        let unreachable = schedule_item(Err("XDG_RUNTIME_DIR is not set".into()));
        assert_eq!(unreachable.status, Status::Skipped);
        assert!(unreachable.detail.contains("cannot be reached (XDG_RUNTIME_DIR is not set)"), "{unreachable:?}");
    }
}
