//! Token-bucket meters (OpenFlow 1.3 meters) for the `Meter` datapath action.
//!
//! Each poll thread owns its own [`MeterTable`], configured by `SetMeter`/`DelMeter`
//! ops, so applying a meter takes no lock. The consequence (documented limit): with
//! several poll threads each thread has its own buckets, so a meter hit from `n`
//! threads admits up to `n` times its rate. With the default single thread the
//! rate is exact. The counters ([`MeterCounters`]) are shared atomics, created by the
//! control side and handed to every thread, so statistics are global.
//!
//! Bucket arithmetic is integer-only: a band of rate `r` gains `elapsed_ns * r`
//! tokens, where one token is 10⁻⁶ bit for kb/s meters and 10⁻⁹ packet for
//! packet/s meters; this makes both refills the same multiplication.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// What a meter's rates count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterUnit {
    /// Kilobits per second (bursts in kilobits).
    Kbps,
    /// Packets per second (bursts in packets).
    Pktps,
}

/// What happens to a packet that exceeds a band.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandKind {
    /// Drop it.
    Drop,
    /// Raise the drop precedence of an AF DSCP codepoint by `prec_level`
    /// (non-AF codepoints are left alone; precedence saturates at 3).
    DscpRemark {
        /// Levels to add.
        prec_level: u8,
    },
}

/// One band of a meter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DpMeterBand {
    /// Action on exceeding packets.
    pub kind: BandKind,
    /// Rate in the meter's unit per second.
    pub rate: u32,
    /// Bucket depth in kilobits or packets; 0 means "one second at `rate`".
    pub burst_size: u32,
}

/// A meter's configuration, as METER_MOD gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpMeterConfig {
    /// Unit of rates and bursts.
    pub unit: MeterUnit,
    /// Bands; the highest-rate band that a packet exceeds applies.
    pub bands: Vec<DpMeterBand>,
}

/// One meter as the control side holds it: what every poll thread's table
/// must contain.
#[derive(Clone, Debug)]
pub struct MeterSpec {
    /// Meter id.
    pub id: u32,
    /// Its bands.
    pub config: DpMeterConfig,
    /// Its counters (shared by every thread; a new `Arc` means a new configuration).
    pub stats: Arc<MeterCounters>,
}

/// Shared counters of one meter (all poll threads add to the same atomics).
#[derive(Debug)]
pub struct MeterCounters {
    /// Packets that went through the meter.
    pub packets_in: AtomicU64,
    /// Bytes of those packets.
    pub bytes_in: AtomicU64,
    /// Per band (config order): packets the band applied to.
    pub band_packets: Box<[AtomicU64]>,
    /// Per band: bytes the band applied to.
    pub band_bytes: Box<[AtomicU64]>,
}

/// A copy of [`MeterCounters`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeterCountersSnapshot {
    /// Packets in.
    pub packets_in: u64,
    /// Bytes in.
    pub bytes_in: u64,
    /// `(packets, bytes)` per band.
    pub bands: Vec<(u64, u64)>,
}

