//! libfleets: a device-side client of the EMQX Fleets ThingDatas HTTPS API.
//!
//! Two layers:
//! - this safe Rust API ([`Client`], [`Config`], [`Error`]), which owns all logic:
//!   validation, request building, authentication, response classification;
//! - [`ffi`], a thin C ABI over it (`include/fleets.h`) that only converts arguments and
//!   results.
//!
//! ```no_run
//! let config = fleets::Config::new("https://fleets.example.com", "ak_key", "secret")?;
//! let client = fleets::Client::new(&config)?;
//! client.shadow_report("thermostat-001", r#"{"temperature":21.5}"#, Default::default())?;
//! # Ok::<(), fleets::Error>(())
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]
// Helpers shared with the outbox and the workflows are unused in a build without them; the
// default build (both on) still reports dead code.
#![cfg_attr(not(all(feature = "outbox", feature = "workflows")), allow(dead_code))]

/// cbindgen:ignore
mod client;
/// cbindgen:ignore
mod config;
/// cbindgen:ignore
mod error;
pub mod ffi;
/// cbindgen:ignore
pub mod json;
/// cbindgen:ignore
mod logging;
/// cbindgen:ignore
#[cfg(feature = "outbox")]
mod outbox;
/// cbindgen:ignore
mod redact;
/// cbindgen:ignore
mod request;
/// cbindgen:ignore
mod resolve;
/// cbindgen:ignore
mod response;
/// cbindgen:ignore
mod retry;
/// cbindgen:ignore
mod stats;
/// cbindgen:ignore
mod transport;
/// cbindgen:ignore
mod validate;
/// cbindgen:ignore
mod wire;
/// cbindgen:ignore
#[cfg(feature = "workflows")]
pub mod workflows;

pub use client::{
    Client, Event, ReportOptions, INPUT_BUFFER_BYTES, MAX_IDLE_AGE, MAX_IDLE_CONNECTIONS,
    MAX_RESPONSE_HEADER_BYTES, OUTPUT_BUFFER_BYTES,
};
pub use config::{
    Config, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_REQUEST_TIMEOUT,
    MAX_PEM_FILE_BYTES, MAX_RESPONSE_BYTES_LIMIT,
};
pub use error::{Error, ErrorCode, Result};
pub use logging::{clear_log_callback, set_log_callback, LogLevel};
#[cfg(feature = "outbox")]
pub use outbox::{
    FlushOutcome, FullPolicy, Outbox, OutboxOptions, OutboxStats, SyncPolicy,
    DEFAULT_BATCH_MAX_DELAY, DEFAULT_BATCH_MAX_RECORDS, DEFAULT_OUTBOX_MAX_BYTES,
    MAX_OUTBOX_MAX_BYTES, MIN_OUTBOX_MAX_BYTES,
};
pub use response::Response;
pub use retry::{
    RetryPolicy, DEFAULT_INITIAL_BACKOFF, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF,
    MAX_ATTEMPTS_LIMIT,
};
pub use stats::ClientStats;
pub use validate::{
    JsonObject, MAX_CLIENT_TOKEN_LEN, MAX_IDENTIFIER_LEN, MAX_JSON_DEPTH, MAX_LABEL_LEN,
};
pub use wire::{ExecutionStatus, Severity};
#[cfg(feature = "workflows")]
pub use workflows::download::{DownloadOptions, DownloadReport, DOWNLOAD_CHUNK_BYTES};
#[cfg(feature = "workflows")]
pub use workflows::job_agent::{
    JobAgent, JobOutcome, JobRun, JobStep, StepResult, DEFAULT_MAX_STEP_ATTEMPTS,
    MAX_JOB_DETAILS_BYTES, MAX_JOB_STEPS,
};
#[cfg(feature = "workflows")]
pub use workflows::shadow_sync::{ShadowSyncReport, SHADOW_SYNC_MAX_ROUNDS};

/// The library version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
