//! Whole-message decoding and encoding for OpenFlow 1.3.
//!
//! [`decode`] takes exactly one framed message (see [`super::framing::frame_len`])
//! and either returns its [`OfpMsg`] or a [`DecodeError`] naming the OpenFlow
//! error to send back. Parsing is strict about lengths (every fixed-size message
//! must be exactly its size, every list must tile its space) and never panics or
//! overflows on any input: all reads go through the bounds-checked
//! [`super::wire::Reader`].
//!
//! [`encode`] appends one message. Bodies are written first and length fields
//! patched afterwards; only the final message length is checked against the
//! 16-bit limit, which bounds every inner length too. Multipart replies that may
//! not fit in one message go through [`encode_multipart_reply_split`].
//!
//! Everything here is pure and synchronous; the session actor owns the buffers.

use super::action::Instruction;
use super::action_codec::{
    decode_actions, decode_bands, decode_buckets, decode_instructions, encode_actions,
    encode_bands, encode_buckets, encode_instructions,
};
use super::error::OfpError;
use super::framing::{header, our_versions, HEADER_LEN};
use super::match_codec::{decode_match, encode_match, encode_match_oxms};
use super::message::*;
use super::wire::{
    pad8, pad_to_8, patch_u16, put_string, put_u16, put_u32, put_u64, put_u8, put_zeros, Reader,
};
use crate::types::{Cookie, DatapathId, GroupId, MacAddr, MeterId, PortNo, TableId};

/// Largest OpenFlow message (the header's length field is 16 bits).
pub const MAX_MSG_LEN: usize = 65535;

/// OFPT_* message type numbers.
#[allow(missing_docs)]
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// OFPMP_* multipart type numbers.
#[allow(missing_docs)]
pub mod mp_type {
    pub const DESC: u16 = 0;
    pub const FLOW: u16 = 1;
    pub const AGGREGATE: u16 = 2;
    pub const TABLE: u16 = 3;
    pub const PORT_STATS: u16 = 4;
    pub const QUEUE: u16 = 5;
    pub const GROUP: u16 = 6;
    pub const GROUP_DESC: u16 = 7;
    pub const GROUP_FEATURES: u16 = 8;
    pub const METER: u16 = 9;
    pub const METER_CONFIG: u16 = 10;
    pub const METER_FEATURES: u16 = 11;
    pub const TABLE_FEATURES: u16 = 12;
    pub const PORT_DESC: u16 = 13;
    pub const EXPERIMENTER: u16 = 0xffff;
}

/// OFPHET_VERSIONBITMAP.
const HELLO_ELEM_VERSIONBITMAP: u16 = 1;
/// Bytes of the offending request echoed in an ERROR (as Open vSwitch does).
const ERROR_DATA_LEN: usize = 64;
/// OFP_MAX_PORT_NAME_LEN.
const PORT_NAME_LEN: usize = 16;
/// OFP_MAX_TABLE_NAME_LEN.
const TABLE_NAME_LEN: usize = 32;
/// DESC_STR_LEN.
const DESC_STR_LEN: usize = 256;
/// SERIAL_NUM_LEN.
const SERIAL_NUM_LEN: usize = 32;
/// Size of the multipart message header (ofp_header + type, flags, pad).
const MP_HEADER_LEN: usize = 16;

/// A message that could not be decoded, with what to tell the peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode OpenFlow message (xid {xid:#x}): {error}")]
pub struct DecodeError {
    /// The message's xid, to echo in the ERROR reply (0 if even the header is short).
    pub xid: u32,
    /// The error type/code to send.
    pub error: OfpError,
    /// True when the connection should be closed after reporting: the peer speaks
    /// another protocol version (or sent less than a header), so nothing it sends
    /// later can be trusted to mean what we think.
    pub fatal: bool,
}

