//! The job agent: claims the thing's next job, runs it through the handler registered for
//! its `action`, step by step, and reports progress and the final status, surviving crashes
//! and reboots in the middle.
//!
//! A handler runs a job as numbered steps (0, 1, 2, ...). Each call runs one step and says
//! what comes next: the next step (optionally behind the application's gate), the end of the
//! job (`SUCCEEDED`, `FAILED`, `REJECTED`), or "try this step again on a later run".
//!
//! What is written to `<state_dir>/fleets-job-<thing>.json` (atomically, synced), and when:
//! 1. after start-next claimed a job: its id, step 0;
//! 2. before a step runs: its attempt number (a step that was started and not finished, as
//!    after a crash, runs again with `attempt > 1`: it must cope with having run partly);
//! 3. after a step finished: the next step. From then on the finished step never runs again;
//! 4. before the final status is sent: that status. A later run only sends it (again).
//!
//! A later `run_once` finds the file and resumes that job instead of claiming another one,
//! after asking the server where it is (`jobs_describe`): a job canceled or timed out
//! meanwhile is dropped. A step that keeps failing (or keeps crashing the process) ends the
//! job `FAILED` after `max_attempts` starts, and the server's own timeout (given with
//! start-next) ends a job whose device never comes back, so a job never stays `IN_PROGRESS`
//! forever. Every update carries the execution's `expectedVersion`; a conflict is resolved by
//! reading the execution again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::client::Client;
use crate::error::{Error, ErrorCode, Result};
use crate::logging::{self, LogLevel};
use crate::validate;
use crate::wire::ExecutionStatus;
use crate::workflows::storage;

/// Starts of one step at most (the first and the retries, crashes included) before the job
/// is reported `FAILED`, unless the agent is given another limit.
pub const DEFAULT_MAX_STEP_ATTEMPTS: u32 = 3;
/// Steps of one job at most: a handler that never finishes ends `FAILED` here.
pub const MAX_JOB_STEPS: u32 = 64;
/// Largest status details a handler may set (bytes of JSON).
pub const MAX_JOB_DETAILS_BYTES: usize = 1024;
/// Updates per report at most when each meets a version conflict.
const MAX_UPDATE_TRIES: u32 = 3;
/// A job state file is small; a larger file is not one.
const STATE_FILE_LIMIT: u64 = 16 * 1024;
const STATE_FORMAT: u32 = 1;

/// What a handler says after running a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepResult {
    /// The step is done; run the next one now.
    Next,
    /// The step is done; the next one is disruptive (a reboot...): run it only when the
    /// agent's gate allows it (now, or on a later run).
    NextGated,
    /// The job is done: report `SUCCEEDED`.
    Succeeded,
    /// The job failed: report `FAILED`.
    Failed,
    /// The job cannot be done by this device (a bad document): report `REJECTED`.
    Rejected,
    /// The step could not run now (the network is down...): run it again on a later run. It
    /// counts as an attempt.
    Retry,
}

/// The step a handler is asked to run.
#[derive(Debug)]
pub struct JobStep<'a> {
    /// The thing the agent works for.
    pub thing_name: &'a str,
    /// The job execution's job id.
    pub job_id: &'a str,
    /// The job document's `action`.
    pub action: &'a str,
    /// The whole job document (a JSON object), as the server sent it.
    pub document_json: &'a str,
    /// Which step to run, from 0.
    pub step: u32,
    /// 1 the first time this step runs; more when it was started before and did not finish
    /// (a crash, a reboot, a `Retry`): it may have run partly.
    pub attempt: u32,
    /// Status details (a JSON object, at most [`MAX_JOB_DETAILS_BYTES`]) the handler wants
    /// in the update that follows: the progress update after a step, or the final status.
    pub details: Option<String>,
}

