//! Revalidator actors: they own the ukeys (one per datapath flow), expire idle
//! flows, fix flows whose OpenFlow translation changed, push flow statistics
//! into OpenFlow rules, and adapt the flow limit (OVS's
//! `ofproto-dpif-upcall.c`: `udpif_revalidator()`, `revalidate()`,
//! `revalidator_sweep()`).
//!
//! Ownership: each ukey belongs to exactly one revalidator (`flow.id % n`),
//! handed over by message ([`AdoptUkeys`]) from the upcall handler that created
//! the flow; nobody else touches it. Revalidator 0 is the leader: it runs the
//! round protocol of [`round`] (a state machine with no I/O; this actor only
//! carries its actions to mailboxes and its timeouts to a timer) and keeps the
//! flow limit. Each revalidator runs on its own Arbiter (thread).
//!
//! The only state shared across threads is [`RevalShared`] (atomics the upcall
//! handlers read to apply the flow limit) and the `DpFlow`s themselves, whose
//! statistics the poll threads write and whose actions/dead flag we write.

pub mod policy;
pub mod round;

use crate::messages::revalidator::*;
use crate::messages::Mailbox;
use crate::util::coverage::{self, c};
use crate::util::metrics::{ActorMeter, MsgName};
use crate::util::time::now_ms;
use actix::prelude::*;
use policy::{decide, Decision, DeleteReason, FlowView};
use round::{Now, RoundAction, RoundLeader};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

use crate::ofproto::ukey::RulePush;
pub use crate::ofproto::ukey::{FlowContext, Retranslated, RevalShared, RoundCounts, Ukey};
pub use round::{MAX_ROUND_GAP_MS, MIN_ROUND_GAP_MS};

/// Mailbox capacity of a revalidator.
pub const MAILBOX: usize = 64;

/// The leader's part: the state machine, the members it talks to, and the
/// one timer armed for the state machine's next timeout.
struct LeaderShell {
    sm: RoundLeader<oneshot::Sender<()>>,
    members: Vec<Member>,
    timer: Option<(u64, SpawnHandle)>,
}

/// A revalidator (the leader when `id == 0`).
pub struct Revalidator {
    id: usize,
    meter: Arc<ActorMeter>,
    shared: Arc<RevalShared>,
    ukeys: HashMap<u64, Ukey>,
    leader: Option<LeaderShell>,
}

