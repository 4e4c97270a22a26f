//! The Daemon actor: the supervisor (OVS's `vswitchd/ovs-vswitchd.c` main
//! loop and `bridge.c:bridge_reconfigure()`).
//!
//! Ownership: the Daemon owns the running [`Config`] and every other actor's
//! address and Arbiter. It applies configuration changes in OVS's order
//! (delete what is gone, add what is new, reconfigure the rest), resizes the
//! upcall handler and revalidator pools, and checks every second that its
//! actors are alive: a dead upcall handler or revalidator is restarted (the
//! revalidator's flows are purged first, since their ukeys died with it); a
//! dead bridge is reported, not restarted, because its tables cannot be
//! rebuilt. It registers the statistics sources of what it starts.
//!
//! It renders nothing: control commands (`control/commands.rs`) ask it typed
//! questions (`messages/daemon.rs`) or have it route a query to a bridge or
//! the revalidators, and format the answers themselves. Runs on the System
//! arbiter (main thread).

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

use crate::actors::bridge::{Bridge, BridgeParams, BridgeShared, LeaderLink};
use crate::actors::port::PortRegistry;
use crate::actors::revalidator::{self, RevalShared, Revalidator};
use crate::actors::upcall::{self, HandlerCounters, UpcallHandler};
use crate::config::{self, Config, ConfigDiff};
use crate::messages::bridge::{BridgeQuery, Reconfigure, SaveState, StartReport, StopBridge};
use crate::messages::daemon::*;
use crate::messages::revalidator as rv;
use crate::messages::upcall::{AttachBridge, DetachBridge, HandlerReport, SetRevalidators};
use crate::messages::Mailbox;
use crate::util::coverage::{self, c};
use crate::util::metrics::{registry, ActorMeter, MetricSink, MsgName, StatsSource};
use actix::prelude::*;
use futures_util::future::join_all;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Mailbox capacity of the Daemon.
pub const MAILBOX: usize = 64;
/// How often the supervisor checks its actors.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `revalidator/wait` waits for a round.
const WAIT_ROUND_TIMEOUT: Duration = Duration::from_secs(30);
/// "Not reported yet" for the revalidator round gauge.
const UNKNOWN: u64 = u64::MAX;

struct BridgeEntry {
    mb: Mailbox<Bridge>,
    shared: Arc<BridgeShared>,
    _arbiter: Arbiter,
    dead_reported: bool,
}

struct HandlerEntry {
    mb: Mailbox<UpcallHandler>,
    arbiter: Arbiter,
    counters: Arc<HandlerCounters>,
}

/// The supervisor: owns the running configuration and every actor it started.
pub struct Daemon {
    meter: Arc<ActorMeter>,
    cfg: Config,
    /// The start-up file (`--config`), which SIGHUP and `config/reload` read.
    startup: Option<PathBuf>,
    /// The file the running configuration was last read from.
    source: Option<PathBuf>,
    applied: Option<(SystemTime, ReloadOrigin)>,
    reloading: bool,
    bridges: BTreeMap<String, BridgeEntry>,
    handlers: Vec<HandlerEntry>,
    revalidators: Vec<(Mailbox<Revalidator>, Arbiter)>,
    reval: Arc<RevalShared>,
    /// The leader's last reported round duration, ms ([`UNKNOWN`] before).
    last_round_ms: Arc<AtomicU64>,
    leader: LeaderLink,
    ports: PortRegistry,
    next_index: u32,
    on_exit: Vec<PathBuf>,
    startup_report: ApplyReport,
}

type ReportFuture = Pin<Box<dyn Future<Output = ApplyReport>>>;

impl Daemon {
    /// A supervisor for `cfg`, read from `cfg_path` (None: built from flags).
    pub fn new(cfg: Config, cfg_path: Option<PathBuf>, ports: PortRegistry) -> Daemon {
        Daemon {
            meter: registry().meter("daemon".into(), "Daemon", None, MAILBOX),
            cfg,
            startup: cfg_path.clone(),
            source: cfg_path,
            applied: None,
            reloading: false,
            bridges: BTreeMap::new(),
            handlers: Vec::new(),
            revalidators: Vec::new(),
            reval: Arc::new(RevalShared::default()),
            last_round_ms: Arc::new(AtomicU64::new(UNKNOWN)),
            leader: LeaderLink::default(),
            ports,
            next_index: 1,
            on_exit: Vec::new(),
            startup_report: ApplyReport::default(),
        }
    }

    /// The daemon's meter.
    pub fn meter(&self) -> Arc<ActorMeter> {
        self.meter.clone()
    }

