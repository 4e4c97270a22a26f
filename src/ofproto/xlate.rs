//! Translation: run a flow key through the OpenFlow pipeline of a snapshot and
//! produce datapath actions plus the wildcard mask of every packet bit the result
//! depended on (the megaflow mask).
//!
//! Runs on upcall handler and revalidator threads, reading an immutable
//! [`TablesSnapshot`]. Its only side effects are MAC learning (when
//! [`XlateOptions::may_learn`]) and table lookup counters (when
//! [`XlateOptions::account`]); otherwise it is a pure function of (snapshot, MAC
//! table, key), which is what lets revalidators re-translate and compare.
//!
//! Wildcards: the working key tracks which bits were *written* by actions. Reading
//! a field (classifier lookup, NORMAL, TTL, select hashing) un-wildcards only the
//! bits that still come from the packet. Header rewrites are committed lazily: the
//! context remembers what the datapath packet looks like (`base`) and, before each
//! output, emits the `SetField`/VLAN actions that turn `base` into the working key.
//! Bits set to constants are emitted without reading the packet; only restoring a
//! packet value (after a group bucket worked on a copy) needs the packet's bits.

use super::mac_learning::{MacGuard, MacLearning};
use super::match_::{eth_type, ip_proto, oxm_location};
use super::rule::{Group, Rule, PC_NO_FLOOD, PC_NO_FWD, PC_NO_PACKET_IN, PC_NO_RECV};
use super::TablesSnapshot;
use crate::datapath::actions::{DpAction, DpActions, UserspaceReason};
use crate::datapath::flow::{Field, FlowKey, FLOW_WORDS, VLAN_CFI};
use crate::openflow::action::{Action, Instruction, CML_NO_BUFFER};
use crate::openflow::message::GroupType;
use crate::openflow::oxm::{OxmField, OxmId};
use crate::types::{GroupId, MacAddr, PortNo, TableId};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Most datapath actions one translation may produce; beyond this the packet is
/// dropped (a pathological flood through groups, say).
pub const MAX_DP_ACTIONS: usize = 4096;
/// Deepest group chaining followed.
pub const MAX_GROUP_DEPTH: u32 = 32;
/// Most table lookups (including packet-out TABLE resubmits) per translation.
pub const MAX_LOOKUPS: u32 = 1024;

/// `XlateOutput::slow` bit: the actions send packets to the controller.
pub const SLOW_CONTROLLER: u32 = 1;

/// OFPR_NO_MATCH.
pub const OFPR_NO_MATCH: u8 = 0;
/// OFPR_ACTION.
pub const OFPR_ACTION: u8 = 1;
/// OFPR_INVALID_TTL.
pub const OFPR_INVALID_TTL: u8 = 2;

/// Per-call knobs.
#[derive(Clone, Copy, Debug, Default)]
pub struct XlateOptions {
    /// Let NORMAL learn source addresses (upcalls: yes; revalidation of a flow
    /// that saw traffic: yes, to refresh; pure re-checks: no).
    pub may_learn: bool,
    /// Time for MAC learning.
    pub now_ms: u64,
    /// Bump per-table lookup/matched counters (once per real packet).
    pub account: bool,
    /// The controller asked for INVALID_TTL packet-ins (async config bit).
    pub invalid_ttl_to_controller: bool,
}

/// A group a translation went through, for stats pushing.
#[derive(Clone, Debug)]
pub struct GroupHit {
    /// The group.
    pub group: Arc<Group>,
    /// The bucket used; `None` = every bucket (ALL groups).
    pub bucket: Option<usize>,
}

