//! Tenants (system operator).

use axum::extract::State;
use axum::http::StatusCode;
use lightwell_core::Tenant as TenantInfo;
use lightwell_core::clock::rfc3339;
use lightwell_core::names::DomainName;
use lightwell_proto::{CreateTenantRequest, CreateTenantResponse, ErrorBody, Tenant};
use zeroize::Zeroizing;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiJson, ApiPath, ApiResult};

pub(crate) fn tenant(t: &TenantInfo) -> Tenant {
    Tenant {
        domain: t.domain.clone(),
        id: t.id.as_str().to_string(),
        base_dn: DomainName::parse(&t.domain).map(|d| d.base_dn()).unwrap_or_default(),
        created_at: rfc3339(t.created_at),
    }
}

/// Create a tenant with its built-in groups and first administrator.
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenantRequest,
    responses((status = 201, body = CreateTenantResponse), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiJson(req): ApiJson<CreateTenantRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreateTenantResponse>)> {
    let (t, generated) = state
        .service
        .create_tenant(&actor, &req.domain, req.admin_password.map(Zeroizing::new), req.key_type.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreateTenantResponse {
            tenant: tenant(&t),
            admin_user: lightwell_core::authz::FIRST_ADMIN.into(),
            admin_password: generated.map(|p| p.to_string()),
        }),
    ))
}

/// List tenants.
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", responses((status = 200, body = Vec<Tenant>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(State(state): State<AppState>, Auth(actor): Auth) -> ApiResult<axum::Json<Vec<Tenant>>> {
    Ok(axum::Json(state.service.list_tenants(&actor).await?.iter().map(tenant).collect()))
}

/// Show a tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path)),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(domain): ApiPath<String>,
) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(tenant(&state.service.tenant(&actor, &domain).await?)))
}

/// Delete a tenant and all of its data.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(domain): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.service.delete_tenant(&actor, &domain).await?;
    Ok(StatusCode::NO_CONTENT)
}
