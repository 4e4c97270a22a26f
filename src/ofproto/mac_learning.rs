//! The MAC learning table behind the NORMAL action.
//!
//! One table per bridge, shared by every upcall handler (learning and lookup during
//! translation), the revalidators (re-translation) and the Bridge actor (aging,
//! `fdb/show`, `fdb/flush`, port removal). It is slow-path state, so a
//! `parking_lot::Mutex` guards it; a translation takes the lock at most once
//! ([`MacLearning::lock`]) and holds the guard until it is done.
//!
//! [`MacLearning::seq`] is bumped (outside the lock, atomically) whenever a change
//! could alter a forwarding decision: a new entry, a station move, an expiry, a flush.
//! Revalidators compare it with the value they saw to know megaflows that depend on
//! MAC state must be re-translated. A refresh of an existing entry (same port) does
//! not bump it.

use crate::types::{MacAddr, PortNo};
use parking_lot::{Mutex, MutexGuard};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default aging time (OVS: 300 s).
pub const DEFAULT_AGING_MS: u64 = 300_000;
/// Default maximum number of entries (OVS: 8192).
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

#[derive(Clone, Copy, Debug)]
struct Entry {
    port: PortNo,
    seen_ms: u64,
    /// Tie-breaker for the age index.
    serial: u64,
}

/// The table proper, reached through [`MacLearning::lock`].
#[derive(Debug)]
pub struct MacTable {
    entries: hashbrown::HashMap<(u16, MacAddr), Entry>,
    /// `(seen_ms, serial)` → key: oldest first, for eviction and aging.
    by_age: BTreeMap<(u64, u64), (u16, MacAddr)>,
    next_serial: u64,
    max_entries: usize,
    aging_ms: u64,
    /// Changes since the guard was taken that must bump the shared seq.
    changed: bool,
}

/// One row of `fdb/show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MacEntryInfo {
    /// Port the station was last seen on.
    pub port: PortNo,
    /// VLAN.
    pub vlan: u16,
    /// Station address.
    pub mac: MacAddr,
    /// Seconds since last seen.
    pub age_secs: u64,
}

impl MacTable {
    /// Learns (or refreshes) `mac` on `vlan` at `port`. Returns true when the entry is
    /// new or moved (forwarding may change). Evicts the oldest entry when full.
    pub fn learn(&mut self, vlan: u16, mac: MacAddr, port: PortNo, now_ms: u64) -> bool {
        let serial = self.next_serial;
        self.next_serial += 1;
        let key = (vlan, mac);
        if let Some(e) = self.entries.get_mut(&key) {
            self.by_age.remove(&(e.seen_ms, e.serial));
            let moved = e.port != port;
            e.port = port;
            e.seen_ms = now_ms;
            e.serial = serial;
            self.by_age.insert((now_ms, serial), key);
            if moved {
                self.changed = true;
            }
            return moved;
        }
        while self.entries.len() >= self.max_entries.max(1) {
            let Some((_, old)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&old);
        }
        self.entries.insert(
            key,
            Entry {
                port,
                seen_ms: now_ms,
                serial,
            },
        );
        self.by_age.insert((now_ms, serial), key);
        self.changed = true;
        true
    }

    /// The port `mac` was last seen on in `vlan`. Aging is applied only by
    /// [`MacLearning::expire`], so lookups are a pure function of the table.
    pub fn lookup(&self, vlan: u16, mac: MacAddr) -> Option<PortNo> {
        self.entries.get(&(vlan, mac)).map(|e| e.port)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The shared MAC learning table.
#[derive(Debug)]
pub struct MacLearning {
    table: Mutex<MacTable>,
    seq: AtomicU64,
}

/// A held lock on the table; bumps the change sequence on drop if anything changed.
pub struct MacGuard<'a> {
    guard: MutexGuard<'a, MacTable>,
    seq: &'a AtomicU64,
}

impl std::ops::Deref for MacGuard<'_> {
    type Target = MacTable;
    fn deref(&self) -> &MacTable {
        &self.guard
    }
}

impl std::ops::DerefMut for MacGuard<'_> {
    fn deref_mut(&mut self) -> &mut MacTable {
        &mut self.guard
    }
}

impl Drop for MacGuard<'_> {
    fn drop(&mut self) {
        if std::mem::take(&mut self.guard.changed) {
            self.seq.fetch_add(1, Ordering::Release);
        }
    }
}

impl Default for MacLearning {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES, DEFAULT_AGING_MS)
    }
}

impl MacLearning {
    /// An empty table with these limits.
    pub fn new(max_entries: usize, aging_ms: u64) -> MacLearning {
        MacLearning {
            table: Mutex::new(MacTable {
                entries: hashbrown::HashMap::new(),
                by_age: BTreeMap::new(),
                next_serial: 0,
                max_entries,
                aging_ms,
                changed: false,
            }),
            seq: AtomicU64::new(0),
        }
    }

