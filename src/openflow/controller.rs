//! Messages about the controller connection itself: ERROR (OF1.3.5 §7.4.4),
//! EXPERIMENTER (§7.5.4), ROLE_REQUEST/REPLY (§7.3.9), GET_ASYNC_REPLY/
//! SET_ASYNC (§7.3.10, the OF1.3 bitmap layout, and OF1.4.1 §7.3.10's
//! property list) and OF1.4's ROLE_STATUS (§7.4.4).

use super::error::OfpError;
use super::message::{AsyncConfig, AsyncUpdate, ControllerRole, ErrorMsg, RoleMsg, RoleStatus};
use super::prop;
use super::wire::{Field, FieldsMut, Reader};

/// `ofp_error_msg` after the header, before its data.
mod error {
    use super::Field;
    pub(super) const TYPE: Field = 0..2;
    pub(super) const CODE: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

pub(crate) fn parse_error(mut r: Reader<'_>) -> Result<ErrorMsg, OfpError> {
    let b = r.fixed(error::LEN)?;
    Ok(ErrorMsg {
        err_type: b.u16(error::TYPE),
        code: b.u16(error::CODE),
        data: r.take_rest().to_vec(),
    })
}

/// The fixed part of an error (type, code); the caller appends the data.
pub(crate) fn emit_error_head(out: &mut Vec<u8>, err_type: u16, code: u16) {
    let mut b = FieldsMut::<{ error::LEN }>::new();
    b.set_u16(error::TYPE, err_type).set_u16(error::CODE, code);
    b.emit(out);
}

pub(crate) fn emit_error(out: &mut Vec<u8>, e: &ErrorMsg) {
    emit_error_head(out, e.err_type, e.code);
    out.extend_from_slice(&e.data);
}

/// `ofp_experimenter_header` after the header (also the head of an
/// OFPMP_EXPERIMENTER body).
pub(crate) mod experimenter {
    use super::Field;
    pub(crate) const EXPERIMENTER: Field = 0..4;
    pub(crate) const EXP_TYPE: Field = 4..8;
    pub(crate) const LEN: usize = 8;
}

/// `(experimenter, exp_type, data)`.
pub(crate) fn parse_experimenter(mut r: Reader<'_>) -> Result<(u32, u32, Vec<u8>), OfpError> {
    let b = r.fixed(experimenter::LEN)?;
    Ok((
        b.u32(experimenter::EXPERIMENTER),
        b.u32(experimenter::EXP_TYPE),
        r.take_rest().to_vec(),
    ))
}

pub(crate) fn emit_experimenter(out: &mut Vec<u8>, experimenter: u32, exp_type: u32, data: &[u8]) {
    let mut b = FieldsMut::<{ experimenter::LEN }>::new();
    b.set_u32(experimenter::EXPERIMENTER, experimenter)
        .set_u32(experimenter::EXP_TYPE, exp_type);
    b.emit(out);
    out.extend_from_slice(data);
}

/// `ofp_role_request` after the header.
mod role {
    use super::Field;
    pub(super) const ROLE: Field = 0..4;
    pub(super) const GENERATION_ID: Field = 8..16;
    pub(super) const LEN: usize = 16;
}

/// OFPCR_ROLE_* to our enum.
pub(crate) fn role_from_wire(n: u32) -> Option<ControllerRole> {
    Some(match n {
        0 => ControllerRole::NoChange,
        1 => ControllerRole::Equal,
        2 => ControllerRole::Master,
        3 => ControllerRole::Slave,
        _ => return None,
    })
}

pub(crate) fn role_to_wire(r: ControllerRole) -> u32 {
    match r {
        ControllerRole::NoChange => 0,
        ControllerRole::Equal => 1,
        ControllerRole::Master => 2,
        ControllerRole::Slave => 3,
    }
}

pub(crate) fn parse_role(mut r: Reader<'_>) -> Result<RoleMsg, OfpError> {
    let b = r.exact(role::LEN)?;
    Ok(RoleMsg {
        role: role_from_wire(b.u32(role::ROLE)).ok_or(OfpError::BadRole)?,
        generation_id: b.u64(role::GENERATION_ID),
    })
}

pub(crate) fn emit_role(out: &mut Vec<u8>, m: &RoleMsg) {
    let mut b = FieldsMut::<{ role::LEN }>::new();
    b.set_u32(role::ROLE, role_to_wire(m.role))
        .set_u64(role::GENERATION_ID, m.generation_id);
    b.emit(out);
}

/// `ofp_async_config` after the header (OF1.3: three pairs of bitmaps).
mod async_config {
    use super::Field;
    pub(super) const PACKET_IN_MASK: [Field; 2] = [0..4, 4..8];
    pub(super) const PORT_STATUS_MASK: [Field; 2] = [8..12, 12..16];
    pub(super) const FLOW_REMOVED_MASK: [Field; 2] = [16..20, 20..24];
    pub(super) const LEN: usize = 24;
}

pub(crate) fn parse_async(mut r: Reader<'_>) -> Result<AsyncConfig, OfpError> {
    use async_config as F;
    let b = r.exact(F::LEN)?;
    let pair = |f: [Field; 2]| f.map(|f| b.u32(f));
    Ok(AsyncConfig {
        packet_in_mask: pair(F::PACKET_IN_MASK),
        port_status_mask: pair(F::PORT_STATUS_MASK),
        flow_removed_mask: pair(F::FLOW_REMOVED_MASK),
    })
}

pub(crate) fn emit_async(out: &mut Vec<u8>, a: &AsyncConfig) {
    use async_config as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    for (fields, vals) in [
        (F::PACKET_IN_MASK, a.packet_in_mask),
        (F::PORT_STATUS_MASK, a.port_status_mask),
        (F::FLOW_REMOVED_MASK, a.flow_removed_mask),
    ] {
        for (f, v) in fields.into_iter().zip(vals) {
            b.set_u32(f, v);
        }
    }
    b.emit(out);
}

/// `ofp14_role_status` before its properties.
mod role_status {
    use super::Field;
    pub(super) const ROLE: Field = 0..4;
    pub(super) const REASON: usize = 4;
    pub(super) const GENERATION_ID: Field = 8..16;
    pub(super) const LEN: usize = 16;
}

pub(crate) fn parse_role_status(mut r: Reader<'_>) -> Result<RoleStatus, OfpError> {
    use role_status as F;
    let b = r.fixed(F::LEN)?;
    // Properties (only experimenter ones are defined) are skipped.
    prop::for_each(r, |_, _| Ok(()))?;
    Ok(RoleStatus {
        role: role_from_wire(b.u32(F::ROLE)).ok_or(OfpError::BadRole)?,
        reason: b.u8(F::REASON),
        generation_id: b.u64(F::GENERATION_ID),
    })
}

pub(crate) fn emit_role_status(out: &mut Vec<u8>, m: &RoleStatus) {
    use role_status as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::ROLE, role_to_wire(m.role))
        .set_u8(F::REASON, m.reason)
        .set_u64(F::GENERATION_ID, m.generation_id);
    b.emit(out);
}

