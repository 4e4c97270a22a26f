//! Revalidator actors: they own the ukeys (one per datapath flow), expire idle
//! flows, fix flows whose OpenFlow translation changed, push flow statistics
//! into OpenFlow rules, and adapt the flow limit (seed 004).
//!
//! Ownership: each ukey belongs to exactly one revalidator (`flow.id % n`),
//! handed over by message ([`AdoptUkeys`]) from the upcall handler that created
//! the flow; nobody else touches it. Revalidator 0 is the leader: it runs the
//! round protocol described in [`crate::messages::revalidator`] — messages in
//! place of OVS's barriers and latches — and keeps the flow limit. Each
//! revalidator runs on its own Arbiter (thread).
//!
//! The only state shared across threads is [`RevalShared`] (atomics the upcall
//! handlers read to apply the flow limit) and the `DpFlow`s themselves, whose
//! statistics the poll threads write and whose actions/dead flag we write.

pub mod policy;

use crate::actors::metrics::{ActorMeter, MsgName};
use crate::datapath::actions::DpActions;
use crate::datapath::dpflow::{DpFlow, FlowStatsSnapshot};
use crate::datapath::flow::FlowKey;
use crate::messages::revalidator::*;
use crate::messages::Mailbox;
use crate::util::coverage::{self, c};
use crate::util::time::now_ms;
use actix::prelude::*;
use policy::{decide, Decision, DeleteReason, FlowLimiter, FlowView};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Mailbox capacity of a revalidator.
pub const MAILBOX: usize = 64;
/// Rounds never start closer together than this (seed: 5 ms).
pub const MIN_ROUND_GAP: Duration = Duration::from_millis(5);
/// Rounds start at least this often (seed: `min(max_idle, 500 ms)`).
pub const MAX_ROUND_GAP_MS: u64 = 500;

/// Something whose statistics a datapath flow feeds (an OpenFlow rule).
pub trait RuleStats: Send + Sync {
    /// Adds a delta of hits.
    fn add_stats(&self, packets: u64, bytes: u64, used_ms: u64);
}

/// A new translation of a flow's key.
pub struct Retranslated {
    /// Bits the translation looked at.
    pub mask: FlowKey,
    /// Resulting actions.
    pub actions: DpActions,
    /// Rules it went through.
    pub rules: Vec<Arc<dyn RuleStats>>,
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
    /// `ctx.xlate_seq()` when the actions were computed.
    pub xlate_seq: u64,
    /// Rules to credit with the flow's hits.
    pub rules: Vec<Arc<dyn RuleStats>>,
    /// Statistics already pushed.
    pub pushed: FlowStatsSnapshot,
}

/// Counters shared with the upcall handlers.
#[derive(Default, Debug)]
pub struct RevalShared {
    /// Ukeys (= datapath flows) owned by all revalidators.
    pub n_flows: AtomicUsize,
    /// Current adaptive flow limit.
    pub flow_limit: AtomicUsize,
    /// Completed rounds.
    pub rounds: AtomicU64,
}

/// Decisions of one round.
#[derive(Clone, Copy, Debug, Default, Serialize)]
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

impl RoundCounts {
    fn add(&mut self, o: &RoundCounts) {
        self.flows += o.flows;
        self.keep += o.keep;
        self.modify += o.modify;
        self.delete_idle += o.delete_idle;
        self.delete_kill_all += o.delete_kill_all;
        self.delete_changed += o.delete_changed;
        self.packets_pushed += o.packets_pushed;
    }
}

#[derive(Debug, PartialEq)]
enum Phase {
    Idle,
    Revalidating,
    Sweeping,
}

