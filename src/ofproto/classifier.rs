//! A priority classifier over `(value, mask)` rules: tuple space search.
//!
//! Rules with the same mask live in one [`Subtable`], a hash map from masked key to
//! the rules at that key (sorted by descending priority). A lookup probes subtables
//! in order of their highest priority and stops as soon as the best match found so
//! far cannot be beaten by any remaining subtable.
//!
//! Megaflow correctness: every probed subtable's mask is OR-ed into the caller's
//! wildcard mask, hit or miss, because the result depended on those bits.
//!
//! Compact keys: a subtable's map is keyed by the words of the masked value where
//! its mask is non-zero ([`KeyWords`]; 2 of the 21 words for `ip,nw_src,nw_dst`),
//! and the key is stored once, inside the rule ([`ClassifierRule`]). A lookup
//! gathers and hashes only those words, on the stack: no allocation, and fewer
//! words to hash than the full key.
//!
//! Sharing and cost model: subtables are held in `Arc`s and their maps are
//! persistent ([`super::hamt::Hamt`]), so cloning a classifier (what publishing a
//! snapshot does) costs O(number of subtables). A write after a clone copies the
//! subtable header (mask and priority counts) and one root-to-leaf path of its map,
//! O(32 * log32(n)); a write with no clone in between copies nothing. Inserts,
//! strict lookups and removals are O(1) expected (plus the subtable reordering,
//! O(number of subtables) only when a subtable's max priority changes).
//!
//! Ownership: the Bridge actor owns the working classifier; snapshots are read by
//! other threads and never mutated.

use super::hamt::{hash_words, Hamt, HamtItem};
use crate::datapath::flow::{FlowKey, FLOW_WORDS};
use crate::datapath::keywords::expand_words;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Words a rule's [`KeyWords`] holds without a heap allocation (covers
/// in_port/dl_type, L2/L3/L4 words of typical rules).
pub const INLINE_WORDS: usize = 4;

/// A rule's match value, compacted (see [`crate::datapath::keywords`]).
pub type KeyWords = crate::datapath::keywords::KeyWords<INLINE_WORDS>;

/// What a classifier stores: a cheap handle to a rule that knows its own mask,
/// compact value ([`HamtItem::key_words`], i.e. [`KeyWords::as_slice`] of its
/// value under its mask) and priority.
pub trait ClassifierRule: HamtItem {
    /// The rule's mask.
    fn mask(&self) -> &FlowKey;
    /// The rule's priority.
    fn priority(&self) -> u16;
}

/// Rules sharing one mask.
#[derive(Clone, Debug)]
pub struct Subtable<R> {
    /// The mask, inline: lookups read it for every probed subtable.
    mask: FlowKey,
    /// The same mask, shared with the rules (see [`Classifier::shared_mask`]).
    mask_arc: Arc<FlowKey>,
    /// Cached `prios.keys().next_back()` (0 when empty), read by every lookup.
    max_prio: u16,
    /// Indices of the mask's non-zero words (the first `n`).
    idx: [u8; FLOW_WORDS],
    n: u8,
    map: Hamt<R>,
    /// Number of rules at each priority, to keep `max_priority` exact on removal.
    prios: BTreeMap<u16, usize>,
    n_rules: usize,
}

/// A compacted key on the stack.
struct Probe {
    buf: [u64; FLOW_WORDS],
    n: usize,
}

impl Probe {
    #[inline]
    fn words(&self) -> &[u64] {
        &self.buf[..self.n]
    }
}

impl<R: ClassifierRule> Subtable<R> {
    fn new(mask: FlowKey) -> Self {
        let (idx, n) = mask.nonzero_words();
        Subtable {
            mask,
            mask_arc: Arc::new(mask),
            max_prio: 0,
            idx,
            n: n as u8,
            map: Hamt::default(),
            prios: BTreeMap::new(),
            n_rules: 0,
        }
    }

