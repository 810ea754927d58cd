//! The device workflows in C: shadow sync, the job agent and the resumable download. Each
//! converts its arguments, wraps the C callbacks in Rust closures and delegates to
//! `crate::workflows` through `workflow_call`.
//!
//! Callback rules, stated once here and in each function's documentation:
//! - callbacks run on the calling thread, inside the call, one at a time;
//! - the strings passed to a callback are NUL-terminated and valid only until it returns;
//! - a callback may call other `fleets_*` functions, with the same client too (a job
//!   handler typically calls `fleets_download`); it must not free the client, and must not
//!   start the same workflow for the same thing and state (no recursion into
//!   `fleets_job_agent_run_once` for its own state directory);
//! - a callback must return normally: no `longjmp` out of it, no C++ exception through it.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;

use crate::error::{Error, ErrorCode, Result};
use crate::ffi::boundary::{handle, output, required_fn, required_str, workflow_call};
use crate::ffi::types::{fleets_client_t, fleets_result};
use crate::workflows::download::DownloadOptions;
use crate::workflows::job_agent::{
    JobAgent, JobOutcome, JobStep, StepResult, MAX_JOB_DETAILS_BYTES,
};

/// Called by `fleets_shadow_sync` with one top-level property of the shadow's `delta`: its
/// `key` and its value as JSON text (`value_json`: a number, string, object...; for an
/// object, only the members that differ from the reported state). Return true when the
/// device applied the value (it is reported back), false when it did not (it is offered
/// again by the next sync). Both strings are valid until the callback returns.
pub type fleets_delta_fn = Option<
    unsafe extern "C" fn(key: *const c_char, value_json: *const c_char, user: *mut c_void) -> bool,
>;

/// Called by `fleets_download` when the transfer starts and after every chunk written:
/// `received` bytes of `total` are in the partial file (`total` is 0 when the server did not
/// say). Return true to go on, false to stop the download with `FLEETS_ERR_CANCELED` (the
/// partial file stays, and the next call resumes it).
pub type fleets_progress_fn =
    Option<unsafe extern "C" fn(received: u64, total: u64, user: *mut c_void) -> bool>;

/// `fleets_download` flag: send the API key and secret to the URL's host even when it is not
/// the configured endpoint's (scheme, host and port). They are never sent to a host reached
/// through a redirect.
pub const FLEETS_DOWNLOAD_SEND_CREDENTIALS: u32 = 1;
/// `fleets_download` flag: fail with `FLEETS_ERR_RANGE_NOT_SUPPORTED` instead of starting
/// over from byte 0 when a resumed download meets a server that sends the whole file.
pub const FLEETS_DOWNLOAD_NO_RESTART: u32 = 2;

/// What a job handler says after a step (`fleets_job_handler_fn`).
pub type fleets_job_step_result = u32;
/// The step is done; the agent records it, reports progress and runs the next step now.
pub const FLEETS_JOB_STEP_NEXT: fleets_job_step_result = 1;
/// The step is done; the next step is disruptive (e.g. a reboot) and runs only when the gate
/// of `fleets_job_handlers_t` allows it (now or on a later run).
pub const FLEETS_JOB_STEP_NEXT_GATED: fleets_job_step_result = 2;
/// The job is done: the agent reports `SUCCEEDED` with the step's details.
pub const FLEETS_JOB_STEP_SUCCEEDED: fleets_job_step_result = 3;
/// The job failed: the agent reports `FAILED` with the step's details (say why).
pub const FLEETS_JOB_STEP_FAILED: fleets_job_step_result = 4;
/// This device will not do the job (a bad document): the agent reports `REJECTED`.
pub const FLEETS_JOB_STEP_REJECTED: fleets_job_step_result = 5;
/// The step could not run now (network down, busy): it runs again on a later
/// `fleets_job_agent_run_once`, with a higher attempt number. It counts as an attempt.
pub const FLEETS_JOB_STEP_RETRY: fleets_job_step_result = 6;

/// Size of the buffer a handler may write status details into (`details_cap`): 1 KiB of
/// JSON plus the NUL.
pub const FLEETS_JOB_DETAILS_CAP: usize = 1025;

