//! The state file: round trip through the request path, hard timeouts, and
//! every kind of file that must be refused (never a panic).

use super::*;
use crate::ofproto::request::{Effects, Op, Requests};
use crate::ofproto::view::XlateView;
use crate::ofproto::{GroupMap, Ofproto, Rule};
use crate::openflow::action::{Action, Instruction};
use crate::openflow::message::{
    Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType, MeterBand, MeterMod,
    MeterModCommand, FF_CHECK_OVERLAP, FF_SEND_FLOW_REM, MF_KBPS, MF_PKTPS, NO_BUFFER,
};
use crate::openflow::oxm::{Match, OxmField, OxmId};
use crate::types::{Cookie, DatapathId, GroupId, MeterId, PortNo, TableId};
use std::sync::Arc;

fn meta() -> StateMeta {
    StateMeta {
        daemon_version: "1.2.3".into(),
        fingerprint: 0xfeed_f00d,
    }
}

fn out(p: u32) -> Action {
    Action::Output {
        port: PortNo(p),
        max_len: 0,
    }
}

fn ip_src(n: u128) -> Match {
    Match {
        fields: vec![
            OxmField::exact(OxmId::EthType, 0x800),
            OxmField::exact(OxmId::Ipv4Src, n),
        ],
    }
}

#[allow(clippy::too_many_arguments)]
fn flow(
    table: u8,
    prio: u16,
    cookie: u64,
    flags: u16,
    idle: u16,
    hard: u16,
    match_: Match,
    instructions: Vec<Instruction>,
) -> FlowMod {
    FlowMod {
        cookie: Cookie(cookie),
        cookie_mask: 0,
        table_id: TableId(table),
        command: FlowModCommand::Add,
        idle_timeout: idle,
        hard_timeout: hard,
        priority: prio,
        buffer_id: NO_BUFFER,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags,
        match_,
        instructions,
    }
}

fn group(id: u32, t: GroupType, actions: Vec<Vec<Action>>) -> GroupMod {
    GroupMod {
        command: GroupModCommand::Add,
        group_type: t,
        group_id: GroupId(id),
        buckets: actions
            .into_iter()
            .map(|actions| Bucket {
                weight: 0,
                watch_port: PortNo::ANY,
                watch_group: GroupId::ANY,
                actions,
            })
            .collect(),
    }
}

fn meter(id: u32, flags: u16, rate: u32) -> MeterMod {
    MeterMod {
        command: MeterModCommand::Add,
        flags,
        meter_id: MeterId(id),
        bands: vec![MeterBand::Drop {
            rate,
            burst_size: 0,
        }],
    }
}

/// A switch holding two meters, a chain of groups whose parent has the
/// lower id (so id order alone would not restore), and rules in two tables
/// with every field a rule carries.
fn populated() -> Ofproto {
    let mut o = Ofproto::new(DatapathId(7), "t");
    o.meter_mod(&meter(1, MF_KBPS, 1000), 0).unwrap();
    o.meter_mod(&meter(9, MF_PKTPS, 50), 0).unwrap();
    o.group_mod(
        &group(5, GroupType::All, vec![vec![out(1)], vec![out(2)]]),
        0,
    )
    .unwrap();
    o.group_mod(
        &group(
            1,
            GroupType::Indirect,
            vec![vec![Action::Group(GroupId(5))]],
        ),
        0,
    )
    .unwrap();
    let adds = [
        flow(
            0,
            100,
            0xabc,
            FF_SEND_FLOW_REM,
            30,
            0,
            ip_src(1),
            vec![
                Instruction::Meter(MeterId(1)),
                Instruction::ApplyActions(vec![Action::Group(GroupId(1))]),
            ],
        ),
        flow(
            0,
            200,
            0x1,
            FF_CHECK_OVERLAP,
            0,
            0,
            ip_src(2),
            vec![Instruction::GotoTable(TableId(1))],
        ),
        flow(0, 0, 0, 0, 0, 0, Match::default(), vec![]),
        flow(
            1,
            7,
            u64::MAX,
            0,
            0,
            60,
            Match::default(),
            vec![
                Instruction::Meter(MeterId(9)),
                Instruction::ApplyActions(vec![out(3)]),
            ],
        ),
    ];
    for f in &adds {
        o.flow_mod(f, 0).unwrap();
    }
    o
}

