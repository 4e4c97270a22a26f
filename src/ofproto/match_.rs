//! Conversion between an OpenFlow [`Match`] and the switch's `(value, mask)` pair of
//! [`FlowKey`]s, with the OpenFlow 1.3 prerequisite and value checks.
//!
//! Conversion happens once per FLOW_MOD, on the Bridge actor; the classifier then
//! works on keys only. Rules also keep the original `Match`, so flow dumps echo what
//! the controller sent; [`key_to_match`] exists for matches the switch builds itself
//! (PACKET_IN pipeline fields, stats of internal flows) and for round-trip tests.

use crate::datapath::flow::{Field, FlowKey, VLAN_CFI};
use crate::openflow::error::OfpError;
use crate::openflow::oxm::{Match, OxmField, OxmId};
use crate::types::PortNo;

/// OFPVID_PRESENT: the match wants a VLAN tag (same bit as the key's CFI bit).
pub const OFPVID_PRESENT: u16 = 0x1000;
/// OFPVID_NONE: the match wants no VLAN tag.
pub const OFPVID_NONE: u16 = 0x0000;

/// Ethertypes used by prerequisites.
pub mod eth_type {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// Reverse ARP (same layout as ARP).
    pub const RARP: u16 = 0x8035;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MCAST: u16 = 0x8848;
    /// 802.1ah PBB.
    pub const PBB: u16 = 0x88e7;
}

/// IP protocol numbers used by prerequisites.
pub mod ip_proto {
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Where an OXM field lives in the key: `(field, left shift of the OXM value)`.
/// `None` for fields with no key representation (IN_PHY_PORT).
pub fn oxm_location(id: OxmId) -> Option<(Field, u32)> {
    use OxmId::*;
    Some(match id {
        InPort => (Field::InPort, 0),
        InPhyPort => return None,
        Metadata => (Field::Metadata, 0),
        EthDst => (Field::DlDst, 0),
        EthSrc => (Field::DlSrc, 0),
        EthType => (Field::DlType, 0),
        VlanVid => (Field::VlanTci, 0),
        VlanPcp => (Field::VlanTci, 13),
        IpDscp => (Field::NwTos, 2),
        IpEcn => (Field::NwTos, 0),
        IpProto | ArpOp => (Field::NwProto, 0),
        Ipv4Src | ArpSpa => (Field::NwSrc, 0),
        Ipv4Dst | ArpTpa => (Field::NwDst, 0),
        TcpSrc | UdpSrc | SctpSrc | Icmpv4Type | Icmpv6Type => (Field::TpSrc, 0),
        TcpDst | UdpDst | SctpDst | Icmpv4Code | Icmpv6Code => (Field::TpDst, 0),
        ArpSha | Ipv6NdSll => (Field::ArpSha, 0),
        ArpTha | Ipv6NdTll => (Field::ArpTha, 0),
        Ipv6Src => (Field::Ipv6Src, 0),
        Ipv6Dst => (Field::Ipv6Dst, 0),
        Ipv6Flabel => (Field::Ipv6Label, 0),
        Ipv6NdTarget => (Field::NdTarget, 0),
        MplsLabel => (Field::MplsLse, 12),
        MplsTc => (Field::MplsLse, 9),
        MplsBos => (Field::MplsLse, 8),
        PbbIsid => (Field::PbbIsid, 0),
        TunnelId => (Field::TunnelId, 0),
        Ipv6Exthdr => (Field::Ipv6Exthdr, 0),
        TunIpv4Src => (Field::TunSrc, 0),
        TunIpv4Dst => (Field::TunDst, 0),
    })
}

/// All-ones at the OXM field's meaningful width.
pub fn oxm_full_mask(id: OxmId) -> u128 {
    let b = id.value_bits();
    if b >= 128 {
        u128::MAX
    } else {
        (1u128 << b) - 1
    }
}

/// Bits an OXM value may use *in our key* (ARP opcodes are kept in 8 bits).
fn oxm_key_bits(id: OxmId) -> u128 {
    match id {
        OxmId::ArpOp => 0xff,
        _ => oxm_full_mask(id),
    }
}

/// A match's fields looked up by id, with "is it an exact match on value v" helpers.
struct Fields<'a>(&'a Match);

