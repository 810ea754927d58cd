//! `fleets-emulator`: a local, EMQX Fleets ThingDatas-compatible HTTPS server for development,
//! tests and demos.
//!
//! Start it in-process with [`Emulator::start`] (it listens on a free loopback port by default,
//! serves HTTPS with a throwaway CA and shuts down when dropped), or run the `fleets-emulator`
//! binary, which prints one JSON ready line. See `emulator/README.md` for the HTTP API.
//!
//! Besides the device API it serves files for download tests ([`Emulator::put_file`]), can
//! take its device port offline and back ([`Emulator::set_offline`]) while an admin-only port
//! stays up, and can close keep-alive connections the way real servers do
//! ([`Emulator::set_idle_timeout`], [`Emulator::set_requests_per_connection`]).
//!
//! ```no_run
//! use fleets_emulator::{Emulator, EmulatorOptions};
//! let emu = Emulator::start(EmulatorOptions::default()).unwrap();
//! emu.register_thing("thermostat-001");
//! println!("{} trusts {:?}", emu.endpoint(), emu.ca_file());
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod conn;
pub mod error;
pub mod faults;
pub mod files;
pub mod http;
pub mod port;
pub mod routes;
pub mod server;
pub mod state;
pub mod tls;
pub mod validate;

pub use error::ApiError;
pub use faults::{FaultKind, FaultRule};
pub use files::{FileInfo, FileOptions, FileRequest};
pub use port::OfflineMode;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Default API key (HTTP Basic user) of the device API.
pub const DEFAULT_API_KEY: &str = "ak_emulator_demo";
/// Default API secret (HTTP Basic password) of the device API.
pub const DEFAULT_API_SECRET: &str = "emulator-demo-secret";
/// Default Bearer token of the admin API.
pub const DEFAULT_ADMIN_TOKEN: &str = "emulator-admin-token";
/// Default request body limit: 256 KiB. Larger bodies get 413 `PayloadTooLarge`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;
/// Default listen address of the binary.
pub const DEFAULT_CLI_LISTEN: &str = "127.0.0.1:8443";
/// Time to live of a command created without `ttl`, in seconds.
pub const DEFAULT_COMMAND_TTL_SECS: u64 = 3600;

/// How the emulator serves TLS.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Create a throwaway CA and a server certificate for 127.0.0.1, ::1 and localhost.
    #[default]
    Generated,
    /// Serve the given PEM certificate chain and private key.
    Files {
        /// PEM certificate chain (leaf first).
        cert: PathBuf,
        /// PEM private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// Plain HTTP, no TLS.
    PlainHttp,
}

/// Start-up options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmulatorOptions {
    /// Listen address; port 0 picks a free port. Default `127.0.0.1:0`
    /// (the binary's default is `127.0.0.1:8443`).
    pub listen: SocketAddr,
    /// TLS mode. Default [`TlsMode::Generated`].
    pub tls: TlsMode,
    /// HTTP Basic user for `/api/v1/thing-datas`. Default [`DEFAULT_API_KEY`].
    pub api_key: String,
    /// HTTP Basic password. Default [`DEFAULT_API_SECRET`].
    pub api_secret: String,
    /// Bearer token for `/admin/v1`. Default [`DEFAULT_ADMIN_TOKEN`].
    pub admin_token: String,
    /// Register unknown things on first device use instead of answering 404. Default false.
    pub auto_register: bool,
    /// Where to write the generated CA PEM; `None` = `ca.pem` in a fresh temporary directory
    /// that is removed when the emulator stops.
    pub ca_out: Option<PathBuf>,
    /// Request body limit in bytes; larger bodies get 413. Default 256 KiB.
    pub max_body_bytes: usize,
    /// Listen address of the admin-only port, which stays up while the device port is offline.
    /// Default `127.0.0.1:0` (a free port).
    pub admin_listen: SocketAddr,
    /// TLS session resumption (TLS 1.3 tickets, TLS 1.2 session ids and tickets). Default true.
    pub tls_resumption: bool,
    /// Close a keep-alive connection of the device port after it has been idle this long,
    /// silently (no `Connection: close` before). Default `None` (only the 30 s head timeout).
    pub idle_timeout: Option<Duration>,
    /// Close a device connection after this many responses, without `Connection: close` on the
    /// last one. Default `None` (unlimited).
    pub requests_per_connection: Option<u32>,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls: TlsMode::Generated,
            api_key: DEFAULT_API_KEY.to_owned(),
            api_secret: DEFAULT_API_SECRET.to_owned(),
            admin_token: DEFAULT_ADMIN_TOKEN.to_owned(),
            auto_register: false,
            ca_out: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            admin_listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tls_resumption: true,
            idle_timeout: None,
            requests_per_connection: None,
        }
    }
}

