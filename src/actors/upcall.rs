//! UpcallHandler actors (OVS's `ofproto-dpif-upcall.c:udpif_upcall_handler()`
//! and `handle_upcalls()`): they turn datapath misses into megaflows.
//!
//! Per batch of misses from a bridge's poll threads: translate each packet
//! through the bridge's published tables (recording every field looked at:
//! the megaflow mask), install the flow unless the datapath is over the flow
//! limit (then only execute, counted), suppress duplicates within the batch,
//! execute the packet, and hand the new ukeys to their owning revalidators by
//! message. Action upcalls (CONTROLLER) become PACKET_INs on the bridge's
//! bounded packet-in queue.
//!
//! Ownership: a handler owns nothing but its queue receivers; the tables are
//! read through each bridge's `ofproto::view::XlateView`, MAC learning takes
//! its lock once per translation. Each handler runs on its own Arbiter.

use crate::datapath::actions::UserspaceReason;
use crate::datapath::dpflow::{DpFlow, DpFlowStatsSnapshot};
use crate::datapath::flow::FlowKey;
use crate::datapath::pmd::{UpcallBatch, UpcallKind};
use crate::messages::bridge::BridgeShared;
use crate::messages::connmgr::AsyncEvent;
use crate::messages::revalidator::AdoptUkeys;
use crate::messages::upcall::*;
use crate::messages::{Inbox, Mailbox};
use crate::ofproto::rule::PC_NO_PACKET_IN;
use crate::ofproto::ukey::{RevalShared, Ukey};
use crate::ofproto::xlate::XlateOptions;
use crate::openflow::message::{PacketIn, NO_BUFFER};
use crate::openflow::oxm::{Match, OxmField};
use crate::types::{Cookie, PortNo, TableId};
use crate::util::coverage::{self, c};
use crate::util::metrics::{registry, ActorMeter, MsgName};
use crate::util::time::now_ms;
use actix::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::Arc;

/// Mailbox capacity of a handler.
pub const MAILBOX: usize = 64;

/// Unique datapath flow ids.
static NEXT_FLOW_ID: AtomicU64 = AtomicU64::new(1);

/// Handler counters, readable without messaging.
#[derive(Default, Debug)]
pub struct HandlerCounters {
    /// Upcalls handled.
    pub upcalls: AtomicU64,
    /// Misses handled.
    pub misses: AtomicU64,
    /// Action (controller) upcalls handled.
    pub actions: AtomicU64,
    /// Flows installed.
    pub installed: AtomicU64,
    /// Not installed: over the flow limit.
    pub over_limit: AtomicU64,
    /// Not installed: duplicate of one installed in the same batch.
    pub duplicates: AtomicU64,
    /// Not installed: the translation needs the slow path.
    pub slow_path: AtomicU64,
    /// Packet-ins queued.
    pub packet_ins: AtomicU64,
    /// Packet-ins dropped because the queue was full.
    pub packet_ins_dropped: AtomicU64,
    /// Datapath op queue full (flow put or execute refused).
    pub dp_busy: AtomicU64,
    /// Flows killed right after install because the tables changed meanwhile.
    pub raced: AtomicU64,
}

/// An upcall handler.
pub struct UpcallHandler {
    id: usize,
    meter: Arc<ActorMeter>,
    bridges: HashMap<u32, Arc<BridgeShared>>,
    revalidators: Vec<Inbox<AdoptUkeys>>,
    reval: Arc<RevalShared>,
    counters: Arc<HandlerCounters>,
    /// Masks of recently installed flows, most recent first: new flows share
    /// them instead of each holding its own copy (see `DpFlow::mask`).
    masks: Vec<Arc<FlowKey>>,
    /// Action lists of recently installed flows, shared the same way.
    actions: Vec<Arc<crate::datapath::actions::DpActions>>,
}

/// How many distinct recent masks (and, separately, action lists) a handler
/// shares.
const SHARE_CACHE: usize = 16;

