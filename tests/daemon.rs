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
                    .filter(|x| x["name"] == "GetInventory")
                    .map(|x| x["handled"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    };
    let before = handled(&s);
    for _ in 0..3 {
        d.appctl_ok(&["memory/show"]);
    }
    let after = handled(&d.stats_json());
    assert!(
        after >= before + 3,
        "GetInventory counter did not move: {before} -> {after}"
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
            .any(|l| l.starts_with("rvswitchd_port_rx_over_err_total{") && l.contains("port=")),
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

#[test]
fn one_sigsegv_kills_the_daemon() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    use std::os::unix::process::ExitStatusExt;
    let br = format!("rvb{}", uniq());
    let mut d = Daemon::start(&base(&br));
    sh(&format!("kill -SEGV {}", d.pid()));
    let mut status = None;
    assert!(
        wait_for(10, || {
            status = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            status.is_some()
        }),
        "the daemon survived a SIGSEGV"
    );
    assert_eq!(status.and_then(|s| s.signal()), Some(libc::SIGSEGV));
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
    // One SIGSEGV crashes the daemon (the runtime's stack overflow handler
    // used to absorb the first one) and the monitor starts a new one.
    sh(&format!("kill -SEGV {first}"));
    assert!(
        wait_for(20, || read_pid() > 0
            && read_pid() != first
            && d.appctl(&["version"]).0),
        "no restart after one SIGSEGV; log:\n{}",
        d.log_text()
    );
    assert!(
        !sh_try(&format!("kill -0 {first}")).0,
        "crashed daemon still there"
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

/// Like `Daemon::start`, but the process runs under `wrapper` (e.g. `prlimit
/// --nofile=1024:1024 --`) and the control socket is at `ctl` relative to
/// the test directory.
fn start_wrapped(body: &str, ctl_rel: &str, wrapper: &[&str]) -> Daemon {
    start_env(body, ctl_rel, wrapper, &[])
}

/// [`start_wrapped`] with extra environment variables.
fn start_env(body: &str, ctl_rel: &str, wrapper: &[&str], env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::Builder::new()
        .prefix("rvs-test-")
        .tempdir()
        .expect("tempdir")
        .keep();
    let mut d = Daemon {
        child: None,
        ctl: dir.join(ctl_rel),
        config: dir.join("rvswitchd.toml"),
        stats: format!("127.0.0.1:{}", free_port()),
        mgmt: dir.join("br.mgmt"),
        log: dir.join("rvswitchd.log"),
        netns: None,
        dir,
    };
    std::fs::write(&d.config, d.render(body)).expect("config");
    let mut cmd = std::process::Command::new(
        wrapper
            .first()
            .copied()
            .unwrap_or(env!("CARGO_BIN_EXE_rvswitchd")),
    );
    if !wrapper.is_empty() {
        cmd.args(&wrapper[1..]).arg(env!("CARGO_BIN_EXE_rvswitchd"));
    }
    let child = cmd
        .envs(env.iter().copied())
        .arg("--config")
        .arg(&d.config)
        .arg("--log-file")
        .arg(&d.log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    d.child = Some(child);
    let (ctl, mgmt) = (d.ctl.clone(), d.mgmt.clone());
    assert!(
        wait_for(20, || std::os::unix::net::UnixStream::connect(&ctl).is_ok()
            && std::os::unix::net::UnixStream::connect(&mgmt).is_ok()),
        "daemon did not start; log:\n{}",
        d.log_text()
    );
    d
}

/// `ovs-appctl` with a timeout, returning its exit code and output.
fn appctl_code(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new("ovs-appctl")
        .arg("--timeout=10")
        .arg("-t")
        .arg(&d.ctl)
        .args(args)
        .output()
        .expect("ovs-appctl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rss(d: &Daemon) -> u64 {
    d.stats_json()["process"]["rss_bytes"].as_u64().unwrap_or(0)
}

#[test]
fn reload_refuses_devices_fifos_huge_and_empty_files_and_keeps_running() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    let before = rss(&d);
    let fifo = d.dir.join("fifo.toml");
    sh(&format!("mkfifo {}", fifo.display()));
    let huge = d.dir.join("huge.toml");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(64 << 20))
        .expect("huge");
    let empty = d.dir.join("empty.toml");
    std::fs::write(&empty, "").expect("empty");
    let comments = d.dir.join("comments.toml");
    std::fs::write(&comments, "# nothing but a comment\n\n# and another\n").expect("comments");
    let cases: &[(&str, &str)] = &[
        ("/dev/urandom", "character device"),
        ("/dev/zero", "character device"),
        (fifo.to_str().unwrap_or(""), "FIFO"),
        (huge.to_str().unwrap_or(""), "larger than"),
        (empty.to_str().unwrap_or(""), "allow_no_bridges"),
        (comments.to_str().unwrap_or(""), "allow_no_bridges"),
        (d.dir.to_str().unwrap_or(""), "directory"),
    ];
    for (path, want) in cases {
        let t = std::time::Instant::now();
        let (code, _, err) = appctl_code(&d, &["config/reload", path]);
        assert_eq!(code, Some(2), "{path}: ovs-appctl must fail: {err}");
        assert!(
            err.contains(want) && err.contains("unchanged"),
            "{path}: {err}"
        );
        // Refused at once, not after reading a stream (bounded observation).
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            t.elapsed()
        );
        // The same file is refused by --check-config and --config.
        for flag in ["--check-config", "--config"] {
            let (ok, _, err) = run(env!("CARGO_BIN_EXE_rvswitchd"), &[flag, path]);
            assert!(!ok && err.contains(want), "{flag} {path}: {err}");
        }
    }
    // Nothing changed: the bridge, its listener and the control socket work.
    assert!(ids(&d.stats_json()).contains(&format!("bridge:{br}")));
    assert!(std::os::unix::net::UnixStream::connect(&d.mgmt).is_ok());
    assert!(d.appctl_ok(&["config/show"]).contains(&br));
    let after = rss(&d);
    assert!(
        after < before + (32 << 20),
        "RSS grew from {before} to {after} refusing reloads"
    );
    // Saying so explicitly, no bridge is accepted, and the bridge goes.
    let none = d.dir.join("none.toml");
    std::fs::write(
        &none,
        d.render("[daemon]\ncontrol_socket = \"@CTL@\"\nstats_listen = \"@STATS@\"\nallow_no_bridges = true\n"),
    )
    .expect("none");
    let out = d.appctl_ok(&["config/reload", none.to_str().unwrap_or("")]);
    assert!(out.contains(&format!("deleted bridge {br}")), "{out}");
}

#[test]
fn sighup_rereads_the_startup_file_not_the_last_reloaded_one() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let other_br = format!("rvo{}", uniq());
    let edit_br = format!("rve{}", uniq());
    let d = Daemon::start(&base(&br));
    let startup = std::fs::read_to_string(&d.config).expect("config");
    let other = d.dir.join("other.toml");
    std::fs::write(
        &other,
        format!("{startup}\n[[bridge]]\nname = \"{other_br}\"\n"),
    )
    .expect("other");
    let out = d.appctl_ok(&["config/reload", other.to_str().unwrap_or("")]);
    assert!(out.contains(&format!("added bridge {other_br}")), "{out}");
    let shown = d.appctl_ok(&["config/show"]);
    assert!(
        shown.contains(&format!("# in force: {}", other.display()))
            && shown.contains(&format!("re-read {}", d.config.display())),
        "{shown}"
    );
    // The operator edits the start-up file and sends SIGHUP: that file is
    // read (its new bridge appears) and OTHER's bridge goes.
    std::fs::write(
        &d.config,
        format!("{startup}\n[[bridge]]\nname = \"{edit_br}\"\n"),
    )
    .expect("edit");
    sh(&format!("kill -HUP {}", d.pid()));
    assert!(
        wait_for(10, || {
            let i = ids(&d.stats_json());
            i.contains(&format!("bridge:{edit_br}")) && !i.contains(&format!("bridge:{other_br}"))
        }),
        "SIGHUP did not apply the start-up file; log:\n{}",
        d.log_text()
    );
    let shown = d.appctl_ok(&["config/show"]);
    assert!(
        shown.contains(&format!(
            "# in force: {} (applied by SIGHUP",
            d.config.display()
        )),
        "{shown}"
    );
    // config/reload without a file reads the start-up file too.
    std::fs::write(&d.config, &startup).expect("restore");
    let out = d.appctl_ok(&["config/reload"]);
    assert!(out.contains(&format!("deleted bridge {edit_br}")), "{out}");
    assert_eq!(
        d.appctl_ok(&["config/path"]).trim(),
        d.config.display().to_string()
    );
}

#[test]
fn reload_failures_make_ovs_appctl_exit_non_zero() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    std::fs::write(&d.config, "[[bridge]]\nname = \"x\"\nbogus = 1\n").expect("write");
    let (code, out, err) = appctl_code(&d, &["config/reload"]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(err.contains("bogus"), "{err}");
    let (code, _, _) = appctl_code(&d, &["config/reload", "/nonexistent/x.toml"]);
    assert_eq!(code, Some(2));
    // A successful one exits 0.
    std::fs::write(&d.config, d.render(&base(&br))).expect("write");
    let (code, out, _) = appctl_code(&d, &["config/reload"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("unchanged"), "{out}");
}

#[test]
fn a_listener_that_cannot_bind_fails_the_reload() {
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().map(|a| a.port()).unwrap_or(0);
    let cfg = std::fs::read_to_string(&d.config).expect("config").replace(
        "listeners = [\"punix:",
        &format!("listeners = [\"ptcp:{port}:127.0.0.1\", \"punix:"),
    );
    std::fs::write(&d.config, cfg).expect("write");
    let (code, _, err) = appctl_code(&d, &["config/reload"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains(&format!("ptcp:{port}")), "{err}");
}

/// Opens a non-blocking unix stream connection; None when the listener's
/// backlog is full or it refuses.
fn connect_nb(path: &std::path::Path) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: creating a socket has no preconditions.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh socket we own.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero sockaddr_un is valid to fill in.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return None;
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: addr is a valid sockaddr_un of the size passed.
    let r = unsafe {
        libc::connect(
            fd,
            &addr as *const libc::sockaddr_un as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    (r == 0).then_some(owned)
}

/// GET with timeouts (the shared helper waits forever), None on failure.
fn http_get_within(d: &Daemon, path: &str, secs: u64) -> Option<String> {
    let addr: std::net::SocketAddr = d.stats.parse().ok()?;
    let t = Duration::from_secs(secs);
    let mut s = std::net::TcpStream::connect_timeout(&addr, t).ok()?;
    s.set_read_timeout(Some(t)).ok()?;
    s.set_write_timeout(Some(t)).ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

fn coverage_of(d: &Daemon, name: &str) -> u64 {
    d.stats_json()["coverage"][name].as_u64().unwrap_or(0)
}

#[test]
fn operators_get_in_while_1100_connections_flood_the_control_and_openflow_sockets() {
    if !require(true, &["ovs-appctl", "prlimit"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    // The OpenFlow listener's own defences (tests/hostile.rs: the connection
    // cap, and closing connections that send no HELLO) would stop the flood
    // short of the descriptor limit: relax them, so that this test shows the
    // operator sockets survive a full descriptor table.
    let cfg = format!(
        "{}\n[openflow]\nmax_connections_per_listener = 65536\nhello_timeout_ms = 600000\n",
        base(&br)
    );
    let d = start_wrapped(&cfg, "ctl.sock", &["prlimit", "--nofile=1024:1024", "--"]);
    let s = d.stats_json();
    assert_eq!(
        s["process"]["max_fds"].as_u64(),
        Some(1024),
        "{}",
        s["process"]
    );
    assert!(d.appctl_ok(&["memory/show"]).contains("/1024 "));
    const FLOOD: usize = 1100;
    // 1. The control socket: clients that connect and say nothing.
    let mut held = Vec::new();
    for _ in 0..FLOOD {
        if let Some(fd) = connect_nb(&d.ctl) {
            held.push(fd);
        }
    }
    assert!(held.len() > 1000, "only {} control connections", held.len());
    let (code, out, err) = appctl_code(&d, &["version"]);
    assert_eq!(code, Some(0), "control socket unreachable: {err}");
    assert!(out.starts_with("rvswitchd"));
    assert!(d.stats_json()["process"]["rss_bytes"].as_u64().unwrap_or(0) > 0);
    assert!(coverage_of(&d, "unixctl_evicted") > 0);
    // 2. The OpenFlow listener: connections that never say HELLO, more than
    // the daemon has descriptors. A connect finds the listen backlog full
    // while the daemon is still accepting (EAGAIN): retry, for a bounded time.
    let t0 = std::time::Instant::now();
    let mut of_held = 0;
    while of_held < FLOOD && t0.elapsed() < Duration::from_secs(20) {
        match connect_nb(&d.mgmt) {
            Some(fd) => {
                held.push(fd);
                of_held += 1;
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    // Observation: the flood really filled the process's descriptor table
    // (the operator threads have tables of their own).
    let open = || -> u64 {
        http_get_within(&d, "/stats", 10)
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["process"]["open_fds"].as_u64())
            .unwrap_or(0)
    };
    assert!(
        wait_for(20, || open() >= 1020),
        "the flood did not exhaust descriptors ({} open); the test proves nothing",
        open()
    );
    assert!(d.log_text().contains("Too many open files"));
    for round in 0..5 {
        let (code, out, err) = appctl_code(&d, &["version"]);
        assert_eq!(
            code,
            Some(0),
            "round {round}: control socket unreachable: {err}"
        );
        assert!(out.starts_with("rvswitchd"));
        let st = http_get_within(&d, "/stats", 10)
            .unwrap_or_else(|| panic!("round {round}: /stats unreachable\n{}", d.log_text()));
        let st: serde_json::Value = serde_json::from_str(&st).expect("/stats JSON");
        assert!(
            st["process"]["rss_bytes"].as_u64().unwrap_or(0) > 0,
            "{}",
            st["process"]
        );
        let m = http_get_within(&d, "/metrics", 10).unwrap_or_default();
        assert!(
            m.contains("rvswitchd_process_max_fds 1024"),
            "round {round}: /metrics"
        );
    }
    drop(held);
    // Afterwards everything recovers.
    assert!(wait_for(20, || appctl_code(&d, &["version"]).0 == Some(0)));
    assert!(std::os::unix::net::UnixStream::connect(&d.mgmt).is_ok());
}

#[test]
fn control_socket_bounds_slow_and_oversized_requests() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    // Oversized: an error, then the connection is closed.
    let mut s = std::os::unix::net::UnixStream::connect(&d.ctl).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let big = format!(
        "{{\"id\":1,\"method\":\"version\",\"params\":[\"{}",
        "a".repeat(300 * 1024)
    );
    let _ = s.write_all(big.as_bytes());
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(
        String::from_utf8_lossy(&buf).contains("longer than"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // Slow: half a request is dropped after the request timeout.
    let mut s = std::os::unix::net::UnixStream::connect(&d.ctl).expect("connect");
    s.write_all(b"{\"id\":1,\"meth").expect("write");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let t = std::time::Instant::now();
    let mut b = [0u8; 16];
    let n = s.read(&mut b).unwrap_or(0);
    assert_eq!(n, 0, "expected the daemon to hang up");
    assert!(t.elapsed() < Duration::from_secs(25));
    assert!(coverage_of(&d, "unixctl_timeout") >= 1);
    // The socket and its directory are not left to the umask.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&d.ctl).expect("ctl").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn run_directory_is_created_0755_and_the_socket_0600_whatever_the_umask() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let body = base(&br).replace(
        "control_socket = \"@CTL@\"",
        "control_socket = \"@DIR@/run/sub/ctl.sock\"",
    );
    // umask 0 would give 0777 to anything created without an explicit mode.
    let d = start_wrapped(
        &body,
        "run/sub/ctl.sock",
        &["sh", "-c", "umask 0; exec \"$0\" \"$@\""],
    );
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode(&d.ctl), 0o600);
    assert_eq!(mode(&d.dir.join("run/sub")), 0o755);
    assert_eq!(mode(&d.dir.join("run")), 0o755);
    // No temporary bind directory is left behind.
    let left: Vec<_> = std::fs::read_dir(d.dir.join("run/sub"))
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    // The control socket and the takeover socket beside it (`--takeover`).
    assert_eq!(
        left,
        vec!["ctl.sock".to_string(), "ctl.sock.takeover".to_string()]
    );
    assert_eq!(mode(&d.dir.join("run/sub/ctl.sock.takeover")), 0o600);
}

#[test]
fn metrics_pass_promtool_check() {
    if !require(true, &["ovs-appctl", "promtool"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    // Some traffic through the control socket so that histograms have data.
    d.appctl_ok(&["memory/show"]);
    d.reval_wait();
    let text = d.http_get("/metrics");
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let problems = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && problems.trim().is_empty(),
        "promtool check metrics: {problems}"
    );
    // Families are whole: each name's HELP/TYPE once, counters end in _total.
    let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
    let mut names: Vec<&str> = types.iter().filter_map(|l| l.split(' ').nth(2)).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(n, names.len(), "a family is declared twice");
    for t in &types {
        if t.ends_with(" counter") {
            assert!(
                t.split(' ').nth(2).is_some_and(|n| n.ends_with("_total")),
                "{t}"
            );
        }
    }
    assert!(text.contains("# TYPE rvswitchd_actor_handling_seconds histogram"));
    // The OpenFlow drop counters, one per asynchronous kind (issue 9 item 3),
    // in /metrics and /stats alike (ofctl/show-connections: tests/hostile.rs).
    let stats = d.stats_json();
    for kind in [
        "packet_ins_dropped",
        "flow_removed_dropped",
        "port_status_dropped",
    ] {
        let sample = format!("rvswitchd_openflow_session_{kind}_total{{bridge=\"{br}\"}}");
        assert!(text.contains(&sample), "{sample} missing");
        assert!(
            stats["openflow"][&br]["sessions"][kind].is_u64(),
            "{kind}: {}",
            stats["openflow"]
        );
    }
    assert!(text.contains("rvswitchd_actor_handling_seconds_bucket{"));
}

/// A fake systemd notification socket: collects datagrams.
struct FakeSystemd {
    sock: std::os::unix::net::UnixDatagram,
    path: std::path::PathBuf,
    got: Vec<String>,
}

impl FakeSystemd {
    fn new(dir: &std::path::Path) -> FakeSystemd {
        let path = dir.join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind notify");
        sock.set_read_timeout(Some(Duration::from_millis(200))).ok();
        FakeSystemd {
            sock,
            path,
            got: Vec::new(),
        }
    }

    /// Receives until a datagram containing `want` arrives (or `secs` pass).
    fn wait(&mut self, want: &str, secs: u64) -> bool {
        let t = std::time::Instant::now();
        let mut buf = [0u8; 4096];
        while t.elapsed() < Duration::from_secs(secs) {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let m = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = m.lines().any(|l| l == want || l.starts_with(want));
                self.got.push(m);
                if hit {
                    return true;
                }
            }
        }
        false
    }
}

#[test]
fn systemd_notify_ready_watchdog_and_stopping() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let tmp = tempfile::tempdir().expect("tmp");
    let mut sd = FakeSystemd::new(tmp.path());
    let path = sd.path.display().to_string();
    let mut d = start_env(
        &base(&br),
        "ctl.sock",
        &[],
        &[
            ("NOTIFY_SOCKET", path.as_str()),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    assert!(
        sd.wait("READY=1", 20),
        "no READY=1: {:?}\n{}",
        sd.got,
        d.log_text()
    );
    // READY came once the OpenFlow listener listens.
    assert!(std::os::unix::net::UnixStream::connect(&d.mgmt).is_ok());
    let ready = sd.got.last().cloned().unwrap_or_default();
    assert!(
        ready.contains("STATUS=1 bridge(s) configured, every listener listening"),
        "{ready}"
    );
    // Pings every half interval (500 ms): several within a few seconds.
    for _ in 0..3 {
        assert!(sd.wait("WATCHDOG=1", 5), "no watchdog ping: {:?}", sd.got);
    }
    d.appctl_ok(&["exit"]);
    assert!(sd.wait("STOPPING=1", 10), "no STOPPING=1: {:?}", sd.got);
    assert!(wait_for(10, || !d.alive()));
    // The variables do not leak to children: nothing else may use the socket.
    assert!(!d.log_text().contains("NOTIFY_SOCKET="));
}

#[test]
fn ready_names_listeners_that_never_listen() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().map(|a| a.port()).unwrap_or(0);
    let tmp = tempfile::tempdir().expect("tmp");
    let mut sd = FakeSystemd::new(tmp.path());
    let path = sd.path.display().to_string();
    let body = base(&br).replace(
        "listeners = [\"punix:@MGMT@\"]",
        &format!("listeners = [\"punix:@MGMT@\", \"ptcp:{port}:127.0.0.1\"]"),
    );
    let _d = start_env(&body, "ctl.sock", &[], &[("NOTIFY_SOCKET", path.as_str())]);
    // The bind fails (port in use): READY=1 still comes, after the timeout,
    // saying which listener is missing.
    assert!(sd.wait("READY=1", 30), "no READY=1: {:?}", sd.got);
    let ready = sd.got.last().cloned().unwrap_or_default();
    assert!(
        ready.contains(&format!("not listening: {br} ptcp:{port}:127.0.0.1")),
        "{ready}"
    );
}

#[test]
fn journal_lines_carry_syslog_priorities_and_vlog_set_still_works() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    use std::os::unix::fs::MetadataExt;
    let br = format!("rvb{}", uniq());
    let dir = tempfile::Builder::new()
        .prefix("rvs-test-")
        .tempdir()
        .expect("tmp")
        .keep();
    let mut d = Daemon {
        child: None,
        ctl: dir.join("ctl.sock"),
        config: dir.join("rvswitchd.toml"),
        stats: format!("127.0.0.1:{}", free_port()),
        mgmt: dir.join("br.mgmt"),
        log: dir.join("stderr.log"),
        netns: None,
        dir,
    };
    std::fs::write(&d.config, d.render(&base(&br))).expect("config");
    let err = std::fs::File::create(&d.log).expect("stderr file");
    let md = err.metadata().expect("stat");
    let stream = format!("{}:{}", md.dev(), md.ino());
    d.child = Some(
        std::process::Command::new(env!("CARGO_BIN_EXE_rvswitchd"))
            .arg("--config")
            .arg(&d.config)
            .env("JOURNAL_STREAM", &stream)
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn"),
    );
    let ctl = d.ctl.clone();
    assert!(wait_for(20, || std::os::unix::net::UnixStream::connect(
        &ctl
    )
    .is_ok()));
    // vlog/set still rules: at warn, a reload's info line is not written;
    // back at info it is; a refused reload is an error line (<3>).
    d.appctl_ok(&["vlog/set", "warn"]);
    d.appctl_ok(&["config/reload"]);
    d.appctl_ok(&["vlog/set", "info"]);
    d.appctl_ok(&["config/reload"]);
    let _ = d.appctl(&["config/reload", "/dev/null/x"]);
    assert!(
        wait_for(5, || d.log_text().contains("<3>")),
        "{}",
        d.log_text()
    );
    assert_eq!(
        d.log_text().matches("configuration reloaded from").count(),
        1,
        "vlog/set warn did not hold back the first reload's info line:\n{}",
        d.log_text()
    );
    let text = d.log_text();
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(
            ["<3>", "<4>", "<6>", "<7>"]
                .iter()
                .any(|p| line.starts_with(p)),
            "a journal line without priority: {line:?}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "colour codes in the journal: {line:?}"
        );
    }
    assert!(
        text.lines()
            .any(|l| l.starts_with("<6>rvswitchd") && l.contains("started")),
        "{text}"
    );
    d.appctl_ok(&["exit"]);
    assert!(wait_for(10, || !d.alive()));
}

#[test]
fn ovs_compat_paths_let_ovs_tools_work_without_targets() {
    if !require(true, &["ovs-appctl", "ovs-ofctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let tmp = tempfile::tempdir().expect("tmp");
    let rundir = tmp.path().join("openvswitch");
    let rd = rundir.display().to_string();
    let body = base(&br).replace(
        "log_level = \"info\"",
        "log_level = \"info\"\novs_compat_paths = true",
    );
    let mut d = start_env(&body, "ctl.sock", &[], &[("OVS_RUNDIR", rd.as_str())]);
    let ovs = |prog: &str, args: &[&str]| {
        let o = std::process::Command::new(prog)
            .env("OVS_RUNDIR", &rundir)
            .args(args)
            .output()
            .expect(prog);
        (
            o.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    assert!(wait_for(10, || rundir.join(format!("{br}.mgmt")).exists()));
    let (ok, out) = ovs("ovs-ofctl", &["-O", "OpenFlow13", "dump-flows", &br]);
    assert!(
        ok && out.contains("actions=NORMAL"),
        "ovs-ofctl dump-flows {br}: {out}"
    );
    let (ok, out) = ovs("ovs-appctl", &["dpctl/dump-flows"]);
    assert!(ok, "ovs-appctl dpctl/dump-flows: {out}");
    let (ok, out) = ovs("ovs-appctl", &["version"]);
    assert!(ok && out.starts_with("rvswitchd"), "{out}");
    let pid: u32 = std::fs::read_to_string(rundir.join("ovs-vswitchd.pid"))
        .expect("pidfile")
        .trim()
        .parse()
        .expect("pid");
    assert_eq!(pid, d.pid());
    d.appctl_ok(&["exit"]);
    assert!(wait_for(10, || !d.alive()));
    assert!(
        !rundir.join("ovs-vswitchd.pid").exists(),
        "pidfile left behind"
    );
    assert!(
        !rundir.join(format!("ovs-vswitchd.{pid}.ctl")).exists(),
        "socket left behind"
    );
    // A real ovs-vswitchd (here: a process of that name holding the pidfile)
    // makes the daemon refuse to start, saying why.
    let fake = tmp.path().join("ovs-vswitchd");
    std::fs::copy("/bin/sleep", &fake).expect("copy sleep");
    let mut ovs_proc = std::process::Command::new(&fake)
        .arg("30")
        .spawn()
        .expect("fake ovs");
    std::fs::write(
        rundir.join("ovs-vswitchd.pid"),
        format!("{}\n", ovs_proc.id()),
    )
    .expect("pid");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvswitchd"))
        .env("OVS_RUNDIR", &rundir)
        .arg("--config")
        .arg(&d.config)
        .output()
        .expect("run");
    let _ = ovs_proc.kill();
    let _ = ovs_proc.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("a real Open vSwitch is running"), "{err}");
}

/// `rvswitchd ctl -t CTL args...` → (exit code, stdout, stderr).
fn rvctl(d: &Daemon, args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rvswitchd"))
        .arg("ctl")
        .arg("-t")
        .arg(&d.ctl)
        .arg("--timeout=20")
        .args(args)
        .output()
        .expect("rvswitchd ctl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ctl_edits_ports_and_bridges_in_the_file_and_applies_them() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let br = format!("rvb{}", uniq());
    let br2 = format!("rvn{}", uniq());
    let tap = format!("rvt{}", uniq());
    let d = Daemon::start(&format!("# operator's notes stay\n{}", base(&br)));
    let (code, out, err) = rvctl(
        &d,
        &["add-port", &br, &tap, "type=tap", "ofport=7", "vlan=10"],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("added port {tap} to bridge {br}"))
            && out.contains("configuration reloaded"),
        "{out}"
    );
    let file = std::fs::read_to_string(&d.config).expect("config");
    assert!(file.starts_with("# operator's notes stay\n"), "{file}");
    assert!(wait_for(10, || ids(&d.stats_json())
        .contains(&format!("port:{br}:{tap}"))));
    let (code, show, _) = rvctl(&d, &["show"]);
    assert_eq!(code, Some(0));
    assert!(show.contains(&format!("        Port {tap}\n            tag: 10\n            Interface {tap}\n                type: tap\n                ofport_request: 7\n")), "{show}");
    // Refused edits change nothing.
    let before = std::fs::read_to_string(&d.config).expect("config");
    let (code, _, err) = rvctl(&d, &["add-port", "nosuchbr", "x1"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("no bridge named nosuchbr"), "{err}");
    let (code, _, err) = rvctl(&d, &["add-port", &br, "x2", "ofport=7"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("used twice") && err.contains("unchanged"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&d.config).expect("config"), before);
    // Bridges.
    let (code, out, err) = rvctl(&d, &["add-br", &br2]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("added bridge {br2}")), "{out}");
    let mgmt2 = d.ctl.parent().expect("dir").join(format!("{br2}.mgmt"));
    assert!(wait_for(10, || std::os::unix::net::UnixStream::connect(
        &mgmt2
    )
    .is_ok()));
    let (code, out, _) = rvctl(&d, &["del-br", &br2]);
    assert_eq!(code, Some(0));
    assert!(out.contains(&format!("deleted bridge {br2}")), "{out}");
    let (code, out, _) = rvctl(&d, &["del-port", &tap]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains(&format!("bridge {br}: deleted port {tap}")),
        "{out}"
    );
    assert!(wait_for(10, || !ids(&d.stats_json())
        .contains(&format!("port:{br}:{tap}"))));
    // Other commands pass through like ovs-appctl, with its exit codes.
    let (code, out, _) = rvctl(&d, &["version"]);
    assert_eq!(code, Some(0));
    assert!(out.starts_with("rvswitchd"));
    let (code, _, err) = rvctl(&d, &["no/such"]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn cli_help_errors_and_completions() {
    let bin = env!("CARGO_BIN_EXE_rvswitchd");
    let (ok, out, _) = run(bin, &["--help"]);
    assert!(ok);
    for want in ["--config", "--check-config", "SIGHUP", "EXIT STATUS", "ctl"] {
        assert!(out.contains(want), "--help lacks {want}");
    }
    let out = std::process::Command::new(bin)
        .arg("--bogus")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    let (ok, out, _) = run(bin, &["completions", "bash"]);
    assert!(ok && out.contains("complete"), "{out}");
    // The man page is valid roff that names every option --help names.
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rvswitchd.8"))
        .expect("man page");
    for opt in [
        "config",
        "check\\-config",
        "detach",
        "pidfile",
        "monitor",
        "log\\-file",
        "unixctl",
        "dpid",
        "listen",
        "ports",
        "port\\-type",
    ] {
        assert!(
            man.contains(&format!("\\-\\-{opt}")),
            "man page lacks --{opt}"
        );
    }
}

/// Every `rvswitchd_...` name in a Grafana dashboard's queries.
fn dashboard_metrics(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if let (true, Some(expr)) =
                    (k == "expr" || k == "query" || k == "definition", x.as_str())
                {
                    let mut rest = expr;
                    while let Some(i) = rest.find("rvswitchd_") {
                        let tail = &rest[i..];
                        let end = tail
                            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                            .unwrap_or(tail.len());
                        out.insert(tail[..end].to_string());
                        rest = &tail[end..];
                    }
                }
                dashboard_metrics(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dashboard_metrics(x, out)),
        _ => {}
    }
}

#[test]
fn the_grafana_dashboard_uses_only_metrics_that_exist() {
    if !require(true, &["ovs-appctl"]) {
        return;
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/grafana-rvswitchd.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard"))
            .expect("dashboard JSON");
    let mut used = std::collections::BTreeSet::new();
    dashboard_metrics(&dash, &mut used);
    assert!(
        used.len() > 25,
        "the dashboard uses too few metrics: {used:?}"
    );
    let br = format!("rvb{}", uniq());
    let d = Daemon::start(&base(&br));
    d.reval_wait();
    let names = |text: &str| -> std::collections::BTreeSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| l.split(['{', ' ']).next().map(str::to_string))
            .collect()
    };
    let mut have = names(&d.http_get("/metrics"));
    // Sampled gauges appear after the first sample (about a second).
    assert!(wait_for(10, || {
        have = names(&d.http_get("/metrics"));
        used.iter().all(|u| have.contains(u))
    }));
    let missing: Vec<&String> = used.iter().filter(|u| !have.contains(*u)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard uses metrics /metrics does not have: {missing:?}"
    );
}

/// The packaged path: `cargo deb`, install, ExecStart started by hand (no
/// systemd in CI containers) with a fake NOTIFY_SOCKET. Removes the package
/// again unless it was installed before.
#[test]
fn the_debian_package_installs_and_its_exec_start_speaks_notify() {
    if !require(true, &["cargo-deb", "dpkg", "apt-get", "ovs-appctl"]) {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new("cargo")
        .args(["deb", "--manifest-path", &format!("{root}/Cargo.toml")])
        .output()
        .expect("cargo deb");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo deb: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = stdout
        .lines()
        .rev()
        .find(|l| l.trim_end().ends_with(".deb"))
        .map(|l| l.trim().to_string())
        .expect("path of the .deb");
    let was_installed =
        sh_try("dpkg-query -W -f='${Status}' rvswitchd | grep -q 'install ok installed'").0;
    sh(&format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall {deb} >/dev/null"
    ));
    struct Uninstall(bool);
    impl Drop for Uninstall {
        fn drop(&mut self) {
            if !self.0 {
                let _ = sh_try(
                    "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rvswitchd >/dev/null 2>&1",
                );
            }
        }
    }
    let _cleanup = Uninstall(was_installed);
    let conffiles = sh("dpkg-query -W -f='${Conffiles}' rvswitchd");
    assert!(
        conffiles.contains("/etc/rvswitchd/rvswitchd.toml"),
        "{conffiles}"
    );
    for f in ["/usr/sbin/rvswitchd", "/usr/share/man/man8/rvswitchd.8.gz"] {
        assert!(std::path::Path::new(f).exists(), "{f} not installed");
    }
    let unit_path = [
        "/lib/systemd/system/rvswitchd.service",
        "/usr/lib/systemd/system/rvswitchd.service",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists())
    .expect("unit installed");
    let unit = std::fs::read_to_string(unit_path).expect("unit");
    assert!(
        unit.contains("Type=notify")
            && unit.contains("ExecReload=")
            && unit.contains("WatchdogSec="),
        "{unit}"
    );
    let exec = |key: &str| -> Vec<String> {
        unit.lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let start = exec("ExecStart=");
    assert_eq!(
        start.get(1).map(String::as_str),
        Some("--config"),
        "{start:?}"
    );
    let conf = start.get(2).cloned().unwrap_or_default();
    // ExecStartPre: the packaged conffile is valid.
    let pre = exec("ExecStartPre=");
    let (ok, _, err) = run(
        &pre[0],
        &pre[1..].iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(ok, "ExecStartPre: {err}");
    // ExecStart as systemd would run it, on a copy of the conffile whose
    // bridge name and paths are this test's (the shipped br0 and /run paths
    // may be in use on this machine); nothing else differs.
    let br = format!("rvb{}", uniq());
    let tmp = tempfile::tempdir().expect("tmp");
    let ctl = tmp.path().join("ctl.sock");
    let mgmt = tmp.path().join("br.mgmt");
    let shipped = std::fs::read_to_string(&conf).expect("conffile");
    let copy = shipped
        .replace("/run/rvswitchd/rvswitchd.ctl", &ctl.display().to_string())
        .replace("/run/rvswitchd/br0.mgmt", &mgmt.display().to_string())
        .replace("127.0.0.1:9464", &format!("127.0.0.1:{}", free_port()))
        .replace("name = \"br0\"", &format!("name = \"{br}\""));
    let copy_path = tmp.path().join("rvswitchd.toml");
    std::fs::write(&copy_path, copy).expect("copy");
    let mut sd = FakeSystemd::new(tmp.path());
    let mut child = std::process::Command::new(&start[0])
        .args(&start[1..2])
        .arg(&copy_path)
        .env("NOTIFY_SOCKET", &sd.path)
        .env("WATCHDOG_USEC", "2000000")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ExecStart");
    let ready = sd.wait("READY=1", 30);
    let reload = exec("ExecReload=");
    let reload_ok = ready && {
        let line = reload
            .join(" ")
            .replace("$MAINPID", &child.id().to_string());
        sh_try(&line).0
    };
    let watchdog = reload_ok && sd.wait("WATCHDOG=1", 10);
    // SAFETY: sending SIGTERM to our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let stopping = sd.wait("STOPPING=1", 10);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ready, "no READY=1 from ExecStart: {:?}", sd.got);
    assert!(reload_ok, "ExecReload failed: {reload:?}");
    assert!(watchdog, "no WATCHDOG=1: {:?}", sd.got);
    assert!(stopping, "no STOPPING=1: {:?}", sd.got);
}
