//! The device port's policy: online or one of three outage modes, and the keep-alive knobs.
//!
//! The policy lives in a watch channel so that the accept loop and every device connection
//! react to a change at once. A change of the outage mode is acknowledged by the accept loop
//! (it may have to close or re-open the listening socket), and [`DevicePort::set_offline`]
//! returns only after that, so a test can connect right after the call and see the new mode.

use serde::{Deserialize, Serialize};
use std::io;
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long a mode change may take to be applied by the accept loop.
const APPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// How the device port behaves while offline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OfflineMode {
    /// The listening socket is closed: connecting fails with ECONNREFUSED. Open connections
    /// are closed (FIN) without a response.
    Refuse,
    /// Connections are accepted but nothing is read or answered, and open connections go
    /// silent: clients run into their timeouts. When the blackhole ends, the connections it
    /// held are closed and nothing sent through them is ever handled.
    Blackhole,
    /// Connections are accepted and reset (RST) at once; open connections are reset.
    Reset,
}

impl OfflineMode {
    /// The JSON name: `refuse`, `blackhole` or `reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            OfflineMode::Refuse => "refuse",
            OfflineMode::Blackhole => "blackhole",
            OfflineMode::Reset => "reset",
        }
    }
}

/// The device port's current policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortPolicy {
    /// `None` while online.
    pub offline: Option<OfflineMode>,
    /// Close a keep-alive connection that has been idle this long.
    pub idle_timeout: Option<Duration>,
    /// Close a connection after this many responses.
    pub requests_per_connection: Option<u32>,
    /// Incremented by every change, so that the accept loop can acknowledge one.
    generation: u64,
}

struct Applied {
    generation: u64,
    /// A listening socket bound by `set_offline` when leaving `Refuse`, for the accept loop.
    handover: Option<std::net::TcpListener>,
}

/// Shared between the accept loop, the device connections and the controls.
pub struct DevicePort {
    tx: watch::Sender<PortPolicy>,
    addr: OnceLock<SocketAddr>,
    /// Serialises mode changes.
    setter: Mutex<()>,
    applied: Mutex<Applied>,
    applied_cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DevicePort {
    /// Online, with these keep-alive knobs.
    pub fn new(idle_timeout: Option<Duration>, requests_per_connection: Option<u32>) -> Self {
        let (tx, _) = watch::channel(PortPolicy {
            offline: None,
            idle_timeout,
            requests_per_connection,
            generation: 0,
        });
        DevicePort {
            tx,
            addr: OnceLock::new(),
            setter: Mutex::new(()),
            applied: Mutex::new(Applied {
                generation: 0,
                handover: None,
            }),
            applied_cv: Condvar::new(),
        }
    }

    /// Records the bound address (re-used when coming back from `Refuse`).
    pub fn set_bound(&self, addr: SocketAddr) {
        let _ = self.addr.set(addr);
    }

    /// A receiver of policy changes.
    pub fn subscribe(&self) -> watch::Receiver<PortPolicy> {
        self.tx.subscribe()
    }

    /// The current policy.
    pub fn policy(&self) -> PortPolicy {
        *self.tx.borrow()
    }

    /// Takes the device port offline (`Some`) or back online (`None`), on the same port.
    /// Returns once the accept loop has applied it. Fails when the port cannot be bound again
    /// (another process took it while the emulator refused connections) or the server stopped.
    /// Blocks: async callers use `spawn_blocking`.
    pub fn set_offline(&self, mode: Option<OfflineMode>) -> io::Result<()> {
        let _serial = lock(&self.setter);
        let current = self.policy().offline;
        if current == mode {
            return Ok(());
        }
        if current == Some(OfflineMode::Refuse) {
            let addr = *self
                .addr
                .get()
                .ok_or_else(|| io::Error::other("the device port was never bound"))?;
            // std sets SO_REUSEADDR on Unix, so connections of the previous socket in
            // TIME_WAIT do not block the bind.
            let l = std::net::TcpListener::bind(addr).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot listen on {addr} again: {e}"))
            })?;
            l.set_nonblocking(true)?;
            lock(&self.applied).handover = Some(l);
        }
        let mut generation = 0;
        self.tx.send_modify(|p| {
            p.offline = mode;
            p.generation += 1;
            generation = p.generation;
        });
        let deadline = Instant::now() + APPLY_TIMEOUT;
        let mut applied = lock(&self.applied);
        while applied.generation < generation {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the emulator did not apply the change (stopped?)",
                ));
            }
            applied = self
                .applied_cv
                .wait_timeout(applied, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(())
    }

    /// Sets the idle timeout (`None` = off); applies to open connections too.
    pub fn set_idle_timeout(&self, t: Option<Duration>) {
        self.tx.send_modify(|p| {
            p.idle_timeout = t;
            p.generation += 1;
        });
    }

    /// Sets the responses-per-connection limit (`None` = off); applies to open connections too.
    pub fn set_requests_per_connection(&self, n: Option<u32>) {
        self.tx.send_modify(|p| {
            p.requests_per_connection = n;
            p.generation += 1;
        });
    }

    /// Accept loop: the listening socket bound by `set_offline`, if any.
    pub fn take_handover(&self) -> Option<std::net::TcpListener> {
        lock(&self.applied).handover.take()
    }

    /// Accept loop: `policy` is in effect now.
    pub fn acknowledge(&self, policy: &PortPolicy) {
        let mut a = lock(&self.applied);
        if policy.generation > a.generation {
            a.generation = policy.generation;
        }
        self.applied_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_have_json_names() {
        for m in [
            OfflineMode::Refuse,
            OfflineMode::Blackhole,
            OfflineMode::Reset,
        ] {
            assert_eq!(
                serde_json::to_value(m).unwrap(),
                serde_json::Value::from(m.as_str())
            );
        }
        assert!(serde_json::from_str::<OfflineMode>("\"down\"").is_err());
    }

    #[test]
    fn unchanged_mode_returns_at_once_and_knobs_apply() {
        let p = DevicePort::new(None, None);
        assert!(p.set_offline(None).is_ok());
        p.set_requests_per_connection(Some(2));
        assert_eq!(p.policy().requests_per_connection, Some(2));
    }
}