    /// The mask every rule here shares.
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }

    /// Highest priority of any rule here (0 when empty).
    #[inline]
    pub fn max_priority(&self) -> u16 {
        self.max_prio
    }

    fn update_max_priority(&mut self) {
        self.max_prio = self.prios.keys().next_back().copied().unwrap_or(0);
    }

    #[inline]
    fn idx(&self) -> &[u8] {
        &self.idx[..self.n as usize]
    }

    /// `key & mask`, compacted.
    #[inline]
    fn probe(&self, key: &FlowKey) -> Probe {
        let mut p = Probe {
            buf: [0; FLOW_WORDS],
            n: self.n as usize,
        };
        for (j, &i) in self.idx().iter().enumerate() {
            let i = i as usize;
            p.buf[j] = key.w[i] & self.mask.w[i];
        }
        p
    }

    /// The rules stored at `k`'s hash, by descending priority (callers keep
    /// those whose key is `k`).
    #[inline]
    fn bucket<'a>(&'a self, k: &[u64]) -> &'a [R] {
        self.map.get(hash_words(k))
    }
}

/// The classifier. Cloning is cheap (see the module docs).
#[derive(Clone, Debug)]
pub struct Classifier<R> {
    /// Sorted by descending max priority.
    subtables: Vec<Arc<Subtable<R>>>,
    /// Mask → position in `subtables`.
    index: hashbrown::HashMap<FlowKey, usize>,
    n_rules: usize,
}

impl<R> Default for Classifier<R> {
    fn default() -> Self {
        Classifier {
            subtables: Vec::new(),
            index: hashbrown::HashMap::new(),
            n_rules: 0,
        }
    }
}

/// True when some packet can match both `(v1, m1)` and `(v2, m2)` (values masked).
pub fn overlaps(v1: &FlowKey, m1: &FlowKey, v2: &FlowKey, m2: &FlowKey) -> bool {
    (0..FLOW_WORDS).all(|i| (v1.w[i] ^ v2.w[i]) & m1.w[i] & m2.w[i] == 0)
}

impl<R: ClassifierRule> Classifier<R> {
    /// Number of rules.
    pub fn len(&self) -> usize {
        self.n_rules
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.n_rules == 0
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// The classifier's own copy of `mask` when a subtable has it, so that every
    /// rule of a subtable can share one allocation for its mask.
    pub fn shared_mask(&self, mask: &FlowKey) -> Option<Arc<FlowKey>> {
        let pos = *self.index.get(mask)?;
        Some(self.subtables[pos].mask_arc.clone())
    }

    /// Finds the highest-priority rule matching `key`, OR-ing into `wc` every mask
    /// the answer depended on. Returns `(priority, rule)`. Allocation-free.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, wc: &mut FlowKey) -> Option<(u16, &R)> {
        let mut best: Option<(u16, &R)> = None;
        for st in &self.subtables {
            let maxp = st.max_priority();
            if let Some((bp, _)) = best {
                if bp >= maxp {
                    break;
                }
            }
            for i in 0..FLOW_WORDS {
                wc.w[i] |= st.mask.w[i];
            }
            let p = st.probe(key);
            if let Some(r) = st
                .bucket(p.words())
                .iter()
                .find(|r| r.key_words() == p.words())
            {
                let rp = r.priority();
                if best.is_none_or(|(bp, _)| rp > bp) {
                    best = Some((rp, r));
                }
            }
        }
        best
    }

    /// The rule with exactly this match and priority (OpenFlow "strict").
    pub fn find_exact(&self, value: &FlowKey, mask: &FlowKey, priority: u16) -> Option<&R> {
        let pos = *self.index.get(mask)?;
        let st = &self.subtables[pos];
        let p = st.probe(value);
        st.bucket(p.words())
            .iter()
            .find(|r| r.priority() == priority && r.key_words() == p.words())
    }

    /// Inserts a rule, replacing (and returning) one with the same match and priority.
    pub fn insert(&mut self, rule: R) -> Option<R> {
        let mask = *rule.mask();
        let priority = rule.priority();
        let pos = match self.index.get(&mask) {
            Some(&p) => p,
            None => {
                self.subtables.push(Arc::new(Subtable::new(mask)));
                let p = self.subtables.len() - 1;
                self.index.insert(mask, p);
                p
            }
        };
        let old_max = self.subtables[pos].max_priority();
        let was_empty = self.subtables[pos].n_rules == 0;
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let mut key = Probe {
            buf: [0; FLOW_WORDS],
            n: rule.key_words().len(),
        };
        key.buf[..key.n].copy_from_slice(rule.key_words());
        debug_assert_eq!(key.n, st.n as usize, "rule key does not fit its mask");
        let k = key.words();
        let replaced = st.map.update(hash_words(k), |items| {
            if let Some(i) = items
                .iter()
                .position(|r| r.priority() == priority && r.key_words() == k)
            {
                return Some(std::mem::replace(&mut items[i], rule));
            }
            let at = items
                .iter()
                .position(|r| r.priority() < priority)
                .unwrap_or(items.len());
            items.insert(at, rule);
            None
        });
        if replaced.is_none() {
            *st.prios.entry(priority).or_insert(0) += 1;
            st.update_max_priority();
            st.n_rules += 1;
            self.n_rules += 1;
            if was_empty || priority > old_max {
                self.bubble_up(pos);
            }
        }
        replaced
    }