    /// Files to remove at exit (control socket, pidfile).
    pub fn remove_on_exit(&mut self, p: PathBuf) {
        self.on_exit.push(p);
    }

    fn guard<M: MsgName>(&self) -> crate::util::metrics::HandleGuard {
        self.meter.handling(M::NAME)
    }

    fn cores() -> usize {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    }

    fn start_handler(&mut self, id: usize) -> HandlerEntry {
        let counters = Arc::new(HandlerCounters::default());
        let (mb, arbiter) = upcall::start_one(id, self.reval.clone(), counters.clone());
        mb.tell(SetRevalidators(
            self.revalidators.iter().map(|(m, _)| m.inbox()).collect(),
        ));
        HandlerEntry {
            mb,
            arbiter,
            counters,
        }
    }

    fn set_revalidators(&mut self, n: usize) {
        let dp = &self.cfg.datapath;
        let cur = self.revalidators.len();
        if n > cur {
            for id in cur..n {
                self.revalidators.push(revalidator::start_one(
                    id,
                    self.reval.clone(),
                    dp.flow_limit as usize,
                    dp.max_idle_ms,
                ));
            }
        }
        let members: Vec<Mailbox<Revalidator>> = self
            .revalidators
            .iter()
            .take(n)
            .map(|(m, _)| m.clone())
            .collect();
        if let Some(leader) = members.first() {
            leader.tell(rv::SetMembers(
                members.iter().map(revalidator::member).collect(),
            ));
            *self.leader.write() = Some(leader.clone());
        }
        // Members beyond n hand their ukeys to the leader and leave.
        while self.revalidators.len() > n {
            if let Some((m, arb)) = self.revalidators.pop() {
                let to = members.first().map(|l| l.inbox());
                let id = m.meter.id.clone();
                actix::spawn(async move {
                    let _ = m.ask(rv::Exit { handover: to }).await;
                    arb.stop();
                    registry().remove(&id);
                });
            }
        }
        for h in &self.handlers {
            h.mb.tell(SetRevalidators(members.iter().map(|m| m.inbox()).collect()));
        }
    }

    fn set_handlers(&mut self, n: usize) {
        if n == self.handlers.len() {
            return;
        }
        while self.handlers.len() < n {
            let id = self.handlers.len();
            let h = self.start_handler(id);
            self.handlers.push(h);
        }
        while self.handlers.len() > n {
            if let Some(h) = self.handlers.pop() {
                registry().remove(&h.mb.meter.id);
                h.arbiter.stop();
            }
        }
        self.replumb_upcalls();
        self.register_upcall_source();
    }

    /// Re-plumbs every bridge's upcall queues onto the current handlers.
    fn replumb_upcalls(&self) {
        for b in self.bridges.values() {
            let txs = self.attach_to_handlers(&b.shared);
            b.shared.upcall_routes.store(Arc::new(txs));
        }
    }

    /// Creates one upcall queue per handler for a bridge and hands the
    /// receiving ends to the handlers; returns the sending ends.
    fn attach_to_handlers(
        &self,
        br: &Arc<BridgeShared>,
    ) -> Vec<tokio::sync::mpsc::Sender<crate::datapath::pmd::UpcallBatch>> {
        let mut txs = Vec::new();
        for h in &self.handlers {
            let (tx, rx) = tokio::sync::mpsc::channel(self.cfg.datapath.upcall_queue_batches);
            h.mb.tell(DetachBridge { index: br.index });
            h.mb.tell(AttachBridge {
                bridge: br.clone(),
                rx,
            });
            txs.push(tx);
        }
        txs
    }

    fn add_bridge(&mut self, bcfg: config::BridgeConfig) -> Result<(), String> {
        let index = self.next_index;
        self.next_index += 1;
        // Channels first (the datapath needs the senders), handlers attach after.
        let mut txs = Vec::new();
        let mut rxs = Vec::new();
        for _ in &self.handlers {
            let (tx, rx) = tokio::sync::mpsc::channel(self.cfg.datapath.upcall_queue_batches);
            txs.push(tx);
            rxs.push(rx);
        }
        let name = bcfg.name.clone();
        let (bridge, shared) = Bridge::build(BridgeParams {
            cfg: bcfg,
            index,
            upcall_txs: txs,
            upcall_queue_batches: self.cfg.datapath.upcall_queue_batches,
            n_pmd_threads: self.cfg.datapath.n_pmd_threads,
            busy_poll_us: self.cfg.datapath.busy_poll_us,
            leader: self.leader.clone(),
            port_registry: self.ports.clone(),
            state_dir: self.cfg.daemon.state_dir(),
            state_save_ms: self.cfg.daemon.state_save_ms,
        })?;
        for (h, rx) in self.handlers.iter().zip(rxs) {
            h.mb.tell(AttachBridge {
                bridge: shared.clone(),
                rx,
            });
        }
        let meter = bridge.meter();
        let arbiter = Arbiter::new();
        let addr = Bridge::start_in_arbiter(&arbiter.handle(), move |_| bridge);
        registry().add_source(
            &format!("datapath_{name}"),
            Arc::new(BridgeStats {
                shared: shared.clone(),
                reval: self.reval.clone(),
            }),
        );
        self.bridges.insert(
            name,
            BridgeEntry {
                mb: Mailbox::new(addr, meter),
                shared,
                _arbiter: arbiter,
                dead_reported: false,
            },
        );
        Ok(())
    }

