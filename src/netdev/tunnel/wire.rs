//! The VXLAN (RFC 7348 §5) and Geneve (RFC 8926 §3) headers: parse and emit
//! side by side, with named field offsets (in the style of smoltcp's
//! `src/wire`).
//!
//! Both headers sit directly after the outer UDP header, which the kernel
//! socket has already stripped, so everything here works on the UDP payload.
//! Pure functions, no state: the receive path and the fuzz target call
//! [`decap`] on bytes straight from the wire, so every length is checked
//! before it is used.

use super::TunnelKind;

/// Length of the VXLAN header and of the Geneve header without options.
pub const HEADER_LEN: usize = 8;
/// An Ethernet header: the shortest inner frame we accept.
pub const ETH_HLEN: usize = 14;
/// Ethertype of Transparent Ethernet Bridging, Geneve's protocol type for an
/// inner Ethernet frame (RFC 8926 §3.4).
pub const ETH_P_TEB: u16 = 0x6558;
/// Largest VNI: 24 bits.
pub const VNI_MAX: u32 = 0x00ff_ffff;

/// Field offsets of the VXLAN header (RFC 7348 §5):
///
/// ```text
/// |R|R|R|R|I|R|R|R|            Reserved                           |
/// |                VXLAN Network Identifier (VNI) |   Reserved    |
/// ```
mod vxlan {
    use std::ops::Range;
    /// Flags byte; only the I bit (0x08) may be set.
    pub const FLAGS: usize = 0;
    /// 24 reserved bits after the flags.
    pub const RESERVED1: Range<usize> = 1..4;
    /// The 24-bit VNI.
    pub const VNI: Range<usize> = 4..7;
    /// The last reserved byte.
    pub const RESERVED2: usize = 7;
}

/// The VXLAN "I" flag: the VNI is valid (RFC 7348 §5).
pub const VXLAN_FLAG_I: u8 = 0x08;

/// Field offsets of the Geneve header (RFC 8926 §3.4):
///
/// ```text
/// |Ver|  Opt Len  |O|C|    Rsvd.  |          Protocol Type        |
/// |        Virtual Network Identifier (VNI)       |    Reserved   |
/// |                    Variable-Length Options                    |
/// ```
mod geneve {
    use std::ops::Range;
    /// Version (top 2 bits) and option length in 4-byte words (low 6 bits).
    pub const VER_OPT_LEN: usize = 0;
    /// O (0x80) and C (0x40) bits, then 6 reserved bits.
    pub const FLAGS: usize = 1;
    /// Ethertype of the payload.
    pub const PROTOCOL: Range<usize> = 2..4;
    /// The 24-bit VNI.
    pub const VNI: Range<usize> = 4..7;
    /// Reserved byte.
    pub const RESERVED: usize = 7;
    /// Start of the options.
    pub const OPTIONS: usize = 8;
}

/// Geneve O bit: an OAM (control) packet.
pub const GENEVE_FLAG_O: u8 = 0x80;
/// Geneve C bit: critical options are present.
pub const GENEVE_FLAG_C: u8 = 0x40;

/// A decapsulated header: what the receive path needs to strip it and fill
/// the packet's tunnel metadata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decap {
    /// The VNI (24 bits).
    pub vni: u32,
    /// Bytes of tunnel header (including Geneve options) in front of the
    /// inner Ethernet frame.
    pub header_len: usize,
    /// The Geneve O bit (always false for VXLAN). Carried, not acted on: OVS
    /// exposes it as a flow flag; we forward OAM frames like any other.
    pub oam: bool,
}

/// Why a received tunnel payload was rejected (the receive path counts each
/// as `drop_malformed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecapError {
    /// The UDP payload is shorter than the tunnel header it claims.
    #[error("tunnel payload of {have} bytes is shorter than its {need}-byte header")]
    TooShort {
        /// Bytes the header needs.
        need: usize,
        /// Bytes received.
        have: usize,
    },
    /// VXLAN flags other than exactly the I bit (Linux `vxlan_rcv()` drops
    /// these when no extension is configured; OVS `netdev_vxlan_pop_header`).
    #[error("VXLAN flags {0:#04x} (expected exactly the I flag 0x08)")]
    BadFlags(u8),
    /// A VXLAN reserved field that is not zero.
    #[error("VXLAN reserved bits set")]
    ReservedBits,
    /// A Geneve version other than 0 (RFC 8926 §3.4).
    #[error("Geneve version {0} (expected 0)")]
    BadVersion(u8),
    /// Geneve C bit: critical options we do not process, so the packet must
    /// be dropped (RFC 8926 §3.5).
    #[error("Geneve critical options present")]
    CriticalOptions,
    /// A Geneve protocol type other than Transparent Ethernet Bridging.
    #[error("Geneve protocol type {0:#06x} (expected 0x6558)")]
    UnsupportedProtocol(u16),
    /// What follows the header is shorter than an Ethernet header.
    #[error("inner frame of {0} bytes is shorter than an Ethernet header")]
    InnerTooShort(usize),
}

