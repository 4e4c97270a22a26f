//! Codec tests: round trips over generated messages, robustness against arbitrary
//! bytes, hand-built error cases, golden vectors from the spec's struct layouts
//! and, when `ovs-ofctl` is installed, Open vSwitch's own parser as an oracle.

use super::action::{Action, Instruction};
use super::codec::*;
use super::error::OfpError;
use super::framing::*;
use super::match_codec::check_prerequisites;
use super::message::*;
use super::oxm::{Match, OxmField, OxmId};
use crate::types::{Cookie, DatapathId, GroupId, MacAddr, MeterId, PortNo, TableId};
use proptest::prelude::*;
use proptest::sample::subsequence;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

fn width(id: OxmId) -> u128 {
    let bits = id.value_bits();
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

fn value_for(id: OxmId) -> impl Strategy<Value = u128> {
    let w = width(id);
    any::<u128>().prop_map(move |v| v & w)
}

fn field_for(id: OxmId) -> BoxedStrategy<OxmField> {
    if id.maskable() {
        (value_for(id), proptest::option::of(value_for(id)))
            .prop_map(move |(v, m)| OxmField {
                id,
                value: m.map_or(v, |m| v & m),
                mask: m,
            })
            .boxed()
    } else {
        value_for(id)
            .prop_map(move |v| OxmField::exact(id, v))
            .boxed()
    }
}

fn arb_match() -> impl Strategy<Value = Match> {
    subsequence(OxmId::ALL.to_vec(), 0..8)
        .prop_shuffle()
        .prop_flat_map(|ids| ids.into_iter().map(field_for).collect::<Vec<_>>())
        .prop_map(|fields| Match { fields })
}

fn arb_port() -> impl Strategy<Value = PortNo> {
    prop_oneof![
        (1u32..100).prop_map(PortNo),
        Just(PortNo::CONTROLLER),
        Just(PortNo::ANY),
        any::<u32>().prop_map(PortNo)
    ]
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (arb_port(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(Action::SetMplsTtl),
        Just(Action::DecMplsTtl),
        any::<u16>().prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        any::<u16>().prop_map(Action::PushMpls),
        any::<u16>().prop_map(Action::PopMpls),
        any::<u32>().prop_map(Action::SetQueue),
        any::<u32>().prop_map(|g| Action::Group(GroupId(g))),
        any::<u8>().prop_map(Action::SetNwTtl),
        Just(Action::DecNwTtl),
        proptest::sample::select(OxmId::ALL.to_vec())
            .prop_flat_map(|id| value_for(id).prop_map(move |v| OxmField::exact(id, v)))
            .prop_map(Action::SetField),
        any::<u16>().prop_map(Action::PushPbb),
        Just(Action::PopPbb),
    ]
}

fn arb_actions() -> impl Strategy<Value = Vec<Action>> {
    proptest::collection::vec(arb_action(), 0..5)
}

fn arb_instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(|t| Instruction::GotoTable(TableId(t))),
        (any::<u64>(), any::<u64>())
            .prop_map(|(value, mask)| Instruction::WriteMetadata { value, mask }),
        arb_actions().prop_map(Instruction::WriteActions),
        arb_actions().prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(|m| Instruction::Meter(MeterId(m))),
    ]
}

fn arb_instructions() -> impl Strategy<Value = Vec<Instruction>> {
    proptest::collection::vec(arb_instruction(), 0..4)
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn arb_flow_mod() -> impl Strategy<Value = FlowMod> {
    let cmd = prop_oneof![
        Just(FlowModCommand::Add),
        Just(FlowModCommand::Modify),
        Just(FlowModCommand::ModifyStrict),
        Just(FlowModCommand::Delete),
        Just(FlowModCommand::DeleteStrict),
    ];
    (
        (any::<u64>(), any::<u64>(), any::<u8>(), cmd),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>()),
        (arb_port(), any::<u32>(), any::<u16>()),
        arb_match(),
        arb_instructions(),
    )
        .prop_map(
            |((c, cm, t, command), (idle, hard, prio, buf), (op, og, flags), m, i)| FlowMod {
                cookie: Cookie(c),
                cookie_mask: cm,
                table_id: TableId(t),
                command,
                idle_timeout: idle,
                hard_timeout: hard,
                priority: prio,
                buffer_id: buf,
                out_port: op,
                out_group: GroupId(og),
                flags,
                match_: m,
                instructions: i,
            },
        )
}

fn arb_group_type() -> impl Strategy<Value = GroupType> {
    prop_oneof![
        Just(GroupType::All),
        Just(GroupType::Select),
        Just(GroupType::Indirect),
        Just(GroupType::FastFailover),
    ]
}

fn arb_buckets() -> impl Strategy<Value = Vec<Bucket>> {
    proptest::collection::vec(
        (any::<u16>(), arb_port(), any::<u32>(), arb_actions()).prop_map(|(w, p, g, a)| Bucket {
            weight: w,
            watch_port: p,
            watch_group: GroupId(g),
            actions: a,
        }),
        0..4,
    )
}

fn arb_bands() -> impl Strategy<Value = Vec<MeterBand>> {
    let band = prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(rate, burst_size)| MeterBand::Drop { rate, burst_size }),
        (any::<u32>(), any::<u32>(), any::<u8>()).prop_map(|(rate, burst_size, prec_level)| {
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            }
        }),
        (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(rate, burst_size, experimenter)| {
            MeterBand::Experimenter {
                rate,
                burst_size,
                experimenter,
            }
        }),
    ];
    proptest::collection::vec(band, 0..4)
}

fn arb_mac() -> impl Strategy<Value = MacAddr> {
    any::<[u8; 6]>().prop_map(MacAddr)
}

fn arb_port_desc() -> impl Strategy<Value = PortDesc> {
    (
        arb_port(),
        arb_mac(),
        "[a-z0-9._-]{0,15}",
        any::<[u32; 8]>(),
    )
        .prop_map(|(port_no, hw_addr, name, v)| PortDesc {
            port_no,
            hw_addr,
            name,
            config: v[0],
            state: v[1],
            curr: v[2],
            advertised: v[3],
            supported: v[4],
            peer: v[5],
            curr_speed: v[6],
            max_speed: v[7],
        })
}

fn arb_flow_stats_request() -> impl Strategy<Value = FlowStatsRequest> {
    (
        any::<u8>(),
        arb_port(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        arb_match(),
    )
        .prop_map(|(t, op, og, c, cm, m)| FlowStatsRequest {
            table_id: TableId(t),
            out_port: op,
            out_group: GroupId(og),
            cookie: Cookie(c),
            cookie_mask: cm,
            match_: m,
        })
}

fn arb_table_prop() -> impl Strategy<Value = TableFeatureProp> {
    prop_oneof![
        (any::<bool>(), proptest::collection::vec(any::<u16>(), 0..8))
            .prop_map(|(miss, ids)| TableFeatureProp::Instructions { miss, ids }),
        (any::<bool>(), bytes(20))
            .prop_map(|(miss, tables)| TableFeatureProp::NextTables { miss, tables }),
        (4u16..=7, proptest::collection::vec(any::<u16>(), 0..8))
            .prop_map(|(prop_type, ids)| TableFeatureProp::Actions { prop_type, ids }),
        (
            proptest::sample::select(vec![8u16, 10, 12, 13, 14, 15]),
            proptest::collection::vec(any::<u32>(), 0..8)
        )
            .prop_map(|(prop_type, oxm_headers)| TableFeatureProp::Oxms {
                prop_type,
                oxm_headers
            }),
        (0xfffeu16..=0xffff, any::<u32>(), any::<u32>(), bytes(12)).prop_map(
            |(prop_type, experimenter, exp_type, data)| TableFeatureProp::Experimenter {
                prop_type,
                experimenter,
                exp_type,
                data
            }
        ),
    ]
}

fn arb_table_features() -> impl Strategy<Value = TableFeatures> {
    (
        any::<u8>(),
        "[a-z0-9 ._-]{0,31}",
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        proptest::collection::vec(arb_table_prop(), 0..5),
    )
        .prop_map(
            |(t, name, mm, mw, config, max_entries, properties)| TableFeatures {
                table_id: TableId(t),
                name,
                metadata_match: mm,
                metadata_write: mw,
                config,
                max_entries,
                properties,
            },
        )
}

fn arb_mp_request() -> impl Strategy<Value = MpRequestBody> {
    prop_oneof![
        Just(MpRequestBody::Desc),
        arb_flow_stats_request().prop_map(MpRequestBody::Flow),
        arb_flow_stats_request().prop_map(MpRequestBody::Aggregate),
        Just(MpRequestBody::Table),
        arb_port().prop_map(MpRequestBody::PortStats),
        (arb_port(), any::<u32>())
            .prop_map(|(port, queue_id)| MpRequestBody::Queue { port, queue_id }),
        any::<u32>().prop_map(|g| MpRequestBody::Group(GroupId(g))),
        Just(MpRequestBody::GroupDesc),
        Just(MpRequestBody::GroupFeatures),
        any::<u32>().prop_map(|m| MpRequestBody::Meter(MeterId(m))),
        any::<u32>().prop_map(|m| MpRequestBody::MeterConfig(MeterId(m))),
        Just(MpRequestBody::MeterFeatures),
        proptest::collection::vec(arb_table_features(), 0..3)
            .prop_map(MpRequestBody::TableFeatures),
        Just(MpRequestBody::PortDesc),
        (any::<u32>(), any::<u32>(), bytes(16)).prop_map(|(experimenter, exp_type, data)| {
            MpRequestBody::Experimenter {
                experimenter,
                exp_type,
                data,
            }
        }),
    ]
}

fn arb_flow_stats() -> impl Strategy<Value = FlowStats> {
    (
        (any::<u8>(), any::<u32>(), any::<u32>(), any::<u16>()),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u64>()),
        (any::<u64>(), any::<u64>()),
        arb_match(),
        arb_instructions(),
    )
        .prop_map(
            |((t, ds, dn, prio), (idle, hard, flags, cookie), (pc, bc), m, i)| FlowStats {
                table_id: TableId(t),
                duration_sec: ds,
                duration_nsec: dn,
                priority: prio,
                idle_timeout: idle,
                hard_timeout: hard,
                flags,
                cookie: Cookie(cookie),
                packet_count: pc,
                byte_count: bc,
                match_: m,
                instructions: i,
            },
        )
}

