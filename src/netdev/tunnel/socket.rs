//! The tunnel device: a VXLAN or Geneve port over kernel UDP sockets.
//!
//! Ownership and threads: a [`TunnelNetdev`] (the receive socket, plus a
//! [`TunnelTx`] for its own transmits) belongs to one poll thread; every
//! [`TunnelTx`] from [`Netdev::open_tx`] belongs to one other poll thread and
//! holds duplicates of the send sockets and its own segmentation scratch. The
//! only shared state is the [`TunnelCounters`] (relaxed atomics). No lock and
//! no allocation per packet: `mmsghdr`/`iovec`/control arrays live on the
//! stack of `recv_batch`/`send_batch`, GSO segments in the preallocated
//! [`Segmenter`].
//!
//! Receive: one socket bound to `local_ip` (or the unspecified address) and
//! `dst_port`, with `IP_PKTINFO` (the outer destination, for `tun_dst`),
//! `IP_RECVTOS`, `IP_RECVTTL` and `SO_RXQ_OVFL` (the kernel's drop count, for
//! [`Netdev::rx_overruns`]). `recvmmsg` writes datagrams straight into the
//! packets' receive areas; the tunnel header is then pulled off the front, so
//! the inner frame is never copied.
//!
//! Transmit: the inner frame (its offloads completed in software, see
//! [`super::segment`]) goes out as a two-piece message, tunnel header and
//! frame, so it is not copied either. The outer UDP source port carries a
//! hash of the inner flow, so that ECMP and RSS in the underlay spread flows
//! and keep each in order (RFC 7348 §5, RFC 8926 §3.3; OVS
//! `netdev_tnl_get_src_port`, Linux `udp_flow_src_port`). A socket's source
//! port is fixed, so the device keeps a pool of [`POOL`] send sockets bound to
//! distinct ephemeral ports and picks one by the hash.
//!
//! MTU: the kernel fragments nothing with `df_default` (the default): an
//! encapsulated frame bigger than the underlay path MTU is dropped and
//! counted in `drop_mtu`. Operators set the MTU of the ports whose traffic
//! enters the tunnel (VM interfaces, internal ports) to the underlay MTU
//! minus the encapsulation: 50 bytes for VXLAN or option-less Geneve over
//! IPv4 (outer IPv4 20 + UDP 8 + tunnel header 8 + inner Ethernet 14), so
//! 1450 on a 1500-byte underlay. TCP super-frames are segmented here to their
//! `gso_size`, which the sender derived from that MTU.
//!
//! One device per (`local_ip`, `dst_port`): the receive socket owns that
//! address and port (no `SO_REUSEADDR`/`SO_REUSEPORT`, which would let a
//! second socket silently steal or share the datagrams), so a second port on
//! the same pair fails to open with EADDRINUSE. Several peers on one port
//! are `remote_ip = "flow"` (the flow table picks `tun_dst`; receive reports
//! `tun_src`), as OVS's flow-based tunnels.
//!
//! IPv6 underlay: not supported yet. The packet's [`TunnelMeta`] carries
//! IPv4 outer addresses only, so `open` refuses IPv6 `remote_ip`/`local_ip`
//! with a precise error rather than half-supporting them (over IPv6 the
//! overhead would be 70 bytes).

use super::segment::{self, Segmenter};
use super::wire::{self, HEADER_LEN, VNI_MAX};
use super::{FlowOr, TunnelConfig, TunnelCounters, TunnelKind};
use crate::netdev::packet::{PacketBatch, TunnelMeta, BATCH_SIZE};
use crate::netdev::sys::{self, errno, io_err, setsockopt};
use crate::netdev::{Netdev, NetdevError, NetdevTx, TxResult};
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Send sockets per device (distinct UDP source ports for ECMP entropy).
pub const POOL: usize = 16;
/// Receive buffer we ask for (forced past `rmem_max` when privileged).
const RCVBUF_BYTES: libc::c_int = 4 << 20;
/// Send buffer per pool socket.
const SNDBUF_BYTES: libc::c_int = 1 << 20;
/// Room for the receive control messages: `in_pktinfo`, TOS, TTL, overflow
/// count (each `CMSG_SPACE` at most 32 bytes).
const RX_CMSG_BYTES: usize = 128;
/// Room for one `in_pktinfo` on send.
const TX_CMSG_BYTES: usize = 32;
/// Messages staged per `sendmmsg` round: a whole chunk of GSO segments.
const STAGE: usize = segment::MAX_SEGS;

