//! Declared ports that nothing listens on (`port:SERVICE`), from the kernel's socket
//! diagnostics (netlink, what `ss -l` asks), with no process. Reading `/proc/net/tcp`
//! walks every bucket of the kernel's established-connection table (about 5 ms per
//! file whatever the number of sockets); a dump asked for listening sockets only walks
//! the listening table (a fraction of a millisecond). The files stay the answer when the
//! kernel refuses the netlink socket. Both are the network namespace of the reader, so
//! in a sandbox they see the sandbox's sockets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::report::{Item, Status};

use super::item;

/// Where the listening sockets are read from.
#[derive(Debug, Clone)]
pub enum Sockets {
    /// The kernel's socket diagnostics, then `/proc/net/tcp` and `tcp6` if it refuses.
    Kernel,
    /// The `tcp` and `tcp6` files of this folder, in `/proc/net`'s format (fixtures).
    ProcNet(PathBuf),
}

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

/// The listening TCP ports of both families from `tcp` and `tcp6` in `folder`; `None`
/// when neither file can be read.
fn listening_ports_in(folder: &Path) -> Option<BTreeSet<u16>> {
    let mut listening = BTreeSet::new();
    let mut read = 0;
    for file in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(folder.join(file)) {
            listening.extend(listening_ports(&text));
            read += 1;
        }
    }
    (read > 0).then_some(listening)
}

/// The listening TCP ports, or what could not be read.
fn listening(sockets: &Sockets) -> Result<BTreeSet<u16>, String> {
    let (folder, refused) = match sockets {
        Sockets::Kernel => match diag::listening_ports() {
            Ok(ports) => return Ok(ports),
            Err(e) => (Path::new("/proc/net"), Some(e)),
        },
        Sockets::ProcNet(folder) => (folder.as_path(), None),
    };
    listening_ports_in(folder).ok_or_else(|| match refused {
        Some(e) => format!("cannot ask the kernel for its listening sockets ({e}) nor read {}/tcp", folder.display()),
        None => format!("cannot read {}/tcp", folder.display()),
    })
}

/// One item per declared port: ok when something listens on it, drift otherwise.
pub fn scan_ports(ports: &[(String, u16)], sockets: &Sockets) -> Vec<Item> {
    if ports.is_empty() {
        return Vec::new();
    }
    let listening = listening(sockets);
    ports
        .iter()
        .map(|(service, port)| {
            let id = format!("port:{service}");
            match &listening {
                Err(unreadable) => item(id, "port", Status::Skipped, None, unreadable.clone()),
                Ok(listening) if listening.contains(port) => {
                    item(id, "port", Status::Ok, None, format!("something listens on port {port}"))
                }
                Ok(_) => item(
                    id,
                    "port",
                    Status::Drift,
                    None,
                    format!("nothing listens on port {port} (declared for service {service})"),
                ),
            }
        })
        .collect()
}

/// The kernel's socket diagnostics over netlink (`linux/sock_diag.h`,
/// `linux/inet_diag.h`): one dump request per address family, asking for TCP sockets
/// in the listening state only.
mod diag {
    use std::collections::BTreeSet;
    use std::io::{self, Read as _, Write as _};

    /// `SOCK_DIAG_BY_FAMILY`: the request and the answers' message type.
    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    /// `NLMSG_ERROR` and `NLMSG_DONE`: the dump failed, or is complete.
    const NLMSG_ERROR: u16 = 2;
    const NLMSG_DONE: u16 = 3;
    /// `NLM_F_REQUEST | NLM_F_DUMP`.
    const DUMP_REQUEST: u16 = 0x1 | 0x300;
    /// `TCP_LISTEN` (`net/tcp_states.h`).
    const TCP_LISTEN: u8 = 10;
    const IPPROTO_TCP: u8 = 6;
    const AF_INET: u8 = 2;
    const AF_INET6: u8 = 10;
    /// `struct nlmsghdr`.
    const HEADER: usize = 16;
    /// `struct nlmsghdr` followed by `struct inet_diag_req_v2`.
    const REQUEST: usize = HEADER + 56;
    /// A read holds a whole batch of answers: the kernel fills at most 32 KiB at a time.
    const BATCH: usize = 64 * 1024;

