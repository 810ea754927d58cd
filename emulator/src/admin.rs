//! The admin API under `/admin/v1` (Bearer admin token): things, desired state, commands,
//! jobs, faults, clock, stats, reset, outages, keep-alive knobs and files.

use crate::error::ApiError;
use crate::faults::FaultRule;
use crate::files::{self, FileOptions, MAX_FILE_BYTES};
use crate::http::{self, Body};
use crate::port::OfflineMode;
use crate::routes::constant_time_eq;
use crate::server::App;
use crate::validate::{self as v, Obj};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Prefix of every admin endpoint.
pub const PREFIX: &str = "/admin/v1/";

fn check_bearer(headers: &hyper::HeaderMap, token: &str) -> Result<(), ApiError> {
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => Ok(()),
        Some(_) => Err(ApiError::new(401, "Unauthorized", "invalid admin token")),
        None => Err(ApiError::new(
            401,
            "Unauthorized",
            "missing admin token (Authorization: Bearer <admin token>)",
        )),
    }
}

fn method_not_allowed(allowed: &'static str) -> ApiError {
    ApiError::new(
        405,
        "MethodNotAllowed",
        format!("method not allowed; use {allowed}"),
    )
    .with("allow", json!(allowed))
}

fn unknown_thing(name: &str) -> ApiError {
    ApiError::not_found(format!("thing `{name}` is not registered"))
}

/// Handles one `/admin/v1/...` request.
pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Response<Body> {
    app.state().count_admin_request();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let segs: Vec<String> = parts
        .uri
        .path()
        .strip_prefix(PREFIX)
        .unwrap_or("")
        .split('/')
        .map(http::percent_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    // A file upload is the one body that is not JSON and may be large.
    let upload = method == Method::PUT && matches!(segs.as_slice(), ["files", _]);
    let limit = if upload {
        MAX_FILE_BYTES as usize
    } else {
        app.max_body
    };
    let bytes = http::collect(body, limit).await;
    if let Err(e) = check_bearer(&parts.headers, &app.admin_token) {
        let mut r = http::error(&e, None);
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"fleets-emulator-admin\""),
        );
        return r;
    }
    // An empty body is `{}` here whatever the Content-Type (e.g. `curl -X PUT` with a JSON
    // header). Parse errors are reported only by endpoints that take a body, after routing.
    let body: Result<Obj, ApiError> = match &bytes {
        Ok(_) if upload => Ok(Obj::new()),
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Obj::new()),
        Ok(b) => http::parse_object(&parts.headers, b).map(Option::unwrap_or_default),
        Err(e) => Err(e.clone()),
    };
    let result = match segs.as_slice() {
        ["files", ..] | ["offline"] | ["online"] | ["reset"] => {
            route_async(app, &method, &segs, parts.uri.query(), bytes, &body).await
        }
        _ => route(app, &method, &segs, &body),
    };
    match result {
        Ok(v) => http::json(200, &v),
        Err(e) => {
            let mut r = http::error(&e, None);
            if let Some(Value::String(allow)) = e.extra.get("allow") {
                if let Ok(v) = HeaderValue::from_str(allow) {
                    r.headers_mut().insert(ALLOW, v);
                }
            }
            r
        }
    }
}

