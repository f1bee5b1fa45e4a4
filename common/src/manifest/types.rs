//! The manifest's types, one per section. Field docs become the JSON Schema's
//! descriptions, so they are written for the person editing the manifest.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use super::expand::{HostPath, RepoFile};

/// A position in the manifest file (1-based), for messages about an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl Pos {
    pub(crate) fn of<T>(spanned: &Spanned<T>) -> Pos {
        Pos { line: spanned.referenced.line(), column: spanned.referenced.column() }
    }
}

/// The name of an item: unique within its section, part of the item's id.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Name(pub(crate) Spanned<String>);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0.value
    }
    pub fn pos(&self) -> Pos {
        Pos::of(&self.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$",
            "maxLength": 64,
            "description": "A name: letters, digits, '.', '_' and '-' (at most 64), starting with a letter or a digit; unique within its section."
        })
    }
}

/// The whole host.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Where it was read from (absolute); not a key of the file.
    #[serde(skip)]
    #[schemars(skip)]
    pub file: std::path::PathBuf,
    /// Manifest format version; only 1 exists.
    pub version: u32,
    /// The host's name, used to tag backups. Defaults to the machine's host name.
    #[serde(default)]
    #[schemars(length(min = 1))]
    pub host: Option<String>,
    /// Default values for `${NAME}` in paths and urls; the process environment wins.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Tools that must be installed, with how to check and install them.
    #[serde(default)]
    pub prereqs: Vec<Prereq>,
    /// The pi-config repository: where it lives, where it comes from, its dependencies.
    pub repo: Repo,
    /// Pi config files linked from the repo into place (usually under `~/.pi/agent`).
    #[serde(default)]
    pub links: Vec<Link>,
    /// Folders that must exist, with their modes.
    #[serde(default)]
    pub dirs: Vec<Dir>,
    /// The services of the host: the service manifest.
    #[serde(default)]
    pub services: Vec<Service>,
    /// nginx: where its configuration lives and the sites to install.
    #[serde(default)]
    pub nginx: Option<Nginx>,
    /// Managed blocks in shell rc files (such as `pitmux` and PATH).
    #[serde(default)]
    pub shell: Vec<ShellBlock>,
    /// Env files with the names of the variables they must hold (never values).
    #[serde(default)]
    pub env: Vec<EnvFile>,
    /// Every external path with its role and backup class.
    #[serde(default)]
    pub paths: Vec<DeclaredPath>,
    /// The restic backup of the `backup`-class paths.
    #[serde(default)]
    pub backup: Option<Backup>,
    /// Extra checks run by `bootstrap-validate`.
    #[serde(default)]
    pub validate: Vec<Check>,
    /// `env` by name, built on first use by [`Manifest::env_file`]; not a key of the file.
    #[serde(skip)]
    #[schemars(skip)]
    env_index: std::sync::OnceLock<BTreeMap<String, usize>>,
}

