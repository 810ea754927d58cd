//! Host name resolution for the connection pool. ureq resolves before every request, even
//! one that reuses a pooled connection, and with a timeout set it does so on a new thread.
//! This resolver answers IP literals directly and caches names briefly, so a steady stream
//! of calls costs no thread and no DNS query; a real lookup still runs on a helper thread so
//! that it stays within the call's deadline.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Addresses kept per lookup (the capacity of ureq's address list).
const MAX_ADDRS: usize = 16;

/// How long a successful lookup is reused.
pub const DNS_CACHE_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    cache: Mutex<Option<CachedLookup>>,
    /// The endpoint's authority (`host:port` as written in its URL) and its address, when
    /// the host is an IP literal: every request goes there, and is answered by comparing
    /// the authority text instead of parsing the address again.
    literal: Option<(String, SocketAddr)>,
}

#[derive(Debug)]
struct CachedLookup {
    host_port: String,
    addrs: Vec<SocketAddr>,
    at: Instant,
}

impl CachingResolver {
    fn lookup(
        &self,
        host: &str,
        port: u16,
        timeout: NextTimeout,
    ) -> Result<Vec<SocketAddr>, ureq::Error> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let host_port = format!("{bare}:{port}");
        if let Ok(cache) = self.cache.lock() {
            if let Some(hit) = cache
                .as_ref()
                .filter(|c| c.host_port == host_port && c.at.elapsed() < DNS_CACHE_TTL)
            {
                return Ok(hit.addrs.clone());
            }
        }
        let addrs = lookup_within(host_port.clone(), timeout)?;
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some(CachedLookup {
                host_port,
                addrs: addrs.clone(),
                at: Instant::now(),
            });
        }
        Ok(addrs)
    }
}

/// Resolves on a helper thread so that a slow DNS server cannot outlast the deadline.
fn lookup_within(host_port: String, timeout: NextTimeout) -> Result<Vec<SocketAddr>, ureq::Error> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("fleets-dns".into())
        .spawn(move || {
            let _ = tx.send(host_port.to_socket_addrs().map(Iterator::collect::<Vec<_>>));
        })
        .map_err(ureq::Error::Io)?;
    match rx.recv_timeout(*timeout.after) {
        Ok(Ok(addrs)) if !addrs.is_empty() => Ok(addrs),
        Ok(Ok(_)) => Err(ureq::Error::HostNotFound),
        Ok(Err(_)) => Err(ureq::Error::HostNotFound),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(ureq::Error::Timeout(timeout.reason)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(ureq::Error::HostNotFound),
    }
}

impl CachingResolver {
    /// A resolver for a client of `endpoint` (`scheme://authority[/base]`).
    pub(crate) fn for_endpoint(endpoint: &str) -> CachingResolver {
        let literal = endpoint.parse::<Uri>().ok().and_then(|uri| {
            let authority = uri.authority()?;
            let bare = authority
                .host()
                .trim_start_matches('[')
                .trim_end_matches(']');
            let ip = bare.parse::<IpAddr>().ok()?;
            let port = authority.port_u16().unwrap_or(default_port(&uri));
            Some((authority.as_str().to_owned(), SocketAddr::new(ip, port)))
        });
        CachingResolver {
            literal,
            ..CachingResolver::default()
        }
    }

    /// Hands the cached addresses of `bare:port` to `keep` while the cache is locked; false
    /// when there is no fresh entry. Compares without formatting `host:port`: a steady stream
    /// of calls allocates nothing here.
    fn cached(&self, bare: &str, port: u16, keep: impl FnOnce(&[SocketAddr])) -> bool {
        let Ok(cache) = self.cache.lock() else {
            return false;
        };
        let hit = cache.as_ref().filter(|c| {
            c.host_port
                .strip_prefix(bare)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|p| p.parse::<u16>().ok())
                == Some(port)
                && c.at.elapsed() < DNS_CACHE_TTL
        });
        match hit {
            Some(hit) => {
                keep(&hit.addrs);
                true
            }
            None => false,
        }
    }
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let authority = uri.authority().ok_or(ureq::Error::HostNotFound)?;
        let mut result = self.empty();
        if let Some((text, addr)) = &self.literal {
            if authority.as_str() == text
                && config
                    .ip_family()
                    .keep_wanted([*addr].into_iter())
                    .next()
                    .is_some()
            {
                result.push(*addr);
                return Ok(result);
            }
        }
        let port = authority.port_u16().unwrap_or(default_port(uri));
        let mut keep = |addrs: &[SocketAddr]| {
            for addr in config
                .ip_family()
                .keep_wanted(addrs.iter().copied())
                .take(MAX_ADDRS)
            {
                result.push(addr);
            }
        };
        // ureq resolves before every request: IP literals and cache hits go straight into
        // ureq's fixed-size list, without an intermediate Vec.
        let host = authority.host();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            keep(&[SocketAddr::new(ip, port)]);
        } else if !self.cached(bare, port, &mut keep) {
            keep(&self.lookup(host, port, timeout)?);
        }
        if result.is_empty() {
            return Err(ureq::Error::HostNotFound);
        }
        Ok(result)
    }
}

fn default_port(uri: &Uri) -> u16 {
    if uri.scheme_str() == Some("http") {
        80
    } else {
        443
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_resolve_without_lookup() {
        let r = CachingResolver::default();
        let t = NextTimeout::default();
        assert_eq!(
            r.lookup("127.0.0.1", 8443, t).unwrap(),
            vec!["127.0.0.1:8443".parse().unwrap()]
        );
        assert_eq!(
            r.lookup("[::1]", 9, t).unwrap(),
            vec!["[::1]:9".parse().unwrap()]
        );
        assert!(r.cache.lock().unwrap().is_none());
    }

    #[test]
    fn ip_literal_endpoints_are_parsed_once() {
        let r = CachingResolver::for_endpoint("https://127.0.0.1:8443");
        assert_eq!(
            r.literal,
            Some(("127.0.0.1:8443".into(), "127.0.0.1:8443".parse().unwrap()))
        );
        let r = CachingResolver::for_endpoint("https://[::1]/base");
        assert_eq!(
            r.literal,
            Some(("[::1]".into(), "[::1]:443".parse().unwrap()))
        );
        let r = CachingResolver::for_endpoint("http://127.0.0.1");
        assert_eq!(r.literal.unwrap().1, "127.0.0.1:80".parse().unwrap());
        assert!(CachingResolver::for_endpoint("https://localhost:8443")
            .literal
            .is_none());
        // Requests to the endpoint resolve to it; others (a proxy, say) as before.
        let r = CachingResolver::for_endpoint("https://127.0.0.1:8443");
        let config = Config::default();
        let t = NextTimeout::default();
        let uri: Uri = "https://127.0.0.1:8443/api".parse().unwrap();
        let got = r.resolve(&uri, &config, t).unwrap();
        assert_eq!(&got[..], &["127.0.0.1:8443".parse().unwrap()]);
        let other: Uri = "https://10.0.0.1:3128/".parse().unwrap();
        let got = r.resolve(&other, &config, t).unwrap();
        assert_eq!(&got[..], &["10.0.0.1:3128".parse().unwrap()]);
    }

    #[test]
    fn names_are_cached() {
        let r = CachingResolver::default();
        let first = r.lookup("localhost", 80, NextTimeout::default()).unwrap();
        assert!(!first.is_empty());
        assert_eq!(
            r.cache.lock().unwrap().as_ref().unwrap().host_port,
            "localhost:80"
        );
        assert_eq!(
            r.lookup("localhost", 80, NextTimeout::default()).unwrap(),
            first
        );
    }
}
