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
    Ok(())
}
