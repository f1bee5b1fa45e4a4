//! The same answers as `systemctl --user show`, read from the manager's bus.
//!
//! `systemctl show` asks the manager for every property of every interface of each
//! unit (a `GetAll` per unit, some 250 properties) and prints the few asked for: about
//! 2 ms a loaded unit, 2 s for a thousand. Here each property asked for is one `Get`,
//! the calls pipelined over one connection, and the answer is printed as `systemctl
//! show` prints it, then parsed by the same [`parse_show`], so the callers cannot tell
//! the two apart (`common/tests/sandbox.rs` compares them on a real manager).
//!
//! Only what is known to be printed the same way is read here: the properties of
//! [`ON_THE_BUS`], of services and timers. Anything else, or a bus that cannot be
//! reached, returns `None`, and the caller asks `systemctl`. The steps call
//! [`super::show`] and [`super::show_all`]; these two are public for the test that
//! holds their answers against `systemctl`'s.

use std::path::Path;

use super::{BASE_PROPERTIES, TIMEOUT, UnitState, parse_show};
use crate::dbus::{Arg, Bus, Call, Value, unit_path};

const UNIT: &str = "org.freedesktop.systemd1.Unit";
const SERVICE: &str = "org.freedesktop.systemd1.Service";
const TIMER: &str = "org.freedesktop.systemd1.Timer";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// How `systemctl show` prints a property's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Print {
    Text,
    Number,
    /// `yes` or `no`.
    YesNo,
    /// Local time, `Wed 2026-12-02 03:00:00 UTC`; empty when unset.
    Timestamp,
    /// One `EnvironmentFiles=PATH (ignore_errors=no)` line per file; none when empty.
    EnvironmentFiles,
}

/// The properties read from the bus: name, the interface holding it, how it prints.
/// A property of the service or timer interface is printed only for units of that
/// kind, as `systemctl show` does.
const ON_THE_BUS: &[(&str, &str, Print)] = &[
    ("Id", UNIT, Print::Text),
    ("LoadState", UNIT, Print::Text),
    ("ActiveState", UNIT, Print::Text),
    ("SubState", UNIT, Print::Text),
    ("UnitFileState", UNIT, Print::Text),
    ("FragmentPath", UNIT, Print::Text),
    ("NeedDaemonReload", UNIT, Print::YesNo),
    ("ActiveEnterTimestampMonotonic", UNIT, Print::Number),
    ("Type", SERVICE, Print::Text),
    ("NRestarts", SERVICE, Print::Number),
    ("Result", SERVICE, Print::Text),
    ("ExecMainStatus", SERVICE, Print::Number),
    ("MainPID", SERVICE, Print::Number),
    ("EnvironmentFiles", SERVICE, Print::EnvironmentFiles),
    ("Result", TIMER, Print::Text),
    ("NextElapseUSecRealtime", TIMER, Print::Timestamp),
    ("LastTriggerUSec", TIMER, Print::Timestamp),
];

/// The interface of a unit's own kind, for the two kinds read here.
fn kind_interface(unit: &str) -> Option<&'static str> {
    match unit.rsplit_once('.').map(|(_, kind)| kind) {
        Some("service") => Some(SERVICE),
        Some("timer") => Some(TIMER),
        _ => None,
    }
}

/// The properties asked for, base ones first, each once; `None` when one of them is
/// not read here.
fn asked<'a>(extra: &[&'a str]) -> Option<Vec<&'a str>> {
    let mut props: Vec<&str> = BASE_PROPERTIES.to_vec();
    for p in extra {
        if !props.contains(p) {
            props.push(p);
        }
    }
    props.iter().all(|p| ON_THE_BUS.iter().any(|(name, _, _)| name == p)).then_some(props)
}

fn connect() -> Option<Bus> {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty())?;
    Bus::connect(&Path::new(&runtime).join("systemd/private"), TIMEOUT).ok()
}

/// What [`super::show_named`] answers, from the bus: every unit in `units` by name
/// (systemd loads those it has not loaded to answer, as for `systemctl show`).
pub fn show(units: &[String], extra: &[&str]) -> Option<Vec<UnitState>> {
    let props = asked(extra)?;
    if !units.iter().all(|u| kind_interface(u).is_some()) {
        return None;
    }
    let mut bus = connect()?;
    let known: Vec<Known> = units.iter().map(|u| Known { name: u.clone(), path: unit_path(u), listed: None }).collect();
    read(&mut bus, &known, &props)
}

