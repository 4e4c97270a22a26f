//! Ukeys: the slow path's record of one datapath flow (OVS's `udpif_key` in
//! `ofproto-dpif-upcall.c`), and the plain data the upcall handlers, the
//! revalidators and their messages share.
//!
//! Ownership: an upcall handler creates a [`Ukey`] when it installs a flow and
//! hands it by message to the revalidator that owns it (`flow.id % n`); from
//! then on only that revalidator touches it. [`RevalShared`] is the only state
//! read across threads (atomics the handlers read to apply the flow limit).

use crate::datapath::actions::DpActions;
use crate::datapath::dpflow::{DpFlow, DpFlowStatsSnapshot};
use crate::datapath::flow::FlowKey;
use crate::ofproto::rule::Rule;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

/// A new translation of a flow's key.
pub struct Retranslated {
    /// Bits the translation looked at.
    pub mask: FlowKey,
    /// Resulting actions.
    pub actions: DpActions,
    /// The rules it went through.
    pub rules: Box<[Arc<Rule>]>,
}

/// What a revalidator needs from the bridge a flow belongs to.
pub trait FlowContext: Send + Sync + 'static {
    /// The bridge's index.
    fn bridge_index(&self) -> u32;
    /// Changes whenever a translation could give a different answer (tables
    /// version, MAC learning changes).
    fn xlate_seq(&self) -> u64;
    /// Translates `key` again against the current tables (`None`: no flow
    /// should exist for it, e.g. its port is gone).
    fn retranslate(&self, key: &FlowKey) -> Option<Retranslated>;
    /// Removes the flow from the datapath (it is already marked dead).
    fn delete_flow(&self, flow: &Arc<DpFlow>);
}

/// One datapath flow as its owning revalidator sees it.
pub struct Ukey {
    /// The bridge.
    pub ctx: Arc<dyn FlowContext>,
    /// The datapath flow (shared with the poll thread).
    pub flow: Arc<DpFlow>,
    /// `ctx.xlate_seq()` as it was *before* the actions were computed.
    pub xlate_seq: u64,
    /// The rules to credit with the flow's hits, one thin pointer each in an
    /// exactly-sized box (a flow through the 11-table pipeline of the
    /// benchmarks credits 11 rules, and 100k flows kept 17 MB in fat
    /// `Arc<dyn>` pointers and spare capacity).
    pub rules: Box<[Arc<Rule>]>,
    /// Statistics already pushed.
    pub pushed: DpFlowStatsSnapshot,
}

/// Counters shared between revalidators and upcall handlers.
#[derive(Default, Debug)]
pub struct RevalShared {
    /// Ukeys (= datapath flows) owned by all revalidators.
    pub n_flows: AtomicUsize,
    /// Current adaptive flow limit.
    pub flow_limit: AtomicUsize,
    /// Completed rounds.
    pub rounds: AtomicU64,
    /// How long each round took, for `/metrics`
    /// (`rvswitchd_revalidator_round_seconds`).
    pub round_time: crate::util::metrics::Histogram,
}

/// Decisions of one revalidation round (or of one member's share of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RoundCounts {
    /// Flows examined.
    pub flows: u64,
    /// Kept.
    pub keep: u64,
    /// Modified in place.
    pub modify: u64,
    /// Deleted as idle.
    pub delete_idle: u64,
    /// Deleted by kill-all.
    pub delete_kill_all: u64,
    /// Deleted because the translation changed.
    pub delete_changed: u64,
    /// Packets credited to rules.
    pub packets_pushed: u64,
}

impl std::ops::AddAssign for RoundCounts {
    fn add_assign(&mut self, o: RoundCounts) {
        self.flows += o.flows;
        self.keep += o.keep;
        self.modify += o.modify;
        self.delete_idle += o.delete_idle;
        self.delete_kill_all += o.delete_kill_all;
        self.delete_changed += o.delete_changed;
        self.packets_pushed += o.packets_pushed;
    }
}

/// Number of slots of a [`RulePush`] (a power of two).
const PUSH_SLOTS: usize = 1024;

