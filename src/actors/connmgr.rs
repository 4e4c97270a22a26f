//! The connection manager of one bridge (seed 003's `connmgr`): passive
//! listeners (`ptcp:`, `punix:`), active controller connections kept up by the
//! reconnect state machine, controller roles, and fan-out of asynchronous
//! messages (packet-in, port status, flow removed) to every session that wants
//! them.
//!
//! Ownership: the Connmgr owns the listener and controller tasks and the table
//! of sessions; each session owns its socket. Packet-ins arrive through a
//! bounded channel (a slow controller loses packet-ins, counted, never memory).
//! Runs on its bridge's Arbiter.

pub mod reconnect;

use crate::actors::metrics::{ActorMeter, MsgName};
use crate::actors::session::{OfSession, SessionParams};
use crate::messages::bridge::OfRequests;
use crate::messages::connmgr::*;
use crate::openflow::error::OfpError;
use crate::openflow::message::ControllerRole;
use crate::types::DatapathId;
use crate::util::coverage::{self, c};
use crate::util::time::now_ms;
use actix::prelude::*;
use parking_lot::Mutex;
use reconnect::Reconnect;
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of a Connmgr.
pub const MAILBOX: usize = 256;
/// Capacity of the packet-in channel into the Connmgr.
pub const PACKET_IN_QUEUE: usize = 1024;

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

struct SessionEntry {
    addr: Addr<OfSession>,
    peer: String,
    is_controller: bool,
    role: ControllerRole,
}

struct Listener {
    name: String,
    task: actix_rt::task::JoinHandle<()>,
    unix_path: Option<PathBuf>,
}

struct Controller {
    task: actix_rt::task::JoinHandle<()>,
    fsm: Arc<Mutex<Reconnect>>,
}

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
}

/// The connection manager.
pub struct Connmgr {
    bridge_name: String,
    dpid: DatapathId,
    bridge: Recipient<OfRequests>,
    bridge_meter: Arc<ActorMeter>,
    fail_open_to: Recipient<FailOpen>,
    meter: Arc<ActorMeter>,
    cfg: Option<SetConnections>,
    listeners: Vec<Listener>,
    controllers: HashMap<String, Controller>,
    sessions: HashMap<u64, SessionEntry>,
    generation_id: Option<u64>,
    packet_ins: Option<tokio::sync::mpsc::Receiver<AsyncEvent>>,
    fail_open: bool,
    controller_lost_since: Option<u64>,
    packet_ins_delivered: u64,
}

impl Connmgr {
    /// A connection manager with no connections yet (send [`SetConnections`]).
    pub fn new(p: ConnmgrParams) -> Connmgr {
        let meter = crate::actors::metrics::registry().meter(
            format!("connmgr:{}", p.bridge_name),
            "Connmgr",
            Some(p.bridge_name.clone()),
            MAILBOX,
        );
        Connmgr {
            bridge_name: p.bridge_name,
            dpid: p.dpid,
            bridge: p.bridge,
            bridge_meter: p.bridge_meter,
            fail_open_to: p.fail_open,
            meter,
            cfg: None,
            listeners: Vec::new(),
            controllers: HashMap::new(),
            sessions: HashMap::new(),
            generation_id: None,
            packet_ins: Some(p.packet_ins),
            fail_open: false,
            controller_lost_since: Some(now_ms()),
            packet_ins_delivered: 0,
        }
    }

    /// The meter (for the bridge's records).
    pub fn meter(&self) -> Arc<ActorMeter> {
        self.meter.clone()
    }

