//! The outbox's directory: a lock file and append-only segment files of frames
//! (`record.rs`), an in-memory index of the queued records, and recovery on open.
//!
//! - Records and acknowledgements are appended to the active segment, one `write` each.
//!   Nothing is ever rewritten in place. A record leaves the queue when an acknowledgement
//!   (delivered, dead-lettered, dropped) naming its id is appended after it.
//! - When the active segment reaches `segment_bytes` it is synced and a new one is created
//!   (file synced, then the directory). Segments are deleted oldest first, once none of their
//!   records is queued: acknowledgements always come after the records they name, so deleting
//!   from the oldest end never brings a record back. When the files outgrow the disk limit
//!   (records left behind in an old segment while newer ones were dropped), the oldest
//!   segment's queued records are copied forward, with their ids, and it is deleted.
//! - On open every segment is read: a frame whose CRC fails is skipped (the scan resumes at
//!   the next valid frame, and the skipped stretch counts as one corrupt record); bytes after
//!   the last valid frame of the newest segment are a torn write and are cut off.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::record::{self, AckReason, Kind, Payload, Record, FORMAT_VERSION};
use crate::error::{Error, ErrorCode, Result};

const LOCK_FILE: &str = "LOCK";

/// Where a queued record is, and what the queue needs to know without reading it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub segment: u64,
    pub offset: u64,
    pub frame_len: u32,
    pub kind: Kind,
    pub enqueued_ms: i64,
    /// Reports: a hash of the thing name, to find coalescing candidates (the names are
    /// compared when the records are read).
    pub thing_hash: u64,
    /// Reports with an expected version: never coalesced.
    pub versioned: bool,
}

struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    synced_len: u64,
    live_records: u64,
}

/// What recovery found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Recovered {
    /// Stretches of damaged bytes skipped between valid frames.
    pub corrupt_records: u64,
    /// Bytes of a torn write cut off the end of the newest segment.
    pub torn_bytes: u64,
}

/// Why a record could not be read back.
pub(crate) enum ReadError {
    Storage(Error),
    /// Its bytes changed on disk since it was written (CRC mismatch).
    Corrupt,
}

pub(crate) struct Store {
    dir: PathBuf,
    _lock: File,
    segment_bytes: u64,
    /// Files larger than this in total make the oldest segment's records move forward.
    disk_limit: u64,
    segments: BTreeMap<u64, Segment>,
    active: u64,
    writer: File,
    next_id: u64,
    records: BTreeMap<u64, Entry>,
    events: BTreeSet<u64>,
    /// Queued reports by thing-name hash.
    reports: HashMap<u64, BTreeSet<u64>>,
    queued_bytes: u64,
    disk_bytes: u64,
    unsynced_frames: u64,
    first_unsynced: Option<Instant>,
    pub written_bytes: u64,
    pub syncs: u64,
    /// Test hook: every completed sync is noted here (`path length` lines).
    sync_trace: Option<File>,
}

pub(crate) fn thing_hash(thing_name: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    thing_name.hash(&mut h);
    h.finish()
}

fn storage(what: &str, path: &Path, e: io::Error) -> Error {
    Error::new(
        ErrorCode::StorageIo,
        format!("outbox: {what} {}: {e}", path.display()),
    )
}

fn segment_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("seg-{number:016x}.log"))
}

fn segment_number(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| storage("syncing directory", dir, e))
}

fn entry_for(record: &Record, segment: u64, offset: u64, frame_len: usize) -> Entry {
    Entry {
        segment,
        offset,
        frame_len: frame_len as u32,
        kind: record.kind,
        enqueued_ms: record.enqueued_ms,
        thing_hash: if record.kind == Kind::Report {
            thing_hash(&record.thing_name)
        } else {
            0
        },
        versioned: record.kind == Kind::Report && record.version != 0,
    }
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| storage("opening", &path, e))?;
    let taken =
        crate::ffi::os::try_lock_exclusive(&file).map_err(|e| storage("locking", &path, e))?;
    if !taken {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim();
        let by = if holder.chars().all(|c| c.is_ascii_digit()) && !holder.is_empty() {
            format!(" (process {holder})")
        } else {
            String::new()
        };
        return Err(Error::new(
            ErrorCode::OutboxLocked,
            format!(
                "outbox: directory {} is open in another outbox handle{by}; close that one first",
                dir.display()
            ),
        ));
    }
    // Who holds it, for the message above; not synced, it only informs.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all_at(std::process::id().to_string().as_bytes(), 0));
    Ok(file)
}

