//! The sandbox harness itself: a test re-run inside fresh namespaces gets a real
//! `systemd --user` and a private nginx on a private loopback.

#![cfg(feature = "sandbox")]
#![allow(clippy::disallowed_methods)]

use std::process::Command;

use common::sandbox;

#[test]
fn a_sandboxed_test_has_a_user_manager_and_nginx() -> Result<(), Box<dyn std::error::Error>> {
    let Some(mut machine) = sandbox::isolated("a_sandboxed_test_has_a_user_manager_and_nginx") else { return Ok(()) };
    let state = machine.command("systemctl").args(["--user", "is-system-running"]).output()?;
    assert_eq!(String::from_utf8_lossy(&state.stdout).trim(), "running");
    let prefix = machine.layout.nginx_prefix();
    std::fs::create_dir_all(prefix.join("sites-enabled"))?;
    std::fs::write(
        prefix.join("sites-enabled/hello"),
        "server { listen 127.0.0.1:80; location / { return 200 'hello from the sandbox'; } }\n",
    )?;
    machine.start_nginx()?;
    let body = Command::new("python3")
        .args(["-c", "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1/').read().decode())"])
        .output()?;
    assert_eq!(String::from_utf8_lossy(&body.stdout).trim(), "hello from the sandbox");
    Ok(())
}

#[test]
fn many_units_are_read_in_one_call_with_the_same_answer_as_by_name() -> Result<(), Box<dyn std::error::Error>> {
    let Some(machine) = sandbox::isolated("many_units_are_read_in_one_call_with_the_same_answer_as_by_name") else {
        return Ok(());
    };
    let units = machine.layout.home().join(".config/systemd/user");
    std::fs::create_dir_all(&units)?;
    let mut names = Vec::new();
    for i in 0..80 {
        let name = format!("many-{i}.service");
        std::fs::write(units.join(&name), "[Service]\nExecStart=/bin/sleep 300\n")?;
        names.push(name);
    }
    machine.command("systemctl").args(["--user", "daemon-reload"]).output()?;
    let started: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let out = machine.command("systemctl").args(["--user", "start"]).args(&started).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    names.push("never-declared.service".to_owned());

    let states = common::systemd::show(&names, &[])?;
    assert_eq!(states.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), names, "one state per unit, in order");
    for (i, state) in states.iter().enumerate() {
        let want = if i < 5 { "active" } else { "inactive" };
        assert_eq!(state.active_state, want, "{}", state.id);
    }
    assert_eq!(states[0].load_state, "loaded");
    assert_eq!(states[80].load_state, "not-found");

    // A look taken in the background answers every reader the same, each one waiting
    // for it; acting on a unit forgets it.
    common::systemd::look_once(&["*.service"], &[]);
    let answers: Vec<Option<Vec<common::systemd::UnitState>>> = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..4).map(|_| scope.spawn(|| common::systemd::show(&names, &[]))).collect();
        readers.into_iter().map(|r| r.join().ok().and_then(Result::ok)).collect()
    });
    assert!(answers.iter().all(|a| a.as_ref() == Some(&states)), "the look answers as the manager did");
    common::systemd::act("start", &names[5..6])?;
    let after = common::systemd::show(&names[5..6], &[])?;
    assert_eq!(after[0].active_state, "active", "started after the look: asked afresh");
    Ok(())
}

