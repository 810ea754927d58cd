//! The durable outbox in C: open, the four enqueues, flush, stats, close. Each converts its
//! arguments and delegates to [`Outbox`](crate::Outbox).

use std::ffi::c_char;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::ffi::boundary::{
    copy_truncated, give_handle, guard, handle, optional_output, optional_str, optional_struct,
    output, required_str,
};
use crate::ffi::calls::{severity, status};
use crate::ffi::last_call;
use crate::ffi::types::{
    fleets_client_t, fleets_execution_status, fleets_result, fleets_severity, FLEETS_OK,
};
use crate::outbox::{
    FullPolicy, Outbox, OutboxOptions, SyncPolicy, DEFAULT_BATCH_MAX_DELAY,
    DEFAULT_BATCH_MAX_RECORDS,
};
use crate::{Event, ReportOptions};

/// A durable outbox (opaque): a queue of events, shadow reports, command responses and job
/// updates kept in a directory, delivered by `fleets_outbox_flush`. Created by
/// `fleets_outbox_open`, freed by `fleets_outbox_close`.
///
/// Thread-safety: safe to use from many threads at once. Enqueues are serialised by an
/// internal lock held for the file write and sync; flushes run one at a time and do not block
/// enqueues while a request is in flight. Close it only when no call on it is running.
pub struct fleets_outbox {
    pub(crate) inner: Outbox,
}

/// Outbox handle; see `struct fleets_outbox`.
pub type fleets_outbox_t = fleets_outbox;

/// When an enqueued record reaches stable storage (`fleets_outbox_options_t.sync`).
pub type fleets_outbox_sync = u32;
/// The default: each enqueue writes its record and syncs it (fdatasync) before it returns.
/// A crash or power cut loses no record whose enqueue returned `FLEETS_OK`. One write and one
/// sync per record.
pub const FLEETS_OUTBOX_SYNC_ALWAYS: fleets_outbox_sync = 0;
/// Enqueues write without syncing; records are synced at the latest `batch_max_ms` after the
/// first unsynced one (by a background thread of the outbox), or as soon as
/// `batch_max_records` are unsynced. A process crash loses nothing (the kernel keeps what was
/// written); a power cut or kernel crash may lose the records enqueued since the last sync,
/// at most `batch_max_records`, always the newest ones.
pub const FLEETS_OUTBOX_SYNC_BATCH: fleets_outbox_sync = 1;

/// What an enqueue does when its record does not fit in `max_bytes`
/// (`fleets_outbox_options_t.when_full`).
pub type fleets_outbox_when_full = u32;
/// The default: drop the oldest queued events (never reports, command responses or job
/// updates) until the new record fits, counting them in `dropped_records`; when dropping
/// every queued event would not make room, refuse it with `FLEETS_ERR_OUTBOX_FULL`.
pub const FLEETS_OUTBOX_FULL_DROP_OLDEST_EVENTS: fleets_outbox_when_full = 0;
/// Refuse the new record with `FLEETS_ERR_OUTBOX_FULL`; keep everything queued.
pub const FLEETS_OUTBOX_FULL_REFUSE: fleets_outbox_when_full = 1;

/// Default `max_bytes` (8 MiB).
pub const FLEETS_OUTBOX_DEFAULT_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// Size of `fleets_outbox_stats_t.last_error_message`, NUL included.
pub const FLEETS_OUTBOX_MESSAGE_BYTES: usize = 256;

/// Settings of `fleets_outbox_open`. Zero-initialise it (`fleets_outbox_options_t opts =
/// {0};` in C, `{}` in C++) and set what you need: every zero field means its default, and a
/// NULL pointer means all defaults. Fields may be added at the end in a later minor version
/// (0.x) or major version, so always zero-initialise.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fleets_outbox_options {
    /// `FLEETS_OUTBOX_SYNC_ALWAYS` (0, default) or `FLEETS_OUTBOX_SYNC_BATCH`.
    pub sync: fleets_outbox_sync,
    /// Batch: longest time a record stays unsynced, in milliseconds (0: 1000).
    pub batch_max_ms: u32,
    /// Batch: most records left unsynced (0: 100).
    pub batch_max_records: u32,
    /// `FLEETS_OUTBOX_FULL_DROP_OLDEST_EVENTS` (0, default) or `FLEETS_OUTBOX_FULL_REFUSE`.
    pub when_full: fleets_outbox_when_full,
    /// Most bytes of queued records, as stored (0: 8 MiB; at least 64 KiB, at most 1 GiB).
    /// The directory's files take at most this plus two segments of an eighth of it.
    pub max_bytes: u64,
    /// Records older than this many milliseconds are dropped unsent, counted in
    /// `dropped_records` (0: kept until delivered). Ages use the wall clock.
    pub ttl_ms: u64,
}

