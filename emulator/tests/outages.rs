//! Taking the device port offline (refuse, blackhole, reset) and back online on the same
//! port, with the admin-only port staying up.

mod common;

use common::{admin_port_client, raw_get, raw_post, Client, Conn};
use fleets_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule, OfflineMode, TlsMode};
use serde_json::json;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant};

const T: &str = "thermostat-001";
const EVENTS: &str = "/api/v1/thing-datas/events";

fn event() -> serde_json::Value {
    json!({"thingName": T, "eventType": "e", "timestamp": 1})
}

fn setup() -> Emulator {
    let emu = common::start();
    emu.register_thing(T);
    Client::new(&emu).post(EVENTS, &event()).ok();
    emu
}

fn shadow_request(emu: &Emulator) -> Vec<u8> {
    raw_get(emu, &format!("/api/v1/thing-datas/{T}/shadow"), "")
}

/// Starts a request that the server holds for `delay_ms` (a delay fault) on its own
/// connection; the thread returns what the client saw.
fn in_flight(
    emu: &Emulator,
    delay_ms: u64,
    read_timeout: Duration,
) -> std::thread::JoinHandle<Result<u16, ErrorKind>> {
    emu.add_fault(FaultRule::new(FaultKind::Delay, EVENTS).delay_ms(delay_ms));
    let mut conn = Conn::open(emu);
    conn.set_read_timeout(read_timeout);
    let req = raw_post(emu, EVENTS, &event().to_string());
    let h = std::thread::spawn(move || match conn.exchange(&req) {
        Ok(r) => Ok(r.status),
        Err(e) => Err(e.kind()),
    });
    // Let the request reach the handler.
    std::thread::sleep(Duration::from_millis(300));
    h
}

#[test]
fn refuse_closes_the_port_and_online_reopens_the_same_port() {
    let emu = setup();
    let addr = emu.local_addr();
    let mut idle = Conn::open(&emu);
    assert_eq!(idle.exchange(&shadow_request(&emu)).unwrap().status, 200);
    let flight = in_flight(&emu, 2000, Duration::from_secs(10));

    let t = Instant::now();
    emu.set_offline(OfflineMode::Refuse).unwrap();
    assert_eq!(emu.offline(), Some(OfflineMode::Refuse));
    let e = TcpStream::connect(addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    // the request in flight fails at once, without a response
    let seen = flight.join().unwrap();
    assert!(seen.is_err(), "{seen:?}");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    // an open keep-alive connection is closed
    assert!(idle.exchange(&shadow_request(&emu)).is_err());

    // the admin port stays up and shows the mode
    let admin = admin_port_client(&emu);
    let stats = admin.admin("GET", "/admin/v1/stats", None).ok();
    assert_eq!(stats["offline"], json!("refuse"));
    assert_eq!(emu.stats().offline, Some(OfflineMode::Refuse));

    emu.set_online().unwrap();
    assert_eq!(emu.local_addr(), addr);
    assert_eq!(emu.stats().offline, None);
    let c = Client::new(&emu);
    c.post(EVENTS, &event()).ok();
    // state survived; the request in flight was never handled
    assert_eq!(emu.events(T).len(), 2);
    assert!(emu.stats().by_endpoint["POST /api/v1/thing-datas/events"] >= 3);
}

#[test]
fn blackhole_accepts_and_never_answers_and_loses_what_it_held() {
    let emu = setup();
    let mut open = Conn::open(&emu);
    assert_eq!(open.exchange(&shadow_request(&emu)).unwrap().status, 200);
    let flight = in_flight(&emu, 500, Duration::from_millis(1500));

    emu.set_offline(OfflineMode::Blackhole).unwrap();
    // a new connection is accepted (TCP connect works) but the TLS handshake is not answered
    let tcp = TcpStream::connect(emu.local_addr()).unwrap();
    drop(tcp);
    let mut fresh = Conn::open(&emu);
    fresh.set_read_timeout(Duration::from_millis(500));
    let e = fresh.exchange(&shadow_request(&emu)).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    // an open keep-alive connection goes silent
    open.set_read_timeout(Duration::from_millis(500));
    let e = open
        .exchange(&raw_post(&emu, EVENTS, &event().to_string()))
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e}"
    );
    // the request in flight runs into the client's timeout
    let seen = flight.join().unwrap();
    assert!(
        matches!(seen, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{seen:?}"
    );
    // a patient client that connects during the blackhole
    let mut patient = Conn::open(&emu);
    patient.set_read_timeout(Duration::from_secs(10));
    let req = shadow_request(&emu);
    let h = std::thread::spawn(move || patient.exchange(&req).map(|r| r.status));
    std::thread::sleep(Duration::from_millis(300));

    admin_port_client(&emu)
        .admin("POST", "/admin/v1/online", None)
        .ok();
    // ... is let go when the port comes back, without an answer
    let t = Instant::now();
    assert!(h.join().unwrap().is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        emu.events(T).len(),
        1,
        "nothing that went into the blackhole was handled, not even later"
    );
    Client::new(&emu).post(EVENTS, &event()).ok();
    assert_eq!(emu.events(T).len(), 2);
}

