//! What the services step does to each service, decided apart from doing it: from what
//! it observed (is it running, did its unit change, does it wait for its data) and
//! what it remembers (the fingerprint it was last started with, a restart an earlier
//! run wrote down and did not finish). Pure: table-tested without systemd.

/// What the step knows of one service before it acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Every unit that must run for it is active.
    pub running: bool,
    /// It writes to data that awaits its restore on this host (or its env file does).
    pub waits_for_data: bool,
    /// Its unit or one of its timers differs from the repo's.
    pub unit_changed: bool,
    /// Its fingerprint (unit, timers, env file, code) when it was last started, if the
    /// step started it.
    pub started_with: Option<String>,
    /// Its fingerprint now.
    pub fingerprint: String,
    /// An earlier run wrote its restart down and did not get to it.
    pub restart_due: bool,
}

/// What to do with a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Leave it stopped (installed, not enabled): its data is not back yet.
    Wait,
    /// Restart it: what it runs changed since it started.
    Restart,
    /// Enable what is not enabled, start what is not running; nothing more.
    Ensure,
}

/// The plan for one service.
pub fn plan(facts: &Facts) -> Plan {
    if !facts.running && facts.waits_for_data {
        return Plan::Wait;
    }
    let changed = facts.unit_changed || facts.started_with.as_ref().is_some_and(|s| *s != facts.fingerprint);
    if facts.restart_due || (facts.running && changed) { Plan::Restart } else { Plan::Ensure }
}

/// What systemd says of one unit, for [`unit_actions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnitNow {
    /// Enabled (or static, enabled-runtime, linked: nothing to enable).
    pub enabled: bool,
    pub active: bool,
}

/// The units to enable, start and restart, in one call each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actions {
    pub enable: Vec<String>,
    pub start: Vec<String>,
    pub restart: Vec<String>,
}

impl Actions {
    /// Adds what `plan` means for `units` (as systemd has them now).
    pub fn add(&mut self, plan: Plan, units: &[(String, UnitNow)]) {
        if plan == Plan::Wait {
            return;
        }
        for (unit, now) in units {
            if !now.enabled {
                self.enable.push(unit.clone());
            }
            if plan == Plan::Restart {
                self.restart.push(unit.clone());
            } else if !now.active {
                self.start.push(unit.clone());
            }
        }
    }

    /// Does any of them touch `unit`?
    pub fn touch(&self, unit: &str) -> bool {
        [&self.enable, &self.start, &self.restart].iter().any(|units| units.iter().any(|u| u == unit))
    }

    /// What is done to `units` (one service's), in words: "would enable and start
    /// a.service" under `--check` ([`Tense::Would`]), "enabled and started a.service"
    /// after the run ([`Tense::Done`]); empty when nothing is. The check and the run
    /// say the same thing of the same actions.
    pub fn describe(&self, units: &[String], why_restart: &str, tense: Tense) -> String {
        let of = |list: &[String]| -> Vec<String> { list.iter().filter(|u| units.contains(u)).cloned().collect() };
        let (enable, start, restart) = (of(&self.enable), of(&self.start), of(&self.restart));
        let (would, enabled, started, restarted) = match tense {
            Tense::Would => ("would ", "enable", "start", "restart"),
            Tense::Done => ("", "enabled", "started", "restarted"),
        };
        let mut parts = Vec::new();
        if !restart.is_empty() {
            parts.push(format!("{restarted}: {why_restart}"));
        }
        match (enable.is_empty(), start.is_empty()) {
            (false, false) if enable == start => parts.push(format!("{enabled} and {started} {}", enable.join(" "))),
            (false, _) => {
                let mut said = format!("{enabled} {}", enable.join(" "));
                if start.is_empty() && restart.is_empty() {
                    // Running but disabled: it would not come back after a reboot.
                    said.push_str(match tense {
                        Tense::Would => " (it runs, but would not start again after a reboot)",
                        Tense::Done => " (it ran, but would not have started again after a reboot)",
                    });
                }
                parts.push(said);
                if !start.is_empty() {
                    parts.push(format!("{started} {}", start.join(" ")));
                }
            }
            (true, false) => parts.push(format!("{started} {}", start.join(" "))),
            (true, true) => {}
        }
        if parts.is_empty() { String::new() } else { format!("{would}{}", parts.join("; ")) }
    }
}

