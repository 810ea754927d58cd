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
    /// `scheme://authority[/base]`, without a trailing slash.
    pub(crate) base: String,
}

impl Endpoint {
    /// The host part, as written (brackets kept for IPv6).
    pub(crate) fn host(&self) -> &str {
        let after_scheme = self.base.split_once("://").map_or("", |(_, rest)| rest);
        let authority = after_scheme.split('/').next().unwrap_or("");
        match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => &authority[..i],
            _ => authority,
        }
    }

    /// Whether the host is `localhost`, in 127.0.0.0/8 or `::1`: such an endpoint never goes
    /// through a proxy (as curl's default `NO_PROXY`).
    pub(crate) fn is_loopback(&self) -> bool {
        is_loopback(self.host())
    }

    pub(crate) fn parse(text: &str) -> Result<Endpoint> {
        let bad = |why: &str| Error::invalid_config(format!("endpoint {text:?} {why}"));
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad("must be printable ASCII without spaces"));
        }
        let uri: Uri = text
            .parse()
            .map_err(|_| bad("is not a URL (expected https://host[:port][/base])"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| bad("has no scheme (expected https://)"))?;
        let authority = uri.authority().ok_or_else(|| bad("has no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "must not carry credentials; pass the API key and secret separately",
            ));
        }
        if uri.query().is_some() || text.contains('#') {
            return Err(bad("must not have a query or fragment"));
        }
        let host = authority.host();
        if let Some(after_bracket) = authority.as_str().split_once(']').map(|(_, rest)| rest) {
            let port_ok = after_bracket.is_empty()
                || after_bracket
                    .strip_prefix(':')
                    .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
            if !port_ok {
                return Err(bad("has something other than :port after the IPv6 address"));
            }
        }
        match scheme {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(bad(
                    "uses http://, which is allowed only for loopback hosts; use https://",
                ))
            }
            _ => return Err(bad("must use https://")),
        }
        let path = uri.path().trim_end_matches('/');
        Ok(Endpoint {
            base: format!("{scheme}://{authority}{path}"),
        })
    }
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
    /// loopback hosts) with a Deployment API key and secret. Trusts the bundled Mozilla roots.
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
    /// when set, `FLEETS_CA_FILE`; a proxy from `HTTPS_PROXY` (`HTTP_PROXY` for an `http://`
    /// loopback endpoint), lower case accepted, unless `NO_PROXY` names the endpoint's host.
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
    /// Fails with `InvalidConfig` when the file cannot be read or holds no usable certificate.
    pub fn set_ca_file(&mut self, path: &Path) -> Result<()> {
        let pem = std::fs::read(path).map_err(|e| {
            Error::invalid_config(format!("cannot read CA file {}: {e}", path.display()))
        })?;
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
    /// key. Fails with `InvalidConfig` when either cannot be read or parsed, or when the key
    /// does not belong to the certificate.
    pub fn set_client_cert(&mut self, cert_pem_path: &Path, key_pem_path: &Path) -> Result<()> {
        let read = |what: &str, path: &Path| {
            std::fs::read(path).map(Zeroizing::new).map_err(|e| {
                Error::invalid_config(format!("cannot read {what} {}: {e}", path.display()))
            })
        };
        let cert_pem = read("client certificate", cert_pem_path)?;
        let key_pem = read("client key", key_pem_path)?;
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

    /// Sends every request through an HTTP CONNECT proxy, `http://[user:password@]host:port`.
    /// TLS still runs end to end with the server.
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

fn parse_proxy(url: &str) -> Result<Proxy> {
    // The URL may carry a password: never echo it in an error.
    if !url.starts_with("http://") {
        return Err(Error::invalid_config(
            "proxy URL must be http://[user:password@]host:port (an HTTP CONNECT proxy)",
        ));
    }
    Proxy::new(url).map_err(|_| {
        Error::invalid_config("proxy URL is not a valid http://[user:password@]host:port URL")
    })
}

/// The proxy the environment asks for, honouring `NO_PROXY` for the endpoint's host.
fn proxy_from_env(endpoint: &Endpoint) -> Result<Option<Proxy>> {
    let var = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
    };
    let url = if endpoint.base.starts_with("https://") {
        var(["HTTPS_PROXY", "https_proxy"])
    } else {
        var(["HTTP_PROXY", "http_proxy"])
    };
    let Some(url) = url else { return Ok(None) };
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
