package fleets

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Config configures a Client. Endpoint, APIKey and APISecret are required; every other
// field has a zero value that means "the library default".
//
// Config implements fmt.Stringer and fmt.GoStringer without the secrets, so printing it
// with %v, %+v or %#v shows neither APISecret nor the password of ProxyURL.
type Config struct {
	// Endpoint is the Fleets deployment URL, "https://host[:port][/base]". "http://" is
	// accepted only for loopback hosts.
	Endpoint string
	// APIKey is the Deployment API key (HTTP Basic user).
	APIKey string
	// APISecret is the Deployment API secret (HTTP Basic password).
	APISecret string

	// Server trust: set at most one of CAFile, CAPEM and UseSystemRoots (more than one is
	// ErrInvalidConfig). With none of them the Mozilla roots bundled in libfleets are
	// trusted. TLS verification cannot be disabled.

	// CAFile is the path of a PEM bundle whose certificates are the only ones trusted to
	// identify the server. A file that cannot be read or holds no certificate is
	// ErrInvalidConfig.
	CAFile string
	// CAPEM is like CAFile, with the PEM text itself (for a CA compiled into the program
	// or read from a secret store). Text without a usable certificate is ErrInvalidConfig.
	CAPEM string
	// UseSystemRoots trusts the operating system's certificate store (SSL_CERT_FILE /
	// SSL_CERT_DIR, else the distribution's bundle), e.g. behind a TLS-inspecting proxy
	// whose CA is installed there. An empty or unreadable store is ErrInvalidConfig.
	UseSystemRoots bool

	// ClientCertFile and ClientKeyFile, set together, present a client certificate for
	// mutual TLS: a PEM certificate chain (leaf first) and its PEM private key (PKCS#8,
	// PKCS#1 or SEC1). An unreadable file, a missing certificate or key, a key that does
	// not belong to the certificate, or only one of the two set is ErrInvalidConfig.
	ClientCertFile string
	ClientKeyFile  string

	// ProxyURL, when set, sends every request through an HTTP CONNECT proxy,
	// "http://[user:password@]host:port". TLS still runs end to end with the server. A
	// malformed URL or another scheme is ErrInvalidConfig. The password never appears in
	// an error message or in the printed Config. A loopback Endpoint (localhost,
	// 127.0.0.0/8, ::1) never goes through the proxy, as with curl's default NO_PROXY.
	// (NewClientFromEnv reads HTTPS_PROXY and NO_PROXY instead.)
	ProxyURL string

	// Durations are time.Durations, Go's form of the settings C takes in integer
	// milliseconds and Python in seconds (float).

	// ConnectTimeout limits DNS, TCP connect and the TLS handshake; 0 means the default
	// (10 s). It is rounded up to whole milliseconds.
	ConnectTimeout time.Duration
	// Timeout is the deadline of a whole call, connect and every retry included; 0 means
	// the default (30 s). It is rounded up to whole milliseconds.
	Timeout time.Duration

	// Retry sets how transient failures are retried; nil means the library defaults
	// (3 attempts, backoff from 200 ms up to 5 s). &RetryPolicy{MaxAttempts: 1} disables
	// retries. See RetryPolicy for which calls and failures are retried.
	Retry *RetryPolicy

	// MaxResponseBytes is the largest response body accepted and kept in memory; a larger
	// body is ErrBadResponse. 0 means the default (1 MiB); negative is ErrInvalidArgument;
	// more than MaxResponseBytesLimit (16 MiB) is ErrInvalidConfig.
	MaxResponseBytes int
}

// MaxResponseBytesLimit is the largest Config.MaxResponseBytes libfleets accepts
// (FLEETS_MAX_RESPONSE_BYTES_LIMIT): a response is held in memory whole.
const MaxResponseBytesLimit = 16 << 20

