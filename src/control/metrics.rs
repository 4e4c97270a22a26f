//! `/metrics`: the Prometheus text exposition format (version 0.0.4), encoded
//! by the Prometheus project's `prometheus-client` crate.
//!
//! Every source (actor meters, coverage counters, process figures, the
//! statistics sources the Daemon registers) writes samples into [`Families`],
//! a [`MetricSink`] that groups them by family whatever order they come in,
//! drops what would make the exposition invalid (a family seen with two types,
//! a repeated label set, a malformed name) and counts it. A one-shot
//! `Collector` then hands each family to the encoder once, with its HELP and
//! TYPE, so samples of one family are never interleaved with another's.
//! Runs on the HTTP thread; reads only atomics.

use crate::daemon::{fds, procfs};
use crate::util::coverage;
use crate::util::metrics::{registry, HistogramSnapshot, MetricKind, MetricSink};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::collections::{BTreeMap, HashSet};

/// The `Content-Type` of what [`metrics_text`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Histogram buckets are exported two log2 buckets at a time (bounds 4 ns,
/// 16 ns, ... 275 s): 20 series per histogram instead of 40, factor-4 resolution.
const HISTOGRAM_STEP: usize = 2;

#[derive(Debug)]
enum Value {
    Counter(u64),
    Gauge(f64),
    Histogram(Box<HistogramSnapshot>),
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: MetricKind,
    samples: Vec<(Vec<(String, String)>, Value)>,
    seen: HashSet<Vec<(String, String)>>,
}

/// Samples grouped by family, ready to encode.
#[derive(Debug, Default)]
pub struct Families {
    map: BTreeMap<String, Family>,
    /// Samples dropped because they would have made the exposition invalid.
    rejected: u64,
}