fn arb_port_stats() -> impl Strategy<Value = PortStats> {
    (arb_port(), any::<[u64; 12]>(), any::<u32>(), any::<u32>()).prop_map(|(p, c, ds, dn)| {
        PortStats {
            port_no: p,
            rx_packets: c[0],
            tx_packets: c[1],
            rx_bytes: c[2],
            tx_bytes: c[3],
            rx_dropped: c[4],
            tx_dropped: c[5],
            rx_errors: c[6],
            tx_errors: c[7],
            rx_frame_err: c[8],
            rx_over_err: c[9],
            rx_crc_err: c[10],
            collisions: c[11],
            duration_sec: ds,
            duration_nsec: dn,
        }
    })
}

fn pairs() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((any::<u64>(), any::<u64>()), 0..4)
}

fn arb_mp_reply() -> impl Strategy<Value = MpReplyBody> {
    let s = "[ -~]{0,40}";
    prop_oneof![
        (s, s, s, "[a-z0-9]{0,31}", s).prop_map(|(a, b, c, d, e)| MpReplyBody::Desc(DescStats {
            mfr_desc: a,
            hw_desc: b,
            sw_desc: c,
            serial_num: d,
            dp_desc: e,
        })),
        proptest::collection::vec(arb_flow_stats(), 0..4).prop_map(MpReplyBody::Flow),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(p, b, f)| {
            MpReplyBody::Aggregate(AggregateStats {
                packet_count: p,
                byte_count: b,
                flow_count: f,
            })
        }),
        proptest::collection::vec(
            (any::<u8>(), any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(t, a, l, m)| {
                TableStats {
                    table_id: TableId(t),
                    active_count: a,
                    lookup_count: l,
                    matched_count: m,
                }
            }),
            0..4
        )
        .prop_map(MpReplyBody::Table),
        proptest::collection::vec(arb_port_stats(), 0..4).prop_map(MpReplyBody::PortStats),
        Just(MpReplyBody::Queue),
        proptest::collection::vec(
            (
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                pairs()
            )
                .prop_map(|(g, r, p, b, ds, dn, bs)| GroupStats {
                    group_id: GroupId(g),
                    ref_count: r,
                    packet_count: p,
                    byte_count: b,
                    duration_sec: ds,
                    duration_nsec: dn,
                    bucket_stats: bs,
                }),
            0..3
        )
        .prop_map(MpReplyBody::Group),
        proptest::collection::vec(
            (arb_group_type(), any::<u32>(), arb_buckets()).prop_map(|(t, g, b)| GroupDesc {
                group_type: t,
                group_id: GroupId(g),
                buckets: b,
            }),
            0..3
        )
        .prop_map(MpReplyBody::GroupDesc),
        (
            any::<u32>(),
            any::<u32>(),
            any::<[u32; 4]>(),
            any::<[u32; 4]>()
        )
            .prop_map(|(types, capabilities, max_groups, actions)| {
                MpReplyBody::GroupFeatures(GroupFeatures {
                    types,
                    capabilities,
                    max_groups,
                    actions,
                })
            }),
        proptest::collection::vec(
            (
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                any::<u64>(),
                any::<u32>(),
                any::<u32>(),
                pairs()
            )
                .prop_map(|(m, f, p, b, ds, dn, bs)| MeterStats {
                    meter_id: MeterId(m),
                    flow_count: f,
                    packet_in_count: p,
                    byte_in_count: b,
                    duration_sec: ds,
                    duration_nsec: dn,
                    band_stats: bs,
                }),
            0..3
        )
        .prop_map(MpReplyBody::Meter),
        proptest::collection::vec(
            (any::<u16>(), any::<u32>(), arb_bands()).prop_map(|(f, m, b)| MeterConfig {
                flags: f,
                meter_id: MeterId(m),
                bands: b,
            }),
            0..3
        )
        .prop_map(MpReplyBody::MeterConfig),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>()
        )
            .prop_map(
                |(max_meter, band_types, capabilities, max_bands, max_color)| {
                    MpReplyBody::MeterFeatures(MeterFeatures {
                        max_meter,
                        band_types,
                        capabilities,
                        max_bands,
                        max_color,
                    })
                }
            ),
        proptest::collection::vec(arb_table_features(), 0..3).prop_map(MpReplyBody::TableFeatures),
        proptest::collection::vec(arb_port_desc(), 0..4).prop_map(MpReplyBody::PortDesc),
    ]
}

fn arb_async() -> impl Strategy<Value = AsyncConfig> {
    any::<[u32; 6]>().prop_map(|v| AsyncConfig {
        packet_in_mask: [v[0], v[1]],
        port_status_mask: [v[2], v[3]],
        flow_removed_mask: [v[4], v[5]],
    })
}

