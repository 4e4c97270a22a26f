//! The connection core driven by a scripted peer on a simulated clock: every
//! byte the peer sends is handed over explicitly, every segment the core
//! emits is parsed, and time moves only when a test says so.

use super::*;
use crate::ofproto::Ofproto;
use crate::openflow::action::{Action, Instruction};
use crate::openflow::message::{
    BundleAdd, BundleCtrl, BundleCtrlType, FlowMod, FlowModCommand, FlowStatsRequest,
    MpRequestBody, MultipartRequest, PacketOut, PortDesc, PortMod, BF_ATOMIC, NO_BUFFER,
};
use crate::openflow::oxm::{Match, OxmField, OxmId};
use crate::types::{Cookie, GroupId, MacAddr, PortNo};

/// One message as the peer receives it.
#[derive(Debug, Clone)]
struct Got {
    version: u8,
    msg_type: u8,
    xid: u32,
    body: Vec<u8>,
}

impl Got {
    fn error(&self) -> Option<(u16, u16)> {
        (self.msg_type == 1 && self.body.len() >= 4).then(|| {
            (
                u16::from_be_bytes([self.body[0], self.body[1]]),
                u16::from_be_bytes([self.body[2], self.body[3]]),
            )
        })
    }
}

/// The peer and the clock.
struct Peer {
    c: OfConn,
    now: Instant,
    /// Bytes the peer has received and not yet parsed.
    inbox: Vec<u8>,
    /// Segments taken from the core and not yet acknowledged.
    unacked: VecDeque<usize>,
    /// Acknowledge every segment at once (a peer that reads).
    reads: bool,
    events: Vec<Event>,
}

const T0_PROBE: Duration = Duration::from_secs(5);

fn settings() -> Settings {
    let mut s = Settings::new(DatapathId(0xabc));
    s.probe_interval = Some(T0_PROBE);
    s.hello_timeout = Duration::from_secs(10);
    s.tx_budget = 256 * 1024;
    s.stuck_timeout = Duration::from_secs(30);
    s
}

fn raw(version: u8, t: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let len = (8 + body.len()) as u16;
    let mut v = vec![version, t];
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn enc(xid: u32, body: Message) -> Vec<u8> {
    openflow::encode_to_vec(&OfpMsg { xid, body }).expect("encode")
}

fn hello13() -> Vec<u8> {
    raw(4, 0, 1, &[])
}

fn flow_mod(table: u8) -> Message {
    Message::FlowMod(FlowMod::new(
        FlowModCommand::Add,
        TableId(table),
        1,
        Match::default(),
        vec![],
    ))
}

fn packet_in(reason: u8, len: usize) -> AsyncEvent {
    AsyncEvent::PacketIn {
        pin: Arc::new(PacketIn {
            buffer_id: NO_BUFFER,
            total_len: len as u16,
            reason,
            table_id: TableId(0),
            cookie: Cookie(u64::MAX),
            match_: Match {
                fields: vec![OxmField::exact(OxmId::InPort, 1)],
            },
            data: vec![0xab; len],
        }),
        max_len: 0xffff,
    }
}

fn port_status() -> AsyncEvent {
    AsyncEvent::PortStatus(Arc::new(PortStatus {
        reason: 2,
        desc: PortDesc {
            port_no: PortNo(1),
            hw_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            name: "p1".into(),
            config: 0,
            state: 0,
            curr: 0,
            advertised: 0,
            supported: 0,
            peer: 0,
            curr_speed: 0,
            max_speed: 0,
        },
    }))
}

impl Peer {
    fn new(s: Settings) -> Peer {
        let now = Instant::now();
        let mut p = Peer {
            c: OfConn::new(s, now),
            now,
            inbox: Vec::new(),
            unacked: VecDeque::new(),
            reads: true,
            events: Vec::new(),
        };
        let first = p.take();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].msg_type, 0, "the switch speaks first with HELLO");
        p
    }

    /// A negotiated connection.
    fn up(s: Settings) -> Peer {
        let mut p = Peer::new(s);
        p.send(&hello13());
        assert!(p.c.version().is_some());
        p.events.clear();
        p
    }

    fn send(&mut self, bytes: &[u8]) {
        self.c.handle_bytes(bytes, self.now);
        self.collect();
    }

    fn send_msg(&mut self, xid: u32, body: Message) {
        let b = enc(xid, body);
        self.send(&b);
    }

    fn collect(&mut self) {
        while let Some(seg) = self.c.poll_transmit() {
            self.unacked.push_back(seg.len());
            self.inbox.extend_from_slice(&seg);
        }
        while let Some(e) = self.c.poll_event() {
            self.events.push(e);
        }
        if self.reads {
            self.ack_all();
        }
    }

    fn ack_all(&mut self) {
        while let Some(n) = self.unacked.pop_front() {
            self.c.handle_transmitted(n, self.now);
            // Acks may let more out.
            while let Some(seg) = self.c.poll_transmit() {
                self.unacked.push_back(seg.len());
                self.inbox.extend_from_slice(&seg);
            }
        }
        while let Some(e) = self.c.poll_event() {
            self.events.push(e);
        }
    }

    /// Everything received so far, parsed.
    fn take(&mut self) -> Vec<Got> {
        self.collect();
        let mut out = Vec::new();
        let mut off = 0;
        while self.inbox.len() - off >= 8 {
            let len = u16::from_be_bytes([self.inbox[off + 2], self.inbox[off + 3]]) as usize;
            if self.inbox.len() - off < len {
                break;
            }
            let m = &self.inbox[off..off + len];
            out.push(Got {
                version: m[0],
                msg_type: m[1],
                xid: u32::from_be_bytes([m[4], m[5], m[6], m[7]]),
                body: m[8..].to_vec(),
            });
            off += len;
        }
        self.inbox.drain(..off);
        out
    }

    /// Moves the clock to `now + d`, firing every timer on time.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while let Some(t) = self.c.poll_timeout() {
            if t > end {
                break;
            }
            self.now = self.now.max(t);
            self.c.handle_timeout(self.now);
            self.collect();
        }
        self.now = end;
    }

    /// The process did not run for `d`: the next timer fires that late.
    fn stall(&mut self, d: Duration) {
        let _ = self.c.poll_timeout();
        self.now += d;
        self.c.handle_timeout(self.now);
        self.collect();
    }

    fn closed(&self) -> Option<&CloseReason> {
        self.events.iter().find_map(|e| match e {
            Event::Close(r) => Some(r),
            _ => None,
        })
    }

    /// Takes the pending bridge batch: `(token, xids and types)`.
    fn batch(&mut self) -> Option<(u64, Vec<OfpMsg>)> {
        let i = self
            .events
            .iter()
            .position(|e| matches!(e, Event::Requests { .. }))?;
        match self.events.remove(i) {
            Event::Requests { token, msgs, .. } => {
                Some((token, msgs.into_iter().map(|(m, _)| m).collect()))
            }
            _ => None,
        }
    }

    /// A bridge that answers BARRIER and FEATURES and refuses FLOW_MODs to
    /// table 255.
    fn bridge(&mut self) -> usize {
        let mut n = 0;
        while let Some((token, msgs)) = self.batch() {
            n += 1;
            let replies = msgs
                .into_iter()
                .filter_map(|m| match m.body {
                    Message::BarrierRequest => Some(OfReply::Msg(OfpMsg {
                        xid: m.xid,
                        body: Message::BarrierReply,
                    })),
                    Message::FeaturesRequest => Some(OfReply::Msg(OfpMsg {
                        xid: m.xid,
                        body: Message::FeaturesReply(Ofproto::new(DatapathId(1), "").features()),
                    })),
                    Message::FlowMod(f) if f.table_id == TableId(255) => Some(OfReply::Error {
                        xid: m.xid,
                        error: OfpError::BadTableId,
                        head: vec![4, 14],
                    }),
                    _ => None,
                })
                .collect();
            self.c.handle_replies(token, Some(replies), self.now);
            self.collect();
        }
        n
    }
}

