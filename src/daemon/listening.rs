//! Which listening sockets this process holds, read from `/proc` (our
//! descriptors' socket inodes matched against `/proc/net/unix` and
//! `/proc/net/tcp{,6}`), so that the daemon can tell systemd it is ready
//! only once every configured OpenFlow listener really listens — observed
//! from outside the Connmgr, which owns the sockets.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// `__SO_ACCEPTCON` in `/proc/net/unix`'s Flags column: a listening socket.
const SO_ACCEPTCON: u32 = 0x0001_0000;
/// `TCP_LISTEN` in `/proc/net/tcp`'s st column.
const TCP_LISTEN: u8 = 0x0A;

/// Listening sockets held by this process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listening {
    /// Unix stream sockets, by path.
    pub unix: HashSet<PathBuf>,
    /// TCP sockets, by local address and port.
    pub tcp: HashSet<(IpAddr, u16)>,
}

fn our_socket_inodes() -> HashSet<u64> {
    let mut out = HashSet::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return out;
    };
    for e in dir.flatten() {
        if let Ok(target) = std::fs::read_link(e.path()) {
            let t = target.to_string_lossy();
            if let Some(n) = t
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse().ok())
            {
                out.insert(n);
            }
        }
    }
    out
}

fn parse_unix(text: &str, ours: &HashSet<u64>, out: &mut HashSet<PathBuf>) {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(flags), Some(inode), Some(path)) = (f.get(3), f.get(6), f.get(7)) else {
            continue;
        };
        let listening = u32::from_str_radix(flags, 16).is_ok_and(|x| x & SO_ACCEPTCON != 0);
        let inode: Option<u64> = inode.parse().ok();
        if listening && inode.is_some_and(|i| ours.contains(&i)) {
            out.insert(PathBuf::from(path));
        }
    }
}

/// `0100007F:1F90` (IPv4, little-endian word) or the 32-hex-digit IPv6 form.
fn parse_addr(s: &str) -> Option<(IpAddr, u16)> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(ip, 16).ok()?.swap_bytes(),
        )),
        32 => {
            let mut b = [0u8; 16];
            for (i, chunk) in b.chunks_mut(4).enumerate() {
                let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
                chunk.copy_from_slice(&w.swap_bytes().to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some((ip, port))
}

fn parse_tcp(text: &str, ours: &HashSet<u64>, out: &mut HashSet<(IpAddr, u16)>) {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(st), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
            continue;
        };
        let listening = u8::from_str_radix(st, 16).ok() == Some(TCP_LISTEN);
        let inode: Option<u64> = inode.parse().ok();
        if listening && inode.is_some_and(|i| ours.contains(&i)) {
            if let Some(a) = parse_addr(local) {
                out.insert(a);
            }
        }
    }
}

/// Reads what this process listens on now.
pub fn held() -> Listening {
    let ours = our_socket_inodes();
    let mut l = Listening::default();
    if let Ok(t) = std::fs::read_to_string("/proc/net/unix") {
        parse_unix(&t, &ours, &mut l.unix);
    }
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(t) = std::fs::read_to_string(f) {
            parse_tcp(&t, &ours, &mut l.tcp);
        }
    }
    l
}

impl Listening {
    /// Whether a configured `punix:PATH` / `ptcp:PORT[:IP]` listener is held.
    pub fn has(&self, listener: &str) -> bool {
        if let Some(path) = listener.strip_prefix("punix:") {
            return self.unix.contains(&PathBuf::from(path));
        }
        if let Some(rest) = listener.strip_prefix("ptcp:") {
            let (port, ip) = rest.split_once(':').unwrap_or((rest, ""));
            let Ok(port) = port.parse::<u16>() else {
                return false;
            };
            let ip: Option<IpAddr> = ip.parse().ok();
            return self.tcp.iter().any(|(a, p)| {
                *p == port && ip.is_none_or(|want| want == *a || a.is_unspecified())
            });
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_tables() {
        let ours: HashSet<u64> = [100, 200, 300].into_iter().collect();
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 100 /run/a.mgmt\n\
            0000000000000000: 00000002 00000000 00000000 0001 03 200 /run/b.sock\n\
            0000000000000000: 00000002 00000000 00010000 0001 01 999 /run/c.mgmt\n";
        let mut u = HashSet::new();
        parse_unix(unix, &ours, &mut u);
        assert_eq!(u, [PathBuf::from("/run/a.mgmt")].into_iter().collect());
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:1A0D 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 300 1\n\
            1: 00000000:1A0E 00000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 100 1\n";
        let mut t = HashSet::new();
        parse_tcp(tcp, &ours, &mut t);
        assert_eq!(
            t,
            [(IpAddr::V4(Ipv4Addr::LOCALHOST), 6669)]
                .into_iter()
                .collect()
        );
        let l = Listening { unix: u, tcp: t };
        assert!(l.has("punix:/run/a.mgmt"));
        assert!(!l.has("punix:/run/c.mgmt"));
        assert!(l.has("ptcp:6669:127.0.0.1") && l.has("ptcp:6669"));
        assert!(!l.has("ptcp:6670"));
        assert_eq!(
            parse_addr("00000000000000000000000001000000:1A0D"),
            Some((IpAddr::V6(Ipv6Addr::LOCALHOST), 6669))
        );
    }

    #[test]
    fn sees_its_own_listener() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.sock");
        let _l = std::os::unix::net::UnixListener::bind(&p).unwrap();
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        let h = held();
        assert!(h.has(&format!("punix:{}", p.display())), "{h:?}");
        assert!(h.has(&format!("ptcp:{port}:127.0.0.1")), "{h:?}");
    }
}