/// A message that cannot be put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoding would exceed the 65535-byte limit of the length field.
    #[error("OpenFlow message of {0} bytes exceeds the 65535-byte limit")]
    TooLong(usize),
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decode exactly one message (header included, `msg.len()` equal to the
/// header's length). HELLO is accepted in any version so that negotiation can
/// look at it; every other message must be version 0x04.
pub fn decode(msg: &[u8]) -> Result<OfpMsg, DecodeError> {
    let Some(h) = header(msg) else {
        return Err(DecodeError {
            xid: 0,
            error: OfpError::BadLen,
            fatal: true,
        });
    };
    let err = |error: OfpError, fatal: bool| DecodeError {
        xid: h.xid,
        error,
        fatal,
    };
    if h.length as usize != msg.len() {
        return Err(err(OfpError::BadLen, false));
    }
    if h.version != OFP_VERSION && h.msg_type != msg_type::HELLO {
        return Err(err(OfpError::BadVersion, true));
    }
    let body = Reader::new(&msg[HEADER_LEN..], OfpError::BadLen);
    let decoded = decode_body(h.msg_type, body).map_err(|e| err(e, false))?;
    Ok(OfpMsg {
        xid: h.xid,
        body: decoded,
    })
}

/// Fail with BAD_LEN unless the reader has been consumed entirely.
fn done(r: &Reader<'_>) -> Result<(), OfpError> {
    if r.is_empty() {
        Ok(())
    } else {
        Err(OfpError::BadLen)
    }
}

/// Fail with BAD_LEN unless the body has exactly `n` bytes.
fn need(r: &Reader<'_>, n: usize) -> Result<(), OfpError> {
    if r.remaining() == n {
        Ok(())
    } else {
        Err(OfpError::BadLen)
    }
}

fn decode_body(t: u8, mut r: Reader<'_>) -> Result<Message, OfpError> {
    use msg_type as T;
    let m = match t {
        T::HELLO => decode_hello(r)?,
        T::ERROR => {
            let err_type = r.u16()?;
            let code = r.u16()?;
            Message::Error(ErrorMsg {
                err_type,
                code,
                data: r.take_rest().to_vec(),
            })
        }
        T::ECHO_REQUEST => Message::EchoRequest(r.take_rest().to_vec()),
        T::ECHO_REPLY => Message::EchoReply(r.take_rest().to_vec()),
        T::EXPERIMENTER => {
            let experimenter = r.u32()?;
            let exp_type = r.u32()?;
            Message::Experimenter {
                experimenter,
                exp_type,
                data: r.take_rest().to_vec(),
            }
        }
        T::FEATURES_REQUEST => need(&r, 0).map(|_| Message::FeaturesRequest)?,
        T::FEATURES_REPLY => {
            need(&r, 24)?;
            let datapath_id = DatapathId(r.u64()?);
            let n_buffers = r.u32()?;
            let n_tables = r.u8()?;
            let auxiliary_id = r.u8()?;
            r.skip(2)?;
            let capabilities = r.u32()?;
            Message::FeaturesReply(SwitchFeatures {
                datapath_id,
                n_buffers,
                n_tables,
                auxiliary_id,
                capabilities,
            })
        }
        T::GET_CONFIG_REQUEST => need(&r, 0).map(|_| Message::GetConfigRequest)?,
        T::GET_CONFIG_REPLY => Message::GetConfigReply(decode_switch_config(r)?),
        T::SET_CONFIG => Message::SetConfig(decode_switch_config(r)?),
        T::PACKET_IN => {
            let buffer_id = r.u32()?;
            let total_len = r.u16()?;
            let reason = r.u8()?;
            let table_id = TableId(r.u8()?);
            let cookie = Cookie(r.u64()?);
            let match_ = decode_match(&mut r)?;
            r.skip(2)?;
            Message::PacketIn(PacketIn {
                buffer_id,
                total_len,
                reason,
                table_id,
                cookie,
                match_,
                data: r.take_rest().to_vec(),
            })
        }
        T::FLOW_REMOVED => {
            let cookie = Cookie(r.u64()?);
            let priority = r.u16()?;
            let reason = r.u8()?;
            let table_id = TableId(r.u8()?);
            let duration_sec = r.u32()?;
            let duration_nsec = r.u32()?;
            let idle_timeout = r.u16()?;
            let hard_timeout = r.u16()?;
            let packet_count = r.u64()?;
            let byte_count = r.u64()?;
            let match_ = decode_match(&mut r)?;
            done(&r)?;
            Message::FlowRemoved(FlowRemoved {
                cookie,
                priority,
                reason,
                table_id,
                duration_sec,
                duration_nsec,
                idle_timeout,
                hard_timeout,
                packet_count,
                byte_count,
                match_,
            })
        }
        T::PORT_STATUS => {
            need(&r, 72)?;
            let reason = r.u8()?;
            r.skip(7)?;
            Message::PortStatus(PortStatus {
                reason,
                desc: decode_port(&mut r)?,
            })
        }
        T::PACKET_OUT => {
            let buffer_id = r.u32()?;
            let in_port = PortNo(r.u32()?);
            let actions_len = r.u16()? as usize;
            r.skip(6)?;
            let acts = r.sub(actions_len, OfpError::BadLen)?;
            let actions = decode_actions(Reader::new(acts.rest(), OfpError::BadActionLen))?;
            Message::PacketOut(PacketOut {
                buffer_id,
                in_port,
                actions,
                data: r.take_rest().to_vec(),
            })
        }
        T::FLOW_MOD => Message::FlowMod(decode_flow_mod(r)?),
        T::GROUP_MOD => {
            let command = match r.u16()? {
                0 => GroupModCommand::Add,
                1 => GroupModCommand::Modify,
                2 => GroupModCommand::Delete,
                _ => return Err(OfpError::BadGroupCommand),
            };
            let group_type = decode_group_type(r.u8()?)?;
            r.skip(1)?;
            let group_id = GroupId(r.u32()?);
            let buckets = decode_buckets(Reader::new(r.take_rest(), OfpError::BadBucket))?;
            Message::GroupMod(GroupMod {
                command,
                group_type,
                group_id,
                buckets,
            })
        }
        T::PORT_MOD => {
            need(&r, 32)?;
            let port_no = PortNo(r.u32()?);
            r.skip(4)?;
            let hw_addr = MacAddr(r.array()?);
            r.skip(2)?;
            let config = r.u32()?;
            let mask = r.u32()?;
            let advertise = r.u32()?;
            Message::PortMod(PortMod {
                port_no,
                hw_addr,
                config,
                mask,
                advertise,
            })
        }
        T::TABLE_MOD => {
            need(&r, 8)?;
            let table_id = TableId(r.u8()?);
            r.skip(3)?;
            Message::TableMod {
                table_id,
                config: r.u32()?,
            }
        }
        T::MULTIPART_REQUEST => {
            let mtype = r.u16()?;
            let flags = r.u16()?;
            r.skip(4)?;
            Message::MultipartRequest(MultipartRequest {
                flags,
                body: decode_mp_request(mtype, r)?,
            })
        }
        T::MULTIPART_REPLY => {
            let mtype = r.u16()?;
            let flags = r.u16()?;
            r.skip(4)?;
            Message::MultipartReply(MultipartReply {
                flags,
                body: decode_mp_reply(mtype, r)?,
            })
        }
        T::BARRIER_REQUEST => need(&r, 0).map(|_| Message::BarrierRequest)?,
        T::BARRIER_REPLY => need(&r, 0).map(|_| Message::BarrierReply)?,
        T::QUEUE_GET_CONFIG_REQUEST => {
            need(&r, 8)?;
            Message::QueueGetConfigRequest {
                port: PortNo(r.u32()?),
            }
        }
        T::QUEUE_GET_CONFIG_REPLY => {
            // We model only the empty queue list (we have no queues).
            need(&r, 8)?;
            Message::QueueGetConfigReply {
                port: PortNo(r.u32()?),
            }
        }
        T::ROLE_REQUEST => Message::RoleRequest(decode_role(r)?),
        T::ROLE_REPLY => Message::RoleReply(decode_role(r)?),
        T::GET_ASYNC_REQUEST => need(&r, 0).map(|_| Message::GetAsyncRequest)?,
        T::GET_ASYNC_REPLY => Message::GetAsyncReply(decode_async(r)?),
        T::SET_ASYNC => Message::SetAsync(decode_async(r)?),
        T::METER_MOD => {
            let command = match r.u16()? {
                0 => MeterModCommand::Add,
                1 => MeterModCommand::Modify,
                2 => MeterModCommand::Delete,
                _ => return Err(OfpError::BadMeterCommand),
            };
            let flags = r.u16()?;
            let meter_id = MeterId(r.u32()?);
            let bands = decode_bands(Reader::new(r.take_rest(), OfpError::BadBand))?;
            Message::MeterMod(MeterMod {
                command,
                flags,
                meter_id,
                bands,
            })
        }
        _ => return Err(OfpError::BadType),
    };
    Ok(m)
}

/// HELLO elements: we keep the version bitmap and skip unknown elements, as the
/// spec requires. A bitmap element's padding may be missing at the very end.
fn decode_hello(mut r: Reader<'_>) -> Result<Message, OfpError> {
    let mut versions = Vec::new();
    while r.remaining() >= 4 {
        let t = r.u16()?;
        let len = r.u16()? as usize;
        if len < 4 {
            return Err(OfpError::BadLen);
        }
        let mut e = r.sub(len - 4, OfpError::BadLen)?;
        if t == HELLO_ELEM_VERSIONBITMAP && versions.is_empty() {
            while e.remaining() >= 4 {
                versions.push(e.u32()?);
            }
        }
        let padding = (pad8(len) - len).min(r.remaining());
        r.skip(padding)?;
    }
    Ok(Message::Hello { versions })
}

fn decode_switch_config(mut r: Reader<'_>) -> Result<SwitchConfig, OfpError> {
    need(&r, 4)?;
    Ok(SwitchConfig {
        flags: r.u16()?,
        miss_send_len: r.u16()?,
    })
}

fn decode_role(mut r: Reader<'_>) -> Result<RoleMsg, OfpError> {
    need(&r, 16)?;
    let role = match r.u32()? {
        0 => ControllerRole::NoChange,
        1 => ControllerRole::Equal,
        2 => ControllerRole::Master,
        3 => ControllerRole::Slave,
        _ => return Err(OfpError::BadRole),
    };
    r.skip(4)?;
    Ok(RoleMsg {
        role,
        generation_id: r.u64()?,
    })
}

fn decode_async(mut r: Reader<'_>) -> Result<AsyncConfig, OfpError> {
    need(&r, 24)?;
    let mut pair = || -> Result<[u32; 2], OfpError> { Ok([r.u32()?, r.u32()?]) };
    Ok(AsyncConfig {
        packet_in_mask: pair()?,
        port_status_mask: pair()?,
        flow_removed_mask: pair()?,
    })
}

fn decode_group_type(t: u8) -> Result<GroupType, OfpError> {
    Ok(match t {
        0 => GroupType::All,
        1 => GroupType::Select,
        2 => GroupType::Indirect,
        3 => GroupType::FastFailover,
        _ => return Err(OfpError::BadGroupType),
    })
}

fn group_type_num(t: GroupType) -> u8 {
    match t {
        GroupType::All => 0,
        GroupType::Select => 1,
        GroupType::Indirect => 2,
        GroupType::FastFailover => 3,
    }
}

fn decode_flow_mod(mut r: Reader<'_>) -> Result<FlowMod, OfpError> {
    let cookie = Cookie(r.u64()?);
    let cookie_mask = r.u64()?;
    let table_id = TableId(r.u8()?);
    let command = match r.u8()? {
        0 => FlowModCommand::Add,
        1 => FlowModCommand::Modify,
        2 => FlowModCommand::ModifyStrict,
        3 => FlowModCommand::Delete,
        4 => FlowModCommand::DeleteStrict,
        _ => return Err(OfpError::BadFlowModCommand),
    };
    let idle_timeout = r.u16()?;
    let hard_timeout = r.u16()?;
    let priority = r.u16()?;
    let buffer_id = r.u32()?;
    let out_port = PortNo(r.u32()?);
    let out_group = GroupId(r.u32()?);
    let flags = r.u16()?;
    r.skip(2)?;
    let match_ = decode_match(&mut r)?;
    let instructions =
        decode_instructions(Reader::new(r.take_rest(), OfpError::BadInstructionLen))?;
    Ok(FlowMod {
        cookie,
        cookie_mask,
        table_id,
        command,
        idle_timeout,
        hard_timeout,
        priority,
        buffer_id,
        out_port,
        out_group,
        flags,
        match_,
        instructions,
    })
}

/// `ofp_port`, 64 bytes.
fn decode_port(r: &mut Reader<'_>) -> Result<PortDesc, OfpError> {
    let port_no = PortNo(r.u32()?);
    r.skip(4)?;
    let hw_addr = MacAddr(r.array()?);
    r.skip(2)?;
    let name = r.string(PORT_NAME_LEN)?;
    Ok(PortDesc {
        port_no,
        hw_addr,
        name,
        config: r.u32()?,
        state: r.u32()?,
        curr: r.u32()?,
        advertised: r.u32()?,
        supported: r.u32()?,
        peer: r.u32()?,
        curr_speed: r.u32()?,
        max_speed: r.u32()?,
    })
}

fn encode_port(out: &mut Vec<u8>, p: &PortDesc) {
    put_u32(out, p.port_no.0);
    put_zeros(out, 4);
    out.extend_from_slice(&p.hw_addr.0);
    put_zeros(out, 2);
    put_string(out, &p.name, PORT_NAME_LEN);
    for v in [
        p.config,
        p.state,
        p.curr,
        p.advertised,
        p.supported,
        p.peer,
        p.curr_speed,
        p.max_speed,
    ] {
        put_u32(out, v);
    }
}

/// The 32-byte fixed part of a flow/aggregate stats request, then its match.
fn decode_flow_stats_request(mut r: Reader<'_>) -> Result<FlowStatsRequest, OfpError> {
    let table_id = TableId(r.u8()?);
    r.skip(3)?;
    let out_port = PortNo(r.u32()?);
    let out_group = GroupId(r.u32()?);
    r.skip(4)?;
    let cookie = Cookie(r.u64()?);
    let cookie_mask = r.u64()?;
    let match_ = decode_match(&mut r)?;
    done(&r)?;
    Ok(FlowStatsRequest {
        table_id,
        out_port,
        out_group,
        cookie,
        cookie_mask,
        match_,
    })
}

/// A request body that is a 32-bit id followed by 4 bytes of padding.
fn id_pad(mut r: Reader<'_>) -> Result<u32, OfpError> {
    need(&r, 8)?;
    r.u32()
}

fn decode_mp_request(t: u16, mut r: Reader<'_>) -> Result<MpRequestBody, OfpError> {
    use mp_type as M;
    let empty = |r: &Reader<'_>, b: MpRequestBody| need(r, 0).map(|_| b);
    Ok(match t {
        M::DESC => empty(&r, MpRequestBody::Desc)?,
        M::FLOW => MpRequestBody::Flow(decode_flow_stats_request(r)?),
        M::AGGREGATE => MpRequestBody::Aggregate(decode_flow_stats_request(r)?),
        M::TABLE => empty(&r, MpRequestBody::Table)?,
        M::PORT_STATS => MpRequestBody::PortStats(PortNo(id_pad(r)?)),
        M::QUEUE => {
            need(&r, 8)?;
            MpRequestBody::Queue {
                port: PortNo(r.u32()?),
                queue_id: r.u32()?,
            }
        }
        M::GROUP => MpRequestBody::Group(GroupId(id_pad(r)?)),
        M::GROUP_DESC => empty(&r, MpRequestBody::GroupDesc)?,
        M::GROUP_FEATURES => empty(&r, MpRequestBody::GroupFeatures)?,
        M::METER => MpRequestBody::Meter(MeterId(id_pad(r)?)),
        M::METER_CONFIG => MpRequestBody::MeterConfig(MeterId(id_pad(r)?)),
        M::METER_FEATURES => empty(&r, MpRequestBody::MeterFeatures)?,
        M::TABLE_FEATURES => MpRequestBody::TableFeatures(decode_table_features_list(r)?),
        M::PORT_DESC => empty(&r, MpRequestBody::PortDesc)?,
        M::EXPERIMENTER => {
            let experimenter = r.u32()?;
            let exp_type = r.u32()?;
            MpRequestBody::Experimenter {
                experimenter,
                exp_type,
                data: r.take_rest().to_vec(),
            }
        }
        _ => return Err(OfpError::BadMultipart),
    })
}

/// Split a list of entries that each start with a 16-bit length at `len_off`
/// and are at least `min` long.
fn next_entry<'a>(r: &mut Reader<'a>, len_off: usize, min: usize) -> Result<Reader<'a>, OfpError> {
    let len = r.peek_u16(len_off)? as usize;
    if len < min {
        return Err(OfpError::BadLen);
    }
    r.sub(len, OfpError::BadLen)
}

