//! Per-actor counters and the process-wide registry of statistics sources,
//! readable at any time without messaging an actor.
//!
//! Every actor owns an `Arc<ActorMeter>` registered in the process-wide
//! [`registry`]. Senders bump `received` when they enqueue (so `received -
//! handled` is the mailbox depth) and handlers record `handled` plus the time
//! they took in a log2 [`Histogram`]. All counters are relaxed atomics: a stuck
//! or dead actor stays visible in `/stats`, which is the point. The registry's
//! lists are `ArcSwap`s, so readers never block registration and vice versa.
//!
//! Components other than actors (a bridge's datapath, the upcall handlers'
//! totals) publish through [`StatsSource`]s registered here by their owner (the
//! Daemon). A source answers twice from the same atomics: a JSON value for
//! `/stats` and metric families for `/metrics`, written into a [`MetricSink`]
//! that the control layer implements. Counter sets declared with
//! [`crate::counter_set!`] go through [`export_set`], which walks the set's
//! fields, so a new counter appears in `/metrics` with its doc comment as help
//! without being named again. This module defines only types and the walk; the
//! text encodings live in `control/`.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

use crate::util::counters::CounterSet;
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

/// Number of log2 buckets of a [`Histogram`]: bucket `i` holds durations in
/// `[2^i, 2^(i+1))` ns, so 40 buckets reach 2^40 ns (18 minutes); longer
/// durations land in the last bucket.
pub const HISTOGRAM_BUCKETS: usize = 40;

/// A latency histogram with log2 buckets, in nanoseconds. Recording is three
/// relaxed atomic adds and a max; readers take a [`HistogramSnapshot`].
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; HISTOGRAM_BUCKETS],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_ns: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration.
    pub fn observe_ns(&self, ns: u64) {
        self.sum_ns.fetch_add(ns, Relaxed);
        self.max_ns.fetch_max(ns, Relaxed);
        self.counts[bucket_of(ns)].fetch_add(1, Relaxed);
    }

    /// Reads every bucket (relaxed: each bucket is exact, the set is not a
    /// consistent cut while observations arrive).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].load(Relaxed)),
            sum_ns: self.sum_ns.load(Relaxed),
            max_ns: self.max_ns.load(Relaxed),
        }
    }
}

/// The log2 bucket of a duration: `floor(log2(ns))`, 0 for 0 and 1 ns.
fn bucket_of(ns: u64) -> usize {
    let log2 = u64::BITS - 1 - ns.max(1).leading_zeros();
    usize::try_from(log2)
        .unwrap_or(HISTOGRAM_BUCKETS - 1)
        .min(HISTOGRAM_BUCKETS - 1)
}

/// One million: quantiles are given in parts per million.
const PPM: u32 = 1_000_000;
/// The 99th percentile, in parts per million.
const P99: u32 = 990_000;

/// A copy of a [`Histogram`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per log2 bucket (bucket `i`: `[2^i, 2^(i+1))` ns).
    pub counts: [u64; HISTOGRAM_BUCKETS],
    /// Sum of all observations, ns.
    pub sum_ns: u64,
    /// Longest observation, ns.
    pub max_ns: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            counts: [0; HISTOGRAM_BUCKETS],
            sum_ns: 0,
            max_ns: 0,
        }
    }
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Upper bound (exclusive) of the bucket holding the quantile given in
    /// parts per million (`990_000` = p99), ns; 0 with no observations.
    /// Resolution is a factor of two.
    pub fn quantile_upper_ns(&self, ppm: u32) -> u64 {
        let total = self.count();
        if total == 0 {
            return 0;
        }
        // Observations at or below the quantile, rounded up: the p99 of 100
        // observations is the 99th. Integer arithmetic in parts per million.
        let ppm = u128::from(ppm.min(PPM));
        let want = u64::try_from((u128::from(total) * ppm).div_ceil(1_000_000))
            .unwrap_or(total)
            .max(1);
        let mut acc = 0;
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            if acc >= want {
                return 1u64 << (i + 1);
            }
        }
        1u64 << HISTOGRAM_BUCKETS
    }

    /// Mean observation, µs (0 with no observations).
    pub fn mean_us(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            n => self.sum_ns as f64 / n as f64 / 1000.0,
        }
    }

    /// Observations grouped `step` log2 buckets at a time, as the Prometheus
    /// encoder takes them: `(upper bound in seconds, observations in this
    /// group)`, not cumulative. Observations above the last bound are left to
    /// the `+Inf` bucket, which the encoder writes from the total count.
    pub fn grouped_seconds(&self, step: usize) -> Vec<(f64, u64)> {
        let step = step.max(1);
        let mut out = Vec::with_capacity(HISTOGRAM_BUCKETS / step + 1);
        let mut acc = 0;
        for (i, c) in self.counts.iter().enumerate() {
            acc += c;
            // Bucket i ends at 2^(i+1) ns.
            if (i + 1) % step == 0 && i + 1 < HISTOGRAM_BUCKETS {
                out.push(((1u64 << (i + 1)) as f64 / 1e9, acc));
                acc = 0;
            }
        }
        out
    }

    /// Adds another snapshot (for totals over message types).
    pub fn merge(&mut self, o: &HistogramSnapshot) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.sum_ns += o.sum_ns;
        self.max_ns = self.max_ns.max(o.max_ns);
    }
}

