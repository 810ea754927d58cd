//! The TCP layer: a blocking socket whose timeouts are set only when they must change, and
//! a one-syscall liveness probe for pooled connections.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, ShutdownHandle,
    Transport,
};
use ureq::{Error, Timeout};

use crate::logging::{self, LogLevel};
use crate::stats::Counters;

/// A socket timeout may fire at most this much before the deadline (see [`slack`]).
const MAX_EARLY: Duration = Duration::from_millis(100);
/// Smallest connect budget per address when a host has several (as in ureq).
const MIN_PER_ADDRESS_TIMEOUT: Duration = Duration::from_millis(10);

/// Opens TCP connections (unless an earlier connector, the CONNECT proxy, already did).
#[derive(Debug)]
pub(crate) struct TcpConnector {
    pub(crate) counters: Arc<Counters>,
}

impl<In: Transport> Connector<In> for TcpConnector {
    type Out = Either<In, TcpTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(transport) = chained {
            return Ok(Some(Either::A(transport)));
        }
        let config = details.config;
        let started = Instant::now();
        let stream = connect_any(&details.addrs, details.timeout)?;
        Counters::add(&self.counters.connections, 1);
        if logging::enabled(LogLevel::Info) {
            let peer = stream.peer_addr().ok();
            logging::log(
                LogLevel::Info,
                format_args!(
                    "connected to {} in {:.1} ms",
                    peer.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                    started.elapsed().as_secs_f64() * 1000.0
                ),
            );
        }
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            read_timeout: None,
            write_timeout: None,
            counters: self.counters.clone(),
        };
        // ureq implements `ShutdownHandle` for `TcpStream`: `Agent::shutdown` interrupts I/O.
        let handle: Weak<dyn ShutdownHandle> =
            Arc::downgrade(&transport.stream) as Weak<dyn ShutdownHandle>;
        (details.register_shutdown)(handle)?;
        Ok(Some(Either::B(transport)))
    }
}

/// Tries the addresses in order, sharing the connect budget between them as ureq does
/// (halving per address: 1 address gets all of it, 2 get 2/3 and 1/3, ...).
fn connect_any(
    addrs: &ureq::unversioned::resolver::ResolvedSocketAddrs,
    timeout: NextTimeout,
) -> Result<TcpStream, Error> {
    let started = Instant::now();
    let total_weight = 2.0 * (1.0 - 0.5_f64.powi(addrs.len() as i32));
    let mut weight = 1.0_f64;
    let mut last_err: Option<Error> = None;
    for addr in addrs {
        let per_addr = timeout.not_zero().map(|t| {
            let secs = t.as_secs_f64() * weight / total_weight;
            Duration::from_millis((secs * 1000.0) as u64).max(MIN_PER_ADDRESS_TIMEOUT)
        });
        match connect_one(addr, per_addr) {
            Ok(stream) => return Ok(stream),
            Err(e) if is_timeout(&e) => {
                if started.elapsed() > *timeout.after {
                    return Err(Error::Timeout(timeout.reason));
                }
                last_err = Some(Error::Timeout(Timeout::Connect));
            }
            Err(e) if is_addr_specific_error(&e) => {
                // Refused or unroutable: the next address may work; its budget stays.
                last_err = Some(Error::Io(e));
                continue;
            }
            Err(e) => return Err(Error::Io(e)),
        }
        weight /= 2.0;
    }
    Err(last_err.unwrap_or_else(|| {
        Error::Io(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ))
    }))
}

fn connect_one(addr: &SocketAddr, budget: Option<Duration>) -> io::Result<TcpStream> {
    match budget {
        Some(budget) => TcpStream::connect_timeout(addr, budget),
        None => TcpStream::connect(addr),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

fn is_addr_specific_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::HostUnreachable
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::NetworkDown
            | io::ErrorKind::AddrNotAvailable
    )
}

/// A TCP connection: blocking socket, timeouts set only when they must change.
pub(crate) struct TcpTransport {
    /// Shared (weakly) with the agent's shutdown handle.
    stream: Arc<TcpStream>,
    buffers: LazyBuffers,
    /// What `SO_RCVTIMEO` / `SO_SNDTIMEO` are set to now (`None`: no timeout).
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    counters: Arc<Counters>,
}

