//! The response path (ureq's parser, then the crate-private `response::classify`, size
//! limit, Retry-After, fleets_last_*): a loopback server on 127.0.0.1 answers every request
//! with the fuzzed bytes and closes the connection; a client calls it through the C ABI.
//!
//! Input: byte 0 = buffer shape, byte 1 = flags (bit 7: build a well-formed response from
//! status + headers + body; bit 6: client with a 64-byte response limit; bits 0-2: call),
//! then either the raw response bytes, or `status(2 bytes) header-lines NUL body`.
#![no_main]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fleets::ffi::*;
use fleets_fuzz::{check_result, OutBuf};
use libfuzzer_sys::fuzz_target;

static RESPONSE: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn serve(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut req = Vec::new();
    let mut chunk = [0u8; 4096];
    // Read the whole request (headers and Content-Length body) before answering, so the
    // client never sees a reset while still sending.
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&chunk[..n]),
        }
        if let Some(end) = req.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&req[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if req.len() >= end + 4 + len {
                break;
            }
        }
    }
    let response = RESPONSE.lock().unwrap().clone();
    let _ = s.write_all(&response);
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// An error body as the library keeps it: every form of the client's secret a server could
/// echo replaced (src/redact.rs; longest first). Key "ak_fuzz", secret "secret".
fn redacted(text: &str) -> String {
    const NEEDLES: [&str; 3] = [
        "YWtfZnV6ejpzZWNyZXQ=", // base64("ak_fuzz:secret"), the Authorization header
        "c2VjcmV0",             // base64("secret")
        "secret",
    ];
    NEEDLES
        .iter()
        .fold(text.to_owned(), |t, n| t.replace(n, "<redacted>"))
}

