//! The network side: a background thread with a tokio runtime, the accept loop, TLS, hyper.

use crate::conn::{ConnCtl, FaultIo, TcpGuard};
use crate::error::ApiError;
use crate::http::{self, Body};
use crate::state::State;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Shared by every connection: the state and the configuration.
pub struct App {
    state: Mutex<State>,
    /// Basic-auth user.
    pub api_key: String,
    /// Basic-auth password.
    pub api_secret: String,
    /// Admin Bearer token.
    pub admin_token: String,
    /// Request body limit.
    pub max_body: usize,
    /// Log one line per request to stderr (`FLEETS_EMULATOR_LOG=1`).
    pub log: bool,
}

impl App {
    /// A new application state.
    pub fn new(
        state: State,
        api_key: String,
        api_secret: String,
        admin_token: String,
        max_body: usize,
    ) -> Self {
        App {
            state: Mutex::new(state),
            api_key,
            api_secret,
            admin_token,
            max_body,
            log: std::env::var_os("FLEETS_EMULATOR_LOG").is_some_and(|v| !v.is_empty() && v != "0"),
        }
    }

    /// Locks the state (a poisoned lock is recovered: state operations do not panic halfway).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running server thread.
pub struct Running {
    /// Bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Stops the server and joins its thread.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds `listen` and serves on a new thread; returns once listening.
pub fn spawn(
    app: Arc<App>,
    listen: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<Running> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<SocketAddr>>();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("fleets-emulator".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("fleets-emulator-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let listener = match rt.block_on(TcpListener::bind(listen)) {
                Ok(l) => l,
                Err(e) => {
                    let _ = ready_tx.send(Err(io::Error::new(
                        e.kind(),
                        format!("cannot listen on {listen}: {e}"),
                    )));
                    return;
                }
            };
            let addr = match listener.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(addr));
            rt.block_on(accept_loop(
                app,
                listener,
                tls.map(TlsAcceptor::from),
                stop_rx,
            ));
            // Dropping the runtime cancels every connection task at its next await point.
            rt.shutdown_timeout(Duration::from_millis(200));
        })?;
    match ready_rx.recv() {
        Ok(Ok(addr)) => Ok(Running {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other(
                "the emulator thread exited during start-up",
            ))
        }
    }
}

async fn accept_loop(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => {
                    tokio::spawn(serve_conn(app.clone(), tcp, tls.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
}

async fn serve_conn(app: Arc<App>, tcp: TcpStream, tls: Option<TlsAcceptor>) {
    let _ = tcp.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::default());
    let guard = TcpGuard::new(tcp, ctl.clone());
    match tls {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(guard)).await;
            if let Ok(Ok(stream)) = handshake {
                serve_http(app, FaultIo::new(stream, ctl.clone()), ctl).await;
            }
        }
        None => serve_http(app, FaultIo::new(guard, ctl.clone()), ctl).await,
    }
}

async fn serve_http<S>(app: Arc<App>, io: FaultIo<S>, ctl: Arc<ConnCtl>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let app = app.clone();
        let ctl = ctl.clone();
        async move { Ok::<_, Infallible>(dispatch(&app, &ctl, req).await) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

async fn dispatch(app: &App, ctl: &Arc<ConnCtl>, req: Request<Incoming>) -> Response<Body> {
    let started = app.log.then(|| {
        (
            std::time::Instant::now(),
            req.method().clone(),
            req.uri().path().to_owned(),
        )
    });
    let path = req.uri().path();
    let resp = if path.starts_with("/api/v1/") {
        crate::routes::handle(app, ctl, req).await
    } else if path.starts_with(crate::admin::PREFIX) {
        crate::admin::handle(app, req).await
    } else {
        http::error(
            &ApiError::new(
                404,
                "NotFound",
                format!("no such endpoint: {} {path}", req.method()),
            ),
            None,
        )
    };
    if let Some((t, method, path)) = started {
        eprintln!(
            "fleets-emulator: {method} {path} -> {} ({} us)",
            resp.status().as_u16(),
            t.elapsed().as_micros()
        );
    }
    resp
}
