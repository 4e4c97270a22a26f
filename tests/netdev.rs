//! Integration tests for the netdev backends against real kernel devices.
//!
//! They need root (network namespaces, veth, TAP) and python3 (a raw-socket
//! peer inside the namespace); without them they print a notice and pass,
//! unless `RVSWITCHD_REQUIRE_ALL` is set (as `scripts/test.sh` does), which
//! makes a missing requirement a failure.
//! Each test builds its own namespace and veth pair with pid-based names and
//! tears them down in a Drop guard, so failures leave nothing behind.

use rvswitchd::datapath::packet::{Packet, PacketBatch, BATCH_SIZE};
use rvswitchd::netdev::netlink::{self, LinkEvent, LinkMonitor};
use rvswitchd::netdev::vnet;
use rvswitchd::netdev::{self as nd, NetdevError, PortType};
use rvswitchd::types::PortNo;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::RawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for waiting on the kernel; only a failsafe, never asserted on.
const PATIENCE: Duration = Duration::from_secs(10);
/// Experimental EtherType so that stray traffic (IPv6 ND, MLD) is ignored.
const ETHERTYPE: u16 = 0x88b5;

fn can_run() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let py = Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !root || !py {
        // CI installs everything and runs as root: there a skip would let a
        // test pass without running, so it fails instead.
        assert!(
            std::env::var("RVSWITCHD_REQUIRE_ALL").is_err(),
            "netdev integration tests need root and python3 (RVSWITCHD_REQUIRE_ALL is set)"
        );
        eprintln!("SKIPPED: netdev integration tests need root and python3");
    }
    root && py
}

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn run_quiet(args: &[&str]) {
    let _ = Command::new(args[0])
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// A namespace holding the peer end of a veth pair whose host end stays here.
struct VethNs {
    ns: String,
    host: String,
    peer: String,
}

impl VethNs {
    fn new(tag: &str) -> VethNs {
        let pid = std::process::id() % 100_000;
        let env = VethNs {
            ns: format!("rvns{pid}{tag}"),
            host: format!("rvh{pid}{tag}"),
            peer: format!("rvp{pid}{tag}"),
        };
        assert!(env.host.len() <= 15);
        run(&["ip", "netns", "add", &env.ns]);
        run(&[
            "ip", "link", "add", &env.host, "type", "veth", "peer", "name", &env.peer,
        ]);
        run(&["ip", "link", "set", &env.peer, "netns", &env.ns]);
        run(&["ip", "link", "set", &env.host, "up"]);
        run(&["ip", "-n", &env.ns, "link", "set", &env.peer, "up"]);
        run(&["ip", "-n", &env.ns, "link", "set", "lo", "up"]);
        env
    }

    /// Turns tx checksum offload off on the namespace side when ethtool is
    /// available, so that frames the namespace sends carry final checksums.
    fn tx_offload_off(&self) {
        run_quiet(&[
            "ip", "netns", "exec", &self.ns, "ethtool", "-K", &self.peer, "tx", "off",
        ]);
    }

    fn peer_mac(&self) -> [u8; 6] {
        let s = run(&[
            "ip",
            "netns",
            "exec",
            &self.ns,
            "cat",
            &format!("/sys/class/net/{}/address", self.peer),
        ]);
        s.trim().parse::<rvswitchd::types::MacAddr>().unwrap().0
    }

    /// Sends raw frames out of the namespace side.
    fn send_from_ns(&self, frames: &[Vec<u8>]) {
        let hex: Vec<String> = frames.iter().map(|f| hexstr(f)).collect();
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{}',0))\nfor h in {:?}:\n    s.send(bytes.fromhex(h))\n",
            self.peer, hex
        );
        run(&["ip", "netns", "exec", &self.ns, "python3", "-c", &script]);
    }

    /// Sends `n` copies of `frame` from the namespace side of the pair.
    fn send_copies_from_ns(&self, frame: &[u8], n: usize) {
        let script = format!(
            "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{}',0))\nf=bytes.fromhex('{}')\nfor _ in range({n}):\n    s.send(f)\n",
            self.peer,
            hexstr(frame)
        );
        run(&["ip", "netns", "exec", &self.ns, "python3", "-c", &script]);
    }

    /// Starts a raw listener on the namespace side that prints (hex) the first
    /// frame with our EtherType and exits.
    fn listen_in_ns(&self) -> Listener {
        Listener::start(Some(&self.ns), &self.peer)
    }
}