/// Device-port request and connection counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// Every request that reached `/api/v1/...` or `/files/...`, whatever its outcome.
    pub total: u64,
    /// Counts by `"<METHOD> <path pattern>"`, e.g. `"POST /api/v1/thing-datas/shadow/reported"`,
    /// `"GET /api/v1/thing-datas/{thingName}/shadow"`, `"GET /files/{name}"`; unrouted paths
    /// count as `"<METHOD> <unknown>"`.
    pub by_endpoint: BTreeMap<String, u64>,
    /// TCP connections accepted on the device port (in every mode; the admin port's are not
    /// counted).
    pub connections_accepted: u64,
    /// Full TLS handshakes completed on the device port.
    pub tls_handshakes_full: u64,
    /// Resumed TLS handshakes completed on the device port.
    pub tls_handshakes_resumed: u64,
    /// The device port's outage mode; `None` while online.
    pub offline: Option<OfflineMode>,
}

/// A running emulator. Dropping it stops the server and joins its thread.
pub struct Emulator {
    app: Arc<server::App>,
    running: server::Running,
    endpoint: String,
    admin_endpoint: String,
    ca_pem: Option<String>,
    ca_file: Option<PathBuf>,
    temp_dir: Option<PathBuf>,
}

fn fresh_temp_dir() -> io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    for _ in 0..100 {
        let d = base.join(format!(
            "fleets-emulator-{}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed),
            &state::new_uuid()[..8]
        ));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("could not create a temporary directory"))
}