/// OFPACPT_* property types of the OF1.4+ async configuration, in pairs
/// (slave, master) per kind of message.
mod async_prop {
    pub(super) const PACKET_IN_SLAVE: u16 = 0;
    pub(super) const FLOW_REMOVED_MASTER: u16 = 5;
    /// ROLE_STATUS .. REQUESTFORWARD (6..=11): messages whose masks we
    /// accept but do not model.
    pub(super) const LAST_KNOWN: u16 = 11;
    pub(super) const MASK: super::Field = 4..8;
    pub(super) const LEN: usize = 8;
}

/// An OF1.4+ SET_ASYNC / GET_ASYNC_REPLY property list.
pub(crate) fn parse_async14(r: Reader<'_>) -> Result<AsyncUpdate, OfpError> {
    let mut u = AsyncUpdate::default();
    prop::for_each(r, |t, p| {
        if t == prop::TYPE_EXPERIMENTER || t == prop::TYPE_EXPERIMENTER - 1 {
            return Err(OfpError::BadPropertyExperimenter);
        }
        if t > async_prop::LAST_KNOWN {
            return Err(OfpError::BadPropertyType);
        }
        let mask = prop::fixed(p, async_prop::LEN)?.u32(async_prop::MASK);
        if t <= async_prop::FLOW_REMOVED_MASTER {
            // Model index 0 is master/equal, 1 is slave.
            let idx = if t % 2 == 0 { 1 } else { 0 };
            let slot = match (t - async_prop::PACKET_IN_SLAVE) / 2 {
                0 => &mut u.packet_in_mask,
                1 => &mut u.port_status_mask,
                _ => &mut u.flow_removed_mask,
            };
            slot[idx] = Some(mask);
        }
        Ok(())
    })?;
    Ok(u)
}

