//! One OpenFlow connection as a sans-I/O state machine (OVS `ofconn` plus the
//! parts of `rconn`/`vconn` that are protocol, not sockets).
//!
//! [`OfConn`] owns the protocol state of one connection: the HELLO exchange
//! and version negotiation (OF1.3.5 §6.3.1), echo and inactivity probes,
//! role and role filtering (§6.3.5), the asynchronous-message configuration
//! (§7.3.10), `miss_send_len` (SET_CONFIG), the classification of every
//! message ([`classify`]), the order of replies, and the byte-bounded output
//! queue ([`txq`]). It never touches a socket, a timer or another actor, in
//! the style of quinn-proto's `Connection`:
//!
//! - inputs: [`OfConn::handle_bytes`] (what the socket gave),
//!   [`OfConn::handle_eof`], [`OfConn::handle_transmitted`] (a segment was
//!   written), [`OfConn::handle_replies`] (the bridge answered a batch),
//!   [`OfConn::handle_role`] (the connection manager answered a role
//!   request), [`OfConn::set_role`] (demotion), [`OfConn::handle_async`]
//!   (packet-in, port status, flow removed), [`OfConn::handle_timeout`];
//! - outputs: [`OfConn::poll_transmit`] (bytes to write),
//!   [`OfConn::poll_event`] ([`Event`]: up, requests for the bridge, role
//!   requests, close), [`OfConn::poll_timeout`] (when to call
//!   `handle_timeout`), [`OfConn::wants_input`] (whether the shell may read
//!   from the peer at all).
//!
//! Time is always an argument, so tests drive it on a simulated clock.
//!
//! Ordering: replies leave in request order. Requests for the bridge travel
//! in batches; while a batch (or a role request) is outstanding, later input
//! is buffered but not processed, and a streamed flow-stats reply holds the
//! replies behind it. Backpressure: when the output queue reaches its byte
//! budget, or the input buffer is full, [`OfConn::wants_input`] turns false
//! and the shell stops reading, so a peer that does not read what we send
//! stops being read (replies are never dropped); only asynchronous messages
//! are dropped, each kind counted on its own.
//!
//! Owned by the session actor on its bridge's Arbiter thread; the counters
//! are atomics shared with the connection manager for display.

pub mod classify;
pub mod encode;
mod monitors;
pub mod txq;

#[cfg(test)]
mod tests;

use crate::ofproto::match_::match_to_key;
use crate::ofproto::monitor::FlowChanges;
use crate::ofproto::request::BundleCommit;
use crate::ofproto::FlowStatsJob;
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    AsyncConfig, BundleCtrl, BundleCtrlType, ControllerRole, FlowModCommand, FlowRemoved,
    FlowUpdate, Message, MpReplyBody, MpRequestBody, MultipartReply, MultipartRequest, NxMsg,
    OfpMsg, PacketIn, PortStatus, RoleMsg, SwitchConfig, SwitchFeatures, BF_ATOMIC,
};
use crate::openflow::{self, DecodeError, Version, Versions};
use crate::types::{DatapathId, TableId};
use crate::util::gauge::GaugeShare;
use classify::{classify, reply_may_be_large, Route};
use encode::{Encoder, ERROR_DATA_LEN};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use txq::TxQueue;

/// The bridge's answers, which the connection encodes in its negotiated
/// version (defined with the request handler that produces them).
pub use crate::ofproto::request::OfReply;

/// An asynchronous message for controllers, before per-connection filtering.
#[derive(Clone, Debug)]
pub enum AsyncEvent {
    /// A packet for the controller.
    PacketIn {
        /// The message, with the whole packet.
        pin: Arc<PacketIn>,
        /// Truncation asked for by the action (0xffff = whole packet).
        max_len: u16,
    },
    /// A port appeared, changed or went away.
    PortStatus(Arc<PortStatus>),
    /// A rule was removed.
    FlowRemoved(Arc<FlowRemoved>),
    /// Rules changed while some connection had a flow monitor (each
    /// connection reports what its own monitors cover).
    FlowChanges(Arc<FlowChanges>),
}

crate::counter_set! {
    /// Counters of one connection (atomics: the connection manager reads them
    /// for `ofctl/show-connections` and sums them per bridge).
    pub struct ConnCounters / ConnCountersSnapshot {
        /// OpenFlow messages received.
        rx_msgs,
        /// Bytes received.
        rx_bytes,
        /// OpenFlow messages queued for sending.
        tx_msgs,
        /// Bytes queued for sending.
        tx_bytes,
        /// OFPT_ERROR messages sent.
        errors_sent,
        /// Messages from the peer that failed to decode.
        decode_errors,
        /// PACKET_INs sent.
        packet_ins,
        /// PACKET_INs dropped because the output queue was full.
        packet_ins_dropped,
        /// PACKET_INs dropped by the rate limit (controller_rate_limit).
        packet_ins_rate_limited,
        /// FLOW_REMOVED messages sent.
        flow_removed,
        /// FLOW_REMOVED messages dropped because the output queue was full.
        flow_removed_dropped,
        /// PORT_STATUS messages sent.
        port_status,
        /// PORT_STATUS messages dropped because the output queue was full.
        port_status_dropped,
        /// Bundles handed to the bridge for commit.
        bundles_committed,
        /// Bundles discarded after BUNDLE_IDLE_TIMEOUT without use.
        bundles_expired,
        /// Times the connection stopped reading because its output queue reached the budget.
        input_paused,
        /// Requests answered with an error because the bridge could not take them.
        bridge_unavailable,
        /// Inactivity probes (ECHO_REQUEST) sent.
        probes_sent,
        /// Timers that fired much later than scheduled (the process was stalled).
        stalls,
        /// HELLOs with elements we could not parse (negotiated on the header version).
        hello_unparsed,
        /// Flow monitor updates sent (initial, added, removed, modified, abbreviated).
        flow_updates,
        /// Flow monitor updates the negotiated version cannot express (skipped).
        flow_updates_unencodable,
        /// Batches of rule changes that did not reach the connection (its mailbox was full); each makes the monitors pause and resynchronise.
        flow_changes_lost,
        /// Times flow monitors paused (PAUSED sent) because the output queue was full.
        monitor_paused,
        /// Times flow monitors resumed (current state re-sent, then RESUMED).
        monitor_resumed,
    }
}

/// Per-connection settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Datapath id for FEATURES_REPLY.
    pub dpid: DatapathId,
    /// Inactivity probe interval; `None` disables probing.
    pub probe_interval: Option<Duration>,
    /// Longest wait for the peer's HELLO.
    pub hello_timeout: Duration,
    /// Output queue budget, bytes.
    pub tx_budget: usize,
    /// A peer that drains nothing for this long while the queue is over
    /// budget is disconnected.
    pub stuck_timeout: Duration,
    /// PACKET_IN rate limit: packets per second and burst (OVS
    /// `controller_rate_limit`/`controller_burst_limit`); `None`: unlimited.
    pub packet_in_limit: Option<(u32, u32)>,
    /// The OpenFlow versions the bridge allows (its `protocols`); HELLO
    /// advertises them and negotiation picks among them.
    pub versions: Versions,
    /// The connection's id in its connection manager (0: none), which
    /// rule changes carry to tell a monitor's own changes from others'.
    pub conn_id: u64,
    /// The bridge's count of flow monitors over all its connections
    /// ([`crate::ofproto::monitor::MonitorGauge`]).
    pub monitors: Arc<std::sync::atomic::AtomicUsize>,
    /// Wire bytes held in the open bundles of all the bridge's connections
    /// (bounded by [`MAX_BRIDGE_BUNDLE_BYTES`]).
    pub bundle_bytes: Arc<std::sync::atomic::AtomicUsize>,
}

impl ConnCounters {
    /// Counts one asynchronous message of `ev`'s kind that did not reach the
    /// peer: its output queue was full, the session's mailbox was (the
    /// connection manager's fan-out), or the negotiated version cannot
    /// express it. Each kind has its own counter (issue: replies are never
    /// dropped; asynchronous messages may be, and say so by kind).
    pub fn async_dropped(&self, ev: &AsyncEvent) {
        match ev {
            AsyncEvent::PacketIn { .. } => &self.packet_ins_dropped,
            AsyncEvent::PortStatus(_) => &self.port_status_dropped,
            AsyncEvent::FlowRemoved(_) => &self.flow_removed_dropped,
            AsyncEvent::FlowChanges(_) => &self.flow_changes_lost,
        }
        .fetch_add(1, Relaxed);
    }
}