/// The bus answers what `systemctl show` answers, property for property, for units in
/// every state the steps meet: running with env files, failed, a finished oneshot, a
/// template instance, an active and an inactive timer, not loaded, not found.
#[test]
fn the_bus_answers_as_systemctl_does() -> Result<(), Box<dyn std::error::Error>> {
    let Some(machine) = sandbox::isolated("the_bus_answers_as_systemctl_does") else { return Ok(()) };
    let units = machine.layout.home().join(".config/systemd/user");
    std::fs::create_dir_all(&units)?;
    let files = [
        (
            "web.service",
            "[Service]\nEnvironmentFile=%h/web.env\nEnvironmentFile=-%h/missing.env\nExecStart=/bin/sleep 300\n",
        ),
        ("broken.service", "[Service]\nExecStart=/bin/false\n"),
        ("once.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n"),
        ("worker@.service", "[Service]\nExecStart=/bin/sleep 300\n"),
        ("tick.timer", "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n"),
        ("tick.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n"),
        ("idle.timer", "[Timer]\nOnCalendar=weekly\n"),
        ("idle.service", "[Service]\nExecStart=/bin/true\n"),
        ("unloaded.service", "[Service]\nExecStart=/bin/true\n"),
    ];
    for (name, text) in files {
        std::fs::write(units.join(name), text)?;
    }
    std::fs::write(machine.layout.home().join("web.env"), "A=1\n")?;
    let systemctl = |args: &[&str]| machine.command("systemctl").arg("--user").args(args).output();
    systemctl(&["daemon-reload"])?;
    systemctl(&["start", "web.service", "broken.service", "once.service", "worker@one.service", "tick.timer"])?;
    std::thread::sleep(std::time::Duration::from_millis(300));

    let extra = [
        "NeedDaemonReload",
        "NextElapseUSecRealtime",
        "LastTriggerUSec",
        "EnvironmentFiles",
        "Result",
        "ExecMainStatus",
        "Type",
        "NRestarts",
        "ActiveEnterTimestampMonotonic",
        "MainPID",
    ];
    let named: Vec<String> = [
        "web.service",
        "broken.service",
        "once.service",
        "worker@one.service",
        "tick.timer",
        "idle.timer",
        "unloaded.service",
        "never-declared.service",
        "never-declared.timer",
    ]
    .map(String::from)
    .to_vec();
    let by_systemctl = common::systemd::show_by_systemctl(&named, &extra)?;
    let by_bus = common::systemd::bus::show(&named, &extra).ok_or("the bus did not answer by name")?;
    assert_eq!(by_bus, by_systemctl, "by name");
    assert_eq!(by_bus.len(), named.len());
    assert!(by_bus[0].env_files.len() == 2 && by_bus[1].active_state == "failed", "{by_bus:#?}");
    assert!(!by_bus[4].properties["NextElapseUSecRealtime"].is_empty(), "{:?}", by_bus[4]);

    let patterns = ["*.service", "*.timer"];
    let all_by_systemctl = common::systemd::show_all_by_systemctl(&patterns, &extra)?;
    let all_by_bus = common::systemd::bus::show_all(&patterns, &extra).ok_or("the bus did not answer by pattern")?;
    let sorted = |mut states: Vec<common::systemd::UnitState>| {
        states.sort_by(|a, b| a.id.cmp(&b.id));
        states
    };
    assert_eq!(sorted(all_by_bus), sorted(all_by_systemctl), "by pattern");
    // Each call is a fresh connection whose first call follows the authentication at
    // once: the manager answers every one (see `Bus::await_first_answer`).
    for round in 0..100 {
        common::systemd::bus::show_all(&patterns, &[]).ok_or(format!("round {round}: the bus did not answer"))?;
    }
    // ... and at once: with `BEGIN` sent along with `AUTH`, no connection waits to be
    // nudged (each wait would cost the audit 25 ms).
    let socket = std::path::Path::new(&std::env::var("XDG_RUNTIME_DIR")?).join("systemd/private");
    let version = common::dbus::Call {
        path: "/org/freedesktop/systemd1".into(),
        interface: "org.freedesktop.DBus.Properties",
        member: "Get",
        args: vec![common::dbus::Arg::Str("org.freedesktop.systemd1.Manager"), common::dbus::Arg::Str("Version")],
    };
    let mut nudged = 0;
    for _ in 0..100 {
        let mut bus = common::dbus::Bus::connect(&socket, std::time::Duration::from_secs(10))?;
        let reply = bus.call_all(std::slice::from_ref(&version))?.remove(0)?;
        assert!(!reply.is_empty(), "the manager's version");
        nudged += u32::from(bus.nudges() > 0);
    }
    assert_eq!(nudged, 0, "fresh connections whose first answer had to be nudged, of 100");
    Ok(())
}
