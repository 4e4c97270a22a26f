//! Revalidation with real traffic: idle expiry, table changes applied to
//! existing megaflows (delete and in-place modify), statistics pushed to
//! OpenFlow rules, idle timeouts with FLOW_REMOVED, the flow limit, and
//! consistent updates (flow-mod + barrier, then a packet: it must use the new
//! rule, every time).

mod common;
use common::*;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NET: &str = "10.78.0";

fn ip(i: u8) -> String {
    format!("{NET}.{i}")
}

/// A switch with `n` hosts, explicit-flow friendly (rules replaced by the test).
fn setup(n: u8, extra_dp: &str) -> (Daemon, Vec<Host>) {
    let tag = uniq();
    let hs: Vec<Host> = (1..=n).map(|i| Host::new(&tag, i, NET)).collect();
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let d = Daemon::start(&bridge_config(&format!("rvr{tag}"), &ports, "", extra_dp));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        > n as usize));
    // Static neighbours: no ARP noise in the counters.
    for h in &hs {
        for o in &hs {
            if h.ns != o.ns {
                h.exec(&format!(
                    "ip neigh replace {} lladdr {} dev eth0",
                    o.ip, o.mac
                ));
            }
        }
    }
    (d, hs)
}

fn rx_packets(h: &Host) -> u64 {
    h.exec("cat /sys/class/net/eth0/statistics/rx_packets")
        .1
        .trim()
        .parse()
        .unwrap_or(0)
}

/// A long-lived sender in a host: each line written sends one UDP datagram.
struct Sender(Child);

impl Sender {
    fn new(h: &Host, dst: &str, dport: u16) -> Sender {
        let code = format!(
            "import sys,socket\ns=socket.socket(2,2)\nfor l in sys.stdin:\n    p=int(l) if l.strip() else {dport}\n    s.sendto(b'rvswitchd',('{dst}',p))\n"
        );
        let c = Command::new("ip")
            .args(["netns", "exec", &h.ns, "python3", "-u", "-c", &code])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sender");
        Sender(c)
    }

    fn send(&mut self, port: Option<u16>) {
        let line = port.map(|p| p.to_string()).unwrap_or_default();
        if let Some(i) = self.0.stdin.as_mut() {
            let _ = writeln!(i, "{line}");
            let _ = i.flush();
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A number from the `decisions` line of `upcall/show` (totals since start).
fn upcall_field(d: &Daemon, key: &str) -> u64 {
    let s = d.appctl_ok(&["upcall/show"]);
    let line = if key.contains("over-limit") {
        s.lines()
            .filter(|l| l.contains("handler"))
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        s.lines()
            .find(|l| l.trim_start().starts_with("decisions"))
            .unwrap_or("")
            .to_string()
    };
    line.split(key)
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .find(|x| !x.is_empty())
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn n_dp_flows(d: &Daemon) -> usize {
    d.appctl_ok(&["dpctl/dump-flows"])
        .lines()
        .filter(|l| l.contains("actions:"))
        .count()
}

#[test]
fn idle_megaflows_expire() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "python3"]) {
        return;
    }
    let (d, hs) = setup(2, "max_idle_ms = 300");
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=1,actions=output:2"]);
    let mut s = Sender::new(&hs[0], &ip(2), 9);
    s.send(None);
    assert!(wait_for(10, || d
        .appctl_ok(&["dpctl/dump-flows"])
        .contains("in_port(1)")));
    std::thread::sleep(Duration::from_millis(700));
    d.reval_wait();
    d.reval_wait();
    let flows = d.appctl_ok(&["dpctl/dump-flows"]);
    assert!(!flows.contains("in_port(1)"), "idle flow survived: {flows}");
    assert!(upcall_field(&d, "delete idle ") >= 1);
}

#[test]
fn table_changes_reach_existing_megaflows() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "python3", "ping"]) {
        return;
    }
    let (d, hs) = setup(3, "");
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=1,actions=output:2"]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=2,actions=output:1"]);
    assert!(hs[0].ping(&ip(2), 2), "no ping with explicit flows");
    // A higher-priority drop rule stops the established ping within one round.
    d.ofctl_ok("add-flow", &["priority=100,icmp,actions=drop"]);
    assert!(
        !hs[0].ping(&ip(2), 2),
        "ping still passes after the drop rule"
    );
    d.ofctl_ok("del-flows", &["--strict", "priority=100,icmp"]);
    assert!(hs[0].ping(&ip(2), 2), "ping does not come back");

    // Changing a rule's output moves the traffic, modifying the megaflow in place.
    let mut s = Sender::new(&hs[0], &ip(2), 9);
    let h2_start = rx_packets(&hs[1]);
    for _ in 0..10 {
        s.send(None);
    }
    assert!(
        wait_for(10, || rx_packets(&hs[1]) >= h2_start + 10),
        "UDP did not reach h2"
    );
    // Statistics follow the traffic into the OpenFlow rule.
    d.reval_wait();
    let rules = d.ofctl_ok("dump-flows", &[]);
    let line = rules
        .lines()
        .find(|l| l.contains("in_port=1 "))
        .unwrap_or("")
        .to_string();
    let n: u64 = line
        .split("n_packets=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    assert!(n >= 10, "rule counters did not follow the traffic: {line}");
    let flows_before = n_dp_flows(&d);
    let mods_before = upcall_field(&d, ", modify ");
    let h2_before = rx_packets(&hs[1]);
    let h3_before = rx_packets(&hs[2]);
    d.ofctl_ok("mod-flows", &["in_port=1,actions=output:3"]);
    for _ in 0..10 {
        s.send(None);
    }
    assert!(
        wait_for(10, || rx_packets(&hs[2]) >= h3_before + 10),
        "traffic did not move to port 3"
    );
    assert_eq!(
        rx_packets(&hs[1]),
        h2_before,
        "traffic still reaches port 2"
    );
    assert!(
        upcall_field(&d, ", modify ") > mods_before,
        "{}",
        d.appctl_ok(&["upcall/show"])
    );
    assert_eq!(
        n_dp_flows(&d),
        flows_before,
        "the megaflow was replaced, not modified"
    );
}

