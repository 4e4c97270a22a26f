//! Overlay tunnel ports: VXLAN (RFC 7348) and Geneve (RFC 8926) over kernel
//! UDP sockets.
//!
//! Ownership and threads: a tunnel port's [`TunnelConfig`] is parsed by the
//! configuration layer and owned by its Port actor; the open device is owned
//! by one poll thread like any other [`super::Netdev`], which decapsulates on
//! receive and encapsulates on transmit. Its [`TunnelCounters`] are shared
//! (relaxed atomics) between that thread, the transmit handles other poll
//! threads hold, and the control plane that exports them.
//!
//! Why kernel UDP sockets rather than OVS's native tunnelling (outer headers
//! built by us and sent through AF_PACKET on the underlay device): the
//! underlay address lives on an ordinary kernel interface, so the kernel's
//! routing, neighbour resolution, fragmentation and path-MTU state are the
//! truth, and a socket is correct under every route or ARP change without a
//! cache of our own to invalidate. See `docs/TUNNELS.md`.
//!
//! Layout: [`wire`] parses and emits the VXLAN/Geneve headers (pure, fuzzed);
//! [`segment`] completes the virtio-net offloads (partial checksums, TCP
//! GSO) that a UDP socket cannot carry; [`socket`] is the device
//! ([`TunnelNetdev`], [`TunnelTx`]) and says what operators must set for the
//! MTU (inner MTU = underlay MTU − 50 over IPv4).

use std::net::IpAddr;
use std::sync::atomic::AtomicU64;

pub mod segment;
pub mod socket;
pub mod wire;

pub use socket::{open, TunnelNetdev, TunnelTx};

/// Which encapsulation a tunnel port speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TunnelKind {
    /// VXLAN, RFC 7348 (IANA port 4789).
    Vxlan,
    /// Geneve, RFC 8926 (IANA port 6081).
    Geneve,
}

impl TunnelKind {
    /// The IANA-assigned UDP destination port, the default of `dst_port`.
    pub const fn default_port(self) -> u16 {
        match self {
            TunnelKind::Vxlan => 4789,
            TunnelKind::Geneve => 6081,
        }
    }

    /// The name OVS uses for the port type.
    pub const fn name(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
        }
    }
}

/// A tunnel parameter that is either fixed by the port's configuration or
/// taken from the flow (OVS's `options:key=flow`, `remote_ip=flow`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FlowOr<T> {
    /// The configured value.
    Fixed(T),
    /// Read from the packet's tunnel metadata on transmit, written to it on receive.
    Flow,
}

/// A tunnel port's configuration, validated (the config layer turns TOML
/// into this and rejects what it cannot represent).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TunnelConfig {
    /// VXLAN or Geneve.
    pub kind: TunnelKind,
    /// The peer's underlay address, or `Flow`: the flow's `tun_dst`.
    pub remote_ip: FlowOr<IpAddr>,
    /// Our underlay address: `None` lets the kernel's route choose; `Flow`
    /// takes the flow's `tun_src`.
    pub local_ip: Option<FlowOr<IpAddr>>,
    /// The VNI (24 bits), or `Flow`: the flow's `tun_id`. Received packets
    /// with another VNI than a fixed key are dropped and counted.
    pub key: FlowOr<u32>,
    /// UDP destination port (and the port we listen on).
    pub dst_port: u16,
    /// Put a UDP checksum on the outer header (OVS `options:csum`; default off
    /// over IPv4, as OVS and Linux do).
    pub csum: bool,
    /// Set DF on the outer IPv4 header (OVS `options:df_default`, default on):
    /// frames that don't fit the underlay MTU are dropped and counted instead
    /// of fragmented.
    pub df_default: bool,
    /// Outer TTL (OVS `options:ttl`, default 64).
    pub ttl: u8,
    /// Outer TOS byte (OVS `options:tos`, default 0).
    pub tos: u8,
}

/// A tunnel port's counters: one struct that serves counting (relaxed
/// atomics written by the poll threads) and export (`/stats`, `/metrics`,
/// `tnl/ports/show`).
#[derive(Debug, Default)]
pub struct TunnelCounters {
    /// Frames encapsulated and handed to the kernel.
    pub encap_packets: AtomicU64,
    /// Datagrams decapsulated into frames.
    pub decap_packets: AtomicU64,
    /// Segments produced by splitting TSO/GSO frames before encapsulation.
    pub gso_segments: AtomicU64,
    /// Received datagrams whose VXLAN/Geneve header or inner frame was malformed.
    pub drop_malformed: AtomicU64,
    /// Received datagrams whose VNI is not the port's fixed key.
    pub drop_unknown_vni: AtomicU64,
    /// Received datagrams from another source than the port's fixed remote_ip.
    pub drop_unknown_remote: AtomicU64,
    /// Frames to send with `remote_ip = "flow"` but no `tun_dst` in the flow.
    pub drop_no_remote: AtomicU64,
    /// Frames the kernel could not route to the remote (ENETUNREACH, EHOSTUNREACH).
    pub drop_no_route: AtomicU64,
    /// Frames whose neighbour (next hop) could not be resolved.
    pub drop_no_neighbour: AtomicU64,
    /// Frames too big for the underlay MTU with DF set (EMSGSIZE).
    pub drop_mtu: AtomicU64,
    /// Frames the kernel refused for another reason (queue full, ...).
    pub drop_tx_error: AtomicU64,
}

/// Opens a tunnel device (lead's placeholder until the device lands from helper-a).
pub fn open(name: &str, _cfg: &TunnelConfig) -> Result<Box<dyn super::Netdev>, super::NetdevError> {
    Err(super::NetdevError::UnknownType(name.to_string()))
}