/// Table, priority, cookie, flags, idle and hard timeouts, match, instructions.
type RuleView = (u8, u16, u64, u16, u16, u16, Vec<u8>, Vec<Instruction>);

/// What a rule is, for comparing tables (not its id, time or counters).
fn rule_view(r: &Rule) -> RuleView {
    (
        r.table_id.0,
        r.priority,
        r.cookie.0,
        r.flags,
        r.idle_timeout,
        r.hard_timeout,
        r.match_oxm().to_vec(),
        r.instructions.to_vec(),
    )
}

fn rules(o: &Ofproto) -> Vec<RuleView> {
    let mut v = Vec::new();
    for t in 0..crate::ofproto::N_TABLES {
        if let Some(tab) = o.table(TableId(t as u8)) {
            tab.for_each(|r| v.push(rule_view(r)));
        }
    }
    // Table, priority and match identify a rule.
    v.sort_by(|a, b| (a.0, a.1, &a.6).cmp(&(b.0, b.1, &b.6)));
    v
}

/// Restores `bytes` into a fresh switch; returns it with what happened.
fn restore_into(bytes: &[u8], now: u64) -> (Ofproto, Restored, Effects) {
    let saved = decode(bytes, &meta()).expect("the file is accepted");
    let mut o = Ofproto::new(DatapathId(7), "t");
    // What a standalone bridge starts with: the saved tables replace it.
    o.add_default_normal_flow(1).unwrap();
    let view = XlateView::new("br0", o.publish(), 100, 300_000);
    let mut rq = Requests {
        ofproto: &mut o,
        view: &view,
        port_counters: &|_| None,
    };
    let mut fx = Effects::default();
    let r = restore(&mut rq, &saved, now, &mut fx);
    (o, r, fx)
}