fn arb_role() -> impl Strategy<Value = RoleMsg> {
    (
        prop_oneof![
            Just(ControllerRole::NoChange),
            Just(ControllerRole::Equal),
            Just(ControllerRole::Master),
            Just(ControllerRole::Slave),
        ],
        any::<u64>(),
    )
        .prop_map(|(role, generation_id)| RoleMsg {
            role,
            generation_id,
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let simple = prop_oneof![
        proptest::collection::vec(any::<u32>(), 0..3)
            .prop_map(|versions| Message::Hello { versions }),
        (any::<u16>(), any::<u16>(), bytes(70)).prop_map(|(err_type, code, data)| {
            Message::Error(ErrorMsg {
                err_type,
                code,
                data,
            })
        }),
        bytes(32).prop_map(Message::EchoRequest),
        bytes(32).prop_map(Message::EchoReply),
        (any::<u32>(), any::<u32>(), bytes(32)).prop_map(|(experimenter, exp_type, data)| {
            Message::Experimenter {
                experimenter,
                exp_type,
                data,
            }
        }),
        Just(Message::FeaturesRequest),
        (
            any::<u64>(),
            any::<u32>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>()
        )
            .prop_map(|(d, b, t, a, c)| Message::FeaturesReply(SwitchFeatures {
                datapath_id: DatapathId(d),
                n_buffers: b,
                n_tables: t,
                auxiliary_id: a,
                capabilities: c,
                ports: vec![],
            })),
        Just(Message::GetConfigRequest),
        (any::<u16>(), any::<u16>()).prop_map(|(flags, miss_send_len)| {
            Message::GetConfigReply(SwitchConfig {
                flags,
                miss_send_len,
            })
        }),
        (any::<u16>(), any::<u16>()).prop_map(|(flags, miss_send_len)| {
            Message::SetConfig(SwitchConfig {
                flags,
                miss_send_len,
            })
        }),
        Just(Message::BarrierRequest),
        Just(Message::BarrierReply),
        arb_port().prop_map(|port| Message::QueueGetConfigRequest { port }),
        arb_port().prop_map(|port| Message::QueueGetConfigReply { port }),
        arb_role().prop_map(Message::RoleRequest),
        arb_role().prop_map(Message::RoleReply),
        Just(Message::GetAsyncRequest),
        arb_async().prop_map(Message::GetAsyncReply),
        arb_async().prop_map(Message::SetAsync),
        (any::<u8>(), any::<u32>()).prop_map(|(t, config)| Message::TableMod {
            table_id: TableId(t),
            config
        }),
    ];
    let complex = prop_oneof![
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u64>(),
            arb_match(),
            bytes(64)
        )
            .prop_map(|(b, tl, r, t, c, m, d)| Message::PacketIn(PacketIn {
                buffer_id: b,
                total_len: tl,
                reason: r,
                table_id: TableId(t),
                cookie: Cookie(c),
                match_: m,
                data: d,
            })),
        (
            (any::<u64>(), any::<u16>(), any::<u8>(), any::<u8>()),
            (any::<u32>(), any::<u32>(), any::<u16>(), any::<u16>()),
            (any::<u64>(), any::<u64>()),
            arb_match()
        )
            .prop_map(
                |((c, p, r, t), (ds, dn, it, ht), (pc, bc), m)| Message::FlowRemoved(FlowRemoved {
                    cookie: Cookie(c),
                    priority: p,
                    reason: r,
                    table_id: TableId(t),
                    duration_sec: ds,
                    duration_nsec: dn,
                    idle_timeout: it,
                    hard_timeout: ht,
                    packet_count: pc,
                    byte_count: bc,
                    match_: m,
                })
            ),
        (any::<u8>(), arb_port_desc())
            .prop_map(|(reason, desc)| Message::PortStatus(PortStatus { reason, desc })),
        (any::<u32>(), arb_port(), arb_actions(), bytes(64)).prop_map(|(b, p, a, d)| {
            Message::PacketOut(PacketOut {
                buffer_id: b,
                in_port: p,
                actions: a,
                data: d,
            })
        }),
        arb_flow_mod().prop_map(Message::FlowMod),
        (
            prop_oneof![
                Just(GroupModCommand::Add),
                Just(GroupModCommand::Modify),
                Just(GroupModCommand::Delete)
            ],
            arb_group_type(),
            any::<u32>(),
            arb_buckets()
        )
            .prop_map(
                |(command, group_type, g, buckets)| Message::GroupMod(GroupMod {
                    command,
                    group_type,
                    group_id: GroupId(g),
                    buckets,
                })
            ),
        (
            arb_port(),
            arb_mac(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(
                |(port_no, hw_addr, config, mask, advertise)| Message::PortMod(PortMod {
                    port_no,
                    hw_addr,
                    config,
                    mask,
                    advertise,
                })
            ),
        (any::<u16>(), arb_mp_request())
            .prop_map(|(flags, body)| Message::MultipartRequest(MultipartRequest { flags, body })),
        (any::<u16>(), arb_mp_reply())
            .prop_map(|(flags, body)| Message::MultipartReply(MultipartReply { flags, body })),
        (
            prop_oneof![
                Just(MeterModCommand::Add),
                Just(MeterModCommand::Modify),
                Just(MeterModCommand::Delete)
            ],
            any::<u16>(),
            any::<u32>(),
            arb_bands()
        )
            .prop_map(|(command, flags, m, bands)| Message::MeterMod(MeterMod {
                command,
                flags,
                meter_id: MeterId(m),
                bands,
            })),
    ];
    prop_oneof![simple, complex]
}

fn arb_msg() -> impl Strategy<Value = OfpMsg> {
    (any::<u32>(), arb_message()).prop_map(|(xid, body)| OfpMsg { xid, body })
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

proptest! {
    // PROPTEST_CASES raises the count for a longer hunt.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn every_message_round_trips(msg in arb_msg()) {
        let bytes = encode_to_vec(&msg).unwrap();
        prop_assert_eq!(frame_len(&bytes), Ok(Some(bytes.len())));
        prop_assert_eq!(bytes[0], OFP_VERSION);
        let back = decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e} for {msg:?}")))?;
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut raw in bytes(300), version in prop_oneof![Just(4u8), any::<u8>()]) {
        // Make the header consistent half of the time so the body parsers run.
        if raw.len() >= 8 && version == 4 {
            raw[0] = 4;
            let l = raw.len() as u16;
            raw[2..4].copy_from_slice(&l.to_be_bytes());
        }
        let _ = decode(&raw);
        let _ = frame_len(&raw);
    }

    #[test]
    fn corrupted_messages_never_panic(
        msg in arb_msg(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut bytes = encode_to_vec(&msg).unwrap();
        for (at, v) in flips {
            let n = bytes.len();
            // Leave the 8-byte header alone so the body parsers see the damage.
            if n > 8 {
                bytes[8 + at % (n - 8)] = v;
            }
        }
        let _ = decode(&bytes);
        // Truncate and fix the length: every parser must cope with short input.
        let keep = 8 + cut % (bytes.len() - 7);
        bytes.truncate(keep);
        let l = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&l.to_be_bytes());
        if let Ok(m) = decode(&bytes) {
            // Whatever decodes must re-encode to something that decodes; after
            // that one normalising pass (strings cut to their field, skipped
            // unknown elements dropped) the message is a fixed point.
            let once = decode(&encode_to_vec(&m).unwrap()).unwrap();
            let twice = decode(&encode_to_vec(&once).unwrap()).unwrap();
            prop_assert_eq!(twice, once);
        }
    }

    #[test]
    fn split_replies_reassemble(entries in proptest::collection::vec(arb_flow_stats(), 0..40), xid in any::<u32>()) {
        let mut msgs = Vec::new();
        encode_multipart_reply_split(xid, &MpReplyBody::Flow(entries.clone()), &mut msgs).unwrap();
        let mut got = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            match decode(m).unwrap().body {
                Message::MultipartReply(MultipartReply { flags, body: MpReplyBody::Flow(v) }) => {
                    prop_assert_eq!(flags & MPF_MORE != 0, i + 1 < msgs.len());
                    got.extend(v);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(got, entries);
    }
}

// ---------------------------------------------------------------------------
// Hand-built byte vectors
// ---------------------------------------------------------------------------

/// A version-4 message of type `t` with `body` and xid 7.
fn msg(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![4, t];
    v.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    v.extend_from_slice(&7u32.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// An OFPMT_OXM match around `oxms`, padded to 8.
fn match_bytes(oxms: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 1];
    v.extend_from_slice(&((4 + oxms.len()) as u16).to_be_bytes());
    v.extend_from_slice(oxms);
    while v.len() % 8 != 0 {
        v.push(0);
    }
    v
}

/// A FLOW_MOD ADD with the given match (already framed) and instructions.
fn flow_mod(matchb: &[u8], insts: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; 16]; // cookie, cookie_mask
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x80, 0]); // table, cmd, idle, hard, prio
    b.extend_from_slice(&[0xff; 12]); // buffer, out_port, out_group
    b.extend_from_slice(&[0, 0, 0, 0]); // flags, pad
    b.extend_from_slice(matchb);
    b.extend_from_slice(insts);
    msg(14, &b)
}

fn oxm(field: u8, has_mask: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![
        0x80,
        0x00,
        (field << 1) | has_mask as u8,
        payload.len() as u8,
    ];
    v.extend_from_slice(payload);
    v
}

fn apply(actions: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 4];
    v.extend_from_slice(&((8 + actions.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(actions);
    v
}

fn err_of(bytes: &[u8]) -> OfpError {
    let e = decode(bytes).unwrap_err();
    assert_eq!(e.xid, if bytes.len() >= 8 { 7 } else { 0 });
    e.error
}

const OUTPUT2: [u8; 16] = [0, 0, 0, 16, 0, 0, 0, 2, 0xff, 0xe5, 0, 0, 0, 0, 0, 0];

#[test]
fn golden_features_request() {
    let m = OfpMsg {
        xid: 0x1234_5678,
        body: Message::FeaturesRequest,
    };
    assert_eq!(
        encode_to_vec(&m).unwrap(),
        [0x04, 0x05, 0x00, 0x08, 0x12, 0x34, 0x56, 0x78]
    );
}

#[test]
fn golden_flow_mod_in_port_output() {
    let m = OfpMsg {
        xid: 7,
        body: Message::FlowMod(FlowMod {
            cookie: Cookie(0),
            cookie_mask: 0,
            table_id: TableId(0),
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority: 0x8000,
            buffer_id: NO_BUFFER,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            flags: 0,
            match_: Match {
                fields: vec![OxmField::in_port(PortNo(1))],
            },
            instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                port: PortNo(2),
                max_len: 0xffe5,
            }])],
        }),
    };
    // ofp_header 8 + flow_mod fixed 40 + match (4 + 8 OXM = 12, padded to 16)
    // + apply-actions instruction (8 + output action 16) = 88 = 0x58.
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        0x04, 0x0e, 0x00, 0x58, 0, 0, 0, 7,
        0, 0, 0, 0, 0, 0, 0, 0,                 // cookie
        0, 0, 0, 0, 0, 0, 0, 0,                 // cookie_mask
        0, 0, 0, 0, 0, 0, 0x80, 0,              // table, ADD, idle, hard, priority
        0xff, 0xff, 0xff, 0xff,                 // buffer_id
        0xff, 0xff, 0xff, 0xff,                 // out_port
        0xff, 0xff, 0xff, 0xff,                 // out_group
        0, 0, 0, 0,                             // flags, pad
        0x00, 0x01, 0x00, 0x0c,                 // OFPMT_OXM, length 12
        0x80, 0x00, 0x00, 0x04, 0, 0, 0, 1,     // in_port=1
        0, 0, 0, 0,                             // match padding
        0x00, 0x04, 0x00, 0x18, 0, 0, 0, 0,     // APPLY_ACTIONS, len 24
        0x00, 0x00, 0x00, 0x10, 0, 0, 0, 2,     // OUTPUT len 16 port 2
        0xff, 0xe5, 0, 0, 0, 0, 0, 0,           // max_len, pad
    ];
    let got = encode_to_vec(&m).unwrap();
    assert_eq!(got, want);
    assert_eq!(decode(&want).unwrap(), m);
    assert_eq!(
        want,
        flow_mod(
            &match_bytes(&oxm(0, false, &[0, 0, 0, 1])),
            &apply(&OUTPUT2)
        )
    );
}

#[test]
fn golden_hello_and_error() {
    let mut h = Vec::new();
    encode_hello(9, &mut h);
    assert_eq!(
        h,
        [4, 0, 0, 16, 0, 0, 0, 9, 0, 1, 0, 8, 0, 0, 0, 0x10, 0, 0, 0, 0][..16]
    );
    let e = encode_error_reply(9, OfpError::BadType, &[0xaa; 100]);
    assert_eq!(e.len(), 8 + 4 + 64);
    assert_eq!(&e[..12], &[4, 1, 0, 76, 0, 0, 0, 9, 0, 1, 0, 1]);
    assert!(e[12..].iter().all(|&b| b == 0xaa));
}

