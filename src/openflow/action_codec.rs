//! Actions, instructions, group buckets and meter bands on the wire.
//!
//! All of these are TLV lists whose elements are 8-byte aligned. A list is parsed
//! strictly: a length that is not a multiple of 8, shorter than the element's fixed
//! part or past the end of the list is reported with the BAD_LEN code of the list's
//! kind (BAD_ACTION, BAD_INSTRUCTION, GROUP_MOD_FAILED/BAD_BUCKET, METER_MOD_FAILED/
//! BAD_BAND), so the controller learns which part of its request was wrong.

use super::action::{Action, Instruction};
use super::error::OfpError;
use super::match_codec::{decode_oxm, encode_oxm, SET_FIELD_ERRORS};
use super::wire::{
    pad8, pad_to_8, patch_u16, put_u16, put_u32, put_u64, put_u8, put_zeros, Reader,
};
use crate::types::{GroupId, MeterId, PortNo, TableId};

// OFPAT_* numbers.
const AT_OUTPUT: u16 = 0;
const AT_COPY_TTL_OUT: u16 = 11;
const AT_COPY_TTL_IN: u16 = 12;
const AT_SET_MPLS_TTL: u16 = 15;
const AT_DEC_MPLS_TTL: u16 = 16;
const AT_PUSH_VLAN: u16 = 17;
const AT_POP_VLAN: u16 = 18;
const AT_PUSH_MPLS: u16 = 19;
const AT_POP_MPLS: u16 = 20;
const AT_SET_QUEUE: u16 = 21;
const AT_GROUP: u16 = 22;
const AT_SET_NW_TTL: u16 = 23;
const AT_DEC_NW_TTL: u16 = 24;
const AT_SET_FIELD: u16 = 25;
const AT_PUSH_PBB: u16 = 26;
const AT_POP_PBB: u16 = 27;
const AT_EXPERIMENTER: u16 = 0xffff;

// OFPIT_* numbers.
const IT_GOTO_TABLE: u16 = 1;
const IT_WRITE_METADATA: u16 = 2;
const IT_WRITE_ACTIONS: u16 = 3;
const IT_APPLY_ACTIONS: u16 = 4;
const IT_CLEAR_ACTIONS: u16 = 5;
const IT_METER: u16 = 6;
const IT_EXPERIMENTER: u16 = 0xffff;

/// Split the next TLV (type, len) off `r`: returns its type and a reader over the
/// whole element (header included). `min` is the smallest legal length.
fn next_tlv<'a>(
    r: &mut Reader<'a>,
    min: usize,
    bad_len: OfpError,
) -> Result<(u16, Reader<'a>), OfpError> {
    let t = r.peek_u16(0).map_err(|_| bad_len)?;
    let len = r.peek_u16(2).map_err(|_| bad_len)? as usize;
    if len < min || !len.is_multiple_of(8) || len > r.remaining() {
        return Err(bad_len);
    }
    let mut e = r.sub(len, bad_len)?;
    e.skip(4)?;
    Ok((t, e))
}

