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
pub mod meter;
pub mod odp_format;
pub mod packet;
pub mod pmd;
pub mod sys;
pub mod testdev;