#[test]
fn header_errors() {
    // Fewer than 8 bytes.
    let e = decode(&[4, 5, 0]).unwrap_err();
    assert_eq!((e.error, e.fatal), (OfpError::BadLen, true));
    // Length field disagrees with the buffer.
    let mut m = msg(5, &[]);
    m[3] = 9;
    assert_eq!(err_of(&m), OfpError::BadLen);
    // Wrong version on anything but HELLO is fatal.
    let mut m = msg(5, &[]);
    m[0] = 1;
    let e = decode(&m).unwrap_err();
    assert_eq!((e.error, e.fatal), (OfpError::BadVersion, true));
    // HELLO of any version decodes; the caller reads its header version.
    let mut m = msg(0, &[0, 1, 0, 8, 0, 0, 0, 0x12]);
    m[0] = 1;
    assert_eq!(header(&m).unwrap().version, 1);
    assert_eq!(
        decode(&m).unwrap().body,
        Message::Hello {
            versions: vec![0x12]
        }
    );
    // Unknown message type.
    assert_eq!(err_of(&msg(30, &[])), OfpError::BadType);
    assert_eq!(err_of(&msg(200, &[])), OfpError::BadType);
    // Fixed-size messages must have exactly their size.
    assert_eq!(err_of(&msg(5, &[0])), OfpError::BadLen);
    assert_eq!(err_of(&msg(9, &[0, 0, 0])), OfpError::BadLen);
    assert_eq!(err_of(&msg(24, &[0; 15])), OfpError::BadLen);
}

#[test]
fn hello_elements() {
    // Unknown element skipped, bitmap found after it; padding may be absent at the end.
    let m = msg(0, &[0, 9, 0, 5, 1, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0x10]);
    assert_eq!(
        decode(&m).unwrap().body,
        Message::Hello {
            versions: vec![0x10]
        }
    );
    // Element length smaller than its header.
    assert_eq!(err_of(&msg(0, &[0, 1, 0, 2])), OfpError::BadLen);
    // Element running past the message.
    assert_eq!(
        err_of(&msg(0, &[0, 1, 0, 12, 0, 0, 0, 0x10])),
        OfpError::BadLen
    );
    // No body at all: no bitmap.
    assert_eq!(
        decode(&msg(0, &[])).unwrap().body,
        Message::Hello { versions: vec![] }
    );
}

#[test]
fn match_errors() {
    let out = apply(&OUTPUT2);
    let fm = |oxms: &[u8]| flow_mod(&match_bytes(oxms), &out);
    // Value bits beyond the field: vlan_pcp is 3 bits.
    assert_eq!(err_of(&fm(&oxm(7, false, &[8]))), OfpError::BadValue);
    // vlan_vid is 13 bits.
    assert_eq!(err_of(&fm(&oxm(6, false, &[0x20, 0]))), OfpError::BadValue);
    // Mask bits beyond the field: ipv6_flabel is 20 bits.
    assert_eq!(
        err_of(&fm(&oxm(28, true, &[0, 0, 0, 1, 0x00, 0x10, 0, 0]))),
        OfpError::BadMask
    );
    // Mask on a non-maskable field (ip_proto).
    assert_eq!(err_of(&fm(&oxm(10, true, &[6, 0xff]))), OfpError::BadMask);
    // ... but L4 ports may be masked, as in OVS.
    let ok = [
        oxm(5, false, &[8, 0]),
        oxm(10, false, &[6]),
        oxm(14, true, &[0, 80, 0xff, 0xf0]),
    ]
    .concat();
    let m = decode(&fm(&ok)).unwrap();
    let Message::FlowMod(f) = m.body else {
        panic!("not a flow mod")
    };
    assert_eq!(f.match_.get(OxmId::TcpDst).unwrap().mask, Some(0xfff0));
    assert_eq!(f.match_.get(OxmId::TcpDst).unwrap().value, 80 & 0xfff0);
    assert_eq!(check_prerequisites(&f.match_), Ok(()));
    // Duplicate field.
    let dup = [oxm(0, false, &[0, 0, 0, 1]), oxm(0, false, &[0, 0, 0, 2])].concat();
    assert_eq!(err_of(&fm(&dup)), OfpError::DupField);
    // Unknown class (NXM_0) and unknown basic field.
    let mut nxm = oxm(0, false, &[0, 0, 0, 1]);
    nxm[0] = 0;
    assert_eq!(err_of(&fm(&nxm)), OfpError::BadField);
    assert_eq!(err_of(&fm(&oxm(40, false, &[0, 0]))), OfpError::BadField);
    let mut exp = oxm(0, false, &[0, 0, 0, 1]);
    exp[0] = 0xff;
    exp[1] = 0xff;
    assert_eq!(err_of(&fm(&exp)), OfpError::BadField);
    // Wrong payload length for the field.
    assert_eq!(
        err_of(&fm(&oxm(0, false, &[0, 0, 1]))),
        OfpError::BadMatchLen
    );
    // OXM running past the match.
    let mut m = match_bytes(&oxm(0, false, &[0, 0, 0, 1]));
    m[3] = 10; // claims 6 bytes of OXMs, cuts the TLV short
    assert_eq!(err_of(&flow_mod(&m, &out)), OfpError::BadMatchLen);
    // Match length below its header, and past the message.
    assert_eq!(
        err_of(&flow_mod(&[0, 1, 0, 2, 0, 0, 0, 0], &out)),
        OfpError::BadMatchLen
    );
    assert_eq!(
        err_of(&flow_mod(&[0, 1, 0, 0x40, 0, 0, 0, 0], &[])),
        OfpError::BadMatchLen
    );
    // OFPMT_STANDARD.
    assert_eq!(
        err_of(&flow_mod(&[0, 0, 0, 4, 0, 0, 0, 0], &out)),
        OfpError::BadMatchType
    );
    // Message ending inside the fixed part.
    assert_eq!(err_of(&msg(14, &[0; 20])), OfpError::BadLen);
}

