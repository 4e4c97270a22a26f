//! The connection manager of one bridge (OVS `connmgr`): passive listeners
//! (`ptcp:`, `punix:`), active controller connections kept up by the
//! reconnect state machine, controller roles, per-listener connection caps,
//! and fan-out of asynchronous messages (packet-in, port status, flow
//! removed) to every session that wants them.
//!
//! Ownership: the Connmgr owns the listener and controller tasks and the table
//! of sessions, from the moment a connection is accepted or made (not only
//! once it has negotiated), so that it can cap and evict; each session owns
//! its socket. Packet-ins arrive through a bounded channel (a slow controller
//! loses packet-ins, counted, never memory). Runs on its bridge's Arbiter.
//!
//! Settings shared by all bridges (`[openflow]`) are published with
//! [`configure`]; each new session takes the settings in force.

pub mod reconnect;
pub mod tls;

use crate::actors::session::{OfSession, ReadHalf, SessionParams, WriteHalf};
use crate::config::{OpenflowConfig, SslConfig};
use crate::messages::bridge::OfRequests;
use crate::messages::connmgr::*;
use crate::ofproto::ofconn::{CloseReason, ConnCounters, ConnCountersSnapshot, Settings};
use crate::openflow::error::OfpError;
use crate::openflow::message::ControllerRole;
use crate::types::DatapathId;
use crate::util::coverage::{self, c};
use crate::util::metrics::{export_set, ActorMeter, MetricSink, MsgName, StatsSource};
use crate::util::time::now_ms;
use actix::prelude::*;
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use reconnect::Reconnect;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Mailbox capacity of a Connmgr.
pub const MAILBOX: usize = 256;
/// Capacity of the packet-in channel into the Connmgr.
pub const PACKET_IN_QUEUE: usize = 1024;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

// ---------------------------------------------------------------------------
// Process-wide settings
// ---------------------------------------------------------------------------

/// The process-wide settings in force.
#[derive(Default)]
struct Published {
    of: OpenflowConfig,
    ssl: SslConfig,
}

fn settings_cell() -> &'static ArcSwap<Published> {
    static S: OnceLock<ArcSwap<Published>> = OnceLock::new();
    S.get_or_init(|| ArcSwap::from_pointee(Published::default()))
}

/// Publishes the `[openflow]` and `[ssl]` settings. New connections use them;
/// existing ones keep theirs. The daemon calls this at start and on every
/// reload.
pub fn configure(of: &OpenflowConfig, ssl: &SslConfig) {
    settings_cell().store(Arc::new(Published {
        of: of.clone(),
        ssl: ssl.clone(),
    }));
}

fn current() -> Arc<OpenflowConfig> {
    Arc::new(settings_cell().load().of.clone())
}

/// The `[ssl]` files, or why TLS cannot be used.
fn tls_files() -> Result<tls::TlsFiles, String> {
    match settings_cell().load().ssl.files() {
        Some((private_key, certificate, ca_cert)) => Ok(tls::TlsFiles {
            private_key,
            certificate,
            ca_cert,
        }),
        None => Err("[ssl] private_key, certificate and ca_cert are not configured".into()),
    }
}

// ---------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------

crate::counter_set! {
    /// Connection-level events of one bridge.
    pub struct ConnmgrCounters / ConnmgrCountersSnapshot {
        /// Connections accepted on listeners.
        accepted,
        /// Connections refused because their listener was full of negotiated sessions.
        refused_listener_full,
        /// Connections closed to make room: the oldest that had not finished the handshake.
        evicted_unnegotiated,
        /// Connections closed because no HELLO came in time.
        closed_hello_timeout,
        /// Connections closed because the first message was not a HELLO.
        closed_not_hello,
        /// Connections closed because version negotiation failed.
        closed_incompatible,
        /// Connections closed because of a protocol error (bad version or framing).
        closed_protocol,
        /// Connections closed because the inactivity probe went unanswered.
        closed_probe_timeout,
        /// Connections closed because the peer stopped reading past the stuck timeout.
        closed_stuck,
        /// Connections closed by the peer or by a read/write error.
        closed_by_peer,
        /// Connections closed on request (reload, eviction, shutdown).
        closed_requested,
        /// TLS handshakes that failed (wrong CA, expired or missing certificate, plaintext peer).
        tls_handshake_failed,
    }
}

/// What the exporters read about one bridge's OpenFlow connections (atomics
/// only; no message to any actor).
pub struct OfStats {
    bridge: String,
    /// Connection events.
    pub events: ConnmgrCounters,
    /// Counters of sessions that have ended, summed.
    pub departed: ConnCounters,
    live: Mutex<Vec<(u64, Arc<ConnCounters>)>>,
}

impl OfStats {
    /// Sum of every session's counters, past and present.
    pub fn sessions(&self) -> ConnCountersSnapshot {
        let mut s = self.departed.snapshot();
        for (_, c) in self.live.lock().iter() {
            s += c.snapshot();
        }
        s
    }

    /// Sessions open now.
    pub fn open_sessions(&self) -> usize {
        self.live.lock().len()
    }
}

fn stats_registry() -> &'static Mutex<Vec<Weak<OfStats>>> {
    static R: OnceLock<Mutex<Vec<Weak<OfStats>>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