/// Decode one action whose 4-byte header has been consumed from `e` (which spans
/// exactly the action).
fn decode_action(t: u16, e: &mut Reader<'_>) -> Result<Action, OfpError> {
    use OfpError::BadActionLen;
    // Total length of the element, header included.
    let len = e.remaining() + 4;
    let fixed = |want: usize| {
        if len == want {
            Ok(())
        } else {
            Err(BadActionLen)
        }
    };
    let a = match t {
        AT_OUTPUT => {
            fixed(16)?;
            let port = PortNo(e.u32()?);
            let max_len = e.u16()?;
            Action::Output { port, max_len }
        }
        AT_COPY_TTL_OUT => fixed(8).map(|_| Action::CopyTtlOut)?,
        AT_COPY_TTL_IN => fixed(8).map(|_| Action::CopyTtlIn)?,
        AT_SET_MPLS_TTL => {
            fixed(8)?;
            Action::SetMplsTtl(e.u8()?)
        }
        AT_DEC_MPLS_TTL => fixed(8).map(|_| Action::DecMplsTtl)?,
        AT_PUSH_VLAN => {
            fixed(8)?;
            Action::PushVlan(e.u16()?)
        }
        AT_POP_VLAN => fixed(8).map(|_| Action::PopVlan)?,
        AT_PUSH_MPLS => {
            fixed(8)?;
            Action::PushMpls(e.u16()?)
        }
        AT_POP_MPLS => {
            fixed(8)?;
            Action::PopMpls(e.u16()?)
        }
        AT_SET_QUEUE => {
            fixed(8)?;
            Action::SetQueue(e.u32()?)
        }
        AT_GROUP => {
            fixed(8)?;
            Action::Group(GroupId(e.u32()?))
        }
        AT_SET_NW_TTL => {
            fixed(8)?;
            Action::SetNwTtl(e.u8()?)
        }
        AT_DEC_NW_TTL => fixed(8).map(|_| Action::DecNwTtl)?,
        AT_PUSH_PBB => {
            fixed(8)?;
            Action::PushPbb(e.u16()?)
        }
        AT_POP_PBB => fixed(8).map(|_| Action::PopPbb)?,
        AT_SET_FIELD => {
            let mut oxm = *e;
            let f = decode_oxm(&mut oxm, &SET_FIELD_ERRORS)?;
            if f.mask.is_some() {
                return Err(OfpError::BadSetArgument);
            }
            // The OXM plus the action header, padded to 8, is the whole action.
            if pad8(4 + 4 + f.id.wire_len()) != len {
                return Err(OfpError::BadSetLen);
            }
            Action::SetField(f)
        }
        AT_EXPERIMENTER => {
            // We implement no experimenter actions; the id is read only to
            // validate the length before reporting that.
            e.u32()?;
            return Err(OfpError::BadActionExperimenter);
        }
        _ => return Err(OfpError::BadActionType),
    };
    Ok(a)
}

/// Parse an action list that spans all of `r`.
pub(crate) fn decode_actions(mut r: Reader<'_>) -> Result<Vec<Action>, OfpError> {
    let mut out = Vec::with_capacity(r.remaining() / 8);
    while !r.is_empty() {
        let (t, mut e) = next_tlv(&mut r, 8, OfpError::BadActionLen)?;
        out.push(decode_action(t, &mut e)?);
    }
    Ok(out)
}

/// Append one action.
pub(crate) fn encode_action(out: &mut Vec<u8>, a: &Action) {
    let start = out.len();
    let simple = |out: &mut Vec<u8>, t: u16| {
        put_u16(out, t);
        put_u16(out, 8);
        put_zeros(out, 4);
    };
    let with_u8 = |out: &mut Vec<u8>, t: u16, v: u8| {
        put_u16(out, t);
        put_u16(out, 8);
        put_u8(out, v);
        put_zeros(out, 3);
    };
    let with_u16 = |out: &mut Vec<u8>, t: u16, v: u16| {
        put_u16(out, t);
        put_u16(out, 8);
        put_u16(out, v);
        put_zeros(out, 2);
    };
    let with_u32 = |out: &mut Vec<u8>, t: u16, v: u32| {
        put_u16(out, t);
        put_u16(out, 8);
        put_u32(out, v);
    };
    match a {
        Action::Output { port, max_len } => {
            put_u16(out, AT_OUTPUT);
            put_u16(out, 16);
            put_u32(out, port.0);
            put_u16(out, *max_len);
            put_zeros(out, 6);
        }
        Action::CopyTtlOut => simple(out, AT_COPY_TTL_OUT),
        Action::CopyTtlIn => simple(out, AT_COPY_TTL_IN),
        Action::SetMplsTtl(v) => with_u8(out, AT_SET_MPLS_TTL, *v),
        Action::DecMplsTtl => simple(out, AT_DEC_MPLS_TTL),
        Action::PushVlan(v) => with_u16(out, AT_PUSH_VLAN, *v),
        Action::PopVlan => simple(out, AT_POP_VLAN),
        Action::PushMpls(v) => with_u16(out, AT_PUSH_MPLS, *v),
        Action::PopMpls(v) => with_u16(out, AT_POP_MPLS, *v),
        Action::SetQueue(v) => with_u32(out, AT_SET_QUEUE, *v),
        Action::Group(g) => with_u32(out, AT_GROUP, g.0),
        Action::SetNwTtl(v) => with_u8(out, AT_SET_NW_TTL, *v),
        Action::DecNwTtl => simple(out, AT_DEC_NW_TTL),
        Action::PushPbb(v) => with_u16(out, AT_PUSH_PBB, *v),
        Action::PopPbb => simple(out, AT_POP_PBB),
        Action::SetField(f) => {
            put_u16(out, AT_SET_FIELD);
            put_u16(out, 0);
            // Set-field is never masked in OpenFlow 1.3.
            encode_oxm(out, &super::oxm::OxmField::exact(f.id, f.value));
            pad_to_8(out, start);
            let len = out.len() - start;
            patch_u16(out, start + 2, len as u16);
        }
        Action::Experimenter { experimenter, data } => {
            put_u16(out, AT_EXPERIMENTER);
            put_u16(out, 0);
            put_u32(out, *experimenter);
            out.extend_from_slice(data);
            pad_to_8(out, start);
            let len = out.len() - start;
            patch_u16(out, start + 2, len as u16);
        }
    }
}

