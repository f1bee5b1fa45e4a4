//! Restore step 3: the pi-config repo (cloned when missing, fetched and fast-forwarded
//! when it has nothing of its own, never forced), its dependency installs (when the lockfile changed or the installed tree is missing),
//! the folders the host needs with their modes, and the Pi config links from the repo
//! into place (usually `~/.pi/agent/...`).
//!
//! The plan is a list of engine resources; the binary runs them with
//! `common::cli::run_step`.

mod deps;
mod repo;

use common::engine::{Folder, Resource, Symlink};
use common::manifest::{ItemId, Manifest};

pub use deps::DepInstall;
pub use repo::{Fetch, GitRepo};

/// The step's name in reports.
pub const STEP: &str = "bootstrap-pi-config";

/// Clones the pi-config repo, installs its dependencies, makes the declared folders and links the Pi config into place.
#[derive(Debug, clap::Parser)]
#[command(name = STEP, version, about, long_about = None)]
pub struct Args {
    #[command(flatten)]
    pub common: common::cli::CommonArgs,
}

/// The default mode of a declared folder.
pub const DEFAULT_DIR_MODE: u32 = 0o755;

common::common_args!(Args);

/// The step, as its binary runs it (`common::step::main`).
pub struct PiConfigStep;

impl common::step::Step for PiConfigStep {
    const NAME: &'static str = STEP;
    type Args = Args;

    fn item_ids(manifest: &Manifest, _: &common::engine::Ctx, _: &Args) -> common::step::Ids {
        Ok(Some(plan(manifest, Fetch::Yes).iter().map(|r| r.id().0.clone()).collect()))
    }

    fn run(manifest: &Manifest, ctx: &common::engine::Ctx, args: &Args) -> common::step::Ran {
        let resources = plan(manifest, Fetch::Yes);
        let selected = common::engine::select(&resources, &args.common.only)?;
        Ok(common::engine::run(STEP, &selected, ctx, &args.common.run_options()).into())
    }
}

/// The resources of this step, in order: the repo, its dependencies, folders, then
/// links (so they land in the folders). `fetch` says whether the repo asks its remote
/// first (the step does; the audit, offline, compares with the refs as last fetched).
pub fn plan(manifest: &Manifest, fetch: Fetch) -> Vec<Box<dyn Resource + '_>> {
    let mut plan: Vec<Box<dyn Resource>> = vec![Box::new(GitRepo::from_manifest(manifest, fetch))];
    for dep in &manifest.repo.deps {
        plan.push(Box::new(DepInstall::from_manifest(dep, manifest.repo.path.path())));
    }
    for dir in &manifest.dirs {
        plan.push(Box::new(Folder {
            id: ItemId::new("dir", dir.name.as_str()),
            path: dir.path.path().to_path_buf(),
            mode: dir.mode.map_or(DEFAULT_DIR_MODE, |m| m.0),
        }));
    }
    for link in &manifest.links {
        plan.push(Box::new(Symlink {
            id: ItemId::new("link", link.name.as_str()),
            path: link.target.path().to_path_buf(),
            to: link.source.path().to_path_buf(),
        }));
    }
    plan
}
