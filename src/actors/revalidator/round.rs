//! The revalidator leader's round protocol as a state machine with no I/O:
//! inputs arrive through `handle_*` with the time passed in, and what to do
//! next comes out of [`RoundLeader::poll_action`] and
//! [`RoundLeader::poll_timeout`] (the `quinn-proto` shape). The actor in
//! `actors/revalidator.rs` only moves these to and from mailboxes and timers.
//!
//! The protocol replaces the three `ovs_barrier_block` calls of OVS's
//! `ofproto-dpif-upcall.c:udpif_revalidator()`: the leader tells every member
//! to revalidate its ukeys ([`RoundAction::Begin`]); when all have answered it
//! tells them to sweep ([`RoundAction::Sweep`]); when all have swept it closes the
//! round — adapts the flow limit (`policy::FlowLimiter`) and acknowledges
//! whoever waited for a round that started after their request
//! ([`RoundAction::Ack`]: barriers, `revalidator/wait`).
//!
//! Timing, as `udpif_revalidator()` does it: a round starts at the latest
//! `min(max_idle, 500 ms)` after the previous one started; a table change
//! asks for one sooner, but rounds never start closer together than 5 ms
//! unless someone waits on one (a bulk of flow-mods, each followed by a
//! barrier, must not pay 5 ms apiece). A member that leaves mid-round
//! (resize, or replaced after dying) is no longer waited for; a replaced one
//! is asked again.

use super::policy::{FlowLimiter, LimitChange};
use crate::messages::revalidator::BeginRound;
use crate::ofproto::ukey::RoundCounts;
use std::collections::VecDeque;

/// Rounds never start closer together than this, unless a waiter asks
/// (`udpif_revalidator()`: "woken up within 5ms of the last start time").
pub const MIN_ROUND_GAP_MS: u64 = 5;
/// Rounds start at least this often, or every `max_idle` if that is shorter
/// (OVS's `ofproto_max_revalidator` default).
pub const MAX_ROUND_GAP_MS: u64 = 500;

/// The time and the datapath flow count when an input arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// Monotonic milliseconds.
    pub ms: u64,
    /// Datapath flows (ukeys) in total.
    pub n_flows: usize,
}

/// What one round asks of every member (the message itself: plain data).
pub type RoundParams = BeginRound;

/// Something the actor must do.
#[derive(Debug, PartialEq)]
pub enum RoundAction<W> {
    /// Send `BeginRound` to member `member`.
    Begin {
        /// Member index.
        member: usize,
        /// The round.
        params: RoundParams,
    },
    /// Send `Sweep` to member `member`.
    Sweep {
        /// Member index.
        member: usize,
        /// Round number.
        round: u64,
    },
    /// A round that started after this waiter asked has finished.
    Ack(W),
    /// A round finished (for logs, coverage and the shared limit).
    RoundDone {
        /// Round number.
        round: u64,
        /// How long it took.
        duration_ms: u64,
        /// The flow limit after it.
        flow_limit: usize,
        /// Set when the limit changed.
        limit_change: Option<LimitChange>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Revalidating,
    Sweeping,
}

/// The leader's state. `W` is whatever a waiter hands in to be acknowledged
/// (a oneshot sender in the daemon, a number in tests).
#[derive(Debug)]
pub struct RoundLeader<W> {
    n_members: usize,
    round: u64,
    phase: Phase,
    pending: Vec<usize>,
    current: Option<RoundParams>,
    round_started_ms: u64,
    last_round_start: Option<u64>,
    round_counts: RoundCounts,
    limiter: FlowLimiter,
    max_idle_ms: u64,
    paused: bool,
    need_round: bool,
    waiting: Vec<W>,
    in_round: Vec<W>,
    actions: VecDeque<RoundAction<W>>,
    stats: LeaderStats,
}

/// What the leader reports (`upcall/show`, `/stats`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaderStats {
    /// Completed rounds.
    pub rounds: u64,
    /// Duration of the last completed round.
    pub last_duration_ms: u64,
    /// Largest flow count seen at a round start.
    pub max_flows: usize,
    /// Moving average of the flow count at round starts.
    pub avg_flows: f64,
    /// Sum of every round's decisions.
    pub totals: RoundCounts,
    /// The last completed round's decisions.
    pub last_counts: RoundCounts,
    /// Ukeys removed by sweeps.
    pub swept: u64,
    /// Ukeys each member owned after the last sweep.
    pub member_ukeys: Vec<usize>,
}

