//go:build cgo

package fleets

/*
#include <stdlib.h>
#include <fleets.h>
*/
import "C"

import (
	"errors"
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// SyncPolicy says when an enqueued record reaches stable storage (OutboxOptions.Sync).
type SyncPolicy int

const (
	// SyncAlways (the default) syncs every record (fdatasync) before the enqueue returns:
	// a crash or power cut loses no record whose enqueue returned nil.
	SyncAlways SyncPolicy = 0
	// SyncBatch syncs at the latest BatchMaxDelay after the first unsynced record, or every
	// BatchMaxRecords records. A process crash loses nothing; a power cut may lose the
	// records enqueued since the last sync (the newest ones).
	SyncBatch SyncPolicy = 1
)

// FullPolicy says what an enqueue does when the record does not fit in MaxBytes.
type FullPolicy int

const (
	// DropOldestEvents (the default) drops the oldest queued events (never reports, command
	// responses or job updates) to make room; when that cannot make room the enqueue fails
	// with ErrOutboxFull.
	DropOldestEvents FullPolicy = 0
	// RefuseWhenFull fails the new enqueue with ErrOutboxFull and keeps everything queued.
	RefuseWhenFull FullPolicy = 1
)

// OutboxOptions are the settings of OpenOutbox; the zero value means every default.
type OutboxOptions struct {
	// Sync is SyncAlways (default) or SyncBatch.
	Sync SyncPolicy
	// BatchMaxDelay is the longest time a record stays unsynced with SyncBatch (0: 1s).
	BatchMaxDelay time.Duration
	// BatchMaxRecords is the most records left unsynced with SyncBatch (0: 100).
	BatchMaxRecords int
	// MaxBytes bounds the queued records as stored (0: 8 MiB; at least 64 KiB).
	MaxBytes int64
	// TTL drops queued records older than this, unsent (0: kept until delivered).
	TTL time.Duration
	// WhenFull is DropOldestEvents (default) or RefuseWhenFull.
	WhenFull FullPolicy
}

// OutboxStats is what Outbox.Stats reports; counts are since the outbox was opened.
type OutboxStats struct {
	QueuedRecords       uint64        // records waiting for delivery
	QueuedBytes         uint64        // their size as stored (at most MaxBytes)
	OldestAge           time.Duration // age of the oldest queued record; 0 when empty
	DeliveredRecords    uint64        // records the server accepted
	DroppedRecords      uint64        // dropped unsent: older than TTL, or evicted when full
	DeadLetteredRecords uint64        // rejected for good (HTTP 4xx other than 401, 403, 408, 429)
	CorruptRecords      uint64        // damaged records skipped
	TornBytes           uint64        // bytes of a torn write cut off at open
	DiskBytes           uint64        // size of the outbox's files
	WrittenBytes        uint64        // bytes written to them since open
	Syncs               uint64        // fsync calls since open
	// LastError is the last failure (a dead-lettered record's, a flush stopped by an outage,
	// a storage error), nil when there was none.
	LastError *Error
}

// ErrOutboxClosed is returned by calls on an Outbox after Close.
var ErrOutboxClosed = errors.New("fleets: outbox is closed")

// Outbox is a durable store-and-forward queue of events, shadow reports, command responses
// and job updates, kept in a directory until Flush delivers them; it survives crashes and
// power cuts. Enqueues check their arguments exactly as the matching Client calls do and
// store nothing when one is refused. Records are delivered in order, at least once; reports
// for the same thing still queued are merged into one. An Outbox is safe for concurrent use
// by many goroutines; Close it when done (an unreachable Outbox is closed by the garbage
// collector as a safety net).
type Outbox struct {
	mu      sync.RWMutex // calls hold it for reading, Close for writing
	h       *C.fleets_outbox_t
	cleanup runtime.Cleanup
	dir     string
}

// OpenOutbox opens the outbox in dir (created if missing). opts may be nil. Only one Outbox
// may have a directory open at a time, in any process: a second fails with ErrOutboxLocked.
// Damaged records found on the way are skipped (Stats().CorruptRecords) and a torn write at
// the end is cut off, losing nothing that was acknowledged.
func OpenOutbox(dir string, opts *OutboxOptions) (*Outbox, error) {
	if opts == nil {
		opts = &OutboxOptions{}
	}
	path, err := cstr("dir", dir)
	if err != nil {
		return nil, err
	}
	var raw C.fleets_outbox_options_t
	raw.sync = C.fleets_outbox_sync(opts.Sync)
	raw.when_full = C.fleets_outbox_when_full(opts.WhenFull)
	if opts.Sync != SyncAlways && opts.Sync != SyncBatch {
		return nil, invalidArg("unknown SyncPolicy %d", int(opts.Sync))
	}
	if opts.WhenFull != DropOldestEvents && opts.WhenFull != RefuseWhenFull {
		return nil, invalidArg("unknown FullPolicy %d", int(opts.WhenFull))
	}
	if raw.batch_max_ms, err = millis("BatchMaxDelay", opts.BatchMaxDelay); err != nil {
		return nil, err
	}
	if opts.BatchMaxRecords < 0 || uint64(opts.BatchMaxRecords) > math.MaxUint32 {
		return nil, invalidArg("BatchMaxRecords %d is out of range", opts.BatchMaxRecords)
	}
	raw.batch_max_records = C.uint32_t(opts.BatchMaxRecords)
	if opts.MaxBytes < 0 {
		return nil, invalidArg("MaxBytes %d is negative", opts.MaxBytes)
	}
	raw.max_bytes = C.uint64_t(opts.MaxBytes)
	if opts.TTL < 0 {
		return nil, invalidArg("TTL %v is negative", opts.TTL)
	}
	raw.ttl_ms = C.uint64_t((opts.TTL + time.Millisecond - 1) / time.Millisecond)

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var h *C.fleets_outbox_t
	if rc := C.fleets_outbox_open(ptr(path), &raw, &h); rc != C.FLEETS_OK {
		return nil, lastError(rc, false, nil)
	}
	o := &Outbox{h: h, dir: dir}
	o.cleanup = runtime.AddCleanup(o, closeOutbox, unsafe.Pointer(h))
	return o, nil
}

func closeOutbox(h unsafe.Pointer) {
	C.fleets_outbox_close((*C.fleets_outbox_t)(h))
}

// Dir returns the directory the outbox was opened in.
func (o *Outbox) Dir() string { return o.dir }

// Close syncs what is not synced yet, releases the directory and frees the outbox. It waits
// for calls in progress on other goroutines; later calls fail with ErrOutboxClosed. Close is
// idempotent; it returns an ErrStorageIO error when the final sync failed (the outbox is
// closed all the same).
func (o *Outbox) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.h == nil {
		return nil
	}
	o.cleanup.Stop()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := C.fleets_outbox_close(o.h)
	o.h = nil
	runtime.KeepAlive(o)
	if rc != C.FLEETS_OK {
		return lastError(rc, false, nil)
	}
	return nil
}

