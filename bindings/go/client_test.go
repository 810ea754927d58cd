package fleets_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

func TestVersion(t *testing.T) {
	if v := fleets.Version(); v == "" || strings.Count(v, ".") != 2 {
		t.Fatalf("Version() = %q", v)
	}
}

func TestShadowReportAndGet(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "shadow")

	body, err := c.ShadowReport(thing, map[string]any{"temperature": 21.5, "humidity": 58}, &fleets.ReportOptions{ClientToken: "tok-001"})
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		State struct {
			Reported map[string]any `json:"reported"`
		} `json:"state"`
		Version     int64  `json:"version"`
		ClientToken string `json:"clientToken"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if rep.Version != 1 || rep.ClientToken != "tok-001" || rep.State.Reported["temperature"] != 21.5 {
		t.Errorf("report response = %s", body)
	}

	// A struct and a json.RawMessage are accepted too; a version works for locking.
	type state struct {
		Firmware string `json:"firmware"`
	}
	if _, err := c.ShadowReport(thing, state{"2.0.0"}, &fleets.ReportOptions{Version: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShadowReport(thing, json.RawMessage(`{"humidity":null}`), nil); err != nil {
		t.Fatal(err)
	}
	mustAdmin(t, "PUT", "/things/"+thing+"/shadow/desired", map[string]any{"targetTemperature": 24})

	before := time.Now().Add(-2 * time.Second)
	s, err := c.ShadowGet(thing)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 4 {
		t.Errorf("Version = %d, want 4", s.Version)
	}
	if s.Reported["temperature"] != 21.5 || s.Reported["firmware"] != "2.0.0" {
		t.Errorf("Reported = %v", s.Reported)
	}
	if _, ok := s.Reported["humidity"]; ok {
		t.Errorf("humidity was deleted but Reported = %v", s.Reported)
	}
	if s.Desired["targetTemperature"] != float64(24) || s.Delta["targetTemperature"] != float64(24) {
		t.Errorf("Desired = %v, Delta = %v", s.Desired, s.Delta)
	}
	if s.UpdatedAt.Before(before.Truncate(time.Second)) || s.UpdatedAt.After(time.Now().Add(2*time.Second)) {
		t.Errorf("UpdatedAt = %v, now %v", s.UpdatedAt, time.Now())
	}
	if !json.Valid(s.Raw) || !strings.Contains(string(s.Raw), `"delta"`) {
		t.Errorf("Raw = %s", s.Raw)
	}

	// Stale version: 409 with the server's body.
	_, err = c.ShadowReport(thing, map[string]any{"x": 1}, &fleets.ReportOptions{Version: 1})
	var fe *fleets.Error
	if !errors.Is(err, fleets.ErrConflict) || !errors.As(err, &fe) {
		t.Fatalf("stale version: err = %v, want ErrConflict", err)
	}
	if fe.Code != fleets.CodeConflict || fe.HTTPStatus != 409 {
		t.Errorf("Error = %+v", fe)
	}
	mustContain(t, "Body", string(fe.Body), "VersionConflict")
	mustContain(t, "Error()", fe.Error(), "FLEETS_ERR_CONFLICT")
}

func TestEventPublish(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "event")
	ts := time.UnixMilli(1748390400123)
	body, err := c.EventPublish(thing, "highTemperature", map[string]any{"currentTemp": 45.2},
		&fleets.EventOptions{Severity: fleets.SeverityWarn, Timestamp: ts, AppID: "app-1"})
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "response", string(body), "eventId")
	if _, err := c.EventPublish(thing, "boot", nil, nil); err != nil {
		t.Fatal(err)
	}
	events := mustAdmin(t, "GET", "/things/"+thing+"/events", nil)["events"].([]any)
	if len(events) != 2 {
		t.Fatalf("events = %v", events)
	}
	e0, e1 := events[0].(map[string]any), events[1].(map[string]any)
	if e0["eventType"] != "highTemperature" || e0["severity"] != "warn" || e0["appId"] != "app-1" ||
		e0["timestamp"] != float64(1748390400123) || e0["data"].(map[string]any)["currentTemp"] != 45.2 {
		t.Errorf("event 0 = %v", e0)
	}
	if _, ok := e1["severity"]; ok {
		t.Errorf("event 1 has a severity: %v", e1)
	}
	if ms, _ := e1["timestamp"].(float64); time.Since(time.UnixMilli(int64(ms))).Abs() > time.Minute {
		t.Errorf("event 1 timestamp %v is not now", e1["timestamp"])
	}
	if _, err := c.EventPublish(thing, "x", nil, &fleets.EventOptions{Severity: 7}); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("bad severity: err = %v", err)
	}
	if _, err := c.EventPublish(thing, "", nil, nil); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("empty event type: err = %v", err)
	}
	// Event type and app id: at most 128 bytes.
	long := strings.Repeat("e", 128)
	if _, err := c.EventPublish(thing, long, nil, &fleets.EventOptions{AppID: long}); err != nil {
		t.Errorf("128-byte event type and app id: %v", err)
	}
	before := requestCount(t)
	if _, err := c.EventPublish(thing, long+"e", nil, nil); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("129-byte event type: err = %v", err)
	}
	if _, err := c.EventPublish(thing, "x", nil, &fleets.EventOptions{AppID: long + "a"}); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("129-byte app id: err = %v", err)
	}
	if n := requestCount(t) - before; n != 0 {
		t.Errorf("%d requests sent for rejected events", n)
	}
	if _, err := c.EventPublish(thing, "x", []int{1}, nil); !errors.Is(err, fleets.ErrInvalidJSON) {
		t.Errorf("array data: err = %v", err)
	}
}

func TestCommandRespond(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "command")
	id := mustAdmin(t, "POST", "/things/"+thing+"/commands", map[string]any{"action": "setTemperature", "params": map[string]any{"t": 24}})["executionId"].(string)

	if _, err := c.CommandRespond(thing, id, fleets.ExecutionInProgress, nil, nil); err != nil {
		t.Fatal(err)
	}
	body, err := c.CommandRespond(thing, id, fleets.ExecutionSucceeded, map[string]any{"currentTemperature": 24},
		&fleets.CommandOptions{Timestamp: time.Unix(1748390405, 0)})
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "response", string(body), `"SUCCEEDED"`)
	cmd := mustAdmin(t, "GET", "/things/"+thing+"/commands/"+id, nil)
	if cmd["status"] != "SUCCEEDED" {
		t.Errorf("command = %v", cmd)
	}
	mustContain(t, "command", fmt.Sprint(cmd), "currentTemperature")

	if _, err := c.CommandRespond(thing, id, fleets.ExecutionFailed, nil, nil); !errors.Is(err, fleets.ErrConflict) {
		t.Errorf("second final response: err = %v, want ErrConflict", err)
	}
	if _, err := c.CommandRespond(thing, "no-such-execution", fleets.ExecutionSucceeded, nil, nil); !errors.Is(err, fleets.ErrNotFound) {
		t.Errorf("unknown execution: err = %v, want ErrNotFound", err)
	}
	if _, err := c.CommandRespond(thing, id, fleets.ExecutionStatus("TIMED_OUT"), nil, nil); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("TIMED_OUT from a device: err = %v, want ErrInvalidArgument", err)
	}
}

func TestJobs(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "jobs")
	other := newThing(t, "jobs-other")
	jobA := fmt.Sprintf("job-a-%d", thingSeq.Add(1))
	jobB := fmt.Sprintf("job-b-%d", thingSeq.Add(1))
	mustAdmin(t, "POST", "/jobs", map[string]any{"jobId": jobA, "document": map[string]any{"operation": "firmwareUpdate", "version": "2.0.0"},
		"targets": map[string]any{"thingNames": []string{thing, other}}})
	time.Sleep(5 * time.Millisecond)
	mustAdmin(t, "POST", "/jobs", map[string]any{"jobId": jobB, "document": map[string]any{"operation": "reboot"},
		"targets": map[string]any{"thingNames": []string{thing}}})

	p, err := c.JobsGetPending(thing, &fleets.JobOptions{ClientToken: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.InProgress) != 0 || len(p.Queued) != 2 || p.Queued[0].JobID != jobA || p.Queued[1].JobID != jobB || p.ClientToken != "req-1" {
		t.Fatalf("pending = %+v (%s)", p, p.Raw)
	}
	if q := p.Queued[0]; q.VersionNumber != 1 || q.ExecutionNumber != 1 || q.QueuedAt.IsZero() || !q.StartedAt.IsZero() {
		t.Errorf("summary = %+v", q)
	}

	r, err := c.JobsStartNext(thing, &fleets.JobsStartNextOptions{StatusDetails: map[string]any{"step": "download"}, StepTimeout: 90 * time.Second, ClientToken: "req-2"})
	if err != nil {
		t.Fatal(err)
	}
	e := r.Execution
	if e == nil || e.JobID != jobA || e.ThingName != thing || e.Status != fleets.ExecutionInProgress || e.VersionNumber != 2 ||
		e.StatusDetails["step"] != "download" || e.StartedAt.IsZero() || r.ClientToken != "req-2" {
		t.Fatalf("start-next = %+v (%s)", e, r.Raw)
	}
	if e.TimeBeforeTimeout <= 60*time.Second || e.TimeBeforeTimeout > 120*time.Second {
		t.Errorf("TimeBeforeTimeout = %v, want 2 min (90 s rounded up)", e.TimeBeforeTimeout)
	}
	var doc struct{ Operation, Version string }
	if err := json.Unmarshal(e.JobDocument, &doc); err != nil || doc.Operation != "firmwareUpdate" || doc.Version != "2.0.0" {
		t.Errorf("JobDocument = %s (%v)", e.JobDocument, err)
	}

	d, err := c.JobsDescribe(thing, jobB, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Execution.Status != "QUEUED" || d.Execution.VersionNumber != 1 || !strings.Contains(string(d.Execution.JobDocument), "reboot") {
		t.Errorf("describe = %+v", d.Execution)
	}

	u, err := c.JobsUpdate(thing, jobA, fleets.ExecutionSucceeded, &fleets.JobsUpdateOptions{
		StatusDetails: map[string]any{"installedVersion": "2.0.0"}, ExpectedVersion: 2, ClientToken: "req-3"})
	if err != nil {
		t.Fatal(err)
	}
	if u.ExecutionState.Status != fleets.ExecutionSucceeded || u.ExecutionState.VersionNumber != 3 ||
		u.ExecutionState.StatusDetails["installedVersion"] != "2.0.0" || u.ClientToken != "req-3" ||
		u.Timestamp.IsZero() || !strings.Contains(string(u.JobDocument), "firmwareUpdate") {
		t.Errorf("update = %+v (%s)", u, u.Raw)
	}
	if !u.ExecutionState.Status.IsTerminal() {
		t.Error("SUCCEEDED is not terminal")
	}

	// Leaving a terminal state and a stale version are conflicts; the body has the state.
	_, err = c.JobsUpdate(thing, jobA, fleets.ExecutionInProgress, nil)
	var fe *fleets.Error
	if !errors.As(err, &fe) || !errors.Is(err, fleets.ErrConflict) {
		t.Fatalf("update of a terminal execution: err = %v", err)
	}
	mustContain(t, "Body", string(fe.Body), "InvalidStateTransition")
	if _, err := c.JobsUpdate(thing, jobB, fleets.ExecutionInProgress, &fleets.JobsUpdateOptions{ExpectedVersion: 9}); !errors.Is(err, fleets.ErrConflict) {
		t.Errorf("stale expected version: err = %v", err)
	}
	if _, err := c.JobsDescribe(thing, "no-such-job", nil); !errors.Is(err, fleets.ErrNotFound) {
		t.Errorf("unknown job: err = %v", err)
	}
	if _, err := c.JobsUpdate(thing, jobB, "QUEUED", nil); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("QUEUED from a device: err = %v", err)
	}

	// B is next; once it is done nothing is pending.
	r, err = c.JobsStartNext(thing, nil)
	if err != nil || r.Execution == nil || r.Execution.JobID != jobB {
		t.Fatalf("start-next B = %+v, %v", r, err)
	}
	if _, err := c.JobsUpdate(thing, jobB, fleets.ExecutionRejected, nil); err != nil {
		t.Fatal(err)
	}
	// Without a ClientToken (and retries on by default) libfleets sends a generated one,
	// which the server echoes: {"clientToken":"fleets-<16 hex>"}.
	r, err = c.JobsStartNext(thing, nil)
	if err != nil || r.Execution != nil || !generatedToken.MatchString(r.ClientToken) ||
		string(r.Raw) != `{"clientToken":"`+r.ClientToken+`"}` {
		t.Fatalf("start-next with nothing pending = %+v (%s), %v", r, r.Raw, err)
	}
	p, err = c.JobsGetPending(thing, nil)
	if err != nil || len(p.InProgress)+len(p.Queued) != 0 {
		t.Fatalf("pending after all done = %+v, %v", p, err)
	}
}

// TestErrorMapping covers every error kind a device can meet, with errors.Is. The client
// does not retry, so that one injected fault is what the call returns (retries: retry_test.go).
func TestErrorMapping(t *testing.T) {
	c := newClientNoRetry(t)
	thing := newThing(t, "errors")
	prefix := "/api/v1/thing-datas/" + thing + "/"
	for _, tc := range []struct {
		name   string
		rule   map[string]any
		want   error
		status int
	}{
		{"400", map[string]any{"kind": "status", "status": 400}, fleets.ErrBadRequest, 400},
		{"403", map[string]any{"kind": "status", "status": 403}, fleets.ErrForbidden, 403},
		{"404", map[string]any{"kind": "status", "status": 404}, fleets.ErrNotFound, 404},
		{"409", map[string]any{"kind": "status", "status": 409}, fleets.ErrConflict, 409},
		{"413", map[string]any{"kind": "status", "status": 413}, fleets.ErrPayloadTooLarge, 413},
		{"429", map[string]any{"kind": "status", "status": 429, "retry_after_s": 1}, fleets.ErrRateLimited, 429},
		{"502", map[string]any{"kind": "status", "status": 502}, fleets.ErrServer, 502},
		{"500", map[string]any{"kind": "status", "status": 500}, fleets.ErrServer, 500},
		{"503", map[string]any{"kind": "status", "status": 503}, fleets.ErrServer, 503},
		{"302", map[string]any{"kind": "status", "status": 302}, fleets.ErrHTTP, 302},
		{"418", map[string]any{"kind": "status", "status": 418, "body": "I'm a teapot"}, fleets.ErrHTTP, 418},
		{"200 not JSON", map[string]any{"kind": "status", "status": 200, "body": "plain text"}, fleets.ErrBadResponse, 200},
		{"reset", map[string]any{"kind": "reset", "times": 0}, fleets.ErrIO, 0}, // every time: a reset on a reused connection is resent once
		{"truncate", map[string]any{"kind": "truncate"}, fleets.ErrIO, 0},
		{"garbage", map[string]any{"kind": "garbage"}, fleets.ErrIO, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rule["path_prefix"] = prefix
			fault(t, tc.rule)
			_, err := c.ShadowGet(thing)
			var fe *fleets.Error
			if !errors.Is(err, tc.want) || !errors.As(err, &fe) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if fe.HTTPStatus != tc.status {
				t.Errorf("HTTPStatus = %d, want %d (%v)", fe.HTTPStatus, tc.status, err)
			}
			if tc.status >= 300 && len(fe.Body) == 0 {
				t.Errorf("no Body: %+v", fe)
			}
			if fe.Message == "" {
				t.Error("no Message")
			}
			for _, s := range []error{fleets.ErrNotFound, fleets.ErrTimeout, fleets.ErrUnauthorized} {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("%v also matches %v", err, s)
				}
			}
		})
	}
	// The client is still fine afterwards.
	if _, err := c.ShadowGet(thing); err != nil {
		t.Fatal(err)
	}

	t.Run("not found", func(t *testing.T) {
		_, err := c.ShadowGet("never-registered-thing")
		var fe *fleets.Error
		if !errors.Is(err, fleets.ErrNotFound) || !errors.As(err, &fe) || fe.HTTPStatus != 404 {
			t.Fatalf("err = %v", err)
		}
		mustContain(t, "Body", string(fe.Body), "never-registered-thing")
	})
	t.Run("timeout", func(t *testing.T) {
		cfg := config()
		cfg.Timeout = 300 * time.Millisecond
		tc, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		fault(t, map[string]any{"kind": "stall", "path_prefix": prefix, "delay_ms": 5000})
		start := time.Now()
		_, err = tc.ShadowGet(thing)
		if !errors.Is(err, fleets.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("timed out after %v", d)
		}
		if fe := err.(*fleets.Error); !fe.Temporary() || fe.HTTPStatus != 0 {
			t.Errorf("%+v", fe)
		}
	})
	t.Run("unauthorized, secret not leaked", func(t *testing.T) {
		cfg := config()
		cfg.APISecret = "wrong-secret-d41d8cd98f00"
		uc, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer uc.Close()
		_, err = uc.ShadowReport(thing, map[string]any{"a": 1}, nil)
		if !errors.Is(err, fleets.ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		if strings.Contains(err.Error(), cfg.APISecret) || strings.Contains(fmt.Sprintf("%+v %#v", err, cfg), cfg.APISecret) {
			t.Errorf("the secret leaks: %v / %v", err, cfg)
		}
	})
	t.Run("TLS: unknown CA", func(t *testing.T) {
		cfg := config()
		cfg.CAFile = writeSelfSignedCA(t)
		tc, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		if _, err := tc.ShadowGet(thing); !errors.Is(err, fleets.ErrTLS) {
			t.Fatalf("err = %v, want ErrTLS", err)
		}
	})
	t.Run("connect refused", func(t *testing.T) {
		cfg := config()
		cfg.Endpoint = "https://127.0.0.1:1"
		cc, err := fleets.NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		if _, err := cc.ShadowGet(thing); !errors.Is(err, fleets.ErrConnect) {
			t.Fatalf("err = %v, want ErrConnect", err)
		}
	})
	t.Run("invalid arguments send nothing", func(t *testing.T) {
		before := requestCount(t)
		for _, call := range []func() error{
			func() error { _, err := c.ShadowGet("bad/name"); return err },
			func() error { _, err := c.ShadowGet("nul\x00byte"); return err },
			func() error { _, err := c.ShadowGet(""); return err },
			func() error {
				_, err := c.ShadowReport(thing, map[string]any{}, &fleets.ReportOptions{ClientToken: strings.Repeat("t", 65)})
				return err
			},
			func() error { _, err := c.JobsDescribe(thing, "..", nil); return err },
			func() error {
				_, err := c.JobsStartNext(thing, &fleets.JobsStartNextOptions{StepTimeout: -time.Second})
				return err
			},
		} {
			err := call()
			var fe *fleets.Error
			if !errors.Is(err, fleets.ErrInvalidArgument) || !errors.As(err, &fe) || fe.HTTPStatus != 0 || fe.Body != nil {
				t.Errorf("err = %#v, want ErrInvalidArgument without a response", err)
			}
		}
		for _, v := range []any{[]int{1}, "text", nil, json.RawMessage(`{"a":`)} {
			_, err := c.ShadowReport(thing, v, nil)
			if !errors.Is(err, fleets.ErrInvalidJSON) {
				t.Errorf("ShadowReport(%#v): err = %v, want ErrInvalidJSON", v, err)
			}
		}
		_, err := c.ShadowReport(thing, map[string]any{"ch": make(chan int)}, nil)
		var ute *json.UnsupportedTypeError
		if !errors.Is(err, fleets.ErrInvalidJSON) || !errors.As(err, &ute) {
			t.Errorf("unencodable value: err = %v", err)
		}
		if n := requestCount(t); n != before {
			t.Errorf("%d requests were sent for rejected arguments", n-before)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("no certificate here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*fleets.Config)
		want error
	}{
		{"not a URL", func(c *fleets.Config) { c.Endpoint = "not a url" }, fleets.ErrInvalidConfig},
		{"ftp", func(c *fleets.Config) { c.Endpoint = "ftp://example.com" }, fleets.ErrInvalidConfig},
		{"http to a remote host", func(c *fleets.Config) { c.Endpoint = "http://example.com" }, fleets.ErrInvalidConfig},
		{"missing CA file", func(c *fleets.Config) { c.CAFile = filepath.Join(dir, "missing.pem") }, fleets.ErrInvalidConfig},
		{"CA file without certificate", func(c *fleets.Config) { c.CAFile = empty }, fleets.ErrInvalidConfig},
		{"NUL in secret", func(c *fleets.Config) { c.APISecret = "sec\x00ret" }, fleets.ErrInvalidArgument},
		{"negative timeout", func(c *fleets.Config) { c.Timeout = -time.Second }, fleets.ErrInvalidArgument},
		{"huge timeout", func(c *fleets.Config) { c.ConnectTimeout = 1 << 62 }, fleets.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			cfg.APISecret = "s3cr3t-value-must-not-leak"
			tc.edit(&cfg)
			c, err := fleets.NewClient(cfg)
			if !errors.Is(err, tc.want) {
				c.Close()
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("secret in %q", err)
			}
		})
	}
	if s := fmt.Sprintf("%v %+v %#v %s", config(), config(), config(), config()); strings.Contains(s, emu.APISecret) {
		t.Errorf("Config prints its secret: %s", s)
	}
}

func TestNewClientFromEnv(t *testing.T) {
	// TestMain set FLEETS_ENDPOINT, FLEETS_API_KEY, FLEETS_API_SECRET and FLEETS_CA_FILE.
	c, err := fleets.NewClientFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ShadowGet("thermostat-001"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLEETS_API_KEY", "")
	os.Unsetenv("FLEETS_API_KEY")
	_, err = fleets.NewClientFromEnv()
	if !errors.Is(err, fleets.ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	mustContain(t, "error", err.Error(), "FLEETS_API_KEY")
}

// TestLargeResponses: bodies larger than the pooled buffer come through
// fleets_last_response, without a second request.
func TestLargeResponses(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "large")
	big := map[string]any{}
	for i := 0; i < 300; i++ {
		big[fmt.Sprintf("key%03d", i)] = strings.Repeat(string(rune('a'+i%26)), 2000)
	}
	before := requestCount(t)
	body, err := c.ShadowReport(thing, big, nil) // the response echoes the state: ~600 KB
	if err != nil {
		t.Fatal(err)
	}
	if len(body) < 600_000 || !json.Valid(body) {
		t.Fatalf("report response: %d bytes, valid JSON %v", len(body), json.Valid(body))
	}
	s, err := c.ShadowGet(thing)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Reported) != 300 || s.Reported["key299"] != strings.Repeat("n", 2000) || s.Version != 1 {
		t.Fatalf("large shadow: %d keys, version %d", len(s.Reported), s.Version)
	}
	if n := requestCount(t) - before; n != 2 {
		t.Errorf("%d requests for 2 calls", n)
	}

	// A large error body is complete too.
	fault(t, map[string]any{"kind": "status", "status": 500, "path_prefix": "/api/v1/thing-datas/" + thing + "/",
		"body": map[string]any{"code": "Big", "message": strings.Repeat("m", 100_000)}})
	_, err = c.ShadowGet(thing)
	var fe *fleets.Error
	if !errors.As(err, &fe) || fe.Code != fleets.CodeServer || len(fe.Body) < 100_000 || !json.Valid(fe.Body) {
		t.Fatalf("large error body: %v", err)
	}
	// Over the library's response limit (1 MiB): a clean error.
	more := map[string]any{}
	for i := 0; i < 300; i++ {
		more[fmt.Sprintf("more%03d", i)] = strings.Repeat("z", 2000)
	}
	if _, err := c.ShadowReport(thing, more, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShadowGet(thing); !errors.Is(err, fleets.ErrBadResponse) {
		t.Fatalf("1.2 MB shadow: err = %v, want ErrBadResponse", err)
	}
}

// TestConcurrent: 64 goroutines share one client; each checks that the body and the error
// it gets are its own (the per-thread state of libfleets must not mix them up).
func TestConcurrent(t *testing.T) {
	c := newClient(t)
	const goroutines, rounds = 64, 20
	things := make([]string, goroutines)
	for i := range things {
		things[i] = newThing(t, fmt.Sprintf("conc%02d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for i := 0; i < goroutines; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			thing := things[i]
			for r := 0; r < rounds; r++ {
				body, err := c.ShadowReport(thing, map[string]any{"g": i, "r": r}, nil)
				if err != nil {
					errs <- fmt.Errorf("goroutine %d: %w", i, err)
					return
				}
				want := fmt.Sprintf(`"r":%d`, r)
				if !strings.Contains(string(body), want) || !strings.Contains(string(body), fmt.Sprintf(`"g":%d`, i)) {
					errs <- fmt.Errorf("goroutine %d round %d got %s", i, r, body)
					return
				}
				missing := fmt.Sprintf("missing-%d-%d", i, r)
				_, err = c.ShadowGet(missing)
				var fe *fleets.Error
				if !errors.As(err, &fe) || fe.Code != fleets.CodeNotFound || fe.HTTPStatus != 404 ||
					!strings.Contains(string(fe.Body), missing) || !strings.Contains(fe.Message, missing) {
					errs <- fmt.Errorf("goroutine %d round %d: error %v / %s", i, r, err, fe.Body)
					return
				}
				runtime.Gosched()
			}
			s, err := c.ShadowGet(thing)
			if err != nil || s.Version != rounds || s.Reported["g"] != float64(i) {
				errs <- fmt.Errorf("goroutine %d: final shadow %+v, %v", i, s, err)
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClose(t *testing.T) {
	base := fleets.LiveHandles()
	c, err := fleets.NewClient(config())
	if err != nil {
		t.Fatal(err)
	}
	if fleets.LiveHandles() != base+1 {
		t.Fatalf("LiveHandles = %d, want %d", fleets.LiveHandles(), base+1)
	}
	// Close while idle (never used), twice.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if fleets.LiveHandles() != base {
		t.Fatalf("LiveHandles = %d after Close, want %d", fleets.LiveHandles(), base)
	}
	if _, err := c.ShadowGet("thermostat-001"); !errors.Is(err, fleets.ErrClosed) {
		t.Fatalf("call after Close: err = %v, want ErrClosed", err)
	}

	// Close after use, from many goroutines at once.
	c = newClient(t)
	if _, err := c.ShadowGet("thermostat-001"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.Close() }()
	}
	wg.Wait()
	if fleets.LiveHandles() != base {
		t.Fatalf("LiveHandles = %d, want %d", fleets.LiveHandles(), base)
	}

	// Close waits for a call in progress, which completes normally.
	thing := newThing(t, "close")
	c = newClient(t)
	fault(t, map[string]any{"kind": "delay", "delay_ms": 400, "path_prefix": "/api/v1/thing-datas/" + thing + "/"})
	before := requestCount(t)
	done := make(chan error, 1)
	go func() { _, err := c.ShadowGet(thing); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); requestCount(t) == before; {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached the emulator")
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	c.Close()
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("Close returned after %v, before the call in progress", d)
	}
	if err := <-done; err != nil {
		t.Fatalf("call in progress during Close: %v", err)
	}
}

// TestFinalizer: a client dropped without Close is freed by the garbage collector.
func TestFinalizer(t *testing.T) {
	base := fleets.LiveHandles()
	func() {
		c, err := fleets.NewClient(config())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.ShadowGet("thermostat-001"); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for fleets.LiveHandles() != base && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if fleets.LiveHandles() != base {
		t.Fatalf("LiveHandles = %d, want %d: the cleanup did not run", fleets.LiveHandles(), base)
	}
}

func TestCodeNames(t *testing.T) {
	if fleets.CodeTimeout.String() != "FLEETS_ERR_TIMEOUT" || fleets.Code(4242).String() != "Code(4242)" {
		t.Error(fleets.CodeTimeout, fleets.Code(4242))
	}
	if !errors.Is(&fleets.Error{Code: fleets.CodeNullArgument}, fleets.ErrInvalidArgument) ||
		!errors.Is(&fleets.Error{Code: fleets.CodePanic}, fleets.ErrInternal) {
		t.Error("aliases")
	}
	if errors.Is(&fleets.Error{Code: fleets.CodeServer}, fleets.ErrClosed) {
		t.Error("ErrClosed matches a server error")
	}
}