#[inline]
fn get_u24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

#[inline]
fn put_u24(b: &mut [u8], v: u32) {
    b[0] = (v >> 16) as u8;
    b[1] = (v >> 8) as u8;
    b[2] = v as u8;
}

/// Parses the tunnel header at the start of a UDP payload and checks that an
/// Ethernet frame follows it.
pub fn decap(payload: &[u8], kind: TunnelKind) -> Result<Decap, DecapError> {
    if payload.len() < HEADER_LEN {
        return Err(DecapError::TooShort {
            need: HEADER_LEN,
            have: payload.len(),
        });
    }
    let d = match kind {
        TunnelKind::Vxlan => {
            let flags = payload[vxlan::FLAGS];
            if flags != VXLAN_FLAG_I {
                return Err(DecapError::BadFlags(flags));
            }
            if payload[vxlan::RESERVED1].iter().any(|&b| b != 0) || payload[vxlan::RESERVED2] != 0 {
                return Err(DecapError::ReservedBits);
            }
            Decap {
                vni: get_u24(&payload[vxlan::VNI]),
                header_len: HEADER_LEN,
                oam: false,
            }
        }
        TunnelKind::Geneve => {
            let b0 = payload[geneve::VER_OPT_LEN];
            let version = b0 >> 6;
            if version != 0 {
                return Err(DecapError::BadVersion(version));
            }
            let header_len = geneve::OPTIONS + usize::from(b0 & 0x3f) * 4;
            if payload.len() < header_len {
                return Err(DecapError::TooShort {
                    need: header_len,
                    have: payload.len(),
                });
            }
            let flags = payload[geneve::FLAGS];
            if flags & GENEVE_FLAG_C != 0 {
                return Err(DecapError::CriticalOptions);
            }
            let proto = u16::from_be_bytes([
                payload[geneve::PROTOCOL.start],
                payload[geneve::PROTOCOL.start + 1],
            ]);
            if proto != ETH_P_TEB {
                return Err(DecapError::UnsupportedProtocol(proto));
            }
            // Reserved bits: "MUST be zero on transmission and ignored on
            // receipt" (RFC 8926 §3.4), so they are not checked.
            Decap {
                vni: get_u24(&payload[geneve::VNI]),
                header_len,
                oam: flags & GENEVE_FLAG_O != 0,
            }
        }
    };
    let inner = payload.len() - d.header_len;
    if inner < ETH_HLEN {
        return Err(DecapError::InnerTooShort(inner));
    }
    Ok(d)
}

