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

use super::hamt::Hamt;
use crate::datapath::flow::{FlowKey, FLOW_WORDS};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Rules sharing one mask.
#[derive(Clone, Debug)]
pub struct Subtable<R> {
    mask: FlowKey,
    map: Hamt<Vec<(u16, R)>>,
    /// Number of rules at each priority, to keep `max_priority` exact on removal.
    prios: BTreeMap<u16, usize>,
    n_rules: usize,
}

impl<R: Clone> Subtable<R> {
    fn new(mask: FlowKey) -> Self {
        Subtable {
            mask,
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
    pub fn max_priority(&self) -> u16 {
        self.prios.keys().next_back().copied().unwrap_or(0)
    }

    fn for_each(&self, f: &mut dyn FnMut(&FlowKey, u16, &R)) {
        self.map.for_each(|k, rules| {
            for (p, r) in rules {
                f(k, *p, r);
            }
        });
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

impl<R: Clone> Classifier<R> {
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

    /// Finds the highest-priority rule matching `key`, OR-ing into `wc` every mask
    /// the answer depended on. Returns `(priority, rule)`.
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
            let mk = key.masked(&st.mask);
            if let Some(rules) = st.map.get(mk.hash64(), &mk) {
                if let Some((p, r)) = rules.first() {
                    if best.is_none_or(|(bp, _)| *p > bp) {
                        best = Some((*p, r));
                    }
                }
            }
        }
        best
    }

    /// The rule with exactly this match and priority (OpenFlow "strict").
    pub fn find_exact(&self, value: &FlowKey, mask: &FlowKey, priority: u16) -> Option<&R> {
        let pos = *self.index.get(mask)?;
        let st = &self.subtables[pos];
        let v = value.masked(mask);
        let rules = st.map.get(v.hash64(), &v)?;
        rules.iter().find(|(p, _)| *p == priority).map(|(_, r)| r)
    }

    /// Inserts a rule, replacing (and returning) one with the same match and priority.
    pub fn insert(&mut self, value: &FlowKey, mask: &FlowKey, priority: u16, rule: R) -> Option<R> {
        let v = value.masked(mask);
        let pos = match self.index.get(mask) {
            Some(&p) => p,
            None => {
                self.subtables.push(Arc::new(Subtable::new(*mask)));
                let p = self.subtables.len() - 1;
                self.index.insert(*mask, p);
                p
            }
        };
        let old_max = self.subtables[pos].max_priority();
        let was_empty = self.subtables[pos].n_rules == 0;
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let rules = st.map.entry_or_insert_with(v.hash64(), &v, Vec::new);
        let at = rules.iter().position(|(p, _)| *p <= priority);
        let replaced = match at {
            Some(i) if rules[i].0 == priority => Some(std::mem::replace(&mut rules[i].1, rule)),
            Some(i) => {
                rules.insert(i, (priority, rule));
                None
            }
            None => {
                rules.push((priority, rule));
                None
            }
        };
        if replaced.is_none() {
            *st.prios.entry(priority).or_insert(0) += 1;
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
        let pos = *self.index.get(mask)?;
        let v = value.masked(mask);
        let h = v.hash64();
        // Check presence first so that a miss copies nothing.
        let present = self.subtables[pos]
            .map
            .get(h, &v)
            .is_some_and(|rs| rs.iter().any(|(p, _)| *p == priority));
        if !present {
            return None;
        }
        let st = Arc::make_mut(&mut self.subtables[pos]);
        let old_max = st.max_priority();
        let rules = st.map.get_mut(h, &v)?;
        let i = rules.iter().position(|(p, _)| *p == priority)?;
        let (_, r) = rules.remove(i);
        if rules.is_empty() {
            st.map.remove(h, &v);
        }
        if let Some(c) = st.prios.get_mut(&priority) {
            *c -= 1;
            if *c == 0 {
                st.prios.remove(&priority);
            }
        }
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

    /// Replaces the payload of an existing rule in place (same match and priority).
    /// Returns the old payload, or gives `rule` back when there is no such rule.
    pub fn replace(
        &mut self,
        value: &FlowKey,
        mask: &FlowKey,
        priority: u16,
        rule: R,
    ) -> Result<R, R> {
        if self.find_exact(value, mask, priority).is_none() {
            return Err(rule);
        }
        match self.insert(value, mask, priority, rule) {
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

    /// Calls `f(value, mask, priority, rule)` for every rule. Linear.
    pub fn for_each(&self, mut f: impl FnMut(&FlowKey, &FlowKey, u16, &R)) {
        for st in &self.subtables {
            let m = st.mask;
            st.for_each(&mut |k, p, r| f(k, &m, p, r));
        }
    }

    /// Calls `f` for every rule whose match is at least as specific as `(value, mask)`
    /// (OpenFlow non-strict modify/delete/stats semantics): the rule's mask covers
    /// `mask` and the rule's value agrees with `value` on `mask`.
    pub fn for_each_subsumed(
        &self,
        value: &FlowKey,
        mask: &FlowKey,
        mut f: impl FnMut(&FlowKey, &FlowKey, u16, &R),
    ) {
        let v = value.masked(mask);
        for st in &self.subtables {
            if !mask.is_subset_of(&st.mask) {
                continue;
            }
            let sm = st.mask;
            if st.mask == *mask {
                if let Some(rules) = st.map.get(v.hash64(), &v) {
                    for (p, r) in rules {
                        f(&v, &sm, *p, r);
                    }
                }
            } else {
                st.for_each(&mut |k, p, r| {
                    if k.masked(mask) == v {
                        f(k, &sm, p, r);
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
                let k = v.masked(&st.mask);
                if let Some(rules) = st.map.get(k.hash64(), &k) {
                    if rules.iter().any(|(p, _)| *p == priority) {
                        return true;
                    }
                }
            } else {
                let mut found = false;
                st.for_each(&mut |k, p, _| {
                    if !found && p == priority && overlaps(k, &st.mask, &v, mask) {
                        found = true;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    fn km(fields: &[(Field, u128, u128)]) -> (FlowKey, FlowKey) {
        let mut v = FlowKey::default();
        let mut m = FlowKey::default();
        for &(f, val, mask) in fields {
            v.set(f, val & mask);
            m.set(f, mask);
        }
        (v, m)
    }

    #[test]
    fn lookup_picks_highest_priority_and_records_wildcards() {
        let mut c: Classifier<&'static str> = Classifier::default();
        let (v1, m1) = km(&[(Field::NwSrc, 0x0a000001, 0xffffffff)]);
        let (v2, m2) = km(&[(Field::NwSrc, 0x0a000000, 0xffffff00)]);
        let (v3, m3) = km(&[]);
        c.insert(&v1, &m1, 10, "host");
        c.insert(&v2, &m2, 20, "net");
        c.insert(&v3, &m3, 0, "miss");
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, 0x0a000001);
        let mut wc = FlowKey::default();
        assert_eq!(c.lookup(&k, &mut wc).map(|x| *x.1), Some("net"));
        // Stopped after the /24 subtable (priority 20 beats max 10 of the /32 one).
        assert_eq!(wc.get(Field::NwSrc), 0xffffff00);
        k.set(Field::NwSrc, 0x0b000001);
        let mut wc = FlowKey::default();
        assert_eq!(c.lookup(&k, &mut wc).map(|x| *x.1), Some("miss"));
        assert_eq!(wc.get(Field::NwSrc), 0xffffffff);
        assert_eq!(c.len(), 3);
        assert_eq!(c.remove(&v2, &m2, 20), Some("net"));
        assert_eq!(c.remove(&v2, &m2, 20), None);
        k.set(Field::NwSrc, 0x0a000001);
        let mut wc = FlowKey::default();
        assert_eq!(c.lookup(&k, &mut wc).map(|x| *x.1), Some("host"));
        assert_eq!(c.n_subtables(), 2);
    }

    #[test]
    fn same_key_different_priorities_and_replace() {
        let mut c: Classifier<u32> = Classifier::default();
        let (v, m) = km(&[(Field::TpDst, 80, 0xffff)]);
        assert_eq!(c.insert(&v, &m, 5, 1), None);
        assert_eq!(c.insert(&v, &m, 7, 2), None);
        assert_eq!(c.insert(&v, &m, 7, 3), Some(2));
        assert_eq!(c.find_exact(&v, &m, 5), Some(&1));
        assert_eq!(c.find_exact(&v, &m, 6), None);
        let mut k = FlowKey::default();
        k.set(Field::TpDst, 80);
        let mut wc = FlowKey::default();
        assert_eq!(c.lookup(&k, &mut wc), Some((7, &3)));
        assert_eq!(c.replace(&v, &m, 9, 4), Err(4));
        assert_eq!(c.replace(&v, &m, 5, 4), Ok(1));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn subsumed_and_overlap_queries() {
        let mut c: Classifier<u32> = Classifier::default();
        let (va, ma) = km(&[
            (Field::DlType, 0x800, 0xffff),
            (Field::NwSrc, 1, 0xffffffff),
        ]);
        let (vb, mb) = km(&[
            (Field::DlType, 0x800, 0xffff),
            (Field::NwSrc, 2, 0xffffffff),
        ]);
        let (vc, mc) = km(&[(Field::DlType, 0x806, 0xffff)]);
        c.insert(&va, &ma, 100, 1);
        c.insert(&vb, &mb, 100, 2);
        c.insert(&vc, &mc, 100, 3);
        let (vq, mq) = km(&[(Field::DlType, 0x800, 0xffff)]);
        let mut got = vec![];
        c.for_each_subsumed(&vq, &mq, |_, _, _, r| got.push(*r));
        got.sort();
        assert_eq!(got, vec![1, 2]);
        let mut all = vec![];
        c.for_each_subsumed(&FlowKey::default(), &FlowKey::default(), |_, _, _, r| {
            all.push(*r)
        });
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
        let mut c: Classifier<u32> = Classifier::default();
        for i in 0..100u128 {
            let (v, m) = km(&[(Field::NwSrc, i, 0xffffffff)]);
            c.insert(&v, &m, 1, i as u32);
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
}

#[cfg(test)]
mod prop_tests {
    use super::*;
    use crate::datapath::flow::Field;
    use proptest::prelude::*;

    const FIELDS: [Field; 3] = [Field::NwSrc, Field::TpDst, Field::InPort];

    fn rule() -> impl Strategy<Value = (Vec<(u8, u8)>, u16)> {
        (proptest::collection::vec((0u8..4, 0u8..4), 3), 0u16..1000)
    }

    proptest! {
        /// Lookup agrees with a brute-force scan, and the reported wildcards are
        /// enough: any key equal to the probe under them gets the same answer.
        #[test]
        fn lookup_matches_brute_force(
            rules in proptest::collection::vec(rule(), 0..40),
            probes in proptest::collection::vec((0u8..4, 0u8..4, 0u8..4, any::<u64>()), 1..20),
        ) {
            let mut c: Classifier<usize> = Classifier::default();
            let mut all: Vec<(FlowKey, FlowKey, u16, usize)> = vec![];
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
                    c.insert(&v, &m, prio, i);
                    all.push((v, m, prio, i));
                }
            }
            prop_assert_eq!(c.len(), all.len());
            for (a, b, d, noise) in probes {
                let mut k = FlowKey::default();
                k.set(Field::NwSrc, a as u128);
                k.set(Field::TpDst, b as u128);
                k.set(Field::InPort, d as u128);
                let want = all
                    .iter()
                    .filter(|(v, m, _, _)| k.matches(v, m))
                    .max_by_key(|(_, _, p, _)| *p)
                    .map(|(_, _, p, i)| (*p, *i));
                let mut wc = FlowKey::default();
                let got = c.lookup(&k, &mut wc).map(|(p, r)| (p, *r));
                prop_assert_eq!(got, want);
                let mut k2 = k;
                for i in 0..FLOW_WORDS {
                    k2.w[i] = (k.w[i] & wc.w[i]) | (noise.rotate_left(i as u32) & !wc.w[i]);
                }
                let mut wc2 = FlowKey::default();
                prop_assert_eq!(c.lookup(&k2, &mut wc2).map(|(p, r)| (p, *r)), want);
            }
        }
    }
}