/// Options; see `struct fleets_outbox_options`.
pub type fleets_outbox_options_t = fleets_outbox_options;

/// What `fleets_outbox_stats` reports. Counts are since the handle was opened.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct fleets_outbox_statistics {
    /// Records waiting for delivery.
    pub queued_records: u64,
    /// Their size as stored (framing included); at most `max_bytes`.
    pub queued_bytes: u64,
    /// Age of the oldest queued record in milliseconds (wall clock); 0 when empty.
    pub oldest_age_ms: u64,
    /// Records the server accepted (each record of a coalesced report counts).
    pub delivered_records: u64,
    /// Records dropped unsent: older than the TTL, or evicted when full.
    pub dropped_records: u64,
    /// Records the server rejected for good (HTTP 4xx other than 401, 403, 408, 429): not
    /// retried; the last one's error is in `last_error*`.
    pub dead_lettered_records: u64,
    /// Damaged records skipped (found at open, or when read back for delivery).
    pub corrupt_records: u64,
    /// Bytes of a torn write cut off the end of the newest file at open.
    pub torn_bytes: u64,
    /// Size of the outbox's files now.
    pub disk_bytes: u64,
    /// Bytes written to the files since open (records, acknowledgements, headers).
    pub written_bytes: u64,
    /// fsync/fdatasync calls since open (files and directory).
    pub syncs: u64,
    /// The last failure: of a dead-lettered record, of the request that stopped a flush, or
    /// of the storage; `FLEETS_OK` when there was none.
    pub last_error: fleets_result,
    /// Its HTTP status, 0 when it had no response.
    pub last_error_http_status: i32,
    /// Its message, NUL-terminated, truncated to fit (never contains the API secret).
    pub last_error_message: [c_char; FLEETS_OUTBOX_MESSAGE_BYTES],
}

/// Statistics; see `struct fleets_outbox_statistics` (the function `fleets_outbox_stats` fills it).
pub type fleets_outbox_stats_t = fleets_outbox_statistics;

fn options(raw: Option<&fleets_outbox_options_t>) -> Result<OutboxOptions> {
    let Some(raw) = raw else {
        return Ok(OutboxOptions::default());
    };
    let sync = match raw.sync {
        FLEETS_OUTBOX_SYNC_ALWAYS => SyncPolicy::Always,
        FLEETS_OUTBOX_SYNC_BATCH => SyncPolicy::Batch {
            max_delay: match raw.batch_max_ms {
                0 => DEFAULT_BATCH_MAX_DELAY,
                ms => Duration::from_millis(u64::from(ms)),
            },
            max_records: match raw.batch_max_records {
                0 => DEFAULT_BATCH_MAX_RECORDS,
                n => n,
            },
        },
        other => {
            return Err(Error::invalid_argument(format!(
                "unknown fleets_outbox_sync {other}"
            )))
        }
    };
    let when_full = match raw.when_full {
        FLEETS_OUTBOX_FULL_DROP_OLDEST_EVENTS => FullPolicy::DropOldestEvents,
        FLEETS_OUTBOX_FULL_REFUSE => FullPolicy::Refuse,
        other => {
            return Err(Error::invalid_argument(format!(
                "unknown fleets_outbox_when_full {other}"
            )))
        }
    };
    Ok(OutboxOptions {
        sync,
        max_bytes: match raw.max_bytes {
            0 => FLEETS_OUTBOX_DEFAULT_MAX_BYTES,
            n => n,
        },
        ttl: (raw.ttl_ms != 0).then(|| Duration::from_millis(raw.ttl_ms)),
        when_full,
    })
}