fn decode_mp_reply(t: u16, mut r: Reader<'_>) -> Result<MpReplyBody, OfpError> {
    use mp_type as M;
    Ok(match t {
        M::DESC => {
            need(&r, 4 * DESC_STR_LEN + SERIAL_NUM_LEN)?;
            MpReplyBody::Desc(DescStats {
                mfr_desc: r.string(DESC_STR_LEN)?,
                hw_desc: r.string(DESC_STR_LEN)?,
                sw_desc: r.string(DESC_STR_LEN)?,
                serial_num: r.string(SERIAL_NUM_LEN)?,
                dp_desc: r.string(DESC_STR_LEN)?,
            })
        }
        M::FLOW => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let mut e = next_entry(&mut r, 0, 56)?;
                e.skip(2)?;
                let table_id = TableId(e.u8()?);
                e.skip(1)?;
                let duration_sec = e.u32()?;
                let duration_nsec = e.u32()?;
                let priority = e.u16()?;
                let idle_timeout = e.u16()?;
                let hard_timeout = e.u16()?;
                let flags = e.u16()?;
                e.skip(4)?;
                let cookie = Cookie(e.u64()?);
                let packet_count = e.u64()?;
                let byte_count = e.u64()?;
                let match_ = decode_match(&mut e)?;
                let instructions =
                    decode_instructions(Reader::new(e.take_rest(), OfpError::BadInstructionLen))?;
                v.push(FlowStats {
                    table_id,
                    duration_sec,
                    duration_nsec,
                    priority,
                    idle_timeout,
                    hard_timeout,
                    flags,
                    cookie,
                    packet_count,
                    byte_count,
                    match_,
                    instructions,
                });
            }
            MpReplyBody::Flow(v)
        }
        M::AGGREGATE => {
            need(&r, 24)?;
            MpReplyBody::Aggregate(AggregateStats {
                packet_count: r.u64()?,
                byte_count: r.u64()?,
                flow_count: r.u32()?,
            })
        }
        M::TABLE => MpReplyBody::Table(r.fixed_entries(24, |r| {
            let table_id = TableId(r.u8()?);
            r.skip(3)?;
            Ok(TableStats {
                table_id,
                active_count: r.u32()?,
                lookup_count: r.u64()?,
                matched_count: r.u64()?,
            })
        })?),
        M::PORT_STATS => MpReplyBody::PortStats(r.fixed_entries(112, |r| {
            let port_no = PortNo(r.u32()?);
            r.skip(4)?;
            Ok(PortStats {
                port_no,
                rx_packets: r.u64()?,
                tx_packets: r.u64()?,
                rx_bytes: r.u64()?,
                tx_bytes: r.u64()?,
                rx_dropped: r.u64()?,
                tx_dropped: r.u64()?,
                rx_errors: r.u64()?,
                tx_errors: r.u64()?,
                rx_frame_err: r.u64()?,
                rx_over_err: r.u64()?,
                rx_crc_err: r.u64()?,
                collisions: r.u64()?,
                duration_sec: r.u32()?,
                duration_nsec: r.u32()?,
            })
        })?),
        M::QUEUE => need(&r, 0).map(|_| MpReplyBody::Queue)?,
        M::GROUP => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let mut e = next_entry(&mut r, 0, 40)?;
                e.skip(4)?;
                let group_id = GroupId(e.u32()?);
                let ref_count = e.u32()?;
                e.skip(4)?;
                let packet_count = e.u64()?;
                let byte_count = e.u64()?;
                let duration_sec = e.u32()?;
                let duration_nsec = e.u32()?;
                let bucket_stats = decode_counter_pairs(e)?;
                v.push(GroupStats {
                    group_id,
                    ref_count,
                    packet_count,
                    byte_count,
                    duration_sec,
                    duration_nsec,
                    bucket_stats,
                });
            }
            MpReplyBody::Group(v)
        }
        M::GROUP_DESC => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let mut e = next_entry(&mut r, 0, 8)?;
                e.skip(2)?;
                let group_type = decode_group_type(e.u8()?)?;
                e.skip(1)?;
                let group_id = GroupId(e.u32()?);
                let buckets = decode_buckets(Reader::new(e.take_rest(), OfpError::BadBucket))?;
                v.push(GroupDesc {
                    group_type,
                    group_id,
                    buckets,
                });
            }
            MpReplyBody::GroupDesc(v)
        }
        M::GROUP_FEATURES => {
            need(&r, 40)?;
            let types = r.u32()?;
            let capabilities = r.u32()?;
            let mut max_groups = [0u32; 4];
            for g in &mut max_groups {
                *g = r.u32()?;
            }
            let mut actions = [0u32; 4];
            for a in &mut actions {
                *a = r.u32()?;
            }
            MpReplyBody::GroupFeatures(GroupFeatures {
                types,
                capabilities,
                max_groups,
                actions,
            })
        }
        M::METER => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let mut e = next_entry(&mut r, 4, 40)?;
                let meter_id = MeterId(e.u32()?);
                e.skip(8)?;
                let flow_count = e.u32()?;
                let packet_in_count = e.u64()?;
                let byte_in_count = e.u64()?;
                let duration_sec = e.u32()?;
                let duration_nsec = e.u32()?;
                let band_stats = decode_counter_pairs(e)?;
                v.push(MeterStats {
                    meter_id,
                    flow_count,
                    packet_in_count,
                    byte_in_count,
                    duration_sec,
                    duration_nsec,
                    band_stats,
                });
            }
            MpReplyBody::Meter(v)
        }
        M::METER_CONFIG => {
            let mut v = Vec::new();
            while !r.is_empty() {
                let mut e = next_entry(&mut r, 0, 8)?;
                e.skip(2)?;
                let flags = e.u16()?;
                let meter_id = MeterId(e.u32()?);
                let bands = decode_bands(Reader::new(e.take_rest(), OfpError::BadBand))?;
                v.push(MeterConfig {
                    flags,
                    meter_id,
                    bands,
                });
            }
            MpReplyBody::MeterConfig(v)
        }
        M::METER_FEATURES => {
            need(&r, 16)?;
            MpReplyBody::MeterFeatures(MeterFeatures {
                max_meter: r.u32()?,
                band_types: r.u32()?,
                capabilities: r.u32()?,
                max_bands: r.u8()?,
                max_color: r.u8()?,
            })
        }
        M::TABLE_FEATURES => MpReplyBody::TableFeatures(decode_table_features_list(r)?),
        M::PORT_DESC => MpReplyBody::PortDesc(r.fixed_entries(64, decode_port)?),
        // We never ask for experimenter statistics, so a reply to one is unexpected.
        M::EXPERIMENTER => return Err(OfpError::BadExperimenter),
        _ => return Err(OfpError::BadMultipart),
    })
}

