//! Descriptors handed from a running daemon to its successor (`rvswitchd
//! --takeover`, see `daemon::takeover`), waiting to be claimed.
//!
//! The successor files what it received here ([`put`]), keyed by what it is
//! (`daemon::passfd` finds and keys them in the old process: listening
//! sockets by bound address, TAP devices by interface name). The places that
//! would otherwise bind or create consult it first — [`take_tcp`] from the
//! OpenFlow and stats listeners, [`take_unix`] from
//! `daemon::sockets::bind_private`, [`take_tap`] from `netdev::tap` — so the
//! actors that open ports and listeners do not know about takeovers. A
//! listener taken over never stopped listening, so connections queued during
//! the hand-over are accepted by the successor; a TAP device never lost its
//! last descriptor, so it (and the VM or container link on it) never vanished.
//! Here (the lowest layer) because both `netdev` and `daemon` consult it.
//!
//! Threads: the registry is a mutex taken only at start-up and when a port or
//! listener opens, never by a poll thread per packet.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Mutex;

/// Inherited descriptors not claimed yet, by key.
static INHERITED: Mutex<BTreeMap<String, OwnedFd>> = Mutex::new(BTreeMap::new());

/// Key of a TCP listener bound to `addr`.
pub fn tcp_key(addr: &SocketAddr) -> String {
    format!("tcp:{addr}")
}

/// Key of a unix listener bound to `path`.
pub fn unix_key(path: &Path) -> String {
    format!("unix:{}", path.display())
}

/// Key of the TAP device `name`.
pub fn tap_key(name: &str) -> String {
    format!("tap:{name}")
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<String, OwnedFd>> {
    INHERITED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Records a descriptor received from the predecessor under `key` (a second
/// one under the same key replaces, and closes, the first).
pub fn put(key: String, fd: OwnedFd) {
    lock().insert(key, fd);
}

/// The inherited TCP listener bound to `addr`, if any (claimed: a second call
/// returns None).
pub fn take_tcp(addr: &SocketAddr) -> Option<std::net::TcpListener> {
    lock()
        .remove(&tcp_key(addr))
        .map(std::net::TcpListener::from)
}

/// The inherited unix listener bound to `path`, if any.
pub fn take_unix(path: &Path) -> Option<std::os::unix::net::UnixListener> {
    lock()
        .remove(&unix_key(path))
        .map(std::os::unix::net::UnixListener::from)
}

/// The inherited descriptor of the TAP device `name`, if any.
pub fn take_tap(name: &str) -> Option<OwnedFd> {
    lock().remove(&tap_key(name))
}

/// Closes what nobody claimed (a listener or port the successor's
/// configuration no longer has) except the keys `wait` keeps (ports still
/// opening); returns the closed keys.
pub fn close_unclaimed(wait: impl Fn(&str) -> bool) -> Vec<String> {
    let mut reg = lock();
    let gone: Vec<String> = reg.keys().filter(|k| !wait(k)).cloned().collect();
    for k in &gone {
        reg.remove(k);
    }
    gone
}

/// Keys not claimed yet.
pub fn unclaimed() -> Vec<String> {
    lock().keys().cloned().collect()
}

/// Runs `f` with the raw numbers of the descriptors not claimed yet, under
/// the registry's lock, so that nothing is claimed (and so leaves the list)
/// meanwhile: `daemon::fds::private_table` closes its thread's copies of
/// them right after `unshare`.
pub fn with_unclaimed<R>(f: impl FnOnce(&[RawFd]) -> R) -> R {
    let reg = lock();
    let raw: Vec<RawFd> = reg.values().map(|fd| fd.as_raw_fd()).collect();
    f(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_once_and_the_rest_closed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("l.sock");
        let ul = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let tl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taddr = tl.local_addr().unwrap();
        put(tcp_key(&taddr), tl.into());
        put(unix_key(&path), ul.into());
        let copy = std::os::unix::net::UnixListener::bind(d.path().join("t")).unwrap();
        put(tap_key("t0"), copy.into());
        let l = take_tcp(&taddr).expect("registered");
        assert!(take_tcp(&taddr).is_none(), "claimed twice");
        assert_eq!(l.local_addr().unwrap(), taddr);
        assert_eq!(with_unclaimed(|raw| raw.len()), 2);
        let mut left = unclaimed();
        left.sort();
        assert_eq!(left, vec![tap_key("t0"), unix_key(&path)]);
        // A port still opening keeps its device; the rest is closed.
        assert_eq!(
            close_unclaimed(|k| k == tap_key("t0")),
            vec![unix_key(&path)]
        );
        assert!(take_unix(&path).is_none());
        assert_eq!(close_unclaimed(|_| false), vec![tap_key("t0")]);
        assert!(unclaimed().is_empty());
    }
}
