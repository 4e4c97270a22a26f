//! OpenFlow 1.0 (wire version 0x01) on the edge of the one internal model.
//!
//! OF1.0 differs from 1.3 almost everywhere: a fixed 40-byte `ofp_match` with
//! wildcard bits instead of OXM, actions directly in FLOW_MOD (no
//! instructions), 16-bit port numbers, ports inside FEATURES_REPLY, STATS
//! instead of MULTIPART, other message and error numbers. This module turns
//! OF1.0 bytes into the 1.3-shaped [`Message`] model and back:
//!
//! - matches: [`match_from_wire`] / [`match_to_wire`]. Fields whose
//!   prerequisites are not met are dropped on input, as Open vSwitch's
//!   `ofputil_match_from_ofp10_match()` + `ofputil_normalize_match()` do. On
//!   output a field OF1.0 cannot express (IPv6, MPLS, metadata, tunnel id,
//!   partial MAC masks...) makes FLOW_MOD encoding fail; in flow stats,
//!   FLOW_REMOVED and PACKET_IN it is left out (the lossy form OVS prints
//!   for a flow it dumps in the OpenFlow 1.0 flow format);
//! - ports: 0..0xff00 map to themselves, reserved 0xff00..=0xffff to
//!   0xffffff00..=0xffffffff (OVS `ofputil_port_from_ofp11()`);
//! - actions: SET_VLAN_VID, SET_DL_SRC, SET_NW_TOS, SET_TP_SRC... become
//!   `set_field`, STRIP_VLAN pop_vlan, ENQUEUE set_queue + output; Nicira's
//!   NXAST_DEC_TTL, NXAST_SET_QUEUE and NXAST_GROUP are actions, and
//!   NXAST_WRITE_METADATA and a final NXAST_RESUBMIT_TABLE stand for the
//!   write-metadata and goto-table instructions, as Open vSwitch writes them;
//! - the Nicira session messages `ovs-ofctl` sends (NXT_SET_FLOW_FORMAT,
//!   NXT_FLOW_MOD_TABLE_ID, NXT_SET_PACKET_IN_FORMAT, NXT_SET_CONTROLLER_ID)
//!   become [`Message::Nicira`]; NXM flow formats and Nicira packet-in
//!   formats are refused (OFPBRC_EPERM), which makes `ovs-ofctl` fall back to
//!   the standard OF1.0 forms; Nicira's group statistics requests
//!   (NXST_GROUP_DESC, NXST_GROUP_FEATURES) map to the model's group requests.

use super::controller::{emit_error, parse_error};
use super::error::{OfpError, NX_VENDOR_ID};
use super::framing::Version;
use super::framing::{EncodeError, MAX_MSG_LEN};
use super::message::*;
use super::oxm::{Match, OxmField, OxmId};
use super::wire::{patch_u16, Field, FieldsMut, Reader};
use super::{group, hello, switch};
use crate::types::{Cookie, DatapathId, GroupId, MacAddr, PortNo, TableId};

use super::of10_fields::*;

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// OF1.0 OFPC_* capabilities both versions share (flow, table, port and
/// queue stats, IP reassembly).
const CAPS_COMMON: u32 = 1 | 2 | 4 | 32 | 64;
/// OFPC10_ARP_MATCH_IP: ARP's addresses can be matched through nw_src/dst.
const CAPS10_ARP_MATCH_IP: u32 = 128;

/// `ofp_switch_features` (OF1.0) before its ports.
mod features {
    use super::Field;
    pub(super) const DATAPATH_ID: Field = 0..8;
    pub(super) const N_BUFFERS: Field = 8..12;
    pub(super) const N_TABLES: usize = 12;
    pub(super) const CAPABILITIES: Field = 16..20;
    pub(super) const ACTIONS: Field = 20..24;
    pub(super) const LEN: usize = 24;
}

fn parse_features(mut r: Reader<'_>) -> Result<SwitchFeatures, OfpError> {
    use features as F;
    let b = r.fixed(F::LEN)?;
    Ok(SwitchFeatures {
        datapath_id: DatapathId(b.u64(F::DATAPATH_ID)),
        n_buffers: b.u32(F::N_BUFFERS),
        n_tables: b.u8(F::N_TABLES),
        auxiliary_id: 0,
        capabilities: b.u32(F::CAPABILITIES) & CAPS_COMMON,
        ports: r.fixed_entries(phy_port::LEN, parse_phy_port)?,
    })
}

fn emit_features(out: &mut Vec<u8>, f: &SwitchFeatures) -> Result<(), EncodeError> {
    use features as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u64(F::DATAPATH_ID, f.datapath_id.0)
        .set_u32(F::N_BUFFERS, f.n_buffers)
        .set_u8(F::N_TABLES, f.n_tables)
        .set_u32(
            F::CAPABILITIES,
            (f.capabilities & CAPS_COMMON) | CAPS10_ARP_MATCH_IP,
        )
        .set_u32(F::ACTIONS, ACTIONS_BITMAP);
    b.emit(out);
    for p in &f.ports {
        emit_phy_port(out, p)?;
    }
    Ok(())
}

/// `ofp_packet_in` (OF1.0) before the frame.
mod packet_in {
    use super::Field;
    pub(super) const BUFFER_ID: Field = 0..4;
    pub(super) const TOTAL_LEN: Field = 4..6;
    pub(super) const IN_PORT: Field = 6..8;
    pub(super) const REASON: usize = 8;
    pub(super) const LEN: usize = 10;
}

/// OF1.0 has no table or cookie in PACKET_IN: the model gets table 0 and
/// the all-ones cookie ("no rule"), as OVS's decoder gives them.
fn parse_packet_in(mut r: Reader<'_>) -> Result<PacketIn, OfpError> {
    use packet_in as F;
    let b = r.fixed(F::LEN)?;
    Ok(PacketIn {
        buffer_id: b.u32(F::BUFFER_ID),
        total_len: b.u16(F::TOTAL_LEN),
        reason: b.u8(F::REASON),
        table_id: TableId(0),
        cookie: Cookie(u64::MAX),
        match_: Match {
            fields: vec![OxmField::in_port(port_from_wire(b.u16(F::IN_PORT)))],
        },
        data: r.take_rest().to_vec(),
    })
}

