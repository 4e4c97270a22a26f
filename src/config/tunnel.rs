//! Tunnel port options (`type = "vxlan"` / `"geneve"`): from TOML keys to a
//! validated [`TunnelConfig`], with the defaults and ranges OVS documents in
//! `vswitch.xml` (`options:remote_ip`, `key`, `dst_port`, `csum`,
//! `df_default`, `ttl`, `tos`).
//!
//! Pure: called by the validator (to refuse a file) and by the Port actor (to
//! open the device), so both read the options one way.

use super::PortConfig;
use crate::types::{FlowOr, PortType, TunnelConfig, TunnelKind};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Largest VNI: VXLAN and Geneve carry 24 bits.
pub const MAX_VNI: u64 = 0xff_ffff;

/// A `key` as written: an integer VNI or the word `"flow"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    /// A fixed VNI.
    Vni(u64),
    /// `"flow"` (anything else is refused by validation).
    Text(String),
}

/// Which option was wrong and why, for the validator's file/line/key message.
#[derive(Debug, PartialEq, Eq)]
pub struct OptionError {
    /// The TOML key.
    pub key: &'static str,
    /// What is wrong.
    pub msg: String,
}

fn bad(key: &'static str, msg: String) -> OptionError {
    OptionError { key, msg }
}

fn addr_or_flow(key: &'static str, s: &str) -> Result<FlowOr<IpAddr>, OptionError> {
    if s == "flow" {
        return Ok(FlowOr::Flow);
    }
    let ip: IpAddr = s.parse().map_err(|_| {
        bad(
            key,
            format!("{s:?} is not an IPv4 or IPv6 address or \"flow\""),
        )
    })?;
    if ip.is_ipv6() {
        // The flow's tun_src/tun_dst (and the packet's TunnelMeta) are IPv4.
        return Err(bad(
            key,
            format!("{s:?}: tunnels over an IPv6 underlay are not supported yet"),
        ));
    }
    if ip.is_unspecified() || ip.is_multicast() {
        return Err(bad(
            key,
            format!("{s:?}: a tunnel endpoint is a unicast address"),
        ));
    }
    Ok(FlowOr::Fixed(ip))
}

impl PortConfig {
    /// The validated tunnel options of a `vxlan`/`geneve` port (`None` for
    /// other types, which must not carry tunnel keys).
    pub fn tunnel_config(&self) -> Result<Option<TunnelConfig>, OptionError> {
        let kind = match self.kind {
            PortType::Vxlan => TunnelKind::Vxlan,
            PortType::Geneve => TunnelKind::Geneve,
            _ => {
                let set = [
                    ("remote_ip", self.remote_ip.is_some()),
                    ("local_ip", self.local_ip.is_some()),
                    ("key", self.key.is_some()),
                    ("dst_port", self.dst_port.is_some()),
                    ("csum", self.csum.is_some()),
                    ("df_default", self.df_default.is_some()),
                    ("ttl", self.ttl.is_some()),
                    ("tos", self.tos.is_some()),
                ];
                if let Some((k, _)) = set.iter().find(|(_, s)| *s) {
                    return Err(bad(
                        k,
                        format!(
                            "{k} applies to vxlan and geneve ports, not to a {:?} port",
                            self.kind
                        ),
                    ));
                }
                return Ok(None);
            }
        };
        let remote_ip = match &self.remote_ip {
            Some(s) => addr_or_flow("remote_ip", s)?,
            None => {
                return Err(bad(
                    "remote_ip",
                    format!(
                        "a {} port needs remote_ip (an address, or \"flow\")",
                        kind.name()
                    ),
                ))
            }
        };
        let local_ip = self
            .local_ip
            .as_deref()
            .map(|s| addr_or_flow("local_ip", s))
            .transpose()?;
        if let (FlowOr::Fixed(r), Some(FlowOr::Fixed(l))) = (remote_ip, local_ip) {
            if r.is_ipv4() != l.is_ipv4() {
                return Err(bad(
                    "local_ip",
                    format!("{l} and remote_ip {r} are not of one address family"),
                ));
            }
        }
        let key = match &self.key {
            None => FlowOr::Fixed(0),
            Some(KeyValue::Vni(v)) => match u32::try_from(*v) {
                Ok(vni) if *v <= MAX_VNI => FlowOr::Fixed(vni),
                _ => {
                    return Err(bad(
                        "key",
                        format!("{v} is out of range 0..={MAX_VNI} (a VNI has 24 bits)"),
                    ))
                }
            },
            Some(KeyValue::Text(t)) if t == "flow" => FlowOr::Flow,
            Some(KeyValue::Text(t)) => {
                return Err(bad(
                    "key",
                    format!("{t:?} is not a VNI (0..={MAX_VNI}) or \"flow\""),
                ))
            }
        };
        let dst_port = self.dst_port.unwrap_or(kind.default_port());
        if dst_port == 0 {
            return Err(bad("dst_port", "0 is not a UDP port".to_string()));
        }
        let ttl = self.ttl.unwrap_or(64);
        if ttl == 0 {
            return Err(bad(
                "ttl",
                "0 would be dropped by the first router; 1..=255".to_string(),
            ));
        }
        Ok(Some(TunnelConfig {
            kind,
            remote_ip,
            local_ip,
            key,
            dst_port,
            csum: self.csum.unwrap_or(false),
            df_default: self.df_default.unwrap_or(true),
            ttl,
            tos: self.tos.unwrap_or(0),
        }))
    }

