//! Inbox of the Daemon (supervisor) actor, and what it answers with.
//!
//! The Daemon owns the running configuration and every other actor's address;
//! the control layer (`control/commands.rs`) asks it for data or to route a
//! request, and renders the answers. Nothing here is text for an operator
//! except error strings.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

use crate::config::Config;
use crate::messages::bridge::Query;
use actix::prelude::*;
use std::path::PathBuf;
use std::time::SystemTime;

/// What asked for a reload (for the log and [`ConfigView`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReloadOrigin {
    /// SIGHUP (`systemctl reload`).
    Signal,
    /// `config/reload [FILE]` on the control socket (also what `rvswitchd
    /// ctl add-port ...` sends after editing the file).
    Control,
}

/// Re-read a configuration file and apply what changed.
///
/// SIGHUP and `config/reload` without an argument always read the start-up
/// file (`--config`): that file is the truth. `config/reload FILE` applies
/// FILE once, as a trial; the next SIGHUP goes back to the start-up file.
#[derive(Message)]
#[rtype(result = "Result<ApplyReport, String>")]
pub struct Reload {
    /// A file other than the start-up one (`config/reload FILE`).
    pub path: Option<PathBuf>,
    /// Who asked (logged, and shown by `config/show`).
    pub origin: ReloadOrigin,
}

/// One change a reload tried to make.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ApplyFailure {
    /// What, e.g. `bridge br0: listener ptcp:6653`, `bridge br0: port veth1`.
    pub what: String,
    /// Why it failed (the OS or validation error).
    pub error: String,
}

/// What a reload (or the start-up configuration) did: every change applied,
/// every change that failed, and settings that need a restart. A reload with
/// any failure is answered as a JSON-RPC error, so `ovs-appctl` exits non-zero.
///
/// Who fills it: the Daemon adds what it applies itself (bridges added or
/// deleted, thread counts, limits, log level) and merges what each bridge
/// returns for its part (ports opened, listeners bound, controllers set) — see
/// [`IntoApplyReport`].
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ApplyReport {
    /// Changes made, one line each (`added bridge br1`).
    pub applied: Vec<String>,
    /// Changes that failed.
    pub failed: Vec<ApplyFailure>,
    /// Settings changed in the file that take effect only after a restart.
    pub needs_restart: Vec<String>,
}

impl ApplyReport {
    /// True when nothing failed.
    pub fn ok(&self) -> bool {
        self.failed.is_empty()
    }

    /// Records a change made.
    pub fn applied(&mut self, s: impl Into<String>) {
        self.applied.push(s.into());
    }

    /// Records a change that failed.
    pub fn failed(&mut self, what: impl Into<String>, error: impl Into<String>) {
        self.failed.push(ApplyFailure {
            what: what.into(),
            error: error.into(),
        });
    }

    /// Appends another report (a bridge's part).
    pub fn merge(&mut self, o: ApplyReport) {
        self.applied.extend(o.applied);
        self.failed.extend(o.failed);
        self.needs_restart.extend(o.needs_restart);
    }
}

/// What the answer of a bridge's [`crate::messages::bridge::Reconfigure`]
/// contributes to an [`ApplyReport`]. Today that answer is `()` (the bridge
/// reports port and listener failures only in its log and actor error); when
/// it becomes an `ApplyReport`, the Daemon merges it without changing.
pub trait IntoApplyReport {
    /// The report part.
    fn into_report(self) -> ApplyReport;
}

impl IntoApplyReport for () {
    fn into_report(self) -> ApplyReport {
        ApplyReport::default()
    }
}

impl IntoApplyReport for ApplyReport {
    fn into_report(self) -> ApplyReport {
        self
    }
}

/// Clean shutdown (`exit`, SIGTERM, SIGINT).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Hand-over (`daemon::takeover`): stop every bridge's poll threads and write
/// its state file, for a successor that restores them. One line per bridge
/// saying what its save did; the process is left running without forwarding,
/// for the caller to end.
#[derive(Message)]
#[rtype(result = "Result<Vec<String>, String>")]
pub struct StopForwarding;

