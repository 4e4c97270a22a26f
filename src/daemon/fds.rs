//! File descriptors: the process limit, how many are open, and a small
//! reserve that keeps the operator's ways in (control socket, HTTP stats)
//! reachable when a flood of peers has used every other descriptor.
//!
//! At start [`raise_limit`] lifts the soft `RLIMIT_NOFILE` to the hard limit
//! (as OVS's `fatal_signal`/`daemon` code leaves to the packager, and systemd
//! recommends for daemons that need many descriptors). What was done is kept
//! for `/stats`, `/metrics` and `memory/show`.
//!
//! The operator threads (control socket, stats endpoint) run with descriptor
//! tables of their own ([`private_table`]), so a flood that fills the shared
//! table does not reach them at all; within their own tables the reserves
//! below are a second line.
//!
//! The reserves: each operator-facing listener (the control socket, the
//! stats endpoint) has its own [`reserve`] of descriptors held open on
//! `/dev/null`, so that a flood on one cannot spend the other's. When such a
//! listener's `accept` fails with `EMFILE`/`ENFILE`, it calls
//! [`Reserve::lend`], which closes one spare so that the very next `accept`
//! gets its number; the accepted connection is wrapped in [`Reserved`], whose
//! drop hands the descriptor to [`Reserve::give_back`]: `dup2` turns it into a
//! `/dev/null` spare in one system call, so the number never becomes free for
//! another thread to take. Other listeners (OpenFlow) back off after an accept
//! error, so in practice the lent number goes to the operator. Which thread
//! touches it: any; the spares sit behind a mutex taken only on these paths.

use parking_lot::Mutex;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::OnceLock;

/// Spare descriptors kept for each operator-facing listener: one for the
/// connection being served, one more so that the next is accepted while the
/// last one's descriptor is on its way back.
pub const RESERVED_FDS: usize = 2;

/// The operator-facing listeners, each with its own reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// The control socket (`ovs-appctl`).
    Control,
    /// The HTTP statistics endpoint.
    Http,
}

/// What [`raise_limit`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FdLimit {
    /// The soft limit in force now.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
    /// The soft limit before we raised it (equal to `soft` when nothing changed).
    pub soft_at_start: u64,
}

static LIMIT: OnceLock<FdLimit> = OnceLock::new();

/// Raises the soft descriptor limit to the hard one, once; returns what is in
/// force. `RLIM_INFINITY` as hard limit is capped at the kernel's
/// `fs.nr_open` (setrlimit refuses more).
pub fn raise_limit() -> Result<FdLimit, String> {
    if let Some(l) = LIMIT.get() {
        return Ok(*l);
    }
    let (soft, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    let mut target = hard;
    if target == nix::sys::resource::RLIM_INFINITY {
        target = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(soft);
    }
    let mut now = soft;
    if target > soft {
        match nix::sys::resource::setrlimit(
            nix::sys::resource::Resource::RLIMIT_NOFILE,
            target,
            hard,
        ) {
            Ok(()) => now = target,
            Err(e) => return Err(format!("setrlimit(RLIMIT_NOFILE, {target}): {e}")),
        }
    }
    let l = FdLimit {
        soft: now,
        hard,
        soft_at_start: soft,
    };
    Ok(*LIMIT.get_or_init(|| l))
}

/// The limit recorded at start (None before [`raise_limit`] ran).
pub fn limit() -> Option<FdLimit> {
    LIMIT.get().copied()
}

/// `/proc/self/fd`, opened once ([`fill_all`]) and re-read from the start
/// each time, so that counting takes no descriptor (under exhaustion, taking
/// one would race with an operator listener for its reserved number).
fn fd_dir() -> Option<&'static Mutex<nix::dir::Dir>> {
    static D: OnceLock<Option<Mutex<nix::dir::Dir>>> = OnceLock::new();
    D.get_or_init(|| {
        nix::dir::Dir::open(
            "/proc/self/fd",
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
        .map(Mutex::new)
    })
    .as_ref()
}

/// Descriptors open now (entries of `/proc/self/fd` but `.`, `..` and the
/// one listing it), or None when the directory could not be opened.
pub fn open_count() -> Option<u64> {
    let mut dir = fd_dir()?.lock();
    // The iterator rewinds the directory when dropped.
    let n = dir
        .iter()
        .filter_map(Result::ok)
        .filter(|e| !matches!(e.file_name().to_bytes(), b"." | b".."))
        .count();
    u64::try_from(n.saturating_sub(1)).ok()
}

/// Gives the calling thread a descriptor table of its own (`unshare(2)` with
/// `CLONE_FILES`): a copy of the process's table as it is now, after which
/// descriptors this thread opens are not in the shared table and the shared
/// table filling up (a flood of OpenFlow peers) cannot stop this thread from
/// accepting — each table has its own `RLIMIT_NOFILE` room. The operator
/// threads (control socket, stats endpoint) call it first thing, before any
/// bridge exists, so that their copies hold no device descriptor (a copy
/// keeps the open file alive: a TAP would outlive its bridge). Descriptors a
/// takeover handed us and no bridge has claimed yet are closed in the copy
/// for the same reason (under the registry's lock, so that none is claimed
/// in between: [`crate::util::inherit::with_unclaimed`]).
pub fn private_table() -> Result<(), String> {
    crate::util::inherit::with_unclaimed(|raw| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FILES)
            .map_err(|e| format!("unshare(CLONE_FILES): {e}"))?;
        for &n in raw {
            // SAFETY: closes this thread's private copy of the number; the
            // registry's descriptor lives in the shared table, untouched.
            drop(unsafe { OwnedFd::from_raw_fd(n) });
        }
        Ok(())
    })
}

