//! Texts of the daemon-level control commands (`config/show`, the reload
//! reply, `memory/show`, `coverage/show`, `upcall/show`), made from the plain
//! data the Daemon answers with. Pure functions, tested here. Figures that
//! could not be measured are left out, never printed as 0.

use crate::daemon::fds::FdLimit;
use crate::daemon::procfs::ProcStatus;
use crate::messages::daemon::{ApplyReport, ConfigView, Inventory, ReloadOrigin, UpcallView};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// `YYYY-MM-DDTHH:MM:SSZ` for a time after 1970 (civil-from-days, proleptic
/// Gregorian calendar).
pub fn utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Days since 1970-01-01 to year/month/day (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `config/show`: where the running configuration came from (as TOML
/// comments, so the output is still a valid file), then the configuration.
pub fn config_show(v: &ConfigView) -> String {
    let mut s = String::new();
    match (&v.source, &v.applied) {
        (Some(p), None) => {
            let _ = writeln!(s, "# in force: {} (read at start)", p.display());
        }
        (Some(p), Some((t, origin))) => {
            let how = match origin {
                ReloadOrigin::Signal => "SIGHUP",
                ReloadOrigin::Control => "config/reload",
            };
            let _ = writeln!(
                s,
                "# in force: {} (applied by {how} at {})",
                p.display(),
                utc(*t)
            );
        }
        (None, _) => s.push_str("# in force: built from command-line flags (no file)\n"),
    }
    match &v.startup {
        Some(p) if Some(p) != v.source.as_ref() => {
            let _ = writeln!(
                s,
                "# not the start-up file: SIGHUP and config/reload re-read {}",
                p.display()
            );
        }
        Some(p) => {
            let _ = writeln!(s, "# SIGHUP and config/reload re-read {}", p.display());
        }
        None => s.push_str("# SIGHUP has no file to re-read\n"),
    }
    s.push_str(&toml::to_string_pretty(&v.cfg).unwrap_or_default());
    s
}

/// The reply to a reload: what was applied and what needs a restart; any
/// failure makes the whole reply an error (so `ovs-appctl` exits non-zero),
/// still listing what was applied.
pub fn reload_result(r: &ApplyReport) -> Result<String, String> {
    let mut s = String::new();
    if r.applied.is_empty() && r.failed.is_empty() && r.needs_restart.is_empty() {
        s.push_str("configuration unchanged\n");
    } else if r.ok() {
        s.push_str("configuration reloaded:\n");
    } else {
        s.push_str("configuration reloaded with failures:\n");
    }
    for a in &r.applied {
        let _ = writeln!(s, "  {a}");
    }
    for f in &r.failed {
        let _ = writeln!(s, "  FAILED: {}: {}", f.what, f.error);
    }
    for k in &r.needs_restart {
        let _ = writeln!(s, "  {k} changes only after a restart");
    }
    if r.ok() {
        Ok(s)
    } else {
        Err(s)
    }
}

/// `memory/show`.
pub fn memory_show(
    p: &ProcStatus,
    inv: &Inventory,
    open_fds: Option<u64>,
    limit: Option<FdLimit>,
) -> String {
    let mut s = String::new();
    if let Some(v) = p.rss_bytes {
        let _ = write!(s, "rss:{}kB ", v / 1024);
    }
    if let Some(v) = p.rss_peak_bytes {
        let _ = write!(s, "peak:{}kB ", v / 1024);
    }
    if let Some(v) = p.threads {
        let _ = write!(s, "threads:{v} ");
    }
    match (open_fds, limit) {
        (Some(o), Some(l)) => {
            let _ = write!(s, "fds:{o}/{} ", l.soft);
        }
        (None, Some(l)) => {
            let _ = write!(s, "fd-limit:{} ", l.soft);
        }
        (Some(o), None) => {
            let _ = write!(s, "fds:{o} ");
        }
        (None, None) => {}
    }
    let _ = writeln!(
        s,
        "bridges:{} ports:{} rules:{} datapath-flows:{} ukeys:{}",
        inv.bridges, inv.ports, inv.rules, inv.datapath_flows, inv.ukeys
    );
    s
}

/// `coverage/show`.
pub fn coverage_show(all: &[(&str, u64)]) -> String {
    let mut s = String::from("Event coverage (totals since start):\n");
    for (k, v) in all {
        let _ = writeln!(s, "{k:<28} total: {v}");
    }
    s
}

/// `upcall/show`, in the layout of OVS's `ofproto-dpif-upcall.c:upcall_unixctl_show()`.
pub fn upcall_show(v: &UpcallView) -> String {
    let r = &v.leader;
    let g = |p: &str| r.pointer(p).cloned().unwrap_or(serde_json::Value::Null);
    let mut s = String::from("rvswitchd@userspace:\n");
    let _ = writeln!(
        s,
        "  flows         : (current {}) (avg {}) (max {}) (limit {})",
        g("/flows/current"),
        g("/flows/average"),
        g("/flows/maximum"),
        g("/flow_limit")
    );
    let _ = writeln!(s, "  dump duration : {}ms", g("/last_round_ms"));
    let _ = write!(
        s,
        "  flow limit    : {} (configured {})",
        g("/flow_limit"),
        g("/flow_limit_configured")
    );
    match r.get("flow_limit_last_change") {
        Some(ch) if !ch.is_null() => {
            let ago = ch["ago_ms"].as_u64().map(|ms| ms as f64 / 1000.0);
            let _ = writeln!(
                s,
                ", last changed {} from {} to {}: {}",
                ago.map(|a| format!("{a:.1}s ago"))
                    .unwrap_or_else(|| "at an unknown time".into()),
                ch["from"],
                ch["to"],
                ch["reason"].as_str().unwrap_or("")
            );
        }
        _ => s.push_str(", never changed\n"),
    }
    let _ = writeln!(
        s,
        "  max idle      : {}ms{}",
        g("/max_idle_ms"),
        if r["paused"].as_bool() == Some(true) {
            " (revalidators paused)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        s,
        "  rounds        : {} (last: {} flows, keep {}, modify {}, delete idle {}, kill-all {}, changed {})",
        g("/rounds"),
        g("/last_round/flows"),
        g("/last_round/keep"),
        g("/last_round/modify"),
        g("/last_round/delete_idle"),
        g("/last_round/delete_kill_all"),
        g("/last_round/delete_changed")
    );
    let _ = writeln!(
        s,
        "  decisions     : keep {}, modify {}, delete idle {}, kill-all {}, changed {}, swept {}",
        g("/totals/keep"),
        g("/totals/modify"),
        g("/totals/delete_idle"),
        g("/totals/delete_kill_all"),
        g("/totals/delete_changed"),
        g("/swept")
    );
    for (n, f) in &v.bridges {
        let _ = writeln!(s, "  bridge {n}: {f} datapath flows");
    }
    if let Some(a) = r["ukeys_per_revalidator"].as_array() {
        for (i, k) in a.iter().enumerate() {
            let _ = writeln!(s, "  revalidator {i}: (keys {k})");
        }
    }
    for h in &v.handlers {
        s.push_str(h);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29
        assert_eq!(utc(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599); // last second of 2025
        assert_eq!(utc(t), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn reload_reply_is_an_error_when_anything_failed() {
        let mut r = ApplyReport::default();
        assert_eq!(reload_result(&r), Ok("configuration unchanged\n".into()));
        r.applied("added bridge b");
        r.needs_restart.push("datapath.n_pmd_threads".into());
        let ok = reload_result(&r).unwrap();
        assert!(ok.contains("added bridge b") && ok.contains("only after a restart"));
        r.failed("bridge c", "no such device");
        let err = reload_result(&r).unwrap_err();
        assert!(err.contains("added bridge b") && err.contains("FAILED: bridge c: no such device"));
    }

    #[test]
    fn config_show_says_which_file_is_in_force() {
        let cfg =
            crate::config::parse_str("[daemon]\nallow_no_bridges = true\n", "x", false).unwrap();
        let v = ConfigView {
            cfg,
            source: Some("/tmp/other.toml".into()),
            startup: Some("/etc/rvswitchd/rvswitchd.toml".into()),
            applied: Some((UNIX_EPOCH, ReloadOrigin::Control)),
        };
        let s = config_show(&v);
        assert!(s.starts_with("# in force: /tmp/other.toml (applied by config/reload at 1970"));
        assert!(s.contains("re-read /etc/rvswitchd/rvswitchd.toml"));
        // Still a valid configuration file.
        assert!(crate::config::parse_str(&s, "shown", false).is_ok());
    }

    #[test]
    fn memory_show_leaves_out_what_it_could_not_read() {
        let s = memory_show(&ProcStatus::default(), &Inventory::default(), None, None);
        assert!(!s.contains("rss:") && s.contains("bridges:0"));
        let p = ProcStatus {
            rss_bytes: Some(2048),
            rss_peak_bytes: Some(4096),
            threads: Some(3),
        };
        let l = FdLimit {
            soft: 1024,
            hard: 1024,
            soft_at_start: 1024,
        };
        let s = memory_show(&p, &Inventory::default(), Some(10), Some(l));
        assert!(
            s.starts_with("rss:2kB peak:4kB threads:3 fds:10/1024 "),
            "{s}"
        );
    }
}