impl Emulator {
    /// Starts the server on a background thread; returns once it is listening.
    pub fn start(opts: EmulatorOptions) -> io::Result<Emulator> {
        if opts.max_body_bytes == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_body_bytes must be > 0",
            ));
        }
        let mut temp_dir = None;
        let mut ca_pem = None;
        let mut ca_file = None;
        let tls = match &opts.tls {
            TlsMode::PlainHttp => None,
            TlsMode::Files { cert, key } => {
                let (chain, key) = tls::load_files(cert, key)?;
                Some(tls::server_config(chain, key, opts.tls_resumption)?)
            }
            TlsMode::Generated => {
                let pki = tls::generate(Some(opts.listen.ip()))?;
                let path = match &opts.ca_out {
                    Some(p) => p.clone(),
                    None => {
                        let d = fresh_temp_dir()?;
                        temp_dir = Some(d.clone());
                        d.join("ca.pem")
                    }
                };
                if let Err(e) = std::fs::write(&path, &pki.ca_pem) {
                    if let Some(d) = &temp_dir {
                        let _ = std::fs::remove_dir_all(d);
                    }
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot write the CA to {}: {e}", path.display()),
                    ));
                }
                ca_pem = Some(pki.ca_pem);
                ca_file = Some(path);
                Some(tls::server_config(pki.chain, pki.key, opts.tls_resumption)?)
            }
        };
        let app = Arc::new(
            server::App::new(
                state::State::new(opts.auto_register),
                opts.api_key.clone(),
                opts.api_secret.clone(),
                opts.admin_token.clone(),
                opts.max_body_bytes,
            )
            .with_keepalive(
                opts.idle_timeout.filter(|t| !t.is_zero()),
                opts.requests_per_connection.filter(|n| *n > 0),
            ),
        );
        let plain = tls.is_none();
        let running = match server::spawn(app.clone(), opts.listen, opts.admin_listen, tls) {
            Ok(r) => r,
            Err(e) => {
                if let Some(d) = &temp_dir {
                    let _ = std::fs::remove_dir_all(d);
                }
                return Err(e);
            }
        };
        let url = |mut shown: SocketAddr| {
            match shown.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => {
                    shown.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))
                }
                IpAddr::V6(ip) if ip.is_unspecified() => {
                    shown.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
                }
                _ => {}
            }
            format!("{}://{shown}", if plain { "http" } else { "https" })
        };
        let endpoint = url(running.addr);
        let admin_endpoint = url(running.admin_addr);
        let _ = app.endpoint.set(endpoint.clone());
        Ok(Emulator {
            app,
            running,
            endpoint,
            admin_endpoint,
            ca_pem,
            ca_file,
            temp_dir,
        })
    }

    /// Base URL, e.g. `https://127.0.0.1:41234` (`http://` in plain mode).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The bound address of the device port.
    pub fn local_addr(&self) -> SocketAddr {
        self.running.addr
    }

    /// Base URL of the admin-only port, e.g. `https://127.0.0.1:41235`; it serves `/admin/v1`
    /// only and stays up while the device port is offline.
    pub fn admin_endpoint(&self) -> &str {
        &self.admin_endpoint
    }

    /// The bound address of the admin-only port.
    pub fn admin_addr(&self) -> SocketAddr {
        self.running.admin_addr
    }

    /// Device API key.
    pub fn api_key(&self) -> &str {
        &self.app.api_key
    }

    /// Device API secret.
    pub fn api_secret(&self) -> &str {
        &self.app.api_secret
    }

    /// Admin Bearer token.
    pub fn admin_token(&self) -> &str {
        &self.app.admin_token
    }

    /// The generated CA certificate, PEM (`None` for [`TlsMode::Files`] and [`TlsMode::PlainHttp`]).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Where the generated CA PEM was written.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// The one JSON line the binary prints when ready.
    pub fn ready_line(&self) -> String {
        // Built by hand so that the fields keep this order (`event` first).
        let s = |v: &str| Value::from(v).to_string();
        let ca = match &self.ca_file {
            Some(p) => s(&p.display().to_string()),
            None => "null".to_owned(),
        };
        format!(
            "{{\"event\":\"ready\",\"endpoint\":{},\"ca_file\":{ca},\"api_key\":{},\"api_secret\":{},\"admin_token\":{},\"admin_endpoint\":{}}}",
            s(&self.endpoint),
            s(&self.app.api_key),
            s(&self.app.api_secret),
            s(&self.app.admin_token),
            s(&self.admin_endpoint)
        )
    }

    // ------------------------------------------------------------------ in-process admin

    /// Registers a thing (no-op if it exists).
    pub fn register_thing(&self, name: &str) {
        self.app.state().register(name);
    }

    /// Merges `desired` into the thing's desired state (null deletes); registers the thing if
    /// needed. Errors when `desired` is not a JSON object.
    pub fn set_desired(&self, thing: &str, desired: Value) -> Result<(), String> {
        self.app
            .state()
            .set_desired(thing, &desired)
            .map(|_| ())
            .map_err(|e| e.message)
    }

    /// The shadow as `GET .../shadow` returns it; `None` for an unknown thing.
    pub fn shadow(&self, thing: &str) -> Option<Value> {
        self.app.state().thing(thing).map(state::Thing::shadow_json)
    }

    /// Shadow updates (device reports and desired changes), oldest first.
    pub fn shadow_history(&self, thing: &str) -> Vec<Value> {
        self.app.state().history(thing).unwrap_or_default()
    }

    /// Stored events (the bodies as sent plus `eventId` and `receivedAt`), oldest first.
    pub fn events(&self, thing: &str) -> Vec<Value> {
        self.app.state().events(thing).unwrap_or_default()
    }

    /// Creates a SENT command execution and returns its executionId (a UUID); `ttl_secs` 0 =
    /// never expires. Registers the thing if needed.
    pub fn create_command(
        &self,
        thing: &str,
        action: &str,
        params: Value,
        ttl_secs: u64,
    ) -> String {
        self.app
            .state()
            .create_command(thing, action, params, ttl_secs, None)
            .unwrap_or_default()
    }

    /// A command execution: `{executionId, thingName, action, params, status, result,
    /// timestamp, createdAt, updatedAt, ttl, expiresAt, responses}`.
    pub fn command(&self, thing: &str, execution_id: &str) -> Option<Value> {
        self.app.state().command(thing, execution_id)
    }

    /// Creates a job with one QUEUED execution per thing (registering unknown things);
    /// returns the jobId (a UUID).
    pub fn create_job(
        &self,
        document: Value,
        thing_names: &[&str],
        description: Option<&str>,
    ) -> String {
        self.app
            .state()
            .create_job(document, thing_names, description, None, None)
            .unwrap_or_default()
    }

    /// A job execution with its `jobDocument`; `None` if that thing has no execution of the job.
    pub fn job_execution(&self, job_id: &str, thing: &str) -> Option<Value> {
        self.app.state().job_execution(job_id, thing)
    }

    /// Cancels a job (every non-terminal execution becomes CANCELED); false if unknown.
    pub fn cancel_job(&self, job_id: &str) -> bool {
        self.app.state().cancel_job(job_id)
    }

    /// Adds a fault rule (see [`FaultRule`]). Invalid rules are still added as given; use
    /// [`FaultRule::validate`] to check one.
    pub fn add_fault(&self, rule: FaultRule) {
        self.app.state().add_fault(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.app.state().clear_faults();
    }

    /// Moves the virtual clock forward (step timeouts, command TTLs, timestamps).
    pub fn advance_clock(&self, secs: u64) {
        self.app.state().advance_clock(secs);
    }

    /// Clears all state: things, jobs, commands, faults, files, stats and the clock offset;
    /// also brings the device port back online and restores the keep-alive knobs given at
    /// start. Panics only if the device port cannot be bound again after `Refuse` (see
    /// [`Emulator::set_online`]).
    pub fn reset(&self) {
        if let Err(e) = self.app.reset() {
            panic!("fleets-emulator: reset could not reopen the device port: {e}");
        }
    }

    /// Device-port request counts, connection counts and the outage mode.
    pub fn stats(&self) -> Stats {
        self.app.stats()
    }

    // ------------------------------------------------------------------ outages

    /// Takes the device port offline (see [`OfflineMode`]); the admin port stays up. Returns
    /// once the mode is in effect. State and history are kept. Errors only when the server
    /// thread does not respond (it stopped), or when leaving `Refuse` for another offline
    /// mode the port cannot be bound again.
    pub fn set_offline(&self, mode: OfflineMode) -> io::Result<()> {
        self.app.port.set_offline(Some(mode))
    }

    /// Brings the device port back online on the same port; returns once it accepts
    /// connections. Errors when the port cannot be bound again (another process took it
    /// while the emulator refused connections).
    pub fn set_online(&self) -> io::Result<()> {
        self.app.port.set_offline(None)
    }

    /// The current outage mode; `None` while online.
    pub fn offline(&self) -> Option<OfflineMode> {
        self.app.port.policy().offline
    }

    // ------------------------------------------------------------------ keep-alive knobs

    /// Sets the idle timeout of device connections (`None` or zero = off); applies to open
    /// connections too.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        self.app
            .port
            .set_idle_timeout(timeout.filter(|t| !t.is_zero()));
    }

    /// Sets how many responses a device connection serves before the server closes it
    /// (`None` or 0 = unlimited); applies to open connections too.
    pub fn set_requests_per_connection(&self, n: Option<u32>) {
        self.app
            .port
            .set_requests_per_connection(n.filter(|n| *n > 0));
    }

    // ------------------------------------------------------------------ files

    /// Stores (or replaces) a file served at `GET/HEAD /files/{name}` on the device port.
    /// `name` must match `[A-Za-z0-9._:-]{1,128}` (not `.`/`..`); at most 256 MiB.
    pub fn put_file(
        &self,
        name: &str,
        data: impl Into<hyper::body::Bytes>,
        opts: FileOptions,
    ) -> Result<FileInfo, String> {
        let data = data.into();
        validate::check_identifier("name", name).map_err(|e| e.message)?;
        if data.len() as u64 > files::MAX_FILE_BYTES {
            return Err(format!(
                "a file may have at most {} bytes",
                files::MAX_FILE_BYTES
            ));
        }
        let sha = files::sha256_hex(&data);
        Ok(self
            .app
            .state()
            .files_mut()
            .put(name, data, sha, opts, &self.endpoint))
    }

    /// Stores a file of `size` deterministic bytes made from `seed` (see
    /// [`files::generate`]).
    pub fn generate_file(
        &self,
        name: &str,
        size: u64,
        seed: u64,
        opts: FileOptions,
    ) -> Result<FileInfo, String> {
        if size > files::MAX_FILE_BYTES {
            return Err(format!(
                "a file may have at most {} bytes",
                files::MAX_FILE_BYTES
            ));
        }
        self.put_file(name, files::generate(size as usize, seed), opts)
    }

    /// A stored file's description; `None` if there is none.
    pub fn file(&self, name: &str) -> Option<FileInfo> {
        self.app.state().files().info(name, &self.endpoint)
    }

    /// Removes a file and its request log; false if there was none.
    pub fn delete_file(&self, name: &str) -> bool {
        self.app.state().files_mut().remove(name)
    }

    /// The requests made for `/files/{name}`, oldest first (the last 1000).
    pub fn file_requests(&self, name: &str) -> Vec<FileRequest> {
        self.app.state().files().requests(name)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.running.stop();
        if let Some(d) = &self.temp_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("endpoint", &self.endpoint)
            .field("admin_endpoint", &self.admin_endpoint)
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}
