//! Request coalescing: the request head and body handed to TLS as one record.

use std::fmt;
use std::time::Instant;

use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, NextTimeout, Transport,
};
use ureq::Error;
use zeroize::Zeroize;

/// Request bytes held back at most before they are handed to TLS anyway.
const COALESCE_LIMIT: usize = 16 * 1024;
/// Capacity of the held-back buffer kept for the next request on the connection.
const KEEP_PENDING_CAPACITY: usize = 4 * 1024;

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

    use ureq::unversioned::transport::LazyBuffers;

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
}
