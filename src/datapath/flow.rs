//! The flow key: every header field the switch can match on, in one fixed-size,
//! word-aligned value.
//!
//! One layout serves the whole switch. The datapath extracts a `FlowKey` from each
//! packet; a megaflow is a `(key, mask)` pair where the mask is itself a `FlowKey`
//! whose set bits say which bits matter; an OpenFlow match converts to the same pair;
//! and translation records the fields it looked at by OR-ing bits into a mask.
//! Keeping all of these one type means masking, hashing and comparing are loops
//! over [`FLOW_WORDS`] `u64`s with no per-field branches on the hot path.
//!
//! Invariant: bits of a field that do not apply to a packet (say `tp_src` of an ARP
//! frame) are zero in an extracted key, so exact-match hashing is well defined.

use crate::netdev::packet::TunnelMeta;
use crate::types::MacAddr;

/// MPLS unicast ethertype.
pub const ETH_TYPE_MPLS: u16 = 0x8847;
/// MPLS multicast ethertype.
pub const ETH_TYPE_MPLS_MCAST: u16 = 0x8848;
/// 802.1ah PBB (I-TAG) ethertype.
pub const ETH_TYPE_PBB: u16 = 0x88e7;

/// Number of 64-bit words in a [`FlowKey`].
pub const FLOW_WORDS: usize = 21;

/// `nw_frag` bit: the packet is a fragment (first or later).
pub const FRAG_ANY: u8 = 1;
/// `nw_frag` bit: the packet is a fragment other than the first.
pub const FRAG_LATER: u8 = 2;

/// Most MPLS label stack entries the key holds (as OVS `FLOW_MAX_MPLS_LABELS`).
pub const MAX_MPLS_LABELS: usize = 3;
/// Bottom-of-stack bit of an MPLS label stack entry.
pub const MPLS_BOS: u32 = 1 << 8;
/// TTL bits of an MPLS label stack entry.
pub const MPLS_TTL_MASK: u32 = 0xff;
/// The three MPLS label stack entries, outermost first.
pub const MPLS_LSES: [Field; MAX_MPLS_LABELS] = [Field::MplsLse, Field::MplsLse1, Field::MplsLse2];

/// `vlan_tci` bit meaning "a VLAN header is present" (the CFI/DEI bit position,
/// as OVS uses it; OpenFlow's OFPVID_PRESENT maps onto it).
pub const VLAN_CFI: u16 = 0x1000;

/// A packet's (or a match's, or a mask's) header fields.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    /// The raw words. Use the accessors; the layout is given by [`Field::location`].
    pub w: [u64; FLOW_WORDS],
}

