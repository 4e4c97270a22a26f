//! Feed arbitrary bytes to the OpenFlow decoder: it must never panic, whatever
//! it accepts must re-encode to something it accepts, and after that one
//! normalising pass (strings cut to their fields, unknown elements dropped)
//! encode/decode must be a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::openflow::{decode, encode_to_vec, frame_len};

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data);
    let Ok(msg) = decode(data) else { return };
    let Ok(bytes) = encode_to_vec(&msg) else { return };
    let once = decode(&bytes).expect("re-encoded message must decode");
    let again = encode_to_vec(&once).expect("normalised message must encode");
    assert_eq!(decode(&again).expect("fixed point must decode"), once);
});
