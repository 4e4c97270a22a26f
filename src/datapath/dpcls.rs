//! The megaflow classifier (OVS's "dpcls"): the second lookup, after the EMC.
//!
//! Owned by one poll thread; no lock. Megaflows are grouped by mask into
//! subtables; each subtable is a `hashbrown::HashTable<Arc<DpFlow>>` keyed by the
//! flow's own masked key (stored once, inside the flow), so a lookup costs one
//! mask-and-hash plus one probe per subtable until a hit. Masking, hashing and
//! comparing touch only the words the subtable's mask does not zero. The
//! subtables are kept in descending order of recent hits (re-ranked every
//! [`RESORT_INTERVAL`] lookups, and by [`Dpcls::resort`] from housekeeping) so that
//! the busiest masks are probed first. Empty subtables are removed at once.
//!
//! Duplicates: inserting a flow whose (masked key, mask) equals an existing flow's
//! *replaces* the old one and returns it, so the caller can mark it dead. The
//! upcall path suppresses duplicates before installing, so this only happens in
//! races; the newer flow (with the newer translation) wins. Re-inserting an id that
//! is already present first removes the old entry with that id.
//!
//! Lookups skip dead flows (`DpFlow::is_dead`), so deletion takes effect as soon as
//! the deleter's store is visible, before the `FlowDel` op removes the entry.

use super::dpflow::DpFlow;
use super::flow::{FlowKey, FLOW_WORDS};
use hashbrown::hash_table::Entry;
use hashbrown::HashTable;
use std::sync::Arc;

/// Lookups between two automatic re-rankings of the subtables.
pub const RESORT_INTERVAL: u32 = 1024;

struct Subtable {
    /// Stable identity (indices move when re-ranking).
    id: u32,
    mask: FlowKey,
    /// Indices of the mask's non-zero words: only these are masked, hashed and
    /// compared (the others are zero in every key of the subtable).
    words: [u8; FLOW_WORDS],
    n_words: usize,
    flows: HashTable<Arc<DpFlow>>,
    hits: u64,
}

impl Subtable {
    fn new(id: u32, mask: FlowKey) -> Subtable {
        let (words, n_words) = mask.nonzero_words();
        Subtable {
            id,
            mask,
            words,
            n_words,
            flows: HashTable::new(),
            hits: 0,
        }
    }

    /// Hash of `key & mask` over the significant words (same mixing as
    /// [`FlowKey::hash64`], but skipping words the mask ignores).
    #[inline]
    fn hash(&self, key: &FlowKey) -> u64 {
        Self::hash_words(&self.words[..self.n_words], &self.mask, key)
    }

    #[inline]
    fn hash_words(words: &[u8], mask: &FlowKey, key: &FlowKey) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h: u64 = 0;
        for &i in words {
            let i = i as usize;
            h = (h.rotate_left(5) ^ (key.w[i] & mask.w[i])).wrapping_mul(K);
        }
        h ^ (h >> 29)
    }

    /// Hash of a flow's stored words: the same value [`Subtable::hash`]
    /// gives for any key that matches it (its words are `key & mask` over
    /// the subtable's significant words, in the same order).
    #[inline]
    fn hash_stored(stored: &[u64]) -> u64 {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut h: u64 = 0;
        for &w in stored {
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        h ^ (h >> 29)
    }

    /// True when a flow's stored words equal `key & mask`.
    #[inline]
    fn eq(&self, stored: &[u64], key: &FlowKey) -> bool {
        stored.len() == self.n_words
            && self.words[..self.n_words]
                .iter()
                .zip(stored)
                .all(|(&i, &w)| {
                    let i = i as usize;
                    w == key.w[i] & self.mask.w[i]
                })
    }
}

/// The per-thread megaflow classifier.
#[derive(Default)]
pub struct Dpcls {
    subtables: Vec<Subtable>,
    /// Flows over all subtables. There is no index by flow id: a flow is
    /// found again from itself (its mask names the subtable, its words give
    /// the hash), which saves an entry per megaflow (3 MB per 100k).
    n_flows: usize,
    next_subtable_id: u32,
    lookups: u32,
}

impl Dpcls {
    /// An empty classifier.
    pub fn new() -> Dpcls {
        Dpcls::default()
    }

    /// Finds the live megaflow matching packet key `key`, probing subtables in rank
    /// order. Allocation-free; the hit counter feeds the ranking.
    #[inline]
    pub fn lookup(&mut self, key: &FlowKey) -> Option<&Arc<DpFlow>> {
        let mut probes = 0;
        self.lookup_counted(key, &mut probes)
    }

