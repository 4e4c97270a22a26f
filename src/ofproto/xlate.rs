//! Translation: run a flow key through the OpenFlow pipeline of a snapshot and
//! produce datapath actions plus the wildcard mask of every packet bit the result
//! depended on (the megaflow mask).
//!
//! Runs on upcall handler and revalidator threads (and on the Bridge actor for
//! PACKET_OUT), reading an immutable [`TablesSnapshot`]. Its only side effects
//! are MAC learning (when [`XlateOptions::may_learn`]), table lookup counters
//! (when [`XlateOptions::account`]) and, when a budget runs out, a coverage
//! counter and a rate-limited log line; otherwise it is a pure function of
//! (snapshot, MAC table, key), which is what lets revalidators re-translate
//! and compare.
//!
//! Every translation is bounded (see the budgets below), and MPLS/PBB
//! push/pop are followed in the working key: the key carries the payload
//! under MPLS and the PBB customer frame (see `datapath::extract`), so a pop
//! followed by matches on the inner headers needs no recirculation.
//!
//! Wildcards: the working key tracks which bits were *written* by actions. Reading
//! a field (classifier lookup, NORMAL, TTL, select hashing) un-wildcards only the
//! bits that still come from the packet. Header rewrites are committed lazily, as
//! OVS `commit_odp_actions()` does: the context remembers what the datapath packet
//! looks like (`base`, `base_vl`) and, before each action that observes the
//! packet (output, controller, and the MPLS/PBB pushes and pops, which the
//! executor applies to the packet as it is then), emits only the net change that
//! turns `base` into the working packet: VLAN pops, an in-place rewrite of the
//! outermost surviving tag, pushes of the final tags (`commit_vlan`), the first
//! MPLS label with its final value (`commit_mpls`), pops of labels a group
//! bucket pushed (`restore_mpls`), then one `SetField` per changed field. A tag
//! pushed and popped again costs nothing; a `set_field` after a `push_vlan` or a
//! first `push_mpls` is folded into the push. Edits are committed before a
//! packet gets its first label, and pops of labels are emitted at once, so L3
//! rewrites land where the naive order puts them (OVS's rules). Bits set to
//! constants are emitted without reading the packet; only restoring a packet
//! value (after a group bucket worked on a copy) needs the packet's bits. What a
//! bucket did that the key cannot undo (popped tags under the frame's outer one,
//! a PBB push/pop, labels popped) drops the packet (`XlateError::Unrestorable`).

use super::mac_learning::{MacGuard, MacLearning};
use super::match_::{eth_type, ip_proto, oxm_location};
use super::rule::{Group, Rule, PC_NO_FLOOD, PC_NO_FWD, PC_NO_PACKET_IN, PC_NO_RECV};
use super::TablesSnapshot;
use crate::datapath::actions::{DpAction, DpActions, UserspaceReason};
use crate::datapath::flow::{
    Field, FlowKey, FLOW_WORDS, MAX_MPLS_LABELS, MPLS_BOS, MPLS_LSES, MPLS_TTL_MASK, VLAN_CFI,
};
use crate::openflow::action::{Action, Instruction, CML_NO_BUFFER};
use crate::openflow::message::{Bucket, GroupType};
use crate::openflow::oxm::{OxmField, OxmId};
use crate::types::{GroupId, MacAddr, MeterId, PortNo, TableId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

// ---- budgets ---------------------------------------------------------------------
//
// A translation is work a peer can ask for (one PACKET_OUT, one miss), so every
// kind of work it does is bounded, like `ofproto-dpif-xlate.c`'s
// `xlate_resubmit_resource_check()`. Exceeding any budget ends the translation
// with *no* actions (a drop, which the upcall path installs as a drop megaflow
// under the mask read so far: the outcome depends only on those bits), counts
// it in a coverage counter and logs it, rate-limited. The values bound the worst
// case to a few milliseconds of one handler thread (see the `budget_*` tests
// in `ofproto/tests.rs` and the `group_bomb` bench), while no valid pipeline
// comes near them: GROUP_MOD refuses group chains deeper than
// [`super::validate::MAX_GROUP_CHAIN`], and goto only goes forward.

/// Deepest nesting of groups and PACKET_OUT `TABLE` resubmits (OVS `MAX_DEPTH`).
/// `goto_table` does not nest: tables only go forward, so they cannot recurse.
pub const MAX_DEPTH: u32 = 64;
/// Most table lookups in one translation, whether nested or not (OVS
/// `MAX_RESUBMITS`, which is `MAX_DEPTH * MAX_DEPTH`).
pub const MAX_RESUBMITS: u32 = MAX_DEPTH * MAX_DEPTH;
/// Most group buckets executed in one translation (each group entered also
/// counts one): what stops a fan-out of ALL groups from walking 2^n paths.
/// OVS has no such budget and relies on its 64 kB action-size limit, which a
/// graph whose leaves output nothing never reaches.
pub const MAX_BUCKETS: u32 = 4096;
/// Most OpenFlow actions interpreted in one translation (4096 lookups of rules
/// with 1024 actions each would otherwise be 4M steps).
pub const MAX_STEPS: u32 = 32 * 1024;
/// Most datapath actions one translation may produce (OVS stops at 64 kB of
/// netlink actions, about this many of ours).
pub const MAX_DP_ACTIONS: usize = 4096;
/// Most packet copies (outputs and controller sends) one translation makes.
pub const MAX_OUTPUTS: u32 = 1024;
/// Most bucket liveness checks (fast-failover and select groups, following
/// `watch_group` chains) per translation; results are memoised per group, so
/// this is only reached by graphs with very many buckets.
pub const MAX_LIVENESS_CHECKS: u32 = 4096;

/// Which budget a translation exhausted (see the `MAX_*` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Budget {
    /// [`MAX_DEPTH`] (OVS `XLATE_RECURSION_TOO_DEEP`).
    Depth,
    /// [`MAX_RESUBMITS`] (OVS `XLATE_TOO_MANY_RESUBMITS`).
    Resubmits,
    /// [`MAX_BUCKETS`].
    Buckets,
    /// [`MAX_STEPS`].
    Steps,
    /// [`MAX_DP_ACTIONS`] (OVS: "resubmits yielded over 64 kB of actions").
    Actions,
    /// [`MAX_OUTPUTS`].
    Outputs,
    /// [`MAX_LIVENESS_CHECKS`].
    Liveness,
}

impl Budget {
    /// Every budget.
    pub const ALL: [Budget; 7] = [
        Budget::Depth,
        Budget::Resubmits,
        Budget::Buckets,
        Budget::Steps,
        Budget::Actions,
        Budget::Outputs,
        Budget::Liveness,
    ];

    /// Short name, for logs and `ofproto/trace`.
    pub const fn name(self) -> &'static str {
        match self {
            Budget::Depth => "depth",
            Budget::Resubmits => "table lookups",
            Budget::Buckets => "group buckets",
            Budget::Steps => "actions interpreted",
            Budget::Actions => "datapath actions",
            Budget::Outputs => "outputs",
            Budget::Liveness => "liveness checks",
        }
    }

    /// The limit.
    pub const fn limit(self) -> u32 {
        match self {
            Budget::Depth => MAX_DEPTH,
            Budget::Resubmits => MAX_RESUBMITS,
            Budget::Buckets => MAX_BUCKETS,
            Budget::Steps => MAX_STEPS,
            Budget::Actions => MAX_DP_ACTIONS as u32,
            Budget::Outputs => MAX_OUTPUTS,
            Budget::Liveness => MAX_LIVENESS_CHECKS,
        }
    }

    fn coverage(self) -> &'static std::sync::atomic::AtomicU64 {
        use crate::util::coverage::c;
        match self {
            Budget::Depth => &c::xlate_too_deep,
            Budget::Resubmits => &c::xlate_too_many_resubmits,
            Budget::Buckets => &c::xlate_too_many_buckets,
            Budget::Steps => &c::xlate_too_many_steps,
            Budget::Actions => &c::xlate_too_many_actions,
            Budget::Outputs => &c::xlate_too_many_outputs,
            Budget::Liveness => &c::xlate_too_many_liveness_checks,
        }
    }
}

