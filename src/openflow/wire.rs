//! Bounds-checked big-endian reading and writing, the only place the codec
//! touches raw byte offsets.
//!
//! Every read goes through [`Reader`], which carries the OpenFlow error to report
//! when the input runs out. That way a truncated action reports BAD_ACTION/BAD_LEN,
//! a truncated match BAD_MATCH/BAD_LEN and so on, without each parser having to
//! remember which code applies: the choice is made once, where the reader for a
//! sub-structure is created. Writers append to a `Vec<u8>` and patch length fields
//! afterwards, so encoders never need to pre-compute sizes.

use super::error::OfpError;

/// A cursor over a byte slice that can never read out of bounds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Reported when a read would run past the end.
    short: OfpError,
}

impl<'a> Reader<'a> {
    /// A reader over `buf` that reports `short` on truncation.
    pub(crate) fn new(buf: &'a [u8], short: OfpError) -> Reader<'a> {
        Reader { buf, pos: 0, short }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when everything has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Decodes the rest as back-to-back entries of `size` bytes each (a
    /// multipart body of fixed-size records); any other length is BAD_LEN.
    pub(crate) fn fixed_entries<T>(
        &mut self,
        size: usize,
        mut one: impl FnMut(&mut Reader<'a>) -> Result<T, OfpError>,
    ) -> Result<Vec<T>, OfpError> {
        if !self.remaining().is_multiple_of(size) {
            return Err(OfpError::BadLen);
        }
        let mut v = Vec::with_capacity(self.remaining() / size);
        while !self.is_empty() {
            v.push(one(self)?);
        }
        Ok(v)
    }

    /// The unconsumed bytes, without consuming them.
    pub(crate) fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Consume `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], OfpError> {
        if n > self.remaining() {
            return Err(self.short);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Consume `N` bytes into an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], OfpError> {
        let s = self.bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Skip `n` bytes (padding).
    pub(crate) fn skip(&mut self, n: usize) -> Result<(), OfpError> {
        self.bytes(n).map(|_| ())
    }

    /// Consume everything that is left.
    pub(crate) fn take_rest(&mut self) -> &'a [u8] {
        let s = self.rest();
        self.pos = self.buf.len();
        s
    }

    pub(crate) fn u8(&mut self) -> Result<u8, OfpError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, OfpError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, OfpError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, OfpError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// Peek a big-endian u16 at `off` bytes past the cursor.
    pub(crate) fn peek_u16(&self, off: usize) -> Result<u16, OfpError> {
        let start = self.pos.checked_add(off).ok_or(self.short)?;
        match self.buf.get(start..start.saturating_add(2)) {
            Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
            _ => Err(self.short),
        }
    }

    /// Split off the next `n` bytes as a reader of its own that reports `short`.
    pub(crate) fn sub(&mut self, n: usize, short: OfpError) -> Result<Reader<'a>, OfpError> {
        let s = self.bytes(n)?;
        Ok(Reader::new(s, short))
    }
}

/// Round `n` up to a multiple of 8.
pub(crate) const fn pad8(n: usize) -> usize {
    (n + 7) & !7
}

pub(crate) fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}

pub(crate) fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

pub(crate) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Append `n` zero bytes.
pub(crate) fn put_zeros(out: &mut Vec<u8>, n: usize) {
    out.resize(out.len() + n, 0);
}

/// Append zeros until `out.len() - start` is a multiple of 8.
pub(crate) fn pad_to_8(out: &mut Vec<u8>, start: usize) {
    let len = out.len() - start;
    put_zeros(out, pad8(len) - len);
}

/// Overwrite a big-endian u16 at `at` (which the caller has already written).
pub(crate) fn patch_u16(out: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = out.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// A byte range inside a fixed-size structure (smoltcp's `wire::field::Field`).
pub(crate) type Field = core::ops::Range<usize>;

impl<'a> Reader<'a> {
    /// The one length check of a fixed-size part: consumes `len` bytes (the
    /// reader's own error if fewer remain) and returns them for field access.
    pub(crate) fn fixed(&mut self, len: usize) -> Result<Fields<'a>, OfpError> {
        self.bytes(len).map(Fields)
    }

    /// A structure that must be the whole rest of the reader, exactly `len`
    /// bytes (anything else is BAD_LEN).
    pub(crate) fn exact(&mut self, len: usize) -> Result<Fields<'a>, OfpError> {
        if self.remaining() != len {
            return Err(OfpError::BadLen);
        }
        self.fixed(len)
    }
}

/// The bytes of a fixed-size structure whose length has been checked once;
/// fields are read by their named ranges. A range outside the bytes (a bug in
/// a layout table, which the round-trip tests would show) reads as zeros
/// rather than panicking.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields<'a>(pub(crate) &'a [u8]);

impl<'a> Fields<'a> {
    fn arr<const N: usize>(&self, f: Field) -> [u8; N] {
        let mut a = [0u8; N];
        if let Some(s) = self.0.get(f) {
            if s.len() == N {
                a.copy_from_slice(s);
            }
        }
        a
    }

    pub(crate) fn u8(&self, at: usize) -> u8 {
        self.0.get(at).copied().unwrap_or(0)
    }

    pub(crate) fn u16(&self, f: Field) -> u16 {
        u16::from_be_bytes(self.arr(f))
    }

    pub(crate) fn u32(&self, f: Field) -> u32 {
        u32::from_be_bytes(self.arr(f))
    }

    pub(crate) fn u64(&self, f: Field) -> u64 {
        u64::from_be_bytes(self.arr(f))
    }

    pub(crate) fn mac(&self, f: Field) -> [u8; 6] {
        self.arr(f)
    }

    /// A NUL-padded string field, up to its first NUL.
    pub(crate) fn string(&self, f: Field) -> String {
        let s = self.0.get(f).unwrap_or(&[]);
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        String::from_utf8_lossy(&s[..end]).into_owned()
    }
}

/// A fixed-size structure being built: zeroed (so padding is zero), fields set
/// by their named ranges, then appended whole.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FieldsMut<const N: usize>(pub(crate) [u8; N]);

impl<const N: usize> FieldsMut<N> {
    pub(crate) fn new() -> Self {
        FieldsMut([0; N])
    }

    fn put(&mut self, f: Field, v: &[u8]) {
        if let Some(d) = self.0.get_mut(f) {
            if d.len() == v.len() {
                d.copy_from_slice(v);
            }
        }
    }

    pub(crate) fn set_u8(&mut self, at: usize, v: u8) -> &mut Self {
        if let Some(d) = self.0.get_mut(at) {
            *d = v;
        }
        self
    }

    pub(crate) fn set_u16(&mut self, f: Field, v: u16) -> &mut Self {
        self.put(f, &v.to_be_bytes());
        self
    }

    pub(crate) fn set_u32(&mut self, f: Field, v: u32) -> &mut Self {
        self.put(f, &v.to_be_bytes());
        self
    }

    pub(crate) fn set_u64(&mut self, f: Field, v: u64) -> &mut Self {
        self.put(f, &v.to_be_bytes());
        self
    }

    pub(crate) fn set_bytes(&mut self, f: Field, v: &[u8]) -> &mut Self {
        self.put(f, v);
        self
    }

    /// A NUL-padded string, always NUL-terminated (the longest kept is one
    /// byte shorter than the field, as C readers expect), cut at a character
    /// boundary so the field stays valid UTF-8.
    pub(crate) fn set_string(&mut self, f: Field, s: &str) -> &mut Self {
        let n = f.len();
        let mut keep = s.len().min(n.saturating_sub(1));
        while !s.is_char_boundary(keep) {
            keep -= 1;
        }
        let start = f.start;
        self.put(start..start + keep, &s.as_bytes()[..keep]);
        self
    }

    /// Appends the structure.
    pub(crate) fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

/// Splits off the next entry of a list whose entries each carry their 16-bit
/// length at `len_off` and are at least `min` long.
pub(crate) fn next_entry<'a>(
    r: &mut Reader<'a>,
    len_off: usize,
    min: usize,
) -> Result<Reader<'a>, OfpError> {
    let len = r.peek_u16(len_off)? as usize;
    if len < min {
        return Err(OfpError::BadLen);
    }
    r.sub(len, OfpError::BadLen)
}
