//! Inboxes of the Connmgr actor and its OfSession actors.

use crate::openflow::message::ControllerRole;
use crate::openflow::{Version, Versions};
use actix::prelude::*;

/// An asynchronous message for controllers, before per-connection filtering
/// (defined with the connection core that filters it).
pub use crate::ofproto::ofconn::AsyncEvent;

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
    /// The OpenFlow versions new sessions may negotiate (`protocols`).
    pub versions: Versions,
    /// Longest reconnect backoff, ms.
    pub max_backoff_ms: u64,
    /// Whether to fall back to NORMAL when controllers are lost.
    pub standalone: bool,
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

/// Session → Connmgr: the session finished its handshake. The Connmgr
/// created the session and already has its address.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionUp {
    /// Session id.
    pub id: u64,
    /// The negotiated version.
    pub version: Version,
}

/// Session → Connmgr: the session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionDown {
    /// Session id.
    pub id: u64,
    /// Why (for the per-bridge close counters and the log).
    pub reason: crate::ofproto::ofconn::CloseReason,
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

/// Reader task → session: bytes from the peer. The answer says whether the
/// reader may go on reading (false: wait until told, backpressure).
#[derive(Message)]
#[rtype(result = "bool")]
pub struct Inbound(pub Vec<u8>);

/// Reader task → session: the peer closed (`None`) or reading failed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadEnded(pub Option<String>);

/// Writer task → session: a segment of this many bytes was written.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Written(pub usize);

/// Writer task → session: the writer stopped (flushed and shut down, or
/// failed with this error).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WriterEnded(pub Option<String>);

/// Connmgr → session: go away (reload removed the listener or controller,
/// or the listener is full and this connection is the oldest one that has
/// not finished its handshake).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect(pub &'static str);

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
    ReadEnded,
    Written,
    WriterEnded,
    Disconnect,
    FailOpen
);

/// Bridge → Connmgr: the configured listeners that could not be bound, with
/// the error (empty when all listen). Binding happens while
/// [`SetConnections`] is handled, so asking after telling it gets its outcome.
#[derive(Message)]
#[rtype(result = "Vec<(String, String)>")]
pub struct ListenerStatus;

crate::msg_names!(ListenerStatus);
