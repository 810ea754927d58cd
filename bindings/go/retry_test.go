package fleets_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

// fastRetry is a client retrying up to attempts times with short backoffs.
func fastRetry(t *testing.T, attempts int) *fleets.Client {
	t.Helper()
	cfg := config()
	cfg.Retry = &fleets.RetryPolicy{MaxAttempts: attempts, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestRetryRecoversBurst: a burst of 503/502/429 shorter than MaxAttempts is invisible to
// the caller; the emulator's request count shows the retries.
func TestRetryRecoversBurst(t *testing.T) {
	c := fastRetry(t, 4)
	thing := newThing(t, "retry")

	fault(t, map[string]any{"kind": "status", "status": 503, "times": 3, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	before := requestCount(t)
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatalf("ShadowGet after three 503s: %v", err)
	}
	if n := requestCount(t) - before; n != 4 {
		t.Errorf("ShadowGet: %d requests, want 4 (3 faulted + 1)", n)
	}

	// A report without a ClientToken gets a generated one, the same on every attempt, and
	// is applied once.
	mustAdmin(t, "DELETE", "/faults", nil)
	fault(t, map[string]any{"kind": "status", "status": 502, "times": 1, "path_prefix": "/api/v1/thing-datas/shadow/reported"})
	fault(t, map[string]any{"kind": "status", "status": 429, "times": 1, "path_prefix": "/api/v1/thing-datas/shadow/reported"})
	before = requestCount(t)
	body, err := c.ShadowReport(thing, map[string]any{"temperature": 20}, nil)
	if err != nil {
		t.Fatalf("ShadowReport after a 502 and a 429: %v", err)
	}
	if n := requestCount(t) - before; n != 3 {
		t.Errorf("ShadowReport: %d requests, want 3", n)
	}
	var rep struct {
		Version     int64  `json:"version"`
		ClientToken string `json:"clientToken"`
	}
	if err := json.Unmarshal(body, &rep); err != nil || rep.Version != 1 || !generatedToken.MatchString(rep.ClientToken) {
		t.Errorf("report response = %s (%v)", body, err)
	}
	history := mustAdmin(t, "GET", "/things/"+thing+"/shadow/history", nil)["history"].([]any)
	if len(history) != 1 || history[0].(map[string]any)["clientToken"] != rep.ClientToken {
		t.Errorf("shadow history = %v, want one report with token %s", history, rep.ClientToken)
	}

	// The jobs calls are retried too, keeping the caller's token.
	mustAdmin(t, "DELETE", "/faults", nil)
	fault(t, map[string]any{"kind": "status", "status": 504, "times": 2, "path_prefix": "/api/v1/thing-datas/jobs/get"})
	before = requestCount(t)
	p, err := c.JobsGetPending(thing, &fleets.JobOptions{ClientToken: "mine"})
	if err != nil || p.ClientToken != "mine" {
		t.Fatalf("JobsGetPending after two 504s: %+v, %v", p, err)
	}
	if n := requestCount(t) - before; n != 3 {
		t.Errorf("JobsGetPending: %d requests, want 3", n)
	}
}

// TestRetryExhausted: a fault that does not stop ("times": 0) is returned after MaxAttempts
// attempts, which the message says.
func TestRetryExhausted(t *testing.T) {
	c := fastRetry(t, 3)
	thing := newThing(t, "exhausted")
	fault(t, map[string]any{"kind": "status", "status": 503, "times": 0, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	before := requestCount(t)
	_, err := c.ShadowGet(thing)
	var fe *fleets.Error
	if !errors.Is(err, fleets.ErrServer) || !errors.As(err, &fe) || fe.HTTPStatus != 503 || len(fe.Body) == 0 {
		t.Fatalf("err = %v, want ErrServer 503 with a body", err)
	}
	mustContain(t, "Message", fe.Message, "(after 3 attempts)")
	if n := requestCount(t) - before; n != 3 {
		t.Errorf("%d requests, want 3", n)
	}

	// Other 4xx are never retried.
	mustAdmin(t, "DELETE", "/faults", nil)
	fault(t, map[string]any{"kind": "status", "status": 400, "times": 0, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	before = requestCount(t)
	if _, err := c.ShadowGet(thing); !errors.Is(err, fleets.ErrBadRequest) || strings.Contains(err.Error(), "attempts") {
		t.Errorf("400: err = %v", err)
	}
	if n := requestCount(t) - before; n != 1 {
		t.Errorf("400: %d requests, want 1", n)
	}

	// Connection refused is retried as well.
	cfg := config()
	cfg.Endpoint = "https://127.0.0.1:1"
	cfg.Retry = &fleets.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	cc, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	_, err = cc.ShadowGet(thing)
	if !errors.Is(err, fleets.ErrConnect) {
		t.Fatalf("err = %v, want ErrConnect", err)
	}
	mustContain(t, "error", err.Error(), "(after 2 attempts)")
}

// TestRetryAfter: Error.RetryAfter carries the server's Retry-After, in seconds or as an
// HTTP date, when the library does not retry; 0 without the header.
func TestRetryAfter(t *testing.T) {
	c := newClientNoRetry(t)
	thing := newThing(t, "retry-after")
	prefix := "/api/v1/thing-datas/" + thing + "/"

	fault(t, map[string]any{"kind": "status", "status": 429, "retry_after_s": 7, "path_prefix": prefix})
	before := requestCount(t)
	start := time.Now()
	_, err := c.ShadowGet(thing)
	var fe *fleets.Error
	if !errors.Is(err, fleets.ErrRateLimited) || !errors.As(err, &fe) {
		t.Fatalf("err = %v, want ErrRateLimited", err)
	}
	if fe.RetryAfter != 7*time.Second || fe.HTTPStatus != 429 || !fe.Temporary() {
		t.Errorf("RetryAfter = %v, HTTPStatus %d", fe.RetryAfter, fe.HTTPStatus)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("retries off, yet the call took %v", d)
	}
	if n := requestCount(t) - before; n != 1 {
		t.Errorf("%d requests with retries off", n)
	}

	fault(t, map[string]any{"kind": "status", "status": 503, "retry_after_s": 30, "retry_after_date": true, "path_prefix": prefix})
	_, err = c.ShadowGet(thing)
	if !errors.As(err, &fe) || fe.RetryAfter < 28*time.Second || fe.RetryAfter > 31*time.Second {
		t.Errorf("HTTP-date Retry-After: err = %v, RetryAfter %v, want ~30 s", err, fe.RetryAfter)
	}

	fault(t, map[string]any{"kind": "status", "status": 503, "path_prefix": prefix})
	_, err = c.ShadowGet(thing)
	if !errors.As(err, &fe) || fe.HTTPStatus != 503 || fe.RetryAfter != 0 {
		t.Errorf("503 without Retry-After: err = %v, RetryAfter %v", err, fe.RetryAfter)
	}

	// The next call's outcome does not keep a stale value (per-thread state is reset).
	fault(t, map[string]any{"kind": "status", "status": 404, "path_prefix": prefix})
	_, err = c.ShadowGet(thing)
	if !errors.As(err, &fe) || fe.RetryAfter != 0 {
		t.Errorf("404 after a 503 with Retry-After: RetryAfter %v", fe.RetryAfter)
	}

	// With retries on, the wait is clamped to MaxBackoff; the final error still reports
	// the server's Retry-After.
	r := fastRetry(t, 2)
	mustAdmin(t, "DELETE", "/faults", nil)
	fault(t, map[string]any{"kind": "status", "status": 429, "retry_after_s": 5, "times": 0, "path_prefix": prefix})
	before, start = requestCount(t), time.Now()
	_, err = r.ShadowGet(thing)
	if !errors.As(err, &fe) || fe.Code != fleets.CodeRateLimited || fe.RetryAfter != 5*time.Second {
		t.Errorf("after retries: err = %v, RetryAfter %v", err, fe.RetryAfter)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Retry-After 5 s with MaxBackoff 50 ms: the call took %v", d)
	}
	if n := requestCount(t) - before; n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// TestNoRetryOfEventsAndCommands: EventPublish and CommandRespond are sent once even with
// retries on (the default policy), since repeating them could duplicate the event.
func TestNoRetryOfEventsAndCommands(t *testing.T) {
	c := newClient(t) // library defaults: 3 attempts
	thing := newThing(t, "noretry")
	fault(t, map[string]any{"kind": "status", "status": 503, "times": 0, "path_prefix": "/api/v1/thing-datas/events"})
	fault(t, map[string]any{"kind": "status", "status": 503, "times": 0, "path_prefix": "/api/v1/thing-datas/command/response"})

	before := requestCount(t)
	_, err := c.EventPublish(thing, "boot", nil, nil)
	if !errors.Is(err, fleets.ErrServer) || strings.Contains(err.Error(), "attempts") {
		t.Fatalf("EventPublish: err = %v, want ErrServer from one attempt", err)
	}
	if n := requestCount(t) - before; n != 1 {
		t.Errorf("EventPublish: %d requests, want 1", n)
	}
	id := mustAdmin(t, "POST", "/things/"+thing+"/commands", map[string]any{"action": "reboot"})["executionId"].(string)
	before = requestCount(t)
	if _, err := c.CommandRespond(thing, id, fleets.ExecutionSucceeded, nil, nil); !errors.Is(err, fleets.ErrServer) {
		t.Fatalf("CommandRespond: err = %v, want ErrServer", err)
	}
	if n := requestCount(t) - before; n != 1 {
		t.Errorf("CommandRespond: %d requests, want 1", n)
	}
	if events := mustAdmin(t, "GET", "/things/"+thing+"/events", nil)["events"].([]any); len(events) != 0 {
		t.Errorf("events = %v", events)
	}
}
