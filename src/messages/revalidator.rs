//! Inbox of the Revalidator actors: the round protocol between the leader
//! (revalidator 0) and its members, replacing OVS's barriers and latches.
//!
//! A round: the leader sends [`BeginRound`] to every member (itself
//! included); each revalidates the ukeys it owns and answers with its
//! [`RoundCounts`]; once all have answered the leader sends [`Sweep`]; each
//! drops ukeys whose flows are gone and answers [`Swept`]; the leader then
//! closes the round (see `actors::revalidator::round`, the state machine). A
//! member that leaves mid-round (resize) is simply no longer waited for:
//! membership changes reach the leader as [`SetMembers`].

use crate::messages::Inbox;
use crate::ofproto::ukey::{RoundCounts, Ukey};
use actix::prelude::*;
use tokio::sync::oneshot;

/// Leader → members: revalidate your share; the answer is what you decided.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
#[rtype(result = "RoundCounts")]
pub struct BeginRound {
    /// Round number.
    pub round: u64,
    /// Datapath flows in total when the round started.
    pub n_flows: usize,
    /// The flow limit in force.
    pub flow_limit: usize,
    /// Idle time after which flows die (already lowered to 100 ms when over the limit).
    pub max_idle_ms: u64,
    /// Delete everything (flows > 2 × limit).
    pub kill_all: bool,
    /// Time the round started (ms).
    pub now_ms: u64,
}

/// Leader → members: sweep (drop ukeys whose flows died).
#[derive(Message, Clone, Copy, Debug)]
#[rtype(result = "Swept")]
pub struct Sweep {
    /// Round number.
    pub round: u64,
}

/// A member's answer to [`Sweep`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Ukeys removed by the sweep.
    pub swept: u64,
    /// Ukeys the member owns after the sweep.
    pub n_ukeys: usize,
}

/// How the leader reaches one member (index = revalidator id).
#[derive(Clone)]
pub struct Member {
    /// Round starts.
    pub begin: Inbox<BeginRound>,
    /// Sweeps.
    pub sweep: Inbox<Sweep>,
}

/// Daemon → leader: the current members (index = revalidator id; 0 is the leader).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetMembers(pub Vec<Member>);

/// Bridge → leader: the tables changed; revalidate soon. With `ack`, the
/// sender waits until a round that started after this version was published
/// has finished (consistent barriers).
#[derive(Message)]
#[rtype(result = "()")]
pub struct TablesChanged {
    /// Bridge index.
    pub bridge: u32,
    /// New version.
    pub version: u64,
    /// Answered when a full round covering this version is done.
    pub ack: Option<oneshot::Sender<()>>,
}

/// Upcall handler → owner: take ownership of new ukeys.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AdoptUkeys(pub Vec<Ukey>);

/// `revalidator/wait`: answer after the next full round has completed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WaitRound(pub oneshot::Sender<()>);

/// `revalidator/pause`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Pause;

/// `revalidator/resume`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resume;

/// Leave: hand every owned ukey to the leader (`handover`) and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Exit {
    /// Who takes the ukeys (None when everything stops).
    pub handover: Option<Inbox<AdoptUkeys>>,
}

/// `revalidator/purge`: delete every datapath flow (each member its own).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Purge;

/// Forget every ukey of a deleted bridge (its flows die with its datapath).
/// (The upcall handlers' `messages::upcall::DetachBridge` is the other half.)
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForgetBridge(pub u32);

/// Settings changed by reload.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetLimits {
    /// Configured flow limit.
    pub flow_limit: usize,
    /// Configured max idle.
    pub max_idle_ms: u64,
}

/// State for `upcall/show` and `/stats` (JSON).
#[derive(Message)]
#[rtype(result = "serde_json::Value")]
pub struct ReportState;

crate::msg_names!(
    BeginRound,
    Sweep,
    SetMembers,
    TablesChanged,
    AdoptUkeys,
    WaitRound,
    Pause,
    Resume,
    Exit,
    Purge,
    ForgetBridge,
    SetLimits,
    ReportState
);
