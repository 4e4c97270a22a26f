//! OpenFlow messages as owned representations (`Repr` in smoltcp's terms).
//!
//! A [`Message`] is what one OpenFlow message means, independent of its bytes
//! and of the protocol version: the model is OpenFlow 1.3's (OXM matches,
//! instructions, 32-bit ports), extended where another version carries more
//! (OF1.0's ports in FEATURES_REPLY, OF1.4's role status and property-based
//! async config, Nicira extensions, bundles, flow monitors). The per-version
//! codecs (`decode_in`/`encode_in`) convert between the two; nothing here
//! does I/O.

use super::action::{Action, Instruction};
use super::oxm::Match;
use crate::types::{Cookie, DatapathId, GroupId, MacAddr, MeterId, PortNo, TableId};

/// The protocol version we speak.
pub const OFP_VERSION: u8 = 0x04;
/// OFP_NO_BUFFER.
pub const NO_BUFFER: u32 = 0xffff_ffff;

/// A message with its transaction id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfpMsg {
    /// Transaction id; replies echo the request's.
    pub xid: u32,
    /// The message.
    pub body: Message,
}

/// Every OpenFlow 1.3 message type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// OFPT_HELLO with the versions the peer supports (bitmap element), if any.
    Hello {
        /// Bit n set = version n supported. Empty = no bitmap element.
        versions: Vec<u32>,
    },
    /// OFPT_ERROR.
    Error(ErrorMsg),
    /// OFPT_ECHO_REQUEST with arbitrary payload.
    EchoRequest(Vec<u8>),
    /// OFPT_ECHO_REPLY.
    EchoReply(Vec<u8>),
    /// OFPT_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter-defined type.
        exp_type: u32,
        /// Payload.
        data: Vec<u8>,
    },
    /// OFPT_FEATURES_REQUEST.
    FeaturesRequest,
    /// OFPT_FEATURES_REPLY.
    FeaturesReply(SwitchFeatures),
    /// OFPT_GET_CONFIG_REQUEST.
    GetConfigRequest,
    /// OFPT_GET_CONFIG_REPLY.
    GetConfigReply(SwitchConfig),
    /// OFPT_SET_CONFIG.
    SetConfig(SwitchConfig),
    /// OFPT_PACKET_IN.
    PacketIn(PacketIn),
    /// OFPT_FLOW_REMOVED.
    FlowRemoved(FlowRemoved),
    /// OFPT_PORT_STATUS.
    PortStatus(PortStatus),
    /// OFPT_PACKET_OUT.
    PacketOut(PacketOut),
    /// OFPT_FLOW_MOD.
    FlowMod(FlowMod),
    /// OFPT_GROUP_MOD.
    GroupMod(GroupMod),
    /// OFPT_PORT_MOD.
    PortMod(PortMod),
    /// OFPT_TABLE_MOD.
    TableMod {
        /// Table (or ALL).
        table_id: TableId,
        /// OFPTC_* config (deprecated in 1.3; must be 0 or 3).
        config: u32,
    },
    /// OFPT_MULTIPART_REQUEST.
    MultipartRequest(MultipartRequest),
    /// OFPT_MULTIPART_REPLY.
    MultipartReply(MultipartReply),
    /// OFPT_BARRIER_REQUEST.
    BarrierRequest,
    /// OFPT_BARRIER_REPLY.
    BarrierReply,
    /// OFPT_QUEUE_GET_CONFIG_REQUEST.
    QueueGetConfigRequest {
        /// Port (or ANY).
        port: PortNo,
    },
    /// OFPT_QUEUE_GET_CONFIG_REPLY (we have no queues, so always empty).
    QueueGetConfigReply {
        /// Port.
        port: PortNo,
    },
    /// OFPT_ROLE_REQUEST.
    RoleRequest(RoleMsg),
    /// OFPT_ROLE_REPLY.
    RoleReply(RoleMsg),
    /// OFPT_GET_ASYNC_REQUEST.
    GetAsyncRequest,
    /// OFPT_GET_ASYNC_REPLY.
    GetAsyncReply(AsyncConfig),
    /// OFPT_SET_ASYNC.
    SetAsync(AsyncConfig),
    /// OFPT_METER_MOD.
    MeterMod(MeterMod),
    /// OFPT_ROLE_STATUS (OF1.4+; ONFT_ROLE_STATUS 1911 in OF1.3): the
    /// switch tells a controller its role changed.
    RoleStatus(RoleStatus),
    /// OF1.4+ OFPT_SET_ASYNC: a property list that changes only the masks it
    /// names (the OF1.3 form, all masks at once, is [`Message::SetAsync`]).
    SetAsyncUpdate(AsyncUpdate),
    /// A Nicira extension message that configures the session (`ovs-ofctl`
    /// sends them before its real requests: as OF1.0 VENDOR messages, and
    /// NXT_SET_PACKET_IN_FORMAT etc. as EXPERIMENTER messages in OF1.3+).
    Nicira(NxMsg),
    /// OFPT_BUNDLE_CONTROL (OF1.4+; ONF_ET_BUNDLE_CONTROL 2300 in OF1.3).
    BundleControl(BundleCtrl),
    /// OFPT_BUNDLE_ADD_MESSAGE (OF1.4+; ONF_ET_BUNDLE_ADD_MESSAGE 2301 in
    /// OF1.3), with the message to add decoded in the session's version.
    BundleAdd(BundleAdd),
    /// Nicira NXT_FLOW_MONITOR_CANCEL (OF1.0) / ONFT_FLOW_MONITOR_CANCEL
    /// (OF1.3): stop monitor `id`. (OF1.4+ cancels with an OFPMP_FLOW_MONITOR
    /// request whose command is DELETE.)
    FlowMonitorCancel(u32),
    /// Nicira NXT_FLOW_MONITOR_PAUSED / ONFT_FLOW_MONITOR_PAUSED: the switch
    /// stopped sending updates (its buffer is full). In OF1.4+ this is an
    /// [`FlowUpdate::Paused`] update instead.
    FlowMonitorPaused,
    /// NXT_FLOW_MONITOR_RESUMED / ONFT_FLOW_MONITOR_RESUMED: updates flow again.
    FlowMonitorResumed,
}