    /// Removes the rule with exactly this match and priority.
    pub fn remove(&mut self, value: &FlowKey, mask: &FlowKey, priority: u16) -> Option<R> {
        // Check presence first so that a miss copies nothing.
        self.find_exact(value, mask, priority)?;
        let pos = *self.index.get(mask)?;
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let p = st.probe(value);
        let k = p.words();
        let old_max = st.max_priority();
        let r = st.map.update(hash_words(k), |items| {
            let i = items
                .iter()
                .position(|r| r.priority() == priority && r.key_words() == k)?;
            Some(items.remove(i))
        })?;
        if let Some(c) = st.prios.get_mut(&priority) {
            *c -= 1;
            if *c == 0 {
                st.prios.remove(&priority);
            }
        }
        st.update_max_priority();
        st.n_rules -= 1;
        let now_empty = st.n_rules == 0;
        let new_max = st.max_priority();
        self.n_rules -= 1;
        if now_empty {
            self.subtables.remove(pos);
            self.rebuild_index();
        } else if new_max < old_max {
            self.bubble_down(pos);
        }
        Some(r)
    }

    /// Replaces an existing rule in place (same match and priority as `rule`).
    /// Returns the old one, or gives `rule` back when there is no such rule.
    pub fn replace(&mut self, rule: R) -> Result<R, R> {
        let value = rule_value(&rule);
        if self
            .find_exact(&value, rule.mask(), rule.priority())
            .is_none()
        {
            return Err(rule);
        }
        match self.insert(rule) {
            Some(old) => Ok(old),
            None => unreachable!("presence checked above"),
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.subtables.swap(a, b);
        self.index.insert(self.subtables[a].mask, a);
        self.index.insert(self.subtables[b].mask, b);
    }

    fn bubble_up(&mut self, mut pos: usize) {
        while pos > 0 && self.subtables[pos - 1].max_priority() < self.subtables[pos].max_priority()
        {
            self.swap(pos - 1, pos);
            pos -= 1;
        }
    }

    fn bubble_down(&mut self, mut pos: usize) {
        while pos + 1 < self.subtables.len()
            && self.subtables[pos + 1].max_priority() > self.subtables[pos].max_priority()
        {
            self.swap(pos, pos + 1);
            pos += 1;
        }
    }

    fn rebuild_index(&mut self) {
        self.index.clear();
        for (i, st) in self.subtables.iter().enumerate() {
            self.index.insert(st.mask, i);
        }
    }

    /// Calls `f` for every rule. Linear.
    pub fn for_each(&self, mut f: impl FnMut(&R)) {
        for st in &self.subtables {
            st.map.for_each(&mut f);
        }
    }

    /// Calls `f` for every rule whose match is at least as specific as `(value, mask)`
    /// (OpenFlow non-strict modify/delete/stats semantics): the rule's mask covers
    /// `mask` and the rule's value agrees with `value` on `mask`.
    pub fn for_each_subsumed(&self, value: &FlowKey, mask: &FlowKey, mut f: impl FnMut(&R)) {
        let v = value.masked(mask);
        for st in &self.subtables {
            if !mask.is_subset_of(&st.mask) {
                continue;
            }
            if st.mask == *mask {
                let p = st.probe(&v);
                st.bucket(p.words())
                    .iter()
                    .filter(|r| r.key_words() == p.words())
                    .for_each(&mut f);
            } else {
                // (position in the compact key, query mask word, query value word)
                let checks: Vec<(usize, u64, u64)> = st
                    .idx()
                    .iter()
                    .enumerate()
                    .filter(|(_, &i)| mask.w[i as usize] != 0)
                    .map(|(j, &i)| (j, mask.w[i as usize], v.w[i as usize]))
                    .collect();
                st.map.for_each(|r| {
                    let k = r.key_words();
                    if checks.iter().all(|&(j, m, qv)| k[j] & m == qv) {
                        f(r);
                    }
                });
            }
        }
    }

    /// True when a rule of this priority exists that some packet could match
    /// together with `(value, mask)` (OFPFF_CHECK_OVERLAP).
    pub fn has_overlap(&self, value: &FlowKey, mask: &FlowKey, priority: u16) -> bool {
        let v = value.masked(mask);
        for st in &self.subtables {
            if !st.prios.contains_key(&priority) {
                continue;
            }
            if st.mask.is_subset_of(mask) {
                // Every rule here is at most as specific: only the rules at our value
                // masked to the subtable's mask can overlap, and they all do.
                let p = st.probe(&v);
                if st
                    .bucket(p.words())
                    .iter()
                    .any(|r| r.priority() == priority && r.key_words() == p.words())
                {
                    return true;
                }
            } else {
                // (position in the compact key, common mask word, query value word)
                let checks: Vec<(usize, u64, u64)> = st
                    .idx()
                    .iter()
                    .enumerate()
                    .map(|(j, &i)| {
                        (
                            j,
                            st.mask.w[i as usize] & mask.w[i as usize],
                            v.w[i as usize],
                        )
                    })
                    .filter(|&(_, m, _)| m != 0)
                    .collect();
                let mut found = false;
                st.map.for_each(|r| {
                    if !found && r.priority() == priority {
                        let k = r.key_words();
                        found = checks.iter().all(|&(j, m, qv)| (k[j] ^ qv) & m == 0);
                    }
                });
                if found {
                    return true;
                }
            }
        }
        false
    }
}

/// The full masked value of a rule.
pub fn rule_value<R: ClassifierRule>(r: &R) -> FlowKey {
    expand_words(r.key_words(), r.mask())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    /// A minimal rule for classifier tests.
    #[derive(Clone, Debug, PartialEq)]
    pub(crate) struct T {
        pub mask: FlowKey,
        pub key: KeyWords,
        pub prio: u16,
        pub id: u32,
    }

    impl HamtItem for T {
        fn key_words(&self) -> &[u64] {
            self.key.as_slice()
        }
    }

    impl ClassifierRule for T {
        fn mask(&self) -> &FlowKey {
            &self.mask
        }
        fn priority(&self) -> u16 {
            self.prio
        }
    }

    pub(crate) fn t(v: &FlowKey, m: &FlowKey, prio: u16, id: u32) -> T {
        T {
            mask: *m,
            key: KeyWords::new(v, m),
            prio,
            id,
        }
    }

    fn km(fields: &[(Field, u128, u128)]) -> (FlowKey, FlowKey) {
        let mut v = FlowKey::default();
        let mut m = FlowKey::default();
        for &(f, val, mask) in fields {
            v.set(f, val & mask);
            m.set(f, mask);
        }
        (v, m)
    }

    fn id(x: Option<(u16, &T)>) -> Option<u32> {
        x.map(|(_, r)| r.id)
    }

    #[test]
    fn lookup_picks_highest_priority_and_records_wildcards() {
        let mut c: Classifier<T> = Classifier::default();
        let (v1, m1) = km(&[(Field::NwSrc, 0x0a000001, 0xffffffff)]);
        let (v2, m2) = km(&[(Field::NwSrc, 0x0a000000, 0xffffff00)]);
        let (v3, m3) = km(&[]);
        c.insert(t(&v1, &m1, 10, 1));
        c.insert(t(&v2, &m2, 20, 2));
        c.insert(t(&v3, &m3, 0, 3));
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, 0x0a000001);
        let mut wc = FlowKey::default();
        assert_eq!(id(c.lookup(&k, &mut wc)), Some(2));
        // Stopped after the /24 subtable (priority 20 beats max 10 of the /32 one).
        assert_eq!(wc.get(Field::NwSrc), 0xffffff00);
        k.set(Field::NwSrc, 0x0b000001);
        let mut wc = FlowKey::default();
        assert_eq!(id(c.lookup(&k, &mut wc)), Some(3));
        assert_eq!(wc.get(Field::NwSrc), 0xffffffff);
        assert_eq!(c.len(), 3);
        assert_eq!(c.remove(&v2, &m2, 20).map(|r| r.id), Some(2));
        assert_eq!(c.remove(&v2, &m2, 20), None);
        k.set(Field::NwSrc, 0x0a000001);
        let mut wc = FlowKey::default();
        assert_eq!(id(c.lookup(&k, &mut wc)), Some(1));
        assert_eq!(c.n_subtables(), 2);
        // Rules of one subtable share its mask allocation.
        assert!(c.shared_mask(&m1).is_some());
        assert!(c.shared_mask(&m2).is_none());
    }

