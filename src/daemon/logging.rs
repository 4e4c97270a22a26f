//! Logging through `tracing`, with the filter swappable at run time so that
//! `vlog/set` changes verbosity without a restart.
//!
//! Three outputs: a file (`--log-file`), the journal, or plain stderr. When
//! systemd connected stderr to the journal (`JOURNAL_STREAM` names stderr's
//! device and inode, `systemd.exec(5)`), each line starts with the `<N>`
//! syslog priority that journald reads (`sd-daemon(3)`: `<3>` error, `<4>`
//! warning, `<6>` info, `<7>` debug), without timestamp or colours (the
//! journal adds its own), and a multi-line message repeats the prefix on every
//! line so that none is stored at the wrong priority.

use std::sync::OnceLock;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{
    layer::SubscriberExt, reload, util::SubscriberInitExt, EnvFilter, Registry,
};

type Handle = reload::Handle<EnvFilter, Registry>;

static HANDLE: OnceLock<Handle> = OnceLock::new();
static CURRENT: OnceLock<parking_lot::Mutex<String>> = OnceLock::new();

/// The `sd-daemon(3)` priority prefix of a level.
fn journal_priority(l: &Level) -> u8 {
    match *l {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// One event as journald wants a stderr line: `<N>target: message fields`.
struct JournalFormat;

impl<S, N> FormatEvent<S, N> for JournalFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let prio = journal_priority(event.metadata().level());
        let mut body = String::new();
        ctx.format_fields(Writer::new(&mut body), event)?;
        let prefix = format!("<{prio}>");
        let body = body.replace('\n', &format!("\n{prefix}"));
        writeln!(writer, "{prefix}{}: {body}", event.metadata().target())
    }
}

/// True when stderr is the journal stream systemd set up for us.
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(js) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = js.split_once(':') else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

/// Installs the global subscriber writing to `file`, to the journal (stderr
/// with priority prefixes, see the module documentation) or to stderr.
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
        None if stderr_is_journal() => tracing_subscriber::registry()
            .with(layer)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .event_format(JournalFormat)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
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