    /// [`Dpcls::lookup`] that, on a hit, adds the number of subtables probed
    /// to `probes` (OVS's masked-lookup count, `dpif-netdev.c:dpcls_lookup()`'s
    /// `num_lookups_p`): a local add, no atomics.
    #[inline]
    pub fn lookup_counted(&mut self, key: &FlowKey, probes: &mut u64) -> Option<&Arc<DpFlow>> {
        self.lookups += 1;
        if self.lookups >= RESORT_INTERVAL {
            self.resort();
        }
        for (i, st) in self.subtables.iter_mut().enumerate() {
            let h = st.hash(key);
            if let Some(f) = st.flows.find(h, |f| st.eq(f.words(), key)) {
                if !f.is_dead() {
                    st.hits += 1;
                    *probes += i as u64 + 1;
                    return Some(f);
                }
            }
        }
        None
    }

    /// Re-ranks subtables by hits since the last ranking (busiest first), then
    /// halves the counters so the ranking follows changes in traffic. Sorting is
    /// in place and allocation-free.
    pub fn resort(&mut self) {
        self.lookups = 0;
        self.subtables
            .sort_unstable_by(|a, b| b.hits.cmp(&a.hits).then(a.id.cmp(&b.id)));
        for st in &mut self.subtables {
            st.hits /= 2;
        }
    }

