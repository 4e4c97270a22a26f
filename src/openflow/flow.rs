//! Flows on the wire: FLOW_MOD (OF1.3.5 §7.3.4.1), FLOW_REMOVED (§7.4.2), the
//! flow/aggregate statistics request (§7.3.5.2-3), the `ofp_flow_stats` entry
//! and the aggregate reply, in the OF1.3 layouts (also OF1.4's, whose only
//! difference, FLOW_MOD's `importance` in the former padding, we do not keep)
//! and OF1.5's, where counters travel as OXS stats (OF1.5.1 §7.2.4).
//!
//! Each is a fixed part (named ranges below) followed by an `ofp_match` and,
//! where present, stats and instructions.

use super::action::Instruction;
use super::action_codec::{
    decode_instructions, decode_instructions15, encode_instructions, encode_instructions15,
};
use super::error::OfpError;
use super::framing::Version;
use super::match_codec::{decode_match, encode_match, encode_match_oxms};
use super::message::{
    AggregateStats, FlowMod, FlowModCommand, FlowRemoved, FlowStats, FlowStatsRequest,
};
use super::wire::{patch_u16, Field, FieldsMut, Reader};
use crate::types::{Cookie, GroupId, PortNo, TableId};

/// `ofp_flow_mod` after the header, before the match.
mod flow_mod {
    use super::Field;
    pub(super) const COOKIE: Field = 0..8;
    pub(super) const COOKIE_MASK: Field = 8..16;
    pub(super) const TABLE_ID: usize = 16;
    pub(super) const COMMAND: usize = 17;
    pub(super) const IDLE_TIMEOUT: Field = 18..20;
    pub(super) const HARD_TIMEOUT: Field = 20..22;
    pub(super) const PRIORITY: Field = 22..24;
    pub(super) const BUFFER_ID: Field = 24..28;
    pub(super) const OUT_PORT: Field = 28..32;
    pub(super) const OUT_GROUP: Field = 32..36;
    pub(super) const FLAGS: Field = 36..38;
    pub(super) const LEN: usize = 40;
}

/// OFPFC_* to our enum.
pub(crate) fn command_from_wire(n: u8) -> Option<FlowModCommand> {
    Some(match n {
        0 => FlowModCommand::Add,
        1 => FlowModCommand::Modify,
        2 => FlowModCommand::ModifyStrict,
        3 => FlowModCommand::Delete,
        4 => FlowModCommand::DeleteStrict,
        _ => return None,
    })
}

pub(crate) fn command_to_wire(c: FlowModCommand) -> u8 {
    match c {
        FlowModCommand::Add => 0,
        FlowModCommand::Modify => 1,
        FlowModCommand::ModifyStrict => 2,
        FlowModCommand::Delete => 3,
        FlowModCommand::DeleteStrict => 4,
    }
}

pub(crate) fn parse_mod(v: Version, mut r: Reader<'_>) -> Result<FlowMod, OfpError> {
    use flow_mod as F;
    let b = r.fixed(F::LEN)?;
    let command = command_from_wire(b.u8(F::COMMAND)).ok_or(OfpError::BadFlowModCommand)?;
    let match_ = decode_match(&mut r)?;
    let insts = Reader::new(r.take_rest(), OfpError::BadInstructionLen);
    let instructions = if v >= Version::V1_5 {
        decode_instructions15(insts)?
    } else {
        decode_instructions(insts)?
    };
    Ok(FlowMod {
        cookie: Cookie(b.u64(F::COOKIE)),
        cookie_mask: b.u64(F::COOKIE_MASK),
        table_id: TableId(b.u8(F::TABLE_ID)),
        command,
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        priority: b.u16(F::PRIORITY),
        buffer_id: b.u32(F::BUFFER_ID),
        out_port: PortNo(b.u32(F::OUT_PORT)),
        out_group: GroupId(b.u32(F::OUT_GROUP)),
        flags: b.u16(F::FLAGS),
        match_,
        instructions,
    })
}

