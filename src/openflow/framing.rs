//! Message framing and version negotiation: what the session needs before it can
//! hand a complete message to [`super::codec::decode`].
//!
//! A TCP stream carries back-to-back messages whose 8-byte `ofp_header` gives
//! their length. [`frame_len`] answers "is a whole message here yet, and how long
//! is it"; [`negotiate_version`] implements the HELLO exchange of OF1.3.5 §6.3.1
//! over every version we speak ([`Version::SUPPORTED`]); [`negotiate`] is the
//! same for a session that speaks only OpenFlow 1.3.

use super::message::OFP_VERSION;

/// Size of `ofp_header`.
pub const HEADER_LEN: usize = 8;

/// The fixed `ofp_header` that starts every OpenFlow message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Protocol version (0x04 for OpenFlow 1.3).
    pub version: u8,
    /// OFPT_* message type.
    pub msg_type: u8,
    /// Length of the whole message, header included.
    pub length: u16,
    /// Transaction id.
    pub xid: u32,
}

/// Parse the header at the start of `buf`, if there are 8 bytes. Exposed so the
/// session can learn a HELLO's version (which [`super::codec::decode`] accepts in
/// any version) and the xid of a message it could not decode.
pub fn header(buf: &[u8]) -> Option<Header> {
    match buf.get(..HEADER_LEN)? {
        &[version, msg_type, l0, l1, x0, x1, x2, x3] => Some(Header {
            version,
            msg_type,
            length: u16::from_be_bytes([l0, l1]),
            xid: u32::from_be_bytes([x0, x1, x2, x3]),
        }),
        _ => None,
    }
}

/// A stream whose framing cannot be trusted any more: the connection must close.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header's length is smaller than the header itself.
    #[error("OpenFlow header claims length {0}, less than the 8-byte header")]
    TooShort(u16),
}

/// Length of the next message in a byte stream: `Ok(None)` until the 8-byte
/// header has arrived, then the header's length (8..=65535). The caller waits
/// until that many bytes are buffered and passes exactly them to `decode`.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    match header(buf) {
        None => Ok(None),
        Some(h) if (h.length as usize) < HEADER_LEN => Err(FrameError::TooShort(h.length)),
        Some(h) => Ok(Some(h.length as usize)),
    }
}

/// The peer and we share no OpenFlow version.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no OpenFlow version in common with the peer (header version {peer_version:#04x})")]
pub struct Incompatible {
    /// The version in the peer's HELLO header.
    pub peer_version: u8,
}

/// An OpenFlow protocol version, as the first byte of every header carries it.
/// Sessions negotiate one at HELLO and encode every message they send in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u8);

impl Version {
    /// OpenFlow 1.0 (wire 0x01).
    pub const V1_0: Version = Version(0x01);
    /// OpenFlow 1.1 (wire 0x02).
    pub const V1_1: Version = Version(0x02);
    /// OpenFlow 1.2 (wire 0x03).
    pub const V1_2: Version = Version(0x03);
    /// OpenFlow 1.3 (wire 0x04).
    pub const V1_3: Version = Version(0x04);
    /// OpenFlow 1.4 (wire 0x05).
    pub const V1_4: Version = Version(0x05);
    /// OpenFlow 1.5 (wire 0x06).
    pub const V1_5: Version = Version(0x06);

    /// The versions this switch speaks, lowest first: OpenFlow 1.0, 1.3, 1.4
    /// and 1.5. 1.1 and 1.2 are not implemented: `ovs-ofctl` offers only 1.0
    /// unless told otherwise, and the controllers we test with speak 1.3+.
    pub const SUPPORTED: [Version; 4] =
        [Version::V1_0, Version::V1_3, Version::V1_4, Version::V1_5];

    /// Whether we speak this version.
    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }

    /// The highest version we speak.
    pub const fn highest() -> Version {
        Version::V1_5
    }

    /// Our HELLO version bitmap (bit n = wire version n), one 32-bit word.
    pub fn bitmap() -> u32 {
        Self::SUPPORTED.iter().fold(0, |b, v| b | 1 << v.0)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            1..=6 => write!(f, "OpenFlow 1.{}", self.0 - 1),
            v => write!(f, "OpenFlow version {v:#04x}"),
        }
    }
}

/// A set of OpenFlow versions, kept as a HELLO version bitmap keeps it (bit
/// n = wire version n): the versions a bridge allows its peers (`protocols`
/// in its configuration, as Open vSwitch's `Bridge:protocols`). Only versions
/// in [`Version::SUPPORTED`] can be members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Versions(u32);

