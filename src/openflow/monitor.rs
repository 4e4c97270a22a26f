//! Flow monitors on the wire, in their three forms:
//!
//! - OpenFlow 1.4+ OFPMP_FLOW_MONITOR (OF1.4.1 §7.3.5.19): requests
//!   `ofp14_flow_monitor_request` + `ofp_match`; replies and updates
//!   `ofp_flow_update_full` / `_abbrev` / `_paused` (events INITIAL, ADDED,
//!   REMOVED, MODIFIED, ABBREV, PAUSED, RESUMED);
//! - OpenFlow 1.3: the ONF extension ONFST_FLOW_MONITOR (experimenter
//!   multipart 1870, `onf_flow_monitor_request` + `ofp_match`; updates in
//!   Nicira's `nx_flow_update_full` layout with an OXM match and
//!   instructions), with ONFT_FLOW_MONITOR_CANCEL/PAUSED/RESUMED
//!   (1870/1871/1872) as experimenter messages — what `ovs-ofctl -O
//!   OpenFlow13 monitor br0 watch:` sends;
//! - OpenFlow 1.0: Nicira NXST_FLOW_MONITOR (vendor stats 2,
//!   `nx_flow_monitor_request` + an NXM match; updates with an NXM match and
//!   OF1.0 actions), NXT_FLOW_MONITOR_CANCEL/PAUSED/RESUMED (21/22/23).
//!
//! The model ([`FlowMonitorRequest`], [`FlowUpdate`]) uses OF1.4's flag bits,
//! which Nicira/ONF share up to NO_ABBREV ("own"). NXM matches are read for
//! the fields OF1.0 can express and written as OXM TLVs (which Open vSwitch
//! accepts inside NXM, `nx-match.c:nx_pull_raw()`), except `in_port`, which
//! Nicira's 16-bit NXM_OF_IN_PORT carries.

use super::action_codec::{decode_instructions, encode_instructions};
use super::error::OfpError;
use super::framing::EncodeError;
use super::framing::Version;
use super::match_codec::{decode_match, decode_oxm, encode_match, encode_oxm, MATCH_ERRORS};
use super::message::*;
use super::oxm::{Match, OxmField, OxmId};
use super::wire::{pad8, patch_u16, put_zeros, Field, FieldsMut, Reader};
use crate::types::{Cookie, GroupId, PortNo, TableId};

/// ONFMP_FLOW_MONITOR / ONFT_FLOW_MONITOR_CANCEL (the same number).
pub(crate) const ONF_FLOW_MONITOR: u32 = 1870;
/// ONFT_FLOW_MONITOR_PAUSED.
pub(crate) const ONFT_FLOW_MONITOR_PAUSED: u32 = 1871;
/// ONFT_FLOW_MONITOR_RESUMED.
pub(crate) const ONFT_FLOW_MONITOR_RESUMED: u32 = 1872;

/// Nicira/ONF flags (INITIAL, ADD, DELETE, MODIFY, ACTIONS, OWN): bit for
/// bit OF1.4's first six.
const NX_FLAGS: u16 =
    FMF_INITIAL | FMF_ADD | FMF_REMOVED | FMF_MODIFY | FMF_INSTRUCTIONS | FMF_NO_ABBREV;
/// The flags that make a monitor report anything.
const NX_EVENTS: u16 = FMF_ADD | FMF_REMOVED | FMF_MODIFY;
/// Every OF1.4 flag.
const OF14_FLAGS: u16 = NX_FLAGS | FMF_ONLY_OWN;

/// Nicira/ONF requests must ask for some event and name no unknown flag
/// (OFPMOFC_BAD_FLAGS otherwise, as Open vSwitch checks).
fn nx_flags(f: u16) -> Result<u16, OfpError> {
    if f & NX_EVENTS == 0 || f & !NX_FLAGS != 0 {
        Err(OfpError::MonitorBadFlags)
    } else {
        Ok(f)
    }
}

// ---------------------------------------------------------------------------
// OpenFlow 1.4+
// ---------------------------------------------------------------------------