#[test]
fn reset_accepts_then_resets() {
    let emu = setup();
    let mut open = Conn::open(&emu);
    assert_eq!(open.exchange(&shadow_request(&emu)).unwrap().status, 200);
    let flight = in_flight(&emu, 2000, Duration::from_secs(10));

    emu.set_offline(OfflineMode::Reset).unwrap();
    // the request in flight: ECONNRESET
    assert_eq!(flight.join().unwrap(), Err(ErrorKind::ConnectionReset));
    // connect succeeds, then the handshake meets RST
    let tcp = TcpStream::connect(emu.local_addr()).unwrap();
    drop(tcp);
    let out = common::raw_exchange(&emu, &shadow_request(&emu), Duration::from_secs(5));
    assert!(out.bytes.is_empty());
    assert_eq!(out.end, Err(ErrorKind::ConnectionReset));
    // an open keep-alive connection was reset
    let r = open.exchange(&shadow_request(&emu));
    let kind = r.unwrap_err().kind();
    assert!(
        matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe),
        "{kind:?}"
    );
    assert!(emu.stats().connections_accepted >= 4);

    emu.set_online().unwrap();
    Client::new(&emu).post(EVENTS, &event()).ok();
    assert_eq!(emu.events(T).len(), 2);
}

#[test]
fn modes_switch_directly_and_admin_routes_work() {
    let emu = setup();
    let addr = emu.local_addr();
    let admin = admin_port_client(&emu);
    let r = admin
        .admin(
            "POST",
            "/admin/v1/offline",
            Some(&json!({"mode": "refuse"})),
        )
        .ok();
    assert_eq!(r, json!({"offline": "refuse"}));
    assert_eq!(
        admin.admin("GET", "/admin/v1/offline", None).ok(),
        json!({"offline": "refuse"})
    );
    assert!(TcpStream::connect(addr).is_err());
    // refuse -> reset re-opens the port (accept, then RST)
    admin
        .admin("POST", "/admin/v1/offline", Some(&json!({"mode": "reset"})))
        .ok();
    let out = common::raw_exchange(&emu, &shadow_request(&emu), Duration::from_secs(5));
    assert_eq!(out.end, Err(ErrorKind::ConnectionReset));
    // reset -> blackhole
    emu.set_offline(OfflineMode::Blackhole).unwrap();
    let out = common::raw_exchange(&emu, &shadow_request(&emu), Duration::from_millis(300));
    assert!(out.bytes.is_empty());
    assert!(matches!(
        out.end,
        Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)
    ));
    // invalid requests
    admin
        .admin("POST", "/admin/v1/offline", Some(&json!({"mode": "down"})))
        .err(400, "InvalidRequest");
    admin
        .admin("POST", "/admin/v1/offline", Some(&json!({})))
        .err(400, "InvalidRequest");
    admin
        .admin("DELETE", "/admin/v1/offline", None)
        .err(405, "MethodNotAllowed");
    admin
        .admin("GET", "/admin/v1/online", None)
        .err(405, "MethodNotAllowed");
    // the admin port serves nothing but the admin API
    admin
        .get(&format!("/api/v1/thing-datas/{T}/shadow"))
        .err(404, "NotFound");
    // going offline twice is fine; online answers with the mode
    emu.set_offline(OfflineMode::Refuse).unwrap();
    emu.set_offline(OfflineMode::Refuse).unwrap();
    assert_eq!(
        admin.admin("POST", "/admin/v1/online", None).ok(),
        json!({"offline": null})
    );
    emu.set_online().unwrap();
    Client::new(&emu).shadow(T);
}

#[test]
fn admin_reset_brings_the_port_back() {
    let emu = setup();
    emu.set_offline(OfflineMode::Refuse).unwrap();
    admin_port_client(&emu)
        .admin("POST", "/admin/v1/reset", None)
        .ok();
    assert_eq!(emu.offline(), None);
    let c = Client::new(&emu);
    c.admin("PUT", &format!("/admin/v1/things/{T}"), None).ok();
    c.shadow(T);
}

#[test]
fn outages_over_plain_http() {
    let emu = common::start_with(EmulatorOptions {
        tls: TlsMode::PlainHttp,
        ..Default::default()
    });
    emu.register_thing(T);
    assert!(emu.admin_endpoint().starts_with("http://127.0.0.1:"));
    admin_port_client(&emu)
        .admin("GET", "/admin/v1/stats", None)
        .ok();
    let mut open = Conn::open(&emu);
    assert_eq!(open.exchange(&shadow_request(&emu)).unwrap().status, 200);
    emu.set_offline(OfflineMode::Blackhole).unwrap();
    let out = common::raw_exchange(&emu, &shadow_request(&emu), Duration::from_millis(300));
    assert!(out.bytes.is_empty(), "{:?}", out.bytes);
    emu.set_offline(OfflineMode::Reset).unwrap();
    let out = common::raw_exchange(&emu, &shadow_request(&emu), Duration::from_secs(5));
    assert_eq!(out.end, Err(ErrorKind::ConnectionReset));
    emu.set_offline(OfflineMode::Refuse).unwrap();
    assert_eq!(
        TcpStream::connect(emu.local_addr()).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    emu.set_online().unwrap();
    let mut again = Conn::open(&emu);
    assert_eq!(again.exchange(&shadow_request(&emu)).unwrap().status, 200);
}

#[test]
fn dropping_an_offline_emulator_is_fast() {
    for mode in [
        OfflineMode::Refuse,
        OfflineMode::Blackhole,
        OfflineMode::Reset,
    ] {
        let emu = setup();
        let _held = Conn::open(&emu);
        emu.set_offline(mode).unwrap();
        let t = Instant::now();
        drop(emu);
        assert!(t.elapsed() < Duration::from_secs(1), "{mode:?}");
    }
}
