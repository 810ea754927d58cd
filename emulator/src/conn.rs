//! Per-connection I/O wrappers that carry out the raw-connection faults.
//!
//! Each accepted connection gets a [`ConnCtl`] slot shared by its request handler and two
//! I/O wrappers:
//!
//! ```text
//! hyper ─ FaultIo ─ [TLS] ─ TcpGuard ─ TcpStream
//! ```
//!
//! The handler never writes to the socket itself: it puts a [`RawAction`] in the slot and
//! returns a placeholder response. When hyper starts writing that response, [`FaultIo`] takes
//! the action instead: it swallows hyper's bytes and writes the raw fault bytes (through TLS
//! when TLS is on) and closes, or it fails the connection and marks it for reset, in which case
//! [`TcpGuard`] sets SO_LINGER 0 when dropped so the kernel sends RST instead of FIN.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What to do to the connection instead of writing the next response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawAction {
    /// Abort with a TCP RST, no response byte.
    Reset,
    /// Write these bytes verbatim, then close.
    Send(Vec<u8>),
    /// Close without writing anything.
    Close,
}

/// The per-connection control slot, plus the request bookkeeping that the keep-alive knobs
/// (idle timeout, requests per connection) need.
#[derive(Debug)]
pub struct ConnCtl {
    action: Mutex<Option<RawAction>>,
    after_flush: Mutex<Option<RawAction>>,
    reset: AtomicBool,
    started: AtomicU32,
    active: AtomicU32,
    completed: AtomicU32,
    idle_since: Mutex<Instant>,
    response_done: Notify,
    /// Set while a keep-alive knob is on: only then does the end of a response wake the
    /// connection task.
    watch_responses: AtomicBool,
}