    fn remove_bridge(&mut self, name: &str) {
        if let Some(b) = self.bridges.remove(name) {
            for h in &self.handlers {
                h.mb.tell(DetachBridge {
                    index: b.shared.index,
                });
            }
            for (r, _) in &self.revalidators {
                r.tell(rv::ForgetBridge(b.shared.index));
            }
            registry().remove_source(&format!("datapath_{name}"));
            let mb = b.mb.clone();
            let arb = b._arbiter;
            actix::spawn(async move {
                let _ = mb.ask(StopBridge).await;
                arb.stop();
            });
        }
    }

    fn register_upcall_source(&self) {
        registry().add_source(
            "upcall",
            Arc::new(UpcallStats {
                reval: self.reval.clone(),
                handlers: self.handlers.iter().map(|h| h.counters.clone()).collect(),
                last_round_ms: self.last_round_ms.clone(),
            }),
        );
    }

    /// Starts everything for the current config. A bridge that cannot be
    /// built is left out of the running configuration (so a reload retries it)
    /// and reported.
    fn start_all(&mut self) -> ApplyReport {
        let mut report = ApplyReport::default();
        let (nh, nr) = self.cfg.datapath.thread_counts(Self::cores());
        self.set_revalidators(nr);
        self.set_handlers(nh);
        self.register_upcall_source();
        registry().add_source("openflow", Arc::new(crate::actors::connmgr::OpenflowStats));
        registry().add_source("tunnels", Arc::new(crate::actors::tunnels::TunnelStats));
        for b in self.cfg.bridge.clone() {
            let name = b.name.clone();
            match self.add_bridge(b) {
                Ok(()) => report.applied(format!("added bridge {name}")),
                Err(e) => {
                    self.cfg.bridge.retain(|x| x.name != name);
                    report.failed(format!("bridge {name}"), e);
                }
            }
        }
        report
    }

