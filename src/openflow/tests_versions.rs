//! Every version at once: per-version round trips of the whole model,
//! Open vSwitch's printer as an oracle on our OF1.0/1.4/1.5 encodings, and
//! `ovs-ofctl` itself (no `-O`, `-O OpenFlow14`, `-O OpenFlow15`) running its
//! everyday commands against a switch played with this codec.

use super::*;
use crate::openflow::codec::{
    decode_any, decode_in, encode_error_in, encode_hello_versions, encode_multipart_reply_split_in,
    encode_to_vec_in,
};
use crate::openflow::framing::negotiate_version;
use crate::openflow::Version;

/// In every version the message can be encoded in, what we encode decodes,
/// and after that one normalising pass (OF1.0 drops what `ofp_match` cannot
/// say, OF1.5 what its buckets do not carry) encoding and decoding are a
/// fixed point; in OF1.3 and OF1.4 (whose layouts lose nothing the model
/// holds) decoding gives the message itself back.
fn check_versions(msg: &OfpMsg) {
    for v in Version::SUPPORTED {
        let Ok(first) = encode_to_vec_in(v, msg) else {
            continue;
        };
        assert_eq!(first[0], v.0);
        let back = decode_in(v, &first).unwrap_or_else(|e| panic!("{v}: {e} for {msg:?}"));
        let bytes = encode_to_vec_in(v, &back).unwrap();
        let back2 = decode_in(v, &bytes).unwrap();
        assert_eq!(back2, back, "{v}: normalised message must be a fixed point");
        let again = encode_to_vec_in(v, &back2).unwrap();
        assert_eq!(again, bytes, "{v}: re-encoding {back:?}");
        let (dv, any) = decode_any(&bytes).unwrap();
        assert_eq!((dv, &any), (v, &back));
        let onf_monitor_reply = v == Version::V1_3
            && matches!(
                &msg.body,
                Message::MultipartReply(MultipartReply {
                    body: MpReplyBody::FlowMonitor(_),
                    ..
                })
            );
        let lossless = matches!(v, Version::V1_3 | Version::V1_4)
            && !onf_monitor_reply
            && !matches!(msg.body, Message::SetAsync(_) | Message::SetAsyncUpdate(_))
            && !matches!(&msg.body, Message::FeaturesReply(f) if !f.ports.is_empty());
        if lossless {
            assert_eq!(&back, msg, "{v}");
        }
    }
}

