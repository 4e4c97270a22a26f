//! A persistent hash map from a short key (a slice of `u64` words) to items that
//! carry their own key, with structural sharing.
//!
//! Why not a plain `hashbrown` map: the Bridge actor publishes immutable snapshots
//! of its flow tables for the upcall handlers and revalidators, and keeps mutating
//! its own copy. With a flat hash map, the first write after every publish would
//! copy the whole table (100k entries for a bulk load published every few dozen
//! messages turns a linear load into a quadratic one). This hash array mapped trie
//! shares every untouched node between the published and the working copy: a write
//! after a publish copies only the path from the root to the changed entry
//! (at most `ceil(64 / 5)` nodes of at most 32 pointers each); a write with no
//! publish in between copies nothing, because `Arc::make_mut` on a uniquely owned
//! node mutates it in place.
//!
//! Memory: the map stores no key of its own. Items implement [`HamtItem`] and
//! give their key (for flow rules, the rule's compact match value), so a key is
//! stored once, in the item. The common case of one item per hash is a single
//! pointer-sized slot in its parent node (no leaf allocation); only items sharing
//! a full 64-bit hash (the same key at several priorities, or a real collision)
//! share a `Many` bucket. Nodes hold exactly-sized child arrays.
//!
//! Layout: each branch is a dense, exactly-sized array of children indexed by
//! 5 bits of the key's 64-bit hash per level, with its 32-bit occupancy bitmap
//! kept in the parent's slot (so a lookup does one dependent load per level).

use std::sync::Arc;

const BITS: u32 = 5;
const FANOUT_MASK: u64 = (1 << BITS) - 1;

/// Something stored in a [`Hamt`]: it knows its own key.
pub trait HamtItem: Clone {
    /// The key words (what [`hash_words`] hashes and lookups compare).
    fn key_words(&self) -> &[u64];
}

