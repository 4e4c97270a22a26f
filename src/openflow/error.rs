//! OpenFlow errors as a Rust enum, and their wire codes in every version.
//!
//! Every failure the switch reports to a peer is one of these; internal error
//! enums elsewhere map onto it at the edge (the session), so the codes that
//! `ovs-ofctl` decodes and prints are decided in one place. The same error has
//! different codes in different versions (OF1.0's FLOW_MOD_FAILED is type 3,
//! OF1.3's is 5; IS_SLAVE is (1,5) in OF1.0 and (1,10) from OF1.2) and some
//! exist only as vendor extensions in some versions: [`OfpError::wire_code`]
//! gives the code Open vSwitch uses (its `include/openvswitch/ofp-errors.h`
//! table), and an error with no code in a version becomes Nicira's
//! NXBRC_UNENCODABLE_ERROR, as `ofp-errors.c:ofperr_encode_msg__()` does.

use super::framing::Version;

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
    /// OFPET_GROUP_MOD_FAILED / OFPGMFC_WATCH_UNSUPPORTED (a watch port or
    /// group on a bucket of a group type that has no liveness).
    WatchUnsupported,
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
    /// OFPET_METER_MOD_FAILED / OFPMMFC_OUT_OF_BANDS.
    OutOfBands,
    /// OFPET_TABLE_FEATURES_FAILED / OFPTFFC_BAD_TABLE.
    TableFeaturesBadTable,
    /// OFPET_TABLE_FEATURES_FAILED / OFPTFFC_EPERM.
    TableFeaturesEperm,
    /// OFPET_BAD_REQUEST / OFPBRC_BAD_SUBTYPE (an experimenter subtype we do not know).
    BadSubtype,
    /// OFPET_BAD_REQUEST / OFPBRC_EPERM (permissions error; in OF1.0 the
    /// same code as IS_SLAVE).
    Eperm,
    /// Nicira NXBRC_UNENCODABLE_ERROR: the real error has no code in this version.
    UnencodableError,
    /// OFPET_BAD_PROPERTY / OFPBPC_BAD_TYPE.
    BadPropertyType,
    /// OFPET_BAD_PROPERTY / OFPBPC_BAD_LEN.
    BadPropertyLen,
    /// OFPET_BAD_PROPERTY / OFPBPC_BAD_VALUE.
    BadPropertyValue,
    /// OFPET_BAD_PROPERTY / OFPBPC_BAD_EXPERIMENTER.
    BadPropertyExperimenter,
    /// OFPET_ASYNC_CONFIG_FAILED / OFPACFC_INVALID.
    AsyncConfigInvalid,
    /// OFPET_ASYNC_CONFIG_FAILED / OFPACFC_UNSUPPORTED.
    AsyncConfigUnsupported,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_UNKNOWN.
    MonitorUnknown,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_MONITOR_EXISTS.
    MonitorExists,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_INVALID_MONITOR.
    MonitorInvalid,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_UNKNOWN_MONITOR.
    MonitorUnknownMonitor,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_BAD_COMMAND.
    MonitorBadCommand,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_BAD_FLAGS.
    MonitorBadFlags,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_BAD_TABLE_ID.
    MonitorBadTableId,
    /// OFPET_FLOW_MONITOR_FAILED / OFPMOFC_BAD_OUT.
    MonitorBadOut,
    /// OFPET_BUNDLE_FAILED / OFPBFC_UNKNOWN.
    BundleUnknown,
    /// OFPET_BUNDLE_FAILED / OFPBFC_EPERM.
    BundleEperm,
    /// OFPET_BUNDLE_FAILED / OFPBFC_BAD_ID.
    BundleBadId,
    /// OFPET_BUNDLE_FAILED / OFPBFC_BUNDLE_EXIST.
    BundleExists,
    /// OFPET_BUNDLE_FAILED / OFPBFC_BUNDLE_CLOSED.
    BundleClosed,
    /// OFPET_BUNDLE_FAILED / OFPBFC_OUT_OF_BUNDLES.
    BundleOutOfBundles,
    /// OFPET_BUNDLE_FAILED / OFPBFC_BAD_TYPE.
    BundleBadType,
    /// OFPET_BUNDLE_FAILED / OFPBFC_BAD_FLAGS.
    BundleBadFlags,
    /// OFPET_BUNDLE_FAILED / OFPBFC_MSG_BAD_LEN.
    BundleMsgBadLen,
    /// OFPET_BUNDLE_FAILED / OFPBFC_MSG_BAD_XID.
    BundleMsgBadXid,
    /// OFPET_BUNDLE_FAILED / OFPBFC_MSG_UNSUP.
    BundleMsgUnsup,
    /// OFPET_BUNDLE_FAILED / OFPBFC_MSG_CONFLICT.
    BundleMsgConflict,
    /// OFPET_BUNDLE_FAILED / OFPBFC_MSG_TOO_MANY.
    BundleMsgTooMany,
    /// OFPET_BUNDLE_FAILED / OFPBFC_MSG_FAILED.
    BundleMsgFailed,
    /// OFPET_BUNDLE_FAILED / OFPBFC_TIMEOUT.
    BundleTimeout,
    /// OFPET_BUNDLE_FAILED / OFPBFC_BUNDLE_IN_PROGRESS.
    BundleInProgress,
}

