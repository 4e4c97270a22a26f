//! Rules, groups, meters and ports: the objects the OpenFlow tables are made of.
//!
//! All of them are immutable once built and shared as `Arc`s between the Bridge
//! actor (which replaces them on modification) and the snapshots read by upcall
//! handlers and revalidators. The only mutable state is statistics, kept in atomics
//! so revalidators can push datapath counters into rules without any message or lock.
//! A rule's counters live inside it. A MODIFY (which builds a new `Rule` with new
//! instructions) hands them over ([`Rule::hand_counts_to`]): the new rule starts
//! from the old one's totals, and pushes from revalidators that still hold the
//! old `Arc<Rule>` are forwarded to it, as OVS forwards them through
//! `rule->new_rule` (`ofproto-dpif.c: rule_dpif_credit_stats()`).

use super::classifier::{ClassifierRule, KeyWords};
use super::hamt::HamtItem;
use super::match_::key_to_match;
use crate::datapath::flow::FlowKey;
use crate::openflow::action::{Action, Instruction};
use crate::openflow::message::{Bucket, GroupType, MeterBand, FF_SEND_FLOW_REM};
use crate::openflow::oxm::Match;
use crate::openflow::{decode_oxms, encode_oxms};
use crate::types::{Cookie, GroupId, MacAddr, MeterId, PortNo, TableId};
use arc_swap::ArcSwapOption;
use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Packet/byte counters and last-use time of a rule.
#[derive(Debug, Default)]
pub struct RuleCounters {
    /// Packets matched.
    pub packets: AtomicU64,
    /// Bytes matched.
    pub bytes: AtomicU64,
    /// Last time a packet matched, in [`crate::util::time::now_ms`] milliseconds; 0 = never.
    pub used_ms: AtomicU64,
}

impl RuleCounters {
    /// Adds hits (any thread: a handler crediting the packet it translated,
    /// a revalidator pushing a megaflow's deltas).
    #[inline]
    pub fn add(&self, packets: u64, bytes: u64, used_ms: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.used_ms.fetch_max(used_ms, Ordering::Relaxed);
    }
}

/// A validated instruction list behind one thin pointer (`Arc<InstructionList>`
/// is a word, where `Arc<[Instruction]>` was two): lists are interned, so
/// the extra indirection costs one allocation per distinct list, and rules
/// save a word each.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct InstructionList(Box<[Instruction]>);

impl InstructionList {
    /// A shared list.
    pub fn shared(ins: &[Instruction]) -> Arc<InstructionList> {
        Arc::new(InstructionList(ins.into()))
    }
}

impl std::ops::Deref for InstructionList {
    type Target = [Instruction];
    fn deref(&self) -> &[Instruction] {
        &self.0
    }
}

/// One OpenFlow flow entry.
///
/// Memory layout (a switch may hold 100k+ of these): the match is rebuilt
/// from the key when asked for (the OXM bytes received are kept only when
/// they differ from that, see [`Rule::match_oxm`]), the mask is shared by every rule of its subtable
/// (`Arc`), the masked value keeps only the words where the mask is non-zero
/// ([`KeyWords`], inline for up to four words), the counters are inline
/// (no allocation of their own), and identical instruction lists share one
/// [`InstructionList`] (interned by [`super::Ofproto`]).
#[derive(Debug)]
pub struct Rule {
    /// Unique id for the switch's lifetime (indexes the timeout list).
    pub id: u64,
    /// When the rule was added (ms); FLOW_MOD replacement keeps it only with counters.
    pub created_ms: u64,
    /// Cookie.
    pub cookie: Cookie,
    /// Statistics.
    counters: RuleCounters,
    /// The rule that took this one's counts over (a MODIFY or an ADD of the
    /// same match without `OFPFF_RESET_COUNTS`): credits go there from then on.
    /// Set once, by the Bridge actor; read by whoever credits the rule.
    replaced_by: ArcSwapOption<Rule>,
    /// Instructions, validated at FLOW_MOD time (shared between equal lists).
    pub instructions: Arc<InstructionList>,
    /// The match's OXM TLVs as received (no `ofp_match` header or padding),
    /// kept only when they differ from the canonical encoding of
    /// `(value, mask)` ([`key_to_match`]): a different field order, or a field
    /// the key cannot hold. `ovs-ofctl` sends the canonical order, so most
    /// rules keep none, which saves 22–40 bytes and an allocation per rule.
    oxm: Option<Box<ReceivedOxm>>,
    /// Match mask.
    mask: Arc<FlowKey>,
    /// Match value, compacted under `mask`.
    key: KeyWords,
    /// Priority.
    pub priority: u16,
    /// Idle timeout, seconds (0 = none).
    pub idle_timeout: u16,
    /// Hard timeout, seconds (0 = none).
    pub hard_timeout: u16,
    /// OFPFF_* flags.
    pub flags: u16,
    /// Table the rule is in.
    pub table_id: TableId,
}