struct Leader {
    members: Vec<Mailbox<Revalidator>>,
    /// The current round's start message, re-sent to replaced members.
    current: Option<BeginRound>,
    member_ukeys: Vec<usize>,
    round: u64,
    phase: Phase,
    pending: Vec<usize>,
    round_started: Instant,
    round_counts: RoundCounts,
    limiter: FlowLimiter,
    max_idle_ms: u64,
    paused: bool,
    need_round: bool,
    /// A deferred `maybe_start_round` is scheduled. At most one is: actix polls
    /// every pending timer of an actor each time it wakes, so one timer per
    /// TablesChanged (one per flow-mod in a bulk load) made each wake-up cost
    /// hundreds of timer polls.
    retry_armed: bool,
    last_round_start: Option<Instant>,
    waiting: Vec<oneshot::Sender<()>>,
    in_round: Vec<oneshot::Sender<()>>,
    last_duration_ms: u64,
    max_flows: usize,
    avg_flows: f64,
    totals: RoundCounts,
    last_counts: RoundCounts,
    swept: u64,
}

/// A revalidator (the leader when `id == 0`).
pub struct Revalidator {
    id: usize,
    meter: Arc<ActorMeter>,
    shared: Arc<RevalShared>,
    ukeys: HashMap<u64, Ukey>,
    leader: Option<Leader>,
}

impl Revalidator {
    /// A revalidator; `id == 0` makes it the leader with these limits.
    pub fn new(
        id: usize,
        meter: Arc<ActorMeter>,
        shared: Arc<RevalShared>,
        flow_limit: usize,
        max_idle_ms: u64,
    ) -> Revalidator {
        let leader = (id == 0).then(|| {
            shared.flow_limit.store(flow_limit, Relaxed);
            Leader {
                members: Vec::new(),
                current: None,
                member_ukeys: Vec::new(),
                round: 0,
                phase: Phase::Idle,
                pending: Vec::new(),
                round_started: Instant::now(),
                round_counts: RoundCounts::default(),
                limiter: FlowLimiter::new(flow_limit),
                max_idle_ms,
                paused: false,
                need_round: false,
                retry_armed: false,
                last_round_start: None,
                waiting: Vec::new(),
                in_round: Vec::new(),
                last_duration_ms: 0,
                max_flows: 0,
                avg_flows: 0.0,
                totals: RoundCounts::default(),
                last_counts: RoundCounts::default(),
                swept: 0,
            }
        });
        Revalidator {
            id,
            meter,
            shared,
            ukeys: HashMap::new(),
            leader,
        }
    }