/// How an error is put on the wire in one version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireCode {
    /// A standard `ofp_error_msg` type and code.
    Standard {
        /// Error type.
        err_type: u16,
        /// Error code.
        code: u16,
    },
    /// A vendor error: in OF1.0/1.1 an NXET_VENDOR error whose data starts
    /// with `nx_vendor_error` (vendor, type, code); from OF1.2 an
    /// OFPET_EXPERIMENTER error with `exp_code` and the experimenter id.
    Vendor {
        /// Vendor (experimenter) id: Nicira 0x2320 or ONF 0x4f4e4600.
        vendor: u32,
        /// OF1.0/1.1: the vendor's error type; OF1.2+: the experimenter code.
        exp_type: u16,
        /// OF1.0/1.1: the vendor's error code (unused from OF1.2).
        code: u16,
    },
}

/// Nicira's vendor id (NX_VENDOR_ID).
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// The Open Networking Foundation's experimenter id (ONF_VENDOR_ID).
pub const ONF_VENDOR_ID: u32 = 0x4f4e_4600;

/// One row of the version table: versions `lo..=hi` (wire numbers) use `code`.
type Row = (u8, u8, Code);

/// The kinds of code in Open vSwitch's table.
#[derive(Clone, Copy)]
enum Code {
    /// OF(type, code).
    Of(u16, u16),
    /// NX(type, code): a Nicira vendor error in OF1.0/1.1.
    Nx(u16, u16),
    /// NX(code): a Nicira experimenter error from OF1.2.
    NxExp(u16),
    /// ONF(code): an ONF experimenter error (OF1.3 extensions).
    Onf(u16),
}

impl OfpError {
    /// The wire `(type, code)` in OpenFlow 1.3. For errors that are
    /// experimenter errors there, the type is OFPET_EXPERIMENTER (0xffff) and
    /// the code the experimenter's; see [`OfpError::wire_code`] for the rest.
    pub fn type_code(self) -> (u16, u16) {
        match self.wire_code(Version::V1_3) {
            WireCode::Standard { err_type, code } => (err_type, code),
            WireCode::Vendor { exp_type, .. } => (EXPERIMENTER_TYPE, exp_type),
        }
    }

    /// How this error is encoded in version `v` (Open vSwitch's codes).
    pub fn wire_code(self, v: Version) -> WireCode {
        let pick = |e: OfpError| {
            e.rows()
                .iter()
                .find(|(lo, hi, _)| (*lo..=*hi).contains(&v.0))
                .map(|&(_, _, c)| c)
        };
        let code = pick(self)
            .or_else(|| pick(OfpError::UnencodableError))
            .unwrap_or(Code::Of(1, 0));
        match code {
            Code::Of(err_type, code) => WireCode::Standard { err_type, code },
            Code::Nx(exp_type, code) => WireCode::Vendor {
                vendor: NX_VENDOR_ID,
                exp_type,
                code,
            },
            Code::NxExp(exp_type) => WireCode::Vendor {
                vendor: NX_VENDOR_ID,
                exp_type,
                code: 0,
            },
            Code::Onf(exp_type) => WireCode::Vendor {
                vendor: ONF_VENDOR_ID,
                exp_type,
                code: 0,
            },
        }
    }

