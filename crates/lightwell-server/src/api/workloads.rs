//! Workload entries and the X.509-SVIDs agents obtain for them.

use axum::extract::State;
use axum::http::StatusCode;
use lightwell_core::clock::rfc3339;
use lightwell_core::{NewWorkload, WorkloadView};
use lightwell_proto::{
    AssignedWorkload, CertificateInfo, CreateWorkloadRequest, ErrorBody, JwtSvidInfo, JwtSvidRequest, RevokeResponse,
    SvidRequest, WorkloadInfo,
};

use super::AppState;
use super::auth::Auth;
use super::ca::{certificate_info, decode_csr};
use super::error::{ApiJson, ApiPath, ApiResult};

fn workload_info(v: &WorkloadView) -> WorkloadInfo {
    WorkloadInfo {
        name: v.name.clone(),
        spiffe_id: v.spiffe_id.clone(),
        service: v.service.clone(),
        hosts: v.hosts.clone(),
        host_groups: v.host_groups.clone(),
        selectors: v.selectors.clone(),
        ttl_secs: v.ttl_secs,
        dns_names: v.dns_names.clone(),
        created_at: rfc3339(v.created_at),
    }
}

/// Register a workload: a SPIFFE ID of a service, the selectors that
/// recognise its processes, and the machines it may run on (Administrators).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/workloads", tag = "workloads", params(("tenant" = String, Path)),
    request_body = CreateWorkloadRequest,
    responses((status = 201, body = WorkloadInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateWorkloadRequest>,
) -> ApiResult<(StatusCode, axum::Json<WorkloadInfo>)> {
    let new = NewWorkload {
        name: req.name,
        service: req.service,
        path: req.path,
        hosts: req.hosts,
        host_groups: req.host_groups,
        selectors: req.selectors,
        ttl_secs: req.ttl.as_deref().map(lightwell_core::parse_ttl).transpose()?,
        dns_names: req.dns_names,
    };
    let v = state.service.create_workload(&actor, &tenant, new).await?;
    Ok((StatusCode::CREATED, axum::Json(workload_info(&v))))
}

/// List the tenant's workload entries.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/workloads", tag = "workloads", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<WorkloadInfo>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<WorkloadInfo>>> {
    Ok(axum::Json(state.service.list_workloads(&actor, &tenant).await?.iter().map(workload_info).collect()))
}

/// Show a workload entry.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/workloads/{name}", tag = "workloads",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = WorkloadInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<WorkloadInfo>> {
    Ok(axum::Json(workload_info(&state.service.workload(&actor, &tenant, &name).await?)))
}

/// Delete a workload entry; every SVID issued for it is revoked.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/workloads/{name}", tag = "workloads",
    params(("tenant" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = RevokeResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<RevokeResponse>> {
    let revoked = state.service.delete_workload(&actor, &tenant, &name).await?;
    Ok(axum::Json(RevokeResponse { revoked }))
}

/// The entries the calling machine's agent attests workloads against (mutual TLS with the machine certificate).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/workload-assignments", tag = "workloads", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<AssignedWorkload>), (status = 403, body = ErrorBody)))]
pub(crate) async fn assigned(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<AssignedWorkload>>> {
    let list = state.service.assigned_workloads(&actor, &tenant).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|a| AssignedWorkload {
                name: a.name,
                spiffe_id: a.spiffe_id,
                selectors: a.selectors,
                ttl_secs: a.ttl_secs,
            })
            .collect(),
    ))
}

/// Issue an X.509-SVID of an entry assigned to the calling machine, for a key its agent made.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/workloads/{name}/svid", tag = "workloads",
    params(("tenant" = String, Path), ("name" = String, Path)), request_body = SvidRequest,
    responses((status = 201, body = CertificateInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn svid(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<SvidRequest>,
) -> ApiResult<(StatusCode, axum::Json<CertificateInfo>)> {
    let v = state.service.issue_svid(&actor, &tenant, &name, decode_csr(req.csr)?).await?;
    Ok((StatusCode::CREATED, axum::Json(certificate_info(&v))))
}

/// Issue a JWT-SVID of an entry assigned to the calling machine, for the audiences its workload asked for.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/workloads/{name}/jwt-svid", tag = "workloads",
    params(("tenant" = String, Path), ("name" = String, Path)), request_body = JwtSvidRequest,
    responses((status = 201, body = JwtSvidInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn jwt_svid(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<JwtSvidRequest>,
) -> ApiResult<(StatusCode, axum::Json<JwtSvidInfo>)> {
    let ttl = req.ttl.as_deref().map(lightwell_core::parse_ttl).transpose()?;
    let svid = state.service.issue_jwt_svid(&actor, &tenant, &name, &req.audience, ttl).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(JwtSvidInfo { token: svid.token, spiffe_id: svid.spiffe_id, expires_at: svid.expires_at }),
    ))
}
