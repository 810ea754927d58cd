//! HTTP CONNECT proxies: a real (if small) proxy written here, in front of the in-process
//! emulator. Proxy configuration through `Config::set_proxy` is tested by every test but the
//! last; only `from_env_https_proxy_and_no_proxy` touches the process environment.
//!
//! A loopback endpoint never goes through a proxy, so the proxied tests reach the emulator by
//! a name, `fleets.proxy.test`, that only the test proxy resolves (to 127.0.0.1); the
//! emulator presents a certificate for it.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::raw_server::{self, Issued};
use common::THING;
use fleets::{Client, Config, ErrorCode};
use fleets_emulator::{Emulator, EmulatorOptions, TlsMode};

/// The emulator's name for proxied tests: the test proxy resolves it, nothing else does.
const PROXIED_HOST: &str = "fleets.proxy.test";

/// What the proxy does once a CONNECT is authorised.
#[derive(Clone, Copy)]
enum Mode {
    /// Connects upstream and pumps bytes both ways.
    Tunnel,
    /// Refuses every tunnel with this status, as a proxy does when its policy forbids the
    /// target or the target cannot be reached.
    Refuse(u16),
}

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    /// Every request line received, CONNECT or not.
    request_lines: Vec<String>,
    /// The target of every CONNECT request line, authorised or not.
    connects: Vec<String>,
    /// The `Proxy-Authorization` header of each CONNECT (`None` when absent).
    authorizations: Vec<Option<String>>,
    /// Tunnels opened (200 sent).
    tunnels: usize,
    /// Every byte the client sent through tunnels.
    tunnelled: Vec<u8>,
}

struct ConnectProxy {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl ConnectProxy {
    fn start(credentials: Option<(&str, &str)>, mode: Mode) -> ConnectProxy {
        ConnectProxy::start_on("127.0.0.1:0", credentials, mode)
    }

    fn start_on(bind: &str, credentials: Option<(&str, &str)>, mode: Mode) -> ConnectProxy {
        let expected = credentials.map(|(user, password)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )
        });
        let listener = TcpListener::bind(bind).unwrap();
        listener.set_nonblocking(true).unwrap();
        let proxy = ConnectProxy {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
            stop: Arc::default(),
        };
        let (seen, stop) = (proxy.seen.clone(), proxy.stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let (seen, expected) = (seen.clone(), expected.clone());
                        thread::spawn(move || handle(client, expected.as_deref(), mode, &seen));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        proxy
    }

    /// `http://[user:password@]127.0.0.1:PORT`.
    fn url(&self, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("http://{user}:{password}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    fn connects(&self) -> Vec<String> {
        self.seen.lock().unwrap().connects.clone()
    }

    fn tunnels(&self) -> usize {
        self.seen.lock().unwrap().tunnels
    }
}

impl Drop for ConnectProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn handle(mut client: TcpStream, expected: Option<&str>, mode: Mode, seen: &Mutex<Seen>) {
    client.set_nonblocking(false).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The request head, byte by byte: the client sends nothing more before our answer.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    seen.lock()
        .unwrap()
        .request_lines
        .push(request_line.to_owned());
    let mut parts = request_line.split(' ');
    let (Some("CONNECT"), Some(target), Some("HTTP/1.1")) =
        (parts.next(), parts.next(), parts.next())
    else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("proxy-authorization")
            .then(|| value.trim().to_owned())
    });
    {
        let mut seen = seen.lock().unwrap();
        seen.connects.push(target.to_owned());
        seen.authorizations.push(authorization.clone());
    }
    if expected.is_some() && authorization.as_deref() != expected {
        let _ = client.write_all(
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\
              Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
        );
        return;
    }
    if let Mode::Refuse(status) = mode {
        let answer = format!("HTTP/1.1 {status} Refused\r\nContent-Length: 0\r\n\r\n");
        let _ = client.write_all(answer.as_bytes());
        return;
    }
    // The proxy resolves the target itself, as real proxies do.
    let resolved = match target.rsplit_once(':') {
        Some((PROXIED_HOST, port)) => format!("127.0.0.1:{port}"),
        _ => target.to_owned(),
    };
    let Ok(upstream) = resolved
        .parse::<SocketAddr>()
        .map_err(|_| ())
        .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).map_err(|_| ()))
    else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .is_err()
    {
        return;
    }
    seen.lock().unwrap().tunnels += 1;
    client.set_read_timeout(None).unwrap();
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    // Upstream to client on a second thread; client to upstream here, recording the bytes.
    let (mut up_read, mut client_write) =
        (upstream.try_clone().unwrap(), client.try_clone().unwrap());
    let downstream = thread::spawn(move || {
        let _ = std::io::copy(&mut up_read, &mut client_write);
        let _ = client_write.shutdown(Shutdown::Write);
    });
    let mut upstream = upstream;
    let mut buf = [0u8; 4096];
    loop {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.lock().unwrap().tunnelled.extend_from_slice(&buf[..n]);
                if upstream.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = upstream.shutdown(Shutdown::Write);
    let _ = downstream.join();
}