#[test]
fn action_and_instruction_errors() {
    let m = match_bytes(&[]);
    let fm = |insts: &[u8]| flow_mod(&m, insts);
    // Output with length 8 instead of 16.
    assert_eq!(
        err_of(&fm(&apply(&[0, 0, 0, 8, 0, 0, 0, 2]))),
        OfpError::BadActionLen
    );
    // Action length not a multiple of 8 / zero / past the end.
    assert_eq!(
        err_of(&fm(&apply(&[0, 11, 0, 4, 0, 0, 0, 0]))),
        OfpError::BadActionLen
    );
    assert_eq!(
        err_of(&fm(&apply(&[0, 11, 0, 0, 0, 0, 0, 0]))),
        OfpError::BadActionLen
    );
    assert_eq!(
        err_of(&fm(&apply(&[0, 11, 0, 16, 0, 0, 0, 0]))),
        OfpError::BadActionLen
    );
    assert_eq!(err_of(&fm(&apply(&[0, 0, 0]))), OfpError::BadInstructionLen);
    // Unknown action type (OF1.0's SET_VLAN_VID = 1 does not exist in 1.3).
    assert_eq!(
        err_of(&fm(&apply(&[0, 1, 0, 8, 0, 0, 0, 0]))),
        OfpError::BadActionType
    );
    // Experimenter action.
    assert_eq!(
        err_of(&fm(&apply(&[
            0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 0, 0, 0, 0, 0, 0, 0
        ]))),
        OfpError::BadActionExperimenter
    );
    // Set-field: unknown field, masked, wrong action length, value too wide.
    let sf = |o: &[u8], len: u8| {
        let mut v = vec![0, 25, 0, len];
        v.extend_from_slice(o);
        while v.len() < len as usize {
            v.push(0);
        }
        apply(&v)
    };
    assert_eq!(
        err_of(&fm(&sf(&oxm(45, false, &[0, 0]), 16))),
        OfpError::BadSetType
    );
    assert_eq!(
        err_of(&fm(&sf(&oxm(6, true, &[0x10, 1, 0x1f, 0xff]), 16))),
        OfpError::BadSetArgument
    );
    assert_eq!(
        err_of(&fm(&sf(&oxm(6, false, &[0x10, 1]), 24))),
        OfpError::BadSetLen
    );
    assert_eq!(
        err_of(&fm(&sf(&oxm(6, false, &[0x20, 1]), 16))),
        OfpError::BadSetArgument
    );
    assert_eq!(
        err_of(&fm(&sf(&oxm(6, false, &[0x10]), 16))),
        OfpError::BadSetLen
    );
    let ok = decode(&fm(&sf(&oxm(6, false, &[0x10, 1]), 16))).unwrap();
    let Message::FlowMod(f) = ok.body else {
        panic!()
    };
    assert_eq!(
        f.instructions,
        vec![Instruction::ApplyActions(vec![Action::SetField(
            OxmField::exact(OxmId::VlanVid, 0x1001)
        )])]
    );
    // Instructions: wrong fixed length, unknown type, experimenter, bad list length.
    assert_eq!(
        err_of(&fm(&[0, 1, 0, 16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        OfpError::BadInstructionLen
    );
    assert_eq!(
        err_of(&fm(&[0, 2, 0, 8, 0, 0, 0, 0])),
        OfpError::BadInstructionLen
    );
    assert_eq!(
        err_of(&fm(&[0, 9, 0, 8, 0, 0, 0, 0])),
        OfpError::UnknownInstruction
    );
    assert_eq!(
        err_of(&fm(&[0xff, 0xff, 0, 8, 0, 0, 0x23, 0x20])),
        OfpError::BadInstructionExperimenter
    );
    assert_eq!(
        err_of(&fm(&[0, 5, 0, 6, 0, 0, 0, 0])),
        OfpError::BadInstructionLen
    );
    assert_eq!(
        err_of(&fm(&[0, 5, 0, 8, 0, 0])),
        OfpError::BadInstructionLen
    );
    assert_eq!(
        err_of(&fm(&[0, 5, 0, 16, 0, 0, 0, 0])),
        OfpError::BadInstructionLen
    );
    // Flow-mod command out of range.
    let mut bad_cmd = fm(&[]);
    bad_cmd[8 + 17] = 5;
    assert_eq!(err_of(&bad_cmd), OfpError::BadFlowModCommand);
}

#[test]
fn other_message_errors() {
    // PACKET_OUT whose actions_len runs past the message.
    let mut po = vec![
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 0, 32, 0, 0, 0, 0, 0, 0,
    ];
    po.extend_from_slice(&OUTPUT2);
    assert_eq!(err_of(&msg(13, &po)), OfpError::BadLen);
    // Group mod: bad command, bad type, bucket too short.
    assert_eq!(
        err_of(&msg(15, &[0, 3, 0, 0, 0, 0, 0, 1])),
        OfpError::BadGroupCommand
    );
    assert_eq!(
        err_of(&msg(15, &[0, 0, 4, 0, 0, 0, 0, 1])),
        OfpError::BadGroupType
    );
    assert_eq!(
        err_of(&msg(15, &[0, 0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0])),
        OfpError::BadBucket
    );
    // Meter mod: bad command, unknown band type, bad band length.
    assert_eq!(
        err_of(&msg(29, &[0, 3, 0, 1, 0, 0, 0, 1])),
        OfpError::BadMeterCommand
    );
    let band = |t: u8, len: u8| {
        let mut v = vec![0, 0, 0, 1, 0, 0, 0, 1, 0, t, 0, len];
        v.resize(8 + len as usize, 0);
        v
    };
    assert_eq!(err_of(&msg(29, &band(3, 16))), OfpError::BadBand);
    assert_eq!(err_of(&msg(29, &band(1, 8))), OfpError::BadBand);
    assert_eq!(err_of(&msg(29, &band(1, 24))), OfpError::BadBand);
    assert!(decode(&msg(29, &band(1, 16))).is_ok());
    // Role out of range.
    let mut role = vec![0, 0, 0, 4];
    role.resize(16, 0);
    assert_eq!(err_of(&msg(24, &role)), OfpError::BadRole);
    // Multipart: unknown type, truncated header, wrong body sizes.
    assert_eq!(
        err_of(&msg(18, &[0, 14, 0, 0, 0, 0, 0, 0])),
        OfpError::BadMultipart
    );
    assert_eq!(err_of(&msg(18, &[0, 0, 0, 0])), OfpError::BadLen);
    assert_eq!(
        err_of(&msg(18, &[0, 0, 0, 0, 0, 0, 0, 0, 1])),
        OfpError::BadLen
    );
    assert_eq!(
        err_of(&msg(18, &[0, 4, 0, 0, 0, 0, 0, 0, 0, 0])),
        OfpError::BadLen
    );
    assert_eq!(
        err_of(&msg(19, &[0, 3, 0, 0, 0, 0, 0, 0, 1])),
        OfpError::BadLen
    );
    // Flow stats request whose match is cut short.
    let mut fsr = vec![0, 1, 0, 0, 0, 0, 0, 0];
    fsr.extend_from_slice(&[0; 32]);
    fsr.extend_from_slice(&[0, 1, 0, 12, 0x80, 0, 0, 4]);
    assert_eq!(err_of(&msg(18, &fsr)), OfpError::BadMatchLen);
    // Table features entry shorter than its 64-byte header.
    let mut tf = vec![0, 12, 0, 0, 0, 0, 0, 0, 0, 32];
    tf.resize(8 + 32, 0);
    assert_eq!(err_of(&msg(18, &tf)), OfpError::BadLen);
}

#[test]
fn prerequisites() {
    use OxmId::*;
    let m = |fs: &[(OxmId, u128)]| Match {
        fields: fs.iter().map(|&(id, v)| OxmField::exact(id, v)).collect(),
    };
    let ok = |fs: &[(OxmId, u128)]| check_prerequisites(&m(fs));
    let bad = Err(OfpError::BadPrereq);
    assert_eq!(ok(&[]), Ok(()));
    assert_eq!(ok(&[(InPort, 1), (EthDst, 5)]), Ok(()));
    assert_eq!(ok(&[(TcpDst, 80)]), bad);
    assert_eq!(ok(&[(EthType, 0x800), (TcpDst, 80)]), bad);
    assert_eq!(ok(&[(EthType, 0x800), (IpProto, 17), (TcpDst, 80)]), bad);
    assert_eq!(ok(&[(EthType, 0x800), (IpProto, 6), (TcpDst, 80)]), Ok(()));
    assert_eq!(ok(&[(EthType, 0x86dd), (IpProto, 6), (TcpDst, 80)]), Ok(()));
    assert_eq!(ok(&[(EthType, 0x806), (IpProto, 6), (TcpDst, 80)]), bad);
    assert_eq!(ok(&[(EthType, 0x86dd), (IpProto, 17), (UdpSrc, 1)]), Ok(()));
    assert_eq!(
        ok(&[(EthType, 0x800), (IpProto, 132), (SctpSrc, 1)]),
        Ok(())
    );
    assert_eq!(ok(&[(EthType, 0x800), (Ipv4Src, 1)]), Ok(()));
    assert_eq!(ok(&[(EthType, 0x86dd), (Ipv4Src, 1)]), bad);
    assert_eq!(ok(&[(IpDscp, 1)]), bad);
    assert_eq!(
        ok(&[(EthType, 0x86dd), (IpEcn, 1), (Ipv6Flabel, 3)]),
        Ok(())
    );
    assert_eq!(
        ok(&[(EthType, 0x800), (IpProto, 1), (Icmpv4Type, 8)]),
        Ok(())
    );
    assert_eq!(ok(&[(EthType, 0x86dd), (IpProto, 1), (Icmpv4Type, 8)]), bad);
    assert_eq!(ok(&[(EthType, 0x806), (ArpOp, 1), (ArpTha, 3)]), Ok(()));
    assert_eq!(ok(&[(ArpSpa, 1)]), bad);
    // ICMPv6 and neighbour discovery.
    let nd = [(EthType, 0x86dd), (IpProto, 58), (Icmpv6Type, 135)];
    assert_eq!(
        ok(&[&nd[..], &[(Ipv6NdTarget, 1), (Ipv6NdSll, 2)]].concat()),
        Ok(())
    );
    assert_eq!(ok(&[&nd[..], &[(Ipv6NdTll, 2)]].concat()), bad);
    let na = [
        (EthType, 0x86dd),
        (IpProto, 58),
        (Icmpv6Type, 136),
        (Ipv6NdTll, 2),
    ];
    assert_eq!(ok(&na), Ok(()));
    assert_eq!(ok(&[(EthType, 0x800), (IpProto, 58), (Icmpv6Code, 0)]), bad);
    assert_eq!(ok(&[(Ipv6NdTarget, 1)]), bad);
    // MPLS, PBB, IPv6 extension headers.
    assert_eq!(
        ok(&[(EthType, 0x8847), (MplsLabel, 5), (MplsBos, 1)]),
        Ok(())
    );
    assert_eq!(ok(&[(EthType, 0x8848), (MplsTc, 5)]), Ok(()));
    assert_eq!(ok(&[(EthType, 0x800), (MplsTc, 5)]), bad);
    assert_eq!(ok(&[(EthType, 0x88e7), (PbbIsid, 5)]), Ok(()));
    assert_eq!(ok(&[(PbbIsid, 5)]), bad);
    assert_eq!(ok(&[(EthType, 0x86dd), (Ipv6Exthdr, 5)]), Ok(()));
    assert_eq!(ok(&[(EthType, 0x800), (Ipv6Exthdr, 5)]), bad);
    // in_phy_port needs in_port.
    assert_eq!(ok(&[(InPhyPort, 1)]), bad);
    assert_eq!(ok(&[(InPort, 1), (InPhyPort, 1)]), Ok(()));
    // vlan_pcp needs a vlan_vid that requires a tag.
    assert_eq!(ok(&[(VlanPcp, 3)]), bad);
    assert_eq!(ok(&[(VlanVid, 0), (VlanPcp, 3)]), bad);
    assert_eq!(ok(&[(VlanVid, 0x1005), (VlanPcp, 3)]), Ok(()));
    let present_any = Match {
        fields: vec![
            OxmField {
                id: VlanVid,
                value: 0x1000,
                mask: Some(0x1000),
            },
            OxmField::exact(VlanPcp, 3),
        ],
    };
    assert_eq!(check_prerequisites(&present_any), Ok(()));
    // A prerequisite pinned by a partial mask does not count; a full mask does.
    let eth = |mask| Match {
        fields: vec![
            OxmField {
                id: EthType,
                value: 0x800,
                mask,
            },
            OxmField::exact(Ipv4Src, 1),
        ],
    };
    assert_eq!(check_prerequisites(&eth(Some(0xff00))), bad);
    assert_eq!(check_prerequisites(&eth(Some(0xffff))), Ok(()));
    // RARP carries ARP fields too, as in Open vSwitch.
    assert_eq!(ok(&[(EthType, 0x8035), (ArpOp, 3)]), Ok(()));
}

#[test]
fn multipart_split_sets_more_and_respects_limit() {
    let flow = FlowStats {
        table_id: TableId(0),
        duration_sec: 1,
        duration_nsec: 2,
        priority: 3,
        idle_timeout: 0,
        hard_timeout: 0,
        flags: 0,
        cookie: Cookie(9),
        packet_count: 1,
        byte_count: 2,
        match_: Match {
            fields: vec![OxmField::in_port(PortNo(1))],
        },
        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
            port: PortNo(2),
            max_len: 0,
        }])],
    };
    let n = 100_000;
    let flows = vec![flow; n];
    let mut msgs = Vec::new();
    encode_multipart_reply_split(5, &MpReplyBody::Flow(flows), &mut msgs).unwrap();
    // Each entry is 48 + 16 + 24 = 88 bytes; 744 fit in 65519 bytes of body.
    assert_eq!(msgs.len(), n.div_ceil(744));
    let mut total = 0;
    for (i, m) in msgs.iter().enumerate() {
        assert!(m.len() <= MAX_MSG_LEN);
        let h = header(m).unwrap();
        assert_eq!(h.length as usize, m.len());
        assert_eq!(h.xid, 5);
        let more = u16::from_be_bytes([m[10], m[11]]) & MPF_MORE != 0;
        assert_eq!(more, i + 1 < msgs.len());
        total += (m.len() - 16) / 88;
    }
    assert_eq!(total, n);
    // An empty list still yields one (final) message.
    let mut msgs = Vec::new();
    encode_multipart_reply_split(5, &MpReplyBody::PortDesc(vec![]), &mut msgs).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].len(), 16);
    // Single-body replies go out whole.
    let mut msgs = Vec::new();
    encode_multipart_reply_split(5, &MpReplyBody::Queue, &mut msgs).unwrap();
    assert_eq!(
        msgs,
        vec![vec![4, 19, 0, 16, 0, 0, 0, 5, 0, 5, 0, 0, 0, 0, 0, 0]]
    );
}

