//! A randomized interruption test (the soak): every step of the restore chain killed
//! with SIGKILL at a random moment converges with one run of `pi-bootstrap-restore`.
//!
//! The host, in a sandbox with a real `systemd --user`, nginx, restic and git (no
//! network, no package manager: the one prerequisite is `sh`): a pi-config "remote"
//! with links (a file and a folder), folders (one inside the data path), a dependency
//! install, the user unit of a small web service (`/usr/bin/python3 -m http.server` on
//! loopback, serving the restored data) with its env file (its secret exported as
//! `WEB_TOKEN`, a canary), an nginx site proxying to it, a managed block in a
//! `~/.bashrc` that holds the user's own lines, and a `backup`-class path of a few
//! hundred small files, a nested folder and a link, backed up with restic beforehand
//! under the manifest's `host`, then removed. The user brings, before the first step:
//! `~/.bashrc` with their own lines, their own `~/.pi/agent/settings.json` (where a
//! declared link goes: the step keeps it, then replaces it) and the restic password
//! file (a canary too).
//!
//! First an uninterrupted reference: `pi-bootstrap-restore` over the whole chain on a
//! fresh HOME, its tree recorded, each step's time taken from its JSON. Then
//! `PI_BOOTSTRAP_SOAK` trials (default 3), each on a fresh HOME (the user units the
//! restore made stopped and disabled, HOME emptied, the manager reloaded, the user's
//! files written again, nginx's sites cleared and nginx reloaded): one step of the chain,
//! in the order data, services, pi-config, prereqs, validate (so the first three
//! trials hit the steps that change the most, and five hit every step), the steps
//! before it run normally, the step's binary started in its own process group and the
//! whole group killed with SIGKILL after a random delay within the step's reference
//! time; then the whole chain once more, which must: exit 0; leave the tree equal to
//! the reference; keep the user's own `~/.bashrc` lines, and every file the user
//! brought in place or in `~/.local/state/pi-bootstrap/kept/`; leave no staging (no
//! name starting with `.pi-bootstrap` under HOME or the nginx prefix outside the state
//! folder, the state folder's `tmp/` empty, no `.pi-bootstrap-capture`); and a further
//! chain run must report zero changes in every step (`summary.changed == 0`, no
//! `commands`). Neither canary may appear in any output of any run, killed ones
//! included. One line per trial, and "N trials converged" at the end.
//!
//! The tree: every entry under HOME (and the nginx prefix's `sites-available` and
//! `sites-enabled`) with its type, permission bits, the SHA-256 of a file's content
//! (never the content: the env file holds the canary) or a link's target; and the
//! state of every installed user unit (enabled, active, reload pending). Left out,
//! because they legitimately differ between two runs that did the same thing: the
//! state folder `~/.local/state/pi-bootstrap` (run ids, times in the ledger, kept
//! copies named for their run, the lock; its `tmp/` and `kept/` are checked on their
//! own), `~/.cache` (restic's cache: which pack files a restore happened to read), in
//! the repo's `.git` the `index` (stat data of the checkout), `logs/` (times),
//! `FETCH_HEAD` (written by every run's fetch, not by the clone) and
//! `objects/` (a clone may pack differently; the checked-out commit is `.git/HEAD` and
//! its ref, which stay in), and any socket, fifo or pid file. The web service writes
//! no runtime files and logs to the manager, outside HOME; nginx's logs and pid are
//! under its prefix, outside the folders compared. Modification times are never
//! compared (restic restores the snapshot's, everything else is written now).
//!
//! Replay: the seed (`PI_BOOTSTRAP_SOAK_SEED`, decimal or `0x` hex; taken from the
//! clock when unset) is printed first, and each trial's step and delay come from the
//! seed and the trial's number alone, so `PI_BOOTSTRAP_SOAK_SEED=S
//! PI_BOOTSTRAP_SOAK_TRIAL=K` runs trial K of seed S by itself (the delay is a fraction
//! of the step's reference time, which varies a little between machines and runs).
//!
//! The sandbox is `test_support::sandbox::isolated_shown`, which passes on what the
//! child shows (`progress`) as it comes, so `--nocapture` shows the trials as they run.

