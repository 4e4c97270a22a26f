//! Meters on the wire (OF1.3 layouts): METER_MOD and `ofp_meter_band_*`
//! (OF1.3.5 §7.3.4.4), and the OFPMP_METER / METER_CONFIG / METER_FEATURES
//! reply bodies (§7.3.5.12-14).

use super::error::OfpError;
use super::group::{emit_counter_pairs, parse_counter_pairs};
use super::message::{
    MeterBand, MeterConfig, MeterFeatures, MeterMod, MeterModCommand, MeterStats,
};
use super::wire::{patch_u16, Field, FieldsMut, Reader};
use crate::types::MeterId;

// OFPMBT_* numbers.
const MBT_DROP: u16 = 1;
const MBT_DSCP_REMARK: u16 = 2;
const MBT_EXPERIMENTER: u16 = 0xffff;

/// `ofp_meter_mod` after the header, before the bands.
mod meter_mod {
    use super::Field;
    pub(super) const COMMAND: Field = 0..2;
    pub(super) const FLAGS: Field = 2..4;
    pub(super) const METER_ID: Field = 4..8;
    pub(super) const LEN: usize = 8;
}

pub(crate) fn parse_mod(mut r: Reader<'_>) -> Result<MeterMod, OfpError> {
    use meter_mod as F;
    let b = r.fixed(F::LEN)?;
    let command = match b.u16(F::COMMAND) {
        0 => MeterModCommand::Add,
        1 => MeterModCommand::Modify,
        2 => MeterModCommand::Delete,
        _ => return Err(OfpError::BadMeterCommand),
    };
    Ok(MeterMod {
        command,
        flags: b.u16(F::FLAGS),
        meter_id: MeterId(b.u32(F::METER_ID)),
        bands: parse_bands(Reader::new(r.take_rest(), OfpError::BadBand))?,
    })
}

pub(crate) fn emit_mod(out: &mut Vec<u8>, m: &MeterMod) {
    use meter_mod as F;
    let command = match m.command {
        MeterModCommand::Add => 0,
        MeterModCommand::Modify => 1,
        MeterModCommand::Delete => 2,
    };
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(F::COMMAND, command)
        .set_u16(F::FLAGS, m.flags)
        .set_u32(F::METER_ID, m.meter_id.0);
    b.emit(out);
    emit_bands(out, &m.bands);
}

/// `ofp_meter_band_*`: a common header, then one type-specific word.
mod band {
    use super::Field;
    pub(super) const TYPE: Field = 0..2;
    pub(super) const LENGTH: Field = 2..4;
    pub(super) const RATE: Field = 4..8;
    pub(super) const BURST_SIZE: Field = 8..12;
    /// OFPMBT_DSCP_REMARK's prec_level.
    pub(super) const PREC_LEVEL: usize = 12;
    /// OFPMBT_EXPERIMENTER's experimenter id.
    pub(super) const EXPERIMENTER: Field = 12..16;
    pub(super) const LEN: usize = 16;
}

/// A band list spanning all of `r`. Bands are 16 bytes; longer experimenter
/// bands are accepted and their extra payload ignored. Anything malformed is
/// METER_MOD_FAILED/BAD_BAND.
pub(crate) fn parse_bands(mut r: Reader<'_>) -> Result<Vec<MeterBand>, OfpError> {
    use band as F;
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r.peek_u16(F::LENGTH.start).map_err(|_| OfpError::BadBand)? as usize;
        if len < F::LEN || !len.is_multiple_of(8) || len > r.remaining() {
            return Err(OfpError::BadBand);
        }
        let mut e = r.sub(len, OfpError::BadBand)?;
        let b = e.fixed(F::LEN)?;
        let (rate, burst_size) = (b.u32(F::RATE), b.u32(F::BURST_SIZE));
        out.push(match b.u16(F::TYPE) {
            MBT_DROP if len == F::LEN => MeterBand::Drop { rate, burst_size },
            MBT_DSCP_REMARK if len == F::LEN => MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level: b.u8(F::PREC_LEVEL),
            },
            MBT_EXPERIMENTER => MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter: b.u32(F::EXPERIMENTER),
            },
            _ => return Err(OfpError::BadBand),
        });
    }
    Ok(out)
}

pub(crate) fn emit_bands(out: &mut Vec<u8>, bands: &[MeterBand]) {
    use band as F;
    for bd in bands {
        let mut b = FieldsMut::<{ F::LEN }>::new();
        b.set_u16(F::LENGTH, F::LEN as u16);
        let (t, rate, burst) = match *bd {
            MeterBand::Drop { rate, burst_size } => (MBT_DROP, rate, burst_size),
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                b.set_u8(F::PREC_LEVEL, prec_level);
                (MBT_DSCP_REMARK, rate, burst_size)
            }
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
            } => {
                b.set_u32(F::EXPERIMENTER, experimenter);
                (MBT_EXPERIMENTER, rate, burst_size)
            }
        };
        b.set_u16(F::TYPE, t)
            .set_u32(F::RATE, rate)
            .set_u32(F::BURST_SIZE, burst);
        b.emit(out);
    }
}

/// `ofp_meter_stats` before its band counters (its length is at 4).
pub(crate) mod stats {
    use super::Field;
    pub(crate) const METER_ID: Field = 0..4;
    pub(crate) const LENGTH: Field = 4..6;
    pub(crate) const FLOW_COUNT: Field = 12..16;
    pub(crate) const PACKET_IN_COUNT: Field = 16..24;
    pub(crate) const BYTE_IN_COUNT: Field = 24..32;
    pub(crate) const DURATION_SEC: Field = 32..36;
    pub(crate) const DURATION_NSEC: Field = 36..40;
    pub(crate) const LEN: usize = 40;
}