// ---- HELLO -------------------------------------------------------------------

/// Settings allowing only `vs`.
fn allowing(vs: &[Version]) -> Settings {
    let mut s = settings();
    s.versions = Versions::of(vs);
    s
}

#[test]
fn hello_variants() {
    // Our HELLO: the highest allowed version in the header, all of them in
    // the bitmap (OF1.3.5 §6.3.1; OVS sends the same).
    let mut p = Peer {
        c: OfConn::new(allowing(&[Version::V1_0, Version::V1_4]), Instant::now()),
        now: Instant::now(),
        inbox: Vec::new(),
        unacked: VecDeque::new(),
        reads: true,
        events: Vec::new(),
    };
    let ours = p.take();
    assert_eq!(ours[0].version, 5);
    assert_eq!(ours[0].body, [0, 1, 0, 8, 0, 0, 0, 0x22]);
    // Header-only HELLO of a later version than ours: ours (the lower).
    let mut p = Peer::new(settings());
    p.send(&raw(7, 0, 1, &[]));
    assert_eq!(p.c.version(), Some(Version::V1_5));
    assert!(matches!(p.events[0], Event::Up { .. }));
    // Header-only: the lower of the two header versions, if allowed.
    for (hv, v) in [(1, Version::V1_0), (4, Version::V1_3), (5, Version::V1_4)] {
        let mut p = Peer::new(settings());
        p.send(&raw(hv, 0, 1, &[]));
        assert_eq!(p.c.version(), Some(v), "header version {hv}");
    }
    let mut p = Peer::new(allowing(&[Version::V1_3]));
    p.send(&raw(6, 0, 1, &[]));
    assert_eq!(p.c.version(), Some(Version::V1_3));
    // Version bitmaps: the highest in both.
    for (bits, v) in [
        (0x12, Version::V1_3),
        (0x72, Version::V1_5),
        (0x32, Version::V1_4),
        (0x02, Version::V1_0),
    ] {
        let mut p = Peer::new(settings());
        p.send(&raw(6, 0, 1, &[0, 1, 0, 8, 0, 0, 0, bits]));
        assert_eq!(p.c.version(), Some(v), "bitmap {bits:#x}");
    }
    let mut p = Peer::new(allowing(&[Version::V1_0, Version::V1_3]));
    p.send(&raw(6, 0, 1, &[0, 1, 0, 8, 0, 0, 0, 0x72]));
    assert_eq!(p.c.version(), Some(Version::V1_3));
    // Nothing in common (1.0 only against a 1.3-only bridge): HELLO_FAILED
    // with a text naming what we allow, in the peer's version, then close.
    let mut p = Peer::new(allowing(&[Version::V1_3]));
    p.send(&raw(1, 0, 7, &[]));
    let got = p.take();
    assert_eq!(got[0].error(), Some((0, 0)));
    assert_eq!(got[0].version, 1);
    assert_eq!(got[0].xid, 7);
    assert!(String::from_utf8_lossy(&got[0].body[4..]).contains("OpenFlow 1.3"));
    assert_eq!(p.closed(), Some(&CloseReason::Incompatible));
    assert!(!p.c.wants_input());
    // Versions we do not speak (1.1, 1.2) are never negotiated.
    let mut p = Peer::new(settings());
    p.send(&raw(6, 0, 1, &[0, 1, 0, 8, 0, 0, 0, 0x0c]));
    assert_eq!(p.closed(), Some(&CloseReason::Incompatible));
    let mut p = Peer::new(settings());
    p.send(&raw(2, 0, 1, &[]));
    assert_eq!(p.closed(), Some(&CloseReason::Incompatible));
    // A HELLO whose element has a bad length: OVS negotiates on the header
    // version; we do too, at once (no 10 s limbo), and count it.
    let mut p = Peer::new(settings());
    p.send(&raw(4, 0, 1, &[0, 1, 0, 99, 0, 0, 0, 0x10]));
    assert_eq!(p.c.version(), Some(Version::V1_3));
    assert_eq!(p.c.counters().snapshot().hello_unparsed, 1);
    assert!(p.take().is_empty(), "no error for an unparsed element");
    // ... and a header version we do not allow with a bad element fails at once.
    let mut p = Peer::new(allowing(&[Version::V1_3]));
    p.send(&raw(1, 0, 1, &[0, 1, 0, 2]));
    assert_eq!(p.closed(), Some(&CloseReason::Incompatible));
    // Anything else first: an error, then close (OVS vcs_recv_hello()).
    let mut p = Peer::new(settings());
    p.send(&raw(4, 2, 3, &[]));
    assert_eq!(p.take()[0].error(), Some((0, 0)));
    assert_eq!(p.closed(), Some(&CloseReason::NotHello));
}

#[test]
fn every_message_after_hello_is_in_the_negotiated_version() {
    for (v, echo_req, echo_rep) in [(1u8, 2u8, 3u8), (4, 2, 3), (5, 2, 3), (6, 2, 3)] {
        let mut p = Peer::new(settings());
        p.send(&raw(v, 0, 1, &[]));
        assert_eq!(p.c.version(), Some(Version(v)));
        p.send(&raw(v, echo_req, 9, b"abc"));
        let got = p.take();
        assert_eq!(got.len(), 1, "version {v}");
        assert_eq!((got[0].version, got[0].msg_type), (v, echo_rep));
        assert_eq!(got[0].body, b"abc");
        // A request in the version's own numbering: FEATURES_REQUEST is 5
        // in every version; its reply is in the session's version. OF1.0's
        // lists the ports, so the bridge answers it.
        p.send(&raw(v, 5, 10, &[]));
        if v == 1 {
            assert!(p.take().is_empty());
            assert_eq!(p.bridge(), 1, "sent to the bridge");
        }
        let got = p.take();
        assert_eq!((got[0].version, got[0].msg_type, got[0].xid), (v, 6, 10));
        // Another version after negotiation: BAD_VERSION, and the session
        // ends (nothing it sends can be trusted to mean what we think).
        let other = if v == 4 { 6 } else { 4 };
        p.send(&raw(other, 2, 11, &[]));
        let got = p.take();
        assert_eq!(got[0].version, v);
        assert_eq!(got[0].error(), Some((1, 0)), "OFPBRC_BAD_VERSION in {v}");
        assert!(p.closed().is_some());
    }
}

#[test]
fn no_hello_closes_at_the_timeout_and_not_before() {
    let mut p = Peer::new(settings());
    p.advance(Duration::from_millis(9_999));
    assert!(p.closed().is_none());
    p.advance(Duration::from_millis(1));
    assert_eq!(p.closed(), Some(&CloseReason::HelloTimeout));
    assert_eq!(p.c.poll_timeout(), None);
    // A HELLO split across reads still counts.
    let mut p = Peer::new(settings());
    p.send(&[4, 0, 0]);
    p.send(&[8, 0, 0, 0, 1]);
    assert!(p.c.version().is_some());
}

// ---- probes and stalls ---------------------------------------------------------

#[test]
fn probe_then_disconnect_and_answers_reset_it() {
    let mut p = Peer::up(settings());
    p.advance(T0_PROBE - Duration::from_millis(1));
    assert!(p.take().is_empty());
    p.advance(Duration::from_millis(1));
    let got = p.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].msg_type, 2, "ECHO_REQUEST probe");
    // Any input counts as an answer.
    p.send(&raw(4, 3, got[0].xid, &[]));
    p.advance(T0_PROBE * 2 - Duration::from_millis(1));
    assert!(p.closed().is_none());
    // Silence after a probe: closed two intervals after the last input.
    p.advance(T0_PROBE * 3);
    assert_eq!(p.closed(), Some(&CloseReason::ProbeTimeout));
    assert_eq!(p.c.counters().snapshot().probes_sent, 2);
}

