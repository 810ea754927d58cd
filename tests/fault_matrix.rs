//! The fault matrix: each network or server failure a device meets in the field, produced by
//! the emulator's fault injection or a purpose-built server, with the result code the client
//! must give, the time bound it must keep, and the number of requests the server may see.
//! Every case prints one row; docs/reliability.md holds the table.

mod common;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::raw_server::{self, RawServer};
use common::{emulator, THING};
use fleets::{Client, Config, ErrorCode, Event, ReportOptions};
use fleets_emulator::FaultRule;
use serde_json::json;

const CONNECT: Duration = Duration::from_millis(500);
const DEADLINE: Duration = Duration::from_millis(1500);
/// Allowance for scheduling on a loaded 2-core machine.
const TOLERANCE: Duration = Duration::from_millis(700);

struct Case {
    name: &'static str,
    expected: Option<ErrorCode>,
    bound: Duration,
    max_requests: usize,
}

struct Observed {
    code: Option<ErrorCode>,
    elapsed: Duration,
    requests: usize,
    message: String,
}

fn check(case: Case, observed: Observed) {
    let code = |c: Option<ErrorCode>| c.map_or("FLEETS_OK", ErrorCode::name);
    println!(
        "| {} | {} | {} | {} ms (bound {} ms) | {} (max {}) |",
        case.name,
        code(case.expected),
        code(observed.code),
        observed.elapsed.as_millis(),
        case.bound.as_millis(),
        observed.requests,
        case.max_requests
    );
    assert_eq!(
        observed.code, case.expected,
        "{}: {}",
        case.name, observed.message
    );
    assert!(
        observed.elapsed <= case.bound + TOLERANCE,
        "{}: took {:?}, bound {:?}",
        case.name,
        observed.elapsed,
        case.bound
    );
    assert!(
        observed.requests <= case.max_requests,
        "{}: server saw {} requests, at most {} allowed",
        case.name,
        observed.requests,
        case.max_requests
    );
    assert!(!observed.message.contains(SECRET));
}

const SECRET: &str = "emulator-demo-secret";

fn config_for(endpoint: &str, ca_pem: Option<&str>, attempts: u32) -> Config {
    let mut config = Config::new(endpoint, fleets_emulator::DEFAULT_API_KEY, SECRET).unwrap();
    if let Some(pem) = ca_pem {
        config.set_ca_pem(pem).unwrap();
    }
    config.set_timeouts(CONNECT, DEADLINE);
    config
        .set_retry(
            attempts,
            Duration::from_millis(50),
            Duration::from_millis(200),
        )
        .unwrap();
    config
}

fn observe(
    client: &Client,
    call: impl FnOnce(&Client) -> fleets::Result<fleets::Response>,
) -> (Option<ErrorCode>, Duration, String) {
    let started = Instant::now();
    let outcome = call(client);
    let elapsed = started.elapsed();
    match outcome {
        Ok(_) => (None, elapsed, String::new()),
        Err(e) => (Some(e.code()), elapsed, e.message().to_owned()),
    }
}

/// Runs one call against a purpose-built TLS server with `behaviour`.
fn against_raw(
    attempts: u32,
    behaviour: impl Fn(&mut raw_server::Conn) + Send + Sync + 'static,
) -> Observed {
    let ca = raw_server::ca("fault matrix CA");
    let leaf = raw_server::server_cert(&ca);
    let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), behaviour);
    let client = Client::new(&config_for(
        &server.https_endpoint(),
        Some(&ca.cert_pem),
        attempts,
    ))
    .unwrap();
    let (code, elapsed, message) = observe(&client, |c| c.shadow_get(THING));
    Observed {
        code,
        elapsed,
        requests: server.requests(),
        message,
    }
}

/// Runs one call against the emulator with `fault` injected.
fn against_emulator(
    attempts: u32,
    fault: serde_json::Value,
    call: impl FnOnce(&Client) -> fleets::Result<fleets::Response>,
) -> Observed {
    let emu = emulator();
    let rule: FaultRule = serde_json::from_value(fault).unwrap();
    emu.add_fault(rule);
    let client = Client::new(&config_for(emu.endpoint(), emu.ca_pem(), attempts)).unwrap();
    let (code, elapsed, message) = observe(&client, call);
    Observed {
        code,
        elapsed,
        requests: emu.stats().total as usize,
        message,
    }
}

