//! The control socket: JSON-RPC 1.0 over a unix stream socket, byte-compatible
//! with what `ovs-appctl` speaks (OVS `lib/unixctl.c`: `unixctl_server_run()`).
//!
//! A request is `{"id":ID,"method":"cmd","params":["arg",...]}` and the reply is
//! `{"id":ID,"result":"text","error":null}` or `{"id":ID,"result":null,"error":"text"}`.
//! Messages are bare JSON objects back to back (no framing), so the reader
//! parses a stream. As in OVS, each connection has at most one request in flight:
//! we read the next request only after answering the current one.
//!
//! Bounds (every client is hostile): at most [`MAX_CLIENTS`] at once (the
//! longest-idle one is evicted for a newcomer), a request of at most
//! [`MAX_REQUEST`] bytes that must arrive within [`REQUEST_TIMEOUT`], a reply
//! that must be read within [`WRITE_TIMEOUT`]; when descriptors run out the
//! accept uses the reserve of [`crate::daemon::fds`]. The socket is created
//! with mode 0600 without ever existing under the umask's mode.
//!
//! Threading: the server runs on a thread of its own, `rvs-unixctl`, with a
//! descriptor table of its own (see [`serve_on_thread`]); command handlers are
//! futures there that talk to actors by messages.

use crate::daemon::fds;
use crate::util::coverage::{self, c};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// What a command returns: text for stdout, or an error text for stderr.
pub type CmdResult = Result<String, String>;
/// A running command.
pub type CmdFuture = Pin<Box<dyn Future<Output = CmdResult>>>;
/// A command implementation.
pub type CmdFn = Rc<dyn Fn(Vec<String>) -> CmdFuture>;

/// Largest request we buffer before giving up on a client. The longest real
/// requests (`ofproto/trace` with a packet, `config/reload` with a path) are a
/// few KiB.
pub const MAX_REQUEST: usize = 256 * 1024;

struct Command {
    usage: String,
    min_args: usize,
    max_args: usize,
    f: CmdFn,
}

/// The table of registered commands (shared by all connections).
#[derive(Clone, Default)]
pub struct Commands {
    inner: Rc<RefCell<BTreeMap<String, Command>>>,
}

impl Commands {
    /// Registers a command, like `unixctl_command_register`.
    pub fn register(&self, name: &str, usage: &str, min_args: usize, max_args: usize, f: CmdFn) {
        self.inner.borrow_mut().insert(
            name.to_string(),
            Command {
                usage: usage.to_string(),
                min_args,
                max_args,
                f,
            },
        );
    }

    /// The `list-commands` text, in OVS's layout.
    pub fn list(&self) -> String {
        let mut s = String::from("The available commands are:\n");
        for (name, c) in self.inner.borrow().iter() {
            let line = format!("  {:<24} {}", name, c.usage);
            s.push_str(line.trim_end());
            s.push('\n');
        }
        s
    }

    /// Runs one request.
    pub async fn dispatch(&self, method: &str, params: Vec<String>) -> CmdResult {
        let (f, min, max) = {
            let map = self.inner.borrow();
            match map.get(method) {
                None => return Err(format!("\"{method}\" is not a valid command")),
                Some(c) => (c.f.clone(), c.min_args, c.max_args),
            }
        };
        if params.len() < min {
            return Err(format!(
                "\"{method}\" command requires at least {min} arguments"
            ));
        }
        if params.len() > max {
            return Err(format!(
                "\"{method}\" command takes at most {max} arguments"
            ));
        }
        f(params).await
    }
}

/// Most control-socket clients admitted at once. At the cap, a new client
/// evicts the one that has been idle longest (not running a command); when
/// every admitted client is running a command, the new one is refused.
pub const MAX_CLIENTS: usize = 32;
/// Time a client has to send a whole request, counted from when we start
/// waiting for it (after connecting, or after our previous reply).
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Time a client has to take our reply off the socket.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// One admitted client, for eviction.
struct Client {
    id: u64,
    /// Running a command (not evictable).
    busy: bool,
    /// When it last became idle (connected, or finished a command).
    idle_since: std::time::Instant,
    abort: tokio::task::AbortHandle,
}

