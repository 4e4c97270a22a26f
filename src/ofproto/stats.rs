//! Multipart reply builders: what the switch reports about its tables, ports,
//! groups and meters, computed from the owner's state (Bridge actor).
//!
//! Features replies describe what translation really implements; when a feature is
//! added to [`super::xlate`] or [`super::validate`], the lists here change with it.

use super::rule::Rule;
use super::{Ofproto, MAX_GROUPS, MAX_METERS, MAX_METER_BANDS, N_TABLES};
use crate::openflow::codec::{FlowStatsRef, MultipartWriter};
use crate::openflow::error::OfpError;
use crate::openflow::message::SwitchFeatures;
use crate::openflow::message::{
    AggregateStats, DescStats, FlowStats, FlowStatsRequest, GroupDesc, GroupFeatures, GroupStats,
    MeterConfig, MeterFeatures, MeterStats, PortDesc, TableFeatureProp, TableFeatures, TableStats,
    MF_BURST, MF_KBPS, MF_PKTPS, MF_STATS,
};
use crate::openflow::oxm::{OxmId, OXM_CLASS_BASIC};
use crate::openflow::Version;
use crate::types::{GroupId, MeterId, TableId};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// OpenFlow 1.3 numbers the features replies name (OF1.3.5 §7.2.4, §7.2.5,
/// §7.3.5.5, §7.3.5.8, §7.3.5.11, §7.3.5.13, `openflow-1.3.h`).
pub mod ofp {
    /// OFPAT_OUTPUT.
    pub const AT_OUTPUT: u16 = 0;
    /// OFPAT_COPY_TTL_OUT.
    pub const AT_COPY_TTL_OUT: u16 = 11;
    /// OFPAT_COPY_TTL_IN.
    pub const AT_COPY_TTL_IN: u16 = 12;
    /// OFPAT_SET_MPLS_TTL.
    pub const AT_SET_MPLS_TTL: u16 = 15;
    /// OFPAT_DEC_MPLS_TTL.
    pub const AT_DEC_MPLS_TTL: u16 = 16;
    /// OFPAT_PUSH_VLAN.
    pub const AT_PUSH_VLAN: u16 = 17;
    /// OFPAT_POP_VLAN.
    pub const AT_POP_VLAN: u16 = 18;
    /// OFPAT_PUSH_MPLS.
    pub const AT_PUSH_MPLS: u16 = 19;
    /// OFPAT_POP_MPLS.
    pub const AT_POP_MPLS: u16 = 20;
    /// OFPAT_SET_QUEUE.
    pub const AT_SET_QUEUE: u16 = 21;
    /// OFPAT_GROUP.
    pub const AT_GROUP: u16 = 22;
    /// OFPAT_SET_NW_TTL.
    pub const AT_SET_NW_TTL: u16 = 23;
    /// OFPAT_DEC_NW_TTL.
    pub const AT_DEC_NW_TTL: u16 = 24;
    /// OFPAT_SET_FIELD.
    pub const AT_SET_FIELD: u16 = 25;
    /// OFPAT_PUSH_PBB.
    pub const AT_PUSH_PBB: u16 = 26;
    /// OFPAT_POP_PBB.
    pub const AT_POP_PBB: u16 = 27;

    /// OFPIT_GOTO_TABLE.
    pub const IT_GOTO_TABLE: u16 = 1;
    /// OFPIT_WRITE_METADATA.
    pub const IT_WRITE_METADATA: u16 = 2;
    /// OFPIT_WRITE_ACTIONS.
    pub const IT_WRITE_ACTIONS: u16 = 3;
    /// OFPIT_APPLY_ACTIONS.
    pub const IT_APPLY_ACTIONS: u16 = 4;
    /// OFPIT_CLEAR_ACTIONS.
    pub const IT_CLEAR_ACTIONS: u16 = 5;
    /// OFPIT_METER.
    pub const IT_METER: u16 = 6;