/// How a [`JobAgent::run_once`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// No job was pending.
    NoJob,
    /// The job ended `SUCCEEDED` (reported by this run, or found so at the server).
    Succeeded,
    /// The job ended `FAILED`.
    Failed,
    /// The job ended `REJECTED`.
    Rejected,
    /// The next step waits for the gate; the job stays `IN_PROGRESS` and resumes later.
    Deferred,
    /// A step asked to be run again later; the job stays `IN_PROGRESS`.
    RetryLater,
    /// The job was canceled, timed out or removed at the server while this device held it;
    /// the local state was dropped.
    Abandoned,
}

/// The result of a successful [`JobAgent::run_once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    /// What happened.
    pub outcome: JobOutcome,
    /// The job concerned (`None` with [`JobOutcome::NoJob`]).
    pub job_id: Option<String>,
    /// The step reached: the next to run, or the last one run for a finished job.
    pub step: u32,
    /// The job had been claimed by an earlier run (found in the state directory).
    pub resumed: bool,
}

type Handler<'h> = Box<dyn FnMut(&mut JobStep<'_>) -> StepResult + 'h>;
type Gate<'h> = Box<dyn FnMut(&JobStep<'_>) -> bool + 'h>;

/// A job agent for one thing, with its handlers and its state directory. See the module
/// documentation. One agent per (state directory, thing) may run at a time.
pub struct JobAgent<'h> {
    thing_name: String,
    state_dir: PathBuf,
    handlers: Vec<(String, Handler<'h>)>,
    gate: Option<Gate<'h>>,
    job_timeout_minutes: u32,
    max_attempts: u32,
}

impl std::fmt::Debug for JobAgent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobAgent")
            .field("thing_name", &self.thing_name)
            .field("state_dir", &self.state_dir)
            .field(
                "actions",
                &self.handlers.iter().map(|(a, _)| a).collect::<Vec<_>>(),
            )
            .field("gate", &self.gate.is_some())
            .finish_non_exhaustive()
    }
}

/// The final status decided for a job, kept until the server has it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Final {
    Succeeded,
    Failed,
    Rejected,
}

impl Final {
    fn status(self) -> ExecutionStatus {
        match self {
            Final::Succeeded => ExecutionStatus::Succeeded,
            Final::Failed => ExecutionStatus::Failed,
            Final::Rejected => ExecutionStatus::Rejected,
        }
    }

    fn outcome(self) -> JobOutcome {
        match self {
            Final::Succeeded => JobOutcome::Succeeded,
            Final::Failed => JobOutcome::Failed,
            Final::Rejected => JobOutcome::Rejected,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Final::Succeeded => "SUCCEEDED",
            Final::Failed => "FAILED",
            Final::Rejected => "REJECTED",
        }
    }
}

