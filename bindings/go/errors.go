package fleets

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Code is a libfleets result code (the FLEETS_* constants of fleets.h). The values are
// stable and never reused.
type Code uint32

// Result codes, identical to the C constants of the same name. They are written out here,
// for the documentation and for builds without cgo; codes_cgo.go makes the build fail when
// one differs from fleets.h, and codes_test.go checks that every FLEETS_ERR_* of the
// header has a constant and a name.
const (
	CodeOK                Code = 0   // FLEETS_OK
	CodeNullArgument      Code = 100 // FLEETS_ERR_NULL_ARGUMENT: a required C pointer was NULL
	CodeInvalidArgument   Code = 101 // FLEETS_ERR_INVALID_ARGUMENT: bad identifier, enum value or length
	CodeInvalidJSON       Code = 102 // FLEETS_ERR_INVALID_JSON: a JSON argument is not JSON of the documented type
	CodeBufferTooSmall    Code = 103 // FLEETS_ERR_BUFFER_TOO_SMALL: handled inside this package
	CodeInvalidConfig     Code = 104 // FLEETS_ERR_INVALID_CONFIG: bad endpoint, CA, client certificate, proxy, retry policy or environment
	CodeJSONNoValue       Code = 105 // FLEETS_ERR_JSON_NO_VALUE (C JSON helpers only)
	CodeJSONType          Code = 106 // FLEETS_ERR_JSON_TYPE (C JSON helpers only)
	CodeCanceled          Code = 107 // FLEETS_ERR_CANCELED: a callback stopped a workflow (a download's Progress returned false)
	CodeConnect           Code = 200 // FLEETS_ERR_CONNECT: DNS failure, connection refused, unreachable
	CodeTLS               Code = 201 // FLEETS_ERR_TLS: handshake or certificate verification failed
	CodeTimeout           Code = 202 // FLEETS_ERR_TIMEOUT: connect timeout or request deadline expired
	CodeIO                Code = 203 // FLEETS_ERR_IO: connection broken, truncated body, not HTTP
	CodeBadRequest        Code = 300 // FLEETS_ERR_BAD_REQUEST: HTTP 400
	CodeUnauthorized      Code = 301 // FLEETS_ERR_UNAUTHORIZED: HTTP 401
	CodeForbidden         Code = 302 // FLEETS_ERR_FORBIDDEN: HTTP 403
	CodeNotFound          Code = 303 // FLEETS_ERR_NOT_FOUND: HTTP 404
	CodeConflict          Code = 304 // FLEETS_ERR_CONFLICT: HTTP 409
	CodePayloadTooLarge   Code = 305 // FLEETS_ERR_PAYLOAD_TOO_LARGE: HTTP 413
	CodeRateLimited       Code = 306 // FLEETS_ERR_RATE_LIMITED: HTTP 429
	CodeServer            Code = 307 // FLEETS_ERR_SERVER: HTTP 5xx
	CodeHTTP              Code = 308 // FLEETS_ERR_HTTP: any other non-2xx status (redirects are not followed)
	CodeBadResponse       Code = 309 // FLEETS_ERR_BAD_RESPONSE: 2xx body not JSON, or over the size limit
	CodeHashMismatch      Code = 310 // FLEETS_ERR_HASH_MISMATCH: a downloaded file's SHA-256 is not the expected one
	CodeRangeNotSupported Code = 311 // FLEETS_ERR_RANGE_NOT_SUPPORTED: a resumed download got the whole file (NoRestart)
	CodeStorageIO         Code = 400 // FLEETS_ERR_STORAGE_IO: the outbox could not read, write or sync its files
	CodeOutboxFull        Code = 401 // FLEETS_ERR_OUTBOX_FULL: the record does not fit in the outbox's MaxBytes
	CodeOutboxLocked      Code = 402 // FLEETS_ERR_OUTBOX_LOCKED: another handle has the outbox directory open
	CodeOutboxCorrupt     Code = 403 // FLEETS_ERR_OUTBOX_CORRUPT: outbox files of a newer format (left untouched)
	CodeDiskFull          Code = 420 // FLEETS_ERR_DISK_FULL: a workflow's local storage is full
	CodeLocalFile         Code = 421 // FLEETS_ERR_LOCAL_FILE: a workflow's state file or download could not be read or written
	CodePanic             Code = 900 // FLEETS_ERR_PANIC: a bug in libfleets
	CodeInternal          Code = 901 // FLEETS_ERR_INTERNAL: a bug or resource exhaustion
)

