package fleets_test

// Observing the library: SetLogger (log/slog), Client.Stats and Error.RequestSent.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

// recorder is a slog.Handler that keeps every record, safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
	panics  bool // Handle panics (after recording)
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.records = append(r.records, rec.Clone())
	r.mu.Unlock()
	if r.panics {
		panic("handler bug")
	}
	return nil
}

// at returns the messages at level.
func (r *recorder) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if rec.Level == level {
			out = append(out, rec.Message)
		}
	}
	return out
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.records)
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rec := range r.records {
		fmt.Fprintf(&b, "%v %s\n", rec.Level, rec.Message)
	}
	return b.String()
}

// setLogger installs a recorder at level for the test; logging is off again afterwards.
func setLogger(t *testing.T, level slog.Level) *recorder {
	t.Helper()
	r := &recorder{}
	fleets.SetLogger(slog.New(r), level)
	t.Cleanup(func() { fleets.SetLogger(nil, 0) })
	return r
}

func fastRetries(t *testing.T) *fleets.Client {
	t.Helper()
	cfg := config()
	cfg.Retry = &fleets.RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLogNothingByDefault: without SetLogger nothing is logged, not even to slog's default
// logger.
func TestLogNothingByDefault(t *testing.T) {
	r := &recorder{}
	old := slog.Default()
	slog.SetDefault(slog.New(r))
	t.Cleanup(func() { slog.SetDefault(old) })
	c := newClient(t)
	thing := newThing(t, "log-default")
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	if r.len() != 0 {
		t.Fatalf("records without SetLogger: %s", r.all())
	}
}

func TestLogLevels(t *testing.T) {
	thing := newThing(t, "log-levels")
	path := "/api/v1/thing-datas/" + thing + "/shadow"
	r := setLogger(t, slog.LevelDebug)
	c := fastRetries(t)
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	fault(t, map[string]any{"kind": "status", "status": 503, "path_prefix": path})
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShadowGet("nobody-" + thing); !errors.Is(err, fleets.ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	debug, info, warn := r.at(slog.LevelDebug), r.at(slog.LevelInfo), r.at(slog.LevelWarn)
	if n := countPrefix(debug, "GET "+path+" -> 200 in "); n != 2 {
		t.Errorf("%d DEBUG lines for the 2 successful requests: %s", n, r.all())
	}
	if countPrefix(info, "connected to 127.0.0.1:") == 0 {
		t.Errorf("no INFO line for the new connection: %s", r.all())
	}
	if n := countPrefix(info, "GET "+path+": FLEETS_ERR_SERVER: HTTP 503"); n != 1 || !strings.Contains(strings.Join(info, "\n"), "; attempt 2 in ") {
		t.Errorf("%d INFO lines for the retry: %s", n, r.all())
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "/nobody-"+thing+"/shadow failed after") || !strings.Contains(warn[0], "404") {
		t.Errorf("WARN lines %q", warn)
	}
	if e := r.at(slog.LevelError); len(e) != 0 {
		t.Errorf("ERROR lines (9xx only): %q", e)
	}
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func TestLogLevelFiltersAndOff(t *testing.T) {
	thing := newThing(t, "log-filter")
	r := setLogger(t, slog.LevelWarn)
	c := fastRetries(t)
	fault(t, map[string]any{"kind": "status", "status": 503, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	if _, err := c.ShadowGet(thing); err != nil { // a retry (INFO), then 200 (DEBUG)
		t.Fatal(err)
	}
	if _, err := c.ShadowGet("nobody-" + thing); !errors.Is(err, fleets.ErrNotFound) {
		t.Fatal(err)
	}
	if r.len() != 1 || len(r.at(slog.LevelWarn)) != 1 {
		t.Fatalf("at slog.LevelWarn: %s", r.all())
	}
	for _, off := range []func(){
		func() { fleets.SetLogger(slog.New(r), slog.LevelError+1) }, // nothing that important
		func() { fleets.SetLogger(nil, slog.LevelDebug) },
	} {
		off()
		if _, err := c.ShadowGet("nobody-" + thing); !errors.Is(err, fleets.ErrNotFound) {
			t.Fatal(err)
		}
		if r.len() != 1 {
			t.Fatalf("records after logging was turned off: %s", r.all())
		}
	}
}

func TestLogSecretNeverLogged(t *testing.T) {
	thing := newThing(t, "log-secret")
	r := setLogger(t, slog.LevelDebug)
	const wrong = "wr0ng-and-secret-Value-42"
	cfg := config()
	cfg.APISecret = wrong
	bad, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if _, err := bad.ShadowReport(thing, map[string]any{"t": 1}, nil); !errors.Is(err, fleets.ErrUnauthorized) {
		t.Fatalf("err = %v", err)
	}
	if _, err := newClient(t).ShadowReport(thing, map[string]any{"t": 1}, nil); err != nil {
		t.Fatal(err)
	}
	text := r.all()
	mustContain(t, "log", text, "401")
	for _, secret := range []string{wrong, emu.APISecret} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret %q is logged: %s", secret, text)
		}
	}
}

// TestLogConcurrent: the callback runs on every calling thread, several at once (run with
// -race); no message is lost.
func TestLogConcurrent(t *testing.T) {
	thing := newThing(t, "log-threads")
	r := setLogger(t, slog.LevelDebug)
	c := newClient(t)
	const goroutines, calls = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < calls; j++ {
				if _, err := c.ShadowGet(thing); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := countPrefix(r.at(slog.LevelDebug), "GET /api/v1/thing-datas/"+thing+"/shadow -> 200"); n != goroutines*calls {
		t.Errorf("%d DEBUG lines for %d requests", n, goroutines*calls)
	}
}

// TestLogReplaceWhileCalling: SetLogger may run while other goroutines are inside calls.
func TestLogReplaceWhileCalling(t *testing.T) {
	thing := newThing(t, "log-replace")
	c := newClient(t)
	t.Cleanup(func() { fleets.SetLogger(nil, 0) })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.ShadowGet(thing); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	recorders := []*recorder{{}, {}}
	for i := 0; i < 200; i++ {
		switch i % 3 {
		case 2:
			fleets.SetLogger(nil, 0)
		default:
			fleets.SetLogger(slog.New(recorders[i%3]), slog.LevelDebug)
		}
	}
	fleets.SetLogger(slog.New(recorders[0]), slog.LevelDebug)
	before := recorders[0].len()
	deadline := time.Now().Add(5 * time.Second)
	for recorders[0].len() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if recorders[0].len() == before {
		t.Error("no message reached the last logger")
	}
}

func TestLogPanickingHandlerDoesNotBreakCalls(t *testing.T) {
	thing := newThing(t, "log-panic")
	r := &recorder{panics: true}
	fleets.SetLogger(slog.New(r), slog.LevelDebug)
	t.Cleanup(func() { fleets.SetLogger(nil, 0) })
	if _, err := newClient(t).ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	if r.len() < 2 {
		t.Errorf("the handler was not called: %s", r.all())
	}
}

// ---------------------------------------------------------------- Stats

func TestStats(t *testing.T) {
	thing := newThing(t, "stats")
	c := fastRetries(t)
	if s := c.Stats(); s != (fleets.ClientStats{}) {
		t.Fatalf("new client: %+v", s)
	}
	if _, err := c.ShadowReport(thing, map[string]any{"t": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Calls != 2 || s.Requests != 2 || s.Connections != 1 || s.Retries != 0 || s.Failures != 0 || s.StaleResends != 0 {
		t.Errorf("after 2 calls: %+v", s)
	}
	if s.BytesSent < 200 || s.BytesReceived < 200 || s.LastLatency <= 0 || s.LastLatency > 10*time.Second {
		t.Errorf("after 2 calls: %+v", s)
	}
	fault(t, map[string]any{"kind": "status", "status": 503, "times": 2, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	s2 := c.Stats()
	if s2.Calls != 3 || s2.Requests != 5 || s2.Retries != 2 || s2.Failures != 0 || s2.BytesSent <= s.BytesSent {
		t.Errorf("after a call retried twice: %+v", s2)
	}
	if _, err := c.ShadowGet("nobody-" + thing); !errors.Is(err, fleets.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := c.ShadowGet("bad/name"); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Fatal(err)
	}
	if s3 := c.Stats(); s3.Calls != 4 || s3.Failures != 1 || s3.Requests != 6 {
		t.Errorf("after a 404 and a refused argument: %+v", s3)
	}
}

func TestStatsStaleResend(t *testing.T) {
	thing := newThing(t, "stats-stale")
	c := newClientNoRetry(t)
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	// The reused connection breaks before any response byte: sent again on a new one.
	fault(t, map[string]any{"kind": "reset", "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Calls != 2 || s.Requests != 3 || s.StaleResends != 1 || s.Connections != 2 || s.Failures != 0 {
		t.Errorf("%+v", s)
	}
}

func TestStatsAfterCloseAndConcurrent(t *testing.T) {
	thing := newThing(t, "stats-close")
	c, err := fleets.NewClient(config())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 25; j++ {
				if _, err := c.ShadowGet(thing); err != nil {
					t.Error(err)
					return
				}
				_ = c.Stats()
			}
		}()
	}
	wg.Wait()
	s := c.Stats()
	if s.Calls != 100 || s.Requests != 100 || s.Connections < 1 || s.Connections > 4 {
		t.Errorf("%+v", s)
	}
	c.Close()
	if got := c.Stats(); got != s {
		t.Errorf("after Close: %+v, want the counters at Close %+v", got, s)
	}
	if _, err := c.ShadowGet(thing); !errors.Is(err, fleets.ErrClosed) {
		t.Fatal(err)
	}
	if got := c.Stats(); got != s {
		t.Errorf("after a call on the closed client: %+v", got)
	}
}

// ---------------------------------------------------------------- RequestSent

func TestRequestSent(t *testing.T) {
	thing := newThing(t, "sent")
	check := func(name string, err error, want error, sent bool) {
		t.Helper()
		var fe *fleets.Error
		if !errors.Is(err, want) || !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want %v", name, err, want)
			return
		}
		if fe.RequestSent() != sent {
			t.Errorf("%s: RequestSent() = %t, want %t (%v)", name, fe.RequestSent(), sent, err)
		}
	}
	c := newClientNoRetry(t)
	_, err := c.ShadowGet("bad/name")
	check("refused argument", err, fleets.ErrInvalidArgument, false)
	_, err = c.ShadowReport(thing, []int{1}, nil)
	check("not a JSON object", err, fleets.ErrInvalidJSON, false)
	_, err = c.ShadowGet("nobody-" + thing)
	check("404", err, fleets.ErrNotFound, true)
	fault(t, map[string]any{"kind": "truncate", "path_prefix": "/api/v1/thing-datas/events"})
	_, err = c.EventPublish(thing, "boot", nil, nil)
	check("truncated response", err, fleets.ErrIO, true)

	cfg := config()
	cfg.Timeout, cfg.Retry = 500*time.Millisecond, &fleets.RetryPolicy{MaxAttempts: 1}
	slow, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fault(t, map[string]any{"kind": "stall", "delay_ms": 3000, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	_, err = slow.ShadowGet(thing)
	check("timeout", err, fleets.ErrTimeout, true)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	refused, err := fleets.NewClient(fleets.Config{Endpoint: "https://" + addr, APIKey: "k", APISecret: "s", Retry: &fleets.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	_, err = refused.ShadowGet(thing)
	check("connection refused", err, fleets.ErrConnect, false)

	cfg = config()
	cfg.CAFile, cfg.Retry = writeSelfSignedCA(t), &fleets.RetryPolicy{MaxAttempts: 1}
	untrusted, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer untrusted.Close()
	_, err = untrusted.ShadowGet(thing)
	check("TLS", err, fleets.ErrTLS, false)

	// Every code agrees with fleets_result_request_sent's groups.
	for code, sent := range map[fleets.Code]bool{
		fleets.CodeInvalidConfig: false, fleets.CodeBufferTooSmall: true, fleets.CodeServer: true,
		fleets.CodeRateLimited: true, fleets.CodeBadResponse: true, fleets.CodeInternal: true, fleets.Code(4242): true,
	} {
		if got := (&fleets.Error{Code: code}).RequestSent(); got != sent {
			t.Errorf("%v: RequestSent() = %t, want %t", code, got, sent)
		}
	}
}
