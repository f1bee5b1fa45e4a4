//! `cargo xtask docs`: the host's documents, rendered from its manifest so they cannot
//! drift from it: `bootstrap.md` (the restore runbook in order, with the exact
//! commands and what each step does on a fresh host: which services wait for their
//! data, what the restore brings back and starts), `service-manifest.md` (one record
//! per service) and `backup-policy.md` (every path by backup class, with the services
//! that write to each `backup` path). `--check` fails when the committed files are
//! stale.
//!
//! Paths are shown as written in the manifest (`~/pi-config`, `${NGINX_PREFIX}`), not
//! expanded for whoever runs this.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::durable::{self, DataPath};
use common::manifest::{BackupClass, CommandSpec, Health, Install, Manifest, Service};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

#[derive(Debug, clap::Args)]
pub struct DocsArgs {
    /// The host manifest.
    #[arg(long, default_value = "examples/pi-host/pi-bootstrap.yaml")]
    manifest: PathBuf,
    /// Where to write the documents.
    #[arg(long, default_value = "docs")]
    out: PathBuf,
    /// Write nothing; fail when a committed document differs from what the manifest gives.
    #[arg(long)]
    check: bool,
}

/// Loads the manifest as written, without a real HOME or environment, so the documents
/// are the same whoever renders them.
pub fn load(path: &Path) -> Result<Manifest> {
    let text = fs_err::read_to_string(path)?;
    Ok(common::manifest::load_str(path, &text, Path::new("/home/USER"), &|_| None)?)
}

/// The three documents, by file name.
pub fn render(manifest: &Manifest, manifest_arg: &str) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.md", runbook(manifest, manifest_arg)),
        ("service-manifest.md", service_manifest(manifest)),
        ("backup-policy.md", backup_policy(manifest)),
    ]
}

pub fn run(root: &Path, args: &DocsArgs) -> Result<()> {
    let manifest_path = if args.manifest.is_absolute() { args.manifest.clone() } else { root.join(&args.manifest) };
    let manifest = load(&manifest_path)?;
    let out = if args.out.is_absolute() { args.out.clone() } else { root.join(&args.out) };
    let mut stale = Vec::new();
    for (name, text) in render(&manifest, &args.manifest.display().to_string()) {
        let path = out.join(name);
        if args.check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(path.display().to_string());
            }
        } else {
            fs_err::create_dir_all(&out)?;
            fs_err::write(&path, text)?;
            println!("wrote {}", path.display());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("stale, run `cargo xtask docs` and commit: {}", stale.join(", ")).into())
    }
}

/// The bare-machine path: three commands, no Rust toolchain: restic and git from the
/// package manager, the restore kit out of the backup, the kit's restore against the
/// manifest in the cloned repo. Only for a host with a backup (the kit travels in it).
fn bare_machine(m: &Manifest) -> Option<String> {
    let b = m.backup.as_ref()?;
    let kit = format!("~/{}", common::install::KIT_DIR);
    let lib = kit.rsplit_once('/').map_or(kit.as_str(), |(lib, _)| lib).to_owned();
    let password = b.password_file.raw();
    let password = password.strip_prefix("~/").map_or(password.to_owned(), |rest| format!("$HOME/{rest}"));
    let host = m.host.as_deref().map(|h| format!(" --host {h}")).unwrap_or_default();
    let repo = m.repo.path.raw();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "## On a bare machine: three commands, no toolchain\n\nEvery backup holds the restore kit (`cargo xtask kit`: release builds of every step and of `pi-bootstrap-restore`, which need nothing beyond the base system's libc, with this runbook and the manifest schema) at `{kit}`. On a brand-new Debian 12 or 13, as the same user (the backup holds the old HOME's paths), with the restic password file in place (`{}`, see step 1), install restic and git, restore the kit from the repository (checked against its checksum), and run the kit's restore against the manifest in the cloned repo:\n",
        b.password_file.raw()
    );
    let _ = writeln!(
        s,
        "```sh\nsudo apt-get update && sudo apt-get install -y restic git\nRESTIC_REPOSITORY={} RESTIC_PASSWORD_FILE={password} restic dump{host} --path {kit} latest {kit} | tar -x -C / && (cd {kit} && sha256sum -c {}) && tar -xzf {kit}/{} -C {lib}\ngit clone --branch {} {} {repo} && {lib}/bin/{} --manifest {repo}/pi-bootstrap.yaml\n```\n",
        b.repository.value,
        common::install::KIT_SUM_FILE,
        common::install::KIT_FILE,
        m.repo.branch,
        m.repo.url.value,
        bootstrap_restore::NAME,
    );
    let _ = writeln!(
        s,
        "The kit unpacks into `{lib}`: `bin/` (where the backup timer runs the steps from), `share/` (this runbook, the schema) and `VERSION`. It runs the steps below in order; a failed step stops it, and `{lib}/bin/{} --resume` continues after the fix.\n",
        bootstrap_restore::NAME
    );
    Some(s)
}

