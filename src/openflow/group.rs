//! Groups on the wire: GROUP_MOD and `ofp_bucket` (OF1.3.5 §7.3.4.2), and the
//! OFPMP_GROUP / GROUP_DESC / GROUP_FEATURES reply bodies (§7.3.5.9-11), in
//! the OF1.3 layouts (unchanged in OF1.4) and OF1.5's (OF1.5.1 §7.3.4.3),
//! whose buckets carry ids and keep weight and watch port/group in
//! properties.

use super::action_codec::{decode_actions, encode_actions};
use super::error::OfpError;
use super::message::{
    Bucket, GroupDesc, GroupFeatures, GroupMod, GroupModCommand, GroupStats, GroupType,
};
use super::prop;
use super::wire::{patch_u16, Field, FieldsMut, Reader};
use crate::types::{GroupId, PortNo};

/// OFPGT_* to our enum.
pub(crate) fn type_from_wire(t: u8) -> Result<GroupType, OfpError> {
    Ok(match t {
        0 => GroupType::All,
        1 => GroupType::Select,
        2 => GroupType::Indirect,
        3 => GroupType::FastFailover,
        _ => return Err(OfpError::BadGroupType),
    })
}

pub(crate) fn type_to_wire(t: GroupType) -> u8 {
    match t {
        GroupType::All => 0,
        GroupType::Select => 1,
        GroupType::Indirect => 2,
        GroupType::FastFailover => 3,
    }
}

/// OFPGC_* to our enum.
fn command_from_wire(c: u16) -> Result<GroupModCommand, OfpError> {
    Ok(match c {
        0 => GroupModCommand::Add,
        1 => GroupModCommand::Modify,
        2 => GroupModCommand::Delete,
        _ => return Err(OfpError::BadGroupCommand),
    })
}

fn command_to_wire(c: GroupModCommand) -> u16 {
    match c {
        GroupModCommand::Add => 0,
        GroupModCommand::Modify => 1,
        GroupModCommand::Delete => 2,
    }
}

/// `ofp_group_mod` after the header, before the buckets.
mod group_mod {
    use super::Field;
    pub(super) const COMMAND: Field = 0..2;
    pub(super) const TYPE: usize = 2;
    pub(super) const GROUP_ID: Field = 4..8;
    pub(super) const LEN: usize = 8;
}

pub(crate) fn parse_mod(mut r: Reader<'_>) -> Result<GroupMod, OfpError> {
    use group_mod as F;
    let b = r.fixed(F::LEN)?;
    let command = command_from_wire(b.u16(F::COMMAND))?;
    Ok(GroupMod {
        command,
        group_type: type_from_wire(b.u8(F::TYPE))?,
        group_id: GroupId(b.u32(F::GROUP_ID)),
        buckets: parse_buckets(Reader::new(r.take_rest(), OfpError::BadBucket))?,
    })
}

pub(crate) fn emit_mod(out: &mut Vec<u8>, g: &GroupMod) {
    use group_mod as F;
    let command = command_to_wire(g.command);
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(F::COMMAND, command)
        .set_u8(F::TYPE, type_to_wire(g.group_type))
        .set_u32(F::GROUP_ID, g.group_id.0);
    b.emit(out);
    emit_buckets(out, &g.buckets);
}

/// `ofp_bucket` before its actions.
mod bucket {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const WEIGHT: Field = 2..4;
    pub(super) const WATCH_PORT: Field = 4..8;
    pub(super) const WATCH_GROUP: Field = 8..12;
    pub(super) const LEN: usize = 16;
}

/// A bucket list spanning all of `r`: each bucket's length must be a multiple
/// of 8, at least its fixed part and inside the list (else BAD_BUCKET).
pub(crate) fn parse_buckets(mut r: Reader<'_>) -> Result<Vec<Bucket>, OfpError> {
    use bucket as F;
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r
            .peek_u16(F::LENGTH.start)
            .map_err(|_| OfpError::BadBucket)? as usize;
        if len < F::LEN || !len.is_multiple_of(8) || len > r.remaining() {
            return Err(OfpError::BadBucket);
        }
        let mut e = r.sub(len, OfpError::BadBucket)?;
        let b = e.fixed(F::LEN)?;
        out.push(Bucket {
            weight: b.u16(F::WEIGHT),
            watch_port: PortNo(b.u32(F::WATCH_PORT)),
            watch_group: GroupId(b.u32(F::WATCH_GROUP)),
            actions: decode_actions(Reader::new(e.take_rest(), OfpError::BadActionLen))?,
        });
    }
    Ok(out)
}

