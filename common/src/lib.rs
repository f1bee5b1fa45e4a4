//! The shared core of pi-bootstrap.
//!
//! - [`manifest`]: the host manifest, its loading and its checks (the one YAML door);
//! - [`engine`]: resources that observe and apply, and the runner every step uses;
//! - [`exec`]: the one door for spawning processes (timeouts, redaction, sudo);
//! - [`report`] and [`output`]: what a step found and did, and the one door for
//!   printing it;
//! - [`state`]: the state folder, files kept before replacement, the run lock;
//! - [`systemd`]: the user manager through `systemctl --user` (batched queries);
//! - [`durable`]: the `backup`-class paths, who writes to them, and where each stands
//!   on this host (settled, or waiting for its restore);
//! - [`install`]: where the step binaries are installed, and the units pi-bootstrap
//!   makes for itself (the backup timer);
//! - [`cli`]: the flags every binary shares; [`step`]: the one shape of a step (its
//!   error, and the life of its binary: lock, secrets, `--only`, exit codes);
//! - `sandbox` (feature `sandbox`): the throwaway host of the drill and the tests.
//!
//! See `docs/architecture.md` for the invariants.

pub mod cli;
pub mod dbus;
pub mod durable;
pub mod engine;
pub mod exec;
pub mod fsx;
pub mod install;
pub mod manifest;
pub mod output;
pub mod report;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod secret;
// Its unit tests write their fixtures plainly; the product code is checked in the
// build without `test`.
pub mod staging;
pub mod state;
pub mod step;
pub mod sys;
pub mod systemd;
