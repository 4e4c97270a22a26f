//! The `afxdp` backend: an existing interface read and written through an
//! AF_XDP socket, with an XDP program ([`super::bpf`]) that redirects the
//! interface's receive queue 0 to it.
//!
//! Memory and rings, sized like OVS's `netdev-afxdp`: a UMEM of
//! [`NUM_FRAMES`] frames of [`FRAME_SIZE`] bytes (16 MiB, anonymous memory
//! the kernel pins), and four rings of [`RING_SIZE`] descriptors shared with
//! the kernel: fill (free frames we give the kernel to receive into), rx
//! (frames received), tx (frames to send), completion (sent frames given
//! back).
//!
//! Frame life: every frame address is in exactly one place at a time — the
//! free pool ([`FramePool`]), the fill or rx ring (the kernel's receive
//! side) or the tx or completion ring (its transmit side). A received frame
//! is copied into the poll thread's [`PacketBatch`] (as the AF_PACKET ring
//! does) and its address goes back to the pool at once, and from there to
//! the fill ring in one batch; a frame to send is copied from the batch into
//! a free frame and comes back through the completion ring. Nothing is
//! allocated per packet; when no frame or tx descriptor is free, the packet
//! is dropped and counted in [`TxResult::dropped`] — never a block, never a
//! queue of our own.
//!
//! Ordering (the kernel's side is the same as libxdp's): on a ring we
//! produce into (fill, tx) we write the descriptors, then store the
//! producer index with release ordering, so the kernel sees them written;
//! we load the kernel's consumer index with acquire ordering, after which
//! the slots before it are ours to overwrite. On a ring we consume (rx,
//! completion) we load the producer index with acquire ordering, after
//! which the descriptors (and the frame bytes they point to) are visible,
//! and store the consumer index with release ordering after our last read.
//! The index arithmetic itself is [`RingIndex`], pure and unit-tested.
//!
//! Wake-ups (`XDP_USE_NEED_WAKEUP`): the kernel sets a flag on the fill
//! ring when it needs a `recvfrom` to look at new fill entries, and on the
//! tx ring when it needs a `sendto` to start sending (copy mode sends only
//! from `sendto`, so there the flag is always set). We make the call only
//! when the flag says so.
//!
//! Offloads: AF_XDP frames carry no virtio-net header. Received frames are
//! always whole: with the program attached in native mode, veth stops its
//! peer from sending GSO super-frames at all; in generic mode a super-frame
//! bigger than a frame is dropped by the kernel and counted in
//! `XDP_STATISTICS` (our [`Netdev::rx_overruns`]). On transmit, a frame
//! with offload state (GSO, partial checksum) or bigger than a UMEM frame
//! leaves by the port's AF_PACKET transmit socket instead, which hands the
//! kernel the virtio-net header so that it segments and checksums.
//!
//! Ownership: an [`AfxdpNetdev`] (the socket, its UMEM, its rings and the
//! XDP attachment) belongs to one poll thread; other poll threads transmit
//! through [`Netdev::open_tx`], an AF_PACKET socket on the same interface
//! (see there why).

use super::bpf::{self, XdpAttachment};
use super::packet::PacketBatch;
use super::sys::{self, errno, getsockopt, io_err, last_err, setsockopt};
use super::system::SystemTx;
use super::vnet;
use super::{Netdev, NetdevError, NetdevTx, TxResult};
use crate::types::XdpMode;
use crate::util::coverage::{self, c};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};

/// Bytes per UMEM frame (OVS's and libxdp's default frame size; one page).
pub const FRAME_SIZE: usize = 4096;
/// Frames in the UMEM (OVS's `NUM_FRAMES`): half for the receive side (the
/// fill ring holds them all), half for frames in flight on transmit.
pub const NUM_FRAMES: usize = 4096;
/// Descriptors per ring (libxdp's `XSK_RING_{PROD,CONS}__DEFAULT_NUM_DESCS`,
/// which OVS uses).
pub const RING_SIZE: u32 = 2048;
/// Bytes the kernel keeps in front of a received frame (`XDP_PACKET_HEADROOM`).
const XDP_PACKET_HEADROOM: usize = 256;
/// Largest frame a UMEM frame receives.
pub const MAX_RX_FRAME: usize = FRAME_SIZE - XDP_PACKET_HEADROOM;
/// Largest interface MTU an afxdp port accepts: a full frame with one VLAN
/// tag must fit [`MAX_RX_FRAME`].
pub const MAX_MTU: u32 = (MAX_RX_FRAME - 14 - 4) as u32;
/// Receive queue the port's socket binds to.
const QUEUE: u32 = 0;
/// Packets the kernel sends per `sendto` in copy mode (its `TX_BATCH_SIZE`).
const KERNEL_TX_BATCH: u32 = 32;

