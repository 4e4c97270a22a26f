//! Restarts keep the network: a secure bridge's rules, groups and meters are
//! written to its state file and restored when the daemon starts again, so
//! traffic flows without any controller re-adding them; turning the feature
//! off starts empty; a damaged file is refused and the bridge starts empty.
//! The real daemon, real `ovs-ofctl`, hosts in namespaces on veth pairs.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

const NET: &str = "10.78.0";

/// SIGTERM (a clean shutdown, as `systemctl stop`), then waits for the exit.
fn stop(d: &mut Daemon) {
    let mut c = d.child.take().expect("a running daemon");
    // SAFETY: sending SIGTERM to our own child.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(Some(st)) = c.try_wait() {
            assert!(st.success(), "exit status {st}\n{}", d.log_text());
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
    panic!("daemon did not exit on SIGTERM\n{}", d.log_text());
}

/// The rules of `dump-flows`, each as its sorted fields without the ones
/// that change by themselves (duration, counters, ages) and with the hard
/// timeout's value left out (a restored rule keeps what was left of it).
fn rules(d: &Daemon) -> Vec<String> {
    let out = d.ofctl_ok("dump-flows", &[]);
    let mut v: Vec<String> = out
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| {
            let mut f: Vec<String> = l
                .split([',', ' '])
                .filter(|t| !t.is_empty())
                .filter(|t| {
                    ![
                        "duration=",
                        "n_packets=",
                        "n_bytes=",
                        "idle_age=",
                        "hard_age=",
                    ]
                    .iter()
                    .any(|p| t.starts_with(p))
                })
                .map(|t| {
                    if t.starts_with("hard_timeout=") {
                        "hard_timeout".to_string()
                    } else {
                        t.to_string()
                    }
                })
                .collect();
            f.sort();
            f.join(",")
        })
        .collect();
    v.sort();
    v
}

fn ports_up(d: &Daemon, n: usize) {
    assert!(
        wait_for(20, || d
            .ofctl("dump-ports-desc", &[])
            .1
            .matches("addr:")
            .count()
            >= n),
        "ports not attached\n{}",
        d.log_text()
    );
}

fn state_counter(d: &Daemon, br: &str, name: &str) -> u64 {
    let s = d.stats_json();
    s[format!("datapath_{br}")]["state"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("no state counter {name} in /stats: {s}"))
}

