//! The daemon as a user meets it: config validation, the ovs-appctl-compatible
//! control socket, the actor-stats endpoint, live reload, clean exit, detach.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

const BASE: &str = r#"
[daemon]
control_socket = "@CTL@"
stats_listen = "@STATS@"
log_level = "info"

[datapath]
n_handler_threads = 2
n_revalidator_threads = 2

[[bridge]]
name = "@BR@"
listeners = ["punix:@MGMT@"]
"#;

fn base(br: &str) -> String {
    BASE.replace("@BR@", br)
}

fn kinds(stats: &serde_json::Value) -> Vec<String> {
    stats["actors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ids(stats: &serde_json::Value) -> Vec<String> {
    stats["actors"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn control_socket_speaks_ovs_appctl() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    let list = d.appctl_ok(&["list-commands"]);
    for c in [
        "version",
        "exit",
        "actor/stats",
        "config/reload",
        "vlog/set",
        "memory/show",
        "coverage/show",
        "upcall/show",
    ] {
        assert!(list.contains(c), "list-commands lacks {c}: {list}");
    }
    assert!(d.appctl_ok(&["version"]).starts_with("rvswitchd"));
    let (ok, _, err) = d.appctl(&["no/such-command"]);
    assert!(!ok);
    assert!(err.contains("is not a valid command"), "{err}");
    d.appctl_ok(&["vlog/set", "dbg"]);
    assert!(d.appctl_ok(&["vlog/list"]).contains("debug"));
    d.appctl_ok(&["vlog/set", "info"]);
    let stats: serde_json::Value =
        serde_json::from_str(&d.appctl_ok(&["actor/stats"])).expect("json");
    assert!(kinds(&stats).iter().any(|k| k == "Bridge"));
    assert!(d.appctl_ok(&["memory/show"]).contains("rss:"));
    assert!(d.appctl_ok(&["coverage/show"]).contains("unixctl_received"));
    let cfg = d.appctl_ok(&["config/show"]);
    assert!(cfg.contains(&br));
    // The socket is private to root.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&d.ctl).expect("ctl").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn stats_endpoint_lists_every_actor_kind_and_counts_messages() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    assert!(wait_for(10, || kinds(&d.stats_json())
        .iter()
        .any(|k| k == "Port")));
    let s = d.stats_json();
    let k = kinds(&s);
    for want in [
        "Daemon",
        "Bridge",
        "Port",
        "Connmgr",
        "UpcallHandler",
        "Revalidator",
    ] {
        assert!(k.iter().any(|x| x == want), "no {want} actor in {k:?}");
    }
    assert!(s["process"]["rss_bytes"].as_u64().unwrap_or(0) > 0);
    assert!(s["process"]["threads"].as_u64().unwrap_or(0) > 1);
    let handled = |s: &serde_json::Value| -> u64 {
        s["actors"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == "daemon"))
            .and_then(|x| x["messages"].as_array().cloned())
            .map(|m| {
                m.iter()
                    .filter(|x| x["name"] == "Ctl")
                    .map(|x| x["handled"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let before = handled(&s);
    for _ in 0..3 {
        d.appctl_ok(&["version"]);
    }
    let after = handled(&d.stats_json());
    assert!(
        after >= before + 3,
        "Ctl counter did not move: {before} -> {after}"
    );
    // Every actor shows mailbox depth/capacity and handling time.
    let a = &d.stats_json()["actors"][0];
    assert!(a.get("mailbox_depth").is_some() && a.get("mailbox_capacity").is_some());
    assert!(a["handling"].get("p99_us").is_some());
    // Prometheus text: every sample line is `name{labels} number`.
    let m = d.http_get("/metrics");
    let mut samples = 0;
    for line in m.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (name_labels, value) = line.rsplit_once(' ').expect("sample has a value");
        assert!(value.parse::<f64>().is_ok(), "bad value in {line:?}");
        let name = name_labels.split('{').next().unwrap_or("");
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name in {line:?}"
        );
        if name_labels.contains('{') {
            assert!(name_labels.ends_with('}'), "bad labels in {line:?}");
        }
        samples += 1;
    }
    assert!(samples > 20, "too few samples: {m}");
    assert!(m.contains("rvswitchd_actor_messages_handled_total"));
    // Per-port counters, overruns included, for the bridge's internal port.
    assert!(
        m.lines()
            .any(|l| l.contains("_ports_rx_over_err{") && l.contains("ports_key=")),
        "no per-port overrun counter in /metrics"
    );
}

#[test]
fn reload_adds_and_removes_actors_and_refuses_bad_files() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let br2 = format!("rvc{}", uniq());
    let tap = format!("rvt{}", uniq());
    let d = Daemon::start(&base(&br));
    let good = format!(
        "{}\n[[bridge]]\nname = \"{br2}\"\nlisteners = []\n\n[[bridge.port]]\nname = \"{tap}\"\ntype = \"tap\"\n",
        std::fs::read_to_string(&d.config).expect("config")
    );
    std::fs::write(&d.config, &good).expect("write");
    let out = d.appctl_ok(&["config/reload"]);
    assert!(out.contains(&format!("added bridge {br2}")), "{out}");
    assert!(wait_for(10, || {
        let i = ids(&d.stats_json());
        i.contains(&format!("bridge:{br2}")) && i.contains(&format!("port:{br2}:{tap}"))
    }));
    // The TAP port really exists.
    assert!(wait_for(10, || sh_try(&format!("ip link show {tap}")).0));
    // A broken file is refused, with file, line and key, and nothing changes.
    let shown = d.appctl_ok(&["config/show"]);
    std::fs::write(&d.config, format!("{good}\n[datapath]\nflow_limitt = 5\n")).expect("write");
    let (ok, _, err) = d.appctl(&["config/reload"]);
    assert!(!ok);
    assert!(err.contains("rvswitchd.toml"), "{err}");
    std::fs::write(
        &d.config,
        good.replace(
            "[[bridge]]\nname = \"",
            "[[bridge]]\nbogus_key = 1\nname = \"",
        ),
    )
    .expect("write");
    let (ok, _, err) = d.appctl(&["config/reload"]);
    assert!(!ok);
    assert!(err.contains("bogus_key") && err.contains(":"), "{err}");
    assert_eq!(d.appctl_ok(&["config/show"]), shown);
    assert!(ids(&d.stats_json()).contains(&format!("bridge:{br2}")));
    // Removing the bridge again (this time by SIGHUP) stops its actors and
    // deletes its TAP.
    std::fs::write(&d.config, d.render(&base(&br))).expect("write");
    sh(&format!("kill -HUP {}", d.pid()));
    assert!(wait_for(10, || !ids(&d.stats_json())
        .contains(&format!("bridge:{br2}"))));
    assert!(wait_for(10, || !sh_try(&format!("ip link show {tap}")).0));
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases: &[(&str, &str, &[&str])] = &[
        ("unknown.toml", "[daemon]\nlog_levle = \"info\"\n", &["unknown.toml:2", "log_levle"]),
        (
            "dup.toml",
            "[[bridge]]\nname = \"a\"\n\n[[bridge]]\nname = \"a\"\n",
            &["dup.toml:5", "bridge[1].name", "duplicate bridge"],
        ),
        (
            "twice.toml",
            "[[bridge]]\nname = \"a\"\n[[bridge.port]]\nname = \"p\"\n\n[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p\"\n",
            &["twice.toml:9", "bridge[1].port[0].name", "already in bridge"],
        ),
        (
            "addr.toml",
            "[[bridge]]\nname = \"a\"\nlisteners = [\"ptcp:99999\"]\n",
            &["addr.toml:3", "bridge[0].listeners", "bad TCP port"],
        ),
        (
            "range.toml",
            "[datapath]\nflow_limit = 0\n",
            &["range.toml:2", "datapath.flow_limit", "out of range"],
        ),
        (
            "type.toml",
            "[datapath]\nmax_idle_ms = \"soon\"\n",
            &["type.toml:2", "max_idle_ms"],
        ),
    ];
    for (name, body, wants) in cases {
        let p = dir.path().join(name);
        std::fs::write(&p, body).expect("write");
        let (ok, _, err) = run(
            env!("CARGO_BIN_EXE_rvswitchd"),
            &["--check-config", p.to_str().unwrap_or("")],
        );
        assert!(!ok, "{name} was accepted");
        for w in *wants {
            assert!(err.contains(w), "{name}: {w:?} missing from {err:?}");
        }
    }
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/rvswitchd.toml");
    let (ok, out, err) = run(
        env!("CARGO_BIN_EXE_rvswitchd"),
        &["--check-config", shipped],
    );
    assert!(ok, "shipped config refused: {err}");
    assert!(out.contains("OK"));
}

#[test]
fn garbage_on_the_control_socket_does_not_hurt() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    let mut s = std::os::unix::net::UnixStream::connect(&d.ctl).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(b"}}}{not json at all").expect("write");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    assert!(text.contains("error") || buf.is_empty(), "{text}");
    // A request with no method gets an error reply too.
    let mut s = std::os::unix::net::UnixStream::connect(&d.ctl).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(br#"{"id":1,"params":[]}"#).expect("write");
    let mut b = [0u8; 512];
    let n = s.read(&mut b).unwrap_or(0);
    assert!(String::from_utf8_lossy(&b[..n]).contains("method"));
    assert!(d.appctl_ok(&["version"]).starts_with("rvswitchd"));
}

#[test]
fn exit_is_clean_and_detach_writes_a_pidfile() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let mut d = Daemon::start(&base(&br));
    assert!(d.mgmt.exists());
    d.appctl_ok(&["exit"]);
    assert!(wait_for(10, || !d.alive()), "daemon did not exit");
    assert!(!d.ctl.exists(), "control socket left behind");
    assert!(!d.mgmt.exists(), "OpenFlow socket left behind");

    // --detach returns only once the daemon is up, and the pidfile says who it is.
    let pidfile = d.dir.join("rvswitchd.pid");
    let (ok, _, err) = run(
        env!("CARGO_BIN_EXE_rvswitchd"),
        &[
            "--config",
            d.config.to_str().unwrap_or(""),
            "--detach",
            "--pidfile",
            pidfile.to_str().unwrap_or(""),
            "--log-file",
            d.log.to_str().unwrap_or(""),
        ],
    );
    assert!(ok, "detach failed: {err}");
    assert!(
        std::os::unix::net::UnixStream::connect(&d.ctl).is_ok(),
        "not up when --detach returned"
    );
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    assert!(sh_try(&format!("kill -0 {pid}")).0);
    d.appctl_ok(&["exit"]);
    assert!(wait_for(10, || !pidfile.exists()), "pidfile not removed");
    assert!(wait_for(10, || !sh_try(&format!("kill -0 {pid}")).0));
}

