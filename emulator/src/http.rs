//! HTTP helpers: JSON responses, error responses, JSON request bodies with limits.

use crate::error::ApiError;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{HeaderMap, Request, Response, StatusCode};
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

/// Reads a JSON object body.
///
/// * `Content-Type` other than `application/json` (or `application/*+json`) -> 415;
///   no `Content-Type` with a non-empty body -> 415.
/// * larger than `max` bytes -> 413 (from `Content-Length` before reading, or while reading).
/// * not JSON -> 400 `InvalidJson`; JSON but not an object -> 400 `InvalidRequest`.
/// * an empty body without `Content-Type` -> `Ok(None)`.
pub async fn read_object(
    req: Request<Incoming>,
    max: usize,
) -> Result<Option<Map<String, Value>>, ApiError> {
    let ct = content_type_ok(req.headers());
    if ct == Some(false) {
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "request bodies must be sent with Content-Type: application/json",
        ));
    }
    let too_large = || {
        ApiError::new(
            413,
            "PayloadTooLarge",
            format!("request body exceeds the limit of {max} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) || req.body().size_hint().lower() > max as u64 {
        return Err(too_large());
    }
    let bytes = match Limited::new(req.into_body(), max).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => {
            return Err(ApiError::invalid(format!(
                "could not read the request body: {e}"
            )))
        }
    };
    if ct.is_none() {
        if bytes.is_empty() {
            return Ok(None);
        }
        return Err(ApiError::new(
            415,
            "UnsupportedMediaType",
            "request bodies must be sent with Content-Type: application/json",
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_json(
            "the request body is empty; a JSON object is required",
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
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
