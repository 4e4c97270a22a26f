//! OpenFlow errors: the (type, code) pairs of OpenFlow 1.3 §7.4.4, as a Rust enum.
//!
//! Every failure the switch reports to a peer is one of these; internal error
//! enums elsewhere map onto it at the edge (the session), so the codes that
//! `ovs-ofctl` decodes and prints are decided in one place.

/// An OpenFlow error type and code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
#[error("OpenFlow error type {} code {}", self.type_code().0, self.type_code().1)]
pub enum OfpError {
    /// OFPET_HELLO_FAILED / OFPHFC_INCOMPATIBLE.
    HelloIncompatible,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_VERSION.
    BadVersion,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_TYPE.
    BadType,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_MULTIPART.
    BadMultipart,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_EXPERIMENTER.
    BadExperimenter,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_LEN.
    BadLen,
    /// OFPET_BAD_REQUEST / OFPBRC_BUFFER_UNKNOWN.
    BufferUnknown,
    /// OFPET_BAD_REQUEST / OFPBRC_IS_SLAVE.
    IsSlave,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_PORT.
    BadRequestPort,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_TABLE_ID.
    BadRequestTableId,
    /// OFPET_BAD_REQUEST / OFPBRC_MULTIPART_BUFFER_OVERFLOW.
    MultipartBufferOverflow,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_TYPE.
    BadActionType,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_LEN.
    BadActionLen,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_EXPERIMENTER.
    BadActionExperimenter,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_OUT_PORT.
    BadOutPort,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_ARGUMENT.
    BadActionArgument,
    /// OFPET_BAD_ACTION / OFPBAC_TOO_MANY.
    TooManyActions,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_OUT_GROUP.
    BadOutGroup,
    /// OFPET_BAD_ACTION / OFPBAC_MATCH_INCONSISTENT.
    MatchInconsistent,
    /// OFPET_BAD_ACTION / OFPBAC_UNSUPPORTED_ORDER.
    UnsupportedOrder,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_SET_TYPE.
    BadSetType,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_SET_LEN.
    BadSetLen,
    /// OFPET_BAD_ACTION / OFPBAC_BAD_SET_ARGUMENT.
    BadSetArgument,
    /// OFPET_BAD_INSTRUCTION / OFPBIC_UNKNOWN_INST.
    UnknownInstruction,
    /// OFPET_BAD_INSTRUCTION / OFPBIC_UNSUP_INST.
    UnsupportedInstruction,
    /// OFPET_BAD_INSTRUCTION / OFPBIC_BAD_TABLE_ID.
    BadInstructionTableId,
    /// OFPET_BAD_INSTRUCTION / OFPBIC_UNSUP_METADATA_MASK.
    UnsupportedMetadataMask,
    /// OFPET_BAD_INSTRUCTION / OFPBIC_BAD_EXPERIMENTER.
    BadInstructionExperimenter,
    /// OFPET_BAD_INSTRUCTION / OFPBIC_BAD_LEN.
    BadInstructionLen,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_TYPE.
    BadMatchType,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_LEN.
    BadMatchLen,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_WILDCARDS.
    BadWildcards,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_FIELD.
    BadField,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_VALUE.
    BadValue,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_MASK.
    BadMask,
    /// OFPET_BAD_MATCH / OFPBMC_BAD_PREREQ.
    BadPrereq,
    /// OFPET_BAD_MATCH / OFPBMC_DUP_FIELD.
    DupField,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_UNKNOWN.
    FlowModUnknown,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_TABLE_FULL.
    TableFull,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_BAD_TABLE_ID.
    BadTableId,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_OVERLAP.
    Overlap,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_BAD_TIMEOUT.
    BadTimeout,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_BAD_COMMAND.
    BadFlowModCommand,
    /// OFPET_FLOW_MOD_FAILED / OFPFMFC_BAD_FLAGS.
    BadFlowModFlags,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_GROUP_EXISTS.
    GroupExists,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_INVALID_GROUP.
    InvalidGroup,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_OUT_OF_GROUPS.
    OutOfGroups,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_CHAINING_UNSUPPORTED.
    ChainingUnsupported,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_BAD_TYPE.
    BadGroupType,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_BAD_COMMAND.
    BadGroupCommand,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_BAD_BUCKET.
    BadBucket,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_BAD_WATCH.
    BadWatch,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_UNKNOWN_GROUP.
    UnknownGroup,
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_LOOP.
    GroupLoop,
    /// OFPET_PORT_MOD_FAILED / OFPPMFC_BAD_PORT.
    PortModBadPort,
    /// OFPET_PORT_MOD_FAILED / OFPPMFC_BAD_HW_ADDR.
    PortModBadHwAddr,
    /// OFPET_PORT_MOD_FAILED / OFPPMFC_BAD_CONFIG.
    PortModBadConfig,
    /// OFPET_TABLE_MOD_FAILED / OFPTMFC_BAD_TABLE.
    TableModBadTable,
    /// OFPET_TABLE_MOD_FAILED / OFPTMFC_BAD_CONFIG.
    TableModBadConfig,
    /// OFPET_SWITCH_CONFIG_FAILED / OFPSCFC_BAD_FLAGS.
    SwitchConfigBadFlags,
    /// OFPET_SWITCH_CONFIG_FAILED / OFPSCFC_BAD_LEN.
    SwitchConfigBadLen,
    /// OFPET_ROLE_REQUEST_FAILED / OFPRRFC_STALE.
    RoleStale,
    /// OFPET_ROLE_REQUEST_FAILED / OFPRRFC_UNSUP.
    RoleUnsupported,
    /// OFPET_ROLE_REQUEST_FAILED / OFPRRFC_BAD_ROLE.
    BadRole,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_METER_EXISTS.
    MeterExists,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_INVALID_METER.
    InvalidMeter,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_UNKNOWN_METER.
    UnknownMeter,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_BAD_COMMAND.
    BadMeterCommand,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_BAD_FLAGS.
    BadMeterFlags,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_BAD_RATE.
    BadRate,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_BAD_BAND.
    BadBand,
    /// OFPET_METER_MOD_FAILED / OFPMMFC_OUT_OF_METERS.
    OutOfMeters,
    /// OFPET_TABLE_FEATURES_FAILED / OFPTFFC_BAD_TABLE.
    TableFeaturesBadTable,
    /// OFPET_TABLE_FEATURES_FAILED / OFPTFFC_EPERM.
    TableFeaturesEperm,
}