impl Fields<'_> {
    fn exact(&self, id: OxmId) -> Option<u128> {
        let f = self.0.get(id)?;
        match f.mask {
            None => Some(f.value),
            Some(m) if m & oxm_full_mask(id) == oxm_full_mask(id) => Some(f.value),
            _ => None,
        }
    }
    fn is(&self, id: OxmId, vals: &[u128]) -> bool {
        self.exact(id).is_some_and(|v| vals.contains(&v))
    }
}

/// Checks OpenFlow 1.3 match prerequisites (§7.2.3.6): every field whose meaning
/// depends on another field requires that field to be matched exactly to a value
/// that makes it meaningful.
pub fn check_prerequisites(m: &Match) -> Result<(), OfpError> {
    use OxmId::*;
    let f = Fields(m);
    let ip = [eth_type::IPV4 as u128, eth_type::IPV6 as u128];
    let v4 = [eth_type::IPV4 as u128];
    let v6 = [eth_type::IPV6 as u128];
    let ipproto = |p: u8| f.is(IpProto, &[p as u128]) && f.is(EthType, &ip);
    for field in &m.fields {
        let ok = match field.id {
            // The tunnel fields have no prerequisites (OVS meta-flow.c:
            // MFF_TUN_ID/SRC/DST are MFP_NONE) and take arbitrary masks.
            InPort | Metadata | EthDst | EthSrc | EthType | VlanVid | TunnelId | TunIpv4Src
            | TunIpv4Dst => true,
            InPhyPort => m.get(InPort).is_some(),
            VlanPcp => m.get(VlanVid).is_some_and(|v| {
                let mask = v.mask.unwrap_or(0x1fff);
                v.value & OFPVID_PRESENT as u128 != 0 && mask & OFPVID_PRESENT as u128 != 0
            }),
            IpDscp | IpEcn | IpProto => f.is(EthType, &ip),
            Ipv4Src | Ipv4Dst => f.is(EthType, &v4),
            TcpSrc | TcpDst => ipproto(ip_proto::TCP),
            UdpSrc | UdpDst => ipproto(ip_proto::UDP),
            SctpSrc | SctpDst => ipproto(ip_proto::SCTP),
            Icmpv4Type | Icmpv4Code => ipproto(ip_proto::ICMP) && f.is(EthType, &v4),
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => f.is(EthType, &[eth_type::ARP as u128]),
            Ipv6Src | Ipv6Dst | Ipv6Flabel | Ipv6Exthdr => f.is(EthType, &v6),
            Icmpv6Type | Icmpv6Code => ipproto(ip_proto::ICMPV6) && f.is(EthType, &v6),
            Ipv6NdTarget => ipproto(ip_proto::ICMPV6) && f.is(Icmpv6Type, &[135, 136]),
            Ipv6NdSll => ipproto(ip_proto::ICMPV6) && f.is(Icmpv6Type, &[135]),
            Ipv6NdTll => ipproto(ip_proto::ICMPV6) && f.is(Icmpv6Type, &[136]),
            MplsLabel | MplsTc | MplsBos => f.is(
                EthType,
                &[eth_type::MPLS as u128, eth_type::MPLS_MCAST as u128],
            ),
            PbbIsid => f.is(EthType, &[eth_type::PBB as u128]),
        };
        if !ok {
            return Err(OfpError::BadPrereq);
        }
    }
    Ok(())
}

