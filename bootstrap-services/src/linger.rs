//! Linger: the user's systemd manager starts at boot and keeps running without a
//! login, so the user services do too. Set with `loginctl enable-linger USER` (as
//! root), read back from logind's file `/var/lib/systemd/linger/USER`, or when it is
//! absent with `loginctl show-user USER -p Linger --value`.

use std::path::Path;
use std::sync::OnceLock;

use common::engine::{Ctx, Difference, EngineError, Observed, Resource};
use common::exec::Cmd;
use common::manifest::ItemId;

/// Where systemd-logind keeps a file per user with linger on.
const LINGER_DIR: &str = "/var/lib/systemd/linger";

/// The folder systemd-logind keeps its users' state in while it runs.
const LOGIND_USERS: &str = "/run/systemd/users";

/// Linger for one user.
#[derive(Debug, Clone)]
pub struct Linger {
    pub id: ItemId,
    pub user: String,
}

/// The user running this step: `$USER`, else its name in `/etc/passwd`, else `id -un`
/// (asked once).
pub fn current_user() -> String {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        std::env::var("USER").ok().filter(|u| !u.is_empty()).or_else(common::sys::user_name_from_passwd).unwrap_or_else(
            || {
                Cmd::new("id")
                    .arg("-un")
                    .output()
                    .map(|o| o.stdout.trim().to_owned())
                    .unwrap_or_else(|_| "root".to_owned())
            },
        )
    })
    .clone()
}

impl Linger {
    pub fn new() -> Linger {
        let user = current_user();
        Linger { id: ItemId::new("linger", &user), user }
    }

    fn read(&self) -> Result<Result<bool, String>, EngineError> {
        // logind's own record: `enable-linger` writes this file and logind answers from
        // it. Present: linger is on, and no process is spawned to ask.
        if Path::new(LINGER_DIR).join(&self.user).exists() {
            return Ok(Ok(true));
        }
        // logind makes this folder when it starts: without it there is no logind to ask.
        if !Path::new(LOGIND_USERS).is_dir() {
            return Ok(Err(format!("it is not running: no {LOGIND_USERS}")));
        }
        let out = Cmd::new("loginctl").args(["show-user", self.user.as_str(), "--property=Linger", "--value"]).output();
        let out = match out {
            Ok(out) => out,
            Err(common::exec::ExecError::NotFound { .. }) => return Ok(Err("loginctl is not installed".to_owned())),
            Err(e) => return Err(e.into()),
        };
        if out.success() {
            return Ok(Ok(out.stdout.trim() == "yes"));
        }
        let said = format!("{}{}", out.stdout, out.stderr).trim().to_owned();
        // No logind (a container, a sandbox): linger cannot exist here. A user that is
        // not logged in and has no linger is "not known" to logind: linger is off.
        if said.contains("not logged in") || said.contains("No such file") && said.contains(&self.user) {
            return Ok(Ok(false));
        }
        Ok(Err(said))
    }
}

impl Default for Linger {
    fn default() -> Self {
        Linger::new()
    }
}

impl Resource for Linger {
    fn id(&self) -> &ItemId {
        &self.id
    }
    fn kind(&self) -> &'static str {
        "linger"
    }

    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        match self.read()? {
            Ok(true) => Ok(Observed::InSync),
            Ok(false) => Ok(Observed::Differs(Difference::new(format!(
                "linger is off: user services stop at logout (loginctl enable-linger {})",
                self.user
            )))),
            Err(said) => Ok(Observed::Note(format!(
                "systemd-logind cannot be asked here ({said}): linger is not managed; user services run while the user manager runs"
            ))),
        }
    }

    fn apply(&self, _: &Ctx) -> Result<(), EngineError> {
        Cmd::new("loginctl").args(["enable-linger", self.user.as_str()]).privileged().run()?;
        Ok(())
    }
}