impl Store {
    /// Opens (creating if needed) the directory, takes its lock and recovers the queue.
    pub(crate) fn open(
        dir: &Path,
        segment_bytes: u64,
        disk_limit: u64,
    ) -> Result<(Store, Recovered)> {
        let existed = dir.is_dir();
        fs::create_dir_all(dir).map_err(|e| storage("creating directory", dir, e))?;
        if !existed {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let lock = lock(dir)?;
        let mut numbers = Vec::new();
        for item in fs::read_dir(dir).map_err(|e| storage("listing", dir, e))? {
            let item = item.map_err(|e| storage("listing", dir, e))?;
            if let Some(n) = item.file_name().to_str().and_then(segment_number) {
                numbers.push(n);
            }
        }
        numbers.sort_unstable();

        let mut recovered = Recovered::default();
        let mut recovered_syncs = 0;
        let mut records = BTreeMap::new();
        let mut segments = BTreeMap::new();
        let mut max_id = 0u64;
        let last = numbers.last().copied();
        for &n in &numbers {
            let path = segment_path(dir, n);
            let bytes = fs::read(&path).map_err(|e| storage("reading", &path, e))?;
            let mut pos = 0;
            let mut valid_end = 0;
            while pos < bytes.len() {
                let Some((payload, next)) = record::frame_at(&bytes, pos) else {
                    match record::resync(&bytes, pos) {
                        Some(found) => {
                            recovered.corrupt_records += 1;
                            pos = found;
                            continue;
                        }
                        None => break,
                    }
                };
                match record::decode(payload) {
                    Some(Payload::Header { format, .. }) if format > FORMAT_VERSION => {
                        return Err(Error::new(
                            ErrorCode::OutboxCorrupt,
                            format!(
                                "outbox: {} is in storage format {format}, newer than this library's ({FORMAT_VERSION}); it was left untouched",
                                path.display()
                            ),
                        ));
                    }
                    Some(Payload::Header { .. }) => {}
                    Some(Payload::Record(r)) => {
                        max_id = max_id.max(r.id);
                        let entry = entry_for(&r, n, pos as u64, next - pos);
                        records.insert(r.id, entry);
                    }
                    Some(Payload::Ack { ids, .. }) => {
                        for id in ids {
                            max_id = max_id.max(id);
                            records.remove(&id);
                        }
                    }
                    None => recovered.corrupt_records += 1,
                }
                pos = next;
                valid_end = next;
            }
            let mut len = bytes.len() as u64;
            if Some(n) == last && valid_end < bytes.len() {
                // A torn write at the end: cut it off so that appends continue after the last
                // good frame.
                recovered.torn_bytes += len - valid_end as u64;
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| storage("opening", &path, e))?;
                file.set_len(valid_end as u64)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| storage("truncating the torn end of", &path, e))?;
                recovered_syncs += 1;
                len = valid_end as u64;
            }
            let file = File::open(&path).map_err(|e| storage("opening", &path, e))?;
            segments.insert(
                n,
                Segment {
                    path,
                    file,
                    len,
                    synced_len: len,
                    live_records: 0,
                },
            );
        }

