//! The engine's resource kinds in a temporary HOME: first run changes, second run is
//! all ok, `--check` shows the diff and changes nothing, replaced files are kept, a
//! resource that does not converge is a failure.

#![allow(clippy::disallowed_methods)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::engine::{
    self, Ctx, Difference, EngineError, FileContent, Folder, ManagedBlock, Observed, Resource, RunOptions, Symlink,
};
use common::manifest::ItemId;
use common::output::{Verbosity, render_human, render_json};
use common::report::{Report, Status};
use test_support::redact::Redactions;
use test_support::tree::{self, Listing};

type TestResult = Result<(), Box<dyn std::error::Error>>;

struct Host {
    home: tempfile::TempDir,
}

impl Host {
    fn new() -> Result<Host, std::io::Error> {
        let home = tempfile::tempdir()?;
        fs::create_dir_all(home.path().join("repo/pi"))?;
        fs::write(home.path().join("repo/pi/settings.json"), "{}\n")?;
        Ok(Host { home })
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.home.path().join(rel)
    }
    fn resources(&self) -> Vec<Box<dyn Resource>> {
        vec![
            Box::new(Folder { id: ItemId::new("dir", "agent"), path: self.path(".pi/agent"), mode: 0o700 }),
            Box::new(Symlink {
                id: ItemId::new("link", "settings"),
                path: self.path(".pi/agent/settings.json"),
                to: self.path("repo/pi/settings.json"),
            }),
            Box::new(FileContent {
                id: ItemId::new("file", "notes"),
                path: self.path("notes.txt"),
                content: b"one\ntwo\n".to_vec(),
                mode: 0o640,
                secret: false,
            }),
            Box::new(ManagedBlock {
                id: ItemId::new("shell", "path"),
                file: self.path(".bashrc"),
                name: "path".into(),
                content: "export PATH=\"$HOME/.local/bin:$PATH\"\n".into(),
            }),
        ]
    }
    fn run(&self, check: bool) -> Report {
        let resources = self.resources();
        let refs: Vec<&dyn Resource> = resources.iter().map(|r| r.as_ref()).collect();
        let ctx = Ctx::new(self.home.path());
        engine::run(
            "test-step",
            &refs,
            &ctx,
            &RunOptions { check, only: Vec::new(), verbosity: Verbosity::Normal, audit: false },
        )
    }
    fn tree(&self) -> Listing {
        tree::listing(self.home.path())
    }
}

/// The human report with the temp HOME and the run id made stable.
fn human(report: &Report, home: &Path) -> String {
    Redactions::new().path(home, "[HOME]").kept_runs().apply(render_human(report, home, Verbosity::Normal, false))
}

