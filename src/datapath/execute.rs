//! The action executor: applies a [`DpAction`] list to one packet.
//!
//! Runs on the poll thread for every packet that hit a megaflow, and for packets
//! injected by `Execute` ops (PACKET_OUT, upcall replies). It allocates nothing and
//! takes no lock. Header positions are found by re-parsing the frame with the same
//! parser as flow extraction ([`extract_with_offsets`]), once per action list and
//! again only after a VLAN push/pop moved the headers.
//!
//! Checksums: every rewrite updates the checksums that cover the bytes changed,
//! incrementally (RFC 1624): the IPv4 header checksum, and the TCP/UDP/ICMPv6
//! checksum for pseudo-header fields (addresses) as well as for the L4 fields
//! themselves (ports, ICMP type/code). A UDP checksum of 0 ("none") stays 0.
//! SCTP's CRC32c is recomputed over the whole SCTP packet after a port rewrite.
//!
//! Partial checksums: when the packet's virtio-net header says NEEDS_CSUM with
//! `csum_start` at the L4 header, the L4 checksum field holds only the folded
//! pseudo-header sum (not complemented) and the device will finish it. Then only
//! pseudo-header changes are applied to that field (with the non-complemented
//! formula) and L4-payload changes are left to the device; SCTP's CRC is left alone
//! too. VLAN push/pop shift `csum_start` (and a GSO `hdr_len`) by the tag size.
//!
//! Not rewritten (translation never emits them, or they are not on the wire):
//! metadata, in_port, dl_type, nw_frag, tcp_flags, ipv6_exthdr, and
//! the encapsulation bookkeeping fields (`MplsInner`, `PbbC*`), which change
//! only with the push/pop actions. MPLS entries beyond the top are rewritten
//! only where the stack has them; the PBB I-SID in place in the I-TAG.
//!
//! Encapsulations: `PushMpls`/`PopMpls` insert/remove a 4-byte label entry
//! just after the ethertype field (after any VLAN tags) and set that
//! ethertype; `PushPbb` inserts 18 bytes after the MAC addresses (I-TAG
//! ethertype and TCI, then the customer addresses), `PopPbb` removes
//! everything before the customer addresses. For MPLS and PBB frames, L3/L4
//! rewrites go to the encapsulated headers (the parse reports their offsets). ND rewrites (target, and `arp_sha`/`arp_tha` as the SLL/TLL options) only
//! change options already present; none is added.
//! A `vlan_tci` rewrite on an untagged frame is ignored (translation pushes a tag
//! first); the key's CFI "present" bit is never written to the wire, where that bit
//! is DEI.
//!
//! Tunnel fields (`tun_id`, `tun_src`, `tun_dst`) are not in the frame: a
//! `SetField` on them writes the packet's [`TunnelMeta`](super::packet::TunnelMeta)
//! under the mask, which a tunnel port reads when it encapsulates (OVS's
//! `set(tunnel(...))` action writing `md->tunnel`, `odp_execute_set_action()`).
//!
//! Output and copies: an `Output` that is the last action hands the packet's
//! buffer itself to the sink (a swap, zero copies); any earlier `Output` makes the
//! sink copy it, because later actions may modify or re-send it.

use super::actions::{DpAction, UserspaceReason};
use super::extract::{
    extract_with_offsets, ipproto, HeaderOffsets, ETH_TYPE_ARP, ETH_TYPE_IPV4, ETH_TYPE_IPV6,
    ETH_TYPE_QINQ, ETH_TYPE_RARP, ETH_TYPE_VLAN, PBB_ISID_MASK,
};
use super::flow::{Field, FlowKey};
use super::meter::{remark_dscp, MeterTable, MeterVerdict};
use super::packet::{Packet, VnetHdr};
use crate::types::PortNo;

/// virtio-net "checksum needs completing" flag.
pub const VNET_F_NEEDS_CSUM: u8 = 1;

/// Where executed packets go. The poll thread stages outputs per port and queues
/// userspace packets as upcalls; tests collect them.
pub trait ExecSink {
    /// Transmit `pkt` on `port`. When `last_use` is true the executor will not touch
    /// `pkt` again, so the sink may take its buffer (swap) instead of copying it.
    fn output(&mut self, port: PortNo, pkt: &mut Packet, last_use: bool);
    /// Send a copy of `pkt` to the slow path.
    fn userspace(&mut self, pkt: &Packet, reason: UserspaceReason);
}

/// What happened to a packet, for the caller's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecOutcome {
    /// `Output` actions executed.
    pub outputs: u32,
    /// A meter dropped the packet (later actions were skipped).
    pub meter_drop: bool,
    /// A VLAN push failed for lack of headroom; the packet was dropped.
    pub push_failed: bool,
}

#[derive(Clone, Copy)]
struct Parsed {
    /// The type of the L3 header the offsets point at: the frame's ethertype,
    /// or for MPLS and PBB frames that of the encapsulated payload
    /// ([`super::flow::FlowKey::l3_type`]), so rewrites reach inner headers.
    dl_type: u16,
    nw_proto: u8,
    offs: HeaderOffsets,
}

fn parse(pkt: &Packet) -> Option<Parsed> {
    let (k, offs) = extract_with_offsets(pkt.data(), pkt.in_port).ok()?;
    Some(Parsed {
        dl_type: k.l3_type(),
        nw_proto: k.nw_proto(),
        offs,
    })
}