#[test]
fn strings_are_cut_at_char_boundaries() {
    let mut p = sample_port(1);
    p.name = "aaaaaaaaaaaaaa\u{e9}x".into(); // 14 + 2 + 1 bytes
    let m = OfpMsg {
        xid: 1,
        body: Message::PortStatus(PortStatus { reason: 0, desc: p }),
    };
    let Message::PortStatus(back) = decode(&encode_to_vec(&m).unwrap()).unwrap().body else {
        panic!()
    };
    assert_eq!(back.desc.name, "aaaaaaaaaaaaaa");
}

#[test]
fn oversized_messages_are_refused() {
    let m = OfpMsg {
        xid: 1,
        body: Message::EchoReply(vec![0; 70_000]),
    };
    let mut out = vec![1, 2, 3];
    assert_eq!(encode(&m, &mut out), Err(EncodeError::TooLong(70_008)));
    assert_eq!(out, vec![1, 2, 3]);
    let m = OfpMsg {
        xid: 1,
        body: Message::EchoReply(vec![0; 65_527]),
    };
    assert_eq!(encode_to_vec(&m).unwrap().len(), 65_535);
}

// ---------------------------------------------------------------------------
// Open vSwitch as an oracle
// ---------------------------------------------------------------------------

const OVS_OFCTL: &str = "/usr/bin/ovs-ofctl";

/// Whether `ovs-ofctl` is there to be an oracle. When it is missing the
/// oracle checks are skipped, unless `RVSWITCHD_REQUIRE_ALL` is set (CI): then
/// a missing oracle fails the test instead of letting it pass on less.
fn ovs_available() -> bool {
    let present = std::path::Path::new(OVS_OFCTL).exists();
    assert!(
        present || std::env::var_os("RVSWITCHD_REQUIRE_ALL").is_none(),
        "{OVS_OFCTL} is missing and RVSWITCHD_REQUIRE_ALL is set (scripts/install-deps.sh installs it)"
    );
    present
}

/// Run `ovs-ofctl ofp-parse` on one encoded message; `None` if it is not installed.
fn ovs_print(bytes: &[u8]) -> Option<String> {
    if !ovs_available() {
        return None;
    }
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
    let out = std::process::Command::new(OVS_OFCTL)
        .arg("ofp-parse")
        .arg(f.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ovs-ofctl failed: {stderr}");
    assert!(
        !stdout.contains("***") && !stdout.contains("decode error"),
        "ovs-ofctl rejected {bytes:02x?}:\n{stdout}"
    );
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERR"),
        "ovs-ofctl complained about {bytes:02x?}:\n{stderr}\n{stdout}"
    );
    if std::env::var_os("OVS_ORACLE_VERBOSE").is_some() {
        eprintln!("{stdout}");
    }
    Some(stdout)
}

/// Encode, have OVS print it, and check the printout mentions every `needle`.
fn ovs_check(body: Message, needles: &[&str]) {
    let msg = OfpMsg { xid: 0x42, body };
    let bytes = encode_to_vec(&msg).unwrap();
    assert_eq!(decode(&bytes).unwrap(), msg, "our own round trip");
    let Some(text) = ovs_print(&bytes) else {
        eprintln!("ovs-ofctl not installed; skipping oracle check");
        return;
    };
    for n in needles {
        assert!(text.contains(n), "expected {n:?} in:\n{text}");
    }
}

fn sample_port(n: u32) -> PortDesc {
    PortDesc {
        port_no: PortNo(n),
        hw_addr: MacAddr([2, 0, 0, 0, 0, n as u8]),
        name: format!("veth{n}"),
        config: 0,
        state: 4,
        curr: 0x802,
        advertised: 0,
        supported: 0,
        peer: 0,
        curr_speed: 10_000_000,
        max_speed: 0,
    }
}

fn sample_match() -> Match {
    Match {
        fields: vec![
            OxmField::in_port(PortNo(3)),
            OxmField::exact(OxmId::EthType, 0x0800),
            OxmField::exact(OxmId::IpProto, 6),
            OxmField {
                id: OxmId::Ipv4Dst,
                value: 0x0a00_0000,
                mask: Some(0xff00_0000),
            },
            OxmField::exact(OxmId::TcpDst, 80),
        ],
    }
}

fn sample_instructions() -> Vec<Instruction> {
    vec![
        Instruction::Meter(MeterId(1)),
        Instruction::ApplyActions(vec![
            Action::PushVlan(0x8100),
            Action::SetField(OxmField::exact(OxmId::VlanVid, 0x1000 | 10)),
            Action::SetField(OxmField::exact(OxmId::EthDst, 0x0200_0000_0001)),
            Action::DecNwTtl,
            Action::Output {
                port: PortNo(2),
                max_len: 0,
            },
            Action::Output {
                port: PortNo::CONTROLLER,
                max_len: 128,
            },
        ]),
        Instruction::WriteMetadata {
            value: 5,
            mask: 0xff,
        },
        Instruction::WriteActions(vec![Action::Group(GroupId(7))]),
        Instruction::GotoTable(TableId(3)),
    ]
}

fn sample_flow_stats() -> FlowStats {
    FlowStats {
        table_id: TableId(1),
        duration_sec: 10,
        duration_nsec: 500,
        priority: 100,
        idle_timeout: 5,
        hard_timeout: 0,
        flags: FF_SEND_FLOW_REM,
        cookie: Cookie(0xabc),
        packet_count: 7,
        byte_count: 700,
        match_: sample_match(),
        instructions: sample_instructions(),
    }
}

fn sample_buckets() -> Vec<Bucket> {
    vec![
        Bucket {
            weight: 1,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: vec![Action::Output {
                port: PortNo(1),
                max_len: 0,
            }],
        },
        Bucket {
            weight: 2,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: vec![
                Action::SetField(OxmField::exact(OxmId::Ipv4Src, 0x0a000001)),
                Action::Output {
                    port: PortNo(2),
                    max_len: 0,
                },
            ],
        },
    ]
}

fn sample_table_features(t: u8) -> TableFeatures {
    use super::match_codec::oxm_header;
    TableFeatures {
        table_id: TableId(t),
        name: format!("table{t}"),
        metadata_match: u64::MAX,
        metadata_write: u64::MAX,
        config: 0,
        max_entries: 1_000_000,
        properties: vec![
            TableFeatureProp::Instructions {
                miss: false,
                ids: vec![1, 2, 3, 4, 5, 6],
            },
            TableFeatureProp::NextTables {
                miss: false,
                tables: (t + 1..10).collect(),
            },
            TableFeatureProp::Actions {
                prop_type: 4,
                ids: vec![0, 11, 12, 15, 16, 17, 18, 19, 20, 22, 23, 24, 25],
            },
            TableFeatureProp::Actions {
                prop_type: 6,
                ids: vec![0, 17, 18, 25],
            },
            TableFeatureProp::Oxms {
                prop_type: 8,
                oxm_headers: OxmId::ALL.iter().map(|&id| oxm_header(id, false)).collect(),
            },
            TableFeatureProp::Oxms {
                prop_type: 10,
                oxm_headers: vec![oxm_header(OxmId::InPort, false)],
            },
            TableFeatureProp::Oxms {
                prop_type: 12,
                oxm_headers: vec![oxm_header(OxmId::EthDst, false)],
            },
            TableFeatureProp::Oxms {
                prop_type: 14,
                oxm_headers: vec![oxm_header(OxmId::VlanVid, false)],
            },
        ],
    }
}

fn reply(body: MpReplyBody) -> Message {
    Message::MultipartReply(MultipartReply { flags: 0, body })
}

fn request(body: MpRequestBody) -> Message {
    Message::MultipartRequest(MultipartRequest { flags: 0, body })
}

