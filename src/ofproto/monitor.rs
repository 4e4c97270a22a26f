//! Flow monitors without I/O: which rule changes a monitor reports, and the
//! updates that describe them (OpenFlow 1.4.1 §7.3.5.19, Nicira
//! NXST_FLOW_MONITOR, the ONF extension on 1.3; OVS `ofproto/connmgr.c`
//! `ofmonitor_*` and `ofproto.c` `handle_flow_monitor_request()`).
//!
//! The work is split as OVS splits it between the connection and the
//! tables, but across two threads:
//! - the bridge, which owns the tables, records each rule change
//!   ([`FlowChange`]) while some connection has a monitor (a shared count,
//!   [`MonitorGauge`], so that a switch nobody monitors records nothing),
//!   and answers a monitor request with the rules it covers now
//!   ([`initial_updates`]);
//! - each connection keeps its own monitors ([`Monitor`]) and decides
//!   which changes it reports ([`Monitor::covers`], the merge of
//!   [`report_flags`]), in its own version, and when to pause.
//!
//! Ordering between the two: a connection counts a new monitor before its
//! request leaves for the bridge, so every change the bridge makes after
//! the request is recorded and reaches the connection; changes stamped
//! with a tables version the initial reply already reflects are not
//! reported again ([`Monitor::since`]).

use super::match_::match_to_key;
use super::rule::Rule;
use super::Ofproto;
use crate::datapath::flow::FlowKey;
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    FlowMonitorCommand, FlowMonitorRequest, FlowUpdate, FlowUpdateEvent, FMF_ADD, FMF_INITIAL,
    FMF_INSTRUCTIONS, FMF_MODIFY, FMF_NO_ABBREV, FMF_ONLY_OWN, FMF_REMOVED,
};
use crate::types::TableId;
use std::sync::Arc;

/// Most monitors one connection may hold (OFPBRC_EPERM beyond: the one
/// "the switch refuses" code every version has; OpenFlow defines no
/// "too many monitors"). OVS sets no number; each
/// monitor costs memory and a match test per rule change, so a peer may not
/// create them without bound.
pub const MAX_MONITORS: usize = 256;

/// One rule change, as the bridge records it for flow monitors.
#[derive(Clone, Debug)]
pub struct FlowChange {
    /// ADDED, REMOVED or MODIFIED.
    pub event: FlowUpdateEvent,
    /// OFPRR_* for REMOVED (0 otherwise).
    pub reason: u8,
    /// The rule after the change (the removed rule for REMOVED).
    pub rule: Arc<Rule>,
    /// The rule before an ADD that replaced it or a MODIFY, when its actions
    /// differ: a monitor's out_port matches the old actions too.
    pub old: Option<Arc<Rule>>,
    /// The xid of the request that made the change (0 for expiry).
    pub xid: u32,
}

/// The changes of one batch of requests (or one round of expiry).
#[derive(Debug)]
pub struct FlowChanges {
    /// The connection whose requests made them (`None`: the switch itself,
    /// e.g. timeouts), for the monitors' "own" rule.
    pub conn: Option<u64>,
    /// The tables version published after the changes.
    pub version: u64,
    /// The changes, in order.
    pub changes: Vec<FlowChange>,
}

/// The number of monitors over all connections of a bridge: the bridge
/// records changes only while it is not zero. A connection adds its
/// monitors before their request leaves for the bridge, and takes them back
/// when it closes or is dropped.
pub type MonitorGauge = crate::util::gauge::GaugeShare;

/// One registered monitor (OVS `struct ofmonitor`).
#[derive(Clone, Debug)]
pub struct Monitor {
    /// The request that created it (its match kept for refreshes).
    pub req: FlowMonitorRequest,
    /// Its match as a key and mask.
    value: FlowKey,
    mask: FlowKey,
    /// Changes stamped with this tables version or older are already in
    /// the monitor's initial reply (0 until it arrives: report everything).
    pub since: u64,
}

impl Monitor {
    /// A monitor for `req`, or the error for a request the switch cannot
    /// monitor (a table beyond the last, a match it cannot express).
    pub fn new(req: &FlowMonitorRequest) -> Result<Monitor, OfpError> {
        if req.table_id != TableId::ALL && req.table_id.0 >= TableId::N_TABLES {
            // OVS `handle_flow_monitor_request()`.
            return Err(OfpError::BadRequestTableId);
        }
        let (value, mask) = match_to_key(&req.match_)?;
        Ok(Monitor {
            req: req.clone(),
            value: value.masked(&mask),
            mask,
            since: 0,
        })
    }

