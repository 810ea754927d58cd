//! Library-level functions: version, result names, and the calling thread's last outcome.

use std::ffi::c_char;

use crate::error::{Error, ErrorCode};
use crate::ffi::boundary::{guard, guard_value, OutBuffer};
use crate::ffi::last_call;
use crate::ffi::types::{fleets_result, FLEETS_OK};

/// The library version, e.g. `"0.1.0"`, equal to `FLEETS_VERSION`.
///
/// Returns a static NUL-terminated string: never NULL, never freed by the caller.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn fleets_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Whether an API call that returned `result` may have delivered its request to the server:
/// true for `FLEETS_OK`, `FLEETS_ERR_BUFFER_TOO_SMALL`, `FLEETS_ERR_CANCELED` (a workflow
/// stopped by its callback), a timeout or I/O failure (2xx after the connection was made),
/// every HTTP status or response error (3xx), the workflows' local-storage results
/// (`FLEETS_ERR_DISK_FULL`, `FLEETS_ERR_LOCAL_FILE`: requests may have been sent before) and
/// 9xx; false when the request certainly was not sent (the other 1xx argument and
/// configuration errors, `FLEETS_ERR_CONNECT`, `FLEETS_ERR_TLS`, and the 4xx local-storage
/// results of the outbox), so that sending it again cannot make a duplicate. An unknown value is
/// treated as "may have been sent". Thread-safe; no state.
#[no_mangle]
pub extern "C" fn fleets_result_request_sent(result: fleets_result) -> bool {
    guard_value(true, || match ErrorCode::from_raw(result) {
        Some(code) => code.request_sent(),
        None => true,
    })
}

/// The name of a result code, e.g. `"FLEETS_ERR_TIMEOUT"`; `"FLEETS_ERR_UNKNOWN"` for a
/// value that is not a result code.
///
/// Returns a static NUL-terminated string: never NULL, never freed by the caller.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn fleets_result_name(result: fleets_result) -> *const c_char {
    guard_value(c"FLEETS_ERR_UNKNOWN".as_ptr(), || {
        let name: &'static std::ffi::CStr = match ErrorCode::from_raw(result) {
            _ if result == FLEETS_OK => c"FLEETS_OK",
            Some(code) => code.c_name(),
            None => c"FLEETS_ERR_UNKNOWN",
        };
        name.as_ptr()
    })
}

/// Copies the calling thread's last failure message into `buf` (human readable, naming the
/// phase that failed; never containing the API secret), truncated to `cap` bytes including
/// the NUL, and returns the full length without the NUL (snprintf style). Returns 0 when
/// this thread has had no failure.
///
/// `buf` may be NULL when `cap` is 0 (to ask for the length). The message is per thread and
/// is kept until the next failure on the same thread. Thread-safe.
///
/// # Safety
/// A non-NULL `buf` must be valid for writes of `cap` bytes.
#[no_mangle]
pub unsafe extern "C" fn fleets_last_error_message(buf: *mut c_char, cap: usize) -> usize {
    guard_value(0, || {
        last_call::with_error_message(|message| {
            if !buf.is_null() && cap > 0 {
                let mut keep = message.len().min(cap - 1);
                while !message.is_char_boundary(keep) {
                    keep -= 1;
                }
                // SAFETY: `buf` is valid for `cap` bytes and keep + 1 <= cap; the source is a
                // Rust string that cannot overlap the caller's buffer.
                unsafe {
                    std::ptr::copy_nonoverlapping(message.as_ptr(), buf.cast::<u8>(), keep);
                    buf.add(keep).write(0);
                }
            }
            message.len()
        })
    })
}

/// The HTTP status of the last request sent by the calling thread, 0 if it got no response
/// (or the thread sent none). Calls rejected before sending leave it unchanged.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn fleets_last_http_status() -> i32 {
    guard_value(0, || i32::from(last_call::http_status()))
}

/// The wait, in milliseconds, that the calling thread's last response asked for with a
/// `Retry-After` header (HTTP 429 or 503, seconds or HTTP-date), or -1 when it had none.
/// Useful after `FLEETS_ERR_RATE_LIMITED` once the library's own retries are exhausted.
/// Thread-safe.
#[no_mangle]
pub extern "C" fn fleets_last_retry_after_ms() -> i64 {
    guard_value(-1, || {
        last_call::retry_after()
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(-1)
    })
}

/// Copies the body of the last response received by the calling thread (2xx or not) into
/// `out`, without a second request: the way to fetch a body after
/// `FLEETS_ERR_BUFFER_TOO_SMALL`.
///
/// Buffer rules as for every call: NUL-terminated copy, `*out_len` = length without the NUL,
/// `FLEETS_ERR_BUFFER_TOO_SMALL` with the size needed when it does not fit; `out` may be NULL
/// when `out_cap` is 0, `out_len` may be NULL. Returns `FLEETS_ERR_INVALID_ARGUMENT` when the
/// thread's last request got no response. The body is kept per thread until the next request
/// on that thread. Thread-safe.
///
/// # Safety
/// A non-NULL `out` must be valid for writes of `out_cap` bytes, a non-NULL `out_len` for
/// one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn fleets_last_response(
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let buffer = unsafe { OutBuffer::new(out, out_cap, out_len) }?;
        last_call::with_response(|body| match body {
            Some(body) => buffer.write(body),
            None => Err(Error::invalid_argument(
                "no response has been received on this thread",
            )),
        })
    })
}
