//! The translation view of one bridge: everything a translation reads besides
//! the packet — the latest published tables, the MAC learning table, the
//! fail-open switch — and the sequence numbers that say when a translation
//! made earlier may no longer hold.
//!
//! Ownership and threads: the Bridge actor is the only writer of the snapshot
//! (it publishes after each batch of changes) and of the fail-open flag; upcall
//! handlers, revalidators and `ofproto/trace` read the view on their own
//! threads without locking (the MAC table takes its own lock once per
//! translation). This is what OVS keeps in `ofproto-dpif-xlate.c`'s
//! `xlate_cfg` (published with RCU) plus the `mac_learning` and
//! `ofproto->backer->tables_version` sequences.
//!
//! Sequences: [`XlateView::xlate_seq`] is a sum of three counters that only
//! grow (tables version, MAC learning changes, other changes such as
//! fail-open), so it changes whenever any of them does. A flow's recorded
//! sequence must never be newer than what its translation saw, or a change
//! that happened meanwhile goes unnoticed: [`XlateView::stamp`] is therefore
//! taken *before* translating, and [`SeqStamp::after`] combines it with what
//! the translation itself observed (`XlateOutput::version`, `ml_seq`).

use super::mac_learning::MacLearning;
use super::xlate::{translate, translate_actions, XlateOptions, XlateOutput};
use super::TablesSnapshot;
use crate::datapath::flow::FlowKey;
use crate::openflow::action::Action;
use crate::types::PortNo;
use arc_swap::ArcSwap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The action list fail-open forwards with (OVS's `fail-mode=standalone`
/// after the controllers are lost: `connmgr.c:fail_open_*` installs NORMAL).
const FAIL_OPEN_ACTIONS: [Action; 1] = [Action::Output {
    port: PortNo::NORMAL,
    max_len: 0,
}];

/// What translations of one bridge read.
pub struct XlateView {
    /// Bridge name (for traces and logs).
    pub name: String,
    /// Latest published tables.
    pub snapshot: ArcSwap<TablesSnapshot>,
    /// MAC learning (NORMAL); internally locked, slow path only.
    pub mac: MacLearning,
    /// Fail-open: forward with NORMAL whatever the tables say.
    fail_open: AtomicBool,
    /// Bumped when something outside the tables changes translations.
    extra_seq: AtomicU64,
}

/// The sequences read before a translation (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeqStamp {
    version: u64,
    mac: u64,
    extra: u64,
}

impl SeqStamp {
    /// The sequence to record for a flow translated after this stamp was
    /// taken: exact for the tables (the version translated against), the MAC
    /// sequence NORMAL observed if it looked (else the one read before), and
    /// the other changes as read before. Never newer than what the
    /// translation saw.
    pub fn after(&self, out: &XlateOutput) -> u64 {
        let version = if out.version == 0 {
            self.version
        } else {
            out.version
        };
        version + out.ml_seq.unwrap_or(self.mac) + self.extra
    }

    /// The combined sequence at the time of the stamp.
    pub fn value(&self) -> u64 {
        self.version + self.mac + self.extra
    }
}

impl XlateView {
    /// A view of `snapshot` with an empty MAC table of these limits.
    pub fn new(
        name: &str,
        snapshot: Arc<TablesSnapshot>,
        mac_entries: usize,
        mac_aging_ms: u64,
    ) -> XlateView {
        XlateView {
            name: name.to_string(),
            snapshot: ArcSwap::new(snapshot),
            mac: MacLearning::new(mac_entries, mac_aging_ms),
            fail_open: AtomicBool::new(false),
            extra_seq: AtomicU64::new(0),
        }
    }

    /// Whether fail-open is in force.
    pub fn fail_open(&self) -> bool {
        self.fail_open.load(Ordering::Acquire)
    }

    /// Turns fail-open on or off; every earlier translation becomes stale.
    pub fn set_fail_open(&self, on: bool) {
        self.fail_open.store(on, Ordering::Release);
        // Release: a reader that sees the new sequence (Acquire in `stamp`)
        // also sees the new flag, so it can never record the new sequence
        // with a translation made under the old flag.
        self.extra_seq.fetch_add(1, Ordering::Release);
    }

    /// Changes whenever a translation could give a different answer.
    pub fn xlate_seq(&self) -> u64 {
        self.stamp().value()
    }

    /// Reads the sequences; take it before translating (module docs).
    pub fn stamp(&self) -> SeqStamp {
        let extra = self.extra_seq.load(Ordering::Acquire);
        SeqStamp {
            version: self.snapshot.load().version,
            mac: self.mac.seq(),
            extra,
        }
    }

