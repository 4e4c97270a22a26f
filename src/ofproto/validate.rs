//! FLOW_MOD instruction and GROUP_MOD bucket validation, with OpenFlow error codes.
//!
//! Checks run on the Bridge actor before anything is installed, so translation can
//! assume well-formed instructions: goto only goes forward, referenced groups and
//! meters existed when the rule was added (a later delete also removes the rule),
//! set-field targets are meaningful for the packets the match admits.

use super::match_::{eth_type, ip_proto};
use super::Ofproto;
use crate::datapath::flow::{Field, FlowKey, VLAN_CFI};
use crate::openflow::action::{Action, Instruction};
use crate::openflow::error::OfpError;
use crate::openflow::message::{Bucket, GroupMod, GroupType};
use crate::openflow::oxm::{OxmField, OxmId};
use crate::types::{GroupId, MeterId, PortNo, TableId};

/// Most actions one instruction list (or bucket) may hold.
pub const MAX_ACTIONS: usize = 1024;

/// What the match guarantees about packets, as actions are checked in order.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    dl_type: Option<u16>,
    nw_proto: Option<u8>,
    vlan: bool,
    /// Group buckets are checked without a match: skip prerequisite checks.
    lenient: bool,
    /// A PACKET_OUT's actions: output to TABLE is allowed (OF1.3.5 §7.3.7).
    packet_out: bool,
}

impl Ctx {
    fn from_match(value: &FlowKey, mask: &FlowKey) -> Ctx {
        let exact = |f: Field| mask.get(f) == f.full_mask();
        Ctx {
            dl_type: exact(Field::DlType).then(|| value.get(Field::DlType) as u16),
            nw_proto: exact(Field::NwProto).then(|| value.get(Field::NwProto) as u8),
            vlan: mask.vlan_tci() & VLAN_CFI != 0 && value.vlan_tci() & VLAN_CFI != 0,
            lenient: false,
            packet_out: false,
        }
    }

    fn is_ip(&self) -> bool {
        matches!(self.dl_type, Some(eth_type::IPV4) | Some(eth_type::IPV6))
    }

    fn is_mpls(&self) -> bool {
        matches!(
            self.dl_type,
            Some(eth_type::MPLS) | Some(eth_type::MPLS_MCAST)
        )
    }

    /// An action that needs the packet to be of some kind: true when the
    /// match (or the actions before) guarantees it.
    fn requires(&self, ok: bool) -> Result<(), OfpError> {
        if self.lenient || ok {
            Ok(())
        } else {
            Err(OfpError::MatchInconsistent)
        }
    }

    fn has(&self, dl: &[u16], proto: Option<u8>) -> bool {
        self.lenient
            || (self.dl_type.is_some_and(|t| dl.contains(&t))
                && proto.is_none_or(|p| self.nw_proto == Some(p)))
    }
}

/// Fields no set-field may write (see [`set_field_ok`] for why).
const READ_ONLY: [OxmId; 5] = [
    OxmId::InPhyPort,
    OxmId::EthType,
    OxmId::IpProto,
    OxmId::Ipv6Exthdr,
    OxmId::MplsBos,
];

/// Whether set-field may write this field at all (table features report it).
pub(super) fn set_field_writable(id: OxmId) -> bool {
    !READ_ONLY.contains(&id)
}