pub(crate) fn emit_mod(v: Version, out: &mut Vec<u8>, f: &FlowMod) {
    use flow_mod as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u64(F::COOKIE, f.cookie.0)
        .set_u64(F::COOKIE_MASK, f.cookie_mask)
        .set_u8(F::TABLE_ID, f.table_id.0)
        .set_u8(F::COMMAND, command_to_wire(f.command))
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
        .set_u16(F::PRIORITY, f.priority)
        .set_u32(F::BUFFER_ID, f.buffer_id)
        .set_u32(F::OUT_PORT, f.out_port.0)
        .set_u32(F::OUT_GROUP, f.out_group.0)
        .set_u16(F::FLAGS, f.flags);
    b.emit(out);
    encode_match(out, &f.match_);
    if v >= Version::V1_5 {
        encode_instructions15(out, &f.instructions);
    } else {
        encode_instructions(out, &f.instructions);
    }
}

/// `ofp_flow_removed` after the header, before the match.
mod removed {
    use super::Field;
    pub(super) const COOKIE: Field = 0..8;
    pub(super) const PRIORITY: Field = 8..10;
    pub(super) const REASON: usize = 10;
    pub(super) const TABLE_ID: usize = 11;
    pub(super) const DURATION_SEC: Field = 12..16;
    pub(super) const DURATION_NSEC: Field = 16..20;
    pub(super) const IDLE_TIMEOUT: Field = 20..22;
    pub(super) const HARD_TIMEOUT: Field = 22..24;
    pub(super) const PACKET_COUNT: Field = 24..32;
    pub(super) const BYTE_COUNT: Field = 32..40;
    pub(super) const LEN: usize = 40;
}

pub(crate) fn parse_removed(mut r: Reader<'_>) -> Result<FlowRemoved, OfpError> {
    use removed as F;
    let b = r.fixed(F::LEN)?;
    let match_ = decode_match(&mut r)?;
    if !r.is_empty() {
        return Err(OfpError::BadLen);
    }
    Ok(FlowRemoved {
        cookie: Cookie(b.u64(F::COOKIE)),
        priority: b.u16(F::PRIORITY),
        reason: b.u8(F::REASON),
        table_id: TableId(b.u8(F::TABLE_ID)),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        packet_count: b.u64(F::PACKET_COUNT),
        byte_count: b.u64(F::BYTE_COUNT),
        match_,
    })
}

pub(crate) fn emit_removed(out: &mut Vec<u8>, f: &FlowRemoved) {
    use removed as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u64(F::COOKIE, f.cookie.0)
        .set_u16(F::PRIORITY, f.priority)
        .set_u8(F::REASON, f.reason)
        .set_u8(F::TABLE_ID, f.table_id.0)
        .set_u32(F::DURATION_SEC, f.duration_sec)
        .set_u32(F::DURATION_NSEC, f.duration_nsec)
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
        .set_u64(F::PACKET_COUNT, f.packet_count)
        .set_u64(F::BYTE_COUNT, f.byte_count);
    b.emit(out);
    encode_match(out, &f.match_);
}

/// `ofp_flow_stats_request` (and aggregate) body before the match.
mod stats_request {
    use super::Field;
    pub(super) const TABLE_ID: usize = 0;
    pub(super) const OUT_PORT: Field = 4..8;
    pub(super) const OUT_GROUP: Field = 8..12;
    pub(super) const COOKIE: Field = 16..24;
    pub(super) const COOKIE_MASK: Field = 24..32;
    pub(super) const LEN: usize = 32;
}

pub(crate) fn parse_stats_request(mut r: Reader<'_>) -> Result<FlowStatsRequest, OfpError> {
    use stats_request as F;
    let b = r.fixed(F::LEN)?;
    let match_ = decode_match(&mut r)?;
    if !r.is_empty() {
        return Err(OfpError::BadLen);
    }
    Ok(FlowStatsRequest {
        table_id: TableId(b.u8(F::TABLE_ID)),
        out_port: PortNo(b.u32(F::OUT_PORT)),
        out_group: GroupId(b.u32(F::OUT_GROUP)),
        cookie: Cookie(b.u64(F::COOKIE)),
        cookie_mask: b.u64(F::COOKIE_MASK),
        match_,
    })
}

pub(crate) fn emit_stats_request(out: &mut Vec<u8>, f: &FlowStatsRequest) {
    use stats_request as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TABLE_ID, f.table_id.0)
        .set_u32(F::OUT_PORT, f.out_port.0)
        .set_u32(F::OUT_GROUP, f.out_group.0)
        .set_u64(F::COOKIE, f.cookie.0)
        .set_u64(F::COOKIE_MASK, f.cookie_mask);
    b.emit(out);
    encode_match(out, &f.match_);
}