impl Versions {
    /// Every version we speak (the default, as OVS allows every version it
    /// implements unless told otherwise).
    pub fn supported() -> Versions {
        Versions(Version::bitmap())
    }

    /// The set of `vs`; versions we do not speak are left out.
    pub fn of(vs: &[Version]) -> Versions {
        Versions(
            vs.iter()
                .filter(|v| v.is_supported())
                .fold(0, |b, v| b | 1 << v.0),
        )
    }

    /// Whether `v` is in the set.
    pub fn contains(self, v: Version) -> bool {
        v.0 < 32 && self.0 & (1 << v.0) != 0
    }

    /// True for the empty set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set as a HELLO version bitmap word.
    pub fn bitmap(self) -> u32 {
        self.0
    }

    /// The highest version in the set (the header version of our HELLO).
    pub fn highest(self) -> Option<Version> {
        Version::SUPPORTED
            .iter()
            .rev()
            .copied()
            .find(|v| self.contains(*v))
    }

    /// The members, lowest first.
    pub fn iter(self) -> impl Iterator<Item = Version> {
        Version::SUPPORTED
            .into_iter()
            .filter(move |v| self.contains(*v))
    }
}

impl std::fmt::Display for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for v in self.iter() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// Decide the session's version from the peer's HELLO (OF1.3.5 §6.3.1) over
/// every version in [`Version::SUPPORTED`]: [`negotiate_among`] with
/// [`Versions::supported`].
pub fn negotiate_version(
    peer_header_version: u8,
    peer_versions: &[u32],
) -> Result<Version, Incompatible> {
    negotiate_among(Versions::supported(), peer_header_version, peer_versions)
}

/// Decide the session's version from the peer's HELLO (OF1.3.5 §6.3.1) when
/// we allow `ours`. With a version bitmap (ours is sent by
/// [`super::codec::encode_hello_for`]) it is the highest version set in both;
/// without one, the lower of the two header versions (ours is the highest we
/// allow), which must be one we allow. Anything else is incompatible: the
/// caller then sends HELLO_FAILED/INCOMPATIBLE (in the lower of the two header
/// versions, as `ovs-ofctl` expects) and closes. OVS: `ofputil_decode_hello()`
/// and `vconn_recv_hello()`.
pub fn negotiate_among(
    ours: Versions,
    peer_header_version: u8,
    peer_versions: &[u32],
) -> Result<Version, Incompatible> {
    let incompatible = Incompatible {
        peer_version: peer_header_version,
    };
    let Some(highest) = ours.highest() else {
        return Err(incompatible);
    };
    if peer_versions.is_empty() {
        let v = Version(peer_header_version.min(highest.0));
        return if ours.contains(v) {
            Ok(v)
        } else {
            Err(incompatible)
        };
    }
    Version::SUPPORTED
        .iter()
        .rev()
        .copied()
        .filter(|v| ours.contains(*v))
        .find(|v| {
            let bit = v.0 as usize;
            peer_versions
                .get(bit / 32)
                .is_some_and(|w| w & (1 << (bit % 32)) != 0)
        })
        .ok_or(incompatible)
}

/// Decide a 1.3-only session's version from the peer's HELLO (§6.3.1). With a version
/// bitmap, the highest common version is used, so 0x04 if its bit is set; without
/// one, the lower of the two header versions, which is 0x04 only if the peer's is
/// at least 0x04. Anything else is incompatible: the caller then sends
/// HELLO_FAILED/INCOMPATIBLE with a text explanation and closes.
pub fn negotiate(peer_header_version: u8, peer_versions: &[u32]) -> Result<u8, Incompatible> {
    let ours = OFP_VERSION as usize;
    let ok = if peer_versions.is_empty() {
        peer_header_version >= OFP_VERSION
    } else {
        peer_versions
            .get(ours / 32)
            .is_some_and(|w| w & (1 << (ours % 32)) != 0)
    };
    if ok {
        Ok(OFP_VERSION)
    } else {
        Err(Incompatible {
            peer_version: peer_header_version,
        })
    }
}

/// The version bitmap of a 1.3-only HELLO: only bit 4 (OpenFlow 1.3).
pub fn our_versions() -> Vec<u32> {
    vec![1 << OFP_VERSION]
}

/// Largest OpenFlow message (the header's length field is 16 bits).
pub const MAX_MSG_LEN: usize = 65535;

