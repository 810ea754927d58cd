//! Test clients for the emulator: ureq (trusting the generated CA) and a raw TLS socket.
#![allow(dead_code)]

use base64::Engine as _;
use fleets_emulator::{Emulator, EmulatorOptions};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

pub fn start() -> Emulator {
    Emulator::start(EmulatorOptions::default()).expect("emulator starts")
}

pub fn start_with(opts: EmulatorOptions) -> Emulator {
    Emulator::start(opts).expect("emulator starts")
}

pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// Asserts the status and a JSON error body with `code`; returns the body.
    pub fn err(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "body: {}", self.text);
        let v = self.json();
        assert_eq!(v["code"], Value::from(code), "body: {}", self.text);
        assert!(v["message"].is_string(), "body: {}", self.text);
        v
    }
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 200, "body: {}", self.text);
        self.json()
    }
}

pub struct Client {
    pub agent: ureq::Agent,
    pub base: String,
    pub auth: String,
    pub admin_auth: String,
}

pub fn basic(key: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{key}:{secret}"))
    )
}

pub fn agent_for(emu: &Emulator) -> ureq::Agent {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(pem) = emu.ca_pem() {
        let cert = ureq::tls::Certificate::from_pem(pem.as_bytes())
            .unwrap()
            .to_owned();
        tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(tls.build())
        .build()
        .new_agent()
}

fn finish(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
    let mut r = r.unwrap_or_else(|e| panic!("transport error: {e}"));
    let status = r.status().as_u16();
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let text = r.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        text,
    }
}

impl Client {
    pub fn new(emu: &Emulator) -> Self {
        Client {
            agent: agent_for(emu),
            base: emu.endpoint().to_owned(),
            auth: basic(emu.api_key(), emu.api_secret()),
            admin_auth: format!("Bearer {}", emu.admin_token()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST a raw body with the device credentials and Content-Type: application/json.
    pub fn post_raw(&self, path: &str, body: &str) -> Resp {
        finish(
            self.agent
                .post(self.url(path))
                .header("Authorization", &self.auth)
                .header("Content-Type", "application/json")
                .send(body),
        )
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.post_raw(path, &body.to_string())
    }

    /// POST with custom headers (no defaults).
    pub fn post_with(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut rb = self.agent.post(self.url(path));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        finish(rb.send(body))
    }

    pub fn get(&self, path: &str) -> Resp {
        finish(
            self.agent
                .get(self.url(path))
                .header("Authorization", &self.auth)
                .call(),
        )
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut rb = self.agent.get(self.url(path));
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        finish(rb.call())
    }

    pub fn shadow(&self, thing: &str) -> Value {
        self.get(&format!("/api/v1/thing-datas/{thing}/shadow"))
            .ok()
    }

    /// An admin request; `body` None sends no body.
    pub fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Resp {
        self.admin_as(&self.admin_auth, method, path, body)
    }

    pub fn admin_as(&self, auth: &str, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let url = self.url(path);
        let a = &self.agent;
        let body_s = body.map(Value::to_string);
        let r = match (method, body_s) {
            ("GET", _) => a.get(url).header("Authorization", auth).call(),
            ("DELETE", _) => a.delete(url).header("Authorization", auth).call(),
            ("POST", Some(b)) => a
                .post(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(b.as_str()),
            ("POST", None) => a.post(url).header("Authorization", auth).send_empty(),
            ("PUT", Some(b)) => a
                .put(url)
                .header("Authorization", auth)
                .header("Content-Type", "application/json")
                .send(b.as_str()),
            ("PUT", None) => a.put(url).header("Authorization", auth).send_empty(),
            ("PATCH", _) => a.patch(url).header("Authorization", auth).send_empty(),
            (m, _) => panic!("method {m}"),
        };
        finish(r)
    }
}

// ------------------------------------------------------------------ raw TLS client

pub fn tls_config(emu: &Emulator) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from_pem_slice(emu.ca_pem().unwrap().as_bytes())
        .unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// What a raw exchange observed.
#[derive(Debug)]
pub struct RawOutcome {
    /// Bytes received before the end.
    pub bytes: Vec<u8>,
    /// How the read ended: Ok = clean EOF, Err = the error kind.
    pub end: Result<(), std::io::ErrorKind>,
}

/// Sends one raw HTTP/1.1 request over TLS (or plain TCP when the emulator has no CA) and reads
/// until EOF, error or `read_timeout`. A failed write (or handshake) ends it with that error.
pub fn raw_exchange(emu: &Emulator, request: &[u8], read_timeout: Duration) -> RawOutcome {
    let tcp = TcpStream::connect(emu.local_addr()).unwrap();
    tcp.set_read_timeout(Some(read_timeout)).unwrap();
    let mut bytes = Vec::new();
    let end = if emu.ca_pem().is_some() {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let conn = rustls::ClientConnection::new(tls_config(emu), name).unwrap();
        let mut s = rustls::StreamOwned::new(conn, tcp);
        match s.write_all(request).and_then(|_| s.flush()) {
            Ok(()) => read_all(&mut s, &mut bytes),
            Err(e) => Err(e.kind()),
        }
    } else {
        let mut s = tcp;
        match s.write_all(request) {
            Ok(()) => read_all(&mut s, &mut bytes),
            Err(e) => Err(e.kind()),
        }
    };
    RawOutcome { bytes, end }
}

fn read_all(s: &mut impl Read, out: &mut Vec<u8>) -> Result<(), std::io::ErrorKind> {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.kind()),
        }
    }
}

/// A raw POST request with the default credentials.
pub fn raw_post(emu: &Emulator, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        basic(emu.api_key(), emu.api_secret()),
        body.len()
    )
    .into_bytes()
}

