//! Command-line parsing. Hand-written (three modes, a dozen flags) so that the
//! messages name exactly what was wrong.

use std::path::PathBuf;

/// What the binary was asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Run the daemon.
    Run(RunOpts),
    /// Validate a config file and exit.
    CheckConfig(PathBuf),
    /// Control-socket client: `ctl [-t SOCKET] COMMAND [ARG...]`.
    Ctl {
        /// Socket path.
        socket: PathBuf,
        /// Command.
        command: String,
        /// Arguments.
        args: Vec<String>,
    },
    /// Print usage.
    Help,
    /// Print version.
    Version,
}

/// Options for running the daemon.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOpts {
    /// Config file (required unless the benchmark-contract flags are used).
    pub config: Option<PathBuf>,
    /// Fork into the background.
    pub detach: bool,
    /// Write our pid here.
    pub pidfile: Option<PathBuf>,
    /// Keep a monitor process that restarts us after a crash.
    pub monitor: bool,
    /// Append logs to this file instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Benchmark contract: datapath id (decimal).
    pub dpid: Option<u64>,
    /// Benchmark contract: OpenFlow listen `IP:PORT`.
    pub listen: Option<String>,
    /// Benchmark contract: ports to attach as 1, 2, ...
    pub ports: Vec<String>,
    /// Control socket path overriding the config.
    pub unixctl: Option<PathBuf>,
}

/// Default control socket path.
pub const DEFAULT_CTL: &str = "/run/rvswitchd/rvswitchd.ctl";

/// Usage text.
pub const USAGE: &str = "\
rvswitchd: a userspace OpenFlow 1.3 switch

usage:
  rvswitchd --config FILE [--detach] [--pidfile PATH] [--monitor] [--log-file PATH]
  rvswitchd --check-config FILE
  rvswitchd ctl [-t SOCKET] COMMAND [ARG...]      (like ovs-appctl)
  rvswitchd --dpid N --listen IP:PORT --ports \"p1 p2\" [--unixctl PATH]
                                                   (benchmark contract: one secure bridge)
";

/// Parses `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Mode, String> {
    if args.first().map(String::as_str) == Some("ctl") {
        let mut socket = PathBuf::from(DEFAULT_CTL);
        let mut rest = &args[1..];
        if rest.first().map(String::as_str) == Some("-t")
            || rest.first().map(String::as_str) == Some("--target")
        {
            let s = rest.get(1).ok_or("ctl: -t needs a socket path")?;
            socket = PathBuf::from(s);
            rest = &rest[2..];
        }
        let command = rest
            .first()
            .ok_or("ctl: missing COMMAND (try list-commands)")?;
        return Ok(Mode::Ctl {
            socket,
            command: command.clone(),
            args: rest[1..].to_vec(),
        });
    }
    let mut o = RunOpts::default();
    let mut i = 0;
    let val = |i: &mut usize, flag: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i)
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value"))
    };
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-h" | "--help" => return Ok(Mode::Help),
            "-V" | "--version" => return Ok(Mode::Version),
            "--check-config" => return Ok(Mode::CheckConfig(PathBuf::from(val(&mut i, a)?))),
            "-c" | "--config" => o.config = Some(PathBuf::from(val(&mut i, a)?)),
            "--detach" => o.detach = true,
            "--monitor" => o.monitor = true,
            "--pidfile" => o.pidfile = Some(PathBuf::from(val(&mut i, a)?)),
            "--log-file" => o.log_file = Some(PathBuf::from(val(&mut i, a)?)),
            "--dpid" => {
                let v = val(&mut i, a)?;
                o.dpid = Some(
                    v.parse()
                        .map_err(|_| format!("--dpid: {v:?} is not a number"))?,
                );
            }
            "--listen" => o.listen = Some(val(&mut i, a)?),
            "--ports" => {
                o.ports = val(&mut i, a)?
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            }
            "--unixctl" => o.unixctl = Some(PathBuf::from(val(&mut i, a)?)),
            other => return Err(format!("unknown option {other:?}\n\n{USAGE}")),
        }
        i += 1;
    }
    if o.config.is_none() && o.listen.is_none() {
        return Err(format!("--config FILE is required\n\n{USAGE}"));
    }
    Ok(Mode::Run(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn parses_modes() {
        assert_eq!(
            parse(&s(&["ctl", "-t", "/tmp/x", "version"])).unwrap(),
            Mode::Ctl {
                socket: "/tmp/x".into(),
                command: "version".into(),
                args: vec![]
            }
        );
        match parse(&s(&["--config", "a.toml", "--detach", "--pidfile", "p"])).unwrap() {
            Mode::Run(o) => {
                assert!(o.detach);
                assert_eq!(o.pidfile, Some("p".into()));
            }
            m => panic!("{m:?}"),
        }
        assert!(parse(&s(&["--bogus"])).is_err());
        assert!(parse(&s(&[])).is_err());
        assert!(parse(&s(&["--dpid", "x", "--listen", "1"])).is_err());
    }
}