/// The hash every user of a [`Hamt`] must use for its keys (FxHash-style
/// multiply/rotate over the words): fast, not for anything adversarial.
#[inline]
pub fn hash_words(w: &[u64]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = w.len() as u64;
    for &x in w {
        h = (h.rotate_left(5) ^ x).wrapping_mul(K);
    }
    // Keys are short (2 words for `ip,nw_src,nw_dst`), so few multiply rounds
    // spread the last word upwards only: finish with a full avalanche (the
    // murmur3 finaliser) so the low bits the trie indexes by are well mixed.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[derive(Clone, Debug)]
enum Entry<R> {
    /// One item, alone at its hash.
    One(R),
    /// Two or more items with the same full hash, in the order the owner keeps.
    Many(Arc<Vec<R>>),
    /// A sub-trie for the next 5 bits: its occupancy bitmap and its children.
    /// The bitmap lives here, next to the pointer, so descending one level is
    /// one dependent load (the children array), not two.
    Node(u32, Arc<[Entry<R>]>),
}

/// The persistent map. Cloning is O(1) (one `Arc` clone).
#[derive(Clone, Debug)]
pub struct Hamt<R> {
    bitmap: u32,
    root: Arc<[Entry<R>]>,
    len: usize,
}

impl<R> Default for Hamt<R> {
    fn default() -> Self {
        Hamt {
            bitmap: 0,
            root: Arc::new([]),
            len: 0,
        }
    }
}

#[inline]
fn slot(hash: u64, depth: u32) -> u32 {
    let shift = depth * BITS;
    if shift >= 64 {
        0
    } else {
        ((hash >> shift) & FANOUT_MASK) as u32
    }
}

#[inline]
fn index_of(bitmap: u32, bit: u32) -> usize {
    (bitmap & ((1u32 << bit) - 1)).count_ones() as usize
}

/// `a` with `v` inserted at `idx` (a new, exactly-sized array).
fn with_inserted<T: Clone>(a: &[T], idx: usize, v: T) -> Arc<[T]> {
    let mut vec = Vec::with_capacity(a.len() + 1);
    vec.extend_from_slice(&a[..idx]);
    vec.push(v);
    vec.extend_from_slice(&a[idx..]);
    vec.into()
}

/// `a` without the element at `idx`.
fn without<T: Clone>(a: &[T], idx: usize) -> Arc<[T]> {
    let mut vec = Vec::with_capacity(a.len().saturating_sub(1));
    vec.extend_from_slice(&a[..idx]);
    vec.extend_from_slice(&a[idx + 1..]);
    vec.into()
}

impl<R: HamtItem> Entry<R> {
    /// The full hash of an item entry (recomputed from its key).
    fn item_hash(&self) -> Option<u64> {
        match self {
            Entry::One(r) => Some(hash_words(r.key_words())),
            Entry::Many(v) => v.first().map(|r| hash_words(r.key_words())),
            Entry::Node(..) => None,
        }
    }
}

/// What to do to a parent slot after recursing into its sub-trie.
enum After<R> {
    Keep,
    Remove,
    Replace(Entry<R>),
}

impl<R: HamtItem> Hamt<R> {
    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every item stored at `hash` (callers hash once with [`hash_words`] and
    /// filter by key: items of other keys may be included). Allocation-free.
    #[inline]
    pub fn get(&self, hash: u64) -> &[R] {
        let mut bitmap = self.bitmap;
        let mut children: &[Entry<R>] = &self.root;
        let mut depth = 0;
        loop {
            let bit = slot(hash, depth);
            if bitmap & (1 << bit) == 0 {
                return &[];
            }
            match &children[index_of(bitmap, bit)] {
                // A lone item may sit here for a different hash (it was never
                // split because nothing else needed the slot).
                Entry::One(r) => return std::slice::from_ref(r),
                Entry::Many(v) => return v,
                Entry::Node(b, c) => {
                    bitmap = *b;
                    children = c;
                    depth += 1;
                }
            }
        }
    }

    /// Applies `f` to the list of items stored at `hash` (empty when none),
    /// copying shared nodes on the way down (path copying), and stores the
    /// result back (removing the slot when `f` leaves the list empty). Every item
    /// `f` leaves must have a key hashing to `hash`. Returns what `f` returns.
    pub fn update<T>(&mut self, hash: u64, f: impl FnOnce(&mut Vec<R>) -> T) -> T {
        let (out, before, after) = Self::update_in(&mut self.bitmap, &mut self.root, hash, 0, f);
        self.len = self.len + after - before;
        out
    }

    fn update_in<T>(
        bitmap: &mut u32,
        children: &mut Arc<[Entry<R>]>,
        hash: u64,
        depth: u32,
        f: impl FnOnce(&mut Vec<R>) -> T,
    ) -> (T, usize, usize) {
        let bit = slot(hash, depth);
        let idx = index_of(*bitmap, bit);
        if *bitmap & (1 << bit) == 0 {
            let mut items = Vec::new();
            let out = f(&mut items);
            let n = items.len();
            if let Some(e) = Self::entry_from(items) {
                *children = with_inserted(children, idx, e);
                *bitmap |= 1 << bit;
            }
            return (out, 0, n);
        }
        let kids = Arc::make_mut(children);
        // An item entry for another hash: push it one level down first.
        let other = match &kids[idx] {
            Entry::Node(..) => None,
            e => e.item_hash().filter(|&h| h != hash && depth * BITS < 64),
        };
        if let Some(oh) = other {
            let old = kids[idx].clone();
            kids[idx] = Entry::Node(1 << slot(oh, depth + 1), Arc::new([old]));
        }
        let (res, after) = match &mut kids[idx] {
            Entry::Node(b, c) => {
                let r = Self::update_in(b, c, hash, depth + 1, f);
                let after = if c.is_empty() {
                    After::Remove
                } else if c.len() == 1 && !matches!(c[0], Entry::Node(..)) {
                    // Collapse a sub-trie left with a single item entry.
                    After::Replace(c[0].clone())
                } else {
                    After::Keep
                };
                (r, after)
            }
            e => {
                let mut items = match e {
                    Entry::One(r) => vec![r.clone()],
                    Entry::Many(v) => v.to_vec(),
                    Entry::Node(..) => unreachable!("matched above"),
                };
                let before = items.len();
                let out = f(&mut items);
                let n = items.len();
                let after = match Self::entry_from(items) {
                    Some(new) => After::Replace(new),
                    None => After::Remove,
                };
                ((out, before, n), after)
            }
        };
        match after {
            After::Keep => {}
            After::Replace(e) => kids[idx] = e,
            After::Remove => {
                *children = without(children, idx);
                *bitmap &= !(1 << bit);
            }
        }
        res
    }

    fn entry_from(mut items: Vec<R>) -> Option<Entry<R>> {
        match items.len() {
            0 => None,
            1 => items.pop().map(Entry::One),
            _ => {
                items.shrink_to_fit();
                Some(Entry::Many(Arc::new(items)))
            }
        }
    }

    /// Calls `f` on every item (in hash order, which is arbitrary but stable for a
    /// given set of keys). Linear in the number of items.
    pub fn for_each(&self, mut f: impl FnMut(&R)) {
        fn walk<R>(children: &[Entry<R>], f: &mut dyn FnMut(&R)) {
            for c in children {
                match c {
                    Entry::One(r) => f(r),
                    Entry::Many(v) => v.iter().for_each(&mut *f),
                    Entry::Node(_, c) => walk(c, f),
                }
            }
        }
        walk(&self.root, &mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct It {
        k: [u64; 1],
        v: u64,
    }

    impl HamtItem for It {
        fn key_words(&self) -> &[u64] {
            &self.k
        }
    }

    /// A map over `Hamt` with an optional weak hash that forces deep splits and
    /// full collisions.
    struct M {
        h: Hamt<It>,
        weak: bool,
    }

    impl M {
        fn hash(&self, k: u64) -> u64 {
            if self.weak {
                // Still consistent with `hash_words` for `Entry::item_hash`:
                // weak mode stores keys whose hash we control through the key.
                hash_words(&[k % 1000])
            } else {
                hash_words(&[k])
            }
        }
        fn key(&self, k: u64) -> [u64; 1] {
            if self.weak {
                [k % 1000]
            } else {
                [k]
            }
        }
        fn set(&mut self, k: u64, v: u64) {
            let h = self.hash(k);
            let key = self.key(k);
            self.h.update(h, |items| {
                items.retain(|it| it.v / 1_000_000 != k);
                items.push(It {
                    k: key,
                    v: k * 1_000_000 + v,
                });
            });
        }
        fn get(&self, k: u64) -> Option<u64> {
            let key = self.key(k);
            self.h
                .get(self.hash(k))
                .iter()
                .find(|it| it.k == key && it.v / 1_000_000 == k)
                .map(|it| it.v % 1_000_000)
        }
        fn remove(&mut self, k: u64) -> bool {
            let h = self.hash(k);
            self.h.update(h, |items| {
                let n = items.len();
                items.retain(|it| it.v / 1_000_000 != k);
                items.len() != n
            })
        }
    }

    #[test]
    fn insert_get_remove_many_with_forced_collisions() {
        for weak in [false, true] {
            let mut m = M {
                h: Hamt::default(),
                weak,
            };
            for i in 0..5000u64 {
                m.set(i, i % 7);
            }
            assert_eq!(m.h.len(), 5000);
            for i in 0..5000u64 {
                assert_eq!(m.get(i), Some(i % 7));
            }
            assert_eq!(m.get(7000), None);
            for i in (0..5000u64).step_by(2) {
                assert!(m.remove(i));
                assert!(!m.remove(i));
            }
            assert_eq!(m.h.len(), 2500);
            for i in 0..5000u64 {
                assert_eq!(m.get(i).is_some(), i % 2 == 1);
            }
            let mut n = 0;
            m.h.for_each(|_| n += 1);
            assert_eq!(n, 2500);
            for i in 0..5000u64 {
                m.remove(i);
            }
            assert!(m.h.is_empty());
            assert!(m.h.root.is_empty());
            assert_eq!(m.h.bitmap, 0);
        }
    }

    #[test]
    fn snapshots_are_unaffected_by_later_writes() {
        let mut m = M {
            h: Hamt::default(),
            weak: false,
        };
        for i in 0..1000u64 {
            m.set(i, 1);
        }
        let snap = M {
            h: m.h.clone(),
            weak: false,
        };
        for i in 0..1000u64 {
            if i % 3 == 0 {
                m.remove(i);
            } else {
                m.set(i, 2);
            }
        }
        for i in 0..1000u64 {
            assert_eq!(snap.get(i), Some(1));
            assert_eq!(m.get(i), if i % 3 == 0 { None } else { Some(2) });
        }
        assert_eq!(snap.h.len(), 1000);
    }
}
