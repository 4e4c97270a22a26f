//! The poll threads ("PMD threads" in OVS) and the [`Datapath`] handle that drives them.
//!
//! Ownership and threads:
//! - Each poll thread (`rvs-pmd-N`, plain OS threads, not actors) owns: the receive
//!   side of the ports assigned to it, a transmit handle on every other port, its
//!   own exact-match cache, megaflow classifier, meter table and packet buffers.
//!   Nothing it touches per packet is shared, so the per-packet path takes no lock
//!   and allocates nothing (misses and userspace actions copy the packet into an
//!   [`Upcall`]: that is the slow path).
//! - The control side talks to a thread only through its bounded op channel
//!   ([`DpOp`]) plus an eventfd that wakes it. Ops are applied between receive
//!   batches. Every thread gets every flow (`FlowPut` is broadcast), so which
//!   thread owns which port never matters for correctness.
//! - Shared state read from outside is atomics only: per-thread [`PmdStats`],
//!   per-port [`PortStats`], per-flow stats inside [`DpFlow`], meter counters.
//!   The flow registry ([`Datapath::flows`]) is a mutex touched on put/delete
//!   (control path) and by a poll thread only when processing ops.
//! - Deletion is immediate: `del_flow` marks the flow dead before sending the op,
//!   and lookups skip dead flows, so no packet is forwarded by it afterwards.
//!
//! Sleeping: a thread blocks in `epoll_wait` on its ports' receive fds and its
//! eventfd, with a 100 ms timeout for housekeeping (EMC sweep, purge of dead
//! flows, subtable re-ranking, retrying ports whose receive failed). A port whose
//! receive fails repeatedly is taken out of epoll (no spinning on a readable fd
//! that only yields errors); it is retried after a second unless the error says the
//! device is gone (ENODEV/ENXIO), and such errors are counted in `port_fatal`.

use super::actions::{DpActions, UserspaceReason};
use super::dpcls::Dpcls;
use super::dpflow::DpFlow;
use super::emc::Emc;
use super::execute::{execute_actions, ExecSink};
use super::extract::extract;
use super::flow::{Field, FlowKey};
use super::meter::{now_ns, MeterConfig, MeterStats, MeterStatsSnapshot, MeterTable};
use super::packet::{Packet, PacketBatch, VnetHdr, BATCH_SIZE};
use crate::netdev::poll::{new_events, Epoll, EventFd};
use crate::netdev::{Netdev, NetdevError, NetdevTx};
use crate::types::{MeterId, PortNo};
use crate::util::time::now_ms;
use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::mpsc;

/// Capacity of each poll thread's op channel.
pub const OP_QUEUE_LEN: usize = 65_536;
/// Most upcalls in one [`UpcallBatch`].
pub const UPCALL_BATCH_MAX: usize = 64;
/// epoll timeout, i.e. the housekeeping period when idle.
const POLL_TIMEOUT_MS: i32 = 100;
/// Consecutive receive errors after which a port leaves epoll.
const RX_ERROR_LIMIT: u32 = 3;
/// How long a port stays out of epoll after repeated non-fatal receive errors.
const RX_RETRY_MS: u64 = 1000;
/// epoll token of the op eventfd.
const WAKE_TOKEN: u64 = u64::MAX;

/// Why a packet went to the slow path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpcallKind {
    /// No megaflow matched: translate and install one.
    Miss,
    /// A `Userspace` action sent it (e.g. to the controller).
    Action(UserspaceReason),
}

/// One packet for the slow path (owned copy: the poll thread keeps its buffers).
#[derive(Clone, Debug)]
pub struct Upcall {
    /// The packet's flow key (for `Action` upcalls, of the packet as modified by
    /// the actions before the `Userspace` action).
    pub key: FlowKey,
    /// The frame.
    pub packet: Vec<u8>,
    /// Its offload metadata.
    pub vnet: VnetHdr,
    /// Where it came in.
    pub in_port: PortNo,
    /// Why it is here.
    pub kind: UpcallKind,
}