#[derive(Default)]
struct Clients {
    list: Vec<Client>,
    next_id: u64,
}

type ClientTable = Rc<RefCell<Clients>>;

/// Makes room for one more client: evicts the longest-idle one at the cap.
/// False when every admitted client is busy.
fn make_room(table: &ClientTable) -> bool {
    let mut t = table.borrow_mut();
    if t.list.len() < MAX_CLIENTS {
        return true;
    }
    let oldest = t
        .list
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.busy)
        .min_by_key(|(_, c)| c.idle_since)
        .map(|(i, _)| i);
    match oldest {
        Some(i) => {
            let c = t.list.swap_remove(i);
            coverage::inc(&c::unixctl_evicted);
            c.abort.abort();
            true
        }
        None => false,
    }
}

fn set_busy(table: &ClientTable, id: u64, busy: bool) {
    if let Some(c) = table.borrow_mut().list.iter_mut().find(|c| c.id == id) {
        c.busy = busy;
        if !busy {
            c.idle_since = std::time::Instant::now();
        }
    }
}

fn admit(stream: UnixStream, commands: &Commands, table: &ClientTable) {
    if !make_room(table) {
        coverage::inc(&c::unixctl_refused);
        // Say why before hanging up; never wait for a client we refuse.
        let reply = json!({"id": null, "result": null,
            "error": format!("too many control-socket clients ({MAX_CLIENTS}) running commands; try again")});
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        let _ = stream.try_write(&out);
        return;
    }
    let id = {
        let mut t = table.borrow_mut();
        t.next_id += 1;
        t.next_id
    };
    let cmds = commands.clone();
    let t2 = table.clone();
    let task = tokio::task::spawn_local(async move {
        // However the connection ends (even evicted), its descriptor
        // refills the reserve without ever being free (`fds::Reserved`).
        let mut stream = fds::Reserved::new(stream, fds::Pool::Control);
        if let Err(e) = serve_conn(&mut stream, cmds, &t2, id).await {
            tracing::debug!("unixctl connection: {e}");
        }
        t2.borrow_mut().list.retain(|c| c.id != id);
    });
    table.borrow_mut().list.push(Client {
        id,
        busy: false,
        idle_since: std::time::Instant::now(),
        abort: task.abort_handle(),
    });
}

/// Binds the sockets at `paths` (mode 0600, see
/// [`crate::daemon::sockets::bind_private`]) and serves them on a thread of
/// their own, with a descriptor table of its own ([`fds::private_table`]) so
/// that a flood filling the process's shared table cannot lock the operator
/// out. `commands` builds the command table on that thread (commands are
/// futures that talk to actors by messages, which works from any thread).
/// Returns once every socket is bound, or with the first bind error.
pub fn serve_on_thread<F>(paths: &[PathBuf], commands: F) -> std::io::Result<()>
where
    F: FnOnce() -> Commands + Send + 'static,
{
    let mut listeners = Vec::new();
    for p in paths {
        let l = crate::daemon::sockets::bind_private(p, 0o600, "")
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))?;
        l.set_nonblocking(true)?;
        listeners.push(l);
    }
    fds::spawn_private_thread("rvs-unixctl", move || async move {
        let cmds = commands();
        let mut tasks = Vec::new();
        for l in listeners {
            match UnixListener::from_std(l) {
                Ok(l) => tasks.push(tokio::task::spawn_local(accept_loop(l, cmds.clone()))),
                Err(e) => tracing::error!("control socket: {e}"),
            }
        }
        for t in tasks {
            let _ = t.await;
        }
    })
}

async fn accept_loop(listener: UnixListener, commands: Commands) {
    let table: ClientTable = Rc::default();
    loop {
        let accepted =
            fds::accept_reserved(fds::Pool::Control, "unixctl", || listener.accept()).await;
        if let Some((stream, _)) = accepted {
            admit(stream, &commands, &table);
        }
    }
}

