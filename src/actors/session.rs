//! One OpenFlow connection (seed 003's `ofconn`/`jsonrpc_session` roles).
//!
//! The session actor owns the protocol state of one connection: version
//! negotiation, echo and inactivity probing, role, asynchronous-message
//! configuration and `miss_send_len`. Bytes never reach it: a reader task splits
//! the stream into frames and decodes them (parsing never touches sockets), and
//! a writer task drains a bounded queue of encoded messages onto the socket
//! (sockets never parse). Requests that concern the switch go to the Bridge in
//! batches; the reader waits for each batch to be handled, so a peer that floods
//! us is slowed by TCP flow control instead of growing a queue.
//!
//! Runs on its bridge's Arbiter.

use crate::actors::metrics::{ActorMeter, MsgName};
use crate::messages::bridge::{OfReply, OfRequests};
use crate::messages::connmgr::*;
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    AsyncConfig, ControllerRole, ErrorMsg, Message, OfpMsg, RoleMsg, SwitchConfig, SwitchFeatures,
};
use crate::openflow::{self, DecodeError};
use crate::types::DatapathId;
use crate::util::coverage::{self, c};
use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, MessageResult, Recipient,
    ResponseActFuture, WrapFuture,
};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Mailbox capacity of a session.
pub const MAILBOX: usize = 256;
/// Encoded messages queued for the socket; beyond this, packet-ins are dropped.
pub const TX_QUEUE: usize = 4096;
/// Frames decoded per batch handed to the session.
const RX_BATCH: usize = 256;

/// Session-level counters, shared with the Connmgr for display.
#[derive(Default, Debug)]
pub struct SessionCounters {
    /// Messages received.
    pub rx_msgs: AtomicU64,
    /// Messages sent.
    pub tx_msgs: AtomicU64,
    /// OFPT_ERRORs sent.
    pub errors_sent: AtomicU64,
    /// Packet-ins sent.
    pub packet_ins: AtomicU64,
    /// Packet-ins dropped (queue full).
    pub packet_ins_dropped: AtomicU64,
}

/// What a session is told at creation.
pub struct SessionParams {
    /// Unique id.
    pub id: u64,
    /// Peer name.
    pub peer: String,
    /// Bridge name (for meters and logs).
    pub bridge_name: String,
    /// Datapath id for FEATURES_REPLY.
    pub dpid: DatapathId,
    /// Where table/port requests go.
    pub bridge: Recipient<OfRequests>,
    /// The bridge's meter (requests are counted against it).
    pub bridge_meter: Arc<ActorMeter>,
    /// The connection manager.
    pub connmgr: Recipient<SessionUp>,
    /// The connection manager (departures).
    pub connmgr_down: Recipient<SessionDown>,
    /// The connection manager (roles).
    pub connmgr_role: Recipient<RequestRole>,
    /// Inactivity probe interval (None = no probing).
    pub probe: Option<Duration>,
    /// True for connections to configured controllers.
    pub is_controller: bool,
    /// Told when the session ends (the reconnect loop waits on it).
    pub on_close: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An OpenFlow session.
pub struct OfSession {
    p: SessionParams,
    meter: Arc<ActorMeter>,
    tx: mpsc::Sender<Vec<u8>>,
    version_ok: bool,
    role: ControllerRole,
    async_cfg: AsyncConfig,
    config: SwitchConfig,
    last_rx: Instant,
    probe_sent: bool,
    counters: Arc<SessionCounters>,
    next_xid: u32,
    reader: Option<Box<dyn AsyncRead + Unpin + Send>>,
    writer: Option<Box<dyn AsyncWrite + Unpin + Send>>,
    rx_q: Option<mpsc::Receiver<Vec<u8>>>,
}

impl OfSession {
    /// Creates a session over a connected stream, split into halves.
    pub fn new(
        p: SessionParams,
        reader: Box<dyn AsyncRead + Unpin + Send>,
        writer: Box<dyn AsyncWrite + Unpin + Send>,
    ) -> OfSession {
        let meter = crate::actors::metrics::registry().meter(
            format!("session:{}:{}", p.bridge_name, p.id),
            "OfSession",
            Some(p.bridge_name.clone()),
            MAILBOX,
        );
        let (tx, rx) = mpsc::channel(TX_QUEUE);
        OfSession {
            p,
            meter,
            tx,
            version_ok: false,
            role: ControllerRole::Equal,
            async_cfg: AsyncConfig::default(),
            config: SwitchConfig {
                flags: 0,
                miss_send_len: 128,
            },
            last_rx: Instant::now(),
            probe_sent: false,
            counters: Arc::new(SessionCounters::default()),
            next_xid: 0x1000_0000,
            reader: Some(reader),
            writer: Some(writer),
            rx_q: Some(rx),
        }
    }

