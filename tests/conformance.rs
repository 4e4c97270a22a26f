//! OpenFlow 1.3 conformance with real clients and real frames (issue 10 §1):
//! flows are added with `ovs-ofctl -O OpenFlow13` (or, for what `ovs-ofctl`
//! cannot express — copy-TTL, PBB, weighted ALL groups — with hand-encoded
//! OpenFlow messages on a raw session), frames are sent with scapy from one
//! network namespace, captured with tcpdump in another, and decoded with
//! tshark, which also checks the checksums. See docs/CONFORMANCE.md.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NET: &str = "10.78.0";
const PY: &str = "/usr/bin/python3";

/// A bridge with two hosts, no flows.
struct Rig {
    d: Daemon,
    h1: Host,
    h2: Host,
}

fn rig() -> Option<Rig> {
    if !require(true, &["ovs-ofctl", "tcpdump", "tshark", PY]) {
        return None;
    }
    let (ok, _) = sh_try(&format!("{PY} -c 'import scapy.all'"));
    if !ok {
        assert!(
            std::env::var("RVSWITCHD_REQUIRE_ALL").is_err(),
            "this test needs python3-scapy"
        );
        eprintln!("SKIPPED: python3-scapy is not installed");
        return None;
    }
    let tag = uniq();
    let h1 = Host::new(&tag, 1, NET);
    let h2 = Host::new(&tag, 2, NET);
    let d = Daemon::start(&bridge_config(
        &format!("rvc{tag}"),
        &[h1.port.as_str(), h2.port.as_str()],
        "",
        "",
    ));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        >= 3));
    d.ofctl_ok("del-flows", &[]);
    Some(Rig { d, h1, h2 })
}

/// A running tcpdump in a host's namespace.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(h: &Host, dir: &std::path::Path, name: &str) -> Capture {
        let file = dir.join(format!("{name}.pcap"));
        let err = dir.join(format!("{name}.err"));
        let child = Command::new("ip")
            .args([
                "netns", "exec", &h.ns, "tcpdump", "-i", "eth0", "-U", "-n", "-w",
            ])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("tcpdump");
        assert!(
            wait_for(10, || std::fs::read_to_string(&err)
                .unwrap_or_default()
                .contains("listening on")),
            "tcpdump did not start"
        );
        Capture { child, file }
    }

    /// Decodes the capture with tshark: one line per packet matching
    /// `filter`, with the `fields` tab-separated.
    fn read(&self, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
        let mut args = vec![
            "-r".to_string(),
            self.file.display().to_string(),
            "-o".into(),
            "ip.check_checksum:TRUE".into(),
            "-o".into(),
            "udp.check_checksum:TRUE".into(),
            "-Y".into(),
            filter.into(),
            "-T".into(),
            "fields".into(),
        ];
        for f in fields {
            args.push("-e".into());
            args.push((*f).into());
        }
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let (ok, out, err) = run("tshark", &a);
        // tshark may read a packet record tcpdump is still writing; a
        // truncated last record is not a failure while the capture runs.
        assert!(ok || err.contains("cut short"), "tshark failed: {err}");
        out.lines()
            .map(|l| l.split('\t').map(|s| s.to_string()).collect())
            .collect()
    }

    /// Waits (at most 5 s: the switch may be translating a first miss on a
    /// loaded machine) until `want` packets matching `filter` were captured,
    /// then stops the capture and decodes it. A case that expects nothing
    /// waits the whole bound.
    fn decode(mut self, filter: &str, fields: &[&str], want: usize) -> Vec<Vec<String>> {
        wait_for(5, || self.read(filter, fields).len() >= want);
        std::thread::sleep(Duration::from_millis(100));
        // SAFETY: SIGINT to our own child lets tcpdump flush the file.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let _ = self.child.wait();
        self.read(filter, fields)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `frame` (a scapy expression) from `h`'s eth0, `count` times.
fn send(h: &Host, frame: &str, count: u32) {
    let py = format!(
        "from scapy.all import *\nfrom scapy.contrib.mpls import MPLS\nsendp({frame}, iface='eth0', count={count}, verbose=0)\n"
    );
    let script = std::env::temp_dir().join(format!("rvs-send-{}.py", uniq()));
    std::fs::write(&script, py).expect("script");
    let (ok, out) = h.exec(&format!("{PY} {}", script.display()));
    let _ = std::fs::remove_file(&script);
    assert!(ok, "scapy failed: {out}");
}

fn macs(r: &Rig) -> String {
    format!("Ether(src='{}', dst='{}')", r.h1.mac, r.h2.mac)
}

/// Sends from h1 and decodes what h2 received.
fn through(r: &Rig, name: &str, frame: &str, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    const COUNT: u32 = 3;
    let cap = Capture::start(&r.h2, &r.d.dir, name);
    send(&r.h1, frame, COUNT);
    cap.decode(filter, fields, COUNT as usize)
}

// ---- raw OpenFlow for what ovs-ofctl cannot send ------------------------------------

fn oxm(field: u8, value: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 0x00, field << 1, value.len() as u8];
    v.extend_from_slice(value);
    v
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

/// An action of `ty` with `body` (padded to 8).
fn action(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut v = ty.to_be_bytes().to_vec();
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(body);
    pad8(&mut v);
    let len = v.len() as u16;
    v[2..4].copy_from_slice(&len.to_be_bytes());
    v
}

fn output(port: u32) -> Vec<u8> {
    let mut b = port.to_be_bytes().to_vec();
    b.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0, 0, 0]);
    action(0, &b)
}

