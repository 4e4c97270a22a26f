//! Coverage counters: how often notable events happened (like OVS's
//! `coverage/show`). Each counter is a static atomic, so bumping one on a
//! rare-but-interesting path costs one relaxed add and no registration.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

macro_rules! counters {
    ($($name:ident: $doc:literal),* $(,)?) => {
        /// The counters, one static atomic each (bumped with [`inc`]).
        #[allow(non_upper_case_globals)]
        pub mod c {
            use super::*;
            $(
                #[doc = $doc]
                pub static $name: AtomicU64 = AtomicU64::new(0);
            )*
        }

        // The same list as a counter set, so that `/stats` serialises it and
        // `/metrics` walks it (name and help) like any other set.
        crate::counter_set! {
            /// The coverage counters as a counter set (the statics in [`c`]
            /// are what code bumps; this type only carries the snapshot).
            pub struct CoverageSet / Coverage {
                $( #[doc = $doc] $name, )*
            }
        }

        /// Reads every counter.
        pub fn snapshot() -> Coverage {
            Coverage { $( $name: c::$name.load(Relaxed), )* }
        }
    };
}

counters! {
    config_reload: "Configuration reloads attempted.",
    config_reload_refused: "Reloads refused because the new file was invalid.",
    unixctl_received: "Control-socket requests received.",
    unixctl_bad_request: "Control-socket requests that were not valid JSON-RPC.",
    actor_restarted: "Actors restarted by the supervisor after dying.",
    actor_died: "Actors found dead by the supervisor.",
    ofconn_accepted: "OpenFlow connections accepted on listeners.",
    ofconn_connected: "Active controller connections established.",
    ofconn_closed: "OpenFlow connections closed.",
    ofp_decode_error: "OpenFlow messages from peers that failed to decode.",
    ofp_error_sent: "OFPT_ERROR messages sent.",
    flow_mod: "FLOW_MOD messages applied.",
    packet_in: "PACKET_IN messages queued to controllers.",
    packet_in_dropped: "PACKET_INs dropped because a controller's queue was full.",
    packet_out: "PACKET_OUT messages executed.",
    packet_out_dropped: "PACKET_OUTs dropped because the datapath had no room for them in time.",
    barrier_unrevalidated: "BARRIER_REPLYs sent without the revalidation round they waited for.",
    upcall_handled: "Datapath misses translated by upcall handlers.",
    upcall_flow_limit: "Upcalls executed without installing a flow (over flow_limit).",
    upcall_duplicate: "Upcalls whose megaflow was already installed.",
    dp_flow_put: "Datapath flows installed.",
    dp_flow_del: "Datapath flows deleted.",
    revalidate_round: "Revalidator rounds completed.",
    tables_changed_idle: "Table changes that needed no revalidation round (no datapath flow existed or was being installed).",
    port_added: "Ports added.",
    port_deleted: "Ports deleted.",
    port_open_failed: "Ports whose device could not be opened.",
    afxdp_tx_fallback: "Frames an afxdp port sent by its AF_PACKET socket (offload state, or too big for AF_XDP).",
    link_event: "rtnetlink link events received.",
    xlate_too_deep: "Translations dropped: groups/TABLE resubmits nested deeper than MAX_DEPTH.",
    xlate_too_many_resubmits: "Translations dropped: more table lookups than MAX_RESUBMITS.",
    xlate_too_many_buckets: "Translations dropped: more group buckets executed than MAX_BUCKETS.",
    xlate_too_many_steps: "Translations dropped: more OpenFlow actions interpreted than MAX_STEPS.",
    xlate_too_many_actions: "Translations dropped: more datapath actions than MAX_DP_ACTIONS.",
    xlate_too_many_outputs: "Translations dropped: more outputs than MAX_OUTPUTS.",
    xlate_too_many_liveness_checks: "Translations dropped: more bucket liveness checks than MAX_LIVENESS_CHECKS.",
    xlate_mpls_too_many_labels: "Packets dropped: an MPLS push/pop needed more than 3 label entries.",
    xlate_nested_encap: "Packets dropped: push_pbb or push_mpls onto a PBB frame.",
    xlate_too_many_vlan_headers: "Packets dropped: push_vlan onto MAX_VLAN_PUSHED tags pushed by the same translation.",
    xlate_unrestorable: "Packets dropped: actions after a group bucket needed VLAN or PBB headers back that the bucket removed and the key cannot rebuild.",
    group_mod_loop: "GROUP_MODs refused because they would close a loop of group references.",
    group_mod_too_deep: "GROUP_MODs refused because a chain of group references would exceed MAX_GROUP_CHAIN.",
    config_reload_failed: "Reloads applied only in part (some change failed).",
    unixctl_evicted: "Idle control-socket clients closed to admit a new one at the client cap.",
    unixctl_refused: "Control-socket clients refused because every admitted client was busy.",
    unixctl_timeout: "Control-socket clients closed for not sending a whole request in time.",
    http_evicted: "Stats-endpoint connections closed to admit a new one at the connection cap.",
    fd_exhausted: "Accepts on an operator socket that found no free file descriptor.",
    fd_reserve_lent: "Operator connections accepted on a reserved file descriptor.",
    fd_reserve_raced: "Reserved descriptors another thread took between their release and our accept.",
}

/// `(name, value)` of every counter, in declaration order.
pub fn all() -> Vec<(&'static str, u64)> {
    use crate::util::counters::CounterSet;
    let mut v = Vec::with_capacity(Coverage::FIELDS.len());
    snapshot().for_each(&mut |name, _, value| v.push((name, value)));
    v
}

/// Bumps a counter.
#[inline]
pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Relaxed);
}

/// Adds `n` to a counter (one add for a whole batch).
#[inline]
pub fn add(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Relaxed);
}
