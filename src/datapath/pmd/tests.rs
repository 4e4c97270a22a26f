//! Poll-thread integration tests over in-memory ports.

use super::*;
use crate::datapath::actions::{DpAction, UserspaceReason};
use crate::datapath::dpflow::DpFlow;
use crate::datapath::extract::extract;
use crate::datapath::flow::{Field, FlowKey};
use crate::datapath::meter::{
    BandKind, DpMeterBand as MeterBand, DpMeterConfig as MeterConfig, MeterUnit,
};
use crate::netdev::packet::{TunnelMeta, VnetHdr};
use crate::netdev::testdev::{TestNetdev, TestPeer};
use crate::types::{MeterId, PortNo};
use crate::util::time::now_ms;
use etherparse::PacketBuilder;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

fn wait_for(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    cond()
}

fn frame(src_port: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .udp(src_port, 53)
        .write(&mut v, &[0x55; 18])
        .unwrap();
    v
}

fn in_port_flow(id: u64, port: u32, actions: Vec<DpAction>) -> Arc<DpFlow> {
    let mut k = FlowKey::default();
    k.set(Field::InPort, port as u128);
    let mut m = FlowKey::default();
    m.set_exact(Field::InPort);
    Arc::new(DpFlow::new(id, &k, &m, actions, now_ms()))
}

struct Rig {
    dp: Datapath,
    up: mpsc::Receiver<UpcallBatch>,
    peers: Vec<TestPeer>,
}

fn rig(n_threads: usize, n_ports: u32, upcall_cap: usize) -> Rig {
    rig_with(n_threads, n_ports, upcall_cap, OP_QUEUE_LEN)
}

fn rig_with(n_threads: usize, n_ports: u32, upcall_cap: usize, op_queue_len: usize) -> Rig {
    let (tx, up) = mpsc::channel(upcall_cap);
    let dp = Datapath::start(DpConfig {
        n_threads,
        upcall_tx: tx,
        emc_insert_inv_prob: 1,
        busy_poll_us: 0,
        op_queue_len,
    })
    .unwrap();
    let mut peers = Vec::new();
    for p in 1..=n_ports {
        let (dev, peer) = TestNetdev::pair(&format!("t{p}"), p).unwrap();
        dp.add_port(PortNo(p), Box::new(dev)).unwrap();
        // One op per thread per port: let tiny queues drain in between.
        settle(&dp, p as u64 * n_threads as u64);
        peers.push(peer);
    }
    Rig { dp, up, peers }
}

/// Waits until the threads have applied `ops` ops in total.
fn settle(dp: &Datapath, ops: u64) {
    assert!(
        wait_for(|| dp.stats().total.ops >= ops),
        "ops not applied: {:?}",
        dp.stats()
    );
}

fn next_upcall(up: &mut mpsc::Receiver<UpcallBatch>) -> Option<Upcall> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        match up.try_recv() {
            Ok(mut b) => {
                if !b.is_empty() {
                    return Some(b.remove(0));
                }
            }
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    None
}