/// OFPT_FLOW_MOD ADD in `table` with the OXM `fields` and one apply-actions
/// instruction (plus goto `goto` when given).
fn flow_mod(table: u8, fields: &[Vec<u8>], actions: &[Vec<u8>], goto: Option<u8>) -> Vec<u8> {
    let mut m = vec![4, 14, 0, 0, 0, 0, 0, 9];
    m.extend_from_slice(&[0; 16]); // cookie, cookie mask
    m.extend_from_slice(&[table, 0, 0, 0, 0, 0, 0, 10]); // table, ADD, timeouts, priority
    m.extend_from_slice(&0xffff_ffffu32.to_be_bytes()); // buffer
    m.extend_from_slice(&0xffff_ffffu32.to_be_bytes()); // out_port
    m.extend_from_slice(&0xffff_ffffu32.to_be_bytes()); // out_group
    m.extend_from_slice(&[0, 0, 0, 0]); // flags, pad
    let body: Vec<u8> = fields.concat();
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&((4 + body.len()) as u16).to_be_bytes());
    m.extend_from_slice(&body);
    pad8(&mut m);
    let acts: Vec<u8> = actions.concat();
    m.extend_from_slice(&[0, 4]);
    m.extend_from_slice(&((8 + acts.len()) as u16).to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&acts);
    if let Some(t) = goto {
        m.extend_from_slice(&[0, 1, 0, 8, t, 0, 0, 0]);
    }
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

/// OFPT_GROUP_MOD ADD of `ty` with buckets `(weight, actions)`.
fn group_mod(id: u32, ty: u8, buckets: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = vec![4, 15, 0, 0, 0, 0, 0, 9, 0, 0, ty, 0];
    m.extend_from_slice(&id.to_be_bytes());
    for (w, a) in buckets {
        m.extend_from_slice(&((16 + a.len()) as u16).to_be_bytes());
        m.extend_from_slice(&w.to_be_bytes());
        m.extend_from_slice(&0xffff_ffffu32.to_be_bytes());
        m.extend_from_slice(&0xffff_ffffu32.to_be_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(a);
    }
    let len = m.len() as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
    m
}

/// Sends one message and a barrier; returns the OFPT_ERROR (type, code) the
/// message got, if any.
fn raw_request(d: &Daemon, msg: &[u8]) -> Option<(u16, u16)> {
    let mut s = UnixStream::connect(&d.mgmt).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).expect("hello");
    s.write_all(msg).expect("request");
    s.write_all(&[4, 20, 0, 8, 0, 0, 0, 99]).expect("barrier");
    let mut err = None;
    loop {
        let mut h = [0u8; 8];
        s.read_exact(&mut h).expect("reply header");
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(8)];
        s.read_exact(&mut body).expect("reply body");
        match h[1] {
            1 if body.len() >= 4 => {
                err = Some((
                    u16::from_be_bytes([body[0], body[1]]),
                    u16::from_be_bytes([body[2], body[3]]),
                ))
            }
            21 => return err,
            _ => {}
        }
    }
}

const ETH_PBB: [u8; 2] = [0x88, 0xe7];
/// tshark's `*.checksum.status` value for a verified, correct checksum.
const CSUM_GOOD: &str = "1";

// ---- the cases ----------------------------------------------------------------------

