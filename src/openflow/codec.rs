//! Whole-message decoding and encoding: the header and the dispatch on
//! message type. Each body's layout lives with its structure (`hello`,
//! `switch`, `controller`, `port`, `flow`, `packet`, `group`, `meter`,
//! `table`, `multipart`), parse and emit side by side.
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
//! not fit in one message go through [`super::mp_writer`].
//!
//! Everything here is pure and synchronous; the session owns the buffers.

use super::error::OfpError;
use super::framing::{header, our_versions, HEADER_LEN};
use super::message::*;
use super::wire::{patch_u16, put_u16, put_u32, put_u8, Reader};
use super::{controller, flow, group, hello, meter, multipart, packet, port, switch};

pub use super::mp_writer::{encode_multipart_reply_split, FlowStatsRef, MultipartWriter};
pub use super::multipart::mp_type;

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

/// Bytes of the offending request echoed in an ERROR (as Open vSwitch does).
const ERROR_DATA_LEN: usize = 64;

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

/// Fail with BAD_LEN unless the body is empty.
fn empty(r: &Reader<'_>, m: Message) -> Result<Message, OfpError> {
    if r.is_empty() {
        Ok(m)
    } else {
        Err(OfpError::BadLen)
    }
}

fn decode_body(t: u8, r: Reader<'_>) -> Result<Message, OfpError> {
    use msg_type as T;
    Ok(match t {
        T::HELLO => Message::Hello {
            versions: hello::parse(r)?,
        },
        T::ERROR => Message::Error(controller::parse_error(r)?),
        T::ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
        T::ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
        T::EXPERIMENTER => {
            let (experimenter, exp_type, data) = controller::parse_experimenter(r)?;
            Message::Experimenter {
                experimenter,
                exp_type,
                data,
            }
        }
        T::FEATURES_REQUEST => empty(&r, Message::FeaturesRequest)?,
        T::FEATURES_REPLY => Message::FeaturesReply(switch::parse_features(r)?),
        T::GET_CONFIG_REQUEST => empty(&r, Message::GetConfigRequest)?,
        T::GET_CONFIG_REPLY => Message::GetConfigReply(switch::parse_config(r)?),
        T::SET_CONFIG => Message::SetConfig(switch::parse_config(r)?),
        T::PACKET_IN => Message::PacketIn(packet::parse_in(r)?),
        T::FLOW_REMOVED => Message::FlowRemoved(flow::parse_removed(r)?),
        T::PORT_STATUS => Message::PortStatus(port::parse_status(r)?),
        T::PACKET_OUT => Message::PacketOut(packet::parse_out(r)?),
        T::FLOW_MOD => Message::FlowMod(flow::parse_mod(r)?),
        T::GROUP_MOD => Message::GroupMod(group::parse_mod(r)?),
        T::PORT_MOD => Message::PortMod(port::parse_mod(r)?),
        T::TABLE_MOD => {
            let (table_id, config) = switch::parse_table_mod(r)?;
            Message::TableMod { table_id, config }
        }
        T::MULTIPART_REQUEST => Message::MultipartRequest(multipart::parse_request(r)?),
        T::MULTIPART_REPLY => Message::MultipartReply(multipart::parse_reply(r)?),
        T::BARRIER_REQUEST => empty(&r, Message::BarrierRequest)?,
        T::BARRIER_REPLY => empty(&r, Message::BarrierReply)?,
        T::QUEUE_GET_CONFIG_REQUEST => Message::QueueGetConfigRequest {
            port: switch::parse_queue_config(r)?,
        },
        // We model only the empty queue list (we have no queues).
        T::QUEUE_GET_CONFIG_REPLY => Message::QueueGetConfigReply {
            port: switch::parse_queue_config(r)?,
        },
        T::ROLE_REQUEST => Message::RoleRequest(controller::parse_role(r)?),
        T::ROLE_REPLY => Message::RoleReply(controller::parse_role(r)?),
        T::GET_ASYNC_REQUEST => empty(&r, Message::GetAsyncRequest)?,
        T::GET_ASYNC_REPLY => Message::GetAsyncReply(controller::parse_async(r)?),
        T::SET_ASYNC => Message::SetAsync(controller::parse_async(r)?),
        T::METER_MOD => Message::MeterMod(meter::parse_mod(r)?),
        _ => return Err(OfpError::BadType),
    })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Append one message to `out`. On error `out` is left as it was.
pub fn encode(msg: &OfpMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    put_header(out, message_type(&msg.body), msg.xid);
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
    hello::emit(out, &our_versions());
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
    controller::emit_error_head(&mut out, err_type, code);
    out.extend_from_slice(&offending[..keep]);
    let len = out.len();
    patch_u16(&mut out, 2, len as u16);
    out
}

/// Appends an `ofp_header` (version 0x04) whose length is patched later.
pub(crate) fn put_header(out: &mut Vec<u8>, t: u8, xid: u32) {
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

fn encode_body(m: &Message, out: &mut Vec<u8>) {
    match m {
        Message::Hello { versions } => hello::emit(out, versions),
        Message::Error(e) => controller::emit_error(out, e),
        Message::EchoRequest(d) | Message::EchoReply(d) => out.extend_from_slice(d),
        Message::Experimenter {
            experimenter,
            exp_type,
            data,
        } => controller::emit_experimenter(out, *experimenter, *exp_type, data),
        Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::BarrierRequest
        | Message::BarrierReply
        | Message::GetAsyncRequest => {}
        Message::FeaturesReply(f) => switch::emit_features(out, f),
        Message::GetConfigReply(c) | Message::SetConfig(c) => switch::emit_config(out, c),
        Message::PacketIn(p) => packet::emit_in(out, p),
        Message::FlowRemoved(f) => flow::emit_removed(out, f),
        Message::PortStatus(p) => port::emit_status(out, p),
        Message::PacketOut(p) => packet::emit_out(out, p),
        Message::FlowMod(f) => flow::emit_mod(out, f),
        Message::GroupMod(g) => group::emit_mod(out, g),
        Message::PortMod(p) => port::emit_mod(out, p),
        Message::TableMod { table_id, config } => switch::emit_table_mod(out, *table_id, *config),
        Message::MultipartRequest(req) => multipart::emit_request(out, req),
        Message::MultipartReply(rep) => multipart::emit_reply(out, rep),
        Message::QueueGetConfigRequest { port } | Message::QueueGetConfigReply { port } => {
            switch::emit_queue_config(out, *port)
        }
        Message::RoleRequest(r) | Message::RoleReply(r) => controller::emit_role(out, r),
        Message::GetAsyncReply(a) | Message::SetAsync(a) => controller::emit_async(out, a),
        Message::MeterMod(m) => meter::emit_mod(out, m),
    }
}
