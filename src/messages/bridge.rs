//! Inbox of the Bridge actor.

use crate::openflow::message::OfpMsg;
use actix::prelude::*;

/// Session → Bridge: OpenFlow requests that touch the switch (tables, ports,
/// groups, meters, stats, packet-out, barrier), in arrival order. The reply is
/// the encoded answers, in order; a barrier's reply is held until the
/// revalidators have applied every change before it.
#[derive(Message)]
#[rtype(result = "Vec<Vec<u8>>")]
pub struct OfRequests {
    /// Session id (for FLOW_REMOVED bookkeeping and logs).
    pub conn: u64,
    /// The messages, each with its first 64 bytes for error replies.
    pub msgs: Vec<(OfpMsg, Vec<u8>)>,
}

crate::msg_names!(OfRequests);