/// Result of a translation.
#[derive(Clone, Debug, Default)]
pub struct XlateOutput {
    /// Datapath actions (empty = drop).
    pub actions: DpActions,
    /// Every packet bit the result depended on (megaflow mask).
    pub wc: FlowKey,
    /// Every rule hit, in order, for stats pushing.
    pub rules: Vec<Arc<Rule>>,
    /// Every group executed.
    pub groups: Vec<GroupHit>,
    /// `SLOW_*` bits.
    pub slow: u32,
    /// Snapshot version translated against.
    pub version: u64,
    /// MAC learning sequence observed, if NORMAL consulted the MAC table; the
    /// result may change when [`MacLearning::seq`] moves past it.
    pub ml_seq: Option<u64>,
}

/// Fields committed by value with `SetField` (VLAN is handled apart).
const COMMIT_FIELDS: [Field; 15] = [
    Field::DlDst,
    Field::DlSrc,
    Field::NwProto,
    Field::NwTos,
    Field::NwTtl,
    Field::NwSrc,
    Field::NwDst,
    Field::TpSrc,
    Field::TpDst,
    Field::Ipv6Src,
    Field::Ipv6Dst,
    Field::Ipv6Label,
    Field::MplsLse,
    Field::ArpSha,
    Field::ArpTha,
];
const TCI_BITS: u128 = 0xefff;

#[derive(Clone, Debug, Default)]
struct ActionSet {
    pop_vlan: bool,
    push_vlan: Option<u16>,
    dec_ttl: bool,
    set_ttl: Option<u8>,
    set_fields: Vec<OxmField>,
    group: Option<GroupId>,
    output: Option<(PortNo, u16)>,
}

impl ActionSet {
    fn write(&mut self, actions: &[Action]) {
        for a in actions {
            match a {
                Action::Output { port, max_len } => self.output = Some((*port, *max_len)),
                Action::Group(g) => self.group = Some(*g),
                Action::SetField(f) => {
                    if let Some(e) = self.set_fields.iter_mut().find(|e| e.id == f.id) {
                        *e = *f;
                    } else {
                        self.set_fields.push(*f);
                    }
                }
                Action::PushVlan(t) => self.push_vlan = Some(*t),
                Action::PopVlan => self.pop_vlan = true,
                Action::DecNwTtl => self.dec_ttl = true,
                Action::SetNwTtl(t) => self.set_ttl = Some(*t),
                _ => {}
            }
        }
    }
}

struct Ctx<'a> {
    snap: &'a TablesSnapshot,
    ml: &'a MacLearning,
    ml_guard: Option<MacGuard<'a>>,
    opts: XlateOptions,
    flow: FlowKey,
    written: FlowKey,
    /// Bits written since the last commit (to emit whole rewrites, not only the
    /// bits that happen to differ).
    dirty: FlowKey,
    base: FlowKey,
    base_written: FlowKey,
    vlan_tpid: u16,
    out: XlateOutput,
    action_set: ActionSet,
    table_id: u8,
    rule: Option<Arc<Rule>>,
    lookups: u32,
    group_depth: u32,
    stop: bool,
}

impl<'a> Ctx<'a> {
    fn new(
        snap: &'a TablesSnapshot,
        ml: &'a MacLearning,
        flow: &FlowKey,
        opts: XlateOptions,
    ) -> Self {
        Ctx {
            snap,
            ml,
            ml_guard: None,
            opts,
            flow: *flow,
            written: FlowKey::default(),
            dirty: FlowKey::default(),
            base: *flow,
            base_written: FlowKey::default(),
            vlan_tpid: 0x8100,
            out: XlateOutput {
                version: snap.version,
                ..XlateOutput::default()
            },
            action_set: ActionSet::default(),
            table_id: 0,
            rule: None,
            lookups: 0,
            group_depth: 0,
            stop: false,
        }
    }

    /// Reads a field, un-wildcarding the bits that come from the packet.
    fn read(&mut self, f: Field) -> u128 {
        let unwritten = f.full_mask() & !self.written.get(f);
        if unwritten != 0 {
            self.out.wc.or_bits(f, unwritten);
        }
        self.flow.get(f)
    }