/// `ofp14_flow_monitor_request` before its match.
mod req14 {
    use super::Field;
    pub(super) const MONITOR_ID: Field = 0..4;
    pub(super) const OUT_PORT: Field = 4..8;
    pub(super) const OUT_GROUP: Field = 8..12;
    pub(super) const FLAGS: Field = 12..14;
    pub(super) const TABLE_ID: usize = 14;
    pub(super) const COMMAND: usize = 15;
    pub(super) const LEN: usize = 16;
}

fn command_from_wire(c: u8) -> Result<FlowMonitorCommand, OfpError> {
    Ok(match c {
        0 => FlowMonitorCommand::Add,
        1 => FlowMonitorCommand::Modify,
        2 => FlowMonitorCommand::Delete,
        _ => return Err(OfpError::MonitorBadCommand),
    })
}

fn command_to_wire(c: FlowMonitorCommand) -> u8 {
    match c {
        FlowMonitorCommand::Add => 0,
        FlowMonitorCommand::Modify => 1,
        FlowMonitorCommand::Delete => 2,
    }
}

/// An OF1.4+ request body (entries filling `r`).
pub(crate) fn parse_requests14(mut r: Reader<'_>) -> Result<Vec<FlowMonitorRequest>, OfpError> {
    use req14 as F;
    let mut v = Vec::new();
    while !r.is_empty() {
        let b = r.fixed(F::LEN)?;
        let flags = b.u16(F::FLAGS);
        if flags & !OF14_FLAGS != 0 {
            return Err(OfpError::MonitorBadFlags);
        }
        v.push(FlowMonitorRequest {
            monitor_id: b.u32(F::MONITOR_ID),
            out_port: PortNo(b.u32(F::OUT_PORT)),
            out_group: GroupId(b.u32(F::OUT_GROUP)),
            flags,
            table_id: TableId(b.u8(F::TABLE_ID)),
            command: command_from_wire(b.u8(F::COMMAND))?,
            match_: decode_match(&mut r)?,
        });
    }
    Ok(v)
}

pub(crate) fn emit_requests14(out: &mut Vec<u8>, reqs: &[FlowMonitorRequest]) {
    use req14 as F;
    for q in reqs {
        let mut b = FieldsMut::<{ F::LEN }>::new();
        b.set_u32(F::MONITOR_ID, q.monitor_id)
            .set_u32(F::OUT_PORT, q.out_port.0)
            .set_u32(F::OUT_GROUP, q.out_group.0)
            .set_u16(F::FLAGS, q.flags)
            .set_u8(F::TABLE_ID, q.table_id.0)
            .set_u8(F::COMMAND, command_to_wire(q.command));
        b.emit(out);
        encode_match(out, &q.match_);
    }
}

/// The update header every form shares: length, event.
mod update {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const EVENT: Field = 2..4;
    /// `_abbrev`: the xid.
    pub(super) const XID: Field = 4..8;
    /// Abbrev, paused and resumed are 8 bytes.
    pub(super) const SHORT_LEN: usize = 8;
}

/// `ofp_flow_update_full` (OF1.4+) before its match.
mod full14 {
    use super::Field;
    pub(super) const TABLE_ID: usize = 4;
    pub(super) const REASON: usize = 5;
    pub(super) const IDLE_TIMEOUT: Field = 6..8;
    pub(super) const HARD_TIMEOUT: Field = 8..10;
    pub(super) const PRIORITY: Field = 10..12;
    pub(super) const COOKIE: Field = 16..24;
    pub(super) const LEN: usize = 24;
}

/// OFPFME_* events.
mod ev14 {
    pub(super) const INITIAL: u16 = 0;
    pub(super) const ADDED: u16 = 1;
    pub(super) const REMOVED: u16 = 2;
    pub(super) const MODIFIED: u16 = 3;
    pub(super) const ABBREV: u16 = 4;
    pub(super) const PAUSED: u16 = 5;
    pub(super) const RESUMED: u16 = 6;
}

