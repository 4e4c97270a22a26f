//! The 10-byte virtio-net header exchanged with `PACKET_VNET_HDR` sockets and
//! `IFF_VNET_HDR` TAP devices.
//!
//! Both kernel interfaces use the legacy virtio layout in host byte order (we
//! never switch TAP devices to forced little-endian), so the header is encoded
//! with native-endian 16-bit fields. Receive paths validate the header against
//! the frame it describes before handing it to the datapath: a header that
//! points outside its frame would make a later transmit fail or, worse, make
//! the kernel checksum the wrong bytes.

use crate::netdev::packet::VnetHdr;

/// Size of `struct virtio_net_hdr` on the wire.
pub const VNET_HDR_LEN: usize = 10;

/// The checksum of the frame is partial and must be completed at
/// `csum_start + csum_offset`.
pub const F_NEEDS_CSUM: u8 = 1;
/// The receiver already validated the checksum.
pub const F_DATA_VALID: u8 = 2;
/// The header carries receive-segment-coalescing info (tolerated, ignored).
pub const F_RSC_INFO: u8 = 4;

/// Not a GSO frame.
pub const GSO_NONE: u8 = 0;
/// TCP over IPv4 segmentation.
pub const GSO_TCPV4: u8 = 1;
/// UDP fragmentation offload.
pub const GSO_UDP: u8 = 3;
/// TCP over IPv6 segmentation.
pub const GSO_TCPV6: u8 = 4;
/// UDP segmentation (USO).
pub const GSO_UDP_L4: u8 = 5;
/// ECN bit OR-ed into a TCP GSO type.
pub const GSO_ECN: u8 = 0x80;

/// Shortest frame we accept: an Ethernet header.
const ETH_HLEN: usize = 14;

/// Why a virtio-net header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VnetError {
    /// Flags outside NEEDS_CSUM | DATA_VALID | RSC_INFO.
    #[error("unknown virtio-net flags {0:#x}")]
    UnknownFlags(u8),
    /// A GSO type we do not know how to carry.
    #[error("unknown virtio-net GSO type {0:#x}")]
    UnknownGsoType(u8),
    /// GSO requested with a zero segment size.
    #[error("GSO frame without a segment size")]
    GsoWithoutSize,
    /// The partial checksum field lies outside the frame.
    #[error("checksum field at {start}+{offset} outside a {len}-byte frame")]
    ChecksumOutOfFrame {
        /// csum_start.
        start: u16,
        /// csum_offset.
        offset: u16,
        /// Frame length.
        len: usize,
    },
    /// The frame is shorter than an Ethernet header.
    #[error("frame of {0} bytes is shorter than an Ethernet header")]
    Runt(usize),
}

/// Decodes the header bytes the kernel put in front of a frame.
#[inline]
pub fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
    VnetHdr {
        flags: b[0],
        gso_type: b[1],
        hdr_len: u16::from_ne_bytes([b[2], b[3]]),
        gso_size: u16::from_ne_bytes([b[4], b[5]]),
        csum_start: u16::from_ne_bytes([b[6], b[7]]),
        csum_offset: u16::from_ne_bytes([b[8], b[9]]),
    }
}

/// Encodes a header to put in front of a frame on transmit.
#[inline]
pub fn emit(h: &VnetHdr) -> [u8; VNET_HDR_LEN] {
    let mut b = [0u8; VNET_HDR_LEN];
    b[0] = h.flags;
    b[1] = h.gso_type;
    b[2..4].copy_from_slice(&h.hdr_len.to_ne_bytes());
    b[4..6].copy_from_slice(&h.gso_size.to_ne_bytes());
    b[6..8].copy_from_slice(&h.csum_start.to_ne_bytes());
    b[8..10].copy_from_slice(&h.csum_offset.to_ne_bytes());
    b
}