/// `(packets, bytes)` counter pairs filling all of `r`.
fn decode_counter_pairs(mut r: Reader<'_>) -> Result<Vec<(u64, u64)>, OfpError> {
    r.fixed_entries(16, |r| Ok((r.u64()?, r.u64()?)))
}

fn decode_table_features_list(mut r: Reader<'_>) -> Result<Vec<TableFeatures>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        let mut e = next_entry(&mut r, 0, 64)?;
        e.skip(2)?;
        let table_id = TableId(e.u8()?);
        e.skip(5)?;
        let name = e.string(TABLE_NAME_LEN)?;
        let metadata_match = e.u64()?;
        let metadata_write = e.u64()?;
        let config = e.u32()?;
        let max_entries = e.u32()?;
        let properties = decode_table_props(e)?;
        v.push(TableFeatures {
            table_id,
            name,
            metadata_match,
            metadata_write,
            config,
            max_entries,
            properties,
        });
    }
    Ok(v)
}

/// Instruction or action ids in a table-features property: each is a
/// (type, len) header, possibly followed by experimenter data we skip.
fn decode_type_ids(mut r: Reader<'_>) -> Result<Vec<u16>, OfpError> {
    let mut ids = Vec::with_capacity(r.remaining() / 4);
    while !r.is_empty() {
        let t = r.u16()?;
        let len = r.u16()? as usize;
        if len < 4 {
            return Err(OfpError::BadLen);
        }
        r.skip(len - 4)?;
        ids.push(t);
    }
    Ok(ids)
}

/// Table-feature properties. Unknown property types are skipped (we could not
/// act on them anyway), keeping the ones we model.
fn decode_table_props(mut r: Reader<'_>) -> Result<Vec<TableFeatureProp>, OfpError> {
    let mut props = Vec::new();
    while !r.is_empty() {
        let t = r.peek_u16(0)?;
        let len = r.peek_u16(2)? as usize;
        if len < 4 {
            return Err(OfpError::BadLen);
        }
        let mut p = r.sub(len, OfpError::BadLen)?;
        p.skip(4)?;
        let padding = (pad8(len) - len).min(r.remaining());
        r.skip(padding)?;
        let prop = match t {
            0 | 1 => TableFeatureProp::Instructions {
                miss: t == 1,
                ids: decode_type_ids(p)?,
            },
            2 | 3 => TableFeatureProp::NextTables {
                miss: t == 3,
                tables: p.take_rest().to_vec(),
            },
            4..=7 => TableFeatureProp::Actions {
                prop_type: t,
                ids: decode_type_ids(p)?,
            },
            8 | 10 | 12..=15 => {
                if !p.remaining().is_multiple_of(4) {
                    return Err(OfpError::BadLen);
                }
                let mut oxm_headers = Vec::with_capacity(p.remaining() / 4);
                while !p.is_empty() {
                    oxm_headers.push(p.u32()?);
                }
                TableFeatureProp::Oxms {
                    prop_type: t,
                    oxm_headers,
                }
            }
            0xfffe | 0xffff => {
                let experimenter = p.u32()?;
                let exp_type = p.u32()?;
                TableFeatureProp::Experimenter {
                    prop_type: t,
                    experimenter,
                    exp_type,
                    data: p.take_rest().to_vec(),
                }
            }
            _ => continue,
        };
        props.push(prop);
    }
    Ok(props)
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Append one message to `out`. On error `out` is left as it was.
pub fn encode(msg: &OfpMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let t = message_type(&msg.body);
    put_header(out, t, msg.xid);
    encode_body(&msg.body, out);
    finish_message(out, start)
}

/// Encode one message into a fresh buffer.
pub fn encode_to_vec(msg: &OfpMsg) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::new();
    encode(msg, &mut v)?;
    Ok(v)
}

