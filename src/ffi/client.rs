//! Configuration and client handles.

use std::ffi::c_char;
use std::path::Path;
use std::time::Duration;

use crate::config::Config;
use crate::ffi::boundary::{
    free_handle, give_handle, guard, handle, handle_mut, output, required_str,
};
use crate::ffi::types::{fleets_client_t, fleets_config_t, fleets_result};
use crate::Client;

/// Creates a configuration for `endpoint` (`https://host[:port][/base]`; `http://` only for
/// loopback hosts) with a Deployment API key and secret. Trusts the bundled Mozilla roots
/// until `fleets_config_set_ca_file` says otherwise (a library built without the cargo
/// feature `bundled-roots` has none: `fleets_client_new` then fails with
/// `FLEETS_ERR_INVALID_CONFIG` until a CA file, CA PEM or the system roots are set); connect
/// timeout 10 s, request deadline 30 s.
///
/// All three strings are required (NULL: `FLEETS_ERR_NULL_ARGUMENT`), copied, and may be
/// freed after the call; the copy of the secret is zeroed when the configuration is freed.
/// On success `*out` receives a new handle that the caller frees with `fleets_config_free`;
/// on failure `*out` is not written. Errors: `FLEETS_ERR_INVALID_CONFIG` for bad credentials
/// or a bad URL: credentials in it (`user:pw@`, refused wherever an `@` appears), a query or
/// fragment, a host that is not a DNS name, IPv4 address or `[IPv6 address]` (no zone id),
/// a port that is not a decimal number from 1 to 65535 (`:0x50`, `:99999` and `:-1` are
/// refused, never read as the default port). Error messages show the URL with everything
/// before its last `@` replaced by `***`. Thread-safe (creates a new object).
///
/// # Safety
/// Non-NULL strings must be NUL-terminated; `out` must be valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_new(
    endpoint: *const c_char,
    api_key: *const c_char,
    api_secret: *const c_char,
    out: *mut *mut fleets_config_t,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract (all four arguments).
        let (endpoint, api_key, api_secret, out) = unsafe {
            (
                required_str(endpoint, "endpoint")?,
                required_str(api_key, "api_key")?,
                required_str(api_secret, "api_secret")?,
                output(out, "out")?,
            )
        };
        let inner = Config::new(endpoint, api_key, api_secret)?;
        give_handle(out, fleets_config_t { inner });
        Ok(())
    })
}

/// Creates a configuration from the environment: `FLEETS_ENDPOINT`, `FLEETS_API_KEY`,
/// `FLEETS_API_SECRET` and, when set and non-empty, `FLEETS_CA_FILE` (as for
/// `fleets_config_set_ca_file`: a regular file of at most 1 MiB). A proxy comes from
/// `HTTPS_PROXY` (lower-case name accepted; `http://` assumed when the value has no scheme)
/// unless `NO_PROXY` names the endpoint's host; it is checked as for
/// `fleets_config_set_proxy`. A loopback endpoint never uses a proxy.
///
/// On success `*out` receives a new handle freed with `fleets_config_free`. A missing
/// variable is `FLEETS_ERR_INVALID_CONFIG` (the message names it). Reads the process
/// environment: do not call it while another thread modifies the environment.
///
/// # Safety
/// `out` must be NULL or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_from_env(out: *mut *mut fleets_config_t) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let out = unsafe { output(out, "out") }?;
        let inner = Config::from_env()?;
        give_handle(out, fleets_config_t { inner });
        Ok(())
    })
}

/// Trusts only the certificates of the PEM bundle at `pem_path` (instead of the bundled
/// Mozilla roots) to identify the server.
///
/// Both arguments are required. The file is read during the call, and only if it is a
/// regular file of at most 1 MiB (1048576 bytes): a FIFO, device or directory is refused
/// without blocking, a larger file without being read. A file that cannot be read, is not a
/// regular file, is over the cap or holds no usable certificate is
/// `FLEETS_ERR_INVALID_CONFIG` and leaves the configuration unchanged: the library never
/// silently trusts nothing or everything. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call;
/// `pem_path` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_ca_file(
    cfg: *mut fleets_config_t,
    pem_path: *const c_char,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (cfg, pem_path) =
            unsafe { (handle_mut(cfg, "cfg")?, required_str(pem_path, "pem_path")?) };
        cfg.inner.set_ca_file(Path::new(pem_path))
    })
}

