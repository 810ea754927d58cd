//! HTTP helpers: JSON responses, error responses, JSON request bodies with limits.

use crate::error::ApiError;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Response, StatusCode};
use serde_json::{Map, Value};

/// Response body type.
pub type Body = Full<Bytes>;

/// A JSON response.
pub fn json(status: u16, v: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    raw(status, "application/json", bytes)
}

/// A response with the given content type.
pub fn raw(status: u16, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
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