fn route(
    app: &App,
    method: &Method,
    segs: &[&str],
    body: &Result<Obj, ApiError>,
) -> Result<Value, ApiError> {
    let body = || body.as_ref().map_err(Clone::clone);
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let put = *method == Method::PUT;
    match segs {
        ["things"] if get => Ok(json!({"things": app.state().thing_names()})),
        ["things"] => Err(method_not_allowed("GET")),
        ["things", name] if put => {
            v::check_identifier("thingName", name)?;
            let created = app.state().register(name);
            Ok(json!({"thingName": name, "created": created}))
        }
        ["things", name] if get => {
            let st = app.state();
            let t = st.thing(name).ok_or_else(|| unknown_thing(name))?;
            Ok(json!({"thingName": name, "shadow": t.shadow_json()}))
        }
        ["things", _] => Err(method_not_allowed("GET, PUT")),
        ["things", name, "shadow"] if get => {
            let st = app.state();
            Ok(st
                .thing(name)
                .ok_or_else(|| unknown_thing(name))?
                .shadow_json())
        }
        ["things", _, "shadow"] => Err(method_not_allowed("GET")),
        ["things", name, "shadow", "desired"] if put => {
            v::check_identifier("thingName", name)?;
            app.state()
                .set_desired(name, &Value::Object(body()?.clone()))
        }
        ["things", _, "shadow", "desired"] => Err(method_not_allowed("PUT")),
        ["things", name, "shadow", "history"] if get => {
            let h = app
                .state()
                .history(name)
                .ok_or_else(|| unknown_thing(name))?;
            Ok(json!({"thingName": name, "history": h}))
        }
        ["things", _, "shadow", "history"] => Err(method_not_allowed("GET")),
        ["things", name, "events"] if get => {
            let e = app
                .state()
                .events(name)
                .ok_or_else(|| unknown_thing(name))?;
            Ok(json!({"thingName": name, "events": e}))
        }
        ["things", _, "events"] => Err(method_not_allowed("GET")),
        ["things", name, "commands"] if get => {
            let c = app
                .state()
                .commands(name)
                .ok_or_else(|| unknown_thing(name))?;
            Ok(json!({"thingName": name, "commands": c}))
        }
        ["things", name, "commands"] if post => {
            v::check_identifier("thingName", name)?;
            create_command(app, name, body()?)
        }
        ["things", _, "commands"] => Err(method_not_allowed("GET, POST")),
        ["things", name, "commands", id] if get => app.state().command(name, id).ok_or_else(|| {
            ApiError::not_found(format!("no command execution `{id}` for thing `{name}`"))
        }),
        ["things", _, "commands", _] => Err(method_not_allowed("GET")),
        ["jobs"] if get => Ok(json!({"jobs": app.state().job_list()})),
        ["jobs"] if post => create_job(app, body()?),
        ["jobs"] => Err(method_not_allowed("GET, POST")),
        ["jobs", id] if get => app
            .state()
            .job(id)
            .ok_or_else(|| ApiError::not_found(format!("job `{id}` does not exist"))),
        ["jobs", _] => Err(method_not_allowed("GET")),
        ["jobs", id, "things", name] if get => {
            app.state().job_execution(id, name).ok_or_else(|| {
                ApiError::not_found(format!("thing `{name}` has no execution of job `{id}`"))
            })
        }
        ["jobs", _, "things", _] => Err(method_not_allowed("GET")),
        ["jobs", id, "cancel"] if post => {
            let mut st = app.state();
            if st.cancel_job(id) {
                Ok(st.job(id).unwrap_or(Value::Null))
            } else {
                Err(ApiError::not_found(format!("job `{id}` does not exist")))
            }
        }
        ["jobs", _, "cancel"] => Err(method_not_allowed("POST")),
        ["faults"] if get => Ok(json!({"faults": app.state().faults()})),
        ["faults"] if *method == Method::DELETE => {
            app.state().clear_faults();
            Ok(json!({"faults": []}))
        }
        ["faults"] if post => {
            let rule = serde_json::from_value::<FaultRule>(Value::Object(body()?.clone()))
                .map_err(|e| ApiError::invalid(format!("invalid fault rule: {e}")))?;
            rule.validate()
                .map_err(|e| ApiError::invalid(format!("invalid fault rule: {e}")))?;
            let mut st = app.state();
            st.add_fault(rule);
            Ok(json!({"faults": st.faults()}))
        }
        ["faults"] => Err(method_not_allowed("GET, POST, DELETE")),
        ["keepalive"] if get => Ok(keepalive_json(app)),
        ["keepalive"] if put || post => {
            let b = body()?;
            if let Some(ms) = opt_u64_or_null(b, "idle_timeout_ms")? {
                app.port
                    .set_idle_timeout(Some(Duration::from_millis(ms)).filter(|d| !d.is_zero()));
            }
            if let Some(n) = opt_u64_or_null(b, "requests_per_connection")? {
                let n = u32::try_from(n).map_err(|_| {
                    ApiError::invalid("`requests_per_connection` must be at most 4294967295")
                })?;
                app.port
                    .set_requests_per_connection(Some(n).filter(|n| *n > 0));
            }
            Ok(keepalive_json(app))
        }
        ["keepalive"] => Err(method_not_allowed("GET, PUT, POST")),
        ["clock"] if get => Ok(json!({"now": app.state().now()})),
        ["clock"] => Err(method_not_allowed("GET")),
        ["clock", "advance"] if post => {
            let secs = v::req_u64(body()?, "seconds")?;
            let mut st = app.state();
            st.advance_clock(secs);
            Ok(json!({"now": st.now()}))
        }
        ["clock", "advance"] => Err(method_not_allowed("POST")),
        ["stats"] if get => {
            let s = app.stats();
            Ok(json!({
                "total": s.total,
                "by_endpoint": s.by_endpoint,
                "admin_total": app.state().admin_requests(),
                "connections_accepted": s.connections_accepted,
                "tls_handshakes_full": s.tls_handshakes_full,
                "tls_handshakes_resumed": s.tls_handshakes_resumed,
                "offline": s.offline,
            }))
        }
        ["stats"] => Err(method_not_allowed("GET")),
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!(
                "no such admin endpoint: {method} {PREFIX}{}",
                segs.join("/")
            ),
        )),
    }
}

