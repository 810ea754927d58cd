//! The ThingDatas device API: routing, Basic auth, faults, dispatch to [`crate::state`].

use crate::conn::{ConnCtl, RawAction};
use crate::error::ApiError;
use crate::faults::{FaultKind, FaultRule};
use crate::http::{self, Body, CutAction};
use crate::server::App;
use crate::validate::echo_token;
use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Prefix of every device endpoint.
pub const PREFIX: &str = "/api/v1/thing-datas/";

/// A matched device endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /api/v1/thing-datas/shadow/reported`
    Report,
    /// `GET /api/v1/thing-datas/{thingName}/shadow`
    GetShadow(String),
    /// `POST /api/v1/thing-datas/events`
    Event,
    /// `POST /api/v1/thing-datas/command/response`
    CommandResponse,
    /// `POST /api/v1/thing-datas/jobs/get`
    JobsGet,
    /// `POST /api/v1/thing-datas/jobs/start-next`
    StartNext,
    /// `POST /api/v1/thing-datas/jobs/{jobId}/get`
    Describe(String),
    /// `POST /api/v1/thing-datas/jobs/{jobId}/update`
    Update(String),
}

/// Result of routing: the stats key and the route or a 404/405.
#[derive(Debug)]
pub struct Matched {
    /// `"<METHOD> <path pattern>"`, e.g. `GET /api/v1/thing-datas/{thingName}/shadow`.
    pub key: String,
    /// The route, or the 404 / 405 error.
    pub route: Result<Route, ApiError>,
}

/// Routes a device-API request path.
pub fn match_route(method: &Method, path: &str) -> Matched {
    let segs: Vec<&str> = path
        .strip_prefix(PREFIX)
        .map(|r| r.split('/').collect())
        .unwrap_or_default();
    let found: Option<(Method, &str, Route)> = match segs.as_slice() {
        ["shadow", "reported"] => Some((Method::POST, "/shadow/reported", Route::Report)),
        [name, "shadow"] => Some((
            Method::GET,
            "/{thingName}/shadow",
            Route::GetShadow(http::percent_decode(name)),
        )),
        ["events"] => Some((Method::POST, "/events", Route::Event)),
        ["command", "response"] => {
            Some((Method::POST, "/command/response", Route::CommandResponse))
        }
        ["jobs", "get"] => Some((Method::POST, "/jobs/get", Route::JobsGet)),
        ["jobs", "start-next"] => Some((Method::POST, "/jobs/start-next", Route::StartNext)),
        ["jobs", id, "get"] => Some((
            Method::POST,
            "/jobs/{jobId}/get",
            Route::Describe(http::percent_decode(id)),
        )),
        ["jobs", id, "update"] => Some((
            Method::POST,
            "/jobs/{jobId}/update",
            Route::Update(http::percent_decode(id)),
        )),
        _ => None,
    };
    match found {
        Some((want, pattern, route)) => {
            let key = format!("{method} /api/v1/thing-datas{pattern}");
            if *method == want {
                Matched {
                    key,
                    route: Ok(route),
                }
            } else {
                Matched {
                    key,
                    route: Err(ApiError::new(
                        405,
                        "MethodNotAllowed",
                        format!("{method} is not allowed here; use {want}"),
                    )
                    .with("allow", json!(want.as_str()))),
                }
            }
        }
        None => Matched {
            key: format!("{method} <unknown>"),
            route: Err(ApiError::new(
                404,
                "NotFound",
                format!("no such endpoint: {method} {path}"),
            )),
        },
    }
}

