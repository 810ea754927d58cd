//! Job execution state machine, after AWS IoT Jobs.
//!
//! ```text
//! QUEUED ──> IN_PROGRESS ──> SUCCEEDED | FAILED | REJECTED   (device)
//!   │             │ ╰──────> TIMED_OUT                        (step timeout expired)
//!   │             ╰────────> CANCELED                         (admin)
//!   ╰──> SUCCEEDED | FAILED | REJECTED (device) | CANCELED (admin)
//! ```
//! `IN_PROGRESS -> IN_PROGRESS` is allowed (status details update). Terminal states cannot be
//! left. Every change increments `versionNumber` (a new execution has version 1).

use crate::error::ApiError;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Largest step timeout accepted, in minutes (one week, as in AWS IoT Jobs).
pub const MAX_STEP_TIMEOUT_MINUTES: u64 = 10_080;

/// Status of one job execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStatus {
    /// Waiting for the device.
    Queued,
    /// Started by the device.
    InProgress,
    /// Finished successfully (terminal).
    Succeeded,
    /// Finished with a failure (terminal).
    Failed,
    /// Refused by the device (terminal).
    Rejected,
    /// The step timeout expired while in progress (terminal).
    TimedOut,
    /// Canceled by an operator (terminal).
    Canceled,
}

impl ExecStatus {
    /// Wire name, e.g. `IN_PROGRESS`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecStatus::Queued => "QUEUED",
            ExecStatus::InProgress => "IN_PROGRESS",
            ExecStatus::Succeeded => "SUCCEEDED",
            ExecStatus::Failed => "FAILED",
            ExecStatus::Rejected => "REJECTED",
            ExecStatus::TimedOut => "TIMED_OUT",
            ExecStatus::Canceled => "CANCELED",
        }
    }

    /// Parses a status a device may set: IN_PROGRESS, SUCCEEDED, FAILED or REJECTED.
    pub fn parse_device(s: &str) -> Option<ExecStatus> {
        match s {
            "IN_PROGRESS" => Some(ExecStatus::InProgress),
            "SUCCEEDED" => Some(ExecStatus::Succeeded),
            "FAILED" => Some(ExecStatus::Failed),
            "REJECTED" => Some(ExecStatus::Rejected),
            _ => None,
        }
    }

    /// True for states that can never be left.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ExecStatus::Queued | ExecStatus::InProgress)
    }
}

/// One (job, thing) execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// Job id.
    pub job_id: String,
    /// Thing name.
    pub thing_name: String,
    /// Current status.
    pub status: ExecStatus,
    /// Device-provided status details (replaced on each update that carries them).
    pub status_details: Map<String, Value>,
    /// Unix seconds when queued.
    pub queued_at: u64,
    /// Unix seconds when first set IN_PROGRESS.
    pub started_at: Option<u64>,
    /// Unix seconds of the last change.
    pub last_updated_at: u64,
    /// Incremented on every change; starts at 1.
    pub version: u64,
    /// Always 1 here (no re-runs).
    pub execution_number: u64,
    /// Unix seconds at which an IN_PROGRESS execution times out.
    pub timeout_at: Option<u64>,
    /// Creation sequence number, to order executions queued in the same second.
    pub seq: u64,
}

impl Execution {
    /// A fresh QUEUED execution.
    pub fn new(job_id: &str, thing_name: &str, now: u64, seq: u64) -> Self {
        Execution {
            job_id: job_id.to_owned(),
            thing_name: thing_name.to_owned(),
            status: ExecStatus::Queued,
            status_details: Map::new(),
            queued_at: now,
            started_at: None,
            last_updated_at: now,
            version: 1,
            execution_number: 1,
            timeout_at: None,
            seq,
        }
    }

    /// Applies an expired step timeout. Returns true when the status changed.
    pub fn expire(&mut self, now: u64) -> bool {
        match (self.status, self.timeout_at) {
            (ExecStatus::InProgress, Some(t)) if now >= t => {
                self.status = ExecStatus::TimedOut;
                self.timeout_at = None;
                self.last_updated_at = t;
                self.version += 1;
                true
            }
            _ => false,
        }
    }

    /// `{status, statusDetails, versionNumber}`.
    pub fn state_json(&self) -> Value {
        json!({
            "status": self.status.as_str(),
            "statusDetails": self.status_details,
            "versionNumber": self.version,
        })
    }

