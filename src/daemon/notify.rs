//! The systemd notification protocol (`sd_notify(3)`), written by hand: one
//! datagram of `KEY=VALUE` lines to the unix socket named by `NOTIFY_SOCKET`
//! (a path, or `@name` for the abstract namespace).
//!
//! [`init`] reads and removes `NOTIFY_SOCKET`, `WATCHDOG_USEC` and
//! `WATCHDOG_PID` at start (before any thread exists, so that no child
//! inherits them, as `sd_notify(unset_environment=1)` does); then any thread
//! may call [`notify`]. Without `NOTIFY_SOCKET` every call does nothing.

use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::time::Duration;

struct Notifier {
    socket: UnixDatagram,
    target: std::os::unix::net::SocketAddr,
    watchdog: Option<Duration>,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

/// Reads the environment once. Returns a description of the setup for the
/// log, or why `NOTIFY_SOCKET` could not be used.
pub fn init() -> Result<Option<String>, String> {
    let mut result = Ok(None);
    NOTIFIER.get_or_init(|| {
        let sock = std::env::var_os("NOTIFY_SOCKET");
        let wd_usec = std::env::var("WATCHDOG_USEC").ok();
        let wd_pid = std::env::var("WATCHDOG_PID").ok();
        for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            std::env::remove_var(k);
        }
        let sock = sock?;
        // The watchdog is for us only if WATCHDOG_PID is absent or our pid.
        let ours = wd_pid
            .as_deref()
            .is_none_or(|p| p.parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = wd_usec
            .and_then(|u| u.parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(Duration::from_micros);
        match open(&sock) {
            Ok((socket, target)) => {
                result = Ok(Some(format!(
                    "systemd notification to {}{}",
                    sock.to_string_lossy(),
                    watchdog
                        .map(|w| format!(", watchdog every {} ms", w.as_millis() / 2))
                        .unwrap_or_default()
                )));
                Some(Notifier {
                    socket,
                    target,
                    watchdog,
                })
            }
            Err(e) => {
                result = Err(format!("NOTIFY_SOCKET={}: {e}", sock.to_string_lossy()));
                None
            }
        }
    });
    result
}

fn open(sock: &std::ffi::OsStr) -> std::io::Result<(UnixDatagram, std::os::unix::net::SocketAddr)> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = sock.as_bytes();
    let target = match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)?
        }
        None if bytes.first() == Some(&b'/') => {
            std::os::unix::net::SocketAddr::from_pathname(std::path::Path::new(sock))?
        }
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "neither an absolute path nor @abstract",
            ))
        }
    };
    Ok((UnixDatagram::unbound()?, target))
}

/// Sends `state` (newline-separated `KEY=VALUE` assignments); false when
/// there is no socket or the send failed.
pub fn notify(state: &str) -> bool {
    match NOTIFIER.get().and_then(Option::as_ref) {
        Some(n) => n.socket.send_to_addr(state.as_bytes(), &n.target).is_ok(),
        None => false,
    }
}

/// Whether a notification socket is in use.
pub fn enabled() -> bool {
    NOTIFIER.get().is_some_and(Option::is_some)
}

/// How often to send `WATCHDOG=1`: half the interval systemd asked for
/// (`sd_watchdog_enabled(3)` recommends that), or None without a watchdog.
pub fn watchdog_period() -> Option<Duration> {
    NOTIFIER
        .get()
        .and_then(Option::as_ref)
        .and_then(|n| n.watchdog)
        .map(|w| w / 2)
}

/// A `STATUS=` value: one line, no control characters.
pub fn status_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        let (tx, target) = open(path.as_os_str()).unwrap();
        tx.send_to_addr(b"READY=1", &target).unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(open(std::ffi::OsStr::new("relative")).is_err());
        assert!(open(std::ffi::OsStr::new("@rvswitchd-test-abstract")).is_ok());
        assert_eq!(status_line("a\nb"), "a b");
    }
}
