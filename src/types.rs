//! Identifiers that carry meaning across the whole switch.
//!
//! OpenFlow is full of 8-, 16-, 32- and 64-bit numbers that mean very different
//! things; mixing a port number with a group id is a bug the compiler can catch if
//! each has its own type. These are plain `Copy` newtypes with no invariants beyond
//! their width, so they cost nothing on the hot path.

use std::fmt;
use std::net::IpAddr;

/// An OpenFlow port number. Datapath port numbers are the same numbers: we do not
/// keep OVS's separate odp/ofp numbering because our datapath is private to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PortNo(pub u32);

impl PortNo {
    /// Largest number a physical (non-reserved) port may have.
    pub const MAX: PortNo = PortNo(0xffff_ff00);
    /// Send the packet back out of its input port.
    pub const IN_PORT: PortNo = PortNo(0xffff_fff8);
    /// Submit the packet to the first flow table (PACKET_OUT only).
    pub const TABLE: PortNo = PortNo(0xffff_fff9);
    /// Traditional L2 switching (the NORMAL action).
    pub const NORMAL: PortNo = PortNo(0xffff_fffa);
    /// All physical ports except the input port and those with no-flood set.
    pub const FLOOD: PortNo = PortNo(0xffff_fffb);
    /// All physical ports except the input port.
    pub const ALL: PortNo = PortNo(0xffff_fffc);
    /// Send to the controller(s).
    pub const CONTROLLER: PortNo = PortNo(0xffff_fffd);
    /// The bridge's own internal port.
    pub const LOCAL: PortNo = PortNo(0xffff_fffe);
    /// Wildcard / "no port" in requests (OFPP_ANY).
    pub const ANY: PortNo = PortNo(0xffff_ffff);

    /// True for numbers that name a real port (1..=MAX) or LOCAL.
    pub fn is_physical_or_local(self) -> bool {
        (self.0 >= 1 && self.0 <= Self::MAX.0) || self == Self::LOCAL
    }
}

impl fmt::Display for PortNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::IN_PORT => f.write_str("IN_PORT"),
            Self::TABLE => f.write_str("TABLE"),
            Self::NORMAL => f.write_str("NORMAL"),
            Self::FLOOD => f.write_str("FLOOD"),
            Self::ALL => f.write_str("ALL"),
            Self::CONTROLLER => f.write_str("CONTROLLER"),
            Self::LOCAL => f.write_str("LOCAL"),
            Self::ANY => f.write_str("ANY"),
            PortNo(n) => write!(f, "{n}"),
        }
    }
}

/// An OpenFlow table id (0..=253 usable; 254 is our hidden internal table;
/// 255 = OFPTT_ALL in requests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct TableId(pub u8);

impl TableId {
    /// "All tables" in FLOW_MOD delete and stats requests.
    pub const ALL: TableId = TableId(0xff);
    /// Number of tables visible to controllers.
    pub const N_TABLES: u8 = 254;
}

/// A flow cookie: opaque to the switch, used by controllers to find their rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Cookie(pub u64);

/// The 64-bit datapath id a switch announces in FEATURES_REPLY.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DatapathId(pub u64);

impl fmt::Display for DatapathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// An OpenFlow group id (0..=0xffffff00 usable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GroupId(pub u32);

impl GroupId {
    /// OFPG_ALL: every group, in delete and stats requests.
    pub const ALL: GroupId = GroupId(0xffff_fffc);
    /// OFPG_ANY: wildcard in flow filters.
    pub const ANY: GroupId = GroupId(0xffff_ffff);
    /// Largest usable group id.
    pub const MAX: GroupId = GroupId(0xffff_ff00);
}

/// An OpenFlow meter id (1..=0xffff0000 usable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MeterId(pub u32);

impl MeterId {
    /// OFPM_ALL: every meter, in delete and stats requests.
    pub const ALL: MeterId = MeterId(0xffff_ffff);
    /// Largest usable meter id.
    pub const MAX: MeterId = MeterId(0xffff_0000);
    /// OFPM_CONTROLLER (0xfffffffe): the virtual meter of packets sent to controllers
    /// (OF1.3.5 §7.3.4.4); configured like any meter, it limits every
    /// PACKET_IN the bridge sends, wherever the rule asking for it is.
    pub const CONTROLLER: MeterId = MeterId(0xffff_fffe);
}

