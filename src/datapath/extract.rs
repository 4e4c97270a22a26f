//! Flow extraction: turning a received frame into a [`FlowKey`].
//!
//! This runs once per received packet on the poll thread, so it allocates nothing,
//! takes no lock and reads each header byte at most once. The same parser also
//! reports where each header starts ([`HeaderOffsets`]) so that the action
//! executor can rewrite fields without a second, subtly different parser.
//!
//! Policy (mirroring Open vSwitch's `flow_extract`):
//! - A frame too short for a header that an earlier header announces is an error:
//!   the caller drops it and counts it (`rx_invalid`). A well-formed Ethernet frame
//!   with an ethertype we do not parse is *not* an error: only L2 fields are set.
//! - 802.2 frames (length field below 0x600) get `dl_type` 0x05ff, except SNAP
//!   frames with a zero OUI, whose SNAP ethertype is used and parsed further.
//! - The *outer* VLAN tag sets `vlan_tci` (PCP | [`VLAN_CFI`] | VID; the wire DEI
//!   bit is not kept); inner tags are skipped and `dl_type` is the type after all
//!   tags.
//! - MPLS: up to [`MAX_MPLS_LABELS`] label stack entries are kept (as OVS
//!   `FLOW_MAX_MPLS_LABELS`). MPLS carries no payload type, so when the bottom
//!   label is among them, the payload is parsed as IPv4 or IPv6 if its version
//!   nibble says so, into the ordinary L3/L4 fields, and [`Field::MplsInner`]
//!   records which. That is what lets a pipeline pop the label and go on
//!   matching the inner headers within one translation (OVS recirculates the
//!   packet instead: our datapath has no recirculation, and the key already
//!   holds what a second pass would extract). A payload that does not parse
//!   leaves the L3/L4 fields zero and does not make the frame invalid.
//! - PBB (802.1ah, ethertype 0x88e7): the outer (backbone) addresses and tag are
//!   the L2 fields, the I-TAG gives [`Field::PbbIsid`], the customer frame's
//!   addresses, outer tag and type go to the `PbbC*` fields, and its payload is
//!   parsed into the L3/L4 (or MPLS) fields the same lenient way, so `pop_pbb`
//!   can hand the customer frame to the rest of the pipeline.
//! - Fields that do not apply stay zero (the [`FlowKey`] invariant).

use super::flow::{
    Field, FlowKey, FRAG_ANY, FRAG_LATER, MAX_MPLS_LABELS, MPLS_BOS, MPLS_LSES, VLAN_CFI,
};
use crate::netdev::packet::Packet;
use crate::types::PortNo;

/// `dl_type` given to 802.2 (non-Ethernet-II) frames, as OVS does.
pub const ETH_TYPE_NONE: u16 = 0x05ff;
/// Smallest value of the Ethernet type/length field that is an ethertype.
pub const ETH_TYPE_MIN: u16 = 0x0600;
/// IPv4 ethertype.
pub const ETH_TYPE_IPV4: u16 = 0x0800;
/// ARP ethertype.
pub const ETH_TYPE_ARP: u16 = 0x0806;
/// Reverse ARP ethertype (same layout as ARP).
pub const ETH_TYPE_RARP: u16 = 0x8035;
/// 802.1Q customer VLAN tag.
pub const ETH_TYPE_VLAN: u16 = 0x8100;
/// 802.1ad service VLAN tag.
pub const ETH_TYPE_QINQ: u16 = 0x88a8;
/// IPv6 ethertype.
pub const ETH_TYPE_IPV6: u16 = 0x86dd;
pub use super::flow::{ETH_TYPE_MPLS, ETH_TYPE_MPLS_MCAST, ETH_TYPE_PBB};

/// IP protocol numbers the extractor understands.
pub mod ipproto {
    /// ICMP for IPv4.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 hop-by-hop options.
    pub const HOPOPTS: u8 = 0;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// IPsec ESP.
    pub const ESP: u8 = 50;
    /// IPsec AH.
    pub const AH: u8 = 51;
    /// IPv6 "no next header".
    pub const NONE: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
}

/// Bits of the OpenFlow 1.3 `IPV6_EXTHDR` pseudo-field (OFPIEH_*), as stored in
/// [`Field::Ipv6Exthdr`].
pub mod exthdr {
    /// A "no next header" (59) header was seen.
    pub const NONEXT: u16 = 1 << 0;
    /// An ESP header is present.
    pub const ESP: u16 = 1 << 1;
    /// An authentication header is present.
    pub const AUTH: u16 = 1 << 2;
    /// One or two destination options headers are present.
    pub const DEST: u16 = 1 << 3;
    /// A fragment header is present.
    pub const FRAG: u16 = 1 << 4;
    /// A routing header is present.
    pub const ROUTER: u16 = 1 << 5;
    /// A hop-by-hop header is present.
    pub const HOP: u16 = 1 << 6;
    /// Some header appeared more often than RFC 8200 allows.
    pub const UNREP: u16 = 1 << 7;
    /// Headers appeared out of the RFC 8200 recommended order.
    pub const UNSEQ: u16 = 1 << 8;
}

/// Why a frame could not be turned into a key. The poll thread drops such frames
/// and counts them; the variants exist so tests and logs can say which header was bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtractError {
    /// A header runs past the end of the frame (or of its IP payload).
    #[error("{layer} header truncated: needs {need} bytes, only {have} available")]
    Truncated {
        /// Which header.
        layer: &'static str,
        /// Bytes (from the frame start) the header needs.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A header has an impossible version or length field.
    #[error("malformed {layer} header")]
    Malformed {
        /// Which header.
        layer: &'static str,
    },
}

