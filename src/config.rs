//! Client configuration: endpoint, credentials, trust anchors and time limits.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Uri;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey};
use ureq::Proxy;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::retry::RetryPolicy;

/// Connect timeout used when none is configured: covers DNS, TCP and the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request deadline used when none is configured: from the first byte sent to the last
/// byte of the response body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body kept in memory; a larger one fails with `BadResponse`.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// The most [`Config::set_max_response_bytes`] accepts: a response is held in memory whole.
pub const MAX_RESPONSE_BYTES_LIMIT: usize = 16 * 1024 * 1024;

/// Largest CA bundle, client certificate or client key file read (1 MiB).
pub const MAX_PEM_FILE_BYTES: usize = 1024 * 1024;

/// Which certificates a client trusts to identify the server.
#[derive(Clone)]
pub(crate) enum TrustAnchors {
    /// The Mozilla root program, bundled in the library (webpki-roots).
    BundledMozilla,
    /// Only these certificates: from a CA file, an in-memory PEM bundle or the OS store.
    Certificates {
        certs: Arc<Vec<Certificate<'static>>>,
        source: &'static str,
    },
}

/// A parsed `https://host[:port][/base]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `scheme://host[:port][/base]`, without a trailing slash; the port, when given, in
    /// canonical decimal.
    pub(crate) base: String,
    /// The host, as written (brackets kept for IPv6).
    host: String,
}

impl Endpoint {
    /// The host part, as written (brackets kept for IPv6).
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host is `localhost`, in 127.0.0.0/8 or `::1`: such an endpoint never goes
    /// through a proxy (as curl's default `NO_PROXY`).
    pub(crate) fn is_loopback(&self) -> bool {
        is_loopback(self.host())
    }

    pub(crate) fn parse(text: &str) -> Result<Endpoint> {
        // The text may hold credentials: only its redacted form goes into a message.
        let bad = |why: &str| {
            Error::invalid_config(format!("endpoint {:?} {why}", redact_userinfo(text)))
        };
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("must be printable ASCII without spaces"));
        }
        // '@' has no business anywhere in an endpoint; wherever it is, it most likely ends
        // credentials that a URL parser would place in the authority or the path.
        if text.contains('@') {
            return Err(bad(
                "must not carry credentials; pass the API key and secret separately",
            ));
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| bad("is not a URL (expected https://host[:port][/base])"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| bad("has no scheme (expected https://)"))?;
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if uri.query().is_some() || text.contains('#') {
            return Err(bad("must not have a query or fragment"));
        }
        let parts = HostPort::parse(authority.as_str()).map_err(bad)?;
        match scheme {
            "https" => {}
            "http" if is_loopback(parts.host) => {}
            "http" => {
                return Err(bad(
                    "uses http://, which is allowed only for loopback hosts; use https://",
                ))
            }
            _ => return Err(bad("must use https://")),
        }
        let path = uri.path().trim_end_matches('/');
        Ok(Endpoint {
            base: format!("{scheme}://{}{path}", parts.canonical()),
            host: parts.host.to_owned(),
        })
    }
}

/// The host and port of a URL authority without userinfo, checked strictly: the `http`
/// crate's `Uri` accepts any port text (and then reads a bad one as "no port").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostPort<'a> {
    /// A DNS name or IPv4 address, or an IPv6 address in brackets.
    host: &'a str,
    port: Option<u16>,
}

impl<'a> HostPort<'a> {
    /// `host[:port]` where host is `[A-Za-z0-9._-]+` or a bracketed IPv6 address (no zone),
    /// and port is 1 to 5 decimal digits with a value of 1 to 65535.
    fn parse(text: &'a str) -> std::result::Result<HostPort<'a>, &'static str> {
        let (host, port) = if let Some(bracketed) = text.strip_prefix('[') {
            let (address, rest) = bracketed
                .split_once(']')
                .ok_or("has an IPv6 address without its closing ']'")?;
            if address.contains('%') {
                return Err("has an IPv6 zone id, which is not supported");
            }
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err("has a bracketed host that is not an IPv6 address");
            }
            let port = match rest {
                "" => None,
                _ => Some(
                    rest.strip_prefix(':')
                        .ok_or("has something other than :port after the IPv6 address")?,
                ),
            };
            (&text[..address.len() + 2], port)
        } else {
            match text.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            }
        };
        let name_ok = host.starts_with('[')
            || (!host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
        if !name_ok {
            return Err(if host.is_empty() {
                "has no host"
            } else {
                "has a host that is not a DNS name, IPv4 address or [IPv6 address]"
            });
        }
        let port = port.map(parse_port).transpose()?;
        Ok(HostPort { host, port })
    }

    /// `host[:port]`, the port in canonical decimal.
    fn canonical(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.to_owned(),
        }
    }
}

