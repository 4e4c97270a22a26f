//! The Bridge actor: one OpenFlow switch (OVS's `ofproto.c` `struct ofproto`
//! with `bridge.c`'s per-bridge configuration).
//!
//! Ownership: the Bridge owns its [`Ofproto`] (flow tables, groups, meters,
//! port table) and is the only writer of it; after each batch of changes it
//! publishes an immutable snapshot into [`BridgeShared`], which upcall handlers
//! and revalidators read on their own threads without locking. It owns the
//! bridge's datapath handle (poll threads), starts its Port actors and its
//! Connmgr on the same Arbiter, and tells the revalidator leader when the
//! tables change (`TablesChanged`). A BARRIER_REPLY is held until a
//! revalidation round that started after the preceding changes has finished,
//! so no stale megaflow forwards a packet once the barrier is answered.

mod state;

use crate::actors::connmgr::{Connmgr, ConnmgrParams, PACKET_IN_QUEUE};
use crate::actors::port::{BridgeInbox, Port, PortParams};
use crate::actors::revalidator::Revalidator;
use crate::config::{BridgeConfig, FailMode, PortConfig};
use crate::datapath::meter::now_ns;
use crate::datapath::pmd::{Datapath, DpError, Execute, UpcallBatch};
use crate::messages::bridge::*;
use crate::messages::connmgr::{
    AsyncEvent, ConnmgrReport, FailOpen, ListenerStatus, Notify, SetConnections,
};
use crate::messages::daemon::ApplyReport;
use crate::messages::port::OpenStatus;
use crate::messages::revalidator::TablesChanged;
use crate::messages::Mailbox;
use crate::netdev::packet::VnetHdr;
use crate::netdev::PortType;
use crate::ofproto::monitor::FlowChanges;
use crate::ofproto::request::{
    self, Answer, BarrierPlan, Barriers, Effects, Event, FreeLater, Op, Requests, PR_ADD,
    PR_DELETE, PR_MODIFY,
};
use crate::ofproto::rule::{PortInfo, PC_PORT_DOWN, PS_LINK_DOWN, PS_LIVE};
use crate::ofproto::view::XlateView;
use crate::ofproto::Ofproto;
use crate::openflow::message::{Message, OfpMsg};
use crate::openflow::{Version, Versions};
use crate::types::{DatapathId, PortNo};
use crate::util::coverage::{self, c};
use crate::util::metrics::{registry, ActorMeter, MsgName};
use crate::util::time::now_ms;
use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseActFuture,
    WrapFuture,
};
use arc_swap::ArcSwap;
use parking_lot::RwLock;
use state::StateFile;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of a Bridge.
pub const MAILBOX: usize = 256;

/// Period of rule timeouts, MAC aging and meter resyncs.
const HOUSEKEEPING: Duration = Duration::from_millis(250);

/// Where the current revalidator leader is (it can be restarted or resized).
pub type LeaderLink = Arc<RwLock<Option<Mailbox<Revalidator>>>>;

/// Kept at this path for the daemon, which builds and supervises bridges.
pub use crate::messages::bridge::BridgeShared;

struct PortSlot {
    port_no: PortNo,
    addr: Addr<Port>,
    cfg: PortConfig,
}

/// Everything needed to build a bridge.
pub struct BridgeParams {
    /// Its configuration.
    pub cfg: BridgeConfig,
    /// Process-unique index.
    pub index: u32,
    /// Upcall queues, one per handler (the router spreads misses over them).
    pub upcall_txs: Vec<tokio::sync::mpsc::Sender<UpcallBatch>>,
    /// Capacity of the datapath's upcall queue, in batches.
    pub upcall_queue_batches: usize,
    /// Poll threads.
    pub n_pmd_threads: usize,
    /// Poll threads spin this long after the last packet before sleeping (µs).
    pub busy_poll_us: u64,
    /// The revalidator leader.
    pub leader: LeaderLink,
    /// Where Port actors register for link events.
    pub port_registry: crate::actors::port::PortRegistry,
    /// Where its state file lives (`[daemon] state_dir`).
    pub state_dir: PathBuf,
    /// Its state file is written at most this often, ms.
    pub state_save_ms: u64,
}

/// The bridge actor.
pub struct Bridge {
    cfg: BridgeConfig,
    meter: Arc<ActorMeter>,
    ofproto: Ofproto,
    shared: Arc<BridgeShared>,
    connmgr: Option<Mailbox<Connmgr>>,
    packet_in_rx: Option<tokio::sync::mpsc::Receiver<AsyncEvent>>,
    upcall_rx: Option<tokio::sync::mpsc::Receiver<UpcallBatch>>,
    ports: BTreeMap<String, PortSlot>,
    leader: LeaderLink,
    port_registry: crate::actors::port::PortRegistry,
    /// Last tables version the revalidators have been told about.
    told_version: u64,
    /// When barriers may be answered.
    barriers: Barriers,
    stopping: bool,
    /// Until when the bridge's thread keeps polling after an OpenFlow request
    /// (see [`SPIN_WINDOW`]); shared with the spinning task.
    /// Deadline in [`now_ns`] time; 0 = no spinner running.
    spin_until: Arc<AtomicU64>,
    /// Its tables across restarts.
    state: StateFile,
    /// Flow monitors over all connections (the sessions count them): rule
    /// changes are recorded only while it is not zero.
    monitors: Arc<std::sync::atomic::AtomicUsize>,
}

