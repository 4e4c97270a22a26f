//! Multipart replies longer than one message: [`encode_multipart_reply_split`]
//! for owned reply bodies and [`MultipartWriter`] for flow dumps encoded
//! straight from the switch's rules ([`FlowStatsRef`]).
//!
//! Every message is at most 65535 bytes and all but the last carry
//! OFPMPF_REPLY_MORE (OF1.3.5 §7.3.5). Entries are encoded once, in place; an
//! entry that overflows the current message moves (only its own bytes) to the
//! next, so the cost is linear in the reply.

use super::flow::{self, FlowStatsRef};
use super::framing::Version;
use super::framing::{msg_type, put_header_v, EncodeError, MAX_MSG_LEN};
use super::message::{MpReplyBody, MPF_MORE};
use super::multipart::{
    emit_entry, emit_header, emit_reply_prefix, emit_single_body, header, n_entries, reply_type_in,
    MP_HEADER_LEN,
};
use super::wire::patch_u16;

/// Starts a multipart reply message of type `t` in a fresh buffer, with
/// `prefix` (an experimenter/vendor stats header) after the multipart header.
fn start_reply(v: Version, xid: u32, t: u16, prefix: &[u8], capacity: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(capacity);
    if v == Version::V1_0 {
        put_header_v(&mut m, v, super::of10_fields::msg_type::STATS_REPLY, xid);
        super::of10::emit_stats_header(&mut m, t, 0);
    } else {
        put_header_v(&mut m, v, msg_type::MULTIPART_REPLY, xid);
        emit_header(&mut m, t, 0);
    }
    m.extend_from_slice(prefix);
    m
}

/// Sets the length and REPLY_MORE flag of a finished multipart reply message
/// (the flags are at the same offset in OF1.0's stats header).
fn seal_reply(m: &mut [u8], more: bool) {
    let len = m.len();
    patch_u16(m, 2, len as u16);
    let flags_at = super::framing::HEADER_LEN + header::FLAGS.start;
    patch_u16(m, flags_at, if more { MPF_MORE } else { 0 });
}

/// Header length of a reply in `v` (OF1.0's stats header is 4 bytes shorter).
fn header_len(v: Version) -> usize {
    if v == Version::V1_0 {
        super::of10_fields::STATS_HEADER_LEN
    } else {
        MP_HEADER_LEN
    }
}

/// Moves the entry written at `before..` to a new message if the current one
/// went over the limit, sealing the full one into `ready`.
struct Split<'a> {
    v: Version,
    xid: u32,
    t: u16,
    prefix: &'a [u8],
}

fn spill(
    s: &Split<'_>,
    cur: &mut Vec<u8>,
    before: usize,
    ready: &mut Vec<Vec<u8>>,
) -> Result<(), EncodeError> {
    if cur.len() <= MAX_MSG_LEN {
        return Ok(());
    }
    let entry_len = cur.len() - before;
    let hl = header_len(s.v) + s.prefix.len();
    if hl + entry_len > MAX_MSG_LEN {
        cur.truncate(before);
        return Err(EncodeError::TooLong(hl + entry_len));
    }
    let mut next = start_reply(s.v, s.xid, s.t, s.prefix, MAX_MSG_LEN);
    next.extend_from_slice(&cur[before..]);
    cur.truncate(before);
    seal_reply(cur, true);
    ready.push(std::mem::replace(cur, next));
    Ok(())
}

/// Encode an OpenFlow 1.3 multipart reply as one or more messages appended to
/// `out`, setting OFPMPF_REPLY_MORE on all but the last, so that replies of
/// any size (flow stats of 100k flows, table features of every table) can be
/// sent. Nothing is appended on error (a single entry larger than a message
/// can hold).
pub fn encode_multipart_reply_split(
    xid: u32,
    body: &MpReplyBody,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), EncodeError> {
    encode_multipart_reply_split_in(Version::V1_3, xid, body, out)
}

