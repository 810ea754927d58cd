//go:build cgo

package fleets

// The linker flags come from link_shared.go (pkg-config fleets, the default) or
// link_static.go (pkg-config fleets-static, with -tags fleets_static).

/*
#include <stdlib.h>
#include <fleets.h>
*/
import "C"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Version returns the version of the libfleets C library in use, e.g. "0.1.0".
func Version() string { return C.GoString(C.fleets_version()) }

// Client is a connection to one Fleets deployment: a pool of keep-alive HTTPS connections
// shared by every call. It is safe for concurrent use by any number of goroutines; create
// one and share it. Close releases it; a Client that becomes unreachable without Close is
// released by the garbage collector as a safety net.
type Client struct {
	mu       sync.RWMutex // calls hold it for reading, Close for writing
	h        *C.fleets_client_t
	cleanup  runtime.Cleanup
	endpoint string       // shown by String, redacted
	creds    *credentials // scrubbed from error messages; never printed
	flows    workflows    // workflows running (their callbacks may make calls): Close waits
	final    ClientStats  // the counters at Close
}

// String describes the client without credentials: "fleets.Client{https://host open}".
func (c *Client) String() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	state := "open"
	if c.h == nil {
		state = "closed"
	}
	return "fleets.Client{" + redactURL(c.endpoint) + " " + state + "}"
}

// GoString is String, for %#v.
func (c *Client) GoString() string { return c.String() }

// liveHandles counts C client handles not yet freed (for tests).
var liveHandles atomic.Int64

// NewClient creates a client for cfg. No connection is made until the first call.
// Errors: ErrInvalidConfig for a bad endpoint URL, credentials, CA, client certificate,
// proxy URL or retry policy, or for settings that exclude each other; ErrInvalidArgument for
// a string containing a NUL byte, or a negative duration or size. Error messages never
// contain the API secret or the proxy password.
func NewClient(cfg Config) (*Client, error) {
	s, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	defer s.clear()
	creds := &credentials{key: cfg.APIKey, secret: cfg.APISecret, urls: []string{cfg.Endpoint, cfg.ProxyURL}}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var conf *C.fleets_config_t
	if rc := C.fleets_config_new(ptr(s.endpoint), ptr(s.key), ptr(s.secret), &conf); rc != C.FLEETS_OK {
		return nil, lastError(rc, false, creds)
	}
	defer C.fleets_config_free(conf)
	for _, set := range []func() C.fleets_result{
		func() C.fleets_result {
			switch {
			case s.caFile != nil:
				return C.fleets_config_set_ca_file(conf, ptr(s.caFile))
			case s.caPEM != nil:
				return C.fleets_config_set_ca_pem(conf, ptr(s.caPEM))
			case cfg.UseSystemRoots:
				return C.fleets_config_use_system_roots(conf)
			}
			return C.FLEETS_OK
		},
		func() C.fleets_result {
			if s.certFile == nil {
				return C.FLEETS_OK
			}
			return C.fleets_config_set_client_cert(conf, ptr(s.certFile), ptr(s.keyFile))
		},
		func() C.fleets_result {
			if s.proxy == nil {
				return C.FLEETS_OK
			}
			return C.fleets_config_set_proxy(conf, ptr(s.proxy))
		},
		func() C.fleets_result {
			if s.connectMs == 0 && s.requestMs == 0 {
				return C.FLEETS_OK
			}
			return C.fleets_config_set_timeouts(conf, s.connectMs, s.requestMs)
		},
		func() C.fleets_result {
			if cfg.Retry == nil {
				return C.FLEETS_OK
			}
			return C.fleets_config_set_retry(conf, s.attempts, s.initialMs, s.maxMs)
		},
		func() C.fleets_result {
			if cfg.MaxResponseBytes == 0 {
				return C.FLEETS_OK
			}
			return C.fleets_config_set_max_response_bytes(conf, C.size_t(cfg.MaxResponseBytes))
		},
	} {
		if rc := set(); rc != C.FLEETS_OK {
			return nil, lastError(rc, false, creds)
		}
	}
	return newClient(conf, cfg.Endpoint, creds)
}

