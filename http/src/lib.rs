//! The HTTP conventions both of Tessera's servers share, so that a client
//! meets the same behaviour from the catalog's REST API and the gateway's SQL
//! endpoint, and neither server writes them again.
//!
//! - [`problem`]: RFC 9457 `application/problem+json` responses; server errors
//!   carry only an error id, their cause goes to the log under it.
//! - [`stack`]: the middleware every router is served with (sensitive headers,
//!   request id, trace span, catch-panic, timeout).
//! - [`serve`]: serving a router on a bound listener (`TCP_NODELAY`, TLS,
//!   graceful shutdown).
//! - [`tls`]: TLS for every listener, reloaded on SIGHUP.
//! - [`oidc`]: fetching an OpenID Connect issuer's signing keys.
//! - [`throttle`]: failed-authentication throttling per source address.

pub mod oidc;
pub mod problem;
pub mod stack;
pub mod throttle;
pub mod tls;

use std::future::Future;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use problem::{PROBLEM_JSON, problem_type};
pub use throttle::{Throttle, ThrottleConfig, Throttled};
pub use tls::{Accepting, Refusal, Tls, TlsConfig};

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight; with `tls`, over TLS (and cleartext unless required).
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<Tls>>,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let accepting = Accepting::new(listener, tls, Refusal::Http)?;
    // Handlers see the peer's address (`ConnectInfo<Peer>`), for throttling.
    axum::serve(accepting, router.into_make_service_with_connect_info::<Peer>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Where a request came from, as handlers extract it: `ConnectInfo<Peer>`
/// (present when served by [`serve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    /// The connection presented a client certificate the listener verified.
    pub client_certified: bool,
}

impl Peer {
    /// The peer of a request served by [`serve`].
    pub fn get(extensions: &axum::http::Extensions) -> Option<Self> {
        extensions.get::<axum::extract::ConnectInfo<Peer>>().map(|c| c.0)
    }

    /// The peer's address of a request, when it was served by [`serve`].
    pub fn of(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
        Self::get(extensions).map(|p| p.addr.ip())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Accepting>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Accepting>) -> Self {
        Self {
            addr: *stream.remote_addr(),
            client_certified: stream.io().client_certified(),
        }
    }
}