#[test]
fn ovs_accepts_switch_to_controller_messages() {
    let mut hello = Vec::new();
    encode_hello(1, &mut hello);
    if let Some(t) = ovs_print(&hello) {
        assert!(t.contains("version bitmap: 0x04"), "{t}");
    }
    ovs_check(
        Message::FeaturesReply(SwitchFeatures {
            datapath_id: DatapathId(0x1234),
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            ports: vec![],
        }),
        &[
            "OFPT_FEATURES_REPLY",
            "dpid:0000000000001234",
            "n_tables:254",
        ],
    );
    ovs_check(
        Message::GetConfigReply(SwitchConfig {
            flags: 0,
            miss_send_len: 128,
        }),
        &["OFPT_GET_CONFIG_REPLY", "miss_send_len=128"],
    );
    ovs_check(
        Message::PortStatus(PortStatus {
            reason: 0,
            desc: sample_port(5),
        }),
        &["OFPT_PORT_STATUS", "ADD", "5(veth5)", "02:00:00:00:00:05"],
    );
    ovs_check(
        Message::PacketIn(PacketIn {
            buffer_id: NO_BUFFER,
            total_len: 60,
            reason: 1,
            table_id: TableId(2),
            cookie: Cookie(0x99),
            match_: Match {
                fields: vec![
                    OxmField::in_port(PortNo(1)),
                    OxmField::exact(OxmId::Metadata, 7),
                ],
            },
            data: vec![0xff; 60],
        }),
        &[
            "OFPT_PACKET_IN",
            "table_id=2",
            "cookie=0x99",
            "in_port=1",
            "metadata=0x7",
        ],
    );
    ovs_check(
        Message::FlowRemoved(FlowRemoved {
            cookie: Cookie(1),
            priority: 5,
            reason: 0,
            table_id: TableId(0),
            duration_sec: 3,
            duration_nsec: 0,
            idle_timeout: 3,
            hard_timeout: 0,
            packet_count: 4,
            byte_count: 400,
            match_: sample_match(),
        }),
        &[
            "OFPT_FLOW_REMOVED",
            "tp_dst=80",
            "nw_dst=10.0.0.0/8",
            "idle",
        ],
    );
    let err = encode_error_reply(0x42, OfpError::BadPrereq, &hello);
    if let Some(t) = ovs_print(&err) {
        assert!(t.contains("OFPBMC_BAD_PREREQ"), "{t}");
    }
    let failed = encode_error_reply(0x42, OfpError::HelloIncompatible, b"we speak only 1.3");
    if let Some(t) = ovs_print(&failed) {
        assert!(t.contains("OFPHFC_INCOMPATIBLE"), "{t}");
    }
    ovs_check(
        Message::RoleReply(RoleMsg {
            role: ControllerRole::Master,
            generation_id: 3,
        }),
        &["OFPT_ROLE_REPLY", "role=primary", "generation_id=3"],
    );
    ovs_check(
        Message::GetAsyncReply(AsyncConfig::default()),
        &["OFPT_GET_ASYNC_REPLY", "PACKET_IN", "no_match action"],
    );
    ovs_check(Message::BarrierReply, &["OFPT_BARRIER_REPLY"]);
    ovs_check(Message::EchoReply(vec![1, 2, 3]), &["OFPT_ECHO_REPLY"]);
    ovs_check(
        Message::QueueGetConfigReply { port: PortNo(1) },
        &["OFPT_QUEUE_GET_CONFIG_REPLY"],
    );
}

#[test]
fn ovs_accepts_every_multipart_reply() {
    ovs_check(
        reply(MpReplyBody::Desc(DescStats {
            mfr_desc: "rvswitchd project".into(),
            hw_desc: "software".into(),
            sw_desc: "0.1.0".into(),
            serial_num: "none".into(),
            dp_desc: "br0".into(),
        })),
        &[
            "OFPST_DESC reply",
            "Manufacturer: rvswitchd project",
            "DP Description: br0",
        ],
    );
    ovs_check(
        reply(MpReplyBody::Flow(vec![
            sample_flow_stats(),
            sample_flow_stats(),
        ])),
        &[
            "OFPST_FLOW reply",
            "cookie=0xabc",
            "table=1",
            "tp_dst=80",
            "meter:1",
            "push_vlan:0x8100",
            "set_field:02:00:00:00:00:01->eth_dst",
            "write_metadata:0x5/0xff",
            "goto_table:3",
            "write_actions(group:7)",
            "CONTROLLER:128",
        ],
    );
    ovs_check(
        reply(MpReplyBody::Aggregate(AggregateStats {
            packet_count: 1,
            byte_count: 2,
            flow_count: 3,
        })),
        &["OFPST_AGGREGATE reply", "flow_count=3"],
    );
    ovs_check(
        reply(MpReplyBody::Table(vec![TableStats {
            table_id: TableId(0),
            active_count: 4,
            lookup_count: 10,
            matched_count: 8,
        }])),
        &["OFPST_TABLE reply", "active=4"],
    );
    ovs_check(
        reply(MpReplyBody::PortStats(vec![PortStats {
            port_no: PortNo(1),
            rx_packets: 5,
            tx_bytes: 99,
            duration_sec: 1,
            ..Default::default()
        }])),
        &["OFPST_PORT reply", "rx pkts=5", "bytes=99"],
    );
    ovs_check(reply(MpReplyBody::Queue), &["OFPST_QUEUE reply"]);
    ovs_check(
        reply(MpReplyBody::Group(vec![GroupStats {
            group_id: GroupId(7),
            ref_count: 1,
            packet_count: 3,
            byte_count: 4,
            duration_sec: 1,
            duration_nsec: 0,
            bucket_stats: vec![(1, 2), (2, 2)],
        }])),
        &["OFPST_GROUP reply", "group_id=7", "bucket1:packet_count=2"],
    );
    ovs_check(
        reply(MpReplyBody::GroupDesc(vec![GroupDesc {
            group_type: GroupType::Select,
            group_id: GroupId(7),
            buckets: sample_buckets(),
        }])),
        &[
            "OFPST_GROUP_DESC reply",
            "group_id=7,type=select",
            "weight:2",
            "set_field:10.0.0.1->ip_src",
        ],
    );
    ovs_check(
        reply(MpReplyBody::GroupFeatures(GroupFeatures {
            types: 0xf,
            capabilities: 0x5,
            max_groups: [100; 4],
            actions: [1; 4],
        })),
        &["OFPST_GROUP_FEATURES reply", "select"],
    );
    ovs_check(
        reply(MpReplyBody::Meter(vec![MeterStats {
            meter_id: MeterId(1),
            flow_count: 2,
            packet_in_count: 3,
            byte_in_count: 4,
            duration_sec: 5,
            duration_nsec: 6,
            band_stats: vec![(7, 8)],
        }])),
        &[
            "OFPST_METER reply",
            "meter:1",
            "flow_count:2",
            "0: packet_count:7",
        ],
    );
    ovs_check(
        reply(MpReplyBody::MeterConfig(vec![MeterConfig {
            flags: MF_KBPS | MF_BURST | MF_STATS,
            meter_id: MeterId(1),
            bands: vec![
                MeterBand::Drop {
                    rate: 1000,
                    burst_size: 100,
                },
                MeterBand::DscpRemark {
                    rate: 2000,
                    burst_size: 10,
                    prec_level: 1,
                },
            ],
        }])),
        &[
            "OFPST_METER_CONFIG reply",
            "meter=1",
            "type=drop rate=1000",
            "dscp_remark",
        ],
    );
    ovs_check(
        reply(MpReplyBody::MeterFeatures(MeterFeatures {
            max_meter: 1000,
            band_types: 0x6,
            capabilities: 0xf,
            max_bands: 4,
            max_color: 0,
        })),
        &["OFPST_METER_FEATURES reply", "max_meter:1000"],
    );
    ovs_check(
        reply(MpReplyBody::TableFeatures(vec![
            sample_table_features(0),
            sample_table_features(1),
        ])),
        &[
            "OFPST_TABLE_FEATURES reply",
            "table 0",
            "table1",
            "goto_table",
        ],
    );
    ovs_check(
        reply(MpReplyBody::PortDesc(vec![sample_port(1), sample_port(2)])),
        &[
            "OFPST_PORT_DESC reply",
            "1(veth1)",
            "2(veth2)",
            "10000 Mbps",
        ],
    );
}

#[test]
fn ovs_accepts_split_table_features() {
    let mut msgs = Vec::new();
    let tables: Vec<_> = (0..254).map(sample_table_features).collect();
    encode_multipart_reply_split(3, &MpReplyBody::TableFeatures(tables.clone()), &mut msgs)
        .unwrap();
    assert!(msgs.len() > 1);
    let mut got = Vec::new();
    for m in &msgs {
        let Message::MultipartReply(r) = decode(m).unwrap().body else {
            panic!()
        };
        let MpReplyBody::TableFeatures(v) = r.body else {
            panic!()
        };
        got.extend(v);
        if let Some(t) = ovs_print(m) {
            assert!(t.contains("OFPST_TABLE_FEATURES reply"));
        }
    }
    assert_eq!(got, tables);
}