#[test]
fn a_stall_is_not_held_against_the_peer() {
    let mut p = Peer::up(settings());
    p.advance(T0_PROBE);
    assert_eq!(p.take()[0].msg_type, 2);
    // SIGSTOP for 10 s: the next timer fires 10 s late, with the answer
    // waiting unread. The peer is not judged on that interval.
    p.stall(Duration::from_secs(10));
    assert!(p.closed().is_none());
    assert_eq!(p.c.counters().snapshot().stalls, 1);
    // Then the pending answer is read.
    p.send(&raw(4, 3, FIRST_XID, &[]));
    p.advance(T0_PROBE - Duration::from_millis(1));
    assert!(p.closed().is_none());
    assert!(p.take().is_empty());
    // A stall during the handshake extends the HELLO deadline too.
    let mut h = Peer::new(settings());
    h.stall(Duration::from_secs(15));
    assert!(h.closed().is_none());
    h.send(&hello13());
    assert!(h.c.version().is_some());
}

// ---- local answers, ordering, errors -------------------------------------------

#[test]
fn local_answers_and_switch_config() {
    let mut p = Peer::up(settings());
    p.send(&raw(4, 2, 10, b"ping"));
    p.send_msg(11, Message::FeaturesRequest);
    p.send_msg(
        12,
        Message::SetConfig(SwitchConfig {
            flags: 1,
            miss_send_len: 200,
        }),
    );
    p.send_msg(13, Message::GetConfigRequest);
    p.send(&raw(4, 4, 14, &[0, 0, 0, 1, 0, 0, 0, 2]));
    p.send(&raw(4, 21, 15, &[]));
    let got = p.take();
    let summary: Vec<(u8, u32)> = got.iter().map(|g| (g.msg_type, g.xid)).collect();
    assert_eq!(summary, vec![(3, 10), (6, 11), (8, 13), (1, 14), (1, 15)]);
    assert_eq!(got[0].body, b"ping");
    assert_eq!(&got[1].body[..8], &0xabcu64.to_be_bytes());
    assert_eq!(&got[2].body[..4], &[0, 1, 0, 200]);
    assert_eq!(got[3].error(), Some((1, 3)), "BAD_EXPERIMENTER");
    assert_eq!(
        got[4].error(),
        Some((1, 1)),
        "BARRIER_REPLY is not for a switch"
    );
}

#[test]
fn replies_keep_request_order_around_bridge_batches() {
    let mut p = Peer::up(settings());
    let mut bytes = enc(1, flow_mod(0));
    bytes.extend(raw(4, 2, 2, &[]));
    bytes.extend(enc(3, Message::BarrierRequest));
    p.send(&bytes);
    // The echo waits for the flow-mod's batch.
    assert!(p.take().is_empty());
    let (t, msgs) = p.batch().expect("first batch");
    assert_eq!(msgs.len(), 1);
    assert!(p.batch().is_none(), "one batch at a time");
    p.c.handle_replies(t, Some(vec![]), p.now);
    p.collect();
    assert_eq!(p.bridge(), 1);
    let order: Vec<(u8, u32)> = p.take().iter().map(|g| (g.msg_type, g.xid)).collect();
    assert_eq!(order, vec![(3, 2), (21, 3)]);
}

#[test]
fn every_erroring_request_gets_its_error() {
    let mut p = Peer::up(settings());
    let n = 1000u32;
    let mut bytes = Vec::new();
    for i in 0..n {
        bytes.extend(enc(i, flow_mod(255)));
    }
    p.send(&bytes);
    let batches = p.bridge();
    assert!(batches >= (n as usize).div_ceil(BATCH_MAX));
    let got = p.take();
    assert_eq!(got.len(), n as usize);
    assert!(got.iter().all(|g| g.error() == Some((5, 2))));
    assert!(got.iter().enumerate().all(|(i, g)| g.xid == i as u32));
    assert_eq!(p.c.counters().snapshot().errors_sent, n as u64);
}

#[test]
fn a_refused_batch_is_answered_with_errors() {
    let mut p = Peer::up(settings());
    let mut bytes = enc(1, flow_mod(0));
    bytes.extend(enc(2, Message::BarrierRequest));
    bytes.extend(enc(
        3,
        Message::PacketOut(PacketOut {
            buffer_id: NO_BUFFER,
            in_port: PortNo::CONTROLLER,
            actions: vec![],
            data: vec![0; 14],
        }),
    ));
    p.send(&bytes);
    let (t, _) = p.batch().expect("batch");
    p.c.handle_replies(t, None, p.now);
    let got = p.take();
    let e: Vec<(u32, Option<(u16, u16)>)> = got.iter().map(|g| (g.xid, g.error())).collect();
    assert_eq!(
        e,
        vec![(1, Some((5, 0))), (2, Some((1, 5))), (3, Some((1, 5)))]
    );
    assert_eq!(p.c.counters().snapshot().bridge_unavailable, 3);
    // The connection goes on.
    p.send(&raw(4, 2, 9, &[]));
    assert_eq!(p.take()[0].msg_type, 3);
}

#[test]
fn decode_errors_are_replies_and_bad_framing_closes() {
    let mut p = Peer::up(settings());
    p.send(&raw(4, 200, 5, &[]));
    assert_eq!(p.take()[0].error(), Some((1, 1)));
    p.send(&raw(1, 2, 6, &[]));
    assert_eq!(p.take()[0].error(), Some((1, 0)), "BAD_VERSION");
    assert_eq!(p.closed(), Some(&CloseReason::Protocol));
    let mut p = Peer::up(settings());
    p.send(&[4, 0, 0, 4, 0, 0, 0, 9]);
    assert_eq!(p.take()[0].error(), Some((1, 6)));
    assert_eq!(p.closed(), Some(&CloseReason::Protocol));
}

// ---- roles -----------------------------------------------------------------------

#[test]
fn slaves_are_refused_what_ovs_refuses_and_keep_the_rest() {
    let mut p = Peer::up(settings());
    p.send_msg(
        1,
        Message::RoleRequest(RoleMsg {
            role: ControllerRole::Slave,
            generation_id: 5,
        }),
    );
    let token = match p.events.pop() {
        Some(Event::Role { token, role, .. }) => {
            assert_eq!(role, ControllerRole::Slave);
            token
        }
        other => panic!("{other:?}"),
    };
    // Input waits for the election.
    p.send(&raw(4, 2, 2, &[]));
    assert!(p.take().is_empty());
    p.c.handle_role(token, RoleAnswer::Granted(ControllerRole::Slave, 5), p.now);
    let got = p.take();
    assert_eq!((got[0].msg_type, got[1].msg_type), (25, 3));
    assert_eq!(p.c.role(), ControllerRole::Slave);
    let writes: Vec<Vec<u8>> = vec![
        enc(10, flow_mod(0)),
        enc(
            11,
            Message::PacketOut(PacketOut {
                buffer_id: NO_BUFFER,
                in_port: PortNo::CONTROLLER,
                actions: vec![Action::Output {
                    port: PortNo(1),
                    max_len: 0,
                }],
                data: vec![0; 14],
            }),
        ),
        raw(4, 16, 12, &[0; 32]), // PORT_MOD (decoded or not, refused)
        enc(
            13,
            Message::TableMod {
                table_id: TableId(0),
                config: 0,
            },
        ),
        // ONF bundle control on 1.3.
        raw(
            4,
            4,
            14,
            &[
                0x4f, 0x4e, 0x46, 0, 0, 0, 0x08, 0xfc, 0, 0, 0, 1, 0, 0, 0, 0,
            ],
        ),
    ];
    for w in &writes {
        p.send(w);
    }
    assert!(p.batch().is_none(), "nothing reached the bridge");
    let got = p.take();
    let xids: Vec<u32> = got.iter().map(|g| g.xid).collect();
    assert_eq!(xids, vec![10, 11, 12, 13, 14]);
    for g in &got {
        // PORT_MOD with a zero body may fail to decode first (BAD_LEN) in
        // some codecs; every other one must be IS_SLAVE.
        if g.xid != 12 {
            assert_eq!(g.error(), Some((1, 10)), "xid {}", g.xid);
        }
    }
    // Reads and SET_CONFIG's miss_send_len still work for a slave.
    p.send_msg(
        20,
        Message::SetConfig(SwitchConfig {
            flags: 3,
            miss_send_len: 64,
        }),
    );
    p.send_msg(21, Message::GetConfigRequest);
    let got = p.take();
    assert_eq!(
        &got[0].body[..4],
        &[0, 0, 0, 64],
        "flags kept, miss_send_len set"
    );
    p.send_msg(
        22,
        Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MpRequestBody::Desc,
        }),
    );
    assert_eq!(p.batch().map(|(_, m)| m.len()), Some(1));
    // Demoted back to equal by the connection manager: writes pass.
    p.c.set_role(ControllerRole::Equal);
    p.send_msg(23, flow_mod(0));
    // (the DESC batch is still outstanding; answer it first)
    p.c.handle_replies(1, Some(vec![]), p.now);
    let _ = p.bridge();
    assert!(p.take().is_empty());
}