    /// Writes bits of a field of the working key (no wildcarding).
    fn write(&mut self, f: Field, value: u128, mask: u128) {
        let cur = self.flow.get(f);
        self.flow.set(f, (cur & !mask) | (value & mask));
        self.written.or_bits(f, mask);
        self.dirty.or_bits(f, mask);
    }

    fn in_port(&mut self) -> PortNo {
        PortNo(self.read(Field::InPort) as u32)
    }

    fn emit(&mut self, a: DpAction) {
        if self.out.actions.len() >= MAX_DP_ACTIONS {
            self.out.actions.clear();
            self.stop = true;
            return;
        }
        self.out.actions.push(a);
    }

    /// Emits the actions that make the datapath packet equal to the working key.
    fn commit(&mut self) {
        self.commit_vlan();
        for f in COMMIT_FIELDS {
            self.commit_bits(f, f.full_mask());
        }
        self.sync_base();
    }

    /// Records that the datapath packet now equals the working key.
    fn sync_base(&mut self) {
        self.base = self.flow;
        self.base_written = self.written;
        self.dirty = FlowKey::default();
    }

    fn commit_bits(&mut self, f: Field, within: u128) {
        let fw = self.written.get(f) & within;
        let bw = self.base_written.get(f) & within;
        if fw == 0 && bw == 0 {
            return;
        }
        let fv = self.flow.get(f);
        let bv = self.base.get(f);
        let need_const = fw & !(bw & !(fv ^ bv));
        let restore = bw & !fw;
        if restore != 0 {
            self.out.wc.or_bits(f, restore);
        }
        let mut mask = need_const | restore;
        if mask != 0 {
            mask |= self.dirty.get(f) & fw;
            self.emit(DpAction::SetField {
                field: f,
                value: fv & mask,
                mask,
            });
        }
    }

    fn commit_vlan(&mut self) {
        let cfi = VLAN_CFI as u128;
        let fw = self.written.get(Field::VlanTci);
        let bw = self.base_written.get(Field::VlanTci);
        let ftci = self.flow.get(Field::VlanTci);
        let btci = self.base.get(Field::VlanTci);
        let presence_known_same = (fw & cfi == 0 && bw & cfi == 0)
            || (fw & cfi != 0 && bw & cfi != 0 && (ftci ^ btci) & cfi == 0);
        if !presence_known_same {
            if fw & cfi == 0 || bw & cfi == 0 {
                self.out.wc.or_bits(Field::VlanTci, cfi);
            }
            let f_tag = ftci & cfi != 0;
            let b_tag = btci & cfi != 0;
            if b_tag && !f_tag {
                self.emit(DpAction::PopVlan);
                return;
            }
            if f_tag && !b_tag {
                let unwritten = TCI_BITS & !fw;
                if unwritten != 0 {
                    self.out.wc.or_bits(Field::VlanTci, unwritten);
                }
                let tpid = self.vlan_tpid;
                self.emit(DpAction::PushVlan {
                    tpid,
                    tci: (ftci & TCI_BITS) as u16,
                });
                return;
            }
            if !f_tag {
                return;
            }
        }
        self.commit_bits(Field::VlanTci, TCI_BITS);
    }

    fn controller(&mut self, reason: u8, max_len: u16) {
        let (table_id, cookie) = match &self.rule {
            Some(r) => (r.table_id.0, r.cookie.0),
            None => (self.table_id, u64::MAX),
        };
        self.commit();
        self.emit(DpAction::Userspace(UserspaceReason::Controller {
            reason,
            max_len,
            table_id,
            cookie,
        }));
        self.out.slow |= SLOW_CONTROLLER;
    }

    fn port_forwardable(&self, p: PortNo) -> bool {
        self.snap
            .ports
            .get(&p)
            .is_some_and(|i| i.is_live() && i.config & PC_NO_FWD == 0)
    }

    fn output_raw(&mut self, p: PortNo) {
        self.commit();
        self.emit(DpAction::Output(p));
    }