/// Upcalls sent together (at most [`UPCALL_BATCH_MAX`]), one channel message per
/// receive batch to keep the channel cheap.
pub type UpcallBatch = Vec<Upcall>;

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
        stats: Arc<PortStats>,
    },
    /// Learn a port owned by another thread, for output only.
    AddTxPort {
        /// Its number.
        port_no: PortNo,
        /// A transmit handle from [`Netdev::open_tx`].
        tx: Box<dyn NetdevTx>,
        /// Counters shared with the control side.
        stats: Arc<PortStats>,
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
        config: MeterConfig,
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

/// Counters of one poll thread, written only by it.
#[derive(Debug, Default)]
pub struct PmdStats {
    /// Packets received.
    pub rx_packets: AtomicU64,
    /// Exact-match cache hits.
    pub emc_hits: AtomicU64,
    /// Megaflow classifier hits (after an EMC miss).
    pub megaflow_hits: AtomicU64,
    /// Packets that missed both caches (each becomes an upcall, or is counted in
    /// `lost` when the upcall queue is full).
    pub misses: AtomicU64,
    /// Upcalls (miss or action) dropped because the upcall queue was full.
    pub lost: AtomicU64,
    /// Frames dropped because extraction failed.
    pub rx_invalid: AtomicU64,
    /// Packets handed to devices.
    pub tx_packets: AtomicU64,
    /// Packets dropped on output (unknown port, device refused, headroom).
    pub tx_drops: AtomicU64,
    /// Userspace-action upcalls queued.
    pub action_upcalls: AtomicU64,
    /// Packets dropped by meters.
    pub meter_drops: AtomicU64,
    /// Loop iterations.
    pub iterations: AtomicU64,
    /// Ops applied.
    pub ops: AtomicU64,
    /// Receive errors meaning the device is gone (port taken out of polling).
    pub port_fatal: AtomicU64,
}

/// A copy of [`PmdStats`] (or a sum of several).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PmdStatsSnapshot {
    /// Packets received.
    pub rx_packets: u64,
    /// EMC hits.
    pub emc_hits: u64,
    /// Megaflow hits.
    pub megaflow_hits: u64,
    /// Cache misses (upcalls queued or lost).
    pub misses: u64,
    /// Upcalls lost.
    pub lost: u64,
    /// Invalid frames.
    pub rx_invalid: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Packets dropped on output.
    pub tx_drops: u64,
    /// Action upcalls queued.
    pub action_upcalls: u64,
    /// Meter drops.
    pub meter_drops: u64,
    /// Loop iterations.
    pub iterations: u64,
    /// Ops applied.
    pub ops: u64,
    /// Fatal port receive errors.
    pub port_fatal: u64,
}

impl PmdStats {
    /// Reads all counters.
    pub fn snapshot(&self) -> PmdStatsSnapshot {
        let rx_packets = self.rx_packets.load(Ordering::Acquire);
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PmdStatsSnapshot {
            rx_packets,
            emc_hits: r(&self.emc_hits),
            megaflow_hits: r(&self.megaflow_hits),
            misses: r(&self.misses),
            lost: r(&self.lost),
            rx_invalid: r(&self.rx_invalid),
            tx_packets: r(&self.tx_packets),
            tx_drops: r(&self.tx_drops),
            action_upcalls: r(&self.action_upcalls),
            meter_drops: r(&self.meter_drops),
            iterations: r(&self.iterations),
            ops: r(&self.ops),
            port_fatal: r(&self.port_fatal),
        }
    }
}

impl std::ops::Add for PmdStatsSnapshot {
    type Output = PmdStatsSnapshot;
    fn add(self, o: PmdStatsSnapshot) -> PmdStatsSnapshot {
        PmdStatsSnapshot {
            rx_packets: self.rx_packets + o.rx_packets,
            emc_hits: self.emc_hits + o.emc_hits,
            megaflow_hits: self.megaflow_hits + o.megaflow_hits,
            misses: self.misses + o.misses,
            lost: self.lost + o.lost,
            rx_invalid: self.rx_invalid + o.rx_invalid,
            tx_packets: self.tx_packets + o.tx_packets,
            tx_drops: self.tx_drops + o.tx_drops,
            action_upcalls: self.action_upcalls + o.action_upcalls,
            meter_drops: self.meter_drops + o.meter_drops,
            iterations: self.iterations + o.iterations,
            ops: self.ops + o.ops,
            port_fatal: self.port_fatal + o.port_fatal,
        }
    }
}

