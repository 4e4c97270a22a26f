//! OXM match fields (OpenFlow 1.3 §7.2.3): the 40 basic fields, and the
//! Nicira tunnel fields controllers use over OpenFlow 1.3 (`tun_src`,
//! `tun_dst`: NXM_NX_TUN_IPV4_SRC/DST, class 0x0001, as Open vSwitch puts
//! them in OXM matches), as a uniform `(field, value, mask)` triple.
//!
//! A uniform shape (rather than one enum variant per field) keeps conversion to the
//! switch's [`crate::datapath::flow::FlowKey`] table-driven and makes property
//! tests trivial to generate. Values are right-aligned in a `u128` at the field's
//! wire width; `mask` is `None` for an exact match.

use crate::types::PortNo;

/// OFPXMC_OPENFLOW_BASIC.
pub const OXM_CLASS_BASIC: u16 = 0x8000;
/// OFPXMC_NXM_1: Nicira's extension fields (NXM_NX_*), which Open vSwitch
/// also uses inside OXM matches and set-field actions.
pub const OXM_CLASS_NXM_1: u16 = 0x0001;
/// NXM_NX_TUN_ID's field number: the same field as OXM TUNNEL_ID.
pub const NXM_NX_TUN_ID: u8 = 16;
/// NXM_NX_TUN_IPV4_SRC's field number.
pub const NXM_NX_TUN_IPV4_SRC: u8 = 31;
/// NXM_NX_TUN_IPV4_DST's field number.
pub const NXM_NX_TUN_IPV4_DST: u8 = 32;

/// The 40 OpenFlow basic OXM fields, numbered as on the wire, and the Nicira
/// tunnel fields (numbered after them; their wire class and field are
/// [`OxmId::class_field`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum OxmId {
    /// Switch input port.
    InPort = 0,
    /// Physical input port.
    InPhyPort = 1,
    /// Metadata passed between tables.
    Metadata = 2,
    /// Ethernet destination.
    EthDst = 3,
    /// Ethernet source.
    EthSrc = 4,
    /// Ethernet type.
    EthType = 5,
    /// VLAN id (with OFPVID_PRESENT, 13 bits).
    VlanVid = 6,
    /// VLAN priority.
    VlanPcp = 7,
    /// IP DSCP (6 bits).
    IpDscp = 8,
    /// IP ECN (2 bits).
    IpEcn = 9,
    /// IP protocol.
    IpProto = 10,
    /// IPv4 source.
    Ipv4Src = 11,
    /// IPv4 destination.
    Ipv4Dst = 12,
    /// TCP source port.
    TcpSrc = 13,
    /// TCP destination port.
    TcpDst = 14,
    /// UDP source port.
    UdpSrc = 15,
    /// UDP destination port.
    UdpDst = 16,
    /// SCTP source port.
    SctpSrc = 17,
    /// SCTP destination port.
    SctpDst = 18,
    /// ICMPv4 type.
    Icmpv4Type = 19,
    /// ICMPv4 code.
    Icmpv4Code = 20,
    /// ARP opcode.
    ArpOp = 21,
    /// ARP source IPv4.
    ArpSpa = 22,
    /// ARP target IPv4.
    ArpTpa = 23,
    /// ARP source hardware address.
    ArpSha = 24,
    /// ARP target hardware address.
    ArpTha = 25,
    /// IPv6 source.
    Ipv6Src = 26,
    /// IPv6 destination.
    Ipv6Dst = 27,
    /// IPv6 flow label.
    Ipv6Flabel = 28,
    /// ICMPv6 type.
    Icmpv6Type = 29,
    /// ICMPv6 code.
    Icmpv6Code = 30,
    /// ND target address.
    Ipv6NdTarget = 31,
    /// ND source link-layer address.
    Ipv6NdSll = 32,
    /// ND target link-layer address.
    Ipv6NdTll = 33,
    /// MPLS label.
    MplsLabel = 34,
    /// MPLS TC.
    MplsTc = 35,
    /// MPLS bottom-of-stack bit.
    MplsBos = 36,
    /// PBB I-SID.
    PbbIsid = 37,
    /// Logical port metadata (tunnel id).
    TunnelId = 38,
    /// IPv6 extension header pseudo-field.
    Ipv6Exthdr = 39,
    /// Tunnel outer IPv4 source (Nicira NXM_NX_TUN_IPV4_SRC, `tun_src`).
    TunIpv4Src = 40,
    /// Tunnel outer IPv4 destination (Nicira NXM_NX_TUN_IPV4_DST, `tun_dst`).
    TunIpv4Dst = 41,
}