fn restarts_of(d: &Daemon, id: &str) -> u64 {
    d.stats_json()["actors"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id).cloned())
        .and_then(|x| x["restarts"].as_u64())
        .unwrap_or(0)
}

#[test]
fn dead_actors_are_detected_restarted_and_counted() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    for id in ["revalidator:1", "handler:0"] {
        d.appctl_ok(&["debug/stop-actor", id]);
        assert!(
            wait_for(10, || restarts_of(&d, id) >= 1),
            "{id} not restarted: {}",
            d.log_text()
        );
    }
    assert!(
        d.stats_json()["coverage"]["actor_restarted"]
            .as_u64()
            .unwrap_or(0)
            >= 2
    );
    // The restarted revalidators still run rounds.
    d.reval_wait();
    assert!(d.appctl_ok(&["upcall/show"]).contains("revalidator 1"));
}

#[test]
fn the_monitor_restarts_a_crashed_daemon() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let mut d = Daemon::start(&base(&br));
    d.appctl_ok(&["exit"]);
    assert!(wait_for(10, || !d.alive()));
    let pidfile = d.dir.join("m.pid");
    let (ok, _, err) = run(
        env!("CARGO_BIN_EXE_rvswitchd"),
        &[
            "--config",
            d.config.to_str().unwrap_or(""),
            "--detach",
            "--monitor",
            "--pidfile",
            pidfile.to_str().unwrap_or(""),
            "--log-file",
            d.log.to_str().unwrap_or(""),
        ],
    );
    assert!(ok, "{err}");
    let read_pid = || -> i32 {
        std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    assert!(wait_for(10, || read_pid() > 0));
    let first = read_pid();
    // A crash signal: the monitor starts a new daemon.
    // SIGABRT (a panic with panic=abort, a failed assert in C code); an
    // externally sent SIGSEGV is absorbed by Rust's stack-overflow handler.
    sh(&format!("kill -ABRT {first}"));
    assert!(
        wait_for(20, || read_pid() > 0
            && read_pid() != first
            && d.appctl(&["version"]).0),
        "no restart after a crash; log:\n{}",
        d.log_text()
    );
    let second = read_pid();
    // A clean exit ends the monitor too.
    d.appctl_ok(&["exit"]);
    assert!(wait_for(10, || !sh_try(&format!("kill -0 {second}")).0));
    std::thread::sleep(Duration::from_millis(300));
    let (_, ps) = sh_try("ps -eo args");
    assert!(
        !ps.lines()
            .any(|l| l.contains("--monitor") && l.contains(d.config.to_str().unwrap_or("?"))),
        "monitor left running"
    );
}
