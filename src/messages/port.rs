//! Inbox of a Port actor.

use crate::netdev::netlink::LinkInfo;
use actix::prelude::*;

/// rtnetlink says the device appeared or changed (flags, carrier, MAC, MTU).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkChanged(pub LinkInfo);

/// rtnetlink says the device was deleted.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkDeleted;

/// Retry opening a device that was missing.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetryOpen;

/// The port's current state for `show`-style output.
#[derive(Message)]
#[rtype(result = "PortReport")]
pub struct GetPortReport;

/// What a port reports about itself.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PortReport {
    /// Interface name.
    pub name: String,
    /// OpenFlow port number.
    pub ofport: u32,
    /// Port type.
    pub kind: String,
    /// Whether the device is open and attached to the datapath.
    pub attached: bool,
    /// The last open error, like OVS's "could not open network device".
    pub error: Option<String>,
    /// Last link info.
    pub link: Option<LinkInfo>,
}

crate::msg_names!(LinkChanged, LinkDeleted, RetryOpen, GetPortReport);

/// Bridge → Port: the port is being removed; close the device and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPort;

crate::msg_names!(StopPort);
