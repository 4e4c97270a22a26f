//! Tunnel devices talking over loopback (127.0.0.1, .2 and .3 are all local
//! on Linux), without privileges.

use super::*;
use crate::netdev::packet::{Packet, VnetHdr};
use crate::netdev::tunnel::segment::tests::{check_segment, naive_sum, tcp_frame};
use crate::netdev::vnet::{F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP};
use crate::types::PortNo;
use std::net::UdpSocket;

const A: u32 = 0x7f00_0001;
const B: u32 = 0x7f00_0002;
const C: u32 = 0x7f00_0003;

fn ip(a: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn cfg(
    kind: TunnelKind,
    remote_ip: FlowOr<IpAddr>,
    local_ip: Option<FlowOr<IpAddr>>,
    key: FlowOr<u32>,
    dst_port: u16,
) -> TunnelConfig {
    TunnelConfig {
        kind,
        remote_ip,
        local_ip,
        key,
        dst_port,
        csum: false,
        df_default: true,
        ttl: 64,
        tos: 0,
    }
}

/// Opens one device per config, all on one free port (another one when a
/// concurrent test took it first).
fn open_all(cfgs: impl Fn(u16) -> Vec<TunnelConfig>) -> Vec<TunnelNetdev> {
    'port: for _ in 0..50 {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut devs = Vec::new();
        for (i, c) in cfgs(port).iter().enumerate() {
            match TunnelNetdev::open(&format!("tnl{i}"), c) {
                Ok(d) => devs.push(d),
                Err(NetdevError::Io { ref source, .. })
                    if source.kind() == io::ErrorKind::AddrInUse =>
                {
                    continue 'port
                }
                Err(e) => panic!("open: {e}"),
            }
        }
        return devs;
    }
    panic!("no free UDP port");
}

/// Receives until `n` packets arrived (or about 10 s passed without them:
/// the assertion that follows then fails).
fn recv_n(dev: &mut TunnelNetdev, n: usize) -> PacketBatch {
    let mut b = PacketBatch::with_capacity(n.max(1));
    for _ in 0..100 {
        if b.len() >= n {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: dev.rx_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, 100) };
        dev.recv_batch(&mut b).unwrap();
    }
    b
}

fn batch_of(frames: &[(Vec<u8>, TunnelMeta, VnetHdr)]) -> PacketBatch {
    let mut b = PacketBatch::with_capacity(frames.len().max(1));
    for (f, t, v) in frames {
        let mut p = Packet::from_bytes(f, PortNo(1));
        p.tunnel = *t;
        p.vnet = *v;
        assert!(b.push_swap(&mut p));
    }
    b
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Relaxed)
}

fn meta(id: u64, src: u32, dst: u32) -> TunnelMeta {
    TunnelMeta {
        id,
        src,
        dst,
        ..TunnelMeta::default()
    }
}