    fn guard<M: MsgName>(&self) -> crate::actors::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn send_msg(&mut self, xid: u32, body: Message) {
        match openflow::encode_to_vec(&OfpMsg { xid, body }) {
            Ok(b) => self.send_bytes(b),
            Err(e) => tracing::warn!("session {}: cannot encode a reply: {e}", self.p.id),
        }
    }

    /// Encodes a bridge reply; a multipart reply may become several messages.
    fn send_reply(&mut self, m: OfpMsg) {
        if let Message::MultipartReply(mp) = &m.body {
            let mut msgs = Vec::new();
            match openflow::encode_multipart_reply_split(m.xid, &mp.body, &mut msgs) {
                Ok(()) => msgs.into_iter().for_each(|b| self.send_bytes(b)),
                Err(e) => {
                    tracing::warn!("session {}: multipart reply: {e}", self.p.id);
                    self.send_error(m.xid, OfpError::MultipartBufferOverflow, &[]);
                }
            }
        } else {
            self.send_msg(m.xid, m.body);
        }
    }

    fn send_bytes(&mut self, b: Vec<u8>) {
        self.counters.tx_msgs.fetch_add(1, Relaxed);
        // Replies and control messages are small and rare compared with the
        // queue size; if the peer stopped reading entirely they are dropped
        // with the same accounting as packet-ins.
        if self.tx.try_send(b).is_err() {
            self.counters.packet_ins_dropped.fetch_add(1, Relaxed);
        }
    }

    fn send_error(&mut self, xid: u32, e: OfpError, head: &[u8]) {
        coverage::inc(&c::ofp_error_sent);
        self.counters.errors_sent.fetch_add(1, Relaxed);
        let b = openflow::encode_error_reply(xid, e, head);
        self.send_bytes(b);
    }

    fn is_slave(&self) -> bool {
        self.role == ControllerRole::Slave
    }

    fn async_wanted(&self, ev: &AsyncEvent) -> bool {
        let idx = if self.is_slave() { 1 } else { 0 };
        let (mask, reason) = match ev {
            AsyncEvent::PacketIn { pin, .. } => (self.async_cfg.packet_in_mask[idx], pin.reason),
            AsyncEvent::PortStatus(ps) => (self.async_cfg.port_status_mask[idx], ps.reason),
            AsyncEvent::FlowRemoved(fr) => (self.async_cfg.flow_removed_mask[idx], fr.reason),
        };
        reason < 32 && mask & (1 << reason) != 0
    }

