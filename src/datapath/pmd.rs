//! The poll threads ("PMD threads" in OVS) and the [`Datapath`] handle that drives them.
//!
//! Ownership and threads:
//! - Each poll thread (`rvs-pmd-N`, plain OS threads, not actors) owns: the receive
//!   side of the ports assigned to it, a transmit handle on every other port, its
//!   own exact-match cache, megaflow classifier, meter table and packet buffers.
//!   Nothing it touches per packet is shared, so the per-packet path takes no lock
//!   and allocates nothing (misses and userspace actions copy the packet into an
//!   [`Upcall`]: that is the slow path).
//! - The control side talks to a thread only through its bounded op channel
//!   ([`DpOp`]) plus an eventfd that wakes it. Ops are applied between receive
//!   batches. Every thread gets every flow (`FlowPut` is broadcast), so which
//!   thread owns which port never matters for correctness.
//! - Shared state read from outside is atomics only: per-thread [`PmdStats`],
//!   per-port [`PortCounters`], per-flow stats inside `DpFlow`, meter counters.
//!   The flow registry ([`Datapath::flows`]) is a mutex touched on put/delete
//!   (control path) and by a poll thread only when processing ops.
//! - Deletion is immediate: `del_flow` marks the flow dead before sending the op,
//!   and lookups skip dead flows, so no packet is forwarded by it afterwards.
//!
//! Sleeping: a thread blocks in `epoll_wait` on its ports' receive fds and its
//! eventfd, with a 100 ms timeout for housekeeping (EMC sweep, purge of dead
//! flows, subtable re-ranking, retrying ports whose receive failed). A port whose
//! receive fails repeatedly is taken out of epoll (no spinning on a readable fd
//! that only yields errors); it is retried after a second unless the error says the
//! device is gone (`NetdevError::link_loss`), and such errors are counted in
//! `port_fatal`.
//!
//! Files: `handle` (the control side: [`Datapath`]), `protocol` (the
//! [`DpOp`]s it sends a thread, and the flow registry), [`stats`]
//! (counters), [`upcall`] (queuing to the slow path) and `thread` (one poll
//! thread's state and loop).

mod handle;
mod protocol;
pub mod stats;
mod thread;
pub mod upcall;

pub use handle::{Datapath, DpConfig, DpError, Execute, Refused};
pub use protocol::DpOp;
pub use stats::{
    DpStats, OfPortCounters, PmdStats, PmdStatsSnapshot, PortCounters, PortCountersSnapshot,
};
pub use upcall::{Upcall, UpcallBatch, UpcallKind, UPCALL_BATCH_MAX};

/// Capacity of each poll thread's op channel.
pub const OP_QUEUE_LEN: usize = 65_536;
/// epoll timeout, i.e. the housekeeping period when idle.
const POLL_TIMEOUT_MS: i32 = 100;
/// Consecutive receive errors after which a port leaves epoll.
const RX_ERROR_LIMIT: u32 = 3;
/// How long a port stays out of epoll after repeated non-fatal receive errors.
const RX_RETRY_MS: u64 = 1000;
/// epoll token of the op eventfd.
const WAKE_TOKEN: u64 = u64::MAX;

#[cfg(test)]
mod tests;
