//! `rvswitchd`: the daemon, its config checker and its control client.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

use rvswitchd::actors::daemon::Daemon;
use rvswitchd::actors::port::{start_link_monitor, PortRegistry};
use rvswitchd::config::{self, BridgeConfig, Config, FailMode, PortConfig};
use rvswitchd::control::vsctl::{self, Edit};
use rvswitchd::control::{commands, http, unixctl};
use rvswitchd::daemon::cli::{self, CtlOpts, Mode, RunOpts};
use rvswitchd::daemon::{fds, listening, logging, notify, ovs_compat, process, procfs, takeover};
use rvswitchd::messages::daemon::{GetInventory, Reload, ReloadOrigin, ShowConfig, Shutdown};
use rvswitchd::messages::Mailbox;
use rvswitchd::netdev::{self, PortType};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Longest wait for every configured listener before reporting ready anyway
/// (with the missing ones named in the status).
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is checked while waiting.
const READY_POLL: Duration = Duration::from_millis(50);

fn main() -> ExitCode {
    if let Err(e) = process::make_crash_signals_fatal() {
        eprintln!("rvswitchd: {e}");
        return ExitCode::from(1);
    }
    let mode = match cli::parse(std::env::args_os()) {
        Ok(m) => m,
        // Help and version print to stdout and exit 0; usage errors to
        // stderr with status 2.
        Err(e) => e.exit(),
    };
    match mode {
        Mode::CheckConfig(path) => match config::load(&path) {
            Ok(_) => {
                println!("{}: OK", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Mode::Completions(shell) => {
            cli::completions(shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Mode::Ctl(c) => ctl(c),
        Mode::Run(o) => run(o),
    }
}

/// One control-socket call; `Err` is a failure to talk to the daemon.
fn call(c: &CtlOpts, method: &str, args: &[String]) -> Result<unixctl::CmdResult, String> {
    let timeout = (c.timeout > 0).then(|| Duration::from_secs(c.timeout));
    unixctl::call(&c.socket, method, args, timeout)
}

fn ctl(c: CtlOpts) -> ExitCode {
    let fail = |e: String| {
        eprintln!("rvswitchd ctl: {e}");
        ExitCode::from(1)
    };
    let Some((cmd, args)) = c.command.split_first() else {
        return fail("missing COMMAND".into());
    };
    if cmd == "show" {
        return match ctl_show(&c) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Some(edit) = Edit::parse(&c.command) {
        return match edit.and_then(|e| ctl_edit(&c, &e)) {
            Ok((text, true)) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Ok((text, false)) => {
                eprint!("{text}");
                ExitCode::from(2)
            }
            Err(e) => fail(e),
        };
    }
    match call(&c, cmd, args) {
        Ok(Ok(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Err(text)) => {
            eprintln!("{}", text.trim_end());
            eprintln!("rvswitchd ctl: {} command failed", c.socket.display());
            ExitCode::from(2)
        }
        Err(e) => fail(e),
    }
}

/// `show`: the running configuration (or, with `--file` and no daemon, the file).
fn ctl_show(c: &CtlOpts) -> Result<String, String> {
    match call(c, "config/show", &[]) {
        Ok(Ok(text)) => {
            let cfg = config::parse_str(&text, "config/show", false).map_err(|e| e.to_string())?;
            let source = text
                .lines()
                .next()
                .and_then(|l| l.strip_prefix("# in force: "))
                .unwrap_or("running configuration")
                .to_string();
            Ok(vsctl::show(&cfg, &source))
        }
        Ok(Err(e)) => Err(e),
        Err(e) => match &c.file {
            Some(f) => Ok(vsctl::show(
                &config::load(f).map_err(|e| e.to_string())?,
                &f.display().to_string(),
            )),
            None => Err(e),
        },
    }
}

/// An edit: the file (`--file`, or the daemon's start-up file), then a reload
/// when the daemon runs from that file. Returns the text and whether all of
/// it succeeded.
fn ctl_edit(c: &CtlOpts, edit: &Edit) -> Result<(String, bool), String> {
    let daemon_file = match call(c, "config/path", &[]) {
        Ok(Ok(p)) => Some(PathBuf::from(p.trim())),
        _ => None,
    };
    let file = c
        .file
        .clone()
        .or_else(|| daemon_file.clone())
        .ok_or_else(|| {
            format!(
                "cannot ask {} which file to edit (is the daemon running?); name it with --file",
                c.socket.display()
            )
        })?;
    let mgmt_dir = c.socket.parent().unwrap_or(Path::new("/run/rvswitchd"));
    let summary = vsctl::edit_file(&file, edit, mgmt_dir)?;
    let same = daemon_file.as_ref().is_some_and(|d| {
        d == &file || std::fs::canonicalize(d).ok() == std::fs::canonicalize(&file).ok()
    });
    if !same {
        return Ok((
            format!(
                "{summary} in {}; no daemon runs from that file, so nothing was applied
",
                file.display()
            ),
            true,
        ));
    }
    match call(c, "config/reload", &[])? {
        Ok(text) => Ok((
            format!(
                "{summary} in {}
{text}",
                file.display()
            ),
            true,
        )),
        Err(text) => Ok((
            format!(
                "{summary} in {} (the file is changed), but applying it failed:\n{text}",
                file.display()
            ),
            false,
        )),
    }
}

/// The benchmark contract (`--dpid --listen --ports`): one secure bridge whose
/// ports are numbered 1, 2, ... in order, OpenFlow on `--listen`, OVS's
/// flow limit and idle time from the harness README.
fn contract_config(o: &RunOpts) -> Result<Config, String> {
    let listen = o.listen.clone().ok_or("--listen is required")?;
    let (ip, port) = listen
        .rsplit_once(':')
        .ok_or_else(|| format!("--listen {listen:?}: expected IP:PORT"))?;
    // Empty when the options were not built by the parser (its default is "system").
    let port_type = match o.port_type.as_str() {
        "" => PortType::System,
        t => netdev::parse_port_type(t).map_err(|e| e.to_string())?,
    };
    let mut cfg: Config = toml::from_str("").map_err(|e| e.to_string())?;
    cfg.daemon.control_socket = o
        .unixctl
        .clone()
        .unwrap_or_else(|| PathBuf::from(cli::DEFAULT_CTL));
    cfg.daemon.stats_listen = String::new();
    cfg.daemon.allow_no_bridges = false;
    cfg.datapath.flow_limit = 200_000;
    cfg.datapath.max_idle_ms = 600_000;
    cfg.bridge.push(BridgeConfig {
        name: "sbs0".into(),
        datapath_id: Some(format!("{:016x}", o.dpid.unwrap_or(1))),
        fail_mode: FailMode::Secure,
        listeners: vec![format!("ptcp:{port}:{ip}")],
        controllers: vec![],
        protocols: None,
        inactivity_probe_ms: 5000,
        max_backoff_ms: 8000,
        mac_aging_secs: 300,
        mac_table_size: 8192,
        internal_port: false,
        // As Open vSwitch: a benchmark run starts with empty tables.
        restore_flows: false,
        // `--ports ""` (no port) and repeated spaces give empty names: skipped.
        port: (1u32..)
            .zip(o.ports.iter().filter(|p| !p.is_empty()))
            .map(|(n, p)| PortConfig {
                ofport: Some(n),
                ..PortConfig::new(p, port_type)
            })
            .collect(),
    });
    // RVSWITCHD__SECTION__KEY overrides apply here too (e.g. revalidator
    // counts for benchmarks), through the same path as for a file.
    let text = toml::to_string(&cfg).map_err(|e| e.to_string())?;
    config::parse_str(&text, "<command line>", true).map_err(|e| e.to_string())
}

fn run(o: RunOpts) -> ExitCode {
    // Before any thread: the notification variables must not reach children.
    let notify_setup = notify::init();
    let loaded = match &o.config {
        Some(p) => config::load(p).map_err(|e| e.to_string()),
        None => contract_config(&o),
    };
    let mut cfg = match loaded {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rvswitchd: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(u) = &o.unixctl {
        cfg.daemon.control_socket = u.clone();
    }
    let ovs_rundir = cfg.daemon.ovs_compat_paths.then(config::ovs_rundir);
    if let Some(dir) = &ovs_rundir {
        if let Err(e) = ovs_compat::check_no_real_ovs(dir) {
            eprintln!("rvswitchd: {e}");
            return ExitCode::from(1);
        }
    }
    rvswitchd::actors::connmgr::configure(&cfg.openflow, &cfg.ssl);
    // Fork before any thread exists.
    let mut ready = process::ReadyNotifier::none();
    if o.detach {
        match process::detach() {
            Ok(r) => ready = r,
            Err(e) => {
                eprintln!("rvswitchd: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if o.monitor {
        if let Err(e) = process::monitor(&mut ready) {
            eprintln!("rvswitchd: {e}");
            return ExitCode::from(1);
        }
    }
    if let Err(e) = logging::init(&cfg.daemon.log_level, o.log_file.as_deref()) {
        ready.notify(Err(e.clone()));
        eprintln!("rvswitchd: {e}");
        return ExitCode::from(1);
    }
    match notify_setup {
        Ok(Some(s)) => tracing::info!("{s}"),
        Ok(None) => {}
        Err(e) => tracing::warn!("{e}"),
    }
    match fds::raise_limit() {
        Ok(l) if l.soft > l.soft_at_start => tracing::info!(
            "file descriptors: limit raised from {} to {} (the hard limit)",
            l.soft_at_start,
            l.soft
        ),
        Ok(l) => tracing::info!("file descriptors: limit {} (hard {})", l.soft, l.hard),
        Err(e) => tracing::warn!("file descriptors: {e}"),
    }
    procfs::init();
    fds::fill_all();
    let mut pidfiles = Vec::new();
    let wanted: Vec<PathBuf> = o
        .pidfile
        .iter()
        .cloned()
        .chain(ovs_rundir.as_deref().map(ovs_compat::pidfile))
        .collect();
    for p in wanted {
        match process::Pidfile::create(&p) {
            Ok(f) => pidfiles.push(f),
            Err(e) => {
                ready.notify(Err(e.clone()));
                eprintln!("rvswitchd: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // Before anything binds: the running daemon's listeners and TAP devices
    // are what our start-up binds and opens (see `daemon::takeover`).
    let successor = if o.takeover {
        match take_over(&cfg, ovs_rundir.is_some()) {
            Ok(s) => Some(s),
            Err(e) => {
                ready.notify(Err(e.clone()));
                eprintln!("rvswitchd: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let sys = actix::System::new();
    let result = sys
        .block_on(async move { start(cfg, o.config.clone(), ovs_rundir, ready, successor).await });
    match result {
        Ok(sockets) => {
            tracing::info!("rvswitchd {} started", env!("CARGO_PKG_VERSION"));
            if let Err(e) = sys.run() {
                tracing::error!("event loop: {e}");
            }
            for s in sockets {
                let _ = std::fs::remove_file(s);
            }
            drop(pidfiles);
            tracing::info!("rvswitchd exited");
            ExitCode::SUCCESS
        }
        Err((e, mut ready)) => {
            tracing::error!("{e}");
            eprintln!("rvswitchd: {e}");
            notify::notify(&format!("STATUS={}", notify::status_line(&e)));
            ready.notify(Err(e));
            ExitCode::from(1)
        }
    }
}

/// `--takeover`: connects to the daemon running with `cfg`'s control socket
/// and receives its descriptors.
fn take_over(cfg: &Config, ovs_paths: bool) -> Result<takeover::Successor, String> {
    if ovs_paths {
        // Its ovs-vswitchd pidfile is held by the running daemon.
        return Err(
            "--takeover: not with [daemon] ovs_compat_paths (the pidfile is the running daemon's)"
                .into(),
        );
    }
    let path = takeover::socket_path(&cfg.daemon.control_socket);
    let s = takeover::Successor::connect(&path)?;
    tracing::info!(
        "takeover: received {} descriptors from process {}: {}",
        s.received.len(),
        s.old_pid,
        s.received.join(", ")
    );
    Ok(s)
}

/// Waits until every configured listener is held by this process (or
/// [`READY_TIMEOUT`] passed), then tells the detaching parent and systemd
/// (`READY=1` with a `STATUS=` line). What "ready" observes: the bridges'
/// actors were started and their `punix:`/`ptcp:` listeners are listening
/// sockets of this process; ports whose devices are missing or still opening,
/// and active controller connections, are not waited for.
async fn report_ready(
    daemon: Mailbox<Daemon>,
    mut ready: process::ReadyNotifier,
    successor: Option<takeover::Successor>,
) {
    let t = Instant::now();
    let status = loop {
        let view = match daemon.ask(ShowConfig).await {
            Ok(v) => v,
            Err(e) => break format!("daemon unavailable: {e}"),
        };
        let held = listening::held();
        let missing: Vec<String> = view
            .cfg
            .bridge
            .iter()
            .flat_map(|b| b.listeners.iter().map(move |l| (b, l)))
            .filter(|(_, l)| !held.has(l))
            .map(|(b, l)| format!("{} {l}", b.name))
            .collect();
        let n = view.cfg.bridge.len();
        if missing.is_empty() {
            break format!("{n} bridge(s) configured, every listener listening");
        }
        if t.elapsed() >= READY_TIMEOUT {
            let s = format!(
                "{n} bridge(s) configured; not listening: {}",
                missing.join(", ")
            );
            tracing::warn!("{s}");
            break s;
        }
        tokio::time::sleep(READY_POLL).await;
    };
    // A takeover: the old daemon may exit now, and systemd is told the
    // service's main process is this one (it needs NotifyAccess=all to
    // accept that from a process it did not start as the main one).
    let mut main_pid = String::new();
    if let Some(s) = successor {
        let old = s.old_pid;
        s.done();
        tracing::info!("takeover: process {old} told to exit");
        if let Ok(view) = daemon.ask(ShowConfig).await {
            actix_rt::spawn(close_inherited(&view.cfg));
        }
        main_pid = format!("MAINPID={}\n", std::process::id());
    }
    ready.notify(Ok(()));
    notify::notify(&format!(
        "{main_pid}READY=1\nSTATUS={}",
        notify::status_line(&status)
    ));
}

/// Longest a configured TAP port's inherited device waits for its port to
/// open (after that it is closed and the device goes).
const TAP_CLAIM_WAIT: Duration = Duration::from_secs(30);

/// After a takeover: closes the inherited descriptors this configuration
/// does not use at once (listeners are all bound by now), and those of its
/// TAP ports once they are claimed or [`TAP_CLAIM_WAIT`] passed — the Port
/// actors open their devices after the bridges start.
fn close_inherited(cfg: &Config) -> impl std::future::Future<Output = ()> {
    use rvswitchd::util::inherit;
    let taps: std::collections::BTreeSet<String> = cfg
        .bridge
        .iter()
        .flat_map(|b| {
            let ports = b
                .port
                .iter()
                .filter(|p| matches!(p.kind, PortType::Internal | PortType::Tap))
                .map(|p| inherit::tap_key(&p.name));
            b.internal_port
                .then(|| inherit::tap_key(&b.name))
                .into_iter()
                .chain(ports)
        })
        .collect();
    async move {
        let closed = inherit::close_unclaimed(|k| taps.contains(k));
        if !closed.is_empty() {
            tracing::info!(
                "takeover: closed what this configuration does not use: {}",
                closed.join(", ")
            );
        }
        let t = Instant::now();
        while !inherit::unclaimed().is_empty() && t.elapsed() < TAP_CLAIM_WAIT {
            tokio::time::sleep(READY_POLL).await;
        }
        let closed = inherit::close_unclaimed(|_| false);
        if !closed.is_empty() {
            tracing::warn!(
                "takeover: ports not opened within {} s; their devices are closed: {}",
                TAP_CLAIM_WAIT.as_secs(),
                closed.join(", ")
            );
        }
    }
}

/// Sends `WATCHDOG=1` every half watchdog interval while the Daemon answers
/// within that time: a stuck supervisor (main thread) stops the pings and
/// systemd restarts the service.
async fn watchdog(daemon: Mailbox<Daemon>, period: Duration) {
    loop {
        tokio::time::sleep(period).await;
        match tokio::time::timeout(period, daemon.ask(GetInventory)).await {
            Ok(Ok(_)) => {
                notify::notify("WATCHDOG=1");
            }
            _ => tracing::warn!("watchdog: the daemon did not answer within {period:?}"),
        }
    }
}

type StartError = (String, process::ReadyNotifier);

/// Starts the stats endpoint, the actors and the control socket(s); returns
/// the socket paths to remove at exit.
async fn start(
    cfg: Config,
    cfg_path: Option<PathBuf>,
    ovs_rundir: Option<PathBuf>,
    ready: process::ReadyNotifier,
    mut successor: Option<takeover::Successor>,
) -> Result<Vec<PathBuf>, StartError> {
    use actix::Actor;
    if !cfg.daemon.stats_listen.is_empty() {
        let addr = match cfg.daemon.stats_listen.parse() {
            Ok(a) => a,
            Err(e) => return Err((format!("daemon.stats_listen: {e}"), ready)),
        };
        if let Err(e) = http::start(addr) {
            return Err((format!("stats endpoint {addr}: {e}"), ready));
        }
    }
    let ports = PortRegistry::default();
    let monitor = match start_link_monitor(ports.clone()) {
        Ok(m) => m,
        Err(e) => return Err((format!("rtnetlink monitor: {e}"), ready)),
    };
    // The monitor lives as long as the process.
    std::mem::forget(monitor);
    let takeover_path = takeover::socket_path(&cfg.daemon.control_socket);
    let mut sockets = vec![cfg.daemon.control_socket.clone()];
    sockets.extend(ovs_rundir.as_deref().map(ovs_compat::ctl_socket));
    let mut daemon = Daemon::new(cfg, cfg_path, ports);
    for s in &sockets {
        daemon.remove_on_exit(s.clone());
    }
    daemon.remove_on_exit(takeover_path.clone());
    // Forwarding stops in the old daemon here and resumes when our bridges'
    // poll threads run: everything slow (configuration, listeners) is done.
    if let Some(s) = successor.as_mut() {
        match s.stop() {
            Ok(saved) => {
                for line in saved {
                    tracing::info!("takeover: process {}: {line}", s.old_pid);
                }
            }
            Err(e) => return Err((e, ready)),
        }
    }
    let meter = daemon.meter();
    let addr = daemon.start();
    let mb = Mailbox::new(addr, meter);
    let mb_stop = mb.clone();
    if let Err(e) = takeover::serve(&takeover_path, move || {
        let mb = mb_stop.clone();
        async move {
            mb.ask(rvswitchd::messages::daemon::StopForwarding)
                .await
                .map_err(|e| format!("daemon unavailable: {e}"))?
        }
    }) {
        return Err((
            format!("takeover socket {}: {e}", takeover_path.display()),
            ready,
        ));
    }

    // Before the Daemon's actor runs (it starts at our first await): the
    // control thread's private descriptor table must hold no device.
    let mb_ctl = mb.clone();
    if let Err(e) = unixctl::serve_on_thread(&sockets, move || {
        let cmds = unixctl::Commands::default();
        commands::register_all(&cmds, mb_ctl);
        cmds
    }) {
        return Err((format!("control socket {e}"), ready));
    }
    actix_rt::spawn(report_ready(mb.clone(), ready, successor));
    if let Some(period) = notify::watchdog_period() {
        actix_rt::spawn(watchdog(mb.clone(), period));
    }

    // Signals: HUP reloads, TERM/INT exit cleanly.
    let mb2 = mb.clone();
    actix_rt::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            // The Daemon logs what the reload did; only a refusal to even
            // start one needs saying here.
            let r = mb2
                .ask(Reload {
                    path: None,
                    origin: ReloadOrigin::Signal,
                })
                .await;
            match r {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!("SIGHUP: {e}"),
                Err(e) => tracing::error!("SIGHUP: daemon unavailable: {e}"),
            }
        }
    });
    for kind in [
        tokio::signal::unix::SignalKind::terminate(),
        tokio::signal::unix::SignalKind::interrupt(),
    ] {
        let mb3 = mb.clone();
        actix_rt::spawn(async move {
            let Ok(mut s) = tokio::signal::unix::signal(kind) else {
                return;
            };
            if s.recv().await.is_some() {
                let _ = mb3.ask(Shutdown).await;
            }
        });
    }
    Ok(sockets)
}