impl Bridge {
    /// Builds the bridge state and starts its datapath threads. The actor is
    /// started by the caller on the bridge's own Arbiter.
    pub fn build(p: BridgeParams) -> Result<(Bridge, Arc<BridgeShared>), String> {
        let dpid = p.cfg.dpid();
        let mut ofproto = Ofproto::new(dpid, &format!("rvswitchd bridge {}", p.cfg.name));
        if p.cfg.fail_mode == FailMode::Standalone && p.cfg.controllers.is_empty() {
            ofproto
                .add_default_normal_flow(now_ms())
                .map_err(|e| format!("default flow: {e}"))?;
        }
        let snap = ofproto.publish();
        let (up_tx, up_rx) = tokio::sync::mpsc::channel(p.upcall_queue_batches);
        let dp = Datapath::start(crate::datapath::pmd::DpConfig {
            n_threads: p.n_pmd_threads.max(1),
            upcall_tx: up_tx,
            emc_insert_inv_prob: 1,
            busy_poll_us: p.busy_poll_us,
            op_queue_len: crate::datapath::pmd::OP_QUEUE_LEN,
        })
        .map_err(|e| format!("bridge {}: cannot start datapath: {e}", p.cfg.name))?;
        let (pin_tx, pin_rx) = tokio::sync::mpsc::channel(PACKET_IN_QUEUE);
        let shared = Arc::new(BridgeShared {
            index: p.index,
            view: XlateView::new(
                &p.cfg.name,
                snap,
                p.cfg.mac_table_size,
                p.cfg.mac_aging_secs * 1000,
            ),
            dp,
            packet_in_tx: pin_tx,
            upcall_routes: ArcSwap::from_pointee(p.upcall_txs),
            upcall_route_drops: AtomicU64::new(0),
            installing: AtomicUsize::new(0),
            counters: BridgeCounters::default(),
            state: StateCounters::default(),
        });
        let state = StateFile::new(&p.cfg, &p.state_dir, p.state_save_ms, shared.clone());
        let meter = registry().meter(
            format!("bridge:{}", p.cfg.name),
            "Bridge",
            Some(p.cfg.name.clone()),
            MAILBOX,
        );
        let b = Bridge {
            cfg: p.cfg,
            meter,
            ofproto,
            shared: shared.clone(),
            connmgr: None,
            packet_in_rx: Some(pin_rx),
            upcall_rx: Some(up_rx),
            ports: BTreeMap::new(),
            leader: p.leader,
            port_registry: p.port_registry,
            told_version: 0,
            barriers: Barriers::default(),
            stopping: false,
            spin_until: Arc::new(AtomicU64::new(0)),
            state,
            monitors: Arc::default(),
        };
        Ok((b, shared))
    }

    /// This bridge's meter.
    pub fn meter(&self) -> Arc<ActorMeter> {
        self.meter.clone()
    }

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn dpid(&self) -> DatapathId {
        self.cfg.dpid()
    }

    /// Publishes the tables if they changed and tells the revalidators.
    fn publish(&mut self) -> u64 {
        if self.ofproto.is_dirty() {
            let snap = self.ofproto.publish();
            self.shared.view.snapshot.store(snap);
        }
        let v = self.shared.view.snapshot.load().version;
        if v != self.told_version {
            self.told_version = v;
            // With no megaflow in the datapath and none being installed there
            // is nothing a round could find stale (the same argument as for a
            // barrier answered at once), so the revalidator is not woken: a
            // controller loading rules one flow-mod and barrier at a time
            // would otherwise wake it for every one of them.
            if !self.flows_may_exist() {
                coverage::inc(&c::tables_changed_idle);
                return v;
            }
            if let Some(l) = self.leader.read().as_ref() {
                l.tell(TablesChanged {
                    bridge: self.shared.index,
                    version: v,
                    ack: None,
                });
            }
        }
        v
    }

    /// False only when the datapath holds no megaflow and no upcall is
    /// installing one: then none can be stale after a table change. An
    /// installing handler re-checks the tables version after its install and
    /// kills what it installed if the version moved (see upcall.rs), so a
    /// flow translated before this change cannot slip in afterwards.
    fn flows_may_exist(&self) -> bool {
        fence(SeqCst);
        self.shared.dp.n_flows() > 0 || self.shared.installing.load(SeqCst) > 0
    }

    fn notify(&self, ev: AsyncEvent) {
        if let Some(cm) = &self.connmgr {
            cm.tell(Notify(ev));
        }
    }

    fn port_status(&self, reason: u8, port_no: PortNo) {
        self.notify_all(
            request::port_status(&self.ofproto, reason, port_no)
                .into_iter()
                .collect(),
        );
    }

    fn pick_port_no(&self, cfg: &PortConfig) -> PortNo {
        if cfg.name == self.cfg.name {
            return PortNo::LOCAL;
        }
        if let Some(n) = cfg.ofport {
            return PortNo(n);
        }
        let used: Vec<u32> = self.ports.values().map(|p| p.port_no.0).collect();
        let reserved: Vec<u32> = self.cfg.port.iter().filter_map(|p| p.ofport).collect();
        let mut n = 1;
        while used.contains(&n) || reserved.contains(&n) {
            n += 1;
        }
        PortNo(n)
    }