    fn output(&mut self, port: PortNo, max_len: u16) {
        match port {
            PortNo::IN_PORT => {
                let ip = self.in_port();
                if self.port_forwardable(ip) {
                    self.output_raw(ip);
                }
            }
            PortNo::TABLE => {
                let saved = std::mem::take(&mut self.action_set);
                self.pipeline(0);
                self.action_set = saved;
            }
            PortNo::NORMAL => self.normal(),
            PortNo::FLOOD | PortNo::ALL => {
                let ip = self.in_port();
                let snap = self.snap;
                for (p, info) in snap.ports.iter() {
                    if self.stop {
                        break;
                    }
                    if *p == ip || !info.is_live() || info.config & PC_NO_FWD != 0 {
                        continue;
                    }
                    if port == PortNo::FLOOD && info.config & PC_NO_FLOOD != 0 {
                        continue;
                    }
                    self.output_raw(*p);
                }
            }
            PortNo::CONTROLLER => {
                let reason = if self.rule.as_ref().is_some_and(|r| r.is_table_miss()) {
                    OFPR_NO_MATCH
                } else {
                    OFPR_ACTION
                };
                if reason == OFPR_NO_MATCH {
                    let ip = self.in_port();
                    if self
                        .snap
                        .ports
                        .get(&ip)
                        .is_some_and(|i| i.config & PC_NO_PACKET_IN != 0)
                    {
                        return;
                    }
                }
                self.controller(reason, max_len);
            }
            p if p.is_physical_or_local() => {
                let ip = self.in_port();
                if p != ip && self.port_forwardable(p) {
                    self.output_raw(p);
                }
            }
            _ => {}
        }
    }

    fn set_field(&mut self, f: &OxmField) {
        match f.id {
            OxmId::VlanVid => self.write(Field::VlanTci, f.value & 0xfff, 0xfff),
            OxmId::VlanPcp => self.write(Field::VlanTci, (f.value & 7) << 13, 0xe000),
            OxmId::ArpOp => self.write(Field::NwProto, f.value & 0xff, 0xff),
            id => {
                if let Some((field, shift)) = oxm_location(id) {
                    let m = super::match_::oxm_full_mask(id) << shift;
                    self.write(field, f.value << shift, m);
                }
            }
        }
    }

    fn is_ip(&mut self) -> bool {
        let t = self.read(Field::DlType) as u16;
        t == eth_type::IPV4 || t == eth_type::IPV6
    }

    fn push_vlan(&mut self, tpid: u16) {
        self.commit();
        let tci = self.read(Field::VlanTci);
        let new = if tci & VLAN_CFI as u128 != 0 {
            tci & TCI_BITS
        } else {
            0
        };
        self.emit(DpAction::PushVlan {
            tpid,
            tci: new as u16,
        });
        self.vlan_tpid = tpid;
        self.write(Field::VlanTci, new | VLAN_CFI as u128, 0xffff);
        self.sync_base();
    }

    fn pop_vlan(&mut self) {
        self.commit();
        self.emit(DpAction::PopVlan);
        self.write(Field::VlanTci, 0, 0xffff);
        self.sync_base();
    }

    fn set_ttl(&mut self, ttl: u8) {
        if self.is_ip() {
            self.write(Field::NwTtl, ttl as u128, 0xff);
        }
    }

    fn dec_ttl(&mut self) {
        if !self.is_ip() {
            return;
        }
        let ttl = self.read(Field::NwTtl);
        if ttl <= 1 {
            if self.opts.invalid_ttl_to_controller {
                self.controller(OFPR_INVALID_TTL, CML_NO_BUFFER);
            }
            self.stop = true;
            return;
        }
        self.write(Field::NwTtl, ttl - 1, 0xff);
    }