/// The step a job handler is asked to run (`fleets_job_handler_fn`). Every pointer is valid
/// only until the handler returns.
#[repr(C)]
pub struct fleets_job_step {
    /// The client the agent runs with (for `fleets_download` and other calls).
    pub client: *const fleets_client_t,
    /// The thing the agent works for.
    pub thing_name: *const c_char,
    /// The job execution's job id.
    pub job_id: *const c_char,
    /// The job document's `action`, the one the handler was registered for.
    pub action: *const c_char,
    /// The whole job document, a JSON object (read parameters with `fleets_json_get_*`).
    pub document_json: *const c_char,
    /// The step to run: 0, 1, 2...
    pub step: u32,
    /// 1 the first time this step runs; more when it was started before and did not finish
    /// (the process died, the device rebooted, the step returned `FLEETS_JOB_STEP_RETRY`):
    /// the step may have run partly and must cope with that.
    pub attempt: u32,
    /// Where the handler may write status details for the update that follows (the
    /// progress update, or the final status): a NUL-terminated JSON object. It holds "" on
    /// entry; "" means none. NULL for the gate.
    pub details: *mut c_char,
    /// Size of `details` in bytes (`FLEETS_JOB_DETAILS_CAP`; 0 for the gate).
    pub details_cap: usize,
}

/// A job step; see `fleets_job_step`.
pub type fleets_job_step_t = fleets_job_step;

/// Runs one step of a job whose document's `action` it was registered for, and returns a
/// `FLEETS_JOB_STEP_*` value (any other value ends the job `FAILED`). `step` and its strings
/// are valid until it returns.
pub type fleets_job_handler_fn = Option<
    unsafe extern "C" fn(step: *mut fleets_job_step_t, user: *mut c_void) -> fleets_job_step_result,
>;

/// Asked before a step that the previous one marked disruptive (`FLEETS_JOB_STEP_NEXT_GATED`):
/// return true to run it now, false to defer it (the job stays `IN_PROGRESS`;
/// `fleets_job_agent_run_once` returns `FLEETS_JOB_OUTCOME_DEFERRED` and asks again on its
/// next run). `step->details` is NULL.
pub type fleets_job_gate_fn =
    Option<unsafe extern "C" fn(step: *const fleets_job_step_t, user: *mut c_void) -> bool>;

/// One entry of the handler table: jobs whose document has `"action": action` go to `run`,
/// which gets `user` back.
#[repr(C)]
pub struct fleets_job_handler {
    /// The action (required, NUL-terminated).
    pub action: *const c_char,
    /// The handler (required).
    pub run: fleets_job_handler_fn,
    /// Passed back to `run`.
    pub user: *mut c_void,
}

/// A handler table entry; see `fleets_job_handler`.
pub type fleets_job_handler_t = fleets_job_handler;

/// What `fleets_job_agent_run_once` works with: the handlers, the optional gate and limits.
/// Read during the call only.
#[repr(C)]
pub struct fleets_job_handlers {
    /// `count` entries (may be NULL when `count` is 0: every job is then `REJECTED`).
    pub handlers: *const fleets_job_handler_t,
    /// Number of entries. A later entry for the same action replaces an earlier one.
    pub count: usize,
    /// The gate for disruptive steps; NULL runs them at once.
    pub gate: fleets_job_gate_fn,
    /// Passed back to `gate`.
    pub gate_user: *mut c_void,
    /// Minutes the server gives a claimed job before it times it out (`TIMED_OUT`), counted
    /// from the claim (start-next's `stepTimeoutInMinutes`); 0 leaves it to the server.
    pub job_timeout_minutes: u32,
    /// Starts of one step at most (crashes and retries included) before the job is reported
    /// `FAILED`; 0 means 3.
    pub max_attempts: u32,
}

/// The handler table; see `fleets_job_handlers`.
pub type fleets_job_handlers_t = fleets_job_handlers;

