//! Bundles (OF1.4.1 §7.3.9): OFPT_BUNDLE_CONTROL and OFPT_BUNDLE_ADD_MESSAGE,
//! natively from OpenFlow 1.4 and as the ONF extension on OpenFlow 1.3
//! (experimenter 0x4F4E4600, ONF_ET_BUNDLE_CONTROL 2300 and
//! ONF_ET_BUNDLE_ADD_MESSAGE 2301, what `ovs-ofctl -O OpenFlow13 --bundle`
//! sends). Both carry `ofp14_bundle_ctrl_msg` then, for an add, the
//! message to add (decoded with the session's version rules), then
//! properties.
//!
//! Only the wire is here; holding bundles open, validating and committing
//! them is ofproto's work.

use super::error::OfpError;
use super::framing::{header, Version, HEADER_LEN};
use super::message::{
    BundleAdd, BundleCtrl, BundleCtrlType, Message, OfpMsg, BF_ATOMIC, BF_ORDERED,
};
use super::prop;
use super::wire::{Field, FieldsMut, Reader};

/// ONF_ET_BUNDLE_CONTROL.
pub(crate) const ONF_ET_BUNDLE_CONTROL: u32 = 2300;
/// ONF_ET_BUNDLE_ADD_MESSAGE.
pub(crate) const ONF_ET_BUNDLE_ADD_MESSAGE: u32 = 2301;

/// `ofp14_bundle_ctrl_msg` after the header.
mod ctrl {
    use super::Field;
    pub(super) const BUNDLE_ID: Field = 0..4;
    /// OFPBCT_* (unused, zero, in an add).
    pub(super) const TYPE: Field = 4..6;
    pub(super) const FLAGS: Field = 6..8;
    pub(super) const LEN: usize = 8;
}

fn type_from_wire(t: u16) -> Result<BundleCtrlType, OfpError> {
    use BundleCtrlType::*;
    Ok(match t {
        0 => OpenRequest,
        1 => OpenReply,
        2 => CloseRequest,
        3 => CloseReply,
        4 => CommitRequest,
        5 => CommitReply,
        6 => DiscardRequest,
        7 => DiscardReply,
        _ => return Err(OfpError::BundleBadType),
    })
}

fn type_to_wire(t: BundleCtrlType) -> u16 {
    use BundleCtrlType::*;
    match t {
        OpenRequest => 0,
        OpenReply => 1,
        CloseRequest => 2,
        CloseReply => 3,
        CommitRequest => 4,
        CommitReply => 5,
        DiscardRequest => 6,
        DiscardReply => 7,
    }
}

fn check_flags(flags: u16) -> Result<u16, OfpError> {
    if flags & !(BF_ATOMIC | BF_ORDERED) != 0 {
        Err(OfpError::BundleBadFlags)
    } else {
        Ok(flags)
    }
}

/// Properties: the only ones defined are experimenter properties (and
/// OF1.5's OFPBPT_TIME for scheduled bundles); none is implemented, so any
/// is refused rather than ignored.
fn no_props(r: Reader<'_>) -> Result<(), OfpError> {
    prop::for_each(r, |t, _| {
        Err(if t == prop::TYPE_EXPERIMENTER {
            OfpError::BadPropertyExperimenter
        } else {
            OfpError::BadPropertyType
        })
    })
}

/// A BUNDLE_CONTROL body.
pub(crate) fn parse_ctrl(mut r: Reader<'_>) -> Result<BundleCtrl, OfpError> {
    let b = r.fixed(ctrl::LEN)?;
    let c = BundleCtrl {
        bundle_id: b.u32(ctrl::BUNDLE_ID),
        ctrl_type: type_from_wire(b.u16(ctrl::TYPE))?,
        flags: check_flags(b.u16(ctrl::FLAGS))?,
    };
    no_props(r)?;
    Ok(c)
}

pub(crate) fn emit_ctrl(out: &mut Vec<u8>, c: &BundleCtrl) {
    let mut b = FieldsMut::<{ ctrl::LEN }>::new();
    b.set_u32(ctrl::BUNDLE_ID, c.bundle_id)
        .set_u16(ctrl::TYPE, type_to_wire(c.ctrl_type))
        .set_u16(ctrl::FLAGS, c.flags);
    b.emit(out);
}

