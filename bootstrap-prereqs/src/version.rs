//! Versions read from a tool's output and compared with the manifest's requirement
//! (semver-style, through the `semver` crate).

use semver::{Version, VersionReq};

/// The first version-looking token in `text` (`1.2`, `v20.6.1`, `nginx/1.22.1`,
/// `0.14.0-dev`), as a semver `Version` (a missing patch is 0).
pub fn extract_version(text: &str) -> Option<Version> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let starts =
            bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'v');
        if starts {
            let mut parts: Vec<u64> = Vec::new();
            let mut j = i;
            loop {
                let start = j;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                let Ok(n) = text[start..j].parse::<u64>() else { break };
                parts.push(n);
                if parts.len() == 3 || j + 1 >= bytes.len() || bytes[j] != b'.' || !bytes[j + 1].is_ascii_digit() {
                    break;
                }
                j += 1;
            }
            if parts.len() >= 2 {
                return Some(Version::new(parts[0], parts[1], parts.get(2).copied().unwrap_or(0)));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    None
}

/// Does `version` meet `requirement` (`>=1.1`, `^20`, `>=0.14, <2`)?
pub fn satisfies(version: &Version, requirement: &str) -> Result<bool, String> {
    let req = VersionReq::parse(requirement)
        .map_err(|e| format!("the version requirement {requirement:?} cannot be read: {e}"))?;
    Ok(req.matches(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Option<String> {
        extract_version(text).map(|v| v.to_string())
    }

    #[test]
    fn reads_versions_as_tools_print_them() {
        assert_eq!(v("1.3.2").as_deref(), Some("1.3.2"));
        assert_eq!(v("v20.20.2\n").as_deref(), Some("20.20.2"));
        assert_eq!(v("nginx version: nginx/1.22.1").as_deref(), Some("1.22.1"));
        assert_eq!(v("restic 0.14.0 compiled with go1.19.8 on linux/amd64").as_deref(), Some("0.14.0"));
        assert_eq!(v("tmux 3.3a").as_deref(), Some("3.3.0"));
        assert_eq!(v("git version 2.47.3").as_deref(), Some("2.47.3"));
        assert_eq!(v("copyparty v1.19.20 \"coolest\" (2025)").as_deref(), Some("1.19.20"));
        assert_eq!(v("Python 3.11.2").as_deref(), Some("3.11.2"));
        assert_eq!(v("no version here 42"), None);
        assert_eq!(v(""), None);
    }

    #[test]
    fn compares_with_requirements() {
        let version = Version::new(1, 3, 2);
        assert_eq!(satisfies(&version, ">=1.1"), Ok(true));
        assert_eq!(satisfies(&version, ">=1.4"), Ok(false));
        assert_eq!(satisfies(&version, "^1"), Ok(true));
        assert!(satisfies(&version, "about one").is_err());
    }
}
