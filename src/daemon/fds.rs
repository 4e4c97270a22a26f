//! File descriptors: the process limit, how many are open, and a small
//! reserve that keeps the operator's ways in (control socket, HTTP stats)
//! reachable when a flood of peers has used every other descriptor.
//!
//! At start [`raise_limit`] lifts the soft `RLIMIT_NOFILE` to the hard limit
//! (as OVS's `fatal_signal`/`daemon` code leaves to the packager, and systemd
//! recommends for daemons that need many descriptors). What was done is kept
//! for `/stats`, `/metrics` and `memory/show`.
//!
//! The reserve: [`reserve`] holds a few descriptors open on `/dev/null`. When
//! an operator-facing listener's `accept` fails with `EMFILE`/`ENFILE`, the
//! listener calls [`Reserve::lend`], which closes one spare so that the very
//! next `accept` gets its number, and later [`Reserve::give_back`] the accepted
//! connection: `dup2` turns the connection's descriptor into a `/dev/null`
//! spare in one system call, so the number never becomes free for another
//! thread to take. Other listeners (OpenFlow) back off after an accept error,
//! so in practice the lent number goes to the operator. Which thread touches
//! it: any; the spares sit behind a mutex taken only on these rare paths.

use parking_lot::Mutex;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::sync::OnceLock;

/// Spare descriptors kept for operator connections (control socket and HTTP
/// each need one at a time; two more cover a command that opens a file while
/// both are busy).
pub const RESERVED_FDS: usize = 4;

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

/// Descriptors open now (entries of `/proc/self/fd`, minus the one used to
/// list it), or None when the directory cannot be opened — which is what
/// happens when none are left.
pub fn open_count() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    u64::try_from(n.saturating_sub(1)).ok()
}

/// True for the errors `accept` returns when descriptors are exhausted.
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// Pause after an accept error that the reserve could not cover.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// One accept on an operator-facing listener: `accept` is called again on a
/// reserved descriptor when the first try finds none free; after an error
/// that the reserve cannot cover it pauses and returns None (the caller loops).
/// A successful accept refills the reserve if it was used.
pub async fn accept_reserved<T, F, Fut>(what: &str, mut accept: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    use crate::util::coverage::{self, c};
    let got = match accept().await {
        Ok(s) => Some(s),
        Err(e) if is_exhaustion(&e) => {
            coverage::inc(&c::fd_exhausted);
            if reserve().lend() {
                coverage::inc(&c::fd_reserve_lent);
                accept().await.ok()
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
    if got.is_some() && reserve().available() < RESERVED_FDS {
        reserve().fill();
    }
    got
}

/// Spare descriptors, see the module documentation.
pub struct Reserve {
    spares: Mutex<Vec<OwnedFd>>,
}

/// The process's reserve.
pub fn reserve() -> &'static Reserve {
    static R: OnceLock<Reserve> = OnceLock::new();
    R.get_or_init(|| Reserve {
        spares: Mutex::new(Vec::new()),
    })
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
        let Some(model) = s.first().map(|f| f.as_raw_fd()) else {
            // No spare to copy from: close it and try a fresh open, which gets
            // the number just freed unless another thread is faster.
            drop(fd);
            if let Some(n) = open_null() {
                s.push(n);
            }
            return;
        };
        let raw = fd.into_raw_fd();
        // SAFETY: `model` is an open descriptor owned by a spare held under the
        // lock, and `raw` was an owned descriptor whose ownership we just took;
        // dup2 atomically closes `raw` and makes it a copy of `model`.
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
