//! Ways in for operators: the ovs-appctl compatible control socket
//! (`unixctl`) with its command table (`commands`) and texts (`text`), the
//! client (`rvswitchd ctl`), and the HTTP statistics endpoint (`http`) with
//! its Prometheus encoding (`metrics`).
//!
//! This layer sits above the actors: it asks the Daemon typed questions and
//! renders the answers; no actor imports it.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

pub mod commands;
pub mod http;
pub mod metrics;
pub mod render;
pub mod text;
pub mod unixctl;
pub mod vsctl;