    fn guard<M: MsgName>(&self) -> crate::actors::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    /// Revalidates every owned ukey once (seed `revalidate()` per worker).
    fn revalidate_share(&mut self, br: &BeginRound) -> RoundCounts {
        let mut counts = RoundCounts::default();
        let mut dead: Vec<u64> = Vec::new();
        let mut seqs: Vec<(u32, u64)> = Vec::new();
        for (id, uk) in self.ukeys.iter_mut() {
            counts.flows += 1;
            if uk.flow.is_dead() {
                continue; // swept below
            }
            // Push the statistics delta to every rule the flow went through.
            let st = uk.flow.stats.snapshot();
            let dp = st.packets.saturating_sub(uk.pushed.packets);
            let db = st.bytes.saturating_sub(uk.pushed.bytes);
            if dp > 0 || st.used_ms > uk.pushed.used_ms {
                for r in &uk.rules {
                    r.add_stats(dp, db, st.used_ms);
                }
                counts.packets_pushed += dp;
            }
            uk.pushed = st;
            let used = if st.used_ms == 0 {
                uk.flow.created_ms
            } else {
                st.used_ms
            };
            // One translation-sequence read per bridge per round.
            let bi = uk.ctx.bridge_index();
            let seq = match seqs.iter().find(|(b, _)| *b == bi) {
                Some((_, s)) => *s,
                None => {
                    let s = uk.ctx.xlate_seq();
                    seqs.push((bi, s));
                    s
                }
            };
            // Fast path, the common case: fresh and in use. Same answer as
            // `decide` without loading the actions.
            if !br.kill_all
                && br.now_ms.saturating_sub(used) <= br.max_idle_ms
                && seq == uk.xlate_seq
            {
                counts.keep += 1;
                continue;
            }
            let actions = uk.flow.actions.load_full();
            let view = FlowView {
                used_ms: used,
                mask: &uk.flow.mask,
                actions: &actions,
                stale: seq != uk.xlate_seq,
            };
            let mut new_rules = None;
            let ctx = &uk.ctx;
            let key = uk.flow.key;
            let d = decide(&view, br.now_ms, br.max_idle_ms, br.kill_all, || {
                ctx.retranslate(&key).map(|r| {
                    new_rules = Some(r.rules);
                    (r.mask, r.actions)
                })
            });
            match d {
                Decision::Keep => {
                    counts.keep += 1;
                    uk.xlate_seq = seq;
                    if let Some(r) = new_rules {
                        uk.rules = r;
                    }
                }
                Decision::Modify(a) => {
                    tracing::debug!(flow = uk.flow.id, actions = ?a, "modify");
                    counts.modify += 1;
                    uk.flow.set_actions(a);
                    uk.xlate_seq = seq;
                    if let Some(r) = new_rules {
                        uk.rules = r;
                    }
                }
                Decision::Delete(why) => {
                    match why {
                        DeleteReason::Idle => counts.delete_idle += 1,
                        DeleteReason::KillAll => counts.delete_kill_all += 1,
                        DeleteReason::Changed => counts.delete_changed += 1,
                    }
                    uk.flow.kill();
                    uk.ctx.delete_flow(&uk.flow);
                    dead.push(*id);
                }
            }
        }
        for id in dead {
            if self.ukeys.remove(&id).is_some() {
                self.shared.n_flows.fetch_sub(1, Relaxed);
                coverage::inc(&c::dp_flow_del);
            }
        }
        counts
    }

    /// Drops ukeys whose flows were deleted by someone else (purge, port removal).
    fn sweep(&mut self) -> u64 {
        let before = self.ukeys.len();
        self.ukeys.retain(|_, uk| !uk.flow.is_dead());
        let swept = (before - self.ukeys.len()) as u64;
        self.shared.n_flows.fetch_sub(swept as usize, Relaxed);
        swept
    }

    fn purge(&mut self) -> usize {
        let n = self.ukeys.len();
        for uk in self.ukeys.values() {
            uk.flow.kill();
            uk.ctx.delete_flow(&uk.flow);
        }
        self.ukeys.clear();
        self.shared.n_flows.fetch_sub(n, Relaxed);
        n
    }

    fn maybe_start_round(&mut self, ctx: &mut Context<Self>) {
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if l.paused || l.phase != Phase::Idle || l.members.is_empty() {
            return;
        }
        // Barriers waiting on a round skip the spacing: a bulk of flow-mods,
        // each followed by a barrier, must not wait 5 ms apiece.
        if let (Some(t), true) = (l.last_round_start, l.waiting.is_empty()) {
            let since = t.elapsed();
            if since < MIN_ROUND_GAP {
                l.need_round = true;
                if !l.retry_armed {
                    l.retry_armed = true;
                    ctx.run_later(MIN_ROUND_GAP - since, |a, ctx| {
                        if let Some(l) = a.leader.as_mut() {
                            l.retry_armed = false;
                        }
                        a.maybe_start_round(ctx)
                    });
                }
                return;
            }
        }
        l.need_round = false;
        l.round += 1;
        l.phase = Phase::Revalidating;
        l.pending = (0..l.members.len()).collect();
        l.round_started = Instant::now();
        l.last_round_start = Some(l.round_started);
        l.round_counts = RoundCounts::default();
        l.in_round.append(&mut l.waiting);
        tracing::debug!(
            round = l.round,
            acks = l.in_round.len(),
            "revalidation round starts"
        );
        let n_flows = self.shared.n_flows.load(Relaxed);
        l.max_flows = l.max_flows.max(n_flows);
        l.avg_flows = if l.round == 1 {
            n_flows as f64
        } else {
            (l.avg_flows * 7.0 + n_flows as f64) / 8.0
        };
        let (max_idle, kill_all) = l.limiter.round_params(n_flows, l.max_idle_ms);
        let leader = l.members[0].clone();
        let msg = BeginRound {
            round: l.round,
            n_flows,
            flow_limit: l.limiter.current,
            max_idle_ms: max_idle,
            kill_all,
            now_ms: now_ms(),
            leader,
        };
        l.current = Some(msg.clone());
        for m in l.members.clone() {
            let msg = msg.clone();
            // Round messages must not be lost: wait for mailbox space.
            ctx.spawn(
                async move {
                    let _ = m.ask(msg).await;
                }
                .into_actor(self),
            );
        }
    }

