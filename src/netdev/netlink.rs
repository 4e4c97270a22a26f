//! rtnetlink access to interface metadata and link change notifications.
//!
//! This is slow-path code used by the Port actors (never by poll threads):
//! - [`get_link`], [`list_links`] and [`set_link_up`] are synchronous; each
//!   opens its own netlink socket, sends one request and reads the answer.
//! - [`LinkMonitor`] is a non-blocking subscription to `RTNLGRP_LINK`, owned
//!   by whoever polls it; [`spawn_monitor_thread`] runs one in a dedicated
//!   thread and hands every event to a callback.
//!
//! Requests are built with `netlink-packet-route`; replies and notifications
//! are split and parsed here, attribute by attribute, so that a malformed
//! message or an attribute the library cannot decode is counted and skipped
//! instead of failing the whole read (and nothing from the socket can panic).

use super::sys::{self, io_err};
use super::NetdevError;
use crate::types::MacAddr;
use netlink_packet_core::{
    NetlinkMessage, NlaBuffer, NlasIterator, ParseableParametrized, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_REQUEST,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkHeader, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

/// Receive buffer for one netlink datagram; dumps never exceed 32 KiB each.
const RECV_BUF: usize = 64 * 1024;
/// How long a synchronous request waits for the kernel before giving up.
const REQUEST_TIMEOUT_SECS: libc::time_t = 5;
/// Socket buffer for the monitor, so that a burst of changes is not lost.
const MONITOR_SOCK_BUF: libc::c_int = 1 << 20;

const NLMSG_HDR_LEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const LINK_HDR_LEN: usize = 16;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
/// Multicast group of link notifications (RTNLGRP_LINK).
const RTNLGRP_LINK: u32 = 1;

/// What the Port actors need to know about an interface: enough to fill an
/// OpenFlow port description and to notice carrier or admin changes.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LinkInfo {
    /// Kernel interface index.
    pub ifindex: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address (all zero for devices without one), serialised as
    /// "aa:bb:cc:dd:ee:ff".
    #[serde(serialize_with = "serialize_mac")]
    pub mac: MacAddr,
    /// MTU in bytes.
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub admin_up: bool,
    /// Link has carrier while administratively up (IFF_LOWER_UP).
    pub carrier: bool,
    /// Link speed from sysfs; `None` when the driver does not know it.
    pub speed_mbps: Option<u32>,
}

fn serialize_mac<S: serde::Serializer>(mac: &MacAddr, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(mac)
}

/// A change reported by the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkEvent {
    /// The link was created or one of its properties changed.
    Changed(LinkInfo),
    /// The link was deleted (or moved to another namespace).
    Deleted {
        /// Its former index.
        ifindex: u32,
        /// Its former name (empty if the kernel did not say and we never saw it).
        name: String,
    },
}

/// One netlink message split out of a datagram and decoded as far as we care.
#[derive(Debug, PartialEq)]
enum Msg {
    /// RTM_NEWLINK (a reply or a notification).
    NewLink(LinkInfo),
    /// RTM_DELLINK; the name is empty when absent.
    DelLink { ifindex: u32, name: String },
    /// NLMSG_DONE: end of a dump.
    Done,
    /// NLMSG_ERROR: 0 is an acknowledgement, otherwise a negative errno.
    Error(i32),
    /// Anything else (ignored).
    Other,
}

