//! The HTTPS REST API, v1. Handlers translate between HTTP/JSON and the
//! service layer; they make no decisions of their own.

mod audit;
mod auth;
mod ca;
mod directory;
mod error;
mod federation;
mod health;
mod join;
mod k8s;
mod oauth;
mod oidc;
mod oidc_clients;
mod tenants;
mod token_review;
mod workloads;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lightwell_core::Service;
use lightwell_proto::ErrorCode;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) use self::error::ApiError;
use crate::metrics::Metrics;

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    pub(crate) service: Service,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) watch: Arc<crate::watch::WatchHub>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Lightwell API", version = "1", description = "Directory and certificate authority for workload identity."),
    components(schemas(ErrorCode, lightwell_proto::ErrorBody, lightwell_proto::ErrorDetail,
        lightwell_proto::CreateGroupRequest, lightwell_proto::CreateHostPrincipalRequest)),
    tags((name = "auth"), (name = "tenants"), (name = "directory"), (name = "audit"), (name = "ca"), (name = "certificates"), (name = "kubernetes"), (name = "workloads"), (name = "oidc"))
)]
struct ApiDoc;

/// Builds the API router and its OpenAPI document.
pub(crate) fn router(state: AppState, max_body: usize, timeout: Duration) -> Router {
    let (api, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::operator_login))
        .routes(routes!(auth::tenant_login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::whoami))
        .routes(routes!(tenants::create, tenants::list))
        .routes(routes!(tenants::show, tenants::delete))
        .routes(routes!(directory::create, directory::list))
        .routes(routes!(directory::show, directory::update, directory::delete))
        .routes(routes!(directory::enable))
        .routes(routes!(directory::disable))
        .routes(routes!(directory::unlock))
        .routes(routes!(directory::set_password))
        .routes(routes!(directory::add_member))
        .routes(routes!(directory::remove_member))
        .routes(routes!(directory::add_host))
        .routes(routes!(directory::remove_host))
        .routes(routes!(audit::system_list))
        .routes(routes!(audit::system_verify))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(audit::tenant_list))
        .routes(routes!(audit::tenant_verify))
        .routes(routes!(ca::list, ca::create_intermediate))
        .routes(routes!(ca::show))
        .routes(routes!(ca::crl))
        .routes(routes!(ca::revoke_ca))
        .routes(routes!(ca::rotate))
        .routes(routes!(ca::import))
        .routes(routes!(ca::create_request))
        .routes(routes!(ca::install))
        .routes(routes!(ca::trust_bundle))
        .routes(routes!(ca::issue, ca::list_certificates))
        .routes(routes!(ca::revoke_principal))
        .routes(routes!(ca::show_certificate))
        .routes(routes!(ca::revoke_certificate))
        .routes(routes!(join::create_token, join::list_tokens))
        .routes(routes!(join::revoke_token))
        .routes(routes!(join::join))
        .routes(routes!(join::reenroll))
        .routes(routes!(join::rotate_secret))
        .routes(routes!(join::leave))
        .routes(routes!(join::machine_domains, join::set_machine_domains))
        .routes(routes!(join::trust))
        .routes(routes!(join::watch))
        .routes(routes!(join::changes))
        .routes(routes!(k8s::create, k8s::list))
        .routes(routes!(k8s::show, k8s::delete))
        .routes(routes!(k8s::add_node))
        .routes(routes!(k8s::remove_node))
        .routes(routes!(k8s::issue_component))
        .routes(routes!(k8s::ca_key))
        .routes(routes!(workloads::create, workloads::list))
        .routes(routes!(workloads::show, workloads::delete))
        .routes(routes!(workloads::svid))
        .routes(routes!(workloads::jwt_svid))
        .routes(routes!(workloads::assigned))
        .routes(routes!(federation::create, federation::list))
        .routes(routes!(federation::show, federation::delete))
        .routes(routes!(federation::refresh))
        .routes(routes!(federation::bundles))
        .routes(routes!(oidc_clients::create, oidc_clients::list))
        .routes(routes!(oidc_clients::show, oidc_clients::delete))
        .routes(routes!(oidc_clients::rotate_secret))
        .split_for_parts();
    let openapi = Arc::new(openapi.to_json().unwrap_or_else(|_| "{}".into()));
    let metrics = state.metrics.clone();
    api.route(
        "/v1/openapi.json",
        get(move || {
            let doc = openapi.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.to_string()) }
        }),
    )
    .route("/oidc/{tenant}/jwks", get(oidc::jwks))
    .route("/oidc/{tenant}/.well-known/openid-configuration", get(oidc::discovery))
    .route("/oidc/{tenant}/token", axum::routing::post(oauth::token))
    .route("/oidc/{tenant}/introspect", axum::routing::post(oauth::introspect))
    .route("/oidc/{tenant}/revoke", axum::routing::post(oauth::revoke))
    .route("/k8s/{tenant}/token-review", axum::routing::post(token_review::review))
    .route("/spiffe/{tenant}/bundle", get(oidc::spiffe_bundle))
    .route("/healthz", get(health::healthz))
    .route("/readyz", get(health::readyz))
    .route("/metrics", get(health::metrics))
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .layer(DefaultBodyLimit::max(max_body))
    .layer(middleware::from_fn_with_state(timeout, time_limit))
    .layer(middleware::from_fn_with_state(metrics, crate::metrics::track))
    .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, "this route does not accept that method")
}

/// Answers `timeout` when a request takes longer than the configured limit.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(ErrorCode::Timeout, "the request took too long").into_response(),
    }
}

/// The plain-HTTP PKI listener: CRLs and CA certificates (no authentication, cacheable).
pub(crate) fn pki_router(service: Service) -> Router {
    crate::pki::router(service)
}
