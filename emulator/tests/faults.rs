//! Every fault kind, observed by plain clients (ureq and a raw TLS socket).

mod common;

use common::{raw_exchange, raw_post, Client};
use fleets_emulator::{EmulatorOptions, FaultKind, FaultRule, TlsMode};
use serde_json::json;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

const T: &str = "thermostat-001";
const EVENTS: &str = "/api/v1/thing-datas/events";

fn event() -> serde_json::Value {
    json!({"thingName": T, "eventType": "e", "timestamp": 1})
}

fn setup() -> (fleets_emulator::Emulator, Client) {
    let emu = common::start();
    emu.register_thing(T);
    let c = Client::new(&emu);
    (emu, c)
}

fn event_request(emu: &fleets_emulator::Emulator) -> Vec<u8> {
    raw_post(emu, EVENTS, &event().to_string())
}

#[test]
fn delay_then_normal_handling() {
    let (emu, c) = setup();
    emu.add_fault(FaultRule::new(FaultKind::Delay, EVENTS).delay_ms(300));
    let t = Instant::now();
    c.post(EVENTS, &event()).ok();
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(emu.events(T).len(), 1, "a delayed request is still handled");
    let t = Instant::now();
    c.post(EVENTS, &event()).ok();
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "only the next request is delayed"
    );
}

#[test]
fn status_with_retry_after_seconds_and_times() {
    let (emu, c) = setup();
    emu.add_fault(FaultRule::status(EVENTS, 503).retry_after(2).times(2));
    for _ in 0..2 {
        let r = c.post(EVENTS, &event());
        r.err(503, "InjectedFault");
        assert_eq!(r.header("retry-after"), Some("2"));
    }
    c.post(EVENTS, &event()).ok();
    assert_eq!(
        emu.events(T).len(),
        1,
        "faulted requests do not touch state"
    );
    assert_eq!(
        emu.stats().by_endpoint["POST /api/v1/thing-datas/events"],
        3,
        "faulted requests are counted"
    );
}

#[test]
fn status_with_retry_after_date_and_custom_bodies() {
    let (emu, c) = setup();
    c.admin(
        "POST",
        "/admin/v1/faults",
        Some(&json!({"path_prefix": EVENTS, "kind": "status", "status": 429, "retry_after_s": 30, "retry_after_date": true})),
    )
    .ok();
    let r = c.post(EVENTS, &event());
    r.err(429, "InjectedFault");
    let date = r.header("retry-after").unwrap();
    assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
    // defaults: status 503, no Retry-After
    c.admin("POST", "/admin/v1/faults", Some(&json!({"kind": "status"})))
        .ok();
    let r = c.get("/api/v1/thing-datas/thermostat-001/shadow");
    r.err(503, "InjectedFault");
    assert!(r.header("retry-after").is_none());
    // a string body is sent raw as text/plain, even on a 200 (a non-JSON 2xx)
    let mut rule = FaultRule::status("/api/v1/thing-datas/", 200);
    rule.body = Some(json!("<html>proxy login</html>"));
    emu.add_fault(rule);
    let r = c.post(EVENTS, &event());
    assert_eq!(
        (r.status, r.text.as_str()),
        (200, "<html>proxy login</html>")
    );
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // a JSON body is sent as JSON
    let mut rule = FaultRule::status("", 500);
    rule.body = Some(json!({"code": "Custom", "message": "boom"}));
    emu.add_fault(rule);
    c.post(EVENTS, &event()).err(500, "Custom");
    assert!(emu.events(T).is_empty());
}

#[test]
fn reset_sends_rst_before_any_byte() {
    let (emu, c) = setup();
    emu.add_fault(FaultRule::new(FaultKind::Reset, EVENTS));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert!(
        out.bytes.is_empty(),
        "no response byte: {:?}",
        String::from_utf8_lossy(&out.bytes)
    );
    assert_eq!(out.end, Err(ErrorKind::ConnectionReset));
    // ureq sees a transport error too
    emu.add_fault(FaultRule::new(FaultKind::Reset, EVENTS));
    let r = c
        .agent
        .post(c.url(EVENTS))
        .header("Authorization", &c.auth)
        .header("Content-Type", "application/json")
        .send(event().to_string());
    assert!(r.is_err(), "{r:?}");
    assert!(emu.events(T).is_empty());
    c.post(EVENTS, &event()).ok();
}