    /// Job execution summary as listed by `jobs/get`.
    pub fn summary_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("jobId".into(), json!(self.job_id));
        m.insert("queuedAt".into(), json!(self.queued_at));
        if let Some(s) = self.started_at {
            m.insert("startedAt".into(), json!(s));
        }
        m.insert("lastUpdatedAt".into(), json!(self.last_updated_at));
        m.insert("versionNumber".into(), json!(self.version));
        m.insert("executionNumber".into(), json!(self.execution_number));
        Value::Object(m)
    }

    /// The full execution, with the job document when given.
    pub fn full_json(&self, document: Option<&Value>, now: u64) -> Value {
        let mut m = Map::new();
        m.insert("jobId".into(), json!(self.job_id));
        m.insert("thingName".into(), json!(self.thing_name));
        m.insert("status".into(), json!(self.status.as_str()));
        m.insert(
            "statusDetails".into(),
            Value::Object(self.status_details.clone()),
        );
        m.insert("queuedAt".into(), json!(self.queued_at));
        if let Some(s) = self.started_at {
            m.insert("startedAt".into(), json!(s));
        }
        m.insert("lastUpdatedAt".into(), json!(self.last_updated_at));
        m.insert("versionNumber".into(), json!(self.version));
        m.insert("executionNumber".into(), json!(self.execution_number));
        if let (ExecStatus::InProgress, Some(t)) = (self.status, self.timeout_at) {
            m.insert(
                "approximateSecondsBeforeTimedOut".into(),
                json!(t.saturating_sub(now)),
            );
        }
        if let Some(d) = document {
            m.insert("jobDocument".into(), d.clone());
        }
        Value::Object(m)
    }

    fn set_timeout(&mut self, now: u64, minutes: Option<u64>) {
        if let Some(m) = minutes {
            self.timeout_at = Some(now.saturating_add(m.saturating_mul(60)));
        }
    }

    /// QUEUED -> IN_PROGRESS, as done by `start-next`.
    pub fn start(
        &mut self,
        now: u64,
        details: Option<&Map<String, Value>>,
        step_timeout_min: Option<u64>,
    ) {
        debug_assert_eq!(self.status, ExecStatus::Queued);
        self.status = ExecStatus::InProgress;
        self.started_at = Some(now);
        self.last_updated_at = now;
        if let Some(d) = details {
            self.status_details = d.clone();
        }
        self.set_timeout(now, step_timeout_min);
        self.version += 1;
    }

    /// A device update. `expected_version` is compared after the terminal-state check.
    pub fn update(
        &mut self,
        now: u64,
        status: ExecStatus,
        details: Option<&Map<String, Value>>,
        expected_version: Option<u64>,
        step_timeout_min: Option<u64>,
    ) -> Result<(), ApiError> {
        if !matches!(
            status,
            ExecStatus::InProgress
                | ExecStatus::Succeeded
                | ExecStatus::Failed
                | ExecStatus::Rejected
        ) {
            return Err(ApiError::invalid(format!(
                "a device cannot set status {}",
                status.as_str()
            )));
        }
        if self.status.is_terminal() {
            return Err(ApiError::conflict(
                "InvalidStateTransition",
                format!(
                    "job execution {} for {} is {} (terminal) and cannot become {}",
                    self.job_id,
                    self.thing_name,
                    self.status.as_str(),
                    status.as_str()
                ),
            )
            .with("executionState", self.state_json()));
        }
        if let Some(ev) = expected_version {
            if ev != self.version {
                return Err(ApiError::conflict(
                    "VersionMismatch",
                    format!(
                        "expectedVersion {ev} does not match the current versionNumber {}",
                        self.version
                    ),
                )
                .with("executionState", self.state_json()));
            }
        }
        if status == ExecStatus::InProgress && self.started_at.is_none() {
            self.started_at = Some(now);
        }
        if status == ExecStatus::InProgress {
            self.set_timeout(now, step_timeout_min);
        } else {
            self.timeout_at = None;
        }
        self.status = status;
        if let Some(d) = details {
            self.status_details = d.clone();
        }
        self.last_updated_at = now;
        self.version += 1;
        Ok(())
    }

    /// Admin cancel: any non-terminal execution becomes CANCELED. Returns true when changed.
    pub fn cancel(&mut self, now: u64) -> bool {
        if self.status.is_terminal() {
            return false;
        }
        self.status = ExecStatus::Canceled;
        self.timeout_at = None;
        self.last_updated_at = now;
        self.version += 1;
        true
    }
}

