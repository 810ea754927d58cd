//! The durable outbox: store-and-forward of events, shadow reports, command responses and
//! job updates that survives crashes and power cuts.
//!
//! Records are checked exactly as the direct calls check them, then appended to segment files
//! in a directory the outbox owns ([`store`]), and delivered in order by [`Outbox::flush`]
//! when the network is back ([`delivery`]). Reports for the same thing are merged into one
//! ([`coalesce`]).
//!
//! Guarantees:
//! - `SyncPolicy::Always` (default): an enqueue returns `Ok` only once its record is on
//!   stable storage (fdatasync). A crash or power cut loses no record whose enqueue returned.
//! - `SyncPolicy::Batch`: records are synced at the latest `max_delay` after the first
//!   unsynced one, or when `max_records` are unsynced. A power cut (not a process crash: the
//!   kernel keeps what was written) may lose the records enqueued since the last sync, always
//!   the newest ones.
//! - Delivery is at least once: a record leaves the queue only after the server accepted it
//!   (or rejected it for good). A crash or an ambiguous failure between the server's answer
//!   and the acknowledgement sends it again; reports and job updates carry a client token
//!   fixed at enqueue so that the server can recognise the repeat.

mod coalesce;
mod crc32c;
mod delivery;
mod record;
mod store;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::client::{Client, Event, ReportOptions};
use crate::error::{Error, ErrorCode, Result};
use crate::request::{self, unix_millis};
use crate::retry;
use crate::validate;
use crate::wire::ExecutionStatus;
use delivery::Verdict;
use record::{AckReason, Kind, Record};
use store::Store;

/// Queued bytes allowed when none is configured: 8 MiB.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest `max_bytes` accepted: 64 KiB.
pub const MIN_OUTBOX_MAX_BYTES: u64 = 64 * 1024;
/// The largest `max_bytes` accepted: 1 GiB (the index of queued records lives in memory).
pub const MAX_OUTBOX_MAX_BYTES: u64 = 1024 * 1024 * 1024;
/// `SyncPolicy::Batch` delay when none is configured.
pub const DEFAULT_BATCH_MAX_DELAY: Duration = Duration::from_secs(1);
/// `SyncPolicy::Batch` record count when none is configured.
pub const DEFAULT_BATCH_MAX_RECORDS: u32 = 100;

/// When an enqueued record reaches stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Each enqueue syncs its record before it returns (one fdatasync per record).
    #[default]
    Always,
    /// Records are synced `max_delay` after the first unsynced one at the latest, or as soon
    /// as `max_records` are unsynced. A power cut loses at most those.
    Batch {
        /// Longest time a record stays unsynced (a background thread syncs it).
        max_delay: Duration,
        /// Most records (and acknowledgements) left unsynced.
        max_records: u32,
    },
}

/// What an enqueue does when the record does not fit in `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Drop the oldest queued events (never reports, command responses or job updates) until
    /// the record fits; refuse it with `OutboxFull` when dropping every event would not do.
    #[default]
    DropOldestEvents,
    /// Refuse the new record with `OutboxFull`; keep everything queued.
    Refuse,
}

/// Settings of [`Outbox::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Durability of enqueues. Default [`SyncPolicy::Always`].
    pub sync: SyncPolicy,
    /// Most bytes of queued records (as stored, with their framing). Default 8 MiB, at least
    /// 64 KiB, at most 1 GiB. The files take at most this plus two segments of 1/8 of it.
    pub max_bytes: u64,
    /// Records older than this are dropped unsent; `None` keeps them until delivered.
    pub ttl: Option<Duration>,
    /// What to do when full. Default [`FullPolicy::DropOldestEvents`].
    pub when_full: FullPolicy,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            sync: SyncPolicy::Always,
            max_bytes: DEFAULT_OUTBOX_MAX_BYTES,
            ttl: None,
            when_full: FullPolicy::DropOldestEvents,
        }
    }
}

/// Counters and state of an outbox ([`Outbox::stats`]). Counts are since the handle was
/// opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Records waiting for delivery.
    pub queued_records: u64,
    /// Their size as stored.
    pub queued_bytes: u64,
    /// Age of the oldest queued record (wall clock), `None` when the queue is empty.
    pub oldest_age: Option<Duration>,
    /// Records the server accepted.
    pub delivered_records: u64,
    /// Records dropped unsent (TTL, or evicted by [`FullPolicy::DropOldestEvents`]).
    pub dropped_records: u64,
    /// Records the server rejected for good (4xx other than 401, 403, 408, 429).
    pub dead_lettered_records: u64,
    /// Damaged records skipped (found at open, or when read for delivery).
    pub corrupt_records: u64,
    /// Bytes of a torn write cut off the newest segment at open.
    pub torn_bytes: u64,
    /// Size of the outbox's files.
    pub disk_bytes: u64,
    /// Bytes written to the files (records, acknowledgements, headers, copies).
    pub written_bytes: u64,
    /// fdatasync/fsync calls made.
    pub syncs: u64,
    /// The last failure: a dead-lettered record's error, a flush stopped by an outage, or a
    /// storage error.
    pub last_error: Option<Error>,
}