/// A 48-bit Ethernet address stored in its wire byte order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Broadcast address ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// The address as the low 48 bits of a u64, first byte most significant.
    pub fn to_u64(self) -> u64 {
        let b = self.0;
        u64::from_be_bytes([0, 0, b[0], b[1], b[2], b[3], b[4], b[5]])
    }

    /// Inverse of [`MacAddr::to_u64`]; the top 16 bits are ignored.
    pub fn from_u64(v: u64) -> MacAddr {
        let b = v.to_be_bytes();
        MacAddr([b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Group (multicast or broadcast) addresses have the low bit of byte 0 set.
    pub fn is_multicast(self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl std::str::FromStr for MacAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 {
                return Err(format!("{s:?}: too many octets in a MAC address"));
            }
            out[n] = u8::from_str_radix(part, 16)
                .map_err(|_| format!("{s:?}: bad octet {part:?} in a MAC address"))?;
            n += 1;
        }
        if n != 6 {
            return Err(format!("{s:?}: a MAC address has six octets"));
        }
        Ok(MacAddr(out))
    }
}

/// The kind of port, as named in the config's `type` key. Plain data shared
/// by the configuration model and the device layer (`netdev::open`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortType {
    /// An existing interface (veth, physical NIC), opened with AF_PACKET.
    System,
    /// An existing interface opened with an AF_XDP socket and an XDP
    /// redirect program (`netdev::afxdp`).
    Afxdp,
    /// The bridge's own port: a TAP device named like the bridge, created by us.
    Internal,
    /// A TAP device created by us for a VM or container.
    Tap,
    /// A VXLAN tunnel (RFC 7348) over a kernel UDP socket (`netdev::tunnel`).
    Vxlan,
    /// A Geneve tunnel (RFC 8926) over a kernel UDP socket (`netdev::tunnel`).
    Geneve,
}

impl PortType {
    /// True for the overlay tunnel types, which have no kernel interface of
    /// their own (no rtnetlink link to watch, no MAC of a device).
    pub fn is_tunnel(self) -> bool {
        matches!(self, PortType::Vxlan | PortType::Geneve)
    }
}

/// How an `afxdp` port attaches its XDP program and binds its socket (the
/// port option `xdp_mode`, OVS's `options:xdp-mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// Native with zero-copy if the driver allows, else native with copy,
    /// else generic (the default, as OVS).
    #[default]
    BestEffort,
    /// Native (driver) XDP and a zero-copy socket, or fail.
    NativeWithZerocopy,
    /// Native (driver) XDP, frames copied into the socket's memory.
    Native,
    /// Generic XDP on the kernel's socket buffers (any device; slowest).
    Generic,
}

impl XdpMode {
    /// Every mode with its config name.
    pub const ALL: [(XdpMode, &'static str); 4] = [
        (XdpMode::BestEffort, "best-effort"),
        (XdpMode::NativeWithZerocopy, "native-with-zerocopy"),
        (XdpMode::Native, "native"),
        (XdpMode::Generic, "generic"),
    ];

    /// The mode a config string names.
    pub fn parse(s: &str) -> Option<XdpMode> {
        XdpMode::ALL.iter().find(|(_, n)| *n == s).map(|(m, _)| *m)
    }

    /// The config name.
    pub fn name(self) -> &'static str {
        XdpMode::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("best-effort", |(_, n)| *n)
    }
}

/// A VLAN id (12 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VlanId(pub u16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_round_trips_through_u64_and_text() {
        let m: MacAddr = "02:00:00:aa:bb:0c".parse().unwrap();
        assert_eq!(MacAddr::from_u64(m.to_u64()), m);
        assert_eq!(m.to_string(), "02:00:00:aa:bb:0c");
        assert!("02:00".parse::<MacAddr>().is_err());
        assert!(MacAddr::BROADCAST.is_multicast());
    }
}

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
