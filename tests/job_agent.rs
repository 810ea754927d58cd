//! `JobAgent::run_once` against the emulator: dispatch, progress, final statuses with the
//! expected version, the gate, and resuming after crashes (a panicking handler stands for a
//! process that died mid-step: the state file is all that survives).

mod common;

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use common::{client, emulator, THING};
use fleets::{ErrorCode, ExecutionStatus, JobAgent, JobOutcome, StepResult};
use fleets_emulator::FaultRule;
use serde_json::{json, Value};

fn state_dir(name: &str) -> common::scratch::Scratch {
    common::scratch::Scratch::new(&format!("jobs-{name}"))
}

fn execution(emu: &fleets_emulator::Emulator, job: &str) -> Value {
    emu.job_execution(job, THING).expect("execution exists")
}

#[test]
fn no_job_pending() {
    let emu = emulator();
    let client = client(&emu);
    let dir = state_dir("none");
    let run = JobAgent::new(THING, &dir).run_once(&client).unwrap();
    assert_eq!(run.outcome, JobOutcome::NoJob);
    assert_eq!(run.job_id, None);
    assert!(!dir.join(format!("fleets-job-{THING}.json")).exists());
}

#[test]
fn runs_the_steps_reports_progress_and_succeeds_with_expected_versions() {
    let emu = emulator();
    let client = client(&emu);
    let job = emu.create_job(
        json!({"action": "install", "version": "2.0"}),
        &[THING],
        None,
    );
    let dir = state_dir("steps");
    let calls = RefCell::new(Vec::new());
    let mut agent = JobAgent::new(THING, &dir)
        .job_timeout_minutes(30)
        .handler("install", |step| {
            calls.borrow_mut().push((step.step, step.attempt));
            assert_eq!(step.action, "install");
            assert!(step.document_json.contains("\"2.0\""));
            // Between steps the server has the progress of the step before.
            if step.step == 2 {
                let e = emu.job_execution(step.job_id, THING).unwrap();
                assert_eq!(e["status"], "IN_PROGRESS");
                assert_eq!(e["statusDetails"], json!({"percent": 50, "agentStep": 2}));
            }
            match step.step {
                0 => StepResult::Next,
                1 => {
                    step.details = Some(r#"{"percent":50}"#.into());
                    StepResult::Next
                }
                _ => {
                    step.details = Some(r#"{"installedVersion":"2.0"}"#.into());
                    StepResult::Succeeded
                }
            }
        });
    let run = agent.run_once(&client).unwrap();
    drop(agent);
    assert_eq!(run.outcome, JobOutcome::Succeeded);
    assert_eq!(run.job_id.as_deref(), Some(job.as_str()));
    assert!(!run.resumed);
    assert_eq!(calls.into_inner(), [(0, 1), (1, 1), (2, 1)]);
    let e = execution(&emu, &job);
    assert_eq!(e["status"], "SUCCEEDED");
    assert_eq!(e["statusDetails"], json!({"installedVersion": "2.0"}));
    // start-next (1 -> 2), two progress updates, the final one: each with the right version.
    assert_eq!(e["versionNumber"], 5);
    assert_eq!(
        emu.stats().by_endpoint["POST /api/v1/thing-datas/jobs/{jobId}/update"],
        3
    );
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "state removed"
    );
}

#[test]
fn an_unknown_action_or_a_document_without_one_is_rejected_with_a_reason() {
    let emu = emulator();
    let client = client(&emu);
    let dir = state_dir("unknown");
    let unknown = emu.create_job(json!({"action": "selfDestruct"}), &[THING], None);
    let no_action = emu.create_job(json!({"operation": "install"}), &[THING], None);
    let mut agent = JobAgent::new(THING, &dir).handler("install", |_| unreachable!());
    for (job, why) in [
        (
            &unknown,
            "no handler for action \"selfDestruct\" on this device",
        ),
        (&no_action, "the job document has no \"action\" string"),
    ] {
        let run = agent.run_once(&client).unwrap();
        assert_eq!(run.outcome, JobOutcome::Rejected);
        let e = execution(&emu, job);
        assert_eq!(e["status"], "REJECTED");
        assert_eq!(e["statusDetails"], json!({ "reason": why }));
    }
    assert_eq!(agent.run_once(&client).unwrap().outcome, JobOutcome::NoJob);
}

#[test]
fn a_gated_step_waits_for_the_gate_across_runs() {
    let emu = emulator();
    let client = client(&emu);
    let job = emu.create_job(json!({"action": "update"}), &[THING], None);
    let dir = state_dir("gate");
    let allow = RefCell::new(false);
    let asked = RefCell::new(0);
    let steps = RefCell::new(Vec::new());
    let mut agent = JobAgent::new(THING, &dir)
        .handler("update", |step| {
            steps.borrow_mut().push(step.step);
            match step.step {
                0 => StepResult::NextGated, // the next step reboots
                _ => StepResult::Succeeded,
            }
        })
        .gate(|step| {
            assert_eq!(step.step, 1);
            *asked.borrow_mut() += 1;
            *allow.borrow()
        });
    let run = agent.run_once(&client).unwrap();
    assert_eq!((run.outcome, run.step), (JobOutcome::Deferred, 1));
    let e = execution(&emu, &job);
    assert_eq!(e["status"], "IN_PROGRESS");
    assert_eq!(
        e["statusDetails"],
        json!({"agentStep": 1, "waitingFor": "gate"})
    );
    let version = e["versionNumber"].clone();

    let run = agent.run_once(&client).unwrap();
    assert_eq!(run.outcome, JobOutcome::Deferred);
    assert!(run.resumed);
    assert_eq!(
        execution(&emu, &job)["versionNumber"],
        version,
        "no second gate update"
    );

    *allow.borrow_mut() = true;
    let run = agent.run_once(&client).unwrap();
    assert_eq!(run.outcome, JobOutcome::Succeeded);
    drop(agent);
    assert_eq!(steps.into_inner(), [0, 1]);
    assert_eq!(asked.into_inner(), 3);
}

/// A handler that dies mid-step (here: panics; in the kill test: SIGKILL) is run again at
/// that step with attempt 2; the steps whose completion was recorded never run again.
#[test]
fn a_crash_mid_step_resumes_that_step_and_never_reruns_finished_ones() {
    let emu = emulator();
    let client = client(&emu);
    let job = emu.create_job(json!({"action": "install"}), &[THING], None);
    let dir = state_dir("crash");
    let log = RefCell::new(Vec::new());
    let crash_at = RefCell::new(Some(1u32));
    let make_agent = || {
        JobAgent::new(THING, &dir).handler("install", |step| {
            log.borrow_mut().push((step.step, step.attempt));
            if *crash_at.borrow() == Some(step.step) {
                panic!("power cut in step {}", step.step);
            }
            if step.step < 2 {
                StepResult::Next
            } else {
                StepResult::Succeeded
            }
        })
    };
    let crashed = catch_unwind(AssertUnwindSafe(|| make_agent().run_once(&client)));
    assert!(crashed.is_err());
    let state: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("fleets-job-{THING}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (state["step"].as_u64(), state["attempts"].as_u64()),
        (Some(1), Some(1))
    );

    *crash_at.borrow_mut() = None;
    let run = make_agent().run_once(&client).unwrap();
    assert_eq!(run.outcome, JobOutcome::Succeeded);
    assert!(run.resumed);
    assert_eq!(log.into_inner(), [(0, 1), (1, 1), (1, 2), (2, 1)]);
    assert_eq!(execution(&emu, &job)["status"], "SUCCEEDED");
    assert_eq!(
        emu.stats().by_endpoint["POST /api/v1/thing-datas/jobs/start-next"],
        1,
        "the job was claimed once"
    );
}

#[test]
fn a_step_that_keeps_failing_ends_the_job_failed() {
    let emu = emulator();
    let client = client(&emu);
    let job = emu.create_job(json!({"action": "flaky"}), &[THING], None);
    let dir = state_dir("flaky");
    let mut attempts = Vec::new();
    let mut agent = JobAgent::new(THING, &dir)
        .max_attempts(2)
        .handler("flaky", |step| {
            attempts.push(step.attempt);
            step.details = Some(r#"{"error":"network down"}"#.into());
            StepResult::Retry
        });
    assert_eq!(
        agent.run_once(&client).unwrap().outcome,
        JobOutcome::RetryLater
    );
    let e = execution(&emu, &job);
    assert_eq!(e["status"], "IN_PROGRESS");
    assert_eq!(
        e["statusDetails"],
        json!({"error": "network down", "agentStep": 0})
    );
    assert_eq!(
        agent.run_once(&client).unwrap().outcome,
        JobOutcome::RetryLater
    );
    let run = agent.run_once(&client).unwrap();
    drop(agent);
    assert_eq!(run.outcome, JobOutcome::Failed);
    assert_eq!(attempts, [1, 2]);
    let e = execution(&emu, &job);
    assert_eq!(e["status"], "FAILED");
    assert_eq!(
        e["statusDetails"],
        json!({"reason": "step 0 did not complete in 2 attempts", "agentStep": 0})
    );
}

/// The final status is recorded before it is sent: when sending fails, the next run sends it
/// (and runs no step); when it was applied but the answer was lost, the next run finds the
/// job ended at the server.
#[test]
fn the_final_status_survives_a_failed_send_and_a_lost_answer() {
    let emu = emulator();
    let mut config = common::config(&emu);
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    let client = fleets::Client::new(&config).unwrap();
    let dir = state_dir("final");
    let job = emu.create_job(json!({"action": "a"}), &[THING], None);
    let runs = RefCell::new(0);
    let mut agent = JobAgent::new(THING, &dir).handler("a", |_| {
        *runs.borrow_mut() += 1;
        StepResult::Succeeded
    });
    emu.add_fault(FaultRule::status("/api/v1/thing-datas/jobs/", 503).times(1));
    // The fault hits start-next: nothing claimed, nothing recorded.
    assert_eq!(
        agent.run_once(&client).unwrap_err().code(),
        ErrorCode::Server
    );
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
    // start-next works; the final update meets the fault.
    emu.add_fault(
        FaultRule::status(&format!("/api/v1/thing-datas/jobs/{job}/update"), 503).times(1),
    );
    assert_eq!(
        agent.run_once(&client).unwrap_err().code(),
        ErrorCode::Server
    );
    assert_eq!(execution(&emu, &job)["status"], "IN_PROGRESS");
    let run = agent.run_once(&client).unwrap();
    assert_eq!((run.outcome, run.resumed), (JobOutcome::Succeeded, true));
    assert_eq!(execution(&emu, &job)["status"], "SUCCEEDED");

    // A lost answer: the server has SUCCEEDED, the device still has its state.
    let job2 = emu.create_job(json!({"action": "a"}), &[THING], None);
    emu.add_fault(
        FaultRule::status(&format!("/api/v1/thing-datas/jobs/{job2}/update"), 503).times(1),
    );
    agent.run_once(&client).unwrap_err();
    let v = execution(&emu, &job2)["versionNumber"].as_u64().unwrap();
    client
        .jobs_update(THING, &job2, ExecutionStatus::Succeeded, None, v, None)
        .unwrap();
    let run = agent.run_once(&client).unwrap();
    drop(agent);
    assert_eq!((run.outcome, run.resumed), (JobOutcome::Succeeded, true));
    assert_eq!(
        runs.into_inner(),
        2,
        "no step ran again to resend a final status"
    );
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none());
}

#[test]
fn a_job_canceled_while_held_is_abandoned() {
    let emu = emulator();
    let client = client(&emu);
    let dir = state_dir("cancel");
    let job = emu.create_job(json!({"action": "long"}), &[THING], None);
    let mut agent = JobAgent::new(THING, &dir).handler("long", |_| StepResult::Retry);
    assert_eq!(
        agent.run_once(&client).unwrap().outcome,
        JobOutcome::RetryLater
    );
    assert!(emu.cancel_job(&job));
    let run = agent.run_once(&client).unwrap();
    assert_eq!(run.outcome, JobOutcome::Abandoned);
    assert_eq!(run.job_id.as_deref(), Some(job.as_str()));
    assert_eq!(agent.run_once(&client).unwrap().outcome, JobOutcome::NoJob);
}

#[test]
fn bad_details_from_a_handler_are_an_error_and_count_as_an_attempt() {
    let emu = emulator();
    let client = client(&emu);
    let dir = state_dir("details");
    let job = emu.create_job(json!({"action": "a"}), &[THING], None);
    let mut agent = JobAgent::new(THING, &dir).handler("a", |step| {
        if step.attempt == 1 {
            step.details = Some("[not an object]".into());
            StepResult::Next
        } else {
            StepResult::Succeeded
        }
    });
    let err = agent.run_once(&client).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidJson);
    assert!(err.message().contains("\"a\" handler at step 0"), "{err}");
    let run = agent.run_once(&client).unwrap();
    assert_eq!(run.outcome, JobOutcome::Succeeded);
    assert_eq!(execution(&emu, &job)["status"], "SUCCEEDED");
}

#[test]
fn state_directory_problems_are_storage_errors() {
    let emu = emulator();
    let client = client(&emu);
    let missing = std::env::temp_dir().join("fleets-no-such-state-dir");
    let err = JobAgent::new(THING, &missing)
        .run_once(&client)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LocalFile);
    let dir = state_dir("corrupt");
    std::fs::write(dir.join(format!("fleets-job-{THING}.json")), b"{").unwrap();
    let err = JobAgent::new(THING, &dir).run_once(&client).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LocalFile);
    assert_eq!(emu.stats().total, 0, "nothing sent");
    let err = JobAgent::new("bad name", &dir)
        .run_once(&client)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}
