//! rvswitchd: a userspace OpenFlow 1.3 switch for Linux, built as actors.
//!
//! The folder tree is the architecture:
//! - [`openflow`]: the OpenFlow 1.3 wire codec, no I/O.
//! - [`ofproto`]: OpenFlow tables, classifier, translation, MAC learning.
//! - [`datapath`]: the fast path: flow keys, caches, actions, poll threads.
//! - [`netdev`]: port I/O backends (the only module with packet syscalls).
//! - [`actors`] and [`messages`]: the actor system and its typed messages.
//! - [`config`]: the TOML model, validation and diff.

pub mod actors;
pub mod config;
pub mod control;
pub mod daemon;
pub mod datapath;
pub mod messages;
pub mod netdev;
pub mod ofproto;
pub mod openflow;
pub mod types;
pub mod util;
