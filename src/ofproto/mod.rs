//! The OpenFlow switch proper: flow tables, groups, meters, ports, translation of
//! OpenFlow rules into datapath actions, and MAC learning for NORMAL.
//!
//! Ownership and threads:
//! - [`Ofproto`] is owned by the Bridge actor, the only writer. It has no internal
//!   locking: FLOW_MOD, GROUP_MOD, METER_MOD, PORT_MOD and port changes run there.
//! - Readers on other threads (upcall handlers, revalidators) never see `Ofproto`;
//!   they see an immutable [`TablesSnapshot`] that the owner publishes with
//!   [`Ofproto::publish`], typically once per drained mailbox or at a barrier.
//!   Snapshots share structure with the owner's tables (see [`classifier`]), so a
//!   publish costs O(tables + subtables) pointer copies, and the first write to a
//!   table after a publish copies only the touched subtable's header and one path of
//!   its persistent map, never all rules.
//! - Rule, group and meter statistics are atomics inside the shared objects, bumped
//!   lock-free by revalidators ([`Rule::add_stats`]).
//! - [`mac_learning::MacLearning`] is shared by handlers behind a mutex (slow path).
//! - [`view::XlateView`] bundles what translations read (published snapshot, MAC
//!   table, fail-open) with the sequences that tell when a translation is stale;
//!   [`ukey`] holds the slow path's per-flow records the revalidators own.
//!
//! Translation ([`xlate::translate`]) is a pure function of a snapshot, the MAC
//! table and a flow key (apart from learning), so revalidators can re-run it later
//! and compare.

pub mod classifier;
pub mod hamt;
pub mod mac_learning;
pub mod match_;
pub mod monitor;
pub mod ofconn;
pub mod persist;
pub mod request;
pub mod rule;
mod stats;
pub use stats::FlowStatsJob;
pub mod trace;
pub mod ukey;
mod validate;
pub mod view;
pub mod xlate;

#[cfg(test)]
mod tests;

use crate::datapath::flow::FlowKey;
use crate::openflow::action::{Action, Instruction};
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    FlowMod, FlowModCommand, GroupMod, GroupModCommand, MeterMod, MeterModCommand, PortMod,
    FF_CHECK_OVERLAP, FF_NO_BYT_COUNTS, FF_NO_PKT_COUNTS, FF_RESET_COUNTS, FF_SEND_FLOW_REM,
};
use crate::openflow::oxm::Match;
use crate::types::{Cookie, DatapathId, GroupId, MeterId, PortNo, TableId};
use classifier::Classifier;
use rule::PC_SUPPORTED;
pub use rule::{Group, InstructionList, Meter, PortInfo, Rule, RuleCounters, RuleParts};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
pub use validate::MAX_GROUP_CHAIN;

/// OFPRR_IDLE_TIMEOUT.
pub const RR_IDLE_TIMEOUT: u8 = 0;
/// OFPRR_HARD_TIMEOUT.
pub const RR_HARD_TIMEOUT: u8 = 1;
/// OFPRR_DELETE.
pub const RR_DELETE: u8 = 2;
/// OFPRR_GROUP_DELETE.
pub const RR_GROUP_DELETE: u8 = 3;
/// OFPRR_METER_DELETE.
pub const RR_METER_DELETE: u8 = 4;

/// Number of OpenFlow tables.
pub const N_TABLES: usize = TableId::N_TABLES as usize;
/// Most groups we accept (reported in GROUP_FEATURES).
pub const MAX_GROUPS: usize = 65_536;
/// Most meters we accept (reported in METER_FEATURES).
pub const MAX_METERS: usize = 65_536;
/// Most bands per meter.
pub const MAX_METER_BANDS: usize = 8;
/// FEATURES_REPLY capabilities: FLOW_STATS | TABLE_STATS | PORT_STATS |
/// GROUP_STATS (the same bits in every version we speak).
pub const CAPABILITIES: u32 = 0x1 | 0x2 | 0x4 | 0x8;

