//! OpenFlow 1.0's field-level encodings, below the message codec in
//! [`super::of10`]: message numbers, 16-bit ports, the fixed `ofp_match`,
//! actions (and the Nicira actions that stand for instructions).
//!
//! Split from the message codec so that structure modules which meet OF1.0
//! pieces (the Nicira flow monitor's updates carry OF1.0 actions and ports)
//! can use them without depending on the codec that dispatches to them.

use super::action::{Action, Instruction};
use super::error::{OfpError, NX_VENDOR_ID};
use super::framing::EncodeError;
use super::framing::Version;
use super::message::*;
use super::oxm::{Match, OxmField, OxmId};
use super::wire::{Field, FieldsMut, Reader};
use crate::types::{GroupId, MacAddr, PortNo, TableId};

pub(super) const V: Version = Version::V1_0;

/// OFPT10_* message types.
#[allow(missing_docs)]
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const VENDOR: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const PORT_MOD: u8 = 15;
    pub const STATS_REQUEST: u8 = 16;
    pub const STATS_REPLY: u8 = 17;
    pub const BARRIER_REQUEST: u8 = 18;
    pub const BARRIER_REPLY: u8 = 19;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 20;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 21;
}

/// OFPST_* stats types (the same numbers as the first OF1.3 multipart types).
pub(super) mod st {
    pub(in crate::openflow) const DESC: u16 = 0;
    pub(in crate::openflow) const FLOW: u16 = 1;
    pub(in crate::openflow) const AGGREGATE: u16 = 2;
    pub(in crate::openflow) const TABLE: u16 = 3;
    pub(in crate::openflow) const PORT: u16 = 4;
    pub(in crate::openflow) const QUEUE: u16 = 5;
    pub(in crate::openflow) const VENDOR: u16 = 0xffff;
}

/// Nicira message and stats subtypes (`nicira-ext.h`, `ofp-msgs.h`).
pub(super) mod nx {
    pub(in crate::openflow) const SET_FLOW_FORMAT: u32 = 12;
    pub(in crate::openflow) const FLOW_MOD_TABLE_ID: u32 = 15;
    pub(in crate::openflow) const SET_PACKET_IN_FORMAT: u32 = 16;
    pub(in crate::openflow) const SET_CONTROLLER_ID: u32 = 20;
    pub(in crate::openflow) const FLOW_MONITOR_CANCEL: u32 = 21;
    pub(in crate::openflow) const FLOW_MONITOR_PAUSED: u32 = 22;
    pub(in crate::openflow) const FLOW_MONITOR_RESUMED: u32 = 23;
    /// NXFF_OPENFLOW10.
    pub(in crate::openflow) const FF_OPENFLOW10: u32 = 0;
    /// NXPIF_STANDARD.
    pub(in crate::openflow) const PIF_STANDARD: u32 = 0;
    /// NXST_FLOW_MONITOR, NXST_GROUP_DESC, NXST_GROUP_FEATURES.
    pub(in crate::openflow) const ST_FLOW_MONITOR: u32 = 2;
    pub(in crate::openflow) const ST_GROUP_DESC: u32 = 8;
    pub(in crate::openflow) const ST_GROUP_FEATURES: u32 = 9;
    /// NXAST_* action subtypes.
    pub(in crate::openflow) const AST_SET_QUEUE: u16 = 4;
    pub(in crate::openflow) const AST_RESUBMIT_TABLE: u16 = 14;
    pub(in crate::openflow) const AST_DEC_TTL: u16 = 18;
    pub(in crate::openflow) const AST_WRITE_METADATA: u16 = 22;
    pub(in crate::openflow) const AST_GROUP: u16 = 40;
}

/// Size of `ofp_stats_request`/`ofp_stats_reply`'s header: `ofp_header`,
/// type, flags.
pub(crate) const STATS_HEADER_LEN: usize = 12;

// ---------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------

/// OFPP_MAX in OF1.0: numbers at or above it are reserved ports.
pub(super) const OFPP10_MAX: u16 = 0xff00;
/// Distance between OF1.0 and OF1.1+ reserved port numbers.
pub(super) const OFPP11_OFFSET: u32 = 0xffff_0000;

/// A 16-bit OF1.0 port number in the 32-bit model.
pub(crate) fn port_from_wire(p: u16) -> PortNo {
    if p < OFPP10_MAX {
        PortNo(p as u32)
    } else {
        PortNo(p as u32 + OFPP11_OFFSET)
    }
}

/// A model port in 16 bits, if OF1.0 can name it.
pub(crate) fn port_to_wire(p: PortNo) -> Option<u16> {
    if p.0 < OFPP10_MAX as u32 {
        Some(p.0 as u16)
    } else if p.0 >= OFPP11_OFFSET + OFPP10_MAX as u32 {
        Some((p.0 - OFPP11_OFFSET) as u16)
    } else {
        None
    }
}

pub(super) fn port_or(p: PortNo, what: &'static str) -> Result<u16, EncodeError> {
    port_to_wire(p).ok_or(EncodeError::Unsupported { version: V, what })
}