// enqueue runs one enqueue on a locked OS thread (for the per-thread error message).
func (o *Outbox) enqueue(fn func(h *C.fleets_outbox_t) C.fleets_result) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.h == nil {
		return ErrOutboxClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc := fn(o.h)
	runtime.KeepAlive(o)
	if rc != C.FLEETS_OK {
		return lastError(rc, false, nil)
	}
	return nil
}

// EnqueueReport queues a shadow report; arguments as for Client.ShadowReport. Reports for
// the same thing still queued at delivery are merged in order into one (a nil member
// deletes, as the server would); one with a Version is never merged. Without a ClientToken
// one is generated now and kept, so that a repeat after an ambiguous failure carries it.
func (o *Outbox) EnqueueReport(thingName string, reported any, opts *ReportOptions) error {
	if opts == nil {
		opts = &ReportOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return err
	}
	state, err := jsonArg("reported", reported, true)
	if err != nil {
		return err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return err
	}
	version := C.uint64_t(opts.Version)
	return o.enqueue(func(h *C.fleets_outbox_t) C.fleets_result {
		return C.fleets_outbox_enqueue_report(h, ptr(name), ptr(state), ptr(token), version)
	})
}

// EnqueueEvent queues an event; arguments as for Client.EventPublish. A zero
// opts.Timestamp means the time of the enqueue, not of the delivery.
func (o *Outbox) EnqueueEvent(thingName, eventType string, data any, opts *EventOptions) error {
	if opts == nil {
		opts = &EventOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return err
	}
	typ, err := cstr("eventType", eventType)
	if err != nil {
		return err
	}
	dataJSON, err := jsonArg("data", data, false)
	if err != nil {
		return err
	}
	appID, err := cstrOpt("AppID", opts.AppID)
	if err != nil {
		return err
	}
	var ts int64
	if !opts.Timestamp.IsZero() {
		if ts = opts.Timestamp.UnixMilli(); ts <= 0 {
			return invalidArg("Timestamp %v is not after the Unix epoch", opts.Timestamp)
		}
	}
	if opts.Severity < 0 || opts.Severity > SeverityError {
		return invalidArg("unknown Severity %d", int(opts.Severity))
	}
	sev := C.fleets_severity(opts.Severity)
	return o.enqueue(func(h *C.fleets_outbox_t) C.fleets_result {
		return C.fleets_outbox_enqueue_event(h, ptr(name), ptr(typ), sev, C.int64_t(ts), ptr(dataJSON), ptr(appID))
	})
}