/// Our HELLO: version 0x04 with a version bitmap element naming only 0x04.
pub fn encode_hello(xid: u32, out: &mut Vec<u8>) {
    let start = out.len();
    put_header(out, msg_type::HELLO, xid);
    encode_hello_body(out, &our_versions());
    let len = out.len() - start;
    patch_u16(out, start + 2, len as u16);
}

/// An ERROR reply carrying the first 64 bytes of `offending` (for
/// HELLO_FAILED, `offending` is the explanatory text).
pub fn encode_error_reply(xid: u32, err: OfpError, offending: &[u8]) -> Vec<u8> {
    let (err_type, code) = err.type_code();
    let keep = offending.len().min(ERROR_DATA_LEN);
    let mut out = Vec::with_capacity(HEADER_LEN + 4 + keep);
    put_header(&mut out, msg_type::ERROR, xid);
    put_u16(&mut out, err_type);
    put_u16(&mut out, code);
    out.extend_from_slice(&offending[..keep]);
    let len = out.len();
    patch_u16(&mut out, 2, len as u16);
    out
}

fn put_header(out: &mut Vec<u8>, t: u8, xid: u32) {
    put_u8(out, OFP_VERSION);
    put_u8(out, t);
    put_u16(out, 0);
    put_u32(out, xid);
}

/// Patch the length of the message starting at `start`, or undo it if too long.
fn finish_message(out: &mut Vec<u8>, start: usize) -> Result<(), EncodeError> {
    let len = out.len() - start;
    if len > MAX_MSG_LEN {
        out.truncate(start);
        return Err(EncodeError::TooLong(len));
    }
    patch_u16(out, start + 2, len as u16);
    Ok(())
}

fn message_type(m: &Message) -> u8 {
    use msg_type as T;
    match m {
        Message::Hello { .. } => T::HELLO,
        Message::Error(_) => T::ERROR,
        Message::EchoRequest(_) => T::ECHO_REQUEST,
        Message::EchoReply(_) => T::ECHO_REPLY,
        Message::Experimenter { .. } => T::EXPERIMENTER,
        Message::FeaturesRequest => T::FEATURES_REQUEST,
        Message::FeaturesReply(_) => T::FEATURES_REPLY,
        Message::GetConfigRequest => T::GET_CONFIG_REQUEST,
        Message::GetConfigReply(_) => T::GET_CONFIG_REPLY,
        Message::SetConfig(_) => T::SET_CONFIG,
        Message::PacketIn(_) => T::PACKET_IN,
        Message::FlowRemoved(_) => T::FLOW_REMOVED,
        Message::PortStatus(_) => T::PORT_STATUS,
        Message::PacketOut(_) => T::PACKET_OUT,
        Message::FlowMod(_) => T::FLOW_MOD,
        Message::GroupMod(_) => T::GROUP_MOD,
        Message::PortMod(_) => T::PORT_MOD,
        Message::TableMod { .. } => T::TABLE_MOD,
        Message::MultipartRequest(_) => T::MULTIPART_REQUEST,
        Message::MultipartReply(_) => T::MULTIPART_REPLY,
        Message::BarrierRequest => T::BARRIER_REQUEST,
        Message::BarrierReply => T::BARRIER_REPLY,
        Message::QueueGetConfigRequest { .. } => T::QUEUE_GET_CONFIG_REQUEST,
        Message::QueueGetConfigReply { .. } => T::QUEUE_GET_CONFIG_REPLY,
        Message::RoleRequest(_) => T::ROLE_REQUEST,
        Message::RoleReply(_) => T::ROLE_REPLY,
        Message::GetAsyncRequest => T::GET_ASYNC_REQUEST,
        Message::GetAsyncReply(_) => T::GET_ASYNC_REPLY,
        Message::SetAsync(_) => T::SET_ASYNC,
        Message::MeterMod(_) => T::METER_MOD,
    }
}

fn encode_hello_body(out: &mut Vec<u8>, versions: &[u32]) {
    if versions.is_empty() {
        return;
    }
    let start = out.len();
    put_u16(out, HELLO_ELEM_VERSIONBITMAP);
    put_u16(out, (4 + 4 * versions.len()) as u16);
    for v in versions {
        put_u32(out, *v);
    }
    pad_to_8(out, start);
}

