//! Switch-wide messages of fixed layout: FEATURES_REPLY (OF1.3.5 §7.3.1),
//! GET_CONFIG_REPLY/SET_CONFIG (§7.3.2), TABLE_MOD (§7.3.3) and
//! QUEUE_GET_CONFIG request/reply (§7.3.6, OF1.3 only).

use super::error::OfpError;
use super::framing::Version;
use super::message::{SwitchConfig, SwitchFeatures};
use super::wire::{Field, FieldsMut, Reader};
use crate::types::{DatapathId, PortNo, TableId};

/// `ofp_switch_features` after the header.
pub(crate) mod features {
    use super::Field;
    pub(crate) const DATAPATH_ID: Field = 0..8;
    pub(crate) const N_BUFFERS: Field = 8..12;
    pub(crate) const N_TABLES: usize = 12;
    pub(crate) const AUXILIARY_ID: usize = 13;
    pub(crate) const CAPABILITIES: Field = 16..20;
    pub(crate) const LEN: usize = 24;
}

/// FEATURES_REPLY body (OF1.3 layout, no ports: OF1.0's is in `of10.rs`).
pub(crate) fn parse_features(mut r: Reader<'_>) -> Result<SwitchFeatures, OfpError> {
    let b = r.exact(features::LEN)?;
    Ok(SwitchFeatures {
        datapath_id: DatapathId(b.u64(features::DATAPATH_ID)),
        n_buffers: b.u32(features::N_BUFFERS),
        n_tables: b.u8(features::N_TABLES),
        auxiliary_id: b.u8(features::AUXILIARY_ID),
        capabilities: b.u32(features::CAPABILITIES),
        ports: Vec::new(),
    })
}

pub(crate) fn emit_features(out: &mut Vec<u8>, f: &SwitchFeatures) {
    let mut b = FieldsMut::<{ features::LEN }>::new();
    b.set_u64(features::DATAPATH_ID, f.datapath_id.0)
        .set_u32(features::N_BUFFERS, f.n_buffers)
        .set_u8(features::N_TABLES, f.n_tables)
        .set_u8(features::AUXILIARY_ID, f.auxiliary_id)
        .set_u32(features::CAPABILITIES, f.capabilities);
    b.emit(out);
}

/// `ofp_switch_config` after the header.
mod config {
    use super::Field;
    pub(super) const FLAGS: Field = 0..2;
    pub(super) const MISS_SEND_LEN: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

pub(crate) fn parse_config(mut r: Reader<'_>) -> Result<SwitchConfig, OfpError> {
    let b = r.exact(config::LEN)?;
    Ok(SwitchConfig {
        flags: b.u16(config::FLAGS),
        miss_send_len: b.u16(config::MISS_SEND_LEN),
    })
}

pub(crate) fn emit_config(out: &mut Vec<u8>, c: &SwitchConfig) {
    let mut b = FieldsMut::<{ config::LEN }>::new();
    b.set_u16(config::FLAGS, c.flags)
        .set_u16(config::MISS_SEND_LEN, c.miss_send_len);
    b.emit(out);
}

/// `ofp_table_mod` after the header.
mod table_mod {
    use super::Field;
    pub(super) const TABLE_ID: usize = 0;
    pub(super) const CONFIG: Field = 4..8;
    pub(super) const LEN: usize = 8;
}

/// TABLE_MOD: `(table_id, config)`. From OF1.4 properties may follow
/// (eviction, vacancy): this switch implements neither, so a TABLE_MOD that
/// carries one is refused with BAD_PROPERTY/BAD_TYPE rather than ignored.
pub(crate) fn parse_table_mod(v: Version, mut r: Reader<'_>) -> Result<(TableId, u32), OfpError> {
    if v >= Version::V1_4 {
        let b = r.fixed(table_mod::LEN)?;
        super::prop::for_each(r, |_, _| Err(OfpError::BadPropertyType))?;
        return Ok((TableId(b.u8(table_mod::TABLE_ID)), b.u32(table_mod::CONFIG)));
    }
    let b = r.exact(table_mod::LEN)?;
    Ok((TableId(b.u8(table_mod::TABLE_ID)), b.u32(table_mod::CONFIG)))
}

pub(crate) fn emit_table_mod(out: &mut Vec<u8>, table_id: TableId, config: u32) {
    let mut b = FieldsMut::<{ table_mod::LEN }>::new();
    b.set_u8(table_mod::TABLE_ID, table_id.0)
        .set_u32(table_mod::CONFIG, config);
    b.emit(out);
}

/// `ofp_queue_get_config_request` / the fixed part of its reply (port, pad 4).
mod queue_config {
    use super::Field;
    pub(super) const PORT: Field = 0..4;
    pub(super) const LEN: usize = 8;
}

/// QUEUE_GET_CONFIG request or (empty) reply: the port.
pub(crate) fn parse_queue_config(mut r: Reader<'_>) -> Result<PortNo, OfpError> {
    let b = r.exact(queue_config::LEN)?;
    Ok(PortNo(b.u32(queue_config::PORT)))
}

pub(crate) fn emit_queue_config(out: &mut Vec<u8>, port: PortNo) {
    let mut b = FieldsMut::<{ queue_config::LEN }>::new();
    b.set_u32(queue_config::PORT, port.0);
    b.emit(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(b: &[u8]) -> Reader<'_> {
        Reader::new(b, OfpError::BadLen)
    }

    #[test]
    fn fixed_bodies_round_trip_and_check_length() {
        let f = SwitchFeatures {
            datapath_id: DatapathId(0x0102_0304_0506_0708),
            n_buffers: 9,
            n_tables: 254,
            auxiliary_id: 1,
            capabilities: 0x4f,
            ports: vec![],
        };
        let mut out = Vec::new();
        emit_features(&mut out, &f);
        assert_eq!(out.len(), features::LEN);
        assert_eq!(parse_features(rd(&out)).unwrap(), f);
        assert_eq!(parse_features(rd(&out[1..])), Err(OfpError::BadLen));

        let c = SwitchConfig {
            flags: 1,
            miss_send_len: 0xffe5,
        };
        let mut out = Vec::new();
        emit_config(&mut out, &c);
        assert_eq!(parse_config(rd(&out)).unwrap(), c);

        let mut out = Vec::new();
        emit_table_mod(&mut out, TableId(3), 3);
        assert_eq!(
            parse_table_mod(Version::V1_3, rd(&out)).unwrap(),
            (TableId(3), 3)
        );
        assert_eq!(
            parse_table_mod(Version::V1_4, rd(&out)).unwrap(),
            (TableId(3), 3)
        );

        let mut out = Vec::new();
        emit_queue_config(&mut out, PortNo(7));
        assert_eq!(parse_queue_config(rd(&out)).unwrap(), PortNo(7));
    }
}
