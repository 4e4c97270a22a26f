//! Bundle and flow-monitor decoders in every form: the input becomes the
//! body of an OFPT_BUNDLE_CONTROL / BUNDLE_ADD_MESSAGE (OF1.4/1.5), an ONF
//! bundle or flow-monitor experimenter message (OF1.3), an OFPMP_FLOW_MONITOR
//! request or reply (OF1.4/1.5), an ONF flow-monitor multipart (OF1.3) or a
//! Nicira NXST_FLOW_MONITOR (OF1.0), chosen by the first byte. Decoding must
//! never panic (a bundle add nests a whole message, so this also exercises
//! the inner decoder), and whatever decodes must be a fixed point after one
//! re-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::openflow::codec::{decode_in, encode_to_vec_in};
use rvswitchd::openflow::Version;

const ONF: u32 = 0x4f4e_4600;
const NX: u32 = 0x0000_2320;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let body = &body[..body.len().min(60_000)];
    let xid = 0x1234_5678u32;
    // (version, message type, prefix before the body)
    let mut prefix = Vec::new();
    let (v, t) = match pick % 8 {
        0 => (Version::V1_4, 33u8),
        1 => (Version::V1_5, 34),
        2 | 3 => {
            prefix.extend_from_slice(&ONF.to_be_bytes());
            let exp: u32 = [2300, 2301][pick as usize % 2];
            prefix.extend_from_slice(&exp.to_be_bytes());
            (Version::V1_3, 4)
        }
        4 | 5 => {
            // OFPMP_FLOW_MONITOR request (18) or reply (19).
            prefix.extend_from_slice(&[0, 16, 0, 0, 0, 0, 0, 0]);
            (Version::V1_4, 18 + (pick & 1))
        }
        6 => {
            prefix.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]);
            prefix.extend_from_slice(&ONF.to_be_bytes());
            prefix.extend_from_slice(&1870u32.to_be_bytes());
            (Version::V1_3, 18 + ((pick >> 3) & 1))
        }
        _ => {
            // OFPST_VENDOR request (16) or reply (17), Nicira subtype 2.
            prefix.extend_from_slice(&[0xff, 0xff, 0, 0]);
            prefix.extend_from_slice(&NX.to_be_bytes());
            prefix.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 0]);
            (Version::V1_0, 16 + ((pick >> 3) & 1))
        }
    };
    let len = 8 + prefix.len() + body.len();
    let mut msg = vec![v.0, t];
    msg.extend_from_slice(&(len as u16).to_be_bytes());
    msg.extend_from_slice(&xid.to_be_bytes());
    msg.extend_from_slice(&prefix);
    msg.extend_from_slice(body);
    let Ok(m) = decode_in(v, &msg) else { return };
    let Ok(bytes) = encode_to_vec_in(v, &m) else { return };
    let once = decode_in(v, &bytes).expect("re-encoded message must decode");
    let again = encode_to_vec_in(v, &once).expect("normalised message must encode");
    assert_eq!(decode_in(v, &again).expect("fixed point must decode"), once);
});
