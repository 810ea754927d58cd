package fleets_test

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

func openOutbox(t *testing.T, dir string, opts *fleets.OutboxOptions) *fleets.Outbox {
	t.Helper()
	o, err := fleets.OpenOutbox(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func eventSeqs(t *testing.T, thing string) []int {
	t.Helper()
	var seqs []int
	for _, e := range mustAdmin(t, "GET", "/things/"+thing+"/events", nil)["events"].([]any) {
		seqs = append(seqs, int(e.(map[string]any)["data"].(map[string]any)["seq"].(float64)))
	}
	return seqs
}

func closedPortClient(t *testing.T) *fleets.Client {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := config()
	cfg.Endpoint = "https://" + addr
	c, err := fleets.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestOutboxDeliversEveryKindInOrder(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "outbox")
	cmd := mustAdmin(t, "POST", "/things/"+thing+"/commands", map[string]any{"action": "reboot"})["executionId"].(string)
	job := mustAdmin(t, "POST", "/jobs", map[string]any{"document": map[string]any{"op": "x"}, "targets": map[string]any{"thingNames": []string{thing}}})["jobId"].(string)
	o := openOutbox(t, t.TempDir(), nil)
	for seq := 0; seq < 3; seq++ {
		if err := o.EnqueueEvent(thing, "tick", map[string]any{"seq": seq}, &fleets.EventOptions{Severity: fleets.SeverityWarn}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.EnqueueReport(thing, map[string]any{"temperature": 21.5}, nil); err != nil {
		t.Fatal(err)
	}
	if err := o.EnqueueCommandResponse(thing, cmd, fleets.ExecutionSucceeded, map[string]any{"ok": true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := o.EnqueueJobUpdate(thing, job, fleets.ExecutionSucceeded, &fleets.JobsUpdateOptions{StatusDetails: map[string]any{"p": 100}}); err != nil {
		t.Fatal(err)
	}
	if s, _ := o.Stats(); s.QueuedRecords != 6 || s.LastError != nil {
		t.Fatalf("stats = %+v", s)
	}
	n, err := o.Flush(c, 30*time.Second)
	if err != nil || n != 6 {
		t.Fatalf("Flush = %d, %v", n, err)
	}
	if got := fmt.Sprint(eventSeqs(t, thing)); got != "[0 1 2]" {
		t.Errorf("events = %s", got)
	}
	history := mustAdmin(t, "GET", "/things/"+thing+"/shadow/history", nil)["history"].([]any)
	if tok := history[0].(map[string]any)["clientToken"].(string); !generatedToken.MatchString(tok) {
		t.Errorf("report token = %q", tok)
	}
	if st := mustAdmin(t, "GET", "/things/"+thing+"/commands/"+cmd, nil)["status"]; st != "SUCCEEDED" {
		t.Errorf("command status = %v", st)
	}
	if st := mustAdmin(t, "GET", "/jobs/"+job+"/things/"+thing, nil)["status"]; st != "SUCCEEDED" {
		t.Errorf("job status = %v", st)
	}
	s, err := o.Stats()
	if err != nil || s.QueuedRecords != 0 || s.DeliveredRecords != 6 || s.OldestAge != 0 {
		t.Errorf("stats = %+v, %v", s, err)
	}
}

func TestOutboxOutageThenDelivery(t *testing.T) {
	c := newClient(t)
	offline := closedPortClient(t)
	thing := newThing(t, "outage")
	o := openOutbox(t, t.TempDir(), &fleets.OutboxOptions{Sync: fleets.SyncBatch, BatchMaxDelay: 50 * time.Millisecond})
	for seq := 0; seq < 10; seq++ {
		if err := o.EnqueueEvent(thing, "tick", map[string]any{"seq": seq}, nil); err != nil {
			t.Fatal(err)
		}
	}
	n, err := o.Flush(offline, 5*time.Second)
	if n != 0 || !errors.Is(err, fleets.ErrConnect) {
		t.Fatalf("offline Flush = %d, %v", n, err)
	}
	s, _ := o.Stats()
	if s.QueuedRecords != 10 || s.LastError == nil || s.LastError.Code != fleets.CodeConnect {
		t.Fatalf("stats = %+v", s)
	}
	// A report for an unknown thing is dead-lettered; the rest goes through.
	if err := o.EnqueueReport("not-registered-"+thing, map[string]any{"a": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := o.Flush(c, 0); n != 10 || err != nil {
		t.Fatalf("Flush = %d, %v", n, err)
	}
	if got := fmt.Sprint(eventSeqs(t, thing)); got != "[0 1 2 3 4 5 6 7 8 9]" {
		t.Errorf("events = %s", got)
	}
	s, _ = o.Stats()
	if s.DeadLetteredRecords != 1 || !errors.Is(s.LastError, fleets.ErrNotFound) || s.LastError.HTTPStatus != 404 ||
		!strings.Contains(s.LastError.Message, "dead-lettered") {
		t.Errorf("stats = %+v", s)
	}
}

func TestOutboxArgumentsLockAndReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "box")
	o := openOutbox(t, dir, nil)
	for _, err := range []error{
		o.EnqueueReport("bad thing", map[string]any{}, nil),
		o.EnqueueEvent("t", "", nil, nil),
		o.EnqueueCommandResponse("t", "a/b", fleets.ExecutionFailed, nil, nil),
		o.EnqueueJobUpdate("t", "j", fleets.ExecutionStatus("TIMED_OUT"), nil),
		o.EnqueueEvent("t", "x", nil, &fleets.EventOptions{Severity: 9}),
	} {
		if !errors.Is(err, fleets.ErrInvalidArgument) {
			t.Errorf("err = %v, want ErrInvalidArgument", err)
		}
	}
	if err := o.EnqueueReport("t", []int{1}, nil); !errors.Is(err, fleets.ErrInvalidJSON) {
		t.Errorf("err = %v, want ErrInvalidJSON", err)
	}
	if _, err := fleets.OpenOutbox(dir, nil); !errors.Is(err, fleets.ErrOutboxLocked) {
		t.Fatalf("second open: %v", err)
	}
	if err := o.EnqueueEvent("thermostat-001", "tick", map[string]any{"seq": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.EnqueueEvent("t", "x", nil, nil); !errors.Is(err, fleets.ErrOutboxClosed) {
		t.Errorf("after Close: %v", err)
	}
	again := openOutbox(t, dir, nil)
	if s, _ := again.Stats(); s.QueuedRecords != 1 {
		t.Errorf("after reopen: %+v", s)
	}
	if _, err := fleets.OpenOutbox(filepath.Join(t.TempDir(), "x"), &fleets.OutboxOptions{MaxBytes: 1000}); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("MaxBytes 1000: %v", err)
	}
	if _, err := fleets.OpenOutbox(filepath.Join(t.TempDir(), "x"), &fleets.OutboxOptions{Sync: 5}); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("Sync 5: %v", err)
	}
}

func TestOutboxFullPolicies(t *testing.T) {
	o := openOutbox(t, t.TempDir(), &fleets.OutboxOptions{MaxBytes: 64 << 10, WhenFull: fleets.RefuseWhenFull})
	pad := strings.Repeat("x", 200)
	var err error
	for seq := 0; seq < 10000 && err == nil; seq++ {
		err = o.EnqueueEvent("t", "tick", map[string]any{"seq": seq, "pad": pad}, nil)
	}
	if !errors.Is(err, fleets.ErrOutboxFull) {
		t.Fatalf("err = %v, want ErrOutboxFull", err)
	}
	drop := openOutbox(t, t.TempDir(), &fleets.OutboxOptions{MaxBytes: 64 << 10, TTL: time.Hour})
	for seq := 0; seq < 1000; seq++ {
		if err := drop.EnqueueEvent("t", "tick", map[string]any{"seq": seq, "pad": pad}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := drop.Stats(); s.DroppedRecords == 0 || s.QueuedBytes > 64<<10 {
		t.Errorf("stats = %+v", s)
	}
}

func TestOutboxConcurrentEnqueueAndFlush(t *testing.T) {
	c := newClient(t)
	o := openOutbox(t, t.TempDir(), nil)
	things := []string{newThing(t, "go-a"), newThing(t, "go-b"), newThing(t, "go-c")}
	var wg sync.WaitGroup
	for _, thing := range things {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; seq < 20; seq++ {
				if err := o.EnqueueEvent(thing, "tick", map[string]any{"seq": seq}, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	total := 0
	for flushing := true; flushing; {
		select {
		case <-done:
			flushing = false
		default:
		}
		n, err := o.Flush(c, 0)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if total != 60 {
		t.Errorf("delivered %d", total)
	}
	for _, thing := range things {
		if got := fmt.Sprint(eventSeqs(t, thing)); got != fmt.Sprint([]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}) {
			t.Errorf("%s: %s", thing, got)
		}
	}
}
