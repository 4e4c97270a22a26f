//! Counters of the poll threads and of the ports, each declared once with
//! [`crate::counter_set!`] (atomics, snapshot, sums, export walk).
//!
//! Threads: a poll thread accumulates its own counters in a plain
//! [`PmdStatsSnapshot`] while it works on a batch and publishes the delta into
//! its shared [`PmdStats`] once per batch ([`publish`]); anyone may read them
//! ([`read`]). Port counters are shared by every thread that receives or
//! transmits on the port and bumped directly (once per batch).

use std::sync::atomic::Ordering;

crate::counter_set! {
    /// Counters of one poll thread (OVS's `pmd_perf_stats`), written only by it.
    pub struct PmdStats / PmdStatsSnapshot {
        /// Packets received.
        rx_packets,
        /// Exact-match cache hits.
        emc_hits,
        /// Megaflow classifier hits (after an EMC miss).
        megaflow_hits,
        /// Subtables probed by the megaflow lookups that hit (OVS's
        /// `PMD_STAT_MASKED_LOOKUP`); divided by `megaflow_hits` it is the
        /// average number of subtable lookups per megaflow hit.
        masked_lookups,
        /// Packets that missed both caches (each becomes an upcall, or is
        /// counted in `lost` when the upcall queue is full).
        misses,
        /// Upcalls (miss or action) dropped because the upcall queue was full.
        lost,
        /// The misses among `lost` (OVS's "miss with failed upcall").
        miss_upcalls_lost,
        /// Frames dropped because extraction failed.
        rx_invalid,
        /// Packets handed to devices.
        tx_packets,
        /// Transmit calls (batches) made to devices (OVS's
        /// `PMD_STAT_SENT_BATCHES`); `tx_packets / tx_batches` is the average
        /// batch size.
        tx_batches,
        /// Packets dropped on output (unknown port, device refused, headroom).
        tx_drops,
        /// Userspace-action upcalls queued.
        action_upcalls,
        /// Packets dropped by meters.
        meter_drops,
        /// Packets run through actions for the slow path (packet-outs and
        /// packets whose miss an upcall handler translated).
        exec_packets,
        /// Loop iterations.
        iterations,
        /// Ops applied.
        ops,
        /// Receive errors meaning the device is gone (port taken out of polling).
        port_fatal,
    }
}

/// Adds a thread's locally accumulated counters to its shared ones and
/// clears them. `rx_packets` goes last with Release: a reader that sees these
/// packets counted ([`read`] loads it with Acquire first) also sees every
/// other counter of the batch.
pub(super) fn publish(local: &mut PmdStatsSnapshot, shared: &PmdStats) {
    let rx = std::mem::take(&mut local.rx_packets);
    shared.add_from(local);
    if rx != 0 {
        shared.rx_packets.fetch_add(rx, Ordering::Release);
    }
    *local = PmdStatsSnapshot::default();
}

/// Reads a thread's counters (see [`publish`] for the ordering).
pub fn read(shared: &PmdStats) -> PmdStatsSnapshot {
    let rx = shared.rx_packets.load(Ordering::Acquire);
    PmdStatsSnapshot {
        rx_packets: rx,
        ..shared.snapshot()
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
    /// Whole meter sets queued to threads that had missed a meter update.
    pub meter_syncs: u64,
    /// Threads still waiting for such a sync (their meters may differ).
    pub meters_stale_threads: usize,
}

crate::counter_set! {
    /// Counters of one port, shared by every thread that receives or
    /// transmits on it.
    pub struct PortCounters / PortCountersSnapshot {
        /// Packets received.
        rx_packets,
        /// Bytes received.
        rx_bytes,
        /// Received frames dropped (unparseable).
        rx_dropped,
        /// Failed receive calls.
        rx_errors,
        /// Errors the device itself counted (last cumulative value read from it).
        rx_dev_errors,
        /// Frames the kernel dropped because we did not read fast enough (last
        /// cumulative value read from the device).
        rx_overruns,
        /// Packets sent.
        tx_packets,
        /// Bytes sent.
        tx_bytes,
        /// Packets the device dropped on transmit.
        tx_dropped,
        /// Packets lost to failed transmit calls.
        tx_errors,
    }
}

/// The port counters in OpenFlow PORT_STATS terms (OF1.3.5 §7.3.5.6,
/// `struct ofp_port_stats`), where drops and errors are totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct OfPortCounters {
    /// Packets received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Received frames dropped: unparseable ones plus overruns.
    pub rx_dropped: u64,
    /// Receive errors: failed calls plus device-counted errors.
    pub rx_errors: u64,
    /// Frames lost to receive overruns (`rx_over_err`).
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

impl PortCountersSnapshot {
    /// The OpenFlow view of these counters.
    pub fn openflow(&self) -> OfPortCounters {
        OfPortCounters {
            rx_packets: self.rx_packets,
            rx_bytes: self.rx_bytes,
            rx_dropped: self.rx_dropped + self.rx_overruns,
            rx_errors: self.rx_errors + self.rx_dev_errors,
            rx_over_err: self.rx_overruns,
            tx_packets: self.tx_packets,
            tx_bytes: self.tx_bytes,
            tx_dropped: self.tx_dropped,
            tx_errors: self.tx_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::counters::CounterSet;

    #[test]
    fn publish_moves_the_local_delta_and_clears_it() {
        let shared = PmdStats::default();
        let mut local = PmdStatsSnapshot {
            rx_packets: 3,
            emc_hits: 2,
            masked_lookups: 5,
            ..Default::default()
        };
        publish(&mut local, &shared);
        assert_eq!(local, PmdStatsSnapshot::default());
        local.rx_packets = 1;
        publish(&mut local, &shared);
        let s = read(&shared);
        assert_eq!((s.rx_packets, s.emc_hits, s.masked_lookups), (4, 2, 5));
        assert!(PmdStatsSnapshot::FIELDS
            .iter()
            .any(|(n, h)| *n == "tx_batches" && h.contains("SENT_BATCHES")));
    }

    #[test]
    fn openflow_view_totals_drops_and_errors() {
        let s = PortCountersSnapshot {
            rx_dropped: 1,
            rx_overruns: 4,
            rx_errors: 2,
            rx_dev_errors: 3,
            ..Default::default()
        };
        let o = s.openflow();
        assert_eq!((o.rx_dropped, o.rx_errors, o.rx_over_err), (5, 5, 4));
    }
}
