//! The control side of the datapath: the [`Datapath`] handle that the bridge,
//! the upcall handlers and the revalidators hold, and the [`DpOp`] protocol it
//! speaks to each poll thread over a bounded channel (plus an eventfd that
//! wakes the thread).
//!
//! Shared state read from outside is atomics only; the flow registry
//! ([`Datapath::flows`]) is a mutex touched on put/delete (control path) and
//! by a poll thread only when processing ops.

use super::stats::{read, DpStats, PmdStats, PmdStatsSnapshot, PortCounters, PortCountersSnapshot};
use super::thread::Pmd;
use super::upcall::UpcallBatch;
use super::{OP_QUEUE_LEN, WAKE_TOKEN};
use crate::datapath::actions::DpActions;
use crate::datapath::dpflow::DpFlow;
use crate::datapath::meter::{DpMeterConfig, MeterStats, MeterStatsSnapshot};
use crate::netdev::packet::VnetHdr;
use crate::netdev::poll::{Epoll, EventFd};
use crate::netdev::{Netdev, NetdevError, NetdevTx};
use crate::types::{MeterId, PortNo};
use crossbeam_channel::{Sender, TrySendError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
}

impl DpConfig {
    /// One thread, always-insert EMC.
    pub fn new(upcall_tx: mpsc::Sender<UpcallBatch>) -> DpConfig {
        DpConfig {
            n_threads: 1,
            upcall_tx,
            emc_insert_inv_prob: 1,
            busy_poll_us: 0,
        }
    }
}

/// A message to one poll thread. Built by [`Datapath`]'s methods; public so the
/// protocol is documented and testable.
pub enum DpOp {
    /// Take ownership of a port: receive from it and transmit on it.
    AddPort {
        /// Its number.
        port_no: PortNo,
        /// The open device.
        netdev: Box<dyn Netdev>,
        /// Counters shared with the control side.
        stats: Arc<PortCounters>,
    },
    /// Learn a port owned by another thread, for output only.
    AddTxPort {
        /// Its number.
        port_no: PortNo,
        /// A transmit handle from [`Netdev::open_tx`].
        tx: Box<dyn NetdevTx>,
        /// Counters shared with the control side.
        stats: Arc<PortCounters>,
    },
    /// Forget a port (closing the device or handle).
    DelPort {
        /// Its number.
        port_no: PortNo,
    },
    /// Install a megaflow.
    FlowPut(Arc<DpFlow>),
    /// Remove a megaflow by id (it is already marked dead).
    FlowDel(u64),
    /// Remove every megaflow and empty the EMC.
    FlowFlush,
    /// Run actions on a packet from the slow path (PACKET_OUT, upcall replies).
    Execute {
        /// The frame.
        packet: Vec<u8>,
        /// Its offload metadata.
        vnet: VnetHdr,
        /// Its input port (for the key of any `Userspace` upcall).
        in_port: PortNo,
        /// What to do.
        actions: DpActions,
    },
    /// Add or replace a meter.
    SetMeter {
        /// Meter id.
        id: MeterId,
        /// Bands.
        config: DpMeterConfig,
        /// Shared counters.
        stats: Arc<MeterStats>,
    },
    /// Remove a meter.
    DelMeter {
        /// Meter id.
        id: MeterId,
    },
    /// Exit the thread.
    Shutdown,
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

/// Flows installed in the datapath, for inspection by revalidators and dumps.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) flows: Mutex<HashMap<u64, Arc<DpFlow>>>,
    pub(super) n_flows: AtomicUsize,
}

impl Registry {
    pub(super) fn remove(&self, id: u64) -> Option<Arc<DpFlow>> {
        let mut m = self.flows.lock();
        let f = m.remove(&id);
        self.n_flows.store(m.len(), Ordering::Relaxed);
        f
    }
}

struct ThreadCtl {
    ops: Sender<DpOp>,
    wake: Arc<EventFd>,
    stats: Arc<PmdStats>,
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
    meters: Mutex<HashMap<MeterId, Arc<MeterStats>>>,
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
            let (tx, rx) = crossbeam_channel::bounded(OP_QUEUE_LEN);
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
                        let _ = t.ops.send(DpOp::Shutdown);
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
            });
        }
        Ok(Datapath {
            inner: Arc::new(Shared {
                threads,
                joins: Mutex::new(joins),
                registry,
                ports: Mutex::new(HashMap::new()),
                meters: Mutex::new(HashMap::new()),
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
        let t = &self.inner.threads[thread];
        match t.ops.try_send(op) {
            Ok(()) => {
                t.wake.signal_coalesced();
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(DpError::OpQueueFull { thread }),
            Err(TrySendError::Disconnected(_)) => Err(DpError::Stopped),
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
                    self.send_best_effort(s, DpOp::FlowDel(flow.id));
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
            self.send_best_effort(t, DpOp::FlowDel(id));
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
    /// none does, e.g. for PACKET_OUT from the controller).
    pub fn execute(
        &self,
        packet: Vec<u8>,
        vnet: VnetHdr,
        in_port: PortNo,
        actions: DpActions,
    ) -> Result<(), DpError> {
        let t = self
            .inner
            .ports
            .lock()
            .get(&in_port)
            .map(|p| p.thread)
            .unwrap_or(0);
        self.send(
            t,
            DpOp::Execute {
                packet,
                vnet,
                in_port,
                actions,
            },
        )
    }

    /// Adds or replaces a meter on every thread (counters restart from zero).
    pub fn set_meter(&self, id: MeterId, config: DpMeterConfig) -> Result<(), DpError> {
        let stats = Arc::new(MeterStats::new(config.bands.len()));
        self.inner.meters.lock().insert(id, stats.clone());
        for t in 0..self.n_threads() {
            self.send(
                t,
                DpOp::SetMeter {
                    id,
                    config: config.clone(),
                    stats: stats.clone(),
                },
            )?;
        }
        Ok(())
    }

    /// Removes a meter; packets sent to it afterwards pass unmetered.
    pub fn del_meter(&self, id: MeterId) -> Result<(), DpError> {
        self.inner.meters.lock().remove(&id);
        for t in 0..self.n_threads() {
            self.send(t, DpOp::DelMeter { id })?;
        }
        Ok(())
    }

    /// Counters of a meter.
    pub fn meter_stats(&self, id: MeterId) -> Option<MeterStatsSnapshot> {
        self.inner.meters.lock().get(&id).map(|s| s.snapshot())
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
        }
    }

    /// Stops and joins every poll thread. Other clones of the handle then get
    /// [`DpError::Stopped`].
    pub fn shutdown(self) {
        for t in &self.inner.threads {
            // Blocking send: the thread drains its queue, so this cannot hang
            // unless the thread is already gone, in which case it fails at once.
            let _ = t.ops.send(DpOp::Shutdown);
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