/// Overall job status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    /// Some executions are not terminal yet.
    InProgress,
    /// Every execution reached a terminal state.
    Completed,
    /// Canceled by an operator.
    Canceled,
}

impl JobStatus {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "IN_PROGRESS",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Canceled => "CANCELED",
        }
    }
}

/// A job: a document sent to a set of things, one execution each.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Job id.
    pub id: String,
    /// The job document.
    pub document: Value,
    /// Optional description.
    pub description: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Overall status.
    pub status: JobStatus,
    /// Default step timeout applied when an execution starts without one.
    pub in_progress_timeout_min: Option<u64>,
    /// Target thing names, in the order given.
    pub targets: Vec<String>,
    /// Executions by thing name.
    pub executions: BTreeMap<String, Execution>,
    /// Creation sequence number.
    pub seq: u64,
}

impl Job {
    /// Recomputes `status` after a change.
    pub fn refresh_status(&mut self) {
        if self.status == JobStatus::InProgress
            && self.executions.values().all(|e| e.status.is_terminal())
        {
            self.status = JobStatus::Completed;
        }
    }

    /// Admin cancel of the whole job. Returns the number of executions canceled.
    pub fn cancel(&mut self, now: u64) -> usize {
        let n = self
            .executions
            .values_mut()
            .filter_map(|e| e.cancel(now).then_some(()))
            .count();
        if self.status == JobStatus::InProgress {
            self.status = JobStatus::Canceled;
        }
        n
    }