/// Splits the next update off `r` (its length at offset 0, at least 8).
fn next_update<'a>(r: &mut Reader<'a>) -> Result<Reader<'a>, OfpError> {
    let len = r.peek_u16(update::LENGTH.start)? as usize;
    if len < update::SHORT_LEN || !len.is_multiple_of(8) {
        return Err(OfpError::BadLen);
    }
    r.sub(len, OfpError::BadLen)
}

/// An OF1.4+ reply body (updates filling `r`).
pub(crate) fn parse_updates14(mut r: Reader<'_>) -> Result<Vec<FlowUpdate>, OfpError> {
    use full14 as F;
    let mut v = Vec::new();
    while !r.is_empty() {
        let mut e = next_update(&mut r)?;
        let event = e.peek_u16(update::EVENT.start)?;
        v.push(match event {
            ev14::ABBREV => FlowUpdate::Abbrev {
                xid: e.exact(update::SHORT_LEN)?.u32(update::XID),
            },
            ev14::PAUSED => e.exact(update::SHORT_LEN).map(|_| FlowUpdate::Paused)?,
            ev14::RESUMED => e.exact(update::SHORT_LEN).map(|_| FlowUpdate::Resumed)?,
            ev14::INITIAL | ev14::ADDED | ev14::REMOVED | ev14::MODIFIED => {
                let b = e.fixed(F::LEN)?;
                let match_ = decode_match(&mut e)?;
                FlowUpdate::Full {
                    event: match event {
                        ev14::INITIAL => FlowUpdateEvent::Initial,
                        ev14::ADDED => FlowUpdateEvent::Added,
                        ev14::REMOVED => FlowUpdateEvent::Removed,
                        _ => FlowUpdateEvent::Modified,
                    },
                    table_id: TableId(b.u8(F::TABLE_ID)),
                    reason: b.u8(F::REASON),
                    idle_timeout: b.u16(F::IDLE_TIMEOUT),
                    hard_timeout: b.u16(F::HARD_TIMEOUT),
                    priority: b.u16(F::PRIORITY),
                    cookie: Cookie(b.u64(F::COOKIE)),
                    match_,
                    instructions: decode_instructions(Reader::new(
                        e.take_rest(),
                        OfpError::BadInstructionLen,
                    ))?,
                }
            }
            _ => return Err(OfpError::BadMultipart),
        });
    }
    Ok(v)
}

fn emit_short(out: &mut Vec<u8>, event: u16, xid: u32) {
    let mut b = FieldsMut::<{ update::SHORT_LEN }>::new();
    b.set_u16(update::LENGTH, update::SHORT_LEN as u16)
        .set_u16(update::EVENT, event)
        .set_u32(update::XID, xid);
    b.emit(out);
}

/// Appends one OF1.4+ update.
pub(crate) fn emit_update14(out: &mut Vec<u8>, u: &FlowUpdate) {
    use full14 as F;
    match u {
        FlowUpdate::Abbrev { xid } => emit_short(out, ev14::ABBREV, *xid),
        FlowUpdate::Paused => emit_short(out, ev14::PAUSED, 0),
        FlowUpdate::Resumed => emit_short(out, ev14::RESUMED, 0),
        FlowUpdate::Full {
            event,
            table_id,
            reason,
            idle_timeout,
            hard_timeout,
            priority,
            cookie,
            match_,
            instructions,
        } => {
            let start = out.len();
            let ev = match event {
                FlowUpdateEvent::Initial => ev14::INITIAL,
                FlowUpdateEvent::Added => ev14::ADDED,
                FlowUpdateEvent::Removed => ev14::REMOVED,
                FlowUpdateEvent::Modified => ev14::MODIFIED,
            };
            let mut b = FieldsMut::<{ F::LEN }>::new();
            b.set_u16(update::EVENT, ev)
                .set_u8(F::TABLE_ID, table_id.0)
                .set_u8(F::REASON, *reason)
                .set_u16(F::IDLE_TIMEOUT, *idle_timeout)
                .set_u16(F::HARD_TIMEOUT, *hard_timeout)
                .set_u16(F::PRIORITY, *priority)
                .set_u64(F::COOKIE, cookie.0);
            b.emit(out);
            encode_match(out, match_);
            encode_instructions(out, instructions);
            let len = out.len() - start;
            patch_u16(out, start + update::LENGTH.start, len as u16);
        }
    }
}