#[test]
fn forwarding_miss_execute_and_delete() {
    let mut r = rig(1, 2, 16);
    let f = in_port_flow(1, 1, vec![DpAction::Output(PortNo(2))]);
    r.dp.put_flow(f.clone()).unwrap();
    assert_eq!(r.dp.n_flows(), 1);
    assert!(wait_for(|| r.dp.stats().total.ops >= 3)); // two ports + flow

    // A flow hit forwards 1 -> 2, twice (megaflow then EMC).
    let pkt = frame(1000);
    r.peers[0].inject(&pkt);
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), pkt);
    r.peers[0].inject(&pkt);
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), pkt);
    // Counters are published just after the batch is transmitted.
    assert!(wait_for(|| r.dp.stats().total.tx_packets == 2));
    assert!(wait_for(
        || r.dp.port_stats(PortNo(2)).unwrap().tx_packets == 2
    ));
    let s = r.dp.stats().total;
    assert_eq!(s.rx_packets, 2);
    assert_eq!(s.megaflow_hits, 1);
    assert_eq!(s.emc_hits, 1);
    assert_eq!(s.tx_packets, 2);
    let fs = f.stats.snapshot();
    assert_eq!(fs.packets, 2);
    assert_eq!(fs.bytes, 2 * pkt.len() as u64);
    let p1 = r.dp.port_stats(PortNo(1)).unwrap();
    let p2 = r.dp.port_stats(PortNo(2)).unwrap();
    assert_eq!((p1.rx_packets, p1.rx_bytes), (2, 2 * pkt.len() as u64));
    assert_eq!((p2.tx_packets, p2.tx_bytes), (2, 2 * pkt.len() as u64));

    // No flow for port 2: a miss upcall.
    let back = frame(2000);
    r.peers[1].inject(&back);
    let u = next_upcall(&mut r.up).expect("miss upcall");
    assert_eq!(u.kind, UpcallKind::Miss);
    assert_eq!(u.in_port, PortNo(2));
    assert_eq!(u.packet, back);
    assert_eq!(u.key, extract(&back, PortNo(2)).unwrap());
    assert!(wait_for(|| r.dp.stats().total.misses == 1));

    // Execute (PACKET_OUT) sends the upcalled packet out of port 1.
    r.dp.execute(
        u.packet.clone(),
        u.vnet,
        u.tunnel,
        u.in_port,
        vec![DpAction::Output(PortNo(1))],
    )
    .unwrap();
    assert_eq!(r.peers[0].recv_timeout(WAIT).unwrap(), back);

    // Deleting the flow stops forwarding: the next packet is a miss.
    let gone = r.dp.del_flow(1).unwrap();
    assert!(gone.is_dead());
    assert_eq!(r.dp.n_flows(), 0);
    r.peers[0].inject(&pkt);
    let u = next_upcall(&mut r.up).expect("miss after delete");
    assert_eq!(u.in_port, PortNo(1));
    assert_eq!(r.peers[1].pending_tx(), 0);
    r.dp.shutdown();
}

#[test]
fn userspace_action_and_multiple_outputs() {
    let mut r = rig(1, 3, 16);
    let reason = UserspaceReason::Controller {
        reason: 1,
        max_len: 0xffff,
        table_id: 3,
        cookie: 77,
        meter: None,
    };
    r.dp.put_flow(in_port_flow(
        5,
        1,
        vec![
            DpAction::Output(PortNo(2)),
            DpAction::SetField {
                field: Field::TpDst,
                value: 99,
                mask: 0xffff,
            },
            DpAction::Userspace(reason),
            DpAction::Output(PortNo(3)),
        ],
    ))
    .unwrap();
    let pkt = frame(7);
    r.peers[0].inject(&pkt);
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), pkt);
    let modified = r.peers[2].recv_timeout(WAIT).unwrap();
    assert_eq!(extract(&modified, PortNo(1)).unwrap().get(Field::TpDst), 99);
    let u = next_upcall(&mut r.up).expect("action upcall");
    assert_eq!(u.kind, UpcallKind::Action(reason));
    assert_eq!(u.key.get(Field::TpDst), 99);
    assert_eq!(u.packet, modified);
    assert!(wait_for(|| r.dp.stats().total.action_upcalls == 1));
    r.dp.shutdown();
}

#[test]
fn full_upcall_queue_counts_lost() {
    let r = rig(1, 1, 1);
    // Nobody reads upcalls: the first batch fills the channel, later misses are lost.
    r.peers[0].inject(&frame(1));
    assert!(wait_for(|| r.dp.stats().total.misses == 1));
    for i in 0..5 {
        r.peers[0].inject(&frame(10 + i));
    }
    assert!(wait_for(|| r.dp.stats().total.rx_packets == 6));
    let s = r.dp.stats().total;
    assert_eq!(s.lost, 5);
    assert_eq!(s.misses, 6);
    drop(r.up);
    r.dp.shutdown();
}

#[test]
fn invalid_frames_are_counted_and_dropped() {
    let r = rig(1, 2, 4);
    r.dp.put_flow(in_port_flow(1, 1, vec![DpAction::Output(PortNo(2))]))
        .unwrap();
    let mut bad = frame(1);
    bad.truncate(14 + 10); // IPv4 header cut short
    r.peers[0].inject(&bad);
    assert!(wait_for(|| r.dp.stats().total.rx_invalid == 1));
    assert_eq!(r.dp.port_stats(PortNo(1)).unwrap().rx_dropped, 1);
    assert_eq!(r.peers[1].pending_tx(), 0);
    r.dp.shutdown();
}