#[test]
fn idle_timeout_expires_only_when_idle_and_reports_counters() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "python3", "stdbuf"]) {
        return;
    }
    let (d, hs) = setup(2, "");
    let _ = std::fs::create_dir_all("/var/run/openvswitch");
    let out_path = d.dir.join("monitor.out");
    let out = std::fs::File::create(&out_path).expect("file");
    let target = format!("unix:{}", d.mgmt.display());
    let mut mon = Command::new("stdbuf")
        .args([
            "-oL",
            "-eL",
            "ovs-ofctl",
            "-O",
            "OpenFlow13",
            "monitor",
            &target,
        ])
        .stdout(out.try_clone().expect("dup"))
        .stderr(out)
        .spawn()
        .expect("monitor");
    std::thread::sleep(Duration::from_millis(500));
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok(
        "add-flow",
        &["priority=100,in_port=1,idle_timeout=2,send_flow_rem,actions=output:2"],
    );
    let mut s = Sender::new(&hs[0], &ip(2), 9);
    // Traffic every 0.4 s for 4 s: longer than the idle timeout, never idle.
    for _ in 0..10 {
        s.send(None);
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(
        d.ofctl_ok("dump-flows", &[]).contains("idle_timeout=2"),
        "rule expired while in use"
    );
    assert!(
        wait_for(10, || !d
            .ofctl_ok("dump-flows", &[])
            .contains("idle_timeout=2")),
        "rule never expired"
    );
    let mut text = String::new();
    let seen = wait_for(5, || {
        text = std::fs::read_to_string(&out_path).unwrap_or_default();
        text.contains("OFPT_FLOW_REMOVED")
    });
    let _ = mon.kill();
    let _ = mon.wait();
    assert!(seen, "no FLOW_REMOVED: {text}");
    assert!(text.contains("reason=idle"), "{text}");
    let pkts: u64 = text
        .split("pkts")
        .nth(1)
        .and_then(|r| {
            r.split(|c: char| !c.is_ascii_digit())
                .find(|x| !x.is_empty())
        })
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    assert!(pkts >= 10, "FLOW_REMOVED counters: {text}");
}