crate::counter_set! {
    /// Mailbox traffic of one message type at one actor.
    pub struct MsgCounters / MsgCountersSnapshot {
        /// Messages of this type enqueued to the actor (or taken from its streams).
        received,
        /// Messages of this type the actor finished handling.
        handled,
        /// Messages of this type refused because the mailbox or queue was full or closed.
        dropped,
    }
}

/// Counters of one message type at one actor.
pub struct MsgMeter {
    name: &'static str,
    counters: MsgCounters,
    latency: Histogram,
}

impl MsgMeter {
    fn new(name: &'static str) -> MsgMeter {
        MsgMeter {
            name,
            counters: MsgCounters::default(),
            latency: Histogram::default(),
        }
    }

    fn record(&self, ns: u64) {
        self.counters.handled.fetch_add(1, Relaxed);
        self.latency.observe_ns(ns);
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
        self.m.counters.handled.fetch_add(1, Relaxed);
        self.timed = false;
    }
}

impl Drop for HandleGuard {
    fn drop(&mut self) {
        if self.timed {
            let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.m.record(ns);
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
        self.msg(name).counters.received.fetch_add(1, Relaxed);
    }

    /// Counts a message that could not be enqueued (mailbox full or closed).
    pub fn rejected(&self, name: &'static str) {
        self.msg(name).counters.dropped.fetch_add(1, Relaxed);
    }

    /// Starts timing the handling of one message (the sender counted it as
    /// received).
    pub fn handling(&self, name: &'static str) -> HandleGuard {
        HandleGuard {
            m: self.msg(name),
            start: Instant::now(),
            timed: true,
        }
    }

    /// Counts a stream or timer item as both received and about to be handled
    /// (nobody sent it through the mailbox).
    pub fn stream_item(&self, name: &'static str) -> HandleGuard {
        let m = self.msg(name);
        m.counters.received.fetch_add(1, Relaxed);
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

    /// Marks the actor started (again).
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

    /// Calls `f` with every message type's name, counters and latency.
    fn each_msg(&self, f: &mut dyn FnMut(&'static str, MsgCountersSnapshot, HistogramSnapshot)) {
        for m in self.msgs.load().iter() {
            f(m.name, m.counters.snapshot(), m.latency.snapshot());
        }
    }

    /// Current counters, for `/stats` and `actor/stats`.
    pub fn snapshot(&self) -> ActorSnapshot {
        let mut depth = 0u64;
        let mut all = HistogramSnapshot::default();
        let mut messages = Vec::new();
        self.each_msg(&mut |name, c, h| {
            depth += c.received.saturating_sub(c.handled);
            all.merge(&h);
            messages.push(MsgSnapshot {
                name,
                received: c.received,
                handled: c.handled,
                dropped: c.dropped,
                mean_us: h.mean_us(),
                p99_us: h.quantile_upper_ns(P99) as f64 / 1000.0,
                max_us: h.max_ns as f64 / 1000.0,
            });
        });
        ActorSnapshot {
            id: self.id.clone(),
            kind: self.kind,
            bridge: self.bridge.clone(),
            alive: self.alive.load(Relaxed),
            mailbox_depth: depth,
            mailbox_capacity: self.capacity,
            handling: HandlingSnapshot {
                count: all.count(),
                mean_us: all.mean_us(),
                p99_us: all.quantile_upper_ns(P99) as f64 / 1000.0,
                max_us: all.max_ns as f64 / 1000.0,
            },
            restarts: self.restarts.load(Relaxed),
            last_error: self.last_error.load_full().map(|s| (*s).clone()),
            uptime_s: self.created.elapsed().as_secs_f64(),
            messages,
        }
    }

    /// Writes this actor's families: message counters and handling-time
    /// histograms per message type, mailbox depth and capacity, restarts,
    /// liveness.
    pub fn export(&self, out: &mut dyn MetricSink) {
        let bridge = self.bridge.as_deref().unwrap_or("");
        let base = [
            ("actor", self.id.as_str()),
            ("kind", self.kind),
            ("bridge", bridge),
        ];
        let mut depth = 0u64;
        self.each_msg(&mut |name, c, h| {
            depth += c.received.saturating_sub(c.handled);
            let labels = [base[0], base[1], base[2], ("msg", name)];
            export_set(out, "rvswitchd_actor_messages", &labels, &c);
            out.histogram(
                "rvswitchd_actor_handling_seconds",
                "Time an actor spent handling one message, by message type.",
                &labels,
                &h,
            );
        });
        out.gauge(
            "rvswitchd_actor_mailbox_depth",
            "Messages enqueued to the actor and not yet handled.",
            &base,
            depth as f64,
        );
        out.gauge(
            "rvswitchd_actor_mailbox_capacity",
            "Mailbox capacity of the actor (messages).",
            &base,
            self.capacity as f64,
        );
        out.counter(
            "rvswitchd_actor_restarts",
            "Times the supervisor restarted the actor after it died.",
            &base,
            self.restarts.load(Relaxed),
        );
        out.gauge(
            "rvswitchd_actor_alive",
            "1 while the actor runs, 0 once it stopped.",
            &base,
            if self.alive.load(Relaxed) { 1.0 } else { 0.0 },
        );
    }
}

/// Serialised view of one message type's counters.
#[derive(Clone, Debug, Serialize)]
pub struct MsgSnapshot {
    /// The message type's name.
    pub name: &'static str,
    /// Enqueued by senders (or taken from a stream).
    pub received: u64,
    /// Handled to the end (`received - handled` is waiting in the mailbox).
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
    /// Messages handled, all types.
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
    /// Unique id (`bridge:br0`, `revalidator:1`).
    pub id: String,
    /// Actor kind (`Bridge`, `OfSession`, ...).
    pub kind: &'static str,
    /// The bridge it serves, if any.
    pub bridge: Option<String>,
    /// False once the actor stopped.
    pub alive: bool,
    /// Enqueued minus handled.
    pub mailbox_depth: u64,
    /// Mailbox capacity: senders wait (or are refused) beyond it.
    pub mailbox_capacity: usize,
    /// Handling time over all message types.
    pub handling: HandlingSnapshot,
    /// Restarts by the supervisor.
    pub restarts: u64,
    /// Last error the actor recorded.
    pub last_error: Option<String>,
    /// Seconds since the meter was created.
    pub uptime_s: f64,
    /// Per message type.
    pub messages: Vec<MsgSnapshot>,
}

/// Whether a metric family counts up (`_total` is added by the encoder) or
/// goes up and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Monotonic since the process (or the labelled object) started.
    Counter,
    /// A current value.
    Gauge,
    /// A latency distribution.
    Histogram,
}

/// Where sources write `/metrics` samples. Family names are written without
/// the `_total` suffix (the encoder adds it to counters); label values may be
/// anything (the encoder escapes them). Samples of one family may arrive from
/// several sources in any order: the sink groups them.
pub trait MetricSink {
    /// A monotonic counter sample.
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64);
    /// A gauge sample.
    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64);
    /// A latency histogram (nanosecond log2 buckets, exported in seconds).
    fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], h: &HistogramSnapshot);
}