/// A tool that must be installed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Prereq {
    pub name: Name,
    /// The command that proves the tool is there, e.g. `[bun, --version]`.
    pub check: Argv,
    /// A version requirement such as `>=1.1` checked against the check's output.
    #[serde(default)]
    pub version: Option<String>,
    /// How to install it when it is missing.
    pub install: Install,
    /// Environment for the check command (e.g. `PI_OFFLINE: "1"`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// How a prerequisite is installed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Install {
    /// A Debian package, installed with `apt-get install`.
    Apt(#[schemars(length(min = 1))] String),
    /// A global npm package, installed with `npm install -g`.
    Npm(#[schemars(length(min = 1))] String),
    /// A Python tool, installed with `pipx install`.
    Pip(#[schemars(length(min = 1))] String),
    /// A crate, installed with `cargo install`.
    Cargo(#[schemars(length(min = 1))] String),
    /// A script in the repo, run with no arguments.
    Script(RepoFile),
}

/// The pi-config repository.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Repo {
    /// Where the work tree lives on the host, e.g. `~/pi-config`.
    pub path: HostPath,
    /// Where to clone it from (any url git understands; `${NAME}` is expanded).
    #[schemars(with = "String", length(min = 1))]
    pub url: Spanned<String>,
    /// The branch to check out (default `main`).
    #[serde(default = "default_branch")]
    #[schemars(length(min = 1))]
    pub branch: String,
    /// Dependency installs, such as `bun install`.
    #[serde(default)]
    pub deps: Vec<Dep>,
}

fn default_branch() -> String {
    "main".to_owned()
}

/// A dependency install inside the repo.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dep {
    pub name: Name,
    /// The install command.
    pub run: CommandSpec,
    /// The folder to run it in, relative to the repo.
    #[serde(default)]
    pub dir: Option<RepoFile>,
    /// The lockfile whose change makes the install due again, relative to the repo.
    #[serde(default)]
    pub lockfile: Option<RepoFile>,
    /// What the install produces (e.g. `node_modules`); missing means the install is due.
    #[serde(default)]
    pub installed: Option<RepoFile>,
    /// How long the install may take (default 10m).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// A symlink from the repo into place.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub name: Name,
    /// The file or folder in the repo the link points to.
    pub source: RepoFile,
    /// Where the link is made.
    pub target: HostPath,
}

/// A folder that must exist.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dir {
    pub name: Name,
    pub path: HostPath,
    /// Octal mode in quotes, e.g. "0700". Default "0755".
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// One service of the host: the service manifest's record.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: Name,
    /// What the service is for, in one sentence.
    #[schemars(length(min = 1))]
    pub purpose: String,
    /// What kind of service it is.
    #[serde(default)]
    pub class: ServiceClass,
    /// Where its code lives, relative to the repo.
    pub source: RepoFile,
    /// How its code is installed (e.g. `[bun, install]`), run in `source`.
    #[serde(default)]
    pub install: Option<CommandSpec>,
    /// Its systemd user unit in the repo.
    pub unit: RepoFile,
    /// Timer units that go with it, in the repo.
    #[serde(default)]
    pub timers: Vec<RepoFile>,
    /// The env file it reads (a name from the `env` section).
    #[serde(default)]
    pub env_file: Option<String>,
    /// Where it keeps runtime state (sockets, pid files, queues).
    #[serde(default)]
    pub runtime_path: Option<HostPath>,
    /// Where it keeps durable data; needs `backup`.
    #[serde(default)]
    pub data_path: Option<HostPath>,
    /// Where it writes logs.
    #[serde(default)]
    pub log_path: Option<HostPath>,
    /// The TCP port it listens on, if any (1 to 65535).
    #[serde(default)]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
    /// How to tell it is healthy, besides systemd's state.
    #[serde(default)]
    pub health: Option<Health>,
    /// The backup class of its data path.
    #[serde(default)]
    #[schemars(with = "Option<BackupClass>")]
    pub backup: Option<Spanned<BackupClass>>,
    /// How its data path is captured by a backup while it runs (default `stop`).
    #[serde(default)]
    pub capture: Option<Capture>,
}

impl Service {
    /// The name of its systemd unit: the unit file's name (`agents-database.service`).
    pub fn unit_name(&self) -> String {
        repo_file_name(&self.unit)
    }
    /// The names of its timer units.
    pub fn timer_names(&self) -> Vec<String> {
        self.timers.iter().map(repo_file_name).collect()
    }
    /// Every unit of the service: its own, then its timers.
    pub fn unit_names(&self) -> Vec<String> {
        std::iter::once(self.unit_name()).chain(self.timer_names()).collect()
    }
    /// The units that must be enabled and active for it to run: its timers when it has
    /// some (a job runs when its timer fires), else its own unit.
    pub fn units_to_run(&self) -> Vec<String> {
        let timers = self.timer_names();
        if timers.is_empty() { vec![self.unit_name()] } else { timers }
    }
}

fn repo_file_name(file: &RepoFile) -> String {
    let raw = file.raw();
    std::path::Path::new(raw).file_name().map_or_else(|| raw.to_owned(), |n| n.to_string_lossy().into_owned())
}

/// What kind of service a service is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceClass {
    /// A long-running service beside Pi.
    #[default]
    Sidecar,
    /// A timer-driven job (sweeper, analyzer, telemetry roll-up).
    Job,
    /// A service users reach through nginx.
    Web,
    /// A bridge to an outside chat or API (e.g. Telegram).
    Bridge,
}

/// How to tell a service is healthy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Health {
    /// An HTTP GET that must answer with `status` (and `body`, a regex, when given).
    Http(HttpCheck),
    /// A TCP connect to `host:port`.
    Tcp(String),
    /// A command that must exit 0.
    Command(CommandSpec),
}

/// An HTTP expectation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    pub url: String,
    /// Expected status (default 200), an HTTP status from 100 to 599.
    #[serde(default = "default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    /// A regex the body must match.
    #[serde(default)]
    pub body: Option<String>,
}

fn default_status() -> u16 {
    200
}

