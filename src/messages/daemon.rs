//! Inbox of the Daemon (supervisor) actor.

use actix::prelude::*;
use std::path::PathBuf;

/// Re-read the config file (SIGHUP or `config/reload`). Replies with a summary
/// of what changed, or the validation error (the running config stays).
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct Reload {
    /// Read this file instead of the one given at start (tests, `config/reload FILE`).
    pub path: Option<PathBuf>,
}

/// Clean shutdown (`exit`, SIGTERM, SIGINT).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

crate::msg_names!(Reload, Shutdown);

/// A control-socket command for the daemon to run (everything but
/// `list-commands`). Replies with the text ovs-appctl prints.
#[derive(Message)]
#[rtype(result = "Result<String, String>")]
pub struct Ctl {
    /// Command name.
    pub cmd: String,
    /// Arguments.
    pub args: Vec<String>,
}

crate::msg_names!(Ctl);
