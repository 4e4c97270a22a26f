//! The control socket: JSON-RPC 1.0 over a unix stream socket, byte-compatible
//! with what `ovs-appctl` speaks (seed 003, unixctl).
//!
//! A request is `{"id":ID,"method":"cmd","params":["arg",...]}` and the reply is
//! `{"id":ID,"result":"text","error":null}` or `{"id":ID,"result":null,"error":"text"}`.
//! Messages are bare JSON objects back to back (no framing), so the reader
//! parses a stream. As in OVS, each connection has at most one request in flight:
//! we read the next request only after answering the current one.
//!
//! Threading: the server runs as local tasks on the actix System arbiter (the
//! main thread); command handlers are futures that talk to actors by messages.

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

/// Largest request we buffer before giving up on a client (it is garbage).
const MAX_REQUEST: usize = 1 << 20;

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

/// Binds the socket (mode 0600), removing a stale one, and serves forever on the
/// current (local) runtime. Returns the bound path for removal at exit.
pub fn serve(path: &Path, commands: Commands) -> std::io::Result<PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        // A socket nobody answers on is stale (an earlier crash); one that
        // answers belongs to a running daemon and must not be stolen.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is in use by a running daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    actix_rt::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let cmds = commands.clone();
                    actix_rt::spawn(async move {
                        if let Err(e) = serve_conn(stream, cmds).await {
                            tracing::debug!("unixctl connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("unixctl accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(path.to_path_buf())
}

/// Why a client connection ended.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad JSON-RPC: {0}")]
    Bad(String),
}

async fn serve_conn(mut stream: UnixStream, cmds: Commands) -> Result<(), ConnError> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
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
                let reply = handle_request(&cmds, v).await;
                let mut out = serde_json::to_vec(&reply).unwrap_or_default();
                out.push(b'\n');
                stream.write_all(&out).await?;
            }
            Some(Err(e)) => {
                coverage::inc(&c::unixctl_bad_request);
                // Tell the client what was wrong, then hang up: there is no way to
                // resynchronise a byte stream of garbage.
                let reply = json!({"id": null, "result": null, "error": format!("invalid JSON-RPC request: {e}")});
                let mut out = serde_json::to_vec(&reply).unwrap_or_default();
                out.push(b'\n');
                let _ = stream.write_all(&out).await;
                return Err(ConnError::Bad(e));
            }
            None => {
                if buf.len() > MAX_REQUEST {
                    coverage::inc(&c::unixctl_bad_request);
                    return Err(ConnError::Bad("request too long".into()));
                }
                let n = stream.read(&mut chunk).await?;
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

/// Client side (`rvswitchd ctl`): sends one request and returns the reply.
/// Blocking; used only by the command-line client.
pub fn call(socket: &Path, method: &str, params: &[String]) -> Result<CmdResult, String> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
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