/// Whether a set-field of this OXM is allowed by the context (prerequisites).
fn set_field_ok(f: &OxmField, ctx: &Ctx) -> Result<(), OfpError> {
    use OxmId::*;
    const V4: &[u16] = &[eth_type::IPV4];
    const V6: &[u16] = &[eth_type::IPV6];
    const IP: &[u16] = &[eth_type::IPV4, eth_type::IPV6];
    const ARP: &[u16] = &[eth_type::ARP];
    const MPLS: &[u16] = &[eth_type::MPLS, eth_type::MPLS_MCAST];
    if f.mask.is_some() {
        return Err(OfpError::BadSetArgument);
    }
    if f.value & !super::match_::oxm_full_mask(f.id) != 0 {
        return Err(OfpError::BadSetArgument);
    }
    // The key keeps the low byte of the ARP opcode (as a match does, which
    // refuses larger values with BAD_VALUE): a larger value could not be
    // written whole, so it is refused rather than cut.
    if f.id == ArpOp && f.value > 0xff {
        return Err(OfpError::BadSetArgument);
    }
    // Read-only, as in OVS: the types change how every later header is read
    // without changing those headers (push/pop actions do that), BoS is the
    // label stack's structure, IN_PHY_PORT and IPV6_EXTHDR are not packet
    // bytes (OF1.3.5 §7.2.5 lets a switch refuse a set-field type with
    // OFPBAC_BAD_SET_TYPE).
    if !set_field_writable(f.id) {
        return Err(OfpError::BadSetType);
    }
    let ok = match f.id {
        InPhyPort | EthType | IpProto | Ipv6Exthdr | MplsBos => false,
        PbbIsid => ctx.has(&[eth_type::PBB], None),
        // The tunnel fields are the packet's metadata, not its headers: no
        // prerequisites (OVS meta-flow.c: MFF_TUN_* are MFP_NONE, writable).
        InPort | Metadata | EthDst | EthSrc | TunnelId | TunIpv4Src | TunIpv4Dst => true,
        VlanVid | VlanPcp => ctx.lenient || ctx.vlan,
        IpDscp | IpEcn => ctx.has(IP, None),
        Ipv4Src | Ipv4Dst => ctx.has(V4, None),
        TcpSrc | TcpDst => ctx.has(IP, Some(ip_proto::TCP)),
        UdpSrc | UdpDst => ctx.has(IP, Some(ip_proto::UDP)),
        SctpSrc | SctpDst => ctx.has(IP, Some(ip_proto::SCTP)),
        Icmpv4Type | Icmpv4Code => ctx.has(V4, Some(ip_proto::ICMP)),
        Icmpv6Type | Icmpv6Code | Ipv6NdTarget | Ipv6NdSll | Ipv6NdTll => {
            ctx.has(V6, Some(ip_proto::ICMPV6))
        }
        ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => ctx.has(ARP, None),
        Ipv6Src | Ipv6Dst | Ipv6Flabel => ctx.has(V6, None),
        MplsLabel | MplsTc => ctx.has(MPLS, None),
    };
    if ok {
        Ok(())
    } else {
        Err(OfpError::MatchInconsistent)
    }
}

/// Output ports a rule may name: physical ports (they may appear later), LOCAL and
/// the reserved ports that make sense in a flow (not TABLE, not ANY, not 0).
fn output_port_ok(p: PortNo) -> bool {
    (p.0 >= 1 && p.0 <= PortNo::MAX.0)
        || matches!(
            p,
            PortNo::IN_PORT
                | PortNo::NORMAL
                | PortNo::FLOOD
                | PortNo::ALL
                | PortNo::CONTROLLER
                | PortNo::LOCAL
        )
}