/// A port: 1 to 5 decimal digits, 1 to 65535. Anything else is an error rather than the
/// scheme's default port.
fn parse_port(text: &str) -> std::result::Result<u16, &'static str> {
    const WHY: &str = "has a port that is not a decimal number from 1 to 65535";
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WHY);
    }
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(WHY),
    }
}

/// `text` as it may appear in a message: when it holds an `@` (or a percent-encoded `%40`)
/// anywhere, everything between the scheme and the last one is replaced by `***`, whether
/// or not the text parses as a URL. Credentials only ever precede such an `@`.
pub(crate) fn redact_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    let after_at = text.rfind('@').map(|i| i + 1);
    let after_encoded_at = text
        .as_bytes()
        .windows(3)
        .rposition(|w| w.eq_ignore_ascii_case(b"%40"))
        .map(|i| i + 3);
    let Some(cut) = after_at.max(after_encoded_at) else {
        return text.into();
    };
    let scheme_end = text
        .find("://")
        .filter(|&i| {
            i > 0
                && i + 3 <= cut
                && text[..i]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        })
        .map_or(0, |i| i + 3);
    format!("{}***@{}", &text[..scheme_end], &text[cut..]).into()
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Everything a [`Client`](crate::Client) needs; read once by `Client::new`.
///
/// The API secret is zeroed when the configuration is dropped and never shown by `Debug`.
#[derive(Clone)]
pub struct Config {
    pub(crate) endpoint: Endpoint,
    pub(crate) api_key: String,
    pub(crate) api_secret: Zeroizing<String>,
    pub(crate) trust: TrustAnchors,
    pub(crate) connect_timeout: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) max_response_bytes: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) client_cert: Option<ClientCert>,
    pub(crate) proxy: Option<Proxy>,
}

impl Config {
    /// A configuration for `endpoint` (`https://host[:port][/base]`; `http://` only for
    /// loopback hosts) with a Deployment API key and secret. Trusts the bundled Mozilla roots
    /// (in a build without the cargo feature `bundled-roots`, no roots: [`Client::new`] then
    /// fails with `InvalidConfig` until a CA file, CA PEM or the system roots are set).
    ///
    /// [`Client::new`]: crate::Client::new
    ///
    /// Fails with `InvalidConfig` when the endpoint carries credentials (`user:pw@`), a query
    /// or fragment, a host that is not a DNS name, IPv4 address or bracketed IPv6 address, or
    /// a port that is not a decimal number from 1 to 65535. Error messages never show anything
    /// before an `@` of the endpoint.
    pub fn new(endpoint: &str, api_key: &str, api_secret: &str) -> Result<Config> {
        let endpoint = Endpoint::parse(endpoint)?;
        if api_key.is_empty() || api_key.contains(':') || api_key.chars().any(char::is_control) {
            return Err(Error::invalid_config(
                "api_key must be non-empty, without ':' or control characters",
            ));
        }
        if api_secret.is_empty() || api_secret.chars().any(char::is_control) {
            return Err(Error::invalid_config(
                "api_secret must be non-empty, without control characters",
            ));
        }
        Ok(Config {
            endpoint,
            api_key: api_key.to_owned(),
            api_secret: Zeroizing::new(api_secret.to_owned()),
            trust: TrustAnchors::BundledMozilla,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            retry: RetryPolicy::default(),
            client_cert: None,
            proxy: None,
        })
    }