/// Every field of a [`FlowKey`], for code that handles fields generically
/// (OXM conversion, set-field execution, mask recording, printing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// OpenFlow pipeline metadata (never set by extraction).
    Metadata,
    /// Input port number.
    InPort,
    /// Ethertype after VLAN tags (0x05ff for 802.2 frames, as OVS).
    DlType,
    /// Outer VLAN TCI: PCP(3) | present(1) | VID(12); 0 when untagged.
    VlanTci,
    /// Ethernet destination.
    DlDst,
    /// IP protocol, or the low 8 bits of the ARP opcode.
    NwProto,
    /// IP DSCP (high 6 bits) and ECN (low 2 bits), i.e. the TOS/traffic class byte.
    NwTos,
    /// Ethernet source.
    DlSrc,
    /// IP TTL / hop limit.
    NwTtl,
    /// Fragment bits, [`FRAG_ANY`] | [`FRAG_LATER`].
    NwFrag,
    /// IPv4 source, or ARP SPA.
    NwSrc,
    /// IPv4 destination, or ARP TPA.
    NwDst,
    /// TCP/UDP/SCTP source port, or ICMP(v6) type.
    TpSrc,
    /// TCP/UDP/SCTP destination port, or ICMP(v6) code.
    TpDst,
    /// TCP flags (12 bits).
    TcpFlags,
    /// OXM IPV6_EXTHDR pseudo-field bits.
    Ipv6Exthdr,
    /// IPv6 source address.
    Ipv6Src,
    /// IPv6 destination address.
    Ipv6Dst,
    /// IPv6 flow label (20 bits).
    Ipv6Label,
    /// Top MPLS label stack entry: label(20) | tc(3) | bos(1) | ttl(8).
    MplsLse,
    /// Second MPLS label stack entry (0 when the top one is the bottom).
    MplsLse1,
    /// Third MPLS label stack entry.
    MplsLse2,
    /// For MPLS frames: the ethertype of what follows the bottom label, as far
    /// as it is known (0x0800/0x86dd from the IP version nibble at extraction,
    /// or the ethertype a `push_mpls` covered), 0 when unknown. The L3/L4
    /// fields describe that payload.
    MplsInner,
    /// ARP SHA, or ND source link-layer address.
    ArpSha,
    /// ARP THA, or ND target link-layer address.
    ArpTha,
    /// IPv6 ND target address.
    NdTarget,
    /// Tunnel id (OVS `tun_id`: the VXLAN/Geneve VNI in the low 24 bits).
    /// Not in the frame: extraction copies it from the packet's
    /// [`TunnelMeta`](crate::netdev::packet::TunnelMeta), which a tunnel port
    /// filled on receive; a `SetField` on it writes that metadata back.
    TunnelId,
    /// Outer IPv4 source of the tunnel (OVS `tun_src`), from the packet's
    /// tunnel metadata like [`Field::TunnelId`]; 0 when not tunnelled.
    TunSrc,
    /// Outer IPv4 destination of the tunnel (OVS `tun_dst`), likewise.
    TunDst,
    /// PBB I-SID (24 bits).
    PbbIsid,
    /// For PBB (802.1ah) frames: the customer frame's destination (C-DA).
    PbbCDst,
    /// For PBB frames: the customer frame's source (C-SA).
    PbbCSrc,
    /// For PBB frames: the customer frame's outer VLAN TCI, as [`Field::VlanTci`].
    PbbCTci,
    /// For PBB frames: the customer frame's ethertype after its tags. The
    /// L3/L4 (and MPLS) fields describe the customer frame.
    PbbCType,
}

impl Field {
    /// All fields, in layout order.
    pub const ALL: [Field; 34] = [
        Field::Metadata,
        Field::InPort,
        Field::DlType,
        Field::VlanTci,
        Field::DlDst,
        Field::NwProto,
        Field::NwTos,
        Field::DlSrc,
        Field::NwTtl,
        Field::NwFrag,
        Field::NwSrc,
        Field::NwDst,
        Field::TpSrc,
        Field::TpDst,
        Field::TcpFlags,
        Field::Ipv6Exthdr,
        Field::Ipv6Src,
        Field::Ipv6Dst,
        Field::Ipv6Label,
        Field::MplsLse,
        Field::MplsLse1,
        Field::MplsLse2,
        Field::MplsInner,
        Field::ArpSha,
        Field::ArpTha,
        Field::NdTarget,
        Field::TunnelId,
        Field::PbbIsid,
        Field::PbbCDst,
        Field::PbbCSrc,
        Field::PbbCTci,
        Field::PbbCType,
        Field::TunSrc,
        Field::TunDst,
    ];

    /// `(word, bit shift, width in bits)`. Fields of 128 bits take two words,
    /// `word` holding the high 64 bits and `word + 1` the low 64.
    pub const fn location(self) -> (usize, u32, u32) {
        match self {
            Field::Metadata => (0, 0, 64),
            Field::InPort => (1, 0, 32),
            Field::DlType => (1, 32, 16),
            Field::VlanTci => (1, 48, 16),
            Field::DlDst => (2, 0, 48),
            Field::NwProto => (2, 48, 8),
            Field::NwTos => (2, 56, 8),
            Field::DlSrc => (3, 0, 48),
            Field::NwTtl => (3, 48, 8),
            Field::NwFrag => (3, 56, 8),
            Field::NwSrc => (4, 0, 32),
            Field::NwDst => (4, 32, 32),
            Field::TpSrc => (5, 0, 16),
            Field::TpDst => (5, 16, 16),
            Field::TcpFlags => (5, 32, 16),
            Field::Ipv6Exthdr => (5, 48, 16),
            Field::Ipv6Src => (6, 0, 128),
            Field::Ipv6Dst => (8, 0, 128),
            Field::Ipv6Label => (10, 0, 32),
            Field::MplsLse => (10, 32, 32),
            Field::ArpSha => (11, 0, 48),
            Field::ArpTha => (12, 0, 48),
            Field::NdTarget => (13, 0, 128),
            Field::TunnelId => (15, 0, 64),
            Field::PbbIsid => (16, 0, 32),
            Field::MplsLse1 => (16, 32, 32),
            Field::MplsLse2 => (17, 0, 32),
            Field::MplsInner => (17, 32, 16),
            Field::PbbCType => (17, 48, 16),
            Field::PbbCDst => (18, 0, 48),
            Field::PbbCTci => (18, 48, 16),
            Field::PbbCSrc => (19, 0, 48),
            Field::TunSrc => (20, 0, 32),
            Field::TunDst => (20, 32, 32),
        }
    }

