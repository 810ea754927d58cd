//! Errors of the safe API, and the stable result codes they map to in the C ABI.

use std::fmt;
use std::time::Duration;

/// Stable numeric result codes, identical to the `FLEETS_*` constants of the C ABI.
///
/// Values are never reused; `include/fleets.h` documents them (the C contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// A required pointer was NULL (C ABI only).
    NullArgument = 100,
    /// Bad UTF-8, bad identifier, unknown enum value, bad length.
    InvalidArgument = 101,
    /// A JSON input is not JSON of the documented type.
    InvalidJson = 102,
    /// The response did not fit the caller's buffer (C ABI only).
    BufferTooSmall = 103,
    /// Bad endpoint URL, unreadable or empty CA file, `http://` to a remote host.
    InvalidConfig = 104,
    /// A JSON pointer names no value.
    JsonNoValue = 105,
    /// A JSON value exists but has another type.
    JsonType = 106,
    /// An application callback asked to stop (a download's progress callback).
    Canceled = 107,
    /// DNS failure, connection refused, host unreachable.
    Connect = 200,
    /// TLS handshake or certificate verification failed.
    Tls = 201,
    /// Connect or request deadline expired.
    Timeout = 202,
    /// Connection broken mid-request, truncated body, not HTTP.
    Io = 203,
    /// HTTP 400.
    BadRequest = 300,
    /// HTTP 401.
    Unauthorized = 301,
    /// HTTP 403.
    Forbidden = 302,
    /// HTTP 404.
    NotFound = 303,
    /// HTTP 409.
    Conflict = 304,
    /// HTTP 413.
    PayloadTooLarge = 305,
    /// HTTP 429.
    RateLimited = 306,
    /// HTTP 5xx.
    Server = 307,
    /// Any other non-2xx status.
    Http = 308,
    /// A 2xx body that is not JSON, or a body over the size limit.
    BadResponse = 309,
    /// A downloaded file's SHA-256 is not the expected one.
    HashMismatch = 310,
    /// A download had to resume, the server ignored the `Range` request, and starting over
    /// was not allowed.
    RangeNotSupported = 311,
    /// Reading, writing or syncing the outbox's files failed (disk full, read-only, I/O error).
    StorageIo = 400,
    /// The outbox is full: the record does not fit in `max_bytes` under the full policy.
    OutboxFull = 401,
    /// Another handle (in this process or another) has the outbox directory open.
    OutboxLocked = 402,
    /// The outbox directory holds files this library cannot read (e.g. from a newer format).
    OutboxCorrupt = 403,
    /// A workflow's local storage is full (`ENOSPC`, `EDQUOT`): a state file or a download.
    DiskFull = 420,
    /// A workflow's local file (a state file, a download) could not be created, read,
    /// written, synced or renamed, for another reason than a full disk.
    LocalFile = 421,
    /// A panic was caught at the C boundary (a bug).
    Panic = 900,
    /// A bug or resource exhaustion with no better code.
    Internal = 901,
}

impl ErrorCode {
    /// Every code, in value order.
    pub const ALL: [ErrorCode; 32] = [
        ErrorCode::NullArgument,
        ErrorCode::InvalidArgument,
        ErrorCode::InvalidJson,
        ErrorCode::BufferTooSmall,
        ErrorCode::InvalidConfig,
        ErrorCode::JsonNoValue,
        ErrorCode::JsonType,
        ErrorCode::Canceled,
        ErrorCode::Connect,
        ErrorCode::Tls,
        ErrorCode::Timeout,
        ErrorCode::Io,
        ErrorCode::BadRequest,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited,
        ErrorCode::Server,
        ErrorCode::Http,
        ErrorCode::BadResponse,
        ErrorCode::HashMismatch,
        ErrorCode::RangeNotSupported,
        ErrorCode::StorageIo,
        ErrorCode::OutboxFull,
        ErrorCode::OutboxLocked,
        ErrorCode::OutboxCorrupt,
        ErrorCode::DiskFull,
        ErrorCode::LocalFile,
        ErrorCode::Panic,
        ErrorCode::Internal,
    ];