impl OfpError {
    /// The wire `(type, code)`.
    pub const fn type_code(self) -> (u16, u16) {
        use OfpError::*;
        match self {
            HelloIncompatible => (0, 0),
            BadVersion => (1, 0),
            BadType => (1, 1),
            BadMultipart => (1, 2),
            BadExperimenter => (1, 3),
            BadLen => (1, 6),
            BufferUnknown => (1, 8),
            IsSlave => (1, 10),
            BadRequestPort => (1, 11),
            BadRequestTableId => (1, 9),
            MultipartBufferOverflow => (1, 13),
            BadActionType => (2, 0),
            BadActionLen => (2, 1),
            BadActionExperimenter => (2, 2),
            BadOutPort => (2, 4),
            BadActionArgument => (2, 5),
            TooManyActions => (2, 7),
            BadOutGroup => (2, 9),
            MatchInconsistent => (2, 10),
            UnsupportedOrder => (2, 11),
            BadSetType => (2, 13),
            BadSetLen => (2, 14),
            BadSetArgument => (2, 15),
            UnknownInstruction => (3, 0),
            UnsupportedInstruction => (3, 1),
            BadInstructionTableId => (3, 2),
            UnsupportedMetadataMask => (3, 4),
            BadInstructionExperimenter => (3, 5),
            BadInstructionLen => (3, 7),
            BadMatchType => (4, 0),
            BadMatchLen => (4, 1),
            BadWildcards => (4, 5),
            BadField => (4, 6),
            BadValue => (4, 7),
            BadMask => (4, 8),
            BadPrereq => (4, 9),
            DupField => (4, 10),
            FlowModUnknown => (5, 0),
            TableFull => (5, 1),
            BadTableId => (5, 2),
            Overlap => (5, 3),
            BadTimeout => (5, 5),
            BadFlowModCommand => (5, 6),
            BadFlowModFlags => (5, 7),
            GroupExists => (6, 0),
            InvalidGroup => (6, 1),
            OutOfGroups => (6, 3),
            ChainingUnsupported => (6, 5),
            BadGroupType => (6, 10),
            BadGroupCommand => (6, 11),
            BadBucket => (6, 12),
            BadWatch => (6, 13),
            UnknownGroup => (6, 8),
            GroupLoop => (6, 7),
            PortModBadPort => (7, 0),
            PortModBadHwAddr => (7, 1),
            PortModBadConfig => (7, 2),
            TableModBadTable => (8, 0),
            TableModBadConfig => (8, 1),
            SwitchConfigBadFlags => (10, 0),
            SwitchConfigBadLen => (10, 1),
            RoleStale => (11, 0),
            RoleUnsupported => (11, 1),
            BadRole => (11, 2),
            MeterExists => (12, 1),
            InvalidMeter => (12, 2),
            UnknownMeter => (12, 3),
            BadMeterCommand => (12, 4),
            BadMeterFlags => (12, 5),
            BadRate => (12, 6),
            BadBand => (12, 8),
            OutOfMeters => (12, 10),
            TableFeaturesBadTable => (13, 0),
            TableFeaturesEperm => (13, 5),
        }
    }
}