var codeNames = map[Code]string{
	CodeOK:                "FLEETS_OK",
	CodeNullArgument:      "FLEETS_ERR_NULL_ARGUMENT",
	CodeInvalidArgument:   "FLEETS_ERR_INVALID_ARGUMENT",
	CodeInvalidJSON:       "FLEETS_ERR_INVALID_JSON",
	CodeBufferTooSmall:    "FLEETS_ERR_BUFFER_TOO_SMALL",
	CodeInvalidConfig:     "FLEETS_ERR_INVALID_CONFIG",
	CodeJSONNoValue:       "FLEETS_ERR_JSON_NO_VALUE",
	CodeJSONType:          "FLEETS_ERR_JSON_TYPE",
	CodeCanceled:          "FLEETS_ERR_CANCELED",
	CodeConnect:           "FLEETS_ERR_CONNECT",
	CodeTLS:               "FLEETS_ERR_TLS",
	CodeTimeout:           "FLEETS_ERR_TIMEOUT",
	CodeIO:                "FLEETS_ERR_IO",
	CodeBadRequest:        "FLEETS_ERR_BAD_REQUEST",
	CodeUnauthorized:      "FLEETS_ERR_UNAUTHORIZED",
	CodeForbidden:         "FLEETS_ERR_FORBIDDEN",
	CodeNotFound:          "FLEETS_ERR_NOT_FOUND",
	CodeConflict:          "FLEETS_ERR_CONFLICT",
	CodePayloadTooLarge:   "FLEETS_ERR_PAYLOAD_TOO_LARGE",
	CodeRateLimited:       "FLEETS_ERR_RATE_LIMITED",
	CodeServer:            "FLEETS_ERR_SERVER",
	CodeHTTP:              "FLEETS_ERR_HTTP",
	CodeBadResponse:       "FLEETS_ERR_BAD_RESPONSE",
	CodeHashMismatch:      "FLEETS_ERR_HASH_MISMATCH",
	CodeRangeNotSupported: "FLEETS_ERR_RANGE_NOT_SUPPORTED",
	CodeStorageIO:         "FLEETS_ERR_STORAGE_IO",
	CodeOutboxFull:        "FLEETS_ERR_OUTBOX_FULL",
	CodeOutboxLocked:      "FLEETS_ERR_OUTBOX_LOCKED",
	CodeOutboxCorrupt:     "FLEETS_ERR_OUTBOX_CORRUPT",
	CodeDiskFull:          "FLEETS_ERR_DISK_FULL",
	CodeLocalFile:         "FLEETS_ERR_LOCAL_FILE",
	CodePanic:             "FLEETS_ERR_PANIC",
	CodeInternal:          "FLEETS_ERR_INTERNAL",
}

// String returns the C constant's name, e.g. "FLEETS_ERR_TIMEOUT", or "Code(N)" for a
// value that is not a known result code.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "Code(" + strconv.FormatUint(uint64(c), 10) + ")"
}

// Error is the error type of every failed call. Use [errors.As] to inspect it and
// [errors.Is] with the sentinel errors (ErrNotFound, ...) to match its Code.
type Error struct {
	// Code is the libfleets result code.
	Code Code
	// HTTPStatus is the status of the response, 0 when no response was received (transport
	// failures, or arguments rejected before anything was sent).
	HTTPStatus int
	// Message is a human-readable description naming the phase that failed. It may quote
	// the server, but never shows a credential: the API secret, base64(key:secret) (an echoed
	// Authorization header), the proxy password and URLs with a password are replaced by
	// REDACTED (a secret shorter than 8 bytes only where it stands alone, not inside a
	// word), and control characters (C0, DEL, C1) are escaped as \xNN.
	Message string
	// Body is the response body the server sent with an error status (usually JSON
	// {"code","message",...}), nil when there was none. It is the server's bytes as
	// received, not scrubbed: log it with care. %#v of an *Error shows only its length.
	Body []byte
	// RetryAfter is the wait the last response asked for with a Retry-After header (HTTP
	// 429 or 503, in seconds or as an HTTP date), 0 when it had none. libfleets already
	// honours it between its own attempts (see RetryPolicy); it is for the caller's
	// decision once those are exhausted or disabled.
	RetryAfter time.Duration

	err error // underlying Go error, if any (e.g. from encoding/json)
}

// Error implements the error interface: "fleets: <CODE NAME>: <message>".
func (e *Error) Error() string {
	if e.Message == "" {
		return "fleets: " + e.Code.String()
	}
	return "fleets: " + e.Code.String() + ": " + e.Message
}