fn arb_bundle_and_monitor() -> impl Strategy<Value = Message> {
    let ctrl = (
        any::<u32>(),
        prop_oneof![
            Just(BundleCtrlType::OpenRequest),
            Just(BundleCtrlType::CloseReply),
            Just(BundleCtrlType::CommitRequest),
            Just(BundleCtrlType::DiscardReply),
        ],
        0u16..4,
    )
        .prop_map(|(bundle_id, ctrl_type, flags)| {
            Message::BundleControl(BundleCtrl {
                bundle_id,
                ctrl_type,
                flags,
            })
        });
    let add = (any::<u32>(), 0u16..4, arb_flow_mod()).prop_map(|(bundle_id, flags, fm)| {
        Message::BundleAdd(BundleAdd {
            bundle_id,
            flags,
            message: Box::new(OfpMsg {
                xid: 0x77,
                body: Message::FlowMod(fm),
            }),
        })
    });
    let req = (
        any::<u32>(),
        arb_port(),
        1u16..128,
        any::<u8>(),
        arb_match(),
    )
        .prop_map(|(monitor_id, out_port, flags, t, match_)| {
            request(MpRequestBody::FlowMonitor(vec![FlowMonitorRequest {
                monitor_id,
                out_port,
                out_group: GroupId::ANY,
                flags,
                table_id: TableId(t),
                command: FlowMonitorCommand::Add,
                match_,
            }]))
        });
    let upd = (arb_match(), arb_instructions(), any::<u16>(), any::<u32>()).prop_map(
        |(match_, instructions, priority, xid)| {
            reply(MpReplyBody::FlowMonitor(vec![
                FlowUpdate::Full {
                    event: FlowUpdateEvent::Modified,
                    table_id: TableId(1),
                    reason: 0,
                    idle_timeout: 1,
                    hard_timeout: 2,
                    priority,
                    cookie: Cookie(3),
                    match_,
                    instructions,
                },
                FlowUpdate::Abbrev { xid },
            ]))
        },
    );
    prop_oneof![
        ctrl,
        add,
        req,
        upd,
        any::<u32>().prop_map(Message::FlowMonitorCancel),
        Just(Message::FlowMonitorPaused),
        Just(Message::FlowMonitorResumed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_message_round_trips_in_every_version(msg in arb_msg()) {
        check_versions(&msg);
    }

    #[test]
    fn bundles_and_monitors_round_trip_in_every_version(
        body in arb_bundle_and_monitor(),
        xid in any::<u32>(),
    ) {
        let body = match body {
            // The inner message carries the outer xid.
            Message::BundleAdd(mut a) => {
                a.message.xid = xid;
                Message::BundleAdd(a)
            }
            b => b,
        };
        let msg = OfpMsg { xid, body };
        check_versions(&msg);
        // Each form exists in at least one version.
        prop_assert!(Version::SUPPORTED
            .iter()
            .any(|&v| encode_to_vec_in(v, &msg).is_ok()));
    }

    #[test]
    fn arbitrary_bytes_never_panic_in_any_version(
        mut raw in bytes(300),
        version in prop_oneof![Just(1u8), Just(5u8), Just(6u8)],
        t in 0u8..40,
    ) {
        if raw.len() >= 8 {
            raw[0] = version;
            raw[1] = t;
            let len = raw.len() as u16;
            raw[2..4].copy_from_slice(&len.to_be_bytes());
        }
        let v = Version(version);
        if let Ok(m) = decode_in(v, &raw) {
            if let Ok(b) = encode_to_vec_in(v, &m) {
                let once = decode_in(v, &b).unwrap();
                prop_assert_eq!(encode_to_vec_in(v, &once).unwrap(), b);
            }
        }
    }
}

#[test]
fn version_mismatch_and_unknown_versions_are_fatal() {
    let m = OfpMsg {
        xid: 3,
        body: Message::BarrierRequest,
    };
    let b = encode_to_vec_in(Version::V1_0, &m).unwrap();
    assert_eq!(b, [1, 18, 0, 8, 0, 0, 0, 3]);
    let e = decode_in(Version::V1_3, &b).unwrap_err();
    assert_eq!((e.error, e.fatal), (OfpError::BadVersion, true));
    assert_eq!(decode_in(Version::V1_0, &b).unwrap(), m);
    // OF1.1 is not spoken.
    let e = decode_any(&[2, 20, 0, 8, 0, 0, 0, 3]).unwrap_err();
    assert_eq!((e.error, e.fatal), (OfpError::BadVersion, true));
    // ... but its HELLO decodes, for negotiation.
    assert!(decode_any(&[2, 0, 0, 8, 0, 0, 0, 3]).is_ok());
}

#[test]
fn hello_advertises_every_version_and_negotiates() {
    let mut h = Vec::new();
    encode_hello_versions(5, &mut h);
    assert_eq!(h, [6, 0, 0, 16, 0, 0, 0, 5, 0, 1, 0, 8, 0, 0, 0, 0x72]);
    let Message::Hello { versions } = decode_any(&h).unwrap().1.body else {
        panic!()
    };
    assert_eq!(negotiate_version(6, &versions), Ok(Version::V1_5));
    if let Some(t) = ovs_print(&h) {
        assert!(t.contains("version bitmap: 0x01, 0x04, 0x05, 0x06"), "{t}");
    }
}

#[test]
fn errors_are_encoded_per_version() {
    let e10 = encode_error_in(Version::V1_0, 9, OfpError::IsSlave, &[0xaa; 4]);
    assert_eq!(&e10[..12], &[1, 1, 0, 16, 0, 0, 0, 9, 0, 1, 0, 5]);
    let e = encode_error_in(Version::V1_0, 9, OfpError::BadPrereq, &[]);
    assert_eq!(
        e,
        [1, 1, 0, 20, 0, 0, 0, 9, 0xb0, 0xc2, 0, 0, 0, 0, 0x23, 0x20, 0, 1, 1, 4]
    );
    let e = encode_error_in(Version::V1_3, 9, OfpError::BundleBadId, &[]);
    assert_eq!(
        e,
        [4, 1, 0, 16, 0, 0, 0, 9, 0xff, 0xff, 0x08, 0xfe, 0x4f, 0x4e, 0x46, 0x00]
    );
    let e = encode_error_in(Version::V1_5, 9, OfpError::BundleBadId, &[]);
    assert_eq!(e, [6, 1, 0, 12, 0, 0, 0, 9, 0, 17, 0, 2]);
    for (v, err, name) in [
        // OF1.0 has one code for both; OVS prints its first name.
        (Version::V1_0, OfpError::IsSlave, "OFPBRC_EPERM"),
        (Version::V1_0, OfpError::TableFull, "OFPFMFC_TABLE_FULL"),
        (Version::V1_0, OfpError::BadPrereq, "OFPBMC_BAD_PREREQ"),
        (Version::V1_0, OfpError::BadBand, "NXBRC_UNENCODABLE_ERROR"),
        (Version::V1_3, OfpError::BundleBadId, "OFPBFC_BAD_ID"),
        (Version::V1_4, OfpError::BadPropertyLen, "OFPBPC_BAD_LEN"),
        (Version::V1_5, OfpError::IsSlave, "OFPBRC_IS_SECONDARY"),
    ] {
        let b = encode_error_in(v, 1, err, &[]);
        if let Some(t) = ovs_print_any(&b) {
            assert!(t.contains(name), "{v} {err:?}: {t}");
        }
    }
}

/// `ovs-ofctl ofp-print` on any message (errors about the data of an ERROR
/// are expected when it carries none, so only the first line is checked for
/// decode failures).
fn ovs_print_any(bytes: &[u8]) -> Option<String> {
    if !ovs_available() {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let out = std::process::Command::new(OVS_OFCTL)
        .args(["ofp-print", &hex])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    Some(text)
}

fn sample_flow10() -> FlowStats {
    FlowStats {
        table_id: TableId(0),
        duration_sec: 10,
        duration_nsec: 500,
        priority: 100,
        idle_timeout: 5,
        hard_timeout: 7,
        flags: 0,
        cookie: Cookie(0xabc),
        packet_count: 7,
        byte_count: 700,
        match_: Match {
            fields: vec![
                OxmField::in_port(PortNo(3)),
                OxmField::exact(OxmId::EthType, 0x800),
                OxmField::exact(OxmId::IpProto, 6),
                OxmField {
                    id: OxmId::Ipv4Src,
                    value: 0x0a00_0000,
                    mask: Some(0xff00_0000),
                },
                OxmField::exact(OxmId::TcpDst, 80),
            ],
        },
        instructions: vec![Instruction::ApplyActions(vec![
            Action::SetField(OxmField::exact(OxmId::VlanVid, 0x1000 | 10)),
            Action::SetField(OxmField::exact(OxmId::EthDst, 0x0200_0000_0001)),
            Action::SetField(OxmField::exact(OxmId::TcpDst, 8080)),
            Action::DecNwTtl,
            Action::SetQueue(3),
            Action::Output {
                port: PortNo(2),
                max_len: 0,
            },
            Action::Output {
                port: PortNo::CONTROLLER,
                max_len: 128,
            },
        ])],
    }
}

/// Messages of every kind, checked by Open vSwitch's printer in `v`.
fn samples(v: Version) -> Vec<(Message, Vec<&'static str>)> {
    let flow = if v == Version::V1_0 {
        sample_flow10()
    } else {
        sample_flow_stats()
    };
    let ports = vec![sample_port(1), sample_port(2)];
    let mut s = vec![
        (
            Message::FeaturesReply(SwitchFeatures {
                datapath_id: DatapathId(0x1234),
                n_buffers: 0,
                n_tables: 254,
                auxiliary_id: 0,
                capabilities: 0x7,
                ports: if v == Version::V1_0 {
                    ports.clone()
                } else {
                    vec![]
                },
            }),
            vec!["OFPT_FEATURES_REPLY", "dpid:0000000000001234"],
        ),
        (
            Message::PortStatus(PortStatus {
                reason: 2,
                desc: sample_port(1),
            }),
            vec![
                "OFPT_PORT_STATUS",
                "MOD: 1(veth1)",
                "addr:02:00:00:00:00:01",
            ],
        ),
        (
            Message::FlowRemoved(FlowRemoved {
                cookie: Cookie(5),
                priority: 9,
                reason: 0,
                table_id: TableId(0),
                duration_sec: 3,
                duration_nsec: 0,
                idle_timeout: 60,
                hard_timeout: 0,
                packet_count: 4,
                byte_count: 400,
                match_: flow.match_.clone(),
            }),
            vec!["OFPT_FLOW_REMOVED", "idle", "pkts4 bytes400"],
        ),
        (
            Message::PacketIn(PacketIn {
                buffer_id: NO_BUFFER,
                total_len: 60,
                reason: 0,
                table_id: TableId(0),
                cookie: Cookie(u64::MAX),
                match_: Match {
                    fields: vec![OxmField::in_port(PortNo(1))],
                },
                data: vec![0xff; 60],
            }),
            vec!["OFPT_PACKET_IN", "in_port=1"],
        ),
        (
            Message::PacketOut(PacketOut {
                buffer_id: NO_BUFFER,
                in_port: PortNo::CONTROLLER,
                actions: vec![Action::Output {
                    port: PortNo(2),
                    max_len: 0,
                }],
                data: vec![0xff; 60],
            }),
            vec!["OFPT_PACKET_OUT", "in_port=CONTROLLER", "actions=output:2"],
        ),
        (
            Message::FlowMod(FlowMod {
                cookie: Cookie(1),
                cookie_mask: 0,
                table_id: TableId(0),
                command: FlowModCommand::Add,
                idle_timeout: 0,
                hard_timeout: 0,
                priority: 100,
                buffer_id: NO_BUFFER,
                out_port: PortNo::ANY,
                out_group: GroupId::ANY,
                flags: FF_SEND_FLOW_REM,
                match_: flow.match_.clone(),
                instructions: flow.instructions.clone(),
            }),
            vec!["OFPT_FLOW_MOD", "ADD", "tcp", "tp_dst=80"],
        ),
        (
            Message::PortMod(PortMod {
                port_no: PortNo(1),
                hw_addr: MacAddr([2, 0, 0, 0, 0, 1]),
                config: 1,
                mask: 1,
                advertise: 0,
            }),
            vec!["OFPT_PORT_MOD", "port: 1"],
        ),
        (
            reply(MpReplyBody::Flow(vec![flow.clone(), flow])),
            vec!["priority=100", "n_packets=7", "n_bytes=700"],
        ),
        (
            reply(MpReplyBody::Aggregate(AggregateStats {
                packet_count: 1,
                byte_count: 2,
                flow_count: 3,
            })),
            vec!["packet_count=1", "byte_count=2", "flow_count=3"],
        ),
        (
            reply(MpReplyBody::Table(vec![TableStats {
                table_id: TableId(0),
                active_count: 4,
                lookup_count: 10,
                matched_count: 8,
            }])),
            vec!["active=4", "lookup=10", "matched=8"],
        ),
        (
            reply(MpReplyBody::PortStats(vec![PortStats {
                port_no: PortNo(1),
                rx_packets: 11,
                tx_bytes: 22,
                collisions: 3,
                ..PortStats::default()
            }])),
            vec!["port  1: rx pkts=11", "bytes=22", "coll=3"],
        ),
        (
            reply(MpReplyBody::GroupDesc(vec![GroupDesc {
                group_type: GroupType::Select,
                group_id: GroupId(1),
                buckets: vec![Bucket {
                    weight: 5,
                    watch_port: PortNo::ANY,
                    watch_group: GroupId::ANY,
                    actions: vec![Action::Output {
                        port: PortNo(1),
                        max_len: 0,
                    }],
                }],
            }])),
            vec!["group_id=1,type=select", "weight:5", "output:1"],
        ),
        (
            request(MpRequestBody::Flow(FlowStatsRequest {
                table_id: TableId::ALL,
                out_port: PortNo::ANY,
                out_group: GroupId::ANY,
                cookie: Cookie(0),
                cookie_mask: 0,
                match_: Match::default(),
            })),
            vec!["request"],
        ),
        (
            Message::Error(ErrorMsg {
                err_type: 1,
                code: 1,
                data: vec![v.0, 2, 0, 8, 0, 0, 0, 1],
            }),
            vec!["OFPT_ERROR", "OFPBRC_BAD_TYPE"],
        ),
    ];
    if v != Version::V1_0 {
        s.push((
            reply(MpReplyBody::PortDesc(ports)),
            vec![
                "1(veth1): addr:02:00:00:00:00:01",
                "2(veth2)",
                "speed: 10000 Mbps now",
            ],
        ));
        s.push((
            Message::RoleStatus(RoleStatus {
                role: ControllerRole::Slave,
                reason: 0,
                generation_id: 7,
            }),
            vec!["ROLE_STATUS", "role=", "generation_id=7"],
        ));
        s.push((
            Message::GetAsyncReply(AsyncConfig::default()),
            vec!["GET_ASYNC_REPLY", "PACKET_IN:", "no_match"],
        ));
    }
    if v >= Version::V1_4 {
        s.push((
            Message::SetAsyncUpdate(AsyncUpdate {
                port_status_mask: [Some(7), None],
                ..AsyncUpdate::default()
            }),
            vec!["OFPT_SET_ASYNC"],
        ));
    }
    s
}

#[test]
fn ovs_accepts_our_encodings_in_every_version() {
    for v in Version::SUPPORTED {
        for (body, needles) in samples(v) {
            let msg = OfpMsg { xid: 0x42, body };
            let bytes = encode_to_vec_in(v, &msg).unwrap_or_else(|e| panic!("{v}: {e}"));
            check_versions(&msg);
            let Some(text) = ovs_print(&bytes) else {
                return;
            };
            for n in needles {
                assert!(text.contains(n), "{v}: expected {n:?} in:\n{text}");
            }
        }
    }
}

#[test]
fn of10_match_and_actions_map_onto_the_model() {
    let f = sample_flow10();
    let oxms = super::super::encode_oxms(&f.match_);
    let mut w = MultipartWriter::flow_stats_in(Version::V1_0, 9);
    w.push_flow_stats(&FlowStatsRef::of(&f, &oxms)).unwrap();
    // An action OF1.0 cannot express (push_vlan) is refused.
    let ipv6 = FlowStats {
        match_: Match {
            fields: vec![
                OxmField::exact(OxmId::EthType, 0x86dd),
                OxmField::exact(OxmId::Ipv6Src, 1),
            ],
        },
        instructions: vec![Instruction::ApplyActions(vec![Action::PushVlan(0x8100)])],
        ..f.clone()
    };
    let oxms6 = super::super::encode_oxms(&ipv6.match_);
    assert!(matches!(
        w.push_flow_stats(&FlowStatsRef::of(&ipv6, &oxms6)),
        Err(EncodeError::Unsupported { .. })
    ));
    let msgs = w.finish();
    assert_eq!(msgs.len(), 1);
    let back = decode_in(Version::V1_0, &msgs[0]).unwrap();
    let Message::MultipartReply(MultipartReply {
        body: MpReplyBody::Flow(v),
        ..
    }) = back.body
    else {
        panic!("{back:?}")
    };
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].match_, f.match_);
    assert_eq!(v[0].instructions, f.instructions);
    // Write-metadata and goto-table travel as Nicira actions (as OVS writes
    // them in OF1.0); the action set and meters have no OF1.0 form and are
    // left out of flow stats, as OVS leaves them out.
    let one = |pipeline: Vec<Instruction>, shown: &[&str]| {
        let mut with_meter = vec![Instruction::Meter(MeterId(1))];
        with_meter.extend(pipeline.clone());
        with_meter.push(Instruction::ClearActions);
        let g = FlowStats {
            instructions: with_meter,
            ..f.clone()
        };
        let mut w = MultipartWriter::flow_stats_in(Version::V1_0, 9);
        w.push_flow_stats(&FlowStatsRef::of(&g, &oxms)).unwrap();
        let b = w.finish().remove(0);
        let Message::MultipartReply(MultipartReply {
            body: MpReplyBody::Flow(v),
            ..
        }) = decode_in(Version::V1_0, &b).unwrap().body
        else {
            panic!()
        };
        assert_eq!(v[0].instructions, pipeline);
        if let Some(t) = ovs_print(&b) {
            for n in shown {
                assert!(t.contains(n), "{n} in {t}");
            }
        }
        g
    };
    one(
        vec![
            Instruction::ApplyActions(vec![Action::Group(GroupId(4))]),
            Instruction::GotoTable(TableId(3)),
        ],
        &["group:4", "resubmit(,3)"],
    );
    let g = one(
        vec![
            Instruction::ApplyActions(vec![Action::DecNwTtl]),
            Instruction::WriteMetadata {
                value: 5,
                mask: 0xff,
            },
        ],
        &["dec_ttl", "write_metadata:0x5/0xff"],
    );
    let both = FlowStats {
        instructions: vec![
            Instruction::WriteMetadata { value: 1, mask: 1 },
            Instruction::GotoTable(TableId(1)),
        ],
        ..f.clone()
    };
    let mut w = MultipartWriter::flow_stats_in(Version::V1_0, 9);
    assert!(w.push_flow_stats(&FlowStatsRef::of(&both, &oxms)).is_err());
    // A flow-mod must not lose them: refused instead.
    let fm = FlowMod {
        cookie: Cookie(0),
        cookie_mask: 0,
        table_id: TableId(0),
        command: FlowModCommand::Add,
        idle_timeout: 0,
        hard_timeout: 0,
        priority: 1,
        buffer_id: NO_BUFFER,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags: 0,
        match_: Match::default(),
        instructions: g.instructions.clone(),
    };
    assert!(encode_to_vec_in(
        Version::V1_0,
        &OfpMsg {
            xid: 1,
            body: Message::FlowMod(fm)
        }
    )
    .is_err());
    // Reserved ports keep their meaning across the 16/32-bit boundary.
    for (p16, p32) in [
        (1u16, 1u32),
        (0xfeff, 0xfeff),
        (0xff00, 0xffff_ff00),
        (0xfffd, 0xffff_fffd),
        (0xffff, 0xffff_ffff),
    ] {
        assert_eq!(super::super::of10_fields::port_from_wire(p16), PortNo(p32));
        assert_eq!(
            super::super::of10_fields::port_to_wire(PortNo(p32)),
            Some(p16)
        );
    }
    assert_eq!(
        super::super::of10_fields::port_to_wire(PortNo(0x1_0000)),
        None
    );
    // SET_TP_DST without an L4 protocol in the match is inconsistent.
    let po = [
        1u8, 13, 0, 24, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 0, 8, 0, 10, 0, 8, 0, 80,
        0, 0,
    ];
    assert_eq!(
        decode_in(Version::V1_0, &po).unwrap_err().error,
        OfpError::MatchInconsistent
    );
    // The split writer works in OF1.0 too.
    let many = MpReplyBody::Flow(vec![f; 2000]);
    let mut out = Vec::new();
    encode_multipart_reply_split_in(Version::V1_0, 4, &many, &mut out).unwrap();
    assert!(out.len() > 1);
    let mut n = 0;
    for (i, m) in out.iter().enumerate() {
        assert!(m.len() <= MAX_MSG_LEN);
        assert_eq!(
            u16::from_be_bytes([m[10], m[11]]) & 1 == 1,
            i + 1 < out.len()
        );
        let Message::MultipartReply(MultipartReply {
            body: MpReplyBody::Flow(v),
            ..
        }) = decode_in(Version::V1_0, m).unwrap().body
        else {
            panic!()
        };
        n += v.len();
    }
    assert_eq!(n, 2000);
}

// ---------------------------------------------------------------------------
// ovs-ofctl against a switch played with this codec
// ---------------------------------------------------------------------------

/// What `ovs-ofctl` printed and what it sent us (decoded, with the version).
struct Session {
    stdout: String,
    got: Vec<(Version, Message)>,
    /// The raw bytes of each message in `got`.
    raw: Vec<Vec<u8>>,
    errors_sent: Vec<(Version, OfpError, Vec<u8>)>,
}

/// The answers of a small switch with two ports, one flow, one group.
fn answer(v: Version, m: &Message) -> Option<Message> {
    let flows = || {
        if v == Version::V1_0 {
            vec![sample_flow10()]
        } else {
            vec![sample_flow_stats()]
        }
    };
    let ports = || vec![sample_port(1), sample_port(2)];
    Some(match m {
        Message::EchoRequest(d) => Message::EchoReply(d.clone()),
        Message::FeaturesRequest => Message::FeaturesReply(SwitchFeatures {
            datapath_id: DatapathId(0xabcd),
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x7,
            ports: ports(),
        }),
        Message::GetConfigRequest => Message::GetConfigReply(SwitchConfig {
            flags: 0,
            miss_send_len: 128,
        }),
        Message::BarrierRequest => Message::BarrierReply,
        Message::BundleControl(c) => Message::BundleControl(BundleCtrl {
            ctrl_type: match c.ctrl_type {
                BundleCtrlType::OpenRequest => BundleCtrlType::OpenReply,
                BundleCtrlType::CloseRequest => BundleCtrlType::CloseReply,
                BundleCtrlType::CommitRequest => BundleCtrlType::CommitReply,
                BundleCtrlType::DiscardRequest => BundleCtrlType::DiscardReply,
                t => t,
            },
            ..*c
        }),
        Message::MultipartRequest(r) => reply(match &r.body {
            MpRequestBody::FlowMonitor(_) => MpReplyBody::FlowMonitor(vec![FlowUpdate::Full {
                event: FlowUpdateEvent::Initial,
                table_id: TableId(0),
                reason: 0,
                idle_timeout: 0,
                hard_timeout: 0,
                priority: 77,
                cookie: Cookie(0),
                match_: Match {
                    fields: vec![OxmField::in_port(PortNo(1))],
                },
                instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                    port: PortNo(2),
                    max_len: 0,
                }])],
            }]),
            MpRequestBody::Desc => MpReplyBody::Desc(DescStats {
                mfr_desc: "rvswitchd".into(),
                hw_desc: "test".into(),
                sw_desc: "test".into(),
                serial_num: "None".into(),
                dp_desc: "test".into(),
            }),
            MpRequestBody::PortDesc => MpReplyBody::PortDesc(ports()),
            MpRequestBody::TableFeatures(_) => {
                MpReplyBody::TableFeatures(vec![sample_table_features(0)])
            }
            MpRequestBody::Table => MpReplyBody::Table(vec![
                TableStats {
                    table_id: TableId(0),
                    active_count: 1,
                    lookup_count: 10,
                    matched_count: 9,
                },
                TableStats {
                    table_id: TableId(1),
                    active_count: 0,
                    lookup_count: 0,
                    matched_count: 0,
                },
            ]),
            MpRequestBody::Flow(_) => MpReplyBody::Flow(flows()),
            MpRequestBody::Aggregate(_) => MpReplyBody::Aggregate(AggregateStats {
                packet_count: 7,
                byte_count: 700,
                flow_count: 1,
            }),
            MpRequestBody::PortStats(_) => MpReplyBody::PortStats(vec![PortStats {
                port_no: PortNo(1),
                rx_packets: 5,
                ..PortStats::default()
            }]),
            MpRequestBody::GroupDesc => MpReplyBody::GroupDesc(vec![GroupDesc {
                group_type: GroupType::All,
                group_id: GroupId(1),
                buckets: vec![Bucket {
                    weight: 0,
                    watch_port: PortNo::ANY,
                    watch_group: GroupId::ANY,
                    actions: vec![Action::Output {
                        port: PortNo(2),
                        max_len: 0,
                    }],
                }],
            }]),
            _ => return None,
        }),
        _ => return None,
    })
}

