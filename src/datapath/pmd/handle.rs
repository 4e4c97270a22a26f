//! The control side of the datapath: the [`Datapath`] handle that the bridge,
//! the upcall handlers and the revalidators hold, and the [`DpOp`] protocol it
//! speaks to each poll thread over a bounded channel (plus an eventfd that
//! wakes the thread).
//!
//! Shared state read from outside is atomics only; the flow registry
//! ([`Datapath::flows`]) is a mutex touched on put/delete (control path) and
//! by a poll thread only when processing ops.

use super::protocol::{DpOp, Registry};
use super::stats::{read, DpStats, PmdStats, PmdStatsSnapshot, PortCounters, PortCountersSnapshot};
use super::thread::Pmd;
use super::upcall::UpcallBatch;
use super::{OP_QUEUE_LEN, WAKE_TOKEN};
use crate::datapath::actions::DpActions;
use crate::datapath::dpflow::DpFlow;
use crate::datapath::meter::{DpMeterConfig, MeterCounters, MeterCountersSnapshot, MeterSpec};
use crate::netdev::packet::{TunnelMeta, VnetHdr};
use crate::netdev::poll::{Epoll, EventFd};
use crate::netdev::{Netdev, NetdevError};
use crate::types::{MeterId, PortNo};
use crate::util::bounded::{self, BoundedSender};
use crossbeam_channel::TrySendError;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Datapath start-up parameters.
#[derive(Clone, Debug)]
pub struct DpConfig {
    /// Number of poll threads (at least 1).
    pub n_threads: usize,
    /// Where upcalls go; bounded, so a slow slow-path sheds load (counted as `lost`)
    /// instead of stalling forwarding.
    pub upcall_tx: mpsc::Sender<UpcallBatch>,
    /// EMC inverse insertion probability: 0 never, 1 always, N about 1 in N.
    pub emc_insert_inv_prob: u32,
    /// Keep polling without sleeping this long after the last received packet
    /// (µs, 0 = never spin); see `DatapathConfig::busy_poll_us`.
    pub busy_poll_us: u64,
    /// Capacity of each poll thread's op channel (ops, normally [`OP_QUEUE_LEN`]).
    pub op_queue_len: usize,
}

impl DpConfig {
    /// One thread, always-insert EMC.
    pub fn new(upcall_tx: mpsc::Sender<UpcallBatch>) -> DpConfig {
        DpConfig {
            n_threads: 1,
            upcall_tx,
            emc_insert_inv_prob: 1,
            busy_poll_us: 0,
            op_queue_len: OP_QUEUE_LEN,
        }
    }
}

/// A packet for a poll thread to run actions on (PACKET_OUT, upcall replies).
#[derive(Debug, Default)]
pub struct Execute {
    /// The frame.
    pub packet: Vec<u8>,
    /// Its offload metadata.
    pub vnet: VnetHdr,
    /// Its input port.
    pub in_port: PortNo,
    /// What to do.
    pub actions: DpActions,
}

/// Why a thread's op channel refused an op (kept apart from [`DpError`] so
/// that the refused op travels back beside one byte, not a whole error).
#[derive(Clone, Copy)]
enum Refusal {
    Full,
    Stopped,
}

impl Refusal {
    fn error(self, thread: usize) -> DpError {
        match self {
            Refusal::Full => DpError::OpQueueFull { thread },
            Refusal::Stopped => DpError::Stopped,
        }
    }
}

/// An [`Execute`] the datapath did not take, with the reason.
#[derive(Debug)]
pub struct Refused {
    /// Why (queue full: try again later; stopped: never).
    pub error: DpError,
    /// The packet, handed back.
    pub execute: Execute,
}