const USER: &str = "proxy-user";
const PASSWORD: &str = "proxy-pw-5be1d0";

/// An emulator that presents a certificate for [`PROXIED_HOST`], with its CA.
struct NamedEmulator {
    emu: Emulator,
    ca: Issued,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl NamedEmulator {
    fn start() -> NamedEmulator {
        let ca = raw_server::ca("proxy test CA");
        let leaf = raw_server::issue(Some(&ca), &[PROXIED_HOST, "127.0.0.1"], |_| {});
        let dir = std::env::temp_dir().join(format!(
            "fleets-proxy-test-{}-{:x}",
            std::process::id(),
            fleets_random()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        let emu = Emulator::start(EmulatorOptions {
            tls: TlsMode::Files { cert, key },
            ..EmulatorOptions::default()
        })
        .unwrap();
        emu.register_thing(THING);
        NamedEmulator {
            emu,
            ca,
            _dir: TempDir(dir),
        }
    }

    /// `https://fleets.proxy.test:PORT`.
    fn endpoint(&self) -> String {
        format!("https://{PROXIED_HOST}:{}", self.emu.local_addr().port())
    }

    /// `https://127.0.0.1:PORT`: the same emulator by a loopback address.
    fn loopback_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.emu.local_addr().port())
    }

    /// The CA certificate as a file.
    fn ca_file(&self) -> std::path::PathBuf {
        let path = self._dir.0.join("ca.pem");
        std::fs::write(&path, &self.ca.cert_pem).unwrap();
        path
    }

    /// The CONNECT target the proxy sees.
    fn target(&self) -> String {
        format!("{PROXIED_HOST}:{}", self.emu.local_addr().port())
    }
}

impl std::ops::Deref for NamedEmulator {
    type Target = Emulator;
    fn deref(&self) -> &Emulator {
        &self.emu
    }
}

fn fleets_random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

fn emulator() -> NamedEmulator {
    NamedEmulator::start()
}

/// A configuration for `emu` by name, with short limits and no retries.
fn config(emu: &NamedEmulator) -> Config {
    let mut config = Config::new(&emu.endpoint(), emu.api_key(), emu.api_secret()).unwrap();
    config.set_ca_pem(&emu.ca.cert_pem).unwrap();
    config.set_timeouts(Duration::from_secs(2), Duration::from_secs(3));
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    config
}

fn shadow_get(config: &Config) -> (fleets::Result<fleets::Response>, Duration) {
    let started = Instant::now();
    let result = Client::new(config).and_then(|client| client.shadow_get(THING));
    (result, started.elapsed())
}

fn row<T>(case: &str, result: &fleets::Result<T>, elapsed: Duration) {
    let (code, message) = match result {
        Ok(_) => ("OK", String::new()),
        Err(e) => (e.code().name(), e.message().to_owned()),
    };
    println!(
        "| {case:<40} | {code:<24} | {:>5} ms | {message} |",
        elapsed.as_millis()
    );
}

fn assert_hides(err: &fleets::Error, secrets: &[&str]) {
    for text in [
        err.message().to_owned(),
        err.to_string(),
        format!("{err:?}"),
    ] {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} leaked in {text}");
        }
    }
}