#[test]
fn round_trip_keeps_rules_groups_meters() {
    let mut o = populated();
    let snap = o.publish();
    let e = encode(&snap, &meta(), 1, 1_700_000_000);
    assert_eq!((e.rules, e.groups, e.meters), (4, 2, 2));
    assert_eq!((e.expired, e.unencodable), (0, 0));
    let saved = decode(&e.bytes, &meta()).unwrap();
    assert_eq!((saved.rules, saved.groups, saved.meters), (4, 2, 2));
    assert_eq!(saved.saved_wall_secs, 1_700_000_000);

    let (mut r, restored, fx) = restore_into(&e.bytes, 5000);
    assert_eq!(
        restored,
        Restored {
            rules: 4,
            groups: 2,
            meters: 2,
            refused: 0,
            refusals: vec![],
        }
    );
    assert!(fx.answers.is_empty(), "no answers left: {:?}", fx.answers);
    // Hard timeout 60 s written 1 ms after creation: 60 s left (rounded up).
    assert_eq!(rules(&r), rules(&o));
    let ids = |m: &GroupMap| {
        let mut v: Vec<_> = m
            .values()
            .map(|g| (g.id, g.group_type, g.buckets.clone()))
            .collect();
        v.sort_by_key(|x| x.0);
        v
    };
    let rs = r.publish();
    assert_eq!(ids(&rs.groups), ids(&snap.groups));
    let mut ms: Vec<_> = rs
        .meters
        .values()
        .map(|m| (m.id, m.flags, m.bands.clone()))
        .collect();
    ms.sort_by_key(|x| x.0);
    assert_eq!(
        ms,
        vec![
            (MeterId(1), MF_KBPS, meter(1, 0, 1000).bands),
            (MeterId(9), MF_PKTPS, meter(9, 0, 50).bands)
        ]
    );
    // The datapath is told about the meters, as for a controller's METER_MOD.
    let set: Vec<_> = fx
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::SetMeter { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(set, vec![MeterId(1), MeterId(9)]);
    // Encoding is deterministic for the same tables.
    let again = encode(&rs, &meta(), 1, 1_700_000_000);
    assert_eq!(again.bytes.len(), e.bytes.len());
}

#[test]
fn hard_timeouts_keep_what_was_left_and_expired_rules_are_left_out() {
    let mut o = Ofproto::new(DatapathId(7), "t");
    o.flow_mod(&flow(0, 1, 1, 0, 0, 10, ip_src(1), vec![]), 0)
        .unwrap();
    o.flow_mod(&flow(0, 2, 2, 0, 0, 2, ip_src(2), vec![]), 0)
        .unwrap();
    o.flow_mod(&flow(0, 3, 3, 0, 5, 0, ip_src(3), vec![]), 0)
        .unwrap();
    let e = encode(&o.publish(), &meta(), 3500, 0);
    assert_eq!((e.rules, e.expired), (2, 1));
    let (r, restored, _) = restore_into(&e.bytes, 100_000);
    assert_eq!(restored.rules, 2);
    let got: Vec<(u64, u16, u16)> = rules(&r).into_iter().map(|x| (x.2, x.4, x.5)).collect();
    // 6.5 s left of 10 s: 7 s; the idle timeout is whole.
    assert_eq!(got, vec![(1, 0, 7), (3, 5, 0)]);
    // Restored at 100 s: both timeouts count from there (idle 5 s first).
    assert_eq!(r.next_timeout_in(100_000), Some(5_000));
    assert_eq!(remaining_hard_timeout(10, 0, 10_000), None);
    assert_eq!(remaining_hard_timeout(10, 0, 9_001), Some(1));
    assert_eq!(remaining_hard_timeout(0, 0, u64::MAX), Some(0));
}

#[test]
fn an_entry_the_switch_refuses_now_is_counted_and_the_rest_restored() {
    let mut o = Ofproto::new(DatapathId(7), "t");
    o.group_mod(&group(3, GroupType::All, vec![vec![out(1)]]), 0)
        .unwrap();
    o.flow_mod(
        &flow(
            0,
            1,
            1,
            0,
            0,
            0,
            ip_src(1),
            vec![Instruction::ApplyActions(vec![Action::Group(GroupId(3))])],
        ),
        0,
    )
    .unwrap();
    o.flow_mod(&flow(0, 2, 2, 0, 0, 0, ip_src(2), vec![]), 0)
        .unwrap();
    let s = o.publish();
    // The same tables without the group the first rule needs.
    let forged = crate::ofproto::TablesSnapshot {
        version: s.version,
        dpid: s.dpid,
        tables: s.tables.clone(),
        groups: Arc::new(GroupMap::new()),
        meters: s.meters.clone(),
        ports: s.ports.clone(),
        counters: s.counters.clone(),
    };
    let e = encode(&forged, &meta(), 1, 0);
    let (r, restored, fx) = restore_into(&e.bytes, 1);
    assert_eq!((restored.rules, restored.refused), (1, 1));
    assert!(
        restored.refusals[0].contains("Rule entry"),
        "{:?}",
        restored.refusals
    );
    assert_eq!(r.n_rules(), 1);
    assert!(fx.answers.is_empty());
}

#[test]
fn every_truncation_and_every_flipped_byte_is_refused() {
    let mut o = populated();
    let e = encode(&o.publish(), &meta(), 1, 0);
    for n in 0..e.bytes.len() {
        let r = decode(&e.bytes[..n], &meta());
        assert!(r.is_err(), "a {n}-byte prefix was accepted");
    }
    for i in 0..e.bytes.len() {
        let mut b = e.bytes.clone();
        b[i] ^= 0x10;
        assert!(
            decode(&b, &meta()).is_err(),
            "byte {i} flipped was accepted"
        );
    }
    let mut longer = e.bytes.clone();
    longer.push(0);
    assert!(decode(&longer, &meta()).is_err());
}

#[test]
fn foreign_files_are_refused_with_their_reason() {
    let mut o = populated();
    let snap = o.publish();
    let e = encode(&snap, &meta(), 1, 0);
    assert_eq!(decode(b"", &meta()).unwrap_err(), Refused::NotStateFile);
    assert_eq!(
        decode(b"[daemon]\nlog_level = 1\n", &meta()).unwrap_err(),
        Refused::NotStateFile
    );
    let other_version = StateMeta {
        daemon_version: "9.9.9".into(),
        ..meta()
    };
    let err = decode(&e.bytes, &other_version).unwrap_err();
    assert_eq!(err.reason(), RefusedReason::Version);
    assert!(err.to_string().contains("1.2.3"), "{err}");
    let other_config = StateMeta {
        fingerprint: 1,
        ..meta()
    };
    assert_eq!(
        decode(&e.bytes, &other_config).unwrap_err(),
        Refused::Config
    );
    assert_eq!(Refused::Config.reason(), RefusedReason::Config);

    // Another format number, checksum fixed up: refused as a version.
    let mut f = e.bytes.clone();
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    let n = f.len();
    let crc = crc32(&f[..n - 4]);
    f[n - 4..].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(
        decode(&f, &meta()).unwrap_err(),
        Refused::Format { found: 2 }
    );
}

/// A header with the right checksum around a hostile body.
fn forged(counts: [u32; 3], body: &[u8]) -> Vec<u8> {
    let m = meta();
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(&FORMAT.to_be_bytes());
    f.extend_from_slice(&(m.daemon_version.len() as u16).to_be_bytes());
    f.extend_from_slice(m.daemon_version.as_bytes());
    f.extend_from_slice(&m.fingerprint.to_be_bytes());
    f.extend_from_slice(&0u64.to_be_bytes());
    for c in counts {
        f.extend_from_slice(&c.to_be_bytes());
    }
    f.extend_from_slice(body);
    let crc = crc32(&f);
    f.extend_from_slice(&crc.to_be_bytes());
    f
}

#[test]
fn checksummed_files_with_hostile_bodies_are_refused() {
    // Counts that the body cannot hold (no decoding is tried).
    let huge = forged([u32::MAX, u32::MAX, u32::MAX], &[]);
    assert!(matches!(decode(&huge, &meta()), Err(Refused::Corrupt(_))));
    // Fewer entries than the counts say; more; garbage.
    assert!(matches!(
        decode(&forged([0, 0, 2], &[]), &meta()),
        Err(Refused::Corrupt(_))
    ));
    assert!(matches!(
        decode(&forged([0, 0, 0], &[0; 16]), &meta()),
        Err(Refused::Corrupt(_))
    ));
    assert!(matches!(
        decode(&forged([0, 0, 1], &[4, 14, 0, 3, 0, 0, 0, 0]), &meta()),
        Err(Refused::Corrupt(_))
    ));
    // A valid message in the wrong place: a BARRIER_REQUEST as a rule.
    assert!(matches!(
        decode(&forged([0, 0, 1], &[4, 20, 0, 8, 0, 0, 0, 0]), &meta()),
        Err(Refused::Corrupt(_))
    ));
    // A real rule is accepted where a rule goes, refused where a meter does.
    let mut o = Ofproto::new(DatapathId(7), "t");
    o.flow_mod(&flow(0, 1, 1, 0, 0, 0, ip_src(1), vec![]), 0)
        .unwrap();
    let e = encode(&o.publish(), &meta(), 1, 0);
    let header_len = 8 + 4 + 2 + meta().daemon_version.len() + 8 + 8 + 12;
    let body = &e.bytes[header_len..e.bytes.len() - 4];
    assert!(decode(&forged([0, 0, 1], body), &meta()).is_ok());
    assert!(matches!(
        decode(&forged([1, 0, 0], body), &meta()),
        Err(Refused::Corrupt(_))
    ));
}

#[test]
fn crc32_is_the_ieee_one() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
}