/// Every bridge's live [`OfStats`] (reads atomics and a short list only, so
/// the HTTP thread may call it at any time).
fn all_stats() -> Vec<Arc<OfStats>> {
    let mut reg = stats_registry().lock();
    reg.retain(|w| w.strong_count() > 0);
    reg.iter().filter_map(Weak::upgrade).collect()
}

/// Every bridge's OpenFlow connection counters, for `/stats`:
/// `{"BRIDGE": {"open_sessions", "events": {...}, "sessions": {...}}}`.
pub fn stats_json() -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for s in all_stats() {
        m.insert(
            s.bridge.clone(),
            json!({
                "open_sessions": s.open_sessions(),
                "events": s.events.snapshot(),
                "sessions": s.sessions(),
            }),
        );
    }
    serde_json::Value::Object(m)
}

/// The `/stats` member `openflow` and its `/metrics` families: per bridge,
/// the connection events and the sum of every session's counters (the
/// dropped asynchronous messages of each kind among them), each counter set
/// walked once.
pub struct OpenflowStats;

impl StatsSource for OpenflowStats {
    fn json(&self) -> serde_json::Value {
        stats_json()
    }

    fn export(&self, out: &mut dyn MetricSink) {
        for s in all_stats() {
            let b = [("bridge", s.bridge.as_str())];
            out.gauge(
                "rvswitchd_openflow_sessions_open",
                "OpenFlow sessions open on the bridge.",
                &b,
                s.open_sessions() as f64,
            );
            export_set(out, "rvswitchd_openflow", &b, &s.events.snapshot());
            export_set(out, "rvswitchd_openflow_session", &b, &s.sessions());
        }
    }
}

// ---------------------------------------------------------------------------
// The actor
// ---------------------------------------------------------------------------

/// Where a connection came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    /// Accepted on the listener with this name.
    Listener(String),
    /// Made to the configured controller with this target.
    Controller(String),
}

struct SessionEntry {
    addr: Addr<OfSession>,
    /// The session's counters, for drops that happen before it sees a
    /// message (its mailbox was full).
    counters: Arc<ConnCounters>,
    peer: String,
    origin: Origin,
    /// Order of arrival (eviction picks the oldest).
    seq: u64,
    negotiated: bool,
    closing: bool,
    role: ControllerRole,
    /// Rule changes for flow monitors that met a full mailbox, in order,
    /// retried shortly (a lost batch makes the session's monitors pause and
    /// resynchronise, but deletions in it cannot be told again).
    backlog: Backlog,
}

/// What a mailbox did with a message offered to it.
enum Offer {
    Taken,
    Full(AsyncEvent),
    Closed,
}

/// One session's rule changes waiting for room in its mailbox, in order.
#[derive(Default)]
struct Backlog(std::collections::VecDeque<AsyncEvent>);

impl Backlog {
    /// Offers `ev` through `send`, behind whatever waits already; false
    /// when it was dropped (the backlog is full).
    fn offer(&mut self, ev: AsyncEvent, send: impl FnMut(AsyncEvent) -> Offer) -> bool {
        let mut send = send;
        if self.0.is_empty() {
            match send(ev) {
                Offer::Taken | Offer::Closed => return true,
                Offer::Full(ev) => {
                    self.0.push_back(ev);
                    return true;
                }
            }
        }
        if self.0.len() >= FLOW_CHANGES_BACKLOG {
            return false;
        }
        self.0.push_back(ev);
        true
    }

    /// Delivers what waits, in order, until the mailbox is full; true when
    /// something is left.
    fn drain(&mut self, mut send: impl FnMut(AsyncEvent) -> Offer) -> bool {
        while let Some(ev) = self.0.pop_front() {
            match send(ev) {
                Offer::Taken => {}
                Offer::Full(ev) => {
                    self.0.push_front(ev);
                    return true;
                }
                Offer::Closed => self.0.clear(),
            }
        }
        false
    }
}

/// Offers `ev` to a session's mailbox.
fn offer_to(addr: &Addr<OfSession>, ev: AsyncEvent) -> Offer {
    match addr.try_send(Deliver(ev)) {
        Ok(()) => Offer::Taken,
        Err(SendError::Full(Deliver(ev))) => Offer::Full(ev),
        Err(SendError::Closed(_)) => Offer::Closed,
    }
}

/// Batches of rule changes kept per session while its mailbox is full;
/// beyond, they are dropped and counted (`flow_changes_lost`).
pub const FLOW_CHANGES_BACKLOG: usize = 64;
/// How soon a backlog is retried.
const BACKLOG_RETRY: Duration = Duration::from_millis(5);

struct Listener {
    name: String,
    task: actix_rt::task::JoinHandle<()>,
    unix_path: Option<PathBuf>,
    accepted: u64,
    refused: u64,
    evicted: u64,
    tls: Arc<TlsListenerStats>,
}

/// What a `pssl:` listener's handshake tasks report.
#[derive(Default)]
struct TlsListenerStats {
    /// Handshakes under way.
    in_progress: AtomicU64,
    /// Handshakes that failed.
    failed: AtomicU64,
    /// Connections refused because too many handshakes were under way.
    refused: AtomicU64,
    /// The latest failure.
    last_error: Mutex<Option<String>>,
}

struct Controller {
    task: actix_rt::task::JoinHandle<()>,
    fsm: Arc<Mutex<Reconnect>>,
}

/// Inactivity probe of connections on `punix:` listeners (OVS's management
/// socket interval): local tools such as `ovs-ofctl monitor` answer it.
const MGMT_PROBE: Duration = Duration::from_secs(60);

