//! The sandbox harness itself: a test re-run inside fresh namespaces gets a real
//! `systemd --user` and a private nginx on a private loopback.

#![cfg(feature = "sandbox")]

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
