//! Printing datapath flows the way `ovs-appctl dpctl/dump-flows` does, so that
//! operators and scripts written for OVS read ours unchanged, e.g.
//! `recirc_id(0),in_port(1),eth(src=..,dst=..),eth_type(0x0800),ipv4(src=10.0.0.1,proto=17,frag=no),udp(src=5000,dst=9), packets:3, bytes:180, used:0.512s, actions:2`.
//! Fields whose mask is zero are omitted; partially masked ones print `value/mask`.

use super::actions::{DpAction, UserspaceReason};
use super::dpflow::DpFlow;
use super::flow::{Field, FlowKey, FRAG_ANY, FRAG_LATER};
use crate::types::MacAddr;
use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

fn mac(v: u128) -> String {
    MacAddr::from_u64(v as u64).to_string()
}

fn ip4(v: u128) -> String {
    Ipv4Addr::from(v as u32).to_string()
}

fn ip6(v: u128) -> String {
    Ipv6Addr::from(v).to_string()
}

/// Appends `name=value[/mask]` for a field when any mask bit is set.
fn field(
    parts: &mut Vec<String>,
    name: &str,
    k: &FlowKey,
    m: &FlowKey,
    f: Field,
    fmt: fn(u128) -> String,
) {
    let mask = m.get(f);
    if mask == 0 {
        return;
    }
    let v = k.get(f);
    if mask == f.full_mask() {
        parts.push(format!("{name}={}", fmt(v)));
    } else {
        parts.push(format!("{name}={}/{}", fmt(v), fmt(mask)));
    }
}

fn dec(v: u128) -> String {
    v.to_string()
}

fn hex(v: u128) -> String {
    format!("{v:#x}")
}

fn group(out: &mut String, name: &str, parts: Vec<String>) {
    if !parts.is_empty() {
        let _ = write!(out, ",{name}({})", parts.join(","));
    }
}

/// The tunnel part of a key, as OVS `format_odp_tun_attr()` prints it
/// (`tun_id=0x5,src=10.0.0.1,dst=10.0.0.2`, masked parts as `value/mask`);
/// fields outside `m` are left out. Empty when none is in `m`.
pub fn tunnel_parts(k: &FlowKey, m: &FlowKey) -> Vec<String> {
    let mut t = Vec::new();
    field(&mut t, "tun_id", k, m, Field::TunnelId, hex);
    field(&mut t, "src", k, m, Field::TunSrc, ip4);
    field(&mut t, "dst", k, m, Field::TunDst, ip4);
    t
}