    fn do_actions(&mut self, actions: &[Action]) {
        for a in actions {
            if self.stop {
                return;
            }
            match a {
                Action::Output { port, max_len } => self.output(*port, *max_len),
                Action::Group(g) => self.group(*g),
                Action::SetField(f) => self.set_field(f),
                Action::PushVlan(t) => self.push_vlan(*t),
                Action::PopVlan => self.pop_vlan(),
                Action::SetNwTtl(t) => self.set_ttl(*t),
                Action::DecNwTtl => self.dec_ttl(),
                // No queues in this datapath; everything else is refused at FLOW_MOD.
                _ => {}
            }
        }
    }

    fn execute_action_set(&mut self) {
        let set = std::mem::take(&mut self.action_set);
        if set.pop_vlan {
            self.pop_vlan();
        }
        if let Some(t) = set.push_vlan {
            self.push_vlan(t);
        }
        if set.dec_ttl {
            self.dec_ttl();
        }
        if self.stop {
            return;
        }
        if let Some(t) = set.set_ttl {
            self.set_ttl(t);
        }
        for f in &set.set_fields {
            self.set_field(f);
        }
        if let Some(g) = set.group {
            self.group(g);
        } else if let Some((p, l)) = set.output {
            self.output(p, l);
        }
    }

    fn pipeline(&mut self, start: u8) {
        let mut table = start;
        loop {
            if self.stop || self.lookups >= MAX_LOOKUPS {
                return;
            }
            self.lookups += 1;
            self.table_id = table;
            let snap = self.snap;
            let Some(cls) = snap.tables.get(table as usize) else {
                return;
            };
            if self.opts.account {
                snap.counters[table as usize]
                    .lookups
                    .fetch_add(1, Ordering::Relaxed);
            }
            let mut tmp = FlowKey::default();
            let hit = cls.lookup(&self.flow, &mut tmp).map(|(_, r)| r.clone());
            for i in 0..FLOW_WORDS {
                self.out.wc.w[i] |= tmp.w[i] & !self.written.w[i];
            }
            // Table miss: OpenFlow 1.3 drops unless a table-miss rule exists.
            let Some(rule) = hit else { return };
            if self.opts.account {
                snap.counters[table as usize]
                    .matched
                    .fetch_add(1, Ordering::Relaxed);
            }
            self.out.rules.push(rule.clone());
            self.rule = Some(rule.clone());
            let mut goto = None;
            // Spec order: meter, apply, clear, write, metadata, goto.
            for ins in rule.instructions.iter() {
                if let Instruction::Meter(m) = ins {
                    if snap.meters.contains_key(m) {
                        self.emit(DpAction::Meter(m.0));
                    }
                }
            }
            for ins in rule.instructions.iter() {
                if let Instruction::ApplyActions(a) = ins {
                    self.do_actions(a);
                }
            }
            if self.stop {
                return;
            }
            for ins in rule.instructions.iter() {
                match ins {
                    Instruction::ClearActions => self.action_set = ActionSet::default(),
                    Instruction::GotoTable(t) => goto = Some(*t),
                    _ => {}
                }
            }
            for ins in rule.instructions.iter() {
                match ins {
                    Instruction::WriteActions(a) => self.action_set.write(a),
                    Instruction::WriteMetadata { value, mask } => {
                        self.write(Field::Metadata, *value as u128, *mask as u128)
                    }
                    _ => {}
                }
            }
            match goto {
                Some(TableId(t)) if t > table => table = t,
                _ => {
                    self.execute_action_set();
                    return;
                }
            }
        }
    }

    // ---- groups -------------------------------------------------------------------

    fn port_live(&self, p: PortNo) -> bool {
        self.snap.ports.get(&p).is_some_and(|i| i.is_live())
    }

    fn bucket_live(&self, b: &crate::openflow::message::Bucket, depth: u32) -> bool {
        if b.watch_port == PortNo::ANY && b.watch_group == GroupId::ANY {
            return true;
        }
        (b.watch_port != PortNo::ANY && self.port_live(b.watch_port))
            || (b.watch_group != GroupId::ANY && self.group_live(b.watch_group, depth + 1))
    }