/// Converts an OpenFlow match to `(value, mask)`; `value` is already masked.
///
/// Errors: a repeated field → `DupField`; a value wider than the field or an invalid
/// port/VLAN → `BadValue`; a mask on a non-maskable field → `BadMask`; value bits
/// outside the mask → `BadWildcards`; a missing prerequisite → `BadPrereq`.
pub fn match_to_key(m: &Match) -> Result<(FlowKey, FlowKey), OfpError> {
    let mut seen = 0u64;
    for f in &m.fields {
        let bit = 1u64 << (f.id as u8);
        if seen & bit != 0 {
            return Err(OfpError::DupField);
        }
        seen |= bit;
        let full = oxm_full_mask(f.id);
        if f.value & !full != 0 {
            return Err(OfpError::BadValue);
        }
        if let Some(mask) = f.mask {
            if mask & !full != 0 {
                return Err(OfpError::BadMask);
            }
            if !f.id.maskable() && mask != full {
                return Err(OfpError::BadMask);
            }
            if f.value & !mask != 0 {
                return Err(OfpError::BadWildcards);
            }
        }
    }
    check_prerequisites(m)?;

    let mut value = FlowKey::default();
    let mut mask = FlowKey::default();
    for f in &m.fields {
        let full = oxm_full_mask(f.id);
        let fmask = f.mask.unwrap_or(full);
        match f.id {
            OxmId::InPort => {
                let p = PortNo(f.value as u32);
                if p.0 == 0 || p == PortNo::ANY {
                    return Err(OfpError::BadValue);
                }
            }
            OxmId::InPhyPort => {
                // No separate physical port in this switch: it must equal in_port.
                let in_port = m.get(OxmId::InPort).map(|x| x.value);
                if in_port != Some(f.value) {
                    return Err(OfpError::BadValue);
                }
                continue;
            }
            OxmId::VlanVid if fmask == full => {
                if f.value == OFPVID_NONE as u128 {
                    // "No tag": the whole TCI is zero.
                    mask.set(Field::VlanTci, 0xffff);
                    continue;
                }
                if f.value & OFPVID_PRESENT as u128 == 0 {
                    return Err(OfpError::BadValue);
                }
            }
            OxmId::ArpOp if f.value > 0xff => return Err(OfpError::BadValue),
            _ => {}
        }
        let Some((field, shift)) = oxm_location(f.id) else {
            continue;
        };
        let kb = oxm_key_bits(f.id);
        let mv = (fmask & kb) << shift;
        let vv = (f.value & fmask & kb) << shift;
        mask.or_bits(field, mv);
        value.or_bits(field, vv);
    }
    Ok((value.masked(&mask), mask))
}

fn push(out: &mut Vec<OxmField>, id: OxmId, value: u128, mask: u128) {
    let full = oxm_full_mask(id);
    let mask = mask & full;
    if mask == 0 {
        return;
    }
    out.push(OxmField {
        id,
        value: value & mask,
        mask: if mask == full { None } else { Some(mask) },
    });
}