#[test]
fn call_goes_through_authenticating_proxy() {
    let emu = emulator();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)), Mode::Tunnel);
    let mut config = config(&emu);
    config
        .set_proxy(&proxy.url(Some((USER, PASSWORD))))
        .unwrap();
    assert!(!format!("{config:?}").contains(PASSWORD));

    let (result, elapsed) = shadow_get(&config);
    row("through proxy with credentials", &result, elapsed);
    let response = result.unwrap();
    assert_eq!(response.status(), 200);

    assert_eq!(proxy.connects(), vec![emu.target()]);
    assert_eq!(proxy.tunnels(), 1);
    let seen = proxy.seen.lock().unwrap();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    assert_eq!(seen.authorizations, vec![Some(expected)]);
    // TLS runs end to end: the proxy saw a handshake and ciphertext, never the request.
    assert_eq!(seen.tunnelled.first(), Some(&0x16), "TLS handshake record");
    let tunnelled = String::from_utf8_lossy(&seen.tunnelled);
    assert!(
        !tunnelled.contains("thing-datas"),
        "plaintext in the tunnel"
    );
    assert!(
        !tunnelled.contains("Authorization"),
        "plaintext in the tunnel"
    );
    drop(seen);

    let stats = emu.stats();
    assert_eq!(stats.total, 1);
    assert_eq!(
        stats.by_endpoint["GET /api/v1/thing-datas/{thingName}/shadow"],
        1
    );
}

#[test]
fn proxy_without_authentication() {
    let emu = emulator();
    let proxy = ConnectProxy::start(None, Mode::Tunnel);
    let mut config = config(&emu);
    config.set_proxy(&proxy.url(None)).unwrap();
    let (result, elapsed) = shadow_get(&config);
    row("through proxy without credentials", &result, elapsed);
    result.unwrap();
    assert_eq!(proxy.connects(), vec![emu.target()]);
    assert_eq!(proxy.seen.lock().unwrap().authorizations, vec![None]);
    assert_eq!(emu.stats().total, 1);
}

#[test]
fn wrong_proxy_password() {
    let emu = emulator();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)), Mode::Tunnel);
    let wrong = "wrong-pw-93aa71";
    let mut config = config(&emu);
    config.set_proxy(&proxy.url(Some((USER, wrong)))).unwrap();
    let (result, elapsed) = shadow_get(&config);
    row("proxy answers 407 (wrong password)", &result, elapsed);
    let err = result.unwrap_err();
    // A refused CONNECT (any non-200 answer, 407 included) is a connect-phase failure.
    assert_eq!(err.code(), ErrorCode::Connect, "{err}");
    assert!(err.message().contains("407"), "{err}");
    assert_hides(&err, &[wrong, PASSWORD, emu.api_secret()]);
    assert_eq!(proxy.connects().len(), 1, "not retried");
    assert_eq!(proxy.tunnels(), 0);
    assert_eq!(emu.stats().total, 0);
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[test]
fn missing_proxy_credentials() {
    let emu = emulator();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)), Mode::Tunnel);
    let mut config = config(&emu);
    config.set_proxy(&proxy.url(None)).unwrap();
    let (result, elapsed) = shadow_get(&config);
    row("proxy answers 407 (no credentials)", &result, elapsed);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect, "{err}");
    assert!(err.message().contains("407"), "{err}");
    assert_eq!(proxy.seen.lock().unwrap().authorizations, vec![None]);
    assert_eq!(emu.stats().total, 0);
}

