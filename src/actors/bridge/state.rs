//! A bridge's state file, the I/O half (what the bytes mean, and how they are
//! checked and restored, is `ofproto::persist`; reading and writing files is
//! `daemon::statefile`). The Bridge actor decides when: it restores before
//! its connection manager opens any listener or controller connection, and
//! saves a published snapshot at most once per `[daemon] state_save_ms`
//! after its tables change, encoding and writing on a blocking thread (the
//! snapshot is immutable, so the bridge goes on meanwhile), and once more at
//! a clean shutdown.
//!
//! Writes to one file are serialised by a lock that also remembers the
//! newest version written: a slow background write that finishes after a
//! newer one, or after the shutdown save, is dropped instead of renaming an
//! older table over a newer one.

use crate::config::BridgeConfig;
use crate::daemon::statefile::{self, ReadError};
use crate::messages::bridge::BridgeShared;
use crate::ofproto::persist::{self, RefusedReason, StateMeta, MAX_STATE_BYTES};
use crate::ofproto::request::{Effects, Requests};
use crate::ofproto::TablesSnapshot;
use crate::util::time::{now_ms, wall_secs};
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

/// What the writers share.
#[derive(Debug, Default)]
struct Written {
    /// Newest tables version written (0: none yet).
    version: u64,
    /// No more writes (shutdown saved last, or the bridge was deleted).
    closed: bool,
}

/// One bridge's state file.
pub struct StateFile {
    bridge: String,
    path: PathBuf,
    meta: StateMeta,
    shared: Arc<BridgeShared>,
    written: Arc<Mutex<Written>>,
    /// Version handed to the last save started (0: none).
    queued_version: u64,
    /// A background save is running.
    running: bool,
    /// When the last save started ([`now_ms`]).
    last_start_ms: u64,
    /// Saves start at most this often.
    every_ms: u64,
}

/// What a save wrote, for the log.
fn summary(path: &Path, e: &persist::Encoded) -> String {
    let mut s = format!(
        "{} rules, {} groups, {} meters ({} bytes) to {}",
        e.rules,
        e.groups,
        e.meters,
        e.bytes.len(),
        path.display()
    );
    if e.expired > 0 {
        s.push_str(&format!(
            "; {} rules past their hard timeout left out",
            e.expired
        ));
    }
    if e.unencodable > 0 {
        s.push_str(&format!("; {} entries did not encode", e.unencodable));
    }
    s
}

/// Encodes and writes `snap` unless a newer version was written or writing
/// is closed; `close` closes it after. `Ok(None)`: nothing to do.
fn write(
    written: &Mutex<Written>,
    path: &Path,
    meta: &StateMeta,
    snap: &TablesSnapshot,
    shared: &BridgeShared,
    close: bool,
) -> Result<Option<String>, String> {
    let mut w = written.lock();
    if w.closed || (w.version != 0 && snap.version < w.version) {
        return Ok(None);
    }
    let e = persist::encode(snap, meta, now_ms(), wall_secs());
    let result = if e.bytes.len() as u64 > MAX_STATE_BYTES {
        Err(format!(
            "{} bytes is larger than the {MAX_STATE_BYTES}-byte limit; not written",
            e.bytes.len()
        ))
    } else {
        path.parent()
            .map_or(Ok(()), statefile::ensure_dir)
            .and_then(|()| statefile::write_atomic(path, &e.bytes))
            .map_err(|err| format!("{}: {err}", path.display()))
    };
    if close {
        w.closed = true;
    }
    match result {
        Ok(()) => {
            w.version = snap.version;
            shared.state.saves.fetch_add(1, Relaxed);
            Ok(Some(summary(path, &e)))
        }
        Err(err) => {
            shared.state.save_failures.fetch_add(1, Relaxed);
            Err(err)
        }
    }
}

impl StateFile {
    /// The state file of bridge `cfg` in `dir`, saved at most every
    /// `every_ms`.
    pub fn new(cfg: &BridgeConfig, dir: &Path, every_ms: u64, shared: Arc<BridgeShared>) -> Self {
        StateFile {
            bridge: cfg.name.clone(),
            path: cfg.state_path(dir),
            meta: StateMeta {
                daemon_version: env!("CARGO_PKG_VERSION").to_string(),
                fingerprint: cfg.state_fingerprint(),
            },
            shared,
            written: Arc::default(),
            queued_version: 0,
            running: false,
            last_start_ms: 0,
            every_ms,
        }
    }

    /// The configuration changed (ports, datapath id): later saves carry
    /// the new fingerprint, and one is due even if the tables did not change.
    pub fn reconfigured(&mut self, cfg: &BridgeConfig) {
        let fp = cfg.state_fingerprint();
        if fp != self.meta.fingerprint {
            self.meta.fingerprint = fp;
            self.resave();
        }
    }

    /// Saving was turned (back) on: one is due even if the tables did not
    /// change.
    pub fn resave(&mut self) {
        self.queued_version = 0;
        self.written.lock().version = 0;
    }

