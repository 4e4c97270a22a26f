//! Feed arbitrary GROUP_MOD sequences to the group-graph validator: it must
//! never panic, and whatever it accepts must stay acyclic with no chain of
//! group references longer than `MAX_GROUP_CHAIN` (checked here independently,
//! by relaxation over the installed groups).
//!
//! Input: 4 bytes per GROUP_MOD — command (add/modify/delete), group id (1..=48),
//! type, and a byte whose bits pick up to two referenced groups and a watch
//! group from the next bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rvswitchd::ofproto::{Ofproto, PortInfo};
use rvswitchd::openflow::action::Action;
use rvswitchd::openflow::message::{Bucket, GroupMod, GroupModCommand, GroupType};
use rvswitchd::types::{DatapathId, GroupId, MacAddr, PortNo};
use std::collections::HashMap;

/// Longest chain in the installed graph, or `None` for a cycle.
fn longest_chain(o: &Ofproto) -> Option<u32> {
    let descs = o.group_descs();
    let mut h: HashMap<GroupId, u32> = descs.iter().map(|g| (g.group_id, 1)).collect();
    for _ in 0..=descs.len() + 1 {
        let mut changed = false;
        for g in &descs {
            let mut best = 0;
            for b in &g.buckets {
                let refs = b.actions.iter().filter_map(|a| match a {
                    Action::Group(c) => Some(*c),
                    _ => None,
                });
                for c in refs.chain(Some(b.watch_group).filter(|w| *w != GroupId::ANY)) {
                    best = best.max(h.get(&c).copied().unwrap_or(0));
                }
            }
            if h[&g.group_id] != best + 1 {
                h.insert(g.group_id, best + 1);
                changed = true;
            }
        }
        if !changed {
            return Some(h.values().copied().max().unwrap_or(0));
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let mut o = Ofproto::new(DatapathId(1), "fuzz");
    o.add_port(PortInfo::new(PortNo(1), "p1", MacAddr([2, 0, 0, 0, 0, 1])));
    for c in data.chunks_exact(4) {
        let id = GroupId(1 + (c[1] % 48) as u32);
        let command = match c[0] % 4 {
            0 | 1 => GroupModCommand::Add,
            2 => GroupModCommand::Modify,
            _ => GroupModCommand::Delete,
        };
        let group_type = match c[2] % 4 {
            0 => GroupType::All,
            1 => GroupType::Select,
            2 => GroupType::Indirect,
            _ => GroupType::FastFailover,
        };
        let mut actions = Vec::new();
        if c[3] & 1 != 0 {
            actions.push(Action::Group(GroupId(1 + (c[3] >> 2) as u32 % 48)));
        }
        if c[3] & 2 != 0 {
            actions.push(Action::Group(GroupId(1 + (c[2] >> 2) as u32 % 48)));
        }
        let watch_group = if group_type == GroupType::FastFailover && c[0] & 4 != 0 {
            GroupId(1 + (c[0] >> 3) as u32 % 48)
        } else {
            GroupId::ANY
        };
        let bucket = Bucket {
            weight: (group_type == GroupType::Select) as u16,
            watch_port: if watch_group == GroupId::ANY && group_type == GroupType::FastFailover {
                PortNo(1)
            } else {
                PortNo::ANY
            },
            watch_group,
            actions,
        };
        let n = if group_type == GroupType::Indirect {
            1
        } else {
            2
        };
        let _ = o.group_mod(
            &GroupMod {
                command,
                group_type,
                group_id: id,
                buckets: vec![bucket; n],
            },
            0,
        );
    }
    let longest = longest_chain(&o).expect("an accepted group graph has a cycle");
    assert!(
        longest <= rvswitchd::ofproto::MAX_GROUP_CHAIN,
        "chain of {longest}"
    );
});
