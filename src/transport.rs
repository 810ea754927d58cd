//! libfleets' connector chain for ureq: the same layers as ureq's `DefaultConnector` (HTTP
//! CONNECT proxy, TCP, rustls), with a leaner TCP transport and one write per request.
//!
//! Per keep-alive request ureq's own TCP transport makes 12 syscalls where 4 do:
//! - its liveness probe (run when a connection goes back to the pool and again when it is
//!   taken out) switches the socket to non-blocking, reads, and switches back: 3 syscalls.
//!   [`TcpTransport::is_open`] asks once, `recv(MSG_PEEK | MSG_DONTWAIT)`;
//! - it sets `SO_RCVTIMEO`/`SO_SNDTIMEO` before every read and write because the remaining
//!   time shrinks between calls. Here the socket keeps its timeout while that ends no later
//!   than the deadline and at most a 16th of the time left (100 ms at most) before it: a
//!   timeout can fire slightly early, never late, and steady requests set none;
//! - it writes the request head and the body as two TLS records in two `sendto`.
//!   [`Coalescing`] holds what ureq transmits until it waits for the response, then hands
//!   it to TLS at once: one record, one `sendto`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    RustlsConnector, ShutdownHandle, Transport,
};
use ureq::{Error, Timeout};
use zeroize::Zeroize;

/// A socket timeout may fire at most this much before the deadline (see [`slack`]).
const MAX_EARLY: Duration = Duration::from_millis(100);
/// Request bytes held back at most before they are handed to TLS anyway.
const COALESCE_LIMIT: usize = 16 * 1024;
/// Capacity of the held-back buffer kept for the next request on the connection.
const KEEP_PENDING_CAPACITY: usize = 4 * 1024;
/// Smallest connect budget per address when a host has several (as in ureq).
const MIN_PER_ADDRESS_TIMEOUT: Duration = Duration::from_millis(10);

/// The connector chain: CONNECT proxy (when configured), TCP, TLS, then request coalescing.
pub(crate) fn connector() -> impl Connector {
    ().chain(ConnectProxyConnector::default())
        .chain(TcpConnector)
        .chain(RustlsConnector::default())
        .chain(Coalescing)
}

/// Opens TCP connections (unless an earlier connector, the CONNECT proxy, already did).
#[derive(Debug)]
pub(crate) struct TcpConnector;

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
        let stream = connect_any(&details.addrs, details.timeout)?;
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let transport = TcpTransport {
            stream: Arc::new(stream),
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
            read_timeout: None,
            write_timeout: None,
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
            .map_err(|e| io_failure(e, timeout.reason))
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

/// Wraps TLS connections in [`CoalescingTransport`].
#[derive(Debug)]
pub(crate) struct Coalescing;

impl<In: Transport> Connector<In> for Coalescing {
    type Out = Either<In, CoalescingTransport<In>>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|transport| {
            // Only the TLS session to the endpoint: a plain connection to a proxy is left
            // alone (the CONNECT exchange runs this chain for it too).
            if transport.is_tls() {
                Either::B(CoalescingTransport {
                    inner: transport,
                    pending: Vec::new(),
                })
            } else {
                Either::A(transport)
            }
        }))
    }
}

/// Holds transmitted request bytes until ureq waits for input (the response), then passes
/// them on together: the request head and a body become one TLS record and one write.
/// Shares the inner transport's buffers.
pub(crate) struct CoalescingTransport<T: Transport> {
    inner: T,
    /// Transmitted by ureq, not yet passed on. It holds the `Authorization` header: zeroed
    /// when the connection is dropped.
    pending: Vec<u8>,
}

impl<T: Transport> CoalescingTransport<T> {
    /// Passes the held bytes on, in pieces of the inner output buffer's size.
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), Error> {
        let mut sent = 0;
        let result = loop {
            if sent == self.pending.len() {
                break Ok(());
            }
            let output = self.inner.buffers().output();
            let n = output.len().min(self.pending.len() - sent);
            output[..n].copy_from_slice(&self.pending[sent..sent + n]);
            if let Err(e) = self.inner.transmit_output(n, timeout) {
                break Err(e);
            }
            sent += n;
        };
        if self.pending.capacity() > KEEP_PENDING_CAPACITY {
            // After a large body: give the memory back (zeroed) rather than keep it per
            // pooled connection.
            self.pending.zeroize();
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
        result
    }
}

