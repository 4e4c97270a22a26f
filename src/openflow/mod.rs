//! The OpenFlow 1.3 wire protocol, sans I/O.
//!
//! This module turns bytes into [`message::OfpMsg`] values and back and never
//! touches a socket: the session actor feeds it whatever bytes arrived and sends
//! whatever bytes it returns. Malformed input decodes to an [`error::OfpError`]
//! that names the exact OpenFlow error type/code to send back; it never panics.

pub mod action;
pub mod error;
pub mod message;
pub mod oxm;
