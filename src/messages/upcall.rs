//! Inbox of the UpcallHandler actors.

use crate::messages::bridge::BridgeShared;
use crate::messages::revalidator::AdoptUkeys;
use crate::messages::Inbox;
use actix::prelude::*;
use std::sync::Arc;

/// Start serving a bridge: its shared context and the receiving end of this
/// handler's upcall queue for that bridge's datapath.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachBridge {
    /// The bridge.
    pub bridge: Arc<BridgeShared>,
    /// This handler's queue of miss batches from the bridge's poll threads.
    pub rx: tokio::sync::mpsc::Receiver<crate::datapath::pmd::UpcallBatch>,
}

/// Stop serving a bridge (the revalidators' half is
/// `messages::revalidator::ForgetBridge`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachBridge {
    /// Bridge index.
    pub index: u32,
}

/// The current revalidators (index = id), to which new ukeys are handed by
/// flow id.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRevalidators(pub Vec<Inbox<AdoptUkeys>>);

/// `debug/stop-actor`: stop as if the actor had died (the supervisor's
/// restart path is then exercised for real).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopHandler;

/// Text for `upcall/show` about this handler.
#[derive(Message)]
#[rtype(result = "String")]
pub struct HandlerReport;

crate::msg_names!(
    AttachBridge,
    DetachBridge,
    SetRevalidators,
    HandlerReport,
    StopHandler
);
