//! What the check commands printed, kept in the state folder (`prereqs-cache.json`), so
//! that a tool whose binary is unchanged is not run again.
//!
//! An answer is used again only when everything it came from is the same:
//!
//! - the whole check argv and the prerequisite's `env` (kept as a digest: the file holds
//!   no argument or value of them);
//! - the binary the check's program resolves to on PATH, found as `common::exec` finds
//!   it (`which`), after links: its canonical path, device, inode, size, modification
//!   and change times. An upgrade, a replacement or a removal changes that identity.
//!
//! What is kept is what the check printed (the version in it and its first line), never
//! the verdict: the manifest's requirement is applied at every run, so a requirement
//! raised in the manifest is judged against the cached version at once.
//!
//! Never cached ([`uncacheable`], [`is_shell_script`]): a check that failed (a missing
//! tool is looked for again every time); one whose program is a shell or runs another
//! program (`sh -c`, `env`, `sudo`), since its binary says nothing of what it runs; an
//! interpreter given more than a version flag (`python3 -c`, `node -e`: the answer
//! comes from the code and modules it loads); a program that is a shell script (a
//! version manager's shim picks the version from its configuration, which no identity
//! of the script follows); one whose `env` sets `PATH` (the program would be found
//! elsewhere). A binary that picks what it runs from its configuration (rustup's
//! proxies after `rustup default`) is not seen to change: `--deep` runs every check.
//!
//! The identity is read before the check runs, so a binary replaced while its check runs
//! is found changed the next time, never the other way round.
//!
//! A corrupt cache is never trusted. Unlike the other state files, which record work
//! and so are never read as empty ([`common::state::StateError::Corrupt`] stops the
//! step), forgetting a cache loses nothing but time: a corrupt one is reported (the
//! item `state:prereqs-cache`), not used (every check runs), and a run keeps it aside
//! among the kept copies and writes a new one, so it is reported once. `--check` and
//! the audit only read the cache; they say a run would rebuild it.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use common::manifest::Prereq;
use common::state::{StateDir, StateError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The state file of the cache.
pub const FILE: &str = "prereqs-cache.json";
/// The layout of the file; a file of another layout is started afresh, silently (it is
/// not corrupt, only older or newer).
const FORMAT: u32 = 1;

/// The cached answers, by prerequisite name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cache {
    format: u32,
    entries: BTreeMap<String, Entry>,
}

impl Default for Cache {
    fn default() -> Cache {
        Cache { format: FORMAT, entries: BTreeMap::new() }
    }
}

/// Only the layout of the file, read first.
#[derive(Deserialize)]
struct Header {
    format: u32,
}

/// What a successful check printed, as far as the verdict needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// The version found in the output, if any (semver).
    pub version: Option<String>,
    /// The first line of the output, for the message when there is no version in it.
    pub first_line: String,
}

/// One cached answer and what it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The digest of the check argv and the prerequisite's `env`.
    key: String,
    /// The binary the check ran.
    pub binary: Binary,
    pub answer: Answer,
    /// When the check ran (RFC 3339).
    checked_at: String,
}

impl Entry {
    /// When the check last ran, if the file says so readably.
    pub fn checked_at(&self) -> Option<SystemTime> {
        humantime::parse_rfc3339(&self.checked_at).ok()
    }
}

/// The identity of a binary: where it is after links, and its inode as the OS stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binary {
    pub path: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Binary {
    /// The binary `program` runs as, found on PATH as `common::exec` finds it, after
    /// links; `None` when it is not there or cannot be read.
    pub fn of(program: &str) -> Option<Binary> {
        let found = which::which(program).ok()?;
        let path = std::fs::canonicalize(found).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        Some(Binary {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
            path,
        })
    }
}

/// What to look up for one prerequisite: the key of its check and the binary it runs
/// now. `None` when its answer is never cached (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Probe {
    key: String,
    binary: Binary,
}

impl Probe {
    /// Reads the binary's identity now, before its check runs.
    pub fn of(prereq: &Prereq) -> Option<Probe> {
        if uncacheable(&prereq.check.0, &prereq.env).is_some() {
            return None;
        }
        let binary = Binary::of(prereq.check.0.first()?)?;
        if is_shell_script(&binary.path) {
            return None;
        }
        Some(Probe { key: key(&prereq.check.0, &prereq.env), binary })
    }

    /// The entry to keep for the answer the check just gave.
    pub fn entry(self, answer: Answer, now: SystemTime) -> Entry {
        Entry {
            key: self.key,
            binary: self.binary,
            answer,
            checked_at: humantime::format_rfc3339_seconds(now).to_string(),
        }
    }
}