        let disk_bytes = segments.values().map(|s| s.len).sum();
        let (active, writer, created) = match last {
            Some(n) if segments[&n].len > 0 => {
                let path = &segments[&n].path;
                let writer = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| storage("opening", path, e))?;
                (n, writer, false)
            }
            // No segment yet, or the newest has not even a header: (re)start it.
            _ => {
                let n = last.unwrap_or(1);
                segments.remove(&n);
                let (segment, writer) = create_segment(dir, n)?;
                segments.insert(n, segment);
                (n, writer, true)
            }
        };
        let mut store = Store {
            dir: dir.to_owned(),
            _lock: lock,
            segment_bytes,
            disk_limit,
            segments,
            active,
            writer,
            next_id: max_id + 1,
            records: BTreeMap::new(),
            events: BTreeSet::new(),
            reports: HashMap::new(),
            queued_bytes: 0,
            disk_bytes,
            unsynced_frames: 0,
            first_unsynced: None,
            written_bytes: 0,
            syncs: 0,
            sync_trace: None,
        };
        for (id, entry) in records {
            store.index(id, entry);
        }
        if created {
            store.disk_bytes = store.segments.values().map(|s| s.len).sum();
            store.written_bytes += store.segments[&active].len;
            store.syncs += 2;
        }
        store.syncs += recovered_syncs;
        store.maintain()?;
        Ok((store, recovered))
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id
    }

    pub(crate) fn records(&self) -> &BTreeMap<u64, Entry> {
        &self.records
    }

    /// Queued events, oldest first.
    pub(crate) fn events(&self) -> &BTreeSet<u64> {
        &self.events
    }

    /// Queued reports whose thing name has this hash, oldest first.
    pub(crate) fn reports_of(&self, thing_hash: u64) -> impl Iterator<Item = u64> + '_ {
        self.reports.get(&thing_hash).into_iter().flatten().copied()
    }

    pub(crate) fn queued_bytes(&self) -> u64 {
        self.queued_bytes
    }

    pub(crate) fn unsynced_frames(&self) -> u64 {
        self.unsynced_frames
    }

    pub(crate) fn first_unsynced(&self) -> Option<Instant> {
        self.first_unsynced
    }

    /// Appends a frame to the active segment in one write; a partial write is cut off again.
    fn append_frame(&mut self, frame: &[u8]) -> Result<u64> {
        let segment = self
            .segments
            .get_mut(&self.active)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "outbox: no active segment"))?;
        let offset = segment.len;
        if let Err(e) = self.writer.write_all(frame) {
            let _ = self.writer.set_len(offset);
            return Err(storage("writing", &segment.path, e));
        }
        segment.len += frame.len() as u64;
        self.disk_bytes += frame.len() as u64;
        self.written_bytes += frame.len() as u64;
        self.unsynced_frames += 1;
        self.first_unsynced.get_or_insert_with(Instant::now);
        Ok(offset)
    }

    /// Appends a record (its id is `next_id()`) and indexes it. Not synced.
    pub(crate) fn append_record(&mut self, record: &Record, frame: &[u8]) -> Result<()> {
        debug_assert_eq!(record.id, self.next_id);
        let offset = self.append_frame(frame)?;
        self.next_id += 1;
        let entry = entry_for(record, self.active, offset, frame.len());
        self.index(record.id, entry);
        Ok(())
    }

    fn index(&mut self, id: u64, entry: Entry) {
        if let Some(segment) = self.segments.get_mut(&entry.segment) {
            segment.live_records += 1;
        }
        self.queued_bytes += u64::from(entry.frame_len);
        match entry.kind {
            Kind::Event => {
                self.events.insert(id);
            }
            Kind::Report => {
                self.reports.entry(entry.thing_hash).or_default().insert(id);
            }
            _ => {}
        }
        self.records.insert(id, entry);
    }

    fn unindex(&mut self, id: u64) -> Option<Entry> {
        let entry = self.records.remove(&id)?;
        if let Some(segment) = self.segments.get_mut(&entry.segment) {
            segment.live_records -= 1;
        }
        self.queued_bytes -= u64::from(entry.frame_len);
        match entry.kind {
            Kind::Event => {
                self.events.remove(&id);
            }
            Kind::Report => {
                if let Some(ids) = self.reports.get_mut(&entry.thing_hash) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        self.reports.remove(&entry.thing_hash);
                    }
                }
            }
            _ => {}
        }
        Some(entry)
    }

    /// Takes back the record just appended, after its sync failed: it is cut off the file
    /// and forgotten, so the enqueue that failed leaves nothing behind.
    pub(crate) fn undo_last_record(&mut self) {
        let id = self.next_id - 1;
        if let Some(entry) = self.unindex(id) {
            if entry.segment == self.active {
                if let Some(segment) = self.segments.get_mut(&self.active) {
                    if segment.len == entry.offset + u64::from(entry.frame_len)
                        && self.writer.set_len(entry.offset).is_ok()
                    {
                        segment.len = entry.offset;
                        self.disk_bytes -= u64::from(entry.frame_len);
                    }
                }
            }
        }
    }

    /// Removes records from the queue, appending one acknowledgement (not synced). Ids that
    /// are not queued (any more) are ignored; returns how many were.
    pub(crate) fn ack(&mut self, reason: AckReason, ids: &[u64]) -> Result<usize> {
        let mut present: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| self.records.contains_key(id))
            .collect();
        if present.is_empty() {
            return Ok(0);
        }
        present.sort_unstable();
        self.append_frame(&record::encode_ack(reason, &present))?;
        for id in &present {
            self.unindex(*id);
        }
        Ok(present.len())
    }

    /// Makes everything written so far durable (fdatasync of the active segment; the others
    /// were synced when they stopped being active).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.unsynced_frames == 0 {
            return Ok(());
        }
        let segment = self
            .segments
            .get_mut(&self.active)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "outbox: no active segment"))?;
        self.writer
            .sync_data()
            .map_err(|e| storage("syncing", &segment.path, e))?;
        segment.synced_len = segment.len;
        self.unsynced_frames = 0;
        self.first_unsynced = None;
        self.syncs += 1;
        let noted = (segment.path.clone(), segment.synced_len);
        self.trace_sync(&noted.0, noted.1);
        Ok(())
    }

    /// Test hook: from now on, appends `path synced_length` to `trace` after every sync,
    /// starting with every segment's current state, so that a power cut can be simulated
    /// exactly after a kill.
    pub(crate) fn trace_syncs(&mut self, trace: File) {
        self.sync_trace = Some(trace);
        for (path, len) in self.synced_lengths() {
            self.trace_sync(&path, len);
        }
    }

    fn trace_sync(&mut self, path: &Path, len: u64) {
        if let Some(trace) = &mut self.sync_trace {
            let _ = writeln!(trace, "{} {len}", path.display());
        }
    }

    /// Reads a queued record back.
    pub(crate) fn read(&self, id: u64) -> std::result::Result<Record, ReadError> {
        let entry = self.records.get(&id).ok_or(ReadError::Corrupt)?;
        let frame = self.read_frame(entry).map_err(ReadError::Storage)?;
        match record::frame_at(&frame, 0).and_then(|(payload, _)| record::decode(payload)) {
            Some(Payload::Record(r)) if r.id == id => Ok(r),
            _ => Err(ReadError::Corrupt),
        }
    }

    fn read_frame(&self, entry: &Entry) -> Result<Vec<u8>> {
        let segment = self
            .segments
            .get(&entry.segment)
            .ok_or_else(|| Error::new(ErrorCode::Internal, "outbox: record in no segment"))?;
        let mut frame = vec![0; entry.frame_len as usize];
        segment
            .file
            .read_exact_at(&mut frame, entry.offset)
            .map_err(|e| storage("reading", &segment.path, e))?;
        Ok(frame)
    }

    /// Forgets a record whose bytes were found damaged (nothing is written: if it comes back
    /// at the next open it is damaged there too and skipped again).
    pub(crate) fn forget(&mut self, id: u64) {
        self.unindex(id);
    }

    /// Starts a new segment once the active one is full, deletes segments with no queued
    /// record from the oldest end, and copies records forward when the files outgrow the
    /// disk limit.
    pub(crate) fn maintain(&mut self) -> Result<()> {
        if self.segments[&self.active].len >= self.segment_bytes {
            self.rotate()?;
        }
        self.delete_empty_oldest()?;
        let mut relocations = self.segments.len();
        while self.disk_bytes > self.disk_limit && relocations > 1 {
            relocations -= 1;
            let oldest = *self.segments.keys().next().unwrap_or(&self.active);
            if oldest == self.active {
                break;
            }
            self.relocate(oldest)?;
            self.delete_empty_oldest()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        // Synced first, so that a power cut cannot keep a later segment and lose the end of
        // this one: what is lost is always the newest records.
        self.sync()?;
        let number = self.active + 1;
        let (segment, writer) = create_segment(&self.dir, number)?;
        self.disk_bytes += segment.len;
        self.written_bytes += segment.len;
        self.syncs += 2;
        self.trace_sync(&segment.path.clone(), segment.synced_len);
        self.segments.insert(number, segment);
        self.active = number;
        self.writer = writer;
        Ok(())
    }

    fn delete_empty_oldest(&mut self) -> Result<()> {
        while let Some((&oldest, segment)) = self.segments.iter().next() {
            if oldest == self.active || segment.live_records > 0 {
                break;
            }
            if self.unsynced_frames > 0 {
                // The acknowledgements that emptied this segment must be durable before it
                // goes: a power cut that kept the deletion but lost them would bring back
                // only the records of a group that lived in other segments (sent again under
                // another first record, so another client token).
                self.sync()?;
                continue;
            }
            let segment = &self.segments[&oldest];
            fs::remove_file(&segment.path).map_err(|e| storage("deleting", &segment.path, e))?;
            // Synced one by one: a deletion lost in a power cut must not leave an older
            // segment behind a newer one's deletion (its records would come back unacked).
            sync_dir(&self.dir)?;
            self.syncs += 1;
            self.disk_bytes -= segment.len;
            self.segments.remove(&oldest);
        }
        Ok(())
    }

    /// Copies the queued records of segment `number` to the active segment (same ids, same
    /// bytes), syncs, and leaves `number` without queued records.
    fn relocate(&mut self, number: u64) -> Result<()> {
        let ids: Vec<u64> = self
            .records
            .iter()
            .filter(|(_, e)| e.segment == number)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            let Some(entry) = self.records.get(&id).cloned() else {
                continue;
            };
            let frame = self.read_frame(&entry)?;
            let offset = self.append_frame(&frame)?;
            self.unindex(id);
            let moved = Entry {
                segment: self.active,
                offset,
                ..entry
            };
            self.index(id, moved);
            if self.segments[&self.active].len >= self.segment_bytes {
                self.rotate()?;
            }
        }
        self.sync()
    }

    /// Each segment file and how many of its bytes are known to be on stable storage.
    pub(crate) fn synced_lengths(&self) -> Vec<(PathBuf, u64)> {
        self.segments
            .values()
            .map(|s| (s.path.clone(), s.synced_len))
            .collect()
    }

    /// Bytes of all segment files.
    pub(crate) fn disk_bytes(&self) -> u64 {
        self.disk_bytes
    }
}

/// Creates segment `number` with its header, synced, and syncs the directory so that the
/// file itself survives a power cut.
fn create_segment(dir: &Path, number: u64) -> Result<(Segment, File)> {
    let path = segment_path(dir, number);
    let mut writer = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| storage("creating", &path, e))?;
    let header = record::encode_header(number);
    writer
        .write_all(&header)
        .and_then(|()| writer.sync_all())
        .map_err(|e| storage("writing", &path, e))?;
    sync_dir(dir)?;
    let writer = OpenOptions::new()
        .append(true)
        .open(&path)
        .map_err(|e| storage("opening", &path, e))?;
    let file = File::open(&path).map_err(|e| storage("opening", &path, e))?;
    let len = header.len() as u64;
    Ok((
        Segment {
            path,
            file,
            len,
            synced_len: len,
            live_records: 0,
        },
        writer,
    ))
}
