//! Ways in for operators: the ovs-appctl compatible control socket (`unixctl`),
//! its client (`rvswitchd ctl`), and the HTTP actor-stats endpoint (`http`).

pub mod http;
pub mod render;
pub mod unixctl;
