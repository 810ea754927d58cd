//! C ABI calls against the emulator: response buffers, `fleets_last_response`,
//! `fleets_last_http_status`, and one client shared by 8 threads.
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use fleets::ffi::*;

struct Handles {
    cfg: *mut fleets_config_t,
    client: *mut fleets_client_t,
}

impl Drop for Handles {
    fn drop(&mut self) {
        // SAFETY: handles from the *_new functions, freed once.
        unsafe {
            fleets_client_free(self.client);
            fleets_config_free(self.cfg);
        }
    }
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn open(emu: &fleets_emulator::Emulator) -> Handles {
    let mut h = Handles {
        cfg: ptr::null_mut(),
        client: ptr::null_mut(),
    };
    let ca = c(emu.ca_file().unwrap().to_str().unwrap());
    // SAFETY: valid strings and outputs.
    unsafe {
        assert_eq!(
            fleets_config_new(
                c(emu.endpoint()).as_ptr(),
                c(emu.api_key()).as_ptr(),
                c(emu.api_secret()).as_ptr(),
                &mut h.cfg
            ),
            FLEETS_OK
        );
        assert_eq!(fleets_config_set_ca_file(h.cfg, ca.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_config_set_timeouts(h.cfg, 5000, 10000), FLEETS_OK);
        assert_eq!(fleets_client_new(h.cfg, &mut h.client), FLEETS_OK);
    }
    h
}

#[test]
fn buffer_too_small_then_last_response_without_a_second_request() {
    let emu = common::emulator();
    let h = open(&emu);
    let thing = c(common::THING);
    let big = format!(r#"{{"firmware":"{}"}}"#, "x".repeat(20_000));
    let reported = c(&big);
    let mut small = [0 as c_char; 64];
    let mut needed = 0usize;
    let code = unsafe {
        fleets_shadow_report(
            h.client,
            thing.as_ptr(),
            reported.as_ptr(),
            ptr::null(),
            0,
            small.as_mut_ptr(),
            small.len(),
            &mut needed,
        )
    };
    assert_eq!(code, FLEETS_ERR_BUFFER_TOO_SMALL);
    assert!(needed > 20_000, "{needed}");
    assert_eq!(fleets_last_http_status(), 200);
    let sent = emu.stats().total;
    assert_eq!(sent, 1);

    let mut full = vec![0 as c_char; needed + 1];
    let mut len = 0usize;
    let code = unsafe { fleets_last_response(full.as_mut_ptr(), full.len(), &mut len) };
    assert_eq!(code, FLEETS_OK);
    assert_eq!(len, needed);
    let body = unsafe { CStr::from_ptr(full.as_ptr()) }.to_str().unwrap();
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        value["state"]["reported"]["firmware"]
            .as_str()
            .unwrap()
            .len(),
        20_000
    );
    assert_eq!(emu.stats().total, sent, "fleets_last_response sent nothing");

    // Length only: NULL buffer with capacity 0 succeeds and reports the size.
    let mut len_only = 0usize;
    assert_eq!(
        unsafe { fleets_shadow_get(h.client, thing.as_ptr(), ptr::null_mut(), 0, &mut len_only) },
        FLEETS_OK
    );
    assert!(len_only > 20_000);
}

#[test]
fn error_responses_fill_the_buffer_and_the_last_status() {
    let emu = common::emulator();
    let h = open(&emu);
    let unknown = c("never-registered");
    let mut buf = vec![0 as c_char; 1024];
    let mut len = 0usize;
    let code = unsafe {
        fleets_shadow_get(
            h.client,
            unknown.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(code, FLEETS_ERR_NOT_FOUND);
    assert_eq!(fleets_last_http_status(), 404);
    let body = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    assert_eq!(body.len(), len);
    assert!(body.contains("\"code\""), "{body}");
    let mut msg = [0 as c_char; 256];
    unsafe { fleets_last_error_message(msg.as_mut_ptr(), msg.len()) };
    let msg = unsafe { CStr::from_ptr(msg.as_ptr()) }.to_string_lossy();
    assert!(msg.contains("404"), "{msg}");
    assert!(!msg.contains(emu.api_secret()));
}

#[test]
fn eight_threads_share_one_client() {
    let emu = common::emulator();
    let h = open(&emu);
    let client = h.client as usize;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let client = client as *mut fleets_client_t;
                let thing = c(common::THING);
                let mut buf = vec![0 as c_char; 4096];
                for i in 0..25 {
                    let state = c(&format!(r#"{{"thread{t}":{i}}}"#));
                    let code = unsafe {
                        fleets_shadow_report(
                            client,
                            thing.as_ptr(),
                            state.as_ptr(),
                            ptr::null(),
                            0,
                            buf.as_mut_ptr(),
                            buf.len(),
                            ptr::null_mut(),
                        )
                    };
                    assert_eq!(code, FLEETS_OK, "thread {t} call {i}");
                    let code = unsafe {
                        fleets_shadow_get(
                            client,
                            thing.as_ptr(),
                            buf.as_mut_ptr(),
                            buf.len(),
                            ptr::null_mut(),
                        )
                    };
                    assert_eq!(code, FLEETS_OK, "thread {t} get {i}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let shadow = emu.shadow(common::THING).unwrap();
    for t in 0..8 {
        assert_eq!(shadow["reported"][format!("thread{t}")], 24);
    }
    assert_eq!(shadow["version"], 200);
}