/// Default output budget: 4 MiB (64 full-size messages).
pub const DEFAULT_TX_BUDGET: usize = 4 << 20;
/// Default HELLO timeout.
pub const DEFAULT_HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Default stuck-peer timeout.
pub const DEFAULT_STUCK_TIMEOUT: Duration = Duration::from_secs(30);

impl Settings {
    /// Defaults for a connection to `dpid`.
    pub fn new(dpid: DatapathId) -> Settings {
        Settings {
            dpid,
            probe_interval: None,
            hello_timeout: DEFAULT_HELLO_TIMEOUT,
            tx_budget: DEFAULT_TX_BUDGET,
            stuck_timeout: DEFAULT_STUCK_TIMEOUT,
            packet_in_limit: None,
            versions: Versions::supported(),
            conn_id: 0,
            monitors: Arc::default(),
            bundle_bytes: Arc::default(),
        }
    }
}

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the stream.
    PeerClosed,
    /// Reading failed.
    ReadError(String),
    /// No HELLO within the timeout.
    HelloTimeout,
    /// The first message was not a HELLO.
    NotHello,
    /// No common version.
    Incompatible,
    /// A message in another version after negotiation, or a header whose
    /// length cannot be framed: nothing later can be trusted.
    Protocol,
    /// No answer to the inactivity probe.
    ProbeTimeout,
    /// The peer did not drain its output queue for the stuck timeout.
    Stuck,
    /// The connection manager asked (reload, eviction, shutdown).
    Requested(&'static str),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("connection closed by peer"),
            CloseReason::ReadError(e) => write!(f, "read error: {e}"),
            CloseReason::HelloTimeout => f.write_str("no HELLO within the timeout"),
            CloseReason::NotHello => f.write_str("first message was not a HELLO"),
            CloseReason::Incompatible => f.write_str("version negotiation failed"),
            CloseReason::Protocol => f.write_str("protocol error"),
            CloseReason::ProbeTimeout => f.write_str("no answer to inactivity probe"),
            CloseReason::Stuck => f.write_str("peer stopped reading (output queue over budget)"),
            CloseReason::Requested(why) => f.write_str(why),
        }
    }
}

/// What a role request came back with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleAnswer {
    /// The role now held (NoChange: unchanged) and the generation id.
    Granted(ControllerRole, u64),
    /// Refused (stale generation id).
    Refused(OfpError),
    /// The connection manager is gone.
    Unavailable,
}

/// Something the shell must act on.
#[derive(Debug)]
pub enum Event {
    /// The handshake finished.
    Up {
        /// The negotiated version.
        version: Version,
    },
    /// Requests for the bridge, in arrival order; answer with
    /// [`OfConn::handle_replies`] and the same token.
    Requests {
        /// Matches the answer to the batch.
        token: u64,
        /// Negotiated version.
        version: Version,
        /// The messages, each with its first bytes for error replies.
        msgs: Vec<(OfpMsg, Vec<u8>)>,
        /// `Some`: the messages are a bundle's, to be committed as one
        /// change ([`crate::ofproto::request::Requests::commit_bundle`]).
        bundle: Option<BundleCommit>,
    },
    /// A ROLE_REQUEST for the connection manager; answer with
    /// [`OfConn::handle_role`].
    Role {
        /// Matches the answer.
        token: u64,
        /// Requested role.
        role: ControllerRole,
        /// Generation id.
        generation_id: u64,
    },
    /// The connection is finished: flush what [`OfConn::poll_transmit`]
    /// still returns, then close both directions.
    Close(CloseReason),
}

/// Longest batch of requests handed to the bridge at once.
pub const BATCH_MAX: usize = 256;
/// Input buffered beyond this stops reading (one more read may land on top).
pub const RX_SOFT_LIMIT: usize = 64 * 1024;
/// Input buffers larger than this are freed when they empty.
const RX_KEEP: usize = 4096;
/// A timer that fires this much later than it was set for means the process
/// (or its thread) did not run: peers are not judged on that interval.
pub const STALL_SLACK: Duration = Duration::from_millis(1000);
/// Flow-stats messages encoded per step before the shell gets to write.
const STREAM_MSGS: usize = 2;
/// Steps of a streamed reply per call before yielding to the shell.
const STREAM_STEPS: usize = 8;
/// Our first xid for messages we originate (probes).
const FIRST_XID: u32 = 0x1000_0000;
/// OFPR_NO_MATCH: the packet-in reason that `miss_send_len` limits.
const OFPR_NO_MATCH: u8 = 0;
/// `max_len` meaning "the whole packet" (OFPCML_NO_BUFFER).
const NO_BUFFER_LEN: u16 = 0xffff;
/// OFPET_BAD_REQUEST / OFPBRC_EPERM.
const BRC_EPERM: (u16, u16) = (1, 5);
/// OFPET_METER_MOD_FAILED / OFPMMFC_UNKNOWN.
const MMFC_UNKNOWN: (u16, u16) = (12, 0);
/// The default miss_send_len (OFPCML_DEFAULT... OF1.3.5 §7.3.2: 128).
const DEFAULT_MISS_SEND_LEN: u16 = 128;

#[derive(Debug)]
enum State {
    /// Waiting for the peer's HELLO until the deadline.
    Hello { deadline: Instant },
    /// Negotiated.
    Up { enc: Encoder },
    /// Finished (the reason was reported).
    Closed,
}

/// An outstanding request elsewhere that later input must wait for.
#[derive(Debug)]
enum Blocker {
    /// A batch for the bridge: per request, what an error reply needs.
    Bridge {
        token: u64,
        requests: Vec<(u32, u8, Vec<u8>)>,
    },
    /// A role request.
    Role { token: u64, xid: u32, head: Vec<u8> },
}

/// Most bundles one connection may hold open at once (OFPBFC_OUT_OF_BUNDLES
/// beyond). OVS sets no number; we bound every peer-held resource.
pub const MAX_BUNDLES: usize = 64;
/// Most wire bytes of messages one connection's bundles may hold
/// (OFPBFC_MSG_TOO_MANY beyond): room for 1.5 million typical 128-byte
/// FLOW_MODs, so `ovs-ofctl --bundle add-flows` of a million-rule table
/// fits in one bundle, as it does with OVS (which sets no limit).
pub const MAX_BUNDLE_BYTES: usize = 192 << 20;
/// Most wire bytes all connections of one bridge may hold in bundles
/// together (OFPBFC_MSG_TOO_MANY beyond): without it, every admitted
/// connection could hold [`MAX_BUNDLE_BYTES`] at once.
pub const MAX_BRIDGE_BUNDLE_BYTES: usize = 2 * MAX_BUNDLE_BYTES;
/// A bundle untouched this long is discarded with OFPBFC_TIMEOUT (OVS
/// `BUNDLE_IDLE_TIMEOUT_DEFAULT`).
pub const BUNDLE_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One bundle while it is built (OVS `struct ofp_bundle`).
#[derive(Debug)]
struct Bundle {
    flags: u16,
    closed: bool,
    /// The messages, each with the first bytes of the BUNDLE_ADD_MESSAGE
    /// that carried it (errors refer to that message, as OVS's do).
    msgs: Vec<(OfpMsg, Vec<u8>)>,
    /// Their wire bytes.
    bytes: usize,
    /// Last open, add or close.
    used: Instant,
    /// The message that created it, for the timeout error.
    first_xid: u32,
    first_head: Vec<u8>,
}

/// A frame cut from the input.
#[derive(Debug)]
struct Frame {
    msg: Result<OfpMsg, DecodeError>,
    head: Vec<u8>,
    /// The message's length on the wire (what a bundle holding it costs).
    len: usize,
}

impl Frame {
    fn wire_type(&self) -> u8 {
        self.head.get(1).copied().unwrap_or(0)
    }
    fn wire_version(&self) -> u8 {
        self.head.first().copied().unwrap_or(0)
    }
}