    fn add_port(&mut self, cfg: PortConfig, ctx: &mut Context<Self>) {
        let port_no = self.pick_port_no(&cfg);
        let params = PortParams {
            bridge_name: self.cfg.name.clone(),
            cfg: cfg.clone(),
            port_no,
            bridge: BridgeInbox {
                attached: ctx.address().recipient(),
                changed: ctx.address().recipient(),
                detached: ctx.address().recipient(),
            },
            registry: self.port_registry.clone(),
        };
        let addr = Port::new(params).start();
        self.ports
            .insert(cfg.name.clone(), PortSlot { port_no, addr, cfg });
    }

    fn remove_port(&mut self, name: &str) {
        if let Some(slot) = self.ports.remove(name) {
            slot.addr.do_send(crate::messages::port::StopPort);
            self.detach(slot.port_no, "removed from configuration");
        }
    }

    fn detach(&mut self, port_no: PortNo, reason: &str) {
        if self.ofproto.port(port_no).is_none() {
            return;
        }
        tracing::info!(
            "bridge {}: port {} detached: {reason}",
            self.cfg.name,
            port_no
        );
        self.port_status(PR_DELETE, port_no);
        let _ = self.shared.dp.del_port(port_no);
        self.ofproto.remove_port(port_no);
        self.shared.view.mac.flush_port(port_no);
        coverage::inc(&c::port_deleted);
        self.publish();
    }

    fn ensure_internal_port(&mut self, ctx: &mut Context<Self>) {
        if self.cfg.internal_port && !self.ports.contains_key(&self.cfg.name) {
            let cfg = PortConfig::new(&self.cfg.name, PortType::Internal);
            self.add_port(cfg, ctx);
        }
    }

    fn connections(&self) -> SetConnections {
        SetConnections {
            listeners: self.cfg.listeners.clone(),
            controllers: self.cfg.controllers.clone(),
            probe_ms: self.cfg.inactivity_probe_ms,
            versions: Versions::of(
                &self
                    .cfg
                    .protocol_versions()
                    .into_iter()
                    .map(Version)
                    .collect::<Vec<_>>(),
            ),
            max_backoff_ms: self.cfg.max_backoff_ms,
            standalone: self.cfg.fail_mode == FailMode::Standalone,
        }
    }

    fn report_ports(&self) -> PortsReport {
        PortsReport {
            bridge: self.cfg.name.clone(),
            dpid: self.dpid(),
            ports: self
                .ports
                .iter()
                .map(|(name, slot)| PortLine {
                    port_no: slot.port_no,
                    name: name.clone(),
                    kind: slot.cfg.kind,
                    state: match self.ofproto.port(slot.port_no) {
                        Some(p) if p.state & PS_LINK_DOWN != 0 => PortState::LinkDown,
                        Some(_) => PortState::Live,
                        None => PortState::NotAttached,
                    },
                })
                .collect(),
        }
    }

    /// Effects for a batch: rule changes are recorded if some connection
    /// has a flow monitor.
    fn effects(&self) -> Effects {
        Effects {
            monitored: self.monitors.load(Relaxed) > 0,
            ..Effects::default()
        }
    }

    /// Hands the batch's rule changes to the connection manager, stamped
    /// with the tables version just published (after the publish, so that a
    /// monitor's initial reply and the changes after it never overlap).
    fn notify_flow_changes(&self, conn: Option<u64>, fx: &mut Effects) {
        if fx.flow_changes.is_empty() {
            return;
        }
        let version = self.shared.view.snapshot.load().version;
        self.notify(AsyncEvent::FlowChanges(Arc::new(FlowChanges {
            conn,
            version,
            changes: std::mem::take(&mut fx.flow_changes),
        })));
    }

    /// Hands events to the connection manager.
    fn notify_all(&self, events: Vec<Event>) {
        for ev in events {
            self.notify(match ev {
                Event::FlowRemoved(fr) => AsyncEvent::FlowRemoved(fr),
                Event::PortStatus(ps) => AsyncEvent::PortStatus(ps),
            });
        }
    }