/// A classifier of rules: what one flow table is.
pub type RuleTable = Classifier<Arc<Rule>>;
/// Groups by id.
pub type GroupMap = hashbrown::HashMap<GroupId, Arc<Group>>;
/// Meters by id.
pub type MeterMap = hashbrown::HashMap<MeterId, Arc<Meter>>;
/// Ports by number (ordered, so FLOOD output order is stable).
pub type PortMap = BTreeMap<PortNo, PortInfo>;

/// Lookup counters of one table, bumped by translations that account stats.
#[derive(Debug, Default)]
pub struct TableCounters {
    /// Packets looked up.
    pub lookups: AtomicU64,
    /// Packets that matched a rule.
    pub matched: AtomicU64,
}

/// An immutable view of the switch's OpenFlow state for other threads.
#[derive(Debug)]
pub struct TablesSnapshot {
    /// Changes whenever the contents change; megaflows translated at an older
    /// version may be stale.
    pub version: u64,
    /// Datapath id.
    pub dpid: DatapathId,
    /// The [`N_TABLES`] flow tables.
    pub tables: Vec<Arc<RuleTable>>,
    /// Groups.
    pub groups: Arc<GroupMap>,
    /// Meters.
    pub meters: Arc<MeterMap>,
    /// Ports.
    pub ports: Arc<PortMap>,
    /// Per-table lookup counters (shared with the owner).
    pub counters: Arc<Vec<TableCounters>>,
}

/// What a FLOW_MOD did.
#[derive(Debug, Default)]
pub struct FlowModResult {
    /// Rules deleted by the request; the caller sends FLOW_REMOVED (reason DELETE)
    /// for those with [`Rule::send_flow_removed`].
    pub removed: Vec<Arc<Rule>>,
    /// The rule an ADD installed.
    pub added: Option<Arc<Rule>>,
    /// The rule that ADD replaced (same table, match and priority), for flow
    /// monitors, which match an ADD against the old actions too (OVS
    /// `replace_rule_finish()`).
    pub replaced: Option<Arc<Rule>>,
    /// The rules a MODIFY changed, each as `(before, after)`.
    pub modified: Vec<(Arc<Rule>, Arc<Rule>)>,
    /// Whether the tables changed at all (so a publish is due).
    pub changed: bool,
}

/// The OpenFlow switch state of one bridge.
///
/// `Clone` is cheap where it matters: tables, groups, meters and ports are
/// behind `Arc`s of persistent maps, so a clone shares them until one side
/// changes; it is how a bundle commit can be undone (`request::commit_bundle`).
#[derive(Clone, Debug)]
pub struct Ofproto {
    dpid: DatapathId,
    dp_desc: String,
    /// Most rules per table: advertised in TABLE_FEATURES (`max_entries`)
    /// and enforced (OFPFMFC_TABLE_FULL), so a peer's rules cost bounded
    /// memory. OVS refuses the same way at a table's `flow_limit` when it
    /// may not evict (`ofproto.c: add_flow()`).
    table_max_entries: u32,
    tables: Vec<Arc<RuleTable>>,
    counters: Arc<Vec<TableCounters>>,
    /// Rules with an idle or hard timeout, by rule id.
    timed: hashbrown::HashMap<u64, Arc<Rule>>,
    groups: Arc<GroupMap>,
    /// Number of rules referring to each group.
    group_refs: hashbrown::HashMap<GroupId, u32>,
    /// Which groups refer to each group (reverse edges of the group graph, for
    /// GROUP_MOD's linear loop and depth check).
    group_parents: validate::GroupParents,
    meters: Arc<MeterMap>,
    /// Number of rules using each meter.
    meter_refs: hashbrown::HashMap<MeterId, u32>,
    ports: Arc<PortMap>,
    version: u64,
    dirty: bool,
    last: Option<Arc<TablesSnapshot>>,
    next_rule_id: u64,
    /// Interned instruction lists: rules with equal instructions share one
    /// allocation. Entries nobody else holds are swept when the pool doubles.
    instr_pool: hashbrown::HashSet<Interned>,
    /// Pool size after the last sweep.
    instr_pool_swept: usize,
}

/// An entry of the instruction intern pool, found by the list's contents.
#[derive(Clone, Debug)]
struct Interned(Arc<InstructionList>);