/// A non-negative integer field where `null` means 0 (off): `Some(0)` for null, `None` when
/// the field is absent.
fn opt_u64_or_null(o: &Obj, field: &str) -> Result<Option<u64>, ApiError> {
    match o.get(field) {
        Some(Value::Null) => Ok(Some(0)),
        _ => v::opt_u64(o, field),
    }
}

fn keepalive_json(app: &App) -> Value {
    let p = app.port.policy();
    json!({
        "idle_timeout_ms": p.idle_timeout.map(|d| d.as_millis() as u64),
        "requests_per_connection": p.requests_per_connection,
    })
}

/// Runs blocking work (port re-binding, hashing large files) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(500, "InternalError", format!("worker failed: {e}")))
}

fn port_error(e: std::io::Error) -> ApiError {
    ApiError::new(503, "PortUnavailable", e.to_string())
}

fn file_options(query: Option<&str>) -> Result<FileOptions, ApiError> {
    let mut opts = FileOptions::default();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        let flag = match val {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => {
                return Err(ApiError::invalid(format!(
                    "query parameter `{k}` must be true or false"
                )))
            }
        };
        match k {
            "ranges" => opts.ranges = flag,
            "auth" => opts.auth = flag,
            _ => {
                return Err(ApiError::invalid(format!(
                    "unknown query parameter `{k}` (ranges, auth)"
                )))
            }
        }
    }
    Ok(opts)
}

fn unknown_file(name: &str) -> ApiError {
    ApiError::not_found(format!("no file `{name}`"))
}