    /// Job description for the admin API.
    pub fn to_json(&self) -> Value {
        let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
        for e in self.executions.values() {
            *counts.entry(e.status.as_str()).or_default() += 1;
        }
        json!({
            "jobId": self.id,
            "status": self.status.as_str(),
            "description": self.description,
            "document": self.document,
            "createdAt": self.created_at,
            "targets": {"thingNames": self.targets},
            "executionCounts": counts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn details(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn happy_path_versions_and_times() {
        let mut e = Execution::new("j1", "t1", 100, 0);
        assert_eq!((e.status, e.version), (ExecStatus::Queued, 1));
        e.start(110, Some(&details(json!({"step": "download"}))), Some(5));
        assert_eq!(
            (e.status, e.version, e.started_at, e.timeout_at),
            (ExecStatus::InProgress, 2, Some(110), Some(410))
        );
        e.update(120, ExecStatus::InProgress, None, Some(2), None)
            .unwrap();
        assert_eq!(e.version, 3);
        assert_eq!(e.status_details, details(json!({"step": "download"})));
        e.update(
            130,
            ExecStatus::Succeeded,
            Some(&details(json!({"v": "2.0.0"}))),
            Some(3),
            None,
        )
        .unwrap();
        assert_eq!(
            (e.status, e.version, e.last_updated_at, e.timeout_at),
            (ExecStatus::Succeeded, 4, 130, None)
        );
        assert_eq!(
            e.state_json(),
            json!({"status": "SUCCEEDED", "statusDetails": {"v": "2.0.0"}, "versionNumber": 4})
        );
    }

    #[test]
    fn queued_may_finish_directly() {
        let mut e = Execution::new("j", "t", 0, 0);
        e.update(1, ExecStatus::Rejected, None, Some(1), None)
            .unwrap();
        assert_eq!(
            (e.status, e.version, e.started_at),
            (ExecStatus::Rejected, 2, None)
        );
    }

    #[test]
    fn version_mismatch_carries_state() {
        let mut e = Execution::new("j", "t", 0, 0);
        let err = e
            .update(1, ExecStatus::InProgress, None, Some(7), None)
            .unwrap_err();
        assert_eq!((err.status, err.code), (409, "VersionMismatch"));
        assert_eq!(err.extra["executionState"]["versionNumber"], json!(1));
        assert_eq!(e.version, 1, "a refused update changes nothing");
    }

    #[test]
    fn terminal_states_cannot_be_left() {
        for end in [
            ExecStatus::Succeeded,
            ExecStatus::Failed,
            ExecStatus::Rejected,
        ] {
            let mut e = Execution::new("j", "t", 0, 0);
            e.update(1, end, None, None, None).unwrap();
            for next in [
                ExecStatus::InProgress,
                ExecStatus::Succeeded,
                ExecStatus::Failed,
                ExecStatus::Rejected,
            ] {
                let err = e.update(2, next, None, None, None).unwrap_err();
                assert_eq!((err.status, err.code), (409, "InvalidStateTransition"));
            }
            assert!(!e.cancel(3));
        }
        let mut e = Execution::new("j", "t", 0, 0);
        assert!(e.cancel(1));
        assert_eq!((e.status, e.version), (ExecStatus::Canceled, 2));
        assert_eq!(
            e.update(2, ExecStatus::InProgress, None, Some(2), None)
                .unwrap_err()
                .code,
            "InvalidStateTransition"
        );
    }

    #[test]
    fn device_cannot_set_admin_states() {
        let mut e = Execution::new("j", "t", 0, 0);
        for s in [
            ExecStatus::Queued,
            ExecStatus::TimedOut,
            ExecStatus::Canceled,
        ] {
            assert_eq!(e.update(1, s, None, None, None).unwrap_err().status, 400);
        }
        assert_eq!(ExecStatus::parse_device("QUEUED"), None);
        assert_eq!(ExecStatus::parse_device("TIMED_OUT"), None);
        assert_eq!(ExecStatus::parse_device("in_progress"), None);
        assert_eq!(ExecStatus::parse_device("FAILED"), Some(ExecStatus::Failed));
    }

    #[test]
    fn step_timeout_expires_and_can_be_reset() {
        let mut e = Execution::new("j", "t", 0, 0);
        e.start(0, None, Some(1));
        assert!(!e.expire(59));
        e.update(30, ExecStatus::InProgress, None, None, Some(2))
            .unwrap(); // timer now 30 + 120
        assert!(!e.expire(149));
        assert!(e.expire(150));
        assert_eq!(
            (e.status, e.version, e.last_updated_at),
            (ExecStatus::TimedOut, 4, 150)
        );
        assert!(!e.expire(1000));
        assert_eq!(
            e.update(151, ExecStatus::Succeeded, None, None, None)
                .unwrap_err()
                .code,
            "InvalidStateTransition"
        );
    }

    #[test]
    fn no_timeout_without_step_timeout() {
        let mut e = Execution::new("j", "t", 0, 0);
        e.start(0, None, None);
        assert!(!e.expire(u64::MAX / 2));
        assert!(e
            .full_json(None, 0)
            .get("approximateSecondsBeforeTimedOut")
            .is_none());
    }

    #[test]
    fn json_shapes() {
        let mut e = Execution::new("j", "t", 10, 0);
        assert_eq!(
            e.summary_json(),
            json!({"jobId": "j", "queuedAt": 10, "lastUpdatedAt": 10, "versionNumber": 1, "executionNumber": 1})
        );
        e.start(20, None, Some(1));
        let full = e.full_json(Some(&json!({"op": "x"})), 50);
        assert_eq!(full["startedAt"], json!(20));
        assert_eq!(full["approximateSecondsBeforeTimedOut"], json!(30));
        assert_eq!(full["jobDocument"], json!({"op": "x"}));
        assert_eq!(full["status"], json!("IN_PROGRESS"));
    }

    #[test]
    fn job_status_follows_executions() {
        let mut job = Job {
            id: "j".into(),
            document: json!({}),
            description: None,
            created_at: 0,
            status: JobStatus::InProgress,
            in_progress_timeout_min: None,
            targets: vec!["a".into(), "b".into()],
            executions: BTreeMap::new(),
            seq: 0,
        };
        job.executions
            .insert("a".into(), Execution::new("j", "a", 0, 0));
        job.executions
            .insert("b".into(), Execution::new("j", "b", 0, 1));
        job.executions
            .get_mut("a")
            .unwrap()
            .update(1, ExecStatus::Succeeded, None, None, None)
            .unwrap();
        job.refresh_status();
        assert_eq!(job.status, JobStatus::InProgress);
        assert_eq!(job.cancel(2), 1);
        assert_eq!(job.status, JobStatus::Canceled);
        assert_eq!(
            job.to_json()["executionCounts"],
            json!({"CANCELED": 1, "SUCCEEDED": 1})
        );
    }
}