const GENERATED: &str = "<!-- Generated from the manifest by `cargo xtask docs`; edit the manifest, not this file. -->";

fn host_name(m: &Manifest) -> &str {
    m.host.as_deref().unwrap_or("this host")
}

fn command(spec: &CommandSpec) -> String {
    spec.to_string()
}

fn runbook(m: &Manifest, manifest_arg: &str) -> String {
    let mut s = String::new();
    let mf = format!("--manifest {manifest_arg}");
    let _ = writeln!(s, "{GENERATED}\n\n# Restoring {}\n", host_name(m));
    let _ = writeln!(
        s,
        "Every step below is rerunnable: a second run reports zero changes. Run a step with `--check` first to see what it would do. To run them all in order, stopping at the first failure: `cargo xtask restore {mf}` (and `cargo xtask restore --resume` after fixing what failed).\n"
    );
    if let Some(bare) = bare_machine(m) {
        s.push_str(&bare);
    }
    let _ = writeln!(
        s,
        "## 1. Get the tool\n\nOn the new machine, clone the repo that holds pi-bootstrap and this manifest, and build the steps:\n\n```sh\ncargo build --bins\n```\n"
    );
    if let Some(b) = &m.backup {
        let password = b.password_file.raw();
        // The folder to make first, unless it is HOME itself.
        let mkdir = match password.rsplit_once('/') {
            Some((folder, _)) if !["~", "$HOME", "${HOME}", ""].contains(&folder) => format!("mkdir -p {folder} && "),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "Before anything else, put the restic password file in place, from your password manager (the backup cannot hold its own key): step 6 reads the backup with it.\n\n```sh\n(umask 077 && {mkdir}cat > {password})   # paste the password, then Ctrl-D\n```\n"
        );
    }
    let _ = writeln!(
        s,
        "The pi-config repo itself comes back in step 3: `{}` cloned from `{}` (branch `{}`).\n",
        m.repo.path.raw(),
        m.repo.url.value,
        m.repo.branch
    );
    let _ = writeln!(s, "## 2. Prerequisites\n\n```sh\ntarget/debug/bootstrap-prereqs {mf}\n```\n");
    if !m.prereqs.is_empty() {
        let _ = writeln!(s, "| tool | check | version | install |\n|---|---|---|---|");
        for p in &m.prereqs {
            let install = match &p.install {
                Install::Apt(x) => format!("apt: {x}"),
                Install::Npm(x) => format!("npm: {x}"),
                Install::Pip(x) => format!("pipx: {x}"),
                Install::Cargo(x) => format!("cargo: {x}"),
                Install::Script(f) => format!("script: {}", f.raw()),
            };
            let _ = writeln!(
                s,
                "| {} | `{}` | {} | {} |",
                p.name,
                common::exec::display_argv(&p.check.0),
                p.version.as_deref().unwrap_or("any"),
                install
            );
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "## 3. Repo dependencies, Pi config links, folders\n\n```sh\ntarget/debug/bootstrap-pi-config {mf}\n```\n"
    );
    for dep in &m.repo.deps {
        let _ = writeln!(s, "- dependency `{}`: `{}`", dep.name, command(&dep.run));
    }
    for dir in &m.dirs {
        let _ = writeln!(
            s,
            "- folder `{}` (mode {})",
            dir.path.raw(),
            dir.mode.map_or("0755".to_owned(), |m| m.to_string())
        );
    }
    for link in &m.links {
        let _ = writeln!(s, "- link `{}` -> repo `{}`", link.target.raw(), link.source.raw());
    }
    let _ = writeln!(s, "\n## 4-5. Services, nginx, shell helpers, env files\n");
    let data = durable::data_paths(m);
    let (restored_env, own_env): (Vec<_>, Vec<_>) =
        m.env.iter().partition(|env| durable::holding(&data, env.path.path()).is_some());
    let exports = |s: &mut String, envs: &[&common::manifest::EnvFile]| {
        let _ = writeln!(s, "```sh");
        for env in envs {
            for var in &env.vars {
                let _ = writeln!(s, "export {var}=...   # {}", env.path.raw());
            }
        }
        let _ = writeln!(s, "```\n");
    };
    if !own_env.is_empty() {
        let _ = writeln!(s, "Export the secrets first (they are written into the env files, never shown):\n");
        exports(&mut s, &own_env);
    }
    if !restored_env.is_empty() {
        let files: Vec<String> = restored_env.iter().map(|e| e.path.raw().to_owned()).collect();
        let _ = writeln!(
            s,
            "The env files in `backup`-class paths ({}) come back with the backup in step 6, values included: export their values only when the backup does not hold them (they are written into the env files, never shown). An env file the environment cannot fill waits for the restore instead of failing.\n",
            shown(&files)
        );
        exports(&mut s, &restored_env);
    }
    let _ = writeln!(s, "```sh\ntarget/debug/bootstrap-services {mf}\n```\n");
    let waits: Vec<(&Service, Wait)> =
        m.services.iter().filter_map(|svc| wait(m, &data, svc).map(|w| (svc, w))).collect();
    let writers: Vec<String> =
        waits.iter().filter(|(_, w)| !w.writes.is_empty()).map(|(svc, _)| svc.name.as_str().to_owned()).collect();
    let by_env: Vec<String> =
        waits.iter().filter(|(_, w)| w.writes.is_empty()).map(|(svc, _)| svc.name.as_str().to_owned()).collect();
    if !waits.is_empty() {
        let mut who = Vec::new();
        if !writers.is_empty() {
            who.push(format!("the services that write to `backup`-class data ({})", shown(&writers)));
        }
        if !by_env.is_empty() {
            let those = if writers.is_empty() { "the services" } else { "those" };
            who.push(format!(
                "{those} whose env file lies in a `backup`-class path while that file is missing ({})",
                shown(&by_env)
            ));
        }
        let _ = writeln!(
            s,
            "On a fresh host some services wait for their data: their units are installed, but they are neither enabled nor started until step 6 has put their data back (a first start would make a fresh, empty copy of it). These are {}. A service that runs already is left alone.\n",
            who.join(", and ")
        );
    }
    for svc in &m.services {
        let _ = write!(s, "- service `{}`: unit `{}`", svc.name, svc.unit.raw());
        match waits.iter().find(|(w, _)| w.name.as_str() == svc.name.as_str()).map(|(_, w)| w) {
            Some(w) if !w.writes.is_empty() => {
                let _ = write!(s, "; waits for {}", shown(&w.writes));
                if let Some((env, held)) = &w.env {
                    let _ = write!(s, ", and for `{held}` while its env file `{env}` is missing");
                }
            }
            Some(Wait { env: Some((env, held)), .. }) => {
                let _ = write!(s, "; waits for `{held}` while its env file `{env}` is missing");
            }
            _ => {}
        }
        s.push('\n');
    }
    if let Some(nginx) = &m.nginx {
        for site in &nginx.sites {
            let _ = writeln!(s, "- nginx site `{}` into `{}`", site.name, nginx.sites_available.raw());
        }
    }
    for block in &m.shell {
        let _ = writeln!(s, "- shell block `{}` in `{}`", block.name, block.file.raw());
    }
    let _ = writeln!(s, "\n## 6. Durable data from the backup\n");
    match &m.backup {
        Some(b) => {
            let _ = writeln!(
                s,
                "With the restic password in `{}` (step 1):\n\n```sh\ntarget/debug/bootstrap-data restore {mf} --check\ntarget/debug/bootstrap-data restore {mf}\n```\n",
                b.password_file.raw()
            );
            let host =
                m.host.as_deref().map_or("this host (by its machine name)".to_owned(), |h| format!("host `{h}`"));
            let _ = write!(
                s,
                "Repository: `{}`. On a fresh host the restore brings back every `backup`-class path (see [backup-policy.md](backup-policy.md)) from the newest snapshot of {host} that holds it. What the fresh host wrote there before its data came back is replaced by the backup's copy, and kept aside first (under `~/.local/state/pi-bootstrap/kept/`).",
                b.repository.value
            );
            let blocks = restored_blocks(m, &data);
            if !blocks.is_empty() {
                let _ = write!(
                    s,
                    " The managed blocks of backed-up files ({blocks}) are applied again on top of the restored file, the user's own lines intact."
                );
            }
            let _ = write!(
                s,
                " Data that was there before pi-bootstrap first ran on this host is left alone, and the restore says so, naming the snapshot; `--force` restores over it (kept aside first)."
            );
            if !waits.is_empty() {
                let mut started: Vec<String> = writers.iter().map(|w| format!("`{w}`")).collect();
                if !by_env.is_empty() {
                    let (it, its) = if by_env.len() == 1 { ("it", "its") } else { ("they", "their") };
                    started.push(format!("{} if {it} waited for {its} env file", shown(&by_env)));
                }
                let started = joined(started);
                let _ = write!(s, " Then it enables and starts the services that waited for their data: {started}.");
            }
            let _ = writeln!(
                s,
                "\n\nTo restore from an older snapshot: `target/debug/bootstrap-data snapshots {mf}` lists, per path, the snapshots of this host that hold it; `target/debug/bootstrap-data restore {mf} --snapshot ID` restores from that one over what is there (kept aside first), `--only data:path:NAME` for one path.\n"
            );
            let _ = writeln!(
                s,
                "A brand-new host that was never backed up has no repository yet, and the restore fails on it: run `target/debug/bootstrap-data backup {mf}` first (it creates the repository and takes the first snapshot; after it nothing waits), then `target/debug/bootstrap-data restore {mf}`, which starts the services that waited.\n"
            );
            let _ = writeln!(
                s,
                "`bootstrap-data backup` refuses (exit 1) while a path still waits for its restore and a snapshot holds data for it, so a fresh host's state never becomes the newest snapshot: restore first (`--force` backs up anyway).\n"
            );
        }
        None => {
            let _ = writeln!(s, "No backup is declared: nothing to restore.\n");
        }
    }
    let _ = writeln!(s, "## 7. Validate\n\n```sh\ntarget/debug/bootstrap-validate {mf}\n```\n");
    let _ = writeln!(
        s,
        "Then, any time: `target/debug/pi-config-audit {mf}` reports every difference between the manifest and the host."
    );
    s
}

/// Why a service waits for its data on a fresh host.
struct Wait {
    /// The paths it writes to that lie in (or hold) a `backup`-class path, as written.
    writes: Vec<String>,
    /// Its env file and the `backup`-class path that holds it, as written: it waits
    /// while that file is missing.
    env: Option<(String, String)>,
}

/// Does `svc` wait for its data on a fresh host, and for what? It does when it writes
/// to a `backup`-class path (it is one of its owners), or when its env file lies in one
/// (while the file is missing).
fn wait(m: &Manifest, data: &[DataPath], svc: &Service) -> Option<Wait> {
    let owns = data.iter().any(|d| d.owners.iter().any(|o| o.service == svc.name.as_str()));
    let writes = if owns {
        durable::owned_paths(m, svc)
            .into_iter()
            .filter(|p| data.iter().any(|d| durable::overlap(p, &d.path)))
            .filter_map(|p| raw_path(m, p))
            .collect()
    } else {
        Vec::new()
    };
    let env = svc.env_file.as_deref().and_then(|name| m.env_file(name)).and_then(|env| {
        let held = durable::holding(data, env.path.path())?;
        Some((env.path.raw().to_owned(), raw_path(m, &held.path)?))
    });
    (!writes.is_empty() || env.is_some()).then_some(Wait { writes, env })
}

/// A classified path of the manifest as written.
fn raw_path(m: &Manifest, path: &Path) -> Option<String> {
    m.classified_paths().into_iter().find(|(p, _, _)| p.path() == path).map(|(p, _, _)| p.raw().to_owned())
}

/// "`a`", "`a` and `b`", "`a`, `b` and `c`".
fn shown(items: &[String]) -> String {
    joined(items.iter().map(|i| format!("`{i}`")).collect())
}

/// "a", "a and b", "a, b and c".
fn joined(items: Vec<String>) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// The managed shell blocks whose file is backed up, by file: "`path`, `pitmux` in `~/.bashrc`".
fn restored_blocks(m: &Manifest, data: &[DataPath]) -> String {
    let mut files: Vec<(&str, Vec<String>)> = Vec::new();
    for block in m.shell.iter().filter(|b| durable::holding(data, b.file.path()).is_some()) {
        let name = format!("`{}`", block.name);
        match files.iter_mut().find(|(f, _)| *f == block.file.raw()) {
            Some((_, names)) => names.push(name),
            None => files.push((block.file.raw(), vec![name])),
        }
    }
    files.iter().map(|(file, names)| format!("{} in `{file}`", names.join(", "))).collect::<Vec<_>>().join("; ")
}

fn health(h: &Option<Health>) -> String {
    match h {
        None => "systemd state only".to_owned(),
        Some(Health::Http(c)) => {
            format!(
                "HTTP GET {} -> {}{}",
                c.url,
                c.status,
                c.body.as_ref().map_or(String::new(), |b| format!(", body ~ `{b}`"))
            )
        }
        Some(Health::Tcp(addr)) => format!("TCP connect {addr}"),
        Some(Health::Command(c)) => format!("`{}` exits 0", command(c)),
    }
}

fn service_manifest(m: &Manifest) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{GENERATED}\n\n# Service manifest of {}\n", host_name(m));
    let none = || "-".to_owned();
    for svc in &m.services {
        let _ = writeln!(s, "## {}\n\n{}\n", svc.name, svc.purpose);
        let class =
            serde_json::to_value(svc.class).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let rows = [
            ("class", class),
            ("code source", format!("`{}` (in the repo)", svc.source.raw())),
            ("install", svc.install.as_ref().map_or_else(none, |c| format!("`{}`", command(c)))),
            (
                "unit",
                std::iter::once(&svc.unit)
                    .chain(&svc.timers)
                    .map(|u| format!("`{}`", u.raw()))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "env file",
                svc.env_file.as_ref().and_then(|e| m.env_file(e)).map_or_else(none, |e| format!("`{}`", e.path.raw())),
            ),
            ("port", svc.port.map_or_else(none, |p| p.to_string())),
            ("runtime path", svc.runtime_path.as_ref().map_or_else(none, |p| format!("`{}`", p.raw()))),
            ("data path", svc.data_path.as_ref().map_or_else(none, |p| format!("`{}`", p.raw()))),
            ("log path", svc.log_path.as_ref().map_or_else(none, |p| format!("`{}`", p.raw()))),
            ("health check", health(&svc.health)),
            ("backup class", svc.backup.as_ref().map_or_else(none, |b| b.value.as_str().to_owned())),
        ];
        let _ = writeln!(s, "| | |\n|---|---|");
        for (k, v) in rows {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        s.push('\n');
    }
    s
}

fn backup_policy(m: &Manifest) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{GENERATED}\n\n# Backup policy of {}\n", host_name(m));
    match &m.backup {
        Some(b) => {
            let _ = writeln!(
                s,
                "`backup` paths go into one restic snapshot per run, in `{}`, with the password in `{}`. A path whose newest snapshot is older than {} is stale (`bootstrap-data status`, `pi-config-audit`).\n",
                b.repository.value,
                b.password_file.raw(),
                humantime::format_duration(b.max_age.0)
            );
            match &b.schedule {
                Some(when) => {
                    let _ = writeln!(
                        s,
                        "Scheduled: `{}` (a user timer, `pi-bootstrap-backup.timer`; a run missed while the machine was off is caught up).\n",
                        when.value
                    );
                }
                None => {
                    let _ = writeln!(s, "Not scheduled: a backup happens when `bootstrap-data backup` is run.\n");
                }
            }
            if let Some(keep) = &b.keep {
                let counts: Vec<String> =
                    [("last", keep.last), ("daily", keep.daily), ("weekly", keep.weekly), ("monthly", keep.monthly)]
                        .into_iter()
                        .filter_map(|(name, n)| n.filter(|n| *n > 0).map(|n| format!("{name} {n}")))
                        .collect();
                let _ = writeln!(
                    s,
                    "Kept by `bootstrap-data forget`: {} (and the newest snapshot of every path, always).\n",
                    counts.join(", ")
                );
            }
            if let Some(verify) = &b.verify {
                let _ = writeln!(
                    s,
                    "Verified by `bootstrap-data verify`: restic reads back {} of the data, and {} files of each path are restored and compared with the live ones{}; the audit fails after {} without a good verification.\n",
                    verify.read_data.as_ref().map_or("2%", |r| r.value.as_str()),
                    verify.files.unwrap_or(5),
                    verify.every.map(|e| format!(", every {}", humantime::format_duration(e.0))).unwrap_or_default(),
                    humantime::format_duration(verify.max_age.0)
                );
            }
        }
        None => {
            let _ = writeln!(s, "No restic backup is declared.\n");
        }
    }
    let classes = [
        (BackupClass::Backup, "Must back up: durable data, restored by `bootstrap-data restore`"),
        (BackupClass::Git, "In git: comes back with the clone"),
        (BackupClass::Bootstrap, "Reproducible: the bootstrap steps make it again"),
        (BackupClass::Disposable, "Disposable: can be lost"),
    ];
    let data = durable::data_paths(m);
    for (class, title) in classes {
        let backup = class == BackupClass::Backup;
        let _ = writeln!(s, "## {title}\n");
        if backup && data.iter().any(|d| !d.owners.is_empty()) {
            let _ = writeln!(
                s,
                "The services that write to a path are stopped while it is restored and, on a fresh host, wait for it before they first start.\n"
            );
        }
        if backup {
            let _ = writeln!(
                s,
                "A path is captured `sqlite` (its databases copied online), `stop` (its writers stopped for the snapshot) or `live` (read as it is).\n"
            );
            let _ = writeln!(s, "| path | what | declared by | written by | captured |\n|---|---|---|---|---|");
        } else {
            let _ = writeln!(s, "| path | what | declared by |\n|---|---|---|");
        }
        // The services that write to a backup path, for its last column.
        let written_by = |id: &str| {
            let found = data.iter().find(|d| d.id == format!("data:{id}"));
            let names: Vec<&str> = found.iter().flat_map(|d| d.owners.iter()).map(|o| o.service.as_str()).collect();
            let capture = found.map_or("-", |d| d.capture.as_str());
            if backup {
                format!(" {} | {capture} |", if names.is_empty() { "-".to_owned() } else { names.join(", ") })
            } else {
                String::new()
            }
        };
        for p in m.paths.iter().filter(|p| p.backup.value == class) {
            let id = format!("path:{}", p.name);
            let _ = writeln!(s, "| `{}` | {} | `{id}` |{}", p.path.raw(), p.role, written_by(&id));
        }
        for svc in m.services.iter().filter(|svc| svc.backup.as_ref().is_some_and(|b| b.value == class)) {
            if let Some(data) = &svc.data_path {
                let id = format!("service:{}", svc.name);
                let _ = writeln!(s, "| `{}` | data of {} | `{id}` |{}", data.raw(), svc.name, written_by(&id));
            }
        }
        s.push('\n');
    }
    s
}
