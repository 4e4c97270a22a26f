//! Packets through real interfaces: hosts in network namespaces on veth pairs,
//! `ping` and `iperf3` through the switch; NORMAL learning, explicit flows,
//! VLAN isolation, controllers (os-ken with our learning switch app, and
//! ovs-testcontroller), ports removed and added under traffic.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

const NET: &str = "10.77.0";

fn hosts(tag: &str, n: u8) -> Vec<Host> {
    (1..=n).map(|i| Host::new(tag, i, NET)).collect()
}

fn ip(i: u8) -> String {
    format!("{NET}.{i}")
}

#[test]
fn three_hosts_with_normal_switching() {
    normal_switching("system");
}

/// The same traffic through AF_XDP ports (issue 13).
#[test]
fn three_hosts_with_normal_switching_on_afxdp_ports() {
    normal_switching("afxdp");
}

/// Ping among three hosts, TCP and 64-byte UDP between two, NORMAL
/// switching, with every port of type `port_type`.
fn normal_switching(port_type: &str) {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping", "iperf3"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 3);
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let d = Daemon::start(&bridge_config_typed(
        &format!("rvb{tag}"),
        &ports,
        port_type,
        "",
        "",
    ));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        >= 4));
    for a in 0..3u8 {
        for b in 0..3u8 {
            if a != b {
                assert!(
                    hs[a as usize].ping(&ip(b + 1), 2),
                    "h{} cannot ping h{}\n{}",
                    a + 1,
                    b + 1,
                    d.log_text()
                );
            }
        }
    }
    // ARP resolved through the switch.
    let (_, neigh) = hs[0].exec("ip neigh show");
    assert!(
        neigh.contains(&ip(2)) && neigh.contains(&hs[1].mac),
        "{neigh}"
    );
    // The MAC table has all three hosts.
    let fdb = d.appctl_ok(&["fdb/show", &format!("rvb{tag}")]);
    for h in &hs {
        assert!(fdb.contains(&h.mac), "{} missing from fdb:\n{fdb}", h.mac);
    }
    // TCP through the switch.
    let (j, out) = iperf3(&hs[1], &hs[0], "-t 3");
    let bps = j["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(bps > 0.0, "no TCP throughput: {out}");
    eprintln!(
        "TCP through {port_type} ports (debug or release build): {:.2} Gbit/s",
        bps / 1e9
    );
    // Minimum-size UDP frames (18 bytes of payload: 60 on the wire).
    let (j, out) = iperf3(&hs[1], &hs[0], "-u -l 18 -b 20M -t 1");
    let sent = j["end"]["sum"]["packets"].as_u64().unwrap_or(0);
    let lost = j["end"]["sum"]["lost_packets"].as_u64().unwrap_or(sent);
    assert!(
        sent > 0 && lost < sent,
        "no 64-byte UDP frame arrived: {out}"
    );
    eprintln!("64-byte UDP through {port_type} ports: {lost} of {sent} lost");
    // The ports are what the config asked for.
    let log = d.log_text();
    assert_eq!(
        log.contains("AF_XDP socket on queue 0"),
        port_type == "afxdp",
        "{log}"
    );
    // Inspection shows what a user of OVS expects.
    let flows = d.appctl_ok(&["dpctl/dump-flows"]);
    assert!(
        flows.contains("actions:") && flows.contains("in_port("),
        "{flows}"
    );
    let tr = d.appctl_ok(&[
        "ofproto/trace",
        &format!("rvb{tag}"),
        &format!("in_port=1,dl_src={},dl_dst={}", hs[0].mac, hs[1].mac),
    ]);
    assert!(tr.contains("Datapath actions: 2"), "{tr}");
    assert!(tr.contains("Megaflow:"), "{tr}");
    let pmd = d.appctl_ok(&["dpif-netdev/pmd-stats-show"]);
    assert!(pmd.contains("emc hits"), "{pmd}");
    let up = d.appctl_ok(&["upcall/show"]);
    assert!(up.contains("(current "), "{up}");
}