/// Producer/consumer arithmetic of one ring of `size` (a power of two)
/// entries. Indexes are free-running `u32`s that wrap; a slot is
/// `index & (size - 1)`. Pure: the mapped indexes are loaded and stored by
/// the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingIndex {
    size: u32,
    /// Our producer index (rings we produce into) or the last producer index
    /// seen from the kernel (rings we consume).
    pub prod: u32,
    /// The last consumer index seen from the kernel (rings we produce into)
    /// or ours (rings we consume).
    pub cons: u32,
}

impl RingIndex {
    /// A ring of `size` entries (a power of two) starting at `start`.
    pub fn new(size: u32, start: u32) -> RingIndex {
        debug_assert!(size.is_power_of_two());
        RingIndex {
            size,
            prod: start,
            cons: start,
        }
    }

    /// Producer side: how many slots are free, given the kernel's consumer
    /// index `kernel_cons`.
    pub fn free(&mut self, kernel_cons: u32) -> u32 {
        self.cons = kernel_cons;
        self.size - self.prod.wrapping_sub(self.cons).min(self.size)
    }

    /// Consumer side: how many entries wait, given the kernel's producer
    /// index `kernel_prod`.
    pub fn avail(&mut self, kernel_prod: u32) -> u32 {
        self.prod = kernel_prod;
        self.prod.wrapping_sub(self.cons).min(self.size)
    }

    /// The slot of the `i`-th entry after `from`.
    pub fn slot(&self, from: u32, i: u32) -> usize {
        (from.wrapping_add(i) & (self.size - 1)) as usize
    }

    /// Producer side: `n` slots (at most [`RingIndex::free`]) were written.
    pub fn submit(&mut self, n: u32) {
        self.prod = self.prod.wrapping_add(n);
    }

    /// Consumer side: `n` entries (at most [`RingIndex::avail`]) were read.
    pub fn release(&mut self, n: u32) {
        self.cons = self.cons.wrapping_add(n);
    }
}

/// The free UMEM frames (their addresses), a stack with room for all of
/// them, allocated once.
#[derive(Debug)]
pub struct FramePool {
    free: Vec<u64>,
}

impl FramePool {
    /// Every frame of a UMEM of `frames` frames of `frame_size` bytes is free.
    pub fn new(frames: usize, frame_size: usize) -> FramePool {
        FramePool {
            free: (0..frames).rev().map(|i| (i * frame_size) as u64).collect(),
        }
    }

    /// Free frames.
    pub fn len(&self) -> usize {
        self.free.len()
    }

    /// True when no frame is free.
    pub fn is_empty(&self) -> bool {
        self.free.is_empty()
    }

    /// Takes a free frame.
    pub fn pop(&mut self) -> Option<u64> {
        self.free.pop()
    }

    /// Gives a frame back. Returns false (and keeps nothing) when the pool
    /// is already full, which only a frame given back twice can cause; the
    /// stack never grows past its first allocation.
    pub fn push(&mut self, addr: u64) -> bool {
        if self.free.len() == self.free.capacity() {
            return false;
        }
        self.free.push(addr);
        true
    }
}

/// The start of the UMEM frame holding `addr` (aligned-chunk mode).
fn frame_base(addr: u64) -> u64 {
    addr & !(FRAME_SIZE as u64 - 1)
}

/// One ring mapped from the socket.
struct MappedRing {
    map: *mut u8,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    desc: *mut u8,
    idx: RingIndex,
}

