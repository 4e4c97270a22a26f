//! Per-actor counters, readable at any time without messaging the actor.
//!
//! Every actor owns an `Arc<ActorMeter>` registered in the process-wide
//! [`registry`]. Senders bump `received` when they enqueue (so `received -
//! handled` is the mailbox depth) and handlers record `handled` plus the time
//! they took. All counters are relaxed atomics: a stuck or dead actor stays
//! visible in `/stats`, which is the point. The registry's list of actors is an
//! `ArcSwap`, so readers never block registration and vice versa.

use arc_swap::{ArcSwap, ArcSwapOption};
use serde::Serialize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// A message type's name, for per-type counters.
pub trait MsgName {
    /// Stable name shown in stats.
    const NAME: &'static str;
}

/// Log2 histogram buckets of handling time in ns (bucket i holds [2^i, 2^(i+1))).
const BUCKETS: usize = 40;

/// Counters of one message type at one actor.
pub struct MsgMeter {
    name: &'static str,
    received: AtomicU64,
    handled: AtomicU64,
    dropped: AtomicU64,
    total_ns: AtomicU64,
    max_ns: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

impl MsgMeter {
    fn new(name: &'static str) -> MsgMeter {
        MsgMeter {
            name,
            received: AtomicU64::new(0),
            handled: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            total_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            hist: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn record(&self, ns: u64) {
        self.handled.fetch_add(1, Relaxed);
        self.total_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
        let b = (64 - ns.max(1).leading_zeros() as usize - 1).min(BUCKETS - 1);
        self.hist[b].fetch_add(1, Relaxed);
    }

    fn p99_ns(&self) -> u64 {
        let counts: Vec<u64> = self.hist.iter().map(|h| h.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = total - total / 100;
        let mut acc = 0;
        for (i, c) in counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                return 1u64 << (i + 1);
            }
        }
        0
    }
}

/// One actor's counters.
pub struct ActorMeter {
    /// Unique id, e.g. `bridge:br0`, `port:br0:veth1`, `revalidator:0`.
    pub id: String,
    /// Actor kind: Bridge, Port, Connmgr, OfSession, UpcallHandler, Revalidator, Daemon.
    pub kind: &'static str,
    /// Bridge the actor serves, if any.
    pub bridge: Option<String>,
    /// Mailbox capacity set at start.
    pub capacity: usize,
    msgs: ArcSwap<Vec<Arc<MsgMeter>>>,
    restarts: AtomicU64,
    alive: AtomicBool,
    last_error: ArcSwapOption<String>,
    created: Instant,
}

/// Records handling time on drop.
pub struct HandleGuard {
    m: Arc<MsgMeter>,
    start: Instant,
    timed: bool,
}

impl HandleGuard {
    /// Counts the message as handled without timing it (used to balance the
    /// books for a message that was refused after being counted as enqueued).
    pub fn forget(mut self) {
        self.m.handled.fetch_add(1, Relaxed);
        self.timed = false;
    }
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if self.timed {
            self.m.record(self.start.elapsed().as_nanos() as u64);
        }
    }
}

impl ActorMeter {
    fn msg(&self, name: &'static str) -> Arc<MsgMeter> {
        if let Some(m) = self.msgs.load().iter().find(|m| m.name == name) {
            return m.clone();
        }
        // First time this type is seen: copy-on-write append (rare, slow path).
        let mut out = None;
        self.msgs.rcu(|cur| {
            if let Some(m) = cur.iter().find(|m| m.name == name) {
                out = Some(m.clone());
                return cur.clone();
            }
            let m = Arc::new(MsgMeter::new(name));
            out = Some(m.clone());
            let mut v = (**cur).clone();
            v.push(m);
            Arc::new(v)
        });
        out.unwrap_or_else(|| Arc::new(MsgMeter::new(name)))
    }

    /// Counts a message as enqueued (sender side).
    pub fn enqueued(&self, name: &'static str) {
        self.msg(name).received.fetch_add(1, Relaxed);
    }

    /// Counts a message that could not be enqueued (mailbox full or closed).
    pub fn rejected(&self, name: &'static str) {
        let m = self.msg(name);
        m.dropped.fetch_add(1, Relaxed);
    }

    /// Starts timing the handling of one message; also counts it as received
    /// when the sender could not (messages from streams and timers).
    pub fn handling(&self, name: &'static str) -> HandleGuard {
        HandleGuard {
            m: self.msg(name),
            start: Instant::now(),
            timed: true,
        }
    }

    /// Counts a stream item as both received and about to be handled.
    pub fn stream_item(&self, name: &'static str) -> HandleGuard {
        let m = self.msg(name);
        m.received.fetch_add(1, Relaxed);
        HandleGuard {
            m,
            start: Instant::now(),
            timed: true,
        }
    }

    /// Records an error message for display.
    pub fn set_error(&self, e: impl Into<String>) {
        self.last_error.store(Some(Arc::new(e.into())));
    }

    /// Marks the actor started (again); counts a restart when it had died.
    pub fn mark_alive(&self) {
        self.alive.store(true, Relaxed);
    }

    /// Marks the actor stopped.
    pub fn mark_dead(&self) {
        self.alive.store(false, Relaxed);
    }

    /// Counts a restart by a supervisor.
    pub fn restarted(&self) {
        self.restarts.fetch_add(1, Relaxed);
    }

    /// Whether the actor is running.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Relaxed)
    }