/// Runs one iperf3 test with `args` from `client` to a one-shot server on
/// `server`; its JSON and text.
fn iperf3(server: &Host, client: &Host, args: &str) -> (serde_json::Value, String) {
    let (ok, _) = server.exec("iperf3 -s -D -1");
    assert!(ok);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, out) = client.exec(&format!("iperf3 -c {} {args} -J", server.ip));
    assert!(ok, "iperf3 {args} failed: {out}");
    (serde_json::from_str(&out).expect("iperf3 json"), out)
}

#[test]
fn explicit_flows_restrict_and_vlans_isolate() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 3);
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let d = Daemon::start(&bridge_config(&format!("rvb{tag}"), &ports, "", ""));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        >= 4));
    d.ofctl_ok("del-flows", &[]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=1,actions=output:2"]);
    d.ofctl_ok("add-flow", &["priority=10,in_port=2,actions=output:1"]);
    assert!(hs[0].ping(&ip(2), 2), "h1 cannot reach h2");
    assert!(!hs[0].ping(&ip(3), 2), "h1 reached h3 without a flow");
    assert!(!hs[2].ping(&ip(1), 1), "h3 reached h1 without a flow");

    // Access VLANs: h1 and h2 in VLAN 10, h3 in VLAN 20.
    let tag2 = uniq();
    let hs2 = hosts(&tag2, 3);
    let mut cfg = bridge_config(&format!("rvv{tag2}"), &[], "", "");
    for (i, (h, v)) in hs2.iter().zip([10, 10, 20]).enumerate() {
        cfg.push_str(&format!(
            "\n[[bridge.port]]\nname = \"{}\"\nofport = {}\nvlan = {v}\n",
            h.port,
            i + 1
        ));
    }
    let d2 = Daemon::start(&cfg);
    assert!(wait_for(10, || d2
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        >= 4));
    assert!(hs2[0].ping(&ip(2), 2), "same VLAN must talk");
    assert!(!hs2[0].ping(&ip(3), 2), "different VLANs must not talk");
    let fdb = d2.appctl_ok(&["fdb/show", &format!("rvv{tag2}")]);
    assert!(fdb.contains("   10  "), "{fdb}");
}

/// Issue 13: a pipeline that tags on ingress (table 0) and untags on
/// egress (tables 1 and 2) changes nothing in net, so the megaflows the
/// datapath runs are plain outputs — not
/// `push_vlan(vid=0,...),set(vlan_tci=0xc8/0xfff),pop_vlan,2` — and
/// `ofproto/trace` says the same; traffic flows.
#[test]
fn tag_untag_pipeline_installs_only_outputs() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 2);
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let br = format!("rvt{tag}");
    let d = Daemon::start(&bridge_config(&br, &ports, "", ""));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        >= 3));
    d.ofctl_ok("del-flows", &[]);
    for (inp, table) in [(1, 1), (2, 2)] {
        d.ofctl_ok(
            "add-flow",
            &[&format!(
                "table=0,priority=10,in_port={inp},actions=push_vlan:0x8100,set_field:4296->vlan_vid,goto_table:{table}"
            )],
        );
    }
    d.ofctl_ok(
        "add-flow",
        &["table=1,dl_vlan=200,actions=pop_vlan,output:2"],
    );
    d.ofctl_ok(
        "add-flow",
        &["table=2,dl_vlan=200,actions=pop_vlan,output:1"],
    );
    assert!(
        hs[0].ping(&ip(2), 2),
        "h1 cannot reach h2\n{}",
        d.log_text()
    );
    let flows = d.appctl_ok(&["dpctl/dump-flows"]);
    eprintln!("{flows}");
    assert!(
        flows.contains("actions:2") && flows.contains("actions:1"),
        "{flows}"
    );
    for a in ["push_vlan", "pop_vlan", "set("] {
        assert!(!flows.contains(a), "{a} in\n{flows}");
    }
    let tr = d.appctl_ok(&[
        "ofproto/trace",
        &br,
        &format!("in_port=1,dl_src={},dl_dst={}", hs[0].mac, hs[1].mac),
    ]);
    assert!(tr.contains("Datapath actions: 2\n"), "{tr}");
}

fn secure_config(tag: &str, ports: &[&str], controller_port: u16) -> String {
    bridge_config(
        &format!("rvs{tag}"),
        ports,
        &format!("fail_mode = \"secure\"\ncontrollers = [\"tcp:127.0.0.1:{controller_port}\"]\ninactivity_probe_ms = 2000\n"),
        "",
    )
}