    /// Width of the field in bits.
    pub const fn bits(self) -> u32 {
        self.location().2
    }

    /// All-ones value of the field's width.
    pub const fn full_mask(self) -> u128 {
        let b = self.bits();
        if b == 128 {
            u128::MAX
        } else {
            (1u128 << b) - 1
        }
    }

    /// The name OVS prints for this field in flow dumps.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Metadata => "metadata",
            Field::InPort => "in_port",
            Field::DlType => "dl_type",
            Field::VlanTci => "vlan_tci",
            Field::DlDst => "dl_dst",
            Field::NwProto => "nw_proto",
            Field::NwTos => "nw_tos",
            Field::DlSrc => "dl_src",
            Field::NwTtl => "nw_ttl",
            Field::NwFrag => "nw_frag",
            Field::NwSrc => "nw_src",
            Field::NwDst => "nw_dst",
            Field::TpSrc => "tp_src",
            Field::TpDst => "tp_dst",
            Field::TcpFlags => "tcp_flags",
            Field::Ipv6Exthdr => "ipv6_exthdr",
            Field::Ipv6Src => "ipv6_src",
            Field::Ipv6Dst => "ipv6_dst",
            Field::Ipv6Label => "ipv6_label",
            Field::MplsLse => "mpls_lse",
            Field::ArpSha => "arp_sha",
            Field::ArpTha => "arp_tha",
            Field::NdTarget => "nd_target",
            Field::TunnelId => "tun_id",
            Field::PbbIsid => "pbb_isid",
            Field::MplsLse1 => "mpls_lse1",
            Field::MplsLse2 => "mpls_lse2",
            Field::MplsInner => "mpls_inner",
            Field::PbbCDst => "pbb_c_dst",
            Field::PbbCSrc => "pbb_c_src",
            Field::PbbCTci => "pbb_c_tci",
            Field::PbbCType => "pbb_c_type",
            Field::TunSrc => "tun_src",
            Field::TunDst => "tun_dst",
        }
    }
}

impl FlowKey {
    /// Reads a field (zero-extended to 128 bits).
    #[inline]
    pub fn get(&self, f: Field) -> u128 {
        let (w, shift, bits) = f.location();
        if bits == 128 {
            ((self.w[w] as u128) << 64) | self.w[w + 1] as u128
        } else if bits == 64 {
            self.w[w] as u128
        } else {
            ((self.w[w] >> shift) & ((1u64 << bits) - 1)) as u128
        }
    }

    /// Writes a field; bits beyond the field's width are ignored.
    #[inline]
    pub fn set(&mut self, f: Field, v: u128) {
        let (w, shift, bits) = f.location();
        if bits == 128 {
            self.w[w] = (v >> 64) as u64;
            self.w[w + 1] = v as u64;
        } else if bits == 64 {
            self.w[w] = v as u64;
        } else {
            let m = ((1u64 << bits) - 1) << shift;
            self.w[w] = (self.w[w] & !m) | (((v as u64) << shift) & m);
        }
    }

    /// Sets every bit of a field, for masks: "this whole field was looked at".
    #[inline]
    pub fn set_exact(&mut self, f: Field) {
        self.set(f, f.full_mask());
    }