#[test]
fn truncate_promises_more_than_it_sends() {
    let (emu, c) = setup();
    emu.add_fault(FaultRule::new(FaultKind::Truncate, EVENTS));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    let text = String::from_utf8_lossy(&out.bytes).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !body.is_empty() && body.len() < len,
        "body {} bytes, promised {len}",
        body.len()
    );
    // ureq: the body read fails
    emu.add_fault(FaultRule::new(FaultKind::Truncate, EVENTS));
    let r = c
        .agent
        .post(c.url(EVENTS))
        .header("Authorization", &c.auth)
        .header("Content-Type", "application/json")
        .send(event().to_string());
    let failed = match r {
        Err(_) => true,
        Ok(mut resp) => resp.body_mut().read_to_string().is_err(),
    };
    assert!(failed);
    assert!(emu.events(T).is_empty());
}

#[test]
fn garbage_is_not_http() {
    let (emu, c) = setup();
    emu.add_fault(FaultRule::new(FaultKind::Garbage, EVENTS));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert!(!out.bytes.is_empty());
    assert!(!out.bytes.starts_with(b"HTTP/"), "{:?}", out.bytes);
    let mut rule = FaultRule::new(FaultKind::Garbage, EVENTS);
    rule.body = Some(json!("SSH-2.0-OpenSSH_9.2\r\n"));
    emu.add_fault(rule);
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert_eq!(out.bytes, b"SSH-2.0-OpenSSH_9.2\r\n");
    emu.add_fault(FaultRule::new(FaultKind::Garbage, EVENTS));
    let r = c
        .agent
        .post(c.url(EVENTS))
        .header("Authorization", &c.auth)
        .header("Content-Type", "application/json")
        .send(event().to_string());
    assert!(r.is_err(), "{r:?}");
    assert!(emu.events(T).is_empty());
}

#[test]
fn stall_never_answers() {
    let (emu, c) = setup();
    // without delay_ms: the client times out, having received nothing
    emu.add_fault(FaultRule::new(FaultKind::Stall, EVENTS));
    let t = Instant::now();
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_millis(700));
    assert!(out.bytes.is_empty());
    assert!(
        matches!(out.end, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{:?}",
        out.end
    );
    assert!(t.elapsed() >= Duration::from_millis(700));
    // with delay_ms: closed without a response after that long
    emu.add_fault(FaultRule::new(FaultKind::Stall, EVENTS).delay_ms(300));
    let t = Instant::now();
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert!(out.bytes.is_empty());
    assert!(t.elapsed() >= Duration::from_millis(300) && t.elapsed() < Duration::from_secs(4));
    // ureq with a short timeout
    emu.add_fault(FaultRule::new(FaultKind::Stall, EVENTS));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(500)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(std::sync::Arc::new(vec![
                    ureq::tls::Certificate::from_pem(emu.ca_pem().unwrap().as_bytes()).unwrap(),
                ])))
                .build(),
        )
        .build()
        .new_agent();
    let r = agent
        .post(c.url(EVENTS))
        .header("Authorization", &c.auth)
        .header("Content-Type", "application/json")
        .send(event().to_string());
    assert!(matches!(r, Err(ureq::Error::Timeout(_))), "{r:?}");
    assert!(emu.events(T).is_empty());
    c.post(EVENTS, &event()).ok();
}

#[test]
fn shutdown_is_fast_with_a_stalled_connection() {
    let (emu, _c) = setup();
    emu.add_fault(FaultRule::new(FaultKind::Stall, ""));
    let addr = emu.local_addr();
    let req = event_request(&emu);
    let cfg = common::tls_config(&emu);
    let holder = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        s.write_all(&req).unwrap();
        let mut buf = [0u8; 64];
        let t = Instant::now();
        let _ = s.read(&mut buf);
        t.elapsed()
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    drop(emu);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        t.elapsed()
    );
    let held = holder.join().unwrap();
    assert!(
        held < Duration::from_secs(5),
        "the stalled client was released on shutdown"
    );
}

/// Splits a raw response into (head, body, promised Content-Length).
fn split_response(bytes: &[u8]) -> (String, Vec<u8>, usize) {
    let i = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = String::from_utf8_lossy(&bytes[..i]).into_owned();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    (head, bytes[i + 4..].to_vec(), len)
}