impl Drop for VethNs {
    fn drop(&mut self) {
        run_quiet(&["ip", "link", "del", &self.host]);
        run_quiet(&["ip", "netns", "del", &self.ns]);
    }
}

/// Deletes a link on drop (for links the test creates outside a namespace).
struct LinkGuard(String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        run_quiet(&["ip", "link", "del", &self.0]);
    }
}

/// A python3 raw-socket listener in a child process.
struct Listener(Child);

impl Listener {
    fn start(ns: Option<&str>, dev: &str) -> Listener {
        let script = format!(
            "import socket,struct\n\
             s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,socket.htons(3))\n\
             s.bind(('{dev}',0))\n\
             s.setsockopt(263,8,1)\n\
             s.settimeout(10)\n\
             print('ready',flush=True)\n\
             while True:\n\
             \x20   d,anc,fl,a=s.recvmsg(70000,64)\n\
             \x20   if a[2]==4: continue\n\
             \x20   for lvl,ty,cd in anc:\n\
             \x20       st,_,_,_,_,tci,tpid=struct.unpack('=IIIHHHH',cd[:20])\n\
             \x20       if lvl==263 and ty==8 and st&16:\n\
             \x20           d=d[:12]+struct.pack('!HH',tpid if st&64 else 0x8100,tci)+d[12:]\n\
             \x20   if bytes.fromhex('{ETHERTYPE:04x}') in (d[12:14],d[16:18]):\n\
             \x20       print(d.hex(),flush=True)\n\
             \x20       break\n"
        );
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "python3", "-c", &script]);
                c
            }
            None => {
                let mut c = Command::new("python3");
                c.args(["-c", &script]);
                c
            }
        };
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        let stdout = child.stdout.as_mut().unwrap();
        let mut r = BufReader::new(stdout);
        r.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        Listener(child)
    }

    /// The frame the listener saw (it exits after one, or after 10 s).
    fn frame(mut self) -> Vec<u8> {
        let mut s = String::new();
        self.0
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        let _ = self.0.wait();
        unhex(s.trim())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hexstr(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, marker: u8, len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(tci) = vlan {
        f.extend_from_slice(&0x8100u16.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ETHERTYPE.to_be_bytes());
    while f.len() < len {
        f.push(marker.wrapping_add(f.len() as u8));
    }
    f
}

fn wait_readable(fd: RawFd, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

/// Receives until `want` frames matching `pred` arrived (or patience ran out).
fn recv_matching(
    dev: &mut dyn nd::Netdev,
    want: usize,
    pred: impl Fn(&Packet) -> bool,
) -> Vec<(Vec<u8>, rvswitchd::datapath::packet::VnetHdr)> {
    let mut batch = PacketBatch::with_capacity(BATCH_SIZE);
    let mut got = Vec::new();
    let start = Instant::now();
    while got.len() < want && start.elapsed() < PATIENCE {
        wait_readable(dev.rx_fd(), 100);
        batch.clear();
        let n = dev.recv_batch(&mut batch).unwrap();
        assert_eq!(n, batch.len());
        for p in batch.packets() {
            if pred(p) {
                got.push((p.data().to_vec(), p.vnet));
            }
        }
    }
    got
}

fn has_marker(p: &Packet, marker: u8) -> bool {
    let d = p.data();
    let et = |off: usize| d.get(off..off + 2) == Some(&ETHERTYPE.to_be_bytes()[..]);
    (et(12) && d.get(14) == Some(&marker.wrapping_add(14)))
        || (et(16) && d.get(18) == Some(&marker.wrapping_add(18)))
}

#[test]
fn missing_device_is_no_such_device() {
    if !can_run() {
        return;
    }
    match nd::open("rvnosuchdev0", PortType::System) {
        Err(NetdevError::NoSuchDevice(n)) => assert_eq!(n, "rvnosuchdev0"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a device that does not exist"),
    }
    assert_eq!(netlink::get_link("rvnosuchdev0").unwrap(), None);
    assert!(matches!(
        netlink::set_link_up("rvnosuchdev0", true),
        Err(NetdevError::NoSuchDevice(_))
    ));
}

#[test]
fn system_receives_frames_whole_with_vlan_tags_restored() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("r");
    env.tx_offload_off();
    let mut dev = nd::open(&env.host, PortType::System).unwrap();
    assert_eq!(dev.name(), env.host);
    receives_three_frames_whole(&env, dev.as_mut());
}

/// The peer sends a small, a VLAN-tagged and a full-size frame; `dev`
/// receives each unchanged, in order, without offload state or errors.
fn receives_three_frames_whole(env: &VethNs, dev: &mut dyn nd::Netdev) {
    let info = netlink::get_link(&env.host).unwrap().unwrap();
    assert_eq!(dev.ifindex(), info.ifindex);
    let src = env.peer_mac();
    let plain = frame([0xff; 6], src, None, 0x10, 60);
    let tagged = frame([0xff; 6], src, Some(0x2064), 0x20, 100);
    let big = frame([0x02, 0, 0, 0, 0, 1], src, None, 0x30, 1514);
    env.send_from_ns(&[plain.clone(), tagged.clone(), big.clone()]);
    let got = recv_matching(dev, 3, |p| {
        has_marker(p, 0x10) || has_marker(p, 0x20) || has_marker(p, 0x30)
    });
    let frames: Vec<&Vec<u8>> = got.iter().map(|(f, _)| f).collect();
    assert_eq!(frames, vec![&plain, &tagged, &big]);
    for (_, v) in &got {
        assert_eq!(v.gso_type, vnet::GSO_NONE);
    }
    assert_eq!(dev.rx_errors(), 0);
}

#[test]
fn receive_overruns_are_counted_and_the_queued_frames_still_arrive() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("o");
    env.tx_offload_off();
    let mut dev = nd::open(&env.host, PortType::System).unwrap();
    overruns_are_counted(&env, dev.as_mut());
}

/// Sends more frames than `dev`'s receive ring (or socket buffer) holds
/// while nobody reads: the kernel drops the excess and says so, and every
/// frame is received or counted. Returns (received, dropped, sent).
fn overruns_are_counted(env: &VethNs, dev: &mut dyn nd::Netdev) -> (u64, u64, u64) {
    let src = env.peer_mac();
    let n = 3000;
    env.send_copies_from_ns(&frame([0xff; 6], src, None, 0x50, 60), n as usize);
    let dropped = dev.rx_overruns();
    assert!(dropped > 0, "no overrun counted after {n} unread frames");
    let mut batch = PacketBatch::with_capacity(32);
    let mut got = 0u64;
    loop {
        batch.clear();
        match dev.recv_batch(&mut batch) {
            Ok(0) => break,
            Ok(k) => got += k as u64,
            Err(e) => panic!("{e}"),
        }
    }
    // Every frame is either received or counted (the host may add a few
    // frames of its own, never fewer).
    assert!(
        got + dropped >= n,
        "received {got} + dropped {dropped} < sent {n}"
    );
    // The counter is cumulative: reading it again does not lose or add drops.
    assert_eq!(dev.rx_overruns(), dropped);
    (got, dropped, n)
}

#[test]
fn system_transmits_and_does_not_see_its_own_frames() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("t");
    let mut dev = nd::open(&env.host, PortType::System).unwrap();
    let dst = env.peer_mac();

    // Through the receive socket.
    let listener = env.listen_in_ns();
    let f1 = frame(dst, [0x02, 0, 0, 0, 0, 0x11], None, 0x40, 64);
    let mut batch = PacketBatch::with_capacity(4);
    assert!(batch.push_copy(&Packet::from_bytes(&f1, PortNo(1))));
    let r = dev.send_batch(&mut batch).unwrap();
    assert_eq!((r.sent, r.dropped), (1, 0));
    assert!(batch.is_empty());
    assert_eq!(listener.frame(), f1);

    // Through a separate transmit handle.
    let mut tx = dev.open_tx().unwrap();
    let listener = env.listen_in_ns();
    let f2 = frame(dst, [0x02, 0, 0, 0, 0, 0x12], Some(7), 0x50, 200);
    assert!(batch.push_copy(&Packet::from_bytes(&f2, PortNo(1))));
    let r = tx.send_batch(&mut batch).unwrap();
    assert_eq!((r.sent, r.dropped), (1, 0));
    assert_eq!(listener.frame(), f2);

    // A frame above the MTU without GSO state is refused and counted.
    let huge = frame(dst, [0x02, 0, 0, 0, 0, 0x13], None, 0x60, 4000);
    assert!(batch.push_copy(&Packet::from_bytes(&huge, PortNo(1))));
    let r = dev.send_batch(&mut batch).unwrap();
    assert_eq!((r.sent, r.dropped), (0, 1));

    // Frames the host itself transmits on the device are not received either.
    let listener = env.listen_in_ns();
    let f3 = frame(dst, [0x02, 0, 0, 0, 0, 0x14], None, 0xa0, 64);
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{}',0))\ns.send(bytes.fromhex('{}'))\n",
        env.host,
        hexstr(&f3)
    );
    run(&["python3", "-c", &script]);
    assert_eq!(listener.frame(), f3);

    // All three frames left before the listener saw them, so had the receive
    // socket been given copies they would be queued by now.
    let mut rx = PacketBatch::with_capacity(BATCH_SIZE);
    loop {
        rx.clear();
        if dev.recv_batch(&mut rx).unwrap() == 0 {
            break;
        }
        for p in rx.packets() {
            assert!(
                !has_marker(p, 0x40) && !has_marker(p, 0x50) && !has_marker(p, 0xa0),
                "saw an outgoing frame"
            );
        }
    }
}