    /// The UDP endpoint a tunnel port listens on: (type, local address, port).
    /// Two ports on one endpoint would share one socket, which cannot tell
    /// their traffic apart (see `docs/TUNNELS.md`).
    pub fn tunnel_endpoint(&self) -> Option<(TunnelKind, Option<IpAddr>, u16)> {
        let t = self.tunnel_config().ok()??;
        let local = match t.local_ip {
            Some(FlowOr::Fixed(a)) => Some(a),
            _ => None,
        };
        Some((t.kind, local, t.dst_port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vx(remote: &str) -> PortConfig {
        PortConfig {
            remote_ip: Some(remote.into()),
            ..PortConfig::new("vx0", PortType::Vxlan)
        }
    }

    #[test]
    fn defaults_are_ovs_defaults() {
        let t = vx("10.0.0.2").tunnel_config().unwrap().unwrap();
        assert_eq!(t.kind, TunnelKind::Vxlan);
        assert_eq!(t.remote_ip, FlowOr::Fixed("10.0.0.2".parse().unwrap()));
        assert_eq!(t.local_ip, None);
        assert_eq!(t.key, FlowOr::Fixed(0));
        assert_eq!(t.dst_port, 4789);
        assert!(!t.csum);
        assert!(t.df_default);
        assert_eq!(t.ttl, 64);
        assert_eq!(t.tos, 0);
        let g = PortConfig {
            kind: PortType::Geneve,
            ..vx("10.0.0.2")
        };
        assert_eq!(g.tunnel_config().unwrap().unwrap().dst_port, 6081);
    }

    #[test]
    fn flow_keys_and_addresses() {
        let p = PortConfig {
            key: Some(KeyValue::Text("flow".into())),
            local_ip: Some("flow".into()),
            ..vx("flow")
        };
        let t = p.tunnel_config().unwrap().unwrap();
        assert_eq!(t.remote_ip, FlowOr::Flow);
        assert_eq!(t.local_ip, Some(FlowOr::Flow));
        assert_eq!(t.key, FlowOr::Flow);
    }

    #[test]
    fn bad_options_name_their_key() {
        let e = |p: PortConfig| p.tunnel_config().unwrap_err().key;
        assert_eq!(e(PortConfig::new("vx0", PortType::Vxlan)), "remote_ip");
        assert_eq!(e(vx("10.0.0.256")), "remote_ip");
        assert_eq!(e(vx("0.0.0.0")), "remote_ip");
        assert_eq!(e(vx("224.0.0.1")), "remote_ip");
        assert_eq!(
            e(PortConfig {
                key: Some(KeyValue::Vni(MAX_VNI + 1)),
                ..vx("10.0.0.2")
            }),
            "key"
        );
        assert_eq!(
            e(PortConfig {
                key: Some(KeyValue::Text("any".into())),
                ..vx("10.0.0.2")
            }),
            "key"
        );
        assert_eq!(
            e(PortConfig {
                local_ip: Some("fd00::1".into()),
                ..vx("10.0.0.2")
            }),
            "local_ip"
        );
        assert_eq!(
            e(PortConfig {
                ttl: Some(0),
                ..vx("10.0.0.2")
            }),
            "ttl"
        );
        assert_eq!(
            e(PortConfig {
                dst_port: Some(0),
                ..vx("10.0.0.2")
            }),
            "dst_port"
        );
        // Tunnel keys on a port that is not a tunnel.
        assert_eq!(
            e(PortConfig {
                remote_ip: Some("10.0.0.2".into()),
                ..PortConfig::new("veth0", PortType::System)
            }),
            "remote_ip"
        );
    }

    #[test]
    fn toml_spelling() {
        let p: PortConfig = toml::from_str(
            "name = \"vx0\"\ntype = \"vxlan\"\nremote_ip = \"10.0.0.2\"\nkey = 5000\n",
        )
        .unwrap();
        assert_eq!(p.tunnel_config().unwrap().unwrap().key, FlowOr::Fixed(5000));
        let p: PortConfig = toml::from_str(
            "name = \"gn0\"\ntype = \"geneve\"\nremote_ip = \"flow\"\nkey = \"flow\"\n",
        )
        .unwrap();
        assert_eq!(p.tunnel_config().unwrap().unwrap().key, FlowOr::Flow);
    }
}