#![allow(clippy::disallowed_methods, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bootstrap_restore::{ChainStep, STEPS};
use common::sandbox::{self, Machine};
use sha2::{Digest, Sha256};
use test_support::git::git;
use test_support::process::{no_canary, text};
use test_support::sandbox::{isolated_shown, progress as show};
use test_support::tree::{set_mode, write_file as write};
use test_support::workspace::built_binaries;

type Error = Box<dyn std::error::Error>;
type TestResult = Result<(), Error>;

/// The env file's secret, exported as `WEB_TOKEN`: never printed.
const TOKEN: &str = "canary-soak-token-7c1e94";
/// The restic password: never printed.
const PASSWORD: &str = "canary-soak-password-2b8f";
const CANARIES: [&str; 2] = [TOKEN, PASSWORD];

/// The manifest's host name, under which the old host's data was backed up.
const HOST: &str = "soak-host";

/// The order the trials take the steps in: the steps that change the most first.
const ORDER: [&str; 5] =
    ["bootstrap-data", "bootstrap-services", "bootstrap-pi-config", "bootstrap-prereqs", "bootstrap-validate"];

/// The user's own lines in `~/.bashrc`, there before the first step.
const USER_BASHRC: &str = "# my own bashrc\nexport EDITOR=vi\nalias ll='ls -l'\n";
/// The user's own `~/.pi/agent/settings.json`, where a declared link goes.
const USER_SETTINGS: &str = "{\"mine\": true}\n";

/// How many files the data path holds besides its nested folder.
const DATA_FILES: usize = 300;

/// A tiny xorshift64* generator: enough to pick delays, and replayable from its seed.
struct Rng(u64);