#[test]
fn system_carries_tso_frames_whole_in_both_directions() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("g");
    let out = VethNs::new("w");
    let pid = std::process::id();
    let net = format!("10.{}.{}", 200 + pid % 50, (pid / 50) % 250);
    run(&[
        "ip",
        "addr",
        "add",
        &format!("{net}.1/24"),
        "dev",
        &env.host,
    ]);
    run(&[
        "ip",
        "-n",
        &env.ns,
        "addr",
        "add",
        &format!("{net}.2/24"),
        "dev",
        &env.peer,
    ]);
    let mut dev = nd::open(&env.host, PortType::System).unwrap();
    let listener = std::net::TcpListener::bind(format!("{net}.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let reader = std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut sink = Vec::new();
            let _ = s.read_to_end(&mut sink);
        }
    });
    let script = format!(
        "import socket\nc=socket.create_connection(('{net}.1',{port}),timeout=10)\nc.sendall(b'x'*2000000)\nc.close()\n"
    );
    run(&["ip", "netns", "exec", &env.ns, "python3", "-c", &script]);
    let _ = reader.join();
    let got = recv_matching(dev.as_mut(), 1, |p| {
        p.vnet.gso_type != vnet::GSO_NONE && p.len() > 1514
    });
    assert!(!got.is_empty(), "no GSO frame arrived whole");
    let (gso_frame, hdr) = &got[0];
    assert_eq!(hdr.gso_type & !vnet::GSO_ECN, vnet::GSO_TCPV4);
    assert!(hdr.gso_size > 0);
    assert_eq!(vnet::validate(hdr, gso_frame.len()), Ok(()));
    assert_eq!(dev.rx_errors(), 0);

    // Sending it on another port with its header: accepted whole (without the
    // header a frame this size would be refused as above the MTU).
    let rx_before: u64 = run(&[
        "ip",
        "netns",
        "exec",
        &out.ns,
        "cat",
        &format!("/sys/class/net/{}/statistics/rx_bytes", out.peer),
    ])
    .trim()
    .parse()
    .unwrap();
    let mut odev = nd::open(&out.host, PortType::System).unwrap();
    let mut batch = PacketBatch::with_capacity(1);
    let mut p = Packet::from_bytes(gso_frame, PortNo(1));
    p.vnet = *hdr;
    assert!(batch.push_copy(&p));
    let r = odev.send_batch(&mut batch).unwrap();
    assert_eq!((r.sent, r.dropped), (1, 0));
    let start = Instant::now();
    let mut rx_after = rx_before;
    while rx_after < rx_before + gso_frame.len() as u64 - 14 && start.elapsed() < PATIENCE {
        std::thread::sleep(Duration::from_millis(20));
        rx_after = run(&[
            "ip",
            "netns",
            "exec",
            &out.ns,
            "cat",
            &format!("/sys/class/net/{}/statistics/rx_bytes", out.peer),
        ])
        .trim()
        .parse()
        .unwrap();
    }
    assert!(rx_after >= rx_before + gso_frame.len() as u64 - 14);
}