    /// Applies `d` (computed from the running config to `new`): the part the
    /// Daemon does itself goes into the returned report at once; each
    /// reconfigured bridge's own answer arrives through the futures.
    fn apply_diff(&mut self, new: Config, d: &ConfigDiff) -> (ApplyReport, Vec<ReportFuture>) {
        let mut r = ApplyReport::default();
        let mut pending: Vec<ReportFuture> = Vec::new();
        // 1. Delete what is gone (before adding: names can move between bridges).
        for name in &d.bridges_removed {
            self.remove_bridge(name);
            r.applied(format!("deleted bridge {name}"));
        }
        for bd in &d.bridges_changed {
            if let (Some(b), Some(cfg)) = (self.bridges.get(&bd.name), new.bridge(&bd.name)) {
                let mb = b.mb.clone();
                let msg = Reconfigure {
                    diff: bd.clone(),
                    cfg: cfg.clone(),
                };
                let name = bd.name.clone();
                pending.push(Box::pin(async move {
                    match mb.ask(msg).await {
                        Ok(answer) => answer.into_report(),
                        Err(e) => {
                            let mut f = ApplyReport::default();
                            f.failed(format!("bridge {name}"), format!("not reconfigured: {e}"));
                            f
                        }
                    }
                }));
                for p in &bd.ports_removed {
                    r.applied(format!("bridge {}: deleted port {p}", bd.name));
                }
                for p in &bd.ports_added {
                    r.applied(format!("bridge {}: added port {}", bd.name, p.name));
                }
                for p in &bd.ports_changed {
                    r.applied(format!("bridge {}: reconfigured port {}", bd.name, p.name));
                }
                if bd.connections_changed || bd.fail_mode_changed {
                    r.applied(format!("bridge {}: connections reconfigured", bd.name));
                }
                if bd.dpid_changed {
                    r.applied(format!("bridge {}: datapath id {}", bd.name, cfg.dpid()));
                }
                if bd.mac_changed {
                    r.applied(format!("bridge {}: MAC learning settings", bd.name));
                }
            }
        }
        let old_dp = self.cfg.datapath.clone();
        // Connection settings: new connections use them (existing ones keep
        // theirs); certificate files are re-read at the next handshake.
        if new.openflow != self.cfg.openflow || new.ssl != self.cfg.ssl {
            crate::actors::connmgr::configure(&new.openflow, &new.ssl);
            r.applied("[openflow]/[ssl] settings (for new connections)");
        }
        self.cfg = new;
        // 2. Add.
        for b in d.bridges_added.clone() {
            let name = b.name.clone();
            match self.add_bridge(b) {
                Ok(()) => {
                    r.applied(format!("added bridge {name}"));
                    // Its listeners and ports report what failed.
                    if let Some(mb) = self.bridges.get(&name).map(|b| b.mb.clone()) {
                        pending.push(Box::pin(async move {
                            match mb.ask(StartReport).await {
                                Ok(rep) => rep,
                                Err(e) => {
                                    let mut f = ApplyReport::default();
                                    f.failed(format!("bridge {name}"), format!("not started: {e}"));
                                    f
                                }
                            }
                        }));
                    }
                }
                Err(e) => {
                    // Not running, so not in the running configuration: the
                    // next reload tries again.
                    self.cfg.bridge.retain(|x| x.name != name);
                    r.failed(format!("bridge {name}"), e);
                }
            }
        }
        // 3. Reconfigure process-wide settings.
        if d.datapath_changed {
            let (nh, nr) = self.cfg.datapath.thread_counts(Self::cores());
            let (oh, or) = old_dp.thread_counts(Self::cores());
            if nr != or {
                self.set_revalidators(nr);
                r.applied(format!("revalidators: {or} -> {nr}"));
            }
            if nh != oh {
                self.set_handlers(nh);
                r.applied(format!("handlers: {oh} -> {nh}"));
            }
            if let Some(l) = self.leader.read().as_ref() {
                l.tell(rv::SetLimits {
                    flow_limit: self.cfg.datapath.flow_limit as usize,
                    max_idle_ms: self.cfg.datapath.max_idle_ms,
                });
            }
            r.applied("datapath settings updated");
        }
        if d.log_level_changed {
            match crate::daemon::logging::set_level(&self.cfg.daemon.log_level) {
                Ok(()) => r.applied(format!("log level: {}", self.cfg.daemon.log_level)),
                Err(e) => r.failed("daemon.log_level", e),
            }
        }
        r.needs_restart.extend(d.needs_restart.iter().cloned());
        (r, pending)
    }

    fn health(&mut self, ctx: &mut Context<Self>) {
        // Revalidators: a dead one loses its ukeys, so its flows are purged
        // (the datapath forgets them; traffic re-creates them) and it restarts.
        let restart: Vec<usize> = self
            .revalidators
            .iter()
            .enumerate()
            .filter(|(_, (m, _))| !m.connected())
            .map(|(i, _)| i)
            .collect();
        for i in restart {
            coverage::inc(&c::actor_died);
            coverage::inc(&c::actor_restarted);
            tracing::error!("revalidator {i} died; purging datapath flows and restarting it");
            for b in self.bridges.values() {
                for f in b.shared.dp.flows() {
                    f.kill();
                }
                b.shared.dp.flush_flows();
            }
            let dp = &self.cfg.datapath;
            let (mb, arb) = revalidator::start_one(
                i,
                self.reval.clone(),
                dp.flow_limit as usize,
                dp.max_idle_ms,
            );
            mb.meter.restarted();
            let old = std::mem::replace(&mut self.revalidators[i], (mb, arb));
            old.1.stop();
            let n = self.revalidators.len();
            self.set_revalidators(n);
        }
        let dead_handlers: Vec<usize> = self
            .handlers
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.mb.connected())
            .map(|(i, _)| i)
            .collect();
        for i in dead_handlers.iter().copied() {
            coverage::inc(&c::actor_died);
            coverage::inc(&c::actor_restarted);
            tracing::error!("upcall handler {i} died; restarting it");
            let h = self.start_handler(i);
            h.mb.meter.restarted();
            let old = std::mem::replace(&mut self.handlers[i], h);
            old.arbiter.stop();
        }
        if !dead_handlers.is_empty() {
            self.replumb_upcalls();
            self.register_upcall_source();
        }
        for (name, b) in self.bridges.iter_mut() {
            if !b.mb.connected() && !b.dead_reported {
                b.dead_reported = true;
                coverage::inc(&c::actor_died);
                let msg = format!("bridge {name} died; its tables are lost (not restarted)");
                tracing::error!("{msg}");
                b.mb.meter.set_error(msg);
            }
        }
        // The leader's round time, for /metrics (the leader keeps it only in
        // its state report).
        if let Some(l) = self.leader.read().clone() {
            let slot = self.last_round_ms.clone();
            ctx.spawn(
                async move {
                    if let Ok(r) = l.ask(rv::ReportState).await {
                        if let Some(ms) = r["last_round_ms"].as_u64() {
                            slot.store(ms, Relaxed);
                        }
                    }
                }
                .into_actor(self),
            );
        }
    }

    fn targets(&self, t: &BridgeTarget) -> Result<Vec<Mailbox<Bridge>>, String> {
        match t {
            BridgeTarget::Named(n) => self
                .bridges
                .get(n)
                .map(|b| vec![b.mb.clone()])
                .ok_or_else(|| format!("no such bridge: {n}")),
            BridgeTarget::Only => match self.bridges.values().next() {
                Some(b) if self.bridges.len() == 1 => Ok(vec![b.mb.clone()]),
                Some(_) => Err("several bridges: name one".into()),
                None => Err("no bridges".into()),
            },
            BridgeTarget::All => Ok(self.bridges.values().map(|b| b.mb.clone()).collect()),
        }
    }
}