/// The configuration in force and where it came from (`config/show`).
#[derive(Clone, Debug)]
pub struct ConfigView {
    /// The running configuration.
    pub cfg: Config,
    /// The file it was last read from (None: built from command-line flags).
    pub source: Option<PathBuf>,
    /// The start-up file, which SIGHUP and `config/reload` re-read.
    pub startup: Option<PathBuf>,
    /// When it was last applied, and by whom (None: at start).
    pub applied: Option<(SystemTime, ReloadOrigin)>,
}

/// Asks for the [`ConfigView`].
#[derive(Message)]
#[rtype(result = "ConfigView")]
pub struct ShowConfig;

/// `upcall/set-flow-limit N`: sets the flow limit until the next reload.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetFlowLimit(pub usize);

/// Counts for `memory/show`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Inventory {
    /// Bridges running (built and started).
    pub bridges: usize,
    /// Ports registered (every bridge).
    pub ports: usize,
    /// OpenFlow rules (every table of every bridge).
    pub rules: usize,
    /// Datapath megaflows (every bridge).
    pub datapath_flows: usize,
    /// Ukeys held by the revalidators.
    pub ukeys: usize,
}

/// Asks for the [`Inventory`].
#[derive(Message)]
#[rtype(result = "Inventory")]
pub struct GetInventory;

/// Which bridges a [`BridgeCtl`] goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BridgeTarget {
    /// This one (an error when it does not exist).
    Named(String),
    /// The only bridge (an error when there are none or several).
    Only,
    /// Every bridge in name order.
    All,
}

/// A query for bridges; the Daemon forwards it and returns each bridge's
/// typed answer, in name order (`control::render` turns them into text).
#[derive(Message)]
#[rtype(result = "Result<Vec<crate::messages::bridge::BridgeAnswer>, String>")]
pub struct BridgeCtl {
    /// Where it goes.
    pub target: BridgeTarget,
    /// What to ask.
    pub query: Query,
}

/// Revalidator requests from the control socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevalCtl {
    /// Wait until a round that started after this request has finished.
    Wait,
    /// Stop starting rounds.
    Pause,
    /// Start rounds again.
    Resume,
    /// Delete every datapath flow; answers how many.
    Purge,
}

/// Sends a [`RevalCtl`] to the revalidators. Answers the number of flows
/// purged (0 for the others), or why it could not be done.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct Revalidators(pub RevalCtl);

/// The data `upcall/show` prints.
#[derive(Clone, Debug, Default)]
pub struct UpcallView {
    /// The revalidator leader's state report.
    pub leader: serde_json::Value,
    /// Datapath flows per bridge, in name order.
    pub bridges: Vec<(String, usize)>,
    /// Each upcall handler's own text report, by id.
    pub handlers: Vec<String>,
}

/// Asks for the [`UpcallView`].
#[derive(Message)]
#[rtype(result = "Result<UpcallView, String>")]
pub struct GetUpcallView;

/// `debug/stop-actor revalidator:N|handler:N`: stops the actor as if it had
/// died, so that the supervisor's detection and restart can be seen working.
#[derive(Message)]
#[rtype(result = "Result<(), String>")]
pub struct StopActor(pub String);

crate::msg_names!(
    Reload,
    Shutdown,
    StopForwarding,
    ShowConfig,
    SetFlowLimit,
    GetInventory,
    BridgeCtl,
    Revalidators,
    GetUpcallView,
    StopActor
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_merge_and_know_failure() {
        let mut r = ApplyReport::default();
        r.applied("added bridge b");
        assert!(r.ok());
        let mut part = ().into_report();
        part.failed("bridge b: listener ptcp:1", "address in use");
        r.merge(part.into_report());
        assert!(!r.ok());
        assert_eq!(r.applied.len(), 1);
        assert_eq!(r.failed[0].what, "bridge b: listener ptcp:1");
    }
}
