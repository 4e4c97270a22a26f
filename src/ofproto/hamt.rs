//! A persistent hash map from [`FlowKey`] to a value, with structural sharing.
//!
//! Why not a plain `hashbrown` map: the Bridge actor publishes immutable snapshots
//! of its flow tables for the upcall handlers and revalidators, and keeps mutating
//! its own copy. With a flat hash map, the first write after every publish would
//! copy the whole table (100k entries for a bulk load published every few dozen
//! messages turns a linear load into a quadratic one). This hash array mapped trie
//! shares every untouched node between the published and the working copy: a write
//! after a publish copies only the path from the root to the changed leaf
//! (at most `ceil(64 / 5)` nodes of at most 32 pointers each); a write with no
//! publish in between copies nothing, because `Arc::make_mut` on a uniquely owned
//! node mutates it in place.
//!
//! Layout: each branch node has a 32-bit occupancy bitmap and a dense vector of
//! children, indexed by 5 bits of the key's 64-bit hash per level. Leaves hold every
//! key with one full hash (so a 64-bit collision is handled by a short list).

use crate::datapath::flow::FlowKey;
use std::sync::Arc;

const BITS: u32 = 5;
const FANOUT_MASK: u64 = (1 << BITS) - 1;

#[derive(Clone, Debug)]
struct Leaf<V> {
    hash: u64,
    entries: Vec<(FlowKey, V)>,
}

#[derive(Clone, Debug)]
enum Entry<V> {
    Leaf(Arc<Leaf<V>>),
    Node(Arc<Node<V>>),
}

#[derive(Clone, Debug)]
struct Node<V> {
    bitmap: u32,
    children: Vec<Entry<V>>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            bitmap: 0,
            children: Vec::new(),
        }
    }
}

/// The persistent map. Cloning is O(1) (one `Arc` clone).
#[derive(Clone, Debug)]
pub struct Hamt<V> {
    root: Arc<Node<V>>,
    len: usize,
}