    /// Takes the lock for a batch of lookups/learns (one translation).
    pub fn lock(&self) -> MacGuard<'_> {
        MacGuard {
            guard: self.table.lock(),
            seq: &self.seq,
        }
    }

    /// Change counter (see the module docs). Lock-free.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    /// Learns one address (convenience for a single operation).
    pub fn learn(&self, vlan: u16, mac: MacAddr, port: PortNo, now_ms: u64) -> bool {
        self.lock().learn(vlan, mac, port, now_ms)
    }

    /// Looks one address up.
    pub fn lookup(&self, vlan: u16, mac: MacAddr) -> Option<PortNo> {
        self.table.lock().lookup(vlan, mac)
    }

    /// Changes the limits; shrinking evicts the oldest entries now.
    pub fn set_limits(&self, max_entries: usize, aging_ms: u64) {
        let mut t = self.lock();
        t.max_entries = max_entries;
        t.aging_ms = aging_ms;
        while t.entries.len() > max_entries {
            let Some((_, old)) = t.by_age.pop_first() else {
                break;
            };
            t.entries.remove(&old);
            t.changed = true;
        }
    }

    /// Removes entries not seen for the aging time. Returns how many.
    pub fn expire(&self, now_ms: u64) -> usize {
        let mut t = self.lock();
        let aging = t.aging_ms;
        let mut n = 0;
        while let Some((&(seen, serial), _)) = t.by_age.first_key_value() {
            if now_ms.saturating_sub(seen) < aging {
                break;
            }
            if let Some(key) = t.by_age.remove(&(seen, serial)) {
                t.entries.remove(&key);
            }
            n += 1;
        }
        if n > 0 {
            t.changed = true;
        }
        n
    }

    /// Milliseconds until the oldest entry expires (for the owner's timer), if any.
    pub fn next_expiry_in(&self, now_ms: u64) -> Option<u64> {
        let t = self.table.lock();
        t.by_age
            .first_key_value()
            .map(|(&(seen, _), _)| (seen + t.aging_ms).saturating_sub(now_ms))
    }

    /// Forgets everything (`fdb/flush`).
    pub fn flush(&self) {
        let mut t = self.lock();
        if !t.entries.is_empty() {
            t.entries.clear();
            t.by_age.clear();
            t.changed = true;
        }
    }

    /// Forgets every address learned on `port` (port removed or went down).
    pub fn flush_port(&self, port: PortNo) {
        let mut t = self.lock();
        let victims: Vec<((u16, MacAddr), (u64, u64))> = t
            .entries
            .iter()
            .filter(|(_, e)| e.port == port)
            .map(|(k, e)| (*k, (e.seen_ms, e.serial)))
            .collect();
        for (k, age) in &victims {
            t.entries.remove(k);
            t.by_age.remove(age);
        }
        if !victims.is_empty() {
            t.changed = true;
        }
    }

    /// Every entry for `fdb/show`, sorted by port, VLAN and address.
    pub fn entries(&self, now_ms: u64) -> Vec<MacEntryInfo> {
        let t = self.table.lock();
        let mut v: Vec<MacEntryInfo> = t
            .entries
            .iter()
            .map(|(&(vlan, mac), e)| MacEntryInfo {
                port: e.port,
                vlan,
                mac,
                age_secs: now_ms.saturating_sub(e.seen_ms) / 1000,
            })
            .collect();
        v.sort_by_key(|e| (e.port, e.vlan, e.mac));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u8) -> MacAddr {
        MacAddr([2, 0, 0, 0, 0, n])
    }

    #[test]
    fn learn_move_refresh_and_seq() {
        let ml = MacLearning::default();
        let s0 = ml.seq();
        assert!(ml.learn(1, mac(1), PortNo(1), 10));
        let s1 = ml.seq();
        assert!(s1 > s0);
        // Refresh: no forwarding change, no seq bump.
        assert!(!ml.learn(1, mac(1), PortNo(1), 20));
        assert_eq!(ml.seq(), s1);
        // Move.
        assert!(ml.learn(1, mac(1), PortNo(2), 30));
        assert!(ml.seq() > s1);
        assert_eq!(ml.lookup(1, mac(1)), Some(PortNo(2)));
        // VLANs are separate.
        assert_eq!(ml.lookup(2, mac(1)), None);
    }

    #[test]
    fn aging_uses_last_seen_time() {
        let ml = MacLearning::new(100, 1000);
        ml.learn(0, mac(1), PortNo(1), 0);
        ml.learn(0, mac(2), PortNo(1), 500);
        ml.learn(0, mac(1), PortNo(1), 900); // refreshed
        let s = ml.seq();
        assert_eq!(ml.expire(1400), 0);
        assert_eq!(ml.next_expiry_in(1400), Some(100));
        assert_eq!(ml.expire(1500), 1);
        assert!(ml.seq() > s);
        assert_eq!(ml.lookup(0, mac(2)), None);
        assert_eq!(ml.lookup(0, mac(1)), Some(PortNo(1)));
        assert_eq!(ml.expire(1900), 1);
        assert!(ml.entries(1900).is_empty());
    }

    #[test]
    fn full_table_evicts_oldest() {
        let ml = MacLearning::new(3, 1_000_000);
        for i in 1..=3 {
            ml.learn(0, mac(i), PortNo(1), i as u64);
        }
        ml.learn(0, mac(1), PortNo(1), 10); // mac(1) is now the newest
        ml.learn(0, mac(4), PortNo(2), 11);
        assert_eq!(ml.lookup(0, mac(2)), None);
        assert!(ml.lookup(0, mac(1)).is_some());
        assert_eq!(ml.entries(11).len(), 3);
    }

    #[test]
    fn flushes_and_show() {
        let ml = MacLearning::default();
        ml.learn(10, mac(1), PortNo(1), 0);
        ml.learn(10, mac(2), PortNo(2), 0);
        ml.learn(20, mac(3), PortNo(1), 0);
        let e = ml.entries(5000);
        assert_eq!(e.len(), 3);
        assert_eq!(
            e[0],
            MacEntryInfo {
                port: PortNo(1),
                vlan: 10,
                mac: mac(1),
                age_secs: 5
            }
        );
        let s = ml.seq();
        ml.flush_port(PortNo(1));
        assert!(ml.seq() > s);
        assert_eq!(ml.entries(0).len(), 1);
        ml.flush();
        assert!(ml.entries(0).is_empty());
    }
}
