//go:build cgo

package fleets

/*
#include <stdlib.h>
#include <fleets.h>
*/
import "C"

import "unsafe"

// The constants of errors.go and types.go are written out for the documentation and for
// builds without cgo. Here the compiler checks them against the fleets.h this package is
// built with: a line below fails to compile ("index ... out of bounds", "must not be
// negative" or "overflows") when the Go constant differs from the C one. codes_test.go also
// checks that every FLEETS_* constant of the header has a Go counterpart.
func _() {
	_ = [1]struct{}{}[CodeOK-C.FLEETS_OK]
	_ = [1]struct{}{}[CodeNullArgument-C.FLEETS_ERR_NULL_ARGUMENT]
	_ = [1]struct{}{}[CodeInvalidArgument-C.FLEETS_ERR_INVALID_ARGUMENT]
	_ = [1]struct{}{}[CodeInvalidJSON-C.FLEETS_ERR_INVALID_JSON]
	_ = [1]struct{}{}[CodeBufferTooSmall-C.FLEETS_ERR_BUFFER_TOO_SMALL]
	_ = [1]struct{}{}[CodeInvalidConfig-C.FLEETS_ERR_INVALID_CONFIG]
	_ = [1]struct{}{}[CodeJSONNoValue-C.FLEETS_ERR_JSON_NO_VALUE]
	_ = [1]struct{}{}[CodeJSONType-C.FLEETS_ERR_JSON_TYPE]
	_ = [1]struct{}{}[CodeCanceled-C.FLEETS_ERR_CANCELED]
	_ = [1]struct{}{}[CodeConnect-C.FLEETS_ERR_CONNECT]
	_ = [1]struct{}{}[CodeTLS-C.FLEETS_ERR_TLS]
	_ = [1]struct{}{}[CodeTimeout-C.FLEETS_ERR_TIMEOUT]
	_ = [1]struct{}{}[CodeIO-C.FLEETS_ERR_IO]
	_ = [1]struct{}{}[CodeBadRequest-C.FLEETS_ERR_BAD_REQUEST]
	_ = [1]struct{}{}[CodeUnauthorized-C.FLEETS_ERR_UNAUTHORIZED]
	_ = [1]struct{}{}[CodeForbidden-C.FLEETS_ERR_FORBIDDEN]
	_ = [1]struct{}{}[CodeNotFound-C.FLEETS_ERR_NOT_FOUND]
	_ = [1]struct{}{}[CodeConflict-C.FLEETS_ERR_CONFLICT]
	_ = [1]struct{}{}[CodePayloadTooLarge-C.FLEETS_ERR_PAYLOAD_TOO_LARGE]
	_ = [1]struct{}{}[CodeRateLimited-C.FLEETS_ERR_RATE_LIMITED]
	_ = [1]struct{}{}[CodeServer-C.FLEETS_ERR_SERVER]
	_ = [1]struct{}{}[CodeHTTP-C.FLEETS_ERR_HTTP]
	_ = [1]struct{}{}[CodeBadResponse-C.FLEETS_ERR_BAD_RESPONSE]
	_ = [1]struct{}{}[CodeHashMismatch-C.FLEETS_ERR_HASH_MISMATCH]
	_ = [1]struct{}{}[CodeRangeNotSupported-C.FLEETS_ERR_RANGE_NOT_SUPPORTED]
	_ = [1]struct{}{}[CodeDiskFull-C.FLEETS_ERR_DISK_FULL]
	_ = [1]struct{}{}[CodeLocalFile-C.FLEETS_ERR_LOCAL_FILE]
	_ = [1]struct{}{}[CodePanic-C.FLEETS_ERR_PANIC]
	_ = [1]struct{}{}[CodeInternal-C.FLEETS_ERR_INTERNAL]
	_ = [1]struct{}{}[SeverityUnset-C.FLEETS_SEVERITY_UNSET]
	_ = [1]struct{}{}[SeverityInfo-C.FLEETS_SEVERITY_INFO]
	_ = [1]struct{}{}[SeverityWarn-C.FLEETS_SEVERITY_WARN]
	_ = [1]struct{}{}[SeverityError-C.FLEETS_SEVERITY_ERROR]
	_ = [1]struct{}{}[executionInProgress-C.FLEETS_EXECUTION_IN_PROGRESS]
	_ = [1]struct{}{}[executionSucceeded-C.FLEETS_EXECUTION_SUCCEEDED]
	_ = [1]struct{}{}[executionFailed-C.FLEETS_EXECUTION_FAILED]
	_ = [1]struct{}{}[executionRejected-C.FLEETS_EXECUTION_REJECTED]
	_ = [1]struct{}{}[logOff-C.FLEETS_LOG_OFF]
	_ = [1]struct{}{}[logError-C.FLEETS_LOG_ERROR]
	_ = [1]struct{}{}[logWarn-C.FLEETS_LOG_WARN]
	_ = [1]struct{}{}[logInfo-C.FLEETS_LOG_INFO]
	_ = [1]struct{}{}[logDebug-C.FLEETS_LOG_DEBUG]
}

// resultName is fleets_result_name: the library's name for a result code.
func resultName(c Code) string {
	return C.GoString(C.fleets_result_name(C.fleets_result(c)))
}

// RequestSent reports whether the failed call may have delivered its request to the server
// (fleets_result_request_sent). It is false only when the request certainly was not sent:
// an argument or setting refused before sending (ErrInvalidArgument, ErrInvalidJSON,
// ErrInvalidConfig), a connection that could not be made (ErrConnect) or a failed TLS
// handshake (ErrTLS), so that sending it again cannot make a duplicate. It is true for
// timeouts and broken connections (the server may have acted on the request), every HTTP
// error status, and internal errors.
func (e *Error) RequestSent() bool {
	return bool(C.fleets_result_request_sent(C.fleets_result(e.Code)))
}

// setMaxResponseBytesResult is what fleets_config_set_max_response_bytes answers for n (for
// the test that MaxResponseBytesLimit agrees with the library).
func setMaxResponseBytesResult(n uint64) Code {
	var conf *C.fleets_config_t
	endpoint, key, secret := C.CString("https://127.0.0.1:1"), C.CString("k"), C.CString("s")
	defer C.free(unsafe.Pointer(endpoint))
	defer C.free(unsafe.Pointer(key))
	defer C.free(unsafe.Pointer(secret))
	if rc := C.fleets_config_new(endpoint, key, secret, &conf); rc != C.FLEETS_OK {
		return Code(rc)
	}
	defer C.fleets_config_free(conf)
	return Code(C.fleets_config_set_max_response_bytes(conf, C.size_t(n)))
}
