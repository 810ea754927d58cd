//! The eight ThingDatas calls. Each converts its arguments and delegates to the matching
//! [`Client`](crate::Client) method through `api_call`.
//!
//! Every call ends with the response buffer triple `char *out, size_t out_cap,
//! size_t *out_len` and follows the same rules, stated once here and in each function's
//! documentation.

use std::ffi::c_char;

use crate::error::{Error, Result};
use crate::ffi::boundary::{api_call, optional_str, required_str};
use crate::ffi::types::{fleets_client_t, fleets_execution_status, fleets_result, fleets_severity};
use crate::{Event, ExecutionStatus, ReportOptions, Severity};

pub(crate) fn severity(raw: fleets_severity) -> Result<Option<Severity>> {
    match raw {
        crate::ffi::FLEETS_SEVERITY_UNSET => Ok(None),
        raw => Severity::from_raw(raw)
            .map(Some)
            .ok_or_else(|| Error::invalid_argument(format!("unknown fleets_severity {raw}"))),
    }
}

pub(crate) fn status(raw: fleets_execution_status) -> Result<ExecutionStatus> {
    ExecutionStatus::from_raw(raw)
        .ok_or_else(|| Error::invalid_argument(format!("unknown fleets_execution_status {raw}")))
}

/// Reports the device's state: `POST /api/v1/thing-datas/shadow/reported`.
///
/// - `client`, `thing_name` and `reported_json` are required; `thing_name` matches
///   `[A-Za-z0-9._:-]{1,128}`; `reported_json` is a JSON object nested at most 100 levels
///   deep (see `FLEETS_ERR_INVALID_JSON`), deep-merged by the server; a `null` member deletes
///   that key.
/// - `client_token` (NULL = omitted): at most 64 printable ASCII bytes, echoed back.
/// - `version`: expected current shadow version (optimistic locking); 0 auto-increments.
///   A stale version is `FLEETS_ERR_CONFLICT`.
///
/// Response buffer (every call): the body of any response (2xx or not) is copied into `out`,
/// NUL-terminated, and `*out_len` receives its length without the NUL. `out` may be NULL when
/// `out_cap` is 0 (body not wanted); `out_len` may be NULL. If a 2xx body does not fit, the
/// call returns `FLEETS_ERR_BUFFER_TOO_SMALL`, `*out_len` is the size needed, and
/// `fleets_last_response()` returns the body without a second request. For a non-2xx
/// response the HTTP error code is returned even if the body did not fit.
///
/// Arguments are checked before anything is sent: a rejected argument sends nothing.
/// Strings are borrowed for the duration of the call only. Thread-safe: many threads may
/// call with the same client at once.
///
/// # Safety
/// `client` is NULL or a live client; non-NULL strings are NUL-terminated; a non-NULL `out`
/// is valid for writes of `out_cap` bytes and a non-NULL `out_len` for one `size_t`.
#[no_mangle]
pub unsafe extern "C" fn fleets_shadow_report(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    reported_json: *const c_char,
    client_token: *const c_char,
    version: u64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            let options = ReportOptions {
                client_token: optional_str(client_token, "client_token")?,
                version,
            };
            c.shadow_report(
                required_str(thing_name, "thing_name")?,
                required_str(reported_json, "reported_json")?,
                options,
            )
        })
    }
}

/// Reads the current shadow: `GET /api/v1/thing-datas/{thingName}/shadow`. The body is
/// `{"reported":{..},"desired":{..},"delta":{..},"version":N,"updatedAt":"RFC 3339"}`; a
/// non-empty `delta` holds desired values the device has not reported yet.
///
/// `client` and `thing_name` are required. Response buffer, argument checks and thread-safety
/// as for `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_shadow_get(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            c.shadow_get(required_str(thing_name, "thing_name")?)
        })
    }
}

/// Publishes an event: `POST /api/v1/thing-datas/events`.
///
/// - `client`, `thing_name` and `event_type` (1 to 128 bytes, no control characters) are
///   required.
/// - `severity`: a `FLEETS_SEVERITY_*` value; `FLEETS_SEVERITY_UNSET` leaves it out; any
///   other value is `FLEETS_ERR_INVALID_ARGUMENT`.
/// - `timestamp_ms`: Unix milliseconds; 0 = now; negative is invalid.
/// - `data_json` (NULL = omitted): a JSON object. `app_id` (NULL = omitted): a label.
///
/// Response buffer, argument checks and thread-safety as for `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_event_publish(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    event_type: *const c_char,
    severity: fleets_severity,
    timestamp_ms: i64,
    data_json: *const c_char,
    app_id: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            let event = Event {
                event_type: required_str(event_type, "event_type")?,
                severity: self::severity(severity)?,
                timestamp_ms,
                data_json: optional_str(data_json, "data_json")?,
                app_id: optional_str(app_id, "app_id")?,
            };
            c.event_publish(required_str(thing_name, "thing_name")?, event)
        })
    }
}

