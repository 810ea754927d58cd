//! Retries against the emulator's fault injection: what is repeated, how often, how long it
//! waits, and that the request count at the server shows no unwanted duplicate.

mod common;

use std::time::{Duration, Instant};

use common::{config, emulator, json, THING};
use fleets::{Client, ErrorCode, Event, ExecutionStatus, ReportOptions};
use fleets_emulator::FaultRule;
use serde_json::json;

fn fault(rule: serde_json::Value) -> FaultRule {
    serde_json::from_value(rule).expect("fault rule")
}

fn client_with_retry(
    emu: &fleets_emulator::Emulator,
    attempts: u32,
    initial_ms: u64,
    max_ms: u64,
) -> Client {
    let mut config = config(emu);
    config
        .set_retry(
            attempts,
            Duration::from_millis(initial_ms),
            Duration::from_millis(max_ms),
        )
        .unwrap();
    Client::new(&config).unwrap()
}

#[test]
fn a_503_burst_then_success() {
    let emu = emulator();
    let client = client_with_retry(&emu, 4, 10, 50);
    emu.add_fault(fault(
        json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": 503, "times": 3}),
    ));
    client.shadow_get(THING).unwrap();
    assert_eq!(emu.stats().total, 4, "three 503s then the answer");
}

#[test]
fn gives_up_after_max_attempts_and_says_so() {
    let emu = emulator();
    let client = client_with_retry(&emu, 3, 10, 50);
    emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": 502, "times": 10})));
    let err = client.shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Server);
    assert!(err.message().contains("after 3 attempts"), "{err}");
    assert_eq!(emu.stats().total, 3);
}

#[test]
fn retry_after_seconds_is_honoured() {
    let emu = emulator();
    let client = client_with_retry(&emu, 2, 10, 5000);
    emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": 429, "retry_after_s": 1, "times": 1})));
    let started = Instant::now();
    client.shadow_get(THING).unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_millis(3000), "{waited:?}");
}

#[test]
fn retry_after_http_date_is_honoured_and_clamped() {
    let emu = emulator();
    // A date 1-2 s ahead (HTTP-dates have whole seconds), clamped to a 300 ms max backoff.
    let client = client_with_retry(&emu, 2, 10, 300);
    emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": 503, "retry_after_s": 2, "retry_after_date": true, "times": 1})));
    let started = Instant::now();
    client.shadow_get(THING).unwrap();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
}

#[test]
fn retries_stay_within_the_deadline() {
    let emu = emulator();
    let mut config = config(&emu);
    config
        .set_retry(10, Duration::from_millis(100), Duration::from_secs(5))
        .unwrap();
    config.set_timeouts(Duration::from_millis(500), Duration::from_millis(800));
    let client = Client::new(&config).unwrap();
    emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": 503, "retry_after_s": 3, "times": 0})));
    let started = Instant::now();
    let err = client.shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Server);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
}

#[test]
fn other_client_errors_are_never_retried() {
    let emu = emulator();
    let client = client_with_retry(&emu, 5, 10, 50);
    for status in [400, 401, 404, 409, 500] {
        emu.reset();
        emu.register_thing(THING);
        emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": status, "times": 1})));
        assert!(client.shadow_get(THING).is_err());
        assert_eq!(emu.stats().total, 1, "HTTP {status} sent once");
    }
}

#[test]
fn events_and_command_responses_are_never_repeated() {
    let emu = emulator();
    let client = client_with_retry(&emu, 5, 10, 50);
    emu.add_fault(fault(
        json!({"path_prefix": "/api/v1/thing-datas/", "kind": "status", "status": 503, "times": 2}),
    ));
    let err = client
        .event_publish(
            THING,
            Event {
                event_type: "boot",
                ..Event::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Server);
    let execution = emu.create_command(THING, "reboot", json!({}), 60);
    let err = client
        .command_respond(THING, &execution, ExecutionStatus::Succeeded, None, 0)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Server);
    assert_eq!(emu.stats().total, 2);
}

#[test]
fn reports_get_a_generated_client_token_so_they_can_be_retried() {
    let emu = emulator();
    let client = client_with_retry(&emu, 3, 10, 50);
    emu.add_fault(fault(json!({"path_prefix": "/api/v1/thing-datas/shadow/reported", "kind": "status", "status": 503, "times": 1})));
    let body = json(
        client
            .shadow_report(THING, r#"{"t":1}"#, ReportOptions::default())
            .unwrap()
            .body(),
    );
    assert!(
        body["clientToken"].as_str().unwrap().starts_with("fleets-"),
        "{body}"
    );
    assert_eq!(emu.stats().total, 2);
    assert_eq!(emu.shadow(THING).unwrap()["version"], 1, "applied once");

    // The caller's own token is kept.
    let body = json(
        client
            .shadow_report(
                THING,
                r#"{"t":2}"#,
                ReportOptions {
                    client_token: Some("mine"),
                    version: 0,
                },
            )
            .unwrap()
            .body(),
    );
    assert_eq!(body["clientToken"], "mine");

    // Without retries no token is invented.
    let once = client_with_retry(&emu, 1, 0, 0);
    let body = json(
        once.shadow_report(THING, r#"{"t":3}"#, ReportOptions::default())
            .unwrap()
            .body(),
    );
    assert!(body.get("clientToken").is_none(), "{body}");
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config =
        fleets::Config::new(&format!("http://127.0.0.1:{port}"), "ak", "secret").unwrap();
    config
        .set_retry(3, Duration::from_millis(10), Duration::from_millis(20))
        .unwrap();
    let err = Client::new(&config).unwrap().shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect);
    assert!(err.message().contains("after 3 attempts"), "{err}");
}
