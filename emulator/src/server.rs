//! The network side: a background thread with a tokio runtime, the accept loops of the device
//! port and the admin port, TLS, hyper, and the device port's outage and keep-alive policy.

use crate::conn::{ConnCtl, FaultIo, RawAction, ResponseGuard, TcpGuard};
use crate::error::ApiError;
use crate::http::{self, Body};
use crate::port::{DevicePort, OfflineMode, PortPolicy};
use crate::state::State;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request head (also the longest a keep-alive
/// connection may stay idle, unless the idle timeout knob is longer).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection counters of the device port.
#[derive(Debug, Default)]
pub struct Counters {
    /// TCP connections accepted on the device port, in every mode.
    pub connections_accepted: AtomicU64,
    /// Full TLS handshakes completed on the device port.
    pub tls_handshakes_full: AtomicU64,
    /// Resumed TLS handshakes completed on the device port.
    pub tls_handshakes_resumed: AtomicU64,
}

impl Counters {
    fn clear(&self) {
        self.connections_accepted.store(0, Ordering::Relaxed);
        self.tls_handshakes_full.store(0, Ordering::Relaxed);
        self.tls_handshakes_resumed.store(0, Ordering::Relaxed);
    }
}

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
    /// The device port's outage mode and keep-alive knobs.
    pub port: DevicePort,
    /// Connection and handshake counts of the device port.
    pub counters: Counters,
    /// Base URL of the device port (set once it is bound).
    pub endpoint: OnceLock<String>,
    /// The keep-alive knobs given at start (`reset` restores them).
    initial_keepalive: (Option<Duration>, Option<u32>),
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
            port: DevicePort::new(None, None),
            counters: Counters::default(),
            endpoint: OnceLock::new(),
            initial_keepalive: (None, None),
        }
    }

    /// Sets the keep-alive knobs the server starts with (and `reset` restores).
    pub fn with_keepalive(
        mut self,
        idle_timeout: Option<Duration>,
        requests_per_connection: Option<u32>,
    ) -> Self {
        self.port = DevicePort::new(idle_timeout, requests_per_connection);
        self.initial_keepalive = (idle_timeout, requests_per_connection);
        self
    }

    /// Locks the state (a poisoned lock is recovered: state operations do not panic halfway).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Clears the state and the counters, brings the device port back online and restores the
    /// keep-alive knobs given at start. Blocks while the port is re-opened.
    pub fn reset(&self) -> io::Result<()> {
        self.state().reset();
        self.counters.clear();
        self.port.set_idle_timeout(self.initial_keepalive.0);
        self.port
            .set_requests_per_connection(self.initial_keepalive.1);
        self.port.set_offline(None)
    }

    /// Device-API statistics including the connection counters and the outage mode.
    pub fn stats(&self) -> crate::Stats {
        let mut s = self.state().stats();
        s.connections_accepted = self.counters.connections_accepted.load(Ordering::Relaxed);
        s.tls_handshakes_full = self.counters.tls_handshakes_full.load(Ordering::Relaxed);
        s.tls_handshakes_resumed = self.counters.tls_handshakes_resumed.load(Ordering::Relaxed);
        s.offline = self.port.policy().offline;
        s
    }
}