/// Answers a command execution: `POST /api/v1/thing-datas/command/response`.
///
/// - `client`, `thing_name` and `execution_id` (an identifier, e.g. a UUID) are required.
/// - `status`: a `FLEETS_EXECUTION_*` value; anything else is `FLEETS_ERR_INVALID_ARGUMENT`.
/// - `result_json` (NULL = omitted): a JSON object.
/// - `timestamp`: Unix seconds; 0 = now; negative is invalid.
///
/// An unknown execution is `FLEETS_ERR_NOT_FOUND`; one already answered is
/// `FLEETS_ERR_CONFLICT`. Response buffer, argument checks and thread-safety as for
/// `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_command_respond(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    execution_id: *const c_char,
    status: fleets_execution_status,
    result_json: *const c_char,
    timestamp: i64,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            c.command_respond(
                required_str(thing_name, "thing_name")?,
                required_str(execution_id, "execution_id")?,
                self::status(status)?,
                optional_str(result_json, "result_json")?,
                timestamp,
            )
        })
    }
}

/// Lists pending jobs: `POST /api/v1/thing-datas/jobs/get`. The body is
/// `{"inProgressJobs":[..],"queuedJobs":[..]}` of job summaries.
///
/// `client` and `thing_name` are required; `client_token` (NULL = omitted) as for
/// `fleets_shadow_report`. Response buffer, argument checks and thread-safety as for
/// `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_jobs_get_pending(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    client_token: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            c.jobs_get_pending(
                required_str(thing_name, "thing_name")?,
                optional_str(client_token, "client_token")?,
            )
        })
    }
}

/// Starts the next pending job (in progress first, then the oldest queued):
/// `POST /api/v1/thing-datas/jobs/start-next`. The body is `{"execution":{..,"jobDocument":
/// {..}}}`, or `{}` when nothing is pending.
///
/// `client` and `thing_name` are required; `status_details_json` (NULL = omitted) is a JSON
/// object; `step_timeout_minutes` 0 leaves it out; `client_token` (NULL = omitted) as for
/// `fleets_shadow_report`. Response buffer, argument checks and thread-safety as for
/// `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_jobs_start_next(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    status_details_json: *const c_char,
    step_timeout_minutes: u32,
    client_token: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            c.jobs_start_next(
                required_str(thing_name, "thing_name")?,
                optional_str(status_details_json, "status_details_json")?,
                step_timeout_minutes,
                optional_str(client_token, "client_token")?,
            )
        })
    }
}

/// Describes one job execution of this thing: `POST /api/v1/thing-datas/jobs/{jobId}/get`.
/// The body is `{"execution":{..}}`; `FLEETS_ERR_NOT_FOUND` when the thing has no execution
/// of that job.
///
/// `client`, `thing_name` and `job_id` (an identifier) are required; `client_token`
/// (NULL = omitted) as for `fleets_shadow_report`. Response buffer, argument checks and
/// thread-safety as for `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_jobs_describe(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    job_id: *const c_char,
    client_token: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            c.jobs_describe(
                required_str(thing_name, "thing_name")?,
                required_str(job_id, "job_id")?,
                optional_str(client_token, "client_token")?,
            )
        })
    }
}

/// Reports a job execution's status: `POST /api/v1/thing-datas/jobs/{jobId}/update`. The
/// body is `{"executionState":{"status","statusDetails","versionNumber"},"jobDocument":..}`.
///
/// - `client`, `thing_name` and `job_id` are required.
/// - `status`: a `FLEETS_EXECUTION_*` value; anything else is `FLEETS_ERR_INVALID_ARGUMENT`.
/// - `status_details_json` (NULL = omitted): a JSON object.
/// - `expected_version`: the execution's current `versionNumber`; 0 leaves it out. A
///   mismatch, or leaving a terminal state, is `FLEETS_ERR_CONFLICT`.
/// - `client_token` (NULL = omitted) as for `fleets_shadow_report`.
///
/// Response buffer, argument checks and thread-safety as for `fleets_shadow_report`.
///
/// # Safety
/// As for `fleets_shadow_report`.
#[no_mangle]
pub unsafe extern "C" fn fleets_jobs_update(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    job_id: *const c_char,
    status: fleets_execution_status,
    status_details_json: *const c_char,
    expected_version: u64,
    client_token: *const c_char,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        api_call(client, out, out_cap, out_len, |c| {
            c.jobs_update(
                required_str(thing_name, "thing_name")?,
                required_str(job_id, "job_id")?,
                self::status(status)?,
                optional_str(status_details_json, "status_details_json")?,
                expected_version,
                optional_str(client_token, "client_token")?,
            )
        })
    }
}
