//! Inbox of the Bridge actor.

use crate::openflow::message::OfpMsg;
use crate::openflow::Version;
use actix::prelude::*;

/// One answer to an [`OfRequests`] message (defined with the connection core
/// that encodes it).
pub use crate::ofproto::ofconn::OfReply;

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
