//! Tables on the wire (OF1.3 layouts): the OFPMP_TABLE entry (OF1.3.5
//! §7.3.5.5) and OFPMP_TABLE_FEATURES entries with their properties
//! (§7.3.5.18).

use super::error::OfpError;
use super::message::{TableFeatureProp, TableFeatures, TableStats};
use super::wire::{pad8, pad_to_8, patch_u16, put_u16, put_u32, Field, FieldsMut, Reader};
use crate::types::TableId;

/// `ofp_table_stats`.
mod stats {
    use super::Field;
    pub(super) const TABLE_ID: usize = 0;
    pub(super) const ACTIVE_COUNT: Field = 4..8;
    pub(super) const LOOKUP_COUNT: Field = 8..16;
    pub(super) const MATCHED_COUNT: Field = 16..24;
    pub(super) const LEN: usize = 24;
}

/// Size of one OFPMP_TABLE entry.
pub(crate) const STATS_LEN: usize = stats::LEN;

pub(crate) fn parse_stats(r: &mut Reader<'_>) -> Result<TableStats, OfpError> {
    use stats as F;
    let b = r.fixed(F::LEN)?;
    Ok(TableStats {
        table_id: TableId(b.u8(F::TABLE_ID)),
        active_count: b.u32(F::ACTIVE_COUNT),
        lookup_count: b.u64(F::LOOKUP_COUNT),
        matched_count: b.u64(F::MATCHED_COUNT),
    })
}

pub(crate) fn emit_stats(out: &mut Vec<u8>, t: &TableStats) {
    use stats as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TABLE_ID, t.table_id.0)
        .set_u32(F::ACTIVE_COUNT, t.active_count)
        .set_u64(F::LOOKUP_COUNT, t.lookup_count)
        .set_u64(F::MATCHED_COUNT, t.matched_count);
    b.emit(out);
}

/// `ofp_table_features` before its properties (the name is
/// OFP_MAX_TABLE_NAME_LEN = 32 bytes).
pub(crate) mod features {
    use super::Field;
    pub(crate) const LENGTH: Field = 0..2;
    pub(crate) const TABLE_ID: usize = 2;
    pub(crate) const NAME: Field = 8..40;
    pub(crate) const METADATA_MATCH: Field = 40..48;
    pub(crate) const METADATA_WRITE: Field = 48..56;
    pub(crate) const CONFIG: Field = 56..60;
    pub(crate) const MAX_ENTRIES: Field = 60..64;
    pub(crate) const LEN: usize = 64;
}

/// One entry spanning all of `e`.
pub(crate) fn parse_features(mut e: Reader<'_>) -> Result<TableFeatures, OfpError> {
    use features as F;
    let b = e.fixed(F::LEN)?;
    Ok(TableFeatures {
        table_id: TableId(b.u8(F::TABLE_ID)),
        name: b.string(F::NAME),
        metadata_match: b.u64(F::METADATA_MATCH),
        metadata_write: b.u64(F::METADATA_WRITE),
        config: b.u32(F::CONFIG),
        max_entries: b.u32(F::MAX_ENTRIES),
        properties: parse_props(e)?,
    })
}

pub(crate) fn emit_features(out: &mut Vec<u8>, t: &TableFeatures) {
    use features as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u8(F::TABLE_ID, t.table_id.0)
        .set_string(F::NAME, &t.name)
        .set_u64(F::METADATA_MATCH, t.metadata_match)
        .set_u64(F::METADATA_WRITE, t.metadata_write)
        .set_u32(F::CONFIG, t.config)
        .set_u32(F::MAX_ENTRIES, t.max_entries);
    b.emit(out);
    for p in &t.properties {
        emit_prop(out, p);
    }
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
}

/// A list of table-features entries filling all of `r` (each at least its
/// 64-byte fixed part, else BAD_LEN).
pub(crate) fn parse_features_list(mut r: Reader<'_>) -> Result<Vec<TableFeatures>, OfpError> {
    let mut v = Vec::new();
    while !r.is_empty() {
        let e = super::wire::next_entry(&mut r, features::LENGTH.start, features::LEN)?;
        v.push(parse_features(e)?);
    }
    Ok(v)
}

// OFPTFPT_* property types.
const TFPT_INSTRUCTIONS: u16 = 0;
const TFPT_INSTRUCTIONS_MISS: u16 = 1;
const TFPT_NEXT_TABLES: u16 = 2;
const TFPT_NEXT_TABLES_MISS: u16 = 3;
const TFPT_WRITE_ACTIONS: u16 = 4;
const TFPT_APPLY_ACTIONS_MISS: u16 = 7;
const TFPT_MATCH: u16 = 8;
const TFPT_WILDCARDS: u16 = 10;
const TFPT_WRITE_SETFIELD: u16 = 12;
const TFPT_APPLY_SETFIELD_MISS: u16 = 15;
const TFPT_EXPERIMENTER: u16 = 0xfffe;
const TFPT_EXPERIMENTER_MISS: u16 = 0xffff;

/// `ofp_table_feature_prop_header`.
mod prop {
    use super::Field;
    pub(super) const TYPE: Field = 0..2;
    pub(super) const LENGTH: Field = 2..4;
    pub(super) const LEN: usize = 4;
    /// An experimenter property's id and type follow the header.
    pub(super) const EXPERIMENTER: Field = 4..8;
    pub(super) const EXP_TYPE: Field = 8..12;
    pub(super) const EXPERIMENTER_LEN: usize = 12;
}