/// The work one translation did, each compared against its budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XlateWork {
    /// Table lookups ([`MAX_RESUBMITS`]).
    pub lookups: u32,
    /// Groups entered plus buckets executed ([`MAX_BUCKETS`]).
    pub buckets: u32,
    /// OpenFlow actions interpreted ([`MAX_STEPS`]).
    pub steps: u32,
    /// Outputs and controller sends ([`MAX_OUTPUTS`]).
    pub outputs: u32,
    /// Bucket liveness checks ([`MAX_LIVENESS_CHECKS`]).
    pub liveness: u32,
    /// Deepest nesting reached ([`MAX_DEPTH`]).
    pub max_depth: u32,
}

/// Shortest interval between two "budget exceeded" log lines, ms.
const BUDGET_LOG_INTERVAL_MS: u64 = 1000;
/// When the last such line was logged, and how many were suppressed since.
static BUDGET_LOG_LAST_MS: AtomicU64 = AtomicU64::new(0);
static BUDGET_LOG_SUPPRESSED: AtomicU64 = AtomicU64::new(0);

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
    /// The budget this translation exhausted, if any: then `actions` is empty
    /// (drop) and `slow` is 0, so the caller installs a drop megaflow.
    pub budget: Option<Budget>,
    /// Why the packet could not be translated, if so: then, too, `actions`
    /// is empty and `slow` is 0.
    pub error: Option<XlateError>,
    /// The work done (bounded by the budgets).
    pub work: XlateWork,
    /// The working flow when translation ended (OVS `ofproto/trace`'s "Final
    /// flow"): every rewrite, push and pop the top-level actions made, as
    /// the key describes them (group buckets work on copies).
    pub final_flow: FlowKey,
}

/// Fields committed by value with `SetField` (VLAN is handled apart). Every
/// packet field a `set_field` may write is here (see the `set_field_audit`
/// test), and so are the tunnel fields: they are the packet's metadata, which
/// a tunnel port reads when it encapsulates, so a change must reach the
/// datapath before an output as a header rewrite must (OVS
/// `commit_odp_tunnel_action()` in `commit_odp_actions()`). The
/// pipeline-only fields (metadata, in_port) and the encapsulation
/// bookkeeping fields (`MplsInner`, `PbbC*`, only written together with the
/// push/pop that makes them true) are not.
const COMMIT_FIELDS: [Field; 22] = [
    Field::TunnelId,
    Field::TunSrc,
    Field::TunDst,
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
    Field::MplsLse1,
    Field::MplsLse2,
    Field::ArpSha,
    Field::ArpTha,
    Field::NdTarget,
    Field::PbbIsid,
];

/// The fields that describe the L3/L4 headers; they become unknown (zero) when
/// a `pop_mpls` names a payload type other than the one the key holds.
const L3_FIELDS: [Field; 16] = [
    Field::NwProto,
    Field::NwTos,
    Field::NwTtl,
    Field::NwFrag,
    Field::NwSrc,
    Field::NwDst,
    Field::TpSrc,
    Field::TpDst,
    Field::TcpFlags,
    Field::Ipv6Exthdr,
    Field::Ipv6Src,
    Field::Ipv6Dst,
    Field::Ipv6Label,
    Field::ArpSha,
    Field::ArpTha,
    Field::NdTarget,
];

/// MPLS label of the first entry pushed onto an IPv6 packet: IPv6 explicit
/// null (RFC 3032 §2.1), as OVS `flow_push_mpls()`; IPv4 explicit null is 0.
const MPLS_IPV6_EXPLICIT_NULL: u32 = 2;
/// TTL of the first entry pushed onto a packet without an IP TTL (OVS).
const MPLS_DEFAULT_TTL: u32 = 64;

/// A translation that cannot be carried out for the packet at hand (not a
/// budget: a property of the packet). The packet is dropped, as OVS does with
/// `XLATE_TOO_MANY_MPLS_LABELS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XlateError {
    /// A `push_mpls` onto [`MAX_MPLS_LABELS`] labels, or a `pop_mpls` that would
    /// uncover a fourth entry the key does not hold.
    TooManyMplsLabels,
    /// `push_pbb` onto a PBB frame, or `push_mpls` onto one (the key describes
    /// one backbone header, not two).
    NestedEncapsulation,
    /// A `push_vlan` onto [`MAX_VLAN_PUSHED`] tags pushed by this translation.
    TooManyVlanHeaders,
    /// The actions after a group bucket (or a NORMAL output) need headers
    /// back that the bucket removed and the key cannot rebuild: the received
    /// frame's tags under its outer one, or the frame around a PBB push/pop
    /// (the datapath has no clone action to keep a copy).
    Unrestorable,
}

/// The `vlan_tci` bits that are on the wire (PCP and VID; the key's CFI bit
/// means "present").
const TCI_BITS: u128 = 0xefff;
/// The VID and PCP parts of a TCI: an in-place tag rewrite writes each part
/// that changed whole (`set(vlan_tci=0xc8/0xfff)`), as a `set_field` names it.
const TCI_PARTS: [u16; 2] = [0x0fff, 0xe000];

/// Most VLAN tags a translation may have pushed (and not popped) at once.
/// The key describes only the outer tag, so the tags under it are kept in
/// the translation context; more than this many is refused
/// ([`XlateError::TooManyVlanHeaders`]). It is as many as a received
/// packet's headroom holds (4 bytes each): the executor could not push
/// more anyway.
pub const MAX_VLAN_PUSHED: usize = crate::netdev::packet::HEADROOM / 4;

/// A tag pushed by translation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tag {
    tpid: u16,
    /// PCP | VID ([`TCI_BITS`]; no CFI).
    tci: u16,
}

/// The VLAN headers of a packet state (the working packet, or the datapath
/// packet as committed), relative to the frame translation started from (OVS
/// keeps them in `flow->vlans[]`, at most two): the frame's own tags with
/// `popped` of them removed, then `pushed[..n]` on top. Comparing two such
/// states gives the net VLAN change between them ([`Ctx::commit_vlan`]).
///
/// The frame's outer tag ("O0") is described by the key's `vlan_tci` (value,
/// written and dirty bits) while it is the outermost tag; while pushed tags
/// cover it, that state is kept in `orig*`, to come back when they are popped.
/// The frame's tags under O0 are unknown to the key (extraction keeps only
/// the outer one), so popping past O0 only counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Vlans {
    /// Tags of the frame removed (0: O0, if the frame has a tag, is there).
    popped: u16,
    /// How many entries of `pushed` are in use.
    n: u8,
    /// Pushed tags, innermost first.
    pushed: [Tag; MAX_VLAN_PUSHED],
    /// O0's `vlan_tci` value, written and dirty bits while covered.
    orig: u16,
    orig_written: u16,
    orig_dirty: u16,
    /// Bumped by every PBB push/pop, which makes a new outer frame: states of
    /// different frames cannot be compared.
    frame: u16,
}

/// The key fields a `push_mpls` onto a packet without labels changes.
const MPLS_STATE: [Field; 5] = [
    Field::DlType,
    Field::MplsLse,
    Field::MplsLse1,
    Field::MplsLse2,
    Field::MplsInner,
];

