//! Hostile OpenFlow peers against the real daemon, one test per class of
//! fault (issue "no single peer can take the switch down"). Each attack runs
//! a bounded loop while an [`Observer`] keeps a well-behaved session busy
//! with ECHOs and polls the control socket and `/stats`; the daemon runs with
//! `prlimit` limits (address space, file descriptors) so that a regression
//! fails the test instead of exhausting the machine.
//!
//! The ECHO bound: the issue asks for replies within 100 ms. These tests run
//! a debug build on a 2-core machine shared with other test binaries, where
//! a scheduling hiccup alone can cost more than 100 ms; the observer
//! therefore fails at [`ECHO_BOUND`] (500 ms) and prints the worst latency it
//! saw, so a run can be compared with the 100 ms goal.

mod common;
use common::*;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest ECHO round trip the observer tolerates (see the module docs).
const ECHO_BOUND: Duration = Duration::from_millis(500);
/// Address-space limit for the daemon under attack. A debug daemon maps
/// well under this (thread stacks, receive rings); the ~270 MB per session
/// the issue measured before backpressure would cross it quickly.
const AS_LIMIT: u64 = 3 << 30;

fn switch(extra: &str) -> (Daemon, String) {
    let br = format!("rvh{}", uniq());
    let cfg = format!(
        "[daemon]\ncontrol_socket = \"@CTL@\"\nstats_listen = \"@STATS@\"\n\n[datapath]\nn_handler_threads = 1\nn_revalidator_threads = 1\n\n{extra}\n[[bridge]]\nname = \"{br}\"\nlisteners = [\"punix:@MGMT@\"]\n"
    );
    (Daemon::start(&cfg), br)
}

