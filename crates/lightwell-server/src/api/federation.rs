//! Foreign trust domains (SPIFFE federation) and the bundles agents hand to workloads.

use axum::extract::State;
use axum::http::StatusCode;
use lightwell_core::clock::rfc3339;
use lightwell_core::{FederationView, NewFederation};
use lightwell_proto::{CreateFederationRequest, ErrorBody, FederatedBundle, FederationInfo};

use super::AppState;
use super::auth::Auth;
use super::error::{ApiJson, ApiPath, ApiResult};

fn federation_info(v: &FederationView) -> FederationInfo {
    FederationInfo {
        trust_domain: v.trust_domain.clone(),
        bundle_endpoint_url: v.endpoint_url.clone(),
        endpoint_ca: v.endpoint_ca,
        sequence: v.sequence,
        x509_authorities: v.x509_authorities,
        jwt_authorities: v.jwt_authorities,
        fetched_at: v.fetched_at.map(rfc3339),
        next_fetch_at: v.next_fetch_at.map(rfc3339),
        last_error: v.last_error.clone(),
        created_at: rfc3339(v.created_at),
    }
}

/// Trust a foreign trust domain: read from its SPIFFE bundle endpoint, or
/// with a bundle given as it is (CA administrators).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/federations", tag = "workloads", params(("tenant" = String, Path)),
    request_body = CreateFederationRequest,
    responses((status = 201, body = FederationInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateFederationRequest>,
) -> ApiResult<(StatusCode, axum::Json<FederationInfo>)> {
    let new = NewFederation {
        trust_domain: req.trust_domain,
        endpoint_url: req.bundle_endpoint_url,
        endpoint_ca_pem: req.endpoint_ca_pem,
        bundle: req.bundle,
    };
    let v = state.service.create_federation(&actor, &tenant, new).await?;
    Ok((StatusCode::CREATED, axum::Json(federation_info(&v))))
}

/// List the tenant's foreign trust domains.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/federations", tag = "workloads", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<FederationInfo>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<FederationInfo>>> {
    Ok(axum::Json(state.service.list_federations(&actor, &tenant).await?.iter().map(federation_info).collect()))
}

/// Show a foreign trust domain: its endpoint, the bundle held, the last error.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/federations/{trust_domain}", tag = "workloads",
    params(("tenant" = String, Path), ("trust_domain" = String, Path)),
    responses((status = 200, body = FederationInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, trust_domain)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<FederationInfo>> {
    Ok(axum::Json(federation_info(&state.service.federation(&actor, &tenant, &trust_domain).await?)))
}

/// Stop trusting a foreign trust domain; agents drop its bundle.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/federations/{trust_domain}", tag = "workloads",
    params(("tenant" = String, Path), ("trust_domain" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, trust_domain)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.delete_federation(&actor, &tenant, &trust_domain).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read a foreign trust domain's bundle endpoint again now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/federations/{trust_domain}/refresh", tag = "workloads",
    params(("tenant" = String, Path), ("trust_domain" = String, Path)),
    responses((status = 200, body = FederationInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, trust_domain)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<FederationInfo>> {
    Ok(axum::Json(federation_info(&state.service.refresh_federation(&actor, &tenant, &trust_domain).await?)))
}

/// The bundles of the tenant's foreign trust domains, for its agents (any principal of the tenant).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/federated-bundles", tag = "workloads", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<FederatedBundle>), (status = 401, body = ErrorBody)))]
pub(crate) async fn bundles(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<FederatedBundle>>> {
    let list = state.service.federated_bundles(&actor, &tenant).await?;
    Ok(axum::Json(list.into_iter().map(|(trust_domain, bundle)| FederatedBundle { trust_domain, bundle }).collect()))
}
