//! Per-client counters: what a device's operator wants on a status page, and what the
//! benchmarks read (connections opened, bytes on the wire).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A snapshot of a client's counters since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Calls made (each ThingDatas call counts once, however many attempts it took).
    pub calls: u64,
    /// Calls that ended with an error after their arguments were accepted (transport
    /// failures and HTTP error statuses).
    pub failures: u64,
    /// HTTP requests sent: every attempt, retries and resends included.
    pub requests: u64,
    /// Attempts after the first made by the retry policy.
    pub retries: u64,
    /// Requests sent again on a fresh connection after the server had closed a kept-alive one.
    pub stale_resends: u64,
    /// TCP connections opened (the first one included).
    pub connections: u64,
    /// Bytes written to TCP connections (TLS records, HTTP framing and bodies).
    pub bytes_sent: u64,
    /// Bytes read from TCP connections.
    pub bytes_received: u64,
    /// Wall time of the last completed call, all attempts included.
    pub last_latency: Duration,
}

/// The live counters, shared by a client and its connections.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) calls: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) stale_resends: AtomicU64,
    pub(crate) connections: AtomicU64,
    pub(crate) bytes_sent: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) last_latency_ns: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            calls: get(&self.calls),
            failures: get(&self.failures),
            requests: get(&self.requests),
            retries: get(&self.retries),
            stale_resends: get(&self.stale_resends),
            connections: get(&self.connections),
            bytes_sent: get(&self.bytes_sent),
            bytes_received: get(&self.bytes_received),
            last_latency: Duration::from_nanos(get(&self.last_latency_ns)),
        }
    }
}
