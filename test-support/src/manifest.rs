//! Pieces of a test manifest that the test harness fixes rather than the test.

/// The `nginx` section of a manifest on the prefix `${NGINX_PREFIX}` (the sandbox sets
/// it to its own nginx's; a test without one sets it by hand), in Debian's layout,
/// with `sites` (name, repo file).
pub fn nginx_section(sites: &[(&str, &str)]) -> String {
    let mut text = String::from(
        "nginx:
  prefix: ${NGINX_PREFIX}
  conf: ${NGINX_PREFIX}/nginx.conf
  sites_available: ${NGINX_PREFIX}/sites-available
  sites_enabled: ${NGINX_PREFIX}/sites-enabled
  sites:
",
    );
    for (name, source) in sites {
        text.push_str(&format!("    - name: {name}\n      source: {source}\n"));
    }
    text
}