#[test]
fn mpls_push_pop_ttl_and_inner_match_on_the_wire() {
    let Some(r) = rig() else { return };
    let d = &r.d;
    let ip = format!("{}/IP(src='{NET}.1', dst='{NET}.2', ttl=64)", macs(&r));

    // push_mpls + set label: one entry, BoS, TTL copied from IP, IP intact.
    d.ofctl_ok(
        "add-flow",
        &["in_port=1,ip,actions=push_mpls:0x8847,set_field:100->mpls_label,output:2"],
    );
    let got = through(
        &r,
        "push",
        &format!("{ip}/UDP(sport=1000, dport=53)/Raw(b'x'*20)"),
        "mpls",
        &[
            "eth.type",
            "mpls.label",
            "mpls.bottom",
            "mpls.ttl",
            "mpls.exp",
            "ip.dst",
            "ip.checksum.status",
        ],
    );
    assert!(!got.is_empty(), "nothing received");
    for p in &got {
        assert_eq!(p[0], "0x8847", "{got:?}");
        assert_eq!(&p[1..5], &["100", "1", "64", "0"], "{got:?}");
        assert_eq!(p[5], format!("{NET}.2"));
        assert_eq!(p[6], CSUM_GOOD, "IPv4 checksum not good: {got:?}");
    }

    // An MPLS frame: match the label, dec_mpls_ttl, set TC, forward.
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok(
        "add-flow",
        &["in_port=1,mpls,mpls_label=16,actions=dec_mpls_ttl,set_field:5->mpls_tc,output:2"],
    );
    let mpls = format!(
        "{}/MPLS(label=16, s=1, ttl=9)/IP(src='{NET}.1', dst='{NET}.2', ttl=64)/UDP(dport=53)/Raw(b'y'*20)",
        macs(&r).replace(")", ", type=0x8847)")
    );
    let got = through(
        &r,
        "mplsttl",
        &mpls,
        "mpls",
        &["mpls.label", "mpls.ttl", "mpls.exp"],
    );
    assert!(!got.is_empty(), "nothing received");
    assert!(got.iter().all(|p| p == &["16", "8", "5"]), "{got:?}");

    // pop_mpls then match the inner IPv4/UDP headers in table 1 (the class of
    // cases that needs the payload in the flow key), with dec_ttl.
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok(
        "add-flow",
        &["in_port=1,mpls,actions=pop_mpls:0x0800,goto_table:1"],
    );
    d.ofctl_ok(
        "add-flow",
        &[&format!(
            "table=1,priority=10,udp,nw_dst={NET}.2,tp_dst=53,actions=dec_ttl,output:2"
        )],
    );
    d.ofctl_ok("add-flow", &["table=1,priority=0,actions=drop"]);
    let got = through(
        &r,
        "pop",
        &mpls,
        "ip",
        &["eth.type", "ip.ttl", "udp.dstport", "ip.checksum.status"],
    );
    assert!(
        !got.is_empty(),
        "nothing received:\n{}",
        d.appctl_ok(&["dpctl/dump-flows"])
    );
    assert!(
        got.iter().all(|p| p == &["0x0800", "63", "53", CSUM_GOOD]),
        "{got:?}"
    );
    // Another inner port misses table 1's rule: dropped.
    let other = mpls.replace("dport=53", "dport=54");
    let got = through(&r, "popmiss", &other, "ip or mpls", &["eth.type"]);
    assert!(got.is_empty(), "{got:?}");
    let flows = d.appctl_ok(&["dpctl/dump-flows"]);
    assert!(flows.contains("mpls(") && flows.contains("udp("), "{flows}");
}

#[test]
fn nd_target_set_field_is_applied() {
    let Some(r) = rig() else { return };
    let d = &r.d;
    d.ofctl_ok(
        "add-flow",
        &["in_port=1,icmp6,icmp_type=135,actions=set_field:2001:db8::99->nd_target,output:2"],
    );
    let ns = format!(
        "{}/IPv6(src='fe80::1', dst='ff02::1:ff00:2')/ICMPv6ND_NS(tgt='2001:db8::2')/ICMPv6NDOptSrcLLAddr(lladdr='{}')",
        macs(&r),
        r.h1.mac
    );
    let got = through(
        &r,
        "nd",
        &ns,
        "icmpv6.type == 135",
        &["icmpv6.nd.ns.target_address", "icmpv6.checksum.status"],
    );
    assert!(!got.is_empty(), "nothing received");
    assert!(
        got.iter().all(|p| p == &["2001:db8::99", CSUM_GOOD]),
        "{got:?}"
    );
}

