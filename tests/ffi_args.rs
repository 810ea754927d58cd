//! Argument checks of the C ABI: for every export, NULL in each required pointer, non-UTF-8
//! strings, invalid JSON, JSON of the wrong type, bad identifiers, oversized client tokens
//! and unknown enum values give the documented code, and nothing reaches the server.
#![allow(clippy::undocumented_unsafe_blocks)]

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use fleets::ffi::*;

/// A string argument: valid, NULL, or one of the invalid forms.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Field {
    Thing,
    Json,
    Token,
    Job,
    Execution,
    EventType,
}

#[derive(Clone, Copy, Debug)]
enum Call {
    Report,
    Get,
    Event,
    Command,
    JobsGet,
    StartNext,
    Describe,
    Update,
}

const CALLS: [Call; 8] = [
    Call::Report,
    Call::Get,
    Call::Event,
    Call::Command,
    Call::JobsGet,
    Call::StartNext,
    Call::Describe,
    Call::Update,
];

impl Call {
    /// (field, required) for each string argument the call takes.
    fn fields(self) -> &'static [(Field, bool)] {
        use Field::*;
        match self {
            Call::Report => &[(Thing, true), (Json, true), (Token, false)],
            Call::Get => &[(Thing, true)],
            Call::Event => &[(Thing, true), (EventType, true), (Json, false)],
            Call::Command => &[(Thing, true), (Execution, true), (Json, false)],
            Call::JobsGet => &[(Thing, true), (Token, false)],
            Call::StartNext => &[(Thing, true), (Json, false), (Token, false)],
            Call::Describe => &[(Thing, true), (Job, true), (Token, false)],
            Call::Update => &[(Thing, true), (Job, true), (Json, false), (Token, false)],
        }
    }

    fn takes_enum(self) -> bool {
        matches!(self, Call::Event | Call::Command | Call::Update)
    }
}

/// Arguments of one call; string fields point into `storage`.
struct Args {
    client: *mut fleets_client_t,
    strings: Vec<(Field, *const c_char)>,
    enum_value: u32,
    out: *mut c_char,
    out_cap: usize,
}

impl Args {
    fn get(&self, field: Field) -> *const c_char {
        self.strings.iter().find(|(f, _)| *f == field).unwrap().1
    }

    fn set(&mut self, field: Field, value: *const c_char) {
        self.strings
            .iter_mut()
            .find(|(f, _)| *f == field)
            .unwrap()
            .1 = value;
    }
}

fn run(call: Call, a: &Args) -> fleets_result {
    use Field::*;
    let mut len = 0usize;
    let (out, cap, len) = (a.out, a.out_cap, &mut len as *mut usize);
    // SAFETY: every pointer is NULL or points to a live NUL-terminated string or buffer.
    unsafe {
        match call {
            Call::Report => fleets_shadow_report(
                a.client,
                a.get(Thing),
                a.get(Json),
                a.get(Token),
                0,
                out,
                cap,
                len,
            ),
            Call::Get => fleets_shadow_get(a.client, a.get(Thing), out, cap, len),
            Call::Event => fleets_event_publish(
                a.client,
                a.get(Thing),
                a.get(EventType),
                a.enum_value,
                0,
                a.get(Json),
                ptr::null(),
                out,
                cap,
                len,
            ),
            Call::Command => fleets_command_respond(
                a.client,
                a.get(Thing),
                a.get(Execution),
                a.enum_value,
                a.get(Json),
                0,
                out,
                cap,
                len,
            ),
            Call::JobsGet => {
                fleets_jobs_get_pending(a.client, a.get(Thing), a.get(Token), out, cap, len)
            }
            Call::StartNext => fleets_jobs_start_next(
                a.client,
                a.get(Thing),
                a.get(Json),
                0,
                a.get(Token),
                out,
                cap,
                len,
            ),
            Call::Describe => fleets_jobs_describe(
                a.client,
                a.get(Thing),
                a.get(Job),
                a.get(Token),
                out,
                cap,
                len,
            ),
            Call::Update => fleets_jobs_update(
                a.client,
                a.get(Thing),
                a.get(Job),
                a.enum_value,
                a.get(Json),
                0,
                a.get(Token),
                out,
                cap,
                len,
            ),
        }
    }
}