/// A BUNDLE_ADD_MESSAGE body in a session of version `v` whose outer
/// message has `xid`. The inner message must be a whole message of the same
/// version and xid (else OFPBFC_MSG_BAD_LEN / BAD_VERSION /
/// OFPBFC_MSG_BAD_XID, as Open vSwitch checks); it decodes with the same
/// rules as a message on its own, and its error is reported as is. A bundle
/// message inside a bundle is OFPBFC_MSG_UNSUP (which also bounds the
/// nesting, so no input can recurse deeply).
///
/// `decode_inner` is the session's message decoder (`codec::decode_in` for
/// `v`): passed in, because the codec that dispatches to this module is the
/// one that knows every message, and a bundle module calling back into it
/// would make the two depend on each other.
pub(crate) fn parse_add(
    v: Version,
    xid: u32,
    mut r: Reader<'_>,
    decode_inner: impl FnOnce(&[u8]) -> Result<OfpMsg, OfpError>,
) -> Result<BundleAdd, OfpError> {
    let b = r.fixed(ctrl::LEN)?;
    let h = header(r.rest()).ok_or(OfpError::BundleMsgBadLen)?;
    let len = h.length as usize;
    if len < HEADER_LEN || len > r.remaining() {
        return Err(OfpError::BundleMsgBadLen);
    }
    if h.version != v.0 {
        return Err(OfpError::BadVersion);
    }
    if h.xid != xid {
        return Err(OfpError::BundleMsgBadXid);
    }
    let inner = r.bytes(len)?;
    let message = decode_inner(inner)?;
    if matches!(
        message.body,
        Message::BundleAdd(_) | Message::BundleControl(_) | Message::Hello { .. }
    ) {
        return Err(OfpError::BundleMsgUnsup);
    }
    // Padding to 8 comes before properties only if there are any.
    if !r.is_empty() {
        let pad = super::wire::pad8(len) - len;
        r.skip(pad.min(r.remaining()))?;
        no_props(r)?;
    }
    Ok(BundleAdd {
        bundle_id: b.u32(ctrl::BUNDLE_ID),
        flags: check_flags(b.u16(ctrl::FLAGS))?,
        message: Box::new(message),
    })
}

/// Appends an add's fixed part and inner message, encoded by
/// `encode_inner` (the session's `codec::encode_in`; see [`parse_add`]).
pub(crate) fn emit_add(
    out: &mut Vec<u8>,
    a: &BundleAdd,
    encode_inner: impl FnOnce(&OfpMsg, &mut Vec<u8>) -> Result<(), super::framing::EncodeError>,
) -> Result<(), super::framing::EncodeError> {
    let mut b = FieldsMut::<{ ctrl::LEN }>::new();
    b.set_u32(ctrl::BUNDLE_ID, a.bundle_id)
        .set_u16(ctrl::FLAGS, a.flags);
    b.emit(out);
    encode_inner(&a.message, out)
}

#[cfg(test)]
mod tests {
    use super::super::codec::{decode_in, encode_to_vec_in, msg_type14};
    use super::super::message::OfpMsg;
    use super::*;

    #[test]
    fn bundle_messages_round_trip_and_check_the_inner_message() {
        for v in [Version::V1_3, Version::V1_4, Version::V1_5] {
            let c = OfpMsg {
                xid: 5,
                body: Message::BundleControl(BundleCtrl {
                    bundle_id: 9,
                    ctrl_type: BundleCtrlType::CommitReply,
                    flags: BF_ATOMIC | BF_ORDERED,
                }),
            };
            let b = encode_to_vec_in(v, &c).unwrap();
            assert_eq!(decode_in(v, &b).unwrap(), c);
            let a = OfpMsg {
                xid: 6,
                body: Message::BundleAdd(BundleAdd {
                    bundle_id: 9,
                    flags: BF_ATOMIC,
                    message: Box::new(OfpMsg {
                        xid: 6,
                        body: Message::BarrierRequest,
                    }),
                }),
            };
            let mut b = encode_to_vec_in(v, &a).unwrap();
            assert_eq!(decode_in(v, &b).unwrap(), a);
            // The inner xid must be the outer one.
            let inner_xid_at = b.len() - 4;
            b[inner_xid_at] ^= 1;
            assert_eq!(
                decode_in(v, &b).unwrap_err().error,
                OfpError::BundleMsgBadXid
            );
        }
        // Native numbers from OF1.4, experimenter messages in OF1.3.
        let c = OfpMsg {
            xid: 1,
            body: Message::BundleControl(BundleCtrl {
                bundle_id: 1,
                ctrl_type: BundleCtrlType::OpenRequest,
                flags: 0,
            }),
        };
        assert_eq!(
            encode_to_vec_in(Version::V1_4, &c).unwrap()[1],
            msg_type14::BUNDLE_CONTROL
        );
        assert_eq!(encode_to_vec_in(Version::V1_3, &c).unwrap()[1], 4);
        assert!(encode_to_vec_in(Version::V1_0, &c).is_err());
        // Unknown flags and types are refused.
        let mut b = encode_to_vec_in(Version::V1_4, &c).unwrap();
        b[15] = 4;
        assert_eq!(
            decode_in(Version::V1_4, &b).unwrap_err().error,
            OfpError::BundleBadFlags
        );
        b[15] = 0;
        b[13] = 9;
        assert_eq!(
            decode_in(Version::V1_4, &b).unwrap_err().error,
            OfpError::BundleBadType
        );
    }
}