fn emit_packet_in(out: &mut Vec<u8>, p: &PacketIn) -> Result<(), EncodeError> {
    use packet_in as F;
    let in_port = p
        .match_
        .get(OxmId::InPort)
        .map_or(PortNo::ANY, |f| PortNo(f.value as u32));
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::BUFFER_ID, p.buffer_id)
        .set_u16(F::TOTAL_LEN, p.total_len)
        .set_u16(F::IN_PORT, port_or(in_port, "an input port above 0xff00")?)
        // OF1.0 knows only NO_MATCH (0) and ACTION (1).
        .set_u8(F::REASON, p.reason.min(1));
    b.emit(out);
    out.extend_from_slice(&p.data);
    Ok(())
}

/// `ofp_flow_removed` (OF1.0) after its match.
mod flow_removed {
    use super::Field;
    pub(super) const COOKIE: Field = 0..8;
    pub(super) const PRIORITY: Field = 8..10;
    pub(super) const REASON: usize = 10;
    pub(super) const DURATION_SEC: Field = 12..16;
    pub(super) const DURATION_NSEC: Field = 16..20;
    pub(super) const IDLE_TIMEOUT: Field = 20..22;
    pub(super) const PACKET_COUNT: Field = 24..32;
    pub(super) const BYTE_COUNT: Field = 32..40;
    pub(super) const LEN: usize = 40;
}

fn parse_flow_removed(mut r: Reader<'_>) -> Result<FlowRemoved, OfpError> {
    use flow_removed as F;
    if r.remaining() != ofp_match::LEN + F::LEN {
        return Err(OfpError::BadLen);
    }
    let match_ = parse_match(&mut r)?;
    let b = r.fixed(F::LEN)?;
    Ok(FlowRemoved {
        cookie: Cookie(b.u64(F::COOKIE)),
        priority: b.u16(F::PRIORITY),
        reason: b.u8(F::REASON),
        table_id: TableId(0),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: 0,
        packet_count: b.u64(F::PACKET_COUNT),
        byte_count: b.u64(F::BYTE_COUNT),
        match_,
    })
}

fn emit_flow_removed(out: &mut Vec<u8>, f: &FlowRemoved) -> Result<(), EncodeError> {
    use flow_removed as F;
    match_to_wire(out, &f.match_, true)?;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u64(F::COOKIE, f.cookie.0)
        .set_u16(F::PRIORITY, f.priority)
        // OF1.0 reasons: IDLE_TIMEOUT 0, HARD_TIMEOUT 1, DELETE 2.
        .set_u8(F::REASON, f.reason.min(2))
        .set_u32(F::DURATION_SEC, f.duration_sec)
        .set_u32(F::DURATION_NSEC, f.duration_nsec)
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u64(F::PACKET_COUNT, f.packet_count)
        .set_u64(F::BYTE_COUNT, f.byte_count);
    b.emit(out);
    Ok(())
}

/// `ofp_packet_out` (OF1.0) before its actions.
mod packet_out {
    use super::Field;
    pub(super) const BUFFER_ID: Field = 0..4;
    pub(super) const IN_PORT: Field = 4..6;
    pub(super) const ACTIONS_LEN: Field = 6..8;
    pub(super) const LEN: usize = 8;
}

fn parse_packet_out(mut r: Reader<'_>) -> Result<PacketOut, OfpError> {
    use packet_out as F;
    let b = r.fixed(F::LEN)?;
    let acts = r.sub(b.u16(F::ACTIONS_LEN) as usize, OfpError::BadLen)?;
    Ok(PacketOut {
        buffer_id: b.u32(F::BUFFER_ID),
        in_port: port_from_wire(b.u16(F::IN_PORT)),
        actions: parse_actions(Reader::new(acts.rest(), OfpError::BadActionLen), None)?,
        data: r.take_rest().to_vec(),
    })
}

fn emit_packet_out(out: &mut Vec<u8>, p: &PacketOut) -> Result<(), EncodeError> {
    use packet_out as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::BUFFER_ID, p.buffer_id).set_u16(
        F::IN_PORT,
        port_or(p.in_port, "an input port above 0xff00")?,
    );
    b.emit(out);
    emit_actions(out, &p.actions)?;
    let alen = out.len() - start - F::LEN;
    patch_u16(out, start + F::ACTIONS_LEN.start, alen as u16);
    out.extend_from_slice(&p.data);
    Ok(())
}

/// `ofp_flow_mod` (OF1.0) after its match.
mod flow_mod {
    use super::Field;
    pub(super) const COOKIE: Field = 0..8;
    pub(super) const COMMAND: Field = 8..10;
    pub(super) const IDLE_TIMEOUT: Field = 10..12;
    pub(super) const HARD_TIMEOUT: Field = 12..14;
    pub(super) const PRIORITY: Field = 14..16;
    pub(super) const BUFFER_ID: Field = 16..20;
    pub(super) const OUT_PORT: Field = 20..22;
    pub(super) const FLAGS: Field = 22..24;
    pub(super) const LEN: usize = 24;
}

/// OFPFF_SEND_FLOW_REM | OFPFF_CHECK_OVERLAP: the OF1.0 flags with the same
/// meaning in the model. OFPFF10_EMERG (emergency flows, which Open vSwitch
/// does not support either) and undefined bits are BAD_FLAGS.
const FF10_KNOWN: u16 = FF_SEND_FLOW_REM | FF_CHECK_OVERLAP;

