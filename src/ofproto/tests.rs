//! Tests of FLOW_MOD/GROUP_MOD/METER_MOD/PORT_MOD semantics, snapshots and
//! translation, including the megaflow property test.

use super::mac_learning::MacLearning;
use super::rule::{PortInfo, PC_NO_FLOOD, PC_NO_RECV, PC_PORT_DOWN, PS_LINK_DOWN};
use super::xlate::{translate, translate_actions, XlateOptions, XlateOutput, SLOW_CONTROLLER};
use super::*;
use crate::datapath::actions::{DpAction, UserspaceReason};
use crate::datapath::flow::{Field, FlowKey, VLAN_CFI};
use crate::openflow::action::{Action, Instruction};
use crate::openflow::message::{
    Bucket, FlowMod, FlowModCommand, FlowStatsRequest, GroupMod, GroupModCommand, GroupType,
    MeterBand, MeterMod, MeterModCommand, PortMod, FF_CHECK_OVERLAP, FF_RESET_COUNTS,
    FF_SEND_FLOW_REM, MF_KBPS,
};
use crate::openflow::oxm::{Match, OxmField, OxmId};
use crate::types::{Cookie, DatapathId, GroupId, MacAddr, MeterId, PortNo, TableId};
use std::sync::atomic::Ordering;

fn mac(n: u8) -> MacAddr {
    MacAddr([2, 0, 0, 0, 0, n])
}

fn m(fields: &[(OxmId, u128)]) -> Match {
    Match {
        fields: fields
            .iter()
            .map(|&(id, v)| OxmField::exact(id, v))
            .collect(),
    }
}

fn out(p: u32) -> Action {
    Action::Output {
        port: PortNo(p),
        max_len: 0,
    }
}

fn apply(a: Vec<Action>) -> Vec<Instruction> {
    vec![Instruction::ApplyActions(a)]
}

fn fm(cmd: FlowModCommand, table: u8, prio: u16, match_: Match, ins: Vec<Instruction>) -> FlowMod {
    FlowMod::new(cmd, TableId(table), prio, match_, ins)
}

fn add(table: u8, prio: u16, match_: Match, ins: Vec<Instruction>) -> FlowMod {
    fm(FlowModCommand::Add, table, prio, match_, ins)
}

fn ip_src(n: u128) -> Match {
    m(&[(OxmId::EthType, 0x800), (OxmId::Ipv4Src, n)])
}

fn switch(nports: u32) -> Ofproto {
    let mut o = Ofproto::new(DatapathId(1), "br0");
    for p in 1..=nports {
        o.add_port(PortInfo::new(PortNo(p), &format!("p{p}"), mac(p as u8)));
    }
    o
}

fn key(in_port: u32) -> FlowKey {
    let mut k = FlowKey::default();
    k.set(Field::InPort, in_port as u128);
    k.set(Field::DlSrc, mac(0xa1).to_u64() as u128);
    k.set(Field::DlDst, mac(0xb2).to_u64() as u128);
    k.set(Field::DlType, 0x800);
    k.set(Field::NwSrc, 0x0a000001);
    k.set(Field::NwDst, 0x0a000002);
    k.set(Field::NwProto, 6);
    k.set(Field::NwTtl, 64);
    k.set(Field::TpSrc, 1234);
    k.set(Field::TpDst, 80);
    k
}

fn xl(o: &mut Ofproto, ml: &MacLearning, k: &FlowKey) -> XlateOutput {
    let snap = o.publish();
    translate(
        &snap,
        ml,
        k,
        &XlateOptions {
            may_learn: true,
            now_ms: 1,
            ..Default::default()
        },
    )
}

fn all_stats() -> FlowStatsRequest {
    FlowStatsRequest {
        table_id: TableId::ALL,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        cookie: Cookie(0),
        cookie_mask: 0,
        match_: Match::default(),
    }
}

// ---- FLOW_MOD ---------------------------------------------------------------------

#[test]
fn add_rejects_bad_tables_and_replace_keeps_counters() {
    let mut o = switch(2);
    assert_eq!(
        o.flow_mod(&add(255, 1, Match::default(), vec![]), 0).err(),
        Some(OfpError::BadTableId)
    );
    assert_eq!(
        o.flow_mod(&add(254, 1, Match::default(), vec![]), 0).err(),
        Some(OfpError::BadTableId)
    );
    let r = o
        .flow_mod(&add(0, 5, ip_src(1), apply(vec![out(1)])), 0)
        .unwrap()
        .added
        .unwrap();
    r.add_stats(10, 1000, 5);
    // Same match and priority: replaced, counters kept.
    let r2 = o
        .flow_mod(&add(0, 5, ip_src(1), apply(vec![out(2)])), 100)
        .unwrap()
        .added
        .unwrap();
    assert_eq!(r2.stats(), (10, 1000));
    assert_eq!(o.n_rules(), 1);
    // With RESET_COUNTS: zeroed.
    let mut f = add(0, 5, ip_src(1), apply(vec![out(2)]));
    f.flags = FF_RESET_COUNTS;
    let r3 = o.flow_mod(&f, 200).unwrap().added.unwrap();
    assert_eq!(r3.stats(), (0, 0));
    // Different priority is a different rule.
    o.flow_mod(&add(0, 6, ip_src(1), vec![]), 0).unwrap();
    assert_eq!(o.n_rules(), 2);
}

#[test]
fn check_overlap() {
    let mut o = switch(1);
    o.flow_mod(&add(0, 10, ip_src(1), vec![]), 0).unwrap();
    let mut f = add(0, 10, m(&[(OxmId::EthType, 0x800)]), vec![]);
    f.flags = FF_CHECK_OVERLAP;
    assert_eq!(o.flow_mod(&f, 0).err(), Some(OfpError::Overlap));
    f.priority = 11;
    assert!(o.flow_mod(&f, 0).is_ok());
    let mut g = add(0, 10, ip_src(2), vec![]);
    g.flags = FF_CHECK_OVERLAP;
    assert!(o.flow_mod(&g, 0).is_ok());
    let mut h = add(0, 10, m(&[(OxmId::EthType, 0x806)]), vec![]);
    h.flags = FF_CHECK_OVERLAP;
    assert!(o.flow_mod(&h, 0).is_ok());
}

/// A revalidator may still hold a rule after a MODIFY or an ADD replaced
/// it: what it credits then must reach the rule in the table (OVS forwards
/// through `rule->new_rule`), unless the replacement reset the counts.
#[test]
fn credits_to_a_replaced_rule_reach_its_replacement() {
    let mut o = switch(3);
    let first = o
        .flow_mod(&add(0, 5, ip_src(1), apply(vec![out(1)])), 0)
        .unwrap()
        .added
        .unwrap();
    first.add_stats(2, 200, 10);
    let modify = |o: &mut Ofproto, port: u32| {
        let f = fm(
            FlowModCommand::ModifyStrict,
            0,
            5,
            ip_src(1),
            apply(vec![out(port)]),
        );
        let mut res = o.flow_mod(&f, 0).unwrap();
        assert_eq!(res.modified.len(), 1);
        res.modified.remove(0).1
    };
    let second = modify(&mut o, 2);
    assert_eq!(second.stats(), (2, 200), "totals handed over");
    // The first rule is out of the table; its credits still count.
    first.add_stats(1, 100, 20);
    assert_eq!(second.stats(), (3, 300));
    // Two more replacements: the oldest version's credits reach the newest,
    // and the rules in between keep nothing of their own.
    let third = modify(&mut o, 3);
    let fourth = o
        .flow_mod(&add(0, 5, ip_src(1), apply(vec![out(1)])), 0)
        .unwrap()
        .added
        .unwrap();
    first.add_stats(4, 400, 30);
    second.add_stats(1, 100, 40);
    assert_eq!(fourth.stats(), (8, 800));
    assert_eq!(fourth.last_used_ms(), 40);
    assert_eq!(third.stats(), (3, 300), "third only passed its totals on");
    // RESET_COUNTS: the replacement starts at zero and takes no credits.
    let mut f = add(0, 5, ip_src(1), apply(vec![out(2)]));
    f.flags = FF_RESET_COUNTS;
    let fifth = o.flow_mod(&f, 0).unwrap().added.unwrap();
    fourth.add_stats(1, 100, 50);
    assert_eq!(fifth.stats(), (0, 0));
    let stats = o.flow_stats(&all_stats(), 0).unwrap();
    assert_eq!((stats.len(), stats[0].packet_count), (1, 0));
}

#[test]
fn modify_changes_matching_rules_and_never_adds() {
    let mut o = switch(3);
    let mut a = add(0, 10, ip_src(1), apply(vec![out(1)]));
    a.cookie = Cookie(0x11);
    o.flow_mod(&a, 0).unwrap();
    let mut b = add(0, 20, ip_src(2), apply(vec![out(1)]));
    b.cookie = Cookie(0x22);
    o.flow_mod(&b, 0).unwrap();
    let r = o.table(TableId(0)).unwrap().find_exact(
        &match_::match_to_key(&ip_src(1)).unwrap().0,
        &match_::match_to_key(&ip_src(1)).unwrap().1,
        10,
    );
    r.unwrap().add_stats(3, 300, 1);

    // Modify with no match: no add (OpenFlow 1.3).
    let res = o
        .flow_mod(
            &fm(FlowModCommand::Modify, 0, 0, ip_src(9), apply(vec![out(3)])),
            0,
        )
        .unwrap();
    assert_eq!((res.modified.len(), res.changed), (0, false));
    assert_eq!(o.n_rules(), 2);

    // Non-strict modify on dl_type=ip with a cookie filter: only cookie 0x11.
    let mut md = fm(
        FlowModCommand::Modify,
        0,
        0,
        m(&[(OxmId::EthType, 0x800)]),
        apply(vec![out(3)]),
    );
    md.cookie = Cookie(0x11);
    md.cookie_mask = 0xff;
    assert_eq!(o.flow_mod(&md, 0).unwrap().modified.len(), 1);
    let stats = o.flow_stats(&all_stats(), 0).unwrap();
    for s in &stats {
        let want = if s.cookie == Cookie(0x11) { 3 } else { 1 };
        assert_eq!(s.instructions, apply(vec![out(want)]));
        if s.cookie == Cookie(0x11) {
            assert_eq!(s.packet_count, 3, "modify keeps counters");
            assert_eq!(s.priority, 10);
        }
    }
    // Strict modify needs the exact priority.
    let ms = fm(
        FlowModCommand::ModifyStrict,
        0,
        21,
        ip_src(2),
        apply(vec![out(2)]),
    );
    assert_eq!(o.flow_mod(&ms, 0).unwrap().modified.len(), 0);
    let ms = fm(
        FlowModCommand::ModifyStrict,
        0,
        20,
        ip_src(2),
        apply(vec![out(2)]),
    );
    assert_eq!(o.flow_mod(&ms, 0).unwrap().modified.len(), 1);
    assert_eq!(
        o.flow_mod(
            &fm(FlowModCommand::Modify, 255, 0, Match::default(), vec![]),
            0
        )
        .err(),
        Some(OfpError::BadTableId)
    );
}

#[test]
fn delete_strict_nonstrict_filters_and_all_tables() {
    let mut o = switch(3);
    o.flow_mod(&add(0, 10, ip_src(1), apply(vec![out(1)])), 0)
        .unwrap();
    let mut f = add(0, 20, ip_src(2), apply(vec![out(2)]));
    f.flags = FF_SEND_FLOW_REM;
    f.cookie = Cookie(0xab);
    o.flow_mod(&f, 0).unwrap();
    o.flow_mod(&add(1, 10, ip_src(1), apply(vec![out(2)])), 0)
        .unwrap();
    o.flow_mod(&add(0, 5, Match::default(), apply(vec![out(3)])), 0)
        .unwrap();

    // Strict with wrong priority: nothing.
    let d = fm(FlowModCommand::DeleteStrict, 0, 11, ip_src(1), vec![]);
    assert!(o.flow_mod(&d, 0).unwrap().removed.is_empty());
    // out_port filter across all tables: rules outputting to 2.
    let mut d = fm(FlowModCommand::Delete, 255, 0, Match::default(), vec![]);
    d.out_port = PortNo(2);
    let res = o.flow_mod(&d, 0).unwrap();
    assert_eq!(res.removed.len(), 2);
    assert!(res.removed.iter().any(|r| r.send_flow_removed()));
    assert_eq!(o.n_rules(), 2);
    // Cookie filter that matches nothing.
    let mut d = fm(FlowModCommand::Delete, 0, 0, Match::default(), vec![]);
    d.cookie = Cookie(0x77);
    d.cookie_mask = u64::MAX;
    assert!(o.flow_mod(&d, 0).unwrap().removed.is_empty());
    // Non-strict delete with a match only removes rules at least as specific.
    let d = fm(
        FlowModCommand::Delete,
        0,
        0,
        m(&[(OxmId::EthType, 0x800)]),
        vec![],
    );
    let res = o.flow_mod(&d, 0).unwrap();
    assert_eq!(res.removed.len(), 1);
    assert_eq!(o.n_rules(), 1);
    // Strict delete of the catch-all.
    let d = fm(FlowModCommand::DeleteStrict, 0, 5, Match::default(), vec![]);
    assert_eq!(o.flow_mod(&d, 0).unwrap().removed.len(), 1);
    assert_eq!(o.n_rules(), 0);
}

#[test]
fn instruction_validation_codes() {
    let mut o = switch(2);
    let cases: Vec<(Vec<Instruction>, Match, OfpError)> = vec![
        (
            vec![Instruction::GotoTable(TableId(0))],
            Match::default(),
            OfpError::BadInstructionTableId,
        ),
        (apply(vec![out(0)]), Match::default(), OfpError::BadOutPort),
        (
            apply(vec![Action::Output {
                port: PortNo::TABLE,
                max_len: 0,
            }]),
            Match::default(),
            OfpError::BadOutPort,
        ),
        (
            apply(vec![Action::Group(GroupId(7))]),
            Match::default(),
            OfpError::BadOutGroup,
        ),
        (
            vec![Instruction::Meter(MeterId(3))],
            Match::default(),
            OfpError::UnknownMeter,
        ),
        (
            apply(vec![Action::SetField(OxmField::exact(OxmId::Ipv4Src, 1))]),
            Match::default(),
            OfpError::MatchInconsistent,
        ),
        (
            apply(vec![Action::SetField(OxmField::exact(OxmId::VlanVid, 5))]),
            Match::default(),
            OfpError::MatchInconsistent,
        ),
        (
            apply(vec![Action::DecNwTtl]),
            m(&[(OxmId::EthType, 0x806)]),
            OfpError::MatchInconsistent,
        ),
        // OF1.3.5 §A.2.5 ethertype rules for push actions.
        (
            apply(vec![Action::PushMpls(0x0800)]),
            Match::default(),
            OfpError::BadActionArgument,
        ),
        (
            apply(vec![Action::PushPbb(0x8100)]),
            Match::default(),
            OfpError::BadActionArgument,
        ),
        // Pops and MPLS TTL actions need the header in the match.
        (
            apply(vec![Action::PopMpls(0x0800)]),
            ip_src(1),
            OfpError::MatchInconsistent,
        ),
        (
            apply(vec![Action::DecMplsTtl]),
            ip_src(1),
            OfpError::MatchInconsistent,
        ),
        (
            apply(vec![Action::PopPbb]),
            Match::default(),
            OfpError::MatchInconsistent,
        ),
        // After a pop, the IP fields of the payload are not guaranteed.
        (
            apply(vec![
                Action::PopMpls(0x0800),
                Action::SetField(OxmField::exact(OxmId::TcpDst, 1)),
            ]),
            m(&[(OxmId::EthType, 0x8847)]),
            OfpError::MatchInconsistent,
        ),
        (
            apply(vec![Action::SetField(OxmField::exact(OxmId::MplsBos, 1))]),
            m(&[(OxmId::EthType, 0x8847)]),
            OfpError::BadSetType,
        ),
        (
            apply(vec![Action::SetField(OxmField::exact(OxmId::PbbIsid, 1))]),
            ip_src(1),
            OfpError::MatchInconsistent,
        ),
        (
            apply(vec![Action::SetField(OxmField::exact(OxmId::EthType, 1))]),
            Match::default(),
            OfpError::BadSetType,
        ),
    ];
    for (ins, mt, err) in cases {
        assert_eq!(
            o.flow_mod(&add(0, 1, mt.clone(), ins.clone()), 0).err(),
            Some(err),
            "{ins:?}"
        );
    }
    // Valid: push_vlan then set vlan_vid; set ipv4 under an ip match; goto forward.
    let ok = add(
        0,
        1,
        ip_src(1),
        vec![
            Instruction::ApplyActions(vec![
                Action::PushVlan(0x8100),
                Action::SetField(OxmField::exact(OxmId::VlanVid, 0x1000 | 5)),
                Action::SetField(OxmField::exact(OxmId::Ipv4Dst, 9)),
            ]),
            Instruction::GotoTable(TableId(3)),
        ],
    );
    assert!(o.flow_mod(&ok, 0).is_ok());
}

#[test]
fn timeouts_expire_with_reasons_and_used_time() {
    let mut o = switch(1);
    assert!(o.expire(1_000_000).is_empty());
    assert_eq!(o.next_timeout_in(0), None);
    let mut idle = add(0, 1, ip_src(1), vec![]);
    idle.idle_timeout = 10;
    let idle_rule = o.flow_mod(&idle, 0).unwrap().added.unwrap();
    let mut hard = add(0, 1, ip_src(2), vec![]);
    hard.hard_timeout = 5;
    hard.idle_timeout = 100;
    o.flow_mod(&hard, 0).unwrap();
    o.flow_mod(&add(0, 1, ip_src(3), vec![]), 0).unwrap();
    assert_eq!(o.next_timeout_in(0), Some(5000));
    // Traffic at 8 s keeps the idle rule alive past 10 s.
    idle_rule.add_stats(1, 60, 8000);
    let gone = o.expire(10_000);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].1, RR_HARD_TIMEOUT);
    let gone = o.expire(18_000);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].1, RR_IDLE_TIMEOUT);
    assert_eq!(o.n_rules(), 1);
    assert!(o.expire(1_000_000).is_empty());
}

