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
use rvswitchd::control::{commands, http, unixctl};
use rvswitchd::daemon::cli::{self, Mode, RunOpts};
use rvswitchd::daemon::{fds, logging, process, procfs};
use rvswitchd::messages::daemon::{Reload, ReloadOrigin, Shutdown};
use rvswitchd::messages::Mailbox;
use rvswitchd::netdev::PortType;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    if let Err(e) = process::make_crash_signals_fatal() {
        eprintln!("rvswitchd: {e}");
        return ExitCode::from(1);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::parse(&args) {
        Err(e) => {
            eprintln!("rvswitchd: {e}");
            ExitCode::from(2)
        }
        Ok(Mode::Help) => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Ok(Mode::Version) => {
            println!("rvswitchd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Mode::CheckConfig(path)) => match config::load(&path) {
            Ok(_) => {
                println!("{}: OK", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        },
        Ok(Mode::Ctl {
            socket,
            command,
            args,
        }) => match unixctl::call(&socket, &command, &args) {
            Ok(Ok(text)) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Ok(Err(text)) => {
                eprintln!("{text}");
                eprintln!("rvswitchd ctl: {} command failed", socket.display());
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("rvswitchd ctl: {e}");
                ExitCode::from(1)
            }
        },
        Ok(Mode::Run(o)) => run(o),
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
        inactivity_probe_ms: 5000,
        max_backoff_ms: 8000,
        mac_aging_secs: 300,
        mac_table_size: 8192,
        internal_port: false,
        port: (1u32..)
            .zip(o.ports.iter())
            .map(|(n, p)| PortConfig {
                name: p.clone(),
                kind: PortType::System,
                ofport: Some(n),
                vlan: None,
                trunks: vec![],
            })
            .collect(),
    });
    // RVSWITCHD__SECTION__KEY overrides apply here too (e.g. revalidator
    // counts for benchmarks), through the same path as for a file.
    let text = toml::to_string(&cfg).map_err(|e| e.to_string())?;
    config::parse_str(&text, "<command line>", true).map_err(|e| e.to_string())
}

fn run(o: RunOpts) -> ExitCode {
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
    fds::reserve().fill();
    let pidfile = match &o.pidfile {
        Some(p) => match process::Pidfile::create(p) {
            Ok(f) => Some(f),
            Err(e) => {
                ready.notify(Err(e.clone()));
                eprintln!("rvswitchd: {e}");
                return ExitCode::from(1);
            }
        },
        None => None,
    };
    let sys = actix::System::new();
    let result = sys.block_on(async move { start(cfg, o.config.clone()).await });
    match result {
        Ok(ctl_path) => {
            tracing::info!("rvswitchd {} started", env!("CARGO_PKG_VERSION"));
            ready.notify(Ok(()));
            if let Err(e) = sys.run() {
                tracing::error!("event loop: {e}");
            }
            let _ = std::fs::remove_file(ctl_path);
            drop(pidfile);
            tracing::info!("rvswitchd exited");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("rvswitchd: {e}");
            ready.notify(Err(e));
            ExitCode::from(1)
        }
    }
}

async fn start(cfg: Config, cfg_path: Option<PathBuf>) -> Result<PathBuf, String> {
    use actix::Actor;
    if !cfg.daemon.stats_listen.is_empty() {
        let addr = cfg
            .daemon
            .stats_listen
            .parse()
            .map_err(|e| format!("daemon.stats_listen: {e}"))?;
        http::start(addr).map_err(|e| format!("stats endpoint {addr}: {e}"))?;
    }
    let ports = PortRegistry::default();
    let monitor =
        start_link_monitor(ports.clone()).map_err(|e| format!("rtnetlink monitor: {e}"))?;
    // The monitor lives as long as the process.
    std::mem::forget(monitor);
    let ctl_path = cfg.daemon.control_socket.clone();
    let mut daemon = Daemon::new(cfg, cfg_path, ports);
    daemon.remove_on_exit(ctl_path.clone());
    let meter = daemon.meter();
    let addr = daemon.start();
    let mb = Mailbox::new(addr, meter);

    let cmds = unixctl::Commands::default();
    commands::register_all(&cmds, mb.clone());
    unixctl::serve(&ctl_path, cmds)
        .map_err(|e| format!("control socket {}: {e}", ctl_path.display()))?;

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
    Ok(ctl_path)
}
