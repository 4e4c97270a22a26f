//! The fast path: flow keys, packet buffers, datapath flows and actions.
//!
//! Poll threads (not actors) own receive queues, the exact-match cache and the
//! megaflow classifier; they take no lock per packet.

pub mod actions;
pub mod dpcls;
pub mod dpflow;
pub mod emc;
pub mod execute;
pub mod extract;
pub mod flow;
pub mod keywords;
pub mod meter;
pub mod odp_format;
pub mod pmd;

/// Packet buffers live at the bottom of the I/O stack (the devices fill them);
/// the datapath's modules name them through this path.
pub use crate::netdev::packet;
