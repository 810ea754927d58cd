//! The `fleets-emulator` binary: ready line, options, signals, and the seed's curl commands.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fleets-emulator");

struct Running {
    child: Child,
    ready: Value,
    stdout: BufReader<std::process::ChildStdout>,
}

fn spawn(args: &[&str]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let ready: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("ready line {line:?}: {e}"));
    Running {
        child,
        ready,
        stdout,
    }
}

fn signal(child: &Child, sig: &str) {
    let st = Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn wait_exit(r: &mut Running) -> std::process::ExitStatus {
    let t = Instant::now();
    loop {
        if let Some(st) = r.child.try_wait().unwrap() {
            return st;
        }
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no exit after the signal"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn agent(ca_pem: Option<&[u8]>) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(pem) = ca_pem {
        let cert = ureq::tls::Certificate::from_pem(pem).unwrap();
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(tls.build())
        .build()
        .new_agent()
}

fn admin_register(agent: &ureq::Agent, ready: &Value, thing: &str) -> u16 {
    agent
        .put(format!(
            "{}/admin/v1/things/{thing}",
            ready["endpoint"].as_str().unwrap()
        ))
        .header(
            "Authorization",
            format!("Bearer {}", ready["admin_token"].as_str().unwrap()),
        )
        .send_empty()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn ready_line_then_sigterm_exits_zero() {
    let mut r = spawn(&["--listen", "127.0.0.1:0"]);
    let keys: Vec<&String> = r.ready.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 7);
    assert_eq!(r.ready["event"], "ready");
    let endpoint = r.ready["endpoint"].as_str().unwrap();
    assert!(
        endpoint.starts_with("https://127.0.0.1:") && !endpoint.ends_with(":0"),
        "{endpoint}"
    );
    assert_eq!(r.ready["api_key"], fleets_emulator::DEFAULT_API_KEY);
    assert_eq!(r.ready["api_secret"], fleets_emulator::DEFAULT_API_SECRET);
    assert_eq!(r.ready["admin_token"], fleets_emulator::DEFAULT_ADMIN_TOKEN);
    let ca_file = r.ready["ca_file"].as_str().unwrap().to_owned();
    let pem = std::fs::read(&ca_file).unwrap();
    assert_eq!(admin_register(&agent(Some(&pem)), &r.ready, "t-1"), 200);
    // the admin-only port: same CA, admin API only
    let admin = r.ready["admin_endpoint"].as_str().unwrap().to_owned();
    assert!(
        admin.starts_with("https://127.0.0.1:") && admin != endpoint,
        "{admin}"
    );
    let mut via_admin = r.ready.clone();
    via_admin["endpoint"] = Value::from(admin.clone());
    assert_eq!(admin_register(&agent(Some(&pem)), &via_admin, "t-2"), 200);
    let device_on_admin_port = agent(Some(&pem))
        .get(format!("{admin}/api/v1/thing-datas/t-2/shadow"))
        .call()
        .unwrap();
    assert_eq!(device_on_admin_port.status().as_u16(), 404);
    signal(&r.child, "TERM");
    assert_eq!(wait_exit(&mut r).code(), Some(0));
    let mut rest = String::new();
    r.stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "the ready line is the only stdout line");
    assert!(
        !Path::new(&ca_file).exists(),
        "the temporary CA directory is removed on exit"
    );
}

#[test]
fn sigint_exits_zero_and_options_apply() {
    let dir = std::env::temp_dir().join(format!("fleets-emu-bin-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_out = dir.join("my-ca.pem");
    let mut r = spawn(&[
        "--listen=127.0.0.1:0",
        "--ca-out",
        ca_out.to_str().unwrap(),
        "--api-key",
        "ak_x",
        "--api-secret",
        "sec",
        "--admin-token",
        "adm",
        "--auto-register",
    ]);
    assert_eq!(r.ready["ca_file"], ca_out.to_str().unwrap());
    assert_eq!(
        (r.ready["api_key"].as_str(), r.ready["admin_token"].as_str()),
        (Some("ak_x"), Some("adm"))
    );
    let a = agent(Some(&std::fs::read(&ca_out).unwrap()));
    let auth = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "ak_x:sec")
    );
    let resp = a
        .get(format!(
            "{}/api/v1/thing-datas/auto-1/shadow",
            r.ready["endpoint"].as_str().unwrap()
        ))
        .header("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "auto-registered on first use");
    signal(&r.child, "INT");
    assert_eq!(wait_exit(&mut r).code(), Some(0));
    assert!(ca_out.exists(), "an explicit --ca-out file is kept");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn plain_http_and_tls_files() {
    let mut r = spawn(&["--listen", "127.0.0.1:0", "--plain-http"]);
    assert!(r.ready["endpoint"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    assert_eq!(r.ready["ca_file"], Value::Null);
    assert_eq!(admin_register(&agent(None), &r.ready, "t"), 200);
    signal(&r.child, "TERM");
    assert_eq!(wait_exit(&mut r).code(), Some(0));

    // --tls-cert/--tls-key with a certificate made here
    let dir = std::env::temp_dir().join(format!("fleets-emu-files-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    let mut r = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        dir.join("cert.pem").to_str().unwrap(),
        "--tls-key",
        dir.join("key.pem").to_str().unwrap(),
    ]);
    assert_eq!(r.ready["ca_file"], Value::Null);
    assert_eq!(
        admin_register(&agent(Some(cert.pem().as_bytes())), &r.ready, "t"),
        200
    );
    signal(&r.child, "TERM");
    assert_eq!(wait_exit(&mut r).code(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn bad_arguments_and_busy_port() {
    let out = Command::new(BIN).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--listen"));
    let out = Command::new(BIN)
        .args([
            "--tls-cert",
            "/nonexistent.pem",
            "--tls-key",
            "/nonexistent.pem",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    // a port that is taken
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let out = Command::new(BIN)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot listen"));
}

#[test]
fn seed_curl_script() {
    let have = |cmd: &str| {
        Command::new(cmd)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    if !have("curl") || !have("bash") {
        eprintln!("skipping: curl or bash not installed");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seed_curl.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(BIN)
        .env_remove("FLEETS_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains(", 0 failed"), "{stdout}");
    assert!(
        stdout.contains("ok   seed: report job execution status"),
        "{stdout}"
    );
}