pub(crate) fn emit_buckets(out: &mut Vec<u8>, buckets: &[Bucket]) {
    use bucket as F;
    for bk in buckets {
        let start = out.len();
        let mut b = FieldsMut::<{ F::LEN }>::new();
        b.set_u16(F::WEIGHT, bk.weight)
            .set_u32(F::WATCH_PORT, bk.watch_port.0)
            .set_u32(F::WATCH_GROUP, bk.watch_group.0);
        b.emit(out);
        encode_actions(out, &bk.actions);
        let len = out.len() - start;
        patch_u16(out, start + F::LENGTH.start, len as u16);
    }
}

/// `(packets, bytes)` counter pairs filling all of `r`.
pub(crate) fn parse_counter_pairs(mut r: Reader<'_>) -> Result<Vec<(u64, u64)>, OfpError> {
    r.fixed_entries(16, |r| Ok((r.u64()?, r.u64()?)))
}

pub(crate) fn emit_counter_pairs(out: &mut Vec<u8>, pairs: &[(u64, u64)]) {
    for (p, b) in pairs {
        out.extend_from_slice(&p.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
    }
}

/// `ofp_group_stats` before its bucket counters.
pub(crate) mod stats {
    use super::Field;
    pub(crate) const LENGTH: Field = 0..2;
    pub(crate) const GROUP_ID: Field = 4..8;
    pub(crate) const REF_COUNT: Field = 8..12;
    pub(crate) const PACKET_COUNT: Field = 16..24;
    pub(crate) const BYTE_COUNT: Field = 24..32;
    pub(crate) const DURATION_SEC: Field = 32..36;
    pub(crate) const DURATION_NSEC: Field = 36..40;
    pub(crate) const LEN: usize = 40;
}

/// One entry spanning all of `e`.
pub(crate) fn parse_stats(mut e: Reader<'_>) -> Result<GroupStats, OfpError> {
    use stats as F;
    let b = e.fixed(F::LEN)?;
    Ok(GroupStats {
        group_id: GroupId(b.u32(F::GROUP_ID)),
        ref_count: b.u32(F::REF_COUNT),
        packet_count: b.u64(F::PACKET_COUNT),
        byte_count: b.u64(F::BYTE_COUNT),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        bucket_stats: parse_counter_pairs(e)?,
    })
}

pub(crate) fn emit_stats(out: &mut Vec<u8>, g: &GroupStats) {
    use stats as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::GROUP_ID, g.group_id.0)
        .set_u32(F::REF_COUNT, g.ref_count)
        .set_u64(F::PACKET_COUNT, g.packet_count)
        .set_u64(F::BYTE_COUNT, g.byte_count)
        .set_u32(F::DURATION_SEC, g.duration_sec)
        .set_u32(F::DURATION_NSEC, g.duration_nsec);
    b.emit(out);
    emit_counter_pairs(out, &g.bucket_stats);
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
}

/// `ofp_group_desc` before its buckets.
pub(crate) mod desc {
    use super::Field;
    pub(crate) const LENGTH: Field = 0..2;
    pub(crate) const TYPE: usize = 2;
    pub(crate) const GROUP_ID: Field = 4..8;
    pub(crate) const LEN: usize = 8;
}

/// One entry spanning all of `e`.
pub(crate) fn parse_desc(mut e: Reader<'_>) -> Result<GroupDesc, OfpError> {
    use desc as F;
    let b = e.fixed(F::LEN)?;
    Ok(GroupDesc {
        group_type: type_from_wire(b.u8(F::TYPE))?,
        group_id: GroupId(b.u32(F::GROUP_ID)),
        buckets: parse_buckets(Reader::new(e.take_rest(), OfpError::BadBucket))?,
    })
}

pub(crate) fn emit_desc(out: &mut Vec<u8>, g: &GroupDesc) {
    use desc as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TYPE, type_to_wire(g.group_type))
        .set_u32(F::GROUP_ID, g.group_id.0);
    b.emit(out);
    emit_buckets(out, &g.buckets);
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
}