/// The connection.
#[derive(Debug)]
pub struct OfConn {
    s: Settings,
    state: State,
    role: ControllerRole,
    async_cfg: AsyncConfig,
    switch_cfg: SwitchConfig,
    /// NXT_FLOW_MOD_TABLE_ID: the peer said its OF1.0 FLOW_MODs carry a
    /// table id in the command's upper byte. The codec always reads that
    /// byte (Open vSwitch's tools send zero there otherwise); kept for
    /// display.
    flow_mod_table_id: bool,
    /// NXT_SET_CONTROLLER_ID: the id the controller gave this connection.
    controller_id: u16,
    /// Bundles being built (OF1.4.1 §7.3.9), by id; each connection has its
    /// own, as in OVS (`ofconn->bundles`).
    bundles: std::collections::BTreeMap<u32, Bundle>,
    /// Wire bytes of every message held in `bundles` (this connection's
    /// share of the bridge's total).
    bundle_bytes: GaugeShare,
    rx: Vec<u8>,
    rx_start: usize,
    held: Option<Frame>,
    blocker: Option<Blocker>,
    stream: Option<FlowStatsJob>,
    deferred: VecDeque<OfReply>,
    txq: TxQueue,
    events: VecDeque<Event>,
    next_token: u64,
    next_xid: u32,
    /// The last time we heard from the peer or could not have (paused).
    last_heard: Instant,
    probe_sent: bool,
    /// While over budget: the last time the queue drained anything.
    last_progress: Option<Instant>,
    /// The time of the latest input.
    now: Instant,
    /// Whether input was open at the latest input.
    reading: bool,
    /// PACKET_IN rate limiters, `[table miss, other reasons]`, as OVS
    /// keeps one `pinsched` for misses and one for the rest.
    pin_limit: Option<[TokenBucket; 2]>,
    /// The deadline the shell was last given.
    armed: Option<Instant>,
    /// A streamed reply has more to encode now.
    work_now: bool,
    /// Flow monitors (see [`monitors`]).
    mon: monitors::Monitors,
    counters: Arc<ConnCounters>,
}

impl OfConn {
    /// A new connection at `now`: our HELLO is queued at once.
    pub fn new(s: Settings, now: Instant) -> OfConn {
        let mut c = OfConn {
            state: State::Hello {
                deadline: now + s.hello_timeout,
            },
            role: ControllerRole::Equal,
            flow_mod_table_id: false,
            controller_id: 0,
            bundles: std::collections::BTreeMap::new(),
            bundle_bytes: GaugeShare::new(s.bundle_bytes.clone()),
            async_cfg: AsyncConfig::default(),
            switch_cfg: SwitchConfig {
                flags: 0,
                miss_send_len: DEFAULT_MISS_SEND_LEN,
            },
            rx: Vec::new(),
            rx_start: 0,
            held: None,
            blocker: None,
            stream: None,
            deferred: VecDeque::new(),
            txq: TxQueue::new(s.tx_budget),
            events: VecDeque::new(),
            next_token: 1,
            next_xid: FIRST_XID,
            last_heard: now,
            probe_sent: false,
            last_progress: None,
            armed: None,
            work_now: false,
            now,
            reading: true,
            pin_limit: s.packet_in_limit.map(|(rate, burst)| {
                [
                    TokenBucket::new(rate, burst, now),
                    TokenBucket::new(rate, burst, now),
                ]
            }),
            counters: Arc::new(ConnCounters::default()),
            mon: monitors::Monitors::new(s.monitors.clone()),
            s,
        };
        let hello = encode::hello(0, c.s.versions);
        c.push_msg(&hello);
        c
    }

    /// The counters (shared with whoever displays them).
    pub fn counters(&self) -> Arc<ConnCounters> {
        self.counters.clone()
    }

    /// The negotiated version, once up.
    pub fn version(&self) -> Option<Version> {
        match &self.state {
            State::Up { enc } => Some(enc.version()),
            _ => None,
        }
    }

    /// The current role.
    pub fn role(&self) -> ControllerRole {
        self.role
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    // ----- outputs ---------------------------------------------------------

    /// The next bytes to write, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.txq.pop()
    }