/// A shared copy of `v` from `cache` (moved to the front), or a new one.
/// Megaflows repeat a handful of masks and action lists: 100k flows of one
/// pipeline typically have under ten of each, and sharing them saves a
/// mask (168 bytes) and an action list (about 150 bytes) per flow.
fn shared<T: PartialEq + Clone>(cache: &mut Vec<Arc<T>>, v: &T) -> Arc<T> {
    if let Some(i) = cache.iter().position(|m| **m == *v) {
        let m = cache[i].clone();
        if i > 0 {
            cache[..=i].rotate_right(1);
        }
        return m;
    }
    let m = Arc::new(v.clone());
    if cache.len() == SHARE_CACHE {
        cache.pop();
    }
    cache.insert(0, m.clone());
    m
}

impl UpcallHandler {
    /// A handler with no bridges yet.
    pub fn new(
        id: usize,
        reval: Arc<RevalShared>,
        counters: Arc<HandlerCounters>,
    ) -> UpcallHandler {
        let meter = registry().meter(format!("handler:{id}"), "UpcallHandler", None, MAILBOX);
        UpcallHandler {
            id,
            meter,
            bridges: HashMap::new(),
            revalidators: Vec::new(),
            reval,
            counters,
            masks: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// The handler's meter.
    pub fn meter(&self) -> Arc<ActorMeter> {
        self.meter.clone()
    }

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn packet_in(&self, br: &BridgeShared, key: &FlowKey, packet: Vec<u8>, r: UserspaceReason) {
        let UserspaceReason::Controller {
            reason,
            max_len,
            table_id,
            cookie,
            ..
        } = r;
        let in_port = PortNo(key.in_port());
        if let Some(p) = br.view.snapshot.load().ports.get(&in_port) {
            if p.config & PC_NO_PACKET_IN != 0 {
                return;
            }
        }
        let pin_match = packet_in_match(in_port, key);
        let pin = PacketIn {
            buffer_id: NO_BUFFER,
            total_len: packet.len().min(u16::MAX as usize) as u16,
            reason,
            table_id: TableId(table_id),
            cookie: Cookie(cookie),
            match_: pin_match,
            data: packet,
        };
        match br.packet_in_tx.try_send(AsyncEvent::PacketIn {
            pin: Arc::new(pin),
            max_len,
        }) {
            Ok(()) => {
                coverage::inc(&c::packet_in);
                self.counters.packet_ins.fetch_add(1, Relaxed);
            }
            Err(_) => {
                coverage::inc(&c::packet_in_dropped);
                self.counters.packet_ins_dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Translates one batch. Returns what to install and execute, and the new
    /// ukeys grouped by owning revalidator. Nothing is installed yet: ukeys
    /// reach their owners first (see [`finish_batch`]).
    fn prepare_batch(
        &mut self,
        br: &Arc<BridgeShared>,
        batch: UpcallBatch,
    ) -> (Vec<Prepared>, Vec<Vec<Ukey>>) {
        let n_rev = self.revalidators.len().max(1);
        let mut owned: Vec<Vec<Ukey>> = (0..n_rev).map(|_| Vec::new()).collect();
        let mut prepared = Vec::with_capacity(batch.len());
        let now = now_ms();
        let mut installed_here: Vec<(FlowKey, FlowKey)> = Vec::new();
        for up in batch {
            coverage::inc(&c::upcall_handled);
            self.counters.upcalls.fetch_add(1, Relaxed);
            let UpcallKind::Miss = up.kind else {
                if let UpcallKind::Action(reason) = up.kind {
                    self.counters.actions.fetch_add(1, Relaxed);
                    self.packet_in(br, &up.key, up.packet, reason);
                }
                continue;
            };
            self.counters.misses.fetch_add(1, Relaxed);
            // The sequence to record is stamped before translating: one read
            // after would mark a flow translated against a MAC table that
            // changed meanwhile as fresh (see `XlateView::stamp`).
            let (x, xlate_seq) = br.view.translate_stamped(
                &up.key,
                &XlateOptions {
                    may_learn: true,
                    now_ms: now,
                    account: true,
                    invalid_ttl_to_controller: false,
                },
            );
            let masked = up.key.masked(&x.wc);
            let n_flows = self.reval.n_flows.load(Relaxed);
            let limit = self.reval.flow_limit.load(Relaxed);
            let install = if x.slow != 0 {
                self.counters.slow_path.fetch_add(1, Relaxed);
                false
            } else if n_flows >= limit && limit > 0 {
                self.counters.over_limit.fetch_add(1, Relaxed);
                coverage::inc(&c::upcall_flow_limit);
                false
            } else if installed_here
                .iter()
                .any(|(k, m)| *k == masked && *m == x.wc)
            {
                self.counters.duplicates.fetch_add(1, Relaxed);
                coverage::inc(&c::upcall_duplicate);
                false
            } else {
                true
            };
            // The packet being handled is credited to the rules now: the
            // datapath flow did not count it.
            for r in &x.rules {
                r.add_stats(1, up.packet.len() as u64, now);
            }
            let mut flow_to_put = None;
            if install {
                let id = NEXT_FLOW_ID.fetch_add(1, Relaxed);
                let mask = shared(&mut self.masks, &x.wc);
                let actions = shared(&mut self.actions, &x.actions);
                let flow = Arc::new(DpFlow::with_shared(id, &up.key, mask, actions, now));
                installed_here.push((masked, x.wc));
                let rules: Box<[_]> = x.rules.iter().cloned().collect();
                owned[(id as usize) % n_rev].push(Ukey {
                    ctx: br.clone(),
                    flow: flow.clone(),
                    xlate_seq,
                    rules,
                    pushed: DpFlowStatsSnapshot::default(),
                });
                flow_to_put = Some((flow, x.version));
            }
            prepared.push(Prepared {
                packet: up.packet,
                vnet: up.vnet,
                tunnel: up.tunnel,
                in_port: up.in_port,
                actions: x.actions,
                install: flow_to_put,
            });
        }
        (prepared, owned)
    }

    /// Installs the prepared flows (their ukeys are owned by now), drops any
    /// whose tables changed underneath the translation, and executes the
    /// packets. Ends the batch's "installing" mark on the bridge.
    fn finish_batch(&self, br: &BridgeShared, prepared: Vec<Prepared>) {
        for p in prepared {
            if let Some((flow, version)) = p.install {
                if br.dp.put_flow(flow.clone()).is_ok() {
                    self.counters.installed.fetch_add(1, Relaxed);
                    coverage::inc(&c::dp_flow_put);
                    // Consistency with barriers: if a new tables version was
                    // published after this translation, the flow may be stale
                    // and a barrier may already have been answered without
                    // seeing it. Kill it; the next packet is translated afresh.
                    fence(SeqCst);
                    if br.view.snapshot.load().version != version {
                        flow.kill();
                        let _ = br.dp.del_flow(flow.id);
                        self.counters.raced.fetch_add(1, Relaxed);
                    }
                } else {
                    flow.kill();
                    self.counters.dp_busy.fetch_add(1, Relaxed);
                }
            }
            if !p.actions.is_empty()
                && br
                    .dp
                    .execute(p.packet, p.vnet, p.tunnel, p.in_port, p.actions)
                    .is_err()
            {
                self.counters.dp_busy.fetch_add(1, Relaxed);
            }
        }
        br.installing.fetch_sub(1, SeqCst);
    }
}

/// The pipeline fields a PACKET_IN reports (OVS `flow_get_metadata()`, in
/// the order `nx_put_raw()` writes them): the input port, the tunnel fields
/// the packet carries (each only when non-zero, as OVS), and the metadata
/// when non-zero.
fn packet_in_match(in_port: PortNo, key: &FlowKey) -> Match {
    use crate::datapath::flow::Field;
    use crate::openflow::oxm::OxmId;
    let mut fields = vec![OxmField::in_port(in_port)];
    for (f, id) in [
        (Field::TunnelId, OxmId::TunnelId),
        (Field::TunSrc, OxmId::TunIpv4Src),
        (Field::TunDst, OxmId::TunIpv4Dst),
        (Field::Metadata, OxmId::Metadata),
    ] {
        let v = key.get(f);
        if v != 0 {
            fields.push(OxmField::exact(id, v));
        }
    }
    Match { fields }
}

/// A translated miss, waiting for its ukey to be owned before install.
struct Prepared {
    packet: Vec<u8>,
    vnet: crate::netdev::packet::VnetHdr,
    /// The received tunnel metadata, for the actions' tunnel set-fields and
    /// a tunnel port's transmit to start from.
    tunnel: crate::netdev::packet::TunnelMeta,
    in_port: PortNo,
    actions: crate::datapath::actions::DpActions,
    install: Option<(Arc<DpFlow>, u64)>,
}

impl Actor for UpcallHandler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.meter.mark_dead();
    }
}

/// A batch tagged with the bridge it came from.
pub struct TaggedBatch(pub u32, pub UpcallBatch);

impl StreamHandler<TaggedBatch> for UpcallHandler {
    fn handle(&mut self, m: TaggedBatch, ctx: &mut Context<Self>) {
        let _g = self.meter.stream_item("UpcallBatch");
        let Some(br) = self.bridges.get(&m.0).cloned() else {
            return;
        };
        // Mark the bridge as having an install in progress before reading its
        // tables: a barrier that sees no flows and no install in progress may
        // answer at once (see Bridge), and one that sees this mark waits for a
        // revalidation round.
        br.installing.fetch_add(1, SeqCst);
        fence(SeqCst);
        let (prepared, owned) = self.prepare_batch(&br, m.1);
        let revs = self.revalidators.clone();
        let hand_off: Vec<(Inbox<AdoptUkeys>, Vec<Ukey>)> = owned
            .into_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .filter_map(|(i, v)| revs.get(i).cloned().map(|r| (r, v)))
            .collect();
        if hand_off.is_empty() {
            self.finish_batch(&br, prepared);
            return;
        }
        // Ukeys reach their owner before their flows enter the datapath, so a
        // revalidation round that starts after a flow is installed always sees
        // its ukey. Waiting here also slows this handler down when the
        // revalidators fall behind; the upcall queue then absorbs or drops.
        ctx.wait(
            async move {
                for (r, v) in hand_off {
                    let _ = r.ask(AdoptUkeys(v)).await;
                }
            }
            .into_actor(self)
            .map(move |_, act, _| act.finish_batch(&br, prepared)),
        );
    }

    fn finished(&mut self, _: &mut Context<Self>) {}
}

impl Handler<AttachBridge> for UpcallHandler {
    type Result = ();
    fn handle(&mut self, m: AttachBridge, ctx: &mut Context<Self>) {
        let _g = self.guard::<AttachBridge>();
        let idx = m.bridge.index;
        self.bridges.insert(idx, m.bridge);
        let mut rx = m.rx;
        ctx.add_stream(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx).map(|o| o.map(|b| TaggedBatch(idx, b)))
        }));
    }
}

