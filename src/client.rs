//! The client: one connection pool per client, shared by all threads, and the eight
//! ThingDatas calls.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use ureq::http::{header, HeaderValue, Uri};
use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
use ureq::Agent;
use zeroize::Zeroizing;

use crate::config::{Config, TrustAnchors};
use crate::error::{Error, Result};
use crate::logging::{self, LogLevel};
use crate::redact::{self, Secrets};
use crate::request;
use crate::resolve::CachingResolver;
use crate::response::{self, Response, ResponseHeaders};
use crate::retry::{self, RetryPolicy};
use crate::stats::{ClientStats, Counters};
use crate::validate::{self, JsonObject};
use crate::wire::{self, ExecutionStatus, Severity};

/// Bytes buffered per connection for reading responses (TLS records are decrypted by rustls
/// into its own buffers; this holds HTTP framing and body chunks).
pub const INPUT_BUFFER_BYTES: usize = 16 * 1024;
/// Bytes buffered per connection for writing requests.
pub const OUTPUT_BUFFER_BYTES: usize = 8 * 1024;
/// Largest response header block accepted.
pub const MAX_RESPONSE_HEADER_BYTES: usize = 8 * 1024;
/// Idle keep-alive connections kept per client (one per thread that calls at once). 16: with
/// 8, 16 threads sharing a client kept opening new connections (full TLS handshakes) as the
/// pool dropped the ones returned beyond 8 (issue 15: 51 vs 16 connects for 4,000 reports).
pub const MAX_IDLE_CONNECTIONS: usize = 16;
/// How long an idle connection is kept for reuse.
pub const MAX_IDLE_AGE: Duration = Duration::from_secs(30);

/// Largest report body buffer a thread keeps for its next report.
const MAX_KEPT_BODY_BYTES: usize = 16 * 1024;

thread_local! {
    /// The calling thread's buffer for shadow report bodies (one allocation per thread
    /// instead of one per report).
    static REPORT_BODY: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Options of [`Client::shadow_report`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportOptions<'a> {
    /// Echoed back by the server for correlation (at most 64 printable ASCII bytes).
    pub client_token: Option<&'a str>,
    /// Expected current shadow version for optimistic locking; 0 auto-increments.
    pub version: u64,
}

/// An event for [`Client::event_publish`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Event<'a> {
    /// Event type, e.g. `"highTemperature"` (required, 1 to 128 bytes).
    pub event_type: &'a str,
    /// Severity; `None` leaves it out.
    pub severity: Option<Severity>,
    /// Unix milliseconds; 0 means now.
    pub timestamp_ms: i64,
    /// Event data, a JSON object.
    pub data_json: Option<&'a str>,
    /// Application identifier for multi-app deployments.
    pub app_id: Option<&'a str>,
}

/// A device-side client of the ThingDatas API. Cheap to share: `&Client` may be used from many
/// threads at once; connections are pooled and kept alive between calls.
pub struct Client {
    agent: Agent,
    base: String,
    report_uri: Uri,
    events_uri: Uri,
    command_response_uri: Uri,
    jobs_get_uri: Uri,
    jobs_start_next_uri: Uri,
    authorization: HeaderValue,
    secrets: Secrets,
    max_response_bytes: usize,
    request_timeout: Duration,
    retry: RetryPolicy,
    /// `host:port` of the configured proxy, to say which hop a connect failure was on.
    proxy_label: Option<String>,
    counters: Arc<Counters>,
}

/// Whether a request may be sent again after a transient failure or on a stale connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Never,
}

/// Where a request body stored by the outbox goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoredTarget<'a> {
    Report,
    Event,
    CommandResponse,
    JobUpdate { job_id: &'a str },
}

impl Repeat {
    /// A POST is safe to repeat when it carries a client token, which makes a repeat
    /// recognisable.
    fn with_token(client_token: Option<&str>) -> Repeat {
        if client_token.is_some() {
            Repeat::Safe
        } else {
            Repeat::Never
        }
    }
}