    /// The next event for the shell.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When to call [`OfConn::handle_timeout`] next (`now` or earlier: at once).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        let t = self.next_deadline();
        self.armed = t;
        t
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut min = |d: Instant| t = Some(t.map_or(d, |x| x.min(d)));
        match &self.state {
            State::Closed => return None,
            State::Hello { deadline } => min(*deadline),
            State::Up { .. } => {
                if let Some(p) = self.s.probe_interval {
                    min(self.last_heard + if self.probe_sent { p * 2 } else { p });
                }
            }
        }
        if let Some(lp) = self.last_progress {
            min(lp + self.s.stuck_timeout);
        }
        if self.work_now {
            min(self.now);
        }
        if let Some(u) = self.bundles.values().map(|b| b.used).min() {
            min(u + BUNDLE_IDLE_TIMEOUT);
        }
        t
    }

    /// Whether the shell may read more from the peer: false while the output
    /// queue is over budget (backpressure), while the input buffer is full,
    /// and once closed.
    pub fn wants_input(&self) -> bool {
        !self.is_closed() && !self.txq.over_budget() && self.rx_len() < RX_SOFT_LIMIT
    }

    /// Bytes counted against the output budget.
    pub fn tx_queued(&self) -> usize {
        self.txq.queued()
    }

    /// Bytes of input buffered and not yet processed.
    pub fn rx_len(&self) -> usize {
        self.rx.len() - self.rx_start
    }

    // ----- inputs ----------------------------------------------------------

    /// Bytes read from the peer.
    pub fn handle_bytes(&mut self, data: &[u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        self.counters.rx_bytes.fetch_add(data.len() as u64, Relaxed);
        self.heard(now);
        if self.rx_start > 0 && self.rx_start >= self.rx.len() / 2 {
            self.rx.drain(..self.rx_start);
            self.rx_start = 0;
        }
        self.rx.extend_from_slice(data);
        self.process();
        self.settle(now);
    }

    /// The peer closed its direction (or reading failed: `error`).
    pub fn handle_eof(&mut self, error: Option<String>, now: Instant) {
        self.close(match error {
            None => CloseReason::PeerClosed,
            Some(e) => CloseReason::ReadError(e),
        });
        self.settle(now);
    }

    /// A segment of `len` bytes returned by [`OfConn::poll_transmit`] was
    /// written.
    pub fn handle_transmitted(&mut self, len: usize, now: Instant) {
        if self.txq.ack(len) && self.last_progress.is_some() {
            self.last_progress = Some(now);
        }
        self.pump();
        self.process();
        self.settle(now);
    }

    /// The bridge answered the batch `token` (`None`: its mailbox refused
    /// the batch, so each request is answered with an error).
    pub fn handle_replies(&mut self, token: u64, replies: Option<Vec<OfReply>>, now: Instant) {
        let requests = match self.blocker.take() {
            Some(Blocker::Bridge { token: t, requests }) if t == token => requests,
            other => {
                self.blocker = other;
                return;
            }
        };
        if self.is_closed() {
            return;
        }
        let mut replies = replies;
        if self.monitor_replies(token, &mut replies) {
            self.pump();
            self.process();
            self.settle(now);
            return;
        }
        match replies {
            Some(replies) => {
                let mut it = replies.into_iter();
                while let Some(r) = it.next() {
                    if matches!(r, OfReply::FlowStats(_)) {
                        self.emit_reply(r);
                        self.deferred.extend(it);
                        break;
                    }
                    self.emit_reply(r);
                }
            }
            None => {
                for (xid, wire_type, head) in requests {
                    self.counters.bridge_unavailable.fetch_add(1, Relaxed);
                    self.unavailable_error(xid, wire_type, &head);
                }
            }
        }
        self.pump();
        self.process();
        self.settle(now);
    }

    /// The connection manager answered role request `token`.
    pub fn handle_role(&mut self, token: u64, answer: RoleAnswer, now: Instant) {
        let (xid, head) = match self.blocker.take() {
            Some(Blocker::Role {
                token: t,
                xid,
                head,
            }) if t == token => (xid, head),
            other => {
                self.blocker = other;
                return;
            }
        };
        if self.is_closed() {
            return;
        }
        match answer {
            RoleAnswer::Granted(role, generation_id) => {
                if role != ControllerRole::NoChange {
                    self.role = role;
                }
                let shown = self.role;
                self.send(
                    xid,
                    Message::RoleReply(RoleMsg {
                        role: shown,
                        generation_id,
                    }),
                );
            }
            RoleAnswer::Refused(e) => self.send_error(xid, e, &head),
            RoleAnswer::Unavailable => self.send_error(xid, OfpError::RoleUnsupported, &head),
        }
        self.process();
        self.settle(now);
    }

    /// The connection manager changed our role (another controller became
    /// master).
    pub fn set_role(&mut self, role: ControllerRole) {
        if role != ControllerRole::NoChange {
            self.role = role;
        }
    }

    /// An asynchronous message: sent if the connection is up, its role and
    /// asynchronous configuration want it and it fits in the asynchronous
    /// half of the output budget; otherwise dropped and counted by kind.
    pub fn handle_async(&mut self, ev: &AsyncEvent, now: Instant) {
        self.async_message(ev, now);
        self.settle(now);
    }

    fn async_message(&mut self, ev: &AsyncEvent, now: Instant) {
        let State::Up { enc } = &self.state else {
            return;
        };
        let enc = *enc;
        if !matches!(ev, AsyncEvent::FlowChanges(_)) && !self.async_wanted(ev) {
            return;
        }
        let (body, sent) = match ev {
            AsyncEvent::PacketIn { pin, max_len } => {
                if let Some(buckets) = self.pin_limit.as_mut() {
                    let b = &mut buckets[usize::from(pin.reason != OFPR_NO_MATCH)];
                    if !b.withdraw(now) {
                        self.counters.packet_ins_rate_limited.fetch_add(1, Relaxed);
                        return;
                    }
                }
                let limit = if pin.reason == OFPR_NO_MATCH {
                    (*max_len).min(self.switch_cfg.miss_send_len)
                } else {
                    *max_len
                };
                let mut p = (**pin).clone();
                if limit != NO_BUFFER_LEN && p.data.len() > limit as usize {
                    p.data.truncate(limit as usize);
                }
                (Message::PacketIn(p), &self.counters.packet_ins)
            }
            AsyncEvent::PortStatus(ps) => (
                Message::PortStatus((**ps).clone()),
                &self.counters.port_status,
            ),
            AsyncEvent::FlowRemoved(fr) => (
                Message::FlowRemoved((**fr).clone()),
                &self.counters.flow_removed,
            ),
            AsyncEvent::FlowChanges(fc) => return self.flow_changes(fc),
        };
        let mut out = Vec::new();
        if let Err(e) = enc.message(0, body, &mut out) {
            tracing::debug!("asynchronous message not encodable: {e}");
            self.counters.async_dropped(ev);
            return;
        }
        let len: usize = out.iter().map(Vec::len).sum();
        if !self.txq.async_fits(len) {
            self.counters.async_dropped(ev);
            return;
        }
        sent.fetch_add(1, Relaxed);
        for m in out {
            self.push_msg(&m);
        }
    }

    /// A timer set from [`OfConn::poll_timeout`] fired.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.timeout(now);
        self.settle(now);
    }

    fn timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        let armed = self.armed.take();
        if let Some(a) = armed {
            if now > a + STALL_SLACK {
                // We did not run for a while: whatever the peer sent may be
                // waiting unread. Judge nobody on this interval; count it.
                self.counters.stalls.fetch_add(1, Relaxed);
                tracing::info!(
                    "connection timer fired {} ms late: not judging the peer on that interval",
                    (now - a).as_millis()
                );
                self.last_heard = now;
                self.probe_sent = false;
                if self.last_progress.is_some() {
                    self.last_progress = Some(now);
                }
                if let State::Hello { deadline } = &mut self.state {
                    *deadline = (*deadline).max(now + STALL_SLACK);
                }
                self.step_stream();
                return;
            }
        }
        if self.work_now {
            self.step_stream();
            self.process();
        }
        if !self.wants_input() {
            // Not reading: the peer's silence is ours.
            self.heard(now);
        }
        if let Some(lp) = self.last_progress {
            if now >= lp + self.s.stuck_timeout {
                self.close(CloseReason::Stuck);
                return;
            }
        }
        self.expire_bundles(now);
        self.check_lost_changes();
        match &self.state {
            State::Hello { deadline } if now >= *deadline => {
                self.close(CloseReason::HelloTimeout);
            }
            State::Up { .. } => {
                if let Some(p) = self.s.probe_interval {
                    let idle = now.saturating_duration_since(self.last_heard);
                    if self.probe_sent && idle >= p * 2 {
                        self.close(CloseReason::ProbeTimeout);
                    } else if !self.probe_sent && idle >= p {
                        self.probe_sent = true;
                        self.counters.probes_sent.fetch_add(1, Relaxed);
                        let xid = self.next_xid;
                        self.next_xid = self.next_xid.wrapping_add(1);
                        self.send(xid, Message::EchoRequest(Vec::new()));
                    }
                }
            }
            _ => {}
        }
    }

    /// Closes the connection for `reason` (the shell flushes and closes).
    pub fn close(&mut self, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        self.state = State::Closed;
        self.rx = Vec::new();
        self.rx_start = 0;
        self.held = None;
        self.stream = None;
        self.deferred = VecDeque::new();
        self.last_progress = None;
        self.work_now = false;
        self.mon.clear();
        self.events.push_back(Event::Close(reason));
    }

    // ----- status ----------------------------------------------------------

    /// What `ofctl/show-connections` shows about this connection.
    pub fn status(&self, now: Instant) -> ConnStatus {
        ConnStatus {
            negotiated: self.version().is_some(),
            version: self.version().map(|v| v.to_string()),
            role: format!("{:?}", self.role).to_lowercase(),
            miss_send_len: self.switch_cfg.miss_send_len,
            controller_id: self.controller_id,
            flow_mod_table_id: self.flow_mod_table_id,
            idle_s: now.saturating_duration_since(self.last_heard).as_secs_f64(),
            tx_queued_bytes: self.txq.queued(),
            tx_budget_bytes: self.txq.budget(),
            rx_buffered_bytes: self.rx_len(),
            reading: self.wants_input(),
            flow_monitors: self.mon.len(),
            flow_monitors_paused: self.mon.paused,
            counters: self.counters.snapshot(),
        }
    }

    // ----- internals -------------------------------------------------------

    fn heard(&mut self, now: Instant) {
        self.last_heard = now;
        self.probe_sent = false;
    }

    fn push_msg(&mut self, b: &[u8]) {
        self.txq.push(b);
        self.counters.tx_bytes.fetch_add(b.len() as u64, Relaxed);
        self.counters.tx_msgs.fetch_add(1, Relaxed);
    }

    /// Bookkeeping at the end of every input: the stuck clock runs while the
    /// queue is over budget (each drained segment restarts it), and while we
    /// do not read, or have just started reading again, the peer counts as
    /// heard: the probe interval runs from the last time we could have read.
    fn settle(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        self.maybe_resume_monitors();
        match (self.txq.over_budget(), self.last_progress) {
            (true, None) => {
                self.last_progress = Some(now);
                self.counters.input_paused.fetch_add(1, Relaxed);
            }
            (false, Some(_)) => self.last_progress = None,
            _ => {}
        }
        let reading = self.wants_input();
        if !reading || !self.reading {
            self.heard(now);
        }
        self.reading = reading;
    }

    fn enc(&self) -> Option<Encoder> {
        match &self.state {
            State::Up { enc } => Some(*enc),
            _ => None,
        }
    }

    fn send(&mut self, xid: u32, body: Message) {
        let Some(enc) = self.enc() else { return };
        let mut out = Vec::new();
        match enc.message(xid, body, &mut out) {
            Ok(()) => out.iter().for_each(|m| self.push_msg(m)),
            Err(e) => {
                tracing::warn!("cannot encode a reply to xid {xid:#x}: {e}");
                self.send_error(xid, OfpError::MultipartBufferOverflow, &[]);
            }
        }
    }

    fn send_error(&mut self, xid: u32, e: OfpError, head: &[u8]) {
        self.counters.errors_sent.fetch_add(1, Relaxed);
        crate::util::coverage::inc(&crate::util::coverage::c::ofp_error_sent);
        let b = match self.enc() {
            Some(enc) => enc.error(xid, e, head),
            None => openflow::encode_error_reply(xid, e, &head[..head.len().min(ERROR_DATA_LEN)]),
        };
        self.push_msg(&b);
    }

    /// The error for a request the bridge could not take. OpenFlow has no
    /// "switch busy" code; each request gets its type's "unspecified" failure
    /// where the spec has one (OFPFMFC_UNKNOWN, OFPMMFC_UNKNOWN) and
    /// OFPBRC_EPERM otherwise — the generic "the switch refuses to do this"
    /// of BAD_REQUEST — so that the controller knows the request was not
    /// carried out (a BARRIER included: nothing before it is known applied).
    fn unavailable_error(&mut self, xid: u32, wire_type: u8, head: &[u8]) {
        const FLOW_MOD: u8 = 14;
        const METER_MOD: u8 = 29;
        match wire_type {
            FLOW_MOD => self.send_error(xid, OfpError::FlowModUnknown, head),
            _ => {
                let (t, c) = if wire_type == METER_MOD {
                    MMFC_UNKNOWN
                } else {
                    BRC_EPERM
                };
                self.counters.errors_sent.fetch_add(1, Relaxed);
                crate::util::coverage::inc(&crate::util::coverage::c::ofp_error_sent);
                let enc = self.enc().unwrap_or(Encoder::new(Version::V1_3));
                let b = enc.raw_error(xid, t, c, head);
                self.push_msg(&b);
            }
        }
    }

    fn emit_reply(&mut self, r: OfReply) {
        match r {
            OfReply::Msg(m) => self.send(m.xid, m.body),
            OfReply::Error { xid, error, head } => self.send_error(xid, error, &head),
            OfReply::FlowStats(job) => self.stream = Some(job),
            OfReply::FlowMonitor {
                xid,
                version,
                ids,
                updates,
            } => self.monitor_initial(xid, version, &ids, updates),
        }
    }

    /// Encodes more of a streamed reply while the budget allows, then the
    /// replies that waited behind it.
    fn pump(&mut self) {
        if self.stream.is_none() && self.deferred.is_empty() {
            self.work_now = false;
            return;
        }
        self.step_stream();
    }

    fn step_stream(&mut self) {
        self.work_now = false;
        let Some(enc) = self.enc() else { return };
        let mut steps = 0;
        loop {
            if let Some(job) = self.stream.as_mut() {
                if self.txq.over_budget() {
                    // Resumes when the writer drains (handle_transmitted).
                    return;
                }
                if steps >= STREAM_STEPS {
                    self.work_now = true;
                    return;
                }
                steps += 1;
                let msgs = enc.flow_stats(job, STREAM_MSGS);
                if msgs.is_empty() {
                    self.stream = None;
                } else {
                    msgs.iter().for_each(|m| self.push_msg(m));
                }
                continue;
            }
            match self.deferred.pop_front() {
                Some(r) => self.emit_reply(r),
                None => return,
            }
        }
    }

    fn async_wanted(&self, ev: &AsyncEvent) -> bool {
        let idx = usize::from(self.role == ControllerRole::Slave);
        let (mask, reason) = match ev {
            AsyncEvent::PacketIn { pin, .. } => (self.async_cfg.packet_in_mask[idx], pin.reason),
            AsyncEvent::PortStatus(ps) => (self.async_cfg.port_status_mask[idx], ps.reason),
            AsyncEvent::FlowRemoved(fr) => (self.async_cfg.flow_removed_mask[idx], fr.reason),
            // Monitors are not role-filtered (OVS `ofmonitor_report()`).
            AsyncEvent::FlowChanges(_) => return true,
        };
        reason < 32 && mask & (1 << reason) != 0
    }

    /// Cuts the next frame from the input, if a whole one is there.
    fn next_frame(&mut self) -> Option<Frame> {
        let buf = &self.rx[self.rx_start..];
        match openflow::frame_len(buf) {
            Ok(Some(len)) if buf.len() >= len => {
                let raw = &buf[..len];
                // Before HELLO the version is not known; after it, every
                // message must be in the negotiated one (decode_in refuses
                // others with BAD_VERSION, fatal).
                let msg = match &self.state {
                    State::Up { enc } => openflow::decode_in(enc.version(), raw),
                    _ => openflow::decode_any(raw).map(|(_, m)| m),
                };
                let head = raw[..len.min(ERROR_DATA_LEN)].to_vec();
                self.rx_start += len;
                if self.rx_start == self.rx.len() {
                    self.rx.clear();
                    self.rx_start = 0;
                    if self.rx.capacity() > RX_KEEP {
                        self.rx = Vec::new();
                    }
                }
                Some(Frame { msg, head, len })
            }
            Ok(_) => None,
            Err(_) => {
                // A length below the header size: the stream cannot be
                // resynchronised.
                let head = buf[..buf.len().min(ERROR_DATA_LEN)].to_vec();
                let xid = openflow::header(buf).map(|h| h.xid).unwrap_or(0);
                let len = self.rx.len() - self.rx_start;
                self.rx_start = self.rx.len();
                Some(Frame {
                    msg: Err(DecodeError {
                        xid,
                        error: OfpError::BadLen,
                        fatal: true,
                    }),
                    head,
                    len,
                })
            }
        }
    }

    /// Processes buffered input until something blocks it.
    fn process(&mut self) {
        let mut run: Vec<(OfpMsg, Vec<u8>)> = Vec::new();
        loop {
            if self.is_closed()
                || self.blocker.is_some()
                || self.stream.is_some()
                || !self.deferred.is_empty()
                || self.txq.over_budget()
            {
                break;
            }
            let Some(frame) = self.held.take().or_else(|| self.next_frame()) else {
                break;
            };
            if matches!(self.state, State::Hello { .. }) {
                self.counters.rx_msgs.fetch_add(1, Relaxed);
                self.on_hello(frame);
                continue;
            }
            let msg = match frame.msg {
                Ok(m) => m,
                Err(e) => {
                    if !run.is_empty() {
                        self.held = Some(Frame {
                            msg: Err(e),
                            head: frame.head,
                            len: frame.len,
                        });
                        self.flush_run(&mut run);
                        break;
                    }
                    self.counters.rx_msgs.fetch_add(1, Relaxed);
                    self.counters.decode_errors.fetch_add(1, Relaxed);
                    crate::util::coverage::inc(&crate::util::coverage::c::ofp_decode_error);
                    self.send_error(e.xid, e.error, &frame.head);
                    if e.fatal {
                        self.close(CloseReason::Protocol);
                    }
                    continue;
                }
            };
            let class = classify(&msg.body, &frame.head);
            let refused = class.slave_refused && self.role == ControllerRole::Slave;
            if class.route == Route::Bridge && !refused {
                self.counters.rx_msgs.fetch_add(1, Relaxed);
                let large = reply_may_be_large(&msg.body);
                run.push((msg, frame.head));
                if large || run.len() >= BATCH_MAX {
                    self.flush_run(&mut run);
                    break;
                }
                continue;
            }
            if !run.is_empty() {
                // Answer in order: this one waits for the batch before it.
                self.held = Some(Frame {
                    msg: Ok(msg),
                    head: frame.head,
                    len: frame.len,
                });
                self.flush_run(&mut run);
                break;
            }
            self.counters.rx_msgs.fetch_add(1, Relaxed);
            if refused {
                self.send_error(msg.xid, OfpError::IsSlave, &frame.head);
                continue;
            }
            if class.route == Route::Bundle {
                self.bundle(msg, frame.head, frame.len);
                continue;
            }
            if class.route == Route::Monitor {
                self.monitor_message(msg, frame.head);
                continue;
            }
            self.local(class.route, msg, frame.head);
        }
        if !run.is_empty() {
            self.flush_run(&mut run);
        }
    }

    fn flush_run(&mut self, run: &mut Vec<(OfpMsg, Vec<u8>)>) {
        let Some(version) = self.version() else {
            return;
        };
        let msgs = std::mem::take(run);
        let token = self.next_token;
        self.next_token += 1;
        let requests = msgs
            .iter()
            .map(|(m, h)| (m.xid, h.get(1).copied().unwrap_or(0), h.clone()))
            .collect();
        self.blocker = Some(Blocker::Bridge { token, requests });
        self.events.push_back(Event::Requests {
            token,
            version,
            msgs,
            bundle: None,
        });
    }

    /// The version of a HELLO_FAILED: the lower of the peer's header version
    /// and ours, as OVS `vconn_recv_hello()` answers (so that a peer of an
    /// older version can read it), raised to one we can encode.
    fn hello_error_version(&self, peer: u8) -> Version {
        let ours = self.s.versions.highest().unwrap_or(Version::V1_3);
        let v = Version(peer.min(ours.0));
        if v.is_supported() {
            v
        } else {
            Version::SUPPORTED
                .into_iter()
                .find(|s| s.0 >= v.0)
                .unwrap_or(Version::V1_3)
        }
    }

    fn on_hello(&mut self, frame: Frame) {
        let hv = frame.wire_version();
        let xid = match &frame.msg {
            Ok(m) => m.xid,
            Err(e) => e.xid,
        };
        let versions = match frame.msg {
            Ok(OfpMsg {
                body: Message::Hello { versions },
                ..
            }) => versions,
            Err(_)
                if frame.wire_type() == 0 && frame.head.len() >= openflow::framing::HEADER_LEN =>
            {
                // OVS `ofputil_decode_hello()`: elements it cannot parse are
                // ignored and the versions follow from the header.
                self.counters.hello_unparsed.fetch_add(1, Relaxed);
                tracing::info!(
                    "HELLO with elements we cannot parse: negotiating on header version {hv:#04x}"
                );
                Vec::new()
            }
            _ => {
                // OVS `vcs_recv_hello()` drops a peer whose first message is
                // not a HELLO; we say why first.
                let b = encode::hello_failed(
                    self.hello_error_version(hv),
                    xid,
                    "expected OFPT_HELLO as the first message",
                );
                self.counters.errors_sent.fetch_add(1, Relaxed);
                self.push_msg(&b);
                self.close(CloseReason::NotHello);
                return;
            }
        };
        match openflow::negotiate_among(self.s.versions, hv, &versions) {
            Ok(version) => {
                self.state = State::Up {
                    enc: Encoder::new(version),
                };
                self.events.push_back(Event::Up { version });
            }
            Err(e) => {
                let b = encode::hello_failed(
                    self.hello_error_version(hv),
                    xid,
                    &format!("This bridge allows {}; {e}", self.s.versions),
                );
                self.counters.errors_sent.fetch_add(1, Relaxed);
                crate::util::coverage::inc(&crate::util::coverage::c::ofp_error_sent);
                self.push_msg(&b);
                self.close(CloseReason::Incompatible);
            }
        }
    }

    /// Discards bundles idle for [`BUNDLE_IDLE_TIMEOUT`], each with
    /// OFPBFC_TIMEOUT referring to the message that created it (OVS
    /// `bundle_remove_expired()`).
    fn expire_bundles(&mut self, now: Instant) {
        let expired: Vec<u32> = self
            .bundles
            .iter()
            .filter(|(_, b)| now >= b.used + BUNDLE_IDLE_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(b) = self.remove_bundle(id) {
                self.counters.bundles_expired.fetch_add(1, Relaxed);
                self.send_error(b.first_xid, OfpError::BundleTimeout, &b.first_head);
            }
        }
    }

    fn remove_bundle(&mut self, id: u32) -> Option<Bundle> {
        let b = self.bundles.remove(&id)?;
        self.bundle_bytes.set(self.bundle_bytes.mine() - b.bytes);
        Some(b)
    }

    /// BUNDLE_CONTROL and BUNDLE_ADD_MESSAGE (OF1.4.1 §7.3.9; OVS
    /// `handle_bundle_control()`, `handle_bundle_add()`, `ofproto/bundles.c`):
    /// the connection keeps the bundle and hands its messages to the bridge
    /// only at commit, as one change. Every error that OVS answers with and
    /// then forgets the bundle for (a second OPEN of an id, an add to or a
    /// close of a closed bundle, mismatched flags) forgets it here too.
    fn bundle(&mut self, msg: OfpMsg, head: Vec<u8>, len: usize) {
        let xid = msg.xid;
        let now = self.now;
        match msg.body {
            Message::BundleControl(c) => {
                let reply = |t| {
                    Message::BundleControl(BundleCtrl {
                        bundle_id: c.bundle_id,
                        ctrl_type: t,
                        flags: 0,
                    })
                };
                match c.ctrl_type {
                    BundleCtrlType::OpenRequest => {
                        if self.remove_bundle(c.bundle_id).is_some() {
                            return self.send_error(xid, OfpError::BundleBadId, &head);
                        }
                        if self.bundles.len() >= MAX_BUNDLES {
                            return self.send_error(xid, OfpError::BundleOutOfBundles, &head);
                        }
                        self.bundles.insert(
                            c.bundle_id,
                            Bundle {
                                flags: c.flags,
                                closed: false,
                                msgs: Vec::new(),
                                bytes: 0,
                                used: now,
                                first_xid: xid,
                                first_head: head,
                            },
                        );
                        self.send(xid, reply(BundleCtrlType::OpenReply));
                    }
                    BundleCtrlType::CloseRequest => {
                        let error = match self.bundles.get_mut(&c.bundle_id) {
                            None => Some(OfpError::BundleBadId),
                            Some(b) if b.closed => Some(OfpError::BundleClosed),
                            Some(b) if b.flags != c.flags => Some(OfpError::BundleBadFlags),
                            Some(b) => {
                                b.closed = true;
                                b.used = now;
                                None
                            }
                        };
                        match error {
                            Some(e) => {
                                self.remove_bundle(c.bundle_id);
                                self.send_error(xid, e, &head);
                            }
                            None => self.send(xid, reply(BundleCtrlType::CloseReply)),
                        }
                    }
                    BundleCtrlType::DiscardRequest => match self.remove_bundle(c.bundle_id) {
                        Some(_) => self.send(xid, reply(BundleCtrlType::DiscardReply)),
                        None => self.send_error(xid, OfpError::BundleBadId, &head),
                    },
                    BundleCtrlType::CommitRequest => self.commit(xid, c, head),
                    _ => self.send_error(xid, OfpError::BundleBadType, &head),
                }
            }
            Message::BundleAdd(a) => {
                // OVS bundles FLOW_MOD, GROUP_MOD, PORT_MOD and PACKET_OUT
                // (`ofputil_decode_bundle_add()`); the codec has already
                // refused nested bundles and checked length, version and xid.
                if !matches!(
                    a.message.body,
                    Message::FlowMod(_)
                        | Message::GroupMod(_)
                        | Message::PortMod(_)
                        | Message::PacketOut(_)
                ) {
                    return self.send_error(xid, OfpError::BundleMsgUnsup, &head);
                }
                // What can be checked without the tables is checked as the
                // message is added (OVS `handle_bundle_add()`): such an add
                // fails on its own and leaves the bundle as it was. What
                // depends on the tables (groups, meters, ports, overlaps) is
                // checked at commit against the state the bundle builds, so
                // a bundle may use a group it adds earlier.
                if let Message::FlowMod(fm) = &a.message.body {
                    let table = (fm.command == FlowModCommand::Add
                        && fm.table_id.0 >= TableId::N_TABLES)
                        .then_some(OfpError::BadTableId);
                    if let Some(e) = table.or(match_to_key(&fm.match_).err()) {
                        return self.send_error(xid, e, &head);
                    }
                }
                let error = match self.bundles.get(&a.bundle_id) {
                    Some(b) if b.closed => Some(OfpError::BundleClosed),
                    Some(b) if b.flags != a.flags => Some(OfpError::BundleBadFlags),
                    None if self.bundles.len() >= MAX_BUNDLES => Some(OfpError::BundleOutOfBundles),
                    _ if self.bundle_bytes.mine() + len > MAX_BUNDLE_BYTES
                        || self.bundle_bytes.total() + len > MAX_BRIDGE_BUNDLE_BYTES =>
                    {
                        Some(OfpError::BundleMsgTooMany)
                    }
                    _ => None,
                };
                if let Some(e) = error {
                    self.remove_bundle(a.bundle_id);
                    return self.send_error(xid, e, &head);
                }
                // An add to an unknown bundle opens it (OVS
                // `ofp_bundle_add_message()`).
                let b = self.bundles.entry(a.bundle_id).or_insert_with(|| Bundle {
                    flags: a.flags,
                    closed: false,
                    msgs: Vec::new(),
                    bytes: 0,
                    used: now,
                    first_xid: xid,
                    first_head: head.clone(),
                });
                b.used = now;
                b.bytes += len;
                b.msgs.push((*a.message, head));
                self.bundle_bytes.set(self.bundle_bytes.mine() + len);
            }
            _ => self.send_error(xid, OfpError::BadType, &head),
        }
    }

    /// COMMIT_REQUEST: the bundle is forgotten whatever the outcome; its
    /// messages go to the bridge as one batch that commits or fails whole.
    fn commit(&mut self, xid: u32, c: BundleCtrl, head: Vec<u8>) {
        let Some(b) = self.remove_bundle(c.bundle_id) else {
            return self.send_error(xid, OfpError::BundleBadId, &head);
        };
        if b.flags != c.flags {
            return self.send_error(xid, OfpError::BundleBadFlags, &head);
        }
        // Port changes cannot be undone, so an atomic bundle may not hold one
        // (OVS: "our port mods are not atomic"); the message and the commit
        // both fail.
        if b.flags & BF_ATOMIC != 0 {
            if let Some((m, h)) = b
                .msgs
                .iter()
                .find(|(m, _)| matches!(m.body, Message::PortMod(_)))
            {
                let (mx, mh) = (m.xid, h.clone());
                self.send_error(mx, OfpError::BundleMsgFailed, &mh);
                return self.send_error(xid, OfpError::BundleMsgFailed, &head);
            }
        }
        let Some(version) = self.version() else {
            return;
        };
        self.counters.bundles_committed.fetch_add(1, Relaxed);
        let token = self.next_token;
        self.next_token += 1;
        self.blocker = Some(Blocker::Bridge {
            token,
            requests: vec![(xid, head.get(1).copied().unwrap_or(0), head.clone())],
        });
        self.events.push_back(Event::Requests {
            token,
            version,
            msgs: b.msgs,
            bundle: Some(BundleCommit {
                xid,
                bundle_id: c.bundle_id,
                head,
            }),
        });
    }

    /// The Nicira session messages `ovs-ofctl` sends to an OpenFlow 1.0
    /// switch (OVS `handle_nxt_set_flow_format()`,
    /// `handle_nxt_flow_mod_table_id()`, `handle_nxt_set_packet_in_format()`,
    /// `handle_nxt_set_controller_id()`). NXM flow formats are refused by the
    /// codec already (OFPBRC_EPERM); the Nicira packet-in formats are too,
    /// because we send only standard PACKET_INs, so a controller that asks
    /// for them learns it at once instead of waiting for packet-ins it
    /// cannot parse.
    fn nicira(&mut self, xid: u32, n: NxMsg, head: &[u8]) {
        match n {
            NxMsg::SetFlowFormat(_) => {}
            NxMsg::FlowModTableId(on) => self.flow_mod_table_id = on,
            NxMsg::SetPacketInFormat(0) => {}
            NxMsg::SetPacketInFormat(_) => self.send_error(xid, OfpError::Eperm, head),
            NxMsg::SetControllerId(id) => self.controller_id = id,
        }
    }

    /// Messages the connection answers itself.
    fn local(&mut self, route: Route, msg: OfpMsg, head: Vec<u8>) {
        let xid = msg.xid;
        match route {
            Route::Hello => {}
            // Not reached: bundles and monitors are handled by process().
            Route::Bundle | Route::Monitor => {}
            Route::NotForSwitch => self.send_error(xid, OfpError::BadType, &head),
            // Not reached: bridge messages travel in batches (process()).
            Route::Bridge => {}
            Route::Role => {
                if let Message::RoleRequest(r) = msg.body {
                    let token = self.next_token;
                    self.next_token += 1;
                    self.blocker = Some(Blocker::Role { token, xid, head });
                    self.events.push_back(Event::Role {
                        token,
                        role: r.role,
                        generation_id: r.generation_id,
                    });
                }
            }
            Route::Local => match msg.body {
                Message::EchoRequest(d) => self.send(xid, Message::EchoReply(d)),
                Message::EchoReply(_) => {}
                Message::Error(e) => tracing::info!(
                    "peer sent error type {} code {} (xid {xid:#x})",
                    e.err_type,
                    e.code
                ),
                Message::Nicira(n) => self.nicira(xid, n, &head),
                Message::Experimenter { .. } => {
                    self.send_error(xid, OfpError::BadExperimenter, &head)
                }
                Message::FeaturesRequest => self.send(
                    xid,
                    Message::FeaturesReply(SwitchFeatures {
                        datapath_id: self.s.dpid,
                        n_buffers: 0,
                        n_tables: TableId::N_TABLES,
                        auxiliary_id: 0,
                        capabilities: crate::ofproto::CAPABILITIES,
                        // Sent only in OpenFlow 1.0 replies.
                        ports: Vec::new(),
                    }),
                ),
                Message::GetConfigRequest => {
                    let cfg = self.switch_cfg;
                    self.send(xid, Message::GetConfigReply(cfg));
                }
                Message::SetConfig(cfg) => {
                    // OVS `handle_set_config()`: a slave's fragment handling
                    // is ignored, its miss_send_len applies (it is per
                    // connection).
                    if self.role != ControllerRole::Slave {
                        self.switch_cfg.flags = cfg.flags;
                    }
                    self.switch_cfg.miss_send_len = cfg.miss_send_len;
                }
                Message::GetAsyncRequest => {
                    let a = self.async_cfg;
                    self.send(xid, Message::GetAsyncReply(a));
                }
                Message::SetAsync(a) => self.async_cfg = a,
                // OF1.4+ SET_ASYNC names only the masks it changes.
                Message::SetAsyncUpdate(u) => u.apply(&mut self.async_cfg),
                _ => self.send_error(xid, OfpError::BadType, &head),
            },
        }
    }
}