/// Fixed facts the Connmgr needs about its bridge.
pub struct ConnmgrParams {
    /// Bridge name.
    pub bridge_name: String,
    /// Datapath id.
    pub dpid: DatapathId,
    /// Where sessions send table requests.
    pub bridge: Recipient<OfRequests>,
    /// The bridge's meter.
    pub bridge_meter: Arc<ActorMeter>,
    /// Fail-open notifications to the bridge.
    pub fail_open: Recipient<FailOpen>,
    /// Packet-ins from the upcall handlers.
    pub packet_ins: tokio::sync::mpsc::Receiver<AsyncEvent>,
    /// The bridge's count of flow monitors, which sessions keep up to date.
    pub monitors: Arc<std::sync::atomic::AtomicUsize>,
}

/// The connection manager.
pub struct Connmgr {
    bridge_name: String,
    dpid: DatapathId,
    monitors: Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes held in the open bundles of all this bridge's sessions.
    bundle_bytes: Arc<std::sync::atomic::AtomicUsize>,
    bridge: Recipient<OfRequests>,
    bridge_meter: Arc<ActorMeter>,
    fail_open_to: Recipient<FailOpen>,
    meter: Arc<ActorMeter>,
    cfg: Option<SetConnections>,
    listeners: Vec<Listener>,
    controllers: HashMap<String, Controller>,
    sessions: HashMap<u64, SessionEntry>,
    next_seq: u64,
    generation_id: Option<u64>,
    packet_ins: Option<tokio::sync::mpsc::Receiver<AsyncEvent>>,
    fail_open: bool,
    controller_lost_since: Option<u64>,
    packet_ins_delivered: u64,
    stats: Arc<OfStats>,
    /// Configured listeners that could not be bound, with why (retried at
    /// the next [`SetConnections`]; reported to reloads by [`ListenerStatus`]).
    bind_errors: HashMap<String, String>,
    /// A retry of the sessions' backlogs is scheduled.
    backlog_retry: bool,
}

/// Listener/controller task → Connmgr: a connection is open; start its
/// session (or refuse it when its listener is full).
#[derive(Message)]
#[rtype(result = "()")]
struct Opened {
    origin: Origin,
    peer: String,
    r: ReadHalf,
    w: WriteHalf,
    probe: Option<Duration>,
    on_close: Option<tokio::sync::oneshot::Sender<()>>,
}

crate::msg_names!(Opened);

impl Connmgr {
    /// A connection manager with no connections yet (send [`SetConnections`]).
    pub fn new(p: ConnmgrParams) -> Connmgr {
        let meter = crate::util::metrics::registry().meter(
            format!("connmgr:{}", p.bridge_name),
            "Connmgr",
            Some(p.bridge_name.clone()),
            MAILBOX,
        );
        let stats = Arc::new(OfStats {
            bridge: p.bridge_name.clone(),
            events: ConnmgrCounters::default(),
            departed: ConnCounters::default(),
            live: Mutex::new(Vec::new()),
        });
        stats_registry().lock().push(Arc::downgrade(&stats));
        Connmgr {
            bridge_name: p.bridge_name,
            dpid: p.dpid,
            monitors: p.monitors,
            bundle_bytes: Arc::default(),
            bridge: p.bridge,
            bridge_meter: p.bridge_meter,
            fail_open_to: p.fail_open,
            meter,
            cfg: None,
            listeners: Vec::new(),
            controllers: HashMap::new(),
            sessions: HashMap::new(),
            next_seq: 0,
            generation_id: None,
            packet_ins: Some(p.packet_ins),
            fail_open: false,
            controller_lost_since: Some(now_ms()),
            packet_ins_delivered: 0,
            stats,
            bind_errors: HashMap::new(),
            backlog_retry: false,
        }
    }

    /// The meter (for the bridge's records).
    pub fn meter(&self) -> Arc<ActorMeter> {
        self.meter.clone()
    }

    /// The counters the exporters read.
    pub fn stats(&self) -> Arc<OfStats> {
        self.stats.clone()
    }

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    /// The inactivity probe of a connection accepted on listener `name`.
    /// OVS probes passive connections too: the bridge's management socket
    /// every 60 s (`bridge_ofproto_controller_for_mgmt()`), other services
    /// at their `inactivity_probe`. Without it a peer that vanished without
    /// closing (a killed VM, a cut route) would hold one of the listener's
    /// `max_connections_per_listener` slots for ever.
    fn listener_probe(&self, name: &str) -> Option<Duration> {
        if name.starts_with("punix:") {
            return Some(MGMT_PROBE);
        }
        self.cfg
            .as_ref()
            .and_then(|c| (c.probe_ms > 0).then(|| Duration::from_millis(c.probe_ms)))
    }

