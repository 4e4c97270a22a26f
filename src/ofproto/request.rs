//! OpenFlow request handling with no I/O: `(state, message, now) → effects`.
//!
//! [`Requests::handle`] applies one request from a controller to the switch
//! state ([`Ofproto`] and its translation view) and says what must happen
//! as a result ([`Effects`]): the answer in request order (a reply, an error,
//! or a barrier to hold), asynchronous events for controllers (FLOW_REMOVED,
//! PORT_STATUS), datapath and device operations (packet execution, meter
//! updates, a port's admin state), and removed rules to free off the bridge's
//! thread. The Bridge actor applies the effects; unit tests read them.
//!
//! Following OVS's `ofproto.c` (`handle_openflow__()` and the `handle_*`
//! functions it dispatches to), with the checks OVS makes:
//! - FLOW_MOD: a `buffer_id` other than NO_BUFFER is OFPBRC_BUFFER_UNKNOWN
//!   and nothing is applied (`handle_flow_mod__()`, `check_buffer_id`): we
//!   never buffer packets.
//! - PACKET_OUT (`ofproto_packet_out_init()`, `ofputil_decode_packet_out()`,
//!   `ofpact_check_output_port()`, `ofproto_check_ofpacts()`): NO_BUFFER
//!   only; `in_port` a port number, LOCAL, CONTROLLER, or 0, which OVS takes
//!   as "no input port" and controllers send that way; OFPP_ANY and the
//!   other reserved numbers are OFPBRC_BAD_PORT (OF1.3.5 §7.3.7: "a valid
//!   standard switch port or OFPP_CONTROLLER"); output to 0, ANY or an
//!   unused reserved number is OFPBAC_BAD_OUT_PORT; a group that does not
//!   exist is OFPBAC_BAD_OUT_GROUP.
//! - METER_MOD (`handle_meter_mod()`): the spec names no error for a meter
//!   without bands, and such a meter would pass every packet while claiming
//!   to limit: ADD and MODIFY with no band are OFPMMFC_BAD_BAND.
//!
//! Thread: the Bridge's, which owns the `Ofproto`; nothing here blocks.

use super::monitor::{initial_updates, FlowChange};
use super::rule::{Rule, PC_PORT_DOWN};
use super::view::XlateView;
use super::xlate::XlateOptions;
use super::{FlowStatsJob, Ofproto, TablesSnapshot, RR_DELETE, RR_GROUP_DELETE, RR_METER_DELETE};
use crate::datapath::actions::DpActions;
use crate::datapath::extract::extract;
use crate::datapath::flow::{Field, FlowKey};
use crate::datapath::meter::{BandKind, DpMeterBand, DpMeterConfig, MeterUnit};
use crate::datapath::pmd::PortCountersSnapshot;
use crate::openflow::action::Action;
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    BundleCtrl, BundleCtrlType, FlowRemoved, FlowUpdate, FlowUpdateEvent, Message, MeterBand,
    MeterModCommand, MpReplyBody, MpRequestBody, MultipartReply, MultipartRequest, OfpMsg,
    PacketOut, PortStats, PortStatus, MF_PKTPS, NO_BUFFER,
};
use crate::types::{MeterId, PortNo, TableId};
use crate::util::coverage::{self, c};
use std::sync::Arc;

/// OFPPR_ADD: a port was added (OF1.3.5 §7.4.3).
pub const PR_ADD: u8 = 0;
/// OFPPR_DELETE: a port was removed.
pub const PR_DELETE: u8 = 1;
/// OFPPR_MODIFY: some attribute of a port changed.
pub const PR_MODIFY: u8 = 2;

/// OFPTC_DEPRECATED_MASK: the only TABLE_MOD config bits OpenFlow 1.3 knows
/// (OF1.3.5 §7.3.3); any other bit is OFPTMFC_BAD_CONFIG.
pub const TABLE_CONFIG_DEPRECATED_MASK: u32 = 3;

