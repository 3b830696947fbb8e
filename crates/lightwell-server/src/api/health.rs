//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use lightwell_proto::Health;

use super::AppState;

/// Liveness: the process answers.
pub(crate) async fn healthz(State(state): State<AppState>) -> axum::Json<Health> {
    axum::Json(Health { status: "ok".into(), store: state.service.store_backend().into() })
}

/// Readiness: the database answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    let store = state.service.store_backend().to_string();
    match state.service.ready().await {
        Ok(()) => (StatusCode::OK, axum::Json(Health { status: "ok".into(), store })),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: "unavailable".into(), store })),
    }
}

/// Prometheus metrics.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
