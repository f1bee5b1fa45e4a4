//! Broken manifests: every fixture in `tests/broken/` must be refused with a message a
//! user understands, snapshotted in `tests/snapshots/`. Plus: no input makes the loader
//! panic.

#![allow(clippy::disallowed_methods)]

use std::error::Error;
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::manifest::{LoadError, LoadErrorKind, load_str};
use tempfile::TempDir;

type TestResult = Result<(), Box<dyn Error>>;

/// What the temporary HOME holds for a case.
#[derive(Clone, Copy)]
enum Home {
    /// Nothing: the repo is not cloned yet, so repo files are not looked up.
    Empty,
    /// `~/pi-config` with a few files, so missing repo files are reported.
    Repo,
    /// `~/escape` is a symlink to a folder outside HOME.
    Escape,
}

/// The environment the cases see: a fixed set of variables.
fn env(name: &str) -> Option<String> {
    match name {
        "PI_DOMAIN" => Some("pi.example.org".to_owned()),
        "XDG_RUNTIME_DIR" => Some("/run/user/1000".to_owned()),
        _ => None,
    }
}

/// A temporary HOME (and a folder outside it) prepared for one case.
struct Sandbox {
    home: TempDir,
    outside: TempDir,
}

impl Sandbox {
    fn new(kind: Home) -> Result<Sandbox, Box<dyn Error>> {
        let sandbox = Sandbox { home: TempDir::new()?, outside: TempDir::new()? };
        let home = sandbox.home.path();
        match kind {
            Home::Empty => {}
            Home::Repo => {
                let repo = home.join("pi-config");
                fs::create_dir_all(repo.join("services/memory"))?;
                // A clone, complete: a commit checked out (the files are checked only then).
                let fixture = "# fixture\n";
                let files =
                    [("pi/settings.json", fixture), ("units/memory.service", fixture), ("nginx/pi.conf", fixture)];
                test_support::git::init_repo(&repo, &files)?;
            }
            Home::Escape => {
                std::os::unix::fs::symlink(sandbox.outside.path(), home.join("escape"))?;
            }
        }
        Ok(sandbox)
    }

    /// The message with the temporary folders replaced by stable words.
    fn redact(&self, message: &str) -> String {
        let mut out = message.to_owned();
        for (dir, word) in [(self.home.path(), "[HOME]"), (self.outside.path(), "[OUTSIDE]")] {
            // The longer form first, so it is not left half replaced.
            let mut forms = vec![dir.to_path_buf()];
            if let Ok(real) = dir.canonicalize() {
                forms.push(real);
            }
            forms.sort_by_key(|form| std::cmp::Reverse(form.as_os_str().len()));
            for form in forms {
                out = out.replace(&form.display().to_string(), word);
            }
        }
        out
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken").join(format!("{name}.yaml"))
}

/// Loads `broken/NAME.yaml`, requires it to be refused with well-formed problems, and
/// snapshots the message.
fn refused(name: &str, home: Home) -> TestResult {
    let text = fs::read_to_string(fixture(name))?;
    let sandbox = Sandbox::new(home)?;
    let file = PathBuf::from(format!("broken/{name}.yaml"));
    let err: LoadError = match load_str(&file, &text, sandbox.home.path(), &env) {
        Ok(_) => return Err(format!("{name}: the broken manifest was accepted").into()),
        Err(err) => err,
    };
    assert!(
        matches!(err.kind, LoadErrorKind::Parse(_) | LoadErrorKind::Invalid(_)),
        "{name}: unexpected error kind {:?}",
        err.kind
    );
    let problems = err.problems();
    assert!(!problems.is_empty(), "{name}: no problem reported");
    for problem in &problems {
        assert!(problem.pos.line > 0, "{name}: no line for {problem}");
        assert!(problem.pos.column > 0, "{name}: no column for {problem}");
        assert!(
            !problem.key.is_empty() && !problem.key.contains('?') && !problem.key.contains(".value"),
            "{name}: a key path a user cannot follow: {:?}",
            problem.key
        );
        assert!(!problem.message.is_empty(), "{name}: empty message");
    }
    let lines: Vec<u64> = problems.iter().map(|p| p.pos.line).collect();
    assert!(lines.is_sorted(), "{name}: problems not sorted by line: {lines:?}");
    let message = sandbox.redact(&err.to_string());
    for (line, p) in message.lines().zip(&problems) {
        let located = format!("broken/{name}.yaml:{}:{}: {}: ", p.pos.line, p.pos.column, p.key);
        assert!(line.starts_with(&located), "{name}: not `file:line:col: key: message`: {line}");
    }
    // The fixture's first comment line says what it tests.
    let what = match text.lines().next().and_then(|line| line.strip_prefix("# ")) {
        Some(what) => what,
        None if text.is_empty() => "An empty file.",
        None => "(no description)",
    };
    insta::with_settings!({
        description => what,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, message);
    });
    Ok(())
}

