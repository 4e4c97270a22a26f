//! Software completion of virtio-net offloads before encapsulation.
//!
//! Local ports hand the switch frames with offload work still to do (see
//! [`VnetHdr`]): a partial checksum (`NEEDS_CSUM`), or a TCP super-frame of up
//! to 64 KiB that the sender expected the NIC to cut (GSO/TSO). A kernel UDP
//! socket carries bytes, not offload state, so before a frame is put inside a
//! tunnel header it must become what would have been on the wire: this module
//! does what Linux's `skb_checksum_help()` and `tcp_gso_segment()` do.
//!
//! Ownership: a [`Segmenter`] (its preallocated scratch) belongs to one
//! transmit handle, so one poll thread; the functions are pure. Nothing here
//! allocates per packet: segments are written into the scratch in chunks of
//! at most [`MAX_SEGS`], which the caller sends before asking for the next
//! chunk.
//!
//! Every header field is re-read from the frame itself and checked against
//! the frame's length (`hdr_len` in the virtio header is not trusted), so a
//! hostile guest can at worst have its frame counted as malformed.

use crate::netdev::packet::{VnetHdr, MAX_FRAME};
use crate::netdev::vnet::{F_NEEDS_CSUM, GSO_ECN, GSO_NONE, GSO_TCPV4, GSO_TCPV6};

/// Most segments written into the scratch per [`Segmenter::write`] call.
pub const MAX_SEGS: usize = 64;
/// Longest header block a segment can repeat: Ethernet, two VLAN tags, an
/// IPv4 header with options, a TCP header with options.
pub const MAX_HDRS: usize = 14 + 2 * 4 + 60 + 60;
/// Scratch size: a whole super-frame's payload plus [`MAX_SEGS`] header
/// copies, so at least one segment of any accepted frame always fits.
const SCRATCH_BYTES: usize = MAX_FRAME + MAX_SEGS * MAX_HDRS;

const ETH_P_IPV4: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Why a frame's offload state could not be completed (the transmit path
/// drops the frame and counts it as malformed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
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
    /// A GSO type we do not segment (UDP fragmentation or segmentation).
    #[error("GSO type {0:#x} is not segmented in software")]
    UnsupportedGso(u8),
    /// GSO without a segment size.
    #[error("GSO frame without a segment size")]
    GsoWithoutSize,
    /// The frame ends inside its own headers.
    #[error("frame of {0} bytes ends inside its headers")]
    Truncated(usize),
    /// The L3 protocol is not the one the GSO type says.
    #[error("GSO type {gso_type:#x} on a frame with ethertype {ethertype:#06x}")]
    WrongL3 {
        /// The virtio-net GSO type.
        gso_type: u8,
        /// The frame's (innermost) ethertype.
        ethertype: u16,
    },
    /// An IP header with a wrong version or header length.
    #[error("malformed IP header")]
    BadIpHeader,
    /// The IP length field disagrees with the frame.
    #[error("IP length field says {field} bytes, the frame holds {actual}")]
    IpLength {
        /// The length the IP header claims (from the IP header's start).
        field: usize,
        /// The length there is.
        actual: usize,
    },
    /// An IPv4 fragment cannot be TCP-segmented.
    #[error("GSO on an IPv4 fragment")]
    Fragment,
    /// Not TCP directly after the IP header (IPv6 extension headers included).
    #[error("GSO frame carries IP protocol {0}, not TCP")]
    NotTcp(u8),
    /// A TCP data offset below 5 words.
    #[error("malformed TCP header")]
    BadTcpHeader,
}

/// Adds `data` to a ones'-complement accumulator (RFC 1071), as big-endian
/// 16-bit words, an odd last byte padded with zero. Summing 32-bit words into
/// 64 bits and folding at the end is equivalent, since 2^16 ≡ 1 mod 0xffff.
pub fn csum_add(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        acc += u64::from(u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
    }
    let rest = chunks.remainder();
    let mut i = 0;
    while i + 1 < rest.len() {
        acc += u64::from(u16::from_be_bytes([rest[i], rest[i + 1]]));
        i += 2;
    }
    if i < rest.len() {
        acc += u64::from(rest[i]) << 8;
    }
    acc
}

