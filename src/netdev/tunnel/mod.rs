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

use std::sync::atomic::AtomicU64;

pub mod segment;
pub mod socket;
pub mod wire;

pub use socket::{open, TunnelNetdev, TunnelTx};

// The validated options are plain data shared with the configuration layer,
// so they live with the other shared types.
pub use crate::types::{FlowOr, TunnelConfig, TunnelKind};

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
