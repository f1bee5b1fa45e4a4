//! The checks, derived from the manifest without writing them twice: every
//! prerequisite's version (`prereq:NAME`), every service's systemd state and health
//! (`service:NAME`), every nginx route (`route:SITE:N`, N from 1) and the manifest's
//! own `validate` list (`check:NAME`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::manifest::{self, CommandSpec, Manifest, ServiceClass};

/// The timeout of a check that sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// One check: a stable id, its kind, how long it may take, and what it does.
#[derive(Debug, Clone)]
pub struct Check {
    /// `prereq:NAME`, `service:NAME`, `route:SITE:N` or `check:NAME`.
    pub id: String,
    /// `prereq`, `service`, `route`, `command`, `http` or `file`.
    pub kind: &'static str,
    /// How long it may take before it is reported as timed out (and its command killed).
    pub timeout: Duration,
    pub probe: Probe,
}

/// What a check does.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Run a prerequisite's check command and compare its version.
    Prereq(PrereqProbe),
    /// Read the unit's state (from the one batched systemd query), then its health.
    Service(ServiceProbe),
    /// An HTTP GET with an expected status and body pattern.
    Http(HttpProbe),
    /// A command with an expected exit code and output pattern.
    Command(CommandProbe),
    /// A file or folder that must exist (a link must resolve).
    File(PathBuf),
    /// A declaration that cannot be checked, and why.
    Invalid(String),
}

/// A prerequisite's check command.
#[derive(Debug, Clone)]
pub struct PrereqProbe {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    /// A requirement such as `>=1.4`.
    pub version: Option<String>,
}

/// A service: its unit, its timers, and how to tell it is healthy.
#[derive(Debug, Clone)]
pub struct ServiceProbe {
    /// The unit's name, such as `agents-database.service`.
    pub unit: String,
    /// Timer units (`x.timer`) that drive it.
    pub timers: Vec<String>,
    /// A timer-driven job: its timers must be active, the service itself is inactive
    /// between runs (but its last run must not have failed).
    pub job: bool,
    pub health: Option<Health>,
}

/// A service's health check, besides systemd's state.
#[derive(Debug, Clone)]
pub enum Health {
    Http(HttpProbe),
    /// `host:port` that must accept a TCP connection.
    Tcp(String),
    Command(CommandProbe),
}

/// An HTTP GET and what it must answer.
#[derive(Debug, Clone)]
pub struct HttpProbe {
    pub url: String,
    pub status: u16,
    /// A regex the body must match (`^` and `$` match at line starts and ends).
    pub body: Option<String>,
}

/// A command and what it must do.
#[derive(Debug, Clone)]
pub struct CommandProbe {
    pub argv: Vec<String>,
    /// The command as the manifest wrote it, for messages.
    pub shown: String,
    /// The folder to run it in.
    pub dir: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// The expected exit code.
    pub exit: i32,
    /// A regex that stdout or stderr must match (`^` and `$` match at line starts and
    /// ends).
    pub output: Option<String>,
}

impl CommandProbe {
    /// A command from an argv list that must exit 0.
    pub fn argv<S: AsRef<str>>(argv: &[S]) -> CommandProbe {
        let argv: Vec<String> = argv.iter().map(|a| a.as_ref().to_owned()).collect();
        CommandProbe {
            shown: common::exec::display_argv(&argv),
            argv,
            dir: None,
            env: Vec::new(),
            exit: 0,
            output: None,
        }
    }

    fn from_spec(spec: &CommandSpec) -> CommandProbe {
        CommandProbe { shown: spec.to_string(), ..CommandProbe::argv(&spec.argv()) }
    }
}

impl Check {
    /// A command check (`check:NAME`) that must exit 0 within `timeout`.
    pub fn command<S: AsRef<str>>(name: &str, argv: &[S], timeout: Duration) -> Check {
        Check { id: format!("check:{name}"), kind: "command", timeout, probe: Probe::Command(CommandProbe::argv(argv)) }
    }

