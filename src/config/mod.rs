//! The TOML configuration: model, validation with file/line/key error messages,
//! and the difference between two configurations (what a reload must change).
//!
//! A `Config` value is immutable once validated. The daemon keeps the running one
//! and replaces it only after a new file has parsed *and* validated in full, so a
//! bad reload never disturbs what runs.

mod diff;
mod model;

pub use diff::{BridgeDiff, ConfigDiff};
pub use model::*;

use std::path::Path;

/// Why a configuration was refused. The message names the file, the line where it
/// can be known, and the key, because an operator fixing a file needs all three.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// Path.
        file: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax or type error, unknown key, wrong type.
    #[error("{file}:{line}: {msg}")]
    Parse {
        /// Path.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// What is wrong, naming the key.
        msg: String,
    },
    /// A semantic rule is broken (duplicates, ranges, addresses).
    #[error("{file}:{line}: {key}: {msg}")]
    Invalid {
        /// Path.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The dotted key, e.g. `bridge[1].port[0].name`.
        key: String,
        /// What is wrong.
        msg: String,
    },
}

/// Reads, parses, applies `RVSWITCHD__SECTION__KEY` environment overrides and
/// validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: file.clone(),
        source,
    })?;
    parse_str(&text, &file, true)
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

    #[test]
    fn environment_overrides_apply_and_are_validated() {
        // The only test that sets RVSWITCHD__ variables, so no other test
        // sees them.
        std::env::set_var("RVSWITCHD__DATAPATH__FLOW_LIMIT", "1234");
        std::env::set_var("RVSWITCHD__DAEMON__LOG_LEVEL", "debug");
        let c = parse_str("[datapath]\nflow_limit = 5\n", "t.toml", true).unwrap();
        assert_eq!(c.datapath.flow_limit, 1234);
        assert_eq!(c.daemon.log_level, "debug");
        std::env::set_var("RVSWITCHD__DATAPATH__FLOW_LIMIT", "0");
        let e = parse_str("", "t.toml", true).unwrap_err().to_string();
        assert!(e.contains("datapath.flow_limit"), "{e}");
        std::env::remove_var("RVSWITCHD__DATAPATH__FLOW_LIMIT");
        std::env::remove_var("RVSWITCHD__DAEMON__LOG_LEVEL");
        let c = parse_str("", "t.toml", true).unwrap();
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
}
