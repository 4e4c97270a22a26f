//! The OpenFlow 1.3 wire protocol, sans I/O.
//!
//! This module turns bytes into [`message::OfpMsg`] values and back and never
//! touches a socket: the session actor feeds it whatever bytes arrived and sends
//! whatever bytes it returns. Malformed input decodes to an [`error::OfpError`]
//! that names the exact OpenFlow error type/code to send back; it never panics.
//!
//! Entry points: [`frame_len`] to cut a stream into messages, [`decode`] and
//! [`encode`] for one message, [`encode_multipart_reply_split`] for replies that
//! may exceed one message, [`negotiate`] and [`encode_hello`] for the HELLO
//! exchange, [`check_prerequisites`] for FLOW_MOD matches.

pub mod action;
mod action_codec;
mod bundle;
pub mod codec;
mod controller;
pub mod error;
mod flow;
pub mod framing;
mod group;
mod hello;
mod match_codec;
pub mod message;
mod meter;
mod monitor;
mod mp_writer;
mod multipart;
mod of10;
pub mod oxm;
mod packet;
mod port;
mod prop;
mod switch;
mod table;
mod wire;

#[cfg(test)]
mod tests;

pub use codec::{
    decode, encode, encode_error_reply, encode_hello, encode_multipart_reply_split, encode_to_vec,
    DecodeError, EncodeError,
};
pub use framing::{frame_len, header, negotiate, FrameError, Header, Incompatible, Version};
pub use match_codec::{check_prerequisites, decode_oxms, encode_oxms};
