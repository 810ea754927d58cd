//go:build cgo

package fleets

/*
#include <stdlib.h>
#include <fleets.h>

// The exported Go callbacks (workflows_export.go), as the C function pointer types of the
// header (the casts only add const).
extern _Bool goFleetsDelta(char *key, char *value_json, void *user);
extern _Bool goFleetsProgress(uint64_t received, uint64_t total, void *user);
extern fleets_job_step_result goFleetsJobStep(fleets_job_step_t *step, void *user);
extern _Bool goFleetsJobGate(fleets_job_step_t *step, void *user);

static fleets_delta_fn fleets_go_delta(void) { return (fleets_delta_fn)goFleetsDelta; }
static fleets_progress_fn fleets_go_progress(void) { return (fleets_progress_fn)goFleetsProgress; }
static fleets_job_handler_fn fleets_go_job_step(void) { return (fleets_job_handler_fn)goFleetsJobStep; }
static fleets_job_gate_fn fleets_go_job_gate(void) { return (fleets_job_gate_fn)goFleetsJobGate; }
*/
import "C"

import (
	"encoding/json"
	"math"
	"runtime"
	"runtime/cgo"
	"sync"
	"time"
	"unsafe"
)

// The workflows (fleets_shadow_sync, fleets_job_agent_run_once, fleets_download) take Go
// callbacks. They run on the calling goroutine, inside the C call; they may call methods of
// the same Client (a job handler typically calls Download), but must not Close it. A panic in
// a callback cannot cross the C library: it is recovered, the workflow is told to decline or
// stop, and the panic is raised again once the C call has returned.

// workflows counts the workflows running on a client, so that Close waits for them without
// blocking the calls their callbacks make (which take the client's read lock).
type workflows struct {
	mu      sync.Mutex
	closing bool
	running sync.WaitGroup
}

func (w *workflows) drain() {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.running.Wait()
}

// enterWorkflow returns the C handle, valid until leaveWorkflow.
func (c *Client) enterWorkflow() (*C.fleets_client_t, error) {
	c.flows.mu.Lock()
	defer c.flows.mu.Unlock()
	if c.flows.closing {
		return nil, ErrClosed
	}
	c.mu.RLock()
	h := c.h
	c.mu.RUnlock()
	if h == nil {
		return nil, ErrClosed
	}
	c.flows.running.Add(1)
	return h, nil
}

func (c *Client) leaveWorkflow() {
	runtime.KeepAlive(c)
	c.flows.running.Done()
}

// callState is what a workflow's callbacks share: the Go functions, and the first panic.
type callState struct {
	delta    func(key string, value json.RawMessage) bool
	progress func(received, total int64) bool
	handlers map[string]JobHandler
	gate     func(step *JobStep) bool
	panicked any
	err      error
}

// userPointer passes st to C as a pointer to C memory holding a cgo.Handle (C may not keep
// Go pointers); free releases both.
func userPointer(st *callState) (user unsafe.Pointer, free func()) {
	h := cgo.NewHandle(st)
	p := C.malloc(C.size_t(unsafe.Sizeof(uintptr(0))))
	*(*uintptr)(p) = uintptr(h)
	return p, func() {
		C.free(p)
		h.Delete()
	}
}

func stateOf(user unsafe.Pointer) *callState {
	return cgo.Handle(*(*uintptr)(user)).Value().(*callState)
}

// finish re-raises a callback's panic and builds the error of a failed call.
func (c *Client) finish(st *callState, rc C.fleets_result) error {
	if st.panicked != nil {
		panic(st.panicked)
	}
	if rc == C.FLEETS_OK {
		return nil
	}
	// Transport and HTTP failures (2xx, 3xx) keep the exchange, as for the calls.
	return lastError(rc, rc >= 200 && rc < 400, c.creds)
}

// ---------------------------------------------------------------- shadow sync

// ShadowSync syncs the thing's desired state into the device (fleets_shadow_sync): it reads
// the shadow and, when its delta is not empty and its version is newer than appliedVersion,
// calls onDelta for each top-level delta property (value is its JSON: for an object, only
// the members that differ from the reported state), reports the accepted values (onDelta
// returned true) with the shadow's version, and on a version conflict reads the shadow again
// (4 reads at most).
//
// appliedVersion is the version of the last shadow whose values the device applied (0 at
// first); an older or equal shadow is never offered. ShadowSync returns the version to pass
// next time (appliedVersion itself on error). A declined value is offered again by the next
// sync; any value may be offered again after a conflict, a failed report or a crash:
// applying a desired value must be idempotent. Errors: ErrConflict when the desired state
// kept changing, and those of ShadowGet and ShadowReport.
func (c *Client) ShadowSync(thingName string, appliedVersion uint64, onDelta func(key string, value json.RawMessage) bool) (uint64, error) {
	return c.shadowSync(thingName, appliedVersion, "", onDelta)
}