/// Formats the match part of a megaflow. The tunnel comes first, as in
/// OVS's dumps (`tunnel(...)` is the first attribute of a datapath key
/// after the priority, `odp_flow_key_from_flow__()`).
pub fn format_match(k: &FlowKey, m: &FlowKey) -> String {
    let mut s = String::new();
    let tun = tunnel_parts(k, m);
    if !tun.is_empty() {
        let _ = write!(s, "tunnel({}),", tun.join(","));
    }
    s.push_str("recirc_id(0)");
    if m.get(Field::InPort) != 0 {
        let _ = write!(s, ",in_port({})", k.get(Field::InPort));
    }
    let mut eth = Vec::new();
    field(&mut eth, "src", k, m, Field::DlSrc, mac);
    field(&mut eth, "dst", k, m, Field::DlDst, mac);
    group(&mut s, "eth", eth);
    if m.get(Field::VlanTci) != 0 {
        let tci = k.get(Field::VlanTci) as u16;
        if tci & super::flow::VLAN_CFI != 0 {
            let _ = write!(
                s,
                ",eth_type(0x8100),vlan(vid={},pcp={})",
                tci & 0xfff,
                tci >> 13
            );
        } else {
            s.push_str(",vlan(none)");
        }
    }
    if m.get(Field::DlType) != 0 {
        let _ = write!(s, ",eth_type({:#06x})", k.get(Field::DlType));
    }
    let mut pbb = Vec::new();
    field(&mut pbb, "isid", k, m, Field::PbbIsid, hex);
    field(&mut pbb, "c_dst", k, m, Field::PbbCDst, mac);
    field(&mut pbb, "c_src", k, m, Field::PbbCSrc, mac);
    field(&mut pbb, "c_tci", k, m, Field::PbbCTci, hex);
    field(&mut pbb, "c_type", k, m, Field::PbbCType, hex);
    group(&mut s, "pbb", pbb);
    // OVS prints `mpls(label=..,tc=..,ttl=..,bos=..)` for one entry and
    // `mpls(lse0=..,lse1=..)` for a stack; we always print the stack form,
    // plus the payload type the L3 fields below describe.
    let mut mpls = Vec::new();
    field(&mut mpls, "lse0", k, m, Field::MplsLse, hex);
    field(&mut mpls, "lse1", k, m, Field::MplsLse1, hex);
    field(&mut mpls, "lse2", k, m, Field::MplsLse2, hex);
    field(&mut mpls, "inner", k, m, Field::MplsInner, hex);
    group(&mut s, "mpls", mpls);
    // For MPLS and PBB frames the L3/L4 fields are those of the payload.
    let dl_type = k.l3_type();
    let proto = k.get(Field::NwProto) as u8;
    let frag = |parts: &mut Vec<String>| {
        if m.get(Field::NwFrag) != 0 {
            let f = k.get(Field::NwFrag) as u8;
            let t = if f & FRAG_ANY == 0 {
                "no"
            } else if f & FRAG_LATER != 0 {
                "later"
            } else {
                "first"
            };
            parts.push(format!("frag={t}"));
        }
    };
    match dl_type {
        0x0800 => {
            let mut p = Vec::new();
            field(&mut p, "src", k, m, Field::NwSrc, ip4);
            field(&mut p, "dst", k, m, Field::NwDst, ip4);
            field(&mut p, "proto", k, m, Field::NwProto, dec);
            field(&mut p, "tos", k, m, Field::NwTos, hex);
            field(&mut p, "ttl", k, m, Field::NwTtl, dec);
            frag(&mut p);
            group(&mut s, "ipv4", p);
        }
        0x86dd => {
            let mut p = Vec::new();
            field(&mut p, "src", k, m, Field::Ipv6Src, ip6);
            field(&mut p, "dst", k, m, Field::Ipv6Dst, ip6);
            field(&mut p, "label", k, m, Field::Ipv6Label, hex);
            field(&mut p, "proto", k, m, Field::NwProto, dec);
            field(&mut p, "tclass", k, m, Field::NwTos, hex);
            field(&mut p, "hlimit", k, m, Field::NwTtl, dec);
            frag(&mut p);
            group(&mut s, "ipv6", p);
        }
        0x0806 => {
            let mut p = Vec::new();
            field(&mut p, "sip", k, m, Field::NwSrc, ip4);
            field(&mut p, "tip", k, m, Field::NwDst, ip4);
            field(&mut p, "op", k, m, Field::NwProto, dec);
            field(&mut p, "sha", k, m, Field::ArpSha, mac);
            field(&mut p, "tha", k, m, Field::ArpTha, mac);
            group(&mut s, "arp", p);
        }
        _ => {}
    }
    if dl_type == 0x0800 || dl_type == 0x86dd {
        let l4 = match (dl_type, proto) {
            (_, 6) => Some(("tcp", "src", "dst")),
            (_, 17) => Some(("udp", "src", "dst")),
            (_, 132) => Some(("sctp", "src", "dst")),
            (0x0800, 1) => Some(("icmp", "type", "code")),
            (0x86dd, 58) => Some(("icmpv6", "type", "code")),
            _ => None,
        };
        if let Some((name, a, b)) = l4 {
            let mut p = Vec::new();
            field(&mut p, a, k, m, Field::TpSrc, dec);
            field(&mut p, b, k, m, Field::TpDst, dec);
            group(&mut s, name, p);
        }
        if proto == 6 && m.get(Field::TcpFlags) != 0 {
            let _ = write!(
                s,
                ",tcp_flags({:#x}/{:#x})",
                k.get(Field::TcpFlags),
                m.get(Field::TcpFlags)
            );
        }
        if proto == 58 {
            let mut p = Vec::new();
            field(&mut p, "target", k, m, Field::NdTarget, ip6);
            field(&mut p, "sll", k, m, Field::ArpSha, mac);
            field(&mut p, "tll", k, m, Field::ArpTha, mac);
            group(&mut s, "nd", p);
        }
    }
    s
}

