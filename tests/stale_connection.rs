//! Stale keep-alive connections: a server closes a pooled connection while the device's next
//! request is on its way. A request that is safe to repeat (GET, or a POST with a client
//! token) is sent once more on a fresh connection, outside the retry budget; a failure after
//! response bytes arrived stays `FLEETS_ERR_IO` and is not repeated.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::delay_relay::DelayRelay;
use common::nginx::Nginx;
use common::raw_server::{self, RawServer};
use common::THING;
use fleets::{Client, Config, ErrorCode, Event, ReportOptions};

/// A TLS server that answers one request per connection and then closes it, without
/// `Connection: close`, a little after the response: the client has already sent its next
/// request on the connection by then (the server never reads it, so the close is a reset).
fn one_request_per_connection() -> (RawServer, raw_server::Issued) {
    let ca = raw_server::ca("one-request CA");
    let leaf = raw_server::server_cert(&ca);
    let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), |conn| {
        if conn.read_request().is_some() {
            conn.respond(200, "", "{\"version\":1}");
            thread::sleep(Duration::from_millis(30));
        }
    });
    (server, ca)
}

fn client_for(endpoint: &str, ca_pem: &str, max_attempts: u32) -> Client {
    client_with_credentials(endpoint, ca_pem, max_attempts, ("ak_test", "test-secret"))
}

fn client_with_credentials(
    endpoint: &str,
    ca_pem: &str,
    max_attempts: u32,
    (key, secret): (&str, &str),
) -> Client {
    let mut config = Config::new(endpoint, key, secret).unwrap();
    config.set_ca_pem(ca_pem).unwrap();
    config
        .set_retry(max_attempts, Duration::ZERO, Duration::ZERO)
        .unwrap();
    Client::new(&config).unwrap()
}

#[test]
fn safe_requests_survive_a_server_that_closes_after_every_response() {
    let (server, ca) = one_request_per_connection();
    let client = client_for(&server.https_endpoint(), &ca.cert_pem, 3);
    for i in 0..100 {
        let outcome = if i % 2 == 0 {
            client.shadow_get(THING)
        } else {
            client.shadow_report(THING, r#"{"n":1}"#, ReportOptions::default())
        };
        if let Err(e) = outcome {
            panic!("call {i} failed: {e}");
        }
    }
    assert_eq!(server.requests(), 100, "each call answered once");
    let stats = client.stats();
    assert_eq!(stats.calls, 100);
    assert_eq!(stats.failures, 0);
    assert_eq!(stats.requests, 100 + stats.stale_resends, "{stats:?}");
    assert!(stats.stale_resends >= 90, "{stats:?}");
    assert!(
        server.connections() >= 90,
        "the stale path ran: {} connections for 100 calls",
        server.connections()
    );
}

#[test]
fn the_resend_does_not_need_the_retry_budget() {
    let (server, ca) = one_request_per_connection();
    // Retries off: only a caller-given client token makes the report safe to repeat.
    let client = client_for(&server.https_endpoint(), &ca.cert_pem, 1);
    let options = ReportOptions {
        client_token: Some("tok-1"),
        version: 0,
    };
    for i in 0..20 {
        if let Err(e) = client.shadow_report(THING, r#"{"n":1}"#, options) {
            panic!("call {i} failed: {e}");
        }
        client.shadow_get(THING).unwrap();
    }
    assert_eq!(server.requests(), 40);
}

#[test]
fn requests_that_are_not_safe_to_repeat_are_not_resent() {
    let (server, ca) = one_request_per_connection();
    let client = client_for(&server.https_endpoint(), &ca.cert_pem, 3);
    client.shadow_get(THING).unwrap();
    let event = Event {
        event_type: "boot",
        ..Event::default()
    };
    let err = client.event_publish(THING, event).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    assert!(err.message().contains("closed"), "{err}");
    // Retries off and no client token: a report is not repeated either.
    let client = client_for(&server.https_endpoint(), &ca.cert_pem, 1);
    client.shadow_get(THING).unwrap();
    let err = client
        .shadow_report(THING, "{}", ReportOptions::default())
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    // The server never read the failed requests, and no fresh connection was opened.
    assert_eq!(server.requests(), 2);
    assert_eq!(server.connections(), 2, "not resent");
}

#[test]
fn a_reset_after_response_bytes_is_io_and_not_resent() {
    let ca = raw_server::ca("partial CA");
    let leaf = raw_server::server_cert(&ca);
    let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), |conn| {
        if conn.read_request().is_some() {
            conn.respond(200, "", "{}");
        }
        if conn.read_request().is_some() {
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial\":");
            conn.abort_on_close();
        }
    });
    let client = client_for(&server.https_endpoint(), &ca.cert_pem, 3);
    client.shadow_get(THING).unwrap();
    let err = client.shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    assert_eq!(server.requests(), 2, "not repeated");
}

/// nginx with a short keep-alive timeout behind a link with latency: the device calls a
/// little before the timeout as it sees it, so nginx's close crosses the next request.
#[test]
fn nginx_keepalive_timeout_behind_a_slow_link() {
    let emulator = common::emulator();
    let ca = raw_server::ca("nginx CA");
    let leaf = raw_server::server_cert(&ca);
    let nginx = Nginx::start(
        &leaf.cert_pem,
        &leaf.key_pem,
        emulator.endpoint(),
        "keepalive_timeout 150ms;",
    );
    let relay = DelayRelay::start(nginx.addr(), Duration::from_millis(50));
    let failures = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let endpoint = relay.https_endpoint();
            let (ca_pem, failures) = (ca.cert_pem.clone(), failures.clone());
            let credentials = (
                emulator.api_key().to_owned(),
                emulator.api_secret().to_owned(),
            );
            thread::spawn(move || {
                let credentials = (credentials.0.as_str(), credentials.1.as_str());
                let client = client_with_credentials(&endpoint, &ca_pem, 3, credentials);
                for i in 0..25 {
                    let outcome = if i % 2 == 0 {
                        client.shadow_get(THING).map(drop)
                    } else {
                        client
                            .shadow_report(THING, r#"{"t":1}"#, ReportOptions::default())
                            .map(drop)
                    };
                    if let Err(e) = outcome {
                        eprintln!("thread {t} call {i}: {e}");
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                    // The response took 50 ms to arrive; nginx's 150 ms started before.
                    thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    println!(
        "nginx keepalive 150 ms, 50 ms link: 100 calls, {} connections",
        relay.connections()
    );
    assert_eq!(failures.load(Ordering::SeqCst), 0, "100/100 calls succeed");
    assert!(
        relay.connections() >= 4 + 10,
        "nginx closed connections under the requests ({} connections for 4 clients)",
        relay.connections()
    );
}
