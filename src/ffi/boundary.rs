//! The one set of helpers every export goes through: panic boundary, pointer and string
//! checks, handle conversion, and writing results into caller-owned buffers.

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{Error, ErrorCode, Result};
use crate::ffi::last_call;
use crate::ffi::types::{fleets_result, FLEETS_OK};
use crate::Response;

/// Runs the body of a fallible export: catches panics, records the failure for
/// `fleets_last_error_message`, and turns the outcome into a result code.
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> fleets_result {
    let error = match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => return FLEETS_OK,
        Ok(Err(error)) => error,
        Err(_) => {
            // Whatever the call had recorded may be half done: the last exchange is unknown.
            last_call::record_exchange(0, None, None);
            Error::new(
                ErrorCode::Panic,
                "internal error: a panic was caught at the C boundary (a bug in libfleets)",
            )
        }
    };
    last_call::record_failure(&error);
    error.code() as fleets_result
}

/// Runs the body of an export that cannot fail, returning `neutral` if it panics.
pub(crate) fn guard_value<T>(neutral: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(neutral)
}

fn null(name: &str) -> Error {
    Error::new(ErrorCode::NullArgument, format!("{name} is NULL"))
}

/// A required NUL-terminated UTF-8 string argument.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for the duration of the call.
pub(crate) unsafe fn required_str<'a>(ptr: *const c_char, name: &str) -> Result<&'a str> {
    // SAFETY: the caller guarantees `ptr` is NULL or a valid NUL-terminated string.
    unsafe { optional_str(ptr, name) }?.ok_or_else(|| null(name))
}

/// An optional string argument: NULL means omitted.
///
/// # Safety
/// As for [`required_str`].
pub(crate) unsafe fn optional_str<'a>(ptr: *const c_char, name: &str) -> Result<Option<&'a str>> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL, and the caller guarantees NUL termination and validity for the call.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map(Some)
        .map_err(|_| Error::invalid_argument(format!("{name} is not valid UTF-8")))
}

/// A shared reference to a handle argument.
///
/// # Safety
/// `ptr` is NULL or was returned by the matching `*_new` function and not yet freed.
pub(crate) unsafe fn handle<'a, T>(ptr: *const T, name: &str) -> Result<&'a T> {
    // SAFETY: the caller guarantees a non-NULL `ptr` is a live handle created by Box::into_raw.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// An exclusive reference to a handle argument (configuration setters).
///
/// # Safety
/// As for [`handle`], and no other reference to the handle is in use during the call.
pub(crate) unsafe fn handle_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees a live handle that nobody else uses during this call.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(name))
}

/// An optional input struct passed by pointer (an options struct): NULL means "all
/// defaults".
///
/// # Safety
/// `ptr` is NULL or points to a `T` valid for reads for the duration of the call.
pub(crate) unsafe fn optional_struct<'a, T>(ptr: *const T) -> Option<&'a T> {
    // SAFETY: the caller guarantees a non-NULL `ptr` is valid for reads of one `T`.
    unsafe { ptr.as_ref() }
}

/// An optional output pointer (NULL: the caller does not want the value).
///
/// # Safety
/// `ptr` is NULL or valid for writing one `T`.
pub(crate) unsafe fn optional_output<'a, T>(ptr: *mut T) -> Option<&'a mut T> {
    // SAFETY: the caller guarantees a non-NULL `ptr` is valid for writes of one `T`.
    unsafe { ptr.as_mut() }
}

/// Copies `text` into a fixed-size C character array, truncated at a UTF-8 character
/// boundary so that it always ends with a NUL.
pub(crate) fn copy_truncated(text: &str, into: &mut [c_char]) {
    let Some(room) = into.len().checked_sub(1) else {
        return;
    };
    let mut keep = text.len().min(room);
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    for (dst, &src) in into.iter_mut().zip(&text.as_bytes()[..keep]) {
        *dst = src as c_char;
    }
    into[keep] = 0;
}

/// A required output pointer; written only once the call has succeeded.
///
/// # Safety
/// `ptr` is NULL or valid for writing one `T`.
pub(crate) unsafe fn output<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T> {
    // SAFETY: the caller guarantees a non-NULL `ptr` is valid for writes of one `T`.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(name))
}

/// Moves `value` to the heap and hands ownership to C through `out`.
pub(crate) fn give_handle<T>(out: &mut *mut T, value: T) {
    *out = Box::into_raw(Box::new(value));
}

/// Takes back and drops a handle given to C by [`give_handle`]; NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or a handle from [`give_handle`] that is not used again.
pub(crate) unsafe fn free_handle<T>(ptr: *mut T) {
    guard_value((), || {
        if !ptr.is_null() {
            // SAFETY: the caller passes a pointer from Box::into_raw exactly once.
            drop(unsafe { Box::from_raw(ptr) });
        }
    })
}