impl std::borrow::Borrow<[Instruction]> for Interned {
    fn borrow(&self) -> &[Instruction] {
        &self.0
    }
}

// Hash and equality are those of the slice, as `Borrow` requires.
impl std::hash::Hash for Interned {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        <[Instruction] as std::hash::Hash>::hash(&self.0, h)
    }
}

impl PartialEq for Interned {
    fn eq(&self, other: &Interned) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for Interned {}

/// Which rules a modify/delete/stats request selects.
#[derive(Clone, Copy)]
struct RuleFilter {
    table_id: TableId,
    /// `Some(priority)`: strict (exact match and priority).
    strict: Option<u16>,
    value: FlowKey,
    mask: FlowKey,
    cookie: Cookie,
    cookie_mask: u64,
    out_port: PortNo,
    out_group: GroupId,
}

/// The ids a DELETE names: every key for the ALL wildcard, else the one id if
/// it exists (deleting a missing group or meter is not an error).
fn all_or_one<K: Copy + Eq + std::hash::Hash, V>(
    map: &hashbrown::HashMap<K, V>,
    id: K,
    all: K,
) -> Vec<K> {
    if id == all {
        map.keys().copied().collect()
    } else if map.contains_key(&id) {
        vec![id]
    } else {
        Vec::new()
    }
}

fn cookie_matches(rule: Cookie, want: Cookie, mask: u64) -> bool {
    (rule.0 ^ want.0) & mask == 0
}

impl Ofproto {
    /// A switch with empty tables. `dp_desc` is reported in OFPMP_DESC.
    pub fn new(dpid: DatapathId, dp_desc: &str) -> Ofproto {
        Ofproto {
            dpid,
            dp_desc: dp_desc.to_string(),
            table_max_entries: stats::TABLE_MAX_ENTRIES,
            tables: (0..N_TABLES)
                .map(|_| Arc::new(RuleTable::default()))
                .collect(),
            counters: Arc::new((0..N_TABLES).map(|_| TableCounters::default()).collect()),
            timed: hashbrown::HashMap::new(),
            groups: Arc::new(GroupMap::new()),
            group_refs: hashbrown::HashMap::new(),
            group_parents: validate::GroupParents::new(),
            meters: Arc::new(MeterMap::new()),
            meter_refs: hashbrown::HashMap::new(),
            ports: Arc::new(PortMap::new()),
            version: 1,
            dirty: true,
            last: None,
            next_rule_id: 1,
            instr_pool: hashbrown::HashSet::new(),
            instr_pool_swept: 0,
        }
    }

    /// Datapath id.
    pub fn dpid(&self) -> DatapathId {
        self.dpid
    }

    /// Changes the datapath id (configuration change).
    pub fn set_dpid(&mut self, dpid: DatapathId) {
        self.dpid = dpid;
        self.dirty = true;
    }

    /// Installs `priority=0 actions=NORMAL` in table 0: what a standalone bridge with
    /// no controller does, as OVS users expect.
    pub fn add_default_normal_flow(&mut self, now_ms: u64) -> Result<(), OfpError> {
        let fm = FlowMod::new(
            FlowModCommand::Add,
            TableId(0),
            0,
            Match::default(),
            vec![Instruction::ApplyActions(vec![Action::Output {
                port: PortNo::NORMAL,
                max_len: 0,
            }])],
        );
        self.flow_mod(&fm, now_ms).map(|_| ())
    }

    /// Lowers the per-table rule limit (tests reach the limit without a
    /// million rules).
    #[cfg(test)]
    pub(crate) fn set_table_max_entries(&mut self, n: u32) {
        self.table_max_entries = n;
    }

    /// Total number of rules in every table.
    pub fn n_rules(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }

    /// One table (for dumps and tests).
    pub fn table(&self, id: TableId) -> Option<&RuleTable> {
        self.tables.get(id.0 as usize).map(|t| &**t)
    }

    /// The current contents version (bumped by the first change after a publish).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// True when something changed since the last [`Ofproto::publish`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    fn touch(&mut self) {
        if !self.dirty {
            self.dirty = true;
            self.version += 1;
        }
    }

