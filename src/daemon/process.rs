//! Daemonizing (as the seed's `daemonize` does): the parent forks and exits only
//! once the child reports a successful start through a pipe, so `rvswitchd
//! --detach` returning 0 means the switch is up; the optional monitor process
//! restarts the daemon after a crash signal, throttled.
//!
//! All forking happens before any thread is started (no actix system, no
//! logging thread yet), which keeps `fork` sound in a Rust process.

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe, setsid, ForkResult};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
                Ok(()) => "0".to_string(),
                Err(e) => format!("1{e}"),
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
            let mut f = std::fs::File::from(rd);
            let mut s = String::new();
            let _ = f.read_to_string(&mut s);
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

/// A pidfile removed when dropped.
pub struct Pidfile {
    path: PathBuf,
}

impl Pidfile {
    /// Writes our pid, refusing when another live process holds the file.
    pub fn create(path: &Path) -> Result<Pidfile, String> {
        if let Ok(s) = std::fs::read_to_string(path) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                if pid as u32 != std::process::id()
                    && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
                {
                    return Err(format!("{}: already running as pid {pid}", path.display()));
                }
            }
        }
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Pidfile {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