impl OxmId {
    /// All 40 fields in wire order.
    pub const ALL: [OxmId; 40] = [
        OxmId::InPort,
        OxmId::InPhyPort,
        OxmId::Metadata,
        OxmId::EthDst,
        OxmId::EthSrc,
        OxmId::EthType,
        OxmId::VlanVid,
        OxmId::VlanPcp,
        OxmId::IpDscp,
        OxmId::IpEcn,
        OxmId::IpProto,
        OxmId::Ipv4Src,
        OxmId::Ipv4Dst,
        OxmId::TcpSrc,
        OxmId::TcpDst,
        OxmId::UdpSrc,
        OxmId::UdpDst,
        OxmId::SctpSrc,
        OxmId::SctpDst,
        OxmId::Icmpv4Type,
        OxmId::Icmpv4Code,
        OxmId::ArpOp,
        OxmId::ArpSpa,
        OxmId::ArpTpa,
        OxmId::ArpSha,
        OxmId::ArpTha,
        OxmId::Ipv6Src,
        OxmId::Ipv6Dst,
        OxmId::Ipv6Flabel,
        OxmId::Icmpv6Type,
        OxmId::Icmpv6Code,
        OxmId::Ipv6NdTarget,
        OxmId::Ipv6NdSll,
        OxmId::Ipv6NdTll,
        OxmId::MplsLabel,
        OxmId::MplsTc,
        OxmId::MplsBos,
        OxmId::PbbIsid,
        OxmId::TunnelId,
        OxmId::Ipv6Exthdr,
    ];

    /// The Nicira fields the codec knows (not in [`OxmId::ALL`], which is
    /// the OpenFlow basic class only).
    pub const NICIRA: [OxmId; 2] = [OxmId::TunIpv4Src, OxmId::TunIpv4Dst];

    /// Basic-class field number to id.
    pub fn from_u8(n: u8) -> Option<OxmId> {
        Self::ALL.get(n as usize).copied()
    }

    /// The wire `(class, field)`.
    pub const fn class_field(self) -> (u16, u8) {
        match self {
            OxmId::TunIpv4Src => (OXM_CLASS_NXM_1, NXM_NX_TUN_IPV4_SRC),
            OxmId::TunIpv4Dst => (OXM_CLASS_NXM_1, NXM_NX_TUN_IPV4_DST),
            id => (OXM_CLASS_BASIC, id as u8),
        }
    }

    /// The id of a wire `(class, field)`. NXM_NX_TUN_ID is OXM TUNNEL_ID
    /// under its Nicira name (encoded back in the basic class).
    pub fn from_class_field(class: u16, field: u8) -> Option<OxmId> {
        match (class, field) {
            (OXM_CLASS_BASIC, n) => Self::from_u8(n),
            (OXM_CLASS_NXM_1, NXM_NX_TUN_ID) => Some(OxmId::TunnelId),
            (OXM_CLASS_NXM_1, NXM_NX_TUN_IPV4_SRC) => Some(OxmId::TunIpv4Src),
            (OXM_CLASS_NXM_1, NXM_NX_TUN_IPV4_DST) => Some(OxmId::TunIpv4Dst),
            _ => None,
        }
    }

    /// Payload length on the wire (without mask), in bytes.
    pub const fn wire_len(self) -> usize {
        use OxmId::*;
        match self {
            InPort | InPhyPort | Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa | Ipv6Flabel | MplsLabel
            | TunIpv4Src | TunIpv4Dst => 4,
            Metadata | TunnelId => 8,
            EthDst | EthSrc | ArpSha | ArpTha | Ipv6NdSll | Ipv6NdTll => 6,
            EthType | VlanVid | TcpSrc | TcpDst | UdpSrc | UdpDst | SctpSrc | SctpDst | ArpOp
            | Ipv6Exthdr => 2,
            VlanPcp | IpDscp | IpEcn | IpProto | Icmpv4Type | Icmpv4Code | Icmpv6Type
            | Icmpv6Code | MplsTc | MplsBos => 1,
            Ipv6Src | Ipv6Dst | Ipv6NdTarget => 16,
            PbbIsid => 3,
        }
    }

