//! One connection's flow monitors (OVS `ofconn->monitors`,
//! `monitor_paused`, `ofmonitor_flush()`/`ofmonitor_resume()`): the set of
//! monitors, which rule changes they report and how, and the pause/resume
//! bookkeeping. No encoding and no queue here: the connection
//! ([`super::OfConn`]) encodes what this decides and measures its budget.
//!
//! Pause and resume, bounded: when a batch of updates does not fit in the
//! asynchronous half of the output budget (or a batch of changes never
//! reached the connection), the connection sends PAUSED and stops sending
//! updates. While paused, only removals of rules the peer may know (rule
//! ids no greater than the largest it was told about: newer rules were
//! never reported) are kept, as OVS still sends those while paused — so
//! what is kept is bounded by the rules that existed when the pause began.
//! Once the queue drains, the connection asks the bridge for the rules the
//! monitors cover now (a refresh), sends the kept removals, then every
//! covered rule (ADDED if newer than what the peer knew, else MODIFIED),
//! then RESUMED. Changes arriving during the refresh are held (a bounded
//! number of batches) and replayed after it if newer than its version;
//! beyond that bound the monitors stay paused and refresh again.
//!
//! Changes that never reach the connection (the connection manager's
//! backlog for a full mailbox overflowed, `flow_changes_lost`) pause the
//! monitors the same way; the refresh restores adds and modifications, but
//! removals in the lost batches cannot be reported.

use crate::ofproto::monitor::{
    full_update, own_in_full, report_flags, FlowChanges, Monitor, MonitorGauge, MAX_MONITORS,
};
use crate::openflow::error::OfpError;
use crate::openflow::message::{
    FlowMonitorCommand, FlowMonitorRequest, FlowUpdate, FlowUpdateEvent, FMF_INITIAL,
};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

/// Batches of changes held during a refresh before giving up on replaying
/// them (the monitors then refresh once more).
pub const MAX_HELD: usize = 64;

/// The monitors of one connection.
#[derive(Debug)]
pub struct Monitors {
    map: BTreeMap<u32, Monitor>,
    gauge: MonitorGauge,
    /// PAUSED was sent and RESUMED not yet.
    pub paused: bool,
    /// The token of the outstanding refresh batch.
    pub refresh: Option<u64>,
    /// A refresh the bridge could not take: wait for the next change.
    pub refresh_failed: bool,
    /// Removals kept while paused: `(version, update)`.
    removed: Vec<(u64, FlowUpdate)>,
    /// Changes that arrived during the refresh.
    held: Vec<Arc<FlowChanges>>,
    held_overflow: bool,
    /// The largest rule id the peer was told about.
    max_seen_id: u64,
    /// The value of `flow_changes_lost` last looked at.
    pub lost_seen: u64,
    /// A request's batch outstanding: its token and the monitors it added.
    pending: Option<(u64, Vec<u32>)>,
}

impl Monitors {
    /// No monitors, counting into the bridge's `shared` gauge.
    pub fn new(shared: Arc<AtomicUsize>) -> Monitors {
        Monitors {
            map: BTreeMap::new(),
            gauge: MonitorGauge::new(shared),
            paused: false,
            refresh: None,
            refresh_failed: false,
            removed: Vec::new(),
            held: Vec::new(),
            held_overflow: false,
            max_seen_id: 0,
            lost_seen: 0,
            pending: None,
        }
    }

    /// True when there is no monitor.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of monitors.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Forgets everything (the connection closed).
    pub fn clear(&mut self) {
        self.map.clear();
        self.gauge.set(0);
        self.removed = Vec::new();
        self.held = Vec::new();
        self.paused = false;
        self.refresh = None;
        self.pending = None;
    }

    /// Applies a monitor request's entries, all or none (OVS
    /// `handle_flow_monitor_request()`, which undoes the ADDs of a request
    /// that fails): ADD of an existing id is OFPMOFC_MONITOR_EXISTS, MODIFY or
    /// DELETE of an unknown one OFPMOFC_UNKNOWN_MONITOR, more than
    /// [`MAX_MONITORS`] OFPBRC_EPERM. Returns the ids added or replaced.
    pub fn request(&mut self, reqs: &[FlowMonitorRequest]) -> Result<Vec<u32>, OfpError> {
        let mut next = self.map.clone();
        let mut added = Vec::new();
        for r in reqs {
            let id = r.monitor_id;
            match r.command {
                FlowMonitorCommand::Add if next.contains_key(&id) => {
                    return Err(OfpError::MonitorExists)
                }
                FlowMonitorCommand::Add => {}
                FlowMonitorCommand::Modify | FlowMonitorCommand::Delete => {
                    if next.remove(&id).is_none() {
                        return Err(OfpError::MonitorUnknownMonitor);
                    }
                    if r.command == FlowMonitorCommand::Delete {
                        continue;
                    }
                }
            }
            next.insert(id, Monitor::new(r)?);
            if next.len() > MAX_MONITORS {
                return Err(OfpError::Eperm);
            }
            added.push(id);
        }
        self.map = next;
        self.gauge.set(self.map.len());
        Ok(added)
    }

    /// NXT_FLOW_MONITOR_CANCEL / ONFT_FLOW_MONITOR_CANCEL (OVS
    /// `flow_monitor_delete()`).
    pub fn cancel(&mut self, id: u32) -> Result<(), OfpError> {
        self.map
            .remove(&id)
            .map(|_| self.gauge.set(self.map.len()))
            .ok_or(OfpError::MonitorUnknownMonitor)
    }

