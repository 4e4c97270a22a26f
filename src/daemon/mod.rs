//! Process-level plumbing: command-line options, daemonizing with a pidfile,
//! the crash-restarting monitor process, crash-signal handling, descriptor
//! limits and reserve, `/proc` figures, and logging with a runtime-adjustable
//! filter (`vlog/set`), and the hand-over to a successor
//! (`--takeover`).

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

pub mod cli;
pub mod fds;
pub mod listening;
pub mod logging;
pub mod notify;
pub mod ovs_compat;
pub mod passfd;
pub mod process;
pub mod procfs;
pub mod sockets;
pub mod statefile;
pub mod takeover;
