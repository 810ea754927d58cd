//! An optional, process-wide log hook. Nothing is logged, and nothing is written to stderr,
//! until the application installs one. Messages never contain the API secret: they are built
//! from the same scrubbed text as errors, and from method, path, status and timings.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

/// How much a log message matters; a hook receives the messages at or above its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u32)]
pub enum LogLevel {
    /// A call failed because of a bug or resource exhaustion (9xx).
    Error = 1,
    /// A call failed: transport failure or HTTP error status.
    Warn = 2,
    /// Something the client did on its own: a retry, a resend after a stale connection, a
    /// new connection.
    Info = 3,
    /// Every request: method, path, status, time.
    Debug = 4,
}

impl LogLevel {
    /// The level for a raw value (1 to 4).
    pub fn from_raw(raw: u32) -> Option<LogLevel> {
        [
            LogLevel::Error,
            LogLevel::Warn,
            LogLevel::Info,
            LogLevel::Debug,
        ]
        .into_iter()
        .find(|l| *l as u32 == raw)
    }
}

type Hook = Arc<dyn Fn(LogLevel, &str) + Send + Sync>;

/// The most verbose level a hook wants (0: no hook): one atomic load per log point.
static MAX_LEVEL: AtomicU32 = AtomicU32::new(0);
static HOOK: RwLock<Option<Hook>> = RwLock::new(None);

/// Installs `hook` for messages at `max_level` and above (replacing any earlier hook). The
/// hook runs on the thread that makes the call, possibly on several threads at once.
pub fn set_log_callback(
    max_level: LogLevel,
    hook: impl Fn(LogLevel, &str) + Send + Sync + 'static,
) {
    let mut slot = HOOK.write().unwrap_or_else(|e| e.into_inner());
    *slot = Some(Arc::new(hook));
    MAX_LEVEL.store(max_level as u32, Ordering::Release);
}

/// Removes the hook: nothing is logged any more.
pub fn clear_log_callback() {
    MAX_LEVEL.store(0, Ordering::Release);
    *HOOK.write().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Whether a message at `level` would reach a hook (so that it is worth formatting).
pub(crate) fn enabled(level: LogLevel) -> bool {
    level as u32 <= MAX_LEVEL.load(Ordering::Acquire)
}

/// Formats and hands a message to the hook, if one wants it. The hook is called without any
/// lock held, so it may log, make calls, or even replace itself.
pub(crate) fn log(level: LogLevel, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let hook = HOOK.read().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(hook) = hook {
        let message = crate::redact::printable(&args.to_string()).into_owned();
        hook(level, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn levels_filter_and_clear_stops() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        set_log_callback(LogLevel::Info, move |level, message| {
            sink.lock().unwrap().push((level, message.to_owned()));
        });
        log(LogLevel::Debug, format_args!("not wanted"));
        log(LogLevel::Info, format_args!("retry\nforged"));
        log(LogLevel::Error, format_args!("bug"));
        clear_log_callback();
        log(LogLevel::Error, format_args!("after clear"));
        let seen = seen.lock().unwrap();
        assert_eq!(
            *seen,
            vec![
                (LogLevel::Info, "retry\\x0aforged".to_owned()),
                (LogLevel::Error, "bug".to_owned())
            ]
        );
    }
}