fn encode_body(m: &Message, out: &mut Vec<u8>) {
    match m {
        Message::Hello { versions } => encode_hello_body(out, versions),
        Message::Error(e) => {
            put_u16(out, e.err_type);
            put_u16(out, e.code);
            out.extend_from_slice(&e.data);
        }
        Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
        Message::Experimenter {
            experimenter,
            exp_type,
            data,
        } => {
            put_u32(out, *experimenter);
            put_u32(out, *exp_type);
            out.extend_from_slice(data);
        }
        Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::BarrierRequest
        | Message::BarrierReply
        | Message::GetAsyncRequest => {}
        Message::FeaturesReply(f) => {
            put_u64(out, f.datapath_id.0);
            put_u32(out, f.n_buffers);
            put_u8(out, f.n_tables);
            put_u8(out, f.auxiliary_id);
            put_zeros(out, 2);
            put_u32(out, f.capabilities);
            put_u32(out, 0);
        }
        Message::GetConfigReply(c) | Message::SetConfig(c) => {
            put_u16(out, c.flags);
            put_u16(out, c.miss_send_len);
        }
        Message::PacketIn(p) => {
            put_u32(out, p.buffer_id);
            put_u16(out, p.total_len);
            put_u8(out, p.reason);
            put_u8(out, p.table_id.0);
            put_u64(out, p.cookie.0);
            encode_match(out, &p.match_);
            put_zeros(out, 2);
            out.extend_from_slice(&p.data);
        }
        Message::FlowRemoved(f) => {
            put_u64(out, f.cookie.0);
            put_u16(out, f.priority);
            put_u8(out, f.reason);
            put_u8(out, f.table_id.0);
            put_u32(out, f.duration_sec);
            put_u32(out, f.duration_nsec);
            put_u16(out, f.idle_timeout);
            put_u16(out, f.hard_timeout);
            put_u64(out, f.packet_count);
            put_u64(out, f.byte_count);
            encode_match(out, &f.match_);
        }
        Message::PortStatus(p) => {
            put_u8(out, p.reason);
            put_zeros(out, 7);
            encode_port(out, &p.desc);
        }
        Message::PacketOut(p) => {
            put_u32(out, p.buffer_id);
            put_u32(out, p.in_port.0);
            let len_at = out.len();
            put_u16(out, 0);
            put_zeros(out, 6);
            let actions_start = out.len();
            encode_actions(out, &p.actions);
            let alen = out.len() - actions_start;
            patch_u16(out, len_at, alen as u16);
            out.extend_from_slice(&p.data);
        }
        Message::FlowMod(f) => {
            put_u64(out, f.cookie.0);
            put_u64(out, f.cookie_mask);
            put_u8(out, f.table_id.0);
            put_u8(out, flow_mod_command_num(f.command));
            put_u16(out, f.idle_timeout);
            put_u16(out, f.hard_timeout);
            put_u16(out, f.priority);
            put_u32(out, f.buffer_id);
            put_u32(out, f.out_port.0);
            put_u32(out, f.out_group.0);
            put_u16(out, f.flags);
            put_zeros(out, 2);
            encode_match(out, &f.match_);
            encode_instructions(out, &f.instructions);
        }
        Message::GroupMod(g) => {
            put_u16(
                out,
                match g.command {
                    GroupModCommand::Add => 0,
                    GroupModCommand::Modify => 1,
                    GroupModCommand::Delete => 2,
                },
            );
            put_u8(out, group_type_num(g.group_type));
            put_zeros(out, 1);
            put_u32(out, g.group_id.0);
            encode_buckets(out, &g.buckets);
        }
        Message::PortMod(p) => {
            put_u32(out, p.port_no.0);
            put_zeros(out, 4);
            out.extend_from_slice(&p.hw_addr.0);
            put_zeros(out, 2);
            put_u32(out, p.config);
            put_u32(out, p.mask);
            put_u32(out, p.advertise);
            put_zeros(out, 4);
        }
        Message::TableMod { table_id, config } => {
            put_u8(out, table_id.0);
            put_zeros(out, 3);
            put_u32(out, *config);
        }
        Message::MultipartRequest(req) => {
            put_u16(out, mp_request_type(&req.body));
            put_u16(out, req.flags);
            put_zeros(out, 4);
            encode_mp_request_body(out, &req.body);
        }
        Message::MultipartReply(rep) => {
            put_u16(out, mp_reply_type(&rep.body));
            put_u16(out, rep.flags);
            put_zeros(out, 4);
            encode_mp_reply_body(out, &rep.body);
        }
        Message::QueueGetConfigRequest { port } | Message::QueueGetConfigReply { port } => {
            put_u32(out, port.0);
            put_zeros(out, 4);
        }
        Message::RoleRequest(r) | Message::RoleReply(r) => {
            put_u32(
                out,
                match r.role {
                    ControllerRole::NoChange => 0,
                    ControllerRole::Equal => 1,
                    ControllerRole::Master => 2,
                    ControllerRole::Slave => 3,
                },
            );
            put_zeros(out, 4);
            put_u64(out, r.generation_id);
        }
        Message::GetAsyncReply(a) | Message::SetAsync(a) => {
            for v in a
                .packet_in_mask
                .iter()
                .chain(&a.port_status_mask)
                .chain(&a.flow_removed_mask)
            {
                put_u32(out, *v);
            }
        }
        Message::MeterMod(m) => {
            put_u16(
                out,
                match m.command {
                    MeterModCommand::Add => 0,
                    MeterModCommand::Modify => 1,
                    MeterModCommand::Delete => 2,
                },
            );
            put_u16(out, m.flags);
            put_u32(out, m.meter_id.0);
            encode_bands(out, &m.bands);
        }
    }
}

fn flow_mod_command_num(c: FlowModCommand) -> u8 {
    match c {
        FlowModCommand::Add => 0,
        FlowModCommand::Modify => 1,
        FlowModCommand::ModifyStrict => 2,
        FlowModCommand::Delete => 3,
        FlowModCommand::DeleteStrict => 4,
    }
}

fn mp_request_type(b: &MpRequestBody) -> u16 {
    use mp_type as M;
    match b {
        MpRequestBody::Desc => M::DESC,
        MpRequestBody::Flow(_) => M::FLOW,
        MpRequestBody::Aggregate(_) => M::AGGREGATE,
        MpRequestBody::Table => M::TABLE,
        MpRequestBody::PortStats(_) => M::PORT_STATS,
        MpRequestBody::Queue { .. } => M::QUEUE,
        MpRequestBody::Group(_) => M::GROUP,
        MpRequestBody::GroupDesc => M::GROUP_DESC,
        MpRequestBody::GroupFeatures => M::GROUP_FEATURES,
        MpRequestBody::Meter(_) => M::METER,
        MpRequestBody::MeterConfig(_) => M::METER_CONFIG,
        MpRequestBody::MeterFeatures => M::METER_FEATURES,
        MpRequestBody::TableFeatures(_) => M::TABLE_FEATURES,
        MpRequestBody::PortDesc => M::PORT_DESC,
        MpRequestBody::Experimenter { .. } => M::EXPERIMENTER,
    }
}

fn mp_reply_type(b: &MpReplyBody) -> u16 {
    use mp_type as M;
    match b {
        MpReplyBody::Desc(_) => M::DESC,
        MpReplyBody::Flow(_) => M::FLOW,
        MpReplyBody::Aggregate(_) => M::AGGREGATE,
        MpReplyBody::Table(_) => M::TABLE,
        MpReplyBody::PortStats(_) => M::PORT_STATS,
        MpReplyBody::Queue => M::QUEUE,
        MpReplyBody::Group(_) => M::GROUP,
        MpReplyBody::GroupDesc(_) => M::GROUP_DESC,
        MpReplyBody::GroupFeatures(_) => M::GROUP_FEATURES,
        MpReplyBody::Meter(_) => M::METER,
        MpReplyBody::MeterConfig(_) => M::METER_CONFIG,
        MpReplyBody::MeterFeatures(_) => M::METER_FEATURES,
        MpReplyBody::TableFeatures(_) => M::TABLE_FEATURES,
        MpReplyBody::PortDesc(_) => M::PORT_DESC,
    }
}

fn encode_flow_stats_request(out: &mut Vec<u8>, f: &FlowStatsRequest) {
    put_u8(out, f.table_id.0);
    put_zeros(out, 3);
    put_u32(out, f.out_port.0);
    put_u32(out, f.out_group.0);
    put_zeros(out, 4);
    put_u64(out, f.cookie.0);
    put_u64(out, f.cookie_mask);
    encode_match(out, &f.match_);
}

fn encode_mp_request_body(out: &mut Vec<u8>, b: &MpRequestBody) {
    let id_pad = |out: &mut Vec<u8>, id: u32| {
        put_u32(out, id);
        put_zeros(out, 4);
    };
    match b {
        MpRequestBody::Desc
        | MpRequestBody::Table
        | MpRequestBody::GroupDesc
        | MpRequestBody::GroupFeatures
        | MpRequestBody::MeterFeatures
        | MpRequestBody::PortDesc => {}
        MpRequestBody::Flow(f) | MpRequestBody::Aggregate(f) => encode_flow_stats_request(out, f),
        MpRequestBody::PortStats(p) => id_pad(out, p.0),
        MpRequestBody::Queue { port, queue_id } => {
            put_u32(out, port.0);
            put_u32(out, *queue_id);
        }
        MpRequestBody::Group(g) => id_pad(out, g.0),
        MpRequestBody::Meter(m) | MpRequestBody::MeterConfig(m) => id_pad(out, m.0),
        MpRequestBody::TableFeatures(tfs) => {
            for tf in tfs {
                encode_table_features(out, tf);
            }
        }
        MpRequestBody::Experimenter {
            experimenter,
            exp_type,
            data,
        } => {
            put_u32(out, *experimenter);
            put_u32(out, *exp_type);
            out.extend_from_slice(data);
        }
    }
}