    /// Current counters.
    pub fn snapshot(&self) -> ActorSnapshot {
        let mut depth = 0u64;
        let messages: Vec<MsgSnapshot> = self
            .msgs
            .load()
            .iter()
            .map(|m| {
                let received = m.received.load(Relaxed);
                let handled = m.handled.load(Relaxed);
                depth += received.saturating_sub(handled);
                let n = handled.max(1);
                MsgSnapshot {
                    name: m.name,
                    received,
                    handled,
                    dropped: m.dropped.load(Relaxed),
                    mean_us: m.total_ns.load(Relaxed) as f64 / n as f64 / 1000.0,
                    p99_us: m.p99_ns() as f64 / 1000.0,
                    max_us: m.max_ns.load(Relaxed) as f64 / 1000.0,
                }
            })
            .collect();
        let handled: u64 = messages.iter().map(|m| m.handled).sum();
        let total_ns: u64 = self
            .msgs
            .load()
            .iter()
            .map(|m| m.total_ns.load(Relaxed))
            .sum();
        let max_us = messages.iter().map(|m| m.max_us).fold(0.0, f64::max);
        let p99_us = self
            .msgs
            .load()
            .iter()
            .map(|m| m.p99_ns())
            .max()
            .unwrap_or(0) as f64
            / 1000.0;
        ActorSnapshot {
            id: self.id.clone(),
            kind: self.kind,
            bridge: self.bridge.clone(),
            alive: self.alive.load(Relaxed),
            mailbox_depth: depth,
            mailbox_capacity: self.capacity,
            handling: HandlingSnapshot {
                count: handled,
                mean_us: if handled == 0 {
                    0.0
                } else {
                    total_ns as f64 / handled as f64 / 1000.0
                },
                p99_us,
                max_us,
            },
            restarts: self.restarts.load(Relaxed),
            last_error: self.last_error.load_full().map(|s| (*s).clone()),
            uptime_s: self.created.elapsed().as_secs_f64(),
            messages,
        }
    }
}

/// Serialised view of one message type's counters.
#[derive(Clone, Debug, Serialize)]
pub struct MsgSnapshot {
    /// Message type.
    pub name: &'static str,
    /// Enqueued.
    pub received: u64,
    /// Handled.
    pub handled: u64,
    /// Refused because the mailbox or queue was full or closed.
    pub dropped: u64,
    /// Mean handling time, µs.
    pub mean_us: f64,
    /// 99th percentile (upper bucket bound), µs.
    pub p99_us: f64,
    /// Longest, µs.
    pub max_us: f64,
}

/// Handling time over all message types.
#[derive(Clone, Debug, Serialize)]
pub struct HandlingSnapshot {
    /// Messages handled.
    pub count: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// p99 (upper bucket bound), µs.
    pub p99_us: f64,
    /// Max, µs.
    pub max_us: f64,
}

/// Serialised view of one actor.
#[derive(Clone, Debug, Serialize)]
pub struct ActorSnapshot {
    /// Id.
    pub id: String,
    /// Kind.
    pub kind: &'static str,
    /// Bridge.
    pub bridge: Option<String>,
    /// Running.
    pub alive: bool,
    /// Enqueued minus handled.
    pub mailbox_depth: u64,
    /// Mailbox capacity.
    pub mailbox_capacity: usize,
    /// Handling time.
    pub handling: HandlingSnapshot,
    /// Restarts by a supervisor.
    pub restarts: u64,
    /// Last error recorded.
    pub last_error: Option<String>,
    /// Seconds since the meter was created.
    pub uptime_s: f64,
    /// Per message type.
    pub messages: Vec<MsgSnapshot>,
}

/// The process-wide list of actor meters.
pub struct Registry {
    actors: ArcSwap<Vec<Arc<ActorMeter>>>,
    started: Instant,
}

/// The registry.
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        actors: ArcSwap::from_pointee(Vec::new()),
        started: Instant::now(),
    })
}

impl Registry {
    /// Registers (or finds, for a restarted actor) the meter with this id.
    pub fn meter(
        &self,
        id: String,
        kind: &'static str,
        bridge: Option<String>,
        capacity: usize,
    ) -> Arc<ActorMeter> {
        if let Some(m) = self.actors.load().iter().find(|m| m.id == id) {
            return m.clone();
        }
        let m = Arc::new(ActorMeter {
            id,
            kind,
            bridge,
            capacity,
            msgs: ArcSwap::from_pointee(Vec::new()),
            restarts: AtomicU64::new(0),
            alive: AtomicBool::new(false),
            last_error: ArcSwapOption::empty(),
            created: Instant::now(),
        });
        let add = m.clone();
        self.actors.rcu(move |cur| {
            let mut v = (**cur).clone();
            v.push(add.clone());
            Arc::new(v)
        });
        m
    }

    /// Removes the meter with this id (actor deleted for good, e.g. by reload).
    pub fn remove(&self, id: &str) {
        self.actors.rcu(|cur| {
            Arc::new(
                cur.iter()
                    .filter(|m| m.id != id)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        });
    }

    /// Every actor's counters.
    pub fn snapshot(&self) -> Vec<ActorSnapshot> {
        self.actors.load().iter().map(|m| m.snapshot()).collect()
    }

    /// Seconds since the process started.
    pub fn uptime_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_times_are_counted() {
        let m = registry().meter("test:meter".into(), "Test", None, 16);
        m.enqueued("Ping");
        m.enqueued("Ping");
        {
            let _g = m.handling("Ping");
        }
        let s = m.snapshot();
        assert_eq!(s.mailbox_depth, 1);
        assert_eq!(s.messages[0].received, 2);
        assert_eq!(s.messages[0].handled, 1);
        assert!(registry().snapshot().iter().any(|a| a.id == "test:meter"));
        registry().remove("test:meter");
        assert!(!registry().snapshot().iter().any(|a| a.id == "test:meter"));
    }
}
