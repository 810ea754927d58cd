//! Responses that try to make the client allocate what it must not: declared lengths far
//! beyond the limit, bodies that run past it. The host process must get a result code, never
//! an abort, a panic or output on stderr.

mod common;

use std::ffi::CString;
use std::process::Command;

use common::raw_server::{self, RawServer};
use common::THING;
use fleets::{Client, Config, ErrorCode, MAX_RESPONSE_BYTES_LIMIT};

/// A TLS server that answers every request with `head` (status line and headers, without the
/// blank line) and `body`, then closes.
fn server(head: &'static str, body: &'static [u8]) -> (RawServer, raw_server::Issued) {
    let ca = raw_server::ca("hostile CA");
    let leaf = raw_server::server_cert(&ca);
    let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), move |conn| {
        while conn.read_request().is_some() {
            conn.send(format!("{head}\r\n\r\n").as_bytes());
            conn.send(body);
        }
    });
    (server, ca)
}

fn config(server: &RawServer, ca: &raw_server::Issued) -> Config {
    let mut config = Config::new(&server.https_endpoint(), "ak_test", "test-secret").unwrap();
    config.set_ca_pem(&ca.cert_pem).unwrap();
    config
        .set_retry(1, Default::default(), Default::default())
        .unwrap();
    config
}

const HUGE_LENGTHS: [&str; 3] = [
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 18446744073709551615",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000000000000",
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9223372036854775808",
];

#[test]
fn a_declared_length_over_the_limit_is_refused_without_allocating_it() {
    for head in HUGE_LENGTHS {
        let (server, ca) = server(head, b"{}");
        for limit in [0, MAX_RESPONSE_BYTES_LIMIT] {
            let mut config = config(&server, &ca);
            config.set_max_response_bytes(limit).unwrap();
            let err = Client::new(&config).unwrap().shadow_get(THING).unwrap_err();
            assert_eq!(err.code(), ErrorCode::BadResponse, "{head}: {err}");
            assert!(err.message().contains("limit"), "{err}");
        }
    }
}

#[test]
fn the_response_limit_has_a_documented_maximum() {
    let mut config = Config::new("https://h", "k", "s").unwrap();
    assert!(config
        .set_max_response_bytes(MAX_RESPONSE_BYTES_LIMIT)
        .is_ok());
    let err = config
        .set_max_response_bytes(MAX_RESPONSE_BYTES_LIMIT + 1)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig);
    assert!(config.set_max_response_bytes(usize::MAX).is_err());
}

#[test]
fn a_body_longer_than_its_declared_small_length_or_the_limit() {
    // Chunked, no length: grows with what arrives and stops at the limit.
    let (server, ca) = server(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked",
        b"8\r\n{\"a\":\"12\r\n8\r\n34567890\r\n8\r\n12345678\r\n",
    );
    let mut config = config(&server, &ca);
    config.set_max_response_bytes(20).unwrap();
    let err = Client::new(&config).unwrap().shadow_get(THING).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadResponse, "{err}");
}

#[test]
fn a_large_body_within_the_limit_arrives_whole() {
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let mut text = b"{\"pad\":\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
        text.extend(b"\"}");
        text
    });
    let head: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}",
            body.len()
        )
        .into_boxed_str(),
    );
    let (server, ca) = server(head, body);
    let mut config = config(&server, &ca);
    config.set_max_response_bytes(4 * 1024 * 1024).unwrap();
    let response = Client::new(&config).unwrap().shadow_get(THING).unwrap();
    assert_eq!(response.body().len(), body.len());
}

/// Through the C ABI in a child process: a result code, and nothing at all on stderr.
#[test]
fn through_the_c_abi_no_panic_and_no_stderr() {
    if std::env::var_os("FLEETS_HOSTILE_CHILD").is_some() {
        return child();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "through_the_c_abi_no_panic_and_no_stderr",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FLEETS_HOSTILE_CHILD", "1")
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("child checked"), "{stdout}");
    assert!(stderr.trim().is_empty(), "stderr: {stderr}");
}