fn limit(d: &Daemon, what: &str) {
    let pid = d.pid().to_string();
    let (ok, _, err) = run("prlimit", &["--pid", &pid, what]);
    assert!(ok, "prlimit {what}: {err}");
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn n_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn msg(t: u8, xid: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![4, t];
    v.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn hello() -> Vec<u8> {
    msg(0, 1, &[])
}

/// Reads one message: (type, xid, body).
fn read_msg(s: &mut impl Read) -> std::io::Result<(u8, u32, Vec<u8>)> {
    let mut h = [0u8; 8];
    s.read_exact(&mut h)?;
    let len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let mut body = vec![0u8; len.saturating_sub(8)];
    s.read_exact(&mut body)?;
    Ok((h[1], u32::from_be_bytes([h[4], h[5], h[6], h[7]]), body))
}

fn session(d: &Daemon) -> UnixStream {
    let mut s = UnixStream::connect(&d.mgmt).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(&hello()).expect("hello");
    let (t, _, _) = read_msg(&mut s).expect("switch hello");
    assert_eq!(t, 0);
    s
}

/// What the observer saw.
#[derive(Debug, Default)]
struct Seen {
    echoes: u64,
    worst: Duration,
    late: u64,
    failures: Vec<String>,
}

/// A well-behaved session plus the control socket and `/stats`, polled
/// while an attack runs.
struct Observer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Seen>>,
}

impl Observer {
    fn start(d: &Daemon) -> Observer {
        let mut s = session(d);
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let ctl = d.ctl.clone();
        let stats = d.stats.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::default();
            let mut xid = 0x7000_0000u32;
            let mut last_ctl = Instant::now();
            while !stop2.load(Ordering::Relaxed) {
                xid += 1;
                let t = Instant::now();
                if let Err(e) = s.write_all(&msg(2, xid, b"observer")) {
                    seen.failures.push(format!("echo write: {e}"));
                    break;
                }
                loop {
                    match read_msg(&mut s) {
                        Ok((3, x, _)) if x == xid => break,
                        Ok(_) => continue,
                        Err(e) => {
                            seen.failures.push(format!("echo reply: {e}"));
                            return seen;
                        }
                    }
                }
                let dt = t.elapsed();
                seen.echoes += 1;
                seen.worst = seen.worst.max(dt);
                if dt > ECHO_BOUND {
                    seen.late += 1;
                }
                if last_ctl.elapsed() > Duration::from_millis(500) {
                    last_ctl = Instant::now();
                    let (ok, out, err) =
                        run("ovs-appctl", &["-t", ctl.to_str().unwrap_or(""), "version"]);
                    if !ok || !out.starts_with("rvswitchd") {
                        seen.failures.push(format!("control socket: {err}"));
                    }
                    match std::net::TcpStream::connect(&stats) {
                        Ok(mut h) => {
                            h.set_read_timeout(Some(Duration::from_secs(5))).ok();
                            let _ = h.write_all(
                                b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            );
                            let mut body = String::new();
                            let _ = h.read_to_string(&mut body);
                            if !body.contains("\"process\"") {
                                seen.failures.push("/stats did not answer".into());
                            }
                        }
                        Err(e) => seen.failures.push(format!("/stats connect: {e}")),
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            seen
        });
        Observer {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and checks: the session got answers throughout, none later
    /// than the bound, and the control socket and /stats always answered.
    fn finish(mut self, what: &str) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let seen = self
            .thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        eprintln!(
            "{what}: observer got {} echo replies, worst {:?}",
            seen.echoes, seen.worst
        );
        assert!(seen.failures.is_empty(), "{what}: {:?}", seen.failures);
        assert!(seen.echoes >= 3, "{what}: {seen:?}");
        assert_eq!(
            seen.late, 0,
            "{what}: echo replies later than {ECHO_BOUND:?}: {seen:?}"
        );
        seen
    }
}

fn connections(d: &Daemon) -> serde_json::Value {
    serde_json::from_str(&d.appctl_ok(&["ofctl/show-connections"])).expect("json")
}

/// (a) Peers that send 64 KiB ECHOs and never read: the daemon stops
/// reading them at their output budget, RSS stays bounded, and returns near
/// its baseline once they leave.
#[test]
fn echo_flooders_that_never_read_are_bounded() {
    if !require(true, &["ovs-appctl", "prlimit"]) {
        return;
    }
    let (d, _br) = switch("[openflow]\noutput_budget_bytes = 4194304\nstuck_timeout_ms = 600000\n");
    limit(&d, &format!("--as={AS_LIMIT}"));
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(300));
    let base = rss_kb(pid);
    let obs = Observer::start(&d);
    let echo = msg(2, 9, &vec![0x5a; 65_000]);
    let mut flooders = Vec::new();
    let mut written = 0u64;
    for _ in 0..8 {
        let mut s = session(&d);
        s.set_write_timeout(Some(Duration::from_millis(200))).ok();
        // Bounded: at most 2,000 echoes (130 MB) each; the daemon stops
        // reading long before (a write then times out).
        for _ in 0..2000 {
            match s.write_all(&echo) {
                Ok(()) => written += echo.len() as u64,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("flooder write: {e}"),
            }
        }
        flooders.push(s);
    }
    let peak = rss_kb(pid);
    eprintln!("RSS baseline {base} kB, with 8 flooders {peak} kB; {written} bytes accepted");
    // 8 budgets of 4 MiB plus input buffers, plus the kernel's socket
    // buffers (not in RSS): well under 8 x 270 MB.
    assert!(peak < base + 80 * 1024, "RSS {peak} kB from {base} kB");
    // Each flooder: its 4 MiB budget plus what the kernel buffers.
    assert!(written < (8 * 8) << 20, "the daemon read {written} bytes");
    let v = connections(&d);
    let paused: u64 = v["sessions"]
        .as_array()
        .map(|a| a.iter().filter(|s| s["reading"] == false).count() as u64)
        .unwrap_or(0);
    assert!(paused >= 8, "sessions not reading: {paused}\n{v}");
    drop(flooders);
    let left = wait_for(10, || {
        connections(&d)["sessions"].as_array().map(|a| a.len()) == Some(1)
    });
    assert!(left, "flooders' sessions are gone");
    let settled = wait_for(10, || rss_kb(pid) < base + 16 * 1024);
    let after = rss_kb(pid);
    eprintln!("RSS after the flooders left: {after} kB");
    assert!(settled, "RSS {after} kB did not return near {base} kB");
    obs.finish("echo flood");
}

/// (b) A controller that stops reading for 3 s while its requests keep
/// flowing gets every ECHO, BARRIER and FEATURES reply, in order.
#[test]
fn a_controller_that_pauses_reading_loses_no_reply() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let (d, _br) = switch("[openflow]\noutput_budget_bytes = 1048576\n");
    limit(&d, &format!("--as={AS_LIMIT}"));
    let obs = Observer::start(&d);
    let s = session(&d);
    let mut w = s.try_clone().expect("clone");
    let mut r = s;
    const N: u32 = 60_000;
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for xid in 1..=N {
            let t = match xid % 3 {
                0 => 20, // BARRIER_REQUEST
                1 => 2,  // ECHO_REQUEST
                _ => 5,  // FEATURES_REQUEST
            };
            let body: &[u8] = if t == 2 { &[0u8; 200] } else { &[] };
            buf.extend(msg(t, xid, body));
            if buf.len() > 16 * 1024 {
                w.write_all(&buf).expect("write requests");
                buf.clear();
            }
        }
        w.write_all(&buf).expect("write requests");
    });
    std::thread::sleep(Duration::from_secs(3));
    r.set_read_timeout(Some(Duration::from_secs(20))).ok();
    let mut next = 1u32;
    while next <= N {
        let (t, xid, _) = read_msg(&mut r).expect("reply");
        let want = match xid % 3 {
            0 => 21,
            1 => 3,
            _ => 6,
        };
        assert_eq!(xid, next, "replies in order");
        assert_eq!(t, want, "reply type for xid {xid}");
        next += 1;
    }
    writer.join().expect("writer");
    let v = connections(&d);
    let s = v["sessions"].as_array().and_then(|a| {
        a.iter()
            .find(|s| s["input_paused"].as_u64().unwrap_or(0) > 0)
            .cloned()
    });
    assert!(s.is_some(), "backpressure was used: {v}");
    obs.finish("paused controller");
}

