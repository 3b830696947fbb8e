//! Users, groups, machines and services: one set of handlers over the four
//! collections (`users`, `groups`, `machines`, `services`).

use axum::extract::State;
use axum::http::StatusCode;
use lightwell_core::clock::rfc3339;
use lightwell_core::{NewHostPrincipal, NewUser, PrincipalKind, PrincipalPatch, PrincipalView};
use lightwell_proto::{
    AddMemberRequest, CreateGroupRequest, CreateHostPrincipalRequest, CreateUserRequest, ErrorBody, ErrorCode,
    Principal, PrincipalRef, SetPasswordRequest, UpdatePrincipalRequest,
};
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiError, ApiJson, ApiPath, ApiResult};

fn kind_of_collection(collection: &str) -> Result<PrincipalKind, ApiError> {
    match collection {
        "users" => Ok(PrincipalKind::User),
        "groups" => Ok(PrincipalKind::Group),
        "machines" => Ok(PrincipalKind::Machine),
        "services" => Ok(PrincipalKind::Service),
        _ => Err(ApiError::new(ErrorCode::NotFound, "no such collection (users, groups, machines, services)")),
    }
}

fn parse_kind(kind: &str) -> Result<PrincipalKind, ApiError> {
    PrincipalKind::parse(kind)
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "kind must be user, group, machine or service"))
}

fn only(kind: PrincipalKind, allowed: PrincipalKind) -> Result<(), ApiError> {
    if kind == allowed {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::NotFound, format!("this operation exists only for {}s", allowed.as_str())))
    }
}

pub(crate) fn principal(v: PrincipalView) -> Principal {
    let r = v.principal;
    Principal {
        kind: r.kind.as_str().into(),
        name: r.name,
        display_name: r.display_name,
        email: r.email,
        hostnames: r.hostnames,
        ips: r.ips,
        enabled: r.enabled,
        locked: v.locked,
        builtin: r.builtin,
        member_of: v.member_of,
        members: v
            .members
            .map(|m| m.into_iter().map(|(k, name)| PrincipalRef { kind: k.as_str().into(), name }).collect()),
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    }
}

fn body<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))
}

/// Create a user (`CreateUserRequest`), group (`CreateGroupRequest`), machine or service (`CreateHostPrincipalRequest`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{collection}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path, description = "users, groups, machines or services")),
    request_body(content = CreateUserRequest, description = "CreateUserRequest, CreateGroupRequest or CreateHostPrincipalRequest by collection"),
    responses((status = 201, body = Principal), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection)): ApiPath<(String, String)>,
    ApiJson(value): ApiJson<serde_json::Value>,
) -> ApiResult<(StatusCode, axum::Json<Principal>)> {
    let kind = kind_of_collection(&collection)?;
    let svc = &state.service;
    let view = match kind {
        PrincipalKind::User => {
            let r: CreateUserRequest = body(value)?;
            let new = NewUser {
                name: r.name,
                password: r.password.map(Zeroizing::new),
                email: r.email,
                display_name: r.display_name,
            };
            svc.create_user(&actor, &tenant, new).await?
        }
        PrincipalKind::Group => {
            let r: CreateGroupRequest = body(value)?;
            svc.create_group(&actor, &tenant, &r.name, r.display_name.as_deref()).await?
        }
        PrincipalKind::Machine | PrincipalKind::Service => {
            let r: CreateHostPrincipalRequest = body(value)?;
            let new =
                NewHostPrincipal { name: r.name, hostnames: r.hostnames, ips: r.ips, display_name: r.display_name };
            svc.create_host_principal(&actor, &tenant, kind, new).await?
        }
    };
    Ok((StatusCode::CREATED, axum::Json(principal(view))))
}

