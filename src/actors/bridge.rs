//! The Bridge actor: one OpenFlow switch (seed 002's `ofproto` + `bridge`).
//!
//! Ownership: the Bridge owns its [`Ofproto`] (flow tables, groups, meters,
//! port table) and is the only writer of it; after each batch of changes it
//! publishes an immutable snapshot into [`BridgeShared`], which upcall handlers
//! and revalidators read on their own threads without locking. It owns the
//! bridge's datapath handle (poll threads), starts its Port actors and its
//! Connmgr on the same Arbiter, and tells the revalidator leader when the
//! tables change (`TablesChanged`). A BARRIER_REPLY is held until a
//! revalidation round that started after the preceding changes has finished,
//! so no stale megaflow forwards a packet once the barrier is answered.

use crate::actors::connmgr::{Connmgr, ConnmgrParams, PACKET_IN_QUEUE};
use crate::actors::metrics::{registry, ActorMeter, MsgName};
use crate::actors::port::{Port, PortParams};
use crate::actors::revalidator::{FlowContext, Retranslated, Revalidator, RuleStats};
use crate::config::{BridgeConfig, FailMode, PortConfig};
use crate::datapath::dpflow::DpFlow;
use crate::datapath::flow::FlowKey;
use crate::datapath::meter::now_ns;
use crate::datapath::packet::VnetHdr;
use crate::datapath::pmd::{Datapath, UpcallBatch};
use crate::messages::bridge::*;
use crate::messages::connmgr::{AsyncEvent, ConnmgrReport, FailOpen, Notify, SetConnections};
use crate::messages::revalidator::TablesChanged;
use crate::messages::Mailbox;
use crate::netdev::PortType;
use crate::ofproto::mac_learning::MacLearning;
use crate::ofproto::rule::{PortInfo, Rule, PC_PORT_DOWN, PS_LINK_DOWN, PS_LIVE};
use crate::ofproto::xlate::{translate, translate_actions, XlateOptions, XlateOutput};
use crate::ofproto::{FlowStatsJob, Ofproto, TablesSnapshot, RR_DELETE};
use crate::openflow::action::Action;
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    FlowRemoved, Message, MeterBand, MeterModCommand, MpReplyBody, MpRequestBody, MultipartReply,
    MultipartRequest, OfpMsg, PacketOut, PortStats, PortStatus, MF_PKTPS, NO_BUFFER,
};
use crate::types::{DatapathId, PortNo, TableId};
use crate::util::coverage::{self, c};
use crate::util::time::now_ms;
use actix::prelude::{
    Actor, ActorContext, ActorFutureExt, Addr, AsyncContext, Context, Handler, ResponseActFuture,
    WrapFuture,
};
use arc_swap::ArcSwap;
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{
    fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst,
};
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of a Bridge.
pub const MAILBOX: usize = 256;

/// Where the current revalidator leader is (it can be restarted or resized).
pub type LeaderLink = Arc<RwLock<Option<Mailbox<Revalidator>>>>;

/// The part of a bridge that other threads read: its latest tables snapshot,
/// MAC learning table, datapath handle and packet-in queue.
pub struct BridgeShared {
    /// Bridge name.
    pub name: String,
    /// Process-unique index.
    pub index: u32,
    /// Latest published tables.
    pub snapshot: ArcSwap<TablesSnapshot>,
    /// MAC learning (NORMAL); internally locked, slow path only.
    pub mac: MacLearning,
    /// The datapath (poll threads) of this bridge.
    pub dp: Datapath,
    /// Packet-ins to the Connmgr (bounded; full = dropped and counted).
    pub packet_in_tx: tokio::sync::mpsc::Sender<AsyncEvent>,
    /// Fail-open: forward with NORMAL whatever the tables say.
    pub fail_open: AtomicBool,
    /// Bumped when something outside the tables changes translations.
    pub extra_seq: AtomicU64,
    /// The upcall handlers' queues for this bridge; the router spreads the
    /// datapath's miss batches over them (replaced when handlers are resized).
    pub upcall_routes: ArcSwap<Vec<tokio::sync::mpsc::Sender<UpcallBatch>>>,
    /// Miss batches dropped because the chosen handler's queue was full.
    pub upcall_route_drops: AtomicU64,
    /// Upcall batches between "tables read" and "flows installed or killed".
    /// With no datapath flows and nothing installing, no megaflow can be
    /// stale, so a barrier needs no revalidation round (bulk flow-mods stay fast).
    pub installing: AtomicUsize,
}

impl BridgeShared {
    /// Translates a packet key the way the current configuration says.
    pub fn translate(&self, key: &FlowKey, opts: &XlateOptions) -> XlateOutput {
        let snap = self.snapshot.load();
        if self.fail_open.load(Relaxed) {
            let normal = [Action::Output {
                port: PortNo::NORMAL,
                max_len: 0,
            }];
            translate_actions(&snap, &self.mac, key, &normal, opts)
        } else {
            translate(&snap, &self.mac, key, opts)
        }
    }
}

impl RuleStats for Rule {
    fn add_stats(&self, packets: u64, bytes: u64, used_ms: u64) {
        Rule::add_stats(self, packets, bytes, used_ms);
    }
}

impl FlowContext for BridgeShared {
    fn bridge_index(&self) -> u32 {
        self.index
    }

    fn xlate_seq(&self) -> u64 {
        // Each term only grows, so the sum changes whenever any of them does.
        self.snapshot.load().version + self.mac.seq() + self.extra_seq.load(Relaxed)
    }