#[test]
fn proxy_refuses_the_tunnel() {
    let emu = emulator();
    for status in [403, 502] {
        let proxy = ConnectProxy::start(None, Mode::Refuse(status));
        let mut config = config(&emu);
        config.set_proxy(&proxy.url(None)).unwrap();
        let (result, elapsed) = shadow_get(&config);
        row(
            &format!("proxy answers {status} to CONNECT"),
            &result,
            elapsed,
        );
        let err = result.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Connect, "{err}");
        assert!(err.message().contains(&status.to_string()), "{err}");
        assert_eq!(proxy.connects(), vec![emu.target()]);
    }
    assert_eq!(emu.stats().total, 0);
}

#[test]
fn proxy_cannot_reach_the_target() {
    // The proxy tries for real and fails: nothing listens on the target port.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("{PROXIED_HOST}:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let proxy = ConnectProxy::start(None, Mode::Tunnel);
    let mut config = Config::new(&format!("https://{target}"), "key", "secret-1f0e").unwrap();
    config.set_timeouts(Duration::from_secs(2), Duration::from_secs(3));
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    config.set_proxy(&proxy.url(None)).unwrap();
    let (result, elapsed) = shadow_get(&config);
    row("proxy cannot reach the target (502)", &result, elapsed);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect, "{err}");
    assert!(err.message().contains("502"), "{err}");
    assert_eq!(proxy.connects(), vec![target]);
}

#[test]
fn proxy_port_refuses_connections() {
    let emu = emulator();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut config = config(&emu);
    config
        .set_proxy(&format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}"))
        .unwrap();
    let (result, elapsed) = shadow_get(&config);
    row("nothing listens on the proxy port", &result, elapsed);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect, "{err}");
    assert_hides(&err, &[PASSWORD]);
    assert_eq!(emu.stats().total, 0);
}

#[test]
fn proxy_urls_are_checked_without_echoing_the_password() {
    let mut config = Config::new("https://127.0.0.1:1", "key", "secret-1f0e").unwrap();
    for url in [
        "https://user:pw-url-3c@127.0.0.1:3128",
        "socks5://user:pw-url-3c@127.0.0.1:1080",
        "127.0.0.1:3128",
    ] {
        let err = config.set_proxy(url).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig, "{url}: {err}");
        assert_hides(&err, &["pw-url-3c"]);
    }
}

// ---------------------------------------------------------------- environment

/// Names this file's one environment test sets; all saved first and restored on drop, so a
/// failing assertion does not leak settings.
const ENV_NAMES: [&str; 10] = [
    "FLEETS_ENDPOINT",
    "FLEETS_API_KEY",
    "FLEETS_API_SECRET",
    "FLEETS_CA_FILE",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
];