/// [`encode_multipart_reply_split`] in `version`'s layout (OF1.0: STATS_REPLY
/// with OFPSF_REPLY_MORE; a body OF1.0 has no stats type for is
/// [`EncodeError::Unsupported`]).
pub fn encode_multipart_reply_split_in(
    version: Version,
    xid: u32,
    body: &MpReplyBody,
    out: &mut Vec<Vec<u8>>,
) -> Result<(), EncodeError> {
    let v = version;
    let mut prefix = Vec::new();
    let t = if v == Version::V1_0 {
        super::of10::emit_stats_prefix(&mut prefix, body);
        super::of10::stats_reply_type(body)?
    } else {
        emit_reply_prefix(v, &mut prefix, body);
        reply_type_in(v, body)
    };
    let s = Split {
        v,
        xid,
        t,
        prefix: &prefix,
    };
    let mut msgs = Vec::new();
    let mut cur = start_reply(v, xid, t, &prefix, 1024);
    if v == Version::V1_0 {
        super::of10::emit_single_stats_body(&mut cur, body)?;
    } else {
        emit_single_body(&mut cur, body);
    }
    for i in 0..n_entries(body) {
        let before = cur.len();
        if v == Version::V1_0 {
            super::of10::emit_stats_entry(&mut cur, body, i)?;
        } else {
            emit_entry(v, &mut cur, body, i)?;
        }
        spill(&s, &mut cur, before, &mut msgs)?;
    }
    if cur.len() > MAX_MSG_LEN {
        return Err(EncodeError::TooLong(cur.len()));
    }
    seal_reply(&mut cur, false);
    msgs.push(cur);
    out.append(&mut msgs);
    Ok(())
}

/// Builds a multipart reply of any length one entry at a time: finished
/// messages (at most 65535 bytes, OFPMPF_REPLY_MORE set) can be taken and sent
/// while later entries are still being encoded.
#[derive(Debug)]
pub struct MultipartWriter {
    version: Version,
    xid: u32,
    mp_type: u16,
    cur: Vec<u8>,
    ready: Vec<Vec<u8>>,
}

impl MultipartWriter {
    /// A writer for an OpenFlow 1.3 OFPMP_FLOW reply.
    pub fn flow_stats(xid: u32) -> MultipartWriter {
        Self::flow_stats_in(Version::V1_3, xid)
    }

    /// A writer for a flow-stats reply in `version` (OF1.0 OFPST_FLOW with
    /// `ofp_match`; OF1.5 OFPMP_FLOW_DESC with OXS stats).
    pub fn flow_stats_in(version: Version, xid: u32) -> MultipartWriter {
        let t = super::multipart::mp_type::FLOW;
        MultipartWriter {
            version,
            xid,
            mp_type: t,
            cur: start_reply(version, xid, t, &[], MAX_MSG_LEN),
            ready: Vec::new(),
        }
    }

    /// Appends one flow-stats entry. An entry that cannot be encoded (too
    /// long, or in OF1.0 a match or instruction OF1.0 cannot express) is
    /// left out with an error; the writer stays usable.
    pub fn push_flow_stats(&mut self, f: &FlowStatsRef<'_>) -> Result<(), EncodeError> {
        let before = self.cur.len();
        let entry_len = match self.version {
            Version::V1_0 => match super::of10::emit_flow_stats_ref(&mut self.cur, f) {
                Ok(n) => n,
                Err(e) => {
                    self.cur.truncate(before);
                    return Err(e);
                }
            },
            v if v >= Version::V1_5 => flow::emit_desc15_ref(&mut self.cur, f),
            _ => flow::emit_stats_ref(&mut self.cur, f),
        };
        let hl = header_len(self.version);
        if entry_len > u16::MAX as usize || hl + entry_len > MAX_MSG_LEN {
            self.cur.truncate(before);
            return Err(EncodeError::TooLong(hl + entry_len));
        }
        let mut ready = std::mem::take(&mut self.ready);
        let s = Split {
            v: self.version,
            xid: self.xid,
            t: self.mp_type,
            prefix: &[],
        };
        let r = spill(&s, &mut self.cur, before, &mut ready);
        self.ready = ready;
        r
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