    /// Applies the effects of a batch except its answers; returns the
    /// packet-outs the datapath had no room for yet (in order).
    fn apply(&mut self, fx: &mut Effects) -> VecDeque<(u32, Execute)> {
        self.notify_all(std::mem::take(&mut fx.events));
        for f in fx.free_later.drain(..) {
            free_later(f);
        }
        let mut waiting: VecDeque<(u32, Execute)> = VecDeque::new();
        for op in fx.ops.drain(..) {
            match op {
                Op::Execute {
                    xid,
                    packet,
                    in_port,
                    actions,
                } => {
                    let x = Execute {
                        packet,
                        vnet: VnetHdr::default(),
                        in_port,
                        actions,
                    };
                    // Once one waits, later ones queue behind it (order).
                    if !waiting.is_empty() {
                        waiting.push_back((xid, x));
                        continue;
                    }
                    match self.shared.dp.try_execute(x) {
                        Ok(()) => packet_out_sent(&self.shared),
                        Err(r) => match r.error {
                            DpError::OpQueueFull { .. } => {
                                self.shared.counters.packet_out_waits.fetch_add(1, Relaxed);
                                waiting.push_back((xid, r.execute));
                            }
                            e => packet_out_dropped(&self.shared, xid, &e),
                        },
                    }
                }
                Op::SetMeter { id, config } => {
                    if let Err(e) = self.shared.dp.set_meter(id, config) {
                        tracing::debug!("meter {}: {e}; threads resync", id.0);
                    }
                }
                Op::DelMeter { id } => {
                    if let Err(e) = self.shared.dp.del_meter(id) {
                        tracing::debug!("meter {}: {e}; threads resync", id.0);
                    }
                }
                Op::SetAdminState { port, up } => {
                    if let Err(e) = crate::netdev::netlink::set_link_up(&port, up) {
                        tracing::warn!("port {port}: cannot set admin state: {e}");
                    }
                }
            }
        }
        waiting
    }

    /// Asks the revalidator leader for a round covering `version`; the
    /// receiver fires when it is done. `None` (counted) when the barrier
    /// must be answered without one.
    fn request_round(&self, version: u64) -> Option<tokio::sync::oneshot::Receiver<()>> {
        let c = &self.shared.counters;
        let leader = self.leader.read();
        let Some(l) = leader.as_ref() else {
            c.barrier_no_leader.fetch_add(1, Relaxed);
            unrevalidated_barrier(&self.cfg.name, "no revalidator leader");
            return None;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = l.tell(TablesChanged {
            bridge: self.shared.index,
            version,
            ack: Some(tx),
        });
        if !sent {
            c.barrier_leader_busy.fetch_add(1, Relaxed);
            unrevalidated_barrier(&self.cfg.name, "the revalidator leader's mailbox is full");
            return None;
        }
        c.barrier_waits.fetch_add(1, Relaxed);
        Some(rx)
    }
}

impl Bridge {
    /// Restores the state file (or deletes it when restoring is off): the
    /// entries go through the request path, their effects (meters for the
    /// poll threads) are applied, and the tables are published.
    fn restore_state(&mut self) {
        if !self.cfg.restore_flows {
            self.state.forget();
            return;
        }
        let mut fx = Effects::default();
        {
            let mut rq = Requests {
                ofproto: &mut self.ofproto,
                view: &self.shared.view,
                port_counters: &|_| None,
            };
            self.state.restore(&mut rq, &mut fx);
        }
        let waiting = self.apply(&mut fx);
        debug_assert!(waiting.is_empty(), "a restore executes no packet");
        self.publish();
    }