/// How `fleets_job_agent_run_once` ended (`fleets_job_outcome_t.kind`).
pub type fleets_job_outcome_kind = u32;
/// No job was pending.
pub const FLEETS_JOB_OUTCOME_NONE: fleets_job_outcome_kind = 0;
/// The job ended `SUCCEEDED` (reported now, or found so at the server).
pub const FLEETS_JOB_OUTCOME_SUCCEEDED: fleets_job_outcome_kind = 1;
/// The job ended `FAILED`.
pub const FLEETS_JOB_OUTCOME_FAILED: fleets_job_outcome_kind = 2;
/// The job ended `REJECTED` (e.g. no handler for its action).
pub const FLEETS_JOB_OUTCOME_REJECTED: fleets_job_outcome_kind = 3;
/// The next step waits for the gate; the job stays `IN_PROGRESS` and resumes on a later run.
pub const FLEETS_JOB_OUTCOME_DEFERRED: fleets_job_outcome_kind = 4;
/// A step asked to be run again later (`FLEETS_JOB_STEP_RETRY`); the job stays `IN_PROGRESS`.
pub const FLEETS_JOB_OUTCOME_RETRY_LATER: fleets_job_outcome_kind = 5;
/// The job was canceled, timed out or removed at the server while this device held it; its
/// local state was dropped.
pub const FLEETS_JOB_OUTCOME_ABANDONED: fleets_job_outcome_kind = 6;

/// What `fleets_job_agent_run_once` did; written only when it returns `FLEETS_OK`.
#[repr(C)]
pub struct fleets_job_outcome {
    /// A `FLEETS_JOB_OUTCOME_*` value.
    pub kind: fleets_job_outcome_kind,
    /// The step reached: the next to run, or the last one run for a finished job.
    pub step: u32,
    /// The job had been claimed by an earlier run (it was in the state directory).
    pub resumed: bool,
    /// The job id, NUL-terminated ("" with `FLEETS_JOB_OUTCOME_NONE`). Job ids are at most
    /// 128 bytes.
    pub job_id: [c_char; 129],
}

/// The outcome of a job agent run; see `fleets_job_outcome`.
pub type fleets_job_outcome_t = fleets_job_outcome;

const _: () = assert!(FLEETS_JOB_DETAILS_CAP == MAX_JOB_DETAILS_BYTES + 1);

fn c_string(text: &str, what: &str) -> Result<CString> {
    CString::new(text).map_err(|_| {
        Error::new(
            ErrorCode::BadResponse,
            format!("{what} contains a NUL character and cannot be passed to C"),
        )
    })
}

/// Syncs the thing's desired state into the device: reads the shadow and, when its `delta`
/// is not empty and its `version` is newer than `*applied_version`, calls `on_delta` for
/// each top-level delta property (keys in sorted order), reports the accepted values with
/// the shadow's version, and on `FLEETS_ERR_CONFLICT` (the desired state changed meanwhile)
/// reads the shadow again and offers the new delta, 4 reads at most.
///
/// - `client`, `thing_name`, `on_delta` and `applied_version` are required.
/// - `*applied_version` (in/out): the version of the last shadow whose values the device
///   applied, 0 at first. A shadow that is not newer is never offered (a stale read must not
///   take the device back). Updated only on `FLEETS_OK`; keep it across restarts (or use
///   `fleets_shadow_sync_with_state_file`).
/// - A value may be offered again: a declined one on the next sync, and any one after a
///   conflict, a failed report or a crash. Applying a desired value must be idempotent.
///   A key that holds a NUL character cannot be passed to C and counts as declined.
///
/// Errors: those of `fleets_shadow_get` and `fleets_shadow_report`; `FLEETS_ERR_CONFLICT`
/// when the desired state kept changing; `FLEETS_ERR_BAD_RESPONSE` for a shadow without a
/// version. After a transport or HTTP error, `fleets_last_http_status` and
/// `fleets_last_response` describe the request that failed.
///
/// `on_delta` runs on the calling thread, inside this call; it may call other `fleets_*`
/// functions (not `fleets_client_free`). The strings it gets are valid until it returns.
/// Thread-safe like the other calls; do not run two syncs for one thing at once.
///
/// # Safety
/// `client` is NULL or a live client; `thing_name` is NULL or NUL-terminated; `on_delta` is
/// NULL or a function of the documented type; `applied_version` is NULL or valid for reads
/// and writes of one `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn fleets_shadow_sync(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    on_delta: fleets_delta_fn,
    user: *mut c_void,
    applied_version: *mut u64,
) -> fleets_result {
    workflow_call(|| {
        // SAFETY: forwarded from this function's contract.
        let (client, thing_name, applied_out) = unsafe {
            (
                handle(client, "client")?,
                required_str(thing_name, "thing_name")?,
                output(applied_version, "applied_version")?,
            )
        };
        let on_delta = required_fn(on_delta, "on_delta")?;
        let mut applied = *applied_out;
        client
            .inner
            .shadow_sync(thing_name, &mut applied, delta_trampoline(on_delta, user))?;
        *applied_out = applied;
        Ok(())
    })
}