// EnqueueCommandResponse queues a command response; arguments as for
// Client.CommandRespond.
func (o *Outbox) EnqueueCommandResponse(thingName, executionID string, status ExecutionStatus, result any, opts *CommandOptions) error {
	if opts == nil {
		opts = &CommandOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return err
	}
	id, err := cstr("executionID", executionID)
	if err != nil {
		return err
	}
	st, err := status.deviceStatus()
	if err != nil {
		return err
	}
	resultJSON, err := jsonArg("result", result, false)
	if err != nil {
		return err
	}
	var ts int64
	if !opts.Timestamp.IsZero() {
		if ts = opts.Timestamp.Unix(); ts <= 0 {
			return invalidArg("Timestamp %v is not after the Unix epoch", opts.Timestamp)
		}
	}
	return o.enqueue(func(h *C.fleets_outbox_t) C.fleets_result {
		return C.fleets_outbox_enqueue_command_response(h, ptr(name), ptr(id), C.fleets_execution_status(st), ptr(resultJSON), C.int64_t(ts))
	})
}

// EnqueueJobUpdate queues a job execution update; arguments as for Client.JobsUpdate.
// Without a ClientToken one is generated now and kept with the record.
func (o *Outbox) EnqueueJobUpdate(thingName, jobID string, status ExecutionStatus, opts *JobsUpdateOptions) error {
	if opts == nil {
		opts = &JobsUpdateOptions{}
	}
	name, err := cstr("thingName", thingName)
	if err != nil {
		return err
	}
	job, err := cstr("jobID", jobID)
	if err != nil {
		return err
	}
	st, err := status.deviceStatus()
	if err != nil {
		return err
	}
	details, err := jsonArg("StatusDetails", opts.StatusDetails, false)
	if err != nil {
		return err
	}
	token, err := cstrOpt("ClientToken", opts.ClientToken)
	if err != nil {
		return err
	}
	expected := C.uint64_t(opts.ExpectedVersion)
	return o.enqueue(func(h *C.fleets_outbox_t) C.fleets_result {
		return C.fleets_outbox_enqueue_job_update(h, ptr(name), ptr(job), C.fleets_execution_status(st), ptr(details), expected, ptr(token))
	})
}

// Flush delivers queued records in order through c for at most maxTime (0: until the queue
// is empty or a request fails; each request is bounded by the client's timeouts) and
// returns how many the server accepted.
//
// A record the server rejects for good (HTTP 4xx other than 401, 403, 408, 429) is
// dead-lettered (see Stats) and the flush goes on. Any other failure (no connection,
// timeout, 5xx, 429, credentials, TLS) stops it, keeps the record and the order, and is
// returned together with the number delivered before it. Flushes run one at a time;
// enqueues from other goroutines go on meanwhile.
func (o *Outbox) Flush(c *Client, maxTime time.Duration) (int, error) {
	ms, err := millis("maxTime", maxTime)
	if err != nil {
		return 0, err
	}
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.h == nil {
		return 0, ErrOutboxClosed
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.h == nil {
		return 0, ErrClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var delivered C.uint64_t
	rc := C.fleets_outbox_flush(o.h, c.h, ms, &delivered)
	runtime.KeepAlive(o)
	runtime.KeepAlive(c)
	if rc != C.FLEETS_OK {
		return int(delivered), lastError(rc, rc >= 200, c.creds)
	}
	return int(delivered), nil
}

// Stats returns the outbox's counters and last error (no I/O).
func (o *Outbox) Stats() (OutboxStats, error) {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.h == nil {
		return OutboxStats{}, ErrOutboxClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var raw C.fleets_outbox_stats_t
	rc := C.fleets_outbox_stats(o.h, &raw)
	runtime.KeepAlive(o)
	if rc != C.FLEETS_OK {
		return OutboxStats{}, lastError(rc, false, nil)
	}
	s := OutboxStats{
		QueuedRecords:       uint64(raw.queued_records),
		QueuedBytes:         uint64(raw.queued_bytes),
		OldestAge:           time.Duration(min(uint64(raw.oldest_age_ms), math.MaxInt64/uint64(time.Millisecond))) * time.Millisecond,
		DeliveredRecords:    uint64(raw.delivered_records),
		DroppedRecords:      uint64(raw.dropped_records),
		DeadLetteredRecords: uint64(raw.dead_lettered_records),
		CorruptRecords:      uint64(raw.corrupt_records),
		TornBytes:           uint64(raw.torn_bytes),
		DiskBytes:           uint64(raw.disk_bytes),
		WrittenBytes:        uint64(raw.written_bytes),
		Syncs:               uint64(raw.syncs),
	}
	if raw.last_error != C.FLEETS_OK {
		s.LastError = &Error{
			Code:       Code(raw.last_error),
			HTTPStatus: int(raw.last_error_http_status),
			Message:    C.GoString(&raw.last_error_message[0]),
		}
	}
	return s, nil
}
