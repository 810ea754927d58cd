//! Per-thread record of the last call, as the C contract needs it: the last failure's
//! message, the last HTTP status, and the last response body (so a body that did not fit the
//! caller's buffer can be fetched again without a second request).

use std::cell::RefCell;

use crate::error::Error;

#[derive(Default)]
struct LastCall {
    error_message: String,
    http_status: u16,
    response: Option<String>,
    retry_after: Option<std::time::Duration>,
}

thread_local! {
    static LAST: RefCell<LastCall> = RefCell::new(LastCall::default());
}

/// Remembers a failure's message for this thread (kept until the next failure).
pub(crate) fn record_failure(err: &Error) {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        last.error_message.clear();
        // The C contract: one printable line, its strlen equal to the reported length.
        last.error_message
            .push_str(&crate::redact::printable(err.message()));
    });
}

/// Remembers the outcome of a request for this thread: its HTTP status (0 when no response
/// arrived), its body and the `Retry-After` it asked for, replacing the previous ones.
pub(crate) fn record_exchange(
    http_status: u16,
    body: Option<String>,
    retry_after: Option<std::time::Duration>,
) {
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        last.http_status = http_status;
        // The body it replaces becomes the buffer of this thread's next response.
        if let Some(old) = std::mem::replace(&mut last.response, body) {
            crate::response::recycle_body(old);
        }
        last.retry_after = retry_after;
    });
}

/// The `Retry-After` of this thread's last response, if it had one.
pub(crate) fn retry_after() -> Option<std::time::Duration> {
    LAST.with(|last| last.borrow().retry_after)
}

/// Runs `f` with this thread's last failure message (empty if none).
pub(crate) fn with_error_message<R>(f: impl FnOnce(&str) -> R) -> R {
    LAST.with(|last| f(&last.borrow().error_message))
}

/// This thread's last HTTP status, 0 when the last request got no response.
pub(crate) fn http_status() -> u16 {
    LAST.with(|last| last.borrow().http_status)
}

/// Runs `f` with this thread's last response body, if the last request got one.
pub(crate) fn with_response<R>(f: impl FnOnce(Option<&str>) -> R) -> R {
    LAST.with(|last| f(last.borrow().response.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn records_are_per_thread() {
        record_exchange(404, Some("{\"code\":\"NotFound\"}".into()), None);
        record_failure(&Error::new(ErrorCode::NotFound, "not here"));
        std::thread::spawn(|| {
            assert_eq!(http_status(), 0);
            with_response(|r| assert!(r.is_none()));
            with_error_message(|m| assert!(m.is_empty()));
        })
        .join()
        .unwrap();
        assert_eq!(http_status(), 404);
        with_response(|r| assert_eq!(r, Some("{\"code\":\"NotFound\"}")));
        with_error_message(|m| assert_eq!(m, "not here"));
    }
}