#[test]
fn stalled_accept() {
    // The kernel completes the TCP handshake into the backlog; nobody ever answers TLS.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let client = Client::new(&config_for(&endpoint, None, 1)).unwrap();
    let (code, elapsed, message) = observe(&client, |c| c.shadow_get(THING));
    check(
        Case {
            name: "stalled accept",
            expected: Some(ErrorCode::Timeout),
            bound: CONNECT,
            max_requests: 0,
        },
        Observed {
            code,
            elapsed,
            requests: 0,
            message,
        },
    );
    drop(listener);
}

#[test]
fn stalled_tls_handshake() {
    let server = RawServer::start(None, |conn| {
        let mut hello = [0u8; 512];
        let _ = conn.stream.read(&mut hello);
        std::thread::sleep(Duration::from_secs(5));
    });
    let client = Client::new(&config_for(&server.https_endpoint(), None, 1)).unwrap();
    let (code, elapsed, message) = observe(&client, |c| c.shadow_get(THING));
    check(
        Case {
            name: "stalled TLS handshake",
            expected: Some(ErrorCode::Timeout),
            bound: CONNECT,
            max_requests: 0,
        },
        Observed {
            code,
            elapsed,
            requests: server.requests(),
            message,
        },
    );
}

#[test]
fn stalled_handshake_with_retries_stays_within_the_deadline() {
    let server = RawServer::start(None, |conn| {
        let mut hello = [0u8; 512];
        let _ = conn.stream.read(&mut hello);
        std::thread::sleep(Duration::from_secs(5));
    });
    let client = Client::new(&config_for(&server.https_endpoint(), None, 5)).unwrap();
    let (code, elapsed, message) = observe(&client, |c| c.shadow_get(THING));
    check(
        Case {
            name: "stalled TLS handshake, 5 attempts allowed",
            expected: Some(ErrorCode::Timeout),
            bound: DEADLINE,
            max_requests: 0,
        },
        Observed {
            code,
            elapsed,
            requests: server.requests(),
            message,
        },
    );
    assert!(
        server.connections.load(Ordering::SeqCst) >= 2,
        "retried within the deadline"
    );
}