/// The key's [`MPLS_STATE`] before the last `push_mpls` onto a packet
/// without labels (value, written and dirty bits), for a `pop_mpls` that
/// undoes it before it was committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct MplsPush {
    before: [(u128, u128, u128); 5],
}

/// Entries in a key's MPLS label stack, up to the first with BoS (0 when
/// the key is not MPLS); for the committed key, which needs no wildcarding.
fn labels(k: &FlowKey) -> usize {
    if !matches!(k.dl_type(), eth_type::MPLS | eth_type::MPLS_MCAST) {
        return 0;
    }
    MPLS_LSES
        .iter()
        .position(|&f| k.get(f) & MPLS_BOS as u128 != 0)
        .map_or(MAX_MPLS_LABELS, |i| i + 1)
}

/// What a commit must emit for one field: the bits to write (whole parts that
/// were written since the last commit, not only the bits that happen to
/// differ) and the bits to un-wildcard (a packet value being restored).
/// `f*` is the working state, `b*` the committed one: value, written bits,
/// and (working only) bits written since the last commit.
fn diff_bits(fv: u128, fw: u128, fd: u128, bv: u128, bw: u128, within: u128) -> (u128, u128) {
    let fw = fw & within;
    let bw = bw & within;
    if fw == 0 && bw == 0 {
        return (0, 0);
    }
    // Written constants, unless the packet already holds them as written
    // constants; and packet bits the committed state overwrote.
    let need_const = fw & !(bw & !(fv ^ bv));
    let restore = bw & !fw;
    let mut mask = need_const | restore;
    if mask != 0 {
        mask |= fd & fw;
    }
    (mask, restore)
}

/// The action set (OF1.3.5 §5.10), executed in the spec's order: copy TTL
/// inwards, pops, push-MPLS, push-PBB, push-VLAN, copy TTL outwards, TTL
/// decrements, TTL sets and set-fields, group or output.
#[derive(Clone, Debug, Default)]
struct ActionSet {
    copy_ttl_in: bool,
    pop_vlan: bool,
    pop_mpls: Option<u16>,
    pop_pbb: bool,
    push_mpls: Option<u16>,
    push_pbb: Option<u16>,
    push_vlan: Option<u16>,
    copy_ttl_out: bool,
    dec_ttl: bool,
    dec_mpls_ttl: bool,
    set_ttl: Option<u8>,
    set_mpls_ttl: Option<u8>,
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
                Action::CopyTtlIn => self.copy_ttl_in = true,
                Action::CopyTtlOut => self.copy_ttl_out = true,
                Action::PopMpls(t) => self.pop_mpls = Some(*t),
                Action::PushMpls(t) => self.push_mpls = Some(*t),
                Action::PopPbb => self.pop_pbb = true,
                Action::PushPbb(t) => self.push_pbb = Some(*t),
                Action::DecMplsTtl => self.dec_mpls_ttl = true,
                Action::SetMplsTtl(t) => self.set_mpls_ttl = Some(*t),
                Action::SetQueue(_) | Action::Experimenter { .. } => {}
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
    /// The working packet's VLAN headers (its outer tag is also the key's
    /// `vlan_tci`).
    vl: Vlans,
    /// The datapath packet's VLAN headers, as committed.
    base_vl: Vlans,
    /// What the first MPLS push covered (see [`Ctx::commit_mpls`]).
    mpls_push: Option<MplsPush>,
    out: XlateOutput,
    action_set: ActionSet,
    table_id: u8,
    rule: Option<Arc<Rule>>,
    /// Current nesting of groups and TABLE resubmits.
    depth: u32,
    /// Liveness of groups already evaluated by this translation (fast-failover
    /// and select groups, `watch_group` chains): each group is evaluated once.
    live: hashbrown::HashMap<GroupId, bool>,
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
            vl: Vlans::default(),
            base_vl: Vlans::default(),
            mpls_push: None,
            out: XlateOutput {
                version: snap.version,
                ..XlateOutput::default()
            },
            action_set: ActionSet::default(),
            table_id: 0,
            rule: None,
            depth: 0,
            live: hashbrown::HashMap::new(),
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

    /// Ends the translation because budget `b` ran out (the first one wins).
    fn exhaust(&mut self, b: Budget) {
        if self.out.budget.is_none() {
            self.out.budget = Some(b);
        }
        self.stop = true;
    }

    /// Counts one unit of `b`'s work; false (and the translation ends) when the
    /// budget is already spent.
    fn charge(&mut self, b: Budget) -> bool {
        if self.out.budget.is_some() {
            return false;
        }
        let w = &mut self.out.work;
        let used = match b {
            Budget::Resubmits => &mut w.lookups,
            Budget::Buckets => &mut w.buckets,
            Budget::Steps => &mut w.steps,
            Budget::Outputs => &mut w.outputs,
            Budget::Liveness => &mut w.liveness,
            Budget::Depth | Budget::Actions => return true,
        };
        if *used >= b.limit() {
            self.exhaust(b);
            return false;
        }
        *used += 1;
        true
    }