/// OF1.0 FLOW_MOD. The command's upper byte is the table id when
/// NXT_FLOW_MOD_TABLE_ID is on (and zero otherwise); a zero upper byte means
/// table 0 for ADD and every table for MODIFY/DELETE, OF1.0's only meanings.
fn parse_flow_mod(mut r: Reader<'_>) -> Result<FlowMod, OfpError> {
    use flow_mod as F;
    let match_ = parse_match(&mut r)?;
    let b = r.fixed(F::LEN)?;
    let raw = b.u16(F::COMMAND);
    let command = super::flow::command_from_wire(raw as u8).ok_or(OfpError::BadFlowModCommand)?;
    let table_id = match (raw >> 8, command) {
        (0, FlowModCommand::Add) => TableId(0),
        (0, _) => TableId::ALL,
        (t, _) => TableId(t as u8),
    };
    let flags = b.u16(F::FLAGS);
    if flags & !FF10_KNOWN != 0 {
        return Err(OfpError::BadFlowModFlags);
    }
    let instructions =
        parse_instructions(Reader::new(r.take_rest(), OfpError::BadActionLen), &match_)?;
    Ok(FlowMod {
        cookie: Cookie(b.u64(F::COOKIE)),
        cookie_mask: 0,
        table_id,
        command,
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        priority: b.u16(F::PRIORITY),
        buffer_id: b.u32(F::BUFFER_ID),
        out_port: port_from_wire(b.u16(F::OUT_PORT)),
        out_group: GroupId::ANY,
        flags,
        match_,
        instructions,
    })
}

fn emit_flow_mod(out: &mut Vec<u8>, f: &FlowMod) -> Result<(), EncodeError> {
    use flow_mod as F;
    if f.flags & !FF10_KNOWN != 0 {
        return Err(EncodeError::Unsupported {
            version: V,
            what: "flow-mod flags other than send_flow_rem and check_overlap",
        });
    }
    match_to_wire(out, &f.match_, false)?;
    let table = match (f.table_id, f.command) {
        (TableId(0), FlowModCommand::Add) | (TableId::ALL, _) => 0,
        (t, _) => t.0 as u16,
    };
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u64(F::COOKIE, f.cookie.0)
        .set_u16(
            F::COMMAND,
            (table << 8) | super::flow::command_to_wire(f.command) as u16,
        )
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
        .set_u16(F::PRIORITY, f.priority)
        .set_u32(F::BUFFER_ID, f.buffer_id)
        .set_u16(
            F::OUT_PORT,
            port_or(f.out_port, "an out_port above 0xff00")?,
        )
        .set_u16(F::FLAGS, f.flags);
    b.emit(out);
    emit_instructions(out, &f.instructions, &f.match_, false)
}

/// `ofp_port_status` (OF1.0): reason, pad 7, `ofp_phy_port`.
const PORT_STATUS_HEAD: usize = 8;

fn parse_port_status(mut r: Reader<'_>) -> Result<PortStatus, OfpError> {
    let b = r.exact(PORT_STATUS_HEAD + phy_port::LEN)?;
    let mut rest = Reader::new(&b.0[PORT_STATUS_HEAD..], OfpError::BadLen);
    Ok(PortStatus {
        reason: b.u8(0),
        desc: parse_phy_port(&mut rest)?,
    })
}

fn emit_port_status(out: &mut Vec<u8>, p: &PortStatus) -> Result<(), EncodeError> {
    let mut b = FieldsMut::<PORT_STATUS_HEAD>::new();
    b.set_u8(0, p.reason);
    b.emit(out);
    emit_phy_port(out, &p.desc)
}

/// `ofp_port_mod` (OF1.0).
mod port_mod {
    use super::Field;
    pub(super) const PORT_NO: Field = 0..2;
    pub(super) const HW_ADDR: Field = 2..8;
    pub(super) const CONFIG: Field = 8..12;
    pub(super) const MASK: Field = 12..16;
    pub(super) const ADVERTISE: Field = 16..20;
    pub(super) const LEN: usize = 24;
}

fn parse_port_mod(mut r: Reader<'_>) -> Result<PortMod, OfpError> {
    use port_mod as F;
    let b = r.exact(F::LEN)?;
    Ok(PortMod {
        port_no: port_from_wire(b.u16(F::PORT_NO)),
        hw_addr: MacAddr(b.mac(F::HW_ADDR)),
        config: b.u32(F::CONFIG),
        mask: b.u32(F::MASK),
        advertise: features_from_wire(b.u32(F::ADVERTISE)),
    })
}

fn emit_port_mod(out: &mut Vec<u8>, p: &PortMod) -> Result<(), EncodeError> {
    use port_mod as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(F::PORT_NO, port_or(p.port_no, "a port above 0xff00")?)
        .set_bytes(F::HW_ADDR, &p.hw_addr.0)
        .set_u32(F::CONFIG, p.config)
        .set_u32(F::MASK, p.mask)
        .set_u32(F::ADVERTISE, features_to_wire(p.advertise));
    b.emit(out);
    Ok(())
}

/// `ofp_queue_get_config_request` (OF1.0): port, pad 2; the reply: port,
/// pad 6 (and no queues: we have none).
const QUEUE_REQUEST_LEN: usize = 4;
const QUEUE_REPLY_LEN: usize = 8;

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

