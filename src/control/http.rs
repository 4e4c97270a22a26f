//! The HTTP statistics endpoint: `GET /stats` (JSON) and `GET /metrics`
//! (Prometheus text exposition, see [`super::metrics`]).
//!
//! It runs on its own thread with its own single-threaded tokio runtime, so
//! that a busy or stuck switch actor can never stop an operator from looking
//! at it, and it reads only atomics (the actor registry and registered
//! [`StatsSource`](crate::util::metrics::StatsSource)s) — it never sends a
//! message to an actor.
//!
//! The thread has a descriptor table of its own
//! ([`fds::private_table`]): peers flooding the OpenFlow listeners fill the
//! shared table, not this one. Our own accept loop admits connections, so
//! every input bound is ours:
//! at most [`MAX_CONNECTIONS`] at once (a new one evicts the oldest), request
//! heads of at most [`MAX_HEAD_BYTES`] that must arrive within
//! [`HEAD_TIMEOUT`], and the descriptor reserve of [`fds`] when a flood has
//! used every free descriptor. hyper speaks HTTP/1.1 on each admitted
//! connection.

use crate::daemon::{fds, procfs};
use crate::util::coverage::{self, c};
use crate::util::metrics::registry;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

/// Most connections served at once; one more evicts the oldest (a scraper
/// reconnects; a client holding connections open to starve others cannot).
pub const MAX_CONNECTIONS: usize = 16;
/// Largest request head (request line and headers) we buffer.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Time a client has to send a whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Process figures: pid, uptime, memory, threads, descriptors, version.
/// Figures that could not be read are `null`, never a made-up 0.
pub fn process_stats() -> Value {
    let p = procfs::status();
    let lim = fds::limit();
    json!({
        "pid": std::process::id(),
        "uptime_s": registry().uptime_s(),
        "rss_bytes": p.rss_bytes,
        "rss_peak_bytes": p.rss_peak_bytes,
        "threads": p.threads,
        "open_fds": fds::open_count(),
        "max_fds": lim.map(|l| l.soft),
        "max_fds_hard": lim.map(|l| l.hard),
        "max_fds_at_start": lim.map(|l| l.soft_at_start),
        "reserved_fds": fds::reserved(),
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
    doc.insert(
        "coverage".into(),
        serde_json::to_value(coverage::snapshot()).unwrap_or(Value::Null),
    );
    for (name, s) in registry().sources().iter() {
        doc.insert(name.clone(), s.json());
    }
    Value::Object(doc)
}

fn reply(status: StatusCode, ctype: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

async fn serve_request(
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET and HEAD\n".into(),
        ));
    }
    Ok(match req.uri().path() {
        "/stats" => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(&stats_json()).unwrap_or_default(),
        ),
        "/metrics" => reply(
            StatusCode::OK,
            super::metrics::CONTENT_TYPE,
            super::metrics::metrics_text(),
        ),
        "/" => reply(
            StatusCode::OK,
            "text/plain",
            "rvswitchd: GET /stats (JSON), GET /metrics (Prometheus)\n".into(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    })
}

/// Admitted connections, oldest first: id and the handle that closes it.
type Admitted = Rc<RefCell<VecDeque<(u64, tokio::task::AbortHandle)>>>;

fn admit(stream: tokio::net::TcpStream, table: &Admitted, id: u64) {
    {
        let mut t = table.borrow_mut();
        while t.len() >= MAX_CONNECTIONS {
            if let Some((_, h)) = t.pop_front() {
                coverage::inc(&c::http_evicted);
                h.abort();
            }
        }
    }
    let t2 = table.clone();
    let task = tokio::task::spawn_local(async move {
        let builder = {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES)
                .keep_alive(true);
            b
        };
        // However the connection ends, its descriptor refills the reserve
        // without ever being free (see `fds::Reserved`).
        let conn = builder.serve_connection(
            hyper_util::rt::TokioIo::new(fds::Reserved::new(stream, fds::Pool::Http)),
            hyper::service::service_fn(serve_request),
        );
        if let Err(e) = conn.await {
            tracing::debug!("stats endpoint connection: {e}");
        }
        t2.borrow_mut().retain(|(i, _)| *i != id);
    });
    table.borrow_mut().push_back((id, task.abort_handle()));
}

async fn accept_loop(listener: tokio::net::TcpListener) {
    let table: Admitted = Rc::default();
    let mut next_id = 0u64;
    loop {
        let accepted =
            fds::accept_reserved(fds::Pool::Http, "stats endpoint", || listener.accept()).await;
        if let Some((s, _)) = accepted {
            next_id += 1;
            admit(s, &table, next_id);
        }
    }
}

/// Binds `addr` and serves on a thread of its own. Returns once the socket is
/// bound (or failed to bind), with the bound address, so start-up errors are
/// reported by the caller.
pub fn start(addr: std::net::SocketAddr) -> std::io::Result<std::net::SocketAddr> {
    // A listener handed over by the daemon we replace (`--takeover`).
    let std_listener = match crate::util::inherit::take_tcp(&addr) {
        Some(l) => l,
        None => std::net::TcpListener::bind(addr)?,
    };
    std_listener.set_nonblocking(true)?;
    let local = std_listener.local_addr()?;
    fds::spawn_private_thread("rvs-http", move || async move {
        match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => accept_loop(l).await,
            Err(e) => tracing::error!("stats endpoint: {e}"),
        }
    })?;
    Ok(local)
}