/// Checks that `h` is a header we can forward for a frame of `frame_len` bytes.
pub fn validate(h: &VnetHdr, frame_len: usize) -> Result<(), VnetError> {
    if frame_len < ETH_HLEN {
        return Err(VnetError::Runt(frame_len));
    }
    if h.flags & !(F_NEEDS_CSUM | F_DATA_VALID | F_RSC_INFO) != 0 {
        return Err(VnetError::UnknownFlags(h.flags));
    }
    let base = h.gso_type & !GSO_ECN;
    match base {
        GSO_NONE if h.gso_type == GSO_NONE => {}
        GSO_TCPV4 | GSO_TCPV6 => {}
        GSO_UDP | GSO_UDP_L4 if h.gso_type & GSO_ECN == 0 => {}
        _ => return Err(VnetError::UnknownGsoType(h.gso_type)),
    }
    if base != GSO_NONE && h.gso_size == 0 {
        return Err(VnetError::GsoWithoutSize);
    }
    if h.flags & F_NEEDS_CSUM != 0 {
        let end = usize::from(h.csum_start) + usize::from(h.csum_offset) + 2;
        if end > frame_len {
            return Err(VnetError::ChecksumOutOfFrame {
                start: h.csum_start,
                offset: h.csum_offset,
                len: frame_len,
            });
        }
    }
    Ok(())
}

/// Adjusts the header after `n` bytes were inserted into the frame in front of
/// the checksummed region (a re-inserted VLAN tag), so that the offsets still
/// point at the same protocol fields.
#[inline]
pub fn shift(h: &mut VnetHdr, n: u16) {
    if h.flags & F_NEEDS_CSUM != 0 {
        h.csum_start = h.csum_start.saturating_add(n);
    }
    if h.gso_type != GSO_NONE && h.hdr_len != 0 {
        h.hdr_len = h.hdr_len.saturating_add(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tso4() -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        }
    }

    #[test]
    fn parse_emit_round_trip() {
        let h = tso4();
        let b = emit(&h);
        assert_eq!(b[0], F_NEEDS_CSUM);
        assert_eq!(b[1], GSO_TCPV4);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), 1448);
        assert_eq!(parse(&b), h);
        assert_eq!(parse(&[0; VNET_HDR_LEN]), VnetHdr::default());
    }

    #[test]
    fn validate_accepts_kernel_headers() {
        assert_eq!(validate(&VnetHdr::default(), 60), Ok(()));
        assert_eq!(validate(&tso4(), 65_000), Ok(()));
        let mut ecn = tso4();
        ecn.gso_type = GSO_TCPV6 | GSO_ECN;
        assert_eq!(validate(&ecn, 9000), Ok(()));
        let valid = VnetHdr {
            flags: F_DATA_VALID,
            ..VnetHdr::default()
        };
        assert_eq!(validate(&valid, 60), Ok(()));
    }

    #[test]
    fn validate_rejects_malformed_headers() {
        assert_eq!(validate(&VnetHdr::default(), 13), Err(VnetError::Runt(13)));
        let mut h = tso4();
        h.flags = 0x10;
        assert_eq!(validate(&h, 1000), Err(VnetError::UnknownFlags(0x10)));
        let mut h = tso4();
        h.gso_type = 2;
        assert_eq!(validate(&h, 1000), Err(VnetError::UnknownGsoType(2)));
        let mut h = tso4();
        h.gso_type = GSO_UDP | GSO_ECN;
        assert!(matches!(
            validate(&h, 1000),
            Err(VnetError::UnknownGsoType(_))
        ));
        let mut h = tso4();
        h.gso_type = GSO_ECN;
        assert!(matches!(
            validate(&h, 1000),
            Err(VnetError::UnknownGsoType(_))
        ));
        let mut h = tso4();
        h.gso_size = 0;
        assert_eq!(validate(&h, 1000), Err(VnetError::GsoWithoutSize));
        let h = tso4();
        // 34 + 16 + 2 = 52 bytes needed.
        assert_eq!(validate(&h, 52), Ok(()));
        assert!(matches!(
            validate(&h, 51),
            Err(VnetError::ChecksumOutOfFrame { len: 51, .. })
        ));
        let mut h = tso4();
        h.csum_start = u16::MAX;
        h.csum_offset = u16::MAX;
        assert!(validate(&h, 70_000).is_err());
    }

    #[test]
    fn shift_moves_offsets_for_a_vlan_tag() {
        let mut h = tso4();
        shift(&mut h, 4);
        assert_eq!(h.csum_start, 38);
        assert_eq!(h.hdr_len, 70);
        assert_eq!(h.csum_offset, 16);
        let mut plain = VnetHdr::default();
        shift(&mut plain, 4);
        assert_eq!(plain, VnetHdr::default());
    }
}