/// OFPBCT_* bundle control types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BundleCtrlType {
    /// OFPBCT_OPEN_REQUEST.
    OpenRequest,
    /// OFPBCT_OPEN_REPLY.
    OpenReply,
    /// OFPBCT_CLOSE_REQUEST.
    CloseRequest,
    /// OFPBCT_CLOSE_REPLY.
    CloseReply,
    /// OFPBCT_COMMIT_REQUEST.
    CommitRequest,
    /// OFPBCT_COMMIT_REPLY.
    CommitReply,
    /// OFPBCT_DISCARD_REQUEST.
    DiscardRequest,
    /// OFPBCT_DISCARD_REPLY.
    DiscardReply,
}

/// OFPBF_ATOMIC: all or nothing.
pub const BF_ATOMIC: u16 = 1 << 0;
/// OFPBF_ORDERED: apply in the order added.
pub const BF_ORDERED: u16 = 1 << 1;

/// OFPT_BUNDLE_CONTROL body (no properties: the only ones defined are
/// experimenter properties and OF1.5's scheduling time, which are refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BundleCtrl {
    /// The bundle.
    pub bundle_id: u32,
    /// What to do (or what was done, for replies).
    pub ctrl_type: BundleCtrlType,
    /// OFPBF_* flags.
    pub flags: u16,
}

/// OFPT_BUNDLE_ADD_MESSAGE body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleAdd {
    /// The bundle.
    pub bundle_id: u32,
    /// OFPBF_* flags (must equal the bundle's).
    pub flags: u16,
    /// The message to add; its xid equals the outer message's.
    pub message: Box<OfpMsg>,
}

/// One OFPMP_FLOW_MONITOR request entry (OF1.4 §7.3.5.19; also the Nicira
/// and ONF OF1.3 forms, whose flags have the same bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMonitorRequest {
    /// Controller-chosen monitor id.
    pub monitor_id: u32,
    /// Only flows that output to this port (ANY: no filter).
    pub out_port: PortNo,
    /// Only flows that output to this group (ANY: no filter).
    pub out_group: GroupId,
    /// OFPFMF_* flags: INITIAL 1, ADD 2, REMOVED 4, MODIFY 8, INSTRUCTIONS
    /// 16, NO_ABBREV 32, ONLY_OWN 64 (Nicira/ONF: the same bits up to 32).
    pub flags: u16,
    /// Table or ALL.
    pub table_id: TableId,
    /// ADD, MODIFY or DELETE.
    pub command: FlowMonitorCommand,
    /// Only flows this match covers (non-strict).
    pub match_: Match,
}