impl Actor for Daemon {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        let report = self.start_all();
        for f in &report.failed {
            tracing::error!("start-up: {}: {}", f.what, f.error);
            self.meter.set_error(format!("{}: {}", f.what, f.error));
        }
        self.startup_report = report;
        ctx.run_interval(HEALTH_INTERVAL, |a, ctx| {
            let _g = a.meter.stream_item("HealthCheck");
            a.health(ctx);
        });
    }
}

impl Handler<Reload> for Daemon {
    type Result = ResponseActFuture<Self, Result<ApplyReport, String>>;
    fn handle(&mut self, m: Reload, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Reload>();
        coverage::inc(&c::config_reload);
        let path =
            match m.path.clone().or_else(|| self.startup.clone()) {
                Some(p) => p,
                None => return Box::pin(fut::ready(Err(
                    "the daemon was started without a config file: name one (config/reload FILE)"
                        .to_string(),
                ))),
            };
        if self.reloading {
            return Box::pin(fut::ready(Err(
                "a reload is already in progress; try again when it has finished".to_string(),
            )));
        }
        self.reloading = true;
        let origin = m.origin;
        // Reading happens off the actor's thread: a slow file system cannot
        // stall the supervisor (the file is size-capped and never a FIFO).
        let p2 = path.clone();
        let load = actix_rt::task::spawn_blocking(move || config::load(&p2));
        Box::pin(load.into_actor(self).then(move |loaded, a, _| {
            let new = match loaded {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(e.to_string()),
                Err(e) => Err(format!("reading {}: {e}", path.display())),
            };
            let new = match new {
                Ok(c) => c,
                Err(e) => {
                    a.reloading = false;
                    coverage::inc(&c::config_reload_refused);
                    tracing::error!("reload refused, running configuration unchanged: {e}");
                    return Box::pin(fut::ready(Err(format!(
                        "reload refused, running configuration unchanged: {e}"
                    ))))
                        as ResponseActFuture<Self, Result<ApplyReport, String>>;
                }
            };
            let d = ConfigDiff::between(&a.cfg, &new);
            a.source = Some(path.clone());
            a.applied = Some((SystemTime::now(), origin));
            let (report, pending) = a.apply_diff(new, &d);
            Box::pin(join_all(pending).into_actor(a).map(move |parts, a, _| {
                a.reloading = false;
                let mut report = report;
                for p in parts {
                    report.merge(p);
                }
                if report.ok() {
                    tracing::info!(
                        "configuration reloaded from {} ({origin:?}): {}",
                        path.display(),
                        if report.applied.is_empty() {
                            "unchanged".to_string()
                        } else {
                            report.applied.join("; ")
                        }
                    );
                } else {
                    coverage::inc(&c::config_reload_failed);
                    for f in &report.failed {
                        tracing::error!("reload from {}: {}: {}", path.display(), f.what, f.error);
                    }
                }
                Ok(report)
            }))
        }))
    }
}

impl Handler<ShowConfig> for Daemon {
    type Result = MessageResult<ShowConfig>;
    fn handle(&mut self, _: ShowConfig, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<ShowConfig>();
        MessageResult(ConfigView {
            cfg: self.cfg.clone(),
            source: self.source.clone(),
            startup: self.startup.clone(),
            applied: self.applied,
        })
    }
}