/// Statistics of the whole datapath.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpStats {
    /// Per poll thread, by index.
    pub threads: Vec<PmdStatsSnapshot>,
    /// Sum over threads.
    pub total: PmdStatsSnapshot,
    /// Ops that could not be queued (channel full) for deletes and flushes, whose
    /// effect does not depend on the op (flows are killed first; housekeeping
    /// purges them).
    pub ops_dropped: u64,
}

/// Counters of one port, shared by every thread that receives or transmits on it.
#[derive(Debug, Default)]
pub struct PortStats {
    /// Packets received.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Received frames dropped (unparseable).
    pub rx_dropped: AtomicU64,
    /// Failed receive calls.
    pub rx_errors: AtomicU64,
    /// Errors the device itself counted (last value read from it).
    pub rx_dev_errors: AtomicU64,
    /// Frames the kernel dropped because we did not read fast enough (last
    /// cumulative value read from the device).
    pub rx_overruns: AtomicU64,
    /// Packets sent.
    pub tx_packets: AtomicU64,
    /// Bytes sent.
    pub tx_bytes: AtomicU64,
    /// Packets the device dropped on transmit.
    pub tx_dropped: AtomicU64,
    /// Packets lost to failed transmit calls.
    pub tx_errors: AtomicU64,
}

/// A copy of [`PortStats`], in OpenFlow PORT_STATS terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortStatsSnapshot {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received frames dropped (unparseable, or overruns).
    pub rx_dropped: u64,
    /// Receive errors (failed calls plus device-counted errors).
    pub rx_errors: u64,
    /// Frames lost to receive overruns (OpenFlow `rx_over_err`).
    pub rx_over_err: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets dropped on transmit.
    pub tx_dropped: u64,
    /// Transmit errors.
    pub tx_errors: u64,
}

impl PortStats {
    /// Reads all counters.
    pub fn snapshot(&self) -> PortStatsSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        PortStatsSnapshot {
            rx_packets: r(&self.rx_packets),
            rx_bytes: r(&self.rx_bytes),
            rx_dropped: r(&self.rx_dropped) + r(&self.rx_overruns),
            rx_errors: r(&self.rx_errors) + r(&self.rx_dev_errors),
            rx_over_err: r(&self.rx_overruns),
            tx_packets: r(&self.tx_packets),
            tx_bytes: r(&self.tx_bytes),
            tx_dropped: r(&self.tx_dropped),
            tx_errors: r(&self.tx_errors),
        }
    }
}

/// Flows installed in the datapath, for inspection by revalidators and dumps.
#[derive(Default)]
struct Registry {
    flows: Mutex<HashMap<u64, Arc<DpFlow>>>,
    n_flows: AtomicUsize,
}