/// Datapath errors, returned to the control side.
#[derive(Debug, thiserror::Error)]
pub enum DpError {
    /// The thread's op channel is full; the caller should count and retry later.
    #[error("op queue of datapath thread {thread} is full")]
    OpQueueFull {
        /// Thread index.
        thread: usize,
    },
    /// The poll threads have exited.
    #[error("datapath threads have stopped")]
    Stopped,
    /// `n_threads` was 0.
    #[error("the datapath needs at least one poll thread")]
    NoThreads,
    /// A port with that number exists.
    #[error("datapath port {0} already exists")]
    PortExists(PortNo),
    /// No port with that number.
    #[error("no datapath port {0}")]
    NoSuchPort(PortNo),
    /// Creating a thread's epoll/eventfd or the thread itself failed.
    #[error("{op}: {source}")]
    Sys {
        /// What we were doing.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Opening a transmit handle failed.
    #[error(transparent)]
    Netdev(#[from] NetdevError),
}

struct ThreadCtl {
    ops: BoundedSender<DpOp>,
    wake: Arc<EventFd>,
    stats: Arc<PmdStats>,
    /// The thread missed a meter update (its queue was full): it gets the
    /// whole meter set, not deltas, until a sync is queued.
    meters_stale: AtomicBool,
}

struct PortEntry {
    thread: usize,
    stats: Arc<PortCounters>,
}

struct Shared {
    threads: Vec<ThreadCtl>,
    joins: Mutex<Vec<JoinHandle<()>>>,
    registry: Arc<Registry>,
    ports: Mutex<HashMap<PortNo, PortEntry>>,
    /// The meters every thread must have (the source of truth for syncs).
    meters: Mutex<HashMap<MeterId, MeterSpec>>,
    /// Whole-set meter syncs queued to threads that had missed an update.
    meter_syncs: AtomicU64,
    rr: AtomicUsize,
    ops_dropped: AtomicU64,
}

/// Handle on the running datapath. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Datapath {
    inner: Arc<Shared>,
}

impl Datapath {
    /// Starts `cfg.n_threads` poll threads.
    pub fn start(cfg: DpConfig) -> Result<Datapath, DpError> {
        if cfg.n_threads == 0 {
            return Err(DpError::NoThreads);
        }
        let registry = Arc::new(Registry::default());
        let mut threads: Vec<ThreadCtl> = Vec::with_capacity(cfg.n_threads);
        let mut joins: Vec<JoinHandle<()>> = Vec::with_capacity(cfg.n_threads);
        for idx in 0..cfg.n_threads {
            let epoll = Epoll::new().map_err(sys("epoll_create1"))?;
            let wake = Arc::new(EventFd::new().map_err(sys("eventfd"))?);
            epoll
                .add(wake.fd(), WAKE_TOKEN)
                .map_err(sys("epoll_ctl(eventfd)"))?;
            let (tx, rx) = bounded::channel(cfg.op_queue_len);
            let stats = Arc::new(PmdStats::default());
            let pmd = Pmd::new(
                idx,
                epoll,
                wake.clone(),
                rx,
                cfg.upcall_tx.clone(),
                stats.clone(),
                registry.clone(),
                cfg.emc_insert_inv_prob,
                std::time::Duration::from_micros(cfg.busy_poll_us),
            );
            let spawned = std::thread::Builder::new()
                .name(format!("rvs-pmd-{idx}"))
                .spawn(move || pmd.run());
            let join = match spawned {
                Ok(j) => j,
                Err(source) => {
                    // Stop the threads already started.
                    for t in &threads {
                        let _ = t.ops.send_over_bound(DpOp::Shutdown);
                        t.wake.signal();
                    }
                    for j in joins {
                        let _ = j.join();
                    }
                    return Err(DpError::Sys {
                        op: "spawn poll thread",
                        source,
                    });
                }
            };
            joins.push(join);
            threads.push(ThreadCtl {
                ops: tx,
                wake,
                stats,
                meters_stale: AtomicBool::new(false),
            });
        }
        Ok(Datapath {
            inner: Arc::new(Shared {
                threads,
                joins: Mutex::new(joins),
                registry,
                ports: Mutex::new(HashMap::new()),
                meters: Mutex::new(HashMap::new()),
                meter_syncs: AtomicU64::new(0),
                rr: AtomicUsize::new(0),
                ops_dropped: AtomicU64::new(0),
            }),
        })
    }

