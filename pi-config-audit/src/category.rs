//! The categories the audit groups its items by, in the order they are shown, and the
//! category of every item id.

use serde::Serialize;

/// A group of the audit's items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// `prereq:NAME`: the tools the host needs.
    Prereqs,
    /// `repo:`, `dep:`, `dir:`, `link:`: the pi-config clone, its dependencies, folders
    /// and Pi config links.
    Files,
    /// `unit:`, `service:`, `timer:` (the scheduled backup's), `linger:`,
    /// `undeclared-unit:`, `undeclared-service:`, `port:`: user units, services and the
    /// ports they listen on.
    Services,
    /// `nginx:`, `undeclared-site:`: nginx sites.
    Nginx,
    /// `shell:`, `undeclared-block:`: managed blocks in shell rc files.
    Shell,
    /// `env:`, `undeclared-env:`, `secret-mode:`: env files and other secrets.
    Secrets,
    /// `unclassified:`: what is in HOME or the repo with no declared role.
    Paths,
    /// `repo-hygiene:`: what the pi-config repo must not track and must ignore.
    Repo,
    /// `data:`, `backup:`: backup freshness.
    Backup,
}

impl Category {
    /// Every category, in the order of the report.
    pub const ALL: [Category; 9] = [
        Category::Prereqs,
        Category::Files,
        Category::Services,
        Category::Nginx,
        Category::Shell,
        Category::Secrets,
        Category::Paths,
        Category::Repo,
        Category::Backup,
    ];

    /// The name used in JSON and the recap.
    pub fn name(self) -> &'static str {
        match self {
            Category::Prereqs => "prereqs",
            Category::Files => "files",
            Category::Services => "services",
            Category::Nginx => "nginx",
            Category::Shell => "shell",
            Category::Secrets => "secrets",
            Category::Paths => "paths",
            Category::Repo => "repo",
            Category::Backup => "backup",
        }
    }

    /// The heading of the category in the human report.
    pub fn title(self) -> &'static str {
        match self {
            Category::Prereqs => "prerequisites",
            Category::Files => "repo clone, dependencies, folders and links",
            Category::Services => "user units, services and ports",
            Category::Nginx => "nginx sites",
            Category::Shell => "managed blocks in shell files",
            Category::Secrets => "env files and secrets",
            Category::Paths => "what has no declared role and backup class",
            Category::Repo => "repo hygiene",
            Category::Backup => "backup freshness",
        }
    }

    /// The category of an item, from its id's prefix (`link:pi-settings` is a file).
    pub fn of_id(id: &str) -> Category {
        let prefix = id.split_once(':').map_or(id, |(prefix, _)| prefix);
        match prefix {
            "prereq" => Category::Prereqs,
            "unit" | "service" | "timer" | "linger" | "undeclared-unit" | "undeclared-service" | "port" => {
                Category::Services
            }
            "nginx" | "undeclared-site" => Category::Nginx,
            "shell" | "undeclared-block" => Category::Shell,
            "env" | "undeclared-env" | "secret-mode" => Category::Secrets,
            "unclassified" => Category::Paths,
            "repo-hygiene" => Category::Repo,
            "data" | "backup" => Category::Backup,
            _ => Category::Files,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix_has_its_category() {
        let cases = [
            ("prereq:git", Category::Prereqs),
            ("repo:pi-config", Category::Files),
            ("link:pi-settings", Category::Files),
            ("unit:alpha.service", Category::Services),
            ("timer:pi-bootstrap-backup", Category::Services),
            ("undeclared-unit:x.service", Category::Services),
            ("port:alpha", Category::Services),
            ("undeclared-site:default", Category::Nginx),
            ("undeclared-block:~/.bashrc:old", Category::Shell),
            ("env:telegram", Category::Secrets),
            ("unclassified:~/scratch", Category::Paths),
            ("repo-hygiene:logs/", Category::Repo),
            ("data:path:work", Category::Backup),
        ];
        for (id, category) in cases {
            assert_eq!(Category::of_id(id), category, "{id}");
        }
    }
}