    fn retranslate(&self, key: &FlowKey) -> Option<Retranslated> {
        let out = self.translate(
            key,
            &XlateOptions {
                may_learn: false,
                now_ms: now_ms(),
                account: false,
                invalid_ttl_to_controller: false,
            },
        );
        if out.slow != 0 {
            return None;
        }
        Some(Retranslated {
            mask: out.wc,
            actions: out.actions,
            rules: out
                .rules
                .into_iter()
                .map(|r| r as Arc<dyn RuleStats>)
                .collect(),
        })
    }

    fn delete_flow(&self, flow: &Arc<DpFlow>) {
        // The flow is already marked dead (the poll thread ignores it on hit);
        // this removes it from the poll thread's classifier and the registry.
        let _ = self.dp.del_flow(flow.id);
    }
}

struct PortSlot {
    port_no: PortNo,
    addr: Addr<Port>,
    cfg: PortConfig,
}

/// Everything needed to build a bridge.
pub struct BridgeParams {
    /// Its configuration.
    pub cfg: BridgeConfig,
    /// Process-unique index.
    pub index: u32,
    /// Upcall queues, one per handler (the router spreads misses over them).
    pub upcall_txs: Vec<tokio::sync::mpsc::Sender<UpcallBatch>>,
    /// Capacity of the datapath's upcall queue, in batches.
    pub upcall_queue_batches: usize,
    /// Poll threads.
    pub n_pmd_threads: usize,
    /// Poll threads spin this long after the last packet before sleeping (µs).
    pub busy_poll_us: u64,
    /// The revalidator leader.
    pub leader: LeaderLink,
    /// Where Port actors register for link events.
    pub port_registry: crate::actors::port::PortRegistry,
}

/// The bridge actor.
pub struct Bridge {
    cfg: BridgeConfig,
    meter: Arc<ActorMeter>,
    ofproto: Ofproto,
    shared: Arc<BridgeShared>,
    connmgr: Option<Mailbox<Connmgr>>,
    packet_in_rx: Option<tokio::sync::mpsc::Receiver<AsyncEvent>>,
    upcall_rx: Option<tokio::sync::mpsc::Receiver<UpcallBatch>>,
    ports: BTreeMap<String, PortSlot>,
    leader: LeaderLink,
    port_registry: crate::actors::port::PortRegistry,
    /// Last tables version the revalidators have been told about.
    told_version: u64,
    /// Newest version a barrier has been answered for: no megaflow older
    /// than it can forward any more.
    acked_version: u64,
    stopping: bool,
    /// Until when the bridge's thread keeps polling after an OpenFlow request
    /// (see [`SPIN_WINDOW`]); shared with the spinning task.
    /// Deadline in [`now_ns`] time; 0 = no spinner running.
    spin_until: Arc<AtomicU64>,
}

impl Bridge {
    /// Builds the bridge state and starts its datapath threads. The actor is
    /// started by the caller on the bridge's own Arbiter.
    pub fn build(p: BridgeParams) -> Result<(Bridge, Arc<BridgeShared>), String> {
        let dpid = p.cfg.dpid();
        let mut ofproto = Ofproto::new(dpid, &format!("rvswitchd bridge {}", p.cfg.name));
        if p.cfg.fail_mode == FailMode::Standalone && p.cfg.controllers.is_empty() {
            ofproto
                .add_default_normal_flow(now_ms())
                .map_err(|e| format!("default flow: {e}"))?;
        }
        let snap = ofproto.publish();
        let (up_tx, up_rx) = tokio::sync::mpsc::channel(p.upcall_queue_batches);
        let dp = Datapath::start(crate::datapath::pmd::DpConfig {
            n_threads: p.n_pmd_threads.max(1),
            upcall_tx: up_tx,
            emc_insert_inv_prob: 1,
            busy_poll_us: p.busy_poll_us,
        })
        .map_err(|e| format!("bridge {}: cannot start datapath: {e}", p.cfg.name))?;
        let (pin_tx, pin_rx) = tokio::sync::mpsc::channel(PACKET_IN_QUEUE);
        let shared = Arc::new(BridgeShared {
            name: p.cfg.name.clone(),
            index: p.index,
            snapshot: ArcSwap::new(snap),
            mac: MacLearning::new(p.cfg.mac_table_size, p.cfg.mac_aging_secs * 1000),
            dp,
            packet_in_tx: pin_tx,
            fail_open: AtomicBool::new(false),
            extra_seq: AtomicU64::new(0),
            upcall_routes: ArcSwap::from_pointee(p.upcall_txs),
            upcall_route_drops: AtomicU64::new(0),
            installing: AtomicUsize::new(0),
        });
        let meter = registry().meter(
            format!("bridge:{}", p.cfg.name),
            "Bridge",
            Some(p.cfg.name.clone()),
            MAILBOX,
        );
        let b = Bridge {
            cfg: p.cfg,
            meter,
            ofproto,
            shared: shared.clone(),
            connmgr: None,
            packet_in_rx: Some(pin_rx),
            upcall_rx: Some(up_rx),
            ports: BTreeMap::new(),
            leader: p.leader,
            port_registry: p.port_registry,
            told_version: 0,
            acked_version: 0,
            stopping: false,
            spin_until: Arc::new(AtomicU64::new(0)),
        };
        Ok((b, shared))
    }

    /// This bridge's meter.
    pub fn meter(&self) -> Arc<ActorMeter> {
        self.meter.clone()
    }

    fn guard<M: MsgName>(&self) -> crate::actors::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn dpid(&self) -> DatapathId {
        self.cfg.dpid()
    }