/// Sets the connect timeout (DNS, TCP and TLS handshake) and the whole-request deadline, in
/// milliseconds; 0 keeps the default for that limit (10 000 and 30 000). No call can run
/// longer than the request deadline. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_timeouts(
    cfg: *mut fleets_config_t,
    connect_ms: u32,
    request_ms: u32,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let cfg = unsafe { handle_mut(cfg, "cfg") }?;
        cfg.inner.set_timeouts(
            Duration::from_millis(connect_ms.into()),
            Duration::from_millis(request_ms.into()),
        );
        Ok(())
    })
}

/// Trusts only the certificates of an in-memory PEM bundle (NUL-terminated text), instead of
/// the bundled Mozilla roots. The text is copied during the call.
///
/// Both arguments are required. The text has no size cap (it is the caller's memory). A
/// bundle without a usable certificate is `FLEETS_ERR_INVALID_CONFIG` and leaves the
/// configuration unchanged. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call; `pem`
/// is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_ca_pem(
    cfg: *mut fleets_config_t,
    pem: *const c_char,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (cfg, pem) = unsafe { (handle_mut(cfg, "cfg")?, required_str(pem, "pem")?) };
        cfg.inner.set_ca_pem(pem)
    })
}

/// Trusts the operating system's certificate store (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else
/// the distribution's bundle), for networks that inspect TLS with their own CA. The store is
/// read during the call; an empty or unreadable store is `FLEETS_ERR_INVALID_CONFIG` and
/// leaves the configuration unchanged. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_use_system_roots(
    cfg: *mut fleets_config_t,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let cfg = unsafe { handle_mut(cfg, "cfg") }?;
        cfg.inner.use_system_roots()
    })
}

/// Presents a client certificate for mutual TLS: `cert_pem_path` holds the PEM certificate
/// chain (leaf first), `key_pem_path` its PEM private key (PKCS#8, PKCS#1 or SEC1). Both
/// files are read during the call, each only if it is a regular file of at most 1 MiB
/// (1048576 bytes), as for `fleets_config_set_ca_file`; the key copy is zeroed when the
/// configuration and client are freed.
///
/// All arguments are required. An unreadable file, one that is not a regular file or is over
/// the cap, a file without a certificate or key, or a key that does not belong to the
/// certificate is `FLEETS_ERR_INVALID_CONFIG` and leaves the configuration unchanged. Not
/// thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call; the
/// paths are NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_client_cert(
    cfg: *mut fleets_config_t,
    cert_pem_path: *const c_char,
    key_pem_path: *const c_char,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (cfg, cert, key) = unsafe {
            (
                handle_mut(cfg, "cfg")?,
                required_str(cert_pem_path, "cert_pem_path")?,
                required_str(key_pem_path, "key_pem_path")?,
            )
        };
        cfg.inner.set_client_cert(Path::new(cert), Path::new(key))
    })
}

/// Sends every request through an HTTP CONNECT proxy: `url` is
/// `http://[user:password@]host[:port][/]`, the host a DNS name, IPv4 address or
/// `[IPv6 address]`, the port a decimal number from 1 to 65535 (80 when omitted), user and
/// password percent-encoded (`%40` for `@`). TLS still runs end to end with the server, so
/// the proxy sees neither the requests nor the credentials. Error messages show the URL with
/// everything before its last `@` replaced by `***`: the proxy user and password never appear.
///
/// A loopback endpoint (`localhost`, `127.0.0.0/8`, `::1`) never goes through the proxy, as
/// with curl's default `NO_PROXY`: the proxy would resolve the name on its own host and, for
/// an `http://` endpoint, see the request and its credentials in clear text.
///
/// Both arguments are required; another scheme, a path, query or fragment, a bad host or port
/// (`:0x50`, `:99999`, `:-1`) or bad percent-encoding is `FLEETS_ERR_INVALID_CONFIG` and leaves
/// the configuration unchanged. `fleets_config_from_env` already honours `HTTPS_PROXY` and
/// `NO_PROXY`; this call overrides that. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call; `url`
/// is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_proxy(
    cfg: *mut fleets_config_t,
    url: *const c_char,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (cfg, url) = unsafe { (handle_mut(cfg, "cfg")?, required_str(url, "url")?) };
        cfg.inner.set_proxy(url)
    })
}