    fn finish_phase(&mut self, ctx: &mut Context<Self>) {
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        if !l.pending.is_empty() {
            return;
        }
        match l.phase {
            Phase::Revalidating => {
                l.phase = Phase::Sweeping;
                l.pending = (0..l.members.len()).collect();
                let msg = Sweep {
                    round: l.round,
                    leader: l.members[0].clone(),
                };
                for m in l.members.clone() {
                    let msg = msg.clone();
                    ctx.spawn(
                        async move {
                            let _ = m.ask(msg).await;
                        }
                        .into_actor(self),
                    );
                }
            }
            Phase::Sweeping => {
                let dur = l.round_started.elapsed().as_millis() as u64;
                l.last_duration_ms = dur;
                l.phase = Phase::Idle;
                let n_flows = self.shared.n_flows.load(Relaxed);
                if dur > 2000 {
                    tracing::warn!("revalidator round took {dur} ms: unreasonably long");
                }
                if l.limiter.adapt(dur, n_flows, now_ms()) {
                    if let Some(ch) = &l.limiter.last_change {
                        tracing::info!("flow limit {} -> {}: {}", ch.from, ch.to, ch.reason);
                    }
                }
                self.shared.flow_limit.store(l.limiter.current, Relaxed);
                self.shared.rounds.fetch_add(1, Relaxed);
                coverage::inc(&c::revalidate_round);
                l.last_counts = l.round_counts;
                l.totals.add(&l.round_counts);
                tracing::debug!(
                    round = l.round,
                    acks = l.in_round.len(),
                    dur,
                    "revalidation round done"
                );
                for w in l.in_round.drain(..) {
                    let _ = w.send(());
                }
                if l.need_round || !l.waiting.is_empty() {
                    self.maybe_start_round(ctx);
                }
            }
            Phase::Idle => {}
        }
    }

    fn report(&self) -> serde_json::Value {
        let Some(l) = &self.leader else {
            return serde_json::json!({"id": self.id, "ukeys": self.ukeys.len()});
        };
        serde_json::json!({
            "flows": {
                "current": self.shared.n_flows.load(Relaxed),
                "average": l.avg_flows.round() as u64,
                "maximum": l.max_flows,
            },
            "flow_limit": l.limiter.current,
            "flow_limit_configured": l.limiter.configured,
            "flow_limit_last_change": l.limiter.last_change.as_ref().map(|c| serde_json::json!({
                "ago_ms": now_ms().saturating_sub(c.at_ms),
                "from": c.from, "to": c.to, "reason": c.reason,
            })),
            "max_idle_ms": l.max_idle_ms,
            "rounds": self.shared.rounds.load(Relaxed),
            "round_in_progress": l.phase != Phase::Idle,
            "paused": l.paused,
            "last_round_ms": l.last_duration_ms,
            "members": l.members.len(),
            "ukeys_per_revalidator": l.member_ukeys,
            "last_round": l.last_counts,
            "totals": l.totals,
            "swept": l.swept,
        })
    }
}

