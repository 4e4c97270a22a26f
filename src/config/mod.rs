//! The TOML configuration: model, validation with file/line/key error messages,
//! and the difference between two configurations (what a reload must change).
//!
//! A `Config` value is immutable once validated. The daemon keeps the running one
//! and replaces it only after a new file has parsed *and* validated in full, so a
//! bad reload never disturbs what runs.

#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_lossless
)]

mod diff;
mod model;
mod tunnel;

pub use diff::{BridgeDiff, ConfigDiff};
pub use model::*;
pub use tunnel::{KeyValue, OptionError, MAX_VNI};

use std::path::Path;

/// Why a configuration was refused. The message names the file, the line where it
/// can be known, and the key, because an operator fixing a file needs all three.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The path is not a regular file (a FIFO, a device, a directory): never
    /// opened for reading, since reading one can block or never end.
    #[error("{file}: not a regular file ({kind}); a configuration is a regular file")]
    NotRegular {
        /// The path as given.
        file: String,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is larger than [`MAX_CONFIG_BYTES`].
    #[error("{file}: {size} bytes is larger than the {max}-byte limit for a configuration")]
    TooLarge {
        /// The path as given.
        file: String,
        /// Its size (at least; it may still be growing).
        size: u64,
        /// [`MAX_CONFIG_BYTES`], for the message.
        max: u64,
    },
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The path as given.
        file: String,
        /// What the OS said (no such file, permission denied, ...).
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or type error, unknown key, wrong type.
    #[error("{file}:{line}: {msg}")]
    Parse {
        /// The path as given (or `<command line>`).
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong, naming the key.
        msg: String,
    },
    /// A semantic rule is broken (duplicates, ranges, addresses).
    #[error("{file}:{line}: {key}: {msg}")]
    Invalid {
        /// The path as given (or `<command line>`).
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The dotted key, e.g. `bridge[1].port[0].name`.
        key: String,
        /// What is wrong.
        msg: String,
    },
}

/// Largest configuration file we read: a thousand bridges with a hundred
/// ports each fit in a quarter of it.
pub const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