/// Where the headers of a parsed frame start, so that actions can rewrite them in
/// place. Offsets are from the first byte of the frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderOffsets {
    /// Offset of the outer VLAN tag's TPID, when tagged.
    pub vlan: Option<usize>,
    /// Offset of the ethertype field that announces the L3 (or MPLS, or PBB)
    /// header: 12 for an untagged frame, after the tags otherwise (the SNAP
    /// type for 802.2 SNAP frames); 0 when the frame is shorter.
    pub eth_type: usize,
    /// Offset of the top MPLS label stack entry, for MPLS frames.
    pub mpls: Option<usize>,
    /// Offset of the PBB I-TAG TCI (after its ethertype), for PBB frames; the
    /// customer frame starts 4 bytes later.
    pub pbb: Option<usize>,
    /// Start of the ARP/IPv4/IPv6 header, when one was parsed.
    pub l3: Option<usize>,
    /// Start of the TCP/UDP/SCTP/ICMP header, when one was parsed.
    pub l4: Option<usize>,
    /// End of the IP packet (IP total/payload length); the frame length otherwise.
    /// Ethernet padding lies beyond it and is not covered by checksums.
    pub l3_end: usize,
    /// For ND messages: offset of the source link-layer address (option data).
    pub nd_sll: Option<usize>,
    /// For ND messages: offset of the target link-layer address (option data).
    pub nd_tll: Option<usize>,
}

/// Extracts the flow key of `frame`, received on `in_port`.
#[inline]
pub fn extract(frame: &[u8], in_port: PortNo) -> Result<FlowKey, ExtractError> {
    let mut key = FlowKey::default();
    let mut offs = HeaderOffsets::default();
    parse(frame, in_port, &mut key, &mut offs)?;
    Ok(key)
}

/// Extracts the flow key of a received packet: [`extract`] of its frame
/// and input port, plus its tunnel metadata (the fields a tunnel port filled
/// from the outer headers it stripped). The tunnel copy costs one branch for
/// packets that did not come from a tunnel.
#[inline]
pub fn extract_packet(pkt: &Packet) -> Result<FlowKey, ExtractError> {
    let mut key = extract(pkt.data(), pkt.in_port)?;
    if pkt.tunnel.is_set() {
        key.set_tunnel(&pkt.tunnel);
    }
    Ok(key)
}

/// Like [`extract`], also returning where each header starts.
#[inline]
pub fn extract_with_offsets(
    frame: &[u8],
    in_port: PortNo,
) -> Result<(FlowKey, HeaderOffsets), ExtractError> {
    let mut key = FlowKey::default();
    let mut offs = HeaderOffsets::default();
    parse(frame, in_port, &mut key, &mut offs)?;
    Ok((key, offs))
}

#[inline]
fn need(limit: usize, off: usize, n: usize, layer: &'static str) -> Result<(), ExtractError> {
    if off + n > limit {
        Err(ExtractError::Truncated {
            layer,
            need: off + n,
            have: limit,
        })
    } else {
        Ok(())
    }
}

#[inline]
fn be16(b: &[u8], off: usize) -> u16 {
    u16::from_be_bytes([b[off], b[off + 1]])
}

#[inline]
fn be32(b: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
fn mac48(b: &[u8], off: usize) -> u64 {
    let mut v = 0u64;
    for &x in &b[off..off + 6] {
        v = (v << 8) | x as u64;
    }
    v
}

#[inline]
fn be128(b: &[u8], off: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[off..off + 16]);
    u128::from_be_bytes(a)
}

fn parse(
    frame: &[u8],
    in_port: PortNo,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    let len = frame.len();
    offs.l3_end = len;
    key.set(Field::InPort, in_port.0 as u128);
    need(len, 0, 14, "ethernet")?;
    key.set(Field::DlDst, mac48(frame, 0) as u128);
    key.set(Field::DlSrc, mac48(frame, 6) as u128);

    let mut ty = be16(frame, 12);
    let mut off = 14;
    while ty == ETH_TYPE_VLAN || ty == ETH_TYPE_QINQ {
        need(len, off, 4, "vlan")?;
        if offs.vlan.is_none() {
            offs.vlan = Some(off - 2);
            let tci = be16(frame, off);
            key.set(Field::VlanTci, ((tci & !VLAN_CFI) | VLAN_CFI) as u128);
        }
        ty = be16(frame, off + 2);
        off += 4;
    }

    if ty < ETH_TYPE_MIN {
        // 802.2 LLC; only SNAP with a zero OUI carries a real ethertype.
        let snap = off + 8 <= len
            && frame[off] == 0xaa
            && frame[off + 1] == 0xaa
            && frame[off + 2] == 0x03
            && frame[off + 3..off + 6] == [0, 0, 0]
            && be16(frame, off + 6) >= ETH_TYPE_MIN;
        if !snap {
            key.set(Field::DlType, ETH_TYPE_NONE as u128);
            return Ok(());
        }
        ty = be16(frame, off + 6);
        off += 8;
    }
    key.set(Field::DlType, ty as u128);
    offs.eth_type = off - 2;
    if ty == ETH_TYPE_PBB {
        parse_pbb(frame, off, key, offs)
    } else {
        parse_payload(frame, ty, off, key, offs)
    }
}

/// Parses what an ethertype announces at `off`.
fn parse_payload(
    frame: &[u8],
    ty: u16,
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    match ty {
        ETH_TYPE_IPV4 => parse_ipv4(frame, off, key, offs),
        ETH_TYPE_IPV6 => parse_ipv6(frame, off, key, offs),
        ETH_TYPE_ARP | ETH_TYPE_RARP => parse_arp(frame, off, key, offs),
        ETH_TYPE_MPLS | ETH_TYPE_MPLS_MCAST => parse_mpls(frame, off, key, offs),
        _ => Ok(()),
    }
}