/// Executes `actions` on `pkt`. `now_ns` is the time meters use
/// ([`super::meter::now_ns`]).
pub fn execute_actions<S: ExecSink + ?Sized>(
    pkt: &mut Packet,
    actions: &[DpAction],
    meters: &mut MeterTable,
    now_ns: u64,
    sink: &mut S,
) -> ExecOutcome {
    let mut out = ExecOutcome::default();
    let mut parsed: Option<Option<Parsed>> = None;
    let n = actions.len();
    for (i, a) in actions.iter().enumerate() {
        match a {
            DpAction::Output(port) => {
                out.outputs += 1;
                sink.output(*port, pkt, i + 1 == n);
            }
            DpAction::SetField { field, value, mask }
                if FlowKey::write_tunnel(&mut pkt.tunnel, *field, *value, *mask) => {}
            DpAction::SetField { field, value, mask } => {
                let p = *parsed.get_or_insert_with(|| parse(pkt));
                if let Some(p) = p {
                    set_field(pkt, &p, *field, *value, *mask);
                }
            }
            DpAction::PushVlan { tpid, tci } => {
                if !push_vlan(pkt, *tpid, *tci) {
                    out.push_failed = true;
                    return out;
                }
                parsed = None;
            }
            DpAction::PopVlan => {
                pop_vlan(pkt);
                parsed = None;
            }
            DpAction::PushMpls { ethertype, lse } => {
                let at = parsed
                    .get_or_insert_with(|| parse(pkt))
                    .map(|p| p.offs.eth_type + 2);
                parsed = None;
                if !at.is_some_and(|at| push_mpls(pkt, at, *ethertype, *lse)) {
                    out.push_failed = true;
                    return out;
                }
            }
            DpAction::PopMpls { ethertype } => {
                let at = parsed
                    .get_or_insert_with(|| parse(pkt))
                    .and_then(|p| p.offs.mpls);
                parsed = None;
                if let Some(at) = at {
                    pop_mpls(pkt, at, *ethertype);
                }
            }
            DpAction::PushPbb { itci } => {
                parsed = None;
                if !push_pbb(pkt, *itci) {
                    out.push_failed = true;
                    return out;
                }
            }
            DpAction::PopPbb => {
                let at = parsed
                    .get_or_insert_with(|| parse(pkt))
                    .and_then(|p| p.offs.pbb);
                parsed = None;
                if let Some(at) = at {
                    pop_pbb(pkt, at + PBB_ITAG_TCI_LEN);
                }
            }
            DpAction::Userspace(reason) => {
                let UserspaceReason::Controller { meter, .. } = reason;
                // The controller meter limits this copy only (a drop here
                // is counted in the meter's band statistics).
                let pass = meter.is_none_or(|m| {
                    !matches!(meters.apply(m, pkt.len(), now_ns), MeterVerdict::Drop)
                });
                if pass {
                    sink.userspace(pkt, *reason);
                }
            }
            DpAction::Meter(id) => match meters.apply(*id, pkt.len(), now_ns) {
                MeterVerdict::Pass => {}
                MeterVerdict::Drop => {
                    out.meter_drop = true;
                    return out;
                }
                MeterVerdict::Remark { prec_level } => {
                    let p = *parsed.get_or_insert_with(|| parse(pkt));
                    if let Some(p) = p {
                        remark(pkt, &p, prec_level);
                    }
                }
            },
        }
    }
    out
}

fn remark(pkt: &mut Packet, p: &Parsed, prec_level: u8) {
    let Some(l3) = p.offs.l3 else { return };
    let d = pkt.data();
    let tos = match p.dl_type {
        ETH_TYPE_IPV4 => d[l3 + 1],
        ETH_TYPE_IPV6 => ((be32(d, l3) >> 20) & 0xff) as u8,
        _ => return,
    };
    let dscp = remark_dscp(tos >> 2, prec_level);
    set_field(pkt, p, Field::NwTos, (dscp << 2) as u128, 0xfc);
}

