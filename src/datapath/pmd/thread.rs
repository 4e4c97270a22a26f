//! One poll thread ("PMD thread" in OVS, `dpif-netdev.c:pmd_thread_main()`):
//! its state and its loop.
//!
//! A thread owns the receive side of the ports assigned to it, a transmit
//! handle on every other port, its own exact-match cache, megaflow
//! classifier, meter table and packet buffers. Nothing it touches per packet
//! is shared, so the per-packet path takes no lock and allocates nothing
//! (misses and userspace actions copy the packet into an upcall: that is the
//! slow path). Counters are accumulated in a plain snapshot and published
//! once per batch.

use super::protocol::{DpOp, Registry};
use super::stats::{publish, PmdStats, PmdStatsSnapshot, PortCounters};
use super::upcall::{queue_upcall, send_upcalls, UpcallBatch, UpcallKind, UPCALL_BATCH_MAX};
use super::{POLL_TIMEOUT_MS, RX_ERROR_LIMIT, RX_RETRY_MS, WAKE_TOKEN};
use crate::datapath::actions::{DpActions, UserspaceReason};
use crate::datapath::dpcls::Dpcls;
use crate::datapath::dpflow::DpFlow;
use crate::datapath::emc::Emc;
use crate::datapath::execute::{execute_actions, ExecSink};
use crate::datapath::extract::extract_packet;
use crate::datapath::flow::{Field, FlowKey};
use crate::datapath::meter::{now_ns, MeterTable};
use crate::netdev::packet::{Packet, PacketBatch, TunnelMeta, VnetHdr, BATCH_SIZE};
use crate::netdev::poll::{new_events, Epoll, EventFd};
use crate::netdev::{LinkLoss, Netdev, NetdevTx};
use crate::types::PortNo;
use crate::util::bounded::BoundedReceiver;
use crate::util::time::now_ms;
use crossbeam_channel::TryRecvError;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A port as one poll thread sees it.
struct PmdPort {
    port_no: PortNo,
    dev: PortDev,
    /// Outputs staged for this port during the current batch.
    tx: PacketBatch,
    stats: Arc<PortCounters>,
    /// Receive side state (owned ports only).
    in_epoll: bool,
    rx_errors_in_row: u32,
    retry_at_ms: Option<u64>,
}

enum PortDev {
    Owned(Box<dyn Netdev>),
    Tx(Box<dyn NetdevTx>),
}

impl PmdPort {
    /// Sends the staged batch.
    fn flush(&mut self, ctr: &mut PmdStatsSnapshot) {
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
        ctr.tx_batches += 1;
        self.tx.clear();
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
    ports: &'a mut [PmdPort],
    index: &'a hashbrown::HashMap<u32, usize>,
    pending: &'a mut UpcallBatch,
    upcall_tx: &'a mpsc::Sender<UpcallBatch>,
    ctr: &'a mut PmdStatsSnapshot,
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
        let key = extract_packet(pkt).unwrap_or(*self.key);
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

/// One poll thread's state.
pub(super) struct Pmd {
    idx: usize,
    /// Spin (epoll with a zero timeout) this long after the last packet.
    busy_poll: std::time::Duration,
    epoll: Epoll,
    wake: Arc<EventFd>,
    ops: BoundedReceiver<DpOp>,
    upcall_tx: mpsc::Sender<UpcallBatch>,
    stats: Arc<PmdStats>,
    registry: Arc<Registry>,
    emc: Emc,
    dpcls: Dpcls,
    meters: MeterTable,
    ports: Vec<PmdPort>,
    index: hashbrown::HashMap<u32, usize>,
    rx: PacketBatch,
    exec_pkt: Packet,
    pending: UpcallBatch,
    acc: FlowAcc,
    /// This batch's counters, published into `stats` when it ends.
    ctr: PmdStatsSnapshot,
}

impl Pmd {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        idx: usize,
        epoll: Epoll,
        wake: Arc<EventFd>,
        ops: BoundedReceiver<DpOp>,
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
            ctr: PmdStatsSnapshot::default(),
        }
    }

