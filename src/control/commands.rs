//! The control commands (`ovs-appctl -t SOCKET COMMAND ARGS`): their table,
//! argument handling, and what each asks of the Daemon.
//!
//! The Daemon answers typed questions or routes a query to bridges and
//! revalidators (`messages/daemon.rs`); everything printed is made here or in
//! [`super::text`]. Commands run as futures on the control socket's thread
//! (`rvs-unixctl`); none blocks it.

use super::text;
use super::unixctl::{CmdFuture, Commands};
use crate::actors::daemon::Daemon;
use crate::messages::bridge::Query;
use crate::messages::daemon::*;
use crate::messages::Mailbox;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// How long `exit` waits before stopping, so that its reply is written first.
const EXIT_DELAY: Duration = Duration::from_millis(50);

type Run = fn(Mailbox<Daemon>, Vec<String>) -> CmdFuture;

/// One command: name, usage, argument counts, implementation.
pub struct Spec {
    /// Name, as typed after `ovs-appctl`.
    pub name: &'static str,
    /// Argument synopsis for `list-commands`.
    pub usage: &'static str,
    /// Fewest arguments accepted (fewer is an error before it runs).
    pub min: usize,
    /// Most arguments accepted.
    pub max: usize,
    run: Run,
}

async fn ask<M>(d: &Mailbox<Daemon>, m: M) -> Result<M::Result, String>
where
    M: actix::Message + crate::util::metrics::MsgName + Send + 'static,
    M::Result: Send,
    Daemon: actix::Handler<M>,
{
    d.ask(m)
        .await
        .map_err(|e| format!("daemon unavailable: {e}"))
}

fn version(_: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async {
        Ok(format!(
            "rvswitchd (rvswitchd) {}\n",
            env!("CARGO_PKG_VERSION")
        ))
    })
}

fn exit(d: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        tokio::task::spawn_local(async move {
            tokio::time::sleep(EXIT_DELAY).await;
            let _ = d.ask(Shutdown).await;
        });
        Ok(String::new())
    })
}

fn config_show(d: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async move { Ok(text::config_show(&ask(&d, ShowConfig).await?)) })
}

fn config_path(d: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        let v = ask(&d, ShowConfig).await?;
        match v.startup {
            Some(p) => Ok(format!("{}\n", p.display())),
            None => Err("the daemon was started without a config file".into()),
        }
    })
}

fn config_reload(d: Mailbox<Daemon>, args: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        let report = ask(
            &d,
            Reload {
                path: args.first().map(PathBuf::from),
                origin: ReloadOrigin::Control,
            },
        )
        .await??;
        text::reload_result(&report)
    })
}

fn actor_stats(_: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async {
        let v = serde_json::json!({
            "process": super::http::process_stats(),
            "actors": crate::util::metrics::registry().snapshot(),
        });
        serde_json::to_string_pretty(&v).map_err(|e| e.to_string())
    })
}

fn vlog_list(_: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async {
        Ok(format!(
            "current filter: {}\n",
            crate::daemon::logging::current()
        ))
    })
}

fn vlog_set(_: Mailbox<Daemon>, args: Vec<String>) -> CmdFuture {
    Box::pin(
        async move { crate::daemon::logging::set_level(&args.join(" ")).map(|()| String::new()) },
    )
}

fn memory_show(d: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        let inv = ask(&d, GetInventory).await?;
        Ok(text::memory_show(
            &crate::daemon::procfs::status(),
            &inv,
            crate::daemon::fds::open_count(),
            crate::daemon::fds::limit(),
        ))
    })
}

fn coverage_show(_: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async { Ok(text::coverage_show(&crate::util::coverage::all())) })
}

/// `tnl/ports/show`: every tunnel port with its options and counters (OVS
/// lists its tunnel UDP ports under the same name).
fn tnl_ports_show(_: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async { Ok(crate::actors::tunnels::render_ports()) })
}

fn upcall_show(d: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
    Box::pin(async move { Ok(text::upcall_show(&ask(&d, GetUpcallView).await??)) })
}

fn set_flow_limit(d: Mailbox<Daemon>, args: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        let n: usize = match args.first().and_then(|a| a.parse().ok()) {
            Some(n) if n > 0 => n,
            _ => return Err("usage: upcall/set-flow-limit N (N > 0)".into()),
        };
        ask(&d, SetFlowLimit(n)).await?;
        Ok(format!("set flow_limit to {n}\n"))
    })
}

fn reval(d: Mailbox<Daemon>, op: RevalCtl) -> CmdFuture {
    Box::pin(async move {
        let n = ask(&d, Revalidators(op)).await??;
        Ok(match op {
            RevalCtl::Purge => format!("purged {n} datapath flows\n"),
            _ => String::new(),
        })
    })
}

/// Commands that only send a [`RevalCtl`].
macro_rules! reval_commands {
    ($($f:ident => $op:expr),* $(,)?) => {
        $(fn $f(d: Mailbox<Daemon>, _: Vec<String>) -> CmdFuture {
            reval(d, $op)
        })*
    };
}

reval_commands! {
    reval_wait => RevalCtl::Wait,
    reval_pause => RevalCtl::Pause,
    reval_resume => RevalCtl::Resume,
    reval_purge => RevalCtl::Purge,
}

/// Sends `query` to the bridge named by the first argument that is not an
/// option, or to every bridge when none is named (as `dpctl/*` does with
/// several datapaths), and concatenates the answers.
fn bridges(d: Mailbox<Daemon>, args: Vec<String>, query: Query) -> CmdFuture {
    Box::pin(async move {
        let target = match args.iter().find(|a| !a.starts_with('-')) {
            Some(n) => BridgeTarget::Named(n.clone()),
            None => BridgeTarget::All,
        };
        ask_bridges(&d, target, query).await
    })
}