    /// The C constant's name, e.g. `"FLEETS_ERR_TIMEOUT"`.
    pub fn name(self) -> &'static str {
        // The names are ASCII literals, so this conversion cannot fail.
        self.c_name().to_str().unwrap_or("FLEETS_ERR_UNKNOWN")
    }

    /// The C constant's name as a static C string.
    pub fn c_name(self) -> &'static std::ffi::CStr {
        match self {
            ErrorCode::NullArgument => c"FLEETS_ERR_NULL_ARGUMENT",
            ErrorCode::InvalidArgument => c"FLEETS_ERR_INVALID_ARGUMENT",
            ErrorCode::InvalidJson => c"FLEETS_ERR_INVALID_JSON",
            ErrorCode::BufferTooSmall => c"FLEETS_ERR_BUFFER_TOO_SMALL",
            ErrorCode::InvalidConfig => c"FLEETS_ERR_INVALID_CONFIG",
            ErrorCode::JsonNoValue => c"FLEETS_ERR_JSON_NO_VALUE",
            ErrorCode::JsonType => c"FLEETS_ERR_JSON_TYPE",
            ErrorCode::Canceled => c"FLEETS_ERR_CANCELED",
            ErrorCode::Connect => c"FLEETS_ERR_CONNECT",
            ErrorCode::Tls => c"FLEETS_ERR_TLS",
            ErrorCode::Timeout => c"FLEETS_ERR_TIMEOUT",
            ErrorCode::Io => c"FLEETS_ERR_IO",
            ErrorCode::BadRequest => c"FLEETS_ERR_BAD_REQUEST",
            ErrorCode::Unauthorized => c"FLEETS_ERR_UNAUTHORIZED",
            ErrorCode::Forbidden => c"FLEETS_ERR_FORBIDDEN",
            ErrorCode::NotFound => c"FLEETS_ERR_NOT_FOUND",
            ErrorCode::Conflict => c"FLEETS_ERR_CONFLICT",
            ErrorCode::PayloadTooLarge => c"FLEETS_ERR_PAYLOAD_TOO_LARGE",
            ErrorCode::RateLimited => c"FLEETS_ERR_RATE_LIMITED",
            ErrorCode::Server => c"FLEETS_ERR_SERVER",
            ErrorCode::Http => c"FLEETS_ERR_HTTP",
            ErrorCode::BadResponse => c"FLEETS_ERR_BAD_RESPONSE",
            ErrorCode::HashMismatch => c"FLEETS_ERR_HASH_MISMATCH",
            ErrorCode::RangeNotSupported => c"FLEETS_ERR_RANGE_NOT_SUPPORTED",
            ErrorCode::DiskFull => c"FLEETS_ERR_DISK_FULL",
            ErrorCode::LocalFile => c"FLEETS_ERR_LOCAL_FILE",
            ErrorCode::StorageIo => c"FLEETS_ERR_STORAGE_IO",
            ErrorCode::OutboxFull => c"FLEETS_ERR_OUTBOX_FULL",
            ErrorCode::OutboxLocked => c"FLEETS_ERR_OUTBOX_LOCKED",
            ErrorCode::OutboxCorrupt => c"FLEETS_ERR_OUTBOX_CORRUPT",
            ErrorCode::Panic => c"FLEETS_ERR_PANIC",
            ErrorCode::Internal => c"FLEETS_ERR_INTERNAL",
        }
    }

    /// Whether a call that ended with this code may have delivered its request to the server:
    /// false only when it certainly did not (refused arguments, no connection, TLS failure),
    /// so that sending it again cannot make a duplicate.
    pub fn request_sent(self) -> bool {
        !matches!(
            self,
            ErrorCode::NullArgument
                | ErrorCode::InvalidArgument
                | ErrorCode::InvalidJson
                | ErrorCode::InvalidConfig
                | ErrorCode::JsonNoValue
                | ErrorCode::JsonType
                | ErrorCode::Connect
                | ErrorCode::Tls
                | ErrorCode::StorageIo
                | ErrorCode::OutboxFull
                | ErrorCode::OutboxLocked
                | ErrorCode::OutboxCorrupt
        )
    }

    /// The code for a raw value, if it is one.
    pub fn from_raw(raw: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| *c as u32 == raw)
    }

    /// The code for a non-2xx HTTP status.
    pub fn from_http_status(status: u16) -> ErrorCode {
        match status {
            400 => ErrorCode::BadRequest,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            409 => ErrorCode::Conflict,
            413 => ErrorCode::PayloadTooLarge,
            429 => ErrorCode::RateLimited,
            500..=599 => ErrorCode::Server,
            _ => ErrorCode::Http,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed call: what kind of failure, a human-readable message, and for HTTP errors the
/// status and the body the server sent.
///
/// Messages never contain the API secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    http_status: u16,
    body: Option<String>,
    retry_after: Option<Duration>,
    transient: bool,
    stale_connection: bool,
}

impl Error {
    /// An error without an HTTP response.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error {
            code,
            message: message.into(),
            http_status: 0,
            body: None,
            retry_after: None,
            transient: false,
            stale_connection: false,
        }
    }

    /// An error for a non-2xx response (or a 2xx response that could not be used).
    pub fn http(code: ErrorCode, status: u16, message: String, body: String) -> Error {
        Error {
            code,
            message,
            http_status: status,
            body: Some(body),
            retry_after: None,
            transient: false,
            stale_connection: false,
        }
    }

    /// Marks a failure that may go away if the request is repeated.
    pub(crate) fn transient(mut self, retry_after: Option<Duration>) -> Error {
        self.transient = true;
        self.retry_after = retry_after;
        self
    }

    pub(crate) fn is_transient(&self) -> bool {
        self.transient
    }

    /// Marks a request on a reused connection that the server had closed before answering:
    /// it never reached the server's application, so a request that is safe to repeat may be
    /// sent once more on a fresh connection.
    pub(crate) fn stale_connection(mut self) -> Error {
        self.stale_connection = true;
        self
    }

    pub(crate) fn is_stale_connection(&self) -> bool {
        self.stale_connection
    }

    /// The same error with another message.
    pub(crate) fn with_message(mut self, message: String) -> Error {
        self.message = message;
        self
    }

    /// The same error with its response body changed by `f`.
    pub(crate) fn map_body(mut self, f: impl FnOnce(String) -> String) -> Error {
        self.body = self.body.map(f);
        self
    }

    /// Notes in the message how many attempts were made.
    pub(crate) fn after_attempts(mut self, attempts: u32) -> Error {
        if attempts > 1 {
            self.message = format!("{} (after {attempts} attempts)", self.message);
        }
        self
    }

    /// The wait the server asked for with `Retry-After` (429, 503), if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    pub(crate) fn invalid_config(message: impl Into<String>) -> Error {
        Error::new(ErrorCode::InvalidConfig, message)
    }

    /// The stable result code; `code() as u32` is the C ABI value.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Human-readable description of what failed and in which phase.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status of the response, 0 when no response was received.
    pub fn http_status(&self) -> u16 {
        self.http_status
    }

    /// The response body, when a response was received.
    pub fn body(&self) -> Option<&str> {
        self.body.as_deref()
    }

    /// Takes the response body out of the error (used to keep it for `fleets_last_response`).
    pub(crate) fn take_body(&mut self) -> Option<String> {
        self.body.take()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.name(), self.message)
    }
}

impl std::error::Error for Error {}

/// Result of the safe API.
pub type Result<T, E = Error> = std::result::Result<T, E>;