/// One test per fixture, so a failure names its case.
macro_rules! broken {
    ($($name:ident $(: $home:ident)?),* $(,)?) => {
        $(
            #[test]
            fn $name() -> TestResult {
                refused(stringify!($name), broken!(@home $($home)?))
            }
        )*

        /// Every fixture file has a test above, and every test its fixture file.
        #[test]
        fn every_fixture_has_a_case() -> TestResult {
            let listed = [$(stringify!($name)),*];
            let mut on_disk = Vec::new();
            for entry in fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken"))? {
                let path = entry?.path();
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    on_disk.push(stem.to_owned());
                }
            }
            on_disk.sort();
            let mut listed: Vec<String> = listed.iter().map(|s| (*s).to_owned()).collect();
            listed.sort();
            assert_eq!(on_disk, listed);
            assert!(listed.len() >= 30);
            Ok(())
        }
    };
    (@home) => { Home::Empty };
    (@home $home:ident) => { Home::$home };
}

broken! {
    // YAML syntax
    syntax_bad_indentation,
    syntax_unclosed_flow_sequence,
    syntax_tab_indentation,
    syntax_duplicate_key,
    multiple_documents,
    // unknown keys
    unknown_key_top_level,
    unknown_key_nested,
    // wrong types
    type_string_for_list,
    type_list_for_string,
    type_port_out_of_range,
    type_mode_bare_number,
    type_mode_not_octal,
    type_bad_duration,
    type_duration_too_long,
    version_as_string,
    // unknown enum variants
    enum_install_brew,
    enum_backup_sometimes,
    enum_class_daemon,
    // missing fields, empty and odd documents
    missing_repo,
    missing_service_unit,
    empty_file,
    comments_only,
    document_is_list,
    command_empty_list,
    command_as_string,
    empty_value,
    section_is_string,
    check_empty_list,
    shell_command_extra_key,
    version_2,
    // meaning: names and paths
    duplicate_names,
    invalid_names,
    unknown_var,
    tilde_user,
    relative_host_path,
    dotdot_host_path,
    repo_file_dotdot,
    repo_file_absolute,
    repo_file_missing: Repo,
    link_target_outside_home,
    link_target_through_symlink: Escape,
    // meaning: backup classes, references, checks
    data_path_without_backup_class,
    backup_class_without_backup_section,
    service_backup_without_data_path,
    env_file_unknown,
    path_owner_unknown,
    backup_policy_mistakes,
    backup_unit_name_taken,
    capture_unknown,
    env_mode_0644,
    env_var_invalid_name,
    validate_two_kinds,
    check_bad_regex,
    // meaning: one owner per host path
    owner_link_over_repo,
    owner_sites_enabled_is_available,
    owner_two_items_one_path,
    owner_shell_block_in_env_file,
    owner_inside_link,
    // meaning: expansion is total
    vars_unexpanded_in_vars,
    url_unexpanded,
    // meaning: classes and the repository
    class_two_classes_one_path,
    repository_inside_backup_path,
    repository_inside_repo,
    repository_relative,
    // meaning: values that can never work
    values_urls_and_tcp,
    values_ports_and_units,
    values_empty_strings,
    values_versions_durations_modes,
    repo_file_script_missing: Repo,
    name_too_long,
    // messages
    message_type_not_syntax,
    message_ends_in_quote,
    message_ends_in_flow,
    message_long_value,
    several_problems,
}

