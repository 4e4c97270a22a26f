//! Inboxes of the Connmgr actor and its OfSession actors.

use crate::actors::session::OfSession;
use crate::openflow::message::{ControllerRole, FlowRemoved, OfpMsg, PacketIn, PortStatus};
use actix::prelude::*;
use std::sync::Arc;

/// Which listeners and controllers the bridge has (start and reload).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct SetConnections {
    /// `ptcp:`/`punix:` listeners.
    pub listeners: Vec<String>,
    /// `tcp:`/`unix:` controllers.
    pub controllers: Vec<String>,
    /// Inactivity probe, ms (0 = none).
    pub probe_ms: u64,
    /// Longest reconnect backoff, ms.
    pub max_backoff_ms: u64,
    /// Whether to fall back to NORMAL when controllers are lost.
    pub standalone: bool,
}

/// An asynchronous message for controllers, before per-connection filtering.
#[derive(Clone, Debug)]
pub enum AsyncEvent {
    /// A packet for the controller.
    PacketIn {
        /// The message, with the whole packet.
        pin: Arc<PacketIn>,
        /// Truncation asked for by the action (0xffff = whole packet).
        max_len: u16,
    },
    /// A port appeared, changed or went away.
    PortStatus(Arc<PortStatus>),
    /// A rule was removed.
    FlowRemoved(Arc<FlowRemoved>),
}

/// Bridge → Connmgr: port status and flow-removed events (not flood-prone;
/// packet-ins come through a bounded channel instead).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Notify(pub AsyncEvent);

/// Connmgr → session: deliver if your role and async config want it.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Deliver(pub AsyncEvent);

/// Session → Connmgr: the session finished its handshake.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionUp {
    /// Session id.
    pub id: u64,
    /// Its address.
    pub addr: Addr<OfSession>,
    /// Peer name for display.
    pub peer: String,
    /// True for connections we made to a configured controller.
    pub is_controller: bool,
}

/// Session → Connmgr: the session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionDown {
    /// Session id.
    pub id: u64,
}

/// Session → Connmgr: a ROLE_REQUEST; the Connmgr owns the generation id and
/// demotes the old master.
#[derive(Message)]
#[rtype(result = "Result<(ControllerRole, u64), crate::openflow::error::OfpError>")]
pub struct RequestRole {
    /// Session id.
    pub id: u64,
    /// Requested role.
    pub role: ControllerRole,
    /// Generation id.
    pub generation_id: u64,
}

/// Connmgr → session: your role changed (you were demoted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRole(pub ControllerRole);

/// Session state for `ofctl/show-connections`.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub struct SessionReport;

/// Connmgr state for `ofctl/show-connections` and `/stats`.
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub struct ConnmgrReport;

/// Reader task → session: frames that arrived (decoded or not), in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Inbound(pub Vec<InFrame>);

/// One frame from the peer.
pub struct InFrame {
    /// Decode result.
    pub msg: Result<OfpMsg, crate::openflow::DecodeError>,
    /// The first 64 bytes, echoed in OFPT_ERROR replies.
    pub head: Vec<u8>,
}

/// Reader task → session: the peer closed or the stream failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Closed(pub String);

/// Connmgr → session: go away (reload removed the listener or controller).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect;

/// Connmgr → Bridge: controllers are all lost (fail-open) or back.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FailOpen(pub bool);

crate::msg_names!(
    SetConnections,
    Notify,
    Deliver,
    SessionUp,
    SessionDown,
    RequestRole,
    SetRole,
    SessionReport,
    ConnmgrReport,
    Inbound,
    Closed,
    Disconnect,
    FailOpen
);