    /// Starts a background save when the published tables changed since
    /// the last one and the save interval has passed.
    fn maybe_save(&mut self, ctx: &mut Context<Self>) {
        if !self.cfg.restore_flows || self.stopping {
            return;
        }
        let snap = self.shared.view.snapshot.load_full();
        if !self.state.due(snap.version, now_ms()) {
            return;
        }
        let job = self.state.save_in_background(snap);
        ctx.spawn(job.into_actor(self).map(|(), b, _| b.state.finished()));
    }
}

/// Counts a PACKET_OUT the datapath accepted.
fn packet_out_sent(shared: &BridgeShared) {
    shared.counters.packet_outs.fetch_add(1, Relaxed);
    coverage::inc(&c::packet_out);
}

/// Counts a PACKET_OUT the datapath never took, with a rate-limited warning.
fn packet_out_dropped(shared: &BridgeShared, xid: u32, e: &DpError) {
    let n = shared.counters.packet_out_drops.fetch_add(1, Relaxed);
    coverage::inc(&c::packet_out_dropped);
    if n.is_power_of_two() || n == 0 {
        tracing::warn!(
            "bridge {}: packet-out (xid {xid}) dropped: {e} ({} dropped so far)",
            shared.view.name,
            n + 1
        );
    }
}

/// A barrier answered without its revalidation round: counted by the
/// caller, warned here.
fn unrevalidated_barrier(bridge: &str, why: &str) {
    coverage::inc(&c::barrier_unrevalidated);
    tracing::warn!(
        "bridge {bridge}: barrier answered without a revalidation round ({why}): \
         a megaflow from before it may still forward"
    );
}

/// How long a packet-out may wait for room in a poll thread's queue before
/// it is dropped (counted). The session reads no further request meanwhile.
const PACKET_OUT_WAIT: Duration = Duration::from_secs(1);
/// Pause between two attempts while a poll thread's queue is full.
const PACKET_OUT_RETRY: Duration = Duration::from_millis(1);
/// How long a barrier waits for its revalidation round.
const BARRIER_WAIT: Duration = Duration::from_secs(5);

/// Hands the waiting packet-outs to the datapath in order, waiting for room
/// (backpressure: the reply, and so the session, waits with them).
async fn submit(shared: Arc<BridgeShared>, mut waiting: VecDeque<(u32, Execute)>) {
    let deadline = tokio::time::Instant::now() + PACKET_OUT_WAIT;
    while let Some((xid, x)) = waiting.pop_front() {
        match shared.dp.try_execute(x) {
            Ok(()) => packet_out_sent(&shared),
            Err(r) => match r.error {
                DpError::OpQueueFull { .. } if tokio::time::Instant::now() < deadline => {
                    waiting.push_front((xid, r.execute));
                    tokio::time::sleep(PACKET_OUT_RETRY).await;
                }
                e => {
                    packet_out_dropped(&shared, xid, &e);
                    for (xid, _) in waiting.drain(..) {
                        packet_out_dropped(&shared, xid, &e);
                    }
                }
            },
        }
    }
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        // Before the Connmgr exists: no listener is open and no controller
        // connected yet, so nobody sees (or races) tables being restored,
        // and a secure bridge forwards as it was left from the first packet.
        self.restore_state();
        let cm_meter;
        if let Some(rx) = self.packet_in_rx.take() {
            let me = ctx.address();
            let cm = Connmgr::new(ConnmgrParams {
                bridge_name: self.cfg.name.clone(),
                dpid: self.dpid(),
                bridge: me.clone().recipient(),
                bridge_meter: self.meter.clone(),
                fail_open: me.recipient(),
                packet_ins: rx,
                monitors: self.monitors.clone(),
            });
            cm_meter = cm.meter();
            let addr = cm.start();
            let mb = Mailbox::new(addr, cm_meter);
            mb.tell(self.connections());
            self.connmgr = Some(mb);
        }
        if let Some(mut rx) = self.upcall_rx.take() {
            // The upcall router: one hop from the datapath's single queue to the
            // handlers, by flow hash so that one flow's misses meet in one handler
            // (which suppresses duplicates). A full handler queue drops, counted.
            let shared = self.shared.clone();
            ctx.spawn(
                async move {
                    while let Some(batch) = rx.recv().await {
                        let routes = shared.upcall_routes.load();
                        if routes.is_empty() {
                            shared.upcall_route_drops.fetch_add(1, Relaxed);
                            continue;
                        }
                        let h = batch.first().map(|u| u.key.hash64()).unwrap_or(0);
                        let i = (h % routes.len() as u64) as usize;
                        if routes[i].try_send(batch).is_err() {
                            shared.upcall_route_drops.fetch_add(1, Relaxed);
                        }
                    }
                }
                .into_actor(self),
            );
        }
        self.ensure_internal_port(ctx);
        for p in self.cfg.port.clone() {
            self.add_port(p, ctx);
        }
        // Timeouts and MAC aging.
        ctx.run_interval(HOUSEKEEPING, |b, ctx| {
            let mut fx = b.effects();
            let changed = Requests {
                ofproto: &mut b.ofproto,
                view: &b.shared.view,
                port_counters: &|_| None,
            }
            .handle_timeout(now_ms(), &mut fx);
            b.notify_all(std::mem::take(&mut fx.events));
            if changed {
                b.publish();
            }
            b.notify_flow_changes(None, &mut fx);
            // Poll threads that missed a meter update get the whole set.
            if b.shared.dp.stats().meters_stale_threads > 0 {
                let _ = b.shared.dp.sync_meters();
            }
            b.maybe_save(ctx);
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.meter.mark_dead();
    }
}

/// How long the bridge's thread keeps polling after an OpenFlow request.
/// A controller or `ovs-ofctl add-flows` sends one flow-mod and one barrier at
/// a time and waits for the reply: when the thread parks between requests,
/// every round trip pays a wake-up (on a VM, an inter-processor interrupt and
/// an exit, tens of microseconds) and a bulk load runs twice as slowly. Polling
/// for a short while costs a little CPU only while requests keep coming.
const SPIN_WINDOW: Duration = Duration::from_micros(300);

/// Keeps the thread's runtime busy until the shared deadline passes: each
/// `yield_now` lets the runtime poll its sockets (without blocking) before the
/// task runs again, so the next request is picked up at once.
async fn spin_window(until: Arc<AtomicU64>) {
    while now_ns() < until.load(Relaxed) {
        tokio::task::yield_now().await;
    }
    until.store(0, Relaxed);
}

impl Bridge {
    /// Extends the polling window, starting a spinner when none runs. The
    /// spinner is a task of its own, not an item of this actor's context, so
    /// spinning does not re-poll the actor.
    fn keep_warm(&mut self) {
        // Only this actor's thread touches the deadline (the spinner runs
        // there too), so plain loads and stores are enough.
        let running = self.spin_until.load(Relaxed) != 0;
        self.spin_until
            .store(now_ns() + SPIN_WINDOW.as_nanos() as u64, Relaxed);
        if !running {
            actix_rt::spawn(spin_window(self.spin_until.clone()));
        }
    }
}

impl Handler<OfRequests> for Bridge {
    type Result = ResponseActFuture<Self, Vec<OfReply>>;

    fn handle(&mut self, m: OfRequests, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<OfRequests>();
        self.keep_warm();
        let now = now_ms();
        let mut fx = self.effects();
        {
            let dp = self.shared.dp.clone();
            let counters = move |p: PortNo| dp.port_stats(p);
            let mut rq = Requests {
                ofproto: &mut self.ofproto,
                view: &self.shared.view,
                port_counters: &counters,
            };
            match &m.bundle {
                Some(commit) => rq.commit_bundle(commit, m.msgs, now, &mut fx),
                None => {
                    for (msg, head) in m.msgs {
                        rq.handle(msg, &head, now, &mut fx);
                    }
                }
            }
        }
        let waiting = self.apply(&mut fx);
        let version = self.publish();
        self.notify_flow_changes(Some(m.conn), &mut fx);
        let flows_may_exist = self.flows_may_exist();
        let plan = self
            .barriers
            .plan(fx.has_barrier(), version, flows_may_exist);
        let ack = match plan {
            BarrierPlan::WaitFor(v) => self.request_round(v),
            BarrierPlan::None | BarrierPlan::AnswerNow => None,
        };
        let waited = ack.is_some();
        let shared = self.shared.clone();
        let name = self.cfg.name.clone();
        let answers = fx.answers;
        Box::pin(
            async move {
                if !waiting.is_empty() {
                    submit(shared.clone(), waiting).await;
                }
                if let Some(rx) = ack {
                    match tokio::time::timeout(BARRIER_WAIT, rx).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => {
                            shared.counters.barrier_leader_lost.fetch_add(1, Relaxed);
                            unrevalidated_barrier(&name, "the revalidator leader stopped");
                        }
                        Err(_) => {
                            shared.counters.barrier_timeout.fetch_add(1, Relaxed);
                            unrevalidated_barrier(&name, "no round finished within 5 s");
                        }
                    }
                }
                answers
                    .into_iter()
                    .map(|a| match a {
                        Answer::Reply(r) => r,
                        Answer::Barrier(xid) => OfReply::Msg(OfpMsg {
                            xid,
                            body: Message::BarrierReply,
                        }),
                    })
                    .collect::<Vec<_>>()
            }
            .into_actor(self)
            .map(move |replies, act, _| {
                if waited {
                    act.barriers.released(version);
                }
                replies
            }),
        )
    }
}

impl Handler<PortAttached> for Bridge {
    type Result = ();
    fn handle(&mut self, m: PortAttached, _: &mut Context<Self>) {
        let _g = self.guard::<PortAttached>();
        if self.stopping {
            return;
        }
        let slot = self.ports.get(&m.name);
        let Some(slot) = slot else { return };
        let mut info = PortInfo::new(m.port_no, &m.name, m.link.mac);
        info.vlan = slot.cfg.vlan;
        info.trunks = slot.cfg.trunks.clone();
        info.state = if m.link.carrier {
            PS_LIVE
        } else {
            PS_LINK_DOWN
        };
        if let Some(mbps) = m.link.speed_mbps {
            info.curr_speed = mbps.saturating_mul(1000);
            info.max_speed = info.curr_speed;
        }
        if let Err(e) = self.shared.dp.add_port(m.port_no, m.netdev) {
            tracing::error!("bridge {}: port {}: {e}", self.cfg.name, m.name);
            self.meter.set_error(format!("port {}: {e}", m.name));
            return;
        }
        self.ofproto.add_port(info);
        coverage::inc(&c::port_added);
        tracing::info!(
            "bridge {}: added port {} as {}",
            self.cfg.name,
            m.name,
            m.port_no
        );
        self.port_status(PR_ADD, m.port_no);
        self.publish();
    }
}

impl Handler<PortLinkChanged> for Bridge {
    type Result = ();
    fn handle(&mut self, m: PortLinkChanged, _: &mut Context<Self>) {
        let _g = self.guard::<PortLinkChanged>();
        if let Some(mut info) = self.ofproto.port(m.port_no).cloned() {
            let state = if m.link.carrier {
                PS_LIVE
            } else {
                PS_LINK_DOWN
            };
            let admin_down = !m.link.admin_up;
            let mut config = info.config;
            if admin_down {
                config |= PC_PORT_DOWN;
            } else {
                config &= !PC_PORT_DOWN;
            }
            if info.state != state || info.config != config || info.hw_addr != m.link.mac {
                info.state = state;
                info.config = config;
                info.hw_addr = m.link.mac;
                self.ofproto.update_port(info);
                self.port_status(PR_MODIFY, m.port_no);
                self.publish();
            }
        }
    }
}

impl Handler<PortDetached> for Bridge {
    type Result = ();
    fn handle(&mut self, m: PortDetached, _: &mut Context<Self>) {
        let _g = self.guard::<PortDetached>();
        self.detach(m.port_no, &m.reason);
    }
}

impl Handler<FailOpen> for Bridge {
    type Result = ();
    fn handle(&mut self, m: FailOpen, _: &mut Context<Self>) {
        let _g = self.guard::<FailOpen>();
        self.shared.view.set_fail_open(m.0);
        self.told_version = 0;
        self.publish();
    }
}

impl Bridge {
    /// What failed among the listeners and the given ports, once the
    /// Connmgr and those Ports have handled what they were told (their
    /// mailboxes are ordered, so asking now gets the outcome).
    fn failures(&self, ports: Vec<(String, Addr<Port>)>) -> ReportFuture {
        let bridge = self.cfg.name.clone();
        let cm = self.connmgr.clone();
        Box::pin(async move {
            let mut r = ApplyReport::default();
            if let Some(cm) = cm {
                match cm.ask(ListenerStatus).await {
                    Ok(v) => {
                        for (l, e) in v {
                            r.failed(format!("bridge {bridge}: listener {l}"), e);
                        }
                    }
                    Err(e) => r.failed(format!("bridge {bridge}: listeners"), e.to_string()),
                }
            }
            for (name, addr) in ports {
                if let Ok(Some(e)) = addr.send(OpenStatus).await {
                    r.failed(format!("bridge {bridge}: port {name}"), e);
                }
            }
            r
        })
    }
}

/// A report still being gathered from the Connmgr and Ports.
type ReportFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ApplyReport>>>;

impl Handler<Reconfigure> for Bridge {
    type Result = ResponseActFuture<Self, ApplyReport>;
    fn handle(&mut self, m: Reconfigure, ctx: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Reconfigure>();
        let d = m.diff;
        self.cfg = m.cfg;
        self.state.reconfigured(&self.cfg);
        if d.restore_flows_changed {
            if self.cfg.restore_flows {
                self.state.resave();
            } else {
                self.state.forget();
            }
        }
        // As `bridge.c:bridge_reconfigure()`: delete first, then add, then
        // reconfigure.
        for name in &d.ports_removed {
            self.remove_port(name);
        }
        let mut added = Vec::new();
        for p in d.ports_added {
            let name = p.name.clone();
            self.add_port(p, ctx);
            if let Some(slot) = self.ports.get(&name) {
                added.push((name, slot.addr.clone()));
            }
        }
        for p in d.ports_changed {
            if let Some(slot) = self.ports.get_mut(&p.name) {
                slot.cfg = p.clone();
                if let Some(mut info) = self.ofproto.port(slot.port_no).cloned() {
                    info.vlan = p.vlan;
                    info.trunks = p.trunks.clone();
                    self.ofproto.update_port(info);
                }
            }
        }
        if d.dpid_changed {
            self.ofproto.set_dpid(self.cfg.dpid());
        }
        if d.mac_changed {
            self.shared
                .view
                .mac
                .set_limits(self.cfg.mac_table_size, self.cfg.mac_aging_secs * 1000);
        }
        if d.connections_changed || d.fail_mode_changed {
            if let Some(cm) = &self.connmgr {
                cm.tell(self.connections());
            }
        }
        self.ensure_internal_port(ctx);
        self.publish();
        Box::pin(self.failures(added).into_actor(self))
    }
}

impl Handler<StartReport> for Bridge {
    type Result = ResponseActFuture<Self, ApplyReport>;
    fn handle(&mut self, _: StartReport, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<StartReport>();
        let ports = self
            .ports
            .iter()
            .map(|(n, s)| (n.clone(), s.addr.clone()))
            .collect();
        Box::pin(self.failures(ports).into_actor(self))
    }
}

impl Handler<StopBridge> for Bridge {
    type Result = ();
    fn handle(&mut self, _: StopBridge, ctx: &mut Context<Self>) {
        let _g = self.guard::<StopBridge>();
        self.stopping = true;
        self.state.delete();
        let names: Vec<String> = self.ports.keys().cloned().collect();
        for n in names {
            self.remove_port(&n);
        }
        if let Some(cm) = self.connmgr.take() {
            cm.tell(SetConnections {
                listeners: vec![],
                controllers: vec![],
                probe_ms: 0,
                versions: Versions::supported(),
                max_backoff_ms: 0,
                standalone: false,
            });
            registry().remove(&cm.meter.id);
        }
        self.shared.dp.clone().shutdown();
        registry().remove(&self.meter.id);
        ctx.stop();
    }
}

impl Handler<SaveState> for Bridge {
    type Result = Result<String, String>;
    fn handle(&mut self, _: SaveState, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<SaveState>();
        if !self.cfg.restore_flows {
            return Ok(format!("bridge {}: restore_flows is off", self.cfg.name));
        }
        self.publish();
        let snap = self.shared.view.snapshot.load_full();
        self.state.save_final(&snap)
    }
}

impl Handler<BridgeQuery> for Bridge {
    type Result = ResponseActFuture<Self, Result<BridgeAnswer, String>>;