// settings are the C forms of a Config, checked before libfleets sees any of them.
type settings struct {
	endpoint, key, secret, caFile, caPEM, certFile, keyFile, proxy []byte
	connectMs, requestMs, attempts, initialMs, maxMs               C.uint32_t
}

// clear zeroes the copies of the secret and of the proxy URL (which may hold a password),
// so that they do not linger in the Go heap.
func (s *settings) clear() {
	clear(s.secret)
	clear(s.proxy)
}

func prepare(cfg Config) (_ *settings, err error) {
	s := &settings{}
	defer func() {
		if err != nil {
			s.clear()
		}
	}()
	if s.endpoint, err = cstr("Endpoint", cfg.Endpoint); err != nil {
		return nil, err
	}
	if s.key, err = cstr("APIKey", cfg.APIKey); err != nil {
		return nil, err
	}
	if s.secret, err = cstr("APISecret", cfg.APISecret); err != nil {
		return nil, err
	}
	trust := 0
	for _, set := range []bool{cfg.CAFile != "", cfg.CAPEM != "", cfg.UseSystemRoots} {
		if set {
			trust++
		}
	}
	if trust > 1 {
		return nil, invalidConfig("set at most one of CAFile, CAPEM and UseSystemRoots")
	}
	if s.caFile, err = cstrOpt("CAFile", cfg.CAFile); err != nil {
		return nil, err
	}
	if s.caPEM, err = cstrOpt("CAPEM", cfg.CAPEM); err != nil {
		return nil, err
	}
	if (cfg.ClientCertFile == "") != (cfg.ClientKeyFile == "") {
		return nil, invalidConfig("set both ClientCertFile and ClientKeyFile, or neither")
	}
	if s.certFile, err = cstrOpt("ClientCertFile", cfg.ClientCertFile); err != nil {
		return nil, err
	}
	if s.keyFile, err = cstrOpt("ClientKeyFile", cfg.ClientKeyFile); err != nil {
		return nil, err
	}
	if s.proxy, err = cstrOpt("ProxyURL", cfg.ProxyURL); err != nil {
		return nil, err
	}
	if s.connectMs, err = millis("ConnectTimeout", cfg.ConnectTimeout); err != nil {
		return nil, err
	}
	if s.requestMs, err = millis("Timeout", cfg.Timeout); err != nil {
		return nil, err
	}
	if r := cfg.Retry; r != nil {
		if r.MaxAttempts < 0 {
			return nil, invalidArg("Retry.MaxAttempts %d is negative", r.MaxAttempts)
		}
		// Larger values are for libfleets to refuse (ErrInvalidConfig, at most 10).
		s.attempts = C.uint32_t(min(r.MaxAttempts, math.MaxInt32))
		if s.initialMs, err = millis("Retry.InitialBackoff", r.InitialBackoff); err != nil {
			return nil, err
		}
		if s.maxMs, err = millis("Retry.MaxBackoff", r.MaxBackoff); err != nil {
			return nil, err
		}
	}
	if cfg.MaxResponseBytes < 0 {
		return nil, invalidArg("MaxResponseBytes %d is negative", cfg.MaxResponseBytes)
	}
	if cfg.MaxResponseBytes > MaxResponseBytesLimit {
		return nil, invalidConfig(fmt.Sprintf("MaxResponseBytes %d is over the limit of %d (16 MiB)", cfg.MaxResponseBytes, MaxResponseBytesLimit))
	}
	return s, nil
}