/// Writes every counter of a [`CounterSet`] as its own family
/// `{prefix}_{field}` (a counter, `_total` added at encoding), with the
/// field's doc comment as help.
pub fn export_set<S: CounterSet>(
    out: &mut dyn MetricSink,
    prefix: &str,
    labels: &[(&str, &str)],
    set: &S,
) {
    set.for_each(&mut |name, help, value| {
        out.counter(&format!("{prefix}_{name}"), help, labels, value);
    });
}

/// Members of `/stats` objects that identify the object rather than count
/// something (they become labels, never samples).
const IDENTIFIER_KEYS: &[&str] = &["id", "name", "port_no"];

/// Writes every numeric member of a `/stats` JSON object as a counter family
/// `{prefix}_{member}`, help naming the member and `scope`. A bridge for
/// counters that are not a [`counter_set!`](crate::counter_set) yet (the
/// datapath's and the upcall handlers' are being converted): their only list
/// of fields is the JSON they already produce, so no field is named twice.
/// Identifier members ([`IDENTIFIER_KEYS`]), strings and nested values are
/// skipped.
pub fn export_json_counters(
    out: &mut dyn MetricSink,
    prefix: &str,
    scope: &str,
    labels: &[(&str, &str)],
    obj: &serde_json::Value,
) {
    let Some(m) = obj.as_object() else {
        return;
    };
    for (k, v) in m {
        if IDENTIFIER_KEYS.contains(&k.as_str()) {
            continue;
        }
        if let Some(n) = v.as_u64() {
            let help = format!("Counter `{k}` {scope} (the same figure as in /stats).");
            out.counter(&format!("{prefix}_{k}"), &help, labels, n);
        }
    }
}