/// Instruction or action ids in a property: each is a (type, len) header,
/// possibly followed by experimenter data we skip.
fn parse_type_ids(mut r: Reader<'_>) -> Result<Vec<u16>, OfpError> {
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

/// Table-feature properties filling all of `r`. Unknown property types are
/// skipped (we could not act on them anyway), keeping the ones we model.
pub(crate) fn parse_props(mut r: Reader<'_>) -> Result<Vec<TableFeatureProp>, OfpError> {
    let mut props = Vec::new();
    while !r.is_empty() {
        let t = r.peek_u16(prop::TYPE.start)?;
        let len = r.peek_u16(prop::LENGTH.start)? as usize;
        if len < prop::LEN {
            return Err(OfpError::BadLen);
        }
        let whole = r.sub(len, OfpError::BadLen)?;
        let padding = (pad8(len) - len).min(r.remaining());
        r.skip(padding)?;
        let mut p = whole;
        p.skip(prop::LEN)?;
        let prop = match t {
            TFPT_INSTRUCTIONS | TFPT_INSTRUCTIONS_MISS => TableFeatureProp::Instructions {
                miss: t == TFPT_INSTRUCTIONS_MISS,
                ids: parse_type_ids(p)?,
            },
            TFPT_NEXT_TABLES | TFPT_NEXT_TABLES_MISS => TableFeatureProp::NextTables {
                miss: t == TFPT_NEXT_TABLES_MISS,
                tables: p.take_rest().to_vec(),
            },
            TFPT_WRITE_ACTIONS..=TFPT_APPLY_ACTIONS_MISS => TableFeatureProp::Actions {
                prop_type: t,
                ids: parse_type_ids(p)?,
            },
            TFPT_MATCH | TFPT_WILDCARDS | TFPT_WRITE_SETFIELD..=TFPT_APPLY_SETFIELD_MISS => {
                TableFeatureProp::Oxms {
                    prop_type: t,
                    oxm_headers: p.fixed_entries(4, |p| p.u32())?,
                }
            }
            TFPT_EXPERIMENTER | TFPT_EXPERIMENTER_MISS => {
                let mut whole = whole;
                let b = whole.fixed(prop::EXPERIMENTER_LEN)?;
                TableFeatureProp::Experimenter {
                    prop_type: t,
                    experimenter: b.u32(prop::EXPERIMENTER),
                    exp_type: b.u32(prop::EXP_TYPE),
                    data: whole.take_rest().to_vec(),
                }
            }
            _ => continue,
        };
        props.push(prop);
    }
    Ok(props)
}

pub(crate) fn emit_prop(out: &mut Vec<u8>, p: &TableFeatureProp) {
    let start = out.len();
    let type_ids = |out: &mut Vec<u8>, ids: &[u16]| {
        for id in ids {
            put_u16(out, *id);
            put_u16(out, 4);
        }
    };
    let t = match p {
        TableFeatureProp::Instructions { miss, .. } => {
            if *miss {
                TFPT_INSTRUCTIONS_MISS
            } else {
                TFPT_INSTRUCTIONS
            }
        }
        TableFeatureProp::NextTables { miss, .. } => {
            if *miss {
                TFPT_NEXT_TABLES_MISS
            } else {
                TFPT_NEXT_TABLES
            }
        }
        TableFeatureProp::Actions { prop_type, .. }
        | TableFeatureProp::Oxms { prop_type, .. }
        | TableFeatureProp::Experimenter { prop_type, .. } => *prop_type,
    };
    let mut h = FieldsMut::<{ prop::LEN }>::new();
    h.set_u16(prop::TYPE, t);
    h.emit(out);
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
    patch_u16(out, start + prop::LENGTH.start, len as u16);
    pad_to_8(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_structures_round_trip() {
        let s = TableStats {
            table_id: TableId(3),
            active_count: 4,
            lookup_count: 5,
            matched_count: 6,
        };
        let mut out = Vec::new();
        emit_stats(&mut out, &s);
        assert_eq!(out.len(), STATS_LEN);
        assert_eq!(
            parse_stats(&mut Reader::new(&out, OfpError::BadLen)).unwrap(),
            s
        );

        let f = TableFeatures {
            table_id: TableId(1),
            name: "classifier".into(),
            metadata_match: u64::MAX,
            metadata_write: 0xff,
            config: 3,
            max_entries: 1000,
            properties: vec![
                TableFeatureProp::Instructions {
                    miss: true,
                    ids: vec![1, 4],
                },
                TableFeatureProp::NextTables {
                    miss: false,
                    tables: vec![2, 3, 4],
                },
                TableFeatureProp::Actions {
                    prop_type: 6,
                    ids: vec![0, 25],
                },
                TableFeatureProp::Oxms {
                    prop_type: 8,
                    oxm_headers: vec![0x8000_0004],
                },
                TableFeatureProp::Experimenter {
                    prop_type: 0xfffe,
                    experimenter: 0x2320,
                    exp_type: 1,
                    data: vec![1, 2, 3, 4],
                },
            ],
        };
        let mut out = Vec::new();
        emit_features(&mut out, &f);
        assert_eq!(u16::from_be_bytes([out[0], out[1]]) as usize, out.len());
        let back = parse_features_list(Reader::new(&out, OfpError::BadLen)).unwrap();
        assert_eq!(back, vec![f]);
    }
}
