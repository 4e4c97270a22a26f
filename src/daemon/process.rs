//! Daemonizing (as OVS's `lib/daemon-unix.c:daemonize_start()` does): the
//! parent forks and exits only once the child reports a successful start
//! through a pipe, so `rvswitchd --detach` returning 0 means the switch is up;
//! the optional monitor process (`monitor_daemon()`) restarts the daemon after
//! a crash signal, throttled; crash signals always crash
//! ([`make_crash_signals_fatal`]).
//!
//! All forking happens before any thread is started (no actix system, no
//! logging thread yet), which keeps `fork` sound in a Rust process.

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, setsid, ForkResult};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Crash signals for which the Rust runtime installs a handler (its stack
/// overflow detector).
const CHAINED_CRASH_SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// The handlers found for [`CHAINED_CRASH_SIGNALS`] (a `sa_sigaction` value;
/// 0 = `SIG_DFL`), written once before any thread exists, read by the handler.
static PREVIOUS: [std::sync::atomic::AtomicUsize; 2] = [
    std::sync::atomic::AtomicUsize::new(0),
    std::sync::atomic::AtomicUsize::new(0),
];

/// Why the first SIGSEGV used to be absorbed: the Rust runtime installs a
/// SIGSEGV/SIGBUS handler that tells a stack overflow (a fault in a guard
/// page: it prints which thread overflowed and aborts) from any other fault;
/// for any other fault it resets the signal to its default action and
/// *returns*, counting on the faulting instruction to fault again. A signal
/// sent with `kill`/`tgkill` does not come back, so the first one vanished and
/// only a second one killed the process. This handler runs first: a signal
/// that was sent rather than raised by a fault (`si_code <= 0`: `SI_USER`,
/// `SI_QUEUE`, `SI_TKILL`) gets its default action at once (it is blocked
/// while we run, so re-raising delivers it the moment we return: the process
/// dies of it and `--monitor` restarts a clean one); a real fault goes on to
/// the runtime's handler, which still reports stack overflows.
extern "C" fn crash_handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let slot = CHAINED_CRASH_SIGNALS.iter().position(|s| *s == sig);
    let prev = slot
        .map(|i| PREVIOUS[i].load(std::sync::atomic::Ordering::Relaxed))
        .unwrap_or(0);
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler;
    // a null pointer is checked for anyway.
    let sent = info.is_null() || unsafe { (*info).si_code } <= 0;
    if sent || prev == libc::SIG_DFL || prev == libc::SIG_IGN {
        // SAFETY: signal() and raise() are async-signal-safe; resetting the
        // disposition to SIG_DFL and re-raising is the documented way to die
        // of a signal from its handler.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    // SAFETY: `prev` is the sa_sigaction of a handler installed with
    // SA_SIGINFO by the Rust runtime (checked when it was saved), so it has
    // this three-argument signature; we pass the kernel's own arguments on.
    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
        unsafe { std::mem::transmute(prev) };
    f(sig, info, ctx);
}

/// Makes SIGSEGV and SIGBUS fatal on their first delivery, keeping the
/// runtime's stack overflow report (see [`crash_handler`]). Call first thing
/// in `main`, before any thread exists; forked children inherit it.
pub fn make_crash_signals_fatal() -> Result<(), String> {
    for (i, sig) in CHAINED_CRASH_SIGNALS.iter().enumerate() {
        // SAFETY: an all-zero sigaction is a valid value to be filled in.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: querying the current action (null new action) of a valid
        // signal number into a properly sized struct.
        if unsafe { libc::sigaction(*sig, std::ptr::null(), &mut old) } != 0 {
            return Err(format!(
                "sigaction({sig}): {}",
                std::io::Error::last_os_error()
            ));
        }
        let prev = if old.sa_flags & libc::SA_SIGINFO != 0 {
            old.sa_sigaction
        } else {
            // A plain handler (or default/ignore) is not chained to.
            libc::SIG_DFL
        };
        PREVIOUS[i].store(prev, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: as above; the new action is fully initialised below.
        let mut new: libc::sigaction = unsafe { std::mem::zeroed() };
        new.sa_sigaction = crash_handler as *const () as usize;
        // On the alternate stack the runtime gives every thread, so that a
        // stack overflow can still be handled; SA_NODEFER is not set, so the
        // signal stays blocked while the handler runs.
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: `new.sa_mask` is a valid sigset_t to initialise.
        unsafe { libc::sigemptyset(&mut new.sa_mask) };
        // SAFETY: installing a handler with the SA_SIGINFO signature for a
        // valid signal; `crash_handler` only makes async-signal-safe calls.
        if unsafe { libc::sigaction(*sig, &new, std::ptr::null_mut()) } != 0 {
            return Err(format!(
                "sigaction({sig}): {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

/// The write end of the start-up pipe, held by the daemon until it is ready.
pub struct ReadyNotifier {
    fd: Option<OwnedFd>,
}

impl ReadyNotifier {
    /// A notifier that tells nobody (foreground runs).
    pub fn none() -> ReadyNotifier {
        ReadyNotifier { fd: None }
    }

    /// Reports success ("0") or an error message to the waiting parent.
    pub fn notify(&mut self, result: Result<(), String>) {
        if let Some(fd) = self.fd.take() {
            let mut f = std::fs::File::from(fd);
            let msg = match result {
                Ok(()) => "0\n".to_string(),
                Err(e) => format!("1{}\n", e.replace('\n', " ")),
            };
            let _ = f.write_all(msg.as_bytes());
        }
    }
}

/// Forks into the background. Returns in the child only; the parent waits for
/// the child's report and exits with 0 (started) or 1 (printing the error).
pub fn detach() -> Result<ReadyNotifier, String> {
    let (rd, wr) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: called from main before any other thread exists, so the child
    // inherits a consistent single-threaded address space.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Parent { .. } => {
            drop(wr);
            // One line, not "until EOF": threads with descriptor tables of
            // their own (`fds::private_table`) hold copies of the write end
            // for as long as the daemon runs.
            let mut s = String::new();
            let _ = std::io::BufReader::new(std::fs::File::from(rd)).read_line(&mut s);
            let s = s.trim_end_matches('\n');
            if s == "0" {
                std::process::exit(0);
            }
            let msg = s
                .strip_prefix('1')
                .unwrap_or("daemon exited during start-up");
            eprintln!("rvswitchd: {msg}");
            std::process::exit(1);
        }
        ForkResult::Child => {
            drop(rd);
            let _ = setsid();
            redirect_stdio_to_devnull();
            Ok(ReadyNotifier { fd: Some(wr) })
        }
    }
}

fn redirect_stdio_to_devnull() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let fd = null.as_raw_fd();
        for target in 0..=2 {
            // SAFETY: dup2 onto the standard descriptors; `fd` is valid for the
            // duration of the call and the targets are always-open std fds.
            unsafe {
                libc::dup2(fd, target);
            }
        }
    }
}

/// Runs a monitor loop in this process: forks a child that returns from this
/// function to run the daemon; restarts it after a crash signal (at most once
/// every 10 s after the first quick restart), exits when it exits normally.
pub fn monitor(ready: &mut ReadyNotifier) -> Result<(), String> {
    let mut last_start: Option<Instant> = None;
    loop {
        if let Some(t) = last_start {
            let since = t.elapsed();
            if since < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_secs(10) - since);
            }
        }
        last_start = Some(Instant::now());
        // SAFETY: the monitor is single-threaded (no runtime started yet).
        match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
            ForkResult::Child => return Ok(()),
            ForkResult::Parent { child } => loop {
                // Only the daemon reports start-up; the monitor's copy of the
                // pipe would keep a detaching parent waiting for EOF forever.
                ready.fd = None;
                match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => std::process::exit(code),
                    Ok(WaitStatus::Signaled(_, sig, _)) => {
                        if is_crash(sig) {
                            eprintln!("rvswitchd monitor: daemon died of {sig:?}, restarting");
                            break;
                        }
                        std::process::exit(128 + sig as i32);
                    }
                    Ok(_) => continue,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(format!("waitpid: {e}")),
                }
            },
        }
    }
}