/// Sends `query` to the bridges `target` names and renders their answers,
/// in bridge order.
async fn ask_bridges(
    d: &Mailbox<Daemon>,
    target: BridgeTarget,
    query: Query,
) -> Result<String, String> {
    Ok(ask(d, BridgeCtl { target, query })
        .await??
        .iter()
        .map(crate::control::render::answer)
        .collect::<Vec<_>>()
        .concat())
}

/// Commands that only send a [`Query`] to bridges.
macro_rules! bridge_commands {
    ($($f:ident => $q:expr),* $(,)?) => {
        $(fn $f(d: Mailbox<Daemon>, a: Vec<String>) -> CmdFuture {
            bridges(d, a, $q)
        })*
    };
}

bridge_commands! {
    dump_dp_flows => Query::DumpDpFlows,
    del_dp_flows => Query::DelDpFlows,
    dp_show => Query::DpShow,
    fdb_show => Query::FdbShow,
    fdb_flush => Query::FdbFlush,
    show_connections => Query::Connections,
    pmd_stats => Query::PmdStats,
    bridge_show => Query::Show,
}

fn trace(d: Mailbox<Daemon>, args: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        let (target, flow) = match args.as_slice() {
            [flow] => (BridgeTarget::Only, flow.clone()),
            [br, rest @ ..] => (BridgeTarget::Named(br.clone()), rest.join(",")),
            [] => return Err("usage: ofproto/trace [BRIDGE] FLOW".into()),
        };
        ask_bridges(&d, target, Query::Trace(flow)).await
    })
}

fn stop_actor(d: Mailbox<Daemon>, args: Vec<String>) -> CmdFuture {
    Box::pin(async move {
        let id = args.first().cloned().unwrap_or_default();
        ask(&d, StopActor(id.clone())).await??;
        Ok(format!("stopping {id}\n"))
    })
}

/// Every command but `list-commands` (which the table answers itself).
#[rustfmt::skip]
pub static COMMANDS: &[Spec] = &[
    Spec { name: "version", usage: "", min: 0, max: 0, run: version },
    Spec { name: "exit", usage: "", min: 0, max: 0, run: exit },
    Spec { name: "config/show", usage: "", min: 0, max: 0, run: config_show },
    Spec { name: "config/path", usage: "", min: 0, max: 0, run: config_path },
    Spec { name: "config/reload", usage: "[FILE]", min: 0, max: 1, run: config_reload },
    Spec { name: "actor/stats", usage: "", min: 0, max: 0, run: actor_stats },
    Spec { name: "vlog/list", usage: "", min: 0, max: 0, run: vlog_list },
    Spec { name: "vlog/set", usage: "SPEC", min: 1, max: 8, run: vlog_set },
    Spec { name: "memory/show", usage: "", min: 0, max: 0, run: memory_show },
    Spec { name: "coverage/show", usage: "", min: 0, max: 0, run: coverage_show },
    Spec { name: "upcall/show", usage: "", min: 0, max: 0, run: upcall_show },
    Spec { name: "upcall/set-flow-limit", usage: "N", min: 1, max: 1, run: set_flow_limit },
    Spec { name: "revalidator/wait", usage: "", min: 0, max: 0, run: reval_wait },
    Spec { name: "revalidator/pause", usage: "", min: 0, max: 0, run: reval_pause },
    Spec { name: "revalidator/resume", usage: "", min: 0, max: 0, run: reval_resume },
    Spec { name: "revalidator/purge", usage: "", min: 0, max: 0, run: reval_purge },
    Spec { name: "dpctl/dump-flows", usage: "[-m] [BRIDGE]", min: 0, max: 3, run: dump_dp_flows },
    Spec { name: "dpctl/del-flows", usage: "[BRIDGE]", min: 0, max: 1, run: del_dp_flows },
    Spec { name: "dpctl/show", usage: "[BRIDGE]", min: 0, max: 2, run: dp_show },
    Spec { name: "ofproto/trace", usage: "[BRIDGE] FLOW", min: 1, max: 16, run: trace },
    Spec { name: "fdb/show", usage: "BRIDGE", min: 1, max: 1, run: fdb_show },
    Spec { name: "fdb/flush", usage: "[BRIDGE]", min: 0, max: 1, run: fdb_flush },
    Spec { name: "ofctl/show-connections", usage: "[BRIDGE]", min: 0, max: 1, run: show_connections },
    Spec { name: "dpif-netdev/pmd-stats-show", usage: "[BRIDGE]", min: 0, max: 1, run: pmd_stats },
    Spec { name: "tnl/ports/show", usage: "", min: 0, max: 0, run: tnl_ports_show },
    Spec { name: "bridge/show", usage: "[BRIDGE]", min: 0, max: 1, run: bridge_show },
    Spec { name: "debug/stop-actor", usage: "revalidator:N|handler:N", min: 1, max: 1, run: stop_actor },
];

/// Registers `list-commands` and every command of [`COMMANDS`], each talking
/// to `daemon`.
pub fn register_all(cmds: &Commands, daemon: Mailbox<Daemon>) {
    let list = cmds.clone();
    cmds.register(
        "list-commands",
        "",
        0,
        0,
        Rc::new(move |_| {
            let text = list.list();
            Box::pin(async move { Ok::<_, String>(text) })
        }),
    );
    for spec in COMMANDS {
        let d = daemon.clone();
        let run = spec.run;
        cmds.register(
            spec.name,
            spec.usage,
            spec.min,
            spec.max,
            Rc::new(move |args| run(d.clone(), args)),
        );
    }
}
