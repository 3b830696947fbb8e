//! The certificate authority: CAs, trust bundle, issuance, certificates, revocation.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use lightwell_ca::fingerprint::cert_fingerprint;
use lightwell_ca::pem;
use lightwell_core::clock::rfc3339;
use lightwell_core::names::PrincipalRef;
use lightwell_core::{CaView, CertificateView, IssueRequest};
use lightwell_proto::{
    CaInfo, CaRequestInfo, CertificateInfo, CreateCaRequestRequest, CreateIntermediateRequest, ErrorBody, ErrorCode,
    ImportCaRequest, InstallCaRequest, IssueCertificateRequest, RevokeRequest, RevokeResponse, RotateRequest,
    TrustAnchor, TrustBundle,
};
use serde::Deserialize;

use super::AppState;
use super::auth::{Auth, Credentials};
use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};

const PEM_TYPE: &str = "application/x-pem-file";

pub(crate) fn ca_info(v: &CaView) -> CaInfo {
    let c = &v.certificate;
    let key_type = lightwell_ca::PublicKey::from_spki_der(c.public_key_der())
        .map(|k| k.algorithm().to_string())
        .unwrap_or_else(|_| "unknown".into());
    CaInfo {
        id: v.info.id.to_string(),
        name: v.info.name.clone(),
        role: v.info.role.as_str().into(),
        status: v.info.status.as_str().into(),
        is_default: v.info.is_default,
        parent: v.parent_name.clone(),
        key_type,
        serial: c.serial().map(|s| s.to_hex()).unwrap_or_default(),
        fingerprint: c.fingerprint(),
        not_before: rfc3339(c.not_before().unix_timestamp()),
        not_after: rfc3339(c.not_after().unix_timestamp()),
        name_constraints: c.name_constraints().map(constraint_list).unwrap_or_default(),
        path_len: c.path_len_constraint(),
        certificate_url: v.cert_url.clone(),
        crl_url: v.crl_url.clone(),
        pem: c.to_pem(),
        revoked_at: v.info.revoked_at.map(rfc3339),
    }
}

/// A CA's name constraints as operators write them (`corp.example`,
/// `10.0.0.0/8`, and `no URI or e-mail` for a CA closed to both).
fn constraint_list(nc: &lightwell_ca::constraints::NameConstraints) -> Vec<String> {
    let mut out: Vec<String> = nc.dns.clone();
    out.extend(nc.ip_ranges.iter().map(ToString::to_string));
    if nc.no_uri_or_email {
        out.push("no URI or e-mail".to_string());
    }
    out
}

pub(crate) fn certificate_info(v: &CertificateView) -> CertificateInfo {
    let r = &v.record;
    let pem = pem::encode("CERTIFICATE", &r.der);
    let mut chain_pem = pem.clone();
    for der in &v.intermediates {
        chain_pem.push_str(&pem::encode("CERTIFICATE", der));
    }
    CertificateInfo {
        serial: r.serial.clone(),
        principal_kind: r.principal_kind.as_str().into(),
        principal_name: r.principal_name.clone(),
        profile: r.profile.clone(),
        ca: v.ca_name.clone(),
        not_before: rfc3339(r.not_before),
        not_after: rfc3339(r.not_after),
        requester: r.requester.clone(),
        revoked_at: r.revoked_at.map(rfc3339),
        revocation_reason: r.revocation_reason.as_ref().map(ToString::to_string),
        fingerprint: cert_fingerprint(&r.der),
        pem,
        chain_pem,
    }
}

/// Parses `kind/name` (`user/alice`, `machine/node1.corp.example`) or a bare name.
pub(crate) fn principal_ref(s: &str) -> Result<PrincipalRef, ApiError> {
    Ok(PrincipalRef::parse(s)?)
}

/// A CSR as sent in JSON: PEM, or base64-encoded DER.
pub(crate) fn decode_csr(csr: String) -> Result<Vec<u8>, ApiError> {
    let trimmed = csr.trim_start();
    if trimmed.starts_with("-----") {
        return Ok(csr.into_bytes());
    }
    base64::engine::general_purpose::STANDARD
        .decode(trimmed.trim_end())
        .map_err(|_| ApiError::new(ErrorCode::InvalidCsr, "csr is neither PEM nor base64-encoded DER"))
}

fn pem_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, PEM_TYPE)], body).into_response()
}

/// List the tenant's CAs.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/cas", tag = "ca", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<CaInfo>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<CaInfo>>> {
    Ok(axum::Json(state.service.list_cas(&actor, &tenant).await?.iter().map(ca_info).collect()))
}

