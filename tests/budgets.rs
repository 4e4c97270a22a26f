//! Translation budgets against the real daemon (issue 9, item 1): the group
//! graph that used to make one PACKET_OUT walk 2^31 paths is sent with
//! `ovs-ofctl`, under an address-space limit so that a regression fails this
//! test instead of the machine, and the daemon must stay alive, small and
//! responsive, with the budget's coverage counter showing what happened.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Groups in the attack (the longest chain GROUP_MOD accepts).
const LEVELS: u32 = 32;
/// Address space the daemon may grow by during the test (it needs a few MB).
const AS_HEADROOM: u64 = 1 << 30;

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A plain OpenFlow 1.3 session that measures request/reply round trips.
struct Probe {
    s: UnixStream,
    xid: u32,
}

impl Probe {
    fn new(d: &Daemon) -> Probe {
        let mut s = UnixStream::connect(&d.mgmt).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).ok();
        s.write_all(&[4, 0, 0, 8, 0, 0, 0, 1]).expect("hello");
        let mut p = Probe { s, xid: 100 };
        // Wait for the HELLO and negotiate with one echo.
        p.round_trip(2, 3).expect("first echo");
        p
    }

    /// Sends a bodiless request of `ty` and waits for the reply of `reply_ty`
    /// with the same xid; returns the round-trip time.
    fn round_trip(&mut self, ty: u8, reply_ty: u8) -> Option<Duration> {
        self.xid += 1;
        let x = self.xid.to_be_bytes();
        let t = Instant::now();
        self.s
            .write_all(&[4, ty, 0, 8, x[0], x[1], x[2], x[3]])
            .ok()?;
        loop {
            let mut h = [0u8; 8];
            self.s.read_exact(&mut h).ok()?;
            let len = u16::from_be_bytes([h[2], h[3]]) as usize;
            let mut body = vec![0u8; len.saturating_sub(8)];
            self.s.read_exact(&mut body).ok()?;
            if h[1] == reply_ty && h[4..8] == x {
                return Some(t.elapsed());
            }
        }
    }
}

fn coverage(d: &Daemon, name: &str) -> u64 {
    d.appctl_ok(&["coverage/show"])
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn group_bomb_packet_out_is_bounded() {
    if !require(true, &["ovs-ofctl", "ovs-appctl", "prlimit"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let mut d = Daemon::start(&bridge_config(&br, &[], "", ""));
    let pid = d.pid();
    // Cap the address space: the old exponential walk needed 3 GB.
    let limit = status_kb(pid, "VmSize:") * 1024 + AS_HEADROOM;
    sh(&format!("prlimit --pid {pid} --as={limit}:{limit}"));
    let rss0 = status_kb(pid, "VmRSS:");

    // Group 1 outputs to LOCAL; group i has two buckets, each naming group
    // i - 1 twice.
    let mut groups = String::from("group_id=1,type=all,bucket=output:LOCAL\n");
    for i in 2..=LEVELS {
        let b = format!("bucket=group:{0},group:{0}", i - 1);
        groups.push_str(&format!("group_id={i},type=all,{b},{b}\n"));
    }
    let file = d.dir.join("groups.txt");
    std::fs::write(&file, groups).expect("write groups");
    let t = Instant::now();
    d.ofctl_ok("add-groups", &[file.to_str().expect("path")]);
    let add_time = t.elapsed();
    // One more level would be deeper than translation may go: refused.
    let (ok, _, err) = d.ofctl(
        "add-group",
        &[&format!(
            "group_id={},type=all,bucket=group:{LEVELS}",
            LEVELS + 1
        )],
    );
    assert!(!ok && err.contains("OFPGMFC_CHAINING_UNSUPPORTED"), "{err}");
    // Closing a loop is refused.
    let (ok, _, err) = d.ofctl(
        "mod-group",
        &[&format!("group_id=1,type=all,bucket=group:{LEVELS}")],
    );
    assert!(!ok && err.contains("OFPGMFC_LOOP"), "{err}");

    let before = coverage(&d, "xlate_too_many_outputs") + coverage(&d, "xlate_too_many_buckets");
    let mut probe = Probe::new(&d);
    let frame =
        "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002";
    let mut worst_echo = Duration::ZERO;
    let mut worst_barrier = Duration::ZERO;
    for _ in 0..10 {
        d.ofctl_ok(
            "packet-out",
            &[&format!(
                "in_port=controller packet={frame} actions=group:{LEVELS}"
            )],
        );
        worst_echo = worst_echo.max(probe.round_trip(2, 3).expect("echo reply"));
        // A barrier is answered by the bridge itself, after the PACKET_OUT.
        worst_barrier = worst_barrier.max(probe.round_trip(20, 21).expect("barrier reply"));
    }
    eprintln!(
        "add-groups {add_time:?}, worst echo {worst_echo:?}, worst barrier {worst_barrier:?}"
    );
    assert!(d.alive(), "daemon died; log:\n{}", d.log_text());
    // Generous bounds: a stalled bridge took tens of seconds here.
    assert!(
        worst_echo < Duration::from_secs(1),
        "echo took {worst_echo:?}"
    );
    assert!(
        worst_barrier < Duration::from_secs(2),
        "barrier took {worst_barrier:?}"
    );
    let rss = status_kb(pid, "VmRSS:");
    assert!(
        rss < rss0 + 200 * 1024,
        "RSS grew from {rss0} kB to {rss} kB"
    );
    let after = coverage(&d, "xlate_too_many_outputs") + coverage(&d, "xlate_too_many_buckets");
    assert!(
        after >= before + 10,
        "coverage went from {before} to {after}"
    );
    // The log writer is asynchronous: give it a moment.
    assert!(
        wait_for(5, || d.log_text().contains("translation exceeded its")),
        "no log line; log:\n{}",
        d.log_text()
    );
    // The trace shows which budget stopped it.
    let tr = d.appctl_ok(&["ofproto/trace", &br, "in_port=1,dl_type=0x0806"]);
    assert!(tr.contains("Datapath actions"), "{tr}");
    assert!(d.ofctl_ok("show", &[]).contains("n_tables:254"));
}
