//! The JSON error type shared by the device API and the admin API.
//!
//! Every error leaves the server as `{"code":"<Name>","message":"<text>","clientToken":...}`
//! plus optional extra fields (for example `executionState` on a job version mismatch).

use serde_json::{Map, Value};

/// An API error: HTTP status, a stable machine-readable code and a human readable message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// Stable error name, e.g. `VersionConflict`.
    pub code: &'static str,
    /// Human readable explanation.
    pub message: String,
    /// Extra fields merged into the JSON body.
    pub extra: Map<String, Value>,
}

impl ApiError {
    /// A new error with no extra fields.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// 400 `InvalidRequest`: the body is JSON but violates the endpoint's rules.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequest", message)
    }

    /// 400 `InvalidJson`: the body is not parseable JSON.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidJson", message)
    }

    /// 404 `ResourceNotFound`: a thing, job, execution or command does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "ResourceNotFound", message)
    }

    /// 409 with the given code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// Adds an extra field to the JSON body.
    pub fn with(mut self, key: &str, value: Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }

    /// The JSON body of this error, echoing `client_token` when the request carried one.
    pub fn body(&self, client_token: Option<&str>) -> Value {
        let mut m = Map::new();
        m.insert("code".into(), Value::from(self.code));
        m.insert("message".into(), Value::from(self.message.clone()));
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone());
        }
        if let Some(t) = client_token {
            m.insert("clientToken".into(), Value::from(t));
        }
        Value::Object(m)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_has_code_message_extra_and_token() {
        let e =
            ApiError::conflict("VersionMismatch", "stale").with("executionState", json!({"a": 1}));
        assert_eq!(
            e.body(Some("t1")),
            json!({"code": "VersionMismatch", "message": "stale", "executionState": {"a": 1}, "clientToken": "t1"})
        );
        assert_eq!(
            e.body(None),
            json!({"code": "VersionMismatch", "message": "stale", "executionState": {"a": 1}})
        );
    }
}
