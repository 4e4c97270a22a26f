//! The HTTP actor-stats endpoint: `GET /stats` (JSON) and `GET /metrics`
//! (Prometheus text exposition).
//!
//! It runs on its own thread with its own actix System so that a busy or stuck
//! switch actor can never stop an operator from looking at it, and it reads only
//! atomics (the actor registry and registered [`StatsSource`]s) — it never sends
//! a message to an actor.

use crate::actors::metrics::registry;
use crate::util::coverage;
use arc_swap::ArcSwap;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

/// A named producer of extra statistics (datapath counters, upcall and
/// revalidator state). It must only read atomics or cheap snapshots.
pub type StatsSource = Arc<dyn Fn() -> Value + Send + Sync>;

fn sources() -> &'static ArcSwap<Vec<(String, StatsSource)>> {
    static S: OnceLock<ArcSwap<Vec<(String, StatsSource)>>> = OnceLock::new();
    S.get_or_init(|| ArcSwap::from_pointee(Vec::new()))
}

/// Adds (or replaces) a stats source under `name`.
pub fn add_source(name: &str, f: StatsSource) {
    let name = name.to_string();
    sources().rcu(|cur| {
        let mut v: Vec<_> = cur.iter().filter(|(n, _)| *n != name).cloned().collect();
        v.push((name.clone(), f.clone()));
        Arc::new(v)
    });
}

/// Removes a stats source.
pub fn remove_source(name: &str) {
    sources().rcu(|cur| {
        Arc::new(
            cur.iter()
                .filter(|(n, _)| n != name)
                .cloned()
                .collect::<Vec<_>>(),
        )
    });
}

/// Process figures from /proc: RSS in bytes and thread count.
pub fn process_stats() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    json!({
        "pid": std::process::id(),
        "uptime_s": registry().uptime_s(),
        "rss_bytes": field("VmRSS:") * 1024,
        "rss_peak_bytes": field("VmHWM:") * 1024,
        "threads": field("Threads:"),
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// The whole `/stats` document.
pub fn stats_json() -> Value {
    let mut doc = Map::new();
    doc.insert("process".into(), process_stats());
    doc.insert(
        "actors".into(),
        serde_json::to_value(registry().snapshot()).unwrap_or(Value::Null),
    );
    let cov: Map<String, Value> = coverage::all()
        .into_iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    doc.insert("coverage".into(), Value::Object(cov));
    for (name, f) in sources().load().iter() {
        doc.insert(name.clone(), f());
    }
    Value::Object(doc)
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn metric_name(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Flattens numeric leaves of a JSON value into Prometheus samples.
fn flatten(out: &mut String, prefix: &str, labels: &[(String, String)], v: &Value) {
    match v {
        Value::Number(n) => {
            let l = if labels.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{}=\"{}\"", k, esc(v)))
                    .collect();
                format!("{{{}}}", parts.join(","))
            };
            let _ = writeln!(out, "{}{} {}", metric_name(prefix), l, n);
        }
        Value::Bool(b) => flatten(out, prefix, labels, &json!(*b as u8)),
        Value::Object(m) => {
            for (k, v) in m {
                flatten(out, &format!("{prefix}_{k}"), labels, v);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                // Use a "name"/"id" member as the label when there is one.
                let key = v
                    .get("name")
                    .or_else(|| v.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string());
                let mut l = labels.to_vec();
                l.push((
                    format!(
                        "{}_key",
                        metric_name(prefix.rsplit('_').next().unwrap_or("item"))
                    ),
                    key,
                ));
                flatten(out, prefix, &l, v);
            }
        }
        _ => {}
    }
}

/// The whole `/metrics` text.
pub fn metrics_text() -> String {
    let mut out = String::new();
    let p = process_stats();
    let _ = writeln!(out, "# HELP rvswitchd_process_rss_bytes Resident set size.");
    let _ = writeln!(out, "# TYPE rvswitchd_process_rss_bytes gauge");
    flatten(&mut out, "rvswitchd_process", &[], &p);
    let _ = writeln!(
        out,
        "# HELP rvswitchd_actor_messages_received_total Messages enqueued to an actor, by type."
    );
    let _ = writeln!(
        out,
        "# TYPE rvswitchd_actor_messages_received_total counter"
    );
    for a in registry().snapshot() {
        let base = format!(
            "actor=\"{}\",kind=\"{}\",bridge=\"{}\"",
            esc(&a.id),
            a.kind,
            esc(a.bridge.as_deref().unwrap_or(""))
        );
        for m in &a.messages {
            let l = format!("{base},msg=\"{}\"", m.name);
            let _ = writeln!(
                out,
                "rvswitchd_actor_messages_received_total{{{l}}} {}",
                m.received
            );
            let _ = writeln!(
                out,
                "rvswitchd_actor_messages_handled_total{{{l}}} {}",
                m.handled
            );
            let _ = writeln!(
                out,
                "rvswitchd_actor_messages_dropped_total{{{l}}} {}",
                m.dropped
            );
            let _ = writeln!(out, "rvswitchd_actor_handling_mean_us{{{l}}} {}", m.mean_us);
            let _ = writeln!(out, "rvswitchd_actor_handling_p99_us{{{l}}} {}", m.p99_us);
            let _ = writeln!(out, "rvswitchd_actor_handling_max_us{{{l}}} {}", m.max_us);
        }
        let _ = writeln!(
            out,
            "rvswitchd_actor_mailbox_depth{{{base}}} {}",
            a.mailbox_depth
        );
        let _ = writeln!(
            out,
            "rvswitchd_actor_mailbox_capacity{{{base}}} {}",
            a.mailbox_capacity
        );
        let _ = writeln!(
            out,
            "rvswitchd_actor_restarts_total{{{base}}} {}",
            a.restarts
        );
        let _ = writeln!(out, "rvswitchd_actor_alive{{{base}}} {}", a.alive as u8);
    }
    for (k, v) in coverage::all() {
        let _ = writeln!(out, "rvswitchd_coverage_total{{counter=\"{k}\"}} {v}");
    }
    for (name, f) in sources().load().iter() {
        flatten(&mut out, &format!("rvswitchd_{name}"), &[], &f());
    }
    out
}

/// Starts the endpoint on its own thread. Returns once the socket is bound (or
/// failed to bind), so startup errors are reported by the caller.
pub fn start(addr: std::net::SocketAddr) -> std::io::Result<()> {
    use actix_web::{web, App, HttpResponse, HttpServer};
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("rvs-http".into())
        .spawn(move || {
            let sys = actix_rt::System::new();
            sys.block_on(async move {
                let server = HttpServer::new(|| {
                    App::new()
                        .route(
                            "/stats",
                            web::get().to(|| async {
                                HttpResponse::Ok().content_type("application/json").body(
                                    serde_json::to_string_pretty(&stats_json()).unwrap_or_default(),
                                )
                            }),
                        )
                        .route(
                            "/metrics",
                            web::get().to(|| async {
                                HttpResponse::Ok()
                                    .content_type("text/plain; version=0.0.4")
                                    .body(metrics_text())
                            }),
                        )
                })
                .workers(1)
                .disable_signals()
                .bind(addr);
                match server {
                    Ok(s) => {
                        let _ = tx.send(Ok(()));
                        if let Err(e) = s.run().await {
                            tracing::error!("stats endpoint stopped: {e}");
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })?;
    rx.recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("stats thread died")))
}