/// The admin endpoints that block or take a raw body: outages, reset, files.
async fn route_async(
    app: &Arc<App>,
    method: &Method,
    segs: &[&str],
    query: Option<&str>,
    raw: Result<Bytes, ApiError>,
    body: &Result<Obj, ApiError>,
) -> Result<Value, ApiError> {
    let body = || body.as_ref().map_err(Clone::clone);
    let get = *method == Method::GET;
    let post = *method == Method::POST;
    let put = *method == Method::PUT;
    let delete = *method == Method::DELETE;
    let endpoint = app.endpoint.get().cloned().unwrap_or_default();
    match segs {
        ["offline"] if get => Ok(json!({"offline": app.port.policy().offline})),
        ["offline"] if post => {
            let mode = v::req_str(body()?, "mode")?;
            let mode: OfflineMode = serde_json::from_value(json!(mode))
                .map_err(|_| ApiError::invalid("`mode` must be one of refuse, blackhole, reset"))?;
            let a = app.clone();
            blocking(move || a.port.set_offline(Some(mode)))
                .await?
                .map_err(port_error)?;
            Ok(json!({"offline": mode}))
        }
        ["offline"] => Err(method_not_allowed("GET, POST")),
        ["online"] if post => {
            let a = app.clone();
            blocking(move || a.port.set_offline(None))
                .await?
                .map_err(port_error)?;
            Ok(json!({"offline": null}))
        }
        ["online"] => Err(method_not_allowed("POST")),
        ["reset"] if post => {
            let a = app.clone();
            blocking(move || a.reset()).await?.map_err(port_error)?;
            Ok(json!({"reset": true}))
        }
        ["reset"] => Err(method_not_allowed("POST")),
        ["files"] if get => Ok(json!({"files": app.state().files().list(&endpoint)})),
        ["files"] => Err(method_not_allowed("GET")),
        ["files", name] if put || post => {
            v::check_identifier("name", name)?;
            let (data, opts) = if put {
                (raw?, file_options(query)?)
            } else {
                let b = body()?;
                let size = v::req_u64(b, "size")?;
                if size > MAX_FILE_BYTES {
                    return Err(ApiError::invalid(format!(
                        "`size` must be at most {MAX_FILE_BYTES}"
                    )));
                }
                let seed = v::opt_u64(b, "seed")?.unwrap_or(0);
                let opts = FileOptions {
                    ranges: v::opt_bool(b, "ranges")?.unwrap_or(true),
                    auth: v::opt_bool(b, "auth")?.unwrap_or(false),
                };
                let data = blocking(move || Bytes::from(files::generate(size as usize, seed)));
                (data.await?, opts)
            };
            let (data, sha) = blocking(move || {
                let sha = files::sha256_hex(&data);
                (data, sha)
            })
            .await?;
            let name = name.to_string();
            let info = app
                .state()
                .files_mut()
                .put(&name, data, sha, opts, &endpoint);
            Ok(serde_json::to_value(info).unwrap_or_default())
        }
        ["files", name] if get => app
            .state()
            .files()
            .info(name, &endpoint)
            .map(|i| serde_json::to_value(i).unwrap_or_default())
            .ok_or_else(|| unknown_file(name)),
        ["files", name] if delete => {
            if app.state().files_mut().remove(name) {
                Ok(json!({"name": name, "deleted": true}))
            } else {
                Err(unknown_file(name))
            }
        }
        ["files", _] => Err(method_not_allowed("GET, PUT, POST, DELETE")),
        ["files", name, "requests"] if get => {
            Ok(json!({"name": name, "requests": app.state().files().requests(name)}))
        }
        ["files", name, "requests"] if delete => {
            app.state().files_mut().clear_requests(name);
            Ok(json!({"name": name, "requests": []}))
        }
        ["files", _, "requests"] => Err(method_not_allowed("GET, DELETE")),
        _ => Err(ApiError::new(
            404,
            "NotFound",
            format!(
                "no such admin endpoint: {method} {PREFIX}{}",
                segs.join("/")
            ),
        )),
    }
}

fn create_command(app: &App, name: &str, body: &Obj) -> Result<Value, ApiError> {
    let action = v::req_str(body, "action")?;
    if action.is_empty() {
        return Err(ApiError::invalid("`action` must not be empty"));
    }
    let params = v::opt_obj(body, "params")?.cloned().unwrap_or_default();
    let ttl = v::opt_u64(body, "ttl")?.unwrap_or(crate::DEFAULT_COMMAND_TTL_SECS);
    let id = v::opt_str(body, "executionId")?;
    if let Some(id) = id {
        v::check_identifier("executionId", id)?;
    }
    let id = app
        .state()
        .create_command(name, action, Value::Object(params), ttl, id)?;
    Ok(json!({"executionId": id}))
}

fn create_job(app: &App, body: &Obj) -> Result<Value, ApiError> {
    let document = v::req_obj(body, "document")?.clone();
    let targets = v::req_obj(body, "targets")?;
    let names = match targets.get("thingNames") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => {
            return Err(ApiError::invalid(
                "`targets.thingNames` must be a non-empty array of thing names",
            ))
        }
    };
    let mut things = Vec::with_capacity(names.len());
    for n in names {
        let n = n
            .as_str()
            .ok_or_else(|| ApiError::invalid("`targets.thingNames` must contain strings"))?;
        v::check_identifier("targets.thingNames[]", n)?;
        if !things.contains(&n) {
            things.push(n);
        }
    }
    let description = v::opt_str(body, "description")?;
    let job_id = v::opt_str(body, "jobId")?;
    if let Some(id) = job_id {
        v::check_identifier("jobId", id)?;
    }
    let timeout = match v::opt_obj(body, "timeoutConfig")? {
        Some(t) => v::opt_u64(t, "inProgressTimeoutInMinutes")?,
        None => None,
    };
    if timeout.is_some_and(|m| !(1..=crate::state::jobs::MAX_STEP_TIMEOUT_MINUTES).contains(&m)) {
        return Err(ApiError::invalid(
            "`timeoutConfig.inProgressTimeoutInMinutes` must be within 1..=10080",
        ));
    }
    let id = app.state().create_job(
        Value::Object(document),
        &things,
        description,
        job_id,
        timeout,
    )?;
    Ok(json!({"jobId": id}))
}