    fn handle(&mut self, m: BridgeQuery, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<BridgeQuery>();
        let now = now_ms();
        let ready =
            |r: Result<BridgeAnswer, String>| -> Self::Result { Box::pin(actix::fut::ready(r)) };
        match m.0 {
            Query::DumpDpFlows => ready(Ok(BridgeAnswer::DpFlows {
                flows: self
                    .shared
                    .dp
                    .flows()
                    .into_iter()
                    .filter(|f| !f.is_dead())
                    .collect(),
                now_ms: now,
            })),
            Query::DelDpFlows => {
                let flows = self.shared.dp.flows();
                for f in &flows {
                    f.kill();
                }
                self.shared.dp.flush_flows();
                ready(Ok(BridgeAnswer::DpFlowsDeleted(flows.len())))
            }
            Query::Trace(spec) => ready(
                crate::ofproto::trace::trace(&self.shared.view, &spec).map(BridgeAnswer::Trace),
            ),
            Query::FdbShow => ready(Ok(BridgeAnswer::Fdb(self.shared.view.mac.entries(now)))),
            Query::FdbFlush => {
                self.shared.view.mac.flush();
                ready(Ok(BridgeAnswer::FdbFlushed))
            }
            Query::Show => ready(Ok(BridgeAnswer::Ports(self.report_ports()))),
            Query::PmdStats => ready(Ok(BridgeAnswer::PmdStats(Box::new(
                self.shared.dp_report(),
            )))),
            Query::DpShow => ready(Ok(BridgeAnswer::DpShow {
                ports: self.report_ports(),
                n_flows: self.shared.dp.n_flows(),
            })),
            Query::Connections => {
                let cm = self.connmgr.clone();
                Box::pin(
                    async move {
                        match cm {
                            Some(cm) => cm
                                .ask(ConnmgrReport)
                                .await
                                .map(BridgeAnswer::Connections)
                                .map_err(|e| e.to_string()),
                            None => Err("no connection manager".into()),
                        }
                    }
                    .into_actor(self),
                )
            }
        }
    }
}

/// Frees a large batch of removed rules, and the snapshot that was replaced
/// when they were removed, off the bridge thread (like OVS's RCU-postponed
/// frees): a `del-flows` of 100k rules would otherwise spend most of its time
/// in the allocator before the barrier reply goes out.
fn free_later(f: FreeLater) {
    let spawned = std::thread::Builder::new()
        .name("rvs-free".into())
        .spawn(move || {
            // Tables first: the rules' last references are then ours.
            drop(f.snapshot);
            drop(f.rules);
        });
    if let Err(e) = spawned {
        // The rules were moved into the failed closure and are freed here.
        tracing::debug!("freeing removed rules inline: {e}");
    }
}

/// Bridges by name, for the control commands (owned by the Daemon).
pub type BridgeMap = HashMap<String, Mailbox<Bridge>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::actions::DpAction;
    use crate::datapath::pmd::DpConfig;
    use crate::netdev::testdev::{TestNetdev, TestPeer};
    use crate::ofproto::Ofproto;