/// Programs that run another program or a script given to them: their binary says
/// nothing of the answer.
const LAUNCHERS: &[&str] = &[
    "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox", "env", "sudo", "doas", "nice", "nohup",
    "timeout", "stdbuf", "setsid", "xargs", "flock", "time", "command",
];

/// Interpreters: their own version flag answers from the binary; anything else runs
/// code (`-c`, `-e`, `-m`, a script) whose answer comes from elsewhere.
fn is_interpreter(name: &str) -> bool {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(stem, "python" | "pypy" | "node" | "nodejs" | "perl" | "ruby" | "php" | "lua" | "luajit" | "deno" | "bun")
}

/// Why the answer of the check `argv` with `env` is never cached, if it is not (the
/// check's argv alone; [`is_shell_script`] looks at the program itself).
pub fn uncacheable(argv: &[String], env: &BTreeMap<String, String>) -> Option<&'static str> {
    let program = argv.first()?;
    let name = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if LAUNCHERS.contains(&name.as_str()) {
        return Some("its program runs another program or a script");
    }
    let args = &argv[1..];
    if is_interpreter(&name) && !(args.len() <= 1 && args.iter().all(|a| is_version_flag(a))) {
        return Some("its interpreter runs code that its binary does not tell");
    }
    if env.contains_key("PATH") {
        return Some("its env sets PATH");
    }
    None
}

fn is_version_flag(arg: &str) -> bool {
    matches!(arg, "--version" | "-V" | "-v" | "version" | "-version")
}

/// Is `path` a script run by a shell (`#!/bin/sh`, `#!/usr/bin/env bash`)?
pub fn is_shell_script(path: &Path) -> bool {
    let mut head = [0u8; 256];
    let read = std::fs::File::open(path).and_then(|mut f| f.read(&mut head));
    let Ok(n) = read else { return false };
    let Some(line) = head[..n].strip_prefix(b"#!") else { return false };
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next().unwrap_or_default()).into_owned();
    let mut words = line.split_whitespace();
    let base = |word: &str| Path::new(word).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut interpreter = words.next().map(base).unwrap_or_default();
    if interpreter == "env" {
        // `env -S bash -e`, `env PATH=... sh`: the first word that is neither.
        interpreter = words.find(|w| !w.starts_with('-') && !w.contains('=')).map(base).unwrap_or_default();
    }
    LAUNCHERS.contains(&interpreter.as_str())
}

/// The digest of a check: its whole argv and its environment, each part
/// length-prefixed so that no two checks share one.
fn key(argv: &[String], env: &BTreeMap<String, String>) -> String {
    let mut digest = Sha256::new();
    let mut part = |bytes: &[u8]| {
        digest.update(u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_le_bytes());
        digest.update(bytes);
    };
    part(b"argv");
    argv.iter().for_each(|a| part(a.as_bytes()));
    part(b"env");
    for (name, value) in env {
        part(name.as_bytes());
        part(value.as_bytes());
    }
    format!("{:x}", digest.finalize())
}

impl Cache {
    /// The cached answer of `name` for `probe`, when its key and binary are the same.
    pub fn answer(&self, name: &str, probe: &Probe) -> Option<&Entry> {
        self.entries.get(name).filter(|e| e.key == probe.key && e.binary == probe.binary)
    }

    /// Keeps `entry` as the answer of `name`.
    pub fn insert(&mut self, name: &str, entry: Entry) {
        self.entries.insert(name.to_owned(), entry);
    }

    /// Forgets the answer of `name` (its check failed, or is never cached).
    pub fn remove(&mut self, name: &str) {
        self.entries.remove(name);
    }
}

/// What reading the cache found wrong: either way it is not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// It is there but is not what this step writes (the message names the file).
    Corrupt(String),
    /// It cannot be read.
    Unreadable(String),
}

/// Reads the cache: empty when there is none or it has another layout; empty with the
/// trouble when it cannot be trusted.
pub fn load(state: &StateDir) -> (Cache, Option<Trouble>) {
    let trouble = |e: StateError| match e {
        StateError::Corrupt { why, .. } => Trouble::Corrupt(why),
        e => Trouble::Unreadable(e.to_string()),
    };
    match state.read_json::<Header>(FILE) {
        Ok(None) => return (Cache::default(), None),
        Ok(Some(header)) if header.format != FORMAT => return (Cache::default(), None),
        Ok(Some(_)) => {}
        Err(e) => return (Cache::default(), Some(trouble(e))),
    }
    match state.read_json::<Cache>(FILE) {
        Ok(Some(cache)) => (cache, None),
        // Gone between the two reads (a run replaced it, or it was removed).
        Ok(None) => (Cache::default(), None),
        Err(e) => (Cache::default(), Some(trouble(e))),
    }
}