    /// Whether this error has its own code in version `v` (rather than
    /// becoming NXBRC_UNENCODABLE_ERROR).
    pub fn encodable_in(self, v: Version) -> bool {
        self.rows()
            .iter()
            .any(|(lo, hi, _)| (*lo..=*hi).contains(&v.0))
    }

    fn rows(self) -> &'static [Row] {
        use Code::*;
        use OfpError::*;
        match self {
            // Generated from Open vSwitch include/openvswitch/ofp-errors.h (3.1).
            HelloIncompatible => &[(1, 6, Of(0, 0))],
            BadVersion => &[(1, 6, Of(1, 0))],
            BadType => &[(1, 6, Of(1, 1))],
            BadMultipart => &[(1, 6, Of(1, 2))],
            BadExperimenter => &[(1, 6, Of(1, 3))],
            BadSubtype => &[(1, 6, Of(1, 4))],
            Eperm => &[(1, 6, Of(1, 5))],
            BadLen => &[(1, 6, Of(1, 6))],
            BufferUnknown => &[(1, 6, Of(1, 8))],
            IsSlave => &[(1, 2, Of(1, 5)), (3, 6, Of(1, 10))],
            BadRequestPort => &[(1, 2, Nx(1, 514)), (3, 6, Of(1, 11))],
            BadRequestTableId => &[(1, 1, Nx(1, 512)), (2, 6, Of(1, 9))],
            MultipartBufferOverflow => &[(4, 6, Of(1, 13))],
            UnencodableError => &[(1, 2, Nx(1, 521)), (3, 6, NxExp(10))],
            BadActionType => &[(1, 6, Of(2, 0))],
            BadActionLen => &[(1, 6, Of(2, 1))],
            BadActionExperimenter => &[(1, 6, Of(2, 2))],
            BadOutPort => &[(1, 6, Of(2, 4))],
            BadActionArgument => &[(1, 6, Of(2, 5))],
            TooManyActions => &[(1, 6, Of(2, 7))],
            BadOutGroup => &[(1, 1, Nx(2, 9)), (2, 6, Of(2, 9))],
            MatchInconsistent => &[(1, 1, Nx(1, 522)), (2, 6, Of(2, 10))],
            UnsupportedOrder => &[(2, 6, Of(2, 11))],
            BadSetType => &[(1, 2, Nx(1, 523)), (3, 6, Of(2, 13))],
            BadSetLen => &[(1, 2, Nx(1, 524)), (3, 6, Of(2, 14))],
            BadSetArgument => &[(1, 2, Nx(1, 525)), (3, 6, Of(2, 15))],
            UnknownInstruction => &[(2, 6, Of(3, 0))],
            UnsupportedInstruction => &[(1, 1, Nx(2, 257)), (2, 6, Of(3, 1))],
            BadInstructionTableId => &[(2, 6, Of(3, 2))],
            UnsupportedMetadataMask => &[(2, 6, Of(3, 4))],
            BadInstructionExperimenter => &[(2, 6, Of(3, 5))],
            BadInstructionLen => &[(3, 6, Of(3, 7))],
            BadMatchType => &[(2, 6, Of(4, 0))],
            BadMatchLen => &[(2, 6, Of(4, 1))],
            BadWildcards => &[(1, 1, Nx(1, 262)), (2, 6, Of(4, 5))],
            BadField => &[(1, 1, Nx(0, 263)), (2, 6, Of(4, 6))],
            BadValue => &[(1, 1, Nx(1, 258)), (2, 6, Of(4, 7))],
            BadMask => &[(1, 2, Nx(1, 259)), (3, 6, Of(4, 8))],
            BadPrereq => &[(1, 2, Nx(1, 260)), (3, 6, Of(4, 9))],
            DupField => &[(1, 2, Nx(1, 261)), (3, 6, Of(4, 10))],
            FlowModUnknown => &[(2, 6, Of(5, 0))],
            TableFull => &[(1, 1, Of(3, 0)), (2, 6, Of(5, 1))],
            BadTableId => &[(2, 6, Of(5, 2))],
            Overlap => &[(1, 1, Of(3, 1)), (2, 6, Of(5, 3))],
            BadTimeout => &[(2, 6, Of(5, 5))],
            BadFlowModCommand => &[(1, 1, Of(3, 4)), (2, 6, Of(5, 6))],
            BadFlowModFlags => &[(1, 1, Nx(3, 258)), (2, 2, Nx(5, 258)), (3, 6, Of(5, 7))],
            GroupExists => &[(1, 1, Nx(6, 0)), (2, 6, Of(6, 0))],
            InvalidGroup => &[(1, 1, Nx(6, 1)), (2, 6, Of(6, 1))],
            OutOfGroups => &[(1, 1, Nx(6, 3)), (2, 6, Of(6, 3))],
            WatchUnsupported => &[(1, 1, Nx(6, 2)), (2, 6, Of(6, 2))],
            ChainingUnsupported => &[(1, 1, Nx(6, 5)), (2, 6, Of(6, 5))],
            BadGroupType => &[(1, 1, Nx(6, 10)), (3, 6, Of(6, 10))],
            BadGroupCommand => &[(1, 1, Nx(6, 11)), (3, 6, Of(6, 11))],
            BadBucket => &[(1, 1, Nx(6, 12)), (3, 6, Of(6, 12))],
            BadWatch => &[(1, 1, Nx(6, 13)), (3, 6, Of(6, 13))],
            UnknownGroup => &[(1, 1, Nx(6, 8)), (2, 6, Of(6, 8))],
            GroupLoop => &[(1, 1, Nx(6, 7)), (2, 6, Of(6, 7))],
            PortModBadPort => &[(1, 1, Of(4, 0)), (2, 6, Of(7, 0))],
            PortModBadHwAddr => &[(1, 1, Of(4, 1)), (2, 6, Of(7, 1))],
            PortModBadConfig => &[(2, 6, Of(7, 2))],
            TableModBadTable => &[(2, 6, Of(8, 0))],
            TableModBadConfig => &[(2, 6, Of(8, 1))],
            SwitchConfigBadFlags => &[(2, 6, Of(10, 0))],
            SwitchConfigBadLen => &[(2, 6, Of(10, 1))],
            RoleStale => &[(3, 6, Of(11, 0))],
            RoleUnsupported => &[(3, 6, Of(11, 1))],
            BadRole => &[(1, 2, Nx(1, 513)), (3, 6, Of(11, 2))],
            MeterExists => &[(4, 6, Of(12, 1))],
            InvalidMeter => &[(4, 6, Of(12, 2))],
            UnknownMeter => &[(4, 6, Of(12, 3))],
            BadMeterCommand => &[(4, 6, Of(12, 4))],
            BadMeterFlags => &[(4, 6, Of(12, 5))],
            BadRate => &[(4, 6, Of(12, 6))],
            BadBand => &[(4, 6, Of(12, 8))],
            OutOfMeters => &[(4, 6, Of(12, 10))],
            OutOfBands => &[(4, 6, Of(12, 11))],
            TableFeaturesBadTable => &[(4, 6, Of(13, 0))],
            TableFeaturesEperm => &[(4, 6, Of(13, 5))],
            BadPropertyType => &[
                (1, 2, Nx(13, 2)),
                (3, 3, NxExp(25)),
                (4, 4, Of(13, 2)),
                (5, 6, Of(14, 0)),
            ],
            BadPropertyLen => &[
                (1, 2, Nx(13, 3)),
                (3, 3, NxExp(26)),
                (4, 4, Of(13, 3)),
                (5, 6, Of(14, 1)),
            ],
            BadPropertyValue => &[
                (1, 2, Nx(13, 4)),
                (3, 3, NxExp(27)),
                (4, 4, Of(13, 4)),
                (5, 6, Of(14, 2)),
            ],
            BadPropertyExperimenter => &[
                (1, 2, Nx(14, 5)),
                (3, 3, NxExp(30)),
                (4, 4, Onf(4445)),
                (5, 6, Of(14, 5)),
            ],
            AsyncConfigInvalid => &[(4, 4, Onf(2370)), (5, 6, Of(15, 0))],
            AsyncConfigUnsupported => &[(4, 4, Onf(2371)), (5, 6, Of(15, 1))],
            MonitorUnknown => &[(5, 6, Of(16, 0))],
            MonitorExists => &[(1, 2, Nx(1, 517)), (3, 4, NxExp(6)), (5, 6, Of(16, 1))],
            MonitorInvalid => &[(5, 6, Of(16, 2))],
            MonitorUnknownMonitor => &[(1, 2, Nx(1, 519)), (3, 4, NxExp(8)), (5, 6, Of(16, 3))],
            MonitorBadCommand => &[(5, 6, Of(16, 4))],
            MonitorBadFlags => &[(1, 2, Nx(1, 518)), (3, 4, NxExp(7)), (5, 6, Of(16, 5))],
            MonitorBadTableId => &[(5, 6, Of(16, 6))],
            MonitorBadOut => &[(5, 6, Of(16, 7))],
            BundleUnknown => &[(4, 4, Onf(2300)), (5, 6, Of(17, 0))],
            BundleEperm => &[(4, 4, Onf(2301)), (5, 6, Of(17, 1))],
            BundleBadId => &[(4, 4, Onf(2302)), (5, 6, Of(17, 2))],
            BundleExists => &[(4, 4, Onf(2303)), (5, 6, Of(17, 3))],
            BundleClosed => &[(4, 4, Onf(2304)), (5, 6, Of(17, 4))],
            BundleOutOfBundles => &[(4, 4, Onf(2305)), (5, 6, Of(17, 5))],
            BundleBadType => &[(4, 4, Onf(2306)), (5, 6, Of(17, 6))],
            BundleBadFlags => &[(4, 4, Onf(2307)), (5, 6, Of(17, 7))],
            BundleMsgBadLen => &[(4, 4, Onf(2308)), (5, 6, Of(17, 8))],
            BundleMsgBadXid => &[(4, 4, Onf(2309)), (5, 6, Of(17, 9))],
            BundleMsgUnsup => &[(4, 4, Onf(2310)), (5, 6, Of(17, 10))],
            BundleMsgConflict => &[(4, 4, Onf(2311)), (5, 6, Of(17, 11))],
            BundleMsgTooMany => &[(4, 4, Onf(2312)), (5, 6, Of(17, 12))],
            BundleMsgFailed => &[(4, 4, Onf(2313)), (5, 6, Of(17, 13))],
            BundleTimeout => &[(4, 4, Onf(2314)), (5, 6, Of(17, 14))],
            BundleInProgress => &[(4, 4, Onf(2315)), (5, 6, Of(17, 15))],
        }
    }
}