/// Opens the outbox stored in directory `dir` (created if missing, with its parents) and
/// recovers what is queued there.
///
/// Recovery reads every record: a torn write at the end of the newest file (a crash in the
/// middle of an enqueue) is cut off; a damaged record in the middle is skipped and counted in
/// `corrupt_records`, the records around it are kept. Nothing acknowledged is lost.
///
/// - `dir` is required; the outbox owns its files (`LOCK` and `seg-*.log`); use one directory
///   per outbox, on a file system that honours fsync.
/// - `opts` may be NULL (all defaults); it is only read during the call.
/// - On success `*out` receives a handle to close with `fleets_outbox_close`.
///
/// Errors: `FLEETS_ERR_OUTBOX_LOCKED` when another handle, in this process or another, has
/// the directory open (the lock is released when that handle is closed or its process ends,
/// however it ends); `FLEETS_ERR_OUTBOX_CORRUPT` for files of a newer format (left
/// untouched); `FLEETS_ERR_STORAGE_IO`; `FLEETS_ERR_INVALID_ARGUMENT` for an unknown `sync`
/// or `when_full`, or `max_bytes` out of range. Thread-safe.
///
/// # Safety
/// `dir` is NULL or NUL-terminated; `opts` is NULL or points to a `fleets_outbox_options_t`;
/// `out` is NULL or valid for one pointer write.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_open(
    dir: *const c_char,
    opts: *const fleets_outbox_options_t,
    out: *mut *mut fleets_outbox_t,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (dir, opts, out) = unsafe {
            (
                required_str(dir, "dir")?,
                optional_struct(opts),
                output(out, "out")?,
            )
        };
        let inner = Outbox::open(Path::new(dir), &options(opts)?)?;
        give_handle(out, fleets_outbox_t { inner });
        Ok(())
    })
}

/// Closes an outbox: syncs what is not synced yet (batch policy), stops its sync thread,
/// releases the directory and frees the handle. Returns `FLEETS_ERR_STORAGE_IO` if that last
/// sync failed (the handle is freed all the same). NULL is a no-op returning `FLEETS_OK`.
///
/// # Safety
/// `outbox` is NULL or a live outbox on which no call is running, not used again after this
/// call.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_close(outbox: *mut fleets_outbox_t) -> fleets_result {
    if outbox.is_null() {
        return FLEETS_OK;
    }
    guard(|| {
        // SAFETY: the caller hands over a live handle from fleets_outbox_open, used no more.
        let outbox = unsafe { Box::from_raw(outbox) };
        outbox.inner.close()
    })
}

/// Runs an enqueue: checks the handle, then the arguments (before anything is stored).
///
/// # Safety
/// `outbox` is NULL or a live outbox.
unsafe fn enqueue(
    outbox: *const fleets_outbox_t,
    body: impl FnOnce(&Outbox) -> Result<()>,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from the exports' contract.
        let outbox = unsafe { handle(outbox, "outbox") }?;
        body(&outbox.inner)
    })
}

/// Queues a shadow report for delivery by `fleets_outbox_flush`. Arguments as for
/// `fleets_shadow_report` (without the response buffer), checked the same way before anything
/// is stored: a rejected argument stores nothing.
///
/// Reports of the same thing still queued at delivery are merged, in order, into one report
/// (a `null` deletes, as the server would), so a long outage sends one report per thing; a
/// report whose merge could not be exact (a key replaced by a value and then merged into as
/// an object) starts a new one. A report with a non-zero `version` is never merged, and the
/// merging means the shadow version moves once per sent report. Without a `client_token` one
/// is generated now (`fleets-` and 16 hex digits) and kept with the record: a merged report
/// carries its first record's token, so a repeat after an ambiguous failure is recognisable.
///
/// Returns when the record is durable as the sync policy says (see
/// `FLEETS_OUTBOX_SYNC_ALWAYS`). Errors: the argument errors of `fleets_shadow_report`,
/// `FLEETS_ERR_OUTBOX_FULL`, `FLEETS_ERR_STORAGE_IO` (nothing stored). Thread-safe.
///
/// # Safety
/// `outbox` is NULL or a live outbox; non-NULL strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_enqueue_report(
    outbox: *const fleets_outbox_t,
    thing_name: *const c_char,
    reported_json: *const c_char,
    client_token: *const c_char,
    version: u64,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        enqueue(outbox, |o| {
            let options = ReportOptions {
                client_token: optional_str(client_token, "client_token")?,
                version,
            };
            o.enqueue_report(
                required_str(thing_name, "thing_name")?,
                required_str(reported_json, "reported_json")?,
                options,
            )
        })
    }
}

