//! One OpenFlow connection: the actor shell around the sans-I/O core
//! [`crate::ofproto::ofconn::OfConn`].
//!
//! The shell only moves things: a reader task reads bytes from the socket and
//! hands them over (waiting for each hand-over, and pausing when the core no
//! longer wants input — that is the backpressure), a writer task writes the
//! segments the core produces and reports each one written, one timer is kept
//! at the core's next deadline, and the core's events become messages (batches
//! to the Bridge, role requests and arrivals/departures to the Connmgr).
//! Protocol decisions are all in the core.
//!
//! When the session stops, both tasks are aborted, so both halves of the
//! socket are dropped and the file descriptor is released at once, whatever
//! the peer does.
//!
//! Runs on its bridge's Arbiter.

use crate::messages::bridge::OfRequests;
use crate::messages::connmgr::*;
use crate::ofproto::ofconn::{CloseReason, ConnCounters, Event, OfConn, RoleAnswer, Settings};
use crate::util::coverage::{self, c};
use crate::util::metrics::{ActorMeter, MsgName};
use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, MessageResult, Recipient,
    SpawnHandle, WrapFuture,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, Notify};

/// Mailbox capacity of a session.
pub const MAILBOX: usize = 256;
/// Smallest read buffer of the reader task.
const READ_MIN: usize = 4 * 1024;
/// Largest read buffer (grown while reads fill it, shrunk when they do not).
const READ_MAX: usize = 64 * 1024;
/// How long a closing session waits for its last bytes (an error explaining
/// the close) to be written before it drops the socket anyway.
const LINGER: Duration = Duration::from_millis(500);

/// A session whose output queue reached this many bytes returns the
/// allocator's free memory to the kernel when it ends.
const TRIM_AFTER: usize = 1 << 20;
/// Delay before the trim (departures meanwhile share it).
const TRIM_DELAY: Duration = Duration::from_millis(500);

/// Boxed halves of a connected stream.
pub type ReadHalf = Box<dyn AsyncRead + Unpin + Send>;
/// See [`ReadHalf`].
pub type WriteHalf = Box<dyn AsyncWrite + Unpin + Send>;

/// What a session is told at creation.
pub struct SessionParams {
    /// Unique id.
    pub id: u64,
    /// Peer name.
    pub peer: String,
    /// Bridge name (for meters and logs).
    pub bridge_name: String,
    /// Protocol settings (datapath id, probe, budget, timeouts).
    pub settings: Settings,
    /// Where table/port requests go.
    pub bridge: Recipient<OfRequests>,
    /// The bridge's meter (requests are counted against it).
    pub bridge_meter: Arc<ActorMeter>,
    /// The connection manager (arrival).
    pub connmgr_up: Recipient<SessionUp>,
    /// The connection manager (departures).
    pub connmgr_down: Recipient<SessionDown>,
    /// The connection manager (roles).
    pub connmgr_role: Recipient<RequestRole>,
    /// True for connections to configured controllers.
    pub is_controller: bool,
    /// Told when the session ends (the reconnect loop waits on it).
    pub on_close: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An OpenFlow session.
pub struct OfSession {
    p: SessionParams,
    meter: Arc<ActorMeter>,
    core: OfConn,
    counters: Arc<ConnCounters>,
    /// Segments for the writer task (bounded in bytes by the core).
    to_writer: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Wakes the reader after it was told to pause.
    resume: Arc<Notify>,
    reader_paused: bool,
    reader: Option<ReadHalf>,
    writer: Option<(WriteHalf, mpsc::UnboundedReceiver<Vec<u8>>)>,
    tasks: Vec<actix_rt::task::JoinHandle<()>>,
    timer: Option<(Instant, SpawnHandle)>,
    close_reason: Option<CloseReason>,
    /// Largest output queue seen, bytes.
    tx_peak: usize,
}

impl OfSession {
    /// Creates a session over a connected stream, split into halves.
    pub fn new(p: SessionParams, reader: ReadHalf, writer: WriteHalf) -> OfSession {
        let meter = crate::util::metrics::registry().meter(
            format!("session:{}:{}", p.bridge_name, p.id),
            "OfSession",
            Some(p.bridge_name.clone()),
            MAILBOX,
        );
        let core = OfConn::new(p.settings.clone(), Instant::now());
        let counters = core.counters();
        let (tx, rx) = mpsc::unbounded_channel();
        OfSession {
            p,
            meter,
            core,
            counters,
            to_writer: Some(tx),
            resume: Arc::new(Notify::new()),
            reader_paused: false,
            reader: Some(reader),
            writer: Some((writer, rx)),
            tasks: Vec::new(),
            timer: None,
            close_reason: None,
            tx_peak: 0,
        }
    }