/// OFPFMF_INITIAL.
pub const FMF_INITIAL: u16 = 1 << 0;
/// OFPFMF_ADD.
pub const FMF_ADD: u16 = 1 << 1;
/// OFPFMF_REMOVED.
pub const FMF_REMOVED: u16 = 1 << 2;
/// OFPFMF_MODIFY.
pub const FMF_MODIFY: u16 = 1 << 3;
/// OFPFMF_INSTRUCTIONS.
pub const FMF_INSTRUCTIONS: u16 = 1 << 4;
/// OFPFMF_NO_ABBREV (Nicira/ONF "OWN": own changes in full).
pub const FMF_NO_ABBREV: u16 = 1 << 5;
/// OFPFMF_ONLY_OWN (OF1.4 only).
pub const FMF_ONLY_OWN: u16 = 1 << 6;

/// OFPFMC_* flow monitor commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowMonitorCommand {
    /// OFPFMC_ADD.
    Add,
    /// OFPFMC_MODIFY.
    Modify,
    /// OFPFMC_DELETE.
    Delete,
}

/// What happened to a monitored flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowUpdateEvent {
    /// OFPFME_INITIAL: present when the monitor was created (Nicira/ONF
    /// report these as ADDED).
    Initial,
    /// OFPFME_ADDED.
    Added,
    /// OFPFME_REMOVED (Nicira/ONF DELETED).
    Removed,
    /// OFPFME_MODIFIED.
    Modified,
}

/// One flow-monitor update (an OFPMP_FLOW_MONITOR reply entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlowUpdate {
    /// `ofp_flow_update_full`.
    Full {
        /// Event.
        event: FlowUpdateEvent,
        /// Table.
        table_id: TableId,
        /// OFPRR_* for REMOVED, else 0.
        reason: u8,
        /// Idle timeout.
        idle_timeout: u16,
        /// Hard timeout.
        hard_timeout: u16,
        /// Priority.
        priority: u16,
        /// Cookie.
        cookie: Cookie,
        /// Match.
        match_: Match,
        /// Instructions (empty unless the monitor asked for them).
        instructions: Vec<Instruction>,
    },
    /// `ofp_flow_update_abbrev`: the change the controller's own request
    /// with this xid made.
    Abbrev {
        /// The request's xid.
        xid: u32,
    },
    /// OFPFME_PAUSED (OF1.4+).
    Paused,
    /// OFPFME_RESUMED (OF1.4+).
    Resumed,
}

/// Nicira (vendor 0x00002320) session-configuration messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NxMsg {
    /// NXT_SET_FLOW_FORMAT (12): always NXFF_OPENFLOW10 (0) here. NXM (2),
    /// which this switch does not speak, is refused at decode time with
    /// OFPBRC_EPERM, the error Open vSwitch gives for a format it will not
    /// use; `ovs-ofctl` then falls back to the OpenFlow 1.0 format.
    SetFlowFormat(u32),
    /// NXT_FLOW_MOD_TABLE_ID (15): whether an OF1.0 FLOW_MOD's command
    /// carries a table id in its upper byte.
    FlowModTableId(bool),
    /// NXT_SET_PACKET_IN_FORMAT (16): NXPIF_STANDARD (0), NXPIF_NXT_PACKET_IN
    /// (1) or NXPIF_NXT_PACKET_IN2 (2).
    SetPacketInFormat(u32),
    /// NXT_SET_CONTROLLER_ID (20): the controller's connection id.
    SetControllerId(u16),
}

/// OFPT_ROLE_STATUS body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleStatus {
    /// The new role.
    pub role: ControllerRole,
    /// OFPCRR_MASTER_REQUEST (0), CONFIG (1), EXPERIMENTER (2).
    pub reason: u8,
    /// Master election generation id.
    pub generation_id: u64,
}

/// An OF1.4+ SET_ASYNC: each mask `[master/equal, slave]` the message names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AsyncUpdate {
    /// PACKET_IN reasons.
    pub packet_in_mask: [Option<u32>; 2],
    /// PORT_STATUS reasons.
    pub port_status_mask: [Option<u32>; 2],
    /// FLOW_REMOVED reasons.
    pub flow_removed_mask: [Option<u32>; 2],
}

