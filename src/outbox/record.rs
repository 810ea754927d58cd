//! The on-disk form of the outbox: frames (magic, length, CRC-32C) around payloads (segment
//! header, a queued record, or an acknowledgement that records left the queue).
//!
//! ```text
//! frame   = magic "\xF1\xEE\x75\xB0" | len: u32 LE | crc: u32 LE | payload (len bytes)
//!           crc = CRC-32C of the 4 length bytes followed by the payload
//! payload = 0x01 header  | format: varint | segment number: varint
//!         | 0x02 record  | kind: u8 | id: varint | enqueued at (Unix ms): varint | fields
//!         | 0x03 ack     | reason: u8 | range count: varint | (gap: varint, count: varint)*
//! fields  = event, command response: body
//!         | job update: job id, body
//!         | report: thing name, client token, version: varint, reported JSON
//! strings = length: varint | UTF-8 bytes
//! ```
//!
//! Bodies are the exact JSON request bodies, built and checked at enqueue. Integers are
//! LEB128 varints, so a typical event costs about 20 bytes of framing and fields on top of
//! its JSON body.

use super::crc32c;

/// Marks the start of every frame (resynchronisation after a corrupt one looks for it).
pub(crate) const MAGIC: [u8; 4] = [0xF1, 0xEE, 0x75, 0xB0];
/// Bytes before a frame's payload.
pub(crate) const FRAME_HEADER_BYTES: usize = 12;
/// The largest payload a frame may declare; anything above is garbage.
pub(crate) const MAX_PAYLOAD_BYTES: usize = 32 * 1024 * 1024;
/// The storage format this library writes and reads.
pub(crate) const FORMAT_VERSION: u64 = 1;

const TAG_HEADER: u8 = 1;
const TAG_RECORD: u8 = 2;
const TAG_ACK: u8 = 3;

/// What a queued record is delivered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Event = 1,
    Report = 2,
    CommandResponse = 3,
    JobUpdate = 4,
}

impl Kind {
    fn from_u8(raw: u8) -> Option<Kind> {
        match raw {
            1 => Some(Kind::Event),
            2 => Some(Kind::Report),
            3 => Some(Kind::CommandResponse),
            4 => Some(Kind::JobUpdate),
            _ => None,
        }
    }
}

/// Why records left the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AckReason {
    /// The server accepted them (2xx).
    Delivered = 1,
    /// The server rejected them for good (a 4xx other than 408 and 429).
    DeadLettered = 2,
    /// Dropped unsent: older than the TTL, or evicted to make room.
    Dropped = 3,
}

impl AckReason {
    fn from_u8(raw: u8) -> Option<AckReason> {
        match raw {
            1 => Some(AckReason::Delivered),
            2 => Some(AckReason::DeadLettered),
            3 => Some(AckReason::Dropped),
            _ => None,
        }
    }
}