// GoString, for %#v, shows the fields without the Body's content (the server's bytes, which
// are not scrubbed; see Body), e.g.
// &fleets.Error{Code:FLEETS_ERR_NOT_FOUND HTTPStatus:404 Message:"..." Body:(42 bytes) RetryAfter:0s}.
func (e *Error) GoString() string {
	return fmt.Sprintf("&fleets.Error{Code:%v HTTPStatus:%d Message:%q Body:(%d bytes) RetryAfter:%v}",
		e.Code, e.HTTPStatus, e.Message, len(e.Body), e.RetryAfter)
}

// Is reports whether target is a sentinel (or any *Error) with the same Code, so that
// errors.Is(err, fleets.ErrNotFound) works. ErrInvalidArgument also matches
// CodeNullArgument, and ErrInternal also matches CodePanic.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	switch {
	case t.Code == e.Code:
		return true
	case t.Code == CodeInvalidArgument && e.Code == CodeNullArgument:
		return true
	case t.Code == CodeInternal && e.Code == CodePanic:
		return true
	}
	return false
}

// Unwrap returns the underlying Go error, if any (for example a *json.UnsupportedTypeError
// when a value could not be encoded).
func (e *Error) Unwrap() error { return e.err }

func sentinel(c Code, msg string) *Error { return &Error{Code: c, Message: msg} }

// Sentinel errors, for use with errors.Is. Each matches every *Error with its Code.
var (
	ErrInvalidArgument   = sentinel(CodeInvalidArgument, "invalid argument")
	ErrInvalidJSON       = sentinel(CodeInvalidJSON, "invalid JSON argument")
	ErrInvalidConfig     = sentinel(CodeInvalidConfig, "invalid configuration")
	ErrConnect           = sentinel(CodeConnect, "cannot connect")
	ErrTLS               = sentinel(CodeTLS, "TLS failure")
	ErrTimeout           = sentinel(CodeTimeout, "timed out")
	ErrIO                = sentinel(CodeIO, "connection failure")
	ErrBadRequest        = sentinel(CodeBadRequest, "bad request")
	ErrUnauthorized      = sentinel(CodeUnauthorized, "unauthorized")
	ErrForbidden         = sentinel(CodeForbidden, "forbidden")
	ErrNotFound          = sentinel(CodeNotFound, "not found")
	ErrConflict          = sentinel(CodeConflict, "conflict")
	ErrPayloadTooLarge   = sentinel(CodePayloadTooLarge, "payload too large")
	ErrRateLimited       = sentinel(CodeRateLimited, "rate limited")
	ErrServer            = sentinel(CodeServer, "server error")
	ErrHTTP              = sentinel(CodeHTTP, "unexpected HTTP status")
	ErrBadResponse       = sentinel(CodeBadResponse, "bad response")
	ErrInternal          = sentinel(CodeInternal, "internal error")
	ErrStorageIO         = sentinel(CodeStorageIO, "outbox storage failure")
	ErrOutboxFull        = sentinel(CodeOutboxFull, "outbox full")
	ErrOutboxLocked      = sentinel(CodeOutboxLocked, "outbox directory in use")
	ErrOutboxCorrupt     = sentinel(CodeOutboxCorrupt, "outbox files of a newer format")
	ErrCanceled          = sentinel(CodeCanceled, "canceled by a callback")
	ErrHashMismatch      = sentinel(CodeHashMismatch, "hash mismatch")
	ErrRangeNotSupported = sentinel(CodeRangeNotSupported, "range not supported")
	ErrDiskFull          = sentinel(CodeDiskFull, "disk full")
	ErrLocalFile         = sentinel(CodeLocalFile, "local file failure")
)

// ErrClosed is returned by calls on a Client after Close.
var ErrClosed = errors.New("fleets: client is closed")

// Temporary reports whether retrying the same call later may succeed: connect failures,
// timeouts, broken connections, HTTP 429 and 5xx. libfleets may already have retried the
// call (Config.Retry); wait at least RetryAfter, when set, before trying again.
func (e *Error) Temporary() bool {
	switch e.Code {
	case CodeConnect, CodeTimeout, CodeIO, CodeRateLimited, CodeServer:
		return true
	}
	return false
}

func invalidConfig(msg string) *Error {
	return &Error{Code: CodeInvalidConfig, Message: msg}
}

func invalidArg(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}