// ---------------------------------------------------------------------------
// Nicira (OF1.0) and ONF (OF1.3)
// ---------------------------------------------------------------------------

/// `onf_flow_monitor_request` (OF1.3) before its `ofp_match`.
mod req_onf {
    use super::Field;
    pub(super) const ID: Field = 0..4;
    pub(super) const FLAGS: Field = 4..6;
    pub(super) const MATCH_LEN: Field = 6..8;
    pub(super) const OUT_PORT: Field = 8..12;
    pub(super) const TABLE_ID: usize = 12;
    pub(super) const ZEROS: Field = 13..16;
    pub(super) const LEN: usize = 16;
}

/// `nx_flow_monitor_request` (OF1.0) before its NXM match.
mod req_nx {
    use super::Field;
    pub(super) const ID: Field = 0..4;
    pub(super) const FLAGS: Field = 4..6;
    pub(super) const OUT_PORT: Field = 6..8;
    pub(super) const MATCH_LEN: Field = 8..10;
    pub(super) const TABLE_ID: usize = 10;
    pub(super) const ZEROS: Field = 11..16;
    pub(super) const LEN: usize = 16;
}

/// `nx_flow_update_full` (also ONF's) before its match.
mod full_nx {
    use super::Field;
    pub(super) const REASON: Field = 4..6;
    pub(super) const PRIORITY: Field = 6..8;
    pub(super) const IDLE_TIMEOUT: Field = 8..10;
    pub(super) const HARD_TIMEOUT: Field = 10..12;
    pub(super) const MATCH_LEN: Field = 12..14;
    pub(super) const TABLE_ID: usize = 14;
    pub(super) const COOKIE: Field = 16..24;
    pub(super) const LEN: usize = 24;
}

/// NXFME_* / ONFFME_* events.
mod ev_nx {
    pub(super) const ADDED: u16 = 0;
    pub(super) const DELETED: u16 = 1;
    pub(super) const MODIFIED: u16 = 2;
    pub(super) const ABBREV: u16 = 3;
}

fn zeros(b: &super::wire::Fields<'_>, f: Field) -> Result<(), OfpError> {
    // OFPERR_NXBRC_MUST_BE_ZERO in Open vSwitch; the nearest model error.
    if b.0.get(f).unwrap_or(&[]).iter().all(|&x| x == 0) {
        Ok(())
    } else {
        Err(OfpError::BadLen)
    }
}

/// An ONF (OF1.3) request body.
pub(crate) fn parse_requests_onf(mut r: Reader<'_>) -> Result<Vec<FlowMonitorRequest>, OfpError> {
    use req_onf as F;
    let mut v = Vec::new();
    while !r.is_empty() {
        let b = r.fixed(F::LEN)?;
        zeros(&b, F::ZEROS)?;
        v.push(FlowMonitorRequest {
            monitor_id: b.u32(F::ID),
            out_port: PortNo(b.u32(F::OUT_PORT)),
            out_group: GroupId::ANY,
            flags: nx_flags(b.u16(F::FLAGS))?,
            table_id: TableId(b.u8(F::TABLE_ID)),
            command: FlowMonitorCommand::Add,
            match_: decode_match(&mut r)?,
        });
    }
    Ok(v)
}