/// Flow monitors: the glue between [`monitors::Monitors`] (what to report)
/// and the connection's encoder and output budget.
impl OfConn {
    /// A flow monitor request or cancel (classified [`Route::Monitor`]).
    /// The monitors are registered here, before the request leaves for the
    /// bridge (which counts them from then on); the bridge answers with the
    /// rules they cover now ([`OfReply::FlowMonitor`]).
    fn monitor_message(&mut self, msg: OfpMsg, head: Vec<u8>) {
        let xid = msg.xid;
        match msg.body {
            Message::FlowMonitorCancel(id) => {
                if let Err(e) = self.mon.cancel(id) {
                    self.send_error(xid, e, &head);
                }
            }
            Message::MultipartRequest(MultipartRequest {
                flags,
                body: MpRequestBody::FlowMonitor(reqs),
            }) => {
                let added = match self.mon.request(&reqs) {
                    Ok(a) => a,
                    Err(e) => return self.send_error(xid, e, &head),
                };
                let Some(version) = self.version() else {
                    return;
                };
                let token = self.next_token;
                self.next_token += 1;
                self.mon.set_pending(token, added);
                self.blocker = Some(Blocker::Bridge {
                    token,
                    requests: vec![(xid, head.get(1).copied().unwrap_or(0), head.clone())],
                });
                let body = Message::MultipartRequest(MultipartRequest {
                    flags,
                    body: MpRequestBody::FlowMonitor(reqs),
                });
                self.events.push_back(Event::Requests {
                    token,
                    version,
                    msgs: vec![(OfpMsg { xid, body }, head)],
                    bundle: None,
                });
            }
            _ => self.send_error(xid, OfpError::BadType, &head),
        }
    }