/// The state file: the job this device holds and where it is.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct JobState {
    format: u32,
    thing_name: String,
    job_id: String,
    /// The step to run next; every step before it is done.
    step: u32,
    /// Times `step` has been started.
    attempts: u32,
    /// `step` runs only when the gate allows it.
    #[serde(default)]
    gated: bool,
    /// The server was told that `step` waits for the gate.
    #[serde(default)]
    gate_reported: bool,
    /// The execution's `versionNumber` as last known (for `expectedVersion`).
    version: u64,
    /// The final status decided, not yet confirmed by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_status: Option<Final>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    final_details: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Execution {
    job_id: String,
    status: String,
    version_number: u64,
    #[serde(default)]
    job_document: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct ExecutionAnswer {
    execution: Option<Execution>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateAnswer {
    execution_state: Option<ExecutionState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionState {
    version_number: Option<u64>,
}

#[derive(Deserialize)]
struct Document<'a> {
    #[serde(borrow, default)]
    action: Option<std::borrow::Cow<'a, str>>,
}

impl<'h> JobAgent<'h> {
    /// An agent for `thing_name` keeping its state in `state_dir` (an existing directory on
    /// storage that survives a reboot).
    pub fn new(thing_name: &str, state_dir: &Path) -> JobAgent<'h> {
        JobAgent {
            thing_name: thing_name.to_owned(),
            state_dir: state_dir.to_owned(),
            handlers: Vec::new(),
            gate: None,
            job_timeout_minutes: 0,
            max_attempts: DEFAULT_MAX_STEP_ATTEMPTS,
        }
    }

    /// Registers the handler of jobs whose document's `action` is `action` (replacing an
    /// earlier one for the same action).
    pub fn handler(
        mut self,
        action: &str,
        handler: impl FnMut(&mut JobStep<'_>) -> StepResult + 'h,
    ) -> JobAgent<'h> {
        self.handlers.retain(|(a, _)| a != action);
        self.handlers.push((action.to_owned(), Box::new(handler)));
        self
    }

    /// The gate asked before a step that a handler marked disruptive
    /// ([`StepResult::NextGated`]); `false` defers it to a later run. Without a gate such a
    /// step runs at once.
    pub fn gate(mut self, gate: impl FnMut(&JobStep<'_>) -> bool + 'h) -> JobAgent<'h> {
        self.gate = Some(Box::new(gate));
        self
    }

    /// Minutes the server gives a claimed job before it times it out (`TIMED_OUT`), counted
    /// from the claim (start-next's `stepTimeoutInMinutes`); 0 leaves it to the server.
    pub fn job_timeout_minutes(mut self, minutes: u32) -> JobAgent<'h> {
        self.job_timeout_minutes = minutes;
        self
    }

    /// Starts of one step at most before the job is `FAILED` (default 3; 0 keeps it).
    pub fn max_attempts(mut self, attempts: u32) -> JobAgent<'h> {
        if attempts > 0 {
            self.max_attempts = attempts;
        }
        self
    }

    /// The file where this agent keeps the job it holds.
    pub fn state_file(&self) -> PathBuf {
        self.state_dir
            .join(format!("fleets-job-{}.json", self.thing_name))
    }

    /// Resumes the job held in the state directory, or claims the next pending one, and runs
    /// it as far as it goes now. See the module documentation.
    ///
    /// Errors: `InvalidArgument` (the thing name), `Storage`/`DiskFull` (the state
    /// directory), `InvalidJson` (a handler set details that are not a JSON object; the step
    /// counts as attempted), and those of the jobs calls. After an error the state is as the
    /// last successful write left it: the next run picks up from there.
    pub fn run_once(&mut self, client: &Client) -> Result<JobRun> {
        validate::identifier("thing_name", &self.thing_name)?;
        if !self.state_dir.is_dir() {
            return Err(Error::new(
                ErrorCode::LocalFile,
                format!("state_dir {} is not a directory", self.state_dir.display()),
            ));
        }
        let path = self.state_file();
        match self.load(&path)? {
            Some(state) if state.final_status.is_some() => {
                let mut run = Run::new(self, client, path, state);
                run.send_final()
            }
            Some(state) => {
                let mut run = Run::new(self, client, path, state);
                run.resume()
            }
            None => self.claim(client, path),
        }
    }

    fn load(&self, path: &Path) -> Result<Option<JobState>> {
        let Some(bytes) = storage::read_small(path, STATE_FILE_LIMIT)? else {
            return Ok(None);
        };
        let state: JobState = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorCode::LocalFile,
                format!("{} is not a job agent state file: {e}", path.display()),
            )
        })?;
        if state.format != STATE_FORMAT || state.thing_name != self.thing_name {
            return Err(Error::new(
                ErrorCode::LocalFile,
                format!(
                    "{} holds the state of another thing or format ({:?}, format {})",
                    path.display(),
                    state.thing_name,
                    state.format
                ),
            ));
        }
        Ok(Some(state))
    }

    fn claim(&mut self, client: &Client, path: PathBuf) -> Result<JobRun> {
        let answer: ExecutionAnswer = client
            .jobs_start_next(&self.thing_name, None, self.job_timeout_minutes, None)?
            .json()?;
        let Some(execution) = answer.execution else {
            return Ok(JobRun {
                outcome: JobOutcome::NoJob,
                job_id: None,
                step: 0,
                resumed: false,
            });
        };
        let state = JobState {
            format: STATE_FORMAT,
            thing_name: self.thing_name.clone(),
            job_id: execution.job_id.clone(),
            step: 0,
            attempts: 0,
            gated: false,
            gate_reported: false,
            version: execution.version_number,
            final_status: None,
            final_details: None,
        };
        let mut run = Run::new(self, client, path, state);
        run.persist()?;
        run.run_steps(&execution, false)
    }
}