    /// Number of meaningful bits (values with bits above this are BAD_VALUE).
    pub const fn value_bits(self) -> u32 {
        use OxmId::*;
        match self {
            VlanVid => 13,
            VlanPcp => 3,
            IpDscp => 6,
            IpEcn => 2,
            Ipv6Flabel => 20,
            MplsLabel => 20,
            MplsTc => 3,
            MplsBos => 1,
            Ipv6Exthdr => 9,
            PbbIsid => 24,
            _ => (self.wire_len() * 8) as u32,
        }
    }

    /// Whether OpenFlow 1.3 (Table 11) allows a mask on this field. We also accept
    /// masks on the L4 ports, as OVS does, because real controllers send them.
    pub const fn maskable(self) -> bool {
        use OxmId::*;
        matches!(
            self,
            Metadata
                | EthDst
                | EthSrc
                | VlanVid
                | Ipv4Src
                | Ipv4Dst
                | ArpSpa
                | ArpTpa
                | ArpSha
                | ArpTha
                | Ipv6Src
                | Ipv6Dst
                | Ipv6Flabel
                | PbbIsid
                | TunnelId
                | Ipv6Exthdr
                | TunIpv4Src
                | TunIpv4Dst
                | TcpSrc
                | TcpDst
                | UdpSrc
                | UdpDst
                | SctpSrc
                | SctpDst
        )
    }

    /// Name as `ovs-ofctl` prints it in OpenFlow 1.3 mode.
    pub const fn name(self) -> &'static str {
        use OxmId::*;
        match self {
            InPort => "in_port",
            InPhyPort => "in_phy_port",
            Metadata => "metadata",
            EthDst => "dl_dst",
            EthSrc => "dl_src",
            EthType => "dl_type",
            VlanVid => "vlan_vid",
            VlanPcp => "vlan_pcp",
            IpDscp => "ip_dscp",
            IpEcn => "nw_ecn",
            IpProto => "nw_proto",
            Ipv4Src => "nw_src",
            Ipv4Dst => "nw_dst",
            TcpSrc => "tcp_src",
            TcpDst => "tcp_dst",
            UdpSrc => "udp_src",
            UdpDst => "udp_dst",
            SctpSrc => "sctp_src",
            SctpDst => "sctp_dst",
            Icmpv4Type => "icmp_type",
            Icmpv4Code => "icmp_code",
            ArpOp => "arp_op",
            ArpSpa => "arp_spa",
            ArpTpa => "arp_tpa",
            ArpSha => "arp_sha",
            ArpTha => "arp_tha",
            Ipv6Src => "ipv6_src",
            Ipv6Dst => "ipv6_dst",
            Ipv6Flabel => "ipv6_label",
            Icmpv6Type => "icmpv6_type",
            Icmpv6Code => "icmpv6_code",
            Ipv6NdTarget => "nd_target",
            Ipv6NdSll => "nd_sll",
            Ipv6NdTll => "nd_tll",
            MplsLabel => "mpls_label",
            MplsTc => "mpls_tc",
            MplsBos => "mpls_bos",
            PbbIsid => "pbb_isid",
            TunnelId => "tun_id",
            Ipv6Exthdr => "ipv6_exthdr",
            TunIpv4Src => "tun_src",
            TunIpv4Dst => "tun_dst",
        }
    }
}

/// One OXM TLV of class OPENFLOW_BASIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OxmField {
    /// Which field.
    pub id: OxmId,
    /// Value, right-aligned at the field's wire width.
    pub value: u128,
    /// Mask (same alignment), `None` for exact.
    pub mask: Option<u128>,
}

impl OxmField {
    /// An exact match.
    pub fn exact(id: OxmId, value: u128) -> OxmField {
        OxmField {
            id,
            value,
            mask: None,
        }
    }

    /// A match on `in_port`, the commonest field.
    pub fn in_port(p: PortNo) -> OxmField {
        OxmField::exact(OxmId::InPort, p.0 as u128)
    }
}

/// An `ofp_match` of type OFPMT_OXM: an ordered list of fields, each at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Match {
    /// The fields in wire order as received (or to be sent).
    pub fields: Vec<OxmField>,
}

impl Match {
    /// The field with this id, if present.
    pub fn get(&self, id: OxmId) -> Option<&OxmField> {
        self.fields.iter().find(|f| f.id == id)
    }
}
