//! What a report puts on the wire besides its body: every byte is paid for on metered links
//! (bench/README.md, bytes per report). The request head carries exactly these headers.

mod common;

use std::sync::{Arc, Mutex};

use common::raw_server::RawServer;
use common::THING;
use fleets::{Client, Config, ReportOptions};

#[test]
fn a_report_sends_only_the_headers_it_needs() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = RawServer::start(None, move |conn| {
        while let Some(request) = conn.read_request() {
            log.lock().unwrap().push(request);
            conn.respond(200, "", r#"{"version":1}"#);
        }
    });
    let config = Config::new(&server.http_endpoint(), "ak_test", "test-secret").unwrap();
    let client = Client::new(&config).unwrap();
    let reported = r#"{"temperature":21.5}"#;
    let options = ReportOptions {
        client_token: Some("tok-001"),
        version: 0,
    };
    client.shadow_report(THING, reported, options).unwrap();

    let requests = seen.lock().unwrap();
    let (head, body) = requests[0].split_once("\r\n\r\n").unwrap();
    let mut lines = head.split("\r\n");
    assert_eq!(
        lines.next(),
        Some("POST /api/v1/thing-datas/shadow/reported HTTP/1.1")
    );
    let mut names: Vec<String> = lines
        .map(|l| l.split_once(':').unwrap().0.to_ascii_lowercase())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "authorization",
            "content-length",
            "content-type",
            "host",
            "user-agent"
        ],
        "{head}"
    );
    let user_agent = format!("user-agent: libfleets/{}", env!("CARGO_PKG_VERSION"));
    assert!(head.contains(&user_agent), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(
        body,
        r#"{"thingName":"thermostat-001","state":{"reported":{"temperature":21.5}},"clientToken":"tok-001"}"#
    );
}
