//! Compacted masked keys: the words of `value & mask` where `mask` is
//! non-zero, in word order.
//!
//! Why: a [`FlowKey`] is 21 words, but a rule or a megaflow matches a few of
//! them, and a switch holds 100k+ of each. Which words they are is given by
//! the mask, which is shared (one per classifier subtable), so the words mean
//! nothing without it. Up to `N` words live inline; more go to the heap.
//!
//! Plain data: owned by whoever holds the rule or flow, immutable once built.

use super::flow::{FlowKey, FLOW_WORDS};

/// `value & mask`, compacted to the mask's non-zero words.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyWords<const N: usize> {
    /// Up to `N` words, no allocation.
    Inline {
        /// Number of words used.
        n: u8,
        /// The words (unused ones zero).
        w: [u64; N],
    },
    /// More words.
    Heap(Box<[u64]>),
}

impl<const N: usize> KeyWords<N> {
    /// Compacts `value` under `mask` (masking it).
    pub fn new(value: &FlowKey, mask: &FlowKey) -> KeyWords<N> {
        let mut buf = [0u64; FLOW_WORDS];
        let mut n = 0;
        for i in 0..FLOW_WORDS {
            if mask.w[i] != 0 {
                buf[n] = value.w[i] & mask.w[i];
                n += 1;
            }
        }
        if n <= N {
            let mut w = [0u64; N];
            w[..n].copy_from_slice(&buf[..n]);
            KeyWords::Inline { n: n as u8, w }
        } else {
            KeyWords::Heap(buf[..n].into())
        }
    }

    /// The words.
    #[inline]
    pub fn as_slice(&self) -> &[u64] {
        match self {
            KeyWords::Inline { n, w } => &w[..*n as usize],
            KeyWords::Heap(b) => b,
        }
    }

    /// The full masked value again, given the mask it was compacted with.
    pub fn expand(&self, mask: &FlowKey) -> FlowKey {
        expand_words(self.as_slice(), mask)
    }
}

/// The full masked value from compacted words (the words of `mask`'s
/// non-zero positions, in order); missing words read as zero.
pub fn expand_words(words: &[u64], mask: &FlowKey) -> FlowKey {
    let mut out = FlowKey::default();
    let mut words = words.iter();
    for i in 0..FLOW_WORDS {
        if mask.w[i] != 0 {
            out.w[i] = words.next().copied().unwrap_or(0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    #[test]
    fn compacts_and_expands_inline_and_on_the_heap() {
        let mut v = FlowKey::default();
        v.set(Field::InPort, 7);
        v.set(Field::NwSrc, 0x0a00_0001);
        v.set(Field::TpDst, 80);
        let mut m = FlowKey::default();
        m.set_exact(Field::InPort);
        m.set_exact(Field::TpDst);
        let small = KeyWords::<4>::new(&v, &m);
        assert!(matches!(small, KeyWords::Inline { .. }));
        assert_eq!(small.expand(&m), v.masked(&m));
        // Every word significant: more than the inline room.
        let all = FlowKey {
            w: [u64::MAX; FLOW_WORDS],
        };
        let big = KeyWords::<4>::new(&v, &all);
        assert!(matches!(big, KeyWords::Heap(_)));
        assert_eq!(big.as_slice().len(), FLOW_WORDS);
        assert_eq!(big.expand(&all), v);
        // Equal masked values compare equal whatever the unmasked bits.
        let mut v2 = v;
        v2.set(Field::NwSrc, 0x0a00_0002);
        assert_eq!(KeyWords::<4>::new(&v2, &m), small);
    }
}