// NewClientFromEnv creates a client from the environment variables FLEETS_ENDPOINT,
// FLEETS_API_KEY, FLEETS_API_SECRET and, when set and non-empty, FLEETS_CA_FILE, with the
// library defaults for everything else (timeouts, retries, response limit). A proxy comes
// from HTTPS_PROXY (lower-case name accepted) unless NO_PROXY names the endpoint's host; a
// loopback endpoint never uses a proxy. A missing variable is ErrInvalidConfig (the message
// names it).
func NewClientFromEnv() (*Client, error) {
	endpoint := os.Getenv("FLEETS_ENDPOINT")
	creds := &credentials{key: os.Getenv("FLEETS_API_KEY"), secret: os.Getenv("FLEETS_API_SECRET"),
		urls: []string{endpoint, os.Getenv("HTTPS_PROXY"), os.Getenv("https_proxy"), os.Getenv("HTTP_PROXY"), os.Getenv("http_proxy")}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var conf *C.fleets_config_t
	if rc := C.fleets_config_from_env(&conf); rc != C.FLEETS_OK {
		return nil, lastError(rc, false, creds)
	}
	defer C.fleets_config_free(conf)
	return newClient(conf, endpoint, creds)
}

// newClient must run on a locked OS thread.
func newClient(conf *C.fleets_config_t, endpoint string, creds *credentials) (*Client, error) {
	var h *C.fleets_client_t
	if rc := C.fleets_client_new(conf, &h); rc != C.FLEETS_OK {
		return nil, lastError(rc, false, creds)
	}
	liveHandles.Add(1)
	c := &Client{h: h, endpoint: endpoint, creds: creds}
	c.cleanup = runtime.AddCleanup(c, freeHandle, unsafe.Pointer(h))
	return c, nil
}

func freeHandle(h unsafe.Pointer) {
	C.fleets_client_free((*C.fleets_client_t)(h))
	liveHandles.Add(-1)
}

// Close releases the client and its connections. It waits for calls in progress on other
// goroutines to finish; later calls fail with ErrClosed, and Stats returns the counters as
// they were at Close. Close is idempotent and always returns nil.
func (c *Client) Close() error {
	c.flows.drain()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.h == nil {
		return nil
	}
	c.cleanup.Stop()
	c.final = stats(c.h)
	freeHandle(unsafe.Pointer(c.h))
	c.h = nil
	runtime.KeepAlive(c)
	return nil
}

// Stats returns the client's counters since it was created (fleets_client_stats); after
// Close, the counters as they were then. A snapshot taken while other goroutines call may
// mix values from just before and just after a concurrent call.
func (c *Client) Stats() ClientStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return c.final
	}
	s := stats(c.h)
	runtime.KeepAlive(c)
	return s
}

func stats(h *C.fleets_client_t) ClientStats {
	var raw C.fleets_client_stats_t
	// Both pointers are valid: the only failure is a NULL argument.
	if C.fleets_client_stats(h, &raw) != C.FLEETS_OK {
		return ClientStats{}
	}
	return ClientStats{
		Calls:         uint64(raw.calls),
		Failures:      uint64(raw.failures),
		Requests:      uint64(raw.requests),
		Retries:       uint64(raw.retries),
		StaleResends:  uint64(raw.stale_resends),
		Connections:   uint64(raw.connections),
		BytesSent:     uint64(raw.bytes_sent),
		BytesReceived: uint64(raw.bytes_received),
		LastLatency:   time.Duration(min(uint64(raw.last_latency_us), math.MaxInt64/uint64(time.Microsecond))) * time.Microsecond,
	}
}

// ---------------------------------------------------------------- the calls

// ShadowReport reports the device's state: POST /api/v1/thing-datas/shadow/reported.
//
// reported must encode to a JSON object: a map, a struct, or a json.RawMessage (sent as
// is). The server deep-merges it into the reported state; a nil member deletes that key.
// opts may be nil. It returns the response body, e.g.
// {"state":{"reported":{..}},"version":N,"timestamp":T}.
func (c *Client) ShadowReport(thingName string, reported any, opts *ReportOptions) (json.RawMessage, error) {
	if opts == nil {
		opts = &ReportOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	state, err := jsonArg("reported", reported, true)
	if err != nil {
		return nil, err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return nil, err
	}
	version := C.uint64_t(opts.Version)
	return c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_shadow_report(h, ptr(name), ptr(state), ptr(token), version, out, n, outLen)
	})
}

// ShadowGet reads the current shadow: GET /api/v1/thing-datas/{thingName}/shadow. A
// non-empty Delta holds desired values the device has not reported yet.
func (c *Client) ShadowGet(thingName string) (*Shadow, error) {
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	body, err := c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_shadow_get(h, ptr(name), out, n, outLen)
	})
	if err != nil {
		return nil, err
	}
	s, err := decodeShadow(body)
	if err != nil {
		return nil, badResponse(body, err)
	}
	return s, nil
}