fn child() {
    use fleets::ffi::*;
    for head in HUGE_LENGTHS {
        let (server, ca) = server(head, b"{}");
        let endpoint = CString::new(server.https_endpoint()).unwrap();
        let pem = CString::new(ca.cert_pem.clone()).unwrap();
        let thing = CString::new(THING).unwrap();
        let mut cfg = std::ptr::null_mut();
        let mut client = std::ptr::null_mut();
        let mut out = [0 as std::ffi::c_char; 256];
        let mut len = 0usize;
        // SAFETY: valid NUL-terminated strings and out pointers; every handle is freed.
        unsafe {
            assert_eq!(
                fleets_config_new(
                    endpoint.as_ptr(),
                    c"ak".as_ptr(),
                    c"secret".as_ptr(),
                    &mut cfg
                ),
                FLEETS_OK
            );
            assert_eq!(fleets_config_set_ca_pem(cfg, pem.as_ptr()), FLEETS_OK);
            assert_eq!(
                fleets_config_set_max_response_bytes(cfg, MAX_RESPONSE_BYTES_LIMIT),
                FLEETS_OK
            );
            assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
            let rc = fleets_shadow_get(
                client,
                thing.as_ptr(),
                out.as_mut_ptr(),
                out.len(),
                &mut len,
            );
            assert_eq!(rc, FLEETS_ERR_BAD_RESPONSE, "{head}");
            fleets_client_free(client);
            fleets_config_free(cfg);
        }
    }
    println!("child checked");
}

/// A server that echoes the request's `Authorization` header and the secret in its error,
/// with control characters meant to forge log lines and cut C strings.
fn echoing_server(secret: &'static str) -> (RawServer, raw_server::Issued) {
    let ca = raw_server::ca("echo CA");
    let leaf = raw_server::server_cert(&ca);
    let server = RawServer::start(Some(raw_server::tls_config(&[&leaf], &leaf)), move |conn| {
        while let Some(request) = conn.read_request() {
            let authorization = request
                .lines()
                .find_map(|l| l.strip_prefix("authorization: "))
                .unwrap_or("none")
                .to_owned();
            let body = serde_json::json!({
                "code": "Bad\u{1b}[31mRequest",
                "message": format!(
                    "you sent {authorization} and {secret}\r\nINFO forged line\0tail"
                ),
            })
            .to_string();
            let location = format!("Location: https://evil.example/{secret}\r\n");
            conn.respond(400, "", &body);
            conn.respond(302, &location, "");
        }
    });
    (server, ca)
}

#[test]
fn server_text_cannot_leak_the_secret_or_forge_log_lines() {
    for secret in ["pw", "a-longer-secret-5f2c"] {
        let (server, ca) = echoing_server(secret);
        let mut config = Config::new(&server.https_endpoint(), "ak_test", secret).unwrap();
        config.set_ca_pem(&ca.cert_pem).unwrap();
        config
            .set_retry(1, Default::default(), Default::default())
            .unwrap();
        let client = Client::new(&config).unwrap();
        let err = client.shadow_get(THING).unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest);
        let b64 = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("ak_test:{secret}"),
        );
        let shown = [
            err.message().to_owned(),
            err.to_string(),
            format!("{err:?}"),
            err.body().unwrap_or_default().to_owned(),
        ];
        for text in &shown {
            assert!(!text.contains(secret), "{secret:?} leaked: {text}");
            assert!(!text.contains(&b64), "header leaked: {text}");
        }
        assert!(
            !err.message().chars().any(char::is_control),
            "{:?}",
            err.message()
        );
        assert!(err.message().contains("\\x1b[31m"), "{}", err.message());
        // The redirect that follows (the second response) names its Location, redacted.
        let err = client.shadow_get(THING).unwrap_err();
        assert!(!err.message().contains(secret), "{}", err.message());
    }
}

#[test]
fn through_the_c_abi_the_message_is_one_line_of_its_reported_length() {
    use fleets::ffi::*;
    let (server, ca) = echoing_server("c-abi-secret-77");
    let endpoint = CString::new(server.https_endpoint()).unwrap();
    let pem = CString::new(ca.cert_pem.clone()).unwrap();
    let thing = CString::new(THING).unwrap();
    let (mut cfg, mut client) = (std::ptr::null_mut(), std::ptr::null_mut());
    let mut message = [0 as std::ffi::c_char; 1024];
    // SAFETY: valid NUL-terminated strings and buffers; every handle is freed.
    unsafe {
        assert_eq!(
            fleets_config_new(
                endpoint.as_ptr(),
                c"ak".as_ptr(),
                c"c-abi-secret-77".as_ptr(),
                &mut cfg
            ),
            FLEETS_OK
        );
        assert_eq!(fleets_config_set_ca_pem(cfg, pem.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
        let rc = fleets_shadow_get(
            client,
            thing.as_ptr(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
        );
        assert_eq!(rc, FLEETS_ERR_BAD_REQUEST);
        let len = fleets_last_error_message(message.as_mut_ptr(), message.len());
        let text = std::ffi::CStr::from_ptr(message.as_ptr()).to_str().unwrap();
        assert_eq!(
            text.len(),
            len,
            "strlen equals the reported length: {text:?}"
        );
        assert!(
            !text.contains('\n') && !text.contains("c-abi-secret-77"),
            "{text}"
        );
        fleets_client_free(client);
        fleets_config_free(cfg);
    }
}