/// Below this many removed rules, freeing inline is cheaper than a thread.
pub const FREE_LATER_MIN: usize = 4096;

/// A bundle commit (OF1.4.1 §7.3.9.4): which COMMIT_REQUEST the batch of
/// messages answers. The connection keeps bundles while they are built and
/// hands the bridge their messages only at commit.
#[derive(Clone, Debug)]
pub struct BundleCommit {
    /// The COMMIT_REQUEST's xid.
    pub xid: u32,
    /// The bundle.
    pub bundle_id: u32,
    /// The COMMIT_REQUEST's first bytes, echoed in its error.
    pub head: Vec<u8>,
}

/// One answer to an OpenFlow request. The bridge never encodes: the session
/// encodes each answer in the version it negotiated (and splits multipart
/// replies into messages of at most 64 KiB).
#[derive(Debug)]
pub enum OfReply {
    /// A reply message (MULTIPART_REPLY bodies of any size included).
    Msg(OfpMsg),
    /// An OFPT_ERROR answering the request with this xid.
    Error {
        /// The request's xid.
        xid: u32,
        /// What went wrong, as an OpenFlow type/code.
        error: OfpError,
        /// The request's first bytes, echoed in the error's data.
        head: Vec<u8>,
    },
    /// A flow-stats reply still to be encoded: the session encodes it a few
    /// 64 KB messages at a time while the first ones are being written, so a
    /// dump of 100k rules neither holds the Bridge nor waits to be fully
    /// encoded before the peer can start parsing.
    FlowStats(FlowStatsJob),
    /// The answer to a flow monitor request: the rules its INITIAL monitors
    /// cover now. The connection registered the monitors already; it sends
    /// `updates` as the multipart reply to `xid` and reports later changes
    /// stamped after `version` only (see [`super::monitor`]).
    FlowMonitor {
        /// The request's xid (0: a refresh the connection asked for to
        /// resume paused monitors).
        xid: u32,
        /// The tables version the updates reflect.
        version: u64,
        /// The monitors of the request.
        ids: Vec<u32>,
        /// The updates (event INITIAL), each with its rule's id.
        updates: Vec<(u64, FlowUpdate)>,
    },
}

/// The answer slot of one request, in request order.
#[derive(Debug)]
pub enum Answer {
    /// Send this.
    Reply(OfReply),
    /// A BARRIER_REQUEST with this xid: answered once everything before it
    /// has taken effect (the actor decides when; see [`Barriers`]).
    Barrier(u32),
}

/// An asynchronous message for controllers, before per-connection filtering.
#[derive(Clone, Debug)]
pub enum Event {
    /// A rule was removed and asked to be reported.
    FlowRemoved(Arc<FlowRemoved>),
    /// A port appeared, changed or went away.
    PortStatus(Arc<PortStatus>),
}

/// An operation on the datapath or a device, in request order.
#[derive(Debug)]
pub enum Op {
    /// Run `actions` on a PACKET_OUT's frame.
    Execute {
        /// The PACKET_OUT's xid (for logs).
        xid: u32,
        /// The frame.
        packet: Vec<u8>,
        /// Its input port.
        in_port: PortNo,
        /// Translated actions (never empty).
        actions: DpActions,
    },
    /// Add or replace a meter in every poll thread.
    SetMeter {
        /// Meter id.
        id: MeterId,
        /// Its bands.
        config: DpMeterConfig,
    },
    /// Remove a meter from every poll thread.
    DelMeter {
        /// Meter id.
        id: MeterId,
    },
    /// Set a port's device administratively up or down (PORT_MOD PORT_DOWN).
    SetAdminState {
        /// Interface name.
        port: String,
        /// Up (true) or down.
        up: bool,
    },
}

/// Removed rules to free on another thread, with the snapshot that still
/// referenced their tables (OVS postpones such frees with RCU).
pub struct FreeLater {
    /// The rules.
    pub rules: Vec<Arc<Rule>>,
    /// The replaced snapshot, dropped first.
    pub snapshot: Option<Arc<TablesSnapshot>>,
}