    fn start_listener(&mut self, name: &str, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let of = current();
        let (listener, unix_path) = match PassiveListener::bind(name, &of) {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("{name}: cannot listen: {e}");
                tracing::error!("{msg}");
                self.meter.set_error(msg);
                self.bind_errors
                    .insert(name.to_string(), format!("cannot listen: {e}"));
                return;
            }
        };
        self.bind_errors.remove(name);
        let name2 = name.to_string();
        let tls_stats = Arc::new(TlsListenerStats::default());
        let tls2 = tls_stats.clone();
        let stats = self.stats.clone();
        let task = actix_rt::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((peer, Incoming::Plain(r, w))) => {
                        coverage::inc(&c::ofconn_accepted);
                        let m = Opened {
                            origin: Origin::Listener(name2.clone()),
                            peer: peer.unwrap_or_else(|| name2.clone()),
                            r,
                            w,
                            probe: None,
                            on_close: None,
                        };
                        // Waits for the Connmgr: accepting is paced by it.
                        if me.send(m).await.is_err() {
                            return;
                        }
                    }
                    Ok((peer, Incoming::Tls(stream))) => {
                        coverage::inc(&c::ofconn_accepted);
                        let peer = peer.unwrap_or_else(|| name2.clone());
                        tls_handshake(
                            stream,
                            peer,
                            name2.clone(),
                            me.clone(),
                            tls2.clone(),
                            stats.clone(),
                        );
                    }
                    Err(e) => {
                        // EMFILE/ENFILE included: the pending connection
                        // stays in the backlog; try again shortly.
                        tracing::warn!("{name2}: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        self.listeners.push(Listener {
            name: name.to_string(),
            task,
            unix_path,
            accepted: 0,
            refused: 0,
            evicted: 0,
            tls: tls_stats,
        });
    }

    fn start_controller(&mut self, target: &str, cfg: &SetConnections, ctx: &mut Context<Self>) {
        let fsm = Arc::new(Mutex::new(Reconnect::new(
            target,
            1000,
            cfg.max_backoff_ms.max(1000),
            now_ms(),
        )));
        let me = ctx.address();
        let probe = (cfg.probe_ms > 0).then(|| Duration::from_millis(cfg.probe_ms));
        let target2 = target.to_string();
        let fsm2 = fsm.clone();
        let stats = self.stats.clone();
        let task = actix_rt::spawn(async move {
            loop {
                fsm2.lock().connecting(now_ms());
                let conn = connect(&target2, &stats).await;
                let wait = match conn {
                    Ok((r, w)) => {
                        fsm2.lock().connected(now_ms());
                        coverage::inc(&c::ofconn_connected);
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        let m = Opened {
                            origin: Origin::Controller(target2.clone()),
                            peer: target2.clone(),
                            r,
                            w,
                            probe,
                            on_close: Some(tx),
                        };
                        if me.send(m).await.is_err() {
                            return;
                        }
                        let _ = rx.await;
                        fsm2.lock().disconnected("connection closed", now_ms())
                    }
                    Err(e) => fsm2.lock().connect_failed(&e, now_ms()),
                };
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        });
        self.controllers
            .insert(target.to_string(), Controller { task, fsm });
    }

    fn apply(&mut self, cfg: SetConnections, ctx: &mut Context<Self>) {
        // Delete what is gone first, then add (names can be reused).
        let keep_l: Vec<String> = cfg.listeners.clone();
        self.bind_errors.retain(|n, _| keep_l.contains(n));
        self.listeners.retain(|l| {
            let keep = keep_l.contains(&l.name);
            if !keep {
                l.task.abort();
                if let Some(p) = &l.unix_path {
                    let _ = std::fs::remove_file(p);
                }
            }
            keep
        });
        let gone: Vec<String> = self
            .controllers
            .keys()
            .filter(|t| !cfg.controllers.contains(t))
            .cloned()
            .collect();
        for t in gone {
            if let Some(c) = self.controllers.remove(&t) {
                c.task.abort();
            }
            for s in self.sessions.values() {
                if s.origin == Origin::Controller(t.clone()) {
                    s.addr
                        .do_send(Disconnect("controller removed from the configuration"));
                }
            }
        }
        for l in &cfg.listeners {
            if !self.listeners.iter().any(|x| &x.name == l) {
                self.start_listener(l, ctx);
            }
        }
        for t in &cfg.controllers {
            if !self.controllers.contains_key(t) {
                self.start_controller(t, &cfg, ctx);
            }
        }
        self.cfg = Some(cfg);
        self.check_fail_open();
    }

    fn controller_connected(&self) -> bool {
        self.sessions
            .values()
            .any(|s| s.negotiated && matches!(s.origin, Origin::Controller(_)))
    }

    /// Standalone bridges with controllers configured fall back to NORMAL when
    /// no controller has been connected for three probe intervals.
    fn check_fail_open(&mut self) {
        let Some(cfg) = &self.cfg else { return };
        let want = if !cfg.standalone || cfg.controllers.is_empty() {
            false
        } else if self.controller_connected() {
            self.controller_lost_since = None;
            false
        } else {
            let since = *self.controller_lost_since.get_or_insert_with(now_ms);
            now_ms().saturating_sub(since) >= 3 * cfg.probe_ms.max(1000)
        };
        if want != self.fail_open {
            self.fail_open = want;
            tracing::info!(
                "bridge {}: {} fail-open mode",
                self.bridge_name,
                if want { "entering" } else { "leaving" }
            );
            let _ = self.fail_open_to.try_send(FailOpen(want));
        }
    }

    fn broadcast(&mut self, ev: AsyncEvent, ctx: &mut Context<Self>) {
        if matches!(ev, AsyncEvent::FlowChanges(_)) {
            return self.broadcast_changes(ev, ctx);
        }
        for s in self
            .sessions
            .values()
            .filter(|s| s.negotiated && !s.closing)
        {
            // Same-arbiter delivery; a full session mailbox drops, counted
            // by kind in the session's counters (and for packet-ins in the
            // coverage counter too).
            if s.addr.try_send(Deliver(ev.clone())).is_err() {
                s.counters.async_dropped(&ev);
                if matches!(ev, AsyncEvent::PacketIn { .. }) {
                    coverage::inc(&c::packet_in_dropped);
                }
            }
        }
    }

    /// Rule changes are not dropped at a full mailbox at once: a flow
    /// monitor cannot tell its peer about deletions it never saw, so each
    /// session keeps up to [`FLOW_CHANGES_BACKLOG`] batches, in order, and
    /// they are retried every [`BACKLOG_RETRY`].
    fn broadcast_changes(&mut self, ev: AsyncEvent, ctx: &mut Context<Self>) {
        for s in self
            .sessions
            .values_mut()
            .filter(|s| s.negotiated && !s.closing)
        {
            let addr = &s.addr;
            if !s.backlog.offer(ev.clone(), |e| offer_to(addr, e)) {
                s.counters.async_dropped(&ev);
            }
        }
        self.retry_backlogs(ctx);
    }

    fn retry_backlogs(&mut self, ctx: &mut Context<Self>) {
        let mut left = false;
        for s in self.sessions.values_mut() {
            let addr = &s.addr;
            left |= s.backlog.drain(|e| offer_to(addr, e));
        }
        if left && !self.backlog_retry {
            self.backlog_retry = true;
            ctx.run_later(BACKLOG_RETRY, |a, ctx| {
                a.backlog_retry = false;
                a.retry_backlogs(ctx);
            });
        }
    }

    /// Makes room on a full listener: closes its oldest connection that has
    /// not finished the handshake. False when every connection has.
    fn evict_for(&mut self, listener: &str) -> bool {
        let victim = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.negotiated && !s.closing && s.origin == Origin::Listener(listener.to_string())
            })
            .min_by_key(|(_, s)| s.seq)
            .map(|(id, _)| *id);
        let Some(id) = victim else { return false };
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
            s.addr.do_send(Disconnect(
                "evicted: listener full, oldest connection without a handshake",
            ));
        }
        true
    }

    fn open(&mut self, m: Opened, ctx: &mut Context<Self>) {
        let of = current();
        if let Origin::Listener(name) = &m.origin {
            let Some(li) = self.listeners.iter().position(|l| &l.name == name) else {
                // The listener was removed meanwhile: drop the connection.
                return;
            };
            self.stats.events.accepted.fetch_add(1, Relaxed);
            self.listeners[li].accepted += 1;
            let open = self
                .sessions
                .values()
                .filter(|s| !s.closing && s.origin == m.origin)
                .count() as u64;
            if open >= of.max_connections_per_listener {
                if self.evict_for(name) {
                    self.stats.events.evicted_unnegotiated.fetch_add(1, Relaxed);
                    self.listeners[li].evicted += 1;
                } else {
                    self.stats
                        .events
                        .refused_listener_full
                        .fetch_add(1, Relaxed);
                    self.listeners[li].refused += 1;
                    tracing::warn!(
                        "{name}: {open} negotiated connections, the most allowed: refusing {}",
                        m.peer
                    );
                    return;
                }
            }
        }
        let id = NEXT_SESSION.fetch_add(1, Relaxed);
        let me = ctx.address();
        let mut settings = Settings::new(self.dpid);
        settings.conn_id = id;
        settings.monitors = self.monitors.clone();
        settings.bundle_bytes = self.bundle_bytes.clone();
        settings.probe_interval = match &m.origin {
            Origin::Controller(_) => m.probe,
            Origin::Listener(name) => self.listener_probe(name),
        };
        if let Some(cfg) = &self.cfg {
            settings.versions = cfg.versions;
        }
        settings.hello_timeout = Duration::from_millis(of.hello_timeout_ms);
        settings.tx_budget = usize::try_from(of.output_budget_bytes).unwrap_or(usize::MAX);
        settings.stuck_timeout = Duration::from_millis(of.stuck_timeout_ms);
        settings.packet_in_limit = (of.controller_rate_limit > 0)
            .then_some((of.controller_rate_limit, of.controller_burst_limit));
        let is_controller = matches!(m.origin, Origin::Controller(_));
        let p = SessionParams {
            id,
            peer: m.peer.clone(),
            bridge_name: self.bridge_name.clone(),
            settings,
            bridge: self.bridge.clone(),
            bridge_meter: self.bridge_meter.clone(),
            connmgr_up: me.clone().recipient(),
            connmgr_down: me.clone().recipient(),
            connmgr_role: me.recipient(),
            is_controller,
            on_close: m.on_close,
        };
        let session = OfSession::new(p, m.r, m.w);
        let counters = session.counters();
        self.stats.live.lock().push((id, counters.clone()));
        let addr = session.start();
        self.next_seq += 1;
        self.sessions.insert(
            id,
            SessionEntry {
                addr,
                counters,
                peer: m.peer,
                origin: m.origin,
                seq: self.next_seq,
                negotiated: false,
                closing: false,
                role: ControllerRole::Equal,
                backlog: Default::default(),
            },
        );
    }
}