impl Ofproto {
    fn validate_actions(&self, actions: &[Action], ctx: &mut Ctx) -> Result<(), OfpError> {
        if actions.len() > MAX_ACTIONS {
            return Err(OfpError::TooManyActions);
        }
        for a in actions {
            match a {
                Action::Output { port, .. } => {
                    let table_ok = ctx.packet_out && *port == PortNo::TABLE;
                    if !(output_port_ok(*port) || table_ok) {
                        return Err(OfpError::BadOutPort);
                    }
                }
                Action::Group(g) => {
                    if !self.group_exists(*g) {
                        return Err(OfpError::BadOutGroup);
                    }
                }
                Action::SetField(f) => {
                    set_field_ok(f, ctx)?;
                }
                Action::PushVlan(tpid) => {
                    if *tpid != 0x8100 && *tpid != 0x88a8 {
                        return Err(OfpError::BadActionArgument);
                    }
                    ctx.vlan = true;
                }
                Action::PopVlan => {
                    // The inner tag, if any, is unknown.
                    ctx.vlan = false;
                }
                Action::SetNwTtl(_) | Action::DecNwTtl => ctx.requires(ctx.is_ip())?,
                Action::SetQueue(_) => {}
                Action::Experimenter { .. } => return Err(OfpError::BadActionExperimenter),
                // The MPLS TTL actions need an MPLS packet; the copy-TTL ones
                // are implemented between MPLS entries and between an entry
                // and the IP header under it, so they need MPLS too.
                Action::CopyTtlOut
                | Action::CopyTtlIn
                | Action::SetMplsTtl(_)
                | Action::DecMplsTtl => ctx.requires(ctx.is_mpls())?,
                // OF1.3.5 §A.2.5: the ethertype of a pushed MPLS header is
                // 0x8847 or 0x8848, of a pushed PBB header 0x88e7.
                Action::PushMpls(t) => {
                    if *t != eth_type::MPLS && *t != eth_type::MPLS_MCAST {
                        return Err(OfpError::BadActionArgument);
                    }
                    ctx.requires(ctx.dl_type != Some(eth_type::PBB))?;
                    ctx.dl_type = Some(*t);
                }
                Action::PopMpls(t) => {
                    ctx.requires(ctx.is_mpls())?;
                    // What lies under the label is not in the match.
                    ctx.dl_type = Some(*t);
                    ctx.nw_proto = None;
                }
                Action::PushPbb(t) => {
                    if *t != eth_type::PBB {
                        return Err(OfpError::BadActionArgument);
                    }
                    ctx.requires(ctx.dl_type != Some(eth_type::PBB))?;
                    ctx.dl_type = Some(eth_type::PBB);
                    ctx.vlan = false;
                }
                Action::PopPbb => {
                    ctx.requires(ctx.dl_type == Some(eth_type::PBB))?;
                    // The customer frame is not in the match.
                    ctx.dl_type = None;
                    ctx.nw_proto = None;
                    ctx.vlan = false;
                }
            }
        }
        Ok(())
    }

    /// Validates a PACKET_OUT's actions against the packet itself (its key
    /// plays the match's part for prerequisites): the same rules as a
    /// FLOW_MOD's apply-actions, plus output to TABLE. For the PACKET_OUT
    /// handler, so that what the controller sends is refused with the same
    /// codes as in a flow (OVS `ofproto_packet_out_init()` checks the same way).
    pub fn validate_packet_out(&self, key: &FlowKey, actions: &[Action]) -> Result<(), OfpError> {
        let mut exact = FlowKey::default();
        exact.set_exact(Field::DlType);
        exact.set_exact(Field::NwProto);
        exact.set_exact(Field::VlanTci);
        let mut ctx = Ctx::from_match(&key.masked(&exact), &exact);
        ctx.packet_out = true;
        self.validate_actions(actions, &mut ctx)
    }

    /// Validates a FLOW_MOD's instructions for a rule in `table` with this match.
    pub(super) fn validate_instructions(
        &self,
        table: TableId,
        value: &FlowKey,
        mask: &FlowKey,
        instructions: &[Instruction],
    ) -> Result<(), OfpError> {
        let mut seen = 0u32;
        for ins in instructions {
            let kind = match ins {
                Instruction::GotoTable(t) => {
                    if t.0 <= table.0 || t.0 >= TableId::N_TABLES {
                        return Err(OfpError::BadInstructionTableId);
                    }
                    1
                }
                Instruction::WriteMetadata { .. } => 2,
                Instruction::WriteActions(a) => {
                    self.validate_actions(a, &mut Ctx::from_match(value, mask))?;
                    3
                }
                Instruction::ApplyActions(a) => {
                    self.validate_actions(a, &mut Ctx::from_match(value, mask))?;
                    4
                }
                Instruction::ClearActions => 5,
                Instruction::Meter(m) => {
                    // Virtual meters (OFPM_CONTROLLER) are not for flow
                    // entries: they meter what goes to controllers.
                    if *m > MeterId::MAX {
                        return Err(OfpError::InvalidMeter);
                    }
                    if !self.meter_exists(*m) {
                        return Err(OfpError::UnknownMeter);
                    }
                    6
                }
                Instruction::Experimenter { .. } => {
                    return Err(OfpError::BadInstructionExperimenter)
                }
            };
            if seen & (1 << kind) != 0 {
                // One instruction of each type at most (OpenFlow 1.3 §5.9).
                return Err(OfpError::UnsupportedInstruction);
            }
            seen |= 1 << kind;
        }
        Ok(())
    }