/// What one connection of a test run shares with the others.
#[derive(Default)]
struct Shared {
    got: Vec<(Version, Message)>,
    raw: Vec<Vec<u8>>,
    errors_sent: Vec<(Version, OfpError, Vec<u8>)>,
    async_msg: Option<Message>,
    async_sent_at: Option<std::time::Instant>,
}

/// Serves one connection: HELLO, negotiation, answers; when the client goes
/// quiet, sends the pending asynchronous message (once, over any connection).
fn serve_conn(mut c: std::os::unix::net::UnixStream, sh: std::sync::Arc<std::sync::Mutex<Shared>>) {
    use std::io::{Read, Write};
    c.set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut hello = Vec::new();
    encode_hello_versions(0, &mut hello);
    if c.write_all(&hello).is_err() {
        return;
    }
    let mut v: Option<Version> = None;
    let mut buf = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let mut chunk = [0u8; 65536];
        match c.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                let mut g = sh.lock().unwrap();
                if let (Some(m), Some(v)) = (g.async_msg.take(), v) {
                    let b = encode_to_vec_in(v, &OfpMsg { xid: 0, body: m }).unwrap();
                    let _ = c.write_all(&b);
                    g.async_sent_at = Some(std::time::Instant::now());
                }
                continue;
            }
            Err(_) => return,
        }
        while let Ok(Some(len)) = frame_len(&buf) {
            if buf.len() < len {
                break;
            }
            let raw: Vec<u8> = buf.drain(..len).collect();
            let Some(ver) = v else {
                let (hv, m) = decode_any(&raw).unwrap();
                let Message::Hello { versions } = m.body else {
                    panic!("expected HELLO, got {m:?}")
                };
                v = Some(negotiate_version(hv.0, &versions).unwrap());
                continue;
            };
            match decode_in(ver, &raw) {
                Ok(m) => {
                    let xid = m.xid;
                    if let Some(body) = answer(ver, &m.body) {
                        let mut msgs = Vec::new();
                        if let Message::MultipartReply(r) = &body {
                            encode_multipart_reply_split_in(ver, xid, &r.body, &mut msgs).unwrap();
                        } else {
                            msgs.push(encode_to_vec_in(ver, &OfpMsg { xid, body }).unwrap());
                        }
                        for b in msgs {
                            let _ = c.write_all(&b);
                        }
                    }
                    let mut g = sh.lock().unwrap();
                    g.got.push((ver, m.body));
                    g.raw.push(raw);
                }
                Err(e) => {
                    let _ = c.write_all(&encode_error_in(ver, e.xid, e.error, &raw));
                    sh.lock().unwrap().errors_sent.push((ver, e.error, raw));
                }
            }
        }
    }
}