#[test]
fn ovs_accepts_controller_to_switch_messages() {
    ovs_check(
        Message::FlowMod(FlowMod {
            cookie: Cookie(0x10),
            cookie_mask: 0,
            table_id: TableId(0),
            command: FlowModCommand::Add,
            idle_timeout: 30,
            hard_timeout: 0,
            priority: 100,
            buffer_id: NO_BUFFER,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            flags: FF_SEND_FLOW_REM,
            match_: sample_match(),
            instructions: sample_instructions(),
        }),
        &["OFPT_FLOW_MOD", "ADD", "tp_dst=80", "idle:30"],
    );
    ovs_check(
        Message::GroupMod(GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::FastFailover,
            group_id: GroupId(1),
            buckets: vec![Bucket {
                weight: 0,
                watch_port: PortNo(1),
                watch_group: GroupId::ANY,
                actions: vec![Action::Output {
                    port: PortNo(1),
                    max_len: 0,
                }],
            }],
        }),
        &["OFPT_GROUP_MOD", "type=ff", "watch_port:1"],
    );
    ovs_check(
        Message::MeterMod(MeterMod {
            command: MeterModCommand::Add,
            flags: MF_PKTPS,
            meter_id: MeterId(2),
            bands: vec![MeterBand::Drop {
                rate: 10,
                burst_size: 0,
            }],
        }),
        &["OFPT_METER_MOD", "meter=2", "pktps"],
    );
    ovs_check(
        Message::PacketOut(PacketOut {
            buffer_id: NO_BUFFER,
            in_port: PortNo::CONTROLLER,
            actions: vec![Action::Output {
                port: PortNo::FLOOD,
                max_len: 0,
            }],
            data: vec![0xff; 60],
        }),
        &["OFPT_PACKET_OUT", "actions=FLOOD"],
    );
    ovs_check(
        Message::PortMod(PortMod {
            port_no: PortNo(1),
            hw_addr: MacAddr([2, 0, 0, 0, 0, 1]),
            config: 1,
            mask: 1,
            advertise: 0,
        }),
        &["OFPT_PORT_MOD", "port: 1"],
    );
    ovs_check(
        Message::SetAsync(AsyncConfig::default()),
        &["OFPT_SET_ASYNC"],
    );
    ovs_check(
        Message::RoleRequest(RoleMsg {
            role: ControllerRole::Slave,
            generation_id: 1,
        }),
        &["OFPT_ROLE_REQUEST", "role=secondary"],
    );
    ovs_check(
        request(MpRequestBody::Flow(FlowStatsRequest {
            table_id: TableId::ALL,
            out_port: PortNo::ANY,
            out_group: GroupId::ANY,
            cookie: Cookie(0),
            cookie_mask: 0,
            match_: sample_match(),
        })),
        &["OFPST_FLOW request", "tp_dst=80"],
    );
    ovs_check(
        request(MpRequestBody::PortStats(PortNo::ANY)),
        &["OFPST_PORT request"],
    );
    ovs_check(
        request(MpRequestBody::Meter(MeterId::ALL)),
        &["OFPST_METER request"],
    );
    ovs_check(
        request(MpRequestBody::Group(GroupId::ALL)),
        &["OFPST_GROUP request"],
    );
    ovs_check(
        request(MpRequestBody::TableFeatures(vec![])),
        &["OFPST_TABLE_FEATURES request"],
    );
    ovs_check(
        request(MpRequestBody::PortDesc),
        &["OFPST_PORT_DESC request"],
    );
}

/// Play a switch on a Unix socket while `ovs-ofctl` sends us `args`; return the
/// raw bytes of every message it sent besides HELLO and BARRIER_REQUEST.
fn capture_from_ovs(args: &[&str]) -> Option<Vec<Vec<u8>>> {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixListener;
    if !ovs_available() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switch.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let target = format!("unix:{}", path.display());
    let mut cmd = std::process::Command::new(OVS_OFCTL);
    cmd.args(["-O", "OpenFlow13", args[0], &target])
        .args(&args[1..]);
    let mut child = cmd.spawn().unwrap();
    let mut got = Vec::new();
    // ovs-ofctl may open one connection to learn table names, close it, then open
    // another for the real work; serve connections until one that sent a
    // barrier hangs up.
    let mut barrier_seen = false;
    'conns: loop {
        let mut s = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if let Some(st) = child.try_wait().unwrap() {
                        panic!("ovs-ofctl exited early: {st}");
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut hello = Vec::new();
        encode_hello(0, &mut hello);
        s.write_all(&hello).unwrap();
        loop {
            let mut m = vec![0u8; 8];
            if s.read_exact(&mut m).is_err() {
                // The peer hung up: done if it finished its work with a barrier.
                if barrier_seen {
                    break 'conns;
                }
                continue 'conns;
            }
            let len = frame_len(&m).unwrap().unwrap();
            m.resize(len, 0);
            s.read_exact(&mut m[8..]).unwrap();
            let d = decode(&m).unwrap_or_else(|e| panic!("{e} decoding {m:02x?}"));
            let answer = match d.body {
                Message::Hello { .. } => None,
                // ovs-ofctl asks for table names first (and rejects an empty
                // reply, so there is always at least one table).
                Message::MultipartRequest(MultipartRequest {
                    body: MpRequestBody::TableFeatures(_),
                    ..
                }) => Some(reply(MpReplyBody::TableFeatures(vec![
                    sample_table_features(0),
                ]))),
                Message::MultipartRequest(MultipartRequest {
                    body: MpRequestBody::PortDesc,
                    ..
                }) => Some(reply(MpReplyBody::PortDesc(vec![
                    sample_port(1),
                    sample_port(2),
                ]))),
                Message::BarrierRequest => Some(Message::BarrierReply),
                _ => {
                    got.push(m);
                    None
                }
            };
            if let Some(body) = answer {
                barrier_seen |= body == Message::BarrierReply;
                let r = OfpMsg { xid: d.xid, body };
                s.write_all(&encode_to_vec(&r).unwrap()).unwrap();
            }
        }
    }
    assert!(child.wait().unwrap().success());
    Some(got)
}

#[test]
fn ovs_encoded_flow_mods_decode_and_reencode_identically() {
    let flows = "\
priority=100,tcp,in_port=3,nw_dst=10.0.0.0/8,tp_dst=80,actions=output:2
table=1,cookie=0x5,udp6,ipv6_src=2001:db8::/32,udp_src=53,actions=dec_ttl,set_field:10->ip_dscp,output:NORMAL
priority=5,arp,arp_op=1,arp_tpa=10.0.0.1,actions=push_vlan:0x8100,set_field:4106->vlan_vid,CONTROLLER:65535
dl_vlan=10,dl_vlan_pcp=3,actions=pop_vlan,group:1,goto_table:4
icmp6,icmp_type=135,nd_target=fe80::1,nd_sll=02:00:00:00:00:01,actions=meter:3,clear_actions,write_actions(output:1)
mpls,mpls_label=100,mpls_bos=1,actions=pop_mpls:0x0800,set_queue:2,write_metadata:0x10/0xff
ip,nw_src=1.2.3.4,ip_ecn=1,actions=mod_nw_ttl:3,push_mpls:0x8847,set_mpls_ttl:9,dec_mpls_ttl,output:IN_PORT
metadata=0x5/0xf,tun_id=0x99,dl_src=02:00:00:00:00:00/01:00:00:00:00:00,sctp,sctp_dst=9,actions=set_field:00:11:22:33:44:55->eth_src,set_field:80->sctp_dst
priority=0,actions=drop
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flows");
    std::fs::write(&file, flows).unwrap();
    let Some(msgs) = capture_from_ovs(&["add-flows", file.to_str().unwrap()]) else {
        eprintln!("ovs-ofctl not installed; skipping");
        return;
    };
    assert_eq!(msgs.len(), 9);
    for m in &msgs {
        let d = decode(m).unwrap();
        assert!(matches!(d.body, Message::FlowMod(_)), "{d:?}");
        assert_eq!(&encode_to_vec(&d).unwrap(), m, "re-encoding of {d:?}");
    }
    let Message::FlowMod(f) = decode(&msgs[0]).unwrap().body else {
        panic!()
    };
    assert_eq!(f.priority, 100);
    assert_eq!(f.match_.get(OxmId::TcpDst).unwrap().value, 80);
    assert_eq!(
        f.match_.get(OxmId::Ipv4Dst).unwrap().mask,
        Some(0xff00_0000)
    );
    assert_eq!(check_prerequisites(&f.match_), Ok(()));
    assert_eq!(
        f.instructions,
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: PortNo(2),
            max_len: 0
        }])]
    );
    for m in &msgs {
        let Message::FlowMod(f) = decode(m).unwrap().body else {
            panic!()
        };
        assert_eq!(check_prerequisites(&f.match_), Ok(()), "{f:?}");
    }
}

#[test]
fn ovs_encoded_group_and_meter_mods_decode_and_reencode_identically() {
    let Some(g) = capture_from_ovs(&[
        "add-group",
        "group_id=1,type=select,bucket=weight:5,output:1,bucket=weight:7,set_field:10.0.0.1->ip_dst,output:2",
    ]) else {
        return;
    };
    let Some(mt) = capture_from_ovs(&[
        "add-meter",
        "meter=3,kbps,burst,stats,bands=type=drop,rate=1000,burst_size=50",
    ]) else {
        return;
    };
    for m in g.iter().chain(&mt) {
        let d = decode(m).unwrap();
        assert_eq!(&encode_to_vec(&d).unwrap(), m, "re-encoding of {d:?}");
    }
    let Message::GroupMod(gm) = decode(&g[0]).unwrap().body else {
        panic!()
    };
    assert_eq!(gm.group_type, GroupType::Select);
    assert_eq!(gm.buckets.len(), 2);
    assert_eq!(gm.buckets[1].weight, 7);
    let Message::MeterMod(mm) = decode(&mt[0]).unwrap().body else {
        panic!()
    };
    assert_eq!(mm.meter_id, MeterId(3));
    assert_eq!(
        mm.bands,
        vec![MeterBand::Drop {
            rate: 1000,
            burst_size: 50
        }]
    );
}

#[path = "tests_versions.rs"]
mod versions;
