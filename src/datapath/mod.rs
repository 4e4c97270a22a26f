//! The fast path: flow keys, packet buffers, datapath flows and actions.
//!
//! Poll threads (not actors) own receive queues, the exact-match cache and the
//! megaflow classifier; they take no lock per packet.

pub mod actions;
pub mod dpflow;
pub mod flow;
pub mod packet;
pub mod extract;
pub mod dpcls;
pub mod emc;
pub mod execute;
pub mod meter;