/// One line of `dpctl/dump-flows`.
pub fn format_flow(f: &DpFlow, now_ms: u64) -> String {
    let st = f.stats.snapshot();
    let used = if st.used_ms == 0 {
        "never".to_string()
    } else {
        format!("{:.3}s", now_ms.saturating_sub(st.used_ms) as f64 / 1000.0)
    };
    let mut s = format_match(&f.key(), &f.mask);
    let _ = write!(
        s,
        ", packets:{}, bytes:{}, used:{}",
        st.packets, st.bytes, used
    );
    if st.tcp_flags != 0 {
        let _ = write!(s, ", flags:{:#x}", st.tcp_flags);
    }
    let _ = write!(s, ", actions:{}", format_actions(&f.actions.load()));
    s
}

/// Formats actions the way `ovs-appctl dpctl/dump-flows` does (`actions:2,3` or `drop`).
pub fn format_actions(actions: &[DpAction]) -> String {
    if actions.is_empty() {
        return "drop".to_string();
    }
    let mut parts = Vec::with_capacity(actions.len());
    let mut i = 0;
    while i < actions.len() {
        let a = &actions[i];
        i += 1;
        if is_tunnel_set(a) {
            // Consecutive tunnel writes print as one `set(tunnel(...))`, the
            // one action OVS's datapath has for them (`format_odp_action()`
            // of OVS_ACTION_ATTR_SET with OVS_KEY_ATTR_TUNNEL).
            let (mut k, mut m) = (FlowKey::default(), FlowKey::default());
            for b in std::iter::once(a).chain(actions[i..].iter().take_while(|b| is_tunnel_set(b)))
            {
                if let DpAction::SetField { field, value, mask } = b {
                    let cur = k.get(*field);
                    k.set(*field, (cur & !mask) | (value & mask));
                    m.or_bits(*field, *mask);
                }
            }
            while i < actions.len() && is_tunnel_set(&actions[i]) {
                i += 1;
            }
            parts.push(format!("set(tunnel({}))", tunnel_parts(&k, &m).join(",")));
            continue;
        }
        parts.push(match a {
            DpAction::Output(p) => p.0.to_string(),
            DpAction::SetField { field, value, mask } => {
                if *mask == field.full_mask() {
                    format!("set({}={:#x})", field.name(), value)
                } else {
                    format!("set({}={:#x}/{:#x})", field.name(), value, mask)
                }
            }
            DpAction::PushVlan { tpid, tci } => {
                format!(
                    "push_vlan(vid={},pcp={},tpid={:#06x})",
                    tci & 0xfff,
                    tci >> 13,
                    tpid
                )
            }
            DpAction::PopVlan => "pop_vlan".to_string(),
            DpAction::PushMpls { ethertype, lse } => format!(
                "push_mpls(label={},tc={},ttl={},bos={},eth_type={:#x})",
                lse >> 12,
                (lse >> 9) & 7,
                lse & 0xff,
                (lse >> 8) & 1,
                ethertype
            ),
            DpAction::PopMpls { ethertype } => format!("pop_mpls(eth_type={ethertype:#x})"),
            DpAction::PushPbb { itci } => format!("push_pbb(isid={:#x})", itci & 0xff_ffff),
            DpAction::PopPbb => "pop_pbb".to_string(),
            DpAction::Userspace(UserspaceReason::Controller {
                reason,
                max_len,
                meter,
                ..
            }) => match meter {
                Some(m) => format!(
                    "clone(meter({m}),userspace(controller(reason={reason},max_len={max_len})))"
                ),
                None => format!("userspace(controller(reason={reason},max_len={max_len}))"),
            },
            DpAction::Meter(m) => format!("meter({m})"),
        });
    }
    parts.join(",")
}