struct EnvGuard(Vec<(&'static str, Option<std::ffi::OsString>)>);

impl EnvGuard {
    fn clean() -> EnvGuard {
        let saved = ENV_NAMES
            .iter()
            .map(|name| (*name, std::env::var_os(name)))
            .collect();
        for name in ENV_NAMES {
            std::env::remove_var(name);
        }
        EnvGuard(saved)
    }
}

impl Drop for EnvGuard {
    fn drop(&mut self) {
        for (name, value) in &self.0 {
            match value {
                Some(value) => std::env::set_var(name, value),
                None => std::env::remove_var(name),
            }
        }
    }
}

fn env_config() -> Config {
    let mut config = Config::from_env().unwrap();
    config.set_timeouts(Duration::from_secs(2), Duration::from_secs(3));
    config.set_retry(1, Duration::ZERO, Duration::ZERO).unwrap();
    config
}

/// The only test here that reads or writes the environment.
#[test]
fn from_env_https_proxy_and_no_proxy() {
    let emu = emulator();
    let proxy = ConnectProxy::start(Some((USER, PASSWORD)), Mode::Tunnel);
    let _guard = EnvGuard::clean();
    std::env::set_var("FLEETS_ENDPOINT", emu.endpoint());
    std::env::set_var("FLEETS_API_KEY", emu.api_key());
    std::env::set_var("FLEETS_API_SECRET", emu.api_secret());
    std::env::set_var("FLEETS_CA_FILE", emu.ca_file());
    let uses_proxy = |config: &Config| !format!("{config:?}").contains("proxy: None");

    // No proxy variable: straight to the server (which only the proxy can resolve).
    assert!(!uses_proxy(&env_config()));

    // HTTPS_PROXY with credentials.
    std::env::set_var("HTTPS_PROXY", proxy.url(Some((USER, PASSWORD))));
    let config = env_config();
    assert!(!format!("{config:?}").contains(PASSWORD));
    let (result, elapsed) = shadow_get(&config);
    row("env: HTTPS_PROXY", &result, elapsed);
    result.unwrap();
    assert_eq!(proxy.connects(), vec![emu.target()]);
    assert_eq!(emu.stats().total, 1);

    // NO_PROXY naming the endpoint's host bypasses the proxy.
    std::env::set_var("NO_PROXY", format!("localhost,{PROXIED_HOST}"));
    assert!(!uses_proxy(&env_config()), "NO_PROXY ignored");
    std::env::set_var("NO_PROXY", "localhost,.proxy.test");
    assert!(!uses_proxy(&env_config()), "NO_PROXY domain ignored");

    // NO_PROXY naming other hosts does not.
    std::env::set_var("NO_PROXY", "localhost,.example.com,10.0.0.1");
    let (result, elapsed) = shadow_get(&env_config());
    row("env: NO_PROXY for other hosts", &result, elapsed);
    result.unwrap();
    assert_eq!(proxy.connects().len(), 2);
    assert_eq!(emu.stats().total, 2);
    std::env::remove_var("NO_PROXY");

    // HTTP_PROXY does not apply to an https:// endpoint.
    std::env::remove_var("HTTPS_PROXY");
    std::env::set_var("HTTP_PROXY", proxy.url(Some((USER, PASSWORD))));
    assert!(!uses_proxy(&env_config()));
    std::env::remove_var("HTTP_PROXY");

    // Lower case, without a scheme.
    std::env::set_var("https_proxy", format!("{USER}:{PASSWORD}@{}", proxy.addr));
    let (result, elapsed) = shadow_get(&env_config());
    row("env: https_proxy without scheme", &result, elapsed);
    result.unwrap();
    assert_eq!(proxy.connects().len(), 3);
    assert_eq!(emu.stats().total, 3);

    // A loopback endpoint never goes through the proxy, whatever the environment says.
    std::env::set_var("FLEETS_ENDPOINT", emu.loopback_endpoint());
    let (result, elapsed) = shadow_get(&env_config());
    row("env: https_proxy, loopback endpoint", &result, elapsed);
    result.unwrap();
    assert_eq!(proxy.connects().len(), 3, "loopback endpoint proxied");
    assert_eq!(emu.stats().total, 4);
    std::env::set_var("FLEETS_ENDPOINT", emu.endpoint());

    // A wrong password from the environment fails like a configured one, without echoing it.
    let wrong = "env-wrong-pw-44c2";
    std::env::set_var("https_proxy", proxy.url(Some((USER, wrong))));
    let (result, elapsed) = shadow_get(&env_config());
    row("env: https_proxy with wrong password", &result, elapsed);
    let err = result.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Connect, "{err}");
    assert_hides(&err, &[wrong, PASSWORD, emu.api_secret()]);
    assert_eq!(emu.stats().total, 4);

    // A proxy URL of another kind is a configuration error that does not echo the URL.
    std::env::set_var("https_proxy", "socks5://u:env-socks-pw@127.0.0.1:1080");
    let err = Config::from_env().unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    assert_hides(&err, &["env-socks-pw"]);

    // A bad port is a configuration error, not port 80, in either address family and with
    // or without a scheme.
    let port = proxy.addr.port();
    for url in [
        format!("http://u:env-port-pw@127.0.0.1:{port}0000"),
        "http://u:env-port-pw@127.0.0.1:0x50".to_owned(),
        "u:env-port-pw@127.0.0.1:-1".to_owned(),
        "http://u:env-port-pw@[::1]:99999".to_owned(),
        "u:env-port-pw@[::1]:notaport".to_owned(),
        "http://u:env-port-pw@[::1".to_owned(),
    ] {
        std::env::set_var("https_proxy", &url);
        let err = Config::from_env().unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig, "{url}: {err}");
        assert_hides(&err, &["env-port-pw"]);
    }
    std::env::remove_var("https_proxy");

    // FLEETS_CA_FILE naming a FIFO fails at once instead of blocking on open().
    let fifo = std::env::temp_dir().join(format!("fleets-proxy-env-{}.fifo", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    std::env::set_var("FLEETS_CA_FILE", &fifo);
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(Config::from_env().map_err(|e| (e.code(), e.message().to_owned())));
    });
    let result = rx.recv_timeout(Duration::from_secs(5));
    let _ = std::fs::remove_file(&fifo);
    let (code, message) = result.expect("from_env blocked on a FIFO").unwrap_err();
    assert_eq!(code, ErrorCode::InvalidConfig, "{message}");
    assert!(message.contains("not a regular file"), "{message}");
}

