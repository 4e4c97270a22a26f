//! Packet buffers and batches, recycled so that the per-packet path allocates nothing.
//!
//! A poll thread owns a fixed set of [`Packet`]s for its whole life: receive fills
//! them in place, forwarding moves them between batches with `std::mem::swap`, and
//! nothing is freed until the thread exits. Only the slow path (upcalls) copies a
//! packet into fresh memory.

use super::sys::ZeroedPages;
use crate::types::PortNo;

/// Bytes reserved in front of the frame so that a VLAN push needs no copy.
pub const HEADROOM: usize = 64;
/// Largest frame we accept: a GSO super-frame of up to 64 KiB plus headers.
pub const MAX_FRAME: usize = 65_536 + 128;
/// Packets per receive or transmit batch (as OVS's NETDEV_MAX_BURST).
pub const BATCH_SIZE: usize = 32;

/// The virtio-net header that `PACKET_VNET_HDR` sockets and TAP devices put in
/// front of frames: it carries checksum-offload and segmentation (GSO) state, so
/// that TCP's 64 KiB frames cross the switch whole.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// VIRTIO_NET_HDR_F_* flags (1 = NEEDS_CSUM, 2 = DATA_VALID).
    pub flags: u8,
    /// VIRTIO_NET_HDR_GSO_* type (0 = none, 1 = TCPv4, 3 = UDP, 4 = TCPv6, 0x80 = ECN).
    pub gso_type: u8,
    /// Length of the headers to copy into each segment.
    pub hdr_len: u16,
    /// Maximum segment payload size.
    pub gso_size: u16,
    /// Where checksumming starts.
    pub csum_start: u16,
    /// Offset from csum_start where the checksum is stored.
    pub csum_offset: u16,
}

/// A packet's tunnel metadata (OVS's `struct flow_tnl`, IPv4 part).
///
/// On receive, a tunnel port fills it from the outer headers it stripped
/// (`tnl_pop`); extraction copies it into the flow key's tunnel fields. On
/// transmit, a tunnel port reads it for the parts of the outer header its
/// configuration leaves to the flow (`key = "flow"`, `remote_ip = "flow"`,
/// `local_ip = "flow"`); actions write it (set_field of `tun_id`, `tun_src`,
/// `tun_dst`). All zero means "no tunnel".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TunnelMeta {
    /// Tunnel id: the VXLAN/Geneve VNI (24 bits) in the low bits, as OVS's `tun_id`.
    pub id: u64,
    /// Outer IPv4 source, host byte order (0 = unset).
    pub src: u32,
    /// Outer IPv4 destination, host byte order (0 = unset).
    pub dst: u32,
    /// Outer TOS byte seen on receive.
    pub tos: u8,
    /// Outer TTL seen on receive.
    pub ttl: u8,
}

impl TunnelMeta {
    /// True when the packet carries tunnel metadata.
    #[inline]
    pub fn is_set(&self) -> bool {
        self.id != 0 || self.src != 0 || self.dst != 0
    }
}

/// One packet in a reusable buffer.
pub struct Packet {
    /// Its own pages: the first one holds a typical frame, the rest stay
    /// unbacked until a GSO super-frame needs them.
    buf: ZeroedPages,
    start: usize,
    len: usize,
    /// Port the packet came in on.
    pub in_port: PortNo,
    /// Offload state from the receiving device (all zero when it had none).
    pub vnet: VnetHdr,
    /// Tunnel metadata (all zero when the packet did not come from, and is
    /// not bound for, a tunnel).
    pub tunnel: TunnelMeta,
}

impl Default for Packet {
    fn default() -> Self {
        Packet::new()
    }
}

impl Packet {
    /// Maps one buffer of `HEADROOM + MAX_FRAME` bytes. Done once per slot.
    pub fn new() -> Packet {
        Packet {
            buf: ZeroedPages::new(HEADROOM + MAX_FRAME),
            start: HEADROOM,
            len: 0,
            in_port: PortNo(0),
            vnet: VnetHdr::default(),
            tunnel: TunnelMeta::default(),
        }
    }

    /// Builds a packet holding a copy of `frame` (slow path and tests only).
    pub fn from_bytes(frame: &[u8], in_port: PortNo) -> Packet {
        let mut p = Packet::new();
        let n = frame.len().min(MAX_FRAME);
        p.buf[HEADROOM..HEADROOM + n].copy_from_slice(&frame[..n]);
        p.len = n;
        p.in_port = in_port;
        p
    }

