//! Turning what came back (a response or a transport failure) into a `Response` or an
//! `Error` with the right code and a message that names the phase that failed.

use std::io;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;

use crate::error::{Error, ErrorCode, Result};
use crate::transport::StaleConnection;

/// A successful (2xx) response whose body is empty or JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    body: String,
}

impl Response {
    /// The HTTP status (2xx).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The JSON body as received (may be empty).
    pub fn body(&self) -> &str {
        &self.body
    }

    /// Takes the body.
    pub fn into_body(self) -> String {
        self.body
    }

    /// Deserialises the body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_str(&self.body).map_err(|e| {
            Error::new(
                ErrorCode::BadResponse,
                format!("response body does not have the expected shape: {e}"),
            )
        })
    }
}

/// The `{"code","message"}` body Fleets sends with an error status.
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<String>,
    message: Option<String>,
}

/// What of a response's headers matters for classifying it.
#[derive(Debug, Default)]
pub(crate) struct ResponseHeaders {
    pub location: Option<String>,
    pub retry_after: Option<std::time::Duration>,
}

/// Classifies a received response by status and body.
pub(crate) fn classify(status: u16, headers: &ResponseHeaders, body: Vec<u8>) -> Result<Response> {
    let location = headers.location.as_deref();
    let body = match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) if (200..300).contains(&status) => {
            return Err(Error::http(
                ErrorCode::BadResponse,
                status,
                format!("HTTP {status}: response body is not UTF-8 text"),
                String::from_utf8_lossy(e.as_bytes()).into_owned(),
            ))
        }
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    };
    if (200..300).contains(&status) {
        if !body.trim().is_empty() && serde_json::from_str::<IgnoredAny>(&body).is_err() {
            return Err(Error::http(
                ErrorCode::BadResponse,
                status,
                format!("HTTP {status}: response body is not JSON"),
                body,
            ));
        }
        return Ok(Response { status, body });
    }
    let message = if (300..400).contains(&status) {
        format!(
            "HTTP {status}: redirect to {} not followed (credentials are only sent to the configured endpoint)",
            location.unwrap_or("<no Location header>")
        )
    } else {
        match serde_json::from_str::<ErrorBody>(&body) {
            Ok(ErrorBody {
                code: Some(code),
                message,
            }) => format!(
                "HTTP {status} from server: {code}: {}",
                message.as_deref().unwrap_or("(no message)")
            ),
            _ => format!("HTTP {status} from server"),
        }
    };
    let error = Error::http(ErrorCode::from_http_status(status), status, message, body);
    Err(match status {
        429 | 502 | 503 | 504 => error.transient(headers.retry_after),
        _ => error,
    })
}

thread_local! {
    /// A response buffer this thread no longer needs, for its next response.
    static SPARE_BODY: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Keeps a response body the caller is done with for this thread's next response, unless
/// it is larger than a body is ever preallocated.
pub(crate) fn recycle_body(body: String) {
    let buffer = body.into_bytes();
    if buffer.capacity() <= MAX_PREALLOCATION {
        SPARE_BODY.set(buffer);
    }
}

/// Bytes reserved for a body before any of it arrived, at most: a header alone never makes
/// the client allocate more.
const MAX_PREALLOCATION: usize = 64 * 1024;
/// Smallest growth step once a body outgrows its buffer.
const MIN_GROWTH: usize = 4 * 1024;

/// Reads a response body of at most `limit` bytes. A declared `Content-Length` over the limit
/// is refused before reading; memory grows with the bytes that actually arrive (allocation
/// failure is an error, not an abort).
pub(crate) fn read_body(body: &mut ureq::Body, limit: usize) -> Result<Vec<u8>> {
    let declared = body.content_length();
    if let Some(declared) = declared.filter(|&n| n > limit as u64) {
        return Err(Error::new(
            ErrorCode::BadResponse,
            format!(
                "response declares a body of {declared} bytes, over the limit of {limit} bytes"
            ),
        ));
    }
    let initial = declared.map_or(MIN_GROWTH, |n| n as usize);
    // The C ABI hands back the buffer of the thread's previous response (see
    // `recycle_body`): a steady stream of calls reads into the same memory.
    let mut buffer = SPARE_BODY.take();
    buffer.clear();
    grow(&mut buffer, initial.min(MAX_PREALLOCATION))?;
    let mut reader = body.with_config().limit(limit as u64).reader();
    let mut filled = 0;
    loop {
        if filled == buffer.len() {
            // Full: see whether more is coming before growing.
            let mut probe = [0u8; 64];
            let n = read_some(&mut reader, &mut probe, limit)?;
            if n == 0 {
                break;
            }
            // Double, but never past the limit (the reader stops there).
            let step = filled
                .max(MIN_GROWTH)
                .min(limit.saturating_sub(filled).max(n));
            grow(&mut buffer, step)?;
            buffer[filled..filled + n].copy_from_slice(&probe[..n]);
            filled += n;
            continue;
        }
        match read_some(&mut reader, &mut buffer[filled..], limit)? {
            0 => break,
            n => filled += n,
        }
    }
    buffer.truncate(filled);
    Ok(buffer)
}

fn read_some(reader: &mut impl io::Read, into: &mut [u8], limit: usize) -> Result<usize> {
    loop {
        match reader.read(into) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(transport_error(ureq::Error::from(e), limit)),
        }
    }
}