/// `fleets_shadow_sync` with the applied version kept in the file `state_path` (a small JSON
/// file replaced atomically and synced; a missing file means 0; written when the version
/// changes). `applied_version` (NULL = not wanted) receives the version now applied.
///
/// Errors: those of `fleets_shadow_sync`; `FLEETS_ERR_LOCAL_FILE` for a file that cannot be read
/// or is not such a state file; `FLEETS_ERR_DISK_FULL` or `FLEETS_ERR_LOCAL_FILE` when it cannot
/// be written (the sync itself happened). Callback rules and thread-safety as for
/// `fleets_shadow_sync`; one sync per state file at a time.
///
/// # Safety
/// As for `fleets_shadow_sync`; `state_path` is NULL or NUL-terminated; `applied_version` is
/// NULL or valid for one `uint64_t` write.
#[no_mangle]
pub unsafe extern "C" fn fleets_shadow_sync_with_state_file(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    on_delta: fleets_delta_fn,
    user: *mut c_void,
    state_path: *const c_char,
    applied_version: *mut u64,
) -> fleets_result {
    workflow_call(|| {
        // SAFETY: forwarded from this function's contract.
        let (client, thing_name, state_path) = unsafe {
            (
                handle(client, "client")?,
                required_str(thing_name, "thing_name")?,
                required_str(state_path, "state_path")?,
            )
        };
        let on_delta = required_fn(on_delta, "on_delta")?;
        let report = client.inner.shadow_sync_with_state_file(
            thing_name,
            Path::new(state_path),
            delta_trampoline(on_delta, user),
        )?;
        // SAFETY: a non-NULL `applied_version` is valid for one write (this function's contract).
        if let Some(out) = unsafe { applied_version.as_mut() } {
            *out = report.applied_version;
        }
        Ok(())
    })
}

type DeltaFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut c_void) -> bool;

fn delta_trampoline(on_delta: DeltaFn, user: *mut c_void) -> impl FnMut(&str, &str) -> bool {
    move |key, value| {
        let (Ok(key), Ok(value)) = (CString::new(key), CString::new(value)) else {
            return false;
        };
        // SAFETY: the caller's callback (contract of the export), with NUL-terminated strings
        // that live until it returns, and the caller's own `user`.
        unsafe { on_delta(key.as_ptr(), value.as_ptr(), user) }
    }
}