    /// Whether `rule` is in the monitor's scope (OVS `ofmonitor_report()`):
    /// its table, an output to out_port in its actions (or in `old`'s), an
    /// output to out_group, and a match at least as specific as the
    /// monitor's (`cls_rule_is_loose_match()`).
    pub fn covers(&self, rule: &Rule, old: Option<&Rule>) -> bool {
        let r = &self.req;
        (r.table_id == TableId::ALL || r.table_id == rule.table_id)
            && (rule.outputs_to(r.out_port) || old.is_some_and(|o| o.outputs_to(r.out_port)))
            && rule.uses_group(r.out_group)
            && self.mask.is_subset_of(rule.mask())
            && rule.value().masked(&self.mask) == self.value
    }

    /// The OFPFMF_* flag that asks for `event`.
    pub fn wants(&self, event: FlowUpdateEvent) -> bool {
        self.req.flags & event_flag(event) != 0
    }
}

/// The OFPFMF_* flag that selects `event`.
pub fn event_flag(event: FlowUpdateEvent) -> u16 {
    match event {
        FlowUpdateEvent::Initial => FMF_INITIAL,
        FlowUpdateEvent::Added => FMF_ADD,
        FlowUpdateEvent::Removed => FMF_REMOVED,
        FlowUpdateEvent::Modified => FMF_MODIFY,
    }
}

/// The merged flags of the monitors that report `c` stamped `version`
/// (0: none does). As in OVS, one change is reported once, with what any
/// of the matching monitors asks for.
pub fn report_flags<'a>(
    monitors: impl Iterator<Item = &'a Monitor>,
    c: &FlowChange,
    version: u64,
) -> u16 {
    monitors
        .filter(|m| m.wants(c.event) && version > m.since && m.covers(&c.rule, c.old.as_deref()))
        .fold(0, |f, m| f | m.req.flags)
}

/// Whether a connection's own changes are reported in full under `flags`
/// (otherwise as one ABBREV per request). Nicira/ONF "own" arrives as
/// OFPFMF_NO_ABBREV (the codec maps it bit for bit); OpenFlow 1.4's
/// ONLY_OWN is taken as OVS takes it, the same "own changes in full":
/// `ovs-ofctl monitor` sets it by default and expects to see every other
/// connection's changes as well, which the spec's reading ("only own
/// changes") would hide from it.
pub fn own_in_full(flags: u16) -> bool {
    flags & (FMF_NO_ABBREV | FMF_ONLY_OWN) != 0
}

/// The full update for `rule`; instructions only if asked for
/// (OFPFMF_INSTRUCTIONS).
pub fn full_update(rule: &Rule, event: FlowUpdateEvent, reason: u8, flags: u16) -> FlowUpdate {
    FlowUpdate::Full {
        event,
        table_id: rule.table_id,
        reason,
        idle_timeout: rule.idle_timeout,
        hard_timeout: rule.hard_timeout,
        priority: rule.priority,
        cookie: rule.cookie,
        match_: rule.match_(),
        instructions: if flags & FMF_INSTRUCTIONS != 0 {
            rule.instructions.to_vec()
        } else {
            Vec::new()
        },
    }
}

/// The rules the INITIAL monitors of `reqs` cover now, each once, as
/// INITIAL updates with the rule's id (OVS
/// `ofproto_collect_ofmonitor_initial_rules()` and
/// `ofmonitor_compose_refresh_updates()`); requests whose monitor cannot be
/// built are skipped (the connection refused them already).
pub fn initial_updates(of: &Ofproto, reqs: &[FlowMonitorRequest]) -> Vec<(u64, FlowUpdate)> {
    let monitors: Vec<Monitor> = reqs
        .iter()
        .filter(|r| r.flags & FMF_INITIAL != 0 && r.command != FlowMonitorCommand::Delete)
        .filter_map(|r| Monitor::new(r).ok())
        .collect();
    // Rule id -> (rule, merged flags), in discovery order.
    let mut found: Vec<(Arc<Rule>, u16)> = Vec::new();
    let mut index: hashbrown::HashMap<u64, usize> = hashbrown::HashMap::new();
    for m in &monitors {
        let tables = if m.req.table_id == TableId::ALL {
            0..TableId::N_TABLES
        } else {
            m.req.table_id.0..m.req.table_id.0 + 1
        };
        for t in tables.filter_map(|t| of.table(TableId(t))) {
            t.for_each_subsumed(&m.value, &m.mask, |r| {
                if m.covers(r, None) {
                    match index.get(&r.id) {
                        Some(&i) => found[i].1 |= m.req.flags,
                        None => {
                            index.insert(r.id, found.len());
                            found.push((r.clone(), m.req.flags));
                        }
                    }
                }
            });
        }
    }
    found
        .into_iter()
        .map(|(r, f)| (r.id, full_update(&r, FlowUpdateEvent::Initial, 0, f)))
        .collect()
}