/// A rich manifest for the panic test when the example is not there.
const RICH: &str = r#"
version: 1
host: pi
vars:
  PI_USER: pi
  DATA: /srv/data
prereqs:
  - name: bun
    check: [bun, --version]
    version: ">=1.1"
    install: {script: scripts/install-bun.sh}
  - name: jq
    check: [jq, --version]
    install: {apt: jq}
    env: {LC_ALL: C}
repo:
  path: ~/pi-config
  url: https://${PI_DOMAIN}/${PI_USER}/pi-config.git
  branch: main
  deps:
    - name: extensions
      run: [bun, install]
      dir: extensions
      lockfile: extensions/bun.lock
      installed: extensions/node_modules
      timeout: 10m
    - name: tools
      run: {shell: "cd tools && make"}
links:
  - name: settings
    source: pi/settings.json
    target: ~/.pi/agent/settings.json
dirs:
  - name: work
    path: ~/work
    mode: "0700"
  - name: outputs
    path: $HOME/outputs
services:
  - name: memory
    purpose: The memory database.
    class: sidecar
    source: services/memory
    install: [bun, install]
    unit: units/memory.service
    timers: [units/memory-sweep.timer]
    env_file: memory
    runtime_path: ${XDG_RUNTIME_DIR}/memory
    data_path: ${DATA}/memory
    log_path: ~/.local/state/memory/log
    port: 8080
    health: {http: {url: "http://127.0.0.1:8080/health", status: 200, body: ok}}
    backup: backup
  - name: telegram
    purpose: 'The Telegram bridge: "quoted" text.'
    class: bridge
    source: services/telegram
    unit: units/telegram.service
    health: {tcp: "127.0.0.1:9000"}
  - name: sweeper
    purpose: >
      Sweeps old sessions.
    class: job
    source: services/sweeper
    unit: units/sweeper.service
    health:
      command: {shell: "test -f /tmp/ok"}
nginx:
  prefix: /etc/nginx
  conf: /etc/nginx/nginx.conf
  sites_available: /etc/nginx/sites-available
  sites_enabled: /etc/nginx/sites-enabled
  sites:
    - name: copyparty
      source: nginx/pi.conf
      routes:
        - {url: "http://127.0.0.1/files/", status: 200, body: "copyparty"}
shell:
  - name: pitmux
    file: ~/.bashrc
    source: shell/pitmux.sh
env:
  - name: memory
    path: ~/.config/pi/memory.env
    vars: [MEMORY_TOKEN, "MEMORY_URL"]
    mode: "0600"
paths:
  - name: work
    path: ~/work
    role: Work in progress.
    backup: backup
  - name: cache # a comment
    path: ~/.cache/pi
    role: Caches.
    backup: disposable
backup:
  repository: sftp:backup@example.org:/srv/restic/${PI_USER}
  password_file: ~/.config/restic/password
  max_age: 26h
validate:
  - name: memory-up
    command: [curl, -fsS, "http://127.0.0.1:8080/health"]
    exit: 0
    output: "ok|ready"
    timeout: 5s
    env: {NO_COLOR: "1"}
  - name: files
    http: {url: "http://127.0.0.1/files/"}
  - name: settings-present
    file: ~/.pi/agent/settings.json
# a trailing comment with unicode: é ü 🦀
"#;