    /// Bridge answers that concern monitors: a request's batch (whose
    /// monitors are taken back if the bridge could not take it) and a
    /// refresh, which is consumed here (true).
    fn monitor_replies(&mut self, token: u64, replies: &mut Option<Vec<OfReply>>) -> bool {
        self.mon.batch_done(token, replies.is_some());
        if self.mon.refresh != Some(token) {
            return false;
        }
        self.mon.refresh = None;
        let Some(replies) = replies.take() else {
            self.mon.refresh_failed = true;
            return true;
        };
        for r in replies {
            if let OfReply::FlowMonitor {
                version, updates, ..
            } = r
            {
                self.monitors_resume(version, updates);
            }
        }
        true
    }

    /// The initial reply to a monitor request.
    fn monitor_initial(
        &mut self,
        xid: u32,
        version: u64,
        ids: &[u32],
        ups: Vec<(u64, FlowUpdate)>,
    ) {
        let Some(enc) = self.enc() else { return };
        self.mon.initial(version, ids, &ups);
        let ups = ups.into_iter().map(|(_, u)| u).collect();
        let (out, n) = self.encode_updates(enc, xid, ups);
        self.counters.flow_updates.fetch_add(n as u64, Relaxed);
        out.iter().for_each(|m| self.push_msg(m));
    }