#[test]
fn vanished_device_reports_link_down_instead_of_spinning() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("d");
    let mut dev = nd::open(&env.host, PortType::System).unwrap();
    let mut tx = dev.open_tx().unwrap();
    run(&["ip", "link", "del", &env.host]);
    let mut batch = PacketBatch::with_capacity(2);
    let f = frame([0xff; 6], [2, 0, 0, 0, 0, 1], None, 0x70, 60);
    assert!(batch.push_copy(&Packet::from_bytes(&f, PortNo(1))));
    let e = dev.send_batch(&mut batch).unwrap_err();
    assert!(e.is_link_down(), "{e}");
    assert!(batch.is_empty());
    assert!(batch.push_copy(&Packet::from_bytes(&f, PortNo(1))));
    let e = tx.send_batch(&mut batch).unwrap_err();
    assert!(e.is_link_down(), "{e}");
    // Receive reports the loss once, then only drains what was queued before.
    let e = dev.recv_batch(&mut batch).unwrap_err();
    assert!(e.is_link_down(), "{e}");
    assert!(batch.is_empty());
    drain_without_errors(dev.as_mut());
}

/// Reads until the socket is empty; every read must succeed (a reported
/// link-down must not repeat). Frames queued before the event may come out.
fn drain_without_errors(dev: &mut dyn nd::Netdev) {
    let mut batch = PacketBatch::with_capacity(BATCH_SIZE);
    for _ in 0..1000 {
        batch.clear();
        if dev.recv_batch(&mut batch).unwrap() == 0 {
            return;
        }
    }
    panic!("receive never ran dry");
}

