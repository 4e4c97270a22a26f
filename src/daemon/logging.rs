//! Logging through `tracing`, with the filter swappable at run time so that
//! `vlog/set` changes verbosity without a restart.

use std::sync::OnceLock;
use tracing_subscriber::{
    layer::SubscriberExt, reload, util::SubscriberInitExt, EnvFilter, Registry,
};

type Handle = reload::Handle<EnvFilter, Registry>;

static HANDLE: OnceLock<Handle> = OnceLock::new();
static CURRENT: OnceLock<parking_lot::Mutex<String>> = OnceLock::new();

/// Installs the global subscriber writing to stderr or to `file`.
pub fn init(level: &str, file: Option<&std::path::Path>) -> Result<(), String> {
    let filter = EnvFilter::try_new(level).map_err(|e| format!("log level {level:?}: {e}"))?;
    let (layer, handle) = reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    let res = match file {
        Some(path) => {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            tracing_subscriber::registry()
                .with(layer)
                .with(fmt.with_ansi(false).with_writer(std::sync::Mutex::new(f)))
                .try_init()
        }
        None => tracing_subscriber::registry()
            .with(layer)
            .with(fmt.with_writer(std::io::stderr))
            .try_init(),
    };
    res.map_err(|e| e.to_string())?;
    let _ = HANDLE.set(handle);
    *CURRENT
        .get_or_init(|| parking_lot::Mutex::new(String::new()))
        .lock() = level.to_string();
    Ok(())
}

/// Replaces the filter (`vlog/set`). Accepts tracing filter syntax and OVS's
/// `module:level` / `ANY:destination:level` forms for familiarity.
pub fn set_level(spec: &str) -> Result<(), String> {
    let spec = translate_ovs_spec(spec);
    let filter = EnvFilter::try_new(&spec).map_err(|e| format!("bad log level {spec:?}: {e}"))?;
    let h = HANDLE.get().ok_or("logging is not initialised")?;
    h.reload(filter).map_err(|e| e.to_string())?;
    *CURRENT
        .get_or_init(|| parking_lot::Mutex::new(String::new()))
        .lock() = spec;
    Ok(())
}

/// The current filter, for `vlog/list`.
pub fn current() -> String {
    CURRENT
        .get()
        .map(|m| m.lock().clone())
        .unwrap_or_else(|| "off".into())
}

fn ovs_level(l: &str) -> Option<&'static str> {
    Some(match l.to_ascii_lowercase().as_str() {
        "off" | "emer" => "off",
        "err" => "error",
        "warn" => "warn",
        "info" => "info",
        "dbg" | "debug" => "debug",
        "trace" => "trace",
        _ => return None,
    })
}

fn translate_ovs_spec(spec: &str) -> String {
    // "dbg", "ANY:dbg", "ANY:console:dbg", "bridge:dbg" -> tracing syntax.
    let parts: Vec<&str> = spec.split(':').collect();
    if let Some(level) = parts.last().and_then(|l| ovs_level(l)) {
        match parts.first() {
            Some(m) if parts.len() >= 2 && !m.eq_ignore_ascii_case("any") => {
                return format!("rvswitchd::{m}={level}");
            }
            _ => return level.to_string(),
        }
    }
    spec.to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ovs_forms_translate() {
        assert_eq!(super::translate_ovs_spec("dbg"), "debug");
        assert_eq!(super::translate_ovs_spec("ANY:console:warn"), "warn");
        assert_eq!(
            super::translate_ovs_spec("actors:dbg"),
            "rvswitchd::actors=debug"
        );
        assert_eq!(
            super::translate_ovs_spec("rvswitchd=trace"),
            "rvswitchd=trace"
        );
    }
}