/// Runs the thing's jobs one at a time as an agent that survives crashes and reboots:
/// resumes the job recorded in `state_dir`, or claims the next pending one (start-next),
/// dispatches it on its document's `action` to the matching handler, and runs it step by
/// step (0, 1, 2...) as far as it goes now.
///
/// - After each step the agent records it and sends `IN_PROGRESS` with the handler's details
///   plus `"agentStep"` (the next step); the final `SUCCEEDED`/`FAILED`/`REJECTED` carries the
///   handler's details. Every update carries the execution's `expectedVersion`; a conflict
///   is resolved by reading the execution again.
/// - A job whose action has no handler, or whose document has no `action` string, is
///   `REJECTED` with `{"reason": ...}`.
/// - `state_dir` (an existing directory that survives reboots) holds
///   `fleets-job-<thing_name>.json`, replaced atomically and synced: after a claim, before
///   each step (its attempt number), after each step (the next step) and before the final
///   status. A run that finds it resumes that job (after `fleets_jobs_describe`: a job
///   canceled or timed out meanwhile is `FLEETS_JOB_OUTCOME_ABANDONED`) and never claims it
///   twice; a step recorded as done never runs again; a step that was started and not
///   finished runs again with `attempt` > 1; after `max_attempts` starts the job is
///   `FAILED`; a recorded final status is sent again without running anything.
/// - `*outcome` receives what happened, on `FLEETS_OK` only: `FLEETS_OK` means the agent did
///   its work, whatever the job's outcome.
///
/// `client`, `thing_name`, `handlers`, `state_dir` and `outcome` are required; every
/// `handlers->handlers[i]` needs an `action` and a `run`. Errors: `FLEETS_ERR_NULL_ARGUMENT`,
/// `FLEETS_ERR_INVALID_ARGUMENT` (thing name), `FLEETS_ERR_LOCAL_FILE` or `FLEETS_ERR_DISK_FULL`
/// (the state directory), `FLEETS_ERR_INVALID_JSON` (a handler wrote details that are not a
/// JSON object, or no NUL within `details_cap`; the step counts as attempted), and those of
/// the jobs calls (the state stays as last written; the next run picks up from there).
///
/// Handlers and the gate run on the calling thread, inside this call; they may call other
/// `fleets_*` functions with the same client (e.g. `fleets_download`), but not
/// `fleets_client_free`, nor `fleets_job_agent_run_once` for the same `state_dir`. Run one
/// agent per (`state_dir`, thing) at a time; different things may run on different threads.
///
/// # Safety
/// `client` is NULL or a live client; strings are NULL or NUL-terminated; `handlers` is NULL
/// or a valid table whose `handlers` points to `count` entries; `outcome` is NULL or valid
/// for one `fleets_job_outcome_t` write.
#[no_mangle]
pub unsafe extern "C" fn fleets_job_agent_run_once(
    client: *const fleets_client_t,
    thing_name: *const c_char,
    handlers: *const fleets_job_handlers_t,
    state_dir: *const c_char,
    outcome: *mut fleets_job_outcome_t,
) -> fleets_result {
    workflow_call(|| {
        // SAFETY: forwarded from this function's contract.
        let (c_client, thing, table, state_dir, outcome) = unsafe {
            (
                handle(client, "client")?,
                required_str(thing_name, "thing_name")?,
                handle(handlers, "handlers")?,
                required_str(state_dir, "state_dir")?,
                output(outcome, "outcome")?,
            )
        };
        let entries: &[fleets_job_handler_t] = if table.count == 0 {
            &[]
        } else if table.handlers.is_null() {
            return Err(Error::new(
                ErrorCode::NullArgument,
                "handlers->handlers is NULL with count > 0",
            ));
        } else {
            // SAFETY: the caller guarantees `count` valid entries at `handlers`.
            unsafe { std::slice::from_raw_parts(table.handlers, table.count) }
        };
        let mut agent = JobAgent::new(thing, Path::new(state_dir))
            .job_timeout_minutes(table.job_timeout_minutes)
            .max_attempts(table.max_attempts);
        for (i, entry) in entries.iter().enumerate() {
            // SAFETY: entries come from the caller's valid table; `action` is NUL-terminated.
            let action = unsafe { required_str(entry.action, &format!("handlers[{i}].action")) }?;
            let run = required_fn(entry.run, &format!("handlers[{i}].run"))?;
            agent = agent.handler(action, handler_trampoline(run, entry.user, client));
        }
        if let Some(gate) = table.gate {
            agent = agent.gate(gate_trampoline(gate, table.gate_user, client));
        }
        let run = agent.run_once(&c_client.inner)?;
        outcome.kind = match run.outcome {
            JobOutcome::NoJob => FLEETS_JOB_OUTCOME_NONE,
            JobOutcome::Succeeded => FLEETS_JOB_OUTCOME_SUCCEEDED,
            JobOutcome::Failed => FLEETS_JOB_OUTCOME_FAILED,
            JobOutcome::Rejected => FLEETS_JOB_OUTCOME_REJECTED,
            JobOutcome::Deferred => FLEETS_JOB_OUTCOME_DEFERRED,
            JobOutcome::RetryLater => FLEETS_JOB_OUTCOME_RETRY_LATER,
            JobOutcome::Abandoned => FLEETS_JOB_OUTCOME_ABANDONED,
        };
        outcome.step = run.step;
        outcome.resumed = run.resumed;
        outcome.job_id = [0; 129];
        let id = run.job_id.unwrap_or_default();
        for (slot, byte) in outcome.job_id.iter_mut().zip(id.bytes().take(128)) {
            *slot = byte as c_char;
        }
        Ok(())
    })
}