impl Rng {
    /// The generator of trial `trial` of `seed` (splitmix64 of both, never zero).
    fn for_trial(seed: u64, trial: u64) -> Rng {
        let mut z = seed ^ trial.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A fraction in [0, 1).
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn env_number(name: &str) -> Result<Option<u64>, Error> {
    let Ok(text) = std::env::var(name) else { return Ok(None) };
    let text = text.trim();
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    Ok(Some(parsed.map_err(|e| format!("{name}={text}: {e}"))?))
}

/// One entry of a recorded tree.
fn describe(path: &Path) -> Result<Option<String>, Error> {
    let meta = fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    Ok(if kind.is_symlink() {
        Some(format!("link -> {}", fs::read_link(path)?.display()))
    } else if kind.is_dir() {
        Some(format!("dir {mode:04o}"))
    } else if kind.is_file() {
        let digest = Sha256::digest(fs::read(path)?);
        let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
        Some(format!("file {mode:04o} {} bytes sha256:{hex}", meta.len()))
    } else if kind.is_socket() || kind.is_fifo() {
        None
    } else {
        Some(format!("other {mode:04o}"))
    })
}

/// The sandbox and the host it restores.
struct Host {
    machine: Machine,
    manifest: PathBuf,
}

/// What one run of a binary left.
struct Ran {
    code: Option<i32>,
    text: String,
}

impl Host {
    fn home(&self) -> PathBuf {
        self.machine.layout.home()
    }

    fn state(&self) -> PathBuf {
        self.home().join(".local/state/pi-bootstrap")
    }

    /// The old host's pi-config remote, its backup (made with restic itself, then
    /// removed: the machine is lost), the manifest, and nginx running.
    fn prepare(mut machine: Machine) -> Result<Host, Error> {
        machine.start_nginx()?;
        let layout = machine.layout.clone();
        let origin = layout.root.join("origin");
        write(&origin.join(".gitignore"), "data/\nvendor/\n")?;
        write(&origin.join("pi/settings.json"), "{\"theme\": \"dark\"}\n")?;
        write(&origin.join("pi/prompts/review.md"), "Review the change.\n")?;
        write(&origin.join("pi/prompts/plan.md"), "Plan the work.\n")?;
        write(&origin.join("services/web/README"), "The web service serves ~/pi-config/data/web.\n")?;
        write(&origin.join("vendor.lock"), "left-pad 1.3.0\n")?;
        write(
            &origin.join("systemd/web.service"),
            "[Unit]\nDescription=the soak test's web service\n[Service]\nType=simple\n\
             EnvironmentFile=%h/.config/web/web.env\n\
             ExecStart=/usr/bin/python3 -m http.server 7611 --bind 127.0.0.1 --directory %h/pi-config/data/web\n\
             Restart=on-failure\n[Install]\nWantedBy=default.target\n",
        )?;
        write(
            &origin.join("nginx/web.conf"),
            "server {\n    listen 127.0.0.1:8611;\n    location /web/ { proxy_pass http://127.0.0.1:7611/; }\n}\n",
        )?;
        write(&origin.join("shell/soak.sh"), "export PI_SOAK=1\nalias pis='echo soak'\n")?;
        git(&origin, &["init", "--quiet"])?;
        git(&origin, &["add", "--all"])?;
        git(&origin, &["commit", "--quiet", "-m", "pi-config"])?;

        // The old host's data: a few hundred small files, a nested folder, a link,
        // the folder the manifest declares inside it.
        let home = layout.home();
        let data = home.join("pi-config/data/web");
        write(&data.join("hello.txt"), "hello from the old host\n")?;
        for i in 0..DATA_FILES {
            let file = data.join(format!("files/f{i:03}.txt"));
            write(&file, &format!("file {i} of the old host\n{}\n", "x".repeat(i % 97)))?;
            if i % 7 == 0 {
                set_mode(&file, 0o600)?;
            }
        }
        write(&data.join("notes/deep/inner/note.md"), "a note deep inside\n")?;
        write(&data.join("notes/deep/other.md"), "another note\n")?;
        set_mode(&data.join("notes/deep"), 0o750)?;
        write(&data.join("uploads/photo.txt"), "an upload\n")?;
        set_mode(&data.join("uploads"), 0o700)?;
        std::os::unix::fs::symlink("files/f299.txt", data.join("latest"))?;
        let password = layout.root.join("restic-password");
        fs::write(&password, format!("{PASSWORD}\n"))?;
        let restic = |args: &[&str]| -> TestResult {
            let out = Command::new("restic")
                .args(args)
                .env("RESTIC_REPOSITORY", layout.backup_repo())
                .env("RESTIC_PASSWORD_FILE", &password)
                .env("RESTIC_CACHE_DIR", layout.root.join("restic-cache"))
                .output()?;
            if out.status.success() { Ok(()) } else { Err(format!("restic {args:?}: {}", text(&out)).into()) }
        };
        restic(&["init"])?;
        restic(&["backup", "--host", HOST, "--tag", "pi-bootstrap", &data.display().to_string()])?;
        fs::remove_dir_all(home.join("pi-config"))?;

        let manifest = layout.root.join("pi-bootstrap.yaml");
        fs::write(
            &manifest,
            format!(
                "version: 1
host: {HOST}
prereqs:
  - name: sh
    check: [sh, -c, 'echo sh 5.2']
    install: {{apt: dash}}
repo:
  path: ~/pi-config
  url: file://{}
  deps:
    - name: vendor
      run: [sh, -c, 'mkdir -p vendor && cp vendor.lock vendor/installed.lock']
      lockfile: vendor.lock
      installed: vendor/installed.lock
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
  - name: prompts
    source: pi/prompts
    target: ~/.pi/agent/prompts
dirs:
  - name: pi-agent
    path: ~/.pi/agent
    mode: \"0700\"
  - name: web-config
    path: ~/.config/web
    mode: \"0700\"
  - name: uploads
    path: ~/pi-config/data/web/uploads
    mode: \"0700\"
services:
  - name: web
    purpose: serves the restored data over HTTP, behind nginx at /web/
    class: web
    source: services/web
    unit: systemd/web.service
    env_file: web
    data_path: ~/pi-config/data/web
    port: 7611
    health:
      http: {{url: 'http://127.0.0.1:7611/hello.txt', status: 200, body: '^hello'}}
    backup: backup
nginx:
  prefix: ${{NGINX_PREFIX}}
  conf: ${{NGINX_PREFIX}}/nginx.conf
  sites_available: ${{NGINX_PREFIX}}/sites-available
  sites_enabled: ${{NGINX_PREFIX}}/sites-enabled
  sites:
    - name: web
      source: nginx/web.conf
      routes:
        - url: http://127.0.0.1:8611/web/notes/deep/inner/note.md
          status: 200
          body: '^a note deep inside'
shell:
  - name: soak
    file: ~/.bashrc
    source: shell/soak.sh
env:
  - name: web
    path: ~/.config/web/web.env
    vars: [WEB_TOKEN]
paths:
  - name: pi-config
    path: ~/pi-config
    role: the pi-config work tree
    backup: git
backup:
  repository: ${{PI_BACKUP_REPO}}
  password_file: ~/.config/pi-bootstrap/restic-password
  max_age: 26h
validate:
  - name: every-file-back
    command: [sh, -c, 'ls \"$HOME/pi-config/data/web/files\" | wc -l']
    output: '^\\s*{DATA_FILES}\\s*$'
",
                origin.display()
            ),
        )?;
        Ok(Host { machine, manifest })
    }

    /// What the user brings to a fresh HOME before the first step: path (under HOME),
    /// content, mode.
    fn user_files() -> [(&'static str, String, u32); 3] {
        [
            (".bashrc", USER_BASHRC.to_owned(), 0o644),
            (".pi/agent/settings.json", USER_SETTINGS.to_owned(), 0o644),
            (".config/pi-bootstrap/restic-password", format!("{PASSWORD}\n"), 0o600),
        ]
    }

    fn systemctl(&self, args: &[&str]) -> Result<Output, Error> {
        Ok(self.machine.command("systemctl").arg("--user").args(args).output()?)
    }

    /// The user units installed under HOME.
    fn installed_units(&self) -> Vec<String> {
        let dir = self.home().join(".config/systemd/user");
        let mut units: Vec<String> = fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".service") || n.ends_with(".timer"))
                    .collect()
            })
            .unwrap_or_default();
        units.sort();
        units
    }

    /// A fresh HOME: the user units the restore made stopped and disabled, HOME
    /// emptied, the manager reloaded, nginx's sites cleared and nginx reloaded, and
    /// what the user brings written again.
    fn reset(&self) -> TestResult {
        let units = self.installed_units();
        if !units.is_empty() {
            let units: Vec<&str> = units.iter().map(String::as_str).collect();
            self.systemctl(&[&["stop"], units.as_slice()].concat())?;
            self.systemctl(&[&["disable"], units.as_slice()].concat())?;
        }
        let home = self.home();
        for entry in fs::read_dir(&home)?.flatten() {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                common::staging::make_removable(&path);
                fs::remove_dir_all(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        self.systemctl(&["daemon-reload"])?;
        self.systemctl(&["reset-failed"])?;
        let prefix = self.machine.layout.nginx_prefix();
        for folder in ["sites-available", "sites-enabled"] {
            for entry in fs::read_dir(prefix.join(folder))?.flatten() {
                fs::remove_file(entry.path())?;
            }
        }
        let conf = prefix.join("nginx.conf");
        let out = Command::new(sandbox::nginx_program())
            .args(["-p", &prefix.display().to_string(), "-c", &conf.display().to_string(), "-s", "reload"])
            .output()?;
        if !out.status.success() {
            return Err(format!("nginx did not reload: {}", text(&out)).into());
        }
        for (path, content, mode) in Host::user_files() {
            let path = home.join(path);
            write(&path, &content)?;
            set_mode(&path, mode)?;
        }
        Ok(())
    }

    /// A step binary (or the chain) with the sandbox's environment and the secret
    /// exported.
    fn command(&self, bin: &str, args: &[&str]) -> Command {
        let mut cmd = self.machine.command(&built_binaries().join(bin).display().to_string());
        cmd.args(args).args(["--manifest", &self.manifest.display().to_string()]);
        cmd.env("WEB_TOKEN", TOKEN).env_remove("PI_BOOTSTRAP_CRASH_AT");
        cmd
    }

    fn run(&self, bin: &str, args: &[&str]) -> Result<Ran, Error> {
        let out = self.command(bin, args).output()?;
        let ran = Ran { code: out.status.code(), text: text(&out) };
        no_canary(&format!("{bin} {}", args.join(" ")), &ran.text, &CANARIES)?;
        Ok(ran)
    }

    /// One step, run normally: it must succeed.
    fn step(&self, step: &ChainStep) -> TestResult {
        let ran = self.run(step.bin, step.args)?;
        if ran.code != Some(0) {
            return Err(format!("{} exited {:?}:\n{}", step.label(), ran.code, ran.text).into());
        }
        Ok(())
    }

    /// The whole chain with `--json`: its exit code, its document, its output.
    fn chain(&self) -> Result<(Option<i32>, serde_json::Value, String), Error> {
        let started = Instant::now();
        let out = self.command("pi-bootstrap-restore", &["--json"]).output()?;
        let all = text(&out);
        no_canary("pi-bootstrap-restore", &all, &CANARIES)?;
        let json = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("pi-bootstrap-restore gave no JSON ({e}) after {:?}:\n{all}", started.elapsed()))?;
        Ok((out.status.code(), json, all))
    }

    /// `step` started in its own process group and the whole group killed with
    /// SIGKILL after `delay`; whether it was still running then, and its output.
    fn kill_during(&self, step: &ChainStep, delay: Duration) -> Result<(bool, String), Error> {
        let mut cmd = self.command(step.bin, step.args);
        cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child: Child = cmd.spawn()?;
        std::thread::sleep(delay);
        let running = child.try_wait()?.is_none();
        if running {
            let group = format!("-{}", child.id());
            let out = Command::new("kill").args(["-KILL", "--", &group]).output()?;
            if !out.status.success() {
                return Err(format!("kill -KILL -- {group}: {}", text(&out)).into());
            }
        }
        let out = child.wait_with_output()?;
        let all = text(&out);
        no_canary(&format!("{} (killed)", step.label()), &all, &CANARIES)?;
        Ok((running && out.status.code().is_none(), all))
    }

    /// The tree under HOME and nginx's sites, and the state of the installed units
    /// (see the file's documentation for what is left out).
    fn tree(&self) -> Result<BTreeMap<String, String>, Error> {
        let home = self.home();
        let mut tree = BTreeMap::new();
        let skip = |rel: &Path| {
            rel.starts_with(".local/state/pi-bootstrap")
                || rel.starts_with(".cache")
                || rel.starts_with("pi-config/.git/index")
                || rel.starts_with("pi-config/.git/logs")
                || rel.starts_with("pi-config/.git/FETCH_HEAD")
                || rel.starts_with("pi-config/.git/objects")
                || rel.extension().is_some_and(|e| e == "pid")
        };
        walk(&home, &home, "~", &skip, &mut tree)?;
        let prefix = self.machine.layout.nginx_prefix();
        for folder in ["sites-available", "sites-enabled"] {
            walk(&prefix.join(folder), &prefix, "nginx", &|_| false, &mut tree)?;
        }
        for unit in self.installed_units() {
            let out = self.systemctl(&[
                "show",
                "-p",
                "UnitFileState",
                "-p",
                "ActiveState",
                "-p",
                "NeedDaemonReload",
                "--value",
                &unit,
            ])?;
            let state = String::from_utf8_lossy(&out.stdout).split_whitespace().collect::<Vec<_>>().join(" ");
            tree.insert(format!("unit {unit}"), state);
        }
        Ok(tree)
    }

    /// What a converged host must hold besides the reference's tree: the user's own
    /// lines and files, and no staging anywhere.
    fn kept_and_clean(&self) -> TestResult {
        let home = self.home();
        let bashrc = fs::read_to_string(home.join(".bashrc"))?;
        for line in USER_BASHRC.lines() {
            if !bashrc.lines().any(|l| l == line) {
                return Err(format!("the user's line {line:?} is gone from ~/.bashrc").into());
            }
        }
        let kept = self.state().join("kept");
        let mut kept_files = Vec::new();
        files_under(&kept, &mut kept_files)?;
        for (path, content, _) in Host::user_files() {
            let live = home.join(path);
            let in_place = fs::symlink_metadata(&live).is_ok_and(|m| m.is_file())
                && fs::read_to_string(&live).is_ok_and(|c| c == content);
            let suffix = live.strip_prefix("/").unwrap_or(&live).to_path_buf();
            let in_kept =
                kept_files.iter().any(|k| k.ends_with(&suffix) && fs::read_to_string(k).is_ok_and(|c| c == content));
            if !in_place && !in_kept {
                return Err(format!("the user's ~/{path} is neither in place nor in {}", kept.display()).into());
            }
        }
        let mut stray = Vec::new();
        staging_under(&home, &self.state(), &mut stray)?;
        staging_under(&self.machine.layout.nginx_prefix(), &self.state(), &mut stray)?;
        if !stray.is_empty() {
            return Err(format!("staging left behind: {stray:?}").into());
        }
        let tmp = self.state().join("tmp");
        let left: Vec<PathBuf> =
            fs::read_dir(&tmp).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        if !left.is_empty() {
            return Err(format!("the state folder's tmp/ is not empty: {left:?}").into());
        }
        Ok(())
    }
}