impl<V> Default for Hamt<V> {
    fn default() -> Self {
        Hamt {
            root: Arc::new(Node::default()),
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

impl<V: Clone> Hamt<V> {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Looks up `key`, whose hash is `hash` (callers hash once and reuse it).
    #[inline]
    pub fn get(&self, hash: u64, key: &FlowKey) -> Option<&V> {
        let mut node: &Node<V> = &self.root;
        let mut depth = 0;
        loop {
            let bit = slot(hash, depth);
            if node.bitmap & (1 << bit) == 0 {
                return None;
            }
            match &node.children[index_of(node.bitmap, bit)] {
                Entry::Leaf(leaf) => {
                    if leaf.hash != hash {
                        return None;
                    }
                    return leaf.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                }
                Entry::Node(n) => {
                    node = n;
                    depth += 1;
                }
            }
        }
    }

    /// Returns a mutable reference to the value at `key`, inserting `default()` when
    /// absent. Copies shared nodes on the way down (path copying).
    pub fn entry_or_insert_with(
        &mut self,
        hash: u64,
        key: &FlowKey,
        default: impl FnOnce() -> V,
    ) -> &mut V {
        let (v, inserted) = Self::upsert(Arc::make_mut(&mut self.root), hash, key, 0, default);
        if inserted {
            self.len += 1;
        }
        v
    }

    fn upsert<'a>(
        node: &'a mut Node<V>,
        hash: u64,
        key: &FlowKey,
        depth: u32,
        default: impl FnOnce() -> V,
    ) -> (&'a mut V, bool) {
        let bit = slot(hash, depth);
        let idx = index_of(node.bitmap, bit);
        if node.bitmap & (1 << bit) == 0 {
            node.bitmap |= 1 << bit;
            node.children.insert(
                idx,
                Entry::Leaf(Arc::new(Leaf {
                    hash,
                    entries: vec![(*key, default())],
                })),
            );
            let Entry::Leaf(leaf) = &mut node.children[idx] else {
                unreachable!("just inserted a leaf")
            };
            let leaf = Arc::make_mut(leaf);
            return (&mut leaf.entries[0].1, true);
        }
        // Split a leaf with a different hash into a sub-node first.
        let needs_split = matches!(&node.children[idx], Entry::Leaf(l) if l.hash != hash);
        if needs_split {
            let old = std::mem::replace(&mut node.children[idx], Entry::Node(Arc::default()));
            let Entry::Leaf(old_leaf) = old else {
                unreachable!("checked above")
            };
            let mut sub = Node::default();
            let obit = slot(old_leaf.hash, depth + 1);
            sub.bitmap = 1 << obit;
            sub.children.push(Entry::Leaf(old_leaf));
            node.children[idx] = Entry::Node(Arc::new(sub));
        }
        match &mut node.children[idx] {
            Entry::Leaf(leaf) => {
                let leaf = Arc::make_mut(leaf);
                if let Some(pos) = leaf.entries.iter().position(|(k, _)| k == key) {
                    (&mut leaf.entries[pos].1, false)
                } else {
                    leaf.entries.push((*key, default()));
                    let last = leaf.entries.len() - 1;
                    (&mut leaf.entries[last].1, true)
                }
            }
            Entry::Node(n) => Self::upsert(Arc::make_mut(n), hash, key, depth + 1, default),
        }
    }

    /// Returns a mutable reference to an existing value (copying shared nodes on the
    /// path), or `None` without copying anything when the key is absent.
    pub fn get_mut(&mut self, hash: u64, key: &FlowKey) -> Option<&mut V> {
        self.get(hash, key)?;
        Some(self.entry_or_insert_with(hash, key, || unreachable!("key is present")))
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, hash: u64, key: &FlowKey) -> Option<V> {
        self.get(hash, key)?;
        let v = Self::remove_in(Arc::make_mut(&mut self.root), hash, key, 0);
        if v.is_some() {
            self.len -= 1;
        }
        v
    }

    fn remove_in(node: &mut Node<V>, hash: u64, key: &FlowKey, depth: u32) -> Option<V> {
        let bit = slot(hash, depth);
        if node.bitmap & (1 << bit) == 0 {
            return None;
        }
        let idx = index_of(node.bitmap, bit);
        let (out, now_empty) = match &mut node.children[idx] {
            Entry::Leaf(leaf) => {
                if leaf.hash != hash {
                    return None;
                }
                let leaf = Arc::make_mut(leaf);
                let pos = leaf.entries.iter().position(|(k, _)| k == key)?;
                let (_, v) = leaf.entries.swap_remove(pos);
                (Some(v), leaf.entries.is_empty())
            }
            Entry::Node(n) => {
                let n = Arc::make_mut(n);
                let v = Self::remove_in(n, hash, key, depth + 1);
                // Collapse a sub-node left with a single leaf back into this level.
                if n.children.len() == 1 && matches!(n.children[0], Entry::Leaf(_)) {
                    let only = n.children.pop();
                    if let Some(e) = only {
                        node.children[idx] = e;
                    }
                    (v, false)
                } else {
                    (v, n.children.is_empty())
                }
            }
        };
        if now_empty {
            node.children.remove(idx);
            node.bitmap &= !(1 << bit);
        }
        out
    }

    /// Calls `f` on every entry (in hash order, which is arbitrary but stable for a
    /// given set of keys). Linear in the number of entries.
    pub fn for_each(&self, mut f: impl FnMut(&FlowKey, &V)) {
        fn walk<V>(node: &Node<V>, f: &mut dyn FnMut(&FlowKey, &V)) {
            for c in &node.children {
                match c {
                    Entry::Leaf(l) => {
                        for (k, v) in &l.entries {
                            f(k, v);
                        }
                    }
                    Entry::Node(n) => walk(n, f),
                }
            }
        }
        walk(&self.root, &mut f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    fn key(i: u64) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, i as u128);
        k
    }

    #[test]
    fn insert_get_remove_many_with_forced_collisions() {
        let mut h: Hamt<u64> = Hamt::default();
        // Use a deliberately weak hash so that deep splits and full collisions happen.
        let hh = |i: u64| i % 1000;
        for i in 0..5000u64 {
            *h.entry_or_insert_with(hh(i), &key(i), || 0) = i;
        }
        assert_eq!(h.len(), 5000);
        for i in 0..5000u64 {
            assert_eq!(h.get(hh(i), &key(i)), Some(&i));
        }
        assert_eq!(h.get(hh(7000), &key(7000)), None);
        for i in (0..5000u64).step_by(2) {
            assert_eq!(h.remove(hh(i), &key(i)), Some(i));
        }
        assert_eq!(h.len(), 2500);
        for i in 0..5000u64 {
            assert_eq!(h.get(hh(i), &key(i)).is_some(), i % 2 == 1);
        }
        let mut n = 0;
        h.for_each(|_, _| n += 1);
        assert_eq!(n, 2500);
    }

    #[test]
    fn snapshots_are_unaffected_by_later_writes() {
        let mut h: Hamt<u64> = Hamt::default();
        for i in 0..1000u64 {
            let k = key(i);
            *h.entry_or_insert_with(k.hash64(), &k, || 0) = i;
        }
        let snap = h.clone();
        for i in 0..1000u64 {
            let k = key(i);
            if i % 3 == 0 {
                h.remove(k.hash64(), &k);
            } else if let Some(v) = h.get_mut(k.hash64(), &k) {
                *v += 1_000_000;
            }
        }
        for i in 0..1000u64 {
            let k = key(i);
            assert_eq!(snap.get(k.hash64(), &k), Some(&i));
            let now = h.get(k.hash64(), &k).copied();
            assert_eq!(
                now,
                if i % 3 == 0 {
                    None
                } else {
                    Some(i + 1_000_000)
                }
            );
        }
        assert_eq!(snap.len(), 1000);
    }
}