/// List the principals of a collection.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/{collection}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path)),
    responses((status = 200, body = Vec<Principal>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<Vec<Principal>>> {
    let kind = kind_of_collection(&collection)?;
    let views = state.service.list_principals(&actor, &tenant, Some(kind)).await?;
    Ok(axum::Json(views.into_iter().map(principal).collect()))
}

/// Show a principal.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/{collection}/{name}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = Principal), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
) -> ApiResult<axum::Json<Principal>> {
    let kind = kind_of_collection(&collection)?;
    Ok(axum::Json(principal(state.service.principal(&actor, &tenant, kind, &name).await?)))
}

/// Change attributes of a principal.
#[utoipa::path(patch, path = "/v1/tenants/{tenant}/{collection}/{name}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    request_body = UpdatePrincipalRequest,
    responses((status = 200, body = Principal), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
    ApiJson(req): ApiJson<UpdatePrincipalRequest>,
) -> ApiResult<axum::Json<Principal>> {
    let kind = kind_of_collection(&collection)?;
    let patch =
        PrincipalPatch { display_name: req.display_name, email: req.email, hostnames: req.hostnames, ips: req.ips };
    Ok(axum::Json(principal(state.service.update_principal(&actor, &tenant, kind, &name, patch).await?)))
}

/// Delete a principal.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/{collection}/{name}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = kind_of_collection(&collection)?;
    state.service.delete_principal(&actor, &tenant, kind, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enable a principal.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{collection}/{name}/enable", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn enable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = kind_of_collection(&collection)?;
    state.service.set_enabled(&actor, &tenant, kind, &name, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disable a principal and end its sessions.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{collection}/{name}/disable", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn disable(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let kind = kind_of_collection(&collection)?;
    state.service.set_enabled(&actor, &tenant, kind, &name, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clear a user's lockout (`collection` must be `users`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{collection}/{name}/unlock", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn unlock(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
) -> ApiResult<StatusCode> {
    only(kind_of_collection(&collection)?, PrincipalKind::User)?;
    state.service.unlock(&actor, &tenant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Change (with the old password) or reset (administrators) a user's
/// password. A wrong old password counts toward the account's lockout; a
/// locked account cannot change its own password (423 `account_locked`).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/{collection}/{name}/password", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    request_body = SetPasswordRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 423, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn set_password(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
    ApiJson(req): ApiJson<SetPasswordRequest>,
) -> ApiResult<StatusCode> {
    only(kind_of_collection(&collection)?, PrincipalKind::User)?;
    let old = req.old_password.map(Zeroizing::new);
    state.service.set_password(&actor, &tenant, &name, Zeroizing::new(req.new_password), old).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add a member to a group (`collection` must be `groups`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{collection}/{name}/members", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    request_body = AddMemberRequest,
    responses((status = 200, body = Principal), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
    ApiJson(req): ApiJson<AddMemberRequest>,
) -> ApiResult<axum::Json<Principal>> {
    only(kind_of_collection(&collection)?, PrincipalKind::Group)?;
    let kind = parse_kind(&req.kind)?;
    Ok(axum::Json(principal(state.service.add_member(&actor, &tenant, &name, kind, &req.name).await?)))
}

/// Remove a direct member from a group.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/{collection}/{name}/members/{kind}/{member}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path), ("kind" = String, Path), ("member" = String, Path)),
    responses((status = 200, body = Principal), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name, kind, member)): ApiPath<(String, String, String, String, String)>,
) -> ApiResult<axum::Json<Principal>> {
    only(kind_of_collection(&collection)?, PrincipalKind::Group)?;
    let kind = parse_kind(&kind)?;
    Ok(axum::Json(principal(state.service.remove_member(&actor, &tenant, &name, kind, &member).await?)))
}

/// Let a machine hold a service's identity (`collection` must be `services`).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{collection}/{name}/hosts", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path)),
    request_body = lightwell_proto::AddServiceHostRequest,
    responses((status = 200, body = Principal), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn add_host(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name)): ApiPath<(String, String, String)>,
    ApiJson(req): ApiJson<lightwell_proto::AddServiceHostRequest>,
) -> ApiResult<axum::Json<Principal>> {
    only(kind_of_collection(&collection)?, PrincipalKind::Service)?;
    Ok(axum::Json(principal(state.service.add_service_host(&actor, &tenant, &name, &req.machine).await?)))
}

/// Withdraw a machine's right to a service's identity.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/{collection}/{name}/hosts/{machine}", tag = "directory",
    params(("tenant" = String, Path), ("collection" = String, Path), ("name" = String, Path), ("machine" = String, Path)),
    responses((status = 200, body = Principal), (status = 404, body = ErrorBody)))]
pub(crate) async fn remove_host(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, collection, name, machine)): ApiPath<(String, String, String, String)>,
) -> ApiResult<axum::Json<Principal>> {
    only(kind_of_collection(&collection)?, PrincipalKind::Service)?;
    Ok(axum::Json(principal(state.service.remove_service_host(&actor, &tenant, &name, &machine).await?)))
}