    /// Enters one nesting level (group, TABLE resubmit); false when too deep.
    fn enter(&mut self) -> bool {
        if self.out.budget.is_some() {
            return false;
        }
        if self.depth >= MAX_DEPTH {
            self.exhaust(Budget::Depth);
            return false;
        }
        self.depth += 1;
        self.out.work.max_depth = self.out.work.max_depth.max(self.depth);
        true
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn emit(&mut self, a: DpAction) {
        if self.out.budget.is_some() {
            return;
        }
        if self.out.actions.len() >= MAX_DP_ACTIONS {
            self.exhaust(Budget::Actions);
            return;
        }
        self.out.actions.push(a);
    }

    /// Emits the actions that make the datapath packet equal to the working
    /// packet (OVS `commit_odp_actions()`): the VLAN change, then every
    /// changed field. Nothing is emitted for what did not change in net.
    fn commit(&mut self) {
        self.commit_vlan();
        self.commit_mpls();
        self.restore_mpls();
        if self.flow.get(Field::DlType) != self.base.get(Field::DlType) {
            // Only a group bucket's copy coming back can leave them apart:
            // the bucket pushed or popped an encapsulation the packet has
            // (or lacks) now, and there is no action that sets an ethertype.
            return self.fail(XlateError::Unrestorable);
        }
        for f in COMMIT_FIELDS {
            self.commit_bits(f, f.full_mask());
        }
        self.sync_base();
    }

    /// Records that the datapath packet now equals the working packet.
    fn sync_base(&mut self) {
        self.base = self.flow;
        self.base_written = self.written;
        self.dirty = FlowKey::default();
        self.vl.orig_dirty = 0;
        self.base_vl = self.vl;
    }

    /// Emits the `SetField` that brings field `f` (its bits `within`) of the
    /// datapath packet to the working value.
    fn commit_bits(&mut self, f: Field, within: u128) {
        let fv = self.flow.get(f);
        let (mask, restore) = diff_bits(
            fv,
            self.written.get(f),
            self.dirty.get(f),
            self.base.get(f),
            self.base_written.get(f),
            within,
        );
        if restore != 0 {
            self.out.wc.or_bits(f, restore);
        }
        if mask != 0 {
            self.emit(DpAction::SetField {
                field: f,
                value: fv & mask,
                mask,
            });
        }
    }

    /// The frame's outer tag (O0) in the working state: value, written and
    /// dirty bits of its `vlan_tci`.
    fn o0_flow(&self) -> (u128, u128, u128) {
        if self.vl.n == 0 {
            (
                self.flow.get(Field::VlanTci),
                self.written.get(Field::VlanTci),
                self.dirty.get(Field::VlanTci),
            )
        } else {
            let v = &self.vl;
            (v.orig as u128, v.orig_written as u128, v.orig_dirty as u128)
        }
    }

    /// O0 as committed: value and written bits.
    fn o0_base(&self) -> (u128, u128) {
        if self.base_vl.n == 0 {
            (
                self.base.get(Field::VlanTci),
                self.base_written.get(Field::VlanTci),
            )
        } else {
            let v = &self.base_vl;
            (v.orig as u128, v.orig_written as u128)
        }
    }

    /// Emits the net VLAN change from the committed headers to the working
    /// ones, as OVS `commit_vlan_action()`: the tags both have in common at
    /// the bottom stay; of the rest, the committed packet's are popped and the
    /// working packet's pushed with their final TCI — except that when one
    /// tag differs only in its TCI it is rewritten in place (OVS pops and
    /// pushes; our datapath can set a TCI). O0 under pushed tags is brought
    /// to its working value before tags go on top of it.
    fn commit_vlan(&mut self) {
        let (f, b) = (self.vl, self.base_vl);
        if f.frame != b.frame {
            return self.fail(XlateError::Unrestorable);
        }
        let (fo, fow, fod) = self.o0_flow();
        let (bo, bow) = self.o0_base();
        let mut c = 0usize;
        if f.popped == b.popped {
            let (o0_mask, _) = if f.popped == 0 {
                diff_bits(fo, fow, fod, bo, bow, TCI_BITS)
            } else {
                (0, 0)
            };
            if f.n == 0 && b.n == 0 {
                // The same tag (or none) is outermost: a plain field commit.
                if f.popped == 0 {
                    self.commit_bits(Field::VlanTci, TCI_BITS);
                }
                return;
            }
            if o0_mask == 0 {
                while c < f.n as usize && c < b.n as usize && f.pushed[c] == b.pushed[c] {
                    c += 1;
                }
                if c == f.n as usize && c == b.n as usize {
                    return;
                }
                if b.n as usize == c + 1 && f.n as usize > c && b.pushed[c].tpid == f.pushed[c].tpid
                {
                    // One committed tag differs from the working one in
                    // its TCI only: rewrite it where it is.
                    let (bt, ft) = (b.pushed[c].tci, f.pushed[c].tci);
                    let mask = TCI_PARTS
                        .iter()
                        .filter(|&&p| (bt ^ ft) & p != 0)
                        .fold(0u16, |m, &p| m | p);
                    self.emit(DpAction::SetField {
                        field: Field::VlanTci,
                        value: (ft & mask) as u128,
                        mask: mask as u128,
                    });
                    return self.push_tags(&f, c + 1);
                }
            }
            for _ in c..b.n as usize {
                self.emit(DpAction::PopVlan);
            }
            if c == 0 && o0_mask != 0 {
                // O0 is outermost now: bring it to the working value.
                let (mask, restore) = diff_bits(fo, fow, fod, bo, bow, TCI_BITS);
                if restore != 0 {
                    self.out.wc.or_bits(Field::VlanTci, restore);
                }
                self.emit(DpAction::SetField {
                    field: Field::VlanTci,
                    value: fo & mask,
                    mask,
                });
            }
        } else if f.popped > b.popped {
            // More of the frame's own tags are gone (O0 was tagged: a pop
            // of an absent O0 is not counted).
            for _ in 0..b.n as usize + (f.popped - b.popped) as usize {
                self.emit(DpAction::PopVlan);
            }
        } else if f.popped == 0 && b.popped == 1 {
            // A bucket popped O0 and the working packet has it back: push
            // it again, with the packet's bits the working state did not
            // write. The key does not hold the frame's TPID; 802.1Q's is
            // used.
            for _ in 0..b.n {
                self.emit(DpAction::PopVlan);
            }
            let unwritten = TCI_BITS & !fow;
            if unwritten != 0 {
                self.out.wc.or_bits(Field::VlanTci, unwritten);
            }
            self.emit(DpAction::PushVlan {
                tpid: crate::datapath::extract::ETH_TYPE_VLAN,
                tci: (fo & TCI_BITS) as u16,
            });
        } else {
            // Tags under O0 would have to come back: the key never held them.
            return self.fail(XlateError::Unrestorable);
        }
        self.push_tags(&f, c);
    }

    /// Emits a pending first MPLS push: the working packet has one label
    /// and the committed one none (pushes onto labels, and pops, are emitted
    /// as they come). The entry goes on with its final value, so label, TC
    /// and TTL edits after the push cost nothing (OVS commit_mpls_action()).
    /// Emitted before COMMIT_FIELDS, whose L3 rewrites then reach the payload
    /// under the label (as the executor does for MPLS frames), the order the
    /// actions came in.
    fn commit_mpls(&mut self) {
        let mpls = |t: u128| t as u16 == eth_type::MPLS || t as u16 == eth_type::MPLS_MCAST;
        let dl = self.flow.get(Field::DlType);
        if mpls(self.base.get(Field::DlType)) || !mpls(dl) {
            return;
        }
        if self.flow.get(Field::MplsLse) & MPLS_BOS as u128 == 0 {
            // More than one label on a packet that has none: a group
            // bucket's copy coming back after the bucket popped them.
            return self.fail(XlateError::Unrestorable);
        }
        // The entry and ethertype go on the wire: bits of them that are the
        // packet's (a bucket popped the label, and this is it coming back)
        // join the megaflow.
        for f in [Field::DlType, Field::MplsLse] {
            let unwritten = f.full_mask() & !self.written.get(f);
            if unwritten != 0 {
                self.out.wc.or_bits(f, unwritten);
            }
        }
        self.emit(DpAction::PushMpls {
            ethertype: dl as u16,
            lse: self.flow.get(Field::MplsLse) as u32,
        });
        for f in MPLS_STATE {
            self.base.set(f, self.flow.get(f));
            self.base_written.set(f, self.written.get(f));
            self.dirty.set(f, 0);
        }
    }

    /// After a group bucket pushed labels on the packet that the working
    /// copy does not have, pops them again (as OVS `commit_mpls_action()`
    /// pops what base has beyond the common labels): the labels under them
    /// and the payload are the working packet's, whose values the field
    /// commit then restores. Intermediate pops name 0x8847; the last one the
    /// working packet's ethertype. Any other mismatch of the label stacks
    /// cannot be undone ([`XlateError::Unrestorable`]).
    fn restore_mpls(&mut self) {
        let b_n = labels(&self.base);
        if labels(&self.flow) == b_n {
            // The common case, decided without reading the packet (whatever
            // made the two differ read the fields it depended on).
            return;
        }
        let f_n = self.mpls_count();
        let dl = self.flow.get(Field::DlType);
        let inner = if f_n == 0 {
            dl
        } else {
            self.flow.get(Field::MplsInner)
        };
        if b_n < f_n || self.base.get(Field::MplsInner) != inner {
            return self.fail(XlateError::Unrestorable);
        }
        let k = b_n - f_n;
        for i in 0..k {
            let ethertype = if i + 1 == k {
                dl as u16
            } else {
                eth_type::MPLS
            };
            self.emit(DpAction::PopMpls { ethertype });
        }
        for (j, &to) in MPLS_LSES.iter().enumerate() {
            // Entries the packet now has moved up; where it has none, the
            // key's entries describe nothing, as in the working key.
            let (v, w) = match MPLS_LSES.get(j + k) {
                Some(&src) if j < f_n => (self.base.get(src), self.base_written.get(src)),
                _ => (self.flow.get(to), self.written.get(to)),
            };
            self.base.set(to, v);
            self.base_written.set(to, w);
        }
        self.base.set(Field::DlType, dl);
        self.base_written
            .set(Field::DlType, self.written.get(Field::DlType));
        if f_n == 0 {
            self.base
                .set(Field::MplsInner, self.flow.get(Field::MplsInner));
            self.base_written
                .set(Field::MplsInner, self.written.get(Field::MplsInner));
        }
    }

    /// Emits pushes of `v`'s tags from index `from` outwards.
    fn push_tags(&mut self, v: &Vlans, from: usize) {
        for t in &v.pushed[from..v.n as usize] {
            self.emit(DpAction::PushVlan {
                tpid: t.tpid,
                tci: t.tci,
            });
        }
    }

    fn controller(&mut self, reason: u8, max_len: u16) {
        let (table_id, cookie) = match &self.rule {
            Some(r) => (r.table_id.0, r.cookie.0),
            None => (self.table_id, u64::MAX),
        };
        if !self.charge(Budget::Outputs) {
            return;
        }
        self.commit();
        let meter = self
            .snap
            .meters
            .contains_key(&MeterId::CONTROLLER)
            .then_some(MeterId::CONTROLLER.0);
        self.emit(DpAction::Userspace(UserspaceReason::Controller {
            reason,
            max_len,
            table_id,
            cookie,
            meter,
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
        if !self.charge(Budget::Outputs) {
            return;
        }
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
                if !self.enter() {
                    return;
                }
                let saved = std::mem::take(&mut self.action_set);
                let saved_rule = self.rule.clone();
                self.pipeline(0);
                self.action_set = saved;
                self.rule = saved_rule;
                self.leave();
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
            OxmId::VlanVid => self.set_vlan_bits(f.value & 0xfff, 0xfff),
            OxmId::VlanPcp => self.set_vlan_bits((f.value & 7) << 13, 0xe000),
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

    /// Shows `tci` as the working key's outer tag (CFI set), as written bits.
    fn show_tag(&mut self, tci: u16) {
        self.flow
            .set(Field::VlanTci, (tci | VLAN_CFI) as u128 & 0xffff);
        self.written.or_bits(Field::VlanTci, 0xffff);
    }

    /// `set_field` of VLAN_VID / VLAN_PCP: rewrites the outermost tag. A tag
    /// this translation pushed takes the bits in place (the push is emitted
    /// with its final TCI); the frame's own outer tag is a field committed
    /// like any other. A frame without a tag has nothing to set (the
    /// datapath ignores a TCI rewrite there too). Once the frame's outer tag
    /// is popped, the outermost tag (if any) is one the key does not know:
    /// the rewrite is emitted where it stands, after the pending VLAN change.
    fn set_vlan_bits(&mut self, value: u128, mask: u128) {
        if self.vl.n > 0 {
            let t = &mut self.vl.pushed[self.vl.n as usize - 1];
            t.tci = (t.tci & !(mask as u16)) | (value & mask) as u16;
            let tci = t.tci;
            self.show_tag(tci);
        } else if self.vl.popped == 0 {
            if self.read_bits(Field::VlanTci, VLAN_CFI as u128) != 0 {
                self.write(Field::VlanTci, value, mask);
            }
        } else {
            self.commit_vlan();
            self.sync_vlan_base();
            self.emit(DpAction::SetField {
                field: Field::VlanTci,
                value: value & mask,
                mask,
            });
        }
    }

    /// Records that the datapath packet's VLAN headers now equal the working
    /// ones (after [`Ctx::commit_vlan`] alone).
    fn sync_vlan_base(&mut self) {
        let (v, w) = (
            self.flow.get(Field::VlanTci),
            self.written.get(Field::VlanTci),
        );
        self.base.set(Field::VlanTci, v);
        self.base_written.set(Field::VlanTci, w);
        self.dirty.set(Field::VlanTci, 0);
        self.vl.orig_dirty = 0;
        self.base_vl = self.vl;
    }

    /// OFPAT_PUSH_VLAN: a new outer tag with the TCI of the current outer tag,
    /// if any (OF1.3.5 §5.12 Table 6). Nothing is emitted yet: the tag goes
    /// on the packet at the next commit, with whatever TCI it has then.
    fn push_vlan(&mut self, tpid: u16) {
        let tci = self.read(Field::VlanTci);
        let new = if tci & VLAN_CFI as u128 != 0 {
            (tci & TCI_BITS) as u16
        } else {
            0
        };
        self.push_tag(tpid, new);
    }

    fn push_tag(&mut self, tpid: u16, tci: u16) {
        let v = &mut self.vl;
        if v.n as usize >= MAX_VLAN_PUSHED {
            return self.fail(XlateError::TooManyVlanHeaders);
        }
        if v.n == 0 && v.popped == 0 {
            // O0 goes under: keep its state for when it is outermost again.
            v.orig = self.flow.get(Field::VlanTci) as u16;
            v.orig_written = self.written.get(Field::VlanTci) as u16;
            v.orig_dirty = self.dirty.get(Field::VlanTci) as u16;
        }
        v.pushed[v.n as usize] = Tag { tpid, tci };
        v.n += 1;
        self.show_tag(tci);
    }

    /// OFPAT_POP_VLAN: removes the outer tag. A tag this translation pushed
    /// just goes (the push never reaches the datapath); the frame's own tag
    /// is popped at the next commit. A frame without a tag keeps nothing to
    /// pop (which un-wildcards the key's "present" bit, as OVS's pop reads
    /// the tag).
    fn pop_vlan(&mut self) {
        if self.vl.n > 0 {
            self.vl.n -= 1;
            let v = self.vl;
            if v.n > 0 {
                self.show_tag(v.pushed[v.n as usize - 1].tci);
            } else if v.popped == 0 {
                self.flow.set(Field::VlanTci, v.orig as u128);
                self.written.set(Field::VlanTci, v.orig_written as u128);
                self.dirty.set(Field::VlanTci, v.orig_dirty as u128);
            } else {
                self.flow.set(Field::VlanTci, 0);
            }
            return;
        }
        if self.vl.popped == 0 && self.read_bits(Field::VlanTci, VLAN_CFI as u128) == 0 {
            return;
        }
        // Tags under O0 are unknown: the key says "no tag" from here on.
        self.vl.popped = self.vl.popped.saturating_add(1);
        self.flow.set(Field::VlanTci, 0);
        self.written.or_bits(Field::VlanTci, 0xffff);
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

    // ---- MPLS and PBB ---------------------------------------------------------------

    /// Ends the translation with a drop (see [`XlateError`]).
    fn fail(&mut self, e: XlateError) {
        if self.out.error.is_none() {
            self.out.error = Some(e);
        }
        self.stop = true;
    }

    /// Reads only `mask` bits of a field (un-wildcarding just those).
    fn read_bits(&mut self, f: Field, mask: u128) -> u128 {
        let unwritten = mask & !self.written.get(f);
        if unwritten != 0 {
            self.out.wc.or_bits(f, unwritten);
        }
        self.flow.get(f) & mask
    }

    fn is_mpls(&mut self) -> bool {
        let t = self.read(Field::DlType) as u16;
        t == eth_type::MPLS || t == eth_type::MPLS_MCAST
    }

    /// Entries in the MPLS label stack the key holds: up to the first with
    /// BoS, or [`MAX_MPLS_LABELS`] (as OVS `flow_count_mpls_labels()`, which
    /// also looks only at the BoS bits).
    fn mpls_count(&mut self) -> usize {
        if !self.is_mpls() {
            return 0;
        }
        for (i, f) in MPLS_LSES.iter().enumerate() {
            if self.read_bits(*f, MPLS_BOS as u128) != 0 {
                return i + 1;
            }
        }
        MAX_MPLS_LABELS
    }

    /// Whether the payload under a single-entry label stack is IP (what the
    /// copy-TTL actions need).
    fn mpls_inner_is_ip(&mut self) -> bool {
        let t = self.read(Field::MplsInner) as u16;
        t == eth_type::IPV4 || t == eth_type::IPV6
    }

    /// OFPAT_PUSH_MPLS (OF1.3.5 §5.12): a new outermost entry; the first one
    /// gets TTL from the IP TTL (64 without one, as OVS), TC 0 and label 0
    /// (2 for IPv6, RFC 3032 explicit null, as OVS); later ones copy the
    /// outer entry with BoS clear. The L3/L4 fields stay: they describe the
    /// payload, which [`Field::MplsInner`] names.
    fn push_mpls(&mut self, ethertype: u16) {
        let dl = self.read(Field::DlType) as u16;
        if dl == eth_type::PBB {
            return self.fail(XlateError::NestedEncapsulation);
        }
        let n = self.mpls_count();
        if n >= MAX_MPLS_LABELS {
            return self.fail(XlateError::TooManyMplsLabels);
        }
        // Edits so far go on the packet before it gets its first label (OVS
        // compose_mpls_push_action() commits there too); a push onto labels
        // is emitted now, the first one only at the next commit.
        self.commit();
        let lse = if n == 0 {
            let ip = dl == eth_type::IPV4 || dl == eth_type::IPV6;
            let ttl = if ip {
                match self.read(Field::NwTtl) as u32 {
                    0 => MPLS_DEFAULT_TTL,
                    t => t,
                }
            } else {
                MPLS_DEFAULT_TTL
            };
            let label = if dl == eth_type::IPV6 {
                MPLS_IPV6_EXPLICIT_NULL
            } else {
                0
            };
            (label << 12) | MPLS_BOS | ttl
        } else {
            (self.read(Field::MplsLse) as u32) & !MPLS_BOS
        };
        if n == 0 {
            let mut before = [(0, 0, 0); 5];
            for (b, f) in before.iter_mut().zip(MPLS_STATE) {
                *b = (self.flow.get(f), self.written.get(f), self.dirty.get(f));
            }
            self.mpls_push = Some(MplsPush { before });
        } else {
            self.emit(DpAction::PushMpls { ethertype, lse });
        }
        if n == 0 {
            self.write(Field::MplsInner, dl as u128, 0xffff);
            self.write(Field::MplsLse1, 0, u32::MAX as u128);
            self.write(Field::MplsLse2, 0, u32::MAX as u128);
        } else {
            let l0 = self.read(Field::MplsLse);
            let l1 = self.read(Field::MplsLse1);
            self.write(Field::MplsLse2, l1, u32::MAX as u128);
            self.write(Field::MplsLse1, l0, u32::MAX as u128);
        }
        self.write(Field::MplsLse, lse as u128, u32::MAX as u128);
        self.write(Field::DlType, ethertype as u128, 0xffff);
        if n > 0 {
            self.sync_base();
        }
    }

    /// OFPAT_POP_MPLS: removes the outermost entry; `ethertype` is what
    /// follows. Popping the bottom entry uncovers the payload: when its type
    /// is the one the key holds, the L3/L4 fields go on describing it (so the
    /// pipeline can match them); otherwise they are unknown and read as zero.
    fn pop_mpls(&mut self, ethertype: u16) {
        let n = self.mpls_count();
        if n == 0 {
            return;
        }
        if n == MAX_MPLS_LABELS && self.read_bits(Field::MplsLse2, MPLS_BOS as u128) == 0 {
            return self.fail(XlateError::TooManyMplsLabels);
        }
        let pending =
            n == 1 && !matches!(self.base.dl_type(), eth_type::MPLS | eth_type::MPLS_MCAST);
        if let (Some(p), true) = (self.mpls_push, pending) {
            // The first label, which nothing has seen. Back to what it
            // covered, it never was; to another ethertype, it must be (the
            // datapath has no action that only sets the ethertype).
            // Edits of a payload that is not IP made while the label was on
            // reached nothing (the datapath finds L3 under a label by the IP
            // version nibble), so they must not reach the payload now.
            let ip = matches!(p.before[0].0 as u16, eth_type::IPV4 | eth_type::IPV6);
            let l3_edited = L3_FIELDS.iter().any(|&f| self.dirty.get(f) != 0);
            if p.before[0].0 == ethertype as u128 && (ip || !l3_edited) {
                self.mpls_push = None;
                for (&(v, w, d), f) in p.before.iter().zip(MPLS_STATE) {
                    self.flow.set(f, v);
                    self.written.set(f, w);
                    self.dirty.set(f, d);
                }
                return;
            }
        }
        // Pops go on at once, so L3 edits after them see the payload (OVS
        // commits pops before L3 set-fields for the same reason).
        self.commit();
        self.emit(DpAction::PopMpls { ethertype });
        let full = u32::MAX as u128;
        if n == 1 {
            let inner = self.read(Field::MplsInner) as u16;
            if inner != ethertype {
                for f in L3_FIELDS {
                    self.write(f, 0, f.full_mask());
                }
            }
            self.write(Field::MplsInner, 0, 0xffff);
            self.write(Field::MplsLse, 0, full);
        } else {
            let l1 = self.read(Field::MplsLse1);
            let l2 = self.read(Field::MplsLse2);
            self.write(Field::MplsLse, l1, full);
            self.write(Field::MplsLse1, l2, full);
        }
        self.write(Field::MplsLse2, 0, full);
        self.write(Field::DlType, ethertype as u128, 0xffff);
        self.sync_base();
    }

    fn set_mpls_ttl(&mut self, ttl: u8) {
        if self.is_mpls() {
            self.write(Field::MplsLse, ttl as u128, MPLS_TTL_MASK as u128);
        }
    }

    /// OFPAT_DEC_MPLS_TTL: like `dec_nw_ttl`, an expiring TTL sends the packet
    /// to the controller (if it asked for INVALID_TTL) and drops it.
    fn dec_mpls_ttl(&mut self) {
        if !self.is_mpls() {
            return;
        }
        let ttl = self.read_bits(Field::MplsLse, MPLS_TTL_MASK as u128);
        if ttl <= 1 {
            if self.opts.invalid_ttl_to_controller {
                self.controller(OFPR_INVALID_TTL, CML_NO_BUFFER);
            }
            self.stop = true;
            return;
        }
        self.write(Field::MplsLse, ttl - 1, MPLS_TTL_MASK as u128);
    }

    /// OFPAT_COPY_TTL_OUT: from the next-to-outermost header to the outermost
    /// (second MPLS entry, or the IP header under a single entry).
    fn copy_ttl_out(&mut self) {
        let n = self.mpls_count();
        let ttl_mask = MPLS_TTL_MASK as u128;
        let ttl = if n >= 2 {
            self.read_bits(Field::MplsLse1, ttl_mask)
        } else if n == 1 && self.mpls_inner_is_ip() {
            self.read(Field::NwTtl)
        } else {
            return;
        };
        self.write(Field::MplsLse, ttl, ttl_mask);
    }

    /// OFPAT_COPY_TTL_IN: from the outermost header to the next-to-outermost.
    fn copy_ttl_in(&mut self) {
        let n = self.mpls_count();
        if n == 0 {
            return;
        }
        let ttl_mask = MPLS_TTL_MASK as u128;
        let ttl = self.read_bits(Field::MplsLse, ttl_mask);
        if n >= 2 {
            self.write(Field::MplsLse1, ttl, ttl_mask);
        } else if self.mpls_inner_is_ip() {
            self.write(Field::NwTtl, ttl, 0xff);
        }
    }

    /// OFPAT_PUSH_PBB (802.1ah): the frame becomes the customer frame of a new
    /// backbone header whose addresses are copies of the customer ones (a
    /// set-field changes them), with no backbone tag and an I-TAG whose I-PCP
    /// is the VLAN PCP (OF1.3.5 §5.12) and I-SID 0.
    fn push_pbb(&mut self) {
        let dl = self.read(Field::DlType);
        if dl as u16 == eth_type::PBB {
            return self.fail(XlateError::NestedEncapsulation);
        }
        self.commit();
        let tci = self.read(Field::VlanTci) as u32;
        let pcp = if tci & VLAN_CFI as u32 != 0 {
            tci >> 13
        } else {
            0
        };
        self.emit(DpAction::PushPbb { itci: pcp << 29 });
        let (dst, src) = (self.read(Field::DlDst), self.read(Field::DlSrc));
        self.write(Field::PbbCDst, dst, Field::PbbCDst.full_mask());
        self.write(Field::PbbCSrc, src, Field::PbbCSrc.full_mask());
        self.write(Field::PbbCTci, tci as u128, 0xffff);
        self.write(Field::PbbCType, dl, 0xffff);
        self.write(Field::PbbIsid, 0, Field::PbbIsid.full_mask());
        self.write(Field::VlanTci, 0, 0xffff);
        self.write(Field::DlType, eth_type::PBB as u128, 0xffff);
        self.new_frame();
    }

    /// OFPAT_POP_PBB: the customer frame becomes the frame.
    fn pop_pbb(&mut self) {
        if self.read(Field::DlType) as u16 != eth_type::PBB {
            return;
        }
        self.commit();
        self.emit(DpAction::PopPbb);
        for (to, from) in [
            (Field::DlDst, Field::PbbCDst),
            (Field::DlSrc, Field::PbbCSrc),
            (Field::VlanTci, Field::PbbCTci),
            (Field::DlType, Field::PbbCType),
        ] {
            let v = self.read(from);
            self.write(to, v, to.full_mask());
            self.write(from, 0, from.full_mask());
        }
        self.write(Field::PbbIsid, 0, Field::PbbIsid.full_mask());
        self.new_frame();
    }

    /// After a PBB push or pop (emitted right away, after a commit): the
    /// packet is a new frame whose outer tag, if any, is the key's `vlan_tci`.
    fn new_frame(&mut self) {
        self.vl = Vlans {
            frame: self.vl.frame.wrapping_add(1),
            ..Vlans::default()
        };
        self.sync_base();
    }

    fn do_actions(&mut self, actions: &[Action]) {
        for a in actions {
            if self.stop || !self.charge(Budget::Steps) {
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
                Action::PushMpls(t) => self.push_mpls(*t),
                Action::PopMpls(t) => self.pop_mpls(*t),
                Action::SetMplsTtl(t) => self.set_mpls_ttl(*t),
                Action::DecMplsTtl => self.dec_mpls_ttl(),
                Action::CopyTtlIn => self.copy_ttl_in(),
                Action::CopyTtlOut => self.copy_ttl_out(),
                Action::PushPbb(_) => self.push_pbb(),
                Action::PopPbb => self.pop_pbb(),
                // No queues in this datapath; experimenter actions are refused
                // at FLOW_MOD.
                Action::SetQueue(_) | Action::Experimenter { .. } => {}
            }
        }
    }

    fn execute_action_set(&mut self) {
        let set = std::mem::take(&mut self.action_set);
        if set.copy_ttl_in {
            self.copy_ttl_in();
        }
        if set.pop_vlan {
            self.pop_vlan();
        }
        if let Some(t) = set.pop_mpls {
            self.pop_mpls(t);
        }
        if set.pop_pbb {
            self.pop_pbb();
        }
        if let Some(t) = set.push_mpls {
            self.push_mpls(t);
        }
        if set.push_pbb.is_some() {
            self.push_pbb();
        }
        if let Some(t) = set.push_vlan {
            self.push_vlan(t);
        }
        if set.copy_ttl_out {
            self.copy_ttl_out();
        }
        if set.dec_ttl {
            self.dec_ttl();
        }
        if set.dec_mpls_ttl && !self.stop {
            self.dec_mpls_ttl();
        }
        if self.stop {
            return;
        }
        if let Some(t) = set.set_ttl {
            self.set_ttl(t);
        }
        if let Some(t) = set.set_mpls_ttl {
            self.set_mpls_ttl(t);
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
            if self.stop || !self.charge(Budget::Resubmits) {
                return;
            }
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

    /// Whether a bucket may be used: its watched port or group is live
    /// (OF1.3.5 §5.6.1); select buckets of weight 0 never are (as OVS
    /// `bucket_is_alive()`).
    fn bucket_live(&mut self, g: &Group, b: &Bucket) -> bool {
        if g.group_type == GroupType::Select && b.weight == 0 {
            return false;
        }
        if b.watch_port == PortNo::ANY && b.watch_group == GroupId::ANY {
            return true;
        }
        if !self.charge(Budget::Liveness) {
            return false;
        }
        (b.watch_port != PortNo::ANY && self.port_live(b.watch_port))
            || (b.watch_group != GroupId::ANY && self.group_live(b.watch_group))
    }

    /// Whether a group has a live bucket. Memoised per translation, so a
    /// `watch_group` graph costs one evaluation per group, not one per path
    /// (OVS's `group_is_alive()` recursion is exponential in such a graph).
    /// A group being evaluated counts as dead if reached again (a cycle;
    /// GROUP_MOD refuses those anyway).
    fn group_live(&mut self, id: GroupId) -> bool {
        if let Some(&l) = self.live.get(&id) {
            return l;
        }
        let snap = self.snap;
        let Some(g) = snap.groups.get(&id) else {
            return false;
        };
        if !self.enter() {
            return false;
        }
        self.live.insert(id, false);
        let mut l = false;
        for b in &g.buckets {
            if self.bucket_live(g, b) {
                l = true;
                break;
            }
            if self.out.budget.is_some() {
                break;
            }
        }
        self.leave();
        self.live.insert(id, l);
        l
    }

    /// The hash a select group picks its bucket by. It covers every address
    /// the packet has — Ethernet addresses and VLAN id always, then IP
    /// addresses, protocol and L4 ports, or ARP addresses, or the top MPLS
    /// label — so that traffic differing only in MAC (or ARP) addresses is
    /// spread too (OVS hashes only L3/L4 and sends all L2-only traffic to one
    /// bucket). Every field hashed is un-wildcarded: the megaflow pins what
    /// the choice depended on.
    fn select_hash(&mut self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut mix = |v: u128| {
            for x in [v as u64, (v >> 64) as u64] {
                h = (h ^ x).wrapping_mul(0x0100_0000_01b3).rotate_left(23);
            }
        };
        mix(self.read(Field::DlSrc));
        mix(self.read(Field::DlDst));
        mix(self.read_bits(Field::VlanTci, 0x1fff));
        let t = self.read(Field::DlType) as u16;
        mix(t as u128);
        let l4 = match t {
            eth_type::IPV4 => {
                mix(self.read(Field::NwSrc));
                mix(self.read(Field::NwDst));
                true
            }
            eth_type::IPV6 => {
                mix(self.read(Field::Ipv6Src));
                mix(self.read(Field::Ipv6Dst));
                true
            }
            eth_type::ARP | eth_type::RARP => {
                mix(self.read(Field::NwSrc));
                mix(self.read(Field::NwDst));
                mix(self.read(Field::ArpSha));
                mix(self.read(Field::ArpTha));
                false
            }
            eth_type::MPLS | eth_type::MPLS_MCAST => {
                mix(self.read_bits(Field::MplsLse, 0xffff_f000));
                false
            }
            _ => false,
        };
        if l4 {
            let p = self.read(Field::NwProto) as u8;
            mix(p as u128);
            if matches!(p, ip_proto::TCP | ip_proto::UDP | ip_proto::SCTP) {
                mix(self.read(Field::TpSrc));
                mix(self.read(Field::TpDst));
            }
        }
        // Final avalanche (splitmix64) so that `% total` sees well-mixed bits.
        let mut z = h;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Runs a bucket on a copy of the packet (OF1.3.5 §5.6.1: each bucket
    /// works on its own clone), so its rewrites do not leak into later buckets
    /// or the actions after the group. A bucket that ends early (TTL expired)
    /// ends only itself, as in OVS `xlate_group_bucket()`; an exhausted budget
    /// ends everything.
    fn run_bucket(&mut self, actions: &[Action]) {
        if !self.charge(Budget::Buckets) {
            return;
        }
        let saved = (
            self.flow,
            self.written,
            self.rule.clone(),
            self.stop,
            self.vl,
            self.mpls_push,
        );
        self.do_actions(actions);
        self.flow = saved.0;
        self.written = saved.1;
        self.rule = saved.2;
        self.vl = saved.4;
        self.mpls_push = saved.5;
        if self.out.budget.is_none() {
            self.stop = saved.3;
        }
    }

    fn hit(&mut self, g: &Arc<Group>, bucket: Option<usize>) {
        self.out.groups.push(GroupHit {
            group: g.clone(),
            bucket,
        });
    }

    fn group(&mut self, id: GroupId) {
        let snap = self.snap;
        let Some(g) = snap.groups.get(&id) else {
            return;
        };
        // Entering a group costs one bucket unit, so the hit list stays bounded
        // even for groups without buckets.
        if !self.charge(Budget::Buckets) || !self.enter() {
            return;
        }
        match g.group_type {
            GroupType::All => {
                self.hit(g, None);
                for b in &g.buckets {
                    if self.stop {
                        break;
                    }
                    self.run_bucket(&b.actions);
                }
            }
            GroupType::Indirect => {
                if let Some(b) = g.buckets.first() {
                    self.hit(g, Some(0));
                    self.run_bucket(&b.actions);
                }
            }
            GroupType::FastFailover => {
                let mut chosen = None;
                for (i, b) in g.buckets.iter().enumerate() {
                    if self.bucket_live(g, b) {
                        chosen = Some(i);
                        break;
                    }
                }
                if let Some(i) = chosen {
                    self.hit(g, Some(i));
                    self.run_bucket(&g.buckets[i].actions);
                }
            }
            GroupType::Select => {
                if let Some(i) = self.select_bucket(g) {
                    self.hit(g, Some(i));
                    self.run_bucket(&g.buckets[i].actions);
                }
            }
        }
        self.leave();
    }

    /// Picks a live bucket of a select group by weight, from a hash of the
    /// packet's addresses (see [`Ctx::select_hash`]).
    fn select_bucket(&mut self, g: &Group) -> Option<usize> {
        let mut total: u64 = 0;
        let mut n_live = 0usize;
        // Two passes over the buckets instead of a list of live ones: nothing
        // to allocate, and liveness is memoised so the second pass is cheap.
        for b in &g.buckets {
            if self.bucket_live(g, b) {
                total += b.weight as u64;
                n_live += 1;
            }
        }
        if n_live == 0 || total == 0 {
            return None;
        }
        let mut x = self.select_hash() % total;
        for (i, b) in g.buckets.iter().enumerate() {
            if !self.bucket_live(g, b) {
                continue;
            }
            let w = b.weight as u64;
            if x < w {
                return Some(i);
            }
            x -= w;
        }
        None
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

    /// Outputs to `p` with the tag NORMAL wants there (none on access ports
    /// and for VLAN 0), by the same VLAN actions a pipeline would use, on a
    /// copy of the packet state.
    fn normal_output(&mut self, p: PortNo, access: bool, vlan: u16, pcp: u16) {
        let want: u16 = if access || vlan == 0 {
            0
        } else {
            pcp | VLAN_CFI | vlan
        };
        let saved = (self.flow, self.written, self.vl, self.mpls_push);
        let cur = self.flow.vlan_tci();
        if cur != want {
            if want & VLAN_CFI == 0 {
                self.pop_vlan();
            } else if cur & VLAN_CFI == 0 {
                self.push_tag(crate::datapath::extract::ETH_TYPE_VLAN, want & !VLAN_CFI);
            } else {
                self.set_vlan_bits(want as u128, TCI_BITS);
            }
        }
        self.output_raw(p);
        self.flow = saved.0;
        self.written = saved.1;
        self.vl = saved.2;
        self.mpls_push = saved.3;
    }

    fn finish(mut self) -> XlateOutput {
        drop(self.ml_guard.take());
        if let Some(e) = self.out.error {
            self.out.actions.clear();
            self.out.slow = 0;
            crate::util::coverage::inc(match e {
                XlateError::TooManyMplsLabels => {
                    &crate::util::coverage::c::xlate_mpls_too_many_labels
                }
                XlateError::NestedEncapsulation => &crate::util::coverage::c::xlate_nested_encap,
                XlateError::TooManyVlanHeaders => {
                    &crate::util::coverage::c::xlate_too_many_vlan_headers
                }
                XlateError::Unrestorable => &crate::util::coverage::c::xlate_unrestorable,
            });
        }
        if let Some(b) = self.out.budget {
            // Half a translation is not a translation: drop the packet. The
            // mask so far covers every bit that led here, so a drop megaflow
            // under it is correct (and stops the next packet costing as much).
            self.out.actions.clear();
            self.out.slow = 0;
            crate::util::coverage::inc(b.coverage());
            log_budget(b, &self.flow, self.opts.now_ms);
        }
        self.out.final_flow = self.flow;
        self.out
    }

    fn start(&mut self) -> bool {
        // A frame that came out of a tunnel: its megaflow matches the tunnel
        // key whatever the rules look at (OVS's `tnl_wc_init()`), so that the
        // fast path tells VNIs and peers apart on receive and a dump shows
        // which tunnel traffic a flow carries.
        if self.flow.get(Field::TunSrc) != 0 || self.flow.get(Field::TunDst) != 0 {
            for f in [Field::TunnelId, Field::TunSrc, Field::TunDst] {
                self.read(f);
            }
        }
        // OpenFlow 1.0's NO_RECV, which OVS keeps: drop everything from the port.
        let ip = self.in_port();
        self.snap
            .ports
            .get(&ip)
            .is_none_or(|i| i.config & PC_NO_RECV == 0)
    }
}

/// Logs an exhausted budget, at most once per [`BUDGET_LOG_INTERVAL_MS`]
/// (a peer that triggers it on every packet must not flood the log).
fn log_budget(b: Budget, flow: &FlowKey, now_ms: u64) {
    let last = BUDGET_LOG_LAST_MS.load(Ordering::Relaxed);
    // 0 = never logged (the clock may start at 0).
    if (last != 0 && now_ms < last.saturating_add(BUDGET_LOG_INTERVAL_MS))
        || BUDGET_LOG_LAST_MS
            .compare_exchange(last, now_ms.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        BUDGET_LOG_SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let suppressed = BUDGET_LOG_SUPPRESSED.swap(0, Ordering::Relaxed);
    tracing::warn!(
        budget = b.name(),
        limit = b.limit(),
        in_port = flow.in_port(),
        dl_type = format_args!("{:#06x}", flow.dl_type()),
        suppressed,
        "translation exceeded its {} budget ({}): packet dropped",
        b.name(),
        b.limit()
    );
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