/// `ofp_phy_port`.
pub(super) mod phy_port {
    use super::Field;
    pub(in crate::openflow) const PORT_NO: Field = 0..2;
    pub(in crate::openflow) const HW_ADDR: Field = 2..8;
    pub(in crate::openflow) const NAME: Field = 8..24;
    pub(in crate::openflow) const CONFIG: Field = 24..28;
    pub(in crate::openflow) const STATE: Field = 28..32;
    pub(in crate::openflow) const CURR: Field = 32..36;
    pub(in crate::openflow) const ADVERTISED: Field = 36..40;
    pub(in crate::openflow) const SUPPORTED: Field = 40..44;
    pub(in crate::openflow) const PEER: Field = 44..48;
    pub(in crate::openflow) const LEN: usize = 48;
}

/// OFPPC_* bits that mean the same in both versions (PORT_DOWN, NO_RECV,
/// NO_FWD, NO_PACKET_IN).
pub(super) const CONFIG_COMMON: u32 = 1 | 4 | 32 | 64;
/// OFPPS_LINK_DOWN, the one state bit both versions share (OF1.3's BLOCKED
/// and LIVE have no OF1.0 equivalent; OF1.0's STP bits none in 1.3).
pub(super) const STATE_LINK_DOWN: u32 = 1;

/// OF1.3 OFPPF_* bits to OF1.0's: speeds up to 10 Gb/s keep their bits,
/// the medium/autoneg/pause bits move down by four (40G, 100G, 1T and OTHER
/// have no OF1.0 bit), as `netdev_port_features_to_ofp10()` does.
pub(super) fn features_to_wire(f: u32) -> u32 {
    (f & 0x7f) | ((f >> 4) & 0xf80)
}

pub(super) fn features_from_wire(f: u32) -> u32 {
    (f & 0x7f) | ((f & 0xf80) << 4)
}

pub(super) fn parse_phy_port(r: &mut Reader<'_>) -> Result<PortDesc, OfpError> {
    use phy_port as F;
    let b = r.fixed(F::LEN)?;
    Ok(PortDesc {
        port_no: port_from_wire(b.u16(F::PORT_NO)),
        hw_addr: MacAddr(b.mac(F::HW_ADDR)),
        name: b.string(F::NAME),
        config: b.u32(F::CONFIG) & CONFIG_COMMON,
        state: b.u32(F::STATE) & STATE_LINK_DOWN,
        curr: features_from_wire(b.u32(F::CURR)),
        advertised: features_from_wire(b.u32(F::ADVERTISED)),
        supported: features_from_wire(b.u32(F::SUPPORTED)),
        peer: features_from_wire(b.u32(F::PEER)),
        curr_speed: 0,
        max_speed: 0,
    })
}

pub(super) fn emit_phy_port(out: &mut Vec<u8>, p: &PortDesc) -> Result<(), EncodeError> {
    use phy_port as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(
        F::PORT_NO,
        port_or(p.port_no, "a port number above 0xff00")?,
    )
    .set_bytes(F::HW_ADDR, &p.hw_addr.0)
    .set_string(F::NAME, &p.name)
    .set_u32(F::CONFIG, p.config & CONFIG_COMMON)
    .set_u32(F::STATE, p.state & STATE_LINK_DOWN)
    .set_u32(F::CURR, features_to_wire(p.curr))
    .set_u32(F::ADVERTISED, features_to_wire(p.advertised))
    .set_u32(F::SUPPORTED, features_to_wire(p.supported))
    .set_u32(F::PEER, features_to_wire(p.peer));
    b.emit(out);
    Ok(())
}

// ---------------------------------------------------------------------------
// ofp_match
// ---------------------------------------------------------------------------

/// `ofp_match` (OF1.0 §5.2.3).
pub(super) mod ofp_match {
    use super::Field;
    pub(in crate::openflow) const WILDCARDS: Field = 0..4;
    pub(in crate::openflow) const IN_PORT: Field = 4..6;
    pub(in crate::openflow) const DL_SRC: Field = 6..12;
    pub(in crate::openflow) const DL_DST: Field = 12..18;
    pub(in crate::openflow) const DL_VLAN: Field = 18..20;
    pub(in crate::openflow) const DL_VLAN_PCP: usize = 20;
    pub(in crate::openflow) const DL_TYPE: Field = 22..24;
    pub(in crate::openflow) const NW_TOS: usize = 24;
    pub(in crate::openflow) const NW_PROTO: usize = 25;
    pub(in crate::openflow) const NW_SRC: Field = 28..32;
    pub(in crate::openflow) const NW_DST: Field = 32..36;
    pub(in crate::openflow) const TP_SRC: Field = 36..38;
    pub(in crate::openflow) const TP_DST: Field = 38..40;
    pub(in crate::openflow) const LEN: usize = 40;
}

/// OFPFW10_* wildcard bits.
pub(super) mod fw {
    pub(in crate::openflow) const IN_PORT: u32 = 1 << 0;
    pub(in crate::openflow) const DL_VLAN: u32 = 1 << 1;
    pub(in crate::openflow) const DL_SRC: u32 = 1 << 2;
    pub(in crate::openflow) const DL_DST: u32 = 1 << 3;
    pub(in crate::openflow) const DL_TYPE: u32 = 1 << 4;
    pub(in crate::openflow) const NW_PROTO: u32 = 1 << 5;
    pub(in crate::openflow) const TP_SRC: u32 = 1 << 6;
    pub(in crate::openflow) const TP_DST: u32 = 1 << 7;
    pub(in crate::openflow) const NW_SRC_SHIFT: u32 = 8;
    pub(in crate::openflow) const NW_DST_SHIFT: u32 = 14;
    pub(in crate::openflow) const DL_VLAN_PCP: u32 = 1 << 20;
    pub(in crate::openflow) const NW_TOS: u32 = 1 << 21;
    pub(in crate::openflow) const ALL: u32 = (1 << 22) - 1;
}