/// One entry spanning all of `e`.
pub(crate) fn parse_stats(mut e: Reader<'_>) -> Result<MeterStats, OfpError> {
    use stats as F;
    let b = e.fixed(F::LEN)?;
    Ok(MeterStats {
        meter_id: MeterId(b.u32(F::METER_ID)),
        flow_count: b.u32(F::FLOW_COUNT),
        packet_in_count: b.u64(F::PACKET_IN_COUNT),
        byte_in_count: b.u64(F::BYTE_IN_COUNT),
        duration_sec: b.u32(F::DURATION_SEC),
        duration_nsec: b.u32(F::DURATION_NSEC),
        band_stats: parse_counter_pairs(e)?,
    })
}

pub(crate) fn emit_stats(out: &mut Vec<u8>, m: &MeterStats) {
    use stats as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::METER_ID, m.meter_id.0)
        .set_u32(F::FLOW_COUNT, m.flow_count)
        .set_u64(F::PACKET_IN_COUNT, m.packet_in_count)
        .set_u64(F::BYTE_IN_COUNT, m.byte_in_count)
        .set_u32(F::DURATION_SEC, m.duration_sec)
        .set_u32(F::DURATION_NSEC, m.duration_nsec);
    b.emit(out);
    emit_counter_pairs(out, &m.band_stats);
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
}

/// `ofp_meter_config` before its bands.
pub(crate) mod config {
    use super::Field;
    pub(crate) const LENGTH: Field = 0..2;
    pub(crate) const FLAGS: Field = 2..4;
    pub(crate) const METER_ID: Field = 4..8;
    pub(crate) const LEN: usize = 8;
}

/// One entry spanning all of `e`.
pub(crate) fn parse_config(mut e: Reader<'_>) -> Result<MeterConfig, OfpError> {
    use config as F;
    let b = e.fixed(F::LEN)?;
    Ok(MeterConfig {
        flags: b.u16(F::FLAGS),
        meter_id: MeterId(b.u32(F::METER_ID)),
        bands: parse_bands(Reader::new(e.take_rest(), OfpError::BadBand))?,
    })
}

pub(crate) fn emit_config(out: &mut Vec<u8>, m: &MeterConfig) {
    use config as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u16(F::FLAGS, m.flags)
        .set_u32(F::METER_ID, m.meter_id.0);
    b.emit(out);
    emit_bands(out, &m.bands);
    let len = out.len() - start;
    patch_u16(out, start + F::LENGTH.start, len as u16);
}

/// `ofp_meter_features`.
mod features {
    use super::Field;
    pub(super) const MAX_METER: Field = 0..4;
    pub(super) const BAND_TYPES: Field = 4..8;
    pub(super) const CAPABILITIES: Field = 8..12;
    pub(super) const MAX_BANDS: usize = 12;
    pub(super) const MAX_COLOR: usize = 13;
    pub(super) const LEN: usize = 16;
}

pub(crate) fn parse_features(mut r: Reader<'_>) -> Result<MeterFeatures, OfpError> {
    use features as F;
    let b = r.exact(F::LEN)?;
    Ok(MeterFeatures {
        max_meter: b.u32(F::MAX_METER),
        band_types: b.u32(F::BAND_TYPES),
        capabilities: b.u32(F::CAPABILITIES),
        max_bands: b.u8(F::MAX_BANDS),
        max_color: b.u8(F::MAX_COLOR),
    })
}

pub(crate) fn emit_features(out: &mut Vec<u8>, m: &MeterFeatures) {
    use features as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::MAX_METER, m.max_meter)
        .set_u32(F::BAND_TYPES, m.band_types)
        .set_u32(F::CAPABILITIES, m.capabilities)
        .set_u8(F::MAX_BANDS, m.max_bands)
        .set_u8(F::MAX_COLOR, m.max_color);
    b.emit(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(b: &[u8]) -> Reader<'_> {
        Reader::new(b, OfpError::BadLen)
    }

    fn bands() -> Vec<MeterBand> {
        vec![
            MeterBand::Drop {
                rate: 1,
                burst_size: 2,
            },
            MeterBand::DscpRemark {
                rate: 3,
                burst_size: 4,
                prec_level: 5,
            },
            MeterBand::Experimenter {
                rate: 6,
                burst_size: 7,
                experimenter: 8,
            },
        ]
    }

    #[test]
    fn meter_structures_round_trip() {
        let mm = MeterMod {
            command: MeterModCommand::Delete,
            flags: 9,
            meter_id: MeterId(10),
            bands: bands(),
        };
        let mut out = Vec::new();
        emit_mod(&mut out, &mm);
        assert_eq!(parse_mod(rd(&out)).unwrap(), mm);

        let ms = MeterStats {
            meter_id: MeterId(1),
            flow_count: 2,
            packet_in_count: 3,
            byte_in_count: 4,
            duration_sec: 5,
            duration_nsec: 6,
            band_stats: vec![(1, 2)],
        };
        let mut out = Vec::new();
        emit_stats(&mut out, &ms);
        assert_eq!(u16::from_be_bytes([out[4], out[5]]) as usize, out.len());
        assert_eq!(parse_stats(rd(&out)).unwrap(), ms);

        let mc = MeterConfig {
            flags: 1,
            meter_id: MeterId(2),
            bands: bands(),
        };
        let mut out = Vec::new();
        emit_config(&mut out, &mc);
        assert_eq!(parse_config(rd(&out)).unwrap(), mc);

        let mf = MeterFeatures {
            max_meter: 1,
            band_types: 6,
            capabilities: 0xf,
            max_bands: 4,
            max_color: 0,
        };
        let mut out = Vec::new();
        emit_features(&mut out, &mf);
        assert_eq!(parse_features(rd(&out)).unwrap(), mf);
    }
}