/// A valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`): other characters become
/// `_`, a leading digit gets a `_` before it.
fn metric_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`).
fn label_name(s: &str) -> String {
    let mut out = metric_name(s).replace(':', "_");
    while out.starts_with("__") {
        out.remove(0);
    }
    out
}

impl Families {
    /// Samples dropped so far (type conflicts, repeated label sets).
    pub fn rejected(&self) -> u64 {
        self.rejected
    }

    /// Number of families.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True with no family.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    fn add(&mut self, name: &str, help: &str, kind: MetricKind, labels: &[(&str, &str)], v: Value) {
        let mut name = metric_name(name);
        if kind == MetricKind::Counter {
            // The encoder appends `_total`; never let it double.
            if let Some(base) = name.strip_suffix("_total") {
                name = base.to_string();
            }
        }
        let labels: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (label_name(k), v.to_string()))
            .collect();
        let fam = self.map.entry(name).or_insert_with(|| Family {
            help: help.replace('\n', " "),
            kind,
            samples: Vec::new(),
            seen: HashSet::new(),
        });
        if fam.kind != kind || !fam.seen.insert(labels.clone()) {
            self.rejected += 1;
            return;
        }
        fam.samples.push((labels, v));
    }

    /// Encodes every family.
    pub fn encode(self) -> String {
        let mut reg = prometheus_client::registry::Registry::default();
        reg.register_collector(Box::new(OneShot(parking_lot::Mutex::new(Some(self)))));
        let mut out = String::new();
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &reg).is_err() {
            // Encoding into a String only fails if a metric's own encode does,
            // which ours never do; say so rather than serve half a document.
            return String::from("# encoding failed\n");
        }
        out
    }
}

impl MetricSink for Families {
    fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.add(
            name,
            help,
            MetricKind::Counter,
            labels,
            Value::Counter(value),
        );
    }
    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, help, MetricKind::Gauge, labels, Value::Gauge(value));
    }
    fn histogram(
        &mut self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        h: &HistogramSnapshot,
    ) {
        self.add(
            name,
            help,
            MetricKind::Histogram,
            labels,
            Value::Histogram(Box::new(*h)),
        );
    }
}

/// Hands the families to the encoder once (a collector is called per scrape,
/// and each scrape builds its own).
#[derive(Debug)]
struct OneShot(parking_lot::Mutex<Option<Families>>);

impl Collector for OneShot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(f) = self.0.lock().take() else {
            return Ok(());
        };
        for (name, fam) in &f.map {
            let ty = match fam.kind {
                MetricKind::Counter => MetricType::Counter,
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Histogram => MetricType::Histogram,
            };
            let mut me = encoder.encode_descriptor(name, &fam.help, None, ty)?;
            for (labels, v) in &fam.samples {
                let fe = me.encode_family(labels)?;
                match v {
                    Value::Counter(c) => ConstCounter::new(*c).encode(fe)?,
                    Value::Gauge(g) => ConstGauge::new(*g).encode(fe)?,
                    Value::Histogram(h) => {
                        let mut fe = fe;
                        fe.encode_histogram::<NoLabelSet>(
                            h.sum_ns as f64 / 1e9,
                            h.count(),
                            &h.grouped_seconds(HISTOGRAM_STEP),
                            None,
                        )?
                    }
                }
            }
        }
        Ok(())
    }
}

/// Process-wide families: memory, threads, descriptors, uptime, version.
fn export_process(out: &mut dyn MetricSink) {
    let p = procfs::status();
    let mut g = |name: &str, help: &str, v: Option<u64>| {
        if let Some(v) = v {
            out.gauge(name, help, &[], v as f64);
        }
    };
    g(
        "rvswitchd_process_resident_memory_bytes",
        "Resident set size of the daemon (VmRSS).",
        p.rss_bytes,
    );
    g(
        "rvswitchd_process_resident_memory_peak_bytes",
        "Peak resident set size of the daemon (VmHWM).",
        p.rss_peak_bytes,
    );
    g(
        "rvswitchd_process_threads",
        "Threads of the daemon.",
        p.threads,
    );
    g(
        "rvswitchd_process_open_fds",
        "File descriptors open (absent when none is free to count them).",
        fds::open_count(),
    );
    g(
        "rvswitchd_process_max_fds",
        "Soft RLIMIT_NOFILE in force (raised to the hard limit at start).",
        fds::limit().map(|l| l.soft),
    );
    g(
        "rvswitchd_process_reserved_fds",
        "Spare descriptors held for operator connections when all others are used.",
        u64::try_from(fds::reserved()).ok(),
    );
    out.gauge(
        "rvswitchd_process_uptime_seconds",
        "Seconds since the daemon started.",
        &[],
        registry().uptime_s(),
    );
    out.gauge(
        "rvswitchd_build_info",
        "Always 1; the version is in the label.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
}

/// Every family from every source.
pub fn collect() -> Families {
    let mut f = Families::default();
    export_process(&mut f);
    registry().export_actors(&mut f);
    crate::util::metrics::export_set(&mut f, "rvswitchd_coverage", &[], &coverage::snapshot());
    for (_, s) in registry().sources().iter() {
        s.export(&mut f);
    }
    let rejected = f.rejected();
    f.gauge(
        "rvswitchd_metrics_rejected_samples",
        "Samples left out of this scrape because they would have made it invalid (a bug: report it).",
        &[],
        rejected as f64,
    );
    f
}

/// The whole `/metrics` text.
pub fn metrics_text() -> String {
    collect().encode()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::metrics::Histogram;

    #[test]
    fn families_are_grouped_typed_and_deduplicated() {
        let mut f = Families::default();
        f.counter("x_events", "Events.", &[("bridge", "b\"1")], 3);
        f.gauge("y_depth", "Depth.", &[], 2.5);
        f.counter("x_events_total", "Events.", &[("bridge", "b2")], 4);
        // Same labels again, and a type clash: both refused and counted.
        f.counter("x_events", "Events.", &[("bridge", "b2")], 5);
        f.gauge("x_events", "Events.", &[("bridge", "b3")], 1.0);
        let h = Histogram::default();
        h.observe_ns(1500);
        f.histogram("z_seconds", "Latency.", &[("msg", "Ping")], &h.snapshot());
        assert_eq!(f.rejected(), 2);
        let text = f.encode();
        let lines: Vec<&str> = text.lines().collect();
        // One HELP and TYPE per family, before its samples, samples together.
        let first = lines
            .iter()
            .position(|l| l.starts_with("x_events_total{"))
            .expect("x");
        assert_eq!(lines[first - 1], "# TYPE x_events_total counter");
        assert!(
            lines[first + 1].starts_with("x_events_total{bridge=\"b2\"} 4"),
            "{text}"
        );
        assert!(
            text.contains("x_events_total{bridge=\"b\\\"1\"} 3"),
            "{text}"
        );
        assert!(text.contains("# TYPE y_depth gauge\ny_depth 2.5"), "{text}");
        assert!(text.contains("# TYPE z_seconds histogram"), "{text}");
        assert!(
            text.contains("z_seconds_bucket{msg=\"Ping\",le=\"+Inf\"} 1"),
            "{text}"
        );
        assert!(text.contains("z_seconds_count{msg=\"Ping\"} 1"), "{text}");
        assert_eq!(text.matches("# TYPE x_events_total").count(), 1);
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(
            metric_name("rvswitchd_datapath_br-0"),
            "rvswitchd_datapath_br_0"
        );
        assert_eq!(metric_name("9lives"), "_9lives");
        assert_eq!(label_name("__x"), "_x");
        assert_eq!(label_name("a:b"), "a_b");
    }

    #[test]
    fn the_whole_document_has_types_for_every_family() {
        procfs::init();
        let text = metrics_text();
        let mut typed = HashSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or("");
                assert!(typed.insert(name.to_string()), "second TYPE for {name}");
            } else if !l.starts_with('#') && !l.is_empty() {
                let name = l.split(['{', ' ']).next().unwrap_or("");
                let fam = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| typed.contains(*b)))
                    .unwrap_or(name);
                assert!(typed.contains(fam), "sample {name} without TYPE:\n{text}");
            }
        }
        assert!(
            typed.contains("rvswitchd_coverage_config_reload_total"),
            "{text}"
        );
        assert!(typed.contains("rvswitchd_process_uptime_seconds"));
    }
}