/// A bound `ptcp:`, `pssl:` or `punix:` listener.
enum PassiveListener {
    Tcp(tokio::net::TcpListener),
    Tls(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

/// An accepted connection: ready, or still to do its TLS handshake.
enum Incoming {
    Plain(ReadHalf, WriteHalf),
    Tls(tokio::net::TcpStream),
}

/// Runs a `pssl:` handshake off the accept loop, bounded by the HELLO
/// timeout and by the listener's connection cap (handshakes under way
/// count), then hands the connection to the Connmgr like any other.
fn tls_handshake(
    stream: tokio::net::TcpStream,
    peer: String,
    listener: String,
    me: Addr<Connmgr>,
    ls: Arc<TlsListenerStats>,
    stats: Arc<OfStats>,
) {
    let of = current();
    if ls.in_progress.load(Relaxed) >= of.max_connections_per_listener {
        ls.refused.fetch_add(1, Relaxed);
        stats.events.refused_listener_full.fetch_add(1, Relaxed);
        return;
    }
    let fail = |ls: &TlsListenerStats, stats: &OfStats, listener: &str, peer: &str, e: String| {
        tracing::warn!("{listener}: TLS handshake with {peer}: {e}");
        ls.failed.fetch_add(1, Relaxed);
        stats.events.tls_handshake_failed.fetch_add(1, Relaxed);
        *ls.last_error.lock() = Some(e);
    };
    let acceptor = match tls_files().and_then(|f| tls::acceptor(&f)) {
        Ok(a) => a,
        Err(e) => return fail(&ls, &stats, &listener, &peer, e),
    };
    ls.in_progress.fetch_add(1, Relaxed);
    let timeout = Duration::from_millis(of.hello_timeout_ms);
    actix_rt::spawn(async move {
        let r = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
        ls.in_progress.fetch_sub(1, Relaxed);
        match r {
            Ok(Ok(s)) => {
                let (r, w) = tokio::io::split(s);
                let m = Opened {
                    origin: Origin::Listener(listener),
                    peer,
                    r: Box::new(r),
                    w: Box::new(w),
                    probe: None,
                    on_close: None,
                };
                let _ = me.send(m).await;
            }
            Ok(Err(e)) => fail(&ls, &stats, &listener, &peer, e.to_string()),
            Err(_) => fail(&ls, &stats, &listener, &peer, "handshake timed out".into()),
        }
    });
}

impl PassiveListener {
    /// Binds `ptcp:PORT[:IP]` (all addresses by default) or `punix:PATH` (a stale
    /// socket file is replaced). Returns the Unix path to remove at close.
    fn bind(
        name: &str,
        of: &OpenflowConfig,
    ) -> std::io::Result<(PassiveListener, Option<PathBuf>)> {
        let tcp = |rest: &str| -> std::io::Result<tokio::net::TcpListener> {
            let (port, ip) = rest.split_once(':').unwrap_or((rest, "0.0.0.0"));
            let addr = format!("{ip}:{port}");
            // A listener handed over by the daemon we replace (`--takeover`).
            let inherited = addr
                .parse()
                .ok()
                .and_then(|a| crate::util::inherit::take_tcp(&a));
            let l = match inherited {
                Some(l) => l,
                None => std::net::TcpListener::bind(addr)?,
            };
            l.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(l)
        };
        if let Some(rest) = name.strip_prefix("ptcp:") {
            Ok((PassiveListener::Tcp(tcp(rest)?), None))
        } else if let Some(rest) = name.strip_prefix("pssl:") {
            // Refuse to listen without usable key and certificates.
            tls_files()
                .and_then(|f| tls::acceptor(&f))
                .map_err(std::io::Error::other)?;
            Ok((PassiveListener::Tls(tcp(rest)?), None))
        } else if let Some(path) = name.strip_prefix("punix:") {
            let path = PathBuf::from(path);
            let l =
                crate::daemon::sockets::bind_private(&path, of.unix_mode(), &of.unix_socket_group)?;
            Ok((
                PassiveListener::Unix(tokio::net::UnixListener::from_std(l)?),
                Some(path),
            ))
        } else {
            Err(std::io::Error::other("not a ptcp: or punix: address"))
        }
    }

    /// Accepts one connection: its peer name (TCP only) and the stream.
    async fn accept(&self) -> std::io::Result<(Option<String>, Incoming)> {
        match self {
            PassiveListener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                Ok((
                    Some(format!("tcp:{peer}")),
                    Incoming::Plain(Box::new(r), Box::new(w)),
                ))
            }
            PassiveListener::Tls(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                Ok((Some(format!("ssl:{peer}")), Incoming::Tls(s)))
            }
            PassiveListener::Unix(l) => {
                let (s, _) = l.accept().await?;
                let (r, w) = s.into_split();
                Ok((None, Incoming::Plain(Box::new(r), Box::new(w))))
            }
        }
    }
}

/// The default OpenFlow port (IANA).
const OFP_PORT: u16 = 6653;

/// Opens an active connection (`tcp:IP[:PORT]` and `ssl:IP[:PORT]`, default
/// port 6653; `unix:PATH`). A failed TLS handshake is counted.
async fn connect(target: &str, stats: &OfStats) -> Result<(ReadHalf, WriteHalf), String> {
    let tcp = |rest: &str| {
        let addr = match rest.parse::<std::net::IpAddr>() {
            Ok(ip) => std::net::SocketAddr::new(ip, OFP_PORT),
            Err(_) => rest
                .parse::<std::net::SocketAddr>()
                .map_err(|e| format!("{target}: {e}"))?,
        };
        Ok::<std::net::SocketAddr, String>(addr)
    };
    let fut = async {
        if let Some(rest) = target.strip_prefix("tcp:") {
            let s = tokio::net::TcpStream::connect(tcp(rest)?)
                .await
                .map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            let (r, w) = s.into_split();
            Ok::<(ReadHalf, WriteHalf), String>((Box::new(r), Box::new(w)))
        } else if let Some(rest) = target.strip_prefix("ssl:") {
            let addr = tcp(rest)?;
            let connector = tls_files().and_then(|f| tls::connector(&f))?;
            let s = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            let s = connector
                .connect(tls::server_name(addr.ip()), s)
                .await
                .map_err(|e| {
                    stats.events.tls_handshake_failed.fetch_add(1, Relaxed);
                    format!("TLS handshake: {e}")
                })?;
            let (r, w) = tokio::io::split(s);
            Ok::<(ReadHalf, WriteHalf), String>((Box::new(r), Box::new(w)))
        } else if let Some(path) = target.strip_prefix("unix:") {
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| e.to_string())?;
            let (r, w) = s.into_split();
            Ok::<(ReadHalf, WriteHalf), String>((Box::new(r), Box::new(w)))
        } else {
            Err(format!("{target}: unsupported controller address"))
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), fut).await {
        Ok(r) => r,
        Err(_) => Err("connection timed out".into()),
    }
}