#[test]
fn async_messages_follow_role_and_async_config() {
    let mut p = Peer::up(settings());
    p.c.handle_async(&packet_in(0, 300), p.now);
    p.c.handle_async(&port_status(), p.now);
    let got = p.take();
    assert_eq!((got[0].msg_type, got[1].msg_type), (10, 12));
    // miss_send_len 128 truncated the table-miss packet: header 8 + fixed
    // part 16 + match (8: in_port padded) + 2 pad + 128.
    assert_eq!(got[0].body.len(), 16 + 16 + 2 + 128);
    // A slave gets port status but no packet-ins by default (§6.1.1).
    p.c.set_role(ControllerRole::Slave);
    p.c.handle_async(&packet_in(0, 10), p.now);
    p.c.handle_async(&port_status(), p.now);
    let got = p.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].msg_type, 12);
    // SET_ASYNC: the slave asks for table-miss packet-ins, masters for none.
    p.send_msg(
        1,
        Message::SetAsync(AsyncConfig {
            packet_in_mask: [0, 1],
            port_status_mask: [0, 0],
            flow_removed_mask: [0, 0],
        }),
    );
    p.c.handle_async(&packet_in(0, 10), p.now);
    p.c.handle_async(&packet_in(1, 10), p.now);
    p.c.handle_async(&port_status(), p.now);
    let got = p.take();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].msg_type, got[0].body[6]), (10, 0));
    p.c.set_role(ControllerRole::Master);
    p.c.handle_async(&packet_in(0, 10), p.now);
    assert!(p.take().is_empty());
    // Nothing before the handshake.
    let mut q = Peer::new(settings());
    q.c.handle_async(&port_status(), q.now);
    assert!(q.take().is_empty());
}

// ---- budget and backpressure ------------------------------------------------------

#[test]
fn a_peer_that_does_not_read_stops_being_read_and_loses_no_reply() {
    let mut s = settings();
    s.tx_budget = 256 * 1024;
    let mut p = Peer::up(s);
    p.reads = false;
    let echo = raw(4, 2, 0, &vec![0x5a; 65_000]);
    let mut sent = 0u32;
    // The shell reads only while the core wants input.
    for _ in 0..100 {
        if !p.c.wants_input() {
            break;
        }
        p.send(&echo);
        sent += 1;
    }
    assert!(!p.c.wants_input(), "reading stops at the budget");
    assert!(sent < 10, "{sent} echoes read before backpressure");
    assert!(p.c.tx_queued() <= 256 * 1024 + 2 * 65_100);
    assert_eq!(p.c.counters().snapshot().input_paused, 1);
    // Asynchronous messages are dropped, each kind counted on its own.
    p.c.handle_async(&packet_in(1, 100), p.now);
    p.c.handle_async(&port_status(), p.now);
    let snap = p.c.counters().snapshot();
    assert_eq!((snap.packet_ins_dropped, snap.port_status_dropped), (1, 1));
    assert_eq!(snap.flow_removed_dropped, 0);
    // Drops before the connection sees the event (the connection
    // manager's fan-out into a full mailbox) land in the same counters.
    p.c.counters().async_dropped(&port_status());
    p.c.counters().async_dropped(&packet_in(0, 10));
    let snap = p.c.counters().snapshot();
    assert_eq!((snap.packet_ins_dropped, snap.port_status_dropped), (2, 2));
    assert_eq!(snap.flow_removed_dropped, 0);
    // The peer starts reading: every reply arrives, and input reopens.
    p.reads = true;
    p.ack_all();
    assert!(p.c.wants_input());
    let got = p.take();
    assert_eq!(
        got.iter().filter(|g| g.msg_type == 3).count(),
        sent as usize
    );
    assert_eq!(p.c.tx_queued(), 0);
}

#[test]
fn a_stuck_peer_is_disconnected_and_a_slow_one_is_not() {
    let mut p = Peer::up(settings());
    p.reads = false;
    let echo = raw(4, 2, 0, &vec![0; 65_000]);
    while p.c.wants_input() {
        p.send(&echo);
    }
    // Slow: one segment drained every 20 s (and more requests whenever we
    // read again) keeps it alive, over budget, for a minute.
    for _ in 0..3 {
        p.advance(Duration::from_secs(20));
        assert!(p.closed().is_none());
        if let Some(n) = p.unacked.pop_front() {
            p.c.handle_transmitted(n, p.now);
            p.collect();
        }
        while p.c.wants_input() {
            p.send(&echo);
        }
    }
    // Stuck: nothing for 30 s.
    p.advance(Duration::from_secs(30));
    assert_eq!(p.closed(), Some(&CloseReason::Stuck));
    // No probe judged it while we were not reading.
    assert_eq!(p.c.counters().snapshot().probes_sent, 0);
}

fn stats_switch(n: u32) -> Ofproto {
    let mut o = Ofproto::new(DatapathId(1), "br0");
    for i in 0..n {
        let m = Match {
            fields: vec![
                OxmField::exact(OxmId::EthType, 0x800),
                OxmField::exact(OxmId::Ipv4Src, i as u128),
            ],
        };
        let fm = FlowMod {
            match_: m,
            priority: 100,
            instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                port: PortNo(1),
                max_len: 0,
            }])],
            ..match flow_mod(0) {
                Message::FlowMod(f) => f,
                _ => unreachable!(),
            }
        };
        o.flow_mod(&fm, 0).expect("flow mod");
    }
    o
}

