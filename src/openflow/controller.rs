//! Messages about the controller connection itself: ERROR (OF1.3.5 §7.4.4),
//! EXPERIMENTER (§7.5.4), ROLE_REQUEST/REPLY (§7.3.9) and GET_ASYNC_REPLY/
//! SET_ASYNC (§7.3.10, the OF1.3 bitmap layout).

use super::error::OfpError;
use super::message::{AsyncConfig, ControllerRole, ErrorMsg, RoleMsg};
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
    }
}
