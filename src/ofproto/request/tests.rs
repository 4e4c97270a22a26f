//! The request handler driven with real OpenFlow 1.3 messages (raw bytes
//! through the codec), without a daemon: what today needed root and a live
//! switch runs here in milliseconds.

use super::*;
use crate::datapath::actions::DpAction;
use crate::datapath::pmd::PortCountersSnapshot;
use crate::ofproto::{Ofproto, PortInfo};
use crate::openflow::decode;
use crate::openflow::message::{Bucket, GroupMod, GroupModCommand, GroupType};
use crate::types::{DatapathId, GroupId, MacAddr};

const OFPT_PACKET_OUT: u8 = 13;
const OFPT_FLOW_MOD: u8 = 14;
const OFPT_METER_MOD: u8 = 29;
const OFPT_BARRIER_REQUEST: u8 = 20;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;

struct Switch {
    of: Ofproto,
    view: XlateView,
}

impl Switch {
    fn new() -> Switch {
        let mut of = Ofproto::new(DatapathId(1), "test");
        for n in 1..=2u8 {
            of.add_port(PortInfo::new(
                PortNo(n as u32),
                &format!("p{n}"),
                MacAddr([2, 0, 0, 0, 0, n]),
            ));
        }
        let view = XlateView::new("br0", of.publish(), 100, 300_000);
        Switch { of, view }
    }

    /// Feeds raw message bytes; returns the effects.
    fn send(&mut self, bytes: &[u8]) -> Effects {
        let msg = decode(bytes).expect("the test message decodes");
        let counters = |p: PortNo| {
            (p == PortNo(1)).then_some(PortCountersSnapshot {
                rx_packets: 7,
                rx_dropped: 1,
                rx_overruns: 2,
                ..Default::default()
            })
        };
        let mut rq = Requests {
            ofproto: &mut self.of,
            view: &self.view,
            port_counters: &counters,
        };
        let mut fx = Effects::default();
        let head = &bytes[..bytes.len().min(64)];
        rq.handle(msg, head, 1000, &mut fx);
        rq.publish();
        fx
    }
}

fn header(t: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![4, t, 0, 0];
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(body);
    let len = v.len() as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

fn output(port: u32) -> Vec<u8> {
    let mut a = vec![0, 0, 0, 16];
    a.extend_from_slice(&port.to_be_bytes());
    a.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]);
    a
}

fn group(id: u32) -> Vec<u8> {
    let mut a = vec![0, 22, 0, 8];
    a.extend_from_slice(&id.to_be_bytes());
    a
}

/// A broadcast ARP request.
fn frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 10, 0, 0, 9]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 0, 1]);
    f
}

/// OFPT_PACKET_OUT (OF1.3.5 §7.3.7): buffer_id, in_port, actions_len, pad, actions, data.
fn packet_out(xid: u32, buffer_id: u32, in_port: u32, actions: &[u8]) -> Vec<u8> {
    let mut b = buffer_id.to_be_bytes().to_vec();
    b.extend_from_slice(&in_port.to_be_bytes());
    b.extend_from_slice(&(actions.len() as u16).to_be_bytes());
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(actions);
    b.extend_from_slice(&frame());
    header(OFPT_PACKET_OUT, xid, &b)
}

/// OFPT_FLOW_MOD ADD, empty match, apply-actions output:2, with `flags`.
fn flow_mod(xid: u32, command: u8, buffer_id: u32, flags: u16) -> Vec<u8> {
    let mut b = vec![0u8; 40];
    // cookie, cookie_mask 0; table 0.
    b[17] = command;
    b[22..24].copy_from_slice(&10u16.to_be_bytes()); // priority
    b[24..28].copy_from_slice(&buffer_id.to_be_bytes());
    b[28..32].copy_from_slice(&OFPP_ANY.to_be_bytes()); // out_port
    b[32..36].copy_from_slice(&OFPP_ANY.to_be_bytes()); // out_group
    b[36..38].copy_from_slice(&flags.to_be_bytes());
    // ofp_match: OXM, length 4 (no fields), padded to 8.
    b.extend_from_slice(&[0, 1, 0, 4, 0, 0, 0, 0]);
    if command == 0 {
        // OFPIT_APPLY_ACTIONS with one output action.
        let act = output(2);
        b.extend_from_slice(&[0, 4]);
        b.extend_from_slice(&((8 + act.len()) as u16).to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&act);
    }
    header(OFPT_FLOW_MOD, xid, &b)
}

