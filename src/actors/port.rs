//! The Port actor: one configured port of a bridge (OVS's `ofport` with its
//! `netdev_open()`, `bridge.c:iface_create()`).
//!
//! Ownership: the Port owns the port's configuration and its link state; it
//! opens the device and hands the open netdev to its Bridge (which moves it to a
//! poll thread). A device that does not exist yet is reported with OVS's
//! "could not open network device" error and opened as soon as rtnetlink says
//! it appeared (or on a periodic retry); a device deleted under traffic is
//! detached cleanly. Link events reach it from the process-wide rtnetlink
//! monitor thread through the [`PortRegistry`]. Runs on its bridge's Arbiter.

use crate::actors::tunnels;
use crate::config::PortConfig;
use crate::messages::bridge::{PortAttached, PortDetached, PortLinkChanged};
use crate::messages::port::*;
use crate::netdev::netlink::{self, LinkInfo};
use crate::netdev::{self, NetdevError, PortType};
use crate::types::PortNo;
use crate::util::coverage::{self, c};
use crate::util::metrics::{registry, ActorMeter, MsgName};
use actix::prelude::*;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of a Port.
pub const MAILBOX: usize = 64;

/// Interface name → Port actor, for routing rtnetlink events.
pub type PortRegistry = Arc<Mutex<HashMap<String, Addr<Port>>>>;

/// What a Port is started with.
pub struct PortParams {
    /// Bridge name.
    pub bridge_name: String,
    /// Port configuration.
    pub cfg: PortConfig,
    /// OpenFlow port number chosen by the bridge.
    pub port_no: PortNo,
    /// Where the port reports to its bridge.
    pub bridge: BridgeInbox,
    /// Where to register for link events.
    pub registry: PortRegistry,
}

/// How a Port reaches its Bridge: one recipient per message it sends, so the
/// two actors do not name each other's types.
#[derive(Clone)]
pub struct BridgeInbox {
    /// The device is open.
    pub attached: Recipient<PortAttached>,
    /// Link state changed.
    pub changed: Recipient<PortLinkChanged>,
    /// The device went away.
    pub detached: Recipient<PortDetached>,
}

/// A port.
pub struct Port {
    p: PortParams,
    meter: Arc<ActorMeter>,
    attached: bool,
    error: Option<String>,
    link: Option<LinkInfo>,
}

impl Port {
    /// A port that opens its device when started.
    pub fn new(p: PortParams) -> Port {
        let meter = registry().meter(
            format!("port:{}:{}", p.bridge_name, p.cfg.name),
            "Port",
            Some(p.bridge_name.clone()),
            MAILBOX,
        );
        Port {
            p,
            meter,
            attached: false,
            error: None,
            link: None,
        }
    }

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn try_open(&mut self) {
        if self.attached {
            return;
        }
        let name = self.p.cfg.name.clone();
        let opened = match self.p.cfg.tunnel_config() {
            // A tunnel has no kernel interface: its "link" is ours to describe.
            Ok(Some(t)) => netdev::tunnel::open(&name, &t).map(|nd| {
                if let Some(c) = nd.tunnel_counters() {
                    tunnels::table().lock().insert(
                        (self.p.bridge_name.clone(), name.clone()),
                        tunnels::TunnelEntry {
                            port_no: self.p.port_no,
                            cfg: t,
                            counters: c,
                        },
                    );
                }
                (nd, tunnel_link(&name))
            }),
            Ok(None) => self
                .p
                .cfg
                .xdp_mode()
                .map_err(|e| NetdevError::Options {
                    dev: name.clone(),
                    msg: format!("{}: {}", e.key, e.msg),
                })
                .and_then(|xdp_mode| {
                    let opts = netdev::DeviceOptions { xdp_mode };
                    netdev::open_with(&name, self.p.cfg.kind, &opts)
                })
                .and_then(|nd| {
                    let link = netlink::get_link(&name)?
                        .ok_or_else(|| NetdevError::NoSuchDevice(name.clone()))?;
                    Ok((nd, link))
                }),
            Err(e) => Err(NetdevError::Options {
                dev: name.clone(),
                msg: format!("{}: {}", e.key, e.msg),
            }),
        };
        match opened {
            Ok((nd, link)) => {
                self.attached = true;
                self.error = None;
                self.link = Some(link.clone());
                self.p.bridge.attached.do_send(PortAttached {
                    port_no: self.p.port_no,
                    name,
                    netdev: nd,
                    link,
                });
            }
            Err(e) => {
                if self.error.is_none() {
                    tracing::warn!("bridge {}: {e}", self.p.bridge_name);
                    coverage::inc(&c::port_open_failed);
                }
                let msg = e.to_string();
                self.meter.set_error(msg.clone());
                self.error = Some(msg);
            }
        }
    }
}