/// Writes the six masks of `a` as OF1.4 properties.
pub(crate) fn emit_async14(out: &mut Vec<u8>, a: &AsyncConfig) {
    let mut t = async_prop::PACKET_IN_SLAVE;
    for pair in [a.packet_in_mask, a.port_status_mask, a.flow_removed_mask] {
        for mask in [pair[1], pair[0]] {
            prop::emit(out, t, |o| o.extend_from_slice(&mask.to_be_bytes()));
            t += 1;
        }
    }
}

/// An [`AsyncUpdate`] as properties (the masks it names).
pub(crate) fn emit_async_update14(out: &mut Vec<u8>, u: &AsyncUpdate) {
    let mut t = async_prop::PACKET_IN_SLAVE;
    for pair in [u.packet_in_mask, u.port_status_mask, u.flow_removed_mask] {
        for mask in [pair[1], pair[0]] {
            if let Some(m) = mask {
                prop::emit(out, t, |o| o.extend_from_slice(&m.to_be_bytes()));
            }
            t += 1;
        }
    }
}

/// The full configuration an OF1.4 GET_ASYNC_REPLY carries (every mask
/// present), or BAD_PROPERTY if one is missing.
pub(crate) fn full_config(u: &AsyncUpdate) -> Result<AsyncConfig, OfpError> {
    let both = |p: [Option<u32>; 2]| match p {
        [Some(a), Some(b)] => Ok([a, b]),
        _ => Err(OfpError::AsyncConfigInvalid),
    };
    Ok(AsyncConfig {
        packet_in_mask: both(u.packet_in_mask)?,
        port_status_mask: both(u.port_status_mask)?,
        flow_removed_mask: both(u.flow_removed_mask)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rd(b: &[u8]) -> Reader<'_> {
        Reader::new(b, OfpError::BadLen)
    }

    #[test]
    fn controller_bodies_round_trip() {
        let e = ErrorMsg {
            err_type: 4,
            code: 6,
            data: vec![1, 2, 3],
        };
        let mut out = Vec::new();
        emit_error(&mut out, &e);
        assert_eq!(parse_error(rd(&out)).unwrap(), e);

        let mut out = Vec::new();
        emit_experimenter(&mut out, 0x2320, 12, &[9, 9]);
        assert_eq!(
            parse_experimenter(rd(&out)).unwrap(),
            (0x2320, 12, vec![9, 9])
        );

        for role in [
            ControllerRole::NoChange,
            ControllerRole::Equal,
            ControllerRole::Master,
            ControllerRole::Slave,
        ] {
            let m = RoleMsg {
                role,
                generation_id: 77,
            };
            let mut out = Vec::new();
            emit_role(&mut out, &m);
            assert_eq!(parse_role(rd(&out)).unwrap(), m);
        }

        let a = AsyncConfig {
            packet_in_mask: [1, 2],
            port_status_mask: [3, 4],
            flow_removed_mask: [5, 6],
        };
        let mut out = Vec::new();
        emit_async(&mut out, &a);
        assert_eq!(parse_async(rd(&out)).unwrap(), a);
        assert_eq!(parse_async(rd(&out[..23])), Err(OfpError::BadLen));

        let mut out = Vec::new();
        emit_async14(&mut out, &a);
        assert_eq!(full_config(&parse_async14(rd(&out)).unwrap()), Ok(a));
        let u = AsyncUpdate {
            port_status_mask: [None, Some(7)],
            ..AsyncUpdate::default()
        };
        let mut out = Vec::new();
        emit_async_update14(&mut out, &u);
        assert_eq!(out.len(), 8);
        assert_eq!(parse_async14(rd(&out)).unwrap(), u);
        let mut c = AsyncConfig::default();
        u.apply(&mut c);
        assert_eq!(c.port_status_mask, [0x7, 7]);

        let rs = RoleStatus {
            role: ControllerRole::Slave,
            reason: 0,
            generation_id: 9,
        };
        let mut out = Vec::new();
        emit_role_status(&mut out, &rs);
        assert_eq!(parse_role_status(rd(&out)).unwrap(), rs);
    }
}