    /// A configuration from `FLEETS_ENDPOINT`, `FLEETS_API_KEY`, `FLEETS_API_SECRET` and,
    /// when set, `FLEETS_CA_FILE`; a proxy from `HTTPS_PROXY` (lower case accepted) unless
    /// `NO_PROXY` names the endpoint's host. A loopback endpoint never uses a proxy.
    pub fn from_env() -> Result<Config> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                Error::invalid_config(format!(
                    "environment variable {name} is not set or not UTF-8"
                ))
            })
        };
        let secret = Zeroizing::new(var("FLEETS_API_SECRET")?);
        let mut config = Config::new(&var("FLEETS_ENDPOINT")?, &var("FLEETS_API_KEY")?, &secret)?;
        if let Some(ca_file) = std::env::var_os("FLEETS_CA_FILE").filter(|v| !v.is_empty()) {
            config.set_ca_file(Path::new(&ca_file))?;
        }
        config.proxy = proxy_from_env(&config.endpoint)?;
        Ok(config)
    }

    /// Trusts only the certificates in the PEM bundle at `path` instead of the bundled roots.
    ///
    /// Fails with `InvalidConfig` when the file cannot be read, is not a regular file (a FIFO
    /// or device is refused without blocking), is larger than [`MAX_PEM_FILE_BYTES`] (1 MiB),
    /// or holds no usable certificate.
    pub fn set_ca_file(&mut self, path: &Path) -> Result<()> {
        let pem = read_pem_file("CA file", path)?;
        let certs = parse_ca_pem(&pem)
            .map_err(|why| Error::invalid_config(format!("CA file {}: {why}", path.display())))?;
        self.trust = TrustAnchors::Certificates {
            certs: Arc::new(certs),
            source: "a CA file",
        };
        Ok(())
    }

    /// Trusts only the certificates of an in-memory PEM bundle. Fails with `InvalidConfig`
    /// when it holds no usable certificate.
    pub fn set_ca_pem(&mut self, pem: &str) -> Result<()> {
        let certs = parse_ca_pem(pem.as_bytes())
            .map_err(|why| Error::invalid_config(format!("CA PEM: {why}")))?;
        self.trust = TrustAnchors::Certificates {
            certs: Arc::new(certs),
            source: "an in-memory PEM bundle",
        };
        Ok(())
    }

    /// Trusts the operating system's certificate store (for networks that inspect TLS with
    /// their own CA). Fails with `InvalidConfig` when the store has no usable certificate.
    pub fn use_system_roots(&mut self) -> Result<()> {
        let found = rustls_native_certs::load_native_certs();
        let certs: Vec<Certificate<'static>> = found
            .certs
            .iter()
            .map(|der| Certificate::from_der(der.as_ref()).to_owned())
            .collect();
        if certs.is_empty() {
            let why = found
                .errors
                .first()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no certificates found".to_owned());
            return Err(Error::invalid_config(format!(
                "system certificate store unusable: {why}"
            )));
        }
        self.trust = TrustAnchors::Certificates {
            certs: Arc::new(certs),
            source: "the system store",
        };
        Ok(())
    }

    /// Presents a client certificate (mutual TLS): a PEM certificate chain and its PEM private
    /// key. Fails with `InvalidConfig` when either cannot be read or parsed, is not a regular
    /// file or is larger than [`MAX_PEM_FILE_BYTES`] (1 MiB), or when the key does not belong
    /// to the certificate.
    pub fn set_client_cert(&mut self, cert_pem_path: &Path, key_pem_path: &Path) -> Result<()> {
        let cert_pem = read_pem_file("client certificate", cert_pem_path)?;
        let key_pem = read_pem_file("client key", key_pem_path)?;
        let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&cert_pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if chain.is_empty() {
            return Err(Error::invalid_config(format!(
                "client certificate file {} holds no PEM certificate",
                cert_pem_path.display()
            )));
        }
        let key = PrivateKey::from_pem(&key_pem).map_err(|_| {
            Error::invalid_config(format!(
                "client key file {} holds no usable PEM private key",
                key_pem_path.display()
            ))
        })?;
        check_key_matches(&chain[0], &key)?;
        self.client_cert = Some(ClientCert::new_with_certs(&chain, key));
        Ok(())
    }

    /// Sends every request through an HTTP CONNECT proxy, `http://[user:password@]host:port`
    /// (port 80 when omitted; user and password percent-encoded). TLS still runs end to end
    /// with the server.
    ///
    /// Fails with `InvalidConfig` for another scheme, a path, query or fragment, a host that
    /// is not a DNS name, IPv4 address or bracketed IPv6 address, or a port that is not a
    /// decimal number from 1 to 65535. Error messages show the URL with its user and password
    /// replaced by `***`.
    pub fn set_proxy(&mut self, url: &str) -> Result<()> {
        self.proxy = Some(parse_proxy(url)?);
        Ok(())
    }

    /// Retries transient failures of requests that are safe to repeat; see
    /// [`RetryPolicy`]. `max_attempts` 1 disables retries; 0 keeps the default.
    pub fn set_retry(
        &mut self,
        max_attempts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
    ) -> Result<()> {
        self.retry = RetryPolicy::new(max_attempts, initial_backoff, max_backoff)?;
        Ok(())
    }

    /// Largest response body kept in memory (default 1 MiB, at most
    /// [`MAX_RESPONSE_BYTES_LIMIT`]); a larger one fails with `BadResponse`. 0 keeps the
    /// default. Over the maximum: `InvalidConfig`, and the limit is unchanged.
    pub fn set_max_response_bytes(&mut self, limit: usize) -> Result<()> {
        if limit > MAX_RESPONSE_BYTES_LIMIT {
            return Err(Error::invalid_config(format!(
                "max_response_bytes must be at most {MAX_RESPONSE_BYTES_LIMIT} (16 MiB)"
            )));
        }
        self.max_response_bytes = if limit == 0 {
            DEFAULT_MAX_RESPONSE_BYTES
        } else {
            limit
        };
        Ok(())
    }

    /// Sets the connect timeout and the whole-request deadline. `Duration::ZERO` keeps the
    /// default for that limit.
    pub fn set_timeouts(&mut self, connect: Duration, request: Duration) {
        self.connect_timeout = non_zero_or(connect, DEFAULT_CONNECT_TIMEOUT);
        self.request_timeout = non_zero_or(request, DEFAULT_REQUEST_TIMEOUT);
    }

    /// The connect timeout in force.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The whole-request deadline in force.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The endpoint base URL, without a trailing slash.
    pub fn endpoint(&self) -> &str {
        &self.endpoint.base
    }

    /// The API key (not secret).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }
}