/// What [`super::show_all`] answers, from the bus: every loaded unit matching
/// `patterns` (patterns of services and timers only), listed in one call.
pub fn show_all(patterns: &[&str], extra: &[&str]) -> Option<Vec<UnitState>> {
    let props = asked(extra)?;
    if !patterns.iter().all(|p| kind_interface(p).is_some()) {
        return None;
    }
    let mut bus = connect()?;
    let list = Call {
        path: "/org/freedesktop/systemd1".into(),
        interface: MANAGER,
        member: "ListUnitsByPatterns",
        args: vec![Arg::StrArray(&[]), Arg::StrArray(patterns)],
    };
    let reply = bus.call_all(std::slice::from_ref(&list)).ok()?.into_iter().next()?.ok()?;
    let Some(Value::Array(rows)) = reply.first() else { return None };
    let mut known = Vec::new();
    for row in rows {
        // (name, description, load, active, sub, following, path, job id, job type, job path)
        let Value::Struct(fields) = row else { return None };
        let text = |i: usize| match fields.get(i) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let listed = Listed { id: text(0)?, load: text(2)?, active: text(3)?, sub: text(4)? };
        // Only services and timers match the patterns; anything else goes to systemctl.
        kind_interface(&listed.id)?;
        known.push(Known { name: listed.id.clone(), path: text(6)?, listed: Some(listed) });
    }
    read(&mut bus, &known, &props)
}

/// What the list of units already says of one.
struct Listed {
    id: String,
    load: String,
    active: String,
    sub: String,
}

/// A unit to read: its name (when named) or its object path and what the list said
/// of it (when listed).
struct Known {
    name: String,
    path: String,
    listed: Option<Listed>,
}

impl Known {
    fn listed(&self, property: &str) -> Option<&str> {
        let listed = self.listed.as_ref()?;
        Some(match property {
            "Id" => &listed.id,
            "LoadState" => &listed.load,
            "ActiveState" => &listed.active,
            "SubState" => &listed.sub,
            _ => return None,
        })
    }
}

/// Reads `props` of every unit (one pipelined `Get` per property the list did not
/// give), prints them as `systemctl show` prints them, and parses that.
fn read(bus: &mut Bus, units: &[Known], props: &[&str]) -> Option<Vec<UnitState>> {
    // (unit, property, interface, how it prints), in the order they are printed.
    let mut wanted: Vec<(usize, &str, &str, Print)> = Vec::new();
    let mut blocks: Vec<String> = Vec::with_capacity(units.len());
    for (i, unit) in units.iter().enumerate() {
        let mut block = String::new();
        // A unit named has the kind of its name (an alias has its unit's kind).
        let own = kind_interface(&unit.name)?;
        for prop in props {
            if let Some(value) = unit.listed(prop) {
                block.push_str(&format!("{prop}={value}\n"));
                continue;
            }
            for (name, interface, print) in ON_THE_BUS {
                if name == prop && (*interface == UNIT || *interface == own) {
                    wanted.push((i, prop, interface, *print));
                }
            }
        }
        blocks.push(block);
    }
    let calls: Vec<Call<'_>> =
        wanted.iter().map(|(i, prop, interface, _)| get(&units[*i].path, interface, prop)).collect();
    let answers = bus.call_all(&calls).ok()?;
    for ((i, prop, _, print), answer) in wanted.iter().zip(answers) {
        // Every property asked is one the unit's kind has: one that does not answer is
        // not left out (a unit would pass for stale-free or stopped), systemctl is asked.
        let values = answer.ok()?;
        printed(&mut blocks[*i], prop, *print, values.first().map(Value::unwrapped)?)?;
    }
    Some(parse_show(&crate::secret::redact(&blocks.join("\n"))))
}

fn get<'a>(path: &str, interface: &'a str, property: &'a str) -> Call<'a> {
    Call {
        path: path.to_owned(),
        interface: PROPERTIES,
        member: "Get",
        args: vec![Arg::Str(interface), Arg::Str(property)],
    }
}

/// Appends `value` to a unit's block as `systemctl show` prints it; `None` when the
/// value is not of the type the property has (then systemctl is asked instead).
fn printed(block: &mut String, prop: &str, print: Print, value: &Value) -> Option<()> {
    let line = match (print, value) {
        (Print::Text, Value::Str(s)) => format!("{prop}={s}\n"),
        (Print::Number, Value::UInt(n)) => format!("{prop}={n}\n"),
        (Print::Number, Value::Int(n)) => format!("{prop}={n}\n"),
        (Print::YesNo, Value::Bool(b)) => format!("{prop}={}\n", if *b { "yes" } else { "no" }),
        (Print::Timestamp, Value::UInt(usec)) => format!("{prop}={}\n", timestamp(*usec)),
        (Print::EnvironmentFiles, Value::Array(files)) => {
            let mut lines = String::new();
            for file in files {
                let Value::Struct(fields) = file else { return None };
                let (Some(Value::Str(path)), Some(Value::Bool(ignore))) = (fields.first(), fields.get(1)) else {
                    return None;
                };
                lines.push_str(&format!("{prop}={path} (ignore_errors={})\n", if *ignore { "yes" } else { "no" }));
            }
            lines
        }
        _ => return None,
    };
    block.push_str(&line);
    Some(())
}

/// A realtime timestamp as systemd prints it (see [`crate::sys::local_time_text`]);
/// empty for 0 and infinity (unset).
fn timestamp(usec: u64) -> String {
    if usec == 0 || usec == u64::MAX {
        return String::new();
    }
    i64::try_from(usec / 1_000_000).ok().and_then(crate::sys::local_time_text).unwrap_or_default()
}