#[test]
fn re_adding_an_identical_rule_restarts_its_timers_and_keeps_its_counters() {
    // Controllers refresh learned hosts this way (issue 10 §6; OVS
    // add_flow() replacing a rule gives the new one a new creation time).
    let mut o = switch(1);
    let mut r = add(0, 1, ip_src(1), vec![]);
    r.idle_timeout = 10;
    r.hard_timeout = 30;
    let first = o.flow_mod(&r, 0).unwrap().added.unwrap();
    first.add_stats(3, 180, 1000);
    // Re-added at 9 s: neither timer fires where the first would have.
    o.flow_mod(&r, 9_000).unwrap();
    assert!(o.expire(10_500).is_empty(), "idle restarted");
    let gone = o.expire(19_000);
    assert_eq!((gone.len(), gone[0].1), (1, RR_IDLE_TIMEOUT));
    assert_eq!(
        gone[0].0.stats(),
        (3, 180),
        "counters kept without RESET_COUNTS"
    );
    // Hard timeout: re-added at 25 s, alive at 31 s, gone at 55 s.
    r.idle_timeout = 0;
    o.flow_mod(&r, 0).unwrap();
    o.flow_mod(&r, 25_000).unwrap();
    assert!(o.expire(31_000).is_empty(), "hard restarted");
    let gone = o.expire(55_000);
    assert_eq!((gone.len(), gone[0].1), (1, RR_HARD_TIMEOUT));
}

// ---- snapshots --------------------------------------------------------------------

#[test]
fn publish_versions_and_isolation() {
    let mut o = switch(2);
    let s1 = o.publish();
    let s1b = o.publish();
    assert_eq!(s1.version, s1b.version, "no change, no new version");
    for i in 0..1000 {
        o.flow_mod(&add(0, 100, ip_src(i), apply(vec![out(1)])), 0)
            .unwrap();
    }
    let s2 = o.publish();
    assert!(s2.version > s1.version);
    assert_eq!(s1.tables[0].len(), 0);
    assert_eq!(s2.tables[0].len(), 1000);
    let d = fm(FlowModCommand::DeleteStrict, 0, 100, ip_src(5), vec![]);
    o.flow_mod(&d, 0).unwrap();
    let s3 = o.publish();
    assert_eq!(s2.tables[0].len(), 1000);
    assert_eq!(s3.tables[0].len(), 999);
    assert!(s3.version > s2.version);
}

// ---- groups, meters, ports --------------------------------------------------------

/// A bucket of weight 0 (what every non-select group must use).
fn bucket(watch: u32, actions: Vec<Action>) -> Bucket {
    wbucket(0, watch, actions)
}

fn wbucket(weight: u16, watch: u32, actions: Vec<Action>) -> Bucket {
    Bucket {
        weight,
        watch_port: if watch == 0 {
            PortNo::ANY
        } else {
            PortNo(watch)
        },
        watch_group: GroupId::ANY,
        actions,
    }
}

fn gm(cmd: GroupModCommand, t: GroupType, id: u32, buckets: Vec<Bucket>) -> GroupMod {
    GroupMod {
        command: cmd,
        group_type: t,
        group_id: GroupId(id),
        buckets,
    }
}

#[test]
fn group_mod_codes_liveness_and_delete_removes_flows() {
    let mut o = switch(3);
    let ff = gm(
        GroupModCommand::Add,
        GroupType::FastFailover,
        1,
        vec![bucket(1, vec![out(1)]), bucket(2, vec![out(2)])],
    );
    o.group_mod(&ff, 0).unwrap();
    assert_eq!(o.group_mod(&ff, 0).err(), Some(OfpError::GroupExists));
    let mut bad = ff.clone();
    bad.command = GroupModCommand::Modify;
    bad.group_id = GroupId(9);
    assert_eq!(o.group_mod(&bad, 0).err(), Some(OfpError::UnknownGroup));
    let nowatch = gm(
        GroupModCommand::Add,
        GroupType::FastFailover,
        2,
        vec![bucket(0, vec![out(1)])],
    );
    assert_eq!(o.group_mod(&nowatch, 0).err(), Some(OfpError::BadWatch));
    // OVS-compatible codes: an indirect group needs exactly one bucket, and
    // only select buckets carry weights.
    let ind = gm(GroupModCommand::Add, GroupType::Indirect, 3, vec![]);
    assert_eq!(o.group_mod(&ind, 0).err(), Some(OfpError::InvalidGroup));
    let ind2 = gm(
        GroupModCommand::Add,
        GroupType::Indirect,
        3,
        vec![bucket(0, vec![out(1)]), bucket(0, vec![out(2)])],
    );
    assert_eq!(o.group_mod(&ind2, 0).err(), Some(OfpError::InvalidGroup));
    for t in [GroupType::All, GroupType::Indirect] {
        let weighted = gm(
            GroupModCommand::Add,
            t,
            3,
            vec![wbucket(5, 0, vec![out(1)])],
        );
        assert_eq!(
            o.group_mod(&weighted, 0).err(),
            Some(OfpError::InvalidGroup)
        );
    }
    // A watch on a bucket of a group without liveness is
    // OFPGMFC_WATCH_UNSUPPORTED (OVS `ofputil_check_group_mod()`).
    for t in [GroupType::All, GroupType::Indirect] {
        let watched = gm(GroupModCommand::Add, t, 3, vec![bucket(1, vec![out(1)])]);
        assert_eq!(
            o.group_mod(&watched, 0).err(),
            Some(OfpError::WatchUnsupported)
        );
        let mut by_group = gm(GroupModCommand::Add, t, 3, vec![bucket(0, vec![out(1)])]);
        by_group.buckets[0].watch_group = GroupId(1);
        assert_eq!(
            o.group_mod(&by_group, 0).err(),
            Some(OfpError::WatchUnsupported)
        );
    }
    let selfloop = gm(
        GroupModCommand::Add,
        GroupType::All,
        4,
        vec![bucket(0, vec![Action::Group(GroupId(4))])],
    );
    // A group naming itself is a loop (OFPGMFC_LOOP), even on ADD where the
    // group does not exist yet.
    assert_eq!(o.group_mod(&selfloop, 0).err(), Some(OfpError::GroupLoop));
    let missing = gm(
        GroupModCommand::Add,
        GroupType::All,
        4,
        vec![bucket(0, vec![Action::Group(GroupId(77))])],
    );
    assert_eq!(o.group_mod(&missing, 0).err(), Some(OfpError::BadOutGroup));

    let mut f = add(
        0,
        1,
        Match::default(),
        apply(vec![Action::Group(GroupId(1))]),
    );
    f.flags = FF_SEND_FLOW_REM;
    o.flow_mod(&f, 0).unwrap();
    let ml = MacLearning::default();
    let k = key(3);
    assert_eq!(
        xl(&mut o, &ml, &k).actions,
        vec![DpAction::Output(PortNo(1))]
    );
    // Port 1 goes down: the fast-failover group fails over to port 2.
    let mut p1 = o.port(PortNo(1)).unwrap().clone();
    p1.state |= PS_LINK_DOWN;
    assert!(o.update_port(p1));
    let x = xl(&mut o, &ml, &k);
    assert_eq!(x.actions, vec![DpAction::Output(PortNo(2))]);
    assert_eq!(x.groups[0].bucket, Some(1));
    assert_eq!(o.group_stats(GroupId::ALL, 0)[0].ref_count, 1);

    let removed = o
        .group_mod(&gm(GroupModCommand::Delete, GroupType::All, 1, vec![]), 0)
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(o.n_rules(), 0);
    assert!(o.group_descs().is_empty());
}

#[test]
fn watch_group_liveness_and_loops() {
    let mut o = switch(3);
    // Group 1: fast failover watching port 1 only.
    o.group_mod(
        &gm(
            GroupModCommand::Add,
            GroupType::FastFailover,
            1,
            vec![bucket(1, vec![out(1)])],
        ),
        0,
    )
    .unwrap();
    // Group 2: first bucket live while group 1 is, else port 2.
    let mut b0 = bucket(0, vec![Action::Group(GroupId(1))]);
    b0.watch_group = GroupId(1);
    o.group_mod(
        &gm(
            GroupModCommand::Add,
            GroupType::FastFailover,
            2,
            vec![b0, bucket(2, vec![out(2)])],
        ),
        0,
    )
    .unwrap();
    // Group 1 may not now chain to group 2: that would be a loop.
    let looped = gm(
        GroupModCommand::Modify,
        GroupType::All,
        1,
        vec![bucket(0, vec![Action::Group(GroupId(2))])],
    );
    assert_eq!(o.group_mod(&looped, 0).err(), Some(OfpError::GroupLoop));
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            apply(vec![Action::Group(GroupId(2))]),
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    assert_eq!(
        xl(&mut o, &ml, &key(3)).actions,
        vec![DpAction::Output(PortNo(1))]
    );
    let mut p1 = o.port(PortNo(1)).unwrap().clone();
    p1.config |= PC_PORT_DOWN;
    o.update_port(p1);
    assert_eq!(
        xl(&mut o, &ml, &key(3)).actions,
        vec![DpAction::Output(PortNo(2))]
    );
}

#[test]
fn all_and_select_groups_translate() {
    let mut o = switch(4);
    let all = gm(
        GroupModCommand::Add,
        GroupType::All,
        1,
        vec![
            bucket(
                0,
                vec![
                    Action::SetField(OxmField::exact(OxmId::Ipv4Dst, 0x0b000001)),
                    out(1),
                ],
            ),
            bucket(0, vec![out(2)]),
        ],
    );
    o.group_mod(&all, 0).unwrap();
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            apply(vec![Action::Group(GroupId(1))]),
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    let x = xl(&mut o, &ml, &key(3));
    // Bucket 2 sees the original packet: the rewrite is undone before output 2,
    // which needs the packet's nw_dst (un-wildcarded).
    assert_eq!(
        x.actions,
        vec![
            DpAction::SetField {
                field: Field::NwDst,
                value: 0x0b000001,
                mask: 0xffff_ffff
            },
            DpAction::Output(PortNo(1)),
            DpAction::SetField {
                field: Field::NwDst,
                value: 0x0a000002,
                mask: 0xffff_ffff
            },
            DpAction::Output(PortNo(2)),
        ]
    );
    assert_eq!(x.wc.get(Field::NwDst), 0xffff_ffff);

    let sel = gm(
        GroupModCommand::Add,
        GroupType::Select,
        2,
        vec![wbucket(1, 0, vec![out(1)]), wbucket(1, 0, vec![out(2)])],
    );
    o.group_mod(&sel, 0).unwrap();
    o.flow_mod(
        &add(
            0,
            2,
            Match::default(),
            apply(vec![Action::Group(GroupId(2))]),
        ),
        0,
    )
    .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for sport in 0..64u128 {
        let mut k = key(3);
        k.set(Field::TpSrc, sport);
        let x = xl(&mut o, &ml, &k);
        assert_eq!(x.actions.len(), 1);
        seen.insert(format!("{:?}", x.actions));
        for f in [Field::NwSrc, Field::NwDst, Field::TpSrc, Field::TpDst] {
            assert_eq!(x.wc.get(f), f.full_mask());
        }
        // The hash covers the Ethernet addresses too (L2-only traffic spreads).
        assert_eq!(x.wc.get(Field::DlSrc), Field::DlSrc.full_mask());
    }
    assert_eq!(seen.len(), 2, "both buckets are used");
}

#[test]
fn meter_mod_codes_and_delete_removes_flows() {
    let mut o = switch(1);
    let mm = |cmd, id, flags, bands| MeterMod {
        command: cmd,
        flags,
        meter_id: MeterId(id),
        bands,
    };
    let band = vec![MeterBand::Drop {
        rate: 1000,
        burst_size: 0,
    }];
    assert_eq!(
        o.meter_mod(&mm(MeterModCommand::Add, 0, MF_KBPS, band.clone()), 0)
            .err(),
        Some(OfpError::InvalidMeter)
    );
    assert_eq!(
        o.meter_mod(
            &mm(
                MeterModCommand::Add,
                1,
                MF_KBPS,
                vec![MeterBand::Drop {
                    rate: 0,
                    burst_size: 0
                }]
            ),
            0
        )
        .err(),
        Some(OfpError::BadRate)
    );
    assert_eq!(
        o.meter_mod(&mm(MeterModCommand::Add, 1, 3, band.clone()), 0)
            .err(),
        Some(OfpError::BadMeterFlags)
    );
    // More bands than the meter features advertise: OFPMMFC_OUT_OF_BANDS.
    let too_many = vec![band[0].clone(); super::MAX_METER_BANDS + 1];
    assert_eq!(
        o.meter_mod(&mm(MeterModCommand::Add, 1, MF_KBPS, too_many), 0)
            .err(),
        Some(OfpError::OutOfBands)
    );
    o.meter_mod(&mm(MeterModCommand::Add, 1, MF_KBPS, band.clone()), 0)
        .unwrap();
    assert_eq!(
        o.meter_mod(&mm(MeterModCommand::Add, 1, MF_KBPS, band.clone()), 0)
            .err(),
        Some(OfpError::MeterExists)
    );
    assert_eq!(
        o.meter_mod(&mm(MeterModCommand::Modify, 2, MF_KBPS, band.clone()), 0)
            .err(),
        Some(OfpError::UnknownMeter)
    );
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            vec![
                Instruction::Meter(MeterId(1)),
                Instruction::ApplyActions(vec![out(1)]),
            ],
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    assert_eq!(
        xl(&mut o, &ml, &key(2)).actions,
        vec![DpAction::Meter(1), DpAction::Output(PortNo(1))]
    );
    assert_eq!(o.meter_stats(MeterId::ALL, 0)[0].flow_count, 1);
    assert_eq!(o.meter_configs(MeterId(1))[0].bands, band);
    let removed = o
        .meter_mod(&mm(MeterModCommand::Delete, 1, 0, vec![]), 0)
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(o.n_rules(), 0);
}

#[test]
fn port_mod_codes_and_flood_honours_config() {
    let mut o = switch(4);
    let pm = |p: u32, hw: MacAddr, config: u32, mask: u32| PortMod {
        port_no: PortNo(p),
        hw_addr: hw,
        config,
        mask,
        advertise: 0,
    };
    assert_eq!(
        o.port_mod(&pm(9, mac(9), 0, 0)).err(),
        Some(OfpError::PortModBadPort)
    );
    assert_eq!(
        o.port_mod(&pm(1, mac(9), 0, 0)).err(),
        Some(OfpError::PortModBadHwAddr)
    );
    assert_eq!(
        o.port_mod(&pm(1, mac(1), 0, 1 << 3)).err(),
        Some(OfpError::PortModBadConfig)
    );
    let p = o
        .port_mod(&pm(2, mac(2), PC_NO_FLOOD, PC_NO_FLOOD))
        .unwrap();
    assert_eq!(p.config, PC_NO_FLOOD);
    o.port_mod(&pm(3, mac(3), PC_PORT_DOWN, PC_PORT_DOWN))
        .unwrap();
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            apply(vec![Action::Output {
                port: PortNo::FLOOD,
                max_len: 0,
            }]),
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    // From port 1: 2 is no-flood, 3 is down, 4 gets it.
    assert_eq!(
        xl(&mut o, &ml, &key(1)).actions,
        vec![DpAction::Output(PortNo(4))]
    );
    // ALL ignores no-flood but not down ports.
    let f = add(
        0,
        1,
        Match::default(),
        apply(vec![Action::Output {
            port: PortNo::ALL,
            max_len: 0,
        }]),
    );
    o.flow_mod(&f, 0).unwrap();
    let x = xl(&mut o, &ml, &key(1));
    assert_eq!(
        x.actions,
        vec![DpAction::Output(PortNo(2)), DpAction::Output(PortNo(4))]
    );
    assert_eq!(x.wc.get(Field::InPort), 0xffff_ffff);
    // NO_RECV drops everything from the port.
    o.port_mod(&pm(4, mac(4), PC_NO_RECV, PC_NO_RECV)).unwrap();
    assert!(xl(&mut o, &ml, &key(4)).actions.is_empty());
    assert_eq!(o.port_descs().len(), 4);
}

// ---- translation --------------------------------------------------------------------

#[test]
fn output_suppression_in_port_and_controller_reasons() {
    let mut o = switch(3);
    o.flow_mod(
        &add(0, 10, m(&[(OxmId::InPort, 1)]), apply(vec![out(1), out(2)])),
        0,
    )
    .unwrap();
    o.flow_mod(
        &add(
            0,
            10,
            m(&[(OxmId::InPort, 2)]),
            apply(vec![Action::Output {
                port: PortNo::IN_PORT,
                max_len: 0,
            }]),
        ),
        0,
    )
    .unwrap();
    let mut miss = add(
        0,
        0,
        Match::default(),
        apply(vec![Action::Output {
            port: PortNo::CONTROLLER,
            max_len: 128,
        }]),
    );
    miss.cookie = Cookie(42);
    o.flow_mod(&miss, 0).unwrap();
    let ml = MacLearning::default();
    assert_eq!(
        xl(&mut o, &ml, &key(1)).actions,
        vec![DpAction::Output(PortNo(2))]
    );
    assert_eq!(
        xl(&mut o, &ml, &key(2)).actions,
        vec![DpAction::Output(PortNo(2))]
    );
    let x = xl(&mut o, &ml, &key(3));
    assert_eq!(
        x.actions,
        vec![DpAction::Userspace(UserspaceReason::Controller {
            reason: 0,
            max_len: 128,
            table_id: 0,
            cookie: 42,
            meter: None,
        })]
    );
    assert_eq!(x.slow, SLOW_CONTROLLER);
    assert_eq!(x.rules.len(), 1);
    // A non-miss rule's controller action is reason ACTION.
    o.flow_mod(
        &add(
            0,
            5,
            m(&[(OxmId::InPort, 3)]),
            apply(vec![Action::Output {
                port: PortNo::CONTROLLER,
                max_len: 0xffff,
            }]),
        ),
        0,
    )
    .unwrap();
    let x = xl(&mut o, &ml, &key(3));
    assert!(matches!(
        x.actions[0],
        DpAction::Userspace(UserspaceReason::Controller { reason: 1, .. })
    ));
}