// EventPublish publishes an event of eventType: POST /api/v1/thing-datas/events.
//
// data, when not nil, must encode to a JSON object (a map, a struct or a
// json.RawMessage). opts may be nil (no severity, timestamp now, no app id). It returns the
// response body.
func (c *Client) EventPublish(thingName, eventType string, data any, opts *EventOptions) (json.RawMessage, error) {
	if opts == nil {
		opts = &EventOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	typ, err := cstr("eventType", eventType)
	if err != nil {
		return nil, err
	}
	dataJSON, err := jsonArg("data", data, false)
	if err != nil {
		return nil, err
	}
	appID, err := cstrOpt("AppID", opts.AppID)
	if err != nil {
		return nil, err
	}
	var ts int64
	if !opts.Timestamp.IsZero() {
		if ts = opts.Timestamp.UnixMilli(); ts <= 0 {
			return nil, invalidArg("Timestamp %v is not after the Unix epoch", opts.Timestamp)
		}
	}
	if opts.Severity < 0 || opts.Severity > SeverityError {
		return nil, invalidArg("unknown Severity %d", int(opts.Severity))
	}
	sev := C.fleets_severity(opts.Severity)
	return c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_event_publish(h, ptr(name), ptr(typ), sev, C.int64_t(ts), ptr(dataJSON), ptr(appID), out, n, outLen)
	})
}

// CommandRespond answers the command execution executionID (received over MQTT):
// POST /api/v1/thing-datas/command/response.
//
// status is ExecutionInProgress, ExecutionSucceeded, ExecutionFailed or ExecutionRejected.
// result, when not nil, must encode to a JSON object. opts may be nil (timestamp now). An
// unknown execution is ErrNotFound; one already answered with a final status is
// ErrConflict. It returns the response body.
func (c *Client) CommandRespond(thingName, executionID string, status ExecutionStatus, result any, opts *CommandOptions) (json.RawMessage, error) {
	if opts == nil {
		opts = &CommandOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	id, err := cstr("executionID", executionID)
	if err != nil {
		return nil, err
	}
	st, err := status.deviceStatus()
	if err != nil {
		return nil, err
	}
	resultJSON, err := jsonArg("result", result, false)
	if err != nil {
		return nil, err
	}
	var ts int64
	if !opts.Timestamp.IsZero() {
		if ts = opts.Timestamp.Unix(); ts <= 0 {
			return nil, invalidArg("Timestamp %v is not after the Unix epoch", opts.Timestamp)
		}
	}
	return c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_command_respond(h, ptr(name), ptr(id), C.fleets_execution_status(st), ptr(resultJSON), C.int64_t(ts), out, n, outLen)
	})
}

// JobsGetPending lists the thing's pending job executions: POST
// /api/v1/thing-datas/jobs/get. opts may be nil.
func (c *Client) JobsGetPending(thingName string, opts *JobOptions) (*PendingJobs, error) {
	if opts == nil {
		opts = &JobOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return nil, err
	}
	body, err := c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_jobs_get_pending(h, ptr(name), ptr(token), out, n, outLen)
	})
	if err != nil {
		return nil, err
	}
	p, err := decodePendingJobs(body)
	if err != nil {
		return nil, badResponse(body, err)
	}
	return p, nil
}

// JobsStartNext starts the next pending job execution (one in progress first, then the
// oldest queued) and returns it with its job document: POST
// /api/v1/thing-datas/jobs/start-next. When nothing is pending, the result's Execution is
// nil. opts may be nil.
func (c *Client) JobsStartNext(thingName string, opts *JobsStartNextOptions) (*JobExecutionResult, error) {
	if opts == nil {
		opts = &JobsStartNextOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	details, err := jsonArg("StatusDetails", opts.StatusDetails, false)
	if err != nil {
		return nil, err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return nil, err
	}
	if opts.StepTimeout < 0 {
		return nil, invalidArg("StepTimeout %v is negative", opts.StepTimeout)
	}
	minutes := (opts.StepTimeout + time.Minute - 1) / time.Minute
	if minutes > math.MaxUint32 {
		return nil, invalidArg("StepTimeout %v is too long", opts.StepTimeout)
	}
	body, err := c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_jobs_start_next(h, ptr(name), ptr(details), C.uint32_t(minutes), ptr(token), out, n, outLen)
	})
	if err != nil {
		return nil, err
	}
	r, err := decodeExecutionResult(body)
	if err != nil {
		return nil, badResponse(body, err)
	}
	return r, nil
}