// ShadowSyncWithStateFile is ShadowSync with the applied version kept in the file statePath
// (a small JSON file, replaced atomically; a missing file means 0). It returns the version
// now applied. ErrLocalFile for a file that is not such a state file or cannot be written
// (ErrDiskFull when the disk is full).
func (c *Client) ShadowSyncWithStateFile(thingName, statePath string, onDelta func(key string, value json.RawMessage) bool) (uint64, error) {
	if statePath == "" {
		return 0, invalidArg("statePath is empty")
	}
	return c.shadowSync(thingName, 0, statePath, onDelta)
}

func (c *Client) shadowSync(thingName string, applied uint64, statePath string, onDelta func(string, json.RawMessage) bool) (uint64, error) {
	if onDelta == nil {
		return applied, invalidArg("onDelta is nil")
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return applied, err
	}
	path, err := cstrOpt("statePath", statePath)
	if err != nil {
		return applied, err
	}
	h, err := c.enterWorkflow()
	if err != nil {
		return applied, err
	}
	defer c.leaveWorkflow()
	st := &callState{delta: onDelta}
	user, free := userPointer(st)
	defer free()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	version := C.uint64_t(applied)
	var rc C.fleets_result
	if path == nil {
		rc = C.fleets_shadow_sync(h, ptr(name), C.fleets_go_delta(), user, &version)
	} else {
		rc = C.fleets_shadow_sync_with_state_file(h, ptr(name), C.fleets_go_delta(), user, ptr(path), &version)
	}
	if err := c.finish(st, rc); err != nil {
		return applied, err
	}
	return uint64(version), nil
}

// ---------------------------------------------------------------- download

// DownloadOptions are the options of Client.Download; the zero value is the default.
type DownloadOptions struct {
	// Progress, when not nil, is called when the transfer starts and after every 64 KiB
	// written, with the bytes in the partial file and the total (0 when the server did not
	// say). Returning false stops the download with ErrCanceled; the partial file stays and
	// the next Download resumes it.
	Progress func(received, total int64) bool
	// SendCredentials sends the API key and secret to the URL's host even when it is not
	// the client's endpoint. They are never sent to a host reached through a redirect.
	SendCredentials bool
	// NoRestart makes a resumed download fail with ErrRangeNotSupported instead of starting
	// over when the server answers Range with the whole file.
	NoRestart bool
}

// Download downloads url into destPath, verified against sha256Hex (64 hex digits), and
// resumes an earlier interrupted download of the same content (fleets_download).
//
// It uses the client's TLS trust, proxy and timeouts (each read must make progress within
// Config.Timeout; the whole transfer has no deadline). The bytes go to destPath+".part";
// after an interruption (a lost connection, a crash, ErrCanceled) the next Download asks for
// the rest with Range and If-Range. The SHA-256 is checked before the file is synced and
// renamed over destPath: destPath holds its old content or the complete verified new one.
// Memory stays bounded (one 64 KiB buffer). Credentials go only to the client's endpoint
// unless opts.SendCredentials. opts may be nil.
//
// Errors: ErrHashMismatch (nothing installed), ErrRangeNotSupported, ErrDiskFull (the
// partial file stays), ErrLocalFile, ErrCanceled, ErrInvalidArgument, and those of the calls
// (ErrConnect, ErrTLS, ErrTimeout, ErrIO, ErrNotFound, ...).
func (c *Client) Download(url, sha256Hex, destPath string, opts *DownloadOptions) error {
	if opts == nil {
		opts = &DownloadOptions{}
	}
	u, err := cstr("url", url)
	if err != nil {
		return err
	}
	sha, err := cstr("sha256Hex", sha256Hex)
	if err != nil {
		return err
	}
	dest, err := cstr("destPath", destPath)
	if err != nil {
		return err
	}
	var flags C.uint32_t
	if opts.SendCredentials {
		flags |= C.FLEETS_DOWNLOAD_SEND_CREDENTIALS
	}
	if opts.NoRestart {
		flags |= C.FLEETS_DOWNLOAD_NO_RESTART
	}
	h, err := c.enterWorkflow()
	if err != nil {
		return err
	}
	defer c.leaveWorkflow()
	st := &callState{progress: opts.Progress}
	user, free := userPointer(st)
	defer free()
	progress := C.fleets_progress_fn(nil)
	if opts.Progress != nil {
		progress = C.fleets_go_progress()
	}

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := C.fleets_download(h, ptr(u), ptr(sha), ptr(dest), flags, progress, user)
	return c.finish(st, rc)
}