impl<W> RoundLeader<W> {
    /// A leader with no members yet.
    pub fn new(flow_limit: usize, max_idle_ms: u64) -> RoundLeader<W> {
        RoundLeader {
            n_members: 0,
            round: 0,
            phase: Phase::Idle,
            pending: Vec::new(),
            current: None,
            round_started_ms: 0,
            last_round_start: None,
            round_counts: RoundCounts::default(),
            limiter: FlowLimiter::new(flow_limit),
            max_idle_ms,
            paused: false,
            need_round: false,
            waiting: Vec::new(),
            in_round: Vec::new(),
            actions: VecDeque::new(),
            stats: LeaderStats::default(),
        }
    }

    /// The adaptive flow limit.
    pub fn limiter(&self) -> &FlowLimiter {
        &self.limiter
    }

    /// The configured idle time.
    pub fn max_idle_ms(&self) -> u64 {
        self.max_idle_ms
    }

    /// Counters for reports.
    pub fn stats(&self) -> &LeaderStats {
        &self.stats
    }

    /// Current round number (0 before the first).
    pub fn round(&self) -> u64 {
        self.round
    }

    /// Whether a round is running.
    pub fn in_progress(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// Whether rounds are paused (`revalidator/pause`).
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Number of members (the leader is member 0).
    pub fn n_members(&self) -> usize {
        self.n_members
    }

    /// Waiters not yet acknowledged (waiting for a round or inside one).
    pub fn n_waiters(&self) -> usize {
        self.waiting.len() + self.in_round.len()
    }

    /// The next thing to do, if any.
    pub fn poll_action(&mut self) -> Option<RoundAction<W>> {
        self.actions.pop_front()
    }

    /// When to call [`RoundLeader::handle_timeout`] next (ms), if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.paused || self.phase != Phase::Idle || self.n_members == 0 {
            return None;
        }
        let Some(last) = self.last_round_start else {
            return Some(0);
        };
        let periodic = last + self.round_gap_ms();
        if self.need_round || !self.waiting.is_empty() {
            // Waiters start at once; a plain change after the minimum gap.
            let soon = if self.waiting.is_empty() {
                last + MIN_ROUND_GAP_MS
            } else {
                last
            };
            Some(soon.min(periodic))
        } else {
            Some(periodic)
        }
    }

    /// The longest gap between round starts.
    fn round_gap_ms(&self) -> u64 {
        self.max_idle_ms.clamp(MIN_ROUND_GAP_MS, MAX_ROUND_GAP_MS)
    }

    /// The tables of some bridge changed; `ack` waits for a round that
    /// starts after now.
    pub fn handle_tables_changed(&mut self, ack: Option<W>, now: Now) {
        self.need_round = true;
        if let Some(w) = ack {
            self.waiting.push(w);
        }
        self.maybe_start(now);
    }

    /// `revalidator/wait`: acknowledge after the next full round.
    pub fn handle_wait(&mut self, w: W, now: Now) {
        self.waiting.push(w);
        self.maybe_start(now);
    }

    /// A timer set from [`RoundLeader::poll_timeout`] fired.
    pub fn handle_timeout(&mut self, now: Now) {
        self.maybe_start(now);
    }

    /// `revalidator/pause`: no new rounds (one in progress completes).
    pub fn handle_pause(&mut self) {
        self.paused = true;
    }

    /// `revalidator/resume`.
    pub fn handle_resume(&mut self, now: Now) {
        self.paused = false;
        self.maybe_start(now);
    }

    /// Reload: new configured limit and idle time.
    pub fn handle_limits(&mut self, flow_limit: usize, max_idle_ms: u64, now: Now) {
        self.limiter.set_configured(flow_limit, now.ms);
        self.max_idle_ms = max_idle_ms;
    }

    /// The members are now `0..n`. Members that left are no longer waited
    /// for; those still pending (one may have been replaced after dying
    /// mid-round) are asked again, except the leader itself, which cannot
    /// have died while running this.
    pub fn handle_members(&mut self, n: usize, now: Now) {
        self.n_members = n;
        self.stats.member_ukeys.resize(n, 0);
        self.pending.retain(|&p| p < n);
        match (self.phase, self.current) {
            (Phase::Revalidating, Some(params)) => {
                for &member in self.pending.iter().filter(|&&p| p != 0) {
                    self.actions
                        .push_back(RoundAction::Begin { member, params });
                }
            }
            (Phase::Sweeping, _) => {
                for &member in self.pending.iter().filter(|&&p| p != 0) {
                    self.actions.push_back(RoundAction::Sweep {
                        member,
                        round: self.round,
                    });
                }
            }
            _ => {}
        }
        if n == 0 {
            // Nobody is left to answer: the round cannot finish.
            self.phase = Phase::Idle;
            self.pending.clear();
        }
        self.finish_phase(now);
        self.maybe_start(now);
    }

    /// Member `from` revalidated its share of `round`.
    pub fn handle_revalidated(&mut self, round: u64, from: usize, counts: RoundCounts, now: Now) {
        if round != self.round || self.phase != Phase::Revalidating {
            return;
        }
        if let Some(pos) = self.pending.iter().position(|&p| p == from) {
            self.pending.swap_remove(pos);
            self.round_counts += counts;
        }
        self.finish_phase(now);
    }

    /// Member `from` swept in `round`, leaving it with `n_ukeys`.
    pub fn handle_swept(&mut self, round: u64, from: usize, swept: u64, n_ukeys: usize, now: Now) {
        if round != self.round || self.phase != Phase::Sweeping {
            return;
        }
        if let Some(pos) = self.pending.iter().position(|&p| p == from) {
            self.pending.swap_remove(pos);
            self.stats.swept += swept;
            if let Some(slot) = self.stats.member_ukeys.get_mut(from) {
                *slot = n_ukeys;
            }
        }
        self.finish_phase(now);
    }

    /// The leader stops: every waiter is handed back unacknowledged (the
    /// caller drops them, which releases their barriers).
    pub fn shutdown(&mut self) -> Vec<W> {
        let mut all: Vec<W> = self.in_round.drain(..).collect();
        all.append(&mut self.waiting);
        all
    }

    fn maybe_start(&mut self, now: Now) {
        if self.paused || self.phase != Phase::Idle || self.n_members == 0 {
            return;
        }
        match self.poll_timeout() {
            Some(at) if at <= now.ms => {}
            _ => return,
        }
        self.need_round = false;
        self.round += 1;
        self.phase = Phase::Revalidating;
        self.pending = (0..self.n_members).collect();
        self.round_started_ms = now.ms;
        self.last_round_start = Some(now.ms);
        self.round_counts = RoundCounts::default();
        self.in_round.append(&mut self.waiting);
        self.stats.max_flows = self.stats.max_flows.max(now.n_flows);
        self.stats.avg_flows = if self.round == 1 {
            now.n_flows as f64
        } else {
            (self.stats.avg_flows * 7.0 + now.n_flows as f64) / 8.0
        };
        let (max_idle_ms, kill_all) = self.limiter.round_params(now.n_flows, self.max_idle_ms);
        let params = RoundParams {
            round: self.round,
            n_flows: now.n_flows,
            flow_limit: self.limiter.current,
            max_idle_ms,
            kill_all,
            now_ms: now.ms,
        };
        self.current = Some(params);
        for member in 0..self.n_members {
            self.actions
                .push_back(RoundAction::Begin { member, params });
        }
    }

    fn finish_phase(&mut self, now: Now) {
        if !self.pending.is_empty() {
            return;
        }
        match self.phase {
            Phase::Revalidating => {
                self.phase = Phase::Sweeping;
                self.pending = (0..self.n_members).collect();
                for member in 0..self.n_members {
                    self.actions.push_back(RoundAction::Sweep {
                        member,
                        round: self.round,
                    });
                }
            }
            Phase::Sweeping => {
                // `udpif_revalidator()`: duration = MAX(now - start, 1).
                let duration_ms = now.ms.saturating_sub(self.round_started_ms).max(1);
                self.phase = Phase::Idle;
                self.current = None;
                let changed = self.limiter.adapt(duration_ms, now.n_flows, now.ms);
                self.stats.rounds += 1;
                self.stats.last_duration_ms = duration_ms;
                self.stats.last_counts = self.round_counts;
                self.stats.totals += self.round_counts;
                self.actions.push_back(RoundAction::RoundDone {
                    round: self.round,
                    duration_ms,
                    flow_limit: self.limiter.current,
                    limit_change: if changed {
                        self.limiter.last_change.clone()
                    } else {
                        None
                    },
                });
                for w in self.in_round.drain(..) {
                    self.actions.push_back(RoundAction::Ack(w));
                }
                self.maybe_start(now);
            }
            Phase::Idle => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a leader on a simulated clock with members that answer when
    /// the test says so.
    struct Sim {
        l: RoundLeader<u32>,
        now: Now,
        begun: Vec<(usize, RoundParams)>,
        swept: Vec<(usize, u64)>,
        acked: Vec<u32>,
        done: Vec<u64>,
    }

    impl Sim {
        fn new(members: usize, max_idle_ms: u64) -> Sim {
            let mut s = Sim {
                l: RoundLeader::new(200_000, max_idle_ms),
                now: Now {
                    ms: 1000,
                    n_flows: 10,
                },
                begun: Vec::new(),
                swept: Vec::new(),
                acked: Vec::new(),
                done: Vec::new(),
            };
            s.l.handle_members(members, s.now);
            s.pump();
            s
        }

        fn pump(&mut self) {
            while let Some(a) = self.l.poll_action() {
                match a {
                    RoundAction::Begin { member, params } => self.begun.push((member, params)),
                    RoundAction::Sweep { member, round } => self.swept.push((member, round)),
                    RoundAction::Ack(w) => self.acked.push(w),
                    RoundAction::RoundDone { round, .. } => self.done.push(round),
                }
            }
        }

        fn advance(&mut self, ms: u64) {
            self.now.ms += ms;
            if let Some(t) = self.l.poll_timeout() {
                if t <= self.now.ms {
                    self.l.handle_timeout(self.now);
                }
            }
            self.pump();
        }

        /// Every member answers both phases of the current round.
        fn answer_all(&mut self, members: usize) {
            let r = self.l.round();
            for m in 0..members {
                self.l
                    .handle_revalidated(r, m, RoundCounts::default(), self.now);
            }
            self.pump();
            for m in 0..members {
                self.l.handle_swept(r, m, 0, 0, self.now);
            }
            self.pump();
        }

        fn begun_in(&self, round: u64) -> Vec<usize> {
            let mut v: Vec<usize> = self
                .begun
                .iter()
                .filter(|(_, p)| p.round == round)
                .map(|(m, _)| *m)
                .collect();
            v.sort_unstable();
            v
        }
    }

    fn rounds_with(members: usize) {
        let mut s = Sim::new(members, 10_000);
        // The first round starts at once and asks every member.
        assert_eq!(s.begun_in(1), (0..members).collect::<Vec<_>>());
        // A barrier during the round waits for the next one, not this one.
        s.l.handle_tables_changed(Some(7), s.now);
        s.pump();
        // Sweeping starts only when the last member has revalidated.
        for m in 0..members {
            assert!(s.swept.is_empty(), "swept before member {m} answered");
            s.l.handle_revalidated(
                1,
                m,
                RoundCounts {
                    flows: 1,
                    ..Default::default()
                },
                s.now,
            );
            s.pump();
        }
        assert_eq!(s.swept.len(), members);
        for m in 0..members {
            assert!(s.done.is_empty());
            s.l.handle_swept(1, m, 1, 3, s.now);
            s.pump();
        }
        assert_eq!(s.done, vec![1]);
        assert_eq!(s.l.stats().totals.flows, members as u64);
        assert_eq!(s.l.stats().swept, members as u64);
        // Round 2 started at once for the waiter (no 5 ms spacing) ...
        assert!(s.acked.is_empty(), "acked before its round");
        assert_eq!(s.begun_in(2), (0..members).collect::<Vec<_>>());
        s.answer_all(members);
        // ... and its end acknowledges the barrier.
        assert_eq!(s.acked, vec![7]);
        assert_eq!(s.l.stats().rounds, 2);
    }

    #[test]
    fn rounds_with_one_member() {
        rounds_with(1);
    }

    #[test]
    fn rounds_with_two_members() {
        rounds_with(2);
    }

    #[test]
    fn rounds_with_four_members() {
        rounds_with(4);
    }

    #[test]
    fn stale_and_duplicate_answers_are_ignored() {
        let mut s = Sim::new(2, 10_000);
        s.l.handle_revalidated(0, 0, RoundCounts::default(), s.now); // old round
        s.l.handle_swept(1, 0, 0, 0, s.now); // wrong phase
        s.l.handle_revalidated(1, 0, RoundCounts::default(), s.now);
        s.l.handle_revalidated(1, 0, RoundCounts::default(), s.now); // twice
        s.pump();
        assert!(s.swept.is_empty(), "member 1 has not answered");
        s.l.handle_revalidated(1, 1, RoundCounts::default(), s.now);
        s.pump();
        assert_eq!(s.swept.len(), 2);
    }

    #[test]
    fn a_member_dying_mid_round_is_asked_again_or_no_longer_waited_for() {
        let mut s = Sim::new(3, 10_000);
        s.l.handle_wait(1, s.now);
        s.l.handle_revalidated(1, 0, RoundCounts::default(), s.now);
        s.pump();
        // Member 2 died and was replaced: every member still pending (1 and
        // the new 2) is asked again; the leader, which answered, is not.
        s.begun.clear();
        s.l.handle_members(3, s.now);
        s.pump();
        assert_eq!(s.begun_in(1), vec![1, 2]);
        // Then the group shrinks to 2 while sweeping: member 2 is dropped
        // from the sweep and the round completes without it.
        s.l.handle_revalidated(1, 1, RoundCounts::default(), s.now);
        s.l.handle_revalidated(1, 2, RoundCounts::default(), s.now);
        s.pump();
        assert_eq!(s.swept.len(), 3);
        s.l.handle_swept(1, 0, 0, 5, s.now);
        s.l.handle_swept(1, 1, 0, 5, s.now);
        s.l.handle_members(2, s.now);
        s.pump();
        assert_eq!(s.done, vec![1]);
        assert_eq!(s.l.stats().member_ukeys, vec![5, 5]);
        // The waiter asked during round 1: round 2 (both members) is its round.
        assert!(s.acked.is_empty());
        assert_eq!(s.begun_in(2), vec![0, 1]);
        s.answer_all(2);
        assert_eq!(s.acked, vec![1]);
    }

    #[test]
    fn pause_holds_new_rounds_and_resume_releases_them() {
        let mut s = Sim::new(1, 10_000);
        s.answer_all(1);
        s.l.handle_pause();
        s.l.handle_tables_changed(Some(9), s.now);
        s.pump();
        assert_eq!(s.l.poll_timeout(), None, "no timer while paused");
        s.advance(60_000);
        assert!(s.begun_in(2).is_empty(), "a round started while paused");
        s.l.handle_resume(s.now);
        s.pump();
        assert_eq!(s.begun_in(2), vec![0]);
        s.answer_all(1);
        assert_eq!(s.acked, vec![9]);
    }

    #[test]
    fn a_round_in_progress_completes_while_paused() {
        let mut s = Sim::new(1, 10_000);
        s.l.handle_wait(3, s.now);
        s.l.handle_pause();
        s.answer_all(1);
        assert_eq!(s.done, vec![1]);
        assert!(s.begun_in(2).is_empty());
        assert!(s.acked.is_empty(), "the waiter asked during round 1");
    }

    #[test]
    fn shutdown_hands_back_every_waiter() {
        let mut s = Sim::new(1, 10_000);
        s.l.handle_wait(1, s.now); // waits for round 2
        s.l.handle_revalidated(1, 0, RoundCounts::default(), s.now);
        s.l.handle_swept(1, 0, 0, 0, s.now);
        s.pump(); // round 2 starts, waiter 1 inside it
        s.l.handle_wait(2, s.now); // waits for round 3
        let mut back = s.l.shutdown();
        back.sort_unstable();
        assert_eq!(back, vec![1, 2]);
        assert_eq!(s.l.n_waiters(), 0);
    }

    #[test]
    fn table_changes_are_spaced_by_the_minimum_gap_and_waiters_are_not() {
        let mut s = Sim::new(1, 10_000);
        s.answer_all(1); // round 1 done at t=1000
        s.advance(1);
        s.l.handle_tables_changed(None, s.now);
        s.pump();
        assert!(s.begun_in(2).is_empty(), "started within 5 ms");
        assert_eq!(s.l.poll_timeout(), Some(1000 + MIN_ROUND_GAP_MS));
        s.advance(3);
        assert!(s.begun_in(2).is_empty());
        s.advance(1);
        assert_eq!(s.begun_in(2), vec![0], "started at the 5 ms mark");
        s.answer_all(1);
        // With a waiter the gap does not apply.
        s.l.handle_tables_changed(Some(4), s.now);
        s.pump();
        assert_eq!(s.begun_in(3), vec![0]);
        // Many changes while a round runs ask for one more round, not many.
        for _ in 0..100 {
            s.l.handle_tables_changed(None, s.now);
        }
        s.answer_all(1);
        s.advance(MIN_ROUND_GAP_MS);
        s.answer_all(1);
        s.advance(MIN_ROUND_GAP_MS);
        assert!(s.begun_in(5).is_empty(), "one round per burst of changes");
    }

    #[test]
    fn idle_rounds_follow_max_idle_capped_at_500_ms() {
        // max_idle 10 s: a round every 500 ms.
        let mut s = Sim::new(1, 10_000);
        s.answer_all(1);
        assert_eq!(s.l.poll_timeout(), Some(1000 + MAX_ROUND_GAP_MS));
        s.advance(499);
        assert!(s.begun_in(2).is_empty());
        s.advance(1);
        assert_eq!(s.begun_in(2), vec![0]);
        // max_idle 50 ms: a round every 50 ms.
        let mut s = Sim::new(1, 50);
        s.answer_all(1);
        assert_eq!(s.l.poll_timeout(), Some(1050));
        // max_idle 1 ms: never closer than 5 ms.
        let mut s = Sim::new(1, 1);
        s.answer_all(1);
        assert_eq!(s.l.poll_timeout(), Some(1000 + MIN_ROUND_GAP_MS));
        // A round that overran its period is followed at once.
        let mut s = Sim::new(1, 100);
        s.now.ms += 300;
        s.answer_all(1);
        assert_eq!(s.begun_in(2), vec![0]);
    }

    #[test]
    fn no_members_no_rounds() {
        let mut s = Sim::new(0, 10_000);
        s.l.handle_wait(1, s.now);
        s.pump();
        assert!(s.begun.is_empty());
        assert_eq!(s.l.poll_timeout(), None);
        s.l.handle_members(1, s.now);
        s.pump();
        assert_eq!(s.begun_in(1), vec![0]);
    }

    #[test]
    fn a_slow_round_lowers_the_flow_limit() {
        let mut s = Sim::new(1, 10_000);
        s.now.n_flows = 150_000;
        s.now.ms += 3500;
        s.answer_all(1);
        assert_eq!(s.l.limiter().current, 66_666);
    }
}
