//! Audit log: list and verify, per tenant and for the system chain.

use axum::extract::State;
use lightwell_core::AuditRecord;
use lightwell_core::Verification;
use lightwell_core::clock::rfc3339;
use lightwell_proto::{AuditCheckpointRefusal, AuditCheckpointReport, AuditEntry, AuditVerification, ErrorBody};
use serde::Deserialize;

use super::AppState;
use super::auth::Auth;
use super::error::{ApiPath, ApiQuery, ApiResult};

/// Paging of audit lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    /// Return records after this sequence number.
    #[serde(default)]
    after: i64,
    /// At most this many records (default 100, at most 1000).
    #[serde(default = "default_limit")]
    limit: u32,
}

fn default_limit() -> u32 {
    100
}

fn entry(r: AuditRecord) -> AuditEntry {
    AuditEntry {
        seq: r.seq,
        at: rfc3339(r.at),
        actor: r.actor,
        action: r.action,
        target: r.target,
        outcome: r.outcome,
        detail: r.detail,
        hash: r.hash,
    }
}

fn verification(v: Verification) -> AuditVerification {
    AuditVerification {
        valid: v.valid,
        records: v.records,
        broken_at: v.broken_at,
        reason: v.reason,
        checkpoint: v.checkpoint,
    }
}

/// The system audit chain (operator).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(Page),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ErrorBody)))]
pub(crate) async fn system_list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let records = state.service.audit_records(&actor, None, page.after, page.limit).await?;
    Ok(axum::Json(records.into_iter().map(entry).collect()))
}

/// Verify the system audit chain.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerification), (status = 403, body = ErrorBody)))]
pub(crate) async fn system_verify(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<axum::Json<AuditVerification>> {
    Ok(axum::Json(verification(state.service.verify_audit(&actor, None).await?)))
}

/// Checkpoint every tenant chain into the system chain now (operator), and
/// copy the heads to the checkpoint file if one is configured.
#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = AuditCheckpointReport), (status = 403, body = ErrorBody)))]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    Auth(actor): Auth,
) -> ApiResult<axum::Json<AuditCheckpointReport>> {
    let r = state.service.checkpoint_audit_as(&actor).await?;
    Ok(axum::Json(AuditCheckpointReport {
        checkpointed: r.checkpointed,
        refused: r.refused.into_iter().map(|(chain, reason)| AuditCheckpointRefusal { chain, reason }).collect(),
    }))
}

/// A tenant's audit chain (Administrators).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit", tag = "audit", params(("tenant" = String, Path), Page),
    responses((status = 200, body = Vec<AuditEntry>), (status = 403, body = ErrorBody)))]
pub(crate) async fn tenant_list(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> ApiResult<axum::Json<Vec<AuditEntry>>> {
    let records = state.service.audit_records(&actor, Some(&tenant), page.after, page.limit).await?;
    Ok(axum::Json(records.into_iter().map(entry).collect()))
}

/// Verify a tenant's audit chain.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit/verify", tag = "audit", params(("tenant" = String, Path)),
    responses((status = 200, body = AuditVerification), (status = 403, body = ErrorBody)))]
pub(crate) async fn tenant_verify(
    State(state): State<AppState>,
    Auth(actor): Auth,
    ApiPath(tenant): ApiPath<String>,
) -> ApiResult<axum::Json<AuditVerification>> {
    Ok(axum::Json(verification(state.service.verify_audit(&actor, Some(&tenant)).await?)))
}