/// Converts `(value, mask)` back to an OpenFlow match, choosing OXM fields by the
/// key's exactly-matched `dl_type` and `nw_proto` (e.g. `nw_src` is `arp_spa` in an
/// ARP match). Bits with no OXM equivalent (`nw_ttl`, `nw_frag`, `tcp_flags`) are
/// omitted. For keys produced by [`match_to_key`], the result converts back to the
/// same `(value, mask)`.
pub fn key_to_match(value: &FlowKey, mask: &FlowKey) -> Match {
    use OxmId::*;
    let v = |f: Field| value.get(f) & mask.get(f);
    let m = |f: Field| mask.get(f);
    let exact = |f: Field| m(f) == f.full_mask();
    let dl_type = if exact(Field::DlType) {
        Some(v(Field::DlType) as u16)
    } else {
        None
    };
    let proto = if exact(Field::NwProto) {
        Some(v(Field::NwProto) as u8)
    } else {
        None
    };
    let is_arp = dl_type == Some(eth_type::ARP);
    let is_v6 = dl_type == Some(eth_type::IPV6);
    let mut out = Vec::new();

    push(&mut out, InPort, v(Field::InPort), m(Field::InPort));
    push(&mut out, Metadata, v(Field::Metadata), m(Field::Metadata));
    push(&mut out, EthDst, v(Field::DlDst), m(Field::DlDst));
    push(&mut out, EthSrc, v(Field::DlSrc), m(Field::DlSrc));
    push(&mut out, EthType, v(Field::DlType), m(Field::DlType));
    let tci_m = m(Field::VlanTci);
    let tci_v = v(Field::VlanTci);
    if tci_m == 0xffff && tci_v == 0 {
        out.push(OxmField::exact(VlanVid, OFPVID_NONE as u128));
    } else {
        push(&mut out, VlanVid, tci_v & 0x1fff, tci_m & 0x1fff);
        push(&mut out, VlanPcp, tci_v >> 13, tci_m >> 13);
    }
    push(&mut out, IpDscp, v(Field::NwTos) >> 2, m(Field::NwTos) >> 2);
    push(&mut out, IpEcn, v(Field::NwTos) & 3, m(Field::NwTos) & 3);
    if is_arp {
        // The key keeps the low 8 bits of the opcode: a full 8-bit mask is exact.
        let pm = m(Field::NwProto);
        push(
            &mut out,
            ArpOp,
            v(Field::NwProto),
            if pm == 0xff { 0xffff } else { pm },
        );
    } else {
        push(&mut out, IpProto, v(Field::NwProto), m(Field::NwProto));
    }
    let (src_id, dst_id) = if is_arp {
        (ArpSpa, ArpTpa)
    } else {
        (Ipv4Src, Ipv4Dst)
    };
    push(&mut out, src_id, v(Field::NwSrc), m(Field::NwSrc));
    push(&mut out, dst_id, v(Field::NwDst), m(Field::NwDst));
    let tp = match (proto, is_v6) {
        (Some(ip_proto::TCP), _) => Some((TcpSrc, TcpDst)),
        (Some(ip_proto::UDP), _) => Some((UdpSrc, UdpDst)),
        (Some(ip_proto::SCTP), _) => Some((SctpSrc, SctpDst)),
        (Some(ip_proto::ICMP), false) => Some((Icmpv4Type, Icmpv4Code)),
        (Some(ip_proto::ICMPV6), true) => Some((Icmpv6Type, Icmpv6Code)),
        _ => None,
    };
    if let Some((s, d)) = tp {
        push(&mut out, s, v(Field::TpSrc), m(Field::TpSrc));
        push(&mut out, d, v(Field::TpDst), m(Field::TpDst));
    }
    let (sha, tha) = if is_v6 {
        (Ipv6NdSll, Ipv6NdTll)
    } else {
        (ArpSha, ArpTha)
    };
    push(&mut out, sha, v(Field::ArpSha), m(Field::ArpSha));
    push(&mut out, tha, v(Field::ArpTha), m(Field::ArpTha));
    push(&mut out, Ipv6Src, v(Field::Ipv6Src), m(Field::Ipv6Src));
    push(&mut out, Ipv6Dst, v(Field::Ipv6Dst), m(Field::Ipv6Dst));
    push(
        &mut out,
        Ipv6Flabel,
        v(Field::Ipv6Label),
        m(Field::Ipv6Label),
    );
    push(
        &mut out,
        Ipv6NdTarget,
        v(Field::NdTarget),
        m(Field::NdTarget),
    );
    let lse_v = v(Field::MplsLse);
    let lse_m = m(Field::MplsLse);
    push(&mut out, MplsLabel, lse_v >> 12, lse_m >> 12);
    push(&mut out, MplsTc, lse_v >> 9, lse_m >> 9);
    push(&mut out, MplsBos, lse_v >> 8, lse_m >> 8);
    push(&mut out, PbbIsid, v(Field::PbbIsid), m(Field::PbbIsid));
    push(&mut out, TunnelId, v(Field::TunnelId), m(Field::TunnelId));
    push(&mut out, TunIpv4Src, v(Field::TunSrc), m(Field::TunSrc));
    push(&mut out, TunIpv4Dst, v(Field::TunDst), m(Field::TunDst));
    push(
        &mut out,
        Ipv6Exthdr,
        v(Field::Ipv6Exthdr),
        m(Field::Ipv6Exthdr),
    );
    // Keep OXM wire order for stable output.
    out.sort_by_key(|f| f.id);
    Match { fields: out }
}