impl AsyncUpdate {
    /// Applies the masks this update names to `c`.
    pub fn apply(&self, c: &mut AsyncConfig) {
        for (dst, src) in [
            (&mut c.packet_in_mask, self.packet_in_mask),
            (&mut c.port_status_mask, self.port_status_mask),
            (&mut c.flow_removed_mask, self.flow_removed_mask),
        ] {
            for (d, s) in dst.iter_mut().zip(src) {
                if let Some(v) = s {
                    *d = v;
                }
            }
        }
    }
}

/// OFPT_ERROR body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorMsg {
    /// Error type.
    pub err_type: u16,
    /// Error code.
    pub code: u16,
    /// At least the first 64 bytes of the offending request (or text for HELLO_FAILED).
    pub data: Vec<u8>,
}

/// OFPT_FEATURES_REPLY body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchFeatures {
    /// Datapath id.
    pub datapath_id: DatapathId,
    /// Packets the switch can buffer (0: we never buffer).
    pub n_buffers: u32,
    /// Number of tables.
    pub n_tables: u8,
    /// Auxiliary connection id (0 = main).
    pub auxiliary_id: u8,
    /// OFPC_* capability bits.
    pub capabilities: u32,
    /// The ports: sent only in OpenFlow 1.0, whose FEATURES_REPLY carries
    /// them (later versions answer OFPMP_PORT_DESC instead; ignored there).
    pub ports: Vec<PortDesc>,
}

/// GET_CONFIG_REPLY / SET_CONFIG body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwitchConfig {
    /// OFPC_FRAG_* flags.
    pub flags: u16,
    /// Bytes of a table-miss packet to send to the controller.
    pub miss_send_len: u16,
}

/// OFPT_PACKET_IN body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketIn {
    /// Buffer id (always NO_BUFFER from us).
    pub buffer_id: u32,
    /// Full length of the frame.
    pub total_len: u16,
    /// OFPR_NO_MATCH (0), OFPR_ACTION (1), OFPR_INVALID_TTL (2).
    pub reason: u8,
    /// Table the packet was in.
    pub table_id: TableId,
    /// Cookie of the rule that sent it (all ones for a miss without a rule).
    pub cookie: Cookie,
    /// Pipeline fields (at least in_port).
    pub match_: Match,
    /// The (possibly truncated) frame.
    pub data: Vec<u8>,
}

/// OFPT_FLOW_REMOVED body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowRemoved {
    /// Rule cookie.
    pub cookie: Cookie,
    /// Rule priority.
    pub priority: u16,
    /// OFPRR_IDLE_TIMEOUT (0), HARD_TIMEOUT (1), DELETE (2), GROUP_DELETE (3), METER_DELETE (4).
    pub reason: u8,
    /// Table.
    pub table_id: TableId,
    /// Lifetime, seconds part.
    pub duration_sec: u32,
    /// Lifetime, nanoseconds part.
    pub duration_nsec: u32,
    /// Rule idle timeout.
    pub idle_timeout: u16,
    /// Rule hard timeout.
    pub hard_timeout: u16,
    /// Packets matched.
    pub packet_count: u64,
    /// Bytes matched.
    pub byte_count: u64,
    /// The rule's match.
    pub match_: Match,
}

/// An `ofp_port` description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortDesc {
    /// Port number.
    pub port_no: PortNo,
    /// Hardware address.
    pub hw_addr: MacAddr,
    /// Interface name (at most 15 bytes on the wire).
    pub name: String,
    /// OFPPC_* config bits (PORT_DOWN 1, NO_RECV 4, NO_FWD 32, NO_PACKET_IN 64).
    pub config: u32,
    /// OFPPS_* state bits (LINK_DOWN 1, BLOCKED 2, LIVE 4).
    pub state: u32,
    /// Current features (OFPPF_*).
    pub curr: u32,
    /// Advertised features.
    pub advertised: u32,
    /// Supported features.
    pub supported: u32,
    /// Peer features.
    pub peer: u32,
    /// Current speed, kbps.
    pub curr_speed: u32,
    /// Maximum speed, kbps.
    pub max_speed: u32,
}

/// OFPT_PORT_STATUS body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortStatus {
    /// OFPPR_ADD (0), DELETE (1), MODIFY (2).
    pub reason: u8,
    /// The port.
    pub desc: PortDesc,
}

/// OFPT_PACKET_OUT body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PacketOut {
    /// Buffer id (we only accept NO_BUFFER).
    pub buffer_id: u32,
    /// Input port for the actions' purposes (CONTROLLER or LOCAL or a port).
    pub in_port: PortNo,
    /// Actions to apply.
    pub actions: Vec<Action>,
    /// The frame.
    pub data: Vec<u8>,
}