impl Actor for Connmgr {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        if let Some(rx) = self.packet_ins.take() {
            ctx.add_stream(tokio_stream_from(rx));
        }
        ctx.run_interval(Duration::from_millis(500), |a, _| a.check_fail_open());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.meter.mark_dead();
        for l in self.listeners.drain(..) {
            l.task.abort();
            if let Some(p) = l.unix_path {
                let _ = std::fs::remove_file(p);
            }
        }
        for (_, c) in self.controllers.drain() {
            c.task.abort();
        }
        for s in self.sessions.values() {
            s.addr.do_send(Disconnect("bridge deleted"));
        }
    }
}

/// Adapts a tokio receiver into a `Stream` without extra crates.
fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<AsyncEvent>,
) -> impl futures_util::Stream<Item = AsyncEvent> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

impl StreamHandler<AsyncEvent> for Connmgr {
    fn handle(&mut self, ev: AsyncEvent, ctx: &mut Context<Self>) {
        let _g = self.meter.stream_item("PacketIn");
        self.packet_ins_delivered += 1;
        self.broadcast(ev, ctx);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<Opened> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: Opened, ctx: &mut Context<Self>) {
        let _g = self.guard::<Opened>();
        self.open(m, ctx);
    }
}

impl Handler<ListenerStatus> for Connmgr {
    type Result = MessageResult<ListenerStatus>;
    fn handle(&mut self, _: ListenerStatus, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<ListenerStatus>();
        let mut v: Vec<(String, String)> = self
            .bind_errors
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect();
        v.sort();
        MessageResult(v)
    }
}