/// Parses an encapsulated payload whose type is a guess (under MPLS) or that
/// belongs to another frame (PBB's customer frame): a payload that does not
/// parse leaves the key and offsets as they were and the frame valid.
fn parse_inner(
    frame: &[u8],
    ty: u16,
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> bool {
    let (mut k, mut o) = (*key, *offs);
    if parse_payload(frame, ty, off, &mut k, &mut o).is_ok() {
        (*key, *offs) = (k, o);
        true
    } else {
        false
    }
}

/// The MPLS label stack at `off`: up to [`MAX_MPLS_LABELS`] entries, then the
/// payload under the bottom label, parsed by its IP version nibble.
fn parse_mpls(
    frame: &[u8],
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    let len = frame.len();
    need(len, off, 4, "mpls")?;
    offs.mpls = Some(off);
    let mut pos = off;
    for (i, f) in MPLS_LSES.iter().enumerate() {
        if i > 0 && pos + 4 > len {
            // A stack cut short by the frame end: keep what there is (OVS
            // `parse_mpls()` does the same).
            return Ok(());
        }
        let lse = be32(frame, pos);
        key.set(*f, lse as u128);
        pos += 4;
        if lse & MPLS_BOS != 0 {
            let inner = match frame.get(pos).map(|b| b >> 4) {
                Some(4) => ETH_TYPE_IPV4,
                Some(6) => ETH_TYPE_IPV6,
                _ => return Ok(()),
            };
            if parse_inner(frame, inner, pos, key, offs) {
                key.set(Field::MplsInner, inner as u128);
            }
            return Ok(());
        }
    }
    debug_assert_eq!(pos, off + 4 * MAX_MPLS_LABELS);
    Ok(())
}

/// A PBB frame's I-TAG at `off` and the customer frame after it.
fn parse_pbb(
    frame: &[u8],
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    let len = frame.len();
    // I-TAG TCI (4), C-DA, C-SA (12), customer type (2).
    need(len, off, 18, "pbb")?;
    offs.pbb = Some(off);
    key.set(Field::PbbIsid, (be32(frame, off) & PBB_ISID_MASK) as u128);
    key.set(Field::PbbCDst, mac48(frame, off + 4) as u128);
    key.set(Field::PbbCSrc, mac48(frame, off + 10) as u128);
    let mut ty = be16(frame, off + 16);
    let mut pos = off + 18;
    let mut tagged = false;
    while ty == ETH_TYPE_VLAN || ty == ETH_TYPE_QINQ {
        need(len, pos, 4, "pbb customer vlan")?;
        if !tagged {
            let tci = be16(frame, pos);
            key.set(Field::PbbCTci, ((tci & !VLAN_CFI) | VLAN_CFI) as u128);
            tagged = true;
        }
        ty = be16(frame, pos + 2);
        pos += 4;
    }
    if ty < ETH_TYPE_MIN {
        key.set(Field::PbbCType, ETH_TYPE_NONE as u128);
        return Ok(());
    }
    key.set(Field::PbbCType, ty as u128);
    parse_inner(frame, ty, pos, key, offs);
    Ok(())
}

/// I-SID bits of a PBB I-TAG TCI.
pub const PBB_ISID_MASK: u32 = 0x00ff_ffff;

fn parse_arp(
    frame: &[u8],
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    let len = frame.len();
    need(len, off, 8, "arp")?;
    let htype = be16(frame, off);
    let ptype = be16(frame, off + 2);
    let (hlen, plen) = (frame[off + 4], frame[off + 5]);
    if htype != 1 || ptype != ETH_TYPE_IPV4 || hlen != 6 || plen != 4 {
        // Not Ethernet/IPv4 ARP: nothing we can put in the key.
        return Ok(());
    }
    need(len, off, 28, "arp")?;
    offs.l3 = Some(off);
    key.set(Field::NwProto, (be16(frame, off + 6) & 0xff) as u128);
    key.set(Field::ArpSha, mac48(frame, off + 8) as u128);
    key.set(Field::NwSrc, be32(frame, off + 14) as u128);
    key.set(Field::ArpTha, mac48(frame, off + 18) as u128);
    key.set(Field::NwDst, be32(frame, off + 24) as u128);
    Ok(())
}

fn parse_ipv4(
    frame: &[u8],
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    let len = frame.len();
    need(len, off, 20, "ipv4")?;
    let vihl = frame[off];
    let ihl = (vihl & 0x0f) as usize * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return Err(ExtractError::Malformed { layer: "ipv4" });
    }
    need(len, off, ihl, "ipv4")?;
    let tot_len = be16(frame, off + 2) as usize;
    let end = if tot_len == 0 {
        // Some GSO super-frames leave the length to the segmenter.
        len
    } else {
        if tot_len < ihl {
            return Err(ExtractError::Malformed { layer: "ipv4" });
        }
        need(len, off, tot_len, "ipv4 payload")?;
        off + tot_len
    };
    offs.l3 = Some(off);
    offs.l3_end = end;
    let proto = frame[off + 9];
    key.set(Field::NwTos, frame[off + 1] as u128);
    key.set(Field::NwTtl, frame[off + 8] as u128);
    key.set(Field::NwProto, proto as u128);
    key.set(Field::NwSrc, be32(frame, off + 12) as u128);
    key.set(Field::NwDst, be32(frame, off + 16) as u128);
    let frag = be16(frame, off + 6);
    let more = frag & 0x2000 != 0;
    let frag_off = frag & 0x1fff;
    if more || frag_off != 0 {
        let bits = if frag_off != 0 {
            FRAG_ANY | FRAG_LATER
        } else {
            FRAG_ANY
        };
        key.set(Field::NwFrag, bits as u128);
        if frag_off != 0 {
            return Ok(());
        }
    }
    parse_l4(frame, proto, off + ihl, end, false, key, offs)
}