/// Append an action list.
pub(crate) fn encode_actions(out: &mut Vec<u8>, actions: &[Action]) {
    for a in actions {
        encode_action(out, a);
    }
}

/// Parse an instruction list that spans all of `r`.
pub(crate) fn decode_instructions(mut r: Reader<'_>) -> Result<Vec<Instruction>, OfpError> {
    use OfpError::BadInstructionLen;
    let mut out = Vec::with_capacity(4);
    while !r.is_empty() {
        let (t, mut e) = next_tlv(&mut r, 8, BadInstructionLen)?;
        let len = e.remaining() + 4;
        let fixed = |want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(BadInstructionLen)
            }
        };
        let i = match t {
            IT_GOTO_TABLE => {
                fixed(8)?;
                Instruction::GotoTable(TableId(e.u8()?))
            }
            IT_WRITE_METADATA => {
                fixed(24)?;
                e.skip(4)?;
                let value = e.u64()?;
                let mask = e.u64()?;
                Instruction::WriteMetadata { value, mask }
            }
            IT_WRITE_ACTIONS | IT_APPLY_ACTIONS => {
                e.skip(4)?;
                let actions = decode_actions(Reader::new(e.take_rest(), OfpError::BadActionLen))?;
                if t == IT_WRITE_ACTIONS {
                    Instruction::WriteActions(actions)
                } else {
                    Instruction::ApplyActions(actions)
                }
            }
            IT_CLEAR_ACTIONS => fixed(8).map(|_| Instruction::ClearActions)?,
            IT_METER => {
                fixed(8)?;
                Instruction::Meter(MeterId(e.u32()?))
            }
            IT_EXPERIMENTER => {
                e.u32()?;
                return Err(OfpError::BadInstructionExperimenter);
            }
            _ => return Err(OfpError::UnknownInstruction),
        };
        out.push(i);
    }
    Ok(out)
}

/// Append an instruction list.
pub(crate) fn encode_instructions(out: &mut Vec<u8>, insts: &[Instruction]) {
    for i in insts {
        let start = out.len();
        match i {
            Instruction::GotoTable(t) => {
                put_u16(out, IT_GOTO_TABLE);
                put_u16(out, 8);
                put_u8(out, t.0);
                put_zeros(out, 3);
            }
            Instruction::WriteMetadata { value, mask } => {
                put_u16(out, IT_WRITE_METADATA);
                put_u16(out, 24);
                put_zeros(out, 4);
                put_u64(out, *value);
                put_u64(out, *mask);
            }
            Instruction::WriteActions(a) | Instruction::ApplyActions(a) => {
                let t = if matches!(i, Instruction::WriteActions(_)) {
                    IT_WRITE_ACTIONS
                } else {
                    IT_APPLY_ACTIONS
                };
                put_u16(out, t);
                put_u16(out, 0);
                put_zeros(out, 4);
                encode_actions(out, a);
                let len = out.len() - start;
                patch_u16(out, start + 2, len as u16);
            }
            Instruction::ClearActions => {
                put_u16(out, IT_CLEAR_ACTIONS);
                put_u16(out, 8);
                put_zeros(out, 4);
            }
            Instruction::Meter(m) => {
                put_u16(out, IT_METER);
                put_u16(out, 8);
                put_u32(out, m.0);
            }
            Instruction::Experimenter { experimenter, data } => {
                put_u16(out, IT_EXPERIMENTER);
                put_u16(out, 0);
                put_u32(out, *experimenter);
                out.extend_from_slice(data);
                pad_to_8(out, start);
                let len = out.len() - start;
                patch_u16(out, start + 2, len as u16);
            }
        }
    }
}