    /// Publishes the tables if they changed and tells the revalidators.
    fn publish(&mut self) -> u64 {
        if self.ofproto.is_dirty() {
            let snap = self.ofproto.publish();
            self.shared.snapshot.store(snap);
        }
        let v = self.shared.snapshot.load().version;
        if v != self.told_version {
            self.told_version = v;
            if let Some(l) = self.leader.read().as_ref() {
                l.tell(TablesChanged {
                    bridge: self.shared.index,
                    version: v,
                    ack: None,
                });
            }
        }
        v
    }

    fn notify(&self, ev: AsyncEvent) {
        if let Some(cm) = &self.connmgr {
            cm.tell(Notify(ev));
        }
    }

    fn flow_removed(&self, rule: &Rule, reason: u8) {
        if !rule.send_flow_removed() {
            return;
        }
        let (ds, dn) = rule.duration(now_ms());
        let (p, b) = rule.stats();
        self.notify(AsyncEvent::FlowRemoved(Arc::new(FlowRemoved {
            cookie: rule.cookie,
            priority: rule.priority,
            reason,
            table_id: rule.table_id,
            duration_sec: ds,
            duration_nsec: dn,
            idle_timeout: rule.idle_timeout,
            hard_timeout: rule.hard_timeout,
            packet_count: p,
            byte_count: b,
            match_: rule.match_(),
        })));
    }

    fn port_status(&self, reason: u8, port_no: PortNo) {
        if let Some(desc) = self.ofproto.port_desc(port_no) {
            self.notify(AsyncEvent::PortStatus(Arc::new(PortStatus {
                reason,
                desc,
            })));
        }
    }

    fn pick_port_no(&self, cfg: &PortConfig) -> PortNo {
        if cfg.name == self.cfg.name {
            return PortNo::LOCAL;
        }
        if let Some(n) = cfg.ofport {
            return PortNo(n);
        }
        let used: Vec<u32> = self.ports.values().map(|p| p.port_no.0).collect();
        let reserved: Vec<u32> = self.cfg.port.iter().filter_map(|p| p.ofport).collect();
        let mut n = 1;
        while used.contains(&n) || reserved.contains(&n) {
            n += 1;
        }
        PortNo(n)
    }

    fn add_port(&mut self, cfg: PortConfig, ctx: &mut Context<Self>) {
        let port_no = self.pick_port_no(&cfg);
        let params = PortParams {
            bridge_name: self.cfg.name.clone(),
            cfg: cfg.clone(),
            port_no,
            bridge: ctx.address(),
            registry: self.port_registry.clone(),
        };
        let addr = Port::new(params).start();
        self.ports
            .insert(cfg.name.clone(), PortSlot { port_no, addr, cfg });
    }

    fn remove_port(&mut self, name: &str) {
        if let Some(slot) = self.ports.remove(name) {
            slot.addr.do_send(crate::messages::port::StopPort);
            self.detach(slot.port_no, "removed from configuration");
        }
    }

    fn detach(&mut self, port_no: PortNo, reason: &str) {
        if self.ofproto.port(port_no).is_none() {
            return;
        }
        tracing::info!(
            "bridge {}: port {} detached: {reason}",
            self.cfg.name,
            port_no
        );
        self.port_status(1, port_no);
        let _ = self.shared.dp.del_port(port_no);
        self.ofproto.remove_port(port_no);
        self.shared.mac.flush_port(port_no);
        coverage::inc(&c::port_deleted);
        self.publish();
    }

    fn ensure_internal_port(&mut self, ctx: &mut Context<Self>) {
        if self.cfg.internal_port && !self.ports.contains_key(&self.cfg.name) {
            let cfg = PortConfig {
                name: self.cfg.name.clone(),
                kind: PortType::Internal,
                ofport: None,
                vlan: None,
                trunks: Vec::new(),
            };
            self.add_port(cfg, ctx);
        }
    }

    fn connections(&self) -> SetConnections {
        SetConnections {
            listeners: self.cfg.listeners.clone(),
            controllers: self.cfg.controllers.clone(),
            probe_ms: self.cfg.inactivity_probe_ms,
            max_backoff_ms: self.cfg.max_backoff_ms,
            standalone: self.cfg.fail_mode == FailMode::Standalone,
        }
    }

    fn error(out: &mut Vec<Out>, xid: u32, e: OfpError, head: &[u8]) {
        coverage::inc(&c::ofp_error_sent);
        out.push(Out::Reply(OfReply::Error {
            xid,
            error: e,
            head: head.to_vec(),
        }));
    }

    fn reply(out: &mut Vec<Out>, xid: u32, body: Message) {
        out.push(Out::Reply(OfReply::Msg(OfpMsg { xid, body })));
    }

