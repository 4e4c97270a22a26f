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
use crate::ofproto::rule::RuleCounters;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

/// A new translation of a flow's key.
pub struct Retranslated {
    /// Bits the translation looked at.
    pub mask: FlowKey,
    /// Resulting actions.
    pub actions: DpActions,
    /// Counters of the rules it went through.
    pub rules: Box<[Arc<RuleCounters>]>,
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
    /// Counters of the rules to credit with the flow's hits: only the
    /// counters, one thin pointer each, not the rules (a flow through the
    /// 11-table pipeline of the benchmarks credits 11 rules, and 100k flows
    /// kept 17 MB in fat `Arc<dyn>` pointers and spare capacity).
    pub rules: Box<[Arc<RuleCounters>]>,
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