/// OFPT_METER_MOD (OF1.3.5 §7.3.4.4): command, flags, meter_id, bands.
fn meter_mod(xid: u32, command: u16, id: u32, drop_rate: Option<u32>) -> Vec<u8> {
    let mut b = command.to_be_bytes().to_vec();
    b.extend_from_slice(&2u16.to_be_bytes()); // OFPMF_PKTPS
    b.extend_from_slice(&id.to_be_bytes());
    if let Some(rate) = drop_rate {
        b.extend_from_slice(&[0, 1, 0, 16]); // OFPMBT_DROP, len 16
        b.extend_from_slice(&rate.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes()); // burst
        b.extend_from_slice(&[0; 4]);
    }
    header(OFPT_METER_MOD, xid, &b)
}

fn error_of(fx: &Effects) -> Option<(u16, u16)> {
    fx.answers.iter().find_map(|a| match a {
        Answer::Reply(OfReply::Error { error, .. }) => Some(error.type_code()),
        _ => None,
    })
}

fn executes(fx: &Effects) -> Vec<(PortNo, DpActions)> {
    fx.ops
        .iter()
        .filter_map(|o| match o {
            Op::Execute {
                in_port, actions, ..
            } => Some((*in_port, actions.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn packet_out_with_in_port_0_is_sent_as_from_no_port() {
    let mut s = Switch::new();
    let fx = s.send(&packet_out(1, NO_BUFFER, 0, &output(1)));
    assert_eq!(error_of(&fx), None, "{fx:?}");
    assert_eq!(
        executes(&fx),
        vec![(PortNo(0), vec![DpAction::Output(PortNo(1))])]
    );
    // Flooding from "no port" reaches every port.
    let fx = s.send(&packet_out(2, NO_BUFFER, 0, &output(PortNo::FLOOD.0)));
    assert_eq!(
        executes(&fx)[0].1,
        vec![DpAction::Output(PortNo(1)), DpAction::Output(PortNo(2))]
    );
}

#[test]
fn packet_out_refuses_what_the_spec_and_ovs_refuse() {
    let mut s = Switch::new();
    // in_port ANY: OFPBRC_BAD_PORT.
    let fx = s.send(&packet_out(1, NO_BUFFER, OFPP_ANY, &output(1)));
    assert_eq!(error_of(&fx), Some((1, 11)));
    // A buffered packet we never sent: OFPBRC_BUFFER_UNKNOWN.
    let fx = s.send(&packet_out(2, 42, OFPP_CONTROLLER, &output(1)));
    assert_eq!(error_of(&fx), Some((1, 8)));
    // Output to 0 or ANY: OFPBAC_BAD_OUT_PORT.
    for port in [0, OFPP_ANY] {
        let fx = s.send(&packet_out(3, NO_BUFFER, OFPP_CONTROLLER, &output(port)));
        assert_eq!(error_of(&fx), Some((2, 4)), "output:{port:#x}");
    }
    // A group that does not exist: OFPBAC_BAD_OUT_GROUP.
    let fx = s.send(&packet_out(4, NO_BUFFER, OFPP_CONTROLLER, &group(7)));
    assert_eq!(error_of(&fx), Some((2, 9)));
    assert!(executes(&fx).is_empty());
}

#[test]
fn packet_out_actions_get_the_flow_mod_checks() {
    let mut s = Switch::new();
    // set_field ipv4_dst on an ARP frame: the packet stands in for the match,
    // and an IPv4 field without an IPv4 packet is refused as in a FLOW_MOD.
    let mut set_ip = vec![
        0,
        25,
        0,
        16,
        0x80,
        0x00,
        12 << 1,
        4,
        10,
        0,
        0,
        7,
        0,
        0,
        0,
        0,
    ];
    set_ip.extend_from_slice(&output(1));
    let fx = s.send(&packet_out(1, NO_BUFFER, OFPP_CONTROLLER, &set_ip));
    assert!(
        matches!(error_of(&fx), Some((2, _))),
        "a bad action is an OFPET_BAD_ACTION: {:?}",
        error_of(&fx)
    );
    assert!(executes(&fx).is_empty());
    // The same set-field is fine for the ARP field it can rewrite.
    let mut set_arp = vec![
        0,
        25,
        0,
        16,
        0x80,
        0x00,
        23 << 1,
        4,
        10,
        0,
        0,
        7,
        0,
        0,
        0,
        0,
    ];
    set_arp.extend_from_slice(&output(1));
    let fx = s.send(&packet_out(2, NO_BUFFER, OFPP_CONTROLLER, &set_arp));
    assert_eq!(error_of(&fx), None);
    assert_eq!(executes(&fx).len(), 1);
}

#[test]
fn packet_out_to_an_existing_group_runs_its_buckets() {
    let mut s = Switch::new();
    s.of.group_mod(
        &GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::All,
            group_id: GroupId(7),
            buckets: vec![Bucket {
                weight: 0,
                watch_port: PortNo::ANY,
                watch_group: GroupId::ANY,
                actions: vec![Action::Output {
                    port: PortNo(2),
                    max_len: 0,
                }],
            }],
        },
        0,
    )
    .unwrap();
    let fx = s.send(&packet_out(1, NO_BUFFER, OFPP_CONTROLLER, &group(7)));
    assert_eq!(error_of(&fx), None, "{fx:?}");
    assert_eq!(
        executes(&fx),
        vec![(PortNo::CONTROLLER, vec![DpAction::Output(PortNo(2))])]
    );
}

#[test]
fn flow_mod_with_an_unknown_buffer_is_refused_and_not_applied() {
    let mut s = Switch::new();
    let fx = s.send(&flow_mod(1, 0, 99, 0));
    assert_eq!(error_of(&fx), Some((1, 8)));
    assert_eq!(s.of.n_rules(), 0);
    let fx = s.send(&flow_mod(2, 0, NO_BUFFER, 0));
    assert_eq!(error_of(&fx), None, "{fx:?}");
    assert_eq!(s.of.n_rules(), 1);
    // The view sees the new tables (PACKET_OUT to TABLE uses them).
    assert_eq!(s.view.snapshot.load().version, s.of.version());
}

#[test]
fn meter_without_bands_is_refused() {
    let mut s = Switch::new();
    let fx = s.send(&meter_mod(1, 0, 1, None));
    assert_eq!(error_of(&fx), Some((12, 8)), "OFPMMFC_BAD_BAND");
    assert!(fx.ops.is_empty());
    let fx = s.send(&meter_mod(2, 0, 1, Some(100)));
    assert_eq!(error_of(&fx), None);
    assert!(matches!(
        fx.ops.as_slice(),
        [Op::SetMeter { id: MeterId(1), config }] if config.bands.len() == 1
            && config.unit == MeterUnit::Pktps
    ));
    // MODIFY to no bands is refused too; DELETE needs none.
    let fx = s.send(&meter_mod(3, 1, 1, None));
    assert_eq!(error_of(&fx), Some((12, 8)));
    let fx = s.send(&meter_mod(4, 2, 1, None));
    assert_eq!(error_of(&fx), None);
    assert!(matches!(
        fx.ops.as_slice(),
        [Op::DelMeter { id: MeterId(1) }]
    ));
}

#[test]
fn deleting_a_rule_that_asked_reports_flow_removed() {
    let mut s = Switch::new();
    s.send(&flow_mod(1, 0, NO_BUFFER, 1)); // OFPFF_SEND_FLOW_REM
    let fx = s.send(&flow_mod(2, 3, NO_BUFFER, 0)); // OFPFC_DELETE
    assert_eq!(error_of(&fx), None);
    assert!(matches!(
        fx.events.as_slice(),
        [Event::FlowRemoved(fr)] if fr.reason == RR_DELETE && fr.priority == 10
    ));
}

#[test]
fn barrier_answers_in_order_and_port_stats_total_the_drops() {
    let mut s = Switch::new();
    let fx = s.send(&header(OFPT_BARRIER_REQUEST, 9, &[]));
    assert!(matches!(fx.answers.as_slice(), [Answer::Barrier(9)]));
    assert!(fx.has_barrier());
    // OFPMP_PORT_STATS for port 1: rx_dropped = unparseable + overruns.
    let mut body = vec![0, 4, 0, 0, 0, 0, 0, 0];
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&[0; 4]);
    let fx = s.send(&header(18, 10, &body));
    let Some(Answer::Reply(OfReply::Msg(m))) = fx.answers.first() else {
        panic!("{fx:?}");
    };
    let Message::MultipartReply(MultipartReply {
        body: MpReplyBody::PortStats(ps),
        ..
    }) = &m.body
    else {
        panic!("{m:?}");
    };
    assert_eq!(
        (ps[0].rx_packets, ps[0].rx_dropped, ps[0].rx_over_err),
        (7, 3, 2)
    );
    // A port that does not exist: OFPBRC_BAD_PORT.
    body[8..12].copy_from_slice(&5u32.to_be_bytes());
    assert_eq!(error_of(&s.send(&header(18, 11, &body))), Some((1, 11)));
}

#[test]
fn port_mod_down_reports_status_and_sets_the_device_down() {
    let mut s = Switch::new();
    // OFPT_PORT_MOD: port 1, its hw_addr, config PORT_DOWN under mask PORT_DOWN.
    let mut b = 1u32.to_be_bytes().to_vec();
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0, 0]);
    b.extend_from_slice(&PC_PORT_DOWN.to_be_bytes());
    b.extend_from_slice(&PC_PORT_DOWN.to_be_bytes());
    b.extend_from_slice(&[0; 8]);
    let fx = s.send(&header(16, 1, &b));
    assert_eq!(error_of(&fx), None, "{fx:?}");
    assert!(matches!(
        fx.ops.as_slice(),
        [Op::SetAdminState { port, up: false }] if port == "p1"
    ));
    assert!(matches!(
        fx.events.as_slice(),
        [Event::PortStatus(ps)] if ps.reason == PR_MODIFY
    ));
}

#[test]
fn table_mod_checks_table_and_config() {
    let mut s = Switch::new();
    let tm = |table: u8, config: u32| {
        let mut b = vec![table, 0, 0, 0];
        b.extend_from_slice(&config.to_be_bytes());
        header(17, 1, &b)
    };
    assert_eq!(
        error_of(&s.send(&tm(0, TABLE_CONFIG_DEPRECATED_MASK))),
        None
    );
    assert_eq!(error_of(&s.send(&tm(0, 4))), Some((8, 1)));
    assert_eq!(error_of(&s.send(&tm(254, 0))), Some((8, 0)));
}

#[test]
fn timeouts_expire_rules_and_report_them() {
    let mut s = Switch::new();
    let mut fm = flow_mod(1, 0, NO_BUFFER, 1);
    fm[8 + 20..8 + 22].copy_from_slice(&1u16.to_be_bytes()); // hard_timeout 1 s
    assert_eq!(error_of(&s.send(&fm)), None);
    let mut rq = Requests {
        ofproto: &mut s.of,
        view: &s.view,
        port_counters: &|_| None,
    };
    let mut fx = Effects::default();
    assert!(!rq.handle_timeout(1500, &mut fx));
    assert!(rq.handle_timeout(2000, &mut fx));
    assert!(matches!(
        fx.events.as_slice(),
        [Event::FlowRemoved(fr)] if fr.reason == crate::ofproto::RR_HARD_TIMEOUT
    ));
}

#[test]
fn barriers_wait_only_when_a_megaflow_may_be_stale() {
    let mut b = Barriers::default();
    assert_eq!(b.plan(false, 5, true), BarrierPlan::None);
    // No megaflow anywhere: answer at once (bulk loads stay fast).
    assert_eq!(b.plan(true, 5, false), BarrierPlan::AnswerNow);
    // Same version again, flows exist: already acknowledged.
    assert_eq!(b.plan(true, 5, true), BarrierPlan::AnswerNow);
    // A newer version with flows: wait for a round.
    assert_eq!(b.plan(true, 6, true), BarrierPlan::WaitFor(6));
    assert_eq!(b.plan(true, 6, true), BarrierPlan::WaitFor(6));
    b.released(6);
    assert_eq!(b.plan(true, 6, true), BarrierPlan::AnswerNow);
}

/// A FLOW_MOD ADD in table 0 at `priority` whose actions are `actions`.
fn add_flow(priority: u16, actions: Vec<Action>) -> Message {
    use crate::openflow::action::Instruction;
    use crate::openflow::message::{FlowMod, FlowModCommand};
    Message::FlowMod(FlowMod {
        cookie: crate::types::Cookie(priority as u64),
        flags: crate::ofproto::FF_SEND_FLOW_REM,
        ..FlowMod::new(
            FlowModCommand::Add,
            TableId(0),
            priority,
            Default::default(),
            vec![Instruction::ApplyActions(actions)],
        )
    })
}

fn all_group(id: u32) -> Message {
    Message::GroupMod(GroupMod {
        command: GroupModCommand::Add,
        group_type: GroupType::All,
        group_id: GroupId(id),
        buckets: vec![Bucket {
            weight: 0,
            watch_port: PortNo::ANY,
            watch_group: GroupId::ANY,
            actions: vec![Action::Output {
                port: PortNo(1),
                max_len: 0,
            }],
        }],
    })
}

impl Switch {
    /// Commits `bodies` as one bundle (xids 1..), commit xid 99.
    fn commit(&mut self, bodies: Vec<Message>) -> Effects {
        let msgs = bodies
            .into_iter()
            .zip(1u32..)
            .map(|(body, xid)| (OfpMsg { xid, body }, vec![4, 34, 0, 16]))
            .collect();
        let counters = |_: PortNo| None;
        let mut rq = Requests {
            ofproto: &mut self.of,
            view: &self.view,
            port_counters: &counters,
        };
        let mut fx = Effects::default();
        let commit = BundleCommit {
            xid: 99,
            bundle_id: 5,
            head: vec![5, 33, 0, 16],
        };
        rq.commit_bundle(&commit, msgs, 1000, &mut fx);
        rq.publish();
        fx
    }
}

fn answers(fx: &Effects) -> Vec<(u32, Option<OfpError>)> {
    fx.answers
        .iter()
        .map(|a| match a {
            Answer::Reply(OfReply::Error { xid, error, .. }) => (*xid, Some(*error)),
            Answer::Reply(OfReply::Msg(m)) => (m.xid, None),
            _ => (0, None),
        })
        .collect()
}

#[test]
fn a_bundle_commits_whole_or_not_at_all() {
    let mut sw = Switch::new();
    let before = sw.of.n_rules();
    // The third message names a group that does not exist: the first two
    // are undone, its error refers to it, the commit fails, nothing escapes.
    let fx = sw.commit(vec![
        add_flow(10, vec![]),
        all_group(5),
        add_flow(11, vec![Action::Group(GroupId(9))]),
    ]);
    assert_eq!(
        answers(&fx),
        [
            (3, Some(OfpError::BadOutGroup)),
            (99, Some(OfpError::BundleMsgFailed))
        ]
    );
    assert_eq!(sw.of.n_rules(), before);
    assert!(sw.of.group_descs().is_empty());
    assert!(fx.events.is_empty() && fx.ops.is_empty());
    // A good bundle: every change at once and COMMIT_REPLY.
    let fx = sw.commit(vec![
        add_flow(10, vec![]),
        all_group(5),
        add_flow(11, vec![Action::Group(GroupId(5))]),
    ]);
    assert_eq!(answers(&fx), [(99, None)]);
    assert!(matches!(
        &fx.answers[0],
        Answer::Reply(OfReply::Msg(OfpMsg {
            body: Message::BundleControl(BundleCtrl {
                ctrl_type: BundleCtrlType::CommitReply,
                bundle_id: 5,
                ..
            }),
            ..
        }))
    ));
    assert_eq!(sw.of.n_rules(), before + 2);
    assert_eq!(sw.of.group_descs().len(), 1);
    // A bundle that deletes what asked for FLOW_REMOVED and then fails
    // reports nothing; the same bundle succeeding reports the removals.
    use crate::openflow::message::{FlowMod, FlowModCommand};
    let delete_all = Message::FlowMod(FlowMod {
        command: FlowModCommand::Delete,
        table_id: TableId::ALL,
        ..match add_flow(0, vec![]) {
            Message::FlowMod(f) => f,
            _ => unreachable!(),
        }
    });
    let fx = sw.commit(vec![delete_all.clone(), all_group(5)]);
    assert_eq!(answers(&fx)[0], (2, Some(OfpError::GroupExists)));
    assert!(fx.events.is_empty());
    assert_eq!(sw.of.n_rules(), before + 2);
    let fx = sw.commit(vec![delete_all]);
    assert_eq!(answers(&fx), [(99, None)]);
    assert_eq!(fx.events.len(), 2, "two FLOW_REMOVED");
}

// ---- flow monitors -------------------------------------------------------------

impl Switch {
    /// Applies `msg` with rule changes recorded as when a monitor exists.
    fn monitored(&mut self, msg: OfpMsg, now_ms: u64) -> Effects {
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
        rq.handle(msg, &[], now_ms, &mut fx);
        rq.publish();
        fx
    }
}

fn msg(xid: u32, body: Message) -> OfpMsg {
    OfpMsg { xid, body }
}

fn fmod(cmd: crate::openflow::message::FlowModCommand, prio: u16, out: u32) -> Message {
    let ip = crate::openflow::oxm::Match {
        fields: vec![crate::openflow::oxm::OxmField::exact(
            crate::openflow::oxm::OxmId::EthType,
            0x800,
        )],
    };
    Message::FlowMod(crate::ofproto::monitor::test_flow_mod(
        cmd, 0, prio, ip, out,
    ))
}

fn monitor_request(reqs: Vec<crate::openflow::message::FlowMonitorRequest>) -> Message {
    Message::MultipartRequest(MultipartRequest {
        flags: 0,
        body: MpRequestBody::FlowMonitor(reqs),
    })
}

#[test]
fn rule_changes_are_recorded_only_while_monitored() {
    use crate::openflow::message::FlowModCommand as C;
    let mut sw = Switch::new();
    let fx = sw.send(&flow_mod(1, 0, NO_BUFFER, 0));
    assert!(
        fx.flow_changes.is_empty(),
        "nobody monitors: nothing recorded"
    );
    let fx = sw.monitored(msg(2, fmod(C::Add, 5, 1)), 1000);
    let ev: Vec<_> = fx.flow_changes.iter().map(|c| (c.event, c.xid)).collect();
    assert_eq!(ev, vec![(FlowUpdateEvent::Added, 2)]);
    // Re-adding with other actions is ADDED again, with the old rule along.
    let fx = sw.monitored(msg(3, fmod(C::Add, 5, 2)), 1000);
    assert_eq!(fx.flow_changes.len(), 1);
    assert!(fx.flow_changes[0].old.is_some());
    // A MODIFY that changes nothing is not reported; one that does is.
    let fx = sw.monitored(msg(4, fmod(C::Modify, 5, 2)), 1000);
    assert!(
        fx.flow_changes.is_empty(),
        "{:?}",
        fx.flow_changes.iter().map(|c| c.event).collect::<Vec<_>>()
    );
    let fx = sw.monitored(msg(5, fmod(C::ModifyStrict, 5, 1)), 1000);
    assert_eq!(fx.flow_changes.len(), 1);
    assert_eq!(fx.flow_changes[0].event, FlowUpdateEvent::Modified);
    // DELETE reports every removed rule with reason DELETE.
    let fx = sw.monitored(msg(6, fmod(C::Delete, 0, 1)), 1000);
    let ev: Vec<_> = fx
        .flow_changes
        .iter()
        .map(|c| (c.event, c.reason))
        .collect();
    assert_eq!(ev, vec![(FlowUpdateEvent::Removed, RR_DELETE)]);
}

#[test]
fn expiry_is_reported_as_removed_with_its_reason() {
    use crate::openflow::message::FlowModCommand as C;
    let mut sw = Switch::new();
    let Message::FlowMod(mut fm) = fmod(C::Add, 5, 1) else {
        unreachable!()
    };
    fm.hard_timeout = 1;
    sw.monitored(msg(1, Message::FlowMod(fm)), 0);
    let counters = |_: PortNo| None;
    let mut fx = Effects {
        monitored: true,
        ..Effects::default()
    };
    Requests {
        ofproto: &mut sw.of,
        view: &sw.view,
        port_counters: &counters,
    }
    .handle_timeout(5000, &mut fx);
    let ev: Vec<_> = fx
        .flow_changes
        .iter()
        .map(|c| (c.event, c.reason, c.xid))
        .collect();
    assert_eq!(
        ev,
        vec![(FlowUpdateEvent::Removed, super::super::RR_HARD_TIMEOUT, 0)]
    );
}

#[test]
fn a_monitor_request_is_answered_with_the_covered_rules_and_the_version() {
    use crate::ofproto::monitor::watch_all;
    use crate::openflow::message::FlowModCommand as C;
    let mut sw = Switch::new();
    sw.monitored(msg(1, fmod(C::Add, 5, 1)), 0);
    sw.monitored(msg(2, fmod(C::Add, 6, 2)), 0);
    let version = sw.of.version();
    let mut quiet = watch_all(8);
    quiet.flags &= !crate::openflow::message::FMF_INITIAL;
    let mut fx = sw.monitored(msg(9, monitor_request(vec![watch_all(7), quiet])), 0);
    assert!(fx.flow_changes.is_empty());
    match fx.answers.pop() {
        Some(Answer::Reply(OfReply::FlowMonitor {
            xid,
            version: v,
            ids,
            updates,
        })) => {
            assert_eq!((xid, v, ids), (9, version, vec![7, 8]));
            let prios: Vec<u16> = updates
                .iter()
                .map(|(_, u)| match u {
                    FlowUpdate::Full {
                        event, priority, ..
                    } => {
                        assert_eq!(*event, FlowUpdateEvent::Initial);
                        *priority
                    }
                    other => panic!("{other:?}"),
                })
                .collect();
            let mut sorted = prios.clone();
            sorted.sort();
            assert_eq!(sorted, vec![5, 6], "each rule once");
        }
        other => panic!("{other:?}"),
    }
}