impl Registry {
    fn remove(&self, id: u64) -> Option<Arc<DpFlow>> {
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
    stats: Arc<PortStats>,
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
        let stats = Arc::new(PortStats::default());
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
    pub fn port_stats(&self, port_no: PortNo) -> Option<PortStatsSnapshot> {
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
    pub fn set_meter(&self, id: MeterId, config: MeterConfig) -> Result<(), DpError> {
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
        let threads: Vec<PmdStatsSnapshot> = self
            .inner
            .threads
            .iter()
            .map(|t| t.stats.snapshot())
            .collect();
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

/// A port as one poll thread sees it.
struct Port {
    port_no: PortNo,
    dev: PortDev,
    /// Outputs staged for this port during the current batch.
    tx: PacketBatch,
    stats: Arc<PortStats>,
    /// Receive side state (owned ports only).
    in_epoll: bool,
    rx_errors_in_row: u32,
    retry_at_ms: Option<u64>,
}

enum PortDev {
    Owned(Box<dyn Netdev>),
    Tx(Box<dyn NetdevTx>),
}

impl Port {
    /// Sends the staged batch.
    fn flush(&mut self, ctr: &mut Counters) {
        if self.tx.is_empty() {
            return;
        }
        let n = self.tx.len();
        let bytes: u64 = self.tx.packets().iter().map(|p| p.len() as u64).sum();
        let r = match &mut self.dev {
            PortDev::Owned(d) => d.send_batch(&mut self.tx),
            PortDev::Tx(d) => d.send_batch(&mut self.tx),
        };
        match r {
            Ok(r) => {
                self.stats
                    .tx_packets
                    .fetch_add(r.sent as u64, Ordering::Relaxed);
                if r.sent == n {
                    self.stats.tx_bytes.fetch_add(bytes, Ordering::Relaxed);
                } else if n > 0 {
                    // Approximate bytes when some packets were dropped.
                    self.stats
                        .tx_bytes
                        .fetch_add(bytes * r.sent as u64 / n as u64, Ordering::Relaxed);
                }
                if r.dropped > 0 {
                    self.stats
                        .tx_dropped
                        .fetch_add(r.dropped as u64, Ordering::Relaxed);
                }
                ctr.tx_packets += r.sent as u64;
                ctr.tx_drops += r.dropped as u64;
            }
            Err(_) => {
                self.stats.tx_errors.fetch_add(n as u64, Ordering::Relaxed);
                ctr.tx_drops += n as u64;
            }
        }
        self.tx.clear();
    }
}

/// Per-batch counters, added to the shared atomics once per batch.
#[derive(Default)]
struct Counters {
    rx_packets: u64,
    emc_hits: u64,
    megaflow_hits: u64,
    misses: u64,
    lost: u64,
    rx_invalid: u64,
    tx_packets: u64,
    tx_drops: u64,
    action_upcalls: u64,
    meter_drops: u64,
}

impl Counters {
    fn publish(&mut self, s: &PmdStats) {
        let add = |a: &AtomicU64, v: u64| {
            if v != 0 {
                a.fetch_add(v, Ordering::Relaxed);
            }
        };
        add(&s.emc_hits, self.emc_hits);
        add(&s.megaflow_hits, self.megaflow_hits);
        add(&s.misses, self.misses);
        add(&s.lost, self.lost);
        add(&s.rx_invalid, self.rx_invalid);
        add(&s.tx_packets, self.tx_packets);
        add(&s.tx_drops, self.tx_drops);
        add(&s.action_upcalls, self.action_upcalls);
        add(&s.meter_drops, self.meter_drops);
        // Last, with Release: a reader that sees these packets counted (Acquire
        // load first in `snapshot`) also sees every other counter of the batch.
        if self.rx_packets != 0 {
            s.rx_packets.fetch_add(self.rx_packets, Ordering::Release);
        }
        *self = Counters::default();
    }
}

/// Per-flow statistics gathered over one receive batch, so each flow's atomics
/// are written once per batch rather than once per packet.
struct FlowAcc {
    slots: Vec<(Option<Arc<DpFlow>>, u64, u64, u16)>,
    len: usize,
}

impl FlowAcc {
    fn new() -> FlowAcc {
        FlowAcc {
            slots: (0..BATCH_SIZE).map(|_| (None, 0, 0, 0)).collect(),
            len: 0,
        }
    }

    #[inline]
    fn add(&mut self, flow: &Arc<DpFlow>, bytes: u64, tcp_flags: u16, now: u64) {
        for s in &mut self.slots[..self.len] {
            if let Some(f) = &s.0 {
                if Arc::ptr_eq(f, flow) {
                    s.1 += 1;
                    s.2 += bytes;
                    s.3 |= tcp_flags;
                    return;
                }
            }
        }
        if self.len == self.slots.len() {
            // More distinct flows than slots (only for Execute-sized bursts): write
            // straight through.
            flow.stats.add(1, bytes, now, tcp_flags);
            return;
        }
        self.slots[self.len] = (Some(flow.clone()), 1, bytes, tcp_flags);
        self.len += 1;
    }

    fn flush(&mut self, now: u64) {
        for s in &mut self.slots[..self.len] {
            if let Some(f) = s.0.take() {
                f.stats.add(s.1, s.2, now, s.3);
            }
        }
        self.len = 0;
    }
}

/// Stages outputs on ports and queues upcalls for one packet's actions.
struct Sink<'a> {
    ports: &'a mut [Port],
    index: &'a hashbrown::HashMap<u32, usize>,
    pending: &'a mut UpcallBatch,
    upcall_tx: &'a mpsc::Sender<UpcallBatch>,
    ctr: &'a mut Counters,
    key: &'a FlowKey,
}

impl ExecSink for Sink<'_> {
    #[inline]
    fn output(&mut self, port: PortNo, pkt: &mut Packet, last_use: bool) {
        let Some(&i) = self.index.get(&port.0) else {
            self.ctr.tx_drops += 1;
            return;
        };
        let p = &mut self.ports[i];
        if p.tx.is_full() {
            p.flush(self.ctr);
        }
        let ok = if last_use {
            p.tx.push_swap(pkt)
        } else {
            p.tx.push_copy(pkt)
        };
        if !ok {
            self.ctr.tx_drops += 1;
        }
    }

    fn userspace(&mut self, pkt: &Packet, reason: UserspaceReason) {
        let key = extract(pkt.data(), pkt.in_port).unwrap_or(*self.key);
        self.ctr.action_upcalls += 1;
        queue_upcall(
            self.pending,
            self.upcall_tx,
            self.ctr,
            key,
            pkt,
            UpcallKind::Action(reason),
        );
    }
}

/// Appends an upcall to the pending batch, sending the batch when it is full.
/// When the upcall channel has no room the packet is not even copied.
fn queue_upcall(
    pending: &mut UpcallBatch,
    tx: &mpsc::Sender<UpcallBatch>,
    ctr: &mut Counters,
    key: FlowKey,
    pkt: &Packet,
    kind: UpcallKind,
) {
    if tx.capacity() == 0 {
        ctr.lost += 1;
        return;
    }
    pending.push(Upcall {
        key,
        packet: pkt.data().to_vec(),
        vnet: pkt.vnet,
        in_port: pkt.in_port,
        kind,
    });
    if pending.len() >= UPCALL_BATCH_MAX {
        send_upcalls(pending, tx, ctr);
    }
}

/// Sends the pending batch; on failure its upcalls are counted lost and the
/// vector is kept for reuse.
fn send_upcalls(pending: &mut UpcallBatch, tx: &mpsc::Sender<UpcallBatch>, ctr: &mut Counters) {
    if pending.is_empty() {
        return;
    }
    let batch = std::mem::take(pending);
    match tx.try_send(batch) {
        Ok(()) => *pending = Vec::with_capacity(UPCALL_BATCH_MAX),
        Err(mpsc::error::TrySendError::Full(mut b))
        | Err(mpsc::error::TrySendError::Closed(mut b)) => {
            ctr.lost += b.len() as u64;
            b.clear();
            *pending = b;
        }
    }
}

fn sys(op: &'static str) -> impl FnOnce(std::io::Error) -> DpError {
    move |source| DpError::Sys { op, source }
}

fn is_gone(e: &NetdevError) -> bool {
    match e {
        NetdevError::NoSuchDevice(_) => true,
        NetdevError::Io { source, .. } => {
            matches!(
                source.raw_os_error(),
                Some(libc::ENODEV) | Some(libc::ENXIO)
            )
        }
        NetdevError::UnknownType(_) => false,
    }
}

/// One poll thread's state.
struct Pmd {
    idx: usize,
    /// Spin (epoll with a zero timeout) this long after the last packet.
    busy_poll: std::time::Duration,
    epoll: Epoll,
    wake: Arc<EventFd>,
    ops: Receiver<DpOp>,
    upcall_tx: mpsc::Sender<UpcallBatch>,
    stats: Arc<PmdStats>,
    registry: Arc<Registry>,
    emc: Emc,
    dpcls: Dpcls,
    meters: MeterTable,
    ports: Vec<Port>,
    index: hashbrown::HashMap<u32, usize>,
    rx: PacketBatch,
    exec_pkt: Packet,
    pending: UpcallBatch,
    acc: FlowAcc,
    ctr: Counters,
}

enum Flow {
    Continue,
    Exit,
}

impl Pmd {
    #[allow(clippy::too_many_arguments)]
    fn new(
        idx: usize,
        epoll: Epoll,
        wake: Arc<EventFd>,
        ops: Receiver<DpOp>,
        upcall_tx: mpsc::Sender<UpcallBatch>,
        stats: Arc<PmdStats>,
        registry: Arc<Registry>,
        emc_insert_inv_prob: u32,
        busy_poll: std::time::Duration,
    ) -> Pmd {
        Pmd {
            idx,
            busy_poll,
            epoll,
            wake,
            ops,
            upcall_tx,
            stats,
            registry,
            emc: Emc::new(emc_insert_inv_prob),
            dpcls: Dpcls::new(),
            meters: MeterTable::new(),
            ports: Vec::new(),
            index: hashbrown::HashMap::new(),
            rx: PacketBatch::with_capacity(BATCH_SIZE),
            exec_pkt: Packet::new(),
            pending: Vec::with_capacity(UPCALL_BATCH_MAX),
            acc: FlowAcc::new(),
            ctr: Counters::default(),
        }
    }

    fn run(mut self) {
        let mut events = new_events();
        let mut next_hk = now_ms() + POLL_TIMEOUT_MS as u64;
        let mut next_slow_hk = now_ms() + 1000;
        tracing::debug!(thread = self.idx, "datapath poll thread started");
        // Busy polling: while traffic flows (a packet within `busy_poll`), wait
        // with a zero timeout, so the next packet finds the thread running
        // instead of paying a wake-up.
        let mut spin_until: Option<std::time::Instant> = None;
        loop {
            self.stats.iterations.fetch_add(1, Ordering::Relaxed);
            let timeout = match spin_until {
                Some(t) if std::time::Instant::now() < t => {
                    // Spinning must not starve the processes our traffic
                    // goes to when they share this CPU.
                    std::thread::yield_now();
                    0
                }
                _ => POLL_TIMEOUT_MS,
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(thread = self.idx, error = %e, "epoll_wait failed");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    0
                }
            };
            if events[..n].iter().any(|ev| ev.u64 == WAKE_TOKEN) {
                self.wake.drain();
            }
            // Re-arm before draining: senders that find a signal outstanding
            // rely on this drain to see their op.
            self.wake.rearm();
            // Checked every iteration (an atomic load when empty), so an op queued
            // between the drain above and the next wait is never stranded.
            if let Flow::Exit = self.drain_ops() {
                break;
            }
            for ev in &events[..n] {
                let token = ev.u64;
                if token == WAKE_TOKEN {
                    continue;
                }
                if let Some(&i) = self.index.get(&(token as u32)) {
                    if self.poll_port(i) && !self.busy_poll.is_zero() {
                        spin_until = Some(std::time::Instant::now() + self.busy_poll);
                    }
                }
            }
            let now = now_ms();
            if now >= next_hk {
                next_hk = now + POLL_TIMEOUT_MS as u64;
                self.housekeeping(now, now >= next_slow_hk);
                if now >= next_slow_hk {
                    next_slow_hk = now + 1000;
                }
            }
        }
        send_upcalls(&mut self.pending, &self.upcall_tx, &mut self.ctr);
        self.ctr.publish(&self.stats);
        tracing::debug!(thread = self.idx, "datapath poll thread stopped");
    }

    fn drain_ops(&mut self) -> Flow {
        loop {
            match self.ops.try_recv() {
                Ok(op) => {
                    self.stats.ops.fetch_add(1, Ordering::Relaxed);
                    if let Flow::Exit = self.handle_op(op) {
                        return Flow::Exit;
                    }
                }
                Err(TryRecvError::Empty) => return Flow::Continue,
                Err(TryRecvError::Disconnected) => return Flow::Exit,
            }
        }
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, p) in self.ports.iter().enumerate() {
            self.index.insert(p.port_no.0, i);
        }
    }

