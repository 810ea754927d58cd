package fleets_test

// The workflows against the emulator: ShadowSync, Download and JobAgent.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	fleets "example.invalid/libfleets/bindings/go"
)

func setDesired(t *testing.T, thing string, patch map[string]any) {
	t.Helper()
	mustAdmin(t, "PUT", "/things/"+thing+"/shadow/desired", patch)
}

func shadowOf(t *testing.T, thing string) map[string]any {
	t.Helper()
	return mustAdmin(t, "GET", "/things/"+thing+"/shadow", nil)
}

// generatedFile puts a generated file on the emulator; returns its URL and SHA-256.
func generatedFile(t *testing.T, name string, size int, options map[string]any) (string, string) {
	t.Helper()
	body := map[string]any{"size": size, "seed": 3}
	for k, v := range options {
		body[k] = v
	}
	info := mustAdmin(t, "POST", "/files/"+name, body)
	return info["url"].(string), info["sha256"].(string)
}

func fileRequests(t *testing.T, name string) []any {
	t.Helper()
	return mustAdmin(t, "GET", "/files/"+name+"/requests", nil)["requests"].([]any)
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func TestWorkflowConstantsMatchHeader(t *testing.T) {
	steps := headerDefines(t, "FLEETS_JOB_STEP_")
	for name, v := range map[string]fleets.StepResult{
		"NEXT": fleets.StepNext, "NEXT_GATED": fleets.StepNextGated, "SUCCEEDED": fleets.StepSucceeded,
		"FAILED": fleets.StepFailed, "REJECTED": fleets.StepRejected, "RETRY": fleets.StepRetry,
	} {
		if steps["FLEETS_JOB_STEP_"+name] != uint64(v) {
			t.Errorf("FLEETS_JOB_STEP_%s = %d, Go %d", name, steps["FLEETS_JOB_STEP_"+name], v)
		}
	}
	if len(steps) != 6 {
		t.Errorf("fleets.h has %d step results", len(steps))
	}
	outcomes := headerDefines(t, "FLEETS_JOB_OUTCOME_")
	for name, v := range map[string]fleets.JobOutcomeKind{
		"NONE": fleets.JobNone, "SUCCEEDED": fleets.JobSucceeded, "FAILED": fleets.JobFailed,
		"REJECTED": fleets.JobRejected, "DEFERRED": fleets.JobDeferred, "RETRY_LATER": fleets.JobRetryLater,
		"ABANDONED": fleets.JobAbandoned,
	} {
		if outcomes["FLEETS_JOB_OUTCOME_"+name] != uint64(v) {
			t.Errorf("FLEETS_JOB_OUTCOME_%s = %d, Go %d", name, outcomes["FLEETS_JOB_OUTCOME_"+name], v)
		}
	}
	if len(outcomes) != 7 {
		t.Errorf("fleets.h has %d job outcomes", len(outcomes))
	}
}

func TestShadowSync(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "sync")
	setDesired(t, thing, map[string]any{"targetTemperature": 24, "mode": "turbo"})
	var offered []string
	version, err := c.ShadowSync(thing, 0, func(key string, value json.RawMessage) bool {
		offered = append(offered, key+"="+string(value))
		return key == "targetTemperature"
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{`mode="turbo"`, "targetTemperature=24"}; !reflect.DeepEqual(offered, want) {
		t.Errorf("offered %v, want %v", offered, want)
	}
	s := shadowOf(t, thing)
	if got := s["reported"]; !reflect.DeepEqual(got, map[string]any{"targetTemperature": float64(24)}) {
		t.Errorf("reported %v", got)
	}
	if uint64(s["version"].(float64)) != version+1 {
		t.Errorf("version %d, shadow %v", version, s["version"])
	}
	// The declined value again; a stale applied version offers nothing.
	offered = nil
	if _, err := c.ShadowSync(thing, version, func(key string, value json.RawMessage) bool {
		offered = append(offered, key)
		return false
	}); err != nil || !reflect.DeepEqual(offered, []string{"mode"}) {
		t.Errorf("second sync: %v, offered %v", err, offered)
	}
	if _, err := c.ShadowSync(thing, 1<<40, func(string, json.RawMessage) bool { panic("stale") }); err != nil {
		t.Error(err)
	}
}

func TestShadowSyncStateFileConflictAndPanics(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "syncfile")
	setDesired(t, thing, map[string]any{"a": 1})
	state := filepath.Join(t.TempDir(), "shadow.json")
	if v, err := c.ShadowSyncWithStateFile(thing, state, func(string, json.RawMessage) bool { return true }); err != nil || v == 0 {
		t.Fatalf("state file sync: %d %v", v, err)
	}
	if err := os.WriteFile(state, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ShadowSyncWithStateFile(thing, state, func(string, json.RawMessage) bool { return true }); !errors.Is(err, fleets.ErrLocalFile) {
		t.Errorf("corrupt state file: %v", err)
	}

	setDesired(t, thing, map[string]any{"a": 100})
	n := 0
	_, err := c.ShadowSync(thing, 0, func(string, json.RawMessage) bool {
		n++
		setDesired(t, thing, map[string]any{"a": n + 1})
		return true
	})
	var e *fleets.Error
	if !errors.Is(err, fleets.ErrConflict) || !errors.As(err, &e) || e.HTTPStatus != 409 {
		t.Errorf("a desired state that keeps changing: %v", err)
	}

	setDesired(t, thing, map[string]any{"b": 2})
	defer func() {
		if r := recover(); r != "boom" {
			t.Errorf("recovered %v, want the callback's panic", r)
		}
	}()
	_, _ = c.ShadowSync(thing, 0, func(string, json.RawMessage) bool { panic("boom") })
	t.Error("the panic did not propagate")
}

func TestDownload(t *testing.T) {
	c := newClient(t)
	url, sha := generatedFile(t, "go-fw.bin", 300_000, nil)
	dest := filepath.Join(t.TempDir(), "fw.bin")
	var seen [][2]int64
	err := c.Download(url, sha, dest, &fleets.DownloadOptions{Progress: func(got, total int64) bool {
		seen = append(seen, [2]int64{got, total})
		return true
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := sha256File(t, dest); got != sha {
		t.Errorf("sha %s, want %s", got, sha)
	}
	if seen[0] != [2]int64{0, 300_000} || seen[len(seen)-1] != [2]int64{300_000, 300_000} {
		t.Errorf("progress %v", seen)
	}
	if _, err := os.Stat(dest + ".part"); !os.IsNotExist(err) {
		t.Errorf("partial file left: %v", err)
	}
}

func TestDownloadResumesAndFails(t *testing.T) {
	c := newClientNoRetry(t)
	url, sha := generatedFile(t, "go-resume.bin", 1_000_000, nil)
	fault(t, map[string]any{"path_prefix": "/files/go-resume.bin", "kind": "truncate", "after_bytes": 400_000})
	dir := t.TempDir()
	dest := filepath.Join(dir, "fw.bin")
	if err := c.Download(url, sha, dest, nil); !errors.Is(err, fleets.ErrIO) {
		t.Fatalf("cut download: %v", err)
	}
	if fi, err := os.Stat(dest + ".part"); err != nil || fi.Size() != 400_000 {
		t.Fatalf("partial file: %v %v", fi, err)
	}
	if err := c.Download(url, sha, dest, nil); err != nil {
		t.Fatal(err)
	}
	reqs := fileRequests(t, "go-resume.bin")
	if r := reqs[1].(map[string]any)["range"]; r != "bytes=400000-" {
		t.Errorf("resumed with %v", r)
	}

	other := filepath.Join(dir, "other.bin")
	if err := c.Download(url, strings.Repeat("0", 64), other, nil); !errors.Is(err, fleets.ErrHashMismatch) {
		t.Errorf("wrong hash: %v", err)
	}
	if err := c.Download(url, sha, other, &fleets.DownloadOptions{Progress: func(got, _ int64) bool { return got < 100_000 }}); !errors.Is(err, fleets.ErrCanceled) {
		t.Errorf("canceled: %v", err)
	}
	if err := c.Download(url, sha, filepath.Join(dir, "missing", "f"), nil); !errors.Is(err, fleets.ErrLocalFile) {
		t.Errorf("missing directory: %v", err)
	}
	if err := c.Download("http://example.com/f", sha, other, nil); !errors.Is(err, fleets.ErrInvalidArgument) {
		t.Errorf("plain http: %v", err)
	}
	plain, plainSHA := generatedFile(t, "go-plain.bin", 200_000, map[string]any{"ranges": false})
	fault(t, map[string]any{"path_prefix": "/files/go-plain.bin", "kind": "truncate", "after_bytes": 50_000})
	p := filepath.Join(dir, "plain.bin")
	_ = c.Download(plain, plainSHA, p, nil)
	if err := c.Download(plain, plainSHA, p, &fleets.DownloadOptions{NoRestart: true}); !errors.Is(err, fleets.ErrRangeNotSupported) {
		t.Errorf("no ranges: %v", err)
	}
}

func createJob(t *testing.T, thing string, document map[string]any) string {
	t.Helper()
	return mustAdmin(t, "POST", "/jobs", map[string]any{"document": document, "targets": map[string]any{"thingNames": []string{thing}}})["jobId"].(string)
}

func jobExecution(t *testing.T, job, thing string) map[string]any {
	t.Helper()
	return mustAdmin(t, "GET", "/jobs/"+job+"/things/"+thing, nil)
}

func TestJobAgent(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "agent")
	url, sha := generatedFile(t, "go-job.bin", 100_000, nil)
	dir := t.TempDir()
	job := createJob(t, thing, map[string]any{"action": "updateFirmware", "params": map[string]any{"url": url, "sha256": sha}})
	unknown := createJob(t, thing, map[string]any{"action": "selfDestruct"})
	allow := false
	var steps []int
	agent := &fleets.JobAgent{
		ThingName: thing,
		StateDir:  dir,
		Handlers: map[string]fleets.JobHandler{"updateFirmware": func(step *fleets.JobStep) fleets.StepResult {
			steps = append(steps, step.Step)
			var doc struct {
				Params struct{ URL, SHA256 string }
			}
			if err := json.Unmarshal(step.Document, &doc); err != nil {
				t.Error(err)
			}
			if step.Step == 0 {
				if err := c.Download(doc.Params.URL, doc.Params.SHA256, filepath.Join(dir, "fw.new"), nil); err != nil {
					t.Error(err)
					return fleets.StepRetry
				}
				return fleets.StepNextGated
			}
			step.Details = map[string]any{"installedVersion": "2.0"}
			return fleets.StepSucceeded
		}},
		Gate:       func(*fleets.JobStep) bool { return allow },
		JobTimeout: 30 * time.Minute,
	}
	out, err := agent.RunOnce(c)
	if err != nil || out != (fleets.JobOutcome{Kind: fleets.JobDeferred, JobID: job, Step: 1}) {
		t.Fatalf("first run: %+v %v", out, err)
	}
	if e := jobExecution(t, job, thing); e["status"] != "IN_PROGRESS" {
		t.Errorf("execution %v", e)
	}
	allow = true
	out, err = agent.RunOnce(c)
	if err != nil || out.Kind != fleets.JobSucceeded || !out.Resumed {
		t.Fatalf("second run: %+v %v", out, err)
	}
	e := jobExecution(t, job, thing)
	if !reflect.DeepEqual(e["statusDetails"], map[string]any{"installedVersion": "2.0"}) {
		t.Errorf("details %v", e["statusDetails"])
	}
	if !reflect.DeepEqual(steps, []int{0, 1}) {
		t.Errorf("steps %v", steps)
	}
	out, err = agent.RunOnce(c)
	if err != nil || out.Kind != fleets.JobRejected || out.JobID != unknown {
		t.Errorf("unknown action: %+v %v", out, err)
	}
	if out, err := agent.RunOnce(c); err != nil || out.Kind != fleets.JobNone || out.JobID != "" {
		t.Errorf("no job: %+v %v", out, err)
	}
}

func TestJobAgentBadDetailsPanicsAndClose(t *testing.T) {
	c := newClient(t)
	thing := newThing(t, "agentbad")
	job := createJob(t, thing, map[string]any{"action": "a"})
	dir := t.TempDir()
	agent := &fleets.JobAgent{ThingName: thing, StateDir: dir, MaxAttempts: 3, Handlers: map[string]fleets.JobHandler{
		"a": func(step *fleets.JobStep) fleets.StepResult {
			switch step.Attempt {
			case 1:
				step.Details = []int{1, 2} // not an object
				return fleets.StepNext
			case 2:
				panic("handler bug")
			}
			return fleets.StepFailed
		},
	}}
	if _, err := agent.RunOnce(c); !errors.Is(err, fleets.ErrInvalidJSON) {
		t.Errorf("bad details: %v", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "handler bug" {
				t.Errorf("recovered %v", r)
			}
		}()
		_, _ = agent.RunOnce(c)
	}()
	if out, err := agent.RunOnce(c); err != nil || out.Kind != fleets.JobFailed {
		t.Errorf("third attempt: %+v %v", out, err)
	}
	if s := jobExecution(t, job, thing)["status"]; s != "FAILED" {
		t.Errorf("status %v", s)
	}
	if _, err := (&fleets.JobAgent{ThingName: thing, StateDir: filepath.Join(dir, "missing")}).RunOnce(c); !errors.Is(err, fleets.ErrLocalFile) {
		t.Errorf("missing state dir: %v", err)
	}

	// Close waits for a running workflow whose callback makes calls, without deadlock.
	setDesired(t, thing, map[string]any{"x": 1})
	closed := make(chan struct{})
	_, err := c.ShadowSync(thing, 0, func(string, json.RawMessage) bool {
		go func() { c.Close(); close(closed) }()
		time.Sleep(50 * time.Millisecond) // Close is now waiting for this workflow
		if _, err := c.ShadowGet(thing); err != nil {
			t.Errorf("a call from the callback while Close waits: %v", err)
		}
		return true
	})
	if err != nil {
		t.Error(err)
	}
	<-closed
	if _, err := c.ShadowSync(thing, 0, func(string, json.RawMessage) bool { return true }); !errors.Is(err, fleets.ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
}