    #[test]
    fn same_key_different_priorities_and_replace() {
        let mut c: Classifier<T> = Classifier::default();
        let (v, m) = km(&[(Field::TpDst, 80, 0xffff)]);
        assert_eq!(c.insert(t(&v, &m, 5, 1)), None);
        assert_eq!(c.insert(t(&v, &m, 7, 2)), None);
        assert_eq!(c.insert(t(&v, &m, 7, 3)).map(|r| r.id), Some(2));
        assert_eq!(c.find_exact(&v, &m, 5).map(|r| r.id), Some(1));
        assert_eq!(c.find_exact(&v, &m, 6), None);
        let mut k = FlowKey::default();
        k.set(Field::TpDst, 80);
        let mut wc = FlowKey::default();
        assert_eq!(c.lookup(&k, &mut wc).map(|(p, r)| (p, r.id)), Some((7, 3)));
        assert_eq!(c.replace(t(&v, &m, 9, 4)).map_err(|r| r.id), Err(4));
        assert_eq!(c.replace(t(&v, &m, 5, 4)).map(|r| r.id), Ok(1));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn subsumed_and_overlap_queries() {
        let mut c: Classifier<T> = Classifier::default();
        let (va, ma) = km(&[
            (Field::DlType, 0x800, 0xffff),
            (Field::NwSrc, 1, 0xffffffff),
        ]);
        let (vb, mb) = km(&[
            (Field::DlType, 0x800, 0xffff),
            (Field::NwSrc, 2, 0xffffffff),
        ]);
        let (vc, mc) = km(&[(Field::DlType, 0x806, 0xffff)]);
        c.insert(t(&va, &ma, 100, 1));
        c.insert(t(&vb, &mb, 100, 2));
        c.insert(t(&vc, &mc, 100, 3));
        let (vq, mq) = km(&[(Field::DlType, 0x800, 0xffff)]);
        let mut got = vec![];
        c.for_each_subsumed(&vq, &mq, |r| got.push(r.id));
        got.sort();
        assert_eq!(got, vec![1, 2]);
        let mut all = vec![];
        c.for_each_subsumed(&FlowKey::default(), &FlowKey::default(), |r| all.push(r.id));
        assert_eq!(all.len(), 3);
        assert!(c.has_overlap(&vq, &mq, 100));
        assert!(!c.has_overlap(&vq, &mq, 99));
        let (vt, mt) = km(&[(Field::TpDst, 22, 0xffff)]);
        assert!(c.has_overlap(&vt, &mt, 100));
        let (vn, mn) = km(&[(Field::DlType, 0x86dd, 0xffff)]);
        assert!(!c.has_overlap(&vn, &mn, 100));
        let (vs, ms) = km(&[
            (Field::DlType, 0x800, 0xffff),
            (Field::NwSrc, 3, 0xffffffff),
        ]);
        assert!(!c.has_overlap(&vs, &ms, 100));
        assert!(c.has_overlap(&va, &ma, 100));
    }

    #[test]
    fn clones_are_independent() {
        let mut c: Classifier<T> = Classifier::default();
        for i in 0..100u128 {
            let (v, m) = km(&[(Field::NwSrc, i, 0xffffffff)]);
            c.insert(t(&v, &m, 1, i as u32));
        }
        let snap = c.clone();
        for i in 0..50u128 {
            let (v, m) = km(&[(Field::NwSrc, i, 0xffffffff)]);
            c.remove(&v, &m, 1);
        }
        assert_eq!(snap.len(), 100);
        assert_eq!(c.len(), 50);
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, 3);
        let mut wc = FlowKey::default();
        assert!(snap.lookup(&k, &mut wc).is_some());
        assert!(c.lookup(&k, &mut wc).is_none());
    }