/// One `run_once` on a held job.
struct Run<'a, 'h> {
    agent: &'a mut JobAgent<'h>,
    client: &'a Client,
    path: PathBuf,
    state: JobState,
}

impl<'a, 'h> Run<'a, 'h> {
    fn new(
        agent: &'a mut JobAgent<'h>,
        client: &'a Client,
        path: PathBuf,
        state: JobState,
    ) -> Self {
        Run {
            agent,
            client,
            path,
            state,
        }
    }

    fn persist(&self) -> Result<()> {
        let bytes = serde_json::to_vec(&self.state)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("encoding the job state: {e}")))?;
        storage::write_atomic(&self.path, &bytes)
    }

    fn done(&self, outcome: JobOutcome, resumed: bool) -> JobRun {
        JobRun {
            outcome,
            job_id: Some(self.state.job_id.clone()),
            step: self.state.step,
            resumed,
        }
    }

    /// Drops the local state of a job the server no longer has in progress.
    fn forget(&self, server_status: &str, resumed: bool) -> Result<JobRun> {
        logging::log(
            LogLevel::Info,
            format_args!(
                "job {}: {server_status} at the server; its local state is dropped",
                self.state.job_id
            ),
        );
        storage::remove(&self.path)?;
        storage::sync_dir(storage::parent_dir(&self.path))?;
        let outcome = match server_status {
            "SUCCEEDED" => JobOutcome::Succeeded,
            "FAILED" => JobOutcome::Failed,
            "REJECTED" => JobOutcome::Rejected,
            _ => JobOutcome::Abandoned,
        };
        Ok(self.done(outcome, resumed))
    }

    fn describe(&self) -> Result<Option<Execution>> {
        match self
            .client
            .jobs_describe(&self.agent.thing_name, &self.state.job_id, None)
        {
            Ok(answer) => Ok(answer.json::<ExecutionAnswer>()?.execution),
            Err(error) if error.code() == ErrorCode::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn resume(&mut self) -> Result<JobRun> {
        let Some(execution) = self.describe()? else {
            return self.forget("REMOVED", true);
        };
        match execution.status.as_str() {
            "IN_PROGRESS" | "QUEUED" => {
                self.state.version = execution.version_number;
                self.run_steps(&execution, true)
            }
            other => {
                let other = other.to_owned();
                self.forget(&other, true)
            }
        }
    }

    fn run_steps(&mut self, execution: &Execution, resumed: bool) -> Result<JobRun> {
        let document = execution
            .job_document
            .as_deref()
            .map_or("{}", RawValue::get)
            .to_owned();
        let action = serde_json::from_str::<Document<'_>>(&document)
            .ok()
            .and_then(|d| d.action)
            .map(|a| a.into_owned());
        let Some(action) = action else {
            let details = reason("the job document has no \"action\" string");
            return self.decide(Final::Rejected, Some(details), resumed);
        };
        let Some(index) = self.agent.handlers.iter().position(|(a, _)| *a == action) else {
            let details = reason(&format!("no handler for action {action:?} on this device"));
            return self.decide(Final::Rejected, Some(details), resumed);
        };
        let thing_name = self.agent.thing_name.clone();
        let job_id = self.state.job_id.clone();
        logging::log(
            LogLevel::Info,
            format_args!(
                "job {job_id}: {action:?} {} at step {} (attempt {})",
                if resumed { "resumed" } else { "claimed" },
                self.state.step,
                self.state.attempts + 1
            ),
        );
        loop {
            if self.state.step >= MAX_JOB_STEPS {
                let details = reason(&format!(
                    "the {action:?} handler did not finish within {MAX_JOB_STEPS} steps"
                ));
                return self.decide(Final::Failed, Some(details), resumed);
            }
            let mut step = JobStep {
                thing_name: &thing_name,
                job_id: &job_id,
                action: &action,
                document_json: &document,
                step: self.state.step,
                attempt: self.state.attempts + 1,
                details: None,
            };
            if self.state.gated {
                let allowed = match self.agent.gate.as_mut() {
                    Some(gate) => gate(&step),
                    None => true,
                };
                if !allowed {
                    if !self.state.gate_reported {
                        let details = agent_details(self.state.step, None, Some("gate"))?;
                        self.progress(&details)?;
                        self.state.gate_reported = true;
                        self.persist()?;
                    }
                    return Ok(self.done(JobOutcome::Deferred, resumed));
                }
                self.state.gated = false;
            }
            if self.state.attempts >= self.agent.max_attempts {
                let details = format!(
                    "{{\"reason\":{},\"agentStep\":{}}}",
                    json_string(&format!(
                        "step {} did not complete in {} attempts",
                        self.state.step, self.state.attempts
                    )),
                    self.state.step
                );
                return self.decide(Final::Failed, Some(details), resumed);
            }
            self.state.attempts += 1;
            self.persist()?;

            let result = (self.agent.handlers[index].1)(&mut step);
            let details = step.details.take();
            if let Some(text) = &details {
                check_details(text, &action, self.state.step)?;
            }
            match result {
                StepResult::Next | StepResult::NextGated => {
                    self.state.step += 1;
                    self.state.attempts = 0;
                    self.state.gated = result == StepResult::NextGated;
                    self.state.gate_reported = false;
                    self.persist()?;
                    let details = agent_details(self.state.step, details.as_deref(), None)?;
                    self.progress(&details)?;
                }
                StepResult::Succeeded => return self.decide(Final::Succeeded, details, resumed),
                StepResult::Failed => return self.decide(Final::Failed, details, resumed),
                StepResult::Rejected => return self.decide(Final::Rejected, details, resumed),
                StepResult::Retry => {
                    let details = agent_details(self.state.step, details.as_deref(), None)?;
                    self.progress(&details)?;
                    return Ok(self.done(JobOutcome::RetryLater, resumed));
                }
            }
        }
    }

    /// Sends an `IN_PROGRESS` update with `details`, resolving version conflicts.
    fn progress(&mut self, details: &str) -> Result<()> {
        for _ in 0..MAX_UPDATE_TRIES {
            match self.update(ExecutionStatus::InProgress, Some(details)) {
                Ok(()) => return Ok(()),
                Err(error) if error.code() == ErrorCode::Conflict => {
                    match self.describe()? {
                        Some(e) if matches!(e.status.as_str(), "IN_PROGRESS" | "QUEUED") => {
                            self.state.version = e.version_number;
                        }
                        // Ended at the server: the caller finds out on its next describe.
                        _ => return Err(error),
                    }
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "job {}: the execution's version kept changing under the progress update",
                self.state.job_id
            ),
        ))
    }

    fn update(&mut self, status: ExecutionStatus, details: Option<&str>) -> Result<()> {
        let answer = self.client.jobs_update(
            &self.agent.thing_name,
            &self.state.job_id,
            status,
            details,
            self.state.version,
            None,
        )?;
        if let Some(version) = answer
            .json::<UpdateAnswer>()
            .ok()
            .and_then(|a| a.execution_state)
            .and_then(|s| s.version_number)
        {
            self.state.version = version;
        }
        Ok(())
    }

    /// Records the final status, then sends it.
    fn decide(&mut self, status: Final, details: Option<String>, resumed: bool) -> Result<JobRun> {
        logging::log(
            LogLevel::Info,
            format_args!(
                "job {}: {} at step {}",
                self.state.job_id,
                status.name(),
                self.state.step
            ),
        );
        self.state.final_status = Some(status);
        self.state.final_details = details;
        self.persist()?;
        let mut run = self.send_final()?;
        run.resumed = resumed;
        Ok(run)
    }

    /// Sends the recorded final status (again, after a crash) and drops the state once the
    /// server has it.
    fn send_final(&mut self) -> Result<JobRun> {
        let status = self
            .state
            .final_status
            .ok_or_else(|| Error::new(ErrorCode::Internal, "no final status recorded"))?;
        let details = self.state.final_details.clone();
        for _ in 0..MAX_UPDATE_TRIES {
            match self.update(status.status(), details.as_deref()) {
                Ok(()) => {
                    storage::remove(&self.path)?;
                    storage::sync_dir(storage::parent_dir(&self.path))?;
                    return Ok(self.done(status.outcome(), true));
                }
                Err(error) if error.code() == ErrorCode::Conflict => match self.describe()? {
                    Some(e) if matches!(e.status.as_str(), "IN_PROGRESS" | "QUEUED") => {
                        self.state.version = e.version_number;
                    }
                    Some(e) => return self.forget(&e.status, true),
                    None => return self.forget("REMOVED", true),
                },
                Err(error) if error.code() == ErrorCode::NotFound => {
                    return self.forget("REMOVED", true)
                }
                Err(error) => return Err(error),
            }
        }
        Err(Error::new(
            ErrorCode::Conflict,
            format!(
                "job {}: the execution's version kept changing under the {} update",
                self.state.job_id,
                status.name()
            ),
        ))
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

fn reason(text: &str) -> String {
    format!("{{\"reason\":{}}}", json_string(text))
}

/// A handler's details must be a JSON object of bounded size.
fn check_details(text: &str, action: &str, step: u32) -> Result<()> {
    let problem = if text.len() > MAX_JOB_DETAILS_BYTES {
        Some(format!("longer than {MAX_JOB_DETAILS_BYTES} bytes"))
    } else {
        validate::JsonObject::parse("details", text)
            .err()
            .map(|e| e.message().to_owned())
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(Error::new(
            ErrorCode::InvalidJson,
            format!("status details set by the {action:?} handler at step {step}: {why}"),
        )),
    }
}

/// The progress details: the handler's members, then `agentStep` (and `waitingFor`).
fn agent_details(step: u32, handler: Option<&str>, waiting_for: Option<&str>) -> Result<String> {
    let mut members: BTreeMap<String, Box<RawValue>> = match handler {
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Error::new(ErrorCode::InvalidJson, format!("status details: {e}")))?,
        None => BTreeMap::new(),
    };
    members.remove("agentStep");
    members.remove("waitingFor");
    let mut out = String::from("{");
    for (key, value) in &members {
        let _ = write!(out, "{}:{},", json_string(key), value.get());
    }
    let _ = write!(out, "\"agentStep\":{step}");
    if let Some(what) = waiting_for {
        let _ = write!(out, ",\"waitingFor\":{}", json_string(what));
    }
    out.push('}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_details_keep_the_handlers_members() {
        assert_eq!(agent_details(2, None, None).unwrap(), r#"{"agentStep":2}"#);
        assert_eq!(
            agent_details(1, Some(r#"{"percent":50,"agentStep":9}"#), Some("gate")).unwrap(),
            r#"{"percent":50,"agentStep":1,"waitingFor":"gate"}"#
        );
        assert!(check_details(r#"{"a":1}"#, "x", 0).is_ok());
        for bad in [
            "[1]",
            "{",
            "null",
            &format!("{{\"a\":\"{}\"}}", "x".repeat(2000)),
        ] {
            assert_eq!(
                check_details(bad, "x", 0).unwrap_err().code(),
                ErrorCode::InvalidJson
            );
        }
    }

    #[test]
    fn state_round_trips() {
        let state = JobState {
            format: STATE_FORMAT,
            thing_name: "t".into(),
            job_id: "j".into(),
            step: 2,
            attempts: 1,
            gated: true,
            gate_reported: false,
            version: 7,
            final_status: Some(Final::Failed),
            final_details: Some(reason("x")),
        };
        let text = serde_json::to_string(&state).unwrap();
        assert!(text.contains(r#""finalStatus":"FAILED""#), "{text}");
        assert_eq!(serde_json::from_str::<JobState>(&text).unwrap(), state);
    }
}