    /// Publishes an immutable snapshot for other threads.
    ///
    /// Cost: O([`N_TABLES`]) `Arc` clones plus the group/meter/port map `Arc`s; the
    /// rules themselves are shared. When nothing changed since the previous publish,
    /// the previous snapshot is returned and the version stays the same, so
    /// revalidators are not woken for nothing; otherwise the version is greater than
    /// every earlier snapshot's.
    pub fn publish(&mut self) -> Arc<TablesSnapshot> {
        if !self.dirty {
            if let Some(s) = &self.last {
                return s.clone();
            }
        }
        let snap = Arc::new(TablesSnapshot {
            version: self.version,
            dpid: self.dpid,
            tables: self.tables.clone(),
            groups: self.groups.clone(),
            meters: self.meters.clone(),
            ports: self.ports.clone(),
            counters: self.counters.clone(),
        });
        self.dirty = false;
        self.last = Some(snap.clone());
        snap
    }

    // ---- rule bookkeeping -------------------------------------------------------

    /// The shared copy of an instruction list (amortised O(1): the pool is swept
    /// of lists no rule uses any more each time it doubles).
    fn intern_instructions(&mut self, ins: &[Instruction]) -> Arc<InstructionList> {
        if let Some(a) = self.instr_pool.get(ins) {
            return a.0.clone();
        }
        if self.instr_pool.len() >= 2 * self.instr_pool_swept.max(32) {
            self.instr_pool.retain(|a| Arc::strong_count(&a.0) > 1);
            self.instr_pool_swept = self.instr_pool.len();
        }
        let a = InstructionList::shared(ins);
        self.instr_pool.insert(Interned(a.clone()));
        a
    }

    /// Number of distinct instruction lists in the intern pool (tests).
    #[cfg(test)]
    fn instr_pool_len(&self) -> usize {
        self.instr_pool.len()
    }

    fn account(&mut self, rule: &Arc<Rule>, add: bool) {
        for g in rule.groups() {
            let c = self.group_refs.entry(g).or_insert(0);
            if add {
                *c += 1;
            } else {
                *c = c.saturating_sub(1);
            }
        }
        if let Some(m) = rule.meter() {
            let c = self.meter_refs.entry(m).or_insert(0);
            if add {
                *c += 1;
            } else {
                *c = c.saturating_sub(1);
            }
        }
        if rule.idle_timeout != 0 || rule.hard_timeout != 0 {
            if add {
                self.timed.insert(rule.id, rule.clone());
            } else {
                self.timed.remove(&rule.id);
            }
        }
    }

    /// Inserts or replaces; returns the replaced rule.
    fn install(&mut self, rule: Arc<Rule>) -> Option<Arc<Rule>> {
        self.touch();
        let t = Arc::make_mut(&mut self.tables[rule.table_id.0 as usize]);
        let old = t.insert(rule.clone());
        // The replaced rule first: a re-added rule keeps its id, and
        // accounting it after the new one would take the new one out of
        // `timed` (its timeouts would never fire).
        if let Some(o) = &old {
            self.account(o, false);
        }
        self.account(&rule, true);
        old
    }

    fn uninstall(&mut self, rule: &Arc<Rule>) -> bool {
        let t = Arc::make_mut(&mut self.tables[rule.table_id.0 as usize]);
        let removed = t.remove(&rule.value(), rule.mask(), rule.priority);
        if let Some(r) = &removed {
            self.account(r, false);
            self.touch();
        }
        removed.is_some()
    }

    /// Rules selected by a FLOW_MOD/stats style filter.
    fn select_rules(&self, f: &RuleFilter) -> Vec<Arc<Rule>> {
        let RuleFilter {
            table_id,
            strict,
            value,
            mask,
            cookie,
            cookie_mask,
            out_port,
            out_group,
        } = *f;
        let range = if table_id == TableId::ALL {
            0..N_TABLES
        } else {
            table_id.0 as usize..table_id.0 as usize + 1
        };
        let mut out = Vec::new();
        let keep = |r: &Arc<Rule>| {
            cookie_matches(r.cookie, cookie, cookie_mask)
                && r.outputs_to(out_port)
                && r.uses_group(out_group)
        };
        for t in &self.tables[range] {
            match strict {
                Some(p) => {
                    if let Some(r) = t.find_exact(&value, &mask, p) {
                        if keep(r) {
                            out.push(r.clone());
                        }
                    }
                }
                None => t.for_each_subsumed(&value, &mask, |r| {
                    if keep(r) {
                        out.push(r.clone());
                    }
                }),
            }
        }
        out
    }