pub(crate) fn emit_requests_onf(
    out: &mut Vec<u8>,
    reqs: &[FlowMonitorRequest],
) -> Result<(), EncodeError> {
    use req_onf as F;
    for q in reqs {
        check_nx_request(Version::V1_3, q)?;
        let start = out.len();
        let mut b = FieldsMut::<{ F::LEN }>::new();
        b.set_u32(F::ID, q.monitor_id)
            .set_u16(F::FLAGS, q.flags)
            .set_u32(F::OUT_PORT, q.out_port.0)
            .set_u8(F::TABLE_ID, q.table_id.0);
        b.emit(out);
        let m = out.len();
        encode_match(out, &q.match_);
        // match_len is the ofp_match's own length field (unpadded).
        let mlen = u16::from_be_bytes([out[m + 2], out[m + 3]]);
        patch_u16(out, start + F::MATCH_LEN.start, mlen);
    }
    Ok(())
}

fn check_nx_request(v: Version, q: &FlowMonitorRequest) -> Result<(), EncodeError> {
    let ok = q.command == FlowMonitorCommand::Add
        && q.out_group == GroupId::ANY
        && nx_flags(q.flags).is_ok();
    if ok {
        Ok(())
    } else {
        Err(EncodeError::Unsupported {
            version: v,
            what: "a flow monitor request beyond ADD with Nicira/ONF flags",
        })
    }
}

/// An NXST_FLOW_MONITOR (OF1.0) request body.
pub(crate) fn parse_requests_nx(mut r: Reader<'_>) -> Result<Vec<FlowMonitorRequest>, OfpError> {
    use req_nx as F;
    let mut v = Vec::new();
    while !r.is_empty() {
        let b = r.fixed(F::LEN)?;
        zeros(&b, F::ZEROS)?;
        let mlen = b.u16(F::MATCH_LEN) as usize;
        let m = r.sub(pad8(mlen), OfpError::BadLen)?;
        v.push(FlowMonitorRequest {
            monitor_id: b.u32(F::ID),
            out_port: super::of10_fields::port_from_wire(b.u16(F::OUT_PORT)),
            out_group: GroupId::ANY,
            flags: nx_flags(b.u16(F::FLAGS))?,
            table_id: TableId(b.u8(F::TABLE_ID)),
            command: FlowMonitorCommand::Add,
            match_: nxm_parse(m, mlen)?,
        });
    }
    Ok(v)
}

pub(crate) fn emit_requests_nx(
    out: &mut Vec<u8>,
    reqs: &[FlowMonitorRequest],
) -> Result<(), EncodeError> {
    use req_nx as F;
    for q in reqs {
        check_nx_request(Version::V1_0, q)?;
        let port =
            super::of10_fields::port_to_wire(q.out_port).ok_or(EncodeError::Unsupported {
                version: Version::V1_0,
                what: "an out_port above 0xff00",
            })?;
        let start = out.len();
        let mut b = FieldsMut::<{ F::LEN }>::new();
        b.set_u32(F::ID, q.monitor_id)
            .set_u16(F::FLAGS, q.flags)
            .set_u16(F::OUT_PORT, port)
            .set_u8(F::TABLE_ID, q.table_id.0);
        b.emit(out);
        let mlen = nxm_emit(out, &q.match_)?;
        patch_u16(out, start + F::MATCH_LEN.start, mlen as u16);
    }
    Ok(())
}