/// OFP_VLAN_NONE: match frames without a VLAN tag.
pub(super) const VLAN_NONE: u16 = 0xffff;
/// OFPVID_PRESENT in the OXM model.
pub(super) const VID_PRESENT: u128 = 0x1000;
pub(super) const ETH_IP: u16 = 0x0800;
pub(super) const ETH_ARP: u16 = 0x0806;
pub(super) const ETH_RARP: u16 = 0x8035;
pub(super) const IPPROTO_ICMP: u8 = 1;
pub(super) const IPPROTO_TCP: u8 = 6;
pub(super) const IPPROTO_UDP: u8 = 17;
pub(super) const IPPROTO_SCTP: u8 = 132;

/// The prefix mask of an OF1.0 `nw_src`/`nw_dst` wildcard count (0 = exact,
/// 32 or more = wildcarded).
pub(super) fn prefix_mask(wild_bits: u32) -> Option<u32> {
    match wild_bits {
        0 => Some(u32::MAX),
        1..=31 => Some(u32::MAX << wild_bits),
        _ => None,
    }
}

/// Converts an OF1.0 match to the OXM model.
pub(crate) fn match_from_wire(b: &super::wire::Fields<'_>) -> Match {
    use ofp_match as F;
    let w = b.u32(F::WILDCARDS);
    let mut m = Match::default();
    let mut push = |id, value: u128, mask: Option<u128>| {
        m.fields.push(OxmField { id, value, mask });
    };
    if w & fw::IN_PORT == 0 {
        push(
            OxmId::InPort,
            port_from_wire(b.u16(F::IN_PORT)).0 as u128,
            None,
        );
    }
    if w & fw::DL_SRC == 0 {
        push(OxmId::EthSrc, mac_u128(b.mac(F::DL_SRC)), None);
    }
    if w & fw::DL_DST == 0 {
        push(OxmId::EthDst, mac_u128(b.mac(F::DL_DST)), None);
    }
    let vlan = b.u16(F::DL_VLAN);
    let has_vlan = w & fw::DL_VLAN == 0;
    if has_vlan {
        let vid = if vlan == VLAN_NONE {
            0
        } else {
            VID_PRESENT | (vlan & 0xfff) as u128
        };
        push(OxmId::VlanVid, vid, None);
    }
    // vlan_pcp needs a tag; OVS drops it otherwise.
    if w & fw::DL_VLAN_PCP == 0 && has_vlan && vlan != VLAN_NONE {
        push(OxmId::VlanPcp, (b.u8(F::DL_VLAN_PCP) & 7) as u128, None);
    }
    let dl_type = (w & fw::DL_TYPE == 0).then(|| b.u16(F::DL_TYPE));
    if let Some(t) = dl_type {
        push(OxmId::EthType, t as u128, None);
    }
    let is_ip = dl_type == Some(ETH_IP);
    let is_arp = matches!(dl_type, Some(ETH_ARP | ETH_RARP));
    let nw_src = prefix_mask((w >> fw::NW_SRC_SHIFT) & 0x3f);
    let nw_dst = prefix_mask((w >> fw::NW_DST_SHIFT) & 0x3f);
    let addr = |v: u32, mask: u32| {
        let full = mask == u32::MAX;
        ((v & mask) as u128, (!full).then_some(mask as u128))
    };
    let proto = (w & fw::NW_PROTO == 0).then(|| b.u8(F::NW_PROTO));
    if is_ip {
        if w & fw::NW_TOS == 0 {
            push(OxmId::IpDscp, (b.u8(F::NW_TOS) >> 2) as u128, None);
        }
        if let Some(p) = proto {
            push(OxmId::IpProto, p as u128, None);
        }
        if let Some(mk) = nw_src {
            let (v, mk) = addr(b.u32(F::NW_SRC), mk);
            push(OxmId::Ipv4Src, v, mk);
        }
        if let Some(mk) = nw_dst {
            let (v, mk) = addr(b.u32(F::NW_DST), mk);
            push(OxmId::Ipv4Dst, v, mk);
        }
        let ports = match proto {
            Some(IPPROTO_TCP) => Some((OxmId::TcpSrc, OxmId::TcpDst)),
            Some(IPPROTO_UDP) => Some((OxmId::UdpSrc, OxmId::UdpDst)),
            Some(IPPROTO_SCTP) => Some((OxmId::SctpSrc, OxmId::SctpDst)),
            _ => None,
        };
        if let Some((src, dst)) = ports {
            if w & fw::TP_SRC == 0 {
                push(src, b.u16(F::TP_SRC) as u128, None);
            }
            if w & fw::TP_DST == 0 {
                push(dst, b.u16(F::TP_DST) as u128, None);
            }
        } else if proto == Some(IPPROTO_ICMP) {
            // ICMP type and code travel in the low bytes of tp_src/tp_dst.
            if w & fw::TP_SRC == 0 {
                push(OxmId::Icmpv4Type, (b.u16(F::TP_SRC) & 0xff) as u128, None);
            }
            if w & fw::TP_DST == 0 {
                push(OxmId::Icmpv4Code, (b.u16(F::TP_DST) & 0xff) as u128, None);
            }
        }
    } else if is_arp {
        if let Some(p) = proto {
            push(OxmId::ArpOp, p as u128, None);
        }
        if let Some(mk) = nw_src {
            let (v, mk) = addr(b.u32(F::NW_SRC), mk);
            push(OxmId::ArpSpa, v, mk);
        }
        if let Some(mk) = nw_dst {
            let (v, mk) = addr(b.u32(F::NW_DST), mk);
            push(OxmId::ArpTpa, v, mk);
        }
    }
    m
}

