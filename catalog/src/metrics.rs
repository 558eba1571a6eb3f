//! Prometheus metrics, one registry per application (no global state, so that
//! several catalogs can run in one test process).

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

/// The catalog's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram>,
    /// The catalog's version as last seen by this process.
    pub catalog_version: Gauge<i64, AtomicI64>,
    /// Watches (gateways and other followers) waiting for the next change.
    pub watches: Gauge<i64, AtomicI64>,
    auth_failures: Counter,
    auth_throttled: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tessera_catalog");
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0])
        });
        let catalog_version = Gauge::<i64, AtomicI64>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency",
            durations.clone(),
        );
        registry.register("version", "The catalog's change sequence", catalog_version.clone());
        let watches = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "watches",
            "Watches waiting for the catalog's next change",
            watches.clone(),
        );
        let auth_failures = Counter::default();
        registry.register(
            "auth_failures",
            "Credentials refused (unknown, revoked or expired keys, refused tokens)",
            auth_failures.clone(),
        );
        let auth_throttled = Counter::default();
        registry.register(
            "auth_throttled",
            "Requests refused before authentication: their address failed too often",
            auth_throttled.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            catalog_version,
            watches,
            auth_failures,
            auth_throttled,
        }
    }
}

impl Metrics {
    pub fn auth_failed(&self) {
        self.auth_failures.inc();
    }

    pub fn auth_throttled(&self) {
        self.auth_throttled.inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware: counts and times every request by its route template.
pub async fn track(State(metrics): State<std::sync::Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics.requests.get_or_create(&labels).inc();
    metrics
        .durations
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}
