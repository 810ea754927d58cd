//! The outbox's C ABI: NULL and bad arguments, options, stats with the last error, the lock,
//! and a flush that stops at an outage then delivers, against the emulator.
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;
use std::ptr;

use fleets::ffi::*;

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let path =
            std::env::temp_dir().join(format!("fleets-ffi-outbox-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Dir(path)
    }

    fn c(&self) -> CString {
        c(self.0.to_str().unwrap())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn client(endpoint: &str, emu: &fleets_emulator::Emulator) -> *mut fleets_client_t {
    let mut cfg = ptr::null_mut();
    let mut client = ptr::null_mut();
    unsafe {
        assert_eq!(
            fleets_config_new(
                c(endpoint).as_ptr(),
                c(emu.api_key()).as_ptr(),
                c(emu.api_secret()).as_ptr(),
                &mut cfg
            ),
            FLEETS_OK
        );
        let ca = c(emu.ca_file().unwrap().to_str().unwrap());
        assert_eq!(fleets_config_set_ca_file(cfg, ca.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
        fleets_config_free(cfg);
    }
    client
}

fn stats(outbox: *const fleets_outbox_t) -> fleets_outbox_stats_t {
    let mut out = std::mem::MaybeUninit::<fleets_outbox_stats_t>::uninit();
    unsafe {
        assert_eq!(fleets_outbox_stats(outbox, out.as_mut_ptr()), FLEETS_OK);
        out.assume_init()
    }
}

fn message(stats: &fleets_outbox_stats_t) -> String {
    unsafe { CStr::from_ptr(stats.last_error_message.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    unsafe { fleets_last_error_message(buf.as_mut_ptr(), buf.len()) };
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn null_and_bad_arguments_are_refused_before_anything_is_stored() {
    let dir = Dir::new("args");
    let mut outbox = ptr::null_mut();
    unsafe {
        assert_eq!(
            fleets_outbox_open(ptr::null(), ptr::null(), &mut outbox),
            FLEETS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), ptr::null(), ptr::null_mut()),
            FLEETS_ERR_NULL_ARGUMENT
        );
        let bad = fleets_outbox_options_t {
            sync: 7,
            batch_max_ms: 0,
            batch_max_records: 0,
            when_full: 0,
            max_bytes: 0,
            ttl_ms: 0,
        };
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), &bad, &mut outbox),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("fleets_outbox_sync 7"),
            "{}",
            last_error()
        );
        let small = fleets_outbox_options_t {
            sync: 0,
            max_bytes: 1000,
            ..bad
        };
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), &small, &mut outbox),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        assert!(outbox.is_null(), "outputs are written only on success");

        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), ptr::null(), &mut outbox),
            FLEETS_OK
        );
        let thing = c(common::THING);
        assert_eq!(
            fleets_outbox_enqueue_event(
                ptr::null(),
                thing.as_ptr(),
                c("t").as_ptr(),
                0,
                0,
                ptr::null(),
                ptr::null()
            ),
            FLEETS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            fleets_outbox_enqueue_event(
                outbox,
                thing.as_ptr(),
                ptr::null(),
                0,
                0,
                ptr::null(),
                ptr::null()
            ),
            FLEETS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            fleets_outbox_enqueue_event(
                outbox,
                thing.as_ptr(),
                c("t").as_ptr(),
                9,
                0,
                ptr::null(),
                ptr::null()
            ),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fleets_outbox_enqueue_report(outbox, thing.as_ptr(), c("[]").as_ptr(), ptr::null(), 0),
            FLEETS_ERR_INVALID_JSON
        );
        assert_eq!(
            fleets_outbox_enqueue_command_response(
                outbox,
                thing.as_ptr(),
                c("e-1").as_ptr(),
                0,
                ptr::null(),
                0
            ),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fleets_outbox_enqueue_job_update(
                outbox,
                c("a b").as_ptr(),
                c("j").as_ptr(),
                1,
                ptr::null(),
                0,
                ptr::null()
            ),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(stats(outbox).queued_records, 0);
        assert_eq!(
            fleets_outbox_flush(outbox, ptr::null(), 0, ptr::null_mut()),
            FLEETS_ERR_NULL_ARGUMENT
        );
        assert_eq!(
            fleets_outbox_stats(outbox, ptr::null_mut()),
            FLEETS_ERR_NULL_ARGUMENT
        );
        assert_eq!(fleets_outbox_close(outbox), FLEETS_OK);
        assert_eq!(fleets_outbox_close(ptr::null_mut()), FLEETS_OK);
    }
}