type HandlerFn =
    unsafe extern "C" fn(*mut fleets_job_step_t, *mut c_void) -> fleets_job_step_result;
type GateFn = unsafe extern "C" fn(*const fleets_job_step_t, *mut c_void) -> bool;

/// The C strings of a step, alive while its callback runs.
struct StepStrings {
    thing_name: CString,
    job_id: CString,
    action: CString,
    document: CString,
}

impl StepStrings {
    fn of(step: &JobStep<'_>) -> Result<StepStrings> {
        Ok(StepStrings {
            thing_name: c_string(step.thing_name, "the thing name")?,
            job_id: c_string(step.job_id, "the job id")?,
            action: c_string(step.action, "the action")?,
            document: c_string(step.document_json, "the job document")?,
        })
    }

    fn step(
        &self,
        client: *const fleets_client_t,
        step: &JobStep<'_>,
        details: &mut [u8],
    ) -> fleets_job_step_t {
        fleets_job_step_t {
            client,
            thing_name: self.thing_name.as_ptr(),
            job_id: self.job_id.as_ptr(),
            action: self.action.as_ptr(),
            document_json: self.document.as_ptr(),
            step: step.step,
            attempt: step.attempt,
            details: if details.is_empty() {
                std::ptr::null_mut()
            } else {
                details.as_mut_ptr().cast()
            },
            details_cap: details.len(),
        }
    }
}

fn handler_trampoline(
    run: HandlerFn,
    user: *mut c_void,
    client: *const fleets_client_t,
) -> impl FnMut(&mut JobStep<'_>) -> StepResult {
    move |step| {
        let strings = match StepStrings::of(step) {
            Ok(strings) => strings,
            Err(error) => {
                step.details = Some(reason_json(error.message()));
                return StepResult::Failed;
            }
        };
        let mut details = [0u8; FLEETS_JOB_DETAILS_CAP];
        let mut c_step = strings.step(client, step, &mut details);
        // SAFETY: the caller's handler (contract of the export) with a step whose pointers
        // live until it returns, and the caller's own `user`.
        let result = unsafe { run(&mut c_step, user) };
        step.details = match details.iter().position(|&b| b == 0) {
            Some(0) => None,
            Some(end) => Some(
                std::str::from_utf8(&details[..end])
                    .map(str::to_owned)
                    .unwrap_or_else(|_| "(details are not UTF-8)".to_owned()),
            ),
            None => Some("(details are not NUL-terminated within details_cap)".to_owned()),
        };
        match result {
            FLEETS_JOB_STEP_NEXT => StepResult::Next,
            FLEETS_JOB_STEP_NEXT_GATED => StepResult::NextGated,
            FLEETS_JOB_STEP_SUCCEEDED => StepResult::Succeeded,
            FLEETS_JOB_STEP_FAILED => StepResult::Failed,
            FLEETS_JOB_STEP_REJECTED => StepResult::Rejected,
            FLEETS_JOB_STEP_RETRY => StepResult::Retry,
            other => {
                step.details = Some(reason_json(&format!(
                    "the handler returned {other}, which is not a fleets_job_step_result"
                )));
                StepResult::Failed
            }
        }
    }
}

fn gate_trampoline(
    gate: GateFn,
    user: *mut c_void,
    client: *const fleets_client_t,
) -> impl FnMut(&JobStep<'_>) -> bool {
    move |step| {
        let Ok(strings) = StepStrings::of(step) else {
            return false;
        };
        let c_step = strings.step(client, step, &mut []);
        // SAFETY: the caller's gate (contract of the export) with a step whose pointers live
        // until it returns, and the caller's own `user`.
        unsafe { gate(&c_step, user) }
    }
}

fn reason_json(text: &str) -> String {
    format!(
        "{{\"reason\":{}}}",
        serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
    )
}