    /// A bridge's shared part over an in-memory datapath whose only poll
    /// thread has a one-op queue: port 1 is where it receives (and can be
    /// stalled), port 2 where packet-outs go.
    fn shared() -> (Arc<BridgeShared>, TestPeer, TestPeer) {
        let (up_tx, _up_rx) = tokio::sync::mpsc::channel(4);
        let mut cfg = DpConfig::new(up_tx);
        cfg.op_queue_len = 1;
        let dp = Datapath::start(cfg).unwrap();
        let (d1, p1) = TestNetdev::pair("s1", 1).unwrap();
        dp.add_port(PortNo(1), Box::new(d1)).unwrap();
        while dp.stats().total.ops < 1 {
            std::thread::sleep(Duration::from_millis(5));
        }
        let (d2, p2) = TestNetdev::pair("s2", 2).unwrap();
        dp.add_port(PortNo(2), Box::new(d2)).unwrap();
        let (pin_tx, _) = tokio::sync::mpsc::channel(1);
        let mut of = Ofproto::new(DatapathId(1), "t");
        let shared = Arc::new(BridgeShared {
            index: 1,
            view: XlateView::new("br0", of.publish(), 10, 1000),
            dp,
            packet_in_tx: pin_tx,
            upcall_routes: ArcSwap::from_pointee(Vec::new()),
            upcall_route_drops: AtomicU64::new(0),
            installing: AtomicUsize::new(0),
            counters: BridgeCounters::default(),
            state: StateCounters::default(),
        });
        (shared, p1, p2)
    }