#[test]
fn a_flow_dump_streams_within_the_budget_and_keeps_order() {
    let o = stats_switch(6000);
    let req = FlowStatsRequest {
        table_id: TableId::ALL,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        cookie: Cookie(0),
        cookie_mask: 0,
        match_: Match::default(),
    };
    let mut s = settings();
    s.tx_budget = 128 * 1024;
    let mut p = Peer::up(s);
    p.reads = false;
    let mut bytes = enc(
        1,
        Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MpRequestBody::Flow(req.clone()),
        }),
    );
    bytes.extend(raw(4, 2, 2, &[]));
    bytes.extend(enc(3, Message::BarrierRequest));
    p.send(&bytes);
    let (t, msgs) = p.batch().expect("batch");
    assert_eq!(msgs.len(), 1, "a multipart request ends its batch");
    let job = FlowStatsJob::new(1, 0, o.flow_stats_rules(&req).expect("rules"));
    p.c.handle_replies(t, Some(vec![OfReply::FlowStats(job)]), p.now);
    p.collect();
    let mut peak = p.c.tx_queued();
    let mut got = Vec::new();
    for _ in 0..10_000 {
        peak = peak.max(p.c.tx_queued());
        // Drain one segment at a time, fire due work, answer the bridge.
        if let Some(n) = p.unacked.pop_front() {
            p.c.handle_transmitted(n, p.now);
        }
        p.advance(Duration::ZERO);
        p.collect();
        p.bridge();
        got.extend(p.take());
        if got.iter().any(|g| g.msg_type == 21) {
            break;
        }
    }
    assert!(peak <= 128 * 1024 + 2 * 65_600, "peak {peak}");
    let parts = got.iter().filter(|g| g.msg_type == 19).count();
    assert!(parts > 4, "{parts} parts");
    let last_part = got.iter().rposition(|g| g.msg_type == 19).expect("parts");
    let echo = got.iter().position(|g| g.msg_type == 3).expect("echo");
    let barrier = got.iter().position(|g| g.msg_type == 21).expect("barrier");
    assert!(
        last_part < echo && echo < barrier,
        "order: {last_part} {echo} {barrier}"
    );
}

#[test]
fn memory_is_returned_when_buffers_empty_or_the_connection_closes() {
    let mut p = Peer::up(settings());
    // A partial frame is kept; a whole one leaves nothing behind.
    p.send(&raw(4, 2, 1, &vec![0; 30_000])[..20_000]);
    assert_eq!(p.c.rx_len(), 20_000);
    p.send(&raw(4, 2, 1, &vec![0; 30_000])[20_000..]);
    assert_eq!(p.c.rx_len(), 0);
    assert!(p.c.rx.capacity() <= RX_KEEP);
    p.reads = false;
    let echo = raw(4, 2, 0, &vec![0; 65_000]);
    while p.c.wants_input() {
        p.send(&echo);
    }
    p.c.close(CloseReason::Requested("test"));
    p.collect();
    // What was never taken is freed; what the writer holds is still counted.
    let in_flight: usize = p.unacked.iter().sum();
    assert!(p.c.tx_queued() >= in_flight);
    assert!(p.c.rx.capacity() == 0);
}

#[test]
fn packet_ins_are_rate_limited_per_kind() {
    let mut s = settings();
    s.packet_in_limit = Some((100, 10));
    let mut p = Peer::up(s);
    for _ in 0..50 {
        p.c.handle_async(&packet_in(0, 10), p.now);
    }
    // Another kind (action) has its own bucket.
    p.c.handle_async(&packet_in(1, 10), p.now);
    assert_eq!(p.take().len(), 11);
    assert_eq!(p.c.counters().snapshot().packet_ins_rate_limited, 40);
    // 100 ms later: 10 more table misses may go.
    p.now += Duration::from_millis(100);
    for _ in 0..20 {
        p.c.handle_async(&packet_in(0, 10), p.now);
    }
    assert_eq!(p.take().len(), 10);
    let snap = p.c.counters().snapshot();
    assert_eq!((snap.packet_ins, snap.packet_ins_rate_limited), (21, 50));
    // Port status is never rate limited.
    for _ in 0..20 {
        p.c.handle_async(&port_status(), p.now);
    }
    assert_eq!(p.take().len(), 20);
}

// ---- bundles -------------------------------------------------------------------

/// A connection negotiated in OpenFlow 1.4 (bundles are standard there),
/// without probes (the bundle timeout tests let time pass).
fn up14() -> Peer {
    let mut s = settings();
    s.probe_interval = None;
    let mut p = Peer::new(s);
    p.send(&raw(5, 0, 1, &[]));
    assert_eq!(p.c.version(), Some(Version::V1_4));
    p.events.clear();
    p
}

/// Wire length of `body` as an OpenFlow 1.4 message.
fn len14(body: Message) -> usize {
    openflow::encode_to_vec_in(Version::V1_4, &OfpMsg { xid: 1, body })
        .expect("encode")
        .len()
}

fn send14(p: &mut Peer, xid: u32, body: Message) {
    let b = openflow::encode_to_vec_in(Version::V1_4, &OfpMsg { xid, body }).expect("encode");
    p.send(&b);
}

fn bctrl(id: u32, t: BundleCtrlType, flags: u16) -> Message {
    Message::BundleControl(BundleCtrl {
        bundle_id: id,
        ctrl_type: t,
        flags,
    })
}

fn badd(id: u32, flags: u16, xid: u32, body: Message) -> Message {
    Message::BundleAdd(BundleAdd {
        bundle_id: id,
        flags,
        message: Box::new(OfpMsg { xid, body }),
    })
}

/// OFPET_BUNDLE_FAILED (17) and a code, as a 1.4 peer reads it.
fn bfc(code: u16) -> Option<(u16, u16)> {
    Some((17, code))
}

#[test]
fn a_bundle_is_built_here_and_committed_by_the_bridge_as_one_batch() {
    use BundleCtrlType as T;
    let mut p = up14();
    send14(&mut p, 1, bctrl(7, T::OpenRequest, BF_ATOMIC));
    let got = p.take();
    assert_eq!((got[0].msg_type, got[0].xid), (33, 1), "OPEN_REPLY");
    send14(&mut p, 2, badd(7, BF_ATOMIC, 2, flow_mod(0)));
    send14(&mut p, 3, badd(7, BF_ATOMIC, 3, flow_mod(1)));
    assert!(p.take().is_empty(), "adds have no reply");
    assert!(
        p.batch().is_none(),
        "nothing reaches the bridge before commit"
    );
    send14(&mut p, 4, bctrl(7, T::CloseRequest, BF_ATOMIC));
    assert_eq!(p.take()[0].xid, 4, "CLOSE_REPLY");
    // An add to a closed bundle fails and forgets it (OVS).
    send14(&mut p, 5, badd(7, BF_ATOMIC, 5, flow_mod(2)));
    assert_eq!(p.take()[0].error(), bfc(4), "BUNDLE_CLOSED");
    send14(&mut p, 6, bctrl(7, T::CommitRequest, BF_ATOMIC));
    assert_eq!(p.take()[0].error(), bfc(2), "BAD_ID: it was forgotten");
    // Again, committed: the bridge gets both messages, marked as a bundle.
    send14(&mut p, 10, badd(8, 0, 10, flow_mod(0)));
    send14(&mut p, 11, badd(8, 0, 11, flow_mod(1)));
    send14(&mut p, 12, bctrl(8, T::CommitRequest, 0));
    let ev = p
        .events
        .iter()
        .position(|e| matches!(e, Event::Requests { .. }))
        .expect("a batch for the bridge");
    let Event::Requests {
        token,
        msgs,
        bundle,
        ..
    } = p.events.remove(ev)
    else {
        unreachable!()
    };
    assert_eq!(
        msgs.iter().map(|(m, _)| m.xid).collect::<Vec<_>>(),
        [10, 11]
    );
    let commit = bundle.expect("marked as a bundle commit");
    assert_eq!((commit.xid, commit.bundle_id), (12, 8));
    // Until the bridge answers, later input waits (replies stay in order).
    send14(&mut p, 13, Message::EchoRequest(vec![]));
    assert!(p.take().is_empty());
    p.c.handle_replies(
        token,
        Some(vec![OfReply::Msg(OfpMsg {
            xid: 12,
            body: bctrl(8, T::CommitReply, 0),
        })]),
        p.now,
    );
    let got = p.take();
    assert_eq!(got.iter().map(|g| g.xid).collect::<Vec<_>>(), [12, 13]);
    assert_eq!(p.c.counters().snapshot().bundles_committed, 1);
    // A bridge that cannot take the batch: one error, for the commit.
    send14(&mut p, 20, badd(9, 0, 20, flow_mod(0)));
    send14(&mut p, 21, bctrl(9, T::CommitRequest, 0));
    let (token, _) = p.batch().expect("batch");
    p.c.handle_replies(token, None, p.now);
    let got = p.take();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].xid, 21);
}