/// Folds an accumulator to the 16-bit ones'-complement sum.
pub fn csum_fold(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Completes a partial checksum (`NEEDS_CSUM` without GSO), as Linux's
/// `skb_checksum_help()`: the field at `csum_start + csum_offset` already
/// holds the pseudo-header sum, so the checksum is the complement of the sum
/// from `csum_start` to the end of the frame. A result of zero is sent as
/// 0xffff (the same value in ones' complement; UDP reserves zero for "no
/// checksum", RFC 768). Frames without the flag are left alone.
pub fn complete_csum(frame: &mut [u8], vnet: &VnetHdr) -> Result<(), SegmentError> {
    if vnet.flags & F_NEEDS_CSUM == 0 {
        return Ok(());
    }
    let start = usize::from(vnet.csum_start);
    let field = start + usize::from(vnet.csum_offset);
    if field + 2 > frame.len() {
        return Err(SegmentError::ChecksumOutOfFrame {
            start: vnet.csum_start,
            offset: vnet.csum_offset,
            len: frame.len(),
        });
    }
    let c = !csum_fold(csum_add(0, &frame[start..]));
    let c = if c == 0 { 0xffff } else { c };
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// How a TCP super-frame splits, from its own headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GsoPlan {
    /// Offset of the IP header.
    pub l3: usize,
    /// Offset of the TCP header.
    pub l4: usize,
    /// Length of the headers every segment repeats (through the TCP options).
    pub hdr_len: usize,
    /// IPv4 (else IPv6).
    pub ipv4: bool,
    /// TCP payload bytes of the whole frame.
    pub payload: usize,
    /// Payload bytes per segment (`gso_size`).
    pub mss: usize,
    /// Number of segments (at least 1).
    pub segments: usize,
}

/// Parses a GSO frame's headers and checks them against the frame: TCPv4 or
/// TCPv6 (with or without the ECN bit) over Ethernet with up to two VLAN
/// tags; IPv6 without extension headers.
pub fn plan(frame: &[u8], vnet: &VnetHdr) -> Result<GsoPlan, SegmentError> {
    let base = vnet.gso_type & !GSO_ECN;
    let ipv4 = match base {
        GSO_TCPV4 => true,
        GSO_TCPV6 => false,
        _ => return Err(SegmentError::UnsupportedGso(vnet.gso_type)),
    };
    if vnet.gso_size == 0 {
        return Err(SegmentError::GsoWithoutSize);
    }
    let len = frame.len();
    let trunc = SegmentError::Truncated(len);
    let mut l3 = 14;
    if len < l3 {
        return Err(trunc);
    }
    let mut ethertype = be16(frame, 12);
    for _ in 0..2 {
        if ethertype != ETH_P_8021Q && ethertype != ETH_P_8021AD {
            break;
        }
        if len < l3 + 4 {
            return Err(trunc);
        }
        ethertype = be16(frame, l3 + 2);
        l3 += 4;
    }
    let want = if ipv4 { ETH_P_IPV4 } else { ETH_P_IPV6 };
    if ethertype != want {
        return Err(SegmentError::WrongL3 {
            gso_type: vnet.gso_type,
            ethertype,
        });
    }
    let l4 = if ipv4 {
        if len < l3 + 20 {
            return Err(trunc);
        }
        let ihl = usize::from(frame[l3] & 0x0f) * 4;
        if frame[l3] >> 4 != 4 || ihl < 20 {
            return Err(SegmentError::BadIpHeader);
        }
        if len < l3 + ihl {
            return Err(trunc);
        }
        let field = usize::from(be16(frame, l3 + 2));
        if field != len - l3 {
            return Err(SegmentError::IpLength {
                field,
                actual: len - l3,
            });
        }
        if be16(frame, l3 + 6) & 0x3fff != 0 {
            return Err(SegmentError::Fragment);
        }
        if frame[l3 + 9] != IPPROTO_TCP {
            return Err(SegmentError::NotTcp(frame[l3 + 9]));
        }
        l3 + ihl
    } else {
        if len < l3 + 40 {
            return Err(trunc);
        }
        if frame[l3] >> 4 != 6 {
            return Err(SegmentError::BadIpHeader);
        }
        let field = 40 + usize::from(be16(frame, l3 + 4));
        if field != len - l3 {
            return Err(SegmentError::IpLength {
                field,
                actual: len - l3,
            });
        }
        if frame[l3 + 6] != IPPROTO_TCP {
            return Err(SegmentError::NotTcp(frame[l3 + 6]));
        }
        l3 + 40
    };
    if len < l4 + 20 {
        return Err(trunc);
    }
    let doff = usize::from(frame[l4 + 12] >> 4) * 4;
    if doff < 20 {
        return Err(SegmentError::BadTcpHeader);
    }
    let hdr_len = l4 + doff;
    if len < hdr_len {
        return Err(trunc);
    }
    let payload = len - hdr_len;
    let mss = usize::from(vnet.gso_size);
    Ok(GsoPlan {
        l3,
        l4,
        hdr_len,
        ipv4,
        payload,
        mss,
        segments: payload.div_ceil(mss).max(1),
    })
}

/// Preallocated scratch that TCP super-frames are cut into.
pub struct Segmenter {
    buf: Box<[u8]>,
    /// (offset, length) in `buf` of each segment of the last `write`.
    spans: Box<[(usize, usize)]>,
    n: usize,
}

impl Default for Segmenter {
    fn default() -> Self {
        Segmenter::new()
    }
}

impl Segmenter {
    /// Allocates the scratch (about 82 KiB), once per transmit handle.
    pub fn new() -> Segmenter {
        Segmenter {
            buf: vec![0u8; SCRATCH_BYTES].into_boxed_slice(),
            spans: vec![(0, 0); MAX_SEGS].into_boxed_slice(),
            n: 0,
        }
    }

    /// Writes segments `first..` of `frame` (as planned by [`plan`]) into the
    /// scratch, as many as fit (at most [`MAX_SEGS`]), replacing the previous
    /// call's. Returns how many; `first + n == plan.segments` when done.
    ///
    /// Each segment repeats the headers with, as Linux's `tcp_gso_segment()`
    /// and `inet_gso_segment()`: IPv4 total length, id + i and header
    /// checksum, or IPv6 payload length; TCP sequence number + payload
    /// offset; FIN and PSH only on the last segment, CWR only on the first;
    /// the full TCP checksum over the pseudo-header.
    pub fn write(&mut self, frame: &[u8], p: &GsoPlan, first: usize) -> usize {
        self.n = 0;
        let hdr = &frame[..p.hdr_len];
        let ip_id = if p.ipv4 { be16(frame, p.l3 + 4) } else { 0 };
        let seq = u32::from_be_bytes([
            frame[p.l4 + 4],
            frame[p.l4 + 5],
            frame[p.l4 + 6],
            frame[p.l4 + 7],
        ]);
        let mut off = 0;
        let mut i = first;
        while i < p.segments && self.n < MAX_SEGS {
            let pstart = i * p.mss;
            let plen = p.mss.min(p.payload - pstart);
            let seg_len = p.hdr_len + plen;
            if off + seg_len > self.buf.len() {
                break;
            }
            let seg = &mut self.buf[off..off + seg_len];
            seg[..p.hdr_len].copy_from_slice(hdr);
            seg[p.hdr_len..].copy_from_slice(&frame[p.hdr_len + pstart..p.hdr_len + pstart + plen]);
            let l3_len = seg_len - p.l3;
            let mut pseudo = 0u64;
            if p.ipv4 {
                let ip = &mut seg[p.l3..p.l4];
                ip[2..4].copy_from_slice(&(l3_len as u16).to_be_bytes());
                ip[4..6].copy_from_slice(&ip_id.wrapping_add(i as u16).to_be_bytes());
                ip[10..12].fill(0);
                let c = !csum_fold(csum_add(0, ip));
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                pseudo = csum_add(pseudo, &ip[12..20]);
            } else {
                let ip = &mut seg[p.l3..p.l4];
                ip[4..6].copy_from_slice(&((l3_len - 40) as u16).to_be_bytes());
                pseudo = csum_add(pseudo, &ip[8..40]);
            }
            let tcp_len = seg_len - p.l4;
            pseudo += u64::from(IPPROTO_TCP) + tcp_len as u64;
            let tcp = &mut seg[p.l4..];
            tcp[4..8].copy_from_slice(&seq.wrapping_add(pstart as u32).to_be_bytes());
            if i + 1 != p.segments {
                tcp[13] &= !(TCP_FIN | TCP_PSH);
            }
            if i != 0 {
                tcp[13] &= !TCP_CWR;
            }
            tcp[16..18].fill(0);
            let c = !csum_fold(csum_add(pseudo, tcp));
            tcp[16..18].copy_from_slice(&c.to_be_bytes());
            self.spans[self.n] = (off, seg_len);
            self.n += 1;
            off += seg_len;
            i += 1;
        }
        self.n
    }

    /// Segments written by the last [`Segmenter::write`].
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the last write produced nothing.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Segment `i` of the last write (`i < len()`).
    pub fn segment(&self, i: usize) -> &[u8] {
        let (off, len) = self.spans[i];
        &self.buf[off..off + len]
    }
}

/// True when `vnet` asks for segmentation (any GSO type).
#[inline]
pub fn is_gso(vnet: &VnetHdr) -> bool {
    vnet.gso_type != GSO_NONE
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent checksum: 16-bit words one at a time, folded as we go.
    pub(crate) fn naive_sum(parts: &[&[u8]]) -> u16 {
        let mut bytes = Vec::new();
        for p in parts {
            bytes.extend_from_slice(p);
        }
        if bytes.len() % 2 == 1 {
            bytes.push(0);
        }
        let mut s: u32 = 0;
        for w in bytes.chunks(2) {
            s += u32::from(w[0]) << 8 | u32::from(w[1]);
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    /// Builds Ethernet (+ `vlans` tags) / IPv4 or IPv6 / TCP with 12 bytes
    /// of options / `payload`, with valid lengths and a garbage checksum.
    pub(crate) fn tcp_frame(ipv4: bool, vlans: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for _ in 0..vlans {
            f.extend([0x81, 0x00, 0x00, 0x05]);
        }
        let l3 = f.len() + 2;
        let tcp_len = 32 + payload.len();
        if ipv4 {
            f.extend([0x08, 0x00]);
            let tot = (20 + tcp_len) as u16;
            f.extend([0x45, 0]);
            f.extend(tot.to_be_bytes());
            f.extend([0xff, 0xfe, 0x40, 0, 64, 6, 0xde, 0xad]);
            f.extend([10, 0, 0, 1, 10, 0, 0, 2]);
        } else {
            f.extend([0x86, 0xdd, 0x60, 0, 0, 0]);
            f.extend((tcp_len as u16).to_be_bytes());
            f.extend([6, 64]);
            f.extend((0..32).map(|i| i as u8));
        }
        assert_eq!(f.len(), l3 + if ipv4 { 20 } else { 40 });
        f.extend([0x12, 0x34, 0x00, 0x50]);
        f.extend(0xffff_ff00u32.to_be_bytes()); // seq, wraps during the frame
        f.extend(7u32.to_be_bytes()); // ack
        f.extend([0x80, flags, 0x01, 0x00, 0xbe, 0xef, 0, 0]);
        f.extend([1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
        f.extend_from_slice(payload);
        f
    }

    /// Checks one segment's IP and TCP checksums and lengths independently
    /// of the code under test; returns (seq, tcp flags, payload).
    pub(crate) fn check_segment(seg: &[u8], l3: usize, ipv4: bool) -> (u32, u8, Vec<u8>) {
        let (l4, pseudo_addrs) = if ipv4 {
            let ihl = usize::from(seg[l3] & 0xf) * 4;
            assert_eq!(naive_sum(&[&seg[l3..l3 + ihl]]), 0xffff, "IPv4 checksum");
            assert_eq!(usize::from(be16(seg, l3 + 2)), seg.len() - l3);
            (l3 + ihl, &seg[l3 + 12..l3 + 20])
        } else {
            assert_eq!(usize::from(be16(seg, l3 + 4)), seg.len() - l3 - 40);
            (l3 + 40, &seg[l3 + 8..l3 + 40])
        };
        let tcp = &seg[l4..];
        let mut pseudo = vec![0, 6];
        pseudo.extend((tcp.len() as u16).to_be_bytes());
        assert_eq!(
            naive_sum(&[pseudo_addrs, &pseudo, tcp]),
            0xffff,
            "TCP checksum"
        );
        let doff = usize::from(tcp[12] >> 4) * 4;
        let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
        (seq, tcp[13], tcp[doff..].to_vec())
    }

    fn gso(ipv4: bool, mss: u16) -> VnetHdr {
        VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: if ipv4 { GSO_TCPV4 } else { GSO_TCPV6 },
            hdr_len: 0, // deliberately wrong: never trusted
            gso_size: mss,
            csum_start: 0,
            csum_offset: 0,
        }
    }

    /// Runs the whole segmentation, chunk by chunk, collecting the segments.
    fn segment_all(frame: &[u8], vnet: &VnetHdr) -> Result<(GsoPlan, Vec<Vec<u8>>), SegmentError> {
        let p = plan(frame, vnet)?;
        let mut s = Segmenter::new();
        let mut out = Vec::new();
        while out.len() < p.segments {
            let n = s.write(frame, &p, out.len());
            assert!(n > 0, "no progress");
            out.extend((0..n).map(|i| s.segment(i).to_vec()));
        }
        Ok((p, out))
    }

    #[test]
    fn ones_complement_sum_matches_the_naive_one() {
        for len in 0..40 {
            let d: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(csum_fold(csum_add(0, &d)), naive_sum(&[&d]), "len {len}");
        }
        let ones = vec![0xffu8; 70_000];
        assert_eq!(csum_fold(csum_add(0, &ones)), naive_sum(&[&ones]));
    }

    #[test]
    fn needs_csum_is_completed_from_the_pseudo_header_sum() {
        // UDP over IPv4: the field holds the pseudo-header sum, as the kernel leaves it.
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = [
            0x45, 0, 0, 32, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        f.extend(ip);
        let payload = b"hello, tunnel";
        let udp_len = 8 + payload.len() as u16;
        let pseudo = naive_sum(&[&ip[12..20], &[0, 17], &udp_len.to_be_bytes()]);
        f.extend([0x30, 0x39, 0x00, 0x35]);
        f.extend(udp_len.to_be_bytes());
        f.extend(pseudo.to_be_bytes());
        f.extend(payload);
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHdr::default()
        };
        complete_csum(&mut f, &h).unwrap();
        let udp = &f[34..];
        assert_eq!(
            naive_sum(&[&ip[12..20], &[0, 17], &udp_len.to_be_bytes(), udp]),
            0xffff
        );
        // Without the flag nothing changes; a field outside the frame is refused.
        let before = f.clone();
        complete_csum(&mut f, &VnetHdr::default()).unwrap();
        assert_eq!(f, before);
        let bad = VnetHdr {
            csum_offset: 200,
            ..h
        };
        assert!(matches!(
            complete_csum(&mut f, &bad),
            Err(SegmentError::ChecksumOutOfFrame { offset: 200, .. })
        ));
    }

    #[test]
    fn tso_flags_spread_as_linux_does() {
        let payload: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        // CWR | PSH | ACK | FIN
        let f = tcp_frame(true, 0, 0x80 | 0x08 | 0x10 | 0x01, &payload);
        let (p, segs) = segment_all(&f, &gso(true, 1000)).unwrap();
        assert_eq!((p.segments, p.l3, p.l4, p.hdr_len), (3, 14, 34, 66));
        let flags: Vec<u8> = segs.iter().map(|s| s[34 + 13]).collect();
        assert_eq!(flags, vec![0x80 | 0x10, 0x10, 0x10 | 0x08 | 0x01]);
        let ids: Vec<u16> = segs.iter().map(|s| be16(s, 18)).collect();
        assert_eq!(ids, vec![0xfffe, 0xffff, 0x0000]);
    }

    #[test]
    fn inconsistent_frames_are_refused() {
        let payload = [0u8; 100];
        let f = tcp_frame(true, 0, 0x10, &payload);
        let mut udp = gso(true, 10);
        udp.gso_type = 3;
        assert_eq!(plan(&f, &udp), Err(SegmentError::UnsupportedGso(3)));
        assert_eq!(plan(&f, &gso(true, 0)), Err(SegmentError::GsoWithoutSize));
        assert!(matches!(
            plan(&f, &gso(false, 10)),
            Err(SegmentError::WrongL3 {
                ethertype: 0x0800,
                ..
            })
        ));
        assert!(matches!(
            plan(&f[..f.len() - 1], &gso(true, 10)),
            Err(SegmentError::IpLength { .. })
        ));
        for cut in [10, 13, 20, 40, 50, 60] {
            assert!(plan(&f[..cut], &gso(true, 10)).is_err(), "cut at {cut}");
        }
        let mut frag = f.clone();
        frag[20] = 0x20; // MF
        assert_eq!(plan(&frag, &gso(true, 10)), Err(SegmentError::Fragment));
        let mut udp_proto = f.clone();
        udp_proto[23] = 17;
        assert_eq!(
            plan(&udp_proto, &gso(true, 10)),
            Err(SegmentError::NotTcp(17))
        );
        let mut doff = f.clone();
        doff[34 + 12] = 0x40;
        assert_eq!(plan(&doff, &gso(true, 10)), Err(SegmentError::BadTcpHeader));
        let mut ihl = f.clone();
        ihl[14] = 0x44;
        assert_eq!(plan(&ihl, &gso(true, 10)), Err(SegmentError::BadIpHeader));
        let v6 = tcp_frame(false, 0, 0x10, &payload);
        let mut ext = v6.clone();
        ext[14 + 6] = 0; // hop-by-hop options
        assert_eq!(plan(&ext, &gso(false, 10)), Err(SegmentError::NotTcp(0)));
    }

    proptest! {
        #[test]
        fn segments_reassemble_and_verify(
            ipv4 in any::<bool>(),
            vlans in 0usize..3,
            flags in any::<u8>(),
            len in 0usize..9000,
            mss in 1u16..2000,
            ecn in any::<bool>(),
        ) {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let f = tcp_frame(ipv4, vlans, flags, &payload);
            let mut h = gso(ipv4, mss);
            if ecn {
                h.gso_type |= GSO_ECN;
            }
            let (p, segs) = segment_all(&f, &h).unwrap();
            prop_assert_eq!(p.l3, 14 + 4 * vlans);
            prop_assert_eq!(segs.len(), len.div_ceil(usize::from(mss)).max(1));
            let mut joined = Vec::new();
            for (i, s) in segs.iter().enumerate() {
                prop_assert_eq!(&s[..p.l3], &f[..p.l3]);
                let (seq, fl, pl) = check_segment(s, p.l3, ipv4);
                prop_assert_eq!(seq, 0xffff_ff00u32.wrapping_add(joined.len() as u32));
                let last = i + 1 == segs.len();
                prop_assert!(pl.len() == usize::from(mss) || last);
                let mut want = flags;
                if !last { want &= !(TCP_FIN | TCP_PSH); }
                if i != 0 { want &= !TCP_CWR; }
                prop_assert_eq!(fl, want);
                joined.extend(pl);
            }
            prop_assert_eq!(joined, payload);
        }
    }
}