/// Waits for a monitor event satisfying `pred`.
fn wait_event(mon: &mut LinkMonitor, pred: impl Fn(&LinkEvent) -> bool) -> Option<LinkEvent> {
    let start = Instant::now();
    let mut evs = Vec::new();
    while start.elapsed() < PATIENCE {
        wait_readable(mon.fd(), 100);
        evs.clear();
        mon.poll_events(&mut evs).unwrap();
        if let Some(e) = evs.iter().find(|e| pred(e)) {
            return Some(e.clone());
        }
    }
    None
}

#[test]
fn tap_device_lifecycle_io_and_link_events() {
    if !can_run() {
        return;
    }
    let name = format!("rvtap{}", std::process::id() % 100_000);
    let _guard = LinkGuard(name.clone());
    let mut mon = LinkMonitor::open().unwrap();
    let mut tap = nd::open(&name, PortType::Tap).unwrap();
    let info = netlink::get_link(&name).unwrap().expect("tap exists");
    assert_eq!(info.ifindex, tap.ifindex());
    assert_eq!(info.name, name);
    assert!(!info.admin_up, "we must not bring the device up ourselves");
    assert_ne!(info.mac, rvswitchd::types::MacAddr::default());
    assert_eq!(info.mtu, 1500);
    assert!(netlink::list_links().unwrap().contains(&info));

    netlink::set_link_up(&name, true).unwrap();
    let ev = wait_event(
        &mut mon,
        |e| matches!(e, LinkEvent::Changed(l) if l.name == name && l.admin_up),
    );
    assert!(ev.is_some(), "no up event for {name}");
    let info = netlink::get_link(&name).unwrap().unwrap();
    assert!(info.admin_up && info.carrier);

    // Host -> tap: a frame the host sends on the device is what we receive.
    let f = frame([0xff; 6], [2, 0, 0, 0, 0, 0x21], None, 0x80, 80);
    let script = format!(
        "import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\ns.bind(('{name}',0))\ns.send(bytes.fromhex('{}'))\n",
        hexstr(&f)
    );
    run(&["python3", "-c", &script]);
    let got = recv_matching(tap.as_mut(), 1, |p| has_marker(p, 0x80));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, f);

    // Tap -> host: what we send shows up as received on the device.
    let listener = Listener::start(None, &name);
    let g = frame([0xff; 6], [2, 0, 0, 0, 0, 0x22], None, 0x90, 90);
    let mut batch = PacketBatch::with_capacity(2);
    assert!(batch.push_copy(&Packet::from_bytes(&g, PortNo(1))));
    let mut tx = tap.open_tx().unwrap();
    let r = tx.send_batch(&mut batch).unwrap();
    assert_eq!((r.sent, r.dropped), (1, 0));
    assert_eq!(listener.frame(), g);

    netlink::set_link_up(&name, false).unwrap();
    assert!(!netlink::get_link(&name).unwrap().unwrap().admin_up);

    // Closing every descriptor deletes the device.
    let ifindex = tap.ifindex();
    drop(tx);
    drop(tap);
    let ev = wait_event(
        &mut mon,
        |e| matches!(e, LinkEvent::Deleted { ifindex: i, .. } if *i == ifindex),
    );
    assert_eq!(
        ev,
        Some(LinkEvent::Deleted {
            ifindex,
            name: name.clone()
        })
    );
    assert_eq!(netlink::get_link(&name).unwrap(), None);
}

