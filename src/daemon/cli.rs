//! The command line, declared with `clap` (help, precise errors, shell
//! completions). The help text is written to serve as the manual page's body
//! (`docs/rvswitchd.8` follows it).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Default control socket path.
pub const DEFAULT_CTL: &str = "/run/rvswitchd/rvswitchd.ctl";

/// rvswitchd: a userspace OpenFlow 1.3 switch for Linux.
///
/// Runs the switch described by a TOML configuration file (see
/// /etc/rvswitchd/rvswitchd.toml), or checks such a file, or talks to a
/// running daemon through its control socket.
#[derive(Debug, Parser)]
#[command(
    name = "rvswitchd",
    version,
    about = "A userspace OpenFlow 1.3 switch for Linux",
    long_about = None,
    after_long_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    /// What to do; without a subcommand, run the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the daemon itself.
    #[command(flatten)]
    pub run: RunOpts,
}

const AFTER_HELP: &str = "\
SIGNALS:
  SIGHUP          re-read the start-up configuration file (--config) and apply what changed
                  (systemctl reload); never a file named in an earlier config/reload FILE
  SIGTERM, SIGINT exit cleanly
  SIGSEGV, SIGBUS crash (with --monitor, a clean process is started again)

FILES:
  /etc/rvswitchd/rvswitchd.toml   configuration (packaged)
  /run/rvswitchd/rvswitchd.ctl    control socket, mode 0600 (daemon.control_socket)
  /run/rvswitchd/BRIDGE.mgmt      OpenFlow socket of a bridge in the shipped configuration

ENVIRONMENT:
  NOTIFY_SOCKET, WATCHDOG_USEC    systemd notification (READY=1, STOPPING=1, WATCHDOG=1)
  JOURNAL_STREAM                  when stderr is the journal, log lines carry <N> level prefixes
  OVS_RUNDIR                      run directory for [daemon] ovs_compat_paths (default /var/run/openvswitch)
  RVSWITCHD__SECTION__KEY=VALUE   overrides a configuration key (e.g. RVSWITCHD__DAEMON__LOG_LEVEL=debug)

EXIT STATUS:
  0 success; 1 the daemon could not start or the file is invalid; 2 usage error, or a control
  command failed (like ovs-appctl)

EXAMPLES:
  rvswitchd --config /etc/rvswitchd/rvswitchd.toml --detach --pidfile /run/rvswitchd/rvswitchd.pid
  rvswitchd --check-config my.toml
  rvswitchd ctl upcall/show
  rvswitchd ctl add-port br0 veth1 ofport=1 vlan=10
  rvswitchd ctl show
  ovs-ofctl -O OpenFlow13 dump-flows unix:/run/rvswitchd/br0.mgmt";

/// Options for running the daemon.
#[derive(Debug, Clone, Default, PartialEq, Args)]
pub struct RunOpts {
    /// Configuration file to run (required unless the benchmark flags are given).
    #[arg(short = 'c', long, value_name = "FILE", required_unless_present_any = ["check_config", "listen"])]
    pub config: Option<PathBuf>,
    /// Validate FILE (syntax, keys, ranges, addresses) and exit: errors name file, line and key.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["config", "detach", "monitor"])]
    pub check_config: Option<PathBuf>,
    /// Fork into the background; return only once the switch is up (0) or failed (1).
    #[arg(long)]
    pub detach: bool,
    /// Write the daemon's pid to PATH (removed at exit; refused if a live process holds it).
    #[arg(long, value_name = "PATH")]
    pub pidfile: Option<PathBuf>,
    /// Keep a monitor process that restarts the daemon after a crash signal (at most every 10 s).
    #[arg(long)]
    pub monitor: bool,
    /// Append logs to PATH instead of stderr.
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Benchmark contract: datapath id (decimal) of the one secure bridge.
    #[arg(long, value_name = "N", requires = "listen")]
    pub dpid: Option<u64>,
    /// Benchmark contract: OpenFlow listener IP:PORT of the one bridge (makes --config optional).
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<String>,
    /// Benchmark contract: interfaces to attach as OpenFlow ports 1, 2, ... (space-separated).
    #[arg(
        long,
        value_name = "\"P1 P2...\"",
        value_delimiter = ' ',
        requires = "listen"
    )]
    pub ports: Vec<String>,
    /// Benchmark contract: how --ports are opened: system (AF_PACKET, the default) or afxdp (AF_XDP, xdp_mode best-effort).
    #[arg(
        long,
        value_name = "TYPE",
        default_value = "system",
        value_parser = ["system", "afxdp"],
        requires = "listen"
    )]
    pub port_type: String,
    /// Control socket path, overriding daemon.control_socket.
    #[arg(long, value_name = "PATH")]
    pub unixctl: Option<PathBuf>,
    /// Replace the daemon running with this configuration: receive its listeners and TAP devices, restore its tables, then it exits.
    #[arg(long, conflicts_with_all = ["check_config", "pidfile", "monitor"])]
    pub takeover: bool,
}

