//! What the control side and a poll thread share: the [`DpOp`] messages on
//! a thread's bounded op channel, and the [`Registry`] of installed flows.
//! Below both `handle` (which sends ops) and `thread` (which applies them).

use super::stats::PortCounters;
use crate::datapath::actions::DpActions;
use crate::datapath::dpflow::DpFlow;
use crate::datapath::meter::{DpMeterConfig, MeterCounters, MeterSpec};
use crate::netdev::packet::{TunnelMeta, VnetHdr};
use crate::netdev::{Netdev, NetdevTx};
use crate::types::{MeterId, PortNo};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A message to one poll thread. Built by `Datapath`'s methods; public so the
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
    /// Remove this megaflow (it is already marked dead).
    FlowDel(Arc<DpFlow>),
    /// Remove every megaflow and empty the EMC.
    FlowFlush,
    /// Run actions on a packet from the slow path (PACKET_OUT, upcall replies).
    Execute {
        /// The frame.
        packet: Vec<u8>,
        /// Its offload metadata.
        vnet: VnetHdr,
        /// Its tunnel metadata: what a tunnel port received it with (an
        /// upcall reply), which the actions' tunnel set-fields modify and a
        /// tunnel port's transmit reads. Default for PACKET_OUT.
        tunnel: TunnelMeta,
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
        stats: Arc<MeterCounters>,
    },
    /// Remove a meter.
    DelMeter {
        /// Meter id.
        id: MeterId,
    },
    /// Replace the whole meter table (a thread that missed updates).
    SyncMeters(Vec<MeterSpec>),
    /// Exit the thread.
    Shutdown,
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