#[test]
fn flow_limit_caps_a_flood_of_new_flows() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "python3"]) {
        return;
    }
    let (d, hs) = setup(2, "flow_limit = 100");
    d.ofctl_ok("del-flows", &[]);
    // The tp_dst rule makes every UDP megaflow match the port exactly.
    d.ofctl_ok("add-flow", &["priority=20,udp,tp_dst=7,actions=drop"]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=1,actions=output:2"]);
    let code = format!(
        "import socket\ns=socket.socket(2,2)\nfor i in range(3):\n    for p in range(1000,4000):\n        s.sendto(b'x',('{}',p))\n",
        ip(2)
    );
    let (ok, out) = hs[0].exec(&format!("python3 -c \"{code}\""));
    assert!(ok, "{out}");
    let mut max_seen = 0;
    for _ in 0..10 {
        max_seen = max_seen.max(n_dp_flows(&d));
        std::thread::sleep(Duration::from_millis(50));
    }
    d.reval_wait();
    max_seen = max_seen.max(n_dp_flows(&d));
    assert!(max_seen <= 2 * 100 + 64, "flows not capped: {max_seen}");
    let show = d.appctl_ok(&["upcall/show"]);
    assert!(show.contains("over-limit"), "{show}");
    assert!(upcall_field(&d, "over-limit ") > 0, "{show}");
    let rss = d.stats_json()["process"]["rss_bytes"].as_u64().unwrap_or(0);
    assert!(rss < 300 << 20, "RSS {rss} bytes");
}

#[test]
fn flow_mod_and_barrier_are_consistent_with_the_fast_path() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "python3"]) {
        return;
    }
    let (d, hs) = setup(3, "");
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=1,udp,actions=output:2"]);
    let mut s = Sender::new(&hs[0], &ip(2), 9);
    s.send(None);
    assert!(wait_for(10, || rx_packets(&hs[1]) >= 1));
    let mut out = 2u8;
    let iterations = 200;
    for i in 0..iterations {
        out = if out == 2 { 3 } else { 2 };
        let before = [rx_packets(&hs[1]), rx_packets(&hs[2])];
        // mod-flows waits for the barrier reply; the packet goes out right after.
        d.ofctl_ok(
            "mod-flows",
            &[&format!("in_port=1,udp,actions=output:{out}")],
        );
        s.send(None);
        let (want, other) = if out == 2 { (1usize, 2usize) } else { (2, 1) };
        assert!(
            wait_for(5, || rx_packets(&hs[want]) > before[want - 1]),
            "iteration {i}: packet never reached port {out}"
        );
        let now_other = rx_packets(&hs[other]);
        assert_eq!(
            now_other,
            before[other - 1],
            "iteration {i}: packet left by the old port after flow-mod + barrier\n{}\n{}\n{}",
            d.appctl_ok(&["upcall/show"]),
            d.appctl_ok(&["dpctl/dump-flows"]),
            d.appctl_ok(&["coverage/show"])
        );
    }
}

/// A `coverage/show` total.
fn coverage(d: &Daemon, name: &str) -> u64 {
    d.appctl_ok(&["coverage/show"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no coverage counter {name}"))
}

#[test]
fn table_changes_wake_the_revalidator_only_when_megaflows_exist() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "python3"]) {
        return;
    }
    let (d, hs) = setup(2, "");
    d.ofctl_ok("del-flows", &[]);
    // No megaflow yet: each flow-mod changes the tables without a round.
    let idle0 = coverage(&d, "tables_changed_idle");
    for i in 0..5 {
        d.ofctl_ok(
            "add-flow",
            &[&format!("priority=5,udp,tp_dst={},actions=drop", 100 + i)],
        );
    }
    let idle1 = coverage(&d, "tables_changed_idle");
    assert!(idle1 >= idle0 + 5, "{idle0} -> {idle1}");
    // With a megaflow, a change must reach it (and is not counted as idle).
    d.ofctl_ok("add-flow", &["priority=10,in_port=1,udp,actions=output:2"]);
    let mut s = Sender::new(&hs[0], &ip(2), 9);
    s.send(None);
    assert!(wait_for(10, || n_dp_flows(&d) > 0));
    let idle2 = coverage(&d, "tables_changed_idle");
    d.ofctl_ok("mod-flows", &["in_port=1,udp,actions=drop"]);
    assert_eq!(coverage(&d, "tables_changed_idle"), idle2);
    let before = rx_packets(&hs[1]);
    s.send(None);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        rx_packets(&hs[1]),
        before,
        "the old megaflow still forwards"
    );
}