#[test]
fn two_threads_forward_both_ways_and_flush() {
    let mut r = rig(2, 2, 16);
    r.dp.put_flow(in_port_flow(1, 1, vec![DpAction::Output(PortNo(2))]))
        .unwrap();
    r.dp.put_flow(in_port_flow(2, 2, vec![DpAction::Output(PortNo(1))]))
        .unwrap();
    let a = frame(1);
    let b = frame(2);
    r.peers[0].inject(&a);
    r.peers[1].inject(&b);
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), a);
    assert_eq!(r.peers[0].recv_timeout(WAIT).unwrap(), b);
    assert!(wait_for(|| r.dp.stats().total.tx_packets == 2));
    let st = r.dp.stats();
    assert_eq!(st.threads.len(), 2);
    assert!(st.threads.iter().all(|t| t.rx_packets == 1), "{st:?}");

    r.dp.flush_flows();
    assert_eq!(r.dp.n_flows(), 0);
    assert!(r.dp.flows().is_empty());
    r.peers[0].inject(&a);
    assert!(next_upcall(&mut r.up).is_some());
    r.dp.shutdown();
}

#[test]
fn meter_drops_over_rate() {
    let r = rig(1, 2, 16);
    r.dp.set_meter(
        MeterId(1),
        MeterConfig {
            unit: MeterUnit::Pktps,
            bands: vec![MeterBand {
                kind: BandKind::Drop,
                rate: 1,
                burst_size: 1,
            }],
        },
    )
    .unwrap();
    r.dp.put_flow(in_port_flow(
        1,
        1,
        vec![DpAction::Meter(1), DpAction::Output(PortNo(2))],
    ))
    .unwrap();
    for i in 0..5 {
        r.peers[0].inject(&frame(i));
    }
    assert!(wait_for(|| r.dp.stats().total.rx_packets == 5));
    let s = r.dp.stats().total;
    // One token of burst at 1 packet/s: at most one more can pass however slow
    // the test machine is, unless it stalls for over a second.
    assert!(s.meter_drops >= 3, "{s:?}");
    assert_eq!(s.tx_packets + s.meter_drops, 5);
    let m = r.dp.meter_stats(MeterId(1)).unwrap();
    assert_eq!(m.packets_in, 5);
    assert_eq!(m.bands[0].0, s.meter_drops);
    r.dp.del_meter(MeterId(1)).unwrap();
    assert!(r.dp.meter_stats(MeterId(1)).is_none());
    r.dp.shutdown();
}

#[test]
fn dead_port_leaves_epoll_without_spinning() {
    let r = rig(1, 1, 4);
    r.peers[0].fail_rx(Some(libc::ENODEV));
    assert!(wait_for(|| r.dp.stats().total.port_fatal == 1));
    let calls = r.peers[0].recv_calls();
    assert_eq!(calls, 1, "a gone device is not polled again");
    // A readable fd that keeps failing would be polled again at once; give the
    // thread several housekeeping rounds to prove it is not.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(r.peers[0].recv_calls(), calls);
    assert_eq!(r.dp.port_stats(PortNo(1)).unwrap().rx_errors, 1);

    // Port removal and re-adding under the same number works.
    r.dp.del_port(PortNo(1)).unwrap();
    assert!(r.dp.port_stats(PortNo(1)).is_none());
    assert!(matches!(
        r.dp.del_port(PortNo(1)),
        Err(DpError::NoSuchPort(_))
    ));
    let (dev, _peer) = TestNetdev::pair("t1b", 1).unwrap();
    r.dp.add_port(PortNo(1), Box::new(dev)).unwrap();
    let (dev2, _peer2) = TestNetdev::pair("t1c", 1).unwrap();
    assert!(matches!(
        r.dp.add_port(PortNo(1), Box::new(dev2)),
        Err(DpError::PortExists(_))
    ));
    r.dp.shutdown();
}