/// Writes the tunnel header for `vni` (its low 24 bits) into `out` and
/// returns its length, [`HEADER_LEN`]: VXLAN with the I flag, or Geneve
/// version 0 without options carrying Transparent Ethernet Bridging.
///
/// # Panics
/// When `out` is shorter than [`HEADER_LEN`] (a caller bug: the transmit
/// path always passes an 8-byte array).
pub fn emit_header(kind: TunnelKind, vni: u32, out: &mut [u8]) -> usize {
    let out = &mut out[..HEADER_LEN];
    out.fill(0);
    match kind {
        TunnelKind::Vxlan => {
            out[vxlan::FLAGS] = VXLAN_FLAG_I;
            put_u24(&mut out[vxlan::VNI], vni & VNI_MAX);
        }
        TunnelKind::Geneve => {
            out[geneve::VER_OPT_LEN] = 0;
            out[geneve::FLAGS] = 0;
            out[geneve::PROTOCOL].copy_from_slice(&ETH_P_TEB.to_be_bytes());
            put_u24(&mut out[geneve::VNI], vni & VNI_MAX);
            out[geneve::RESERVED] = 0;
        }
    }
    HEADER_LEN
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn with_inner(hdr: &[u8], inner: usize) -> Vec<u8> {
        let mut v = hdr.to_vec();
        v.extend((0..inner).map(|i| i as u8));
        v
    }

    #[test]
    fn vxlan_round_trip_and_layout() {
        let mut h = [0xffu8; 8];
        assert_eq!(emit_header(TunnelKind::Vxlan, 0x12_3456, &mut h), 8);
        assert_eq!(h, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0]);
        let d = decap(&with_inner(&h, 14), TunnelKind::Vxlan).unwrap();
        assert_eq!(
            d,
            Decap {
                vni: 0x12_3456,
                header_len: 8,
                oam: false
            }
        );
        // Only 24 bits of VNI go on the wire.
        emit_header(TunnelKind::Vxlan, 0xab12_3456, &mut h);
        assert_eq!(&h[4..7], &[0x12, 0x34, 0x56]);
    }

    #[test]
    fn geneve_round_trip_and_layout() {
        let mut h = [0xffu8; 8];
        assert_eq!(emit_header(TunnelKind::Geneve, 0xfe_dcba, &mut h), 8);
        assert_eq!(h, [0, 0, 0x65, 0x58, 0xfe, 0xdc, 0xba, 0]);
        let d = decap(&with_inner(&h, 60), TunnelKind::Geneve).unwrap();
        assert_eq!(d.vni, 0xfe_dcba);
        assert_eq!(d.header_len, 8);
        assert!(!d.oam);
    }

    #[test]
    fn vxlan_rejects_anything_but_the_i_flag() {
        let good = [0x08, 0, 0, 0, 0, 0, 5, 0];
        assert!(decap(&with_inner(&good, 14), TunnelKind::Vxlan).is_ok());
        for flags in [0x00, 0x0c, 0x88, 0x09, 0xff] {
            let mut h = good;
            h[0] = flags;
            assert_eq!(
                decap(&with_inner(&h, 14), TunnelKind::Vxlan),
                Err(DecapError::BadFlags(flags))
            );
        }
        for at in [1, 2, 3, 7] {
            let mut h = good;
            h[at] = 1;
            assert_eq!(
                decap(&with_inner(&h, 14), TunnelKind::Vxlan),
                Err(DecapError::ReservedBits),
                "reserved byte {at}"
            );
        }
    }

    #[test]
    fn lengths_are_bounds_checked() {
        let mut h = [0u8; 8];
        emit_header(TunnelKind::Vxlan, 1, &mut h);
        assert_eq!(
            decap(&h[..7], TunnelKind::Vxlan),
            Err(DecapError::TooShort { need: 8, have: 7 })
        );
        assert_eq!(
            decap(&with_inner(&h, 13), TunnelKind::Vxlan),
            Err(DecapError::InnerTooShort(13))
        );
        assert_eq!(
            decap(&[], TunnelKind::Geneve),
            Err(DecapError::TooShort { need: 8, have: 0 })
        );
        // Geneve with 63 words of options: the header claims 260 bytes.
        emit_header(TunnelKind::Geneve, 1, &mut h);
        h[0] = 0x3f;
        assert_eq!(
            decap(&with_inner(&h, 100), TunnelKind::Geneve),
            Err(DecapError::TooShort {
                need: 260,
                have: 108
            })
        );
        assert_eq!(
            decap(&with_inner(&h, 252), TunnelKind::Geneve),
            Err(DecapError::InnerTooShort(0))
        );
        assert_eq!(
            decap(&with_inner(&h, 252 + 14), TunnelKind::Geneve)
                .unwrap()
                .header_len,
            260
        );
    }

    #[test]
    fn geneve_options_flags_version_protocol() {
        let mut h = [0u8; 8];
        emit_header(TunnelKind::Geneve, 77, &mut h);
        // Two words of (non-critical) options are skipped over.
        let mut p = h.to_vec();
        p[0] = 2;
        p[1] = GENEVE_FLAG_O | 0x3f; // OAM, reserved bits ignored
        p.extend([0xaa; 8]);
        p.extend([0x11; 14]);
        let d = decap(&p, TunnelKind::Geneve).unwrap();
        assert_eq!((d.vni, d.header_len, d.oam), (77, 16, true));
        assert_eq!(p[d.header_len], 0x11);

        let mut c = p.clone();
        c[1] = GENEVE_FLAG_C;
        assert_eq!(
            decap(&c, TunnelKind::Geneve),
            Err(DecapError::CriticalOptions)
        );
        let mut v = p.clone();
        v[0] |= 0x40;
        assert_eq!(
            decap(&v, TunnelKind::Geneve),
            Err(DecapError::BadVersion(1))
        );
        let mut t = p;
        t[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(
            decap(&t, TunnelKind::Geneve),
            Err(DecapError::UnsupportedProtocol(0x0800))
        );
    }

    proptest! {
        #[test]
        fn emit_then_decap_gives_the_vni(vni in 0u32..=VNI_MAX, inner in 14usize..200, geneve in any::<bool>()) {
            let kind = if geneve { TunnelKind::Geneve } else { TunnelKind::Vxlan };
            let mut h = [0u8; 8];
            let n = emit_header(kind, vni, &mut h);
            let d = decap(&with_inner(&h[..n], inner), kind).unwrap();
            prop_assert_eq!(d.vni, vni);
            prop_assert_eq!(d.header_len, HEADER_LEN);
        }

        #[test]
        fn decap_never_claims_more_than_it_has(p in proptest::collection::vec(any::<u8>(), 0..400), geneve in any::<bool>()) {
            let kind = if geneve { TunnelKind::Geneve } else { TunnelKind::Vxlan };
            if let Ok(d) = decap(&p, kind) {
                prop_assert!(d.header_len + ETH_HLEN <= p.len());
                prop_assert!(d.vni <= VNI_MAX);
            }
        }
    }
}
