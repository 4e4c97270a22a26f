//! What changed between the running configuration and a new one, in the order
//! OVS's `bridge.c:bridge_reconfigure()` applies it: delete what is gone first (names
//! can move between bridges), then add, then reconfigure what remains.

use super::{BridgeConfig, Config, PortConfig};

/// Changes inside one bridge that survives the reload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BridgeDiff {
    /// The bridge's name (the same in both configurations).
    pub name: String,
    /// Ports to delete (by name).
    pub ports_removed: Vec<String>,
    /// Ports to add.
    pub ports_added: Vec<PortConfig>,
    /// Ports whose settings changed (deleted and re-added when the type or
    /// OpenFlow number changed; VLAN changes apply in place).
    pub ports_changed: Vec<PortConfig>,
    /// Listener or controller lists, probe or backoff changed.
    pub connections_changed: bool,
    /// fail_mode changed.
    pub fail_mode_changed: bool,
    /// datapath id changed.
    pub dpid_changed: bool,
    /// MAC learning parameters changed.
    pub mac_changed: bool,
    /// `restore_flows` changed.
    pub restore_flows_changed: bool,
}

impl BridgeDiff {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.ports_removed.is_empty()
            && self.ports_added.is_empty()
            && self.ports_changed.is_empty()
            && !self.connections_changed
            && !self.fail_mode_changed
            && !self.dpid_changed
            && !self.mac_changed
            && !self.restore_flows_changed
    }
}

/// The whole difference.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConfigDiff {
    /// Bridges to delete.
    pub bridges_removed: Vec<String>,
    /// Bridges to create.
    pub bridges_added: Vec<BridgeConfig>,
    /// Bridges that stay, with their changes (only non-empty ones).
    pub bridges_changed: Vec<BridgeDiff>,
    /// `[datapath]` changed (thread counts, limits).
    pub datapath_changed: bool,
    /// The log level changed.
    pub log_level_changed: bool,
    /// Control socket or stats address changed (needs a restart to take effect).
    pub needs_restart: Vec<String>,
}

impl ConfigDiff {
    /// Computes `new - old`.
    pub fn between(old: &Config, new: &Config) -> ConfigDiff {
        let mut d = ConfigDiff::default();
        for b in &old.bridge {
            if new.bridge(&b.name).is_none() {
                d.bridges_removed.push(b.name.clone());
            }
        }
        for nb in &new.bridge {
            match old.bridge(&nb.name) {
                None => d.bridges_added.push(nb.clone()),
                Some(ob) => {
                    let bd = diff_bridge(ob, nb);
                    if !bd.is_empty() {
                        d.bridges_changed.push(bd);
                    }
                }
            }
        }
        d.datapath_changed = old.datapath != new.datapath;
        d.log_level_changed = old.daemon.log_level != new.daemon.log_level;
        if old.daemon.control_socket != new.daemon.control_socket {
            d.needs_restart.push("daemon.control_socket".into());
        }
        if old.daemon.stats_listen != new.daemon.stats_listen {
            d.needs_restart.push("daemon.stats_listen".into());
        }
        // Bridges learn where and how often to save when they start.
        if old.daemon.state_dir() != new.daemon.state_dir() {
            d.needs_restart.push("daemon.state_dir".into());
        }
        if old.daemon.state_save_ms != new.daemon.state_save_ms {
            d.needs_restart.push("daemon.state_save_ms".into());
        }
        // Poll-thread settings are fixed when a bridge's datapath starts.
        if old.datapath.n_pmd_threads != new.datapath.n_pmd_threads {
            d.needs_restart.push("datapath.n_pmd_threads".into());
        }
        if old.datapath.busy_poll_us != new.datapath.busy_poll_us {
            d.needs_restart.push("datapath.busy_poll_us".into());
        }
        if old.datapath.upcall_queue_batches != new.datapath.upcall_queue_batches {
            d.needs_restart.push("datapath.upcall_queue_batches".into());
        }
        d
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.bridges_removed.is_empty()
            && self.bridges_added.is_empty()
            && self.bridges_changed.is_empty()
            && !self.datapath_changed
            && !self.log_level_changed
            && self.needs_restart.is_empty()
    }
}

fn diff_bridge(o: &BridgeConfig, n: &BridgeConfig) -> BridgeDiff {
    let mut d = BridgeDiff {
        name: n.name.clone(),
        ..Default::default()
    };
    for op in &o.port {
        match n.port.iter().find(|p| p.name == op.name) {
            None => d.ports_removed.push(op.name.clone()),
            Some(np) if np != op => {
                // A tunnel's options are its device: changing one reopens it.
                let tunnel_changed = np.tunnel_config().ok() != op.tunnel_config().ok();
                // So is an afxdp port's XDP mode (the program and socket).
                let xdp_changed = np.xdp_mode().ok() != op.xdp_mode().ok();
                if np.kind != op.kind || np.ofport != op.ofport || tunnel_changed || xdp_changed {
                    d.ports_removed.push(op.name.clone());
                    d.ports_added.push(np.clone());
                } else {
                    d.ports_changed.push(np.clone());
                }
            }
            Some(_) => {}
        }
    }
    for np in &n.port {
        if !o.port.iter().any(|p| p.name == np.name) {
            d.ports_added.push(np.clone());
        }
    }
    d.connections_changed = o.listeners != n.listeners
        || o.controllers != n.controllers
        || o.inactivity_probe_ms != n.inactivity_probe_ms
        || o.protocols != n.protocols
        || o.max_backoff_ms != n.max_backoff_ms;
    d.fail_mode_changed = o.fail_mode != n.fail_mode;
    d.dpid_changed = o.dpid() != n.dpid();
    d.mac_changed = o.mac_aging_secs != n.mac_aging_secs || o.mac_table_size != n.mac_table_size;
    d.restore_flows_changed = o.restore_flows != n.restore_flows;
    d
}
