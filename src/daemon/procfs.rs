//! Process figures from `/proc/self/status` (resident memory, peak, threads).
//!
//! The file is opened once and re-read from offset 0 with `pread` on every
//! call, so `/stats`, `/metrics` and `memory/show` keep answering with real
//! figures when a flood has used every free descriptor. Any thread may call
//! it; the descriptor is shared read-only (`pread` does not move an offset).

use std::os::unix::fs::FileExt;
use std::sync::OnceLock;

/// The figures; `None` when `/proc` could not be read (never a made-up 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProcStatus {
    /// Resident set size, bytes (`VmRSS`).
    pub rss_bytes: Option<u64>,
    /// Peak resident set size, bytes (`VmHWM`).
    pub rss_peak_bytes: Option<u64>,
    /// Threads (`Threads`).
    pub threads: Option<u64>,
}

/// Largest `/proc/self/status` we read (it is about 1.5 KiB).
const STATUS_MAX: usize = 16 * 1024;

fn status_file() -> Option<&'static std::fs::File> {
    static F: OnceLock<Option<std::fs::File>> = OnceLock::new();
    F.get_or_init(|| std::fs::File::open("/proc/self/status").ok())
        .as_ref()
}

/// Opens the status file now, so later reads need no new descriptor. Call
/// once at start-up.
pub fn init() {
    let _ = status_file();
}

/// Reads the figures.
pub fn status() -> ProcStatus {
    let Some(f) = status_file() else {
        return ProcStatus::default();
    };
    let mut buf = vec![0u8; STATUS_MAX];
    let n = match f.read_at(&mut buf, 0) {
        Ok(n) => n,
        Err(_) => return ProcStatus::default(),
    };
    parse_status(&String::from_utf8_lossy(&buf[..n]))
}

/// Parses the `Name:\tvalue [kB]` lines we use.
fn parse_status(text: &str) -> ProcStatus {
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    ProcStatus {
        rss_bytes: field("VmRSS:").map(|k: u64| k.saturating_mul(1024)),
        rss_peak_bytes: field("VmHWM:").map(|k: u64| k.saturating_mul(1024)),
        threads: field("Threads:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reads_twice() {
        let p = parse_status("Name:\tx\nVmHWM:\t  200 kB\nVmRSS:\t 100 kB\nThreads:\t7\n");
        assert_eq!(p.rss_bytes, Some(102_400));
        assert_eq!(p.rss_peak_bytes, Some(204_800));
        assert_eq!(p.threads, Some(7));
        assert_eq!(parse_status("").threads, None);
        init();
        let a = status();
        let b = status();
        assert!(a.rss_bytes.unwrap_or(0) > 0 && b.rss_bytes.unwrap_or(0) > 0);
        assert!(b.threads.unwrap_or(0) >= 1);
    }
}