/// A producer of statistics that are not an actor's: it must only read
/// atomics or cheap snapshots (it runs on the HTTP thread, never messages an
/// actor) and answer the same figures both ways.
pub trait StatsSource: Send + Sync {
    /// The `/stats` JSON value (a member of the top-level object).
    fn json(&self) -> serde_json::Value;
    /// The `/metrics` families.
    fn export(&self, out: &mut dyn MetricSink);
}

/// The process-wide list of actor meters and statistics sources.
pub struct Registry {
    actors: ArcSwap<Vec<Arc<ActorMeter>>>,
    sources: ArcSwap<Vec<(String, Arc<dyn StatsSource>)>>,
    started: Instant,
}

/// The process's registry (created on first use).
pub fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(|| Registry {
        actors: ArcSwap::from_pointee(Vec::new()),
        sources: ArcSwap::from_pointee(Vec::new()),
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

    /// Writes every actor's families.
    pub fn export_actors(&self, out: &mut dyn MetricSink) {
        for m in self.actors.load().iter() {
            m.export(out);
        }
    }

    /// Adds (or replaces) the statistics source called `name` (the key of its
    /// member in `/stats`).
    pub fn add_source(&self, name: &str, source: Arc<dyn StatsSource>) {
        self.sources.rcu(|cur| {
            let mut v: Vec<_> = cur.iter().filter(|(n, _)| n != name).cloned().collect();
            v.push((name.to_string(), source.clone()));
            Arc::new(v)
        });
    }

    /// Removes a statistics source.
    pub fn remove_source(&self, name: &str) {
        self.sources.rcu(|cur| {
            Arc::new(
                cur.iter()
                    .filter(|(n, _)| n != name)
                    .cloned()
                    .collect::<Vec<_>>(),
            )
        });
    }

    /// The statistics sources, in registration order.
    pub fn sources(&self) -> Arc<Vec<(String, Arc<dyn StatsSource>)>> {
        self.sources.load_full()
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

    #[test]
    fn histogram_buckets_quantiles_and_cumulative_bounds() {
        let h = Histogram::default();
        for _ in 0..99 {
            h.observe_ns(1_000); // bucket 9: [512, 1024)
        }
        h.observe_ns(1_000_000); // bucket 19
        let s = h.snapshot();
        assert_eq!(s.count(), 100);
        assert_eq!(s.quantile_upper_ns(P99), 1024);
        assert_eq!(s.quantile_upper_ns(PPM), 1 << 20);
        assert_eq!(s.max_ns, 1_000_000);
        assert!((s.mean_us() - (99.0 * 1.0 + 1000.0) / 100.0).abs() < 1e-9);
        let g = s.grouped_seconds(2);
        // Bounds are 2^2, 2^4, ... ns, increasing; the groups add up to the
        // total, the 99 fast ones in the group ending at 1024 ns.
        assert!(g.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(g.iter().map(|x| x.1).sum::<u64>(), 100);
        assert_eq!(
            g.iter()
                .find(|(le, _)| (*le - 1024e-9).abs() < 1e-12)
                .map(|x| x.1),
            Some(99)
        );
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(u64::MAX), HISTOGRAM_BUCKETS - 1);
    }

    /// One sample: name, help, labels, value.
    type Sample = (String, String, Vec<(String, String)>, f64);

    #[derive(Default)]
    struct Collect(Vec<Sample>);

    impl MetricSink for Collect {
        fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
            let l = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.0.push((name.into(), help.into(), l, value as f64));
        }
        fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
            let l = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.0.push((name.into(), help.into(), l, value));
        }
        fn histogram(
            &mut self,
            name: &str,
            help: &str,
            labels: &[(&str, &str)],
            h: &HistogramSnapshot,
        ) {
            let l = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            self.0.push((name.into(), help.into(), l, h.count() as f64));
        }
    }

    #[test]
    fn actor_export_walks_the_counter_set_with_doc_help() {
        let m = registry().meter("test:export".into(), "Test", Some("br9".into()), 8);
        m.enqueued("Ping");
        drop(m.handling("Ping"));
        let mut c = Collect::default();
        m.export(&mut c);
        registry().remove("test:export");
        let names: Vec<&str> = c.0.iter().map(|x| x.0.as_str()).collect();
        for want in [
            "rvswitchd_actor_messages_received",
            "rvswitchd_actor_messages_handled",
            "rvswitchd_actor_messages_dropped",
            "rvswitchd_actor_handling_seconds",
            "rvswitchd_actor_mailbox_depth",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let handled =
            c.0.iter()
                .find(|x| x.0 == "rvswitchd_actor_messages_handled");
        let handled = handled.expect("handled");
        assert_eq!(handled.3, 1.0);
        assert!(handled
            .1
            .starts_with("Messages of this type the actor finished"));
        assert!(handled.2.contains(&("msg".into(), "Ping".into())));
        assert!(handled.2.contains(&("bridge".into(), "br9".into())));
    }
}