    /// The frame bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The frame bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Frame length.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty frame.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Resets to an empty frame at the standard headroom and returns the whole
    /// writable area, for a receive call to fill; then call [`Packet::set_len`].
    #[inline]
    pub fn rx_area(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        self.len = 0;
        self.vnet = VnetHdr::default();
        self.tunnel = TunnelMeta::default();
        &mut self.buf[HEADROOM..]
    }

    /// Sets the frame length after a receive into [`Packet::rx_area`].
    #[inline]
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len() - self.start);
    }

    /// Grows the frame at the front by `n` bytes (for pushing headers). Returns
    /// false when the headroom is exhausted.
    #[inline]
    pub fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    /// Drops `n` bytes from the front (for popping headers).
    #[inline]
    pub fn pull_front(&mut self, n: usize) {
        let n = n.min(self.len);
        self.start += n;
        self.len -= n;
    }

    /// Overwrites this packet with a copy of `other` (used when one packet leaves
    /// by several ports with different rewrites).
    pub fn copy_from(&mut self, other: &Packet) {
        self.start = HEADROOM;
        self.len = other.len;
        self.buf[HEADROOM..HEADROOM + other.len].copy_from_slice(other.data());
        self.in_port = other.in_port;
        self.vnet = other.vnet;
        self.tunnel = other.tunnel;
    }

    /// Truncates the frame.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// A fixed-capacity set of packets. `len` of them are live; the rest are spare
/// buffers kept for reuse.
pub struct PacketBatch {
    pkts: Vec<Packet>,
    len: usize,
}

impl PacketBatch {
    /// Allocates `cap` buffers (once, at thread start).
    pub fn with_capacity(cap: usize) -> PacketBatch {
        PacketBatch {
            pkts: (0..cap).map(|_| Packet::new()).collect(),
            len: 0,
        }
    }

    /// Live packets.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// No live packets.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total slots.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.pkts.len()
    }

    /// True when no slot is free.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == self.pkts.len()
    }

    /// Forgets all live packets (buffers stay).
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The live packets.
    #[inline]
    pub fn packets(&self) -> &[Packet] {
        &self.pkts[..self.len]
    }

    /// The live packets, writable.
    #[inline]
    pub fn packets_mut(&mut self) -> &mut [Packet] {
        &mut self.pkts[..self.len]
    }

    /// Claims the next free slot, or `None` when full. The slot keeps stale
    /// contents: the caller must fill it (e.g. through [`Packet::rx_area`]).
    #[inline]
    pub fn next_slot(&mut self) -> Option<&mut Packet> {
        if self.len == self.pkts.len() {
            return None;
        }
        self.len += 1;
        Some(&mut self.pkts[self.len - 1])
    }

    /// Gives back the slot claimed last (e.g. when a receive returned nothing).
    #[inline]
    pub fn unclaim_last(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Moves `pkt`'s buffer into the next free slot, leaving a spare buffer in
    /// `pkt`'s place. Zero-copy hand-off between batches. Returns false when full.
    #[inline]
    pub fn push_swap(&mut self, pkt: &mut Packet) -> bool {
        if self.len == self.pkts.len() {
            return false;
        }
        std::mem::swap(&mut self.pkts[self.len], pkt);
        self.len += 1;
        true
    }

    /// Copies `pkt` into the next free slot. Returns false when full.
    #[inline]
    pub fn push_copy(&mut self, pkt: &Packet) -> bool {
        if self.len == self.pkts.len() {
            return false;
        }
        self.pkts[self.len].copy_from(pkt);
        self.len += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_swap_and_headroom() {
        let mut a = PacketBatch::with_capacity(2);
        let mut b = PacketBatch::with_capacity(2);
        let p = a.next_slot().unwrap();
        let area = p.rx_area();
        area[..3].copy_from_slice(&[1, 2, 3]);
        p.set_len(3);
        assert!(p.push_front(4));
        assert_eq!(p.len(), 7);
        p.pull_front(4);
        assert_eq!(p.data(), &[1, 2, 3]);
        let mut taken = std::mem::take(&mut a.packets_mut()[0]);
        assert!(b.push_swap(&mut taken));
        assert_eq!(b.packets()[0].data(), &[1, 2, 3]);
    }
}
