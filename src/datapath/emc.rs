//! The exact-match cache (EMC): the first lookup a received packet meets.
//!
//! Owned by exactly one poll thread and never shared, so it needs no lock. It maps
//! a packet's full [`FlowKey`] to the megaflow that last matched it. Each key has
//! two candidate slots (derived from two disjoint parts of its 64-bit hash, as in
//! OVS's EMC); a lookup compares the stored hash first and the full key second, so
//! a hit is always exact. The table is allocated once, at creation, and never
//! grows. Entries whose flow has been deleted (`DpFlow::is_dead`) are ignored by
//! lookups and reclaimed by [`Emc::sweep`] or overwritten by later inserts; the
//! cache only holds `Arc`s, so a dead flow's memory lives until its slot is reused
//! or swept.

use super::dpflow::DpFlow;
use super::flow::FlowKey;
use std::sync::Arc;

/// Number of entries (a power of two).
pub const EMC_ENTRIES: usize = 8192;
const EMC_MASK: u64 = (EMC_ENTRIES - 1) as u64;
/// Bits of the hash consumed by one slot index.
const EMC_SHIFT: u32 = EMC_ENTRIES.trailing_zeros();

struct Entry {
    hash: u64,
    key: FlowKey,
    flow: Option<Arc<DpFlow>>,
}

/// The per-thread exact-match cache.
///
/// The slots (about 1.5 MB) are allocated at the first insertion, not at
/// thread start: a poll thread that never forwards (no ports yet, or an idle
/// bridge) keeps none of it resident.
pub struct Emc {
    /// Empty until the first insertion, then `EMC_ENTRIES` slots.
    entries: Box<[Entry]>,
    /// 0 = never insert; 1 = insert on every miss; N = insert on about 1 in N.
    insert_inv_prob: u32,
    rng: u32,
    sweep_pos: usize,
}

impl Emc {
    /// Allocates the table. `insert_inv_prob` is the inverse insertion probability
    /// (OVS's `emc-insert-inv-prob`): inserting only a fraction of the misses keeps
    /// short flows from evicting long ones when there are many more flows than slots.
    pub fn new(insert_inv_prob: u32) -> Emc {
        Emc {
            entries: Box::default(),
            insert_inv_prob,
            rng: 0x9e37_79b9,
            sweep_pos: 0,
        }
    }