/// Subcommands.
#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum Command {
    /// Talk to a running daemon (like ovs-appctl, plus ovs-vsctl-like port and bridge edits).
    ///
    /// COMMAND is a control command (`rvswitchd ctl list-commands` lists them), or one of:
    ///
    ///   add-port BRIDGE IFACE [type=system|afxdp|tap|internal] [ofport=N] [vlan=N] [trunks=N,N...]
    ///   del-port [BRIDGE] IFACE
    ///   add-br BRIDGE [fail_mode=standalone|secure] [datapath_id=HEX16] [listener=ADDR...]
    ///   del-br BRIDGE
    ///   show
    ///
    /// Edits change the configuration file (the daemon's start-up file, or --file) atomically,
    /// keeping its comments, then apply it through the same reload as SIGHUP, so the file stays
    /// the truth.
    #[command(verbatim_doc_comment)]
    Ctl(CtlOpts),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `rvswitchd ctl` options.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct CtlOpts {
    /// The daemon's control socket.
    #[arg(short = 't', long = "target", value_name = "SOCKET", default_value = DEFAULT_CTL)]
    pub socket: PathBuf,
    /// Configuration file to edit (default: the running daemon's start-up file).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Seconds to wait for the daemon's answer (0: forever).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub timeout: u64,
    /// The command and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND [ARG]..."
    )]
    pub command: Vec<String>,
}

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Run the daemon.
    Run(RunOpts),
    /// Validate a config file and exit.
    CheckConfig(PathBuf),
    /// Control-socket client.
    Ctl(CtlOpts),
    /// Print a completion script.
    Completions(clap_complete::Shell),
}

/// Parses `args` (with the program name first). Help and version requests
/// and usage errors come back as `clap::Error`, which prints itself.
pub fn parse<I, T>(args: I) -> Result<Mode, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args)?;
    Ok(match cli.command {
        Some(Command::Ctl(c)) => Mode::Ctl(c),
        Some(Command::Completions { shell }) => Mode::Completions(shell),
        None => match cli.run.check_config {
            Some(p) => Mode::CheckConfig(p),
            None => Mode::Run(cli.run),
        },
    })
}

/// Writes the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "rvswitchd", out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &[&str]) -> Result<Mode, clap::Error> {
        parse(std::iter::once("rvswitchd").chain(v.iter().copied()))
    }

    #[test]
    fn parses_modes() {
        match p(&["ctl", "-t", "/tmp/x", "version"]).unwrap() {
            Mode::Ctl(c) => {
                assert_eq!(c.socket, PathBuf::from("/tmp/x"));
                assert_eq!(c.command, vec!["version".to_string()]);
            }
            m => panic!("{m:?}"),
        }
        match p(&["ctl", "dpctl/dump-flows", "-m", "br0"]).unwrap() {
            Mode::Ctl(c) => {
                assert_eq!(c.socket, PathBuf::from(DEFAULT_CTL));
                assert_eq!(c.command, vec!["dpctl/dump-flows", "-m", "br0"]);
            }
            m => panic!("{m:?}"),
        }
        match p(&["--config", "a.toml", "--detach", "--pidfile", "p"]).unwrap() {
            Mode::Run(o) => {
                assert!(o.detach);
                assert_eq!(o.pidfile, Some("p".into()));
            }
            m => panic!("{m:?}"),
        }
        assert_eq!(
            p(&["--check-config", "x.toml"]).unwrap(),
            Mode::CheckConfig("x.toml".into())
        );
        match p(&["--dpid", "7", "--listen", "127.0.0.1:1", "--ports", "a b"]).unwrap() {
            Mode::Run(o) => {
                assert_eq!(o.ports, vec!["a", "b"]);
                assert_eq!(o.port_type, "system");
            }
            m => panic!("{m:?}"),
        }
        match p(&[
            "--listen",
            "127.0.0.1:1",
            "--ports",
            "a",
            "--port-type",
            "afxdp",
        ])
        .unwrap()
        {
            Mode::Run(o) => assert_eq!(o.port_type, "afxdp"),
            m => panic!("{m:?}"),
        }
        let e = p(&["--listen", "1:1", "--port-type", "tap"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--port-type") && e.contains("afxdp"), "{e}");
        assert!(matches!(
            p(&["completions", "bash"]).unwrap(),
            Mode::Completions(clap_complete::Shell::Bash)
        ));
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let e = p(&["--bogus"]).unwrap_err().to_string();
        assert!(e.contains("--bogus"), "{e}");
        let e = p(&[]).unwrap_err().to_string();
        assert!(e.contains("--config"), "{e}");
        let e = p(&["--dpid", "x", "--listen", "1"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("--dpid") && e.contains("'x'"), "{e}");
        let e = p(&["ctl"]).unwrap_err().to_string();
        assert!(e.contains("COMMAND"), "{e}");
        let e = p(&["--check-config", "a", "--detach"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be used with"), "{e}");
    }

    #[test]
    fn completions_are_generated() {
        let mut out = Vec::new();
        completions(clap_complete::Shell::Bash, &mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("rvswitchd") && s.contains("--check-config"));
    }

    #[test]
    fn the_declaration_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
