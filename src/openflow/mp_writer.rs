//! Multipart replies longer than one message: [`encode_multipart_reply_split`]
//! for owned reply bodies and [`MultipartWriter`] for flow dumps encoded
//! straight from the switch's rules ([`FlowStatsRef`]).
//!
//! Every message is at most 65535 bytes and all but the last carry
//! OFPMPF_REPLY_MORE (OF1.3.5 §7.3.5). Entries are encoded once, in place; an
//! entry that overflows the current message moves (only its own bytes) to the
//! next, so the cost is linear in the reply.

use super::action::Instruction;
use super::codec::{encode_to_vec, msg_type, put_header, EncodeError, MAX_MSG_LEN};
use super::message::{FlowStats, Message, MpReplyBody, MultipartReply, OfpMsg, MPF_MORE};
use super::multipart::{emit_header, header, reply_type, MP_HEADER_LEN};
use super::wire::patch_u16;
use super::{flow, group, meter, port, table};
use crate::types::{Cookie, TableId};

/// Starts a multipart reply message of type `t` in a fresh buffer.
fn start_reply(xid: u32, t: u16, capacity: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(capacity);
    put_header(&mut m, msg_type::MULTIPART_REPLY, xid);
    emit_header(&mut m, t, 0);
    m
}

/// Sets the length and REPLY_MORE flag of a finished multipart reply message.
fn seal_reply(m: &mut [u8], more: bool) {
    let len = m.len();
    patch_u16(m, 2, len as u16);
    let flags_at = super::framing::HEADER_LEN + header::FLAGS.start;
    patch_u16(m, flags_at, if more { MPF_MORE } else { 0 });
}

/// Encodes entries into as many messages as needed.
fn split_entries<T>(
    xid: u32,
    t: u16,
    items: &[T],
    enc: impl Fn(&mut Vec<u8>, &T),
    msgs: &mut Vec<Vec<u8>>,
) -> Result<(), EncodeError> {
    let mut cur = start_reply(xid, t, 1024);
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
        let mut next = start_reply(xid, t, MAX_MSG_LEN);
        next.extend_from_slice(&cur[before..]);
        cur.truncate(before);
        seal_reply(&mut cur, true);
        msgs.push(std::mem::replace(&mut cur, next));
    }
    seal_reply(&mut cur, false);
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
    let t = reply_type(body);
    match body {
        MpReplyBody::Flow(v) => split_entries(xid, t, v, flow::emit_stats, &mut msgs)?,
        MpReplyBody::Table(v) => split_entries(xid, t, v, table::emit_stats, &mut msgs)?,
        MpReplyBody::PortStats(v) => split_entries(xid, t, v, port::emit_stats, &mut msgs)?,
        MpReplyBody::Group(v) => split_entries(xid, t, v, group::emit_stats, &mut msgs)?,
        MpReplyBody::GroupDesc(v) => split_entries(xid, t, v, group::emit_desc, &mut msgs)?,
        MpReplyBody::Meter(v) => split_entries(xid, t, v, meter::emit_stats, &mut msgs)?,
        MpReplyBody::MeterConfig(v) => split_entries(xid, t, v, meter::emit_config, &mut msgs)?,
        MpReplyBody::TableFeatures(v) => split_entries(xid, t, v, table::emit_features, &mut msgs)?,
        MpReplyBody::PortDesc(v) => split_entries(xid, t, v, port::emit_desc, &mut msgs)?,
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

impl<'a> FlowStatsRef<'a> {
    /// The borrowed view of an owned entry whose match is encoded as `oxms`.
    pub(crate) fn of(f: &'a FlowStats, oxms: &'a [u8]) -> FlowStatsRef<'a> {
        FlowStatsRef {
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
            match_oxm: oxms,
            instructions: &f.instructions,
        }
    }
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
        let t = super::multipart::mp_type::FLOW;
        MultipartWriter {
            xid,
            mp_type: t,
            cur: start_reply(xid, t, MAX_MSG_LEN),
            ready: Vec::new(),
        }
    }

    /// Appends one flow-stats entry.
    pub fn push_flow_stats(&mut self, f: &FlowStatsRef<'_>) -> Result<(), EncodeError> {
        let before = self.cur.len();
        let entry_len = flow::emit_stats_ref(&mut self.cur, f);
        if entry_len > u16::MAX as usize || MP_HEADER_LEN + entry_len > MAX_MSG_LEN {
            self.cur.truncate(before);
            return Err(EncodeError::TooLong(MP_HEADER_LEN + entry_len));
        }
        if self.cur.len() > MAX_MSG_LEN {
            let mut next = start_reply(self.xid, self.mp_type, MAX_MSG_LEN);
            next.extend_from_slice(&self.cur[before..]);
            self.cur.truncate(before);
            seal_reply(&mut self.cur, true);
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
        seal_reply(&mut self.cur, false);
        self.ready.push(self.cur);
        self.ready
    }
}
