//! Rendering of bridge queries for operators: the text `ovs-appctl` prints
//! (`bridge/show`, `dpctl/show`, `dpctl/dump-flows`, `fdb/show`,
//! `dpif-netdev/pmd-stats-show`, `ofctl/show-connections`) and the datapath
//! part of `/stats`. The bridge answers with typed data
//! (`messages::bridge::BridgeAnswer`); nothing here touches actor state.
//!
//! Every number printed is a counter or computed from counters; a line whose
//! quantity we do not measure (OVS's "smc hits", "packet recirculations") is
//! left out rather than printed as a constant.

use crate::datapath::odp_format::format_flow;
use crate::datapath::pmd::PmdStatsSnapshot;
use crate::messages::bridge::{BridgeAnswer, DpReport, PortState, PortsReport};
use crate::ofproto::mac_learning::MacEntryInfo;
use crate::types::PortNo;
use std::fmt::Write;

/// The text of a bridge's answer.
pub fn answer(a: &BridgeAnswer) -> String {
    match a {
        BridgeAnswer::DpFlows { flows, now_ms } => {
            let mut s = String::new();
            for f in flows {
                s.push_str(&format_flow(f, *now_ms));
                s.push('\n');
            }
            s
        }
        BridgeAnswer::DpFlowsDeleted(n) => format!("deleted {n} flows\n"),
        BridgeAnswer::Trace(t) => t.clone(),
        BridgeAnswer::Fdb(entries) => fdb(entries),
        BridgeAnswer::FdbFlushed => "table successfully flushed\n".into(),
        BridgeAnswer::Connections(v) => {
            serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("(report: {e})"))
        }
        BridgeAnswer::Ports(p) => ports(p),
        BridgeAnswer::PmdStats(r) => pmd_stats(r),
        BridgeAnswer::DpShow { ports: p, n_flows } => {
            format!("{}:\n  flows: {n_flows}\n{}", p.bridge, ports(p))
        }
    }
}

/// `fdb/show`, as OVS prints it.
pub fn fdb(entries: &[MacEntryInfo]) -> String {
    let mut s = String::from(" port  VLAN  MAC                Age\n");
    for e in entries {
        let port = if e.port == PortNo::LOCAL {
            "LOCAL".to_string()
        } else {
            e.port.0.to_string()
        };
        let _ = writeln!(
            s,
            "{:>5}  {:>4}  {}  {:>3}",
            port, e.vlan, e.mac, e.age_secs
        );
    }
    s
}

/// `bridge/show`: the configured ports and their states.
pub fn ports(r: &PortsReport) -> String {
    let mut s = format!("{}: dpid:{}\n", r.bridge, r.dpid);
    for p in &r.ports {
        let state = match p.state {
            PortState::Live => "LIVE",
            PortState::LinkDown => "LINK_DOWN",
            PortState::NotAttached => "not attached",
        };
        let _ = writeln!(
            s,
            "  port {} ({}): type={:?} {state}",
            p.port_no, p.name, p.kind
        );
    }
    s
}

/// `a / b` with two decimals, 0 when nothing was counted.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn pmd_thread(s: &mut String, i: usize, t: &PmdStatsSnapshot) {
    let hits = t.emc_hits + t.megaflow_hits;
    let _ = writeln!(s, "pmd thread numa_id 0 core_id {i}:");
    let _ = writeln!(s, "  packets received: {}", t.rx_packets);
    let _ = writeln!(s, "  emc hits: {}", t.emc_hits);
    let _ = writeln!(s, "  megaflow hits: {}", t.megaflow_hits);
    let _ = writeln!(
        s,
        "  avg. subtable lookups per megaflow hit: {:.2}",
        ratio(t.masked_lookups, t.megaflow_hits)
    );
    let _ = writeln!(
        s,
        "  miss with success upcall: {}",
        t.misses.saturating_sub(t.miss_upcalls_lost)
    );
    let _ = writeln!(s, "  miss with failed upcall: {}", t.miss_upcalls_lost);
    let _ = writeln!(
        s,
        "  avg. packets per output batch: {:.2}",
        ratio(t.tx_packets, t.tx_batches)
    );
    let _ = writeln!(s, "  invalid packets: {}", t.rx_invalid);
    let _ = writeln!(s, "  action upcalls: {}", t.action_upcalls);
    let _ = writeln!(s, "  upcalls lost (queue full): {}", t.lost);
    let _ = writeln!(s, "  meter drops: {}", t.meter_drops);
    let _ = writeln!(s, "  slow-path packets executed: {}", t.exec_packets);
    let _ = writeln!(s, "  tx packets: {}", t.tx_packets);
    let _ = writeln!(s, "  tx drops: {}", t.tx_drops);
    let _ = writeln!(s, "  hit ratio: {:.1}%", 100.0 * ratio(hits, t.rx_packets));
}