/// `ofp_flow_stats` before the match.
mod stats {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const TABLE_ID: usize = 2;
    pub(super) const DURATION_SEC: Field = 4..8;
    pub(super) const DURATION_NSEC: Field = 8..12;
    pub(super) const PRIORITY: Field = 12..14;
    pub(super) const IDLE_TIMEOUT: Field = 14..16;
    pub(super) const HARD_TIMEOUT: Field = 16..18;
    pub(super) const FLAGS: Field = 18..20;
    pub(super) const COOKIE: Field = 24..32;
    pub(super) const PACKET_COUNT: Field = 32..40;
    pub(super) const BYTE_COUNT: Field = 40..48;
    pub(super) const LEN: usize = 48;
    /// The smallest entry: the fixed part and an empty match.
    pub(super) const MIN_LEN: usize = 56;
}

/// Offset of the 16-bit length in an `ofp_flow_stats`, and its minimum.
pub(crate) const STATS_LENGTH_AT: usize = stats::LENGTH.start;
pub(crate) const STATS_MIN_LEN: usize = stats::MIN_LEN;

/// One entry spanning all of `e`.
pub(crate) fn parse_stats(mut e: Reader<'_>) -> Result<FlowStats, OfpError> {
    use stats as F;
    let b = e.fixed(F::LEN)?;
    let match_ = decode_match(&mut e)?;
    let instructions =
        decode_instructions(Reader::new(e.take_rest(), OfpError::BadInstructionLen))?;
    Ok(FlowStats {
        table_id: TableId(b.u8(F::TABLE_ID)),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        priority: b.u16(F::PRIORITY),
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        flags: b.u16(F::FLAGS),
        cookie: Cookie(b.u64(F::COOKIE)),
        packet_count: b.u64(F::PACKET_COUNT),
        byte_count: b.u64(F::BYTE_COUNT),
        match_,
        instructions,
    })
}

/// One `ofp_flow_stats` entry from a borrowed rule; returns its length (its
/// length field is only right when that fits 16 bits, which callers that can
/// overflow check).
pub(crate) fn emit_stats_ref(out: &mut Vec<u8>, f: &FlowStatsRef<'_>) -> usize {
    use stats as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TABLE_ID, f.table_id.0)
        .set_u32(F::DURATION_SEC, f.duration_sec)
        .set_u32(F::DURATION_NSEC, f.duration_nsec)
        .set_u16(F::PRIORITY, f.priority)
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
        .set_u16(F::FLAGS, f.flags)
        .set_u64(F::COOKIE, f.cookie.0)
        .set_u64(F::PACKET_COUNT, f.packet_count)
        .set_u64(F::BYTE_COUNT, f.byte_count);
    b.emit(out);
    encode_match_oxms(out, f.match_oxm);
    encode_instructions(out, f.instructions);
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
    len
}

/// The borrowed view of an owned entry (the match encoded to TLVs first).
pub(crate) fn emit_stats(out: &mut Vec<u8>, f: &FlowStats) {
    let oxms = super::encode_oxms(&f.match_);
    emit_stats_ref(out, &FlowStatsRef::of(f, &oxms));
}

/// `ofp_aggregate_stats_reply`.
mod aggregate {
    use super::Field;
    pub(super) const PACKET_COUNT: Field = 0..8;
    pub(super) const BYTE_COUNT: Field = 8..16;
    pub(super) const FLOW_COUNT: Field = 16..20;
    pub(super) const LEN: usize = 24;
}

pub(crate) fn parse_aggregate(mut r: Reader<'_>) -> Result<AggregateStats, OfpError> {
    use aggregate as F;
    let b = r.exact(F::LEN)?;
    Ok(AggregateStats {
        packet_count: b.u64(F::PACKET_COUNT),
        byte_count: b.u64(F::BYTE_COUNT),
        flow_count: b.u32(F::FLOW_COUNT),
    })
}

pub(crate) fn emit_aggregate(out: &mut Vec<u8>, a: &AggregateStats) {
    use aggregate as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u64(F::PACKET_COUNT, a.packet_count)
        .set_u64(F::BYTE_COUNT, a.byte_count)
        .set_u32(F::FLOW_COUNT, a.flow_count);
    b.emit(out);
}

/// OXS statistics (OF1.5.1 §7.2.4): `ofp_stats` (reserved, length) then
/// `(class 0x8002, field, length)` TLVs, padded to 8 bytes. Open vSwitch
/// `ox-stat.c` reads and writes the same fields.
mod oxs {
    use super::super::error::OfpError;
    use super::super::wire::{pad8, pad_to_8, patch_u16, put_u32, put_u64, Reader};