#[test]
fn first_run_changes_second_run_is_all_ok() -> TestResult {
    let host = Host::new()?;
    fs::write(host.path(".bashrc"), "# my own rc\nalias ll='ls -l'\n")?;
    let first = host.run(false);
    insta::assert_snapshot!(human(&first, host.home.path()), @r#"
    changed      dir:agent  ~/.pi/agent  (missing (mode 0700))
    changed      link:settings  ~/.pi/agent/settings.json  (missing (-> [HOME]/repo/pi/settings.json))
    changed      file:notes  ~/notes.txt  (missing)
        --- [HOME]/notes.txt (now)
        +++ [HOME]/notes.txt (declared)
        @@ -0,0 +1,2 @@
        +one
        +two
    changed      shell:path  ~/.bashrc  (block missing)
        --- [HOME]/.bashrc (now)
        +++ [HOME]/.bashrc (declared)
        @@ -1,2 +1,6 @@
         # my own rc
         alias ll='ls -l'
        +
        +# >>> pi-bootstrap: path >>>
        +export PATH="$HOME/.local/bin:$PATH"
        +# <<< pi-bootstrap: path <<<
    test-step: ok=0 changed=4 failed=0
    replaced files were kept under ~/.local/state/pi-bootstrap/kept/[RUN]
    "#);
    assert_eq!(first.exit_code(), 0);
    assert_eq!(fs::read_link(host.path(".pi/agent/settings.json"))?, host.path("repo/pi/settings.json"));
    assert_eq!(fs::metadata(host.path(".pi/agent"))?.permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(host.path("notes.txt"))?.permissions().mode() & 0o777, 0o640);
    let rc = fs::read_to_string(host.path(".bashrc"))?;
    assert!(rc.starts_with("# my own rc\nalias ll='ls -l'\n"), "the rest of the file is untouched: {rc}");

    let second = host.run(false);
    assert_eq!(second.summary.changed, 0);
    assert_eq!(second.summary.ok, 4);
    assert!(second.items.iter().all(|i| i.status == Status::Ok));
    Ok(())
}

#[test]
fn check_shows_the_diff_and_changes_nothing() -> TestResult {
    let host = Host::new()?;
    host.run(false);
    fs::write(host.path("notes.txt"), "one\nTWO\n")?;
    fs::set_permissions(host.path(".pi/agent"), fs::Permissions::from_mode(0o755))?;
    fs::remove_file(host.path(".pi/agent/settings.json"))?;
    let before = host.tree();
    let report = host.run(true);
    assert_eq!(tree::changes(&before, &host.tree()), Vec::<String>::new(), "--check changed the host");
    assert_eq!(report.exit_code(), 1, "--check exits 1 when something would change");
    insta::assert_snapshot!(human(&report, host.home.path()), @r"
    would change dir:agent  ~/.pi/agent  (mode 0755, want 0700)
    would change link:settings  ~/.pi/agent/settings.json  (missing (-> [HOME]/repo/pi/settings.json))
    would change file:notes  ~/notes.txt  (content differs)
        --- [HOME]/notes.txt (now)
        +++ [HOME]/notes.txt (declared)
        @@ -1,2 +1,2 @@
         one
        -TWO
        +two
    ok           shell:path  ~/.bashrc
    test-step: ok=1 changed=0 failed=0 would_change=3
    ");
    Ok(())
}

#[test]
fn a_replaced_file_is_kept_first() -> TestResult {
    let host = Host::new()?;
    fs::create_dir_all(host.path(".pi/agent"))?;
    fs::write(host.path(".pi/agent/settings.json"), "{\"mine\": true}\n")?;
    fs::write(host.path("notes.txt"), "hand edit\n")?;
    let report = host.run(false);
    assert_eq!(report.summary.failed, 0, "{}", human(&report, host.home.path()));
    let kept = report.kept.ok_or("nothing was kept")?;
    let home_rel = host.home.path().strip_prefix("/")?;
    assert_eq!(fs::read_to_string(kept.join(home_rel).join(".pi/agent/settings.json"))?, "{\"mine\": true}\n");
    assert_eq!(fs::read_to_string(kept.join(home_rel).join("notes.txt"))?, "hand edit\n");
    Ok(())
}

#[test]
fn json_report_has_the_documented_shape() -> TestResult {
    let host = Host::new()?;
    let report = host.run(true);
    let text = render_json(&report);
    let json: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(json["items"][0]["path"], serde_json::json!(host.path(".pi/agent")));
    insta::assert_snapshot!(text.replace(&host.home.path().display().to_string(), "[HOME]"));
    Ok(())
}

/// A resource whose apply does nothing: the engine must call it a failure.
struct NeverConverges(ItemId);

impl Resource for NeverConverges {
    fn id(&self) -> &ItemId {
        &self.0
    }
    fn kind(&self) -> &'static str {
        "test"
    }
    fn observe(&self, _: &Ctx) -> Result<Observed, EngineError> {
        Ok(Observed::Differs(Difference::new("always different")))
    }
    fn apply(&self, _: &Ctx) -> Result<(), EngineError> {
        Ok(())
    }
}

#[test]
fn a_resource_that_does_not_converge_is_a_failure() -> TestResult {
    let home = tempfile::tempdir()?;
    let resource = NeverConverges(ItemId::new("test", "stubborn"));
    let item = engine::run_one(&resource, &Ctx::new(home.path()), false);
    assert_eq!(item.status, Status::Failed);
    assert_eq!(item.detail, "did not converge: still always different after applying");
    Ok(())
}

#[test]
fn broken_block_markers_fail_and_leave_the_file_alone() -> TestResult {
    let home = tempfile::tempdir()?;
    let rc = home.path().join(".bashrc");
    let text = "# >>> pi-bootstrap: path >>>\nhalf a block\n";
    fs::write(&rc, text)?;
    let block =
        ManagedBlock { id: ItemId::new("shell", "path"), file: rc.clone(), name: "path".into(), content: "x\n".into() };
    let item = engine::run_one(&block, &Ctx::new(home.path()), false);
    assert_eq!(item.status, Status::Failed);
    assert!(item.detail.contains("markers of block \"path\""), "{}", item.detail);
    assert_eq!(fs::read_to_string(&rc)?, text);
    Ok(())
}

#[test]
fn a_block_in_a_symlinked_rc_file_is_written_where_the_file_lives() -> TestResult {
    let home = tempfile::tempdir()?;
    fs::create_dir_all(home.path().join("dotfiles"))?;
    fs::write(home.path().join("dotfiles/bashrc"), "# dotfiles\n")?;
    std::os::unix::fs::symlink(home.path().join("dotfiles/bashrc"), home.path().join(".bashrc"))?;
    let block = ManagedBlock {
        id: ItemId::new("shell", "b"),
        file: home.path().join(".bashrc"),
        name: "b".into(),
        content: "y\n".into(),
    };
    let item = engine::run_one(&block, &Ctx::new(home.path()), false);
    assert_eq!(item.status, Status::Changed, "{}", item.detail);
    assert!(fs::symlink_metadata(home.path().join(".bashrc"))?.file_type().is_symlink(), "the link stays a link");
    assert!(fs::read_to_string(home.path().join("dotfiles/bashrc"))?.contains("# >>> pi-bootstrap: b >>>"));
    Ok(())
}