    fn multipart(&mut self, xid: u32, req: MultipartRequest, head: &[u8], out: &mut Vec<Out>) {
        let now = now_ms();
        let body = match req.body {
            MpRequestBody::Desc => Ok(MpReplyBody::Desc(self.ofproto.desc())),
            MpRequestBody::Flow(r) => {
                match self.ofproto.flow_stats_rules(&r) {
                    // Encoded by the session, off the bridge's critical path.
                    Ok(rules) => out.push(Out::Reply(OfReply::FlowStats(FlowStatsJob::new(
                        xid, now, rules,
                    )))),
                    Err(e) => Self::error(out, xid, e, head),
                }
                return;
            }
            MpRequestBody::Aggregate(r) => {
                self.ofproto.aggregate_stats(&r).map(MpReplyBody::Aggregate)
            }
            MpRequestBody::Table => Ok(MpReplyBody::Table(self.ofproto.table_stats())),
            MpRequestBody::PortStats(p) => self.port_stats(p).map(MpReplyBody::PortStats),
            MpRequestBody::Queue { .. } => Ok(MpReplyBody::Queue),
            MpRequestBody::Group(g) => Ok(MpReplyBody::Group(self.ofproto.group_stats(g, now))),
            MpRequestBody::GroupDesc => Ok(MpReplyBody::GroupDesc(self.ofproto.group_descs())),
            MpRequestBody::GroupFeatures => {
                Ok(MpReplyBody::GroupFeatures(self.ofproto.group_features()))
            }
            MpRequestBody::Meter(m) => Ok(MpReplyBody::Meter(self.ofproto.meter_stats(m, now))),
            MpRequestBody::MeterConfig(m) => {
                Ok(MpReplyBody::MeterConfig(self.ofproto.meter_configs(m)))
            }
            MpRequestBody::MeterFeatures => {
                Ok(MpReplyBody::MeterFeatures(self.ofproto.meter_features()))
            }
            MpRequestBody::TableFeatures(v) if v.is_empty() => {
                Ok(MpReplyBody::TableFeatures(self.ofproto.table_features()))
            }
            MpRequestBody::TableFeatures(_) => Err(OfpError::TableFeaturesEperm),
            MpRequestBody::PortDesc => Ok(MpReplyBody::PortDesc(self.ofproto.port_descs())),
            MpRequestBody::Experimenter { .. } => Err(OfpError::BadExperimenter),
            // Flow monitors decode (openflow::monitor) but are not served yet.
            MpRequestBody::FlowMonitor(_) => Err(OfpError::BadMultipart),
        };
        match body {
            Ok(b) => Self::reply(
                out,
                xid,
                Message::MultipartReply(MultipartReply { flags: 0, body: b }),
            ),
            Err(e) => Self::error(out, xid, e, head),
        }
    }

    fn port_stats(&self, p: PortNo) -> Result<Vec<PortStats>, OfpError> {
        let ports: Vec<PortNo> = if p == PortNo::ANY {
            self.ofproto.ports().keys().copied().collect()
        } else if self.ofproto.port(p).is_some() {
            vec![p]
        } else {
            return Err(OfpError::BadRequestPort);
        };
        Ok(ports
            .into_iter()
            .map(|port_no| {
                let s = self.shared.dp.port_stats(port_no).unwrap_or_default();
                PortStats {
                    port_no,
                    rx_packets: s.rx_packets,
                    tx_packets: s.tx_packets,
                    rx_bytes: s.rx_bytes,
                    tx_bytes: s.tx_bytes,
                    rx_dropped: s.rx_dropped,
                    tx_dropped: s.tx_dropped,
                    rx_errors: s.rx_errors,
                    tx_errors: s.tx_errors,
                    rx_over_err: s.rx_over_err,
                    duration_sec: 0,
                    duration_nsec: 0,
                    ..Default::default()
                }
            })
            .collect())
    }

    fn packet_out(&mut self, xid: u32, po: PacketOut, head: &[u8], out: &mut Vec<Out>) {
        if po.buffer_id != NO_BUFFER {
            return Self::error(out, xid, OfpError::BufferUnknown, head);
        }
        let ip = po.in_port;
        if !(ip.is_physical_or_local() || ip == PortNo::CONTROLLER || ip == PortNo::ANY) {
            return Self::error(out, xid, OfpError::BadRequestPort, head);
        }
        for a in &po.actions {
            if let Action::Output { port, .. } = a {
                if port.0 == 0
                    || (port.0 > PortNo::MAX.0
                        && *port != PortNo::ANY
                        && port.0 < PortNo::IN_PORT.0)
                {
                    return Self::error(out, xid, OfpError::BadOutPort, head);
                }
            }
        }
        let key = match crate::datapath::extract::extract(&po.data, ip) {
            Ok(k) => k,
            Err(_) => {
                // A frame too short to parse still goes out as raw bytes.
                let mut k = FlowKey::default();
                k.set(crate::datapath::flow::Field::InPort, ip.0 as u128);
                k
            }
        };
        self.publish();
        let snap = self.shared.snapshot.load_full();
        let x = translate_actions(
            &snap,
            &self.shared.mac,
            &key,
            &po.actions,
            &XlateOptions {
                may_learn: false,
                now_ms: now_ms(),
                account: true,
                invalid_ttl_to_controller: false,
            },
        );
        coverage::inc(&c::packet_out);
        if !x.actions.is_empty()
            && self
                .shared
                .dp
                .execute(po.data, VnetHdr::default(), ip, x.actions)
                .is_err()
        {
            tracing::debug!("packet-out dropped: datapath op queue full");
        }
    }