    fn add_port(&mut self, port_no: PortNo, dev: PortDev, stats: Arc<PortStats>) {
        self.remove_port(port_no);
        let mut port = Port {
            port_no,
            dev,
            tx: PacketBatch::with_capacity(BATCH_SIZE),
            stats,
            in_epoll: false,
            rx_errors_in_row: 0,
            retry_at_ms: None,
        };
        if let PortDev::Owned(d) = &port.dev {
            match self.epoll.add(d.rx_fd(), port_no.0 as u64) {
                Ok(()) => port.in_epoll = true,
                Err(e) => {
                    tracing::warn!(port = %port_no, error = %e, "cannot poll port");
                    port.retry_at_ms = Some(now_ms() + RX_RETRY_MS);
                }
            }
        }
        self.ports.push(port);
        self.reindex();
    }

    fn remove_port(&mut self, port_no: PortNo) {
        if let Some(&i) = self.index.get(&port_no.0) {
            let p = self.ports.remove(i);
            if let (PortDev::Owned(d), true) = (&p.dev, p.in_epoll) {
                let _ = self.epoll.del(d.rx_fd());
            }
            self.reindex();
        }
    }

    fn handle_op(&mut self, op: DpOp) -> Flow {
        match op {
            DpOp::AddPort {
                port_no,
                netdev,
                stats,
            } => self.add_port(port_no, PortDev::Owned(netdev), stats),
            DpOp::AddTxPort { port_no, tx, stats } => {
                self.add_port(port_no, PortDev::Tx(tx), stats)
            }
            DpOp::DelPort { port_no } => self.remove_port(port_no),
            DpOp::FlowPut(flow) => {
                if flow.is_dead() {
                    return Flow::Continue;
                }
                let id = flow.id;
                if let Some(old) = self.dpcls.insert(flow) {
                    if old.id != id {
                        old.kill();
                        self.registry.remove(old.id);
                    }
                }
            }
            DpOp::FlowDel(id) => {
                if let Some(f) = self.dpcls.remove(id) {
                    f.kill();
                }
            }
            DpOp::FlowFlush => {
                self.dpcls.clear();
                self.emc.clear();
            }
            DpOp::Execute {
                packet,
                vnet,
                in_port,
                actions,
            } => self.execute(&packet, vnet, in_port, &actions),
            DpOp::SetMeter { id, config, stats } => self.meters.set(id.0, &config, stats, now_ns()),
            DpOp::DelMeter { id } => {
                self.meters.remove(id.0);
            }
            DpOp::Shutdown => return Flow::Exit,
        }
        Flow::Continue
    }

