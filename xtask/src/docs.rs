//! `cargo xtask docs`: the host's documents, rendered from its manifest so they cannot
//! drift from it: `bootstrap.md` (the restore runbook in order, with the exact
//! commands), `service-manifest.md` (one record per service) and `backup-policy.md`
//! (every path by backup class). `--check` fails when the committed files are stale.
//!
//! Paths are shown as written in the manifest (`~/pi-config`, `${NGINX_PREFIX}`), not
//! expanded for whoever runs this.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use common::manifest::{BackupClass, CommandSpec, Health, Install, Manifest};

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
fn load(path: &Path) -> Result<Manifest> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
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
            std::fs::create_dir_all(&out)?;
            std::fs::write(&path, text)?;
            println!("wrote {}", path.display());
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!("stale, run `cargo xtask docs` and commit: {}", stale.join(", ")).into())
    }
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
    let _ = writeln!(
        s,
        "## 1. Get the tool\n\nOn the new machine, clone the repo that holds pi-bootstrap and this manifest, and build the steps:\n\n```sh\ncargo build --bins\n```\n\nThe pi-config repo itself comes back in step 3: `{}` cloned from `{}` (branch `{}`).\n",
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
    if !m.env.is_empty() {
        let _ = writeln!(s, "Export the secrets first (they are written into the env files, never shown):\n\n```sh");
        for env in &m.env {
            for var in &env.vars {
                let _ = writeln!(s, "export {var}=...   # {}", env.path.raw());
            }
        }
        let _ = writeln!(s, "```\n");
        if m.backup.is_some() {
            let _ = writeln!(
                s,
                "If the values are only in the backup, restore the data first (step 6, `bootstrap-data restore {mf}`): the env files come back with it, and this step then keeps their values.\n"
            );
        }
    }
    let _ = writeln!(s, "```sh\ntarget/debug/bootstrap-services {mf}\n```\n");
    for svc in &m.services {
        let _ = writeln!(s, "- service `{}`: unit `{}`", svc.name, svc.unit.raw());
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
                "Put the restic password in `{}` (from your password manager), then:\n\n```sh\ntarget/debug/bootstrap-data restore {mf} --check\ntarget/debug/bootstrap-data restore {mf}\n```\n\nRepository: `{}`. Paths that already hold data are left alone unless `--force` (which keeps the current data aside first). See [backup-policy.md](backup-policy.md).\n",
                b.password_file.raw(),
                b.repository.value
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
    for (class, title) in classes {
        let _ = writeln!(s, "## {title}\n\n| path | what | declared by |\n|---|---|---|");
        for p in m.paths.iter().filter(|p| p.backup.value == class) {
            let _ = writeln!(s, "| `{}` | {} | `path:{}` |", p.path.raw(), p.role, p.name);
        }
        for svc in m.services.iter().filter(|svc| svc.backup.as_ref().is_some_and(|b| b.value == class)) {
            if let Some(data) = &svc.data_path {
                let _ = writeln!(s, "| `{}` | data of {} | `service:{}` |", data.raw(), svc.name, svc.name);
            }
        }
        s.push('\n');
    }
    s
}