    /// The TCP ports with a listening socket, IPv4 and IPv6.
    pub fn listening_ports() -> io::Result<BTreeSet<u16>> {
        let mut socket = common::sys::sock_diag_socket()?;
        let mut ports = BTreeSet::new();
        let mut batch = vec![0; BATCH];
        for (seq, family) in [(1, AF_INET), (2, AF_INET6)] {
            socket.write_all(&request(family, seq))?;
            loop {
                let read = match socket.read(&mut batch) {
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(read) => read,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if read_answers(&batch[..read], seq, &mut ports)? {
                    break;
                }
            }
        }
        Ok(ports)
    }

    /// The dump request for listening TCP sockets of `family`, numbered `seq`.
    pub(super) fn request(family: u8, seq: u32) -> [u8; REQUEST] {
        let mut request = [0; REQUEST];
        request[0..4].copy_from_slice(&(REQUEST as u32).to_ne_bytes());
        request[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        request[6..8].copy_from_slice(&DUMP_REQUEST.to_ne_bytes());
        request[8..12].copy_from_slice(&seq.to_ne_bytes());
        request[HEADER] = family;
        request[HEADER + 1] = IPPROTO_TCP;
        request[HEADER + 4..HEADER + 8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
        request
    }

    /// Adds the listening ports in one batch of answers to request `seq`; true when the
    /// batch ends the dump.
    pub(super) fn read_answers(mut batch: &[u8], seq: u32, ports: &mut BTreeSet<u16>) -> io::Result<bool> {
        let garbled = || io::Error::new(io::ErrorKind::InvalidData, "a garbled socket-diagnostics answer");
        while !batch.is_empty() {
            let len = u32_at(batch, 0).ok_or_else(garbled)? as usize;
            let body = batch.get(HEADER..len).ok_or_else(garbled)?;
            let kind = u16::from_ne_bytes([batch[4], batch[5]]);
            if u32_at(batch, 8) == Some(seq) {
                match kind {
                    // The end carries the dump's error, if it failed along the way.
                    NLMSG_DONE => match u32_at(body, 0).map(|code| code as i32) {
                        Some(code) if code < 0 => return Err(io::Error::from_raw_os_error(-code)),
                        _ => return Ok(true),
                    },
                    NLMSG_ERROR => {
                        let code = u32_at(body, 0).ok_or_else(garbled)? as i32;
                        return Err(if code < 0 { io::Error::from_raw_os_error(-code) } else { garbled() });
                    }
                    SOCK_DIAG_BY_FAMILY if body.get(1) == Some(&TCP_LISTEN) => {
                        let port = body.get(4..6).ok_or_else(garbled)?;
                        ports.insert(u16::from_be_bytes([port[0], port[1]]));
                    }
                    _ => {}
                }
            }
            batch = batch.get(len.next_multiple_of(4)..).unwrap_or_default();
        }
        Ok(false)
    }

    fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
        let field = bytes.get(at..at + 4)?;
        Some(u32::from_ne_bytes([field[0], field[1], field[2], field[3]]))
    }
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
        let fixture = Sockets::ProcNet(dir.path().to_owned());
        let items = scan_ports(&[("alpha".into(), 7309), ("beta".into(), 7310)], &fixture);
        let shown: Vec<(String, Status)> = items.iter().map(|i| (i.id.clone(), i.status)).collect();
        assert_eq!(shown, [("port:alpha".into(), Status::Ok), ("port:beta".into(), Status::Drift)]);
        let skipped = scan_ports(&[("alpha".into(), 1)], &Sockets::ProcNet(dir.path().join("missing")));
        assert_eq!(skipped[0].status, Status::Skipped);
        Ok(())
    }

    /// One answer message: a header numbered `seq` and `body`.
    fn answer(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut message = Vec::new();
        message.extend_from_slice(&(16 + body.len() as u32).to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(&[0, 0]);
        message.extend_from_slice(&seq.to_ne_bytes());
        message.extend_from_slice(&[0; 4]);
        message.extend_from_slice(body);
        message.resize(message.len().next_multiple_of(4), 0);
        message
    }

    /// The start of an `inet_diag_msg`: family, state, timer, retransmits, ports.
    fn socket(state: u8, port: u16) -> Vec<u8> {
        let mut body = vec![10, state, 0, 0];
        body.extend_from_slice(&port.to_be_bytes());
        body.extend_from_slice(&[0; 66]);
        body
    }

    #[test]
    fn the_diagnostics_request_asks_for_listening_tcp_sockets_of_one_family() {
        let request = diag::request(10, 7);
        assert_eq!(request.len(), 72, "nlmsghdr (16) + inet_diag_req_v2 (56)");
        assert_eq!(u32::from_ne_bytes([request[0], request[1], request[2], request[3]]), 72);
        assert_eq!(u16::from_ne_bytes([request[4], request[5]]), 20, "SOCK_DIAG_BY_FAMILY");
        assert_eq!(u32::from_ne_bytes([request[8], request[9], request[10], request[11]]), 7);
        assert_eq!((request[16], request[17]), (10, 6), "AF_INET6, IPPROTO_TCP");
        assert_eq!(u32::from_ne_bytes([request[20], request[21], request[22], request[23]]), 1 << 10, "TCP_LISTEN");
    }

    #[test]
    fn diagnostics_answers_give_listening_ports_until_done() -> std::io::Result<()> {
        let mut ports = BTreeSet::new();
        let mut batch = answer(20, 1, &socket(10, 7309));
        batch.extend(answer(20, 1, &socket(1, 7310)));
        batch.extend(answer(20, 9, &socket(10, 7311)));
        assert!(!diag::read_answers(&batch, 1, &mut ports)?, "no NLMSG_DONE yet");
        assert_eq!(ports, BTreeSet::from([7309]), "established and other requests' sockets are left out");
        assert!(diag::read_answers(&answer(3, 1, &[0; 4]), 1, &mut ports)?);
        let interrupted = diag::read_answers(&answer(3, 1, &(-4i32).to_ne_bytes()), 1, &mut ports);
        assert_eq!(interrupted.map_err(|e| e.raw_os_error()), Err(Some(4)), "a dump that failed along the way");

        let refused = diag::read_answers(&answer(2, 1, &(-13i32).to_ne_bytes()), 1, &mut ports);
        assert_eq!(refused.map_err(|e| e.raw_os_error()), Err(Some(13)), "NLMSG_ERROR carries -errno");
        let mut cut = answer(20, 1, &socket(10, 7309));
        cut.truncate(30);
        assert!(diag::read_answers(&cut, 1, &mut ports).is_err(), "a message longer than the batch");
        assert!(diag::read_answers(&[1, 0, 0], 1, &mut ports).is_err(), "a batch shorter than a header");
        Ok(())
    }

    #[test]
    fn the_kernel_names_listening_sockets_of_both_families_and_not_connections() -> std::io::Result<()> {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0")?;
        let v6 = std::net::TcpListener::bind("[::1]:0").ok();
        let client = std::net::TcpStream::connect(v4.local_addr()?)?;
        let listening = diag::listening_ports()?;
        assert!(listening.contains(&v4.local_addr()?.port()));
        if let Some(v6) = &v6 {
            assert!(listening.contains(&v6.local_addr()?.port()));
        }
        assert!(!listening.contains(&client.local_addr()?.port()), "a client's port is a connection");
        assert_eq!(
            listening_ports_in(Path::new("/proc/net")).map(|files| files.is_superset(&listening)),
            Some(true),
            "what the files say, and only listening sockets"
        );
        Ok(())
    }
}
