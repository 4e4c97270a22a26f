//! Feed arbitrary bytes to what a tunnel port runs on every packet: the
//! VXLAN/Geneve header check on receive (`decap`), and on transmit the
//! software offload completion (partial checksum, TCP segmentation) of a
//! frame with an arbitrary virtio-net header. Neither may ever panic, and
//! what they return must stay inside the input.
//!
//! Input: byte 0 picks the tunnel kind, bytes 1..11 are a virtio-net header,
//! the rest is both the UDP payload and the frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::netdev::tunnel::segment::{self, Segmenter, MAX_SEGS};
use rvswitchd::netdev::tunnel::wire::{self, ETH_HLEN, VNI_MAX};
use rvswitchd::netdev::tunnel::TunnelKind;
use rvswitchd::netdev::vnet::{self, VNET_HDR_LEN};
use std::cell::RefCell;

thread_local! {
    static SEG: RefCell<Segmenter> = RefCell::new(Segmenter::new());
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1 + VNET_HDR_LEN {
        return;
    }
    let kind = if data[0] & 1 == 0 {
        TunnelKind::Vxlan
    } else {
        TunnelKind::Geneve
    };
    let mut h = [0u8; VNET_HDR_LEN];
    h.copy_from_slice(&data[1..1 + VNET_HDR_LEN]);
    let hdr = vnet::parse(&h);
    let body = &data[1 + VNET_HDR_LEN..];

    if let Ok(d) = wire::decap(body, kind) {
        assert!(d.header_len + ETH_HLEN <= body.len());
        assert!(d.vni <= VNI_MAX);
        let mut out = [0u8; wire::HEADER_LEN];
        let n = wire::emit_header(kind, d.vni, &mut out);
        let mut again = out[..n].to_vec();
        again.extend_from_slice(&body[d.header_len..]);
        assert_eq!(wire::decap(&again, kind).map(|e| e.vni), Ok(d.vni));
    }

    let mut frame = body.to_vec();
    let _ = segment::complete_csum(&mut frame, &hdr);

    if let Ok(plan) = segment::plan(body, &hdr) {
        assert!(plan.hdr_len <= body.len());
        assert!(plan.segments >= 1);
        SEG.with(|s| {
            let mut s = s.borrow_mut();
            let mut done = 0;
            let mut payload = 0;
            while done < plan.segments {
                let k = s.write(body, &plan, done);
                assert!(k > 0 && k <= MAX_SEGS);
                for i in 0..k {
                    let seg = s.segment(i);
                    assert!(seg.len() >= plan.hdr_len && seg.len() <= plan.hdr_len + plan.mss);
                    payload += seg.len() - plan.hdr_len;
                }
                done += k;
            }
            assert_eq!(payload, plan.payload);
        });
    }
});