/// Adds `additional` zeroed bytes, failing instead of aborting when memory is short.
fn grow(buffer: &mut Vec<u8>, additional: usize) -> Result<()> {
    buffer.try_reserve_exact(additional).map_err(|_| {
        Error::new(
            ErrorCode::Internal,
            format!(
                "out of memory for a response body of {} bytes",
                buffer.len().saturating_add(additional)
            ),
        )
    })?;
    buffer.resize(buffer.len() + additional, 0);
    Ok(())
}

/// Classifies a failure that produced no usable response.
pub(crate) fn transport_error(err: ureq::Error, response_limit: usize) -> Error {
    use ureq::Error as U;
    match err {
        U::Timeout(phase) => {
            use ureq::Timeout as T;
            let error = Error::new(
                ErrorCode::Timeout,
                format!("timed out: {phase} deadline expired"),
            );
            // Before any byte of the response: safe to try again within the deadline.
            match phase {
                T::Resolve | T::Connect | T::SendRequest | T::SendBody | T::RecvResponse => {
                    error.transient(None)
                }
                _ => error,
            }
        }
        U::HostNotFound => Error::new(ErrorCode::Connect, "DNS: host not found").transient(None),
        U::ConnectionFailed => {
            Error::new(ErrorCode::Connect, "connect: connection failed").transient(None)
        }
        U::Io(e) => io_error(e),
        U::Tls(why) => Error::new(ErrorCode::Tls, format!("TLS: {why}")),
        U::Rustls(e) => Error::new(ErrorCode::Tls, format!("TLS: {e}")),
        U::BodyExceedsLimit(_) => Error::new(
            ErrorCode::BadResponse,
            format!("response body exceeds the limit of {response_limit} bytes"),
        ),
        U::LargeResponseHeader(got, limit) => Error::new(
            ErrorCode::BadResponse,
            format!("response headers too large ({got} bytes, limit {limit})"),
        ),
        U::ConnectProxyFailed(why) if why.contains("407") => Error::new(
            ErrorCode::Connect,
            "proxy authentication failed (HTTP 407): check the user and password in the proxy URL",
        ),
        U::ConnectProxyFailed(why) => Error::new(
            ErrorCode::Connect,
            format!("proxy refused the CONNECT tunnel: {why}"),
        ),
        U::Protocol(ureq_proto::Error::HttpParseTooManyHeaders) => Error::new(
            ErrorCode::BadResponse,
            "response has too many header fields",
        ),
        U::Protocol(e) => Error::new(
            ErrorCode::Io,
            format!("malformed HTTP response or connection closed early: {e}"),
        ),
        other => Error::new(ErrorCode::Io, format!("HTTP transport: {other}")),
    }
}

fn io_error(e: io::Error) -> Error {
    if let Some(stale) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<StaleConnection>())
    {
        return Error::new(ErrorCode::Io, format!("connection: {stale}")).stale_connection();
    }
    if let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return Error::new(ErrorCode::Tls, format!("TLS handshake failed: {tls}"));
    }
    let code = match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::AddrNotAvailable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::HostUnreachable => {
            return Error::new(ErrorCode::Connect, format!("connect: {e}")).transient(None)
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorCode::Timeout,
        _ => ErrorCode::Io,
    };
    Error::new(code, format!("connection: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_hundreds_must_be_json_or_empty() {
        let h = ResponseHeaders::default();
        assert!(classify(200, &h, b"{\"a\":1}".to_vec()).is_ok());
        assert!(classify(204, &h, Vec::new()).is_ok());
        let err = classify(200, &h, b"<html>".to_vec()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadResponse);
        assert_eq!(err.body(), Some("<html>"));
        assert_eq!(
            classify(200, &h, vec![0xff, b'{']).unwrap_err().code(),
            ErrorCode::BadResponse
        );
    }

    #[test]
    fn statuses_map_to_codes_with_server_reason() {
        let h = ResponseHeaders::default();
        let err = classify(
            409,
            &h,
            br#"{"code":"VersionConflict","message":"expected 3"}"#.to_vec(),
        )
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
        assert_eq!(err.http_status(), 409);
        assert!(err.message().contains("VersionConflict: expected 3"));
        for (status, code) in [
            (400, ErrorCode::BadRequest),
            (401, ErrorCode::Unauthorized),
            (403, ErrorCode::Forbidden),
            (404, ErrorCode::NotFound),
            (413, ErrorCode::PayloadTooLarge),
            (429, ErrorCode::RateLimited),
            (503, ErrorCode::Server),
            (418, ErrorCode::Http),
        ] {
            let err = classify(status, &h, Vec::new()).unwrap_err();
            assert_eq!(err.code(), code);
            assert_eq!(
                err.is_transient(),
                status == 429 || status == 503,
                "{status}"
            );
        }
    }

    #[test]
    fn redirects_name_the_location() {
        let h = ResponseHeaders {
            location: Some("https://elsewhere.example/x".into()),
            retry_after: None,
        };
        let err = classify(302, &h, Vec::new()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Http);
        assert!(err.message().contains("https://elsewhere.example/x"));
    }
}