#[test]
fn transient_errors_pause_then_resume() {
    let r = rig(1, 2, 4);
    r.dp.put_flow(in_port_flow(1, 1, vec![DpAction::Output(PortNo(2))]))
        .unwrap();
    r.peers[0].fail_rx(Some(libc::ENETDOWN));
    assert!(wait_for(
        || r.dp.port_stats(PortNo(1)).unwrap().rx_errors == RX_ERROR_LIMIT as u64
    ));
    r.peers[0].fail_rx(None);
    let pkt = frame(3);
    r.peers[0].inject(&pkt);
    // Polling resumes after the retry delay.
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), pkt);
    assert_eq!(r.dp.stats().total.port_fatal, 0);
    r.dp.shutdown();
}

#[test]
fn zero_threads_is_an_error() {
    let (tx, _rx) = mpsc::channel(1);
    let mut cfg = DpConfig::new(tx);
    cfg.n_threads = 0;
    assert!(matches!(Datapath::start(cfg), Err(DpError::NoThreads)));
}

#[test]
fn execute_userspace_reports_an_action_upcall() {
    let mut r = rig(1, 1, 4);
    let reason = UserspaceReason::Controller {
        reason: 1,
        max_len: 64,
        table_id: 0,
        cookie: 1,
        meter: None,
    };
    let pkt = frame(9);
    r.dp.execute(
        pkt.clone(),
        VnetHdr::default(),
        TunnelMeta::default(),
        PortNo::CONTROLLER,
        vec![DpAction::Userspace(reason), DpAction::Output(PortNo(1))],
    )
    .unwrap();
    let u = next_upcall(&mut r.up).expect("action upcall from execute");
    assert_eq!(u.kind, UpcallKind::Action(reason));
    assert_eq!(u.in_port, PortNo::CONTROLLER);
    assert_eq!(u.packet, pkt);
    assert_eq!(r.peers[0].recv_timeout(WAIT).unwrap(), pkt);
    r.dp.shutdown();
}

#[test]
fn execute_keeps_and_rewrites_the_tunnel_metadata() {
    // An upcall reply for a packet a tunnel port received: the actions
    // start from its metadata, a tunnel set-field changes it (not the
    // frame), and a userspace action reports the result in its key.
    let mut r = rig(1, 1, 4);
    let reason = UserspaceReason::Controller {
        reason: 1,
        max_len: 0xffff,
        table_id: 0,
        cookie: 1,
        meter: None,
    };
    let received = TunnelMeta {
        id: 5,
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        tos: 0,
        ttl: 64,
    };
    let pkt = frame(9);
    r.dp.execute(
        pkt.clone(),
        VnetHdr::default(),
        received,
        PortNo(1),
        vec![
            DpAction::Userspace(reason),
            DpAction::SetField {
                field: Field::TunnelId,
                value: 7,
                mask: u64::MAX as u128,
            },
            DpAction::Userspace(reason),
        ],
    )
    .unwrap();
    // Both upcalls come in one batch (one Execute).
    let mut ups = Vec::new();
    let deadline = Instant::now() + WAIT;
    while ups.len() < 2 && Instant::now() < deadline {
        match r.up.try_recv() {
            Ok(b) => ups.extend(b),
            Err(_) => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    assert_eq!(ups.len(), 2, "two action upcalls");
    let (first, second) = (&ups[0], &ups[1]);
    assert_eq!(first.tunnel, received);
    assert_eq!(first.key.get(Field::TunnelId), 5);
    assert_eq!(first.key.get(Field::TunSrc), 0x0a00_0001);
    assert_eq!(first.key.get(Field::TunDst), 0x0a00_0002);
    assert_eq!(second.tunnel, TunnelMeta { id: 7, ..received });
    assert_eq!(second.key.get(Field::TunnelId), 7);
    assert_eq!(second.key.get(Field::TunDst), 0x0a00_0002);
    assert_eq!(second.packet, pkt, "the frame is untouched");
    r.dp.shutdown();
}

#[test]
fn handle_is_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<Datapath>();
}

/// Blocks the thread that receives from `peer` inside a receive call.
fn stall(peer: &TestPeer) {
    let before = peer.recv_calls();
    peer.hold_rx(true);
    assert!(
        wait_for(|| peer.recv_calls() > before),
        "the thread never received"
    );
}

fn pass_all_meter() -> MeterConfig {
    MeterConfig {
        unit: MeterUnit::Pktps,
        bands: vec![MeterBand {
            kind: BandKind::Drop,
            rate: 1_000_000,
            burst_size: 1_000_000,
        }],
    }
}

#[test]
fn a_thread_that_missed_a_meter_update_gets_the_whole_set() {
    let r = rig_with(2, 2, 4, 2);
    for (port, out) in [(1, 2), (2, 1)] {
        r.dp.put_flow(in_port_flow(
            port as u64,
            port,
            vec![DpAction::Meter(2), DpAction::Output(PortNo(out))],
        ))
        .unwrap();
        // Both threads have the flow before the next op or the stall.
        settle(&r.dp, 4 + 2 * port as u64);
    }
    stall(&r.peers[0]);
    // Fill the stalled thread's queue; the other thread keeps up.
    let mut filled = false;
    for _ in 0..10 {
        if r.dp.set_meter(MeterId(9), pass_all_meter()).is_err() {
            filled = true;
            break;
        }
    }
    assert!(filled, "the stalled thread's queue never filled");
    // Meter 2 cannot reach the stalled thread for now (the free one may
    // have fallen a little behind too: its queue holds only two ops).
    assert!(r.dp.set_meter(MeterId(2), pass_all_meter()).is_err());
    assert!(r.dp.stats().meters_stale_threads >= 1);
    r.peers[0].hold_rx(false);
    assert!(wait_for(|| r.dp.sync_meters().is_ok()));
    assert_eq!(r.dp.stats().meters_stale_threads, 0);
    assert!(r.dp.stats().meter_syncs >= 1);
    // Both threads now meter through meter 2.
    let f = frame(1);
    r.peers[0].inject(&f);
    r.peers[1].inject(&f);
    assert!(wait_for(|| r
        .dp
        .meter_stats(MeterId(2))
        .is_some_and(|m| m.packets_in == 2)));
    assert_eq!(r.peers[0].recv_timeout(WAIT).unwrap(), f);
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), f);
    r.dp.shutdown();
}

