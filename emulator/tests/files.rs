//! File downloads on the device port (`/files/{name}`): ranges, ETag / If-Range, HEAD, auth,
//! the request log, mid-body faults, and a resumed download.

mod common;

use common::{admin_port_client, basic, raw_request, Client, Conn};
use fleets_emulator::{Emulator, EmulatorOptions, FaultKind, FaultRule, FileOptions, TlsMode};
use serde_json::json;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

fn sha256(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Deterministic test content that does not come from the emulator.
fn content(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    raw_request("GET", path, headers)
}

fn upload(admin: &Client, name_and_query: &str, data: &[u8]) -> common::Resp {
    let r = admin
        .agent
        .put(admin.url(&format!("/admin/v1/files/{name_and_query}")))
        .header("Authorization", &admin.admin_auth)
        .header("Content-Type", "application/octet-stream")
        .send(data)
        .unwrap();
    let status = r.status().as_u16();
    let text = r.into_body().read_to_string().unwrap();
    common::Resp {
        status,
        headers: vec![],
        text,
    }
}

fn setup() -> (Emulator, Client) {
    let emu = common::start();
    let admin = admin_port_client(&emu);
    (emu, admin)
}

#[test]
fn upload_then_full_range_and_head_requests() {
    let (emu, admin) = setup();
    let data = content(100_000);
    let info = upload(&admin, "fw.bin", &data).ok();
    let port = emu.local_addr().port();
    assert_eq!(info["name"], json!("fw.bin"));
    assert_eq!(info["size"], json!(100_000));
    assert_eq!(info["sha256"], json!(sha256(&data)));
    assert_eq!(
        info["url"],
        json!(format!("https://127.0.0.1:{port}/files/fw.bin"))
    );
    assert_eq!(
        (&info["ranges"], &info["auth"]),
        (&json!(true), &json!(false))
    );
    let etag = info["etag"].as_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let mut c = Conn::open(&emu);
    // whole file, no credentials needed (like a presigned URL)
    let r = c.exchange(&get("/files/fw.bin", "")).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, data);
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("content-length"), Some("100000"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    // single ranges on the same keep-alive connection
    for (range, a, b) in [
        ("bytes=0-9", 0, 9),
        ("bytes=99990-", 99_990, 99_999),
        ("bytes=-16", 99_984, 99_999),
        ("bytes=500-99999999", 500, 99_999),
    ] {
        let r = c
            .exchange(&get("/files/fw.bin", &format!("Range: {range}\r\n")))
            .unwrap();
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/100000").as_str())
        );
        assert_eq!(r.body, &data[a..=b], "{range}");
    }
    // unsatisfiable
    let r = c
        .exchange(&get("/files/fw.bin", "Range: bytes=100000-\r\n"))
        .unwrap();
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100000"));
    // several ranges: the whole file
    let r = c
        .exchange(&get("/files/fw.bin", "Range: bytes=0-1,5-6\r\n"))
        .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 100_000));
    // If-Range: the current ETag honours the range, another one gives the whole file
    let r = c
        .exchange(&get(
            "/files/fw.bin",
            &format!("Range: bytes=10-19\r\nIf-Range: {etag}\r\n"),
        ))
        .unwrap();
    assert_eq!((r.status, &r.body[..]), (206, &data[10..20]));
    let r = c
        .exchange(&get(
            "/files/fw.bin",
            "Range: bytes=10-19\r\nIf-Range: \"other\"\r\n",
        ))
        .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 100_000));
    // HEAD: the headers of the GET, no body
    let r = c
        .exchange(&raw_request("HEAD", "/files/fw.bin", ""))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("100000"));
    assert!(r.body.is_empty());
    let r = c
        .exchange(&raw_request(
            "HEAD",
            "/files/fw.bin",
            "Range: bytes=0-99\r\n",
        ))
        .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.header("content-range"), Some("bytes 0-99/100000"));
    // the connection is still usable after all that
    assert_eq!(c.exchange(&get("/files/fw.bin", "")).unwrap().body, data);

    let reqs = emu.file_requests("fw.bin");
    assert_eq!(reqs.len(), 12);
    assert_eq!(reqs[0].status, 200);
    assert_eq!(reqs[0].bytes_sent, 100_000);
    assert_eq!(reqs[1].range.as_deref(), Some("bytes=0-9"));
    assert_eq!((reqs[1].status, reqs[1].bytes_sent), (206, 10));
    assert_eq!((reqs[5].status, reqs[5].bytes_sent), (416, 0));
    assert_eq!(reqs[7].if_range.as_deref(), Some(etag.as_str()));
    assert_eq!(reqs[9].method, "HEAD");
    assert_eq!(reqs[9].bytes_sent, 0);
    assert!(reqs.iter().all(|r| !r.authorization_present));
    // the admin API gives the same log
    let log = admin
        .admin("GET", "/admin/v1/files/fw.bin/requests", None)
        .ok();
    assert_eq!(log["requests"].as_array().unwrap().len(), 12);
    assert_eq!(
        log["requests"][1],
        json!({"method": "GET", "range": "bytes=0-9", "if_range": null, "status": 206,
               "bytes_sent": 10, "authorization_present": false, "fault": null})
    );
    let s = emu.stats();
    assert_eq!(s.by_endpoint["GET /files/{name}"], 10);
    assert_eq!(s.by_endpoint["HEAD /files/{name}"], 2);
}

