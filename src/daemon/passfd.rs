//! The system calls of a hand-over (`daemon::takeover`): what this process
//! holds that a successor should get ([`exportable`]), and sending and
//! receiving descriptors over a unix stream socket (`SCM_RIGHTS`).
//!
//! The old process finds what to hand over by looking at its own descriptor
//! table: every listening socket (OpenFlow `ptcp:`/`pssl:`/`punix:`
//! listeners, the control and takeover sockets, the stats endpoint), keyed by
//! its bound address, and every TAP device, keyed by its interface name (keys
//! from `util::inherit`). Nothing has to register: a listener or device is
//! exported because the kernel says this process holds it. `AF_PACKET`
//! sockets are not handed over: their receive rings are mapped into the old
//! process, and two processes sharing one ring would race on its frame status
//! words; the successor opens its own (the kernel gives every packet socket
//! its own copy of each frame), and frames the old sockets gathered after the
//! switch point die with them.

use crate::util::inherit::{tap_key, tcp_key, unix_key};
use nix::sys::socket::{
    getsockname, getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned,
    MsgFlags, SockaddrStorage,
};
use std::collections::BTreeMap;
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Most descriptors one message carries (the kernel's `SCM_MAX_FD` is 253).
pub const MAX_FDS_PER_MESSAGE: usize = 200;

/// What this process holds that a successor should receive: a duplicate of
/// every listening socket and of one descriptor per TAP device, with its
/// key. Read from `/proc/self/fd`; each descriptor is duplicated before it
/// is looked at, so one closed and reused meanwhile by another thread is
/// examined as what it now is, never as what it was.
pub fn exportable() -> std::io::Result<Vec<(String, OwnedFd)>> {
    let mut out: BTreeMap<String, OwnedFd> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(n) = entry
            .ok()
            .and_then(|e| e.file_name().to_str().and_then(|s| s.parse::<RawFd>().ok()))
        else {
            continue;
        };
        // SAFETY: F_DUPFD_CLOEXEC takes an int argument and returns a new
        // descriptor or -1; `n` may be closed by now (EBADF, skipped).
        let dup = unsafe { libc::fcntl(n, libc::F_DUPFD_CLOEXEC, 0) };
        if dup < 0 {
            continue;
        }
        // SAFETY: `dup` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(dup) };
        if let Some(key) = classify(&fd) {
            out.entry(key).or_insert(fd);
        }
    }
    Ok(out.into_iter().collect())
}

/// The key of a listening socket or a TAP device; None for anything else.
fn classify(fd: &OwnedFd) -> Option<String> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()?;
    let link = link.to_string_lossy();
    if link.starts_with("socket:") {
        if !getsockopt(fd, sockopt::AcceptConn).ok()? {
            return None;
        }
        let addr: SockaddrStorage = getsockname(fd.as_raw_fd()).ok()?;
        if let Some(a) = addr.as_sockaddr_in() {
            return Some(tcp_key(&SocketAddr::V4((*a).into())));
        }
        if let Some(a) = addr.as_sockaddr_in6() {
            return Some(tcp_key(&SocketAddr::V6((*a).into())));
        }
        return addr.as_unix_addr().and_then(|u| u.path()).map(unix_key);
    }
    if link == "/dev/net/tun" {
        // The tun driver names the attached interface in fdinfo
        // (`tun_chr_show_fdinfo`: "iff:\tNAME").
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).ok()?;
        return info
            .lines()
            .find_map(|l| l.strip_prefix("iff:"))
            .map(|n| tap_key(n.trim()))
            .filter(|k| k.len() > "tap:".len());
    }
    None
}

/// Sends `bytes` with `fds` attached (`SCM_RIGHTS`) on the stream socket
/// `sock`; returns how many bytes went (the caller sends the rest without
/// descriptors). At most [`MAX_FDS_PER_MESSAGE`] descriptors.
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<usize> {
    if fds.len() > MAX_FDS_PER_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} descriptors in one message", fds.len()),
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage<'_>] = if raw.is_empty() { &[] } else { &cmsg };
    Ok(sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?)
}

/// Receives into `buf` from the stream socket `sock`, with any descriptors
/// attached (close-on-exec). Returns the byte count (0 at end of stream) and
/// the descriptors. Descriptors the kernel had to drop for lack of room are
/// an error, not a silent loss.
pub fn recv_with_fds(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS_PER_MESSAGE]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(v) = c {
            for raw in v {
                // SAFETY: the kernel installed `raw` in our table for this
                // message; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(raw) });
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(std::io::Error::other(
            "descriptors lost: the control message was truncated",
        ));
    }
    Ok((msg.bytes, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn listeners_are_found_and_pass_through_a_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("l.sock");
        let _ul = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let tl = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taddr = tl.local_addr().unwrap();
        // A connected (not listening) socket is not exported.
        let client = std::net::TcpStream::connect(taddr).unwrap();
        let found = exportable().unwrap();
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert!(keys.contains(&tcp_key(&taddr).as_str()), "{keys:?}");
        assert!(keys.contains(&unix_key(&path).as_str()), "{keys:?}");
        let local = client.local_addr().unwrap();
        assert!(!keys.contains(&tcp_key(&local).as_str()), "{keys:?}");

        // Through a socket pair: the received descriptor is the same listener.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let n = send_with_fds(a.as_fd(), b"x", &[tl.as_fd()]).unwrap();
        assert_eq!(n, 1);
        let mut buf = [0u8; 8];
        let (got, fds) = recv_with_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!((got, fds.len()), (1, 1));
        let l = std::net::TcpListener::from(fds.into_iter().next().unwrap());
        assert_eq!(l.local_addr().unwrap(), taddr);
        drop(tl);
        // Still listening through the passed descriptor.
        let _c = std::net::TcpStream::connect(taddr).unwrap();
        assert!(l.accept().is_ok());
    }

    #[test]
    fn too_many_descriptors_are_refused() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let fds: Vec<BorrowedFd<'_>> = (0..=MAX_FDS_PER_MESSAGE).map(|_| a.as_fd()).collect();
        assert!(send_with_fds(a.as_fd(), b"x", &fds).is_err());
    }
}