#[test]
fn a_full_queue_hands_the_packet_back() {
    let r = rig_with(1, 2, 4, 1);
    stall(&r.peers[0]);
    let x = |src: u16| Execute {
        packet: frame(src),
        vnet: VnetHdr::default(),
        in_port: PortNo::CONTROLLER,
        actions: vec![DpAction::Output(PortNo(2))],
    };
    r.dp.try_execute(x(1)).unwrap();
    let refused = r.dp.try_execute(x(2)).unwrap_err();
    assert!(matches!(refused.error, DpError::OpQueueFull { thread: 0 }));
    assert_eq!(
        refused.execute.packet,
        frame(2),
        "the packet comes back whole"
    );
    r.peers[0].hold_rx(false);
    let mut again = Some(refused.execute);
    assert!(wait_for(|| match again.take() {
        Some(x) => match r.dp.try_execute(x) {
            Ok(()) => true,
            Err(back) => {
                again = Some(back.execute);
                false
            }
        },
        None => true,
    }));
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), frame(1));
    assert_eq!(r.peers[1].recv_timeout(WAIT).unwrap(), frame(2));
    // Counters are published right after the batch is transmitted.
    assert!(wait_for(|| {
        let s = r.dp.stats().total;
        (s.exec_packets, s.tx_packets) == (2, 2)
    }));
    let s = r.dp.stats().total;
    // Both went out in one transmit call or two, never more.
    assert!(s.tx_batches <= 2, "{s:?}");
    r.dp.shutdown();
}

/// A test port standing in for a tunnel device: what it receives carries
/// `rx` as tunnel metadata (as a tunnel's decapsulation leaves it), and it
/// records the metadata of what it is asked to send (what a tunnel's
/// encapsulation would read).
struct TunnelLike {
    inner: TestNetdev,
    rx: Arc<parking_lot::Mutex<TunnelMeta>>,
    sent: Arc<parking_lot::Mutex<Vec<TunnelMeta>>>,
}