    /// Number of poll threads.
    pub fn n_threads(&self) -> usize {
        self.inner.threads.len()
    }

    fn send(&self, thread: usize, op: DpOp) -> Result<(), DpError> {
        self.try_send(thread, op).map_err(|(e, _)| e.error(thread))
    }

    /// Queues `op` to `thread`; a refused op comes back with the reason (a
    /// one-byte one: the op is large enough already, see [`Refusal`]).
    fn try_send(&self, thread: usize, op: DpOp) -> Result<(), (Refusal, DpOp)> {
        let t = &self.inner.threads[thread];
        match t.ops.try_send(op) {
            Ok(()) => {
                t.wake.signal_coalesced();
                Ok(())
            }
            Err(TrySendError::Full(op)) => Err((Refusal::Full, op)),
            Err(TrySendError::Disconnected(op)) => Err((Refusal::Stopped, op)),
        }
    }

    /// Sends an op whose effect is already achieved by the caller (kills), counting
    /// it when it cannot be queued.
    fn send_best_effort(&self, thread: usize, op: DpOp) {
        if self.send(thread, op).is_err() {
            self.inner.ops_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds a port: one thread (round robin) receives from it; every thread can
    /// transmit on it.
    pub fn add_port(&self, port_no: PortNo, netdev: Box<dyn Netdev>) -> Result<(), DpError> {
        let mut ports = self.inner.ports.lock();
        if ports.contains_key(&port_no) {
            return Err(DpError::PortExists(port_no));
        }
        let n = self.n_threads();
        let owner = self.inner.rr.fetch_add(1, Ordering::Relaxed) % n;
        let stats = Arc::new(PortCounters::default());
        let mut handles = Vec::with_capacity(n);
        for t in 0..n {
            if t != owner {
                handles.push((t, netdev.open_tx()?));
            }
        }
        let mut sent = Vec::with_capacity(n);
        let mut result = Ok(());
        for (t, tx) in handles {
            let op = DpOp::AddTxPort {
                port_no,
                tx,
                stats: stats.clone(),
            };
            match self.send(t, op) {
                Ok(()) => sent.push(t),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() {
            let op = DpOp::AddPort {
                port_no,
                netdev,
                stats: stats.clone(),
            };
            result = self.send(owner, op);
        }
        if let Err(e) = result {
            for t in sent {
                self.send_best_effort(t, DpOp::DelPort { port_no });
            }
            return Err(e);
        }
        ports.insert(
            port_no,
            PortEntry {
                thread: owner,
                stats,
            },
        );
        Ok(())
    }

    /// Removes a port from every thread.
    pub fn del_port(&self, port_no: PortNo) -> Result<(), DpError> {
        if self.inner.ports.lock().remove(&port_no).is_none() {
            return Err(DpError::NoSuchPort(port_no));
        }
        let mut result = Ok(());
        for t in 0..self.n_threads() {
            if let Err(e) = self.send(t, DpOp::DelPort { port_no }) {
                result = Err(e);
            }
        }
        result
    }

    /// Counters of a port, for OpenFlow PORT_STATS.
    pub fn port_stats(&self, port_no: PortNo) -> Option<PortCountersSnapshot> {
        self.inner
            .ports
            .lock()
            .get(&port_no)
            .map(|p| p.stats.snapshot())
    }

    /// Installs a megaflow on every thread and in the registry. On failure the flow
    /// is killed and unregistered (threads that got it drop it at housekeeping).
    pub fn put_flow(&self, flow: Arc<DpFlow>) -> Result<(), DpError> {
        {
            let mut m = self.inner.registry.flows.lock();
            if let Some(old) = m.insert(flow.id, flow.clone()) {
                if !Arc::ptr_eq(&old, &flow) {
                    old.kill();
                }
            }
            self.inner
                .registry
                .n_flows
                .store(m.len(), Ordering::Relaxed);
        }
        for t in 0..self.n_threads() {
            if let Err(e) = self.send(t, DpOp::FlowPut(flow.clone())) {
                flow.kill();
                self.inner.registry.remove(flow.id);
                for s in 0..t {
                    self.send_best_effort(s, DpOp::FlowDel(flow.clone()));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Deletes a megaflow: it stops forwarding at once (killed before the op is
    /// sent). Returns it, with its final statistics, if it was installed.
    pub fn del_flow(&self, id: u64) -> Option<Arc<DpFlow>> {
        let f = self.inner.registry.remove(id)?;
        f.kill();
        for t in 0..self.n_threads() {
            self.send_best_effort(t, DpOp::FlowDel(f.clone()));
        }
        Some(f)
    }

    /// Deletes every megaflow.
    pub fn flush_flows(&self) {
        {
            let mut m = self.inner.registry.flows.lock();
            for f in m.values() {
                f.kill();
            }
            m.clear();
            self.inner.registry.n_flows.store(0, Ordering::Relaxed);
        }
        for t in 0..self.n_threads() {
            self.send_best_effort(t, DpOp::FlowFlush);
        }
    }

    /// Installed megaflows (a snapshot of the registry).
    pub fn flows(&self) -> Vec<Arc<DpFlow>> {
        self.inner.registry.flows.lock().values().cloned().collect()
    }

    /// One installed megaflow by id.
    pub fn flow(&self, id: u64) -> Option<Arc<DpFlow>> {
        self.inner.registry.flows.lock().get(&id).cloned()
    }

    /// Number of installed megaflows (an atomic read).
    pub fn n_flows(&self) -> usize {
        self.inner.registry.n_flows.load(Ordering::Relaxed)
    }

    /// Runs `actions` on `packet` on the thread that owns `in_port` (thread 0 if
    /// none does, e.g. for PACKET_OUT from the controller). `tunnel` is the
    /// metadata the packet arrived with (an upcall's), default otherwise.
    pub fn execute(
        &self,
        packet: Vec<u8>,
        vnet: VnetHdr,
        tunnel: TunnelMeta,
        in_port: PortNo,
        actions: DpActions,
    ) -> Result<(), DpError> {
        self.send_execute(
            Execute {
                packet,
                vnet,
                in_port,
                actions,
            },
            tunnel,
        )
        .map_err(|r| r.error)
    }

    /// [`Datapath::execute`] (with no tunnel metadata: PACKET_OUT) that hands
    /// the packet back when the thread's queue is full, so the caller can wait
    /// and try again (backpressure) instead of losing it.
    pub fn try_execute(&self, x: Execute) -> Result<(), Refused> {
        self.send_execute(x, TunnelMeta::default())
    }

    fn send_execute(&self, x: Execute, tunnel: TunnelMeta) -> Result<(), Refused> {
        let t = self
            .inner
            .ports
            .lock()
            .get(&x.in_port)
            .map(|p| p.thread)
            .unwrap_or(0);
        let op = DpOp::Execute {
            packet: x.packet,
            vnet: x.vnet,
            tunnel,
            in_port: x.in_port,
            actions: x.actions,
        };
        match self.try_send(t, op).map_err(|(r, op)| (r.error(t), op)) {
            Ok(()) => Ok(()),
            Err((
                error,
                DpOp::Execute {
                    packet,
                    vnet,
                    in_port,
                    actions,
                    ..
                },
            )) => Err(Refused {
                error,
                execute: Execute {
                    packet,
                    vnet,
                    in_port,
                    actions,
                },
            }),
            // `try_send` hands back the op it was given, an Execute.
            Err((error, _)) => Err(Refused {
                error,
                execute: Execute::default(),
            }),
        }
    }

    /// Adds or replaces a meter on every thread (counters restart from zero).
    ///
    /// All or nothing, eventually: a thread whose queue is full misses this
    /// update and is marked stale; it then gets the whole meter set instead
    /// (here on the next meter change, or from [`Datapath::sync_meters`],
    /// which the owner calls periodically), so no thread keeps a different
    /// set of meters. `Err` says some thread is still stale.
    pub fn set_meter(&self, id: MeterId, config: DpMeterConfig) -> Result<(), DpError> {
        let stats = Arc::new(MeterCounters::new(config.bands.len()));
        let spec = MeterSpec {
            id: id.0,
            config,
            stats,
        };
        let mut book = self.inner.meters.lock();
        book.insert(id, spec.clone());
        self.update_meters(&book, || {
            Some(DpOp::SetMeter {
                id,
                config: spec.config.clone(),
                stats: spec.stats.clone(),
            })
        })
    }

    /// Removes a meter; packets sent to it afterwards pass unmetered. Same
    /// consistency as [`Datapath::set_meter`].
    pub fn del_meter(&self, id: MeterId) -> Result<(), DpError> {
        let mut book = self.inner.meters.lock();
        book.remove(&id);
        self.update_meters(&book, || Some(DpOp::DelMeter { id }))
    }

    /// Queues the whole meter set to every thread that missed an update.
    /// `Ok` when no thread is stale any more.
    pub fn sync_meters(&self) -> Result<(), DpError> {
        let book = self.inner.meters.lock();
        self.update_meters(&book, || None)
    }

    /// Sends `delta` to up-to-date threads and the whole set (`book`) to stale
    /// ones, under the meter lock so that every thread sees the changes in
    /// the same order.
    fn update_meters(
        &self,
        book: &HashMap<MeterId, MeterSpec>,
        delta: impl Fn() -> Option<DpOp>,
    ) -> Result<(), DpError> {
        let mut result = Ok(());
        for (i, t) in self.inner.threads.iter().enumerate() {
            let stale = t.meters_stale.load(Ordering::Relaxed);
            let op = if stale {
                DpOp::SyncMeters(book.values().cloned().collect())
            } else {
                match delta() {
                    Some(op) => op,
                    None => continue,
                }
            };
            match self.send(i, op) {
                Ok(()) => {
                    if stale {
                        t.meters_stale.store(false, Ordering::Relaxed);
                        self.inner.meter_syncs.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    t.meters_stale.store(true, Ordering::Relaxed);
                    result = Err(e);
                }
            }
        }
        result
    }

    /// Counters of a meter.
    pub fn meter_stats(&self, id: MeterId) -> Option<MeterCountersSnapshot> {
        self.inner
            .meters
            .lock()
            .get(&id)
            .map(|s| s.stats.snapshot())
    }

    /// Counters of every thread and their sum.
    pub fn stats(&self) -> DpStats {
        let threads: Vec<PmdStatsSnapshot> =
            self.inner.threads.iter().map(|t| read(&t.stats)).collect();
        let total = threads
            .iter()
            .fold(PmdStatsSnapshot::default(), |a, b| a + *b);
        DpStats {
            threads,
            total,
            ops_dropped: self.inner.ops_dropped.load(Ordering::Relaxed),
            meter_syncs: self.inner.meter_syncs.load(Ordering::Relaxed),
            meters_stale_threads: self
                .inner
                .threads
                .iter()
                .filter(|t| t.meters_stale.load(Ordering::Relaxed))
                .count(),
        }
    }

    /// Stops and joins every poll thread. Other clones of the handle then get
    /// [`DpError::Stopped`].
    pub fn shutdown(self) {
        for t in &self.inner.threads {
            // Past the bound: the thread drains its queue, and a stop must
            // not wait for room. Fails only when the thread is already gone.
            let _ = t.ops.send_over_bound(DpOp::Shutdown);
            t.wake.signal();
        }
        let joins = std::mem::take(&mut *self.inner.joins.lock());
        for j in joins {
            if j.join().is_err() {
                tracing::error!("a datapath poll thread panicked");
            }
        }
    }
}

fn sys(op: &'static str) -> impl FnOnce(std::io::Error) -> DpError {
    move |source| DpError::Sys { op, source }
}
