//! Feed arbitrary bytes to the OpenFlow decoder of every version (OF1.0,
//! 1.3, 1.4, 1.5: the first input byte picks one and becomes the header's
//! version): it must never panic, whatever it accepts must re-encode to
//! something it accepts in the same version, and after that one normalising
//! pass (OF1.0's lossy match, strings cut to their fields, unknown elements
//! dropped) encode/decode must be a fixed point. `decode_any` must agree
//! with `decode_in` on the header's version.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::openflow::codec::{decode_any, decode_in, encode_to_vec_in};
use rvswitchd::openflow::Version;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let v = Version::SUPPORTED[pick as usize % Version::SUPPORTED.len()];
    let mut msg = rest.to_vec();
    if let Some(b) = msg.first_mut() {
        *b = v.0;
    }
    if msg.len() >= 4 && pick & 0x80 != 0 {
        // Usually give the header a consistent length so bodies get parsed.
        let len = (msg.len().min(65535) as u16).to_be_bytes();
        msg[2..4].copy_from_slice(&len);
        msg.truncate(u16::from_be_bytes(len) as usize);
    }
    let any = decode_any(&msg);
    let Ok(m) = decode_in(v, &msg) else { return };
    assert_eq!(any.ok().map(|(_, a)| a), Some(m.clone()));
    let Ok(bytes) = encode_to_vec_in(v, &m) else { return };
    let once = decode_in(v, &bytes).expect("re-encoded message must decode");
    let again = encode_to_vec_in(v, &once).expect("normalised message must encode");
    let twice = decode_in(v, &again).expect("fixed point must decode");
    assert_eq!(twice, once);
    assert_eq!(encode_to_vec_in(v, &twice).ok(), Some(again));
});