impl std::fmt::Debug for FreeLater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FreeLater({} rules)", self.rules.len())
    }
}

/// Everything a batch of requests asks for.
#[derive(Debug, Default)]
pub struct Effects {
    /// One slot per request, in request order.
    pub answers: Vec<Answer>,
    /// Asynchronous messages for controllers.
    pub events: Vec<Event>,
    /// Datapath and device operations, in order.
    pub ops: Vec<Op>,
    /// Rules to free off the bridge's thread.
    pub free_later: Vec<FreeLater>,
    /// Set by the caller when some connection has a flow monitor: only then
    /// are rule changes recorded in `flow_changes` (a switch nobody
    /// monitors pays nothing for them).
    pub monitored: bool,
    /// Rule changes for flow monitors, in order.
    pub flow_changes: Vec<FlowChange>,
}

impl Effects {
    fn error(&mut self, xid: u32, error: OfpError, head: &[u8]) {
        coverage::inc(&c::ofp_error_sent);
        self.answers.push(Answer::Reply(OfReply::Error {
            xid,
            error,
            head: head.to_vec(),
        }));
    }

    fn reply(&mut self, xid: u32, body: Message) {
        self.answers
            .push(Answer::Reply(OfReply::Msg(OfpMsg { xid, body })));
    }

    /// Records `rules` as removed for `reason` by request `xid`.
    fn removed(&mut self, rules: &[Arc<Rule>], reason: u8, xid: u32) {
        if self.monitored {
            self.flow_changes.extend(rules.iter().map(|r| FlowChange {
                event: FlowUpdateEvent::Removed,
                reason,
                rule: r.clone(),
                old: None,
                xid,
            }));
        }
    }

    /// Records what a FLOW_MOD did (OVS `replace_rule_finish()`: an ADD is
    /// ADDED whether or not it replaced a rule, a MODIFY is reported only
    /// when it changed the instructions; the old rule goes along when its
    /// actions differ, for out_port).
    fn flow_mod_changes(&mut self, r: &super::FlowModResult, xid: u32) {
        if !self.monitored {
            return;
        }
        self.removed(&r.removed, RR_DELETE, xid);
        if let Some(rule) = &r.added {
            let old = r
                .replaced
                .as_ref()
                .filter(|o| o.instructions != rule.instructions)
                .cloned();
            self.flow_changes.push(FlowChange {
                event: FlowUpdateEvent::Added,
                reason: 0,
                rule: rule.clone(),
                old,
                xid,
            });
        }
        for (old, new) in &r.modified {
            if old.instructions != new.instructions {
                self.flow_changes.push(FlowChange {
                    event: FlowUpdateEvent::Modified,
                    reason: 0,
                    rule: new.clone(),
                    old: Some(old.clone()),
                    xid,
                });
            }
        }
    }

    /// True when some answer is a barrier.
    pub fn has_barrier(&self) -> bool {
        self.answers.iter().any(|a| matches!(a, Answer::Barrier(_)))
    }
}

/// The state a request works on.
pub struct Requests<'a> {
    /// The switch.
    pub ofproto: &'a mut Ofproto,
    /// Where its snapshots are published and packet-outs are translated.
    pub view: &'a XlateView,
    /// Counters of a datapath port (PORT_STATS), if it exists.
    pub port_counters: &'a dyn Fn(PortNo) -> Option<PortCountersSnapshot>,
}

/// A FLOW_REMOVED event for `rule` if it asked for one (OFPFF_SEND_FLOW_REM).
pub fn flow_removed(rule: &Rule, reason: u8, now_ms: u64) -> Option<Event> {
    if !rule.send_flow_removed() {
        return None;
    }
    let (duration_sec, duration_nsec) = rule.duration(now_ms);
    let (packet_count, byte_count) = rule.stats();
    Some(Event::FlowRemoved(Arc::new(FlowRemoved {
        cookie: rule.cookie,
        priority: rule.priority,
        reason,
        table_id: rule.table_id,
        duration_sec,
        duration_nsec,
        idle_timeout: rule.idle_timeout,
        hard_timeout: rule.hard_timeout,
        packet_count,
        byte_count,
        match_: rule.match_(),
    })))
}

