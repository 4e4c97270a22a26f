//! Feed arbitrary frames to what a port's receive path runs on every packet:
//! the virtio-net header check and flow key extraction must never panic,
//! whatever arrives on the wire, and an extracted key must be stable (the same
//! bytes always give the same key, as the exact-match cache relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::datapath::extract::extract;
use rvswitchd::netdev::vnet::{self, VNET_HDR_LEN};
use rvswitchd::types::PortNo;

fuzz_target!(|data: &[u8]| {
    if data.len() >= VNET_HDR_LEN {
        let mut h = [0u8; VNET_HDR_LEN];
        h.copy_from_slice(&data[..VNET_HDR_LEN]);
        let hdr = vnet::parse(&h);
        let _ = vnet::validate(&hdr, data.len() - VNET_HDR_LEN);
    }
    if let Ok(k) = extract(data, PortNo(1)) {
        assert_eq!(extract(data, PortNo(1)).ok(), Some(k));
    }
});