/// (c) N erroring flow-mods get exactly N OFPT_ERRORs.
#[test]
fn every_erroring_flow_mod_gets_an_error() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let (d, _br) = switch("");
    limit(&d, &format!("--as={AS_LIMIT}"));
    let obs = Observer::start(&d);
    let s = session(&d);
    let mut w = s.try_clone().expect("clone");
    let mut r = s;
    const N: u32 = 30_000;
    // FLOW_MOD ADD to table 255 (OFPTT_ALL): OFPFMFC_BAD_TABLE_ID.
    let mut fm = vec![0u8; 56];
    fm[0] = 4;
    fm[1] = 14;
    fm[2..4].copy_from_slice(&56u16.to_be_bytes());
    fm[24] = 255;
    fm[32..36].copy_from_slice(&0xffff_ffffu32.to_be_bytes());
    fm[36..40].copy_from_slice(&0xffff_ffffu32.to_be_bytes());
    fm[40..44].copy_from_slice(&0xffff_ffffu32.to_be_bytes());
    fm[48..56].copy_from_slice(&[0, 1, 0, 4, 0, 0, 0, 0]);
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for xid in 1..=N {
            fm[4..8].copy_from_slice(&xid.to_be_bytes());
            buf.extend_from_slice(&fm);
            if buf.len() > 32 * 1024 {
                w.write_all(&buf).expect("write");
                buf.clear();
            }
        }
        buf.extend(msg(20, N + 1, &[]));
        w.write_all(&buf).expect("write");
    });
    r.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut errors = 0u32;
    loop {
        let (t, xid, body) = read_msg(&mut r).expect("reply");
        if t == 21 && xid == N + 1 {
            break;
        }
        assert_eq!(t, 1, "only errors before the barrier");
        assert_eq!(&body[..4], &[0, 5, 0, 2], "FLOW_MOD_FAILED/BAD_TABLE_ID");
        errors += 1;
        assert_eq!(xid, errors, "errors in order");
    }
    writer.join().expect("writer");
    assert_eq!(errors, N);
    obs.finish("erroring flow-mods");
}