    /// The session's counters (the Connmgr keeps them for its totals).
    pub fn counters(&self) -> Arc<ConnCounters> {
        self.counters.clone()
    }

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    /// Carries out what the core asks for after every input.
    fn drive(&mut self, ctx: &mut Context<Self>) {
        self.tx_peak = self.tx_peak.max(self.core.tx_queued());
        while let Some(seg) = self.core.poll_transmit() {
            if let Some(tx) = &self.to_writer {
                if tx.send(seg).is_err() {
                    // The writer is gone; the WriterEnded message stops us.
                    self.to_writer = None;
                }
            }
        }
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::Up { version } => {
                    let _ = self.p.connmgr_up.try_send(SessionUp {
                        id: self.p.id,
                        version,
                    });
                }
                Event::Requests {
                    token,
                    version,
                    msgs,
                    bundle,
                } => {
                    let bridge = self.p.bridge.clone();
                    self.p.bridge_meter.enqueued(OfRequests::NAME);
                    let req = OfRequests {
                        conn: self.p.id,
                        version,
                        msgs,
                        bundle,
                    };
                    ctx.spawn(async move { bridge.send(req).await.ok() }.into_actor(self).map(
                        move |replies, act, ctx| {
                            if replies.is_none() {
                                tracing::warn!(
                                    "session {}: the bridge did not take a batch; answering with errors",
                                    act.p.id
                                );
                            }
                            act.core.handle_replies(token, replies, Instant::now());
                            act.drive(ctx);
                        },
                    ));
                }
                Event::Role {
                    token,
                    role,
                    generation_id,
                } => {
                    let cm = self.p.connmgr_role.clone();
                    let req = RequestRole {
                        id: self.p.id,
                        role,
                        generation_id,
                    };
                    ctx.spawn(async move { cm.send(req).await }.into_actor(self).map(
                        move |res, act, ctx| {
                            let answer = match res {
                                Ok(Ok((role, gen))) => RoleAnswer::Granted(role, gen),
                                Ok(Err(e)) => RoleAnswer::Refused(e),
                                Err(_) => RoleAnswer::Unavailable,
                            };
                            act.core.handle_role(token, answer, Instant::now());
                            act.drive(ctx);
                        },
                    ));
                }
                Event::Close(reason) => self.begin_close(reason, ctx),
            }
        }
        if self.reader_paused && self.core.wants_input() {
            self.reader_paused = false;
            self.resume.notify_one();
        }
        self.arm_timer(ctx);
    }

    fn arm_timer(&mut self, ctx: &mut Context<Self>) {
        let next = self.core.poll_timeout();
        if self.timer.as_ref().map(|(t, _)| *t) == next {
            return;
        }
        if let Some((_, h)) = self.timer.take() {
            ctx.cancel_future(h);
        }
        if let Some(at) = next {
            let wait = at.saturating_duration_since(Instant::now());
            let h = ctx.run_later(wait, |act, ctx| {
                act.timer = None;
                act.core.handle_timeout(Instant::now());
                act.drive(ctx);
            });
            self.timer = Some((at, h));
        }
    }

    /// The core closed the connection: stop reading at once, let the writer
    /// flush what is queued (an error explaining the close), then stop.
    fn begin_close(&mut self, reason: CloseReason, ctx: &mut Context<Self>) {
        if self.close_reason.is_some() {
            return;
        }
        tracing::info!("session {} ({}): {reason}", self.p.id, self.p.peer);
        self.close_reason = Some(reason);
        // The reader is the first task.
        if let Some(r) = self.tasks.first() {
            r.abort();
        }
        // Dropping the sender ends the writer after the last segment.
        self.to_writer = None;
        ctx.run_later(LINGER, |_, ctx| ctx.stop());
    }

    fn start_io(&mut self, ctx: &mut Context<Self>) {
        let me = ctx.address();
        // Reader: bytes → session, waiting for each hand-over; pauses when
        // the session says so. The buffer grows while reads fill it and
        // shrinks back when the peer is quiet, so an idle session holds 4 KiB.
        if let Some(mut r) = self.reader.take() {
            let me2 = me.clone();
            let resume = self.resume.clone();
            self.tasks.push(actix::spawn(async move {
                let mut size = READ_MIN;
                let mut buf = vec![0u8; size];
                let why = loop {
                    let n = match r.read(&mut buf).await {
                        Ok(0) => break None,
                        Ok(n) => n,
                        Err(e) => break Some(e.to_string()),
                    };
                    let data = buf[..n].to_vec();
                    let grow = n == size && size < READ_MAX;
                    let shrink = n < size / 4 && size > READ_MIN;
                    if grow || shrink {
                        size = if grow { size * 2 } else { size / 2 };
                        buf = vec![0u8; size];
                    }
                    match me2.send(Inbound(data)).await {
                        Ok(true) => {}
                        Ok(false) => {
                            // Free the buffer while paused: a peer we do not
                            // read from costs no input memory.
                            drop(std::mem::take(&mut buf));
                            resume.notified().await;
                            size = READ_MIN;
                            buf = vec![0u8; size];
                        }
                        Err(_) => return,
                    }
                };
                let _ = me2.send(ReadEnded(why)).await;
            }));
        }
        // Writer: segments → socket, each acknowledged when written.
        if let Some((mut w, mut rx)) = self.writer.take() {
            self.tasks.push(actix::spawn(async move {
                let mut err = None;
                while let Some(seg) = rx.recv().await {
                    if let Err(e) = w.write_all(&seg).await {
                        err = Some(e.to_string());
                        break;
                    }
                    me.do_send(Written(seg.len()));
                }
                if err.is_none() {
                    let _ = w.shutdown().await;
                }
                drop(w);
                me.do_send(WriterEnded(err));
            }));
        }
    }
}