impl Handler<SetFlowLimit> for Daemon {
    type Result = ();
    fn handle(&mut self, m: SetFlowLimit, _: &mut Context<Self>) {
        let _g = self.guard::<SetFlowLimit>();
        self.cfg.datapath.flow_limit = u32::try_from(m.0).unwrap_or(u32::MAX);
        if let Some(l) = self.leader.read().as_ref() {
            l.tell(rv::SetLimits {
                flow_limit: m.0,
                max_idle_ms: self.cfg.datapath.max_idle_ms,
            });
        }
    }
}

impl Handler<GetInventory> for Daemon {
    type Result = MessageResult<GetInventory>;
    fn handle(&mut self, _: GetInventory, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<GetInventory>();
        let b = self.bridges.values();
        MessageResult(Inventory {
            bridges: self.bridges.len(),
            ports: self.ports.lock().len(),
            rules: b
                .clone()
                .map(|b| {
                    b.shared
                        .view
                        .snapshot
                        .load()
                        .tables
                        .iter()
                        .map(|t| t.len())
                        .sum::<usize>()
                })
                .sum(),
            datapath_flows: b.map(|b| b.shared.dp.n_flows()).sum(),
            ukeys: self.reval.n_flows.load(Relaxed),
        })
    }
}

impl Handler<BridgeCtl> for Daemon {
    type Result = ResponseFuture<Result<Vec<crate::messages::bridge::BridgeAnswer>, String>>;
    fn handle(&mut self, m: BridgeCtl, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<BridgeCtl>();
        let targets = self.targets(&m.target);
        Box::pin(async move {
            let mut out = Vec::new();
            for b in targets? {
                let text = b
                    .ask(BridgeQuery(m.query.clone()))
                    .await
                    .map_err(|e| format!("bridge unavailable: {e}"))??;
                out.push(text);
            }
            Ok(out)
        })
    }
}

impl Handler<Revalidators> for Daemon {
    type Result = ResponseFuture<Result<usize, String>>;
    fn handle(&mut self, m: Revalidators, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Revalidators>();
        let leader = self.leader.read().clone();
        let members: Vec<Mailbox<Revalidator>> =
            self.revalidators.iter().map(|(m, _)| m.clone()).collect();
        Box::pin(async move {
            let l = leader.ok_or("no revalidators")?;
            match m.0 {
                RevalCtl::Wait => {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    l.ask(rv::WaitRound(tx)).await.map_err(|e| e.to_string())?;
                    match tokio::time::timeout(WAIT_ROUND_TIMEOUT, rx).await {
                        Ok(Ok(())) => Ok(0),
                        _ => Err(format!(
                            "no revalidation round completed within {} s (paused?)",
                            WAIT_ROUND_TIMEOUT.as_secs()
                        )),
                    }
                }
                RevalCtl::Pause => {
                    l.ask(rv::Pause).await.map_err(|e| e.to_string())?;
                    Ok(0)
                }
                RevalCtl::Resume => {
                    l.ask(rv::Resume).await.map_err(|e| e.to_string())?;
                    Ok(0)
                }
                RevalCtl::Purge => {
                    let mut n = 0;
                    for m in members {
                        n += m.ask(rv::Purge).await.map_err(|e| e.to_string())?;
                    }
                    Ok(n)
                }
            }
        })
    }
}

impl Handler<GetUpcallView> for Daemon {
    type Result = ResponseFuture<Result<UpcallView, String>>;
    fn handle(&mut self, _: GetUpcallView, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<GetUpcallView>();
        let leader = self.leader.read().clone();
        let handlers: Vec<Mailbox<UpcallHandler>> =
            self.handlers.iter().map(|h| h.mb.clone()).collect();
        let bridges: Vec<(String, usize)> = self
            .bridges
            .iter()
            .map(|(n, b)| (n.clone(), b.shared.dp.n_flows()))
            .collect();
        Box::pin(async move {
            let leader = leader.ok_or("no revalidators")?;
            let report = leader
                .ask(rv::ReportState)
                .await
                .map_err(|e| format!("revalidator leader unavailable: {e}"))?;
            let mut texts = Vec::new();
            for h in handlers {
                match h.ask(HandlerReport).await {
                    Ok(t) => texts.push(t),
                    Err(e) => texts.push(format!("  handler {}: unavailable: {e}\n", h.meter.id)),
                }
            }
            Ok(UpcallView {
                leader: report,
                bridges,
                handlers: texts,
            })
        })
    }
}