fn raise_own_nofile(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n,
    };
    // SAFETY: setrlimit with a valid struct; the test is root.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "raise the test's own fd limit");
}

/// (d) 1,100 connections that never say HELLO, against a daemon limited to
/// 1024 fds: the listener's cap and eviction hold, a real session, the
/// control socket and /stats still answer, and the fds are released.
#[test]
fn a_never_hello_flood_is_capped_and_evicted() {
    if !require(true, &["ovs-appctl", "ovs-ofctl", "prlimit"]) {
        return;
    }
    raise_own_nofile(8192);
    let (d, _br) = switch("");
    limit(&d, "--nofile=1024:1024");
    limit(&d, &format!("--as={AS_LIMIT}"));
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(300));
    let base_fds = n_fds(pid);
    let obs = Observer::start(&d);
    let mut flood = Vec::new();
    for i in 0..1100 {
        match UnixStream::connect(&d.mgmt) {
            Ok(s) => flood.push(s),
            Err(e) => panic!("connection {i}: {e}"),
        }
    }
    // Every connection was accepted or evicted: the listener is not stuck.
    let v = {
        let mut v = serde_json::Value::Null;
        let done = wait_for(20, || {
            v = connections(&d);
            v["listeners"][0]["accepted"].as_u64().unwrap_or(0) >= 1100
        });
        assert!(done, "accepts stalled: {v}");
        v
    };
    let l = &v["listeners"][0];
    let cap = l["max_connections"].as_u64().unwrap_or(0);
    assert!(cap > 0 && cap < 1024, "{l}");
    assert!(l["connections"].as_u64().unwrap_or(u64::MAX) <= cap, "{l}");
    assert!(
        l["evicted_unnegotiated"].as_u64().unwrap_or(0) >= 1100 - cap,
        "{l}"
    );
    let fds = n_fds(pid);
    eprintln!("daemon fds: {base_fds} at rest, {fds} under the flood (cap {cap})");
    assert!(fds as u64 <= base_fds as u64 + cap + 16, "{fds} fds");
    // A real client gets through (it evicts the oldest flooder).
    assert!(d.ofctl_ok("show", &[]).contains("n_tables:254"));
    drop(flood);
    let released = wait_for(15, || n_fds(pid) <= base_fds + 2);
    assert!(released, "fds: {} (rest {base_fds})", n_fds(pid));
    obs.finish("never-HELLO flood");
}

/// A connection that never says HELLO is fully closed at the HELLO timeout:
/// the peer sees EOF and the daemon's fd is gone.
#[test]
fn a_silent_peer_is_fully_closed_at_the_hello_timeout() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let (d, _br) = switch("[openflow]\nhello_timeout_ms = 500\n");
    let pid = d.pid();
    std::thread::sleep(Duration::from_millis(200));
    let base = n_fds(pid);
    let mut s = UnixStream::connect(&d.mgmt).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    let (t, _, _) = read_msg(&mut s).expect("switch hello");
    assert_eq!(t, 0);
    let t0 = Instant::now();
    let mut b = [0u8; 64];
    assert_eq!(s.read(&mut b).expect("eof"), 0, "closed by the switch");
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(wait_for(5, || n_fds(pid) <= base), "fd released");
    let v = connections(&d);
    assert_eq!(v["events"]["closed_hello_timeout"], 1, "{v}");
}