/// Splits a datagram into messages, calling `f(sequence, port, msg)` for each
/// one; returns how many were malformed. Never panics on any input.
fn parse_datagram(buf: &[u8], mut f: impl FnMut(u32, u32, Msg)) -> u64 {
    let mut errors = 0;
    let mut off = 0;
    while off < buf.len() {
        let rest = &buf[off..];
        if rest.len() < NLMSG_HDR_LEN {
            errors += 1;
            break;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDR_LEN || len > rest.len() {
            errors += 1;
            break;
        }
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let port = u32::from_ne_bytes([rest[12], rest[13], rest[14], rest[15]]);
        let payload = &rest[NLMSG_HDR_LEN..len];
        match parse_message(ty, payload) {
            Some(m) => f(seq, port, m),
            None => errors += 1,
        }
        // Messages are 4-byte aligned; the last one may omit its padding.
        off = off.saturating_add((len + 3) & !3);
    }
    errors
}

/// Decodes one message body of type `ty`; `None` when malformed.
fn parse_message(ty: u16, payload: &[u8]) -> Option<Msg> {
    match ty {
        NLMSG_DONE => Some(Msg::Done),
        NLMSG_ERROR => {
            let b = payload.get(..4)?;
            Some(Msg::Error(i32::from_ne_bytes([b[0], b[1], b[2], b[3]])))
        }
        RTM_NEWLINK => parse_link(payload).map(Msg::NewLink),
        RTM_DELLINK => {
            let header = LinkHeader::parse(payload).ok()?;
            let name = parse_link(payload).map(|l| l.name).unwrap_or_default();
            Some(Msg::DelLink {
                ifindex: header.index,
                name,
            })
        }
        _ => Some(Msg::Other),
    }
}

/// Decodes the parts of a link message we need; `None` without a name.
fn parse_link(payload: &[u8]) -> Option<LinkInfo> {
    let header = LinkHeader::parse(payload).ok()?;
    let attrs = payload.get(LINK_HDR_LEN..)?;
    let mut name = None;
    let mut mac = MacAddr::default();
    let mut mtu = 0;
    for nla in NlasIterator::new(attrs) {
        // A broken attribute ends the list: the rest cannot be located.
        let Ok(nla) = nla else { break };
        if !matches!(nla.kind(), IFLA_ADDRESS | IFLA_IFNAME | IFLA_MTU) {
            continue;
        }
        let parsed =
            <LinkAttribute as ParseableParametrized<NlaBuffer<&[u8]>, _>>::parse_with_param(
                &nla,
                header.interface_family,
            );
        match parsed {
            Ok(LinkAttribute::IfName(n)) => name = Some(n),
            Ok(LinkAttribute::Address(a)) => {
                if let Ok(b) = <[u8; 6]>::try_from(a.as_slice()) {
                    mac = MacAddr(b);
                }
            }
            Ok(LinkAttribute::Mtu(m)) => mtu = m,
            _ => {}
        }
    }
    let name = name?;
    let speed_mbps = read_speed(&name);
    Some(LinkInfo {
        ifindex: header.index,
        mac,
        mtu,
        admin_up: header.flags.contains(LinkFlags::Up),
        carrier: header.flags.contains(LinkFlags::LowerUp),
        speed_mbps,
        name,
    })
}

/// Reads `/sys/class/net/NAME/speed`; `None` when unreadable or unknown (-1).
fn read_speed(name: &str) -> Option<u32> {
    sys::ifname(name).ok()?;
    let s = std::fs::read_to_string(format!("/sys/class/net/{name}/speed")).ok()?;
    let v: i64 = s.trim().parse().ok()?;
    u32::try_from(v).ok().filter(|&v| v > 0)
}

/// A netlink socket for one synchronous request.
fn request_socket(dev: &str) -> Result<Socket, NetdevError> {
    let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| io_err("netlink socket", dev, e))?;
    sock.bind_auto()
        .map_err(|e| io_err("netlink bind", dev, e))?;
    let tv = libc::timeval {
        tv_sec: REQUEST_TIMEOUT_SECS,
        tv_usec: 0,
    };
    sys::setsockopt(sock.as_fd(), libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
        .map_err(|e| io_err("setsockopt(SO_RCVTIMEO)", dev, e))?;
    Ok(sock)
}

/// Sends `msg` and collects the link messages of the reply until the dump ends
/// or the kernel acknowledges. A negative acknowledgement becomes an error
/// carrying its errno.
fn transact(dev: &str, msg: RouteNetlinkMessage, flags: u16) -> Result<Vec<LinkInfo>, NetdevError> {
    let sock = request_socket(dev)?;
    let seq = 1;
    let mut nl = NetlinkMessage::from(msg);
    nl.header.flags = flags;
    nl.header.sequence_number = seq;
    nl.finalize();
    let mut out = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut out);
    sock.send(&out, 0)
        .map_err(|e| io_err("netlink send", dev, e))?;
    let mut links = Vec::new();
    let mut buf = Vec::with_capacity(RECV_BUF);
    loop {
        buf.clear();
        let (n, from) = sock
            .recv_from(&mut buf, libc::MSG_TRUNC)
            .map_err(|e| io_err("netlink recv", dev, e))?;
        if n > buf.len() {
            return Err(io_err(
                "netlink recv",
                dev,
                io::Error::other("netlink reply truncated"),
            ));
        }
        if from.port_number() != 0 {
            continue;
        }
        let mut finished = None;
        parse_datagram(&buf, |s, _, m| {
            if s != seq || finished.is_some() {
                return;
            }
            match m {
                Msg::NewLink(l) => links.push(l),
                Msg::Done => finished = Some(0),
                Msg::Error(code) => finished = Some(code),
                Msg::DelLink { .. } | Msg::Other => {}
            }
        });
        match finished {
            None => {}
            Some(0) => return Ok(links),
            Some(code) => {
                return Err(io_err(
                    "rtnetlink",
                    dev,
                    io::Error::from_raw_os_error(code.saturating_abs()),
                ))
            }
        }
    }
}