    /// ORs `v` into the field, for masks: "these bits were looked at".
    #[inline]
    pub fn or_bits(&mut self, f: Field, v: u128) {
        let cur = self.get(f);
        self.set(f, cur | v);
    }

    /// `self & mask`, word by word.
    #[inline]
    pub fn masked(&self, mask: &FlowKey) -> FlowKey {
        let mut out = FlowKey::default();
        for i in 0..FLOW_WORDS {
            out.w[i] = self.w[i] & mask.w[i];
        }
        out
    }

    /// OR of two masks.
    #[inline]
    pub fn union(&self, other: &FlowKey) -> FlowKey {
        let mut out = *self;
        for i in 0..FLOW_WORDS {
            out.w[i] |= other.w[i];
        }
        out
    }

    /// True when `self` (a packet key) agrees with `value` on every bit of `mask`.
    /// `value` must already be masked.
    #[inline]
    pub fn matches(&self, value: &FlowKey, mask: &FlowKey) -> bool {
        (0..FLOW_WORDS).all(|i| self.w[i] & mask.w[i] == value.w[i])
    }

    /// Indices of the non-zero words, in order (the first `n` entries of the
    /// array). Classifiers keyed by a mask mask, hash and compare only these:
    /// a typical mask uses 2–4 of the [`FLOW_WORDS`] words.
    pub fn nonzero_words(&self) -> ([u8; FLOW_WORDS], usize) {
        let mut idx = [0u8; FLOW_WORDS];
        let mut n = 0;
        for (i, &w) in self.w.iter().enumerate() {
            if w != 0 {
                idx[n] = i as u8;
                n += 1;
            }
        }
        (idx, n)
    }

    /// True when no bit is set (a mask that matches everything).
    pub fn is_zero(&self) -> bool {
        self.w.iter().all(|&x| x == 0)
    }

    /// True when every bit set in `self` is also set in `other`.
    pub fn is_subset_of(&self, other: &FlowKey) -> bool {
        (0..FLOW_WORDS).all(|i| self.w[i] & !other.w[i] == 0)
    }

    /// A fast 64-bit hash of the words (FxHash-style multiply/rotate); good enough
    /// for table indexing, not for anything adversarial.
    #[inline]
    pub fn hash64(&self) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h: u64 = 0;
        for &x in &self.w {
            h = (h.rotate_left(5) ^ x).wrapping_mul(K);
        }
        h ^ (h >> 29)
    }

    /// Copies a packet's tunnel metadata into the tunnel fields (what
    /// extraction does for a packet a tunnel port received; OVS
    /// `miniflow_extract()` takes `flow_tnl` from the packet's metadata the
    /// same way). The outer TOS/TTL are not key fields here.
    #[inline]
    pub fn set_tunnel(&mut self, t: &TunnelMeta) {
        self.set(Field::TunnelId, t.id as u128);
        self.set(Field::TunSrc, t.src as u128);
        self.set(Field::TunDst, t.dst as u128);
    }

    /// Writes bits of a tunnel field into `t` under `mask` (a `SetField` on
    /// `tun_id`/`tun_src`/`tun_dst`); false for any other field.
    #[inline]
    pub fn write_tunnel(t: &mut TunnelMeta, f: Field, value: u128, mask: u128) -> bool {
        match f {
            Field::TunnelId => {
                let m = mask as u64;
                t.id = (t.id & !m) | (value as u64 & m);
            }
            Field::TunSrc => {
                let m = mask as u32;
                t.src = (t.src & !m) | (value as u32 & m);
            }
            Field::TunDst => {
                let m = mask as u32;
                t.dst = (t.dst & !m) | (value as u32 & m);
            }
            _ => return false,
        }
        true
    }

    // Typed accessors for the fields the hot path and NORMAL use most.

    /// Input port.
    #[inline]
    pub fn in_port(&self) -> u32 {
        self.get(Field::InPort) as u32
    }
    /// Ethertype.
    #[inline]
    pub fn dl_type(&self) -> u16 {
        self.get(Field::DlType) as u16
    }
    /// Ethernet source.
    #[inline]
    pub fn dl_src(&self) -> MacAddr {
        MacAddr::from_u64(self.get(Field::DlSrc) as u64)
    }
    /// Ethernet destination.
    #[inline]
    pub fn dl_dst(&self) -> MacAddr {
        MacAddr::from_u64(self.get(Field::DlDst) as u64)
    }
    /// Outer VLAN TCI (0 when untagged).
    #[inline]
    pub fn vlan_tci(&self) -> u16 {
        self.get(Field::VlanTci) as u16
    }
    /// IP protocol (or ARP opcode low byte).
    #[inline]
    pub fn nw_proto(&self) -> u8 {
        self.get(Field::NwProto) as u8
    }

    /// The ethertype the L3/L4 fields describe: `dl_type`, or for a PBB frame
    /// its customer frame's type, and for an MPLS frame (or customer frame)
    /// the type of the payload under the bottom label ([`Field::MplsInner`]).
    #[inline]
    pub fn l3_type(&self) -> u16 {
        let mut t = self.dl_type();
        if t == ETH_TYPE_PBB {
            t = self.get(Field::PbbCType) as u16;
        }
        if t == ETH_TYPE_MPLS || t == ETH_TYPE_MPLS_MCAST {
            t = self.get(Field::MplsInner) as u16;
        }
        t
    }
}

