//! Reflected table-driven CRC-32 variants, computed at compile time: the
//! IEEE 802.3 polynomial (zlib's, for the state file's checksum) and
//! Castagnoli's (SCTP, RFC 3309 / RFC 4960 appendix B). Pure functions, no
//! allocation; any thread.

/// The 256-entry table of a reflected CRC-32 with (reversed) polynomial
/// `poly`.
const fn table(poly: u32) -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ poly } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

const IEEE: [u32; 256] = table(0xEDB8_8320);
const CASTAGNOLI: [u32; 256] = table(0x82F6_3B78);

fn run(t: &[u32; 256], data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32 (IEEE 802.3, reflected, as zlib computes it) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    run(&IEEE, data)
}

/// CRC32c (Castagnoli), as SCTP uses it (stored little-endian on the wire).
pub fn crc32c(data: &[u8]) -> u32 {
    run(&CASTAGNOLI, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_match_their_check_values() {
        // The standard "check" value of each CRC over the ASCII digits.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32(b""), 0);
    }
}