/// Writes the cache; a corrupt one is kept aside first (in the run's kept copies), and
/// the path of that copy comes back.
pub fn save(state: &StateDir, cache: &Cache, corrupt: bool) -> Result<Option<PathBuf>, StateError> {
    let kept = if corrupt { Some(state.keep(&state.file(FILE))?) } else { None };
    state.write_json(FILE, cache)?;
    Ok(kept)
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn shells_launchers_and_interpreters_running_code_are_never_cached() {
        let none = BTreeMap::new();
        for cached in [
            &["git", "--version"][..],
            &["/usr/sbin/nginx", "-v"],
            &["restic", "version"],
            &["/usr/bin/python3", "--version"],
            &["node", "--version"],
            &["python3.11", "-V"],
            &["tmux", "-V"],
            &["pi", "--version"],
        ] {
            assert_eq!(uncacheable(&argv(cached), &none), None, "{cached:?}");
        }
        for never in [
            &["sh", "-c", "echo 1.0"][..],
            &["/bin/bash", "-c", "tool --version"],
            &["dash", "script.sh"],
            &["env", "FOO=1", "tool", "--version"],
            &["sudo", "nginx", "-v"],
            &["python3", "-c", "import foo; print(foo.__version__)"],
            &["python3", "-m", "pipx", "--version"],
            &["node", "-p", "require('x/package.json').version"],
            &["perl", "script.pl"],
        ] {
            assert!(uncacheable(&argv(never), &none).is_some(), "{never:?}");
        }
        let path = BTreeMap::from([("PATH".to_owned(), "/opt/bin".to_owned())]);
        assert!(uncacheable(&argv(&["git", "--version"]), &path).is_some());
        let offline = BTreeMap::from([("PI_OFFLINE".to_owned(), "1".to_owned())]);
        assert_eq!(uncacheable(&argv(&["pi", "--version"]), &offline), None);
    }

    #[test]
    fn a_shell_script_is_told_from_other_scripts_and_binaries() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let cases = [
            ("#!/bin/sh\necho 1\n", true),
            ("#! /bin/bash -e\n", true),
            ("#!/usr/bin/env bash\n", true),
            ("#!/usr/bin/env -S bash -e\n", true),
            ("#!/usr/bin/env node\n", false),
            ("#!/usr/bin/python3\n", false),
            ("\x7fELF\x02\x01\x01", false),
            ("", false),
        ];
        for (i, (text, shell)) in cases.iter().enumerate() {
            let path = dir.path().join(i.to_string());
            std::fs::write(&path, text)?;
            assert_eq!(is_shell_script(&path), *shell, "{text:?}");
        }
        assert!(!is_shell_script(&dir.path().join("missing")));
        Ok(())
    }

    #[test]
    fn the_key_is_the_whole_argv_and_env() {
        let none = BTreeMap::new();
        let base = key(&argv(&["tool", "--version"]), &none);
        assert_eq!(base, key(&argv(&["tool", "--version"]), &none));
        assert_ne!(base, key(&argv(&["tool", "-V"]), &none));
        assert_ne!(base, key(&argv(&["tool", "--version", "x"]), &none));
        assert_ne!(key(&argv(&["a", "bc"]), &none), key(&argv(&["ab", "c"]), &none));
        let env = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_ne!(base, key(&argv(&["tool", "--version"]), &env));
        let other = BTreeMap::from([("A".to_owned(), "2".to_owned())]);
        assert_ne!(key(&argv(&["tool"]), &env), key(&argv(&["tool"]), &other));
    }

    #[test]
    fn a_corrupt_cache_is_trouble_and_another_layout_is_started_afresh() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        assert_eq!(load(&state), (Cache::default(), None));
        state.write(FILE, b"{\"format\": 1, \"entries\": {\"git\": 3}}")?;
        let (cache, trouble) = load(&state);
        assert_eq!(cache, Cache::default());
        assert!(matches!(&trouble, Some(Trouble::Corrupt(why)) if why.contains("invalid type")), "{trouble:?}");
        state.write(FILE, b"{\"format\": 2, \"whatever\": []}")?;
        assert_eq!(load(&state), (Cache::default(), None));
        let kept = save(&state, &Cache::default(), true)?;
        assert!(kept.is_some_and(|k| k.exists()));
        assert_eq!(load(&state), (Cache::default(), None));
        Ok(())
    }
}
