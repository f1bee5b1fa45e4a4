//! The drill's side of the sandbox: where its pi-config remote lives, the restored
//! user's environment, and the check that nothing of it is left running. Namespaces,
//! the user manager and nginx are `common::sandbox`'s.

use std::path::PathBuf;

use common::sandbox::{Layout, Machine};
use xshell::Shell;

/// Where the "remote" of the pi-config repo lives in a sandbox.
pub fn origin(layout: &Layout) -> PathBuf {
    layout.root.join("origin/pi-config")
}

/// The environment of the restored host's user: HOME, user-level installs in
/// `~/.local` (npm's global prefix too, so nothing lands in /usr), npm's and pip's
/// download caches outside HOME (shared by the sandbox's hosts), `~/.local/bin` first
/// on PATH; with a booted machine, its runtime folder too.
pub fn user_env(sh: &Shell, layout: &Layout, machine: Option<&Machine>) -> Result<(), Box<dyn std::error::Error>> {
    fs_err::create_dir_all(layout.home())?;
    sh.set_var("HOME", layout.home());
    sh.set_var("NGINX_PREFIX", layout.nginx_prefix());
    sh.set_var("PI_BACKUP_REPO", layout.backup_repo());
    sh.set_var("NO_COLOR", "1");
    let local = layout.home().join(".local");
    sh.set_var("NPM_CONFIG_PREFIX", &local);
    // The registries' downloads are cached outside HOME, as a local mirror would keep
    // them: every host of the sandbox still installs for real, but each package is
    // fetched once per drill, not once per host.
    let cache = layout.root.join("registry-cache");
    sh.set_var("npm_config_cache", cache.join("npm"));
    sh.set_var("PIP_CACHE_DIR", cache.join("pip"));
    let path = std::env::var("PATH").unwrap_or_default();
    sh.set_var("PATH", format!("{}:{path}", local.join("bin").display()));
    if let Some(machine) = machine {
        sh.set_var("XDG_RUNTIME_DIR", &machine.runtime_dir);
    }
    Ok(())
}

/// Processes of this machine whose command line mentions `needle` (to prove the
/// sandbox left nothing running).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let own = std::process::id().to_string();
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
        .filter(|e| e.file_name().to_string_lossy() != own)
        .filter_map(|e| {
            let raw = std::fs::read(e.path().join("cmdline")).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            line.contains(needle).then(|| format!("{}: {}", e.file_name().to_string_lossy(), line.trim()))
        })
        .collect()
}