#[test]
fn after_bytes_cuts_the_real_response_in_the_middle() {
    let (emu, c) = setup();
    // truncate: the real status and headers, 5 body bytes, then a clean close
    emu.add_fault(FaultRule::new(FaultKind::Truncate, EVENTS).after_bytes(5));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    let (head, body, len) = split_response(&out.bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body.len(), 5);
    assert!(body.starts_with(b"{\"") && len > 5, "{body:?} of {len}");
    assert_eq!(out.end, Ok(()));
    assert_eq!(emu.events(T).len(), 1, "the request was handled");
    // reset after 0 bytes: the head, then RST
    emu.add_fault(FaultRule::new(FaultKind::Reset, EVENTS).after_bytes(0));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    let (head, body, _) = split_response(&out.bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(body.is_empty());
    assert_eq!(out.end, Err(ErrorKind::ConnectionReset));
    // stall after 3 bytes: silence
    emu.add_fault(FaultRule::new(FaultKind::Stall, EVENTS).after_bytes(3));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_millis(500));
    assert_eq!(split_response(&out.bytes).1.len(), 3);
    assert!(
        matches!(out.end, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{:?}",
        out.end
    );
    // a body shorter than after_bytes is sent complete, and the rule is used up
    emu.add_fault(FaultRule::new(FaultKind::Truncate, EVENTS).after_bytes(100_000));
    c.post(EVENTS, &event()).ok();
    assert_eq!(
        c.admin("GET", "/admin/v1/faults", None).ok()["faults"],
        json!([])
    );
    assert_eq!(emu.events(T).len(), 4);
    // after_bytes does not apply to the other kinds
    c.admin(
        "POST",
        "/admin/v1/faults",
        Some(&json!({"kind": "garbage", "after_bytes": 1})),
    )
    .err(400, "InvalidRequest");
}

#[test]
fn rules_match_by_prefix_and_method_and_skip_admin() {
    let (emu, c) = setup();
    let mut rule = FaultRule::status("/api/v1/thing-datas/jobs", 502).times(0);
    rule.method = Some("POST".into());
    emu.add_fault(rule);
    c.post("/api/v1/thing-datas/jobs/get", &json!({"thingName": T}))
        .err(502, "InjectedFault");
    c.post(
        "/api/v1/thing-datas/jobs/start-next",
        &json!({"thingName": T}),
    )
    .err(502, "InjectedFault");
    c.post(EVENTS, &event()).ok();
    c.shadow(T);
    // the admin API is never faulted, and lists the rule (times 0 = until cleared)
    let listed = c.admin("GET", "/admin/v1/faults", None).ok();
    assert_eq!(listed["faults"][0]["times"], json!(0));
    assert_eq!(listed["faults"][0]["kind"], json!("status"));
    c.admin("DELETE", "/admin/v1/faults", None).ok();
    c.post("/api/v1/thing-datas/jobs/get", &json!({"thingName": T}))
        .ok();
    // in-process clear works the same
    emu.add_fault(FaultRule::status("", 500));
    emu.clear_faults();
    c.post(EVENTS, &event()).ok();
}

#[test]
fn invalid_rules_are_refused() {
    let (_emu, c) = setup();
    for bad in [
        json!({"kind": "explode"}),
        json!({"kind": "delay"}),
        json!({"kind": "status", "status": 99}),
        json!({"kind": "status", "status": 700}),
        json!({"kind": "status", "retry_after_date": true}),
        json!({"kind": "garbage", "body": {"a": 1}}),
        json!({"kind": "stall", "delay_ms": 600_001}),
        json!({"kind": "reset", "unknown_field": 1}),
        json!({"path_prefix": "/api"}),
    ] {
        c.admin("POST", "/admin/v1/faults", Some(&bad))
            .err(400, "InvalidRequest");
    }
    assert_eq!(
        c.admin("GET", "/admin/v1/faults", None).ok()["faults"],
        json!([])
    );
}

#[test]
fn faults_work_over_plain_http() {
    let emu = common::start_with(EmulatorOptions {
        tls: TlsMode::PlainHttp,
        ..Default::default()
    });
    emu.register_thing(T);
    assert!(emu.endpoint().starts_with("http://"));
    emu.add_fault(FaultRule::new(FaultKind::Reset, EVENTS));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert!(out.bytes.is_empty());
    assert_eq!(out.end, Err(ErrorKind::ConnectionReset));
    emu.add_fault(FaultRule::new(FaultKind::Garbage, EVENTS));
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert!(!out.bytes.starts_with(b"HTTP/") && !out.bytes.is_empty());
    let out = raw_exchange(&emu, &event_request(&emu), Duration::from_secs(5));
    assert!(
        out.bytes.starts_with(b"HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&out.bytes)
    );
}