    /// Applies one OpenFlow request.
    fn handle_of(&mut self, msg: OfpMsg, head: &[u8], out: &mut Vec<Out>) {
        let xid = msg.xid;
        let now = now_ms();
        match msg.body {
            Message::FlowMod(fm) => {
                coverage::inc(&c::flow_mod);
                match self.ofproto.flow_mod(&fm, now) {
                    Ok(r) => {
                        for rule in &r.removed {
                            self.flow_removed(rule, RR_DELETE);
                        }
                        if r.removed.len() >= DROP_LATER_MIN {
                            // The previous snapshot holds the last references to
                            // the removed tables' trie nodes: publish now and let
                            // the freeing thread drop it with the rules.
                            let old = self
                                .ofproto
                                .is_dirty()
                                .then(|| self.shared.snapshot.swap(self.ofproto.publish()));
                            drop_later(r.removed, old);
                        }
                    }
                    Err(e) => Self::error(out, xid, e, head),
                }
            }
            Message::GroupMod(gm) => match self.ofproto.group_mod(&gm, now) {
                Ok(removed) => {
                    for rule in &removed {
                        self.flow_removed(rule, crate::ofproto::RR_GROUP_DELETE);
                    }
                }
                Err(e) => Self::error(out, xid, e, head),
            },
            Message::MeterMod(mm) => match self.ofproto.meter_mod(&mm, now) {
                Ok(removed) => {
                    for rule in &removed {
                        self.flow_removed(rule, crate::ofproto::RR_METER_DELETE);
                    }
                    match mm.command {
                        MeterModCommand::Delete => {
                            let _ = self.shared.dp.del_meter(mm.meter_id);
                        }
                        _ => {
                            let _ = self
                                .shared
                                .dp
                                .set_meter(mm.meter_id, dp_meter_config(mm.flags, &mm.bands));
                        }
                    }
                }
                Err(e) => Self::error(out, xid, e, head),
            },
            Message::PortMod(pm) => {
                let before = self.ofproto.port(pm.port_no).map(|p| p.config);
                match self.ofproto.port_mod(&pm) {
                    Ok(info) => {
                        if before.map(|b| (b ^ info.config) & PC_PORT_DOWN != 0) == Some(true) {
                            let up = info.config & PC_PORT_DOWN == 0;
                            if let Err(e) = crate::netdev::netlink::set_link_up(&info.name, up) {
                                tracing::warn!("port {}: cannot set admin state: {e}", info.name);
                            }
                        }
                        self.port_status(2, pm.port_no);
                    }
                    Err(e) => Self::error(out, xid, e, head),
                }
            }
            Message::TableMod { table_id, config } => {
                if table_id.0 >= TableId::N_TABLES && table_id != TableId::ALL {
                    Self::error(out, xid, OfpError::TableModBadTable, head);
                } else if config & !3 != 0 {
                    Self::error(out, xid, OfpError::TableModBadConfig, head);
                }
            }
            Message::PacketOut(po) => self.packet_out(xid, po, head, out),
            Message::MultipartRequest(req) => self.multipart(xid, req, head, out),
            Message::BarrierRequest => out.push(Out::Barrier(xid)),
            Message::QueueGetConfigRequest { port } => {
                Self::reply(out, xid, Message::QueueGetConfigReply { port })
            }
            _ => Self::error(out, xid, OfpError::BadType, head),
        }
    }

    fn report_ports(&self) -> String {
        let mut s = format!("{}: dpid:{}\n", self.cfg.name, self.dpid());
        for (name, slot) in &self.ports {
            let state = match self.ofproto.port(slot.port_no) {
                Some(p) => {
                    if p.state & PS_LINK_DOWN != 0 {
                        "LINK_DOWN".to_string()
                    } else {
                        "LIVE".to_string()
                    }
                }
                None => "not attached".to_string(),
            };
            s.push_str(&format!(
                "  port {} ({}): type={:?} {}\n",
                slot.port_no, name, slot.cfg.kind, state
            ));
        }
        s
    }
}

/// One reply slot, in request order.
enum Out {
    Reply(OfReply),
    Barrier(u32),
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        let cm_meter;
        if let Some(rx) = self.packet_in_rx.take() {
            let me = ctx.address();
            let cm = Connmgr::new(ConnmgrParams {
                bridge_name: self.cfg.name.clone(),
                dpid: self.dpid(),
                bridge: me.clone().recipient(),
                bridge_meter: self.meter.clone(),
                fail_open: me.recipient(),
                packet_ins: rx,
            });
            cm_meter = cm.meter();
            let addr = cm.start();
            let mb = Mailbox::new(addr, cm_meter);
            mb.tell(self.connections());
            self.connmgr = Some(mb);
        }
        if let Some(mut rx) = self.upcall_rx.take() {
            // The upcall router: one hop from the datapath's single queue to the
            // handlers, by flow hash so that one flow's misses meet in one handler
            // (which suppresses duplicates). A full handler queue drops, counted.
            let shared = self.shared.clone();
            ctx.spawn(
                async move {
                    while let Some(batch) = rx.recv().await {
                        let routes = shared.upcall_routes.load();
                        if routes.is_empty() {
                            shared.upcall_route_drops.fetch_add(1, Relaxed);
                            continue;
                        }
                        let h = batch.first().map(|u| u.key.hash64()).unwrap_or(0);
                        let i = (h % routes.len() as u64) as usize;
                        if routes[i].try_send(batch).is_err() {
                            shared.upcall_route_drops.fetch_add(1, Relaxed);
                        }
                    }
                }
                .into_actor(self),
            );
        }
        self.ensure_internal_port(ctx);
        for p in self.cfg.port.clone() {
            self.add_port(p, ctx);
        }
        // Timeouts and MAC aging.
        ctx.run_interval(Duration::from_millis(250), |b, _| {
            let now = now_ms();
            let expired = b.ofproto.expire(now);
            for (rule, reason) in &expired {
                b.flow_removed(rule, *reason);
            }
            if b.shared.mac.expire(now) > 0 || !expired.is_empty() {
                b.publish();
            }
        });
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.meter.mark_dead();
    }
}