    /// Encodes `ups` as one multipart reply (split as needed); updates the
    /// version cannot express are left out and counted. Returns the
    /// messages and the number of updates in them.
    fn encode_updates(
        &self,
        enc: Encoder,
        xid: u32,
        ups: Vec<FlowUpdate>,
    ) -> (Vec<Vec<u8>>, usize) {
        let body = |v: Vec<FlowUpdate>| {
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MpReplyBody::FlowMonitor(v),
            })
        };
        let mut out = Vec::new();
        let n = ups.len();
        if enc.message(xid, body(ups.clone()), &mut out).is_ok() {
            return (out, n);
        }
        let ok: Vec<FlowUpdate> = ups
            .into_iter()
            .filter(|u| {
                enc.message(xid, body(vec![u.clone()]), &mut Vec::new())
                    .is_ok()
            })
            .collect();
        self.counters
            .flow_updates_unencodable
            .fetch_add((n - ok.len()) as u64, Relaxed);
        let n = ok.len();
        out.clear();
        match enc.message(xid, body(ok), &mut out) {
            Ok(()) => (out, n),
            Err(_) => (Vec::new(), 0),
        }
    }

    /// PAUSED / RESUMED: an update in OpenFlow 1.4+, a message of its own
    /// (Nicira, ONF) before.
    fn send_monitor_state(&mut self, enc: Encoder, paused: bool) {
        let body = if enc.version() >= Version::V1_4 {
            Message::MultipartReply(MultipartReply {
                flags: 0,
                body: MpReplyBody::FlowMonitor(vec![if paused {
                    FlowUpdate::Paused
                } else {
                    FlowUpdate::Resumed
                }]),
            })
        } else if paused {
            Message::FlowMonitorPaused
        } else {
            Message::FlowMonitorResumed
        };
        self.send(0, body);
    }

    fn pause_monitors(&mut self, enc: Encoder) {
        self.mon.paused = true;
        self.counters.monitor_paused.fetch_add(1, Relaxed);
        self.send_monitor_state(enc, true);
    }

    /// Batches of changes the connection manager could not deliver make the
    /// monitors pause (and resynchronise when they resume).
    fn check_lost_changes(&mut self) {
        let lost = self.counters.flow_changes_lost.load(Relaxed);
        if lost == self.mon.lost_seen {
            return;
        }
        self.mon.lost_seen = lost;
        let Some(enc) = self.enc() else { return };
        if self.mon.is_empty() {
            return;
        }
        if self.mon.refresh.is_some() {
            self.mon.overflow();
        } else if !self.mon.paused {
            self.pause_monitors(enc);
        }
    }

    /// Rule changes from the bridge (OVS `ofmonitor_report()` and
    /// `ofmonitor_flush()`).
    fn flow_changes(&mut self, fc: &Arc<FlowChanges>) {
        self.check_lost_changes();
        let Some(enc) = self.enc() else { return };
        if self.mon.is_empty() {
            return;
        }
        self.mon.refresh_failed = false;
        if self.mon.refresh.is_some() {
            return self.mon.hold(fc);
        }
        if self.mon.paused {
            return self.mon.keep_removals(fc);
        }
        let (ups, max_id) = self.mon.report(fc, self.s.conn_id);
        if ups.is_empty() {
            return;
        }
        let (out, n) = self.encode_updates(enc, 0, ups);
        let len: usize = out.iter().map(Vec::len).sum();
        if !self.txq.async_fits(len) {
            self.pause_monitors(enc);
            self.mon.keep_removals(fc);
            return;
        }
        self.mon.sent(max_id);
        self.counters.flow_updates.fetch_add(n as u64, Relaxed);
        out.iter().for_each(|m| self.push_msg(m));
    }

    /// Paused monitors whose queue drained ask the bridge for a refresh
    /// (OVS `ofmonitor_may_resume()`: nothing of theirs left queued; here,
    /// the queue back under a quarter of its budget and nothing else
    /// outstanding).
    fn maybe_resume_monitors(&mut self) {
        if !self.mon.paused
            || self.mon.refresh.is_some()
            || self.mon.refresh_failed
            || self.blocker.is_some()
            || self.stream.is_some()
            || !self.deferred.is_empty()
            || self.txq.queued() > self.txq.budget() / 4
        {
            return;
        }
        let Some(version) = self.version() else {
            return;
        };
        let token = self.next_token;
        self.next_token += 1;
        self.mon.refresh = Some(token);
        self.blocker = Some(Blocker::Bridge {
            token,
            requests: Vec::new(),
        });
        let body = Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MpRequestBody::FlowMonitor(self.mon.refresh_requests()),
        });
        self.events.push_back(Event::Requests {
            token,
            version,
            msgs: vec![(OfpMsg { xid: 0, body }, Vec::new())],
            bundle: None,
        });
    }

    /// The refresh came back (OVS `ofmonitor_resume()`).
    fn monitors_resume(&mut self, version: u64, current: Vec<(u64, FlowUpdate)>) {
        let Some(enc) = self.enc() else { return };
        let (ups, replay) = self.mon.resume(version, current);
        if !ups.is_empty() {
            let (out, n) = self.encode_updates(enc, 0, ups);
            self.counters.flow_updates.fetch_add(n as u64, Relaxed);
            out.iter().for_each(|m| self.push_msg(m));
        }
        let Some(replay) = replay else { return };
        self.counters.monitor_resumed.fetch_add(1, Relaxed);
        self.send_monitor_state(enc, false);
        for fc in replay {
            self.flow_changes(&fc);
        }
    }

    /// Number of flow monitors (for display).
    pub fn n_monitors(&self) -> usize {
        self.mon.len()
    }
}