impl MeterCounters {
    /// Zeroed counters for `n_bands` bands.
    pub fn new(n_bands: usize) -> MeterCounters {
        MeterCounters {
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            band_packets: (0..n_bands).map(|_| AtomicU64::new(0)).collect(),
            band_bytes: (0..n_bands).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Reads all counters.
    pub fn snapshot(&self) -> MeterCountersSnapshot {
        MeterCountersSnapshot {
            packets_in: self.packets_in.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bands: self
                .band_packets
                .iter()
                .zip(self.band_bytes.iter())
                .map(|(p, b)| (p.load(Ordering::Relaxed), b.load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

/// What the meter decided for one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeterVerdict {
    /// Within every band's rate (or no such meter).
    Pass,
    /// A drop band applied.
    Drop,
    /// A DSCP remark band applied.
    Remark {
        /// Drop-precedence levels to add.
        prec_level: u8,
    },
}

struct BandState {
    band: DpMeterBand,
    capacity: u64,
    tokens: u64,
}

struct Meter {
    unit: MeterUnit,
    bands: Vec<BandState>,
    last_ns: u64,
    stats: Arc<MeterCounters>,
}

/// A poll thread's meters, keyed by meter id.
#[derive(Default)]
pub struct MeterTable {
    meters: hashbrown::HashMap<u32, Meter>,
}

/// Nanoseconds on a process-wide monotonic clock (meters only compare differences).
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

impl MeterTable {
    /// An empty table.
    pub fn new() -> MeterTable {
        MeterTable::default()
    }

    /// Adds or replaces meter `id`; buckets start full.
    pub fn set(&mut self, id: u32, config: &DpMeterConfig, stats: Arc<MeterCounters>, now_ns: u64) {
        let bands = config
            .bands
            .iter()
            .map(|b| {
                let burst = if b.burst_size == 0 {
                    b.rate
                } else {
                    b.burst_size
                } as u64;
                let capacity = burst.saturating_mul(match config.unit {
                    MeterUnit::Kbps => 1_000 * 1_000_000,
                    MeterUnit::Pktps => 1_000_000_000,
                });
                BandState {
                    band: *b,
                    capacity,
                    tokens: capacity,
                }
            })
            .collect();
        self.meters.insert(
            id,
            Meter {
                unit: config.unit,
                bands,
                last_ns: now_ns,
                stats,
            },
        );
    }

    /// Makes the table exactly `meters` (the control side's whole meter set,
    /// sent when a thread missed updates). Meters whose counters are the same
    /// `Arc` as before are the same configuration and keep their buckets;
    /// the others start over, and meters not listed are removed.
    pub fn sync(&mut self, meters: &[MeterSpec], now_ns: u64) {
        self.meters.retain(|id, m| {
            meters
                .iter()
                .any(|s| s.id == *id && Arc::ptr_eq(&s.stats, &m.stats))
        });
        for s in meters {
            if !self.meters.contains_key(&s.id) {
                self.set(s.id, &s.config, s.stats.clone(), now_ns);
            }
        }
    }

    /// Removes meter `id`; packets sent to it afterwards pass unmetered.
    pub fn remove(&mut self, id: u32) -> bool {
        self.meters.remove(&id).is_some()
    }

    /// Number of meters.
    pub fn len(&self) -> usize {
        self.meters.len()
    }

    /// True when no meter is configured.
    pub fn is_empty(&self) -> bool {
        self.meters.is_empty()
    }

    /// Runs one packet of `len` bytes through meter `id` at time `now_ns`.
    pub fn apply(&mut self, id: u32, len: usize, now_ns: u64) -> MeterVerdict {
        let Some(m) = self.meters.get_mut(&id) else {
            return MeterVerdict::Pass;
        };
        let elapsed = now_ns.saturating_sub(m.last_ns) as u128;
        m.last_ns = m.last_ns.max(now_ns);
        let cost: u64 = match m.unit {
            MeterUnit::Kbps => (len as u64) * 8 * 1_000_000,
            MeterUnit::Pktps => 1_000_000_000,
        };
        m.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        m.stats.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
        // The exceeded band with the highest rate applies.
        let mut best: Option<(usize, u32)> = None;
        for (i, b) in m.bands.iter_mut().enumerate() {
            let refill = elapsed.saturating_mul(b.band.rate as u128);
            b.tokens = (b.tokens as u128 + refill).min(b.capacity as u128) as u64;
            if b.tokens >= cost {
                b.tokens -= cost;
            } else if best.is_none_or(|(_, r)| r < b.band.rate) {
                best = Some((i, b.band.rate));
            }
        }
        let Some((i, _)) = best else {
            return MeterVerdict::Pass;
        };
        if let Some(p) = m.stats.band_packets.get(i) {
            p.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(b) = m.stats.band_bytes.get(i) {
            b.fetch_add(len as u64, Ordering::Relaxed);
        }
        match m.bands[i].band.kind {
            BandKind::Drop => MeterVerdict::Drop,
            BandKind::DscpRemark { prec_level } => MeterVerdict::Remark { prec_level },
        }
    }
}

/// Applies a DSCP remark to a DSCP value: for AF codepoints (class 1-4, drop
/// precedence 1-3) the precedence rises by `prec_level`, saturating at 3.
pub fn remark_dscp(dscp: u8, prec_level: u8) -> u8 {
    let class = dscp >> 3;
    let prec = (dscp >> 1) & 3;
    if (1..=4).contains(&class) && (1..=3).contains(&prec) && dscp & 1 == 0 {
        let p = (prec as u16 + prec_level as u16).min(3) as u8;
        (class << 3) | (p << 1)
    } else {
        dscp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_keeps_unchanged_meters_and_replaces_the_rest() {
        let band = DpMeterBand {
            kind: BandKind::Drop,
            rate: 1,
            burst_size: 1,
        };
        let spec = |id, stats: &Arc<MeterCounters>| MeterSpec {
            id,
            config: DpMeterConfig {
                unit: MeterUnit::Pktps,
                bands: vec![band],
            },
            stats: stats.clone(),
        };
        let (a, b, c) = (
            Arc::new(MeterCounters::new(1)),
            Arc::new(MeterCounters::new(1)),
            Arc::new(MeterCounters::new(1)),
        );
        let mut t = MeterTable::new();
        t.sync(&[spec(1, &a), spec(2, &b)], 0);
        assert_eq!(t.len(), 2);
        // Meter 1 spends its one-packet bucket.
        assert_eq!(t.apply(1, 64, 0), MeterVerdict::Pass);
        assert_eq!(t.apply(1, 64, 0), MeterVerdict::Drop);
        // Sync: 1 unchanged (bucket stays empty), 2 gone, 3 new.
        t.sync(&[spec(1, &a), spec(3, &c)], 0);
        assert_eq!(t.len(), 2);
        assert_eq!(t.apply(1, 64, 0), MeterVerdict::Drop);
        assert_eq!(
            t.apply(2, 64, 0),
            MeterVerdict::Pass,
            "no meter 2: unmetered"
        );
        assert_eq!(b.snapshot().packets_in, 0);
        assert_eq!(t.apply(3, 64, 0), MeterVerdict::Pass);
        // A new configuration of meter 1 (new counters) starts over.
        let a2 = Arc::new(MeterCounters::new(1));
        t.sync(&[spec(1, &a2)], 0);
        assert_eq!(t.apply(1, 64, 0), MeterVerdict::Pass);
    }

    fn table(unit: MeterUnit, bands: Vec<DpMeterBand>) -> (MeterTable, Arc<MeterCounters>) {
        let mut t = MeterTable::new();
        let s = Arc::new(MeterCounters::new(bands.len()));
        t.set(1, &DpMeterConfig { unit, bands }, s.clone(), 0);
        (t, s)
    }

    #[test]
    fn pps_drop_band_limits_burst_and_refills() {
        let (mut t, s) = table(
            MeterUnit::Pktps,
            vec![DpMeterBand {
                kind: BandKind::Drop,
                rate: 10,
                burst_size: 5,
            }],
        );
        let mut passed = 0;
        for _ in 0..20 {
            if t.apply(1, 100, 0) == MeterVerdict::Pass {
                passed += 1;
            }
        }
        assert_eq!(passed, 5, "burst of 5 packets at t=0");
        // 1 s later, 10 more tokens but capped at burst 5.
        let mut later = 0;
        for _ in 0..20 {
            if t.apply(1, 100, 1_000_000_000) == MeterVerdict::Pass {
                later += 1;
            }
        }
        assert_eq!(later, 5);
        let snap = s.snapshot();
        assert_eq!(snap.packets_in, 40);
        assert_eq!(snap.bands[0].0, 30);
        assert_eq!(
            t.apply(2, 100, 0),
            MeterVerdict::Pass,
            "unknown meter passes"
        );
    }

    #[test]
    fn kbps_highest_exceeded_band_wins() {
        let (mut t, _) = table(
            MeterUnit::Kbps,
            vec![
                DpMeterBand {
                    kind: BandKind::DscpRemark { prec_level: 1 },
                    rate: 8,
                    burst_size: 8,
                },
                DpMeterBand {
                    kind: BandKind::Drop,
                    rate: 16,
                    burst_size: 16,
                },
            ],
        );
        // 1000-byte packets = 8 kbit each. Band 0 holds one, band 1 holds two.
        assert_eq!(t.apply(1, 1000, 0), MeterVerdict::Pass);
        assert_eq!(t.apply(1, 1000, 0), MeterVerdict::Remark { prec_level: 1 });
        assert_eq!(t.apply(1, 1000, 0), MeterVerdict::Drop);
        assert!(t.remove(1));
        assert!(t.is_empty());
    }

    #[test]
    fn dscp_remark_only_touches_af() {
        assert_eq!(remark_dscp(10, 1), 12); // AF11 -> AF12
        assert_eq!(remark_dscp(12, 5), 14); // AF12 -> AF13 (saturates)
        assert_eq!(remark_dscp(46, 1), 46); // EF unchanged
        assert_eq!(remark_dscp(0, 2), 0);
    }
}