/// Everything a [`Rule`] is built from (a struct, because there are many parts).
pub struct RuleParts<'a> {
    /// See [`Rule::id`].
    pub id: u64,
    /// See [`Rule::table_id`].
    pub table_id: TableId,
    /// See [`Rule::priority`].
    pub priority: u16,
    /// The match as received (already validated and normalised).
    pub match_: &'a Match,
    /// The match value (masked or not; it is masked here).
    pub value: &'a FlowKey,
    /// The match mask, ideally shared with other rules (see
    /// [`super::classifier::Classifier::shared_mask`]).
    pub mask: Arc<FlowKey>,
    /// See [`Rule::cookie`].
    pub cookie: Cookie,
    /// See [`Rule::idle_timeout`].
    pub idle_timeout: u16,
    /// See [`Rule::hard_timeout`].
    pub hard_timeout: u16,
    /// See [`Rule::flags`].
    pub flags: u16,
    /// See [`Rule::instructions`].
    pub instructions: Arc<InstructionList>,
    /// See [`Rule::created_ms`].
    pub created_ms: u64,
}

impl HamtItem for Arc<Rule> {
    #[inline]
    fn key_words(&self) -> &[u64] {
        self.key.as_slice()
    }
}

impl ClassifierRule for Arc<Rule> {
    #[inline]
    fn mask(&self) -> &FlowKey {
        &self.mask
    }
    #[inline]
    fn priority(&self) -> u16 {
        self.priority
    }
}

/// `m`'s encoding, unless it is the canonical one of `(value, mask)`, which
/// [`Rule::match_oxm`] can rebuild.
fn received_oxm(m: &Match, value: &FlowKey, mask: &FlowKey) -> Option<Box<ReceivedOxm>> {
    let sent = encode_oxms(m);
    let canonical = encode_oxms(&key_to_match(&value.masked(mask), mask));
    (sent != canonical).then(|| Box::new(ReceivedOxm(sent.into_boxed_slice())))
}

/// OXM bytes behind one thin pointer: the rare rule that keeps them pays
/// for the extra allocation, the others save a word.
#[derive(Clone, Debug)]
struct ReceivedOxm(Box<[u8]>);

impl Rule {
    /// Builds a rule.
    pub fn new(p: RuleParts<'_>) -> Rule {
        Rule {
            id: p.id,
            created_ms: p.created_ms,
            cookie: p.cookie,
            counters: RuleCounters::default(),
            replaced_by: ArcSwapOption::empty(),
            instructions: p.instructions,
            oxm: received_oxm(p.match_, p.value, &p.mask),
            key: KeyWords::new(p.value, &p.mask),
            mask: p.mask,
            priority: p.priority,
            idle_timeout: p.idle_timeout,
            hard_timeout: p.hard_timeout,
            flags: p.flags,
            table_id: p.table_id,
        }
    }

    /// The same rule (match, priority, timeouts, cookie, creation time) with other
    /// instructions and zeroed counters: what a FLOW_MOD MODIFY installs (it
    /// then takes the old counts over with [`Rule::hand_counts_to`], unless
    /// `OFPFF_RESET_COUNTS`).
    pub fn with_instructions(&self, instructions: Arc<InstructionList>) -> Rule {
        Rule {
            id: self.id,
            created_ms: self.created_ms,
            cookie: self.cookie,
            counters: RuleCounters::default(),
            replaced_by: ArcSwapOption::empty(),
            instructions,
            oxm: self.oxm.clone(),
            mask: self.mask.clone(),
            key: self.key.clone(),
            priority: self.priority,
            idle_timeout: self.idle_timeout,
            hard_timeout: self.hard_timeout,
            flags: self.flags,
            table_id: self.table_id,
        }
    }