/// Nicira/ONF updates filling `r`: OF1.3 carries an `ofp_match` and
/// instructions, OF1.0 an NXM match and OF1.0 actions.
pub(crate) fn parse_updates_nx(v: Version, mut r: Reader<'_>) -> Result<Vec<FlowUpdate>, OfpError> {
    use full_nx as F;
    let mut out = Vec::new();
    while !r.is_empty() {
        let mut e = next_update(&mut r)?;
        let event = e.peek_u16(update::EVENT.start)?;
        if event == ev_nx::ABBREV {
            out.push(FlowUpdate::Abbrev {
                xid: e.exact(update::SHORT_LEN)?.u32(update::XID),
            });
            continue;
        }
        let event = match event {
            ev_nx::ADDED => FlowUpdateEvent::Added,
            ev_nx::DELETED => FlowUpdateEvent::Removed,
            ev_nx::MODIFIED => FlowUpdateEvent::Modified,
            _ => return Err(OfpError::BadMultipart),
        };
        let b = e.fixed(F::LEN)?;
        let (match_, instructions) = if v == Version::V1_0 {
            let mlen = b.u16(F::MATCH_LEN) as usize;
            let m = e.sub(pad8(mlen), OfpError::BadLen)?;
            let match_ = nxm_parse(m, mlen)?;
            let insts = super::of10_fields::parse_instructions(
                Reader::new(e.take_rest(), OfpError::BadActionLen),
                &match_,
            )?;
            (match_, insts)
        } else {
            let match_ = decode_match(&mut e)?;
            let insts =
                decode_instructions(Reader::new(e.take_rest(), OfpError::BadInstructionLen))?;
            (match_, insts)
        };
        out.push(FlowUpdate::Full {
            event,
            table_id: TableId(b.u8(F::TABLE_ID)),
            reason: b.u16(F::REASON) as u8,
            idle_timeout: b.u16(F::IDLE_TIMEOUT),
            hard_timeout: b.u16(F::HARD_TIMEOUT),
            priority: b.u16(F::PRIORITY),
            cookie: Cookie(b.u64(F::COOKIE)),
            match_,
            instructions,
        });
    }
    Ok(out)
}