/// Create an issuing CA under the tenant's active root.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/cas", tag = "ca", params(("tenant" = String, Path)),
    request_body = CreateIntermediateRequest,
    responses((status = 201, body = CaInfo), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create_intermediate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateIntermediateRequest>,
) -> ApiResult<(StatusCode, axum::Json<CaInfo>)> {
    let v = state
        .service
        .create_intermediate(&actor, &tenant, &req.name, req.name_constraints, req.path_len, req.make_default)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(ca_info(&v))))
}

/// Show a CA (by name or id).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/cas/{ca}", tag = "ca", params(("tenant" = String, Path), ("ca" = String, Path)),
    responses((status = 200, body = CaInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn show(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, ca)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<CaInfo>> {
    Ok(axum::Json(ca_info(&state.service.ca(&actor, &tenant, &ca).await?)))
}

/// The latest CRL of a CA, PEM.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/cas/{ca}/crl", tag = "ca", params(("tenant" = String, Path), ("ca" = String, Path)),
    responses((status = 200, content_type = "application/x-pem-file", body = String), (status = 404, body = ErrorBody)))]
pub(crate) async fn crl(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, ca)): ApiPath<(String, String)>,
) -> ApiResult<Response> {
    let crl = state.service.ca_crl(&actor, &tenant, &ca).await?;
    Ok(pem_response(pem::encode("X509 CRL", &crl.der)))
}