/// FLOW_MOD commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowModCommand {
    /// OFPFC_ADD.
    Add,
    /// OFPFC_MODIFY.
    Modify,
    /// OFPFC_MODIFY_STRICT.
    ModifyStrict,
    /// OFPFC_DELETE.
    Delete,
    /// OFPFC_DELETE_STRICT.
    DeleteStrict,
}

/// OFPFF_SEND_FLOW_REM.
pub const FF_SEND_FLOW_REM: u16 = 1 << 0;
/// OFPFF_CHECK_OVERLAP.
pub const FF_CHECK_OVERLAP: u16 = 1 << 1;
/// OFPFF_RESET_COUNTS.
pub const FF_RESET_COUNTS: u16 = 1 << 2;
/// OFPFF_NO_PKT_COUNTS.
pub const FF_NO_PKT_COUNTS: u16 = 1 << 3;
/// OFPFF_NO_BYT_COUNTS.
pub const FF_NO_BYT_COUNTS: u16 = 1 << 4;

/// OFPT_FLOW_MOD body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowMod {
    /// Cookie to set (add) or to filter with `cookie_mask` (modify/delete).
    pub cookie: Cookie,
    /// Which cookie bits must match for modify/delete.
    pub cookie_mask: u64,
    /// Table (ALL allowed for delete).
    pub table_id: TableId,
    /// Command.
    pub command: FlowModCommand,
    /// Idle timeout in seconds (0 = none).
    pub idle_timeout: u16,
    /// Hard timeout in seconds (0 = none).
    pub hard_timeout: u16,
    /// Priority.
    pub priority: u16,
    /// Buffered packet to apply to (NO_BUFFER from every controller we know).
    pub buffer_id: u32,
    /// Delete filter: rules that output to this port (ANY = no filter).
    pub out_port: PortNo,
    /// Delete filter: rules that output to this group (ANY = no filter).
    pub out_group: GroupId,
    /// OFPFF_* flags.
    pub flags: u16,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// A `command` on `table_id` at `priority` with `match_` and
    /// `instructions`, everything else as a controller leaves it by default:
    /// cookie 0 (mask 0), no timeouts, no buffer, no out_port/out_group
    /// filter, no flags. Callers set what differs.
    pub fn new(
        command: FlowModCommand,
        table_id: TableId,
        priority: u16,
        match_: Match,
        instructions: Vec<Instruction>,
    ) -> FlowMod {
        FlowMod {
            cookie: Cookie(0),
            cookie_mask: 0,
            table_id,
            command,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: NO_BUFFER,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            flags: 0,
            match_,
            instructions,
        }
    }
}

/// GROUP_MOD commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupModCommand {
    /// OFPGC_ADD.
    Add,
    /// OFPGC_MODIFY.
    Modify,
    /// OFPGC_DELETE.
    Delete,
}

/// Group types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupType {
    /// OFPGT_ALL: every bucket.
    All,
    /// OFPGT_SELECT: one bucket, chosen by hash.
    Select,
    /// OFPGT_INDIRECT: the one bucket.
    Indirect,
    /// OFPGT_FF: the first live bucket.
    FastFailover,
}

/// One group bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// Relative weight (select groups).
    pub weight: u16,
    /// Port whose liveness decides this bucket (fast failover), or ANY.
    pub watch_port: PortNo,
    /// Group whose liveness decides this bucket, or ANY.
    pub watch_group: GroupId,
    /// Actions.
    pub actions: Vec<Action>,
}

/// OFPT_GROUP_MOD body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMod {
    /// Command.
    pub command: GroupModCommand,
    /// Type.
    pub group_type: GroupType,
    /// Group id.
    pub group_id: GroupId,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

/// OFPT_PORT_MOD body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMod {
    /// Port.
    pub port_no: PortNo,
    /// Must equal the port's address.
    pub hw_addr: MacAddr,
    /// New OFPPC_* bits (under `mask`).
    pub config: u32,
    /// Which config bits to change.
    pub mask: u32,
    /// Features to advertise (0 = unchanged).
    pub advertise: u32,
}

/// Controller roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControllerRole {
    /// OFPCR_ROLE_NOCHANGE.
    NoChange,
    /// OFPCR_ROLE_EQUAL.
    Equal,
    /// OFPCR_ROLE_MASTER.
    Master,
    /// OFPCR_ROLE_SLAVE.
    Slave,
}

