//! OpenFlow 1.4+ properties (OF1.4.1 §7.1.3 `ofp_prop_header`): a type, a
//! length that counts the header but not the padding, and padding to 8
//! bytes. Port, port-mod, port-stats, table-mod, async-config, bundle and
//! group (OF1.5) messages end in lists of them.
//!
//! Malformed lists are OFPET_BAD_PROPERTY/OFPBPC_BAD_LEN, as Open vSwitch's
//! `ofp-prop.c:ofpprop_pull__()` reports them.

use super::error::OfpError;
use super::wire::{pad8, pad_to_8, patch_u16, Field, Fields, FieldsMut, Reader};

/// The property type.
pub(crate) const TYPE: Field = 0..2;
/// The property length (header included, padding excluded).
pub(crate) const LENGTH: Field = 2..4;
/// Size of the header.
pub(crate) const HEADER_LEN: usize = 4;
/// The experimenter property type in every property space.
pub(crate) const TYPE_EXPERIMENTER: u16 = 0xffff;

/// Calls `f(type, whole property)` for each property filling `r`. The last
/// property's padding may be missing (Open vSwitch accepts that too).
pub(crate) fn for_each<'a>(
    mut r: Reader<'a>,
    mut f: impl FnMut(u16, Reader<'a>) -> Result<(), OfpError>,
) -> Result<(), OfpError> {
    while !r.is_empty() {
        let t = r
            .peek_u16(TYPE.start)
            .map_err(|_| OfpError::BadPropertyLen)?;
        let len = r
            .peek_u16(LENGTH.start)
            .map_err(|_| OfpError::BadPropertyLen)? as usize;
        if len < HEADER_LEN || len > r.remaining() {
            return Err(OfpError::BadPropertyLen);
        }
        let whole = r.sub(len, OfpError::BadPropertyLen)?;
        let padding = (pad8(len) - len).min(r.remaining());
        r.skip(padding)?;
        f(t, whole)?;
    }
    Ok(())
}

/// A property that must be exactly `len` bytes (header included).
pub(crate) fn fixed(mut p: Reader<'_>, len: usize) -> Result<Fields<'_>, OfpError> {
    if p.remaining() != len {
        return Err(OfpError::BadPropertyLen);
    }
    p.fixed(len)
}

/// Appends a property of type `t` whose body `body` writes, with its length
/// patched and padding added.
pub(crate) fn emit(out: &mut Vec<u8>, t: u16, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    let mut h = FieldsMut::<HEADER_LEN>::new();
    h.set_u16(TYPE, t);
    h.emit(out);
    body(out);
    let len = out.len() - start;
    patch_u16(out, start + LENGTH.start, len as u16);
    pad_to_8(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_round_trip_and_reject_bad_lengths() {
        let mut out = Vec::new();
        emit(&mut out, 3, |o| o.extend_from_slice(&[1, 2, 3]));
        emit(&mut out, 0xffff, |o| o.extend_from_slice(&[0; 8]));
        assert_eq!(out.len(), 8 + 16);
        let mut seen = Vec::new();
        for_each(Reader::new(&out, OfpError::BadLen), |t, p| {
            seen.push((t, p.remaining()));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![(3, 7), (0xffff, 12)]);
        let bad = [0, 1, 0, 2];
        assert_eq!(
            for_each(Reader::new(&bad, OfpError::BadLen), |_, _| Ok(())),
            Err(OfpError::BadPropertyLen)
        );
        let long = [0, 1, 0, 9, 0, 0, 0, 0];
        assert_eq!(
            for_each(Reader::new(&long, OfpError::BadLen), |_, _| Ok(())),
            Err(OfpError::BadPropertyLen)
        );
    }
}