/// OFPAT_METER (OF1.5.1 §7.2.5.15): OpenFlow 1.5 replaced the meter
/// instruction with this action.
const AT15_METER: u16 = 29;
/// Size of OFPAT_METER.
const AT15_METER_LEN: usize = 8;

/// An OF1.5 instruction list: a leading OFPAT_METER action of an
/// apply-actions instruction becomes the model's [`Instruction::Meter`]
/// (ahead of the apply-actions, which is dropped if the meter was all it
/// held); OFPIT_METER itself is not an OF1.5 instruction (UNKNOWN_INST, as
/// Open vSwitch answers).
pub(crate) fn decode_instructions15(r: Reader<'_>) -> Result<Vec<Instruction>, OfpError> {
    let raw = r.rest();
    // Find OFPIT_METER at the top level first: it does not exist in 1.5.
    let mut scan = Reader::new(raw, OfpError::BadInstructionLen);
    let mut out = Vec::with_capacity(4);
    while !scan.is_empty() {
        let (t, mut e) = next_tlv(&mut scan, 8, OfpError::BadInstructionLen)?;
        match t {
            IT_METER => return Err(OfpError::UnknownInstruction),
            IT_APPLY_ACTIONS if e.remaining() >= 4 + AT15_METER_LEN => {
                e.skip(4)?;
                let acts = e.take_rest();
                let first = u16::from_be_bytes([acts[0], acts[1]]);
                let len = u16::from_be_bytes([acts[2], acts[3]]) as usize;
                if first == AT15_METER && len == AT15_METER_LEN {
                    let id = u32::from_be_bytes([acts[4], acts[5], acts[6], acts[7]]);
                    out.push(Instruction::Meter(MeterId(id)));
                    let rest = decode_actions(Reader::new(
                        &acts[AT15_METER_LEN..],
                        OfpError::BadActionLen,
                    ))?;
                    if !rest.is_empty() {
                        out.push(Instruction::ApplyActions(rest));
                    }
                    continue;
                }
                out.push(Instruction::ApplyActions(decode_actions(Reader::new(
                    acts,
                    OfpError::BadActionLen,
                ))?));
            }
            _ => {
                // Re-parse this one instruction with the OF1.3 rules.
                let mut one = Vec::new();
                encode_raw_tlv(&mut one, t, e.rest());
                out.extend(decode_instructions(Reader::new(
                    &one,
                    OfpError::BadInstructionLen,
                ))?);
            }
        }
    }
    Ok(out)
}

/// Re-frames a TLV whose 4-byte header was consumed.
fn encode_raw_tlv(out: &mut Vec<u8>, t: u16, body: &[u8]) {
    put_u16(out, t);
    put_u16(out, (4 + body.len()) as u16);
    out.extend_from_slice(body);
}

/// Writes instructions for OF1.5: a meter instruction becomes an OFPAT_METER
/// action at the head of an apply-actions instruction written where the
/// meter instruction stands (merged with the list's apply-actions, if it
/// has one), so that decoding gives the same order back.
pub(crate) fn encode_instructions15(out: &mut Vec<u8>, insts: &[Instruction]) {
    let Some(m) = insts.iter().find_map(|i| match i {
        Instruction::Meter(m) => Some(*m),
        _ => None,
    }) else {
        return encode_instructions(out, insts);
    };
    let apply = insts.iter().find_map(|i| match i {
        Instruction::ApplyActions(a) => Some(a),
        _ => None,
    });
    let mut met = false;
    for i in insts {
        match i {
            Instruction::Meter(_) if !met => {
                met = true;
                let start = out.len();
                put_u16(out, IT_APPLY_ACTIONS);
                put_u16(out, 0);
                put_zeros(out, 4);
                put_u16(out, AT15_METER);
                put_u16(out, AT15_METER_LEN as u16);
                put_u32(out, m.0);
                if let Some(a) = apply {
                    encode_actions(out, a);
                }
                let len = out.len() - start;
                patch_u16(out, start + 2, len as u16);
            }
            Instruction::Meter(_) | Instruction::ApplyActions(_) => {}
            other => encode_instructions(out, std::slice::from_ref(other)),
        }
    }
}
