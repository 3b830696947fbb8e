//! Clients of the tenant's OpenID provider (Administrators).

use axum::extract::State;
use axum::http::StatusCode;
use lightwell_core::clock::rfc3339;
use lightwell_core::{NewOidcClient, OidcClientSecret, OidcClientView};
use lightwell_proto::{CreateOidcClientRequest, ErrorBody, OidcClientInfo};

use super::AppState;
use super::auth::Auth;
use super::error::{ApiJson, ApiPath, ApiResult};

fn client_info(v: &OidcClientView) -> OidcClientInfo {
    OidcClientInfo {
        client_id: v.client_id.clone(),
        name: v.name.clone(),
        principal: v.principal.clone(),
        auth_method: v.auth_method.as_str().into(),
        grants: v.grants.clone(),
        audience: v.audience.clone(),
        scopes: v.scopes.clone(),
        access_token_ttl_secs: v.access_token_ttl_secs,
        created_at: rfc3339(v.created_at),
        client_secret: None,
    }
}

fn with_secret(created: &OidcClientSecret) -> OidcClientInfo {
    OidcClientInfo { client_secret: created.secret.as_ref().map(|s| s.to_string()), ..client_info(&created.client) }
}

/// Register a client of the tenant's OpenID provider acting as a service or
/// a machine; a `client_secret` client's secret is in this answer only.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/oidc/clients", tag = "oidc", params(("tenant" = String, Path)),
    request_body = CreateOidcClientRequest,
    responses((status = 201, body = OidcClientInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateOidcClientRequest>,
) -> ApiResult<(StatusCode, axum::Json<OidcClientInfo>)> {
    let new = NewOidcClient {
        name: req.name,
        principal: req.principal,
        auth_method: req.auth_method,
        audience: req.audience,
        scopes: req.scopes,
        access_token_ttl_secs: req.access_token_ttl.as_deref().map(lightwell_core::parse_ttl).transpose()?,
    };
    let created = state.service.create_oidc_client(&actor, &tenant, new).await?;
    Ok((StatusCode::CREATED, axum::Json(with_secret(&created))))
}

/// List the tenant's OpenID clients.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/oidc/clients", tag = "oidc", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<OidcClientInfo>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<OidcClientInfo>>> {
    Ok(axum::Json(state.service.list_oidc_clients(&actor, &tenant).await?.iter().map(client_info).collect()))
}

/// Show an OpenID client (never its secret).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/oidc/clients/{name}", tag = "oidc",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = OidcClientInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<OidcClientInfo>> {
    Ok(axum::Json(client_info(&state.service.oidc_client(&actor, &tenant, &name).await?)))
}

/// Delete an OpenID client: it gets no more tokens, and its tokens introspect inactive.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/oidc/clients/{name}", tag = "oidc",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.delete_oidc_client(&actor, &tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Give a `client_secret` client a new secret (in this answer only); the old one stops working.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/oidc/clients/{name}/secret", tag = "oidc",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = OidcClientInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<OidcClientInfo>> {
    Ok(axum::Json(with_secret(&state.service.rotate_oidc_client_secret(&actor, &tenant, &name).await?)))
}
