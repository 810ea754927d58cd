//! Small purpose-built servers for failure cases the emulator cannot produce: a test PKI
//! (CA, server and client certificates with chosen defects) and a blocking TLS or plain TCP
//! server whose every connection runs a scripted behaviour.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate with its key, as DER and PEM.
pub struct Issued {
    pub cert_der: CertificateDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
    key: KeyPair,
    params: CertificateParams,
}

impl Issued {
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der()).into()
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// A certificate authority for one test.
pub fn ca(name: &str) -> Issued {
    issue(None, &[], |params| {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.extended_key_usages.clear();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
    })
}

/// A leaf or intermediate certificate signed by `issuer` (self-signed when `None`), after
/// `adjust` has had its way with the parameters.
pub fn issue(
    issuer: Option<&Issued>,
    names: &[&str],
    adjust: impl FnOnce(&mut CertificateParams),
) -> Issued {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    adjust(&mut params);
    let cert = match issuer {
        Some(issuer) => params.signed_by(&key, &issuer.issuer()).unwrap(),
        None => params.self_signed(&key).unwrap(),
    };
    Issued {
        cert_pem: cert.pem(),
        cert_der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        key,
        params,
    }
}

/// A server certificate for 127.0.0.1 and localhost, signed by `ca`.
pub fn server_cert(ca: &Issued) -> Issued {
    issue(Some(ca), &["127.0.0.1", "localhost"], |_| {})
}

/// A rustls server configuration presenting `chain` (leaf first) with `key`.
pub fn tls_config(chain: &[&Issued], key: &Issued) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = chain.iter().map(|c| c.cert_der.clone()).collect();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key.key_der())
            .unwrap(),
    )
}

/// A rustls server configuration presenting `chain` (leaf first) with `key` that requires
/// every client to present a certificate issued by `client_ca`.
pub fn tls_config_requiring_client_cert(
    chain: &[&Issued],
    key: &Issued,
    client_ca: &Issued,
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.cert_der.clone()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let certs = chain.iter().map(|c| c.cert_der.clone()).collect();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs, key.key_der())
            .unwrap(),
    )
}

/// What a connection's behaviour can use: the stream and the server's counters.
pub struct Conn<'a> {
    pub stream: &'a mut dyn ReadWrite,
    pub requests: &'a AtomicUsize,
    tcp: &'a TcpStream,
}

pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl Conn<'_> {
    /// Makes the connection end with RST instead of FIN when the behaviour returns.
    pub fn abort_on_close(&self) {
        let _ = socket2::SockRef::from(self.tcp).set_linger(Some(Duration::ZERO));
    }

    /// Reads one request (head and Content-Length body); `None` at EOF or error. Counts it.
    pub fn read_request(&mut self) -> Option<String> {
        let mut data = Vec::new();
        let mut byte = [0u8; 1];
        while !data.ends_with(b"\r\n\r\n") {
            match self.stream.read(&mut byte) {
                Ok(1) => data.push(byte[0]),
                _ => return None,
            }
        }
        let head = String::from_utf8_lossy(&data).into_owned();
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        self.stream.read_exact(&mut body).ok()?;
        self.requests.fetch_add(1, Ordering::SeqCst);
        Some(head + &String::from_utf8_lossy(&body))
    }

    /// Writes raw bytes, ignoring errors (the client may be gone).
    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    /// Writes a complete JSON response.
    pub fn respond(&mut self, status: u16, extra_headers: &str, body: &str) {
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n",
            body.len()
        );
        self.send(head.as_bytes());
        self.send(body.as_bytes());
    }
}

/// A server on 127.0.0.1 that runs `behaviour` for every connection, each on its own thread.
pub struct RawServer {
    pub addr: SocketAddr,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<AtomicUsize>,
    /// Application bytes the behaviours read (after TLS decryption), over all connections.
    pub bytes_in: Arc<AtomicUsize>,
    /// Connections whose behaviour has returned (TLS handshake failures included).
    pub finished: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    /// Serves TLS with `config` when given, plain TCP otherwise.
    pub fn start(
        config: Option<Arc<rustls::ServerConfig>>,
        behaviour: impl Fn(&mut Conn) + Send + Sync + 'static,
    ) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let server = RawServer {
            addr: listener.local_addr().unwrap(),
            connections: Arc::default(),
            requests: Arc::default(),
            bytes_in: Arc::default(),
            finished: Arc::default(),
            stop: Arc::default(),
        };
        let (connections, requests, stop) = (
            server.connections.clone(),
            server.requests.clone(),
            server.stop.clone(),
        );
        let (bytes_in, finished) = (server.bytes_in.clone(), server.finished.clone());
        let behaviour = Arc::new(behaviour);
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(_) => {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let (behaviour, requests, config) =
                    (behaviour.clone(), requests.clone(), config.clone());
                let (bytes_in, finished) = (bytes_in.clone(), finished.clone());
                thread::spawn(move || {
                    serve(tcp, config, &*behaviour, &requests, &bytes_in);
                    finished.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        server
    }

    pub fn https_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Application bytes received so far (none when every TLS handshake failed).
    pub fn bytes_received(&self) -> usize {
        self.bytes_in.load(Ordering::SeqCst)
    }

    /// Waits until every accepted connection's behaviour has returned; false on timeout.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.finished.load(Ordering::SeqCst) >= self.connections() {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A stream that counts the bytes read through it.
struct Counted<'a, S> {
    inner: S,
    bytes: &'a AtomicUsize,
}

impl<S: Read> Read for Counted<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n, Ordering::SeqCst);
        Ok(n)
    }
}

impl<S: Write> Write for Counted<'_, S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn serve(
    tcp: TcpStream,
    config: Option<Arc<rustls::ServerConfig>>,
    behaviour: &(dyn Fn(&mut Conn) + Send + Sync),
    requests: &AtomicUsize,
    bytes_in: &AtomicUsize,
) {
    tcp.set_nonblocking(false).unwrap();
    let _ = tcp.set_nodelay(true);
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let Ok(raw) = tcp.try_clone() else { return };
    match config {
        Some(config) => {
            let Ok(connection) = rustls::ServerConnection::new(config) else {
                return;
            };
            let mut tls = Counted {
                inner: rustls::StreamOwned::new(connection, tcp),
                bytes: bytes_in,
            };
            behaviour(&mut Conn {
                stream: &mut tls,
                requests,
                tcp: &raw,
            });
        }
        None => {
            let mut tcp = Counted {
                inner: tcp,
                bytes: bytes_in,
            };
            behaviour(&mut Conn {
                stream: &mut tcp,
                requests,
                tcp: &raw,
            });
        }
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