/// How the leader reaches a revalidator.
pub fn member(m: &Mailbox<Revalidator>) -> Member {
    Member {
        begin: m.inbox(),
        sweep: m.inbox(),
    }
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
            LeaderShell {
                sm: RoundLeader::new(flow_limit, max_idle_ms),
                members: Vec::new(),
                timer: None,
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

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn now(&self) -> Now {
        Now {
            ms: now_ms(),
            n_flows: self.shared.n_flows.load(Relaxed),
        }
    }

    /// Revalidates every owned ukey once (OVS `revalidate()` per thread).
    fn revalidate_share(&mut self, br: &BeginRound) -> RoundCounts {
        let mut counts = RoundCounts::default();
        let mut dead: Vec<u64> = Vec::new();
        let mut seqs: Vec<(u32, u64)> = Vec::new();
        // Rule statistics are gathered and written once per rule at the end.
        let mut push = RulePush::default();
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
                for r in uk.rules.iter() {
                    push.add(r, dp, db, st.used_ms);
                }
                counts.packets_pushed += dp;
            }
            uk.pushed = st;
            let used = if st.used_ms == 0 {
                uk.flow.created_ms
            } else {
                st.used_ms
            };
            // One translation-sequence read per bridge per round, before any
            // re-translation (so a change during the round is seen next round).
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
            let key = uk.flow.key();
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
        push.flush();
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

    /// Applies an input to the leader's state machine, then carries out what
    /// it asks for.
    fn lead(
        &mut self,
        ctx: &mut Context<Self>,
        input: impl FnOnce(&mut RoundLeader<oneshot::Sender<()>>, Now),
    ) {
        let now = self.now();
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        input(&mut l.sm, now);
        self.drive(ctx);
    }

    fn drive(&mut self, ctx: &mut Context<Self>) {
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        let mut sends: Vec<(Member, RoundAction<oneshot::Sender<()>>)> = Vec::new();
        while let Some(a) = l.sm.poll_action() {
            match a {
                RoundAction::Ack(w) => {
                    let _ = w.send(());
                }
                RoundAction::RoundDone {
                    round,
                    duration_ms,
                    flow_limit,
                    limit_change,
                } => {
                    if duration_ms > 2000 {
                        tracing::warn!(
                            "revalidator round took {duration_ms} ms: unreasonably long"
                        );
                    }
                    if let Some(ch) = limit_change {
                        tracing::info!("flow limit {} -> {}: {}", ch.from, ch.to, ch.reason);
                    }
                    self.shared.flow_limit.store(flow_limit, Relaxed);
                    self.shared.rounds.fetch_add(1, Relaxed);
                    self.shared
                        .round_time
                        .observe_ns(duration_ms.saturating_mul(1_000_000));
                    coverage::inc(&c::revalidate_round);
                    tracing::debug!(round, duration_ms, "revalidation round done");
                }
                RoundAction::Begin { member, .. } | RoundAction::Sweep { member, .. } => {
                    if let Some(m) = l.members.get(member) {
                        sends.push((m.clone(), a));
                    }
                }
            }
        }
        for (m, a) in sends {
            // Round messages must not be lost: wait for mailbox space. A
            // member that is gone answers nothing; the supervisor replaces
            // it and `SetMembers` asks the new one.
            match a {
                RoundAction::Begin { member, params } => {
                    ctx.spawn(
                        async move { m.begin.ask(params).await }
                            .into_actor(self)
                            .map(move |r, act, ctx| {
                                if let Ok(counts) = r {
                                    act.lead(ctx, |sm, now| {
                                        sm.handle_revalidated(params.round, member, counts, now)
                                    });
                                }
                            }),
                    );
                }
                RoundAction::Sweep { member, round } => {
                    ctx.spawn(
                        async move { m.sweep.ask(Sweep { round }).await }
                            .into_actor(self)
                            .map(move |r, act, ctx| {
                                if let Ok(s) = r {
                                    act.lead(ctx, |sm, now| {
                                        sm.handle_swept(round, member, s.swept, s.n_ukeys, now)
                                    });
                                }
                            }),
                    );
                }
                _ => {}
            }
        }
        self.arm_timer(ctx);
    }

    /// Keeps exactly one timer armed for the state machine's next timeout
    /// (actix polls every pending timer of an actor on each wake-up, so one
    /// timer per table change would make a bulk load pay hundreds of polls).
    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(l) = self.leader.as_mut() else {
            return;
        };
        let want = l.sm.poll_timeout();
        if l.timer.as_ref().map(|(at, _)| *at) == want {
            return;
        }
        if let Some((_, h)) = l.timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(at) = want {
            let delay = Duration::from_millis(at.saturating_sub(now_ms()));
            let h = ctx.run_later(delay, |a, ctx| {
                if let Some(l) = a.leader.as_mut() {
                    l.timer = None;
                }
                a.lead(ctx, |sm, now| sm.handle_timeout(now));
            });
            l.timer = Some((at, h));
        }
    }

    fn report(&self) -> serde_json::Value {
        let Some(l) = &self.leader else {
            return serde_json::json!({"id": self.id, "ukeys": self.ukeys.len()});
        };
        let st = l.sm.stats();
        let lim = l.sm.limiter();
        serde_json::json!({
            "flows": {
                "current": self.shared.n_flows.load(Relaxed),
                "average": st.avg_flows.round() as u64,
                "maximum": st.max_flows,
            },
            "flow_limit": lim.current,
            "flow_limit_configured": lim.configured,
            "flow_limit_last_change": lim.last_change.as_ref().map(|c| serde_json::json!({
                "ago_ms": now_ms().saturating_sub(c.at_ms),
                "from": c.from, "to": c.to, "reason": c.reason,
            })),
            "max_idle_ms": l.sm.max_idle_ms(),
            "rounds": self.shared.rounds.load(Relaxed),
            "round_in_progress": l.sm.in_progress(),
            "paused": l.sm.paused(),
            "last_round_ms": st.last_duration_ms,
            "members": l.sm.n_members(),
            "ukeys_per_revalidator": st.member_ukeys,
            "last_round": st.last_counts,
            "totals": st.totals,
            "swept": st.swept,
        })
    }
}