// ClientStats are the counters of a Client since it was created (Client.Stats,
// fleets_client_stats).
type ClientStats struct {
	// Calls is the number of ThingDatas calls made (each counts once, however many
	// attempts it took).
	Calls uint64
	// Failures is the number of calls that ended with an error after their arguments were
	// accepted (transport failures and HTTP error statuses).
	Failures uint64
	// Requests is the number of HTTP requests sent: every attempt, retries and resends
	// included.
	Requests uint64
	// Retries is the number of attempts after the first, made by the retry policy.
	Retries uint64
	// StaleResends is the number of requests sent again on a new connection because the
	// server had closed a kept-alive one.
	StaleResends uint64
	// Connections is the number of TCP connections opened (the first one included).
	Connections uint64
	// BytesSent is the number of bytes written to TCP connections (TLS records, HTTP
	// framing, bodies).
	BytesSent uint64
	// BytesReceived is the number of bytes read from TCP connections.
	BytesReceived uint64
	// LastLatency is the wall time of the last completed call, all attempts included
	// (microsecond resolution); 0 before the first call.
	LastLatency time.Duration
}

// RetryPolicy says how libfleets retries transient failures within one call.
//
// Only calls that are safe to repeat are retried: ShadowGet, and the calls that carry a
// client token (ShadowReport, JobsGetPending, JobsStartNext, JobsDescribe, JobsUpdate). When
// retries are enabled and the options give no ClientToken, libfleets sends a generated one
// ("fleets-" and 16 hex digits), which the server echoes. EventPublish and CommandRespond
// are never repeated. Retried failures: connection failures, timeouts before any byte of the
// response, and HTTP 429, 502, 503 and 504 (never another 4xx). Between attempts the client
// waits a random time up to the current backoff (doubling per attempt, at most MaxBackoff),
// or what the server's Retry-After asks (clamped to MaxBackoff). All attempts together stay
// within Config.Timeout. An error after several attempts says "(after N attempts)" in its
// Message.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts per call, first one included: 1 disables
	// retries, at most 10 (more is ErrInvalidConfig); 0 means the default (3).
	MaxAttempts int
	// InitialBackoff is the backoff before the first retry; 0 means the default (200 ms).
	// It may not exceed MaxBackoff (ErrInvalidConfig). Rounded up to whole milliseconds.
	InitialBackoff time.Duration
	// MaxBackoff is the longest wait between two attempts; 0 means the default (5 s).
	// Rounded up to whole milliseconds.
	MaxBackoff time.Duration
}

// String describes the configuration with the API secret and the password of any URL
// (ProxyURL, Endpoint) redacted, the CA PEM text summarized by its length, and control
// characters escaped.
func (c Config) String() string {
	secret := ""
	if c.APISecret != "" {
		secret = redacted
	}
	caPEM := ""
	if c.CAPEM != "" {
		caPEM = fmt.Sprintf("(%d bytes)", len(c.CAPEM))
	}
	retry := "<nil>"
	if c.Retry != nil {
		retry = fmt.Sprintf("{MaxAttempts:%d InitialBackoff:%v MaxBackoff:%v}",
			c.Retry.MaxAttempts, c.Retry.InitialBackoff, c.Retry.MaxBackoff)
	}
	return fmt.Sprintf("{Endpoint:%s APIKey:%s APISecret:%s CAFile:%s CAPEM:%s UseSystemRoots:%t "+
		"ClientCertFile:%s ClientKeyFile:%s ProxyURL:%s ConnectTimeout:%v Timeout:%v Retry:%s MaxResponseBytes:%d}",
		redactURL(c.Endpoint), printable(c.APIKey), secret, printable(c.CAFile), caPEM, c.UseSystemRoots,
		printable(c.ClientCertFile), printable(c.ClientKeyFile), redactURL(c.ProxyURL), c.ConnectTimeout, c.Timeout, retry,
		c.MaxResponseBytes)
}

// GoString is like String, for %#v.
func (c Config) GoString() string { return "fleets.Config" + c.String() }

// Severity is the severity of an event.
type Severity int

// Event severities (FLEETS_SEVERITY_*; codes_cgo.go checks them against fleets.h).
const (
	SeverityUnset Severity = 0 // no severity: the field is left out of the event
	SeverityInfo  Severity = 1 // sent as "info"
	SeverityWarn  Severity = 2 // sent as "warn"
	SeverityError Severity = 3 // sent as "error"
)

