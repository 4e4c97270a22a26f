//! The revalidation rules of OVS's `ofproto-dpif-upcall.c`, as pure functions
//! on plain values so they can be tested on a simulated clock: the adaptive
//! flow limit (`udpif_revalidator()`), and the keep / modify / delete decision
//! for one datapath flow (`revalidate()`, `revalidate_ukey()`).

use crate::datapath::actions::DpActions;
use crate::datapath::flow::FlowKey;
use serde::Serialize;

/// Lowest value the adaptive limit may take.
pub const MIN_FLOW_LIMIT: usize = 1000;
/// Idle time used instead of max_idle while flows exceed the limit.
pub const OVERLOAD_MAX_IDLE_MS: u64 = 100;

/// Why the limit last changed, for `upcall/show`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LimitChange {
    /// When (ms, monotonic).
    pub at_ms: u64,
    /// Old limit.
    pub from: usize,
    /// New limit.
    pub to: usize,
    /// The rule that fired, with its inputs.
    pub reason: String,
}

/// The adaptive flow limit. Starts at the configured limit (OVS starts at
/// 10,000 and climbs 1,000 per round, which made a burst of 100k new flows take
/// ~41 s to absorb).
#[derive(Clone, Debug, Serialize)]
pub struct FlowLimiter {
    /// Configured ceiling.
    pub configured: usize,
    /// Current limit.
    pub current: usize,
    /// Last change.
    pub last_change: Option<LimitChange>,
}

impl FlowLimiter {
    /// A limiter at the configured value.
    pub fn new(configured: usize) -> FlowLimiter {
        FlowLimiter {
            configured,
            current: configured,
            last_change: None,
        }
    }

    /// Changes the ceiling (reload); the current limit is clamped to it.
    pub fn set_configured(&mut self, configured: usize, now_ms: u64) {
        self.configured = configured;
        let clamped = self
            .current
            .clamp(MIN_FLOW_LIMIT.min(configured), configured);
        if clamped != self.current {
            self.record(now_ms, clamped, "configured flow_limit changed".into());
        }
        if self.current < configured && self.last_change.is_none() {
            self.current = configured;
        }
    }

    fn record(&mut self, now_ms: u64, to: usize, reason: String) {
        self.last_change = Some(LimitChange {
            at_ms: now_ms,
            from: self.current,
            to,
            reason,
        });
        self.current = to;
    }

    /// Applies `udpif_revalidator()`'s rules after a round that took
    /// `duration_ms` with `n_flows` flows. Returns true when the limit changed.
    pub fn adapt(&mut self, duration_ms: u64, n_flows: usize, now_ms: u64) -> bool {
        let old = self.current;
        let (mut new, reason) = if duration_ms > 2000 {
            let div = (duration_ms / 1000).max(1) as usize;
            (
                old / div,
                format!("round took {duration_ms} ms (> 2000 ms): limit divided by {div}"),
            )
        } else if duration_ms > 1300 {
            (
                old * 3 / 4,
                format!("round took {duration_ms} ms (> 1300 ms): limit cut to 3/4"),
            )
        } else if duration_ms < 1000
            && n_flows > 2000
            && (old as u64) < (n_flows as u64 * 1000) / duration_ms.max(1)
        {
            (
                old + 1000,
                format!(
                    "round took {duration_ms} ms (< 1000 ms) with {n_flows} flows: limit raised by 1000"
                ),
            )
        } else {
            (old, String::new())
        };
        let floor = MIN_FLOW_LIMIT.min(self.configured);
        new = new.clamp(floor, self.configured);
        if new != old {
            self.record(now_ms, new, reason);
            true
        } else {
            false
        }
    }

    /// `(max_idle, kill_all)` for a round, as `revalidate()` computes them:
    /// over the limit, flows idle 100 ms die; over twice the limit, every
    /// flow dies.
    pub fn round_params(&self, n_flows: usize, max_idle_ms: u64) -> (u64, bool) {
        let idle = if n_flows > self.current {
            OVERLOAD_MAX_IDLE_MS.min(max_idle_ms)
        } else {
            max_idle_ms
        };
        (idle, n_flows > 2 * self.current)
    }
}

/// What to do with one datapath flow.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Leave it.
    Keep,
    /// Replace its actions in place.
    Modify(DpActions),
    /// Delete it.
    Delete(DeleteReason),
}

/// Why a flow is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DeleteReason {
    /// Idle longer than max_idle.
    Idle,
    /// Flows exceeded twice the limit.
    KillAll,
    /// Re-translation gave a different mask (or no flow at all).
    Changed,
}