impl MappedRing {
    /// Maps the ring whose layout `off` describes, of `RING_SIZE` entries of
    /// `entry` bytes, at page offset `pgoff` of `fd`.
    fn map(
        fd: &OwnedFd,
        off: &libc::xdp_ring_offset,
        entry: usize,
        pgoff: i64,
        what: &'static str,
        dev: &str,
    ) -> Result<MappedRing, NetdevError> {
        let map_len = off.desc as usize + RING_SIZE as usize * entry;
        // The socket's ring (configured with RING_SIZE entries before this
        // call), shared and read-write as AF_XDP requires; unmapped in Drop.
        let base = sys::mmap(Some(fd.as_fd()), map_len, pgoff, true)
            .map_err(|e| io_err(what, dev, e))?
            .as_ptr();
        // SAFETY: the kernel's offsets lie inside the
        // mapping it sized for them (`off.desc` + the entries).
        let (producer, consumer, flags, desc) = unsafe {
            (
                base.add(off.producer as usize) as *const AtomicU32,
                base.add(off.consumer as usize) as *const AtomicU32,
                base.add(off.flags as usize) as *const AtomicU32,
                base.add(off.desc as usize),
            )
        };
        let mut r = MappedRing {
            map: base,
            map_len,
            producer,
            consumer,
            flags,
            desc,
            idx: RingIndex::new(RING_SIZE, 0),
        };
        // Start from wherever the kernel's indexes are (zero on a new socket).
        let (p, c) = (r.kernel_prod(), r.kernel_cons());
        r.idx = RingIndex {
            size: RING_SIZE,
            prod: p,
            cons: c,
        };
        Ok(r)
    }

    /// The producer index (acquire: entries before it are written).
    fn kernel_prod(&self) -> u32 {
        // SAFETY: `producer` points at an aligned u32 inside the mapping,
        // which lives as long as `self`; the kernel updates it concurrently,
        // hence the atomic view.
        unsafe { (*self.producer).load(Ordering::Acquire) }
    }

    /// The consumer index (acquire: slots before it are read).
    fn kernel_cons(&self) -> u32 {
        // SAFETY: as in `kernel_prod`, for the consumer index.
        unsafe { (*self.consumer).load(Ordering::Acquire) }
    }

    /// Publishes our producer index (release: after the entries' writes).
    fn publish_prod(&self) {
        // SAFETY: as in `kernel_prod`; only we store this index.
        unsafe { (*self.producer).store(self.idx.prod, Ordering::Release) }
    }

    /// Publishes our consumer index (release: after the entries' reads).
    fn publish_cons(&self) {
        // SAFETY: as in `kernel_prod`; only we store this index.
        unsafe { (*self.consumer).store(self.idx.cons, Ordering::Release) }
    }

    /// True when the kernel asks for a wake-up call.
    fn needs_wakeup(&self) -> bool {
        // Order our producer store before this load (a store-load pair,
        // which release/acquire alone does not order).
        fence(Ordering::SeqCst);
        // SAFETY: as in `kernel_prod`, for the flags word.
        unsafe { (*self.flags).load(Ordering::Acquire) & libc::XDP_RING_NEED_WAKEUP != 0 }
    }

    /// Reads address entry `slot` of a fill or completion ring.
    fn addr(&self, slot: usize) -> u64 {
        // SAFETY: slot < RING_SIZE, so the 8-byte entry lies in the mapping;
        // the entry is ours (between the indexes we own), so no one writes it.
        unsafe { std::ptr::read_unaligned(self.desc.add(slot * 8) as *const u64) }
    }

    /// Writes address entry `slot` of a fill or completion ring.
    fn set_addr(&mut self, slot: usize, addr: u64) {
        // SAFETY: as in `addr`; the kernel reads the entry only after the
        // producer index moves past it.
        unsafe { std::ptr::write_unaligned(self.desc.add(slot * 8) as *mut u64, addr) }
    }

    /// Reads descriptor `slot` of an rx or tx ring.
    fn desc(&self, slot: usize) -> libc::xdp_desc {
        let sz = std::mem::size_of::<libc::xdp_desc>();
        // SAFETY: slot < RING_SIZE, so the descriptor lies in the mapping and
        // is ours (see `addr`).
        unsafe { std::ptr::read_unaligned(self.desc.add(slot * sz) as *const libc::xdp_desc) }
    }