    #[test]
    fn key_words_round_trip_inline_and_heap() {
        let (v, m) = km(&[(Field::NwSrc, 0x0a000001, 0xffffffff)]);
        let k = KeyWords::new(&v, &m);
        assert!(matches!(k, KeyWords::Inline { n: 1, .. }));
        assert_eq!(k.expand(&m), v);
        let (v, m) = km(&[
            (Field::InPort, 3, 0xffffffff),
            (Field::DlDst, 0x0200_0000_0001, 0xffff_ffff_ffff),
            (Field::DlSrc, 0x0200_0000_0002, 0xffff_ffff_ffff),
            (Field::NwSrc, 1, 0xffffffff),
            (Field::TpDst, 80, 0xffff),
            (Field::TunnelId, 9, u64::MAX as u128),
        ]);
        let k = KeyWords::new(&v, &m);
        assert!(matches!(k, KeyWords::Heap(_)));
        assert_eq!(k.as_slice().len(), 6);
        assert_eq!(k.expand(&m), v);
        let r = t(&v, &m, 1, 1);
        assert_eq!(rule_value(&r), v);
    }
}

#[cfg(test)]
mod prop_tests {
    use super::tests::{t, T};
    use super::*;
    use crate::datapath::flow::Field;
    use proptest::prelude::*;