#[test]
fn os_ken_learning_switch_as_the_only_controller() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping", "python3"]) {
        return;
    }
    if !have_osken() {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 2);
    let cport = free_port();
    let log = std::env::temp_dir().join(format!("osken-{tag}.log"));
    let _ = std::fs::remove_file(&log);
    let dir = tests_dir().join("controllers");
    let ctl = Proc(
        Command::new("python3")
            .arg(dir.join("osken_runner.py"))
            .arg(cport.to_string())
            .arg(dir.join("learning_switch.py"))
            .env("RVS_OSKEN_LOG", &log)
            .env("PYTHONWARNINGS", "ignore")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("os-ken"),
    );
    assert!(
        wait_for(30, || std::net::TcpStream::connect(("127.0.0.1", cport))
            .is_ok()),
        "os-ken did not listen"
    );
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let d = Daemon::start(&secure_config(&tag, &ports, cport));
    let note = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(30, || note().contains("table-miss installed")),
        "no handshake: {}\n{}",
        note(),
        d.log_text()
    );
    assert!(note().contains("n_tables=254"), "{}", note());
    assert!(wait_for(10, || d
        .ofctl_ok("dump-flows", &[])
        .contains("actions=CONTROLLER:65535")));
    assert!(
        wait_for(10, || note().contains(&hs[0].port)
            || note().contains("port 1 ")),
        "no port descs: {}",
        note()
    );
    // Hosts talk through PACKET_IN / FLOW_MOD / PACKET_OUT.
    assert!(
        hs[0].ping(&ip(2), 3),
        "ping through os-ken failed\n{}\n{}",
        note(),
        d.log_text()
    );
    assert!(note().contains("packet_in"), "{}", note());
    assert!(wait_for(10, || d
        .ofctl_ok("dump-flows", &[])
        .contains("priority=1,in_port=")));
    let conns = d.appctl_ok(&["ofctl/show-connections"]);
    assert!(conns.contains("\"controller\": true"), "{conns}");
    drop(ctl);
    // Secure: losing the controller keeps the flows, never falls back to NORMAL.
    std::thread::sleep(Duration::from_secs(3));
    assert!(d
        .ofctl_ok("dump-flows", &[])
        .contains("actions=CONTROLLER:65535"));
    let st = d.stats_json();
    assert_eq!(
        st["coverage"]["ofconn_connected"].as_u64(),
        Some(1),
        "{}",
        st["coverage"]
    );
}