    // ---- FLOW_MOD ---------------------------------------------------------------

    /// Applies a FLOW_MOD (OpenFlow 1.3 semantics). `fm.buffer_id` is the caller's
    /// business (we never buffer packets).
    pub fn flow_mod(&mut self, fm: &FlowMod, now_ms: u64) -> Result<FlowModResult, OfpError> {
        const KNOWN_FLAGS: u16 = FF_SEND_FLOW_REM
            | FF_CHECK_OVERLAP
            | FF_RESET_COUNTS
            | FF_NO_PKT_COUNTS
            | FF_NO_BYT_COUNTS;
        if fm.flags & !KNOWN_FLAGS != 0 {
            return Err(OfpError::BadFlowModFlags);
        }
        let is_delete = matches!(
            fm.command,
            FlowModCommand::Delete | FlowModCommand::DeleteStrict
        );
        if fm.table_id == TableId::ALL {
            if !is_delete {
                return Err(OfpError::BadTableId);
            }
        } else if fm.table_id.0 >= TableId::N_TABLES {
            return Err(OfpError::BadTableId);
        }
        let (value, mask) = match_::match_to_key(&fm.match_)?;
        match fm.command {
            FlowModCommand::Add => self.add_flow(fm, value, mask, now_ms),
            FlowModCommand::Modify | FlowModCommand::ModifyStrict => {
                self.validate_instructions(fm.table_id, &value, &mask, &fm.instructions)?;
                let strict = (fm.command == FlowModCommand::ModifyStrict).then_some(fm.priority);
                let victims = self.select_rules(&RuleFilter {
                    table_id: fm.table_id,
                    strict,
                    value,
                    mask,
                    cookie: fm.cookie,
                    cookie_mask: fm.cookie_mask,
                    out_port: PortNo::ANY,
                    out_group: GroupId::ANY,
                });
                let mut res = FlowModResult::default();
                let instructions = if victims.is_empty() {
                    None
                } else {
                    Some(self.intern_instructions(&fm.instructions))
                };
                for old in victims {
                    let Some(ins) = &instructions else { break };
                    let new = Arc::new(old.with_instructions(ins.clone()));
                    if fm.flags & FF_RESET_COUNTS == 0 {
                        old.hand_counts_to(&new);
                    }
                    self.install(new.clone());
                    res.modified.push((old, new));
                }
                res.changed = !res.modified.is_empty();
                Ok(res)
            }
            FlowModCommand::Delete
                if mask.is_zero()
                    && fm.cookie_mask == 0
                    && fm.out_port == PortNo::ANY
                    && fm.out_group == GroupId::ANY =>
            {
                // "Delete everything" (what `ovs-ofctl del-flows` sends): drop
                // whole tables instead of removing rules one by one, which
                // would path-copy the persistent classifier per rule.
                let range = if fm.table_id == TableId::ALL {
                    0..N_TABLES
                } else {
                    fm.table_id.0 as usize..fm.table_id.0 as usize + 1
                };
                let mut res = FlowModResult::default();
                for i in range {
                    if self.tables[i].is_empty() {
                        continue;
                    }
                    let old = std::mem::take(&mut self.tables[i]);
                    old.for_each(|r| res.removed.push(r.clone()));
                }
                for r in &res.removed {
                    self.account(r, false);
                }
                res.changed = !res.removed.is_empty();
                if res.changed {
                    self.touch();
                }
                Ok(res)
            }
            FlowModCommand::Delete | FlowModCommand::DeleteStrict => {
                let strict = (fm.command == FlowModCommand::DeleteStrict).then_some(fm.priority);
                let victims = self.select_rules(&RuleFilter {
                    table_id: fm.table_id,
                    strict,
                    value,
                    mask,
                    cookie: fm.cookie,
                    cookie_mask: fm.cookie_mask,
                    out_port: fm.out_port,
                    out_group: fm.out_group,
                });
                let mut res = FlowModResult::default();
                for r in victims {
                    if self.uninstall(&r) {
                        res.removed.push(r);
                    }
                }
                res.changed = !res.removed.is_empty();
                Ok(res)
            }
        }
    }

