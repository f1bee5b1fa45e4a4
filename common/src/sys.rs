//! The few facts about the running process that need the C library.
#![allow(unsafe_code)]

/// Is this process running as root (effective uid 0)?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The processes descended from `pid` (children, grandchildren, ...), from
/// `/proc/PID/task/*/children`; empty when /proc cannot tell.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else { continue };
        for task in tasks.flatten() {
            let Ok(children) = std::fs::read_to_string(task.path().join("children")) else { continue };
            for child in children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
                if !found.contains(&child) {
                    found.push(child);
                    queue.push(child);
                }
            }
        }
    }
    found
}

/// Sends SIGKILL to `pid`; a process that is already gone is not an error.
pub fn kill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return };
    // SAFETY: kill has no memory-safety preconditions; a stale pid only fails (ESRCH).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Fault injection for tests: `PI_BOOTSTRAP_CRASH_AT=NAME` kills the process at the
/// named point, as a power cut or a `kill -9` would (no destructor runs, no temporary
/// is cleaned up). The points: `units-staged`, `before-daemon-reload`, `after-units`,
/// `after-nginx-swap`, `after-clone`, `after-restic-restore`.
pub fn crash_point(name: &str) {
    if std::env::var("PI_BOOTSTRAP_CRASH_AT").is_ok_and(|at| at == name) {
        std::process::abort();
    }
}
