//! The actor system: who owns what, and on which thread.
//!
//! - `Daemon` (System arbiter, main thread): owns the running config, starts,
//!   resizes and stops everything else, answers control commands.
//! - `Bridge` (one Arbiter per bridge): owns the OpenFlow tables (`ofproto`),
//!   the bridge's datapath handle and its ports table; `Port` actors and the
//!   `Connmgr` with its `OfSession`s share that Arbiter so that flow-mods travel
//!   between session and bridge without crossing threads.
//! - `UpcallHandler` ×N and `Revalidator` ×M: one Arbiter (thread) each.
//! - Datapath poll threads are plain threads, not actors (see `datapath`).
//!
//! Every actor has an [`metrics::ActorMeter`] in the registry.

pub mod bridge;
pub mod connmgr;
pub mod daemon;
pub mod port;
pub mod revalidator;
pub mod session;
pub mod tunnels;
pub mod upcall;
