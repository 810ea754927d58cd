//! TLS failure matrix: every certificate defect the client must refuse, each against a
//! purpose-built TLS server with certificates generated in the test. A refused handshake must
//! fail with `Tls` (configuration-time refusals with `InvalidConfig`), must not let a single
//! application byte reach the server, and must not echo the API secret.
//!
//! Each case prints one table row; `cargo test --test tls_matrix -- --nocapture
//! --test-threads=1` gives the matrix in order.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::raw_server::{
    ca, issue, server_cert, tls_config, tls_config_requiring_client_cert, Conn, Issued, RawServer,
};
use common::THING;
use fleets::{Client, Config, ErrorCode};
use rcgen::{BasicConstraints, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose};

const API_KEY: &str = "tls-matrix-key";
const API_SECRET: &str = "tls-matrix-secret-7c41e9";

/// Answers every complete request with `200 {}`.
fn answer_ok(conn: &mut Conn) {
    while conn.read_request().is_some() {
        conn.respond(200, "", "{}");
    }
}

fn base_config(server: &RawServer) -> Config {
    let mut config = Config::new(&server.https_endpoint(), API_KEY, API_SECRET).unwrap();
    config.set_timeouts(Duration::from_secs(2), Duration::from_secs(3));
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    config
}

fn config_trusting(server: &RawServer, trusted: &Issued) -> Config {
    let mut config = base_config(server);
    config.set_ca_pem(&trusted.cert_pem).unwrap();
    config
}

/// One row of the matrix.
fn row<T>(case: &str, expected: &str, result: &fleets::Result<T>, elapsed: Duration) {
    let (observed, message) = match result {
        Ok(_) => ("OK", String::new()),
        Err(e) => (
            e.code().name().trim_start_matches("FLEETS_ERR_"),
            e.message().to_owned(),
        ),
    };
    println!(
        "| {case:<44} | {expected:<14} | {observed:<14} | {:>5} ms | {message} |",
        elapsed.as_millis()
    );
}

/// Calls the server and returns the outcome with the elapsed time.
fn call(config: &Config) -> (fleets::Result<fleets::Response>, Duration) {
    let started = Instant::now();
    let result = Client::new(config).and_then(|client| client.shadow_get(THING));
    (result, started.elapsed())
}

fn assert_no_secret(err: &fleets::Error) {
    for text in [
        err.message().to_owned(),
        err.to_string(),
        format!("{err:?}"),
    ] {
        assert!(!text.contains(API_SECRET), "secret leaked: {text}");
    }
}

/// The handshake must fail with `Tls`, naming the defect (one of `words`), and the server must
/// see a connection but no application byte.
fn expect_tls_refusal(case: &str, server: &RawServer, config: &Config, words: &[&str]) {
    let (result, elapsed) = call(config);
    row(case, "TLS", &result, elapsed);
    let err = result.expect_err(case);
    assert_eq!(err.code(), ErrorCode::Tls, "{case}: {err}");
    assert!(
        words.iter().any(|w| err.message().contains(w)),
        "{case}: message {:?} names none of {words:?}",
        err.message()
    );
    assert_no_secret(&err);
    assert!(elapsed < Duration::from_secs(2), "{case}: took {elapsed:?}");
    assert!(
        server.wait_idle(Duration::from_secs(3)),
        "{case}: server hung"
    );
    assert!(server.connections() >= 1, "{case}: no TCP connection");
    assert_eq!(server.requests(), 0, "{case}: a request reached the server");
    assert_eq!(
        server.bytes_received(),
        0,
        "{case}: application bytes reached the server"
    );
}

fn expect_success(case: &str, server: &RawServer, config: &Config) {
    let (result, elapsed) = call(config);
    row(case, "OK", &result, elapsed);
    let response = result.unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_eq!(response.status(), 200);
    assert_eq!(server.requests(), 1, "{case}");
    // The byte counter that the refusal cases rely on does count application data.
    assert!(server.bytes_received() > 0, "{case}");
}

/// A CA with the given name, a leaf for 127.0.0.1/localhost, and a server presenting it.
fn server_with(adjust: impl FnOnce(&mut rcgen::CertificateParams)) -> (Issued, RawServer) {
    let root = ca("Matrix Root");
    let leaf = issue(Some(&root), &["127.0.0.1", "localhost"], adjust);
    let server = RawServer::start(Some(tls_config(&[&leaf], &leaf)), answer_ok);
    (root, server)
}

