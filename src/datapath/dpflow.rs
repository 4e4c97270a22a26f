//! A datapath flow (megaflow) entry, shared between the poll thread that forwards
//! with it and the revalidator that owns its ukey.
//!
//! Ownership: the upcall handler creates the entry and hands one `Arc` to the poll
//! thread (inside a `FlowPut` op) and one to the owning revalidator (inside its
//! ukey). The poll thread is the only writer of the statistics; revalidators read
//! them without any message. Actions are swapped in place by the revalidator
//! (a "modify"), and `dead` is set by whoever deletes the flow; the poll thread
//! checks it on every cache hit, so a deleted or modified flow stops being used
//! for forwarding as soon as the store is visible — no round trip needed. That is
//! what lets a barrier reply promise that no stale megaflow forwards afterwards.

use super::actions::DpActions;
use super::flow::FlowKey;
use super::keywords::KeyWords;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

/// Packet and byte counters, last-used time and the OR of TCP flags seen.
#[derive(Debug, Default)]
pub struct DpFlowStats {
    /// Packets that hit the flow.
    pub packets: AtomicU64,
    /// Bytes of those packets.
    pub bytes: AtomicU64,
    /// Last hit, in milliseconds of [`crate::util::time::now_ms`]; 0 = never.
    pub used_ms: AtomicU64,
    /// OR of TCP flags seen.
    pub tcp_flags: AtomicU16,
}

/// A snapshot of [`DpFlowStats`] values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpFlowStatsSnapshot {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Last used (ms), 0 = never.
    pub used_ms: u64,
    /// OR of TCP flags.
    pub tcp_flags: u16,
}

impl DpFlowStats {
    /// Adds one batch's worth of hits. Called only by the owning poll thread, so
    /// plain load+store (no read-modify-write contention) would do; `fetch_add`
    /// with `Relaxed` is used anyway because it is just as cheap uncontended.
    #[inline]
    pub fn add(&self, packets: u64, bytes: u64, now_ms: u64, tcp_flags: u16) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.used_ms.store(now_ms, Ordering::Relaxed);
        if tcp_flags != 0 {
            self.tcp_flags.fetch_or(tcp_flags, Ordering::Relaxed);
        }
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> DpFlowStatsSnapshot {
        DpFlowStatsSnapshot {
            packets: self.packets.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            used_ms: self.used_ms.load(Ordering::Relaxed),
            tcp_flags: self.tcp_flags.load(Ordering::Relaxed),
        }
    }
}

/// Words of a megaflow's masked key kept inline: eight cover the usual
/// port, L2, L3 and L4 words; a flow out of a tunnel (whose whole tunnel key
/// is matched) may need the heap.
pub const MEGAFLOW_INLINE_WORDS: usize = 8;

/// One megaflow.
#[derive(Debug)]
pub struct DpFlow {
    /// Unique id (never reused while the process runs); names the flow in ops.
    pub id: u64,
    /// The masked key, compacted to the words where `mask` is non-zero (a
    /// full key is 168 bytes; with 100k megaflows that was 10 MB of words
    /// the mask ignores). [`DpFlow::key`] gives the full key back.
    words: KeyWords<MEGAFLOW_INLINE_WORDS>,
    /// Which bits of a packet key matter. Shared: the flows an upcall handler
    /// installs with an equal mask point at one copy (100k megaflows usually have
    /// a handful of masks, and a key is 136 bytes).
    pub mask: Arc<FlowKey>,
    /// What to do; replaced atomically on modify. Shared like the mask: the
    /// flows a handler installs with equal actions point at one list.
    pub actions: ArcSwap<DpActions>,
    /// Counters, written by the poll thread.
    pub stats: DpFlowStats,
    /// Set when the flow is deleted; a poll thread must not use a dead flow.
    pub dead: AtomicBool,
    /// Creation time (ms).
    pub created_ms: u64,
}

impl DpFlow {
    /// Builds a live flow; `key` is masked here so callers cannot break the invariant.
    pub fn new(id: u64, key: &FlowKey, mask: &FlowKey, actions: DpActions, now_ms: u64) -> DpFlow {
        Self::with_shared(id, key, Arc::new(*mask), Arc::new(actions), now_ms)
    }

    /// Like [`DpFlow::new`], with a mask and actions the caller shares
    /// between flows (most megaflows of a bridge repeat a few action lists).
    pub fn with_shared(
        id: u64,
        key: &FlowKey,
        mask: Arc<FlowKey>,
        actions: Arc<DpActions>,
        now_ms: u64,
    ) -> DpFlow {
        DpFlow {
            id,
            words: KeyWords::new(key, &mask),
            mask,
            actions: ArcSwap::new(actions),
            stats: DpFlowStats::default(),
            dead: AtomicBool::new(false),
            created_ms: now_ms,
        }
    }

    /// The masked key (`key == key.masked(&mask)`), rebuilt from its words:
    /// for the slow path (revalidation, dumps), not per packet.
    pub fn key(&self) -> FlowKey {
        self.words.expand(&self.mask)
    }

    /// The masked key's words where the mask is non-zero, in word order
    /// (what the classifier hashes and compares).
    #[inline]
    pub fn words(&self) -> &[u64] {
        self.words.as_slice()
    }

    /// True once deleted.
    #[inline]
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// Marks deleted; the poll thread stops using it at its next hit.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Release);
    }

    /// Replaces the actions (revalidator "modify").
    pub fn set_actions(&self, actions: DpActions) {
        self.actions.store(Arc::new(actions));
    }
}