/// Revoke an issuing CA and every certificate it issued.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/cas/{ca}/revoke", tag = "ca", params(("tenant" = String, Path), ("ca" = String, Path)),
    request_body = RevokeRequest,
    responses((status = 200, body = RevokeResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_ca(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, ca)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult<axum::Json<RevokeResponse>> {
    let revoked = state.service.revoke_ca(&actor, &tenant, &ca, req.reason.as_deref()).await?;
    Ok(axum::Json(RevokeResponse { revoked }))
}

/// Rotate the tenant's root: a new root and default issuing CA, trusted at
/// once; issuance moves to them with `activate` or after the tenant's overlap.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/cas/rotate", tag = "ca", params(("tenant" = String, Path)),
    request_body = RotateRequest,
    responses((status = 200, body = Vec<CaInfo>), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<RotateRequest>,
) -> ApiResult<axum::Json<Vec<CaInfo>>> {
    let cas = state.service.rotate_root(&actor, &tenant, req.activate, req.key_type.as_deref()).await?;
    Ok(axum::Json(cas.iter().map(ca_info).collect()))
}

/// Import an existing CA (root or intermediate) with its private key, which is sealed and never returned.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/cas/import", tag = "ca", params(("tenant" = String, Path)),
    request_body = ImportCaRequest,
    responses((status = 201, body = CaInfo), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn import(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<ImportCaRequest>,
) -> ApiResult<(StatusCode, axum::Json<CaInfo>)> {
    let ImportCaRequest { certificate, key, name, make_default } = req;
    let key = zeroize::Zeroizing::new(key);
    let v = state.service.import_ca(&actor, &tenant, &certificate, key, name.as_deref(), make_default).await?;
    Ok((StatusCode::CREATED, axum::Json(ca_info(&v))))
}

/// Start an intermediate for an enterprise CA to sign: its key is generated and kept here; the CSR is returned.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/ca-requests", tag = "ca", params(("tenant" = String, Path)),
    request_body = CreateCaRequestRequest,
    responses((status = 201, body = CaRequestInfo), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn create_request(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateCaRequestRequest>,
) -> ApiResult<(StatusCode, axum::Json<CaRequestInfo>)> {
    let v =
        state.service.request_intermediate(&actor, &tenant, &req.name, req.path_len, req.key_type.as_deref()).await?;
    Ok((StatusCode::CREATED, axum::Json(CaRequestInfo { id: v.id, name: v.name, csr_pem: v.csr_pem })))
}

/// Install the certificate an enterprise CA signed for a pending intermediate.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/ca-requests/{name}/install", tag = "ca",
    params(("tenant" = String, Path), ("name" = String, Path)), request_body = InstallCaRequest,
    responses((status = 201, body = CaInfo), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn install(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, name)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<InstallCaRequest>,
) -> ApiResult<(StatusCode, axum::Json<CaInfo>)> {
    let v = state.service.install_intermediate(&actor, &tenant, &name, &req.certificate, req.make_default).await?;
    Ok((StatusCode::CREATED, axum::Json(ca_info(&v))))
}

/// How the trust bundle is wanted.
#[derive(Debug, Deserialize)]
pub(crate) struct BundleQuery {
    #[serde(default)]
    format: Option<String>,
}

/// The tenant's trust bundle (public): PEM, or JSON with `?format=json` or `Accept: application/json`.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/trust-bundle", tag = "ca",
    params(("tenant" = String, Path), ("format" = Option<String>, Query, description = "pem (default) or json")),
    responses((status = 200, body = TrustBundle), (status = 200, content_type = "application/x-pem-file", body = String),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn trust_bundle(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<BundleQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let roots = state.service.trust_bundle(&tenant).await?;
    let pem: String = roots.iter().map(|r| r.certificate.to_pem()).collect();
    let accept_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    let json = match q.format.as_deref() {
        Some("json") => true,
        Some("pem") => false,
        Some(other) => {
            return Err(ApiError::new(ErrorCode::InvalidRequest, format!("unknown format {other:?}; use pem or json")));
        }
        None => accept_json,
    };
    if !json {
        return Ok(pem_response(pem));
    }
    let roots = roots
        .iter()
        .map(|r| TrustAnchor {
            id: r.info.id.to_string(),
            name: r.info.name.clone(),
            status: r.info.status.as_str().into(),
            fingerprint: r.certificate.fingerprint(),
            not_after: rfc3339(r.certificate.not_after().unix_timestamp()),
            pem: r.certificate.to_pem(),
        })
        .collect();
    Ok(axum::Json(TrustBundle { tenant: tenant.to_ascii_lowercase(), roots, pem }).into_response())
}

/// Request a certificate: for yourself, or (CA administrators) on behalf of a principal.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/certificates", tag = "certificates", params(("tenant" = String, Path)),
    request_body = IssueCertificateRequest,
    responses((status = 201, body = CertificateInfo), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn issue(
    State(state): State<AppState>,
    Credentials(requester): Credentials,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<IssueCertificateRequest>,
) -> ApiResult<(StatusCode, axum::Json<CertificateInfo>)> {
    let csr = decode_csr(req.csr)?;
    let ttl_secs = req.ttl.as_deref().map(lightwell_core::parse_ttl).transpose()?;
    let principal = req.principal.as_deref().map(principal_ref).transpose()?;
    let req = IssueRequest { csr, profile: req.profile, ttl_secs, principal, cluster: req.cluster };
    let v = state.service.issue_certificate(requester, &tenant, req).await?;
    Ok((StatusCode::CREATED, axum::Json(certificate_info(&v))))
}

/// Filters of the certificate list.
#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    principal: Option<String>,
}

/// List certificates: all for CA administrators, your own otherwise.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/certificates", tag = "certificates",
    params(("tenant" = String, Path), ("principal" = Option<String>, Query, description = "kind/name")),
    responses((status = 200, body = Vec<CertificateInfo>), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_certificates(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<axum::Json<Vec<CertificateInfo>>> {
    let principal = q.principal.as_deref().map(principal_ref).transpose()?;
    let list = state.service.list_certificates(&actor, &tenant, principal).await?;
    Ok(axum::Json(list.iter().map(certificate_info).collect()))
}

/// Show a certificate by serial.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/certificates/{serial}", tag = "certificates",
    params(("tenant" = String, Path), ("serial" = String, Path)),
    responses((status = 200, body = CertificateInfo), (status = 404, body = ErrorBody)))]
pub(crate) async fn show_certificate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, serial)): ApiPath<(String, String)>,
) -> ApiResult<axum::Json<CertificateInfo>> {
    Ok(axum::Json(certificate_info(&state.service.certificate(&actor, &tenant, &serial).await?)))
}

/// Revoke a certificate by serial.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/certificates/{serial}/revoke", tag = "certificates",
    params(("tenant" = String, Path), ("serial" = String, Path)), request_body = RevokeRequest,
    responses((status = 200, body = RevokeResponse), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_certificate(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, serial)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult<axum::Json<RevokeResponse>> {
    let revoked = state.service.revoke_certificate(&actor, &tenant, &serial, req.reason.as_deref()).await?;
    Ok(axum::Json(RevokeResponse { revoked }))
}

/// Revoke every certificate of a principal (`principal` in the body).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/certificates/revoke", tag = "certificates",
    params(("tenant" = String, Path)), request_body = RevokeRequest,
    responses((status = 200, body = RevokeResponse), (status = 403, body = ErrorBody)))]
pub(crate) async fn revoke_principal(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<RevokeRequest>,
) -> ApiResult<axum::Json<RevokeResponse>> {
    let Some(principal) = req.principal.as_deref() else {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "name the principal: {\"principal\": \"kind/name\"}"));
    };
    let principal = principal_ref(principal)?;
    let revoked =
        state.service.revoke_principal_certificates(&actor, &tenant, principal, req.reason.as_deref()).await?;
    Ok(axum::Json(RevokeResponse { revoked }))
}