fn file_kind(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Reads a configuration file's text, hostile-input safe: the path must name
/// a regular file (checked before opening, and again on the opened descriptor
/// in case it was swapped in between; the open is non-blocking so a FIFO
/// swapped in cannot stall us), of at most [`MAX_CONFIG_BYTES`] (checked
/// before reading, and the read stops there whatever the file does meanwhile).
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = path.display().to_string();
    let read_err = |source| ConfigError::Read {
        file: file.clone(),
        source,
    };
    let check = |md: &std::fs::Metadata| -> Result<(), ConfigError> {
        if !md.file_type().is_file() {
            return Err(ConfigError::NotRegular {
                file: file.clone(),
                kind: file_kind(md.file_type()),
            });
        }
        if md.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                file: file.clone(),
                size: md.len(),
                max: MAX_CONFIG_BYTES,
            });
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(read_err)?)?;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(read_err)?;
    check(&f.metadata().map_err(read_err)?)?;
    let mut buf = Vec::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(read_err)?;
    if buf.len() as u64 > MAX_CONFIG_BYTES {
        return Err(ConfigError::TooLarge {
            file: file.clone(),
            size: buf.len() as u64,
            max: MAX_CONFIG_BYTES,
        });
    }
    String::from_utf8(buf).map_err(|e| ConfigError::Parse {
        file: file.clone(),
        line: 0,
        msg: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

/// Reads (see [`read_file`]), parses, applies `RVSWITCHD__SECTION__KEY`
/// environment overrides and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read_file(path)?;
    parse_str(&text, &path.display().to_string(), true)
}

/// Parses and validates configuration text. `env` enables environment overrides.
pub fn parse_str(text: &str, file: &str, env: bool) -> Result<Config, ConfigError> {
    // First pass: strict TOML deserialisation, for precise positions of syntax
    // errors, unknown keys and type errors.
    let parsed: Config = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        // Name the key when the error sits on a `key = value` line.
        let key = text
            .lines()
            .nth(line.saturating_sub(1))
            .filter(|_| line > 0)
            .and_then(|l| l.split_once('='))
            .map(|(k, _)| k.trim().to_string())
            .filter(|k| !k.is_empty() && !e.message().contains(k.as_str()));
        ConfigError::Parse {
            file: file.to_string(),
            line,
            msg: match key {
                Some(k) => format!("{k}: {}", e.message()),
                None => e.message().to_string(),
            },
        }
    })?;
    // Second pass through the `config` crate, only when overrides are present:
    // it layers `RVSWITCHD__DAEMON__LOG_LEVEL=debug`-style variables over the file.
    let cfg = if env && std::env::vars().any(|(k, _)| k.starts_with("RVSWITCHD__")) {
        let layered = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .add_source(
                config::Environment::with_prefix("RVSWITCHD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .and_then(|c| c.try_deserialize::<Config>())
            .map_err(|e| ConfigError::Parse {
                file: format!("{file} (with RVSWITCHD__* environment overrides)"),
                line: 0,
                msg: e.to_string(),
            })?;
        layered
    } else {
        parsed
    };
    cfg.validate(text, file)?;
    let mut cfg = cfg;
    cfg.add_ovs_compat_listeners();
    Ok(cfg)
}

/// Finds the 1-based line of the `nth` (0-based) line that assigns `key` the
/// string `value`, or of the first mention of `key` when `value` is empty.
pub(crate) fn locate(text: &str, key: &str, value: &str, nth: usize) -> usize {
    let mut seen = 0;
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix(key) else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(rhs) = rest.strip_prefix('=') else {
            continue;
        };
        if value.is_empty() || rhs.contains(value) {
            if seen == nth {
                return i + 1;
            }
            seen += 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid file without bridges.
    const NONE: &str = "[daemon]\nallow_no_bridges = true\n";

    #[test]
    fn a_file_without_bridges_is_refused_unless_it_says_so() {
        for text in ["", "# only a comment\n", "[daemon]\nlog_level = \"info\"\n"] {
            let e = parse_str(text, "e.toml", false).unwrap_err().to_string();
            assert!(
                e.contains("e.toml") && e.contains("allow_no_bridges"),
                "{e}"
            );
        }
        assert!(parse_str(NONE, "n.toml", false).unwrap().bridge.is_empty());
    }

    #[test]
    fn protocols_name_versions_we_speak() {
        let cfg = |p: &str| format!("[[bridge]]\nname = \"b\"\n{p}\n");
        let c = parse_str(&cfg(""), "p.toml", false).unwrap();
        assert_eq!(c.bridge[0].protocol_versions(), [1, 4, 5, 6]);
        let c = parse_str(
            &cfg("protocols = [\"OpenFlow13\", \"OpenFlow15\"]"),
            "p.toml",
            false,
        )
        .unwrap();
        assert_eq!(c.bridge[0].protocol_versions(), [4, 6]);
        for (p, why) in [
            ("protocols = []", "allows no OpenFlow version"),
            ("protocols = [\"OpenFlow12\"]", "not implemented"),
            ("protocols = [\"OF13\"]", "not an OpenFlow version name"),
        ] {
            let e = parse_str(&cfg(p), "p.toml", false).unwrap_err().to_string();
            assert!(
                e.contains("bridge[0].protocols") && e.contains(why),
                "{p}: {e}"
            );
        }
        // A change of protocols reaches the connection manager on reload.
        let a = parse_str(&cfg(""), "a", false).unwrap();
        let b = parse_str(&cfg("protocols = [\"OpenFlow13\"]"), "b", false).unwrap();
        let d = ConfigDiff::between(&a, &b);
        assert!(d.bridges_changed[0].connections_changed, "{d:?}");
    }

    #[test]
    fn afxdp_ports_take_an_xdp_mode_and_nothing_else_does() {
        let cfg = |ty: &str, opt: &str| {
            format!("[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"v0\"\ntype = \"{ty}\"\n{opt}\n")
        };
        let c = parse_str(&cfg("afxdp", ""), "x.toml", false).unwrap();
        let p = &c.bridge[0].port[0];
        assert_eq!(p.kind, crate::types::PortType::Afxdp);
        assert_eq!(p.xdp_mode(), Ok(crate::types::XdpMode::BestEffort));
        for (mode, name) in crate::types::XdpMode::ALL {
            let c = parse_str(
                &cfg("afxdp", &format!("xdp_mode = \"{name}\"")),
                "x.toml",
                false,
            )
            .unwrap();
            assert_eq!(c.bridge[0].port[0].xdp_mode(), Ok(mode));
            assert_eq!(mode.name(), name);
        }
        let e = parse_str(&cfg("afxdp", "xdp_mode = \"zerocopy\""), "x.toml", false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.toml:6")
                && e.contains("bridge[0].port[0].xdp_mode")
                && e.contains("\"zerocopy\" is not an XDP mode")
                && e.contains("best-effort, native-with-zerocopy, native, generic"),
            "{e}"
        );
        let e = parse_str(&cfg("system", "xdp_mode = \"native\""), "x.toml", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("xdp_mode applies to afxdp ports"), "{e}");
        let e = parse_str(&cfg("afxpd", ""), "x.toml", false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("afxdp"), "the known types are listed: {e}");
        // Changing the mode reopens the port.
        let a = parse_str(&cfg("afxdp", ""), "a", false).unwrap();
        let b = parse_str(&cfg("afxdp", "xdp_mode = \"generic\""), "b", false).unwrap();
        let d = ConfigDiff::between(&a, &b);
        assert_eq!(d.bridges_changed[0].ports_added.len(), 1, "{d:?}");
    }

    /// Held by the tests that read `RVSWITCHD__` variables (everything that
    /// goes through `load`) or set them: `cargo test` runs tests as threads
    /// of one process, so an override set by one would leak into another.
    static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn only_small_regular_files_are_read() {
        let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir().unwrap();
        let e = read_file(Path::new("/dev/urandom"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("character device"), "{e}");
        let e = read_file(dir.path()).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Refused at once: a FIFO is never opened (nobody writes to this one).
        let e = read_file(&fifo).unwrap_err().to_string();
        assert!(e.contains("FIFO"), "{e}");
        let big = dir.path().join("big.toml");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_CONFIG_BYTES + 1).unwrap();
        let e = read_file(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        let bin = dir.path().join("bin.toml");
        std::fs::write(&bin, [0xff, 0xfe, 0x00]).unwrap();
        assert!(read_file(&bin).unwrap_err().to_string().contains("UTF-8"));
        let ok = dir.path().join("ok.toml");
        std::fs::write(&ok, NONE).unwrap();
        assert!(load(&ok).is_ok());
    }

    #[test]
    fn environment_overrides_apply_and_are_validated() {
        // The only test that sets RVSWITCHD__ variables; the lock keeps the
        // tests that read them from seeing these.
        let _env = ENV_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        std::env::set_var("RVSWITCHD__DATAPATH__FLOW_LIMIT", "1234");
        std::env::set_var("RVSWITCHD__DAEMON__LOG_LEVEL", "debug");
        let c = parse_str(
            "[daemon]\nallow_no_bridges = true\n[datapath]\nflow_limit = 5\n",
            "t.toml",
            true,
        )
        .unwrap();
        assert_eq!(c.datapath.flow_limit, 1234);
        assert_eq!(c.daemon.log_level, "debug");
        std::env::set_var("RVSWITCHD__DATAPATH__FLOW_LIMIT", "0");
        let e = parse_str(NONE, "t.toml", true).unwrap_err().to_string();
        assert!(e.contains("datapath.flow_limit"), "{e}");
        std::env::remove_var("RVSWITCHD__DATAPATH__FLOW_LIMIT");
        std::env::remove_var("RVSWITCHD__DAEMON__LOG_LEVEL");
        let c = parse_str(NONE, "t.toml", true).unwrap();
        assert_eq!(c.datapath.flow_limit, 200_000);
    }

    #[test]
    fn diff_orders_deletes_before_adds_and_sees_changes() {
        let a = parse_str(
            "[[bridge]]\nname = \"a\"\n[[bridge.port]]\nname = \"p1\"\n[[bridge.port]]\nname = \"p2\"\n",
            "a",
            false,
        )
        .unwrap();
        let b = parse_str(
            "[[bridge]]\nname = \"a\"\nlisteners = [\"ptcp:6653\"]\n[[bridge.port]]\nname = \"p2\"\nvlan = 5\n[[bridge]]\nname = \"b\"\n[[bridge.port]]\nname = \"p1\"\n",
            "b",
            false,
        )
        .unwrap();
        let d = ConfigDiff::between(&a, &b);
        assert_eq!(d.bridges_added.len(), 1);
        let bd = &d.bridges_changed[0];
        assert_eq!(bd.ports_removed, vec!["p1".to_string()]);
        assert_eq!(bd.ports_changed[0].vlan, Some(5));
        assert!(bd.connections_changed);
        assert!(ConfigDiff::between(&b, &b).is_empty());
    }

    #[test]
    fn state_keys_default_validate_and_fingerprint_the_port_set() {
        let base = "[daemon]\ncontrol_socket = \"/r/x.ctl\"\n[[bridge]]\nname = \"br0\"\n";
        let c = parse_str(base, "s", false).unwrap();
        assert_eq!(c.daemon.state_dir(), Path::new("/r/state"));
        assert_eq!(c.daemon.state_save_ms, 1000);
        assert!(c.bridge[0].restore_flows);
        assert_eq!(
            c.bridge[0].state_path(&c.daemon.state_dir()),
            Path::new("/r/state/br0.state")
        );
        let set = parse_str(
            "[daemon]\nstate_dir = \"/var/lib/rvs\"\nstate_save_ms = 50\n[[bridge]]\nname = \"b\"\nrestore_flows = false\n",
            "s",
            false,
        )
        .unwrap();
        assert_eq!(set.daemon.state_dir(), Path::new("/var/lib/rvs"));
        assert!(!set.bridge[0].restore_flows);
        for (bad, key) in [
            ("[daemon]\nstate_dir = \"rel/dir\"\n", "daemon.state_dir"),
            ("[daemon]\nstate_save_ms = 0\n", "daemon.state_save_ms"),
            (
                "[daemon]\nstate_save_ms = 99999999\n",
                "daemon.state_save_ms",
            ),
            ("[daemon]\nstate_dir = 5\n", "state_dir"),
            (
                "[[bridge]]\nname = \"a\"\nrestore_flows = \"yes\"\n",
                "restore_flows",
            ),
        ] {
            let text = format!("{bad}[[bridge]]\nname = \"z\"\n");
            let e = parse_str(&text, "s", false).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
        // A bridge name also names its state file: no path in it.
        for name in ["..", "a/b", "a b", "a:b"] {
            let text = format!("[[bridge]]\nname = \"{name}\"\n");
            let e = parse_str(&text, "s", false).unwrap_err().to_string();
            assert!(e.contains("bridge[0].name"), "{name}: {e}");
        }
        // The fingerprint follows name, datapath id and port set, not VLANs.
        let fp = |extra: &str| {
            parse_str(&format!("{base}{extra}"), "s", false)
                .unwrap()
                .bridge[0]
                .state_fingerprint()
        };
        let p1 = "[[bridge.port]]\nname = \"p1\"\nofport = 1\n";
        assert_eq!(fp(p1), fp(p1));
        assert_ne!(fp(""), fp(p1));
        assert_ne!(fp(p1), fp("[[bridge.port]]\nname = \"p1\"\nofport = 2\n"));
        assert_ne!(fp(""), fp("datapath_id = \"0000000000000001\"\n"));
        assert_eq!(
            fp(p1),
            fp("[[bridge.port]]\nname = \"p1\"\nofport = 1\nvlan = 3\n")
        );
        let d = ConfigDiff::between(
            &c,
            &parse_str(
                &base.replace("br0\"\n", "br0\"\nrestore_flows = false\n"),
                "s",
                false,
            )
            .unwrap(),
        );
        assert!(d.bridges_changed[0].restore_flows_changed);
    }
}
