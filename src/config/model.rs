//! The configuration model: what each TOML key means, its default and its range.

use super::{locate, ConfigError};
use crate::types::DatapathId;
use crate::types::{PortType, XdpMode};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// The whole file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[daemon]`: process-wide settings.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// `[datapath]`: fast path and upcall/revalidator tuning.
    #[serde(default)]
    pub datapath: DatapathConfig,
    /// `[[bridge]]`: the switches.
    #[serde(default)]
    pub bridge: Vec<BridgeConfig>,
    /// `[openflow]`: limits and socket settings of every OpenFlow connection.
    #[serde(default)]
    pub openflow: OpenflowConfig,
    /// `[ssl]`: key and certificates for `ssl:` controllers and `pssl:` listeners.
    #[serde(default)]
    pub ssl: SslConfig,
}

/// `[daemon]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// The ovs-appctl compatible control socket.
    pub control_socket: PathBuf,
    /// `IP:PORT` of the HTTP actor-stats endpoint; empty disables it.
    pub stats_listen: String,
    /// Initial log filter (tracing `EnvFilter` syntax: `info`, `rvswitchd=debug`, ...).
    pub log_level: String,
    /// A file without any `[[bridge]]` is refused (an empty or truncated file
    /// would otherwise delete every bridge on reload) unless this says that
    /// running no bridge is what is meant.
    pub allow_no_bridges: bool,
    /// Also serve the paths Open vSwitch's tools look for, so that
    /// `ovs-ofctl dump-flows BRIDGE` and `ovs-appctl CMD` work without `-t`:
    /// `punix:RUNDIR/BRIDGE.mgmt` is added to every bridge's listeners, and the
    /// daemon writes `RUNDIR/ovs-vswitchd.pid` and serves its control socket at
    /// `RUNDIR/ovs-vswitchd.PID.ctl` too; RUNDIR is `$OVS_RUNDIR` or
    /// `/var/run/openvswitch`. The daemon refuses to start this way while a
    /// real `ovs-vswitchd` runs.
    pub ovs_compat_paths: bool,
    /// Where each bridge's state file (`BRIDGE.state`: its OpenFlow rules,
    /// groups and meters, restored at start) is kept. Default: `state` in
    /// the control socket's directory (`/run/rvswitchd/state`: it survives
    /// a restart of the daemon, not a reboot). Created mode 0700.
    pub state_dir: Option<PathBuf>,
    /// A bridge whose tables changed writes its state file at most once per
    /// this many ms (and always at a clean shutdown).
    pub state_save_ms: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            control_socket: PathBuf::from("/run/rvswitchd/rvswitchd.ctl"),
            stats_listen: "127.0.0.1:9464".to_string(),
            log_level: "info".to_string(),
            allow_no_bridges: false,
            ovs_compat_paths: false,
            state_dir: None,
            state_save_ms: 1000,
        }
    }
}

impl DaemonConfig {
    /// The state file directory in force (see [`DaemonConfig::state_dir`]).
    pub fn state_dir(&self) -> PathBuf {
        match &self.state_dir {
            Some(d) => d.clone(),
            None => self
                .control_socket
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
                .join("state"),
        }
    }
}

/// `[datapath]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatapathConfig {
    /// Most datapath flows the upcall handlers may install (OVS `flow-limit`).
    pub flow_limit: u32,
    /// Idle datapath flows are deleted after this many ms (OVS `max-idle`).
    pub max_idle_ms: u64,
    /// Upcall handler actors; 0 = OVS's formula from the core count.
    pub n_handler_threads: usize,
    /// Revalidator actors; 0 = OVS's formula from the core count.
    pub n_revalidator_threads: usize,
    /// Datapath poll threads per bridge.
    pub n_pmd_threads: usize,
    /// Capacity, in batches, of each upcall queue.
    pub upcall_queue_batches: usize,
    /// After the last received packet, a poll thread keeps polling without
    /// sleeping for this many microseconds (0 = sleep at once). Waking a sleeping
    /// thread costs tens of microseconds of latency on a VM; spinning trades a CPU
    /// for latency while traffic flows, and returns to sleep when it stops.
    /// The default, 100 µs, is long enough to catch the answer to what was
    /// just forwarded (a ping's reply, a TCP ack from a local peer) without a
    /// wake-up, and short enough that an idle switch costs nothing and a
    /// ping every 10 ms costs about 2 % of a CPU (issue 13, "adaptive spin").
    pub busy_poll_us: u64,
}

/// Default `busy_poll_us` (see there).
pub const DEFAULT_BUSY_POLL_US: u64 = 100;

