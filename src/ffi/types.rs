//! Types and constants of the C ABI. Enumerations are plain integer typedefs so that an
//! unknown value coming from C is just a number the Rust side can reject.

use crate::config::Config;
use crate::Client;

/// Result of every fallible function. `FLEETS_OK` (0) is success; the other values are the
/// `FLEETS_ERR_*` constants, stable and never reused. `fleets_result_name()` names them.
///
/// The hundreds tell the group:
/// - 1xx: the arguments or configuration were refused before anything was sent (103,
///   `FLEETS_ERR_BUFFER_TOO_SMALL`, is an exception: the request was done and its response
///   is kept for `fleets_last_response`; so is 107, `FLEETS_ERR_CANCELED`: a callback of the
///   application stopped a workflow that may have sent requests);
/// - 2xx: the transport failed: no connection (200), TLS (201), or the exchange broke off
///   (timeout 202, I/O 203), in which case the server may have received the request;
/// - 3xx: the server answered with an HTTP error status (`fleets_last_http_status`), or with
///   a response that cannot be used (309 to 311);
/// - 4xx: local storage (the outbox, state files and downloads);
/// - 9xx: a bug in libfleets or resource exhaustion.
///
/// `fleets_result_request_sent()` tells whether a failed call may have reached the server.
pub type fleets_result = u32;

/// Success (HTTP 2xx for API calls).
pub const FLEETS_OK: fleets_result = 0;
/// A required pointer argument was NULL. Nothing was sent.
pub const FLEETS_ERR_NULL_ARGUMENT: fleets_result = 100;
/// Bad UTF-8, bad identifier, unknown enum value or bad length. Nothing was sent.
pub const FLEETS_ERR_INVALID_ARGUMENT: fleets_result = 101;
/// A `*_json` argument is not JSON of the documented type: every one must be a single JSON
/// object, without lone surrogate escapes (`\ud800`), nested at most 100 levels deep (the
/// object itself is level 1; `{"a":[1]}` is 2). Nothing was sent.
pub const FLEETS_ERR_INVALID_JSON: fleets_result = 102;
/// The output did not fit the caller's buffer; `*out_len` holds the size needed (without
/// the NUL). For API calls the request WAS performed: `fleets_last_response()` returns it.
pub const FLEETS_ERR_BUFFER_TOO_SMALL: fleets_result = 103;
/// Bad endpoint URL, unreadable CA file or one without a usable certificate, `http://` to a
/// non-loopback host, missing environment variable.
pub const FLEETS_ERR_INVALID_CONFIG: fleets_result = 104;
/// A JSON pointer names no value (JSON helpers).
pub const FLEETS_ERR_JSON_NO_VALUE: fleets_result = 105;
/// A JSON value exists but has another type (JSON helpers).
pub const FLEETS_ERR_JSON_TYPE: fleets_result = 106;
/// An application callback asked to stop: a download's progress callback returned false.
/// Requests may have been sent; a download keeps its `.part` file and resumes next time.
pub const FLEETS_ERR_CANCELED: fleets_result = 107;
/// DNS failure, connection refused, host unreachable.
pub const FLEETS_ERR_CONNECT: fleets_result = 200;
/// TLS handshake or certificate verification failed.
pub const FLEETS_ERR_TLS: fleets_result = 201;
/// The connect timeout or the request deadline expired.
pub const FLEETS_ERR_TIMEOUT: fleets_result = 202;
/// Connection broken mid-request, truncated body, or a reply that is not HTTP.
pub const FLEETS_ERR_IO: fleets_result = 203;
/// HTTP 400: the server rejected the request.
pub const FLEETS_ERR_BAD_REQUEST: fleets_result = 300;
/// HTTP 401: wrong or missing API key/secret.
pub const FLEETS_ERR_UNAUTHORIZED: fleets_result = 301;
/// HTTP 403.
pub const FLEETS_ERR_FORBIDDEN: fleets_result = 302;
/// HTTP 404: unknown thing, job or command execution.
pub const FLEETS_ERR_NOT_FOUND: fleets_result = 303;
/// HTTP 409: version mismatch or invalid state transition.
pub const FLEETS_ERR_CONFLICT: fleets_result = 304;
/// HTTP 413: request body too large.
pub const FLEETS_ERR_PAYLOAD_TOO_LARGE: fleets_result = 305;
/// HTTP 429: rate limited.
pub const FLEETS_ERR_RATE_LIMITED: fleets_result = 306;
/// HTTP 5xx.
pub const FLEETS_ERR_SERVER: fleets_result = 307;
/// Any other non-2xx status, including a 3xx redirect (never followed).
pub const FLEETS_ERR_HTTP: fleets_result = 308;
/// A 2xx response whose body is not JSON, or a response over the size limit.
pub const FLEETS_ERR_BAD_RESPONSE: fleets_result = 309;
/// `fleets_download`: the downloaded file's SHA-256 is not the expected one (after one
/// fresh download from the start). Nothing was installed and the partial file was removed.
pub const FLEETS_ERR_HASH_MISMATCH: fleets_result = 310;
/// `fleets_download` with `FLEETS_DOWNLOAD_NO_RESTART`: the download had to resume, but the
/// server answered the `Range` request with the whole file (no range support, or the file
/// changed). The partial file is kept.
pub const FLEETS_ERR_RANGE_NOT_SUPPORTED: fleets_result = 311;
/// Outbox: reading, writing or syncing its files failed (disk full, read-only file system,
/// I/O error). An enqueue that returns it did not store the record.
pub const FLEETS_ERR_STORAGE_IO: fleets_result = 400;
/// Outbox: the record does not fit in `max_bytes` and the full policy refuses it (or no
/// event is left to drop). Nothing was stored.
pub const FLEETS_ERR_OUTBOX_FULL: fleets_result = 401;
/// Outbox: another handle, in this process or another, has the directory open (it holds the
/// directory's `LOCK` file). Close it first; the lock is released when its process exits.
pub const FLEETS_ERR_OUTBOX_LOCKED: fleets_result = 402;
/// Outbox: the directory holds outbox files this library cannot use (written by a newer
/// format version). They are left untouched.
pub const FLEETS_ERR_OUTBOX_CORRUPT: fleets_result = 403;
/// Workflows: local storage is full (`ENOSPC`, `EDQUOT`) while writing a state file or a
/// download. Partial downloads are kept so that the download resumes once space is freed.
/// Requests may have been sent before (the outbox reports a full disk as
/// `FLEETS_ERR_STORAGE_IO`).
pub const FLEETS_ERR_DISK_FULL: fleets_result = 420;
/// Workflows: a local file (a state file, a download) could not be created, read, written,
/// synced or renamed, for a reason other than a full disk (permissions, I/O error, a missing
/// directory, a state file that is not ours); the message names the file. Requests may have
/// been sent before.
pub const FLEETS_ERR_LOCAL_FILE: fleets_result = 421;
/// A bug: a panic was caught at the C boundary. Never returned by a library built with the
/// `device` cargo profile (panic = "abort"): there a panic aborts the process.
pub const FLEETS_ERR_PANIC: fleets_result = 900;
/// A bug or resource exhaustion that has no better code.
pub const FLEETS_ERR_INTERNAL: fleets_result = 901;