struct Handle(*mut fleets_client_t);
// SAFETY: fleets clients are thread-safe; used from the fuzzing thread only.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fn clients() -> &'static [Handle; 2] {
    static CLIENTS: OnceLock<[Handle; 2]> = OnceLock::new();
    CLIENTS.get_or_init(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            // One connection at a time, on this one thread: the client (one fuzzing thread,
            // one attempt) never needs two, and a thread per connection trips LeakSanitizer
            // on glibc's TLS destructor records.
            for s in listener.incoming().flatten() {
                serve(s);
            }
        });
        let make = |limit: usize| unsafe {
            let ep = std::ffi::CString::new(format!("http://127.0.0.1:{port}/base")).unwrap();
            let mut cfg = std::ptr::null_mut();
            assert_eq!(
                fleets_config_new(
                    ep.as_ptr(),
                    c"ak_fuzz".as_ptr(),
                    c"secret".as_ptr(),
                    &mut cfg
                ),
                FLEETS_OK
            );
            assert_eq!(fleets_config_set_timeouts(cfg, 500, 1000), FLEETS_OK);
            assert_eq!(fleets_config_set_retry(cfg, 1, 0, 0), FLEETS_OK);
            assert_eq!(fleets_config_set_max_response_bytes(cfg, limit), FLEETS_OK);
            let mut client = std::ptr::null_mut();
            assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
            fleets_config_free(cfg);
            Handle(client)
        };
        [make(0), make(64)]
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (shape, flags, rest) = (data[0], data[1], &data[2..]);
    let structured = flags & 0x80 != 0;
    let mut status = 0u16;
    let mut body: &[u8] = &[];
    let response = if structured {
        if rest.len() < 2 {
            return;
        }
        // 200..=599 mostly; ureq's handling of 1xx is not what this target is after.
        status = 200 + u16::from_le_bytes([rest[0], rest[1]]) % 400;
        let (headers, b) = match rest[2..].iter().position(|&c| c == 0) {
            Some(i) => (&rest[2..2 + i], &rest[3 + i..]),
            None => (&[][..], &rest[2..]),
        };
        // Header lines: keep printable ones only so the message stays well-formed.
        let headers: Vec<u8> = headers
            .iter()
            .copied()
            .filter(|&c| c == b'\n' || (0x20..0x7f).contains(&c))
            .collect();
        let headers = String::from_utf8(headers).unwrap();
        let mut extra = String::new();
        let valid = |l: &&str| {
            l.split_once(':').is_some_and(|(n, _)| {
                !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
            })
        };
        for line in headers.lines().filter(valid) {
            let lower = line.to_ascii_lowercase();
            if lower.starts_with("content-length")
                || lower.starts_with("transfer-encoding")
                || lower.starts_with("connection")
            {
                continue;
            }
            extra.push_str(line);
            extra.push_str("\r\n");
        }
        body = b;
        let mut r = format!(
            "HTTP/1.1 {status} Fuzz\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
            b.len()
        )
        .into_bytes();
        r.extend_from_slice(b);
        r
    } else {
        rest.to_vec()
    };
    *RESPONSE.lock().unwrap() = response;

    let limited = flags & 0x40 != 0;
    let c = clients()[usize::from(limited)].0;
    let mut buf = OutBuf::new(shape);
    let (name, r) = unsafe {
        match flags & 0x07 {
            0 => (
                "fleets_shadow_get",
                fleets_shadow_get(c, c"thing-1".as_ptr(), buf.out(), buf.cap(), buf.out_len()),
            ),
            1 => (
                "fleets_shadow_report",
                fleets_shadow_report(
                    c,
                    c"thing-1".as_ptr(),
                    c"{\"t\":1}".as_ptr(),
                    std::ptr::null(),
                    0,
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            2 => (
                "fleets_event_publish",
                fleets_event_publish(
                    c,
                    c"thing-1".as_ptr(),
                    c"alarm".as_ptr(),
                    FLEETS_SEVERITY_WARN,
                    0,
                    std::ptr::null(),
                    std::ptr::null(),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            3 => (
                "fleets_command_respond",
                fleets_command_respond(
                    c,
                    c"thing-1".as_ptr(),
                    c"exec-1".as_ptr(),
                    FLEETS_EXECUTION_SUCCEEDED,
                    std::ptr::null(),
                    0,
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            4 => (
                "fleets_jobs_get_pending",
                fleets_jobs_get_pending(
                    c,
                    c"thing-1".as_ptr(),
                    std::ptr::null(),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            5 => (
                "fleets_jobs_start_next",
                fleets_jobs_start_next(
                    c,
                    c"thing-1".as_ptr(),
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            6 => (
                "fleets_jobs_describe",
                fleets_jobs_describe(
                    c,
                    c"thing-1".as_ptr(),
                    c"job-1".as_ptr(),
                    std::ptr::null(),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            _ => (
                "fleets_jobs_update",
                fleets_jobs_update(
                    c,
                    c"thing-1".as_ptr(),
                    c"job-1".as_ptr(),
                    FLEETS_EXECUTION_IN_PROGRESS,
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
        }
    };
    check_result(name, r);
    if buf.rejected() {
        assert_eq!(r, FLEETS_ERR_NULL_ARGUMENT);
        return;
    }
    assert!(
        !matches!(
            r,
            FLEETS_ERR_NULL_ARGUMENT
                | FLEETS_ERR_INVALID_ARGUMENT
                | FLEETS_ERR_INVALID_JSON
                | FLEETS_ERR_INVALID_CONFIG
                | FLEETS_ERR_TLS
        ),
        "{name}: {r} for a server response"
    );
    let http = fleets_last_http_status();
    let retry_after = fleets_last_retry_after_ms();
    assert!(retry_after >= -1, "retry-after {retry_after}");

    // What fleets_last_response holds must be what the call copied.
    let mut len = 0usize;
    let lr = unsafe { fleets_last_response(std::ptr::null_mut(), 0, &mut len) };
    let last_body = if lr == FLEETS_OK {
        let mut v = vec![0u8; len + 1];
        let mut len2 = 0usize;
        assert_eq!(
            unsafe { fleets_last_response(v.as_mut_ptr().cast(), v.len(), &mut len2) },
            FLEETS_OK
        );
        assert_eq!(len2, len);
        assert_eq!(v[len], 0);
        v.truncate(len);
        Some(v)
    } else {
        assert_eq!(lr, FLEETS_ERR_INVALID_ARGUMENT);
        None
    };

    match r {
        FLEETS_OK | FLEETS_ERR_BUFFER_TOO_SMALL => {
            assert!((200..300).contains(&http), "{name}: {r} with HTTP {http}");
            let lb = last_body.expect("a 2xx body is kept");
            assert!(
                std::str::from_utf8(&lb).is_ok(),
                "2xx body kept but not UTF-8"
            );
            buf.check(name, r, Some(&lb));
            if structured {
                assert_eq!(i32::from(status), http);
                if status != 204 {
                    assert_eq!(lb, body, "2xx body changed");
                }
                if limited {
                    // (what was delivered: a 204's body is not read at all)
                    assert!(
                        lb.len() <= 64,
                        "{} bytes passed the 64-byte limit",
                        lb.len()
                    );
                }
            }
        }
        300..=308 => {
            // any non-2xx status that reached classification (1xx included, e.g. 101)
            assert!(
                (100..=999).contains(&http) && !(200..300).contains(&http),
                "{name}: {r} with HTTP {http}"
            );
            let expect = fleets::ErrorCode::from_http_status(http as u16) as u32;
            assert_eq!(r, expect, "HTTP {http} classified as {r}");
            if structured {
                assert_eq!(i32::from(status), http);
                // 304 carries no body by definition (RFC 9110 15.4.5).
                if !limited && status != 304 {
                    let expected = redacted(&String::from_utf8_lossy(body));
                    assert_eq!(last_body.as_deref(), Some(expected.as_bytes()));
                }
            }
        }
        _ => {
            if structured && !limited && r != FLEETS_ERR_BAD_RESPONSE {
                panic!("{name}: well-formed HTTP {status} response gave {r}");
            }
        }
    }
});