    /// The match as the controller sent it (for FLOW_REMOVED and tests).
    pub fn match_(&self) -> Match {
        let Some(oxm) = &self.oxm else {
            return key_to_match(&self.value(), &self.mask);
        };
        match decode_oxms(&oxm.0) {
            Ok(m) => m,
            Err(e) => {
                // We encoded these bytes ourselves from a validated match.
                debug_assert!(false, "stored match does not decode: {e:?}");
                Match::default()
            }
        }
    }

    /// The match's OXM TLVs as they go on the wire (flow stats copy them):
    /// the bytes received, or their canonical encoding, which is the same.
    pub fn match_oxm(&self) -> Cow<'_, [u8]> {
        match &self.oxm {
            Some(b) => Cow::Borrowed(&b.0),
            None => Cow::Owned(encode_oxms(&key_to_match(&self.value(), &self.mask))),
        }
    }

    /// Match mask.
    pub fn mask(&self) -> &FlowKey {
        &self.mask
    }

    /// The shared mask allocation.
    pub fn mask_arc(&self) -> &Arc<FlowKey> {
        &self.mask
    }

    /// Match value (masked).
    pub fn value(&self) -> FlowKey {
        self.key.expand(&self.mask)
    }

    /// The compact match value (words where the mask is non-zero).
    pub fn key(&self) -> &KeyWords {
        &self.key
    }

    /// The rule's own counters (what its statistics report).
    #[inline]
    pub fn counters(&self) -> &RuleCounters {
        &self.counters
    }

    /// `new` replaces this rule and keeps its counts: it starts from this
    /// rule's totals, and later credits to this rule go to `new` (revalidators
    /// may hold this rule until they translate the flow again).
    ///
    /// The forward is set before the totals are read, and counters only
    /// add, so nothing is counted twice; a credit already past its check
    /// of `replaced_by` when the totals are read is lost (a few packets at
    /// most, in the instant of the replacement; OVS closes it with a mutex
    /// per rule that every credit takes).
    pub fn hand_counts_to(&self, new: &Arc<Rule>) {
        self.replaced_by.store(Some(new.clone()));
        let c = &self.counters;
        new.counters.add(
            c.packets.load(Ordering::Relaxed),
            c.bytes.load(Ordering::Relaxed),
            c.used_ms.load(Ordering::Relaxed),
        );
    }

    /// The end of the chain of rules that took this one's counts over, if
    /// any. The chain is shortened to one step on the way, so a rule replaced
    /// many times while a revalidator held its first version costs the walk
    /// once.
    fn counts_go_to(&self) -> Option<Arc<Rule>> {
        let mut at = self.replaced_by.load_full()?;
        let mut hops = 0u32;
        while let Some(next) = at.replaced_by.load_full() {
            at = next;
            hops += 1;
        }
        if hops > 0 {
            self.replaced_by.store(Some(at.clone()));
        }
        Some(at)
    }

    /// A catch-all rule with no actions, for tests that need rules to credit.
    #[cfg(test)]
    pub(crate) fn for_tests(id: u64) -> Arc<Rule> {
        Arc::new(Rule::new(RuleParts {
            id,
            table_id: TableId(0),
            priority: 0,
            match_: &Match::default(),
            value: &FlowKey::default(),
            mask: Arc::new(FlowKey::default()),
            cookie: Cookie(0),
            idle_timeout: 0,
            hard_timeout: 0,
            flags: 0,
            instructions: InstructionList::shared(&[]),
            created_ms: 0,
        }))
    }

    /// Adds datapath statistics (called by revalidators on any thread).
    #[inline]
    pub fn add_stats(&self, packets: u64, bytes: u64, used_ms: u64) {
        if self.replaced_by.load().is_none() {
            self.counters.add(packets, bytes, used_ms);
        } else if let Some(to) = self.counts_go_to() {
            to.counters.add(packets, bytes, used_ms);
        }
    }

    /// `(packets, bytes)`.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.counters.packets.load(Ordering::Relaxed),
            self.counters.bytes.load(Ordering::Relaxed),
        )
    }

    /// Last time the rule was used, or its creation time if never.
    pub fn last_used_ms(&self) -> u64 {
        self.counters
            .used_ms
            .load(Ordering::Relaxed)
            .max(self.created_ms)
    }

    /// Whether the controller asked for FLOW_REMOVED on this rule.
    pub fn send_flow_removed(&self) -> bool {
        self.flags & FF_SEND_FLOW_REM != 0
    }

    /// `(duration_sec, duration_nsec)` at `now_ms`.
    pub fn duration(&self, now_ms: u64) -> (u32, u32) {
        let d = now_ms.saturating_sub(self.created_ms);
        ((d / 1000) as u32, ((d % 1000) * 1_000_000) as u32)
    }

    /// True for a table-miss rule (priority 0, empty match): its CONTROLLER actions
    /// report reason NO_MATCH.
    pub fn is_table_miss(&self) -> bool {
        self.priority == 0 && self.mask.is_zero()
    }

    /// Every action in apply- and write-actions instructions.
    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.instructions.iter().flat_map(|i| match i {
            Instruction::ApplyActions(a) | Instruction::WriteActions(a) => a.as_slice(),
            _ => &[],
        })
    }

    /// The out_port filter of FLOW_MOD delete and flow stats: does any action output
    /// to `port`? `ANY` matches every rule.
    pub fn outputs_to(&self, port: PortNo) -> bool {
        port == PortNo::ANY
            || self
                .actions()
                .any(|a| matches!(a, Action::Output { port: p, .. } if *p == port))
    }

    /// The out_group filter: does any action send to `group`? `ANY` matches all.
    pub fn uses_group(&self, group: GroupId) -> bool {
        group == GroupId::ANY
            || self
                .actions()
                .any(|a| matches!(a, Action::Group(g) if *g == group))
    }

    /// The meter this rule's meter instruction names, if any.
    pub fn meter(&self) -> Option<MeterId> {
        self.instructions.iter().find_map(|i| match i {
            Instruction::Meter(m) => Some(*m),
            _ => None,
        })
    }

    /// Groups referenced by the rule's actions (with repetitions).
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.actions().filter_map(|a| match a {
            Action::Group(g) => Some(*g),
            _ => None,
        })
    }
}