/// Starts the operator thread `name`: a descriptor table of its own
/// ([`private_table`]), a single-threaded runtime with a `LocalSet`, and the
/// future `run()` makes on that thread, run to its end. The runtime is built
/// here so that its errors reach the caller.
pub fn spawn_private_thread<F, Fut>(name: &str, run: F) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let what = name.to_string();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            if let Err(e) = private_table() {
                tracing::warn!("{what}: {e}; sharing the process's descriptor table");
            }
            tokio::task::LocalSet::new().block_on(&rt, run());
        })?;
    Ok(())
}

/// True for the errors `accept` returns when descriptors are exhausted.
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Pause after an accept error that the reserve could not cover.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// One accept on an operator-facing listener: `accept` is called again on a
/// descriptor of `pool`'s reserve when the first try finds none free; after an
/// error that the reserve cannot cover it pauses and returns None (the caller
/// loops). A successful accept refills the reserve if it was used.
pub async fn accept_reserved<T, F, Fut>(pool: Pool, what: &str, mut accept: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    use crate::util::coverage::{self, c};
    let got = match accept().await {
        Ok(s) => Some(s),
        Err(e) if is_exhaustion(&e) => {
            coverage::inc(&c::fd_exhausted);
            if reserve(pool).lend() {
                coverage::inc(&c::fd_reserve_lent);
                let got = accept().await.ok();
                if got.is_none() {
                    // Another thread took the number first. Connections
                    // handed back refill the reserve later (never an open
                    // here: it would take numbers other listeners release).
                    coverage::inc(&c::fd_reserve_raced);
                }
                got
            } else {
                tracing::warn!("{what}: accept: {e} (descriptor reserve used up)");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                None
            }
        }
        Err(e) => {
            tracing::warn!("{what}: accept: {e}");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            None
        }
    };
    got
}

/// A connection that can give its descriptor back to the reserve.
pub trait IntoOwnedFd {
    /// The descriptor, deregistered from the runtime (None if that failed).
    fn into_owned_fd(self) -> Option<OwnedFd>;
}

impl IntoOwnedFd for tokio::net::TcpStream {
    fn into_owned_fd(self) -> Option<OwnedFd> {
        self.into_std().ok().map(OwnedFd::from)
    }
}

impl IntoOwnedFd for tokio::net::UnixStream {
    fn into_owned_fd(self) -> Option<OwnedFd> {
        self.into_std().ok().map(OwnedFd::from)
    }
}

/// An operator connection whose descriptor goes to [`Reserve::give_back`]
/// however the connection ends (finished, failed, evicted by abort): the
/// number is turned into a spare before anything could close it, so a lent
/// number never becomes free for a flooding listener to take.
pub struct Reserved<S: IntoOwnedFd> {
    inner: Option<S>,
    pool: Pool,
}

impl<S: IntoOwnedFd> Reserved<S> {
    /// Wraps a connection accepted by `pool`'s listener.
    pub fn new(s: S, pool: Pool) -> Self {
        Reserved {
            inner: Some(s),
            pool,
        }
    }

    fn get(&mut self) -> std::io::Result<&mut S> {
        self.inner
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotConnected))
    }
}

impl<S: IntoOwnedFd> Drop for Reserved<S> {
    fn drop(&mut self) {
        if let Some(fd) = self.inner.take().and_then(IntoOwnedFd::into_owned_fd) {
            reserve(self.pool).give_back(fd);
        }
    }
}