/// Append a whole multipart reply body (all entries).
fn encode_mp_reply_body(out: &mut Vec<u8>, b: &MpReplyBody) {
    match b {
        MpReplyBody::Desc(d) => {
            put_string(out, &d.mfr_desc, DESC_STR_LEN);
            put_string(out, &d.hw_desc, DESC_STR_LEN);
            put_string(out, &d.sw_desc, DESC_STR_LEN);
            put_string(out, &d.serial_num, SERIAL_NUM_LEN);
            put_string(out, &d.dp_desc, DESC_STR_LEN);
        }
        MpReplyBody::Aggregate(a) => {
            put_u64(out, a.packet_count);
            put_u64(out, a.byte_count);
            put_u32(out, a.flow_count);
            put_zeros(out, 4);
        }
        MpReplyBody::Queue => {}
        MpReplyBody::GroupFeatures(g) => {
            put_u32(out, g.types);
            put_u32(out, g.capabilities);
            for v in g.max_groups.iter().chain(&g.actions) {
                put_u32(out, *v);
            }
        }
        MpReplyBody::MeterFeatures(m) => {
            put_u32(out, m.max_meter);
            put_u32(out, m.band_types);
            put_u32(out, m.capabilities);
            put_u8(out, m.max_bands);
            put_u8(out, m.max_color);
            put_zeros(out, 2);
        }
        MpReplyBody::Flow(v) => v.iter().for_each(|e| encode_flow_stats(out, e)),
        MpReplyBody::Table(v) => v.iter().for_each(|e| encode_table_stats(out, e)),
        MpReplyBody::PortStats(v) => v.iter().for_each(|e| encode_port_stats(out, e)),
        MpReplyBody::Group(v) => v.iter().for_each(|e| encode_group_stats(out, e)),
        MpReplyBody::GroupDesc(v) => v.iter().for_each(|e| encode_group_desc(out, e)),
        MpReplyBody::Meter(v) => v.iter().for_each(|e| encode_meter_stats(out, e)),
        MpReplyBody::MeterConfig(v) => v.iter().for_each(|e| encode_meter_config(out, e)),
        MpReplyBody::TableFeatures(v) => v.iter().for_each(|e| encode_table_features(out, e)),
        MpReplyBody::PortDesc(v) => v.iter().for_each(|e| encode_port(out, e)),
    }
}

fn encode_flow_stats(out: &mut Vec<u8>, f: &FlowStats) {
    let oxms = super::encode_oxms(&f.match_);
    put_flow_stats(
        out,
        &FlowStatsRef {
            table_id: f.table_id,
            duration_sec: f.duration_sec,
            duration_nsec: f.duration_nsec,
            priority: f.priority,
            idle_timeout: f.idle_timeout,
            hard_timeout: f.hard_timeout,
            flags: f.flags,
            cookie: f.cookie,
            packet_count: f.packet_count,
            byte_count: f.byte_count,
            match_oxm: &oxms,
            instructions: &f.instructions,
        },
    );
}

/// One `ofp_flow_stats` entry; returns its length (its length field is
/// only right when that fits 16 bits, which callers that can overflow check).
fn put_flow_stats(out: &mut Vec<u8>, f: &FlowStatsRef<'_>) -> usize {
    let start = out.len();
    put_u16(out, 0);
    put_u8(out, f.table_id.0);
    put_zeros(out, 1);
    put_u32(out, f.duration_sec);
    put_u32(out, f.duration_nsec);
    put_u16(out, f.priority);
    put_u16(out, f.idle_timeout);
    put_u16(out, f.hard_timeout);
    put_u16(out, f.flags);
    put_zeros(out, 4);
    put_u64(out, f.cookie.0);
    put_u64(out, f.packet_count);
    put_u64(out, f.byte_count);
    encode_match_oxms(out, f.match_oxm);
    encode_instructions(out, f.instructions);
    let len = out.len() - start;
    patch_u16(out, start, len as u16);
    len
}

fn encode_table_stats(out: &mut Vec<u8>, t: &TableStats) {
    put_u8(out, t.table_id.0);
    put_zeros(out, 3);
    put_u32(out, t.active_count);
    put_u64(out, t.lookup_count);
    put_u64(out, t.matched_count);
}

fn encode_port_stats(out: &mut Vec<u8>, p: &PortStats) {
    put_u32(out, p.port_no.0);
    put_zeros(out, 4);
    for v in [
        p.rx_packets,
        p.tx_packets,
        p.rx_bytes,
        p.tx_bytes,
        p.rx_dropped,
        p.tx_dropped,
        p.rx_errors,
        p.tx_errors,
        p.rx_frame_err,
        p.rx_over_err,
        p.rx_crc_err,
        p.collisions,
    ] {
        put_u64(out, v);
    }
    put_u32(out, p.duration_sec);
    put_u32(out, p.duration_nsec);
}

fn encode_counter_pairs(out: &mut Vec<u8>, pairs: &[(u64, u64)]) {
    for (p, b) in pairs {
        put_u64(out, *p);
        put_u64(out, *b);
    }
}

fn encode_group_stats(out: &mut Vec<u8>, g: &GroupStats) {
    let start = out.len();
    put_u16(out, 0);
    put_zeros(out, 2);
    put_u32(out, g.group_id.0);
    put_u32(out, g.ref_count);
    put_zeros(out, 4);
    put_u64(out, g.packet_count);
    put_u64(out, g.byte_count);
    put_u32(out, g.duration_sec);
    put_u32(out, g.duration_nsec);
    encode_counter_pairs(out, &g.bucket_stats);
    let len = out.len() - start;
    patch_u16(out, start, len as u16);
}

fn encode_group_desc(out: &mut Vec<u8>, g: &GroupDesc) {
    let start = out.len();
    put_u16(out, 0);
    put_u8(out, group_type_num(g.group_type));
    put_zeros(out, 1);
    put_u32(out, g.group_id.0);
    encode_buckets(out, &g.buckets);
    let len = out.len() - start;
    patch_u16(out, start, len as u16);
}

fn encode_meter_stats(out: &mut Vec<u8>, m: &MeterStats) {
    let start = out.len();
    put_u32(out, m.meter_id.0);
    put_u16(out, 0);
    put_zeros(out, 6);
    put_u32(out, m.flow_count);
    put_u64(out, m.packet_in_count);
    put_u64(out, m.byte_in_count);
    put_u32(out, m.duration_sec);
    put_u32(out, m.duration_nsec);
    encode_counter_pairs(out, &m.band_stats);
    let len = out.len() - start;
    patch_u16(out, start + 4, len as u16);
}

fn encode_meter_config(out: &mut Vec<u8>, m: &MeterConfig) {
    let start = out.len();
    put_u16(out, 0);
    put_u16(out, m.flags);
    put_u32(out, m.meter_id.0);
    encode_bands(out, &m.bands);
    let len = out.len() - start;
    patch_u16(out, start, len as u16);
}

fn encode_table_features(out: &mut Vec<u8>, t: &TableFeatures) {
    let start = out.len();
    put_u16(out, 0);
    put_u8(out, t.table_id.0);
    put_zeros(out, 5);
    put_string(out, &t.name, TABLE_NAME_LEN);
    put_u64(out, t.metadata_match);
    put_u64(out, t.metadata_write);
    put_u32(out, t.config);
    put_u32(out, t.max_entries);
    for p in &t.properties {
        encode_table_prop(out, p);
    }
    let len = out.len() - start;
    patch_u16(out, start, len as u16);
}