// JobsDescribe returns the thing's execution of job jobID, with its job document: POST
// /api/v1/thing-datas/jobs/{jobID}/get. ErrNotFound when the thing has no execution of
// that job. opts may be nil.
func (c *Client) JobsDescribe(thingName, jobID string, opts *JobOptions) (*JobExecutionResult, error) {
	if opts == nil {
		opts = &JobOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	job, err := cstr("jobID", jobID)
	if err != nil {
		return nil, err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return nil, err
	}
	body, err := c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_jobs_describe(h, ptr(name), ptr(job), ptr(token), out, n, outLen)
	})
	if err != nil {
		return nil, err
	}
	r, err := decodeExecutionResult(body)
	if err == nil && r.Execution == nil {
		err = errNoExecution
	}
	if err != nil {
		return nil, badResponse(body, err)
	}
	return r, nil
}

// JobsUpdate reports the status of the thing's execution of job jobID: POST
// /api/v1/thing-datas/jobs/{jobID}/update.
//
// status is ExecutionInProgress, ExecutionSucceeded, ExecutionFailed or ExecutionRejected.
// opts may be nil. A stale ExpectedVersion, or leaving a terminal status, is ErrConflict
// (the error's Body holds the current executionState).
func (c *Client) JobsUpdate(thingName, jobID string, status ExecutionStatus, opts *JobsUpdateOptions) (*JobUpdateResult, error) {
	if opts == nil {
		opts = &JobsUpdateOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return nil, err
	}
	job, err := cstr("jobID", jobID)
	if err != nil {
		return nil, err
	}
	st, err := status.deviceStatus()
	if err != nil {
		return nil, err
	}
	details, err := jsonArg("StatusDetails", opts.StatusDetails, false)
	if err != nil {
		return nil, err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return nil, err
	}
	expected := C.uint64_t(opts.ExpectedVersion)
	body, err := c.call(func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result {
		return C.fleets_jobs_update(h, ptr(name), ptr(job), C.fleets_execution_status(st), ptr(details), expected, ptr(token), out, n, outLen)
	})
	if err != nil {
		return nil, err
	}
	r, err := decodeJobUpdate(body)
	if err != nil {
		return nil, badResponse(body, err)
	}
	return r, nil
}

// ---------------------------------------------------------------- plumbing

// initialBuffer is the size of the pooled response buffers; larger bodies are fetched with
// fleets_last_response (no second request).
const initialBuffer = 16 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, initialBuffer); return &b }}

type apiFunc func(h *C.fleets_client_t, out *C.char, n C.size_t, outLen *C.size_t) C.fleets_result

// call runs one API call and returns a copy of the response body. The call and the
// fleets_last_* functions that read its per-thread outcome run on one locked OS thread.
func (c *Client) call(fn apiFunc) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return nil, ErrClosed
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var n C.size_t
	rc := fn(c.h, (*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)), &n)
	runtime.KeepAlive(c)

	var body []byte
	switch {
	case rc < 200 && rc != C.FLEETS_ERR_BUFFER_TOO_SMALL:
		// OK, or an argument rejected before anything was sent (n not written).
		if rc == C.FLEETS_OK {
			body = append([]byte(nil), buf[:n]...)
		}
	case int(n) < len(buf):
		body = append([]byte(nil), buf[:n]...)
	default:
		// The body did not fit: copy it from this thread's last response.
		big := make([]byte, int(n)+1)
		var got C.size_t
		if rc2 := C.fleets_last_response((*C.char)(unsafe.Pointer(&big[0])), C.size_t(len(big)), &got); rc2 != C.FLEETS_OK {
			return nil, lastError(rc2, false, c.creds)
		}
		body = big[:got]
	}
	if rc == C.FLEETS_OK || rc == C.FLEETS_ERR_BUFFER_TOO_SMALL {
		return body, nil
	}
	e := lastError(rc, rc >= 200, c.creds)
	if len(body) > 0 {
		e.Body = body
	}
	return nil, e
}