fn is_crash(sig: Signal) -> bool {
    matches!(
        sig,
        Signal::SIGSEGV
            | Signal::SIGBUS
            | Signal::SIGILL
            | Signal::SIGFPE
            | Signal::SIGABRT
            | Signal::SIGSYS
            | Signal::SIGKILL
    )
}

/// A pidfile, write-locked (`fcntl` `F_SETLK`) while we live and removed
/// when dropped. The lock is what OVS's `lib/daemon-unix.c:read_pidfile()`
/// checks (an unlocked pidfile is stale), so `ovs-appctl` finds us through it.
pub struct Pidfile {
    path: PathBuf,
    /// Holds the lock: closing any descriptor of the file would release it.
    _file: std::fs::File,
}

impl Pidfile {
    /// Writes our pid, refusing when another live process holds the file.
    pub fn create(path: &Path) -> Result<Pidfile, String> {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                if u32::try_from(pid).ok() != Some(std::process::id())
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
                {
                    return Err(format!("{}: already running as pid {pid}", path.display()));
                }
            }
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| err(&e))?;
        // SAFETY: an all-zero flock is a valid value to fill in.
        let mut lock: libc::flock = unsafe { std::mem::zeroed() };
        // Both constants are small (1 and 0): the conversions cannot fail.
        lock.l_type = libc::c_short::try_from(libc::F_WRLCK).unwrap_or(1);
        lock.l_whence = libc::c_short::try_from(libc::SEEK_SET).unwrap_or(0);
        // SAFETY: F_SETLK on a descriptor we own with a fully initialised
        // struct flock (whole file, write lock); it does not block.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) } != 0 {
            return Err(err(&format!(
                "locked by another process ({})",
                std::io::Error::last_os_error()
            )));
        }
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| err(&e))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