#[test]
fn table_miss_drops_and_goto_metadata_write_actions() {
    let mut o = switch(3);
    let ml = MacLearning::default();
    assert!(xl(&mut o, &ml, &key(1)).actions.is_empty());
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            vec![
                Instruction::WriteActions(vec![out(2)]),
                Instruction::WriteMetadata {
                    value: 0x5,
                    mask: 0xf,
                },
                Instruction::GotoTable(TableId(1)),
            ],
        ),
        0,
    )
    .unwrap();
    // Table 1 matches on the metadata written by table 0, and adds a rewrite
    // to the action set; the action set runs at the end: set then output.
    o.flow_mod(
        &add(
            1,
            1,
            m(&[(OxmId::Metadata, 5), (OxmId::EthType, 0x800)]),
            vec![Instruction::WriteActions(vec![
                Action::SetField(OxmField::exact(OxmId::Ipv4Src, 0x0c000001)),
                Action::DecNwTtl,
            ])],
        ),
        0,
    )
    .unwrap();
    let x = xl(&mut o, &ml, &key(1));
    assert_eq!(
        x.actions,
        vec![
            DpAction::SetField {
                field: Field::NwTtl,
                value: 63,
                mask: 0xff
            },
            DpAction::SetField {
                field: Field::NwSrc,
                value: 0x0c000001,
                mask: 0xffff_ffff
            },
            DpAction::Output(PortNo(2)),
        ]
    );
    assert_eq!(x.rules.len(), 2);
    assert_eq!(
        x.wc.get(Field::Metadata) & 0xf,
        0,
        "bits written by write_metadata are not packet data"
    );
    assert_eq!(
        x.wc.get(Field::NwSrc),
        0,
        "set fields are not un-wildcarded"
    );
    assert_eq!(x.wc.get(Field::NwTtl), 0xff, "dec_ttl reads the TTL");
    // TTL 1: dropped, and sent to the controller only when it asked.
    let mut k = key(1);
    k.set(Field::NwTtl, 1);
    assert!(xl(&mut o, &ml, &k).actions.is_empty());
    let snap = o.publish();
    let x = translate(
        &snap,
        &ml,
        &k,
        &XlateOptions {
            invalid_ttl_to_controller: true,
            ..Default::default()
        },
    );
    assert!(matches!(
        x.actions[..],
        [DpAction::Userspace(UserspaceReason::Controller {
            reason: 2,
            ..
        })]
    ));
    // Clear-actions in a later table empties the set.
    o.flow_mod(
        &add(1, 2, Match::default(), vec![Instruction::ClearActions]),
        0,
    )
    .unwrap();
    assert!(xl(&mut o, &ml, &key(1)).actions.is_empty());
}

#[test]
fn vlan_push_set_pop() {
    let mut o = switch(3);
    o.flow_mod(
        &add(
            0,
            1,
            m(&[(OxmId::InPort, 1)]),
            apply(vec![
                Action::PushVlan(0x8100),
                Action::SetField(OxmField::exact(OxmId::VlanVid, 0x1000 | 10)),
                out(2),
                Action::PopVlan,
                out(3),
            ]),
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    let x = xl(&mut o, &ml, &key(1));
    // The set-field is folded into the push (one tag with its final TCI).
    assert_eq!(
        x.actions,
        vec![
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 10
            },
            DpAction::Output(PortNo(2)),
            DpAction::PopVlan,
            DpAction::Output(PortNo(3)),
        ]
    );
}

// ---- minimal datapath actions (commit of the net header change) -------------------

/// The pipeline of issue 13: table 0 tags (push_vlan, set vlan_vid=200),
/// table 1 untags (pop_vlan) and outputs. Nothing changes in net, so the
/// megaflow's actions are the output alone (they were
/// `push_vlan(vid=0),set(vlan_tci=0xc8/0xfff),pop_vlan,3`).
fn tag_untag_pipeline(o: &mut Ofproto) {
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            vec![
                Instruction::ApplyActions(vec![
                    Action::PushVlan(0x8100),
                    Action::SetField(OxmField::exact(OxmId::VlanVid, 0x1000 | 200)),
                ]),
                Instruction::GotoTable(TableId(1)),
            ],
        ),
        0,
    )
    .unwrap();
    o.flow_mod(
        &add(
            1,
            1,
            m(&[(OxmId::VlanVid, 0x1000 | 200)]),
            apply(vec![Action::PopVlan, out(3)]),
        ),
        0,
    )
    .unwrap();
}

#[test]
fn tag_untag_pipeline_commits_only_the_output() {
    let mut o = switch(3);
    tag_untag_pipeline(&mut o);
    let ml = MacLearning::default();
    let x = xl(&mut o, &ml, &key(1));
    assert_eq!(x.actions, vec![DpAction::Output(PortNo(3))]);
    assert_eq!(
        crate::datapath::odp_format::format_actions(&x.actions),
        "3",
        "dpctl/dump-flows form"
    );
    // push_vlan read the outer tag (to copy it), so the megaflow pins it.
    assert_eq!(x.wc.get(Field::VlanTci), 0xffff);
    // Same for a tagged frame: the pushed tag comes off again, the frame's
    // own tag stays as it was.
    let mut k = key(1);
    k.set(Field::VlanTci, (VLAN_CFI | 7) as u128);
    let x = xl(&mut o, &ml, &k);
    assert_eq!(x.actions, vec![DpAction::Output(PortNo(3))]);
    assert_eq!(x.final_flow.vlan_tci(), VLAN_CFI | 7);
}

fn xl_actions(o: &mut Ofproto, k: &FlowKey, actions: Vec<Action>) -> XlateOutput {
    let snap = o.publish();
    translate_actions(
        &snap,
        &MacLearning::default(),
        k,
        &actions,
        &XlateOptions::default(),
    )
}

fn set(id: OxmId, v: u128) -> Action {
    Action::SetField(OxmField::exact(id, v))
}

#[test]
fn vlan_edits_commit_their_net_change() {
    let mut o = switch(4);
    let tagged = |tci: u16| {
        let mut k = key(4);
        k.set(Field::VlanTci, (VLAN_CFI | tci) as u128);
        k
    };
    let push = |tpid, tci| DpAction::PushVlan { tpid, tci };
    let set_tci = |value: u128, mask: u128| DpAction::SetField {
        field: Field::VlanTci,
        value,
        mask,
    };
    let cases: Vec<(FlowKey, Vec<Action>, Vec<DpAction>)> = vec![
        // Push with set vid and pcp: one push with the final TCI.
        (
            key(4),
            vec![
                Action::PushVlan(0x88a8),
                set(OxmId::VlanVid, 0x1000 | 5),
                set(OxmId::VlanPcp, 3),
                out(1),
            ],
            vec![push(0x88a8, 0x6005), DpAction::Output(PortNo(1))],
        ),
        // A rewrite of the frame's own tag is a masked set of the part set.
        (
            tagged(0x2007),
            vec![set(OxmId::VlanVid, 0x1000 | 9), out(1)],
            vec![set_tci(9, 0xfff), DpAction::Output(PortNo(1))],
        ),
        // Setting the frame's tag, then covering it: the set goes first.
        (
            tagged(7),
            vec![
                set(OxmId::VlanVid, 0x1000 | 9),
                Action::PushVlan(0x8100),
                out(1),
            ],
            vec![
                set_tci(9, 0xfff),
                push(0x8100, 9),
                DpAction::Output(PortNo(1)),
            ],
        ),
        // Set then pop: only the pop.
        (
            tagged(7),
            vec![set(OxmId::VlanVid, 0x1000 | 9), Action::PopVlan, out(1)],
            vec![DpAction::PopVlan, DpAction::Output(PortNo(1))],
        ),
        // Pop of an untagged frame: nothing to pop.
        (
            key(4),
            vec![Action::PopVlan, out(1)],
            vec![DpAction::Output(PortNo(1))],
        ),
        // A set on an untagged frame has nothing to set.
        (
            key(4),
            vec![set(OxmId::VlanVid, 0x1000 | 9), out(1)],
            vec![DpAction::Output(PortNo(1))],
        ),
        // Between outputs, a pushed tag changed only in its TCI is rewritten
        // in place, and a second push goes on top of it.
        (
            key(4),
            vec![
                Action::PushVlan(0x8100),
                set(OxmId::VlanVid, 0x1000 | 10),
                out(1),
                set(OxmId::VlanVid, 0x1000 | 11),
                out(2),
                Action::PushVlan(0x8100),
                set(OxmId::VlanPcp, 5),
                out(3),
                Action::PopVlan,
                Action::PopVlan,
                out(1),
            ],
            vec![
                push(0x8100, 10),
                DpAction::Output(PortNo(1)),
                set_tci(11, 0xfff),
                DpAction::Output(PortNo(2)),
                push(0x8100, 0xa00b),
                DpAction::Output(PortNo(3)),
                DpAction::PopVlan,
                DpAction::PopVlan,
                DpAction::Output(PortNo(1)),
            ],
        ),
        // The first MPLS label goes on with its final value...
        (
            key(4),
            vec![
                set(OxmId::Ipv4Src, 9),
                Action::PushMpls(0x8847),
                set(OxmId::MplsLabel, 100),
                Action::SetMplsTtl(7),
                out(1),
            ],
            vec![
                DpAction::SetField {
                    field: Field::NwSrc,
                    value: 9,
                    mask: 0xffff_ffff,
                },
                DpAction::PushMpls {
                    ethertype: 0x8847,
                    lse: (100 << 12) | 0x100 | 7,
                },
                DpAction::Output(PortNo(1)),
            ],
        ),
        // ...and a pop back to what it covered undoes it, while edits of the
        // IP payload under it stay.
        (
            key(4),
            vec![
                Action::PushMpls(0x8847),
                Action::SetMplsTtl(7),
                set(OxmId::Ipv4Dst, 9),
                Action::PopMpls(0x0800),
                out(1),
            ],
            vec![
                DpAction::SetField {
                    field: Field::NwDst,
                    value: 9,
                    mask: 0xffff_ffff,
                },
                DpAction::Output(PortNo(1)),
            ],
        ),
        // A pop to another ethertype needs the push (no action sets an
        // ethertype alone).
        (
            key(4),
            vec![Action::PushMpls(0x8847), Action::PopMpls(0x86dd), out(1)],
            vec![
                DpAction::PushMpls {
                    ethertype: 0x8847,
                    lse: 0x100 | 64,
                },
                DpAction::PopMpls { ethertype: 0x86dd },
                DpAction::Output(PortNo(1)),
            ],
        ),
        // Other fields still commit as their net change.
        (
            key(4),
            vec![
                set(OxmId::Ipv4Src, 9),
                set(OxmId::Ipv4Src, 1),
                set(OxmId::EthDst, 5),
                out(1),
                set(OxmId::EthDst, 6),
                set(OxmId::EthDst, 5),
                out(2),
            ],
            vec![
                DpAction::SetField {
                    field: Field::DlDst,
                    value: 5,
                    mask: Field::DlDst.full_mask(),
                },
                DpAction::SetField {
                    field: Field::NwSrc,
                    value: 1,
                    mask: 0xffff_ffff,
                },
                DpAction::Output(PortNo(1)),
                DpAction::Output(PortNo(2)),
            ],
        ),
    ];
    for (i, (k, acts, want)) in cases.into_iter().enumerate() {
        let x = xl_actions(&mut o, &k, acts);
        assert_eq!(x.error, None, "case {i}");
        assert_eq!(x.actions, want, "case {i}");
    }
}

#[test]
fn group_buckets_commit_against_what_the_packet_is() {
    let mut o = switch(3);
    add_group(
        &mut o,
        GroupType::All,
        1,
        vec![
            bucket(
                0,
                vec![
                    Action::PushVlan(0x8100),
                    set(OxmId::VlanVid, 0x1000 | 5),
                    out(1),
                ],
            ),
            bucket(0, vec![out(2)]),
        ],
    )
    .unwrap();
    add_group(
        &mut o,
        GroupType::All,
        2,
        vec![bucket(0, vec![Action::PopVlan, out(1)])],
    )
    .unwrap();
    add_group(
        &mut o,
        GroupType::All,
        3,
        vec![bucket(0, vec![Action::PopVlan, Action::PopVlan, out(1)])],
    )
    .unwrap();
    // The bucket's tag comes off for the next bucket.
    let x = xl_actions(&mut o, &key(3), vec![Action::Group(GroupId(1))]);
    assert_eq!(
        x.actions,
        vec![
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 5
            },
            DpAction::Output(PortNo(1)),
            DpAction::PopVlan,
            DpAction::Output(PortNo(2)),
        ]
    );
    // A bucket popped the frame's tag: it is pushed back, from the packet's
    // bits (which the megaflow then pins).
    let mut k = key(3);
    k.set(Field::VlanTci, (VLAN_CFI | 0x2007) as u128);
    let x = xl_actions(&mut o, &k, vec![Action::Group(GroupId(2)), out(2)]);
    assert_eq!(
        x.actions,
        vec![
            DpAction::PopVlan,
            DpAction::Output(PortNo(1)),
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 0x2007
            },
            DpAction::Output(PortNo(2)),
        ]
    );
    assert_eq!(x.wc.get(Field::VlanTci), 0xffff);
    // A bucket's MPLS push is popped again for the actions after it.
    add_group(
        &mut o,
        GroupType::All,
        4,
        vec![bucket(0, vec![Action::PushMpls(0x8847), out(1)])],
    )
    .unwrap();
    let x = xl_actions(&mut o, &key(3), vec![Action::Group(GroupId(4)), out(2)]);
    assert_eq!(
        x.actions,
        vec![
            DpAction::PushMpls {
                ethertype: 0x8847,
                lse: 0x100 | 64
            },
            DpAction::Output(PortNo(1)),
            DpAction::PopMpls { ethertype: 0x0800 },
            DpAction::Output(PortNo(2)),
        ]
    );
    // A simple output reads nothing it need not (no dl_type in the mask).
    let x = xl_actions(&mut o, &key(3), vec![out(2)]);
    assert_eq!(x.wc.get(Field::DlType), 0);
    // Tags under the frame's outer one cannot come back: a counted drop.
    let before = crate::util::coverage::c::xlate_unrestorable.load(Ordering::Relaxed);
    let x = xl_actions(&mut o, &k, vec![Action::Group(GroupId(3)), out(2)]);
    assert_eq!(x.error, Some(super::xlate::XlateError::Unrestorable));
    assert!(x.actions.is_empty());
    assert!(crate::util::coverage::c::xlate_unrestorable.load(Ordering::Relaxed) > before);
}

#[test]
fn vlan_pushes_are_bounded() {
    let mut o = switch(2);
    let mut acts = vec![Action::PushVlan(0x8100); super::xlate::MAX_VLAN_PUSHED];
    acts.push(out(1));
    let x = xl_actions(&mut o, &key(2), acts.clone());
    assert_eq!(x.error, None);
    assert_eq!(x.actions.len(), super::xlate::MAX_VLAN_PUSHED + 1);
    acts.insert(0, Action::PushVlan(0x8100));
    let x = xl_actions(&mut o, &key(2), acts);
    assert_eq!(x.error, Some(super::xlate::XlateError::TooManyVlanHeaders));
    assert!(x.actions.is_empty());
}

#[test]
fn packet_out_actions_and_table() {
    let mut o = switch(3);
    o.flow_mod(&add(0, 1, Match::default(), apply(vec![out(3)])), 0)
        .unwrap();
    let snap = o.publish();
    let ml = MacLearning::default();
    let mut k = key(0);
    k.set(Field::InPort, PortNo::CONTROLLER.0 as u128);
    let x = translate_actions(
        &snap,
        &ml,
        &k,
        &[
            out(1),
            Action::Output {
                port: PortNo::TABLE,
                max_len: 0,
            },
        ],
        &XlateOptions::default(),
    );
    assert_eq!(
        x.actions,
        vec![DpAction::Output(PortNo(1)), DpAction::Output(PortNo(3))]
    );
}

// ---- NORMAL -----------------------------------------------------------------------

fn eth(in_port: u32, src: u8, dst: MacAddr, tci: u16) -> FlowKey {
    let mut k = FlowKey::default();
    k.set(Field::InPort, in_port as u128);
    k.set(Field::DlSrc, mac(src).to_u64() as u128);
    k.set(Field::DlDst, dst.to_u64() as u128);
    k.set(Field::DlType, 0x800);
    k.set(Field::VlanTci, tci as u128);
    k
}

#[test]
fn normal_learns_floods_and_forwards() {
    let mut o = switch(3);
    o.add_default_normal_flow(0).unwrap();
    let ml = MacLearning::default();
    // Unknown destination: flood to everyone but the input port.
    let x = xl(&mut o, &ml, &eth(1, 0xa, mac(0xb), 0));
    assert_eq!(
        x.actions,
        vec![DpAction::Output(PortNo(2)), DpAction::Output(PortNo(3))]
    );
    for f in [Field::InPort, Field::DlSrc, Field::DlDst, Field::VlanTci] {
        assert_eq!(x.wc.get(f), f.full_mask(), "{f:?}");
    }
    assert_eq!(x.wc.get(Field::NwSrc), 0);
    assert!(x.ml_seq.is_some());
    assert_eq!(ml.lookup(0, mac(0xa)), Some(PortNo(1)));
    // Reply from b on port 2 goes straight to port 1.
    let x = xl(&mut o, &ml, &eth(2, 0xb, mac(0xa), 0));
    assert_eq!(x.actions, vec![DpAction::Output(PortNo(1))]);
    // Destination on the input port: drop.
    let x = xl(&mut o, &ml, &eth(1, 0xc, mac(0xa), 0));
    assert!(x.actions.is_empty());
    // Station move of a to port 3.
    let s = ml.seq();
    xl(&mut o, &ml, &eth(3, 0xa, MacAddr::BROADCAST, 0));
    assert!(ml.seq() > s);
    let x = xl(&mut o, &ml, &eth(2, 0xb, mac(0xa), 0));
    assert_eq!(x.actions, vec![DpAction::Output(PortNo(3))]);
    // Multicast sources are never learned.
    let mut mc = eth(1, 0, mac(0xb), 0);
    mc.set(Field::DlSrc, 0x0100_5e00_0001);
    xl(&mut o, &ml, &mc);
    assert_eq!(ml.entries(0).len(), 3);
}

