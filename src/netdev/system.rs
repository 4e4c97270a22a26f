//! The `system` backend: an existing interface opened through an AF_PACKET
//! raw socket.
//!
//! Ownership: a [`SystemNetdev`] (receive socket) belongs to one poll thread;
//! each [`SystemTx`] (a second, transmit-only socket) belongs to one other poll
//! thread. Neither takes a lock or allocates per packet: the `mmsghdr`/`iovec`
//! arrays for a batch live on the stack of `recv_batch`/`send_batch`.
//!
//! Socket set-up and why:
//! - `PACKET_VNET_HDR`: every frame carries a virtio-net header, so TSO/GSO
//!   super-frames (up to 64 KiB) and partial checksums cross the switch whole.
//! - `PACKET_IGNORE_OUTGOING` (and a `PACKET_OUTGOING` check as a fallback):
//!   we never see the frames we (or the host stack) transmit on the device.
//! - No `PACKET_QDISC_BYPASS`: it cannot software-segment GSO frames (see `open_socket`).
//! - `PACKET_AUXDATA`: the kernel strips VLAN tags on receive into metadata;
//!   we put them back into the frame so the datapath sees the wire format.
//! - A TPACKET_V2 receive ring ([`super::ring`]) when the kernel accepts one:
//!   frames arrive without a system call, copied by the CPU that delivered
//!   them. Frames too big for a ring slot come through `recvmmsg` as before.
//! - `PACKET_MR_PROMISC` membership: the port receives every frame, and the
//!   kernel undoes it when the socket closes.
//! - The receive socket is created with protocol 0 and only bound to
//!   `ETH_P_ALL` on the device at the end, so it never queues frames from
//!   other interfaces; the transmit socket stays bound with protocol 0, which
//!   makes the kernel deliver nothing to it.

use super::ring::RxRing;
use super::sys::{self, errno, getsockopt, io_err, last_err, setsockopt};
use super::vnet::{self, VNET_HDR_LEN};
use super::{Netdev, NetdevError, NetdevTx, TxResult};
use crate::netdev::packet::{PacketBatch, BATCH_SIZE};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

/// Socket buffer size we ask for: enough for a burst of GSO frames.
const SOCK_BUF_BYTES: libc::c_int = 4 << 20;
/// Room for one `tpacket_auxdata` control message (and some slack).
const CMSG_BYTES: usize = 64;
/// 802.1Q TPID, used when the kernel does not report the tag's TPID.
const ETH_P_8021Q: u16 = 0x8100;

/// An existing interface opened for receive and transmit.
pub struct SystemNetdev {
    name: String,
    ifindex: u32,
    fd: OwnedFd,
    rx_errors: u64,
    /// Kernel drops read so far (`PACKET_STATISTICS` resets on each read).
    overruns: u64,
    /// The receive ring, when the kernel accepted one (else every frame comes
    /// through `recvmmsg`).
    ring: Option<RxRing>,
}

/// A transmit-only socket on an existing interface, for another poll thread.
pub struct SystemTx {
    name: String,
    fd: OwnedFd,
}

/// Control-message buffer with the alignment `cmsghdr` needs.
#[derive(Clone, Copy)]
#[repr(C, align(8))]
struct CmsgBuf([u8; CMSG_BYTES]);

impl SystemNetdev {
    /// Opens `name` (which must already exist) for receive and transmit.
    pub fn open(name: &str) -> Result<SystemNetdev, NetdevError> {
        let ifindex = sys::ifindex(name)?;
        let (fd, ring) = open_socket(name, ifindex, true)?;
        Ok(SystemNetdev {
            name: name.to_string(),
            ifindex,
            fd,
            rx_errors: 0,
            overruns: 0,
            ring,
        })
    }
}