/// Checks an `http://[user:password@]host[:port][/]` proxy URL as strictly as an endpoint
/// (port 80 when none is given) and builds the proxy from its canonical form.
fn parse_proxy(url: &str) -> Result<Proxy> {
    // The URL may carry a password: only its redacted form goes into a message.
    let bad =
        |why: &str| Error::invalid_config(format!("proxy URL {:?} {why}", redact_userinfo(url)));
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("must be printable ASCII without spaces"));
    }
    if !url.starts_with("http://") {
        return Err(bad(
            "must be http://[user:password@]host:port (an HTTP CONNECT proxy)",
        ));
    }
    let uri: Uri = url
        .parse()
        .map_err(|_| bad("is not a URL (expected http://[user:password@]host:port)"))?;
    let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() || url.contains('#') {
        return Err(bad("must not have a path, query or fragment"));
    }
    let (userinfo, host_port) = match authority.as_str().rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority.as_str()),
    };
    let parts = HostPort::parse(host_port).map_err(bad)?;
    const BAD_USERINFO: &str =
        "has a user or password that is not percent-encoded UTF-8 (use %40 for '@')";
    if userinfo.is_some_and(|u| !well_percent_encoded(u)) {
        return Err(bad(BAD_USERINFO));
    }
    // Built in one zeroed buffer: it holds the password.
    let mut canonical = Zeroizing::new(String::with_capacity(url.len() + 6));
    canonical.push_str("http://");
    if let Some(userinfo) = userinfo {
        canonical.push_str(userinfo);
        canonical.push('@');
    }
    canonical.push_str(&format!("{}:{}", parts.host, parts.port.unwrap_or(80)));
    Proxy::new(&canonical).map_err(|_| bad(BAD_USERINFO))
}

/// True when every `%` starts a `%XX` escape (ureq would keep a bad one literally).
fn well_percent_encoded(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().all(|(i, &b)| {
        b != b'%'
            || bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    })
}

/// The proxy the environment asks for, honouring `NO_PROXY` for the endpoint's host.
fn proxy_from_env(endpoint: &Endpoint) -> Result<Option<Proxy>> {
    let var = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    // A loopback endpoint (the only kind that may be http://) never goes through a proxy.
    if endpoint.is_loopback() {
        return Ok(None);
    }
    let Some(url) = var(["HTTPS_PROXY", "https_proxy"]) else {
        return Ok(None);
    };
    let no_proxy = var(["NO_PROXY", "no_proxy"]).unwrap_or_default();
    if no_proxy_matches(&no_proxy, endpoint.host()) {
        return Ok(None);
    }
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    parse_proxy(&url).map(Some)
}