fn is_tunnel_set(a: &DpAction) -> bool {
    matches!(
        a,
        DpAction::SetField {
            field: Field::TunnelId | Field::TunSrc | Field::TunDst,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::actions::DpAction;
    use crate::types::PortNo;

    #[test]
    fn formats_like_ovs() {
        let mut k = FlowKey::default();
        k.set(Field::InPort, 2);
        k.set(Field::DlType, 0x0800);
        k.set(Field::NwProto, 17);
        k.set(Field::TpSrc, 31919);
        k.set(Field::TpDst, 9);
        k.set(Field::NwSrc, 0x0afd_0001);
        let mut m = FlowKey::default();
        for f in [
            Field::InPort,
            Field::DlType,
            Field::NwProto,
            Field::TpSrc,
            Field::TpDst,
            Field::NwFrag,
        ] {
            m.set_exact(f);
        }
        m.set(Field::NwSrc, 0xffff_ff00);
        let flow = DpFlow::new(1, &k, &m, vec![DpAction::Output(PortNo(3))], 1);
        let s = format_flow(&flow, 10);
        assert_eq!(
            s,
            "recirc_id(0),in_port(2),eth_type(0x0800),ipv4(src=10.253.0.0/255.255.255.0,proto=17,frag=no),udp(src=31919,dst=9), packets:0, bytes:0, used:never, actions:3"
        );
    }

    #[test]
    fn formats_tunnel_keys_and_sets_like_ovs() {
        let mut k = FlowKey::default();
        k.set(Field::TunnelId, 5);
        k.set(Field::TunSrc, 0x0a00_0001);
        k.set(Field::TunDst, 0x0a00_0002);
        k.set(Field::InPort, 3);
        let mut m = FlowKey::default();
        for f in [Field::TunnelId, Field::TunSrc, Field::TunDst, Field::InPort] {
            m.set_exact(f);
        }
        assert_eq!(
            format_match(&k, &m),
            "tunnel(tun_id=0x5,src=10.0.0.1,dst=10.0.0.2),recirc_id(0),in_port(3)"
        );
        // Only what the mask covers, partial masks as value/mask.
        m.set(Field::TunSrc, 0);
        m.set(Field::TunDst, 0xffff_ff00);
        m.set(Field::TunnelId, 0xff);
        assert_eq!(
            format_match(&k.masked(&m), &m),
            "tunnel(tun_id=0x5/0xff,dst=10.0.0.0/255.255.255.0),recirc_id(0),in_port(3)"
        );
        let acts = [
            DpAction::SetField {
                field: Field::TunnelId,
                value: 5,
                mask: u64::MAX as u128,
            },
            DpAction::SetField {
                field: Field::TunDst,
                value: 0x0a00_0002,
                mask: 0xffff_ffff,
            },
            DpAction::Output(PortNo(4)),
            DpAction::SetField {
                field: Field::TunnelId,
                value: 0,
                mask: u64::MAX as u128,
            },
            DpAction::Output(PortNo(5)),
        ];
        assert_eq!(
            format_actions(&acts),
            "set(tunnel(tun_id=0x5,dst=10.0.0.2)),4,set(tunnel(tun_id=0x0)),5"
        );
    }

    #[test]
    fn formats_mpls_stacks_and_their_payload() {
        let mut k = FlowKey::default();
        k.set(Field::DlType, 0x8847);
        k.set(Field::MplsLse, 0x0006_4140);
        k.set(Field::MplsInner, 0x0800);
        k.set(Field::NwDst, 0x0a00_0002);
        let mut m = FlowKey::default();
        for f in [
            Field::DlType,
            Field::MplsLse,
            Field::MplsInner,
            Field::NwDst,
        ] {
            m.set_exact(f);
        }
        assert_eq!(
            format_match(&k, &m),
            "recirc_id(0),eth_type(0x8847),mpls(lse0=0x64140,inner=0x800),ipv4(dst=10.0.0.2)"
        );
        let acts = [
            DpAction::PushMpls {
                ethertype: 0x8847,
                lse: (100 << 12) | 0x100 | 64,
            },
            DpAction::PopMpls { ethertype: 0x0800 },
            DpAction::PushPbb { itci: 0x123 },
            DpAction::PopPbb,
        ];
        assert_eq!(
            format_actions(&acts),
            "push_mpls(label=100,tc=0,ttl=64,bos=1,eth_type=0x8847),pop_mpls(eth_type=0x800),push_pbb(isid=0x123),pop_pbb"
        );
    }
}
