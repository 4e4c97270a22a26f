//! `ofp_match` (OXM) parsing, emission and the OpenFlow 1.3 prerequisite table.
//!
//! Parsing validates each TLV on its own (class, field, length, width of value and
//! mask, maskability, duplicates). Whether the fields make sense *together* (the
//! prerequisites of §7.2.3.6) is a separate step, [`check_prerequisites`], because
//! only FLOW_MOD-like requests need it: the matches in PACKET_IN or flow stats
//! that we produce ourselves are consistent by construction.
//!
//! Masked values are normalised on input (`value &= mask`), as Open vSwitch does,
//! so that two rules that match the same packets compare equal in the classifier.

use super::error::OfpError;
use super::oxm::{Match, OxmField, OxmId};
use super::wire::{pad_to_8, patch_u16, put_u16, put_u32, Reader};

/// OFPMT_OXM, the only match type of OpenFlow 1.3.
const MATCH_TYPE_OXM: u16 = 1;
/// OFPMT_STANDARD (OpenFlow 1.1), which we reject with BAD_MATCH/BAD_TYPE.
const MATCH_TYPE_STANDARD: u16 = 0;

/// Mask covering the low `bits` bits.
fn width_mask(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// Read `n` (1..=16) big-endian bytes as a right-aligned u128.
fn be_to_u128(b: &[u8]) -> u128 {
    b.iter().fold(0u128, |acc, &x| (acc << 8) | x as u128)
}

/// Append the low `n` bytes of `v`, big-endian.
fn put_be_n(out: &mut Vec<u8>, v: u128, n: usize) {
    let bytes = v.to_be_bytes();
    out.extend_from_slice(&bytes[16 - n..]);
}

/// The 32-bit OXM header for a field (basic or Nicira class).
pub(crate) fn oxm_header(id: OxmId, has_mask: bool) -> u32 {
    let len = id.wire_len() * if has_mask { 2 } else { 1 };
    let (class, field) = id.class_field();
    ((class as u32) << 16) | ((field as u32) << 9) | ((has_mask as u32) << 8) | len as u32
}

/// Which error codes to use when an OXM is malformed: a match reports
/// BAD_MATCH codes, a set-field action reports BAD_ACTION/BAD_SET_* codes.
#[derive(Clone, Copy)]
pub(crate) struct OxmErrors {
    pub(crate) bad_field: OfpError,
    pub(crate) bad_len: OfpError,
    pub(crate) bad_value: OfpError,
    pub(crate) bad_mask: OfpError,
}

/// Codes for OXMs inside an `ofp_match`.
pub(crate) const MATCH_ERRORS: OxmErrors = OxmErrors {
    bad_field: OfpError::BadField,
    bad_len: OfpError::BadMatchLen,
    bad_value: OfpError::BadValue,
    bad_mask: OfpError::BadMask,
};

/// Codes for the OXM inside OFPAT_SET_FIELD.
pub(crate) const SET_FIELD_ERRORS: OxmErrors = OxmErrors {
    bad_field: OfpError::BadSetType,
    bad_len: OfpError::BadSetLen,
    bad_value: OfpError::BadSetArgument,
    bad_mask: OfpError::BadSetArgument,
};

/// Parse one OXM TLV from `r`.
pub(crate) fn decode_oxm(r: &mut Reader<'_>, e: &OxmErrors) -> Result<OxmField, OfpError> {
    let header = r.u32().map_err(|_| e.bad_len)?;
    let class = (header >> 16) as u16;
    let field = ((header >> 9) & 0x7f) as u8;
    let has_mask = header & 0x100 != 0;
    let len = (header & 0xff) as usize;
    let payload = r.bytes(len).map_err(|_| e.bad_len)?;
    let id = OxmId::from_class_field(class, field).ok_or(e.bad_field)?;
    let w = id.wire_len();
    if len != if has_mask { 2 * w } else { w } {
        return Err(e.bad_len);
    }
    let limit = width_mask(id.value_bits());
    let mut value = be_to_u128(&payload[..w]);
    if value & !limit != 0 {
        return Err(e.bad_value);
    }
    let mask = if has_mask {
        if !id.maskable() {
            return Err(e.bad_mask);
        }
        let m = be_to_u128(&payload[w..]);
        if m & !limit != 0 {
            return Err(e.bad_mask);
        }
        value &= m;
        Some(m)
    } else {
        None
    };
    Ok(OxmField { id, value, mask })
}

/// Append one OXM TLV. Values wider than the field are cut to the wire width.
pub(crate) fn encode_oxm(out: &mut Vec<u8>, f: &OxmField) {
    let w = f.id.wire_len();
    put_u32(out, oxm_header(f.id, f.mask.is_some()));
    put_be_n(out, f.value, w);
    if let Some(m) = f.mask {
        put_be_n(out, m, w);
    }
}

/// Parse an `ofp_match` (header, OXMs and padding to 8) from `r`.
pub(crate) fn decode_match(r: &mut Reader<'_>) -> Result<Match, OfpError> {
    let mtype = r.peek_u16(0).map_err(|_| OfpError::BadMatchLen)?;
    let len = r.peek_u16(2).map_err(|_| OfpError::BadMatchLen)? as usize;
    if mtype != MATCH_TYPE_OXM {
        // OFPMT_STANDARD and anything unknown are both "not a type we do".
        let _ = MATCH_TYPE_STANDARD;
        return Err(OfpError::BadMatchType);
    }
    if len < 4 {
        return Err(OfpError::BadMatchLen);
    }
    let padded = super::wire::pad8(len);
    if padded > r.remaining() {
        return Err(OfpError::BadMatchLen);
    }
    let mut whole = r.sub(padded, OfpError::BadMatchLen)?;
    whole.skip(4)?;
    let mut oxms = whole.sub(len - 4, OfpError::BadMatchLen)?;
    // Each OXM is at least 5 bytes; this bounds the allocation by the input.
    let mut fields = Vec::with_capacity(oxms.remaining() / 6);
    let mut seen: u64 = 0;
    while !oxms.is_empty() {
        let f = decode_oxm(&mut oxms, &MATCH_ERRORS)?;
        let bit = 1u64 << (f.id as u8);
        if seen & bit != 0 {
            return Err(OfpError::DupField);
        }
        seen |= bit;
        fields.push(f);
    }
    Ok(Match { fields })
}

/// Append an `ofp_match` with its padding.
pub(crate) fn encode_match(out: &mut Vec<u8>, m: &Match) {
    put_match(out, |out| {
        for f in &m.fields {
            encode_oxm(out, f);
        }
    });
}

/// An `ofp_match` (header, the OXM TLVs `oxms` writes, padding to 8 bytes).
fn put_match(out: &mut Vec<u8>, oxms: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    put_u16(out, MATCH_TYPE_OXM);
    put_u16(out, 0);
    oxms(out);
    let len = out.len() - start;
    patch_u16(out, start + 2, len as u16);
    pad_to_8(out, start);
}

/// The value of `id` if the match pins it to one exact value.
fn exact(m: &Match, id: OxmId) -> Option<u128> {
    let f = m.get(id)?;
    match f.mask {
        None => Some(f.value),
        Some(mask) if mask == width_mask(id.wire_len() as u32 * 8) => Some(f.value),
        Some(_) => None,
    }
}

const ETH_IPV4: u128 = 0x0800;
const ETH_IPV6: u128 = 0x86dd;
const ETH_ARP: u128 = 0x0806;
const ETH_RARP: u128 = 0x8035;
const ETH_MPLS: u128 = 0x8847;
const ETH_MPLS_MCAST: u128 = 0x8848;
const ETH_PBB: u128 = 0x88e7;
/// OFPVID_PRESENT.
const VID_PRESENT: u128 = 0x1000;

/// Whether the prerequisites of one field hold in `m`.
fn prereq_ok(m: &Match, id: OxmId) -> bool {
    use OxmId::*;
    let eth = exact(m, EthType);
    let is_ip = matches!(eth, Some(ETH_IPV4) | Some(ETH_IPV6));
    let proto = exact(m, IpProto);
    let icmp6_type = exact(m, Icmpv6Type);
    match id {
        InPort | Metadata | EthDst | EthSrc | EthType | VlanVid | TunnelId | TunIpv4Src
        | TunIpv4Dst => true,
        InPhyPort => m.get(InPort).is_some(),
        VlanPcp => m.get(VlanVid).is_some_and(|f| {
            // VLAN_VID != NONE: the PRESENT bit must be required, not wildcarded.
            f.value & VID_PRESENT != 0 && f.mask.is_none_or(|mk| mk & VID_PRESENT != 0)
        }),
        IpDscp | IpEcn | IpProto => is_ip,
        Ipv4Src | Ipv4Dst => eth == Some(ETH_IPV4),
        Ipv6Src | Ipv6Dst | Ipv6Flabel | Ipv6Exthdr => eth == Some(ETH_IPV6),
        TcpSrc | TcpDst => is_ip && proto == Some(6),
        UdpSrc | UdpDst => is_ip && proto == Some(17),
        SctpSrc | SctpDst => is_ip && proto == Some(132),
        Icmpv4Type | Icmpv4Code => eth == Some(ETH_IPV4) && proto == Some(1),
        Icmpv6Type | Icmpv6Code => eth == Some(ETH_IPV6) && proto == Some(58),
        ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => matches!(eth, Some(ETH_ARP) | Some(ETH_RARP)),
        Ipv6NdTarget => prereq_ok(m, Icmpv6Type) && matches!(icmp6_type, Some(135) | Some(136)),
        Ipv6NdSll => prereq_ok(m, Icmpv6Type) && icmp6_type == Some(135),
        Ipv6NdTll => prereq_ok(m, Icmpv6Type) && icmp6_type == Some(136),
        MplsLabel | MplsTc | MplsBos => matches!(eth, Some(ETH_MPLS) | Some(ETH_MPLS_MCAST)),
        PbbIsid => eth == Some(ETH_PBB),
    }
}

/// Check the OpenFlow 1.3 match-field prerequisites (spec Table 12): every field
/// present must have the fields it depends on pinned to suitable exact values,
/// e.g. `tcp_dst` needs `eth_type` IPv4 or IPv6 and `ip_proto` 6, `vlan_pcp` needs
/// a `vlan_vid` that requires a tag. Called by the flow table for FLOW_MOD; a
/// failure is reported as BAD_MATCH/BAD_PREREQ. As in Open vSwitch, ICMPv4 fields
/// require IPv4 and ICMPv6 fields IPv6 (the spec only names `ip_proto`), and ARP
/// fields are also allowed on RARP frames.
pub fn check_prerequisites(m: &Match) -> Result<(), OfpError> {
    if m.fields.iter().all(|f| prereq_ok(m, f.id)) {
        Ok(())
    } else {
        Err(OfpError::BadPrereq)
    }
}

/// The OXM TLVs of a match, without the `ofp_match` header and padding: the
/// compact form the flow table keeps a rule's match in (about 26 bytes for
/// `ip,nw_src,nw_dst` instead of a `Vec` of 64-byte fields).
pub fn encode_oxms(m: &Match) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.fields.iter().map(|f| 4 + 2 * f.id.wire_len()).sum());
    for f in &m.fields {
        encode_oxm(&mut out, f);
    }
    out
}

/// Parses TLVs produced by [`encode_oxms`] back into a match.
pub fn decode_oxms(b: &[u8]) -> Result<Match, OfpError> {
    let mut r = Reader::new(b, OfpError::BadMatchLen);
    let mut fields = Vec::with_capacity(b.len() / 6);
    while !r.is_empty() {
        fields.push(decode_oxm(&mut r, &MATCH_ERRORS)?);
    }
    Ok(Match { fields })
}

/// Appends an `ofp_match` (header, the given TLVs, padding) whose TLVs are
/// already encoded (by [`encode_oxms`]).
pub(crate) fn encode_match_oxms(out: &mut Vec<u8>, oxms: &[u8]) {
    put_match(out, |out| out.extend_from_slice(oxms));
}