    fn add_flow(
        &mut self,
        fm: &FlowMod,
        value: FlowKey,
        mask: FlowKey,
        now_ms: u64,
    ) -> Result<FlowModResult, OfpError> {
        self.validate_instructions(fm.table_id, &value, &mask, &fm.instructions)?;
        self.insert_flow(fm, value, mask, now_ms)
    }

    /// Adds a rule without the instruction checks: for tests that hand
    /// translation action lists a FLOW_MOD would refuse (a set-field whose
    /// prerequisites an earlier table established).
    #[cfg(test)]
    fn add_flow_unchecked(&mut self, fm: &FlowMod) -> Result<FlowModResult, OfpError> {
        let (value, mask) = match_::match_to_key(&fm.match_)?;
        self.insert_flow(fm, value, mask, 0)
    }

    fn insert_flow(
        &mut self,
        fm: &FlowMod,
        value: FlowKey,
        mask: FlowKey,
        now_ms: u64,
    ) -> Result<FlowModResult, OfpError> {
        let t = &self.tables[fm.table_id.0 as usize];
        if fm.flags & FF_CHECK_OVERLAP != 0 && t.has_overlap(&value, &mask, fm.priority) {
            return Err(OfpError::Overlap);
        }
        let existing = t.find_exact(&value, &mask, fm.priority).cloned();
        if existing.is_none() && t.len() >= self.table_max_entries as usize {
            return Err(OfpError::TableFull);
        }
        let id = match &existing {
            Some(old) => old.id,
            None => {
                let id = self.next_rule_id;
                self.next_rule_id += 1;
                id
            }
        };
        let mask = self.tables[fm.table_id.0 as usize]
            .shared_mask(&mask)
            .unwrap_or_else(|| Arc::new(mask));
        let instructions = self.intern_instructions(&fm.instructions);
        let rule = Arc::new(Rule::new(RuleParts {
            id,
            table_id: fm.table_id,
            priority: fm.priority,
            match_: &fm.match_,
            value: &value,
            mask,
            cookie: fm.cookie,
            idle_timeout: fm.idle_timeout,
            hard_timeout: fm.hard_timeout,
            flags: fm.flags,
            instructions,
            created_ms: now_ms,
        }));
        if let Some(old) = existing
            .as_ref()
            .filter(|_| fm.flags & FF_RESET_COUNTS == 0)
        {
            old.hand_counts_to(&rule);
        }
        let replaced = self.install(rule.clone());
        Ok(FlowModResult {
            removed: Vec::new(),
            added: Some(rule),
            replaced,
            modified: Vec::new(),
            changed: true,
        })
    }

