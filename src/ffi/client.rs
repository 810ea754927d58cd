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
/// until `fleets_config_set_ca_file` says otherwise; connect timeout 10 s, request deadline
/// 30 s.
///
/// All three strings are required (NULL: `FLEETS_ERR_NULL_ARGUMENT`), copied, and may be
/// freed after the call; the copy of the secret is zeroed when the configuration is freed.
/// On success `*out` receives a new handle that the caller frees with `fleets_config_free`;
/// on failure `*out` is not written. Errors: `FLEETS_ERR_INVALID_CONFIG` for a bad URL or
/// credentials. Thread-safe (creates a new object).
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
/// `fleets_config_set_ca_file`).
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
/// Both arguments are required. The file is read during the call. A file that cannot be read
/// or holds no usable certificate is `FLEETS_ERR_INVALID_CONFIG` and leaves the configuration
/// unchanged: the library never silently trusts nothing or everything. Not thread-safe for the
/// same `cfg`.
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
/// keep-alive connections are pooled (up to 8 idle, each idle for at most 30 s).
///
/// `cfg` is only read: it may be freed right after. On success `*out` receives a new handle
/// freed with `fleets_client_free`. A client is safe to use from many threads at once.
///
/// Memory: about 24 KiB of HTTP buffers plus the TLS state per pooled connection, plus the
/// largest response body being read per calling thread (at most 1 MiB).
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