/// Creates and configures one AF_PACKET socket on `ifindex`, with a receive
/// ring when `receive` and the kernel allows it.
fn open_socket(
    name: &str,
    ifindex: u32,
    receive: bool,
) -> Result<(OwnedFd, Option<RxRing>), NetdevError> {
    let fd = super::sys::socket(libc::AF_PACKET, libc::SOCK_RAW, "socket(AF_PACKET)", name)?;
    let b = fd.as_fd();
    let one: libc::c_int = 1;
    setsockopt(b, libc::SOL_PACKET, libc::PACKET_VNET_HDR, &one)
        .map_err(|e| io_err("setsockopt(PACKET_VNET_HDR)", name, e))?;
    // No PACKET_QDISC_BYPASS: its direct-transmit path drops any frame the
    // kernel would have to segment or checksum in software (ENOBUFS), which is
    // every GSO frame leaving by a port without TSO/checksum offload. veth's
    // default qdisc is `noqueue`, so the normal path costs little more.
    sys::set_buf_size(b, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, SOCK_BUF_BYTES)
        .map_err(|e| io_err("setsockopt(SO_SNDBUF)", name, e))?;
    let mut ring = None;
    let protocol: u16 = if receive {
        // Without IGNORE_OUTGOING (kernel < 4.20) the PACKET_OUTGOING check in
        // recv_batch drops our own frames instead.
        let _ = setsockopt(b, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, &one);
        setsockopt(b, libc::SOL_PACKET, libc::PACKET_AUXDATA, &one)
            .map_err(|e| io_err("setsockopt(PACKET_AUXDATA)", name, e))?;
        sys::set_buf_size(b, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, SOCK_BUF_BYTES)
            .map_err(|e| io_err("setsockopt(SO_RCVBUF)", name, e))?;
        let mreq = libc::packet_mreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(b, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| io_err("setsockopt(PACKET_ADD_MEMBERSHIP)", name, e))?;
        // Before bind: the socket has queued nothing yet, so every frame
        // that reaches the ordinary receive queue has a COPY slot in the ring.
        ring = match RxRing::setup(&fd, name) {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::info!(dev = name, error = %e, "no receive ring; using recvmmsg");
                None
            }
        };
        libc::ETH_P_ALL as u16
    } else {
        0
    };
    // SAFETY: sockaddr_ll is a plain C struct for which all-zero is valid.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as libc::c_ushort;
    sll.sll_protocol = protocol.to_be();
    sll.sll_ifindex = ifindex as libc::c_int;
    // SAFETY: `sll` is a valid sockaddr_ll of the size we pass.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast::<libc::sockaddr>(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(last_err("bind(AF_PACKET)", name));
    }
    Ok((fd, ring))
}

/// Finishes a received frame of `len` bytes already in `pkt`'s receive area:
/// puts back the VLAN tag the kernel stripped and keeps the offload header.
fn finish_rx(
    pkt: &mut crate::netdev::packet::Packet,
    len: usize,
    mut hdr: crate::netdev::packet::VnetHdr,
    vlan: Option<(u16, u16)>,
) {
    pkt.set_len(len);
    if let Some((tpid, tci)) = vlan {
        if pkt.push_front(4) {
            let d = pkt.data_mut();
            d.copy_within(4..16, 0);
            d[12..14].copy_from_slice(&tpid.to_be_bytes());
            d[14..16].copy_from_slice(&tci.to_be_bytes());
            vnet::shift(&mut hdr, 4);
        }
    }
    pkt.vnet = hdr;
}

/// Where the VLAN tag the kernel stripped on receive was, if any.
fn vlan_from_cmsgs(msg: &libc::msghdr) -> Option<(u16, u16)> {
    // SAFETY: `msg` was filled by recvmmsg, so msg_control/msg_controllen
    // describe our own control buffer and the CMSG_* macros stay inside it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            let h = &*c;
            if h.cmsg_level == libc::SOL_PACKET
                && h.cmsg_type == libc::PACKET_AUXDATA
                && h.cmsg_len as usize
                    >= libc::CMSG_LEN(std::mem::size_of::<libc::tpacket_auxdata>() as u32) as usize
            {
                let aux =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::tpacket_auxdata>());
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        ETH_P_8021Q
                    };
                    return Some((tpid, aux.tp_vlan_tci));
                }
                return None;
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    None
}

