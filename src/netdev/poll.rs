//! Thin wrappers over the two Linux primitives the poll threads sleep on: an
//! `eventfd` (to wake a thread when an op is queued) and an `epoll` instance (to
//! wait for port receive queues and that eventfd together).
//!
//! Each wrapper owns its descriptor, so it is closed exactly once on drop.
//! Every `unsafe` block carries a `// SAFETY:` comment.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A non-blocking eventfd used as a level-triggered "something is pending" flag.
#[derive(Debug)]
pub struct EventFd(OwnedFd, std::sync::atomic::AtomicBool);

impl EventFd {
    /// Creates a non-blocking, close-on-exec eventfd with counter 0.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes no pointers; a negative result is an error.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(EventFd(
            unsafe { OwnedFd::from_raw_fd(fd) },
            std::sync::atomic::AtomicBool::new(false),
        ))
    }

    /// Signals unless a signal is already outstanding: a burst of ops costs one
    /// `write(2)` and one wakeup instead of one each. The waiter must call
    /// [`EventFd::rearm`] *before* looking at the work the signals announce;
    /// then a producer that sees a signal outstanding knows its work will be
    /// seen by the consumer's next look.
    pub fn signal_coalesced(&self) {
        if !self.1.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.signal();
        }
    }

    /// Clears the outstanding-signal mark (consumer side, before draining work).
    pub fn rearm(&self) {
        self.1.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// Adds one to the counter, making the fd readable. Failure (counter
    /// overflow, which needs 2^64 signals) is harmless: the fd is readable anyway.
    pub fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to a descriptor we own.
        let _ = unsafe {
            libc::write(
                self.0.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            )
        };
    }

    /// Resets the counter to 0 (non-blocking; nothing happens if already 0).
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads at most 8 bytes into a valid u64 from a descriptor we own.
        let _ = unsafe {
            libc::read(
                self.0.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
    }

    /// The descriptor, for epoll registration.
    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// An epoll instance with level-triggered read interest per registered fd.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

/// Maximum events returned by one [`Epoll::wait`].
pub const MAX_EVENTS: usize = 64;

/// Storage for one wait's events (kept by the caller so waiting allocates nothing).
pub type Events = [libc::epoll_event; MAX_EVENTS];

/// An empty event array.
pub fn new_events() -> Events {
    [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS]
}

impl Epoll {
    /// Creates a close-on-exec epoll instance.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; a negative result is an error.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Watches `fd` for readability, reporting `token` when it is readable.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `ev` is a valid epoll_event for the duration of the call.
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops watching `fd`.
    pub fn del(&self, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: `ev` is valid (ignored by the kernel for DEL, required by old ones).
        let r = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), libc::EPOLL_CTL_DEL, fd, &mut ev) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout_ms` for events; returns how many of `events` are filled.
    /// An interrupted wait returns 0.
    pub fn wait(&self, events: &mut Events, timeout_ms: i32) -> io::Result<usize> {
        // SAFETY: `events` points to MAX_EVENTS writable epoll_event slots.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                MAX_EVENTS as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }
}