    pub(super) fn run(mut self) {
        let mut events = new_events();
        let mut next_hk = now_ms() + POLL_TIMEOUT_MS as u64;
        let mut next_slow_hk = now_ms() + 1000;
        tracing::debug!(thread = self.idx, "datapath poll thread started");
        // Busy polling: while traffic flows (a packet within `busy_poll`), wait
        // with a zero timeout, so the next packet finds the thread running
        // instead of paying a wake-up.
        let mut spin_until: Option<std::time::Instant> = None;
        loop {
            self.ctr.iterations += 1;
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
            if self.drain_ops().is_break() {
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
        publish(&mut self.ctr, &self.stats);
        tracing::debug!(thread = self.idx, "datapath poll thread stopped");
    }

    /// Applies every queued op. Packets executed for the slow path are
    /// transmitted together at the end (one send per port for a burst of
    /// packet-outs, not one each).
    fn drain_ops(&mut self) -> ControlFlow<()> {
        let mut executed = false;
        let flow = loop {
            match self.ops.try_recv() {
                Ok(op) => {
                    self.ctr.ops += 1;
                    let execute = matches!(op, DpOp::Execute { .. });
                    if executed && !execute {
                        // Staged outputs leave before any other op (a port
                        // removal, say) can change where they would go.
                        self.finish_batch();
                        executed = false;
                    }
                    executed |= execute;
                    if self.handle_op(op).is_break() {
                        break ControlFlow::Break(());
                    }
                }
                Err(TryRecvError::Empty) => break ControlFlow::Continue(()),
                Err(TryRecvError::Disconnected) => break ControlFlow::Break(()),
            }
        };
        if executed {
            self.finish_batch();
        }
        flow
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, p) in self.ports.iter().enumerate() {
            self.index.insert(p.port_no.0, i);
        }
    }

    fn add_port(&mut self, port_no: PortNo, dev: PortDev, stats: Arc<PortCounters>) {
        self.remove_port(port_no);
        let mut port = PmdPort {
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

    fn handle_op(&mut self, op: DpOp) -> ControlFlow<()> {
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
                    return ControlFlow::Continue(());
                }
                let id = flow.id;
                if let Some(old) = self.dpcls.insert(flow) {
                    if old.id != id {
                        old.kill();
                        self.registry.remove(old.id);
                    }
                }
            }
            DpOp::FlowDel(flow) => {
                if let Some(f) = self.dpcls.remove(&flow) {
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
                tunnel,
                in_port,
                actions,
            } => self.execute(&packet, vnet, tunnel, in_port, &actions),
            DpOp::SetMeter { id, config, stats } => self.meters.set(id.0, &config, stats, now_ns()),
            DpOp::DelMeter { id } => {
                self.meters.remove(id.0);
            }
            DpOp::SyncMeters(specs) => self.meters.sync(&specs, now_ns()),
            DpOp::Shutdown => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    fn execute(
        &mut self,
        packet: &[u8],
        vnet: VnetHdr,
        tunnel: TunnelMeta,
        in_port: PortNo,
        actions: &DpActions,
    ) {
        let area = self.exec_pkt.rx_area();
        let n = packet.len().min(area.len());
        area[..n].copy_from_slice(&packet[..n]);
        self.exec_pkt.set_len(n);
        self.exec_pkt.vnet = vnet;
        self.exec_pkt.tunnel = tunnel;
        self.exec_pkt.in_port = in_port;
        let key = extract_packet(&self.exec_pkt).unwrap_or_else(|_| {
            let mut k = FlowKey::default();
            k.set(Field::InPort, in_port.0 as u128);
            k.set_tunnel(&tunnel);
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
        self.ctr.exec_packets += 1;
    }

    /// Flushes staged outputs and upcalls and publishes counters.
    fn finish_batch(&mut self) {
        for p in &mut self.ports {
            p.flush(&mut self.ctr);
        }
        send_upcalls(&mut self.pending, &self.upcall_tx, &mut self.ctr);
        publish(&mut self.ctr, &self.stats);
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
                let gone = e.link_loss() == Some(LinkLoss::Gone);
                if gone || port.rx_errors_in_row >= RX_ERROR_LIMIT {
                    if port.in_epoll {
                        let _ = self.epoll.del(dev.rx_fd());
                        port.in_epoll = false;
                    }
                    if gone {
                        self.ctr.port_fatal += 1;
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
            let key = match extract_packet(pkt) {
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
            } else if let Some(f) = dpcls.lookup_counted(&key, &mut ctr.masked_lookups) {
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
        publish(&mut self.ctr, &self.stats);
    }
}