/// `ofp_group_features`.
mod features {
    use super::Field;
    pub(super) const TYPES: Field = 0..4;
    pub(super) const CAPABILITIES: Field = 4..8;
    pub(super) const MAX_GROUPS: usize = 8;
    pub(super) const ACTIONS: usize = 24;
    pub(super) const LEN: usize = 40;
    /// Entry `i` of a 4-entry u32 array starting at `base`.
    pub(super) const fn at(base: usize, i: usize) -> Field {
        base + 4 * i..base + 4 * i + 4
    }
}

pub(crate) fn parse_features(mut r: Reader<'_>) -> Result<GroupFeatures, OfpError> {
    use features as F;
    let b = r.exact(F::LEN)?;
    Ok(GroupFeatures {
        types: b.u32(F::TYPES),
        capabilities: b.u32(F::CAPABILITIES),
        max_groups: std::array::from_fn(|i| b.u32(F::at(F::MAX_GROUPS, i))),
        actions: std::array::from_fn(|i| b.u32(F::at(F::ACTIONS, i))),
    })
}

pub(crate) fn emit_features(out: &mut Vec<u8>, g: &GroupFeatures) {
    use features as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::TYPES, g.types)
        .set_u32(F::CAPABILITIES, g.capabilities);
    for i in 0..4 {
        b.set_u32(F::at(F::MAX_GROUPS, i), g.max_groups[i])
            .set_u32(F::at(F::ACTIONS, i), g.actions[i]);
    }
    b.emit(out);
}

/// `ofp15_group_mod` after the header, before the buckets.
mod group_mod15 {
    use super::Field;
    pub(super) const COMMAND: Field = 0..2;
    pub(super) const TYPE: usize = 2;
    pub(super) const GROUP_ID: Field = 4..8;
    pub(super) const BUCKET_ARRAY_LEN: Field = 8..10;
    pub(super) const COMMAND_BUCKET_ID: Field = 12..16;
    pub(super) const LEN: usize = 16;
}

/// OFPG15_BUCKET_ALL: the command applies to all buckets.
const BUCKET_ALL: u32 = 0xffff_ffff;

pub(crate) fn parse_mod15(mut r: Reader<'_>) -> Result<GroupMod, OfpError> {
    use group_mod15 as F;
    let b = r.fixed(F::LEN)?;
    // OFPGC15_INSERT_BUCKET / REMOVE_BUCKET are not in the model.
    let command = command_from_wire(b.u16(F::COMMAND))?;
    let buckets = r.sub(b.u16(F::BUCKET_ARRAY_LEN) as usize, OfpError::BadBucket)?;
    let buckets = parse_buckets15(buckets)?;
    // Group properties (selection method, OF1.5 experimenter ones) are not
    // in the model: refuse them rather than ignore them.
    prop::for_each(r, |_, _| Err(OfpError::BadPropertyType))?;
    Ok(GroupMod {
        command,
        group_type: type_from_wire(b.u8(F::TYPE))?,
        group_id: GroupId(b.u32(F::GROUP_ID)),
        buckets,
    })
}

pub(crate) fn emit_mod15(out: &mut Vec<u8>, g: &GroupMod) {
    use group_mod15 as F;
    let command = command_to_wire(g.command);
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(F::COMMAND, command)
        .set_u8(F::TYPE, type_to_wire(g.group_type))
        .set_u32(F::GROUP_ID, g.group_id.0)
        .set_u32(F::COMMAND_BUCKET_ID, BUCKET_ALL);
    b.emit(out);
    let blen = emit_buckets15(out, g.group_type, &g.buckets);
    patch_u16(out, start + F::BUCKET_ARRAY_LEN.start, blen as u16);
}

/// `ofp15_bucket` before its actions.
mod bucket15 {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const ACTION_ARRAY_LEN: Field = 2..4;
    pub(super) const BUCKET_ID: Field = 4..8;
    pub(super) const LEN: usize = 8;
    /// OFPGBPT15_* bucket properties.
    pub(super) const PROP_WEIGHT: u16 = 0;
    pub(super) const PROP_WATCH_PORT: u16 = 1;
    pub(super) const PROP_WATCH_GROUP: u16 = 2;
}

/// An OF1.5 bucket list spanning all of `r`. Bucket ids are not kept (the
/// model numbers buckets by position, as `emit_buckets15` writes them).
pub(crate) fn parse_buckets15(r: Reader<'_>) -> Result<Vec<Bucket>, OfpError> {
    parse_buckets15_with(r, |a| {
        decode_actions(Reader::new(a.rest(), OfpError::BadActionLen))
    })
}

