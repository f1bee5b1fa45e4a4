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

/// A moment in local time (the C library's `localtime_r`, so `TZ` and
/// `/etc/localtime` decide), as systemd prints it: `Wed 2026-12-02 03:00:00 UTC`, day
/// names in English whatever the locale; `None` when the C library cannot say.
pub fn local_time_text(unix_secs: i64) -> Option<String> {
    let secs = libc::time_t::try_from(unix_secs).ok()?;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for
    // the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return None;
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: a non-null tm_zone points at a NUL-terminated name the C library keeps.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }.to_string_lossy().into_owned()
    };
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    let day = usize::try_from(tm.tm_wday).ok().and_then(|d| DAYS.get(d))?;
    let text = format!(
        "{day} {:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    );
    Some(text.trim_end().to_owned())
}

/// The name of the user with the effective uid, from `/etc/passwd` (no process, no
/// NSS lookup); `None` when the file does not name it (a user from LDAP, say: the caller
/// asks `id -un` then).
pub fn user_name_from_passwd() -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    name_of_uid(&passwd, euid())
}

/// The name of `uid` in the text of a passwd file (`name:password:uid:...`); the first
/// line that names it wins, as in the C library's files lookup.
fn name_of_uid(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next().filter(|n| !n.is_empty() && !n.starts_with(['+', '-']))?;
        let listed = fields.nth(1)?.parse::<u32>().ok()?;
        (listed == uid).then(|| name.to_owned())
    })
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

/// A socket of the kernel's socket-diagnostics netlink family (`NETLINK_SOCK_DIAG`, what
/// `ss` asks): requests are written to it and the answers read from it, as a file.
pub fn sock_diag_socket() -> std::io::Result<std::fs::File> {
    use std::os::fd::FromRawFd as _;
    // SAFETY: socket(2) takes no pointer and has no preconditions.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns; the file closes it.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
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

#[cfg(test)]
mod tests {
    use super::name_of_uid;

    #[test]
    fn a_uid_is_named_by_its_first_line_in_passwd() {
        let passwd = "# comment\nroot:x:0:0:root:/root:/bin/bash\n+nis\nbad line\n\
                      pi:x:1000:1000:Pi,,,:/home/pi:/bin/bash\nalias:x:1000:1000::/home/pi:/bin/sh\n";
        assert_eq!(name_of_uid(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of_uid(passwd, 1000).as_deref(), Some("pi"));
        assert_eq!(name_of_uid(passwd, 1001), None);
        assert_eq!(name_of_uid("", 0), None);
    }
}