/// The largest response limit `fleets_config_set_max_response_bytes` accepts (16 MiB).
pub const FLEETS_MAX_RESPONSE_BYTES_LIMIT: usize = 16777216;

/// Severity of an event (`fleets_event_publish`).
pub type fleets_severity = u32;
/// No severity: the field is left out of the event.
pub const FLEETS_SEVERITY_UNSET: fleets_severity = 0;
/// Sent as `"info"`.
pub const FLEETS_SEVERITY_INFO: fleets_severity = 1;
/// Sent as `"warn"`.
pub const FLEETS_SEVERITY_WARN: fleets_severity = 2;
/// Sent as `"error"`.
pub const FLEETS_SEVERITY_ERROR: fleets_severity = 3;

/// Status reported for a command execution or a job execution.
pub type fleets_execution_status = u32;
/// Sent as `"IN_PROGRESS"`.
pub const FLEETS_EXECUTION_IN_PROGRESS: fleets_execution_status = 1;
/// Sent as `"SUCCEEDED"`.
pub const FLEETS_EXECUTION_SUCCEEDED: fleets_execution_status = 2;
/// Sent as `"FAILED"`.
pub const FLEETS_EXECUTION_FAILED: fleets_execution_status = 3;
/// Sent as `"REJECTED"`.
pub const FLEETS_EXECUTION_REJECTED: fleets_execution_status = 4;

/// Client configuration (opaque). Created by `fleets_config_new` or
/// `fleets_config_from_env`, freed by `fleets_config_free`. Not thread-safe: use one
/// configuration from one thread at a time. It is only read by `fleets_client_new` and may
/// be freed right after.
pub struct fleets_config {
    pub(crate) inner: Config,
}

/// Client configuration handle; see `struct fleets_config`.
pub type fleets_config_t = fleets_config;