impl crate::netdev::Netdev for TunnelLike {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn ifindex(&self) -> u32 {
        self.inner.ifindex()
    }
    fn rx_fd(&self) -> std::os::fd::RawFd {
        self.inner.rx_fd()
    }
    fn recv_batch(
        &mut self,
        batch: &mut crate::netdev::packet::PacketBatch,
    ) -> Result<usize, crate::netdev::NetdevError> {
        let before = batch.len();
        let n = self.inner.recv_batch(batch)?;
        let meta = *self.rx.lock();
        for p in &mut batch.packets_mut()[before..] {
            p.tunnel = meta;
        }
        Ok(n)
    }
    fn send_batch(
        &mut self,
        batch: &mut crate::netdev::packet::PacketBatch,
    ) -> Result<crate::netdev::TxResult, crate::netdev::NetdevError> {
        self.sent
            .lock()
            .extend(batch.packets().iter().map(|p| p.tunnel));
        self.inner.send_batch(batch)
    }
    fn rx_errors(&self) -> u64 {
        self.inner.rx_errors()
    }
    fn open_tx(&self) -> Result<Box<dyn crate::netdev::NetdevTx>, crate::netdev::NetdevError> {
        self.inner.open_tx()
    }
}

#[test]
fn received_tunnel_metadata_reaches_the_key_and_set_fields_reach_the_sender() {
    let (tx, mut up) = mpsc::channel(16);
    let dp = Datapath::start(DpConfig {
        n_threads: 1,
        upcall_tx: tx,
        emc_insert_inv_prob: 1,
        busy_poll_us: 0,
        op_queue_len: OP_QUEUE_LEN,
    })
    .unwrap();
    let rx_meta = Arc::new(parking_lot::Mutex::new(TunnelMeta {
        id: 5,
        src: 0x0a00_0001,
        dst: 0x0a00_0002,
        tos: 0,
        ttl: 64,
    }));
    let sent = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut peers = Vec::new();
    for p in 1..=2u32 {
        let (dev, peer) = TestNetdev::pair(&format!("tun{p}"), p).unwrap();
        let dev = TunnelLike {
            inner: dev,
            rx: rx_meta.clone(),
            sent: sent.clone(),
        };
        dp.add_port(PortNo(p), Box::new(dev)).unwrap();
        peers.push(peer);
    }
    // The megaflow translation would install for `in_port=1,tun_id=5
    // actions=set_field:0x7->tun_id,set_field:10.1.1.1->tun_dst,output:2`.
    let mut k = FlowKey::default();
    k.set(Field::InPort, 1);
    k.set(Field::TunnelId, 5);
    let mut m = FlowKey::default();
    m.set_exact(Field::InPort);
    m.set_exact(Field::TunnelId);
    let actions = vec![
        DpAction::SetField {
            field: Field::TunnelId,
            value: 7,
            mask: Field::TunnelId.full_mask(),
        },
        DpAction::SetField {
            field: Field::TunDst,
            value: 0x0a01_0101,
            mask: Field::TunDst.full_mask(),
        },
        DpAction::Output(PortNo(2)),
    ];
    dp.put_flow(Arc::new(DpFlow::new(1, &k, &m, actions, now_ms())))
        .unwrap();
    settle(&dp, 3);

    let pkt = frame(7);
    peers[0].inject(&pkt);
    assert_eq!(peers[1].recv_timeout(WAIT).unwrap(), pkt, "frame unchanged");
    assert_eq!(
        sent.lock().as_slice(),
        &[TunnelMeta {
            id: 7,
            src: 0x0a00_0001,
            dst: 0x0a01_0101,
            tos: 0,
            ttl: 64,
        }]
    );
    // Counters are published just after the batch is transmitted.
    assert!(wait_for(|| dp.stats().total.megaflow_hits == 1));

    // Another VNI misses; the upcall's key and metadata are the received ones.
    rx_meta.lock().id = 6;
    peers[0].inject(&pkt);
    let u = next_upcall(&mut up).expect("miss upcall");
    assert_eq!(u.kind, UpcallKind::Miss);
    assert_eq!(u.key.get(Field::TunnelId), 6);
    assert_eq!(u.key.get(Field::TunSrc), 0x0a00_0001);
    assert_eq!(u.key.get(Field::TunDst), 0x0a00_0002);
    assert_eq!(u.tunnel.id, 6);
    assert_eq!(u.tunnel.ttl, 64);
    dp.shutdown();
}