impl Handler<SetConnections> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: SetConnections, ctx: &mut Context<Self>) {
        let _g = self.guard::<SetConnections>();
        self.apply(m, ctx);
    }
}

impl Handler<Notify> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: Notify, ctx: &mut Context<Self>) {
        let _g = self.guard::<Notify>();
        self.broadcast(m.0, ctx);
    }
}

impl Handler<SessionUp> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: SessionUp, _: &mut Context<Self>) {
        let _g = self.guard::<SessionUp>();
        if let Some(s) = self.sessions.get_mut(&m.id) {
            s.negotiated = true;
            tracing::info!(
                "bridge {}: {} connected ({})",
                self.bridge_name,
                s.peer,
                m.version
            );
        }
        self.check_fail_open();
    }
}

impl Handler<SessionDown> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: SessionDown, _: &mut Context<Self>) {
        let _g = self.guard::<SessionDown>();
        let ev = &self.stats.events;
        let counter = match m.reason {
            CloseReason::HelloTimeout => &ev.closed_hello_timeout,
            CloseReason::NotHello => &ev.closed_not_hello,
            CloseReason::Incompatible => &ev.closed_incompatible,
            CloseReason::Protocol => &ev.closed_protocol,
            CloseReason::ProbeTimeout => &ev.closed_probe_timeout,
            CloseReason::Stuck => &ev.closed_stuck,
            CloseReason::PeerClosed | CloseReason::ReadError(_) => &ev.closed_by_peer,
            CloseReason::Requested(_) => &ev.closed_requested,
        };
        counter.fetch_add(1, Relaxed);
        {
            let mut live = self.stats.live.lock();
            if let Some(i) = live.iter().position(|(id, _)| *id == m.id) {
                let (_, c) = live.swap_remove(i);
                self.stats.departed.add_from(&c.snapshot());
            }
        }
        if let Some(s) = self.sessions.remove(&m.id) {
            if s.negotiated {
                tracing::info!(
                    "bridge {}: {} disconnected ({})",
                    self.bridge_name,
                    s.peer,
                    m.reason
                );
            }
            if matches!(s.origin, Origin::Controller(_)) && !self.controller_connected() {
                self.controller_lost_since = Some(now_ms());
            }
        }
        self.check_fail_open();
    }
}

