//! OpenFlow requests against the real daemon, in raw bytes as a controller
//! sends them: the answers OVS gives for the edge cases of PACKET_OUT,
//! FLOW_MOD and METER_MOD, and a flood of PACKET_OUTs that must all leave
//! through the port or be counted where an operator looks.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

const OFPT_ERROR: u8 = 1;
const OFPT_PACKET_OUT: u8 = 13;
const OFPT_FLOW_MOD: u8 = 14;
const OFPT_BARRIER_REQUEST: u8 = 20;
const OFPT_BARRIER_REPLY: u8 = 21;
const OFPT_METER_MOD: u8 = 29;
const NO_BUFFER: u32 = 0xffff_ffff;
const OFPP_ANY: u32 = 0xffff_ffff;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;

fn session(d: &Daemon) -> std::os::unix::net::UnixStream {
    let mut s = std::os::unix::net::UnixStream::connect(&d.mgmt).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).expect("hello");
    s
}

fn msg(t: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![4, t, 0, 0];
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(body);
    let len = v.len() as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

fn output(port: u32) -> Vec<u8> {
    let mut a = vec![0, 0, 0, 16];
    a.extend_from_slice(&port.to_be_bytes());
    a.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]);
    a
}

/// A broadcast ARP request for an address nobody on the test links has.
fn frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9, 0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 9, 10, 9, 9, 9]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 9, 9, 250]);
    f
}

fn packet_out(xid: u32, in_port: u32, actions: &[u8]) -> Vec<u8> {
    let mut b = NO_BUFFER.to_be_bytes().to_vec();
    b.extend_from_slice(&in_port.to_be_bytes());
    b.extend_from_slice(&(actions.len() as u16).to_be_bytes());
    b.extend_from_slice(&[0; 6]);
    b.extend_from_slice(actions);
    b.extend_from_slice(&frame());
    msg(OFPT_PACKET_OUT, xid, &b)
}

/// Sends `m` and a barrier; returns the (type, code) of an error answering
/// `m`, if any, once the barrier reply arrived.
fn ask(s: &mut std::os::unix::net::UnixStream, xid: u32, m: &[u8]) -> Option<(u16, u16)> {
    s.write_all(m).expect("send");
    s.write_all(&msg(OFPT_BARRIER_REQUEST, xid + 1, &[]))
        .expect("send barrier");
    let mut err = None;
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).expect("an answer");
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(8)];
        s.read_exact(&mut body).expect("the answer's body");
        let rxid = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        if h[1] == OFPT_ERROR && rxid == xid && body.len() >= 4 {
            err = Some((
                u16::from_be_bytes([body[0], body[1]]),
                u16::from_be_bytes([body[2], body[3]]),
            ));
        }
        if h[1] == OFPT_BARRIER_REPLY && rxid == xid + 1 {
            return err;
        }
    }
}

fn switch() -> Daemon {
    let br = format!("rvq{}", uniq());
    Daemon::start(&bridge_config(&br, &[], "", ""))
}

#[test]
fn packet_out_edge_cases_get_the_answers_ovs_gives() {
    if !require(true, &[]) {
        return;
    }
    let d = switch();
    let mut s = session(&d);
    let local = 0xffff_fffe;
    // in_port 0: "no input port", accepted (controllers send it that way).
    assert_eq!(ask(&mut s, 10, &packet_out(10, 0, &output(local))), None);
    // in_port ANY: OFPBRC_BAD_PORT (OF1.3.5 §7.3.7).
    assert_eq!(
        ask(&mut s, 20, &packet_out(20, OFPP_ANY, &output(local))),
        Some((1, 11))
    );
    // A group that does not exist: OFPBAC_BAD_OUT_GROUP.
    let group = [0, 22, 0, 8, 0, 0, 0, 42];
    assert_eq!(
        ask(&mut s, 30, &packet_out(30, OFPP_CONTROLLER, &group)),
        Some((2, 9))
    );
    // Output to ANY: OFPBAC_BAD_OUT_PORT.
    assert_eq!(
        ask(
            &mut s,
            40,
            &packet_out(40, OFPP_CONTROLLER, &output(OFPP_ANY))
        ),
        Some((2, 4))
    );
    // The session still works.
    assert_eq!(ask(&mut s, 50, &msg(OFPT_BARRIER_REQUEST, 50, &[])), None);
}