    fn group_live(&self, g: GroupId, depth: u32) -> bool {
        if depth > MAX_GROUP_DEPTH {
            return false;
        }
        self.snap
            .groups
            .get(&g)
            .is_some_and(|g| g.buckets.iter().any(|b| self.bucket_live(b, depth)))
    }

    fn select_hash(&mut self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |v: u128| {
            for x in [v as u64, (v >> 64) as u64] {
                h = (h ^ x).wrapping_mul(0x0100_0000_01b3).rotate_left(23);
            }
        };
        let t = self.read(Field::DlType) as u16;
        mix(t as u128);
        let l4 = if t == eth_type::IPV4 {
            mix(self.read(Field::NwSrc));
            mix(self.read(Field::NwDst));
            true
        } else if t == eth_type::IPV6 {
            mix(self.read(Field::Ipv6Src));
            mix(self.read(Field::Ipv6Dst));
            true
        } else {
            mix(self.read(Field::DlSrc));
            mix(self.read(Field::DlDst));
            false
        };
        if l4 {
            let p = self.read(Field::NwProto) as u8;
            mix(p as u128);
            if matches!(p, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP) {
                mix(self.read(Field::TpSrc));
                mix(self.read(Field::TpDst));
            }
        }
        h ^ (h >> 31)
    }

    fn run_bucket(&mut self, actions: &[Action]) {
        let saved = (self.flow, self.written, self.rule.clone());
        self.do_actions(actions);
        self.flow = saved.0;
        self.written = saved.1;
        self.rule = saved.2;
    }

    fn group(&mut self, id: GroupId) {
        if self.group_depth >= MAX_GROUP_DEPTH {
            return;
        }
        let snap = self.snap;
        let Some(g) = snap.groups.get(&id) else {
            return;
        };
        self.group_depth += 1;
        match g.group_type {
            GroupType::All => {
                self.out.groups.push(GroupHit {
                    group: g.clone(),
                    bucket: None,
                });
                for b in &g.buckets {
                    if self.stop {
                        break;
                    }
                    self.run_bucket(&b.actions);
                }
            }
            GroupType::Indirect => {
                if let Some(b) = g.buckets.first() {
                    self.out.groups.push(GroupHit {
                        group: g.clone(),
                        bucket: Some(0),
                    });
                    self.run_bucket(&b.actions);
                }
            }
            GroupType::FastFailover => {
                if let Some(i) = g.buckets.iter().position(|b| self.bucket_live(b, 0)) {
                    self.out.groups.push(GroupHit {
                        group: g.clone(),
                        bucket: Some(i),
                    });
                    self.run_bucket(&g.buckets[i].actions);
                }
            }
            GroupType::Select => {
                let live: Vec<usize> = (0..g.buckets.len())
                    .filter(|&i| self.bucket_live(&g.buckets[i], 0))
                    .collect();
                let total: u64 = live.iter().map(|&i| g.buckets[i].weight as u64).sum();
                if !live.is_empty() {
                    let h = self.select_hash();
                    let chosen = if total == 0 {
                        live[(h % live.len() as u64) as usize]
                    } else {
                        let mut x = h % total;
                        let mut pick = live[0];
                        for &i in &live {
                            let w = g.buckets[i].weight as u64;
                            if x < w {
                                pick = i;
                                break;
                            }
                            x -= w;
                        }
                        pick
                    };
                    self.out.groups.push(GroupHit {
                        group: g.clone(),
                        bucket: Some(chosen),
                    });
                    self.run_bucket(&g.buckets[chosen].actions);
                }
            }
        }
        self.group_depth -= 1;
    }

    // ---- NORMAL -------------------------------------------------------------------

