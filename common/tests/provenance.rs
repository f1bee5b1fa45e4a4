//! Whose is what lies at a path, on real files and a real git repo: files of the repo
//! as committed, skeleton copies, pi-bootstrap's managed blocks, what a backup leaves
//! out, and everything else as data; and the ledger's first sight of it.

#![allow(clippy::disallowed_methods, clippy::print_stdout)]

use std::fs;
use std::path::Path;

use common::durable::provenance::{Held, Origin, Provenance, skeleton_folder};
use common::durable::{self, Ledger, Standing};
use common::engine::{ManagedBlock, Resource};
use common::manifest::{ItemId, Manifest};
use common::state::StateDir;
use test_support::TestResult;
use test_support::git::init_repo;

fn manifest(home: &Path) -> Result<Manifest, Box<dyn std::error::Error>> {
    let text = "version: 1
repo:
  path: ~/repo
  url: https://example.invalid/r.git
shell:
  - {name: path, file: ~/.bashrc, source: shell/path.sh}
paths:
  - {name: outputs, path: ~/repo/outputs, role: r, backup: backup}
  - {name: cache, path: ~/repo/outputs/cache, role: r, backup: disposable}
  - {name: bashrc, path: ~/.bashrc, role: r, backup: backup}
  - {name: notes, path: ~/notes, role: r, backup: backup}
backup:
  repository: /nowhere
  password_file: ~/pw
  max_age: 26h
";
    Ok(common::manifest::load_str(Path::new("/m.yaml"), text, home, &|_| None)?)
}

fn origin_of(entries: &[common::durable::provenance::Entry], path: &Path) -> Option<Origin> {
    entries.iter().find(|e| e.path == path).map(|e| e.origin)
}

#[test]
fn committed_files_skeletons_and_blocks_are_a_fresh_host_s_and_the_rest_is_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let repo = home.join("repo");
    fs::create_dir_all(repo.join("outputs/cache"))?;
    init_repo(
        &repo,
        &[
            ("shell/path.sh", "export PATH=\"$HOME/.local/bin:$PATH\"\n"),
            ("outputs/.gitkeep", ""),
            ("outputs/tracked.txt", "as committed\n"),
        ],
    )?;
    let m = manifest(home)?;
    let outputs = repo.join("outputs");

    // Only what a clone gives: fresh.
    let provenance = Provenance::new(&m, home, &[outputs.as_path()]);
    let entries = provenance.scan(&outputs)?;
    assert_eq!(origin_of(&entries, &outputs.join(".gitkeep")), Some(Origin::Repo));
    assert!(!Held::of(&entries).is_data(), "{entries:#?}");

    // A changed committed file, an untracked one: data; the disposable cache: left out.
    fs::write(outputs.join("tracked.txt"), "changed here\n")?;
    fs::write(outputs.join("report.md"), "# made by an agent\n")?;
    fs::write(outputs.join("cache/big.tmp"), "scratch\n")?;
    let provenance = Provenance::new(&m, home, &[outputs.as_path()]);
    let entries = provenance.scan(&outputs)?;
    assert_eq!(origin_of(&entries, &outputs.join("tracked.txt")), Some(Origin::Data));
    assert_eq!(origin_of(&entries, &outputs.join("report.md")), Some(Origin::Data));
    assert_eq!(origin_of(&entries, &outputs.join("cache")), Some(Origin::LeftOut));
    assert_eq!(origin_of(&entries, &outputs.join("cache/big.tmp")), None, "a left-out folder is not looked into");
    assert_eq!(Held::of(&entries), Held::Data { entries: 2, newest: Held::of(&entries).newest() });

    // ~/.bashrc: a managed block alone, on a skeleton copy, and with the user's lines.
    let bashrc = home.join(".bashrc");
    let block = ManagedBlock {
        id: ItemId::new("shell", "path"),
        file: bashrc.clone(),
        name: "path".into(),
        content: "export PATH=\"$HOME/.local/bin:$PATH\"\n".into(),
    };
    let ctx = common::engine::Ctx::new(home);
    block.apply(&ctx)?;
    let scan = |p: &Path| Provenance::new(&m, home, &[p]).scan(p);
    assert_eq!(origin_of(&scan(&bashrc)?, &bashrc), Some(Origin::Blocks));
    let skel = skeleton_folder().join(".bashrc");
    if let Ok(skel_text) = fs::read_to_string(&skel) {
        fs::write(&bashrc, &skel_text)?;
        block.apply(&ctx)?;
        assert_eq!(origin_of(&scan(&bashrc)?, &bashrc), Some(Origin::Skel));
        fs::write(&bashrc, format!("{skel_text}alias ll='ls -l'\n"))?;
        block.apply(&ctx)?;
        assert_eq!(origin_of(&scan(&bashrc)?, &bashrc), Some(Origin::Data));
    } else {
        println!("no skeleton .bashrc at {}: its case is not checked here", skel.display());
    }
    fs::write(&bashrc, "# >>> pi-bootstrap: path >>>\nno end marker, the user's own text\n")?;
    assert_eq!(origin_of(&scan(&bashrc)?, &bashrc), Some(Origin::Data), "broken markers pass for nothing");
    Ok(())
}

#[test]
fn the_first_sight_says_what_was_there_before_anything_changed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    fs::create_dir_all(home.join("repo/shell"))?;
    fs::write(home.join("repo/shell/path.sh"), "export X=1\n")?;
    fs::create_dir_all(home.join("notes"))?;
    fs::write(home.join("notes/todo.md"), "- mine, from before\n")?;
    let m = manifest(home)?;
    let state = StateDir::new(home);
    durable::note_first_sight(&m, &state, home)?;
    let ledger = Ledger::load(&state, home)?;
    let provenance = Provenance::new(&m, home, &[]);
    assert!(matches!(ledger.standing(&home.join("notes"), &provenance), Standing::Preexisting { .. }), "{ledger:#?}");
    assert!(ledger.standing(&home.join("repo/outputs"), &provenance).is_awaiting(), "{ledger:#?}");
    assert!(ledger.standing(&home.join(".bashrc"), &provenance).is_awaiting(), "{ledger:#?}");
    // What is written afterwards does not change the first sight.
    fs::write(home.join(".bashrc"), "written later\n")?;
    durable::note_first_sight(&m, &state, home)?;
    let again = Ledger::load(&state, home)?;
    assert_eq!(again.first_seen, ledger.first_seen);
    assert!(again.standing(&home.join(".bashrc"), &provenance).is_awaiting());
    Ok(())
}