#[test]
fn ovs_testcontroller_drives_the_switch() {
    if !require(
        true,
        &["ovs-appctl", "ovs-ofctl", "ping", "ovs-testcontroller"],
    ) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 2);
    let cport = free_port();
    let _ = std::fs::create_dir_all("/var/run/openvswitch");
    let _ctl = Proc(
        Command::new("ovs-testcontroller")
            .arg(format!("ptcp:{cport}:127.0.0.1"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ovs-testcontroller"),
    );
    assert!(wait_for(10, || std::net::TcpStream::connect((
        "127.0.0.1",
        cport
    ))
    .is_ok()));
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let d = Daemon::start(&secure_config(&tag, &ports, cport));
    assert!(wait_for(20, || d
        .appctl_ok(&["ofctl/show-connections"])
        .contains("\"negotiated\": true")));
    assert!(
        wait_for(20, || hs[0].ping(&ip(2), 1)),
        "ping through ovs-testcontroller failed\n{}",
        d.log_text()
    );
    assert!(
        d.stats_json()["coverage"]["packet_in"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn controller_loss_reconnects_with_backoff_and_standalone_falls_back() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 2);
    // Nobody listens on this port: the switch keeps trying, with backoff.
    let cport = free_port();
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let cfg = bridge_config(
        &format!("rvf{tag}"),
        &ports,
        &format!("fail_mode = \"standalone\"\ncontrollers = [\"tcp:127.0.0.1:{cport}\"]\ninactivity_probe_ms = 1000\nmax_backoff_ms = 4000\n"),
        "",
    );
    let d = Daemon::start(&cfg);
    // Standalone with no controller connected for 3 probe intervals: NORMAL.
    assert!(
        wait_for(15, || hs[0].ping(&ip(2), 1)),
        "no fail-open NORMAL switching\n{}",
        d.log_text()
    );
    let conns = d.appctl_ok(&["ofctl/show-connections"]);
    let v: serde_json::Value = serde_json::from_str(&conns).expect("json");
    let c = &v["controllers"][0];
    assert!(c["attempts"].as_u64().unwrap_or(0) >= 2, "{conns}");
    assert!(c["backoff_ms"].as_u64().unwrap_or(0) >= 2000, "{conns}");
    assert_eq!(v["fail_open"], true, "{conns}");
    // A controller appears: the switch connects and leaves fail-open.
    let l = std::net::TcpListener::bind(("127.0.0.1", cport)).expect("bind");
    l.set_nonblocking(false).ok();
    let (mut s, _) = l.accept().expect("switch connects");
    use std::io::{Read, Write};
    s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).expect("hello");
    let mut b = [0u8; 8];
    s.read_exact(&mut b).expect("switch hello");
    assert_eq!(b[1], 0);
    assert!(wait_for(10, || {
        let v: serde_json::Value =
            serde_json::from_str(&d.appctl_ok(&["ofctl/show-connections"])).unwrap_or_default();
        v["fail_open"] == false
    }));
    // The controller goes silent: the switch probes, then disconnects.
    drop(s);
    assert!(wait_for(15, || {
        let v: serde_json::Value =
            serde_json::from_str(&d.appctl_ok(&["ofctl/show-connections"])).unwrap_or_default();
        v["controllers"][0]["disconnects"].as_u64().unwrap_or(0) >= 1
    }));
}

#[test]
fn ports_come_and_go_under_traffic() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 3);
    let d = Daemon::start(&bridge_config(
        &format!("rvp{tag}"),
        &[hs[0].port.as_str(), hs[1].port.as_str()],
        "",
        "",
    ));
    assert!(wait_for(10, || hs[0].ping(&ip(2), 1)));
    // Traffic runs while h2's link is deleted.
    let flood = Command::new("ip")
        .args([
            "netns",
            "exec",
            &hs[0].ns,
            "ping",
            "-i",
            "0.01",
            "-c",
            "300",
            &ip(2),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ping");
    let _flood = Proc(flood);
    std::thread::sleep(Duration::from_millis(500));
    sh(&format!("ip link del {}", hs[1].port));
    assert!(wait_for(10, || !d
        .ofctl_ok("dump-ports-desc", &[])
        .contains(&hs[1].port)));
    assert!(d.appctl_ok(&["version"]).starts_with("rvswitchd"));
    // A port added by reload while traffic runs comes up and forwards.
    let cfg = std::fs::read_to_string(&d.config).expect("config")
        + &format!("\n[[bridge.port]]\nname = \"{}\"\nofport = 3\n", hs[2].port);
    std::fs::write(&d.config, cfg).expect("write");
    let out = d.appctl_ok(&["config/reload"]);
    assert!(out.contains("added port"), "{out}");
    assert!(
        wait_for(10, || hs[0].ping(&ip(3), 1)),
        "new port does not forward\n{}",
        d.log_text()
    );
    // A configured device that does not exist is reported, and the bridge runs on.
    let ghost = format!("rvg{tag}");
    let cfg = std::fs::read_to_string(&d.config).expect("config")
        + &format!("\n[[bridge.port]]\nname = \"{ghost}\"\n");
    std::fs::write(&d.config, cfg).expect("write");
    // The reload says so (and ovs-appctl fails), yet the rest is applied.
    let (ok, _, err) = d.appctl(&["config/reload"]);
    assert!(!ok, "a reload with a missing device must fail");
    assert!(
        err.contains(&ghost) && err.contains("could not open network device"),
        "{err}"
    );
    assert!(wait_for(10, || {
        d.stats_json()["actors"]
            .as_array()
            .map(|a| {
                a.iter().any(|x| {
                    x["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("could not open network device"))
                })
            })
            .unwrap_or(false)
    }));
    assert!(hs[0].ping(&ip(3), 1));
    // ... and comes up when the device appears.
    sh(&format!("ip link add {ghost} type veth peer name {ghost}x && ip link set {ghost} up && ip link set {ghost}x up"));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .contains(&ghost)));
    let _ = sh_try(&format!("ip link del {ghost}"));
}