    /// Answers what the session handles itself; anything else comes back.
    fn local(
        &mut self,
        xid: u32,
        body: Message,
        head: &[u8],
        ctx: &mut Context<Self>,
    ) -> Option<Message> {
        match body {
            Message::Hello { .. } => None,
            Message::EchoRequest(d) => {
                self.send_msg(xid, Message::EchoReply(d));
                None
            }
            Message::EchoReply(_) => None,
            Message::Error(e) => {
                tracing::info!(
                    "session {}: peer sent error type {} code {}",
                    self.p.id,
                    e.err_type,
                    e.code
                );
                None
            }
            // Nicira session messages decode (openflow::NxMsg) but this
            // session does not act on them yet: refused as before.
            Message::Experimenter { .. } | Message::Nicira(_) => {
                self.send_error(xid, OfpError::BadExperimenter, head);
                None
            }
            Message::FeaturesRequest => {
                self.send_msg(
                    xid,
                    Message::FeaturesReply(SwitchFeatures {
                        datapath_id: self.p.dpid,
                        n_buffers: 0,
                        n_tables: crate::types::TableId::N_TABLES,
                        auxiliary_id: 0,
                        // FLOW_STATS | TABLE_STATS | PORT_STATS | GROUP_STATS.
                        capabilities: 0x1 | 0x2 | 0x4 | 0x8,
                        ports: Vec::new(),
                    }),
                );
                None
            }
            Message::GetConfigRequest => {
                let cfg = self.config;
                self.send_msg(xid, Message::GetConfigReply(cfg));
                None
            }
            Message::SetConfig(cfg) => {
                if self.is_slave() {
                    self.send_error(xid, OfpError::IsSlave, head);
                } else {
                    self.config = cfg;
                }
                None
            }
            Message::GetAsyncRequest => {
                let a = self.async_cfg;
                self.send_msg(xid, Message::GetAsyncReply(a));
                None
            }
            Message::SetAsync(a) => {
                self.async_cfg = a;
                None
            }
            Message::RoleRequest(r) => {
                let req = RequestRole {
                    id: self.p.id,
                    role: r.role,
                    generation_id: r.generation_id,
                };
                let cm = self.p.connmgr_role.clone();
                let head = head.to_vec();
                ctx.wait(async move { cm.send(req).await }.into_actor(self).map(
                    move |res, act, _| match res {
                        Ok(Ok((role, gen))) => {
                            if role != ControllerRole::NoChange {
                                act.role = role;
                            }
                            let shown = if role == ControllerRole::NoChange {
                                act.role
                            } else {
                                role
                            };
                            act.send_msg(
                                xid,
                                Message::RoleReply(RoleMsg {
                                    role: shown,
                                    generation_id: gen,
                                }),
                            );
                        }
                        Ok(Err(e)) => act.send_error(xid, e, &head),
                        Err(_) => act.send_error(xid, OfpError::RoleUnsupported, &head),
                    },
                ));
                None
            }
            Message::FlowMod(_)
            | Message::GroupMod(_)
            | Message::PortMod(_)
            | Message::TableMod { .. }
            | Message::MeterMod(_)
            | Message::PacketOut(_)
                if self.is_slave() =>
            {
                self.send_error(xid, OfpError::IsSlave, head);
                None
            }
            // Messages a switch never receives.
            Message::FeaturesReply(_)
            | Message::GetConfigReply(_)
            | Message::PacketIn(_)
            | Message::FlowRemoved(_)
            | Message::PortStatus(_)
            | Message::MultipartReply(_)
            | Message::BarrierReply
            | Message::QueueGetConfigReply { .. }
            | Message::RoleReply(_)
            | Message::GetAsyncReply(_) => {
                self.send_error(xid, OfpError::BadType, head);
                None
            }
            other => Some(other),
        }
    }