/// Looks up one interface by name; `Ok(None)` when it does not exist.
pub fn get_link(name: &str) -> Result<Option<LinkInfo>, NetdevError> {
    if sys::ifname(name).is_err() {
        return Ok(None);
    }
    let mut lm = LinkMessage::default();
    lm.attributes.push(LinkAttribute::IfName(name.to_string()));
    match transact(
        name,
        RouteNetlinkMessage::GetLink(lm),
        NLM_F_REQUEST | NLM_F_ACK,
    ) {
        Ok(links) => Ok(links.into_iter().find(|l| l.name == name)),
        Err(NetdevError::NoSuchDevice(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lists every interface in the current network namespace.
pub fn list_links() -> Result<Vec<LinkInfo>, NetdevError> {
    transact(
        "*",
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
}

/// Sets or clears IFF_UP on `name` (like `ip link set NAME up|down`).
pub fn set_link_up(name: &str, up: bool) -> Result<(), NetdevError> {
    sys::ifname(name)?;
    let mut lm = LinkMessage::default();
    lm.header.flags = if up {
        LinkFlags::Up
    } else {
        LinkFlags::empty()
    };
    lm.header.change_mask = LinkFlags::Up;
    lm.attributes.push(LinkAttribute::IfName(name.to_string()));
    transact(
        name,
        RouteNetlinkMessage::SetLink(lm),
        NLM_F_REQUEST | NLM_F_ACK,
    )
    .map(|_| ())
}

/// A non-blocking subscription to link notifications. Owned by one thread,
/// which waits for [`LinkMonitor::fd`] to become readable and then calls
/// [`LinkMonitor::poll_events`].
pub struct LinkMonitor {
    sock: Socket,
    buf: Vec<u8>,
    /// Names of the links we know, so that a deletion (or a resync after lost
    /// notifications) can be reported by name.
    known: HashMap<u32, String>,
    errors: u64,
}

impl LinkMonitor {
    /// Subscribes to RTNLGRP_LINK and snapshots the current links (without
    /// reporting them: callers that need the initial state use [`list_links`]).
    pub fn open() -> Result<LinkMonitor, NetdevError> {
        let mut sock =
            Socket::new(NETLINK_ROUTE).map_err(|e| io_err("netlink socket", "monitor", e))?;
        sock.bind(&SocketAddr::new(0, 0))
            .map_err(|e| io_err("netlink bind", "monitor", e))?;
        sock.add_membership(RTNLGRP_LINK)
            .map_err(|e| io_err("netlink add_membership", "monitor", e))?;
        sock.set_non_blocking(true)
            .map_err(|e| io_err("netlink nonblock", "monitor", e))?;
        // Best effort: a small buffer only means more resyncs.
        let _ = sys::set_buf_size(
            sock.as_fd(),
            libc::SO_RCVBUFFORCE,
            libc::SO_RCVBUF,
            MONITOR_SOCK_BUF,
        );
        let known = list_links()?
            .into_iter()
            .map(|l| (l.ifindex, l.name))
            .collect();
        Ok(LinkMonitor {
            sock,
            buf: Vec::with_capacity(RECV_BUF),
            known,
            errors: 0,
        })
    }

    /// Descriptor that becomes readable when notifications wait.
    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// Malformed or truncated notifications skipped so far.
    pub fn parse_errors(&self) -> u64 {
        self.errors
    }

    /// Appends every pending notification to `out` without blocking. When the
    /// kernel reports lost notifications (ENOBUFS), the link list is re-read
    /// and reported as `Changed` for each link plus `Deleted` for links that
    /// vanished meanwhile.
    pub fn poll_events(&mut self, out: &mut Vec<LinkEvent>) -> Result<(), NetdevError> {
        loop {
            self.buf.clear();
            match self
                .sock
                .recv_from(&mut self.buf, libc::MSG_TRUNC | libc::MSG_DONTWAIT)
            {
                Ok((n, from)) => {
                    if n > self.buf.len() {
                        self.errors += 1;
                        continue;
                    }
                    // Only the kernel speaks for the link group.
                    if from.port_number() != 0 {
                        continue;
                    }
                    let known = &mut self.known;
                    self.errors += parse_datagram(&self.buf, |_, _, m| match m {
                        Msg::NewLink(l) => {
                            known.insert(l.ifindex, l.name.clone());
                            out.push(LinkEvent::Changed(l));
                        }
                        Msg::DelLink { ifindex, name } => {
                            let old = known.remove(&ifindex);
                            let name = if name.is_empty() {
                                old.unwrap_or_default()
                            } else {
                                name
                            };
                            out.push(LinkEvent::Deleted { ifindex, name });
                        }
                        Msg::Done | Msg::Error(_) | Msg::Other => {}
                    });
                }
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(()),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => self.resync(out)?,
                    _ => return Err(io_err("netlink recv", "monitor", e)),
                },
            }
        }
    }

    /// Re-reads all links after lost notifications.
    fn resync(&mut self, out: &mut Vec<LinkEvent>) -> Result<(), NetdevError> {
        let links = list_links()?;
        let mut now: HashMap<u32, String> = HashMap::with_capacity(links.len());
        for l in links {
            now.insert(l.ifindex, l.name.clone());
            out.push(LinkEvent::Changed(l));
        }
        for (ifindex, name) in self.known.drain() {
            if !now.contains_key(&ifindex) {
                out.push(LinkEvent::Deleted { ifindex, name });
            }
        }
        self.known = now;
        Ok(())
    }
}

/// A running monitor thread; dropping it (or calling [`MonitorThread::stop`])
/// stops the thread and waits for it.
pub struct MonitorThread {
    wake: OwnedFd,
    handle: Option<JoinHandle<()>>,
}

impl MonitorThread {
    /// Stops the thread and waits until it has exited (after the event being
    /// delivered, if any).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local u64 to our own eventfd.
        let _ = unsafe {
            libc::write(
                self.wake.as_raw_fd(),
                (&one as *const u64).cast::<libc::c_void>(),
                8,
            )
        };
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MonitorThread {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs a [`LinkMonitor`] in a dedicated thread that sleeps on the socket and
/// calls `callback` once per event, in kernel order. The subscription is made
/// before this returns, so no change after the call is missed. The thread ends
/// when the returned handle is stopped or dropped, or on a socket error (which
/// it logs).
pub fn spawn_monitor_thread<F>(mut callback: F) -> Result<MonitorThread, NetdevError>
where
    F: FnMut(LinkEvent) + Send + 'static,
{
    let mut mon = LinkMonitor::open()?;
    // SAFETY: plain eventfd(2) call; the result is checked.
    let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if raw < 0 {
        return Err(sys::last_err("eventfd", "monitor"));
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    let wake = unsafe { OwnedFd::from_raw_fd(raw) };
    let wake_rx = wake.try_clone().map_err(|e| io_err("dup", "monitor", e))?;
    let handle = std::thread::Builder::new()
        .name("link-monitor".into())
        .spawn(move || {
            let mut events = Vec::new();
            loop {
                let mut fds = [
                    libc::pollfd {
                        fd: mon.fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                    libc::pollfd {
                        fd: wake_rx.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    },
                ];
                // SAFETY: `fds` is a valid array of two pollfd for the call.
                let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
                if r < 0 {
                    if sys::errno() == libc::EINTR {
                        continue;
                    }
                    tracing::error!("link monitor poll failed: {}", io::Error::last_os_error());
                    return;
                }
                if fds[1].revents != 0 {
                    return;
                }
                if let Err(e) = mon.poll_events(&mut events) {
                    tracing::error!("link monitor stopped: {e}");
                    return;
                }
                for ev in events.drain(..) {
                    callback(ev);
                }
            }
        })
        .map_err(|e| io_err("spawn", "monitor", e))?;
    Ok(MonitorThread {
        wake,
        handle: Some(handle),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NLM_F_MULTIPART;
    use proptest::prelude::*;

    fn encode(msg: RouteNetlinkMessage, seq: u32) -> Vec<u8> {
        let mut nl = NetlinkMessage::from(msg);
        nl.header.flags = NLM_F_MULTIPART;
        nl.header.sequence_number = seq;
        nl.finalize();
        let mut out = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut out);
        out
    }

    fn link_msg(index: u32, name: &str, up: bool) -> LinkMessage {
        let mut lm = LinkMessage::default();
        lm.header.index = index;
        lm.header.flags = if up {
            LinkFlags::Up | LinkFlags::LowerUp | LinkFlags::Running
        } else {
            LinkFlags::empty()
        };
        lm.attributes.push(LinkAttribute::Mtu(9000));
        lm.attributes.push(LinkAttribute::IfName(name.to_string()));
        lm.attributes
            .push(LinkAttribute::Address(vec![2, 0, 0, 0, 0, 7]));
        lm.attributes.push(LinkAttribute::TxQueueLen(1000));
        lm
    }

    fn collect(buf: &[u8]) -> (Vec<(u32, Msg)>, u64) {
        let mut v = Vec::new();
        let errors = parse_datagram(buf, |seq, _, m| v.push((seq, m)));
        (v, errors)
    }

    #[test]
    fn parses_a_dump_of_several_messages() {
        let mut buf = encode(RouteNetlinkMessage::NewLink(link_msg(7, "rvx0", true)), 5);
        buf.extend(encode(
            RouteNetlinkMessage::DelLink(link_msg(8, "rvx1", false)),
            5,
        ));
        // NLMSG_DONE with a zero status.
        buf.extend_from_slice(&20u32.to_ne_bytes());
        buf.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        buf.extend_from_slice(&NLM_F_MULTIPART.to_ne_bytes());
        buf.extend_from_slice(&5u32.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&0i32.to_ne_bytes());
        let (msgs, errors) = collect(&buf);
        assert_eq!(errors, 0);
        assert_eq!(msgs.len(), 3);
        match &msgs[0] {
            (5, Msg::NewLink(l)) => {
                assert_eq!(l.ifindex, 7);
                assert_eq!(l.name, "rvx0");
                assert_eq!(l.mtu, 9000);
                assert_eq!(l.mac, MacAddr([2, 0, 0, 0, 0, 7]));
                assert!(l.admin_up && l.carrier);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            msgs[1].1,
            Msg::DelLink {
                ifindex: 8,
                name: "rvx1".into()
            }
        );
        assert_eq!(msgs[2].1, Msg::Done);
    }

    #[test]
    fn error_messages_carry_their_errno() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&36u32.to_ne_bytes());
        buf.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
        buf.extend_from_slice(&0u16.to_ne_bytes());
        buf.extend_from_slice(&9u32.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&(-libc::ENODEV).to_ne_bytes());
        buf.extend_from_slice(&[0u8; 16]);
        let (msgs, errors) = collect(&buf);
        assert_eq!(errors, 0);
        assert_eq!(msgs, vec![(9, Msg::Error(-libc::ENODEV))]);
        // An error message too short for its code is malformed.
        let mut short = buf[..16].to_vec();
        short[0..4].copy_from_slice(&16u32.to_ne_bytes());
        let (msgs, errors) = collect(&short);
        assert!(msgs.is_empty());
        assert_eq!(errors, 1);
    }

    #[test]
    fn garbage_and_truncation_are_counted_not_fatal() {
        let good = encode(RouteNetlinkMessage::NewLink(link_msg(3, "rvx3", false)), 1);
        // Truncated in the middle: the header claims more than there is.
        let (msgs, errors) = collect(&good[..good.len() - 5]);
        assert!(msgs.is_empty());
        assert_eq!(errors, 1);
        // A length below the header size.
        let mut bad = good.clone();
        bad[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(collect(&bad).1, 1);
        // A link message without a name is useless to us.
        let mut noname = LinkMessage::default();
        noname.header.index = 4;
        let (msgs, errors) = collect(&encode(RouteNetlinkMessage::NewLink(noname), 1));
        assert!(msgs.is_empty());
        assert_eq!(errors, 1);
        // A good message followed by a stray partial header: the good one counts.
        let mut tail = good.clone();
        tail.extend_from_slice(&[1, 2, 3]);
        let (msgs, errors) = collect(&tail);
        assert_eq!(msgs.len(), 1);
        assert_eq!(errors, 1);
        // Broken attributes after the name do not lose the link.
        let mut broken = good.clone();
        let total = broken.len() as u32 + 8;
        broken[0..4].copy_from_slice(&total.to_ne_bytes());
        broken.extend_from_slice(&[200, 0, 3, 0, 0, 0, 0, 0]);
        let (msgs, errors) = collect(&broken);
        assert_eq!(errors, 0);
        assert!(matches!(&msgs[0].1, Msg::NewLink(l) if l.name == "rvx3"));
    }

    #[test]
    fn unreadable_speed_is_none() {
        assert_eq!(read_speed("rvnosuchdev0"), None);
        assert_eq!(read_speed("../../etc"), None);
        // Loopback has no speed.
        assert_eq!(read_speed("lo"), None);
    }

    #[test]
    fn link_info_serialises_mac_as_text() {
        let l = LinkInfo {
            ifindex: 2,
            name: "eth0".into(),
            mac: MacAddr([0xaa, 0xbb, 0xcc, 0, 1, 2]),
            mtu: 1500,
            admin_up: true,
            carrier: false,
            speed_mbps: Some(10_000),
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["mac"], "aa:bb:cc:00:01:02");
        assert_eq!(v["speed_mbps"], 10_000);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut n = 0;
            let _ = parse_datagram(&buf, |_, _, _| n += 1);
            prop_assert!(n <= buf.len() / NLMSG_HDR_LEN);
        }

        #[test]
        fn mutated_link_messages_never_panic(
            pos in 0usize..200, val in any::<u8>(), cut in 0usize..200
        ) {
            let mut buf = encode(RouteNetlinkMessage::NewLink(link_msg(3, "rvx3", true)), 1);
            let p = pos % buf.len();
            buf[p] = val;
            buf.truncate(buf.len().saturating_sub(cut % buf.len()));
            let _ = parse_datagram(&buf, |_, _, _| {});
        }
    }
}