    /// Installs `flow`. Returns the flow it replaced (same masked key and
    /// mask), which the caller should kill if it is a different flow. Flow
    /// ids are unique and a flow's key never changes, so an id is never in
    /// the classifier under two keys.
    pub fn insert(&mut self, flow: Arc<DpFlow>) -> Option<Arc<DpFlow>> {
        let pos = match self.subtables.iter().position(|s| s.mask == *flow.mask) {
            Some(p) => p,
            None => {
                let id = self.next_subtable_id;
                self.next_subtable_id = self.next_subtable_id.wrapping_add(1);
                self.subtables.push(Subtable::new(id, *flow.mask));
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[pos];
        let h = Subtable::hash_stored(flow.words());
        let rehash = |f: &Arc<DpFlow>| Subtable::hash_stored(f.words());
        match st.flows.entry(h, |f| f.words() == flow.words(), rehash) {
            Entry::Occupied(mut e) => Some(std::mem::replace(e.get_mut(), flow)),
            Entry::Vacant(e) => {
                e.insert(flow);
                self.n_flows += 1;
                None
            }
        }
    }

    /// Removes `flow` (this very flow, by id, not another with its key); an
    /// emptied subtable goes too.
    pub fn remove(&mut self, flow: &DpFlow) -> Option<Arc<DpFlow>> {
        let pos = self.subtables.iter().position(|s| s.mask == *flow.mask)?;
        let st = &mut self.subtables[pos];
        let h = Subtable::hash_stored(flow.words());
        let removed = match st.flows.find_entry(h, |f| f.id == flow.id) {
            Ok(e) => Some(e.remove().0),
            Err(_) => None,
        };
        if removed.is_some() {
            self.n_flows -= 1;
        }
        if st.flows.is_empty() {
            self.subtables.remove(pos);
        }
        removed
    }

    /// Drops every dead flow (housekeeping: reclaims flows whose `FlowDel` op was
    /// lost or not yet sent). Returns how many were dropped.
    pub fn purge_dead(&mut self) -> usize {
        let mut n = 0;
        for st in self.subtables.iter_mut() {
            st.flows.retain(|f| {
                let dead = f.is_dead();
                n += dead as usize;
                !dead
            });
        }
        self.subtables.retain(|s| !s.flows.is_empty());
        self.n_flows -= n;
        n
    }

    /// Removes everything.
    pub fn clear(&mut self) {
        self.subtables.clear();
        self.n_flows = 0;
    }

    /// Number of flows (live or dead-but-not-yet-removed).
    pub fn len(&self) -> usize {
        self.n_flows
    }

    /// True when there are no flows.
    pub fn is_empty(&self) -> bool {
        self.n_flows == 0
    }

    /// Number of subtables (distinct masks).
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Subtable masks in current probe order (for diagnostics and tests).
    pub fn masks(&self) -> impl Iterator<Item = &FlowKey> {
        self.subtables.iter().map(|s| &s.mask)
    }

    /// Every installed flow, for dumps.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<DpFlow>> {
        self.subtables.iter().flat_map(|s| s.flows.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    fn pkt(port: u32, src: u32, dst: u32, tp: u16) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(Field::InPort, port as u128);
        k.set(Field::DlType, 0x0800);
        k.set(Field::NwSrc, src as u128);
        k.set(Field::NwDst, dst as u128);
        k.set(Field::TpDst, tp as u128);
        k
    }

    fn mask(fields: &[Field]) -> FlowKey {
        let mut m = FlowKey::default();
        for f in fields {
            m.set_exact(*f);
        }
        m
    }

    fn flow(id: u64, k: &FlowKey, m: &FlowKey) -> Arc<DpFlow> {
        Arc::new(DpFlow::new(id, k, m, vec![], 1))
    }

    #[test]
    fn masked_lookup_insert_remove() {
        let mut c = Dpcls::new();
        let m_port = mask(&[Field::InPort]);
        let m_dst = mask(&[Field::InPort, Field::NwDst]);
        c.insert(flow(1, &pkt(1, 0, 0, 0), &m_port));
        let f2 = flow(2, &pkt(2, 0, 9, 0), &m_dst);
        c.insert(f2.clone());
        assert_eq!(c.len(), 2);
        assert_eq!(c.n_subtables(), 2);
        assert_eq!(c.lookup(&pkt(1, 5, 6, 7)).unwrap().id, 1);
        assert_eq!(c.lookup(&pkt(2, 5, 9, 7)).unwrap().id, 2);
        assert!(c.lookup(&pkt(2, 5, 8, 7)).is_none());
        assert!(c.lookup(&pkt(3, 5, 9, 7)).is_none());
        // Two subtables: a hit in the second probes both.
        let mut probes = 0;
        let first = c
            .lookup_counted(&pkt(1, 5, 6, 7), &mut probes)
            .map(|f| f.id);
        let second = c
            .lookup_counted(&pkt(2, 5, 9, 7), &mut probes)
            .map(|f| f.id);
        assert_eq!((first, second), (Some(1), Some(2)));
        assert!(probes == 3, "1 + 2 subtables probed, got {probes}");

        assert_eq!(c.remove(&f2).unwrap().id, 2);
        assert!(c.remove(&f2).is_none());
        assert_eq!(c.n_subtables(), 1, "empty subtable removed");
        assert!(c.lookup(&pkt(2, 5, 9, 7)).is_none());
        assert_eq!(c.iter().count(), 1);
    }

    #[test]
    fn dead_flows_are_skipped_and_purged() {
        let mut c = Dpcls::new();
        let m1 = mask(&[Field::InPort, Field::NwDst]);
        let m2 = mask(&[Field::InPort]);
        let specific = flow(1, &pkt(1, 0, 9, 0), &m1);
        c.insert(specific.clone());
        c.insert(flow(2, &pkt(1, 0, 0, 0), &m2));
        // The specific subtable is probed first (inserted first, no hits yet).
        assert_eq!(c.masks().next(), Some(&m1));
        assert_eq!(c.lookup(&pkt(1, 0, 9, 0)).unwrap().id, 1);
        specific.kill();
        assert_eq!(c.lookup(&pkt(1, 0, 9, 0)).unwrap().id, 2);
        assert_eq!(c.purge_dead(), 1);
        assert_eq!(c.len(), 1);
        assert_eq!(c.n_subtables(), 1);
    }

    #[test]
    fn duplicate_replaces_and_same_id_reinsert() {
        let mut c = Dpcls::new();
        let m = mask(&[Field::InPort]);
        let f1 = flow(1, &pkt(1, 0, 0, 0), &m);
        assert!(c.insert(f1.clone()).is_none());
        let f2 = flow(2, &pkt(1, 3, 3, 3), &m);
        let old = c.insert(f2.clone()).unwrap();
        assert_eq!(old.id, 1);
        assert_eq!(c.len(), 1);
        // The replaced flow is gone; removing it does not take its successor.
        assert!(c.remove(&f1).is_none());
        assert_eq!(c.lookup(&pkt(1, 0, 0, 0)).unwrap().id, 2);
        // The same flow again (a resent put) replaces itself.
        assert_eq!(c.insert(f2.clone()).unwrap().id, 2);
        assert_eq!(c.len(), 1);
        assert_eq!(c.remove(&f2).unwrap().id, 2);
        assert!(c.is_empty());
    }

    #[test]
    fn subtables_ranked_by_hits() {
        let mut c = Dpcls::new();
        let m_a = mask(&[Field::InPort]);
        let m_b = mask(&[Field::InPort, Field::TpDst]);
        c.insert(flow(1, &pkt(1, 0, 0, 0), &m_a));
        c.insert(flow(2, &pkt(2, 0, 0, 80), &m_b));
        assert_eq!(c.masks().next(), Some(&m_a));
        for _ in 0..RESORT_INTERVAL + 1 {
            assert_eq!(c.lookup(&pkt(2, 0, 0, 80)).unwrap().id, 2);
        }
        assert_eq!(c.masks().next(), Some(&m_b), "busier subtable first");
        assert_eq!(c.lookup(&pkt(1, 1, 1, 1)).unwrap().id, 1);
    }

    #[test]
    fn many_flows_and_clear() {
        let mut c = Dpcls::new();
        let m = mask(&[Field::InPort, Field::NwSrc]);
        let flows: Vec<_> = (0..1000u32)
            .map(|i| flow(i as u64, &pkt(1, i, 0, 0), &m))
            .collect();
        for f in &flows {
            c.insert(f.clone());
        }
        for i in (0..1000u32).step_by(7) {
            assert_eq!(c.lookup(&pkt(1, i, 5, 5)).unwrap().id, i as u64);
        }
        for f in &flows[..500] {
            assert!(c.remove(f).is_some());
        }
        assert_eq!(c.len(), 500);
        assert!(c.lookup(&pkt(1, 3, 0, 0)).is_none());
        c.clear();
        assert!(c.is_empty());
        assert_eq!(c.n_subtables(), 0);
    }
}
