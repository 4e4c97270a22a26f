//! Process-level plumbing: command-line options, daemonizing with a pidfile,
//! the crash-restarting monitor process, crash-signal handling, descriptor
//! limits and reserve, `/proc` figures, and logging with a runtime-adjustable
//! filter (`vlog/set`).

pub mod cli;
pub mod fds;
pub mod logging;
pub mod process;
pub mod procfs;