#[test]
fn generated_files_are_deterministic_and_large_ones_stream() {
    let (emu, admin) = setup();
    let t = Instant::now();
    let big = admin
        .admin(
            "POST",
            "/admin/v1/files/big.bin",
            Some(&json!({"size": 64u64 << 20, "seed": 42})),
        )
        .ok();
    let generated_in = t.elapsed();
    assert_eq!(big["size"], json!(64u64 << 20));
    let again = emu
        .generate_file("big2.bin", 64 << 20, 42, FileOptions::default())
        .unwrap();
    assert_eq!(big["sha256"], json!(again.sha256), "same size and seed");
    assert_ne!(big["etag"], json!(again.etag));
    let other = emu
        .generate_file("small.bin", 1000, 43, FileOptions::default())
        .unwrap();
    assert_eq!(other.size, 1000);

    let c = Client::new(&emu);
    let t = Instant::now();
    let mut r = c.agent.get(big["url"].as_str().unwrap()).call().unwrap();
    let body = r
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .unwrap();
    let downloaded_in = t.elapsed();
    assert_eq!(body.len(), 64 << 20);
    assert_eq!(json!(sha256(&body)), big["sha256"]);
    eprintln!("64 MiB: generated in {generated_in:?}, downloaded in {downloaded_in:?}");
    // the content is the documented splitmix64 stream
    assert_eq!(
        body[..1000].to_vec(),
        fleets_emulator::files::generate(1000, 42)
    );
    let listed = admin.admin("GET", "/admin/v1/files", None).ok();
    let names: Vec<&str> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["big.bin", "big2.bin", "small.bin"]);
}

#[test]
fn options_no_ranges_and_auth() {
    let (emu, admin) = setup();
    let data = content(5000);
    let info = upload(&admin, "plain.bin?ranges=false", &data).ok();
    assert_eq!(info["ranges"], json!(false));
    let mut c = Conn::open(&emu);
    let r = c
        .exchange(&get("/files/plain.bin", "Range: bytes=0-9\r\n"))
        .unwrap();
    assert_eq!((r.status, r.body.len()), (200, 5000), "Range is ignored");
    assert_eq!(r.header("accept-ranges"), None);

    upload(&admin, "private.bin?auth=true&ranges=true", &data).ok();
    let r = c.exchange(&get("/files/private.bin", "")).unwrap();
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
    let creds = format!(
        "Authorization: {}\r\n",
        basic(emu.api_key(), emu.api_secret())
    );
    let r = c.exchange(&get("/files/private.bin", &creds)).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 5000));
    let wrong = format!("Authorization: {}\r\n", basic(emu.api_key(), "nope"));
    assert_eq!(
        c.exchange(&get("/files/private.bin", &wrong))
            .unwrap()
            .status,
        401
    );
    let present: Vec<(u16, bool)> = emu
        .file_requests("private.bin")
        .iter()
        .map(|r| (r.status, r.authorization_present))
        .collect();
    assert_eq!(present, [(401, false), (200, true), (401, true)]);
    // a public file logs credentials that were sent anyway
    c.exchange(&get("/files/plain.bin", &creds)).unwrap();
    assert!(emu.file_requests("plain.bin")[1].authorization_present);

    for bad in ["x.bin?ranges=maybe", "x.bin?color=red"] {
        upload(&admin, bad, b"x").err(400, "InvalidRequest");
    }
}

