//! `ofproto/trace BRIDGE FLOW`: how the tables treat a packet, without sending
//! one — every rule hit, the resulting datapath actions, and the megaflow mask
//! a real packet would install.

use crate::datapath::flow::{Field, FlowKey, VLAN_CFI};
use crate::datapath::odp_format::format_actions;
use crate::datapath::odp_format::format_match;
use crate::ofproto::match_::{eth_type, ip_proto};
use crate::ofproto::view::XlateView;
use crate::ofproto::xlate::XlateOptions;
use crate::openflow::action::{Action, Instruction};
use crate::openflow::oxm::OxmId;
use crate::types::{MacAddr, PortNo};
use crate::util::time::now_ms;
use std::fmt::Write;

/// TTL of a packet built from a description that names none (the IP
/// stacks' usual default; TTL actions need something to decrement).
const DEFAULT_TTL: u128 = 64;
/// VLAN id bits of a TCI.
const VID_MASK: u128 = 0xfff;
/// Priority bits of a TCI, and where they start.
const PCP_MASK: u128 = 0x7;
const PCP_SHIFT: u32 = 13;

/// Parses an OVS-style flow description, e.g.
/// `in_port=1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,ip,nw_dst=10.0.0.2,udp,tp_dst=53`.
pub fn parse_flow(spec: &str) -> Result<FlowKey, String> {
    let mut k = FlowKey::default();
    let num = |v: &str| -> Result<u128, String> {
        let r = if let Some(h) = v.strip_prefix("0x") {
            u128::from_str_radix(h, 16)
        } else {
            v.parse::<u128>()
        };
        r.map_err(|_| format!("{v:?} is not a number"))
    };
    let ip4 = |v: &str| -> Result<u128, String> {
        v.parse::<std::net::Ipv4Addr>()
            .map(|a| u32::from(a) as u128)
            .map_err(|_| format!("{v:?} is not an IPv4 address"))
    };
    let ip6 = |v: &str| -> Result<u128, String> {
        v.parse::<std::net::Ipv6Addr>()
            .map(u128::from)
            .map_err(|_| format!("{v:?} is not an IPv6 address"))
    };
    let mac =
        |v: &str| -> Result<u128, String> { v.parse::<MacAddr>().map(|m| m.to_u64() as u128) };
    for tok in spec
        .split([',', ' '])
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let (key, val) = match tok.split_once('=') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (tok, ""),
        };
        let mut proto = |dl: u16, nw: Option<u8>| {
            k.set(Field::DlType, dl as u128);
            if let Some(p) = nw {
                k.set(Field::NwProto, p as u128);
            }
            if k.get(Field::NwTtl) == 0 && dl != eth_type::ARP {
                k.set(Field::NwTtl, DEFAULT_TTL);
            }
        };
        match key {
            "ip" => proto(eth_type::IPV4, None),
            "ipv6" => proto(eth_type::IPV6, None),
            "arp" => proto(eth_type::ARP, None),
            "tcp" => proto(eth_type::IPV4, Some(ip_proto::TCP)),
            "udp" => proto(eth_type::IPV4, Some(ip_proto::UDP)),
            "icmp" => proto(eth_type::IPV4, Some(ip_proto::ICMP)),
            "sctp" => proto(eth_type::IPV4, Some(ip_proto::SCTP)),
            "tcp6" => proto(eth_type::IPV6, Some(ip_proto::TCP)),
            "udp6" => proto(eth_type::IPV6, Some(ip_proto::UDP)),
            "icmp6" => proto(eth_type::IPV6, Some(ip_proto::ICMPV6)),
            "in_port" => k.set(
                Field::InPort,
                match val {
                    "LOCAL" => PortNo::LOCAL.0 as u128,
                    v => num(v)?,
                },
            ),
            "dl_src" | "eth_src" => k.set(Field::DlSrc, mac(val)?),
            "dl_dst" | "eth_dst" => k.set(Field::DlDst, mac(val)?),
            "dl_type" | "eth_type" => k.set(Field::DlType, num(val)?),
            "dl_vlan" | "vlan_vid" => {
                k.set(Field::VlanTci, (num(val)? & VID_MASK) | VLAN_CFI as u128)
            }
            "dl_vlan_pcp" | "vlan_pcp" => {
                let cur = k.get(Field::VlanTci);
                k.set(
                    Field::VlanTci,
                    cur | VLAN_CFI as u128 | ((num(val)? & PCP_MASK) << PCP_SHIFT),
                );
            }
            "vlan_tci" => k.set(Field::VlanTci, num(val)?),
            "nw_src" | "ip_src" | "arp_spa" => k.set(Field::NwSrc, ip4(val)?),
            "nw_dst" | "ip_dst" | "arp_tpa" => k.set(Field::NwDst, ip4(val)?),
            "nw_proto" | "ip_proto" | "arp_op" => k.set(Field::NwProto, num(val)?),
            "nw_tos" => k.set(Field::NwTos, num(val)?),
            "nw_ttl" => k.set(Field::NwTtl, num(val)?),
            "tp_src" | "tcp_src" | "udp_src" | "sctp_src" | "icmp_type" | "icmpv6_type" => {
                k.set(Field::TpSrc, num(val)?)
            }
            "tp_dst" | "tcp_dst" | "udp_dst" | "sctp_dst" | "icmp_code" | "icmpv6_code" => {
                k.set(Field::TpDst, num(val)?)
            }
            "tcp_flags" => k.set(Field::TcpFlags, num(val)?),
            "arp_sha" | "nd_sll" => k.set(Field::ArpSha, mac(val)?),
            "arp_tha" | "nd_tll" => k.set(Field::ArpTha, mac(val)?),
            "ipv6_src" => k.set(Field::Ipv6Src, ip6(val)?),
            "ipv6_dst" => k.set(Field::Ipv6Dst, ip6(val)?),
            "nd_target" => k.set(Field::NdTarget, ip6(val)?),
            "ipv6_label" => k.set(Field::Ipv6Label, num(val)?),
            "metadata" => k.set(Field::Metadata, num(val)?),
            "tun_id" | "tunnel_id" => k.set(Field::TunnelId, num(val)?),
            "tun_src" => k.set(Field::TunSrc, ip4(val)?),
            "tun_dst" => k.set(Field::TunDst, ip4(val)?),
            other => return Err(format!("{other}: unknown field in flow description")),
        }
    }
    Ok(k)
}