#[test]
fn monitor_thread_reports_veth_deletion() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("m");
    let host = env.host.clone();
    let ifindex = netlink::get_link(&host).unwrap().unwrap().ifindex;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = netlink::spawn_monitor_thread(move |e| {
        let _ = tx.send(e);
    })
    .unwrap();
    run(&["ip", "link", "del", &host]);
    let start = Instant::now();
    let mut found = false;
    while !found && start.elapsed() < PATIENCE {
        if let Ok(LinkEvent::Deleted { ifindex: i, name }) =
            rx.recv_timeout(Duration::from_millis(200))
        {
            if i == ifindex {
                assert_eq!(name, host);
                found = true;
            }
        }
    }
    assert!(found, "no Deleted event for {host}");
    thread.stop();
}

#[test]
fn admin_down_is_reported_once_and_receive_resumes_after_up() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("u");
    let mut dev = nd::open(&env.host, PortType::System).unwrap();
    netlink::set_link_up(&env.host, false).unwrap();
    let mut batch = PacketBatch::with_capacity(BATCH_SIZE);
    let e = dev.recv_batch(&mut batch).unwrap_err();
    assert!(e.is_link_down(), "{e}");
    drain_without_errors(dev.as_mut());
    let f = frame([0xff; 6], env.peer_mac(), None, 0xb0, 60);
    assert!(batch.push_copy(&Packet::from_bytes(&f, PortNo(1))));
    let e = dev.send_batch(&mut batch).unwrap_err();
    assert!(e.is_link_down(), "{e}");

    netlink::set_link_up(&env.host, true).unwrap();
    assert!(netlink::get_link(&env.host).unwrap().unwrap().admin_up);
    env.send_from_ns(std::slice::from_ref(&f));
    let got = recv_matching(dev.as_mut(), 1, |p| has_marker(p, 0xb0));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, f);
}