    /// The file or folder the check concerns, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match &self.probe {
            Probe::File(path) => Some(path),
            Probe::Command(CommandProbe { dir: Some(dir), .. }) => Some(dir),
            _ => None,
        }
    }

    /// The systemd units whose state the check needs.
    pub fn units(&self) -> Vec<String> {
        match &self.probe {
            Probe::Service(service) => std::iter::once(&service.unit).chain(&service.timers).cloned().collect(),
            _ => Vec::new(),
        }
    }
}

fn http_probe(check: &manifest::HttpCheck) -> HttpProbe {
    HttpProbe { url: check.url.clone(), status: check.status, body: check.body.clone() }
}

fn env_list(env: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Every check the manifest declares, in manifest order: prerequisites, services,
/// nginx routes, then the `validate` list. `default_timeout` applies where a check
/// sets none.
pub fn plan(manifest: &Manifest, default_timeout: Duration) -> Vec<Check> {
    let mut checks = Vec::new();
    for prereq in &manifest.prereqs {
        checks.push(Check {
            id: format!("prereq:{}", prereq.name),
            kind: "prereq",
            timeout: default_timeout,
            probe: Probe::Prereq(PrereqProbe {
                argv: prereq.check.0.clone(),
                env: env_list(&prereq.env),
                version: prereq.version.clone(),
            }),
        });
    }
    for service in &manifest.services {
        let health = service.health.as_ref().map(|h| match h {
            manifest::Health::Http(http) => Health::Http(http_probe(http)),
            manifest::Health::Tcp(addr) => Health::Tcp(addr.clone()),
            manifest::Health::Command(spec) => Health::Command(CommandProbe::from_spec(spec)),
        });
        checks.push(Check {
            id: format!("service:{}", service.name),
            kind: "service",
            timeout: default_timeout,
            probe: Probe::Service(ServiceProbe {
                unit: service.unit_name(),
                timers: service.timer_names(),
                job: service.class == ServiceClass::Job,
                health,
            }),
        });
    }
    for site in manifest.nginx.iter().flat_map(|n| &n.sites) {
        for (n, route) in site.routes.iter().enumerate() {
            checks.push(Check {
                id: format!("route:{}:{}", site.name, n + 1),
                kind: "route",
                timeout: default_timeout,
                probe: Probe::Http(HttpProbe {
                    url: route.url.clone(),
                    status: route.status,
                    body: route.body.clone(),
                }),
            });
        }
    }
    for check in &manifest.validate {
        let timeout = check.timeout.map_or(default_timeout, |t| t.0);
        let (kind, probe) = match (&check.command, &check.http, &check.file) {
            (Some(spec), None, None) => (
                "command",
                Probe::Command(CommandProbe {
                    dir: check.dir.as_ref().map(|d| d.path().to_path_buf()),
                    env: env_list(&check.env),
                    exit: check.exit.unwrap_or(0),
                    output: check.output.clone(),
                    ..CommandProbe::from_spec(spec)
                }),
            ),
            (None, Some(http), None) => ("http", Probe::Http(http_probe(http))),
            (None, None, Some(file)) => ("file", Probe::File(file.path().to_path_buf())),
            _ => ("check", Probe::Invalid("declare exactly one of command, http or file".to_owned())),
        };
        checks.push(Check { id: format!("check:{}", check.name), kind, timeout, probe });
    }
    checks
}

/// Only the checks `--only` names (all when empty); an unknown id is an error of the
/// command line.
pub fn select(checks: Vec<Check>, only: &[String]) -> Result<Vec<Check>, common::engine::UnknownItem> {
    for wanted in only {
        if !checks.iter().any(|c| c.id == *wanted) {
            let known = checks.iter().map(|c| c.id.as_str()).collect::<Vec<_>>().join(", ");
            return Err(common::engine::UnknownItem { id: wanted.clone(), known });
        }
    }
    Ok(checks.into_iter().filter(|c| only.is_empty() || only.contains(&c.id)).collect())
}