impl Netdev for SystemNetdev {
    fn name(&self) -> &str {
        &self.name
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn rx_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn recv_batch(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError> {
        if self.ring.is_some() {
            self.recv_ring(batch)
        } else {
            self.recv_mmsg(batch, BATCH_SIZE)
        }
    }

    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        send_batch_on(self.fd.as_raw_fd(), &self.name, batch)
    }

    fn rx_errors(&self) -> u64 {
        self.rx_errors
    }

    fn rx_overruns(&mut self) -> u64 {
        if let Ok(st) = getsockopt::<libc::tpacket_stats>(
            self.fd.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
        ) {
            self.overruns += u64::from(st.tp_drops);
        }
        self.overruns
    }

    fn open_tx(&self) -> Result<Box<dyn NetdevTx>, NetdevError> {
        Ok(Box::new(SystemTx::open(&self.name, self.ifindex)?))
    }
}

impl SystemTx {
    /// A transmit-only AF_PACKET socket on `name` (index `ifindex`): it
    /// receives nothing and takes frames with their offload state (the
    /// kernel segments and checksums what the device cannot).
    pub fn open(name: &str, ifindex: u32) -> Result<SystemTx, NetdevError> {
        let (fd, _) = open_socket(name, ifindex, false)?;
        Ok(SystemTx {
            name: name.to_string(),
            fd,
        })
    }
}

impl SystemNetdev {
    /// Takes up to a batch of frames from the receive ring. A slot flagged
    /// `TP_STATUS_COPY` stands for a frame too big for the ring, waiting whole
    /// on the socket's queue: it is read there, in its turn.
    fn recv_ring(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError> {
        let want = (batch.capacity() - batch.len()).min(BATCH_SIZE);
        let mut got = 0;
        let mut seen = 0;
        while got < want {
            let Some(ring) = self.ring.as_mut() else {
                break;
            };
            let Some(f) = ring.peek() else { break };
            seen += 1;
            if f.status & libc::TP_STATUS_COPY != 0 {
                ring.release();
                got += self.recv_mmsg(batch, 1)?;
                continue;
            }
            let ok = f.valid
                && f.data.len() == f.len
                && f.before.len() >= VNET_HDR_LEN
                && f.pkttype != libc::PACKET_OUTGOING;
            if !ok {
                if f.pkttype != libc::PACKET_OUTGOING {
                    self.rx_errors += 1;
                }
                ring.release();
                continue;
            }
            let mut vh = [0u8; VNET_HDR_LEN];
            vh.copy_from_slice(&f.before[f.before.len() - VNET_HDR_LEN..]);
            let hdr = vnet::parse(&vh);
            let len = f.len;
            let vlan = (f.status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
                let tpid = if f.status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                    f.vlan_tpid
                } else {
                    ETH_P_8021Q
                };
                (tpid, f.vlan_tci)
            });
            let Some(pkt) = batch.next_slot() else { break };
            let area = pkt.rx_area();
            if len > area.len() || vnet::validate(&hdr, len).is_err() {
                batch.unclaim_last();
                self.rx_errors += 1;
                ring.release();
                continue;
            }
            area[..len].copy_from_slice(f.data);
            ring.release();
            finish_rx(pkt, len, hdr, vlan);
            got += 1;
        }
        if seen == 0 && want > 0 {
            // Woken with an empty ring: drain whatever waits on the ordinary
            // queue, so a level-triggered poll never spins on it.
            return self.recv_mmsg(batch, want);
        }
        Ok(got)
    }