impl Default for ConnCtl {
    fn default() -> Self {
        ConnCtl {
            action: Mutex::new(None),
            after_flush: Mutex::new(None),
            reset: AtomicBool::new(false),
            started: AtomicU32::new(0),
            active: AtomicU32::new(0),
            completed: AtomicU32::new(0),
            idle_since: Mutex::new(Instant::now()),
            response_done: Notify::new(),
            watch_responses: AtomicBool::new(false),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ConnCtl {
    /// Arms an action for the next response write.
    pub fn set(&self, a: RawAction) {
        *lock(&self.action) = Some(a);
    }

    fn take(&self) -> Option<RawAction> {
        lock(&self.action).take()
    }

    /// Arms an action for when everything written so far has been flushed: a response body
    /// cut after N bytes uses this, so that those N bytes still reach the client.
    pub fn set_after_flush(&self, a: RawAction) {
        *lock(&self.after_flush) = Some(a);
    }

    fn take_after_flush(&self) -> Option<RawAction> {
        lock(&self.after_flush).take()
    }

    /// Makes the close of this connection send RST (SO_LINGER 0) instead of FIN.
    pub fn mark_reset(&self) {
        self.reset.store(true, Ordering::Release);
    }

    /// A request was dispatched on this connection; returns how many have been, this one
    /// included.
    pub fn begin_request(&self) -> u32 {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.started.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// The response to a dispatched request was written completely (or dropped).
    fn end_response(&self) {
        *lock(&self.idle_since) = Instant::now();
        self.completed.fetch_add(1, Ordering::AcqRel);
        self.active.fetch_sub(1, Ordering::AcqRel);
        if self.watch_responses.load(Ordering::Acquire) {
            self.response_done.notify_one();
        }
    }

    /// Whether [`ConnCtl::response_finished`] should resolve at the end of each response
    /// (off by default, to spare a task wake-up per request).
    pub fn watch_responses(&self, on: bool) {
        self.watch_responses.store(on, Ordering::Release);
    }

    /// True while a request is being handled or its response written.
    pub fn is_busy(&self) -> bool {
        self.active.load(Ordering::Acquire) > 0
    }

    /// Responses finished on this connection.
    pub fn completed(&self) -> u32 {
        self.completed.load(Ordering::Acquire)
    }

    /// When the connection last became idle (its start, or the end of the last response).
    pub fn idle_since(&self) -> Instant {
        *lock(&self.idle_since)
    }

    /// Resolves when a response finishes (see [`ConnCtl::watch_responses`]).
    pub async fn response_finished(&self) {
        self.response_done.notified().await
    }
}

/// Held by a response body; tells the connection's [`ConnCtl`] when the response is done.
#[derive(Debug)]
pub struct ResponseGuard(Arc<ConnCtl>);

impl ResponseGuard {
    /// Call after [`ConnCtl::begin_request`].
    pub fn new(ctl: Arc<ConnCtl>) -> Self {
        ResponseGuard(ctl)
    }
}

impl Drop for ResponseGuard {
    fn drop(&mut self) {
        self.0.end_response();
    }
}

/// The TCP stream at the bottom of the stack; sends RST on drop when the slot asks for it.
pub struct TcpGuard {
    tcp: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl TcpGuard {
    /// Wraps an accepted stream.
    pub fn new(tcp: TcpStream, ctl: Arc<ConnCtl>) -> Self {
        TcpGuard { tcp, ctl }
    }
}

impl Drop for TcpGuard {
    fn drop(&mut self) {
        if self.ctl.reset.load(Ordering::Acquire) {
            // Closing a socket with SO_LINGER 0 sends RST. The socket is non-blocking, so
            // this cannot block the runtime.
            let _ = self.tcp.set_zero_linger();
        }
    }
}

impl AsyncRead for TcpGuard {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpGuard {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

enum Phase {
    Normal,
    Writing(Vec<u8>, usize),
    Flushing,
    Closing,
    Dead,
}

/// The stream hyper sees; carries out armed [`RawAction`]s.
pub struct FaultIo<S> {
    inner: S,
    ctl: Arc<ConnCtl>,
    phase: Phase,
}

impl<S> FaultIo<S> {
    /// Wraps the (TLS or plain) stream.
    pub fn new(inner: S, ctl: Arc<ConnCtl>) -> Self {
        FaultIo {
            inner,
            ctl,
            phase: Phase::Normal,
        }
    }
}

fn dead() -> io::Error {
    io::Error::new(
        io::ErrorKind::BrokenPipe,
        "connection closed by an injected fault",
    )
}

impl<S: AsyncRead + AsyncWrite + Unpin> FaultIo<S> {
    /// Ready(Ok) when the stream is usable normally; otherwise drives the armed action to its
    /// end and reports an error so hyper drops the connection.
    fn poll_fault(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match &mut self.phase {
                Phase::Normal => match self.ctl.take() {
                    None => return Poll::Ready(Ok(())),
                    Some(RawAction::Reset) => {
                        self.ctl.mark_reset();
                        self.phase = Phase::Dead;
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::ConnectionReset,
                            "connection reset by an injected fault",
                        )));
                    }
                    Some(RawAction::Send(bytes)) => self.phase = Phase::Writing(bytes, 0),
                    Some(RawAction::Close) => self.phase = Phase::Closing,
                },
                Phase::Writing(bytes, pos) => {
                    while *pos < bytes.len() {
                        match ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*pos..])) {
                            Ok(n) if n > 0 => *pos += n,
                            _ => {
                                self.phase = Phase::Dead;
                                return Poll::Ready(Err(dead()));
                            }
                        }
                    }
                    self.phase = Phase::Flushing;
                }
                Phase::Flushing => {
                    let r = ready!(Pin::new(&mut self.inner).poll_flush(cx));
                    self.phase = if r.is_ok() {
                        Phase::Closing
                    } else {
                        Phase::Dead
                    };
                }
                Phase::Closing => {
                    let _ = ready!(Pin::new(&mut self.inner).poll_shutdown(cx));
                    self.phase = Phase::Dead;
                }
                Phase::Dead => return Poll::Ready(Err(dead())),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for FaultIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.phase, Phase::Dead) {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for FaultIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_fault(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_fault(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        match this.ctl.take_after_flush() {
            None => Poll::Ready(Ok(())),
            Some(a) => {
                this.ctl.set(a);
                this.poll_fault(cx)
            }
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if matches!(this.phase, Phase::Dead) {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_fault(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn send_action_replaces_output_and_closes() {
        let (a, mut b) = tokio::io::duplex(1024);
        let ctl = Arc::new(ConnCtl::default());
        let mut io = FaultIo::new(a, ctl.clone());
        io.write_all(b"normal ").await.unwrap();
        ctl.set(RawAction::Send(b"raw".to_vec()));
        assert!(io.write_all(b"swallowed").await.is_err());
        assert!(io.write_all(b"more").await.is_err());
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"normal raw");
    }

    #[tokio::test]
    async fn after_flush_action_lets_written_bytes_through() {
        let (a, mut b) = tokio::io::duplex(1024);
        let ctl = Arc::new(ConnCtl::default());
        let mut io = FaultIo::new(a, ctl.clone());
        ctl.set_after_flush(RawAction::Close);
        io.write_all(b"head+body").await.unwrap();
        assert!(
            io.flush().await.is_err(),
            "the flush carries out the action"
        );
        assert!(io.write_all(b"more").await.is_err());
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"head+body");
    }

    #[tokio::test]
    async fn reset_action_fails_without_output() {
        let (a, mut b) = tokio::io::duplex(1024);
        let ctl = Arc::new(ConnCtl::default());
        let mut io = FaultIo::new(a, ctl.clone());
        ctl.set(RawAction::Reset);
        let e = io.write_all(b"x").await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        assert!(ctl.reset.load(Ordering::Acquire));
        drop(io);
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty());
    }
}