    /// OFPXSC_OPENFLOW_BASIC.
    const CLASS: u32 = 0x8002;
    /// OFPXST_OFB_* fields we read or write.
    pub(super) const DURATION: u8 = 0;
    pub(super) const IDLE_TIME: u8 = 1;
    pub(super) const FLOW_COUNT: u8 = 3;
    pub(super) const PACKET_COUNT: u8 = 4;
    pub(super) const BYTE_COUNT: u8 = 5;
    /// `ofp_stats` header: reserved (2), length (2).
    const HEADER_LEN: usize = 4;
    const LENGTH_AT: usize = 2;

    /// Counters found in an OXS list (absent ones stay zero, as a flow whose
    /// switch does not report them would show).
    #[derive(Default)]
    pub(super) struct Stats {
        pub(super) duration: (u32, u32),
        pub(super) packet_count: u64,
        pub(super) byte_count: u64,
        pub(super) flow_count: u32,
    }

    fn header(field: u8, len: usize) -> u32 {
        (CLASS << 16) | ((field as u32) << 9) | len as u32
    }

    /// A 64-bit stat.
    pub(super) fn put64(out: &mut Vec<u8>, field: u8, v: u64) {
        put_u32(out, header(field, 8));
        put_u64(out, v);
    }

    /// A 32-bit stat.
    pub(super) fn put32(out: &mut Vec<u8>, field: u8, v: u32) {
        put_u32(out, header(field, 4));
        put_u32(out, v);
    }

    /// Appends an `ofp_stats` whose TLVs `body` writes.
    pub(super) fn emit(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
        let start = out.len();
        out.extend_from_slice(&[0; HEADER_LEN]);
        body(out);
        let len = out.len() - start;
        patch_u16(out, start + LENGTH_AT, len as u16);
        pad_to_8(out, start);
    }

    /// Parses an `ofp_stats` (and its padding) from `r`; unknown stats are
    /// skipped, malformed ones are BAD_MATCH/BAD_LEN as in Open vSwitch.
    pub(super) fn parse(r: &mut Reader<'_>) -> Result<Stats, OfpError> {
        let bad = OfpError::BadMatchLen;
        let len = r.peek_u16(LENGTH_AT).map_err(|_| bad)? as usize;
        if len < HEADER_LEN || pad8(len) > r.remaining() {
            return Err(bad);
        }
        let mut whole = r.sub(pad8(len), bad)?;
        whole.skip(HEADER_LEN)?;
        let mut e = whole.sub(len - HEADER_LEN, bad)?;
        let mut s = Stats::default();
        while !e.is_empty() {
            let h = e.u32().map_err(|_| bad)?;
            let n = (h & 0xff) as usize;
            let payload = e.bytes(n).map_err(|_| bad)?;
            let v = payload.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
            if h >> 16 != CLASS {
                continue;
            }
            match (((h >> 9) & 0x7f) as u8, n) {
                (DURATION, 8) => s.duration = ((v >> 32) as u32, v as u32),
                (PACKET_COUNT, 8) => s.packet_count = v,
                (BYTE_COUNT, 8) => s.byte_count = v,
                (FLOW_COUNT, 4) => s.flow_count = v as u32,
                (DURATION | IDLE_TIME | PACKET_COUNT | BYTE_COUNT | FLOW_COUNT, _) => {
                    return Err(bad)
                }
                _ => {}
            }
        }
        Ok(s)
    }
}

/// `ofp15_flow_desc` before its match (OFPMP_FLOW_DESC reply entry).
mod desc15 {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const TABLE_ID: usize = 4;
    pub(super) const PRIORITY: Field = 6..8;
    pub(super) const IDLE_TIMEOUT: Field = 8..10;
    pub(super) const HARD_TIMEOUT: Field = 10..12;
    pub(super) const FLAGS: Field = 12..14;
    pub(super) const COOKIE: Field = 16..24;
    pub(super) const LEN: usize = 24;
}

/// Smallest OF1.5 flow entry: fixed part, empty match, empty stats.
pub(crate) const DESC15_MIN_LEN: usize = desc15::LEN + 8 + 8;