/// How long the bridge's thread keeps polling after an OpenFlow request.
/// A controller or `ovs-ofctl add-flows` sends one flow-mod and one barrier at
/// a time and waits for the reply: when the thread parks between requests,
/// every round trip pays a wake-up (on a VM, an inter-processor interrupt and
/// an exit, tens of microseconds) and a bulk load runs twice as slowly. Polling
/// for a short while costs a little CPU only while requests keep coming.
const SPIN_WINDOW: Duration = Duration::from_micros(300);

/// Keeps the thread's runtime busy until the shared deadline passes: each
/// `yield_now` lets the runtime poll its sockets (without blocking) before the
/// task runs again, so the next request is picked up at once.
async fn spin_window(until: Arc<AtomicU64>) {
    while now_ns() < until.load(Relaxed) {
        tokio::task::yield_now().await;
    }
    until.store(0, Relaxed);
}

impl Bridge {
    /// Extends the polling window, starting a spinner when none runs. The
    /// spinner is a task of its own, not an item of this actor's context, so
    /// spinning does not re-poll the actor.
    fn keep_warm(&mut self) {
        // Only this actor's thread touches the deadline (the spinner runs
        // there too), so plain loads and stores are enough.
        let running = self.spin_until.load(Relaxed) != 0;
        self.spin_until
            .store(now_ns() + SPIN_WINDOW.as_nanos() as u64, Relaxed);
        if !running {
            actix_rt::spawn(spin_window(self.spin_until.clone()));
        }
    }
}

impl Handler<OfRequests> for Bridge {
    type Result = ResponseActFuture<Self, Vec<OfReply>>;

    fn handle(&mut self, m: OfRequests, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<OfRequests>();
        self.keep_warm();
        let mut out = Vec::with_capacity(m.msgs.len());
        for (msg, head) in m.msgs {
            self.handle_of(msg, &head, &mut out);
        }
        let has_barrier = out.iter().any(|o| matches!(o, Out::Barrier(_)));
        let version = self.publish();
        // A barrier must wait for revalidation only if some megaflow could be
        // stale: one exists, or an upcall is installing one right now (that
        // handler re-checks the version after installing; see upcall.rs).
        fence(SeqCst);
        let may_be_stale = version > self.acked_version
            && (self.shared.dp.n_flows() > 0 || self.shared.installing.load(SeqCst) > 0);
        if has_barrier && !may_be_stale {
            self.acked_version = self.acked_version.max(version);
        }
        let ack = if has_barrier && may_be_stale {
            // Consistency: answer the barrier only after a revalidation round
            // that started after this version was published has finished.
            let (tx, rx) = tokio::sync::oneshot::channel();
            let sent = self.leader.read().as_ref().map(|l| {
                l.tell(TablesChanged {
                    bridge: self.shared.index,
                    version,
                    ack: Some(tx),
                })
            });
            tracing::debug!(version, sent = ?sent, "barrier waits for revalidation");
            if sent == Some(true) {
                Some(rx)
            } else {
                None
            }
        } else {
            None
        };
        let waited = ack.is_some();
        Box::pin(
            async move {
                if let Some(rx) = ack {
                    let r = tokio::time::timeout(Duration::from_secs(5), rx).await;
                    tracing::debug!(acked = ?r.as_ref().map(|x| x.is_ok()), "barrier released");
                }
                out.into_iter()
                    .map(|o| match o {
                        Out::Reply(r) => r,
                        Out::Barrier(xid) => OfReply::Msg(OfpMsg {
                            xid,
                            body: Message::BarrierReply,
                        }),
                    })
                    .collect::<Vec<_>>()
            }
            .into_actor(self)
            .map(move |replies, act, _| {
                if waited {
                    act.acked_version = act.acked_version.max(version);
                }
                replies
            }),
        )
    }
}

impl Handler<PortAttached> for Bridge {
    type Result = ();
    fn handle(&mut self, m: PortAttached, _: &mut Context<Self>) {
        let _g = self.guard::<PortAttached>();
        if self.stopping {
            return;
        }
        let slot = self.ports.get(&m.name);
        let Some(slot) = slot else { return };
        let mut info = PortInfo::new(m.port_no, &m.name, m.link.mac);
        info.vlan = slot.cfg.vlan;
        info.trunks = slot.cfg.trunks.clone();
        info.state = if m.link.carrier {
            PS_LIVE
        } else {
            PS_LINK_DOWN
        };
        if let Some(mbps) = m.link.speed_mbps {
            info.curr_speed = mbps.saturating_mul(1000);
            info.max_speed = info.curr_speed;
        }
        if let Err(e) = self.shared.dp.add_port(m.port_no, m.netdev) {
            tracing::error!("bridge {}: port {}: {e}", self.cfg.name, m.name);
            self.meter.set_error(format!("port {}: {e}", m.name));
            return;
        }
        self.ofproto.add_port(info);
        coverage::inc(&c::port_added);
        tracing::info!(
            "bridge {}: added port {} as {}",
            self.cfg.name,
            m.name,
            m.port_no
        );
        self.port_status(0, m.port_no);
        self.publish();
    }
}

impl Handler<PortLinkChanged> for Bridge {
    type Result = ();
    fn handle(&mut self, m: PortLinkChanged, _: &mut Context<Self>) {
        let _g = self.guard::<PortLinkChanged>();
        if let Some(mut info) = self.ofproto.port(m.port_no).cloned() {
            let state = if m.link.carrier {
                PS_LIVE
            } else {
                PS_LINK_DOWN
            };
            let admin_down = !m.link.admin_up;
            let mut config = info.config;
            if admin_down {
                config |= PC_PORT_DOWN;
            } else {
                config &= !PC_PORT_DOWN;
            }
            if info.state != state || info.config != config || info.hw_addr != m.link.mac {
                info.state = state;
                info.config = config;
                info.hw_addr = m.link.mac;
                self.ofproto.update_port(info);
                self.port_status(2, m.port_no);
                self.publish();
            }
        }
    }
}

