//! The Daemon actor: the supervisor (seed 000's main loop and 002's
//! `bridge_reconfigure`).
//!
//! Ownership: the Daemon owns the running [`Config`] and every other actor's
//! address and Arbiter. It applies configuration changes in the seed's order
//! (delete what is gone, add what is new, reconfigure the rest), resizes the
//! upcall handler and revalidator pools, runs control-socket commands, and
//! checks every second that its actors are alive: a dead upcall handler or
//! revalidator is restarted (the revalidator's flows are purged first, since
//! their ukeys died with it); a dead bridge is reported, not restarted, because
//! its tables cannot be rebuilt. Runs on the System arbiter (main thread).

use crate::actors::bridge::{Bridge, BridgeParams, BridgeShared, LeaderLink};
use crate::actors::metrics::{registry, ActorMeter, MsgName};
use crate::actors::port::PortRegistry;
use crate::actors::revalidator::{self, RevalShared, Revalidator};
use crate::actors::upcall::{self, HandlerCounters, UpcallHandler};
use crate::config::{self, Config, ConfigDiff};
use crate::control::http;
use crate::messages::bridge::{BridgeQuery, Query, Reconfigure, StopBridge};
use crate::messages::daemon::*;
use crate::messages::revalidator as rv;
use crate::messages::upcall::{AttachBridge, DetachBridge, HandlerReport, SetRevalidators};
use crate::messages::Mailbox;
use crate::util::coverage::{self, c};
use actix::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Mailbox capacity of the Daemon.
pub const MAILBOX: usize = 64;

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

/// The supervisor.
pub struct Daemon {
    meter: Arc<ActorMeter>,
    cfg: Config,
    cfg_path: Option<PathBuf>,
    bridges: BTreeMap<String, BridgeEntry>,
    handlers: Vec<HandlerEntry>,
    revalidators: Vec<(Mailbox<Revalidator>, Arbiter)>,
    reval: Arc<RevalShared>,
    leader: LeaderLink,
    ports: PortRegistry,
    next_index: u32,
    on_exit: Vec<PathBuf>,
}

