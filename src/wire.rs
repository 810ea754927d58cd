//! Request bodies of the ThingDatas API, exactly the fields of the seed document; omitted
//! optional fields are left out of the JSON.

use serde::Serialize;

use crate::validate::JsonObject;

/// Event severity, sent as `"info"`, `"warn"` or `"error"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// `"info"` (C: `FLEETS_SEVERITY_INFO` = 1).
    Info = 1,
    /// `"warn"` (C: `FLEETS_SEVERITY_WARN` = 2).
    Warn = 2,
    /// `"error"` (C: `FLEETS_SEVERITY_ERROR` = 3).
    Error = 3,
}

impl Severity {
    /// The severity for a C value; 0 (unset) and unknown values give `None`.
    pub fn from_raw(raw: u32) -> Option<Severity> {
        match raw {
            1 => Some(Severity::Info),
            2 => Some(Severity::Warn),
            3 => Some(Severity::Error),
            _ => None,
        }
    }
}

/// Status of a command execution or job execution reported by the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// `"IN_PROGRESS"` (C: 1).
    InProgress = 1,
    /// `"SUCCEEDED"` (C: 2).
    Succeeded = 2,
    /// `"FAILED"` (C: 3).
    Failed = 3,
    /// `"REJECTED"` (C: 4).
    Rejected = 4,
}

impl ExecutionStatus {
    /// The status for a C value; unknown values give `None`.
    pub fn from_raw(raw: u32) -> Option<ExecutionStatus> {
        match raw {
            1 => Some(ExecutionStatus::InProgress),
            2 => Some(ExecutionStatus::Succeeded),
            3 => Some(ExecutionStatus::Failed),
            4 => Some(ExecutionStatus::Rejected),
            _ => None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShadowReport<'a> {
    pub thing_name: &'a str,
    pub state: ReportedState<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

#[derive(Serialize)]
pub(crate) struct ReportedState<'a> {
    pub reported: JsonObject<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventBody<'a> {
    pub thing_name: &'a str,
    pub event_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    pub timestamp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<JsonObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommandResponse<'a> {
    pub thing_name: &'a str,
    pub execution_id: &'a str,
    pub status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<JsonObject<'a>>,
    pub timestamp: i64,
}

/// Body of `jobs/get` and `jobs/{jobId}/get`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobsQuery<'a> {
    pub thing_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StartNextJob<'a> {
    pub thing_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_details: Option<JsonObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_timeout_in_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobUpdate<'a> {
    pub thing_name: &'a str,
    pub status: ExecutionStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_details: Option<JsonObject<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_token: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_body_matches_seed_fields() {
        let reported = JsonObject::parse("r", r#"{"temperature": 21.5}"#).unwrap();
        let body = ShadowReport {
            thing_name: "thermostat-001",
            state: ReportedState { reported },
            client_token: Some("tok-001"),
            version: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"thingName":"thermostat-001","state":{"reported":{"temperature": 21.5}},"clientToken":"tok-001"}"#
        );
    }

    #[test]
    fn enums_serialise_as_the_wire_strings() {
        assert_eq!(serde_json::to_string(&Severity::Warn).unwrap(), "\"warn\"");
        assert_eq!(
            serde_json::to_string(&ExecutionStatus::InProgress).unwrap(),
            "\"IN_PROGRESS\""
        );
        assert_eq!(Severity::from_raw(0), None);
        assert_eq!(Severity::from_raw(4), None);
        assert_eq!(ExecutionStatus::from_raw(0), None);
        assert_eq!(
            ExecutionStatus::from_raw(4),
            Some(ExecutionStatus::Rejected)
        );
    }
}