fn parse_buckets15_with(
    mut r: Reader<'_>,
    decode: impl Fn(Reader<'_>) -> Result<Vec<super::action::Action>, OfpError>,
) -> Result<Vec<Bucket>, OfpError> {
    use bucket15 as F;
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r
            .peek_u16(F::LENGTH.start)
            .map_err(|_| OfpError::BadBucket)? as usize;
        if len < F::LEN || !len.is_multiple_of(8) || len > r.remaining() {
            return Err(OfpError::BadBucket);
        }
        let mut e = r.sub(len, OfpError::BadBucket)?;
        let b = e.fixed(F::LEN)?;
        let acts = e.sub(b.u16(F::ACTION_ARRAY_LEN) as usize, OfpError::BadBucket)?;
        let mut bk = Bucket {
            weight: 0,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: decode(acts)?,
        };
        prop::for_each(e, |t, mut p| {
            p.skip(prop::HEADER_LEN)?;
            match t {
                F::PROP_WEIGHT => bk.weight = p.u16()?,
                F::PROP_WATCH_PORT => bk.watch_port = PortNo(p.u32()?),
                F::PROP_WATCH_GROUP => bk.watch_group = GroupId(p.u32()?),
                _ => return Err(OfpError::BadPropertyType),
            }
            Ok(())
        })?;
        out.push(bk);
    }
    Ok(out)
}

/// Appends OF1.5 buckets (ids 0, 1, ...; a weight for select groups, watch
/// port and group when set, as Open vSwitch writes them); returns the bytes
/// written.
pub(crate) fn emit_buckets15(out: &mut Vec<u8>, t: GroupType, buckets: &[Bucket]) -> usize {
    emit_buckets15_with(out, t, buckets, |o, a| {
        encode_actions(o, a);
        Ok::<(), ()>(())
    })
    .unwrap_or(0)
}

/// [`emit_buckets15`] with another action encoder (OF1.0's, for Nicira's
/// group messages); stops at the first action it cannot encode.
pub(crate) fn emit_buckets15_with<E>(
    out: &mut Vec<u8>,
    t: GroupType,
    buckets: &[Bucket],
    actions: impl Fn(&mut Vec<u8>, &[super::action::Action]) -> Result<(), E>,
) -> Result<usize, E> {
    use bucket15 as F;
    let all = out.len();
    for (id, bk) in buckets.iter().enumerate() {
        let start = out.len();
        let mut b = FieldsMut::<{ F::LEN }>::new();
        b.set_u32(F::BUCKET_ID, id as u32);
        b.emit(out);
        actions(out, &bk.actions)?;
        let alen = out.len() - start - F::LEN;
        if t == GroupType::Select {
            prop::emit(out, F::PROP_WEIGHT, |o| {
                o.extend_from_slice(&bk.weight.to_be_bytes())
            });
        }
        if bk.watch_port != PortNo::ANY {
            prop::emit(out, F::PROP_WATCH_PORT, |o| {
                o.extend_from_slice(&bk.watch_port.0.to_be_bytes())
            });
        }
        if bk.watch_group != GroupId::ANY {
            prop::emit(out, F::PROP_WATCH_GROUP, |o| {
                o.extend_from_slice(&bk.watch_group.0.to_be_bytes())
            });
        }
        let len = out.len() - start;
        patch_u16(out, start + F::LENGTH.start, len as u16);
        patch_u16(out, start + F::ACTION_ARRAY_LEN.start, alen as u16);
    }
    Ok(out.len() - all)
}

/// `ofp15_group_desc` before its buckets.
mod desc15 {
    use super::Field;
    pub(super) const LENGTH: Field = 0..2;
    pub(super) const TYPE: usize = 2;
    pub(super) const GROUP_ID: Field = 4..8;
    pub(super) const BUCKET_LIST_LEN: Field = 8..10;
    pub(super) const LEN: usize = 16;
}

/// Size of the fixed part of an OF1.5 group-desc entry.
pub(crate) const DESC15_LEN: usize = desc15::LEN;

/// One OF1.5 entry spanning all of `e`.
pub(crate) fn parse_desc15(e: Reader<'_>) -> Result<GroupDesc, OfpError> {
    parse_desc15_with(e, |a| {
        decode_actions(Reader::new(a.rest(), OfpError::BadActionLen))
    })
}