/// `ofp_stats_request`/`reply` after `ofp_header`: type, flags.
mod stats_header {
    use super::Field;
    pub(super) const TYPE: Field = 0..2;
    pub(super) const FLAGS: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

pub(crate) fn emit_stats_header(out: &mut Vec<u8>, t: u16, flags: u16) {
    let mut b = FieldsMut::<{ stats_header::LEN }>::new();
    b.set_u16(stats_header::TYPE, t)
        .set_u16(stats_header::FLAGS, flags);
    b.emit(out);
}

/// `ofp_flow_stats_request` (OF1.0) after its match: table, pad, out_port.
mod flow_stats_request {
    use super::Field;
    pub(super) const TABLE_ID: usize = 0;
    pub(super) const OUT_PORT: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

/// The Nicira vendor-stats header after the stats header: vendor, subtype,
/// pad 4 (`nicira10_stats_msg`).
mod nx_stats {
    use super::Field;
    pub(super) const VENDOR: Field = 0..4;
    pub(super) const SUBTYPE: Field = 4..8;
    pub(super) const LEN: usize = 12;
}

fn parse_stats_request(mut r: Reader<'_>) -> Result<MultipartRequest, OfpError> {
    let h = r.fixed(stats_header::LEN)?;
    let flags = h.u16(stats_header::FLAGS);
    let empty = |r: &Reader<'_>, b| {
        if r.is_empty() {
            Ok(b)
        } else {
            Err(OfpError::BadLen)
        }
    };
    let body = match h.u16(stats_header::TYPE) {
        st::DESC => empty(&r, MpRequestBody::Desc)?,
        t @ (st::FLOW | st::AGGREGATE) => {
            if r.remaining() != ofp_match::LEN + flow_stats_request::LEN {
                return Err(OfpError::BadLen);
            }
            let match_ = parse_match(&mut r)?;
            let b = r.fixed(flow_stats_request::LEN)?;
            let req = FlowStatsRequest {
                table_id: TableId(b.u8(flow_stats_request::TABLE_ID)),
                out_port: port_from_wire(b.u16(flow_stats_request::OUT_PORT)),
                out_group: GroupId::ANY,
                cookie: Cookie(0),
                cookie_mask: 0,
                match_,
            };
            if t == st::FLOW {
                MpRequestBody::Flow(req)
            } else {
                MpRequestBody::Aggregate(req)
            }
        }
        st::TABLE => empty(&r, MpRequestBody::Table)?,
        st::PORT => {
            let b = r.exact(8)?;
            MpRequestBody::PortStats(port_from_wire(b.u16(0..2)))
        }
        st::QUEUE => {
            let b = r.exact(8)?;
            MpRequestBody::Queue {
                port: port_from_wire(b.u16(0..2)),
                queue_id: b.u32(4..8),
            }
        }
        st::VENDOR => {
            let b = r.fixed(nx_stats::LEN)?;
            if b.u32(nx_stats::VENDOR) != NX_VENDOR_ID {
                return Err(OfpError::BadExperimenter);
            }
            match b.u32(nx_stats::SUBTYPE) {
                // Body: `ofp15_group_desc_request` (group id, pad 4).
                nx::ST_GROUP_DESC => match r.exact(8)?.u32(0..4) {
                    g if GroupId(g) == GroupId::ALL => MpRequestBody::GroupDesc,
                    _ => return Err(OfpError::UnknownGroup),
                },
                nx::ST_GROUP_FEATURES => empty(&r, MpRequestBody::GroupFeatures)?,
                nx::ST_FLOW_MONITOR => {
                    MpRequestBody::FlowMonitor(super::monitor::parse_requests_nx(r)?)
                }
                _ => return Err(OfpError::BadSubtype),
            }
        }
        _ => return Err(OfpError::BadMultipart),
    };
    Ok(MultipartRequest { flags, body })
}

fn emit_stats_request(out: &mut Vec<u8>, req: &MultipartRequest) -> Result<(), EncodeError> {
    let fail = |what| Err(EncodeError::Unsupported { version: V, what });
    let nx_head = |out: &mut Vec<u8>, sub: u32| {
        emit_stats_header(out, st::VENDOR, req.flags);
        let mut b = FieldsMut::<{ nx_stats::LEN }>::new();
        b.set_u32(nx_stats::VENDOR, NX_VENDOR_ID)
            .set_u32(nx_stats::SUBTYPE, sub);
        b.emit(out);
    };
    match &req.body {
        MpRequestBody::Desc => emit_stats_header(out, st::DESC, req.flags),
        MpRequestBody::Table => emit_stats_header(out, st::TABLE, req.flags),
        MpRequestBody::Flow(f) | MpRequestBody::Aggregate(f) => {
            let t = if matches!(req.body, MpRequestBody::Flow(_)) {
                st::FLOW
            } else {
                st::AGGREGATE
            };
            emit_stats_header(out, t, req.flags);
            match_to_wire(out, &f.match_, false)?;
            let mut b = FieldsMut::<{ flow_stats_request::LEN }>::new();
            b.set_u8(flow_stats_request::TABLE_ID, f.table_id.0)
                .set_u16(
                    flow_stats_request::OUT_PORT,
                    port_or(f.out_port, "out_port")?,
                );
            b.emit(out);
        }
        MpRequestBody::PortStats(p) => {
            emit_stats_header(out, st::PORT, req.flags);
            let mut b = FieldsMut::<8>::new();
            b.set_u16(0..2, port_or(*p, "a port above 0xff00")?);
            b.emit(out);
        }
        MpRequestBody::Queue { port, queue_id } => {
            emit_stats_header(out, st::QUEUE, req.flags);
            let mut b = FieldsMut::<8>::new();
            b.set_u16(0..2, port_or(*port, "a port above 0xff00")?)
                .set_u32(4..8, *queue_id);
            b.emit(out);
        }
        MpRequestBody::GroupDesc => {
            nx_head(out, nx::ST_GROUP_DESC);
            let mut b = FieldsMut::<8>::new();
            b.set_u32(0..4, GroupId::ALL.0);
            b.emit(out);
        }
        MpRequestBody::GroupFeatures => nx_head(out, nx::ST_GROUP_FEATURES),
        MpRequestBody::FlowMonitor(reqs) => {
            nx_head(out, nx::ST_FLOW_MONITOR);
            super::monitor::emit_requests_nx(out, reqs)?;
        }
        _ => return fail("this statistics request"),
    }
    Ok(())
}

/// The OF1.0 stats type (or Nicira vendor stats) a reply body travels as.
pub(crate) fn stats_reply_type(b: &MpReplyBody) -> Result<u16, EncodeError> {
    Ok(match b {
        MpReplyBody::Desc(_) => st::DESC,
        MpReplyBody::Flow(_) => st::FLOW,
        MpReplyBody::Aggregate(_) => st::AGGREGATE,
        MpReplyBody::Table(_) => st::TABLE,
        MpReplyBody::PortStats(_) => st::PORT,
        MpReplyBody::Queue => st::QUEUE,
        MpReplyBody::GroupDesc(_) | MpReplyBody::GroupFeatures(_) | MpReplyBody::FlowMonitor(_) => {
            st::VENDOR
        }
        _ => {
            return Err(EncodeError::Unsupported {
                version: V,
                what: "this statistics reply (no OpenFlow 1.0 stats type)",
            })
        }
    })
}

/// The body of a single-structure reply (and the Nicira header of vendor
/// replies), after the stats header.
pub(crate) fn emit_single_stats_body(
    out: &mut Vec<u8>,
    b: &MpReplyBody,
) -> Result<(), EncodeError> {
    if matches!(b, MpReplyBody::Desc(_) | MpReplyBody::GroupFeatures(_)) {
        super::multipart::emit_single_body(out, b);
    }
    Ok(())
}

/// The Nicira vendor-stats header of a reply that travels as OFPST_VENDOR
/// (written after the stats header of every message of the reply).
pub(crate) fn emit_stats_prefix(out: &mut Vec<u8>, b: &MpReplyBody) {
    let sub = match b {
        MpReplyBody::GroupDesc(_) => nx::ST_GROUP_DESC,
        MpReplyBody::GroupFeatures(_) => nx::ST_GROUP_FEATURES,
        MpReplyBody::FlowMonitor(_) => nx::ST_FLOW_MONITOR,
        _ => return,
    };
    let mut h = FieldsMut::<{ nx_stats::LEN }>::new();
    h.set_u32(nx_stats::VENDOR, NX_VENDOR_ID)
        .set_u32(nx_stats::SUBTYPE, sub);
    h.emit(out);
}

/// `ofp_table_stats` (OF1.0).
mod table_stats {
    use super::Field;
    pub(super) const TABLE_ID: usize = 0;
    pub(super) const NAME: Field = 4..36;
    pub(super) const WILDCARDS: Field = 36..40;
    pub(super) const MAX_ENTRIES: Field = 40..44;
    pub(super) const ACTIVE_COUNT: Field = 44..48;
    pub(super) const LOOKUP_COUNT: Field = 48..56;
    pub(super) const MATCHED_COUNT: Field = 56..64;
    pub(super) const LEN: usize = 64;
}

/// `ofp_port_stats` (OF1.0): port, pad 6, the twelve counters.
mod port_stats {
    use super::Field;
    pub(super) const PORT_NO: Field = 0..2;
    pub(super) const COUNTERS: usize = 8;
    pub(super) const LEN: usize = 104;
}

/// `ofp_flow_stats` (OF1.0) fixed parts around the match.
mod flow_stats {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const TABLE_ID: usize = 2;
    pub(super) const HEAD_LEN: usize = 4;
    // After the match:
    pub(super) const DURATION_SEC: Field = 0..4;
    pub(super) const DURATION_NSEC: Field = 4..8;
    pub(super) const PRIORITY: Field = 8..10;
    pub(super) const IDLE_TIMEOUT: Field = 10..12;
    pub(super) const HARD_TIMEOUT: Field = 12..14;
    pub(super) const COOKIE: Field = 20..28;
    pub(super) const PACKET_COUNT: Field = 28..36;
    pub(super) const BYTE_COUNT: Field = 36..44;
    pub(super) const TAIL_LEN: usize = 44;
}

/// Appends one OF1.0 flow-stats entry from a borrowed rule; returns its
/// length. The match is written in its lossy OF1.0 form; instructions other
/// than one apply-actions, and actions OF1.0 cannot express, are an error
/// (nothing is appended then).
pub(crate) fn emit_flow_stats_ref(
    out: &mut Vec<u8>,
    f: &super::flow::FlowStatsRef<'_>,
) -> Result<usize, EncodeError> {
    use flow_stats as F;
    let start = out.len();
    let r = (|| {
        let m = super::decode_oxms(f.match_oxm).map_err(|_| EncodeError::Unsupported {
            version: V,
            what: "a stored match that does not decode",
        })?;
        let mut h = FieldsMut::<{ F::HEAD_LEN }>::new();
        h.set_u8(F::TABLE_ID, f.table_id.0);
        h.emit(out);
        match_to_wire(out, &m, true)?;
        // The actions are checked against the match as OF1.0 shows it.
        let shown = lossy_view(&m)?;
        let mut b = FieldsMut::<{ F::TAIL_LEN }>::new();
        b.set_u32(F::DURATION_SEC, f.duration_sec)
            .set_u32(F::DURATION_NSEC, f.duration_nsec)
            .set_u16(F::PRIORITY, f.priority)
            .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
            .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
            .set_u64(F::COOKIE, f.cookie.0)
            .set_u64(F::PACKET_COUNT, f.packet_count)
            .set_u64(F::BYTE_COUNT, f.byte_count);
        b.emit(out);
        emit_instructions(out, f.instructions, &shown, true)
    })();
    if let Err(e) = r {
        out.truncate(start);
        return Err(e);
    }
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
    Ok(len)
}

fn parse_flow_stats(mut e: Reader<'_>) -> Result<FlowStats, OfpError> {
    use flow_stats as F;
    let h = e.fixed(F::HEAD_LEN)?;
    let match_ = parse_match(&mut e)?;
    let b = e.fixed(F::TAIL_LEN)?;
    let instructions =
        parse_instructions(Reader::new(e.take_rest(), OfpError::BadActionLen), &match_)?;
    Ok(FlowStats {
        table_id: TableId(h.u8(F::TABLE_ID)),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        priority: b.u16(F::PRIORITY),
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        flags: 0,
        cookie: Cookie(b.u64(F::COOKIE)),
        packet_count: b.u64(F::PACKET_COUNT),
        byte_count: b.u64(F::BYTE_COUNT),
        match_,
        instructions,
    })
}

/// Appends entry `i` of a list reply in the OF1.0 layout.
pub(crate) fn emit_stats_entry(
    out: &mut Vec<u8>,
    b: &MpReplyBody,
    i: usize,
) -> Result<(), EncodeError> {
    match b {
        MpReplyBody::Flow(v) => {
            let oxms = super::encode_oxms(&v[i].match_);
            emit_flow_stats_ref(out, &super::flow::FlowStatsRef::of(&v[i], &oxms))?;
        }
        MpReplyBody::Aggregate(a) => super::flow::emit_aggregate(out, a),
        MpReplyBody::Table(v) => {
            use table_stats as F;
            let t = &v[i];
            let mut b = FieldsMut::<{ F::LEN }>::new();
            b.set_u8(F::TABLE_ID, t.table_id.0)
                .set_u32(F::WILDCARDS, fw::ALL)
                .set_u32(F::MAX_ENTRIES, u32::MAX)
                .set_u32(F::ACTIVE_COUNT, t.active_count)
                .set_u64(F::LOOKUP_COUNT, t.lookup_count)
                .set_u64(F::MATCHED_COUNT, t.matched_count);
            b.emit(out);
        }
        MpReplyBody::PortStats(v) => {
            use port_stats as F;
            let p = &v[i];
            let mut b = FieldsMut::<{ F::LEN }>::new();
            b.set_u16(F::PORT_NO, port_or(p.port_no, "a port above 0xff00")?);
            for (k, c) in super::port::counters(p).into_iter().enumerate() {
                b.set_u64(super::port::counter(F::COUNTERS, k), c);
            }
            b.emit(out);
        }
        MpReplyBody::GroupDesc(v) => group::emit_desc15_with(out, &v[i], emit_actions)?,
        MpReplyBody::FlowMonitor(v) => super::monitor::emit_update_nx(V, out, &v[i])?,
        _ => {}
    }
    Ok(())
}

fn parse_stats_reply(mut r: Reader<'_>) -> Result<MultipartReply, OfpError> {
    let h = r.fixed(stats_header::LEN)?;
    let flags = h.u16(stats_header::FLAGS);
    let mut rest = r;
    let body = match h.u16(stats_header::TYPE) {
        st::DESC => {
            // Same layout as OF1.3's OFPMP_DESC.
            let mut v = Vec::new();
            super::multipart::emit_header(&mut v, st::DESC, 0);
            v.extend_from_slice(rest.take_rest());
            super::multipart::parse_reply(Version::V1_3, Reader::new(&v, OfpError::BadLen))?.body
        }
        st::FLOW => {
            let mut v = Vec::new();
            while !rest.is_empty() {
                let e = super::wire::next_entry(
                    &mut rest,
                    flow_stats::LENGTH.start,
                    flow_stats::HEAD_LEN + ofp_match::LEN + flow_stats::TAIL_LEN,
                )?;
                v.push(parse_flow_stats(e)?);
            }
            MpReplyBody::Flow(v)
        }
        st::AGGREGATE => MpReplyBody::Aggregate(super::flow::parse_aggregate(rest)?),
        st::TABLE => MpReplyBody::Table(rest.fixed_entries(table_stats::LEN, |r| {
            use table_stats as F;
            let b = r.fixed(F::LEN)?;
            let _ = b.string(F::NAME);
            let _ = b.u32(F::MAX_ENTRIES);
            Ok(TableStats {
                table_id: TableId(b.u8(F::TABLE_ID)),
                active_count: b.u32(F::ACTIVE_COUNT),
                lookup_count: b.u64(F::LOOKUP_COUNT),
                matched_count: b.u64(F::MATCHED_COUNT),
            })
        })?),
        st::PORT => MpReplyBody::PortStats(rest.fixed_entries(port_stats::LEN, |r| {
            use port_stats as F;
            let b = r.fixed(F::LEN)?;
            let mut p = PortStats {
                port_no: port_from_wire(b.u16(F::PORT_NO)),
                ..PortStats::default()
            };
            super::port::set_counters(
                &mut p,
                std::array::from_fn(|k| b.u64(super::port::counter(F::COUNTERS, k))),
            );
            Ok(p)
        })?),
        st::QUEUE if rest.is_empty() => MpReplyBody::Queue,
        st::QUEUE => return Err(OfpError::BadLen),
        st::VENDOR => {
            let b = rest.fixed(nx_stats::LEN)?;
            if b.u32(nx_stats::VENDOR) != NX_VENDOR_ID {
                return Err(OfpError::BadExperimenter);
            }
            match b.u32(nx_stats::SUBTYPE) {
                nx::ST_GROUP_DESC => {
                    let mut v = Vec::new();
                    while !rest.is_empty() {
                        let e = super::wire::next_entry(&mut rest, 0, group::DESC15_LEN)?;
                        v.push(group::parse_desc15_with(e, |a| {
                            parse_actions(Reader::new(a.rest(), OfpError::BadActionLen), None)
                        })?);
                    }
                    MpReplyBody::GroupDesc(v)
                }
                nx::ST_GROUP_FEATURES => MpReplyBody::GroupFeatures(group::parse_features(rest)?),
                nx::ST_FLOW_MONITOR => {
                    MpReplyBody::FlowMonitor(super::monitor::parse_updates_nx(V, rest)?)
                }
                _ => return Err(OfpError::BadSubtype),
            }
        }
        _ => return Err(OfpError::BadMultipart),
    };
    Ok(MultipartReply { flags, body })
}

// ---------------------------------------------------------------------------
// Nicira session messages
// ---------------------------------------------------------------------------

/// `nicira_header` after `ofp_header`: vendor, subtype.
mod nx_header {
    use super::Field;
    pub(super) const VENDOR: Field = 0..4;
    pub(super) const SUBTYPE: Field = 4..8;
    pub(super) const LEN: usize = 8;
}

fn parse_vendor(mut r: Reader<'_>) -> Result<Message, OfpError> {
    let h = r.fixed(nx_header::LEN)?;
    let vendor = h.u32(nx_header::VENDOR);
    let subtype = h.u32(nx_header::SUBTYPE);
    if vendor != NX_VENDOR_ID {
        // Other vendors' messages are passed up, as in later versions.
        return Ok(Message::Experimenter {
            experimenter: vendor,
            exp_type: subtype,
            data: r.take_rest().to_vec(),
        });
    }
    parse_nx(subtype, r)
}

/// A Nicira message (`nicira_header` consumed) in version `v`. OpenFlow
/// 1.3+ carries the same messages as EXPERIMENTER; there only those Open
/// vSwitch defines for "1.0+" decode here (FLOW_MOD_TABLE_ID,
/// SET_PACKET_IN_FORMAT, SET_CONTROLLER_ID), and `None` tells the caller to
/// pass the message up as an experimenter message.
pub(crate) fn parse_nx_modern(subtype: u32, r: Reader<'_>) -> Result<Option<Message>, OfpError> {
    match subtype {
        nx::FLOW_MOD_TABLE_ID | nx::SET_PACKET_IN_FORMAT | nx::SET_CONTROLLER_ID => {
            parse_nx(subtype, r).map(Some)
        }
        _ => Ok(None),
    }
}

fn parse_nx(subtype: u32, mut r: Reader<'_>) -> Result<Message, OfpError> {
    let u32_body = |mut r: Reader<'_>| r.exact(4).map(|b| b.u32(0..4));
    Ok(Message::Nicira(match subtype {
        nx::SET_FLOW_FORMAT => match u32_body(r)? {
            nx::FF_OPENFLOW10 => NxMsg::SetFlowFormat(nx::FF_OPENFLOW10),
            // NXFF_NXM (and anything else): we speak only the OF1.0 format.
            _ => return Err(OfpError::Eperm),
        },
        nx::FLOW_MOD_TABLE_ID => NxMsg::FlowModTableId(r.exact(8)?.u8(0) != 0),
        nx::SET_PACKET_IN_FORMAT => match u32_body(r)? {
            nx::PIF_STANDARD => NxMsg::SetPacketInFormat(nx::PIF_STANDARD),
            // NXPIF_NXT_PACKET_IN / NXPIF_NXT_PACKET_IN2: not produced here.
            _ => return Err(OfpError::Eperm),
        },
        nx::SET_CONTROLLER_ID => NxMsg::SetControllerId(r.exact(8)?.u16(6..8)),
        nx::FLOW_MONITOR_CANCEL => return Ok(Message::FlowMonitorCancel(u32_body(r)?)),
        nx::FLOW_MONITOR_PAUSED => return empty(&r, Message::FlowMonitorPaused),
        nx::FLOW_MONITOR_RESUMED => return empty(&r, Message::FlowMonitorResumed),
        _ => return Err(OfpError::BadSubtype),
    }))
}

fn emit_nx_header(out: &mut Vec<u8>, sub: u32) {
    let mut h = FieldsMut::<{ nx_header::LEN }>::new();
    h.set_u32(nx_header::VENDOR, NX_VENDOR_ID)
        .set_u32(nx_header::SUBTYPE, sub);
    h.emit(out);
}

/// Appends a Nicira message (header included) as OF1.0 VENDOR or OF1.3+
/// EXPERIMENTER body; the two share the layout.
pub(crate) fn emit_nicira(out: &mut Vec<u8>, m: &NxMsg) {
    let mut h = FieldsMut::<{ nx_header::LEN }>::new();
    h.set_u32(nx_header::VENDOR, NX_VENDOR_ID);
    let mut body = FieldsMut::<8>::new();
    let (sub, n) = match *m {
        NxMsg::SetFlowFormat(f) => {
            body.set_u32(0..4, f);
            (nx::SET_FLOW_FORMAT, 4)
        }
        NxMsg::FlowModTableId(on) => {
            body.set_u8(0, on as u8);
            (nx::FLOW_MOD_TABLE_ID, 8)
        }
        NxMsg::SetPacketInFormat(f) => {
            body.set_u32(0..4, f);
            (nx::SET_PACKET_IN_FORMAT, 4)
        }
        NxMsg::SetControllerId(id) => {
            body.set_u16(6..8, id);
            (nx::SET_CONTROLLER_ID, 8)
        }
    };
    h.set_u32(nx_header::SUBTYPE, sub);
    h.emit(out);
    out.extend_from_slice(&body.0[..n]);
}

// ---------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------

fn empty(r: &Reader<'_>, m: Message) -> Result<Message, OfpError> {
    if r.is_empty() {
        Ok(m)
    } else {
        Err(OfpError::BadLen)
    }
}

/// Decodes an OF1.0 body (HELLO is handled by the caller).
pub(crate) fn decode_body(t: u8, r: Reader<'_>) -> Result<Message, OfpError> {
    use msg_type as T;
    Ok(match t {
        T::HELLO => Message::Hello {
            versions: hello::parse(r)?,
        },
        T::ERROR => Message::Error(parse_error(r)?),
        T::ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
        T::ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
        T::VENDOR => parse_vendor(r)?,
        T::FEATURES_REQUEST => empty(&r, Message::FeaturesRequest)?,
        T::FEATURES_REPLY => Message::FeaturesReply(parse_features(r)?),
        T::GET_CONFIG_REQUEST => empty(&r, Message::GetConfigRequest)?,
        T::GET_CONFIG_REPLY => Message::GetConfigReply(switch::parse_config(r)?),
        T::SET_CONFIG => Message::SetConfig(switch::parse_config(r)?),
        T::PACKET_IN => Message::PacketIn(parse_packet_in(r)?),
        T::FLOW_REMOVED => Message::FlowRemoved(parse_flow_removed(r)?),
        T::PORT_STATUS => Message::PortStatus(parse_port_status(r)?),
        T::PACKET_OUT => Message::PacketOut(parse_packet_out(r)?),
        T::FLOW_MOD => Message::FlowMod(parse_flow_mod(r)?),
        T::PORT_MOD => Message::PortMod(parse_port_mod(r)?),
        T::STATS_REQUEST => Message::MultipartRequest(parse_stats_request(r)?),
        T::STATS_REPLY => Message::MultipartReply(parse_stats_reply(r)?),
        T::BARRIER_REQUEST => empty(&r, Message::BarrierRequest)?,
        T::BARRIER_REPLY => empty(&r, Message::BarrierReply)?,
        T::QUEUE_GET_CONFIG_REQUEST => {
            let mut r = r;
            Message::QueueGetConfigRequest {
                port: port_from_wire(r.exact(QUEUE_REQUEST_LEN)?.u16(0..2)),
            }
        }
        T::QUEUE_GET_CONFIG_REPLY => {
            let mut r = r;
            Message::QueueGetConfigReply {
                port: port_from_wire(r.exact(QUEUE_REPLY_LEN)?.u16(0..2)),
            }
        }
        _ => return Err(OfpError::BadType),
    })
}

/// Appends an OF1.0 body; returns its message type.
pub(crate) fn encode_body(m: &Message, out: &mut Vec<u8>) -> Result<u8, EncodeError> {
    use msg_type as T;
    let fail = |what| Err(EncodeError::Unsupported { version: V, what });
    Ok(match m {
        Message::Hello { versions } => {
            hello::emit(out, versions);
            T::HELLO
        }
        Message::Error(e) => {
            emit_error(out, e);
            T::ERROR
        }
        Message::EchoRequest(d) => {
            out.extend_from_slice(d);
            T::ECHO_REQUEST
        }
        Message::EchoReply(d) => {
            out.extend_from_slice(d);
            T::ECHO_REPLY
        }
        Message::Experimenter {
            experimenter,
            exp_type,
            data,
        } => {
            super::controller::emit_experimenter(out, *experimenter, *exp_type, data);
            T::VENDOR
        }
        Message::Nicira(n) => {
            emit_nicira(out, n);
            T::VENDOR
        }
        Message::FlowMonitorCancel(id) => {
            emit_nx_header(out, nx::FLOW_MONITOR_CANCEL);
            out.extend_from_slice(&id.to_be_bytes());
            T::VENDOR
        }
        Message::FlowMonitorPaused => {
            emit_nx_header(out, nx::FLOW_MONITOR_PAUSED);
            T::VENDOR
        }
        Message::FlowMonitorResumed => {
            emit_nx_header(out, nx::FLOW_MONITOR_RESUMED);
            T::VENDOR
        }
        Message::BundleControl(_) | Message::BundleAdd(_) => {
            return fail("bundles (OpenFlow 1.3 and later)")
        }
        Message::FeaturesRequest => T::FEATURES_REQUEST,
        Message::FeaturesReply(f) => {
            emit_features(out, f)?;
            T::FEATURES_REPLY
        }
        Message::GetConfigRequest => T::GET_CONFIG_REQUEST,
        Message::GetConfigReply(c) => {
            switch::emit_config(out, c);
            T::GET_CONFIG_REPLY
        }
        Message::SetConfig(c) => {
            switch::emit_config(out, c);
            T::SET_CONFIG
        }
        Message::PacketIn(p) => {
            emit_packet_in(out, p)?;
            T::PACKET_IN
        }
        Message::FlowRemoved(f) => {
            emit_flow_removed(out, f)?;
            T::FLOW_REMOVED
        }
        Message::PortStatus(p) => {
            emit_port_status(out, p)?;
            T::PORT_STATUS
        }
        Message::PacketOut(p) => {
            emit_packet_out(out, p)?;
            T::PACKET_OUT
        }
        Message::FlowMod(f) => {
            emit_flow_mod(out, f)?;
            T::FLOW_MOD
        }
        Message::PortMod(p) => {
            emit_port_mod(out, p)?;
            T::PORT_MOD
        }
        Message::MultipartRequest(req) => {
            emit_stats_request(out, req)?;
            T::STATS_REQUEST
        }
        Message::MultipartReply(rep) => {
            let t = stats_reply_type(&rep.body)?;
            emit_stats_header(out, t, rep.flags);
            emit_stats_prefix(out, &rep.body);
            emit_single_stats_body(out, &rep.body)?;
            for i in 0..super::multipart::n_entries(&rep.body) {
                emit_stats_entry(out, &rep.body, i)?;
                if out.len() > MAX_MSG_LEN {
                    return Err(EncodeError::TooLong(out.len()));
                }
            }
            T::STATS_REPLY
        }
        Message::BarrierRequest => T::BARRIER_REQUEST,
        Message::BarrierReply => T::BARRIER_REPLY,
        Message::QueueGetConfigRequest { port } => {
            let mut b = FieldsMut::<QUEUE_REQUEST_LEN>::new();
            b.set_u16(0..2, port_or(*port, "a port above 0xff00")?);
            b.emit(out);
            T::QUEUE_GET_CONFIG_REQUEST
        }
        Message::QueueGetConfigReply { port } => {
            let mut b = FieldsMut::<QUEUE_REPLY_LEN>::new();
            b.set_u16(0..2, port_or(*port, "a port above 0xff00")?);
            b.emit(out);
            T::QUEUE_GET_CONFIG_REPLY
        }
        Message::GroupMod(_) => return fail("GROUP_MOD"),
        Message::TableMod { .. } => return fail("TABLE_MOD"),
        Message::MeterMod(_) => return fail("METER_MOD"),
        Message::RoleRequest(_) | Message::RoleReply(_) | Message::RoleStatus(_) => {
            return fail("role messages")
        }
        Message::GetAsyncRequest
        | Message::GetAsyncReply(_)
        | Message::SetAsync(_)
        | Message::SetAsyncUpdate(_) => return fail("async configuration messages"),
    })
}