/// Sets how transient failures are retried: at most `max_attempts` attempts per call (1
/// disables retries; at most 10), waiting a random time up to `initial_backoff_ms`, doubling
/// per attempt, never more than `max_backoff_ms`, or what the server's `Retry-After` asks
/// (clamped to `max_backoff_ms`). 0 keeps the default of each (3 attempts, 200 ms, 5000 ms).
/// All attempts together stay within the request deadline.
///
/// Only requests that are safe to repeat are retried: `fleets_shadow_get`, and the calls that
/// carry a client token (`fleets_shadow_report` and the four `fleets_jobs_*` calls). When the
/// caller passes no client token and retries are enabled, the library sends a generated one
/// (`fleets-` and 16 hex digits), which the server echoes. `fleets_event_publish` and
/// `fleets_command_respond` are never repeated. Retried failures: connection failures,
/// timeouts before any byte of the response, and HTTP 429, 502, 503, 504; never another 4xx.
///
/// Stale keep-alive connections: when a request on a reused pooled connection ends (end of
/// stream, reset, TLS close) before any byte of its response arrived, the server had closed
/// the idle connection and never saw the request; a request that is safe to repeat (as above)
/// is then sent once more at once on a fresh connection, within the request deadline and
/// even with retries disabled (1 attempt) when it carries a client token. A failure after
/// response bytes arrived is `FLEETS_ERR_IO` and is never repeated.
///
/// `FLEETS_ERR_INVALID_CONFIG` when `max_attempts` exceeds 10 or the initial backoff exceeds
/// the maximum. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_retry(
    cfg: *mut fleets_config_t,
    max_attempts: u32,
    initial_backoff_ms: u32,
    max_backoff_ms: u32,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let cfg = unsafe { handle_mut(cfg, "cfg") }?;
        cfg.inner.set_retry(
            max_attempts,
            Duration::from_millis(initial_backoff_ms.into()),
            Duration::from_millis(max_backoff_ms.into()),
        )
    })
}

/// Sets the largest response body the client accepts and keeps in memory, in bytes (default
/// 1 MiB; 0 keeps the default; at most 16 MiB, `FLEETS_MAX_RESPONSE_BYTES_LIMIT`). A larger
/// body is `FLEETS_ERR_BAD_RESPONSE`, and a response that declares a larger `Content-Length`
/// is refused before its body is read. Memory grows with the bytes that actually arrive, never
/// from what a header claims. Over the maximum: `FLEETS_ERR_INVALID_CONFIG`, the setting is
/// unchanged. Not thread-safe for the same `cfg`.
///
/// # Safety
/// `cfg` is NULL or a live configuration not used by another thread during the call.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_set_max_response_bytes(
    cfg: *mut fleets_config_t,
    max_bytes: usize,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let cfg = unsafe { handle_mut(cfg, "cfg") }?;
        cfg.inner.set_max_response_bytes(max_bytes)
    })
}

/// Frees a configuration and zeroes its copy of the API secret. NULL is a no-op. Clients
/// created from it are not affected.
///
/// # Safety
/// `cfg` is NULL or a live configuration, not used again after this call.
#[no_mangle]
pub unsafe extern "C" fn fleets_config_free(cfg: *mut fleets_config_t) {
    // SAFETY: forwarded from this function's contract.
    unsafe { free_handle(cfg) }
}

/// Creates a client from a configuration. No connection is made until the first call; then
/// keep-alive connections are pooled (up to 16 idle, each idle for at most 30 s).
///
/// `cfg` is only read: it may be freed right after. On success `*out` receives a new handle
/// freed with `fleets_client_free`. A client is safe to use from many threads at once.
///
/// Memory: about 28 KiB of HTTP buffers (16 KiB in, 8 KiB out, up to 4 KiB kept to send each
/// request as one TLS record) plus rustls' state per pooled connection, plus the response body
/// being read per calling thread (at most the response limit, 1 MiB by default).
///
/// # Safety
/// `cfg` is NULL or a live configuration; `out` is NULL or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn fleets_client_new(
    cfg: *const fleets_config_t,
    out: *mut *mut fleets_client_t,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (cfg, out) = unsafe { (handle(cfg, "cfg")?, output(out, "out")?) };
        let inner = Client::new(&cfg.inner)?;
        give_handle(out, fleets_client_t { inner });
        Ok(())
    })
}

/// Frees a client: closes its pooled connections and zeroes its copy of the credentials.
/// NULL is a no-op.
///
/// # Safety
/// `client` is NULL or a live client on which no call is running, not used again after this
/// call.
#[no_mangle]
pub unsafe extern "C" fn fleets_client_free(client: *mut fleets_client_t) {
    // SAFETY: forwarded from this function's contract.
    unsafe { free_handle(client) }
}