/// Checks `Authorization: Basic base64(key:secret)`.
pub fn check_basic(headers: &hyper::HeaderMap, key: &str, secret: &str) -> Result<(), ApiError> {
    let unauthorized = |m: &str| ApiError::new(401, "Unauthorized", m);
    let h = headers.get(AUTHORIZATION).ok_or_else(|| {
        unauthorized("missing Authorization header (HTTP Basic with the API key and secret)")
    })?;
    let h = h
        .to_str()
        .map_err(|_| unauthorized("malformed Authorization header"))?
        .trim();
    let (scheme, cred) = h
        .split_once(' ')
        .ok_or_else(|| unauthorized("malformed Authorization header"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(unauthorized("the Authorization scheme must be Basic"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(cred.trim())
        .map_err(|_| unauthorized("malformed Basic credentials"))?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| unauthorized("malformed Basic credentials"))?;
    let (k, s) = decoded
        .split_once(':')
        .ok_or_else(|| unauthorized("malformed Basic credentials"))?;
    if constant_time_eq(k.as_bytes(), key.as_bytes())
        & constant_time_eq(s.as_bytes(), secret.as_bytes())
    {
        Ok(())
    } else {
        Err(unauthorized("invalid API key or secret"))
    }
}

/// Length-revealing but otherwise constant-time comparison.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

const DEFAULT_FAULT_BODY: &str =
    r#"{"code":"InjectedFault","message":"fault injected by fleets-emulator"}"#;

fn fault_body(rule: &FaultRule) -> (Vec<u8>, &'static str) {
    match &rule.body {
        None => (DEFAULT_FAULT_BODY.as_bytes().to_vec(), "application/json"),
        Some(Value::String(s)) => (s.as_bytes().to_vec(), "text/plain"),
        Some(v) => (
            serde_json::to_vec(v).unwrap_or_default(),
            "application/json",
        ),
    }
}

fn reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// The mid-body cut of a rule with `after_bytes`: how many bytes, then what.
pub fn mid_body_cut(rule: &FaultRule) -> Option<(u64, CutAction)> {
    let n = rule.after_bytes?;
    let action = match rule.kind {
        FaultKind::Reset => CutAction::Reset,
        FaultKind::Truncate => CutAction::Close,
        FaultKind::Stall => CutAction::Stall(rule.delay_ms.map(Duration::from_millis)),
        _ => return None,
    };
    Some((n, action))
}

/// What a matched fault rule does to a request.
pub enum FaultOutcome {
    /// Handle the request normally (no rule, or a `delay` that has been waited out).
    Normal,
    /// Handle it normally, then cut the response body.
    Cut(u64, CutAction),
    /// Send this instead (a `status` answer, or a placeholder for a connection action).
    Replace(Response<Body>),
}

/// Applies a fault rule taken for a request: waits, arms a connection action or prepares a cut.
pub async fn apply(ctl: &ConnCtl, rule: Option<FaultRule>) -> FaultOutcome {
    let Some(rule) = rule else {
        return FaultOutcome::Normal;
    };
    if let Some((n, a)) = mid_body_cut(&rule) {
        return FaultOutcome::Cut(n, a);
    }
    match apply_fault(ctl, rule).await {
        Some(r) => FaultOutcome::Replace(r),
        None => FaultOutcome::Normal,
    }
}

/// Applies a fault. Returns the response to send, or `None` to handle the request normally.
async fn apply_fault(ctl: &ConnCtl, rule: FaultRule) -> Option<Response<Body>> {
    match rule.kind {
        FaultKind::Delay => {
            tokio::time::sleep(Duration::from_millis(rule.delay_ms.unwrap_or(0))).await;
            None
        }
        FaultKind::Status => {
            let status = rule.status.unwrap_or(503);
            let mut resp = match &rule.body {
                None => http::json(
                    status,
                    &json!({"code": "InjectedFault", "message": format!("fault injected by fleets-emulator: HTTP {status}")}),
                ),
                Some(_) => {
                    let (b, ct) = fault_body(&rule);
                    http::raw(status, ct, b)
                }
            };
            if let Some(secs) = rule.retry_after_s {
                let v = if rule.retry_after_date {
                    httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(secs))
                } else {
                    secs.to_string()
                };
                if let Ok(v) = HeaderValue::from_str(&v) {
                    resp.headers_mut().insert(RETRY_AFTER, v);
                }
            }
            Some(resp)
        }
        FaultKind::Reset => {
            ctl.set(RawAction::Reset);
            Some(http::json(500, &json!({})))
        }
        FaultKind::Truncate => {
            let status = rule.status.unwrap_or(200);
            let (body, ct) = fault_body(&rule);
            let sent = &body[..body.len() / 2];
            let mut bytes = format!(
                "HTTP/1.1 {status} {}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
                reason(status),
                body.len() + 64
            )
            .into_bytes();
            bytes.extend_from_slice(sent);
            ctl.set(RawAction::Send(bytes));
            Some(http::json(500, &json!({})))
        }
        FaultKind::Garbage => {
            let bytes = match &rule.body {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                _ => b"\x00\x01\x02 this is not HTTP \xff\xfe\r\n\r\n".to_vec(),
            };
            ctl.set(RawAction::Send(bytes));
            Some(http::json(500, &json!({})))
        }
        FaultKind::Stall => {
            // Without delay_ms: hold until the client leaves (hyper then drops this future) or
            // the emulator shuts down; capped at an hour so nothing leaks forever.
            let ms = rule.delay_ms.unwrap_or(3_600_000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ctl.set(RawAction::Close);
            Some(http::json(500, &json!({})))
        }
    }
}

/// Handles one `/api/v1/...` request.
///
/// Order: count it, read the body (bounded), apply a fault, check Basic auth (401), route
/// (404/405), body limit (413), content type (415), JSON (400), then the endpoint itself.
pub async fn handle(app: &App, ctl: &Arc<ConnCtl>, req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let m = match_route(&parts.method, path);
    let fault = app
        .state()
        .begin_api_request(&m.key, parts.method.as_str(), path);
    let bytes = http::collect(body, app.max_body).await;
    match apply(ctl, fault).await {
        FaultOutcome::Normal => respond(app, parts, m, bytes),
        FaultOutcome::Replace(r) => r,
        FaultOutcome::Cut(n, action) => {
            let mut r = respond(app, parts, m, bytes);
            r.body_mut().cut_after(n, action, ctl.clone());
            r
        }
    }
}

fn respond(
    app: &App,
    parts: hyper::http::request::Parts,
    m: Matched,
    bytes: Result<hyper::body::Bytes, ApiError>,
) -> Response<Body> {
    if let Err(e) = check_basic(&parts.headers, &app.api_key, &app.api_secret) {
        let mut r = http::error(&e, None);
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"fleets-emulator\""),
        );
        return r;
    }
    let route = match m.route {
        Ok(r) => r,
        Err(e) => {
            let mut r = http::error(&e, None);
            if let Some(Value::String(allow)) = e.extra.get("allow") {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    r.headers_mut().insert(ALLOW, v);
                }
            }
            return r;
        }
    };
    let body = match bytes {
        Err(e) => return http::error(&e, None),
        Ok(_) if matches!(route, Route::GetShadow(_)) => Map::new(),
        Ok(bytes) => match http::parse_object(&parts.headers, &bytes) {
            Ok(Some(b)) => b,
            Ok(None) => {
                return http::error(
                    &ApiError::invalid_json(
                        "a JSON object body with Content-Type: application/json is required",
                    ),
                    None,
                )
            }
            Err(e) => return http::error(&e, None),
        },
    };
    let result = {
        let mut st = app.state();
        match &route {
            Route::Report => st.report(&body),
            Route::GetShadow(name) => st.get_shadow(name),
            Route::Event => st.publish_event(&body),
            Route::CommandResponse => st.command_response(&body),
            Route::JobsGet => st.jobs_get(&body),
            Route::StartNext => st.jobs_start_next(&body),
            Route::Describe(id) => st.job_describe(id, &body),
            Route::Update(id) => st.job_update(id, &body),
        }
    };
    match result {
        Ok(v) => http::json(200, &v),
        Err(e) => http::error(&e, echo_token(&body)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_and_keys() {
        let m = match_route(&Method::GET, "/api/v1/thing-datas/thermostat-001/shadow");
        assert_eq!(m.key, "GET /api/v1/thing-datas/{thingName}/shadow");
        assert_eq!(m.route.unwrap(), Route::GetShadow("thermostat-001".into()));
        let m = match_route(&Method::POST, "/api/v1/thing-datas/jobs/j-1/update");
        assert_eq!(m.key, "POST /api/v1/thing-datas/jobs/{jobId}/update");
        assert_eq!(m.route.unwrap(), Route::Update("j-1".into()));
        assert_eq!(
            match_route(&Method::POST, "/api/v1/thing-datas/jobs/j%2D1/get")
                .route
                .unwrap(),
            Route::Describe("j-1".into())
        );
        assert_eq!(
            match_route(&Method::POST, "/api/v1/thing-datas/jobs/get")
                .route
                .unwrap(),
            Route::JobsGet
        );
        assert_eq!(
            match_route(&Method::POST, "/api/v1/thing-datas/jobs/start-next")
                .route
                .unwrap(),
            Route::StartNext
        );
        let m = match_route(&Method::GET, "/api/v1/thing-datas/events");
        assert_eq!(m.key, "GET /api/v1/thing-datas/events");
        assert_eq!(m.route.unwrap_err().status, 405);
        let m = match_route(&Method::POST, "/api/v1/thing-datas/nope");
        assert_eq!(m.key, "POST <unknown>");
        assert_eq!(m.route.unwrap_err().status, 404);
        assert_eq!(
            match_route(&Method::POST, "/api/v1/thing-datas/events/")
                .route
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            match_route(&Method::GET, "/api/v1/other")
                .route
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn basic_auth() {
        let mut h = hyper::HeaderMap::new();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert_eq!(check_basic(&h, "k", "s").unwrap_err().status, 401);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", b64("k:s"))).unwrap(),
        );
        assert!(check_basic(&h, "k", "s").is_ok());
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("basic  {}", b64("k:s"))).unwrap(),
        );
        assert!(check_basic(&h, "k", "s").is_ok());
        for bad in [
            format!("Basic {}", b64("k:x")),
            format!("Basic {}", b64("x:s")),
            format!("Basic {}", b64("ks")),
            format!("Bearer {}", b64("k:s")),
            "Basic !!!".to_owned(),
            "Basic".to_owned(),
        ] {
            h.insert(AUTHORIZATION, HeaderValue::from_str(&bad).unwrap());
            assert_eq!(
                check_basic(&h, "k", "s").unwrap_err().code,
                "Unauthorized",
                "{bad}"
            );
        }
        // a secret containing ':' is fine (split at the first one)
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {}", b64("k:s:t"))).unwrap(),
        );
        assert!(check_basic(&h, "k", "s:t").is_ok());
    }
}