#[test]
fn server_never_answers() {
    let observed = against_emulator(
        1,
        json!({"path_prefix": "/api/v1/", "kind": "stall"}),
        |c| c.shadow_get(THING),
    );
    check(
        Case {
            name: "server never answers",
            expected: Some(ErrorCode::Timeout),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn event_to_a_server_that_never_answers_is_sent_once() {
    let observed = against_emulator(
        5,
        json!({"path_prefix": "/api/v1/", "kind": "stall", "times": 0}),
        |c| {
            c.event_publish(
                THING,
                Event {
                    event_type: "boot",
                    ..Event::default()
                },
            )
        },
    );
    check(
        Case {
            name: "event, server never answers, 5 attempts allowed",
            expected: Some(ErrorCode::Timeout),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn slowloris_body() {
    let observed = against_raw(1, |conn| {
        if conn.read_request().is_some() {
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{");
            for _ in 0..100 {
                std::thread::sleep(Duration::from_millis(100));
                conn.send(b" ");
            }
        }
    });
    check(
        Case {
            name: "slowloris body (1 byte / 100 ms)",
            expected: Some(ErrorCode::Timeout),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn reset_mid_headers() {
    let observed = against_raw(1, |conn| {
        if conn.read_request().is_some() {
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Ty");
            conn.abort_on_close();
        }
    });
    check(
        Case {
            name: "reset mid-headers",
            expected: Some(ErrorCode::Io),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn reset_mid_body() {
    let observed = against_raw(3, |conn| {
        if conn.read_request().is_some() {
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"reported\":");
            conn.abort_on_close();
        }
    });
    check(
        Case {
            name: "reset mid-body (3 attempts allowed)",
            expected: Some(ErrorCode::Io),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn body_shorter_than_content_length() {
    let observed = against_emulator(
        3,
        json!({"path_prefix": "/api/v1/", "kind": "truncate"}),
        |c| c.shadow_get(THING),
    );
    check(
        Case {
            name: "body shorter than Content-Length",
            expected: Some(ErrorCode::Io),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn garbage_instead_of_http() {
    let observed = against_emulator(
        3,
        json!({"path_prefix": "/api/v1/", "kind": "garbage"}),
        |c| c.shadow_get(THING),
    );
    check(
        Case {
            name: "garbage instead of HTTP",
            expected: Some(ErrorCode::Io),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn non_json_success_body() {
    let observed = against_raw(3, |conn| {
        if conn.read_request().is_some() {
            conn.respond(200, "", "<html>maintenance</html>");
        }
    });
    check(
        Case {
            name: "non-JSON 2xx body",
            expected: Some(ErrorCode::BadResponse),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn oversized_body() {
    let observed = against_raw(3, |conn| {
        if conn.read_request().is_some() {
            let body = format!("{{\"blob\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
            conn.respond(200, "", &body);
        }
    });
    check(
        Case {
            name: "oversized body (2 MiB, limit 1 MiB)",
            expected: Some(ErrorCode::BadResponse),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn oversized_headers() {
    let observed = against_raw(3, |conn| {
        if conn.read_request().is_some() {
            let filler: String = (0..20)
                .map(|i| format!("X-Filler-{i}: {}\r\n", "v".repeat(1000)))
                .collect();
            conn.respond(200, &filler, "{}");
        }
    });
    check(
        Case {
            name: "oversized headers (20 KiB, limit 8 KiB)",
            expected: Some(ErrorCode::BadResponse),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
    let observed = against_raw(3, |conn| {
        if conn.read_request().is_some() {
            let filler: String = (0..200).map(|i| format!("X-F{i}: v\r\n")).collect();
            conn.respond(200, &filler, "{}");
        }
    });
    check(
        Case {
            name: "too many header fields (200)",
            expected: Some(ErrorCode::BadResponse),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn redirect_to_another_host_is_not_followed() {
    let observed = against_raw(3, |conn| {
        if conn.read_request().is_some() {
            conn.respond(302, "Location: https://collector.example.net/steal\r\n", "");
        }
    });
    assert!(
        observed
            .message
            .contains("https://collector.example.net/steal"),
        "{}",
        observed.message
    );
    check(
        Case {
            name: "3xx redirect to another host",
            expected: Some(ErrorCode::Http),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
}

#[test]
fn rate_limited_with_retry_after_seconds() {
    let observed = against_emulator(
        1,
        json!({"path_prefix": "/api/v1/", "kind": "status", "status": 429, "retry_after_s": 7}),
        |c| c.shadow_get(THING),
    );
    check(
        Case {
            name: "429 + Retry-After: 7, retries off",
            expected: Some(ErrorCode::RateLimited),
            bound: DEADLINE,
            max_requests: 1,
        },
        observed,
    );
    let observed = against_emulator(
        2,
        json!({"path_prefix": "/api/v1/", "kind": "status", "status": 429, "retry_after_s": 1}),
        |c| c.shadow_get(THING),
    );
    assert!(
        observed.elapsed >= Duration::from_millis(200),
        "waited for Retry-After (clamped to 200 ms)"
    );
    check(
        Case {
            name: "429 + Retry-After: 1, 2 attempts (wait clamped to 200 ms)",
            expected: None,
            bound: DEADLINE,
            max_requests: 2,
        },
        observed,
    );
}

#[test]
fn rate_limited_with_retry_after_date() {
    let observed = against_emulator(
        2,
        json!({"path_prefix": "/api/v1/", "kind": "status", "status": 429, "retry_after_s": 1, "retry_after_date": true}),
        |c| c.shadow_get(THING),
    );
    check(
        Case {
            name: "429 + Retry-After: HTTP-date, 2 attempts",
            expected: None,
            bound: DEADLINE,
            max_requests: 2,
        },
        observed,
    );
}

#[test]
fn burst_of_503_then_success() {
    let observed = against_emulator(
        4,
        json!({"path_prefix": "/api/v1/", "kind": "status", "status": 503, "times": 3}),
        |c| c.shadow_report(THING, r#"{"t":1}"#, ReportOptions::default()),
    );
    check(
        Case {
            name: "503 x3 then success, report with 4 attempts",
            expected: None,
            bound: DEADLINE,
            max_requests: 4,
        },
        observed,
    );
}

#[test]
fn pooled_connection_closed_by_the_server_between_calls() {
    let ca = raw_server::ca("pool CA");
    let leaf = raw_server::server_cert(&ca);
    // Answers one request per connection with keep-alive, then closes after 50 ms.
    let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), |conn| {
        if conn.read_request().is_some() {
            conn.respond(200, "", "{}");
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let client = Client::new(&config_for(&server.https_endpoint(), Some(&ca.cert_pem), 1)).unwrap();
    client.shadow_get(THING).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (code, elapsed, message) = observe(&client, |c| c.shadow_get(THING));
    check(
        Case {
            name: "pooled connection closed by the server between calls",
            expected: None,
            bound: DEADLINE,
            max_requests: 2,
        },
        Observed {
            code,
            elapsed,
            requests: server.requests(),
            message,
        },
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}
