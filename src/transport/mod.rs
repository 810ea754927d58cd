//! libfleets' connector chain for ureq: the same layers as ureq's `DefaultConnector` (HTTP
//! CONNECT proxy, TCP, rustls), with a leaner TCP transport and one write per request.
//!
//! Per keep-alive request ureq's own TCP transport makes 12 syscalls where 4 do:
//! - its liveness probe (run when a connection goes back to the pool and again when it is
//!   taken out) switches the socket to non-blocking, reads, and switches back: 3 syscalls.
//!   [`tcp::TcpTransport`]'s probe asks once, `recv(MSG_PEEK | MSG_DONTWAIT)`;
//! - it sets `SO_RCVTIMEO`/`SO_SNDTIMEO` before every read and write because the remaining
//!   time shrinks between calls. Here the socket keeps its timeout while that ends no later
//!   than the deadline and at most a 16th of the time left (100 ms at most) before it: a
//!   timeout can fire slightly early, never late, and steady requests set none;
//! - it writes the request head and the body as two TLS records in two `sendto`.
//!   [`coalesce::Coalescing`] holds what ureq transmits until it waits for the response, then hands
//!   it to TLS at once: one record, one `sendto`.
//!
//! [`stale::StaleGuard`] tells a reused connection that the server had already closed from
//! other failures, so that the client can send a request that is safe to repeat once more.

mod coalesce;
mod stale;
mod tcp;

use std::sync::Arc;

use ureq::unversioned::transport::{ConnectProxyConnector, Connector, RustlsConnector};

use crate::stats::Counters;

pub(crate) use stale::StaleConnection;

/// The connector chain: CONNECT proxy (when configured), TCP, TLS, request coalescing, and
/// the stale-connection guard. `plain_endpoint`: the endpoint is `http://` (loopback, never
/// proxied), so plain connections are the endpoint's own, not a proxy's.
pub(crate) fn connector(plain_endpoint: bool, counters: Arc<Counters>) -> impl Connector {
    ().chain(ConnectProxyConnector::default())
        .chain(tcp::TcpConnector { counters })
        .chain(RustlsConnector::default())
        .chain(coalesce::Coalescing)
        .chain(stale::StaleGuard { plain_endpoint })
}