/// The inputs of the decision for one flow.
pub struct FlowView<'a> {
    /// Last time the flow was used (ms), or its creation time.
    pub used_ms: u64,
    /// The flow's mask.
    pub mask: &'a FlowKey,
    /// The flow's actions.
    pub actions: &'a DpActions,
    /// Whether the tables (or MAC table) changed since it was translated.
    pub stale: bool,
}

/// Decides, as `revalidate()` and `revalidate_ukey()` do: kill-all or idle →
/// delete; otherwise, when the
/// tables changed, translate again (`retranslate` returns the new mask and
/// actions) → same mask and actions: keep; same mask: modify; else delete.
pub fn decide(
    f: &FlowView<'_>,
    now_ms: u64,
    max_idle_ms: u64,
    kill_all: bool,
    retranslate: impl FnOnce() -> Option<(FlowKey, DpActions)>,
) -> Decision {
    if kill_all {
        return Decision::Delete(DeleteReason::KillAll);
    }
    if now_ms.saturating_sub(f.used_ms) > max_idle_ms {
        return Decision::Delete(DeleteReason::Idle);
    }
    if !f.stale {
        return Decision::Keep;
    }
    match retranslate() {
        None => Decision::Delete(DeleteReason::Changed),
        Some((mask, actions)) => {
            if mask != *f.mask {
                Decision::Delete(DeleteReason::Changed)
            } else if actions == *f.actions {
                Decision::Keep
            } else {
                Decision::Modify(actions)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::actions::DpAction;
    use crate::datapath::flow::Field;
    use crate::types::PortNo;

    #[test]
    fn limit_follows_udpif_revalidator_rules_on_a_simulated_clock() {
        let mut l = FlowLimiter::new(200_000);
        // A 3.5 s round divides by 3 (integer seconds, as OVS does).
        assert!(l.adapt(3500, 150_000, 10));
        assert_eq!(l.current, 66_666);
        assert!(l
            .last_change
            .as_ref()
            .unwrap()
            .reason
            .contains("divided by 3"));
        // 1.5 s: three quarters.
        assert!(l.adapt(1500, 150_000, 20));
        assert_eq!(l.current, 49_999);
        // Fast round with many flows: +1000.
        assert!(l.adapt(100, 60_000, 30));
        assert_eq!(l.current, 50_999);
        // Fast round, few flows: unchanged.
        assert!(!l.adapt(100, 1000, 40));
        // Fast but limit already above n_flows*1000/duration: unchanged.
        assert!(!l.adapt(900, 2500, 50));
        // Clamp to the ceiling.
        let mut c = FlowLimiter::new(5000);
        assert!(!c.adapt(10, 100_000, 1));
        assert_eq!(c.current, 5000);
        // Clamp to the floor.
        let mut f = FlowLimiter::new(200_000);
        f.adapt(60_000, 10, 1);
        assert_eq!(f.current, 3333);
        f.adapt(60_000, 10, 2);
        assert_eq!(f.current, MIN_FLOW_LIMIT);
    }

    #[test]
    fn round_params_follow_the_limit() {
        let l = FlowLimiter::new(1000);
        assert_eq!(l.round_params(500, 10_000), (10_000, false));
        assert_eq!(l.round_params(1500, 10_000), (100, false));
        assert_eq!(l.round_params(2001, 10_000), (100, true));
    }

    #[test]
    fn keep_modify_delete() {
        let mut mask = FlowKey::default();
        mask.set_exact(Field::InPort);
        let acts = vec![DpAction::Output(PortNo(2))];
        let view = FlowView {
            used_ms: 1000,
            mask: &mask,
            actions: &acts,
            stale: true,
        };
        assert_eq!(
            decide(&view, 1500, 10_000, false, || Some((mask, acts.clone()))),
            Decision::Keep
        );
        let moved = vec![DpAction::Output(PortNo(3))];
        assert_eq!(
            decide(&view, 1500, 10_000, false, || Some((mask, moved.clone()))),
            Decision::Modify(moved.clone())
        );
        let mut wider = mask;
        wider.set_exact(Field::DlDst);
        assert_eq!(
            decide(&view, 1500, 10_000, false, || Some((wider, acts.clone()))),
            Decision::Delete(DeleteReason::Changed)
        );
        assert_eq!(
            decide(&view, 20_000, 10_000, false, || unreachable!()),
            Decision::Delete(DeleteReason::Idle)
        );
        assert_eq!(
            decide(&view, 1500, 10_000, true, || unreachable!()),
            Decision::Delete(DeleteReason::KillAll)
        );
        let fresh = FlowView {
            stale: false,
            ..view
        };
        assert_eq!(
            decide(&fresh, 1500, 10_000, false, || unreachable!()),
            Decision::Keep
        );
    }
}