/// The default monitor `ovs-ofctl monitor BR watch:` asks for (for tests).
#[cfg(test)]
pub fn watch_all(id: u32) -> FlowMonitorRequest {
    use crate::types::{GroupId, PortNo};
    FlowMonitorRequest {
        monitor_id: id,
        out_port: PortNo::ANY,
        out_group: GroupId::ANY,
        flags: FMF_INITIAL | FMF_ADD | FMF_REMOVED | FMF_MODIFY | FMF_INSTRUCTIONS | FMF_ONLY_OWN,
        table_id: TableId::ALL,
        command: FlowMonitorCommand::Add,
        match_: Default::default(),
    }
}

/// A FLOW_MOD outputting to `out` (for tests).
#[cfg(test)]
pub fn test_flow_mod(
    command: crate::openflow::message::FlowModCommand,
    table: u8,
    priority: u16,
    match_: crate::openflow::oxm::Match,
    out: u32,
) -> crate::openflow::message::FlowMod {
    use crate::openflow::action::{Action, Instruction};
    use crate::types::PortNo;
    crate::openflow::message::FlowMod::new(
        command,
        TableId(table),
        priority,
        match_,
        vec![Instruction::ApplyActions(vec![Action::Output {
            port: PortNo(out),
            max_len: 0,
        }])],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openflow::message::FlowModCommand;
    use crate::openflow::oxm::{Match, OxmField, OxmId};
    use crate::types::PortNo;

    fn add(of: &mut Ofproto, table: u8, prio: u16, m: Match, out: u32) -> Arc<Rule> {
        let fm = test_flow_mod(FlowModCommand::Add, table, prio, m, out);
        of.flow_mod(&fm, 0).unwrap().added.unwrap()
    }

    fn ip() -> Match {
        Match {
            fields: vec![OxmField::exact(OxmId::EthType, 0x800)],
        }
    }

    #[test]
    fn scope_is_table_out_port_and_a_loose_match() {
        let mut of = Ofproto::new(crate::types::DatapathId(1), "t");
        let r_ip = add(&mut of, 0, 10, ip(), 2);
        let r_all = add(&mut of, 1, 5, Match::default(), 3);
        let all = Monitor::new(&watch_all(1)).unwrap();
        assert!(all.covers(&r_ip, None) && all.covers(&r_all, None));
        let m = Monitor::new(&FlowMonitorRequest {
            match_: ip(),
            ..watch_all(2)
        })
        .unwrap();
        assert!(m.covers(&r_ip, None));
        assert!(!m.covers(&r_all, None), "a wider rule is not covered");
        let t1 = Monitor::new(&FlowMonitorRequest {
            table_id: TableId(1),
            ..watch_all(3)
        })
        .unwrap();
        assert!(!t1.covers(&r_ip, None) && t1.covers(&r_all, None));
        let p3 = Monitor::new(&FlowMonitorRequest {
            out_port: PortNo(3),
            ..watch_all(4)
        })
        .unwrap();
        assert!(!p3.covers(&r_ip, None) && p3.covers(&r_all, None));
        assert!(p3.covers(&r_ip, Some(&r_all)), "old actions count");
        assert_eq!(
            Monitor::new(&FlowMonitorRequest {
                table_id: TableId(TableId::N_TABLES),
                ..watch_all(5)
            })
            .unwrap_err(),
            OfpError::BadRequestTableId
        );
    }

    #[test]
    fn initial_updates_list_each_covered_rule_once() {
        let mut of = Ofproto::new(crate::types::DatapathId(1), "t");
        add(&mut of, 0, 10, ip(), 2);
        add(&mut of, 0, 5, Match::default(), 3);
        let mut no_actions = FlowMonitorRequest {
            match_: ip(),
            ..watch_all(2)
        };
        no_actions.flags &= !FMF_INSTRUCTIONS;
        // Both monitors cover the IP rule: one update, with instructions
        // because one of them asks for them.
        let ups = initial_updates(&of, &[watch_all(1), no_actions.clone()]);
        assert_eq!(ups.len(), 2);
        let ip_up = ups
            .iter()
            .find(|(_, u)| matches!(u, FlowUpdate::Full { priority: 10, .. }))
            .expect("ip rule");
        assert!(
            matches!(&ip_up.1, FlowUpdate::Full { event: FlowUpdateEvent::Initial, instructions, .. } if !instructions.is_empty())
        );
        let ups = initial_updates(&of, &[no_actions.clone()]);
        assert_eq!(ups.len(), 1);
        assert!(
            matches!(&ups[0].1, FlowUpdate::Full { instructions, .. } if instructions.is_empty())
        );
        no_actions.flags &= !FMF_INITIAL;
        assert!(initial_updates(&of, &[no_actions]).is_empty());
    }
}