    /// Bitmap of OFPGT_ALL, SELECT, INDIRECT and FF (types 0..=3).
    pub const GROUP_TYPES_ALL_FOUR: u32 = 0b1111;
    /// OFPGFC_SELECT_WEIGHT.
    pub const GFC_SELECT_WEIGHT: u32 = 1 << 0;
    /// OFPGFC_SELECT_LIVENESS.
    pub const GFC_SELECT_LIVENESS: u32 = 1 << 1;
    /// OFPGFC_CHAINING.
    pub const GFC_CHAINING: u32 = 1 << 2;
    /// OFPGFC_CHAINING_CHECKS.
    pub const GFC_CHAINING_CHECKS: u32 = 1 << 3;

    /// OFPMBT_DROP.
    pub const MBT_DROP: u32 = 1;
    /// OFPMBT_DSCP_REMARK.
    pub const MBT_DSCP_REMARK: u32 = 2;

    /// OFPTFPT_WRITE_ACTIONS (its _MISS is the next number).
    pub const TFPT_WRITE_ACTIONS: u16 = 4;
    /// OFPTFPT_APPLY_ACTIONS.
    pub const TFPT_APPLY_ACTIONS: u16 = 6;
    /// OFPTFPT_MATCH.
    pub const TFPT_MATCH: u16 = 8;
    /// OFPTFPT_WILDCARDS.
    pub const TFPT_WILDCARDS: u16 = 10;
    /// OFPTFPT_WRITE_SETFIELD.
    pub const TFPT_WRITE_SETFIELD: u16 = 12;
    /// OFPTFPT_APPLY_SETFIELD.
    pub const TFPT_APPLY_SETFIELD: u16 = 14;

    /// OFPPF_10MB_FD.
    pub const PF_10MB_FD: u32 = 1 << 1;
    /// OFPPF_100MB_FD.
    pub const PF_100MB_FD: u32 = 1 << 3;
    /// OFPPF_1GB_FD.
    pub const PF_1GB_FD: u32 = 1 << 5;
    /// OFPPF_10GB_FD.
    pub const PF_10GB_FD: u32 = 1 << 6;
    /// OFPPF_40GB_FD.
    pub const PF_40GB_FD: u32 = 1 << 7;
    /// OFPPF_100GB_FD.
    pub const PF_100GB_FD: u32 = 1 << 8;
    /// OFPPF_1TB_FD.
    pub const PF_1TB_FD: u32 = 1 << 9;
    /// OFPPF_OTHER.
    pub const PF_OTHER: u32 = 1 << 10;
}

/// OFPAT_* types translation implements (every OpenFlow 1.3 action).
pub const SUPPORTED_ACTIONS: [u16; 16] = [
    ofp::AT_OUTPUT,
    ofp::AT_COPY_TTL_OUT,
    ofp::AT_COPY_TTL_IN,
    ofp::AT_SET_MPLS_TTL,
    ofp::AT_DEC_MPLS_TTL,
    ofp::AT_PUSH_VLAN,
    ofp::AT_POP_VLAN,
    ofp::AT_PUSH_MPLS,
    ofp::AT_POP_MPLS,
    ofp::AT_SET_QUEUE,
    ofp::AT_GROUP,
    ofp::AT_SET_NW_TTL,
    ofp::AT_DEC_NW_TTL,
    ofp::AT_SET_FIELD,
    ofp::AT_PUSH_PBB,
    ofp::AT_POP_PBB,
];
/// OFPIT_* types: goto, write-metadata, write-actions, apply-actions, clear, meter.
pub const SUPPORTED_INSTRUCTIONS: [u16; 6] = [
    ofp::IT_GOTO_TABLE,
    ofp::IT_WRITE_METADATA,
    ofp::IT_WRITE_ACTIONS,
    ofp::IT_APPLY_ACTIONS,
    ofp::IT_CLEAR_ACTIONS,
    ofp::IT_METER,
];
/// Rules one table accepts, as TABLE_FEATURES reports it (the classifier has
/// no hard limit; this is what we test and size for).
pub const TABLE_MAX_ENTRIES: u32 = 1_000_000;