/// Downloads `url` into `dest_path`, verified against `expected_sha256_hex` (64 hex digits),
/// resuming an earlier interrupted download of the same content.
///
/// - Uses the client's settings: its TLS trust and client certificate (verification cannot
///   be turned off), proxy (never for a loopback host), connect timeout and retry policy.
///   `url` is `https://` (`http://` only for a loopback host), without credentials in it.
///   Redirects are followed (5 at most, never from `https://` to `http://`).
/// - Credentials (the API key and secret) are sent only when `url` has the configured
///   endpoint's scheme, host and port, or with `FLEETS_DOWNLOAD_SEND_CREDENTIALS` to the
///   host of `url` itself; never to a host reached through a redirect.
/// - The bytes go to `<dest_path>.part`, with `<dest_path>.part.meta` recording the expected
///   hash and the server's `ETag`/`Last-Modified`. After an interruption (a lost connection,
///   a crash, `FLEETS_ERR_CANCELED`) the next call re-reads the partial file and asks for
///   the rest with `Range` and `If-Range`. A server that sends the whole file instead makes
///   the download start over (or fail with `FLEETS_ERR_RANGE_NOT_SUPPORTED` under
///   `FLEETS_DOWNLOAD_NO_RESTART`).
/// - The SHA-256 is checked before the partial file is synced, renamed over `dest_path` and
///   the directory synced: `dest_path` holds its old content or the complete verified new
///   one, never a mix. A mismatch after a resume downloads the file once more from the
///   start; a mismatch of a fresh download is `FLEETS_ERR_HASH_MISMATCH` (the partial file
///   is removed, `dest_path` untouched). When `dest_path` already has the expected content,
///   nothing is fetched.
/// - Memory: one 64 KiB buffer, whatever the size of the file. Each read must make progress
///   within the client's request timeout; the transfer as a whole has no deadline. Lost
///   connections and HTTP 429/502/503/504 are resumed within the call, up to the client's
///   retry attempts in a row without progress.
/// - `progress` (NULL = none) is called when the transfer starts and after every 64 KiB
///   written; returning false stops with `FLEETS_ERR_CANCELED`.
///
/// `client`, `url`, `expected_sha256_hex` and `dest_path` are required; `flags` is 0 or a
/// combination of `FLEETS_DOWNLOAD_*` (other bits: `FLEETS_ERR_INVALID_ARGUMENT`). Errors:
/// argument errors (nothing sent), transport and HTTP errors (`fleets_last_http_status` as
/// for the calls), `FLEETS_ERR_HASH_MISMATCH`, `FLEETS_ERR_RANGE_NOT_SUPPORTED`,
/// `FLEETS_ERR_DISK_FULL` (the partial file stays: free space and call again),
/// `FLEETS_ERR_LOCAL_FILE` (the message names the file), `FLEETS_ERR_CANCELED`.
///
/// `progress` runs on the calling thread, inside this call, and may call other `fleets_*`
/// functions. Thread-safe like the other calls; one download per `dest_path` at a time.
///
/// # Safety
/// `client` is NULL or a live client; strings are NULL or NUL-terminated; `progress` is NULL
/// or a function of the documented type.
#[no_mangle]
pub unsafe extern "C" fn fleets_download(
    client: *const fleets_client_t,
    url: *const c_char,
    expected_sha256_hex: *const c_char,
    dest_path: *const c_char,
    flags: u32,
    progress: fleets_progress_fn,
    user: *mut c_void,
) -> fleets_result {
    workflow_call(|| {
        // SAFETY: forwarded from this function's contract.
        let (client, url, sha, dest) = unsafe {
            (
                handle(client, "client")?,
                required_str(url, "url")?,
                required_str(expected_sha256_hex, "expected_sha256_hex")?,
                required_str(dest_path, "dest_path")?,
            )
        };
        let known = FLEETS_DOWNLOAD_SEND_CREDENTIALS | FLEETS_DOWNLOAD_NO_RESTART;
        if flags & !known != 0 {
            return Err(Error::invalid_argument(format!(
                "flags has unknown bits 0x{:x}",
                flags & !known
            )));
        }
        let options = DownloadOptions {
            send_credentials: flags & FLEETS_DOWNLOAD_SEND_CREDENTIALS != 0,
            no_restart: flags & FLEETS_DOWNLOAD_NO_RESTART != 0,
        };
        client.inner.download(
            url,
            sha,
            Path::new(dest),
            options,
            |received, total| match progress {
                // SAFETY: the caller's callback (contract of the export) and its `user`.
                Some(f) => unsafe { f(received, total, user) },
                None => true,
            },
        )?;
        Ok(())
    })
}