    /// Receives up to `max` frames from the socket's ordinary queue.
    fn recv_mmsg(&mut self, batch: &mut PacketBatch, max: usize) -> Result<usize, NetdevError> {
        let want = (batch.capacity() - batch.len()).min(BATCH_SIZE).min(max);
        if want == 0 {
            return Ok(0);
        }
        let base = batch.len();
        let mut hdrs = [[0u8; VNET_HDR_LEN]; BATCH_SIZE];
        let mut cmsgs = [CmsgBuf([0; CMSG_BYTES]); BATCH_SIZE];
        // SAFETY: sockaddr_ll is a plain C struct of integers and byte
        // arrays, for which all-zero is a valid value.
        let mut addrs: [libc::sockaddr_ll; BATCH_SIZE] = unsafe { std::mem::zeroed() };
        // SAFETY: an all-zero iovec (null base, zero length) is valid and
        // describes no memory.
        let mut iov: [libc::iovec; 2 * BATCH_SIZE] = unsafe { std::mem::zeroed() };
        // SAFETY: an all-zero mmsghdr (null name, iov and control pointers,
        // zero lengths) is valid; every field used is set before the call.
        let mut msgs: [libc::mmsghdr; BATCH_SIZE] = unsafe { std::mem::zeroed() };
        let mut areas: [(*mut u8, usize); BATCH_SIZE] = [(std::ptr::null_mut(), 0); BATCH_SIZE];
        let mut claimed = 0;
        while claimed < want {
            let Some(p) = batch.next_slot() else { break };
            let area = p.rx_area();
            areas[claimed] = (area.as_mut_ptr(), area.len());
            claimed += 1;
        }
        let mut retries = 0;
        let n = loop {
            for i in 0..claimed {
                iov[2 * i] = libc::iovec {
                    iov_base: hdrs[i].as_mut_ptr().cast(),
                    iov_len: VNET_HDR_LEN,
                };
                iov[2 * i + 1] = libc::iovec {
                    iov_base: areas[i].0.cast(),
                    iov_len: areas[i].1,
                };
            }
            let iov_base = iov.as_mut_ptr();
            for i in 0..claimed {
                let h = &mut msgs[i].msg_hdr;
                // SAFETY: 2 * i + 1 < iov.len() because claimed <= BATCH_SIZE.
                h.msg_iov = unsafe { iov_base.add(2 * i) };
                h.msg_iovlen = 2;
                h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
                h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
                h.msg_control = cmsgs[i].0.as_mut_ptr().cast();
                h.msg_controllen = CMSG_BYTES as _;
                h.msg_flags = 0;
                msgs[i].msg_len = 0;
            }
            // SAFETY: every msghdr points at buffers that live until the call
            // returns: the vnet header and control arrays on this stack frame
            // and the packets' rx areas, which the batch keeps allocated and
            // which nothing else touches during the call.
            let r = unsafe {
                libc::recvmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    claimed as libc::c_uint,
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                    std::ptr::null_mut(),
                )
            };
            if r >= 0 {
                break r as usize;
            }
            match errno() {
                libc::EAGAIN | libc::EINTR => break 0,
                // The kernel could not express a GSO frame as a vnet header and
                // dropped it; the next frame may be fine.
                libc::EINVAL if retries < BATCH_SIZE => {
                    self.rx_errors += 1;
                    retries += 1;
                    continue;
                }
                e => {
                    for _ in 0..claimed {
                        batch.unclaim_last();
                    }
                    return Err(io_err(
                        "recvmmsg",
                        &self.name,
                        std::io::Error::from_raw_os_error(e),
                    ));
                }
            }
        };
        let mut kept = 0;
        for i in 0..n.min(claimed) {
            let m = &msgs[i];
            let total = m.msg_len as usize;
            if addrs[i].sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0
                || total < VNET_HDR_LEN
                || total - VNET_HDR_LEN > areas[i].1
            {
                self.rx_errors += 1;
                continue;
            }
            let len = total - VNET_HDR_LEN;
            let hdr = vnet::parse(&hdrs[i]);
            if vnet::validate(&hdr, len).is_err() {
                self.rx_errors += 1;
                continue;
            }
            let vlan = vlan_from_cmsgs(&m.msg_hdr);
            if kept != i {
                batch.packets_mut().swap(base + kept, base + i);
            }
            finish_rx(&mut batch.packets_mut()[base + kept], len, hdr, vlan);
            kept += 1;
        }
        for _ in kept..claimed {
            batch.unclaim_last();
        }
        Ok(kept)
    }
}

