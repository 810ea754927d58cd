//! All emulator state behind one lock: things (shadow, history, events, commands), jobs,
//! fault rules, request statistics and the virtual clock.
//!
//! The device operations take a parsed JSON body and return the response body or an
//! [`ApiError`]; they do no I/O, so the whole API semantics are unit-testable here.

pub mod commands;
pub mod jobs;
pub mod shadow;

use crate::error::ApiError;
use crate::faults::{FaultRule, Faults};
use crate::files::Files;
use crate::validate::{self as v, Obj};
use crate::Stats;
use commands::{CmdStatus, Command};
use jobs::{ExecStatus, Execution, Job, JobStatus};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

/// Shadow history entries kept per thing (oldest dropped first).
pub const HISTORY_LIMIT: usize = 1000;
/// Events kept per thing (oldest dropped first).
pub const EVENTS_LIMIT: usize = 1000;

/// One registered thing.
#[derive(Debug, Clone, Default)]
pub struct Thing {
    /// Reported state.
    pub reported: Map<String, Value>,
    /// Desired state.
    pub desired: Map<String, Value>,
    /// Shadow version: 0 until the first update, +1 per reported or desired update.
    pub version: u64,
    /// Unix seconds of the last shadow change (registration time before that).
    pub updated_at: u64,
    /// Shadow updates, oldest first.
    pub history: VecDeque<Value>,
    /// Events, oldest first.
    pub events: VecDeque<Value>,
    /// Command executions by id.
    pub commands: BTreeMap<String, Command>,
}

impl Thing {
    /// The shadow as `GET .../shadow` returns it.
    pub fn shadow_json(&self) -> Value {
        json!({
            "reported": self.reported,
            "desired": self.desired,
            "delta": shadow::delta(&self.desired, &self.reported),
            "version": self.version,
            "updatedAt": shadow::rfc3339(self.updated_at),
        })
    }

    fn push_history(&mut self, entry: Value) {
        if self.history.len() >= HISTORY_LIMIT {
            self.history.pop_front();
        }
        self.history.push_back(entry);
    }
}

/// The whole emulator state.
#[derive(Debug)]
pub struct State {
    /// Register unknown things on first device use.
    pub auto_register: bool,
    things: BTreeMap<String, Thing>,
    jobs: BTreeMap<String, Job>,
    faults: Faults,
    files: Files,
    stats: Stats,
    admin_requests: u64,
    clock_offset: u64,
    seq: u64,
    /// Fixed "real" time for unit tests.
    fixed_now: Option<u64>,
}

fn real_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn real_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random UUID v4 string.
pub fn new_uuid() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        // Fall back to time + counter; uniqueness is all that matters here.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&real_now_ms().to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn with_token(mut v: Value, token: Option<&str>) -> Value {
    if let (Some(t), Value::Object(m)) = (token, &mut v) {
        m.insert("clientToken".into(), json!(t));
    }
    v
}

fn step_timeout(body: &Obj) -> Result<Option<u64>, ApiError> {
    match v::opt_u64(body, "stepTimeoutInMinutes")? {
        Some(m) if !(1..=jobs::MAX_STEP_TIMEOUT_MINUTES).contains(&m) => {
            Err(ApiError::invalid(format!(
                "`stepTimeoutInMinutes` must be within 1..={}",
                jobs::MAX_STEP_TIMEOUT_MINUTES
            )))
        }
        other => Ok(other),
    }
}

impl State {
    /// Empty state.
    pub fn new(auto_register: bool) -> Self {
        State {
            auto_register,
            things: BTreeMap::new(),
            jobs: BTreeMap::new(),
            faults: Faults::default(),
            files: Files::default(),
            stats: Stats::default(),
            admin_requests: 0,
            clock_offset: 0,
            seq: 0,
            fixed_now: None,
        }
    }

    /// Empty state whose clock starts at `now` (Unix seconds) instead of the real time.
    pub fn with_fixed_clock(auto_register: bool, now: u64) -> Self {
        State {
            fixed_now: Some(now),
            ..Self::new(auto_register)
        }
    }

    /// Virtual now, Unix seconds (real time plus every `advance_clock`).
    pub fn now(&self) -> u64 {
        self.fixed_now
            .unwrap_or_else(real_now)
            .saturating_add(self.clock_offset)
    }

