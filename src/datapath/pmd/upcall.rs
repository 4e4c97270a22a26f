//! Upcalls: packets a poll thread hands to the slow path (misses and
//! userspace actions), queued per receive batch on a bounded channel to the
//! bridge's upcall router. A full channel drops the upcall and counts it in
//! `lost`; the packet is not even copied then.

use super::stats::PmdStatsSnapshot;
use crate::datapath::actions::UserspaceReason;
use crate::datapath::flow::FlowKey;
use crate::netdev::packet::{Packet, TunnelMeta, VnetHdr};
use crate::types::PortNo;
use tokio::sync::mpsc;

/// Most upcalls in one [`UpcallBatch`].
pub const UPCALL_BATCH_MAX: usize = 64;

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
    /// Its tunnel metadata (as received, or as the actions before a
    /// `Userspace` action left it): the slow path hands it back with the
    /// packet it executes, so that translated actions run on the same
    /// metadata the megaflow's would (the key holds `tun_id`/`tun_src`/
    /// `tun_dst` too; this adds the outer TOS/TTL).
    pub tunnel: TunnelMeta,
    /// Where it came in.
    pub in_port: PortNo,
    /// Why it is here.
    pub kind: UpcallKind,
}

/// Upcalls sent together (at most [`UPCALL_BATCH_MAX`]), one channel message per
/// receive batch to keep the channel cheap.
pub type UpcallBatch = Vec<Upcall>;

/// Appends an upcall to the pending batch, sending the batch when it is full.
/// When the upcall channel has no room the packet is not even copied.
pub(super) fn queue_upcall(
    pending: &mut UpcallBatch,
    tx: &mpsc::Sender<UpcallBatch>,
    ctr: &mut PmdStatsSnapshot,
    key: FlowKey,
    pkt: &Packet,
    kind: UpcallKind,
) {
    if tx.capacity() == 0 {
        ctr.lost += 1;
        if kind == UpcallKind::Miss {
            ctr.miss_upcalls_lost += 1;
        }
        return;
    }
    pending.push(Upcall {
        key,
        packet: pkt.data().to_vec(),
        vnet: pkt.vnet,
        tunnel: pkt.tunnel,
        in_port: pkt.in_port,
        kind,
    });
    if pending.len() >= UPCALL_BATCH_MAX {
        send_upcalls(pending, tx, ctr);
    }
}

/// Sends the pending batch; on failure its upcalls are counted lost and the
/// vector is kept for reuse.
pub(super) fn send_upcalls(
    pending: &mut UpcallBatch,
    tx: &mpsc::Sender<UpcallBatch>,
    ctr: &mut PmdStatsSnapshot,
) {
    if pending.is_empty() {
        return;
    }
    let batch = std::mem::take(pending);
    match tx.try_send(batch) {
        Ok(()) => *pending = Vec::with_capacity(UPCALL_BATCH_MAX),
        Err(mpsc::error::TrySendError::Full(mut b))
        | Err(mpsc::error::TrySendError::Closed(mut b)) => {
            ctr.lost += b.len() as u64;
            ctr.miss_upcalls_lost += b.iter().filter(|u| u.kind == UpcallKind::Miss).count() as u64;
            b.clear();
            *pending = b;
        }
    }
}