    const FIELDS: [Field; 5] = [
        Field::NwSrc,
        Field::TpDst,
        Field::InPort,
        Field::DlSrc,
        Field::TunnelId,
    ];

    fn rule() -> impl Strategy<Value = (Vec<(u8, u8)>, u16)> {
        (proptest::collection::vec((0u8..4, 0u8..4), 5), 0u16..1000)
    }

    proptest! {
        /// Lookup agrees with a brute-force scan, and the reported wildcards are
        /// enough: any key equal to the probe under them gets the same answer.
        /// Strict lookups, subsumption and removal agree with the model too, and
        /// each rule's compact key expands back to its value.
        #[test]
        fn lookup_matches_brute_force(
            rules in proptest::collection::vec(rule(), 0..40),
            probes in proptest::collection::vec(
                (proptest::collection::vec(0u8..4, 5), any::<u64>()), 1..20),
            removals in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
        ) {
            let mut c: Classifier<T> = Classifier::default();
            let mut all: Vec<(FlowKey, FlowKey, u16, u32)> = vec![];
            for (i, (fs, prio)) in rules.iter().enumerate() {
                let mut v = FlowKey::default();
                let mut m = FlowKey::default();
                for (f, &(val, mask)) in FIELDS.iter().zip(fs.iter()) {
                    m.set(*f, mask as u128);
                    v.set(*f, (val & mask) as u128);
                }
                // Unique priority per (match) so the winner is well defined.
                let prio = prio * 64 + i as u16;
                if c.find_exact(&v, &m, prio).is_none() {
                    let r = t(&v, &m, prio, i as u32);
                    prop_assert_eq!(rule_value(&r), v);
                    prop_assert_eq!(r.key.expand(&m), v);
                    c.insert(r);
                    all.push((v, m, prio, i as u32));
                }
            }
            for ix in removals {
                if all.is_empty() {
                    break;
                }
                let (v, m, p, i) = all.remove(ix.index(all.len()));
                prop_assert_eq!(c.remove(&v, &m, p).map(|r| r.id), Some(i));
            }
            prop_assert_eq!(c.len(), all.len());
            for (v, m, p, i) in &all {
                prop_assert_eq!(c.find_exact(v, m, *p).map(|r| r.id), Some(*i));
                let mut got = vec![];
                c.for_each_subsumed(v, m, |r| got.push(r.id));
                let mut want: Vec<u32> = all
                    .iter()
                    .filter(|(v2, m2, _, _)| m.is_subset_of(m2) && v2.masked(m) == *v)
                    .map(|x| x.3)
                    .collect();
                got.sort();
                want.sort();
                prop_assert_eq!(got, want);
            }
            for (vals, noise) in probes {
                let mut k = FlowKey::default();
                for (f, &x) in FIELDS.iter().zip(vals.iter()) {
                    k.set(*f, x as u128);
                }
                let want = all
                    .iter()
                    .filter(|(v, m, _, _)| k.matches(v, m))
                    .max_by_key(|(_, _, p, _)| *p)
                    .map(|(_, _, p, i)| (*p, *i));
                let mut wc = FlowKey::default();
                let got = c.lookup(&k, &mut wc).map(|(p, r)| (p, r.id));
                prop_assert_eq!(got, want);
                let mut k2 = k;
                for i in 0..FLOW_WORDS {
                    k2.w[i] = (k.w[i] & wc.w[i]) | (noise.rotate_left(i as u32) & !wc.w[i]);
                }
                let mut wc2 = FlowKey::default();
                prop_assert_eq!(c.lookup(&k2, &mut wc2).map(|(p, r)| (p, r.id)), want);
            }
        }
    }
}