impl fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpTransport")
            .field("addr", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The time left for an I/O call (`None`: no deadline), after ureq's own rule that an
/// expired budget is a timeout before any I/O.
fn time_left(timeout: &NextTimeout) -> Result<Option<Duration>, Error> {
    if timeout.after.is_zero() {
        return Err(Error::Timeout(timeout.reason));
    }
    Ok(timeout.not_zero().map(|left| *left))
}

/// How much earlier than the deadline a socket timeout may fire: a 16th of the time left, at
/// most [`MAX_EARLY`].
fn slack(left: Duration) -> Duration {
    (left / 16).min(MAX_EARLY)
}

/// The socket timeout to set for `left`, or `None` when `current` will do: it must not run
/// past the deadline and may end at most [`slack`] before it. A new value is set half the
/// slack short, so that it stays good while the budget shrinks by the other half, and for
/// the next request with the same budget.
fn timeout_to_set(current: Option<Duration>, left: Option<Duration>) -> Option<Option<Duration>> {
    match (current, left) {
        (None, None) => None,
        (Some(current), Some(left)) if current <= left && current + slack(left) >= left => None,
        (_, left) => Some(left.map(|left| left - slack(left) / 2)),
    }
}

/// Sets a socket timeout for the time left unless the current one will do.
fn set_timeout(
    stream: &TcpStream,
    current: &mut Option<Duration>,
    left: Option<Duration>,
    set: fn(&TcpStream, Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    if let Some(wanted) = timeout_to_set(*current, left) {
        match set(stream, wanted) {
            Ok(()) => *current = wanted,
            // macOS can refuse after the peer closed with unread request data; let the I/O
            // report the outcome (as ureq does).
            Err(e) if cfg!(target_os = "macos") && e.kind() == io::ErrorKind::InvalidInput => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn io_failure(e: io::Error, reason: Timeout) -> Error {
    if is_timeout(&e) {
        Error::Timeout(reason)
    } else {
        Error::Io(e)
    }
}

impl Transport for TcpTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = timeout.for_write();
        let left = time_left(&timeout)?;
        set_timeout(
            &self.stream,
            &mut self.write_timeout,
            left,
            TcpStream::set_write_timeout,
        )?;
        let output = &self.buffers.output()[..amount];
        (&*self.stream)
            .write_all(output)
            .map_err(|e| io_failure(e, timeout.reason))?;
        Counters::add(&self.counters.bytes_sent, amount as u64);
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = timeout.for_read();
        let left = time_left(&timeout)?;
        set_timeout(
            &self.stream,
            &mut self.read_timeout,
            left,
            TcpStream::set_read_timeout,
        )?;
        let started = Instant::now();
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match (&*self.stream).read(input) {
                Ok(n) => break n,
                // Linux does not restart socket reads that have a timeout after a signal:
                // read again with what is left of the budget.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    let Some(bound) = timeout.not_zero() else {
                        return Err(Error::Io(e));
                    };
                    let left = bound.saturating_sub(started.elapsed());
                    if left.is_zero() {
                        return Err(Error::Timeout(timeout.reason));
                    }
                    self.stream.set_read_timeout(Some(left))?;
                    self.read_timeout = Some(left);
                }
                Err(e) => return Err(io_failure(e, timeout.reason)),
            }
        };
        self.buffers.input_appended(amount);
        Counters::add(&self.counters.bytes_received, amount as u64);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        probe(&self.stream)
    }
}

/// Whether an idle connection is still usable: nothing to read (not even end of stream) and
/// no error. One `recv(MSG_PEEK | MSG_DONTWAIT)`; the socket stays blocking.
#[cfg(unix)]
fn probe(stream: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
    let socket = socket2::SockRef::from(stream);
    loop {
        match socket.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // 0: closed by the server; > 0: bytes nobody asked for; or a socket error.
            _ => return false,
        }
    }
}

/// Whether an idle connection is still usable (portable fallback: ureq's probe).
#[cfg(not(unix))]
fn probe(stream: &TcpStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut byte = [0u8; 1];
    let open = matches!(stream.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
    open && stream.set_nonblocking(false).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    use ureq::unversioned::transport::time::Duration as UreqDuration;

    #[test]
    fn socket_timeouts_never_late_and_rarely_reset() {
        let ms = Duration::from_millis;
        // First I/O: set, a little short of the deadline.
        let first = timeout_to_set(None, Some(ms(5_000))).unwrap().unwrap();
        assert_eq!(first, ms(4_950));
        // The budget shrinks within the request, and the next request starts afresh.
        for left in [4_999, 4_990, 4_960, 4_950, 5_000, 5_040] {
            assert_eq!(timeout_to_set(Some(first), Some(ms(left))), None, "{left}");
        }
        // Would end after the deadline, or too early: set again.
        assert!(timeout_to_set(Some(first), Some(ms(4_949))).is_some());
        assert!(timeout_to_set(Some(first), Some(ms(5_051))).is_some());
        assert_eq!(timeout_to_set(Some(first), None), Some(None));
        assert_eq!(timeout_to_set(None, None), None);
        // Short budgets: at most a 16th early.
        assert_eq!(timeout_to_set(None, Some(ms(320))), Some(Some(ms(310))));
        for n in [1, 15, 16, 99, 100, 690, 1_499, 30_000, 3_600_123] {
            let left = Duration::from_micros(n * 1000 + 7);
            let set = timeout_to_set(None, Some(left)).unwrap().unwrap();
            assert!(
                set <= left && !set.is_zero(),
                "never later than the deadline"
            );
            assert_eq!(timeout_to_set(Some(set), Some(left)), None, "kept");
            assert!(
                left - set <= (left / 16).min(MAX_EARLY),
                "at most the slack early"
            );
        }
    }

    #[test]
    fn expired_budget_is_a_timeout_before_io() {
        let timeout = NextTimeout {
            after: UreqDuration::from_secs(0),
            reason: Timeout::RecvResponse,
            ..NextTimeout::default()
        };
        assert!(matches!(
            time_left(&timeout),
            Err(Error::Timeout(Timeout::RecvResponse))
        ));
        assert_eq!(time_left(&NextTimeout::default()).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn probe_sees_idle_data_and_close() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert!(probe(&client), "idle connection is open");
        assert!(
            probe(&client),
            "probing consumes nothing and keeps it blocking"
        );
        server.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!probe(&client), "unexpected bytes");
        let mut byte = [0u8; 1];
        (&client).read_exact(&mut byte).unwrap(); // still there: peeked, not consumed
        assert_eq!(&byte, b"x");
        drop(server);
        std::thread::sleep(Duration::from_millis(50));
        assert!(!probe(&client), "closed by the peer");
    }
}