impl Handler<RequestRole> for Connmgr {
    type Result = Result<(ControllerRole, u64), OfpError>;
    fn handle(&mut self, m: RequestRole, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<RequestRole>();
        let gen = self.generation_id.unwrap_or(0);
        match m.role {
            ControllerRole::NoChange => {
                let role = self
                    .sessions
                    .get(&m.id)
                    .map(|s| s.role)
                    .unwrap_or(ControllerRole::Equal);
                Ok((role, gen))
            }
            ControllerRole::Equal => {
                if let Some(s) = self.sessions.get_mut(&m.id) {
                    s.role = ControllerRole::Equal;
                }
                Ok((ControllerRole::Equal, gen))
            }
            ControllerRole::Master | ControllerRole::Slave => {
                // OF1.3 §6.3.5: a generation id older than the last one seen
                // (wrapping comparison) is stale.
                if let Some(last) = self.generation_id {
                    if (m.generation_id.wrapping_sub(last) as i64) < 0 {
                        return Err(OfpError::RoleStale);
                    }
                }
                self.generation_id = Some(m.generation_id);
                if m.role == ControllerRole::Master {
                    for (id, s) in self.sessions.iter_mut() {
                        if *id != m.id && s.role == ControllerRole::Master {
                            s.role = ControllerRole::Slave;
                            s.addr.do_send(SetRole(ControllerRole::Slave));
                        }
                    }
                }
                if let Some(s) = self.sessions.get_mut(&m.id) {
                    s.role = m.role;
                }
                Ok((m.role, m.generation_id))
            }
        }
    }
}

impl Handler<ConnmgrReport> for Connmgr {
    type Result = ResponseFuture<serde_json::Value>;
    fn handle(&mut self, _: ConnmgrReport, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<ConnmgrReport>();
        let sessions: Vec<Addr<OfSession>> =
            self.sessions.values().map(|s| s.addr.clone()).collect();
        let controllers: Vec<serde_json::Value> = self
            .controllers
            .values()
            .map(|c| serde_json::to_value(&*c.fsm.lock()).unwrap_or_default())
            .collect();
        let cap = current().max_connections_per_listener;
        let listeners: Vec<serde_json::Value> = self
            .listeners
            .iter()
            .map(|l| {
                let origin = Origin::Listener(l.name.clone());
                let mine = || self.sessions.values().filter(|s| s.origin == origin);
                json!({
                    "name": l.name,
                    "connections": mine().count(),
                    "negotiated": mine().filter(|s| s.negotiated).count(),
                    "max_connections": cap,
                    "accepted": l.accepted,
                    "refused_listener_full": l.refused + l.tls.refused.load(Relaxed),
                    "evicted_unnegotiated": l.evicted,
                    "tls_handshakes_in_progress": l.tls.in_progress.load(Relaxed),
                    "tls_handshake_failed": l.tls.failed.load(Relaxed),
                    "tls_last_error": *l.tls.last_error.lock(),
                })
            })
            .collect();
        let bridge = self.bridge_name.clone();
        let fail_open = self.fail_open;
        let delivered = self.packet_ins_delivered;
        let events = self.stats.events.snapshot();
        let totals = self.stats.sessions();
        Box::pin(async move {
            let mut sess = Vec::new();
            for s in sessions {
                if let Ok(v) = s.send(SessionReport).await {
                    sess.push(v);
                }
            }
            json!({
                "bridge": bridge,
                "listeners": listeners,
                "controllers": controllers,
                "sessions": sess,
                "fail_open": fail_open,
                "packet_ins_fanned_out": delivered,
                "events": events,
                "session_totals": totals,
            })
        })
    }
}

#[cfg(test)]
mod backlog_tests {
    use super::*;
    use crate::messages::connmgr::AsyncEvent;
    use crate::ofproto::monitor::FlowChanges;

    fn changes(version: u64) -> AsyncEvent {
        AsyncEvent::FlowChanges(Arc::new(FlowChanges {
            conn: None,
            version,
            changes: Vec::new(),
        }))
    }

    fn version(ev: &AsyncEvent) -> u64 {
        match ev {
            AsyncEvent::FlowChanges(c) => c.version,
            _ => 0,
        }
    }

    #[test]
    fn changes_wait_in_order_for_a_full_mailbox_up_to_the_bound() {
        let mut b = Backlog::default();
        let mut got = Vec::new();
        assert!(b.offer(changes(1), |e| {
            got.push(version(&e));
            Offer::Taken
        }));
        // Full: kept, and later ones queue behind even if there is room.
        assert!(b.offer(changes(2), Offer::Full));
        assert!(b.offer(changes(3), |e| {
            got.push(version(&e));
            Offer::Taken
        }));
        for v in 4..2 + FLOW_CHANGES_BACKLOG as u64 {
            assert!(b.offer(changes(v), Offer::Full));
        }
        assert!(
            !b.offer(changes(1000), Offer::Full),
            "beyond the bound: dropped"
        );
        // Room for two, then full again.
        let mut room = 2;
        assert!(b.drain(|e| if room > 0 {
            room -= 1;
            got.push(version(&e));
            Offer::Taken
        } else {
            Offer::Full(e)
        }));
        assert_eq!(got, vec![1, 2, 3]);
        assert!(!b.drain(|e| {
            got.push(version(&e));
            Offer::Taken
        }));
        assert_eq!(got.len(), 1 + FLOW_CHANGES_BACKLOG);
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
        // A closed mailbox takes the backlog with it.
        assert!(b.offer(changes(1), Offer::Full));
        assert!(!b.drain(|_| Offer::Closed));
    }
}