    fn guard<M: MsgName>(&self) -> crate::actors::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn start_listener(&mut self, name: &str, ctx: &mut Context<Self>) {
        let me = ctx.address();
        let mk = SessionFactory::capture(self, ctx);
        let bound = PassiveListener::bind(name);
        let (listener, unix_path) = match bound {
            Ok(l) => l,
            Err(e) => {
                let msg = format!("{name}: cannot listen: {e}");
                tracing::error!("{msg}");
                self.meter.set_error(msg);
                return;
            }
        };
        let name2 = name.to_string();
        let task = actix_rt::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((peer, r, w)) => {
                        coverage::inc(&c::ofconn_accepted);
                        mk.start(&me, peer.unwrap_or_else(|| name2.clone()), r, w);
                    }
                    Err(e) => {
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
        let mk = SessionFactory::capture(self, ctx);
        let probe = (cfg.probe_ms > 0).then(|| Duration::from_millis(cfg.probe_ms));
        let target2 = target.to_string();
        let fsm2 = fsm.clone();
        let task = actix_rt::spawn(async move {
            loop {
                fsm2.lock().connecting(now_ms());
                let conn = connect(&target2).await;
                let wait = match conn {
                    Ok((r, w)) => {
                        fsm2.lock().connected(now_ms());
                        coverage::inc(&c::ofconn_connected);
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        mk.start_controller(&me, target2.clone(), r, w, probe, tx);
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
                if s.is_controller && s.peer == t {
                    s.addr.do_send(Disconnect);
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
        self.sessions.values().any(|s| s.is_controller)
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

    fn broadcast(&mut self, ev: AsyncEvent) {
        for s in self.sessions.values() {
            // Same-arbiter delivery; a full session mailbox drops (counted there).
            if s.addr.try_send(Deliver(ev.clone())).is_err() {
                coverage::inc(&c::packet_in_dropped);
            }
        }
    }
}

/// What a spawned listener or controller task needs to start sessions.
#[derive(Clone)]
struct SessionFactory {
    bridge_name: String,
    dpid: DatapathId,
    bridge: Recipient<OfRequests>,
    bridge_meter: Arc<ActorMeter>,
}

impl SessionFactory {
    fn capture(c: &Connmgr, _: &Context<Connmgr>) -> SessionFactory {
        SessionFactory {
            bridge_name: c.bridge_name.clone(),
            dpid: c.dpid,
            bridge: c.bridge.clone(),
            bridge_meter: c.bridge_meter.clone(),
        }
    }

    fn params(
        &self,
        me: &Addr<Connmgr>,
        peer: String,
        probe: Option<Duration>,
        is_controller: bool,
        on_close: Option<tokio::sync::oneshot::Sender<()>>,
    ) -> SessionParams {
        SessionParams {
            id: NEXT_SESSION.fetch_add(1, Relaxed),
            peer,
            bridge_name: self.bridge_name.clone(),
            dpid: self.dpid,
            bridge: self.bridge.clone(),
            bridge_meter: self.bridge_meter.clone(),
            connmgr: me.clone().recipient(),
            connmgr_down: me.clone().recipient(),
            connmgr_role: me.clone().recipient(),
            probe,
            is_controller,
            on_close,
        }
    }

    fn start(
        &self,
        me: &Addr<Connmgr>,
        peer: String,
        r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        w: Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
    ) {
        let p = self.params(me, peer, None, false, None);
        OfSession::new(p, r, w).start();
    }

    fn start_controller(
        &self,
        me: &Addr<Connmgr>,
        peer: String,
        r: Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        w: Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
        probe: Option<Duration>,
        on_close: tokio::sync::oneshot::Sender<()>,
    ) {
        let p = self.params(me, peer, probe, true, Some(on_close));
        OfSession::new(p, r, w).start();
    }
}

/// A bound `ptcp:` or `punix:` listener.
enum PassiveListener {
    Tcp(tokio::net::TcpListener),
    Unix(tokio::net::UnixListener),
}

impl PassiveListener {
    /// Binds `ptcp:PORT[:IP]` (all addresses by default) or `punix:PATH` (a stale
    /// socket file is replaced). Returns the Unix path to remove at close.
    fn bind(name: &str) -> std::io::Result<(PassiveListener, Option<PathBuf>)> {
        if let Some(rest) = name.strip_prefix("ptcp:") {
            let (port, ip) = rest.split_once(':').unwrap_or((rest, "0.0.0.0"));
            let l = std::net::TcpListener::bind(format!("{ip}:{port}"))?;
            l.set_nonblocking(true)?;
            Ok((
                PassiveListener::Tcp(tokio::net::TcpListener::from_std(l)?),
                None,
            ))
        } else if let Some(path) = name.strip_prefix("punix:") {
            let path = PathBuf::from(path);
            if let Some(d) = path.parent() {
                let _ = std::fs::create_dir_all(d);
            }
            let _ = std::fs::remove_file(&path);
            let l = std::os::unix::net::UnixListener::bind(&path)?;
            l.set_nonblocking(true)?;
            Ok((
                PassiveListener::Unix(tokio::net::UnixListener::from_std(l)?),
                Some(path),
            ))
        } else {
            Err(std::io::Error::other("not a ptcp: or punix: address"))
        }
    }

    /// Accepts one connection: its peer name (TCP only) and stream halves.
    async fn accept(
        &self,
    ) -> std::io::Result<(
        Option<String>,
        Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
    )> {
        match self {
            PassiveListener::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                let _ = s.set_nodelay(true);
                let (r, w) = s.into_split();
                Ok((Some(format!("tcp:{peer}")), Box::new(r), Box::new(w)))
            }
            PassiveListener::Unix(l) => {
                let (s, _) = l.accept().await?;
                let (r, w) = s.into_split();
                Ok((None, Box::new(r), Box::new(w)))
            }
        }
    }
}

type Halves = (
    Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
);

/// Opens an active connection (`tcp:IP[:PORT]`, default port 6653; `unix:PATH`).
async fn connect(target: &str) -> Result<Halves, String> {
    let fut = async {
        if let Some(rest) = target.strip_prefix("tcp:") {
            let addr = if rest.parse::<std::net::IpAddr>().is_ok() {
                format!("{rest}:6653")
            } else {
                rest.to_string()
            };
            let s = tokio::net::TcpStream::connect(&addr)
                .await
                .map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            let (r, w) = s.into_split();
            Ok::<Halves, String>((Box::new(r), Box::new(w)))
        } else if let Some(path) = target.strip_prefix("unix:") {
            let s = tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| e.to_string())?;
            let (r, w) = s.into_split();
            Ok::<Halves, String>((Box::new(r), Box::new(w)))
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
            s.addr.do_send(Disconnect);
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
    fn handle(&mut self, ev: AsyncEvent, _: &mut Context<Self>) {
        let _g = self.meter.stream_item("PacketIn");
        self.packet_ins_delivered += 1;
        self.broadcast(ev);
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
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
    fn handle(&mut self, m: Notify, _: &mut Context<Self>) {
        let _g = self.guard::<Notify>();
        self.broadcast(m.0);
    }
}

impl Handler<SessionUp> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: SessionUp, _: &mut Context<Self>) {
        let _g = self.guard::<SessionUp>();
        tracing::info!("bridge {}: {} connected", self.bridge_name, m.peer);
        self.sessions.insert(
            m.id,
            SessionEntry {
                addr: m.addr,
                peer: m.peer,
                is_controller: m.is_controller,
                role: ControllerRole::Equal,
            },
        );
        self.check_fail_open();
    }
}

impl Handler<SessionDown> for Connmgr {
    type Result = ();
    fn handle(&mut self, m: SessionDown, _: &mut Context<Self>) {
        let _g = self.guard::<SessionDown>();
        if let Some(s) = self.sessions.remove(&m.id) {
            tracing::info!("bridge {}: {} disconnected", self.bridge_name, s.peer);
            if s.is_controller && !self.controller_connected() {
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
        let listeners: Vec<String> = self.listeners.iter().map(|l| l.name.clone()).collect();
        let bridge = self.bridge_name.clone();
        let fail_open = self.fail_open;
        let delivered = self.packet_ins_delivered;
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
            })
        })
    }
}