impl Actor for Revalidator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        if let Some(l) = &self.leader {
            let every = Duration::from_millis(l.max_idle_ms.clamp(5, MAX_ROUND_GAP_MS));
            ctx.run_interval(every, |a, ctx| a.maybe_start_round(ctx));
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.meter.mark_dead();
    }
}

impl Handler<BeginRound> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: BeginRound, _: &mut Context<Self>) {
        let _g = self.guard::<BeginRound>();
        let counts = self.revalidate_share(&m);
        reply_to_leader(
            m.leader,
            RevalidateDone {
                round: m.round,
                from: self.id,
                counts,
            },
        );
    }
}

impl Handler<RevalidateDone> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: RevalidateDone, ctx: &mut Context<Self>) {
        let _g = self.guard::<RevalidateDone>();
        if let Some(l) = self.leader.as_mut() {
            if m.round == l.round && l.phase == Phase::Revalidating {
                if let Some(pos) = l.pending.iter().position(|&p| p == m.from) {
                    l.pending.swap_remove(pos);
                    l.round_counts.add(&m.counts);
                }
            }
        }
        self.finish_phase(ctx);
    }
}

impl Handler<Sweep> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: Sweep, _: &mut Context<Self>) {
        let _g = self.guard::<Sweep>();
        let swept = self.sweep();
        reply_to_leader(
            m.leader,
            SweepDone {
                round: m.round,
                from: self.id,
                swept,
                n_ukeys: self.ukeys.len(),
            },
        );
    }
}

impl Handler<SweepDone> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: SweepDone, ctx: &mut Context<Self>) {
        let _g = self.guard::<SweepDone>();
        if let Some(l) = self.leader.as_mut() {
            if m.round == l.round && l.phase == Phase::Sweeping {
                if let Some(pos) = l.pending.iter().position(|&p| p == m.from) {
                    l.pending.swap_remove(pos);
                    l.swept += m.swept;
                    if let Some(slot) = l.member_ukeys.get_mut(m.from) {
                        *slot = m.n_ukeys;
                    }
                }
            }
        }
        self.finish_phase(ctx);
    }
}

impl Handler<SetMembers> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: SetMembers, ctx: &mut Context<Self>) {
        let _g = self.guard::<SetMembers>();
        if let Some(l) = self.leader.as_mut() {
            let n = m.0.len();
            l.members = m.0;
            l.member_ukeys.resize(n, 0);
            // Members that left are no longer waited for; members still
            // pending (one may have been replaced after dying mid-round) are
            // asked again, so the round cannot stall on a dead actor.
            l.pending.retain(|&p| p < n);
            let resend: Vec<(Mailbox<Revalidator>, Phase)> = l
                .pending
                .iter()
                .filter(|&&p| p != self.id)
                .filter_map(|&p| l.members.get(p).cloned())
                .map(|mb| {
                    (
                        mb,
                        if l.phase == Phase::Sweeping {
                            Phase::Sweeping
                        } else {
                            Phase::Revalidating
                        },
                    )
                })
                .collect();
            let leader = l.members.first().cloned();
            let (round, begin) = (l.round, l.current.clone());
            if l.phase != Phase::Idle {
                for (mb, phase) in resend {
                    match (phase, &begin, &leader) {
                        (Phase::Revalidating, Some(b), _) => {
                            let b = b.clone();
                            actix::spawn(async move {
                                let _ = mb.ask(b).await;
                            });
                        }
                        (Phase::Sweeping, _, Some(ld)) => {
                            let sw = Sweep {
                                round,
                                leader: ld.clone(),
                            };
                            actix::spawn(async move {
                                let _ = mb.ask(sw).await;
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        self.finish_phase(ctx);
        self.maybe_start_round(ctx);
    }
}

impl Handler<TablesChanged> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: TablesChanged, ctx: &mut Context<Self>) {
        let _g = self.guard::<TablesChanged>();
        if let Some(l) = self.leader.as_mut() {
            l.need_round = true;
            if let Some(ack) = m.ack {
                l.waiting.push(ack);
            }
        }
        self.maybe_start_round(ctx);
    }
}

impl Handler<WaitRound> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: WaitRound, ctx: &mut Context<Self>) {
        let _g = self.guard::<WaitRound>();
        if let Some(l) = self.leader.as_mut() {
            l.waiting.push(m.0);
        }
        self.maybe_start_round(ctx);
    }
}

impl Handler<AdoptUkeys> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: AdoptUkeys, _: &mut Context<Self>) {
        let _g = self.guard::<AdoptUkeys>();
        for uk in m.0 {
            if self.ukeys.insert(uk.flow.id, uk).is_none() {
                self.shared.n_flows.fetch_add(1, Relaxed);
            }
        }
    }
}