#[test]
fn normal_access_and_trunk_vlans() {
    let mut o = switch(0);
    let mut a10 = PortInfo::new(PortNo(1), "a10", mac(1));
    a10.vlan = Some(10);
    let mut a20 = PortInfo::new(PortNo(2), "a20", mac(2));
    a20.vlan = Some(20);
    let mut a10b = PortInfo::new(PortNo(3), "a10b", mac(3));
    a10b.vlan = Some(10);
    let t_all = PortInfo::new(PortNo(4), "trunk", mac(4));
    let mut t_20 = PortInfo::new(PortNo(5), "t20", mac(5));
    t_20.trunks = vec![20];
    for p in [a10, a20, a10b, t_all, t_20] {
        o.add_port(p);
    }
    o.add_default_normal_flow(0).unwrap();
    let ml = MacLearning::default();
    // Untagged on access port 10: to the other access-10 port untagged, to the
    // all-VLAN trunk tagged 10; not to VLAN 20 ports.
    let x = xl(&mut o, &ml, &eth(1, 0xa, MacAddr::BROADCAST, 0));
    assert_eq!(
        x.actions,
        vec![
            DpAction::Output(PortNo(3)),
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 10
            },
            DpAction::Output(PortNo(4)),
        ]
    );
    // Tagged frames on an access port are dropped.
    assert!(
        xl(&mut o, &ml, &eth(1, 0xa, MacAddr::BROADCAST, VLAN_CFI | 10))
            .actions
            .is_empty()
    );
    // Tagged 20 from the trunk: to access-20 untagged, to the 20-trunk tagged.
    let x = xl(&mut o, &ml, &eth(4, 0xb, MacAddr::BROADCAST, VLAN_CFI | 20));
    assert_eq!(
        x.actions,
        vec![
            DpAction::PopVlan,
            DpAction::Output(PortNo(2)),
            DpAction::PushVlan {
                tpid: 0x8100,
                tci: 20
            },
            DpAction::Output(PortNo(5)),
        ]
    );
    // VLAN 30 is not allowed on trunk 5.
    assert!(
        xl(&mut o, &ml, &eth(5, 0xc, MacAddr::BROADCAST, VLAN_CFI | 30))
            .actions
            .is_empty()
    );
    // Learned in VLAN 10 from the access port; unicast back from the trunk, tagged 10.
    let x = xl(&mut o, &ml, &eth(4, 0xd, mac(0xa), VLAN_CFI | 10));
    assert_eq!(
        x.actions,
        vec![DpAction::PopVlan, DpAction::Output(PortNo(1))]
    );
    assert_eq!(ml.lookup(10, mac(0xa)), Some(PortNo(1)));
    assert_eq!(ml.lookup(20, mac(0xa)), None);
}

// ---- stats ------------------------------------------------------------------------

#[test]
fn stats_builders() {
    let mut o = switch(2);
    for i in 0..10 {
        o.flow_mod(&add(0, 100, ip_src(i), apply(vec![out(1)])), 0)
            .unwrap();
    }
    o.flow_mod(&add(3, 1, Match::default(), apply(vec![out(2)])), 0)
        .unwrap();
    let mut req = all_stats();
    assert_eq!(o.flow_stats(&req, 1500).unwrap().len(), 11);
    assert_eq!(o.flow_stats(&req, 1500).unwrap()[0].duration_sec, 1);
    req.out_port = PortNo(2);
    assert_eq!(o.flow_stats(&req, 0).unwrap().len(), 1);
    req.out_port = PortNo::ANY;
    req.table_id = TableId(0);
    req.match_ = ip_src(3);
    let s = o.flow_stats(&req, 0).unwrap();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].match_, ip_src(3));
    req.table_id = TableId(254);
    assert_eq!(
        o.flow_stats(&req, 0).err(),
        Some(OfpError::BadRequestTableId)
    );
    let agg = o.aggregate_stats(&all_stats()).unwrap();
    assert_eq!(agg.flow_count, 11);
    let ts = o.table_stats();
    assert_eq!(ts.len(), 254);
    assert_eq!(ts[0].active_count, 10);
    assert_eq!(ts[3].active_count, 1);
    let tf = o.table_features();
    assert_eq!(tf.len(), 254);
    assert!(tf[253].properties.iter().any(|p| matches!(
        p,
        crate::openflow::message::TableFeatureProp::NextTables { tables, .. } if tables.is_empty()
    )));
    assert_eq!(o.desc().dp_desc, "br0");
    assert_eq!(o.group_features().types, 0xf);
    assert!(o.meter_features().max_meter > 0);
}

#[test]
fn flow_stats_job_streams_in_64k_messages() {
    let mut o = switch(2);
    for i in 0..3000 {
        o.flow_mod(&add(0, 100, ip_src(i), apply(vec![out(1)])), 0)
            .unwrap();
    }
    let req = all_stats();
    let all = FlowStatsJob::new(9, 0, o.flow_stats_rules(&req).unwrap()).encode_all();
    assert!(all.len() > 1);
    let mut job = FlowStatsJob::new(9, 0, o.flow_stats_rules(&req).unwrap());
    let mut streamed = vec![];
    loop {
        let c = job.next_chunk(crate::openflow::Version::V1_3, 1);
        if c.is_empty() {
            break;
        }
        streamed.extend(c);
    }
    assert_eq!(streamed, all);
    let mut n = 0;
    for (i, m) in all.iter().enumerate() {
        assert!(m.len() <= 65535);
        assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len());
        let more = u16::from_be_bytes([m[10], m[11]]) & 1 != 0;
        assert_eq!(more, i + 1 < all.len());
        let Ok(crate::openflow::message::OfpMsg {
            body: crate::openflow::message::Message::MultipartReply(r),
            ..
        }) = crate::openflow::decode(m)
        else {
            panic!("not a multipart reply");
        };
        let crate::openflow::message::MpReplyBody::Flow(v) = r.body else {
            panic!("not flow stats");
        };
        n += v.len();
    }
    assert_eq!(n, 3000);
    // One instruction list for all 3000 rules.
    assert_eq!(o.instr_pool_len(), 1);
}

// ---- megaflow property ------------------------------------------------------------

mod prop {
    use super::*;
    use proptest::prelude::*;

    /// Fields rules match on, with their OXM ids (all under dl_type=ip, proto=tcp
    /// prerequisites, which every generated key satisfies or not).
    #[derive(Clone, Debug)]
    struct RuleSpec {
        table: u8,
        prio: u16,
        in_port: Option<u32>,
        src: Option<(u32, u32)>,
        dst_port: Option<u16>,
        tos: Option<u8>,
        actions: Vec<u8>,
        goto: bool,
    }

    fn rule_strategy() -> impl Strategy<Value = RuleSpec> {
        (
            0u8..3,
            0u16..4,
            proptest::option::of(1u32..4),
            proptest::option::of((
                0u32..4,
                prop_oneof![
                    Just(0xffff_ffffu32),
                    Just(0xffff_fffeu32),
                    Just(0xffff_0000u32)
                ],
            )),
            proptest::option::of(0u16..3),
            proptest::option::of(0u8..2),
            proptest::collection::vec(0u8..6, 0..4),
            any::<bool>(),
        )
            .prop_map(
                |(table, prio, in_port, src, dst_port, tos, actions, goto)| RuleSpec {
                    table,
                    prio,
                    in_port,
                    src,
                    dst_port,
                    tos,
                    actions,
                    goto,
                },
            )
    }

    fn install(o: &mut Ofproto, r: &RuleSpec) {
        o.flow_mod(&flow_mod_for(r), 0).unwrap();
    }

    fn flow_mod_for(r: &RuleSpec) -> FlowMod {
        let mut fields = vec![];
        if let Some(p) = r.in_port {
            fields.push(OxmField::exact(OxmId::InPort, p as u128));
        }
        let ip = r.src.is_some() || r.dst_port.is_some() || r.tos.is_some();
        if ip {
            fields.push(OxmField::exact(OxmId::EthType, 0x800));
        }
        if let Some(t) = r.tos {
            fields.push(OxmField::exact(OxmId::IpDscp, t as u128));
        }
        if r.dst_port.is_some() {
            fields.push(OxmField::exact(OxmId::IpProto, 6));
        }
        if let Some((v, mask)) = r.src {
            fields.push(OxmField {
                id: OxmId::Ipv4Src,
                value: (v & mask) as u128,
                mask: if mask == u32::MAX {
                    None
                } else {
                    Some(mask as u128)
                },
            });
        }
        if let Some(p) = r.dst_port {
            fields.push(OxmField::exact(OxmId::TcpDst, p as u128));
        }
        let actions: Vec<Action> = r
            .actions
            .iter()
            .map(|a| match a {
                0 => out(1),
                1 => out(2),
                2 => out(3),
                3 if ip => Action::SetField(OxmField::exact(OxmId::Ipv4Src, 1)),
                3 => Action::SetField(OxmField::exact(OxmId::EthDst, 7)),
                4 => Action::Output {
                    port: PortNo::IN_PORT,
                    max_len: 0,
                },
                _ => Action::SetField(OxmField::exact(OxmId::InPort, 2)),
            })
            .collect();
        let mut ins = vec![Instruction::ApplyActions(actions)];
        if r.goto && r.table < 2 {
            ins.push(Instruction::GotoTable(TableId(r.table + 1)));
        }
        add(r.table, r.prio, Match { fields }, ins)
    }

    proptest! {
        /// The compact rule representation round-trips: what the table gives back
        /// (match, value, mask, instructions) is what went in, equal instruction
        /// lists share one allocation, and flow stats encoded straight from the
        /// rules are byte-identical to encoding the `FlowStats` values.
        #[test]
        fn compact_rules_round_trip(rules in proptest::collection::vec(rule_strategy(), 1..16)) {
            let mut o = switch(3);
            let mut want = std::collections::HashMap::new();
            for r in &rules {
                let f = flow_mod_for(r);
                o.flow_mod(&f, 0).unwrap();
                want.insert((f.table_id, f.priority, f.match_.clone()), f);
            }
            prop_assert_eq!(o.n_rules(), want.len());
            let mut seen = 0;
            let mut lists: Vec<Arc<InstructionList>> = vec![];
            for t in 0..3u8 {
                o.table(TableId(t)).unwrap().for_each(|r| {
                    let f = &want[&(TableId(t), r.priority, r.match_())];
                    let (v, m) = match_::match_to_key(&f.match_).unwrap();
                    assert_eq!(r.value(), v);
                    assert_eq!(*r.mask(), m);
                    assert_eq!(&**r.instructions, &f.instructions[..]);
                    if let Some(l) = lists.iter().find(|l| l[..] == r.instructions[..]) {
                        assert!(Arc::ptr_eq(l, &r.instructions));
                    } else {
                        lists.push(r.instructions.clone());
                    }
                    seen += 1;
                });
            }
            prop_assert_eq!(seen, want.len());
            prop_assert!(o.instr_pool_len() >= lists.len());
            let req = all_stats();
            let stats = o.flow_stats(&req, 2500).unwrap();
            let mut old = vec![];
            crate::openflow::encode_multipart_reply_split(
                7,
                &crate::openflow::message::MpReplyBody::Flow(stats),
                &mut old,
            )
            .unwrap();
            let job = FlowStatsJob::new(7, 2500, o.flow_stats_rules(&req).unwrap());
            prop_assert_eq!(job.encode_all(), old);
        }
    }

