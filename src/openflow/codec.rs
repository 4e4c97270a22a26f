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
//! `wire::Reader`.
//!
//! [`encode`] appends one message. Bodies are written first and length fields
//! patched afterwards; only the final message length is checked against the
//! 16-bit limit, which bounds every inner length too. Multipart replies that may
//! not fit in one message go through `mp_writer`.
//!
//! Everything here is pure and synchronous; the session owns the buffers.

use super::error::OfpError;
use super::framing::{header, our_versions, Version, Versions, HEADER_LEN};
use super::message::*;
use super::wire::{patch_u16, put_u16, put_u32, Reader};
use super::{
    bundle, controller, flow, group, hello, meter, monitor, multipart, packet, port, switch,
};

pub use super::flow::FlowStatsRef;
pub(crate) use super::framing::put_header_v;
pub use super::framing::{msg_type, EncodeError, MAX_MSG_LEN};
pub use super::mp_writer::{
    encode_multipart_reply_split, encode_multipart_reply_split_in, MultipartWriter,
};
pub use super::multipart::mp_type;

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

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Decode exactly one message of a 1.3 session (header included,
/// `msg.len()` equal to the header's length): [`decode_in`] for
/// [`Version::V1_3`]. HELLO is accepted in any version so that negotiation
/// can look at it; every other message must be version 0x04.
pub fn decode(msg: &[u8]) -> Result<OfpMsg, DecodeError> {
    decode_in(Version::V1_3, msg)
}

/// Decode one message of a session that negotiated `version`: a HELLO in any
/// version, anything else only in `version` (another version is BAD_VERSION
/// and fatal, as in Open vSwitch, which closes such a connection).
pub fn decode_in(version: Version, msg: &[u8]) -> Result<OfpMsg, DecodeError> {
    let h = check_header(msg)?;
    if h.version != version.0 && h.msg_type != msg_type::HELLO {
        return Err(DecodeError {
            xid: h.xid,
            error: OfpError::BadVersion,
            fatal: true,
        });
    }
    decode_checked(Version(h.version), h.msg_type, h.xid, msg)
}

/// Decode one message in whatever version its header says, returning that
/// version: for a peer whose version is not known yet (or a tool that reads
/// captures). A version we do not speak is BAD_VERSION and fatal, except for
/// HELLO, which decodes in any version (its header version is returned as
/// is, for [`super::framing::negotiate_version`]).
pub fn decode_any(msg: &[u8]) -> Result<(Version, OfpMsg), DecodeError> {
    let h = check_header(msg)?;
    let v = Version(h.version);
    if !v.is_supported() && h.msg_type != msg_type::HELLO {
        return Err(DecodeError {
            xid: h.xid,
            error: OfpError::BadVersion,
            fatal: true,
        });
    }
    Ok((v, decode_checked(v, h.msg_type, h.xid, msg)?))
}

/// The header of a whole message whose length field matches the buffer.
fn check_header(msg: &[u8]) -> Result<super::framing::Header, DecodeError> {
    let Some(h) = header(msg) else {
        return Err(DecodeError {
            xid: 0,
            error: OfpError::BadLen,
            fatal: true,
        });
    };
    if h.length as usize != msg.len() {
        return Err(DecodeError {
            xid: h.xid,
            error: OfpError::BadLen,
            fatal: false,
        });
    }
    Ok(h)
}

fn decode_checked(v: Version, t: u8, xid: u32, msg: &[u8]) -> Result<OfpMsg, DecodeError> {
    let body = Reader::new(&msg[HEADER_LEN..], OfpError::BadLen);
    let decoded = if t == msg_type::HELLO {
        hello::parse(body).map(|versions| Message::Hello { versions })
    } else if v == Version::V1_0 {
        super::of10::decode_body(t, body)
    } else {
        decode_body(v, t, xid, body)
    };
    decoded
        .map(|body| OfpMsg { xid, body })
        .map_err(|error| DecodeError {
            xid,
            error,
            fatal: false,
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

/// OFPT_* types added in OpenFlow 1.4.
#[allow(missing_docs)]
pub mod msg_type14 {
    pub const ROLE_STATUS: u8 = 30;
    pub const TABLE_STATUS: u8 = 31;
    pub const REQUESTFORWARD: u8 = 32;
    pub const BUNDLE_CONTROL: u8 = 33;
    pub const BUNDLE_ADD_MESSAGE: u8 = 34;
}

/// ONFT13_ROLE_STATUS: OF1.4's ROLE_STATUS as an ONF experimenter message
/// in OpenFlow 1.3 (as Open vSwitch sends it).
const ONFT_ROLE_STATUS: u32 = 1911;

/// The ONF experimenter messages of OpenFlow 1.3 that stand for OF1.4
/// messages (`None`: another ONF message, passed up as an experimenter).
fn decode_onf13(exp_type: u32, xid: u32, data: &[u8]) -> Result<Option<Message>, OfpError> {
    let mut r = Reader::new(data, OfpError::BadLen);
    Ok(Some(match exp_type {
        ONFT_ROLE_STATUS => Message::RoleStatus(controller::parse_role_status(r)?),
        bundle::ONF_ET_BUNDLE_CONTROL => Message::BundleControl(bundle::parse_ctrl(r)?),
        bundle::ONF_ET_BUNDLE_ADD_MESSAGE => {
            Message::BundleAdd(bundle::parse_add(Version::V1_3, xid, r, |m| {
                decode_in(Version::V1_3, m).map_err(|e| e.error)
            })?)
        }
        monitor::ONF_FLOW_MONITOR => Message::FlowMonitorCancel(r.exact(4)?.u32(0..4)),
        monitor::ONFT_FLOW_MONITOR_PAUSED => empty(&r, Message::FlowMonitorPaused)?,
        monitor::ONFT_FLOW_MONITOR_RESUMED => empty(&r, Message::FlowMonitorResumed)?,
        _ => return Ok(None),
    }))
}

/// Decode an OF1.3+ body (HELLO is handled by the caller) of a message with
/// this `xid`.
pub(crate) fn decode_body(v: Version, t: u8, xid: u32, r: Reader<'_>) -> Result<Message, OfpError> {
    use msg_type as T;
    let v14 = v >= Version::V1_4;
    let v15 = v >= Version::V1_5;
    Ok(match t {
        T::ERROR => Message::Error(controller::parse_error(r)?),
        T::ECHO_REQUEST => Message::EchoRequest(r.rest().to_vec()),
        T::ECHO_REPLY => Message::EchoReply(r.rest().to_vec()),
        T::EXPERIMENTER => {
            let (experimenter, exp_type, data) = controller::parse_experimenter(r)?;
            if v == Version::V1_3 && experimenter == super::error::ONF_VENDOR_ID {
                if let Some(m) = decode_onf13(exp_type, xid, &data)? {
                    return Ok(m);
                }
            }
            if experimenter == super::error::NX_VENDOR_ID {
                let r = Reader::new(&data, OfpError::BadLen);
                if let Some(m) = super::of10::parse_nx_modern(exp_type, r)? {
                    return Ok(m);
                }
            }
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
        T::FLOW_REMOVED if v15 => Message::FlowRemoved(flow::parse_removed15(r)?),
        T::FLOW_REMOVED => Message::FlowRemoved(flow::parse_removed(r)?),
        T::PORT_STATUS => Message::PortStatus(port::parse_status(v, r)?),
        T::PACKET_OUT if v15 => Message::PacketOut(packet::parse_out15(r)?),
        T::PACKET_OUT => Message::PacketOut(packet::parse_out(r)?),
        T::FLOW_MOD => Message::FlowMod(flow::parse_mod(v, r)?),
        T::GROUP_MOD if v15 => Message::GroupMod(group::parse_mod15(r)?),
        T::GROUP_MOD => Message::GroupMod(group::parse_mod(r)?),
        T::PORT_MOD => Message::PortMod(port::parse_mod(v, r)?),
        T::TABLE_MOD => {
            let (table_id, config) = switch::parse_table_mod(v, r)?;
            Message::TableMod { table_id, config }
        }
        T::MULTIPART_REQUEST => Message::MultipartRequest(multipart::parse_request(v, r)?),
        T::MULTIPART_REPLY => Message::MultipartReply(multipart::parse_reply(v, r)?),
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
        T::GET_ASYNC_REPLY if v14 => {
            Message::GetAsyncReply(controller::full_config(&controller::parse_async14(r)?)?)
        }
        T::GET_ASYNC_REPLY => Message::GetAsyncReply(controller::parse_async(r)?),
        T::SET_ASYNC if v14 => Message::SetAsyncUpdate(controller::parse_async14(r)?),
        T::SET_ASYNC => Message::SetAsync(controller::parse_async(r)?),
        T::METER_MOD => Message::MeterMod(meter::parse_mod(r)?),
        msg_type14::ROLE_STATUS if v14 => Message::RoleStatus(controller::parse_role_status(r)?),
        msg_type14::BUNDLE_CONTROL if v14 => Message::BundleControl(bundle::parse_ctrl(r)?),
        msg_type14::BUNDLE_ADD_MESSAGE if v14 => {
            Message::BundleAdd(bundle::parse_add(v, xid, r, |m| {
                decode_in(v, m).map_err(|e| e.error)
            })?)
        }
        _ => return Err(OfpError::BadType),
    })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Append one message in OpenFlow 1.3 ([`encode_in`] for
/// [`Version::V1_3`]). On error `out` is left as it was.
pub fn encode(msg: &OfpMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode_in(Version::V1_3, msg, out)
}

/// Encode one OpenFlow 1.3 message into a fresh buffer.
pub fn encode_to_vec(msg: &OfpMsg) -> Result<Vec<u8>, EncodeError> {
    encode_to_vec_in(Version::V1_3, msg)
}

/// Append one message in `version`'s layout. A message the version cannot
/// carry (a meter in OpenFlow 1.0, a Nicira message in 1.3, a FLOW_MOD
/// whose match OF1.0's `ofp_match` cannot express...) is
/// [`EncodeError::Unsupported`]; on any error `out` is left as it was.
pub fn encode_in(version: Version, msg: &OfpMsg, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    put_header_v(out, version, 0, msg.xid);
    let t = if version == Version::V1_0 {
        super::of10::encode_body(&msg.body, out)
    } else if version.is_supported() {
        encode_body(version, &msg.body, out)
    } else {
        Err(EncodeError::Unsupported {
            version,
            what: "this protocol version",
        })
    };
    match t {
        Ok(t) => {
            out[start + 1] = t;
            finish_message(out, start)
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Encode one message in `version` into a fresh buffer.
pub fn encode_to_vec_in(version: Version, msg: &OfpMsg) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::new();
    encode_in(version, msg, &mut v)?;
    Ok(v)
}

/// Our HELLO for a session that may speak any supported version: header
/// version 0x06 (the highest) and a bitmap naming 1.0, 1.3, 1.4 and 1.5.
/// Pair with [`super::framing::negotiate_version`].
pub fn encode_hello_versions(xid: u32, out: &mut Vec<u8>) {
    encode_hello_for(xid, Versions::supported(), out);
}

/// Our HELLO when we allow `ours`: header version the highest of them (1.5
/// if `ours` is empty, which then negotiates nothing) and `ours` as the
/// version bitmap. Pair with [`super::framing::negotiate_among`].
pub fn encode_hello_for(xid: u32, ours: Versions, out: &mut Vec<u8>) {
    let start = out.len();
    put_header_v(
        out,
        ours.highest().unwrap_or(Version::highest()),
        msg_type::HELLO,
        xid,
    );
    hello::emit(out, &[ours.bitmap()]);
    let len = out.len() - start;
    patch_u16(out, start + 2, len as u16);
}

/// An ERROR reply in `version` carrying the first 64 bytes of `offending`
/// (for HELLO_FAILED, the explanatory text), with the error's code in that
/// version ([`OfpError::wire_code`]): vendor errors are written as Open
/// vSwitch writes them (NXET_VENDOR + `nx_vendor_error` in OF1.0/1.1,
/// OFPET_EXPERIMENTER + experimenter id from OF1.2).
pub fn encode_error_in(version: Version, xid: u32, err: OfpError, offending: &[u8]) -> Vec<u8> {
    use super::error::{WireCode, EXPERIMENTER_TYPE, NXET_VENDOR, NXVC_VENDOR_ERROR};
    let keep = offending.len().min(ERROR_DATA_LEN);
    let mut out = Vec::with_capacity(HEADER_LEN + 12 + keep);
    put_header_v(&mut out, version, msg_type::ERROR, xid);
    match err.wire_code(version) {
        WireCode::Standard { err_type, code } => {
            controller::emit_error_head(&mut out, err_type, code)
        }
        WireCode::Vendor {
            vendor,
            exp_type,
            code,
        } if version <= Version::V1_1 => {
            controller::emit_error_head(&mut out, NXET_VENDOR, NXVC_VENDOR_ERROR);
            put_u32(&mut out, vendor);
            put_u16(&mut out, exp_type);
            put_u16(&mut out, code);
        }
        WireCode::Vendor {
            vendor, exp_type, ..
        } => {
            controller::emit_error_head(&mut out, EXPERIMENTER_TYPE, exp_type);
            put_u32(&mut out, vendor);
        }
    }
    out.extend_from_slice(&offending[..keep]);
    let len = out.len();
    patch_u16(&mut out, 2, len as u16);
    out
}

/// Our HELLO: version 0x04 with a version bitmap element naming only 0x04.
pub fn encode_hello(xid: u32, out: &mut Vec<u8>) {
    let start = out.len();
    put_header_v(out, Version::V1_3, msg_type::HELLO, xid);
    hello::emit(out, &our_versions());
    let len = out.len() - start;
    patch_u16(out, start + 2, len as u16);
}

/// An OpenFlow 1.3 ERROR reply ([`encode_error_in`] for 1.3).
pub fn encode_error_reply(xid: u32, err: OfpError, offending: &[u8]) -> Vec<u8> {
    encode_error_in(Version::V1_3, xid, err, offending)
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

fn message_type(v: Version, m: &Message) -> Result<u8, EncodeError> {
    use msg_type as T;
    let unsupported = |what| Err(EncodeError::Unsupported { version: v, what });
    Ok(match m {
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
        Message::SetAsync(_) | Message::SetAsyncUpdate(_) => T::SET_ASYNC,
        Message::MeterMod(_) => T::METER_MOD,
        Message::RoleStatus(_) if v >= Version::V1_4 => msg_type14::ROLE_STATUS,
        Message::BundleControl(_) if v >= Version::V1_4 => msg_type14::BUNDLE_CONTROL,
        Message::BundleAdd(_) if v >= Version::V1_4 => msg_type14::BUNDLE_ADD_MESSAGE,
        Message::FlowMonitorCancel(_)
        | Message::FlowMonitorPaused
        | Message::FlowMonitorResumed
            if v >= Version::V1_4 =>
        {
            return unsupported(
                "flow monitor cancel/paused/resumed messages (OpenFlow 1.4 uses a DELETE \
                 request and PAUSED/RESUMED updates)",
            )
        }
        Message::RoleStatus(_)
        | Message::BundleControl(_)
        | Message::BundleAdd(_)
        | Message::FlowMonitorCancel(_)
        | Message::FlowMonitorPaused
        | Message::FlowMonitorResumed => T::EXPERIMENTER,
        Message::Nicira(NxMsg::SetFlowFormat(_)) => {
            return unsupported("NXT_SET_FLOW_FORMAT (OpenFlow 1.0 only)")
        }
        Message::Nicira(_) => T::EXPERIMENTER,
    })
}

/// Appends an OF1.3+ body; returns the message type.
fn encode_body(v: Version, m: &Message, out: &mut Vec<u8>) -> Result<u8, EncodeError> {
    let t = message_type(v, m)?;
    let v14 = v >= Version::V1_4;
    let v15 = v >= Version::V1_5;
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
        Message::FlowRemoved(f) if v15 => flow::emit_removed15(out, f),
        Message::FlowRemoved(f) => flow::emit_removed(out, f),
        Message::PortStatus(p) => port::emit_status(v, out, p),
        Message::PacketOut(p) if v15 => packet::emit_out15(out, p),
        Message::PacketOut(p) => packet::emit_out(out, p),
        Message::FlowMod(f) => flow::emit_mod(v, out, f),
        Message::GroupMod(g) if v15 => group::emit_mod15(out, g),
        Message::GroupMod(g) => group::emit_mod(out, g),
        Message::PortMod(p) => port::emit_mod(v, out, p),
        Message::TableMod { table_id, config } => switch::emit_table_mod(out, *table_id, *config),
        Message::MultipartRequest(req) => multipart::emit_request(v, out, req)?,
        Message::MultipartReply(rep) => multipart::emit_reply(v, out, rep)?,
        Message::QueueGetConfigRequest { port } | Message::QueueGetConfigReply { port } => {
            switch::emit_queue_config(out, *port)
        }
        Message::RoleRequest(r) | Message::RoleReply(r) => controller::emit_role(out, r),
        Message::GetAsyncReply(a) | Message::SetAsync(a) if v14 => controller::emit_async14(out, a),
        Message::GetAsyncReply(a) | Message::SetAsync(a) => controller::emit_async(out, a),
        Message::SetAsyncUpdate(u) if v14 => controller::emit_async_update14(out, u),
        Message::SetAsyncUpdate(_) => {
            return Err(EncodeError::Unsupported {
                version: v,
                what: "a partial SET_ASYNC (OpenFlow 1.4+)",
            })
        }
        Message::MeterMod(m) => meter::emit_mod(out, m),
        Message::RoleStatus(rs) if v14 => controller::emit_role_status(out, rs),
        Message::RoleStatus(rs) => {
            let mut body = Vec::new();
            controller::emit_role_status(&mut body, rs);
            controller::emit_experimenter(out, super::error::ONF_VENDOR_ID, ONFT_ROLE_STATUS, &body)
        }
        Message::BundleControl(c) if v14 => bundle::emit_ctrl(out, c),
        Message::BundleAdd(a) if v14 => bundle::emit_add(out, a, |m, o| encode_in(v, m, o))?,
        Message::BundleControl(c) => onf_experimenter(out, bundle::ONF_ET_BUNDLE_CONTROL, |o| {
            bundle::emit_ctrl(o, c);
            Ok(())
        })?,
        Message::BundleAdd(a) => onf_experimenter(out, bundle::ONF_ET_BUNDLE_ADD_MESSAGE, |o| {
            bundle::emit_add(o, a, |m, o2| encode_in(v, m, o2))
        })?,
        Message::FlowMonitorCancel(id) => onf_experimenter(out, monitor::ONF_FLOW_MONITOR, |o| {
            o.extend_from_slice(&id.to_be_bytes());
            Ok(())
        })?,
        Message::FlowMonitorPaused => {
            onf_experimenter(out, monitor::ONFT_FLOW_MONITOR_PAUSED, |_| Ok(()))?
        }
        Message::FlowMonitorResumed => {
            onf_experimenter(out, monitor::ONFT_FLOW_MONITOR_RESUMED, |_| Ok(()))?
        }
        Message::Nicira(n) => super::of10::emit_nicira(out, n),
    }
    Ok(t)
}

/// Appends an ONF experimenter header and the body `body` writes.
fn onf_experimenter(
    out: &mut Vec<u8>,
    exp_type: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    controller::emit_experimenter(out, super::error::ONF_VENDOR_ID, exp_type, &[]);
    body(out)
}