/// OFPET_EXPERIMENTER (OF1.2+).
pub const EXPERIMENTER_TYPE: u16 = 0xffff;
/// NXET_VENDOR: OF1.0/1.1's vendor error type (Nicira's convention).
pub const NXET_VENDOR: u16 = 0xb0c2;
/// NXVC_VENDOR_ERROR: the code under NXET_VENDOR.
pub const NXVC_VENDOR_ERROR: u16 = 0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_differ_by_version_as_in_open_vswitch() {
        let std = |t, c| WireCode::Standard {
            err_type: t,
            code: c,
        };
        assert_eq!(OfpError::IsSlave.wire_code(Version::V1_0), std(1, 5));
        assert_eq!(OfpError::IsSlave.wire_code(Version::V1_3), std(1, 10));
        assert_eq!(OfpError::TableFull.wire_code(Version::V1_0), std(3, 0));
        assert_eq!(OfpError::TableFull.wire_code(Version::V1_4), std(5, 1));
        assert_eq!(OfpError::PortModBadPort.wire_code(Version::V1_0), std(4, 0));
        assert_eq!(
            OfpError::BadPrereq.wire_code(Version::V1_0),
            WireCode::Vendor {
                vendor: NX_VENDOR_ID,
                exp_type: 1,
                code: 260
            }
        );
        assert_eq!(
            OfpError::BundleBadId.wire_code(Version::V1_3),
            WireCode::Vendor {
                vendor: ONF_VENDOR_ID,
                exp_type: 2302,
                code: 0
            }
        );
        assert_eq!(OfpError::BundleBadId.wire_code(Version::V1_4), std(17, 2));
        // Meters do not exist in OF1.0: Open vSwitch's fallback.
        assert!(!OfpError::BadBand.encodable_in(Version::V1_0));
        assert_eq!(
            OfpError::BadBand.wire_code(Version::V1_0),
            WireCode::Vendor {
                vendor: NX_VENDOR_ID,
                exp_type: 1,
                code: 521
            }
        );
        assert_eq!(OfpError::BadBand.type_code(), (12, 8));
    }
}