impl Default for DatapathConfig {
    fn default() -> Self {
        DatapathConfig {
            flow_limit: 200_000,
            max_idle_ms: 10_000,
            n_handler_threads: 0,
            n_revalidator_threads: 0,
            n_pmd_threads: 1,
            upcall_queue_batches: 256,
            busy_poll_us: DEFAULT_BUSY_POLL_US,
        }
    }
}

impl DatapathConfig {
    /// Thread counts as OVS computes them (`ofproto-dpif-upcall.c`:
    /// `udpif_set_threads()` callers; `threads = max(cores, 2)`;
    /// revalidators `threads/4 + 1` or `max(threads - handlers, 1)`; handlers
    /// `max(threads - revalidators, 1)`). Returns `(handlers, revalidators)`.
    pub fn thread_counts(&self, cores: usize) -> (usize, usize) {
        let threads = cores.max(2);
        let n_rev = if self.n_revalidator_threads > 0 {
            self.n_revalidator_threads
        } else if self.n_handler_threads > 0 {
            threads.saturating_sub(self.n_handler_threads).max(1)
        } else {
            threads / 4 + 1
        };
        let n_hand = if self.n_handler_threads > 0 {
            self.n_handler_threads
        } else {
            threads.saturating_sub(n_rev).max(1)
        };
        (n_hand, n_rev)
    }
}

/// What a bridge does when it has no controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Fall back to NORMAL switching after losing every controller.
    #[default]
    Standalone,
    /// Keep the flows, never fall back.
    Secure,
}

/// `[[bridge]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Bridge name; also the name of its internal port (a TAP device).
    pub name: String,
    /// 16 hex digits; derived from the name when absent.
    #[serde(default)]
    pub datapath_id: Option<String>,
    /// Behaviour without controllers.
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Passive OpenFlow listeners: `ptcp:PORT[:IP]`, `punix:PATH`.
    #[serde(default)]
    pub listeners: Vec<String>,
    /// Active controller connections: `tcp:IP[:PORT]`, `unix:PATH`.
    #[serde(default)]
    pub controllers: Vec<String>,
    /// OpenFlow versions this bridge allows its controllers and tools, by
    /// Open vSwitch's names (`Bridge:protocols`): "OpenFlow10", "OpenFlow13",
    /// "OpenFlow14", "OpenFlow15". Absent: all four (OVS also allows every
    /// version it implements by default).
    #[serde(default)]
    pub protocols: Option<Vec<String>>,
    /// Inactivity probe interval for controller connections, ms (0 disables).
    #[serde(default = "default_probe_ms")]
    pub inactivity_probe_ms: u64,
    /// Longest reconnect backoff, ms.
    #[serde(default = "default_max_backoff_ms")]
    pub max_backoff_ms: u64,
    /// MAC learning entry lifetime, seconds.
    #[serde(default = "default_mac_aging")]
    pub mac_aging_secs: u64,
    /// MAC learning table size.
    #[serde(default = "default_mac_size")]
    pub mac_table_size: usize,
    /// Whether to create the internal port (a TAP named like the bridge).
    #[serde(default = "default_true")]
    pub internal_port: bool,
    /// Keep the bridge's OpenFlow rules, groups and meters across restarts:
    /// written to `STATE_DIR/BRIDGE.state` after changes and restored at
    /// start, before any controller can connect. `false`: the tables start
    /// empty, nothing is written, and an existing state file is deleted (so
    /// that turning it on again cannot bring back stale tables).
    #[serde(default = "default_true")]
    pub restore_flows: bool,
    /// `[[bridge.port]]`.
    #[serde(default)]
    pub port: Vec<PortConfig>,
}

/// OpenFlow versions by Open vSwitch's names, with their wire numbers: the
/// ones this switch speaks, and the ones it knows but does not implement.
const PROTOCOLS: &[(&str, Option<u8>)] = &[
    ("OpenFlow10", Some(0x01)),
    ("OpenFlow11", None),
    ("OpenFlow12", None),
    ("OpenFlow13", Some(0x04)),
    ("OpenFlow14", Some(0x05)),
    ("OpenFlow15", Some(0x06)),
];

/// The wire version of a `protocols` name, or why it cannot be allowed.
pub fn protocol_wire_version(name: &str) -> Result<u8, String> {
    match PROTOCOLS.iter().find(|(n, _)| *n == name) {
        Some((_, Some(v))) => Ok(*v),
        Some((_, None)) => Err(format!(
            "{name:?} is not implemented (this switch speaks OpenFlow10, OpenFlow13, OpenFlow14 and OpenFlow15)"
        )),
        None => Err(format!(
            "{name:?} is not an OpenFlow version name (OpenFlow10, OpenFlow13, OpenFlow14, OpenFlow15)"
        )),
    }
}