    fn key_strategy() -> impl Strategy<Value = FlowKey> {
        (
            1u32..4,
            0u32..4,
            0u16..3,
            0u8..2,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(in_port, src, dport, dscp, is_ip, is_tcp)| {
                let mut k = FlowKey::default();
                k.set(Field::InPort, in_port as u128);
                k.set(Field::DlDst, 0x0200_0000_0001);
                if is_ip {
                    k.set(Field::DlType, 0x800);
                    k.set(Field::NwSrc, src as u128);
                    k.set(Field::NwTos, (dscp as u128) << 2);
                    k.set(Field::NwTtl, 64);
                    if is_tcp {
                        k.set(Field::NwProto, 6);
                        k.set(Field::TpDst, dport as u128);
                    }
                } else {
                    k.set(Field::DlType, 0x806);
                }
                k
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        #[test]
        fn megaflow_mask_is_sufficient(
            rules in proptest::collection::vec(rule_strategy(), 1..12),
            k1 in key_strategy(),
            others in proptest::collection::vec((key_strategy(), any::<u64>()), 1..16),
        ) {
            let mut o = switch(3);
            for r in &rules {
                install(&mut o, r);
            }
            let snap = o.publish();
            let ml = MacLearning::default();
            let opts = XlateOptions::default();
            let x1 = translate(&snap, &ml, &k1, &opts);
            for (k, noise) in others {
                // A second key that agrees with k1 on every bit of wc1.
                let mut k2 = FlowKey::default();
                for i in 0..k2.w.len() {
                    let n = k.w[i] ^ noise.rotate_left(i as u32 * 7);
                    k2.w[i] = (k1.w[i] & x1.wc.w[i]) | (n & !x1.wc.w[i]);
                }
                let x2 = translate(&snap, &ml, &k2, &opts);
                prop_assert_eq!(&x2.actions, &x1.actions, "k1={:?} k2={:?} wc={:?}", k1, k2, x1.wc);
            }
        }
    }
}

/// The per-rule footprint is what bounds the switch's memory with 100k+ rules
/// (see `rule.rs`; `tests/footprint.rs` counts the whole cost). 136 bytes
/// and the `Arc`'s two counts make a 160-byte chunk of glibc's malloc; 8
/// bytes more would take the next size, 176.
#[test]
fn rule_footprint_stays_small() {
    let rule = std::mem::size_of::<Rule>();
    eprintln!("size_of::<Rule>() = {rule}");
    assert!(rule <= 136, "Rule grew to {rule} bytes");
}

// ---- translation budgets and the group graph -----------------------------------------

fn add_group(o: &mut Ofproto, t: GroupType, id: u32, buckets: Vec<Bucket>) -> Result<(), OfpError> {
    o.group_mod(&gm(GroupModCommand::Add, t, id, buckets), 0)
        .map(|_| ())
}

/// `n` ALL groups, `n` the top: group `i` has two buckets, each sending to
/// group `i - 1` (`fanout` times), and group 1 runs `leaf` — the graph of
/// issue 9 whose paths double at every level.
fn group_bomb_with(o: &mut Ofproto, n: u32, fanout: usize, leaf: Vec<Action>) {
    add_group(o, GroupType::All, 1, vec![bucket(0, leaf)]).unwrap();
    for i in 2..=n {
        let b = bucket(0, vec![Action::Group(GroupId(i - 1)); fanout]);
        add_group(o, GroupType::All, i, vec![b.clone(), b]).unwrap();
    }
}

/// [`group_bomb_with`] whose leaves output to port 2.
fn group_bomb(o: &mut Ofproto, n: u32, fanout: usize) {
    group_bomb_with(o, n, fanout, vec![out(2)]);
}

fn packet_out_group(o: &mut Ofproto, g: u32) -> XlateOutput {
    let snap = o.publish();
    translate_actions(
        &snap,
        &MacLearning::default(),
        &key(1),
        &[Action::Group(GroupId(g))],
        &XlateOptions::default(),
    )
}

#[test]
fn budget_group_bomb_stops_at_the_bucket_budget() {
    use super::xlate::{Budget, MAX_BUCKETS, MAX_DEPTH, MAX_DP_ACTIONS, MAX_OUTPUTS, MAX_STEPS};
    let mut o = switch(3);
    let before = crate::util::coverage::c::xlate_too_many_buckets.load(Ordering::Relaxed);
    group_bomb(&mut o, 32, 2);
    let x = packet_out_group(&mut o, 32);
    // 2^31 leaves would be 2^31 outputs; the translation stops early and drops.
    assert!(x.actions.is_empty(), "{} actions", x.actions.len());
    assert!(x.budget.is_some(), "{:?}", x.work);
    assert_eq!(x.slow, 0);
    // The work done is bounded by the budgets, whatever was hit first.
    assert!(x.work.buckets <= MAX_BUCKETS);
    assert!(x.work.steps <= MAX_STEPS);
    assert!(x.work.outputs <= MAX_OUTPUTS);
    assert!(x.work.max_depth <= MAX_DEPTH);
    assert!(x.groups.len() as u32 <= MAX_BUCKETS);
    // Outputs come first here (one per leaf), then buckets.
    assert_eq!(x.budget, Some(Budget::Outputs));
    let total = x.work.buckets + x.work.steps + x.work.outputs + x.work.lookups;
    assert!(
        total < MAX_BUCKETS + MAX_STEPS + MAX_OUTPUTS + MAX_DP_ACTIONS as u32,
        "{:?}",
        x.work
    );
    assert!(
        crate::util::coverage::c::xlate_too_many_outputs.load(Ordering::Relaxed) > 0
            || crate::util::coverage::c::xlate_too_many_buckets.load(Ordering::Relaxed) > before
    );

    // Leaves that output nothing: the bucket budget is what stops it.
    let mut o = switch(3);
    group_bomb_with(&mut o, 32, 2, vec![]);
    let x = packet_out_group(&mut o, 32);
    assert_eq!(x.budget, Some(Budget::Buckets));
    assert_eq!(x.work.buckets, MAX_BUCKETS);
    assert!(x.work.steps <= MAX_STEPS);
    assert!(x.groups.len() as u32 <= MAX_BUCKETS);
    assert!(crate::util::coverage::c::xlate_too_many_buckets.load(Ordering::Relaxed) > before);
}

#[test]
fn budget_hit_on_a_miss_installs_a_drop_with_the_mask_read_so_far() {
    use super::xlate::Budget;
    let mut o = switch(3);
    group_bomb(&mut o, 20, 2);
    o.flow_mod(
        &add(
            0,
            1,
            ip_src(0x0a000001),
            apply(vec![Action::Group(GroupId(20))]),
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    let x = xl(&mut o, &ml, &key(1));
    assert!(x.budget.is_some());
    assert!(x.actions.is_empty());
    assert_eq!(x.slow, 0);
    // The drop depends on nw_src (the rule's match), which the mask covers.
    assert_eq!(x.wc.get(Field::NwSrc), 0xffff_ffff);
    // A well-behaved rule next to it is unaffected.
    let mut k = key(1);
    k.set(Field::NwSrc, 0x0a000009);
    o.flow_mod(&add(0, 0, Match::default(), apply(vec![out(2)])), 0)
        .unwrap();
    let x = xl(&mut o, &ml, &k);
    assert_eq!(x.budget, None);
    assert_eq!(x.actions, vec![DpAction::Output(PortNo(2))]);
    let _ = Budget::ALL;
}

#[test]
fn budget_table_lookups_and_depth_via_packet_out_table() {
    use super::xlate::{Budget, MAX_RESUBMITS};
    // Every table sends to the next; the last one outputs. A PACKET_OUT that
    // outputs to TABLE many times pays one pipeline run each.
    let mut o = switch(3);
    for t in 0..(TableId::N_TABLES - 1) {
        let ins = vec![Instruction::GotoTable(TableId(t + 1))];
        o.flow_mod(&add(t, 0, Match::default(), ins), 0).unwrap();
    }
    let snap = o.publish();
    let table = Action::Output {
        port: PortNo::TABLE,
        max_len: 0,
    };
    let x = translate_actions(
        &snap,
        &MacLearning::default(),
        &key(1),
        &vec![table; 64],
        &XlateOptions::default(),
    );
    assert_eq!(x.budget, Some(Budget::Resubmits));
    assert_eq!(x.work.lookups, MAX_RESUBMITS);
    assert!(x.rules.len() as u32 <= MAX_RESUBMITS);
    assert!(x.actions.is_empty());
}

#[test]
fn budget_datapath_actions_and_steps() {
    use super::xlate::{Budget, MAX_STEPS};
    let mut o = switch(3);
    // One rule with 1024 rewrite+output pairs per table over 8 tables: the
    // emitted actions run out first.
    let mut acts = Vec::new();
    for i in 0..512u128 {
        acts.push(Action::SetField(OxmField::exact(OxmId::EthDst, i + 1)));
        acts.push(out(2));
    }
    for t in 0..8u8 {
        let mut ins = vec![Instruction::ApplyActions(acts.clone())];
        if t < 7 {
            ins.push(Instruction::GotoTable(TableId(t + 1)));
        }
        o.flow_mod(&add(t, 0, Match::default(), ins), 0).unwrap();
    }
    let ml = MacLearning::default();
    let x = xl(&mut o, &ml, &key(1));
    assert!(matches!(
        x.budget,
        Some(Budget::Actions) | Some(Budget::Outputs)
    ));
    assert!(x.actions.is_empty());

    // Rewrites only (nothing emitted): the interpreted-action budget stops it.
    let mut o = switch(3);
    let acts: Vec<Action> = (0..1024u128)
        .map(|i| Action::SetField(OxmField::exact(OxmId::EthDst, i)))
        .collect();
    for t in 0..60u8 {
        let ins = vec![
            Instruction::ApplyActions(acts.clone()),
            Instruction::GotoTable(TableId(t + 1)),
        ];
        o.flow_mod(&add(t, 0, Match::default(), ins), 0).unwrap();
    }
    let x = xl(&mut o, &ml, &key(1));
    assert_eq!(x.budget, Some(Budget::Steps));
    assert_eq!(x.work.steps, MAX_STEPS);
}

/// A fast-failover chain where every group has two buckets watching the next
/// group, and the last group is dead: without memoisation that is 2^n
/// liveness evaluations per packet.
#[test]
fn budget_watch_group_liveness_is_memoised() {
    let mut o = switch(3);
    let mut p1 = o.port(PortNo(1)).unwrap().clone();
    p1.state |= PS_LINK_DOWN;
    o.update_port(p1);
    o.group_mod(
        &gm(
            GroupModCommand::Add,
            GroupType::FastFailover,
            1,
            vec![bucket(1, vec![out(1)])],
        ),
        0,
    )
    .unwrap();
    for i in 2..=30 {
        let mut b = bucket(0, vec![out(3)]);
        b.watch_group = GroupId(i - 1);
        o.group_mod(
            &gm(
                GroupModCommand::Add,
                GroupType::FastFailover,
                i,
                vec![b.clone(), b],
            ),
            0,
        )
        .unwrap();
    }
    let x = packet_out_group(&mut o, 30);
    assert_eq!(x.budget, None);
    assert!(x.actions.is_empty(), "every bucket is dead");
    // Each group evaluated once, each bucket checked at most once more.
    assert!(x.work.liveness <= 2 * 30 + 1, "{:?}", x.work);
}

#[test]
fn group_graph_refuses_loops_and_deep_chains_in_linear_work() {
    use super::validate::{GraphCheck, MAX_GROUP_CHAIN};
    let mut o = switch(3);
    // The bomb graph itself is fine (32 groups chain, the limit).
    group_bomb(&mut o, MAX_GROUP_CHAIN, 2);
    // One more on top is too deep.
    let b = bucket(0, vec![Action::Group(GroupId(MAX_GROUP_CHAIN)); 2]);
    let top = gm(
        GroupModCommand::Add,
        GroupType::All,
        MAX_GROUP_CHAIN + 1,
        vec![b.clone(), b],
    );
    assert_eq!(
        o.group_mod(&top, 0).err(),
        Some(OfpError::ChainingUnsupported)
    );
    // Making the bottom group point at the top closes a loop.
    let looped = gm(
        GroupModCommand::Modify,
        GroupType::All,
        1,
        vec![bucket(0, vec![Action::Group(GroupId(MAX_GROUP_CHAIN))])],
    );
    assert_eq!(o.group_mod(&looped, 0).err(), Some(OfpError::GroupLoop));
    // Lengthening the bottom of the chain from below is too deep as well: the
    // referrers above it count.
    o.group_mod(
        &gm(
            GroupModCommand::Add,
            GroupType::All,
            100,
            vec![bucket(0, vec![out(1)])],
        ),
        0,
    )
    .unwrap();
    let longer = gm(
        GroupModCommand::Modify,
        GroupType::All,
        1,
        vec![bucket(0, vec![Action::Group(GroupId(100))])],
    );
    assert_eq!(
        o.group_mod(&longer, 0).err(),
        Some(OfpError::ChainingUnsupported)
    );
    // A watch_group loop is a loop too.
    let mut w = bucket(0, vec![out(1)]);
    w.watch_group = GroupId(MAX_GROUP_CHAIN);
    let ff = gm(GroupModCommand::Modify, GroupType::FastFailover, 1, vec![w]);
    assert_eq!(o.group_mod(&ff, 0).err(), Some(OfpError::GroupLoop));

    // The check visits each group at most twice (once below, once above),
    // although the graph has 2^31 paths.
    let mut c = GraphCheck::new(&o.groups, &o.group_parents, GroupId(500));
    c.check(&[GroupId(MAX_GROUP_CHAIN - 1)]).unwrap();
    assert!(c.visits <= 2 * MAX_GROUP_CHAIN + 2, "{}", c.visits);
    let mut c = GraphCheck::new(&o.groups, &o.group_parents, GroupId(1));
    assert_eq!(c.check(&[GroupId(100)]), Err(OfpError::ChainingUnsupported));
    assert!(c.visits <= 2 * MAX_GROUP_CHAIN + 2, "{}", c.visits);

    // Deleting a group leaves references to it dangling; re-adding it is
    // checked against its referrers.
    o.group_mod(&gm(GroupModCommand::Delete, GroupType::All, 1, vec![]), 0)
        .unwrap();
    assert_eq!(
        o.group_mod(
            &gm(
                GroupModCommand::Add,
                GroupType::All,
                1,
                vec![bucket(0, vec![Action::Group(GroupId(100))])]
            ),
            0
        )
        .err(),
        Some(OfpError::ChainingUnsupported)
    );
    add_group(&mut o, GroupType::All, 1, vec![bucket(0, vec![out(2)])]).unwrap();
}

mod budget_prop {
    use super::*;
    use crate::ofproto::validate::MAX_GROUP_CHAIN;
    use crate::ofproto::xlate::{
        MAX_BUCKETS, MAX_DEPTH, MAX_DP_ACTIONS, MAX_LIVENESS_CHECKS, MAX_OUTPUTS, MAX_RESUBMITS,
        MAX_STEPS,
    };
    use proptest::prelude::*;

    /// One generated group: id, type, and per bucket (watch group, group refs,
    /// whether it outputs).
    type GroupSpec = (u32, u8, Vec<(Option<u32>, Vec<u32>, bool)>);

    const N_IDS: u32 = 80;
    /// Ids of the second generated chain start above this.
    const CHAIN2: u32 = 40;

    fn group_spec() -> impl Strategy<Value = GroupSpec> {
        (
            1..=N_IDS,
            0u8..4,
            proptest::collection::vec(
                (
                    proptest::option::of(1..=N_IDS),
                    proptest::collection::vec(1..=N_IDS, 0..3),
                    any::<bool>(),
                ),
                1..4,
            ),
        )
    }

    fn to_mod(spec: &GroupSpec, modify: bool) -> GroupMod {
        let (id, ty, buckets) = spec;
        let group_type = match ty {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            _ => GroupType::FastFailover,
        };
        let buckets = buckets
            .iter()
            .take(if group_type == GroupType::Indirect {
                1
            } else {
                3
            })
            .map(|(watch, refs, output)| {
                let mut actions: Vec<Action> =
                    refs.iter().map(|g| Action::Group(GroupId(*g))).collect();
                if *output {
                    actions.push(out(2));
                }
                Bucket {
                    weight: (group_type == GroupType::Select) as u16,
                    watch_port: if group_type == GroupType::FastFailover && watch.is_none() {
                        PortNo(1)
                    } else {
                        PortNo::ANY
                    },
                    watch_group: match (group_type, watch) {
                        (GroupType::FastFailover | GroupType::Select, Some(w)) => GroupId(*w),
                        _ => GroupId::ANY,
                    },
                    actions,
                }
            })
            .collect();
        gm(
            if modify {
                GroupModCommand::Modify
            } else {
                GroupModCommand::Add
            },
            group_type,
            *id,
            buckets,
        )
    }

    /// Longest chain of groups, computed independently of `GraphCheck` by
    /// relaxation; `None` when the graph has a cycle.
    fn longest_chain(o: &Ofproto) -> Option<u32> {
        let mut h: std::collections::HashMap<GroupId, u32> =
            o.groups.keys().map(|g| (*g, 1)).collect();
        for _ in 0..=o.groups.len() + 1 {
            let mut changed = false;
            for (id, g) in o.groups.iter() {
                let best = validate::group_children(&g.buckets)
                    .iter()
                    .map(|c| h.get(c).copied().unwrap_or(0))
                    .max()
                    .unwrap_or(0)
                    + 1;
                if h[id] != best {
                    h.insert(*id, best);
                    changed = true;
                }
            }
            if !changed {
                return Some(h.values().copied().max().unwrap_or(0));
            }
        }
        None
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        /// Whatever GROUP_MODs a peer sends, the accepted graph stays acyclic
        /// and within MAX_GROUP_CHAIN; and translating any packet through any
        /// of the groups stays within every budget.
        #[test]
        fn group_graphs_stay_bounded(
            adds in proptest::collection::vec(group_spec(), 1..80),
            mods in proptest::collection::vec(group_spec(), 0..40),
            chain in 0u32..CHAIN2,
            chain2 in 1u32..CHAIN2,
        ) {
            let mut o = switch(3);
            // Two long chains first, then splice the bottom of the first onto
            // the top of the second, so depth limits are exercised from above
            // and from below.
            for (base, len) in [(0, chain), (CHAIN2, chain2)] {
                for i in base + 1..=base + len {
                    let refs = if i > base + 1 { vec![i - 1, i - 1] } else { vec![] };
                    let spec: GroupSpec = (i, 0, vec![(None, refs.clone(), true), (None, refs, false)]);
                    let _ = o.group_mod(&to_mod(&spec, false), 0);
                }
            }
            let splice: GroupSpec = (1, 0, vec![(None, vec![CHAIN2 + chain2.min(MAX_GROUP_CHAIN)], false)]);
            let _ = o.group_mod(&to_mod(&splice, true), 0);
            for s in &adds {
                let _ = o.group_mod(&to_mod(s, false), 0);
            }
            for s in &mods {
                let _ = o.group_mod(&to_mod(s, true), 0);
            }
            let longest = longest_chain(&o);
            prop_assert!(longest.is_some(), "accepted graph has a cycle");
            prop_assert!(longest.unwrap_or(0) <= MAX_GROUP_CHAIN);
            let snap = o.publish();
            let ml = MacLearning::default();
            for g in snap.groups.keys() {
                let x = translate_actions(
                    &snap,
                    &ml,
                    &key(1),
                    &[Action::Group(*g)],
                    &XlateOptions::default(),
                );
                let w = x.work;
                prop_assert!(w.buckets <= MAX_BUCKETS && w.steps <= MAX_STEPS);
                prop_assert!(w.outputs <= MAX_OUTPUTS && w.lookups <= MAX_RESUBMITS);
                prop_assert!(w.liveness <= MAX_LIVENESS_CHECKS && w.max_depth <= MAX_DEPTH);
                prop_assert!(x.actions.len() <= MAX_DP_ACTIONS);
                prop_assert!(x.groups.len() as u32 <= MAX_BUCKETS);
                if x.budget.is_some() {
                    prop_assert!(x.actions.is_empty());
                    prop_assert_eq!(x.slow, 0);
                } else {
                    // A valid graph that fits the budgets nests within MAX_DEPTH.
                    prop_assert!(w.max_depth <= MAX_GROUP_CHAIN + 1);
                }
            }
        }
    }
}

// ---- set-field audit ----------------------------------------------------------------

/// Every field the codec accepts in a set-field is either rewritten in the
/// packet's bytes (checked by executing the translation on a real frame and
/// extracting the result) or, for pipeline fields, seen by the next table —
/// or refused at FLOW_MOD time. Nothing is accepted and silently ignored.
mod set_field_audit {
    use super::*;
    use crate::datapath::execute::{execute_actions, ExecSink};
    use crate::datapath::extract::extract;
    use crate::datapath::meter::MeterTable;
    use crate::datapath::packet::Packet;
    use crate::ofproto::match_::{oxm_full_mask, oxm_location};
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    #[derive(Default)]
    pub(super) struct Sink(pub(super) Vec<(PortNo, Vec<u8>)>);
    impl ExecSink for Sink {
        fn output(&mut self, port: PortNo, pkt: &mut Packet, _last: bool) {
            self.0.push((port, pkt.data().to_vec()));
        }
        fn userspace(&mut self, _: &Packet, _: UserspaceReason) {}
    }

    const S: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const D: [u8; 6] = [2, 0, 0, 0, 0, 2];

    pub(super) fn eth_ip4(proto: u8) -> Vec<u8> {
        let mut v = Vec::new();
        let b = PacketBuilder::ethernet2(S, D).ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64);
        match proto {
            6 => b.tcp(1000, 80, 1, 100).write(&mut v, &[1, 2, 3]),
            1 => b.icmpv4_echo_request(1, 1).write(&mut v, &[0; 8]),
            _ => b.udp(1000, 53).write(&mut v, &[0; 12]),
        }
        .unwrap();
        if proto == 132 {
            v[14 + 9] = 132;
            v[24] = 0;
            v[25] = 0;
            let c =
                !crate::datapath::execute::fold(crate::datapath::execute::ones_sum(&v[14..34], 0));
            v[24..26].copy_from_slice(&c.to_be_bytes());
        }
        v
    }

    pub(super) fn eth_ip6(proto: u8, icmp: &[u8]) -> Vec<u8> {
        let mut a = [0u8; 16];
        a[0] = 0xfe;
        a[1] = 0x80;
        a[15] = 1;
        let mut b = a;
        b[15] = 2;
        let mut v = Vec::new();
        let pb = PacketBuilder::ethernet2(S, D).ipv6(a, b, 64);
        match proto {
            6 => pb.tcp(1, 2, 3, 4).write(&mut v, &[7; 4]),
            58 => pb
                .icmpv6_raw(icmp[0], icmp[1], [icmp[4], icmp[5], icmp[6], icmp[7]])
                .write(&mut v, &icmp[8..]),
            _ => pb.udp(5, 6).write(&mut v, &[0; 12]),
        }
        .unwrap();
        if proto == 132 {
            v[14 + 6] = 132;
        }
        v
    }

    pub(super) fn nd(ty: u8, opt: u8) -> Vec<u8> {
        let mut m = vec![ty, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0x20, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]);
        m.extend_from_slice(&[opt, 1]);
        m.extend_from_slice(&S);
        eth_ip6(58, &m)
    }

    pub(super) fn arp() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&D);
        f.extend_from_slice(&S);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&S);
        f.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2]);
        f
    }

    /// `inner` with an 802.1Q tag (VID 5, PCP 1) after the addresses.
    pub(super) fn tagged(inner: Vec<u8>) -> Vec<u8> {
        let mut f = inner[..12].to_vec();
        f.extend_from_slice(&[0x81, 0x00, 0x20, 5]);
        f.extend_from_slice(&inner[12..]);
        f
    }

    /// One MPLS entry (label 16, TTL 9) over IPv4/UDP.
    pub(super) fn mpls() -> Vec<u8> {
        let ip = eth_ip4(17);
        let mut f = ip[..12].to_vec();
        f.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x01, 0x09]);
        f.extend_from_slice(&ip[14..]);
        f
    }

    /// A PBB frame (I-SID 0x123) carrying the IPv4/UDP frame.
    pub(super) fn pbb() -> Vec<u8> {
        let mut f = vec![
            0x0e, 0, 0, 0, 0, 2, 0x0e, 0, 0, 0, 0, 1, 0x88, 0xe7, 0, 0, 0x01, 0x23,
        ];
        f.extend_from_slice(&eth_ip4(17));
        f
    }

    /// The match and frame a set-field of `id` is tried on.
    fn case(id: OxmId) -> (Vec<(OxmId, u128)>, Vec<u8>) {
        use OxmId::*;
        let ip4 = (EthType, 0x800);
        let ip6 = (EthType, 0x86dd);
        match id {
            InPort | InPhyPort | Metadata | EthDst | EthSrc | EthType | TunnelId | TunIpv4Src
            | TunIpv4Dst => (vec![], eth_ip4(6)),
            VlanVid | VlanPcp => (vec![(VlanVid, 0x1000 | 5)], tagged(eth_ip4(6))),
            IpDscp | IpEcn | IpProto | Ipv4Src | Ipv4Dst => (vec![ip4], eth_ip4(6)),
            TcpSrc | TcpDst => (vec![ip4, (IpProto, 6)], eth_ip4(6)),
            UdpSrc | UdpDst => (vec![ip4, (IpProto, 17)], eth_ip4(17)),
            SctpSrc | SctpDst => (vec![ip4, (IpProto, 132)], eth_ip4(132)),
            Icmpv4Type | Icmpv4Code => (vec![ip4, (IpProto, 1)], eth_ip4(1)),
            ArpOp | ArpSpa | ArpTpa | ArpSha | ArpTha => (vec![(EthType, 0x806)], arp()),
            Ipv6Src | Ipv6Dst | Ipv6Flabel | Ipv6Exthdr => (vec![ip6], eth_ip6(6, &[])),
            Icmpv6Type | Icmpv6Code => (
                vec![ip6, (IpProto, 58)],
                eth_ip6(58, &[128, 0, 0, 0, 0, 1, 0, 1]),
            ),
            Ipv6NdTarget | Ipv6NdSll => (vec![ip6, (IpProto, 58), (Icmpv6Type, 135)], nd(135, 1)),
            Ipv6NdTll => (vec![ip6, (IpProto, 58), (Icmpv6Type, 136)], nd(136, 2)),
            MplsLabel | MplsTc | MplsBos => (vec![(EthType, 0x8847)], mpls()),
            PbbIsid => (vec![(EthType, 0x88e7)], pbb()),
        }
    }

    /// Fields that live only in the pipeline (no packet bytes): a set-field
    /// must be visible to the next table.
    fn pipeline_only(id: OxmId) -> bool {
        matches!(
            id,
            OxmId::InPort
                | OxmId::Metadata
                | OxmId::TunnelId
                | OxmId::TunIpv4Src
                | OxmId::TunIpv4Dst
        )
    }

    /// Tries `set_field(id = value)`; `Err` is the FLOW_MOD refusal.
    fn try_set(id: OxmId, value: u128) -> Result<(), OfpError> {
        let (fields, frame) = case(id);
        let mut o = switch(3);
        let sf = Action::SetField(OxmField::exact(id, value));
        let ins = if pipeline_only(id) {
            vec![
                Instruction::ApplyActions(vec![sf]),
                Instruction::GotoTable(TableId(1)),
            ]
        } else {
            apply(vec![sf, out(2)])
        };
        o.flow_mod(&add(0, 1, m(&fields), ins), 0)?;
        let k = extract(&frame, PortNo(1)).expect("test frame parses");
        if pipeline_only(id) {
            // Table 1 outputs to 3 only if it sees the new value.
            let (field, shift) = oxm_location(id).expect("pipeline field in key");
            let mut mt = FlowKey::default();
            mt.set(field, oxm_full_mask(id) << shift);
            let mut want = FlowKey::default();
            want.set(field, value << shift);
            let matched = crate::ofproto::match_::key_to_match(&want, &mt);
            o.flow_mod(&add(1, 1, matched, apply(vec![out(3)])), 0)
                .expect("table-1 rule");
            let x = xl(&mut o, &MacLearning::default(), &k);
            // The tunnel fields are also the packet's metadata: committed
            // before the output, as a whole-field write.
            let mut want = Vec::new();
            if matches!(field, Field::TunnelId | Field::TunSrc | Field::TunDst) {
                want.push(DpAction::SetField {
                    field,
                    value,
                    mask: field.full_mask(),
                });
            }
            want.push(DpAction::Output(PortNo(3)));
            assert_eq!(x.actions, want, "{id:?}={value:#x}");
            return Ok(());
        }
        let x = xl(&mut o, &MacLearning::default(), &k);
        let mut pkt = Packet::from_bytes(&frame, PortNo(1));
        let mut sink = Sink::default();
        execute_actions(&mut pkt, &x.actions, &mut MeterTable::new(), 0, &mut sink);
        assert_eq!(sink.0.len(), 1, "{id:?}: {:?}", x.actions);
        let bytes = &sink.0[0].1;
        let got = match extract(bytes, PortNo(1)) {
            Ok(k) => k,
            // An echo turned into a neighbor solicitation is too short for
            // one: the frame no longer parses, but the byte was written.
            Err(_) if id == OxmId::Icmpv6Type && (value == 135 || value == 136) => {
                assert_eq!(bytes[14 + 40] as u128, value);
                return Ok(());
            }
            Err(e) => panic!("{id:?}={value:#x}: rewritten frame does not parse: {e}"),
        };
        let (field, shift) = oxm_location(id).expect("packet field in key");
        let mask = match id {
            OxmId::VlanVid => 0xfff, // the present bit is not a wire bit
            _ => oxm_full_mask(id),
        };
        assert_eq!(
            (got.get(field) >> shift) & mask,
            value & mask,
            "{id:?}={value:#x} not applied: {:?}",
            x.actions
        );
        Ok(())
    }

    #[test]
    fn every_set_field_is_applied_or_refused() {
        let mut refused = Vec::new();
        for id in OxmId::ALL {
            let v = match id {
                OxmId::VlanVid => 0x1000 | 77,
                OxmId::InPort => 2,
                OxmId::ArpOp => 2,
                _ => 0x5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a_5a5a & oxm_full_mask(id),
            };
            if let Err(e) = try_set(id, v) {
                refused.push((id, e));
            }
        }
        assert_eq!(
            refused,
            vec![
                (OxmId::InPhyPort, OfpError::BadSetType),
                (OxmId::EthType, OfpError::BadSetType),
                (OxmId::IpProto, OfpError::BadSetType),
                (OxmId::MplsBos, OfpError::BadSetType),
                (OxmId::Ipv6Exthdr, OfpError::BadSetType),
            ]
        );
        // ARP opcodes beyond the byte the key keeps are refused, not cut.
        assert_eq!(try_set(OxmId::ArpOp, 0x102), Err(OfpError::BadSetArgument));
        // The Nicira tunnel addresses OVS lets OF1.3 controllers set.
        for id in OxmId::NICIRA {
            assert_eq!(try_set(id, 0x0a01_0203), Ok(()), "{id:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn random_set_fields_are_applied_or_refused(
            idx in 0usize..OxmId::ALL.len(),
            raw in any::<u128>(),
        ) {
            let id = OxmId::ALL[idx];
            let mut v = raw & oxm_full_mask(id);
            match id {
                OxmId::VlanVid => v |= 0x1000,
                OxmId::InPort => v = 1 + (v % 0xff00),
                _ => {}
            }
            // try_set asserts the rewrite itself; a refusal must be one of the
            // documented codes.
            if let Err(e) = try_set(id, v) {
                prop_assert!(
                    matches!(e, OfpError::BadSetType | OfpError::BadSetArgument),
                    "{id:?}={v:#x}: {e:?}"
                );
            }
        }
    }
}

