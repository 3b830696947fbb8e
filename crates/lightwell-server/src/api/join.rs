//! Domain join and trust sync: join tokens, join, re-enrolment, machine
//! secret rotation, the trust state and its long-poll watch.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use lightwell_ca::pem;
use lightwell_core::clock::rfc3339;
use lightwell_core::{JoinRequest, JoinTokenInfo, NewJoinToken, TrustChanges, TrustState, TrustUpdate};
use lightwell_proto::{
    CreateJoinTokenRequest, CrlEntry, EnrollResponse, ErrorBody, JoinRequestBody, JoinResponse, JoinToken,
    LeaveRequest, LeaveResponse, MachineDomains, MachineSecret, ReenrollRequest, RotateMachineSecretRequest,
    TrustChangeBody, TrustChangesBody, TrustRevision, TrustStateBody,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::AppState;
use super::auth::{Auth, bearer};
use super::ca::decode_csr;
use super::error::{ApiJson, ApiPath, ApiQuery, ApiResult};

fn token_info(r: &JoinTokenInfo, secret: Option<String>) -> JoinToken {
    JoinToken {
        id: r.id.clone(),
        token: secret,
        hostname: r.hostname.clone(),
        ips: r.ips.clone(),
        uses_left: r.uses_left,
        expires_at: rfc3339(r.expires_at),
        revoked: r.revoked,
        allow_rejoin: r.allow_rejoin,
        created_by: r.created_by.clone(),
        created_at: rfc3339(r.created_at),
    }
}

pub(crate) fn trust_body(t: &TrustState) -> TrustStateBody {
    TrustStateBody {
        revision: t.revision,
        bundle: t.roots.iter().map(|der| pem::encode("CERTIFICATE", der)).collect(),
        crls: crl_entries(&t.crls),
        delta_crls: crl_entries(&t.delta_crls),
    }
}

fn crl_entries(crls: &[(String, Vec<u8>)]) -> Vec<CrlEntry> {
    crls.iter().map(|(id, der)| CrlEntry { ca_id: id.clone(), pem: pem::encode("X509 CRL", der) }).collect()
}

fn chain_pem(v: &lightwell_core::CertificateView) -> (String, String) {
    let leaf = pem::encode("CERTIFICATE", &v.record.der);
    let mut chain = leaf.clone();
    for der in &v.intermediates {
        chain.push_str(&pem::encode("CERTIFICATE", der));
    }
    (leaf, chain)
}

/// Create a join token (Administrators). The secret is in this response only.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/join-tokens", tag = "join", params(("tenant" = String, Path)),
    request_body = CreateJoinTokenRequest, responses((status = 201, body = JoinToken), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<CreateJoinTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<JoinToken>)> {
    let ttl_secs = req.ttl.as_deref().map(lightwell_core::parse_ttl).transpose()?.unwrap_or(3600);
    let new = NewJoinToken {
        ttl_secs,
        uses: req.uses.unwrap_or(1),
        hostname: req.hostname,
        ips: req.ips,
        allow_rejoin: req.allow_rejoin,
    };
    let (record, secret) = state.service.create_join_token(&actor, &tenant, new).await?;
    Ok((StatusCode::CREATED, axum::Json(token_info(&record, Some(secret.to_string())))))
}

/// List join tokens (Administrators); secrets are never shown again.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/join-tokens", tag = "join", params(("tenant" = String, Path)),
    responses((status = 200, body = Vec<JoinToken>), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<Vec<JoinToken>>> {
    let tokens = state.service.list_join_tokens(&actor, &tenant).await?;
    Ok(axum::Json(tokens.iter().map(|t| token_info(t, None)).collect()))
}

/// Revoke a join token (Administrators).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/join-tokens/{id}", tag = "join",
    params(("tenant" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath((tenant, id)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.revoke_join_token(&actor, &tenant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Join a host with a join token (or an administrator's bearer token).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/join", tag = "join", params(("tenant" = String, Path)),
    request_body = JoinRequestBody,
    responses((status = 201, body = JoinResponse), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(crate) async fn join(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<JoinRequestBody>,
) -> ApiResult<(StatusCode, axum::Json<JoinResponse>)> {
    let admin = match bearer(&headers) {
        Some(token) => Some(state.service.authenticate(token).await?),
        None => None,
    };
    let request = JoinRequest {
        token: req.token.map(Zeroizing::new),
        hostname: req.hostname,
        ips: req.ips,
        csr: decode_csr(req.csr)?,
    };
    let joined = state.service.join(admin.as_ref(), &tenant, request, peer.ip()).await?;
    let (certificate, chain) = chain_pem(&joined.certificate);
    Ok((
        StatusCode::CREATED,
        axum::Json(JoinResponse {
            machine: joined.machine.name,
            certificate,
            chain,
            machine_secret: joined.machine_secret.to_string(),
            unapproved_ips: joined.unapproved_ips,
            trust: trust_body(&joined.trust),
        }),
    ))
}

/// A new certificate for a machine authenticated by its machine secret.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/reenroll", tag = "join", params(("tenant" = String, Path)),
    request_body = ReenrollRequest, responses((status = 201, body = EnrollResponse), (status = 401, body = ErrorBody)))]
pub(crate) async fn reenroll(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<ReenrollRequest>,
) -> ApiResult<(StatusCode, axum::Json<EnrollResponse>)> {
    let csr = decode_csr(req.csr)?;
    let secret = Zeroizing::new(req.machine_secret);
    let (view, trust) = state.service.reenroll(&tenant, &req.hostname, secret, csr, peer.ip()).await?;
    let (certificate, chain) = chain_pem(&view);
    Ok((StatusCode::CREATED, axum::Json(EnrollResponse { certificate, chain, trust: trust_body(&trust) })))
}

/// Replace the calling machine's secret: authenticated by its certificate
/// (mutual TLS) and its current secret.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/machine-secret", tag = "join", params(("tenant" = String, Path)),
    request_body = RotateMachineSecretRequest,
    responses((status = 200, body = MachineSecret), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn rotate_secret(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<RotateMachineSecretRequest>,
) -> ApiResult<axum::Json<MachineSecret>> {
    let proposed = req.new_machine_secret.map(Zeroizing::new);
    let secret =
        state.service.rotate_machine_secret(&actor, &tenant, Zeroizing::new(req.machine_secret), proposed).await?;
    Ok(axum::Json(MachineSecret { machine_secret: secret.to_string() }))
}

/// Leave the domain (a machine, by its machine secret): revokes every
/// certificate it holds or obtained, forgets its machine secret and
/// disables its account.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/leave", tag = "join", params(("tenant" = String, Path)),
    request_body = LeaveRequest,
    responses((status = 200, body = LeaveResponse), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn leave(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<LeaveRequest>,
) -> ApiResult<axum::Json<LeaveResponse>> {
    let secret = Zeroizing::new(req.machine_secret);
    Ok(axum::Json(LeaveResponse { revoked: state.service.leave(&tenant, &req.hostname, secret, peer.ip()).await? }))
}

/// The DNS domains, besides the tenant's own, that machines' host names may lie inside.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/machine-domains", tag = "join", params(("tenant" = String, Path)),
    responses((status = 200, body = MachineDomains), (status = 403, body = ErrorBody)))]
pub(crate) async fn machine_domains(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<MachineDomains>> {
    Ok(axum::Json(MachineDomains { domains: state.service.machine_domains(&actor, &tenant).await? }))
}

/// Replace those domains (Administrators).
#[utoipa::path(put, path = "/v1/tenants/{tenant}/machine-domains", tag = "join", params(("tenant" = String, Path)),
    request_body = MachineDomains,
    responses((status = 200, body = MachineDomains), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn set_machine_domains(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiJson(req): ApiJson<MachineDomains>,
) -> ApiResult<axum::Json<MachineDomains>> {
    Ok(axum::Json(MachineDomains { domains: state.service.set_machine_domains(&actor, &tenant, req.domains).await? }))
}

/// The trust bundle and every CRL, at the current revision. Public.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/trust", tag = "join", params(("tenant" = String, Path)),
    responses((status = 200, body = TrustStateBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn trust(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<TrustStateBody>> {
    Ok(axum::Json(trust_body(&state.service.trust_state(&tenant).await?)))
}

/// Long-poll parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct WatchQuery {
    /// Answer as soon as the revision exceeds this one.
    #[serde(default)]
    since: i64,
    /// Longest wait in seconds (default and maximum 25).
    #[serde(default)]
    timeout_secs: Option<u64>,
}

/// Wait until the tenant's trust revision exceeds `since` (long poll). Public.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/trust/watch", tag = "join", params(("tenant" = String, Path), WatchQuery),
    responses((status = 200, body = TrustRevision), (status = 404, body = ErrorBody)))]
pub(crate) async fn watch(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<WatchQuery>,
) -> ApiResult<axum::Json<TrustRevision>> {
    let (tenant_id, current) = state.service.trust_revision(&tenant).await?;
    let timeout = Duration::from_secs(q.timeout_secs.unwrap_or(25).clamp(1, 25));
    let revision = state.watch.wait(&tenant_id, current, q.since, timeout).await;
    Ok(axum::Json(TrustRevision { revision }))
}

/// What changed after `since` (long poll): waits like `/trust/watch`, then
/// answers in the same round trip with the changes — new and changed CA
/// certificates, CRLs as deltas (or whole when small) — or tells the caller
/// to fetch the whole trust state. Public.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/trust/changes", tag = "join", params(("tenant" = String, Path), WatchQuery),
    responses((status = 200, body = TrustChangesBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn changes(
    State(state): State<AppState>,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(q): ApiQuery<WatchQuery>,
) -> ApiResult<axum::Json<TrustChangesBody>> {
    let (tenant_id, current) = state.service.trust_revision(&tenant).await?;
    let timeout = Duration::from_secs(q.timeout_secs.unwrap_or(25).clamp(1, 25));
    // A `since` ahead of the server (a restored database) is answered at once: snapshot.
    if (0..=current).contains(&q.since) {
        state.watch.wait(&tenant_id, current, q.since, timeout).await;
    }
    let body = match state.service.trust_changes(&tenant, q.since).await? {
        TrustChanges::Changes { revision, changes } => {
            TrustChangesBody { revision, snapshot_required: false, changes: changes.iter().map(change_body).collect() }
        }
        TrustChanges::SnapshotRequired { revision } => {
            TrustChangesBody { revision, snapshot_required: true, changes: Vec::new() }
        }
    };
    Ok(axum::Json(body))
}

fn change_body(change: &TrustUpdate) -> TrustChangeBody {
    use base64::Engine as _;
    let b64 = |der: &[u8]| base64::engine::general_purpose::STANDARD.encode(der);
    let empty = TrustChangeBody {
        kind: String::new(),
        ca_id: String::new(),
        certificate: None,
        bundle: None,
        crl_cas: None,
        number: None,
        base_number: None,
        crl: None,
        delta: None,
    };
    match change {
        TrustUpdate::Ca { ca_id, certificate, bundle, crl_cas } => TrustChangeBody {
            kind: "ca".into(),
            ca_id: ca_id.clone(),
            certificate: Some(b64(certificate)),
            bundle: Some(bundle.iter().map(|der| b64(der)).collect()),
            crl_cas: Some(crl_cas.clone()),
            ..empty
        },
        TrustUpdate::Crl { ca_id, number, crl, delta } => TrustChangeBody {
            kind: "crl".into(),
            ca_id: ca_id.clone(),
            number: Some(*number),
            crl: crl.as_deref().map(b64),
            delta: delta.as_deref().map(b64),
            ..empty
        },
        TrustUpdate::DeltaCrl { ca_id, number, base_number, crl, delta } => TrustChangeBody {
            kind: "delta_crl".into(),
            ca_id: ca_id.clone(),
            number: Some(*number),
            base_number: Some(*base_number),
            crl: crl.as_deref().map(b64),
            delta: delta.as_deref().map(b64),
            ..empty
        },
        TrustUpdate::TokenKeys => TrustChangeBody { kind: "token_keys".into(), ..empty },
        TrustUpdate::Federation => TrustChangeBody { kind: "federation".into(), ..empty },
    }
}