// ---------------------------------------------------------------- job agent

// StepResult is what a JobHandler returns after a step (FLEETS_JOB_STEP_*).
type StepResult uint32

// Step results, identical to the C constants.
const (
	StepNext      StepResult = 1 // FLEETS_JOB_STEP_NEXT: the step is done; run the next now
	StepNextGated StepResult = 2 // FLEETS_JOB_STEP_NEXT_GATED: done; the next is disruptive and waits for the gate
	StepSucceeded StepResult = 3 // FLEETS_JOB_STEP_SUCCEEDED: the job is done
	StepFailed    StepResult = 4 // FLEETS_JOB_STEP_FAILED: the job failed
	StepRejected  StepResult = 5 // FLEETS_JOB_STEP_REJECTED: this device will not do the job
	StepRetry     StepResult = 6 // FLEETS_JOB_STEP_RETRY: run this step again on a later RunOnce
)

// JobStep is the step a JobHandler is asked to run. Attempt is 1 the first time the step
// runs, more when it was started before and did not finish (a crash, a reboot, StepRetry):
// the step may have run partly. Set Details (a value that encodes to a JSON object of at
// most 1 KiB) to send it with the update that follows.
type JobStep struct {
	ThingName string
	JobID     string
	Action    string
	Document  json.RawMessage
	Step      int
	Attempt   int
	Details   any
}

// JobHandler runs one step of a job whose document has the action it is registered for.
type JobHandler func(step *JobStep) StepResult

// JobOutcomeKind says how JobAgent.RunOnce ended (FLEETS_JOB_OUTCOME_*).
type JobOutcomeKind uint32

// Outcomes, identical to the C constants.
const (
	JobNone       JobOutcomeKind = 0 // FLEETS_JOB_OUTCOME_NONE: no job was pending
	JobSucceeded  JobOutcomeKind = 1 // FLEETS_JOB_OUTCOME_SUCCEEDED
	JobFailed     JobOutcomeKind = 2 // FLEETS_JOB_OUTCOME_FAILED
	JobRejected   JobOutcomeKind = 3 // FLEETS_JOB_OUTCOME_REJECTED
	JobDeferred   JobOutcomeKind = 4 // FLEETS_JOB_OUTCOME_DEFERRED: the next step waits for the gate
	JobRetryLater JobOutcomeKind = 5 // FLEETS_JOB_OUTCOME_RETRY_LATER: a step asked to run again later
	JobAbandoned  JobOutcomeKind = 6 // FLEETS_JOB_OUTCOME_ABANDONED: canceled or timed out at the server
)

var outcomeNames = [...]string{"None", "Succeeded", "Failed", "Rejected", "Deferred", "RetryLater", "Abandoned"}

// String returns the outcome's name, e.g. "Succeeded".
func (k JobOutcomeKind) String() string {
	if int(k) < len(outcomeNames) {
		return outcomeNames[k]
	}
	return "JobOutcomeKind(?)"
}

// JobOutcome is what JobAgent.RunOnce did.
type JobOutcome struct {
	Kind    JobOutcomeKind
	JobID   string // "" with JobNone
	Step    int    // the next step to run, or the last one run for a finished job
	Resumed bool   // the job had been claimed by an earlier run
}

// JobAgent runs a thing's jobs one at a time, surviving crashes and reboots
// (fleets_job_agent_run_once). Each job goes to the handler registered for its document's
// "action" and runs as steps 0, 1, 2... libfleets records the claimed job and each step in
// StateDir (fleets-job-<thing>.json, replaced atomically): a later RunOnce resumes the job,
// never claims it twice, never runs a finished step again, and sends a decided final status
// again if it was not confirmed. A job whose action has no handler is REJECTED.
//
// Run one agent per (StateDir, ThingName) at a time.
type JobAgent struct {
	ThingName string
	// StateDir is an existing directory that survives reboots.
	StateDir string
	Handlers map[string]JobHandler
	// Gate, when not nil, is asked before a step that follows StepNextGated; false defers it
	// (the job stays IN_PROGRESS; RunOnce returns JobDeferred and asks again next time).
	Gate func(step *JobStep) bool
	// JobTimeout is how long the server gives a claimed job before it times it out, counted
	// from the claim (rounded up to minutes); 0 leaves it to the server.
	JobTimeout time.Duration
	// MaxAttempts is how many times one step may start (crashes included) before the job is
	// FAILED; 0 means 3.
	MaxAttempts int
}