pub(super) fn mac_u128(m: [u8; 6]) -> u128 {
    m.iter().fold(0u128, |a, &b| (a << 8) | b as u128)
}

pub(super) fn mac_bytes(v: u128) -> [u8; 6] {
    let b = v.to_be_bytes();
    let mut m = [0u8; 6];
    m.copy_from_slice(&b[10..]);
    m
}

/// A prefix length for a 32-bit mask, if it is a prefix.
pub(super) fn prefix_len(mask: u128) -> Option<u32> {
    let m = mask as u32;
    let n = m.leading_ones();
    (m.checked_shl(n).unwrap_or(0) == 0).then_some(n)
}

/// Writes a model match as `ofp_match`. With `lossy`, fields OF1.0 cannot
/// express are left out (the flow then reads as matching more than it does,
/// as OVS prints it in the OF1.0 flow format); without, they are an error.
pub(crate) fn match_to_wire(out: &mut Vec<u8>, m: &Match, lossy: bool) -> Result<(), EncodeError> {
    use ofp_match as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    let mut w = fw::ALL;
    let fail = |what| Err(EncodeError::Unsupported { version: V, what });
    for f in &m.fields {
        let exact = f.mask.is_none();
        let ok = match f.id {
            OxmId::InPort if exact => match port_to_wire(PortNo(f.value as u32)) {
                Some(p) => {
                    b.set_u16(F::IN_PORT, p);
                    w &= !fw::IN_PORT;
                    true
                }
                None => false,
            },
            OxmId::EthSrc if exact => {
                b.set_bytes(F::DL_SRC, &mac_bytes(f.value));
                w &= !fw::DL_SRC;
                true
            }
            OxmId::EthDst if exact => {
                b.set_bytes(F::DL_DST, &mac_bytes(f.value));
                w &= !fw::DL_DST;
                true
            }
            OxmId::VlanVid if exact => {
                let vid = if f.value & VID_PRESENT == 0 {
                    VLAN_NONE
                } else {
                    (f.value & 0xfff) as u16
                };
                b.set_u16(F::DL_VLAN, vid);
                w &= !fw::DL_VLAN;
                true
            }
            OxmId::VlanPcp => {
                b.set_u8(F::DL_VLAN_PCP, f.value as u8);
                w &= !fw::DL_VLAN_PCP;
                true
            }
            OxmId::EthType if exact => {
                b.set_u16(F::DL_TYPE, f.value as u16);
                w &= !fw::DL_TYPE;
                true
            }
            OxmId::IpDscp => {
                b.set_u8(F::NW_TOS, (f.value as u8) << 2);
                w &= !fw::NW_TOS;
                true
            }
            OxmId::IpProto | OxmId::ArpOp => {
                b.set_u8(F::NW_PROTO, f.value as u8);
                w &= !fw::NW_PROTO;
                true
            }
            OxmId::Ipv4Src | OxmId::ArpSpa | OxmId::Ipv4Dst | OxmId::ArpTpa => {
                match prefix_len(f.mask.unwrap_or(u32::MAX as u128)) {
                    Some(n) => {
                        let src = matches!(f.id, OxmId::Ipv4Src | OxmId::ArpSpa);
                        let (field, shift) = if src {
                            (F::NW_SRC, fw::NW_SRC_SHIFT)
                        } else {
                            (F::NW_DST, fw::NW_DST_SHIFT)
                        };
                        b.set_u32(field, f.value as u32);
                        w = (w & !(0x3f << shift)) | ((32 - n) << shift);
                        true
                    }
                    None => false,
                }
            }
            OxmId::TcpSrc | OxmId::UdpSrc | OxmId::SctpSrc | OxmId::Icmpv4Type if exact => {
                b.set_u16(F::TP_SRC, f.value as u16);
                w &= !fw::TP_SRC;
                true
            }
            OxmId::TcpDst | OxmId::UdpDst | OxmId::SctpDst | OxmId::Icmpv4Code if exact => {
                b.set_u16(F::TP_DST, f.value as u16);
                w &= !fw::TP_DST;
                true
            }
            _ => false,
        };
        if !ok && !lossy {
            return fail("a match field OpenFlow 1.0's ofp_match cannot express");
        }
    }
    b.set_u32(F::WILDCARDS, w);
    b.emit(out);
    Ok(())
}

