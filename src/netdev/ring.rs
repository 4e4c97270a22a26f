//! A TPACKET_V2 receive ring: the kernel copies each received frame into a
//! memory area shared with us, so receiving costs no system call and the copy
//! is made by whichever CPU delivered the frame (often the sender's), not by
//! the poll thread.
//!
//! Why V2 and not V3: V3 hands frames over a whole block at a time, when the
//! block fills or a timer (at least a millisecond) retires it, which would add
//! that much latency to a ping. V2 hands over every frame at once.
//!
//! Frames that do not fit a ring slot (TSO/GSO super-frames, jumbo frames) are
//! not lost: with `PACKET_COPY_THRESH` set, the kernel writes a truncated copy
//! flagged `TP_STATUS_COPY` into the ring and queues the whole frame on the
//! socket's ordinary receive queue, where `recvmsg` finds it.
//!
//! Ownership and ordering: the ring belongs to the socket's poll thread. A slot
//! is ours from the moment its status has `TP_STATUS_USER` (read with acquire
//! ordering, after which the kernel's writes to the slot are visible) until we
//! store `TP_STATUS_KERNEL` back (release ordering, after our last read).

use super::sys::setsockopt;
use super::NetdevError;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};

/// Bytes per slot: room for the TPACKET header, the address, a virtio-net
/// header, a VLAN tag and a 1500-byte-MTU Ethernet frame.
pub const FRAME_SIZE: usize = 2048;
/// Slots in the ring (2 MiB per port, all of it resident: the kernel maps
/// every page at mmap time). 512 slots lost TCP segments to overflow
/// (37k retransmits in 5 s, a fifth of the throughput); 1024 keeps them to a
/// few dozen, like the 4 MiB socket buffer used without a ring.
pub const FRAME_NR: usize = 1024;
/// Bytes per ring block (the kernel allocates the ring in blocks).
const BLOCK_SIZE: usize = 1 << 16;
/// Where a slot's `sockaddr_ll` starts: after the TPACKET_V2 header, aligned
/// to TPACKET_ALIGNMENT (16).
const SLL_OFFSET: usize = (std::mem::size_of::<libc::tpacket2_hdr>() + 15) & !15;

/// One received slot, borrowed from the ring until [`RxRing::release`].
pub struct RingFrame<'a> {
    /// `TP_STATUS_*` bits.
    pub status: u32,
    /// Length of the frame on the wire.
    pub len: usize,
    /// The bytes captured in the slot, starting at the Ethernet header; shorter
    /// than `len` when the frame did not fit.
    pub data: &'a [u8],
    /// The bytes just before `data` (where the virtio-net header was written).
    pub before: &'a [u8],
    /// VLAN TCI the kernel stripped (valid when `status` has `TP_STATUS_VLAN_VALID`).
    pub vlan_tci: u16,
    /// VLAN TPID (valid when `status` has `TP_STATUS_VLAN_TPID_VALID`).
    pub vlan_tpid: u16,
    /// `PACKET_*` packet type from the address part (e.g. `PACKET_OUTGOING`).
    pub pkttype: u8,
    /// False when the slot's offsets point outside it (never seen; the slot
    /// must still be released, and its frame counted as an error).
    pub valid: bool,
}

/// The mapped ring.
pub struct RxRing {
    base: *mut u8,
    size: usize,
    head: usize,
}

// SAFETY: the mapping is owned by this value alone and only used through
// `&mut self`; moving it to another thread moves that exclusive ownership.
unsafe impl Send for RxRing {}