/// OFPT_* message type numbers.
#[allow(missing_docs)]
pub mod msg_type {
    pub const HELLO: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const ECHO_REQUEST: u8 = 2;
    pub const ECHO_REPLY: u8 = 3;
    pub const EXPERIMENTER: u8 = 4;
    pub const FEATURES_REQUEST: u8 = 5;
    pub const FEATURES_REPLY: u8 = 6;
    pub const GET_CONFIG_REQUEST: u8 = 7;
    pub const GET_CONFIG_REPLY: u8 = 8;
    pub const SET_CONFIG: u8 = 9;
    pub const PACKET_IN: u8 = 10;
    pub const FLOW_REMOVED: u8 = 11;
    pub const PORT_STATUS: u8 = 12;
    pub const PACKET_OUT: u8 = 13;
    pub const FLOW_MOD: u8 = 14;
    pub const GROUP_MOD: u8 = 15;
    pub const PORT_MOD: u8 = 16;
    pub const TABLE_MOD: u8 = 17;
    pub const MULTIPART_REQUEST: u8 = 18;
    pub const MULTIPART_REPLY: u8 = 19;
    pub const BARRIER_REQUEST: u8 = 20;
    pub const BARRIER_REPLY: u8 = 21;
    pub const QUEUE_GET_CONFIG_REQUEST: u8 = 22;
    pub const QUEUE_GET_CONFIG_REPLY: u8 = 23;
    pub const ROLE_REQUEST: u8 = 24;
    pub const ROLE_REPLY: u8 = 25;
    pub const GET_ASYNC_REQUEST: u8 = 26;
    pub const GET_ASYNC_REPLY: u8 = 27;
    pub const SET_ASYNC: u8 = 28;
    pub const METER_MOD: u8 = 29;
}

/// A message that cannot be put on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoding would exceed the 65535-byte limit of the length field.
    #[error("OpenFlow message of {0} bytes exceeds the 65535-byte limit")]
    TooLong(usize),
    /// The message (or a part of it) has no encoding in this version.
    #[error("{what} cannot be encoded in {version}")]
    Unsupported {
        /// The session's version.
        version: Version,
        /// What could not be represented.
        what: &'static str,
    },
}

/// Appends an `ofp_header` in `v` whose length is patched later.
pub(crate) fn put_header_v(out: &mut Vec<u8>, v: Version, t: u8, xid: u32) {
    // Written by hand rather than with `wire`'s helpers: `wire` reports
    // errors as `OfpError`, whose codes depend on `Version` defined here.
    out.extend_from_slice(&[v.0, t, 0, 0]);
    out.extend_from_slice(&xid.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_len_needs_a_whole_header_and_rejects_short_lengths() {
        assert_eq!(frame_len(&[4, 0, 0]), Ok(None));
        assert_eq!(frame_len(&[4, 0, 0, 8, 0, 0, 0, 1]), Ok(Some(8)));
        assert_eq!(
            frame_len(&[4, 0, 0xff, 0xff, 0, 0, 0, 1, 9]),
            Ok(Some(65535))
        );
        assert_eq!(
            frame_len(&[4, 0, 0, 7, 0, 0, 0, 1]),
            Err(FrameError::TooShort(7))
        );
    }

    #[test]
    fn negotiation_follows_bitmap_then_header() {
        assert_eq!(negotiate(6, &[0b1_0010]), Ok(4));
        assert_eq!(negotiate(4, &[0b10]).unwrap_err().peer_version, 4);
        assert_eq!(negotiate(5, &[]), Ok(4));
        assert_eq!(negotiate(4, &[]), Ok(4));
        assert!(negotiate(1, &[]).is_err());
        assert!(negotiate(6, &[0b1100010]).is_err());
        assert_eq!(our_versions(), vec![0x10]);
    }

    #[test]
    fn negotiation_over_all_versions() {
        let v = |n| Ok(Version(n));
        // Bitmaps: the highest common version.
        assert_eq!(negotiate_version(6, &[0b111_0010]), v(6));
        assert_eq!(negotiate_version(6, &[0b011_0010]), v(5));
        assert_eq!(negotiate_version(4, &[0b1_0010]), v(4));
        assert_eq!(negotiate_version(1, &[0b10]), v(1));
        // OF1.1/1.2 only: nothing in common.
        assert!(negotiate_version(3, &[0b1100]).is_err());
        // A bitmap naming only versions above ours.
        assert!(negotiate_version(7, &[0b1000_0000]).is_err());
        // No bitmap: the lower header version, if we speak it.
        assert_eq!(negotiate_version(1, &[]), v(1));
        assert_eq!(negotiate_version(5, &[]), v(5));
        assert_eq!(negotiate_version(9, &[]), v(6));
        assert!(negotiate_version(2, &[]).is_err());
        assert!(negotiate_version(3, &[]).is_err());
        assert!(negotiate_version(0, &[]).is_err());
        assert_eq!(Version::bitmap(), 0b111_0010);
    }
}
