//! OFPT_HELLO elements (OF1.3.5 §7.5.1): a list of `ofp_hello_elem_header`
//! TLVs padded to 8 bytes, of which only OFPHET_VERSIONBITMAP is defined.

use super::error::OfpError;
use super::wire::{pad8, pad_to_8, put_u32, Field, FieldsMut, Reader};

/// OFPHET_VERSIONBITMAP.
pub(crate) const ELEM_VERSIONBITMAP: u16 = 1;

/// `ofp_hello_elem_header`.
mod field {
    use super::Field;
    pub(super) const TYPE: Field = 0..2;
    pub(super) const LENGTH: Field = 2..4;
    pub(super) const LEN: usize = 4;
}

/// Parses the elements of a HELLO body: the first version bitmap is kept and
/// unknown elements are skipped, as the spec requires. A bitmap element's
/// padding may be missing at the very end (Open vSwitch 1.x sent it so).
pub(crate) fn parse(mut r: Reader<'_>) -> Result<Vec<u32>, OfpError> {
    let mut versions = Vec::new();
    while r.remaining() >= field::LEN {
        let h = r.fixed(field::LEN)?;
        let t = h.u16(field::TYPE);
        let len = h.u16(field::LENGTH) as usize;
        if len < field::LEN {
            return Err(OfpError::BadLen);
        }
        let mut e = r.sub(len - field::LEN, OfpError::BadLen)?;
        if t == ELEM_VERSIONBITMAP && versions.is_empty() {
            while e.remaining() >= 4 {
                versions.push(e.u32()?);
            }
        }
        let padding = (pad8(len) - len).min(r.remaining());
        r.skip(padding)?;
    }
    Ok(versions)
}

/// Emits a version bitmap element (nothing for an empty bitmap).
pub(crate) fn emit(out: &mut Vec<u8>, versions: &[u32]) {
    if versions.is_empty() {
        return;
    }
    let start = out.len();
    let mut h = FieldsMut::<{ field::LEN }>::new();
    h.set_u16(field::TYPE, ELEM_VERSIONBITMAP)
        .set_u16(field::LENGTH, (field::LEN + 4 * versions.len()) as u16);
    h.emit(out);
    for v in versions {
        put_u32(out, *v);
    }
    pad_to_8(out, start);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_round_trips_and_pads() {
        for bm in [vec![], vec![0x10], vec![0x72, 1, 0x8000_0000]] {
            let mut out = Vec::new();
            emit(&mut out, &bm);
            assert_eq!(out.len() % 8, 0);
            assert_eq!(parse(Reader::new(&out, OfpError::BadLen)).unwrap(), bm);
        }
    }
}