    fn packets(n: u8) -> VecDeque<(u32, Execute)> {
        (0..n)
            .map(|i| {
                (
                    i as u32,
                    Execute {
                        packet: vec![i; 60],
                        vnet: VnetHdr::default(),
                        in_port: PortNo::CONTROLLER,
                        actions: vec![DpAction::Output(PortNo(2))],
                    },
                )
            })
            .collect()
    }

    fn stall(p: &TestPeer) {
        let before = p.recv_calls();
        p.hold_rx(true);
        while p.recv_calls() == before {
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn packet_outs_wait_for_room_and_all_leave_in_order() {
        let (sh, p1, p2) = shared();
        stall(&p1);
        let release = {
            let p1 = p1.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                p1.hold_rx(false);
            })
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(submit(sh.clone(), packets(20)));
        release.join().unwrap();
        let c = sh.counters.snapshot();
        assert_eq!((c.packet_outs, c.packet_out_drops), (20, 0));
        for i in 0..20u8 {
            assert_eq!(p2.recv_timeout(Duration::from_secs(5)), Some(vec![i; 60]));
        }
        sh.dp.clone().shutdown();
    }

    #[test]
    fn packet_outs_a_stuck_thread_never_takes_are_counted_as_dropped() {
        let (sh, p1, p2) = shared();
        stall(&p1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // The first fits the one-op queue; the rest give up after the wait.
        rt.block_on(submit(sh.clone(), packets(5)));
        let c = sh.counters.snapshot();
        assert_eq!((c.packet_outs, c.packet_out_drops), (1, 4));
        p1.hold_rx(false);
        assert_eq!(p2.recv_timeout(Duration::from_secs(5)), Some(vec![0; 60]));
        sh.dp.clone().shutdown();
    }
}
