//! Stale keep-alive connections. A server closes an idle connection when its keep-alive
//! timeout expires; behind a link with latency that close can still be on its way when the
//! client takes the connection from the pool and sends its next request, so the probe before
//! reuse cannot see it. [`StaleGuard`] notices a request on a reused connection that ends
//! (end of stream, reset, TLS close) before any byte of its response arrived and reports it
//! as [`StaleConnection`]: the server never answered, and the client may send a request that
//! is safe to repeat once more on a fresh connection.

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport,
};
use ureq::Error;

/// A request on a reused connection got no response: the connection had been closed by the
/// server, which therefore never answered the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StaleConnection {
    /// How long the connection had been idle before the request.
    pub(crate) idle: Duration,
}

impl fmt::Display for StaleConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server closed the kept-alive connection (idle for {} ms) before answering",
            self.idle.as_millis()
        )
    }
}

impl std::error::Error for StaleConnection {}

/// Wraps the endpoint's connections (TLS, or plain for an `http://` loopback endpoint) in
/// [`GuardedTransport`]. A plain connection to a proxy is left alone.
#[derive(Debug)]
pub(crate) struct StaleGuard {
    pub(crate) plain_endpoint: bool,
}

impl<In: Transport> Connector<In> for StaleGuard {
    type Out = Either<In, GuardedTransport<In>>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        Ok(chained.map(|transport| {
            if transport.is_tls() || self.plain_endpoint {
                Either::B(GuardedTransport::new(transport))
            } else {
                Either::A(transport)
            }
        }))
    }
}

/// The request under way on a connection.
#[derive(Debug, Clone, Copy)]
struct Request {
    /// An earlier request on this connection got a response.
    reused: bool,
    /// Idle time of the connection before this request.
    idle: Duration,
    /// A byte of this request's response has arrived.
    answered: bool,
}

/// Tracks requests and responses on one connection to tell a stale connection from other
/// failures.
#[derive(Debug)]
pub(crate) struct GuardedTransport<T: Transport> {
    inner: T,
    request: Option<Request>,
    responses: u64,
    /// When the last response byte arrived, or the connection was made.
    last_input: Instant,
}

impl<T: Transport> GuardedTransport<T> {
    fn new(inner: T) -> Self {
        GuardedTransport {
            inner,
            request: None,
            responses: 0,
            last_input: Instant::now(),
        }
    }

    /// Bytes transmitted after a response (or on a new connection) start a new request.
    fn on_transmit(&mut self) {
        if self.request.is_none_or(|r| r.answered) {
            self.request = Some(Request {
                reused: self.responses > 0,
                idle: self.last_input.elapsed(),
                answered: false,
            });
        }
    }

    /// The stale-connection error when the current request qualifies.
    fn stale(&self) -> Option<Error> {
        let request = self.request.filter(|r| r.reused && !r.answered)?;
        Some(Error::Io(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            StaleConnection { idle: request.idle },
        )))
    }

    /// A failure that means the peer closed the connection becomes [`StaleConnection`] when
    /// the request qualifies; timeouts and everything else stay what they are.
    fn classify(&self, error: Error) -> Error {
        match &error {
            Error::Io(e) if closed_by_peer(e) => self.stale().unwrap_or(error),
            _ => error,
        }
    }
}

fn closed_by_peer(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::NotConnected
    )
}

impl<T: Transport> Transport for GuardedTransport<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        self.on_transmit();
        self.inner
            .transmit_output(amount, timeout)
            .map_err(|e| self.classify(e))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        match self.inner.await_input(timeout) {
            Ok(true) => {
                if let Some(request) = self.request.as_mut().filter(|r| !r.answered) {
                    request.answered = true;
                    self.responses += 1;
                }
                self.last_input = Instant::now();
                Ok(true)
            }
            // End of stream: ureq would call it "Peer disconnected".
            Ok(false) => self.stale().map_or(Ok(false), Err),
            Err(e) => Err(self.classify(e)),
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::LazyBuffers;

    /// Answers reads from a script: `Some(true)` a byte, `Some(false)` end of stream, `None`
    /// a reset.
    #[derive(Debug)]
    struct Scripted {
        buffers: LazyBuffers,
        reads: Vec<Option<bool>>,
    }

    impl Transport for Scripted {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), Error> {
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, Error> {
            match self.reads.remove(0) {
                Some(true) => {
                    self.buffers.input_append_buf()[0] = b'H';
                    self.buffers.input_appended(1);
                    Ok(true)
                }
                Some(false) => Ok(false),
                None => Err(Error::Io(io::ErrorKind::ConnectionReset.into())),
            }
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    fn guarded(reads: Vec<Option<bool>>) -> GuardedTransport<Scripted> {
        GuardedTransport::new(Scripted {
            buffers: LazyBuffers::new(64, 64),
            reads,
        })
    }

    fn is_stale(result: Result<bool, Error>) -> bool {
        matches!(result, Err(Error::Io(e)) if e.get_ref().is_some_and(|i| i.is::<StaleConnection>()))
    }

    #[test]
    fn only_an_unanswered_request_on_a_reused_connection_is_stale() {
        let t = NextTimeout::default();
        // A new connection that closes at once: an ordinary failure.
        let mut fresh = guarded(vec![Some(false), None]);
        fresh.transmit_output(1, t).unwrap();
        assert!(matches!(fresh.await_input(t), Ok(false)));
        assert!(matches!(fresh.await_input(t), Err(Error::Io(e)) if e.get_ref().is_none()));

        // Second request: end of stream before any byte is stale, so is a reset.
        for end in [Some(false), None] {
            let mut reused = guarded(vec![Some(true), end]);
            reused.transmit_output(1, t).unwrap();
            assert!(reused.await_input(t).unwrap());
            reused.transmit_output(1, t).unwrap();
            assert!(is_stale(reused.await_input(t)), "{end:?}");
        }

        // Response bytes arrived, then the reset: not stale.
        let mut partial = guarded(vec![Some(true), Some(true), None]);
        partial.transmit_output(1, t).unwrap();
        partial.await_input(t).unwrap();
        partial.transmit_output(1, t).unwrap();
        partial.await_input(t).unwrap();
        assert!(!is_stale(partial.await_input(t)));
    }
}