/// Why a client connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad JSON-RPC: {0}")]
    Bad(String),
    #[error("no whole request within {0:?}")]
    Timeout(std::time::Duration),
}

/// An admitted client connection.
type Conn = fds::Reserved<UnixStream>;

async fn write_reply(stream: &mut Conn, reply: &Value) -> Result<(), ConnError> {
    let mut out = serde_json::to_vec(reply).unwrap_or_default();
    out.push(b'\n');
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&out)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnError::Timeout(WRITE_TIMEOUT)),
    }
}

async fn serve_conn(
    stream: &mut Conn,
    cmds: Commands,
    table: &ClientTable,
    id: u64,
) -> Result<(), ConnError> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let mut deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        // Try to parse one complete JSON value from what we have.
        let parsed = {
            let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
            match it.next() {
                Some(Ok(v)) => Some(Ok((v, it.byte_offset()))),
                Some(Err(e)) if e.is_eof() => None,
                Some(Err(e)) => Some(Err(e.to_string())),
                None => None,
            }
        };
        match parsed {
            Some(Ok((v, used))) => {
                buf.drain(..used);
                coverage::inc(&c::unixctl_received);
                set_busy(table, id, true);
                let reply = handle_request(&cmds, v).await;
                set_busy(table, id, false);
                write_reply(stream, &reply).await?;
                deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
            }
            Some(Err(e)) => {
                coverage::inc(&c::unixctl_bad_request);
                // Tell the client what was wrong, then hang up: there is no way to
                // resynchronise a byte stream of garbage.
                let reply = json!({"id": null, "result": null, "error": format!("invalid JSON-RPC request: {e}")});
                let _ = write_reply(stream, &reply).await;
                return Err(ConnError::Bad(e));
            }
            None => {
                if buf.len() > MAX_REQUEST {
                    coverage::inc(&c::unixctl_bad_request);
                    let reply = json!({"id": null, "result": null,
                        "error": format!("request longer than {MAX_REQUEST} bytes")});
                    let _ = write_reply(stream, &reply).await;
                    return Err(ConnError::Bad("request too long".into()));
                }
                let n = match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
                    Ok(r) => r?,
                    Err(_) => {
                        coverage::inc(&c::unixctl_timeout);
                        return Err(ConnError::Timeout(REQUEST_TIMEOUT));
                    }
                };
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

async fn handle_request(cmds: &Commands, v: Value) -> Value {
    let id = v.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = v.get("method").and_then(Value::as_str) else {
        coverage::inc(&c::unixctl_bad_request);
        return json!({"id": id, "result": null, "error": "request has no \"method\""});
    };
    let params: Vec<String> = match v.get("params") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            coverage::inc(&c::unixctl_bad_request);
            return json!({"id": id, "result": null, "error": "\"params\" must be an array"});
        }
    };
    match cmds.dispatch(method, params).await {
        Ok(text) => json!({"id": id, "result": text, "error": null}),
        Err(text) => json!({"id": id, "result": null, "error": text}),
    }
}

/// Client side (`rvswitchd ctl`): sends one request and returns the reply,
/// waiting at most `timeout` for it (None: forever). Blocking; used only by
/// the command-line client.
pub fn call(
    socket: &Path,
    method: &str,
    params: &[String],
    timeout: Option<std::time::Duration>,
) -> Result<CmdResult, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    s.set_read_timeout(timeout).map_err(|e| e.to_string())?;
    s.set_write_timeout(timeout).map_err(|e| e.to_string())?;
    let req = json!({"id": 0, "method": method, "params": params});
    let bytes = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
    s.write_all(&bytes).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a reply".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut it = serde_json::Deserializer::from_slice(&buf).into_iter::<Value>();
        match it.next() {
            Some(Ok(v)) => {
                if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
                    return Ok(Err(err
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| err.to_string())));
                }
                let r = v.get("result").cloned().unwrap_or(Value::Null);
                return Ok(Ok(r
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| r.to_string())));
            }
            Some(Err(e)) if e.is_eof() => continue,
            Some(Err(e)) => return Err(format!("bad reply: {e}")),
            None => continue,
        }
    }
}