fn intermediate(root: &Issued) -> Issued {
    issue(Some(root), &[], |p| {
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.distinguished_name
            .push(DnType::CommonName, "Matrix Intermediate");
    })
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fleets-tls-matrix-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn expect_invalid_config(case: &str, started: Instant, result: fleets::Result<()>, path: &Path) {
    let elapsed = started.elapsed();
    row(case, "INVALID_CONFIG", &result, elapsed);
    let err = result.expect_err(case);
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{case}: {err}");
    assert!(
        err.message().contains(&path.display().to_string()),
        "{case}: message should name the file: {err}"
    );
    assert_no_secret(&err);
}

// ---------------------------------------------------------------- positive controls

#[test]
fn trusted_ca_pem_succeeds() {
    let (root, server) = server_with(|_| {});
    expect_success(
        "control: set_ca_pem(right CA)",
        &server,
        &config_trusting(&server, &root),
    );
}

#[test]
fn trusted_ca_file_succeeds() {
    let (root, server) = server_with(|_| {});
    let dir = TempDir::new();
    let mut config = base_config(&server);
    config
        .set_ca_file(&dir.write("ca.pem", &root.cert_pem))
        .unwrap();
    expect_success("control: set_ca_file(right CA)", &server, &config);
}

// ---------------------------------------------------------------- server certificate defects

#[test]
fn expired_server_cert() {
    let (root, server) = server_with(|p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    expect_tls_refusal(
        "expired server certificate",
        &server,
        &config_trusting(&server, &root),
        &["expired"],
    );
}

#[test]
fn not_yet_valid_server_cert() {
    let (root, server) = server_with(|p| {
        p.not_before = rcgen::date_time_ymd(2099, 1, 1);
        p.not_after = rcgen::date_time_ymd(2100, 1, 1);
    });
    expect_tls_refusal(
        "server certificate not yet valid",
        &server,
        &config_trusting(&server, &root),
        &["not valid yet"],
    );
}

#[test]
fn wrong_hostname() {
    let root = ca("Matrix Root");
    let leaf = issue(Some(&root), &["fleets.example.com"], |_| {});
    let server = RawServer::start(Some(tls_config(&[&leaf], &leaf)), answer_ok);
    expect_tls_refusal(
        "certificate for another name (127.0.0.1)",
        &server,
        &config_trusting(&server, &root),
        &["not valid for name"],
    );
}

#[test]
fn self_signed_server_cert() {
    let leaf = issue(None, &["127.0.0.1", "localhost"], |_| {});
    let server = RawServer::start(Some(tls_config(&[&leaf], &leaf)), answer_ok);
    let trusted = ca("Some Other CA");
    expect_tls_refusal(
        "self-signed server certificate",
        &server,
        &config_trusting(&server, &trusted),
        &["UnknownIssuer"],
    );
}

#[test]
fn unknown_ca() {
    let (_, server) = server_with(|_| {});
    let trusted = ca("Trusted But Unrelated CA");
    expect_tls_refusal(
        "server certificate from an unknown CA",
        &server,
        &config_trusting(&server, &trusted),
        &["UnknownIssuer"],
    );
}

#[test]
fn missing_intermediate() {
    let root = ca("Matrix Root");
    let inter = intermediate(&root);
    let leaf = server_cert(&inter);
    let server = RawServer::start(Some(tls_config(&[&leaf], &leaf)), answer_ok);
    expect_tls_refusal(
        "leaf only, intermediate missing",
        &server,
        &config_trusting(&server, &root),
        &["UnknownIssuer"],
    );
}

#[test]
fn intermediate_sent_succeeds() {
    let root = ca("Matrix Root");
    let inter = intermediate(&root);
    let leaf = server_cert(&inter);
    let server = RawServer::start(Some(tls_config(&[&leaf, &inter], &leaf)), answer_ok);
    expect_success(
        "control: leaf + intermediate sent",
        &server,
        &config_trusting(&server, &root),
    );
}

#[test]
fn server_cert_without_server_auth_eku() {
    let (root, server) = server_with(|p| {
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    });
    expect_tls_refusal(
        "server certificate with clientAuth EKU only",
        &server,
        &config_trusting(&server, &root),
        &["extended key usage"],
    );
}

// ---------------------------------------------------------------- client certificates

struct MutualTls {
    root: Issued,
    client_ca: Issued,
    server: RawServer,
}

fn mutual_tls_server() -> MutualTls {
    let root = ca("Matrix Root");
    let leaf = server_cert(&root);
    let client_ca = ca("Matrix Device CA");
    let server = RawServer::start(
        Some(tls_config_requiring_client_cert(
            &[&leaf],
            &leaf,
            &client_ca,
        )),
        answer_ok,
    );
    MutualTls {
        root,
        client_ca,
        server,
    }
}

#[test]
fn client_cert_required_but_not_given() {
    let mtls = mutual_tls_server();
    expect_tls_refusal(
        "server requires a client cert, none given",
        &mtls.server,
        &config_trusting(&mtls.server, &mtls.root),
        &["CertificateRequired"],
    );
}

#[test]
fn client_cert_given_succeeds() {
    let mtls = mutual_tls_server();
    let device = issue(Some(&mtls.client_ca), &["device-001"], |_| {});
    let dir = TempDir::new();
    let mut config = config_trusting(&mtls.server, &mtls.root);
    config
        .set_client_cert(
            &dir.write("device.pem", &device.cert_pem),
            &dir.write("device.key", &device.key_pem),
        )
        .unwrap();
    expect_success("control: client cert given", &mtls.server, &config);
}

#[test]
fn client_cert_from_another_ca_is_refused() {
    let mtls = mutual_tls_server();
    let stranger = issue(Some(&ca("Unrelated Device CA")), &["device-001"], |_| {});
    let dir = TempDir::new();
    let mut config = config_trusting(&mtls.server, &mtls.root);
    config
        .set_client_cert(
            &dir.write("device.pem", &stranger.cert_pem),
            &dir.write("device.key", &stranger.key_pem),
        )
        .unwrap();
    expect_tls_refusal(
        "client cert from a CA the server distrusts",
        &mtls.server,
        &config,
        &["UnknownCA", "BadCertificate", "alert"],
    );
}

#[test]
fn client_cert_and_key_mismatch() {
    let client_ca = ca("Matrix Device CA");
    let device = issue(Some(&client_ca), &["device-001"], |_| {});
    let other = issue(Some(&client_ca), &["device-002"], |_| {});
    let dir = TempDir::new();
    let mut config = Config::new("https://127.0.0.1:1", API_KEY, API_SECRET).unwrap();
    let key = dir.write("other.key", &other.key_pem);
    let started = Instant::now();
    let result = config.set_client_cert(&dir.write("device.pem", &device.cert_pem), &key);
    let elapsed = started.elapsed();
    row(
        "client cert with another cert's key",
        "INVALID_CONFIG",
        &result,
        elapsed,
    );
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert!(err.message().contains("does not match"), "{err}");
    assert_no_secret(&err);
    assert!(!err.message().contains("PRIVATE KEY"), "{err}");
}

// ---------------------------------------------------------------- unusable CA files

#[test]
fn ca_file_without_certificate() {
    let dir = TempDir::new();
    let mut config = Config::new("https://127.0.0.1:1", API_KEY, API_SECRET).unwrap();

    let path = dir.write("text.pem", "this is not a certificate\n");
    let started = Instant::now();
    let result = config.set_ca_file(&path);
    expect_invalid_config("CA file without a PEM block", started, result, &path);

    let key_only = issue(None, &["x"], |_| {}).key_pem;
    let path = dir.write("key.pem", &key_only);
    let started = Instant::now();
    let result = config.set_ca_file(&path);
    expect_invalid_config("CA file with only a private key", started, result, &path);

    // Valid PEM armour and base64 around bytes that are not a certificate.
    let junk = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGUgYXQgYWxsLCBqdXN0IGJ5dGVzLg==\n-----END CERTIFICATE-----\n";
    let path = dir.write("junk.pem", junk);
    let started = Instant::now();
    let result = config.set_ca_file(&path);
    expect_invalid_config(
        "CA file with an unparsable CERTIFICATE",
        started,
        result,
        &path,
    );

    let path = dir.0.join("missing.pem");
    let started = Instant::now();
    let result = config.set_ca_file(&path);
    expect_invalid_config("CA file that does not exist", started, result, &path);

    let started = Instant::now();
    let result = config.set_ca_pem(junk);
    let elapsed = started.elapsed();
    row(
        "set_ca_pem with an unparsable CERTIFICATE",
        "INVALID_CONFIG",
        &result,
        elapsed,
    );
    assert_eq!(result.unwrap_err().code(), ErrorCode::InvalidConfig);
}