/// ROLE_REQUEST / ROLE_REPLY body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleMsg {
    /// Role.
    pub role: ControllerRole,
    /// Master election generation id.
    pub generation_id: u64,
}

/// GET_ASYNC_REPLY / SET_ASYNC body: bitmaps of reasons, `[master/equal, slave]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AsyncConfig {
    /// PACKET_IN reasons.
    pub packet_in_mask: [u32; 2],
    /// PORT_STATUS reasons.
    pub port_status_mask: [u32; 2],
    /// FLOW_REMOVED reasons.
    pub flow_removed_mask: [u32; 2],
}

impl Default for AsyncConfig {
    /// The OpenFlow 1.3 defaults (§6.1.1): master/equal get all packet-ins but
    /// invalid-TTL, all port status and all flow-removed; slaves get only port status.
    fn default() -> Self {
        AsyncConfig {
            packet_in_mask: [0x3, 0],
            port_status_mask: [0x7, 0x7],
            flow_removed_mask: [0xf, 0],
        }
    }
}

/// METER_MOD commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MeterModCommand {
    /// OFPMC_ADD.
    Add,
    /// OFPMC_MODIFY.
    Modify,
    /// OFPMC_DELETE.
    Delete,
}

/// OFPMF_KBPS.
pub const MF_KBPS: u16 = 1;
/// OFPMF_PKTPS.
pub const MF_PKTPS: u16 = 2;
/// OFPMF_BURST.
pub const MF_BURST: u16 = 4;
/// OFPMF_STATS.
pub const MF_STATS: u16 = 8;

/// A meter band.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MeterBand {
    /// OFPMBT_DROP.
    Drop {
        /// Rate (kbps or pps by the meter's flags).
        rate: u32,
        /// Burst size.
        burst_size: u32,
    },
    /// OFPMBT_DSCP_REMARK.
    DscpRemark {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Number of drop-precedence levels to add.
        prec_level: u8,
    },
    /// OFPMBT_EXPERIMENTER.
    Experimenter {
        /// Rate.
        rate: u32,
        /// Burst size.
        burst_size: u32,
        /// Experimenter id.
        experimenter: u32,
    },
}

/// OFPT_METER_MOD body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterMod {
    /// Command.
    pub command: MeterModCommand,
    /// OFPMF_* flags.
    pub flags: u16,
    /// Meter id.
    pub meter_id: MeterId,
    /// Bands.
    pub bands: Vec<MeterBand>,
}

/// OFPMPF_REQ_MORE / OFPMPF_REPLY_MORE.
pub const MPF_MORE: u16 = 1;

/// A multipart request (its `flags` carries REQ_MORE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartRequest {
    /// OFPMPF_REQ_MORE.
    pub flags: u16,
    /// Body.
    pub body: MpRequestBody,
}

/// Flow / aggregate statistics filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStatsRequest {
    /// Table or ALL.
    pub table_id: TableId,
    /// Out-port filter or ANY.
    pub out_port: PortNo,
    /// Out-group filter or ANY.
    pub out_group: GroupId,
    /// Cookie filter value.
    pub cookie: Cookie,
    /// Cookie filter mask.
    pub cookie_mask: u64,
    /// Match filter (non-strict).
    pub match_: Match,
}

/// Multipart request bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MpRequestBody {
    /// OFPMP_DESC.
    Desc,
    /// OFPMP_FLOW.
    Flow(FlowStatsRequest),
    /// OFPMP_AGGREGATE.
    Aggregate(FlowStatsRequest),
    /// OFPMP_TABLE.
    Table,
    /// OFPMP_PORT_STATS for a port or ANY.
    PortStats(PortNo),
    /// OFPMP_QUEUE for a port and queue (ANY/ALL).
    Queue {
        /// Port.
        port: PortNo,
        /// Queue id.
        queue_id: u32,
    },
    /// OFPMP_GROUP for a group or ALL.
    Group(GroupId),
    /// OFPMP_GROUP_DESC.
    GroupDesc,
    /// OFPMP_GROUP_FEATURES.
    GroupFeatures,
    /// OFPMP_METER for a meter or ALL.
    Meter(MeterId),
    /// OFPMP_METER_CONFIG for a meter or ALL.
    MeterConfig(MeterId),
    /// OFPMP_METER_FEATURES.
    MeterFeatures,
    /// OFPMP_TABLE_FEATURES: empty body = get; otherwise a set request.
    TableFeatures(Vec<TableFeatures>),
    /// OFPMP_PORT_DESC.
    PortDesc,
    /// OFPMP_EXPERIMENTER.
    Experimenter {
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Payload.
        data: Vec<u8>,
    },
    /// OFPMP_FLOW_MONITOR (OF1.4+), ONFST_FLOW_MONITOR (OF1.3) or Nicira
    /// NXST_FLOW_MONITOR (OF1.0).
    FlowMonitor(Vec<FlowMonitorRequest>),
}

