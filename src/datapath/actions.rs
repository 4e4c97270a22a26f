//! Datapath actions: what the fast path does to a packet that hit a megaflow.
//!
//! These are the output of translation (`ofproto::xlate`) and the input of
//! execution (`datapath::execute`). They are deliberately low-level: every
//! OpenFlow action, group and reserved port has been resolved to concrete ports
//! and header rewrites, so the fast path never consults OpenFlow state.

use super::flow::Field;
use crate::types::PortNo;

/// Why a packet goes up to the slow path instead of being forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserspaceReason {
    /// An OpenFlow CONTROLLER action or a table miss that sends to the controller.
    Controller {
        /// OFPR_* reason for the PACKET_IN (0 = no match, 1 = action, 2 = invalid TTL).
        reason: u8,
        /// Bytes of the packet to include (OFPCML_NO_BUFFER = 0xffff: all).
        max_len: u16,
        /// Table the rule that sent it is in.
        table_id: u8,
        /// Cookie of that rule.
        cookie: u64,
        /// The controller meter to pass first (OFPM_CONTROLLER, when one is
        /// configured): only this copy is metered, as OVS's
        /// `clone(meter,userspace)`; the actions after it run regardless.
        meter: Option<u32>,
    },
}

/// One datapath action.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum DpAction {
    /// Transmit on a port (datapath and OpenFlow numbers are the same).
    Output(PortNo),
    /// Rewrite a header field under a mask: `field = (field & !mask) | (value & mask)`.
    /// Checksums that cover the field are updated.
    SetField {
        /// Which field.
        field: Field,
        /// New bits.
        value: u128,
        /// Which bits to change.
        mask: u128,
    },
    /// Push an 802.1Q/802.1ad tag with this TPID and TCI.
    PushVlan {
        /// 0x8100 or 0x88a8.
        tpid: u16,
        /// The TCI to write (PCP | DEI | VID; the key's CFI "present" bit is not on the wire).
        tci: u16,
    },
    /// Remove the outermost VLAN tag.
    PopVlan,
    /// Push an MPLS label stack entry after the L2 header (and its tags) and
    /// set the ethertype before it to `ethertype` (0x8847 or 0x8848).
    PushMpls {
        /// The new ethertype.
        ethertype: u16,
        /// The entry: label(20) | tc(3) | bos(1) | ttl(8).
        lse: u32,
    },
    /// Remove the outermost MPLS label stack entry and set the ethertype before
    /// it to `ethertype`.
    PopMpls {
        /// The ethertype of what follows.
        ethertype: u16,
    },
    /// Encapsulate the frame in a PBB (802.1ah) header: the current addresses
    /// become the customer ones (and are copied as backbone ones), followed by
    /// an I-TAG with this TCI (OF1.3.5 §5.12: I-PCP from the VLAN PCP, I-SID
    /// from an outer PBB header, if any).
    PushPbb {
        /// I-PCP(3) | I-DEI(1) | UCA(1) | res(3) | I-SID(24).
        itci: u32,
    },
    /// Remove the backbone addresses, tags and I-TAG of a PBB frame, leaving
    /// the customer frame.
    PopPbb,
    /// Send the packet to the slow path (userspace) with this reason.
    Userspace(UserspaceReason),
    /// Pass through a meter; the packet may be dropped or remarked.
    Meter(u32),
}

/// A datapath action list. Empty means drop.
pub type DpActions = Vec<DpAction>;