// ---- MPLS and PBB, translated and executed on real frames --------------------------

mod encap {
    use super::set_field_audit::{eth_ip4, mpls, pbb, Sink};
    use super::*;
    use crate::datapath::execute::execute_actions;
    use crate::datapath::extract::extract;
    use crate::datapath::meter::MeterTable;
    use crate::datapath::packet::Packet;
    use crate::ofproto::xlate::XlateError;

    fn exec(x: &XlateOutput, frame: &[u8]) -> Vec<(PortNo, Vec<u8>)> {
        let mut pkt = Packet::from_bytes(frame, PortNo(1));
        let mut sink = Sink::default();
        execute_actions(&mut pkt, &x.actions, &mut MeterTable::new(), 0, &mut sink);
        sink.0
    }

    fn run(o: &mut Ofproto, frame: &[u8]) -> (XlateOutput, Vec<(PortNo, Vec<u8>)>) {
        let k = extract(frame, PortNo(1)).expect("frame parses");
        let x = xl(o, &MacLearning::default(), &k);
        let outs = exec(&x, frame);
        (x, outs)
    }

    fn sf(id: OxmId, v: u128) -> Action {
        Action::SetField(OxmField::exact(id, v))
    }

    #[test]
    fn push_mpls_three_times_then_pop_back_to_the_original_bytes() {
        let mut o = switch(3);
        o.flow_mod(
            &add(
                0,
                1,
                ip_src(0x0a00_0001),
                apply(vec![
                    Action::PushMpls(0x8847),
                    sf(OxmId::MplsLabel, 100),
                    Action::PushMpls(0x8847),
                    sf(OxmId::MplsLabel, 200),
                    sf(OxmId::MplsTc, 5),
                    Action::PushMpls(0x8848),
                    out(2),
                ]),
            ),
            0,
        )
        .unwrap();
        let frame = eth_ip4(17);
        let (x, outs) = run(&mut o, &frame);
        assert_eq!(x.error, None, "{:?}", x.actions);
        let f = &outs[0].1;
        assert_eq!(f.len(), frame.len() + 12);
        assert_eq!(&f[12..14], &[0x88, 0x48]);
        let k = extract(f, PortNo(1)).unwrap();
        // Outermost first: copies of the second (label 200, TC 5, no BoS),
        // then the second, then the first (label 100, BoS, TTL from IP).
        assert_eq!(k.get(Field::MplsLse), (200 << 12) | (5 << 9) | 64);
        assert_eq!(k.get(Field::MplsLse1), (200 << 12) | (5 << 9) | 64);
        assert_eq!(k.get(Field::MplsLse2), (100 << 12) | 0x100 | 64);
        assert_eq!(k.get(Field::MplsInner), 0x0800);
        assert_eq!(k.get(Field::NwSrc), 0x0a00_0001);
        assert_eq!(&f[26..], &frame[14..], "the IP packet is untouched");

        // A fourth push cannot be represented: dropped, as OVS does.
        let mut o4 = switch(3);
        o4.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8848)]),
                apply(vec![Action::PushMpls(0x8847), out(2)]),
            ),
            0,
        )
        .unwrap();
        let (x, outs) = run(&mut o4, f);
        assert_eq!(x.error, Some(XlateError::TooManyMplsLabels));
        assert!(outs.is_empty());

        // Popping all three gets the original frame back.
        let mut p = switch(3);
        p.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8848)]),
                apply(vec![
                    Action::PopMpls(0x8847),
                    Action::PopMpls(0x8847),
                    Action::PopMpls(0x0800),
                    out(2),
                ]),
            ),
            0,
        )
        .unwrap();
        let (x, outs) = run(&mut p, f);
        assert_eq!(x.error, None);
        assert_eq!(outs[0].1, frame);
    }

    #[test]
    fn pop_mpls_then_match_inner_l3_l4_with_a_correct_megaflow() {
        let mut o = switch(3);
        o.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8847)]),
                vec![
                    Instruction::ApplyActions(vec![Action::PopMpls(0x0800)]),
                    Instruction::GotoTable(TableId(1)),
                ],
            ),
            0,
        )
        .unwrap();
        o.flow_mod(
            &add(
                1,
                10,
                m(&[
                    (OxmId::EthType, 0x800),
                    (OxmId::Ipv4Dst, 0x0a00_0002),
                    (OxmId::IpProto, 17),
                    (OxmId::UdpDst, 53),
                ]),
                apply(vec![Action::DecNwTtl, out(2)]),
            ),
            0,
        )
        .unwrap();
        o.flow_mod(&add(1, 0, Match::default(), apply(vec![out(3)])), 0)
            .unwrap();
        let frame = mpls();
        let (x, outs) = run(&mut o, &frame);
        assert_eq!(outs.len(), 1, "{:?}", x.actions);
        assert_eq!(outs[0].0, PortNo(2));
        let want = {
            let mut w = eth_ip4(17);
            // TTL 64 -> 63, with the checksum adjusted.
            let k = extract(&outs[0].1, PortNo(1)).unwrap();
            assert_eq!(k.get(Field::NwTtl), 63);
            w[14 + 8] = 63;
            w[24..26].copy_from_slice(&outs[0].1[24..26]);
            w
        };
        assert_eq!(outs[0].1, want);
        // The megaflow pins the inner fields the second table looked at, and
        // the payload type the pop relied on.
        for f in [Field::NwDst, Field::TpDst, Field::NwProto, Field::MplsInner] {
            assert_eq!(x.wc.get(f), f.full_mask(), "{f:?}");
        }
        // Same labels, another inner destination: the other rule.
        let mut other = frame.clone();
        other[18 + 19] = 3;
        let (x2, outs2) = run(&mut o, &other);
        assert_eq!(outs2[0].0, PortNo(3), "{:?}", x2.actions);
        let k1 = extract(&frame, PortNo(1)).unwrap();
        let k2 = extract(&other, PortNo(1)).unwrap();
        assert_ne!(k1.masked(&x.wc), k2.masked(&x.wc));

        // Popping to a type the payload is not: its fields are unknown.
        let mut o6 = switch(3);
        o6.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8847)]),
                vec![
                    Instruction::ApplyActions(vec![Action::PopMpls(0x86dd)]),
                    Instruction::GotoTable(TableId(1)),
                ],
            ),
            0,
        )
        .unwrap();
        o6.flow_mod(
            &add(
                1,
                1,
                m(&[(OxmId::EthType, 0x86dd), (OxmId::IpProto, 17)]),
                apply(vec![out(2)]),
            ),
            0,
        )
        .unwrap();
        let (x, outs) = run(&mut o6, &frame);
        assert!(outs.is_empty(), "{:?}", x.actions);
    }

    #[test]
    fn mpls_ttl_actions_and_copy_ttl() {
        let mut o = switch(3);
        o.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8847)]),
                apply(vec![Action::DecMplsTtl, Action::CopyTtlIn, out(2)]),
            ),
            0,
        )
        .unwrap();
        let frame = mpls(); // MPLS TTL 9 over IPv4 TTL 64
        let (_, outs) = run(&mut o, &frame);
        let k = extract(&outs[0].1, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::MplsLse) & 0xff, 8);
        assert_eq!(k.get(Field::NwTtl), 8, "copy_ttl_in reached the IP header");
        let ip = &outs[0].1[18..38];
        let sum = crate::datapath::execute::fold(crate::datapath::execute::ones_sum(ip, 0));
        assert_eq!(sum, 0xffff, "IPv4 checksum stays valid");

        let mut o = switch(3);
        o.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8847)]),
                apply(vec![
                    Action::CopyTtlOut,
                    Action::SetMplsTtl(200),
                    out(2),
                    Action::CopyTtlOut,
                    out(3),
                ]),
            ),
            0,
        )
        .unwrap();
        let (_, outs) = run(&mut o, &frame);
        let k2 = extract(&outs[0].1, PortNo(1)).unwrap();
        let k3 = extract(&outs[1].1, PortNo(1)).unwrap();
        assert_eq!(k2.get(Field::MplsLse) & 0xff, 200);
        assert_eq!(k3.get(Field::MplsLse) & 0xff, 64, "copy_ttl_out from IP");

        // An expiring MPLS TTL drops, and tells the controller if it asked.
        let mut one = frame.clone();
        one[17] = 1;
        let mut o = switch(3);
        o.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x8847)]),
                apply(vec![Action::DecMplsTtl, out(2)]),
            ),
            0,
        )
        .unwrap();
        let snap = o.publish();
        let k = extract(&one, PortNo(1)).unwrap();
        let x = translate(
            &snap,
            &MacLearning::default(),
            &k,
            &XlateOptions {
                invalid_ttl_to_controller: true,
                ..XlateOptions::default()
            },
        );
        assert_eq!(x.actions.len(), 1);
        assert!(matches!(
            x.actions[0],
            DpAction::Userspace(UserspaceReason::Controller { reason: 2, .. })
        ));
    }

    #[test]
    fn pbb_push_set_match_and_pop() {
        // push_pbb + I-SID + backbone address.
        let mut o = switch(3);
        o.flow_mod(
            &add(
                0,
                1,
                ip_src(0x0a00_0001),
                apply(vec![
                    Action::PushPbb(0x88e7),
                    sf(OxmId::PbbIsid, 0xabcdef),
                    sf(OxmId::EthDst, 0x0e00_0000_0009),
                    out(2),
                ]),
            ),
            0,
        )
        .unwrap();
        let frame = eth_ip4(17);
        let (x, outs) = run(&mut o, &frame);
        assert_eq!(x.error, None);
        let f = &outs[0].1;
        assert_eq!(f.len(), frame.len() + 18);
        assert_eq!(&f[0..6], &[0x0e, 0, 0, 0, 0, 9]);
        assert_eq!(&f[6..12], &frame[6..12]);
        assert_eq!(&f[12..18], &[0x88, 0xe7, 0x00, 0xab, 0xcd, 0xef]);
        assert_eq!(&f[18..], &frame[..], "the customer frame is the original");
        let k = extract(f, PortNo(1)).unwrap();
        assert_eq!(k.get(Field::PbbIsid), 0xabcdef);
        assert_eq!(k.get(Field::PbbCType), 0x0800);
        assert_eq!(k.get(Field::NwDst), 0x0a00_0002);

        // Match on the I-SID, pop, and match the customer frame.
        let mut p = switch(3);
        p.flow_mod(
            &add(
                0,
                1,
                m(&[(OxmId::EthType, 0x88e7), (OxmId::PbbIsid, 0x123)]),
                vec![
                    Instruction::ApplyActions(vec![Action::PopPbb]),
                    Instruction::GotoTable(TableId(1)),
                ],
            ),
            0,
        )
        .unwrap();
        p.flow_mod(
            &add(
                1,
                1,
                m(&[
                    (
                        OxmId::EthDst,
                        u128::from_be_bytes([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2]),
                    ),
                    (OxmId::EthType, 0x800),
                    (OxmId::Ipv4Src, 0x0a00_0001),
                ]),
                apply(vec![out(3)]),
            ),
            0,
        )
        .unwrap();
        let (x, outs) = run(&mut p, &pbb());
        assert_eq!(outs.len(), 1, "{:?}", x.actions);
        assert_eq!(outs[0], (PortNo(3), eth_ip4(17)));
        for f in [
            Field::PbbIsid,
            Field::PbbCDst,
            Field::PbbCType,
            Field::NwSrc,
        ] {
            assert_ne!(x.wc.get(f), 0, "{f:?} not in the megaflow");
        }
        // Another I-SID misses.
        let mut other = pbb();
        other[17] = 0x24;
        assert!(run(&mut p, &other).1.is_empty());
    }
}