/// A client (opaque): a pool of keep-alive HTTPS connections to one endpoint. Created by
/// `fleets_client_new`, freed by `fleets_client_free`. Safe to use from many threads at
/// once; free it only when no call on it is running.
pub struct fleets_client {
    pub(crate) inner: Client,
}

/// Client handle; see `struct fleets_client`.
pub type fleets_client_t = fleets_client;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    #[test]
    fn constants_equal_the_safe_codes() {
        let table = [
            (FLEETS_ERR_NULL_ARGUMENT, ErrorCode::NullArgument),
            (FLEETS_ERR_INVALID_ARGUMENT, ErrorCode::InvalidArgument),
            (FLEETS_ERR_INVALID_JSON, ErrorCode::InvalidJson),
            (FLEETS_ERR_BUFFER_TOO_SMALL, ErrorCode::BufferTooSmall),
            (FLEETS_ERR_INVALID_CONFIG, ErrorCode::InvalidConfig),
            (FLEETS_ERR_JSON_NO_VALUE, ErrorCode::JsonNoValue),
            (FLEETS_ERR_JSON_TYPE, ErrorCode::JsonType),
            (FLEETS_ERR_CANCELED, ErrorCode::Canceled),
            (FLEETS_ERR_CONNECT, ErrorCode::Connect),
            (FLEETS_ERR_TLS, ErrorCode::Tls),
            (FLEETS_ERR_TIMEOUT, ErrorCode::Timeout),
            (FLEETS_ERR_IO, ErrorCode::Io),
            (FLEETS_ERR_BAD_REQUEST, ErrorCode::BadRequest),
            (FLEETS_ERR_UNAUTHORIZED, ErrorCode::Unauthorized),
            (FLEETS_ERR_FORBIDDEN, ErrorCode::Forbidden),
            (FLEETS_ERR_NOT_FOUND, ErrorCode::NotFound),
            (FLEETS_ERR_CONFLICT, ErrorCode::Conflict),
            (FLEETS_ERR_PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            (FLEETS_ERR_RATE_LIMITED, ErrorCode::RateLimited),
            (FLEETS_ERR_SERVER, ErrorCode::Server),
            (FLEETS_ERR_HTTP, ErrorCode::Http),
            (FLEETS_ERR_BAD_RESPONSE, ErrorCode::BadResponse),
            (FLEETS_ERR_HASH_MISMATCH, ErrorCode::HashMismatch),
            (FLEETS_ERR_RANGE_NOT_SUPPORTED, ErrorCode::RangeNotSupported),
            (FLEETS_ERR_STORAGE_IO, ErrorCode::StorageIo),
            (FLEETS_ERR_OUTBOX_FULL, ErrorCode::OutboxFull),
            (FLEETS_ERR_OUTBOX_LOCKED, ErrorCode::OutboxLocked),
            (FLEETS_ERR_OUTBOX_CORRUPT, ErrorCode::OutboxCorrupt),
            (FLEETS_ERR_DISK_FULL, ErrorCode::DiskFull),
            (FLEETS_ERR_LOCAL_FILE, ErrorCode::LocalFile),
            (FLEETS_ERR_PANIC, ErrorCode::Panic),
            (FLEETS_ERR_INTERNAL, ErrorCode::Internal),
        ];
        assert_eq!(table.len(), ErrorCode::ALL.len());
        assert_eq!(
            FLEETS_MAX_RESPONSE_BYTES_LIMIT,
            crate::MAX_RESPONSE_BYTES_LIMIT
        );
        for (constant, code) in table {
            assert_eq!(constant, code as u32, "{code}");
        }
        for (constant, severity) in [
            (FLEETS_SEVERITY_INFO, crate::Severity::Info),
            (FLEETS_SEVERITY_WARN, crate::Severity::Warn),
            (FLEETS_SEVERITY_ERROR, crate::Severity::Error),
        ] {
            assert_eq!(crate::Severity::from_raw(constant), Some(severity));
        }
        assert_eq!(crate::Severity::from_raw(FLEETS_SEVERITY_UNSET), None);
        for (constant, status) in [
            (
                FLEETS_EXECUTION_IN_PROGRESS,
                crate::ExecutionStatus::InProgress,
            ),
            (
                FLEETS_EXECUTION_SUCCEEDED,
                crate::ExecutionStatus::Succeeded,
            ),
            (FLEETS_EXECUTION_FAILED, crate::ExecutionStatus::Failed),
            (FLEETS_EXECUTION_REJECTED, crate::ExecutionStatus::Rejected),
        ] {
            assert_eq!(crate::ExecutionStatus::from_raw(constant), Some(status));
        }
    }
}