/// A running server thread.
pub struct Running {
    /// Bound address of the device port.
    pub addr: SocketAddr,
    /// Bound address of the admin port.
    pub admin_addr: SocketAddr,
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

fn bind_error(what: &str, addr: SocketAddr, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot listen on {addr} ({what}): {e}"))
}

/// Binds the device port `listen` and the admin port `admin_listen` and serves both on a new
/// thread; returns once both are listening.
pub fn spawn(
    app: Arc<App>,
    listen: SocketAddr,
    admin_listen: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> io::Result<Running> {
    type Bound = (SocketAddr, SocketAddr);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<io::Result<Bound>>();
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
            let bound = rt.block_on(async {
                let device = TcpListener::bind(listen)
                    .await
                    .map_err(|e| bind_error("device port", listen, e))?;
                let admin = TcpListener::bind(admin_listen)
                    .await
                    .map_err(|e| bind_error("admin port", admin_listen, e))?;
                let addrs = (device.local_addr()?, admin.local_addr()?);
                Ok::<_, io::Error>((device, admin, addrs))
            });
            let (device, admin, addrs) = match bound {
                Ok(b) => b,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            app.port.set_bound(addrs.0);
            let _ = ready_tx.send(Ok(addrs));
            let tls = tls.map(TlsAcceptor::from);
            rt.spawn(accept_admin(app.clone(), admin, tls.clone()));
            rt.block_on(accept_device(app, device, tls, stop_rx));
            // Dropping the runtime cancels every connection task at its next await point.
            rt.shutdown_timeout(Duration::from_millis(200));
        })?;
    match ready_rx.recv() {
        Ok(Ok((addr, admin_addr))) => Ok(Running {
            addr,
            admin_addr,
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

async fn accept_on(l: Option<&TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The device port: accepts while not refusing, closes the listening socket in `Refuse` and
/// takes over the re-bound one when leaving it.
async fn accept_device(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    mut stop: oneshot::Receiver<()>,
) {
    let mut listener = Some(listener);
    let mut policy_rx = app.port.subscribe();
    loop {
        let policy = *policy_rx.borrow_and_update();
        if policy.offline == Some(OfflineMode::Refuse) {
            listener = None;
        } else if listener.is_none() {
            listener = match app.port.take_handover().map(TcpListener::from_std) {
                Some(Ok(l)) => Some(l),
                Some(Err(e)) => {
                    eprintln!("fleets-emulator: cannot reopen the device port: {e}");
                    None
                }
                None => None,
            };
        }
        app.port.acknowledge(&policy);
        tokio::select! {
            _ = &mut stop => break,
            r = policy_rx.changed() => if r.is_err() { break },
            r = accept_on(listener.as_ref()) => match r {
                Ok((tcp, _)) => {
                    app.counters.connections_accepted.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(serve_device_conn(app.clone(), tcp, tls.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
}

/// The admin port: always up, serves only `/admin/v1`.
async fn accept_admin(app: Arc<App>, listener: TcpListener, tls: Option<TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(serve_admin_conn(app.clone(), tcp, tls.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Holds a connection without reading or writing while the blackhole lasts. Afterwards the
/// connection is closed (reset if the new mode is `Reset`), never resumed: whatever was sent
/// through a blackhole is lost, so that nothing is handled late.
async fn sit_out_blackhole(policy: &mut watch::Receiver<PortPolicy>, ctl: &ConnCtl) {
    loop {
        let offline = policy.borrow_and_update().offline;
        match offline {
            Some(OfflineMode::Blackhole) => {
                if policy.changed().await.is_err() {
                    return;
                }
            }
            Some(OfflineMode::Reset) => return ctl.mark_reset(),
            _ => return,
        }
    }
}

/// Polls `fut` while the device port is online. Any outage mode ends it (`None`): `Refuse`
/// at once, `Reset` at once with RST, `Blackhole` when the blackhole ends (it is not polled
/// meanwhile, so nothing is read or written).
async fn while_online<F: Future>(
    policy: &mut watch::Receiver<PortPolicy>,
    ctl: &ConnCtl,
    fut: F,
) -> Option<F::Output> {
    tokio::pin!(fut);
    loop {
        let offline = policy.borrow_and_update().offline;
        match offline {
            None => {}
            Some(OfflineMode::Refuse) => return None,
            Some(OfflineMode::Reset) => {
                ctl.mark_reset();
                return None;
            }
            Some(OfflineMode::Blackhole) => {
                sit_out_blackhole(policy, ctl).await;
                return None;
            }
        }
        tokio::select! {
            biased;
            r = policy.changed() => r.ok()?,
            out = &mut fut => return Some(out),
        }
    }
}

async fn serve_device_conn(app: Arc<App>, tcp: TcpStream, tls: Option<TlsAcceptor>) {
    let _ = tcp.set_nodelay(true);
    let ctl = Arc::new(ConnCtl::default());
    let mut policy = app.port.subscribe();
    let guard = TcpGuard::new(tcp, ctl.clone());
    match tls {
        Some(acceptor) => {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(guard));
            let Some(Ok(Ok(stream))) = while_online(&mut policy, &ctl, handshake).await else {
                return;
            };
            let counter = match stream.get_ref().1.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => &app.counters.tls_handshakes_resumed,
                _ => &app.counters.tls_handshakes_full,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            serve_device_http(app, FaultIo::new(stream, ctl.clone()), ctl, policy).await;
        }
        None => {
            // A blackhole holds the connection before its first byte too.
            if while_online(&mut policy, &ctl, std::future::ready(()))
                .await
                .is_some()
            {
                serve_device_http(app, FaultIo::new(guard, ctl.clone()), ctl, policy).await;
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Serves HTTP/1.1 on a device connection under the port policy: outage modes, the idle
/// timeout and the responses-per-connection limit. Those two close the connection the way
/// real servers do: gracefully (TLS close_notify, FIN) and without `Connection: close` on the
/// last response.
async fn serve_device_http<S>(
    app: Arc<App>,
    io: FaultIo<S>,
    ctl: Arc<ConnCtl>,
    mut policy: watch::Receiver<PortPolicy>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let idle = policy.borrow().idle_timeout;
    let head_timeout = idle.map_or(HEADER_READ_TIMEOUT, |t| t.max(HEADER_READ_TIMEOUT));
    let svc_ctl = ctl.clone();
    let svc = service_fn(move |req| {
        let app = app.clone();
        let ctl = svc_ctl.clone();
        async move { Ok::<_, Infallible>(dispatch(&app, &ctl, Port::Device, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let p = *policy.borrow_and_update();
        match p.offline {
            None => {}
            Some(OfflineMode::Refuse) => return,
            Some(OfflineMode::Reset) => {
                ctl.mark_reset();
                return;
            }
            Some(OfflineMode::Blackhole) => {
                // Stop polling hyper: nothing is read or written, and the request in flight
                // is never finished.
                return sit_out_blackhole(&mut policy, &ctl).await;
            }
        }
        ctl.watch_responses(p.idle_timeout.is_some() || p.requests_per_connection.is_some());
        let mut idle_deadline = None;
        if !closing && !ctl.is_busy() {
            let limit_reached = p
                .requests_per_connection
                .is_some_and(|n| ctl.completed() >= n);
            let idle_until = p.idle_timeout.map(|t| ctl.idle_since() + t);
            if limit_reached || idle_until.is_some_and(|d| d <= Instant::now()) {
                conn.as_mut().graceful_shutdown();
                closing = true;
            } else {
                idle_deadline = idle_until;
            }
        }
        tokio::select! {
            biased;
            r = policy.changed() => if r.is_err() { return },
            _ = ctl.response_finished() => {}
            _ = sleep_until_opt(idle_deadline) => {}
            _ = conn.as_mut() => return,
        }
    }
}

async fn serve_admin_conn(app: Arc<App>, tcp: TcpStream, tls: Option<TlsAcceptor>) {
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(acceptor) => {
            if let Ok(Ok(stream)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                serve_admin_http(app, stream).await;
            }
        }
        None => serve_admin_http(app, tcp).await,
    }
}

async fn serve_admin_http<S>(app: Arc<App>, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ctl = Arc::new(ConnCtl::default());
    let svc = service_fn(move |req| {
        let app = app.clone();
        let ctl = ctl.clone();
        async move { Ok::<_, Infallible>(dispatch(&app, &ctl, Port::Admin, req).await) }
    });
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The main port: device API, files, and the admin API.
    Device,
    /// The admin-only port, which stays up during outages.
    Admin,
}

/// A response that is never sent: the connection action armed before it is carried out
/// instead when hyper starts writing it.
pub fn placeholder() -> Response<Body> {
    http::json(500, &json!({}))
}

/// The outage mode and the responses-per-connection limit, checked when a request arrives on
/// the device port (the connection task may not have noticed a change yet). `started` counts
/// the requests of this connection, this one included.
async fn gate(app: &App, ctl: &ConnCtl, started: u32) -> Option<Response<Body>> {
    let p = app.port.policy();
    if p.offline == Some(OfflineMode::Blackhole) {
        sit_out_blackhole(&mut app.port.subscribe(), ctl).await;
        ctl.set(RawAction::Close);
        return Some(placeholder());
    }
    let action = match p.offline {
        Some(OfflineMode::Reset) => RawAction::Reset,
        Some(_) => RawAction::Close,
        None if p.requests_per_connection.is_some_and(|n| started > n) => RawAction::Close,
        None => return None,
    };
    ctl.set(action);
    Some(placeholder())
}

async fn dispatch(
    app: &Arc<App>,
    ctl: &Arc<ConnCtl>,
    port: Port,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = app.log.then(|| {
        (
            std::time::Instant::now(),
            req.method().clone(),
            req.uri().path().to_owned(),
        )
    });
    let mut guard = None;
    if port == Port::Device {
        let n = ctl.begin_request();
        guard = Some(ResponseGuard::new(ctl.clone()));
        if let Some(mut resp) = gate(app, ctl, n).await {
            if let Some(g) = guard {
                resp.body_mut().track(g);
            }
            return resp;
        }
    }
    let path = req.uri().path();
    let mut resp = match port {
        Port::Device if path.starts_with("/api/v1/") => crate::routes::handle(app, ctl, req).await,
        Port::Device if path.starts_with(crate::files::PREFIX) => {
            crate::files::handle(app, ctl, req).await
        }
        _ if path.starts_with(crate::admin::PREFIX) => crate::admin::handle(app, req).await,
        _ => http::error(
            &ApiError::new(
                404,
                "NotFound",
                format!("no such endpoint: {} {path}", req.method()),
            ),
            None,
        ),
    };
    if let Some((t, method, path)) = started {
        eprintln!(
            "fleets-emulator: {method} {path} -> {} ({} us)",
            resp.status().as_u16(),
            t.elapsed().as_micros()
        );
    }
    if let Some(g) = guard {
        resp.body_mut().track(g);
    }
    resp
}