impl RxRing {
    /// Sets `fd` (an AF_PACKET socket that already has its `PACKET_VNET_HDR`
    /// setting, which cannot change once a ring exists) to TPACKET_V2 with a
    /// receive ring, and maps the ring.
    pub fn setup(fd: &OwnedFd, name: &str) -> Result<RxRing, NetdevError> {
        let b = fd.as_fd();
        let v2: libc::c_int = libc::tpacket_versions::TPACKET_V2 as libc::c_int;
        setsockopt(b, libc::SOL_PACKET, libc::PACKET_VERSION, &v2)
            .map_err(|e| super::sys::io_err("setsockopt(PACKET_VERSION)", name, e))?;
        let one: libc::c_int = 1;
        setsockopt(b, libc::SOL_PACKET, libc::PACKET_COPY_THRESH, &one)
            .map_err(|e| super::sys::io_err("setsockopt(PACKET_COPY_THRESH)", name, e))?;
        let req = libc::tpacket_req {
            tp_block_size: BLOCK_SIZE as libc::c_uint,
            tp_block_nr: (FRAME_NR * FRAME_SIZE / BLOCK_SIZE) as libc::c_uint,
            tp_frame_size: FRAME_SIZE as libc::c_uint,
            tp_frame_nr: FRAME_NR as libc::c_uint,
        };
        setsockopt(b, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| super::sys::io_err("setsockopt(PACKET_RX_RING)", name, e))?;
        let size = FRAME_NR * FRAME_SIZE;
        // The socket's ring, of exactly the size just configured, shared and
        // read-write as the packet(7) API requires; unmapped in Drop.
        let p = super::sys::mmap(Some(b), size, 0, false)
            .map_err(|e| super::sys::io_err("mmap(PACKET_RX_RING)", name, e))?;
        Ok(RxRing {
            base: p.as_ptr(),
            size,
            head: 0,
        })
    }

    fn status_word(&self, slot: usize) -> &AtomicU32 {
        // SAFETY: slot < FRAME_NR, so the slot's first 4 bytes (tp_status, 4-byte
        // aligned since slots are FRAME_SIZE-aligned in a page-aligned mapping)
        // are inside the mapping, which lives as long as `self`. The kernel
        // writes this word concurrently, hence the atomic view.
        unsafe { &*(self.base.add(slot * FRAME_SIZE) as *const AtomicU32) }
    }

    /// The slot at the head if the kernel has handed it to us.
    pub fn peek(&self) -> Option<RingFrame<'_>> {
        let status = self.status_word(self.head).load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the slot is ours (TP_STATUS_USER, acquire above) until
        // `release`, and FRAME_SIZE bytes from its start lie in the mapping.
        let slot = unsafe {
            std::slice::from_raw_parts(self.base.add(self.head * FRAME_SIZE), FRAME_SIZE)
        };
        // SAFETY: a slot starts with a tpacket2_hdr (the kernel's layout for
        // TPACKET_V2); read unaligned to make no assumption.
        let hdr: libc::tpacket2_hdr = unsafe { std::ptr::read_unaligned(slot.as_ptr().cast()) };
        let mac = hdr.tp_mac as usize;
        let snap = hdr.tp_snaplen as usize;
        // The kernel keeps these inside the slot; check rather than trust.
        let (mac, end, valid) = match mac.checked_add(snap) {
            Some(e) if e <= FRAME_SIZE => (mac, e, true),
            _ => (0, 0, false),
        };
        let pkttype = slot
            .get(SLL_OFFSET + std::mem::offset_of!(libc::sockaddr_ll, sll_pkttype))
            .copied()
            .unwrap_or(0);
        Some(RingFrame {
            status,
            len: hdr.tp_len as usize,
            data: &slot[mac..end],
            before: &slot[..mac],
            vlan_tci: hdr.tp_vlan_tci,
            vlan_tpid: hdr.tp_vlan_tpid,
            pkttype,
            valid,
        })
    }

    /// Gives the head slot back to the kernel and moves to the next one.
    pub fn release(&mut self) {
        self.status_word(self.head)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.head = (self.head + 1) % FRAME_NR;
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `setup`; no borrow of
        // it outlives `self` (frames borrow `&self`).
        unsafe {
            libc::munmap(self.base.cast(), self.size);
        }
    }
}
