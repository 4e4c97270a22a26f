//! Inbox of the Bridge actor, and [`BridgeShared`], the part of a bridge
//! other actors read without messaging.

use crate::datapath::dpflow::DpFlow;
use crate::datapath::flow::FlowKey;
use crate::datapath::pmd::{Datapath, DpStats, PortCountersSnapshot, UpcallBatch};
use crate::messages::connmgr::AsyncEvent;
use crate::netdev::netlink::LinkInfo;
use crate::netdev::{Netdev, PortType};
use crate::ofproto::mac_learning::MacEntryInfo;
use crate::ofproto::request::BundleCommit;
use crate::ofproto::ukey::{FlowContext, Retranslated};
use crate::ofproto::view::XlateView;
use crate::ofproto::xlate::XlateOptions;
use crate::openflow::message::OfpMsg;
use crate::openflow::Version;
use crate::types::{DatapathId, PortNo};
use crate::util::time::now_ms;
use actix::prelude::*;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::Arc;

/// The part of a bridge that other threads read: its translation view, its
/// datapath handle, its packet-in queue and the upcall routing. Created by
/// the Bridge (the only writer of the view's tables) and handed to the upcall
/// handlers (`messages::upcall::AttachBridge`), the revalidators (through
/// every ukey, as its [`FlowContext`]) and the daemon (stats).
pub struct BridgeShared {
    /// Process-unique index.
    pub index: u32,
    /// Tables, MAC learning, fail-open and their sequences.
    pub view: XlateView,
    /// The datapath (poll threads) of this bridge.
    pub dp: Datapath,
    /// Packet-ins to the Connmgr (bounded; full = dropped and counted).
    pub packet_in_tx: tokio::sync::mpsc::Sender<AsyncEvent>,
    /// The upcall handlers' queues for this bridge; the router spreads the
    /// datapath's miss batches over them (replaced when handlers are resized).
    pub upcall_routes: ArcSwap<Vec<tokio::sync::mpsc::Sender<UpcallBatch>>>,
    /// Miss batches dropped because the chosen handler's queue was full.
    pub upcall_route_drops: AtomicU64,
    /// Upcall batches between "tables read" and "flows installed or killed".
    /// With no datapath flows and nothing installing, no megaflow can be
    /// stale, so a barrier needs no revalidation round (bulk flow-mods stay fast).
    pub installing: AtomicUsize,
    /// What the bridge did with packet-outs and barriers.
    pub counters: BridgeCounters,
    /// What its state file did.
    pub state: StateCounters,
}

crate::counter_set! {
    /// A bridge's request-handling counters (PACKET_OUT delivery, barriers
    /// answered without their revalidation round), shown by `/stats`,
    /// `/metrics` and `dpif-netdev/pmd-stats-show`.
    pub struct BridgeCounters / BridgeCountersSnapshot {
        /// PACKET_OUTs whose packet a poll thread accepted.
        packet_outs,
        /// PACKET_OUTs that found the poll thread's queue full: the reply
        /// waited until it had room (the session reads nothing meanwhile).
        packet_out_waits,
        /// PACKET_OUTs dropped: the datapath had no room within the wait
        /// limit, or has stopped.
        packet_out_drops,
        /// Barriers that waited for a revalidation round.
        barrier_waits,
        /// Barriers answered without revalidation: no revalidator leader.
        barrier_no_leader,
        /// Barriers answered without revalidation: the leader's mailbox was
        /// full or closed.
        barrier_leader_busy,
        /// Barriers answered without revalidation: the leader stopped before
        /// the round finished.
        barrier_leader_lost,
        /// Barriers answered without revalidation: no round finished in time.
        barrier_timeout,
    }
}

crate::counter_set! {
    /// What a bridge's state file did (see `ofproto::persist`): saves,
    /// restored entries, and files ignored by reason. In `/stats`
    /// (`datapath_BRIDGE.state`) and `/metrics` (`rvswitchd_bridge_state_*`).
    pub struct StateCounters / StateCountersSnapshot {
        /// State files written.
        saves,
        /// State files that could not be written (logged).
        save_failures,
        /// Rules restored from the state file at start.
        rules_restored,
        /// Groups restored from the state file at start.
        groups_restored,
        /// Meters restored from the state file at start.
        meters_restored,
        /// Entries of an accepted state file that the switch refused when
        /// they were restored (logged).
        entries_refused,
        /// State files ignored: damaged, truncated, too large or not a state file.
        files_ignored_corrupt,
        /// State files ignored: written by another daemon version or format.
        files_ignored_version,
        /// State files ignored: written for another configuration of the bridge.
        files_ignored_config,
        /// State files ignored: could not be read (not a regular file, I/O error).
        files_ignored_unreadable,
    }
}