/// One OF1.5 entry spanning all of `e`.
pub(crate) fn parse_desc15(mut e: Reader<'_>) -> Result<FlowStats, OfpError> {
    use desc15 as F;
    let b = e.fixed(F::LEN)?;
    let match_ = decode_match(&mut e)?;
    let st = oxs::parse(&mut e)?;
    let instructions =
        decode_instructions15(Reader::new(e.take_rest(), OfpError::BadInstructionLen))?;
    Ok(FlowStats {
        table_id: TableId(b.u8(F::TABLE_ID)),
        duration_sec: st.duration.0,
        duration_nsec: st.duration.1,
        priority: b.u16(F::PRIORITY),
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        flags: b.u16(F::FLAGS),
        cookie: Cookie(b.u64(F::COOKIE)),
        packet_count: st.packet_count,
        byte_count: st.byte_count,
        match_,
        instructions,
    })
}

/// One OF1.5 entry from a borrowed rule; returns its length (see
/// [`emit_stats_ref`]).
pub(crate) fn emit_desc15_ref(out: &mut Vec<u8>, f: &FlowStatsRef<'_>) -> usize {
    use desc15 as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TABLE_ID, f.table_id.0)
        .set_u16(F::PRIORITY, f.priority)
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
        .set_u16(F::FLAGS, f.flags)
        .set_u64(F::COOKIE, f.cookie.0);
    b.emit(out);
    encode_match_oxms(out, f.match_oxm);
    oxs::emit(out, |o| {
        let d = ((f.duration_sec as u64) << 32) | f.duration_nsec as u64;
        oxs::put64(o, oxs::DURATION, d);
        oxs::put64(o, oxs::PACKET_COUNT, f.packet_count);
        oxs::put64(o, oxs::BYTE_COUNT, f.byte_count);
    });
    encode_instructions15(out, f.instructions);
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
    len
}

pub(crate) fn emit_desc15(out: &mut Vec<u8>, f: &FlowStats) {
    let oxms = super::encode_oxms(&f.match_);
    emit_desc15_ref(out, &FlowStatsRef::of(f, &oxms));
}

/// OF1.5 aggregate reply: only OXS stats.
pub(crate) fn parse_aggregate15(mut r: Reader<'_>) -> Result<AggregateStats, OfpError> {
    let st = oxs::parse(&mut r)?;
    if !r.is_empty() {
        return Err(OfpError::BadLen);
    }
    Ok(AggregateStats {
        packet_count: st.packet_count,
        byte_count: st.byte_count,
        flow_count: st.flow_count,
    })
}

pub(crate) fn emit_aggregate15(out: &mut Vec<u8>, a: &AggregateStats) {
    oxs::emit(out, |o| {
        oxs::put64(o, oxs::PACKET_COUNT, a.packet_count);
        oxs::put64(o, oxs::BYTE_COUNT, a.byte_count);
        oxs::put32(o, oxs::FLOW_COUNT, a.flow_count);
    });
}

/// `ofp15_flow_removed` before its match.
mod removed15 {
    use super::Field;
    pub(super) const TABLE_ID: usize = 0;
    pub(super) const REASON: usize = 1;
    pub(super) const PRIORITY: Field = 2..4;
    pub(super) const IDLE_TIMEOUT: Field = 4..6;
    pub(super) const HARD_TIMEOUT: Field = 6..8;
    pub(super) const COOKIE: Field = 8..16;
    pub(super) const LEN: usize = 16;
}

pub(crate) fn parse_removed15(mut r: Reader<'_>) -> Result<FlowRemoved, OfpError> {
    use removed15 as F;
    let b = r.fixed(F::LEN)?;
    let match_ = decode_match(&mut r)?;
    let st = oxs::parse(&mut r)?;
    if !r.is_empty() {
        return Err(OfpError::BadLen);
    }
    Ok(FlowRemoved {
        cookie: Cookie(b.u64(F::COOKIE)),
        priority: b.u16(F::PRIORITY),
        reason: b.u8(F::REASON),
        table_id: TableId(b.u8(F::TABLE_ID)),
        duration_sec: st.duration.0,
        duration_nsec: st.duration.1,
        idle_timeout: b.u16(F::IDLE_TIMEOUT),
        hard_timeout: b.u16(F::HARD_TIMEOUT),
        packet_count: st.packet_count,
        byte_count: st.byte_count,
        match_,
    })
}

