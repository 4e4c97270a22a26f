//! Actions and instructions (OpenFlow 1.3 §7.2.4, §7.2.5).

use super::oxm::OxmField;
use crate::types::{GroupId, MeterId, PortNo, TableId};

/// OFPCML_NO_BUFFER: send the whole packet to the controller, do not buffer.
pub const CML_NO_BUFFER: u16 = 0xffff;

/// One action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// OFPAT_OUTPUT.
    Output {
        /// Port (may be reserved: CONTROLLER, NORMAL, FLOOD, ...).
        port: PortNo,
        /// Bytes to send to the controller when `port` is CONTROLLER.
        max_len: u16,
    },
    /// OFPAT_COPY_TTL_OUT.
    CopyTtlOut,
    /// OFPAT_COPY_TTL_IN.
    CopyTtlIn,
    /// OFPAT_SET_MPLS_TTL.
    SetMplsTtl(u8),
    /// OFPAT_DEC_MPLS_TTL.
    DecMplsTtl,
    /// OFPAT_PUSH_VLAN with this ethertype (0x8100 or 0x88a8).
    PushVlan(u16),
    /// OFPAT_POP_VLAN.
    PopVlan,
    /// OFPAT_PUSH_MPLS with this ethertype.
    PushMpls(u16),
    /// OFPAT_POP_MPLS, leaving this ethertype.
    PopMpls(u16),
    /// OFPAT_SET_QUEUE.
    SetQueue(u32),
    /// OFPAT_GROUP.
    Group(GroupId),
    /// OFPAT_SET_NW_TTL.
    SetNwTtl(u8),
    /// OFPAT_DEC_NW_TTL.
    DecNwTtl,
    /// OFPAT_SET_FIELD (never masked in OF1.3).
    SetField(OxmField),
    /// OFPAT_PUSH_PBB with this ethertype.
    PushPbb(u16),
    /// OFPAT_POP_PBB.
    PopPbb,
    /// OFPAT_EXPERIMENTER: we keep the bytes only to report an error about them.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Payload after the experimenter id.
        data: Vec<u8>,
    },
}

/// One instruction.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Instruction {
    /// OFPIT_GOTO_TABLE.
    GotoTable(TableId),
    /// OFPIT_WRITE_METADATA.
    WriteMetadata {
        /// Value.
        value: u64,
        /// Which bits.
        mask: u64,
    },
    /// OFPIT_WRITE_ACTIONS: merge into the action set.
    WriteActions(Vec<Action>),
    /// OFPIT_APPLY_ACTIONS: execute now.
    ApplyActions(Vec<Action>),
    /// OFPIT_CLEAR_ACTIONS.
    ClearActions,
    /// OFPIT_METER.
    Meter(MeterId),
    /// OFPIT_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Payload.
        data: Vec<u8>,
    },
}