    /// Restores the file into the switch through `rq` (see
    /// [`persist::restore`]); the caller applies `fx` and publishes. A file
    /// that is missing, unreadable or refused leaves the tables as they are,
    /// with a warning and a count (a missing one only with an info line).
    pub fn restore(&self, rq: &mut Requests<'_>, fx: &mut Effects) {
        let c = &self.shared.state;
        let (b, p) = (&self.bridge, self.path.display());
        let bytes = match statefile::read_bounded(&self.path, MAX_STATE_BYTES) {
            Ok(bytes) => bytes,
            Err(ReadError::Missing) => {
                tracing::info!("bridge {b}: no state file at {p}; tables start empty");
                return;
            }
            Err(e) => {
                match e {
                    ReadError::TooLarge { .. } => &c.files_ignored_corrupt,
                    _ => &c.files_ignored_unreadable,
                }
                .fetch_add(1, Relaxed);
                tracing::warn!("bridge {b}: state file {p} ignored: {e}; tables start empty");
                return;
            }
        };
        let saved = match persist::decode(&bytes, &self.meta) {
            Ok(s) => s,
            Err(e) => {
                match e.reason() {
                    RefusedReason::Corrupt => &c.files_ignored_corrupt,
                    RefusedReason::Version => &c.files_ignored_version,
                    RefusedReason::Config => &c.files_ignored_config,
                }
                .fetch_add(1, Relaxed);
                tracing::warn!("bridge {b}: state file {p} ignored: {e}; tables start empty");
                return;
            }
        };
        let r = persist::restore(rq, &saved, now_ms(), fx);
        c.rules_restored.fetch_add(r.rules as u64, Relaxed);
        c.groups_restored.fetch_add(r.groups as u64, Relaxed);
        c.meters_restored.fetch_add(r.meters as u64, Relaxed);
        c.entries_refused.fetch_add(r.refused as u64, Relaxed);
        let age = wall_secs().saturating_sub(saved.saved_wall_secs);
        tracing::info!(
            "bridge {b}: restored {} rules, {} groups, {} meters from {p} (saved {age} s ago)",
            r.rules,
            r.groups,
            r.meters
        );
        if r.refused > 0 {
            tracing::warn!(
                "bridge {b}: {} entries of {p} refused when restored: {}",
                r.refused,
                r.refusals.join("; ")
            );
        }
    }

    /// Restoring is off: delete the file, so that turning it on later
    /// cannot bring back stale tables.
    pub fn forget(&self) {
        let _w = self.written.lock();
        match statefile::remove(&self.path) {
            Ok(true) => tracing::info!(
                "bridge {}: restore_flows is off: deleted state file {}",
                self.bridge,
                self.path.display()
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                "bridge {}: cannot delete state file {}: {e}",
                self.bridge,
                self.path.display()
            ),
        }
    }

    /// The bridge is deleted: no more writes, and the file goes.
    pub fn delete(&self) {
        self.written.lock().closed = true;
        if let Ok(true) = statefile::remove(&self.path) {
            tracing::info!(
                "bridge {}: deleted state file {}",
                self.bridge,
                self.path.display()
            );
        }
    }

    /// Whether a background save of tables at `version` should start now.
    pub fn due(&self, version: u64, now: u64) -> bool {
        !self.running
            && version != self.queued_version
            && now.saturating_sub(self.last_start_ms) >= self.every_ms
    }

    /// Starts a background save of `snap`; the future ends when it has been
    /// written (or refused, logged), and the caller then calls
    /// [`StateFile::finished`].
    pub fn save_in_background(
        &mut self,
        snap: Arc<TablesSnapshot>,
    ) -> impl std::future::Future<Output = ()> + 'static {
        self.running = true;
        self.queued_version = snap.version;
        self.last_start_ms = now_ms();
        let written = self.written.clone();
        let path = self.path.clone();
        let meta = self.meta.clone();
        let shared = self.shared.clone();
        let bridge = self.bridge.clone();
        let job = tokio::task::spawn_blocking(move || {
            match write(&written, &path, &meta, &snap, &shared, false) {
                Ok(Some(s)) => tracing::debug!("bridge {bridge}: state saved: {s}"),
                Ok(None) => {}
                Err(e) => tracing::warn!("bridge {bridge}: state not saved: {e}"),
            }
        });
        async move {
            if let Err(e) = job.await {
                tracing::warn!("state writer failed: {e}");
            }
        }
    }

    /// The background save ended.
    pub fn finished(&mut self) {
        self.running = false;
    }

    /// Writes `snap` now, on this thread, and closes the file to later
    /// writes (clean shutdown). Returns the log line.
    pub fn save_final(&self, snap: &TablesSnapshot) -> Result<String, String> {
        let r = write(
            &self.written,
            &self.path,
            &self.meta,
            snap,
            &self.shared,
            true,
        );
        match r {
            Ok(Some(s)) => {
                tracing::info!("bridge {}: state saved: {s}", self.bridge);
                Ok(s)
            }
            Ok(None) => Ok(format!("{}: nothing to write", self.path.display())),
            Err(e) => {
                tracing::warn!("bridge {}: state not saved: {e}", self.bridge);
                Err(e)
            }
        }
    }
}