/// The result of [`Outbox::flush`]: how many records were delivered, and why it stopped
/// early, if it did.
#[derive(Debug)]
pub struct FlushOutcome {
    /// Records the server accepted during this flush (each record of a coalesced report
    /// counts).
    pub delivered: u64,
    /// `Ok` when the queue emptied or the time ran out; the error of the request that
    /// stopped the flush (an outage, credentials, TLS) or of the storage otherwise.
    pub result: Result<()>,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    sync: SyncPolicy,
    max_bytes: u64,
    ttl: Option<Duration>,
    when_full: FullPolicy,
}

struct State {
    store: Store,
    settings: Settings,
    stats: OutboxStats,
    /// Records an earlier attempt may have delivered (a timeout or broken connection after
    /// the request left): a conflict on their retry means the earlier attempt went through.
    sent_before: HashSet<u64>,
    /// Records being sent by a flush right now: not dropped under it.
    in_flight: Vec<u64>,
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Held by a flush from start to end: flushes run one at a time, in order.
    flushing: Mutex<()>,
    /// Wakes the batch syncer.
    wake: Condvar,
}

/// A durable outbox in a directory. Safe to share between threads: enqueues and stats are
/// serialised by a lock held only for the file write (and sync); flushes run one at a time,
/// without holding that lock while a request is in flight.
pub struct Outbox {
    shared: Arc<Shared>,
    syncer: Option<JoinHandle<()>>,
    dir: PathBuf,
}

fn poisoned() -> Error {
    Error::new(
        ErrorCode::Internal,
        "outbox: an earlier call panicked while holding the outbox; close and reopen it",
    )
}