impl<S: IntoOwnedFd + tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Reserved<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get() {
            Ok(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
}

impl<S: IntoOwnedFd + tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Reserved<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get() {
            Ok(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get() {
            Ok(s) => std::pin::Pin::new(s).poll_flush(cx),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get() {
            Ok(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Err(e) => std::task::Poll::Ready(Err(e)),
        }
    }
}

/// Spare descriptors, see the module documentation.
pub struct Reserve {
    spares: Mutex<Vec<OwnedFd>>,
}

/// The reserve of one listener.
pub fn reserve(pool: Pool) -> &'static Reserve {
    static CONTROL: OnceLock<Reserve> = OnceLock::new();
    static HTTP: OnceLock<Reserve> = OnceLock::new();
    let r = match pool {
        Pool::Control => &CONTROL,
        Pool::Http => &HTTP,
    };
    r.get_or_init(|| Reserve {
        spares: Mutex::new(Vec::new()),
    })
}

/// A `/dev/null` descriptor kept for the life of the process as the source
/// of [`Reserve::give_back`]'s `dup2`, so that a number can be turned into a
/// spare even when a reserve holds none.
fn model() -> Option<&'static OwnedFd> {
    static M: OnceLock<Option<OwnedFd>> = OnceLock::new();
    M.get_or_init(open_null).as_ref()
}

/// Fills every reserve and opens what counting and handing back need (at
/// start, before any flood).
pub fn fill_all() {
    let _ = model();
    let _ = fd_dir();
    reserve(Pool::Control).fill();
    reserve(Pool::Http).fill();
}

/// Spares held by all reserves.
pub fn reserved() -> usize {
    reserve(Pool::Control).available() + reserve(Pool::Http).available()
}

fn open_null() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

impl Reserve {
    /// Opens spares until [`RESERVED_FDS`] are held (as many as can be opened).
    pub fn fill(&self) {
        let mut s = self.spares.lock();
        while s.len() < RESERVED_FDS {
            match open_null() {
                Some(fd) => s.push(fd),
                None => break,
            }
        }
    }

    /// Spares held now.
    pub fn available(&self) -> usize {
        self.spares.lock().len()
    }

    /// Closes one spare so that the caller's next `accept` can have its number;
    /// false when none is left.
    pub fn lend(&self) -> bool {
        self.spares.lock().pop().is_some()
    }

    /// Takes back a descriptor the caller is done with (a connection accepted
    /// after [`Reserve::lend`]): it becomes a `/dev/null` spare under the same
    /// number, so the slot is never free in between. When the reserve is full
    /// or no `/dev/null` is at hand, the descriptor is simply closed.
    pub fn give_back(&self, fd: OwnedFd) {
        let mut s = self.spares.lock();
        if s.len() >= RESERVED_FDS {
            return;
        }
        let Some(model) = model().or_else(|| s.first()).map(|f| f.as_raw_fd()) else {
            return;
        };
        let raw = fd.into_raw_fd();
        // SAFETY: `model` is an open descriptor owned by the process-long model
        // (or a spare held under the lock), and `raw` was an owned descriptor
        // whose ownership we just took; dup2 atomically closes `raw` and makes
        // it a copy of `model`.
        let r = unsafe { libc::dup2(model, raw) };
        if r == raw {
            // SAFETY: `raw` is now an open descriptor that nothing else owns.
            s.push(unsafe { OwnedFd::from_raw_fd(raw) });
        } else {
            // SAFETY: dup2 failed and left `raw` as it was, still ours to close.
            drop(unsafe { OwnedFd::from_raw_fd(raw) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lend_and_give_back_keep_the_number() {
        let r = Reserve {
            spares: Mutex::new(Vec::new()),
        };
        // Even empty, a reserve takes numbers back (from the model).
        let f = std::fs::File::open("/proc/self/status").expect("open");
        let raw = f.as_raw_fd();
        r.give_back(OwnedFd::from(f));
        assert_eq!(r.available(), 1);
        assert_eq!(r.spares.lock()[0].as_raw_fd(), raw);
        r.fill();
        assert_eq!(r.available(), RESERVED_FDS);
        assert!(r.lend());
        // Whatever is opened next takes a number; giving it back keeps the
        // reserve full without closing that number first.
        let f = std::fs::File::open("/proc/self/status").expect("open");
        let raw = f.as_raw_fd();
        r.give_back(OwnedFd::from(f));
        assert_eq!(r.available(), RESERVED_FDS);
        assert!(r.spares.lock().iter().any(|s| s.as_raw_fd() == raw));
        // Full: an extra descriptor is just closed.
        let g = std::fs::File::open("/dev/null").expect("open");
        r.give_back(OwnedFd::from(g));
        assert_eq!(r.available(), RESERVED_FDS);
    }

    #[test]
    fn limit_is_raised_to_hard_and_counted() {
        let l = raise_limit().expect("rlimit");
        assert!(l.soft >= l.soft_at_start);
        assert!(l.soft == l.hard || l.hard == nix::sys::resource::RLIM_INFINITY);
        assert!(open_count().unwrap_or(0) >= 3);
    }
}