/// A multipart reply (`flags` carries REPLY_MORE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultipartReply {
    /// OFPMPF_REPLY_MORE.
    pub flags: u16,
    /// Body.
    pub body: MpReplyBody,
}

/// OFPMP_DESC reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescStats {
    /// Manufacturer.
    pub mfr_desc: String,
    /// Hardware.
    pub hw_desc: String,
    /// Software.
    pub sw_desc: String,
    /// Serial number.
    pub serial_num: String,
    /// Datapath description.
    pub dp_desc: String,
}

/// One flow in an OFPMP_FLOW reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlowStats {
    /// Table.
    pub table_id: TableId,
    /// Age, seconds.
    pub duration_sec: u32,
    /// Age, nanoseconds part.
    pub duration_nsec: u32,
    /// Priority.
    pub priority: u16,
    /// Idle timeout.
    pub idle_timeout: u16,
    /// Hard timeout.
    pub hard_timeout: u16,
    /// OFPFF_* flags.
    pub flags: u16,
    /// Cookie.
    pub cookie: Cookie,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Match.
    pub match_: Match,
    /// Instructions.
    pub instructions: Vec<Instruction>,
}

/// OFPMP_AGGREGATE reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregateStats {
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Flows.
    pub flow_count: u32,
}

/// One table in an OFPMP_TABLE reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableStats {
    /// Table.
    pub table_id: TableId,
    /// Rules in it.
    pub active_count: u32,
    /// Packets looked up.
    pub lookup_count: u64,
    /// Packets that hit a rule.
    pub matched_count: u64,
}

/// One port in an OFPMP_PORT_STATS reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStats {
    /// Port.
    pub port_no: PortNo,
    /// Received packets.
    pub rx_packets: u64,
    /// Sent packets.
    pub tx_packets: u64,
    /// Received bytes.
    pub rx_bytes: u64,
    /// Sent bytes.
    pub tx_bytes: u64,
    /// Receive drops.
    pub rx_dropped: u64,
    /// Transmit drops.
    pub tx_dropped: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Transmit errors.
    pub tx_errors: u64,
    /// Frame alignment errors.
    pub rx_frame_err: u64,
    /// Overruns.
    pub rx_over_err: u64,
    /// CRC errors.
    pub rx_crc_err: u64,
    /// Collisions.
    pub collisions: u64,
    /// Age, seconds.
    pub duration_sec: u32,
    /// Age, nanoseconds part.
    pub duration_nsec: u32,
}

/// One group in an OFPMP_GROUP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStats {
    /// Group.
    pub group_id: GroupId,
    /// Rules that point at it.
    pub ref_count: u32,
    /// Packets.
    pub packet_count: u64,
    /// Bytes.
    pub byte_count: u64,
    /// Age, seconds.
    pub duration_sec: u32,
    /// Age, nanoseconds part.
    pub duration_nsec: u32,
    /// Per bucket `(packets, bytes)`.
    pub bucket_stats: Vec<(u64, u64)>,
}

/// One group in an OFPMP_GROUP_DESC reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDesc {
    /// Type.
    pub group_type: GroupType,
    /// Group.
    pub group_id: GroupId,
    /// Buckets.
    pub buckets: Vec<Bucket>,
}

/// OFPMP_GROUP_FEATURES reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupFeatures {
    /// Bitmap of OFPGT_* supported.
    pub types: u32,
    /// OFPGFC_* capabilities.
    pub capabilities: u32,
    /// Max groups per type.
    pub max_groups: [u32; 4],
    /// Bitmap of OFPAT_* supported per type.
    pub actions: [u32; 4],
}