impl BridgeConfig {
    /// The wire versions the bridge allows: its `protocols` (validated), or
    /// every version this switch speaks.
    pub fn protocol_versions(&self) -> Vec<u8> {
        match &self.protocols {
            Some(names) => names
                .iter()
                .filter_map(|n| protocol_wire_version(n).ok())
                .collect(),
            None => PROTOCOLS.iter().filter_map(|(_, v)| *v).collect(),
        }
    }
}

fn default_probe_ms() -> u64 {
    5000
}
fn default_max_backoff_ms() -> u64 {
    8000
}
fn default_mac_aging() -> u64 {
    300
}
fn default_mac_size() -> usize {
    8192
}
fn default_true() -> bool {
    true
}

/// `[[bridge.port]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    /// Interface name: an existing device (system) or one we create (tap, internal).
    pub name: String,
    /// system | afxdp | internal | tap | vxlan | geneve.
    #[serde(rename = "type", default = "default_port_type")]
    pub kind: PortType,
    /// Requested OpenFlow port number; the lowest free one when absent.
    #[serde(default)]
    pub ofport: Option<u32>,
    /// Access VLAN (NORMAL): untagged traffic belongs to it; tagged traffic is dropped.
    #[serde(default)]
    pub vlan: Option<u16>,
    /// Trunk VLANs (NORMAL); empty = all VLANs.
    #[serde(default)]
    pub trunks: Vec<u16>,
    /// Tunnel ports: the peer's underlay address, or `"flow"` (the flow's `tun_dst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    /// Tunnel ports: our underlay address, or `"flow"` (the flow's `tun_src`);
    /// absent lets the kernel's route choose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_ip: Option<String>,
    /// Tunnel ports: the VNI (0..=16777215), or `"flow"` (the flow's `tun_id`). Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<super::tunnel::KeyValue>,
    /// Tunnel ports: UDP destination port (4789 for vxlan, 6081 for geneve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_port: Option<u16>,
    /// Tunnel ports: outer UDP checksum (default false, as OVS over IPv4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csum: Option<bool>,
    /// Tunnel ports: DF on the outer IPv4 header (default true, as OVS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub df_default: Option<bool>,
    /// Tunnel ports: outer TTL (1..=255, default 64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u8>,
    /// Tunnel ports: outer TOS byte (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos: Option<u8>,
    /// `afxdp` ports: `best-effort` (default), `native-with-zerocopy`,
    /// `native` or `generic` (OVS's `options:xdp-mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xdp_mode: Option<String>,
}

fn default_port_type() -> PortType {
    PortType::System
}

impl PortConfig {
    /// A port of this name and type with every other setting at its default.
    pub fn new(name: &str, kind: PortType) -> PortConfig {
        PortConfig {
            name: name.to_string(),
            kind,
            ofport: None,
            vlan: None,
            trunks: Vec::new(),
            remote_ip: None,
            local_ip: None,
            key: None,
            dst_port: None,
            csum: None,
            df_default: None,
            ttl: None,
            tos: None,
            xdp_mode: None,
        }
    }