impl BridgeShared {
    /// The datapath's counters with the bridge's, for reports.
    pub fn dp_report(&self) -> DpReport {
        DpReport {
            bridge: self.view.name.clone(),
            n_flows: self.dp.n_flows(),
            stats: self.dp.stats(),
            counters: self.counters.snapshot(),
            state: self.state.snapshot(),
            upcall_route_drops: self
                .upcall_route_drops
                .load(std::sync::atomic::Ordering::Relaxed),
            ports: self
                .view
                .snapshot
                .load()
                .ports
                .values()
                .filter_map(|p| {
                    Some(PortCounterLine {
                        port_no: p.port_no,
                        name: p.name.clone(),
                        counters: self.dp.port_stats(p.port_no)?,
                    })
                })
                .collect(),
        }
    }
}

/// A bridge's datapath counters (`dpif-netdev/pmd-stats-show`, `/stats`).
#[derive(Clone, Debug)]
pub struct DpReport {
    /// Bridge name.
    pub bridge: String,
    /// Installed megaflows.
    pub n_flows: usize,
    /// Per poll thread and total.
    pub stats: DpStats,
    /// Packet-out and barrier counters.
    pub counters: BridgeCountersSnapshot,
    /// State file counters.
    pub state: StateCountersSnapshot,
    /// Miss batches dropped because the chosen handler's queue was full.
    pub upcall_route_drops: u64,
    /// Per port.
    pub ports: Vec<PortCounterLine>,
}

impl DpReport {
    /// The report as `/stats` shows it (every counter under its declared
    /// name; plain serialisation of the typed report, no rendering).
    pub fn to_json(&self) -> serde_json::Value {
        fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
        }
        serde_json::json!({
            "megaflows": self.n_flows,
            "total": json(&self.stats.total),
            "pmd_threads": self.stats.threads.iter().enumerate().map(|(i, x)| {
                let mut v = json(x);
                v["id"] = serde_json::json!(i.to_string());
                v
            }).collect::<Vec<_>>(),
            "ops_dropped": self.stats.ops_dropped,
            "meter_syncs": self.stats.meter_syncs,
            "meters_stale_threads": self.stats.meters_stale_threads,
            "upcall_route_drops": self.upcall_route_drops,
            "bridge": json(&self.counters),
            "state": json(&self.state),
            // Per port, so that overload at a port (frames the kernel dropped
            // because the poll thread fell behind) shows where it happens.
            "ports": self.ports.iter().map(|p| {
                let mut v = json(&p.counters.openflow());
                v["name"] = serde_json::json!(p.name);
                v["port_no"] = serde_json::json!(p.port_no.0);
                v
            }).collect::<Vec<_>>(),
        })
    }
}

/// One port's counters in a [`DpReport`].
#[derive(Clone, Debug)]
pub struct PortCounterLine {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// Interface name.
    pub name: String,
    /// Its counters.
    pub counters: PortCountersSnapshot,
}

impl FlowContext for BridgeShared {
    fn bridge_index(&self) -> u32 {
        self.index
    }

    fn xlate_seq(&self) -> u64 {
        self.view.xlate_seq()
    }

    fn retranslate(&self, key: &FlowKey) -> Option<Retranslated> {
        let out = self.view.translate(
            key,
            &XlateOptions {
                may_learn: false,
                now_ms: now_ms(),
                account: false,
                invalid_ttl_to_controller: false,
            },
        );
        if out.slow != 0 {
            return None;
        }
        Some(Retranslated {
            mask: out.wc,
            actions: out.actions,
            rules: out.rules.iter().cloned().collect(),
        })
    }

    fn delete_flow(&self, flow: &Arc<DpFlow>) {
        // The flow is already marked dead (the poll thread ignores it on hit);
        // this removes it from the poll thread's classifier and the registry.
        let _ = self.dp.del_flow(flow.id);
    }
}

/// One answer to an [`OfRequests`] message (defined with the request
/// handler that produces it).
pub use crate::ofproto::request::OfReply;

/// Session → Bridge: OpenFlow requests that touch the switch (tables, ports,
/// groups, meters, stats, packet-out, barrier), in arrival order. The reply is
/// the answers, in order; a barrier's reply is held until the revalidators
/// have applied every change before it.
#[derive(Message)]
#[rtype(result = "Vec<OfReply>")]
pub struct OfRequests {
    /// Session id (for FLOW_REMOVED bookkeeping and logs).
    pub conn: u64,
    /// The version the session negotiated (requests mean slightly different
    /// things in different versions).
    pub version: Version,
    /// The messages, each with its first 64 bytes for error replies.
    pub msgs: Vec<(OfpMsg, Vec<u8>)>,
    /// `Some`: a bundle's messages, committed as one change.
    pub bundle: Option<BundleCommit>,
}