/// A queued record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub id: u64,
    pub enqueued_ms: i64,
    pub kind: Kind,
    /// Reports only (the body is built at delivery, after coalescing).
    pub thing_name: String,
    /// Job updates only.
    pub job_id: String,
    /// Reports only (job updates carry theirs inside the body).
    pub client_token: String,
    /// Reports only: the expected shadow version, 0 for none.
    pub version: u64,
    /// The request body; for a report, the reported JSON object.
    pub body: String,
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    Header { format: u64, segment: u64 },
    Record(Record),
    Ack { reason: AckReason, ids: Vec<u64> },
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Wraps a payload in a frame.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::extend(crc32c::extend(0, &len), payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The frame of a segment header.
pub(crate) fn encode_header(segment: u64) -> Vec<u8> {
    let mut p = vec![TAG_HEADER];
    put_varint(&mut p, FORMAT_VERSION);
    put_varint(&mut p, segment);
    frame(&p)
}

/// The frame of a record.
pub(crate) fn encode_record(r: &Record) -> Vec<u8> {
    let mut p = Vec::with_capacity(
        24 + r.thing_name.len() + r.job_id.len() + r.client_token.len() + r.body.len(),
    );
    p.push(TAG_RECORD);
    p.push(r.kind as u8);
    put_varint(&mut p, r.id);
    put_varint(&mut p, r.enqueued_ms.max(0) as u64);
    match r.kind {
        Kind::Event | Kind::CommandResponse => {}
        Kind::JobUpdate => put_str(&mut p, &r.job_id),
        Kind::Report => {
            put_str(&mut p, &r.thing_name);
            put_str(&mut p, &r.client_token);
            put_varint(&mut p, r.version);
        }
    }
    put_str(&mut p, &r.body);
    frame(&p)
}

/// The frame of an acknowledgement; `ids` ascending.
pub(crate) fn encode_ack(reason: AckReason, ids: &[u64]) -> Vec<u8> {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &id in ids {
        match ranges.last_mut() {
            Some((start, count)) if *start + *count == id => *count += 1,
            _ => ranges.push((id, 1)),
        }
    }
    let mut p = vec![TAG_ACK, reason as u8];
    put_varint(&mut p, ranges.len() as u64);
    let mut next = 0;
    for (start, count) in ranges {
        put_varint(&mut p, start - next);
        put_varint(&mut p, count);
        next = start + count;
    }
    frame(&p)
}

/// Reads frames out of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            value |= u64::from(b & 0x7F) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.pos.checked_add(len)?;
        let s = std::str::from_utf8(self.bytes.get(self.pos..end)?).ok()?;
        self.pos = end;
        Some(s.to_owned())
    }
}

/// Decodes a payload whose frame checked out; `None` for one this format does not know.
pub(crate) fn decode(payload: &[u8]) -> Option<Payload> {
    let mut r = Reader {
        bytes: payload,
        pos: 0,
    };
    let decoded = match r.u8()? {
        TAG_HEADER => Payload::Header {
            format: r.varint()?,
            segment: r.varint()?,
        },
        TAG_RECORD => {
            let kind = Kind::from_u8(r.u8()?)?;
            let id = r.varint()?;
            let enqueued_ms = i64::try_from(r.varint()?).ok()?;
            let mut record = Record {
                id,
                enqueued_ms,
                kind,
                thing_name: String::new(),
                job_id: String::new(),
                client_token: String::new(),
                version: 0,
                body: String::new(),
            };
            match kind {
                Kind::Event | Kind::CommandResponse => {}
                Kind::JobUpdate => record.job_id = r.string()?,
                Kind::Report => {
                    record.thing_name = r.string()?;
                    record.client_token = r.string()?;
                    record.version = r.varint()?;
                }
            }
            record.body = r.string()?;
            Payload::Record(record)
        }
        TAG_ACK => {
            let reason = AckReason::from_u8(r.u8()?)?;
            let ranges = r.varint()?;
            let mut ids = Vec::new();
            let mut next = 0u64;
            for _ in 0..ranges {
                let start = next.checked_add(r.varint()?)?;
                let count = r.varint()?;
                // A count this large cannot come from this library (ids are consecutive
                // records); refuse rather than allocate without bound.
                if count > MAX_PAYLOAD_BYTES as u64 {
                    return None;
                }
                ids.extend(start..start.checked_add(count)?);
                next = start + count;
            }
            Payload::Ack { reason, ids }
        }
        _ => return None,
    };
    (r.pos == payload.len()).then_some(decoded)
}

