//! Files served on the device port under `/files/{name}`, for download tests (firmware images):
//! single byte ranges, a strong ETag, `If-Range`, optional Basic auth, and a log of every
//! request so that tests can see what a client asked for and got.
//!
//! The bytes live in memory as one [`Bytes`]; a response hands out `Bytes` slices of it in
//! [`crate::http::CHUNK`]-sized pieces, so no request copies the file.

use crate::conn::ConnCtl;
use crate::error::ApiError;
use crate::faults::FaultKind;
use crate::http::{self, Body};
use crate::routes::{self, FaultOutcome};
use crate::server::App;
use hyper::body::{Bytes, Incoming};
use hyper::header::{
    HeaderValue, ACCEPT_RANGES, ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, ETAG,
    IF_RANGE, RANGE, WWW_AUTHENTICATE,
};
use hyper::{Method, Request, Response};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Path prefix of the file downloads on the device port.
pub const PREFIX: &str = "/files/";
/// Largest file the admin API accepts or generates (256 MiB; files live in memory).
pub const MAX_FILE_BYTES: u64 = 256 << 20;
/// Requests kept in the log of each file name (oldest dropped first).
pub const REQUEST_LOG_LIMIT: usize = 1000;

fn yes() -> bool {
    true
}

/// How a file is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOptions {
    /// Honour `Range` (default true). false: ignore it and always answer 200 with the whole
    /// body, without `Accept-Ranges`, like a server without range support.
    #[serde(default = "yes")]
    pub ranges: bool,
    /// Require the device API's Basic credentials (default false: served to anyone, like a
    /// presigned CDN URL).
    #[serde(default)]
    pub auth: bool,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            ranges: true,
            auth: false,
        }
    }
}

/// A stored file, as the admin API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The file name (the last path segment of its URL).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    /// The strong ETag, quotes included, e.g. `"3a7bd3e2360a3d29-4"`; changes whenever the
    /// file is replaced, even by the same bytes.
    pub etag: String,
    /// Absolute URL on the device port, e.g. `https://127.0.0.1:41234/files/fw.bin`.
    pub url: String,
    /// See [`FileOptions::ranges`].
    pub ranges: bool,
    /// See [`FileOptions::auth`].
    pub auth: bool,
}

/// One request for a file, as logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRequest {
    /// `GET` or `HEAD` (or whatever was sent).
    pub method: String,
    /// The `Range` header as sent, if any.
    pub range: Option<String>,
    /// The `If-Range` header as sent, if any.
    pub if_range: Option<String>,
    /// The status sent (200, 206, 401, 404, 416, a fault's status); 0 when no status line was
    /// sent (faults `reset`, `garbage`, `stall` without `after_bytes`).
    pub status: u16,
    /// File bytes handed to the connection (0 for HEAD and errors; fewer than the range when a
    /// fault cut the body or the client left).
    pub bytes_sent: u64,
    /// Whether the request carried an `Authorization` header (of any kind).
    pub authorization_present: bool,
    /// The kind of the fault rule applied to the request, if any.
    pub fault: Option<FaultKind>,
}

#[derive(Debug)]
struct StoredFile {
    data: Bytes,
    sha256: String,
    etag: String,
    opts: FileOptions,
}

#[derive(Debug)]
struct Logged {
    req: FileRequest,
    bytes_sent: Arc<AtomicU64>,
}

/// All files and their request logs.
#[derive(Debug, Default)]
pub struct Files {
    files: BTreeMap<String, StoredFile>,
    logs: BTreeMap<String, VecDeque<Logged>>,
    generation: u64,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic content: the splitmix64 sequence started at `seed`, each 64-bit output
/// written little-endian, truncated to `size` bytes. Any language can regenerate it.
pub fn generate(size: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; size];
    let mut x = seed;
    for chunk in out.chunks_mut(8) {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    out
}

/// The URL of `name` under `endpoint`.
pub fn url(endpoint: &str, name: &str) -> String {
    format!("{endpoint}{PREFIX}{name}")
}

impl Files {
    /// Stores (or replaces) a file; `sha256` is [`sha256_hex`] of `data`, computed by the caller
    /// outside the state lock.
    pub fn put(
        &mut self,
        name: &str,
        data: Bytes,
        sha256: String,
        opts: FileOptions,
        endpoint: &str,
    ) -> FileInfo {
        self.generation += 1;
        let etag = format!("\"{}-{}\"", &sha256[..16], self.generation);
        self.files.insert(
            name.to_owned(),
            StoredFile {
                data,
                sha256,
                etag,
                opts,
            },
        );
        self.info(name, endpoint).unwrap_or_else(|| unreachable!())
    }