    /// Translates a packet key the way the current configuration says.
    pub fn translate(&self, key: &FlowKey, opts: &XlateOptions) -> XlateOutput {
        let snap = self.snapshot.load();
        if self.fail_open() {
            translate_actions(&snap, &self.mac, key, &FAIL_OPEN_ACTIONS, opts)
        } else {
            translate(&snap, &self.mac, key, opts)
        }
    }

    /// Translates and returns the sequence to record with the result.
    pub fn translate_stamped(&self, key: &FlowKey, opts: &XlateOptions) -> (XlateOutput, u64) {
        let stamp = self.stamp();
        let out = self.translate(key, opts);
        let seq = stamp.after(&out);
        (out, seq)
    }

    /// Translates an explicit action list (PACKET_OUT) against the current tables.
    pub fn translate_actions(
        &self,
        key: &FlowKey,
        actions: &[Action],
        opts: &XlateOptions,
    ) -> XlateOutput {
        let snap = self.snapshot.load();
        translate_actions(&snap, &self.mac, key, actions, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::actions::DpAction;
    use crate::datapath::flow::Field;
    use crate::ofproto::{Ofproto, PortInfo};
    use crate::types::{DatapathId, MacAddr};

    fn view() -> XlateView {
        let mut of = Ofproto::new(DatapathId(1), "test");
        for n in 1..=3 {
            of.add_port(PortInfo::new(
                PortNo(n),
                &format!("p{n}"),
                MacAddr([2, 0, 0, 0, 0, n as u8]),
            ));
        }
        of.add_default_normal_flow(0).unwrap();
        XlateView::new("br0", of.publish(), 100, 300_000)
    }

    fn key(in_port: u32, src: u8, dst: u8) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(Field::InPort, in_port as u128);
        k.set(Field::DlSrc, MacAddr([2, 0, 0, 0, 1, src]).to_u64() as u128);
        k.set(Field::DlDst, MacAddr([2, 0, 0, 0, 1, dst]).to_u64() as u128);
        k.set(Field::DlType, 0x0800);
        k
    }

    const OPTS: XlateOptions = XlateOptions {
        may_learn: false,
        now_ms: 1,
        account: false,
        invalid_ttl_to_controller: false,
    };

    /// The race the upcall path had: it translated, then read the sequence,
    /// so a MAC learned by another thread in between made a flow translated
    /// against the old table look fresh. Stamped before translating, the
    /// change is always noticed.
    #[test]
    fn a_mac_learned_during_translation_leaves_the_flow_stale() {
        let v = view();
        // Destination unknown: NORMAL floods.
        let (out, recorded) = v.translate_stamped(&key(1, 0xa, 0xb), &OPTS);
        assert!(out.ml_seq.is_some(), "NORMAL consulted the MAC table");
        let flood = out
            .actions
            .iter()
            .filter(|a| matches!(a, DpAction::Output(_)))
            .count();
        assert_eq!(flood, 2, "{:?}", out.actions);
        // Another handler learns the destination right after the
        // translation, before any sequence was read in the old order.
        v.mac.learn(0, MacAddr([2, 0, 0, 0, 1, 0xb]), PortNo(3), 1);
        let read_after = v.xlate_seq();
        assert_ne!(
            recorded, read_after,
            "a flow recorded with the sequence read after the change would never be revalidated"
        );
        // The revalidator sees the difference, translates again and gets the
        // learned port.
        let again = v.translate(&key(1, 0xa, 0xb), &OPTS);
        assert_eq!(again.actions, vec![DpAction::Output(PortNo(3))]);
    }

    #[test]
    fn fail_open_changes_the_sequence_and_the_answer() {
        let mut of = Ofproto::new(DatapathId(1), "test");
        of.add_port(PortInfo::new(PortNo(1), "p1", MacAddr([2, 0, 0, 0, 0, 1])));
        of.add_port(PortInfo::new(PortNo(2), "p2", MacAddr([2, 0, 0, 0, 0, 2])));
        let v = XlateView::new("br0", of.publish(), 100, 300_000);
        let before = v.stamp();
        assert!(v.translate(&key(1, 1, 2), &OPTS).actions.is_empty());
        v.set_fail_open(true);
        assert!(v.xlate_seq() > before.value());
        assert_eq!(
            v.translate(&key(1, 1, 2), &OPTS).actions,
            vec![DpAction::Output(PortNo(2))]
        );
    }
}
