//! Client configuration: endpoint, credentials, trust anchors and time limits.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Connect timeout used when none is configured: covers DNS, TCP and the TLS handshake.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request deadline used when none is configured: from the first byte sent to the last
/// byte of the response body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest response body kept in memory; a larger one fails with `BadResponse`.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Which certificates a client trusts to identify the server.
#[derive(Clone)]
pub(crate) enum TrustAnchors {
    /// The Mozilla root program, bundled in the library (webpki-roots).
    BundledMozilla,
    /// Only the certificates of a PEM bundle given by the user.
    Pem(Arc<Vec<Certificate<'static>>>),
}

/// A parsed `https://host[:port][/base]` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `scheme://authority[/base]`, without a trailing slash.
    pub(crate) base: String,
}

impl Endpoint {
    pub(crate) fn parse(text: &str) -> Result<Endpoint> {
        let bad = |why: &str| Error::invalid_config(format!("endpoint {text:?} {why}"));
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
        })
    }

    /// A configuration from `FLEETS_ENDPOINT`, `FLEETS_API_KEY`, `FLEETS_API_SECRET` and,
    /// when set, `FLEETS_CA_FILE`.
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
        self.trust = TrustAnchors::Pem(Arc::new(certs));
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
                    TrustAnchors::Pem(c) => format!("{} certificate(s) from a CA file", c.len()),
                },
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
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
    fn ca_pem_without_certificates_is_refused() {
        assert!(parse_ca_pem(b"").is_err());
        assert!(parse_ca_pem(b"not a pem").is_err());
        assert!(
            parse_ca_pem(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
