//! Process-level plumbing: command-line options, daemonizing with a pidfile,
//! the crash-restarting monitor process, and logging with a runtime-adjustable
//! filter (`vlog/set`).

pub mod cli;
pub mod logging;
pub mod process;