    /// The description of a file.
    pub fn info(&self, name: &str, endpoint: &str) -> Option<FileInfo> {
        let f = self.files.get(name)?;
        Some(FileInfo {
            name: name.to_owned(),
            size: f.data.len() as u64,
            sha256: f.sha256.clone(),
            etag: f.etag.clone(),
            url: url(endpoint, name),
            ranges: f.opts.ranges,
            auth: f.opts.auth,
        })
    }

    /// Every file, by name.
    pub fn list(&self, endpoint: &str) -> Vec<FileInfo> {
        self.files
            .keys()
            .filter_map(|n| self.info(n, endpoint))
            .collect()
    }

    /// Removes a file and its log; false if there was none.
    pub fn remove(&mut self, name: &str) -> bool {
        self.logs.remove(name);
        self.files.remove(name).is_some()
    }

    fn serve_parts(&self, name: &str) -> Option<(Bytes, String, FileOptions)> {
        let f = self.files.get(name)?;
        Some((f.data.clone(), f.etag.clone(), f.opts))
    }

    fn log(&mut self, name: &str, req: FileRequest) -> Arc<AtomicU64> {
        let bytes_sent = Arc::new(AtomicU64::new(0));
        let log = self.logs.entry(name.to_owned()).or_default();
        if log.len() >= REQUEST_LOG_LIMIT {
            log.pop_front();
        }
        log.push_back(Logged {
            req,
            bytes_sent: bytes_sent.clone(),
        });
        bytes_sent
    }