#[test]
fn replacing_a_file_changes_its_etag() {
    let (emu, admin) = setup();
    let v1 = emu
        .put_file("fw.bin", content(1000), FileOptions::default())
        .unwrap();
    let v2 = upload(&admin, "fw.bin", &content(1000)).ok();
    assert_eq!(json!(v1.sha256), v2["sha256"]);
    assert_ne!(json!(v1.etag), v2["etag"], "same bytes, new ETag");
    let v3 = emu
        .put_file("fw.bin", b"new firmware".to_vec(), FileOptions::default())
        .unwrap();
    // a resume that names the old ETag gets the new file whole
    let mut c = Conn::open(&emu);
    let r = c
        .exchange(&get(
            "/files/fw.bin",
            &format!("Range: bytes=4-\r\nIf-Range: {}\r\n", v1.etag),
        ))
        .unwrap();
    assert_eq!((r.status, &r.body[..]), (200, &b"new firmware"[..]));
    assert_eq!(r.header("etag"), Some(v3.etag.as_str()));
    assert_eq!(emu.file("fw.bin").unwrap().size, 12);
}

#[test]
fn errors_and_admin_validation() {
    let (emu, admin) = setup();
    let mut c = Conn::open(&emu);
    let r = c.exchange(&get("/files/missing.bin", "")).unwrap();
    assert_eq!(r.status, 404);
    emu.put_file("e.bin", Vec::new(), FileOptions::default())
        .unwrap();
    let r = c.exchange(&get("/files/e.bin", "")).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), Some("0"));
    let r = c
        .exchange(&get("/files/e.bin", "Range: bytes=0-\r\n"))
        .unwrap();
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */0"));
    let r = c
        .exchange(&raw_request(
            "POST",
            "/files/e.bin",
            "Content-Length: 0\r\n",
        ))
        .unwrap();
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(emu.stats().by_endpoint["POST /files/{name}"], 1);

    admin
        .admin(
            "POST",
            "/admin/v1/files/bad%2Fname",
            Some(&json!({"size": 1})),
        )
        .err(400, "InvalidRequest");
    admin
        .admin(
            "POST",
            "/admin/v1/files/x.bin",
            Some(&json!({"size": (256u64 << 20) + 1})),
        )
        .err(400, "InvalidRequest");
    admin
        .admin("POST", "/admin/v1/files/x.bin", Some(&json!({"seed": 1})))
        .err(400, "InvalidRequest");
    admin
        .admin("GET", "/admin/v1/files/nope.bin", None)
        .err(404, "ResourceNotFound");
    admin
        .admin("PATCH", "/admin/v1/files/e.bin", None)
        .err(405, "MethodNotAllowed");
    assert!(emu
        .put_file("..", b"x".to_vec(), FileOptions::default())
        .is_err());
    let info = admin.admin("GET", "/admin/v1/files/e.bin", None).ok();
    assert_eq!(info["size"], json!(0));
    admin.admin("DELETE", "/admin/v1/files/e.bin", None).ok();
    admin
        .admin("DELETE", "/admin/v1/files/e.bin", None)
        .err(404, "ResourceNotFound");
    assert!(emu.file_requests("e.bin").is_empty(), "the log goes too");
    // the log of an unknown name is kept (a client asking for the wrong file is visible)
    assert_eq!(emu.file_requests("missing.bin")[0].status, 404);
    admin
        .admin("DELETE", "/admin/v1/files/missing.bin/requests", None)
        .ok();
    assert!(emu.file_requests("missing.bin").is_empty());
    // reset removes files
    emu.put_file("k.bin", b"k".to_vec(), FileOptions::default())
        .unwrap();
    emu.reset();
    assert!(emu.file("k.bin").is_none());
}

/// Sends a GET and reads whatever comes: (status, promised length, body bytes, how it ended).
fn fetch_raw(
    emu: &Emulator,
    path: &str,
    headers: &str,
    timeout: Duration,
) -> (u16, usize, Vec<u8>, Result<(), ErrorKind>) {
    let mut c = Conn::open(emu);
    c.set_read_timeout(timeout);
    c.send(&get(path, headers)).unwrap();
    let head = c.read_response(true).unwrap();
    let len = head.header("content-length").unwrap().parse().unwrap();
    let (body, end) = c.read_to_end();
    (head.status, len, body, end)
}