/// The match as an OF1.0 peer will read it back.
pub(super) fn lossy_view(m: &Match) -> Result<Match, EncodeError> {
    let mut b = Vec::with_capacity(ofp_match::LEN);
    match_to_wire(&mut b, m, true)?;
    Ok(match_from_wire(&super::wire::Fields(&b)))
}

pub(super) fn parse_match(r: &mut Reader<'_>) -> Result<Match, OfpError> {
    Ok(match_from_wire(&r.fixed(ofp_match::LEN)?))
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

/// OFPAT10_* action types.
pub(super) mod at {
    pub(in crate::openflow) const OUTPUT: u16 = 0;
    pub(in crate::openflow) const SET_VLAN_VID: u16 = 1;
    pub(in crate::openflow) const SET_VLAN_PCP: u16 = 2;
    pub(in crate::openflow) const STRIP_VLAN: u16 = 3;
    pub(in crate::openflow) const SET_DL_SRC: u16 = 4;
    pub(in crate::openflow) const SET_DL_DST: u16 = 5;
    pub(in crate::openflow) const SET_NW_SRC: u16 = 6;
    pub(in crate::openflow) const SET_NW_DST: u16 = 7;
    pub(in crate::openflow) const SET_NW_TOS: u16 = 8;
    pub(in crate::openflow) const SET_TP_SRC: u16 = 9;
    pub(in crate::openflow) const SET_TP_DST: u16 = 10;
    pub(in crate::openflow) const ENQUEUE: u16 = 11;
    pub(in crate::openflow) const VENDOR: u16 = 0xffff;
}

/// The bitmap of OF1.0 actions FEATURES_REPLY advertises: every action this
/// codec maps onto the model (all but OFPAT10_VENDOR).
pub(crate) const ACTIONS_BITMAP: u32 = (1 << 12) - 1;

/// The layout of an 8-byte OF1.0 action: type, len, then a 4-byte argument.
pub(super) mod act {
    use super::Field;
    pub(in crate::openflow) const TYPE: Field = 0..2;
    pub(in crate::openflow) const LEN: Field = 2..4;
    pub(in crate::openflow) const ARG16: Field = 4..6;
    pub(in crate::openflow) const ARG8: usize = 4;
    pub(in crate::openflow) const ARG32: Field = 4..8;
    /// OUTPUT's max_len.
    pub(in crate::openflow) const MAX_LEN: Field = 6..8;
    /// SET_DL_*'s address (in a 16-byte action).
    pub(in crate::openflow) const MAC: Field = 4..10;
    /// ENQUEUE (16 bytes): port, pad 6, queue id.
    pub(in crate::openflow) const QUEUE_ID: Field = 12..16;
    /// VENDOR: vendor id, then Nicira's subtype.
    pub(in crate::openflow) const VENDOR: Field = 4..8;
    pub(in crate::openflow) const NX_SUBTYPE: Field = 8..10;
    /// NXAST_SET_QUEUE's queue id (and NXAST_GROUP's group id).
    pub(in crate::openflow) const NX_QUEUE_ID: Field = 12..16;
    /// NXAST_RESUBMIT_TABLE: in_port, table.
    pub(in crate::openflow) const NX_RESUBMIT_PORT: Field = 10..12;
    pub(in crate::openflow) const NX_RESUBMIT_TABLE: usize = 12;
    /// NXAST_WRITE_METADATA (32 bytes): metadata, mask.
    pub(in crate::openflow) const NX_METADATA: Field = 16..24;
    pub(in crate::openflow) const NX_METADATA_MASK: Field = 24..32;
    pub(in crate::openflow) const NX_WRITE_METADATA_LEN: usize = 32;
    pub(in crate::openflow) const SHORT: usize = 8;
    pub(in crate::openflow) const LONG: usize = 16;
}

/// The L4 protocol a match pins, for SET_TP_SRC/DST.
pub(super) fn l4_proto(m: Option<&Match>) -> Option<u8> {
    let m = m?;
    (m.get(OxmId::EthType)?.value == ETH_IP as u128)
        .then(|| m.get(OxmId::IpProto).map(|f| f.value as u8))
        .flatten()
}

/// Parses an OF1.0 action list spanning all of `r`. `m` is the flow's match
/// (SET_TP_* is a TCP, UDP or SCTP port rewrite depending on it; without a
/// matching protocol it is OFPBAC_MATCH_INCONSISTENT, as in Open vSwitch).
pub(crate) fn parse_actions(r: Reader<'_>, m: Option<&Match>) -> Result<Vec<Action>, OfpError> {
    parse_actions_with(r, m, None)
}

/// A flow's OF1.0 action list as the model's instructions: the actions as
/// one apply-actions, Nicira's NXAST_WRITE_METADATA as write-metadata and a
/// final NXAST_RESUBMIT_TABLE (in_port IN_PORT) as goto-table, the way Open
/// vSwitch writes those instructions in OpenFlow 1.0
/// (`ofp-actions.c:encode_GOTO_TABLE()`, `encode_WRITE_METADATA()`). A
/// resubmit anywhere else, or with another port, is not in the model
/// (BAD_ACTION/BAD_TYPE).
pub(crate) fn parse_instructions(r: Reader<'_>, m: &Match) -> Result<Vec<Instruction>, OfpError> {
    let mut extra = Vec::new();
    let actions = parse_actions_with(r, Some(m), Some(&mut extra))?;
    let mut out = Vec::with_capacity(1 + extra.len());
    if !actions.is_empty() {
        out.push(Instruction::ApplyActions(actions));
    }
    // Model order: apply-actions, write-metadata, goto-table.
    extra.sort_by_key(|i| matches!(i, Instruction::GotoTable(_)));
    out.extend(extra);
    Ok(out)
}

pub(super) fn parse_actions_with(
    mut r: Reader<'_>,
    m: Option<&Match>,
    mut insts: Option<&mut Vec<Instruction>>,
) -> Result<Vec<Action>, OfpError> {
    use OfpError::BadActionLen;
    let mut out = Vec::with_capacity(r.remaining() / 8);
    while !r.is_empty() {
        let t = r.peek_u16(act::TYPE.start).map_err(|_| BadActionLen)?;
        let len = r.peek_u16(act::LEN.start).map_err(|_| BadActionLen)? as usize;
        if len < act::SHORT || !len.is_multiple_of(8) || len > r.remaining() {
            return Err(BadActionLen);
        }
        let e = r.sub(len, BadActionLen)?;
        let b = super::wire::Fields(e.rest());
        let want = |n: usize| if len == n { Ok(()) } else { Err(BadActionLen) };
        let set = |id, value| Action::SetField(OxmField::exact(id, value));
        match t {
            at::OUTPUT => {
                want(act::SHORT)?;
                out.push(Action::Output {
                    port: port_from_wire(b.u16(act::ARG16)),
                    max_len: b.u16(act::MAX_LEN),
                });
            }
            at::SET_VLAN_VID => {
                want(act::SHORT)?;
                let vid = b.u16(act::ARG16);
                if vid > 0xfff {
                    return Err(OfpError::BadActionArgument);
                }
                out.push(set(OxmId::VlanVid, VID_PRESENT | vid as u128));
            }
            at::SET_VLAN_PCP => {
                want(act::SHORT)?;
                let pcp = b.u8(act::ARG8);
                if pcp > 7 {
                    return Err(OfpError::BadActionArgument);
                }
                out.push(set(OxmId::VlanPcp, pcp as u128));
            }
            at::STRIP_VLAN => {
                want(act::SHORT)?;
                out.push(Action::PopVlan);
            }
            at::SET_DL_SRC | at::SET_DL_DST => {
                want(act::LONG)?;
                let id = if t == at::SET_DL_SRC {
                    OxmId::EthSrc
                } else {
                    OxmId::EthDst
                };
                out.push(set(id, mac_u128(b.mac(act::MAC))));
            }
            at::SET_NW_SRC | at::SET_NW_DST => {
                want(act::SHORT)?;
                let id = if t == at::SET_NW_SRC {
                    OxmId::Ipv4Src
                } else {
                    OxmId::Ipv4Dst
                };
                out.push(set(id, b.u32(act::ARG32) as u128));
            }
            at::SET_NW_TOS => {
                want(act::SHORT)?;
                let tos = b.u8(act::ARG8);
                if tos & 3 != 0 {
                    return Err(OfpError::BadActionArgument);
                }
                out.push(set(OxmId::IpDscp, (tos >> 2) as u128));
            }
            at::SET_TP_SRC | at::SET_TP_DST => {
                want(act::SHORT)?;
                let src = t == at::SET_TP_SRC;
                let id = match (l4_proto(m), src) {
                    (Some(IPPROTO_TCP), true) => OxmId::TcpSrc,
                    (Some(IPPROTO_TCP), false) => OxmId::TcpDst,
                    (Some(IPPROTO_UDP), true) => OxmId::UdpSrc,
                    (Some(IPPROTO_UDP), false) => OxmId::UdpDst,
                    (Some(IPPROTO_SCTP), true) => OxmId::SctpSrc,
                    (Some(IPPROTO_SCTP), false) => OxmId::SctpDst,
                    _ => return Err(OfpError::MatchInconsistent),
                };
                out.push(set(id, b.u16(act::ARG16) as u128));
            }
            at::ENQUEUE => {
                want(act::LONG)?;
                out.push(Action::SetQueue(b.u32(act::QUEUE_ID)));
                out.push(Action::Output {
                    port: port_from_wire(b.u16(act::ARG16)),
                    max_len: 0,
                });
            }
            at::VENDOR => {
                if len < act::LONG || b.u32(act::VENDOR) != NX_VENDOR_ID {
                    return Err(OfpError::BadActionExperimenter);
                }
                let goto_seen = insts
                    .as_deref()
                    .is_some_and(|v| v.iter().any(|i| matches!(i, Instruction::GotoTable(_))));
                if goto_seen {
                    // Nothing may follow the resubmit that stands for goto.
                    return Err(OfpError::BadActionType);
                }
                match b.u16(act::NX_SUBTYPE) {
                    nx::AST_DEC_TTL => out.push(Action::DecNwTtl),
                    nx::AST_SET_QUEUE => out.push(Action::SetQueue(b.u32(act::NX_QUEUE_ID))),
                    nx::AST_GROUP if len == act::LONG => {
                        out.push(Action::Group(GroupId(b.u32(act::NX_QUEUE_ID))))
                    }
                    nx::AST_WRITE_METADATA if len == act::NX_WRITE_METADATA_LEN => {
                        let Some(v) = insts.as_deref_mut() else {
                            return Err(OfpError::BadActionType);
                        };
                        if v.iter()
                            .any(|i| matches!(i, Instruction::WriteMetadata { .. }))
                        {
                            return Err(OfpError::BadActionType);
                        }
                        v.push(Instruction::WriteMetadata {
                            value: b.u64(act::NX_METADATA),
                            mask: b.u64(act::NX_METADATA_MASK),
                        });
                    }
                    nx::AST_RESUBMIT_TABLE
                        if len == act::LONG
                            && port_from_wire(b.u16(act::NX_RESUBMIT_PORT)) == PortNo::IN_PORT =>
                    {
                        let Some(v) = insts.as_deref_mut() else {
                            return Err(OfpError::BadActionType);
                        };
                        v.push(Instruction::GotoTable(TableId(
                            b.u8(act::NX_RESUBMIT_TABLE),
                        )));
                    }
                    // OFPERR_OFPBAC_BAD_VENDOR_TYPE has no OF1.0 code we
                    // model; OVS reports unknown Nicira actions as BAD_TYPE.
                    _ => return Err(OfpError::BadActionType),
                }
            }
            _ => return Err(OfpError::BadActionType),
        }
    }
    Ok(out)
}

/// Writes model actions as OF1.0 actions for a flow with match `m` (none
/// for packet-out and group buckets). Set-queue directly followed by an
/// output becomes ENQUEUE; a TCP/UDP/SCTP port rewrite becomes SET_TP_* only
/// if the match pins that protocol (the decoder's rule, reversed); fields and
/// actions OF1.0 (and Nicira's DEC_TTL/SET_QUEUE) cannot express are an
/// error.
pub(crate) fn emit_actions_for(
    out: &mut Vec<u8>,
    actions: &[Action],
    m: Option<&Match>,
) -> Result<(), EncodeError> {
    let proto = l4_proto(m);
    let fail = |what| Err(EncodeError::Unsupported { version: V, what });
    let short = |out: &mut Vec<u8>, t: u16, f: &dyn Fn(&mut FieldsMut<8>)| {
        let mut b = FieldsMut::<{ act::SHORT }>::new();
        b.set_u16(act::TYPE, t).set_u16(act::LEN, act::SHORT as u16);
        f(&mut b);
        b.emit(out);
    };
    let nx16 = |out: &mut Vec<u8>, sub: u16, f: &dyn Fn(&mut FieldsMut<16>)| {
        let mut b = FieldsMut::<{ act::LONG }>::new();
        b.set_u16(act::TYPE, at::VENDOR)
            .set_u16(act::LEN, act::LONG as u16)
            .set_u32(act::VENDOR, NX_VENDOR_ID)
            .set_u16(act::NX_SUBTYPE, sub);
        f(&mut b);
        b.emit(out);
    };
    let mut i = 0;
    while i < actions.len() {
        match &actions[i] {
            Action::SetQueue(q) => {
                if let Some(Action::Output { port, .. }) = actions.get(i + 1) {
                    let p = port_or(*port, "an output port above 0xff00")?;
                    let mut b = FieldsMut::<{ act::LONG }>::new();
                    b.set_u16(act::TYPE, at::ENQUEUE)
                        .set_u16(act::LEN, act::LONG as u16)
                        .set_u16(act::ARG16, p)
                        .set_u32(act::QUEUE_ID, *q);
                    b.emit(out);
                    i += 2;
                    continue;
                }
                nx16(out, nx::AST_SET_QUEUE, &|b| {
                    b.set_u32(act::NX_QUEUE_ID, *q);
                });
            }
            Action::Output { port, max_len } => {
                let p = port_or(*port, "an output port above 0xff00")?;
                short(out, at::OUTPUT, &|b| {
                    b.set_u16(act::ARG16, p).set_u16(act::MAX_LEN, *max_len);
                });
            }
            Action::PopVlan => short(out, at::STRIP_VLAN, &|_| {}),
            Action::DecNwTtl => nx16(out, nx::AST_DEC_TTL, &|_| {}),
            Action::Group(g) => nx16(out, nx::AST_GROUP, &|b| {
                b.set_u32(act::NX_QUEUE_ID, g.0);
            }),
            Action::SetField(f) => {
                let v = f.value;
                match f.id {
                    OxmId::VlanVid => short(out, at::SET_VLAN_VID, &|b| {
                        b.set_u16(act::ARG16, (v & 0xfff) as u16);
                    }),
                    OxmId::VlanPcp => short(out, at::SET_VLAN_PCP, &|b| {
                        b.set_u8(act::ARG8, v as u8);
                    }),
                    OxmId::EthSrc | OxmId::EthDst => {
                        let t = if f.id == OxmId::EthSrc {
                            at::SET_DL_SRC
                        } else {
                            at::SET_DL_DST
                        };
                        let mut b = FieldsMut::<{ act::LONG }>::new();
                        b.set_u16(act::TYPE, t)
                            .set_u16(act::LEN, act::LONG as u16)
                            .set_bytes(act::MAC, &mac_bytes(v));
                        b.emit(out);
                    }
                    OxmId::Ipv4Src => short(out, at::SET_NW_SRC, &|b| {
                        b.set_u32(act::ARG32, v as u32);
                    }),
                    OxmId::Ipv4Dst => short(out, at::SET_NW_DST, &|b| {
                        b.set_u32(act::ARG32, v as u32);
                    }),
                    OxmId::IpDscp => short(out, at::SET_NW_TOS, &|b| {
                        b.set_u8(act::ARG8, (v as u8) << 2);
                    }),
                    OxmId::TcpSrc
                    | OxmId::UdpSrc
                    | OxmId::SctpSrc
                    | OxmId::TcpDst
                    | OxmId::UdpDst
                    | OxmId::SctpDst => {
                        let (want, src) = match f.id {
                            OxmId::TcpSrc => (IPPROTO_TCP, true),
                            OxmId::TcpDst => (IPPROTO_TCP, false),
                            OxmId::UdpSrc => (IPPROTO_UDP, true),
                            OxmId::UdpDst => (IPPROTO_UDP, false),
                            OxmId::SctpSrc => (IPPROTO_SCTP, true),
                            _ => (IPPROTO_SCTP, false),
                        };
                        if proto != Some(want) {
                            return fail(
                                "an L4 port rewrite whose protocol the match does not pin",
                            );
                        }
                        let t = if src { at::SET_TP_SRC } else { at::SET_TP_DST };
                        short(out, t, &|b| {
                            b.set_u16(act::ARG16, v as u16);
                        })
                    }
                    _ => return fail("a set_field OpenFlow 1.0 has no action for"),
                }
            }
            _ => return fail("an action OpenFlow 1.0 cannot express"),
        }
        i += 1;
    }
    Ok(())
}

/// [`emit_actions_for`] without a match (packet-out, group buckets).
pub(crate) fn emit_actions(out: &mut Vec<u8>, actions: &[Action]) -> Result<(), EncodeError> {
    emit_actions_for(out, actions, None)
}

/// Writes a flow's instructions as an OF1.0 action list (the inverse of
/// [`parse_instructions`]): apply-actions' actions, then write-metadata as
/// NXAST_WRITE_METADATA or goto-table as NXAST_RESUBMIT_TABLE (not both:
/// Open vSwitch cannot read that order back). OF1.0 has
/// no action set and no meters: write-actions, clear-actions and meter are
/// an error, or with `lossy` (flow stats, monitor updates) left out, as Open
/// vSwitch's OF1.0 encoder leaves them out.
pub(crate) fn emit_instructions(
    out: &mut Vec<u8>,
    insts: &[Instruction],
    m: &Match,
    lossy: bool,
) -> Result<(), EncodeError> {
    let fail = |what| Err(EncodeError::Unsupported { version: V, what });
    let mut applies = insts.iter().filter_map(|i| match i {
        Instruction::ApplyActions(a) => Some(a),
        _ => None,
    });
    if let Some(a) = applies.next() {
        emit_actions_for(out, a, Some(m))?;
    }
    let count = |f: fn(&Instruction) -> bool| insts.iter().filter(|i| f(i)).count();
    let n_md = count(|i| matches!(i, Instruction::WriteMetadata { .. }));
    let n_goto = count(|i| matches!(i, Instruction::GotoTable(_)));
    if applies.next().is_some() || n_md > 1 || n_goto > 1 {
        return fail("an instruction type repeated");
    }
    // A resubmit after NXAST_WRITE_METADATA is an action after an
    // instruction to Open vSwitch (OFPBAC_UNSUPPORTED_ORDER), and before it
    // it would run ahead of the metadata write: no OF1.0 form keeps both.
    if n_md > 0 && n_goto > 0 {
        return fail("write-metadata together with goto-table");
    }
    for i in insts {
        match i {
            Instruction::ApplyActions(_) | Instruction::GotoTable(_) => {}
            Instruction::WriteMetadata { value, mask } => {
                let mut b = FieldsMut::<{ act::NX_WRITE_METADATA_LEN }>::new();
                b.set_u16(act::TYPE, at::VENDOR)
                    .set_u16(act::LEN, act::NX_WRITE_METADATA_LEN as u16)
                    .set_u32(act::VENDOR, NX_VENDOR_ID)
                    .set_u16(act::NX_SUBTYPE, nx::AST_WRITE_METADATA)
                    .set_u64(act::NX_METADATA, *value)
                    .set_u64(act::NX_METADATA_MASK, *mask);
                b.emit(out);
            }
            _ if lossy => {}
            _ => return fail("write-actions, clear-actions or meter instructions"),
        }
    }
    for i in insts {
        if let Instruction::GotoTable(t) = i {
            let mut b = FieldsMut::<{ act::LONG }>::new();
            b.set_u16(act::TYPE, at::VENDOR)
                .set_u16(act::LEN, act::LONG as u16)
                .set_u32(act::VENDOR, NX_VENDOR_ID)
                .set_u16(act::NX_SUBTYPE, nx::AST_RESUBMIT_TABLE)
                .set_u16(act::NX_RESUBMIT_PORT, OFPP10_IN_PORT)
                .set_u8(act::NX_RESUBMIT_TABLE, t.0);
            b.emit(out);
        }
    }
    Ok(())
}

/// OFPP_IN_PORT in 16 bits.
pub(super) const OFPP10_IN_PORT: u16 = 0xfff8;