#[test]
fn bundle_errors_are_ovs_s() {
    use BundleCtrlType as T;
    let mut p = up14();
    // A second OPEN of an id: BAD_ID, and the first is forgotten too.
    send14(&mut p, 1, bctrl(1, T::OpenRequest, 0));
    send14(&mut p, 2, bctrl(1, T::OpenRequest, 0));
    let got = p.take();
    assert_eq!(got[1].error(), bfc(2));
    send14(&mut p, 3, bctrl(1, T::DiscardRequest, 0));
    assert_eq!(p.take()[0].error(), bfc(2));
    // Flags must match the bundle's.
    send14(&mut p, 4, bctrl(2, T::OpenRequest, BF_ATOMIC));
    send14(&mut p, 5, badd(2, 0, 5, flow_mod(0)));
    assert_eq!(p.take()[1].error(), bfc(7), "BAD_FLAGS");
    // Only FLOW_MOD, GROUP_MOD, PORT_MOD and PACKET_OUT can be bundled.
    send14(&mut p, 6, badd(3, 0, 6, Message::BarrierRequest));
    assert_eq!(p.take()[0].error(), bfc(10), "MSG_UNSUP");
    // An atomic bundle cannot hold a port change (it cannot be undone):
    // the message and the commit fail, nothing reaches the bridge.
    let pm = Message::PortMod(PortMod {
        port_no: PortNo(1),
        hw_addr: MacAddr([0; 6]),
        config: 0,
        mask: 0,
        advertise: 0,
    });
    send14(&mut p, 7, badd(4, BF_ATOMIC, 7, pm));
    send14(&mut p, 8, bctrl(4, T::CommitRequest, BF_ATOMIC));
    let got = p.take();
    assert_eq!((got[0].xid, got[0].error()), (7, bfc(13)));
    assert_eq!((got[1].xid, got[1].error()), (8, bfc(13)));
    assert!(p.batch().is_none());
    // What needs no tables is checked at add: the add fails alone and the
    // bundle keeps the rest (OVS handle_bundle_add()).
    let mut bad_match = flow_mod(0);
    if let Message::FlowMod(fm) = &mut bad_match {
        fm.match_ = Match {
            fields: vec![OxmField::exact(OxmId::IpProto, 6)],
        };
    }
    send14(&mut p, 30, badd(6, 0, 30, bad_match));
    assert_eq!(p.take()[0].error(), Some((4, 9)), "BAD_MATCH/BAD_PREREQ");
    send14(&mut p, 31, badd(6, 0, 31, flow_mod(255)));
    assert_eq!(
        p.take()[0].error(),
        Some((5, 2)),
        "FLOW_MOD_FAILED/BAD_TABLE_ID"
    );
    send14(&mut p, 32, badd(6, 0, 32, flow_mod(3)));
    send14(&mut p, 33, bctrl(6, T::CommitRequest, 0));
    let (_, msgs) = p.batch().expect("the bundle still commits");
    assert_eq!(msgs.iter().map(|m| m.xid).collect::<Vec<_>>(), [32]);
    let mut p = up14();
    // Replies to a bundle's own requests are BAD_TYPE.
    send14(&mut p, 9, bctrl(5, T::OpenReply, 0));
    assert_eq!(p.take()[0].error(), bfc(6));
    // Bounded: at most MAX_BUNDLES open bundles ...
    for id in 0..MAX_BUNDLES as u32 {
        send14(&mut p, 100 + id, bctrl(1000 + id, T::OpenRequest, 0));
    }
    let got = p.take();
    assert_eq!(got.iter().filter(|g| g.error().is_some()).count(), 0);
    send14(&mut p, 99, bctrl(5000, T::OpenRequest, 0));
    assert_eq!(p.take()[0].error(), bfc(5), "OUT_OF_BUNDLES");
    // ... idle ones expire after BUNDLE_IDLE_TIMEOUT with TIMEOUT errors
    // naming the message that opened each, and the room comes back.
    p.advance(BUNDLE_IDLE_TIMEOUT + Duration::from_millis(1));
    let got = p.take();
    let timeouts: Vec<u32> = got
        .iter()
        .filter(|g| g.error() == bfc(14))
        .map(|g| g.xid)
        .collect();
    assert!(timeouts.len() >= MAX_BUNDLES, "{timeouts:?}");
    assert!(timeouts.contains(&100));
    send14(&mut p, 98, bctrl(5000, T::OpenRequest, 0));
    assert!(p.take()[0].error().is_none());
}

#[test]
fn bundles_are_bounded_in_bytes() {
    let mut p = up14();
    // FLOW_MODs with 32 KB of actions each, until the byte budget refuses.
    let big = |n: u32| {
        let mut f = flow_mod(0);
        if let Message::FlowMod(fm) = &mut f {
            fm.priority = n as u16;
            fm.instructions = vec![Instruction::ApplyActions(vec![
                Action::Output {
                    port: PortNo(1),
                    max_len: 0
                };
                2000
            ])];
        }
        f
    };
    let each = len14(badd(1, 0, 1, big(0)));
    let mut refused = None;
    for n in 0..(MAX_BUNDLE_BYTES / each + 10) as u32 {
        send14(&mut p, n + 1, badd(1, 0, n + 1, big(n)));
        if let Some(g) = p.take().into_iter().find(|g| g.error().is_some()) {
            refused = Some((n, g.error()));
            break;
        }
        assert!(p.c.rx_len() < 1 << 20);
    }
    let (n, e) = refused.expect("the byte budget refused an add");
    assert_eq!(e, bfc(12), "MSG_TOO_MANY");
    assert_eq!(n as usize, MAX_BUNDLE_BYTES / each, "refused at the budget");
    // The bundle was forgotten with its bytes: a new one has room.
    send14(&mut p, 1, badd(2, 0, 1, big(0)));
    assert!(p.take().is_empty());
}

#[test]
fn bundles_are_bounded_over_all_connections_of_a_bridge() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut p = up14();
    let total = p.c.s.bundle_bytes.clone();
    let each = len14(badd(1, 0, 1, flow_mod(0)));
    // The bridge's other connections hold all but room for three adds.
    let others = MAX_BRIDGE_BUNDLE_BYTES - 3 * each;
    total.fetch_add(others, Relaxed);
    let mut refused = None;
    for n in 0..10u32 {
        send14(&mut p, n + 1, badd(1, 0, n + 1, flow_mod(n as u8)));
        if let Some(g) = p.take().into_iter().find(|g| g.error().is_some()) {
            refused = Some((n, g.error()));
            break;
        }
        assert!(
            total.load(Relaxed) > others,
            "the add is counted in the total"
        );
    }
    let (n, e) = refused.expect("the bridge-wide budget refused an add");
    assert_eq!(e, bfc(12), "MSG_TOO_MANY");
    assert!(
        (1..=3).contains(&n),
        "refused after {n} adds, far below this connection's own limit"
    );
    // The refused bundle was forgotten, and its bytes left the total.
    assert_eq!(total.load(Relaxed), others);
    // A connection that goes away gives its share back.
    send14(&mut p, 50, badd(2, 0, 50, flow_mod(0)));
    assert!(p.take().is_empty());
    assert!(total.load(Relaxed) > others);
    drop(p);
    assert_eq!(total.load(Relaxed), others);
}

// ---- flow monitors -----------------------------------------------------------

