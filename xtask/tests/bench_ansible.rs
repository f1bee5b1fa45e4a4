//! The Ansible side of `cargo xtask bench --vs-ansible` cannot rot: in a sandbox (a
//! real `systemd --user` and nginx), our steps apply `ansible/bench/pi-bootstrap.yaml`
//! on the sandbox's HOME and the playbook `ansible/bench/pi-host-files.yml` runs on a
//! second HOME and nginx prefix; the two file trees must be the same (kinds, modes,
//! contents, link targets), apart from what only our side does (its state folder, the
//! units enabled, what the started services wrote), and ansible-lint must pass the
//! playbook. (That a rerun changes nothing and a check sees drift, the benchmark
//! itself checks on every round.)

#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::path::Path;
use std::process::Command;

use common::sandbox;
use test_support::TestResult;
use test_support::python::ansible_bin;
use test_support::tree::{Listing, listing};
use test_support::workspace::{built_binaries, root};

const SECRETS: &[(&str, &str)] = &[
    ("TELEGRAM_BOT_TOKEN", "canary-test-telegram-1a2b"),
    ("TELEGRAM_CHAT_ID", "canary-test-chat-3c4d"),
    ("ANTHROPIC_API_KEY", "canary-test-anthropic-5e6f"),
];

fn run(command: &mut Command) -> Result<String, Box<dyn std::error::Error>> {
    let shown = format!("{command:?}");
    let out = command.output()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(format!("{shown} failed ({}):\n{text}", out.status).into());
    }
    Ok(text)
}

/// What is declared under `home` and the nginx prefix, with the two roots written as
/// `~` and `NGINX`; what only our side makes, or the running services write, left out.
fn declared_tree(home: &Path, nginx: &Path) -> Listing {
    let only_ours = [
        ".local/state",
        "pi-config/.git",
        ".config/systemd/user/default.target.wants",
        ".config/systemd/user/timers.target.wants",
        // The started timers' stamps (Persistent=true).
        ".local/share",
    ];
    // Written by the services once started: their contents, not the folders.
    let service_writes =
        ["pi-config/logs/", "pi-config/runtime/", "pi-config/agents-database/data/", "pi-config/outputs/"];
    let normal =
        |text: &str| text.replace(&home.display().to_string(), "~").replace(&nginx.display().to_string(), "NGINX");
    let mut tree: Listing = listing(home)
        .into_iter()
        .filter(|(path, _)| !only_ours.iter().any(|o| path == o || path.starts_with(&format!("{o}/"))))
        .filter(|(path, _)| !service_writes.iter().any(|w| path.starts_with(w)))
        .map(|(path, what)| (path, normal(&what)))
        .collect();
    for site in ["sites-available", "sites-enabled"] {
        for (path, what) in listing(&nginx.join(site)) {
            tree.insert(format!("NGINX/{site}/{path}"), normal(&what));
        }
    }
    tree
}

#[test]
fn the_playbook_makes_the_tree_our_steps_make() -> TestResult {
    // Made outside the sandbox (PyPI is not reachable inside), found cached inside.
    let ansible = ansible_bin()?;
    let bins = built_binaries();
    let Some(mut machine) = sandbox::isolated("the_playbook_makes_the_tree_our_steps_make") else { return Ok(()) };
    machine.start_nginx()?;
    let layout = machine.layout.clone();
    let origin = layout.root.join("origin/pi-config");
    test_support::tree::copy(&root().join("examples/pi-host/pi-config"), &origin)?;
    test_support::git::init_repo(&origin, &[])?;
    let url = format!("file://{}", origin.display());
    let manifest = root().join("ansible/bench/pi-bootstrap.yaml");
    let playbook = root().join("ansible/bench/pi-host-files.yml");

    // ansible-lint beside the runs (it reads only the playbook).
    let lint = {
        let lint = ansible.join("ansible-lint");
        let playbook = playbook.clone();
        let home = layout.root.join("lint-home");
        std::thread::spawn(move || {
            run(Command::new(lint)
                .args(["--offline", "--nocolor", "-q"])
                .arg(&playbook)
                .env("HOME", &home)
                .env("ANSIBLE_HOME", home.join(".ansible")))
            .map_err(|e| e.to_string())
        })
    };

    for step in ["bootstrap-pi-config", "bootstrap-services"] {
        run(machine
            .command(&bins.join(step).display().to_string())
            .arg("--manifest")
            .arg(&manifest)
            .env("PI_CONFIG_URL", &url)
            .envs(SECRETS.iter().copied()))?;
    }
    let ours = declared_tree(&layout.home(), &layout.nginx_prefix());

    let home = layout.root.join("ansible-side/home");
    let nginx = layout.root.join("ansible-side/nginx");
    std::fs::create_dir_all(&home)?;
    sandbox::write_nginx_main_conf(&nginx)?;
    let playbook_run = || {
        let mut command = Command::new(ansible.join("ansible-playbook"));
        command.args(["-i", "localhost,", "-c", "local"]);
        command
            .arg(&playbook)
            .env("HOME", &home)
            .env("NGINX_PREFIX", &nginx)
            .env("PI_CONFIG_URL", &url)
            .env("ANSIBLE_HOME", layout.root.join("ansible-home"))
            .env("ANSIBLE_LOCAL_TEMP", layout.root.join("ansible-home/tmp"))
            .env("ANSIBLE_NOCOLOR", "1")
            .envs(SECRETS.iter().copied());
        run(&mut command)
    };
    let first = playbook_run()?;
    assert!(!first.contains("canary-"), "the playbook printed a secret:\n{first}");
    let theirs = declared_tree(&home, &nginx);
    let differences = test_support::tree::changes(&ours, &theirs);
    assert!(
        differences.is_empty(),
        "the playbook's tree differs from our steps' (ours -> theirs):\n{}",
        differences.join("\n")
    );
    assert!(ours.len() > 40, "too few entries compared: {ours:#?}");

    let lint = lint.join().map_err(|_| "ansible-lint panicked")?;
    assert!(lint.is_ok(), "ansible-lint refused the playbook: {lint:?}");
    Ok(())
}