    /// Validates a GROUP_MOD ADD/MODIFY body, including the group graph it
    /// would make (see [`GraphCheck`]).
    pub(super) fn validate_group(&self, gm: &GroupMod) -> Result<(), OfpError> {
        // OF1.3.5 §5.6.1: an indirect group has exactly one bucket, and only
        // select buckets have weights; OVS `ofputil_check_group_mod()` answers
        // both with OFPGMFC_INVALID_GROUP.
        if gm.group_type != GroupType::Select && gm.buckets.iter().any(|b| b.weight != 0) {
            return Err(OfpError::InvalidGroup);
        }
        // Only fast-failover and select buckets have liveness: a watch on an
        // all or indirect bucket means nothing, and OVS
        // `ofputil_check_group_mod()` refuses it.
        if matches!(gm.group_type, GroupType::All | GroupType::Indirect)
            && gm
                .buckets
                .iter()
                .any(|b| b.watch_port != PortNo::ANY || b.watch_group != GroupId::ANY)
        {
            return Err(OfpError::WatchUnsupported);
        }
        match gm.group_type {
            GroupType::Indirect if gm.buckets.len() != 1 => return Err(OfpError::InvalidGroup),
            GroupType::FastFailover => {
                for b in &gm.buckets {
                    if b.watch_port == PortNo::ANY && b.watch_group == GroupId::ANY {
                        return Err(OfpError::BadWatch);
                    }
                }
            }
            _ => {}
        }
        let children = group_children(&gm.buckets);
        if children.contains(&gm.group_id) {
            crate::util::coverage::inc(&crate::util::coverage::c::group_mod_loop);
            return Err(OfpError::GroupLoop);
        }
        let lenient = Ctx {
            dl_type: None,
            nw_proto: None,
            vlan: true,
            lenient: true,
            packet_out: false,
        };
        for b in &gm.buckets {
            self.validate_actions(&b.actions, &mut lenient.clone())?;
        }
        let mut check = GraphCheck::new(&self.groups, &self.group_parents, gm.group_id);
        check.check(&children).inspect_err(|e| {
            use crate::util::coverage::{c, inc};
            match e {
                OfpError::GroupLoop => inc(&c::group_mod_loop),
                _ => inc(&c::group_mod_too_deep),
            }
        })
    }
}

// ---- the group graph ----------------------------------------------------------------

/// Longest chain of groups, linked by group actions or `watch_group`, that
/// GROUP_MOD accepts. Half of [`super::xlate::MAX_DEPTH`], so that any
/// accepted chain translates fully, even below a PACKET_OUT's `TABLE` resubmit.
/// OVS accepts any chain and lets translation fail at `MAX_DEPTH`; refusing it
/// up front tells the controller instead of dropping its packets later.
pub const MAX_GROUP_CHAIN: u32 = 32;

/// Reverse edges of the group graph: for each group id (existing or not:
/// a deleted group may still be named by others), the groups whose buckets
/// refer to it.
pub(super) type GroupParents = hashbrown::HashMap<GroupId, hashbrown::HashSet<GroupId>>;

/// The groups a bucket list refers to, through group actions and
/// `watch_group`, each once.
pub(super) fn group_children(buckets: &[Bucket]) -> Vec<GroupId> {
    let mut out: Vec<GroupId> = Vec::new();
    let mut add = |g: GroupId| {
        if g != GroupId::ANY && !out.contains(&g) {
            out.push(g);
        }
    };
    for b in buckets {
        add(b.watch_group);
        for a in &b.actions {
            if let Action::Group(g) = a {
                add(*g);
            }
        }
    }
    out
}

