//! Every ThingDatas FFI call with fuzzed identifiers (thing names, job ids, execution ids,
//! client tokens, event types, app ids), *_json arguments and enum/integer values, on a
//! client whose endpoint is http://127.0.0.1:9 (a closed port): inputs that pass validation
//! fail fast with FLEETS_ERR_CONNECT (1 attempt, 50 ms connect timeout). Every result must
//! be a defined code, never FLEETS_ERR_PANIC, with the buffer rules kept.
//!
//! Input: byte 0 = call and flags, byte 1 = buffer shape, bytes 2..10 = a number (version,
//! timestamp, enum values), then up to 5 NUL-separated string arguments.
#![no_main]

use std::sync::OnceLock;

use fleets::ffi::*;
use fleets_fuzz::{check_result, fields, ptr, OutBuf};
use libfuzzer_sys::fuzz_target;

struct Handle(*mut fleets_client_t);
// SAFETY: a fleets client is thread-safe (fleets.h); the fuzzer uses it from one thread.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fn client() -> *mut fleets_client_t {
    static CLIENT: OnceLock<Handle> = OnceLock::new();
    CLIENT
        .get_or_init(|| unsafe {
            let mut cfg = std::ptr::null_mut();
            let ep = c"http://127.0.0.1:9";
            assert_eq!(
                fleets_config_new(
                    ep.as_ptr(),
                    c"ak_fuzz".as_ptr(),
                    c"secret".as_ptr(),
                    &mut cfg
                ),
                FLEETS_OK
            );
            assert_eq!(fleets_config_set_timeouts(cfg, 50, 100), FLEETS_OK);
            assert_eq!(fleets_config_set_retry(cfg, 1, 0, 0), FLEETS_OK);
            let mut client = std::ptr::null_mut();
            assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
            fleets_config_free(cfg);
            Handle(client)
        })
        .0
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 10 {
        return;
    }
    let sel = data[0];
    let mut buf = OutBuf::new(data[1]);
    let num = u64::from_le_bytes(data[2..10].try_into().unwrap());
    let small = (num & 0xFF) as u32; // enum values: mostly out of range, 0..=4 in range
    let f = fields(&data[10..], 5);
    let c = if sel & 0x80 != 0 {
        std::ptr::null_mut()
    } else {
        client()
    };
    let (a, b, cc, d, e) = (ptr(&f[0]), ptr(&f[1]), ptr(&f[2]), ptr(&f[3]), ptr(&f[4]));

    let status_before = fleets_last_http_status();
    let (name, r) = unsafe {
        match sel & 0x07 {
            0 => (
                "fleets_shadow_report",
                fleets_shadow_report(c, a, b, cc, num, buf.out(), buf.cap(), buf.out_len()),
            ),
            1 => (
                "fleets_shadow_get",
                fleets_shadow_get(c, a, buf.out(), buf.cap(), buf.out_len()),
            ),
            2 => (
                "fleets_event_publish",
                fleets_event_publish(
                    c,
                    a,
                    b,
                    small,
                    num as i64,
                    cc,
                    d,
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            3 => (
                "fleets_command_respond",
                fleets_command_respond(
                    c,
                    a,
                    b,
                    small,
                    cc,
                    num as i64,
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            4 => (
                "fleets_jobs_get_pending",
                fleets_jobs_get_pending(c, a, b, buf.out(), buf.cap(), buf.out_len()),
            ),
            5 => (
                "fleets_jobs_start_next",
                fleets_jobs_start_next(
                    c,
                    a,
                    b,
                    (num >> 8) as u32,
                    cc,
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
            6 => (
                "fleets_jobs_describe",
                fleets_jobs_describe(c, a, b, cc, buf.out(), buf.cap(), buf.out_len()),
            ),
            _ => (
                "fleets_jobs_update",
                fleets_jobs_update(
                    c,
                    a,
                    b,
                    small,
                    cc,
                    num >> 8,
                    d,
                    buf.out(),
                    buf.cap(),
                    buf.out_len(),
                ),
            ),
        }
    };
    let _ = e;
    check_result(name, r);
    assert!(
        matches!(
            r,
            FLEETS_ERR_NULL_ARGUMENT
                | FLEETS_ERR_INVALID_ARGUMENT
                | FLEETS_ERR_INVALID_JSON
                | FLEETS_ERR_CONNECT
        ),
        "{name}: unexpected result {r} with nothing listening"
    );
    if c.is_null() {
        assert_eq!(r, FLEETS_ERR_NULL_ARGUMENT, "{name}: NULL client");
    }
    buf.check(name, r, None);
    // No body ever arrives: the buffer and *out_len are never written.
    buf.assert_untouched(name);
    if r == FLEETS_ERR_CONNECT {
        // Tried to send: no HTTP status and no response body recorded.
        assert_eq!(fleets_last_http_status(), 0);
        let mut len = 7usize;
        let lr = unsafe { fleets_last_response(std::ptr::null_mut(), 0, &mut len) };
        assert_eq!(
            lr, FLEETS_ERR_INVALID_ARGUMENT,
            "fleets_last_response after CONNECT"
        );
        assert_eq!(len, 7);
    } else {
        // Rejected before sending: the record of the last exchange is unchanged.
        assert_eq!(fleets_last_http_status(), status_before);
    }
});