/// Queues an event. Arguments as for `fleets_event_publish` (without the response buffer),
/// checked the same way before anything is stored. A `timestamp_ms` of 0 becomes the time of
/// the enqueue, not of the delivery. Events are delivered in order, each once or more (a
/// crash between the server's answer and the outbox noting it sends it again: the repeat has
/// the same timestamp and data). Durability, errors and thread-safety as for
/// `fleets_outbox_enqueue_report`.
///
/// # Safety
/// `outbox` is NULL or a live outbox; non-NULL strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_enqueue_event(
    outbox: *const fleets_outbox_t,
    thing_name: *const c_char,
    event_type: *const c_char,
    severity: fleets_severity,
    timestamp_ms: i64,
    data_json: *const c_char,
    app_id: *const c_char,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        enqueue(outbox, |o| {
            let event = Event {
                event_type: required_str(event_type, "event_type")?,
                severity: self::severity(severity)?,
                timestamp_ms,
                data_json: optional_str(data_json, "data_json")?,
                app_id: optional_str(app_id, "app_id")?,
            };
            o.enqueue_event(required_str(thing_name, "thing_name")?, event)
        })
    }
}

/// Queues a command response. Arguments as for `fleets_command_respond` (without the
/// response buffer), checked the same way before anything is stored. A `timestamp` of 0
/// becomes the time of the enqueue. If the server answers `FLEETS_ERR_CONFLICT` to a repeat
/// after an earlier attempt that may have arrived (timeout, broken connection), the response
/// counts as delivered. Durability, errors and thread-safety as for
/// `fleets_outbox_enqueue_report`.
///
/// # Safety
/// `outbox` is NULL or a live outbox; non-NULL strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_enqueue_command_response(
    outbox: *const fleets_outbox_t,
    thing_name: *const c_char,
    execution_id: *const c_char,
    status: fleets_execution_status,
    result_json: *const c_char,
    timestamp: i64,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        enqueue(outbox, |o| {
            o.enqueue_command_response(
                required_str(thing_name, "thing_name")?,
                required_str(execution_id, "execution_id")?,
                self::status(status)?,
                optional_str(result_json, "result_json")?,
                timestamp,
            )
        })
    }
}

/// Queues a job execution update. Arguments as for `fleets_jobs_update` (without the
/// response buffer), checked the same way before anything is stored. Without a
/// `client_token` one is generated now and kept with the record, so every attempt carries
/// the same token. A conflict answering a repeat counts as delivered, as for
/// `fleets_outbox_enqueue_command_response`. Durability, errors and thread-safety as for
/// `fleets_outbox_enqueue_report`.
///
/// # Safety
/// `outbox` is NULL or a live outbox; non-NULL strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_enqueue_job_update(
    outbox: *const fleets_outbox_t,
    thing_name: *const c_char,
    job_id: *const c_char,
    status: fleets_execution_status,
    status_details_json: *const c_char,
    expected_version: u64,
    client_token: *const c_char,
) -> fleets_result {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        enqueue(outbox, |o| {
            o.enqueue_job_update(
                required_str(thing_name, "thing_name")?,
                required_str(job_id, "job_id")?,
                self::status(status)?,
                optional_str(status_details_json, "status_details_json")?,
                expected_version,
                optional_str(client_token, "client_token")?,
            )
        })
    }
}

/// Delivers queued records in order through `client`, for at most `max_ms` milliseconds
/// (0: no limit besides the client's own timeouts). Each record, or merged report, is one
/// request sent once (the outbox is the retry; the client's retry policy does not apply);
/// no new request starts after `max_ms`, and the one in flight gets what is left of it.
///
/// - A 2xx removes the record from the queue.
/// - HTTP 4xx other than 401, 403, 408 and 429 means the server will never take the record:
///   it is removed and counted in `dead_lettered_records`, its error kept in the stats'
///   `last_error*`, and the flush goes on.
/// - Anything else stops the flush and keeps the record and the order for the next flush:
///   no connection, timeout, TLS failure, HTTP 5xx, 429, 408, 401/403 (credentials are not
///   the record's fault), a redirect. The function then returns that error;
///   `fleets_last_error_message`, `fleets_last_http_status` and `fleets_last_retry_after_ms`
///   describe it.
///
/// Returns `FLEETS_OK` when the queue emptied or the time ran out (see the stats'
/// `queued_records`). `*delivered` (may be NULL) receives the number of records the server
/// accepted during this call, on success and on failure alike.
///
/// Delivery is at least once: a crash, power cut or ambiguous failure (timeout after the
/// request left) between the server's answer and the outbox noting it sends the record again.
/// Thread-safe: flushes run one at a time; enqueues from other threads go on meanwhile.
///
/// # Safety
/// `outbox` and `client` are NULL or live handles; `delivered` is NULL or valid for one
/// `uint64_t` write.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_flush(
    outbox: *const fleets_outbox_t,
    client: *const fleets_client_t,
    max_ms: u32,
    delivered: *mut u64,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (outbox, client, delivered) = unsafe {
            (
                handle(outbox, "outbox")?,
                handle(client, "client")?,
                optional_output(delivered),
            )
        };
        let max_time = (max_ms != 0).then(|| Duration::from_millis(u64::from(max_ms)));
        let outcome = outbox.inner.flush(&client.inner, max_time);
        if let Some(delivered) = delivered {
            *delivered = outcome.delivered;
        }
        outcome.result.inspect_err(|e| {
            if (e.code() as u32) >= 200 {
                let mut e = e.clone();
                last_call::record_exchange(e.http_status(), e.take_body(), e.retry_after());
            }
        })
    })
}