/// nginx: its folders and the sites to install.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nginx {
    /// The nginx prefix (`-p`), e.g. `/etc/nginx`.
    pub prefix: HostPath,
    /// The main configuration file (`-c`), e.g. `/etc/nginx/nginx.conf`.
    pub conf: HostPath,
    /// Where site files are written.
    pub sites_available: HostPath,
    /// Where enabled sites are linked (omit when sites are included from one folder).
    #[serde(default)]
    pub sites_enabled: Option<HostPath>,
    /// The sites.
    #[serde(default)]
    pub sites: Vec<NginxSite>,
}

/// An nginx site from the repo.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NginxSite {
    pub name: Name,
    pub source: RepoFile,
    /// Routes the site serves, checked through nginx by `bootstrap-validate`.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// A route served through nginx.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub url: String,
    /// Expected status (default 200), an HTTP status from 100 to 599.
    #[serde(default = "default_status")]
    #[schemars(range(min = 100, max = 599))]
    pub status: u16,
    #[serde(default)]
    pub body: Option<String>,
}

/// A managed block in a text file such as `~/.bashrc`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellBlock {
    pub name: Name,
    /// The file that holds the block.
    pub file: HostPath,
    /// The block's content, from a file in the repo.
    pub source: RepoFile,
}

/// An env file and the names of the variables it must hold.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    pub name: Name,
    pub path: HostPath,
    /// Variable names (never values).
    pub vars: Vec<String>,
    /// Octal mode; default and recommended "0600".
    #[serde(default)]
    pub mode: Option<Mode>,
}

/// An external path with its role and backup class.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclaredPath {
    pub name: Name,
    pub path: HostPath,
    /// What lives there.
    #[schemars(length(min = 1))]
    pub role: String,
    #[schemars(with = "BackupClass")]
    pub backup: Spanned<BackupClass>,
    /// The services that write here besides their `data_path` (copyparty's salts in
    /// `~/.config/copyparty`): on a fresh host they wait for this path's data to be
    /// restored before they start, and a restore stops them while it puts it back.
    #[serde(default)]
    pub owners: Vec<String>,
    /// How a backup captures it while its owners run (default `stop` when services
    /// write here, else `live`).
    #[serde(default)]
    pub capture: Option<Capture>,
}

/// How a backup captures a path that services write to while they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Capture {
    /// Every SQLite database in the folder is copied online through SQLite's own
    /// backup API (consistent, writers keep going); the rest of the folder is read as
    /// it is. The live database and its `-wal`/`-shm`/`-journal` stay out of the
    /// snapshot; a restore puts the copy back at the database's own path.
    Sqlite,
    /// The services that write here are stopped for as long as the snapshot takes, and
    /// started again after.
    Stop,
    /// Read as it is, while services may write: only safe for files written whole
    /// (atomic renames) or only appended to.
    Live,
}

impl Capture {
    pub fn as_str(self) -> &'static str {
        match self {
            Capture::Sqlite => "sqlite",
            Capture::Stop => "stop",
            Capture::Live => "live",
        }
    }
}

/// How a path comes back after the machine is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackupClass {
    /// In git: comes back with a clone.
    Git,
    /// Reproducible by running the bootstrap.
    Bootstrap,
    /// Must be backed up: durable data.
    Backup,
    /// Can be lost.
    Disposable,
}

impl BackupClass {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupClass::Git => "git",
            BackupClass::Bootstrap => "bootstrap",
            BackupClass::Backup => "backup",
            BackupClass::Disposable => "disposable",
        }
    }
}

/// The restic backup.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backup {
    /// A restic repository: a folder, `sftp:...`, `s3:...`, `rest:...`.
    #[schemars(with = "String")]
    pub repository: Spanned<String>,
    /// The file holding the repository password (never the password itself).
    pub password_file: HostPath,
    /// The oldest a snapshot may be before the backup counts as stale, e.g. "26h".
    pub max_age: HumanDuration,
    /// When to back up, in systemd's `OnCalendar` syntax (`daily`, `*-*-* 03:00`):
    /// `bootstrap-services` installs a user timer that runs `bootstrap-data backup`
    /// (then `forget` and `verify` when they are declared); a missed run catches up.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub schedule: Option<Spanned<String>>,
    /// Which snapshots of this host `bootstrap-data forget` keeps (the newest snapshot
    /// of every path is always kept).
    #[serde(default)]
    pub keep: Option<Keep>,
    /// How `bootstrap-data verify` reads the backup back.
    #[serde(default)]
    pub verify: Option<Verify>,
}