    fn execute(&mut self, packet: &[u8], vnet: VnetHdr, in_port: PortNo, actions: &DpActions) {
        let area = self.exec_pkt.rx_area();
        let n = packet.len().min(area.len());
        area[..n].copy_from_slice(&packet[..n]);
        self.exec_pkt.set_len(n);
        self.exec_pkt.vnet = vnet;
        self.exec_pkt.in_port = in_port;
        let key = extract(self.exec_pkt.data(), in_port).unwrap_or_else(|_| {
            let mut k = FlowKey::default();
            k.set(Field::InPort, in_port.0 as u128);
            k
        });
        let mut sink = Sink {
            ports: &mut self.ports,
            index: &self.index,
            pending: &mut self.pending,
            upcall_tx: &self.upcall_tx,
            ctr: &mut self.ctr,
            key: &key,
        };
        let r = execute_actions(
            &mut self.exec_pkt,
            actions,
            &mut self.meters,
            now_ns(),
            &mut sink,
        );
        if r.meter_drop {
            self.ctr.meter_drops += 1;
        }
        if r.push_failed {
            self.ctr.tx_drops += 1;
        }
        self.finish_batch();
    }

    /// Flushes staged outputs and upcalls and publishes counters.
    fn finish_batch(&mut self) {
        for p in &mut self.ports {
            p.flush(&mut self.ctr);
        }
        send_upcalls(&mut self.pending, &self.upcall_tx, &mut self.ctr);
        self.ctr.publish(&self.stats);
    }

