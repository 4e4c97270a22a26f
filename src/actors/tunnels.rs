//! The process's tunnel ports, as the control plane sees them: which bridge
//! and OpenFlow port each is, its validated options and its counters.
//!
//! Ownership: a Port actor of a `vxlan`/`geneve` port inserts its entry when
//! its device opens and removes it when the device closes or the actor stops;
//! the poll threads write only the counters (relaxed atomics inside
//! [`TunnelCounters`]); the HTTP thread (`/stats`, `/metrics`) and the
//! control commands (`tnl/ports/show`) read snapshots. The table's lock is
//! taken on those slow paths only, never per packet.

use crate::netdev::tunnel::{FlowOr, TunnelConfig, TunnelCounters};
use crate::types::PortNo;
use crate::util::metrics::{MetricSink, StatsSource};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

/// One open tunnel port.
#[derive(Clone, Debug)]
pub struct TunnelEntry {
    /// OpenFlow port number on its bridge.
    pub port_no: PortNo,
    /// Its options.
    pub cfg: TunnelConfig,
    /// Its counters, shared with the device.
    pub counters: Arc<TunnelCounters>,
}

/// (bridge, port name) → entry.
pub type TunnelTable = Mutex<BTreeMap<(String, String), TunnelEntry>>;

/// The process-wide table.
pub fn table() -> &'static TunnelTable {
    static T: OnceLock<TunnelTable> = OnceLock::new();
    T.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// The counters of one port by name, in a fixed order: (name, help, value).
/// Drops carry a `reason` label in `/metrics`; encap/decap are their own families.
pub fn counter_rows(c: &TunnelCounters) -> [(&'static str, u64); 11] {
    let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    [
        ("encap_packets", r(&c.encap_packets)),
        ("decap_packets", r(&c.decap_packets)),
        ("gso_segments", r(&c.gso_segments)),
        ("malformed", r(&c.drop_malformed)),
        ("unknown_vni", r(&c.drop_unknown_vni)),
        ("unknown_remote", r(&c.drop_unknown_remote)),
        ("no_remote", r(&c.drop_no_remote)),
        ("no_route", r(&c.drop_no_route)),
        ("no_neighbour", r(&c.drop_no_neighbour)),
        ("mtu", r(&c.drop_mtu)),
        ("tx_error", r(&c.drop_tx_error)),
    ]
}

fn flow_or<T: std::fmt::Display>(v: &FlowOr<T>) -> String {
    match v {
        FlowOr::Fixed(x) => x.to_string(),
        FlowOr::Flow => "flow".to_string(),
    }
}

/// The options as `key=value` pairs in OVS's spelling (`ovs-vsctl show`'s
/// `options: {...}`), defaults included so the operator sees what applies.
pub fn options_text(cfg: &TunnelConfig) -> String {
    let mut s = format!(
        "remote_ip={} key={} dst_port={}",
        flow_or(&cfg.remote_ip),
        flow_or(&cfg.key),
        cfg.dst_port
    );
    if let Some(l) = &cfg.local_ip {
        s.push_str(&format!(" local_ip={}", flow_or(l)));
    }
    s.push_str(&format!(
        " csum={} df_default={} ttl={} tos={:#x}",
        cfg.csum, cfg.df_default, cfg.ttl, cfg.tos
    ));
    s
}

/// `tnl/ports/show`: one block per tunnel port (bridge, port, type, options,
/// counters), sorted by bridge and port.
pub fn render_ports() -> String {
    let t = table().lock();
    if t.is_empty() {
        return "no tunnel ports\n".to_string();
    }
    let mut out = String::new();
    for ((bridge, name), e) in t.iter() {
        out.push_str(&format!(
            "{bridge} {name} (ofport {}): {} {}\n",
            e.port_no.0,
            e.cfg.kind.name(),
            options_text(&e.cfg)
        ));
        let rows = counter_rows(&e.counters);
        out.push_str("  ");
        out.push_str(
            &rows
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        out.push('\n');
    }
    out
}

/// The `/stats` and `/metrics` source for every tunnel port.
pub struct TunnelStats;

impl StatsSource for TunnelStats {
    fn json(&self) -> Value {
        let t = table().lock();
        let ports: Vec<Value> = t
            .iter()
            .map(|((bridge, name), e)| {
                let mut counters = serde_json::Map::new();
                for (k, v) in counter_rows(&e.counters) {
                    counters.insert(k.to_string(), json!(v));
                }
                json!({
                    "bridge": bridge,
                    "port": name,
                    "ofport": e.port_no.0,
                    "type": e.cfg.kind.name(),
                    "options": options_text(&e.cfg),
                    "counters": counters,
                })
            })
            .collect();
        Value::Array(ports)
    }

    fn export(&self, out: &mut dyn MetricSink) {
        let t = table().lock();
        for ((bridge, name), e) in t.iter() {
            let labels = [("bridge", bridge.as_str()), ("port", name.as_str())];
            for (k, v) in counter_rows(&e.counters) {
                match k {
                    "encap_packets" => out.counter(
                        "rvswitchd_tunnel_encap_packets",
                        "Frames encapsulated by a tunnel port and handed to the kernel.",
                        &labels,
                        v,
                    ),
                    "decap_packets" => out.counter(
                        "rvswitchd_tunnel_decap_packets",
                        "Datagrams decapsulated by a tunnel port.",
                        &labels,
                        v,
                    ),
                    "gso_segments" => out.counter(
                        "rvswitchd_tunnel_gso_segments",
                        "Segments made from TSO/GSO frames before encapsulation.",
                        &labels,
                        v,
                    ),
                    reason => out.counter(
                        "rvswitchd_tunnel_drops",
                        "Frames a tunnel port dropped, by reason.",
                        &[labels[0], labels[1], ("reason", reason)],
                        v,
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netdev::tunnel::TunnelKind;

    #[test]
    fn options_read_like_ovs() {
        let cfg = TunnelConfig {
            kind: TunnelKind::Vxlan,
            remote_ip: FlowOr::Fixed("10.0.0.2".parse().unwrap()),
            local_ip: None,
            key: FlowOr::Flow,
            dst_port: 4789,
            csum: false,
            df_default: true,
            ttl: 64,
            tos: 0,
        };
        assert_eq!(
            options_text(&cfg),
            "remote_ip=10.0.0.2 key=flow dst_port=4789 csum=false df_default=true ttl=64 tos=0x0"
        );
        let c = TunnelCounters::default();
        c.drop_mtu.fetch_add(3, Ordering::Relaxed);
        let rows = counter_rows(&c);
        assert_eq!(rows.iter().find(|r| r.0 == "mtu").unwrap().1, 3);
        assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), 3);
    }
}