/// Records every entry under `dir` (not `dir` itself) as `LABEL/relative`.
fn walk(
    dir: &Path,
    base: &Path,
    label: &str,
    skip: &dyn Fn(&Path) -> bool,
    tree: &mut BTreeMap<String, String>,
) -> TestResult {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        let rel = path.strip_prefix(base)?;
        if skip(rel) {
            continue;
        }
        let Some(description) = describe(&path)? else { continue };
        let is_dir = description.starts_with("dir ");
        tree.insert(format!("{label}/{}", rel.display()), description);
        if is_dir {
            walk(&path, base, label, skip, tree)?;
        }
    }
    Ok(())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> TestResult {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            files_under(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

/// Names starting with `.pi-bootstrap` (staging, `.pi-bootstrap-capture`) under `dir`,
/// outside the state folder.
fn staging_under(dir: &Path, state: &Path, out: &mut Vec<PathBuf>) -> TestResult {
    let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        if path.starts_with(state) {
            continue;
        }
        if entry.file_name().to_string_lossy().starts_with(".pi-bootstrap") {
            out.push(path.clone());
        }
        if entry.file_type()?.is_dir() {
            staging_under(&path, state, out)?;
        }
    }
    Ok(())
}

/// What differs between two trees, one line per path (descriptions only: digests, never
/// contents).
fn differences(want: &BTreeMap<String, String>, got: &BTreeMap<String, String>) -> String {
    let mut lines = Vec::new();
    for (path, description) in want {
        match got.get(path) {
            None => lines.push(format!("  missing {path} ({description})")),
            Some(other) if other != description => lines.push(format!("  {path}: {other}, want {description}")),
            Some(_) => {}
        }
    }
    for (path, description) in got {
        if !want.contains_key(path) {
            lines.push(format!("  extra {path} ({description})"));
        }
    }
    lines.join("\n")
}

/// A chain run that changes nothing: every step's report says zero changes and ran
/// no command.
fn changes_nothing(json: &serde_json::Value) -> TestResult {
    let steps = json["steps"].as_array().ok_or("no steps in the chain's JSON")?;
    if steps.len() != STEPS.len() {
        return Err(format!("{} steps ran, want {}", steps.len(), STEPS.len()).into());
    }
    for step in steps {
        let report = &step["report"];
        let changed: Vec<String> = report["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["status"] != "ok" && i["status"] != "skipped")
            .map(|i| format!("{} {}: {}", i["id"], i["status"], i["detail"]))
            .collect();
        if report["summary"]["changed"] != 0 || report["commands"] != serde_json::json!([]) {
            return Err(format!(
                "{} changed something on a converged host: {changed:?}, commands {}",
                step["step"], report["commands"]
            )
            .into());
        }
    }
    Ok(())
}

/// Each step's time in the chain's JSON, by binary.
fn durations(json: &serde_json::Value) -> BTreeMap<String, Duration> {
    json["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["step"].as_str()?.to_owned(), Duration::from_secs_f64(s["seconds"].as_f64()?))))
        .collect()
}

/// The chain's items that did not end ok, for messages.
fn not_ok(json: &serde_json::Value) -> String {
    let mut lines = Vec::new();
    for step in json["steps"].as_array().into_iter().flatten() {
        for item in step["report"]["items"].as_array().into_iter().flatten() {
            if item["status"] != "ok" {
                lines.push(format!("  {} {} {}: {}", step["step"], item["id"], item["status"], item["detail"]));
            }
        }
        if step["exit_code"] != 0 {
            lines.push(format!("  {} exited {}: {}", step["step"], step["exit_code"], step["stderr"]));
        }
    }
    lines.join("\n")
}

#[test]
fn every_step_killed_at_a_random_moment_converges_with_one_chain_run() -> TestResult {
    // Built here, outside the sandbox, so the child's build is a quick no-op.
    built_binaries();
    let Some(machine) = isolated_shown("every_step_killed_at_a_random_moment_converges_with_one_chain_run") else {
        return Ok(());
    };
    let trials = env_number("PI_BOOTSTRAP_SOAK")?.unwrap_or(3);
    let only = env_number("PI_BOOTSTRAP_SOAK_TRIAL")?;
    let seed = match env_number("PI_BOOTSTRAP_SOAK_SEED")? {
        Some(seed) => seed,
        None => SystemTime::now().duration_since(SystemTime::UNIX_EPOCH)?.as_nanos() as u64,
    };
    let started = Instant::now();
    let host = Host::prepare(machine)?;

    // The reference: the whole chain, uninterrupted, on a fresh HOME.
    host.reset()?;
    let (code, json, all) = host.chain()?;
    if code != Some(0) {
        return Err(format!("the reference restore exited {code:?}:\n{}\n{all}", not_ok(&json)).into());
    }
    let reference = host.tree()?;
    host.kept_and_clean()?;
    let times = durations(&json);
    let (code, again, _) = host.chain()?;
    if code != Some(0) {
        return Err(format!("a second reference restore exited {code:?}:\n{}", not_ok(&again)).into());
    }
    changes_nothing(&again)?;
    if host.tree()? != reference {
        return Err(format!("a second restore changed the tree:\n{}", differences(&reference, &host.tree()?)).into());
    }
    let shown: Vec<String> = STEPS.iter().map(|s| format!("{} {:?}", s.bin, times.get(s.bin))).collect();
    show(&format!(
        "seed {seed:#x} (PI_BOOTSTRAP_SOAK_SEED), {trials} trials; reference restore of {} entries in {:.1} s: {}",
        reference.len(),
        started.elapsed().as_secs_f64(),
        shown.join(", ")
    ));

    let mut ran = 0;
    for trial in 0..trials {
        if only.is_some_and(|k| k != trial + 1) {
            continue;
        }
        let began = Instant::now();
        let mut rng = Rng::for_trial(seed, trial);
        let bin = ORDER[(trial % ORDER.len() as u64) as usize];
        let at = STEPS.iter().position(|s| s.bin == bin).ok_or("a step of ORDER is not in STEPS")?;
        let full = times.get(bin).copied().unwrap_or(Duration::from_secs(1));
        let delay = full.mul_f64(rng.fraction());
        let replay = format!("PI_BOOTSTRAP_SOAK_SEED={seed:#x} PI_BOOTSTRAP_SOAK_TRIAL={}", trial + 1);
        let failed = |what: String| -> Error {
            format!("trial {} ({bin} at {delay:?}; replay with {replay}): {what}", trial + 1).into()
        };

        host.reset()?;
        for step in &STEPS[..at] {
            host.step(step).map_err(|e| failed(format!("a step before the kill failed: {e}")))?;
        }
        let (killed, output) = host.kill_during(&STEPS[at], delay)?;
        let (code, json, all) = host.chain()?;
        if code != Some(0) {
            return Err(failed(format!(
                "the chain after the kill exited {code:?}:\n{}\nthe killed step's output:\n{output}\nthe chain's:\n{all}",
                not_ok(&json)
            )));
        }
        let converge: Vec<String> = durations(&json)
            .iter()
            .map(|(s, d)| format!("{} {:.2}", s.trim_start_matches("bootstrap-"), d.as_secs_f64()))
            .collect();
        let tree = host.tree()?;
        if tree != reference {
            return Err(failed(format!(
                "the tree differs from the reference:\n{}\nthe chain:\n{}",
                differences(&reference, &tree),
                not_ok(&json)
            )));
        }
        host.kept_and_clean().map_err(|e| failed(e.to_string()))?;
        let (code, again, _) = host.chain()?;
        if code != Some(0) {
            return Err(failed(format!("a further chain run exited {code:?}:\n{}", not_ok(&again))));
        }
        changes_nothing(&again).map_err(|e| failed(e.to_string()))?;
        ran += 1;
        show(&format!(
            "trial {}/{trials}: {bin} {} at {} ms of {} ms; converged ({}) (trial {:.1} s)",
            trial + 1,
            if killed { "killed" } else { "finished before the kill" },
            delay.as_millis(),
            full.as_millis(),
            converge.join(" "),
            began.elapsed().as_secs_f64()
        ));
    }
    show(&format!("{ran} trials converged in {:.1} s (seed {seed:#x})", started.elapsed().as_secs_f64()));
    Ok(())
}
