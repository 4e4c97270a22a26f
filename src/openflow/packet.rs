//! Packets between switch and controller: PACKET_IN (OF1.3.5 §7.4.1, the same
//! in OF1.4 and OF1.5) and PACKET_OUT (§7.3.7; OF1.5.1 §7.3.8 replaces
//! `in_port` with a match that carries it).

use super::action_codec::{decode_actions, encode_actions};
use super::error::OfpError;
use super::match_codec::{decode_match, encode_match};
use super::message::{PacketIn, PacketOut};
use super::oxm::{Match, OxmField, OxmId};
use super::wire::{patch_u16, put_zeros, Field, FieldsMut, Reader};
use crate::types::{Cookie, PortNo, TableId};

/// `ofp_packet_in` after the header, before the match.
mod packet_in {
    use super::Field;
    pub(super) const BUFFER_ID: Field = 0..4;
    pub(super) const TOTAL_LEN: Field = 4..6;
    pub(super) const REASON: usize = 6;
    pub(super) const TABLE_ID: usize = 7;
    pub(super) const COOKIE: Field = 8..16;
    pub(super) const LEN: usize = 16;
    /// Padding between the match and the frame, so that the frame's IP
    /// header is 4-byte aligned.
    pub(super) const PAD_AFTER_MATCH: usize = 2;
}

pub(crate) fn parse_in(mut r: Reader<'_>) -> Result<PacketIn, OfpError> {
    use packet_in as F;
    let b = r.fixed(F::LEN)?;
    let match_ = decode_match(&mut r)?;
    r.skip(F::PAD_AFTER_MATCH)?;
    Ok(PacketIn {
        buffer_id: b.u32(F::BUFFER_ID),
        total_len: b.u16(F::TOTAL_LEN),
        reason: b.u8(F::REASON),
        table_id: TableId(b.u8(F::TABLE_ID)),
        cookie: Cookie(b.u64(F::COOKIE)),
        match_,
        data: r.take_rest().to_vec(),
    })
}

pub(crate) fn emit_in(out: &mut Vec<u8>, p: &PacketIn) {
    use packet_in as F;
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::BUFFER_ID, p.buffer_id)
        .set_u16(F::TOTAL_LEN, p.total_len)
        .set_u8(F::REASON, p.reason)
        .set_u8(F::TABLE_ID, p.table_id.0)
        .set_u64(F::COOKIE, p.cookie.0);
    b.emit(out);
    encode_match(out, &p.match_);
    put_zeros(out, F::PAD_AFTER_MATCH);
    out.extend_from_slice(&p.data);
}

/// `ofp_packet_out` after the header, before the actions.
mod packet_out {
    use super::Field;
    pub(super) const BUFFER_ID: Field = 0..4;
    pub(super) const IN_PORT: Field = 4..8;
    pub(super) const ACTIONS_LEN: Field = 8..10;
    pub(super) const LEN: usize = 16;
}

pub(crate) fn parse_out(mut r: Reader<'_>) -> Result<PacketOut, OfpError> {
    use packet_out as F;
    let b = r.fixed(F::LEN)?;
    let acts = r.sub(b.u16(F::ACTIONS_LEN) as usize, OfpError::BadLen)?;
    let actions = decode_actions(Reader::new(acts.rest(), OfpError::BadActionLen))?;
    Ok(PacketOut {
        buffer_id: b.u32(F::BUFFER_ID),
        in_port: PortNo(b.u32(F::IN_PORT)),
        actions,
        data: r.take_rest().to_vec(),
    })
}

pub(crate) fn emit_out(out: &mut Vec<u8>, p: &PacketOut) {
    use packet_out as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::BUFFER_ID, p.buffer_id)
        .set_u32(F::IN_PORT, p.in_port.0);
    b.emit(out);
    encode_actions(out, &p.actions);
    let alen = out.len() - start - F::LEN;
    patch_u16(out, start + F::ACTIONS_LEN.start, alen as u16);
    out.extend_from_slice(&p.data);
}

/// `ofp15_packet_out` after the header, before the match.
mod packet_out15 {
    use super::Field;
    pub(super) const BUFFER_ID: Field = 0..4;
    pub(super) const ACTIONS_LEN: Field = 4..6;
    pub(super) const LEN: usize = 8;
}

/// OF1.5 PACKET_OUT: the match may name only `in_port` (the model has no
/// other packet metadata), anything else is BAD_MATCH/BAD_FIELD; a match
/// without `in_port` means OFPP_CONTROLLER, as in Open vSwitch.
pub(crate) fn parse_out15(mut r: Reader<'_>) -> Result<PacketOut, OfpError> {
    use packet_out15 as F;
    let b = r.fixed(F::LEN)?;
    let m = decode_match(&mut r)?;
    let mut in_port = PortNo::CONTROLLER;
    for f in &m.fields {
        match f.id {
            OxmId::InPort => in_port = PortNo(f.value as u32),
            _ => return Err(OfpError::BadField),
        }
    }
    let acts = r.sub(b.u16(F::ACTIONS_LEN) as usize, OfpError::BadLen)?;
    let actions = decode_actions(Reader::new(acts.rest(), OfpError::BadActionLen))?;
    Ok(PacketOut {
        buffer_id: b.u32(F::BUFFER_ID),
        in_port,
        actions,
        data: r.take_rest().to_vec(),
    })
}

pub(crate) fn emit_out15(out: &mut Vec<u8>, p: &PacketOut) {
    use packet_out15 as F;
    let start = out.len();
    let mut b = FieldsMut::<{ F::LEN }>::new();
    b.set_u32(F::BUFFER_ID, p.buffer_id);
    b.emit(out);
    encode_match(
        out,
        &Match {
            fields: vec![OxmField::in_port(p.in_port)],
        },
    );
    let actions_start = out.len();
    encode_actions(out, &p.actions);
    let alen = out.len() - actions_start;
    patch_u16(out, start + F::ACTIONS_LEN.start, alen as u16);
    out.extend_from_slice(&p.data);
}

#[cfg(test)]
mod tests {
    use super::super::action::Action;
    use super::*;

    #[test]
    fn packet_messages_round_trip() {
        let pin = PacketIn {
            buffer_id: u32::MAX,
            total_len: 60,
            reason: 1,
            table_id: TableId(2),
            cookie: Cookie(3),
            match_: Match {
                fields: vec![OxmField::in_port(PortNo(4))],
            },
            data: vec![0xab; 60],
        };
        let mut out = Vec::new();
        emit_in(&mut out, &pin);
        assert_eq!(parse_in(Reader::new(&out, OfpError::BadLen)).unwrap(), pin);

        let po = PacketOut {
            buffer_id: u32::MAX,
            in_port: PortNo::CONTROLLER,
            actions: vec![Action::Output {
                port: PortNo(1),
                max_len: 0,
            }],
            data: vec![1, 2, 3],
        };
        let mut out = Vec::new();
        emit_out(&mut out, &po);
        assert_eq!(u16::from_be_bytes([out[8], out[9]]), 16);
        assert_eq!(parse_out(Reader::new(&out, OfpError::BadLen)).unwrap(), po);
        let mut out = Vec::new();
        emit_out15(&mut out, &po);
        assert_eq!(
            parse_out15(Reader::new(&out, OfpError::BadLen)).unwrap(),
            po
        );
    }
}