/// A frame found at `pos`: its payload and the position after it, if the bytes there are a
/// whole frame whose CRC matches.
pub(crate) fn frame_at(bytes: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let header = bytes.get(pos..pos.checked_add(FRAME_HEADER_BYTES)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len_bytes: [u8; 4] = header[4..8].try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD_BYTES {
        return None;
    }
    let start = pos + FRAME_HEADER_BYTES;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    let crc = u32::from_le_bytes(header[8..12].try_into().ok()?);
    (crc32c::extend(crc32c::extend(0, &len_bytes), payload) == crc)
        .then_some((payload, start + len))
}

/// The next position after `pos` where a valid frame starts, if any.
pub(crate) fn resync(bytes: &[u8], pos: usize) -> Option<usize> {
    let mut from = pos + 1;
    while from + FRAME_HEADER_BYTES <= bytes.len() {
        let offset = bytes[from..].iter().position(|&b| b == MAGIC[0])?;
        let candidate = from + offset;
        if frame_at(bytes, candidate).is_some() {
            return Some(candidate);
        }
        from = candidate + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: Kind) -> Record {
        Record {
            id: 300,
            enqueued_ms: 1_780_000_000_123,
            kind,
            thing_name: if kind == Kind::Report {
                "t-1".into()
            } else {
                String::new()
            },
            job_id: if kind == Kind::JobUpdate {
                "job-7".into()
            } else {
                String::new()
            },
            client_token: if kind == Kind::Report {
                "tok".into()
            } else {
                String::new()
            },
            version: if kind == Kind::Report { 5 } else { 0 },
            body: r#"{"a":"é"}"#.into(),
        }
    }

    #[test]
    fn records_round_trip() {
        for kind in [
            Kind::Event,
            Kind::Report,
            Kind::CommandResponse,
            Kind::JobUpdate,
        ] {
            let r = record(kind);
            let bytes = encode_record(&r);
            let (payload, end) = frame_at(&bytes, 0).unwrap();
            assert_eq!(end, bytes.len());
            assert_eq!(decode(payload), Some(Payload::Record(r)));
        }
        let bytes = encode_header(9);
        let (payload, _) = frame_at(&bytes, 0).unwrap();
        assert_eq!(
            decode(payload),
            Some(Payload::Header {
                format: FORMAT_VERSION,
                segment: 9
            })
        );
    }

    #[test]
    fn acks_round_trip_as_ranges() {
        let ids = vec![3, 4, 5, 9, 200, 201, 1 << 40];
        let bytes = encode_ack(AckReason::DeadLettered, &ids);
        let (payload, _) = frame_at(&bytes, 0).unwrap();
        assert_eq!(
            decode(payload),
            Some(Payload::Ack {
                reason: AckReason::DeadLettered,
                ids
            })
        );
        // Three ranges of consecutive ids: a few bytes, not one varint per id.
        let many: Vec<u64> = (1000..2000).collect();
        assert!(encode_ack(AckReason::Delivered, &many).len() < 24);
    }

    #[test]
    fn every_flipped_bit_and_every_truncation_is_caught() {
        let bytes = encode_record(&record(Kind::Report));
        for i in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[i / 8] ^= 1 << (i % 8);
            assert!(frame_at(&damaged, 0).is_none(), "bit {i}");
        }
        for len in 0..bytes.len() {
            assert!(frame_at(&bytes[..len], 0).is_none(), "length {len}");
        }
    }

    #[test]
    fn resync_finds_the_next_frame() {
        let mut bytes = encode_record(&record(Kind::Event));
        let second = bytes.len();
        bytes.extend(encode_record(&record(Kind::JobUpdate)));
        bytes[5] ^= 0xFF;
        assert!(frame_at(&bytes, 0).is_none());
        assert_eq!(resync(&bytes, 0), Some(second));
        assert_eq!(resync(&bytes, second), None);
    }

    #[test]
    fn garbage_payloads_are_refused() {
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[9]), None);
        assert_eq!(decode(&[TAG_RECORD, 9, 1, 1, 0]), None);
        assert_eq!(decode(&[TAG_RECORD, 1, 1, 1, 5, b'a']), None);
        // Trailing bytes after a complete payload.
        assert_eq!(decode(&[TAG_HEADER, 1, 1, 0]), None);
        // An overlong varint.
        assert_eq!(
            decode(&[TAG_HEADER, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 1]),
            None
        );
    }
}
