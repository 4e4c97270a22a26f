//! Hand-over upgrade: `rvswitchd --takeover` replaces a running daemon
//! without closing its listeners or its TAP devices, so that forwarding stops
//! only for the moment the new process needs to start its poll threads and
//! controllers see one reconnect to a listener that never stopped accepting.
//! Open vSwitch has no equivalent: `utilities/ovs-save` dumps the flows with
//! `ovs-ofctl` before a restart and re-adds them after (what our state file
//! does without a script), and its TAP devices are recreated.
//!
//! The old daemon serves a takeover socket ([`socket_path`]: the control
//! socket's path with `.takeover` appended, mode 0600, root only — the
//! descriptors it hands out are the whole switch). The exchange, one JSON
//! object a line, the successor's messages first:
//!
//! 1. `hello` (its version and pid) → the old daemon answers with `fds`
//!    lines, each carrying up to [`passfd::MAX_FDS_PER_MESSAGE`] descriptors
//!    over `SCM_RIGHTS` and their keys (see `daemon::passfd`: listening
//!    sockets by address, TAP devices by name), then `offered` (its pid and
//!    version). The successor files them in `util::inherit` and binds its
//!    control, stats and OpenFlow listeners from them; it builds nothing that
//!    forwards yet.
//! 2. `stop` → the old daemon stops its poll threads (forwarding ends here),
//!    writes every bridge's state file (the tables as they are at this
//!    moment) and answers `stopped`. The successor then starts its actors:
//!    the bridges restore those files and the ports open — TAP ports on the
//!    inherited descriptors, `system` ports on fresh `AF_PACKET` sockets
//!    (forwarding resumes here).
//! 3. `done` (once the successor's listeners and bridges are up) → the old
//!    daemon exits at once, removing nothing: the socket files and state
//!    files are the successor's now. Its controller connections close with
//!    it, and the controllers reconnect to the inherited listeners.
//!
//! The successor never runs in parallel with a forwarding predecessor: both
//! would see every frame (each `AF_PACKET` socket gets its own copy) and
//! forward it twice. If the successor goes away before `stop`, the old daemon
//! carries on; after `stop` it exits as if `done` had come (it cannot resume
//! its stopped poll threads, and its state is saved for a plain restart).
//!
//! Threads: the server runs on the System arbiter (main thread) as one task,
//! one takeover at a time; the client runs on the successor's main thread
//! before and during start-up, blocking.

use crate::daemon::passfd;
use crate::util::inherit;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest line either side sends (a batch of keys is far shorter).
const MAX_LINE: usize = 256 * 1024;
/// How long the old daemon waits for `hello` after a connection.
const HELLO_WAIT: Duration = Duration::from_secs(5);
/// How long it waits, after offering, for the successor to ask it to stop
/// (the successor parses its configuration and binds meanwhile).
const STOP_WAIT: Duration = Duration::from_secs(120);
/// How long it waits, stopped, for `done` before exiting anyway.
const DONE_WAIT: Duration = Duration::from_secs(60);
/// How long the successor waits for each answer (the old daemon's `stop`
/// includes writing every bridge's state file).
const ANSWER_WAIT: Duration = Duration::from_secs(60);

/// The takeover socket of the daemon whose control socket is `control`.
pub fn socket_path(control: &Path) -> PathBuf {
    let mut s = control.as_os_str().to_owned();
    s.push(".takeover");
    PathBuf::from(s)
}

/// One line of the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "msg", rename_all = "snake_case")]
pub enum Msg {
    /// Successor: I am taking over.
    Hello {
        /// Its `CARGO_PKG_VERSION`.
        version: String,
        /// Its pid.
        pid: u32,
    },
    /// Old daemon: the descriptors attached to this line, in this order.
    Fds {
        /// One key per descriptor (`util::inherit`).
        keys: Vec<String>,
    },
    /// Old daemon: that was all.
    Offered {
        /// Its pid.
        pid: u32,
        /// Its version.
        version: String,
    },
    /// Successor: stop forwarding and save the tables.
    Stop,
    /// Old daemon: stopped; what each bridge's save said.
    Stopped {
        /// One line per bridge.
        saved: Vec<String>,
    },
    /// Successor: I forward now; exit.
    Done,
    /// Either side: refused, with why.
    Error {
        /// Why.
        message: String,
    },
}