/// Control-message buffer with the alignment `cmsghdr` needs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct Cmsg<const N: usize>([u8; N]);

/// What transmit and receive need from the configuration, resolved once.
#[derive(Clone, Copy, Debug)]
struct Params {
    kind: TunnelKind,
    /// Fixed remote (host byte order), or `None` for `remote_ip = "flow"`.
    remote: Option<u32>,
    /// Fixed VNI, or `None` for `key = "flow"`.
    key: Option<u32>,
    /// `local_ip = "flow"`: the source address comes from `tun_src`.
    local_flow: bool,
    dst_port: u16,
}

/// An open VXLAN or Geneve port.
pub struct TunnelNetdev {
    name: String,
    params: Params,
    rx: OwnedFd,
    tx: TunnelTx,
    rx_errors: u64,
    /// The kernel's cumulative drop count from the last `SO_RXQ_OVFL` message.
    overruns: u64,
    counters: Arc<TunnelCounters>,
}

/// A transmit handle on a tunnel port: the send socket pool and its own
/// segmentation scratch.
pub struct TunnelTx {
    name: String,
    params: Params,
    socks: Vec<OwnedFd>,
    seg: Segmenter,
    counters: Arc<TunnelCounters>,
}

fn v4(name: &str, what: &str, ip: IpAddr) -> Result<u32, NetdevError> {
    match ip {
        IpAddr::V4(a) => Ok(u32::from(a)),
        IpAddr::V6(_) => Err(NetdevError::Io {
            op: "open tunnel port",
            dev: name.to_string(),
            source: io::Error::new(
                io::ErrorKind::Unsupported,
                format!("{what} {ip} is IPv6; tunnels over an IPv6 underlay are not supported yet"),
            ),
        }),
    }
}