/// Group/bucket counters.
#[derive(Debug, Default)]
pub struct GroupCounters {
    /// Packets through the group.
    pub packets: AtomicU64,
    /// Bytes.
    pub bytes: AtomicU64,
    /// Per bucket `(packets, bytes)`.
    pub buckets: Vec<(AtomicU64, AtomicU64)>,
}

/// One group table entry.
#[derive(Debug)]
pub struct Group {
    /// Id.
    pub id: GroupId,
    /// Type.
    pub group_type: GroupType,
    /// Buckets.
    pub buckets: Vec<Bucket>,
    /// Creation time (ms).
    pub created_ms: u64,
    /// Counters (a MODIFY starts new ones, as the bucket list changes).
    pub counters: GroupCounters,
}

impl Group {
    /// Builds a group with zeroed counters.
    pub fn new(id: GroupId, group_type: GroupType, buckets: Vec<Bucket>, now_ms: u64) -> Group {
        let n = buckets.len();
        Group {
            id,
            group_type,
            buckets,
            created_ms: now_ms,
            counters: GroupCounters {
                packets: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                buckets: (0..n)
                    .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                    .collect(),
            },
        }
    }

    /// Adds statistics for one translation's worth of traffic; `bucket` is the one
    /// used (`None`: every bucket, as for ALL groups).
    pub fn add_stats(&self, bucket: Option<usize>, packets: u64, bytes: u64) {
        let c = &self.counters;
        c.packets.fetch_add(packets, Ordering::Relaxed);
        c.bytes.fetch_add(bytes, Ordering::Relaxed);
        let bump = |b: &(AtomicU64, AtomicU64)| {
            b.0.fetch_add(packets, Ordering::Relaxed);
            b.1.fetch_add(bytes, Ordering::Relaxed);
        };
        match bucket {
            Some(i) => {
                if let Some(b) = c.buckets.get(i) {
                    bump(b);
                }
            }
            None => c.buckets.iter().for_each(bump),
        }
    }
}