/// Which snapshots to keep, as restic's `forget --keep-*` counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// The newest N snapshots.
    #[serde(default)]
    pub last: Option<u32>,
    /// The newest snapshot of each of the last N days that have one.
    #[serde(default)]
    pub daily: Option<u32>,
    /// ... of each of the last N weeks.
    #[serde(default)]
    pub weekly: Option<u32>,
    /// ... of each of the last N months.
    #[serde(default)]
    pub monthly: Option<u32>,
}

/// How the backup is read back.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    /// How much of the repository's data `restic check --read-data-subset` reads, such
    /// as "5%" (default "2%").
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub read_data: Option<Spanned<String>>,
    /// Files per path restored from the newest snapshot and compared with the live ones
    /// that have not changed since (default 5).
    #[serde(default)]
    pub files: Option<u32>,
    /// The scheduled run verifies when the last verification is older than this
    /// (default: every scheduled run).
    #[serde(default)]
    pub every: Option<HumanDuration>,
    /// The audit fails when the last verification failed or is older than this, e.g. "8d".
    pub max_age: HumanDuration,
}

/// A check run by `bootstrap-validate`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: Name,
    /// A command to run.
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// An HTTP request to make.
    #[serde(default)]
    pub http: Option<HttpCheck>,
    /// A file that must exist.
    #[serde(default)]
    pub file: Option<HostPath>,
    /// Folder to run the command in.
    #[serde(default)]
    pub dir: Option<HostPath>,
    /// Environment for the command.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Expected exit code of the command (default 0).
    #[serde(default)]
    pub exit: Option<i32>,
    /// A regex the command's output must match.
    #[serde(default)]
    pub output: Option<String>,
    /// How long the check may take (default 10s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
}

/// An argv list: the program and its arguments, never pasted into a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(with = "Vec<String>")]
pub struct Argv(pub Vec<String>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let args = Vec::<String>::deserialize(d)?;
        if args.is_empty() {
            return Err(de::Error::custom(
                "expected a command, found an empty list: give the program and its arguments, such as [bun, --version]",
            ));
        }
        Ok(Argv(args))
    }
}

/// A command: an argv list, or `{shell: "..."}` to run through `sh -c` on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum CommandSpec {
    Argv(Vec<String>),
    Shell(String),
}

impl CommandSpec {
    /// The argv to run: the list itself, or `sh -c SCRIPT`.
    pub fn argv(&self) -> Vec<String> {
        match self {
            CommandSpec::Argv(args) => args.clone(),
            CommandSpec::Shell(script) => vec!["sh".into(), "-c".into(), script.clone()],
        }
    }
}

impl fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandSpec::Argv(args) => f.write_str(&crate::exec::display_argv(args)),
            CommandSpec::Shell(script) => write!(f, "sh -c {script:?}"),
        }
    }
}

impl JsonSchema for CommandSpec {
    fn schema_name() -> Cow<'static, str> {
        "CommandSpec".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A command: a list of arguments, or {shell: \"...\"} to run through sh -c.",
            "oneOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "object", "properties": {"shell": {"type": "string"}},
                 "required": ["shell"], "additionalProperties": false}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = CommandSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command: a list of arguments such as [bun, install], or {shell: \"...\"}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandSpec, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                if args.is_empty() {
                    return Err(de::Error::custom(
                        "expected a command, found an empty list: give the program and its arguments, such as [bun, install], or {shell: \"...\"}",
                    ));
                }
                Ok(CommandSpec::Argv(args))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CommandSpec, A::Error> {
                let mut script = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key != "shell" {
                        return Err(de::Error::unknown_field(&key, &["shell"]));
                    }
                    if script.is_some() {
                        return Err(de::Error::duplicate_field("shell"));
                    }
                    script = Some(map.next_value::<String>()?);
                }
                script.map(CommandSpec::Shell).ok_or_else(|| de::Error::missing_field("shell"))
            }
        }
        d.deserialize_any(CommandVisitor)
    }
}