fn encode_table_prop(out: &mut Vec<u8>, p: &TableFeatureProp) {
    let start = out.len();
    let type_ids = |out: &mut Vec<u8>, ids: &[u16]| {
        for id in ids {
            put_u16(out, *id);
            put_u16(out, 4);
        }
    };
    let t = match p {
        TableFeatureProp::Instructions { miss, .. } => *miss as u16,
        TableFeatureProp::NextTables { miss, .. } => 2 + *miss as u16,
        TableFeatureProp::Actions { prop_type, .. }
        | TableFeatureProp::Oxms { prop_type, .. }
        | TableFeatureProp::Experimenter { prop_type, .. } => *prop_type,
    };
    put_u16(out, t);
    put_u16(out, 0);
    match p {
        TableFeatureProp::Instructions { ids, .. } | TableFeatureProp::Actions { ids, .. } => {
            type_ids(out, ids)
        }
        TableFeatureProp::NextTables { tables, .. } => out.extend_from_slice(tables),
        TableFeatureProp::Oxms { oxm_headers, .. } => {
            for h in oxm_headers {
                put_u32(out, *h);
            }
        }
        TableFeatureProp::Experimenter {
            experimenter,
            exp_type,
            data,
            ..
        } => {
            put_u32(out, *experimenter);
            put_u32(out, *exp_type);
            out.extend_from_slice(data);
        }
    }
    let len = out.len() - start;
    patch_u16(out, start + 2, len as u16);
    pad_to_8(out, start);
}

// ---------------------------------------------------------------------------
// Multipart reply splitting
// ---------------------------------------------------------------------------

/// Start a multipart reply message of type `t` in a fresh buffer.
fn start_mp_reply(xid: u32, t: u16, capacity: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(capacity);
    put_header(&mut m, msg_type::MULTIPART_REPLY, xid);
    put_u16(&mut m, t);
    put_u16(&mut m, 0);
    put_zeros(&mut m, 4);
    m
}

/// Set the length and REPLY_MORE flag of a finished multipart reply message.
fn seal_mp_reply(m: &mut [u8], more: bool) {
    let len = m.len();
    patch_u16(m, 2, len as u16);
    patch_u16(m, 10, if more { MPF_MORE } else { 0 });
}

/// Encode entries into as many messages as needed, each at most 65535 bytes.
/// Each entry is encoded once, in place; one that overflows the current message
/// is moved (only its own bytes) to the next, so the cost is linear.
fn split_entries<T>(
    xid: u32,
    t: u16,
    items: &[T],
    enc: impl Fn(&mut Vec<u8>, &T),
    msgs: &mut Vec<Vec<u8>>,
) -> Result<(), EncodeError> {
    let mut cur = start_mp_reply(xid, t, 1024);
    for item in items {
        let before = cur.len();
        enc(&mut cur, item);
        if cur.len() <= MAX_MSG_LEN {
            continue;
        }
        let entry_len = cur.len() - before;
        if MP_HEADER_LEN + entry_len > MAX_MSG_LEN {
            return Err(EncodeError::TooLong(MP_HEADER_LEN + entry_len));
        }
        let mut next = start_mp_reply(xid, t, MAX_MSG_LEN);
        next.extend_from_slice(&cur[before..]);
        cur.truncate(before);
        seal_mp_reply(&mut cur, true);
        msgs.push(std::mem::replace(&mut cur, next));
    }
    seal_mp_reply(&mut cur, false);
    msgs.push(cur);
    Ok(())
}

/// Encode a multipart reply as one or more messages appended to `out`, setting
/// OFPMPF_REPLY_MORE on all but the last, so that replies of any size (flow
/// stats of 100k flows, table features of every table) can be sent. Nothing is
/// appended on error (a single entry larger than a message can hold).
pub fn encode_multipart_reply_split(
    xid: u32,
    body: &MpReplyBody,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), EncodeError> {
    let mut msgs = Vec::new();
    let t = mp_reply_type(body);
    match body {
        MpReplyBody::Flow(v) => split_entries(xid, t, v, encode_flow_stats, &mut msgs)?,
        MpReplyBody::Table(v) => split_entries(xid, t, v, encode_table_stats, &mut msgs)?,
        MpReplyBody::PortStats(v) => split_entries(xid, t, v, encode_port_stats, &mut msgs)?,
        MpReplyBody::Group(v) => split_entries(xid, t, v, encode_group_stats, &mut msgs)?,
        MpReplyBody::GroupDesc(v) => split_entries(xid, t, v, encode_group_desc, &mut msgs)?,
        MpReplyBody::Meter(v) => split_entries(xid, t, v, encode_meter_stats, &mut msgs)?,
        MpReplyBody::MeterConfig(v) => split_entries(xid, t, v, encode_meter_config, &mut msgs)?,
        MpReplyBody::TableFeatures(v) => {
            split_entries(xid, t, v, encode_table_features, &mut msgs)?
        }
        MpReplyBody::PortDesc(v) => split_entries(xid, t, v, encode_port, &mut msgs)?,
        MpReplyBody::Desc(_)
        | MpReplyBody::Aggregate(_)
        | MpReplyBody::Queue
        | MpReplyBody::GroupFeatures(_)
        | MpReplyBody::MeterFeatures(_) => {
            let msg = OfpMsg {
                xid,
                body: Message::MultipartReply(MultipartReply {
                    flags: 0,
                    body: body.clone(),
                }),
            };
            msgs.push(encode_to_vec(&msg)?);
        }
    }
    out.append(&mut msgs);
    Ok(())
}

/// One flow-stats entry borrowed from wherever the switch keeps its rules, so a
/// dump of 100k rules encodes straight from them (no per-rule [`FlowStats`]
/// with cloned match and instructions). The match is given as its OXM TLVs
/// ([`super::encode_oxms`]).
#[derive(Clone, Copy, Debug)]
pub struct FlowStatsRef<'a> {
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
    /// The match's OXM TLVs.
    pub match_oxm: &'a [u8],
    /// Instructions.
    pub instructions: &'a [Instruction],
}

/// Builds a multipart reply of any length one entry at a time: finished
/// messages (at most 65535 bytes, OFPMPF_REPLY_MORE set) can be taken and sent
/// while later entries are still being encoded.
#[derive(Debug)]
pub struct MultipartWriter {
    xid: u32,
    mp_type: u16,
    cur: Vec<u8>,
    ready: Vec<Vec<u8>>,
}

impl MultipartWriter {
    /// A writer for an OFPMP_FLOW reply.
    pub fn flow_stats(xid: u32) -> MultipartWriter {
        MultipartWriter {
            xid,
            mp_type: 1,
            cur: start_mp_reply(xid, 1, MAX_MSG_LEN),
            ready: Vec::new(),
        }
    }

    /// Appends one flow-stats entry.
    pub fn push_flow_stats(&mut self, f: &FlowStatsRef<'_>) -> Result<(), EncodeError> {
        let before = self.cur.len();
        let entry_len = put_flow_stats(&mut self.cur, f);
        if entry_len > u16::MAX as usize || MP_HEADER_LEN + entry_len > MAX_MSG_LEN {
            self.cur.truncate(before);
            return Err(EncodeError::TooLong(MP_HEADER_LEN + entry_len));
        }
        if self.cur.len() > MAX_MSG_LEN {
            let mut next = start_mp_reply(self.xid, self.mp_type, MAX_MSG_LEN);
            next.extend_from_slice(&self.cur[before..]);
            self.cur.truncate(before);
            seal_mp_reply(&mut self.cur, true);
            self.ready.push(std::mem::replace(&mut self.cur, next));
        }
        Ok(())
    }

    /// Takes the messages finished so far (all full, REPLY_MORE set).
    pub fn take_ready(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.ready)
    }

    /// Number of finished messages waiting in [`MultipartWriter::take_ready`].
    pub fn n_ready(&self) -> usize {
        self.ready.len()
    }

    /// Seals the last message and returns every message not yet taken.
    pub fn finish(mut self) -> Vec<Vec<u8>> {
        seal_mp_reply(&mut self.cur, false);
        self.ready.push(self.cur);
        self.ready
    }
}
