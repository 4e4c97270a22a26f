//! Monotonic milliseconds shared by every thread, so that "last used" times written
//! by poll threads compare directly with idle deadlines computed by revalidators.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the first call in this process (monotonic). Starts at 1 so that
/// 0 can mean "never".
pub fn now_ms() -> u64 {
    let e = EPOCH.get_or_init(Instant::now);
    e.elapsed().as_millis() as u64 + 1
}

/// Seconds of wall-clock time since the Unix epoch (for logs and FLOW_REMOVED math).
pub fn wall_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