impl Handler<PortDetached> for Bridge {
    type Result = ();
    fn handle(&mut self, m: PortDetached, _: &mut Context<Self>) {
        let _g = self.guard::<PortDetached>();
        self.detach(m.port_no, &m.reason);
    }
}

impl Handler<FailOpen> for Bridge {
    type Result = ();
    fn handle(&mut self, m: FailOpen, _: &mut Context<Self>) {
        let _g = self.guard::<FailOpen>();
        self.shared.fail_open.store(m.0, Relaxed);
        self.shared.extra_seq.fetch_add(1, Relaxed);
        self.told_version = 0;
        self.publish();
    }
}

impl Handler<Reconfigure> for Bridge {
    type Result = ();
    fn handle(&mut self, m: Reconfigure, ctx: &mut Context<Self>) {
        let _g = self.guard::<Reconfigure>();
        let d = m.diff;
        self.cfg = m.cfg;
        // Seed order: delete first, then add, then reconfigure.
        for name in &d.ports_removed {
            self.remove_port(name);
        }
        for p in d.ports_added {
            self.add_port(p, ctx);
        }
        for p in d.ports_changed {
            if let Some(slot) = self.ports.get_mut(&p.name) {
                slot.cfg = p.clone();
                if let Some(mut info) = self.ofproto.port(slot.port_no).cloned() {
                    info.vlan = p.vlan;
                    info.trunks = p.trunks.clone();
                    self.ofproto.update_port(info);
                }
            }
        }
        if d.dpid_changed {
            self.ofproto.set_dpid(self.cfg.dpid());
        }
        if d.mac_changed {
            self.shared
                .mac
                .set_limits(self.cfg.mac_table_size, self.cfg.mac_aging_secs * 1000);
        }
        if d.connections_changed || d.fail_mode_changed {
            if let Some(cm) = &self.connmgr {
                cm.tell(self.connections());
            }
        }
        self.ensure_internal_port(ctx);
        self.publish();
    }
}

impl Handler<StopBridge> for Bridge {
    type Result = ();
    fn handle(&mut self, _: StopBridge, ctx: &mut Context<Self>) {
        let _g = self.guard::<StopBridge>();
        self.stopping = true;
        let names: Vec<String> = self.ports.keys().cloned().collect();
        for n in names {
            self.remove_port(&n);
        }
        if let Some(cm) = self.connmgr.take() {
            cm.tell(SetConnections {
                listeners: vec![],
                controllers: vec![],
                probe_ms: 0,
                max_backoff_ms: 0,
                standalone: false,
            });
            registry().remove(&cm.meter.id);
        }
        self.shared.dp.clone().shutdown();
        registry().remove(&self.meter.id);
        ctx.stop();
    }
}

impl Handler<BridgeQuery> for Bridge {
    type Result = ResponseActFuture<Self, Result<String, String>>;

    fn handle(&mut self, m: BridgeQuery, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<BridgeQuery>();
        let now = now_ms();
        let ready = |r: Result<String, String>| -> Self::Result { Box::pin(actix::fut::ready(r)) };
        match m.0 {
            Query::DumpDpFlows => {
                let mut s = String::new();
                for f in self.shared.dp.flows() {
                    if f.is_dead() {
                        continue;
                    }
                    s.push_str(&crate::datapath::odp_format::format_flow(&f, now));
                    s.push('\n');
                }
                ready(Ok(s))
            }
            Query::DelDpFlows => {
                let n = self.shared.dp.flows().len();
                for f in self.shared.dp.flows() {
                    f.kill();
                }
                self.shared.dp.flush_flows();
                ready(Ok(format!("deleted {n} flows\n")))
            }
            Query::Trace(spec) => ready(crate::ofproto::trace::trace(&self.shared, &spec)),
            Query::FdbShow => {
                let mut s = String::from(" port  VLAN  MAC                Age\n");
                for e in self.shared.mac.entries(now) {
                    let port = if e.port == PortNo::LOCAL {
                        "LOCAL".to_string()
                    } else {
                        e.port.0.to_string()
                    };
                    s.push_str(&format!(
                        "{:>5}  {:>4}  {}  {:>3}\n",
                        port, e.vlan, e.mac, e.age_secs
                    ));
                }
                ready(Ok(s))
            }
            Query::FdbFlush => {
                self.shared.mac.flush();
                ready(Ok("table successfully flushed\n".into()))
            }
            Query::Show => ready(Ok(self.report_ports())),
            Query::PmdStats => ready(Ok(format_pmd_stats(&self.cfg.name, &self.shared.dp))),
            Query::DpShow => ready(Ok(format!(
                "{}:\n  flows: {}\n{}",
                self.cfg.name,
                self.shared.dp.n_flows(),
                self.report_ports()
            ))),
            Query::Connections => {
                let cm = self.connmgr.clone();
                Box::pin(
                    async move {
                        match cm {
                            Some(cm) => match cm.ask(ConnmgrReport).await {
                                Ok(v) => Ok(serde_json::to_string_pretty(&v).unwrap_or_default()),
                                Err(e) => Err(e.to_string()),
                            },
                            None => Err("no connection manager".into()),
                        }
                    }
                    .into_actor(self),
                )
            }
        }
    }
}