/// Whether [`Actions::describe`] says what a run would do or what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tense {
    Would,
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(running: bool, waits: bool, unit_changed: bool, started_with: Option<&str>, due: bool) -> Facts {
        Facts {
            running,
            waits_for_data: waits,
            unit_changed,
            started_with: started_with.map(str::to_owned),
            fingerprint: "now".into(),
            restart_due: due,
        }
    }

    #[test]
    fn restarts_exactly_what_changed_and_never_a_service_waiting_for_its_data() {
        use Plan::{Ensure, Restart, Wait};
        let table = [
            // running, waits, unit changed, started with, due => plan
            (facts(true, false, false, Some("now"), false), Ensure),
            (facts(true, false, true, Some("now"), false), Restart),
            (facts(true, false, false, Some("before"), false), Restart),
            // Started by someone else: nothing recorded, nothing to compare.
            (facts(true, false, false, None, false), Ensure),
            // Not running: a start runs what is new anyway.
            (facts(false, false, true, Some("before"), false), Ensure),
            // An earlier run wrote the restart down and died before it.
            (facts(true, false, false, Some("now"), true), Restart),
            (facts(false, false, false, Some("now"), true), Restart),
            // Its data is not back: it waits, whatever changed or was due.
            (facts(false, true, true, Some("before"), true), Wait),
            // Running already (started by hand): what it writes is this host's.
            (facts(true, true, false, Some("now"), false), Ensure),
            (facts(true, true, true, Some("now"), false), Restart),
        ];
        for (i, (facts, want)) in table.iter().enumerate() {
            assert_eq!(plan(facts), *want, "row {i}: {facts:?}");
        }
    }

    #[test]
    fn units_are_enabled_started_or_restarted_as_the_plan_says() {
        let units = |enabled, active| vec![("a.service".to_owned(), UnitNow { enabled, active })];
        let mut actions = Actions::default();
        actions.add(Plan::Ensure, &units(false, false));
        assert_eq!(
            actions,
            Actions { enable: vec!["a.service".into()], start: vec!["a.service".into()], restart: vec![] }
        );
        let mut actions = Actions::default();
        actions.add(Plan::Ensure, &units(true, true));
        assert_eq!(actions, Actions::default());
        let mut actions = Actions::default();
        actions.add(Plan::Restart, &units(true, true));
        assert_eq!(actions.restart, ["a.service"]);
        assert!(actions.touch("a.service") && !actions.touch("b.service"));
        let mut actions = Actions::default();
        actions.add(Plan::Wait, &units(false, false));
        assert_eq!(actions, Actions::default(), "a waiting service is neither enabled nor started");
    }

    #[test]
    fn the_check_and_the_run_say_exactly_what_is_done() {
        let said = |plan, enabled, active| {
            let mut actions = Actions::default();
            actions.add(plan, &[("a.service".to_owned(), UnitNow { enabled, active })]);
            let units = ["a.service".to_owned()];
            (
                actions.describe(&units, "its unit changed", Tense::Would),
                actions.describe(&units, "its unit changed", Tense::Done),
            )
        };
        let table = [
            (Plan::Ensure, false, false, "would enable and start a.service", "enabled and started a.service"),
            (Plan::Ensure, true, false, "would start a.service", "started a.service"),
            (
                Plan::Ensure,
                false,
                true,
                "would enable a.service (it runs, but would not start again after a reboot)",
                "enabled a.service (it ran, but would not have started again after a reboot)",
            ),
            (Plan::Ensure, true, true, "", ""),
            (Plan::Restart, true, true, "would restart: its unit changed", "restarted: its unit changed"),
            (
                Plan::Restart,
                false,
                true,
                "would restart: its unit changed; enable a.service",
                "restarted: its unit changed; enabled a.service",
            ),
        ];
        for (plan, enabled, active, would, done) in table {
            assert_eq!(said(plan, enabled, active), (would.to_owned(), done.to_owned()), "{plan:?} {enabled} {active}");
        }
        // Another service's units are not this one's.
        let mut actions = Actions::default();
        actions.add(Plan::Ensure, &[("b.service".to_owned(), UnitNow::default())]);
        assert_eq!(actions.describe(&["a.service".to_owned()], "", Tense::Would), "");
    }
}