    fn normal(&mut self) {
        let snap = self.snap;
        let in_port = self.in_port();
        let Some(inp) = snap.ports.get(&in_port) else {
            return;
        };
        let tci = self.read(Field::VlanTci) as u16;
        let tagged = tci & VLAN_CFI != 0;
        let vlan = match inp.vlan {
            Some(v) => {
                if tagged {
                    return; // access ports drop tagged frames
                }
                v
            }
            None => {
                let vid = if tagged { tci & 0xfff } else { 0 };
                if !inp.carries_vlan(vid) {
                    return;
                }
                vid
            }
        };
        let src = MacAddr::from_u64(self.read(Field::DlSrc) as u64);
        let dst = MacAddr::from_u64(self.read(Field::DlDst) as u64);
        if self.ml_guard.is_none() {
            self.out.ml_seq = Some(self.ml.seq());
            self.ml_guard = Some(self.ml.lock());
        }
        let Some(guard) = self.ml_guard.as_mut() else {
            return;
        };
        if self.opts.may_learn && !src.is_multicast() {
            guard.learn(vlan, src, in_port, self.opts.now_ms);
        }
        let target = if dst.is_multicast() {
            None
        } else {
            guard.lookup(vlan, dst)
        };
        let pcp = if tagged { tci & 0xe000 } else { 0 };
        match target {
            Some(p) if p == in_port => {}
            Some(p) => {
                if let Some(op) = snap.ports.get(&p) {
                    if op.is_live() && op.config & PC_NO_FWD == 0 && op.carries_vlan(vlan) {
                        self.normal_output(p, op.vlan.is_some(), vlan, pcp);
                    }
                }
            }
            None => {
                for (p, op) in snap.ports.iter() {
                    if self.stop {
                        break;
                    }
                    if *p == in_port
                        || !op.is_live()
                        || op.config & (PC_NO_FWD | PC_NO_FLOOD) != 0
                        || !op.carries_vlan(vlan)
                    {
                        continue;
                    }
                    self.normal_output(*p, op.vlan.is_some(), vlan, pcp);
                }
            }
        }
    }

    fn normal_output(&mut self, p: PortNo, access: bool, vlan: u16, pcp: u16) {
        let want: u16 = if access || vlan == 0 {
            0
        } else {
            pcp | VLAN_CFI | vlan
        };
        let saved = (self.flow, self.written);
        if self.flow.vlan_tci() != want {
            self.write(Field::VlanTci, want as u128, 0xffff);
        }
        self.output_raw(p);
        self.flow = saved.0;
        self.written = saved.1;
    }

    fn finish(mut self) -> XlateOutput {
        if self.stop && self.out.actions.len() >= MAX_DP_ACTIONS {
            self.out.actions.clear();
        }
        drop(self.ml_guard.take());
        self.out
    }

    fn start(&mut self) -> bool {
        // OpenFlow 1.0's NO_RECV, which OVS keeps: drop everything from the port.
        let ip = self.in_port();
        self.snap
            .ports
            .get(&ip)
            .is_none_or(|i| i.config & PC_NO_RECV == 0)
    }
}

/// Translates a packet with key `flow` through the pipeline, starting at table 0.
pub fn translate(
    snap: &TablesSnapshot,
    ml: &MacLearning,
    flow: &FlowKey,
    opts: &XlateOptions,
) -> XlateOutput {
    let mut ctx = Ctx::new(snap, ml, flow, *opts);
    if ctx.start() {
        ctx.pipeline(0);
    }
    ctx.finish()
}

/// Translates an explicit action list (PACKET_OUT): output to `TABLE` runs the
/// pipeline from table 0. The key's `in_port` is the PACKET_OUT's in_port.
pub fn translate_actions(
    snap: &TablesSnapshot,
    ml: &MacLearning,
    flow: &FlowKey,
    actions: &[Action],
    opts: &XlateOptions,
) -> XlateOutput {
    let mut ctx = Ctx::new(snap, ml, flow, *opts);
    ctx.do_actions(actions);
    ctx.finish()
}