impl Outbox {
    /// Opens the outbox in `dir` (created if missing), takes its lock and recovers what is
    /// queued: damaged records are skipped and counted, a torn write at the end is cut off.
    ///
    /// Errors: `OutboxLocked` when another handle has the directory open, `OutboxCorrupt`
    /// for files of a newer format, `StorageIo`, `InvalidArgument` for options out of range.
    pub fn open(dir: impl AsRef<Path>, options: &OutboxOptions) -> Result<Outbox> {
        let dir = dir.as_ref();
        if !(MIN_OUTBOX_MAX_BYTES..=MAX_OUTBOX_MAX_BYTES).contains(&options.max_bytes) {
            return Err(Error::invalid_argument(format!(
                "max_bytes must be within {MIN_OUTBOX_MAX_BYTES}..={MAX_OUTBOX_MAX_BYTES} (got {})",
                options.max_bytes
            )));
        }
        if let SyncPolicy::Batch {
            max_delay,
            max_records,
        } = options.sync
        {
            if max_delay.is_zero() || max_records == 0 {
                return Err(Error::invalid_argument(
                    "a batch sync policy needs a non-zero delay and record count",
                ));
            }
        }
        if options.ttl.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid_argument("ttl must not be zero"));
        }
        let segment_bytes = (options.max_bytes / 8).clamp(16 * 1024, 4 * 1024 * 1024);
        let disk_limit = options.max_bytes + 2 * segment_bytes;
        let (store, recovered) = Store::open(dir, segment_bytes, disk_limit)?;
        let stats = OutboxStats {
            corrupt_records: recovered.corrupt_records,
            torn_bytes: recovered.torn_bytes,
            ..OutboxStats::default()
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                settings: Settings {
                    sync: options.sync,
                    max_bytes: options.max_bytes,
                    ttl: options.ttl,
                    when_full: options.when_full,
                },
                stats,
                sent_before: HashSet::new(),
                in_flight: Vec::new(),
                closing: false,
            }),
            flushing: Mutex::new(()),
            wake: Condvar::new(),
        });
        let syncer = match options.sync {
            SyncPolicy::Always => None,
            SyncPolicy::Batch { max_delay, .. } => {
                let shared = shared.clone();
                let thread = std::thread::Builder::new()
                    .name("fleets-outbox-sync".into())
                    .stack_size(64 * 1024)
                    .spawn(move || batch_syncer(&shared, max_delay))
                    .map_err(|e| {
                        Error::new(
                            ErrorCode::Internal,
                            format!("outbox: cannot start the sync thread: {e}"),
                        )
                    })?;
                Some(thread)
            }
        };
        Ok(Outbox {
            shared,
            syncer,
            dir: dir.to_owned(),
        })
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.shared.state.lock().map_err(|_| poisoned())
    }

    /// Queues a shadow report, checked as [`Client::shadow_report`] checks it. Reports of the
    /// same thing still queued at delivery are merged into one (see the module docs); a
    /// report with a `version` is never merged. Without a client token one is generated now
    /// (`fleets-` and 16 hex digits) and kept with the record.
    pub fn enqueue_report(
        &self,
        thing_name: &str,
        reported_json: &str,
        options: ReportOptions<'_>,
    ) -> Result<()> {
        let generated = options
            .client_token
            .is_none()
            .then(retry::generated_client_token);
        let token = validate::client_token(options.client_token)?.or(generated.as_deref());
        let report = request::Report::checked(thing_name, reported_json, token, options.version)?;
        self.enqueue(Record {
            kind: Kind::Report,
            thing_name: report.thing_name.to_owned(),
            client_token: token.unwrap_or_default().to_owned(),
            version: report.version,
            body: report.reported.as_str().to_owned(),
            ..Record::blank()
        })
    }

    /// Queues an event, checked as [`Client::event_publish`] checks it. A timestamp of 0
    /// becomes the time of the enqueue (not of the delivery).
    pub fn enqueue_event(&self, thing_name: &str, event: Event<'_>) -> Result<()> {
        let body = request::event_body(thing_name, &event)?;
        self.enqueue(Record {
            kind: Kind::Event,
            body: into_text(body)?,
            ..Record::blank()
        })
    }

    /// Queues a command response, checked as [`Client::command_respond`] checks it. A
    /// timestamp of 0 becomes the time of the enqueue.
    pub fn enqueue_command_response(
        &self,
        thing_name: &str,
        execution_id: &str,
        status: ExecutionStatus,
        result_json: Option<&str>,
        timestamp: i64,
    ) -> Result<()> {
        let body = request::command_response_body(
            thing_name,
            execution_id,
            status,
            result_json,
            timestamp,
        )?;
        self.enqueue(Record {
            kind: Kind::CommandResponse,
            body: into_text(body)?,
            ..Record::blank()
        })
    }

    /// Queues a job execution update, checked as [`Client::jobs_update`] checks it. Without
    /// a client token one is generated now and kept with the record.
    pub fn enqueue_job_update(
        &self,
        thing_name: &str,
        job_id: &str,
        status: ExecutionStatus,
        status_details_json: Option<&str>,
        expected_version: u64,
        client_token: Option<&str>,
    ) -> Result<()> {
        let generated = client_token.is_none().then(retry::generated_client_token);
        let token = client_token.or(generated.as_deref());
        let (job_id, body) = request::job_update_body(
            thing_name,
            job_id,
            status,
            status_details_json,
            expected_version,
            token,
        )?;
        self.enqueue(Record {
            kind: Kind::JobUpdate,
            job_id: job_id.to_owned(),
            body: into_text(body)?,
            ..Record::blank()
        })
    }

    fn enqueue(&self, mut record: Record) -> Result<()> {
        let mut guard = self.lock()?;
        let st = &mut *guard;
        let now = unix_millis();
        st.expire(now)?;
        record.id = st.store.next_id();
        record.enqueued_ms = now;
        let frame = record::encode_record(&record);
        st.make_room(frame.len() as u64)?;
        st.store
            .append_record(&record, &frame)
            .inspect_err(|e| st.stats.last_error = Some(e.clone()))?;
        let must_sync = match st.settings.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Batch { max_records, .. } => {
                st.store.unsynced_frames() >= u64::from(max_records)
            }
        };
        if must_sync {
            if let Err(e) = st.store.sync() {
                st.store.undo_last_record();
                st.stats.last_error = Some(e.clone());
                return Err(e);
            }
        } else {
            self.shared.wake.notify_one();
        }
        // The record is stored; a failure to rotate or clean up is retried at the next write.
        if let Err(e) = st.store.maintain() {
            st.stats.last_error = Some(e);
        }
        Ok(())
    }

    /// Delivers queued records in order through `client`, for at most `max_time` (`None`:
    /// until the queue is empty or a request fails; each request is bounded by the client's
    /// timeouts either way, and by what is left of `max_time`).
    ///
    /// Each record (or coalesced report) is one request, sent once: the outbox is the retry.
    /// A 2xx acknowledges it; a 4xx other than 401, 403, 408 and 429 dead-letters it (counted,
    /// its error kept in [`OutboxStats::last_error`]) and the flush goes on; anything else (no
    /// connection, timeout, 5xx, 429, 401/403, TLS) stops the flush with that error, keeping
    /// the record and the order for the next flush. Flushes run one at a time; enqueues go on
    /// meanwhile.
    pub fn flush(&self, client: &Client, max_time: Option<Duration>) -> FlushOutcome {
        let mut delivered = 0;
        let result = self.flush_inner(client, max_time, &mut delivered);
        FlushOutcome { delivered, result }
    }

    fn flush_inner(
        &self,
        client: &Client,
        max_time: Option<Duration>,
        delivered: &mut u64,
    ) -> Result<()> {
        let _one_at_a_time = self.shared.flushing.lock().map_err(|_| poisoned())?;
        let deadline = max_time.map(|t| Instant::now() + t);
        let stopped = loop {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break Ok(());
            }
            let (batch, sent_before) = {
                let mut guard = self.lock()?;
                let st = &mut *guard;
                if let Err(e) = st.expire(unix_millis()) {
                    break Err(e);
                }
                match delivery::next_batch(&mut st.store, &mut st.stats.corrupt_records) {
                    Ok(Some(batch)) => {
                        st.in_flight.clone_from(&batch.ids);
                        let sent_before = batch.ids.iter().any(|id| st.sent_before.contains(id));
                        (batch, sent_before)
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(st.failed(e)),
                }
            };
            let outcome = client.send_stored(batch.target(), &batch.body, deadline);
            let may_have_arrived = match &outcome {
                Ok(_) => true,
                Err(e) => e.http_status() != 0 || e.code().request_sent(),
            };
            let mut guard = self.lock()?;
            let st = &mut *guard;
            st.in_flight.clear();
            let (reason, error) = match delivery::judge(outcome, sent_before) {
                Verdict::Delivered => (AckReason::Delivered, None),
                Verdict::Rejected(e) => (AckReason::DeadLettered, Some(e)),
                Verdict::Stop(e) => {
                    if may_have_arrived {
                        st.sent_before.extend(batch.ids.iter().copied());
                    }
                    st.stats.last_error = Some(e.clone());
                    break Err(e);
                }
            };
            let acked = match st.store.ack(reason, &batch.ids) {
                Ok(n) => n as u64,
                Err(e) => break Err(st.failed(e)),
            };
            for id in &batch.ids {
                st.sent_before.remove(id);
            }
            match (reason, error) {
                (AckReason::DeadLettered, Some(e)) => {
                    st.stats.dead_lettered_records += acked;
                    let message =
                        format!("outbox: {acked} record(s) dead-lettered: {}", e.message());
                    st.stats.last_error = Some(e.with_message(message));
                }
                _ => {
                    st.stats.delivered_records += acked;
                    *delivered += acked;
                }
            }
            if let Err(e) = st.store.maintain() {
                break Err(st.failed(e));
            }
        };
        // Acknowledgements follow the sync policy: synced now with Always, by the syncer
        // with Batch. Losing one only means sending its record again.
        let mut guard = self.lock()?;
        let st = &mut *guard;
        let synced = match st.settings.sync {
            SyncPolicy::Always => st.store.sync(),
            SyncPolicy::Batch { .. } => {
                self.shared.wake.notify_one();
                Ok(())
            }
        };
        match (stopped, synced) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(st.failed(e)),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    /// The outbox's counters and state. Cheap (no I/O).
    pub fn stats(&self) -> Result<OutboxStats> {
        let st = self.lock()?;
        let mut stats = st.stats.clone();
        stats.queued_records = st.store.records().len() as u64;
        stats.queued_bytes = st.store.queued_bytes();
        stats.oldest_age = st.store.records().values().next().map(|e| {
            Duration::from_millis(u64::try_from(unix_millis() - e.enqueued_ms).unwrap_or(0))
        });
        stats.disk_bytes = st.store.disk_bytes();
        stats.written_bytes = st.store.written_bytes;
        stats.syncs = st.store.syncs;
        Ok(stats)
    }

    /// The directory this outbox stores its files in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Syncs what is not synced yet, stops the batch syncer and releases the directory.
    /// Dropping the outbox does the same, without reporting a sync failure.
    pub fn close(mut self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Ok(mut st) = self.shared.state.lock() {
            st.closing = true;
        }
        self.shared.wake.notify_all();
        if let Some(thread) = self.syncer.take() {
            let _ = thread.join();
        }
        let mut st = self.lock()?;
        st.store.sync()
    }

    /// For the power-cut tests: appends a `path synced_length` line to the file at `path`
    /// after every sync from now on (starting with the current state of every segment).
    #[doc(hidden)]
    pub fn trace_syncs_for_tests(&self, path: &Path) -> Result<()> {
        let trace = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::new(ErrorCode::StorageIo, format!("sync trace: {e}")))?;
        self.lock()?.store.trace_syncs(trace);
        Ok(())
    }

    /// For the power-cut tests: each segment file and how many of its bytes are synced.
    #[doc(hidden)]
    pub fn synced_lengths_for_tests(&self) -> Vec<(PathBuf, u64)> {
        self.lock()
            .map(|st| st.store.synced_lengths())
            .unwrap_or_default()
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Drops records older than the TTL (oldest first; ids follow enqueue time).
    fn expire(&mut self, now_ms: i64) -> Result<()> {
        let Some(ttl) = self.settings.ttl else {
            return Ok(());
        };
        let limit = now_ms.saturating_sub(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let expired: Vec<u64> = self
            .store
            .records()
            .iter()
            .take_while(|(_, e)| e.enqueued_ms < limit)
            .map(|(&id, _)| id)
            .filter(|id| !self.in_flight.contains(id))
            .collect();
        if !expired.is_empty() {
            let n = self
                .store
                .ack(AckReason::Dropped, &expired)
                .map_err(|e| self.failed(e))?;
            self.stats.dropped_records += n as u64;
        }
        Ok(())
    }

    /// Makes room for a record of `size` bytes under the full policy, or refuses it.
    fn make_room(&mut self, size: u64) -> Result<()> {
        let max = self.settings.max_bytes;
        if size > max {
            return Err(Error::new(
                ErrorCode::OutboxFull,
                format!("outbox: a record of {size} bytes does not fit in max_bytes ({max})"),
            ));
        }
        let queued = self.store.queued_bytes();
        let Some(excess) = (queued + size).checked_sub(max).filter(|&n| n > 0) else {
            return Ok(());
        };
        let full = |why: &str| {
            Error::new(
                ErrorCode::OutboxFull,
                format!(
                    "outbox full: {queued} of {max} bytes queued, a record of {size} bytes does not fit{why}"
                ),
            )
        };
        if self.settings.when_full == FullPolicy::Refuse {
            return Err(full(""));
        }
        let mut freed = 0u64;
        let mut victims = Vec::new();
        for &id in self.store.events() {
            if freed >= excess {
                break;
            }
            if self.in_flight.contains(&id) {
                continue;
            }
            freed += u64::from(self.store.records()[&id].frame_len);
            victims.push(id);
        }
        if freed < excess {
            return Err(full(
                " and dropping every queued event would not make room for it",
            ));
        }
        let n = self
            .store
            .ack(AckReason::Dropped, &victims)
            .map_err(|e| self.failed(e))?;
        self.stats.dropped_records += n as u64;
        Ok(())
    }

    /// Notes a storage failure as the last error and hands it back.
    fn failed(&mut self, e: Error) -> Error {
        self.stats.last_error = Some(e.clone());
        e
    }
}

fn batch_syncer(shared: &Shared, max_delay: Duration) {
    let Ok(mut st) = shared.state.lock() else {
        return;
    };
    let mut retry_at: Option<Instant> = None;
    loop {
        if st.closing {
            return;
        }
        let due = match (st.store.first_unsynced(), retry_at) {
            (None, _) => None,
            (Some(first), Some(retry)) => Some((first + max_delay).max(retry)),
            (Some(first), None) => Some(first + max_delay),
        };
        st = match due {
            None => match shared.wake.wait(st) {
                Ok(guard) => guard,
                Err(_) => return,
            },
            Some(due) => {
                let now = Instant::now();
                if now >= due {
                    retry_at = match st.store.sync() {
                        Ok(()) => None,
                        Err(e) => {
                            st.stats.last_error = Some(e);
                            Some(now + max_delay)
                        }
                    };
                    continue;
                }
                match shared.wake.wait_timeout(st, due - now) {
                    Ok((guard, _)) => guard,
                    Err(_) => return,
                }
            }
        };
    }
}

fn into_text(body: Vec<u8>) -> Result<String> {
    String::from_utf8(body)
        .map_err(|_| Error::new(ErrorCode::Internal, "outbox: a request body is not UTF-8"))
}

impl Record {
    fn blank() -> Record {
        Record {
            id: 0,
            enqueued_ms: 0,
            kind: Kind::Event,
            thing_name: String::new(),
            job_id: String::new(),
            client_token: String::new(),
            version: 0,
            body: String::new(),
        }
    }
}