impl NetdevTx for SystemTx {
    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        send_batch_on(self.fd.as_raw_fd(), &self.name, batch)
    }
}

/// Transmits every live packet of `batch` on an AF_PACKET socket with
/// `sendmmsg`, each as a two-piece message (virtio-net header, frame), then
/// clears the batch. A full queue drops the rest of the batch; a frame the
/// kernel rejects (too big, bad header) is dropped alone; a device that went
/// down or away ends the call with an error for which
/// [`NetdevError::is_link_down`] holds.
fn send_batch_on(fd: RawFd, name: &str, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
    let mut res = TxResult::default();
    let total = batch.len();
    let mut hdrs = [[0u8; VNET_HDR_LEN]; BATCH_SIZE];
    // SAFETY: an all-zero iovec (null base, zero length) is valid and
    // describes no memory.
    let mut iov: [libc::iovec; 2 * BATCH_SIZE] = unsafe { std::mem::zeroed() };
    // SAFETY: an all-zero mmsghdr (null pointers, zero lengths) is valid;
    // every field used is set before the call.
    let mut msgs: [libc::mmsghdr; BATCH_SIZE] = unsafe { std::mem::zeroed() };
    let mut chunk_start = 0;
    while chunk_start < total {
        let chunk = &batch.packets()[chunk_start..total.min(chunk_start + BATCH_SIZE)];
        let cnt = chunk.len();
        for (i, p) in chunk.iter().enumerate() {
            hdrs[i] = vnet::emit(&p.vnet);
            iov[2 * i] = libc::iovec {
                iov_base: hdrs[i].as_mut_ptr().cast(),
                iov_len: VNET_HDR_LEN,
            };
            let d = p.data();
            iov[2 * i + 1] = libc::iovec {
                // The kernel only reads transmit buffers.
                iov_base: d.as_ptr() as *mut libc::c_void,
                iov_len: d.len(),
            };
        }
        let iov_base = iov.as_mut_ptr();
        for (i, m) in msgs.iter_mut().enumerate().take(cnt) {
            // SAFETY: 2 * i + 1 < iov.len() because cnt <= BATCH_SIZE.
            m.msg_hdr.msg_iov = unsafe { iov_base.add(2 * i) };
            m.msg_hdr.msg_iovlen = 2;
            m.msg_len = 0;
        }
        let mut i = 0;
        while i < cnt {
            // SAFETY: msgs[i..cnt] point at header bytes on this stack frame
            // and at packet data borrowed from `batch`, all alive and unchanged
            // until the call returns.
            let r = unsafe {
                libc::sendmmsg(
                    fd,
                    msgs.as_mut_ptr().add(i),
                    (cnt - i) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if r > 0 {
                res.sent += r as usize;
                i += r as usize;
                continue;
            }
            if r == 0 {
                res.dropped += cnt - i;
                break;
            }
            match errno() {
                libc::EINTR => {}
                libc::EAGAIN | libc::ENOBUFS => {
                    res.dropped += cnt - i;
                    break;
                }
                e @ (libc::ENETDOWN | libc::ENXIO | libc::ENODEV) => {
                    batch.clear();
                    return Err(io_err(
                        "sendmmsg",
                        name,
                        std::io::Error::from_raw_os_error(e),
                    ));
                }
                _ => {
                    res.dropped += 1;
                    i += 1;
                }
            }
        }
        chunk_start += cnt;
    }
    batch.clear();
    Ok(res)
}