pub(crate) fn emit_removed15(out: &mut Vec<u8>, f: &FlowRemoved) {
    use removed15 as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TABLE_ID, f.table_id.0)
        .set_u8(F::REASON, f.reason)
        .set_u16(F::PRIORITY, f.priority)
        .set_u16(F::IDLE_TIMEOUT, f.idle_timeout)
        .set_u16(F::HARD_TIMEOUT, f.hard_timeout)
        .set_u64(F::COOKIE, f.cookie.0);
    b.emit(out);
    encode_match(out, &f.match_);
    oxs::emit(out, |o| {
        let d = ((f.duration_sec as u64) << 32) | f.duration_nsec as u64;
        oxs::put64(o, oxs::DURATION, d);
        oxs::put64(o, oxs::PACKET_COUNT, f.packet_count);
        oxs::put64(o, oxs::BYTE_COUNT, f.byte_count);
    });
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

#[cfg(test)]
mod tests {
    use super::super::action::{Action, Instruction};
    use super::super::oxm::{Match, OxmField, OxmId};
    use super::*;

    fn rd(b: &[u8]) -> Reader<'_> {
        Reader::new(b, OfpError::BadLen)
    }

    fn m() -> Match {
        Match {
            fields: vec![
                OxmField::in_port(PortNo(3)),
                OxmField::exact(OxmId::EthType, 0x800),
            ],
        }
    }

    #[test]
    fn flow_structures_round_trip() {
        let fm = FlowMod {
            cookie: Cookie(1),
            cookie_mask: 2,
            table_id: TableId(3),
            command: FlowModCommand::ModifyStrict,
            idle_timeout: 4,
            hard_timeout: 5,
            priority: 6,
            buffer_id: 7,
            out_port: PortNo(8),
            out_group: GroupId(9),
            flags: 1,
            match_: m(),
            instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                port: PortNo(2),
                max_len: 0,
            }])],
        };
        for v in [Version::V1_3, Version::V1_5] {
            let mut out = Vec::new();
            emit_mod(v, &mut out, &fm);
            assert_eq!(parse_mod(v, rd(&out)).unwrap(), fm);
        }

        let fr = FlowRemoved {
            cookie: Cookie(1),
            priority: 2,
            reason: 3,
            table_id: TableId(4),
            duration_sec: 5,
            duration_nsec: 6,
            idle_timeout: 7,
            hard_timeout: 8,
            packet_count: 9,
            byte_count: 10,
            match_: m(),
        };
        let mut out = Vec::new();
        emit_removed(&mut out, &fr);
        assert_eq!(parse_removed(rd(&out)).unwrap(), fr);
        out.push(0);
        assert_eq!(parse_removed(rd(&out)), Err(OfpError::BadLen));

        let req = FlowStatsRequest {
            table_id: TableId::ALL,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            cookie: Cookie(3),
            cookie_mask: 4,
            match_: m(),
        };
        let mut out = Vec::new();
        emit_stats_request(&mut out, &req);
        assert_eq!(parse_stats_request(rd(&out)).unwrap(), req);

        let fs = FlowStats {
            table_id: TableId(1),
            duration_sec: 2,
            duration_nsec: 3,
            priority: 4,
            idle_timeout: 5,
            hard_timeout: 6,
            flags: 7,
            cookie: Cookie(8),
            packet_count: 9,
            byte_count: 10,
            match_: m(),
            instructions: fm.instructions.clone(),
        };
        let mut out = Vec::new();
        emit_stats(&mut out, &fs);
        assert_eq!(
            u16::from_be_bytes([out[0], out[1]]) as usize,
            out.len(),
            "length field"
        );
        assert_eq!(parse_stats(rd(&out)).unwrap(), fs);

        let mut out = Vec::new();
        emit_desc15(&mut out, &fs);
        assert_eq!(u16::from_be_bytes([out[0], out[1]]) as usize, out.len());
        assert_eq!(parse_desc15(rd(&out)).unwrap(), fs);

        let mut out = Vec::new();
        emit_removed15(&mut out, &fr);
        assert_eq!(parse_removed15(rd(&out)).unwrap(), fr);

        let a = AggregateStats {
            packet_count: 1,
            byte_count: 2,
            flow_count: 3,
        };
        let mut out = Vec::new();
        emit_aggregate(&mut out, &a);
        assert_eq!(parse_aggregate(rd(&out)).unwrap(), a);
        let mut out = Vec::new();
        emit_aggregate15(&mut out, &a);
        assert_eq!(parse_aggregate15(rd(&out)).unwrap(), a);
    }
}