// String returns the wire name ("info", "warn", "error"), "" for SeverityUnset.
func (s Severity) String() string {
	switch s {
	case SeverityUnset:
		return ""
	case SeverityInfo:
		return "info"
	case SeverityWarn:
		return "warn"
	case SeverityError:
		return "error"
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// ExecutionStatus is the status of a command execution or a job execution, as its wire
// name.
//
// A device reports one of the four constants below, the same set as C's
// FLEETS_EXECUTION_* and Python's fleets.ExecutionStatus. The Status of a job execution read
// from a response may also hold a status only the server sets: "QUEUED" (waiting for the
// device), "TIMED_OUT" (step timeout or TTL expired) or "CANCELED" (by an operator);
// IsTerminal knows them all.
type ExecutionStatus string

// The execution statuses a device reports (FLEETS_EXECUTION_*).
const (
	ExecutionInProgress ExecutionStatus = "IN_PROGRESS" // started by the device
	ExecutionSucceeded  ExecutionStatus = "SUCCEEDED"   // finished successfully (terminal)
	ExecutionFailed     ExecutionStatus = "FAILED"      // finished with a failure (terminal)
	ExecutionRejected   ExecutionStatus = "REJECTED"    // refused by the device (terminal)
)

// IsTerminal reports whether no further update is accepted in this status: SUCCEEDED,
// FAILED, REJECTED, and the server's TIMED_OUT and CANCELED.
func (s ExecutionStatus) IsTerminal() bool {
	switch s {
	case ExecutionSucceeded, ExecutionFailed, ExecutionRejected, "TIMED_OUT", "CANCELED":
		return true
	}
	return false
}

// The FLEETS_EXECUTION_* values (codes_cgo.go checks them against fleets.h).
const (
	executionInProgress uint32 = 1 // FLEETS_EXECUTION_IN_PROGRESS
	executionSucceeded  uint32 = 2 // FLEETS_EXECUTION_SUCCEEDED
	executionFailed     uint32 = 3 // FLEETS_EXECUTION_FAILED
	executionRejected   uint32 = 4 // FLEETS_EXECUTION_REJECTED
)

// deviceStatus maps a status a device may report to FLEETS_EXECUTION_*.
func (s ExecutionStatus) deviceStatus() (uint32, error) {
	switch s {
	case ExecutionInProgress:
		return executionInProgress, nil
	case ExecutionSucceeded:
		return executionSucceeded, nil
	case ExecutionFailed:
		return executionFailed, nil
	case ExecutionRejected:
		return executionRejected, nil
	}
	return 0, invalidArg("status %q cannot be reported by a device (use IN_PROGRESS, SUCCEEDED, FAILED or REJECTED)", string(s))
}

// ReportOptions are the optional parts of ShadowReport.
type ReportOptions struct {
	// ClientToken (at most 64 printable ASCII bytes) is echoed back in the response. When
	// empty and retries are enabled (the default), libfleets sends a generated token
	// ("fleets-" and 16 hex digits) so that a retried request can be recognized; the
	// response then echoes that one.
	ClientToken string
	// Version is the expected current shadow version (optimistic locking); 0
	// auto-increments. A stale version fails with ErrConflict.
	Version uint64
}

// EventOptions are the optional parts of EventPublish.
type EventOptions struct {
	// Severity of the event; SeverityUnset leaves it out.
	Severity Severity
	// Timestamp of the event, sent in Unix milliseconds; the zero Time means now.
	Timestamp time.Time
	// AppID is an application label for multi-app deployments (at most 128 bytes, no
	// control characters); "" leaves it out.
	AppID string
}

// CommandOptions are the optional parts of CommandRespond.
type CommandOptions struct {
	// Timestamp of the response, sent in Unix seconds; the zero Time means now.
	Timestamp time.Time
}

// JobOptions are the optional parts of JobsGetPending and JobsDescribe.
type JobOptions struct {
	// ClientToken (at most 64 printable ASCII bytes) is echoed back in the response. When
	// empty and retries are enabled (the default), libfleets sends a generated token
	// ("fleets-" and 16 hex digits) so that a retried request can be recognized; the
	// response then echoes that one.
	ClientToken string
}

// JobsStartNextOptions are the optional parts of JobsStartNext.
type JobsStartNextOptions struct {
	// StatusDetails, when not nil, is encoded as a JSON object and stored with the
	// execution (a map, a struct or a json.RawMessage).
	StatusDetails any
	// StepTimeout lets the execution time out if not updated in time; it is sent in whole
	// minutes (rounded up); 0 leaves it out.
	StepTimeout time.Duration
	// ClientToken (at most 64 printable ASCII bytes) is echoed back in the response. When
	// empty and retries are enabled (the default), libfleets sends a generated token
	// ("fleets-" and 16 hex digits) so that a retried request can be recognized; the
	// response then echoes that one.
	ClientToken string
}

// JobsUpdateOptions are the optional parts of JobsUpdate.
type JobsUpdateOptions struct {
	// StatusDetails, when not nil, is encoded as a JSON object and replaces the stored
	// details.
	StatusDetails any
	// ExpectedVersion is the execution's current VersionNumber; 0 leaves it out. A mismatch
	// fails with ErrConflict.
	ExpectedVersion uint64
	// ClientToken (at most 64 printable ASCII bytes) is echoed back in the response. When
	// empty and retries are enabled (the default), libfleets sends a generated token
	// ("fleets-" and 16 hex digits) so that a retried request can be recognized; the
	// response then echoes that one.
	ClientToken string
}

// Shadow is the device shadow returned by ShadowGet.
type Shadow struct {
	// Reported is the state last reported by the device.
	Reported map[string]any `json:"reported"`
	// Desired is the state an operator asked for.
	Desired map[string]any `json:"desired"`
	// Delta holds the desired values the device has not reported yet; apply them and
	// report the new state.
	Delta map[string]any `json:"delta"`
	// Version increments with every shadow update.
	Version int64 `json:"version"`
	// UpdatedAt is the time of the last shadow change.
	UpdatedAt time.Time `json:"-"`
	// Raw is the response body as received.
	Raw json.RawMessage `json:"-"`
}

// JobSummary is one entry of PendingJobs.
type JobSummary struct {
	// JobID identifies the job.
	JobID string
	// QueuedAt is when the execution was queued.
	QueuedAt time.Time
	// StartedAt is when the device first set it IN_PROGRESS (zero if not started).
	StartedAt time.Time
	// LastUpdatedAt is the time of the last change.
	LastUpdatedAt time.Time
	// VersionNumber increments with every change; pass it as JobsUpdateOptions.ExpectedVersion.
	VersionNumber int64
	// ExecutionNumber numbers the executions of this job on this thing.
	ExecutionNumber int64
}

// PendingJobs is the result of JobsGetPending.
type PendingJobs struct {
	// InProgress lists the executions the device has started, oldest first.
	InProgress []JobSummary
	// Queued lists the executions waiting to be started, oldest first.
	Queued []JobSummary
	// ClientToken echoes the request's client token.
	ClientToken string
	// Raw is the response body as received.
	Raw json.RawMessage
}

// JobExecution is one job execution of a thing, with its job document.
type JobExecution struct {
	// JobID identifies the job.
	JobID string
	// ThingName is the thing this execution belongs to.
	ThingName string
	// Status is the execution's current status.
	Status ExecutionStatus
	// StatusDetails are the details last stored by the device.
	StatusDetails map[string]any
	// QueuedAt is when the execution was queued.
	QueuedAt time.Time
	// StartedAt is when the device first set it IN_PROGRESS (zero if not started).
	StartedAt time.Time
	// LastUpdatedAt is the time of the last change.
	LastUpdatedAt time.Time
	// VersionNumber increments with every change; pass it as JobsUpdateOptions.ExpectedVersion.
	VersionNumber int64
	// ExecutionNumber numbers the executions of this job on this thing.
	ExecutionNumber int64
	// TimeBeforeTimeout is the approximate time left before an IN_PROGRESS execution with a
	// step timeout times out; 0 when there is no timeout.
	TimeBeforeTimeout time.Duration
	// JobDocument is the job's document (what the device should do), nil when not sent;
	// decode it into your own type with json.Unmarshal.
	JobDocument json.RawMessage
}

// JobExecutionResult is the result of JobsStartNext and JobsDescribe.
type JobExecutionResult struct {
	// Execution is the execution; nil from JobsStartNext when no job is pending.
	Execution *JobExecution
	// ClientToken echoes the request's client token.
	ClientToken string
	// Raw is the response body as received.
	Raw json.RawMessage
}

// JobExecutionState is the state of an execution after JobsUpdate.
type JobExecutionState struct {
	// Status is the new status.
	Status ExecutionStatus
	// StatusDetails are the stored details.
	StatusDetails map[string]any
	// VersionNumber is the new version of the execution.
	VersionNumber int64
}

// JobUpdateResult is the result of JobsUpdate.
type JobUpdateResult struct {
	// ExecutionState is the execution's state after the update.
	ExecutionState JobExecutionState
	// JobDocument is the job's document, nil when not sent.
	JobDocument json.RawMessage
	// Timestamp is the time of the update, zero when not sent.
	Timestamp time.Time
	// ClientToken echoes the request's client token.
	ClientToken string
	// Raw is the response body as received.
	Raw json.RawMessage
}

// ---------------------------------------------------------------- decoding

// parseTime accepts Unix seconds (a JSON number) or an RFC 3339 string; null or absent is
// the zero Time.
func parseTime(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		if s == "" {
			return time.Time{}, nil
		}
		return time.Parse(time.RFC3339Nano, s)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, err
	}
	if i, err := n.Int64(); err == nil {
		return time.Unix(i, 0).UTC(), nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, err
	}
	if math.IsNaN(f) || math.Abs(f) >= 1<<62 { // a float64 outside int64 converts to garbage
		return time.Time{}, fmt.Errorf("time %s is out of range", printable(n.String()[:min(len(n.String()), 32)]))
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
}

func parseTimes(dst []*time.Time, raws ...json.RawMessage) error {
	for i, r := range raws {
		t, err := parseTime(r)
		if err != nil {
			return err
		}
		*dst[i] = t
	}
	return nil
}

type wireShadow struct {
	Reported  map[string]any  `json:"reported"`
	Desired   map[string]any  `json:"desired"`
	Delta     map[string]any  `json:"delta"`
	Version   int64           `json:"version"`
	UpdatedAt json.RawMessage `json:"updatedAt"`
}

func decodeShadow(body []byte) (*Shadow, error) {
	var w wireShadow
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	s := &Shadow{Reported: w.Reported, Desired: w.Desired, Delta: w.Delta, Version: w.Version, Raw: body}
	for _, m := range []*map[string]any{&s.Reported, &s.Desired, &s.Delta} {
		if *m == nil {
			*m = map[string]any{}
		}
	}
	t, err := parseTime(w.UpdatedAt)
	if err != nil {
		return nil, fmt.Errorf("updatedAt: %w", err)
	}
	s.UpdatedAt = t
	return s, nil
}

type wireSummary struct {
	JobID           string          `json:"jobId"`
	QueuedAt        json.RawMessage `json:"queuedAt"`
	StartedAt       json.RawMessage `json:"startedAt"`
	LastUpdatedAt   json.RawMessage `json:"lastUpdatedAt"`
	VersionNumber   int64           `json:"versionNumber"`
	ExecutionNumber int64           `json:"executionNumber"`
}

func (w *wireSummary) summary() (JobSummary, error) {
	s := JobSummary{JobID: w.JobID, VersionNumber: w.VersionNumber, ExecutionNumber: w.ExecutionNumber}
	err := parseTimes([]*time.Time{&s.QueuedAt, &s.StartedAt, &s.LastUpdatedAt}, w.QueuedAt, w.StartedAt, w.LastUpdatedAt)
	return s, err
}

func decodePendingJobs(body []byte) (*PendingJobs, error) {
	var w struct {
		InProgress  []wireSummary `json:"inProgressJobs"`
		Queued      []wireSummary `json:"queuedJobs"`
		ClientToken string        `json:"clientToken"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	p := &PendingJobs{ClientToken: w.ClientToken, Raw: body,
		InProgress: make([]JobSummary, 0, len(w.InProgress)), Queued: make([]JobSummary, 0, len(w.Queued))}
	for i := range w.InProgress {
		s, err := w.InProgress[i].summary()
		if err != nil {
			return nil, err
		}
		p.InProgress = append(p.InProgress, s)
	}
	for i := range w.Queued {
		s, err := w.Queued[i].summary()
		if err != nil {
			return nil, err
		}
		p.Queued = append(p.Queued, s)
	}
	return p, nil
}

type wireExecution struct {
	wireSummary
	ThingName                        string          `json:"thingName"`
	Status                           ExecutionStatus `json:"status"`
	StatusDetails                    map[string]any  `json:"statusDetails"`
	ApproximateSecondsBeforeTimedOut *float64        `json:"approximateSecondsBeforeTimedOut"`
	JobDocument                      json.RawMessage `json:"jobDocument"`
}

func decodeExecutionResult(body []byte) (*JobExecutionResult, error) {
	var w struct {
		Execution   *wireExecution `json:"execution"`
		ClientToken string         `json:"clientToken"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	r := &JobExecutionResult{ClientToken: w.ClientToken, Raw: body}
	if w.Execution == nil {
		return r, nil
	}
	s, err := w.Execution.summary()
	if err != nil {
		return nil, err
	}
	e := &JobExecution{
		JobID: s.JobID, ThingName: w.Execution.ThingName, Status: w.Execution.Status,
		StatusDetails: w.Execution.StatusDetails,
		QueuedAt:      s.QueuedAt, StartedAt: s.StartedAt, LastUpdatedAt: s.LastUpdatedAt,
		VersionNumber: s.VersionNumber, ExecutionNumber: s.ExecutionNumber,
		JobDocument: nullToNil(w.Execution.JobDocument),
	}
	if e.StatusDetails == nil {
		e.StatusDetails = map[string]any{}
	}
	if a := w.Execution.ApproximateSecondsBeforeTimedOut; a != nil {
		if math.Abs(*a) > float64(math.MaxInt64)/float64(time.Second) {
			return nil, fmt.Errorf("approximateSecondsBeforeTimedOut %g is out of range", *a)
		}
		e.TimeBeforeTimeout = time.Duration(*a * float64(time.Second))
	}
	r.Execution = e
	return r, nil
}

func decodeJobUpdate(body []byte) (*JobUpdateResult, error) {
	var w struct {
		ExecutionState struct {
			Status        ExecutionStatus `json:"status"`
			StatusDetails map[string]any  `json:"statusDetails"`
			VersionNumber int64           `json:"versionNumber"`
		} `json:"executionState"`
		JobDocument json.RawMessage `json:"jobDocument"`
		Timestamp   json.RawMessage `json:"timestamp"`
		ClientToken string          `json:"clientToken"`
	}
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	r := &JobUpdateResult{
		ExecutionState: JobExecutionState{
			Status: w.ExecutionState.Status, StatusDetails: w.ExecutionState.StatusDetails,
			VersionNumber: w.ExecutionState.VersionNumber,
		},
		JobDocument: nullToNil(w.JobDocument), ClientToken: w.ClientToken, Raw: body,
	}
	if r.ExecutionState.StatusDetails == nil {
		r.ExecutionState.StatusDetails = map[string]any{}
	}
	t, err := parseTime(w.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	r.Timestamp = t
	return r, nil
}

func nullToNil(r json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(r)) == 0 || string(bytes.TrimSpace(r)) == "null" {
		return nil
	}
	return r
}