    /// Writes descriptor `slot` of a tx ring.
    fn set_desc(&mut self, slot: usize, d: libc::xdp_desc) {
        let sz = std::mem::size_of::<libc::xdp_desc>();
        // SAFETY: as in `desc`; the kernel reads it only after the producer
        // index moves past it.
        unsafe { std::ptr::write_unaligned(self.desc.add(slot * sz) as *mut libc::xdp_desc, d) }
    }
}

impl Drop for MappedRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `map`, once; no
        // pointer into it outlives `self`.
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

/// The UMEM: anonymous, page-aligned memory the kernel pins on registration.
struct Umem {
    base: *mut u8,
    len: usize,
}

impl Umem {
    fn new(dev: &str) -> Result<Umem, NetdevError> {
        let len = NUM_FRAMES * FRAME_SIZE;
        // Page-aligned, as XDP_UMEM_REG requires; all resident (the kernel
        // pins it anyway).
        let p = sys::mmap(None, len, 0, true).map_err(|e| io_err("mmap(UMEM)", dev, e))?;
        Ok(Umem {
            base: p.as_ptr(),
            len,
        })
    }

    /// The `len` bytes at `addr`, if they lie inside one frame.
    fn frame(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let a = usize::try_from(addr).ok()?;
        let end = a.checked_add(len)?;
        if end > self.len || frame_base(addr) != frame_base((end.max(a + 1) - 1) as u64) {
            return None;
        }
        // SAFETY: [a, end) lies inside the mapping (checked above), which
        // lives as long as `self`; the frame was handed to us by the rx ring
        // (acquire on its producer index), so the kernel no longer writes it.
        Some(unsafe { std::slice::from_raw_parts(self.base.add(a), len) })
    }