impl Msg {
    fn line(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// Takes the first complete line out of `acc`, parsed.
fn take_line(acc: &mut Vec<u8>) -> Option<Result<Msg, String>> {
    let i = acc.iter().position(|&b| b == b'\n')?;
    let line: Vec<u8> = acc.drain(..=i).collect();
    Some(serde_json::from_slice(&line[..i]).map_err(|e| format!("malformed message: {e}")))
}

// ---------------------------------------------------------------- server

/// Binds the takeover socket at `path` and serves it on the current (actix)
/// runtime. `stop` stops forwarding and saves the tables (the Daemon's
/// `StopForwarding`), answering one line per bridge.
pub fn serve<F, Fut>(path: &Path, stop: F) -> std::io::Result<()>
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<Vec<String>, String>> + 'static,
{
    let l = crate::daemon::sockets::bind_private(path, 0o600, "")?;
    l.set_nonblocking(true)?;
    let path = path.to_path_buf();
    actix_rt::spawn(async move {
        let l = match tokio::net::UnixListener::from_std(l) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!("takeover socket {}: {e}", path.display());
                return;
            }
        };
        loop {
            match l.accept().await {
                // One at a time: a second successor waits in the backlog.
                Ok((s, _)) => match serve_one(&s, &stop).await {
                    Ok(()) => {}
                    Err(e) => tracing::warn!("takeover: {e}; still running"),
                },
                Err(e) => {
                    tracing::warn!("takeover socket: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(())
}

async fn read_msg(
    s: &tokio::net::UnixStream,
    acc: &mut Vec<u8>,
    wait: Duration,
) -> Result<Option<Msg>, String> {
    let read = async {
        loop {
            if let Some(m) = take_line(acc) {
                return m.map(Some);
            }
            if acc.len() > MAX_LINE {
                return Err(format!("a line longer than {MAX_LINE} bytes"));
            }
            let mut buf = [0u8; 4096];
            s.readable().await.map_err(|e| e.to_string())?;
            match s.try_read(&mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => acc.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    tokio::time::timeout(wait, read)
        .await
        .map_err(|_| format!("no message within {} s", wait.as_secs()))?
}

async fn send(s: &tokio::net::UnixStream, m: &Msg, fds: &[BorrowedFd<'_>]) -> Result<(), String> {
    let bytes = m.line();
    let mut off = 0;
    while off < bytes.len() {
        s.writable().await.map_err(|e| e.to_string())?;
        // The descriptors ride on the first bytes sent.
        let attach = if off == 0 { fds } else { &[] };
        match s.try_io(tokio::io::Interest::WRITABLE, || {
            passfd::send_with_fds(s.as_fd(), &bytes[off..], attach)
        }) {
            Ok(n) => off += n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

async fn serve_one<F, Fut>(s: &tokio::net::UnixStream, stop: &F) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Vec<String>, String>>,
{
    // The socket file is 0600 and root's; the peer is checked anyway.
    let cred = s
        .peer_cred()
        .map_err(|e| format!("peer credentials: {e}"))?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() != me {
        let _ = send(
            s,
            &Msg::Error {
                message: "only the daemon's own user may take over".into(),
            },
            &[],
        )
        .await;
        return Err(format!("refused uid {}", cred.uid()));
    }
    let mut acc = Vec::new();
    let (version, pid) = match read_msg(s, &mut acc, HELLO_WAIT).await? {
        Some(Msg::Hello { version, pid }) => (version, pid),
        Some(m) => return Err(format!("expected hello, got {m:?}")),
        None => return Err("the successor left before hello".into()),
    };
    let ours = env!("CARGO_PKG_VERSION");
    tracing::info!("takeover: process {pid} (version {version}) takes over");
    if version != ours {
        tracing::warn!(
            "takeover: version {version} is not ours ({ours}): it will refuse our state files, \
             so its tables start empty until controllers re-add them"
        );
    }
    let fds = passfd::exportable().map_err(|e| format!("/proc/self/fd: {e}"))?;
    for chunk in fds.chunks(passfd::MAX_FDS_PER_MESSAGE) {
        let keys = chunk.iter().map(|(k, _)| k.clone()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = chunk.iter().map(|(_, f)| f.as_fd()).collect();
        send(s, &Msg::Fds { keys }, &borrowed).await?;
    }
    send(
        s,
        &Msg::Offered {
            pid: std::process::id(),
            version: ours.into(),
        },
        &[],
    )
    .await?;
    // Our copies: the successor holds its own now.
    drop(fds);
    match read_msg(s, &mut acc, STOP_WAIT).await {
        Ok(Some(Msg::Stop)) => {}
        Ok(Some(m)) => return Err(format!("expected stop, got {m:?}")),
        Ok(None) => return Err(format!("process {pid} left before asking us to stop")),
        Err(e) => return Err(format!("process {pid}: {e}")),
    }
    tracing::info!("takeover: stopping forwarding for process {pid}");
    let answer = match stop().await {
        Ok(saved) => Msg::Stopped { saved },
        Err(message) => Msg::Error { message },
    };
    let sent = send(s, &answer, &[]).await;
    // From here on there is no way back: our poll threads are gone.
    let why = match sent {
        Err(e) => format!("the successor is unreachable ({e})"),
        Ok(()) => match read_msg(s, &mut acc, DONE_WAIT).await {
            Ok(Some(Msg::Done)) => "the successor forwards".into(),
            Ok(Some(m)) => format!("unexpected {m:?} from the successor"),
            Ok(None) => "the successor left before saying it forwards".into(),
            Err(e) => format!("the successor: {e}"),
        },
    };
    tracing::info!("takeover: {why}; process {pid} has our sockets; exiting");
    let _ = std::io::stderr().flush();
    // No destructor and no clean-up: the socket files and state files are
    // the successor's, and nothing of ours is left to save.
    std::process::exit(0)
}

// ---------------------------------------------------------------- client

/// The successor's end of a takeover in progress.
pub struct Successor {
    stream: std::os::unix::net::UnixStream,
    acc: Vec<u8>,
    /// The old daemon's pid.
    pub old_pid: u32,
    /// The descriptors received, by key.
    pub received: Vec<String>,
}

impl Successor {
    /// Connects to the daemon serving `path`, introduces itself and files
    /// the descriptors it hands over in `util::inherit`.
    pub fn connect(path: &Path) -> Result<Successor, String> {
        let stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
            format!(
                "--takeover: no running daemon answers on {} ({e}); start it without --takeover",
                path.display()
            )
        })?;
        stream
            .set_read_timeout(Some(ANSWER_WAIT))
            .map_err(|e| e.to_string())?;
        let mut me = Successor {
            stream,
            acc: Vec::new(),
            old_pid: 0,
            received: Vec::new(),
        };
        me.send(&Msg::Hello {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
        })?;
        loop {
            let (m, fds) = me.recv()?;
            match m {
                Msg::Fds { keys } if keys.len() == fds.len() => {
                    for (k, fd) in keys.into_iter().zip(fds) {
                        me.received.push(k.clone());
                        inherit::put(k, fd);
                    }
                }
                Msg::Fds { keys } => {
                    return Err(format!(
                        "--takeover: {} keys came with {} descriptors",
                        keys.len(),
                        fds.len()
                    ))
                }
                Msg::Offered { pid, version } => {
                    me.old_pid = pid;
                    if version != env!("CARGO_PKG_VERSION") {
                        tracing::warn!(
                            "takeover: the running daemon is version {version}: its state \
                             files will be refused and the tables start empty"
                        );
                    }
                    return Ok(me);
                }
                Msg::Error { message } => return Err(format!("--takeover refused: {message}")),
                other => return Err(format!("--takeover: unexpected {other:?}")),
            }
        }
    }

    fn send(&mut self, m: &Msg) -> Result<(), String> {
        self.stream
            .write_all(&m.line())
            .map_err(|e| format!("--takeover: send: {e}"))
    }

    /// The next line and the descriptors that came with it.
    fn recv(&mut self) -> Result<(Msg, Vec<std::os::fd::OwnedFd>), String> {
        let mut fds = Vec::new();
        loop {
            if let Some(m) = take_line(&mut self.acc) {
                return Ok((m?, fds));
            }
            if self.acc.len() > MAX_LINE {
                return Err(format!("--takeover: a line longer than {MAX_LINE} bytes"));
            }
            let mut buf = vec![0u8; 64 * 1024];
            let (n, got) = passfd::recv_with_fds(self.stream.as_fd(), &mut buf)
                .map_err(|e| format!("--takeover: receive: {e}"))?;
            if n == 0 {
                return Err("--takeover: the running daemon closed the connection".into());
            }
            self.acc.extend_from_slice(&buf[..n]);
            fds.extend(got);
        }
    }

    /// Asks the old daemon to stop forwarding and save its tables; returns
    /// what each bridge's save said. Forwarding is down from here until our
    /// poll threads run.
    pub fn stop(&mut self) -> Result<Vec<String>, String> {
        self.send(&Msg::Stop)?;
        match self.recv()?.0 {
            Msg::Stopped { saved } => Ok(saved),
            Msg::Error { message } => Err(format!("--takeover: the old daemon: {message}")),
            other => Err(format!("--takeover: unexpected {other:?}")),
        }
    }

    /// Tells the old daemon we forward: it exits.
    pub fn done(mut self) {
        if let Err(e) = self.send(&Msg::Done) {
            tracing::warn!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_lines_split() {
        let ms = [
            Msg::Hello {
                version: "1".into(),
                pid: 7,
            },
            Msg::Fds {
                keys: vec!["tcp:0.0.0.0:6653".into(), "unix:/run/x y".into()],
            },
            Msg::Stop,
            Msg::Stopped { saved: vec![] },
            Msg::Done,
        ];
        let mut acc: Vec<u8> = ms.iter().flat_map(Msg::line).collect();
        for m in &ms {
            assert_eq!(take_line(&mut acc).unwrap().unwrap(), *m);
        }
        assert!(take_line(&mut acc).is_none());
        acc.extend_from_slice(b"{\"msg\":\"nope\"}\n{\"msg\"");
        assert!(take_line(&mut acc).unwrap().is_err());
        assert!(take_line(&mut acc).is_none(), "a partial line waits");
        assert_eq!(
            socket_path(Path::new("/run/rvswitchd/rvswitchd.ctl")),
            PathBuf::from("/run/rvswitchd/rvswitchd.ctl.takeover")
        );
    }

    #[test]
    fn connecting_without_a_daemon_says_so() {
        let d = tempfile::tempdir().unwrap();
        let e = Successor::connect(&d.path().join("none.takeover"))
            .err()
            .expect("no daemon");
        assert!(e.contains("no running daemon answers on"), "{e}");
    }
}