    /// The requests for `name` (existing or not), oldest first.
    pub fn requests(&self, name: &str) -> Vec<FileRequest> {
        self.logs
            .get(name)
            .map(|l| {
                l.iter()
                    .map(|e| FileRequest {
                        bytes_sent: e.bytes_sent.load(Ordering::Relaxed),
                        ..e.req.clone()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets the requests for `name`.
    pub fn clear_requests(&mut self, name: &str) {
        self.logs.remove(name);
    }
}

/// What to send for a `Range` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReply {
    /// 200 with the whole body.
    Full,
    /// 206 with bytes `start..=end`.
    Partial(u64, u64),
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

fn parse_pos(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: a number too large for u64 is still a valid position, just past any file.
    Some(s.parse().unwrap_or(u64::MAX))
}

/// Decides the reply to `Range` / `If-Range` (RFC 9110 §14): a syntactically invalid range,
/// a unit other than `bytes`, several ranges, or an `If-Range` that is not the current ETag
/// (strong comparison; dates never match, as no `Last-Modified` is sent) give the whole body.
pub fn decide(range: Option<&str>, if_range: Option<&str>, etag: &str, size: u64) -> RangeReply {
    let Some(range) = range else {
        return RangeReply::Full;
    };
    if if_range.is_some_and(|v| v.trim() != etag) {
        return RangeReply::Full;
    }
    let range = range.trim();
    let Some(spec) = range
        .get(..6)
        .filter(|u| u.eq_ignore_ascii_case("bytes="))
        .map(|_| &range[6..])
    else {
        return RangeReply::Full;
    };
    if spec.contains(',') {
        return RangeReply::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeReply::Full;
    };
    match (first.trim().is_empty(), parse_pos(first), parse_pos(last)) {
        // -n: the last n bytes
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                RangeReply::Unsatisfiable
            } else {
                RangeReply::Partial(size - n.min(size), size - 1)
            }
        }
        // a- and a-b
        (false, Some(a), b) if last.trim().is_empty() || b.is_some() => {
            if b.is_some_and(|b| b < a) {
                RangeReply::Full
            } else if a >= size {
                RangeReply::Unsatisfiable
            } else {
                RangeReply::Partial(a, b.unwrap_or(u64::MAX).min(size - 1))
            }
        }
        _ => RangeReply::Full,
    }
}

fn header_str(h: &hyper::HeaderMap, name: hyper::header::HeaderName) -> Option<String> {
    h.get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn set(resp: &mut Response<Body>, name: hyper::header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// Handles `GET`/`HEAD /files/{name}` on the device port.
///
/// Order: count it and take a fault rule, apply the fault, method (405), file (404), Basic
/// auth when the file requires it (401), then the range decision.
pub async fn handle(app: &App, ctl: &Arc<ConnCtl>, req: Request<Incoming>) -> Response<Body> {
    let (parts, _body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let name = http::percent_decode(&path[PREFIX.len()..]);
    let key = format!("{method} {PREFIX}{{name}}");
    let fault = app.state().begin_api_request(&key, method.as_str(), &path);
    let mut entry = FileRequest {
        method: method.to_string(),
        range: header_str(&parts.headers, RANGE),
        if_range: header_str(&parts.headers, IF_RANGE),
        status: 0,
        bytes_sent: 0,
        authorization_present: parts.headers.contains_key(AUTHORIZATION),
        fault: fault.as_ref().map(|r| r.kind),
    };
    let fault_status = fault.as_ref().map(|r| match r.kind {
        FaultKind::Truncate => r.status.unwrap_or(200),
        _ => 0,
    });
    let cut = match routes::apply(ctl, fault).await {
        FaultOutcome::Normal => None,
        FaultOutcome::Cut(n, a) => Some((n, a)),
        FaultOutcome::Replace(r) => {
            entry.status = match entry.fault {
                Some(FaultKind::Status) => r.status().as_u16(),
                _ => fault_status.unwrap_or(0),
            };
            app.state().files_mut().log(&name, entry);
            return r;
        }
    };
    let (mut resp, counter) = respond(app, &parts, &method, &name, &mut entry);
    if let Some((n, a)) = cut {
        resp.body_mut().cut_after(n, a, ctl.clone());
    }
    entry.status = resp.status().as_u16();
    let sent = app.state().files_mut().log(&name, entry);
    if counter {
        resp.body_mut().count_into(sent);
    }
    resp
}

/// The response; the flag tells whether its body is file bytes (to be counted).
fn respond(
    app: &App,
    parts: &hyper::http::request::Parts,
    method: &Method,
    name: &str,
    entry: &mut FileRequest,
) -> (Response<Body>, bool) {
    if *method != Method::GET && *method != Method::HEAD {
        let e = ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not allowed here; use GET or HEAD"),
        );
        let mut r = http::error(&e, None);
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return (r, false);
    }
    let found = app.state().files().serve_parts(name);
    let Some((data, etag, opts)) = found else {
        let e = ApiError::not_found(format!("no file `{name}`"));
        return (http::error(&e, None), false);
    };
    if opts.auth {
        if let Err(e) = routes::check_basic(&parts.headers, &app.api_key, &app.api_secret) {
            let mut r = http::error(&e, None);
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"fleets-emulator\""),
            );
            return (r, false);
        }
    }
    let size = data.len() as u64;
    let reply = if opts.ranges {
        decide(
            entry.range.as_deref(),
            entry.if_range.as_deref(),
            &etag,
            size,
        )
    } else {
        RangeReply::Full
    };
    let (status, body) = match reply {
        RangeReply::Unsatisfiable => {
            let e = ApiError::new(
                416,
                "RangeNotSatisfiable",
                format!("the range is outside the file ({size} bytes)"),
            );
            let mut r = http::error(&e, None);
            set(&mut r, CONTENT_RANGE, &format!("bytes */{size}"));
            set(&mut r, ETAG, &etag);
            r.headers_mut()
                .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return (r, false);
        }
        RangeReply::Full => (200, data),
        RangeReply::Partial(a, b) => (206, data.slice(a as usize..=b as usize)),
    };
    let len = body.len();
    let mut r = http::raw(status, "application/octet-stream", Vec::new());
    if *method == Method::GET {
        *r.body_mut() = Body::new(body);
    }
    set(&mut r, CONTENT_LENGTH, &len.to_string());
    set(&mut r, ETAG, &etag);
    if opts.ranges {
        r.headers_mut()
            .insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if let RangeReply::Partial(a, b) = reply {
        set(&mut r, CONTENT_RANGE, &format!("bytes {a}-{b}/{size}"));
    }
    (r, *method == Method::GET)
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "\"abc-1\"";

    fn d(range: &str, size: u64) -> RangeReply {
        decide(Some(range), None, E, size)
    }

    #[test]
    fn single_ranges() {
        use RangeReply::*;
        assert_eq!(decide(None, None, E, 10), Full);
        assert_eq!(d("bytes=0-4", 10), Partial(0, 4));
        assert_eq!(d("bytes=5-", 10), Partial(5, 9));
        assert_eq!(d("bytes=-3", 10), Partial(7, 9));
        assert_eq!(d("bytes=-30", 10), Partial(0, 9));
        assert_eq!(d("bytes=8-100", 10), Partial(8, 9));
        assert_eq!(d("bytes=9-9", 10), Partial(9, 9));
        assert_eq!(d("Bytes= 2 - 3 ", 10), Partial(2, 3));
        assert_eq!(d("bytes=0-99999999999999999999999", 10), Partial(0, 9));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        use RangeReply::*;
        assert_eq!(d("bytes=10-", 10), Unsatisfiable);
        assert_eq!(d("bytes=10-20", 10), Unsatisfiable);
        assert_eq!(d("bytes=-0", 10), Unsatisfiable);
        assert_eq!(d("bytes=0-", 0), Unsatisfiable);
        assert_eq!(d("bytes=-5", 0), Unsatisfiable);
        for ignored in [
            "bytes=5-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=",
            "bytes=-",
            "bytes=a-b",
            "bytes=1",
            "bytes=+1-2",
            "bytes 0-1",
        ] {
            assert_eq!(d(ignored, 10), Full, "{ignored}");
        }
    }

    #[test]
    fn if_range_needs_the_current_etag() {
        use RangeReply::*;
        assert_eq!(decide(Some("bytes=1-2"), Some(E), E, 10), Partial(1, 2));
        assert_eq!(decide(Some("bytes=1-2"), Some("\"abc-0\""), E, 10), Full);
        assert_eq!(decide(Some("bytes=1-2"), Some("W/\"abc-1\""), E, 10), Full);
        assert_eq!(
            decide(
                Some("bytes=1-2"),
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                E,
                10
            ),
            Full
        );
    }

    #[test]
    fn generated_content_is_deterministic() {
        let a = generate(1001, 7);
        assert_eq!(a.len(), 1001);
        assert_eq!(a, generate(1001, 7));
        assert_ne!(a, generate(1001, 8));
        assert_eq!(&generate(16, 7)[..], &a[..16], "a prefix of a longer file");
        // splitmix64(seed 0) first output: 0xe220a8397b1dcdaf
        assert_eq!(
            generate(8, 0),
            0xe220_a839_7b1d_cdafu64.to_le_bytes().to_vec()
        );
        assert!(generate(0, 1).is_empty());
    }

    #[test]
    fn store_replace_and_log() {
        let mut f = Files::default();
        let data = Bytes::from_static(b"hello");
        let i1 = f.put(
            "a.bin",
            data.clone(),
            sha256_hex(&data),
            FileOptions::default(),
            "https://h:1",
        );
        assert_eq!(
            i1.sha256,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(i1.url, "https://h:1/files/a.bin");
        assert_eq!((i1.size, i1.ranges, i1.auth), (5, true, false));
        let i2 = f.put(
            "a.bin",
            data.clone(),
            sha256_hex(&data),
            FileOptions::default(),
            "https://h:1",
        );
        assert_ne!(i1.etag, i2.etag, "replacing changes the ETag");
        let req = FileRequest {
            method: "GET".into(),
            range: None,
            if_range: None,
            status: 200,
            bytes_sent: 0,
            authorization_present: false,
            fault: None,
        };
        for _ in 0..REQUEST_LOG_LIMIT + 5 {
            f.log("a.bin", req.clone());
        }
        f.log("a.bin", req.clone()).fetch_add(3, Ordering::Relaxed);
        let reqs = f.requests("a.bin");
        assert_eq!(reqs.len(), REQUEST_LOG_LIMIT);
        assert_eq!(reqs.last().unwrap().bytes_sent, 3);
        assert!(f.remove("a.bin"));
        assert!(f.requests("a.bin").is_empty());
        assert!(!f.remove("a.bin"));
    }
}