/// A PORT_STATUS event for `port_no` as the switch describes it now.
pub fn port_status(ofproto: &Ofproto, reason: u8, port_no: PortNo) -> Option<Event> {
    ofproto
        .port_desc(port_no)
        .map(|desc| Event::PortStatus(Arc::new(PortStatus { reason, desc })))
}

/// Converts an OpenFlow meter into the datapath's meter configuration.
pub fn dp_meter_config(flags: u16, bands: &[MeterBand]) -> DpMeterConfig {
    DpMeterConfig {
        unit: if flags & MF_PKTPS != 0 {
            MeterUnit::Pktps
        } else {
            MeterUnit::Kbps
        },
        bands: bands
            .iter()
            .filter_map(|b| match b {
                MeterBand::Drop { rate, burst_size } => Some(DpMeterBand {
                    kind: BandKind::Drop,
                    rate: *rate,
                    burst_size: *burst_size,
                }),
                MeterBand::DscpRemark {
                    rate,
                    burst_size,
                    prec_level,
                } => Some(DpMeterBand {
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

/// Whether a PACKET_OUT may name `p` as its input port (module docs).
fn packet_out_in_port_ok(p: PortNo) -> bool {
    p.0 == 0 || p.is_physical_or_local() || p == PortNo::CONTROLLER
}

/// Whether a PACKET_OUT may output to `p`: a port number, or a reserved port
/// that means something for a packet (`ofpact_check_output_port()`, with 0
/// refused as OpenFlow says port numbers start at 1).
fn packet_out_port_ok(p: PortNo) -> bool {
    (p.0 >= 1 && p.0 <= PortNo::MAX.0) || (p.0 >= PortNo::IN_PORT.0 && p != PortNo::ANY)
}

impl Requests<'_> {
    /// Publishes the tables into the view if they changed; returns the
    /// published version.
    pub fn publish(&mut self) -> u64 {
        if self.ofproto.is_dirty() {
            self.view.snapshot.store(self.ofproto.publish());
        }
        self.view.snapshot.load().version
    }

    /// Applies one request.
    pub fn handle(&mut self, msg: OfpMsg, head: &[u8], now_ms: u64, fx: &mut Effects) {
        let xid = msg.xid;
        match msg.body {
            Message::FlowMod(fm) => {
                if fm.buffer_id != NO_BUFFER {
                    return fx.error(xid, OfpError::BufferUnknown, head);
                }
                coverage::inc(&c::flow_mod);
                match self.ofproto.flow_mod(&fm, now_ms) {
                    Ok(r) => {
                        fx.flow_mod_changes(&r, xid);
                        fx.events.extend(
                            r.removed
                                .iter()
                                .filter_map(|rule| flow_removed(rule, RR_DELETE, now_ms)),
                        );
                        if r.removed.len() >= FREE_LATER_MIN {
                            // The previous snapshot holds the last references to
                            // the removed tables' trie nodes: publish now and let
                            // the freeing thread drop it with the rules.
                            let snapshot = self
                                .ofproto
                                .is_dirty()
                                .then(|| self.view.snapshot.swap(self.ofproto.publish()));
                            fx.free_later.push(FreeLater {
                                rules: r.removed,
                                snapshot,
                            });
                        }
                    }
                    Err(e) => fx.error(xid, e, head),
                }
            }
            Message::GroupMod(gm) => match self.ofproto.group_mod(&gm, now_ms) {
                Ok(removed) => {
                    fx.removed(&removed, RR_GROUP_DELETE, xid);
                    fx.events.extend(
                        removed
                            .iter()
                            .filter_map(|rule| flow_removed(rule, RR_GROUP_DELETE, now_ms)),
                    )
                }
                Err(e) => fx.error(xid, e, head),
            },
            Message::MeterMod(mm) => {
                if mm.command != MeterModCommand::Delete && mm.bands.is_empty() {
                    return fx.error(xid, OfpError::BadBand, head);
                }
                match self.ofproto.meter_mod(&mm, now_ms) {
                    Ok(removed) => {
                        fx.removed(&removed, RR_METER_DELETE, xid);
                        fx.events.extend(
                            removed
                                .iter()
                                .filter_map(|rule| flow_removed(rule, RR_METER_DELETE, now_ms)),
                        );
                        fx.ops.push(match mm.command {
                            MeterModCommand::Delete => Op::DelMeter { id: mm.meter_id },
                            _ => Op::SetMeter {
                                id: mm.meter_id,
                                config: dp_meter_config(mm.flags, &mm.bands),
                            },
                        });
                    }
                    Err(e) => fx.error(xid, e, head),
                }
            }
            Message::PortMod(pm) => {
                let before = self.ofproto.port(pm.port_no).map(|p| p.config);
                match self.ofproto.port_mod(&pm) {
                    Ok(info) => {
                        if before.is_some_and(|b| (b ^ info.config) & PC_PORT_DOWN != 0) {
                            fx.ops.push(Op::SetAdminState {
                                port: info.name.clone(),
                                up: info.config & PC_PORT_DOWN == 0,
                            });
                        }
                        fx.events
                            .extend(port_status(self.ofproto, PR_MODIFY, pm.port_no));
                    }
                    Err(e) => fx.error(xid, e, head),
                }
            }
            Message::TableMod { table_id, config } => {
                if table_id.0 >= TableId::N_TABLES && table_id != TableId::ALL {
                    fx.error(xid, OfpError::TableModBadTable, head);
                } else if config & !TABLE_CONFIG_DEPRECATED_MASK != 0 {
                    fx.error(xid, OfpError::TableModBadConfig, head);
                }
            }
            Message::PacketOut(po) => self.packet_out(xid, po, head, now_ms, fx),
            Message::MultipartRequest(req) => self.multipart(xid, req, head, now_ms, fx),
            Message::BarrierRequest => fx.answers.push(Answer::Barrier(xid)),
            // Only OpenFlow 1.0 sessions send it here (their reply lists the
            // ports; see ofconn::classify).
            Message::FeaturesRequest => {
                fx.reply(xid, Message::FeaturesReply(self.ofproto.features()))
            }
            Message::QueueGetConfigRequest { port } => {
                fx.reply(xid, Message::QueueGetConfigReply { port })
            }
            _ => fx.error(xid, OfpError::BadType, head),
        }
    }

    /// Commits a bundle: its messages (each with the first bytes of the
    /// BUNDLE_ADD_MESSAGE that carried it) are applied in order as one
    /// change, or not at all. On the first message that fails, every change
    /// before it is undone (the tables are restored from a clone taken
    /// first, which shares everything the bundle does not touch), that
    /// message's error is sent referring to its BUNDLE_ADD_MESSAGE, and the
    /// commit fails with OFPBFC_MSG_FAILED; no effect of the bundle (packet
    /// out, port change, FLOW_REMOVED) escapes. On success the effects
    /// follow in order and the commit is answered with COMMIT_REPLY. OVS:
    /// `do_bundle_commit()`, which also reverts on failure whatever the
    /// ATOMIC flag says.
    pub fn commit_bundle(
        &mut self,
        commit: &BundleCommit,
        msgs: Vec<(OfpMsg, Vec<u8>)>,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let saved = self.ofproto.clone();
        let mut scratch = Effects {
            monitored: fx.monitored,
            ..Effects::default()
        };
        for (msg, head) in msgs {
            let before = scratch.answers.len();
            self.handle(msg, &head, now_ms, &mut scratch);
            let failed = scratch
                .answers
                .drain(before..)
                .find(|a| matches!(a, Answer::Reply(OfReply::Error { .. })));
            if let Some(error) = failed {
                *self.ofproto = saved;
                fx.answers.push(error);
                fx.error(commit.xid, OfpError::BundleMsgFailed, &commit.head);
                return;
            }
        }
        fx.events.extend(scratch.events);
        fx.flow_changes.extend(scratch.flow_changes);
        fx.ops.extend(scratch.ops);
        fx.free_later.extend(scratch.free_later);
        fx.reply(
            commit.xid,
            Message::BundleControl(BundleCtrl {
                bundle_id: commit.bundle_id,
                ctrl_type: BundleCtrlType::CommitReply,
                flags: 0,
            }),
        );
    }

    /// Rule timeouts (FLOW_REMOVED with IDLE/HARD_TIMEOUT) and MAC aging;
    /// true when translations may have changed (publish due).
    pub fn handle_timeout(&mut self, now_ms: u64, fx: &mut Effects) -> bool {
        let expired = self.ofproto.expire(now_ms);
        if fx.monitored {
            for (rule, reason) in &expired {
                fx.removed(std::slice::from_ref(rule), *reason, 0);
            }
        }
        fx.events.extend(
            expired
                .iter()
                .filter_map(|(rule, reason)| flow_removed(rule, *reason, now_ms)),
        );
        let aged = self.view.mac.expire(now_ms) > 0;
        aged || !expired.is_empty()
    }

    fn multipart(
        &mut self,
        xid: u32,
        req: MultipartRequest,
        head: &[u8],
        now: u64,
        fx: &mut Effects,
    ) {
        let of = &*self.ofproto;
        let body = match req.body {
            MpRequestBody::Desc => Ok(MpReplyBody::Desc(of.desc())),
            MpRequestBody::Flow(r) => {
                match of.flow_stats_rules(&r) {
                    // Encoded by the session, off the bridge's critical path.
                    Ok(rules) => {
                        fx.answers
                            .push(Answer::Reply(OfReply::FlowStats(FlowStatsJob::new(
                                xid, now, rules,
                            ))))
                    }
                    Err(e) => fx.error(xid, e, head),
                }
                return;
            }
            MpRequestBody::Aggregate(r) => of.aggregate_stats(&r).map(MpReplyBody::Aggregate),
            MpRequestBody::Table => Ok(MpReplyBody::Table(of.table_stats())),
            MpRequestBody::PortStats(p) => self.port_stats(p).map(MpReplyBody::PortStats),
            MpRequestBody::Queue { .. } => Ok(MpReplyBody::Queue),
            MpRequestBody::Group(g) => Ok(MpReplyBody::Group(of.group_stats(g, now))),
            MpRequestBody::GroupDesc => Ok(MpReplyBody::GroupDesc(of.group_descs())),
            MpRequestBody::GroupFeatures => Ok(MpReplyBody::GroupFeatures(of.group_features())),
            MpRequestBody::Meter(m) => Ok(MpReplyBody::Meter(of.meter_stats(m, now))),
            MpRequestBody::MeterConfig(m) => Ok(MpReplyBody::MeterConfig(of.meter_configs(m))),
            MpRequestBody::MeterFeatures => Ok(MpReplyBody::MeterFeatures(of.meter_features())),
            MpRequestBody::TableFeatures(v) if v.is_empty() => {
                Ok(MpReplyBody::TableFeatures(of.table_features()))
            }
            MpRequestBody::TableFeatures(_) => Err(OfpError::TableFeaturesEperm),
            MpRequestBody::PortDesc => Ok(MpReplyBody::PortDesc(of.port_descs())),
            MpRequestBody::Experimenter { .. } => Err(OfpError::BadExperimenter),
            MpRequestBody::FlowMonitor(reqs) => {
                // The connection registered (or refused) the monitors; the
                // tables answer with what they cover now, at a version that
                // later changes are stamped beyond.
                let version = self.publish();
                let updates = initial_updates(self.ofproto, &reqs);
                fx.answers.push(Answer::Reply(OfReply::FlowMonitor {
                    xid,
                    version,
                    ids: reqs.iter().map(|r| r.monitor_id).collect(),
                    updates,
                }));
                return;
            }
        };
        match body {
            Ok(b) => fx.reply(
                xid,
                Message::MultipartReply(MultipartReply { flags: 0, body: b }),
            ),
            Err(e) => fx.error(xid, e, head),
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
                let s = (self.port_counters)(port_no).unwrap_or_default().openflow();
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

    fn packet_out(&mut self, xid: u32, po: PacketOut, head: &[u8], now_ms: u64, fx: &mut Effects) {
        if po.buffer_id != NO_BUFFER {
            return fx.error(xid, OfpError::BufferUnknown, head);
        }
        let ip = po.in_port;
        if !packet_out_in_port_ok(ip) {
            return fx.error(xid, OfpError::BadRequestPort, head);
        }
        for a in &po.actions {
            match a {
                Action::Output { port, .. } if !packet_out_port_ok(*port) => {
                    return fx.error(xid, OfpError::BadOutPort, head);
                }
                Action::Group(g) if !self.ofproto.group_exists(*g) => {
                    return fx.error(xid, OfpError::BadOutGroup, head);
                }
                _ => {}
            }
        }
        let key = extract(&po.data, ip).unwrap_or_else(|_| {
            // A frame too short to parse still goes out as raw bytes.
            let mut k = FlowKey::default();
            k.set(Field::InPort, ip.0 as u128);
            k
        });
        // The actions get a FLOW_MOD's checks, the packet standing in for the
        // match (set-field prerequisites, MPLS/VLAN ethertype rules, meters).
        if let Err(e) = self.ofproto.validate_packet_out(&key, &po.actions) {
            return fx.error(xid, e, head);
        }
        self.publish();
        let x = self.view.translate_actions(
            &key,
            &po.actions,
            &XlateOptions {
                may_learn: false,
                now_ms,
                account: true,
                invalid_ttl_to_controller: false,
            },
        );
        if !x.actions.is_empty() {
            fx.ops.push(Op::Execute {
                xid,
                packet: po.data,
                in_port: ip,
                actions: x.actions,
            });
        }
    }
}

/// When a BARRIER_REPLY may go out (OF1.3.5 §6.2: every message before the
/// barrier must be processed first). Processing a flow-mod here includes the
/// fast path: no megaflow translated before it may forward a packet once the
/// barrier is answered, so a barrier waits for a revalidation round unless
/// no megaflow can be stale.
#[derive(Debug, Default)]
pub struct Barriers {
    /// Newest tables version a barrier has been answered for: no megaflow
    /// older than it can forward any more.
    acked_version: u64,
}

/// What to do with the barriers of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarrierPlan {
    /// The batch has no barrier.
    None,
    /// Answer now: no megaflow can be stale.
    AnswerNow,
    /// Answer after a revalidation round that starts after `version` was
    /// published has finished; then call [`Barriers::released`].
    WaitFor(u64),
}

impl Barriers {
    /// Plans the barriers of a batch after which `version` is published;
    /// `flows_may_exist` is false only when the datapath has no megaflow and
    /// none is being installed.
    pub fn plan(&mut self, has_barrier: bool, version: u64, flows_may_exist: bool) -> BarrierPlan {
        if !has_barrier {
            return BarrierPlan::None;
        }
        if version > self.acked_version && flows_may_exist {
            BarrierPlan::WaitFor(version)
        } else {
            self.acked_version = self.acked_version.max(version);
            BarrierPlan::AnswerNow
        }
    }

    /// A round covering `version` finished: later barriers at that version
    /// need no round.
    pub fn released(&mut self, version: u64) {
        self.acked_version = self.acked_version.max(version);
    }
}

#[cfg(test)]
mod tests;