#[test]
fn faults_cut_the_body_after_n_bytes() {
    let (emu, admin) = setup();
    let data = content(4 << 20);
    upload(&admin, "fw.bin", &data).ok();
    let cut = 1 << 20;

    // truncate: N bytes, then a clean close
    emu.add_fault(FaultRule::new(FaultKind::Truncate, "/files/").after_bytes(cut));
    let (status, len, body, end) = fetch_raw(&emu, "/files/fw.bin", "", Duration::from_secs(10));
    assert_eq!((status, len), (200, 4 << 20));
    assert_eq!(body.len() as u64, cut);
    assert_eq!(body, &data[..cut as usize]);
    assert_eq!(end, Ok(()), "closed cleanly (close_notify, FIN)");

    // reset: N bytes, then RST
    emu.add_fault(FaultRule::new(FaultKind::Reset, "/files/fw.bin").after_bytes(100_000));
    let (status, _, body, end) = fetch_raw(
        &emu,
        "/files/fw.bin",
        "Range: bytes=100-\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(status, 206);
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    assert_eq!(body, &data[100..100_100]);

    // stall: N bytes, then silence
    emu.add_fault(FaultRule::new(FaultKind::Stall, "/files/").after_bytes(10));
    let (_, _, body, end) = fetch_raw(&emu, "/files/fw.bin", "", Duration::from_millis(500));
    assert_eq!(body, &data[..10]);
    assert!(
        matches!(end, Err(ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "{end:?}"
    );
    // stall with delay_ms: N bytes, silence, then a close
    let mut rule = FaultRule::new(FaultKind::Stall, "/files/").after_bytes(0);
    rule.delay_ms = Some(300);
    emu.add_fault(rule);
    let t = Instant::now();
    let (_, _, body, end) = fetch_raw(&emu, "/files/fw.bin", "", Duration::from_secs(5));
    assert!(body.is_empty());
    assert_eq!(end, Ok(()));
    assert!(t.elapsed() >= Duration::from_millis(300));

    // a rule before the response still works on files (status, reset)
    emu.add_fault(FaultRule::status("/files/", 503).retry_after(1));
    let mut c = Conn::open(&emu);
    let r = c.exchange(&get("/files/fw.bin", "")).unwrap();
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));

    let log: Vec<(u16, u64, Option<FaultKind>)> = emu
        .file_requests("fw.bin")
        .iter()
        .map(|r| (r.status, r.bytes_sent, r.fault))
        .collect();
    assert_eq!(
        log,
        [
            (200, cut, Some(FaultKind::Truncate)),
            (206, 100_000, Some(FaultKind::Reset)),
            (200, 10, Some(FaultKind::Stall)),
            (200, 0, Some(FaultKind::Stall)),
            (503, 0, Some(FaultKind::Status)),
        ]
    );
    assert!(admin.admin("GET", "/admin/v1/faults", None).ok()["faults"]
        .as_array()
        .unwrap()
        .is_empty());
    // after_bytes is refused for kinds it does not apply to
    admin
        .admin(
            "POST",
            "/admin/v1/faults",
            Some(&json!({"kind": "status", "after_bytes": 5})),
        )
        .err(400, "InvalidRequest");
}

#[test]
fn a_cut_download_resumes_with_a_range_and_verifies() {
    let (emu, _admin) = setup();
    let info = emu
        .generate_file("fw.bin", 3 << 20, 7, FileOptions::default())
        .unwrap();
    emu.add_fault(FaultRule::new(FaultKind::Truncate, "/files/").after_bytes(1_234_567));
    let (_, _, mut got, end) = fetch_raw(&emu, "/files/fw.bin", "", Duration::from_secs(10));
    assert_eq!(end, Ok(()));
    assert!(got.len() < 3 << 20);
    let r = Conn::open(&emu)
        .exchange(&get(
            "/files/fw.bin",
            &format!("Range: bytes={}-\r\nIf-Range: {}\r\n", got.len(), info.etag),
        ))
        .unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body.len(), (3 << 20) - got.len());
    got.extend_from_slice(&r.body);
    assert_eq!(sha256(&got), info.sha256);
    let ranges: Vec<Option<String>> = emu
        .file_requests("fw.bin")
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [None, Some("bytes=1234567-".to_owned())]);
}

#[test]
fn files_over_plain_http() {
    let emu = common::start_with(EmulatorOptions {
        tls: TlsMode::PlainHttp,
        ..Default::default()
    });
    let info = emu
        .put_file("a.bin", content(70_000), FileOptions::default())
        .unwrap();
    assert!(info.url.starts_with("http://127.0.0.1:"), "{}", info.url);
    emu.add_fault(FaultRule::new(FaultKind::Reset, "/files/").after_bytes(65_536));
    let (_, _, body, end) = fetch_raw(&emu, "/files/a.bin", "", Duration::from_secs(5));
    assert_eq!(body.len(), 65_536);
    assert_eq!(end, Err(ErrorKind::ConnectionReset));
    let c = Client::new(&emu);
    let mut r = c.agent.get(&info.url).call().unwrap();
    let v: Vec<u8> = r.body_mut().read_to_vec().unwrap();
    assert_eq!(v, content(70_000));
}