/// Adds (`add`) or removes one group's references to the reverse edges.
pub(super) fn link_children(
    parents: &mut GroupParents,
    group: GroupId,
    buckets: &[Bucket],
    add: bool,
) {
    for child in group_children(buckets) {
        if add {
            parents.entry(child).or_default().insert(group);
        } else if let Some(ps) = parents.get_mut(&child) {
            ps.remove(&group);
            if ps.is_empty() {
                parents.remove(&child);
            }
        }
    }
}

/// Checks that giving group `target` the references `children` keeps the
/// group graph acyclic and its chains at most [`MAX_GROUP_CHAIN`] long.
///
/// Linear in the size of the graph around `target`: a memoised DFS computes
/// the height of every group below the new children (each visited once) and
/// the longest path of referrers above `target` (each visited once), instead
/// of following every path (which is exponential in a graph where each group
/// names the next one twice). Recursion is at most [`MAX_GROUP_CHAIN`] + 1
/// deep, because the graph already installed respects the bound.
pub struct GraphCheck<'a> {
    groups: &'a super::GroupMap,
    parents: &'a GroupParents,
    target: GroupId,
    height: hashbrown::HashMap<GroupId, u32>,
    above: hashbrown::HashMap<GroupId, u32>,
    /// Groups visited (the work done; tests check it is linear).
    pub visits: u32,
}

impl<'a> GraphCheck<'a> {
    /// A check for changing `target`'s references.
    pub(super) fn new(
        groups: &'a super::GroupMap,
        parents: &'a GroupParents,
        target: GroupId,
    ) -> Self {
        GraphCheck {
            groups,
            parents,
            target,
            height: hashbrown::HashMap::new(),
            above: hashbrown::HashMap::new(),
            visits: 0,
        }
    }

    /// `GroupLoop` when `target` would reach itself, `ChainingUnsupported` when
    /// a chain through it would be longer than [`MAX_GROUP_CHAIN`].
    pub(super) fn check(&mut self, children: &[GroupId]) -> Result<(), OfpError> {
        let mut below = 0;
        for &c in children {
            below = below.max(self.height_of(c, 1)?);
        }
        let above = self.above_of(self.target, 0)?;
        if above + 1 + below > MAX_GROUP_CHAIN {
            return Err(OfpError::ChainingUnsupported);
        }
        Ok(())
    }

    /// Groups in the longest chain starting at `g` (0 for a missing group).
    fn height_of(&mut self, g: GroupId, depth: u32) -> Result<u32, OfpError> {
        if g == self.target {
            return Err(OfpError::GroupLoop);
        }
        if let Some(&h) = self.height.get(&g) {
            return Ok(h);
        }
        if depth > MAX_GROUP_CHAIN {
            return Err(OfpError::ChainingUnsupported);
        }
        self.visits += 1;
        let groups = self.groups;
        let Some(grp) = groups.get(&g) else {
            return Ok(0);
        };
        let mut h = 0;
        for b in &grp.buckets {
            for c in b.actions.iter().filter_map(|a| match a {
                Action::Group(c) => Some(*c),
                _ => None,
            }) {
                h = h.max(self.height_of(c, depth + 1)?);
            }
            if b.watch_group != GroupId::ANY {
                h = h.max(self.height_of(b.watch_group, depth + 1)?);
            }
        }
        self.height.insert(g, h + 1);
        Ok(h + 1)
    }

    /// Groups in the longest chain of referrers ending just above `g`.
    fn above_of(&mut self, g: GroupId, depth: u32) -> Result<u32, OfpError> {
        if let Some(&a) = self.above.get(&g) {
            return Ok(a);
        }
        if depth > MAX_GROUP_CHAIN {
            return Err(OfpError::ChainingUnsupported);
        }
        self.visits += 1;
        let parents = self.parents;
        let mut a = 0;
        if let Some(ps) = parents.get(&g) {
            for &p in ps.iter() {
                // A referrer that no longer exists is no chain.
                if p != self.target && self.groups.contains_key(&p) {
                    a = a.max(1 + self.above_of(p, depth + 1)?);
                }
            }
        }
        self.above.insert(g, a);
        Ok(a)
    }
}