impl Client {
    /// Builds a client from a configuration. No connection is made until the first call.
    pub fn new(config: &Config) -> Result<Client> {
        let roots = match &config.trust {
            #[cfg(feature = "bundled-roots")]
            TrustAnchors::BundledMozilla => RootCerts::WebPki,
            #[cfg(not(feature = "bundled-roots"))]
            TrustAnchors::BundledMozilla => {
                return Err(Error::invalid_config(
                    "this libfleets was built without bundled root certificates (cargo \
                     feature bundled-roots): set a CA file or CA PEM, or use the system roots",
                ))
            }
            TrustAnchors::Certificates { certs, .. } => RootCerts::Specific(certs.clone()),
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            // Always ring, whatever process-wide default provider a host program installed.
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .root_certs(roots)
            .client_cert(config.client_cert.clone())
            .use_sni(true)
            .disable_verification(false)
            .build();
        // A loopback endpoint never goes through a proxy: the proxy would resolve "localhost"
        // on its own host and, for http://, see the credentials in clear text.
        let proxy = config
            .proxy
            .clone()
            .filter(|_| !config.endpoint.is_loopback());
        let agent_config = Agent::config_builder()
            .http_status_as_error(false)
            .https_only(config.endpoint.base.starts_with("https://"))
            .tls_config(tls)
            // Only the configured proxy: never one picked up implicitly from the environment.
            .proxy(proxy.clone())
            .no_delay(true)
            .max_redirects(0)
            .max_redirects_will_error(false)
            // Every request carries these bytes, on metered links too: the SDK and its version
            // (what a server operator needs to tell device software apart), and no `Accept`
            // (every response of the API is JSON; ureq's default `*/*` says nothing either).
            .user_agent(concat!("libfleets/", env!("CARGO_PKG_VERSION")))
            .accept("")
            .timeout_connect(Some(config.connect_timeout))
            .timeout_global(Some(config.request_timeout))
            .max_response_header_size(MAX_RESPONSE_HEADER_BYTES)
            .input_buffer_size(INPUT_BUFFER_BYTES)
            .output_buffer_size(OUTPUT_BUFFER_BYTES)
            .max_idle_connections(MAX_IDLE_CONNECTIONS)
            .max_idle_connections_per_host(MAX_IDLE_CONNECTIONS)
            .max_idle_age(MAX_IDLE_AGE)
            .build();
        let counters = Arc::new(Counters::default());
        let agent = Agent::with_parts(
            agent_config,
            crate::transport::connector(
                config.endpoint.base.starts_with("http://"),
                counters.clone(),
            ),
            CachingResolver::for_endpoint(&config.endpoint.base),
        );

        let base = config.endpoint.base.clone();
        let uri = |path: &str| -> Result<Uri> {
            format!("{base}{path}").parse().map_err(|_| {
                Error::invalid_config(format!("endpoint {base:?} does not form valid URLs"))
            })
        };
        Ok(Client {
            report_uri: uri("/api/v1/thing-datas/shadow/reported")?,
            events_uri: uri("/api/v1/thing-datas/events")?,
            command_response_uri: uri("/api/v1/thing-datas/command/response")?,
            jobs_get_uri: uri("/api/v1/thing-datas/jobs/get")?,
            jobs_start_next_uri: uri("/api/v1/thing-datas/jobs/start-next")?,
            authorization: basic_authorization(&config.api_key, &config.api_secret),
            secrets: Secrets::new(&config.api_key, &config.api_secret),
            agent,
            base,
            max_response_bytes: config.max_response_bytes,
            request_timeout: config.request_timeout,
            retry: config.retry,
            proxy_label: proxy.map(|p| format!("{}:{}", p.host(), p.port())),
            counters,
        })
    }

    /// The client's counters since it was created.
    pub fn stats(&self) -> ClientStats {
        self.counters.snapshot()
    }

    /// `POST /api/v1/thing-datas/shadow/reported`: reports state (`reported_json`, a JSON
    /// object).
    pub fn shadow_report(
        &self,
        thing_name: &str,
        reported_json: &str,
        options: ReportOptions<'_>,
    ) -> Result<Response> {
        let generated = self.token_to_generate(options.client_token);
        let client_token = validate::client_token(options.client_token)?.or(generated.as_deref());
        let report =
            request::Report::checked(thing_name, reported_json, client_token, options.version)?;
        let repeat = Repeat::with_token(client_token);
        // The body is written into this thread's reused buffer (taken out while in use, so a
        // call made from inside this one, e.g. by a log hook, simply gets a new one).
        let mut body = REPORT_BODY.take();
        let sent = match report.write_body(&mut body) {
            Ok(()) => self.send(self.report_uri.clone(), Some(&body), repeat),
            Err(e) => Err(e),
        };
        if body.capacity() <= MAX_KEPT_BODY_BYTES {
            REPORT_BODY.set(body);
        }
        sent
    }

    /// `GET /api/v1/thing-datas/{thingName}/shadow`: reported, desired, delta, version.
    pub fn shadow_get(&self, thing_name: &str) -> Result<Response> {
        let thing_name = validate::identifier("thing_name", thing_name)?;
        let uri = self.uri(&format!("/api/v1/thing-datas/{thing_name}/shadow"))?;
        self.send(uri, None, Repeat::Safe)
    }

    /// `POST /api/v1/thing-datas/events`.
    pub fn event_publish(&self, thing_name: &str, event: Event<'_>) -> Result<Response> {
        let body = request::event_body(thing_name, &event)?;
        self.send(self.events_uri.clone(), Some(&body), Repeat::Never)
    }

    /// `POST /api/v1/thing-datas/command/response`; `timestamp` in Unix seconds, 0 = now.
    pub fn command_respond(
        &self,
        thing_name: &str,
        execution_id: &str,
        status: ExecutionStatus,
        result_json: Option<&str>,
        timestamp: i64,
    ) -> Result<Response> {
        let body = request::command_response_body(
            thing_name,
            execution_id,
            status,
            result_json,
            timestamp,
        )?;
        self.send(
            self.command_response_uri.clone(),
            Some(&body),
            Repeat::Never,
        )
    }

    /// `POST /api/v1/thing-datas/jobs/get`: in-progress and queued job summaries.
    pub fn jobs_get_pending(
        &self,
        thing_name: &str,
        client_token: Option<&str>,
    ) -> Result<Response> {
        let generated = self.token_to_generate(client_token);
        let client_token = validate::client_token(client_token)?.or(generated.as_deref());
        let body = wire::JobsQuery {
            thing_name: validate::identifier("thing_name", thing_name)?,
            client_token,
        };
        let repeat = Repeat::with_token(client_token);
        self.post(self.jobs_get_uri.clone(), &body, thing_name.len(), repeat)
    }

    /// `POST /api/v1/thing-datas/jobs/start-next`; `step_timeout_minutes` 0 leaves it out.
    /// The answer is `{}` when nothing is pending.
    pub fn jobs_start_next(
        &self,
        thing_name: &str,
        status_details_json: Option<&str>,
        step_timeout_minutes: u32,
        client_token: Option<&str>,
    ) -> Result<Response> {
        let generated = self.token_to_generate(client_token);
        let client_token = validate::client_token(client_token)?.or(generated.as_deref());
        let body = wire::StartNextJob {
            thing_name: validate::identifier("thing_name", thing_name)?,
            status_details: JsonObject::parse_opt("status_details_json", status_details_json)?,
            step_timeout_in_minutes: (step_timeout_minutes != 0).then_some(step_timeout_minutes),
            client_token,
        };
        let hint = thing_name.len() + status_details_json.map_or(0, str::len);
        let repeat = Repeat::with_token(client_token);
        self.post(self.jobs_start_next_uri.clone(), &body, hint, repeat)
    }

    /// `POST /api/v1/thing-datas/jobs/{jobId}/get`: one job execution with its document.
    pub fn jobs_describe(
        &self,
        thing_name: &str,
        job_id: &str,
        client_token: Option<&str>,
    ) -> Result<Response> {
        let generated = self.token_to_generate(client_token);
        let client_token = validate::client_token(client_token)?.or(generated.as_deref());
        let body = wire::JobsQuery {
            thing_name: validate::identifier("thing_name", thing_name)?,
            client_token,
        };
        let job_id = validate::identifier("job_id", job_id)?;
        let uri = self.uri(&format!("/api/v1/thing-datas/jobs/{job_id}/get"))?;
        self.post(
            uri,
            &body,
            thing_name.len(),
            Repeat::with_token(client_token),
        )
    }

    /// `POST /api/v1/thing-datas/jobs/{jobId}/update`; `expected_version` 0 leaves it out.
    pub fn jobs_update(
        &self,
        thing_name: &str,
        job_id: &str,
        status: ExecutionStatus,
        status_details_json: Option<&str>,
        expected_version: u64,
        client_token: Option<&str>,
    ) -> Result<Response> {
        let generated = self.token_to_generate(client_token);
        let client_token = validate::client_token(client_token)?.or(generated.as_deref());
        let (job_id, body) = request::job_update_body(
            thing_name,
            job_id,
            status,
            status_details_json,
            expected_version,
            client_token,
        )?;
        let uri = self.uri(&format!("/api/v1/thing-datas/jobs/{job_id}/update"))?;
        self.send(uri, Some(&body), Repeat::with_token(client_token))
    }

    /// Sends a stored request body once for the outbox: no retry after a transient failure
    /// (the outbox is the retry: the record stays queued), but a resend on a fresh connection
    /// when a kept-alive one turns out stale (the server never saw it). `deadline`, when
    /// given, bounds the request more tightly than the configured request timeout.
    pub(crate) fn send_stored(
        &self,
        target: StoredTarget<'_>,
        body: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Response> {
        let uri = match target {
            StoredTarget::Report => self.report_uri.clone(),
            StoredTarget::Event => self.events_uri.clone(),
            StoredTarget::CommandResponse => self.command_response_uri.clone(),
            StoredTarget::JobUpdate { job_id } => {
                self.uri(&format!("/api/v1/thing-datas/jobs/{job_id}/update"))?
            }
        };
        let started = Instant::now();
        let own_deadline = started + self.request_timeout;
        let (deadline, bounded) = match deadline {
            Some(d) if d < own_deadline => (d, true),
            _ => (own_deadline, false),
        };
        self.send_until(uri, Some(body), Repeat::Safe, started, deadline, 1, bounded)
    }

    fn uri(&self, path: &str) -> Result<Uri> {
        // Path segments were validated as identifiers, so this only fails on a library bug.
        format!("{}{path}", self.base)
            .parse()
            .map_err(|_| Error::new(crate::ErrorCode::Internal, "could not form request URL"))
    }

    /// A client token for a request that has none, so that it can be retried safely.
    fn token_to_generate(&self, given: Option<&str>) -> Option<String> {
        (given.is_none() && self.retry.enabled()).then(retry::generated_client_token)
    }

    /// Serialises and sends a body. `input_len` (the length of the caller's strings) sizes
    /// the buffer so that a typical body is written without reallocating.
    fn post<B: serde::Serialize>(
        &self,
        uri: Uri,
        body: &B,
        input_len: usize,
        repeat: Repeat,
    ) -> Result<Response> {
        let json = request::serialise(body, input_len)?;
        self.send(uri, Some(&json), repeat)
    }

    /// Sends a request, repeating it after transient failures when that is safe, all within
    /// one deadline. A request that is safe to repeat and met a stale keep-alive connection
    /// is sent once more at once on a fresh connection, outside the retry budget: the server
    /// never saw it.
    fn send(&self, uri: Uri, body: Option<&[u8]>, repeat: Repeat) -> Result<Response> {
        let started = Instant::now();
        let deadline = started + self.request_timeout;
        let max_attempts = self.retry.max_attempts();
        self.send_until(uri, body, repeat, started, deadline, max_attempts, false)
    }

    /// [`Client::send`] with its limits given: `deadline`, at most `max_attempts` tries, and
    /// whether the deadline is tighter than the agent's own (then the first try gets it too).
    /// `started`: when the call began (its latency is measured from there).
    #[allow(clippy::too_many_arguments)]
    fn send_until(
        &self,
        uri: Uri,
        body: Option<&[u8]>,
        repeat: Repeat,
        started: Instant,
        deadline: Instant,
        max_attempts: u32,
        bounded_first: bool,
    ) -> Result<Response> {
        let method = if body.is_some() { "POST" } else { "GET" };
        Counters::add(&self.counters.calls, 1);
        let mut attempt = 1;
        let mut resent_after_stale = false;
        let mut fresh_connection = false;
        let outcome = loop {
            // The agent's own deadline covers the first try; later ones get what is left.
            let remaining = (attempt > 1 || fresh_connection || bounded_first)
                .then(|| deadline.saturating_duration_since(Instant::now()));
            Counters::add(&self.counters.requests, 1);
            // The clock is read for the debug line only when that line is wanted.
            let tried = logging::enabled(LogLevel::Debug).then(Instant::now);
            let error = match self.attempt(&uri, body, remaining, fresh_connection) {
                Ok(response) => {
                    if let Some(tried) = tried {
                        logging::log(
                            LogLevel::Debug,
                            format_args!(
                                "{method} {} -> {} in {:.2} ms",
                                uri.path(),
                                response.status(),
                                tried.elapsed().as_secs_f64() * 1000.0
                            ),
                        );
                    }
                    break Ok(response);
                }
                Err(error) => error,
            };
            fresh_connection = false;
            if repeat == Repeat::Safe
                && error.is_stale_connection()
                && !resent_after_stale
                && Instant::now() < deadline
            {
                Counters::add(&self.counters.stale_resends, 1);
                logging::log(
                    LogLevel::Info,
                    format_args!(
                        "{method} {}: {}; sending it again on a new connection",
                        uri.path(),
                        error.message()
                    ),
                );
                resent_after_stale = true;
                fresh_connection = true;
                continue;
            }
            if repeat == Repeat::Safe && error.is_transient() && attempt < max_attempts {
                let wait = self.retry.delay(attempt, error.retry_after());
                if Instant::now() + wait < deadline {
                    Counters::add(&self.counters.retries, 1);
                    if logging::enabled(LogLevel::Info) {
                        let error = self.scrub(error);
                        logging::log(
                            LogLevel::Info,
                            format_args!(
                                "{method} {}: {error}; attempt {} in {} ms",
                                uri.path(),
                                attempt + 1,
                                wait.as_millis()
                            ),
                        );
                    }
                    std::thread::sleep(wait);
                    attempt += 1;
                    continue;
                }
            }
            break Err(self.scrub(error.after_attempts(attempt)));
        };
        let elapsed = started.elapsed();
        self.counters.last_latency_ns.store(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Err(error) = &outcome {
            Counters::add(&self.counters.failures, 1);
            let level = if (error.code() as u32) >= 900 {
                LogLevel::Error
            } else {
                LogLevel::Warn
            };
            logging::log(
                level,
                format_args!(
                    "{method} {} failed after {:.1} ms: {error}",
                    uri.path(),
                    elapsed.as_secs_f64() * 1000.0
                ),
            );
        }
        outcome
    }

    /// One try. `remaining`: the deadline's rest for a repeat (the agent's own deadline
    /// covers the first try); `fresh_connection`: do not take a connection from the pool.
    fn attempt(
        &self,
        uri: &Uri,
        body: Option<&[u8]>,
        remaining: Option<Duration>,
        fresh_connection: bool,
    ) -> Result<Response> {
        // A pooled connection is never younger than zero: none qualifies.
        let max_idle_age = if fresh_connection {
            Duration::ZERO
        } else {
            MAX_IDLE_AGE
        };
        let sent = match body {
            None => {
                let request = self
                    .agent
                    .get(uri.clone())
                    .header(header::AUTHORIZATION, self.authorization.clone());
                match remaining {
                    Some(left) => request
                        .config()
                        .timeout_global(Some(left))
                        .max_idle_age(max_idle_age)
                        .build()
                        .call(),
                    None => request.call(),
                }
            }
            Some(json) => {
                let request = self
                    .agent
                    .post(uri.clone())
                    .header(header::AUTHORIZATION, self.authorization.clone())
                    // A static value: no copy of the bytes per request.
                    .header(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                match remaining {
                    Some(left) => request
                        .config()
                        .timeout_global(Some(left))
                        .max_idle_age(max_idle_age)
                        .build()
                        .send(json),
                    None => request.send(json),
                }
            }
        };
        let mut response = sent.map_err(|e| {
            self.name_the_proxy(response::transport_error(e, self.max_response_bytes))
        })?;
        let status = response.status().as_u16();
        // Location and Retry-After only matter to a redirect or an error: a 2xx answer skips
        // the two header lookups.
        let headers = if (200..300).contains(&status) {
            ResponseHeaders::default()
        } else {
            let header_text = |name| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v: &HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            ResponseHeaders {
                location: header_text(header::LOCATION),
                retry_after: header_text(header::RETRY_AFTER)
                    .as_deref()
                    .and_then(retry::parse_retry_after),
            }
        };
        let body = response::read_body(response.body_mut(), self.max_response_bytes)?;
        response::classify(status, &headers, body)
    }

    /// With a proxy, every TCP connection goes to the proxy: say so in a connect failure.
    fn name_the_proxy(&self, err: Error) -> Error {
        match &self.proxy_label {
            Some(proxy)
                if err.code() == crate::ErrorCode::Connect
                    && !err.message().starts_with("proxy") =>
            {
                let message = format!("proxy {proxy}: {}", err.message());
                err.with_message(message)
            }
            _ => err,
        }
    }

    /// Messages never include the secret by construction; this guards against a server
    /// echoing it (in any form) and against control characters in text the server chose.
    fn scrub(&self, err: Error) -> Error {
        let message = match self.secrets.redact(err.message()) {
            Cow::Borrowed(message) => redact::printable(message),
            Cow::Owned(message) => Cow::Owned(redact::printable(&message).into_owned()),
        };
        let err = match message {
            Cow::Owned(message) => err.with_message(message),
            Cow::Borrowed(_) => err,
        };
        err.map_body(|body| match self.secrets.redact(&body) {
            Cow::Owned(redacted) => redacted,
            Cow::Borrowed(_) => body,
        })
    }
}

/// What the workflows (`src/workflows`) build on: the agent with its TLS, proxy and pool, the
/// credentials, the limits and the error clean-up of the ThingDatas calls.
impl Client {
    pub(crate) fn agent(&self) -> &Agent {
        &self.agent
    }

    pub(crate) fn authorization(&self) -> &HeaderValue {
        &self.authorization
    }

    /// `scheme://authority[/base]` of the endpoint.
    pub(crate) fn endpoint_base(&self) -> &str {
        &self.base
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub(crate) fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// An error as the ThingDatas calls return it: the proxy named in a connect failure, no
    /// secret and no control characters in the message.
    pub(crate) fn clean_error(&self, err: Error) -> Error {
        self.scrub(self.name_the_proxy(err))
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.base)
            .finish_non_exhaustive()
    }
}

/// The `Authorization` header value. Its bytes live in a buffer that is zeroed when the last
/// clone is dropped; requests share it without copying.
fn basic_authorization(api_key: &str, api_secret: &str) -> HeaderValue {
    // Capacities are exact so that no reallocation leaves an unzeroed copy behind.
    let mut credentials =
        Zeroizing::new(String::with_capacity(api_key.len() + 1 + api_secret.len()));
    credentials.push_str(api_key);
    credentials.push(':');
    credentials.push_str(api_secret);
    let mut value = Zeroizing::new(String::with_capacity(6 + credentials.len().div_ceil(3) * 4));
    value.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(credentials.as_bytes(), &mut value);
    let bytes = bytes::Bytes::from_owner(ZeroizedBytes(Zeroizing::new(
        std::mem::take(&mut *value).into_bytes(),
    )));
    let mut header = HeaderValue::from_maybe_shared(bytes)
        .expect("base64 and an ASCII prefix are valid header bytes");
    header.set_sensitive(true);
    header
}

struct ZeroizedBytes(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for ZeroizedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