/// One rule's deltas gathered during a round.
#[derive(Default)]
struct PushSlot {
    rule: Option<Arc<Rule>>,
    packets: u64,
    bytes: u64,
    used_ms: u64,
}

/// Gathers the statistics a revalidation round pushes to rules, so that each
/// rule's shared counters are written once per round, not once per megaflow
/// through it.
///
/// Why: every megaflow through the 11-table benchmark pipeline credits 11
/// rules; with 100k flows in use a round made 1.1 million rounds of three
/// atomic read-modify-writes (one a compare-and-swap loop for the last-use
/// time) on counters that all threads share. Deltas land instead in a small
/// direct-mapped table keyed by the rule's address, with plain additions;
/// a slot is written out when another rule needs it, and all of them at
/// [`RulePush::flush`] (also on drop). OVS batches the same way with its
/// per-revalidator `xlate_cache` pushes.
///
/// Ownership: one per revalidator round, on the revalidator's thread.
pub struct RulePush {
    slots: Box<[PushSlot]>,
}

impl Default for RulePush {
    fn default() -> Self {
        RulePush {
            slots: (0..PUSH_SLOTS).map(|_| PushSlot::default()).collect(),
        }
    }
}

impl RulePush {
    /// Credits `rule` with a delta.
    #[inline]
    pub fn add(&mut self, rule: &Arc<Rule>, packets: u64, bytes: u64, used_ms: u64) {
        let addr = Arc::as_ptr(rule) as usize;
        // Rules are 8-byte aligned heap objects: mix the address bits.
        let i =
            (addr >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - PUSH_SLOTS.trailing_zeros());
        let s = &mut self.slots[i & (PUSH_SLOTS - 1)];
        match &s.rule {
            Some(r) if Arc::ptr_eq(r, rule) => {}
            _ => {
                Self::write_out(s);
                s.rule = Some(rule.clone());
            }
        }
        s.packets += packets;
        s.bytes += bytes;
        s.used_ms = s.used_ms.max(used_ms);
    }

    fn write_out(s: &mut PushSlot) {
        if let Some(r) = s.rule.take() {
            r.add_stats(s.packets, s.bytes, s.used_ms);
        }
        s.packets = 0;
        s.bytes = 0;
        s.used_ms = 0;
    }

    /// Writes every gathered delta to its rule.
    pub fn flush(&mut self) {
        for s in self.slots.iter_mut() {
            Self::write_out(s);
        }
    }
}

impl Drop for RulePush {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn pushes_sum_per_rule_whatever_the_collisions() {
        // Far more rules than slots, so slots are evicted and reused.
        let rules: Vec<Arc<Rule>> = (0..5000).map(Rule::for_tests).collect();
        let mut push = RulePush::default();
        let mut want = vec![(0u64, 0u64, 0u64); rules.len()];
        let mut x = 12345u64;
        for step in 0..100_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x % rules.len() as u64) as usize;
            let used = 1000 + (x >> 40) % 500;
            push.add(&rules[i], 1 + step % 3, 100, used);
            want[i].0 += 1 + step % 3;
            want[i].1 += 100;
            want[i].2 = want[i].2.max(used);
        }
        push.flush();
        for (r, w) in rules.iter().zip(&want) {
            let c = r.counters();
            let got = (
                c.packets.load(Relaxed),
                c.bytes.load(Relaxed),
                c.used_ms.load(Relaxed),
            );
            assert_eq!(got, *w);
        }
        // A flushed table is empty: flushing again (or dropping) adds nothing.
        push.flush();
        drop(push);
        assert_eq!(rules[0].stats().0, want[0].0);
    }

    #[test]
    fn drop_writes_what_was_gathered() {
        let r = Rule::for_tests(1);
        {
            let mut push = RulePush::default();
            push.add(&r, 2, 20, 7);
            push.add(&r, 3, 30, 5);
            assert_eq!(r.stats().0, 0, "nothing written before the end");
        }
        let c = r.counters();
        assert_eq!(
            (
                c.packets.load(Relaxed),
                c.bytes.load(Relaxed),
                c.used_ms.load(Relaxed)
            ),
            (5, 50, 7)
        );
    }
}