    /// Copies `data` into the free frame at `addr` (frame-aligned, and
    /// `data` no longer than a frame).
    fn write(&mut self, addr: u64, data: &[u8]) {
        let a = addr as usize;
        if data.len() > FRAME_SIZE || a + FRAME_SIZE > self.len {
            return;
        }
        // SAFETY: the destination lies inside the mapping (checked above);
        // the frame came from our free pool, so neither the kernel nor any
        // other descriptor refers to it now; `data` is another buffer.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.base.add(a), data.len()) }
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`, once, after
        // the socket (declared before it in `Xsk`) was closed.
        unsafe {
            libc::munmap(self.base.cast(), self.len);
        }
    }
}

/// An AF_XDP socket bound to one queue, with its UMEM and rings. Fields drop
/// in order: the socket closes before its memory is unmapped.
struct Xsk {
    fd: OwnedFd,
    fill: MappedRing,
    comp: MappedRing,
    rx: MappedRing,
    tx: MappedRing,
    umem: Umem,
    pool: FramePool,
    /// Frames submitted on tx and not yet back through the completion ring.
    outstanding: u32,
    zerocopy: bool,
}

// SAFETY: the mappings behind the raw pointers are owned by this value alone
// (the kernel is the only other party) and used only through `&mut self`;
// moving it to another thread moves that exclusive ownership.
unsafe impl Send for Xsk {}

impl Xsk {
    /// Creates the socket, registers a UMEM, maps the four rings, fills the
    /// fill ring and binds to `queue` of `ifindex` with `bind_flags`.
    fn create(dev: &str, ifindex: u32, queue: u32, bind_flags: u16) -> Result<Xsk, NetdevError> {
        let fd = sys::socket(libc::AF_XDP, libc::SOCK_RAW, "socket(AF_XDP)", dev)?;
        let umem = Umem::new(dev)?;
        let b = fd.as_fd();
        // SAFETY: xdp_umem_reg is a plain C struct for which all-zero is valid.
        let mut reg: libc::xdp_umem_reg = unsafe { std::mem::zeroed() };
        reg.addr = umem.base as u64;
        reg.len = umem.len as u64;
        reg.chunk_size = FRAME_SIZE as u32;
        reg.headroom = 0;
        setsockopt(b, libc::SOL_XDP, libc::XDP_UMEM_REG, &reg)
            .map_err(|e| io_err("setsockopt(XDP_UMEM_REG)", dev, e))?;
        for (opt, what) in [
            (libc::XDP_UMEM_FILL_RING, "setsockopt(XDP_UMEM_FILL_RING)"),
            (
                libc::XDP_UMEM_COMPLETION_RING,
                "setsockopt(XDP_UMEM_COMPLETION_RING)",
            ),
            (libc::XDP_RX_RING, "setsockopt(XDP_RX_RING)"),
            (libc::XDP_TX_RING, "setsockopt(XDP_TX_RING)"),
        ] {
            setsockopt(b, libc::SOL_XDP, opt, &RING_SIZE).map_err(|e| io_err(what, dev, e))?;
        }
        let off: libc::xdp_mmap_offsets = getsockopt(b, libc::SOL_XDP, libc::XDP_MMAP_OFFSETS)
            .map_err(|e| io_err("getsockopt(XDP_MMAP_OFFSETS)", dev, e))?;
        let desc = std::mem::size_of::<libc::xdp_desc>();
        let fill = MappedRing::map(
            &fd,
            &off.fr,
            8,
            libc::XDP_UMEM_PGOFF_FILL_RING as i64,
            "mmap(fill ring)",
            dev,
        )?;
        let comp = MappedRing::map(
            &fd,
            &off.cr,
            8,
            libc::XDP_UMEM_PGOFF_COMPLETION_RING as i64,
            "mmap(completion ring)",
            dev,
        )?;
        let rx = MappedRing::map(
            &fd,
            &off.rx,
            desc,
            libc::XDP_PGOFF_RX_RING,
            "mmap(rx ring)",
            dev,
        )?;
        let tx = MappedRing::map(
            &fd,
            &off.tx,
            desc,
            libc::XDP_PGOFF_TX_RING,
            "mmap(tx ring)",
            dev,
        )?;
        let mut x = Xsk {
            fd,
            fill,
            comp,
            rx,
            tx,
            umem,
            pool: FramePool::new(NUM_FRAMES, FRAME_SIZE),
            outstanding: 0,
            zerocopy: bind_flags & libc::XDP_ZEROCOPY != 0,
        };
        x.refill();
        // SAFETY: sockaddr_xdp is a plain C struct for which all-zero is valid.
        let mut sxdp: libc::sockaddr_xdp = unsafe { std::mem::zeroed() };
        sxdp.sxdp_family = libc::AF_XDP as u16;
        sxdp.sxdp_flags = bind_flags;
        sxdp.sxdp_ifindex = ifindex;
        sxdp.sxdp_queue_id = queue;
        // SAFETY: `sxdp` is a valid sockaddr_xdp of the size we pass.
        let r = unsafe {
            libc::bind(
                x.fd.as_raw_fd(),
                (&sxdp as *const libc::sockaddr_xdp).cast::<libc::sockaddr>(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if r < 0 {
            return Err(last_err("bind(AF_XDP)", dev));
        }
        Ok(x)
    }

    /// Moves free frames into the fill ring, as many as it has room for.
    fn refill(&mut self) {
        let kc = self.fill.kernel_cons();
        let n = self.fill.idx.free(kc).min(self.pool.len() as u32);
        if n == 0 {
            return;
        }
        let from = self.fill.idx.prod;
        for i in 0..n {
            let slot = self.fill.idx.slot(from, i);
            // `n` is at most the pool's length, so pop always succeeds.
            if let Some(a) = self.pool.pop() {
                self.fill.set_addr(slot, a);
            }
        }
        self.fill.idx.submit(n);
        self.fill.publish_prod();
    }

    /// Takes back the frames the kernel finished sending.
    fn reap(&mut self) {
        let kp = self.comp.kernel_prod();
        let n = self.comp.idx.avail(kp);
        if n == 0 {
            return;
        }
        let from = self.comp.idx.cons;
        for i in 0..n {
            let a = self.comp.addr(self.comp.idx.slot(from, i));
            self.pool.push(frame_base(a));
        }
        self.comp.idx.release(n);
        self.comp.publish_cons();
        self.outstanding = self.outstanding.saturating_sub(n);
    }

    /// Asks the kernel to send what the tx ring holds, if it wants asking.
    fn kick(&mut self, dev: &str) -> Result<(), NetdevError> {
        if self.outstanding == 0 || !self.tx.needs_wakeup() {
            return Ok(());
        }
        // Copy mode sends at most KERNEL_TX_BATCH frames per call.
        let mut tries = self.outstanding / KERNEL_TX_BATCH + 1;
        loop {
            // SAFETY: a zero-length sendto on our own socket, no buffers.
            let r = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    std::ptr::null(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null(),
                    0,
                )
            };
            let e = if r < 0 { errno() } else { 0 };
            match e {
                0 | libc::EAGAIN | libc::EBUSY | libc::EINTR => {}
                libc::ENETDOWN | libc::ENXIO | libc::ENODEV => {
                    return Err(io_err(
                        "sendto(AF_XDP)",
                        dev,
                        std::io::Error::from_raw_os_error(e),
                    ))
                }
                // ENOBUFS and the like: the frames stay in the ring for the
                // next call.
                _ => return Ok(()),
            }
            tries -= 1;
            if tries == 0 || self.tx.kernel_cons() == self.tx.idx.prod {
                return Ok(());
            }
        }
    }
}

/// An existing interface opened with AF_XDP.
pub struct AfxdpNetdev {
    name: String,
    ifindex: u32,
    xsk: Xsk,
    xdp: XdpAttachment,
    /// Transmit socket for frames AF_XDP cannot carry (offload state, too big).
    slow: SystemTx,
    slow_batch: PacketBatch,
    rx_errors: u64,
}

impl AfxdpNetdev {
    /// Opens `name` (which must exist, with an MTU of at most [`MAX_MTU`]):
    /// attaches the redirect program as `mode` says and binds a socket to
    /// receive queue 0.
    pub fn open(name: &str, mode: XdpMode) -> Result<AfxdpNetdev, NetdevError> {
        let ifindex = sys::ifindex(name)?;
        let link = super::netlink::get_link(name)?
            .ok_or_else(|| NetdevError::NoSuchDevice(name.to_string()))?;
        if link.mtu > MAX_MTU {
            return Err(NetdevError::Options {
                dev: name.to_string(),
                msg: format!(
                    "MTU {} is larger than an AF_XDP frame holds ({MAX_MTU} at most with \
                     {FRAME_SIZE}-byte frames); lower the MTU or use type = \"system\"",
                    link.mtu
                ),
            });
        }
        let queues = bpf::rx_queues(name);
        if queues > 1 {
            // As OVS with n_rxq = 1: say it rather than lose traffic quietly.
            tracing::warn!(
                dev = name,
                queues,
                "afxdp ports switch receive queue 0 only; frames the NIC puts on the \
                 other queues go to the kernel stack (ethtool -L {name} combined 1)"
            );
        }
        let xdp = XdpAttachment::attach(name, ifindex, queues, mode)?;
        let copy = libc::XDP_COPY | libc::XDP_USE_NEED_WAKEUP;
        let zc = libc::XDP_ZEROCOPY | libc::XDP_USE_NEED_WAKEUP;
        let binds: &[u16] = match mode {
            XdpMode::NativeWithZerocopy => &[zc],
            XdpMode::Native | XdpMode::Generic => &[copy],
            XdpMode::BestEffort if xdp.native() => &[zc, copy],
            XdpMode::BestEffort => &[copy],
        };
        let mut xsk = None;
        let mut last = None;
        for &flags in binds {
            // A failed bind may leave the socket's rings half given to the
            // kernel: each attempt starts from a new socket.
            match Xsk::create(name, ifindex, QUEUE, flags) {
                Ok(x) => {
                    xsk = Some(x);
                    break;
                }
                Err(e) => {
                    tracing::debug!(dev = name, flags, error = %e, "AF_XDP bind failed");
                    last = Some(e);
                }
            }
        }
        let xsk = match (xsk, last) {
            (Some(x), _) => x,
            (None, Some(e)) => return Err(e),
            (None, None) => return Err(last_err("bind(AF_XDP)", name)),
        };
        xdp.set_socket(name, QUEUE, xsk.fd.as_raw_fd())?;
        let slow = SystemTx::open(name, ifindex)?;
        tracing::info!(
            dev = name,
            xdp = if xdp.native() { "native" } else { "generic" },
            zerocopy = xsk.zerocopy,
            "AF_XDP socket on queue {QUEUE}"
        );
        Ok(AfxdpNetdev {
            name: name.to_string(),
            ifindex,
            xsk,
            xdp,
            slow,
            slow_batch: PacketBatch::with_capacity(super::packet::BATCH_SIZE),
            rx_errors: 0,
        })
    }

    /// True when the XDP program runs in the driver (native mode).
    pub fn native(&self) -> bool {
        self.xdp.native()
    }

    /// True when the socket is bound zero-copy.
    pub fn zerocopy(&self) -> bool {
        self.xsk.zerocopy
    }
}

/// True when a frame needs what AF_XDP cannot give: segmentation, a
/// checksum filled in, or more room than a frame.
fn needs_slow_path(p: &super::packet::Packet) -> bool {
    p.vnet.gso_type != vnet::GSO_NONE
        || p.vnet.flags & vnet::F_NEEDS_CSUM != 0
        || p.len() > FRAME_SIZE
}

impl Netdev for AfxdpNetdev {
    fn name(&self) -> &str {
        &self.name
    }

    fn ifindex(&self) -> u32 {
        self.ifindex
    }

    fn rx_fd(&self) -> RawFd {
        self.xsk.fd.as_raw_fd()
    }

    fn recv_batch(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError> {
        let x = &mut self.xsk;
        let room = (batch.capacity() - batch.len()) as u32;
        let kp = x.rx.kernel_prod();
        let n = x.rx.idx.avail(kp).min(room);
        let from = x.rx.idx.cons;
        let mut got = 0;
        for i in 0..n {
            let d = x.rx.desc(x.rx.idx.slot(from, i));
            match (x.umem.frame(d.addr, d.len as usize), batch.next_slot()) {
                (Some(frame), Some(pkt)) => {
                    pkt.rx_area()[..frame.len()].copy_from_slice(frame);
                    pkt.set_len(frame.len());
                    got += 1;
                }
                _ => self.rx_errors += 1,
            }
            x.pool.push(frame_base(d.addr));
        }
        if n > 0 {
            x.rx.idx.release(n);
            x.rx.publish_cons();
        }
        x.refill();
        if n == 0 && x.fill.needs_wakeup() {
            // SAFETY: a zero-length, non-blocking recvfrom on our own socket:
            // it only makes the kernel look at the fill ring.
            unsafe {
                libc::recvfrom(
                    x.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    0,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
        }
        Ok(got)
    }

    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError> {
        let x = &mut self.xsk;
        x.reap();
        let mut res = TxResult::default();
        let kc = x.tx.kernel_cons();
        let room = x.tx.idx.free(kc);
        let from = x.tx.idx.prod;
        let mut used = 0u32;
        for p in batch.packets_mut() {
            if needs_slow_path(p) {
                if !self.slow_batch.push_swap(p) {
                    res.dropped += 1;
                }
                continue;
            }
            let frame = if used < room { x.pool.pop() } else { None };
            let Some(addr) = frame else {
                res.dropped += 1;
                continue;
            };
            let data = p.data();
            x.umem.write(addr, data);
            x.tx.set_desc(
                x.tx.idx.slot(from, used),
                libc::xdp_desc {
                    addr,
                    len: data.len() as u32,
                    options: 0,
                },
            );
            used += 1;
        }
        batch.clear();
        if used > 0 {
            x.tx.idx.submit(used);
            x.tx.publish_prod();
            x.outstanding += used;
            res.sent += used as usize;
        }
        let kicked = x.kick(&self.name);
        if !self.slow_batch.is_empty() {
            coverage::add(&c::afxdp_tx_fallback, self.slow_batch.len() as u64);
            let r = self.slow.send_batch(&mut self.slow_batch)?;
            res.sent += r.sent;
            res.dropped += r.dropped;
        }
        kicked.map(|_| res)
    }

    fn rx_errors(&self) -> u64 {
        self.rx_errors
    }

    /// Frames the kernel could not hand us: no free frame in the fill ring
    /// or too big for one (`rx_dropped`, which counts both), or the rx ring
    /// full (`rx_ring_full`). The kernel's counters are cumulative.
    fn rx_overruns(&mut self) -> u64 {
        getsockopt::<libc::xdp_statistics>(self.xsk.fd.as_fd(), libc::SOL_XDP, libc::XDP_STATISTICS)
            .map(|s| s.rx_dropped + s.rx_ring_full)
            .unwrap_or(0)
    }

    /// An AF_PACKET transmit socket on the same interface, like `system`'s.
    /// The AF_XDP rings have one producer each and are not shared: a second
    /// poll thread writing the tx ring would need a lock per batch (and a
    /// share of the UMEM), while the kernel accepts AF_PACKET frames on the
    /// interface next to the XDP program, and carries offload state too.
    fn open_tx(&self) -> Result<Box<dyn NetdevTx>, NetdevError> {
        Ok(Box::new(SystemTx::open(&self.name, self.ifindex)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ring_counts_free_slots_across_the_wrap() {
        for start in [0u32, 5, u32::MAX - 3, u32::MAX] {
            let mut r = RingIndex::new(8, start);
            assert_eq!(r.free(start), 8, "start {start}");
            r.submit(5);
            assert_eq!(r.free(start), 3);
            // The kernel consumed 4 of the 5.
            assert_eq!(r.free(start.wrapping_add(4)), 7);
            r.submit(7);
            assert_eq!(r.free(start.wrapping_add(4)), 0);
            assert_eq!(r.prod, start.wrapping_add(12));
            // Slots go round the ring in order.
            let slots: Vec<usize> = (0..8).map(|i| r.slot(start, i)).collect();
            let mut sorted = slots.clone();
            sorted.sort();
            assert_eq!(sorted, (0..8).collect::<Vec<_>>());
            assert_eq!(r.slot(start, 8), r.slot(start, 0));
        }
    }

    #[test]
    fn consumer_ring_counts_waiting_entries_across_the_wrap() {
        for start in [0u32, u32::MAX - 1] {
            let mut r = RingIndex::new(4, start);
            assert_eq!(r.avail(start), 0);
            assert_eq!(r.avail(start.wrapping_add(3)), 3);
            r.release(2);
            assert_eq!(r.avail(start.wrapping_add(3)), 1);
            assert_eq!(r.avail(start.wrapping_add(6)), 4);
            r.release(4);
            assert_eq!(r.cons, start.wrapping_add(6));
            assert_eq!(r.avail(start.wrapping_add(6)), 0);
        }
    }

    #[test]
    fn a_corrupt_index_never_claims_more_than_the_ring() {
        let mut r = RingIndex::new(16, 100);
        // A kernel producer that ran ahead by more than the ring (cannot
        // happen; must not make us read past it).
        assert_eq!(r.avail(100 + 1000), 16);
        let mut p = RingIndex::new(16, 100);
        p.submit(3);
        // A consumer index past our producer.
        assert_eq!(p.free(200), 0);
    }

    #[test]
    fn pool_hands_out_every_frame_once_and_never_grows() {
        let mut pool = FramePool::new(4, 4096);
        let cap = pool.free.capacity();
        let mut got = Vec::new();
        while let Some(a) = pool.pop() {
            got.push(a);
        }
        assert!(pool.is_empty());
        got.sort();
        assert_eq!(got, vec![0, 4096, 8192, 12288]);
        for a in &got {
            assert!(pool.push(*a));
        }
        assert!(!pool.push(0), "a fifth frame in a pool of four");
        assert_eq!(pool.len(), 4);
        assert_eq!(pool.free.capacity(), cap);
    }

    #[test]
    fn received_addresses_map_back_to_their_frame() {
        assert_eq!(frame_base(256), 0);
        assert_eq!(frame_base(4096 + 256), 4096);
        assert_eq!(frame_base(3 * 4096 + 4095), 3 * 4096);
    }

    #[test]
    fn frames_and_mtu_fit_the_kernel_headroom() {
        assert_eq!(MAX_RX_FRAME, 3840);
        assert_eq!(MAX_MTU, 3822);
        assert!(RING_SIZE.is_power_of_two());
        // The fill ring can hold every frame of the receive half.
        assert_eq!(NUM_FRAMES / 2, RING_SIZE as usize);
    }
}