    /// Receives and processes one batch from port `i`; true when it had packets.
    fn poll_port(&mut self, i: usize) -> bool {
        self.rx.clear();
        let port = &mut self.ports[i];
        let PortDev::Owned(dev) = &mut port.dev else {
            return false;
        };
        match dev.recv_batch(&mut self.rx) {
            Ok(0) => {
                port.rx_errors_in_row = 0;
                false
            }
            Ok(_) => {
                port.rx_errors_in_row = 0;
                let in_port = port.port_no;
                self.process_rx(i, in_port);
                true
            }
            Err(e) => {
                port.stats.rx_errors.fetch_add(1, Ordering::Relaxed);
                port.rx_errors_in_row += 1;
                let gone = is_gone(&e);
                if gone || port.rx_errors_in_row >= RX_ERROR_LIMIT {
                    if port.in_epoll {
                        let _ = self.epoll.del(dev.rx_fd());
                        port.in_epoll = false;
                    }
                    if gone {
                        self.stats.port_fatal.fetch_add(1, Ordering::Relaxed);
                        port.retry_at_ms = None;
                        tracing::warn!(port = %port.port_no, error = %e, "port device gone; receive stopped");
                    } else {
                        port.retry_at_ms = Some(now_ms() + RX_RETRY_MS);
                        tracing::warn!(port = %port.port_no, error = %e, "repeated receive errors; polling paused");
                    }
                }
                false
            }
        }
    }