mod monitors {
    use super::*;
    use crate::ofproto::monitor::{test_flow_mod, watch_all, FlowChanges, MAX_MONITORS};
    use crate::ofproto::request::{Answer, Effects, Requests};
    use crate::ofproto::view::XlateView;
    use crate::openflow::message::{
        FlowMonitorCommand, FlowMonitorRequest, FlowUpdate, FlowUpdateEvent, MpReplyBody,
        FMF_NO_ABBREV, FMF_ONLY_OWN,
    };
    use std::sync::atomic::Ordering::Relaxed;

    /// The bridge's side: real tables and the real request handler.
    struct Sw {
        of: Ofproto,
        view: XlateView,
    }

    impl Sw {
        fn new() -> Sw {
            let mut of = Ofproto::new(DatapathId(1), "t");
            let view = XlateView::new("br0", of.publish(), 10, 1000);
            Sw { of, view }
        }

        /// Applies `msgs` from connection `conn` as the bridge does: the
        /// replies, and the changes event for the connection manager.
        fn apply(&mut self, conn: u64, msgs: Vec<OfpMsg>) -> (Vec<OfReply>, Option<AsyncEvent>) {
            let counters = |_: PortNo| None;
            let mut rq = Requests {
                ofproto: &mut self.of,
                view: &self.view,
                port_counters: &counters,
            };
            let mut fx = Effects {
                monitored: true,
                ..Effects::default()
            };
            for m in msgs {
                rq.handle(m, &[], 0, &mut fx);
            }
            let version = rq.publish();
            let replies = fx
                .answers
                .into_iter()
                .map(|a| match a {
                    Answer::Reply(r) => r,
                    Answer::Barrier(xid) => OfReply::Msg(OfpMsg {
                        xid,
                        body: Message::BarrierReply,
                    }),
                })
                .collect();
            let ev = (!fx.flow_changes.is_empty()).then(|| {
                AsyncEvent::FlowChanges(Arc::new(FlowChanges {
                    conn: Some(conn),
                    version,
                    changes: fx.flow_changes,
                }))
            });
            (replies, ev)
        }

        /// Another connection (id 99) sends `body`; returns its changes.
        fn other(&mut self, body: Message) -> AsyncEvent {
            self.apply(99, vec![OfpMsg { xid: 77, body }])
                .1
                .expect("the request changed rules")
        }

        /// Answers every batch `p` has for the bridge; returns the changes.
        fn serve(&mut self, p: &mut Peer) -> Vec<AsyncEvent> {
            let mut evs = Vec::new();
            while let Some((token, msgs)) = p.batch() {
                let (replies, ev) = self.apply(p.c.s.conn_id, msgs);
                p.c.handle_replies(token, Some(replies), p.now);
                p.collect();
                evs.extend(ev);
            }
            evs
        }
    }

    fn ip_rule(cmd: FlowModCommand, prio: u16, out: u32) -> Message {
        let m = Match {
            fields: vec![OxmField::exact(OxmId::EthType, 0x800)],
        };
        Message::FlowMod(test_flow_mod(cmd, 0, prio, m, out))
    }

    /// `watch_all` as `ovs-ofctl` sends it in `version` (Nicira/ONF "own"
    /// decodes as NO_ABBREV).
    fn watch(version: u8, id: u32) -> FlowMonitorRequest {
        let mut m = watch_all(id);
        if version < 5 {
            m.flags = (m.flags & !FMF_ONLY_OWN) | FMF_NO_ABBREV;
        }
        m
    }

    fn request(reqs: Vec<FlowMonitorRequest>) -> Message {
        Message::MultipartRequest(MultipartRequest {
            flags: 0,
            body: MpRequestBody::FlowMonitor(reqs),
        })
    }

    fn peer(version: u8, budget: usize) -> Peer {
        let mut s = settings();
        s.probe_interval = None;
        s.tx_budget = budget;
        s.conn_id = 1;
        let mut p = Peer::new(s);
        p.send(&raw(version, 0, 1, &[]));
        assert_eq!(p.c.version().map(|v| v.0), Some(version));
        p.events.clear();
        p
    }

    fn send_in(p: &mut Peer, xid: u32, body: Message) {
        let v = p.c.version().expect("up");
        let b = openflow::encode_to_vec_in(v, &OfpMsg { xid, body }).expect("encode");
        p.send(&b);
    }