impl Handler<StopActor> for Daemon {
    type Result = Result<(), String>;
    fn handle(&mut self, m: StopActor, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<StopActor>();
        let id = m.0;
        let idx = |p: &str| id.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
        if let Some(i) = idx("revalidator:").filter(|i| *i < self.revalidators.len()) {
            self.revalidators[i].0.tell(rv::Exit { handover: None });
            Ok(())
        } else if let Some(i) = idx("handler:").filter(|i| *i < self.handlers.len()) {
            self.handlers[i]
                .mb
                .tell(crate::messages::upcall::StopHandler);
            Ok(())
        } else {
            Err(format!("{id:?}: expected revalidator:N or handler:N"))
        }
    }
}

/// How long a shutdown waits for each bridge's state file.
const SAVE_WAIT: Duration = Duration::from_secs(10);

impl Handler<Shutdown> for Daemon {
    type Result = ();
    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        let _g = self.guard::<Shutdown>();
        tracing::info!("shutting down");
        crate::daemon::notify::notify("STOPPING=1\nSTATUS=shutting down");
        // Each bridge writes its state file (see `ofproto::persist`) before
        // the process ends; the tables live in the Bridge actors, not in the
        // poll threads stopped below.
        let saves: Vec<_> = self
            .bridges
            .iter()
            .map(|(name, e)| (name.clone(), e.mb.clone()))
            .collect();
        for e in self.bridges.values() {
            e.shared.dp.clone().shutdown();
        }
        for p in &self.on_exit {
            let _ = std::fs::remove_file(p);
        }
        for b in &self.cfg.bridge {
            for l in &b.listeners {
                if let Some(path) = l.strip_prefix("punix:") {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        // Let the stop messages drain, then end the process's System.
        actix::spawn(async move {
            for (name, mb) in saves {
                match tokio::time::timeout(SAVE_WAIT, mb.ask(SaveState)).await {
                    Ok(Ok(Ok(_))) => {}
                    Ok(Ok(Err(e))) => tracing::warn!("bridge {name}: state not saved: {e}"),
                    Ok(Err(e)) => tracing::warn!("bridge {name}: state not saved: {e}"),
                    Err(_) => tracing::warn!(
                        "bridge {name}: state not saved within {} s",
                        SAVE_WAIT.as_secs()
                    ),
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            System::current().stop();
        });
    }
}

impl Handler<StopForwarding> for Daemon {
    type Result = ResponseFuture<Result<Vec<String>, String>>;
    fn handle(&mut self, _: StopForwarding, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<StopForwarding>();
        // Poll threads first, then the saves: a rule a controller changes
        // meanwhile is in the file, and nothing is forwarded after the point
        // the successor takes as its start.
        for e in self.bridges.values() {
            e.shared.dp.clone().shutdown();
        }
        let saves: Vec<_> = self
            .bridges
            .iter()
            .map(|(name, e)| (name.clone(), e.mb.clone()))
            .collect();
        Box::pin(async move {
            let mut out = Vec::new();
            for (name, mb) in saves {
                out.push(
                    match tokio::time::timeout(SAVE_WAIT, mb.ask(SaveState)).await {
                        Ok(Ok(Ok(s))) => s,
                        Ok(Ok(Err(e))) => format!("bridge {name}: state not saved: {e}"),
                        Ok(Err(e)) => format!("bridge {name}: state not saved: {e}"),
                        Err(_) => format!(
                            "bridge {name}: state not saved within {} s",
                            SAVE_WAIT.as_secs()
                        ),
                    },
                );
            }
            Ok(out)
        })
    }
}

/// `/stats` `datapath_BRIDGE` and its `/metrics` families, both from one
/// typed report ([`BridgeShared::dp_report`]): the poll threads' and the
/// bridge's counter sets are walked by [`export_set`], the per-port OpenFlow
/// counters by their serialised names.
struct BridgeStats {
    shared: Arc<BridgeShared>,
    reval: Arc<RevalShared>,
}

impl StatsSource for BridgeStats {
    fn json(&self) -> serde_json::Value {
        let mut v = self.shared.dp_report().to_json();
        v["ukeys_all_bridges"] = serde_json::json!(self.reval.n_flows.load(Relaxed));
        v
    }

    fn export(&self, out: &mut dyn MetricSink) {
        use crate::util::metrics::{export_json_counters, export_set};
        let r = self.shared.dp_report();
        let name = r.bridge.as_str();
        let b = [("bridge", name)];
        out.gauge(
            "rvswitchd_datapath_megaflows",
            "Megaflows installed in the bridge's datapath.",
            &b,
            r.n_flows as f64,
        );
        out.counter(
            "rvswitchd_datapath_ops_dropped",
            "Datapath deletes and flushes not queued to a poll thread (queue full; housekeeping purges the flows).",
            &b,
            r.stats.ops_dropped,
        );
        out.counter(
            "rvswitchd_datapath_upcall_route_drops",
            "Miss batches dropped because the chosen upcall handler's queue was full.",
            &b,
            r.upcall_route_drops,
        );
        out.counter(
            "rvswitchd_datapath_meter_syncs",
            "Whole meter sets queued to poll threads that had missed a meter update.",
            &b,
            r.stats.meter_syncs,
        );
        out.gauge(
            "rvswitchd_datapath_meters_stale_threads",
            "Poll threads still waiting for a meter-set sync (their meters may differ).",
            &b,
            r.stats.meters_stale_threads as f64,
        );
        export_set(out, "rvswitchd_bridge", &b, &r.counters);
        export_set(out, "rvswitchd_bridge_state", &b, &r.state);
        for (i, t) in r.stats.threads.iter().enumerate() {
            let pmd = i.to_string();
            export_set(
                out,
                "rvswitchd_datapath_pmd",
                &[("bridge", name), ("pmd", &pmd)],
                t,
            );
        }
        for p in &r.ports {
            let ofport = p.port_no.0.to_string();
            let counters = serde_json::to_value(p.counters.openflow()).unwrap_or_default();
            export_json_counters(
                out,
                "rvswitchd_port",
                "per port",
                &[("bridge", name), ("port", &p.name), ("ofport", &ofport)],
                &counters,
            );
        }
    }
}

/// `/stats` `upcall` (flow counts and limit, rounds, per-handler counters)
/// and its `/metrics` families.
struct UpcallStats {
    reval: Arc<RevalShared>,
    handlers: Vec<Arc<HandlerCounters>>,
    last_round_ms: Arc<AtomicU64>,
}

impl UpcallStats {
    fn handler_json(c: &HandlerCounters) -> serde_json::Value {
        serde_json::json!({
            "upcalls": c.upcalls.load(Relaxed),
            "misses": c.misses.load(Relaxed),
            "actions": c.actions.load(Relaxed),
            "installed": c.installed.load(Relaxed),
            "over_limit": c.over_limit.load(Relaxed),
            "duplicates": c.duplicates.load(Relaxed),
            "slow_path": c.slow_path.load(Relaxed),
            "packet_ins": c.packet_ins.load(Relaxed),
            "packet_ins_dropped": c.packet_ins_dropped.load(Relaxed),
            "dp_busy": c.dp_busy.load(Relaxed),
            "raced": c.raced.load(Relaxed),
        })
    }
}

impl StatsSource for UpcallStats {
    fn json(&self) -> serde_json::Value {
        let last = self.last_round_ms.load(Relaxed);
        serde_json::json!({
            "flows": self.reval.n_flows.load(Relaxed),
            "flow_limit": self.reval.flow_limit.load(Relaxed),
            "rounds": self.reval.rounds.load(Relaxed),
            "last_round_ms": (last != UNKNOWN).then_some(last),
            "handlers": self.handlers.iter().enumerate().map(|(i, c)| {
                let mut v = Self::handler_json(c);
                v["id"] = serde_json::json!(i.to_string());
                v
            }).collect::<Vec<_>>(),
        })
    }

    fn export(&self, out: &mut dyn MetricSink) {
        out.gauge(
            "rvswitchd_upcall_flows",
            "Datapath flows the revalidators track (all bridges).",
            &[],
            self.reval.n_flows.load(Relaxed) as f64,
        );
        out.gauge(
            "rvswitchd_upcall_flow_limit",
            "Current adaptive flow limit (OVS flow-limit; lowered when rounds are slow).",
            &[],
            self.reval.flow_limit.load(Relaxed) as f64,
        );
        out.counter(
            "rvswitchd_revalidator_rounds",
            "Revalidation rounds completed.",
            &[],
            self.reval.rounds.load(Relaxed),
        );
        out.histogram(
            "rvswitchd_revalidator_round_seconds",
            "Duration of each revalidation round (leader's clock, ms resolution).",
            &[],
            &self.reval.round_time.snapshot(),
        );
        let last = self.last_round_ms.load(Relaxed);
        if last != UNKNOWN {
            out.gauge(
                "rvswitchd_revalidator_last_round_seconds",
                "Duration of the last revalidation round the leader reported (sampled every second).",
                &[],
                last as f64 / 1000.0,
            );
        }
        for (i, c) in self.handlers.iter().enumerate() {
            let id = i.to_string();
            crate::util::metrics::export_json_counters(
                out,
                "rvswitchd_upcall_handler",
                "per upcall handler",
                &[("handler", &id)],
                &Self::handler_json(c),
            );
        }
    }
}