/// (e) SIGSTOP for 10 s, then SIGCONT: the controller session survives (its
/// answers were waiting in the socket), with a 2 s inactivity probe.
#[test]
fn a_stalled_daemon_keeps_its_controller() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let br = format!("rvh{}", uniq());
    let cfg = format!(
        "[daemon]\ncontrol_socket = \"@CTL@\"\nstats_listen = \"@STATS@\"\n\n[datapath]\nn_handler_threads = 1\nn_revalidator_threads = 1\n\n[[bridge]]\nname = \"{br}\"\nfail_mode = \"secure\"\nlisteners = [\"punix:@MGMT@\"]\ncontrollers = [\"tcp:127.0.0.1:{port}\"]\ninactivity_probe_ms = 2000\n"
    );
    let d = Daemon::start(&cfg);
    let (s, _) = l.accept().expect("the switch connects");
    l.set_nonblocking(true).ok();
    let mut w = s.try_clone().expect("clone");
    let mut r = s;
    w.write_all(&hello()).expect("hello");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    // The controller answers probes and notices if the switch hangs up.
    let ctl = std::thread::spawn(move || {
        r.set_read_timeout(Some(Duration::from_millis(200))).ok();
        let mut probes = 0u32;
        while !stop2.load(Ordering::Relaxed) {
            match read_msg(&mut r) {
                Ok((2, xid, body)) => {
                    probes += 1;
                    w.write_all(&msg(3, xid, &body)).expect("echo reply");
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(format!("switch hung up: {e}")),
            }
        }
        // Hand the socket back: closing it now would end the session.
        Ok((probes, r, w))
    });
    // A 2 s probe: the 10 s stop is five intervals, and the controller
    // thread has a whole interval to answer even when CI loads the machine.
    std::thread::sleep(Duration::from_secs(5));
    let pid = d.pid() as i32;
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_secs(10));
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    std::thread::sleep(Duration::from_secs(6));
    stop.store(true, Ordering::Relaxed);
    let (probes, _r, _w) = match ctl.join().expect("controller thread") {
        Ok(x) => x,
        Err(e) => panic!("{e}\n{}", d.log_text()),
    };
    assert!(probes >= 3, "the switch kept probing ({probes})");
    assert!(l.accept().is_err(), "no reconnection happened");
    let v = connections(&d);
    assert_eq!(v["controllers"][0]["disconnects"], 0, "{v}");
    assert_eq!(v["events"]["closed_probe_timeout"], 0, "{v}");
}

/// (f) A HELLO with a bad element length negotiates on its header version
/// at once (as OVS does); an old header with a bad element fails at once.
/// No connection waits 10 s un-negotiated.
#[test]
fn bad_hello_elements_negotiate_or_close_at_once() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let (d, _br) = switch("");
    let mut s = UnixStream::connect(&d.mgmt).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut b = msg(0, 1, &[0, 1, 0, 99, 0, 0, 0, 0x10]);
    b.extend(msg(5, 2, &[]));
    let t0 = Instant::now();
    s.write_all(&b).expect("hello");
    let mut types = vec![];
    while types.len() < 2 {
        let (t, _, _) = read_msg(&mut s).expect("reply");
        types.push(t);
    }
    assert_eq!(types, vec![0, 6], "HELLO then FEATURES_REPLY");
    assert!(t0.elapsed() < Duration::from_secs(1));
    let mut s = UnixStream::connect(&d.mgmt).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).ok();
    // Header version 1.1 (which we do not speak) with a bad element.
    let mut h = vec![2, 0, 0, 12, 0, 0, 0, 1];
    h.extend_from_slice(&[0, 1, 0, 2]);
    s.write_all(&h).expect("hello");
    let mut err = None;
    loop {
        match read_msg(&mut s) {
            Ok((1, _, body)) => err = Some((body[1], body[3])),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(
        err,
        Some((0, 0)),
        "HELLO_FAILED/INCOMPATIBLE before the close"
    );
    assert!(t0.elapsed() < Duration::from_secs(3));
    let v = connections(&d);
    assert_eq!(v["session_totals"]["hello_unparsed"], 2, "{v}");
    assert_eq!(v["events"]["closed_incompatible"], 1, "{v}");
}

/// `punix:` sockets get their mode from the configuration, never from the
/// umask: 0600 by default, 0660 and the group when one is configured.
#[test]
fn unix_sockets_have_an_explicit_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let (d, _br) = switch("");
    let m = std::fs::metadata(&d.mgmt).expect("socket");
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    let (d2, _br) = switch("[openflow]\nunix_socket_group = \"65534\"\n");
    let m = std::fs::metadata(&d2.mgmt).expect("socket");
    assert_eq!(m.permissions().mode() & 0o777, 0o660);
    assert_eq!(m.gid(), 65534);
    drop(d);
}