fn sockaddr4(addr: u32, port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: addr.to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// A non-blocking IPv4 UDP socket bound to `addr:port` (0 = any / ephemeral).
fn bound_socket(
    name: &str,
    addr: u32,
    port: u16,
    opts: impl Fn(BorrowedFd<'_>) -> io::Result<()>,
) -> Result<OwnedFd, NetdevError> {
    let fd = sys::socket(
        libc::AF_INET,
        libc::SOCK_DGRAM,
        "socket(AF_INET, SOCK_DGRAM)",
        name,
    )?;
    opts(fd.as_fd()).map_err(|e| io_err("setsockopt", name, e))?;
    let sa = sockaddr4(addr, port);
    // SAFETY: `sa` is a valid sockaddr_in of the size we pass.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sa as *const libc::sockaddr_in).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        let ctx = format!("{}:{port}: {e}", Ipv4Addr::from(addr));
        return Err(io_err("bind(UDP)", name, io::Error::new(e.kind(), ctx)));
    }
    Ok(fd)
}

/// Opens a tunnel port (see [`TunnelNetdev::open`]) behind the trait.
pub fn open(name: &str, cfg: &TunnelConfig) -> Result<Box<dyn Netdev>, NetdevError> {
    Ok(Box::new(TunnelNetdev::open(name, cfg)?))
}

impl TunnelNetdev {
    /// Opens the receive socket on `local_ip:dst_port` and the pool of send
    /// sockets, configured as `cfg` says: `SO_NO_CHECK` unless `csum`,
    /// `IP_MTU_DISCOVER` DO (DF set, `df_default`) or DONT, `IP_TTL`,
    /// `IP_TOS`, large buffers.
    pub fn open(name: &str, cfg: &TunnelConfig) -> Result<TunnelNetdev, NetdevError> {
        let remote = match cfg.remote_ip {
            FlowOr::Fixed(ip) => Some(v4(name, "remote_ip", ip)?),
            FlowOr::Flow => None,
        };
        let (local, local_flow) = match cfg.local_ip {
            Some(FlowOr::Fixed(ip)) => (v4(name, "local_ip", ip)?, false),
            Some(FlowOr::Flow) => (0, true),
            None => (0, false),
        };
        let params = Params {
            kind: cfg.kind,
            remote,
            key: match cfg.key {
                FlowOr::Fixed(k) => Some(k & VNI_MAX),
                FlowOr::Flow => None,
            },
            local_flow,
            dst_port: cfg.dst_port,
        };
        let one: libc::c_int = 1;
        let rx = bound_socket(name, local, cfg.dst_port, |fd| {
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_PKTINFO, &one)?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, &one)?;
            setsockopt(fd, libc::IPPROTO_IP, libc::IP_RECVTTL, &one)?;
            // Old kernels lack it; the overrun count then stays zero.
            let _ = setsockopt(fd, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, &one);
            sys::set_buf_size(fd, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, RCVBUF_BYTES)
        })?;
        let pmtu: libc::c_int = if cfg.df_default {
            libc::IP_PMTUDISC_DO
        } else {
            libc::IP_PMTUDISC_DONT
        };
        let ttl = libc::c_int::from(cfg.ttl);
        let tos = libc::c_int::from(cfg.tos);
        let mut socks = Vec::with_capacity(POOL);
        for _ in 0..POOL {
            socks.push(bound_socket(name, local, 0, |fd| {
                if !cfg.csum {
                    setsockopt(fd, libc::SOL_SOCKET, libc::SO_NO_CHECK, &one)?;
                }
                setsockopt(fd, libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, &pmtu)?;
                if ttl != 0 {
                    setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &ttl)?;
                }
                setsockopt(fd, libc::IPPROTO_IP, libc::IP_TOS, &tos)?;
                sys::set_buf_size(fd, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, SNDBUF_BYTES)?;
                // Nothing is meant to arrive on a send socket (peers send to
                // dst_port): keep its receive queue at the kernel's minimum.
                setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &0 as &libc::c_int)
            })?);
        }
        let counters = Arc::new(TunnelCounters::default());
        Ok(TunnelNetdev {
            name: name.to_string(),
            params,
            rx,
            tx: TunnelTx {
                name: name.to_string(),
                params,
                socks,
                seg: Segmenter::new(),
                counters: counters.clone(),
            },
            rx_errors: 0,
            overruns: 0,
            counters,
        })
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<TunnelCounters> {
        &self.counters
    }

    /// The UDP port the receive socket is bound to.
    pub fn dst_port(&self) -> u16 {
        self.params.dst_port
    }
}

#[inline]
fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}

/// What the receive control messages said.
#[derive(Default)]
struct RxMeta {
    dst: u32,
    tos: u8,
    ttl: u8,
    drops: Option<u32>,
}