/// An OXM value as `ovs-ofctl` writes it: IPv4 addresses (tunnel ones
/// included) dotted, the rest in hex when `hex` (masks, set-fields) and in
/// decimal otherwise.
fn oxm_value(id: OxmId, v: u128, hex: bool) -> String {
    use OxmId::*;
    match id {
        Ipv4Src | Ipv4Dst | ArpSpa | ArpTpa | TunIpv4Src | TunIpv4Dst => {
            std::net::Ipv4Addr::from(v as u32).to_string()
        }
        _ if hex => format!("{v:#x}"),
        _ => v.to_string(),
    }
}

fn fmt_actions(acts: &[Action]) -> String {
    let v: Vec<String> = acts
        .iter()
        .map(|a| match a {
            Action::Output { port, .. } => format!("output:{port}"),
            Action::Group(g) => format!("group:{}", g.0),
            Action::SetField(f) => format!(
                "set_field:{}->{}",
                oxm_value(f.id, f.value, true),
                f.id.name()
            ),
            Action::PushVlan(t) => format!("push_vlan:{t:#06x}"),
            Action::PopVlan => "pop_vlan".into(),
            Action::DecNwTtl => "dec_ttl".into(),
            other => format!("{other:?}"),
        })
        .collect();
    if v.is_empty() {
        "drop".into()
    } else {
        v.join(",")
    }
}

fn fmt_instructions(ins: &[Instruction]) -> String {
    let v: Vec<String> = ins
        .iter()
        .map(|i| match i {
            Instruction::ApplyActions(a) => fmt_actions(a),
            Instruction::WriteActions(a) => format!("write_actions({})", fmt_actions(a)),
            Instruction::GotoTable(t) => format!("goto_table:{}", t.0),
            Instruction::ClearActions => "clear_actions".into(),
            Instruction::WriteMetadata { value, mask } => {
                format!("write_metadata:{value:#x}/{mask:#x}")
            }
            Instruction::Meter(m) => format!("meter:{}", m.0),
            Instruction::Experimenter { experimenter, .. } => {
                format!("experimenter:{experimenter:#x}")
            }
        })
        .collect();
    if v.is_empty() {
        "drop".into()
    } else {
        v.join(",")
    }
}

/// The fields of `k` that are set, as a match for printing.
fn present(k: &FlowKey) -> FlowKey {
    let mut all = FlowKey::default();
    for f in Field::ALL {
        if k.get(f) != 0 {
            all.set_exact(f);
        }
    }
    all
}

