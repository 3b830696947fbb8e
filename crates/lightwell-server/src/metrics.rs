//! Prometheus metrics: requests by route, method and status with latency
//! histograms, login failures, lockouts and refusals (address throttle,
//! password-hashing overload), connections refused by the listeners' caps,
//! and the CRL signer's work.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
    method: String,
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    login_failures: Counter,
    lockouts: Counter,
    logins_throttled: Counter,
    enrolments_throttled: Counter,
    hashing_overloaded: Counter,
    connections_refused: Counter,
    crl_background_signed: Counter,
    crl_background_discarded: Counter,
    crl_pending: Gauge,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    pub(crate) fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("lightwell");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        let login_failures = Counter::default();
        let lockouts = Counter::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("login_failures", "Failed logins and binds", login_failures.clone());
        registry.register("lockouts", "Accounts locked after repeated failures", lockouts.clone());
        let (logins_throttled, hashing_overloaded, connections_refused) = Default::default();
        let enrolments_throttled = Counter::default();
        registry.register(
            "enrolments_throttled",
            "Joins and re-enrolments refused unexamined: too many refused ones from their address",
            enrolments_throttled.clone(),
        );
        registry.register(
            "logins_throttled",
            "Logins and binds refused unexamined: too many failures from their address",
            Counter::clone(&logins_throttled),
        );
        registry.register(
            "password_hashing_overloaded",
            "Password checks refused because every hashing permit was busy",
            Counter::clone(&hashing_overloaded),
        );
        registry.register(
            "http_connections_refused",
            "API and PKI connections closed at accept: a connection cap was reached",
            Counter::clone(&connections_refused),
        );
        let crl_background_signed = Counter::default();
        let crl_background_discarded = Counter::default();
        let crl_pending = Gauge::default();
        registry.register(
            "crl_background_signed",
            "CRLs re-signed by the CRL signer after revocations were acknowledged",
            crl_background_signed.clone(),
        );
        registry.register(
            "crl_background_discarded",
            "CRL builds thrown away because another signer stored the CA's CRL first",
            crl_background_discarded.clone(),
        );
        registry.register("crl_pending", "CRLs waiting for the CRL signer after its last pass", crl_pending.clone());
        Arc::new(Self {
            registry: Mutex::new(registry),
            requests,
            latency,
            login_failures,
            lockouts,
            logins_throttled,
            enrolments_throttled,
            hashing_overloaded,
            connections_refused,
            crl_background_signed,
            crl_background_discarded,
            crl_pending,
        })
    }

    /// A connection was closed at accept because a cap was reached.
    pub(crate) fn connection_refused(&self) {
        self.connections_refused.inc();
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "encoding metrics");
        }
        out
    }
}

impl lightwell_core::Observer for Metrics {
    fn login_failed(&self) {
        self.login_failures.inc();
    }

    fn locked_out(&self) {
        self.lockouts.inc();
    }

    fn enrolment_throttled(&self) {
        self.enrolments_throttled.inc();
    }

    fn login_throttled(&self) {
        self.logins_throttled.inc();
    }

    fn hashing_overloaded(&self) {
        self.hashing_overloaded.inc();
    }

    fn crl_signed_in_background(&self) {
        self.crl_background_signed.inc();
    }

    fn crl_build_discarded(&self) {
        self.crl_background_discarded.inc();
    }

    fn crls_pending(&self, count: usize) {
        self.crl_pending.set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

/// Middleware recording every request.
pub(crate) async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    metrics.requests.get_or_create(&RequestLabels { route: route.clone(), method: method.clone(), status }).inc();
    metrics.latency.get_or_create(&RouteLabels { route, method }).observe(start.elapsed().as_secs_f64());
    response
}
