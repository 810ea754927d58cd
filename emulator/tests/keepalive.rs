//! Keep-alive knobs that reproduce real servers closing connections (idle timeout, responses
//! per connection), and the connection counter.

mod common;

use common::{admin_port_client, raw_get, Client, Conn};
use fleets_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule, TlsMode};
use serde_json::json;
use std::time::{Duration, Instant};

const T: &str = "thermostat-001";

fn start(opts: EmulatorOptions) -> Emulator {
    let emu = common::start_with(opts);
    emu.register_thing(T);
    emu
}

fn shadow(emu: &Emulator) -> Vec<u8> {
    raw_get(emu, &format!("/api/v1/thing-datas/{T}/shadow"), "")
}

#[test]
fn idle_connections_are_closed_silently_after_the_timeout() {
    let emu = start(EmulatorOptions {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    let mut conn = Conn::open(&emu);
    let r = conn.exchange(&shadow(&emu)).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), None, "no warning before the close");
    let t = Instant::now();
    assert_eq!(
        conn.wait_closed(Duration::from_secs(5)),
        Ok(()),
        "a clean close"
    );
    let idle = t.elapsed();
    assert!(
        idle >= Duration::from_millis(250) && idle < Duration::from_millis(1500),
        "{idle:?}"
    );
    // reusing the stale connection fails
    assert!(conn.exchange(&shadow(&emu)).is_err());
}

#[test]
fn busy_connections_and_slow_requests_are_not_idle() {
    let emu = start(EmulatorOptions {
        idle_timeout: Some(Duration::from_millis(300)),
        ..Default::default()
    });
    let mut conn = Conn::open(&emu);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(900) {
        assert_eq!(conn.exchange(&shadow(&emu)).unwrap().status, 200);
        std::thread::sleep(Duration::from_millis(100));
    }
    // a request that takes longer than the idle timeout is answered
    emu.add_fault(FaultRule::new(FaultKind::Delay, "").delay_ms(700));
    assert_eq!(conn.exchange(&shadow(&emu)).unwrap().status, 200);
    assert_eq!(emu.stats().connections_accepted, 1);
}

#[test]
fn connections_close_after_n_responses_without_warning() {
    let emu = start(EmulatorOptions {
        requests_per_connection: Some(2),
        ..Default::default()
    });
    let mut conn = Conn::open(&emu);
    for _ in 0..2 {
        let r = conn.exchange(&shadow(&emu)).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(conn.wait_closed(Duration::from_secs(5)), Ok(()));

    // a third request sent right behind the second response is not answered
    let mut conn = Conn::open(&emu);
    let mut both = shadow(&emu);
    both.extend_from_slice(&shadow(&emu));
    conn.send(&both).unwrap();
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    assert_eq!(conn.read_response(false).unwrap().status, 200);
    assert!(conn.exchange(&shadow(&emu)).is_err());
    let s = emu.stats();
    assert_eq!(s.total, 4, "the unanswered request was not handled");
    assert_eq!(s.connections_accepted, 2);
}

#[test]
fn knobs_change_at_runtime_through_the_admin_api_and_in_process() {
    let emu = start(EmulatorOptions::default());
    let admin = admin_port_client(&emu);
    assert_eq!(
        admin.admin("GET", "/admin/v1/keepalive", None).ok(),
        json!({"idle_timeout_ms": null, "requests_per_connection": null})
    );
    let mut open = Conn::open(&emu);
    assert_eq!(open.exchange(&shadow(&emu)).unwrap().status, 200);
    // applies to a connection that is already open
    let r = admin
        .admin(
            "PUT",
            "/admin/v1/keepalive",
            Some(&json!({"idle_timeout_ms": 200})),
        )
        .ok();
    assert_eq!(
        r,
        json!({"idle_timeout_ms": 200, "requests_per_connection": null})
    );
    let t = Instant::now();
    assert_eq!(open.wait_closed(Duration::from_secs(5)), Ok(()));
    assert!(t.elapsed() < Duration::from_millis(1500));
    // null (or 0) turns a knob off; absent fields are kept
    let r = admin
        .admin(
            "PUT",
            "/admin/v1/keepalive",
            Some(&json!({"idle_timeout_ms": null, "requests_per_connection": 1})),
        )
        .ok();
    assert_eq!(
        r,
        json!({"idle_timeout_ms": null, "requests_per_connection": 1})
    );
    let mut conn = Conn::open(&emu);
    assert_eq!(conn.exchange(&shadow(&emu)).unwrap().status, 200);
    assert_eq!(conn.wait_closed(Duration::from_secs(5)), Ok(()));
    // the admin port is not subject to the knobs
    for _ in 0..3 {
        admin.admin("GET", "/admin/v1/stats", None).ok();
    }
    for bad in [
        json!({"idle_timeout_ms": -1}),
        json!({"idle_timeout_ms": "1s"}),
        json!({"requests_per_connection": 5_000_000_000u64}),
    ] {
        admin
            .admin("PUT", "/admin/v1/keepalive", Some(&bad))
            .err(400, "InvalidRequest");
    }
    // in-process
    emu.set_requests_per_connection(None);
    emu.set_idle_timeout(Some(Duration::from_millis(150)));
    let mut conn = Conn::open(&emu);
    for _ in 0..3 {
        assert_eq!(conn.exchange(&shadow(&emu)).unwrap().status, 200);
    }
    assert_eq!(conn.wait_closed(Duration::from_secs(5)), Ok(()));
    emu.set_idle_timeout(None);
    // reset restores the start options (none here)
    emu.set_requests_per_connection(Some(1));
    emu.reset();
    emu.register_thing(T);
    let mut conn = Conn::open(&emu);
    for _ in 0..3 {
        assert_eq!(conn.exchange(&shadow(&emu)).unwrap().status, 200);
    }
}

#[test]
fn connections_are_counted_on_the_device_port_only() {
    let emu = start(EmulatorOptions::default());
    assert_eq!(emu.stats().connections_accepted, 0);
    for _ in 0..3 {
        let mut c = Conn::open(&emu);
        assert_eq!(c.exchange(&shadow(&emu)).unwrap().status, 200);
    }
    let admin = admin_port_client(&emu);
    let s = admin.admin("GET", "/admin/v1/stats", None).ok();
    assert_eq!(s["connections_accepted"], json!(3));
    // one ureq agent, one keep-alive connection
    let c = Client::new(&emu);
    for _ in 0..5 {
        c.shadow(T);
    }
    assert_eq!(emu.stats().connections_accepted, 4);
    emu.reset();
    assert_eq!(emu.stats().connections_accepted, 0);
}

#[test]
fn knobs_work_over_plain_http() {
    let emu = start(EmulatorOptions {
        tls: TlsMode::PlainHttp,
        requests_per_connection: Some(1),
        idle_timeout: Some(Duration::from_millis(200)),
        ..Default::default()
    });
    let mut conn = Conn::open(&emu);
    assert_eq!(conn.exchange(&shadow(&emu)).unwrap().status, 200);
    assert_eq!(conn.wait_closed(Duration::from_secs(5)), Ok(()));
    let conn = Conn::open(&emu);
    let mut conn = conn;
    let t = Instant::now();
    assert_eq!(conn.wait_closed(Duration::from_secs(5)), Ok(()));
    assert!(t.elapsed() < Duration::from_millis(1500));
}