/// Inserts a VLAN tag after the MAC addresses using the headroom. Returns false
/// when the headroom is exhausted or the frame is shorter than an Ethernet header.
pub fn push_vlan(pkt: &mut Packet, tpid: u16, tci: u16) -> bool {
    if pkt.len() < 14 || !pkt.push_front(4) {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(4..16, 0);
    d[12..14].copy_from_slice(&tpid.to_be_bytes());
    d[14..16].copy_from_slice(&tci.to_be_bytes());
    shift_vnet(&mut pkt.vnet, 4);
    true
}

/// Removes the outer VLAN tag, if there is one. Returns whether a tag was removed.
pub fn pop_vlan(pkt: &mut Packet) -> bool {
    let d = pkt.data_mut();
    if d.len() < 18 {
        return false;
    }
    let tpid = be16(d, 12);
    if tpid != ETH_TYPE_VLAN && tpid != ETH_TYPE_QINQ {
        return false;
    }
    d.copy_within(0..12, 4);
    pkt.pull_front(4);
    shift_vnet(&mut pkt.vnet, -4);
    true
}

/// Bytes of an MPLS label stack entry.
const MPLS_LSE_LEN: usize = 4;
/// Bytes of a PBB I-TAG TCI (after its ethertype).
const PBB_ITAG_TCI_LEN: usize = 4;
/// Bytes `push_pbb` inserts after the MAC addresses: ethertype, I-TAG TCI and
/// the customer addresses.
const PBB_PUSH_LEN: usize = 2 + PBB_ITAG_TCI_LEN + 12;

/// Inserts an MPLS label stack entry at `at` (just after the ethertype field)
/// and sets that ethertype. False when headroom is exhausted.
pub fn push_mpls(pkt: &mut Packet, at: usize, ethertype: u16, lse: u32) -> bool {
    if at < 14 || at > pkt.len() || !pkt.push_front(MPLS_LSE_LEN) {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(MPLS_LSE_LEN..MPLS_LSE_LEN + at, 0);
    d[at - 2..at].copy_from_slice(&ethertype.to_be_bytes());
    d[at..at + MPLS_LSE_LEN].copy_from_slice(&lse.to_be_bytes());
    shift_vnet(&mut pkt.vnet, MPLS_LSE_LEN as i32);
    true
}

/// Removes the label stack entry at `at` and sets the ethertype before it.
pub fn pop_mpls(pkt: &mut Packet, at: usize, ethertype: u16) -> bool {
    if at < 14 || at + MPLS_LSE_LEN > pkt.len() {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(0..at, MPLS_LSE_LEN);
    pkt.pull_front(MPLS_LSE_LEN);
    let d = pkt.data_mut();
    d[at - 2..at].copy_from_slice(&ethertype.to_be_bytes());
    shift_vnet(&mut pkt.vnet, -(MPLS_LSE_LEN as i32));
    true
}

/// Encapsulates the frame in PBB: `DA SA 88e7 I-TCI DA SA <rest from byte 12>`.
pub fn push_pbb(pkt: &mut Packet, itci: u32) -> bool {
    if pkt.len() < 14 || !pkt.push_front(PBB_PUSH_LEN) {
        return false;
    }
    let d = pkt.data_mut();
    d.copy_within(PBB_PUSH_LEN..PBB_PUSH_LEN + 12, 0);
    d[12..14].copy_from_slice(&super::flow::ETH_TYPE_PBB.to_be_bytes());
    d[14..18].copy_from_slice(&itci.to_be_bytes());
    d.copy_within(0..12, 18);
    shift_vnet(&mut pkt.vnet, PBB_PUSH_LEN as i32);
    true
}

/// Removes everything before the customer frame, which starts at `customer`.
pub fn pop_pbb(pkt: &mut Packet, customer: usize) -> bool {
    if customer + 14 > pkt.len() {
        return false;
    }
    pkt.pull_front(customer);
    shift_vnet(&mut pkt.vnet, -(customer as i32));
    true
}

/// Offset of the `i`-th (0 = outermost) label stack entry of the stack at
/// `top`, when the stack has that many entries.
fn mpls_lse_at(d: &[u8], top: usize, i: usize) -> Option<usize> {
    for j in 0..i {
        let at = top + j * MPLS_LSE_LEN;
        if at + MPLS_LSE_LEN > d.len() || be32(d, at) & super::flow::MPLS_BOS != 0 {
            return None;
        }
    }
    let at = top + i * MPLS_LSE_LEN;
    (at + MPLS_LSE_LEN <= d.len()).then_some(at)
}

fn shift_vnet(v: &mut VnetHdr, by: i32) {
    if v.flags & VNET_F_NEEDS_CSUM != 0 {
        v.csum_start = (v.csum_start as i32 + by).max(0) as u16;
    }
    if v.gso_type != 0 {
        v.hdr_len = (v.hdr_len as i32 + by).max(0) as u16;
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

/// One's complement sum of `data` as big-endian 16-bit words (odd tail padded
/// with zero), added to `init`, not folded.
pub fn ones_sum(data: &[u8], init: u64) -> u64 {
    let mut s = init;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        s += (*last as u64) << 8;
    }
    s
}

/// Folds a one's complement sum to 16 bits (not complemented).
pub fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// RFC 1624 eqn. 3: the checksum `hc` after words summing to `old` became `new`.
#[inline]
pub fn csum_adjust(hc: u16, old: u16, new: u16) -> u16 {
    !fold((!hc) as u64 + (!old) as u64 + new as u64)
}

/// Reads `nbytes` (≤ 16) big-endian bytes at `off`.
fn read_be(d: &[u8], off: usize, nbytes: usize) -> u128 {
    d[off..off + nbytes]
        .iter()
        .fold(0u128, |v, &b| (v << 8) | b as u128)
}

fn write_be(d: &mut [u8], off: usize, nbytes: usize, v: u128) {
    for i in 0..nbytes {
        d[off + i] = (v >> (8 * (nbytes - 1 - i))) as u8;
    }
}

/// Rewrites the bits `mask << shift` of the `nbytes`-byte big-endian integer at
/// `off` with `value << shift`. Returns the folded sums of the even-aligned
/// 16-bit words covering the change, before and after, for checksum updates.
fn rewrite(
    d: &mut [u8],
    off: usize,
    nbytes: usize,
    shift: u32,
    value: u128,
    mask: u128,
) -> (u16, u16) {
    let width_mask = if nbytes == 16 {
        u128::MAX
    } else {
        (1u128 << (8 * nbytes)) - 1
    };
    let m = (mask << shift) & width_mask;
    let lo = off & !1;
    let hi = ((off + nbytes + 1) & !1).min(d.len());
    let old_sum = fold(ones_sum(&d[lo..hi], 0));
    let cur = read_be(d, off, nbytes);
    let new = (cur & !m) | ((value << shift) & m);
    write_be(d, off, nbytes, new);
    let new_sum = fold(ones_sum(&d[lo..hi], 0));
    (old_sum, new_sum)
}

/// Where the L4 checksum field is, relative to the L4 header.
fn l4_csum_offset(proto: u8, v6: bool) -> Option<usize> {
    match proto {
        ipproto::TCP => Some(16),
        ipproto::UDP => Some(6),
        ipproto::ICMP if !v6 => Some(2),
        ipproto::ICMPV6 if v6 => Some(2),
        _ => None,
    }
}

/// Applies a change of words summing `old` → `new` to the L4 checksum.
/// `pseudo`: the words belong to the pseudo-header (IP addresses).
fn update_l4(d: &mut [u8], vnet: &VnetHdr, p: &Parsed, old: u16, new: u16, pseudo: bool) {
    let Some(l4) = p.offs.l4 else { return };
    let v6 = p.dl_type == ETH_TYPE_IPV6;
    let Some(co) = l4_csum_offset(p.nw_proto, v6) else {
        return;
    };
    if pseudo && p.nw_proto == ipproto::ICMP {
        return; // ICMPv4 has no pseudo-header
    }
    let at = l4 + co;
    if at + 2 > d.len() {
        return;
    }
    let cur = be16(d, at);
    let partial = vnet.flags & VNET_F_NEEDS_CSUM != 0
        && vnet.csum_start as usize == l4
        && vnet.csum_offset as usize == co;
    let updated = if partial {
        if !pseudo {
            return; // the device sums the L4 bytes itself
        }
        fold(cur as u64 + (!old) as u64 + new as u64)
    } else {
        if p.nw_proto == ipproto::UDP && cur == 0 {
            return; // no checksum stays no checksum
        }
        let c = csum_adjust(cur, old, new);
        if p.nw_proto == ipproto::UDP && c == 0 {
            0xffff
        } else {
            c
        }
    };
    d[at..at + 2].copy_from_slice(&updated.to_be_bytes());
}

fn update_ipv4_hdr(d: &mut [u8], l3: usize, old: u16, new: u16) {
    let cur = be16(d, l3 + 10);
    let c = csum_adjust(cur, old, new);
    d[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
}

fn set_field(pkt: &mut Packet, p: &Parsed, field: Field, value: u128, mask: u128) {
    let vnet = pkt.vnet;
    let d = pkt.data_mut();
    let o = &p.offs;
    let arp = p.dl_type == ETH_TYPE_ARP || p.dl_type == ETH_TYPE_RARP;
    let v4 = p.dl_type == ETH_TYPE_IPV4;
    let v6 = p.dl_type == ETH_TYPE_IPV6;
    match field {
        Field::DlDst => {
            rewrite(d, 0, 6, 0, value, mask);
        }
        Field::DlSrc => {
            rewrite(d, 6, 6, 0, value, mask);
        }
        Field::VlanTci => {
            if let Some(v) = o.vlan {
                rewrite(d, v + 2, 2, 0, value, mask & 0xefff);
            }
        }
        Field::MplsLse | Field::MplsLse1 | Field::MplsLse2 => {
            let i = match field {
                Field::MplsLse => 0,
                Field::MplsLse1 => 1,
                _ => 2,
            };
            if let Some(at) = o.mpls.and_then(|m| mpls_lse_at(d, m, i)) {
                rewrite(d, at, 4, 0, value, mask & 0xffff_ffff);
            }
        }
        Field::PbbIsid => {
            if let Some(at) = o.pbb {
                rewrite(d, at, 4, 0, value, mask & PBB_ISID_MASK as u128);
            }
        }
        Field::NwSrc | Field::NwDst | Field::NwProto if arp => {
            let Some(l3) = o.l3 else { return };
            match field {
                Field::NwSrc => rewrite(d, l3 + 14, 4, 0, value, mask),
                Field::NwDst => rewrite(d, l3 + 24, 4, 0, value, mask),
                _ => rewrite(d, l3 + 6, 2, 0, value, mask & 0xff),
            };
        }
        Field::ArpSha | Field::ArpTha if arp => {
            let Some(l3) = o.l3 else { return };
            let at = if field == Field::ArpSha {
                l3 + 8
            } else {
                l3 + 18
            };
            rewrite(d, at, 6, 0, value, mask);
        }
        Field::NwSrc | Field::NwDst if v4 => {
            let Some(l3) = o.l3 else { return };
            let at = if field == Field::NwSrc {
                l3 + 12
            } else {
                l3 + 16
            };
            let (old, new) = rewrite(d, at, 4, 0, value, mask);
            update_ipv4_hdr(d, l3, old, new);
            update_l4(d, &vnet, p, old, new, true);
        }
        Field::NwTos | Field::NwTtl if v4 => {
            let Some(l3) = o.l3 else { return };
            let at = if field == Field::NwTos {
                l3 + 1
            } else {
                l3 + 8
            };
            let (old, new) = rewrite(d, at, 1, 0, value, mask & 0xff);
            update_ipv4_hdr(d, l3, old, new);
        }
        Field::NwTos if v6 => {
            let Some(l3) = o.l3 else { return };
            rewrite(d, l3, 4, 20, value, mask & 0xff);
        }
        Field::Ipv6Label if v6 => {
            let Some(l3) = o.l3 else { return };
            rewrite(d, l3, 4, 0, value, mask & 0xf_ffff);
        }
        Field::NwTtl if v6 => {
            let Some(l3) = o.l3 else { return };
            rewrite(d, l3 + 7, 1, 0, value, mask & 0xff);
        }
        Field::Ipv6Src | Field::Ipv6Dst if v6 => {
            let Some(l3) = o.l3 else { return };
            let at = if field == Field::Ipv6Src {
                l3 + 8
            } else {
                l3 + 24
            };
            let (old, new) = rewrite(d, at, 16, 0, value, mask);
            update_l4(d, &vnet, p, old, new, true);
        }
        Field::NdTarget | Field::ArpSha | Field::ArpTha if v6 && p.nw_proto == ipproto::ICMPV6 => {
            let at = match field {
                Field::NdTarget if is_nd(d, o) => o.l4.map(|l4| (l4 + 8, 16)),
                Field::ArpSha => o.nd_sll.map(|a| (a, 6)),
                Field::ArpTha => o.nd_tll.map(|a| (a, 6)),
                _ => None,
            };
            if let Some((at, n)) = at {
                let m = if n == 16 {
                    mask
                } else {
                    mask & 0xffff_ffff_ffff
                };
                let (old, new) = rewrite(d, at, n, 0, value, m);
                update_l4(d, &vnet, p, old, new, false);
            }
        }
        Field::TpSrc | Field::TpDst if v4 || v6 => {
            let Some(l4) = o.l4 else { return };
            let src = field == Field::TpSrc;
            match p.nw_proto {
                ipproto::TCP | ipproto::UDP => {
                    let at = if src { l4 } else { l4 + 2 };
                    let (old, new) = rewrite(d, at, 2, 0, value, mask & 0xffff);
                    update_l4(d, &vnet, p, old, new, false);
                }
                ipproto::SCTP => {
                    let at = if src { l4 } else { l4 + 2 };
                    let (old, new) = rewrite(d, at, 2, 0, value, mask & 0xffff);
                    let partial =
                        vnet.flags & VNET_F_NEEDS_CSUM != 0 && vnet.csum_start as usize == l4;
                    if old != new && !partial {
                        sctp_fix_crc(d, l4, o.l3_end);
                    }
                }
                ipproto::ICMP | ipproto::ICMPV6 => {
                    let at = if src { l4 } else { l4 + 1 };
                    let (old, new) = rewrite(d, at, 1, 0, value, mask & 0xff);
                    update_l4(d, &vnet, p, old, new, false);
                }
                _ => {}
            }
        }
        _ => {}
    }
}

/// True for an ICMPv6 neighbor solicitation/advertisement (whose target we may rewrite).
fn is_nd(d: &[u8], o: &HeaderOffsets) -> bool {
    o.l4.is_some_and(|l4| {
        l4 + 24 <= o.l3_end.min(d.len()) && (d[l4] == 135 || d[l4] == 136) && d[l4 + 1] == 0
    })
}

/// Recomputes the SCTP CRC32c over `d[l4..end]`.
fn sctp_fix_crc(d: &mut [u8], l4: usize, end: usize) {
    let end = end.min(d.len());
    if l4 + 12 > end {
        return;
    }
    d[l4 + 8..l4 + 12].fill(0);
    let crc = crc32c(&d[l4..end]);
    d[l4 + 8..l4 + 12].copy_from_slice(&crc.to_le_bytes());
}

pub use crate::util::crc::crc32c;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::extract::extract;
    use crate::datapath::meter::{
        BandKind, DpMeterBand as MeterBand, DpMeterConfig as MeterConfig,
        MeterCounters as MeterStats, MeterUnit,
    };
    use etherparse::PacketBuilder;
    use std::sync::Arc;

    #[derive(Default)]
    struct Collect {
        out: Vec<(PortNo, Vec<u8>, bool)>,
        up: Vec<(Vec<u8>, UserspaceReason)>,
    }

    impl ExecSink for Collect {
        fn output(&mut self, port: PortNo, pkt: &mut Packet, last_use: bool) {
            self.out.push((port, pkt.data().to_vec(), last_use));
        }
        fn userspace(&mut self, pkt: &Packet, reason: UserspaceReason) {
            self.up.push((pkt.data().to_vec(), reason));
        }
    }

    const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

    /// Verifies IPv4 header and L4 checksums from scratch.
    fn checksums_ok(f: &[u8]) -> bool {
        let (k, o) = extract_with_offsets(f, PortNo(1)).unwrap();
        let l3 = o.l3.unwrap();
        let v6 = k.dl_type() == ETH_TYPE_IPV6;
        let mut pseudo = 0u64;
        if !v6 {
            let ihl = (f[l3] & 0xf) as usize * 4;
            if fold(ones_sum(&f[l3..l3 + ihl], 0)) != 0xffff {
                return false;
            }
            pseudo = ones_sum(&f[l3 + 12..l3 + 20], 0);
        } else {
            pseudo = ones_sum(&f[l3 + 8..l3 + 40], pseudo);
        }
        let Some(l4) = o.l4 else { return true };
        let len = (o.l3_end - l4) as u64;
        let proto = k.nw_proto();
        if proto == ipproto::SCTP {
            let mut c = f[l4..o.l3_end].to_vec();
            c[8..12].fill(0);
            return crc32c(&c).to_le_bytes() == f[l4 + 8..l4 + 12];
        }
        if proto == ipproto::UDP && !v6 && be16(f, l4 + 6) == 0 {
            return true;
        }
        let s = if proto == ipproto::ICMP {
            ones_sum(&f[l4..o.l3_end], 0)
        } else {
            ones_sum(&f[l4..o.l3_end], pseudo + len + proto as u64)
        };
        fold(s) == 0xffff
    }

    fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(1000, 2000)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn tcp4() -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([192, 168, 1, 1], [8, 8, 8, 8], 64)
            .tcp(40000, 443, 7, 1000)
            .syn()
            .write(&mut v, &[1, 2, 3, 4, 5])
            .unwrap();
        v
    }

    fn tcp6() -> Vec<u8> {
        let mut v = Vec::new();
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[15] = 1;
        let mut b = a;
        b[15] = 2;
        PacketBuilder::ethernet2(SRC, DST)
            .ipv6(a, b, 64)
            .tcp(1, 2, 3, 4)
            .write(&mut v, &[0xaa; 7])
            .unwrap();
        v
    }

    fn run(frame: &[u8], actions: &[DpAction]) -> Collect {
        let mut pkt = Packet::from_bytes(frame, PortNo(1));
        let mut sink = Collect::default();
        let mut meters = MeterTable::new();
        execute_actions(&mut pkt, actions, &mut meters, 0, &mut sink);
        sink
    }

    fn set(field: Field, value: u128) -> DpAction {
        DpAction::SetField {
            field,
            value,
            mask: field.full_mask(),
        }
    }

    #[test]
    fn tunnel_set_fields_write_the_metadata_not_the_frame() {
        use crate::netdev::packet::TunnelMeta;
        let frame = udp4(&[7; 9]);
        let mut pkt = Packet::from_bytes(&frame, PortNo(1));
        pkt.tunnel = TunnelMeta {
            id: 5,
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            tos: 0,
            ttl: 64,
        };
        let acts = [
            set(Field::TunnelId, 0x77),
            DpAction::SetField {
                field: Field::TunDst,
                value: 0x0b00_0000,
                mask: 0xff00_0000,
            },
            DpAction::Output(PortNo(2)),
        ];
        let mut sink = Collect::default();
        execute_actions(&mut pkt, &acts, &mut MeterTable::new(), 0, &mut sink);
        assert_eq!(pkt.data(), &frame[..], "the frame is untouched");
        assert_eq!(
            (
                pkt.tunnel.id,
                pkt.tunnel.src,
                pkt.tunnel.dst,
                pkt.tunnel.ttl
            ),
            (0x77, 0x0a00_0001, 0x0b00_0002, 64)
        );
        assert_eq!(sink.out.len(), 1);
    }

    #[test]
    fn ipv4_rewrites_keep_checksums_valid() {
        for base in [udp4(&[9; 11]), tcp4()] {
            assert!(checksums_ok(&base));
            let acts = [
                set(Field::NwSrc, 0x0102_0304),
                set(Field::NwDst, 0xc0a8_6401),
                set(Field::NwTtl, 3),
                DpAction::SetField {
                    field: Field::NwTos,
                    value: 0xb8,
                    mask: 0xfc,
                },
                set(Field::TpSrc, 5555),
                set(Field::TpDst, 53),
                set(Field::DlDst, 0x0a0b_0c0d_0e0f),
                DpAction::Output(PortNo(2)),
            ];
            let c = run(&base, &acts);
            let f = &c.out[0].1;
            assert!(checksums_ok(f), "{f:02x?}");
            let k = extract(f, PortNo(1)).unwrap();
            assert_eq!(k.get(Field::NwSrc), 0x0102_0304);
            assert_eq!(k.get(Field::NwDst), 0xc0a8_6401);
            assert_eq!(k.get(Field::NwTtl), 3);
            assert_eq!(k.get(Field::NwTos), 0xb8);
            assert_eq!(k.get(Field::TpSrc), 5555);
            assert_eq!(k.get(Field::TpDst), 53);
            assert_eq!(k.get(Field::DlDst), 0x0a0b_0c0d_0e0f);
            // etherparse agrees on the IPv4 header checksum.
            let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
            assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        }
    }

    #[test]
    fn udp_zero_checksum_stays_zero() {
        let mut f = udp4(&[1, 2, 3]);
        f[14 + 20 + 6] = 0;
        f[14 + 20 + 7] = 0;
        let c = run(
            &f,
            &[set(Field::NwDst, 0x0a00_0063), DpAction::Output(PortNo(2))],
        );
        let g = &c.out[0].1;
        assert_eq!(&g[40..42], &[0, 0]);
        assert!(checksums_ok(g));
    }

    #[test]
    fn ipv6_rewrites_keep_checksums_valid() {
        let base = tcp6();
        assert!(checksums_ok(&base));
        let c = run(
            &base,
            &[
                set(Field::Ipv6Src, 0x2001_0db8_0000_0000_0000_0000_dead_beef),
                set(Field::Ipv6Dst, 0x2001_0db8_ffff_0000_0000_0000_0000_0001),
                set(Field::NwTos, 0x28),
                set(Field::Ipv6Label, 0xabcde),
                set(Field::NwTtl, 9),
                set(Field::TpDst, 8080),
                DpAction::Output(PortNo(3)),
            ],
        );
        let f = &c.out[0].1;
        assert!(checksums_ok(f));
        let k = extract(f, PortNo(1)).unwrap();
        assert_eq!(
            k.get(Field::Ipv6Src),
            0x2001_0db8_0000_0000_0000_0000_dead_beef
        );
        assert_eq!(k.get(Field::NwTos), 0x28);
        assert_eq!(k.get(Field::Ipv6Label), 0xabcde);
        assert_eq!(k.get(Field::NwTtl), 9);
        assert_eq!(k.get(Field::TpDst), 8080);
    }

    #[test]
    fn icmp_type_code_and_arp_fields() {
        let mut v = Vec::new();
        PacketBuilder::ethernet2(SRC, DST)
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .icmpv4_echo_request(7, 1)
            .write(&mut v, &[5; 20])
            .unwrap();
        assert!(checksums_ok(&v));
        let c = run(
            &v,
            &[
                set(Field::TpSrc, 0),
                set(Field::NwSrc, 0x0a00_0009),
                DpAction::Output(PortNo(2)),
            ],
        );
        let f = &c.out[0].1;
        assert!(checksums_ok(f));
        assert_eq!(extract(f, PortNo(1)).unwrap().get(Field::TpSrc), 0);

        let mut arp = Vec::new();
        arp.extend_from_slice(&[0xff; 6]);
        arp.extend_from_slice(&SRC);
        arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&SRC);
        arp.extend_from_slice(&[10, 0, 0, 1]);
        arp.extend_from_slice(&[0; 6]);
        arp.extend_from_slice(&[10, 0, 0, 2]);
        let c = run(
            &arp,
            &[
                set(Field::NwProto, 2),
                set(Field::ArpTha, 0x0200_0000_0009),
                set(Field::NwDst, 0x0a00_0005),
                set(Field::ArpSha, 0x0200_0000_0008),
                DpAction::Output(PortNo(2)),
            ],
        );
        let k = extract(&c.out[0].1, PortNo(1)).unwrap();
        assert_eq!(k.nw_proto(), 2);
        assert_eq!(k.get(Field::ArpTha), 0x0200_0000_0009);
        assert_eq!(k.get(Field::ArpSha), 0x0200_0000_0008);
        assert_eq!(k.get(Field::NwDst), 0x0a00_0005);
    }

    #[test]
    fn nd_target_and_lladdr_rewrites_keep_icmpv6_checksum() {
        let mut na = vec![136u8, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend_from_slice(&[0x20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        na.extend_from_slice(&[2, 1]);
        na.extend_from_slice(&SRC);
        let mut f = Vec::new();
        f.extend_from_slice(&DST);
        f.extend_from_slice(&SRC);
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(na.len() as u16).to_be_bytes());
        f.extend_from_slice(&[58, 255]);
        f.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let l4 = f.len();
        f.extend_from_slice(&na);
        let s = ones_sum(&f[l4..], ones_sum(&f[22..54], 0) + na.len() as u64 + 58);
        let c = !fold(s);
        f[l4 + 2..l4 + 4].copy_from_slice(&c.to_be_bytes());
        assert!(checksums_ok(&f));
        let c = run(
            &f,
            &[
                set(Field::NdTarget, 0x2001_0000_0000_0000_0000_0000_0000_0042),
                set(Field::ArpTha, 0x0200_0000_00aa),
                set(Field::ArpSha, 0x0200_0000_00bb), // no SLL option: ignored
                DpAction::Output(PortNo(2)),
            ],
        );
        let g = &c.out[0].1;
        assert!(checksums_ok(g));
        assert_eq!(g.len(), f.len());
        let k = extract(g, PortNo(1)).unwrap();
        assert_eq!(
            k.get(Field::NdTarget),
            0x2001_0000_0000_0000_0000_0000_0000_0042
        );
        assert_eq!(k.get(Field::ArpTha), 0x0200_0000_00aa);
        assert_eq!(k.get(Field::ArpSha), 0);
    }

    /// CRC32c against published vectors: the CRC catalogue's check value and
    /// the iSCSI test patterns of RFC 3720 §B.4 (the CRC SCTP uses, RFC 4960
    /// appendix B).
    #[test]
    fn crc32c_matches_known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        let up: Vec<u8> = (0..32u8).collect();
        assert_eq!(crc32c(&up), 0x46dd_794e);
        let down: Vec<u8> = (0..32u8).rev().collect();
        assert_eq!(crc32c(&down), 0x113f_db5c);
    }

    #[test]
    fn sctp_port_rewrite_recomputes_crc() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        let mut f = udp4(&[0; 12]);
        f[14 + 9] = 132;
        // fix up the IPv4 header checksum after changing the protocol
        f[24] = 0;
        f[25] = 0;
        let c = !fold(ones_sum(&f[14..34], 0));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let c = run(&f, &[set(Field::TpDst, 9), DpAction::Output(PortNo(2))]);
        let g = &c.out[0].1;
        assert!(checksums_ok(g));
        assert_eq!(extract(g, PortNo(1)).unwrap().get(Field::TpDst), 9);
    }

    #[test]
    fn partial_checksum_updates_pseudo_header_only() {
        let base = tcp4();
        let l4 = 34;
        // Make the TCP checksum field a partial (pseudo-header) sum, as a sender
        // with checksum offload would.
        let mut f = base.clone();
        let tcp_len = (f.len() - l4) as u64;
        let pseudo = fold(ones_sum(&f[26..34], tcp_len + 6));
        f[l4 + 16..l4 + 18].copy_from_slice(&pseudo.to_be_bytes());
        let mut pkt = Packet::from_bytes(&f, PortNo(1));
        pkt.vnet = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: l4 as u16,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let mut sink = Collect::default();
        execute_actions(
            &mut pkt,
            &[
                set(Field::NwDst, 0x0101_0101),
                set(Field::TpDst, 80),
                DpAction::Output(PortNo(2)),
            ],
            &mut MeterTable::new(),
            0,
            &mut sink,
        );
        let g = &sink.out[0].1;
        let want = fold(ones_sum(&g[26..34], tcp_len + 6));
        assert_eq!(be16(g, l4 + 16), want);
        // Completing the checksum as the device would yields a valid packet.
        let mut done = g.clone();
        done[l4 + 16..l4 + 18].fill(0);
        let full = !fold(ones_sum(&done[l4..], want as u64));
        done[l4 + 16..l4 + 18].copy_from_slice(&full.to_be_bytes());
        assert!(checksums_ok(&done));
    }

    #[test]
    fn push_pop_vlan_and_vnet_shift() {
        let base = udp4(&[1; 4]);
        let mut pkt = Packet::from_bytes(&base, PortNo(1));
        pkt.vnet = VnetHdr {
            flags: VNET_F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHdr::default()
        };
        let mut sink = Collect::default();
        let mut meters = MeterTable::new();
        execute_actions(
            &mut pkt,
            &[
                DpAction::PushVlan {
                    tpid: 0x8100,
                    tci: 0x2000 | 42,
                },
                DpAction::SetField {
                    field: Field::VlanTci,
                    value: 0x1000 | 43,
                    mask: 0x1fff,
                },
                DpAction::Output(PortNo(2)),
                DpAction::PopVlan,
                DpAction::Output(PortNo(3)),
            ],
            &mut meters,
            0,
            &mut sink,
        );
        let tagged = &sink.out[0].1;
        assert_eq!(tagged.len(), base.len() + 4);
        let k = extract(tagged, PortNo(1)).unwrap();
        assert_eq!(k.vlan_tci(), 0x2000 | 0x1000 | 43);
        assert_eq!(&tagged[12..16], &[0x81, 0x00, 0x20, 43]);
        assert!(!sink.out[0].2, "not last use: must be copied");
        assert_eq!(sink.out[1].1, base);
        assert!(sink.out[1].2, "last output may take the buffer");
        assert_eq!(pkt.vnet.csum_start, 34);
        assert!(!pop_vlan(&mut pkt), "no tag left");
    }

    #[test]
    fn headroom_exhaustion_drops() {
        let mut pkt = Packet::from_bytes(&udp4(&[]), PortNo(1));
        let acts: Vec<DpAction> = (0..17)
            .map(|_| DpAction::PushVlan {
                tpid: 0x88a8,
                tci: 1,
            })
            .chain([DpAction::Output(PortNo(2))])
            .collect();
        let mut sink = Collect::default();
        let r = execute_actions(&mut pkt, &acts, &mut MeterTable::new(), 0, &mut sink);
        assert!(r.push_failed);
        assert!(sink.out.is_empty());
    }

    #[test]
    fn the_controller_meter_limits_only_the_copy_for_the_controller() {
        let mut meters = MeterTable::new();
        let cfg = MeterConfig {
            unit: MeterUnit::Pktps,
            bands: vec![MeterBand {
                kind: BandKind::Drop,
                rate: 1,
                burst_size: 1,
            }],
        };
        let stats = Arc::new(MeterStats::new(1));
        meters.set(0xffff_fffe, &cfg, stats.clone(), 0);
        let reason = UserspaceReason::Controller {
            reason: 1,
            max_len: 128,
            table_id: 0,
            cookie: 9,
            meter: Some(0xffff_fffe),
        };
        let acts = [DpAction::Userspace(reason), DpAction::Output(PortNo(2))];
        let mut sink = Collect::default();
        for _ in 0..3 {
            let mut p = Packet::from_bytes(&udp4(&[]), PortNo(1));
            let r = execute_actions(&mut p, &acts, &mut meters, 0, &mut sink);
            assert!(!r.meter_drop, "the packet itself goes on");
        }
        assert_eq!(sink.up.len(), 1, "one packet-in within the burst");
        assert_eq!(sink.out.len(), 3, "every packet still output");
        assert_eq!(stats.snapshot().bands[0].0, 2, "drops counted by the band");
    }

    #[test]
    fn meter_drop_and_remark_and_userspace() {
        let mut meters = MeterTable::new();
        let cfg = MeterConfig {
            unit: MeterUnit::Pktps,
            bands: vec![MeterBand {
                kind: BandKind::Drop,
                rate: 1,
                burst_size: 1,
            }],
        };
        meters.set(5, &cfg, Arc::new(MeterStats::new(1)), 0);
        let remark_cfg = MeterConfig {
            unit: MeterUnit::Pktps,
            bands: vec![MeterBand {
                kind: BandKind::DscpRemark { prec_level: 1 },
                rate: 1,
                burst_size: 1,
            }],
        };
        meters.set(6, &remark_cfg, Arc::new(MeterStats::new(1)), 0);
        let reason = UserspaceReason::Controller {
            reason: 1,
            max_len: 128,
            table_id: 0,
            cookie: 9,
            meter: None,
        };
        let acts = [
            DpAction::Meter(5),
            DpAction::Userspace(reason),
            DpAction::Output(PortNo(2)),
        ];
        let mut sink = Collect::default();
        let base = udp4(&[]);
        let mut p1 = Packet::from_bytes(&base, PortNo(1));
        let r1 = execute_actions(&mut p1, &acts, &mut meters, 0, &mut sink);
        let mut p2 = Packet::from_bytes(&base, PortNo(1));
        let r2 = execute_actions(&mut p2, &acts, &mut meters, 0, &mut sink);
        assert!(!r1.meter_drop);
        assert!(r2.meter_drop);
        assert_eq!(sink.out.len(), 1);
        assert_eq!(sink.up.len(), 1);
        assert_eq!(sink.up[0].1, reason);

        // AF11 (tos 0x28) remarked to AF12 (tos 0x30) on the second packet.
        let mut f = udp4(&[]);
        f[15] = 0x28;
        f[24] = 0;
        f[25] = 0;
        let c = !fold(ones_sum(&f[14..34], 0));
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let acts = [DpAction::Meter(6), DpAction::Output(PortNo(2))];
        let mut sink = Collect::default();
        for _ in 0..2 {
            let mut p = Packet::from_bytes(&f, PortNo(1));
            execute_actions(&mut p, &acts, &mut meters, 0, &mut sink);
        }
        assert_eq!(sink.out[0].1[15], 0x28);
        assert_eq!(sink.out[1].1[15], 0x30);
        assert!(checksums_ok(&sink.out[1].1));
    }

    fn arb_action() -> impl proptest::strategy::Strategy<Value = DpAction> {
        use proptest::prelude::*;
        let field = proptest::sample::select(Field::ALL.to_vec());
        prop_oneof![
            (field, any::<u128>(), any::<u128>())
                .prop_map(|(field, value, mask)| DpAction::SetField { field, value, mask }),
            (any::<u16>(), any::<u16>()).prop_map(|(tpid, tci)| DpAction::PushVlan { tpid, tci }),
            Just(DpAction::PopVlan),
            (0u32..4).prop_map(|p| DpAction::Output(PortNo(p))),
            any::<u32>().prop_map(DpAction::Meter),
        ]
    }

    proptest::proptest! {
        /// Execute ops carry controller-supplied bytes: nothing may panic.
        #[test]
        fn execute_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..160),
            prefix in proptest::sample::select(vec![0usize, 1, 2, 3]),
            acts in proptest::collection::vec(arb_action(), 0..8),
        ) {
            let mut f = match prefix {
                0 => Vec::new(),
                1 => udp4(&[])[..34].to_vec(),
                2 => tcp4()[..34].to_vec(),
                _ => tcp6()[..54].to_vec(),
            };
            f.extend_from_slice(&bytes);
            let mut pkt = Packet::from_bytes(&f, PortNo(1));
            pkt.vnet.flags = VNET_F_NEEDS_CSUM;
            let mut sink = Collect::default();
            execute_actions(&mut pkt, &acts, &mut MeterTable::new(), 0, &mut sink);
        }

        /// Any combination of address/port/TOS/TTL rewrites keeps checksums valid.
        #[test]
        fn rewrites_keep_checksums(
            which in 0usize..3,
            src in proptest::prelude::any::<u128>(),
            dst in proptest::prelude::any::<u128>(),
            sport in proptest::prelude::any::<u16>(),
            dport in proptest::prelude::any::<u16>(),
            tos in proptest::prelude::any::<u8>(),
            ttl in proptest::prelude::any::<u8>(),
        ) {
            let (f, s_field, d_field) = match which {
                0 => (udp4(&[7; 13]), Field::NwSrc, Field::NwDst),
                1 => (tcp4(), Field::NwSrc, Field::NwDst),
                _ => (tcp6(), Field::Ipv6Src, Field::Ipv6Dst),
            };
            let c = run(&f, &[
                set(s_field, src),
                set(d_field, dst),
                set(Field::TpSrc, sport as u128),
                set(Field::TpDst, dport as u128),
                set(Field::NwTos, tos as u128),
                set(Field::NwTtl, ttl as u128),
                DpAction::Output(PortNo(1)),
            ]);
            proptest::prop_assert!(checksums_ok(&c.out[0].1));
        }
    }
}