/// A connection's state for display.
#[derive(Clone, Debug, Serialize)]
pub struct ConnStatus {
    /// HELLO exchange done.
    pub negotiated: bool,
    /// Negotiated version.
    pub version: Option<String>,
    /// Current role.
    pub role: String,
    /// Current miss_send_len.
    pub miss_send_len: u16,
    /// The id the controller gave itself (NXT_SET_CONTROLLER_ID; 0 if none).
    pub controller_id: u16,
    /// Whether the peer enabled table ids in OF1.0 FLOW_MODs
    /// (NXT_FLOW_MOD_TABLE_ID).
    pub flow_mod_table_id: bool,
    /// Seconds since we last heard from the peer (or could not have).
    pub idle_s: f64,
    /// Output queue fill, bytes.
    pub tx_queued_bytes: usize,
    /// Output queue budget, bytes.
    pub tx_budget_bytes: usize,
    /// Input buffered, bytes.
    pub rx_buffered_bytes: usize,
    /// Whether input is being read (false: backpressure).
    pub reading: bool,
    /// Flow monitors registered.
    pub flow_monitors: usize,
    /// Whether the flow monitors are paused (PAUSED sent, RESUMED not yet).
    pub flow_monitors_paused: bool,
    /// Counters.
    #[serde(flatten)]
    pub counters: ConnCountersSnapshot,
}

/// A token bucket (OVS `lib/token-bucket.c`): `rate` tokens per second,
/// at most `burst` saved up; time is passed in. Counted in thousandths of a
/// token so that rates below 1000/s refill every millisecond.
#[derive(Debug)]
struct TokenBucket {
    /// Thousandths of a token added per millisecond (= tokens per second).
    rate: u64,
    /// Most thousandths of a token held.
    depth: u64,
    tokens: u64,
    last: Instant,
}

/// Thousandths of a token per token.
const MILLI: u64 = 1000;

impl TokenBucket {
    /// OVS `pinsched.c: adjust_limits()`: burst defaults to a quarter of the
    /// rate, at least 1.
    fn new(rate: u32, burst: u32, now: Instant) -> TokenBucket {
        let rate = u64::from(rate.max(1));
        let burst = if burst == 0 {
            rate / 4
        } else {
            u64::from(burst)
        }
        .max(1);
        TokenBucket {
            rate,
            depth: burst * MILLI,
            tokens: burst * MILLI,
            last: now,
        }
    }

    /// Takes one token if there is one.
    fn withdraw(&mut self, now: Instant) -> bool {
        let ms = now.saturating_duration_since(self.last).as_millis();
        if ms > 0 {
            let add = u64::try_from(ms)
                .unwrap_or(u64::MAX)
                .saturating_mul(self.rate);
            self.tokens = self.tokens.saturating_add(add).min(self.depth);
            self.last = now;
        }
        if self.tokens >= MILLI {
            self.tokens -= MILLI;
            true
        } else {
            false
        }
    }
}