fn oxm_header(id: OxmId, has_mask: bool) -> u32 {
    let len = id.wire_len() as u32 * if has_mask { 2 } else { 1 };
    ((OXM_CLASS_BASIC as u32) << 16) | ((id as u32) << 9) | ((has_mask as u32) << 8) | len
}

/// Fields set-field may write (see `validate::set_field_ok`).
fn writable(id: OxmId) -> bool {
    super::validate::set_field_writable(id)
}

fn speed_features(kbps: u32) -> u32 {
    match kbps {
        0 => 0,
        10_000 => ofp::PF_10MB_FD,
        100_000 => ofp::PF_100MB_FD,
        1_000_000 => ofp::PF_1GB_FD,
        10_000_000 => ofp::PF_10GB_FD,
        40_000_000 => ofp::PF_40GB_FD,
        100_000_000 => ofp::PF_100GB_FD,
        1_000_000_000 => ofp::PF_1TB_FD,
        _ => ofp::PF_OTHER,
    }
}

fn dur(created_ms: u64, now_ms: u64) -> (u32, u32) {
    let d = now_ms.saturating_sub(created_ms);
    ((d / 1000) as u32, ((d % 1000) * 1_000_000) as u32)
}

impl Ofproto {
    /// OFPMP_FLOW and OFPMP_AGGREGATE: the rules selected by the request
    /// (non-strict match, cookie, out_port and out_group filters); a flow dump
    /// hands them to a [`FlowStatsJob`].
    pub fn flow_stats_rules(&self, req: &FlowStatsRequest) -> Result<Vec<Arc<Rule>>, OfpError> {
        if req.table_id != TableId::ALL && req.table_id.0 >= TableId::N_TABLES {
            return Err(OfpError::BadRequestTableId);
        }
        let (value, mask) = super::match_::match_to_key(&req.match_)?;
        Ok(self.select_rules(&super::RuleFilter {
            table_id: req.table_id,
            strict: None,
            value,
            mask,
            cookie: req.cookie,
            cookie_mask: req.cookie_mask,
            out_port: req.out_port,
            out_group: req.out_group,
        }))
    }

    /// OFPMP_FLOW: every rule selected by the request (non-strict match, cookie,
    /// out_port and out_group filters). Linear in the number of rules.
    pub fn flow_stats(
        &self,
        req: &FlowStatsRequest,
        now_ms: u64,
    ) -> Result<Vec<FlowStats>, OfpError> {
        let rules = self.flow_stats_rules(req)?;
        Ok(rules
            .iter()
            .map(|r| {
                let (ds, dn) = r.duration(now_ms);
                let (p, b) = r.stats();
                FlowStats {
                    table_id: r.table_id,
                    duration_sec: ds,
                    duration_nsec: dn,
                    priority: r.priority,
                    idle_timeout: r.idle_timeout,
                    hard_timeout: r.hard_timeout,
                    flags: r.flags,
                    cookie: r.cookie,
                    packet_count: p,
                    byte_count: b,
                    match_: r.match_(),
                    instructions: r.instructions.to_vec(),
                }
            })
            .collect())
    }

    /// OFPMP_AGGREGATE.
    pub fn aggregate_stats(&self, req: &FlowStatsRequest) -> Result<AggregateStats, OfpError> {
        let rules = self.flow_stats_rules(req)?;
        let mut a = AggregateStats {
            packet_count: 0,
            byte_count: 0,
            flow_count: rules.len() as u32,
        };
        for r in &rules {
            let (p, b) = r.stats();
            a.packet_count += p;
            a.byte_count += b;
        }
        Ok(a)
    }

