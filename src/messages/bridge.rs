//! Inbox of the Bridge actor, and [`BridgeShared`], the part of a bridge
//! other actors read without messaging.

use crate::datapath::dpflow::DpFlow;
use crate::datapath::flow::FlowKey;
use crate::datapath::pmd::{Datapath, UpcallBatch};
use crate::messages::connmgr::AsyncEvent;
use crate::ofproto::ukey::{FlowContext, Retranslated, RuleStats};
use crate::ofproto::view::XlateView;
use crate::ofproto::xlate::XlateOptions;
use crate::ofproto::FlowStatsJob;
use crate::openflow::error::OfpError;
use crate::openflow::message::OfpMsg;
use crate::openflow::Version;
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
            rules: out
                .rules
                .into_iter()
                .map(|r| r as Arc<dyn RuleStats>)
                .collect(),
        })
    }

    fn delete_flow(&self, flow: &Arc<DpFlow>) {
        // The flow is already marked dead (the poll thread ignores it on hit);
        // this removes it from the poll thread's classifier and the registry.
        let _ = self.dp.del_flow(flow.id);
    }
}

/// One answer to an [`OfRequests`] message. The bridge never encodes: the
/// session encodes each answer in the version it negotiated (and splits
/// multipart replies into messages of at most 64 KiB).
#[derive(Debug)]
pub enum OfReply {
    /// A reply message (MULTIPART_REPLY bodies of any size included).
    Msg(OfpMsg),
    /// An OFPT_ERROR answering the request with this xid.
    Error {
        /// The request's xid.
        xid: u32,
        /// What went wrong, as an OpenFlow type/code.
        error: OfpError,
        /// The request's first bytes, echoed in the error's data.
        head: Vec<u8>,
    },
    /// A flow-stats reply still to be encoded: the session encodes it a few
    /// 64 KB messages at a time while the first ones are being written, so a
    /// dump of 100k rules neither holds the Bridge nor waits to be fully
    /// encoded before the peer can start parsing.
    FlowStats(FlowStatsJob),
}

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
}

crate::msg_names!(OfRequests);

use crate::netdev::netlink::LinkInfo;
use crate::netdev::Netdev;
use crate::types::PortNo;

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

/// Daemon → Bridge: apply a reload's changes for this bridge.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Reconfigure {
    /// What changed.
    pub diff: crate::config::BridgeDiff,
    /// The bridge's new settings.
    pub cfg: crate::config::BridgeConfig,
}

/// Daemon → Bridge: delete the bridge (ports, connections, datapath).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopBridge;

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

/// A query; the answer is the text to print.
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct BridgeQuery(pub Query);

crate::msg_names!(
    PortAttached,
    PortLinkChanged,
    PortDetached,
    Reconfigure,
    StopBridge,
    BridgeQuery
);