impl Actor for OfSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        self.start_io(ctx);
        self.drive(ctx);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        coverage::inc(&c::ofconn_closed);
        // Both halves go now: the fd is released whatever the peer does.
        for t in self.tasks.drain(..) {
            t.abort();
        }
        self.meter.mark_dead();
        crate::util::metrics::registry().remove(&self.meter.id);
        let reason = self
            .close_reason
            .take()
            .unwrap_or(CloseReason::Requested("session stopped"));
        let _ = self.p.connmgr_down.try_send(SessionDown {
            id: self.p.id,
            reason,
        });
        if let Some(tx) = self.p.on_close.take() {
            let _ = tx.send(());
        }
        if self.tx_peak >= TRIM_AFTER {
            trim_heap_soon();
        }
    }
}

/// Gives freed queue memory back to the kernel shortly after a large
/// session ends: departures within [`TRIM_DELAY`] share one trim, so a peer
/// that connects, floods and leaves in a loop cannot make the daemon trim
/// continuously.
fn trim_heap_soon() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    static SCHEDULED: AtomicBool = AtomicBool::new(false);
    if !SCHEDULED.swap(true, Relaxed) {
        actix::spawn(async {
            tokio::time::sleep(TRIM_DELAY).await;
            SCHEDULED.store(false, Relaxed);
            crate::netdev::trim_heap();
        });
    }
}

impl Handler<Inbound> for OfSession {
    type Result = bool;

    fn handle(&mut self, m: Inbound, ctx: &mut Context<Self>) -> bool {
        let _g = self.guard::<Inbound>();
        self.core.handle_bytes(&m.0, Instant::now());
        self.drive(ctx);
        let go = self.core.wants_input();
        if !go && !self.core.is_closed() {
            self.reader_paused = true;
        }
        go
    }
}

impl Handler<ReadEnded> for OfSession {
    type Result = ();
    fn handle(&mut self, m: ReadEnded, ctx: &mut Context<Self>) {
        let _g = self.guard::<ReadEnded>();
        self.core.handle_eof(m.0, Instant::now());
        self.drive(ctx);
    }
}

impl Handler<Written> for OfSession {
    type Result = ();
    fn handle(&mut self, m: Written, ctx: &mut Context<Self>) {
        let _g = self.guard::<Written>();
        self.core.handle_transmitted(m.0, Instant::now());
        self.drive(ctx);
    }
}

impl Handler<WriterEnded> for OfSession {
    type Result = ();
    fn handle(&mut self, m: WriterEnded, ctx: &mut Context<Self>) {
        let _g = self.guard::<WriterEnded>();
        if let Some(e) = m.0 {
            self.core
                .close(CloseReason::ReadError(format!("write error: {e}")));
            self.drive(ctx);
        }
        if self.close_reason.is_some() {
            // Flushed: no need to linger.
            ctx.stop();
        }
    }
}

impl Handler<Disconnect> for OfSession {
    type Result = ();
    fn handle(&mut self, m: Disconnect, ctx: &mut Context<Self>) {
        let _g = self.guard::<Disconnect>();
        self.core.close(CloseReason::Requested(m.0));
        self.drive(ctx);
    }
}

impl Handler<SetRole> for OfSession {
    type Result = ();
    fn handle(&mut self, m: SetRole, _: &mut Context<Self>) {
        let _g = self.guard::<SetRole>();
        self.core.set_role(m.0);
    }
}

impl Handler<Deliver> for OfSession {
    type Result = ();
    fn handle(&mut self, m: Deliver, ctx: &mut Context<Self>) {
        let _g = self.guard::<Deliver>();
        self.core.handle_async(&m.0, Instant::now());
        self.drive(ctx);
    }
}

impl Handler<SessionReport> for OfSession {
    type Result = MessageResult<SessionReport>;
    fn handle(&mut self, _: SessionReport, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<SessionReport>();
        let mut v = serde_json::to_value(self.core.status(Instant::now())).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), json!(self.p.id));
            o.insert("peer".into(), json!(self.p.peer));
            o.insert("controller".into(), json!(self.p.is_controller));
        }
        MessageResult(v)
    }
}