/// Slave rules end to end: after another controller takes over as master,
/// the demoted one gets IS_SLAVE for a PACKET_OUT and a GROUP_MOD, and
/// still gets its reads answered.
#[test]
fn a_slave_is_refused_writes_end_to_end() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let (d, _br) = switch("");
    let mut a = session(&d);
    let mut b = session(&d);
    let role = |s: &mut UnixStream, xid: u32, role: u32, gen: u64| {
        let mut body = role.to_be_bytes().to_vec();
        body.extend_from_slice(&[0; 4]);
        body.extend_from_slice(&gen.to_be_bytes());
        s.write_all(&msg(24, xid, &body)).expect("role");
        loop {
            let (t, x, body) = read_msg(s).expect("role reply");
            if x == xid {
                return (t, body);
            }
        }
    };
    assert_eq!(role(&mut a, 1, 2, 1).0, 25);
    assert_eq!(role(&mut b, 2, 2, 2).0, 25);
    // PACKET_OUT: buffer NO_BUFFER, in_port CONTROLLER, no actions, 14 bytes.
    let mut po = 0xffff_ffffu32.to_be_bytes().to_vec();
    po.extend_from_slice(&0xffff_fffdu32.to_be_bytes());
    po.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    po.extend_from_slice(&[0xff; 14]);
    // GROUP_MOD add, type ALL, group 1, no buckets.
    let gm = [0u8, 0, 0, 0, 0, 0, 0, 1];
    a.write_all(&msg(13, 10, &po)).expect("packet-out");
    a.write_all(&msg(15, 11, &gm)).expect("group-mod");
    a.write_all(&msg(5, 12, &[])).expect("features");
    let mut got = vec![];
    while got.len() < 3 {
        let (t, x, body) = read_msg(&mut a).expect("reply");
        got.push((x, t, body.get(..4).map(<[u8]>::to_vec)));
    }
    assert_eq!(got[0], (10, 1, Some(vec![0, 1, 0, 10])));
    assert_eq!(got[1], (11, 1, Some(vec![0, 1, 0, 10])));
    assert_eq!((got[2].0, got[2].1), (12, 6));
}

/// A peer on a listener that completes HELLO and then goes silent (a killed
/// VM, a cut route: no FIN ever comes) is probed and closed, so it cannot
/// hold a slot of `max_connections_per_listener` for ever; OVS probes
/// passive connections the same way.
#[test]
fn a_vanished_listener_peer_is_probed_and_closed() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvh{}", uniq());
    let port = free_port();
    let cfg = format!(
        "[daemon]\ncontrol_socket = \"@CTL@\"\nstats_listen = \"@STATS@\"\n\n[datapath]\nn_handler_threads = 1\nn_revalidator_threads = 1\n\n[[bridge]]\nname = \"{br}\"\ninactivity_probe_ms = 500\nlisteners = [\"punix:@MGMT@\", \"ptcp:{port}:127.0.0.1\"]\n"
    );
    let d = Daemon::start(&cfg);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    s.write_all(&hello()).expect("hello");
    assert_eq!(read_msg(&mut s).expect("switch hello").0, 0);
    // Silent from now on: an ECHO_REQUEST comes, then the close.
    let mut echo = false;
    let t0 = Instant::now();
    loop {
        match read_msg(&mut s) {
            Ok((2, _, _)) => echo = true,
            Ok(_) => {}
            Err(_) => break,
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "never closed");
    }
    assert!(echo, "closed without probing first");
    let mut closed = 0;
    for _ in 0..50 {
        closed = connections(&d)["events"]["closed_probe_timeout"]
            .as_u64()
            .unwrap_or(0);
        if closed == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(closed, 1, "{}", connections(&d));
}