impl Handler<Pause> for Revalidator {
    type Result = ();
    fn handle(&mut self, _: Pause, _: &mut Context<Self>) {
        let _g = self.guard::<Pause>();
        if let Some(l) = self.leader.as_mut() {
            l.paused = true;
        }
    }
}

impl Handler<Resume> for Revalidator {
    type Result = ();
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        let _g = self.guard::<Resume>();
        if let Some(l) = self.leader.as_mut() {
            l.paused = false;
        }
        self.maybe_start_round(ctx);
    }
}

impl Handler<Exit> for Revalidator {
    type Result = ResponseActFuture<Self, ()>;
    fn handle(&mut self, m: Exit, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Exit>();
        let ukeys: Vec<Ukey> = self.ukeys.drain().map(|(_, u)| u).collect();
        let n = ukeys.len();
        self.shared.n_flows.fetch_sub(n, Relaxed);
        let handover = match m.handover {
            Some(to) if !ukeys.is_empty() => Some((to, ukeys)),
            _ => {
                for uk in &ukeys {
                    uk.flow.kill();
                    uk.ctx.delete_flow(&uk.flow);
                }
                None
            }
        };
        // Answer only once the ukeys have a new owner, then stop.
        Box::pin(
            async move {
                if let Some((to, ukeys)) = handover {
                    let _ = to.ask(AdoptUkeys(ukeys)).await;
                }
            }
            .into_actor(self)
            .map(|_, _, ctx| ctx.stop()),
        )
    }
}

impl Handler<Purge> for Revalidator {
    type Result = usize;
    fn handle(&mut self, _: Purge, _: &mut Context<Self>) -> usize {
        let _g = self.guard::<Purge>();
        self.purge()
    }
}

impl Handler<DetachBridge> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: DetachBridge, _: &mut Context<Self>) {
        let _g = self.guard::<DetachBridge>();
        let before = self.ukeys.len();
        self.ukeys.retain(|_, uk| uk.ctx.bridge_index() != m.0);
        self.shared
            .n_flows
            .fetch_sub(before - self.ukeys.len(), Relaxed);
    }
}

impl Handler<SetLimits> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: SetLimits, _: &mut Context<Self>) {
        let _g = self.guard::<SetLimits>();
        if let Some(l) = self.leader.as_mut() {
            l.limiter.set_configured(m.flow_limit, now_ms());
            l.max_idle_ms = m.max_idle_ms;
            self.shared.flow_limit.store(l.limiter.current, Relaxed);
        }
    }
}

impl Handler<ReportState> for Revalidator {
    type Result = MessageResult<ReportState>;
    fn handle(&mut self, _: ReportState, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<ReportState>();
        MessageResult(self.report())
    }
}

/// Sends a round answer to the leader, waiting for mailbox space: round
/// messages may not be lost. When we are the leader it lands in our own
/// mailbox, after the current handler returns.
fn reply_to_leader<M>(leader: Mailbox<Revalidator>, msg: M)
where
    M: Message<Result = ()> + MsgName + Send + 'static,
    Revalidator: Handler<M>,
{
    actix::spawn(async move {
        let _ = leader.ask(msg).await;
    });
}