/// One meter in an OFPMP_METER reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterStats {
    /// Meter.
    pub meter_id: MeterId,
    /// Flows using it.
    pub flow_count: u32,
    /// Packets in.
    pub packet_in_count: u64,
    /// Bytes in.
    pub byte_in_count: u64,
    /// Age, seconds.
    pub duration_sec: u32,
    /// Age, nanoseconds part.
    pub duration_nsec: u32,
    /// Per band `(packets, bytes)`.
    pub band_stats: Vec<(u64, u64)>,
}

/// One meter in an OFPMP_METER_CONFIG reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeterConfig {
    /// OFPMF_* flags.
    pub flags: u16,
    /// Meter.
    pub meter_id: MeterId,
    /// Bands.
    pub bands: Vec<MeterBand>,
}

/// OFPMP_METER_FEATURES reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeterFeatures {
    /// Max meters.
    pub max_meter: u32,
    /// Bitmap of OFPMBT_* supported.
    pub band_types: u32,
    /// OFPMF_* capabilities.
    pub capabilities: u32,
    /// Max bands per meter.
    pub max_bands: u8,
    /// Max colour value.
    pub max_color: u8,
}

/// One table-feature property (OFPTFPT_*). Lists of ids are kept as raw ids so
/// that properties we do not interpret still round-trip.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableFeatureProp {
    /// OFPTFPT_INSTRUCTIONS (0) / _MISS (1): instruction types.
    Instructions {
        /// True for the _MISS variant.
        miss: bool,
        /// OFPIT_* types.
        ids: Vec<u16>,
    },
    /// OFPTFPT_NEXT_TABLES (2) / _MISS (3).
    NextTables {
        /// True for the _MISS variant.
        miss: bool,
        /// Table ids.
        tables: Vec<u8>,
    },
    /// OFPTFPT_WRITE_ACTIONS (4/5) and APPLY_ACTIONS (6/7): action types.
    Actions {
        /// Property type (4, 5, 6 or 7).
        prop_type: u16,
        /// OFPAT_* types.
        ids: Vec<u16>,
    },
    /// OFPTFPT_MATCH (8), WILDCARDS (10), WRITE_SETFIELD (12/13), APPLY_SETFIELD (14/15):
    /// OXM headers (32-bit class|field|hasmask|len).
    Oxms {
        /// Property type.
        prop_type: u16,
        /// OXM headers.
        oxm_headers: Vec<u32>,
    },
    /// OFPTFPT_EXPERIMENTER (0xfffe/0xffff).
    Experimenter {
        /// Property type.
        prop_type: u16,
        /// Experimenter id.
        experimenter: u32,
        /// Experimenter type.
        exp_type: u32,
        /// Data.
        data: Vec<u8>,
    },
}

/// One table's `ofp_table_features`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableFeatures {
    /// Table.
    pub table_id: TableId,
    /// Name.
    pub name: String,
    /// Metadata bits readable.
    pub metadata_match: u64,
    /// Metadata bits writable.
    pub metadata_write: u64,
    /// OFPTC_* config.
    pub config: u32,
    /// Max entries.
    pub max_entries: u32,
    /// Properties.
    pub properties: Vec<TableFeatureProp>,
}

/// Multipart reply bodies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MpReplyBody {
    /// OFPMP_DESC.
    Desc(DescStats),
    /// OFPMP_FLOW.
    Flow(Vec<FlowStats>),
    /// OFPMP_AGGREGATE.
    Aggregate(AggregateStats),
    /// OFPMP_TABLE.
    Table(Vec<TableStats>),
    /// OFPMP_PORT_STATS.
    PortStats(Vec<PortStats>),
    /// OFPMP_QUEUE (always empty: no queues).
    Queue,
    /// OFPMP_GROUP.
    Group(Vec<GroupStats>),
    /// OFPMP_GROUP_DESC.
    GroupDesc(Vec<GroupDesc>),
    /// OFPMP_GROUP_FEATURES.
    GroupFeatures(GroupFeatures),
    /// OFPMP_METER.
    Meter(Vec<MeterStats>),
    /// OFPMP_METER_CONFIG.
    MeterConfig(Vec<MeterConfig>),
    /// OFPMP_METER_FEATURES.
    MeterFeatures(MeterFeatures),
    /// OFPMP_TABLE_FEATURES.
    TableFeatures(Vec<TableFeatures>),
    /// OFPMP_PORT_DESC.
    PortDesc(Vec<PortDesc>),
    /// OFPMP_FLOW_MONITOR (and its ONF/Nicira forms): initial flows in
    /// answer to a request, later updates with xid 0.
    FlowMonitor(Vec<FlowUpdate>),
}
