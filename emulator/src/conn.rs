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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

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

/// The per-connection control slot.
#[derive(Debug, Default)]
pub struct ConnCtl {
    action: Mutex<Option<RawAction>>,
    reset: AtomicBool,
}

impl ConnCtl {
    /// Arms an action for the next response write.
    pub fn set(&self, a: RawAction) {
        *self.action.lock().unwrap_or_else(|e| e.into_inner()) = Some(a);
    }

    fn take(&self) -> Option<RawAction> {
        self.action.lock().unwrap_or_else(|e| e.into_inner()).take()
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
                        self.ctl.reset.store(true, Ordering::Release);
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
        Pin::new(&mut this.inner).poll_flush(cx)
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