impl Daemon {
    /// A supervisor for `cfg` (read from `cfg_path` when reloading).
    pub fn new(cfg: Config, cfg_path: Option<PathBuf>, ports: PortRegistry) -> Daemon {
        Daemon {
            meter: registry().meter("daemon".into(), "Daemon", None, MAILBOX),
            cfg,
            cfg_path,
            bridges: BTreeMap::new(),
            handlers: Vec::new(),
            revalidators: Vec::new(),
            reval: Arc::new(RevalShared::default()),
            leader: LeaderLink::default(),
            ports,
            next_index: 1,
            on_exit: Vec::new(),
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

    fn guard<M: MsgName>(&self) -> crate::actors::metrics::HandleGuard {
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
        // Re-plumb every bridge's upcall queues onto the new set.
        let bridges: Vec<Arc<BridgeShared>> =
            self.bridges.values().map(|b| b.shared.clone()).collect();
        for br in bridges {
            let txs = self.attach_to_handlers(&br);
            br.upcall_routes.store(Arc::new(txs));
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
        let sh = shared.clone();
        let reval = self.reval.clone();
        http::add_source(
            &format!("datapath_{name}"),
            Arc::new(move || {
                let mut v = crate::control::render::dp_stats_json(&sh);
                v["ukeys_all_bridges"] = serde_json::json!(reval.n_flows.load(Relaxed));
                v
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
            http::remove_source(&format!("datapath_{name}"));
            let mb = b.mb.clone();
            let arb = b._arbiter;
            actix::spawn(async move {
                let _ = mb.ask(StopBridge).await;
                arb.stop();
            });
        }
    }

    /// Starts everything for the current config.
    fn start_all(&mut self) -> Result<(), String> {
        let (nh, nr) = self.cfg.datapath.thread_counts(Self::cores());
        self.set_revalidators(nr);
        self.set_handlers(nh);
        for b in self.cfg.bridge.clone() {
            self.add_bridge(b)?;
        }
        let reval = self.reval.clone();
        let handlers: Vec<Arc<HandlerCounters>> =
            self.handlers.iter().map(|h| h.counters.clone()).collect();
        http::add_source(
            "upcall",
            Arc::new(move || {
                serde_json::json!({
                    "flows": reval.n_flows.load(Relaxed),
                    "flow_limit": reval.flow_limit.load(Relaxed),
                    "rounds": reval.rounds.load(Relaxed),
                    "handlers": handlers.iter().enumerate().map(|(i, c)| serde_json::json!({
                        "id": i.to_string(),
                        "upcalls": c.upcalls.load(Relaxed),
                        "installed": c.installed.load(Relaxed),
                        "over_limit": c.over_limit.load(Relaxed),
                        "duplicates": c.duplicates.load(Relaxed),
                        "packet_ins": c.packet_ins.load(Relaxed),
                        "packet_ins_dropped": c.packet_ins_dropped.load(Relaxed),
                    })).collect::<Vec<_>>(),
                })
            }),
        );
        Ok(())
    }

    fn apply_diff(&mut self, new: Config, d: &ConfigDiff) -> Vec<String> {
        let mut notes = Vec::new();
        // 1. Delete what is gone (before adding: names can move between bridges).
        for name in &d.bridges_removed {
            self.remove_bridge(name);
            notes.push(format!("deleted bridge {name}"));
        }
        for bd in &d.bridges_changed {
            if let (Some(b), Some(cfg)) = (self.bridges.get(&bd.name), new.bridge(&bd.name)) {
                b.mb.tell(Reconfigure {
                    diff: bd.clone(),
                    cfg: cfg.clone(),
                });
                for p in &bd.ports_removed {
                    notes.push(format!("bridge {}: deleted port {p}", bd.name));
                }
                for p in &bd.ports_added {
                    notes.push(format!("bridge {}: added port {}", bd.name, p.name));
                }
                for p in &bd.ports_changed {
                    notes.push(format!("bridge {}: reconfigured port {}", bd.name, p.name));
                }
                if bd.connections_changed || bd.fail_mode_changed {
                    notes.push(format!("bridge {}: connections reconfigured", bd.name));
                }
            }
        }
        let old_dp = self.cfg.datapath.clone();
        self.cfg = new;
        // 2. Add.
        for b in d.bridges_added.clone() {
            let name = b.name.clone();
            match self.add_bridge(b) {
                Ok(()) => notes.push(format!("added bridge {name}")),
                Err(e) => notes.push(format!("bridge {name}: {e}")),
            }
        }
        // 3. Reconfigure process-wide settings.
        if d.datapath_changed {
            let (nh, nr) = self.cfg.datapath.thread_counts(Self::cores());
            let (oh, or) = old_dp.thread_counts(Self::cores());
            if nr != or {
                self.set_revalidators(nr);
                notes.push(format!("revalidators: {or} -> {nr}"));
            }
            if nh != oh {
                self.set_handlers(nh);
                notes.push(format!("handlers: {oh} -> {nh}"));
            }
            if let Some(l) = self.leader.read().as_ref() {
                l.tell(rv::SetLimits {
                    flow_limit: self.cfg.datapath.flow_limit as usize,
                    max_idle_ms: self.cfg.datapath.max_idle_ms,
                });
            }
            notes.push("datapath settings updated".into());
        }
        if d.log_level_changed {
            match crate::daemon::logging::set_level(&self.cfg.daemon.log_level) {
                Ok(()) => notes.push(format!("log level: {}", self.cfg.daemon.log_level)),
                Err(e) => notes.push(format!("log level not changed: {e}")),
            }
        }
        for k in &d.needs_restart {
            notes.push(format!("{k} changes only after a restart"));
        }
        notes
    }

    fn reload(&mut self, path: Option<PathBuf>) -> Result<String, String> {
        coverage::inc(&c::config_reload);
        let path = path
            .or_else(|| self.cfg_path.clone())
            .ok_or("the daemon was started without a config file")?;
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                coverage::inc(&c::config_reload_refused);
                tracing::error!("reload refused, running config unchanged: {e}");
                return Err(format!(
                    "reload refused, running configuration unchanged: {e}"
                ));
            }
        };
        let d = ConfigDiff::between(&self.cfg, &new);
        if d.is_empty() {
            self.cfg_path = Some(path);
            return Ok("configuration unchanged\n".into());
        }
        let notes = self.apply_diff(new, &d);
        self.cfg_path = Some(path);
        tracing::info!("configuration reloaded: {}", notes.join("; "));
        Ok(format!(
            "configuration reloaded:\n  {}\n",
            notes.join("\n  ")
        ))
    }

    fn health(&mut self) {
        // Revalidators: a dead one loses its ukeys, so its flows are purged
        // (the datapath forgets them; traffic re-creates them) and it restarts.
        let mut restart = Vec::new();
        for (i, (m, _)) in self.revalidators.iter().enumerate() {
            if !m.connected() {
                restart.push(i);
            }
        }
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
        let mut dead_handlers = Vec::new();
        for (i, h) in self.handlers.iter().enumerate() {
            if !h.mb.connected() {
                dead_handlers.push(i);
            }
        }
        for i in dead_handlers {
            coverage::inc(&c::actor_died);
            coverage::inc(&c::actor_restarted);
            tracing::error!("upcall handler {i} died; restarting it");
            let h = self.start_handler(i);
            h.mb.meter.restarted();
            let old = std::mem::replace(&mut self.handlers[i], h);
            old.arbiter.stop();
            let bridges: Vec<Arc<BridgeShared>> =
                self.bridges.values().map(|b| b.shared.clone()).collect();
            for br in bridges {
                let txs = self.attach_to_handlers(&br);
                br.upcall_routes.store(Arc::new(txs));
            }
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
    }

    fn bridge(&self, name: Option<&String>) -> Result<Mailbox<Bridge>, String> {
        match name {
            Some(n) => self
                .bridges
                .get(n)
                .map(|b| b.mb.clone())
                .ok_or_else(|| format!("no such bridge: {n}")),
            None => match self.bridges.values().next() {
                Some(b) if self.bridges.len() == 1 => Ok(b.mb.clone()),
                Some(_) => Err("several bridges: name one".into()),
                None => Err("no bridges".into()),
            },
        }
    }

    fn upcall_show(&self) -> ResponseFuture<Result<String, String>> {
        let leader = self.leader.read().clone();
        let handlers: Vec<Mailbox<UpcallHandler>> =
            self.handlers.iter().map(|h| h.mb.clone()).collect();
        let queues: Vec<(String, usize)> = self
            .bridges
            .iter()
            .map(|(n, b)| (n.clone(), b.shared.dp.n_flows()))
            .collect();
        Box::pin(async move {
            let Some(leader) = leader else {
                return Err("no revalidators".into());
            };
            let r = leader
                .ask(rv::ReportState)
                .await
                .map_err(|e| e.to_string())?;
            let g = |p: &str| r.pointer(p).cloned().unwrap_or(serde_json::Value::Null);
            let mut s = String::from("rvswitchd@userspace:\n");
            s.push_str(&format!(
                "  flows         : (current {}) (avg {}) (max {}) (limit {})\n",
                g("/flows/current"),
                g("/flows/average"),
                g("/flows/maximum"),
                g("/flow_limit")
            ));
            s.push_str(&format!("  dump duration : {}ms\n", g("/last_round_ms")));
            s.push_str(&format!(
                "  flow limit    : {} (configured {})",
                g("/flow_limit"),
                g("/flow_limit_configured")
            ));
            match r.get("flow_limit_last_change") {
                Some(ch) if !ch.is_null() => s.push_str(&format!(
                    ", last changed {:.1}s ago from {} to {}: {}\n",
                    ch["ago_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
                    ch["from"],
                    ch["to"],
                    ch["reason"].as_str().unwrap_or("")
                )),
                _ => s.push_str(", never changed\n"),
            }
            s.push_str(&format!(
                "  max idle      : {}ms{}\n",
                g("/max_idle_ms"),
                if r["paused"].as_bool() == Some(true) {
                    " (revalidators paused)"
                } else {
                    ""
                }
            ));
            s.push_str(&format!(
                "  rounds        : {} (last: {} flows, keep {}, modify {}, delete idle {}, kill-all {}, changed {})\n",
                g("/rounds"),
                g("/last_round/flows"),
                g("/last_round/keep"),
                g("/last_round/modify"),
                g("/last_round/delete_idle"),
                g("/last_round/delete_kill_all"),
                g("/last_round/delete_changed")
            ));
            s.push_str(&format!(
                "  decisions     : keep {}, modify {}, delete idle {}, kill-all {}, changed {}, swept {}\n",
                g("/totals/keep"),
                g("/totals/modify"),
                g("/totals/delete_idle"),
                g("/totals/delete_kill_all"),
                g("/totals/delete_changed"),
                g("/swept")
            ));
            for (n, f) in &queues {
                s.push_str(&format!("  bridge {n}: {f} datapath flows\n"));
            }
            if let Some(a) = r["ukeys_per_revalidator"].as_array() {
                for (i, k) in a.iter().enumerate() {
                    s.push_str(&format!("  revalidator {i}: (keys {k})\n"));
                }
            }
            for h in handlers {
                if let Ok(t) = h.ask(HandlerReport).await {
                    s.push_str(&t);
                }
            }
            Ok(s)
        })
    }

    fn run_ctl(
        &mut self,
        cmd: &str,
        args: Vec<String>,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<String, String>> {
        let ready = |r: Result<String, String>| -> ResponseFuture<Result<String, String>> {
            Box::pin(async move { r })
        };
        let leader = self.leader.read().clone();
        match cmd {
            "version" => ready(Ok(format!(
                "rvswitchd (rvswitchd) {}\n",
                env!("CARGO_PKG_VERSION")
            ))),
            "exit" => {
                ctx.notify_later(Shutdown, Duration::from_millis(50));
                ready(Ok(String::new()))
            }
            "config/show" => ready(Ok(toml::to_string_pretty(&self.cfg).unwrap_or_default())),
            "config/reload" => ready(self.reload(args.first().map(PathBuf::from))),
            "actor/stats" => ready(Ok(serde_json::to_string_pretty(&serde_json::json!({
                "process": http::process_stats(),
                "actors": registry().snapshot(),
            }))
            .unwrap_or_default())),
            "vlog/list" => ready(Ok(format!(
                "current filter: {}\n",
                crate::daemon::logging::current()
            ))),
            "vlog/set" => {
                let spec = args.join(" ");
                ready(crate::daemon::logging::set_level(&spec).map(|_| String::new()))
            }
            "memory/show" => {
                let p = http::process_stats();
                let flows: usize = self.bridges.values().map(|b| b.shared.dp.n_flows()).sum();
                let rules: usize = self
                    .bridges
                    .values()
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
                    .sum();
                ready(Ok(format!(
                    "rss:{}kB peak:{}kB threads:{} bridges:{} ports:{} rules:{} datapath-flows:{} ukeys:{}\n",
                    p["rss_bytes"].as_u64().unwrap_or(0) / 1024,
                    p["rss_peak_bytes"].as_u64().unwrap_or(0) / 1024,
                    p["threads"],
                    self.bridges.len(),
                    self.ports.lock().len(),
                    rules,
                    flows,
                    self.reval.n_flows.load(Relaxed),
                )))
            }
            "coverage/show" => {
                let mut s = String::from("Event coverage (totals since start):\n");
                for (k, v) in coverage::all() {
                    s.push_str(&format!("{k:<28} total: {v}\n"));
                }
                ready(Ok(s))
            }
            "upcall/show" => self.upcall_show(),
            "upcall/set-flow-limit" => {
                let n: usize = match args.first().and_then(|a| a.parse().ok()) {
                    Some(n) if n > 0 => n,
                    _ => return ready(Err("usage: upcall/set-flow-limit N".into())),
                };
                self.cfg.datapath.flow_limit = n as u32;
                if let Some(l) = leader {
                    l.tell(rv::SetLimits {
                        flow_limit: n,
                        max_idle_ms: self.cfg.datapath.max_idle_ms,
                    });
                }
                ready(Ok(format!("set flow_limit to {n}\n")))
            }
            "revalidator/wait" => Box::pin(async move {
                let l = leader.ok_or("no revalidators")?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                l.ask(rv::WaitRound(tx)).await.map_err(|e| e.to_string())?;
                match tokio::time::timeout(Duration::from_secs(30), rx).await {
                    Ok(Ok(())) => Ok(String::new()),
                    _ => Err("no revalidation round completed within 30 s (paused?)".into()),
                }
            }),
            "revalidator/pause" => {
                if let Some(l) = leader {
                    l.tell(rv::Pause);
                }
                ready(Ok(String::new()))
            }
            "revalidator/resume" => {
                if let Some(l) = leader {
                    l.tell(rv::Resume);
                }
                ready(Ok(String::new()))
            }
            "revalidator/purge" => {
                let members: Vec<Mailbox<Revalidator>> =
                    self.revalidators.iter().map(|(m, _)| m.clone()).collect();
                Box::pin(async move {
                    let mut n = 0;
                    for m in members {
                        n += m.ask(rv::Purge).await.unwrap_or(0);
                    }
                    Ok(format!("purged {n} datapath flows\n"))
                })
            }
            "dpctl/dump-flows"
            | "dpctl/del-flows"
            | "dpctl/show"
            | "fdb/show"
            | "fdb/flush"
            | "ofctl/show-connections"
            | "dpif-netdev/pmd-stats-show"
            | "bridge/show" => {
                let q = match cmd {
                    "dpctl/dump-flows" => Query::DumpDpFlows,
                    "dpctl/del-flows" => Query::DelDpFlows,
                    "dpctl/show" => Query::DpShow,
                    "fdb/show" => Query::FdbShow,
                    "fdb/flush" => Query::FdbFlush,
                    "ofctl/show-connections" => Query::Connections,
                    "dpif-netdev/pmd-stats-show" => Query::PmdStats,
                    _ => Query::Show,
                };
                // dpctl/* take an optional datapath name; with several bridges
                // and none named, every bridge answers in turn.
                let targets: Vec<Mailbox<Bridge>> = match args.iter().find(|a| !a.starts_with('-'))
                {
                    Some(n) => match self.bridge(Some(n)) {
                        Ok(b) => vec![b],
                        Err(e) => return ready(Err(e)),
                    },
                    None => self.bridges.values().map(|b| b.mb.clone()).collect(),
                };
                Box::pin(async move {
                    let mut s = String::new();
                    for b in targets {
                        s.push_str(&crate::control::render::answer(
                            &b.ask(BridgeQuery(q.clone()))
                                .await
                                .map_err(|e| e.to_string())??,
                        ));
                    }
                    Ok(s)
                })
            }
            "ofproto/trace" => {
                let (b, flow) = match args.len() {
                    1 => (self.bridge(None), args[0].clone()),
                    _ => (self.bridge(args.first()), args[1..].join(",")),
                };
                Box::pin(async move {
                    let b = b?;
                    b.ask(BridgeQuery(Query::Trace(flow)))
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|a| crate::control::render::answer(&a))
                })
            }
            "debug/stop-actor" => {
                // Stops a handler or revalidator as if it had died, so that the
                // supervisor's detection and restart can be seen working.
                let id = args.first().cloned().unwrap_or_default();
                let idx = |p: &str| id.strip_prefix(p).and_then(|n| n.parse::<usize>().ok());
                if let Some(i) = idx("revalidator:").filter(|i| *i < self.revalidators.len()) {
                    self.revalidators[i].0.tell(rv::Exit { handover: None });
                    ready(Ok(format!("stopping {id}\n")))
                } else if let Some(i) = idx("handler:").filter(|i| *i < self.handlers.len()) {
                    self.handlers[i]
                        .mb
                        .tell(crate::messages::upcall::StopHandler);
                    ready(Ok(format!("stopping {id}\n")))
                } else {
                    ready(Err(format!("{id:?}: expected revalidator:N or handler:N")))
                }
            }
            other => ready(Err(format!("\"{other}\" is not a valid command"))),
        }
    }
}

/// Commands the daemon answers: `(name, usage, min args, max args)`.
pub const COMMANDS: &[(&str, &str, usize, usize)] = &[
    ("version", "", 0, 0),
    ("exit", "", 0, 0),
    ("config/show", "", 0, 0),
    ("config/reload", "[FILE]", 0, 1),
    ("actor/stats", "", 0, 0),
    ("vlog/list", "", 0, 0),
    ("vlog/set", "SPEC", 1, 8),
    ("memory/show", "", 0, 0),
    ("coverage/show", "", 0, 0),
    ("upcall/show", "", 0, 0),
    ("upcall/set-flow-limit", "N", 1, 1),
    ("revalidator/wait", "", 0, 0),
    ("revalidator/pause", "", 0, 0),
    ("revalidator/resume", "", 0, 0),
    ("revalidator/purge", "", 0, 0),
    ("dpctl/dump-flows", "[-m] [BRIDGE]", 0, 3),
    ("dpctl/del-flows", "[BRIDGE]", 0, 1),
    ("dpctl/show", "[BRIDGE]", 0, 2),
    ("ofproto/trace", "[BRIDGE] FLOW", 1, 16),
    ("fdb/show", "BRIDGE", 1, 1),
    ("fdb/flush", "[BRIDGE]", 0, 1),
    ("ofctl/show-connections", "[BRIDGE]", 0, 1),
    ("dpif-netdev/pmd-stats-show", "[BRIDGE]", 0, 1),
    ("bridge/show", "[BRIDGE]", 0, 1),
    ("debug/stop-actor", "revalidator:N|handler:N", 1, 1),
];

impl Actor for Daemon {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(MAILBOX);
        self.meter.mark_alive();
        if let Err(e) = self.start_all() {
            tracing::error!("start-up: {e}");
            self.meter.set_error(e);
        }
        ctx.run_interval(Duration::from_secs(1), |a, _| {
            let _g = a.meter.stream_item("HealthCheck");
            a.health();
        });
    }
}

impl Handler<Reload> for Daemon {
    type Result = Result<String, String>;
    fn handle(&mut self, m: Reload, _: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Reload>();
        self.reload(m.path)
    }
}

impl Handler<Ctl> for Daemon {
    type Result = ResponseFuture<Result<String, String>>;
    fn handle(&mut self, m: Ctl, ctx: &mut Context<Self>) -> Self::Result {
        let _g = self.guard::<Ctl>();
        self.run_ctl(&m.cmd, m.args, ctx)
    }
}

impl Handler<Shutdown> for Daemon {
    type Result = ();
    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) {
        let _g = self.guard::<Shutdown>();
        tracing::info!("shutting down");
        let names: Vec<String> = self.bridges.keys().cloned().collect();
        for b in &names {
            if let Some(e) = self.bridges.get(b) {
                e.shared.dp.clone().shutdown();
            }
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
        actix::spawn(async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            System::current().stop();
        });
    }
}
