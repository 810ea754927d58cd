//! HTTP helpers: the response body type, JSON responses, error responses, JSON request bodies
//! with limits.

use crate::conn::{ConnCtl, RawAction, ResponseGuard};
use crate::error::ApiError;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// How much of a large body is handed to hyper at a time.
pub const CHUNK: usize = 64 * 1024;

/// What happens when a response body is cut (fault rule with `after_bytes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutAction {
    /// Close the connection cleanly (TLS close_notify, then FIN).
    Close,
    /// Abort the connection with RST.
    Reset,
    /// Send nothing more; close after this long (`None`: hold until the client leaves).
    Stall(Option<Duration>),
}

struct Cut {
    after: u64,
    action: CutAction,
    ctl: Arc<ConnCtl>,
    armed: bool,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Response body: bytes in memory, handed out in [`CHUNK`]-sized `Bytes` slices (no copy),
/// optionally cut after N bytes, counting what it hands out, and telling the connection when
/// the response is done.
pub struct Body {
    rest: Bytes,
    sent: u64,
    cut: Option<Cut>,
    counter: Option<Arc<AtomicU64>>,
    _guard: Option<ResponseGuard>,
}

impl Body {
    /// A body of these bytes.
    pub fn new(bytes: Bytes) -> Self {
        Body {
            rest: bytes,
            sent: 0,
            cut: None,
            counter: None,
            _guard: None,
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::new(Bytes::new())
    }

    /// Stops sending after `after` bytes and then carries out `action` on the connection.
    /// A body of at most `after` bytes is sent complete.
    pub fn cut_after(&mut self, after: u64, action: CutAction, ctl: Arc<ConnCtl>) {
        self.cut = Some(Cut {
            after,
            action,
            ctl,
            armed: false,
            stall: None,
        });
    }

    /// Adds every byte handed out to `counter`.
    pub fn count_into(&mut self, counter: Arc<AtomicU64>) {
        self.counter = Some(counter);
    }

    /// Keeps `guard` until the body is dropped (hyper drops it once it is written).
    pub fn track(&mut self, guard: ResponseGuard) {
        self._guard = Some(guard);
    }
}

impl Cut {
    /// Called once the cut point is reached: arms the connection action; never yields data.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if !self.armed {
            self.armed = true;
            match self.action {
                CutAction::Close => self.ctl.set_after_flush(RawAction::Close),
                CutAction::Reset => self.ctl.set_after_flush(RawAction::Reset),
                CutAction::Stall(d) => {
                    // Without a duration: until the client leaves (hyper then drops the body)
                    // or the emulator stops; capped at an hour so nothing leaks forever.
                    let d = d.unwrap_or(Duration::from_secs(3600));
                    self.stall = Some(Box::pin(tokio::time::sleep(d)));
                }
            }
        }
        if let Some(s) = &mut self.stall {
            if s.as_mut().poll(cx).is_ready() {
                self.stall = None;
                // hyper flushes after a pending body poll, which carries this out.
                self.ctl.set_after_flush(RawAction::Close);
            }
        }
        Poll::Pending
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let mut n = this.rest.len().min(CHUNK);
        if let Some(cut) = &mut this.cut {
            let left = cut.after.saturating_sub(this.sent);
            if left == 0 {
                return cut.poll(cx);
            }
            n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
        }
        let data = this.rest.split_to(n);
        this.sent += n as u64;
        if let Some(c) = &this.counter {
            c.fetch_add(n as u64, Ordering::Relaxed);
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// A JSON response.
pub fn json(status: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    raw(status, "application/json", bytes)
}

/// A response with the given content type.
pub fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A JSON error response.
pub fn error(e: &ApiError, client_token: Option<&str>) -> Response<Body> {
    json(e.status, &e.body(client_token))
}

fn content_type_ok(headers: &HeaderMap) -> Option<bool> {
    let ct = headers.get(CONTENT_TYPE)?;
    let ct = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(ct == "application/json" || (ct.starts_with("application/") && ct.ends_with("+json")))
}

/// Reads a request body of at most `max` bytes.
///
/// A larger body is 413 `PayloadTooLarge`, but it is still read and discarded (up to
/// [`drain_cap`]) so that a client that is still sending gets to read the 413 response instead
/// of a broken pipe.
pub async fn collect(mut body: Incoming, max: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "PayloadTooLarge",
            format!("request body exceeds the limit of {max} bytes"),
        )
    };
    let mut buf: Vec<u8> = Vec::new();
    let mut seen: usize = 0;
    let cap = drain_cap(max);
    while let Some(frame) = body.frame().await {
        let frame = frame
            .map_err(|e| ApiError::invalid(format!("could not read the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= max {
                buf.extend_from_slice(&data);
            } else if seen > cap {
                return Err(too_large());
            } else {
                buf = Vec::new();
            }
        }
    }
    if seen > max {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

/// How many bytes of an oversized body are read and discarded before giving up on the
/// connection: four times the limit, at least 4 MiB.
pub fn drain_cap(max: usize) -> usize {
    max.saturating_mul(4).max(4 << 20)
}

/// Parses a JSON object body read by [`collect`].
///
/// * `Content-Type` other than `application/json` (or `application/*+json`) -> 415;
///   no `Content-Type` with a non-empty body -> 415.
/// * not JSON -> 400 `InvalidJson`; JSON but not an object -> 400 `InvalidRequest`.
/// * an empty body without `Content-Type` -> `Ok(None)`.
pub fn parse_object(
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<Option<Map<String, Value>>, ApiError> {
    let unsupported = || {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            "request bodies must be sent with Content-Type: application/json",
        )
    };
    match content_type_ok(headers) {
        Some(false) => return Err(unsupported()),
        None if bytes.is_empty() => return Ok(None),
        None => return Err(unsupported()),
        Some(true) => {}
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json(
            "the request body is empty; a JSON object is required",
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(Some(m)),
        Ok(_) => Err(ApiError::invalid("the request body must be a JSON object")),
        Err(e) => Err(ApiError::invalid_json(format!("malformed JSON: {e}"))),
    }
}

/// Decodes `%XX` escapes in a path segment (invalid escapes are kept literally).
pub fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (
                (b[i + 1] as char).to_digit(16),
                (b[i + 2] as char).to_digit(16),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent() {
        assert_eq!(percent_decode("abc"), "abc");
        assert_eq!(percent_decode("a%2Fb"), "a/b");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn parse_object_rules() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_object(&h, b"").unwrap(), None);
        assert_eq!(parse_object(&h, b"{}").unwrap_err().status, 415);
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert!(parse_object(&h, b"{}").unwrap().unwrap().is_empty());
        assert_eq!(parse_object(&h, b" ").unwrap_err().code, "InvalidJson");
        assert_eq!(parse_object(&h, b"{").unwrap_err().code, "InvalidJson");
        assert_eq!(parse_object(&h, b"[]").unwrap_err().code, "InvalidRequest");
        assert_eq!(
            parse_object(&h, b"\xff\xfe").unwrap_err().code,
            "InvalidJson"
        );
        assert_eq!(drain_cap(10), 4 << 20);
        assert_eq!(drain_cap(2 << 20), 8 << 20);
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(content_type_ok(&h), None);
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert_eq!(content_type_ok(&h), Some(true));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("Application/JSON"));
        assert_eq!(content_type_ok(&h), Some(true));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert_eq!(content_type_ok(&h), Some(true));
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(content_type_ok(&h), Some(false));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert_eq!(content_type_ok(&h), Some(false));
    }
}