/// Below this many removed rules, freeing inline is cheaper than a thread.
const DROP_LATER_MIN: usize = 4096;

/// Frees a large batch of removed rules, and the snapshot that was replaced
/// when they were removed, off the bridge thread (like OVS's RCU-postponed
/// frees): a `del-flows` of 100k rules would otherwise spend most of its time
/// in the allocator before the barrier reply goes out.
fn drop_later(rules: Vec<Arc<Rule>>, snapshot: Option<Arc<TablesSnapshot>>) {
    let spawned = std::thread::Builder::new()
        .name("rvs-free".into())
        .spawn(move || {
            // Tables first: the rules' last references are then ours.
            drop(snapshot);
            drop(rules);
        });
    if let Err(e) = spawned {
        // The rules were moved into the failed closure and are freed here.
        tracing::debug!("freeing removed rules inline: {e}");
    }
}

/// Converts an OpenFlow meter into the datapath's meter configuration.
fn dp_meter_config(flags: u16, bands: &[MeterBand]) -> crate::datapath::meter::MeterConfig {
    use crate::datapath::meter::{BandKind, MeterBand as DpBand, MeterConfig, MeterUnit};
    MeterConfig {
        unit: if flags & MF_PKTPS != 0 {
            MeterUnit::Pktps
        } else {
            MeterUnit::Kbps
        },
        bands: bands
            .iter()
            .filter_map(|b| match b {
                MeterBand::Drop { rate, burst_size } => Some(DpBand {
                    kind: BandKind::Drop,
                    rate: *rate,
                    burst_size: *burst_size,
                }),
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                } => Some(DpBand {
                    kind: BandKind::DscpRemark {
                        prec_level: *prec_level,
                    },
                    rate: *rate,
                    burst_size: *burst_size,
                }),
                MeterBand::Experimenter { .. } => None,
            })
            .collect(),
    }
}

/// Per-poll-thread counters, like `dpif-netdev/pmd-stats-show`.
pub fn format_pmd_stats(bridge: &str, dp: &Datapath) -> String {
    let st = dp.stats();
    let mut s = format!("bridge {bridge}:\n");
    for (i, t) in st.threads.iter().enumerate() {
        let hits = t.emc_hits + t.megaflow_hits;
        s.push_str(&format!(
            "pmd thread numa_id 0 core_id {i}:\n  packets received: {}\n  packet recirculations: 0\n  avg. datapath passes per packet: 1.00\n  emc hits: {}\n  smc hits: 0\n  megaflow hits: {}\n  avg. subtable lookups per megaflow hit: 1.00\n  miss with success upcall: {}\n  miss with failed upcall: {}\n  avg. packets per output batch: 0.00\n  invalid packets: {}\n  action upcalls: {}\n  meter drops: {}\n  tx packets: {}\n  tx drops: {}\n  hit ratio: {:.1}%\n",
            t.rx_packets,
            t.emc_hits,
            t.megaflow_hits,
            t.misses,
            t.lost,
            t.rx_invalid,
            t.action_upcalls,
            t.meter_drops,
            t.tx_packets,
            t.tx_drops,
            if t.rx_packets == 0 { 0.0 } else { hits as f64 * 100.0 / t.rx_packets as f64 },
        ));
    }
    s.push_str(&format!(
        "  datapath ops dropped (queue full): {}\n",
        st.ops_dropped
    ));
    s
}

/// Datapath counters as JSON for `/stats`.
pub fn dp_stats_json(shared: &BridgeShared) -> serde_json::Value {
    let st = shared.dp.stats();
    let t = |x: &crate::datapath::pmd::PmdStatsSnapshot| {
        serde_json::json!({
            "rx_packets": x.rx_packets, "emc_hits": x.emc_hits, "megaflow_hits": x.megaflow_hits,
            "misses": x.misses, "lost": x.lost, "rx_invalid": x.rx_invalid,
            "tx_packets": x.tx_packets, "tx_drops": x.tx_drops, "action_upcalls": x.action_upcalls,
            "meter_drops": x.meter_drops,
        })
    };
    serde_json::json!({
        "megaflows": shared.dp.n_flows(),
        "total": t(&st.total),
        "pmd_threads": st.threads.iter().enumerate().map(|(i, x)| {
            let mut v = t(x);
            v["id"] = serde_json::json!(i.to_string());
            v
        }).collect::<Vec<_>>(),
        "ops_dropped": st.ops_dropped,
        "upcall_route_drops": shared.upcall_route_drops.load(Relaxed),
        // Per port, so that overload at a port (frames the kernel dropped
        // because the poll thread fell behind) shows where it happens.
        "ports": shared.snapshot.load().ports.values().filter_map(|p| {
            let s = shared.dp.port_stats(p.port_no)?;
            Some(serde_json::json!({
                "name": p.name, "port_no": p.port_no.0,
                "rx_packets": s.rx_packets, "rx_bytes": s.rx_bytes,
                "rx_dropped": s.rx_dropped, "rx_over_err": s.rx_over_err,
                "rx_errors": s.rx_errors, "tx_packets": s.tx_packets,
                "tx_bytes": s.tx_bytes, "tx_dropped": s.tx_dropped,
                "tx_errors": s.tx_errors,
            }))
        }).collect::<Vec<_>>(),
    })
}

/// Bridges by name, for the control commands (owned by the Daemon).
pub type BridgeMap = HashMap<String, Mailbox<Bridge>>;
