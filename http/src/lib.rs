//! The HTTP conventions both of Tessera's servers share, so that a client
//! meets the same behaviour from the catalog's REST API and the gateway's SQL
//! endpoint, and neither server writes them again.
//!
//! - [`problem`]: RFC 9457 `application/problem+json` responses; server errors
//!   carry only an error id, their cause goes to the log under it.
//! - [`stack`]: the middleware every router is served with (sensitive headers,
//!   request id, trace span, catch-panic, timeout).
//! - [`serve`]: serving a router on a bound listener (`TCP_NODELAY`, graceful shutdown).

pub mod problem;
pub mod stack;

use std::future::Future;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};

pub use problem::{PROBLEM_JSON, problem_type};

/// Serves `router` on `listener` until `shutdown` resolves, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Without TCP_NODELAY a response written in more than one piece waits for
    // the client's delayed ACK (40 ms on Linux) before its last piece.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