    /// The port's validated `xdp_mode` (the default for an `afxdp` port
    /// without one); an error for an unknown mode, or for the option on a
    /// port of another type.
    pub fn xdp_mode(&self) -> Result<XdpMode, super::tunnel::OptionError> {
        let Some(s) = &self.xdp_mode else {
            return Ok(XdpMode::default());
        };
        if self.kind != PortType::Afxdp {
            return Err(super::tunnel::OptionError {
                key: "xdp_mode",
                msg: format!(
                    "xdp_mode applies to afxdp ports, not to a {:?} port",
                    self.kind
                ),
            });
        }
        XdpMode::parse(s).ok_or_else(|| super::tunnel::OptionError {
            key: "xdp_mode",
            msg: format!(
                "{s:?} is not an XDP mode (expected {})",
                XdpMode::ALL
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
    }
}

impl BridgeConfig {
    /// The configured datapath id, or one derived from the name (stable across
    /// restarts, like OVS's choice from the bridge's MAC), with the locally
    /// administered bit pattern OVS uses.
    pub fn dpid(&self) -> DatapathId {
        if let Some(s) = &self.datapath_id {
            if let Ok(v) = u64::from_str_radix(s, 16) {
                return DatapathId(v);
            }
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        DatapathId(h & 0x0000_ffff_ffff_ffff)
    }
}

impl BridgeConfig {
    /// What a state file must have been written for to be restored: the
    /// bridge's name, datapath id, internal port and port set (name, type,
    /// requested OpenFlow number; ports without one are numbered by their
    /// order, so the order counts too). A rule names ports by number; when
    /// the numbering may have changed, the saved tables would send traffic
    /// to the wrong ports. VLAN settings do not count (rules do not see
    /// them). FNV-1a 64 of a canonical text.
    pub fn state_fingerprint(&self) -> u64 {
        let mut text = format!(
            "rvswitchd-state\0{}\0{:016x}\0{}\0",
            self.name,
            self.dpid().0,
            self.internal_port
        );
        for p in &self.port {
            text.push_str(&format!("{}\0{:?}\0{:?}\0", p.name, p.kind, p.ofport));
        }
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h
    }

    /// This bridge's state file in `dir`.
    pub fn state_path(&self, dir: &std::path::Path) -> PathBuf {
        dir.join(format!("{}.state", self.name))
    }
}

/// Checks a `ptcp:PORT[:IP]` / `pssl:PORT[:IP]` / `punix:PATH` listener address.
pub fn check_listener(s: &str) -> Result<(), String> {
    if let Some(rest) = s.strip_prefix("ptcp:").or_else(|| s.strip_prefix("pssl:")) {
        let (port, ip) = match rest.split_once(':') {
            Some((p, ip)) => (p, Some(ip)),
            None => (rest, None),
        };
        port.parse::<u16>()
            .map_err(|_| format!("{s:?}: bad TCP port {port:?}"))?;
        if let Some(ip) = ip {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| format!("{s:?}: bad IP address {ip:?}"))?;
        }
        Ok(())
    } else if let Some(path) = s.strip_prefix("punix:") {
        if path.is_empty() {
            return Err(format!("{s:?}: empty socket path"));
        }
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a listener is ptcp:PORT[:IP], pssl:PORT[:IP] or punix:PATH"
        ))
    }
}

/// Checks a `tcp:IP[:PORT]` / `ssl:IP[:PORT]` / `unix:PATH` controller address.
pub fn check_controller(s: &str) -> Result<(), String> {
    if let Some(rest) = s.strip_prefix("tcp:").or_else(|| s.strip_prefix("ssl:")) {
        let (ip, port) = match rest.rsplit_once(':') {
            Some((ip, p)) => (ip, Some(p)),
            None => (rest, None),
        };
        ip.parse::<std::net::IpAddr>()
            .map_err(|_| format!("{s:?}: bad IP address {ip:?}"))?;
        if let Some(p) = port {
            p.parse::<u16>()
                .map_err(|_| format!("{s:?}: bad TCP port {p:?}"))?;
        }
        Ok(())
    } else if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!("{s:?}: empty socket path"));
        }
        Ok(())
    } else {
        Err(format!(
            "{s:?}: a controller is tcp:IP[:PORT], ssl:IP[:PORT] or unix:PATH"
        ))
    }
}

/// The run directory Open vSwitch's tools use: `$OVS_RUNDIR` (as OVS's
/// `lib/dirs.c:ovs_rundir()` honours it) or `/var/run/openvswitch`.
pub fn ovs_rundir() -> PathBuf {
    std::env::var_os("OVS_RUNDIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/run/openvswitch"))
}

impl Config {
    /// With `[daemon] ovs_compat_paths`, adds `punix:RUNDIR/BRIDGE.mgmt` to
    /// every bridge that does not listen there yet (see
    /// [`DaemonConfig::ovs_compat_paths`]).
    pub fn add_ovs_compat_listeners(&mut self) {
        if !self.daemon.ovs_compat_paths {
            return;
        }
        let rundir = ovs_rundir();
        for b in &mut self.bridge {
            let l = format!(
                "punix:{}",
                rundir.join(format!("{}.mgmt", b.name)).display()
            );
            if !b.listeners.contains(&l) {
                b.listeners.push(l);
            }
        }
    }