// ------------------------------------------------------------------ persistent raw connection

/// A client for the admin-only port.
pub fn admin_port_client(emu: &Emulator) -> Client {
    Client {
        base: emu.admin_endpoint().to_owned(),
        ..Client::new(emu)
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

trait Stream: Read + Write + Send {}
impl<T: Read + Write + Send> Stream for T {}

/// One keep-alive connection to the device port (TLS when the emulator has a CA), speaking
/// raw HTTP/1.1 so that tests see exactly what the server does to the connection.
pub struct Conn {
    s: Box<dyn Stream>,
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(emu: &Emulator) -> Conn {
        Self::open_with(emu, emu.ca_pem().map(|_| tls_config(emu)))
    }

    /// With a given client config (to share a TLS session cache), or plain TCP for `None`.
    pub fn open_with(emu: &Emulator, cfg: Option<Arc<rustls::ClientConfig>>) -> Conn {
        let tcp = TcpStream::connect(emu.local_addr()).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let s: Box<dyn Stream> = match cfg {
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let conn = rustls::ClientConnection::new(cfg, name).unwrap();
                Box::new(rustls::StreamOwned::new(conn, tcp.try_clone().unwrap()))
            }
            None => Box::new(tcp.try_clone().unwrap()),
        };
        Conn {
            s,
            tcp,
            buf: Vec::new(),
        }
    }

    pub fn set_read_timeout(&self, t: Duration) {
        self.tcp.set_read_timeout(Some(t)).unwrap();
    }

    pub fn send(&mut self, req: &[u8]) -> std::io::Result<()> {
        self.s.write_all(req)?;
        self.s.flush()
    }

    fn fill(&mut self) -> std::io::Result<()> {
        let mut b = [0u8; 16384];
        let n = self.s.read(&mut b)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&b[..n]);
        Ok(())
    }

    /// Reads one response (`head_only` for HEAD requests). A connection closed before any
    /// byte of it gives `UnexpectedEof`.
    pub fn read_response(&mut self, head_only: bool) -> std::io::Result<RawResponse> {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill()?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let len = if head_only { 0 } else { len };
        while self.buf.len() < len {
            self.fill()?;
        }
        let body = self.buf.drain(..len).collect();
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }

    /// Sends a request and reads its response.
    pub fn exchange(&mut self, req: &[u8]) -> std::io::Result<RawResponse> {
        self.send(req)?;
        self.read_response(req.starts_with(b"HEAD "))
    }

    /// Reads everything until the connection ends (bytes already buffered included): Ok on a
    /// clean EOF, else the error kind (a reset, a timeout, an EOF without TLS close_notify).
    pub fn read_to_end(&mut self) -> (Vec<u8>, Result<(), std::io::ErrorKind>) {
        let mut out = std::mem::take(&mut self.buf);
        let end = read_all(&mut self.s, &mut out);
        (out, end)
    }

    /// Waits for the server to close: Ok(()) on a clean EOF (FIN, or TLS close_notify),
    /// Err(kind) otherwise (reset, timeout, or unexpected bytes as InvalidData).
    pub fn wait_closed(&mut self, timeout: Duration) -> Result<(), std::io::ErrorKind> {
        self.set_read_timeout(timeout);
        let mut b = [0u8; 1024];
        match self.s.read(&mut b) {
            Ok(0) => Ok(()),
            Ok(_) => Err(std::io::ErrorKind::InvalidData),
            Err(e) => Err(e.kind()),
        }
    }
}

/// A keep-alive GET request with the default credentials.
pub fn raw_get(emu: &Emulator, path: &str, extra_headers: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: {}\r\n{extra_headers}\r\n",
        basic(emu.api_key(), emu.api_secret())
    )
    .into_bytes()
}

/// A keep-alive request without credentials: `METHOD path` plus extra header lines
/// (each ending in `\r\n`).
pub fn raw_request(method: &str, path: &str, extra_headers: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra_headers}\r\n").into_bytes()
}
