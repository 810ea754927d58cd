//! Delivery: what the next request of a flush is (one record, or the coalesced reports of one
//! thing), and what its outcome means for the records in it.

use serde_json::{Map, Value};

use super::coalesce;
use super::record::{Kind, Record};
use super::store::{ReadError, Store};
use crate::client::StoredTarget;
use crate::error::{Error, ErrorCode, Result};
use crate::request;
use crate::response::Response;
use crate::validate::JsonObject;

/// Reported JSON merged into one report, at most (sum of the records' texts): a long outage
/// sends a few reports per thing rather than one over the server's body limit.
const MAX_COALESCED_BYTES: usize = 64 * 1024;

/// The next request of a flush.
pub(crate) struct Batch {
    /// The records it delivers, oldest first.
    pub ids: Vec<u64>,
    pub kind: Kind,
    pub job_id: String,
    pub body: Vec<u8>,
}

impl Batch {
    pub(crate) fn target(&self) -> StoredTarget<'_> {
        match self.kind {
            Kind::Event => StoredTarget::Event,
            Kind::Report => StoredTarget::Report,
            Kind::CommandResponse => StoredTarget::CommandResponse,
            Kind::JobUpdate => StoredTarget::JobUpdate {
                job_id: &self.job_id,
            },
        }
    }
}

/// What to do with the records of a request after its outcome.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// The server took them: acknowledge.
    Delivered,
    /// The server refused them for good: dead-letter, and go on with the next.
    Rejected(Error),
    /// An outage, or a problem that is not the records' (credentials, TLS, redirect): keep
    /// them, stop the flush, try again at the next.
    Stop(Error),
}

/// Judges the outcome of sending a batch. `sent_before`: an earlier attempt at these records
/// ended in a way that may have reached the server.
pub(crate) fn judge(outcome: Result<Response>, sent_before: bool) -> Verdict {
    let error = match outcome {
        Ok(_) => return Verdict::Delivered,
        Err(error) => error,
    };
    match error.http_status() {
        // A 2xx whose body could not be used: the server took the request.
        200..=299 => Verdict::Delivered,
        // Not the record's fault: wrong credentials or permissions, a redirect (wrong
        // endpoint), a timeout or rate limit the server asked us to wait out.
        401 | 403 | 407 | 408 | 429 | 300..=399 => Verdict::Stop(error),
        // A conflict after an attempt that may have been applied: the earlier attempt most
        // likely moved the state on (a command already answered, a job already updated).
        409 if sent_before => Verdict::Delivered,
        400..=499 => Verdict::Rejected(error),
        _ => Verdict::Stop(error),
    }
}

/// Reads the record at the head of the queue and builds the request for it. Damaged records
/// met on the way are forgotten and counted in `corrupt`.
pub(crate) fn next_batch(store: &mut Store, corrupt: &mut u64) -> Result<Option<Batch>> {
    loop {
        let Some((&id, entry)) = store.records().iter().next() else {
            return Ok(None);
        };
        let (kind, versioned, thing_hash) = (entry.kind, entry.versioned, entry.thing_hash);
        let record = match store.read(id) {
            Ok(record) => record,
            Err(ReadError::Corrupt) => {
                store.forget(id);
                *corrupt += 1;
                continue;
            }
            Err(ReadError::Storage(e)) => return Err(e),
        };
        if kind == Kind::Report && !versioned {
            return coalesced_report(store, record, thing_hash, corrupt).map(Some);
        }
        return single(record).map(Some);
    }
}

fn single(record: Record) -> Result<Batch> {
    let body = match record.kind {
        Kind::Report => report_body(&record, &record.body)?,
        _ => record.body.into_bytes(),
    };
    Ok(Batch {
        ids: vec![record.id],
        kind: record.kind,
        job_id: record.job_id,
        body,
    })
}

fn report_body(first: &Record, reported_json: &str) -> Result<Vec<u8>> {
    let token = (!first.client_token.is_empty()).then_some(first.client_token.as_str());
    request::Report {
        thing_name: &first.thing_name,
        reported: JsonObject::parse("reported_json", reported_json)?,
        client_token: token,
        version: first.version,
    }
    .body()
}

fn object(text: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The first report of a thing merged with the later unversioned reports of the same thing,
/// up to the first one that cannot be merged exactly (or a versioned one, or the size cap).
/// The request carries the first record's client token, so that a retry of a group (even one
/// that grew meanwhile) is recognisable by the server.
fn coalesced_report(
    store: &mut Store,
    first: Record,
    thing_hash: u64,
    corrupt: &mut u64,
) -> Result<Batch> {
    let later: Vec<u64> = store
        .reports_of(thing_hash)
        .filter(|&id| id > first.id)
        .collect();
    let mut ids = vec![first.id];
    let mut merged: Option<Map<String, Value>> = None;
    let mut size = first.body.len();
    for id in later {
        if store.records().get(&id).is_none_or(|e| e.versioned) {
            break;
        }
        let record = match store.read(id) {
            Ok(record) => record,
            Err(ReadError::Corrupt) => {
                store.forget(id);
                *corrupt += 1;
                continue;
            }
            Err(ReadError::Storage(e)) => return Err(e),
        };
        if record.thing_name != first.thing_name {
            continue; // a hash collision
        }
        size += record.body.len();
        if size > MAX_COALESCED_BYTES {
            break;
        }
        let base = match merged.take() {
            Some(map) => map,
            None => match object(&first.body) {
                Some(map) => map,
                None => break,
            },
        };
        let mut candidate = base.clone();
        let composed =
            object(&record.body).is_some_and(|patch| coalesce::compose(&mut candidate, patch));
        if composed {
            merged = Some(candidate);
            ids.push(id);
        } else {
            merged = Some(base);
            break;
        }
    }
    let body = match merged.filter(|_| ids.len() > 1) {
        Some(map) => {
            let text = serde_json::to_string(&map).map_err(|e| {
                Error::new(
                    ErrorCode::Internal,
                    format!("encoding a merged report: {e}"),
                )
            })?;
            report_body(&first, &text)?
        }
        None => report_body(&first, &first.body)?,
    };
    Ok(Batch {
        ids,
        kind: Kind::Report,
        job_id: String::new(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16) -> Result<Response> {
        Err(Error::http(
            ErrorCode::from_http_status(status),
            status,
            format!("HTTP {status}"),
            String::new(),
        ))
    }

    #[test]
    fn verdicts() {
        use Verdict::*;
        for (status, sent_before, expected) in [
            (400, false, "rejected"),
            (404, false, "rejected"),
            (409, false, "rejected"),
            (409, true, "delivered"),
            (413, false, "rejected"),
            (401, false, "stop"),
            (403, false, "stop"),
            (408, false, "stop"),
            (429, false, "stop"),
            (301, false, "stop"),
            (500, false, "stop"),
            (503, true, "stop"),
        ] {
            let got = match judge(http(status), sent_before) {
                Delivered => "delivered",
                Rejected(_) => "rejected",
                Stop(_) => "stop",
            };
            assert_eq!(got, expected, "{status}");
        }
        let refused = Err(Error::new(ErrorCode::Connect, "refused"));
        assert!(matches!(judge(refused, false), Stop(_)));
        let not_json = Err(Error::http(
            ErrorCode::BadResponse,
            200,
            "not JSON".into(),
            "<html>".into(),
        ));
        assert!(matches!(judge(not_json, false), Delivered));
    }
}
