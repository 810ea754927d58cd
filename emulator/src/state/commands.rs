//! Command executions created by an operator (admin API) and answered by the device.
//!
//! ```text
//! SENT ──> IN_PROGRESS ──> SUCCEEDED | FAILED | REJECTED   (device, command/response)
//!   ╰──────────────────╰─> TIMED_OUT                        (ttl expired, virtual clock)
//! ```
//! A command is pending while SENT or IN_PROGRESS; responses to a command in a terminal state
//! are refused with 409 `InvalidStateTransition`.

use crate::error::ApiError;
use serde_json::{json, Value};

/// Status of a command execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmdStatus {
    /// Created, waiting for the device's response.
    Sent,
    /// The device acknowledged and is working on it.
    InProgress,
    /// Terminal.
    Succeeded,
    /// Terminal.
    Failed,
    /// Terminal.
    Rejected,
    /// Terminal: the ttl expired before a final response.
    TimedOut,
}

impl CmdStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            CmdStatus::Sent => "SENT",
            CmdStatus::InProgress => "IN_PROGRESS",
            CmdStatus::Succeeded => "SUCCEEDED",
            CmdStatus::Failed => "FAILED",
            CmdStatus::Rejected => "REJECTED",
            CmdStatus::TimedOut => "TIMED_OUT",
        }
    }

    /// A status the device may report: SUCCEEDED, FAILED, REJECTED or IN_PROGRESS.
    pub fn parse_device(s: &str) -> Option<CmdStatus> {
        match s {
            "IN_PROGRESS" => Some(CmdStatus::InProgress),
            "SUCCEEDED" => Some(CmdStatus::Succeeded),
            "FAILED" => Some(CmdStatus::Failed),
            "REJECTED" => Some(CmdStatus::Rejected),
            _ => None,
        }
    }

    /// True once no response is accepted any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, CmdStatus::Sent | CmdStatus::InProgress)
    }
}

/// One command execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Execution id (UUID unless the operator chose one).
    pub execution_id: String,
    /// Thing name.
    pub thing_name: String,
    /// Action name chosen by the operator.
    pub action: String,
    /// Parameters chosen by the operator.
    pub params: Value,
    /// Current status.
    pub status: CmdStatus,
    /// Last result sent by the device (`null` until then).
    pub result: Value,
    /// Device timestamp (Unix seconds) of the last response.
    pub timestamp: Option<u64>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds of the last change.
    pub updated_at: u64,
    /// Time to live in seconds; 0 = never expires.
    pub ttl: u64,
    /// Every response the device sent, in order.
    pub responses: Vec<Value>,
}

impl Command {
    /// A new SENT command.
    pub fn new(
        execution_id: &str,
        thing_name: &str,
        action: &str,
        params: Value,
        ttl: u64,
        now: u64,
    ) -> Self {
        Command {
            execution_id: execution_id.to_owned(),
            thing_name: thing_name.to_owned(),
            action: action.to_owned(),
            params,
            status: CmdStatus::Sent,
            result: Value::Null,
            timestamp: None,
            created_at: now,
            updated_at: now,
            ttl,
            responses: Vec::new(),
        }
    }

    /// Unix seconds at which a pending command times out.
    pub fn expires_at(&self) -> Option<u64> {
        (self.ttl > 0).then(|| self.created_at.saturating_add(self.ttl))
    }

    /// Applies an expired ttl. Returns true when the status changed.
    pub fn expire(&mut self, now: u64) -> bool {
        match self.expires_at() {
            Some(t) if !self.status.is_terminal() && now >= t => {
                self.status = CmdStatus::TimedOut;
                self.updated_at = t;
                true
            }
            _ => false,
        }
    }

    /// Records a device response.
    pub fn respond(
        &mut self,
        now: u64,
        status: CmdStatus,
        result: Option<&Value>,
        timestamp: Option<u64>,
    ) -> Result<(), ApiError> {
        if self.status.is_terminal() {
            return Err(ApiError::conflict(
                "InvalidStateTransition",
                format!(
                    "command execution {} is {} and accepts no more responses",
                    self.execution_id,
                    self.status.as_str()
                ),
            )
            .with("status", json!(self.status.as_str())));
        }
        if status == CmdStatus::Sent || status == CmdStatus::TimedOut {
            return Err(ApiError::invalid(format!(
                "a device cannot set status {}",
                status.as_str()
            )));
        }
        self.status = status;
        if let Some(r) = result {
            self.result = r.clone();
        }
        self.timestamp = Some(timestamp.unwrap_or(now));
        self.updated_at = now;
        self.responses.push(json!({
            "status": status.as_str(),
            "result": result.cloned().unwrap_or(Value::Null),
            "timestamp": self.timestamp,
            "receivedAt": now,
        }));
        Ok(())
    }

    /// JSON for the admin API.
    pub fn to_json(&self) -> Value {
        json!({
            "executionId": self.execution_id,
            "thingName": self.thing_name,
            "action": self.action,
            "params": self.params,
            "status": self.status.as_str(),
            "result": self.result,
            "timestamp": self.timestamp,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "ttl": self.ttl,
            "expiresAt": self.expires_at(),
            "responses": self.responses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respond_then_terminal() {
        let mut c = Command::new("e1", "t", "reboot", json!({}), 60, 100);
        c.respond(101, CmdStatus::InProgress, None, Some(101))
            .unwrap();
        assert_eq!(c.status, CmdStatus::InProgress);
        c.respond(102, CmdStatus::Succeeded, Some(&json!({"ok": true})), None)
            .unwrap();
        assert_eq!(
            (c.status, c.timestamp, c.result.clone()),
            (CmdStatus::Succeeded, Some(102), json!({"ok": true}))
        );
        let err = c.respond(103, CmdStatus::Failed, None, None).unwrap_err();
        assert_eq!((err.status, err.code), (409, "InvalidStateTransition"));
        assert_eq!(c.to_json()["responses"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn ttl_expiry() {
        let mut c = Command::new("e1", "t", "a", Value::Null, 10, 100);
        assert_eq!(c.expires_at(), Some(110));
        assert!(!c.expire(109));
        assert!(c.expire(110));
        assert_eq!(c.status, CmdStatus::TimedOut);
        assert_eq!(
            c.respond(111, CmdStatus::Succeeded, None, None)
                .unwrap_err()
                .status,
            409
        );
        let mut forever = Command::new("e2", "t", "a", Value::Null, 0, 0);
        assert!(!forever.expire(u64::MAX));
        assert_eq!(forever.to_json()["expiresAt"], Value::Null);
    }

    #[test]
    fn parse_device_status() {
        assert_eq!(
            CmdStatus::parse_device("SUCCEEDED"),
            Some(CmdStatus::Succeeded)
        );
        assert_eq!(CmdStatus::parse_device("SENT"), None);
        assert_eq!(CmdStatus::parse_device("TIMED_OUT"), None);
        assert_eq!(CmdStatus::parse_device("succeeded"), None);
    }
}