    /// The per-packet path: extract, EMC, megaflow classifier, execute or upcall.
    fn process_rx(&mut self, port_idx: usize, in_port: PortNo) {
        let now = now_ms();
        let tnow = now_ns();
        let Pmd {
            rx,
            ports,
            index,
            emc,
            dpcls,
            meters,
            pending,
            upcall_tx,
            acc,
            ctr,
            ..
        } = self;
        let mut rx_bytes = 0u64;
        let mut invalid = 0u64;
        let n = rx.len();
        ctr.rx_packets += n as u64;
        for pkt in rx.packets_mut() {
            pkt.in_port = in_port;
            let len = pkt.len() as u64;
            rx_bytes += len;
            let key = match extract(pkt.data(), in_port) {
                Ok(k) => k,
                Err(_) => {
                    invalid += 1;
                    continue;
                }
            };
            let hash = key.hash64();
            let flow = if let Some(f) = emc.lookup(&key, hash) {
                ctr.emc_hits += 1;
                f.clone()
            } else if let Some(f) = dpcls.lookup(&key) {
                ctr.megaflow_hits += 1;
                let f = f.clone();
                emc.maybe_insert(&key, hash, &f);
                f
            } else {
                ctr.misses += 1;
                queue_upcall(pending, upcall_tx, ctr, key, pkt, UpcallKind::Miss);
                continue;
            };
            let actions = flow.actions.load();
            acc.add(&flow, len, key.get(Field::TcpFlags) as u16, now);
            let mut sink = Sink {
                ports,
                index,
                pending,
                upcall_tx,
                ctr,
                key: &key,
            };
            let r = execute_actions(pkt, &actions, meters, tnow, &mut sink);
            if r.meter_drop {
                ctr.meter_drops += 1;
            }
            if r.push_failed {
                ctr.tx_drops += 1;
            }
        }
        ctr.rx_invalid += invalid;
        acc.flush(now);
        let ps = &ports[port_idx].stats;
        ps.rx_packets.fetch_add(n as u64, Ordering::Relaxed);
        ps.rx_bytes.fetch_add(rx_bytes, Ordering::Relaxed);
        if invalid > 0 {
            ps.rx_dropped.fetch_add(invalid, Ordering::Relaxed);
        }
        rx.clear();
        self.finish_batch();
    }

    fn housekeeping(&mut self, now: u64, slow: bool) {
        self.emc.sweep(1024);
        for p in &mut self.ports {
            let PortDev::Owned(d) = &mut p.dev else {
                continue;
            };
            p.stats
                .rx_dev_errors
                .store(d.rx_errors(), Ordering::Relaxed);
            p.stats
                .rx_overruns
                .store(d.rx_overruns(), Ordering::Relaxed);
            if let Some(at) = p.retry_at_ms {
                if now >= at && !p.in_epoll {
                    match self.epoll.add(d.rx_fd(), p.port_no.0 as u64) {
                        Ok(()) => {
                            p.in_epoll = true;
                            p.retry_at_ms = None;
                            p.rx_errors_in_row = 0;
                        }
                        Err(_) => p.retry_at_ms = Some(now + RX_RETRY_MS),
                    }
                }
            }
        }
        if slow {
            self.dpcls.purge_dead();
            self.dpcls.resort();
        }
        // Upcalls that found a full channel are not retried; nothing is pending
        // here beyond what finish_batch sent. Publish anything left over.
        self.ctr.publish(&self.stats);
    }
}

#[cfg(test)]
mod tests;