#[test]
fn fixed_ports_carry_frames_and_metadata_both_ways() {
    for kind in [TunnelKind::Vxlan, TunnelKind::Geneve] {
        let mut devs = open_all(|port| {
            let mut a = cfg(
                kind,
                FlowOr::Fixed(ip(B)),
                Some(FlowOr::Fixed(ip(A))),
                FlowOr::Fixed(42),
                port,
            );
            a.tos = 0x20;
            a.ttl = 9;
            let b = cfg(
                kind,
                FlowOr::Fixed(ip(A)),
                Some(FlowOr::Fixed(ip(B))),
                FlowOr::Fixed(42),
                port,
            );
            vec![a, b]
        });
        let mut b = devs.pop().unwrap();
        let mut a = devs.pop().unwrap();
        assert_eq!(a.ifindex(), 0);
        assert_eq!(a.name(), "tnl0");
        let mut sent: Vec<Vec<u8>> = [14, 60, 1500, 9000, 65_000]
            .iter()
            .enumerate()
            .map(|(i, &n)| frame(n, i as u8))
            .collect();
        let frames: Vec<_> = sent
            .iter()
            .map(|f| (f.clone(), TunnelMeta::default(), VnetHdr::default()))
            .collect();
        let mut batch = batch_of(&frames);
        let r = a.send_batch(&mut batch).unwrap();
        assert_eq!(
            r,
            TxResult {
                sent: 5,
                dropped: 0
            },
            "{kind:?}"
        );
        assert!(batch.is_empty());
        let got = recv_n(&mut b, 5);
        assert_eq!(got.len(), 5, "{kind:?}");
        let mut rcvd: Vec<Vec<u8>> = got.packets().iter().map(|p| p.data().to_vec()).collect();
        for p in got.packets() {
            assert_eq!(
                p.tunnel,
                TunnelMeta {
                    id: 42,
                    src: A,
                    dst: B,
                    tos: 0x20,
                    ttl: 9
                }
            );
            assert_eq!(p.vnet, VnetHdr::default());
        }
        // Different flows may leave by different sockets, so compare as sets.
        rcvd.sort();
        sent.sort();
        assert_eq!(rcvd, sent, "{kind:?}");
        assert_eq!(get(&a.counters().encap_packets), 5);
        assert_eq!(get(&b.tunnel_counters().unwrap().decap_packets), 5);

        // The other way, through an extra transmit handle.
        let mut tx = b.open_tx().unwrap();
        let mut batch = batch_of(&[(frame(100, 7), TunnelMeta::default(), VnetHdr::default())]);
        assert_eq!(tx.send_batch(&mut batch).unwrap().sent, 1);
        let got = recv_n(&mut a, 1);
        assert_eq!(got.len(), 1);
        assert_eq!(got.packets()[0].data(), &frame(100, 7)[..]);
        assert_eq!(got.packets()[0].tunnel, meta(42, B, A).with_ttl(64));
        assert_eq!(get(&b.counters().encap_packets), 1);
        assert_eq!(a.rx_errors(), 0);
        assert_eq!(b.rx_errors(), 0);
    }
}

impl TunnelMeta {
    fn with_ttl(mut self, ttl: u8) -> TunnelMeta {
        self.ttl = ttl;
        self
    }
}

#[test]
fn key_and_remote_from_the_flow() {
    let mut devs = open_all(|port| {
        vec![
            cfg(
                TunnelKind::Vxlan,
                FlowOr::Flow,
                Some(FlowOr::Fixed(ip(A))),
                FlowOr::Flow,
                port,
            ),
            cfg(
                TunnelKind::Vxlan,
                FlowOr::Fixed(ip(A)),
                Some(FlowOr::Fixed(ip(B))),
                FlowOr::Fixed(7),
                port,
            ),
        ]
    });
    let mut b = devs.pop().unwrap();
    let mut a = devs.pop().unwrap();
    let mut batch = batch_of(&[
        (frame(64, 1), meta(7, 0, B), VnetHdr::default()),
        // No tun_dst: dropped before any syscall.
        (frame(64, 2), meta(7, 0, 0), VnetHdr::default()),
        // Another VNI than b's key: b drops it.
        (frame(64, 3), meta(8, 0, B), VnetHdr::default()),
        // Only the low 24 bits of tun_id are a VNI.
        (frame(64, 4), meta(0x1_0000_0007, 0, B), VnetHdr::default()),
    ]);
    let r = a.send_batch(&mut batch).unwrap();
    assert_eq!(
        r,
        TxResult {
            sent: 3,
            dropped: 1
        }
    );
    assert_eq!(get(&a.counters().drop_no_remote), 1);
    let got = recv_n(&mut b, 2);
    assert_eq!(got.len(), 2);
    let mut datas: Vec<_> = got.packets().iter().map(|p| p.data().to_vec()).collect();
    datas.sort();
    let mut want = vec![frame(64, 1), frame(64, 4)];
    want.sort();
    assert_eq!(datas, want);
    assert_eq!(get(&b.counters().drop_unknown_vni), 1);
    assert_eq!(get(&b.counters().decap_packets), 2);

    // key = "flow" accepts any VNI and reports it; remote_ip = "flow" any source.
    let mut back = batch_of(&[(frame(80, 9), TunnelMeta::default(), VnetHdr::default())]);
    assert_eq!(b.send_batch(&mut back).unwrap().sent, 1);
    let got = recv_n(&mut a, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got.packets()[0].tunnel, meta(7, B, A).with_ttl(64));
}