impl Handler<DetachBridge> for UpcallHandler {
    type Result = ();
    fn handle(&mut self, m: DetachBridge, _: &mut Context<Self>) {
        let _g = self.guard::<DetachBridge>();
        self.bridges.remove(&m.index);
    }
}

impl Handler<StopHandler> for UpcallHandler {
    type Result = ();
    fn handle(&mut self, _: StopHandler, ctx: &mut Context<Self>) {
        let _g = self.guard::<StopHandler>();
        ctx.stop();
    }
}

impl Handler<SetRevalidators> for UpcallHandler {
    type Result = ();
    fn handle(&mut self, m: SetRevalidators, _: &mut Context<Self>) {
        let _g = self.guard::<SetRevalidators>();
        self.revalidators = m.0;
    }
}

impl Handler<HandlerReport> for UpcallHandler {
    type Result = String;
    fn handle(&mut self, _: HandlerReport, _: &mut Context<Self>) -> String {
        let _g = self.guard::<HandlerReport>();
        let c = &self.counters;
        format!(
            "  handler {}: upcalls {} (misses {}, actions {}), installed {}, over-limit {}, duplicates {}, slow-path {}, raced {}, packet-ins {} (dropped {}), datapath busy {}\n",
            self.id,
            c.upcalls.load(Relaxed),
            c.misses.load(Relaxed),
            c.actions.load(Relaxed),
            c.installed.load(Relaxed),
            c.over_limit.load(Relaxed),
            c.duplicates.load(Relaxed),
            c.slow_path.load(Relaxed),
            c.raced.load(Relaxed),
            c.packet_ins.load(Relaxed),
            c.packet_ins_dropped.load(Relaxed),
            c.dp_busy.load(Relaxed),
        )
    }
}

