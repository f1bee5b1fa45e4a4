//! nginx sites that are enabled but not declared (`undeclared-site:NAME`): the
//! entries of `sites_enabled` (or of `sites_available` when the host includes sites
//! from that one folder). One folder listing. Hidden files (editors' and atomic
//! writes' temporaries) are not sites.

use common::manifest::Nginx;
use common::report::{Item, Status};

use super::{item, sorted_entries};
use crate::declared::Declared;

pub fn scan_sites(nginx: &Nginx, declared: &Declared) -> Vec<Item> {
    let dir = nginx.sites_enabled.as_ref().unwrap_or(&nginx.sites_available).path();
    let entries = match sorted_entries(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return vec![item(
                "scan:nginx-sites".into(),
                "scan",
                Status::Failed,
                Some(dir.to_path_buf()),
                format!("cannot list: {e}"),
            )];
        }
    };
    let mut items = Vec::new();
    let mut seen = 0;
    for (name, path) in &entries {
        if name.starts_with('.') {
            continue;
        }
        seen += 1;
        if declared.sites.contains(name) {
            continue;
        }
        let to = std::fs::read_link(path).map(|to| format!(" (-> {})", to.display())).unwrap_or_default();
        items.push(item(
            format!("undeclared-site:{name}"),
            "nginx-site",
            Status::Drift,
            Some(path.clone()),
            format!("enabled in nginx{to} but not in the manifest: remove it, or declare it under `nginx.sites`"),
        ));
    }
    if items.is_empty() {
        items.push(item(
            "scan:nginx-sites".into(),
            "scan",
            Status::Ok,
            Some(dir.to_path_buf()),
            format!("{seen} enabled site{}, each declared", if seen == 1 { "" } else { "s" }),
        ));
    }
    items
}