    /// Removes rules whose idle or hard timeout has passed; returns them with the
    /// OFPRR reason. Cost is proportional to the number of rules *with* timeouts.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(Arc<Rule>, u8)> {
        let mut out = Vec::new();
        for r in self.timed.values() {
            if r.hard_timeout != 0
                && now_ms.saturating_sub(r.created_ms) >= r.hard_timeout as u64 * 1000
            {
                out.push((r.clone(), RR_HARD_TIMEOUT));
            } else if r.idle_timeout != 0
                && now_ms.saturating_sub(r.last_used_ms()) >= r.idle_timeout as u64 * 1000
            {
                out.push((r.clone(), RR_IDLE_TIMEOUT));
            }
        }
        out.retain(|(r, _)| self.uninstall(r));
        out
    }

    /// Milliseconds until the next hard timeout or (assuming no more traffic) idle
    /// timeout, so the owner can arm a timer; `None` when no rule has a timeout.
    pub fn next_timeout_in(&self, now_ms: u64) -> Option<u64> {
        self.timed
            .values()
            .flat_map(|r| {
                let hard =
                    (r.hard_timeout != 0).then(|| r.created_ms + r.hard_timeout as u64 * 1000);
                let idle =
                    (r.idle_timeout != 0).then(|| r.last_used_ms() + r.idle_timeout as u64 * 1000);
                hard.into_iter().chain(idle)
            })
            .min()
            .map(|t| t.saturating_sub(now_ms))
    }

    // ---- GROUP_MOD --------------------------------------------------------------

    /// Applies a GROUP_MOD. A DELETE also deletes every rule that sends to a deleted
    /// group; those are returned (FLOW_REMOVED reason [`RR_GROUP_DELETE`]).
    pub fn group_mod(&mut self, gm: &GroupMod, now_ms: u64) -> Result<Vec<Arc<Rule>>, OfpError> {
        match gm.command {
            GroupModCommand::Add | GroupModCommand::Modify => {
                if gm.group_id > GroupId::MAX {
                    return Err(OfpError::InvalidGroup);
                }
                let exists = self.groups.contains_key(&gm.group_id);
                if gm.command == GroupModCommand::Add && exists {
                    return Err(OfpError::GroupExists);
                }
                if gm.command == GroupModCommand::Modify && !exists {
                    return Err(OfpError::UnknownGroup);
                }
                if !exists && self.groups.len() >= MAX_GROUPS {
                    return Err(OfpError::OutOfGroups);
                }
                self.validate_group(gm)?;
                let g = Arc::new(Group::new(
                    gm.group_id,
                    gm.group_type,
                    gm.buckets.clone(),
                    now_ms,
                ));
                if let Some(old) = Arc::make_mut(&mut self.groups).insert(gm.group_id, g) {
                    validate::link_children(&mut self.group_parents, old.id, &old.buckets, false);
                }
                validate::link_children(&mut self.group_parents, gm.group_id, &gm.buckets, true);
                self.touch();
                Ok(Vec::new())
            }
            GroupModCommand::Delete => {
                let ids = all_or_one(&*self.groups, gm.group_id, GroupId::ALL);
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut removed = Vec::new();
                for id in ids {
                    if self.group_refs.get(&id).copied().unwrap_or(0) > 0 {
                        let victims = self.select_rules(&RuleFilter {
                            table_id: TableId::ALL,
                            strict: None,
                            value: FlowKey::default(),
                            mask: FlowKey::default(),
                            cookie: Cookie(0),
                            cookie_mask: 0,
                            out_port: PortNo::ANY,
                            out_group: id,
                        });
                        for r in victims {
                            if self.uninstall(&r) {
                                removed.push(r);
                            }
                        }
                    }
                    self.group_refs.remove(&id);
                    if let Some(old) = Arc::make_mut(&mut self.groups).remove(&id) {
                        validate::link_children(
                            &mut self.group_parents,
                            old.id,
                            &old.buckets,
                            false,
                        );
                    }
                }
                self.touch();
                Ok(removed)
            }
        }
    }

    // ---- METER_MOD --------------------------------------------------------------

    /// Applies a METER_MOD. A DELETE also deletes the rules using a deleted meter
    /// (returned; FLOW_REMOVED reason [`RR_METER_DELETE`]).
    pub fn meter_mod(&mut self, mm: &MeterMod, now_ms: u64) -> Result<Vec<Arc<Rule>>, OfpError> {
        use crate::openflow::message::{MeterBand, MF_BURST, MF_KBPS, MF_PKTPS, MF_STATS};
        match mm.command {
            MeterModCommand::Add | MeterModCommand::Modify => {
                // Above OFPM_MAX only the controller meter can be configured
                // (OVS handle_meter_mod() also takes OFPM_SLOWPATH, which
                // this switch has no use for: its slow path is the
                // controller path).
                if mm.meter_id.0 == 0
                    || (mm.meter_id > MeterId::MAX && mm.meter_id != MeterId::CONTROLLER)
                {
                    return Err(OfpError::InvalidMeter);
                }
                let exists = self.meters.contains_key(&mm.meter_id);
                if mm.command == MeterModCommand::Add && exists {
                    return Err(OfpError::MeterExists);
                }
                if mm.command == MeterModCommand::Modify && !exists {
                    return Err(OfpError::UnknownMeter);
                }
                if !exists && self.meters.len() >= MAX_METERS {
                    return Err(OfpError::OutOfMeters);
                }
                let rate_kind = mm.flags & (MF_KBPS | MF_PKTPS);
                if mm.flags & !(MF_KBPS | MF_PKTPS | MF_BURST | MF_STATS) != 0
                    || rate_kind == (MF_KBPS | MF_PKTPS)
                {
                    return Err(OfpError::BadMeterFlags);
                }
                if mm.bands.len() > MAX_METER_BANDS {
                    // As OVS `handle_meter_mod()`: more bands than the
                    // meter features advertise.
                    return Err(OfpError::OutOfBands);
                }
                for b in &mm.bands {
                    match b {
                        MeterBand::Drop { rate, .. } | MeterBand::DscpRemark { rate, .. } => {
                            if *rate == 0 {
                                return Err(OfpError::BadRate);
                            }
                        }
                        MeterBand::Experimenter { .. } => return Err(OfpError::BadBand),
                    }
                }
                let m = Arc::new(Meter::new(mm.meter_id, mm.flags, mm.bands.clone(), now_ms));
                Arc::make_mut(&mut self.meters).insert(mm.meter_id, m);
                self.touch();
                Ok(Vec::new())
            }
            MeterModCommand::Delete => {
                let ids = all_or_one(&*self.meters, mm.meter_id, MeterId::ALL);
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut removed = Vec::new();
                for id in ids {
                    if self.meter_refs.get(&id).copied().unwrap_or(0) > 0 {
                        let mut victims = Vec::new();
                        for t in &self.tables {
                            t.for_each(|r| {
                                if r.meter() == Some(id) {
                                    victims.push(r.clone());
                                }
                            });
                        }
                        for r in victims {
                            if self.uninstall(&r) {
                                removed.push(r);
                            }
                        }
                    }
                    self.meter_refs.remove(&id);
                    Arc::make_mut(&mut self.meters).remove(&id);
                }
                self.touch();
                Ok(removed)
            }
        }
    }

    // ---- ports ------------------------------------------------------------------

    /// Adds (or replaces) a port.
    pub fn add_port(&mut self, port: PortInfo) {
        Arc::make_mut(&mut self.ports).insert(port.port_no, port);
        self.touch();
    }

    /// Removes a port; returns it.
    pub fn remove_port(&mut self, port_no: PortNo) -> Option<PortInfo> {
        let p = Arc::make_mut(&mut self.ports).remove(&port_no);
        if p.is_some() {
            self.touch();
        }
        p
    }

    /// Replaces a port's description (link state, speed, VLAN config changes).
    /// Returns false when there is no such port.
    pub fn update_port(&mut self, port: PortInfo) -> bool {
        if !self.ports.contains_key(&port.port_no) {
            return false;
        }
        if self.ports.get(&port.port_no) != Some(&port) {
            Arc::make_mut(&mut self.ports).insert(port.port_no, port);
            self.touch();
        }
        true
    }

    /// One port.
    pub fn port(&self, port_no: PortNo) -> Option<&PortInfo> {
        self.ports.get(&port_no)
    }

    /// Every port, by number.
    pub fn ports(&self) -> &PortMap {
        &self.ports
    }

    /// Applies a PORT_MOD; returns the updated port (the caller sends PORT_STATUS
    /// and applies PORT_DOWN to the device).
    pub fn port_mod(&mut self, pm: &PortMod) -> Result<PortInfo, OfpError> {
        let Some(p) = self.ports.get(&pm.port_no) else {
            return Err(OfpError::PortModBadPort);
        };
        if p.hw_addr != pm.hw_addr {
            return Err(OfpError::PortModBadHwAddr);
        }
        if pm.mask & !PC_SUPPORTED != 0 {
            return Err(OfpError::PortModBadConfig);
        }
        let mut np = p.clone();
        np.config = (np.config & !pm.mask) | (pm.config & pm.mask);
        self.update_port(np.clone());
        Ok(np)
    }

    // ---- helpers shared with validation ----------------------------------------

    fn group_exists(&self, g: GroupId) -> bool {
        self.groups.contains_key(&g)
    }

    fn meter_exists(&self, m: MeterId) -> bool {
        self.meters.contains_key(&m)
    }
}