pub(crate) fn emit_desc15(out: &mut Vec<u8>, g: &GroupDesc) {
    let _ = emit_desc15_with(out, g, |o, a| {
        encode_actions(o, a);
        Ok::<(), ()>(())
    });
}

/// [`emit_desc15`] with another action encoder; nothing is left appended
/// on error.
pub(crate) fn emit_desc15_with<E>(
    out: &mut Vec<u8>,
    g: &GroupDesc,
    actions: impl Fn(&mut Vec<u8>, &[super::action::Action]) -> Result<(), E>,
) -> Result<(), E> {
    use desc15 as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TYPE, type_to_wire(g.group_type))
        .set_u32(F::GROUP_ID, g.group_id.0);
    b.emit(out);
    let blen = match emit_buckets15_with(out, g.group_type, &g.buckets, actions) {
        Ok(n) => n,
        Err(e) => {
            out.truncate(start);
            return Err(e);
        }
    };
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
    patch_u16(out, start + F::BUCKET_LIST_LEN.start, blen as u16);
    Ok(())
}

/// [`parse_desc15`] with another action decoder.
pub(crate) fn parse_desc15_with(
    mut e: Reader<'_>,
    actions: impl Fn(Reader<'_>) -> Result<Vec<super::action::Action>, OfpError>,
) -> Result<GroupDesc, OfpError> {
    use desc15 as F;
    let b = e.fixed(F::LEN)?;
    let buckets = e.sub(b.u16(F::BUCKET_LIST_LEN) as usize, OfpError::BadBucket)?;
    let buckets = parse_buckets15_with(buckets, actions)?;
    prop::for_each(e, |_, _| Ok(()))?;
    Ok(GroupDesc {
        group_type: type_from_wire(b.u8(F::TYPE))?,
        group_id: GroupId(b.u32(F::GROUP_ID)),
        buckets,
    })
}

#[cfg(test)]
mod tests {
    use super::super::action::Action;
    use super::*;

    fn rd(b: &[u8]) -> Reader<'_> {
        Reader::new(b, OfpError::BadLen)
    }

    fn buckets() -> Vec<Bucket> {
        vec![
            Bucket {
                weight: 3,
                watch_port: PortNo::ANY,
                watch_group: GroupId::ANY,
                actions: vec![Action::Output {
                    port: PortNo(1),
                    max_len: 0,
                }],
            },
            Bucket {
                weight: 0,
                watch_port: PortNo(2),
                watch_group: GroupId(3),
                actions: vec![],
            },
        ]
    }

    #[test]
    fn group_structures_round_trip() {
        let gm = GroupMod {
            command: GroupModCommand::Modify,
            group_type: GroupType::FastFailover,
            group_id: GroupId(7),
            buckets: buckets(),
        };
        let mut out = Vec::new();
        emit_mod(&mut out, &gm);
        assert_eq!(parse_mod(rd(&out)).unwrap(), gm);

        let gs = GroupStats {
            group_id: GroupId(1),
            ref_count: 2,
            packet_count: 3,
            byte_count: 4,
            duration_sec: 5,
            duration_nsec: 6,
            bucket_stats: vec![(7, 8), (9, 10)],
        };
        let mut out = Vec::new();
        emit_stats(&mut out, &gs);
        assert_eq!(u16::from_be_bytes([out[0], out[1]]) as usize, out.len());
        assert_eq!(parse_stats(rd(&out)).unwrap(), gs);

        let gd = GroupDesc {
            group_type: GroupType::Select,
            group_id: GroupId(4),
            buckets: buckets(),
        };
        let mut out = Vec::new();
        emit_desc(&mut out, &gd);
        assert_eq!(parse_desc(rd(&out)).unwrap(), gd);
        let mut out = Vec::new();
        emit_desc15(&mut out, &gd);
        assert_eq!(parse_desc15(rd(&out)).unwrap(), gd);
        // OF1.5: weights travel only for select groups.
        let gm15 = GroupMod {
            group_type: GroupType::Select,
            ..gm.clone()
        };
        let mut out = Vec::new();
        emit_mod15(&mut out, &gm15);
        assert_eq!(parse_mod15(rd(&out)).unwrap(), gm15);

        let gf = GroupFeatures {
            types: 0xf,
            capabilities: 3,
            max_groups: [1, 2, 3, 4],
            actions: [5, 6, 7, 8],
        };
        let mut out = Vec::new();
        emit_features(&mut out, &gf);
        assert_eq!(parse_features(rd(&out)).unwrap(), gf);
    }
}