    /// What the peer received, decoded: `(xid, updates)` per flow-monitor
    /// message (PAUSED/RESUMED messages of Nicira/ONF as those updates).
    fn received(p: &mut Peer) -> Vec<(u32, Vec<FlowUpdate>)> {
        let v = p.c.version().expect("up");
        p.take()
            .into_iter()
            .map(|g| {
                let mut raw = vec![g.version, g.msg_type];
                raw.extend_from_slice(&((8 + g.body.len()) as u16).to_be_bytes());
                raw.extend_from_slice(&g.xid.to_be_bytes());
                raw.extend_from_slice(&g.body);
                let m = openflow::decode_in(v, &raw).expect("decodes");
                match m.body {
                    Message::MultipartReply(r) => match r.body {
                        MpReplyBody::FlowMonitor(u) => (m.xid, u),
                        other => panic!("{other:?}"),
                    },
                    Message::FlowMonitorPaused => (m.xid, vec![FlowUpdate::Paused]),
                    Message::FlowMonitorResumed => (m.xid, vec![FlowUpdate::Resumed]),
                    Message::Error(e) => panic!("error {e:?}"),
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    fn events(ups: &[FlowUpdate]) -> Vec<(FlowUpdateEvent, u16)> {
        ups.iter()
            .filter_map(|u| match u {
                FlowUpdate::Full {
                    event, priority, ..
                } => Some((*event, *priority)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn initial_flows_then_every_change_of_other_connections_in_1_4_and_1_0() {
        use FlowUpdateEvent as E;
        for version in [5u8, 1] {
            let mut sw = Sw::new();
            sw.other(ip_rule(FlowModCommand::Add, 10, 1));
            let mut p = peer(version, 256 * 1024);
            let gauge = p.c.s.monitors.clone();
            send_in(&mut p, 5, request(vec![watch(version, 1)]));
            assert_eq!(gauge.load(Relaxed), 1, "counted before the bridge sees it");
            assert!(sw.serve(&mut p).is_empty());
            let got = received(&mut p);
            // Nicira reports initial flows as ADDED.
            let initial = if version == 5 { E::Initial } else { E::Added };
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].0, 5, "the reply has the request's xid");
            assert_eq!(events(&got[0].1), vec![(initial, 10)]);
            for (body, want) in [
                (ip_rule(FlowModCommand::Add, 20, 1), (E::Added, 20)),
                (
                    ip_rule(FlowModCommand::ModifyStrict, 20, 2),
                    (E::Modified, 20),
                ),
                (
                    ip_rule(FlowModCommand::DeleteStrict, 20, 2),
                    (E::Removed, 20),
                ),
            ] {
                let ev = sw.other(body);
                p.c.handle_async(&ev, p.now);
                let got = received(&mut p);
                assert_eq!(got.len(), 1, "v{version} {want:?}");
                assert_eq!(got[0].0, 0, "updates have xid 0");
                assert_eq!(events(&got[0].1), vec![want]);
            }
            assert_eq!(p.c.counters().flow_updates.load(Relaxed), 4);
            // Cancelled: nothing more.
            if version == 5 {
                let mut del = watch_all(1);
                del.command = FlowMonitorCommand::Delete;
                send_in(&mut p, 6, request(vec![del]));
                sw.serve(&mut p);
                assert_eq!(received(&mut p), vec![(6, vec![])], "an empty reply");
            } else {
                send_in(&mut p, 6, Message::FlowMonitorCancel(1));
                assert!(p.batch().is_none(), "a cancel has no reply");
            }
            assert_eq!(gauge.load(Relaxed), 0);
            let ev = sw.other(ip_rule(FlowModCommand::Add, 30, 1));
            p.c.handle_async(&ev, p.now);
            assert!(received(&mut p).is_empty());
        }
    }

    #[test]
    fn monitor_requests_fail_whole_with_ovs_s_errors() {
        let mut p = peer(5, 256 * 1024);
        let gauge = p.c.s.monitors.clone();
        send_in(&mut p, 1, request(vec![watch_all(1)]));
        Sw::new().serve(&mut p);
        p.take();
        let fmfc = |code| Some((16, code));
        // A duplicate id (after a good entry, which is not kept either).
        send_in(&mut p, 2, request(vec![watch_all(2), watch_all(1)]));
        assert_eq!(p.take()[0].error(), fmfc(1), "MONITOR_EXISTS");
        let mut del = watch_all(9);
        del.command = FlowMonitorCommand::Delete;
        send_in(&mut p, 3, request(vec![del]));
        assert_eq!(p.take()[0].error(), fmfc(3), "UNKNOWN_MONITOR");
        let mut bad = watch_all(3);
        bad.table_id = TableId(TableId::N_TABLES);
        send_in(&mut p, 4, request(vec![bad]));
        assert_eq!(
            p.take()[0].error(),
            Some((1, 9)),
            "BAD_REQUEST/BAD_TABLE_ID"
        );
        let many: Vec<_> = (100..100 + MAX_MONITORS as u32).map(watch_all).collect();
        send_in(&mut p, 5, request(many));
        assert_eq!(
            p.take()[0].error(),
            Some((1, 5)),
            "EPERM beyond MAX_MONITORS"
        );
        assert!(p.batch().is_none());
        assert_eq!((p.c.n_monitors(), gauge.load(Relaxed)), (1, 1));
        // Closing gives the gauge back.
        p.c.handle_eof(None, p.now);
        assert_eq!(gauge.load(Relaxed), 0);
    }

    #[test]
    fn own_changes_are_abbreviated_unless_asked_for_in_full() {
        let mut sw = Sw::new();
        let mut p = peer(5, 256 * 1024);
        let mut m = watch_all(1);
        m.flags &= !FMF_ONLY_OWN;
        send_in(&mut p, 1, request(vec![m]));
        sw.serve(&mut p);
        p.take();
        // Own FLOW_MODs: one ABBREV each, with the request's xid.
        send_in(&mut p, 10, flow_mod(0));
        send_in(&mut p, 11, flow_mod(1));
        for ev in sw.serve(&mut p) {
            p.c.handle_async(&ev, p.now);
        }
        let got: Vec<_> = received(&mut p).into_iter().flat_map(|(_, u)| u).collect();
        assert_eq!(
            got,
            vec![
                FlowUpdate::Abbrev { xid: 10 },
                FlowUpdate::Abbrev { xid: 11 }
            ]
        );
        // Others' changes are in full.
        let ev = sw.other(ip_rule(FlowModCommand::Add, 5, 1));
        p.c.handle_async(&ev, p.now);
        assert_eq!(events(&received(&mut p)[0].1).len(), 1);
        // A monitor asking for own changes in full (Nicira "own" is
        // NO_ABBREV in the model) makes them full.
        let mut own = watch_all(2);
        own.flags = (own.flags & !FMF_ONLY_OWN) | FMF_NO_ABBREV;
        send_in(&mut p, 12, request(vec![own]));
        sw.serve(&mut p);
        p.take();
        send_in(&mut p, 13, flow_mod(2));
        let evs = sw.serve(&mut p);
        p.c.handle_async(&evs[0], p.now);
        let got = received(&mut p);
        assert_eq!(events(&got[0].1), vec![(FlowUpdateEvent::Added, 1)]);
    }

    #[test]
    fn a_monitor_that_stops_reading_pauses_then_resumes_with_the_current_state() {
        use FlowUpdateEvent as E;
        const BUDGET: usize = 8192;
        let mut sw = Sw::new();
        sw.other(ip_rule(FlowModCommand::Add, 1, 1));
        let mut p = peer(5, BUDGET);
        send_in(&mut p, 1, request(vec![watch_all(1)]));
        sw.serve(&mut p);
        assert_eq!(events(&received(&mut p)[0].1), vec![(E::Initial, 1)]);
        // The peer stops reading; others keep adding rules.
        p.reads = false;
        for prio in 100..400 {
            let ev = sw.other(ip_rule(FlowModCommand::Add, prio, 1));
            p.c.handle_async(&ev, p.now);
            p.collect();
            assert!(p.c.tx_queued() <= BUDGET, "bounded: {}", p.c.tx_queued());
        }
        // The rule the peer knew from the start goes away while paused.
        let ev = sw.other(ip_rule(FlowModCommand::DeleteStrict, 1, 1));
        p.c.handle_async(&ev, p.now);
        let c = p.c.counters();
        assert_eq!(c.monitor_paused.load(Relaxed), 1);
        assert_eq!(c.monitor_resumed.load(Relaxed), 0);
        assert!(p.batch().is_none(), "no refresh while the queue is full");
        let before: Vec<_> = received(&mut p).into_iter().flat_map(|(_, u)| u).collect();
        assert_eq!(before.last(), Some(&FlowUpdate::Paused));
        let sent_before: Vec<u16> = events(&before).iter().map(|e| e.1).collect();
        // It reads again: the refresh goes to the bridge, then the kept
        // removal, every current rule and RESUMED.
        p.reads = true;
        p.ack_all();
        assert!(sw.serve(&mut p).is_empty());
        let after: Vec<_> = received(&mut p).into_iter().flat_map(|(_, u)| u).collect();
        assert_eq!(after.last(), Some(&FlowUpdate::Resumed));
        let ev = events(&after);
        assert_eq!(ev[0], (E::Removed, 1));
        assert_eq!(ev.len(), 1 + 300, "the removal and each current rule once");
        for (e, prio) in &ev[1..] {
            let want = if sent_before.contains(prio) {
                E::Modified
            } else {
                E::Added
            };
            assert_eq!(*e, want, "priority {prio}");
        }
        assert_eq!(c.monitor_resumed.load(Relaxed), 1);
        // Updates flow again.
        let ev = sw.other(ip_rule(FlowModCommand::Add, 500, 1));
        p.c.handle_async(&ev, p.now);
        assert_eq!(events(&received(&mut p)[0].1), vec![(E::Added, 500)]);
    }

    #[test]
    fn changes_lost_at_the_mailbox_pause_the_monitors_in_1_3() {
        let mut sw = Sw::new();
        let mut p = peer(4, 256 * 1024);
        send_in(&mut p, 1, request(vec![watch(4, 1)]));
        sw.serve(&mut p);
        p.take();
        let lost = sw.other(ip_rule(FlowModCommand::Add, 5, 1));
        // The connection manager could not deliver it.
        p.c.counters().async_dropped(&lost);
        let ev = sw.other(ip_rule(FlowModCommand::Add, 6, 1));
        p.c.handle_async(&ev, p.now);
        p.collect();
        // ONF PAUSED, then (the queue being empty) the refresh at once.
        assert!(sw.serve(&mut p).is_empty());
        let got = received(&mut p);
        assert_eq!(got[0].1, vec![FlowUpdate::Paused]);
        let ups: Vec<_> = got[1..].iter().flat_map(|(_, u)| u.clone()).collect();
        let mut ev = events(&ups);
        ev.sort_by_key(|e| e.1);
        assert_eq!(
            ev,
            vec![(FlowUpdateEvent::Added, 5), (FlowUpdateEvent::Added, 6)]
        );
        assert_eq!(ups.last(), Some(&FlowUpdate::Resumed));
    }
}