    /// Semantic checks that TOML typing cannot express. `text` is the file's
    /// content, used only to find line numbers for messages.
    pub fn validate(&self, text: &str, file: &str) -> Result<(), ConfigError> {
        let err = |key: String, line: usize, msg: String| ConfigError::Invalid {
            file: file.to_string(),
            line,
            key,
            msg,
        };
        if !self.daemon.stats_listen.is_empty()
            && self
                .daemon
                .stats_listen
                .parse::<std::net::SocketAddr>()
                .is_err()
        {
            return Err(err(
                "daemon.stats_listen".into(),
                locate(text, "stats_listen", "", 0),
                format!("{:?} is not IP:PORT", self.daemon.stats_listen),
            ));
        }
        if self
            .daemon
            .log_level
            .parse::<tracing_subscriber::EnvFilter>()
            .is_err()
        {
            return Err(err(
                "daemon.log_level".into(),
                locate(text, "log_level", "", 0),
                format!("{:?} is not a log filter", self.daemon.log_level),
            ));
        }
        if let Some(dir) = &self.daemon.state_dir {
            if !dir.is_absolute() {
                return Err(err(
                    "daemon.state_dir".into(),
                    locate(text, "state_dir", "", 0),
                    format!("{:?} is not an absolute path", dir.display().to_string()),
                ));
            }
        }
        if !(10..=3_600_000).contains(&self.daemon.state_save_ms) {
            return Err(err(
                "daemon.state_save_ms".into(),
                locate(text, "state_save_ms", "", 0),
                format!("{} is out of range 10..=3600000", self.daemon.state_save_ms),
            ));
        }
        let d = &self.datapath;
        let range = |key: &str, v: u64, lo: u64, hi: u64| -> Result<(), ConfigError> {
            if v < lo || v > hi {
                Err(err(
                    format!("datapath.{key}"),
                    locate(text, key, "", 0),
                    format!("{v} is out of range {lo}..={hi}"),
                ))
            } else {
                Ok(())
            }
        };
        range("flow_limit", u64::from(d.flow_limit), 1, 10_000_000)?;
        range("max_idle_ms", d.max_idle_ms, 10, 3_600_000)?;
        range("n_handler_threads", d.n_handler_threads as u64, 0, 64)?;
        range(
            "n_revalidator_threads",
            d.n_revalidator_threads as u64,
            0,
            64,
        )?;
        range("n_pmd_threads", d.n_pmd_threads as u64, 1, 64)?;
        range("busy_poll_us", d.busy_poll_us, 0, 10_000_000)?;
        range(
            "upcall_queue_batches",
            d.upcall_queue_batches as u64,
            1,
            65_536,
        )?;

        self.openflow
            .validate()
            .map_err(|(key, msg)| err(format!("openflow.{key}"), locate(text, key, "", 0), msg))?;
        let uses_tls = self.bridge.iter().any(|b| {
            b.listeners.iter().any(|l| l.starts_with("pssl:"))
                || b.controllers.iter().any(|c| c.starts_with("ssl:"))
        });
        self.ssl
            .validate(uses_tls)
            .map_err(|(key, msg)| err(format!("ssl.{key}"), locate(text, key, "", 0), msg))?;

        let mut bridge_names = HashMap::new();
        let mut port_owner: HashMap<&str, &str> = HashMap::new();
        // Tunnel sockets are process-wide: one port per UDP endpoint.
        let mut endpoints: HashMap<(std::net::IpAddr, u16), &str> = HashMap::new();
        for (bi, b) in self.bridge.iter().enumerate() {
            let bkey = format!("bridge[{bi}]");
            let seen = bridge_names.entry(b.name.as_str()).or_insert(0usize);
            *seen += 1;
            if *seen > 1 {
                return Err(err(
                    format!("{bkey}.name"),
                    locate(text, "name", &format!("\"{}\"", b.name), 1),
                    format!("duplicate bridge name {:?}", b.name),
                ));
            }
            if b.name.is_empty() || b.name.len() > 15 {
                return Err(err(
                    format!("{bkey}.name"),
                    locate(text, "name", &format!("\"{}\"", b.name), 0),
                    format!("{:?}: an interface name has 1 to 15 bytes", b.name),
                ));
            }
            // Linux's dev_valid_name(); the name also names the bridge's
            // state file, so no path may hide in it.
            if b.name == "."
                || b.name == ".."
                || b.name
                    .chars()
                    .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
            {
                return Err(err(
                    format!("{bkey}.name"),
                    locate(text, "name", &format!("\"{}\"", b.name), 0),
                    format!(
                        "{:?}: an interface name has no '/', ':', space or control character \
                         and is not \".\" or \"..\"",
                        b.name
                    ),
                ));
            }
            if let Some(id) = &b.datapath_id {
                if id.len() != 16 || u64::from_str_radix(id, 16).is_err() {
                    return Err(err(
                        format!("{bkey}.datapath_id"),
                        locate(text, "datapath_id", id, 0),
                        format!("{id:?} is not 16 hex digits"),
                    ));
                }
            }
            for l in &b.listeners {
                check_listener(l).map_err(|m| {
                    err(
                        format!("{bkey}.listeners"),
                        locate(text, "listeners", l, 0),
                        m,
                    )
                })?;
            }
            if let Some(names) = &b.protocols {
                if names.is_empty() {
                    return Err(err(
                        format!("{bkey}.protocols"),
                        locate(text, "protocols", "", 0),
                        "allows no OpenFlow version: leave it out for all of them".to_string(),
                    ));
                }
                for n in names {
                    protocol_wire_version(n).map_err(|m| {
                        err(
                            format!("{bkey}.protocols"),
                            locate(text, "protocols", n, 0),
                            m,
                        )
                    })?;
                }
            }
            for c in &b.controllers {
                check_controller(c).map_err(|m| {
                    err(
                        format!("{bkey}.controllers"),
                        locate(text, "controllers", c, 0),
                        m,
                    )
                })?;
            }
            if b.mac_table_size == 0 || b.mac_table_size > 1_000_000 {
                return Err(err(
                    format!("{bkey}.mac_table_size"),
                    locate(text, "mac_table_size", "", 0),
                    format!("{} is out of range 1..=1000000", b.mac_table_size),
                ));
            }
            let mut ofports = HashSet::new();
            for (pi, p) in b.port.iter().enumerate() {
                let pkey = format!("{bkey}.port[{pi}]");
                let pline = locate(text, "name", &format!("\"{}\"", p.name), 0);
                if p.name.is_empty() || p.name.len() > 15 {
                    return Err(err(
                        format!("{pkey}.name"),
                        pline,
                        format!("{:?}: an interface name has 1 to 15 bytes", p.name),
                    ));
                }
                if p.name == b.name {
                    return Err(err(
                        format!("{pkey}.name"),
                        locate(text, "name", &format!("\"{}\"", p.name), 1),
                        format!("{:?} is the bridge's own internal port", p.name),
                    ));
                }
                if let Some(other) = port_owner.insert(p.name.as_str(), b.name.as_str()) {
                    let line = locate(text, "name", &format!("\"{}\"", p.name), 1);
                    return Err(err(
                        format!("{pkey}.name"),
                        line,
                        if other == b.name {
                            format!("duplicate port {:?} in bridge {:?}", p.name, b.name)
                        } else {
                            format!(
                                "port {:?} is already in bridge {:?}; a port belongs to one bridge",
                                p.name, other
                            )
                        },
                    ));
                }
                if let Some(n) = p.ofport {
                    if n == 0 || n > 0xff00 {
                        return Err(err(
                            format!("{pkey}.ofport"),
                            locate(text, "ofport", &n.to_string(), 0),
                            format!("{n} is out of range 1..=65280"),
                        ));
                    }
                    if !ofports.insert(n) {
                        return Err(err(
                            format!("{pkey}.ofport"),
                            locate(text, "ofport", &n.to_string(), 1),
                            format!("OpenFlow port {n} is used twice in bridge {:?}", b.name),
                        ));
                    }
                }
                if let Some(v) = p.vlan {
                    if v == 0 || v > 4094 {
                        return Err(err(
                            format!("{pkey}.vlan"),
                            locate(text, "vlan", &v.to_string(), 0),
                            format!("{v} is out of range 1..=4094"),
                        ));
                    }
                }
                if let Some(v) = p.trunks.iter().find(|v| **v > 4094) {
                    return Err(err(
                        format!("{pkey}.trunks"),
                        locate(text, "trunks", "", 0),
                        format!("{v} is out of range 0..=4094"),
                    ));
                }
                p.xdp_mode()
                    .map(|_| ())
                    .and_then(|()| p.tunnel_config().map(|_| ()))
                    .map_err(|e| {
                        err(
                            format!("{pkey}.{}", e.key),
                            locate(text, e.key, "", 0),
                            e.msg,
                        )
                    })?;
                if let Some((kind, local, port)) = p.tunnel_endpoint() {
                    // A wildcard bind covers every address of its family, so
                    // it collides with any other port on the same UDP port.
                    let addrs: Vec<std::net::IpAddr> = match local {
                        Some(a) => vec![a],
                        None => vec![
                            std::net::Ipv4Addr::UNSPECIFIED.into(),
                            std::net::Ipv6Addr::UNSPECIFIED.into(),
                        ],
                    };
                    let clash = endpoints.iter().find(|((a, pt), _)| {
                        *pt == port
                            && addrs.iter().any(|b| {
                                a == b
                                    || (a.is_unspecified() && a.is_ipv4() == b.is_ipv4())
                                    || (b.is_unspecified() && a.is_ipv4() == b.is_ipv4())
                            })
                    });
                    if let Some((_, other)) = clash {
                        return Err(err(
                            format!("{pkey}.dst_port"),
                            pline,
                            format!(
                                "{} port {:?} and port {:?} would both receive UDP port {port}: \
                                 one tunnel port per UDP endpoint; use one port with \
                                 remote_ip = \"flow\" and flows that set tun_dst, or another \
                                 dst_port or local_ip",
                                kind.name(),
                                p.name,
                                other
                            ),
                        ));
                    }
                    for a in addrs {
                        endpoints.insert((a, port), p.name.as_str());
                    }
                }
            }
        }
        if self.bridge.is_empty() && !self.daemon.allow_no_bridges {
            return Err(err(
                "bridge".into(),
                0,
                "no [[bridge]] in the file: an empty or truncated file would delete every \
                 bridge; set `[daemon] allow_no_bridges = true` if no bridge is meant"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The bridge with this name.
    pub fn bridge(&self, name: &str) -> Option<&BridgeConfig> {
        self.bridge.iter().find(|b| b.name == name)
    }
}

/// `[openflow]`: bounds and socket settings shared by every OpenFlow
/// connection of every bridge (what a hostile or stuck peer may cost).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenflowConfig {
    /// Bytes a connection may have queued for sending (replies, asynchronous
    /// messages, streamed flow stats). At the budget the connection stops
    /// reading from its peer until the queue drains; asynchronous messages
    /// beyond half of it are dropped (counted per kind).
    pub output_budget_bytes: u64,
    /// A peer whose queue stays over budget without draining for this long
    /// is disconnected (counted).
    pub stuck_timeout_ms: u64,
    /// A connection that has not sent its HELLO after this long is closed.
    pub hello_timeout_ms: u64,
    /// Most connections one listener keeps open. When a new one arrives at
    /// the cap, the oldest connection that has not finished its handshake is
    /// closed to make room; if every one has, the new one is refused.
    pub max_connections_per_listener: u64,
    /// Permission bits of `punix:` sockets, in octal (`"0600"`). Default:
    /// `0600` (root only), or `0660` when `unix_socket_group` is set. Never
    /// the umask.
    pub unix_socket_mode: Option<String>,
    /// Group (name or number) that owns `punix:` sockets, so that its members
    /// may connect when the mode allows; empty keeps root's group.
    pub unix_socket_group: String,
    /// Most PACKET_INs per second sent on one connection (table misses and
    /// other reasons limited separately), as OVS `controller_rate_limit`;
    /// 0 = no limit. Packets over the limit are dropped and counted.
    pub controller_rate_limit: u32,
    /// PACKET_INs a connection may send at once before the rate applies
    /// (OVS `controller_burst_limit`); 0 = a quarter of the rate.
    pub controller_burst_limit: u32,
}

impl Default for OpenflowConfig {
    fn default() -> Self {
        OpenflowConfig {
            output_budget_bytes: 4 << 20,
            stuck_timeout_ms: 30_000,
            hello_timeout_ms: 10_000,
            max_connections_per_listener: 256,
            unix_socket_mode: None,
            unix_socket_group: String::new(),
            controller_rate_limit: 0,
            controller_burst_limit: 0,
        }
    }
}

impl OpenflowConfig {
    /// The `punix:` socket mode in force.
    pub fn unix_mode(&self) -> u32 {
        match self.unix_socket_mode.as_deref().map(parse_mode) {
            Some(Ok(m)) => m,
            _ if self.unix_socket_group.is_empty() => 0o600,
            _ => 0o660,
        }
    }

    /// Range and syntax checks; `Err((key, message))`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let range = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if v < lo || v > hi {
                Err((key, format!("{v} is out of range {lo}..={hi}")))
            } else {
                Ok(())
            }
        };
        range(
            "output_budget_bytes",
            self.output_budget_bytes,
            64 << 10,
            1 << 30,
        )?;
        range("stuck_timeout_ms", self.stuck_timeout_ms, 100, 3_600_000)?;
        range("hello_timeout_ms", self.hello_timeout_ms, 100, 600_000)?;
        range(
            "max_connections_per_listener",
            self.max_connections_per_listener,
            1,
            65_536,
        )?;
        // OVS's schema: rate at least 100, burst at least 25.
        if self.controller_rate_limit != 0 {
            range(
                "controller_rate_limit",
                self.controller_rate_limit.into(),
                100,
                10_000_000,
            )?;
        }
        if self.controller_burst_limit != 0 {
            range(
                "controller_burst_limit",
                self.controller_burst_limit.into(),
                25,
                10_000_000,
            )?;
        }
        if let Some(m) = &self.unix_socket_mode {
            let v = parse_mode(m).map_err(|e| ("unix_socket_mode", e))?;
            if v & 0o007 != 0 {
                return Err((
                    "unix_socket_mode",
                    format!("{m:?} lets every local user program the switch; use at most 0770"),
                ));
            }
        }
        let g = &self.unix_socket_group;
        if !g.is_empty()
            && !g
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err((
                "unix_socket_group",
                format!("{g:?} is not a group name or number"),
            ));
        }
        Ok(())
    }
}

