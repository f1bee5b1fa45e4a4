//! Declared ports that nothing listens on (`port:SERVICE`), from `/proc/net/tcp` and
//! `/proc/net/tcp6`: two file reads, no process. `/proc/net` is the network namespace
//! of the reader, so in a sandbox it sees the sandbox's sockets.

use std::collections::BTreeSet;
use std::path::Path;

use common::report::{Item, Status};

use super::item;

/// The socket state of a listening TCP socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// The TCP ports with a listening socket, from the text of `/proc/net/tcp` or `tcp6`.
pub fn listening_ports(text: &str) -> BTreeSet<u16> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != LISTEN {
                return None;
            }
            let (_, port) = local.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// One item per declared port: ok when something listens on it, drift otherwise.
pub fn scan_ports(ports: &[(String, u16)], proc_net: &Path) -> Vec<Item> {
    if ports.is_empty() {
        return Vec::new();
    }
    let mut listening = BTreeSet::new();
    let mut read = 0;
    for file in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(proc_net.join(file)) {
            listening.extend(listening_ports(&text));
            read += 1;
        }
    }
    ports
        .iter()
        .map(|(service, port)| {
            let id = format!("port:{service}");
            if read == 0 {
                item(id, "port", Status::Skipped, None, format!("cannot read {}/tcp", proc_net.display()))
            } else if listening.contains(port) {
                item(id, "port", Status::Ok, None, format!("something listens on port {port}"))
            } else {
                item(
                    id,
                    "port",
                    Status::Drift,
                    None,
                    format!("nothing listens on port {port} (declared for service {service})"),
                )
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, reason = "tests make their fixtures plainly")]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_sockets_of_both_families() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1C8D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0100007F:1C8E 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
";
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0E83 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
";
        assert_eq!(listening_ports(tcp), BTreeSet::from([7309]), "7310 is an established connection");
        assert_eq!(listening_ports(tcp6), BTreeSet::from([3715]));
        assert!(listening_ports("").is_empty());
    }

    #[test]
    fn names_the_declared_port_nothing_listens_on() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(
            dir.path().join("tcp"),
            "header\n   0: 0100007F:1C8D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n",
        )?;
        let items = scan_ports(&[("alpha".into(), 7309), ("beta".into(), 7310)], dir.path());
        let shown: Vec<(String, Status)> = items.iter().map(|i| (i.id.clone(), i.status)).collect();
        assert_eq!(shown, [("port:alpha".into(), Status::Ok), ("port:beta".into(), Status::Drift)]);
        let skipped = scan_ports(&[("alpha".into(), 1)], &dir.path().join("missing"));
        assert_eq!(skipped[0].status, Status::Skipped);
        Ok(())
    }
}