/// Starts `n` revalidators, each on its own Arbiter, and introduces them to
/// the leader. Returns their mailboxes (index = id).
pub fn start_group(
    n: usize,
    shared: Arc<RevalShared>,
    flow_limit: usize,
    max_idle_ms: u64,
) -> Vec<(Mailbox<Revalidator>, Arbiter)> {
    let mut out = Vec::with_capacity(n);
    for id in 0..n.max(1) {
        out.push(start_one(id, shared.clone(), flow_limit, max_idle_ms));
    }
    let members: Vec<_> = out.iter().map(|(m, _)| m.clone()).collect();
    if let Some((leader, _)) = out.first() {
        leader.tell(SetMembers(members));
    }
    out
}

/// Starts revalidator `id` on a new Arbiter.
pub fn start_one(
    id: usize,
    shared: Arc<RevalShared>,
    flow_limit: usize,
    max_idle_ms: u64,
) -> (Mailbox<Revalidator>, Arbiter) {
    let meter = crate::actors::metrics::registry().meter(
        format!("revalidator:{id}"),
        "Revalidator",
        None,
        MAILBOX,
    );
    let arb = Arbiter::new();
    let m2 = meter.clone();
    let addr = Revalidator::start_in_arbiter(&arb.handle(), move |_| {
        Revalidator::new(id, m2, shared, flow_limit, max_idle_ms)
    });
    (Mailbox::new(addr, meter), arb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::actions::DpAction;
    use crate::datapath::flow::Field;
    use crate::types::PortNo;
    use std::sync::atomic::AtomicBool;

    /// A bridge stand-in whose translation answer the test controls.
    struct FakeBridge {
        seq: AtomicU64,
        out_port: AtomicU64,
        deleted: AtomicU64,
        rule_packets: Arc<AtomicU64>,
        gone: AtomicBool,
    }

    struct FakeRule(Arc<AtomicU64>);
    impl RuleStats for FakeRule {
        fn add_stats(&self, p: u64, _: u64, _: u64) {
            self.0.fetch_add(p, Relaxed);
        }
    }

    fn mask() -> FlowKey {
        let mut m = FlowKey::default();
        m.set_exact(Field::InPort);
        m
    }

    impl FlowContext for FakeBridge {
        fn bridge_index(&self) -> u32 {
            7
        }
        fn xlate_seq(&self) -> u64 {
            self.seq.load(Relaxed)
        }
        fn retranslate(&self, _: &FlowKey) -> Option<Retranslated> {
            if self.gone.load(Relaxed) {
                return None;
            }
            Some(Retranslated {
                mask: mask(),
                actions: vec![DpAction::Output(PortNo(self.out_port.load(Relaxed) as u32))],
                rules: vec![Arc::new(FakeRule(self.rule_packets.clone()))],
            })
        }
        fn delete_flow(&self, _: &Arc<DpFlow>) {
            self.deleted.fetch_add(1, Relaxed);
        }
    }

    fn ukey(ctx: &Arc<FakeBridge>, id: u64) -> Ukey {
        let mut key = FlowKey::default();
        key.set(Field::InPort, id as u128);
        let flow = Arc::new(DpFlow::new(
            id,
            &key,
            &mask(),
            vec![DpAction::Output(PortNo(2))],
            now_ms(),
        ));
        Ukey {
            ctx: ctx.clone(),
            flow,
            xlate_seq: 0,
            rules: vec![Arc::new(FakeRule(ctx.rule_packets.clone()))],
            pushed: FlowStatsSnapshot::default(),
        }
    }

    async fn wait_round(leader: &Mailbox<Revalidator>) {
        let (tx, rx) = oneshot::channel();
        leader.ask(WaitRound(tx)).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), rx)
            .await
            .unwrap()
            .unwrap();
    }

    fn run_protocol(n: usize) {
        let sys = actix::System::new();
        sys.block_on(async move {
            let shared = Arc::new(RevalShared::default());
            let group = start_group(n, shared.clone(), 200_000, 60_000);
            let boxes: Vec<_> = group.iter().map(|(m, _)| m.clone()).collect();
            let fake = Arc::new(FakeBridge {
                seq: AtomicU64::new(0),
                out_port: AtomicU64::new(2),
                deleted: AtomicU64::new(0),
                rule_packets: Arc::new(AtomicU64::new(0)),
                gone: AtomicBool::new(false),
            });
            let flows: Vec<Ukey> = (0..40).map(|i| ukey(&fake, i)).collect();
            let handles: Vec<Arc<DpFlow>> = flows.iter().map(|u| u.flow.clone()).collect();
            let mut per: Vec<Vec<Ukey>> = (0..n).map(|_| Vec::new()).collect();
            for u in flows {
                per[(u.flow.id as usize) % n].push(u);
            }
            for (i, v) in per.into_iter().enumerate() {
                boxes[i].ask(AdoptUkeys(v)).await.unwrap();
            }
            assert_eq!(shared.n_flows.load(Relaxed), 40);
            // Stats are pushed to rules.
            handles[3].stats.add(5, 500, now_ms(), 0);
            wait_round(&boxes[0]).await;
            assert_eq!(fake.rule_packets.load(Relaxed), 5);
            // Tables change: new output port → modify in place, nothing deleted.
            fake.out_port.store(3, Relaxed);
            fake.seq.store(1, Relaxed);
            wait_round(&boxes[0]).await;
            assert_eq!(
                **handles[0].actions.load(),
                vec![DpAction::Output(PortNo(3))]
            );
            assert_eq!(fake.deleted.load(Relaxed), 0);
            // Resize mid-stream: the last member exits, handing its ukeys over.
            if n > 1 {
                let last = boxes[n - 1].clone();
                boxes[0]
                    .ask(SetMembers(boxes[..n - 1].to_vec()))
                    .await
                    .unwrap();
                last.ask(Exit {
                    handover: Some(boxes[0].clone()),
                })
                .await
                .unwrap();
                wait_round(&boxes[0]).await;
                assert_eq!(shared.n_flows.load(Relaxed), 40);
            }
            // The translation now says no flow: every flow is deleted.
            fake.gone.store(true, Relaxed);
            fake.seq.store(2, Relaxed);
            wait_round(&boxes[0]).await;
            assert_eq!(fake.deleted.load(Relaxed), 40);
            assert!(handles.iter().all(|f| f.is_dead()));
            assert_eq!(shared.n_flows.load(Relaxed), 0);
            let report = boxes[0].ask(ReportState).await.unwrap();
            assert!(report["rounds"].as_u64().unwrap() >= 3);
            assert!(report["totals"]["modify"].as_u64().unwrap() >= 40);
            actix::System::current().stop();
        });
    }

    #[test]
    fn round_protocol_with_one_revalidator() {
        run_protocol(1);
    }

    #[test]
    fn round_protocol_with_two_revalidators() {
        run_protocol(2);
    }

    #[test]
    fn round_protocol_with_four_revalidators_and_a_resize() {
        run_protocol(4);
    }

    #[test]
    fn idle_flows_expire() {
        let sys = actix::System::new();
        sys.block_on(async {
            let shared = Arc::new(RevalShared::default());
            let group = start_group(2, shared.clone(), 200_000, 50);
            let fake = Arc::new(FakeBridge {
                seq: AtomicU64::new(0),
                out_port: AtomicU64::new(2),
                deleted: AtomicU64::new(0),
                rule_packets: Arc::new(AtomicU64::new(0)),
                gone: AtomicBool::new(false),
            });
            group[0]
                .0
                .ask(AdoptUkeys(vec![ukey(&fake, 0)]))
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(120)).await;
            wait_round(&group[0].0).await;
            assert_eq!(fake.deleted.load(Relaxed), 1);
            assert_eq!(shared.n_flows.load(Relaxed), 0);
            actix::System::current().stop();
        });
    }
}
