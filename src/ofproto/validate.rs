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
use crate::openflow::message::{GroupMod, GroupType};
use crate::openflow::oxm::{OxmField, OxmId};
use crate::types::{GroupId, PortNo, TableId};

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
}

impl Ctx {
    fn from_match(value: &FlowKey, mask: &FlowKey) -> Ctx {
        let exact = |f: Field| mask.get(f) == f.full_mask();
        Ctx {
            dl_type: exact(Field::DlType).then(|| value.get(Field::DlType) as u16),
            nw_proto: exact(Field::NwProto).then(|| value.get(Field::NwProto) as u8),
            vlan: mask.vlan_tci() & VLAN_CFI != 0 && value.vlan_tci() & VLAN_CFI != 0,
            lenient: false,
        }
    }

    fn is_ip(&self) -> bool {
        matches!(self.dl_type, Some(eth_type::IPV4) | Some(eth_type::IPV6))
    }

    fn has(&self, dl: &[u16], proto: Option<u8>) -> bool {
        self.lenient
            || (self.dl_type.is_some_and(|t| dl.contains(&t))
                && proto.is_none_or(|p| self.nw_proto == Some(p)))
    }
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
    let ok = match f.id {
        InPhyPort | EthType | IpProto | Ipv6Exthdr | PbbIsid => return Err(OfpError::BadSetType),
        // Tunnel addresses are not written by translation yet (issue 11).
        TunIpv4Src | TunIpv4Dst => return Err(OfpError::BadSetType),
        InPort | Metadata | EthDst | EthSrc | TunnelId => true,
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
        MplsLabel | MplsTc | MplsBos => ctx.has(MPLS, None),
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
                    if !output_port_ok(*port) {
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
                Action::SetNwTtl(_) | Action::DecNwTtl => {
                    if !ctx.lenient && !ctx.is_ip() {
                        return Err(OfpError::MatchInconsistent);
                    }
                }
                Action::SetQueue(_) => {}
                Action::Experimenter { .. } => return Err(OfpError::BadActionExperimenter),
                Action::CopyTtlOut
                | Action::CopyTtlIn
                | Action::SetMplsTtl(_)
                | Action::DecMplsTtl
                | Action::PushMpls(_)
                | Action::PopMpls(_)
                | Action::PushPbb(_)
                | Action::PopPbb => return Err(OfpError::BadActionType),
            }
        }
        Ok(())
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

    /// Validates a GROUP_MOD ADD/MODIFY body.
    pub(super) fn validate_group(&self, gm: &GroupMod) -> Result<(), OfpError> {
        match gm.group_type {
            GroupType::Indirect if gm.buckets.len() != 1 => return Err(OfpError::BadBucket),
            GroupType::FastFailover => {
                for b in &gm.buckets {
                    if b.watch_port == PortNo::ANY && b.watch_group == GroupId::ANY {
                        return Err(OfpError::BadWatch);
                    }
                    if b.watch_group == gm.group_id {
                        return Err(OfpError::GroupLoop);
                    }
                }
            }
            _ => {}
        }
        let lenient = Ctx {
            dl_type: None,
            nw_proto: None,
            vlan: true,
            lenient: true,
        };
        for b in &gm.buckets {
            self.validate_actions(&b.actions, &mut lenient.clone())?;
            for a in &b.actions {
                if let Action::Group(g) = a {
                    if *g == gm.group_id || self.group_reaches(*g, gm.group_id, 0) {
                        return Err(OfpError::GroupLoop);
                    }
                }
            }
        }
        Ok(())
    }

    /// True when group `from` can reach group `target` through group actions.
    fn group_reaches(&self, from: GroupId, target: GroupId, depth: u32) -> bool {
        if depth > 32 {
            return true;
        }
        let Some(g) = self.groups.get(&from) else {
            return false;
        };
        g.buckets.iter().flat_map(|b| b.actions.iter()).any(|a| {
            matches!(a, Action::Group(n) if *n == target || self.group_reaches(*n, target, depth + 1))
        })
    }
}
