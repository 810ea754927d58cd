//! The safe Rust API against the emulator over HTTPS: every call's success shape and its
//! error codes.

mod common;

use std::time::{Duration, Instant};

use common::{client, config, emulator, json, THING};
use fleets::{Client, Config, ErrorCode, Event, ExecutionStatus, ReportOptions, Severity};
use fleets_emulator::FaultRule;
use serde_json::json;

#[test]
fn report_then_read_shadow_with_delta() {
    let emu = emulator();
    let client = client(&emu);
    let response = client
        .shadow_report(
            THING,
            r#"{"temperature":21.5,"humidity":58}"#,
            ReportOptions {
                client_token: Some("tok-001"),
                version: 0,
            },
        )
        .unwrap();
    let body = json(response.body());
    assert_eq!(body["state"]["reported"]["temperature"], 21.5);
    assert_eq!(body["clientToken"], "tok-001");
    assert_eq!(body["version"], 1);

    emu.set_desired(THING, json!({"targetTemperature": 24}))
        .unwrap();
    let shadow = json(client.shadow_get(THING).unwrap().body());
    assert_eq!(shadow["reported"]["humidity"], 58);
    assert_eq!(shadow["delta"], json!({"targetTemperature": 24}));
    assert!(shadow["updatedAt"].is_string());

    // Optimistic locking: the current version is accepted, a stale one is a conflict.
    let version = shadow["version"].as_u64().unwrap();
    client
        .shadow_report(
            THING,
            r#"{"targetTemperature":24}"#,
            ReportOptions {
                client_token: None,
                version,
            },
        )
        .unwrap();
    let err = client
        .shadow_report(
            THING,
            r#"{"temperature":22}"#,
            ReportOptions {
                client_token: None,
                version,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(err.http_status(), 409);
    assert!(err.body().unwrap().contains("VersionConflict"), "{err}");
    let shadow = json(client.shadow_get(THING).unwrap().body());
    assert_eq!(shadow["delta"], json!({}));
}

#[test]
fn events_are_stored_with_their_fields() {
    let emu = emulator();
    let client = client(&emu);
    client
        .event_publish(
            THING,
            Event {
                event_type: "highTemperature",
                severity: Some(Severity::Warn),
                timestamp_ms: 1_748_390_400_000,
                data_json: Some(r#"{"currentTemp":45.2}"#),
                app_id: Some("app-1"),
            },
        )
        .unwrap();
    client
        .event_publish(
            THING,
            Event {
                event_type: "boot",
                ..Event::default()
            },
        )
        .unwrap();
    let events = emu.events(THING);
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["eventType"], "highTemperature");
    assert_eq!(events[0]["severity"], "warn");
    assert_eq!(events[0]["timestamp"], 1_748_390_400_000_i64);
    assert_eq!(events[0]["data"]["currentTemp"], 45.2);
    assert_eq!(events[0]["appId"], "app-1");
    // timestamp 0 means now; severity unset is left out.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let sent = events[1]["timestamp"].as_i64().unwrap();
    assert!((now_ms - sent).abs() < 60_000, "{sent} vs {now_ms}");
    assert!(events[1].get("severity").is_none() || events[1]["severity"].is_null());
}

#[test]
fn command_responses_reach_the_execution() {
    let emu = emulator();
    let client = client(&emu);
    let execution = emu.create_command(THING, "setTarget", json!({"target": 24}), 600);
    client
        .command_respond(
            THING,
            &execution,
            ExecutionStatus::Succeeded,
            Some(r#"{"currentTemperature":24}"#),
            1_748_390_405,
        )
        .unwrap();
    let command = emu.command(THING, &execution).unwrap();
    assert_eq!(command["status"], "SUCCEEDED");
    assert_eq!(command["result"]["currentTemperature"], 24);

    // Answering twice is a conflict; an unknown execution is not found.
    let again = client
        .command_respond(THING, &execution, ExecutionStatus::Failed, None, 0)
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::Conflict);
    let unknown = client
        .command_respond(
            THING,
            "8d88790c-9171-4526-8637-e6d6168bce22",
            ExecutionStatus::Succeeded,
            None,
            0,
        )
        .unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::NotFound);
}

#[test]
fn job_lifecycle() {
    let emu = emulator();
    let client = client(&emu);
    let nothing = json(client.jobs_start_next(THING, None, 0, None).unwrap().body());
    assert!(nothing.get("execution").is_none(), "{nothing}");

    let job = emu.create_job(json!({"firmware": "2.0.0"}), &[THING], Some("upgrade"));
    let pending = json(
        client
            .jobs_get_pending(THING, Some("req-1"))
            .unwrap()
            .body(),
    );
    assert_eq!(pending["queuedJobs"][0]["jobId"], job.as_str());
    assert_eq!(pending["clientToken"], "req-1");

    let started = json(
        client
            .jobs_start_next(THING, Some(r#"{"step":"download"}"#), 10, Some("req-2"))
            .unwrap()
            .body(),
    );
    let execution = &started["execution"];
    assert_eq!(execution["jobId"], job.as_str());
    assert_eq!(execution["status"], "IN_PROGRESS");
    assert_eq!(execution["jobDocument"]["firmware"], "2.0.0");
    let version = execution["versionNumber"].as_u64().unwrap();

    let described = json(client.jobs_describe(THING, &job, None).unwrap().body());
    assert_eq!(described["execution"]["jobId"], job.as_str());

    // A stale expectedVersion is refused, the right one accepted.
    let stale = client
        .jobs_update(
            THING,
            &job,
            ExecutionStatus::Succeeded,
            None,
            version + 5,
            None,
        )
        .unwrap_err();
    assert_eq!(stale.code(), ErrorCode::Conflict);
    assert!(stale.body().unwrap().contains("VersionMismatch"), "{stale}");
    let done = json(
        client
            .jobs_update(
                THING,
                &job,
                ExecutionStatus::Succeeded,
                Some(r#"{"installedVersion":"2.0.0"}"#),
                version,
                Some("req-3"),
            )
            .unwrap()
            .body(),
    );
    assert_eq!(done["executionState"]["status"], "SUCCEEDED");
    assert_eq!(
        emu.job_execution(&job, THING).unwrap()["status"],
        "SUCCEEDED"
    );

    // Leaving a terminal state is a conflict; an unknown job is not found.
    let terminal = client
        .jobs_update(THING, &job, ExecutionStatus::InProgress, None, 0, None)
        .unwrap_err();
    assert_eq!(terminal.code(), ErrorCode::Conflict);
    let unknown = client
        .jobs_describe(THING, "no-such-job", None)
        .unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::NotFound);
}

#[test]
fn wrong_secret_is_unauthorized_and_never_echoed() {
    let emu = emulator();
    let mut config = Config::new(emu.endpoint(), emu.api_key(), "wrong-secret-value").unwrap();
    config.set_ca_file(emu.ca_file().unwrap()).unwrap();
    let client = Client::new(&config).unwrap();
    let err = client.shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthorized);
    assert_eq!(err.http_status(), 401);
    assert!(!err.to_string().contains("wrong-secret-value"));
    assert!(!format!("{err:?}").contains("wrong-secret-value"));
    assert!(!format!("{config:?} {client:?}").contains("wrong-secret-value"));
}

#[test]
fn unknown_thing_is_not_found() {
    let emu = emulator();
    let err = client(&emu).shadow_get("never-registered").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(err.message().contains("404"), "{err}");
}

#[test]
fn oversized_report_is_payload_too_large() {
    // A body the client accepts but the server rejects: an oversized reported document.
    let emu = emulator();
    let big = format!(r#"{{"blob":"{}"}}"#, "x".repeat(600 * 1024));
    let err = client(&emu)
        .shadow_report(THING, &big, ReportOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PayloadTooLarge, "{err}");
}

#[test]
fn server_errors_map_to_codes_with_the_servers_reason() {
    let emu = emulator();
    let mut config = config(&emu);
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    let client = Client::new(&config).unwrap();
    for (status, code) in [
        (400, ErrorCode::BadRequest),
        (403, ErrorCode::Forbidden),
        (429, ErrorCode::RateLimited),
        (503, ErrorCode::Server),
        (418, ErrorCode::Http),
    ] {
        emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": status, "times": 1})));
        let err = client.shadow_get(THING).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert_eq!(err.http_status(), status);
    }
}

#[test]
fn connection_refused_is_connect_error() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = Config::new(&format!("http://127.0.0.1:{port}"), "ak", "secret").unwrap();
    let err = Client::new(&config).unwrap().shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect, "{err}");
}

#[test]
fn stalled_server_times_out_within_the_deadline() {
    let emu = emulator();
    emu.add_fault(fault(
        json!({"path_prefix": "/api/v1/thing-datas/", "kind": "stall", "times": 1}),
    ));
    let mut config = config(&emu);
    config.set_timeouts(Duration::from_millis(2000), Duration::from_millis(700));
    let client = Client::new(&config).unwrap();
    let started = Instant::now();
    let err = client.shadow_get(THING).unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.code(), ErrorCode::Timeout, "{err}");
    assert!(
        elapsed >= Duration::from_millis(650) && elapsed < Duration::from_millis(2500),
        "{elapsed:?}"
    );
    // The client recovers on the next call.
    client.shadow_get(THING).unwrap();
}

#[test]
fn untrusted_server_certificate_is_tls_error() {
    let emu = emulator();
    // Bundled Mozilla roots do not include the emulator's throwaway CA.
    let config = Config::new(emu.endpoint(), emu.api_key(), emu.api_secret()).unwrap();
    let err = Client::new(&config).unwrap().shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Tls, "{err}");
    assert_eq!(
        emu.stats().total,
        0,
        "no request may reach an untrusted server"
    );
}

#[test]
fn garbage_reply_is_io_error() {
    let emu = emulator();
    emu.add_fault(fault(
        json!({"path_prefix": "/api/v1/thing-datas/", "kind": "garbage", "times": 1}),
    ));
    let err = client(&emu).shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
}

fn fault(rule: serde_json::Value) -> FaultRule {
    serde_json::from_value(rule).expect("fault rule")
}
