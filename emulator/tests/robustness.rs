//! Hostile input: random bodies on every endpoint never produce a 500 or a non-JSON answer, and
//! malformed HTTP never takes the server down.

mod common;

use common::Client;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::time::Duration;

/// xorshift64*: deterministic pseudo-random numbers for reproducible fuzzing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn value(&mut self, depth: u32) -> Value {
        match self.below(if depth > 3 { 6 } else { 8 }) {
            0 => Value::Null,
            1 => json!(self.below(2) == 0),
            2 => json!(self.next() as i64),
            3 => json!((self.next() as f64) / 7.0),
            4 => json!(
                [
                    "SUCCEEDED",
                    "IN_PROGRESS",
                    "QUEUED",
                    "warn",
                    "thermostat-001",
                    "",
                    "x".repeat(70).as_str(),
                    "é\u{0}"
                ][self.below(8) as usize]
            ),
            5 => json!(self.below(3)),
            6 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let keys = [
                    "thingName",
                    "state",
                    "reported",
                    "clientToken",
                    "version",
                    "eventType",
                    "severity",
                    "timestamp",
                    "data",
                    "appId",
                    "executionId",
                    "status",
                    "result",
                    "statusDetails",
                    "stepTimeoutInMinutes",
                    "expectedVersion",
                    "includeJobDocument",
                    "desired",
                ];
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(6) {
                    m.insert(
                        keys[self.below(keys.len() as u64) as usize].to_owned(),
                        self.value(depth + 1),
                    );
                }
                Value::Object(m)
            }
        }
    }
}

#[test]
fn random_bodies_never_500() {
    let emu = common::start();
    emu.register_thing("thermostat-001");
    let job = emu.create_job(json!({"op": "x"}), &["thermostat-001"], None);
    emu.create_command("thermostat-001", "a", json!({}), 0);
    let c = Client::new(&emu);
    let paths = [
        "/api/v1/thing-datas/shadow/reported".to_owned(),
        "/api/v1/thing-datas/events".to_owned(),
        "/api/v1/thing-datas/command/response".to_owned(),
        "/api/v1/thing-datas/jobs/get".to_owned(),
        "/api/v1/thing-datas/jobs/start-next".to_owned(),
        format!("/api/v1/thing-datas/jobs/{job}/get"),
        format!("/api/v1/thing-datas/jobs/{job}/update"),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..1500 {
        let path = &paths[i % paths.len()];
        let mut body = rng.value(0);
        // mostly objects with a valid thing name, so the deeper validation is reached
        if let Value::Object(m) = &mut body {
            if rng.below(4) != 0 {
                m.insert("thingName".into(), json!("thermostat-001"));
            }
        }
        let text = if rng.below(10) == 0 {
            let s = body.to_string();
            let mut cut = rng.below(s.len() as u64 + 1) as usize;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s[..cut].to_owned()
        } else {
            body.to_string()
        };
        let r = c.post_raw(path, &text);
        assert!(r.status < 500, "{path} {text} -> {} {}", r.status, r.text);
        let v = r.json();
        if r.status != 200 {
            assert!(
                v["code"].is_string() && v["message"].is_string(),
                "{}",
                r.text
            );
        }
        *statuses.entry(r.status).or_insert(0u32) += 1;
    }
    // the fuzzing reached both successes and validation errors
    assert!(
        statuses.contains_key(&200) && statuses.contains_key(&400),
        "{statuses:?}"
    );
    c.shadow("thermostat-001");
}

#[test]
fn malformed_http_does_not_take_the_server_down() {
    let emu = common::start_with(fleets_emulator::EmulatorOptions {
        tls: fleets_emulator::TlsMode::PlainHttp,
        ..Default::default()
    });
    let junk: [&[u8]; 7] = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"GET\r\n\r\n",
        b"POST /api/v1/thing-datas/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"POST /api/v1/thing-datas/events HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /api/v1/thing-datas/x/shadow HTTP/1.1\r\nHost: a\r\nHost: b\r\nAuthorization: \xff\xfe\r\n\r\n",
        b"\x00\x00\x00\x00\x00\x00\x00\x00\r\n\r\n",
        b"GET /%%%%%/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for j in junk {
        let mut s = std::net::TcpStream::connect(emu.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let _ = s.write_all(j);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        assert!(
            !out.starts_with(b"HTTP/1.1 500"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }
    // a TLS emulator survives plain-text and half-open handshakes too
    let tls = common::start();
    for j in [&b"GET / HTTP/1.1\r\n\r\n"[..], b"\x16\x03\x01\x00\x05hello"] {
        let mut s = std::net::TcpStream::connect(tls.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let _ = s.write_all(j);
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
    }
    let c = Client::new(&tls);
    c.admin("PUT", "/admin/v1/things/alive", None).ok();
    let c = Client::new(&emu);
    c.admin("PUT", "/admin/v1/things/alive", None).ok();
}
