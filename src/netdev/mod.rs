//! Port I/O backends: the only part of the switch that makes packet syscalls.
//!
//! A [`Netdev`] is one open Linux interface (an existing `system` device through
//! AF_PACKET or `afxdp` device through AF_XDP, or a TAP device we create for
//! `internal`/`tap` ports). It is owned by exactly one datapath poll thread, which receives from it and transmits on it;
//! no lock is taken per packet. Device metadata (MAC, MTU, flags, carrier, speed)
//! and link change notifications come from rtnetlink (see `netlink`), which the
//! Port actors use — the poll threads never parse netlink.
//!
//! This is the bottom of the I/O stack: [`packet`] (the buffers every layer
//! above passes around) and [`poll`] (the eventfd and epoll the poll threads
//! sleep on) live here so that the datapath needs no system calls of its own.
//!
//! Every `unsafe` block in this module carries its own `// SAFETY:` comment.

use packet::PacketBatch;
use std::os::fd::RawFd;

pub use crate::types::{PortType, XdpMode};

pub mod afxdp;
pub mod bpf;
pub mod netlink;
pub mod packet;
pub mod poll;
pub mod ring;
mod sys;
pub use sys::trim_heap;
pub mod system;
pub mod tap;
#[cfg(test)]
pub mod testdev;
pub mod tunnel;
pub mod vnet;

/// Per-port device options from the configuration (defaults for every other).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceOptions {
    /// `afxdp` ports: how the XDP program attaches and the socket binds.
    pub xdp_mode: XdpMode,
}

/// Opens the device for a configured port with default options (see
/// [`open_with`]).
pub fn open(name: &str, kind: PortType) -> Result<Box<dyn Netdev>, NetdevError> {
    open_with(name, kind, &DeviceOptions::default())
}

/// Opens the device for a configured port: `system` attaches to an existing
/// interface through AF_PACKET, `afxdp` through AF_XDP, `internal` and `tap`
/// create a TAP device that lives as long as the returned handle (and any
/// transmit handles opened from it).
pub fn open_with(
    name: &str,
    kind: PortType,
    opts: &DeviceOptions,
) -> Result<Box<dyn Netdev>, NetdevError> {
    match kind {
        PortType::System => Ok(Box::new(system::SystemNetdev::open(name)?)),
        PortType::Afxdp => Ok(Box::new(afxdp::AfxdpNetdev::open(name, opts.xdp_mode)?)),
        PortType::Internal | PortType::Tap => Ok(Box::new(tap::TapNetdev::open(name)?)),
        // Opened by the tunnel layer with their options (wired in the next step).
        PortType::Vxlan | PortType::Geneve => Err(NetdevError::UnknownType(format!(
            "{kind:?} (tunnel ports are not wired yet)"
        ))),
    }
}

/// Parses a config `type` string, so that a typo is reported with the list of
/// types we implement instead of a generic deserialisation error.
pub fn parse_port_type(s: &str) -> Result<PortType, NetdevError> {
    match s {
        "system" => Ok(PortType::System),
        "afxdp" => Ok(PortType::Afxdp),
        "internal" => Ok(PortType::Internal),
        "tap" => Ok(PortType::Tap),
        other => Err(NetdevError::UnknownType(other.to_string())),
    }
}

/// Why a netdev operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetdevError {
    /// The named device does not exist (ENODEV), like OVS's "could not open network device".
    #[error("could not open network device {0} (No such device)")]
    NoSuchDevice(String),
    /// The port type in the config is not one we implement.
    #[error("unknown port type {0:?} (expected system, afxdp, internal or tap)")]
    UnknownType(String),
    /// A port's options are not usable (config validation normally refuses them first).
    #[error("{dev}: {msg}")]
    Options {
        /// Which port.
        dev: String,
        /// What is wrong.
        msg: String,
    },
    /// Any other system call failure.
    #[error("{op} on {dev}: {source}")]
    Io {
        /// What we were doing.
        op: &'static str,
        /// Which device.
        dev: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// How a device was lost, as a failed call says ([`NetdevError::link_loss`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkLoss {
    /// The device is gone for this handle; polling it again can only fail.
    Gone,
    /// The interface went down; the handle works again when it comes up.
    Down,
}

/// Result of a transmit call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxResult {
    /// Packets handed to the kernel.
    pub sent: usize,
    /// Packets dropped (queue full, too big, device down).
    pub dropped: usize,
}

/// An open port device, owned by one poll thread.
pub trait Netdev: Send {
    /// Interface name.
    fn name(&self) -> &str;
    /// Kernel interface index.
    fn ifindex(&self) -> u32;
    /// A file descriptor that becomes readable when packets wait (for epoll).
    fn rx_fd(&self) -> RawFd;
    /// Receives up to `batch`'s free capacity of packets without blocking.
    /// Returns how many were added. Frames that are truncated or unreadable are
    /// dropped here and counted in [`Netdev::rx_errors`].
    fn recv_batch(&mut self, batch: &mut PacketBatch) -> Result<usize, NetdevError>;
    /// Transmits every live packet of `batch`, then clears it.
    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError>;
    /// Frames dropped on receive because they were malformed or truncated.
    fn rx_errors(&self) -> u64;
    /// Frames the kernel dropped, cumulative, because the port's receive queue
    /// (or ring) was full: the poll thread fell behind. Overload must be visible,
    /// and the kernel is the only one who sees these frames.
    fn rx_overruns(&mut self) -> u64 {
        0
    }
    /// Opens an extra transmit handle for another poll thread.
    fn open_tx(&self) -> Result<Box<dyn NetdevTx>, NetdevError>;
    /// The encapsulation counters of a tunnel port (shared with its transmit
    /// handles); `None` for every other kind of device.
    fn tunnel_counters(&self) -> Option<std::sync::Arc<tunnel::TunnelCounters>> {
        None
    }
}

/// A transmit-only handle on a port, for poll threads that do not own its receive side.
pub trait NetdevTx: Send {
    /// Transmits every live packet of `batch`, then clears it.
    fn send_batch(&mut self, batch: &mut PacketBatch) -> Result<TxResult, NetdevError>;
}