/// Runs `ovs-ofctl [-O proto] args[0] unix:SOCK args[1..]` against a switch
/// that answers with [`answer`] in the negotiated version, one thread per
/// connection (`ovs-ofctl` opens a second one while holding the first).
/// With `async_msg`, that message is sent once the client has gone quiet and
/// the client is stopped half a second later (for `monitor`, which never
/// exits by itself).
fn run_ofctl(proto: Option<&str>, args: &[&str], async_msg: Option<Message>) -> Option<Session> {
    use std::os::unix::net::UnixListener;
    if !ovs_available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switch.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("unix:{}", path.display());
    // Line-buffered, so that a monitor stopped with a signal has printed
    // what it received.
    let mut cmd = std::process::Command::new("stdbuf");
    cmd.args(["-oL", OVS_OFCTL]);
    if let Some(p) = proto {
        cmd.args(["-O", p]);
    }
    let n_opts = args.iter().take_while(|a| a.starts_with("--")).count();
    cmd.args(&args[..n_opts])
        .arg(args[n_opts])
        .arg(&target)
        .args(&args[n_opts + 1..]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let is_async = async_msg.is_some();
    let sh = std::sync::Arc::new(std::sync::Mutex::new(Shared {
        async_msg,
        ..Shared::default()
    }));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut threads = Vec::new();
    loop {
        let sent = sh.lock().unwrap().async_sent_at;
        if sent.is_some_and(|t| t.elapsed() > std::time::Duration::from_millis(500)) {
            let _ = child.kill();
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let g = sh.lock().unwrap();
            panic!(
                "ovs-ofctl {proto:?} {args:?} hangs after {:?}, errors {:?}",
                g.got, g.errors_sent
            );
        }
        match listener.accept() {
            Ok((c, _)) => {
                c.set_nonblocking(false).unwrap();
                let sh = sh.clone();
                threads.push(std::thread::spawn(move || serve_conn(c, sh)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    let out = child.wait_with_output().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let mut stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if is_async {
        // `monitor` prints what it receives on stderr.
        stdout.push_str(&stderr);
    }
    if !is_async {
        assert!(
            out.status.success(),
            "ovs-ofctl {proto:?} {args:?} failed: {stderr}\n{stdout}"
        );
    }
    if std::env::var_os("OVS_ORACLE_VERBOSE").is_some() {
        eprintln!("{stderr}");
    }
    let mut g = sh.lock().unwrap();
    Some(Session {
        stdout,
        got: std::mem::take(&mut g.got),
        raw: std::mem::take(&mut g.raw),
        errors_sent: std::mem::take(&mut g.errors_sent),
    })
}

const PROTOS: [(Option<&str>, Version); 4] = [
    (None, Version::V1_0),
    (Some("OpenFlow13"), Version::V1_3),
    (Some("OpenFlow14"), Version::V1_4),
    (Some("OpenFlow15"), Version::V1_5),
];

#[test]
fn ovs_ofctl_runs_its_everyday_commands_in_every_version() {
    let pkt =
        "ffffffffffff02000000000108060001080006040001020000000001c0a80001000000000000c0a80002";
    for (proto, want) in PROTOS {
        let run = |args: &[&str]| run_ofctl(proto, args, None);
        let Some(show) = run(&["show"]) else {
            return;
        };
        assert!(show.got.iter().all(|(v, _)| *v == want), "{proto:?}");
        assert!(
            show.stdout.contains("dpid:000000000000abcd"),
            "{}",
            show.stdout
        );
        assert!(
            show.stdout.contains("1(veth1): addr:02:00:00:00:00:01"),
            "{}",
            show.stdout
        );
        assert!(show.errors_sent.is_empty(), "{:?}", show.errors_sent);

        let dump = run(&["dump-flows"]).unwrap();
        assert!(
            dump.stdout.contains("n_packets=7"),
            "{proto:?}: {}",
            dump.stdout
        );
        // OF1.0: the Nicira flow format is refused, the standard one used.
        if want == Version::V1_0 {
            assert!(dump
                .errors_sent
                .iter()
                .all(|(_, e, _)| *e == OfpError::Eperm));
        } else {
            assert!(dump.errors_sent.is_empty(), "{:?}", dump.errors_sent);
        }

        let add = run(&[
            "add-flow",
            "priority=5,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=mod_nw_tos:8,output:2",
        ])
        .unwrap();
        let fm = add
            .got
            .iter()
            .find_map(|(_, m)| match m {
                Message::FlowMod(f) => Some(f.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{proto:?}: no flow mod in {:?}", add.got));
        assert_eq!(fm.priority, 5);
        assert_eq!(fm.match_.get(OxmId::TcpDst).unwrap().value, 80);
        assert_eq!(
            fm.match_.get(OxmId::Ipv4Src).unwrap().mask,
            Some(0xff00_0000)
        );
        assert_eq!(
            fm.instructions,
            vec![Instruction::ApplyActions(vec![
                Action::SetField(OxmField::exact(OxmId::IpDscp, 2)),
                Action::Output {
                    port: PortNo(2),
                    max_len: 0
                }
            ])],
            "{proto:?}"
        );

        let del = run(&["del-flows"]).unwrap();
        assert!(del.got.iter().any(|(_, m)| matches!(m,
            Message::FlowMod(f) if f.command == FlowModCommand::Delete && f.table_id == TableId::ALL)),
            "{proto:?}: {:?}", del.got);

        let ports = run(&["dump-ports"]).unwrap();
        assert!(
            ports.stdout.contains("rx pkts=5"),
            "{proto:?}: {}",
            ports.stdout
        );

        let tables = run(&["dump-tables"]).unwrap();
        assert!(
            tables.stdout.contains("lookup=10"),
            "{proto:?}: {}",
            tables.stdout
        );

        let groups = run(&["dump-groups"]).unwrap();
        assert!(
            groups.stdout.contains("group_id=1,type=all,bucket="),
            "{proto:?}: {}",
            groups.stdout
        );
        assert!(groups.errors_sent.is_empty(), "{:?}", groups.errors_sent);

        let po = run(&[
            "packet-out",
            &format!("in_port=1 packet={pkt} actions=output:2"),
        ])
        .unwrap();
        let p = po
            .got
            .iter()
            .find_map(|(_, m)| match m {
                Message::PacketOut(p) => Some(p.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{proto:?}: no packet-out in {:?}", po.got));
        assert_eq!(p.in_port, PortNo(1));
        assert_eq!(p.data.len(), pkt.len() / 2);

        let pin = Message::PacketIn(PacketIn {
            buffer_id: NO_BUFFER,
            total_len: (pkt.len() / 2) as u16,
            reason: 0,
            table_id: TableId(0),
            cookie: Cookie(u64::MAX),
            match_: Match {
                fields: vec![OxmField::in_port(PortNo(2))],
            },
            data: (0..pkt.len() / 2)
                .map(|i| u8::from_str_radix(&pkt[2 * i..2 * i + 2], 16).unwrap())
                .collect(),
        });
        let mon = run_ofctl(proto, &["monitor", "65534"], Some(pin)).unwrap();
        assert!(
            mon.stdout.contains("PACKET_IN"),
            "{proto:?}: {} after {:?}",
            mon.stdout,
            mon.got
        );
        assert!(
            mon.stdout.contains("in_port=2"),
            "{proto:?}: {}",
            mon.stdout
        );
        // Nicira packet-in formats are refused; nothing else is.
        assert!(
            mon.errors_sent
                .iter()
                .all(|(_, e, _)| *e == OfpError::Eperm),
            "{:?}",
            mon.errors_sent
        );
    }
}

/// Whether `tshark` is installed (required when `RVSWITCHD_REQUIRE_ALL` is set).
fn tshark_available() -> bool {
    let present = std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        present || std::env::var_os("RVSWITCHD_REQUIRE_ALL").is_none(),
        "tshark is missing and RVSWITCHD_REQUIRE_ALL is set (scripts/install-deps.sh installs it)"
    );
    present
}

/// A capture of every sample message, in every version, each version on its
/// own TCP connection over loopback, decoded by Wireshark's OpenFlow
/// dissectors: nothing may be malformed, and every version must show up.
#[test]
fn tshark_decodes_every_version_without_malformed_messages() {
    use std::io::{Read, Write};
    if !tshark_available() || !ovs_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("of.pcap");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut cap = std::process::Command::new("tshark")
        .args(["-q", "-i", "lo", "-f", &format!("tcp port {port}"), "-w"])
        .arg(&pcap)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the capture runs (tshark says so on stderr).
    let mut err = cap.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !String::from_utf8_lossy(&seen).contains("Capture started") {
        assert_eq!(err.read(&mut byte).unwrap(), 1, "tshark did not start");
        seen.push(byte[0]);
    }
    let server = std::thread::spawn(move || {
        let mut total = 0;
        for _ in Version::SUPPORTED {
            let (mut c, _) = listener.accept().unwrap();
            let mut sink = Vec::new();
            total += c.read_to_end(&mut sink).unwrap();
        }
        total
    });
    let mut sent = 0;
    for v in Version::SUPPORTED {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.set_nodelay(true).unwrap();
        let mut hello = Vec::new();
        encode_hello_versions(1, &mut hello);
        let mut msgs = vec![hello];
        for (body, _) in samples(v) {
            msgs.push(encode_to_vec_in(v, &OfpMsg { xid: 7, body }).unwrap());
        }
        // The offending request echoed: a whole BARRIER_REQUEST (Wireshark
        // dissects the echoed bytes as a message of their own).
        let barrier = encode_to_vec_in(
            v,
            &OfpMsg {
                xid: 8,
                body: Message::BarrierRequest,
            },
        )
        .unwrap();
        msgs.push(encode_error_in(v, 8, OfpError::BadPrereq, &barrier));
        // One message per segment, so that one frame Wireshark gives up on
        // cannot hide the messages after it.
        for m in msgs {
            c.write_all(&m).unwrap();
            sent += m.len();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
    assert_eq!(server.join().unwrap(), sent);
    // Let the last segments reach the capture, then stop it cleanly.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = cap.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    cap.wait().unwrap();
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .args(["-d", &format!("tcp.port=={port},openflow"), "-V"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if std::env::var_os("OVS_ORACLE_VERBOSE").is_some() {
        std::fs::write("/tmp/of-tshark.txt", text.as_bytes()).unwrap();
    }
    // Wireshark 4.0's OpenFlow 1.5 dissector fails on every OXM field (it
    // misreads the field/has-mask byte, fixed in later Wireshark releases),
    // so an OF1.5 message with a match goes wrong right after the first OXM
    // class. Those matches are the same bytes as OF1.3's, which it decodes,
    // and `ovs-ofctl` accepts them (ovs_accepts_our_encodings_in_every_version);
    // any other malformed frame fails the test.
    for frame in text.split("\nFrame ").filter(|f| f.contains("Malformed")) {
        let lines: Vec<&str> = frame.lines().map(str::trim).collect();
        let class = lines
            .iter()
            .position(|l| *l == "Class: OFPXMC_OPENFLOW_BASIC (0x8000)");
        let first_bad = lines.iter().position(|l| l.contains("Malformed"));
        let known_v6_oxm_bug = frame.contains(":openflow_v6]")
            && match (class, first_bad) {
                (Some(c), Some(b)) => {
                    b == c + 1
                        && (lines[b].starts_with("[Malformed Packet")
                            || lines[b]
                                .contains("Trying to fetch an unsigned integer with length 7"))
                }
                _ => false,
            };
        // It also reads OF1.5 group descriptions with OF1.3's bucket layout
        // (Open vSwitch's printer reads ours as OF1.5's).
        let v13_group_layout = frame.contains(":openflow_v6]")
            && (frame.contains("Type: OFPMP_GROUP_DESC (7)")
                || frame.contains("Type: OFPT_GROUP_MOD (15)"));
        assert!(
            known_v6_oxm_bug || v13_group_layout,
            "malformed message:\n{frame}"
        );
    }
    assert!(
        !text.contains("[Expert Info (Error/Protocol"),
        "dissector error:\n{text}"
    );
    for name in [
        "OpenFlow 1.0",
        "OpenFlow 1.3",
        "OpenFlow 1.4",
        "OpenFlow 1.5",
    ] {
        assert!(text.contains(name), "no {name} in the capture");
    }
    for t in [
        "OFPT_FEATURES_REPLY",
        "OFPT_FLOW_MOD",
        "OFPT_PACKET_IN",
        "OFPT_PORT_STATUS",
        "OFPT_ERROR",
    ] {
        assert!(text.contains(t), "no {t} in the capture");
    }
}

/// Every message `ovs-ofctl` sent decodes and re-encodes to its own bytes.
fn assert_reencodes(s: &Session) {
    for ((v, m), raw) in s.got.iter().zip(&s.raw) {
        let msg = decode_in(*v, raw).unwrap();
        assert_eq!(&msg.body, m);
        assert_eq!(&encode_to_vec_in(*v, &msg).unwrap(), raw, "{v}: {m:?}");
    }
}

#[test]
fn ovs_tunnel_fields_round_trip_byte_identically() {
    let flow = "tun_id=5,tun_src=10.0.0.1,tun_dst=10.0.0.2/255.255.255.0,actions=set_field:10.0.0.3->tun_dst,set_field:10.0.0.4->tun_src,set_field:0x7->tun_id,output:1";
    let Some(s) = run_ofctl(Some("OpenFlow13"), &["add-flow", flow], None) else {
        return;
    };
    assert!(s.errors_sent.is_empty(), "{:?}", s.errors_sent);
    assert_reencodes(&s);
    let fm = s
        .got
        .iter()
        .find_map(|(_, m)| match m {
            Message::FlowMod(f) => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(fm.match_.get(OxmId::TunnelId).unwrap().value, 5);
    assert_eq!(fm.match_.get(OxmId::TunIpv4Src).unwrap().value, 0x0a00_0001);
    let dst = fm.match_.get(OxmId::TunIpv4Dst).unwrap();
    assert_eq!((dst.value, dst.mask), (0x0a00_0000, Some(0xffff_ff00)));
    let Instruction::ApplyActions(a) = &fm.instructions[0] else {
        panic!()
    };
    assert_eq!(
        a[..3],
        [
            Action::SetField(OxmField::exact(OxmId::TunIpv4Dst, 0x0a00_0003)),
            Action::SetField(OxmField::exact(OxmId::TunIpv4Src, 0x0a00_0004)),
            Action::SetField(OxmField::exact(OxmId::TunnelId, 7)),
        ]
    );
    // And in flow stats, Open vSwitch prints them back.
    let stats = FlowStats {
        match_: fm.match_.clone(),
        instructions: fm.instructions.clone(),
        ..sample_flow_stats()
    };
    if let Some(t) = ovs_print(
        &encode_to_vec_in(
            Version::V1_3,
            &OfpMsg {
                xid: 1,
                body: reply(MpReplyBody::Flow(vec![stats])),
            },
        )
        .unwrap(),
    ) {
        for n in [
            "tun_id=0x5",
            "tun_src=10.0.0.1",
            "tun_dst=10.0.0.0/24",
            "set_field:10.0.0.3->tun_dst",
            "set_field:0x7->tun_id",
        ] {
            assert!(t.contains(n), "{n} in {t}");
        }
    }
}

#[test]
fn ovs_ofctl_bundles_decode_and_reencode() {
    for proto in ["OpenFlow13", "OpenFlow14", "OpenFlow15"] {
        let Some(s) = run_ofctl(
            Some(proto),
            &["--bundle", "add-flow", "priority=7,ip,actions=output:2"],
            None,
        ) else {
            return;
        };
        assert!(s.errors_sent.is_empty(), "{proto}: {:?}", s.errors_sent);
        assert_reencodes(&s);
        let kinds: Vec<String> = s
            .got
            .iter()
            .filter_map(|(_, m)| match m {
                Message::BundleControl(c) => Some(format!("{:?}", c.ctrl_type)),
                Message::BundleAdd(a) => match &a.message.body {
                    Message::FlowMod(f) if f.priority == 7 => Some("AddFlowMod".into()),
                    other => Some(format!("Add({other:?})")),
                },
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            ["OpenRequest", "AddFlowMod", "CommitRequest"],
            "{proto}"
        );
    }
}

#[test]
fn ovs_ofctl_monitor_watches_in_every_version() {
    for (proto, event) in [
        (None, "event=ADDED"),
        (Some("OpenFlow13"), "event=ADDED"),
        (Some("OpenFlow14"), "event=INITIAL"),
        (Some("OpenFlow15"), "event=INITIAL"),
    ] {
        let Some(s) = run_ofctl(
            proto,
            &["monitor", "watch:in_port=1"],
            Some(Message::BarrierReply),
        ) else {
            return;
        };
        assert_reencodes(&s);
        let req = s
            .got
            .iter()
            .find_map(|(_, m)| match m {
                Message::MultipartRequest(MultipartRequest {
                    body: MpRequestBody::FlowMonitor(r),
                    ..
                }) => Some(r.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{proto:?}: no monitor request in {:?}", s.got));
        assert_eq!(req.len(), 1);
        assert_eq!(req[0].match_.get(OxmId::InPort).unwrap().value, 1);
        assert!(req[0].flags & FMF_ADD != 0);
        assert!(s.stdout.contains(event), "{proto:?}: {}", s.stdout);
        // (OVS's printer shows no priority for updates.)
        assert!(
            s.stdout.contains("in_port=1 actions=output:2"),
            "{proto:?}: {}",
            s.stdout
        );
        // `monitor` first asks for Nicira packet-in formats (VENDOR in 1.0,
        // EXPERIMENTER later): those, and only those, are refused.
        assert!(!s.errors_sent.is_empty(), "{proto:?}");
        assert!(
            s.errors_sent.iter().all(|(_, e, _)| *e == OfpError::Eperm),
            "{proto:?}: {:?}",
            s.errors_sent
        );
    }
}