/// Parses an octal permission string such as `"0660"`.
fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(v) if v <= 0o777 && !digits.is_empty() => Ok(v),
        _ => Err(format!("{s:?} is not an octal mode such as \"0660\"")),
    }
}

#[cfg(test)]
mod openflow_tests {
    use super::*;

    #[test]
    fn openflow_defaults_modes_and_ranges() {
        let c = OpenflowConfig::default();
        assert_eq!(c.unix_mode(), 0o600);
        assert!(c.validate().is_ok());
        let g = OpenflowConfig {
            unix_socket_group: "rvswitchd".into(),
            ..OpenflowConfig::default()
        };
        assert_eq!(g.unix_mode(), 0o660);
        let m = OpenflowConfig {
            unix_socket_mode: Some("0640".into()),
            ..g.clone()
        };
        assert_eq!(m.unix_mode(), 0o640);
        let world = OpenflowConfig {
            unix_socket_mode: Some("0666".into()),
            ..OpenflowConfig::default()
        };
        assert_eq!(world.validate().unwrap_err().0, "unix_socket_mode");
        let bad = OpenflowConfig {
            unix_socket_mode: Some("rw".into()),
            ..OpenflowConfig::default()
        };
        assert!(bad.validate().is_err());
        let small = OpenflowConfig {
            output_budget_bytes: 10,
            ..OpenflowConfig::default()
        };
        assert_eq!(small.validate().unwrap_err().0, "output_budget_bytes");
    }
}