impl std::fmt::Debug for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("FlowKey");
        for field in Field::ALL {
            let v = self.get(field);
            if v != 0 {
                d.field(field.name(), &format_args!("{v:#x}"));
            }
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_do_not_overlap_and_fit() {
        let mut seen = FlowKey::default();
        for f in Field::ALL {
            let mut k = FlowKey::default();
            k.set_exact(f);
            assert_eq!(k.get(f), f.full_mask(), "{f:?}");
            for i in 0..FLOW_WORDS {
                assert_eq!(seen.w[i] & k.w[i], 0, "{f:?} overlaps");
            }
            seen = seen.union(&k);
        }
    }

    #[test]
    fn all_lists_every_field_once_and_fills_the_words() {
        let mut names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
        let mut all = FlowKey::default();
        for f in Field::ALL {
            all.set_exact(f);
        }
        // Every word holds some field (no word is dead weight in hashing).
        assert!(all.w.iter().all(|&w| w != 0));
    }

    #[test]
    fn tunnel_metadata_round_trips_through_the_key() {
        let t = TunnelMeta {
            id: 0x12_3456,
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            tos: 3,
            ttl: 64,
        };
        let mut k = FlowKey::default();
        k.set_tunnel(&t);
        assert_eq!(k.get(Field::TunnelId), 0x12_3456);
        assert_eq!(k.get(Field::TunSrc), 0x0a00_0001);
        assert_eq!(k.get(Field::TunDst), 0x0a00_0002);
        let mut u = t;
        assert!(FlowKey::write_tunnel(
            &mut u,
            Field::TunDst,
            0x0b00_0000,
            0xff00_0000
        ));
        assert_eq!(u.dst, 0x0b00_0002);
        assert!(FlowKey::write_tunnel(
            &mut u,
            Field::TunnelId,
            7,
            u64::MAX as u128
        ));
        assert_eq!(u.id, 7);
        assert!(!FlowKey::write_tunnel(&mut u, Field::NwDst, 1, 0xffff_ffff));
        assert_eq!((u.src, u.tos, u.ttl), (t.src, 3, 64));
    }

    #[test]
    fn set_get_round_trip_and_masking() {
        let mut k = FlowKey::default();
        k.set(Field::Ipv6Src, 0x2001_0db8_0000_0000_0000_0000_0000_0001);
        k.set(Field::TpDst, 80);
        k.set(Field::DlType, 0x86dd);
        assert_eq!(
            k.get(Field::Ipv6Src),
            0x2001_0db8_0000_0000_0000_0000_0000_0001
        );
        let mut m = FlowKey::default();
        m.set_exact(Field::TpDst);
        let v = k.masked(&m);
        assert!(k.matches(&v, &m));
        assert_eq!(v.get(Field::DlType), 0);
        assert!(m.is_subset_of(&m.union(&FlowKey::default())));
    }
}
