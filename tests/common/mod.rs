//! Shared helpers for the integration tests: start the real daemon with a
//! temporary config, talk to it with the real `ovs-appctl`/`ovs-ofctl`, build
//! network namespaces with veth pairs. Everything created is removed by Drop
//! guards, and names carry the test's pid and a counter so runs never collide.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A short unique tag for names (interface names are limited to 15 bytes).
pub fn uniq() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}{}", std::process::id() % 0xfffff, n)
}

/// True when running as root (the traffic tests need it).
pub fn is_root() -> bool {
    // SAFETY: getuid has no preconditions.
    unsafe { libc::getuid() == 0 }
}

/// True when a program is on PATH.
pub fn have(prog: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {prog}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Returns false (and says why) when the test cannot run here. CI installs
/// everything, so there a missing tool is a real failure: set
/// RVSWITCHD_REQUIRE_ALL=1 to turn skips into panics.
pub fn require(root: bool, progs: &[&str]) -> bool {
    let strict = std::env::var("RVSWITCHD_REQUIRE_ALL").is_ok();
    if root && !is_root() {
        assert!(!strict, "this test needs root");
        eprintln!("SKIPPED: needs root");
        return false;
    }
    for p in progs {
        if !have(p) {
            assert!(!strict, "this test needs {p}");
            eprintln!("SKIPPED: {p} is not installed");
            return false;
        }
    }
    true
}

/// Runs a command, returning (status ok, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (bool, String, String) {
    match Command::new(cmd).args(args).output() {
        Ok(o) => (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (false, String::new(), e.to_string()),
    }
}

/// Runs a shell command line; panics with its output when it fails.
pub fn sh(line: &str) -> String {
    let o = Command::new("sh").args(["-c", line]).output().expect("sh");
    assert!(
        o.status.success(),
        "command failed: {line}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs a shell command line, returning success and combined output.
pub fn sh_try(line: &str) -> (bool, String) {
    match Command::new("sh").args(["-c", line]).output() {
        Ok(o) => (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        ),
        Err(e) => (false, e.to_string()),
    }
}

/// Polls `f` until it returns true or `secs` pass.
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(secs) {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Whether os-ken imports; when it does not, the test is skipped (loudly),
/// unless RVSWITCHD_REQUIRE_ALL says every tool must be there.
pub fn have_osken() -> bool {
    if sh_try("python3 -c 'import os_ken'").0 {
        return true;
    }
    assert!(
        std::env::var("RVSWITCHD_REQUIRE_ALL").is_err(),
        "os-ken missing"
    );
    eprintln!("SKIPPED: os-ken not installed");
    false
}

/// Kills a child process on drop.
pub struct Proc(pub std::process::Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running daemon, killed on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub dir: PathBuf,
    pub ctl: PathBuf,
    pub config: PathBuf,
    pub stats: String,
    pub mgmt: PathBuf,
    pub log: PathBuf,
    /// The network namespace the daemon runs in (`None`: the test's own).
    pub netns: Option<String>,
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

impl Daemon {
    /// Writes `body` (with `@DIR@`, `@CTL@`, `@STATS@`, `@MGMT@` substituted) as
    /// the config and starts the daemon in the foreground.
    pub fn start(body: &str) -> Daemon {
        Daemon::start_in(None, body)
    }

    /// As [`Daemon::start`], inside network namespace `netns` (a "hypervisor"
    /// of a multi-host test). Its unix sockets are reachable from here; its
    /// HTTP listener only inside that namespace.
    pub fn start_in(netns: Option<&str>, body: &str) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("rvs-test-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let ctl = dir.join("ctl.sock");
        let mgmt = dir.join("br.mgmt");
        let stats = format!("127.0.0.1:{}", free_port());
        let text = body
            .replace("@DIR@", &dir.display().to_string())
            .replace("@CTL@", &ctl.display().to_string())
            .replace("@STATS@", &stats)
            .replace("@MGMT@", &mgmt.display().to_string());
        let config = dir.join("rvswitchd.toml");
        std::fs::write(&config, text).expect("write config");
        let _ = stats.len();
        let log = dir.join("rvswitchd.log");
        let mut d = Daemon {
            child: None,
            dir,
            ctl,
            config,
            stats,
            mgmt,
            log,
            netns: netns.map(str::to_string),
        };
        d.spawn();
        d
    }

    /// Substitutes this daemon's paths into a config body (for reload tests).
    pub fn render(&self, body: &str) -> String {
        body.replace("@DIR@", &self.dir.display().to_string())
            .replace("@CTL@", &self.ctl.display().to_string())
            .replace("@STATS@", &self.stats)
            .replace("@MGMT@", &self.mgmt.display().to_string())
    }

    /// Starts (or restarts) the process.
    pub fn spawn(&mut self) {
        let mut cmd = match &self.netns {
            // `ip netns exec` execs the binary itself: the child's pid is the daemon's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args([
                    "netns",
                    "exec",
                    ns.as_str(),
                    env!("CARGO_BIN_EXE_rvswitchd"),
                ]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_rvswitchd")),
        };
        let child = cmd
            .arg("--config")
            .arg(&self.config)
            .arg("--log-file")
            .arg(&self.log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start rvswitchd");
        self.child = Some(child);
        let ctl = self.ctl.clone();
        assert!(
            wait_for(20, || std::os::unix::net::UnixStream::connect(&ctl).is_ok()),
            "daemon did not create its control socket; log:\n{}",
            self.log_text()
        );
        let uses_mgmt = std::fs::read_to_string(&self.config)
            .map(|t| t.contains(&self.mgmt.display().to_string()))
            .unwrap_or(false);
        if uses_mgmt {
            let mgmt = self.mgmt.clone();
            assert!(
                wait_for(20, || std::os::unix::net::UnixStream::connect(&mgmt)
                    .is_ok()),
                "daemon did not open its OpenFlow socket; log:\n{}",
                self.log_text()
            );
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `ovs-appctl -t CTL args...` → (ok, stdout, stderr).
    pub fn appctl(&self, args: &[&str]) -> (bool, String, String) {
        let mut a = vec!["-t", self.ctl.to_str().unwrap_or("")];
        a.extend_from_slice(args);
        run("ovs-appctl", &a)
    }

    /// `ovs-appctl` that must succeed.
    pub fn appctl_ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.appctl(args);
        assert!(
            ok,
            "ovs-appctl {args:?} failed: {err}\nlog:\n{}",
            self.log_text()
        );
        out
    }

    /// `ovs-ofctl -O OpenFlow13 CMD unix:MGMT args...` → (ok, stdout, stderr).
    pub fn ofctl(&self, cmd: &str, args: &[&str]) -> (bool, String, String) {
        let target = format!("unix:{}", self.mgmt.display());
        let mut a = vec!["-O", "OpenFlow13", cmd, target.as_str()];
        a.extend_from_slice(args);
        run("ovs-ofctl", &a)
    }

    /// `ovs-ofctl` that must succeed.
    pub fn ofctl_ok(&self, cmd: &str, args: &[&str]) -> String {
        let (ok, out, err) = self.ofctl(cmd, args);
        assert!(
            ok,
            "ovs-ofctl {cmd} {args:?} failed: {err}\nlog:\n{}",
            self.log_text()
        );
        out
    }

    /// Plain HTTP GET against the stats endpoint.
    pub fn http_get(&self, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(&self.stats).expect("connect stats");
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or(out)
    }

    /// GET /stats parsed.
    pub fn stats_json(&self) -> serde_json::Value {
        let body = self.http_get("/stats");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("bad /stats JSON ({e}): {body}"))
    }

    /// Waits for a full revalidation round.
    pub fn reval_wait(&self) {
        self.appctl_ok(&["revalidator/wait"]);
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: sending SIGTERM to our own child.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::env::var("RVSWITCHD_KEEP_TEST_DIRS").is_err() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A network namespace acting as a host, plugged into the switch by a veth
/// pair: `port` is the switch-side interface, `ns` holds the other end
/// (`eth0`) with an address. Removed on drop.
pub struct Host {
    pub ns: String,
    pub port: String,
    pub ip: String,
    pub mac: String,
}

impl Host {
    /// Creates the namespace and veth pair, addresses `ip/24`, turns off
    /// checksum offloads (the switch path is userspace), brings links up.
    pub fn new(tag: &str, idx: u8, subnet: &str) -> Host {
        let ns = format!("rvs{tag}h{idx}");
        let port = format!("rv{tag}p{idx}");
        let ip = format!("{subnet}.{idx}");
        let mac = format!("02:00:00:{:02x}:00:{:02x}", tag.len() as u8, idx);
        let _ = sh_try(&format!(
            "ip netns del {ns} 2>/dev/null; ip link del {port} 2>/dev/null"
        ));
        sh(&format!("ip netns add {ns}"));
        sh(&format!(
            "ip link add {port} type veth peer name eth0 netns {ns}"
        ));
        // No IPv6 chatter (router solicitations, MLD, DAD) from either end:
        // tests count packets, and the root namespace's side adds its own.
        let _ = sh_try(&format!("sysctl -qw net.ipv6.conf.{port}.disable_ipv6=1"));
        let _ = sh_try(&format!(
            "ip netns exec {ns} sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.eth0.disable_ipv6=1"
        ));
        sh(&format!(
            "ip netns exec {ns} ip link set eth0 address {mac}"
        ));
        sh(&format!("ip netns exec {ns} ip addr add {ip}/24 dev eth0"));
        sh(&format!("ip netns exec {ns} ip link set eth0 up"));
        sh(&format!("ip netns exec {ns} ip link set lo up"));
        sh(&format!("ip link set {port} up"));
        if have("ethtool") {
            let _ = sh_try(&format!(
                "ip netns exec {ns} ethtool -K eth0 tx off rx off >/dev/null 2>&1"
            ));
            let _ = sh_try(&format!("ethtool -K {port} tx off rx off >/dev/null 2>&1"));
        }
        Host { ns, port, ip, mac }
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, cmd: &str) -> (bool, String) {
        sh_try(&format!("ip netns exec {} {cmd}", self.ns))
    }

    /// One ping (waiting up to `wait` s); true when answered.
    pub fn ping(&self, ip: &str, count: u32) -> bool {
        self.exec(&format!("ping -c {count} -i 0.2 -W 2 {ip}")).0
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = sh_try(&format!("ip netns del {}", self.ns));
        let _ = sh_try(&format!("ip link del {} 2>/dev/null", self.port));
    }
}

/// The config of a bridge with the given system ports, standalone, with a
/// punix listener at @MGMT@ and a ptcp listener on `ofport_tcp`.
pub fn bridge_config(bridge: &str, ports: &[&str], extra_bridge: &str, extra_dp: &str) -> String {
    bridge_config_typed(bridge, ports, "system", extra_bridge, extra_dp)
}

/// [`bridge_config`] with ports of type `port_type` (`system`, `afxdp`).
pub fn bridge_config_typed(
    bridge: &str,
    ports: &[&str],
    port_type: &str,
    extra_bridge: &str,
    extra_dp: &str,
) -> String {
    let mut s = format!(
        "[daemon]\ncontrol_socket = \"@CTL@\"\nstats_listen = \"@STATS@\"\nlog_level = \"info\"\n\n[datapath]\nn_handler_threads = 1\nn_revalidator_threads = 1\n{extra_dp}\n\n[[bridge]]\nname = \"{bridge}\"\nlisteners = [\"punix:@MGMT@\"]\n{extra_bridge}\n"
    );
    for (i, p) in ports.iter().enumerate() {
        s.push_str(&format!(
            "\n[[bridge.port]]\nname = \"{p}\"\ntype = \"{port_type}\"\nofport = {}\n",
            i + 1
        ));
    }
    s
}

/// Path of a file in the test sources.
pub fn tests_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
}