fn last_error() -> String {
    let mut buf = [0 as c_char; 512];
    // SAFETY: buf is valid for its length.
    unsafe { fleets_last_error_message(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: the function NUL-terminates within the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn rejected_arguments_give_their_code_and_send_nothing() {
    let emu = common::emulator();
    let config = common::config(&emu);
    let c = |s: &str| CString::new(s).unwrap();
    let (endpoint, key, secret) = (c(emu.endpoint()), c(emu.api_key()), c(emu.api_secret()));
    let ca = c(emu.ca_file().unwrap().to_str().unwrap());
    let mut cfg: *mut fleets_config_t = ptr::null_mut();
    let mut client: *mut fleets_client_t = ptr::null_mut();
    // SAFETY: valid strings and output pointers.
    unsafe {
        assert_eq!(
            fleets_config_new(endpoint.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut cfg),
            FLEETS_OK
        );
        assert_eq!(fleets_config_set_ca_file(cfg, ca.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
    }
    drop(config);

    let valid: Vec<(Field, CString)> = vec![
        (Field::Thing, c(common::THING)),
        (Field::Json, c(r#"{"temperature":21.5}"#)),
        (Field::Token, c("tok-1")),
        (Field::Job, c("job-1")),
        (Field::Execution, c("exec-1")),
        (Field::EventType, c("highTemperature")),
    ];
    let non_utf8 = CString::new(vec![b'a', 0xff, 0xfe]).unwrap();
    let bad_things: Vec<CString> = ["a/b", "..", ".", "x?y", "", "a b", &"t".repeat(129)]
        .iter()
        .map(|s| c(s))
        .collect();
    let bad_json = [c("{"), c("not json"), c("{} x")];
    let wrong_json_type = [c("[1,2]"), c("42"), c("\"text\""), c("null")];
    let long_token = c(&"k".repeat(65));
    let buffer = vec![0 as c_char; 4096];

    let fresh = |client| Args {
        client,
        strings: valid.iter().map(|(f, s)| (*f, s.as_ptr())).collect(),
        enum_value: 2,
        out: buffer.as_ptr() as *mut c_char,
        out_cap: 4096,
    };
    let mut checked = 0;
    let mut expect = |call: Call, args: &Args, code: fleets_result, what: &str| {
        let got = run(call, args);
        assert_eq!(
            got,
            code,
            "{call:?} with {what}: got {} ({})",
            // SAFETY: fleets_result_name returns a static string.
            unsafe { CStr::from_ptr(fleets_result_name(got)) }.to_string_lossy(),
            last_error()
        );
        checked += 1;
    };

    for call in CALLS {
        let mut a = fresh(ptr::null_mut());
        expect(call, &a, FLEETS_ERR_NULL_ARGUMENT, "NULL client");
        a.client = client;
        a.out = ptr::null_mut();
        expect(
            call,
            &a,
            FLEETS_ERR_NULL_ARGUMENT,
            "NULL out with out_cap > 0",
        );
        for &(field, required) in call.fields() {
            if required {
                let mut a = fresh(client);
                a.set(field, ptr::null());
                expect(
                    call,
                    &a,
                    FLEETS_ERR_NULL_ARGUMENT,
                    &format!("NULL {field:?}"),
                );
            }
            let mut a = fresh(client);
            a.set(field, non_utf8.as_ptr());
            expect(
                call,
                &a,
                FLEETS_ERR_INVALID_ARGUMENT,
                &format!("non-UTF-8 {field:?}"),
            );
        }
        for bad in &bad_things {
            let mut a = fresh(client);
            a.set(Field::Thing, bad.as_ptr());
            expect(
                call,
                &a,
                FLEETS_ERR_INVALID_ARGUMENT,
                &format!("thing {bad:?}"),
            );
            for id in [Field::Job, Field::Execution] {
                if call.fields().iter().any(|(f, _)| *f == id) {
                    let mut a = fresh(client);
                    a.set(id, bad.as_ptr());
                    expect(
                        call,
                        &a,
                        FLEETS_ERR_INVALID_ARGUMENT,
                        &format!("{id:?} {bad:?}"),
                    );
                }
            }
        }
        if call.fields().iter().any(|(f, _)| *f == Field::Json) {
            for text in bad_json.iter().chain(&wrong_json_type) {
                let mut a = fresh(client);
                a.set(Field::Json, text.as_ptr());
                expect(call, &a, FLEETS_ERR_INVALID_JSON, &format!("JSON {text:?}"));
            }
        }
        if call.fields().iter().any(|(f, _)| *f == Field::Token) {
            let mut a = fresh(client);
            a.set(Field::Token, long_token.as_ptr());
            expect(
                call,
                &a,
                FLEETS_ERR_INVALID_ARGUMENT,
                "65-byte client token",
            );
        }
        if call.takes_enum() {
            for value in [0u32, 5, 99, u32::MAX] {
                // Severity 0 means "unset" and is valid for events.
                if matches!(call, Call::Event) && value == 0 {
                    continue;
                }
                let mut a = fresh(client);
                a.enum_value = value;
                expect(
                    call,
                    &a,
                    FLEETS_ERR_INVALID_ARGUMENT,
                    &format!("enum value {value}"),
                );
            }
        }
    }
    assert!(checked > 150, "only {checked} cases ran");

    // Config, client and library functions.
    let mut cfg2: *mut fleets_config_t = ptr::null_mut();
    let mut client2: *mut fleets_client_t = ptr::null_mut();
    let bad_ca = c("/nonexistent/ca.pem");
    let mut len = 0usize;
    let mut number = 0f64;
    let mut integer = 0i64;
    let mut flag = false;
    let doc = c(r#"{"a":{"b":1}}"#);
    let pointer = c("/a/b");
    // SAFETY: every non-NULL pointer is valid.
    unsafe {
        for (code, what) in [
            (
                fleets_config_new(ptr::null(), key.as_ptr(), secret.as_ptr(), &mut cfg2),
                "endpoint",
            ),
            (
                fleets_config_new(endpoint.as_ptr(), ptr::null(), secret.as_ptr(), &mut cfg2),
                "api_key",
            ),
            (
                fleets_config_new(endpoint.as_ptr(), key.as_ptr(), ptr::null(), &mut cfg2),
                "api_secret",
            ),
            (
                fleets_config_new(
                    endpoint.as_ptr(),
                    key.as_ptr(),
                    secret.as_ptr(),
                    ptr::null_mut(),
                ),
                "out",
            ),
            (fleets_config_from_env(ptr::null_mut()), "from_env out"),
            (
                fleets_config_set_ca_file(ptr::null_mut(), ca.as_ptr()),
                "set_ca_file cfg",
            ),
            (
                fleets_config_set_ca_file(cfg, ptr::null()),
                "set_ca_file path",
            ),
            (
                fleets_config_set_timeouts(ptr::null_mut(), 1, 1),
                "set_timeouts cfg",
            ),
            (
                fleets_client_new(ptr::null(), &mut client2),
                "client_new cfg",
            ),
            (fleets_client_new(cfg, ptr::null_mut()), "client_new out"),
            (
                fleets_last_response(ptr::null_mut(), 10, &mut len),
                "last_response out",
            ),
            (
                fleets_json_get(ptr::null(), pointer.as_ptr(), ptr::null_mut(), 0, &mut len),
                "json_get json",
            ),
            (
                fleets_json_get(doc.as_ptr(), ptr::null(), ptr::null_mut(), 0, &mut len),
                "json_get pointer",
            ),
            (
                fleets_json_get_string(ptr::null(), pointer.as_ptr(), ptr::null_mut(), 0, &mut len),
                "json_get_string json",
            ),
            (
                fleets_json_get_f64(doc.as_ptr(), pointer.as_ptr(), ptr::null_mut()),
                "json_get_f64 out",
            ),
            (
                fleets_json_get_i64(doc.as_ptr(), ptr::null(), &mut integer),
                "json_get_i64 pointer",
            ),
            (
                fleets_json_get_bool(ptr::null(), pointer.as_ptr(), &mut flag),
                "json_get_bool json",
            ),
        ] {
            assert_eq!(code, FLEETS_ERR_NULL_ARGUMENT, "{what}");
        }
        assert!(
            cfg2.is_null() && client2.is_null(),
            "outputs untouched on failure"
        );
        assert_eq!(
            fleets_config_new(non_utf8.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut cfg2),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            fleets_config_set_ca_file(cfg, bad_ca.as_ptr()),
            FLEETS_ERR_INVALID_CONFIG
        );
        assert_eq!(
            fleets_config_set_ca_file(cfg, non_utf8.as_ptr()),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        let remote_http = c("http://fleets.example.com");
        assert_eq!(
            fleets_config_new(
                remote_http.as_ptr(),
                key.as_ptr(),
                secret.as_ptr(),
                &mut cfg2
            ),
            FLEETS_ERR_INVALID_CONFIG
        );
        assert!(last_error().contains("http://"), "{}", last_error());
        assert!(cfg2.is_null());
        assert_eq!(
            fleets_json_get_f64(non_utf8.as_ptr(), pointer.as_ptr(), &mut number),
            FLEETS_ERR_INVALID_ARGUMENT
        );
        fleets_client_free(client);
        fleets_config_free(cfg);
        fleets_client_free(ptr::null_mut());
        fleets_config_free(ptr::null_mut());
    }
    assert_eq!(
        emu.stats().total,
        0,
        "a rejected argument must send nothing: {:?}",
        emu.stats()
    );
}

#[test]
fn result_names_and_version() {
    // SAFETY: both return static NUL-terminated strings.
    let name = |r| {
        unsafe { CStr::from_ptr(fleets_result_name(r)) }
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(name(FLEETS_OK), "FLEETS_OK");
    assert_eq!(name(FLEETS_ERR_TIMEOUT), "FLEETS_ERR_TIMEOUT");
    assert_eq!(name(FLEETS_ERR_BAD_RESPONSE), "FLEETS_ERR_BAD_RESPONSE");
    assert_eq!(name(12345), "FLEETS_ERR_UNKNOWN");
    assert_eq!(name(1), "FLEETS_ERR_UNKNOWN");
    // SAFETY: static string.
    let version = unsafe { CStr::from_ptr(fleets_version()) }
        .to_str()
        .unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
}

#[test]
fn last_error_message_is_snprintf_style() {
    let mut out: *mut fleets_config_t = ptr::null_mut();
    let endpoint = CString::new("ftp://x").unwrap();
    let key = CString::new("k").unwrap();
    // SAFETY: valid strings and output pointer.
    let code =
        unsafe { fleets_config_new(endpoint.as_ptr(), key.as_ptr(), key.as_ptr(), &mut out) };
    assert_eq!(code, FLEETS_ERR_INVALID_CONFIG);
    // SAFETY: NULL with cap 0 asks for the length only.
    let full = unsafe { fleets_last_error_message(ptr::null_mut(), 0) };
    assert!(full > 10);
    let mut small = [1 as c_char; 8];
    // SAFETY: buffer valid for 8 bytes.
    let again = unsafe { fleets_last_error_message(small.as_mut_ptr(), small.len()) };
    assert_eq!(again, full);
    assert_eq!(small[7], 0, "truncated and NUL-terminated");
    assert_eq!(last_error().len(), full);
}

#[test]
fn json_helpers() {
    let doc = CString::new(r#"{"delta":{"targetTemperature":24,"mode":"eco","on":true,"f":21.5}}"#)
        .unwrap();
    let p = |s: &str| CString::new(s).unwrap();
    let mut i = 0i64;
    let mut f = 0f64;
    let mut b = false;
    let mut buf = [0 as c_char; 16];
    let mut len = 0usize;
    // SAFETY: valid strings and outputs.
    unsafe {
        assert_eq!(
            fleets_json_get_i64(doc.as_ptr(), p("/delta/targetTemperature").as_ptr(), &mut i),
            FLEETS_OK
        );
        assert_eq!(i, 24);
        assert_eq!(
            fleets_json_get_f64(doc.as_ptr(), p("/delta/f").as_ptr(), &mut f),
            FLEETS_OK
        );
        assert_eq!(f, 21.5);
        assert_eq!(
            fleets_json_get_bool(doc.as_ptr(), p("/delta/on").as_ptr(), &mut b),
            FLEETS_OK
        );
        assert!(b);
        assert_eq!(
            fleets_json_get_string(
                doc.as_ptr(),
                p("/delta/mode").as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len
            ),
            FLEETS_OK
        );
        assert_eq!(
            (CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), len),
            ("eco", 3)
        );
        assert_eq!(
            fleets_json_get(
                doc.as_ptr(),
                p("/delta").as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len
            ),
            FLEETS_ERR_BUFFER_TOO_SMALL
        );
        assert!(len > 16);
        assert_eq!(
            fleets_json_get(
                doc.as_ptr(),
                p("/delta").as_ptr(),
                ptr::null_mut(),
                0,
                &mut len
            ),
            FLEETS_OK
        );
        assert_eq!(
            fleets_json_get_i64(doc.as_ptr(), p("/delta/f").as_ptr(), &mut i),
            FLEETS_ERR_JSON_TYPE
        );
        assert_eq!(i, 24, "output untouched on failure");
        assert_eq!(
            fleets_json_get_i64(doc.as_ptr(), p("/nope").as_ptr(), &mut i),
            FLEETS_ERR_JSON_NO_VALUE
        );
        assert_eq!(
            fleets_json_get_i64(p("{").as_ptr(), p("/a").as_ptr(), &mut i),
            FLEETS_ERR_INVALID_JSON
        );
        assert_eq!(
            fleets_json_get_string(
                doc.as_ptr(),
                p("/delta/on").as_ptr(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut len
            ),
            FLEETS_ERR_JSON_TYPE
        );
    }
}

#[test]
fn request_sent_tells_the_groups_apart() {
    for (result, sent) in [
        (FLEETS_OK, true),
        (FLEETS_ERR_NULL_ARGUMENT, false),
        (FLEETS_ERR_INVALID_ARGUMENT, false),
        (FLEETS_ERR_INVALID_JSON, false),
        (FLEETS_ERR_BUFFER_TOO_SMALL, true),
        (FLEETS_ERR_INVALID_CONFIG, false),
        (FLEETS_ERR_CONNECT, false),
        (FLEETS_ERR_TLS, false),
        (FLEETS_ERR_TIMEOUT, true),
        (FLEETS_ERR_IO, true),
        (FLEETS_ERR_BAD_REQUEST, true),
        (FLEETS_ERR_CONFLICT, true),
        (FLEETS_ERR_SERVER, true),
        (FLEETS_ERR_PANIC, true),
        (FLEETS_ERR_CANCELED, true),
        (FLEETS_ERR_HASH_MISMATCH, true),
        (FLEETS_ERR_DISK_FULL, true),
        (FLEETS_ERR_LOCAL_FILE, true),
        (12345, true),
    ] {
        assert_eq!(fleets_result_request_sent(result), sent, "{result}");
    }
}

/// Copies the value at `pointer` through `fleets_json_get`.
fn json_get(doc: &str, pointer: &str) -> Result<String, fleets_result> {
    let (doc, pointer) = (CString::new(doc).unwrap(), CString::new(pointer).unwrap());
    let mut len = 0usize;
    // SAFETY: valid strings; NULL with cap 0 asks for the length.
    let code =
        unsafe { fleets_json_get(doc.as_ptr(), pointer.as_ptr(), ptr::null_mut(), 0, &mut len) };
    if code != FLEETS_OK {
        return Err(code);
    }
    let mut buf = vec![0 as c_char; len + 1];
    // SAFETY: buf holds len + 1 bytes.
    let code = unsafe {
        fleets_json_get(
            doc.as_ptr(),
            pointer.as_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        )
    };
    assert_eq!(code, FLEETS_OK);
    // SAFETY: NUL-terminated by the call.
    Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_owned())
}

#[test]
fn json_get_returns_the_original_text() {
    let doc = "{\"z\":1, \"a\": { \"big\" : 12345678901234567890123,\n \"neg\":-0 , \"f\":1.50 } }";
    assert_eq!(json_get(doc, "/a/big").unwrap(), "12345678901234567890123");
    assert_eq!(json_get(doc, "/a/neg").unwrap(), "-0");
    assert_eq!(json_get(doc, "/a/f").unwrap(), "1.50");
    assert_eq!(
        json_get(doc, "/a").unwrap(),
        "{ \"big\" : 12345678901234567890123,\n \"neg\":-0 , \"f\":1.50 }"
    );
    assert_eq!(json_get(&format!("  {doc}\n"), "").unwrap(), doc);
    assert_eq!(json_get(doc, "/a/m~2n"), Err(FLEETS_ERR_INVALID_ARGUMENT));
    let c = |s: &str| CString::new(s).unwrap();
    let (doc, mut i, mut f) = (c(doc), 5i64, 0f64);
    // SAFETY: valid strings and outputs.
    unsafe {
        assert_eq!(
            fleets_json_get_i64(doc.as_ptr(), c("/a/big").as_ptr(), &mut i),
            FLEETS_ERR_JSON_TYPE
        );
        assert_eq!(i, 5);
        assert_eq!(
            fleets_json_get_i64(doc.as_ptr(), c("/a/neg").as_ptr(), &mut i),
            FLEETS_OK
        );
        assert_eq!(i, 0);
        assert_eq!(
            fleets_json_get_f64(doc.as_ptr(), c("/a/big").as_ptr(), &mut f),
            FLEETS_OK
        );
        assert_eq!(f, 1.2345678901234568e22);
    }
}

/// `fleets_config_new` on `endpoint`: the result code and the last error message.
fn config_new(endpoint: &str) -> (fleets_result, String) {
    let (endpoint, key, secret) = (
        CString::new(endpoint).unwrap(),
        CString::new("k").unwrap(),
        CString::new("s").unwrap(),
    );
    let mut cfg: *mut fleets_config_t = ptr::null_mut();
    // SAFETY: valid strings and output pointer.
    let code =
        unsafe { fleets_config_new(endpoint.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut cfg) };
    let message = last_error();
    // SAFETY: NULL or a live configuration.
    unsafe { fleets_config_free(cfg) };
    (code, message)
}

#[test]
fn config_urls_are_strict_and_redacted() {
    for endpoint in [
        "https://h:99999",
        "https://h:65616",
        "https://h:0x50",
        "https://h:-1",
        "https://h:notaport",
        "https://[::1]:99999",
        "https://key:s3cret@h",
        "https://key:s3cr/et@h:443",
        "ftp://key:s3cret@h",
    ] {
        let (code, message) = config_new(endpoint);
        assert_eq!(code, FLEETS_ERR_INVALID_CONFIG, "{endpoint}: {message}");
        assert!(!message.contains("s3cr"), "{endpoint}: {message}");
    }
    assert_eq!(config_new("https://h:8443").0, FLEETS_OK);

    let c = |s: &str| CString::new(s).unwrap();
    let mut cfg: *mut fleets_config_t = ptr::null_mut();
    // SAFETY: valid strings and output pointer; cfg freed at the end.
    unsafe {
        assert_eq!(
            fleets_config_new(
                c("https://h").as_ptr(),
                c("k").as_ptr(),
                c("s").as_ptr(),
                &mut cfg
            ),
            FLEETS_OK
        );
        for url in [
            "http://u:s3cret@proxy:99999",
            "http://u:s3cret@proxy:0x50",
            "http://u:s3cret@[::1]:-1",
            "http://u:s3cret@[::1]:notaport",
            "http://u:s3cret@[::1",
            "socks5://u:s3cret@proxy:1080",
        ] {
            assert_eq!(
                fleets_config_set_proxy(cfg, c(url).as_ptr()),
                FLEETS_ERR_INVALID_CONFIG,
                "{url}"
            );
            let message = last_error();
            assert!(!message.contains("s3cr"), "{url}: {message}");
        }
        assert_eq!(
            fleets_config_set_proxy(cfg, c("http://u:s3cret@[::1]:3128").as_ptr()),
            FLEETS_OK
        );
        fleets_config_free(cfg);
    }
}

#[test]
#[cfg(unix)]
fn ca_file_that_is_a_fifo_or_too_big_fails_at_once() {
    let dir = std::env::temp_dir().join(format!("fleets-ffi-args-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("ca.fifo");
    let _ = std::fs::remove_file(&fifo);
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let big = dir.join("big.pem");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300_000_000)
        .unwrap();
    for (path, words) in [(&fifo, "not a regular file"), (&big, "1 MiB")] {
        let path = CString::new(path.to_str().unwrap()).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let c = |s: &str| CString::new(s).unwrap();
            let mut cfg: *mut fleets_config_t = ptr::null_mut();
            // SAFETY: valid strings and output pointer; cfg freed before the thread ends.
            let code = unsafe {
                fleets_config_new(
                    c("https://h").as_ptr(),
                    c("k").as_ptr(),
                    c("s").as_ptr(),
                    &mut cfg,
                );
                let code = fleets_config_set_ca_file(cfg, path.as_ptr());
                fleets_config_free(cfg);
                code
            };
            let _ = tx.send((code, last_error()));
        });
        let result = rx.recv_timeout(std::time::Duration::from_secs(5));
        let (code, message) = result.expect("fleets_config_set_ca_file blocked");
        assert_eq!(code, FLEETS_ERR_INVALID_CONFIG, "{message}");
        assert!(message.contains(words), "{message}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An object nested `depth` levels deep, the object itself being level 1.
fn nested_object(depth: usize) -> CString {
    CString::new(format!(
        "{}{}{}",
        "{\"a\":".repeat(depth - 1),
        "{\"t\":\"caf\\u00e9\"}",
        "}".repeat(depth - 1)
    ))
    .unwrap()
}

#[test]
fn json_nesting_limit_matches_what_the_server_takes() {
    let emu = common::emulator();
    let c = |s: &str| CString::new(s).unwrap();
    let (endpoint, key, secret) = (c(emu.endpoint()), c(emu.api_key()), c(emu.api_secret()));
    let ca = c(emu.ca_file().unwrap().to_str().unwrap());
    let thing = c(common::THING);
    let mut cfg: *mut fleets_config_t = ptr::null_mut();
    let mut client: *mut fleets_client_t = ptr::null_mut();
    // SAFETY: valid strings, outputs and handles; both handles freed at the end.
    unsafe {
        assert_eq!(
            fleets_config_new(endpoint.as_ptr(), key.as_ptr(), secret.as_ptr(), &mut cfg),
            FLEETS_OK
        );
        assert_eq!(fleets_config_set_ca_file(cfg, ca.as_ptr()), FLEETS_OK);
        assert_eq!(fleets_client_new(cfg, &mut client), FLEETS_OK);
        let report = |json: &CString| {
            fleets_shadow_report(
                client,
                thing.as_ptr(),
                json.as_ptr(),
                ptr::null(),
                0,
                ptr::null_mut(),
                0,
                ptr::null_mut(),
            )
        };
        // The deepest object the library takes is one the server takes, in the report
        // wrapper ({"state":{"reported":...}}).
        assert_eq!(
            report(&nested_object(fleets::MAX_JSON_DEPTH)),
            FLEETS_OK,
            "{}",
            last_error()
        );
        assert_eq!(emu.stats().total, 1);
        // One level more is refused before anything is sent, like every other bad JSON.
        assert_eq!(
            report(&nested_object(fleets::MAX_JSON_DEPTH + 1)),
            FLEETS_ERR_INVALID_JSON
        );
        assert!(last_error().contains("deeper than"), "{}", last_error());
        assert_eq!(emu.stats().total, 1);
        fleets_client_free(client);
        fleets_config_free(cfg);
    }
}