/// Appends one Nicira/ONF update. Paused/resumed are messages of their own
/// in these forms ([`Message::FlowMonitorPaused`]), not updates.
pub(crate) fn emit_update_nx(
    v: Version,
    out: &mut Vec<u8>,
    u: &FlowUpdate,
) -> Result<(), EncodeError> {
    use full_nx as F;
    match u {
        FlowUpdate::Abbrev { xid } => emit_short(out, ev_nx::ABBREV, *xid),
        FlowUpdate::Paused | FlowUpdate::Resumed => {
            return Err(EncodeError::Unsupported {
                version: v,
                what: "a paused/resumed update (a separate message before OpenFlow 1.4)",
            })
        }
        FlowUpdate::Full {
            event,
            table_id,
            reason,
            idle_timeout,
            hard_timeout,
            priority,
            cookie,
            match_,
            instructions,
        } => {
            let start = out.len();
            let ev = match event {
                FlowUpdateEvent::Initial | FlowUpdateEvent::Added => ev_nx::ADDED,
                FlowUpdateEvent::Removed => ev_nx::DELETED,
                FlowUpdateEvent::Modified => ev_nx::MODIFIED,
            };
            let mut b = FieldsMut::<{ F::LEN }>::new();
            b.set_u16(update::EVENT, ev)
                .set_u16(F::REASON, *reason as u16)
                .set_u16(F::PRIORITY, *priority)
                .set_u16(F::IDLE_TIMEOUT, *idle_timeout)
                .set_u16(F::HARD_TIMEOUT, *hard_timeout)
                .set_u8(F::TABLE_ID, table_id.0)
                .set_u64(F::COOKIE, cookie.0);
            b.emit(out);
            let mlen = if v == Version::V1_0 {
                let r = nxm_emit(out, match_).and_then(|n| {
                    super::of10_fields::emit_instructions(out, instructions, match_, true)
                        .map(|_| n)
                });
                match r {
                    Ok(n) => n,
                    Err(e) => {
                        out.truncate(start);
                        return Err(e);
                    }
                }
            } else {
                let m = out.len();
                encode_match(out, match_);
                encode_instructions(out, instructions);
                u16::from_be_bytes([out[m + 2], out[m + 3]]) as usize
            };
            let len = out.len() - start;
            patch_u16(out, start + update::LENGTH.start, len as u16);
            patch_u16(out, start + F::MATCH_LEN.start, mlen as u16);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// NXM matches (OF1.0 monitors)
// ---------------------------------------------------------------------------

/// NXM_OF_* (class 0x0000) fields that map one to one onto an OXM field,
/// with their wire length: `(nxm field, oxm id)`.
const NXM_OF: [(u8, OxmId); 15] = [
    (1, OxmId::EthDst),
    (2, OxmId::EthSrc),
    (3, OxmId::EthType),
    (6, OxmId::IpProto),
    (7, OxmId::Ipv4Src),
    (8, OxmId::Ipv4Dst),
    (9, OxmId::TcpSrc),
    (10, OxmId::TcpDst),
    (11, OxmId::UdpSrc),
    (12, OxmId::UdpDst),
    (13, OxmId::Icmpv4Type),
    (14, OxmId::Icmpv4Code),
    (15, OxmId::ArpOp),
    (16, OxmId::ArpSpa),
    (17, OxmId::ArpTpa),
];
/// NXM_OF_IN_PORT: a 16-bit OF1.0 port.
const NXM_OF_IN_PORT: u32 = 0x0000_0002;
/// NXM_OF_ARP_OP is 16 bits in NXM (8 in OXM).
const NXM_ARP_OP_FIELD: u8 = 15;

/// Parses an NXM match of `len` bytes (then padding) from `r`: OXM-class and
/// Nicira-class headers as in OXM, NXM_OF_IN_PORT, and the NXM_OF_* fields
/// with an OXM twin. Others (NXM_OF_VLAN_TCI, NXM_OF_IP_TOS, registers...)
/// are BAD_FIELD: this switch does not speak NXM beyond monitors.
fn nxm_parse(m: Reader<'_>, len: usize) -> Result<Match, OfpError> {
    let mut r = Reader::new(m.rest().get(..len).unwrap_or(&[]), OfpError::BadMatchLen);
    let mut fields: Vec<OxmField> = Vec::new();
    while !r.is_empty() {
        let h = ((r.peek_u16(0)? as u32) << 16) | r.peek_u16(2)? as u32;
        let class = (h >> 16) as u16;
        let f = if h == NXM_OF_IN_PORT {
            r.skip(4)?;
            OxmField::in_port(super::of10_fields::port_from_wire(r.u16()?))
        } else if class == 0 {
            let field = ((h >> 9) & 0x7f) as u8;
            let has_mask = h & 0x100 != 0;
            let n = (h & 0xff) as usize;
            let id = NXM_OF
                .iter()
                .find(|(nf, _)| *nf == field)
                .map(|&(_, id)| id)
                .ok_or(OfpError::BadField)?;
            r.skip(4)?;
            let payload = r.bytes(n)?;
            // Re-frame as OXM (ARP_OP shrinks from 16 to 8 bits).
            let w = if field == NXM_ARP_OP_FIELD {
                2
            } else {
                id.wire_len()
            };
            if n != if has_mask { 2 * w } else { w } {
                return Err(OfpError::BadMatchLen);
            }
            let mut tlv = Vec::with_capacity(4 + n);
            let body: Vec<u8> = if field == NXM_ARP_OP_FIELD {
                if payload[0] != 0 || has_mask {
                    return Err(OfpError::BadValue);
                }
                vec![payload[1]]
            } else {
                payload.to_vec()
            };
            let (oc, of) = id.class_field();
            let oh = ((oc as u32) << 16)
                | ((of as u32) << 9)
                | ((has_mask as u32) << 8)
                | body.len() as u32;
            tlv.extend_from_slice(&oh.to_be_bytes());
            tlv.extend_from_slice(&body);
            decode_oxm(&mut Reader::new(&tlv, OfpError::BadMatchLen), &MATCH_ERRORS)?
        } else {
            decode_oxm(&mut r, &MATCH_ERRORS)?
        };
        if fields.iter().any(|x| x.id == f.id) {
            return Err(OfpError::DupField);
        }
        fields.push(f);
    }
    Ok(Match { fields })
}

/// Writes `m` as an NXM match padded to 8; returns its unpadded length.
fn nxm_emit(out: &mut Vec<u8>, m: &Match) -> Result<usize, EncodeError> {
    let start = out.len();
    for f in &m.fields {
        if f.id == OxmId::InPort {
            let p = super::of10_fields::port_to_wire(PortNo(f.value as u32)).ok_or(
                EncodeError::Unsupported {
                    version: Version::V1_0,
                    what: "an in_port above 0xff00",
                },
            )?;
            out.extend_from_slice(&NXM_OF_IN_PORT.to_be_bytes());
            out.extend_from_slice(&p.to_be_bytes());
        } else {
            encode_oxm(out, f);
        }
    }
    let len = out.len() - start;
    put_zeros(out, pad8(len) - len);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::super::action::{Action, Instruction};
    use super::*;

    fn full(event: FlowUpdateEvent) -> FlowUpdate {
        FlowUpdate::Full {
            event,
            table_id: TableId(1),
            reason: 0,
            idle_timeout: 2,
            hard_timeout: 3,
            priority: 4,
            cookie: Cookie(5),
            match_: Match {
                fields: vec![
                    OxmField::in_port(PortNo(3)),
                    OxmField::exact(OxmId::EthType, 0x800),
                ],
            },
            instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                port: PortNo(2),
                max_len: 0,
            }])],
        }
    }

    #[test]
    fn monitor_structures_round_trip_in_every_form() {
        let req = FlowMonitorRequest {
            monitor_id: 7,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            flags: FMF_INITIAL | FMF_ADD | FMF_REMOVED | FMF_MODIFY | FMF_INSTRUCTIONS,
            table_id: TableId::ALL,
            command: FlowMonitorCommand::Add,
            match_: Match {
                fields: vec![
                    OxmField::in_port(PortNo(1)),
                    OxmField::exact(OxmId::EthType, 0x806),
                    OxmField::exact(OxmId::ArpOp, 1),
                ],
            },
        };
        let rd = |b: &[u8]| Reader::new(b, OfpError::BadLen).rest().to_vec();
        let mut out = Vec::new();
        emit_requests14(&mut out, std::slice::from_ref(&req));
        assert_eq!(
            parse_requests14(Reader::new(&rd(&out), OfpError::BadLen)).unwrap(),
            vec![req.clone()]
        );
        let mut out = Vec::new();
        emit_requests_onf(&mut out, std::slice::from_ref(&req)).unwrap();
        assert_eq!(
            parse_requests_onf(Reader::new(&out, OfpError::BadLen)).unwrap(),
            vec![req.clone()]
        );
        let mut out = Vec::new();
        emit_requests_nx(&mut out, std::slice::from_ref(&req)).unwrap();
        assert_eq!(
            parse_requests_nx(Reader::new(&out, OfpError::BadLen)).unwrap(),
            vec![req.clone()]
        );

        let ups = vec![
            full(FlowUpdateEvent::Initial),
            full(FlowUpdateEvent::Removed),
            FlowUpdate::Abbrev { xid: 9 },
            FlowUpdate::Paused,
            FlowUpdate::Resumed,
        ];
        let mut out = Vec::new();
        ups.iter().for_each(|u| emit_update14(&mut out, u));
        assert_eq!(
            parse_updates14(Reader::new(&out, OfpError::BadLen)).unwrap(),
            ups
        );
        // Nicira/ONF: INITIAL travels as ADDED, paused/resumed are messages.
        for v in [Version::V1_0, Version::V1_3] {
            let mut out = Vec::new();
            for u in &ups[..3] {
                emit_update_nx(v, &mut out, u).unwrap();
            }
            assert!(emit_update_nx(v, &mut out.clone(), &FlowUpdate::Paused).is_err());
            let back = parse_updates_nx(v, Reader::new(&out, OfpError::BadLen)).unwrap();
            assert_eq!(back[0], full(FlowUpdateEvent::Added), "{v}");
            assert_eq!(back[1..], ups[1..3], "{v}");
        }
        // Nicira/ONF requests must ask for an event.
        let bad = FlowMonitorRequest {
            flags: FMF_INITIAL,
            ..req
        };
        assert!(emit_requests_nx(&mut Vec::new(), &[bad]).is_err());
    }
}
