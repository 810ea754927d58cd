//! Observing the client: per-client counters and the log callback, through the C ABI where
//! C users meet them. The log hook is process-wide, so one test here installs it.

mod common;

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::Mutex;
use std::time::Duration;

use common::{emulator, THING};
use fleets::ffi::*;
use fleets::ReportOptions;
use fleets_emulator::FaultRule;

#[test]
fn counters_follow_calls_retries_and_connections() {
    let emu = emulator();
    let mut config = common::config(&emu);
    config
        .set_retry(3, Duration::from_millis(1), Duration::from_millis(5))
        .unwrap();
    let client = fleets::Client::new(&config).unwrap();
    assert_eq!(client.stats(), fleets::ClientStats::default());

    for _ in 0..3 {
        client.shadow_get(THING).unwrap();
    }
    emu.add_fault(FaultRule::status("/api/v1/thing-datas/shadow/reported", 503).times(1));
    client
        .shadow_report(THING, r#"{"t":1}"#, ReportOptions::default())
        .unwrap();
    client.shadow_get("no-such-thing").unwrap_err();
    // Refused before sending: not a call.
    client.shadow_get("bad/name").unwrap_err();

    let stats = client.stats();
    assert_eq!(stats.calls, 5, "{stats:?}");
    assert_eq!(stats.requests, 6, "one retry: {stats:?}");
    assert_eq!(stats.retries, 1);
    assert_eq!(stats.failures, 1, "the 404");
    assert_eq!(stats.connections, 1, "keep-alive: {stats:?}");
    assert!(
        stats.bytes_sent > 6 * 100 && stats.bytes_received > 6 * 100,
        "{stats:?}"
    );
    assert!(stats.last_latency > Duration::ZERO);

    // The same through the C ABI.
    let handle = c_client(&emu);
    let thing = CString::new(THING).unwrap();
    let mut out = fleets_client_stats_t::default();
    // SAFETY: live handle, valid pointers.
    unsafe {
        assert_eq!(
            fleets_shadow_get(handle, thing.as_ptr(), ptr::null_mut(), 0, ptr::null_mut()),
            FLEETS_OK
        );
        assert_eq!(fleets_client_stats(handle, &mut out), FLEETS_OK);
        assert_eq!(
            fleets_client_stats(handle, ptr::null_mut()),
            FLEETS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            fleets_client_stats(ptr::null(), &mut out),
            FLEETS_ERR_NULL_ARGUMENT
        );
        fleets_client_free(handle);
    }
    assert_eq!((out.calls, out.requests, out.connections), (1, 1, 1));
    assert!(out.bytes_sent > 0 && out.last_latency_us > 0);
}

fn c_client(emu: &fleets_emulator::Emulator) -> *mut fleets_client_t {
    let endpoint = CString::new(emu.endpoint()).unwrap();
    let key = CString::new(emu.api_key()).unwrap();
    let secret = CString::new(emu.api_secret()).unwrap();
    let ca = CString::new(emu.ca_pem().unwrap()).unwrap();
    let (mut cfg, mut client) = (ptr::null_mut(), ptr::null_mut());
    // SAFETY: valid strings and out pointers; the configuration is freed here.
    unsafe {
        assert_eq!(
            fleets_config_new(endpoint.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut cfg),
            FLEETS_OK
        );
        assert_eq!(fleets_config_set_ca_pem(cfg, ca.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_config_set_retry(cfg, 1, 0, 0), FLEETS_OK);
        assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
        fleets_config_free(cfg);
    }
    client
}

static LOGGED: Mutex<Vec<(fleets_log_level, String, usize)>> = Mutex::new(Vec::new());

unsafe extern "C" fn record(level: fleets_log_level, message: *const c_char, user: *mut c_void) {
    // SAFETY: libfleets passes a NUL-terminated message valid for this call.
    let message = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    LOGGED.lock().unwrap().push((level, message, user as usize));
}

#[test]
fn log_callback_levels_content_and_off() {
    let emu = emulator();
    emu.register_thing("log-test-thing");
    let client = c_client(&emu);
    // Other tests run in this process: only messages about these things count.
    let thing = CString::new("log-test-thing").unwrap();
    let missing = CString::new("log-test-missing").unwrap();
    let mine = || -> Vec<(fleets_log_level, String, usize)> {
        std::mem::take(&mut *LOGGED.lock().unwrap())
            .into_iter()
            .filter(|(_, m, _)| m.contains("log-test-"))
            .collect()
    };
    let call = |name: &CString| {
        // SAFETY: live handle, valid strings, no output buffer wanted.
        unsafe { fleets_shadow_get(client, name.as_ptr(), ptr::null_mut(), 0, ptr::null_mut()) }
    };
    // Nothing is logged before a callback is installed.
    assert_eq!(call(&thing), FLEETS_OK);
    assert!(mine().is_empty());

    // SAFETY: `record` is thread-safe and the user pointer is a plain number.
    unsafe {
        assert_eq!(
            fleets_set_log_callback(FLEETS_LOG_DEBUG, Some(record), 42 as *mut c_void),
            FLEETS_OK
        );
        assert_eq!(
            fleets_set_log_callback(7, Some(record), ptr::null_mut()),
            FLEETS_ERR_INVALID_ARGUMENT
        );
    }
    assert_eq!(call(&thing), FLEETS_OK);
    assert_eq!(call(&missing), FLEETS_ERR_NOT_FOUND);
    let logged = mine();
    assert!(
        logged
            .iter()
            .any(|(level, m, user)| *level == FLEETS_LOG_DEBUG
                && m.starts_with("GET /api/v1/thing-datas/log-test-thing/shadow -> 200 in ")
                && *user == 42),
        "{logged:?}"
    );
    assert!(
        logged.iter().any(|(level, m, _)| *level == FLEETS_LOG_WARN
            && m.contains("failed after")
            && m.contains("FLEETS_ERR_NOT_FOUND")),
        "{logged:?}"
    );
    for (_, message, _) in &logged {
        assert!(!message.contains(emu.api_secret()), "{message}");
        assert!(!message.chars().any(char::is_control), "{message:?}");
    }

    // WARN: the successful call is not logged any more, the failure is.
    // SAFETY: as above.
    unsafe { fleets_set_log_callback(FLEETS_LOG_WARN, Some(record), ptr::null_mut()) };
    call(&thing);
    call(&missing);
    let logged = mine();
    assert_eq!(logged.len(), 1, "{logged:?}");

    // Off.
    // SAFETY: NULL turns logging off.
    unsafe { fleets_set_log_callback(FLEETS_LOG_DEBUG, None, ptr::null_mut()) };
    call(&missing);
    assert!(mine().is_empty());
    // SAFETY: live handle, freed once.
    unsafe { fleets_client_free(client) };
}