/// Runs the trace and renders it like OVS's `ofproto/trace`.
pub fn trace(br: &XlateView, spec: &str) -> Result<String, String> {
    let key = parse_flow(spec)?;
    let x = br.translate(
        &key,
        &XlateOptions {
            may_learn: false,
            now_ms: now_ms(),
            account: false,
            invalid_ttl_to_controller: false,
        },
    );
    let mut s = String::new();
    let _ = writeln!(s, "Flow: {}", format_match(&key, &present(&key)));
    let _ = writeln!(s, "\nbridge(\"{}\")", br.name);
    let _ = writeln!(s, "{}", "-".repeat(br.name.len() + 10));
    if br.fail_open() {
        let _ = writeln!(s, " fail-open: every packet is switched with NORMAL");
    }
    if x.rules.is_empty() {
        let _ = writeln!(s, " No match: table miss, packet dropped");
    }
    for r in &x.rules {
        let m = crate::ofproto::match_::key_to_match(&r.value(), r.mask());
        let fields: Vec<String> = m
            .fields
            .iter()
            .map(|f| match f.mask {
                Some(mk) => format!(
                    "{}={}/{}",
                    f.id.name(),
                    oxm_value(f.id, f.value, true),
                    oxm_value(f.id, mk, true)
                ),
                None => format!("{}={}", f.id.name(), oxm_value(f.id, f.value, false)),
            })
            .collect();
        let _ = writeln!(
            s,
            " {}. {}priority {}, cookie {:#x}",
            r.table_id.0,
            if fields.is_empty() {
                String::new()
            } else {
                format!("{}, ", fields.join(","))
            },
            r.priority,
            r.cookie.0
        );
        let _ = writeln!(s, "    {}", fmt_instructions(&r.instructions));
    }
    if let Some(b) = x.budget {
        let _ = writeln!(
            s,
            "\nTranslation stopped: over the {} budget ({}); the packet is dropped.",
            b.name(),
            b.limit()
        );
    }
    let w = &x.work;
    let _ = writeln!(
        s,
        "Work: {} table lookups, {} group buckets, {} actions, {} outputs, depth {}",
        w.lookups, w.buckets, w.steps, w.outputs, w.max_depth
    );
    let fin = x.final_flow;
    if fin == key {
        let _ = writeln!(s, "\nFinal flow: unchanged");
    } else {
        let _ = writeln!(s, "\nFinal flow: {}", format_match(&fin, &present(&fin)));
    }
    let _ = writeln!(s, "Megaflow: {}", format_match(&key.masked(&x.wc), &x.wc));
    let _ = writeln!(s, "Datapath actions: {}", format_actions(&x.actions));
    if x.slow != 0 {
        let _ = writeln!(
            s,
            "This flow is handled by the userspace slow path (reasons {:#x}).",
            x.slow
        );
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_flow_descriptions() {
        let k =
            parse_flow("in_port=1,dl_src=02:00:00:00:00:01,udp,nw_dst=10.0.0.2,tp_dst=53").unwrap();
        assert_eq!(k.get(Field::InPort), 1);
        assert_eq!(k.get(Field::DlType), 0x0800);
        assert_eq!(k.get(Field::NwProto), 17);
        assert_eq!(k.get(Field::NwDst), 0x0a00_0002);
        assert_eq!(k.get(Field::TpDst), 53);
        let t = parse_flow("in_port=1,tun_id=0x5,tun_src=10.0.0.1,tun_dst=10.0.0.2").unwrap();
        assert_eq!(t.get(Field::TunnelId), 5);
        assert_eq!(t.get(Field::TunSrc), 0x0a00_0001);
        assert_eq!(t.get(Field::TunDst), 0x0a00_0002);
        assert!(parse_flow("tun_dst=10.0.0").is_err());
        assert_eq!(oxm_value(OxmId::TunIpv4Dst, 0x0a00_0000, true), "10.0.0.0");
        assert_eq!(oxm_value(OxmId::TunnelId, 5, false), "5");
        assert!(parse_flow("bogus=1").is_err());
        assert!(parse_flow("nw_dst=10.0.0").is_err());
    }

    #[test]
    fn trace_prints_the_final_flow_only_when_it_changed() {
        use crate::ofproto::{Ofproto, PortInfo};
        use crate::openflow::message::{FlowMod, FlowModCommand};
        use crate::openflow::oxm::{Match, OxmField, OxmId};
        use crate::types::{DatapathId, PortNo, TableId};
        let mut of = Ofproto::new(DatapathId(1), "t");
        of.add_port(PortInfo::new(PortNo(1), "p1", MacAddr([2, 0, 0, 0, 0, 1])));
        of.add_port(PortInfo::new(PortNo(2), "p2", MacAddr([2, 0, 0, 0, 0, 2])));
        let fm = FlowMod::new(
            FlowModCommand::Add,
            TableId(0),
            1,
            Match::default(),
            vec![Instruction::ApplyActions(vec![
                Action::SetField(OxmField::exact(OxmId::EthDst, 0x0200_0000_0099)),
                Action::Output {
                    port: PortNo(2),
                    max_len: 0,
                },
            ])],
        );
        of.flow_mod(&fm, 0).unwrap();
        let v = XlateView::new("br0", of.publish(), 10, 1000);
        let t = trace(&v, "in_port=1,dl_dst=02:00:00:00:00:01").unwrap();
        assert!(!t.contains("Final flow: unchanged"), "{t}");
        assert!(
            t.contains("Final flow: ") && t.contains("02:00:00:00:00:99"),
            "{t}"
        );
        let t = trace(&v, "in_port=1,dl_dst=02:00:00:00:00:99").unwrap();
        assert!(t.contains("Final flow: unchanged"), "{t}");
    }
}