/// True when `dev` (in this namespace) has an XDP program attached.
fn has_xdp(dev: &str) -> bool {
    run(&["ip", "-d", "link", "show", "dev", dev]).contains("prog/xdp")
}

#[test]
fn afxdp_receives_and_transmits_in_every_copy_mode_and_detaches_on_drop() {
    if !can_run() {
        return;
    }
    use rvswitchd::types::XdpMode;
    for (i, mode) in [XdpMode::Generic, XdpMode::Native, XdpMode::BestEffort]
        .into_iter()
        .enumerate()
    {
        let env = VethNs::new(&format!("x{i}"));
        env.tx_offload_off();
        assert!(!has_xdp(&env.host));
        let opts = nd::DeviceOptions { xdp_mode: mode };
        let mut dev = nd::open_with(&env.host, PortType::Afxdp, &opts)
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(has_xdp(&env.host), "{mode:?}: no XDP program attached");
        // Peer -> us, through the redirect program and the rx ring.
        receives_three_frames_whole(&env, dev.as_mut());

        // Us -> peer, through the tx ring; then through a transmit handle.
        let dst = env.peer_mac();
        let mut batch = PacketBatch::with_capacity(4);
        for (marker, handle) in [(0x40u8, false), (0x50, true)] {
            let listener = env.listen_in_ns();
            let f = frame(dst, [0x02, 0, 0, 0, 0, marker], None, marker, 64);
            assert!(batch.push_copy(&Packet::from_bytes(&f, PortNo(1))));
            let r = if handle {
                dev.open_tx().unwrap().send_batch(&mut batch).unwrap()
            } else {
                dev.send_batch(&mut batch).unwrap()
            };
            assert_eq!((r.sent, r.dropped), (1, 0), "{mode:?}");
            assert!(batch.is_empty());
            assert_eq!(listener.frame(), f, "{mode:?} handle {handle}");
        }
        // Many batches in a row: frames come back through the completion
        // ring, so the UMEM never runs out.
        let f = frame(dst, [0x02, 0, 0, 0, 0, 0x60], None, 0x60, 60);
        let mut sent = 0;
        for _ in 0..200 {
            for _ in 0..4 {
                assert!(batch.push_copy(&Packet::from_bytes(&f, PortNo(1))));
            }
            let r = dev.send_batch(&mut batch).unwrap();
            assert_eq!(r.dropped, 0, "{mode:?}");
            sent += r.sent;
        }
        assert_eq!(sent, 800);

        drop(dev);
        assert!(!has_xdp(&env.host), "{mode:?}: XDP program left behind");
    }
}

#[test]
fn afxdp_overruns_are_counted_and_the_ring_still_delivers() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("xo");
    env.tx_offload_off();
    let mut dev = nd::open(&env.host, PortType::Afxdp).unwrap();
    // More frames than the fill ring has frames for.
    let (got, dropped, n) = overruns_are_counted(&env, dev.as_mut());
    // Each drop is counted once (the kernel counts a frame that found the
    // fill ring empty in two of its counters), and the host adds few
    // frames of its own on this veth.
    assert!(got + dropped < n + 50, "received {got} + dropped {dropped}");
    let src = env.peer_mac();
    // Frames given back refill the ring: receive works again.
    env.send_from_ns(&[frame([0xff; 6], src, None, 0x70, 60)]);
    assert_eq!(
        recv_matching(dev.as_mut(), 1, |p| has_marker(p, 0x70)).len(),
        1
    );
}