impl Actor for Port {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        // A tunnel port has no kernel link: a kernel device that happens to
        // share its name must not detach it.
        if !self.p.cfg.kind.is_tunnel() {
            self.p
                .registry
                .lock()
                .insert(self.p.cfg.name.clone(), ctx.address());
        }
        self.try_open();
        // Devices created by others may appear at any time; rtnetlink tells
        // us, and this slow retry covers a missed notification.
        if matches!(self.p.cfg.kind, PortType::System | PortType::Afxdp) {
            ctx.run_interval(Duration::from_secs(2), |a, _| {
                if !a.attached {
                    a.try_open();
                }
            });
        }
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.meter.mark_dead();
        if self.p.cfg.kind.is_tunnel() {
            tunnels::table()
                .lock()
                .remove(&(self.p.bridge_name.clone(), self.p.cfg.name.clone()));
            registry().remove(&self.meter.id);
            return;
        }
        let mut reg = self.p.registry.lock();
        if let Some(a) = reg.get(&self.p.cfg.name) {
            if !a.connected() || self.attached || self.error.is_some() {
                reg.remove(&self.p.cfg.name);
            }
        }
        registry().remove(&self.meter.id);
    }
}

impl Handler<LinkChanged> for Port {
    type Result = ();
    fn handle(&mut self, m: LinkChanged, _: &mut Context<Self>) {
        let _g = self.guard::<LinkChanged>();
        if !self.attached {
            self.try_open();
            return;
        }
        if self.link.as_ref() != Some(&m.0) {
            self.link = Some(m.0.clone());
            self.p.bridge.changed.do_send(PortLinkChanged {
                port_no: self.p.port_no,
                link: m.0,
            });
        }
    }
}

impl Handler<LinkDeleted> for Port {
    type Result = ();
    fn handle(&mut self, _: LinkDeleted, _: &mut Context<Self>) {
        let _g = self.guard::<LinkDeleted>();
        if self.attached {
            self.attached = false;
            self.link = None;
            let msg = format!(
                "could not open network device {} (No such device)",
                self.p.cfg.name
            );
            self.meter.set_error(msg.clone());
            self.error = Some(msg);
            self.p.bridge.detached.do_send(PortDetached {
                port_no: self.p.port_no,
                reason: "device deleted".into(),
            });
        }
    }
}

impl Handler<OpenStatus> for Port {
    type Result = Option<String>;
    fn handle(&mut self, _: OpenStatus, _: &mut Context<Self>) -> Option<String> {
        let _g = self.guard::<OpenStatus>();
        if self.attached {
            None
        } else {
            Some(
                self.error
                    .clone()
                    .unwrap_or_else(|| "not opened yet".to_string()),
            )
        }
    }
}

impl Handler<StopPort> for Port {
    type Result = ();
    fn handle(&mut self, _: StopPort, ctx: &mut Context<Self>) {
        let _g = self.guard::<StopPort>();
        self.p.registry.lock().remove(&self.p.cfg.name);
        ctx.stop();
    }
}

/// The link a tunnel port reports to OpenFlow: always up (as OVS's vports),
/// no kernel index, a stable locally administered MAC derived from the name
/// (OVS gives vports a random one), and no MTU of its own (the underlay's
/// route decides; see `docs/TUNNELS.md`).
fn tunnel_link(name: &str) -> LinkInfo {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    let b = h.to_be_bytes();
    LinkInfo {
        ifindex: 0,
        name: name.to_string(),
        mac: crate::types::MacAddr([(b[0] & 0xfe) | 0x02, b[1], b[2], b[3], b[4], b[5]]),
        mtu: 65_535,
        admin_up: true,
        carrier: true,
        speed_mbps: None,
    }
}

/// Starts the process-wide rtnetlink monitor, routing events to Port actors.
pub fn start_link_monitor(reg: PortRegistry) -> Result<netlink::MonitorThread, NetdevError> {
    netlink::spawn_monitor_thread(move |ev| {
        coverage::inc(&c::link_event);
        match ev {
            netlink::LinkEvent::Changed(info) => {
                if let Some(a) = reg.lock().get(&info.name) {
                    let _ = a.try_send(LinkChanged(info));
                }
            }
            netlink::LinkEvent::Deleted { name, .. } => {
                if let Some(a) = reg.lock().get(&name) {
                    let _ = a.try_send(LinkDeleted);
                }
            }
        }
    })
}