    /// Virtual now, Unix milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.fixed_now
            .map(|s| s.saturating_mul(1000))
            .unwrap_or_else(real_now_ms)
            .saturating_add(self.clock_offset.saturating_mul(1000))
    }

    /// Moves the virtual clock forward.
    pub fn advance_clock(&mut self, secs: u64) {
        self.clock_offset = self.clock_offset.saturating_add(secs);
        self.expire_all();
    }

    /// Clears everything (things, jobs, faults, files, stats, clock offset); keeps
    /// `auto_register`.
    pub fn reset(&mut self) {
        *self = State {
            fixed_now: self.fixed_now,
            ..State::new(self.auto_register)
        };
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    // ---------------------------------------------------------------- stats and faults

    /// Counts a device-port request (`/api/v1/...` or `/files/...`) and returns the fault to
    /// apply to it, if any.
    pub fn begin_api_request(
        &mut self,
        endpoint_key: &str,
        method: &str,
        path: &str,
    ) -> Option<FaultRule> {
        self.stats.total += 1;
        *self
            .stats
            .by_endpoint
            .entry(endpoint_key.to_owned())
            .or_default() += 1;
        self.faults.take(method, path)
    }

    /// Counts an admin request.
    pub fn count_admin_request(&mut self) {
        self.admin_requests += 1;
    }

    /// Device-API request counts.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    /// Admin request count.
    pub fn admin_requests(&self) -> u64 {
        self.admin_requests
    }

    /// Adds a fault rule.
    pub fn add_fault(&mut self, rule: FaultRule) {
        self.faults.add(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Active fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.faults.list()
    }

    /// The files served under `/files/`.
    pub fn files(&self) -> &Files {
        &self.files
    }

    /// The files served under `/files/`, for changes.
    pub fn files_mut(&mut self) -> &mut Files {
        &mut self.files
    }

    // ---------------------------------------------------------------- things

    /// Registers a thing; returns false if it already existed.
    pub fn register(&mut self, name: &str) -> bool {
        if self.things.contains_key(name) {
            return false;
        }
        let now = self.now();
        self.things.insert(
            name.to_owned(),
            Thing {
                updated_at: now,
                ..Thing::default()
            },
        );
        true
    }

    /// Registered thing names.
    pub fn thing_names(&self) -> Vec<String> {
        self.things.keys().cloned().collect()
    }

    /// A thing, if registered.
    pub fn thing(&self, name: &str) -> Option<&Thing> {
        self.things.get(name)
    }

    /// The thing a device request names: 404 unless registered (or auto-registration is on).
    fn device_thing(&mut self, name: &str) -> Result<&mut Thing, ApiError> {
        if self.auto_register {
            self.register(name);
        }
        self.things
            .get_mut(name)
            .ok_or_else(|| ApiError::not_found(format!("thing `{name}` is not registered")))
    }

    fn admin_thing(&mut self, name: &str) -> &mut Thing {
        self.register(name);
        self.things.get_mut(name).expect("registered above")
    }

    /// Merges `patch` into the desired state (null deletes), registering the thing if needed.
    /// Bumps the shadow version like any shadow update. Returns the new shadow.
    pub fn set_desired(&mut self, name: &str, patch: &Value) -> Result<Value, ApiError> {
        let Value::Object(patch) = patch else {
            return Err(ApiError::invalid("desired state must be a JSON object"));
        };
        let now = self.now();
        let t = self.admin_thing(name);
        shadow::merge(&mut t.desired, patch);
        t.version += 1;
        t.updated_at = now;
        let entry = json!({"version": t.version, "timestamp": now, "source": "admin", "state": {"desired": patch}});
        t.push_history(entry);
        Ok(t.shadow_json())
    }

    /// Shadow history, oldest first; `None` for an unknown thing.
    pub fn history(&self, name: &str) -> Option<Vec<Value>> {
        self.things
            .get(name)
            .map(|t| t.history.iter().cloned().collect())
    }

    /// Stored events, oldest first; `None` for an unknown thing.
    pub fn events(&self, name: &str) -> Option<Vec<Value>> {
        self.things
            .get(name)
            .map(|t| t.events.iter().cloned().collect())
    }

    // ---------------------------------------------------------------- device API

    /// `POST /api/v1/thing-datas/shadow/reported`.
    pub fn report(&mut self, body: &Obj) -> Result<Value, ApiError> {
        let name = v::thing_name(body)?;
        let token = v::client_token(body)?;
        let state = v::req_obj(body, "state")?;
        if let Some(k) = state.keys().find(|k| *k != "reported") {
            return Err(ApiError::invalid(format!(
                "`state` may only contain `reported` on this endpoint (found `{k}`)"
            )));
        }
        let reported = match state.get("reported") {
            Some(Value::Object(m)) => m,
            None | Some(Value::Null) => {
                return Err(ApiError::invalid("missing required field `state.reported`"))
            }
            Some(_) => return Err(ApiError::invalid("`state.reported` must be a JSON object")),
        };
        let version = v::opt_u64(body, "version")?;
        let now = self.now();
        let t = self.device_thing(name)?;
        if let Some(ver) = version.filter(|v| *v != 0) {
            if ver != t.version {
                return Err(ApiError::conflict(
                    "VersionConflict",
                    format!(
                        "version {ver} does not match the current shadow version {}",
                        t.version
                    ),
                )
                .with("version", json!(t.version)));
            }
        }
        shadow::merge(&mut t.reported, reported);
        t.version += 1;
        t.updated_at = now;
        let mut entry = json!({"version": t.version, "timestamp": now, "source": "device", "state": {"reported": reported}});
        if let Some(tok) = token {
            entry["clientToken"] = json!(tok);
        }
        t.push_history(entry);
        Ok(with_token(
            json!({"state": {"reported": reported}, "version": t.version, "timestamp": now}),
            token,
        ))
    }

    /// `GET /api/v1/thing-datas/{thingName}/shadow`.
    pub fn get_shadow(&mut self, name: &str) -> Result<Value, ApiError> {
        v::check_identifier("thingName", name)?;
        Ok(self.device_thing(name)?.shadow_json())
    }

    /// `POST /api/v1/thing-datas/events`.
    pub fn publish_event(&mut self, body: &Obj) -> Result<Value, ApiError> {
        let name = v::thing_name(body)?;
        let event_type = v::req_str(body, "eventType")?;
        if event_type.is_empty() || event_type.len() > 128 {
            return Err(ApiError::invalid("`eventType` must be 1 to 128 bytes"));
        }
        if let Some(s) = v::opt_str(body, "severity")? {
            if !matches!(s, "info" | "warn" | "error") {
                return Err(ApiError::invalid(
                    "`severity` must be one of info, warn, error",
                ));
            }
        }
        let _timestamp = v::req_u64(body, "timestamp")
            .map_err(|e| ApiError::invalid(format!("{} (Unix milliseconds)", e.message)))?;
        v::opt_obj(body, "data")?;
        v::opt_str(body, "appId")?;
        let now_ms = self.now_ms();
        let id = new_uuid();
        let t = self.device_thing(name)?;
        let mut stored = body.clone();
        stored.insert("eventId".into(), json!(id));
        stored.insert("receivedAt".into(), json!(now_ms));
        if t.events.len() >= EVENTS_LIMIT {
            t.events.pop_front();
        }
        t.events.push_back(Value::Object(stored));
        Ok(json!({"eventId": id, "thingName": name, "receivedAt": now_ms}))
    }

    /// `POST /api/v1/thing-datas/command/response`.
    pub fn command_response(&mut self, body: &Obj) -> Result<Value, ApiError> {
        let name = v::thing_name(body)?;
        let id = v::req_str(body, "executionId")?;
        if id.is_empty() || id.len() > v::MAX_ID_BYTES {
            return Err(ApiError::invalid("`executionId` must be 1 to 128 bytes"));
        }
        let status_s = v::req_str(body, "status")?;
        let status = CmdStatus::parse_device(status_s).ok_or_else(|| {
            ApiError::invalid("`status` must be one of SUCCEEDED, FAILED, REJECTED, IN_PROGRESS")
        })?;
        let result = match body.get("result") {
            None | Some(Value::Null) => None,
            Some(r @ Value::Object(_)) => Some(r),
            Some(_) => return Err(ApiError::invalid("`result` must be a JSON object")),
        };
        let timestamp = v::opt_u64(body, "timestamp")?;
        let now = self.now();
        let t = self.device_thing(name)?;
        let cmd = t.commands.get_mut(id).ok_or_else(|| {
            ApiError::not_found(format!("no command execution `{id}` for thing `{name}`"))
        })?;
        cmd.expire(now);
        cmd.respond(now, status, result, timestamp)?;
        Ok(json!({"executionId": id, "thingName": name, "status": cmd.status.as_str()}))
    }

    fn expire_all(&mut self) {
        let now = self.now();
        for job in self.jobs.values_mut() {
            let mut changed = false;
            for e in job.executions.values_mut() {
                changed |= e.expire(now);
            }
            if changed {
                job.refresh_status();
            }
        }
        for t in self.things.values_mut() {
            for c in t.commands.values_mut() {
                c.expire(now);
            }
        }
    }

    /// Executions of `thing` with `status`, oldest first.
    fn executions_of(&self, thing: &str, status: ExecStatus) -> Vec<&Execution> {
        let mut out: Vec<&Execution> = self
            .jobs
            .values()
            .filter_map(|j| j.executions.get(thing))
            .filter(|e| e.status == status)
            .collect();
        out.sort_by_key(|e| (e.started_at.unwrap_or(e.queued_at), e.queued_at, e.seq));
        out
    }

    /// `POST /api/v1/thing-datas/jobs/get`.
    pub fn jobs_get(&mut self, body: &Obj) -> Result<Value, ApiError> {
        let name = v::thing_name(body)?;
        let token = v::client_token(body)?;
        self.device_thing(name)?;
        self.expire_all();
        let summaries = |s| {
            self.executions_of(name, s)
                .into_iter()
                .map(Execution::summary_json)
                .collect::<Vec<_>>()
        };
        Ok(with_token(
            json!({"inProgressJobs": summaries(ExecStatus::InProgress), "queuedJobs": summaries(ExecStatus::Queued)}),
            token,
        ))
    }

    /// `POST /api/v1/thing-datas/jobs/start-next`.
    pub fn jobs_start_next(&mut self, body: &Obj) -> Result<Value, ApiError> {
        let name = v::thing_name(body)?;
        let token = v::client_token(body)?;
        let details = v::opt_obj(body, "statusDetails")?;
        let step = step_timeout(body)?;
        self.device_thing(name)?;
        self.expire_all();
        let now = self.now();
        let pick = self
            .executions_of(name, ExecStatus::InProgress)
            .first()
            .or(self.executions_of(name, ExecStatus::Queued).first())
            .map(|e| e.job_id.clone());
        let Some(job_id) = pick else {
            return Ok(with_token(json!({}), token));
        };
        let job = self.jobs.get_mut(&job_id).expect("picked from jobs");
        let default_timeout = job.in_progress_timeout_min;
        let e = job
            .executions
            .get_mut(name)
            .expect("picked from executions");
        if e.status == ExecStatus::Queued {
            e.start(now, details, step.or(default_timeout));
        }
        let exec = e.full_json(Some(&job.document), now);
        Ok(with_token(json!({"execution": exec}), token))
    }

    /// `POST /api/v1/thing-datas/jobs/{jobId}/get`.
    pub fn job_describe(&mut self, job_id: &str, body: &Obj) -> Result<Value, ApiError> {
        v::check_identifier("jobId", job_id)?;
        let name = v::thing_name(body)?;
        let token = v::client_token(body)?;
        let include_doc = v::opt_bool(body, "includeJobDocument")?.unwrap_or(true);
        self.device_thing(name)?;
        self.expire_all();
        let now = self.now();
        let (job, e) = self.execution(job_id, name)?;
        Ok(with_token(
            json!({"execution": e.full_json(include_doc.then_some(&job.document), now)}),
            token,
        ))
    }

    fn execution(&self, job_id: &str, thing: &str) -> Result<(&Job, &Execution), ApiError> {
        self.jobs
            .get(job_id)
            .and_then(|j| j.executions.get(thing).map(|e| (j, e)))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "thing `{thing}` has no execution of job `{job_id}`"
                ))
            })
    }

    /// `POST /api/v1/thing-datas/jobs/{jobId}/update`.
    pub fn job_update(&mut self, job_id: &str, body: &Obj) -> Result<Value, ApiError> {
        v::check_identifier("jobId", job_id)?;
        let name = v::thing_name(body)?;
        let token = v::client_token(body)?;
        let status_s = v::req_str(body, "status")?;
        let status = ExecStatus::parse_device(status_s).ok_or_else(|| {
            ApiError::invalid("`status` must be one of IN_PROGRESS, SUCCEEDED, FAILED, REJECTED")
        })?;
        let details = v::opt_obj(body, "statusDetails")?;
        let expected = v::opt_u64(body, "expectedVersion")?;
        let step = step_timeout(body)?;
        v::opt_bool(body, "includeJobExecutionState")?;
        v::opt_bool(body, "includeJobDocument")?;
        self.device_thing(name)?;
        self.expire_all();
        self.execution(job_id, name)?;
        let now = self.now();
        let job = self.jobs.get_mut(job_id).expect("checked above");
        let default_timeout = job.in_progress_timeout_min;
        let e = job.executions.get_mut(name).expect("checked above");
        let first_start = e.status == ExecStatus::Queued;
        let step = if first_start {
            step.or(default_timeout)
        } else {
            step
        };
        e.update(now, status, details, expected, step)?;
        let state = e.state_json();
        job.refresh_status();
        Ok(with_token(
            json!({"executionState": state, "jobDocument": job.document, "timestamp": now}),
            token,
        ))
    }

    // ---------------------------------------------------------------- admin: commands and jobs

    /// Creates a command execution (registering the thing if needed).
    pub fn create_command(
        &mut self,
        thing: &str,
        action: &str,
        params: Value,
        ttl: u64,
        execution_id: Option<&str>,
    ) -> Result<String, ApiError> {
        let now = self.now();
        let id = execution_id.map(str::to_owned).unwrap_or_else(new_uuid);
        let t = self.admin_thing(thing);
        if t.commands.contains_key(&id) {
            return Err(ApiError::conflict(
                "ResourceAlreadyExists",
                format!("command execution `{id}` already exists"),
            ));
        }
        t.commands.insert(
            id.clone(),
            Command::new(&id, thing, action, params, ttl, now),
        );
        Ok(id)
    }

    /// A command execution as JSON.
    pub fn command(&mut self, thing: &str, id: &str) -> Option<Value> {
        self.expire_all();
        self.things
            .get(thing)?
            .commands
            .get(id)
            .map(Command::to_json)
    }

    /// Every command execution of a thing.
    pub fn commands(&mut self, thing: &str) -> Option<Vec<Value>> {
        self.expire_all();
        Some(
            self.things
                .get(thing)?
                .commands
                .values()
                .map(Command::to_json)
                .collect(),
        )
    }

    /// Creates a job with one QUEUED execution per target (registering targets if needed).
    pub fn create_job(
        &mut self,
        document: Value,
        things: &[&str],
        description: Option<&str>,
        job_id: Option<&str>,
        in_progress_timeout_min: Option<u64>,
    ) -> Result<String, ApiError> {
        let id = job_id.map(str::to_owned).unwrap_or_else(new_uuid);
        if self.jobs.contains_key(&id) {
            return Err(ApiError::conflict(
                "ResourceAlreadyExists",
                format!("job `{id}` already exists"),
            ));
        }
        let now = self.now();
        let seq = self.next_seq();
        let mut executions = BTreeMap::new();
        for t in things {
            self.register(t);
            let s = self.next_seq();
            executions.insert((*t).to_owned(), Execution::new(&id, t, now, s));
        }
        self.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                document,
                description: description.map(str::to_owned),
                created_at: now,
                status: JobStatus::InProgress,
                in_progress_timeout_min,
                targets: things.iter().map(|t| (*t).to_owned()).collect(),
                executions,
                seq,
            },
        );
        Ok(id)
    }

    /// A job as JSON.
    pub fn job(&mut self, job_id: &str) -> Option<Value> {
        self.expire_all();
        self.jobs.get(job_id).map(Job::to_json)
    }

    /// Every job, oldest first.
    pub fn job_list(&mut self) -> Vec<Value> {
        self.expire_all();
        let mut jobs: Vec<&Job> = self.jobs.values().collect();
        jobs.sort_by_key(|j| j.seq);
        jobs.into_iter().map(Job::to_json).collect()
    }

    /// One execution with its job document.
    pub fn job_execution(&mut self, job_id: &str, thing: &str) -> Option<Value> {
        self.expire_all();
        let now = self.now();
        self.execution(job_id, thing)
            .ok()
            .map(|(j, e)| e.full_json(Some(&j.document), now))
    }

    /// Cancels a job: every non-terminal execution becomes CANCELED. False if unknown.
    pub fn cancel_job(&mut self, job_id: &str) -> bool {
        self.expire_all();
        let now = self.now();
        match self.jobs.get_mut(job_id) {
            Some(j) => {
                j.cancel(now);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests;
