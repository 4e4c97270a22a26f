//! The one place where a connection turns messages into bytes, in the version
//! it negotiated. Every reply, error, asynchronous message, HELLO and
//! streamed flow-stats part goes through [`Encoder`], so a codec that speaks
//! more versions plugs in here and nowhere else.

use crate::ofproto::FlowStatsJob;
use crate::openflow::error::OfpError;
use crate::openflow::message::{Message, OfpMsg};
use crate::openflow::{self, EncodeError, Version, Versions};

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeFailure {
    /// The codec refused it: too long for one message, or a message (or a
    /// part of one) the negotiated version cannot express.
    #[error(transparent)]
    Codec(#[from] EncodeError),
}

/// Encodes in one negotiated version.
#[derive(Clone, Copy, Debug)]
pub struct Encoder {
    version: Version,
}

impl Encoder {
    /// An encoder for `version`.
    pub fn new(version: Version) -> Encoder {
        Encoder { version }
    }

    /// The version it encodes.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Encodes one message; a multipart reply becomes as many messages as
    /// its body needs (OFPMPF_REPLY_MORE on all but the last).
    pub fn message(
        &self,
        xid: u32,
        body: Message,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<(), EncodeFailure> {
        if let Message::MultipartReply(mp) = &body {
            openflow::encode_multipart_reply_split_in(self.version, xid, &mp.body, out)?;
        } else {
            out.push(openflow::encode_to_vec_in(
                self.version,
                &OfpMsg { xid, body },
            )?);
        }
        Ok(())
    }

    /// An OFPT_ERROR carrying the first bytes of `data` (the offending
    /// request, or text for HELLO_FAILED).
    pub fn error(&self, xid: u32, error: OfpError, data: &[u8]) -> Vec<u8> {
        openflow::encode_error_in(self.version, xid, error, data)
    }

    /// An OFPT_ERROR with a raw type and code, for codes the error enum does
    /// not name.
    pub fn raw_error(&self, xid: u32, err_type: u16, code: u16, data: &[u8]) -> Vec<u8> {
        let data = data[..data.len().min(ERROR_DATA_LEN)].to_vec();
        let body = Message::Error(crate::openflow::message::ErrorMsg {
            err_type,
            code,
            data,
        });
        openflow::encode_to_vec_in(self.version, &OfpMsg { xid, body }).unwrap_or_default()
    }

    /// The next parts of a streamed flow-stats reply (empty when finished).
    pub fn flow_stats(&self, job: &mut FlowStatsJob, min_msgs: usize) -> Vec<Vec<u8>> {
        job.next_chunk(self.version, min_msgs)
    }
}

/// Bytes of the offending request echoed in an error (OF1.3.5 §7.4.4: "at
/// least 64 bytes").
pub const ERROR_DATA_LEN: usize = 64;

/// Our HELLO, sent before the version is known: it advertises the versions
/// the bridge allows in its bitmap, with the highest in the header.
pub fn hello(xid: u32, ours: Versions) -> Vec<u8> {
    let mut v = Vec::new();
    openflow::encode_hello_for(xid, ours, &mut v);
    v
}

/// An error sent before negotiation finished (HELLO_FAILED with a text
/// explanation, OF1.3.5 §6.3.1), in `version` (see the caller for which).
pub fn hello_failed(version: Version, xid: u32, text: &str) -> Vec<u8> {
    openflow::encode_error_in(version, xid, OfpError::HelloIncompatible, text.as_bytes())
}