/// A file mode written in octal, in quotes: "0700".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mode(pub u32);

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl JsonSchema for Mode {
    fn schema_name() -> Cow<'static, str> {
        "Mode".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^0?[0-7]{3,4}$",
            "description": "An octal file mode in quotes, such as \"0700\"."
        })
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ModeVisitor;
        const EXPECTED: &str = "an octal mode in quotes, such as \"0700\"";
        impl Visitor<'_> for ModeVisitor {
            type Value = Mode;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Mode, E> {
                let digits = v.strip_prefix("0o").unwrap_or(v);
                let valid = (3..=4).contains(&digits.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
                match u32::from_str_radix(digits, 8) {
                    Ok(mode) if valid && mode <= 0o7777 => Ok(Mode(mode)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &EXPECTED)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mode, E> {
                Err(unquoted_mode(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Mode, E> {
                if v.fract() == 0.0 && (0.0..=7777.0).contains(&v) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    return Err(unquoted_mode(v as u64));
                }
                Err(E::invalid_type(de::Unexpected::Float(v), &EXPECTED))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mode, E> {
                Err(E::invalid_type(de::Unexpected::Signed(v), &EXPECTED))
            }
        }
        d.deserialize_any(ModeVisitor)
    }
}

/// The error for a mode written without quotes, which YAML reads as a decimal number.
fn unquoted_mode<E: de::Error>(v: u64) -> E {
    let digits = v.to_string();
    let example = if digits.len() <= 4 && digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        format!("{digits:0>4}")
    } else {
        "0700".to_owned()
    };
    E::custom(format_args!(
        "write the mode in quotes, such as \"{example}\": without quotes YAML reads it as the decimal number {v}"
    ))
}

/// A duration such as "10s", "5m" or "26h".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HumanDuration(pub Duration);

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "HumanDuration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A duration such as \"10s\", \"5m\", \"26h\" or \"7days\"."
        })
    }
}

/// The longest duration a manifest or a flag may give (ten years): anything longer is
/// a mistake, and would overflow the clock's arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Reads a duration such as "10s" or "26h" for a command-line flag, bounded by
/// [`MAX_DURATION`] (a clap `value_parser`).
pub fn parse_duration_flag(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| format!("{e}: give a duration such as 10s or 5m"))?;
    if duration > MAX_DURATION {
        return Err(format!("{text:?} is too long: at most 10 years"));
    }
    Ok(duration)
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parsed = humantime::parse_duration(&text);
        if let Ok(duration) = parsed
            && duration > MAX_DURATION
        {
            return Err(de::Error::custom(format_args!(
                "expected a duration such as \"10s\", \"5m\" or \"26h\", found {text:?}: it is too long (at most 10 years)"
            )));
        }
        parsed.map(HumanDuration).map_err(|e| {
            let why = match e {
                humantime::DurationError::UnknownUnit { unit, value, .. } if unit.is_empty() => {
                    format!(": a unit is needed, such as \"{value}s\" or \"{value}m\"")
                }
                humantime::DurationError::UnknownUnit { unit, .. } => {
                    format!(": {unit:?} is not a unit (use s, m, h, d, ...)")
                }
                humantime::DurationError::NumberOverflow => ": it is too large".to_owned(),
                _ => String::new(),
            };
            de::Error::custom(format_args!(
                "expected a duration such as \"10s\", \"5m\" or \"26h\", found {text:?}{why}"
            ))
        })
    }
}

/// The id of an item: `section:name`, such as `link:pi-settings`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ItemId(pub String);

impl ItemId {
    pub fn new(kind: &str, name: &str) -> ItemId {
        ItemId(format!("{kind}:{name}"))
    }
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Manifest {
    /// The env file of the given name (the first, if two have it): a lookup in an index
    /// built on first use, so a service each costs no scan of the section.
    pub fn env_file(&self, name: &str) -> Option<&EnvFile> {
        let index = self.env_index.get_or_init(|| {
            let mut index = BTreeMap::new();
            for (i, env) in self.env.iter().enumerate() {
                index.entry(env.name.as_str().to_owned()).or_insert(i);
            }
            index
        });
        match index.get(name).and_then(|&i| self.env.get(i)) {
            Some(env) if env.name.as_str() == name => Some(env),
            // `env` changed since the index was built: read it as it is.
            _ => self.env.iter().find(|e| e.name.as_str() == name),
        }
    }

    /// Every path the manifest gives a backup class, with that class: the declared
    /// paths and the services' data paths.
    pub fn classified_paths(&self) -> Vec<(&HostPath, BackupClass, String)> {
        let mut out: Vec<(&HostPath, BackupClass, String)> =
            self.paths.iter().map(|p| (&p.path, p.backup.value, format!("path:{}", p.name))).collect();
        for service in &self.services {
            if let (Some(data), Some(class)) = (&service.data_path, &service.backup) {
                out.push((data, class.value, format!("service:{}", service.name)));
            }
        }
        out
    }
}