impl Actor for Revalidator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        self.drive(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        if let Some(l) = self.leader.as_mut() {
            // Dropping the senders releases every waiting barrier now
            // instead of at its timeout.
            drop(l.sm.shutdown());
        }
        self.meter.mark_dead();
    }
}

impl Handler<BeginRound> for Revalidator {
    type Result = MessageResult<BeginRound>;
    fn handle(&mut self, m: BeginRound, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<BeginRound>();
        MessageResult(self.revalidate_share(&m))
    }
}

impl Handler<Sweep> for Revalidator {
    type Result = MessageResult<Sweep>;
    fn handle(&mut self, _: Sweep, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Sweep>();
        let swept = self.sweep();
        MessageResult(Swept {
            swept,
            n_ukeys: self.ukeys.len(),
        })
    }
}

impl Handler<SetMembers> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: SetMembers, ctx: &mut Context<Self>) {
        let _g = self.guard::<SetMembers>();
        if let Some(l) = self.leader.as_mut() {
            let n = m.0.len();
            l.members = m.0;
            self.lead(ctx, |sm, now| sm.handle_members(n, now));
        }
    }
}

impl Handler<TablesChanged> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: TablesChanged, ctx: &mut Context<Self>) {
        let _g = self.guard::<TablesChanged>();
        self.lead(ctx, |sm, now| sm.handle_tables_changed(m.ack, now));
    }
}

impl Handler<WaitRound> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: WaitRound, ctx: &mut Context<Self>) {
        let _g = self.guard::<WaitRound>();
        self.lead(ctx, |sm, now| sm.handle_wait(m.0, now));
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
    fn handle(&mut self, _: Pause, ctx: &mut Context<Self>) {
        let _g = self.guard::<Pause>();
        self.lead(ctx, |sm, _| sm.handle_pause());
    }
}

impl Handler<Resume> for Revalidator {
    type Result = ();
    fn handle(&mut self, _: Resume, ctx: &mut Context<Self>) {
        let _g = self.guard::<Resume>();
        self.lead(ctx, |sm, now| sm.handle_resume(now));
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

impl Handler<ForgetBridge> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: ForgetBridge, _: &mut Context<Self>) {
        let _g = self.guard::<ForgetBridge>();
        let before = self.ukeys.len();
        self.ukeys.retain(|_, uk| uk.ctx.bridge_index() != m.0);
        self.shared
            .n_flows
            .fetch_sub(before - self.ukeys.len(), Relaxed);
    }
}

impl Handler<SetLimits> for Revalidator {
    type Result = ();
    fn handle(&mut self, m: SetLimits, ctx: &mut Context<Self>) {
        let _g = self.guard::<SetLimits>();
        self.lead(ctx, |sm, now| {
            sm.handle_limits(m.flow_limit, m.max_idle_ms, now)
        });
        if let Some(l) = &self.leader {
            self.shared
                .flow_limit
                .store(l.sm.limiter().current, Relaxed);
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
    let members: Vec<Member> = out.iter().map(|(m, _)| member(m)).collect();
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
    let meter = crate::util::metrics::registry().meter(
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
    use crate::datapath::dpflow::DpFlow;
    use crate::datapath::flow::Field;
    use crate::datapath::flow::FlowKey;
    use crate::ofproto::rule::Rule;
    use crate::types::PortNo;
    use std::sync::atomic::AtomicBool;
    use std::sync::atomic::AtomicU64;

    /// A bridge stand-in whose translation answer the test controls.
    struct FakeBridge {
        seq: AtomicU64,
        out_port: AtomicU64,
        deleted: AtomicU64,
        rule: Arc<Rule>,
        gone: AtomicBool,
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
                rules: Box::new([self.rule.clone()]),
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
            rules: Box::new([ctx.rule.clone()]),
            pushed: crate::datapath::dpflow::DpFlowStatsSnapshot::default(),
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
                rule: Rule::for_tests(1),
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
            assert_eq!(fake.rule.stats().0, 5);
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
                    .ask(SetMembers(boxes[..n - 1].iter().map(member).collect()))
                    .await
                    .unwrap();
                last.ask(Exit {
                    handover: Some(boxes[0].inbox()),
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
                rule: Rule::for_tests(1),
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