mod encap_prop {
    use super::*;
    use proptest::prelude::*;

    fn mpls_key() -> impl Strategy<Value = FlowKey> {
        (
            0u32..3,
            proptest::collection::vec(any::<u32>(), 3),
            prop_oneof![Just(0u16), Just(0x0800u16), Just(0x86dd)],
            0u32..4,
            0u16..3,
            any::<u8>(),
        )
            .prop_map(|(n, lses, inner, dst, port, ttl)| {
                let mut k = FlowKey::default();
                k.set(Field::InPort, 1);
                k.set(Field::DlType, 0x8847);
                for (i, f) in crate::datapath::flow::MPLS_LSES.iter().enumerate() {
                    let mut l = lses[i] & !0x100;
                    if i as u32 == n {
                        l |= 0x100;
                    }
                    if i as u32 <= n {
                        k.set(*f, l as u128);
                    }
                }
                k.set(Field::MplsInner, inner as u128);
                if inner != 0 {
                    k.set(Field::NwProto, 17);
                    k.set(Field::NwTtl, ttl as u128);
                    k.set(Field::NwDst, dst as u128);
                    k.set(Field::TpDst, port as u128);
                }
                k
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        /// Across pops, TTL decrements and inner matches, two keys that agree
        /// on the megaflow mask get the same actions.
        #[test]
        fn megaflows_stay_correct_across_pop_mpls(
            k1 in mpls_key(),
            others in proptest::collection::vec((mpls_key(), any::<u64>()), 1..12),
            pops in 1usize..3,
            dst in 0u32..4,
            dec in any::<bool>(),
        ) {
            let mut o = switch(3);
            let mut acts = vec![Action::PopMpls(0x8847); pops - 1];
            acts.push(Action::PopMpls(0x0800));
            o.flow_mod(&add(0, 1, m(&[(OxmId::EthType, 0x8847)]), vec![
                Instruction::ApplyActions(acts),
                Instruction::GotoTable(TableId(1)),
            ]), 0).unwrap();
            let mut a = vec![];
            if dec {
                a.push(Action::DecNwTtl);
            }
            a.push(out(2));
            o.flow_mod(&add(1, 5, m(&[(OxmId::EthType, 0x800), (OxmId::Ipv4Dst, dst as u128)]), apply(a)), 0).unwrap();
            o.flow_mod(&add(1, 1, m(&[(OxmId::EthType, 0x800), (OxmId::IpProto, 17), (OxmId::UdpDst, 1)]), apply(vec![out(3)])), 0).unwrap();
            let snap = o.publish();
            let ml = MacLearning::default();
            let opts = XlateOptions::default();
            let x1 = translate(&snap, &ml, &k1, &opts);
            for (k, noise) in others {
                let mut k2 = FlowKey::default();
                for i in 0..k2.w.len() {
                    let n = k.w[i] ^ noise.rotate_left(i as u32 * 7);
                    k2.w[i] = (k1.w[i] & x1.wc.w[i]) | (n & !x1.wc.w[i]);
                }
                let x2 = translate(&snap, &ml, &k2, &opts);
                prop_assert_eq!(&x2.actions, &x1.actions, "k1={:?} k2={:?} wc={:?}", k1, k2, x1.wc);
                prop_assert_eq!(x2.error, x1.error);
            }
        }
    }
}

/// Select groups spread traffic that differs only in Ethernet addresses (any
/// ethertype) or only in ARP addresses, by bucket weight, and the megaflow
/// pins exactly what the choice used.
#[test]
fn select_group_spreads_l2_and_arp_traffic_by_weight() {
    let mut o = switch(4);
    let sel = gm(
        GroupModCommand::Add,
        GroupType::Select,
        1,
        vec![wbucket(1, 0, vec![out(1)]), wbucket(3, 0, vec![out(2)])],
    );
    o.group_mod(&sel, 0).unwrap();
    o.flow_mod(
        &add(
            0,
            1,
            Match::default(),
            apply(vec![Action::Group(GroupId(1))]),
        ),
        0,
    )
    .unwrap();
    let ml = MacLearning::default();
    let count = |o: &mut Ofproto, keys: Vec<FlowKey>| {
        let mut n = [0u32; 2];
        for k in keys {
            let x = xl(o, &ml, &k);
            match x.actions.as_slice() {
                [DpAction::Output(PortNo(1))] => n[0] += 1,
                [DpAction::Output(PortNo(2))] => n[1] += 1,
                a => panic!("{a:?}"),
            }
            assert_eq!(x.wc.get(Field::DlSrc), Field::DlSrc.full_mask());
            assert_eq!(x.wc.get(Field::DlDst), Field::DlDst.full_mask());
            // Megaflow: any key that agrees on the mask picks the same bucket.
            let mut k2 = k;
            for (i, w) in k2.w.iter_mut().enumerate() {
                *w = (k.w[i] & x.wc.w[i])
                    | (0x9e37_79b9_7f4a_7c15u64.rotate_left(i as u32) & !x.wc.w[i]);
            }
            assert_eq!(xl(o, &ml, &k2).actions, x.actions, "{k:?} / {:?}", x.wc);
        }
        n
    };
    // LLDP-like frames from 400 sources.
    let l2: Vec<FlowKey> = (0..400u64)
        .map(|i| {
            let mut k = FlowKey::default();
            k.set(Field::InPort, 3);
            k.set(Field::DlType, 0x88cc);
            k.set(Field::DlSrc, (0x0200_0000_0000 | i) as u128);
            k.set(Field::DlDst, 0x0180_c200_000e);
            k
        })
        .collect();
    let n = count(&mut o, l2);
    // Weights 1:3 → about 100:300; generous bounds.
    assert!(n[0] > 50 && n[1] > 200, "{n:?}");
    // ARP requests that differ only in the target address.
    let arp: Vec<FlowKey> = (0..400u128)
        .map(|i| {
            let mut k = FlowKey::default();
            k.set(Field::InPort, 3);
            k.set(Field::DlType, 0x0806);
            k.set(Field::DlSrc, 0x0200_0000_0001);
            k.set(Field::DlDst, 0xffff_ffff_ffff);
            k.set(Field::NwProto, 1);
            k.set(Field::NwSrc, 0x0a00_0001);
            k.set(Field::NwDst, 0x0a00_0100 + i);
            k
        })
        .collect();
    let n = count(&mut o, arp);
    assert!(n[0] > 50 && n[1] > 200, "{n:?}");
}

#[test]
fn packet_out_actions_are_validated_like_flow_actions() {
    let o = switch(2);
    let k = key(1); // IPv4/TCP
    let table = Action::Output {
        port: PortNo::TABLE,
        max_len: 0,
    };
    assert_eq!(o.validate_packet_out(&k, &[table, out(2)]), Ok(()));
    assert_eq!(
        o.validate_packet_out(&k, &[Action::Group(GroupId(9))]),
        Err(OfpError::BadOutGroup)
    );
    assert_eq!(
        o.validate_packet_out(&k, &[Action::PopMpls(0x0800)]),
        Err(OfpError::MatchInconsistent)
    );
    assert_eq!(
        o.validate_packet_out(&k, &[Action::SetField(OxmField::exact(OxmId::TcpDst, 9))]),
        Ok(())
    );
    assert_eq!(
        o.validate_packet_out(&k, &[Action::SetField(OxmField::exact(OxmId::UdpDst, 9))]),
        Err(OfpError::MatchInconsistent)
    );
}

#[test]
fn a_full_table_refuses_new_rules_and_keeps_the_rest() {
    let mut o = switch(1);
    o.set_table_max_entries(3);
    for n in 1..=3 {
        o.flow_mod(&add(0, 10, ip_src(n), vec![]), 0).unwrap();
    }
    // A fourth rule: OFPFMFC_TABLE_FULL (OVS add_flow() without eviction).
    assert_eq!(
        o.flow_mod(&add(0, 10, ip_src(4), vec![]), 0).err(),
        Some(OfpError::TableFull)
    );
    // Replacing an existing rule needs no room; other tables have their own.
    o.flow_mod(&add(0, 10, ip_src(2), vec![]), 0).unwrap();
    o.flow_mod(&add(1, 10, ip_src(4), vec![]), 0).unwrap();
    assert_eq!(o.table(TableId(0)).map(|t| t.len()), Some(3));
    // The limit is what TABLE_FEATURES advertises.
    assert!(o.table_features().iter().all(|f| f.max_entries == 3));
    // Room again after a delete.
    o.flow_mod(
        &fm(FlowModCommand::DeleteStrict, 0, 10, ip_src(1), vec![]),
        0,
    )
    .unwrap();
    o.flow_mod(&add(0, 10, ip_src(4), vec![]), 0).unwrap();
}

/// Minimal datapath actions give the packets naive ones give. For random
/// frames (untagged or with one 802.1Q/802.1ad tag; IPv4 TCP/UDP, IPv6,
/// ARP, MPLS over IPv4) and random header edits interleaved with outputs
/// and ALL groups (whose bucket works on a copy of the packet),
/// the translation's actions, run by the datapath's executor, send the same
/// bytes to the same ports, in the same order, as an oracle that applies
/// each OpenFlow action to the packet at once (one executor action per
/// OpenFlow action, its arguments read from the packet as it is then), and
/// without groups never need more datapath actions than it (after a bucket,
/// translation must undo the bucket's edits, which a copy does not need).
/// A translation refused as [`XlateError::Unrestorable`] is left out (about
/// 1 % of the cases with groups). The same holds when the edits
/// are spread over a chain of tables, and the megaflow mask of that
/// translation is sufficient (a key agreeing on it gets the same actions).
///
/// Frames with two tags are left out: the key describes the outer tag only
/// (as extraction does), so after popping it translation no longer knows
/// what the packet's outer tag is, while the oracle looks. So are 802.1ad
/// and DEI tags when there are groups: a tag a bucket popped comes back as
/// 802.1Q without DEI.
mod commit_prop {
    use super::super::xlate::XlateError;
    use super::*;
    use crate::datapath::actions::DpAction;
    use crate::datapath::execute::{execute_actions, ExecSink};
    use crate::datapath::extract::extract;
    use crate::datapath::meter::MeterTable;
    use crate::netdev::packet::Packet;
    use crate::ofproto::match_::{oxm_full_mask, oxm_location};
    use proptest::prelude::*;

    const IN_PORT: u32 = 9;

    #[derive(Default)]
    struct Sent(Vec<(PortNo, Vec<u8>)>);

    impl ExecSink for Sent {
        fn output(&mut self, port: PortNo, pkt: &mut Packet, _last_use: bool) {
            self.0.push((port, pkt.data().to_vec()));
        }
        fn userspace(&mut self, _pkt: &Packet, _reason: UserspaceReason) {}
    }

    fn run(pkt: &mut Packet, acts: &[DpAction], sent: &mut Sent) -> bool {
        let o = execute_actions(pkt, acts, &mut MeterTable::new(), 0, sent);
        !o.push_failed
    }

    #[derive(Clone, Copy, Debug)]
    enum L3 {
        Tcp4,
        Udp4,
        Udp6,
        Arp,
        Mpls(u8),
    }

    fn frame(l3: L3, tag: Option<(u16, u16)>, ttl: u8, a: u8) -> Vec<u8> {
        let (src, dst) = ([2, 0, 0, 0, 0, a], [2, 0, 0, 0, 0, 0xb2]);
        let mut v = Vec::new();
        let b = etherparse::PacketBuilder::ethernet2(src, dst);
        match l3 {
            L3::Tcp4 => b
                .ipv4([10, 0, 0, a], [10, 0, 0, 2], ttl)
                .tcp(1000, 80, 7, 1000)
                .write(&mut v, b"payload")
                .unwrap(),
            L3::Udp4 | L3::Mpls(_) => b
                .ipv4([10, 0, 0, a], [10, 0, 0, 2], ttl)
                .udp(1000, 53)
                .write(&mut v, b"payload")
                .unwrap(),
            L3::Udp6 => {
                let mut s6 = [0u8; 16];
                s6[0] = 0xfd;
                s6[15] = a;
                b.ipv6(s6, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], ttl)
                    .udp(1000, 53)
                    .write(&mut v, b"payload")
                    .unwrap()
            }
            L3::Arp => {
                v.extend_from_slice(&dst);
                v.extend_from_slice(&src);
                v.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
                v.extend_from_slice(&src);
                v.extend_from_slice(&[10, 0, 0, a]);
                v.extend_from_slice(&[0; 6]);
                v.extend_from_slice(&[10, 0, 0, 2]);
            }
        }
        if let L3::Mpls(n) = l3 {
            v[12..14].copy_from_slice(&0x8847u16.to_be_bytes());
            for i in 0..n {
                let bos = if i + 1 == n { 1 << 8 } else { 0 };
                let lse: u32 = ((16 + i as u32) << 12) | bos | (ttl as u32);
                v.splice(14 + 4 * i as usize..14 + 4 * i as usize, lse.to_be_bytes());
            }
        }
        if let Some((tpid, tci)) = tag {
            let mut t = tpid.to_be_bytes().to_vec();
            t.extend_from_slice(&tci.to_be_bytes());
            v.splice(12..12, t);
        }
        v
    }

    fn frame_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![
                Just(L3::Tcp4),
                Just(L3::Udp4),
                Just(L3::Udp6),
                Just(L3::Arp),
                Just(L3::Mpls(1)),
                Just(L3::Mpls(2)),
            ],
            proptest::option::of((prop_oneof![Just(0x8100u16), Just(0x88a8)], any::<u16>())),
            prop_oneof![Just(1u8), Just(2), Just(64)],
            1u8..4,
        )
            .prop_map(|(l3, tag, ttl, a)| frame(l3, tag, ttl, a))
    }

    /// One OpenFlow action, before [`concretize`] fixes the arguments that
    /// depend on the packet (MPLS pops name what is under the label).
    #[derive(Clone, Debug)]
    enum Op {
        Out(u32),
        Push(bool),
        Pop,
        Set(OxmId, u128),
        SetTtl(u8),
        DecTtl,
        SetMplsTtl(u8),
        DecMplsTtl,
        PushMpls,
        PopMpls,
        /// An ALL group with one bucket of these ops.
        Group(Vec<Op>),
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            12 => leaf_op_strategy(),
            1 => proptest::collection::vec(leaf_op_strategy(), 1..6).prop_map(Op::Group),
        ]
    }

    fn leaf_op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (1u32..5).prop_map(Op::Out),
            3 => any::<bool>().prop_map(Op::Push),
            3 => Just(Op::Pop),
            3 => (0u128..3).prop_map(|v| Op::Set(OxmId::VlanVid, 0x1000 | v)),
            2 => (0u128..3).prop_map(|v| Op::Set(OxmId::VlanPcp, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::EthDst, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::EthSrc, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::Ipv4Src, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::Ipv4Dst, v)),
            1 => (0u128..3).prop_map(|v| Op::Set(OxmId::IpDscp, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::UdpDst, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::TcpSrc, v)),
            1 => (1u128..3).prop_map(|v| Op::Set(OxmId::Ipv6Src, v)),
            1 => (0u128..3).prop_map(|v| Op::Set(OxmId::MplsLabel, v)),
            1 => (0u128..3).prop_map(|v| Op::Set(OxmId::MplsTc, v)),
            1 => (1u8..3).prop_map(Op::SetTtl),
            1 => Just(Op::DecTtl),
            1 => (1u8..3).prop_map(Op::SetMplsTtl),
            1 => Just(Op::DecMplsTtl),
            2 => Just(Op::PushMpls),
            2 => Just(Op::PopMpls),
        ]
    }

    fn is_mpls(t: u16) -> bool {
        t == 0x8847 || t == 0x8848
    }

    fn is_ip(t: u16) -> bool {
        t == 0x0800 || t == 0x86dd
    }

    /// The oracle: applies the ops one by one to `frame` and returns the
    /// concrete OpenFlow actions, the groups they use (bucket action lists,
    /// group `i + 1`), what was sent, and how many datapath actions that
    /// took. A group bucket works on a copy of the packet (OF1.3.5 §5.6.1).
    /// `None` when the executor ran out of headroom.
    #[allow(clippy::type_complexity)]
    fn concretize(
        frame: &[u8],
        ops: &[Op],
    ) -> Option<(Vec<Action>, Vec<Vec<Action>>, Sent, usize)> {
        let mut pkt = Packet::from_bytes(frame, PortNo(IN_PORT));
        // What each MPLS label covers, outermost last (for pop_mpls).
        let k0 = extract(frame, PortNo(IN_PORT)).ok()?;
        let mut under: Vec<u16> = Vec::new();
        if is_mpls(k0.dl_type()) {
            under.push(k0.get(Field::MplsInner) as u16);
            if k0.get(Field::MplsLse) & (1 << 8) == 0 {
                under.push(0x8847);
            }
        }
        let mut o = Oracle::default();
        let acts = o.apply(&mut pkt, &mut under, ops)?;
        Some((acts, o.groups, o.sent, o.n_dp))
    }

    #[derive(Default)]
    struct Oracle {
        sent: Sent,
        n_dp: usize,
        groups: Vec<Vec<Action>>,
    }

    impl Oracle {
        fn apply(
            &mut self,
            pkt: &mut Packet,
            under: &mut Vec<u16>,
            ops: &[Op],
        ) -> Option<Vec<Action>> {
            let mut acts = Vec::new();
            for op in ops {
                let k = extract(pkt.data(), PortNo(IN_PORT)).ok()?;
                let t = k.dl_type();
                let (a, dp): (Action, Vec<DpAction>) = match *op {
                    Op::Group(ref inner) => {
                        let mut copy = Packet::from_bytes(pkt.data(), PortNo(IN_PORT));
                        let mut under = under.clone();
                        let b = self.apply(&mut copy, &mut under, inner)?;
                        self.groups.push(b);
                        (Action::Group(GroupId(self.groups.len() as u32)), vec![])
                    }
                    Op::Out(p) => (out(p), vec![DpAction::Output(PortNo(p))]),
                    Op::Push(ad) => {
                        let tpid = if ad { 0x88a8 } else { 0x8100 };
                        let tci = k.vlan_tci();
                        let tci = if tci & VLAN_CFI != 0 { tci & 0xefff } else { 0 };
                        (
                            Action::PushVlan(tpid),
                            vec![DpAction::PushVlan { tpid, tci }],
                        )
                    }
                    Op::Pop => (Action::PopVlan, vec![DpAction::PopVlan]),
                    Op::Set(id, v) => {
                        let (field, value, mask) = match id {
                            OxmId::VlanVid => (Field::VlanTci, v & 0xfff, 0xfff),
                            OxmId::VlanPcp => (Field::VlanTci, v << 13, 0xe000),
                            _ => {
                                let (f, shift) = oxm_location(id).unwrap();
                                (f, v << shift, oxm_full_mask(id) << shift)
                            }
                        };
                        (set(id, v), vec![DpAction::SetField { field, value, mask }])
                    }
                    Op::SetTtl(ttl) => (
                        Action::SetNwTtl(ttl),
                        if is_ip(t) {
                            vec![DpAction::SetField {
                                field: Field::NwTtl,
                                value: ttl as u128,
                                mask: 0xff,
                            }]
                        } else {
                            vec![]
                        },
                    ),
                    Op::DecTtl => {
                        let ttl = k.get(Field::NwTtl);
                        if is_ip(t) && ttl <= 1 {
                            acts.push(Action::DecNwTtl);
                            break;
                        }
                        (
                            Action::DecNwTtl,
                            if is_ip(t) {
                                vec![DpAction::SetField {
                                    field: Field::NwTtl,
                                    value: ttl - 1,
                                    mask: 0xff,
                                }]
                            } else {
                                vec![]
                            },
                        )
                    }
                    Op::SetMplsTtl(ttl) => (
                        Action::SetMplsTtl(ttl),
                        if is_mpls(t) {
                            vec![DpAction::SetField {
                                field: Field::MplsLse,
                                value: ttl as u128,
                                mask: 0xff,
                            }]
                        } else {
                            vec![]
                        },
                    ),
                    Op::DecMplsTtl => {
                        let ttl = k.get(Field::MplsLse) & 0xff;
                        if is_mpls(t) && ttl <= 1 {
                            acts.push(Action::DecMplsTtl);
                            break;
                        }
                        (
                            Action::DecMplsTtl,
                            if is_mpls(t) {
                                vec![DpAction::SetField {
                                    field: Field::MplsLse,
                                    value: ttl - 1,
                                    mask: 0xff,
                                }]
                            } else {
                                vec![]
                            },
                        )
                    }
                    Op::PushMpls => {
                        if under.len() >= 3 {
                            continue; // more labels than the key holds
                        }
                        let lse = if is_mpls(t) {
                            (k.get(Field::MplsLse) as u32) & !(1 << 8)
                        } else {
                            let ttl = match k.get(Field::NwTtl) as u32 {
                                0 => 64,
                                x if is_ip(t) => x,
                                _ => 64,
                            };
                            let label = if t == 0x86dd { 2 } else { 0 };
                            (label << 12) | (1 << 8) | ttl
                        };
                        under.push(t);
                        (
                            Action::PushMpls(0x8847),
                            vec![DpAction::PushMpls {
                                ethertype: 0x8847,
                                lse,
                            }],
                        )
                    }
                    Op::PopMpls => match under.pop() {
                        Some(et) => (
                            Action::PopMpls(et),
                            vec![DpAction::PopMpls { ethertype: et }],
                        ),
                        None => (Action::PopMpls(0x0800), vec![]),
                    },
                };
                acts.push(a);
                self.n_dp += dp.len();
                if !run(pkt, &dp, &mut self.sent) {
                    return None;
                }
            }
            Some(acts)
        }
    }

    fn translate_and_run(frame: &[u8], x: &XlateOutput) -> Option<Sent> {
        let mut pkt = Packet::from_bytes(frame, PortNo(IN_PORT));
        let mut sent = Sent::default();
        run(&mut pkt, &x.actions, &mut sent).then_some(sent)
    }

    fn with_groups(groups: &[Vec<Action>]) -> Ofproto {
        let mut o = switch(4);
        for (i, b) in groups.iter().enumerate() {
            add_group(
                &mut o,
                GroupType::All,
                i as u32 + 1,
                vec![bucket(0, b.clone())],
            )
            .unwrap();
        }
        o
    }

    /// Installs `acts` as a chain of tables, split at `cuts`.
    fn chain(acts: &[Action], groups: &[Vec<Action>], cuts: &[usize]) -> Ofproto {
        let mut o = with_groups(groups);
        let mut bounds: Vec<usize> = cuts.iter().map(|&c| c % (acts.len() + 1)).collect();
        bounds.sort_unstable();
        bounds.dedup();
        bounds.push(acts.len());
        let mut from = 0;
        for (t, &to) in bounds.iter().enumerate() {
            let mut ins = vec![Instruction::ApplyActions(acts[from..to].to_vec())];
            if t + 1 < bounds.len() {
                ins.push(Instruction::GotoTable(TableId(t as u8 + 1)));
            }
            o.add_flow_unchecked(&add(t as u8, 1, Match::default(), ins))
                .unwrap();
            from = to;
        }
        o
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]
        #[test]
        fn minimal_actions_send_what_naive_ones_send(
            frame in frame_strategy(),
            ops in proptest::collection::vec(op_strategy(), 1..14),
            cuts in proptest::collection::vec(any::<usize>(), 0..3),
            noise in proptest::collection::vec(any::<u64>(), 4),
        ) {
            let Some((acts, groups, want, n_naive)) = concretize(&frame, &ops) else {
                return Err(TestCaseError::reject("out of headroom"));
            };
            let tagged = matches!(frame[12..14], [0x81, 0x00] | [0x88, 0xa8]);
            if !groups.is_empty() && tagged && (frame[12] == 0x88 || frame[14] & 0x10 != 0) {
                // A bucket may pop the frame's tag for the actions after the
                // group to push it back, with 802.1Q's TPID and without DEI:
                // the key keeps neither (docs/CONFORMANCE.md, pop_vlan; OVS
                // loses DEI too).
                return Err(TestCaseError::reject("802.1ad or DEI tag restored"));
            }
            let k = extract(&frame, PortNo(IN_PORT)).unwrap();
            let mut o = with_groups(&groups);
            let x = xl_actions(&mut o, &k, acts.clone());
            if x.error == Some(XlateError::Unrestorable) {
                // A bucket removed or added headers the actions after it
                // would need undone: refused, not approximated.
                return Err(TestCaseError::reject("unrestorable"));
            }
            prop_assert_eq!(x.error, None);
            prop_assert_eq!(x.budget, None);
            let got = translate_and_run(&frame, &x).expect("headroom");
            prop_assert_eq!(&got.0, &want.0, "actions {:?} → {}", acts, crate::datapath::odp_format::format_actions(&x.actions));
            // (Buckets cost the undoing of their edits, which a copy does
            // not need.)
            prop_assert!(!groups.is_empty() || x.actions.len() <= n_naive, "{} > {}: {}", x.actions.len(), n_naive, crate::datapath::odp_format::format_actions(&x.actions));

            // The same edits over a chain of tables.
            let mut o = chain(&acts, &groups, &cuts);
            let snap = o.publish();
            let ml = MacLearning::default();
            let opts = XlateOptions::default();
            let x1 = translate(&snap, &ml, &k, &opts);
            prop_assert_eq!(&x1.actions, &x.actions);
            // Its mask is sufficient.
            for n in noise {
                let mut k2 = FlowKey::default();
                for i in 0..k2.w.len() {
                    let r = k.w[i] ^ n.rotate_left(i as u32 * 7);
                    k2.w[i] = (k.w[i] & x1.wc.w[i]) | (r & !x1.wc.w[i]);
                }
                let x2 = translate(&snap, &ml, &k2, &opts);
                prop_assert_eq!(&x2.actions, &x1.actions, "k={:?} k2={:?} wc={:?}", k, k2, x1.wc);
            }
        }
    }
}