/// Rank of an extension header in the RFC 8200 recommended order.
fn exthdr_rank(nh: u8, next_of_this: u8) -> (u8, u16) {
    match nh {
        ipproto::HOPOPTS => (0, exthdr::HOP),
        // A destination options header before a routing header is the "first"
        // kind; any other is the final one.
        ipproto::DSTOPTS if next_of_this == ipproto::ROUTING => (1, exthdr::DEST),
        ipproto::ROUTING => (2, exthdr::ROUTER),
        ipproto::FRAGMENT => (3, exthdr::FRAG),
        ipproto::AH => (4, exthdr::AUTH),
        ipproto::ESP => (5, exthdr::ESP),
        _ => (6, exthdr::DEST),
    }
}

fn parse_ipv6(
    frame: &[u8],
    off: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    let len = frame.len();
    need(len, off, 40, "ipv6")?;
    let vtc = be32(frame, off);
    if vtc >> 28 != 6 {
        return Err(ExtractError::Malformed { layer: "ipv6" });
    }
    let plen = be16(frame, off + 4) as usize;
    let end = if plen == 0 {
        // Jumbogram or GSO super-frame: the frame bounds the payload.
        len
    } else {
        need(len, off, 40 + plen, "ipv6 payload")?;
        off + 40 + plen
    };
    offs.l3 = Some(off);
    offs.l3_end = end;
    key.set(Field::NwTos, ((vtc >> 20) & 0xff) as u128);
    key.set(Field::Ipv6Label, (vtc & 0xf_ffff) as u128);
    key.set(Field::NwTtl, frame[off + 7] as u128);
    key.set(Field::Ipv6Src, be128(frame, off + 8));
    key.set(Field::Ipv6Dst, be128(frame, off + 24));

    let mut nh = frame[off + 6];
    let mut pos = off + 40;
    let mut bits: u16 = 0;
    // Ranks already seen (bit per rank) and the last rank, for UNREP/UNSEQ.
    let mut seen_ranks: u8 = 0;
    let mut last_rank: u8 = 0;
    let mut later_fragment = false;
    loop {
        match nh {
            ipproto::HOPOPTS
            | ipproto::ROUTING
            | ipproto::FRAGMENT
            | ipproto::DSTOPTS
            | ipproto::AH => {}
            ipproto::ESP => {
                bits |= exthdr::ESP;
                note_rank(
                    5,
                    pos == off + 40,
                    &mut seen_ranks,
                    &mut last_rank,
                    &mut bits,
                );
                break;
            }
            ipproto::NONE => {
                bits |= exthdr::NONEXT;
                break;
            }
            _ => break,
        }
        need(end, pos, 8, "ipv6 extension")?;
        let next = frame[pos];
        let hlen = match nh {
            ipproto::FRAGMENT => 8,
            ipproto::AH => (frame[pos + 1] as usize + 2) * 4,
            _ => (frame[pos + 1] as usize + 1) * 8,
        };
        need(end, pos, hlen, "ipv6 extension")?;
        let (rank, bit) = exthdr_rank(nh, next);
        bits |= bit;
        if nh == ipproto::HOPOPTS && pos != off + 40 {
            bits |= exthdr::UNSEQ;
        }
        note_rank(
            rank,
            pos == off + 40,
            &mut seen_ranks,
            &mut last_rank,
            &mut bits,
        );
        if nh == ipproto::FRAGMENT {
            let fo = be16(frame, pos + 2);
            let frag_off = fo >> 3;
            let more = fo & 1 != 0;
            if frag_off != 0 || more {
                if frag_off != 0 {
                    key.set(Field::NwFrag, (FRAG_ANY | FRAG_LATER) as u128);
                    later_fragment = true;
                } else {
                    key.set(Field::NwFrag, FRAG_ANY as u128);
                }
            }
        }
        nh = next;
        pos += hlen;
        if later_fragment {
            break;
        }
    }
    key.set(Field::Ipv6Exthdr, bits as u128);
    key.set(Field::NwProto, nh as u128);
    if later_fragment {
        return Ok(());
    }
    parse_l4(frame, nh, pos, end, true, key, offs)
}

#[inline]
fn note_rank(rank: u8, first: bool, seen: &mut u8, last: &mut u8, bits: &mut u16) {
    if *seen & (1 << rank) != 0 {
        *bits |= exthdr::UNREP;
    }
    if !first && rank < *last {
        *bits |= exthdr::UNSEQ;
    }
    *seen |= 1 << rank;
    *last = rank;
}

fn parse_l4(
    frame: &[u8],
    proto: u8,
    off: usize,
    end: usize,
    v6: bool,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) -> Result<(), ExtractError> {
    match proto {
        ipproto::TCP => {
            need(end, off, 20, "tcp")?;
            let doff = (frame[off + 12] >> 4) as usize * 4;
            if doff < 20 {
                return Err(ExtractError::Malformed { layer: "tcp" });
            }
            need(end, off, doff, "tcp")?;
            key.set(Field::TpSrc, be16(frame, off) as u128);
            key.set(Field::TpDst, be16(frame, off + 2) as u128);
            key.set(Field::TcpFlags, (be16(frame, off + 12) & 0x0fff) as u128);
        }
        ipproto::UDP | ipproto::SCTP => {
            let hl = if proto == ipproto::UDP { 8 } else { 12 };
            need(
                end,
                off,
                hl,
                if proto == ipproto::UDP { "udp" } else { "sctp" },
            )?;
            key.set(Field::TpSrc, be16(frame, off) as u128);
            key.set(Field::TpDst, be16(frame, off + 2) as u128);
        }
        ipproto::ICMP if !v6 => {
            need(end, off, 8, "icmp")?;
            key.set(Field::TpSrc, frame[off] as u128);
            key.set(Field::TpDst, frame[off + 1] as u128);
        }
        ipproto::ICMPV6 if v6 => {
            need(end, off, 4, "icmpv6")?;
            let (ty, code) = (frame[off], frame[off + 1]);
            key.set(Field::TpSrc, ty as u128);
            key.set(Field::TpDst, code as u128);
            if (ty == 135 || ty == 136) && code == 0 {
                need(end, off, 24, "icmpv6 nd")?;
                parse_nd_options(frame, off, end, key, offs);
            }
        }
        _ => return Ok(()),
    }
    offs.l4 = Some(off);
    Ok(())
}