#[test]
fn gso_frames_leave_by_ports_without_offload() {
    gso_frames_cross(["system", "system"]);
}

/// An AF_XDP port next to an AF_PACKET one: the super-frames (with partial
/// checksums) the system port receives leave by the afxdp port's AF_PACKET
/// transmit socket, since AF_XDP carries no offload state.
#[test]
fn gso_frames_cross_between_system_and_afxdp_ports() {
    gso_frames_cross(["system", "afxdp"]);
}

/// TCP with TSO and partial checksums on the hosts behind system ports,
/// through ports of the two types given; nothing may be dropped on transmit.
fn gso_frames_cross(types: [&str; 2]) {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "iperf3", "ethtool"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 2);
    // Hosts send TSO super-frames with partial checksums; the switch's own
    // ports have no TX offload, so the kernel must segment on transmit.
    for (h, ty) in hs.iter().zip(types) {
        // A veth peer of an afxdp port must not leave checksums to offload:
        // AF_XDP receives the frame without the "checksum partial" mark, so
        // it would leave the switch with a wrong checksum (a kernel limit
        // OVS documents too). Its TSO goes off anyway while the XDP
        // program is attached.
        if ty == "system" {
            h.exec("ethtool -K eth0 tx on tso on");
        }
        sh(&format!(
            "ethtool -K {} tx off >/dev/null 2>&1 || true",
            h.port
        ));
    }
    let mut cfg = bridge_config(&format!("rvg{tag}"), &[], "", "");
    for (i, (h, ty)) in hs.iter().zip(types).enumerate() {
        cfg.push_str(&format!(
            "\n[[bridge.port]]\nname = \"{}\"\ntype = \"{ty}\"\nofport = {}\n",
            h.port,
            i + 1
        ));
    }
    let d = Daemon::start(&cfg);
    assert!(wait_for(10, || hs[0].ping(&ip(2), 1)));
    let (j, out) = iperf3(&hs[1], &hs[0], "-n 50M");
    assert!(
        j["end"]["sum_received"]["bytes"].as_f64().unwrap_or(0.0) >= 40e6,
        "{out}"
    );
    // No frame was refused on the way out.
    let ports = d.ofctl_ok("dump-ports", &[]);
    for line in ports.lines().filter(|l| l.contains("tx pkts")) {
        assert!(line.contains("drop=0"), "transmit drops: {ports}");
    }
    // Super-frames for an afxdp port took its AF_PACKET socket.
    let fallback: u64 = d
        .appctl_ok(&["coverage/show"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some("afxdp_tx_fallback"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(
        fallback > 0,
        types.contains(&"afxdp"),
        "fallback {fallback}"
    );
}

/// CPU ticks (user + system) used so far by the process's poll threads.
fn pmd_ticks(pid: u32) -> u64 {
    let mut total = 0;
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.starts_with("rvs-pmd") {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 {
            total += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
    }
    total
}

#[test]
fn busy_polling_forwards_and_sleeps_when_traffic_stops() {
    if !require(true, &["ovs-ofctl", "ping"]) {
        return;
    }
    let tag = uniq();
    let hs = hosts(&tag, 2);
    let ports: Vec<&str> = hs.iter().map(|h| h.port.as_str()).collect();
    let d = Daemon::start(&bridge_config(
        &format!("rvb{tag}"),
        &ports,
        "",
        "busy_poll_us = 200000",
    ));
    assert!(wait_for(10, || d
        .ofctl_ok("dump-ports-desc", &[])
        .matches("addr:")
        .count()
        >= 3));
    assert!(hs[0].ping(&ip(2), 2), "{}", d.log_text());
    let (ok, out) = hs[0].exec(&format!("ping -c 200 -i 0.005 -q {}", ip(2)));
    assert!(ok && out.contains(" 0% packet loss"), "{out}");
    // Traffic stopped: after the spin window the poll thread blocks again, so
    // over the next two seconds it uses far less than a CPU (a thread that kept
    // spinning would use about 200 ticks).
    std::thread::sleep(Duration::from_millis(500));
    let t0 = pmd_ticks(d.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = pmd_ticks(d.pid()) - t0;
    assert!(used < 100, "poll thread kept spinning: {used} ticks in 2 s");
}