#[test]
fn secure_bridge_forwards_after_a_restart_without_re_adding_flows() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "ping"]) {
        return;
    }
    let tag = uniq();
    let h1 = Host::new(&tag, 1, NET);
    let h2 = Host::new(&tag, 2, NET);
    let br = format!("rvr{tag}");
    let body = |extra: &str| {
        bridge_config(
            &br,
            &[h1.port.as_str(), h2.port.as_str()],
            &format!("fail_mode = \"secure\"\n{extra}"),
            "",
        )
    };
    let mut d = Daemon::start(&body(""));
    ports_up(&d, 3);
    let state = d.dir.join("state").join(format!("{br}.state"));

    // Secure and no controller: empty tables, nothing forwards.
    assert!(rules(&d).is_empty(), "{:?}", rules(&d));
    assert!(!h1.ping(&h2.ip, 1), "forwarded with empty tables");

    d.ofctl_ok("add-meter", &["meter=1,kbps,band=type=drop,rate=100000"]);
    d.ofctl_ok("add-group", &["group_id=5,type=all,bucket=output:2"]);
    for f in [
        "cookie=0x1234,priority=100,in_port=1,actions=meter:1,group:5",
        "cookie=0x5678,priority=90,in_port=2,actions=output:1",
        "cookie=0xabcd,priority=5,dl_type=0x88cc,idle_timeout=600,hard_timeout=3600,actions=drop",
        "cookie=0x42,table=1,priority=7,actions=drop",
    ] {
        d.ofctl_ok("add-flow", &[f]);
    }
    // The failed ping left h1's ARP entry for h2 FAILED: start afresh.
    let _ = h1.exec("ip neigh flush dev eth0");
    assert!(
        wait_for(10, || h1.ping(&h2.ip, 1)),
        "no ping with flows\n{}\n{}\n{}",
        d.ofctl_ok("dump-flows", &[]),
        d.appctl_ok(&[
            "ofproto/trace",
            &br,
            &format!("in_port=1,dl_src={},dl_dst={}", h1.mac, h2.mac)
        ]),
        d.appctl_ok(&["dpctl/dump-flows"])
            + &d.appctl_ok(&["dpif-netdev/pmd-stats-show"])
            + &d.ofctl_ok("dump-ports", &[])
    );
    let before = rules(&d);
    assert_eq!(before.len(), 4, "{before:?}");

    stop(&mut d);
    let mode = std::fs::metadata(&state)
        .unwrap_or_else(|e| panic!("no state file {}: {e}\n{}", state.display(), d.log_text()))
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(d
        .log_text()
        .contains("state saved: 4 rules, 1 groups, 1 meters"));

    // Start again: nothing is re-added.
    d.spawn();
    ports_up(&d, 3);
    assert!(
        wait_for(20, || h1.ping(&h2.ip, 1)),
        "no ping after the restart\n{}",
        d.log_text()
    );
    assert_eq!(rules(&d), before);
    let dump = d.ofctl_ok("dump-flows", &[]);
    for want in [
        "cookie=0x1234",
        "priority=100",
        "cookie=0x5678",
        "idle_timeout=600",
        "hard_timeout=",
        "table=1",
    ] {
        assert!(dump.contains(want), "{want} missing:\n{dump}");
    }
    let groups = d.ofctl_ok("dump-groups", &[]);
    assert!(
        groups.contains("group_id=5") && groups.contains("type=all"),
        "{groups}"
    );
    let meters = d.ofctl_ok("dump-meters", &[]);
    assert!(
        meters.contains("meter=1") && meters.contains("rate=100000"),
        "{meters}"
    );
    assert_eq!(state_counter(&d, &br, "rules_restored"), 4);
    assert_eq!(state_counter(&d, &br, "groups_restored"), 1);
    assert_eq!(state_counter(&d, &br, "meters_restored"), 1);
    assert!(d
        .log_text()
        .contains("restored 4 rules, 1 groups, 1 meters"));
    let metrics = d.http_get("/metrics");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("rvswitchd_bridge_state_rules_restored")
                && l.contains(&br)
                && l.ends_with(" 4")),
        "{metrics}"
    );

    // A damaged file is refused with a warning: the bridge starts empty.
    stop(&mut d);
    let mut bytes = std::fs::read(&state).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&state, &bytes).unwrap();
    d.spawn();
    ports_up(&d, 3);
    assert!(rules(&d).is_empty(), "{:?}", rules(&d));
    assert_eq!(state_counter(&d, &br, "files_ignored_corrupt"), 1);
    assert!(d.log_text().contains("ignored: checksum mismatch"));
    assert!(!h1.ping(&h2.ip, 1), "forwarded after refusing the file");

    // With restoring off, the tables start empty and the file goes.
    d.ofctl_ok("add-flow", &["priority=1,actions=drop"]);
    stop(&mut d);
    assert!(state.exists());
    std::fs::write(&d.config, d.render(&body("restore_flows = false\n"))).unwrap();
    d.spawn();
    ports_up(&d, 3);
    assert!(rules(&d).is_empty(), "{:?}", rules(&d));
    assert!(!state.exists(), "the state file was kept");
    d.ofctl_ok("add-flow", &["priority=1,actions=drop"]);
    stop(&mut d);
    assert!(
        !state.exists(),
        "a state file was written with restore_flows = false"
    );
}

#[test]
fn tables_saved_after_a_change_survive_a_crash() {
    if !require(true, &["ovs-appctl", "ovs-ofctl"]) {
        return;
    }
    let br = format!("rvk{}", uniq());
    let cfg = bridge_config(&br, &[], "fail_mode = \"secure\"\n", "")
        .replace("[datapath]", "state_save_ms = 100\n\n[datapath]");
    let mut d = Daemon::start(&cfg);
    let state = d.dir.join("state").join(format!("{br}.state"));
    let size = || std::fs::metadata(&state).map(|m| m.len()).unwrap_or(0);
    // The internal port's arrival is a change too: its save comes first.
    assert!(wait_for(10, || size() > 0), "no save\n{}", d.log_text());
    let empty = size();
    d.ofctl_ok("add-flow", &["cookie=0x77,priority=321,actions=drop"]);
    // Written by the batched save, not at shutdown: the process is killed.
    assert!(
        wait_for(10, || size() > empty),
        "no save after a change\n{}",
        d.log_text()
    );
    // The file is renamed into place before the counter moves: wait for
    // both, not for one after the other was seen.
    assert!(
        wait_for(10, || state_counter(&d, &br, "saves") >= 2),
        "saves: {}",
        state_counter(&d, &br, "saves")
    );
    let mut c = d.child.take().expect("running");
    c.kill().expect("SIGKILL");
    let _ = c.wait();
    d.spawn();
    let after = rules(&d);
    assert_eq!(after.len(), 1, "{after:?}\n{}", d.log_text());
    assert!(
        after[0].contains("cookie=0x77") && after[0].contains("priority=321"),
        "{after:?}"
    );
    assert_eq!(state_counter(&d, &br, "rules_restored"), 1);
}
