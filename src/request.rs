//! Bodies of the four POST requests that the outbox can also store (shadow report, event,
//! command response, job update): checked and serialised by the same code for a direct call
//! and for an enqueue, so that the outbox refuses exactly what a direct call refuses.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::client::Event;
use crate::error::{Error, ErrorCode, Result};
use crate::validate::{self, JsonObject};
use crate::wire::{self, ExecutionStatus};

/// Room for a request body's keys, punctuation, client token and numbers beyond the
/// caller's strings.
const BODY_OVERHEAD_BYTES: usize = 160;

/// Serialises a body into a buffer sized from the caller's strings (`input_len`), so that a
/// typical body is written without reallocating.
pub(crate) fn serialise<B: serde::Serialize>(body: &B, input_len: usize) -> Result<Vec<u8>> {
    let mut json = Vec::with_capacity(input_len.saturating_add(BODY_OVERHEAD_BYTES));
    serde_json::to_writer(&mut json, body)
        .map_err(|e| Error::new(ErrorCode::Internal, format!("encoding request: {e}")))?;
    Ok(json)
}

/// A checked shadow report (`POST .../shadow/reported`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Report<'a> {
    pub thing_name: &'a str,
    pub reported: JsonObject<'a>,
    pub client_token: Option<&'a str>,
    pub version: u64,
}

impl<'a> Report<'a> {
    /// Checks the arguments of a report; `client_token` is the caller's (or a generated one).
    pub(crate) fn checked(
        thing_name: &'a str,
        reported_json: &'a str,
        client_token: Option<&'a str>,
        version: u64,
    ) -> Result<Report<'a>> {
        let client_token = validate::client_token(client_token)?;
        Ok(Report {
            thing_name: validate::identifier("thing_name", thing_name)?,
            reported: JsonObject::parse("reported_json", reported_json)?,
            client_token,
            version,
        })
    }

    pub(crate) fn body(&self) -> Result<Vec<u8>> {
        let mut json = Vec::new();
        self.write_body(&mut json)?;
        Ok(json)
    }

    /// Serialises the body into `json` (cleared first), in one pass: the reported object is
    /// copied as the caller wrote it, never parsed into a tree.
    pub(crate) fn write_body(&self, json: &mut Vec<u8>) -> Result<()> {
        let body = wire::ShadowReport {
            thing_name: self.thing_name,
            state: wire::ReportedState {
                reported: self.reported,
            },
            client_token: self.client_token,
            version: (self.version != 0).then_some(self.version),
        };
        json.clear();
        json.reserve(
            (self.thing_name.len() + self.reported.as_str().len())
                .saturating_add(BODY_OVERHEAD_BYTES),
        );
        serde_json::to_writer(&mut *json, &body)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("encoding request: {e}")))
    }
}

/// The body of `POST .../events`; a timestamp of 0 becomes now.
pub(crate) fn event_body(thing_name: &str, event: &Event<'_>) -> Result<Vec<u8>> {
    let body = wire::EventBody {
        thing_name: validate::identifier("thing_name", thing_name)?,
        event_type: validate::label("event_type", event.event_type)?,
        severity: event.severity,
        timestamp: timestamp_or_now(event.timestamp_ms, "timestamp_ms", unix_millis)?,
        data: JsonObject::parse_opt("data_json", event.data_json)?,
        app_id: event
            .app_id
            .map(|a| validate::label("app_id", a))
            .transpose()?,
    };
    let hint = thing_name.len()
        + event.event_type.len()
        + event.data_json.map_or(0, str::len)
        + event.app_id.map_or(0, str::len);
    serialise(&body, hint)
}

/// The body of `POST .../command/response`; a timestamp (Unix seconds) of 0 becomes now.
pub(crate) fn command_response_body(
    thing_name: &str,
    execution_id: &str,
    status: ExecutionStatus,
    result_json: Option<&str>,
    timestamp: i64,
) -> Result<Vec<u8>> {
    let body = wire::CommandResponse {
        thing_name: validate::identifier("thing_name", thing_name)?,
        execution_id: validate::identifier("execution_id", execution_id)?,
        status,
        result: JsonObject::parse_opt("result_json", result_json)?,
        timestamp: timestamp_or_now(timestamp, "timestamp", unix_seconds)?,
    };
    let hint = thing_name.len() + execution_id.len() + result_json.map_or(0, str::len);
    serialise(&body, hint)
}

/// The checked `job_id` and the body of `POST .../jobs/{jobId}/update`.
pub(crate) fn job_update_body<'a>(
    thing_name: &str,
    job_id: &'a str,
    status: ExecutionStatus,
    status_details_json: Option<&str>,
    expected_version: u64,
    client_token: Option<&str>,
) -> Result<(&'a str, Vec<u8>)> {
    let client_token = validate::client_token(client_token)?;
    let body = wire::JobUpdate {
        thing_name: validate::identifier("thing_name", thing_name)?,
        status,
        status_details: JsonObject::parse_opt("status_details_json", status_details_json)?,
        expected_version: (expected_version != 0).then_some(expected_version),
        client_token,
    };
    let job_id = validate::identifier("job_id", job_id)?;
    let hint = thing_name.len() + status_details_json.map_or(0, str::len);
    Ok((job_id, serialise(&body, hint)?))
}

fn timestamp_or_now(value: i64, what: &str, now: fn() -> i64) -> Result<i64> {
    match value {
        0 => Ok(now()),
        v if v < 0 => Err(Error::invalid_argument(format!(
            "{what} must not be negative"
        ))),
        v => Ok(v),
    }
}

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// Now, in Unix milliseconds (wall clock).
pub(crate) fn unix_millis() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

fn unix_seconds() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}