#[test]
fn the_controller_meter_is_configured_like_a_meter_and_meters_packet_ins() {
    use crate::openflow::message::{MeterBand, MeterMod, MeterModCommand, MF_PKTPS};
    let mut o = switch(2);
    let to_ctl = add(
        0,
        0,
        Match::default(),
        apply(vec![
            Action::Output {
                port: PortNo::CONTROLLER,
                max_len: 128,
            },
            out(2),
        ]),
    );
    o.flow_mod(&to_ctl, 0).unwrap();
    let ml = MacLearning::default();
    let controller_meter = |x: &XlateOutput| {
        x.actions.iter().find_map(|a| match a {
            DpAction::Userspace(UserspaceReason::Controller { meter, .. }) => Some(*meter),
            _ => None,
        })
    };
    assert_eq!(controller_meter(&xl(&mut o, &ml, &key(1))), Some(None));
    let mm = |cmd, id| MeterMod {
        command: cmd,
        flags: MF_PKTPS,
        meter_id: id,
        bands: vec![MeterBand::Drop {
            rate: 10,
            burst_size: 0,
        }],
    };
    // OFPM_CONTROLLER can be added (OVS handle_meter_mod()); other ids
    // above OFPM_MAX cannot.
    o.meter_mod(&mm(MeterModCommand::Add, MeterId::CONTROLLER), 0)
        .unwrap();
    assert_eq!(
        o.meter_mod(&mm(MeterModCommand::Add, MeterId(0xffff_fffd)), 0)
            .err(),
        Some(OfpError::InvalidMeter)
    );
    // Every controller action now passes it first; the output after it is
    // not metered.
    let x = xl(&mut o, &ml, &key(1));
    assert_eq!(controller_meter(&x), Some(Some(MeterId::CONTROLLER.0)));
    assert_eq!(x.actions.last(), Some(&DpAction::Output(PortNo(2))));
    assert!(o
        .meter_configs(MeterId::ALL)
        .iter()
        .any(|c| c.meter_id == MeterId::CONTROLLER));
    // A flow entry cannot use a virtual meter.
    let metered = add(
        1,
        1,
        Match::default(),
        vec![Instruction::Meter(MeterId::CONTROLLER)],
    );
    assert_eq!(o.flow_mod(&metered, 0).err(), Some(OfpError::InvalidMeter));
    // Deleted: packet-ins are unmetered again.
    o.meter_mod(&mm(MeterModCommand::Delete, MeterId::CONTROLLER), 0)
        .unwrap();
    assert_eq!(controller_meter(&xl(&mut o, &ml, &key(1))), Some(None));
}

// ---- Tunnel fields: matched, set, committed and executed ---------------------------

mod tunnel {
    use super::set_field_audit::eth_ip4;
    use super::*;
    use crate::datapath::execute::execute_actions;
    use crate::datapath::extract::extract_packet;
    use crate::datapath::meter::MeterTable;
    use crate::datapath::packet::{Packet, TunnelMeta};
    use proptest::prelude::*;

    fn received() -> TunnelMeta {
        TunnelMeta {
            id: 5,
            src: 0x0a00_0001,
            dst: 0x0a00_0002,
            tos: 0,
            ttl: 64,
        }
    }

    #[test]
    fn a_tun_id_match_un_wildcards_tun_id_in_the_megaflow() {
        let mut o = switch(3);
        o.flow_mod(
            &add(0, 10, m(&[(OxmId::TunnelId, 5)]), apply(vec![out(2)])),
            0,
        )
        .unwrap();
        o.flow_mod(&add(0, 0, Match::default(), apply(vec![out(3)])), 0)
            .unwrap();
        let mut pkt = Packet::from_bytes(&eth_ip4(17), PortNo(1));
        pkt.tunnel = received();
        let k = extract_packet(&pkt).unwrap();
        let x = xl(&mut o, &MacLearning::default(), &k);
        assert_eq!(x.actions, vec![DpAction::Output(PortNo(2))]);
        assert_eq!(x.wc.get(Field::TunnelId), Field::TunnelId.full_mask());
        // A frame out of a tunnel matches its whole tunnel key, whatever the
        // rules read (OVS's tnl_wc_init()).
        assert_eq!(x.wc.get(Field::TunSrc), Field::TunSrc.full_mask());
        assert_eq!(x.wc.get(Field::TunDst), Field::TunDst.full_mask());
        // A packet with another VNI misses the megaflow and takes the other rule.
        let masked = k.masked(&x.wc);
        let mut other = k;
        other.set(Field::TunnelId, 6);
        assert!(!other.matches(&masked, &x.wc));
        let y = xl(&mut o, &MacLearning::default(), &other);
        assert_eq!(y.actions, vec![DpAction::Output(PortNo(3))]);
    }

    #[test]
    fn masked_tun_dst_matches_record_only_the_masked_bits() {
        let mut o = switch(3);
        let mt = Match {
            fields: vec![OxmField {
                id: OxmId::TunIpv4Dst,
                value: 0x0a00_0000,
                mask: Some(0xffff_ff00),
            }],
        };
        o.flow_mod(&add(0, 10, mt, apply(vec![out(2)])), 0).unwrap();
        let mut pkt = Packet::from_bytes(&eth_ip4(17), PortNo(1));
        pkt.tunnel = received();
        let x = xl(
            &mut o,
            &MacLearning::default(),
            &extract_packet(&pkt).unwrap(),
        );
        assert_eq!(x.actions, vec![DpAction::Output(PortNo(2))]);
        // At least the rule's bits are looked at, and never more than the field.
        let wc = x.wc.get(Field::TunDst);
        assert_eq!(wc & 0xffff_ff00, 0xffff_ff00);
        assert_eq!(wc & !Field::TunDst.full_mask(), 0);
    }

    #[test]
    fn relayed_packets_keep_their_vni_unless_a_set_field_changes_it() {
        let mut o = switch(3);
        let k = {
            let mut pkt = Packet::from_bytes(&eth_ip4(17), PortNo(1));
            pkt.tunnel = received();
            extract_packet(&pkt).unwrap()
        };
        // No tunnel set-field: nothing to commit, the metadata rides along.
        let x = xl_actions(&mut o, &k, vec![out(2)]);
        assert_eq!(x.actions, vec![DpAction::Output(PortNo(2))]);
        // set_field:0x7->tun_id,set_field:10.1.1.1->tun_dst before one output
        // and back to the original VNI before another.
        let x = xl_actions(
            &mut o,
            &k,
            vec![
                set(OxmId::TunnelId, 7),
                set(OxmId::TunIpv4Dst, 0x0a01_0101),
                out(2),
                set(OxmId::TunnelId, 5),
                out(3),
            ],
        );
        assert_eq!(
            x.actions,
            vec![
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
                DpAction::SetField {
                    field: Field::TunnelId,
                    value: 5,
                    mask: Field::TunnelId.full_mask(),
                },
                DpAction::Output(PortNo(3)),
            ]
        );
        assert_eq!(
            crate::datapath::odp_format::format_actions(&x.actions),
            "set(tunnel(tun_id=0x7,dst=10.1.1.1)),2,set(tunnel(tun_id=0x5)),3"
        );
    }

    /// Records the tunnel metadata of every output.
    #[derive(Default)]
    struct TunSink(Vec<(PortNo, TunnelMeta)>);
    impl crate::datapath::execute::ExecSink for TunSink {
        fn output(&mut self, port: PortNo, pkt: &mut Packet, _last: bool) {
            self.0.push((port, pkt.tunnel));
        }
        fn userspace(&mut self, _: &Packet, _: UserspaceReason) {}
    }

    fn tun_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            (0u128..4).prop_map(|v| set(OxmId::TunnelId, v)),
            (0u128..4).prop_map(|v| set(OxmId::TunIpv4Src, 0x0a00_0000 | v)),
            (0u128..4).prop_map(|v| set(OxmId::TunIpv4Dst, 0x0a00_0000 | v)),
            (2u32..4).prop_map(out),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        /// Executing the committed actions leaves, at every output, the
        /// metadata the translated flow had there; and the final metadata
        /// equals the final flow's tunnel fields whenever something was
        /// output after the last write (an output commits).
        #[test]
        fn committed_tunnel_writes_reach_the_packet(
            id in 0u64..4,
            src in 0u32..3,
            dst in 0u32..3,
            acts in proptest::collection::vec(tun_action(), 1..10),
        ) {
            let mut o = switch(3);
            let frame = eth_ip4(17);
            let mut pkt = Packet::from_bytes(&frame, PortNo(1));
            pkt.tunnel = TunnelMeta { id, src, dst, tos: 0, ttl: 0 };
            let k = extract_packet(&pkt).unwrap();
            // The flow each output should see, by walking the actions.
            let mut flow = k;
            let mut want = Vec::new();
            for a in &acts {
                match a {
                    Action::SetField(f) => {
                        let (field, _) = crate::ofproto::match_::oxm_location(f.id).unwrap();
                        flow.set(field, f.value);
                    }
                    Action::Output { port, .. } => want.push((
                        *port,
                        TunnelMeta {
                            id: flow.get(Field::TunnelId) as u64,
                            src: flow.get(Field::TunSrc) as u32,
                            dst: flow.get(Field::TunDst) as u32,
                            tos: 0,
                            ttl: 0,
                        },
                    )),
                    _ => unreachable!(),
                }
            }
            let x = xl_actions(&mut o, &k, acts.clone());
            let mut sink = TunSink::default();
            execute_actions(&mut pkt, &x.actions, &mut MeterTable::new(), 0, &mut sink);
            prop_assert_eq!(&sink.0, &want, "{:?}", x.actions);
            if matches!(acts.last(), Some(Action::Output { .. })) {
                let mut fin = FlowKey::default();
                fin.set_tunnel(&pkt.tunnel);
                for f in [Field::TunnelId, Field::TunSrc, Field::TunDst] {
                    prop_assert_eq!(fin.get(f), x.final_flow.get(f));
                }
            }
            // Tunnel writes never touch the frame.
            prop_assert_eq!(pkt.data(), &frame[..]);
        }
    }
}