/// `[ssl]`: the files OVS's `set-ssl` takes, for `ssl:` controllers and
/// `pssl:` listeners. Peers must present a certificate signed by `ca_cert`
/// (mutual authentication); their names are not checked, the CA is the pin.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SslConfig {
    /// PEM private key.
    pub private_key: Option<PathBuf>,
    /// PEM certificate presented to peers.
    pub certificate: Option<PathBuf>,
    /// PEM certificate of the CA that peers' certificates must chain to.
    pub ca_cert: Option<PathBuf>,
}

impl SslConfig {
    /// The three files, when all are set.
    pub fn files(&self) -> Option<(PathBuf, PathBuf, PathBuf)> {
        Some((
            self.private_key.clone()?,
            self.certificate.clone()?,
            self.ca_cert.clone()?,
        ))
    }

    /// All three files or none; all three when a bridge uses TLS.
    pub fn validate(&self, needed: bool) -> Result<(), (&'static str, String)> {
        let set = [
            ("private_key", self.private_key.is_some()),
            ("certificate", self.certificate.is_some()),
            ("ca_cert", self.ca_cert.is_some()),
        ];
        let missing: Vec<&str> = set.iter().filter(|(_, s)| !s).map(|(k, _)| *k).collect();
        if missing.is_empty() || (missing.len() == set.len() && !needed) {
            return Ok(());
        }
        let key = missing.first().copied().unwrap_or("private_key");
        Err((
            key,
            format!(
                "ssl: and pssl: connections need private_key, certificate and ca_cert; missing {}",
                missing.join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod ssl_tests {
    use super::*;

    #[test]
    fn ssl_needs_all_three_files_when_used() {
        assert!(SslConfig::default().validate(false).is_ok());
        assert_eq!(
            SslConfig::default().validate(true).unwrap_err().0,
            "private_key"
        );
        let partial = SslConfig {
            private_key: Some("k".into()),
            ..SslConfig::default()
        };
        assert_eq!(partial.validate(false).unwrap_err().0, "certificate");
        assert!(check_listener("pssl:6653:127.0.0.1").is_ok());
        assert!(check_controller("ssl:127.0.0.1:6653").is_ok());
        assert!(check_controller("ssl:nohost").is_err());
    }
}