#[test]
fn afxdp_refuses_an_mtu_larger_than_a_frame() {
    if !can_run() {
        return;
    }
    let env = VethNs::new("xm");
    run(&["ip", "link", "set", &env.host, "mtu", "9000"]);
    let err = nd::open(&env.host, PortType::Afxdp).err().expect("opened");
    let msg = err.to_string();
    assert!(
        msg.contains("MTU 9000") && msg.contains("3822"),
        "unexpected error: {msg}"
    );
    assert!(!has_xdp(&env.host));
}

/// A TCP super-frame (GSO, 8000 bytes of payload) the peer injects through
/// AF_PACKET with a virtio-net header, as its stack would with TSO.
fn send_super_frame_from_ns(env: &VethNs, marker: u8) {
    let mut f = frame([0x02, 0, 0, 0, 0, 1], env.peer_mac(), None, marker, 14);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let payload = 8000usize;
    let mut ip = vec![
        0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 9, 0, 2, 10, 9, 0, 1,
    ];
    ip[2..4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&5000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5001u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x18; // PSH, ACK
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f.extend((0..payload).map(|i| marker.wrapping_add(i as u8)));
    // flags NEEDS_CSUM, gso TCPV4, hdr_len 54, gso_size 1448, csum at 34+16.
    let script = format!(
        "import socket,struct\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)\n\
         s.setsockopt(263,15,1)\ns.bind(('{}',0))\n\
         s.send(struct.pack('=BBHHHH',1,1,54,1448,34,16)+bytes.fromhex('{}'))\n",
        env.peer,
        hexstr(&f)
    );
    run(&["ip", "netns", "exec", &env.ns, "python3", "-c", &script]);
}

#[test]
fn afxdp_never_receives_a_super_frame_and_counts_what_it_cannot_take() {
    if !can_run() {
        return;
    }
    use rvswitchd::types::XdpMode;
    for (i, mode) in [XdpMode::Native, XdpMode::Generic].into_iter().enumerate() {
        let env = VethNs::new(&format!("xg{i}"));
        let opts = nd::DeviceOptions { xdp_mode: mode };
        let mut dev = nd::open_with(&env.host, PortType::Afxdp, &opts).unwrap();
        let before = dev.rx_overruns();
        send_super_frame_from_ns(&env, 0x90);
        // Then a marker frame: once it is in, the super-frame was handled.
        env.send_from_ns(&[frame([0xff; 6], env.peer_mac(), None, 0x91, 60)]);
        let got = recv_matching(dev.as_mut(), 1, |p| {
            p.data().get(12..14) == Some(&[8, 0][..]) || has_marker(p, 0x91)
        });
        assert!(
            got.iter().any(|(f, _)| f.len() == 60),
            "{mode:?}: no marker"
        );
        let segs: Vec<usize> = got
            .iter()
            .map(|(f, _)| f.len())
            .filter(|&n| n != 60)
            .collect();
        for n in &segs {
            assert!(*n <= 1514, "{mode:?}: a {n}-byte frame");
        }
        let segs = segs.len();
        let dropped = dev.rx_overruns() - before;
        eprintln!("{mode:?}: {segs} segments received, {dropped} counted as dropped");
        match mode {
            // With the program in the driver, veth takes GSO from its peer,
            // so the peer's kernel segments: 8000 bytes in 1448-byte parts.
            XdpMode::Native => assert_eq!((segs, dropped), (6, 0), "{mode:?}"),
            // Generic XDP sees the super-frame whole; AF_XDP has no room for
            // it and the kernel drops it, counted.
            _ => assert_eq!((segs, dropped), (0, 1), "{mode:?}"),
        }
    }
}