#[test]
fn local_ip_from_the_flow_sets_the_outer_source() {
    // One device on the unspecified address, sending to itself.
    let mut devs = open_all(|port| {
        vec![cfg(
            TunnelKind::Geneve,
            FlowOr::Flow,
            Some(FlowOr::Flow),
            FlowOr::Flow,
            port,
        )]
    });
    let mut d = devs.pop().unwrap();
    let mut batch = batch_of(&[(frame(200, 5), meta(9, C, A), VnetHdr::default())]);
    assert_eq!(d.send_batch(&mut batch).unwrap().sent, 1);
    let got = recv_n(&mut d, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got.packets()[0].tunnel, meta(9, C, A).with_ttl(64));
    // Without tun_src the route picks the source.
    let mut batch = batch_of(&[(frame(200, 6), meta(9, 0, B), VnetHdr::default())]);
    assert_eq!(d.send_batch(&mut batch).unwrap().sent, 1);
    let got = recv_n(&mut d, 1);
    assert_eq!(got.packets()[0].tunnel.dst, B);
    assert_ne!(got.packets()[0].tunnel.src, 0);
}

#[test]
fn hostile_datagrams_are_dropped_and_counted() {
    let mut devs = open_all(|port| {
        vec![cfg(
            TunnelKind::Vxlan,
            FlowOr::Fixed(ip(A)),
            Some(FlowOr::Fixed(ip(B))),
            FlowOr::Fixed(42),
            port,
        )]
    });
    let mut b = devs.pop().unwrap();
    let to = (Ipv4Addr::from(B), b.dst_port());
    let from_a = UdpSocket::bind((Ipv4Addr::from(A), 0)).unwrap();
    let from_c = UdpSocket::bind((Ipv4Addr::from(C), 0)).unwrap();
    let inner = frame(60, 3);
    let dgram = |h: [u8; 8]| {
        let mut v = h.to_vec();
        v.extend_from_slice(&inner);
        v
    };
    let good = [0x08, 0, 0, 0, 0, 0, 42, 0];
    from_a
        .send_to(&dgram([0x0c, 0, 0, 0, 0, 0, 42, 0]), to)
        .unwrap(); // flags
    from_a
        .send_to(&dgram([0x08, 0, 1, 0, 0, 0, 42, 0]), to)
        .unwrap(); // reserved
    from_a.send_to(&good[..5], to).unwrap(); // short
    from_a.send_to(&good, to).unwrap(); // no inner frame
    from_a
        .send_to(&dgram([0x08, 0, 0, 0, 0, 0, 43, 0]), to)
        .unwrap(); // VNI
    from_c.send_to(&dgram(good), to).unwrap(); // remote
    from_a.send_to(&dgram(good), to).unwrap(); // the one good datagram
    let got = recv_n(&mut b, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got.packets()[0].data(), &inner[..]);
    assert_eq!(got.packets()[0].tunnel.id, 42);
    let c = b.counters();
    assert_eq!(get(&c.drop_malformed), 4);
    assert_eq!(b.rx_errors(), 4);
    assert_eq!(get(&c.drop_unknown_vni), 1);
    assert_eq!(get(&c.drop_unknown_remote), 1);
    assert_eq!(get(&c.decap_packets), 1);
    // Nothing else is waiting.
    let mut more = PacketBatch::with_capacity(4);
    assert_eq!(b.recv_batch(&mut more).unwrap(), 0);
}