/// Starts handler `id` on its own Arbiter.
pub fn start_one(
    id: usize,
    reval: Arc<RevalShared>,
    counters: Arc<HandlerCounters>,
) -> (Mailbox<UpcallHandler>, Arbiter) {
    let arb = Arbiter::new();
    let h = UpcallHandler::new(id, reval, counters);
    let meter = h.meter();
    let addr = UpcallHandler::start_in_arbiter(&arb.handle(), move |_| h);
    (Mailbox::new(addr, meter), arb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datapath::flow::Field;

    fn mask(port: u128) -> FlowKey {
        let mut m = FlowKey::default();
        m.set(Field::InPort, port);
        m
    }

    #[test]
    fn equal_masks_share_one_copy_and_the_cache_is_bounded() {
        let mut cache = Vec::new();
        let a = shared(&mut cache, &mask(1));
        let b = shared(&mut cache, &mask(1));
        assert!(Arc::ptr_eq(&a, &b));
        for i in 2..(SHARE_CACHE as u128 + 10) {
            let m = shared(&mut cache, &mask(i));
            assert_eq!(*m, mask(i));
        }
        assert_eq!(cache.len(), SHARE_CACHE);
        // The oldest fell out: asking again makes a new copy, equal in value.
        let c = shared(&mut cache, &mask(1));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, mask(1));
        // A hit (mask 20 is still cached, not at the front) moves to the front.
        let before = cache.iter().position(|m| **m == mask(20));
        assert!(matches!(before, Some(i) if i > 0));
        let hit = shared(&mut cache, &mask(20));
        assert!(Arc::ptr_eq(&cache[0], &hit));
        assert_eq!(cache.len(), SHARE_CACHE);
    }

    #[test]
    fn equal_action_lists_share_one_copy() {
        use crate::datapath::actions::DpAction;
        let mut cache = Vec::new();
        let out = |p| vec![DpAction::Output(PortNo(p))];
        let a = shared(&mut cache, &out(2));
        let b = shared(&mut cache, &out(2));
        let c = shared(&mut cache, &out(3));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!((*c).clone(), out(3));
        // A flow built from the shared list reads it back unchanged.
        let f = DpFlow::with_shared(1, &mask(1), Arc::new(mask(1)), a.clone(), 0);
        assert!(Arc::ptr_eq(&f.actions.load_full(), &a));
    }

    #[test]
    fn packet_in_reports_the_tunnel_fields_the_packet_carries() {
        use crate::openflow::oxm::OxmId;
        let mut k = FlowKey::default();
        k.set(Field::InPort, 3);
        let ids = |m: &Match| m.fields.iter().map(|f| f.id).collect::<Vec<_>>();
        assert_eq!(ids(&packet_in_match(PortNo(3), &k)), vec![OxmId::InPort]);
        k.set(Field::TunnelId, 5);
        k.set(Field::TunDst, 0x0a00_0002);
        k.set(Field::Metadata, 9);
        let m = packet_in_match(PortNo(3), &k);
        assert_eq!(
            ids(&m),
            vec![
                OxmId::InPort,
                OxmId::TunnelId,
                OxmId::TunIpv4Dst,
                OxmId::Metadata
            ]
        );
        assert_eq!(m.get(OxmId::TunnelId).map(|f| f.value), Some(5));
        assert_eq!(m.get(OxmId::TunIpv4Dst).map(|f| f.value), Some(0x0a00_0002));
    }
}
