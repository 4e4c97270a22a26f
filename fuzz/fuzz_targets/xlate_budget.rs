//! Random group and flow graphs plus a packet: translation must never panic
//! and never exceed a budget, however the graph is built (the work counters in
//! `XlateOutput::work` are checked against every `MAX_*` limit), and a
//! translation that hit a budget must be a plain drop.
//!
//! Input: byte 0 picks the number of groups (each built from 3 bytes: type and
//! two bucket action selectors), then the number of rules (3 bytes each:
//! table, match selector, action selector); the rest is a frame for the packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::datapath::extract::extract;
use rvswitchd::datapath::flow::{Field, FlowKey};
use rvswitchd::ofproto::mac_learning::MacLearning;
use rvswitchd::ofproto::xlate::{self, translate, translate_actions, XlateOptions, XlateOutput};
use rvswitchd::ofproto::{Ofproto, PortInfo};
use rvswitchd::openflow::action::{Action, Instruction};
use rvswitchd::openflow::message::{
    Bucket, FlowMod, FlowModCommand, GroupMod, GroupModCommand, GroupType, NO_BUFFER,
};
use rvswitchd::openflow::oxm::{Match, OxmField, OxmId};
use rvswitchd::types::{Cookie, DatapathId, GroupId, MacAddr, PortNo, TableId};

fn action(sel: u8, n_groups: u32) -> Vec<Action> {
    let g = GroupId(1 + (sel >> 3) as u32 % n_groups.max(1));
    match sel & 7 {
        0 => vec![Action::Group(g), Action::Group(g)],
        1 => vec![Action::Output {
            port: PortNo(2),
            max_len: 0,
        }],
        2 => vec![Action::Output {
            port: PortNo::FLOOD,
            max_len: 0,
        }],
        3 => vec![
            Action::SetField(OxmField::exact(OxmId::EthDst, sel as u128)),
            Action::Group(g),
        ],
        4 => vec![Action::Output {
            port: PortNo::CONTROLLER,
            max_len: 64,
        }],
        5 => vec![Action::Output {
            port: PortNo::NORMAL,
            max_len: 0,
        }],
        6 => vec![Action::PushVlan(0x8100), Action::Group(g)],
        _ => vec![Action::Group(g); 4],
    }
}

fn check(x: &XlateOutput) {
    let w = x.work;
    assert!(w.lookups <= xlate::MAX_RESUBMITS);
    assert!(w.buckets <= xlate::MAX_BUCKETS);
    assert!(w.steps <= xlate::MAX_STEPS);
    assert!(w.outputs <= xlate::MAX_OUTPUTS);
    assert!(w.liveness <= xlate::MAX_LIVENESS_CHECKS);
    assert!(w.max_depth <= xlate::MAX_DEPTH);
    assert!(x.actions.len() <= xlate::MAX_DP_ACTIONS);
    assert!(x.groups.len() as u32 <= xlate::MAX_BUCKETS);
    assert!(x.rules.len() as u32 <= xlate::MAX_RESUBMITS);
    if x.budget.is_some() {
        assert!(x.actions.is_empty() && x.slow == 0);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, mut rest)) = data.split_first() else {
        return;
    };
    let mut o = Ofproto::new(DatapathId(1), "fuzz");
    for p in 1..=4u32 {
        o.add_port(PortInfo::new(
            PortNo(p),
            &format!("p{p}"),
            MacAddr([2, 0, 0, 0, 0, p as u8]),
        ));
    }
    let n_groups = (n & 0x3f) as u32;
    for i in 1..=n_groups {
        let Some((c, r)) = rest.split_first_chunk::<3>() else {
            break;
        };
        rest = r;
        let group_type = match c[0] % 4 {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            _ => GroupType::FastFailover,
        };
        // Groups may only name groups that exist: bias references downwards.
        let b = |sel: u8| Bucket {
            weight: (group_type == GroupType::Select) as u16,
            watch_port: if group_type == GroupType::FastFailover {
                PortNo(1 + (sel % 3) as u32)
            } else {
                PortNo::ANY
            },
            watch_group: GroupId::ANY,
            actions: action(sel, i - 1),
        };
        let buckets = if group_type == GroupType::Indirect {
            vec![b(c[1])]
        } else {
            vec![b(c[1]), b(c[2])]
        };
        let _ = o.group_mod(
            &GroupMod {
                command: GroupModCommand::Add,
                group_type,
                group_id: GroupId(i),
                buckets,
            },
            0,
        );
    }
    let n_rules = (n >> 6) as usize * 4;
    for _ in 0..n_rules {
        let Some((c, r)) = rest.split_first_chunk::<3>() else {
            break;
        };
        rest = r;
        let table = c[0] % 4;
        let match_ = if c[1] & 1 != 0 {
            Match {
                fields: vec![OxmField::exact(OxmId::InPort, 1 + (c[1] >> 1) as u128 % 4)],
            }
        } else {
            Match::default()
        };
        let mut instructions = vec![Instruction::ApplyActions(action(c[2], n_groups))];
        if c[1] & 2 != 0 && table < 3 {
            instructions.push(Instruction::GotoTable(TableId(table + 1)));
        }
        let _ = o.flow_mod(
            &FlowMod {
                cookie: Cookie(0),
                cookie_mask: 0,
                table_id: TableId(table),
                command: FlowModCommand::Add,
                idle_timeout: 0,
                hard_timeout: 0,
                priority: c[1] as u16,
                buffer_id: NO_BUFFER,
                out_port: PortNo::ANY,
                out_group: GroupId::ANY,
                flags: 0,
                match_,
                instructions,
            },
            0,
        );
    }
    let snap = o.publish();
    let ml = MacLearning::default();
    let key = extract(rest, PortNo(1)).unwrap_or_else(|_| {
        let mut k = FlowKey::default();
        k.set(Field::InPort, 1);
        k
    });
    let opts = XlateOptions {
        may_learn: true,
        now_ms: 1,
        ..XlateOptions::default()
    };
    check(&translate(&snap, &ml, &key, &opts));
    let po = [
        Action::Group(GroupId(n_groups.max(1))),
        Action::Output {
            port: PortNo::TABLE,
            max_len: 0,
        },
    ];
    check(&translate_actions(&snap, &ml, &key, &po, &opts));
});