    /// OFPMP_TABLE: every table, including empty ones (as OVS).
    pub fn table_stats(&self) -> Vec<TableStats> {
        (0..N_TABLES)
            .map(|i| TableStats {
                table_id: TableId(i as u8),
                active_count: self.tables[i].len() as u32,
                lookup_count: self.counters[i].lookups.load(Ordering::Relaxed),
                matched_count: self.counters[i].matched.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// FEATURES_REPLY for an OpenFlow 1.0 peer, whose reply lists the ports
    /// (later versions get it from the connection and OFPMP_PORT_DESC).
    pub fn features(&self) -> SwitchFeatures {
        SwitchFeatures {
            datapath_id: self.dpid,
            n_buffers: 0,
            n_tables: TableId::N_TABLES,
            auxiliary_id: 0,
            capabilities: super::CAPABILITIES,
            ports: self.port_descs(),
        }
    }

    /// OFPMP_PORT_DESC.
    pub fn port_descs(&self) -> Vec<PortDesc> {
        self.ports
            .values()
            .map(|p| PortDesc {
                port_no: p.port_no,
                hw_addr: p.hw_addr,
                name: p.name.clone(),
                config: p.config,
                state: p.state,
                curr: speed_features(p.curr_speed),
                advertised: 0,
                supported: speed_features(p.max_speed),
                peer: 0,
                curr_speed: p.curr_speed,
                max_speed: p.max_speed,
            })
            .collect()
    }

    /// The PortDesc of one port (for PORT_STATUS).
    pub fn port_desc(&self, port: crate::types::PortNo) -> Option<PortDesc> {
        self.port_descs().into_iter().find(|d| d.port_no == port)
    }

    /// OFPMP_GROUP for one group or ALL (unknown groups give an empty reply).
    pub fn group_stats(&self, id: GroupId, now_ms: u64) -> Vec<GroupStats> {
        let mut v: Vec<GroupStats> = self
            .groups
            .values()
            .filter(|g| id == GroupId::ALL || g.id == id)
            .map(|g| {
                let (ds, dn) = dur(g.created_ms, now_ms);
                GroupStats {
                    group_id: g.id,
                    ref_count: self.group_refs.get(&g.id).copied().unwrap_or(0),
                    packet_count: g.counters.packets.load(Ordering::Relaxed),
                    byte_count: g.counters.bytes.load(Ordering::Relaxed),
                    duration_sec: ds,
                    duration_nsec: dn,
                    bucket_stats: g
                        .counters
                        .buckets
                        .iter()
                        .map(|(p, b)| (p.load(Ordering::Relaxed), b.load(Ordering::Relaxed)))
                        .collect(),
                }
            })
            .collect();
        v.sort_by_key(|g| g.group_id);
        v
    }

    /// OFPMP_GROUP_DESC.
    pub fn group_descs(&self) -> Vec<GroupDesc> {
        let mut v: Vec<GroupDesc> = self
            .groups
            .values()
            .map(|g| GroupDesc {
                group_type: g.group_type,
                group_id: g.id,
                buckets: g.buckets.clone(),
            })
            .collect();
        v.sort_by_key(|g| g.group_id);
        v
    }

    /// OFPMP_GROUP_FEATURES: all four types, weights, liveness and chaining.
    pub fn group_features(&self) -> GroupFeatures {
        let actions = SUPPORTED_ACTIONS.iter().fold(0u32, |m, &a| m | (1 << a));
        GroupFeatures {
            types: ofp::GROUP_TYPES_ALL_FOUR,
            capabilities: ofp::GFC_SELECT_WEIGHT
                | ofp::GFC_SELECT_LIVENESS
                | ofp::GFC_CHAINING
                | ofp::GFC_CHAINING_CHECKS,
            max_groups: [MAX_GROUPS as u32; 4],
            actions: [actions; 4],
        }
    }

    /// OFPMP_METER for one meter or ALL.
    pub fn meter_stats(&self, id: MeterId, now_ms: u64) -> Vec<MeterStats> {
        let mut v: Vec<MeterStats> = self
            .meters
            .values()
            .filter(|m| id == MeterId::ALL || m.id == id)
            .map(|m| {
                let (ds, dn) = dur(m.created_ms, now_ms);
                MeterStats {
                    meter_id: m.id,
                    flow_count: self.meter_refs.get(&m.id).copied().unwrap_or(0),
                    packet_in_count: m.packets.load(Ordering::Relaxed),
                    byte_in_count: m.bytes.load(Ordering::Relaxed),
                    duration_sec: ds,
                    duration_nsec: dn,
                    band_stats: m
                        .band_stats
                        .iter()
                        .map(|(p, b)| (p.load(Ordering::Relaxed), b.load(Ordering::Relaxed)))
                        .collect(),
                }
            })
            .collect();
        v.sort_by_key(|m| m.meter_id);
        v
    }

    /// OFPMP_METER_CONFIG for one meter or ALL.
    pub fn meter_configs(&self, id: MeterId) -> Vec<MeterConfig> {
        let mut v: Vec<MeterConfig> = self
            .meters
            .values()
            .filter(|m| id == MeterId::ALL || m.id == id)
            .map(|m| MeterConfig {
                flags: m.flags,
                meter_id: m.id,
                bands: m.bands.clone(),
            })
            .collect();
        v.sort_by_key(|m| m.meter_id);
        v
    }

    /// OFPMP_METER_FEATURES: drop and DSCP-remark bands.
    pub fn meter_features(&self) -> MeterFeatures {
        MeterFeatures {
            max_meter: MAX_METERS as u32,
            band_types: (1 << ofp::MBT_DROP) | (1 << ofp::MBT_DSCP_REMARK),
            capabilities: (MF_KBPS | MF_PKTPS | MF_BURST | MF_STATS) as u32,
            max_bands: MAX_METER_BANDS as u8,
            max_color: 0,
        }
    }

    /// OFPMP_TABLE_FEATURES: what each table really supports.
    pub fn table_features(&self) -> Vec<TableFeatures> {
        let instr = SUPPORTED_INSTRUCTIONS.to_vec();
        let actions = SUPPORTED_ACTIONS.to_vec();
        let match_hdrs: Vec<u32> = OxmId::ALL
            .iter()
            .map(|&id| oxm_header(id, id.maskable()))
            .collect();
        let wildcard_hdrs: Vec<u32> = OxmId::ALL.iter().map(|&id| oxm_header(id, false)).collect();
        let set_hdrs: Vec<u32> = OxmId::ALL
            .iter()
            .filter(|&&id| writable(id))
            .map(|&id| oxm_header(id, false))
            .collect();
        (0..N_TABLES as u8)
            .map(|t| {
                let next: Vec<u8> = (t + 1..TableId::N_TABLES).collect();
                let mut props = Vec::new();
                for miss in [false, true] {
                    let mut ids = instr.clone();
                    if t + 1 == TableId::N_TABLES {
                        ids.retain(|&i| i != ofp::IT_GOTO_TABLE); // no goto from the last table
                    }
                    props.push(TableFeatureProp::Instructions { miss, ids });
                    props.push(TableFeatureProp::NextTables {
                        miss,
                        tables: next.clone(),
                    });
                }
                for prop_type in [
                    ofp::TFPT_WRITE_ACTIONS,
                    ofp::TFPT_WRITE_ACTIONS + 1,
                    ofp::TFPT_APPLY_ACTIONS,
                    ofp::TFPT_APPLY_ACTIONS + 1,
                ] {
                    props.push(TableFeatureProp::Actions {
                        prop_type,
                        ids: actions.clone(),
                    });
                }
                props.push(TableFeatureProp::Oxms {
                    prop_type: ofp::TFPT_MATCH,
                    oxm_headers: match_hdrs.clone(),
                });
                props.push(TableFeatureProp::Oxms {
                    prop_type: ofp::TFPT_WILDCARDS,
                    oxm_headers: wildcard_hdrs.clone(),
                });
                for prop_type in [
                    ofp::TFPT_WRITE_SETFIELD,
                    ofp::TFPT_WRITE_SETFIELD + 1,
                    ofp::TFPT_APPLY_SETFIELD,
                    ofp::TFPT_APPLY_SETFIELD + 1,
                ] {
                    props.push(TableFeatureProp::Oxms {
                        prop_type,
                        oxm_headers: set_hdrs.clone(),
                    });
                }
                TableFeatures {
                    table_id: TableId(t),
                    name: format!("table{t}"),
                    metadata_match: u64::MAX,
                    metadata_write: u64::MAX,
                    config: 0,
                    max_entries: self.table_max_entries,
                    properties: props,
                }
            })
            .collect()
    }

    /// OFPMP_DESC.
    pub fn desc(&self) -> DescStats {
        DescStats {
            mfr_desc: "rvswitchd developers".to_string(),
            hw_desc: "rvswitchd".to_string(),
            sw_desc: env!("CARGO_PKG_VERSION").to_string(),
            serial_num: "None".to_string(),
            dp_desc: self.dp_desc.clone(),
        }
    }
}

/// An OFPMP_FLOW reply to be encoded: the selected rules (shared, so the
/// Bridge is free as soon as it has picked them) and the request's time.
/// Encoding reads each rule's counters when it gets to it and writes straight
/// from the rule (match bytes copied, instructions encoded) into multipart
/// messages of at most 64 KB, a few at a time, so a session can send the first
/// messages while later ones are still being encoded.
#[derive(Debug)]
pub struct FlowStatsJob {
    xid: u32,
    rules: std::vec::IntoIter<Arc<Rule>>,
    now_ms: u64,
    /// Created by the first chunk, in the version the session asks for
    /// (the bridge that collects the rules does not know it); `done` once
    /// finished.
    w: Option<MultipartWriter>,
    done: bool,
}

impl FlowStatsJob {
    /// A job answering request `xid` with `rules`, ages computed at `now_ms`.
    pub fn new(xid: u32, now_ms: u64, rules: Vec<Arc<Rule>>) -> FlowStatsJob {
        FlowStatsJob {
            xid,
            rules: rules.into_iter(),
            now_ms,
            w: None,
            done: false,
        }
    }

    /// Number of rules not yet encoded.
    pub fn remaining(&self) -> usize {
        self.rules.len()
    }

    /// Encodes until `min_msgs` messages are complete or every rule is done and
    /// returns those messages; an empty vector means the job is finished. A rule
    /// whose entry cannot fit in a message (impossible for a rule that came in
    /// a FLOW_MOD, kept as a guard) is left out and logged.
    pub fn next_chunk(&mut self, version: Version, min_msgs: usize) -> Vec<Vec<u8>> {
        if self.done {
            return Vec::new();
        }
        let xid = self.xid;
        let w = self
            .w
            .get_or_insert_with(|| MultipartWriter::flow_stats_in(version, xid));
        while w.n_ready() < min_msgs.max(1) {
            let Some(r) = self.rules.next() else {
                self.done = true;
                return self
                    .w
                    .take()
                    .map(MultipartWriter::finish)
                    .unwrap_or_default();
            };
            let (duration_sec, duration_nsec) = r.duration(self.now_ms);
            let (packet_count, byte_count) = r.stats();
            let oxm = r.match_oxm();
            let e = FlowStatsRef {
                table_id: r.table_id,
                duration_sec,
                duration_nsec,
                priority: r.priority,
                idle_timeout: r.idle_timeout,
                hard_timeout: r.hard_timeout,
                flags: r.flags,
                cookie: r.cookie,
                packet_count,
                byte_count,
                match_oxm: &oxm,
                instructions: &r.instructions,
            };
            if let Err(err) = w.push_flow_stats(&e) {
                tracing::warn!("flow stats: rule {} left out: {err}", r.id);
            }
        }
        w.take_ready()
    }

    /// Every message at once.
    pub fn encode_all(mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let c = self.next_chunk(Version::V1_3, usize::MAX);
            if c.is_empty() {
                return out;
            }
            out.extend(c);
        }
    }
}