impl<T: Transport> fmt::Debug for CoalescingTransport<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoalescingTransport")
            .field("inner", &self.inner)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl<T: Transport> Drop for CoalescingTransport<T> {
    fn drop(&mut self) {
        self.pending.zeroize();
    }
}

/// What is left of `timeout` after the time since `started`.
fn less_elapsed(mut timeout: NextTimeout, started: Instant) -> NextTimeout {
    if let UreqDuration::Exact(left) = timeout.after {
        timeout.after = UreqDuration::Exact(left.saturating_sub(started.elapsed()));
    }
    timeout
}

impl<T: Transport> Transport for CoalescingTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let output = &self.inner.buffers().output()[..amount];
        self.pending.extend_from_slice(output);
        if self.pending.len() >= COALESCE_LIMIT {
            self.flush(timeout)?;
        }
        Ok(())
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        if self.pending.is_empty() && self.buffers().can_use_input() {
            return Ok(true);
        }
        self.await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = if self.pending.is_empty() {
            timeout
        } else {
            let started = Instant::now();
            self.flush(timeout)?;
            // The read gets what the writes left of the budget.
            less_elapsed(timeout, started)
        };
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        // Bytes still held would mean a request was never completed: not reusable.
        self.pending.is_empty() && self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Records what reaches it, one entry per `transmit_output`.
    #[derive(Debug)]
    struct Recording {
        buffers: LazyBuffers,
        sent: Vec<Vec<u8>>,
    }

    impl Transport for Recording {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), Error> {
            let output = self.buffers.output()[..amount].to_vec();
            self.sent.push(output);
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, Error> {
            self.buffers.input_append_buf()[0] = b'H';
            self.buffers.input_appended(1);
            Ok(true)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn transmit(t: &mut CoalescingTransport<Recording>, bytes: &[u8]) {
        for piece in bytes.chunks(t.buffers().output().len()) {
            t.buffers().output()[..piece.len()].copy_from_slice(piece);
            t.transmit_output(piece.len(), NextTimeout::default())
                .unwrap();
        }
    }

    #[test]
    fn request_is_passed_on_in_one_piece_when_the_response_is_awaited() {
        let mut t = CoalescingTransport {
            inner: Recording {
                buffers: LazyBuffers::new(64, 1024),
                sent: Vec::new(),
            },
            pending: Vec::new(),
        };
        transmit(&mut t, b"POST / HTTP/1.1\r\ncontent-length: 7\r\n\r\n");
        transmit(&mut t, b"{\"a\":1}");
        assert!(t.inner.sent.is_empty(), "held back");
        assert!(
            !t.is_open(),
            "a connection with a request half sent is not reusable"
        );
        assert!(t.await_input(NextTimeout::default()).unwrap());
        assert_eq!(
            t.inner.sent,
            vec![b"POST / HTTP/1.1\r\ncontent-length: 7\r\n\r\n{\"a\":1}".to_vec()]
        );
        assert_eq!(t.buffers().input(), b"H");
        assert!(t.is_open());

        // A large body: passed on at the limit, in pieces of the inner buffer's size.
        t.inner.sent.clear();
        let body: Vec<u8> = (0..COALESCE_LIMIT + 3000).map(|i| i as u8).collect();
        transmit(&mut t, &body);
        assert_eq!(
            t.inner.sent.len(),
            COALESCE_LIMIT / 1024,
            "flushed at the limit"
        );
        t.await_input(NextTimeout::default()).unwrap();
        assert!(t.inner.sent.iter().all(|piece| piece.len() <= 1024));
        assert_eq!(t.inner.sent.concat(), body);
        assert!(t.pending.is_empty());
        assert!(
            t.pending.capacity() <= KEEP_PENDING_CAPACITY,
            "large buffer given back"
        );
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