/// A caller-owned output buffer: `char *out, size_t out_cap, size_t *out_len`.
pub(crate) struct OutBuffer {
    out: *mut c_char,
    cap: usize,
    len: *mut usize,
}

impl OutBuffer {
    /// Checks the triple; `out` may be NULL only when `cap` is 0, `len` may be NULL.
    ///
    /// # Safety
    /// A non-NULL `out` is valid for writes of `cap` bytes and a non-NULL `len` for one
    /// `size_t`, for the duration of the call.
    pub(crate) unsafe fn new(out: *mut c_char, cap: usize, len: *mut usize) -> Result<OutBuffer> {
        if out.is_null() && cap > 0 {
            return Err(null("out (with out_cap > 0)"));
        }
        Ok(OutBuffer { out, cap, len })
    }

    /// Copies `text` and a NUL into the buffer and stores its length; when it does not fit,
    /// stores the length needed and fails with `BufferTooSmall`. A NULL buffer (capacity 0)
    /// means the caller wants only the length.
    pub(crate) fn write(&self, text: &str) -> Result<()> {
        if !self.len.is_null() {
            // SAFETY: checked in `new`: non-NULL `len` is valid for one write.
            unsafe { self.len.write(text.len()) };
        }
        if self.out.is_null() {
            return Ok(());
        }
        if text.len() >= self.cap {
            return Err(Error::new(
                ErrorCode::BufferTooSmall,
                format!(
                    "{} bytes plus a NUL do not fit in a buffer of {} bytes",
                    text.len(),
                    self.cap
                ),
            ));
        }
        // SAFETY: `out` is valid for `cap` bytes (checked in `new`) and text.len() + 1 <= cap;
        // the source is a Rust string, which cannot overlap a caller-owned buffer we write.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), self.out.cast::<u8>(), text.len());
            self.out.add(text.len()).write(0);
        }
        Ok(())
    }
}

/// The shared path of every ThingDatas call: checks the client and buffer, runs the call,
/// keeps the outcome for `fleets_last_*`, and copies the body into the caller's buffer.
///
/// # Safety
/// `client` is NULL or a live client; the buffer triple is as for [`OutBuffer::new`].
pub(crate) unsafe fn api_call(
    client: *const crate::ffi::fleets_client,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
    call: impl FnOnce(&crate::Client) -> Result<Response>,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let client = unsafe { handle(client, "client") }?;
        // SAFETY: forwarded from this function's contract.
        let buffer = unsafe { OutBuffer::new(out, out_cap, out_len) }?;
        deliver(call(&client.inner), &buffer)
    })
}

/// The shared path of the workflows (`fleets_shadow_sync`, `fleets_job_agent_run_once`,
/// `fleets_download`): as [`guard`], and a transport or HTTP failure (2xx and 3xx codes) is
/// kept for `fleets_last_http_status`, `fleets_last_retry_after_ms` and
/// `fleets_last_response`, as for the ThingDatas calls. A success leaves those as the thread's last ThingDatas call made
/// through the C ABI (possibly by a callback): the workflows' own requests are not recorded.
pub(crate) fn workflow_call(body: impl FnOnce() -> Result<()>) -> fleets_result {
    guard(|| {
        body().map_err(|mut error| {
            if (200..400).contains(&(error.code() as u32)) {
                let body = error.take_body();
                last_call::record_exchange(error.http_status(), body, error.retry_after());
            }
            error
        })
    })
}

/// A required C function pointer (a callback).
pub(crate) fn required_fn<F>(f: Option<F>, name: &str) -> Result<F> {
    f.ok_or_else(|| null(name))
}

fn deliver(outcome: Result<Response>, buffer: &OutBuffer) -> Result<()> {
    match outcome {
        Ok(response) => {
            last_call::record_exchange(response.status(), Some(response.into_body()), None);
            last_call::with_response(|body| buffer.write(body.unwrap_or_default()))
                .map_err(|e| too_small_response(&e))
        }
        // Rejected before anything was sent: the record of the last exchange stays.
        Err(error) if (error.code() as u32) < 200 => Err(error),
        Err(mut error) => {
            let body = error.take_body();
            let has_body = body.is_some();
            last_call::record_exchange(error.http_status(), body, error.retry_after());
            if has_body {
                // The HTTP error code wins over a too-small buffer; the body stays available
                // through fleets_last_response either way.
                let _ = last_call::with_response(|body| buffer.write(body.unwrap_or_default()));
            }
            Err(error)
        }
    }
}

fn too_small_response(error: &Error) -> Error {
    Error::new(
        error.code(),
        format!(
            "response received, but {}; fleets_last_response() returns it",
            error.message()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_forgets_the_previous_exchange() {
        last_call::record_exchange(404, Some("{}".into()), None);
        let rc = guard(|| panic!("a bug"));
        assert_eq!(rc, ErrorCode::Panic as fleets_result);
        assert_eq!(last_call::http_status(), 0);
        last_call::with_response(|body| assert!(body.is_none()));
    }
}