/// Loads `text`, turning a panic into an error that names what was loaded.
fn load_without_panic(text: &str, home: &Path, what: &str) -> TestResult {
    let file = Path::new("pi-bootstrap.yaml");
    match catch_unwind(AssertUnwindSafe(|| {
        let _ = load_str(file, text, home, &env);
    })) {
        Ok(()) => Ok(()),
        Err(_) => Err(format!("loading panicked on {what}:\n{text}").into()),
    }
}

/// How many bytes the panic test loads per text: about 0.6 s in a debug build.
const PANIC_TEST_BUDGET: usize = 600_000;

/// `count` indices from `0..len`, evenly spread, all of them when there are few.
fn spread(len: usize, count: usize) -> Vec<usize> {
    if count >= len {
        return (0..len).collect();
    }
    (0..count).map(|i| i * len / count.max(1)).collect()
}

/// Truncations and single-line deletions of the example manifest (when it is there) and
/// of [`RICH`] load without a panic.
#[test]
fn no_input_panics() -> TestResult {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/pi-host/pi-bootstrap.yaml");
    let sandbox = Sandbox::new(Home::Repo)?;
    if let Ok(text) = fs::read_to_string(&example) {
        mangle_without_panic(&text, sandbox.home.path())?;
    }
    mangle_without_panic(RICH, sandbox.home.path())
}

fn mangle_without_panic(text: &str, home: &Path) -> TestResult {
    let len = text.len().max(1);

    // Truncations: at every line start and end (where most cuts break structure), then an
    // even spread of other offsets; only char boundaries. All of them for a small text.
    let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
    let line_cuts: Vec<usize> = text.match_indices('\n').flat_map(|(i, _)| [i, i + 1]).collect();
    let affordable = PANIC_TEST_BUDGET * 2 / 3 / (len / 2 + 1);
    let at_lines = spread(line_cuts.len(), affordable / 2);
    let elsewhere = spread(boundaries.len(), affordable - at_lines.len());
    let mut offsets: Vec<usize> = at_lines
        .into_iter()
        .map(|i| line_cuts[i])
        .chain(elsewhere.into_iter().map(|i| boundaries[i]))
        .chain([text.len()])
        .collect();
    offsets.sort_unstable();
    offsets.dedup();
    for offset in offsets {
        load_without_panic(&text[..offset], home, &format!("the first {offset} bytes"))?;
    }

    // Single-line deletions.
    let lines: Vec<&str> = text.lines().collect();
    for skip in spread(lines.len(), PANIC_TEST_BUDGET / 3 / len) {
        let kept: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, line)| *line).collect();
        load_without_panic(&kept.join("\n"), home, &format!("line {} deleted", skip + 1))?;
    }
    Ok(())
}

#[test]
fn the_rich_manifest_loads() -> TestResult {
    let sandbox = Sandbox::new(Home::Empty)?;
    match load_str(Path::new("rich.yaml"), RICH, sandbox.home.path(), &env) {
        Ok(manifest) => {
            assert_eq!(manifest.services.len(), 3);
            Ok(())
        }
        Err(err) => Err(sandbox.redact(&err.to_string()).into()),
    }
}

/// Deep nesting and alias bombs are refused, not a stack overflow or a hang.
#[test]
fn hostile_input_is_refused() -> TestResult {
    let sandbox = Sandbox::new(Home::Empty)?;
    let deep_flow = format!("version: 1\nvars: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let deep_block: String = (0..5_000).map(|i| format!("{}- \n", "  ".repeat(i))).collect();
    let mut bomb = String::from("version: 1\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let prev = i - 1;
        bomb.push_str(&format!("a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"));
    }
    for (what, text) in [("deep flow", deep_flow), ("deep block", deep_block), ("alias bomb", bomb)] {
        let started = std::time::Instant::now();
        let result = load_str(Path::new("hostile.yaml"), &text, sandbox.home.path(), &env);
        assert!(result.is_err(), "{what}: accepted");
        // Not a speed figure: a bound that tells a refusal from a hang (the bomb expanded
        // would be billions of nodes), wide enough for a loaded machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "{what}: took {:?}", started.elapsed());
    }
    Ok(())
}