#[test]
fn pbb_and_copy_ttl_beyond_ovs() {
    let Some(r) = rig() else { return };
    let d = &r.d;
    let in_port = oxm(0, &1u32.to_be_bytes());
    // push_pbb, set I-SID, output: OVS refuses all three of these actions.
    let fm = flow_mod(
        0,
        &[in_port.clone(), oxm(5, &[0x08, 0x00])],
        &[
            action(26, &ETH_PBB),
            action(25, &oxm(37, &[0x12, 0x34, 0x56])),
            output(2),
        ],
        None,
    );
    assert_eq!(raw_request(d, &fm), None);
    let ip = format!(
        "{}/IP(src='{NET}.1', dst='{NET}.2', ttl=64)/UDP(dport=53)/Raw(b'z'*20)",
        macs(&r)
    );
    let got = through(
        &r,
        "pushpbb",
        &ip,
        "ieee8021ah",
        &["ieee8021ah.isid", "ip.dst"],
    );
    assert!(!got.is_empty(), "nothing received");
    // tshark prints the I-SID in decimal: 0x123456.
    let want = [0x12_3456.to_string(), format!("{NET}.2")];
    assert!(got.iter().all(|p| p == &want), "{got:?}");

    // Match pbb_isid, pop_pbb, and match the customer frame in table 1.
    d.ofctl_ok("del-flows", &[]);
    let fm = flow_mod(
        0,
        &[
            in_port.clone(),
            oxm(5, &ETH_PBB),
            oxm(37, &[0x00, 0x01, 0x23]),
        ],
        &[action(27, &[])],
        Some(1),
    );
    assert_eq!(raw_request(d, &fm), None);
    d.ofctl_ok(
        "add-flow",
        &[&format!("table=1,udp,nw_dst={NET}.2,actions=output:2")],
    );
    let pbb = format!(
        "Ether(src='0e:00:00:00:00:01', dst='0e:00:00:00:00:02', type=0x88e7)/Raw(bytes.fromhex('00000123'))/{}/IP(src='{NET}.1', dst='{NET}.2')/UDP(dport=53)/Raw(b'p'*20)",
        macs(&r)
    );
    let got = through(
        &r,
        "poppbb",
        &pbb,
        "udp",
        &["eth.type", "eth.dst", "ip.dst"],
    );
    assert!(!got.is_empty(), "nothing received");
    assert!(
        got.iter()
            .all(|p| p == &["0x0800", r.h2.mac.as_str(), &format!("{NET}.2")]),
        "{got:?}"
    );

    // copy_ttl_in: the MPLS TTL goes into the IP header under it.
    d.ofctl_ok("del-flows", &[]);
    let fm = flow_mod(
        0,
        &[in_port, oxm(5, &[0x88, 0x47])],
        &[action(12, &[]), action(20, &[0x08, 0x00]), output(2)],
        None,
    );
    assert_eq!(raw_request(d, &fm), None);
    let mpls = format!(
        "{}/MPLS(label=16, s=1, ttl=7)/IP(src='{NET}.1', dst='{NET}.2', ttl=64)/UDP(dport=53)/Raw(b'y'*20)",
        macs(&r).replace(")", ", type=0x8847)")
    );
    let got = through(
        &r,
        "copyttl",
        &mpls,
        "ip",
        &["ip.ttl", "ip.checksum.status"],
    );
    assert!(!got.is_empty(), "nothing received");
    assert!(got.iter().all(|p| p == &["7", CSUM_GOOD]), "{got:?}");
}

#[test]
fn refusals_carry_the_right_codes() {
    let Some(r) = rig() else { return };
    let d = &r.d;
    // INDIRECT with two buckets (ovs-ofctl refuses to send it):
    // OFPGMFC_INVALID_GROUP (6, 1).
    let gm = group_mod(1, 2, &[(0, output(1)), (0, output(2))]);
    assert_eq!(raw_request(d, &gm), Some((6, 1)));
    // Weights on ALL/INDIRECT (ovs-ofctl refuses to send them): INVALID_GROUP (6, 1).
    for ty in [0u8, 2] {
        let gm = group_mod(2, ty, &[(5, output(1))]);
        assert_eq!(raw_request(d, &gm), Some((6, 1)), "type {ty}");
    }
    // A group naming itself: OFPGMFC_LOOP (6, 7).
    let gm = group_mod(3, 0, &[(0, action(22, &3u32.to_be_bytes()))]);
    assert_eq!(raw_request(d, &gm), Some((6, 7)));
    // set_field eth_type: BAD_ACTION / BAD_SET_TYPE (2, 13).
    let fm = flow_mod(
        0,
        &[oxm(5, &[0x08, 0x00])],
        &[action(25, &oxm(5, &[0x86, 0xdd]))],
        None,
    );
    assert_eq!(raw_request(d, &fm), Some((2, 13)));
    // push_mpls with a non-MPLS ethertype: BAD_ACTION / BAD_ARGUMENT (2, 5).
    let fm = flow_mod(0, &[], &[action(19, &[0x08, 0x00])], None);
    assert_eq!(raw_request(d, &fm), Some((2, 5)));
    // pop_mpls on a match that is not MPLS: MATCH_INCONSISTENT (2, 10).
    // (ovs-ofctl checks this one itself and refuses to send it.)
    let fm = flow_mod(
        0,
        &[oxm(5, &[0x08, 0x00])],
        &[action(20, &[0x08, 0x00])],
        None,
    );
    assert_eq!(raw_request(d, &fm), Some((2, 10)));
    // A select group with weights is fine, and shows in dump-groups.
    d.ofctl_ok(
        "add-group",
        &["group_id=4,type=select,bucket=weight:1,output:1,bucket=weight:3,output:2"],
    );
    assert!(d.ofctl_ok("dump-groups", &[]).contains("weight:3"));
}
