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

pub mod problem;
pub mod stack;
pub mod tls;

use std::future::Future;

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use problem::{PROBLEM_JSON, problem_type};
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
    axum::serve(accepting, router).with_graceful_shutdown(shutdown).await
}