    /// The request's batch `token` left for the bridge, for `added`.
    pub fn set_pending(&mut self, token: u64, added: Vec<u32>) {
        self.pending = Some((token, added));
    }

    /// The bridge answered batch `token` (`answered` false: it could not
    /// take it, so the monitors that request added are taken back).
    pub fn batch_done(&mut self, token: u64, answered: bool) {
        if self.pending.as_ref().is_some_and(|(t, _)| *t == token) {
            if let Some((_, added)) = self.pending.take() {
                if !answered {
                    added.iter().for_each(|id| {
                        self.map.remove(id);
                    });
                    self.gauge.set(self.map.len());
                }
            }
        }
    }

    /// The initial reply to monitors `ids` reflects `version`.
    pub fn initial(&mut self, version: u64, ids: &[u32], updates: &[(u64, FlowUpdate)]) {
        for id in ids {
            if let Some(m) = self.map.get_mut(id) {
                m.since = m.since.max(version);
            }
        }
        self.saw(updates.iter().map(|(id, _)| *id).max().unwrap_or(0));
    }

    fn saw(&mut self, rule_id: u64) {
        self.max_seen_id = self.max_seen_id.max(rule_id);
    }

    /// The updates `fc` causes for a connection whose id is `conn_id`, and
    /// the largest rule id they describe (OVS `ofmonitor_report()`): each
    /// change at most once, with the merged flags of the monitors that
    /// report it; the connection's own changes, unless a monitor asks for
    /// them in full, as one ABBREV per request.
    pub fn report(&self, fc: &FlowChanges, conn_id: u64) -> (Vec<FlowUpdate>, u64) {
        let own = conn_id != 0 && fc.conn == Some(conn_id);
        let mut out = Vec::new();
        let mut max_id = 0;
        let mut last_abbrev = None;
        for c in &fc.changes {
            let flags = report_flags(self.map.values(), c, fc.version);
            if flags == 0 {
                continue;
            }
            if own && !own_in_full(flags) {
                if last_abbrev != Some(c.xid) {
                    last_abbrev = Some(c.xid);
                    out.push(FlowUpdate::Abbrev { xid: c.xid });
                }
                max_id = max_id.max(c.rule.id);
                continue;
            }
            max_id = max_id.max(c.rule.id);
            out.push(full_update(&c.rule, c.event, c.reason, flags));
        }
        (out, max_id)
    }

    /// Updates from `report` were sent.
    pub fn sent(&mut self, max_id: u64) {
        self.saw(max_id);
    }

    /// Keeps, while paused, the removals in `fc` of rules the peer may know.
    pub fn keep_removals(&mut self, fc: &FlowChanges) {
        for c in &fc.changes {
            if c.event != FlowUpdateEvent::Removed || c.rule.id > self.max_seen_id {
                continue;
            }
            let flags = report_flags(self.map.values(), c, fc.version);
            if flags != 0 {
                self.removed
                    .push((fc.version, full_update(&c.rule, c.event, c.reason, flags)));
            }
        }
    }

    /// `fc` arrived during a refresh.
    pub fn hold(&mut self, fc: &Arc<FlowChanges>) {
        self.keep_removals(fc);
        if self.held.len() < MAX_HELD && !self.held_overflow {
            self.held.push(fc.clone());
        } else {
            self.overflow();
        }
    }

    /// Changes were lost during a refresh: it cannot be the last one.
    pub fn overflow(&mut self) {
        self.held_overflow = true;
        self.held = Vec::new();
    }

    /// The monitors as one refresh request (every monitor INITIAL).
    pub fn refresh_requests(&self) -> Vec<FlowMonitorRequest> {
        self.map
            .values()
            .map(|m| FlowMonitorRequest {
                flags: m.req.flags | FMF_INITIAL,
                command: FlowMonitorCommand::Add,
                ..m.req.clone()
            })
            .collect()
    }

    /// The refresh at `version` came back with `current`: the updates to
    /// send (kept removals, then every covered rule as ADDED or MODIFIED),
    /// and, when the monitors may resume, the changes to replay after
    /// RESUMED (`None`: stay paused and refresh again).
    pub fn resume(
        &mut self,
        version: u64,
        current: Vec<(u64, FlowUpdate)>,
    ) -> (Vec<FlowUpdate>, Option<Vec<Arc<FlowChanges>>>) {
        let (mut out, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.removed)
            .into_iter()
            .partition(|(v, _)| *v <= version);
        let mut out: Vec<FlowUpdate> = out.drain(..).map(|(_, u)| u).collect();
        let known = self.max_seen_id;
        for (id, mut u) in current {
            if let FlowUpdate::Full { event, .. } = &mut u {
                *event = if id > known {
                    FlowUpdateEvent::Added
                } else {
                    FlowUpdateEvent::Modified
                };
            }
            self.saw(id);
            out.push(u);
        }
        if self.held_overflow {
            self.held_overflow = false;
            self.held = Vec::new();
            self.removed = later;
            return (out, None);
        }
        self.paused = false;
        let held = std::mem::take(&mut self.held)
            .into_iter()
            .filter(|fc| fc.version > version)
            .collect();
        (out, Some(held))
    }
}