/// The VLAN "present" bit of a TCI as the key stores it.
pub const fn vlan_present(tci: u16) -> bool {
    tci & VLAN_CFI != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mk(fields: Vec<OxmField>) -> Match {
        Match { fields }
    }
    fn ex(id: OxmId, v: u128) -> OxmField {
        OxmField::exact(id, v)
    }

    #[test]
    fn ip_tcp_match_converts_and_round_trips() {
        let m = mk(vec![
            ex(OxmId::InPort, 3),
            ex(OxmId::EthType, 0x800),
            ex(OxmId::IpProto, 6),
            OxmField {
                id: OxmId::Ipv4Src,
                value: 0x0a000000,
                mask: Some(0xff000000),
            },
            ex(OxmId::TcpDst, 80),
        ]);
        let (v, k) = match_to_key(&m).unwrap();
        assert_eq!(v.get(Field::NwSrc), 0x0a000000);
        assert_eq!(k.get(Field::NwSrc), 0xff000000);
        assert_eq!(v.get(Field::TpDst), 80);
        assert_eq!(k.get(Field::TpDst), 0xffff);
        assert_eq!(k.get(Field::TpSrc), 0);
        assert_eq!(key_to_match(&v, &k), m);
    }

    #[test]
    fn vlan_mappings_follow_ovs() {
        let none = mk(vec![ex(OxmId::VlanVid, 0)]);
        let (v, k) = match_to_key(&none).unwrap();
        assert_eq!((v.vlan_tci(), k.get(Field::VlanTci)), (0, 0xffff));
        assert_eq!(key_to_match(&v, &k), none);

        let any_tag = mk(vec![OxmField {
            id: OxmId::VlanVid,
            value: 0x1000,
            mask: Some(0x1000),
        }]);
        let (v, k) = match_to_key(&any_tag).unwrap();
        assert_eq!((v.vlan_tci(), k.get(Field::VlanTci)), (0x1000, 0x1000));
        assert_eq!(key_to_match(&v, &k), any_tag);

        let vid = mk(vec![ex(OxmId::VlanVid, 0x1000 | 10), ex(OxmId::VlanPcp, 5)]);
        let (v, k) = match_to_key(&vid).unwrap();
        assert_eq!(v.vlan_tci(), (5 << 13) | 0x1000 | 10);
        assert_eq!(k.get(Field::VlanTci), 0xffff);
        assert_eq!(key_to_match(&v, &k), vid);

        // A VID without the present bit is meaningless.
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::VlanVid, 10)])),
            Err(OfpError::BadValue)
        );
        // PCP needs a tag.
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::VlanPcp, 1)])),
            Err(OfpError::BadPrereq)
        );
    }

    #[test]
    fn prerequisites_and_bad_values() {
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::TcpDst, 80)])),
            Err(OfpError::BadPrereq)
        );
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::IpProto, 6), ex(OxmId::TcpDst, 80)])),
            Err(OfpError::BadPrereq)
        );
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::EthType, 0x806), ex(OxmId::Ipv4Src, 1)])),
            Err(OfpError::BadPrereq)
        );
        assert_eq!(
            match_to_key(&mk(vec![
                ex(OxmId::EthType, 0x800),
                ex(OxmId::EthType, 0x800)
            ])),
            Err(OfpError::DupField)
        );
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::VlanPcp, 9)])),
            Err(OfpError::BadValue)
        );
        assert_eq!(
            match_to_key(&mk(vec![OxmField {
                id: OxmId::EthType,
                value: 0x800,
                mask: Some(0xff00)
            }])),
            Err(OfpError::BadMask)
        );
        assert_eq!(
            match_to_key(&mk(vec![OxmField {
                id: OxmId::EthSrc,
                value: 0xff,
                mask: Some(0xf0)
            }])),
            Err(OfpError::BadWildcards)
        );
        assert_eq!(
            match_to_key(&mk(vec![ex(OxmId::InPort, 0)])),
            Err(OfpError::BadValue)
        );
        // ND needs ICMPv6 type 135/136.
        let nd = |t| {
            mk(vec![
                ex(OxmId::EthType, 0x86dd),
                ex(OxmId::IpProto, 58),
                ex(OxmId::Icmpv6Type, t),
                ex(OxmId::Ipv6NdSll, 0x020000000001),
            ])
        };
        assert!(match_to_key(&nd(135)).is_ok());
        assert_eq!(match_to_key(&nd(136)), Err(OfpError::BadPrereq));
    }

    #[test]
    fn arp_icmp_mpls_and_tos_round_trip() {
        let cases = vec![
            mk(vec![
                ex(OxmId::EthType, 0x806),
                ex(OxmId::ArpOp, 1),
                ex(OxmId::ArpSpa, 0x0a000001),
                ex(OxmId::ArpTha, 0x020000000002),
            ]),
            mk(vec![
                ex(OxmId::EthType, 0x800),
                ex(OxmId::IpDscp, 46),
                ex(OxmId::IpEcn, 1),
                ex(OxmId::IpProto, 1),
                ex(OxmId::Icmpv4Type, 8),
                ex(OxmId::Icmpv4Code, 0),
            ]),
            mk(vec![
                ex(OxmId::EthType, 0x8847),
                ex(OxmId::MplsLabel, 0xabcde),
                ex(OxmId::MplsTc, 5),
                ex(OxmId::MplsBos, 1),
            ]),
            mk(vec![
                OxmField {
                    id: OxmId::Metadata,
                    value: 0xf0,
                    mask: Some(0xf0),
                },
                ex(OxmId::EthType, 0x86dd),
                ex(OxmId::Ipv6Src, 1 << 100),
                ex(OxmId::Ipv6Flabel, 0xfffff),
                ex(OxmId::TunnelId, 77),
            ]),
        ];
        for m in cases {
            let (v, k) = match_to_key(&m).unwrap();
            assert_eq!(key_to_match(&v, &k), m, "{m:?}");
        }
        assert_eq!(
            match_to_key(&mk(vec![
                ex(OxmId::EthType, 0x806),
                ex(OxmId::ArpOp, 0x100)
            ])),
            Err(OfpError::BadValue)
        );
    }

    #[test]
    fn tunnel_fields_map_both_ways_with_masks() {
        // As `ovs-ofctl add-flow tun_id=0x5/0xff,tun_src=10.0.0.1,
        // tun_dst=10.0.0.0/24`: no prerequisites, arbitrary masks.
        let m = mk(vec![
            OxmField {
                id: OxmId::TunnelId,
                value: 5,
                mask: Some(0xff),
            },
            ex(OxmId::TunIpv4Src, 0x0a00_0001),
            OxmField {
                id: OxmId::TunIpv4Dst,
                value: 0x0a00_0000,
                mask: Some(0xffff_ff00),
            },
        ]);
        let (v, k) = match_to_key(&m).unwrap();
        assert_eq!((v.get(Field::TunnelId), k.get(Field::TunnelId)), (5, 0xff));
        assert_eq!(
            (v.get(Field::TunSrc), k.get(Field::TunSrc)),
            (0x0a00_0001, 0xffff_ffff)
        );
        assert_eq!(
            (v.get(Field::TunDst), k.get(Field::TunDst)),
            (0x0a00_0000, 0xffff_ff00)
        );
        assert_eq!(key_to_match(&v, &k), m);
        // A non-contiguous mask is fine too (OVS: MFM_FULLY).
        let odd = mk(vec![OxmField {
            id: OxmId::TunIpv4Src,
            value: 0x0100_0001,
            mask: Some(0x0f00_00ff),
        }]);
        let (v, k) = match_to_key(&odd).unwrap();
        assert_eq!(key_to_match(&v, &k), odd);
        // Value bits outside the mask are refused as for any field.
        let bad = mk(vec![OxmField {
            id: OxmId::TunIpv4Dst,
            value: 0x0a00_0001,
            mask: Some(0xffff_ff00),
        }]);
        assert_eq!(match_to_key(&bad), Err(OfpError::BadWildcards));
    }
}