    fn start_io(&mut self, ctx: &mut Context<Self>) {
        let me = ctx.address();
        // Writer: drains the queue, coalescing what is ready into one write.
        if let (Some(mut w), Some(mut rx)) = (self.writer.take(), self.rx_q.take()) {
            actix::spawn(async move {
                let mut buf = Vec::with_capacity(64 * 1024);
                while let Some(first) = rx.recv().await {
                    buf.clear();
                    buf.extend_from_slice(&first);
                    while buf.len() < 256 * 1024 {
                        match rx.try_recv() {
                            Ok(more) => buf.extend_from_slice(&more),
                            Err(_) => break,
                        }
                    }
                    if w.write_all(&buf).await.is_err() {
                        break;
                    }
                }
                let _ = w.shutdown().await;
            });
        }
        // Reader: frames → decode → batches to the session, waiting for each.
        if let Some(mut r) = self.reader.take() {
            let me2 = me.clone();
            actix::spawn(async move {
                let mut buf: Vec<u8> = Vec::with_capacity(256 * 1024);
                let mut chunk = vec![0u8; 128 * 1024];
                let why = loop {
                    let n = match r.read(&mut chunk).await {
                        Ok(0) => break "connection closed by peer".to_string(),
                        Ok(n) => n,
                        Err(e) => break format!("read error: {e}"),
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let mut frames = Vec::new();
                    let mut off = 0;
                    let mut fatal = None;
                    loop {
                        match openflow::frame_len(&buf[off..]) {
                            Ok(Some(len)) if buf.len() - off >= len => {
                                let raw = &buf[off..off + len];
                                let msg = openflow::decode(raw);
                                let head = raw[..raw.len().min(64)].to_vec();
                                off += len;
                                frames.push(InFrame { msg, head });
                                if frames.len() >= RX_BATCH {
                                    let batch = std::mem::take(&mut frames);
                                    if me2.send(Inbound(batch)).await.is_err() {
                                        fatal = Some("session gone".to_string());
                                        break;
                                    }
                                }
                            }
                            Ok(_) => break,
                            Err(e) => {
                                // A length below the header size: the stream
                                // cannot be resynchronised. Report and close.
                                let head = buf[off..buf.len().min(off + 64)].to_vec();
                                frames.push(InFrame {
                                    msg: Err(DecodeError {
                                        xid: openflow::header(&buf[off..])
                                            .map(|h| h.xid)
                                            .unwrap_or(0),
                                        error: OfpError::BadLen,
                                        fatal: true,
                                    }),
                                    head,
                                });
                                fatal = Some(format!("bad framing: {e}"));
                                break;
                            }
                        }
                    }
                    buf.drain(..off);
                    if !frames.is_empty() && me2.send(Inbound(frames)).await.is_err() {
                        break "session gone".to_string();
                    }
                    if let Some(f) = fatal {
                        break f;
                    }
                };
                let _ = me2.send(Closed(why)).await;
            });
        }
    }
}

impl Actor for OfSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        let mut hello = Vec::new();
        openflow::encode_hello(0, &mut hello);
        self.send_bytes(hello);
        self.start_io(ctx);
        if let Some(probe) = self.p.probe {
            ctx.run_interval(probe.max(Duration::from_millis(100)) / 2, move |a, ctx| {
                let idle = a.last_rx.elapsed();
                if idle >= probe * 2 && a.probe_sent {
                    tracing::info!(
                        "session {}: no answer to inactivity probe, disconnecting",
                        a.p.id
                    );
                    ctx.stop();
                } else if idle >= probe && !a.probe_sent {
                    a.probe_sent = true;
                    let xid = a.next_xid;
                    a.next_xid = a.next_xid.wrapping_add(1);
                    a.send_msg(xid, Message::EchoRequest(Vec::new()));
                }
            });
        }
        // A peer that never says HELLO is dropped.
        ctx.run_later(Duration::from_secs(10), |a, ctx| {
            if !a.version_ok {
                tracing::info!("session {}: no HELLO within 10 s", a.p.id);
                ctx.stop();
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        coverage::inc(&c::ofconn_closed);
        self.meter.mark_dead();
        crate::actors::metrics::registry().remove(&self.meter.id);
        let _ = self.p.connmgr_down.try_send(SessionDown { id: self.p.id });
        if let Some(tx) = self.p.on_close.take() {
            let _ = tx.send(());
        }
    }
}

/// One step of an inbound batch, in arrival order.
enum Step {
    /// A run of bridge messages: index into the batches sent to the bridge.
    Bridge(usize),
    /// A message the session answers itself.
    Local(u32, Message, Vec<u8>),
    /// A message that failed to decode.
    Error(u32, OfpError, Vec<u8>),
}

impl OfSession {
    fn for_bridge(&self, body: &Message) -> bool {
        let session_only = matches!(
            body,
            Message::Hello { .. }
                | Message::EchoRequest(_)
                | Message::EchoReply(_)
                | Message::Error(_)
                | Message::Experimenter { .. }
                | Message::Nicira(_)
                | Message::FeaturesRequest
                | Message::GetConfigRequest
                | Message::SetConfig(_)
                | Message::GetAsyncRequest
                | Message::SetAsync(_)
                | Message::RoleRequest(_)
                | Message::FeaturesReply(_)
                | Message::GetConfigReply(_)
                | Message::PacketIn(_)
                | Message::FlowRemoved(_)
                | Message::PortStatus(_)
                | Message::MultipartReply(_)
                | Message::BarrierReply
                | Message::QueueGetConfigReply { .. }
                | Message::RoleReply(_)
                | Message::GetAsyncReply(_)
        );
        let modifies = matches!(
            body,
            Message::FlowMod(_)
                | Message::GroupMod(_)
                | Message::PortMod(_)
                | Message::TableMod { .. }
                | Message::MeterMod(_)
                | Message::PacketOut(_)
        );
        !(session_only || (modifies && self.is_slave()))
    }

    /// Handles the version handshake. Returns false when the connection must close.
    fn hello(&mut self, msg: &OfpMsg, head: &[u8], ctx: &mut Context<Self>) -> bool {
        let Message::Hello { versions } = &msg.body else {
            // Anything before HELLO: we insist on HELLO first.
            self.send_error(msg.xid, OfpError::BadType, head);
            return true;
        };
        let hv = head.first().copied().unwrap_or(0);
        match openflow::negotiate(hv, versions) {
            Ok(_) => {
                self.version_ok = true;
                let up = SessionUp {
                    id: self.p.id,
                    addr: ctx.address(),
                    peer: self.p.peer.clone(),
                    is_controller: self.p.is_controller,
                };
                let _ = self.p.connmgr.try_send(up);
                true
            }
            Err(_) => {
                coverage::inc(&c::ofp_error_sent);
                self.send_msg(
                    msg.xid,
                    Message::Error(ErrorMsg {
                        err_type: 0,
                        code: 0,
                        data: b"We support only OpenFlow 1.3 (version 0x04)".to_vec(),
                    }),
                );
                false
            }
        }
    }
}

impl Handler<Inbound> for OfSession {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, m: Inbound, ctx: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Inbound>();
        self.last_rx = Instant::now();
        self.probe_sent = false;
        // Local messages are answered by the session; consecutive bridge
        // messages travel as one batch. Replies go out in arrival order because
        // the whole batch is handled before the reader delivers the next one.
        let mut steps: Vec<Step> = Vec::new();
        let mut batches: Vec<Vec<(OfpMsg, Vec<u8>)>> = Vec::new();
        let mut run: Vec<(OfpMsg, Vec<u8>)> = Vec::new();
        let mut close = false;
        for f in m.0 {
            self.counters.rx_msgs.fetch_add(1, Relaxed);
            let msg = match f.msg {
                Err(e) => {
                    coverage::inc(&c::ofp_decode_error);
                    if !run.is_empty() {
                        steps.push(Step::Bridge(batches.len()));
                        batches.push(std::mem::take(&mut run));
                    }
                    steps.push(Step::Error(e.xid, e.error, f.head));
                    if e.fatal {
                        close = true;
                        break;
                    }
                    continue;
                }
                Ok(msg) => msg,
            };
            if !self.version_ok {
                if !self.hello(&msg, &f.head, ctx) {
                    close = true;
                    break;
                }
                continue;
            }
            if self.for_bridge(&msg.body) {
                run.push((msg, f.head));
            } else {
                if !run.is_empty() {
                    steps.push(Step::Bridge(batches.len()));
                    batches.push(std::mem::take(&mut run));
                }
                steps.push(Step::Local(msg.xid, msg.body, f.head));
            }
        }
        if !run.is_empty() {
            steps.push(Step::Bridge(batches.len()));
            batches.push(run);
        }
        let bridge = self.p.bridge.clone();
        let bmeter = self.p.bridge_meter.clone();
        let conn = self.p.id;
        Box::pin(
            async move {
                let mut results: Vec<Vec<OfReply>> = Vec::with_capacity(batches.len());
                for msgs in batches {
                    bmeter.enqueued(OfRequests::NAME);
                    let r = bridge
                        .send(OfRequests {
                            conn,
                            version: openflow::Version::V1_3,
                            msgs,
                        })
                        .await;
                    results.push(r.unwrap_or_default());
                }
                results
            }
            .into_actor(self)
            .map(move |mut results, act, ctx| {
                let mut items = VecDeque::new();
                for step in steps {
                    match step {
                        Step::Bridge(i) => {
                            if let Some(replies) = results.get_mut(i) {
                                items.extend(replies.drain(..).map(Item::Reply));
                            }
                        }
                        other => items.push_back(Item::Step(other)),
                    }
                }
                act.answer(items, close, ctx);
            }),
        )
    }
}

/// One answer to write, in arrival order.
enum Item {
    /// From the Bridge.
    Reply(OfReply),
    /// A local message or decode error still to be answered.
    Step(Step),
}

/// Encoded flow-stats messages handed to the writer per step of a streamed
/// reply (then the writer gets to run: the peer parses while we encode).
const STREAM_MSGS: usize = 2;

impl OfSession {
    /// Writes the answers in order. A flow-stats reply is streamed: the actor
    /// waits (handling nothing else, so later answers cannot overtake it)
    /// while the reply is encoded a few messages at a time, each handed to the
    /// writer with backpressure; then the remaining answers follow.
    fn answer(&mut self, mut items: VecDeque<Item>, close: bool, ctx: &mut Context<Self>) {
        while let Some(item) = items.pop_front() {
            match item {
                Item::Reply(OfReply::Msg(m)) => self.send_reply(m),
                Item::Reply(OfReply::Error { xid, error, head }) => {
                    self.send_error(xid, error, &head)
                }
                Item::Reply(OfReply::FlowStats(mut job)) => {
                    let tx = self.tx.clone();
                    let counters = self.counters.clone();
                    let stream = async move {
                        loop {
                            let msgs = job.next_chunk(STREAM_MSGS);
                            if msgs.is_empty() {
                                break;
                            }
                            for b in msgs {
                                counters.tx_msgs.fetch_add(1, Relaxed);
                                if tx.send(b).await.is_err() {
                                    // The writer is gone (connection closed).
                                    return;
                                }
                            }
                            tokio::task::yield_now().await;
                        }
                    };
                    ctx.wait(
                        stream
                            .into_actor(self)
                            .map(move |_, act, ctx| act.answer(items, close, ctx)),
                    );
                    return;
                }
                Item::Step(Step::Local(xid, body, head)) => {
                    let _ = self.local(xid, body, &head, ctx);
                }
                Item::Step(Step::Error(xid, e, head)) => self.send_error(xid, e, &head),
                Item::Step(Step::Bridge(_)) => {}
            }
        }
        if close {
            // Let the writer flush the error first.
            ctx.run_later(Duration::from_millis(50), |_, ctx| ctx.stop());
        }
    }
}

impl Handler<Closed> for OfSession {
    type Result = ();
    fn handle(&mut self, m: Closed, ctx: &mut Context<Self>) {
        let _g = self.guard::<Closed>();
        tracing::info!("session {} ({}): {}", self.p.id, self.p.peer, m.0);
        ctx.stop();
    }
}

impl Handler<Disconnect> for OfSession {
    type Result = ();
    fn handle(&mut self, _: Disconnect, ctx: &mut Context<Self>) {
        let _g = self.guard::<Disconnect>();
        ctx.stop();
    }
}

impl Handler<SetRole> for OfSession {
    type Result = ();
    fn handle(&mut self, m: SetRole, _: &mut Context<Self>) {
        let _g = self.guard::<SetRole>();
        self.role = m.0;
    }
}

impl Handler<Deliver> for OfSession {
    type Result = ();
    fn handle(&mut self, m: Deliver, _: &mut Context<Self>) {
        let _g = self.guard::<Deliver>();
        if !self.version_ok || !self.async_wanted(&m.0) {
            return;
        }
        let xid = 0;
        match m.0 {
            AsyncEvent::PacketIn { pin, max_len } => {
                let limit = if pin.reason == 0 {
                    max_len.min(self.config.miss_send_len)
                } else {
                    max_len
                } as usize;
                let mut p = (*pin).clone();
                if limit != 0xffff && p.data.len() > limit {
                    p.data.truncate(limit);
                }
                match openflow::encode_to_vec(&OfpMsg {
                    xid,
                    body: Message::PacketIn(p),
                }) {
                    Ok(b) => {
                        if self.tx.try_send(b).is_ok() {
                            self.counters.packet_ins.fetch_add(1, Relaxed);
                            self.counters.tx_msgs.fetch_add(1, Relaxed);
                        } else {
                            self.counters.packet_ins_dropped.fetch_add(1, Relaxed);
                            coverage::inc(&c::packet_in_dropped);
                        }
                    }
                    Err(e) => tracing::debug!("packet-in not encodable: {e}"),
                }
            }
            AsyncEvent::PortStatus(ps) => self.send_msg(xid, Message::PortStatus((*ps).clone())),
            AsyncEvent::FlowRemoved(fr) => self.send_msg(xid, Message::FlowRemoved((*fr).clone())),
        }
    }
}

impl Handler<SessionReport> for OfSession {
    type Result = MessageResult<SessionReport>;
    fn handle(&mut self, _: SessionReport, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<SessionReport>();
        MessageResult(json!({
            "id": self.p.id,
            "peer": self.p.peer,
            "controller": self.p.is_controller,
            "negotiated": self.version_ok,
            "role": format!("{:?}", self.role).to_lowercase(),
            "miss_send_len": self.config.miss_send_len,
            "idle_s": self.last_rx.elapsed().as_secs_f64(),
            "rx_msgs": self.counters.rx_msgs.load(Relaxed),
            "tx_msgs": self.counters.tx_msgs.load(Relaxed),
            "errors_sent": self.counters.errors_sent.load(Relaxed),
            "packet_ins": self.counters.packet_ins.load(Relaxed),
            "packet_ins_dropped": self.counters.packet_ins_dropped.load(Relaxed),
            "tx_queue_free": self.tx.capacity(),
        }))
    }
}