// lastError builds the *Error of a failed call from this thread's last error message (and
// HTTP status and Retry-After when sent). It must run on the OS thread that made the call.
// The message may quote the server or a configuration value: it is scrubbed of creds and of
// control characters.
func lastError(rc C.fleets_result, sent bool, creds *credentials) *Error {
	e := &Error{Code: Code(rc)}
	if sent {
		e.HTTPStatus = int(C.fleets_last_http_status())
		if ms := int64(C.fleets_last_retry_after_ms()); ms > 0 {
			e.RetryAfter = time.Duration(min(ms, math.MaxInt64/int64(time.Millisecond))) * time.Millisecond
		}
	}
	var small [256]byte
	n := C.fleets_last_error_message((*C.char)(unsafe.Pointer(&small[0])), C.size_t(len(small)))
	if int(n) < len(small) {
		e.Message = string(small[:n])
	} else {
		big := make([]byte, int(n)+1)
		n = C.fleets_last_error_message((*C.char)(unsafe.Pointer(&big[0])), C.size_t(len(big)))
		e.Message = string(big[:min(int(n), len(big)-1)])
	}
	e.Message = creds.scrub(e.Message)
	return e
}

var errNoExecution = errors.New(`no "execution" object`)

// badResponse is the error for a 2xx body that libfleets accepted as JSON but that does not
// decode into the result type (wrong shape, a number out of range, nested deeper than
// encoding/json's limit of 10,000 levels...). The decoder's text may quote the body: it is
// cut short and its control characters escaped.
func badResponse(body []byte, err error) *Error {
	why := err.Error()
	if len(why) > maxQuoted {
		why = strings.ToValidUTF8(why[:maxQuoted], "") + "..."
	}
	return &Error{Code: CodeBadResponse, HTTPStatus: 200, Body: body,
		Message: "response body does not have the expected shape: " + printable(why), err: err}
}

// maxQuoted bounds what an error message quotes of a decoder error (which can hold a
// number of a million digits).
const maxQuoted = 256

// cstr returns s as a NUL-terminated byte slice; a NUL inside s is ErrInvalidArgument (the
// message names the field, never the value).
func cstr(field, s string) ([]byte, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, invalidArg("%s contains a NUL byte", field)
	}
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b, nil
}

// cstrOpt is cstr, with "" meaning omitted (NULL).
func cstrOpt(field, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return cstr(field, s)
}

// jsonArg encodes v as NUL-terminated JSON; a json.RawMessage is sent as is. nil means
// omitted unless required.
func jsonArg(field string, v any, required bool) ([]byte, error) {
	var raw []byte
	switch x := v.(type) {
	case nil:
		if !required {
			return nil, nil
		}
		raw = []byte("null")
	case json.RawMessage:
		if x == nil && !required {
			return nil, nil
		}
		raw = x
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, &Error{Code: CodeInvalidJSON, Message: field + ": " + err.Error(), err: err}
		}
		// Our own buffer, and json.Marshal escapes NUL as \u0000: the terminator is appended
		// in place (usually within its capacity) instead of copying the document again.
		return append(b, 0), nil
	}
	if bytes.IndexByte(raw, 0) >= 0 {
		return nil, &Error{Code: CodeInvalidJSON, Message: field + " contains a NUL byte"}
	}
	b := make([]byte, len(raw)+1)
	copy(b, raw)
	return b, nil
}

func ptr(b []byte) *C.char {
	if b == nil {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

func millis(field string, d time.Duration) (C.uint32_t, error) {
	if d < 0 {
		return 0, invalidArg("%s %v is negative", field, d)
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxUint32 {
		return 0, invalidArg("%s %v is too long", field, d)
	}
	return C.uint32_t(ms), nil
}