    /// Allocates the slots if this is the first insertion.
    #[cold]
    fn allocate(&mut self) {
        self.entries = (0..EMC_ENTRIES)
            .map(|_| Entry {
                hash: 0,
                key: FlowKey::default(),
                flow: None,
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
    }

    #[inline]
    fn slots(hash: u64) -> [usize; 2] {
        [
            (hash & EMC_MASK) as usize,
            ((hash >> EMC_SHIFT) & EMC_MASK) as usize,
        ]
    }

    /// Finds the live flow cached for exactly `key`; `hash` must be `key.hash64()`.
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64) -> Option<&Arc<DpFlow>> {
        if self.entries.is_empty() {
            return None;
        }
        for i in Self::slots(hash) {
            let e = &self.entries[i];
            if e.hash == hash && e.key == *key {
                if let Some(f) = &e.flow {
                    if !f.is_dead() {
                        return Some(f);
                    }
                }
            }
        }
        None
    }

    /// Caches `flow` for `key` subject to the insertion probability (the decision
    /// comes from a per-cache xorshift generator; no system randomness per packet).
    #[inline]
    pub fn maybe_insert(&mut self, key: &FlowKey, hash: u64, flow: &Arc<DpFlow>) {
        match self.insert_inv_prob {
            0 => {}
            1 => self.insert(key, hash, flow),
            n => {
                let mut x = self.rng;
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                self.rng = x;
                if x.is_multiple_of(n) {
                    self.insert(key, hash, flow);
                }
            }
        }
    }

    /// Caches `flow` for `key` unconditionally. Replaces the entry for the same key
    /// if present, else an empty or dead slot, else the candidate with the smaller
    /// stored hash (an arbitrary but cheap choice that spreads evictions).
    pub fn insert(&mut self, key: &FlowKey, hash: u64, flow: &Arc<DpFlow>) {
        if self.entries.is_empty() {
            self.allocate();
        }
        let [a, b] = Self::slots(hash);
        let mut victim = None;
        for i in [a, b] {
            let e = &self.entries[i];
            if e.hash == hash && e.key == *key {
                victim = Some(i);
                break;
            }
        }
        let victim = victim.unwrap_or_else(|| {
            let free = |i: usize| match &self.entries[i].flow {
                None => true,
                Some(f) => f.is_dead(),
            };
            if free(a) {
                a
            } else if free(b) {
                b
            } else if self.entries[a].hash <= self.entries[b].hash {
                a
            } else {
                b
            }
        });
        let e = &mut self.entries[victim];
        e.hash = hash;
        e.key = *key;
        e.flow = Some(Arc::clone(flow));
    }

    /// Releases the `Arc`s of dead flows in up to `budget` slots, continuing where
    /// the previous call stopped, so housekeeping cost is bounded per call.
    /// Returns how many entries were cleared.
    pub fn sweep(&mut self, budget: usize) -> usize {
        let mut cleared = 0;
        if self.entries.is_empty() {
            return 0;
        }
        for _ in 0..budget.min(EMC_ENTRIES) {
            let e = &mut self.entries[self.sweep_pos];
            if e.flow.as_ref().is_some_and(|f| f.is_dead()) {
                e.flow = None;
                e.hash = 0;
                cleared += 1;
            }
            self.sweep_pos = (self.sweep_pos + 1) & (EMC_ENTRIES - 1);
        }
        cleared
    }

    /// Empties the cache (flow flush).
    pub fn clear(&mut self) {
        for e in self.entries.iter_mut() {
            e.flow = None;
            e.hash = 0;
        }
    }

    /// Number of occupied slots (live or dead), for statistics and tests.
    pub fn occupied(&self) -> usize {
        self.entries.iter().filter(|e| e.flow.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    fn key(n: u128) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(Field::NwSrc, n);
        k.set(Field::InPort, 1);
        k
    }

    fn flow(id: u64, k: &FlowKey) -> Arc<DpFlow> {
        let mut m = FlowKey::default();
        m.set_exact(Field::NwSrc);
        Arc::new(DpFlow::new(id, k, &m, vec![], 1))
    }

    #[test]
    fn insert_lookup_and_dead() {
        let mut emc = Emc::new(1);
        let k = key(5);
        let f = flow(1, &k);
        assert!(emc.lookup(&k, k.hash64()).is_none());
        // Nothing allocated before the first insertion; sweeping is a no-op.
        assert_eq!(emc.sweep(EMC_ENTRIES), 0);
        assert_eq!(emc.entries.len(), 0);
        emc.insert(&k, k.hash64(), &f);
        assert_eq!(emc.lookup(&k, k.hash64()).unwrap().id, 1);
        // Same hash, different key: no hit.
        assert!(emc.lookup(&key(6), k.hash64()).is_none());
        f.kill();
        assert!(emc.lookup(&k, k.hash64()).is_none());
        assert_eq!(emc.sweep(EMC_ENTRIES), 1);
        assert_eq!(emc.occupied(), 0);
    }

    #[test]
    fn two_candidates_then_eviction() {
        let mut emc = Emc::new(1);
        // Three keys forced onto the same two slots via a fabricated hash.
        let h = 0x0000_0000_0200_0001u64;
        let (k1, k2, k3) = (key(1), key(2), key(3));
        let (f1, f2, f3) = (flow(1, &k1), flow(2, &k2), flow(3, &k3));
        emc.insert(&k1, h, &f1);
        emc.insert(&k2, h, &f2);
        assert_eq!(emc.lookup(&k1, h).unwrap().id, 1);
        assert_eq!(emc.lookup(&k2, h).unwrap().id, 2);
        emc.insert(&k3, h, &f3);
        assert_eq!(emc.lookup(&k3, h).unwrap().id, 3);
        let survivors = [&k1, &k2]
            .iter()
            .filter(|k| emc.lookup(k, h).is_some())
            .count();
        assert_eq!(survivors, 1);
        // Re-inserting the same key replaces in place.
        let f3b = flow(4, &k3);
        emc.insert(&k3, h, &f3b);
        assert_eq!(emc.lookup(&k3, h).unwrap().id, 4);
        assert_eq!(emc.occupied(), 2);
    }

    #[test]
    fn insertion_probability_knob() {
        let mut never = Emc::new(0);
        let mut sometimes = Emc::new(4);
        for i in 0..1000u128 {
            let k = key(i);
            let f = flow(i as u64, &k);
            never.maybe_insert(&k, k.hash64(), &f);
            sometimes.maybe_insert(&k, k.hash64(), &f);
        }
        assert_eq!(never.occupied(), 0);
        let n = sometimes.occupied();
        assert!(n > 50 && n < 600, "{n}");
        sometimes.clear();
        assert_eq!(sometimes.occupied(), 0);
    }
}