/// One meter.
#[derive(Debug)]
pub struct Meter {
    /// Id.
    pub id: MeterId,
    /// OFPMF_* flags.
    pub flags: u16,
    /// Bands.
    pub bands: Vec<MeterBand>,
    /// Creation time (ms).
    pub created_ms: u64,
    /// Packets in.
    pub packets: AtomicU64,
    /// Bytes in.
    pub bytes: AtomicU64,
    /// Per band `(packets, bytes)` that exceeded the band's rate.
    pub band_stats: Vec<(AtomicU64, AtomicU64)>,
}

impl Meter {
    /// Builds a meter with zeroed counters.
    pub fn new(id: MeterId, flags: u16, bands: Vec<MeterBand>, now_ms: u64) -> Meter {
        let n = bands.len();
        Meter {
            id,
            flags,
            bands,
            created_ms: now_ms,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            band_stats: (0..n)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Adds traffic seen by the meter (by whoever executes it).
    pub fn add_stats(&self, packets: u64, bytes: u64) {
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// OFPPC_PORT_DOWN.
pub const PC_PORT_DOWN: u32 = 1 << 0;
/// OFPPC_NO_RECV.
pub const PC_NO_RECV: u32 = 1 << 2;
/// OFPPC_NO_FLOOD (OpenFlow 1.0's bit, which OVS keeps honouring).
pub const PC_NO_FLOOD: u32 = 1 << 4;
/// OFPPC_NO_FWD.
pub const PC_NO_FWD: u32 = 1 << 5;
/// OFPPC_NO_PACKET_IN.
pub const PC_NO_PACKET_IN: u32 = 1 << 6;
/// Every config bit PORT_MOD may change.
pub const PC_SUPPORTED: u32 = PC_PORT_DOWN | PC_NO_RECV | PC_NO_FLOOD | PC_NO_FWD | PC_NO_PACKET_IN;
/// OFPPS_LINK_DOWN.
pub const PS_LINK_DOWN: u32 = 1 << 0;
/// OFPPS_BLOCKED.
pub const PS_BLOCKED: u32 = 1 << 1;
/// OFPPS_LIVE.
pub const PS_LIVE: u32 = 1 << 2;

/// A bridge port as OpenFlow and NORMAL see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// OpenFlow port number.
    pub port_no: PortNo,
    /// Interface name.
    pub name: String,
    /// MAC address.
    pub hw_addr: MacAddr,
    /// OFPPC_* config bits.
    pub config: u32,
    /// OFPPS_* state bits.
    pub state: u32,
    /// Current speed, kbps.
    pub curr_speed: u32,
    /// Maximum speed, kbps.
    pub max_speed: u32,
    /// Access VLAN (NORMAL): `Some(v)` makes this an access port of VLAN `v`.
    pub vlan: Option<u16>,
    /// Trunk VLANs (NORMAL) when `vlan` is `None`; empty = every VLAN.
    pub trunks: Vec<u16>,
}

impl PortInfo {
    /// A new up, untagged trunk port with no special config.
    pub fn new(port_no: PortNo, name: &str, hw_addr: MacAddr) -> PortInfo {
        PortInfo {
            port_no,
            name: name.to_string(),
            hw_addr,
            config: 0,
            state: PS_LIVE,
            curr_speed: 10_000_000,
            max_speed: 10_000_000,
            vlan: None,
            trunks: Vec::new(),
        }
    }

    /// Up for forwarding: link up and not administratively down.
    pub fn is_live(&self) -> bool {
        self.state & PS_LINK_DOWN == 0 && self.config & PC_PORT_DOWN == 0
    }

    /// Whether NORMAL may use this port for `vlan`.
    pub fn carries_vlan(&self, vlan: u16) -> bool {
        match self.vlan {
            Some(v) => v == vlan,
            None => self.trunks.is_empty() || self.trunks.contains(&vlan),
        }
    }
}
