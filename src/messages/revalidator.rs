//! Inbox of the Revalidator actors: the round protocol between the leader
//! (revalidator 0) and its followers, replacing OVS's barriers and latches.
//!
//! A round: the leader sends [`BeginRound`] to every member (itself included);
//! each revalidates the ukeys it owns and answers [`RevalidateDone`]; once all
//! have answered the leader sends [`Sweep`]; each drops ukeys whose flows are
//! gone and answers [`SweepDone`]; the leader then closes the round (bumps
//! `dump_seq`, measures the duration, adapts the flow limit, acknowledges
//! waiters). A member that leaves mid-round (resize) is simply no longer
//! waited for: membership changes reach the leader as [`SetMembers`].

use crate::actors::revalidator::{Revalidator, RoundCounts, Ukey};
use crate::messages::Mailbox;
use actix::prelude::*;
use tokio::sync::oneshot;

/// Leader → members: revalidate your share.
#[derive(Message, Clone)]
#[rtype(result = "()")]
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
    /// Where to answer.
    pub leader: Mailbox<Revalidator>,
}

/// Member → leader: done revalidating.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RevalidateDone {
    /// Round number.
    pub round: u64,
    /// Member id.
    pub from: usize,
    /// What it decided.
    pub counts: RoundCounts,
}

/// Leader → members: sweep.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Sweep {
    /// Round number.
    pub round: u64,
    /// Where to answer.
    pub leader: Mailbox<Revalidator>,
}

/// Member → leader: swept.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SweepDone {
    /// Round number.
    pub round: u64,
    /// Member id.
    pub from: usize,
    /// Ukeys removed by the sweep.
    pub swept: u64,
    /// Ukeys the member owns after the sweep.
    pub n_ukeys: usize,
}

/// Daemon → leader: the current members (index = revalidator id; 0 is the leader).
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetMembers(pub Vec<Mailbox<Revalidator>>);

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
    pub handover: Option<Mailbox<Revalidator>>,
}

/// `revalidator/purge`: delete every datapath flow (each member its own).
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Purge;

/// Forget every ukey of a deleted bridge (its flows die with its datapath).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachBridge(pub u32);

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
    RevalidateDone,
    Sweep,
    SweepDone,
    SetMembers,
    TablesChanged,
    AdoptUkeys,
    WaitRound,
    Pause,
    Resume,
    Exit,
    Purge,
    DetachBridge,
    SetLimits,
    ReportState
);