/// Ethernet / IPv4 / UDP with the checksum field holding the pseudo-header
/// sum, as a local sender with checksum offload leaves it.
fn partial_udp_frame(payload: &[u8]) -> (Vec<u8>, VnetHdr) {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00];
    let udp_len = 8 + payload.len() as u16;
    let tot = 20 + udp_len;
    let mut iph = vec![0x45, 0];
    iph.extend(tot.to_be_bytes());
    iph.extend([0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
    let c = !naive_sum(&[&iph]);
    iph[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend(&iph);
    let pseudo = naive_sum(&[&iph[12..20], &[0, 17], &udp_len.to_be_bytes()]);
    f.extend([0x30, 0x39, 0x00, 0x35]);
    f.extend(udp_len.to_be_bytes());
    f.extend(pseudo.to_be_bytes());
    f.extend_from_slice(payload);
    let h = VnetHdr {
        flags: F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::default()
    };
    (f, h)
}

#[test]
fn offloads_are_completed_before_encapsulation() {
    let mut devs = open_all(|port| {
        vec![
            cfg(
                TunnelKind::Vxlan,
                FlowOr::Fixed(ip(B)),
                Some(FlowOr::Fixed(ip(A))),
                FlowOr::Fixed(5),
                port,
            ),
            cfg(
                TunnelKind::Vxlan,
                FlowOr::Fixed(ip(A)),
                Some(FlowOr::Fixed(ip(B))),
                FlowOr::Fixed(5),
                port,
            ),
        ]
    });
    let mut b = devs.pop().unwrap();
    let mut a = devs.pop().unwrap();
    let p4: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let p6: Vec<u8> = (0..3000u32).map(|i| (i % 241) as u8).collect();
    let tso = |gso_type, mss| VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: 54, // wrong on purpose (the frames carry TCP options)
        gso_size: mss,
        csum_start: 34,
        csum_offset: 16,
    };
    let (udp, udp_h) = partial_udp_frame(b"checksum me, please");
    let mut ufo = tso(GSO_UDP, 1000);
    ufo.flags = 0;
    let mut batch = batch_of(&[
        (
            tcp_frame(true, 0, 0x18, &p4),
            TunnelMeta::default(),
            tso(GSO_TCPV4, 1400),
        ),
        (
            tcp_frame(false, 1, 0x18, &p6),
            TunnelMeta::default(),
            tso(GSO_TCPV6, 1000),
        ),
        (udp.clone(), TunnelMeta::default(), udp_h),
        (udp.clone(), TunnelMeta::default(), ufo),
    ]);
    let r = a.send_batch(&mut batch).unwrap();
    assert_eq!(
        r,
        TxResult {
            sent: 8,
            dropped: 1
        }
    );
    let c = a.counters();
    assert_eq!(get(&c.gso_segments), 7);
    assert_eq!(get(&c.encap_packets), 8);
    assert_eq!(get(&c.drop_malformed), 1);

    let got = recv_n(&mut b, 8);
    assert_eq!(got.len(), 8);
    let (mut v4, mut v6, mut udps) = (Vec::new(), Vec::new(), 0);
    for p in got.packets() {
        let d = p.data();
        match (u16::from_be_bytes([d[12], d[13]]), d.get(23)) {
            (0x0800, Some(6)) => {
                let (seq, _, pl) = check_segment(d, 14, true);
                v4.push((seq, pl));
            }
            (0x8100, _) => {
                let (seq, _, pl) = check_segment(d, 18, false);
                v6.push((seq, pl));
            }
            (0x0800, Some(17)) => {
                let l4 = &d[34..];
                let len = (l4.len() as u16).to_be_bytes();
                assert_eq!(naive_sum(&[&d[26..34], &[0, 17], &len, l4]), 0xffff);
                // Only the checksum changed.
                assert_eq!(&d[..40], &udp[..40]);
                assert_eq!(&d[42..], &udp[42..]);
                udps += 1;
            }
            other => panic!("unexpected frame {other:?}"),
        }
    }
    assert_eq!((v4.len(), v6.len(), udps), (4, 3, 1));
    for (segs, payload) in [(&mut v4, &p4), (&mut v6, &p6)] {
        segs.sort_by_key(|(seq, _)| seq.wrapping_sub(0xffff_ff00));
        let joined: Vec<u8> = segs.iter().flat_map(|(_, pl)| pl.clone()).collect();
        assert_eq!(&joined, payload);
    }
}

#[test]
fn ipv6_underlay_is_refused_precisely() {
    let six: IpAddr = "2001:db8::1".parse().unwrap();
    let c = cfg(
        TunnelKind::Vxlan,
        FlowOr::Fixed(six),
        None,
        FlowOr::Fixed(1),
        4789,
    );
    let e = TunnelNetdev::open("vx6", &c).err().expect("refused");
    let msg = e.to_string();
    assert!(msg.contains("remote_ip 2001:db8::1 is IPv6"), "{msg}");
    assert!(msg.contains("vx6"), "{msg}");
    let c = cfg(
        TunnelKind::Geneve,
        FlowOr::Flow,
        Some(FlowOr::Fixed(six)),
        FlowOr::Flow,
        6081,
    );
    assert!(open("gn6", &c)
        .err()
        .unwrap()
        .to_string()
        .contains("local_ip"));
}

#[test]
fn flow_hash_is_per_flow_and_total() {
    let f = tcp_frame(true, 0, 0x10, &[1, 2, 3]);
    let mut other_port = f.clone();
    other_port[34] ^= 1;
    let mut other_payload = f.clone();
    *other_payload.last_mut().unwrap() ^= 0xff;
    assert_eq!(flow_hash(&f), flow_hash(&other_payload));
    assert_ne!(flow_hash(&f), flow_hash(&other_port));
    // Sockets are spread: 64 source ports land on more than one pool socket.
    let mut used = [false; POOL];
    for port in 0..64u16 {
        let mut g = f.clone();
        g[34..36].copy_from_slice(&port.to_be_bytes());
        used[(flow_hash(&g) % POOL as u32) as usize] = true;
    }
    assert!(used.iter().filter(|&&u| u).count() > POOL / 2);
    for n in 0..f.len() {
        let _ = flow_hash(&f[..n]);
    }
}

#[test]
fn a_refused_frame_is_counted_and_the_rest_still_goes() {
    let mut devs = open_all(|port| {
        vec![
            cfg(
                TunnelKind::Vxlan,
                FlowOr::Fixed(ip(B)),
                Some(FlowOr::Fixed(ip(A))),
                FlowOr::Fixed(1),
                port,
            ),
            cfg(
                TunnelKind::Vxlan,
                FlowOr::Fixed(ip(A)),
                Some(FlowOr::Fixed(ip(B))),
                FlowOr::Fixed(1),
                port,
            ),
        ]
    });
    let mut b = devs.pop().unwrap();
    let mut a = devs.pop().unwrap();
    // Same first 14 bytes (one flow, one socket): the oversized frames
    // (more than a UDP datagram holds) fail inside one sendmmsg run.
    let big = frame(65_600, 1);
    let small = frame(100, 1);
    let mut batch = batch_of(&[
        (big.clone(), TunnelMeta::default(), VnetHdr::default()),
        (small.clone(), TunnelMeta::default(), VnetHdr::default()),
        (big, TunnelMeta::default(), VnetHdr::default()),
        (small.clone(), TunnelMeta::default(), VnetHdr::default()),
    ]);
    let r = a.send_batch(&mut batch).unwrap();
    assert_eq!(
        r,
        TxResult {
            sent: 2,
            dropped: 2
        }
    );
    assert_eq!(get(&a.counters().drop_mtu), 2);
    assert_eq!(get(&a.counters().encap_packets), 2);
    let got = recv_n(&mut b, 2);
    assert_eq!(got.len(), 2);
    assert!(got.packets().iter().all(|p| p.data() == &small[..]));
}

#[test]
fn kernel_receive_drops_are_reported_as_overruns() {
    let mut devs = open_all(|port| {
        vec![cfg(
            TunnelKind::Vxlan,
            FlowOr::Flow,
            Some(FlowOr::Fixed(ip(B))),
            FlowOr::Flow,
            port,
        )]
    });
    let mut d = devs.pop().unwrap();
    let to = (Ipv4Addr::from(B), d.dst_port());
    let tx = UdpSocket::bind((Ipv4Addr::from(A), 0)).unwrap();
    let mut dgram = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
    dgram.extend(frame(1400, 0));
    // Far more than any receive buffer the kernel grants (at most 4 MiB here).
    for _ in 0..8000 {
        tx.send_to(&dgram, to).unwrap();
    }
    let mut b = PacketBatch::with_capacity(BATCH_SIZE);
    loop {
        b.clear();
        if d.recv_batch(&mut b).unwrap() == 0 {
            break;
        }
    }
    assert_eq!(d.rx_overruns(), 0, "queued before the drops: no count yet");
    // The kernel stamps its drop count on datagrams queued after the drops.
    tx.send_to(&dgram, to).unwrap();
    assert_eq!(recv_n(&mut d, 1).len(), 1);
    let drops = d.rx_overruns();
    let decap = get(&d.counters().decap_packets);
    assert!(drops > 0);
    assert_eq!(drops + decap, 8001);
}