/// `dpif-netdev/pmd-stats-show`: per poll thread, then what the bridge did
/// with packet-outs and barriers.
pub fn pmd_stats(r: &DpReport) -> String {
    let mut s = format!("bridge {}:\n", r.bridge);
    for (i, t) in r.stats.threads.iter().enumerate() {
        pmd_thread(&mut s, i, t);
    }
    let c = &r.counters;
    let _ = writeln!(
        s,
        "  datapath ops dropped (queue full): {}",
        r.stats.ops_dropped
    );
    let _ = writeln!(
        s,
        "  meter resyncs: {} (threads waiting for one: {})",
        r.stats.meter_syncs, r.stats.meters_stale_threads
    );
    let _ = writeln!(
        s,
        "  packet-outs: {} sent, {} waited for the datapath, {} dropped",
        c.packet_outs, c.packet_out_waits, c.packet_out_drops
    );
    let _ = writeln!(
        s,
        "  barriers: {} waited for revalidation; answered without it: {} no leader, {} leader busy, {} leader stopped, {} timed out",
        c.barrier_waits, c.barrier_no_leader, c.barrier_leader_busy, c.barrier_leader_lost, c.barrier_timeout
    );
    let _ = writeln!(
        s,
        "  upcall batches dropped (handler queue full): {}",
        r.upcall_route_drops
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::pmd::{DpStats, PortCountersSnapshot};
    use crate::messages::bridge::{BridgeCountersSnapshot, PortCounterLine, PortLine};
    use crate::types::{DatapathId, PortType};

    fn report() -> DpReport {
        let t = PmdStatsSnapshot {
            rx_packets: 10,
            emc_hits: 4,
            megaflow_hits: 4,
            masked_lookups: 6,
            misses: 2,
            miss_upcalls_lost: 1,
            lost: 1,
            tx_packets: 9,
            tx_batches: 3,
            ..Default::default()
        };
        DpReport {
            bridge: "br0".into(),
            n_flows: 3,
            stats: DpStats {
                threads: vec![t],
                total: t,
                ..Default::default()
            },
            counters: BridgeCountersSnapshot {
                packet_out_drops: 5,
                barrier_timeout: 1,
                ..Default::default()
            },
            state: Default::default(),
            upcall_route_drops: 0,
            ports: vec![PortCounterLine {
                port_no: PortNo(1),
                name: "p1".into(),
                counters: PortCountersSnapshot {
                    rx_dropped: 1,
                    rx_overruns: 2,
                    ..Default::default()
                },
            }],
        }
    }

    #[test]
    fn pmd_stats_print_only_what_is_measured() {
        let s = pmd_stats(&report());
        assert!(
            s.contains("avg. subtable lookups per megaflow hit: 1.50"),
            "{s}"
        );
        assert!(s.contains("avg. packets per output batch: 3.00"), "{s}");
        assert!(s.contains("miss with success upcall: 1\n"), "{s}");
        assert!(s.contains("miss with failed upcall: 1\n"), "{s}");
        assert!(s.contains("hit ratio: 80.0%"), "{s}");
        assert!(s.contains("5 dropped"), "{s}");
        assert!(s.contains("1 timed out"), "{s}");
        for never in ["smc hits", "recirculations", "datapath passes"] {
            assert!(!s.contains(never), "{never} is not measured: {s}");
        }
        // Nothing measured yet: ratios are 0, not 1.
        let mut empty = report();
        empty.stats.threads = vec![PmdStatsSnapshot::default()];
        let s = pmd_stats(&empty);
        assert!(s.contains("per megaflow hit: 0.00"), "{s}");
    }

    #[test]
    fn stats_json_names_every_counter() {
        let v = report().to_json();
        assert_eq!(v["total"]["masked_lookups"], 6);
        assert_eq!(v["pmd_threads"][0]["id"], "0");
        assert_eq!(v["bridge"]["packet_out_drops"], 5);
        assert_eq!(v["ports"][0]["rx_dropped"], 3);
        assert_eq!(v["ports"][0]["rx_over_err"], 2);
        assert_eq!(v["ports"][0]["name"], "p1");
    }

    #[test]
    fn ports_and_fdb_read_like_ovs() {
        let r = PortsReport {
            bridge: "br0".into(),
            dpid: DatapathId(1),
            ports: vec![PortLine {
                port_no: PortNo::LOCAL,
                name: "br0".into(),
                kind: PortType::Internal,
                state: PortState::LinkDown,
            }],
        };
        assert_eq!(
            ports(&r),
            "br0: dpid:0000000000000001\n  port LOCAL (br0): type=Internal LINK_DOWN\n"
        );
        let f = fdb(&[MacEntryInfo {
            port: PortNo(2),
            vlan: 0,
            mac: crate::types::MacAddr([2, 0, 0, 0, 0, 1]),
            age_secs: 5,
        }]);
        assert_eq!(
            f,
            " port  VLAN  MAC                Age\n    2     0  02:00:00:00:00:01    5\n"
        );
    }
}