// RunOnce resumes the held job, or claims the next one, and runs it as far as it goes now.
// A handler that panics counts as an attempt of its step; the panic is raised again here.
// Details that do not encode to a JSON object of at most 1 KiB are an ErrInvalidJSON error
// (the step counts as attempted).
func (a *JobAgent) RunOnce(c *Client) (JobOutcome, error) {
	name, err := cstr("ThingName", a.ThingName)
	if err != nil {
		return JobOutcome{}, err
	}
	dir, err := cstr("StateDir", a.StateDir)
	if err != nil {
		return JobOutcome{}, err
	}
	if a.JobTimeout < 0 || a.MaxAttempts < 0 || a.MaxAttempts > math.MaxUint32 {
		return JobOutcome{}, invalidArg("JobTimeout and MaxAttempts must not be negative")
	}
	minutes := (a.JobTimeout + time.Minute - 1) / time.Minute
	if minutes > math.MaxUint32 {
		return JobOutcome{}, invalidArg("JobTimeout %v is too long", a.JobTimeout)
	}
	for action, fn := range a.Handlers {
		if fn == nil {
			return JobOutcome{}, invalidArg("the handler of %q is nil", action)
		}
	}
	h, err := c.enterWorkflow()
	if err != nil {
		return JobOutcome{}, err
	}
	defer c.leaveWorkflow()
	st := &callState{handlers: a.Handlers, gate: a.Gate}
	user, free := userPointer(st)
	defer free()

	// The table lives in C memory: it holds pointers (the actions, user).
	n := len(a.Handlers)
	size := C.size_t(max(n, 1)) * C.size_t(unsafe.Sizeof(C.fleets_job_handler_t{}))
	entries := (*C.fleets_job_handler_t)(C.calloc(1, size))
	defer C.free(unsafe.Pointer(entries))
	slots := unsafe.Slice(entries, max(n, 1))
	i := 0
	for action := range a.Handlers {
		slots[i].action = C.CString(action)
		defer C.free(unsafe.Pointer(slots[i].action))
		slots[i].run = C.fleets_go_job_step()
		slots[i].user = user
		i++
	}
	table := (*C.fleets_job_handlers_t)(C.calloc(1, C.size_t(unsafe.Sizeof(C.fleets_job_handlers_t{}))))
	defer C.free(unsafe.Pointer(table))
	table.handlers = entries
	table.count = C.size_t(n)
	if a.Gate != nil {
		table.gate = C.fleets_go_job_gate()
		table.gate_user = user
	}
	table.job_timeout_minutes = C.uint32_t(minutes)
	table.max_attempts = C.uint32_t(a.MaxAttempts)
	var out C.fleets_job_outcome_t

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := C.fleets_job_agent_run_once(h, ptr(name), table, ptr(dir), &out)
	if err := c.finish(st, rc); err != nil {
		if st.err != nil {
			return JobOutcome{}, st.err
		}
		return JobOutcome{}, err
	}
	outcome := JobOutcome{
		Kind:    JobOutcomeKind(out.kind),
		JobID:   C.GoString(&out.job_id[0]),
		Step:    int(out.step),
		Resumed: bool(out.resumed),
	}
	return outcome, st.err
}

// stepOf copies a C step into a JobStep.
func stepOf(s *C.fleets_job_step_t) *JobStep {
	return &JobStep{
		ThingName: C.GoString(s.thing_name),
		JobID:     C.GoString(s.job_id),
		Action:    C.GoString(s.action),
		Document:  json.RawMessage(C.GoString(s.document_json)),
		Step:      int(s.step),
		Attempt:   int(s.attempt),
	}
}

// writeDetails encodes step.Details into the C step's details buffer.
func writeDetails(s *C.fleets_job_step_t, details any) error {
	raw, err := json.Marshal(details)
	if err != nil {
		return &Error{Code: CodeInvalidJSON, Message: "JobStep.Details: " + err.Error(), err: err}
	}
	if len(raw) == 0 || raw[0] != '{' || len(raw) >= int(s.details_cap) {
		return &Error{Code: CodeInvalidJSON, Message: "JobStep.Details must encode to a JSON object of less than " +
			"C.FLEETS_JOB_DETAILS_CAP bytes"}
	}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(s.details)), int(s.details_cap))
	n := copy(buf, raw)
	buf[n] = 0
	return nil
}