#[test]
fn flow_mod_with_a_buffer_and_meter_without_bands_are_refused() {
    if !require(true, &["ovs-ofctl"]) {
        return;
    }
    let d = switch();
    let mut s = session(&d);
    // FLOW_MOD ADD, empty match, no instructions, buffer_id 7: we buffer
    // nothing, so OFPBRC_BUFFER_UNKNOWN and the flow is not added.
    let mut fm = vec![0u8; 40];
    fm[22..24].copy_from_slice(&77u16.to_be_bytes()); // priority
    fm[24..28].copy_from_slice(&7u32.to_be_bytes()); // buffer_id
    fm[28..32].copy_from_slice(&OFPP_ANY.to_be_bytes());
    fm[32..36].copy_from_slice(&OFPP_ANY.to_be_bytes());
    fm.extend_from_slice(&[0, 1, 0, 4, 0, 0, 0, 0]);
    assert_eq!(ask(&mut s, 50, &msg(OFPT_FLOW_MOD, 50, &fm)), Some((1, 8)));
    let flows = d.ofctl_ok("dump-flows", &[]);
    assert!(!flows.contains("priority=77"), "{flows}");
    // METER_MOD ADD of meter 1 with no band: OFPMMFC_BAD_BAND.
    let mut mm = 0u16.to_be_bytes().to_vec();
    mm.extend_from_slice(&2u16.to_be_bytes());
    mm.extend_from_slice(&1u32.to_be_bytes());
    assert_eq!(
        ask(&mut s, 60, &msg(OFPT_METER_MOD, 60, &mm)),
        Some((12, 8))
    );
    let meters = d.ofctl_ok("dump-meters", &[]);
    assert!(!meters.contains("meter=1"), "{meters}");
}

/// Reads one counter of a port or the bridge from `/stats`.
fn dp_stats(d: &Daemon) -> serde_json::Value {
    let st = d.stats_json();
    st.as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.starts_with("datapath_")))
        .map(|(_, v)| v.clone())
        .unwrap_or(serde_json::Value::Null)
}

fn port_counter(dp: &serde_json::Value, port: &str, key: &str) -> u64 {
    dp["ports"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == port))
        .and_then(|p| p[key].as_u64())
        .unwrap_or(0)
}

fn sysfs(h: &Host, ns: bool, dev: &str, stat: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/{stat}");
    let (ok, out) = if ns {
        h.exec(&format!("cat {path}"))
    } else {
        sh_try(&format!("cat {path}"))
    };
    assert!(ok, "{path}: {out}");
    out.trim().parse().unwrap_or(0)
}

#[test]
fn every_packet_out_is_sent_or_counted() {
    if !require(true, &[]) {
        return;
    }
    const N: u32 = 100_000;
    let tag = uniq();
    let h = Host::new(&tag, 1, "10.78.0");
    let d = Daemon::start(&bridge_config(
        &format!("rvq{tag}"),
        &[h.port.as_str()],
        "",
        "",
    ));
    assert!(
        wait_for(10, || dp_stats(&d)["ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["name"] == h.port.as_str()))),
        "port never attached: {}",
        d.log_text()
    );
    let ns_rx0 = sysfs(&h, true, "eth0", "rx_packets");
    let host_drop0 = sysfs(&h, false, &h.port, "tx_dropped");
    let mut s = session(&d);
    // All of them back to back, as fast as the socket takes them: the
    // switch must slow us down (stop reading) rather than lose packets.
    let one = packet_out(0, OFPP_CONTROLLER, &output(1));
    let mut buf = Vec::with_capacity(one.len() * 1000);
    for i in 0..N {
        let mut m = one.clone();
        m[4..8].copy_from_slice(&(i + 100).to_be_bytes());
        buf.extend_from_slice(&m);
        if buf.len() >= one.len() * 1000 || i + 1 == N {
            s.write_all(&buf).expect("send packet-outs");
            buf.clear();
        }
    }
    assert_eq!(ask(&mut s, 1, &msg(OFPT_BARRIER_REQUEST, 1, &[])), None);
    // The daemon's accounting: every PACKET_OUT was handed to the datapath
    // or counted as dropped, and every packet handed over left the port or
    // was counted there.
    let settled = wait_for(20, || {
        let dp = dp_stats(&d);
        let b = &dp["bridge"];
        let sent = b["packet_outs"].as_u64().unwrap_or(0);
        let dropped = b["packet_out_drops"].as_u64().unwrap_or(0);
        let out = port_counter(&dp, &h.port, "tx_packets")
            + port_counter(&dp, &h.port, "tx_dropped")
            + port_counter(&dp, &h.port, "tx_errors");
        sent + dropped == N as u64 && out == sent
    });
    let dp = dp_stats(&d);
    assert!(settled, "not all packet-outs accounted for: {dp}");
    // With backpressure nothing needs dropping on a healthy switch.
    assert_eq!(dp["bridge"]["packet_out_drops"], 0, "{dp}");
    // And what left our port arrived, or the kernel counted it on the link.
    let tx = port_counter(&dp, &h.port, "tx_packets");
    assert!(
        wait_for(10, || {
            let arrived = sysfs(&h, true, "eth0", "rx_packets") - ns_rx0;
            let lost = sysfs(&h, false, &h.port, "tx_dropped") - host_drop0;
            arrived + lost == tx
        }),
        "sent {tx}, arrived {} + dropped by the link {}",
        sysfs(&h, true, "eth0", "rx_packets") - ns_rx0,
        sysfs(&h, false, &h.port, "tx_dropped") - host_drop0
    );
    let pmd = d.appctl_ok(&["dpif-netdev/pmd-stats-show"]);
    assert!(pmd.contains(&format!("packet-outs: {N} sent")), "{pmd}");
}