/// Copies the outbox's counters and last error into `*out` (written only on success). No
/// I/O; thread-safe.
///
/// # Safety
/// `outbox` is NULL or a live outbox; `out` is NULL or valid for one
/// `fleets_outbox_stats_t` write.
#[no_mangle]
pub unsafe extern "C" fn fleets_outbox_stats(
    outbox: *const fleets_outbox_t,
    out: *mut fleets_outbox_stats_t,
) -> fleets_result {
    guard(|| {
        // SAFETY: forwarded from this function's contract.
        let (outbox, out) = unsafe { (handle(outbox, "outbox")?, output(out, "out")?) };
        let stats = outbox.inner.stats()?;
        let mut raw = fleets_outbox_stats_t {
            queued_records: stats.queued_records,
            queued_bytes: stats.queued_bytes,
            oldest_age_ms: stats
                .oldest_age
                .map_or(0, |a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
            delivered_records: stats.delivered_records,
            dropped_records: stats.dropped_records,
            dead_lettered_records: stats.dead_lettered_records,
            corrupt_records: stats.corrupt_records,
            torn_bytes: stats.torn_bytes,
            disk_bytes: stats.disk_bytes,
            written_bytes: stats.written_bytes,
            syncs: stats.syncs,
            last_error: FLEETS_OK,
            last_error_http_status: 0,
            last_error_message: [0; FLEETS_OUTBOX_MESSAGE_BYTES],
        };
        if let Some(e) = &stats.last_error {
            raw.last_error = e.code() as fleets_result;
            raw.last_error_http_status = i32::from(e.http_status());
            copy_truncated(
                &crate::redact::printable(e.message()),
                &mut raw.last_error_message,
            );
        }
        *out = raw;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_equal_the_safe_ones() {
        assert_eq!(
            FLEETS_OUTBOX_DEFAULT_MAX_BYTES,
            crate::outbox::DEFAULT_OUTBOX_MAX_BYTES
        );
        let defaults = options(None).unwrap();
        let zeroed = fleets_outbox_options_t {
            sync: 0,
            batch_max_ms: 0,
            batch_max_records: 0,
            when_full: 0,
            max_bytes: 0,
            ttl_ms: 0,
        };
        assert_eq!(options(Some(&zeroed)).unwrap(), defaults);
        let batch = options(Some(&fleets_outbox_options_t {
            sync: FLEETS_OUTBOX_SYNC_BATCH,
            ..zeroed
        }))
        .unwrap();
        assert_eq!(
            batch.sync,
            SyncPolicy::Batch {
                max_delay: DEFAULT_BATCH_MAX_DELAY,
                max_records: DEFAULT_BATCH_MAX_RECORDS
            }
        );
        for bad in [
            fleets_outbox_options_t { sync: 2, ..zeroed },
            fleets_outbox_options_t {
                when_full: 2,
                ..zeroed
            },
        ] {
            assert_eq!(
                options(Some(&bad)).unwrap_err().code(),
                crate::ErrorCode::InvalidArgument
            );
        }
    }

    #[test]
    fn messages_are_truncated_on_a_character_boundary() {
        let mut buf = [1 as c_char; 8];
        copy_truncated("abcdeé€", &mut buf);
        let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
        assert_eq!(&bytes[..7], "abcdeé".as_bytes());
        assert_eq!(bytes[7], 0);
        copy_truncated("ab€", &mut buf[..4]);
        assert_eq!(buf[2], 0);
    }
}
