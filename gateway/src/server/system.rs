//! A standalone gateway's system endpoints: `/health`, `/ready` and
//! `/metrics`, on its HTTP listener.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_contracts::api::{Readiness, Role};
use tessera_http::problem;

use crate::engine::Engine;
use crate::spool::Spool;

/// A standalone gateway's system endpoints, for load balancers, orchestrators
/// and Prometheus: `/health` answers while the process does; `/ready` while
/// a bundle is installed and fresh (within `max_staleness`) and the audit
/// spool takes records, else 503 with `Retry-After` (each check's state in
/// `checks`); `/metrics` in the text exposition format.
pub fn router(engine: Engine, spool: Arc<Spool>) -> Router {
    Router::new()
        .route(
            "/health",
            axum::routing::get(|| async {
                axum::Json(Readiness {
                    status: "ok".into(),
                    checks: Default::default(),
                })
            }),
        )
        .route("/ready", axum::routing::get(ready))
        .route("/metrics", axum::routing::get(metrics_for_role))
        .with_state((engine, spool))
}

/// The unauthenticated `metrics_listen` listener: `/metrics` only.
pub fn metrics_router(engine: Engine, spool: Arc<Spool>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .with_state((engine, spool))
}

type System = (Engine, Arc<Spool>);

async fn ready(State((engine, spool)): State<System>) -> Response {
    let mut ok = true;
    let bundle = match engine.ready() {
        Ok(version) => format!("version {version}"),
        Err(e) => {
            ok = false;
            e.to_string()
        }
    };
    let mut checks = std::collections::BTreeMap::from([("bundle".to_string(), bundle)]);
    let audit = match spool.admit_check() {
        Ok(pending) => format!("{pending} bytes waiting for the catalog"),
        Err(e) => {
            ok = false;
            e.to_string()
        }
    };
    checks.insert("audit spool".into(), audit);
    let (status, word) = if ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    let mut response = (
        status,
        axum::Json(Readiness {
            status: word.into(),
            checks,
        }),
    )
        .into_response();
    if !ok {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static(problem::RETRY_AFTER_SECS));
    }
    response
}

/// `/metrics` on the HTTP listener: for a principal with the `metrics` role,
/// or an admin (throttled like every authentication).
async fn metrics_for_role(State(system): State<System>, request: axum::extract::Request) -> Response {
    let credential = super::credentials::from_headers(request.headers());
    let peer = tessera_http::Peer::of(request.extensions());
    match super::credentials::admit(&system.0, peer, credential.as_ref()).await {
        Ok(principal) if principal.admin || principal.roles.contains(&Role::Metrics) => metrics(State(system)).await,
        Ok(_) => super::http::problem(
            &crate::error::QueryError::NotAllowed(
                "/metrics needs a principal with the metrics role (or an admin)".into(),
            ),
            None,
        ),
        Err(e) => super::http::problem(&e, None),
    }
}

async fn metrics(State((engine, spool)): State<System>) -> Response {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
    };
    metric(
        "tessera_gateway_bundle_version",
        "gauge",
        "Version of the policy bundle in force (0: none).",
        u64::try_from(engine.bundle_version()).unwrap_or(0),
    );
    metric(
        "tessera_gateway_ready",
        "gauge",
        "1 while the gateway answers queries (a fresh bundle is installed).",
        u64::from(engine.ready().is_ok()),
    );
    metric(
        "tessera_gateway_sessions",
        "gauge",
        "Principal sessions alive (connections and queries in flight hold them).",
        crate::tables::live_sessions() as u64,
    );
    metric(
        "tessera_gateway_auth_failures_total",
        "counter",
        "Credentials refused (unknown, revoked or expired keys, refused tokens).",
        engine.throttle().failures(),
    );
    metric(
        "tessera_gateway_auth_throttled_total",
        "counter",
        "Connections and requests refused before authentication: their address failed too often.",
        engine.throttle().refusals(),
    );
    let stats = spool.stats();
    let rows: [(&str, &str, &str, u64); 6] = [
        (
            "pending_bytes",
            "gauge",
            "Bytes of audit records on disk not yet delivered to the catalog.",
            stats.pending_bytes.load(Relaxed),
        ),
        (
            "limit_bytes",
            "gauge",
            "The audit spool's bound (gateway.audit.spool_bytes).",
            spool.config().spool_bytes,
        ),
        (
            "written_total",
            "counter",
            "Audit records written to the spool.",
            stats.written.load(Relaxed),
        ),
        (
            "shipped_total",
            "counter",
            "Audit records the catalog accepted.",
            stats.shipped.load(Relaxed),
        ),
        (
            "dropped_total",
            "counter",
            "Audit records dropped because the spool was full (when_full = drop).",
            stats.dropped.load(Relaxed),
        ),
        (
            "refused_total",
            "counter",
            "Queries refused because the spool was full (when_full = refuse).",
            stats.refused.load(Relaxed),
        ),
    ];
    for (name, kind, help, value) in rows {
        metric(&format!("tessera_gateway_audit_spool_{name}"), kind, help, value);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
