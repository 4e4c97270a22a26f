//! The OpenFlow wire protocol (versions 1.0, 1.3, 1.4 and 1.5), sans I/O.
//!
//! This module turns bytes into [`message::OfpMsg`] values and back and never
//! touches a socket: the session feeds it whatever bytes arrived and sends
//! whatever bytes it returns. There is one model ([`message`], OpenFlow 1.3's
//! shape) and a codec per version at the edge; each protocol structure has
//! its own module with named field ranges and parse/emit side by side.
//! Malformed input decodes to an [`error::OfpError`] that names the exact
//! OpenFlow error to send back (coded per version by
//! [`error::OfpError::wire_code`]); it never panics. Pure functions, no
//! threads, no allocation beyond the messages themselves.
//!
//! Entry points for a session of any version: [`frame_len`] to cut a stream
//! into messages; [`encode_hello_versions`] and [`negotiate_version`] for
//! the HELLO exchange; [`decode_in`] / [`encode_in`] (and [`decode_any`]
//! while the version is unknown) for one message; [`encode_error_in`] for
//! errors; [`encode_multipart_reply_split_in`] and
//! [`codec::MultipartWriter::flow_stats_in`] for replies that may exceed one
//! message. [`decode`], [`encode`], [`encode_hello`], [`negotiate`],
//! [`encode_error_reply`] and [`encode_multipart_reply_split`] are the same
//! for OpenFlow 1.3 only. [`check_prerequisites`] checks FLOW_MOD matches.

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
mod of10_fields;
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
    decode, decode_any, decode_in, encode, encode_error_in, encode_error_reply, encode_hello,
    encode_hello_for, encode_hello_versions, encode_in, encode_multipart_reply_split,
    encode_multipart_reply_split_in, encode_to_vec, encode_to_vec_in, DecodeError, EncodeError,
};
pub use framing::{
    frame_len, header, negotiate, negotiate_among, negotiate_version, FrameError, Header,
    Incompatible, Version, Versions,
};
pub use match_codec::{check_prerequisites, decode_oxms, encode_oxms};