/// curl's reading of `NO_PROXY`: comma-separated hosts, each matching itself and its
/// subdomains (a leading `.` or `*.` is ignored); `*` matches every host.
fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    no_proxy
        .split([',', ' '])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            let entry = entry.trim_start_matches('[').trim_end_matches(']');
            host.eq_ignore_ascii_case(entry)
                || (host.len() > entry.len()
                    && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry)
                    && host.as_bytes()[host.len() - entry.len() - 1] == b'.')
        })
}

/// Refuses a client key that does not belong to the certificate, at configuration time
/// rather than as a puzzling handshake failure later.
fn check_key_matches(cert: &Certificate<'static>, key: &PrivateKey<'static>) -> Result<()> {
    let provider = rustls::crypto::ring::default_provider();
    let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.der().to_vec())
        .map_err(|_| Error::invalid_config("client key is not a supported private key"))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| Error::invalid_config(format!("client key is not usable: {e}")))?;
    let certified = rustls::sign::CertifiedKey::new(
        vec![rustls_pki_types::CertificateDer::from(cert.der().to_vec())],
        signing_key,
    );
    certified.keys_match().map_err(|e| {
        Error::invalid_config(format!(
            "client key does not match the client certificate: {e}"
        ))
    })
}

/// Reads a PEM file of at most [`MAX_PEM_FILE_BYTES`], and only a regular file: a FIFO,
/// device or directory is refused without blocking, a larger file without reading it whole.
/// The bytes are zeroed when dropped (a client key is secret).
fn read_pem_file(what: &str, path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let fail = |why: String| {
        Error::invalid_config(format!("cannot read {what} {}: {why}", path.display()))
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Opening a FIFO for reading blocks until a writer appears; O_NONBLOCK does not.
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(|e| fail(e.to_string()))?;
    // The metadata of the opened file, not of the path, which may since name another file.
    let metadata = file.metadata().map_err(|e| fail(e.to_string()))?;
    if !metadata.is_file() {
        return Err(fail("not a regular file".to_owned()));
    }
    let too_big = || {
        fail(format!(
            "larger than the {} MiB limit",
            MAX_PEM_FILE_BYTES >> 20
        ))
    };
    if metadata.len() > MAX_PEM_FILE_BYTES as u64 {
        return Err(too_big());
    }
    let mut bytes = Zeroizing::new(Vec::with_capacity(metadata.len() as usize));
    // One byte past the cap tells a file that grew since the check.
    file.take(MAX_PEM_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() > MAX_PEM_FILE_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

fn non_zero_or(value: Duration, default: Duration) -> Duration {
    if value.is_zero() {
        default
    } else {
        value
    }
}

/// Parses a PEM bundle into certificates that can act as trust anchors; an error when none
/// can.
fn parse_ca_pem(pem: &[u8]) -> std::result::Result<Vec<Certificate<'static>>, String> {
    let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(cert)) => Some(cert),
            _ => None,
        })
        .collect();
    let mut store = rustls::RootCertStore::empty();
    let (usable, _) = store.add_parsable_certificates(
        certs
            .iter()
            .map(|c| rustls_pki_types::CertificateDer::from(c.der())),
    );
    if usable == 0 {
        return Err(format!(
            "no usable certificate (found {} PEM certificate block(s), none parsable as a trust anchor)",
            certs.len()
        ));
    }
    Ok(certs)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            // Never holds userinfo: Endpoint::parse refuses it.
            .field("endpoint", &self.endpoint.base)
            .field("api_key", &self.api_key)
            .field("api_secret", &"<redacted>")
            .field(
                "trust",
                &match &self.trust {
                    TrustAnchors::BundledMozilla => "bundled Mozilla roots".to_owned(),
                    TrustAnchors::Certificates { certs, source } => {
                        format!("{} certificate(s) from {source}", certs.len())
                    }
                },
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("retry", &self.retry)
            .field("client_cert", &self.client_cert.is_some())
            .field(
                "proxy",
                &self
                    .proxy
                    .as_ref()
                    .map(|p| format!("{}:{}", p.host(), p.port())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn endpoints() {
        for (text, base) in [
            ("https://fleets.example.com", "https://fleets.example.com"),
            ("https://fleets.example.com/", "https://fleets.example.com"),
            ("https://h:8443/base/", "https://h:8443/base"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost", "http://localhost"),
            ("http://[::1]:9", "http://[::1]:9"),
        ] {
            assert_eq!(Endpoint::parse(text).unwrap().base, base, "{text}");
        }
        for bad in [
            "",
            "fleets.example.com",
            "http://fleets.example.com",
            "http://10.0.0.1",
            "ftp://h",
            "https://user:pw@h",
            "https://h/?q=1",
            "https://h/#f",
            "https://",
            "https://h/caf\u{e9}",
            "https://h/a b",
            "http://[::1]08:0/8x",
            "http://[::1]:",
        ] {
            assert_eq!(
                Endpoint::parse(bad).unwrap_err().code(),
                ErrorCode::InvalidConfig,
                "{bad}"
            );
        }
    }

    #[test]
    fn debug_redacts_secret() {
        let c = Config::new("https://h", "ak_key", "s3cr3t-value").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("ak_key"));
    }

    #[test]
    fn credentials_checked() {
        assert!(Config::new("https://h", "", "s").is_err());
        assert!(Config::new("https://h", "a:b", "s").is_err());
        assert!(Config::new("https://h", "a", "").is_err());
    }

    #[test]
    fn endpoint_hosts() {
        for (text, host) in [
            ("https://h.example:8443/base", "h.example"),
            ("https://h.example", "h.example"),
            ("http://[::1]:9", "[::1]"),
            ("http://127.0.0.1", "127.0.0.1"),
        ] {
            assert_eq!(Endpoint::parse(text).unwrap().host(), host, "{text}");
        }
    }

    #[test]
    fn no_proxy_rules() {
        assert!(no_proxy_matches("*", "fleets.example.com"));
        assert!(no_proxy_matches("example.com", "fleets.example.com"));
        assert!(no_proxy_matches("a.b, .example.com", "fleets.example.com"));
        assert!(no_proxy_matches("*.example.com", "fleets.example.com"));
        assert!(no_proxy_matches("fleets.example.com", "FLEETS.example.com"));
        assert!(no_proxy_matches("127.0.0.1,localhost", "127.0.0.1"));
        assert!(no_proxy_matches("::1", "[::1]"));
        assert!(!no_proxy_matches("", "fleets.example.com"));
        assert!(!no_proxy_matches("ample.com", "fleets.example.com"));
        assert!(!no_proxy_matches("other.com", "fleets.example.com"));
    }

    #[test]
    fn proxy_urls_checked_without_echoing_passwords() {
        let mut c = Config::new("https://h", "k", "s").unwrap();
        assert!(c.set_proxy("http://user:pw@proxy.local:3128").is_ok());
        let err = c.set_proxy("socks5://user:hunter2@proxy:1080").unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(!err.message().contains("hunter2"));
        assert!(!format!("{c:?}").contains("pw@"));
    }

    /// Every form of userinfo a caller may put in an endpoint, well-formed or not; "s3cr" is
    /// the secret part that must never appear in a message.
    const ENDPOINTS_WITH_USERINFO: [&str; 17] = [
        "https://key:s3cret@h",
        "https://key:s3cret@h:99999",
        "https://key:s3cret@h:443",
        "https://key:s3cret@",
        "https://key:s3cret@@h",
        "https://key:s3cr/et@h",
        "https://key:s3cr?et@h",
        "https://key:s3cr#et@h",
        "https://key:s3cret%40h",
        "https://key%3As3cret%40h",
        "key:s3cret@h",
        "ftp://key:s3cret@h",
        "http://key:s3cret@10.0.0.1",
        "https://key:s3 cret@h",
        "https://key:s3cret@h/caf\u{e9}",
        "https://[key:s3cret@h",
        "https://key:s3cret@[::1",
    ];

    #[test]
    fn endpoint_errors_never_show_userinfo() {
        for text in ENDPOINTS_WITH_USERINFO {
            let err = Config::new(text, "k", "s").unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{text}");
            for shown in [
                err.message().to_owned(),
                err.to_string(),
                format!("{err:?}"),
            ] {
                assert!(!shown.contains("s3cr"), "{text:?} shown as {shown}");
            }
        }
    }

    #[test]
    fn proxy_errors_never_show_userinfo() {
        let mut c = Config::new("https://h", "k", "s").unwrap();
        for text in ENDPOINTS_WITH_USERINFO
            .iter()
            .map(|e| e.replacen("https://", "http://", 1))
            .chain([
                "http://u:s3cret@proxy:99999".to_owned(),
                "http://u:s3cret@proxy:0x50".to_owned(),
                "http://u:s3cret@[::1]:-1".to_owned(),
                "http://u:s3cret@[::1]x".to_owned(),
                "http://u:s3cret@proxy:3128/path".to_owned(),
                "http://u:s3cr%ZZet@proxy:3128".to_owned(),
                "http://u:s3cr%FFet@proxy:3128".to_owned(),
            ])
        {
            // These are valid proxy URLs (an unencoded '@' ends up in the password).
            let valid = [
                "http://key:s3cret@h",
                "http://key:s3cret@h:443",
                "http://key:s3cret@@h",
                "http://key:s3cret@10.0.0.1",
            ];
            let result = c.set_proxy(&text);
            assert_eq!(result.is_ok(), valid.contains(&text.as_str()), "{text}");
            let Err(err) = result else { continue };
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{text}");
            for shown in [
                err.message().to_owned(),
                err.to_string(),
                format!("{err:?}"),
            ] {
                assert!(!shown.contains("s3cr"), "{text:?} shown as {shown}");
            }
        }
        c.set_proxy("http://user:s3cret@proxy.local:3128").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("proxy.local:3128"), "{shown}");
    }

    #[test]
    fn debug_shows_no_userinfo() {
        let c = Config::new("https://h.example:8443/base", "k", "s3cret-value").unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains('@') && !shown.contains("s3cr"), "{shown}");
    }

    #[test]
    fn endpoint_ports_must_be_1_to_65535_decimal() {
        for port in [
            "99999", "65616", "65536", "0x50", "-1", "notaport", "0", "00000", "+80", "8O", "1e3",
            "443443", "80 ", "%38%30",
        ] {
            for host in ["h.example", "127.0.0.1", "[::1]"] {
                let text = format!("https://{host}:{port}/base");
                let err = Endpoint::parse(&text).unwrap_err();
                assert_eq!(err.code(), ErrorCode::InvalidConfig, "{text}");
            }
        }
        for (text, base) in [
            ("https://h:1", "https://h:1"),
            ("https://h:65535/b", "https://h:65535/b"),
            ("https://h:0443", "https://h:443"),
            ("http://[::1]:8080/", "http://[::1]:8080"),
            (
                "https://[::ffff:10.0.0.1]:8443",
                "https://[::ffff:10.0.0.1]:8443",
            ),
            ("https://[2001:db8::1]", "https://[2001:db8::1]"),
        ] {
            assert_eq!(Endpoint::parse(text).unwrap().base, base, "{text}");
        }
    }

    #[test]
    fn endpoint_hosts_are_checked() {
        for text in [
            "https://:443",
            "https://h:",
            "https://[::1]x",
            "https://[::1]:",
            "https://[::1]::80",
            "https://[not-v6]",
            "https://[fe80::1%25eth0]",
            "https://[]",
            "https://x[::1]",
            "https://h!x",
            "https://h,x",
            "https://h;x=1",
            "https://h$x",
            "https://h*x",
            "https://1:2:3",
            "https://h/a@b",
        ] {
            let err = Endpoint::parse(text).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{text}");
        }
    }

    #[test]
    fn proxy_ports_and_hosts_are_strict() {
        let mut c = Config::new("https://h", "k", "s").unwrap();
        for url in [
            "http://proxy:99999",
            "http://proxy:65616",
            "http://proxy:0x50",
            "http://proxy:-1",
            "http://proxy:notaport",
            "http://proxy:0",
            "http://proxy:",
            "http://u:p@proxy:99999",
            "http://[::1]:99999",
            "http://[::1]:0x50",
            "http://[::1]x",
            "http://[::1",
            "http://[fe80::1%25eth0]:3128",
            "http://::1:3128",
            "http://proxy:3128/path",
            "http://proxy:3128?x=1",
            "http://proxy:3128#f",
            "http://:3128",
            "http://u:p@:3128",
        ] {
            let err = c.set_proxy(url).unwrap_err();
            assert_eq!(err.code(), ErrorCode::InvalidConfig, "{url}");
        }
        for (url, host, port) in [
            ("http://proxy:3128", "proxy", 3128),
            ("http://proxy:3128/", "proxy", 3128),
            ("http://proxy", "proxy", 80),
            ("http://u:p@10.1.2.3:8080", "10.1.2.3", 8080),
            ("http://[::1]:3128", "[::1]", 3128),
            (
                "http://u:p%40ss@[2001:db8::2]:65535",
                "[2001:db8::2]",
                65535,
            ),
        ] {
            c.set_proxy(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            let proxy = c.proxy.as_ref().unwrap();
            assert_eq!((proxy.host(), proxy.port()), (host, port), "{url}");
        }
        c.set_proxy("http://us%20er:p%40ss@proxy:3128").unwrap();
        let proxy = c.proxy.as_ref().unwrap();
        assert_eq!(
            (proxy.username(), proxy.password()),
            (Some("us er"), Some("p@ss"))
        );
    }

    /// A temporary directory removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "fleets-config-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs `f` on another thread; None when it does not finish within 5 s (it is left
    /// blocked: the test fails anyway).
    fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    /// A self-signed certificate and its key, in PEM.
    fn self_signed() -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["h.example".to_owned()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    #[cfg(unix)]
    fn pem_files_that_are_fifos_do_not_block() {
        let dir = TempDir::new("fifo");
        let fifo = dir.0.join("ca.pem");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (cert, key) = self_signed();
        let cert_file = dir.0.join("cert.pem");
        let key_file = dir.0.join("key.pem");
        std::fs::write(&cert_file, &cert).unwrap();
        std::fs::write(&key_file, &key).unwrap();
        for name in [
            "set_ca_file",
            "set_client_cert(cert fifo)",
            "set_client_cert(key fifo)",
        ] {
            let (fifo, cert_file, key_file) = (fifo.clone(), cert_file.clone(), key_file.clone());
            let result = within_5s(move || {
                let mut c = Config::new("https://h", "k", "s").unwrap();
                let result = match name {
                    "set_ca_file" => c.set_ca_file(&fifo),
                    "set_client_cert(cert fifo)" => c.set_client_cert(&fifo, &key_file),
                    _ => c.set_client_cert(&cert_file, &fifo),
                };
                result.map_err(|e| (e.code(), e.message().to_owned()))
            });
            let Some(result) = result else {
                panic!("{name} blocked on a FIFO");
            };
            let (code, message) = result.unwrap_err();
            assert_eq!(code, ErrorCode::InvalidConfig, "{name}: {message}");
            assert!(message.contains("not a regular file"), "{name}: {message}");
        }
    }

    #[test]
    fn pem_files_over_the_cap_are_not_read() {
        let dir = TempDir::new("big");
        let (cert, key) = self_signed();
        // 300 MB, sparse: costs no disk, but reading it whole would cost the memory.
        let big = dir.0.join("big.pem");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(300_000_000).unwrap();
        drop(file);
        // One byte over the cap, starting with a valid certificate.
        let over = dir.0.join("over.pem");
        let mut text = cert.clone().into_bytes();
        text.resize(MAX_PEM_FILE_BYTES + 1, b'\n');
        std::fs::write(&over, &text).unwrap();
        // Exactly at the cap: accepted.
        let at_cap = dir.0.join("at_cap.pem");
        text.truncate(MAX_PEM_FILE_BYTES);
        std::fs::write(&at_cap, &text).unwrap();
        let key_file = dir.0.join("key.pem");
        std::fs::write(&key_file, &key).unwrap();
        let cert_file = dir.0.join("cert.pem");
        std::fs::write(&cert_file, &cert).unwrap();

        let mut c = Config::new("https://h", "k", "s").unwrap();
        for path in [&big, &over] {
            let started = std::time::Instant::now();
            for result in [
                c.set_ca_file(path),
                c.set_client_cert(path, &key_file),
                c.set_client_cert(&cert_file, path),
            ] {
                let err = result.unwrap_err();
                assert_eq!(err.code(), ErrorCode::InvalidConfig);
                assert!(err.message().contains("1 MiB"), "{}", err.message());
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{path:?} read whole?"
            );
        }
        c.set_ca_file(&at_cap).unwrap();
        c.set_client_cert(&at_cap, &key_file).unwrap();
    }

    #[test]
    fn pem_paths_that_are_directories_are_refused() {
        let dir = TempDir::new("dir");
        let mut c = Config::new("https://h", "k", "s").unwrap();
        let err = c.set_ca_file(&dir.0).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(
            err.message().contains("not a regular file"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn ca_pem_without_certificates_is_refused() {
        assert!(parse_ca_pem(b"").is_err());
        assert!(parse_ca_pem(b"not a pem").is_err());
        assert!(
            parse_ca_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