#[test]
fn a_second_open_is_refused_with_a_named_code() {
    let dir = Dir::new("lock");
    let (mut first, mut second) = (ptr::null_mut(), ptr::null_mut());
    unsafe {
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), ptr::null(), &mut first),
            FLEETS_OK
        );
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), ptr::null(), &mut second),
            FLEETS_ERR_OUTBOX_LOCKED
        );
        assert_eq!(
            CStr::from_ptr(fleets_result_name(FLEETS_ERR_OUTBOX_LOCKED))
                .to_str()
                .unwrap(),
            "FLEETS_ERR_OUTBOX_LOCKED"
        );
        assert!(!fleets_result_request_sent(FLEETS_ERR_OUTBOX_LOCKED));
        assert!(
            last_error().contains("open in another outbox handle"),
            "{}",
            last_error()
        );
        assert_eq!(fleets_outbox_close(first), FLEETS_OK);
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), ptr::null(), &mut second),
            FLEETS_OK
        );
        assert_eq!(fleets_outbox_close(second), FLEETS_OK);
    }
}

#[test]
fn flush_stops_at_an_outage_then_delivers_with_stats() {
    let emu = common::emulator();
    let dir = Dir::new("flush");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let offline = client(&format!("https://127.0.0.1:{closed_port}"), &emu);
    let online = client(emu.endpoint(), &emu);
    let opts = fleets_outbox_options_t {
        sync: FLEETS_OUTBOX_SYNC_BATCH,
        batch_max_ms: 100,
        batch_max_records: 10,
        when_full: FLEETS_OUTBOX_FULL_REFUSE,
        max_bytes: 0,
        ttl_ms: 0,
    };
    let mut outbox = ptr::null_mut();
    let thing = c(common::THING);
    unsafe {
        assert_eq!(
            fleets_outbox_open(dir.c().as_ptr(), &opts, &mut outbox),
            FLEETS_OK
        );
        for seq in 0..5 {
            let data = c(&format!(r#"{{"seq":{seq}}}"#));
            assert_eq!(
                fleets_outbox_enqueue_event(
                    outbox,
                    thing.as_ptr(),
                    c("tick").as_ptr(),
                    FLEETS_SEVERITY_WARN,
                    0,
                    data.as_ptr(),
                    ptr::null()
                ),
                FLEETS_OK
            );
        }
        assert_eq!(
            fleets_outbox_enqueue_report(
                outbox,
                thing.as_ptr(),
                c(r#"{"t":1}"#).as_ptr(),
                c("tok-9").as_ptr(),
                0
            ),
            FLEETS_OK
        );
        assert_eq!(
            fleets_outbox_enqueue_job_update(
                outbox,
                thing.as_ptr(),
                c("no-such-job").as_ptr(),
                FLEETS_EXECUTION_FAILED,
                ptr::null(),
                0,
                ptr::null()
            ),
            FLEETS_OK
        );
        let mut delivered = 99;
        assert_eq!(
            fleets_outbox_flush(outbox, offline, 2000, &mut delivered),
            FLEETS_ERR_CONNECT
        );
        assert_eq!(delivered, 0, "written on failure too");
        assert_eq!(fleets_last_http_status(), 0);
        let s = stats(outbox);
        assert_eq!(s.queued_records, 7);
        assert_eq!(s.last_error, FLEETS_ERR_CONNECT);
        assert!(message(&s).contains("connect"), "{}", message(&s));
        assert!(s.oldest_age_ms < 60_000);

        assert_eq!(
            fleets_outbox_flush(outbox, online, 0, &mut delivered),
            FLEETS_OK
        );
        assert_eq!(delivered, 6);
        let s = stats(outbox);
        assert_eq!(
            (
                s.queued_records,
                s.delivered_records,
                s.dead_lettered_records
            ),
            (0, 6, 1)
        );
        assert_eq!(s.last_error, FLEETS_ERR_NOT_FOUND);
        assert_eq!(s.last_error_http_status, 404);
        assert!(
            message(&s).starts_with("outbox: 1 record(s) dead-lettered"),
            "{}",
            message(&s)
        );
        assert_eq!(s.oldest_age_ms, 0);
        assert!(s.written_bytes > 0 && s.disk_bytes > 0);
        assert_eq!(fleets_outbox_close(outbox), FLEETS_OK);
        fleets_client_free(offline);
        fleets_client_free(online);
    }
    let events = emu.events(common::THING);
    assert_eq!(events.len(), 5);
    assert_eq!(events[0]["severity"], "warn");
    assert_eq!(emu.shadow_history(common::THING)[0]["clientToken"], "tok-9");
}