/// Fills the ND target and link-layer address options. Malformed options make the
/// ND fields zero (as OVS does) without failing the whole frame.
fn parse_nd_options(
    frame: &[u8],
    off: usize,
    end: usize,
    key: &mut FlowKey,
    offs: &mut HeaderOffsets,
) {
    key.set(Field::NdTarget, be128(frame, off + 8));
    let mut pos = off + 24;
    let mut sll = 0u64;
    let mut tll = 0u64;
    while pos + 8 <= end {
        let ty = frame[pos];
        let olen = frame[pos + 1] as usize * 8;
        if olen == 0 || pos + olen > end {
            key.set(Field::NdTarget, 0);
            offs.nd_sll = None;
            offs.nd_tll = None;
            return;
        }
        if olen == 8 && (ty == 1 || ty == 2) {
            let slot = if ty == 1 { &mut sll } else { &mut tll };
            if *slot != 0 {
                key.set(Field::NdTarget, 0);
                offs.nd_sll = None;
                offs.nd_tll = None;
                return;
            }
            *slot = mac48(frame, pos + 2);
            if ty == 1 {
                offs.nd_sll = Some(pos + 2);
            } else {
                offs.nd_tll = Some(pos + 2);
            }
        }
        pos += olen;
    }
    key.set(Field::ArpSha, sll as u128);
    key.set(Field::ArpTha, tll as u128);
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

    fn udp4() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1234, 53)
            .write(&mut v, &[1, 2, 3, 4])
            .unwrap();
        v
    }

    #[test]
    fn ethernet_ipv4_udp() {
        let k = extract(&udp4(), PortNo(7)).unwrap();
        assert_eq!(k.in_port(), 7);
        assert_eq!(k.dl_src().0, SRC);
        assert_eq!(k.dl_dst().0, DST);
        assert_eq!(k.dl_type(), 0x0800);
        assert_eq!(k.nw_proto(), 17);
        assert_eq!(k.get(Field::NwSrc), 0x0a00_0001);
        assert_eq!(k.get(Field::NwDst), 0x0a00_0002);
        assert_eq!(k.get(Field::NwTtl), 64);
        assert_eq!(k.get(Field::TpSrc), 1234);
        assert_eq!(k.get(Field::TpDst), 53);
        assert_eq!(k.get(Field::TcpFlags), 0);
        assert_eq!(k.vlan_tci(), 0);
        assert_eq!(k.get(Field::NwFrag), 0);
    }

    #[test]
    fn ipv4_tcp_flags_and_tos() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([1, 2, 3, 4], [5, 6, 7, 8], 3)
            .tcp(80, 4000, 1, 1000)
            .syn()
            .ack(5)
            .write(&mut v, &[])
            .unwrap();
        v[14 + 1] = 0xb8; // DSCP EF (the stale IP checksum does not matter here)
        let k = extract(&v, PortNo(1)).unwrap();
        assert_eq!(k.nw_proto(), 6);
        assert_eq!(k.get(Field::NwTos), 0xb8);
        assert_eq!(k.get(Field::TpSrc), 80);
        assert_eq!(k.get(Field::TpDst), 4000);
        assert_eq!(k.get(Field::TcpFlags), 0x012);
    }

    #[test]
    fn vlan_outer_tag_and_qinq() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .single_vlan(etherparse::VlanId::try_new(100).unwrap())
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut v, &[])
            .unwrap();
        v[14] |= 0xa0; // PCP 5
        let k = extract(&v, PortNo(1)).unwrap();
        assert_eq!(k.vlan_tci(), 0xa000 | VLAN_CFI | 100);
        assert_eq!(k.dl_type(), 0x0800);
        assert_eq!(k.get(Field::TpDst), 2);

        // 802.1ad outer tag 200 with a 802.1Q inner tag 300.
        let mut q = Vec::new();
        q.extend_from_slice(&DST);
        q.extend_from_slice(&SRC);
        q.extend_from_slice(&[0x88, 0xa8, 0x00, 200, 0x81, 0x00, 0x01, 0x2c]);
        q.extend_from_slice(&v[16..]);
        let k = extract(&q, PortNo(1)).unwrap();
        assert_eq!(k.vlan_tci(), VLAN_CFI | 200);
        assert_eq!(k.dl_type(), 0x0800);
        assert_eq!(k.get(Field::NwSrc), 0x0a00_0001);

        // Truncated tag.
        assert!(matches!(
            extract(&q[..16], PortNo(1)),
            Err(ExtractError::Truncated { layer: "vlan", .. })
        ));
    }

    #[test]
    fn llc_and_snap_and_unknown() {
        let mut f = Vec::new();
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[0x00, 0x26, 0x42, 0x42, 0x03]);
        f.resize(60, 0);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.dl_type(), ETH_TYPE_NONE);
        assert_eq!(k.nw_proto(), 0);

        // SNAP with zero OUI carrying IPv4.
        let ip = udp4();
        let mut s = Vec::new();
        s.extend_from_slice(&DST);
        s.extend_from_slice(&SRC);
        s.extend_from_slice(&[0x00, 0x40, 0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00]);
        s.extend_from_slice(&ip[14..]);
        let k = extract(&s, PortNo(1)).unwrap();
        assert_eq!(k.dl_type(), 0x0800);
        assert_eq!(k.get(Field::TpDst), 53);

        let mut u = udp4();
        u[12] = 0x88;
        u[13] = 0xcc; // LLDP: unknown to us, L2 only
        let k = extract(&u, PortNo(3)).unwrap();
        assert_eq!(k.dl_type(), 0x88cc);
        assert_eq!(k.nw_proto(), 0);
        assert_eq!(k.get(Field::NwSrc), 0);

        assert!(extract(&u[..13], PortNo(3)).is_err());
    }

    fn arp(op: u16) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0xff; 6]);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4]);
        f.extend_from_slice(&op.to_be_bytes());
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[192, 168, 0, 1]);
        f.extend_from_slice(&[0; 6]);
        f.extend_from_slice(&[192, 168, 0, 2]);
        f
    }

    #[test]
    fn arp_fields() {
        let k = extract(&arp(1), PortNo(2)).unwrap();
        assert_eq!(k.dl_type(), 0x0806);
        assert_eq!(k.nw_proto(), 1);
        assert_eq!(k.get(Field::NwSrc), 0xc0a8_0001);
        assert_eq!(k.get(Field::NwDst), 0xc0a8_0002);
        assert_eq!(
            k.get(Field::ArpSha) as u64,
            crate::types::MacAddr(SRC).to_u64()
        );
        assert_eq!(k.get(Field::ArpTha), 0);
        let f = arp(2);
        assert!(matches!(
            extract(&f[..14 + 20], PortNo(2)),
            Err(ExtractError::Truncated { layer: "arp", .. })
        ));
    }

    #[test]
    fn ipv4_fragments() {
        let mut f = udp4();
        f[14 + 6] = 0x20; // MF, offset 0
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::NwFrag), FRAG_ANY as u128);
        assert_eq!(k.get(Field::TpDst), 53);
        f[14 + 6] = 0x00;
        f[14 + 7] = 0x10; // offset 16*8
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::NwFrag), (FRAG_ANY | FRAG_LATER) as u128);
        assert_eq!(k.nw_proto(), 17);
        assert_eq!(k.get(Field::TpSrc), 0);
        assert_eq!(k.get(Field::TpDst), 0);
    }

    #[test]
    fn ipv4_truncations_and_malformed() {
        let f = udp4();
        assert!(matches!(
            extract(&f[..14 + 19], PortNo(1)),
            Err(ExtractError::Truncated { layer: "ipv4", .. })
        ));
        // IP total length says more than the frame holds.
        assert!(matches!(
            extract(&f[..f.len() - 1], PortNo(1)),
            Err(ExtractError::Truncated { .. })
        ));
        let mut bad = f.clone();
        bad[14] = 0x44; // ihl 4 words
        assert_eq!(
            extract(&bad, PortNo(1)),
            Err(ExtractError::Malformed { layer: "ipv4" })
        );
        // UDP header cut short while IP length is consistent.
        let mut short = f[..14 + 20 + 6].to_vec();
        short[14 + 2..14 + 4].copy_from_slice(&26u16.to_be_bytes());
        assert!(matches!(
            extract(&short, PortNo(1)),
            Err(ExtractError::Truncated { layer: "udp", .. })
        ));
        // Ethernet padding after the IP packet is fine.
        let mut padded = f.clone();
        padded.extend_from_slice(&[0; 10]);
        assert_eq!(
            extract(&padded, PortNo(1)).unwrap(),
            extract(&f, PortNo(1)).unwrap()
        );
    }

    #[test]
    fn icmpv4_type_code() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(1, 2)
            .write(&mut v, &[0; 8])
            .unwrap();
        let k = extract(&v, PortNo(1)).unwrap();
        assert_eq!(k.nw_proto(), 1);
        assert_eq!(k.get(Field::TpSrc), 8);
        assert_eq!(k.get(Field::TpDst), 0);
    }

    fn v6_addr(last: u8) -> [u8; 16] {
        let mut a = [0u8; 16];
        a[0] = 0x20;
        a[1] = 0x01;
        a[15] = last;
        a
    }

    #[test]
    fn ipv6_tcp_and_header_fields() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(v6_addr(1), v6_addr(2), 33)
            .tcp(22, 5555, 0, 100)
            .write(&mut v, &[9; 3])
            .unwrap();
        // traffic class 0x2e, flow label 0x12345
        v[14] = 0x62;
        v[15] = 0xe1;
        v[16] = 0x23;
        v[17] = 0x45;
        let k = extract(&v, PortNo(1)).unwrap();
        assert_eq!(k.dl_type(), 0x86dd);
        assert_eq!(k.nw_proto(), 6);
        assert_eq!(k.get(Field::NwTos), 0x2e);
        assert_eq!(k.get(Field::Ipv6Label), 0x12345);
        assert_eq!(k.get(Field::NwTtl), 33);
        assert_eq!(k.get(Field::Ipv6Src), u128::from_be_bytes(v6_addr(1)));
        assert_eq!(k.get(Field::Ipv6Dst), u128::from_be_bytes(v6_addr(2)));
        assert_eq!(k.get(Field::TpSrc), 22);
        assert_eq!(k.get(Field::Ipv6Exthdr), 0);
        assert!(extract(&v[..14 + 39], PortNo(1)).is_err());
    }

    /// Builds an IPv6 frame with raw extension headers `(type, bytes)` chained in order.
    fn v6_with_exts(exts: &[(u8, Vec<u8>)], upper: u8, l4: &[u8]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (i, (_, body)) in exts.iter().enumerate() {
            let next = exts.get(i + 1).map(|e| e.0).unwrap_or(upper);
            let mut b = body.clone();
            b[0] = next;
            payload.extend_from_slice(&b);
        }
        payload.extend_from_slice(l4);
        let mut f = Vec::new();
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        f.push(exts.first().map(|e| e.0).unwrap_or(upper));
        f.push(64);
        f.extend_from_slice(&v6_addr(1));
        f.extend_from_slice(&v6_addr(2));
        f.extend_from_slice(&payload);
        f
    }

    fn opts8() -> Vec<u8> {
        vec![0, 0, 1, 4, 0, 0, 0, 0]
    }

    #[test]
    fn ipv6_extension_headers() {
        let udp = [0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0];
        let f = v6_with_exts(&[(0, opts8()), (60, opts8())], 17, &udp);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.nw_proto(), 17);
        assert_eq!(k.get(Field::TpDst), 53);
        assert_eq!(k.get(Field::Ipv6Exthdr) as u16, exthdr::HOP | exthdr::DEST);

        // Hop-by-hop not first and repeated dest options: UNSEQ and UNREP.
        let f = v6_with_exts(&[(60, opts8()), (0, opts8()), (60, opts8())], 17, &udp);
        let bits = extract(&f, PortNo(1)).unwrap().get(Field::Ipv6Exthdr) as u16;
        assert_ne!(bits & exthdr::UNSEQ, 0);
        assert_ne!(bits & exthdr::UNREP, 0);
        assert_ne!(bits & exthdr::HOP, 0);

        // Routing + AH (len field 1 => 12 bytes) + first fragment.
        let mut ah = vec![0u8; 12];
        ah[1] = 1;
        let frag_first = vec![0, 0, 0x00, 0x01, 0, 0, 0, 9];
        let f = v6_with_exts(
            &[(43, opts8()), (44, frag_first), (51, ah)],
            6,
            &[
                0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0,
            ],
        );
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(
            k.get(Field::Ipv6Exthdr) as u16,
            exthdr::ROUTER | exthdr::FRAG | exthdr::AUTH
        );
        assert_eq!(k.get(Field::NwFrag), FRAG_ANY as u128);
        assert_eq!(k.get(Field::TcpFlags), 0x002);
        assert_eq!(k.get(Field::TpDst), 2);

        // Later fragment: no L4.
        let frag_later = vec![0, 0, 0x00, 0x08, 0, 0, 0, 9];
        let f = v6_with_exts(&[(44, frag_later)], 17, &udp);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::NwFrag), (FRAG_ANY | FRAG_LATER) as u128);
        assert_eq!(k.nw_proto(), 17);
        assert_eq!(k.get(Field::TpDst), 0);

        // ESP and no-next-header.
        let f = v6_with_exts(&[], 50, &[0; 16]);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::Ipv6Exthdr) as u16, exthdr::ESP);
        assert_eq!(k.nw_proto(), 50);
        let f = v6_with_exts(&[(0, opts8())], 59, &[]);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(
            k.get(Field::Ipv6Exthdr) as u16,
            exthdr::HOP | exthdr::NONEXT
        );

        // An extension header longer than the payload is truncation.
        let mut long = opts8();
        long[1] = 3;
        let f = v6_with_exts(&[(0, long)], 17, &udp);
        assert!(matches!(
            extract(&f, PortNo(1)),
            Err(ExtractError::Truncated { .. })
        ));
    }

    #[test]
    fn icmpv6_neighbor_discovery() {
        let target = v6_addr(9);
        let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
        ns.extend_from_slice(&target);
        ns.extend_from_slice(&[1, 1]);
        ns.extend_from_slice(&SRC);
        let f = v6_with_exts(&[], 58, &ns);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.nw_proto(), 58);
        assert_eq!(k.get(Field::TpSrc), 135);
        assert_eq!(k.get(Field::NdTarget), u128::from_be_bytes(target));
        assert_eq!(
            k.get(Field::ArpSha) as u64,
            crate::types::MacAddr(SRC).to_u64()
        );
        assert_eq!(k.get(Field::ArpTha), 0);

        let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend_from_slice(&target);
        na.extend_from_slice(&[2, 1]);
        na.extend_from_slice(&DST);
        let k = extract(&v6_with_exts(&[], 58, &na), PortNo(1)).unwrap();
        assert_eq!(
            k.get(Field::ArpTha) as u64,
            crate::types::MacAddr(DST).to_u64()
        );
        assert_eq!(k.get(Field::ArpSha), 0);

        // Zero-length option: ND fields cleared, frame still valid.
        let mut bad = na.clone();
        bad[25] = 0;
        let k = extract(&v6_with_exts(&[], 58, &bad), PortNo(1)).unwrap();
        assert_eq!(k.get(Field::NdTarget), 0);
        assert_eq!(k.get(Field::TpSrc), 136);

        // ND message shorter than its fixed part.
        assert!(extract(&v6_with_exts(&[], 58, &na[..20]), PortNo(1)).is_err());

        // Echo request: no ND fields.
        let k = extract(
            &v6_with_exts(&[], 58, &[128, 0, 0, 0, 0, 1, 0, 1]),
            PortNo(1),
        )
        .unwrap();
        assert_eq!(k.get(Field::TpSrc), 128);
        assert_eq!(k.get(Field::NdTarget), 0);
    }

    #[test]
    fn sctp_ports_and_mpls() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1, 2)
            .write(&mut v, &[0; 8])
            .unwrap();
        v[14 + 9] = 132; // pretend SCTP: 16 bytes of L4
        let k = extract(&v, PortNo(1)).unwrap();
        assert_eq!(k.nw_proto(), 132);
        assert_eq!(k.get(Field::TpSrc), 1);

        let mut m = Vec::new();
        m.extend_from_slice(&DST);
        m.extend_from_slice(&SRC);
        m.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x41, 0x40]);
        let k = extract(&m, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::MplsLse), 0x0001_4140);
        assert!(extract(&m[..16], PortNo(1)).is_err());
    }

    /// `n` MPLS entries (label 16+i, TTL 9, BoS on the last when `bos`) over `payload`.
    fn mpls_frame(n: usize, bos: bool, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&DST);
        m.extend_from_slice(&SRC);
        m.extend_from_slice(&[0x88, 0x47]);
        for i in 0..n {
            let b = if bos && i + 1 == n { 0x100 } else { 0 };
            m.extend_from_slice(&((((16 + i) as u32) << 12) | b | 9).to_be_bytes());
        }
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn mpls_stacks_and_their_payload() {
        let ip = udp4();
        // Three entries, IPv4 below: all entries and the inner L3/L4 fields.
        let f = mpls_frame(3, true, &ip[14..]);
        let (k, o) = extract_with_offsets(&f, PortNo(1)).unwrap();
        assert_eq!(k.dl_type(), ETH_TYPE_MPLS);
        assert_eq!(k.get(Field::MplsLse), (16 << 12) | 9);
        assert_eq!(k.get(Field::MplsLse1), (17 << 12) | 9);
        assert_eq!(k.get(Field::MplsLse2), (18 << 12) | 0x100 | 9);
        assert_eq!(k.get(Field::MplsInner), ETH_TYPE_IPV4 as u128);
        assert_eq!(k.l3_type(), ETH_TYPE_IPV4);
        assert_eq!(k.get(Field::TpDst), 53);
        assert_eq!((o.eth_type, o.mpls, o.l3), (12, Some(14), Some(26)));
        // Four entries: the key holds three and nothing of the payload.
        let f = mpls_frame(4, true, &ip[14..]);
        let k = extract(&f, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::MplsLse2), (18 << 12) | 9);
        assert_eq!(k.get(Field::MplsInner), 0);
        assert_eq!(k.get(Field::NwSrc), 0);
        // A payload that is not IP, or IP that does not parse: L2.5 only, and
        // the frame stays valid.
        let k = extract(&mpls_frame(1, true, &[0x12; 30]), PortNo(1)).unwrap();
        assert_eq!((k.get(Field::MplsInner), k.nw_proto()), (0, 0));
        let k = extract(&mpls_frame(1, true, &ip[14..30]), PortNo(1)).unwrap();
        assert_eq!((k.get(Field::MplsInner), k.get(Field::NwSrc)), (0, 0));
        // A stack that runs off the end keeps what there is.
        let k = extract(&mpls_frame(2, false, &[]), PortNo(1)).unwrap();
        assert_eq!(k.get(Field::MplsLse1), (17 << 12) | 9);
        assert!(extract(&mpls_frame(0, false, &[1, 2]), PortNo(1)).is_err());
    }

    #[test]
    fn pbb_backbone_and_customer_frame() {
        let ip = udp4();
        let mut f = vec![0x0e, 0, 0, 0, 0, 2, 0x0e, 0, 0, 0, 0, 1];
        // Backbone tag, I-TAG (I-SID 0xabcdef), customer frame with a C-tag.
        f.extend_from_slice(&[0x88, 0xa8, 0x00, 0x07, 0x88, 0xe7, 0x00, 0xab, 0xcd, 0xef]);
        f.extend_from_slice(&ip[..12]);
        f.extend_from_slice(&[0x81, 0x00, 0x20, 0x05]);
        f.extend_from_slice(&ip[12..]);
        let (k, o) = extract_with_offsets(&f, PortNo(1)).unwrap();
        assert_eq!(k.dl_type(), ETH_TYPE_PBB);
        assert_eq!(k.vlan_tci(), VLAN_CFI | 7);
        assert_eq!(k.get(Field::PbbIsid), 0xabcdef);
        assert_eq!(
            k.get(Field::PbbCDst) as u64,
            crate::types::MacAddr(DST).to_u64()
        );
        assert_eq!(
            k.get(Field::PbbCSrc) as u64,
            crate::types::MacAddr(SRC).to_u64()
        );
        assert_eq!(k.get(Field::PbbCTci), (0x2000 | VLAN_CFI | 5) as u128);
        assert_eq!(k.get(Field::PbbCType), ETH_TYPE_IPV4 as u128);
        assert_eq!(k.l3_type(), ETH_TYPE_IPV4);
        assert_eq!(k.get(Field::TpDst), 53);
        assert_eq!(o.pbb, Some(18));
        assert!(extract(&f[..30], PortNo(1)).is_err());
    }

    #[test]
    fn offsets_are_reported() {
        let (_, o) = extract_with_offsets(&udp4(), PortNo(1)).unwrap();
        assert_eq!(o.vlan, None);
        assert_eq!(o.l3, Some(14));
        assert_eq!(o.l4, Some(34));
        assert_eq!(o.l3_end, udp4().len());
    }

    proptest::proptest! {
        #[test]
        fn extract_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let _ = extract(&bytes, PortNo(1));
        }

        #[test]
        fn extract_never_panics_on_plausible_headers(
            ty in proptest::sample::select(vec![0x0800u16, 0x86dd, 0x0806, 0x8100, 0x88a8, 0x8847, 0x0040]),
            proto in proptest::sample::select(vec![0u8, 1, 6, 17, 43, 44, 50, 51, 58, 59, 60, 132]),
            tail in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
        ) {
            let mut f = vec![0u8; 12];
            f.extend_from_slice(&ty.to_be_bytes());
            let mut t = tail;
            if ty == 0x0800 && t.len() > 9 { t[0] = 0x45; t[9] = proto; }
            if ty == 0x86dd && t.len() > 6 { t[0] = 0x60; t[6] = proto; }
            f.extend_from_slice(&t);
            let _ = extract(&f, PortNo(1));
        }
    }
}