crate::msg_names!(OfRequests);

/// Port → Bridge: the device is open; attach it as this OpenFlow port.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PortAttached {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// Interface name.
    pub name: String,
    /// The open device (moves on to a poll thread).
    pub netdev: Box<dyn Netdev>,
    /// Its link state.
    pub link: LinkInfo,
}

/// Port → Bridge: carrier, admin state or address changed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PortLinkChanged {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// New link state.
    pub link: LinkInfo,
}

/// Port → Bridge: the device went away (or the port is being removed).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PortDetached {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// Why.
    pub reason: String,
}

/// Daemon → Bridge: apply a reload's changes for this bridge. The answer
/// lists what failed: listeners that could not be bound and ports whose
/// device could not be opened (what the Daemon cannot see for itself).
#[derive(Message)]
#[rtype(result = "crate::messages::daemon::ApplyReport")]
pub struct Reconfigure {
    /// What changed.
    pub diff: crate::config::BridgeDiff,
    /// The bridge's new settings.
    pub cfg: crate::config::BridgeConfig,
}

/// Daemon → Bridge (just started by a reload): which of its listeners and
/// ports failed, as for [`Reconfigure`].
#[derive(Message)]
#[rtype(result = "crate::messages::daemon::ApplyReport")]
pub struct StartReport;

/// Daemon → Bridge: delete the bridge (ports, connections, datapath). Its
/// state file goes too: a deleted bridge's tables are gone, as in OVS.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopBridge;

/// Daemon → Bridge, at a clean shutdown: write the state file now (when
/// enabled), and write no other after it. Answers what was written.
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct SaveState;

/// Control-socket queries about one bridge.
#[derive(Clone, Debug)]
pub enum Query {
    /// `dpctl/dump-flows`.
    DumpDpFlows,
    /// `dpctl/del-flows`.
    DelDpFlows,
    /// `ofproto/trace BRIDGE FLOW`.
    Trace(String),
    /// `fdb/show BRIDGE`.
    FdbShow,
    /// `fdb/flush [BRIDGE]`.
    FdbFlush,
    /// `ofctl/show-connections`.
    Connections,
    /// Ports with their states (`bridge/show`).
    Show,
    /// `dpif-netdev/pmd-stats-show`-like counters.
    PmdStats,
    /// `dpctl/show`.
    DpShow,
}

/// A query; the answer is typed data that `control::render` prints.
#[derive(Message)]
#[rtype(result = "Result<BridgeAnswer, String>")]
pub struct BridgeQuery(pub Query);

/// What a bridge answers to a [`Query`].
#[derive(Debug)]
pub enum BridgeAnswer {
    /// `dpctl/dump-flows`: the live datapath flows, as of `now_ms`.
    DpFlows {
        /// The flows.
        flows: Vec<Arc<DpFlow>>,
        /// When they were read (for "used" ages).
        now_ms: u64,
    },
    /// `dpctl/del-flows`: how many flows were deleted.
    DpFlowsDeleted(usize),
    /// `ofproto/trace`, rendered by `ofproto::trace`.
    Trace(String),
    /// `fdb/show`: the MAC learning table.
    Fdb(Vec<MacEntryInfo>),
    /// `fdb/flush` done.
    FdbFlushed,
    /// `ofctl/show-connections`: the connection manager's report.
    Connections(serde_json::Value),
    /// `bridge/show`.
    Ports(PortsReport),
    /// `dpif-netdev/pmd-stats-show`.
    PmdStats(Box<DpReport>),
    /// `dpctl/show`.
    DpShow {
        /// The ports.
        ports: PortsReport,
        /// Installed megaflows.
        n_flows: usize,
    },
}

/// The configured ports of a bridge and their states.
#[derive(Clone, Debug)]
pub struct PortsReport {
    /// Bridge name.
    pub bridge: String,
    /// Its datapath id.
    pub dpid: DatapathId,
    /// By interface name.
    pub ports: Vec<PortLine>,
}

/// One configured port.
#[derive(Clone, Debug)]
pub struct PortLine {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// Interface name.
    pub name: String,
    /// Its configured type.
    pub kind: PortType,
    /// Its state.
    pub state: PortState,
}

/// Whether a configured port works.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// Attached, carrier up.
    Live,
    /// Attached, no carrier.
    LinkDown,
    /// Its device is not open (missing, or gone).
    NotAttached,
}

crate::msg_names!(
    PortAttached,
    PortLinkChanged,
    PortDetached,
    Reconfigure,
    StartReport,
    StopBridge,
    SaveState,
    BridgeQuery
);
