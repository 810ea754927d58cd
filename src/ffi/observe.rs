//! Observing the library from C: a log callback and per-client counters.

use std::ffi::{c_char, c_void, CString};

use crate::error::Error;
use crate::ffi::boundary::{guard, handle, output};
use crate::ffi::types::{fleets_client_t, fleets_result};
use crate::{ClientStats, LogLevel};

/// Log levels for `fleets_set_log_callback`: a callback receives messages at its level and
/// the more important ones (lower numbers).
pub type fleets_log_level = u32;
/// Logging off.
pub const FLEETS_LOG_OFF: fleets_log_level = 0;
/// A call failed because of a bug or resource exhaustion (9xx).
pub const FLEETS_LOG_ERROR: fleets_log_level = 1;
/// A call failed: transport failure or HTTP error status (with the scrubbed message).
pub const FLEETS_LOG_WARN: fleets_log_level = 2;
/// What the client did on its own: retries (with the wait), resends after a stale
/// keep-alive connection, new connections.
pub const FLEETS_LOG_INFO: fleets_log_level = 3;
/// Every request: method, path, HTTP status and time.
pub const FLEETS_LOG_DEBUG: fleets_log_level = 4;

/// A log callback: `message` is one printable line (no control characters, never the API
/// secret), valid only during the call; `user` is the pointer given to
/// `fleets_set_log_callback`.
pub type fleets_log_fn = Option<
    unsafe extern "C" fn(level: fleets_log_level, message: *const c_char, user: *mut c_void),
>;

/// The `user` pointer, handed back to C untouched on whichever thread logs.
struct UserPointer(*mut c_void);
// SAFETY: libfleets never dereferences the pointer; the caller promises (see
// fleets_set_log_callback) that its callback may be called with it from any thread.
unsafe impl Send for UserPointer {}
// SAFETY: as above; the pointer is only copied.
unsafe impl Sync for UserPointer {}

/// Installs a process-wide log callback for messages at `max_level` and more important
/// (`FLEETS_LOG_ERROR` .. `FLEETS_LOG_DEBUG`), replacing any earlier one. `callback` NULL or
/// `max_level` `FLEETS_LOG_OFF` turns logging off. By default nothing is logged and libfleets
/// never writes to stderr or stdout.
///
/// The callback runs synchronously on the thread that makes a call, possibly on several
/// threads at once: it must be thread-safe, and should be quick (it delays the call). It may
/// call libfleets functions, including this one. `message` is valid only during the callback;
/// `user` is passed back unchanged (libfleets never dereferences it) and must stay valid until
/// the callback is replaced or removed. An unknown `max_level` is
/// `FLEETS_ERR_INVALID_ARGUMENT` and leaves the current callback in place. Thread-safe.
///
/// # Safety
/// `callback`, when not NULL, is a valid function that may be called from any thread with
/// `user` until it is replaced or removed.
#[no_mangle]
pub unsafe extern "C" fn fleets_set_log_callback(
    max_level: fleets_log_level,
    callback: fleets_log_fn,
    user: *mut c_void,
) -> fleets_result {
    guard(|| {
        let (Some(callback), Some(level)) = (callback, LogLevel::from_raw(max_level)) else {
            if max_level == FLEETS_LOG_OFF || callback.is_none() {
                crate::clear_log_callback();
                return Ok(());
            }
            return Err(Error::invalid_argument(format!(
                "unknown fleets_log_level {max_level}"
            )));
        };
        let user = UserPointer(user);
        crate::set_log_callback(level, move |level, message| {
            // Messages are built by libfleets and printable: no interior NUL.
            if let Ok(message) = CString::new(message) {
                let user = &user;
                // SAFETY: the caller of fleets_set_log_callback promised a valid, thread-safe
                // callback; the message outlives the call.
                unsafe { callback(level as fleets_log_level, message.as_ptr(), user.0) };
            }
        });
        Ok(())
    })
}

/// Counters of a client since it was created (`fleets_client_stats`). Fields may be added at
/// the end in a later major version (SONAME change), never removed or reordered.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct fleets_client_stats_t {
    /// ThingDatas calls made (each counts once, however many attempts it took).
    pub calls: u64,
    /// Calls that ended with an error after their arguments were accepted (transport
    /// failures and HTTP error statuses).
    pub failures: u64,
    /// HTTP requests sent: every attempt, retries and resends included.
    pub requests: u64,
    /// Attempts after the first, made by the retry policy.
    pub retries: u64,
    /// Requests sent again on a new connection because the server had closed a kept-alive one.
    pub stale_resends: u64,
    /// TCP connections opened ("reconnects": the first one included).
    pub connections: u64,
    /// Bytes written to TCP connections (TLS records, HTTP framing, bodies).
    pub bytes_sent: u64,
    /// Bytes read from TCP connections.
    pub bytes_received: u64,
    /// Wall time of the last completed call in microseconds, all attempts included.
    pub last_latency_us: u64,
}

impl From<ClientStats> for fleets_client_stats_t {
    fn from(s: ClientStats) -> Self {
        fleets_client_stats_t {
            calls: s.calls,
            failures: s.failures,
            requests: s.requests,
            retries: s.retries,
            stale_resends: s.stale_resends,
            connections: s.connections,
            bytes_sent: s.bytes_sent,
            bytes_received: s.bytes_received,
            last_latency_us: u64::try_from(s.last_latency.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

/// Copies the counters of `client` into `*out` (written only on success). Both pointers are
/// required. Counters are updated without locks while other threads call: a snapshot may
/// mix values from just before and just after a concurrent call. Thread-safe.
///
/// # Safety
/// `client` is NULL or a live client; `out` is NULL or valid for one write.
#[no_mangle]
pub unsafe extern "C" fn fleets_client_stats(
    client: *const fleets_client_t,
    out: *mut fleets_client_stats_t,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (client, out) = unsafe { (handle(client, "client")?, output(out, "out")?) };
        *out = client.inner.stats().into();
        Ok(())
    })
}