fn rx_meta(msg: &libc::msghdr) -> RxMeta {
    let mut m = RxMeta::default();
    // SAFETY: `msg` was filled by recvmmsg, so msg_control/msg_controllen
    // describe our own control buffer and the CMSG_* macros stay inside it;
    // each payload is read (unaligned) only when cmsg_len covers it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = &*c;
            let data = libc::CMSG_DATA(c);
            let have = (h.cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
            match (h.cmsg_level, h.cmsg_type) {
                (libc::IPPROTO_IP, libc::IP_PKTINFO)
                    if have >= std::mem::size_of::<libc::in_pktinfo>() =>
                {
                    let pi = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                    m.dst = u32::from_be(pi.ipi_addr.s_addr);
                }
                (libc::IPPROTO_IP, libc::IP_TOS) if have >= 1 => m.tos = *data,
                (libc::IPPROTO_IP, libc::IP_TTL) if have >= 4 => {
                    m.ttl = std::ptr::read_unaligned(data.cast::<libc::c_int>()) as u8;
                }
                (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) if have >= 4 => {
                    m.drops = Some(std::ptr::read_unaligned(data.cast::<u32>()));
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    m
}

impl Netdev for TunnelNetdev {
    fn name(&self) -> &str {
        &self.name
    }

    /// A tunnel port has no kernel interface of its own.
    fn ifindex(&self) -> u32 {
        0
    }

    fn rx_fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    /// Receives datagrams and decapsulates them in place. Drops (and counts)
    /// malformed headers, sources other than a fixed `remote_ip`, VNIs other
    /// than a fixed `key`, in that order.
    fn recv_batch(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError> {
        let want = (batch.capacity() - batch.len()).min(BATCH_SIZE);
        if want == 0 {
            return Ok(0);
        }
        let base = batch.len();
        let mut cmsgs = [Cmsg([0; RX_CMSG_BYTES]); BATCH_SIZE];
        // SAFETY: sockaddr_in is a plain C struct for which all-zero is valid.
        let mut addrs: [libc::sockaddr_in; BATCH_SIZE] = unsafe { std::mem::zeroed() };
        // SAFETY: an all-zero iovec (null base, zero length) describes no memory.
        let mut iov: [libc::iovec; BATCH_SIZE] = unsafe { std::mem::zeroed() };
        // SAFETY: an all-zero mmsghdr (null pointers, zero lengths) is valid;
        // every field used is set before the call.
        let mut msgs: [libc::mmsghdr; BATCH_SIZE] = unsafe { std::mem::zeroed() };
        let mut claimed = 0;
        while claimed < want {
            let Some(p) = batch.next_slot() else { break };
            let area = p.rx_area();
            iov[claimed] = libc::iovec {
                iov_base: area.as_mut_ptr().cast(),
                iov_len: area.len(),
            };
            claimed += 1;
        }
        for i in 0..claimed {
            let h = &mut msgs[i].msg_hdr;
            h.msg_iov = &mut iov[i];
            h.msg_iovlen = 1;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_control = cmsgs[i].0.as_mut_ptr().cast();
            h.msg_controllen = RX_CMSG_BYTES as _;
        }
        let n = loop {
            // SAFETY: every msghdr points at buffers that live until the call
            // returns: the address, iovec and control arrays on this stack
            // frame and the packets' receive areas, which the batch keeps
            // allocated and nothing else touches during the call.
            let r = unsafe {
                libc::recvmmsg(
                    self.rx.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    claimed as libc::c_uint,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => break 0,
                e => {
                    for _ in 0..claimed {
                        batch.unclaim_last();
                    }
                    return Err(io_err(
                        "recvmmsg",
                        &self.name,
                        io::Error::from_raw_os_error(e),
                    ));
                }
            }
        };
        let c = &*self.counters;
        let p = self.params;
        let mut kept = 0;
        for i in 0..n.min(claimed) {
            let m = &msgs[i];
            let meta = rx_meta(&m.msg_hdr);
            if let Some(d) = meta.drops {
                self.overruns = u64::from(d);
            }
            let src = u32::from_be(addrs[i].sin_addr.s_addr);
            let pkt = &mut batch.packets_mut()[base + i];
            pkt.set_len(m.msg_len as usize);
            let d = match wire::decap(pkt.data(), p.kind) {
                Ok(d) if m.msg_hdr.msg_flags & libc::MSG_TRUNC == 0 => d,
                _ => {
                    self.rx_errors += 1;
                    bump(&c.drop_malformed, 1);
                    continue;
                }
            };
            if p.remote.is_some_and(|r| r != src) {
                bump(&c.drop_unknown_remote, 1);
                continue;
            }
            if p.key.is_some_and(|k| k != d.vni) {
                bump(&c.drop_unknown_vni, 1);
                continue;
            }
            pkt.pull_front(d.header_len);
            pkt.tunnel = TunnelMeta {
                id: u64::from(d.vni),
                src,
                dst: meta.dst,
                tos: meta.tos,
                ttl: meta.ttl,
            };
            if kept != i {
                batch.packets_mut().swap(base + kept, base + i);
            }
            kept += 1;
        }
        for _ in kept..claimed {
            batch.unclaim_last();
        }
        bump(&c.decap_packets, kept as u64);
        Ok(kept)
    }

    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        self.tx.send_batch(batch)
    }

    fn rx_errors(&self) -> u64 {
        self.rx_errors
    }

    fn rx_overruns(&mut self) -> u64 {
        self.overruns
    }

    fn open_tx(&self) -> Result<Box<dyn NetdevTx>, NetdevError> {
        Ok(Box::new(self.tx.try_clone()?))
    }

    fn tunnel_counters(&self) -> Option<Arc<TunnelCounters>> {
        Some(self.counters.clone())
    }
}

/// A cheap hash of the inner flow (Ethernet addresses, IP addresses, L4
/// ports), stable per flow: FNV-1a over those bytes, then a final mix so the
/// low bits that pick the socket depend on all of them. Missing headers are
/// skipped, never read past the frame.
pub fn flow_hash(f: &[u8]) -> u32 {
    fn eat(mut h: u32, b: &[u8]) -> u32 {
        for &x in b {
            h = (h ^ u32::from(x)).wrapping_mul(0x0100_0193);
        }
        h
    }
    let mut h = 0x811c_9dc5u32;
    if f.len() < 14 {
        return eat(h, f);
    }
    h = eat(h, &f[..12]);
    let mut l3 = 14;
    let mut et = u16::from_be_bytes([f[12], f[13]]);
    while (et == 0x8100 || et == 0x88a8) && f.len() >= l3 + 4 {
        et = u16::from_be_bytes([f[l3 + 2], f[l3 + 3]]);
        l3 += 4;
    }
    let (proto, l4) = match et {
        0x0800 if f.len() >= l3 + 20 => {
            h = eat(h, &f[l3 + 12..l3 + 20]);
            let frag = u16::from_be_bytes([f[l3 + 6], f[l3 + 7]]) & 0x1fff != 0;
            let ihl = usize::from(f[l3] & 0x0f) * 4;
            (if frag { 0 } else { f[l3 + 9] }, l3 + ihl)
        }
        0x86dd if f.len() >= l3 + 40 => {
            h = eat(h, &f[l3 + 8..l3 + 40]);
            (f[l3 + 6], l3 + 40)
        }
        _ => (0, 0),
    };
    if matches!(proto, 6 | 17 | 132) && f.len() >= l4 + 4 {
        h = eat(h, &[proto]);
        h = eat(h, &f[l4..l4 + 4]);
    }
    // murmur3's fmix32.
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// Messages waiting for one `sendmmsg` round. Only plain data is recorded
/// while staging; the pointers between the arrays are set at flush time,
/// when the struct no longer moves.
struct Stage {
    hdrs: [[u8; HEADER_LEN]; STAGE],
    addrs: [libc::sockaddr_in; STAGE],
    /// `tun_src` for `IP_PKTINFO` (0: let the route choose).
    srcs: [u32; STAGE],
    cmsgs: [Cmsg<TX_CMSG_BYTES>; STAGE],
    /// The frame (a packet's data or a segment in the scratch).
    data: [(*const u8, usize); STAGE],
    sock: [u8; STAGE],
    n: usize,
}

impl Stage {
    fn new() -> Stage {
        Stage {
            hdrs: [[0; HEADER_LEN]; STAGE],
            addrs: [sockaddr4(0, 0); STAGE],
            srcs: [0; STAGE],
            cmsgs: [Cmsg([0; TX_CMSG_BYTES]); STAGE],
            data: [(std::ptr::null(), 0); STAGE],
            sock: [0; STAGE],
            n: 0,
        }
    }

    fn is_full(&self) -> bool {
        self.n == STAGE
    }

    fn push(
        &mut self,
        hdr: &[u8; HEADER_LEN],
        dst: u32,
        port: u16,
        src: u32,
        frame: &[u8],
        sock: u8,
    ) {
        let i = self.n;
        self.hdrs[i] = *hdr;
        self.addrs[i] = sockaddr4(dst, port);
        self.srcs[i] = src;
        self.data[i] = (frame.as_ptr(), frame.len());
        self.sock[i] = sock;
        self.n += 1;
    }
}

impl TunnelTx {
    fn try_clone(&self) -> Result<TunnelTx, NetdevError> {
        let mut socks = Vec::with_capacity(self.socks.len());
        for s in &self.socks {
            socks.push(s.try_clone().map_err(|e| io_err("dup", &self.name, e))?);
        }
        Ok(TunnelTx {
            name: self.name.clone(),
            params: self.params,
            socks,
            seg: Segmenter::new(),
            counters: self.counters.clone(),
        })
    }

    /// Sends what `st` holds, grouped by socket (one flow always maps to one
    /// socket, so per-flow order is kept), and empties it. When `sendmmsg`
    /// stops early, the errno belongs to the next message: it is counted by
    /// cause and skipped, and the rest still goes.
    fn flush(&self, st: &mut Stage, res: &mut TxResult) {
        let n = st.n;
        if n == 0 {
            return;
        }
        st.n = 0;
        // SAFETY: an all-zero iovec describes no memory.
        let mut iov: [libc::iovec; 2 * STAGE] = unsafe { std::mem::zeroed() };
        // SAFETY: an all-zero mmsghdr (null pointers, zero lengths) is valid;
        // every field used is set below.
        let mut msgs: [libc::mmsghdr; STAGE] = unsafe { std::mem::zeroed() };
        // Counting sort by socket: slot `at[s]` is where socket s's next message goes.
        let mut count = [0usize; POOL];
        for &s in &st.sock[..n] {
            count[usize::from(s)] += 1;
        }
        let mut at = [0usize; POOL];
        for s in 1..POOL {
            at[s] = at[s - 1] + count[s - 1];
        }
        let starts = at;
        for i in 0..n {
            let j = at[usize::from(st.sock[i])];
            at[usize::from(st.sock[i])] += 1;
            iov[2 * j] = libc::iovec {
                iov_base: st.hdrs[i].as_mut_ptr().cast(),
                iov_len: HEADER_LEN,
            };
            iov[2 * j + 1] = libc::iovec {
                // The kernel only reads transmit buffers.
                iov_base: st.data[i].0 as *mut libc::c_void,
                iov_len: st.data[i].1,
            };
            let h = &mut msgs[j].msg_hdr;
            // SAFETY: 2 * j + 1 < iov.len() because j < STAGE.
            h.msg_iov = unsafe { iov.as_mut_ptr().add(2 * j) };
            h.msg_iovlen = 2;
            h.msg_name = (&mut st.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if st.srcs[i] != 0 {
                h.msg_control = st.cmsgs[i].0.as_mut_ptr().cast();
                // SAFETY: CMSG_SPACE is a pure size computation.
                h.msg_controllen =
                    unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::in_pktinfo>() as u32) }
                        as _;
                // SAFETY: msg_control points at TX_CMSG_BYTES (>= CMSG_SPACE
                // of an in_pktinfo) aligned bytes owned by `st`, so the first
                // header and its data lie inside them.
                unsafe {
                    let c = libc::CMSG_FIRSTHDR(h);
                    (*c).cmsg_level = libc::IPPROTO_IP;
                    (*c).cmsg_type = libc::IP_PKTINFO;
                    (*c).cmsg_len =
                        libc::CMSG_LEN(std::mem::size_of::<libc::in_pktinfo>() as u32) as _;
                    let pi = libc::in_pktinfo {
                        ipi_ifindex: 0,
                        ipi_spec_dst: libc::in_addr {
                            s_addr: st.srcs[i].to_be(),
                        },
                        ipi_addr: libc::in_addr { s_addr: 0 },
                    };
                    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<libc::in_pktinfo>(), pi);
                }
            }
        }
        let c = &*self.counters;
        for s in 0..POOL {
            let end = starts[s] + count[s];
            let mut i = starts[s];
            while i < end {
                // SAFETY: msgs[i..end] point at the iovecs above, at header,
                // address and control bytes in `st`, and at frames borrowed
                // from the caller's batch or our scratch, all alive and
                // unchanged until the call returns.
                let r = unsafe {
                    libc::sendmmsg(
                        self.socks[s].as_raw_fd(),
                        msgs.as_mut_ptr().add(i),
                        (end - i) as libc::c_uint,
                        libc::MSG_DONTWAIT,
                    )
                };
                if r > 0 {
                    res.sent += r as usize;
                    bump(&c.encap_packets, r as u64);
                    i += r as usize;
                    continue;
                }
                let e = if r == 0 { libc::EAGAIN } else { errno() };
                let counter = match e {
                    libc::EINTR => continue,
                    libc::EAGAIN => {
                        // The socket's send buffer is full: the rest would
                        // fail the same way.
                        bump(&c.drop_tx_error, (end - i) as u64);
                        res.dropped += end - i;
                        break;
                    }
                    libc::EMSGSIZE => &c.drop_mtu,
                    libc::ENETUNREACH | libc::EHOSTUNREACH | libc::ENETDOWN => &c.drop_no_route,
                    libc::EHOSTDOWN => &c.drop_no_neighbour,
                    _ => &c.drop_tx_error,
                };
                bump(counter, 1);
                res.dropped += 1;
                i += 1;
            }
        }
    }

    fn drop_one(&self, counter: &AtomicU64, res: &mut TxResult) {
        bump(counter, 1);
        res.dropped += 1;
    }
}

impl NetdevTx for TunnelTx {
    /// Encapsulates and sends every live packet of `batch`, then clears it.
    /// `sent`/`dropped` count frames as they go on the wire: a GSO frame
    /// counts once per segment. Errors are per frame and counted (never an
    /// `Err`: a tunnel has no link to lose).
    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        let mut res = TxResult::default();
        let mut st = Stage::new();
        let p = self.params;
        let port = p.dst_port;
        for pkt in batch.packets_mut() {
            let c = &*self.counters;
            let dst = p.remote.unwrap_or(pkt.tunnel.dst);
            if dst == 0 {
                self.drop_one(&c.drop_no_remote, &mut res);
                continue;
            }
            let vni = p.key.unwrap_or((pkt.tunnel.id & u64::from(VNI_MAX)) as u32);
            let src = if p.local_flow { pkt.tunnel.src } else { 0 };
            let mut hdr = [0u8; HEADER_LEN];
            wire::emit_header(p.kind, vni, &mut hdr);
            let sock = (flow_hash(pkt.data()) % POOL as u32) as u8;
            if segment::is_gso(&pkt.vnet) {
                let plan = match segment::plan(pkt.data(), &pkt.vnet) {
                    Ok(plan) => plan,
                    Err(e) => {
                        tracing::debug!(dev = %self.name, error = %e, "dropping GSO frame");
                        self.drop_one(&c.drop_malformed, &mut res);
                        continue;
                    }
                };
                let mut done = 0;
                while done < plan.segments {
                    // The scratch is about to be rewritten: send what points into it.
                    self.flush(&mut st, &mut res);
                    let k = self.seg.write(pkt.data(), &plan, done);
                    if k == 0 {
                        break;
                    }
                    for j in 0..k {
                        st.push(&hdr, dst, port, src, self.seg.segment(j), sock);
                    }
                    bump(&self.counters.gso_segments, k as u64);
                    done += k;
                }
            } else {
                if let Err(e) = {
                    let vnet = pkt.vnet;
                    segment::complete_csum(pkt.data_mut(), &vnet)
                } {
                    tracing::debug!(dev = %self.name, error = %e, "dropping frame");
                    self.drop_one(&c.drop_malformed, &mut res);
                    continue;
                }
                if st.is_full() {
                    self.flush(&mut st, &mut res);
                }
                st.push(&hdr, dst, port, src, pkt.data(), sock);
            }
        }
        self.flush(&mut st, &mut res);
        batch.clear();
        Ok(res)
    }
}

#[cfg(test)]
mod tests;