#[test]
fn ipv6_proxy() {
    let emu = emulator();
    let proxy = ConnectProxy::start_on("[::1]:0", Some((USER, PASSWORD)), Mode::Tunnel);
    let mut config = config(&emu);
    let url = format!("http://{USER}:{PASSWORD}@[::1]:{}", proxy.addr.port());
    config.set_proxy(&url).unwrap();
    assert!(!format!("{config:?}").contains(PASSWORD));
    let (result, elapsed) = shadow_get(&config);
    row("through an IPv6 proxy", &result, elapsed);
    result.unwrap();
    assert_eq!(proxy.connects(), vec![emu.target()]);
    assert_eq!(proxy.tunnels(), 1);
}

/// A loopback endpoint (as curl's default NO_PROXY) never goes through a proxy: over
/// `http://` the proxy would see the request, the API credentials included, in clear text,
/// and it would resolve "localhost" on its own host.
#[test]
fn loopback_endpoints_never_go_through_the_proxy() {
    let proxy = ConnectProxy::start(None, Mode::Tunnel);
    let plain = Emulator::start(EmulatorOptions {
        tls: TlsMode::PlainHttp,
        ..EmulatorOptions::default()
    })
    .unwrap();
    plain.register_thing(THING);
    let port = plain.local_addr().port();
    for endpoint in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        let mut config = Config::new(&endpoint, plain.api_key(), plain.api_secret()).unwrap();
        config.set_proxy(&proxy.url(None)).unwrap();
        let (result, elapsed) = shadow_get(&config);
        row(&format!("loopback {endpoint}"), &result, elapsed);
        result.unwrap();
    }
    let named = emulator();
    let mut config = Config::new(
        &named.loopback_endpoint(),
        named.api_key(),
        named.api_secret(),
    )
    .unwrap();
    config.set_ca_pem(&named.ca.cert_pem).unwrap();
    config.set_proxy(&proxy.url(None)).unwrap();
    let (result, elapsed) = shadow_get(&config);
    row("loopback https://127.0.0.1", &result, elapsed);
    result.unwrap();
    assert_eq!(
        proxy.seen.lock().unwrap().request_lines,
        Vec::<String>::new(),
        "the proxy saw requests"
    );
    assert_eq!(plain.stats().total, 2);
    assert_eq!(named.stats().total, 1);
}
